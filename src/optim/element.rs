//! Parameter element types the optimizers accept.

use crate::cpu::{
    self,
    adagrad::{GroupedRows, Hp},
    arch::portable::adagrad as portable,
    Isa,
};
use crate::element::{Element, Float};
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

    /// A row-sparse step over sorted items (see `crate::cpu::adagrad::rows_f32`).
    #[doc(hidden)]
    fn k_rows(isa: Isa, param: &mut [Self], sum: &mut [Self::State], g: &GroupedRows<'_, Self>) {
        let _ = isa;
        portable::rows(param, sum, g)
    }
}

macro_rules! simd_element {
    ($t:ty, $dense:ident, $masked:ident, $rows:ident) => {
        impl AdagradElement for $t {
            type State = $t;
            #[inline(always)]
            fn to_state(self) -> $t {
                self
            }
            #[inline(always)]
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
        }
    };
}
simd_element!(f32, dense_f32, masked_f32, rows_f32);
simd_element!(f64, dense_f64, masked_f64, rows_f64);

macro_rules! half_element {
    ($t:ty) => {
        impl AdagradElement for $t {
            type State = f32;
            #[inline(always)]
            fn to_state(self) -> f32 {
                self.to_f32()
            }
            #[inline(always)]
            fn from_state(s: f32) -> $t {
                <$t>::from_f32(s)
            }
        }
    };
}
half_element!(f16);
half_element!(bf16);
