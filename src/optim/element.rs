//! Parameter element types the optimizers accept.

use crate::cpu::{
    self,
    adagrad::{GroupedRows, Hp},
    arch::portable::adagrad as portable,
    Isa,
};
use crate::element::{Element, Float};
use crate::error::Result;
use crate::optim::{Adagrad, AdagradState, RowwiseAdagrad, Workspace};
use crate::view::MaskedView;
use half::{bf16, f16};

/// A parameter element type: `f32`, `f64`, `half::f16` or `half::bf16`.
///
/// `State` is the type of the accumulator and of the arithmetic: the type
/// itself for `f32`/`f64`, `f32` for the half types (PyTorch's fp16 `eps`
/// underflow, where a zero gradient gives `0 / 0 = NaN`, cannot happen).
///
/// The `k_*` methods are the kernel hooks the optimizers call (SIMD through
/// `crate::cpu::adagrad` for `f32`/`f64`, portable code for the half types);
/// they are not part of the public API.
pub trait AdagradElement: Element {
    /// Accumulator and arithmetic type.
    type State: Float;
    /// Widening to the state type (exact).
    fn to_state(self) -> Self::State;
    /// Rounding back from the state type (to nearest even).
    fn from_state(s: Self::State) -> Self;

    /// Dense update.
    #[doc(hidden)]
    fn k_dense(isa: Isa, p: &mut [Self], s: &mut [Self::State], g: &[Self], h: &Hp<Self::State>) {
        let _ = isa;
        portable::dense(p, s, g, h)
    }

    /// Masked update (bit `i` of `words` keeps element `i`).
    #[doc(hidden)]
    fn k_masked(
        isa: Isa,
        p: &mut [Self],
        s: &mut [Self::State],
        g: &[Self],
        words: &[u64],
        h: &Hp<Self::State>,
    ) {
        let _ = isa;
        portable::masked(p, s, g, words, h)
    }

    /// [`Adagrad::step_dense_with`] for this type.
    #[doc(hidden)]
    fn k_step_dense(
        opt: &Adagrad,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [Self],
        grad: &[Self],
        state: &mut AdagradState<Self::State>,
    ) -> Result<()>;

    /// [`Adagrad::step_masked_with`] for this type.
    #[doc(hidden)]
    fn k_step_masked(
        opt: &Adagrad,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [Self],
        grad: &MaskedView<'_, Self>,
        state: &mut AdagradState<Self::State>,
    ) -> Result<()>;

    /// [`Adagrad::step_coo_with`] for this type.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn k_step_coo(
        opt: &Adagrad,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [Self],
        rows: usize,
        cols: usize,
        row_inds: &[usize],
        col_inds: &[usize],
        values: &[Self],
        state: &mut AdagradState<Self::State>,
    ) -> Result<()>;

    /// [`Adagrad::step_sparse_vec_with`] for this type.
    #[doc(hidden)]
    fn k_step_sparse_vec(
        opt: &Adagrad,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [Self],
        grad: &sprs::CsVec<Self>,
        state: &mut AdagradState<Self::State>,
    ) -> Result<()>;

    /// [`Adagrad::step_rows_with`] for this type.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn k_step_rows(
        opt: &Adagrad,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [Self],
        rows: usize,
        cols: usize,
        row_indices: &[usize],
        values: &[Self],
        state: &mut AdagradState<Self::State>,
    ) -> Result<()>;

    /// [`RowwiseAdagrad::step_dense`] for this type.
    #[doc(hidden)]
    fn k_rowwise_dense(
        opt: &RowwiseAdagrad,
        param: &mut [Self],
        rows: usize,
        cols: usize,
        grad: &[Self],
        state: &mut AdagradState<Self::State>,
    ) -> Result<()>;

    /// [`RowwiseAdagrad::step_rows_with`] for this type.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn k_rowwise_rows(
        opt: &RowwiseAdagrad,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [Self],
        rows: usize,
        cols: usize,
        row_indices: &[usize],
        values: &[Self],
        state: &mut AdagradState<Self::State>,
    ) -> Result<()>;

    /// A row-sparse step over sorted items (see `crate::cpu::adagrad::rows_f32`).
    #[doc(hidden)]
    fn k_rows(isa: Isa, param: &mut [Self], sum: &mut [Self::State], g: &GroupedRows<'_, Self>) {
        let _ = isa;
        portable::rows(param, sum, g)
    }
}

/// The step entry points of one concrete type: plain methods (compiled in
/// maskops) that call the generic step bodies with that type.
macro_rules! step_entries {
    ($t:ty) => {
        #[inline(never)]
        fn k_step_dense(
            opt: &Adagrad,
            isa: Isa,
            ws: &mut Workspace,
            param: &mut [$t],
            grad: &[$t],
            state: &mut AdagradState<Self::State>,
        ) -> Result<()> {
            opt.dense_imp(isa, ws, param, grad, state)
        }
        #[inline(never)]
        fn k_step_masked(
            opt: &Adagrad,
            isa: Isa,
            ws: &mut Workspace,
            param: &mut [$t],
            grad: &MaskedView<'_, $t>,
            state: &mut AdagradState<Self::State>,
        ) -> Result<()> {
            opt.masked_imp(isa, ws, param, grad, state)
        }
        #[inline(never)]
        fn k_step_coo(
            opt: &Adagrad,
            isa: Isa,
            ws: &mut Workspace,
            param: &mut [$t],
            rows: usize,
            cols: usize,
            row_inds: &[usize],
            col_inds: &[usize],
            values: &[$t],
            state: &mut AdagradState<Self::State>,
        ) -> Result<()> {
            opt.coo_imp(
                isa, ws, param, rows, cols, row_inds, col_inds, values, state,
            )
        }
        #[inline(never)]
        fn k_step_sparse_vec(
            opt: &Adagrad,
            isa: Isa,
            ws: &mut Workspace,
            param: &mut [$t],
            grad: &sprs::CsVec<$t>,
            state: &mut AdagradState<Self::State>,
        ) -> Result<()> {
            opt.sparse_vec_imp(isa, ws, param, grad, state)
        }
        #[inline(never)]
        fn k_step_rows(
            opt: &Adagrad,
            isa: Isa,
            ws: &mut Workspace,
            param: &mut [$t],
            rows: usize,
            cols: usize,
            row_indices: &[usize],
            values: &[$t],
            state: &mut AdagradState<Self::State>,
        ) -> Result<()> {
            opt.rows_imp(isa, ws, param, rows, cols, row_indices, values, state)
        }
        #[inline(never)]
        fn k_rowwise_dense(
            opt: &RowwiseAdagrad,
            param: &mut [$t],
            rows: usize,
            cols: usize,
            grad: &[$t],
            state: &mut AdagradState<Self::State>,
        ) -> Result<()> {
            opt.dense_imp(param, rows, cols, grad, state)
        }
        #[inline(never)]
        fn k_rowwise_rows(
            opt: &RowwiseAdagrad,
            isa: Isa,
            ws: &mut Workspace,
            param: &mut [$t],
            rows: usize,
            cols: usize,
            row_indices: &[usize],
            values: &[$t],
            state: &mut AdagradState<Self::State>,
        ) -> Result<()> {
            opt.rows_imp(isa, ws, param, rows, cols, row_indices, values, state)
        }
    };
}

macro_rules! simd_element {
    ($t:ty, $dense:ident, $masked:ident, $rows:ident) => {
        impl AdagradElement for $t {
            type State = $t;
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn to_state(self) -> $t {
                self
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn from_state(s: $t) -> $t {
                s
            }
            fn k_dense(isa: Isa, p: &mut [$t], s: &mut [$t], g: &[$t], h: &Hp<$t>) {
                cpu::adagrad::$dense(isa, p, s, g, h)
            }
            fn k_masked(isa: Isa, p: &mut [$t], s: &mut [$t], g: &[$t], words: &[u64], h: &Hp<$t>) {
                cpu::adagrad::$masked(isa, p, s, g, words, h)
            }
            fn k_rows(isa: Isa, param: &mut [$t], sum: &mut [$t], g: &GroupedRows<'_, $t>) {
                cpu::adagrad::$rows(isa, param, sum, g)
            }
            step_entries!($t);
        }
    };
}
simd_element!(f32, dense_f32, masked_f32, rows_f32);
simd_element!(f64, dense_f64, masked_f64, rows_f64);

macro_rules! half_element {
    ($t:ty) => {
        impl AdagradElement for $t {
            type State = f32;
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn to_state(self) -> f32 {
                self.to_f32()
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn from_state(s: f32) -> $t {
                <$t>::from_f32(s)
            }
            step_entries!($t);
        }
    };
}
half_element!(f16);
half_element!(bf16);
