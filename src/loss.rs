//! Masked losses with their gradients.
//!
//! Every loss returns a [`Loss`]: the value (one element, or one per element
//! / per row with [`Reduction::None`]) and the gradient of `value.sum()` with
//! respect to the input, computed together. Semantics are PyTorch's
//! (`torch.nn.functional`), with the crate's rules on top:
//!
//! - a mask bit of 1 keeps the element; masked-out entries never contribute,
//!   even when they hold NaN or infinity (they are selected away, never
//!   multiplied by 0), and their gradient is 0;
//! - [`Reduction::Mean`] divides by the number of kept elements (the
//!   scFormer "masked MSE": sum over the mask / mask count); a mean over
//!   nothing is 0 with a zero gradient (PyTorch gives NaN);
//! - to compute a loss on the *masked-out* entries (the gene-expression
//!   masking workflow's "loss on what was hidden"), pass `&mask.not()`.
//!
//! ## Speed and determinism
//!
//! Each loss is one fused pass: value and gradient are computed together,
//! block by block (elementwise losses) or row by row (cross-entropy), with
//! no temporary the size of the input. The kernels are hand-written for
//! AVX-512 and AVX2 (`f32`; `f64` uses the portable kernels compiled for
//! each ISA) with a portable fallback, chosen by [`crate::backend::isa`], and
//! large inputs are split over rayon's pool. Every sum follows the
//! [`crate::canonical`] order, so a result has the same bits on every ISA
//! and every thread count. `f32` cross-entropy and BCE use the crate's
//! deterministic `exp`/`ln` ([`crate::math`]), measured within 1 ulp of
//! `f64` over the ranges they use. Rows of cross-entropy whose target is
//! ignored cost only the write of a zero gradient row. The `*_into`
//! variants write the gradient into a caller's buffer, so a training loop
//! allocates nothing the size of the input per step.
//!
//! Bad arguments return [`Error`]: lengths that differ
//! ([`Error::Length`] naming the argument), a cross-entropy target outside
//! `[0, classes)` that is not the ignore index ([`Error::Target`]), and
//! hyper-parameters out of their domain ([`Error::Param`]).
//!
//! ```
//! use maskops::{loss::{self, Reduction}, Mask};
//! let input = [1.0f32, 2.0, f32::NAN, 4.0];
//! let target = [0.0f32, 2.0, 0.0, 2.0];
//! let mask = Mask::from_bools(&[true, true, false, true]);
//! let l = loss::mse(&input, &target, &mask, Reduction::Mean)?;
//! assert_eq!(l.value, vec![5.0 / 3.0]); // (1 + 0 + 4) / 3
//! assert_eq!(l.grad, vec![2.0 / 3.0, 0.0, 0.0, 4.0 / 3.0]);
//! # Ok::<(), maskops::Error>(())
//! ```

use crate::element::Float;
use crate::error::{check_len, check_shape, Error, Result};
use crate::mask::Mask;
use crate::view::MaskedVec;

/// How per-element (or per-row) losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Reduction {
    /// One value per element (per row for cross-entropy), 0 where masked
    /// out or ignored.
    None,
    /// The sum over the kept elements.
    Sum,
    /// The sum divided by the number of kept elements (cross-entropy: by the
    /// sum of `weight[target]` over the non-ignored rows). Over nothing: 0.
    #[default]
    Mean,
}

/// A loss value and its gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct Loss<T> {
    /// One element, or one per element (per row for cross-entropy) with
    /// [`Reduction::None`].
    pub value: Vec<T>,
    /// `d value.sum() / d input`, the input's length; 0 at masked-out
    /// entries and ignored rows.
    pub grad: Vec<T>,
}

impl<T: Copy> Loss<T> {
    /// The value of a reduced loss: `Some(value[0])` when `value` holds one
    /// element ([`Reduction::Sum`] or [`Reduction::Mean`], or
    /// [`Reduction::None`] over a single element or row), else `None`.
    ///
    /// ```
    /// use maskops::loss::{self, Reduction};
    /// use maskops::Mask;
    /// let (x, y) = ([1.0f32, 2.0, 4.0], [0.0f32, 2.0, 0.0]);
    /// let m = Mask::from_bools(&[true, true, false]);
    /// let mean = loss::mse(&x, &y, &m, Reduction::Mean)?;
    /// assert_eq!(mean.scalar(), Some(0.5)); // (1 + 0) / 2
    /// let per_element = loss::mse(&x, &y, &m, Reduction::None)?;
    /// assert_eq!(per_element.value, vec![1.0, 0.0, 0.0]);
    /// assert_eq!(per_element.scalar(), None);
    /// # Ok::<(), maskops::Error>(())
    /// ```
    pub fn scalar(&self) -> Option<T> {
        match self.value.as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }
}

/// Options of [`cross_entropy`]. `Default` gives PyTorch's defaults
/// (`ignore_index = -100`, no weight, no label smoothing, mean).
///
/// Write the fields you set and `..Default::default()` for the rest, as in
/// `CrossEntropy { ignore_index: -1, ..Default::default() }`. A field added
/// in a later version always comes with a default that keeps today's
/// behaviour, so code written this way keeps compiling and computing the
/// same thing. (The struct is not `#[non_exhaustive]`, which would forbid
/// exactly this form outside the crate.)
#[derive(Debug, Clone, PartialEq)]
pub struct CrossEntropy<T> {
    /// Rows whose target equals this are ignored (value 0, zero gradient,
    /// not counted by the mean). The `-1` trick is `ignore_index: -1`.
    pub ignore_index: i64,
    /// Per-class weights (length `classes`), or `None` for all ones.
    pub weight: Option<Vec<T>>,
    /// Label smoothing in `[0, 1]`, exactly as PyTorch (the smoothing term is
    /// weighted by `weight` and normalized by the same denominator).
    pub label_smoothing: f64,
    /// How the per-row losses are combined.
    pub reduction: Reduction,
}

impl<T> Default for CrossEntropy<T> {
    fn default() -> Self {
        CrossEntropy {
            ignore_index: -100,
            weight: None,
            label_smoothing: 0.0,
            reduction: Reduction::Mean,
        }
    }
}

// ---------------------------------------------------------------- checks

/// `target` and `mask` must have the input's length.
pub(crate) fn check_elementwise(n: usize, target: usize, mask: &Mask) -> Result<()> {
    check_len("target", n, target)?;
    check_len("mask", n, mask.len())
}

/// A hyper-parameter that must be finite and `> 0` (Huber's `delta`).
pub(crate) fn check_positive(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::Param {
            name,
            value: v,
            expected: "finite and > 0",
        })
    }
}

/// Smooth L1's `beta`: finite and `>= 0` (PyTorch accepts 0, which is L1).
pub(crate) fn check_beta(v: f64) -> Result<()> {
    crate::error::check_nonneg("beta", v)
}

/// BCE: lengths, and `pos_weight` non-empty with a length dividing the input's.
pub(crate) fn check_bce(n: usize, target: usize, mask: &Mask, pw: Option<usize>) -> Result<()> {
    check_elementwise(n, target, mask)?;
    if let Some(p) = pw {
        if p == 0 || !n.is_multiple_of(p) {
            return Err(Error::Length {
                arg: "pos_weight",
                expected: n,
                actual: p,
            });
        }
    }
    Ok(())
}

/// Cross-entropy: shape, targets, weight length, label smoothing.
pub(crate) fn check_ce<T: Float>(
    len: usize,
    rows: usize,
    classes: usize,
    targets: &[i64],
    opts: &CrossEntropy<T>,
) -> Result<()> {
    check_shape("logits", rows, classes, len)?;
    check_len("targets", rows, targets.len())?;
    if let Some(w) = &opts.weight {
        check_len("weight", classes, w.len())?;
    }
    let ls = opts.label_smoothing;
    if !(0.0..=1.0).contains(&ls) {
        return Err(Error::Param {
            name: "label_smoothing",
            value: ls,
            expected: "in [0, 1]",
        });
    }
    for (row, &t) in targets.iter().enumerate() {
        if t != opts.ignore_index && (t < 0 || t as u64 >= classes as u64) {
            return Err(Error::Target {
                row,
                value: t,
                classes,
                ignore_index: opts.ignore_index,
            });
        }
    }
    Ok(())
}

/// ECS: shape, a `rows x rows` similarity matrix that can be addressed (with
/// `cols = 0` a huge `rows` passes the shape check; its `rows * rows` must
/// neither overflow nor exceed `isize::MAX` bytes of `f64`) and a finite
/// threshold.
pub(crate) fn check_ecs(len: usize, rows: usize, cols: usize, threshold: f64) -> Result<()> {
    check_shape("embedding", rows, cols, len)?;
    let max = isize::MAX as usize / std::mem::size_of::<f64>();
    if rows.checked_mul(rows).is_none_or(|n| n > max) {
        return Err(Error::Param {
            name: "rows",
            value: rows as f64,
            expected: "such that the rows x rows similarity matrix fits in memory (rows^2 * 8 bytes <= isize::MAX)",
        });
    }
    crate::error::check_finite("threshold", threshold)
}

/// Pearson: shapes of input, target and mask.
pub(crate) fn check_pearson(
    n: usize,
    target: usize,
    mask: &Mask,
    rows: usize,
    cols: usize,
) -> Result<()> {
    check_shape("input", rows, cols, n)?;
    check_elementwise(n, target, mask)
}

// ---------------------------------------------------------------- API

/// Masked mean squared error `(input - target)^2` and its gradient
/// `2 (input - target)` (divided by the kept count for [`Reduction::Mean`]).
///
/// ```
/// use maskops::{loss::{mse, Reduction}, Mask};
/// let l = mse(&[3.0f64, 1.0], &[1.0, 1.0], &Mask::ones(2), Reduction::Sum)?;
/// assert_eq!((l.value[0], l.grad.as_slice()), (4.0, &[4.0, 0.0][..]));
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn mse<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    reduction: Reduction,
) -> Result<Loss<T>> {
    crate::cpu::loss::mse_with(crate::cpu::isa(), input, target, mask, reduction)
}

/// Masked L1 loss `|input - target|`; gradient `sign(input - target)`, 0 at 0.
///
/// ```
/// use maskops::{loss::{l1, Reduction}, Mask};
/// let l = l1(&[3.0f32, 1.0, 0.0], &[1.0, 1.0, 2.0], &Mask::ones(3), Reduction::None)?;
/// assert_eq!(l.value, vec![2.0, 0.0, 2.0]);
/// assert_eq!(l.grad, vec![1.0, 0.0, -1.0]);
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn l1<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    reduction: Reduction,
) -> Result<Loss<T>> {
    crate::cpu::loss::l1_with(crate::cpu::isa(), input, target, mask, reduction)
}

/// Masked Huber loss (PyTorch's `huber_loss` with `delta`): `0.5 d^2` where
/// `|d| < delta`, else `delta (|d| - 0.5 delta)`; gradient
/// `clamp(d, -delta, delta)`. `delta` must be finite and `> 0`.
///
/// ```
/// use maskops::{loss::{huber, Reduction}, Mask};
/// let l = huber(&[0.5f32, 3.0], &[0.0, 0.0], &Mask::ones(2), 1.0, Reduction::None)?;
/// assert_eq!(l.value, vec![0.125, 2.5]);
/// assert_eq!(l.grad, vec![0.5, 1.0]);
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn huber<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    delta: f64,
    reduction: Reduction,
) -> Result<Loss<T>> {
    crate::cpu::loss::huber_with(crate::cpu::isa(), input, target, mask, delta, reduction)
}

/// Masked smooth L1 loss (PyTorch's `smooth_l1_loss` with `beta`):
/// `0.5 d^2 / beta` where `|d| < beta`, else `|d| - 0.5 beta`. `beta` must
/// be finite and `>= 0`; `beta = 0` is the L1 loss, as in PyTorch.
///
/// ```
/// use maskops::{loss::{smooth_l1, Reduction}, Mask};
/// let l = smooth_l1(&[0.5f32, 3.0], &[0.0, 0.0], &Mask::ones(2), 2.0, Reduction::None)?;
/// assert_eq!(l.value, vec![0.0625, 2.0]);
/// assert_eq!(l.grad, vec![0.25, 1.0]);
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn smooth_l1<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    beta: f64,
    reduction: Reduction,
) -> Result<Loss<T>> {
    crate::cpu::loss::smooth_l1_with(crate::cpu::isa(), input, target, mask, beta, reduction)
}

/// Masked binary cross-entropy on logits (PyTorch's
/// `binary_cross_entropy_with_logits`), numerically stable for any logit.
/// With `lw = 1 + (pos_weight - 1) * target` the loss is
/// `(1 - target) x + lw (ln(1 + e^-|x|) + max(-x, 0))` and the gradient
/// `(1 - target) - lw * sigmoid(-x)`. `pos_weight` (length `p` dividing the
/// input length) applies `pos_weight[i % p]` to element `i`: a per-class
/// vector broadcast over a row-major `[n, p]` input, or one value for `p = 1`.
///
/// ```
/// use maskops::{loss::{bce_with_logits, Reduction}, Mask};
/// let l = bce_with_logits(&[0.0f64, 0.0], &[1.0, 0.0], &Mask::ones(2), None, Reduction::Mean)?;
/// assert!((l.value[0] - std::f64::consts::LN_2).abs() < 1e-15);
/// assert_eq!(l.grad, vec![-0.25, 0.25]);
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn bce_with_logits<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    pos_weight: Option<&[T]>,
    reduction: Reduction,
) -> Result<Loss<T>> {
    crate::cpu::loss::bce_with_logits_with(
        crate::cpu::isa(),
        input,
        target,
        mask,
        pos_weight,
        reduction,
    )
}

/// Cross-entropy of row-major `rows x classes` logits against class-index
/// `targets`, exactly as `torch.nn.functional.cross_entropy`: rows whose
/// target is `ignore_index` are skipped (value 0, zero gradient), `weight`
/// scales each row by `weight[target]`, label smoothing mixes in
/// `-sum_c weight[c] log p_c / classes`, and [`Reduction::Mean`] divides by
/// the sum of `weight[target]` over the non-ignored rows (0 if that is 0).
/// [`Reduction::None`] gives one value per row.
///
/// ```
/// use maskops::loss::{cross_entropy, CrossEntropy};
/// // the `-1` trick: the first row is padding
/// let logits = [0.0f32, 0.0, 5.0, 0.0, 0.0, 0.0];
/// let opts = CrossEntropy { ignore_index: -1, ..Default::default() };
/// let l = cross_entropy(&logits, 2, 3, &[-1, 1], &opts)?;
/// assert!((l.value[0] - 3f32.ln()).abs() < 1e-6);
/// assert_eq!(&l.grad[..3], &[0.0, 0.0, 0.0]);
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn cross_entropy<T: Float>(
    logits: &[T],
    rows: usize,
    classes: usize,
    targets: &[i64],
    opts: &CrossEntropy<T>,
) -> Result<Loss<T>> {
    crate::cpu::loss::cross_entropy_with(crate::cpu::isa(), logits, rows, classes, targets, opts)
}

/// scFormer's elastic cell similarity (ECS) loss on a row-major
/// `rows x cols` cell embedding, with its gradient w.r.t. the embedding:
/// rows L2-normalized (`F.normalize`, eps `1e-12`), cosine similarity
/// matrix, diagonal set to 0, ReLU, then `mean(1 - (cos - threshold)^2)`
/// over all `rows^2` entries (scFormer's default threshold is 0.85).
///
/// ```
/// use maskops::loss::ecs;
/// // two orthogonal cells: every entry is 1 - 0.85^2
/// let l = ecs(&[1.0f64, 0.0, 0.0, 2.0], 2, 2, 0.85)?;
/// assert!((l.value[0] - (1.0 - 0.85 * 0.85)).abs() < 1e-12);
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn ecs<T: Float>(embedding: &[T], rows: usize, cols: usize, threshold: f64) -> Result<Loss<T>> {
    crate::cpu::loss::ecs_with(crate::cpu::isa(), embedding, rows, cols, threshold)
}

/// Masked Pearson correlation per row of row-major `rows x cols` `input`
/// and `target` over each row's kept entries (scFormer's evaluation metric;
/// forward only). Rows with fewer than 2 kept entries or zero variance get a
/// cleared bit and value 0.
///
/// ```
/// use maskops::{loss::pearson, Mask};
/// let x = [1.0f64, 2.0, 3.0, 1.0, 1.0, 1.0];
/// let y = [2.0f64, 4.0, 7.0, 1.0, 2.0, 3.0];
/// let r = pearson(&x, &y, &Mask::ones(6), 2, 3)?;
/// assert!(r.get(0).unwrap() > 0.99);
/// assert_eq!(r.get(1), None); // constant input row
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn pearson<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    rows: usize,
    cols: usize,
) -> Result<MaskedVec<T>> {
    crate::cpu::loss::pearson_with(crate::cpu::isa(), input, target, mask, rows, cols)
}

// ------------------------------------------------------ allocation-free variants

/// [`mse`] writing the gradient into `grad` (the input's length) instead of
/// allocating it, so a training loop allocates nothing per step except the
/// returned value (one element unless [`Reduction::None`]).
///
/// ```
/// use maskops::{loss::{mse_into, Reduction}, Mask};
/// let mut grad = vec![0.0f32; 2];
/// let v = mse_into(&[3.0, 1.0], &[1.0, 1.0], &Mask::ones(2), Reduction::Sum, &mut grad)?;
/// assert_eq!((v[0], grad), (4.0, vec![4.0, 0.0]));
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn mse_into<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    reduction: Reduction,
    grad: &mut [T],
) -> Result<Vec<T>> {
    crate::cpu::loss::mse_into_with(crate::cpu::isa(), input, target, mask, reduction, grad)
}

/// [`l1`] writing the gradient into `grad`; returns the value.
pub fn l1_into<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    reduction: Reduction,
    grad: &mut [T],
) -> Result<Vec<T>> {
    crate::cpu::loss::l1_into_with(crate::cpu::isa(), input, target, mask, reduction, grad)
}

/// [`huber`] writing the gradient into `grad`; returns the value.
pub fn huber_into<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    delta: f64,
    reduction: Reduction,
    grad: &mut [T],
) -> Result<Vec<T>> {
    crate::cpu::loss::huber_into_with(
        crate::cpu::isa(),
        input,
        target,
        mask,
        delta,
        reduction,
        grad,
    )
}

/// [`smooth_l1`] writing the gradient into `grad`; returns the value.
pub fn smooth_l1_into<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    beta: f64,
    reduction: Reduction,
    grad: &mut [T],
) -> Result<Vec<T>> {
    crate::cpu::loss::smooth_l1_into_with(
        crate::cpu::isa(),
        input,
        target,
        mask,
        beta,
        reduction,
        grad,
    )
}

/// [`bce_with_logits`] writing the gradient into `grad`; returns the value.
pub fn bce_with_logits_into<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    pos_weight: Option<&[T]>,
    reduction: Reduction,
    grad: &mut [T],
) -> Result<Vec<T>> {
    crate::cpu::loss::bce_with_logits_into_with(
        crate::cpu::isa(),
        input,
        target,
        mask,
        pos_weight,
        reduction,
        grad,
    )
}

/// [`cross_entropy`] writing the gradient into `grad` (the logits' length);
/// returns the value (one per row for [`Reduction::None`]).
///
/// ```
/// use maskops::loss::{cross_entropy_into, CrossEntropy};
/// let mut grad = vec![0.0f32; 4];
/// let v = cross_entropy_into(&[0.0, 0.0, 1.0, 1.0], 2, 2, &[0, -100], &CrossEntropy::default(), &mut grad)?;
/// assert!((v[0] - 2f32.ln()).abs() < 1e-6);
/// assert_eq!(grad, vec![-0.5, 0.5, 0.0, 0.0]);
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn cross_entropy_into<T: Float>(
    logits: &[T],
    rows: usize,
    classes: usize,
    targets: &[i64],
    opts: &CrossEntropy<T>,
    grad: &mut [T],
) -> Result<Vec<T>> {
    crate::cpu::loss::cross_entropy_into_with(
        crate::cpu::isa(),
        logits,
        rows,
        classes,
        targets,
        opts,
        grad,
    )
}

/// The targets with every row that `row_mask` drops replaced by
/// `ignore_index` (borrowed unchanged when nothing is dropped or when the
/// lengths are wrong, which the checks of the unmasked call then report).
fn masked_targets<'a>(
    targets: &'a [i64],
    rows: usize,
    row_mask: &Mask,
    ignore_index: i64,
) -> Result<std::borrow::Cow<'a, [i64]>> {
    use std::borrow::Cow;
    if targets.len() != rows {
        return Ok(Cow::Borrowed(targets));
    }
    check_len("row_mask", rows, row_mask.len())?;
    if row_mask.count_ones() == rows {
        return Ok(Cow::Borrowed(targets));
    }
    Ok(Cow::Owned(
        targets
            .iter()
            .enumerate()
            .map(|(r, &t)| if row_mask.get(r) { t } else { ignore_index })
            .collect(),
    ))
}

/// [`cross_entropy`] with a row mask (padding): a row whose bit in
/// `row_mask` (length `rows`) is 0 is treated exactly as a row whose target
/// is `ignore_index` — value 0, zero gradient, not counted by the mean —
/// whatever its target and logits hold (an out-of-range target or a NaN
/// logit in a padded row is never read). Rows may also be ignored through
/// `ignore_index` as usual; the two combine. The result has the same bits as
/// [`cross_entropy`] with the dropped rows' targets set to `ignore_index`.
///
/// ```
/// use maskops::{loss::{cross_entropy_masked, CrossEntropy}, Mask};
/// // three positions of a sequence; the last one is padding with junk in it
/// let logits = [0.0f32, 0.0, 2.0, 0.0, f32::NAN, 7.0];
/// let targets = [1, 0, 12345];
/// let row_mask = Mask::from_bools(&[true, true, false]);
/// let l = cross_entropy_masked(&logits, 3, 2, &targets, &row_mask, &CrossEntropy::default())?;
/// assert!(l.value[0].is_finite()); // the mean over the two kept rows
/// assert_eq!(&l.grad[4..], &[0.0, 0.0]);
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn cross_entropy_masked<T: Float>(
    logits: &[T],
    rows: usize,
    classes: usize,
    targets: &[i64],
    row_mask: &Mask,
    opts: &CrossEntropy<T>,
) -> Result<Loss<T>> {
    let t = masked_targets(targets, rows, row_mask, opts.ignore_index)?;
    cross_entropy(logits, rows, classes, &t, opts)
}

/// [`cross_entropy_masked`] writing the gradient into `grad` (the logits'
/// length); returns the value (one per row for [`Reduction::None`]).
///
/// ```
/// use maskops::{loss::{cross_entropy_masked_into, CrossEntropy}, Mask};
/// let mut grad = vec![1.0f32; 4];
/// let row_mask = Mask::from_bools(&[true, false]);
/// let v = cross_entropy_masked_into(
///     &[0.0, 0.0, 1.0, 1.0], 2, 2, &[0, 1], &row_mask, &CrossEntropy::default(), &mut grad,
/// )?;
/// assert!((v[0] - 2f32.ln()).abs() < 1e-6);
/// assert_eq!(grad, vec![-0.5, 0.5, 0.0, 0.0]);
/// # Ok::<(), maskops::Error>(())
/// ```
pub fn cross_entropy_masked_into<T: Float>(
    logits: &[T],
    rows: usize,
    classes: usize,
    targets: &[i64],
    row_mask: &Mask,
    opts: &CrossEntropy<T>,
    grad: &mut [T],
) -> Result<Vec<T>> {
    let t = masked_targets(targets, rows, row_mask, opts.ignore_index)?;
    cross_entropy_into(logits, rows, classes, &t, opts, grad)
}
