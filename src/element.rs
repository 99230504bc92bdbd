//! Element types: `f32`, `f64`, `half::f16`, `half::bf16`.

use half::{bf16, f16};
use std::fmt::Debug;

mod sealed {
    pub trait Sealed: crate::entry::ElementKernels {}
    pub trait SealedFloat: crate::entry::FloatKernels {}
    impl SealedFloat for f32 {}
    impl SealedFloat for f64 {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// An element type the masked reductions and softmax accept.
///
/// Half types (`f16`, `bf16`) are widened to `f32` for arithmetic and
/// rounded back once at the end; `f32` and `f64` compute in their own type
/// on the fast paths. The reference computes everything in `f64`.
pub trait Element:
    sealed::Sealed + Copy + Send + Sync + PartialOrd + PartialEq + Debug + Default + 'static
{
    /// A short name for messages and reports (`"f32"`, `"bf16"`, ...).
    const NAME: &'static str;
    /// The zero of the type.
    const ZERO: Self;
    /// Exact widening to `f64`.
    fn to_f64(self) -> f64;
    /// Rounding (to nearest even) narrowing from `f64`.
    fn from_f64(v: f64) -> Self;
    /// Widening to `f32` (exact for `f32`, `f16`, `bf16`; rounding for `f64`).
    fn to_f32(self) -> f32;
    /// Narrowing from `f32`.
    fn from_f32(v: f32) -> Self;
    /// `true` for NaN.
    fn is_nan(self) -> bool;
}

macro_rules! impl_prim {
    ($t:ty, $name:literal) => {
        impl Element for $t {
            const NAME: &'static str = $name;
            const ZERO: Self = 0.0;
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}
impl_prim!(f32, "f32");
impl_prim!(f64, "f64");

macro_rules! impl_half {
    ($t:ty, $name:literal) => {
        impl Element for $t {
            const NAME: &'static str = $name;
            const ZERO: Self = <$t>::ZERO;
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn to_f64(self) -> f64 {
                <$t>::to_f64(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn from_f64(v: f64) -> Self {
                <$t>::from_f64(v)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn to_f32(self) -> f32 {
                <$t>::to_f32(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn from_f32(v: f32) -> Self {
                <$t>::from_f32(v)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}
impl_half!(f16, "f16");
impl_half!(bf16, "bf16");

/// A full-precision float (`f32` or `f64`): the element type of losses,
/// masked arithmetic and the optimizer.
pub trait Float:
    Element
    + sealed::SealedFloat
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::ops::DivAssign
{
    /// One.
    const ONE: Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `e^self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// `self^p`.
    fn powf(self, p: Self) -> Self;
    /// IEEE maximum (NaN-ignoring, like `f32::max`).
    fn max(self, o: Self) -> Self;
    /// IEEE minimum (NaN-ignoring, like `f32::min`).
    fn min(self, o: Self) -> Self;
    /// `true` unless NaN or infinite.
    fn is_finite(self) -> bool;
}

macro_rules! impl_float {
    ($t:ty) => {
        impl Float for $t {
            const ONE: Self = 1.0;
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn powf(self, p: Self) -> Self {
                <$t>::powf(self, p)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn max(self, o: Self) -> Self {
                <$t>::max(self, o)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn min(self, o: Self) -> Self {
                <$t>::min(self, o)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}
impl_float!(f32);
impl_float!(f64);
