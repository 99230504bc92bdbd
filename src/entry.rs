//! The crate's kernels, instantiated once per element type, here.
//!
//! Every public generic function (`MaskedView::sum`, `loss::mse`,
//! `MaskedArray::add`, ...) ends in a call to a method of
//! [`ElementKernels`] or [`FloatKernels`]. Both traits are sealed
//! supertraits of [`crate::Element`] / [`crate::Float`], implemented below
//! for each concrete type by plain (non-generic, never inlined) methods
//! whose bodies call the generic kernel code with that type. A caller's
//! crate therefore instantiates only the thin generic shell around the
//! call; the kernel bodies are compiled and optimized once, in maskops.
//! The optimizers do the same through `optim::AdagradElement`.

use crate::array::{BinaryOp, UnaryOp};
use crate::cpu::elementwise::{self as ew, Rhs};
use crate::cpu::loss as cl;
use crate::cpu::reduce::{self as cr, ArgReduction, Reduction};
use crate::cpu::Isa;
use crate::error::Result;
use crate::loss::{CrossEntropy, Loss, Reduction as LossReduction};
use crate::mask::Mask;
use crate::view::{MaskedVec, MaskedView};

/// Reductions and softmax, for every element type.
pub trait ElementKernels: Sized {
    /// A whole-array reduction.
    fn k_reduce(isa: Isa, view: &MaskedView<'_, Self>, op: Reduction) -> Option<Self>;
    /// A reduction along `dim`.
    fn k_reduce_dim(
        isa: Isa,
        view: &MaskedView<'_, Self>,
        dim: usize,
        op: Reduction,
    ) -> Result<MaskedVec<Self>>;
    /// Whole-array argmin / argmax.
    fn k_arg(isa: Isa, view: &MaskedView<'_, Self>, op: ArgReduction) -> Option<usize>;
    /// Argmin / argmax along `dim`.
    fn k_arg_dim(
        isa: Isa,
        view: &MaskedView<'_, Self>,
        dim: usize,
        op: ArgReduction,
    ) -> Result<MaskedVec<usize>>;
    /// A whole-array reduction under a mask produced piece by piece.
    fn k_reduce_expanded(isa: Isa, x: &[Self], ex: cr::Expand<'_>, op: Reduction) -> Option<Self>;
    /// Whole-array argmin / argmax under a mask produced piece by piece.
    fn k_arg_expanded(isa: Isa, x: &[Self], ex: cr::Expand<'_>, op: ArgReduction) -> Option<usize>;
    /// Softmax / log-softmax into `out`.
    fn k_softmax_into(
        isa: Isa,
        view: &MaskedView<'_, Self>,
        dim: usize,
        log: bool,
        out: &mut [Self],
    ) -> Result<()>;
    /// Softmax / log-softmax backward.
    fn k_softmax_backward(
        isa: Isa,
        out: &MaskedView<'_, Self>,
        grad: &[Self],
        dim: usize,
        log: bool,
    ) -> Result<MaskedVec<Self>>;
}

macro_rules! element_kernels {
    ($($t:ty),*) => {$(
        impl ElementKernels for $t {
            #[inline(never)]
            fn k_reduce(isa: Isa, view: &MaskedView<'_, $t>, op: Reduction) -> Option<$t> {
                cr::reduce_with_imp(isa, view, op)
            }
            #[inline(never)]
            fn k_reduce_dim(
                isa: Isa,
                view: &MaskedView<'_, $t>,
                dim: usize,
                op: Reduction,
            ) -> Result<MaskedVec<$t>> {
                cr::reduce_dim_with_imp(isa, view, dim, op)
            }
            #[inline(never)]
            fn k_arg(isa: Isa, view: &MaskedView<'_, $t>, op: ArgReduction) -> Option<usize> {
                cr::arg_with_imp(isa, view, op)
            }
            #[inline(never)]
            fn k_arg_dim(
                isa: Isa,
                view: &MaskedView<'_, $t>,
                dim: usize,
                op: ArgReduction,
            ) -> Result<MaskedVec<usize>> {
                cr::arg_dim_with_imp(isa, view, dim, op)
            }
            #[inline(never)]
            fn k_reduce_expanded(
                isa: Isa,
                x: &[$t],
                ex: cr::Expand<'_>,
                op: Reduction,
            ) -> Option<$t> {
                cr::reduce_expanded_imp(isa, x, ex, op)
            }
            #[inline(never)]
            fn k_arg_expanded(
                isa: Isa,
                x: &[$t],
                ex: cr::Expand<'_>,
                op: ArgReduction,
            ) -> Option<usize> {
                cr::arg_expanded_imp(isa, x, ex, op)
            }
            #[inline(never)]
            fn k_softmax_into(
                isa: Isa,
                view: &MaskedView<'_, $t>,
                dim: usize,
                log: bool,
                out: &mut [$t],
            ) -> Result<()> {
                cr::softmax_into_with_imp(isa, view, dim, log, out)
            }
            #[inline(never)]
            fn k_softmax_backward(
                isa: Isa,
                out: &MaskedView<'_, $t>,
                grad: &[$t],
                dim: usize,
                log: bool,
            ) -> Result<MaskedVec<$t>> {
                cr::softmax_backward_with_imp(isa, out, grad, dim, log)
            }
        }
    )*};
}
element_kernels!(f32, f64, half::f16, half::bf16);

/// Losses and masked arithmetic, for `f32` and `f64`.
#[allow(clippy::too_many_arguments)]
pub trait FloatKernels: Sized {
    /// Masked MSE into `grad`; returns the value.
    fn k_mse(
        isa: Isa,
        input: &[Self],
        target: &[Self],
        mask: &Mask,
        reduction: LossReduction,
        grad: &mut [Self],
    ) -> Result<Vec<Self>>;
    /// Masked L1 into `grad`.
    fn k_l1(
        isa: Isa,
        input: &[Self],
        target: &[Self],
        mask: &Mask,
        reduction: LossReduction,
        grad: &mut [Self],
    ) -> Result<Vec<Self>>;
    /// Masked Huber into `grad`.
    fn k_huber(
        isa: Isa,
        input: &[Self],
        target: &[Self],
        mask: &Mask,
        delta: f64,
        reduction: LossReduction,
        grad: &mut [Self],
    ) -> Result<Vec<Self>>;
    /// Masked smooth L1 into `grad`.
    fn k_smooth_l1(
        isa: Isa,
        input: &[Self],
        target: &[Self],
        mask: &Mask,
        beta: f64,
        reduction: LossReduction,
        grad: &mut [Self],
    ) -> Result<Vec<Self>>;
    /// Masked BCE with logits into `grad`.
    fn k_bce(
        isa: Isa,
        input: &[Self],
        target: &[Self],
        mask: &Mask,
        pos_weight: Option<&[Self]>,
        reduction: LossReduction,
        grad: &mut [Self],
    ) -> Result<Vec<Self>>;
    /// Cross-entropy into `grad`.
    fn k_cross_entropy(
        isa: Isa,
        logits: &[Self],
        rows: usize,
        classes: usize,
        targets: &[i64],
        opts: &CrossEntropy<Self>,
        grad: &mut [Self],
    ) -> Result<Vec<Self>>;
    /// Elastic cell similarity.
    fn k_ecs(
        isa: Isa,
        embedding: &[Self],
        rows: usize,
        cols: usize,
        threshold: f64,
    ) -> Result<Loss<Self>>;
    /// Masked Pearson correlation per row.
    fn k_pearson(
        isa: Isa,
        input: &[Self],
        target: &[Self],
        mask: &Mask,
        rows: usize,
        cols: usize,
    ) -> Result<MaskedVec<Self>>;
    /// Unary op on the kept elements into `dst`.
    fn k_unary(
        isa: Isa,
        op: UnaryOp<Self>,
        src: &[Self],
        mask: &Mask,
        dst: &mut [Self],
    ) -> Result<()>;
    /// Unary op on the kept elements, in place.
    fn k_unary_inplace(isa: Isa, op: UnaryOp<Self>, x: &mut [Self], mask: &Mask) -> Result<()>;
    /// Binary op on the kept elements into `dst`.
    fn k_binary(
        isa: Isa,
        op: BinaryOp,
        a: &[Self],
        rhs: Rhs<'_, Self>,
        rows: usize,
        cols: usize,
        mask: &Mask,
        dst: &mut [Self],
    ) -> Result<()>;
    /// Binary op on the kept elements, in place.
    fn k_binary_inplace(
        isa: Isa,
        op: BinaryOp,
        a: &mut [Self],
        rhs: Rhs<'_, Self>,
        rows: usize,
        cols: usize,
        mask: &Mask,
    ) -> Result<()>;
    /// Kept values, `fill` elsewhere.
    fn k_select(values: &[Self], mask: &Mask, fill: Self, out: &mut [Self]) -> Result<()>;
}

macro_rules! float_kernels {
    ($($t:ty),*) => {$(
        impl FloatKernels for $t {
            #[inline(never)]
            fn k_mse(
                isa: Isa,
                input: &[$t],
                target: &[$t],
                mask: &Mask,
                reduction: LossReduction,
                grad: &mut [$t],
            ) -> Result<Vec<$t>> {
                cl::mse_imp(isa, input, target, mask, reduction, grad)
            }
            #[inline(never)]
            fn k_l1(
                isa: Isa,
                input: &[$t],
                target: &[$t],
                mask: &Mask,
                reduction: LossReduction,
                grad: &mut [$t],
            ) -> Result<Vec<$t>> {
                cl::l1_imp(isa, input, target, mask, reduction, grad)
            }
            #[inline(never)]
            fn k_huber(
                isa: Isa,
                input: &[$t],
                target: &[$t],
                mask: &Mask,
                delta: f64,
                reduction: LossReduction,
                grad: &mut [$t],
            ) -> Result<Vec<$t>> {
                cl::huber_imp(isa, input, target, mask, delta, reduction, grad)
            }
            #[inline(never)]
            fn k_smooth_l1(
                isa: Isa,
                input: &[$t],
                target: &[$t],
                mask: &Mask,
                beta: f64,
                reduction: LossReduction,
                grad: &mut [$t],
            ) -> Result<Vec<$t>> {
                cl::smooth_l1_imp(isa, input, target, mask, beta, reduction, grad)
            }
            #[inline(never)]
            fn k_bce(
                isa: Isa,
                input: &[$t],
                target: &[$t],
                mask: &Mask,
                pos_weight: Option<&[$t]>,
                reduction: LossReduction,
                grad: &mut [$t],
            ) -> Result<Vec<$t>> {
                cl::bce_with_logits_into_with_imp(isa, input, target, mask, pos_weight, reduction, grad)
            }
            #[inline(never)]
            fn k_cross_entropy(
                isa: Isa,
                logits: &[$t],
                rows: usize,
                classes: usize,
                targets: &[i64],
                opts: &CrossEntropy<$t>,
                grad: &mut [$t],
            ) -> Result<Vec<$t>> {
                cl::cross_entropy_into_with_imp(isa, logits, rows, classes, targets, opts, grad)
            }
            #[inline(never)]
            fn k_ecs(
                isa: Isa,
                embedding: &[$t],
                rows: usize,
                cols: usize,
                threshold: f64,
            ) -> Result<Loss<$t>> {
                cl::ecs_with_imp(isa, embedding, rows, cols, threshold)
            }
            #[inline(never)]
            fn k_pearson(
                isa: Isa,
                input: &[$t],
                target: &[$t],
                mask: &Mask,
                rows: usize,
                cols: usize,
            ) -> Result<MaskedVec<$t>> {
                cl::pearson_with_imp(isa, input, target, mask, rows, cols)
            }
            #[inline(never)]
            fn k_unary(
                isa: Isa,
                op: UnaryOp<$t>,
                src: &[$t],
                mask: &Mask,
                dst: &mut [$t],
            ) -> Result<()> {
                ew::unary_with_imp(isa, op, src, mask, dst)
            }
            #[inline(never)]
            fn k_unary_inplace(isa: Isa, op: UnaryOp<$t>, x: &mut [$t], mask: &Mask) -> Result<()> {
                ew::unary_inplace_with_imp(isa, op, x, mask)
            }
            #[inline(never)]
            fn k_binary(
                isa: Isa,
                op: BinaryOp,
                a: &[$t],
                rhs: Rhs<'_, $t>,
                rows: usize,
                cols: usize,
                mask: &Mask,
                dst: &mut [$t],
            ) -> Result<()> {
                ew::binary_with_imp(isa, op, a, rhs, rows, cols, mask, dst)
            }
            #[inline(never)]
            fn k_binary_inplace(
                isa: Isa,
                op: BinaryOp,
                a: &mut [$t],
                rhs: Rhs<'_, $t>,
                rows: usize,
                cols: usize,
                mask: &Mask,
            ) -> Result<()> {
                ew::binary_inplace_with_imp(isa, op, a, rhs, rows, cols, mask)
            }
            #[inline(never)]
            fn k_select(values: &[$t], mask: &Mask, fill: $t, out: &mut [$t]) -> Result<()> {
                ew::select_imp(values, mask, fill, out)
            }
        }
    )*};
}
float_kernels!(f32, f64);
