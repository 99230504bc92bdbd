//! Generic bodies of the reduction and softmax kernels.
//!
//! Nothing here carries a `#[target_feature]`: every function is
//! `#[inline(always)]` and generic over a 32-lane vector type ([`Lanes`],
//! [`LoadT`]) that each ISA room implements. A room's `#[target_feature]`
//! entry point instantiates these bodies with its own lane type, so the
//! intrinsics are inlined and compiled for that room's ISA. (In an
//! unoptimized build of maskops, `cfg(maskops_o0)` set by `build.rs` from
//! the profile's opt-level, the attribute is a plain `#[inline]`: at
//! opt-level 0 forced inlining makes nothing faster and copied the bodies
//! into every call site, 82 MB of a caller's debug binary.)
//!
//! Where a body would inline another large one a second time (the pair
//! path of a whole-array fold, the per-block fold of the partials), it
//! calls the room's own entry point instead, passed in as a function
//! pointer (see [`whole_fold`], [`block_partials`]); the dim-0 tile calls
//! its row kernel from one place. Each of these bodies is compiled once per
//! room, element type and fold.
//!
//! The 32 lanes are the 32 canonical lane accumulators of
//! [`crate::canonical`]: lane `j` of chunk `c` of a block is block offset
//! `32c + j`. Masked-out lanes are replaced by a per-fold *neutral input*
//! before any arithmetic (a masked load or a blend), chosen so that
//! `op(acc, val(neutral)) == acc` bit for bit for every accumulator the
//! fold can produce. The result is therefore exactly
//! [`canonical_fold`](crate::canonical::canonical_fold) with the fold's
//! scalar `identity`, `val` and `op`, on every room.

use crate::canonical::{BLOCK, LANES};
use crate::element::Element;
use crate::math::{exp_f32, ln_f32};
use half::{bf16, f16};
use std::fmt::Debug;

/// The accumulator type of a fold: `f32` (for `f32`, `f16`, `bf16`) or `f64`.
pub trait Acc: Copy + Send + Sync + PartialOrd + Debug + Default + 'static {
    /// `+0.0`.
    const ZERO: Self;
    /// `-0.0`.
    const NEG_ZERO: Self;
    /// `1.0`.
    const ONE: Self;
    /// `+inf`.
    const INF: Self;
    /// `-inf`.
    const NEG_INF: Self;
    /// A quiet NaN.
    const NAN: Self;
    /// `a + b`.
    fn add(self, o: Self) -> Self;
    /// `a - b`.
    fn sub(self, o: Self) -> Self;
    /// `a * b`.
    fn mul(self, o: Self) -> Self;
    /// `a / b`.
    fn div(self, o: Self) -> Self;
    /// `|a|`.
    fn abs(self) -> Self;
    /// NaN test.
    fn is_nan(self) -> bool;
    /// Finite test.
    fn is_finite(self) -> bool;
    /// Deterministic `e^x` (`math::exp_f32` for `f32`, std for `f64`).
    fn exp(self) -> Self;
    /// Deterministic `ln x` (`math::ln_f32` for `f32`, std for `f64`).
    fn ln(self) -> Self;
    /// Square root (IEEE, exact rounding).
    fn sqrt(self) -> Self;
    /// `self^p` (std `powf`).
    fn powf(self, p: Self) -> Self;
    /// A count as an accumulator value (rounded).
    fn from_count(n: usize) -> Self;
    /// From `f64` (rounded).
    fn from_f64(v: f64) -> Self;
    /// To `f64` (exact).
    #[allow(dead_code)] // part of the accumulator's definition; no kernel needs it today
    fn to_f64(self) -> f64;
}

macro_rules! impl_acc {
    ($t:ty, $exp:expr, $ln:expr) => {
        impl Acc for $t {
            const ZERO: Self = 0.0;
            const NEG_ZERO: Self = -0.0;
            const ONE: Self = 1.0;
            const INF: Self = <$t>::INFINITY;
            const NEG_INF: Self = <$t>::NEG_INFINITY;
            const NAN: Self = <$t>::NAN;
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn add(self, o: Self) -> Self {
                self + o
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn sub(self, o: Self) -> Self {
                self - o
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn mul(self, o: Self) -> Self {
                self * o
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn div(self, o: Self) -> Self {
                self / o
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn ln(self) -> Self {
                $ln(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn powf(self, p: Self) -> Self {
                <$t>::powf(self, p)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn from_count(n: usize) -> Self {
                n as $t
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    };
}
impl_acc!(f32, exp_f32, ln_f32);
impl_acc!(f64, f64::exp, f64::ln);

/// An element type with its accumulator (the crate's four element types).
pub trait SimdElem: Element {
    /// `f32` for `f32`/`f16`/`bf16`, `f64` for `f64`.
    type Acc: Acc;
    /// Exact widening to the accumulator.
    fn to_acc(self) -> Self::Acc;
    /// Rounding (to nearest even) narrowing from the accumulator.
    fn from_acc(a: Self::Acc) -> Self;
}

impl SimdElem for f32 {
    type Acc = f32;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn to_acc(self) -> f32 {
        self
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn from_acc(a: f32) -> f32 {
        a
    }
}
impl SimdElem for f64 {
    type Acc = f64;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn to_acc(self) -> f64 {
        self
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn from_acc(a: f64) -> f64 {
        a
    }
}
impl SimdElem for f16 {
    type Acc = f32;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn to_acc(self) -> f32 {
        self.to_f32()
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn from_acc(a: f32) -> f16 {
        f16::from_f32(a)
    }
}
impl SimdElem for bf16 {
    type Acc = f32;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn to_acc(self) -> f32 {
        self.to_f32()
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn from_acc(a: f32) -> bf16 {
        bf16::from_f32(a)
    }
}

/// 32 accumulator lanes held in registers (or an array on the portable room).
///
/// # Safety
/// Every method is `unsafe` because room implementations use intrinsics that
/// need the room's CPU features; callers run them only inside that room's
/// `#[target_feature]` entry points. Pointer methods need 32 valid elements.
#[allow(clippy::missing_safety_doc)]
pub trait Lanes: Copy {
    /// The lane type.
    type A: Acc;
    /// All lanes `a`.
    unsafe fn splat(a: Self::A) -> Self;
    /// Loads 32 accumulators from `p` (unaligned).
    unsafe fn load_acc(p: *const Self::A) -> Self;
    /// Stores 32 accumulators to `p` (unaligned).
    unsafe fn store_acc(self, p: *mut Self::A);
    /// Lane-wise `+`.
    unsafe fn add(self, o: Self) -> Self;
    /// Lane-wise `-`.
    unsafe fn sub(self, o: Self) -> Self;
    /// Lane-wise `*`.
    unsafe fn mul(self, o: Self) -> Self;
    /// Lane-wise `/`.
    #[allow(dead_code)] // implemented by every room; no fold divides today
    unsafe fn div(self, o: Self) -> Self;
    /// Lane-wise `|x|`.
    unsafe fn abs(self) -> Self;
    /// Lane-wise [`max_op`].
    unsafe fn max_op(self, o: Self) -> Self;
    /// Lane-wise [`min_op`].
    unsafe fn min_op(self, o: Self) -> Self;
    /// Lane-wise [`Acc::exp`], bit-identical to the scalar. The default
    /// goes through memory, lane by lane (the `f64` rooms keep it: `f64`
    /// uses std `exp`, docs/design.md); `f32` rooms transcribe
    /// `math::exp_f32` in registers.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn exp(self) -> Self {
        let mut arr = [Self::A::default(); LANES];
        self.store_acc(arr.as_mut_ptr());
        for v in arr.iter_mut() {
            *v = v.exp();
        }
        Self::load_acc(arr.as_ptr())
    }
    /// Lane `i` from `a` where bit `i` of `bits` is set, else from `b`.
    unsafe fn select(bits: u32, a: Self, b: Self) -> Self;
    /// Lane-wise `if o > self { o } else { self }`: equal to
    /// [`Lanes::max_op`] on every lane where `o` is not NaN (lanes where `o`
    /// is NaN may hold anything; the fold patches them, see
    /// [`Kind::NAN_SPLIT`]). Rooms use the hardware max (one instruction,
    /// no NaN compare and blend).
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_fast(self, o: Self) -> Self {
        self.max_op(o)
    }
    /// Lane-wise `if o < self { o } else { self }`, as [`Lanes::max_fast`].
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_fast(self, o: Self) -> Self {
        self.min_op(o)
    }
    /// Bit `i` set where lane `i` is NaN.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn nan_lanes(self) -> u32 {
        let mut arr = [Self::A::default(); LANES];
        self.store_acc(arr.as_mut_ptr());
        let mut m = 0u32;
        for (i, v) in arr.iter().enumerate() {
            m |= (v.is_nan() as u32) << i;
        }
        m
    }
    /// The canonical halving tree over the 32 lanes with `K::op`
    /// (`acc_j = op(acc_j, acc_{j+w})`, w = 16, 8, 4, 2, 1): lane 0 of the
    /// result. The default goes through memory and [`tree32`]; rooms may
    /// shuffle in registers (same operations, same bits).
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn tree<K: Kind>(self) -> Self::A {
        let mut arr = [Self::A::default(); LANES];
        self.store_acc(arr.as_mut_ptr());
        tree32(&mut arr, K::op)
    }
    /// Lane-wise `self + o` where bit `i` of `bits` is set, `self` elsewhere
    /// (the same bits as adding `-0.0` there). Rooms use a masked add.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add_masked(self, bits: u32, o: Self) -> Self {
        self.add(Self::select(bits, o, Self::splat(Self::A::NEG_ZERO)))
    }
    /// [`Lanes::tree`] with [`Kind::op_fast_v`] (a [`Kind::NAN_SPLIT`] fold
    /// whose lanes hold no NaN: the fast op then gives the canonical bits).
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn tree_fast<K: Kind>(self) -> Self::A {
        self.tree::<K>()
    }
    /// Software prefetch of the cache line at `p` for reading (`write`:
    /// for writing). A hint only; the default does nothing.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn prefetch(p: *const u8, write: bool) {
        let _ = (p, write);
    }
}

/// Prefetches `bytes` bytes from `p`, one hint per 64-byte line.
///
/// # Safety
/// Room features (see [`Lanes`]); prefetches never fault.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn prefetch_range<V: Lanes>(p: *const u8, bytes: usize, write: bool) {
    let mut o = 0;
    while o < bytes {
        V::prefetch(p.wrapping_add(o), write);
        o += 64;
    }
}

/// Loading and storing 32 elements of type `T` as 32 lanes.
///
/// # Safety
/// As [`Lanes`]; `p` must point at 32 valid elements.
#[allow(clippy::missing_safety_doc)]
pub trait LoadT<T>: Lanes {
    /// Lane `i` = `p[i]` widened where bit `i` of `bits` is set, else lane
    /// `i` of `neutral`. Masked-out elements never enter arithmetic. `p`
    /// must point at 32 readable elements.
    unsafe fn load(p: *const T, bits: u32, neutral: Self) -> Self;
    /// Stores the 32 lanes narrowed to `T` (round to nearest even) at `p`
    /// (32 writable elements).
    unsafe fn store(self, p: *mut T);
}

/// The canonical max: NaN-propagating, first operand kept on ties.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn max_op<A: Acc>(a: A, b: A) -> A {
    if b > a || (b.is_nan() && !a.is_nan()) {
        b
    } else {
        a
    }
}

/// The canonical min: NaN-propagating, first operand kept on ties.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn min_op<A: Acc>(a: A, b: A) -> A {
    if b < a || (b.is_nan() && !a.is_nan()) {
        b
    } else {
        a
    }
}

/// A fold: accumulator start `identity`, element map `val(x, c)` (with a
/// per-sequence constant `c`), combining `op`, and the neutral *input*
/// substituted for masked-out lanes (`op(acc, val(neutral(c), c)) == acc`
/// for every accumulator this fold produces).
pub trait Kind: Copy + Send + Sync + 'static {
    /// Lane start value (the canonical identity).
    fn identity<A: Acc>() -> A;
    /// Raw input for masked-out lanes (the scalar definition that
    /// [`Kind::neutral_v`] follows).
    #[allow(dead_code)] // the specification of the vector form; not called
    fn neutral<A: Acc>(c: A) -> A;
    /// Element map (the scalar definition that [`Kind::val_v`] follows).
    #[allow(dead_code)] // the specification of the vector form; not called
    fn val<A: Acc>(x: A, c: A) -> A;
    /// Combining operation.
    fn op<A: Acc>(a: A, b: A) -> A;
    /// Vector [`Kind::neutral`].
    ///
    /// # Safety
    /// Room features must be available (see [`Lanes`]).
    unsafe fn neutral_v<V: Lanes>(c: V) -> V;
    /// Vector [`Kind::val`].
    ///
    /// # Safety
    /// Room features must be available (see [`Lanes`]).
    unsafe fn val_v<V: Lanes>(x: V, c: V) -> V;
    /// Vector [`Kind::op`].
    ///
    /// # Safety
    /// Room features must be available (see [`Lanes`]).
    unsafe fn op_v<V: Lanes>(a: V, b: V) -> V;
    /// `true` for the NaN-propagating min/max folds: a block is first
    /// folded with [`Kind::op_fast_v`] (the hardware min/max), noting
    /// whether a NaN came in; only then is it folded again with the exact
    /// [`Kind::op_v`] (see [`block_fold`]).
    const NAN_SPLIT: bool = false;
    /// `true` where [`Kind::val_v`] is the identity and a masked-out lane
    /// may simply be skipped: the fold step is then
    /// [`Kind::op_masked_v`] on a full load.
    const MASKED_OP: bool = false;
    /// `op_v(a, load(x, bits, neutral))` from the full load `x`, for a
    /// [`Kind::MASKED_OP`] fold.
    ///
    /// # Safety
    /// Room features must be available (see [`Lanes`]).
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn op_masked_v<V: Lanes>(a: V, bits: u32, x: V) -> V {
        let _ = bits;
        Self::op_v(a, x)
    }
    /// [`Kind::op_v`] where `b` holds no NaN (anything where it does).
    ///
    /// # Safety
    /// Room features must be available (see [`Lanes`]).
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn op_fast_v<V: Lanes>(a: V, b: V) -> V {
        Self::op_v(a, b)
    }
}

macro_rules! kind {
    ($(#[$doc:meta])* $name:ident, id = $id:expr, neutral = |$c0:ident| $neu:expr, neutral_v = |$c1:ident| $neuv:expr,
     val = |$x:ident, $c:ident| $val:expr, val_v = |$xv:ident, $cv:ident| $valv:expr,
     op = |$a:ident, $b:ident| $op:expr, op_v = |$av:ident, $bv:ident| $opv:expr
     $(, fast = |$fa:ident, $fb:ident| $fast:expr)?
     $(, masked = |$ma:ident, $mb:ident, $mx:ident| $masked:expr)?) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name;
        impl Kind for $name {
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn identity<A: Acc>() -> A {
                $id
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            #[allow(unused_variables)]
            fn neutral<A: Acc>($c0: A) -> A {
                $neu
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            #[allow(unused_variables)]
            fn val<A: Acc>($x: A, $c: A) -> A {
                $val
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            fn op<A: Acc>($a: A, $b: A) -> A {
                $op
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            #[allow(unused_variables)]
            unsafe fn neutral_v<V: Lanes>($c1: V) -> V {
                $neuv
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            #[allow(unused_variables)]
            unsafe fn val_v<V: Lanes>($xv: V, $cv: V) -> V {
                $valv
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            unsafe fn op_v<V: Lanes>($av: V, $bv: V) -> V {
                $opv
            }
            $(
                const NAN_SPLIT: bool = true;
                #[cfg_attr(not(maskops_o0), inline(always))]
                #[cfg_attr(maskops_o0, inline)]
                unsafe fn op_fast_v<V: Lanes>($fa: V, $fb: V) -> V {
                    $fast
                }
            )?
            $(
                const MASKED_OP: bool = true;
                #[cfg_attr(not(maskops_o0), inline(always))]
                #[cfg_attr(maskops_o0, inline)]
                unsafe fn op_masked_v<V: Lanes>($ma: V, $mb: u32, $mx: V) -> V {
                    $masked
                }
            )?
        }
    };
}

kind!(
    /// `sum x` (masked-out lanes read `-0.0`, which is the same as
    /// skipping them: a masked add).
    Sum, id = A::ZERO, neutral = |c| A::NEG_ZERO, neutral_v = |c| V::splat(V::A::NEG_ZERO),
    val = |x, c| x, val_v = |x, c| x, op = |a, b| a.add(b), op_v = |a, b| a.add(b),
    masked = |a, bits, x| a.add_masked(bits, x)
);
kind!(
    /// `prod x` (masked-out lanes read `1`).
    Prod, id = A::ONE, neutral = |c| A::ONE, neutral_v = |c| V::splat(V::A::ONE),
    val = |x, c| x, val_v = |x, c| x, op = |a, b| a.mul(b), op_v = |a, b| a.mul(b)
);
kind!(
    /// `max x`, NaN-propagating (masked-out lanes read `-inf`).
    Max, id = A::NEG_INF, neutral = |c| A::NEG_INF, neutral_v = |c| V::splat(V::A::NEG_INF),
    val = |x, c| x, val_v = |x, c| x, op = |a, b| max_op(a, b), op_v = |a, b| a.max_op(b),
    fast = |a, b| a.max_fast(b)
);
kind!(
    /// `min x`, NaN-propagating (masked-out lanes read `+inf`).
    Min, id = A::INF, neutral = |c| A::INF, neutral_v = |c| V::splat(V::A::INF),
    val = |x, c| x, val_v = |x, c| x, op = |a, b| min_op(a, b), op_v = |a, b| a.min_op(b),
    fast = |a, b| a.min_fast(b)
);
kind!(
    /// `sum x*x` (masked-out lanes read `0`; every partial is `>= +0` or NaN).
    SumSq, id = A::ZERO, neutral = |c| A::ZERO, neutral_v = |c| V::splat(V::A::ZERO),
    val = |x, c| x.mul(x), val_v = |x, c| x.mul(x), op = |a, b| a.add(b), op_v = |a, b| a.add(b)
);
kind!(
    /// `sum |x|` (masked-out lanes read `0`).
    SumAbs, id = A::ZERO, neutral = |c| A::ZERO, neutral_v = |c| V::splat(V::A::ZERO),
    val = |x, c| x.abs(), val_v = |x, c| x.abs(), op = |a, b| a.add(b), op_v = |a, b| a.add(b)
);
kind!(
    /// `sum (x-c)*(x-c)` (masked-out lanes read `c`).
    SumSqDev, id = A::ZERO, neutral = |c| c, neutral_v = |c| c,
    val = |x, c| x.sub(c).mul(x.sub(c)), val_v = |x, c| { let d = x.sub(c); d.mul(d) },
    op = |a, b| a.add(b), op_v = |a, b| a.add(b)
);
kind!(
    /// `sum exp(x-c)` for a finite `c` (masked-out lanes read `-inf`).
    SumExp, id = A::ZERO, neutral = |c| A::NEG_INF, neutral_v = |c| V::splat(V::A::NEG_INF),
    val = |x, c| x.sub(c).exp(), val_v = |x, c| x.sub(c).exp(),
    op = |a, b| a.add(b), op_v = |a, b| a.add(b)
);
kind!(
    /// `max |x|` with identity `0` (the infinity norm; masked-out lanes read `0`).
    MaxAbs, id = A::ZERO, neutral = |c| A::ZERO, neutral_v = |c| V::splat(V::A::ZERO),
    val = |x, c| x.abs(), val_v = |x, c| x.abs(), op = |a, b| max_op(a, b), op_v = |a, b| a.max_op(b),
    fast = |a, b| a.max_fast(b)
);
kind!(
    /// `min |x|` (the -infinity norm; masked-out lanes read `+inf`).
    MinAbs, id = A::INF, neutral = |c| A::INF, neutral_v = |c| V::splat(V::A::INF),
    val = |x, c| x.abs(), val_v = |x, c| x.abs(), op = |a, b| min_op(a, b), op_v = |a, b| a.min_op(b),
    fast = |a, b| a.min_fast(b)
);

/// The 32 mask bits starting at bit `pos` (bit `k` = element `pos + k`);
/// bits past the end of `words` read 0.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn bits32(words: &[u64], pos: usize) -> u32 {
    let w = pos >> 6;
    let s = pos & 63;
    let lo = words.get(w).copied().unwrap_or(0) >> s;
    if s > 32 {
        let hi = words.get(w + 1).copied().unwrap_or(0) << (64 - s);
        (lo | hi) as u32
    } else {
        lo as u32
    }
}

/// The 64 mask bits starting at bit `pos`; bits past the end of `words`
/// read 0.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn bits64(words: &[u64], pos: usize) -> u64 {
    let w = pos >> 6;
    let s = pos & 63;
    let lo = words.get(w).copied().unwrap_or(0);
    if s == 0 {
        lo
    } else {
        (lo >> s) | (words.get(w + 1).copied().unwrap_or(0) << (64 - s))
    }
}

/// Number of set bits in `start .. start + len` (inlined into each room's
/// entry point, where `count_ones` is one `popcnt`).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn count_range(words: &[u64], start: usize, len: usize) -> usize {
    let mut n = 0usize;
    let mut pos = start;
    let end = start + len;
    while pos < end && pos & 63 != 0 {
        let take = (64 - (pos & 63)).min(end - pos);
        let w = words[pos >> 6] >> (pos & 63);
        n += (w & low_mask64(take)).count_ones() as usize;
        pos += take;
    }
    if pos + 64 <= end {
        // whole words: a slice sum, which the rooms vectorize (a byte-table
        // popcount in AVX2 / AVX-512BW registers)
        let full = (end - pos) / 64;
        n += words[pos >> 6..(pos >> 6) + full]
            .iter()
            .map(|w| w.count_ones() as usize)
            .sum::<usize>();
        pos += full * 64;
    }
    if pos < end {
        n += (words[pos >> 6] & low_mask64(end - pos)).count_ones() as usize;
    }
    n
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
fn low_mask64(k: usize) -> u64 {
    if k >= 64 {
        u64::MAX
    } else {
        (1u64 << k) - 1
    }
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
fn low_mask32(k: usize) -> u32 {
    if k >= 32 {
        u32::MAX
    } else {
        (1u32 << k) - 1
    }
}

/// The halving tree of [`crate::canonical`] over 32 lanes.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn tree32<A: Acc>(v: &mut [A; LANES], op: impl Fn(A, A) -> A) -> A {
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            v[j] = op(v[j], v[j + w]);
        }
    }
    v[0]
}

/// Folds block partials as [`crate::canonical::fold_partials`] does (pad to a
/// power of two with `identity`, halving tree), in place.
pub fn fold_partials_in<A: Acc>(p: &mut Vec<A>, identity: A, op: impl Fn(A, A) -> A) -> A {
    if p.is_empty() {
        return identity;
    }
    p.resize(p.len().next_power_of_two(), identity);
    let mut w = p.len();
    while w > 1 {
        w /= 2;
        for j in 0..w {
            p[j] = op(p[j], p[j + w]);
        }
    }
    p[0]
}

/// Loads 32 elements at `x[off..]` with mask bits at `bit`; reads past
/// `x.len()` never happen (a short tail is copied to a buffer first).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn load_at<T: Element, V: LoadT<T>>(
    x: &[T],
    off: usize,
    words: &[u64],
    bit: usize,
    neutral: V,
) -> (V, u32) {
    let rem = x.len() - off;
    if rem >= 32 {
        let bits = bits32(words, bit);
        // SAFETY: off + 32 <= x.len(): 32 readable elements.
        (V::load(x.as_ptr().add(off), bits, neutral), bits)
    } else {
        let bits = bits32(words, bit) & low_mask32(rem);
        let mut buf = [T::ZERO; 32];
        buf[..rem].copy_from_slice(&x[off..]);
        (V::load(buf.as_ptr(), bits, neutral), bits)
    }
}

/// Stores 32 lanes at `y[off..]` (only `min(32, y.len() - off)` elements).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn store_at<T: Element, V: LoadT<T>>(v: V, y: &mut [T], off: usize) {
    let rem = y.len() - off;
    if rem >= 32 {
        // SAFETY: off + 32 <= y.len(): 32 writable elements.
        v.store(y.as_mut_ptr().add(off));
    } else {
        let mut buf = [T::ZERO; 32];
        v.store(buf.as_mut_ptr());
        y[off..].copy_from_slice(&buf[..rem]);
    }
}

/// Prefetch distance of the sequential folds, in bytes ahead of the chunk
/// being read (measured on Zen 4 at 2^24 f32: a masked sum went from 0.5 to
/// 1.0 of an unprefetched read's bandwidth; 8 KiB was the best of 1-16 KiB).
pub const PF_BYTES: usize = 8192;

/// The running state of one block's lanes: the accumulators and, on the
/// fast path of the [`Kind::NAN_SPLIT`] folds, the lanes that saw a NaN.
#[derive(Clone, Copy)]
struct LaneAcc<V> {
    acc: V,
    nan: u32,
}

impl<V: Lanes> LaneAcc<V> {
    /// Folds the mapped chunk `v` into the lanes: with `FAST` (only for
    /// [`Kind::NAN_SPLIT`] folds) by [`Kind::op_fast_v`], noting NaN lanes.
    ///
    /// # Safety
    /// Room features (see [`Lanes`]).
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn step<K: Kind, const FAST: bool>(&mut self, v: V) {
        if FAST {
            self.acc = K::op_fast_v(self.acc, v);
            self.nan |= v.nan_lanes();
        } else {
            self.acc = K::op_v(self.acc, v);
        }
    }
}

/// The canonical partial of one block (`x.len() <= BLOCK`), mask bit of
/// `x[0]` at `bit0`.
///
/// The NaN-propagating min/max folds ([`Kind::NAN_SPLIT`]) first run the
/// hardware min/max, which equals the canonical op wherever no NaN comes
/// in; a block that holds a kept NaN is folded again with the exact op
/// (it is still in L1), so the bits are the canonical ones either way.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn block_fold<T: Element, V: LoadT<T>, K: Kind>(
    x: &[T],
    words: &[u64],
    bit0: usize,
    c: V::A,
) -> V::A {
    if K::NAN_SPLIT {
        let (acc, nan) = block_lanes::<T, V, K, true>(x, words, bit0, c);
        if nan == 0 {
            return acc.tree_fast::<K>();
        }
    }
    block_lanes::<T, V, K, false>(x, words, bit0, c)
        .0
        .tree::<K>()
}

/// The 32 lanes of one block before the tree, and (with `FAST`) the lanes
/// that saw a NaN.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn block_lanes<T: Element, V: LoadT<T>, K: Kind, const FAST: bool>(
    x: &[T],
    words: &[u64],
    bit0: usize,
    c: V::A,
) -> (V, u32) {
    debug_assert!(x.len() <= BLOCK);
    let cv = V::splat(c);
    let nv = K::neutral_v(cv);
    let mut st = LaneAcc {
        acc: V::splat(K::identity()),
        nan: 0,
    };
    let n = x.len();
    let p = x.as_ptr();
    let chunk_bytes = 64 * std::mem::size_of::<T>();
    // main loop: one 64-bit mask word feeds two 32-lane chunks
    let full = n / 64;
    let mut g0 = 0;
    if bit0.is_multiple_of(64) {
        if let Some(ws) = words.get(bit0 / 64..bit0 / 64 + full) {
            // aligned: one mask word per 64 elements, read directly; no
            // zero-word branch (a masked-out chunk reads the neutral input,
            // which leaves every accumulator unchanged, so the bits are the
            // same as skipping it)
            let mut q = p;
            for &w in ws {
                prefetch_range::<V>((q as *const u8).wrapping_add(PF_BYTES), chunk_bytes, false);
                if K::MASKED_OP && !FAST {
                    // SAFETY: `full` chunks of 64 elements lie inside `x`;
                    // the masked-out lanes are loaded but never enter the
                    // arithmetic (the op is masked).
                    let x0 = V::load(q, u32::MAX, nv);
                    st.acc = K::op_masked_v(st.acc, w as u32, x0);
                    let x1 = V::load(q.add(32), u32::MAX, nv);
                    st.acc = K::op_masked_v(st.acc, (w >> 32) as u32, x1);
                    q = q.add(64);
                    continue;
                }
                // SAFETY: `full` chunks of 64 elements lie inside `x`.
                let x0 = V::load(q, w as u32, nv);
                st.step::<K, FAST>(K::val_v(x0, cv));
                // SAFETY: as above.
                let x1 = V::load(q.add(32), (w >> 32) as u32, nv);
                st.step::<K, FAST>(K::val_v(x1, cv));
                q = q.add(64);
            }
            g0 = full;
        }
    }
    for g in g0..full {
        let w = bits64(words, bit0 + g * 64);
        prefetch_range::<V>(
            (p.add(g * 64) as *const u8).wrapping_add(PF_BYTES),
            chunk_bytes,
            false,
        );
        if w == 0 {
            continue;
        }
        // SAFETY: elements g*64 .. g*64 + 64 lie inside `x` (g < n / 64).
        let x0 = V::load(p.add(g * 64), w as u32, nv);
        st.step::<K, FAST>(K::val_v(x0, cv));
        // SAFETY: as above.
        let x1 = V::load(p.add(g * 64 + 32), (w >> 32) as u32, nv);
        st.step::<K, FAST>(K::val_v(x1, cv));
    }
    let mut off = full * 64;
    while off < n {
        let (xv, bits) = load_at::<T, V>(x, off, words, bit0 + off, nv);
        if bits != 0 {
            st.step::<K, FAST>(K::val_v(xv, cv));
        }
        off += 32;
    }
    (st.acc, st.nan)
}

/// [`seq_fold`] of a whole array: in cache, whole blocks go two at a time
/// ([`block_fold_pair`]; same partials). A separate entry so that the
/// per-row folds, which inline [`seq_fold`], keep their smaller loop (with
/// the pair path inlined too, LLVM spilled their constants).
///
/// `partials` is the room's own [`block_partials`] entry point (not
/// inlined): the pair path is compiled once per room, element type and
/// fold, not again inside every whole-array fold; with the same change in
/// [`block_partials`], a third less optimized code in maskops' reduce
/// entry points, and a quarter off its release build time.
///
/// # Safety
/// Room features (see [`Lanes`]); `partials` computes [`block_partials`].
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn whole_fold<T: Element, V: LoadT<T>, K: Kind>(
    x: &[T],
    words: &[u64],
    bit0: usize,
    c: V::A,
    partials: PartialsEntry<T, V::A>,
) -> V::A {
    let nb = x.len().div_ceil(BLOCK);
    if nb >= 2 && bit0.is_multiple_of(64) && std::mem::size_of_val(x) <= PAIR_MAX_BYTES {
        let mut parts = vec![K::identity(); nb];
        partials(x, words, bit0, c, &mut parts);
        return fold_partials_in(&mut parts, K::identity(), K::op);
    }
    seq_fold::<T, V, K>(x, words, bit0, c)
}

/// Canonical fold of a whole sequence (any length): block partials folded
/// by the padded halving tree.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn seq_fold<T: Element, V: LoadT<T>, K: Kind>(
    x: &[T],
    words: &[u64],
    bit0: usize,
    c: V::A,
) -> V::A {
    // One inlined copy of `block_fold` (two copies made LLVM keep the
    // accumulators in memory); plain loops, no closures: closures would not
    // inherit the room's target features.
    let nb = x.len().div_ceil(BLOCK);
    let mut parts: Vec<V::A> = Vec::new();
    let mut only = K::identity();
    for b in 0..nb {
        let xb = &x[b * BLOCK..x.len().min((b + 1) * BLOCK)];
        let p = block_fold::<T, V, K>(xb, words, bit0 + b * BLOCK, c);
        if nb == 1 {
            only = p;
        } else {
            parts.push(p);
        }
    }
    if nb <= 1 {
        return only;
    }
    fold_partials_in(&mut parts, K::identity(), K::op)
}

/// A room's `seq_fold` entry point (see [`whole_fold`]).
pub type SeqEntry<T, A> = unsafe fn(&[T], &[u64], usize, A) -> A;

/// A room's `block_partials` entry point (see [`block_partials`]).
pub type PartialsEntry<T, A> = unsafe fn(&[T], &[u64], usize, A, &mut [A]);

/// Partials of consecutive blocks: `out[b]` = partial of `x[b*BLOCK..]`.
///
/// The blocks that do not go two at a time are folded one by one by `seq`,
/// the room's own `seq_fold` entry point (not inlined; one call per block of
/// `BLOCK` elements): one block's [`seq_fold`] is its [`block_fold`], so the
/// partials are the same, and [`block_fold`] is not compiled once more in
/// here.
///
/// # Safety
/// Room features (see [`Lanes`]); `seq` computes [`whole_fold`].
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn block_partials<T: Element, V: LoadT<T>, K: Kind>(
    x: &[T],
    words: &[u64],
    bit0: usize,
    c: V::A,
    out: &mut [V::A],
    seq: SeqEntry<T, V::A>,
) {
    let mut b = 0;
    // in cache, whole blocks on mask words go two at a time (see
    // `block_fold_pair`)
    if bit0.is_multiple_of(64) && std::mem::size_of_val(x) <= PAIR_MAX_BYTES {
        let full = x.len() / BLOCK;
        while b + 2 <= full {
            let w0 = (bit0 + b * BLOCK) / 64;
            let Some(ws) = words.get(w0..w0 + 2 * BLOCK / 64) else {
                break;
            };
            let (pa, pb) = block_fold_pair::<T, V, K>(&x[b * BLOCK..(b + 2) * BLOCK], ws, c);
            out[b] = pa;
            out[b + 1] = pb;
            b += 2;
        }
    }
    for (i, (xb, o)) in x[b * BLOCK..]
        .chunks(BLOCK)
        .zip(out[b..].iter_mut())
        .enumerate()
    {
        *o = seq(xb, words, bit0 + (b + i) * BLOCK, c);
    }
}

/// Inputs up to this size (a quarter of a 1 MiB L2) take
/// [`block_fold_pair`]; larger ones stream block by block with software
/// prefetch.
pub const PAIR_MAX_BYTES: usize = 256 << 10;

/// The canonical partials of two whole blocks (`x` = `2 * BLOCK` elements
/// starting on mask word `ws[0]`), folded side by side: each block keeps
/// its own 32 lanes and its own order, so the partials are those of
/// [`block_fold`], but the two independent chains of adds run at once (in
/// cache one block is bound by the add latency: 32 lanes per 3-cycle add
/// on Zen 4).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn block_fold_pair<T: Element, V: LoadT<T>, K: Kind>(
    x: &[T],
    ws: &[u64],
    c: V::A,
) -> (V::A, V::A) {
    debug_assert!(x.len() == 2 * BLOCK && ws.len() == 2 * BLOCK / 64);
    if K::NAN_SPLIT {
        let (a, b) = block_lanes_pair::<T, V, K, true>(x, ws, c);
        // a block that saw a kept NaN is folded again with the exact op
        // (plain code, no closure: closures would not inherit the room's
        // target features)
        let mut out = [V::A::ZERO; 2];
        for (h, (l, o)) in [a, b].iter().zip(&mut out).enumerate() {
            *o = if l.nan == 0 {
                l.acc.tree_fast::<K>()
            } else {
                let xh = &x[h * BLOCK..(h + 1) * BLOCK];
                block_lanes::<T, V, K, false>(xh, ws, h * BLOCK, c)
                    .0
                    .tree::<K>()
            };
        }
        return (out[0], out[1]);
    }
    let (a, b) = block_lanes_pair::<T, V, K, false>(x, ws, c);
    (a.acc.tree::<K>(), b.acc.tree::<K>())
}

/// The lanes of two whole blocks side by side (see [`block_fold_pair`]).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn block_lanes_pair<T: Element, V: LoadT<T>, K: Kind, const FAST: bool>(
    x: &[T],
    ws: &[u64],
    c: V::A,
) -> (LaneAcc<V>, LaneAcc<V>) {
    let cv = V::splat(c);
    let nv = K::neutral_v(cv);
    let mut a = LaneAcc {
        acc: V::splat(K::identity()),
        nan: 0,
    };
    let mut b = a;
    let (wa, wb) = ws.split_at(BLOCK / 64);
    let pa = x.as_ptr();
    let pb = pa.add(BLOCK);
    for (i, (&u, &w)) in wa.iter().zip(wb).enumerate() {
        // SAFETY: elements 64i .. 64i + 64 of each block lie inside `x`.
        let (qa, qb) = (pa.add(i * 64), pb.add(i * 64));
        if K::MASKED_OP && !FAST {
            // masked-out lanes are loaded but never enter the arithmetic
            a.acc = K::op_masked_v(a.acc, u as u32, V::load(qa, u32::MAX, nv));
            b.acc = K::op_masked_v(b.acc, w as u32, V::load(qb, u32::MAX, nv));
            a.acc = K::op_masked_v(a.acc, (u >> 32) as u32, V::load(qa.add(32), u32::MAX, nv));
            b.acc = K::op_masked_v(b.acc, (w >> 32) as u32, V::load(qb.add(32), u32::MAX, nv));
            continue;
        }
        a.step::<K, FAST>(K::val_v(V::load(qa, u as u32, nv), cv));
        b.step::<K, FAST>(K::val_v(V::load(qb, w as u32, nv), cv));
        a.step::<K, FAST>(K::val_v(V::load(qa.add(32), (u >> 32) as u32, nv), cv));
        b.step::<K, FAST>(K::val_v(V::load(qb.add(32), (w >> 32) as u32, nv), cv));
    }
    (a, b)
}

/// One fold per row of a row-major chunk: `out[r]` = fold of row `r` of
/// `x` (`cols` wide, first mask bit at `bit0`), with constant `c[r]` (or 0).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn rows_fold<T: Element, V: LoadT<T>, K: Kind>(
    x: &[T],
    words: &[u64],
    bit0: usize,
    cols: usize,
    c: Option<&[V::A]>,
    out: &mut [V::A],
) {
    for (r, o) in out.iter_mut().enumerate() {
        let row = &x[r * cols..(r + 1) * cols];
        let cr = c.map_or(V::A::ZERO, |c| c[r]);
        *o = seq_fold::<T, V, K>(row, words, bit0 + r * cols, cr);
    }
}

/// Bytes of one lane's accumulators in a dim-0 column tile: the widest
/// tile is `TILE_BYTES / size_of(accumulator)` columns (4096 for f32, f16
/// and bf16, 2048 for f64), so the 32 lanes' accumulators fill half of a
/// 1 MiB L2. Wide tiles mean long row segments, which stream best: on Zen 4
/// a 4096 x 4096 f32 dim-0 sum took 1.6x the whole-array time with
/// 1024-column tiles and 1.2x with 4096-column ones.
pub const TILE_BYTES: usize = 16384;

/// The widest dim-0 column tile for accumulators `A` (see [`TILE_BYTES`]).
pub const fn tile_max<A>() -> usize {
    TILE_BYTES / std::mem::size_of::<A>()
}

/// Rows a dim-0 kernel adds into one accumulator between its load and its
/// store: rows `r, r + 32, ..., r + 32 * (DIM0_ROWS - 1)`, all of lane
/// `r % 32`, in order.
const DIM0_ROWS: usize = 4;

/// Software prefetch distance of the dim-0 kernels along a row segment.
const DIM0_PF_BYTES: usize = 2048;

/// One fold step `op(a, v)`; with `FAST` (only for [`Kind::NAN_SPLIT`]
/// folds) by [`Kind::op_fast_v`], noting NaN lanes of `v` in `nan`.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn fold_step<V: Lanes, K: Kind, const FAST: bool>(a: V, v: V, nan: &mut u32) -> V {
    if FAST {
        *nan |= v.nan_lanes();
        K::op_fast_v(a, v)
    } else {
        K::op_v(a, v)
    }
}

/// Folds rows `r, r + 32, ..., r + 32 * (u - 1)` (block rows, `xb` and
/// `bit_b` at block row 0 / column `col0`) into lane accumulator row `la`:
/// each accumulator is loaded once, takes the `u` rows in order, and is
/// stored once.
///
/// # Safety
/// Room features (see [`Lanes`]); `la` and `cp` hold `wp` values; the `u`
/// rows' `w` columns lie inside `x` (`x[o..]` is block row 0, column
/// `col0`).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn dim0_rows<T: Element, V: LoadT<T>, K: Kind, const FAST: bool>(
    x: &[T],
    o: usize,
    words: &[u64],
    cols: usize,
    w: usize,
    la: *mut V::A,
    cp: *const V::A,
    r: usize,
    u: usize,
    aligned: bool,
) -> u32 {
    let mut nan = 0u32;
    let full = w / 32;
    let xb = x.as_ptr().add(o);
    let mut g0 = 0;
    let pf = DIM0_PF_BYTES / std::mem::size_of::<T>();
    if aligned {
        // every row segment starts on a mask word: one word per row feeds
        // two groups
        let wb = words.as_ptr().add((o + r * cols) / 64);
        let ws = LANES * cols / 64;
        while g0 + 2 <= full {
            // SAFETY: as below; the words lie inside `words` (caller).
            let cv0 = V::load_acc(cp.add(g0 * 32));
            let cv1 = V::load_acc(cp.add(g0 * 32 + 32));
            let (nv0, nv1) = (K::neutral_v(cv0), K::neutral_v(cv1));
            let q0 = la.add(g0 * 32);
            let q1 = la.add(g0 * 32 + 32);
            let mut a0 = V::load_acc(q0);
            let mut a1 = V::load_acc(q1);
            for p in 0..u {
                let m = *wb.add(p * ws + g0 / 2);
                let xp = xb.add((r + p * LANES) * cols + g0 * 32);
                // masked loads train the hardware prefetcher poorly: fetch
                // DIM0_PF_BYTES ahead in the segment, past its end in the
                // same column range of the next row (the next step's row)
                let ahead = g0 * 32 + pf;
                let pp = if ahead < w {
                    xp.wrapping_add(pf)
                } else {
                    xb.wrapping_add((r + p * LANES + 1) * cols + ahead - w)
                };
                prefetch_range::<V>(pp as *const u8, 64 * std::mem::size_of::<T>(), false);
                a0 = fold_step::<V, K, FAST>(
                    a0,
                    K::val_v(V::load(xp, m as u32, nv0), cv0),
                    &mut nan,
                );
                a1 = fold_step::<V, K, FAST>(
                    a1,
                    K::val_v(V::load(xp.add(32), (m >> 32) as u32, nv1), cv1),
                    &mut nan,
                );
            }
            a0.store_acc(q0);
            a1.store_acc(q1);
            g0 += 2;
        }
    }
    for g in g0..full {
        // SAFETY: g * 32 + 32 <= w <= wp (la, cp); columns g * 32 .. + 32
        // of rows r + p * 32 lie inside `x` (caller).
        let cv = V::load_acc(cp.add(g * 32));
        let nv = K::neutral_v(cv);
        let q = la.add(g * 32);
        let mut a = V::load_acc(q);
        for p in 0..u {
            let rr = (r + p * LANES) * cols + g * 32;
            let xv = V::load(xb.add(rr), bits32(words, o + rr), nv);
            a = fold_step::<V, K, FAST>(a, K::val_v(xv, cv), &mut nan);
        }
        a.store_acc(q);
    }
    if full * 32 < w {
        let g = full;
        // SAFETY: as above; the short tail group goes through load_at.
        let cv = V::load_acc(cp.add(g * 32));
        let nv = K::neutral_v(cv);
        let q = la.add(g * 32);
        let mut a = V::load_acc(q);
        for p in 0..u {
            let s = o + (r + p * LANES) * cols;
            let (xv, _) = load_at::<T, V>(&x[s..s + w], g * 32, words, s + g * 32, nv);
            a = fold_step::<V, K, FAST>(a, K::val_v(xv, cv), &mut nan);
        }
        a.store_acc(q);
    }
    nan
}

/// The lane accumulators of one dim-0 tile (`la` = 32 rows of `wp`), in
/// bands of `DIM0_ROWS` rows per lane; returns the NaN lanes seen (`FAST`).
///
/// # Safety
/// As [`dim0_rows`].
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn dim0_tile<T: Element, V: LoadT<T>, K: Kind, const FAST: bool>(
    x: &[T],
    o: usize,
    words: &[u64],
    cols: usize,
    w: usize,
    nrows: usize,
    ap: *mut V::A,
    cp: *const V::A,
    aligned: bool,
) -> u32 {
    let wp = w.div_ceil(32) * 32;
    let mut nan = 0u32;
    let band = LANES * DIM0_ROWS;
    let bands = nrows / band;
    let r0 = bands * band;
    // The full bands (`DIM0_ROWS` rows per lane), then the rows after the
    // last one, lane by lane, through one call site: one inlined copy of
    // `dim0_rows` per tile kernel instead of two (build time and code size;
    // the same rows in the same order).
    for b in 0..=bands {
        for j in 0..LANES {
            let (r, u) = if b < bands {
                (b * band + j, DIM0_ROWS)
            } else if r0 + j < nrows {
                (r0 + j, (nrows - r0 - j).div_ceil(LANES))
            } else {
                break;
            };
            // SAFETY: lane j < LANES owns wp accumulators of `acc`; rows
            // r + p * 32 < nrows for p < u (asserted extent above).
            nan |=
                dim0_rows::<T, V, K, FAST>(x, o, words, cols, w, ap.add(j * wp), cp, r, u, aligned);
        }
    }
    nan
}

/// Dim-0 block: for columns `col0 .. col0 + w` (`w <= tile_max::<V::A>()`) and rows
/// `row0 .. row0 + nrows` (`nrows <= BLOCK`, `row0 % 32 == 0`) of the
/// row-major matrix `x` (`cols` wide, mask bit of `x[0]` at 0), writes each
/// column's canonical block partial to `out[0..w]`. Lane = row % 32;
/// vectorized across columns.
///
/// Loop order: bands of `32 * DIM0_ROWS` rows; in a band, lane `j` loads
/// each of its accumulators once, folds rows `j, j + 32, ...` of the band
/// into it in order and stores it, so every lane still sees its rows in
/// increasing order (the canonical partials) while the accumulator traffic
/// drops `DIM0_ROWS`-fold and `DIM0_ROWS` row streams are in flight. The
/// rows after the last full band go the same way, lane by lane.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn dim0_block<T: Element, V: LoadT<T>, K: Kind>(
    x: &[T],
    words: &[u64],
    cols: usize,
    col0: usize,
    w: usize,
    row0: usize,
    nrows: usize,
    c: Option<&[V::A]>,
    out: &mut [V::A],
) {
    debug_assert!(w <= tile_max::<V::A>() && nrows <= BLOCK && row0.is_multiple_of(LANES));
    if nrows == 0 || w == 0 {
        out[..w].fill(K::identity());
        return;
    }
    let groups = w.div_ceil(32);
    let wp = groups * 32;
    let mut acc = vec![K::identity::<V::A>(); LANES * wp];
    let mut cbuf = vec![V::A::ZERO; wp];
    if let Some(c) = c {
        cbuf[..w].copy_from_slice(&c[..w]);
    }
    let ap = acc.as_mut_ptr();
    let cp = cbuf.as_ptr();
    let o = row0 * cols + col0;
    let end = o + (nrows - 1) * cols + w;
    assert!(end <= x.len());
    // row segments on mask word boundaries, all words present
    let aligned =
        cols.is_multiple_of(64) && o.is_multiple_of(64) && end.div_ceil(64) <= words.len();
    // the NaN-propagating min/max folds run the hardware min/max first and
    // fold the tile again with the exact op only if a kept NaN came in
    // (see `block_fold`)
    // SAFETY (both calls): `acc` holds 32 x wp accumulators and `cbuf` wp
    // constants; the tile's rows lie inside `x` (asserted above).
    if K::NAN_SPLIT && dim0_tile::<T, V, K, true>(x, o, words, cols, w, nrows, ap, cp, aligned) != 0
    {
        acc.fill(K::identity());
        let ap = acc.as_mut_ptr();
        dim0_tile::<T, V, K, false>(x, o, words, cols, w, nrows, ap, cp, aligned);
    } else if !K::NAN_SPLIT {
        dim0_tile::<T, V, K, false>(x, o, words, cols, w, nrows, ap, cp, aligned);
    }
    let ap = acc.as_mut_ptr();
    let mut half = LANES;
    while half > 1 {
        half /= 2;
        for j in 0..half {
            for g in 0..groups {
                // SAFETY: both rows j and j + half < LANES lie inside `acc`.
                let q = ap.add(j * wp + g * 32);
                let a = V::load_acc(q);
                let b = V::load_acc(ap.add((j + half) * wp + g * 32));
                K::op_v(a, b).store_acc(q);
            }
        }
    }
    out[..w].copy_from_slice(&acc[..w]);
}

/// Softmax constants of one sequence from its max `m` and `sum exp(x - m)`
/// `s`: returns `(shift, scale)` such that the output is
/// `exp(x - shift) * scale` (softmax, `scale = 1 / s`) or
/// `(x - shift) - scale` (log-softmax, `scale = ln s`).
/// A non-finite max (a kept `±inf` or NaN) gives NaN for every kept element,
/// as PyTorch does.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn softmax_consts<A: Acc>(m: A, s: A, log: bool) -> (A, A) {
    if !m.is_finite() {
        return (A::ZERO, A::NAN);
    }
    if log {
        (m, s.ln())
    } else {
        (m, A::ONE.div(s))
    }
}

/// Per-lane constants of a map kernel: one value for the whole sequence,
/// or one per column (dim-0 kernels; indexed by the element's column).
#[derive(Clone, Copy)]
pub enum PerLane<'a, A> {
    /// The same value in every lane.
    Splat(A),
    /// `s[col]` for the element in column `col`.
    Cols(&'a [A]),
}

/// The 32 lanes of `p` for elements `off .. off + 32` (`fill` past the end).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn lanes_at<V: Lanes>(p: PerLane<'_, V::A>, off: usize, fill: V::A) -> V {
    match p {
        PerLane::Splat(a) => V::splat(a),
        PerLane::Cols(s) => {
            let k = (s.len() - off).min(32);
            if k == 32 {
                // SAFETY: off + 32 <= s.len().
                V::load_acc(s.as_ptr().add(off))
            } else {
                let mut b = [fill; 32];
                b[..k].copy_from_slice(&s[off..off + k]);
                V::load_acc(b.as_ptr())
            }
        }
    }
}

/// Softmax forward map over one sequence (a row): `y[i]` = output for kept
/// `x[i]`, `0` for masked-out; `exp(x - shift) * scale` or
/// `(x - shift) - scale` (log).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn softmax_map<T: Element, V: LoadT<T>>(
    x: &[T],
    y: &mut [T],
    words: &[u64],
    bit0: usize,
    log: bool,
    shift: PerLane<'_, V::A>,
    scale: PerLane<'_, V::A>,
) {
    let zero = V::splat(V::A::ZERO);
    let ninf = V::splat(V::A::NEG_INF);
    let n = x.len();
    let mut off = 0;
    while off < n {
        let (xv, bits) = load_at::<T, V>(x, off, words, bit0 + off, ninf);
        if bits == 0 {
            store_at::<T, V>(zero, y, off);
            off += 32;
            continue;
        }
        let sh = lanes_at::<V>(shift, off, V::A::ZERO);
        let sc = lanes_at::<V>(scale, off, V::A::ONE);
        let d = xv.sub(sh);
        let o = if log { d.sub(sc) } else { d.exp().mul(sc) };
        store_at::<T, V>(V::select(bits, o, zero), y, off);
        off += 32;
    }
}

/// Softmax prefetch distances in rows (input, output).
const PF_X: usize = 2;
const PF_Y: usize = 2;

/// One block of the softmax numerators: returns the canonical block partial
/// of `sum e`, `e = exp(x - m)` (the same bits as the `SumExp` fold with a
/// finite `m`; chunks with nothing kept are skipped, which adds nothing to
/// accumulators that are `>= +0`). With `STORE`, also stores `e` for kept
/// elements (`0` elsewhere) into `y`: only for types as wide as their
/// accumulator (`f32`, `f64`), where `e` is stored exactly; without it `y`
/// is not touched (pass an empty slice).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn block_sumexp_store<T: Element, V: LoadT<T>, const STORE: bool>(
    x: &[T],
    y: &mut [T],
    words: &[u64],
    bit0: usize,
    m: V::A,
) -> V::A {
    let mv = V::splat(m);
    let ninf = V::splat(V::A::NEG_INF);
    let zero = V::splat(V::A::ZERO);
    let mut acc = zero;
    let mut off = 0;
    if bit0.is_multiple_of(64) {
        let full = x.len() / 64;
        if let Some(ws) = words.get(bit0 / 64..bit0 / 64 + full) {
            // aligned: one mask word per 64 elements, read directly. A
            // masked-out half inside a kept word adds exp(-inf) = +0 to
            // accumulators that are >= +0: the same bits as skipping it.
            let xp = x.as_ptr();
            let yp = y.as_mut_ptr();
            for (i, &w) in ws.iter().enumerate() {
                // SAFETY: elements 64i .. 64i + 64 lie inside `x` and, with
                // STORE, `y` (only then is `yo` written).
                let (xo, yo) = (xp.add(i * 64), yp.wrapping_add(i * 64));
                if w == 0 {
                    if STORE {
                        zero.store(yo);
                        zero.store(yo.add(32));
                    }
                    continue;
                }
                let (b0, b1) = (w as u32, (w >> 32) as u32);
                // a half with nothing kept (the end of a key padding row)
                // skips its exp
                let e0 = if b0 != 0 {
                    let e = V::load(xo, b0, ninf).sub(mv).exp();
                    acc = acc.add(e);
                    e
                } else {
                    zero
                };
                let e1 = if b1 != 0 {
                    let e = V::load(xo.add(32), b1, ninf).sub(mv).exp();
                    acc = acc.add(e);
                    e
                } else {
                    zero
                };
                if STORE {
                    V::select(b0, e0, zero).store(yo);
                    V::select(b1, e1, zero).store(yo.add(32));
                }
            }
            off = full * 64;
        }
    }
    while off < x.len() {
        let (xv, bits) = load_at::<T, V>(x, off, words, bit0 + off, ninf);
        if bits == 0 {
            // nothing kept (padding): no exp, zeros out
            if STORE {
                store_at::<T, V>(zero, y, off);
            }
            off += 32;
            continue;
        }
        let e = xv.sub(mv).exp();
        acc = acc.add(e);
        if STORE {
            store_at::<T, V>(V::select(bits, e, zero), y, off);
        }
        off += 32;
    }
    acc.tree::<Sum>()
}

/// `y = y * r` on kept elements, `0` elsewhere.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn scale_kept<T: Element, V: LoadT<T>>(y: &mut [T], words: &[u64], bit0: usize, r: V::A) {
    let rv = V::splat(r);
    let zero = V::splat(V::A::ZERO);
    let mut off = 0;
    if bit0.is_multiple_of(64) {
        let full = y.len() / 64;
        if let Some(ws) = words.get(bit0 / 64..bit0 / 64 + full) {
            // aligned, after block_sumexp_store: masked-out elements already
            // hold +0 and 0 * r = +0 (r = 1 / s is positive and finite), so
            // a kept word is scaled whole, without a blend
            let yp = y.as_mut_ptr();
            for (i, &w) in ws.iter().enumerate() {
                if w != 0 {
                    // SAFETY: elements 64i .. 64i + 64 lie inside `y`.
                    let yo = yp.add(i * 64);
                    V::load(yo, u32::MAX, zero).mul(rv).store(yo);
                    V::load(yo.add(32), u32::MAX, zero)
                        .mul(rv)
                        .store(yo.add(32));
                }
            }
            off = full * 64;
        }
    }
    while off < y.len() {
        let (e, bits) = load_at::<T, V>(y, off, words, bit0 + off, zero);
        if bits != 0 {
            store_at::<T, V>(V::select(bits, e.mul(rv), zero), y, off);
        }
        off += 32;
    }
}

/// The canonical max of a row that starts on a mask word and whose words
/// `ws` cover it whole (64 elements each): words with nothing kept are
/// skipped (they would fold `-inf`, which changes no accumulator), the
/// others take the hardware max with a NaN flag, as [`block_fold`]'s fast
/// path. `None` when a kept NaN came in: the caller then takes
/// [`seq_fold`], whose exact refold gives the canonical NaN.
///
/// # Safety
/// Room features (see [`Lanes`]); `x` holds `64 * ws.len()` elements,
/// `ws.len() * 64 <= BLOCK`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn row_max_aligned<T: Element, V: LoadT<T>>(x: &[T], ws: &[u64]) -> Option<V::A> {
    debug_assert!(x.len() == ws.len() * 64 && x.len() <= BLOCK);
    let ninf = V::splat(V::A::NEG_INF);
    let mut st = LaneAcc { acc: ninf, nan: 0 };
    let p = x.as_ptr();
    for (i, &w) in ws.iter().enumerate() {
        if w == 0 {
            continue;
        }
        // SAFETY: elements 64i .. 64i + 64 lie inside `x`.
        let q = p.add(i * 64);
        st.step::<Max, true>(V::load(q, w as u32, ninf));
        st.step::<Max, true>(V::load(q.add(32), (w >> 32) as u32, ninf));
    }
    (st.nan == 0).then(|| st.acc.tree_fast::<Max>())
}

/// Softmax (or log-softmax) of each row of a row-major chunk.
///
/// Passes per row (a row is in L1 after the first): max (on rows that
/// start on a mask word, words with nothing kept are neither read nor
/// prefetched); `sum exp(x - m)`
/// (for `f32`/`f64` softmax the numerators are stored on the way and
/// scaled in place, saving the second `exp`); the output map.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn softmax_rows<T: Element, V: LoadT<T>>(
    x: &[T],
    y: &mut [T],
    words: &[u64],
    bit0: usize,
    cols: usize,
    log: bool,
) {
    if cols == 0 {
        return;
    }
    let store_e = !log && std::mem::size_of::<T>() == std::mem::size_of::<V::A>();
    let aligned = bit0.is_multiple_of(64) && cols.is_multiple_of(64) && cols <= BLOCK;
    let wbytes = 64 * std::mem::size_of::<T>();
    let row_bytes = cols * std::mem::size_of::<T>();
    let rows = x.len() / cols;
    let yp = y.as_ptr() as *const u8;
    for (r, (xr, yr)) in x.chunks(cols).zip(y.chunks_mut(cols)).enumerate() {
        let b = bit0 + r * cols;
        // the passes over a row run from L1; fetch the next rows meanwhile
        if r + PF_X < rows {
            let rp = x.as_ptr().add((r + PF_X) * cols) as *const u8;
            let nb = b + PF_X * cols;
            match words.get(nb / 64..(nb + cols) / 64).filter(|_| aligned) {
                // rows on mask words: only the lines of words that keep
                // something (key padding is not read at all)
                Some(ws) => {
                    for (i, &w) in ws.iter().enumerate() {
                        if w != 0 {
                            prefetch_range::<V>(rp.wrapping_add(i * wbytes), wbytes, false);
                        }
                    }
                }
                None => prefetch_range::<V>(rp, row_bytes, false),
            }
        }
        if r + PF_Y < rows {
            prefetch_range::<V>(yp.wrapping_add((r + PF_Y) * row_bytes), row_bytes, true);
        }
        // rows on mask words: the max skips padding words (key padding
        // masks leave whole words empty)
        let ws = if aligned {
            words.get(b / 64..(b + cols) / 64)
        } else {
            None
        };
        let m = match ws.and_then(|ws| row_max_aligned::<T, V>(xr, ws)) {
            Some(m) => m,
            None => seq_fold::<T, V, Max>(xr, words, b, V::A::ZERO),
        };
        let (shift, scale) = if !m.is_finite() {
            // a kept +-inf or NaN (or nothing kept): NaN / 0 outputs, the
            // sum is not needed
            softmax_consts(m, V::A::ZERO, log)
        } else {
            let nb = cols.div_ceil(BLOCK);
            let mut s = V::A::ZERO;
            let mut parts: Vec<V::A> = Vec::new();
            for blk in 0..nb {
                let (s0, e0) = (blk * BLOCK, cols.min((blk + 1) * BLOCK));
                let p = if store_e {
                    let yb = &mut yr[s0..e0];
                    block_sumexp_store::<T, V, true>(&xr[s0..e0], yb, words, b + s0, m)
                } else {
                    block_sumexp_store::<T, V, false>(&xr[s0..e0], &mut [], words, b + s0, m)
                };
                if nb == 1 {
                    s = p;
                } else {
                    parts.push(p);
                }
            }
            if nb > 1 {
                s = fold_partials_in(&mut parts, V::A::ZERO, |a, b| a.add(b));
            }
            if store_e {
                let (_, scale) = softmax_consts(m, s, false);
                scale_kept::<T, V>(yr, words, b, scale);
                continue;
            }
            softmax_consts(m, s, log)
        };
        softmax_map::<T, V>(
            xr,
            yr,
            words,
            b,
            log,
            PerLane::Splat(shift),
            PerLane::Splat(scale),
        );
    }
}

/// Dim-0 softmax map for whole rows of a chunk (`cols` wide, mask bit of
/// `x[0]` at `bit0`) with per-column constants.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn softmax_cols_map<T: Element, V: LoadT<T>>(
    x: &[T],
    y: &mut [T],
    words: &[u64],
    bit0: usize,
    cols: usize,
    shift: &[V::A],
    scale: &[V::A],
    log: bool,
) {
    if cols == 0 {
        return;
    }
    for (r, (xr, yr)) in x.chunks(cols).zip(y.chunks_mut(cols)).enumerate() {
        softmax_map::<T, V>(
            xr,
            yr,
            words,
            bit0 + r * cols,
            log,
            PerLane::Cols(shift),
            PerLane::Cols(scale),
        );
    }
}

/// `sum g*y` over the kept elements of one block (masked-out lanes read
/// `g = -0`, `y = +0`, whose product `-0` leaves any accumulator unchanged).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn block_dot<T: Element, V: LoadT<T>>(
    g: &[T],
    y: &[T],
    words: &[u64],
    bit0: usize,
) -> V::A {
    let ng = V::splat(V::A::NEG_ZERO);
    let ny = V::splat(V::A::ZERO);
    let mut acc = V::splat(V::A::ZERO);
    let mut off = 0;
    while off < g.len() {
        let (gv, bits) = load_at::<T, V>(g, off, words, bit0 + off, ng);
        if bits != 0 {
            let (yv, _) = load_at::<T, V>(y, off, words, bit0 + off, ny);
            acc = acc.add(gv.mul(yv));
        }
        off += 32;
    }
    acc.tree::<Sum>()
}

/// Canonical `sum g*y` of a whole sequence.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn seq_dot<T: Element, V: LoadT<T>>(
    g: &[T],
    y: &[T],
    words: &[u64],
    bit0: usize,
) -> V::A {
    let nb = g.len().div_ceil(BLOCK);
    let mut parts: Vec<V::A> = Vec::new();
    let mut only = V::A::ZERO;
    for b in 0..nb {
        let e = g.len().min((b + 1) * BLOCK);
        let p = block_dot::<T, V>(&g[b * BLOCK..e], &y[b * BLOCK..e], words, bit0 + b * BLOCK);
        if nb == 1 {
            only = p;
        } else {
            parts.push(p);
        }
    }
    if nb <= 1 {
        return only;
    }
    fold_partials_in(&mut parts, V::A::ZERO, |a, b| a.add(b))
}

/// Backward map: `dx = y * (g - k)` (softmax) or `dx = g - exp(y) * k`
/// (log-softmax) on kept elements, `0` elsewhere.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn softmax_bwd_map<T: Element, V: LoadT<T>>(
    g: &[T],
    y: &[T],
    dx: &mut [T],
    words: &[u64],
    bit0: usize,
    log: bool,
    k: PerLane<'_, V::A>,
) {
    let zero = V::splat(V::A::ZERO);
    let mut off = 0;
    while off < g.len() {
        let (gv, bits) = load_at::<T, V>(g, off, words, bit0 + off, zero);
        let (yv, _) = load_at::<T, V>(y, off, words, bit0 + off, zero);
        let kv = lanes_at::<V>(k, off, V::A::ZERO);
        let o = if log {
            gv.sub(yv.exp().mul(kv))
        } else {
            yv.mul(gv.sub(kv))
        };
        store_at::<T, V>(V::select(bits, o, zero), dx, off);
        off += 32;
    }
}

/// Backward of softmax / log-softmax along each row of a chunk.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn softmax_bwd_rows<T: Element, V: LoadT<T>>(
    g: &[T],
    y: &[T],
    dx: &mut [T],
    words: &[u64],
    bit0: usize,
    cols: usize,
    log: bool,
) {
    if cols == 0 {
        return;
    }
    for (r, ((gr, yr), dr)) in g
        .chunks(cols)
        .zip(y.chunks(cols))
        .zip(dx.chunks_mut(cols))
        .enumerate()
    {
        let b = bit0 + r * cols;
        let k = if log {
            seq_fold::<T, V, Sum>(gr, words, b, V::A::ZERO)
        } else {
            seq_dot::<T, V>(gr, yr, words, b)
        };
        softmax_bwd_map::<T, V>(gr, yr, dr, words, b, log, PerLane::Splat(k));
    }
}

/// Dim-0 backward map for whole rows of a chunk, per-column `k`.
///
/// # Safety
/// Room features (see [`Lanes`]).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn softmax_bwd_cols_map<T: Element, V: LoadT<T>>(
    g: &[T],
    y: &[T],
    dx: &mut [T],
    words: &[u64],
    bit0: usize,
    cols: usize,
    k: &[V::A],
    log: bool,
) {
    if cols == 0 {
        return;
    }
    for (r, ((gr, yr), dr)) in g
        .chunks(cols)
        .zip(y.chunks(cols))
        .zip(dx.chunks_mut(cols))
        .enumerate()
    {
        softmax_bwd_map::<T, V>(gr, yr, dr, words, bit0 + r * cols, log, PerLane::Cols(k));
    }
}

/// Dim-0 `sum g*y` block partials for a column tile (see [`dim0_block`]).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn dim0_dot_block<T: Element, V: LoadT<T>>(
    g: &[T],
    y: &[T],
    words: &[u64],
    cols: usize,
    col0: usize,
    w: usize,
    row0: usize,
    nrows: usize,
    out: &mut [V::A],
) {
    let groups = w.div_ceil(32);
    let wp = groups * 32;
    let mut acc = vec![V::A::ZERO; LANES * wp];
    let ap = acc.as_mut_ptr();
    let ng = V::splat(V::A::NEG_ZERO);
    let ny = V::splat(V::A::ZERO);
    // band order as in dim0_block: lane j folds rows j, j + 32, ... of a
    // band into each accumulator between one load and one store
    let band = LANES * DIM0_ROWS;
    let mut r0 = 0;
    while r0 < nrows {
        let nb = (nrows - r0).min(band);
        for j in 0..LANES.min(nb) {
            let u = (nb - j).div_ceil(LANES);
            for gi in 0..groups {
                // SAFETY: lane j < LANES, gi * 32 + 32 <= wp: inside `acc`.
                let q = ap.add(j * wp + gi * 32);
                let mut a = V::load_acc(q);
                for p in 0..u {
                    let r = row0 + r0 + j + p * LANES;
                    let s = r * cols + col0;
                    let (gv, bits) = load_at::<T, V>(&g[s..s + w], gi * 32, words, s + gi * 32, ng);
                    if bits != 0 {
                        let (yv, _) =
                            load_at::<T, V>(&y[s..s + w], gi * 32, words, s + gi * 32, ny);
                        a = a.add(gv.mul(yv));
                    }
                }
                a.store_acc(q);
            }
        }
        r0 += nb;
    }
    let mut half = LANES;
    while half > 1 {
        half /= 2;
        for j in 0..half {
            for gi in 0..groups {
                // SAFETY: rows j, j + half < LANES inside `acc`.
                let q = ap.add(j * wp + gi * 32);
                let b = V::load_acc(ap.add((j + half) * wp + gi * 32));
                V::load_acc(q).add(b).store_acc(q);
            }
        }
    }
    out[..w].copy_from_slice(&acc[..w]);
}

/// `dst[i] = src[i]` widened to the accumulator type, with the room's
/// loads (the conversion the engine applies to every element it reads):
/// how the half types reach the `f32` kernels ([`super::widen`]).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn widen<T: SimdElem, V: LoadT<T, A = T::Acc>>(src: &[T], dst: &mut [T::Acc]) {
    let z = V::splat(T::Acc::ZERO);
    let n = src.len().min(dst.len());
    let mut i = 0;
    while i + LANES <= n {
        // the engine's own distance ahead (prefetches never fault)
        V::prefetch(
            (src.as_ptr().add(i) as *const u8).wrapping_add(PF_BYTES),
            false,
        );
        // SAFETY: `src` and `dst` hold LANES elements from `i`.
        V::load(src.as_ptr().add(i), u32::MAX, z).store_acc(dst.as_mut_ptr().add(i));
        i += LANES;
    }
    if i < n {
        let k = n - i;
        let mut bs = [T::ZERO; LANES];
        bs[..k].copy_from_slice(&src[i..n]);
        let mut bd = [T::Acc::ZERO; LANES];
        // SAFETY: both buffers hold LANES elements.
        V::load(bs.as_ptr(), u32::MAX, z).store_acc(bd.as_mut_ptr());
        dst[i..n].copy_from_slice(&bd[..k]);
    }
}

/// `dst[i] = src[i]` rounded from the accumulator type, with the room's
/// stores (the rounding the engine applies to every element it writes).
///
/// # Safety
/// Room features (see [`Lanes`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn narrow<T: SimdElem, V: LoadT<T, A = T::Acc>>(src: &[T::Acc], dst: &mut [T]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    while i + LANES <= n {
        // SAFETY: `src` and `dst` hold LANES elements from `i`.
        V::load_acc(src.as_ptr().add(i)).store(dst.as_mut_ptr().add(i));
        i += LANES;
    }
    if i < n {
        let k = n - i;
        let mut bs = [T::Acc::ZERO; LANES];
        bs[..k].copy_from_slice(&src[i..n]);
        let mut bd = [T::ZERO; LANES];
        // SAFETY: both buffers hold LANES elements.
        V::load_acc(bs.as_ptr()).store(bd.as_mut_ptr());
        dst[i..n].copy_from_slice(&bd[..k]);
    }
}

/// Generates a room's entry points: each instantiates the generic bodies
/// above with the room's lane type, under the room's attributes
/// (`#[target_feature]`). `$v32` holds 32 `f32` lanes (for `f32`, `f16` and
/// `bf16`), `$v64` 32 `f64` lanes. `native:` instantiates the engine for
/// all four element types (the SIMD rooms); `widened:` for `f32` and `f64`
/// only, the half types reaching the room's `f32` entries on widened
/// pieces ([`super::widen`], the portable room). The macro also writes the
/// room's trait `E`, through which each entry reaches its element type's
/// body.
macro_rules! room_entries {
    // SIMD rooms: the engine instantiated for the half types too (their
    // loads convert in registers: the fastest half-precision folds)
    (native: $v32:ty, $v64:ty $(, #[$attr:meta])*) => {
        $crate::cpu::reduce::engine::room_entries!(@common $v32, $v64 $(, #[$attr])*);
        native!(half::f16, $v32);
        native!(half::bf16, $v32);
    };
    // the portable room: the half types widened to the `f32` entries
    (widened: $v32:ty, $v64:ty $(, #[$attr:meta])*) => {
        $crate::cpu::reduce::engine::room_entries!(@common $v32, $v64 $(, #[$attr])*);
        use $crate::cpu::reduce::widen;

        /// The half types and their 32-lane type (for the conversions).
        pub trait Hv: eng::SimdElem<Acc = f32> {
            /// The 32-lane type.
            type V: eng::LoadT<Self, A = f32>;
        }
        impl Hv for half::f16 {
            type V = $v32;
        }
        impl Hv for half::bf16 {
            type V = $v32;
        }

        /// A half type widened to `f32` (see `eng::widen`).
        ///
        /// # Safety
        /// The room's CPU features must be available.
        $(#[$attr])*
        #[inline(never)]
        pub unsafe fn widen_half<T: Hv>(src: &[T], dst: &mut [f32]) {
            eng::widen::<T, T::V>(src, dst)
        }

        /// `f32` rounded to a half type (see `eng::narrow`).
        ///
        /// # Safety
        /// The room's CPU features must be available.
        $(#[$attr])*
        #[inline(never)]
        pub unsafe fn narrow_half<T: Hv>(src: &[f32], dst: &mut [T]) {
            eng::narrow::<T, T::V>(src, dst)
        }

        // The room's conversions of `$t`, for `widen`.
        // SAFETY (every `unsafe` call below): the closures run inside one of
        // this room's entry points, so the room's CPU features are available
        // to the `f32` entries and the conversions they call.
        macro_rules! cv {
            ($t:ty) => {
                widen::Cv::<$t> {
                    widen: &|s, d| unsafe { widen_half::<$t>(s, d) },
                    narrow: &|s, d| unsafe { narrow_half::<$t>(s, d) },
                }
            };
        }

        macro_rules! widened {
            ($t:ty) => {
                impl E for $t {
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn seq_fold_b<K: Kind>(x: &[$t], words: &[u64], bit0: usize, c: f32) -> f32 {
                        widen::seq_fold(
                            cv!($t),
                            x, words, bit0, c,
                            &|a, w, b, c| unsafe { seq_fold::<f32, K>(a, w, b, c) },
                            &|a, w, b, c, o| unsafe { block_partials::<f32, K>(a, w, b, c, o) },
                            &|p| eng::fold_partials_in(p, K::identity(), K::op),
                        )
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn block_partials_b<K: Kind>(
                        x: &[$t], words: &[u64], bit0: usize, c: f32, out: &mut [f32],
                    ) {
                        widen::block_partials(cv!($t), x, words, bit0, c, out, &|a, w, b, c, o| unsafe {
                            block_partials::<f32, K>(a, w, b, c, o)
                        })
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn rows_fold_b<K: Kind>(
                        x: &[$t], words: &[u64], bit0: usize, cols: usize, c: Option<&[f32]>,
                        out: &mut [f32],
                    ) {
                        widen::rows_fold(cv!($t), x, words, bit0, cols, c, out, &|a, w, b, n, c, o| unsafe {
                            rows_fold::<f32, K>(a, w, b, n, c, o)
                        })
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn dim0_block_b<K: Kind>(
                        x: &[$t], words: &[u64], cols: usize, col0: usize, w: usize, row0: usize,
                        nrows: usize, c: Option<&[f32]>, out: &mut [f32],
                    ) {
                        widen::dim0_block(
                            cv!($t),
                            x, words, cols, col0, w, row0, nrows, c, out,
                            &|a, ws, n, c0, w, r0, nr, c, o| unsafe {
                                dim0_block::<f32, K>(a, ws, n, c0, w, r0, nr, c, o)
                            },
                        )
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn dim0_dot_block_b(
                        g: &[$t], y: &[$t], words: &[u64], cols: usize, col0: usize, w: usize,
                        row0: usize, nrows: usize, out: &mut [f32],
                    ) {
                        widen::dim0_dot_block(
                            cv!($t),
                            g, y, words, cols, col0, w, row0, nrows, out,
                            &|a, b, ws, n, c0, w, r0, nr, o| unsafe {
                                dim0_dot_block::<f32>(a, b, ws, n, c0, w, r0, nr, o)
                            },
                        )
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn softmax_rows_b(
                        x: &[$t], y: &mut [$t], words: &[u64], bit0: usize, cols: usize, log: bool,
                    ) {
                        widen::map_rows(cv!($t), x, y, bit0, cols, &|a, o, b| unsafe {
                            softmax_rows::<f32>(a, o, words, b, cols, log)
                        })
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn softmax_cols_map_b(
                        x: &[$t], y: &mut [$t], words: &[u64], bit0: usize, cols: usize,
                        shift: &[f32], scale: &[f32], log: bool,
                    ) {
                        widen::map_rows(cv!($t), x, y, bit0, cols, &|a, o, b| unsafe {
                            softmax_cols_map::<f32>(a, o, words, b, cols, shift, scale, log)
                        })
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn softmax_bwd_rows_b(
                        g: &[$t], y: &[$t], dx: &mut [$t], words: &[u64], bit0: usize,
                        cols: usize, log: bool,
                    ) {
                        widen::map_rows2(cv!($t), g, y, dx, bit0, cols, &|a, b, o, p| unsafe {
                            softmax_bwd_rows::<f32>(a, b, o, words, p, cols, log)
                        })
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn softmax_bwd_cols_map_b(
                        g: &[$t], y: &[$t], dx: &mut [$t], words: &[u64], bit0: usize,
                        cols: usize, k: &[f32], log: bool,
                    ) {
                        widen::map_rows2(cv!($t), g, y, dx, bit0, cols, &|a, b, o, p| unsafe {
                            softmax_bwd_cols_map::<f32>(a, b, o, words, p, cols, k, log)
                        })
                    }
                }
            };
        }
        widened!(half::f16);
        widened!(half::bf16);
    };
    (@common $v32:ty, $v64:ty $(, #[$attr:meta])*) => {
        use $crate::cpu::reduce::engine as eng;
        use eng::Kind;

        /// Element types this room handles: each one's bodies behind the
        /// room's entry points (the engine's, or the `f32` entries on
        /// widened pieces).
        ///
        /// # Safety
        /// Every method needs the room's CPU features: they are called only
        /// from the entry points below.
        #[allow(clippy::missing_safety_doc, clippy::too_many_arguments)]
        pub trait E: eng::SimdElem {
            unsafe fn seq_fold_b<K: Kind>(x: &[Self], words: &[u64], bit0: usize, c: Self::Acc) -> Self::Acc;
            unsafe fn block_partials_b<K: Kind>(
                x: &[Self], words: &[u64], bit0: usize, c: Self::Acc, out: &mut [Self::Acc],
            );
            unsafe fn rows_fold_b<K: Kind>(
                x: &[Self], words: &[u64], bit0: usize, cols: usize, c: Option<&[Self::Acc]>,
                out: &mut [Self::Acc],
            );
            unsafe fn dim0_block_b<K: Kind>(
                x: &[Self], words: &[u64], cols: usize, col0: usize, w: usize, row0: usize,
                nrows: usize, c: Option<&[Self::Acc]>, out: &mut [Self::Acc],
            );
            unsafe fn dim0_dot_block_b(
                g: &[Self], y: &[Self], words: &[u64], cols: usize, col0: usize, w: usize,
                row0: usize, nrows: usize, out: &mut [Self::Acc],
            );
            unsafe fn softmax_rows_b(
                x: &[Self], y: &mut [Self], words: &[u64], bit0: usize, cols: usize, log: bool,
            );
            unsafe fn softmax_cols_map_b(
                x: &[Self], y: &mut [Self], words: &[u64], bit0: usize, cols: usize,
                shift: &[Self::Acc], scale: &[Self::Acc], log: bool,
            );
            unsafe fn softmax_bwd_rows_b(
                g: &[Self], y: &[Self], dx: &mut [Self], words: &[u64], bit0: usize, cols: usize,
                log: bool,
            );
            unsafe fn softmax_bwd_cols_map_b(
                g: &[Self], y: &[Self], dx: &mut [Self], words: &[u64], bit0: usize, cols: usize,
                k: &[Self::Acc], log: bool,
            );
        }

        macro_rules! native {
            ($t:ty, $v:ty) => {
                impl E for $t {
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn seq_fold_b<K: Kind>(x: &[$t], words: &[u64], bit0: usize, c: <$t as eng::SimdElem>::Acc) -> <$t as eng::SimdElem>::Acc {
                        eng::whole_fold::<$t, $v, K>(x, words, bit0, c, block_partials::<$t, K>)
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn block_partials_b<K: Kind>(
                        x: &[$t], words: &[u64], bit0: usize, c: <$t as eng::SimdElem>::Acc, out: &mut [<$t as eng::SimdElem>::Acc],
                    ) {
                        eng::block_partials::<$t, $v, K>(x, words, bit0, c, out, seq_fold::<$t, K>)
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn rows_fold_b<K: Kind>(
                        x: &[$t], words: &[u64], bit0: usize, cols: usize, c: Option<&[<$t as eng::SimdElem>::Acc]>,
                        out: &mut [<$t as eng::SimdElem>::Acc],
                    ) {
                        eng::rows_fold::<$t, $v, K>(x, words, bit0, cols, c, out)
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn dim0_block_b<K: Kind>(
                        x: &[$t], words: &[u64], cols: usize, col0: usize, w: usize, row0: usize,
                        nrows: usize, c: Option<&[<$t as eng::SimdElem>::Acc]>, out: &mut [<$t as eng::SimdElem>::Acc],
                    ) {
                        eng::dim0_block::<$t, $v, K>(x, words, cols, col0, w, row0, nrows, c, out)
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn dim0_dot_block_b(
                        g: &[$t], y: &[$t], words: &[u64], cols: usize, col0: usize, w: usize,
                        row0: usize, nrows: usize, out: &mut [<$t as eng::SimdElem>::Acc],
                    ) {
                        eng::dim0_dot_block::<$t, $v>(g, y, words, cols, col0, w, row0, nrows, out)
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn softmax_rows_b(
                        x: &[$t], y: &mut [$t], words: &[u64], bit0: usize, cols: usize, log: bool,
                    ) {
                        eng::softmax_rows::<$t, $v>(x, y, words, bit0, cols, log)
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn softmax_cols_map_b(
                        x: &[$t], y: &mut [$t], words: &[u64], bit0: usize, cols: usize,
                        shift: &[<$t as eng::SimdElem>::Acc], scale: &[<$t as eng::SimdElem>::Acc], log: bool,
                    ) {
                        eng::softmax_cols_map::<$t, $v>(x, y, words, bit0, cols, shift, scale, log)
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn softmax_bwd_rows_b(
                        g: &[$t], y: &[$t], dx: &mut [$t], words: &[u64], bit0: usize,
                        cols: usize, log: bool,
                    ) {
                        eng::softmax_bwd_rows::<$t, $v>(g, y, dx, words, bit0, cols, log)
                    }
                    #[cfg_attr(not(maskops_o0), inline(always))]
                    #[cfg_attr(maskops_o0, inline)]
                    unsafe fn softmax_bwd_cols_map_b(
                        g: &[$t], y: &[$t], dx: &mut [$t], words: &[u64], bit0: usize,
                        cols: usize, k: &[<$t as eng::SimdElem>::Acc], log: bool,
                    ) {
                        eng::softmax_bwd_cols_map::<$t, $v>(g, y, dx, words, bit0, cols, k, log)
                    }
                }
            };
        }
        native!(f32, $v32);
        native!(f64, $v64);

        /// Canonical fold of a whole sequence.
        ///
        /// # Safety
        /// The room's CPU features must be available.
        $(#[$attr])*
        #[inline(never)]
        pub unsafe fn seq_fold<T: E, K: Kind>(x: &[T], words: &[u64], bit0: usize, c: T::Acc) -> T::Acc {
            T::seq_fold_b::<K>(x, words, bit0, c)
        }

        /// Number of kept bits in `start .. start + len`.
        ///
        /// # Safety
        /// The room's CPU features must be available.
        $(#[$attr])*
        pub unsafe fn count_range(words: &[u64], start: usize, len: usize) -> usize {
            eng::count_range(words, start, len)
        }

        /// Partials of consecutive canonical blocks.
        ///
        /// # Safety
        /// The room's CPU features must be available.
        $(#[$attr])*
        #[inline(never)]
        pub unsafe fn block_partials<T: E, K: Kind>(
            x: &[T], words: &[u64], bit0: usize, c: T::Acc, out: &mut [T::Acc],
        ) {
            T::block_partials_b::<K>(x, words, bit0, c, out)
        }

        /// One canonical fold per row.
        ///
        /// # Safety
        /// The room's CPU features must be available.
        $(#[$attr])*
        #[inline(never)]
        pub unsafe fn rows_fold<T: E, K: Kind>(
            x: &[T], words: &[u64], bit0: usize, cols: usize, c: Option<&[T::Acc]>, out: &mut [T::Acc],
        ) {
            T::rows_fold_b::<K>(x, words, bit0, cols, c, out)
        }

        /// Dim-0 block partials of a column tile.
        ///
        /// # Safety
        /// The room's CPU features must be available.
        #[allow(clippy::too_many_arguments)]
        $(#[$attr])*
        #[inline(never)]
        pub unsafe fn dim0_block<T: E, K: Kind>(
            x: &[T], words: &[u64], cols: usize, col0: usize, w: usize, row0: usize, nrows: usize,
            c: Option<&[T::Acc]>, out: &mut [T::Acc],
        ) {
            T::dim0_block_b::<K>(x, words, cols, col0, w, row0, nrows, c, out)
        }

        /// Dim-0 `sum g*y` block partials of a column tile.
        ///
        /// # Safety
        /// The room's CPU features must be available.
        #[allow(clippy::too_many_arguments)]
        $(#[$attr])*
        #[inline(never)]
        pub unsafe fn dim0_dot_block<T: E>(
            g: &[T], y: &[T], words: &[u64], cols: usize, col0: usize, w: usize, row0: usize,
            nrows: usize, out: &mut [T::Acc],
        ) {
            T::dim0_dot_block_b(g, y, words, cols, col0, w, row0, nrows, out)
        }

        /// Softmax / log-softmax of each row.
        ///
        /// # Safety
        /// The room's CPU features must be available.
        $(#[$attr])*
        #[inline(never)]
        pub unsafe fn softmax_rows<T: E>(
            x: &[T], y: &mut [T], words: &[u64], bit0: usize, cols: usize, log: bool,
        ) {
            T::softmax_rows_b(x, y, words, bit0, cols, log)
        }

        /// Dim-0 softmax map with per-column constants.
        ///
        /// # Safety
        /// The room's CPU features must be available.
        #[allow(clippy::too_many_arguments)]
        $(#[$attr])*
        #[inline(never)]
        pub unsafe fn softmax_cols_map<T: E>(
            x: &[T], y: &mut [T], words: &[u64], bit0: usize, cols: usize,
            shift: &[T::Acc], scale: &[T::Acc], log: bool,
        ) {
            T::softmax_cols_map_b(x, y, words, bit0, cols, shift, scale, log)
        }

        /// Softmax / log-softmax backward along each row.
        ///
        /// # Safety
        /// The room's CPU features must be available.
        #[allow(clippy::too_many_arguments)]
        $(#[$attr])*
        #[inline(never)]
        pub unsafe fn softmax_bwd_rows<T: E>(
            g: &[T], y: &[T], dx: &mut [T], words: &[u64], bit0: usize, cols: usize, log: bool,
        ) {
            T::softmax_bwd_rows_b(g, y, dx, words, bit0, cols, log)
        }

        /// Dim-0 backward map with per-column `k`.
        ///
        /// # Safety
        /// The room's CPU features must be available.
        #[allow(clippy::too_many_arguments)]
        $(#[$attr])*
        #[inline(never)]
        pub unsafe fn softmax_bwd_cols_map<T: E>(
            g: &[T], y: &[T], dx: &mut [T], words: &[u64], bit0: usize, cols: usize,
            k: &[T::Acc], log: bool,
        ) {
            T::softmax_bwd_cols_map_b(g, y, dx, words, bit0, cols, k, log)
        }
    };
}
pub(crate) use room_entries;
