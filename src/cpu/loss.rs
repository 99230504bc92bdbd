//! Dispatch for the loss family: the only caller of the loss kernels in the
//! ISA rooms. Every `*_with(isa, …)` entry gives the same bits for every
//! `isa` (tests iterate over [`Isa::all_available`]).

use crate::cpu::Isa;
use crate::element::Float;
use crate::error::Result;
use crate::loss::{CrossEntropy, Loss, Reduction};
use crate::mask::Mask;
use crate::reference::loss as reference;

/// [`crate::loss::mse`] on the given ISA.
pub fn mse_with<T: Float>(
    _isa: Isa,
    input: &[T],
    target: &[T],
    mask: &Mask,
    reduction: Reduction,
) -> Result<Loss<T>> {
    reference::mse(input, target, mask, reduction)
}

/// [`crate::loss::l1`] on the given ISA.
pub fn l1_with<T: Float>(
    _isa: Isa,
    input: &[T],
    target: &[T],
    mask: &Mask,
    reduction: Reduction,
) -> Result<Loss<T>> {
    reference::l1(input, target, mask, reduction)
}

/// [`crate::loss::huber`] on the given ISA.
pub fn huber_with<T: Float>(
    _isa: Isa,
    input: &[T],
    target: &[T],
    mask: &Mask,
    delta: f64,
    reduction: Reduction,
) -> Result<Loss<T>> {
    reference::huber(input, target, mask, delta, reduction)
}

/// [`crate::loss::smooth_l1`] on the given ISA.
pub fn smooth_l1_with<T: Float>(
    _isa: Isa,
    input: &[T],
    target: &[T],
    mask: &Mask,
    beta: f64,
    reduction: Reduction,
) -> Result<Loss<T>> {
    reference::smooth_l1(input, target, mask, beta, reduction)
}

/// [`crate::loss::bce_with_logits`] on the given ISA.
pub fn bce_with_logits_with<T: Float>(
    _isa: Isa,
    input: &[T],
    target: &[T],
    mask: &Mask,
    pos_weight: Option<&[T]>,
    reduction: Reduction,
) -> Result<Loss<T>> {
    reference::bce_with_logits(input, target, mask, pos_weight, reduction)
}

/// [`crate::loss::cross_entropy`] on the given ISA.
pub fn cross_entropy_with<T: Float>(
    _isa: Isa,
    logits: &[T],
    rows: usize,
    classes: usize,
    targets: &[i64],
    opts: &CrossEntropy<T>,
) -> Result<Loss<T>> {
    reference::cross_entropy(logits, rows, classes, targets, opts)
}
