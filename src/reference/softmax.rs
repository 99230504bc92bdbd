//! Reference masked softmax / log-softmax, forward and backward: naive,
//! accumulating in `f64`, rounding once to the element type per output.
//!
//! Each function runs a per-sequence kernel (`*_seq`) over the rows
//! (`dim = 1`) or columns (`dim = 0`) given by [`sequences`]; a 1-D view has
//! only `dim = 0`, the whole view.
//!
//! Semantics (`torch.masked.softmax` with the rules of `docs/design.md`):
//! the softmax is taken over the kept elements of each sequence only; the
//! output mask is the input mask (a fully masked row/column stays fully
//! cleared), and every value
//! under a cleared bit is 0. Masked-out inputs (NaN, ±inf, garbage) are never
//! read. As in PyTorch, a sequence whose kept values are all `-inf` (or that
//! holds a kept `+inf` or NaN) gives NaN at its kept positions.

use crate::element::Element;
use crate::error::{check_len, Result};
use crate::reference::reduce::{kept, sequences, Seq};
use crate::view::{MaskedVec, MaskedView};

/// Runs `kernel(seq, values)` for every sequence along `dim`, where
/// `values` is the output buffer (all zeros on entry, the view's length);
/// the output mask is the view's mask.
fn map_seqs<T: Element>(
    v: &MaskedView<T>,
    dim: usize,
    mut kernel: impl FnMut(Seq, &mut [T]),
) -> Result<MaskedVec<T>> {
    if v.is_empty() {
        // Nothing to normalize; and a `usize::MAX x 0` view must not
        // materialize `usize::MAX` empty sequences (a capacity-overflow panic).
        v.check_dim(dim)?;
        return Ok(MaskedVec {
            values: Vec::new(),
            mask: v.mask().clone(),
        });
    }
    let seqs = sequences(v, dim)?;
    let mut values = vec![T::ZERO; v.len()];
    for s in seqs {
        kernel(s, &mut values);
    }
    Ok(MaskedVec {
        values,
        mask: v.mask().clone(),
    })
}

/// Maximum of the kept values of `s` in `f64` (NaN if any is NaN);
/// `None` if nothing is kept.
fn kept_max<T: Element>(v: &MaskedView<T>, s: Seq) -> Option<f64> {
    let mut m: Option<f64> = None;
    for (_, x) in kept(v, s) {
        if x.is_nan() {
            return Some(x);
        }
        m = Some(match m {
            Some(b) if b >= x => b,
            _ => x,
        });
    }
    m
}

/// Softmax of the kept elements of `s`, written at their flat positions in
/// `out`: `exp(x - max) / sum(exp(x - max))`.
pub fn softmax_seq<T: Element>(v: &MaskedView<T>, s: Seq, out: &mut [T]) {
    let Some(m) = kept_max(v, s) else { return };
    let z: f64 = kept(v, s).map(|(_, x)| (x - m).exp()).sum();
    for (k, x) in kept(v, s) {
        out[s.at(k)] = T::from_f64((x - m).exp() / z);
    }
}

/// Log-softmax of the kept elements of `s`, written at their flat positions
/// in `out`: `x - max - ln(sum(exp(x - max)))`.
pub fn log_softmax_seq<T: Element>(v: &MaskedView<T>, s: Seq, out: &mut [T]) {
    let Some(m) = kept_max(v, s) else { return };
    let z: f64 = kept(v, s).map(|(_, x)| (x - m).exp()).sum();
    let lz = z.ln();
    for (k, x) in kept(v, s) {
        out[s.at(k)] = T::from_f64(x - m - lz);
    }
}

/// Softmax backward on `s`: `dx = y * (dy - sum_kept(dy * y))` at the kept
/// positions, where `y` is the forward output (the view) and `dy` the
/// upstream gradient (`grad_output`, indexed like the view's data).
pub fn softmax_backward_seq<T: Element>(
    output: &MaskedView<T>,
    grad_output: &[T],
    s: Seq,
    out: &mut [T],
) {
    let dot: f64 = kept(output, s)
        .map(|(k, y)| grad_output[s.at(k)].to_f64() * y)
        .sum();
    for (k, y) in kept(output, s) {
        let dy = grad_output[s.at(k)].to_f64();
        out[s.at(k)] = T::from_f64(y * (dy - dot));
    }
}

/// Log-softmax backward on `s`: `dx = dy - exp(y) * sum_kept(dy)` at the kept
/// positions, where `y` is the forward output (log-probabilities).
pub fn log_softmax_backward_seq<T: Element>(
    output: &MaskedView<T>,
    grad_output: &[T],
    s: Seq,
    out: &mut [T],
) {
    let total: f64 = kept(output, s)
        .map(|(k, _)| grad_output[s.at(k)].to_f64())
        .sum();
    for (k, y) in kept(output, s) {
        let dy = grad_output[s.at(k)].to_f64();
        out[s.at(k)] = T::from_f64(dy - y.exp() * total);
    }
}

/// Reference masked softmax along `dim`. `Err(Error::Dim)` for a bad `dim`.
pub fn softmax<T: Element>(v: &MaskedView<T>, dim: usize) -> Result<MaskedVec<T>> {
    map_seqs(v, dim, |s, out| softmax_seq(v, s, out))
}

/// Reference masked log-softmax along `dim`. `Err(Error::Dim)` for a bad `dim`.
pub fn log_softmax<T: Element>(v: &MaskedView<T>, dim: usize) -> Result<MaskedVec<T>> {
    map_seqs(v, dim, |s, out| log_softmax_seq(v, s, out))
}

/// Reference masked softmax backward along `dim`: `output` is the forward
/// result (values and mask), `grad_output` the upstream gradient (same length;
/// masked-out entries are never read). The result has `output`'s mask and 0
/// under cleared bits. `Err(Error::Length)` if `grad_output` has the wrong
/// length, `Err(Error::Dim)` for a bad `dim`.
pub fn softmax_backward<T: Element>(
    output: &MaskedView<T>,
    grad_output: &[T],
    dim: usize,
) -> Result<MaskedVec<T>> {
    check_len("grad_output", output.len(), grad_output.len())?;
    map_seqs(output, dim, |s, out| {
        softmax_backward_seq(output, grad_output, s, out)
    })
}

/// Reference masked log-softmax backward along `dim` (see
/// [`softmax_backward`] for the arguments and errors).
pub fn log_softmax_backward<T: Element>(
    output: &MaskedView<T>,
    grad_output: &[T],
    dim: usize,
) -> Result<MaskedVec<T>> {
    check_len("grad_output", output.len(), grad_output.len())?;
    map_seqs(output, dim, |s, out| {
        log_softmax_backward_seq(output, grad_output, s, out)
    })
}
