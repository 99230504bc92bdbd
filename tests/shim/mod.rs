//! The per-ISA entry points the tests call (`*_with(isa, ...)`), written on
//! the public API: [`maskops::backend::with_isa`] forces the ISA for one
//! call, and the thresholds go through [`maskops::backend::set_threshold`].
//! Each test file takes what it needs (`mod shim;`); the rest is unused there.
#![allow(dead_code)]

use maskops::backend::{set_threshold, threshold, with_isa, Isa, Threshold};

pub mod loss {
    use super::*;
    use maskops::loss::{self, CrossEntropy, Loss, Reduction};
    use maskops::{Float, Mask, MaskedVec, Result};

    pub const PAR_MIN_ELEMS: usize = 1 << 17;
    pub const STREAM_MIN_ELEMS: usize = 1 << 22;

    pub fn set_par_min_elems(n: usize) {
        set_threshold(Threshold::Loss, n)
    }
    pub fn set_stream_min_elems(n: usize) {
        set_threshold(Threshold::LossStream, n)
    }
    pub fn mse_with<T: Float>(
        isa: Isa,
        x: &[T],
        y: &[T],
        m: &Mask,
        r: Reduction,
    ) -> Result<Loss<T>> {
        with_isa(isa, || loss::mse(x, y, m, r))
    }
    pub fn l1_with<T: Float>(
        isa: Isa,
        x: &[T],
        y: &[T],
        m: &Mask,
        r: Reduction,
    ) -> Result<Loss<T>> {
        with_isa(isa, || loss::l1(x, y, m, r))
    }
    pub fn huber_with<T: Float>(
        isa: Isa,
        x: &[T],
        y: &[T],
        m: &Mask,
        delta: f64,
        r: Reduction,
    ) -> Result<Loss<T>> {
        with_isa(isa, || loss::huber(x, y, m, delta, r))
    }
    pub fn smooth_l1_with<T: Float>(
        isa: Isa,
        x: &[T],
        y: &[T],
        m: &Mask,
        beta: f64,
        r: Reduction,
    ) -> Result<Loss<T>> {
        with_isa(isa, || loss::smooth_l1(x, y, m, beta, r))
    }
    pub fn bce_with_logits_with<T: Float>(
        isa: Isa,
        x: &[T],
        y: &[T],
        m: &Mask,
        pw: Option<&[T]>,
        r: Reduction,
    ) -> Result<Loss<T>> {
        with_isa(isa, || loss::bce_with_logits(x, y, m, pw, r))
    }
    pub fn cross_entropy_with<T: Float>(
        isa: Isa,
        logits: &[T],
        rows: usize,
        classes: usize,
        targets: &[i64],
        opts: &CrossEntropy<T>,
    ) -> Result<Loss<T>> {
        with_isa(isa, || {
            loss::cross_entropy(logits, rows, classes, targets, opts)
        })
    }
    pub fn ecs_with<T: Float>(
        isa: Isa,
        e: &[T],
        rows: usize,
        cols: usize,
        thr: f64,
    ) -> Result<Loss<T>> {
        with_isa(isa, || loss::ecs(e, rows, cols, thr))
    }
    pub fn pearson_with<T: Float>(
        isa: Isa,
        x: &[T],
        y: &[T],
        m: &Mask,
        rows: usize,
        cols: usize,
    ) -> Result<MaskedVec<T>> {
        with_isa(isa, || loss::pearson(x, y, m, rows, cols))
    }
    pub fn mse_into_with<T: Float>(
        isa: Isa,
        x: &[T],
        y: &[T],
        m: &Mask,
        r: Reduction,
        g: &mut [T],
    ) -> Result<Vec<T>> {
        with_isa(isa, || loss::mse_into(x, y, m, r, g))
    }
    pub fn l1_into_with<T: Float>(
        isa: Isa,
        x: &[T],
        y: &[T],
        m: &Mask,
        r: Reduction,
        g: &mut [T],
    ) -> Result<Vec<T>> {
        with_isa(isa, || loss::l1_into(x, y, m, r, g))
    }
    pub fn huber_into_with<T: Float>(
        isa: Isa,
        x: &[T],
        y: &[T],
        m: &Mask,
        delta: f64,
        r: Reduction,
        g: &mut [T],
    ) -> Result<Vec<T>> {
        with_isa(isa, || loss::huber_into(x, y, m, delta, r, g))
    }
    pub fn smooth_l1_into_with<T: Float>(
        isa: Isa,
        x: &[T],
        y: &[T],
        m: &Mask,
        beta: f64,
        r: Reduction,
        g: &mut [T],
    ) -> Result<Vec<T>> {
        with_isa(isa, || loss::smooth_l1_into(x, y, m, beta, r, g))
    }
    #[allow(clippy::too_many_arguments)]
    pub fn bce_with_logits_into_with<T: Float>(
        isa: Isa,
        x: &[T],
        y: &[T],
        m: &Mask,
        pw: Option<&[T]>,
        r: Reduction,
        g: &mut [T],
    ) -> Result<Vec<T>> {
        with_isa(isa, || loss::bce_with_logits_into(x, y, m, pw, r, g))
    }
    #[allow(clippy::too_many_arguments)]
    pub fn cross_entropy_into_with<T: Float>(
        isa: Isa,
        logits: &[T],
        rows: usize,
        classes: usize,
        targets: &[i64],
        opts: &CrossEntropy<T>,
        g: &mut [T],
    ) -> Result<Vec<T>> {
        with_isa(isa, || {
            loss::cross_entropy_into(logits, rows, classes, targets, opts, g)
        })
    }
    pub fn exp_with(isa: Isa, x: &[f32], out: &mut [f32]) -> Result<()> {
        with_isa(isa, || maskops::math::exp_into(x, out))
    }
    pub fn ln_with(isa: Isa, x: &[f32], out: &mut [f32]) -> Result<()> {
        with_isa(isa, || maskops::math::ln_into(x, out))
    }
}

pub mod reduce {
    use super::*;
    use maskops::{Element, MaskedVec, MaskedView, Result};

    pub const PAR_MIN_LEN: usize = 1 << 17;

    pub fn set_par_min_len(n: usize) {
        set_threshold(Threshold::Reduce, n.max(1))
    }
    pub fn par_min_len() -> usize {
        threshold(Threshold::Reduce)
    }

    /// A whole-array or per-dim reduction, by name.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub enum Reduction {
        Sum,
        Mean,
        Prod,
        Amin,
        Amax,
        Var { correction: usize },
        Std { correction: usize },
        Norm { p: f64 },
        LogSumExp,
    }

    /// Argmin / argmax.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ArgReduction {
        Argmin,
        Argmax,
    }

    pub fn reduce_with<T: Element>(isa: Isa, v: &MaskedView<'_, T>, op: Reduction) -> Option<T> {
        with_isa(isa, || reduce(v, op))
    }
    pub fn reduce<T: Element>(v: &MaskedView<'_, T>, op: Reduction) -> Option<T> {
        match op {
            Reduction::Sum => v.sum(),
            Reduction::Mean => v.mean(),
            Reduction::Prod => v.prod(),
            Reduction::Amin => v.amin(),
            Reduction::Amax => v.amax(),
            Reduction::Var { correction } => v.var(correction),
            Reduction::Std { correction } => v.std(correction),
            Reduction::Norm { p } => v.norm(p),
            Reduction::LogSumExp => v.logsumexp(),
        }
    }
    pub fn reduce_dim_with<T: Element>(
        isa: Isa,
        v: &MaskedView<'_, T>,
        dim: usize,
        op: Reduction,
    ) -> Result<MaskedVec<T>> {
        with_isa(isa, || reduce_dim(v, dim, op))
    }
    pub fn reduce_dim<T: Element>(
        v: &MaskedView<'_, T>,
        dim: usize,
        op: Reduction,
    ) -> Result<MaskedVec<T>> {
        match op {
            Reduction::Sum => v.sum_dim(dim),
            Reduction::Mean => v.mean_dim(dim),
            Reduction::Prod => v.prod_dim(dim),
            Reduction::Amin => v.amin_dim(dim),
            Reduction::Amax => v.amax_dim(dim),
            Reduction::Var { correction } => v.var_dim(dim, correction),
            Reduction::Std { correction } => v.std_dim(dim, correction),
            Reduction::Norm { p } => v.norm_dim(dim, p),
            Reduction::LogSumExp => v.logsumexp_dim(dim),
        }
    }
    pub fn arg_with<T: Element>(
        isa: Isa,
        v: &MaskedView<'_, T>,
        op: ArgReduction,
    ) -> Option<usize> {
        with_isa(isa, || arg(v, op))
    }
    pub fn arg<T: Element>(v: &MaskedView<'_, T>, op: ArgReduction) -> Option<usize> {
        match op {
            ArgReduction::Argmin => v.argmin(),
            ArgReduction::Argmax => v.argmax(),
        }
    }
    pub fn arg_dim_with<T: Element>(
        isa: Isa,
        v: &MaskedView<'_, T>,
        dim: usize,
        op: ArgReduction,
    ) -> Result<MaskedVec<usize>> {
        with_isa(isa, || arg_dim(v, dim, op))
    }
    pub fn arg_dim<T: Element>(
        v: &MaskedView<'_, T>,
        dim: usize,
        op: ArgReduction,
    ) -> Result<MaskedVec<usize>> {
        match op {
            ArgReduction::Argmin => v.argmin_dim(dim),
            ArgReduction::Argmax => v.argmax_dim(dim),
        }
    }
    pub fn softmax_with<T: Element>(
        isa: Isa,
        v: &MaskedView<'_, T>,
        dim: usize,
        log: bool,
    ) -> Result<MaskedVec<T>> {
        with_isa(isa, || {
            if log {
                v.log_softmax(dim)
            } else {
                v.softmax(dim)
            }
        })
    }
    pub fn softmax<T: Element>(
        v: &MaskedView<'_, T>,
        dim: usize,
        log: bool,
    ) -> Result<MaskedVec<T>> {
        softmax_with(maskops::backend::isa(), v, dim, log)
    }
    pub fn softmax_backward<T: Element>(
        out: &MaskedView<'_, T>,
        grad: &[T],
        dim: usize,
        log: bool,
    ) -> Result<MaskedVec<T>> {
        softmax_backward_with(maskops::backend::isa(), out, grad, dim, log)
    }
    pub fn softmax_into<T: Element>(
        v: &MaskedView<'_, T>,
        dim: usize,
        log: bool,
        out: &mut [T],
    ) -> Result<()> {
        if log {
            maskops::softmax::log_softmax_into(v, dim, out)
        } else {
            maskops::softmax::softmax_into(v, dim, out)
        }
    }
    pub fn softmax_backward_with<T: Element>(
        isa: Isa,
        out: &MaskedView<'_, T>,
        grad: &[T],
        dim: usize,
        log: bool,
    ) -> Result<MaskedVec<T>> {
        with_isa(isa, || {
            if log {
                maskops::softmax::log_softmax_backward(out, grad, dim)
            } else {
                maskops::softmax::softmax_backward(out, grad, dim)
            }
        })
    }
}

pub mod elementwise {
    use super::*;
    use maskops::{BinaryOp, Float, Mask, MaskPolicy, MaskedArray, Operand, Result, UnaryOp};

    pub const PAR_MIN_LEN: usize = 1 << 21;

    pub fn set_parallel_min_len(n: usize) {
        set_threshold(Threshold::Elementwise, n)
    }
    pub fn parallel_min_len() -> usize {
        threshold(Threshold::Elementwise)
    }

    /// The second operand of a binary op.
    #[derive(Debug, Clone, Copy)]
    pub enum Rhs<'a, T> {
        Slice(&'a [T]),
        Row(&'a [T]),
        Col(&'a [T]),
        Scalar(T),
    }

    fn operand<T>(r: Rhs<'_, T>) -> Operand<'_, T> {
        match r {
            Rhs::Slice(s) => Operand::Dense(s),
            Rhs::Row(s) => Operand::Row(s),
            Rhs::Col(s) => Operand::Col(s),
            Rhs::Scalar(v) => Operand::Scalar(v),
        }
    }

    /// `dst[i] = op(src[i])` where kept; other slots of `dst` untouched.
    pub fn unary_with<T: Float>(
        isa: Isa,
        op: UnaryOp<T>,
        src: &[T],
        mask: &Mask,
        dst: &mut [T],
    ) -> Result<()> {
        let a = MaskedArray::new(src.to_vec(), mask.clone())?;
        a.map_into_with(isa, op, dst)
    }
    pub fn unary_inplace_with<T: Float>(
        isa: Isa,
        op: UnaryOp<T>,
        x: &mut [T],
        mask: &Mask,
    ) -> Result<()> {
        let mut a = MaskedArray::new(x.to_vec(), mask.clone())?;
        a.map_assign_with(isa, op)?;
        x.copy_from_slice(a.values());
        Ok(())
    }
    pub fn unary_inplace<T: Float>(op: UnaryOp<T>, x: &mut [T], mask: &Mask) -> Result<()> {
        unary_inplace_with(maskops::backend::isa(), op, x, mask)
    }
    #[allow(clippy::too_many_arguments)]
    pub fn binary_with<T: Float>(
        isa: Isa,
        op: BinaryOp,
        a: &[T],
        rhs: Rhs<'_, T>,
        rows: usize,
        cols: usize,
        mask: &Mask,
        dst: &mut [T],
    ) -> Result<()> {
        let a = MaskedArray::matrix(a.to_vec(), mask.clone(), rows, cols)?;
        a.binary_into_with(isa, op, operand(rhs), MaskPolicy::Match, dst)
    }
    #[allow(clippy::too_many_arguments)]
    pub fn binary<T: Float>(
        op: BinaryOp,
        a: &[T],
        rhs: Rhs<'_, T>,
        rows: usize,
        cols: usize,
        mask: &Mask,
        dst: &mut [T],
    ) -> Result<()> {
        binary_with(maskops::backend::isa(), op, a, rhs, rows, cols, mask, dst)
    }
    pub fn binary_inplace_with<T: Float>(
        isa: Isa,
        op: BinaryOp,
        a: &mut [T],
        rhs: Rhs<'_, T>,
        rows: usize,
        cols: usize,
        mask: &Mask,
    ) -> Result<()> {
        let mut m = MaskedArray::matrix(a.to_vec(), mask.clone(), rows, cols)?;
        m.binary_assign_with(isa, op, operand(rhs), MaskPolicy::Match)?;
        a.copy_from_slice(m.values());
        Ok(())
    }
    pub fn binary_inplace<T: Float>(
        op: BinaryOp,
        a: &mut [T],
        rhs: Rhs<'_, T>,
        rows: usize,
        cols: usize,
        mask: &Mask,
    ) -> Result<()> {
        binary_inplace_with(maskops::backend::isa(), op, a, rhs, rows, cols, mask)
    }
}
