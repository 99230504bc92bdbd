//! Parameter element types the optimizers accept.

use crate::element::{Element, Float};
use half::{bf16, f16};

/// A parameter element type: `f32`, `f64`, `half::f16` or `half::bf16`.
///
/// `State` is the type of the accumulator and of the arithmetic: the type
/// itself for `f32`/`f64`, `f32` for the half types (PyTorch's fp16 `eps`
/// underflow, where a zero gradient gives `0 / 0 = NaN`, cannot happen).
pub trait AdagradElement: Element {
    /// Accumulator and arithmetic type.
    type State: Float;
    /// Widening to the state type (exact).
    fn to_state(self) -> Self::State;
    /// Rounding back from the state type (to nearest even).
    fn from_state(s: Self::State) -> Self;
}

impl AdagradElement for f32 {
    type State = f32;
    #[inline(always)]
    fn to_state(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_state(s: f32) -> f32 {
        s
    }
}

impl AdagradElement for f64 {
    type State = f64;
    #[inline(always)]
    fn to_state(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_state(s: f64) -> f64 {
        s
    }
}

impl AdagradElement for f16 {
    type State = f32;
    #[inline(always)]
    fn to_state(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn from_state(s: f32) -> f16 {
        f16::from_f32(s)
    }
}

impl AdagradElement for bf16 {
    type State = f32;
    #[inline(always)]
    fn to_state(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn from_state(s: f32) -> bf16 {
        bf16::from_f32(s)
    }
}
