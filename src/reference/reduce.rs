//! Reference masked reductions: naive, sequential, accumulating in `f64` and
//! rounding once to the element type at the end.
//!
//! Every reduction is written as a **per-sequence kernel** (`*_seq`) that
//! reduces the kept elements of one [`Seq`] — the whole view, one row or one
//! column — and two thin drivers: the whole-view function (`sum`) runs the
//! kernel on [`whole`], the per-dim function (`sum_dim`) runs it on every
//! sequence of [`sequences`] through [`map_dim`]. A fast path can replace the
//! kernel and keep the drivers.
//!
//! Semantics (PyTorch's `torch.masked` / `torch` ops, with the rules of
//! `docs/design.md`):
//! - nothing kept: `None` (whole view) or a cleared output bit with value 0
//!   (per dim); `var`/`std` also when `count <= correction`;
//! - a NaN among the **kept** elements propagates (`amin`/`amax` give NaN,
//!   `argmin`/`argmax` give the index of the first NaN, like `torch.argmax`);
//! - ties resolve to the first index;
//! - masked-out values are never read into arithmetic (NaN, ±inf or garbage
//!   there never changes a result).
//!
//! Indices returned by `argmin`/`argmax` are flat indices into the view;
//! `argmin_dim`/`argmax_dim` return the position along the reduced dim (the
//! column index for `dim = 1`, the row index for `dim = 0`), as PyTorch does.

use crate::element::Element;
use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::view::{MaskedVec, MaskedView};

/// One sequence of a view: the elements at `start + k * stride` for
/// `k < len`. A row has `stride = 1`, a column `stride = cols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seq {
    /// Flat index of the first element.
    pub start: usize,
    /// Distance between consecutive elements.
    pub stride: usize,
    /// Number of elements.
    pub len: usize,
}

impl Seq {
    /// Flat index of the `k`-th element.
    #[inline]
    pub fn at(&self, k: usize) -> usize {
        self.start + k * self.stride
    }
}

/// The whole view as one sequence (flat, row-major).
pub fn whole<T: Element>(v: &MaskedView<T>) -> Seq {
    Seq {
        start: 0,
        stride: 1,
        len: v.len(),
    }
}

/// The sequences a reduction along `dim` visits, in output order:
/// `dim = 1` gives one per row, `dim = 0` one per column (a 1-D view has only
/// `dim = 0`, which is the whole view). `Err(Error::Dim)` for a bad `dim`.
pub fn sequences<T: Element>(v: &MaskedView<T>, dim: usize) -> Result<Vec<Seq>> {
    v.check_dim(dim)?;
    let (rows, cols) = (v.rows(), v.cols());
    Ok(if v.ndim() == 1 {
        vec![whole(v)]
    } else if dim == 1 {
        (0..rows)
            .map(|r| Seq {
                start: r * cols,
                stride: 1,
                len: cols,
            })
            .collect()
    } else {
        (0..cols)
            .map(|c| Seq {
                start: c,
                stride: cols,
                len: rows,
            })
            .collect()
    })
}

/// The kept elements of `s` as `(position in s, value widened to f64)`,
/// in increasing position. Masked-out elements are never read.
pub fn kept<'a, T: Element>(
    v: &MaskedView<'a, T>,
    s: Seq,
) -> impl Iterator<Item = (usize, f64)> + 'a {
    let (data, mask) = (v.data(), v.mask());
    (0..s.len).filter_map(move |k| {
        let i = s.at(k);
        if mask.get(i) {
            Some((k, data[i].to_f64()))
        } else {
            None
        }
    })
}

/// Runs `kernel` on every sequence along `dim` and packs the results: a
/// `None` becomes a cleared bit with value `R::default()` (0).
pub fn map_dim<T: Element, R: Copy + Default>(
    v: &MaskedView<T>,
    dim: usize,
    mut kernel: impl FnMut(Seq) -> Option<R>,
) -> Result<MaskedVec<R>> {
    let seqs = sequences(v, dim)?;
    let mut values = Vec::with_capacity(seqs.len());
    let mut mask = Mask::zeros(seqs.len());
    for (o, s) in seqs.into_iter().enumerate() {
        match kernel(s) {
            Some(r) => {
                values.push(r);
                mask.set(o, true);
            }
            None => values.push(R::default()),
        }
    }
    Ok(MaskedVec { values, mask })
}

// ---------------------------------------------------------------------------
// per-sequence kernels (f64 arithmetic, one rounding at the end)
// ---------------------------------------------------------------------------

/// Sum of the kept elements of `s`; `None` if nothing is kept.
pub fn sum_seq<T: Element>(v: &MaskedView<T>, s: Seq) -> Option<T> {
    let mut n = 0usize;
    let mut acc = 0.0f64;
    for (_, x) in kept(v, s) {
        n += 1;
        acc += x;
    }
    (n > 0).then(|| T::from_f64(acc))
}

/// Mean of the kept elements of `s` (`sum / count`); `None` if nothing is kept.
pub fn mean_seq<T: Element>(v: &MaskedView<T>, s: Seq) -> Option<T> {
    let mut n = 0usize;
    let mut acc = 0.0f64;
    for (_, x) in kept(v, s) {
        n += 1;
        acc += x;
    }
    (n > 0).then(|| T::from_f64(acc / n as f64))
}

/// Product of the kept elements of `s`; `None` if nothing is kept.
pub fn prod_seq<T: Element>(v: &MaskedView<T>, s: Seq) -> Option<T> {
    let mut n = 0usize;
    let mut acc = 1.0f64;
    for (_, x) in kept(v, s) {
        n += 1;
        acc *= x;
    }
    (n > 0).then(|| T::from_f64(acc))
}

/// Position (in `s`) and value of the extreme kept element: the first NaN if
/// any, else the first minimum (`want_max = false`) or maximum.
fn extreme(it: impl Iterator<Item = (usize, f64)>, want_max: bool) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for (k, x) in it {
        if x.is_nan() {
            return Some((k, x));
        }
        best = match best {
            None => Some((k, x)),
            Some((_, b)) if (want_max && x > b) || (!want_max && x < b) => Some((k, x)),
            keep => keep,
        };
    }
    best
}

/// Minimum of the kept elements of `s` (NaN if a kept element is NaN);
/// `None` if nothing is kept.
pub fn amin_seq<T: Element>(v: &MaskedView<T>, s: Seq) -> Option<T> {
    extreme(kept(v, s), false).map(|(_, x)| T::from_f64(x))
}

/// Maximum of the kept elements of `s` (NaN if a kept element is NaN);
/// `None` if nothing is kept.
pub fn amax_seq<T: Element>(v: &MaskedView<T>, s: Seq) -> Option<T> {
    extreme(kept(v, s), true).map(|(_, x)| T::from_f64(x))
}

/// Position in `s` of the first minimum of the kept elements (of the first
/// kept NaN if any); `None` if nothing is kept.
pub fn argmin_seq<T: Element>(v: &MaskedView<T>, s: Seq) -> Option<usize> {
    extreme(kept(v, s), false).map(|(k, _)| k)
}

/// Position in `s` of the first maximum of the kept elements (of the first
/// kept NaN if any); `None` if nothing is kept.
pub fn argmax_seq<T: Element>(v: &MaskedView<T>, s: Seq) -> Option<usize> {
    extreme(kept(v, s), true).map(|(k, _)| k)
}

/// Variance in `f64` by two passes (mean, then the sum of squared
/// deviations) divided by `count - correction`; `None` if
/// `count <= correction` (which includes nothing kept).
fn var_f64<T: Element>(v: &MaskedView<T>, s: Seq, correction: usize) -> Option<f64> {
    let mut n = 0usize;
    let mut acc = 0.0f64;
    for (_, x) in kept(v, s) {
        n += 1;
        acc += x;
    }
    if n <= correction {
        return None;
    }
    let mean = acc / n as f64;
    let ss: f64 = kept(v, s).map(|(_, x)| (x - mean) * (x - mean)).sum();
    Some(ss / (n - correction) as f64)
}

/// Variance of the kept elements of `s` with Bessel-style `correction`
/// (`torch.var(correction=)`); `None` if `count <= correction`.
pub fn var_seq<T: Element>(v: &MaskedView<T>, s: Seq, correction: usize) -> Option<T> {
    var_f64(v, s, correction).map(T::from_f64)
}

/// Standard deviation (square root of [`var_seq`], taken in `f64`);
/// `None` if `count <= correction`.
pub fn std_seq<T: Element>(v: &MaskedView<T>, s: Seq, correction: usize) -> Option<T> {
    var_f64(v, s, correction).map(|x| T::from_f64(x.sqrt()))
}

/// Vector `p`-norm of the kept elements of `s`, as `torch.linalg.vector_norm`
/// on the kept elements:
/// - `p = inf`: `max |x|`; `p = -inf`: `min |x|`;
/// - `p = 0`: the number of nonzero kept elements (NaN counts as nonzero);
/// - any other finite `p` (negative and non-integer included):
///   `(sum |x|^p)^(1/p)` (`p = 1` and `p = 2` are the plain sum of `|x|` and
///   the square root of the sum of squares). For `p < 0` a kept zero makes the
///   norm 0, as in PyTorch.
///
/// A NaN among the kept elements gives NaN (except for `p = 0`).
/// `None` if nothing is kept or if `p` is NaN (the only invalid `p`).
pub fn norm_seq<T: Element>(v: &MaskedView<T>, s: Seq, p: f64) -> Option<T> {
    if p.is_nan() {
        return None;
    }
    let abs = kept(v, s).map(|(k, x)| (k, x.abs()));
    let r = if p == f64::INFINITY {
        extreme(abs, true)?.1
    } else if p == f64::NEG_INFINITY {
        extreme(abs, false)?.1
    } else {
        let mut n = 0usize;
        let mut acc = 0.0f64;
        for (_, a) in abs {
            n += 1;
            acc += if p == 0.0 {
                if a != 0.0 {
                    1.0
                } else {
                    0.0
                }
            } else if p == 1.0 {
                a
            } else if p == 2.0 {
                a * a
            } else {
                a.powf(p)
            };
        }
        if n == 0 {
            return None;
        }
        if p == 0.0 || p == 1.0 {
            acc
        } else if p == 2.0 {
            acc.sqrt()
        } else {
            acc.powf(1.0 / p)
        }
    };
    Some(T::from_f64(r))
}

/// `log(sum(exp(x)))` over the kept elements of `s`, shifted by the maximum
/// (`torch.logsumexp`): all kept `-inf` gives `-inf`, a kept `+inf` gives
/// `+inf`, a kept NaN gives NaN; `None` if nothing is kept.
pub fn logsumexp_seq<T: Element>(v: &MaskedView<T>, s: Seq) -> Option<T> {
    let (_, m) = extreme(kept(v, s), true)?;
    if m.is_nan() || m.is_infinite() {
        return Some(T::from_f64(m));
    }
    let acc: f64 = kept(v, s).map(|(_, x)| (x - m).exp()).sum();
    Some(T::from_f64(m + acc.ln()))
}

// ---------------------------------------------------------------------------
// drivers: whole view and per dim
// ---------------------------------------------------------------------------

macro_rules! whole_and_dim {
    ($(#[$doc:meta])* $name:ident, $dim:ident, $seq:ident, $out:ty) => {
        $(#[$doc])*
        ///
        /// Whole view; `None` if nothing is kept.
        pub fn $name<T: Element>(v: &MaskedView<T>) -> Option<$out> {
            $seq(v, whole(v))
        }

        $(#[$doc])*
        ///
        /// Per `dim` (1: one result per row, 0: one per column); a sequence
        /// with nothing kept gives a cleared bit and value 0.
        /// `Err(Error::Dim)` if `dim >= ndim`.
        pub fn $dim<T: Element>(v: &MaskedView<T>, dim: usize) -> Result<MaskedVec<$out>> {
            map_dim(v, dim, |s| $seq(v, s))
        }
    };
}

whole_and_dim!(
    /// Reference masked sum.
    sum, sum_dim, sum_seq, T
);
whole_and_dim!(
    /// Reference masked mean.
    mean, mean_dim, mean_seq, T
);
whole_and_dim!(
    /// Reference masked product.
    prod, prod_dim, prod_seq, T
);
whole_and_dim!(
    /// Reference masked minimum (NaN propagates).
    amin, amin_dim, amin_seq, T
);
whole_and_dim!(
    /// Reference masked maximum (NaN propagates).
    amax, amax_dim, amax_seq, T
);
whole_and_dim!(
    /// Reference masked argmin (first minimum, or first NaN); flat index for
    /// the whole view, position along `dim` per dim.
    argmin, argmin_dim, argmin_seq, usize
);
whole_and_dim!(
    /// Reference masked argmax (first maximum, or first NaN); flat index for
    /// the whole view, position along `dim` per dim.
    argmax, argmax_dim, argmax_seq, usize
);
whole_and_dim!(
    /// Reference masked log-sum-exp (max-shifted).
    logsumexp, logsumexp_dim, logsumexp_seq, T
);

/// Reference masked variance with `correction` over the whole view;
/// `None` if `count <= correction`.
pub fn var<T: Element>(v: &MaskedView<T>, correction: usize) -> Option<T> {
    var_seq(v, whole(v), correction)
}

/// Reference masked variance per `dim`; a cleared bit where
/// `count <= correction`. `Err(Error::Dim)` for a bad `dim`.
pub fn var_dim<T: Element>(
    v: &MaskedView<T>,
    dim: usize,
    correction: usize,
) -> Result<MaskedVec<T>> {
    map_dim(v, dim, |s| var_seq(v, s, correction))
}

/// Reference masked standard deviation with `correction` over the whole
/// view; `None` if `count <= correction`.
pub fn std<T: Element>(v: &MaskedView<T>, correction: usize) -> Option<T> {
    std_seq(v, whole(v), correction)
}

/// Reference masked standard deviation per `dim`; a cleared bit where
/// `count <= correction`. `Err(Error::Dim)` for a bad `dim`.
pub fn std_dim<T: Element>(
    v: &MaskedView<T>,
    dim: usize,
    correction: usize,
) -> Result<MaskedVec<T>> {
    map_dim(v, dim, |s| std_seq(v, s, correction))
}

/// Reference masked `p`-norm over the whole view (see [`norm_seq`]);
/// `None` if nothing is kept or `p` is NaN.
pub fn norm<T: Element>(v: &MaskedView<T>, p: f64) -> Option<T> {
    norm_seq(v, whole(v), p)
}

/// Reference masked `p`-norm per `dim` (see [`norm_seq`]).
/// `Err(Error::Param)` if `p` is NaN, `Err(Error::Dim)` for a bad `dim`.
pub fn norm_dim<T: Element>(v: &MaskedView<T>, dim: usize, p: f64) -> Result<MaskedVec<T>> {
    check_norm_p(p)?;
    map_dim(v, dim, |s| norm_seq(v, s, p))
}

/// `Err(Error::Param)` for a NaN norm order; every other `f64` (±inf, 0,
/// negative, non-integer) is a valid order, as in `torch.linalg.vector_norm`.
pub fn check_norm_p(p: f64) -> Result<()> {
    if p.is_nan() {
        Err(Error::Param {
            name: "p",
            value: p,
            expected: "a number (not NaN): any finite value, inf or -inf",
        })
    } else {
        Ok(())
    }
}
