//! Masked softmax and log-softmax: forward (also available as
//! [`MaskedView::softmax`] / [`MaskedView::log_softmax`]) and backward.
//!
//! The softmax is taken over the kept elements of each row (`dim = 1`) or
//! column (`dim = 0`) of a 2-D view, or over a whole 1-D view (`dim = 0`).
//! The output mask is the input mask (fully masked rows stay fully cleared)
//! and values under cleared bits are 0. Masked-out inputs are never read.
//!
//! The backward passes take the forward **output** `y` (as a view, with the
//! forward output's mask) and the upstream gradient `dy` (same length), and
//! return the gradient with respect to the forward input:
//! - softmax: `dx = y * (dy - sum_kept(dy * y))`;
//! - log-softmax: `dx = dy - exp(y) * sum_kept(dy)`;
//!
//! with 0 at masked-out positions and in fully masked rows. Entries of `dy`
//! at masked-out positions are never read.

use crate::element::Element;
use crate::error::Result;
use crate::view::{MaskedVec, MaskedView};

/// Masked softmax of `input` along `dim` (same as [`MaskedView::softmax`]).
///
/// ```
/// use maskops::{Mask, MaskedView, softmax};
/// let x = [0.0f64, 0.0, f64::NAN];
/// let m = Mask::from_bools(&[true, true, false]);
/// let y = softmax::softmax(&MaskedView::new(&x, &m).unwrap(), 0).unwrap();
/// assert_eq!(y.values, vec![0.5, 0.5, 0.0]);
/// ```
pub fn softmax<T: Element>(input: &MaskedView<T>, dim: usize) -> Result<MaskedVec<T>> {
    input.softmax(dim)
}

/// Masked log-softmax of `input` along `dim` (same as
/// [`MaskedView::log_softmax`]).
pub fn log_softmax<T: Element>(input: &MaskedView<T>, dim: usize) -> Result<MaskedVec<T>> {
    input.log_softmax(dim)
}

/// [`softmax`] writing into `out` (`input.len()` elements; every element
/// is written, masked-out ones with 0). The output mask is `input.mask()`.
/// Allocates nothing: for training loops, where a fresh output buffer per
/// step costs page faults that can exceed the kernel's own time.
///
/// ```
/// use maskops::{Mask, MaskedView, softmax};
/// let x = [0.0f32, 0.0, f32::NAN, 1.0];
/// let m = Mask::from_bools(&[true, true, false, true]);
/// let v = MaskedView::matrix(&x, &m, 2, 2).unwrap();
/// let mut out = vec![7.0f32; 4];
/// softmax::softmax_into(&v, 1, &mut out).unwrap();
/// assert_eq!(out, vec![0.5, 0.5, 0.0, 1.0]);
/// assert!(softmax::softmax_into(&v, 1, &mut [0.0; 3]).is_err());
/// ```
pub fn softmax_into<T: Element>(input: &MaskedView<T>, dim: usize, out: &mut [T]) -> Result<()> {
    crate::cpu::reduce::softmax_into(input, dim, false, out)
}

/// [`log_softmax`] writing into `out` (see [`softmax_into`]).
///
/// ```
/// use maskops::{Mask, MaskedView, softmax};
/// let x = [0.0f64, 0.0];
/// let m = Mask::ones(2);
/// let mut out = [1.0f64; 2];
/// softmax::log_softmax_into(&MaskedView::new(&x, &m).unwrap(), 0, &mut out).unwrap();
/// assert_eq!(out, [-(2f64.ln()), -(2f64.ln())]);
/// ```
pub fn log_softmax_into<T: Element>(
    input: &MaskedView<T>,
    dim: usize,
    out: &mut [T],
) -> Result<()> {
    crate::cpu::reduce::softmax_into(input, dim, true, out)
}

/// Gradient of the masked softmax with respect to its input:
/// `dx = y * (dy - sum_kept(dy * y))` per row (`dim = 1`) or column
/// (`dim = 0`), 0 where `output` is masked out.
///
/// `output` is the forward result viewed with its mask (the same shape as the
/// forward input), `grad_output` the upstream gradient `dy`, indexed like
/// `output`'s data. Errors: `Err(Error::Length)` if `grad_output.len()` differs
/// from `output.len()`, `Err(Error::Dim)` for a bad `dim`.
///
/// ```
/// use maskops::{Mask, MaskedView, softmax};
/// let x = [1.0f64, 2.0, 3.0, 7.0];
/// let m = Mask::from_bools(&[true, true, true, false]);
/// let y = MaskedView::matrix(&x, &m, 2, 2).unwrap().softmax(1).unwrap();
/// let yv = MaskedView::matrix(&y.values, &y.mask, 2, 2).unwrap();
/// // the gradient of sum(y) is zero: softmax sums to one in every row
/// let dx = softmax::softmax_backward(&yv, &[1.0, 1.0, 1.0, f64::NAN], 1).unwrap();
/// assert!(dx.values.iter().all(|d| d.abs() < 1e-15));
/// assert!(softmax::softmax_backward(&yv, &[1.0; 3], 1).is_err());
/// ```
pub fn softmax_backward<T: Element>(
    output: &MaskedView<T>,
    grad_output: &[T],
    dim: usize,
) -> Result<MaskedVec<T>> {
    crate::cpu::reduce::softmax_backward(output, grad_output, dim, false)
}

/// Gradient of the masked log-softmax with respect to its input:
/// `dx = dy - exp(y) * sum_kept(dy)` per row (`dim = 1`) or column
/// (`dim = 0`), 0 where `output` is masked out.
///
/// Arguments and errors as in [`softmax_backward`]; `output` holds the
/// forward log-probabilities.
///
/// ```
/// use maskops::{Mask, MaskedView, softmax};
/// let x = [0.0f64, 0.0];
/// let m = Mask::ones(2);
/// let y = MaskedView::new(&x, &m).unwrap().log_softmax(0).unwrap();
/// let yv = MaskedView::new(&y.values, &y.mask).unwrap();
/// let dx = softmax::log_softmax_backward(&yv, &[1.0, 0.0], 0).unwrap();
/// assert_eq!(dx.values, vec![0.5, -0.5]);
/// ```
pub fn log_softmax_backward<T: Element>(
    output: &MaskedView<T>,
    grad_output: &[T],
    dim: usize,
) -> Result<MaskedVec<T>> {
    crate::cpu::reduce::softmax_backward(output, grad_output, dim, true)
}
