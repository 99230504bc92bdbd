//! The elementwise ops shared by the x86-64 rooms: the lane arithmetic a
//! room provides ([`Arith`]) and the op evaluation written once on top of
//! it. Each lane evaluates exactly the portable scalar definition
//! (`crate::cpu::arch::portable::elementwise`): same IEEE operations in the
//! same order, no FMA.

use crate::array::{BinaryOp, UnaryOp};
use crate::cpu::arch::portable::elementwise::PowKind;

/// Lane arithmetic of one vector of floats. All methods require the room's
/// target features (they are only inlined into its `#[target_feature]`
/// entry points).
pub(super) trait Arith: Copy {
    /// The element type.
    type S: crate::element::Float;
    /// A lane selection: a vector with all bits set in selected lanes
    /// (AVX2) or a `k` register's bits (AVX-512).
    type M: Copy;
    unsafe fn splat(s: Self::S) -> Self;
    unsafe fn add(self, o: Self) -> Self;
    unsafe fn sub(self, o: Self) -> Self;
    unsafe fn mul(self, o: Self) -> Self;
    unsafe fn div(self, o: Self) -> Self;
    unsafe fn sqrt(self) -> Self;
    unsafe fn neg(self) -> Self;
    unsafe fn abs(self) -> Self;
    /// `self > o ? self : o` (x86 `max` operand order).
    unsafe fn max_raw(self, o: Self) -> Self;
    /// `self < o ? self : o`.
    unsafe fn min_raw(self, o: Self) -> Self;
    /// Lanes where `self` or `o` is NaN.
    unsafe fn unord(self, o: Self) -> Self::M;
    /// `m ? t : self` per lane.
    unsafe fn blend(self, m: Self::M, t: Self) -> Self;
    unsafe fn exp(self) -> Self;
    unsafe fn ln(self) -> Self;
    unsafe fn powf(self, p: Self::S) -> Self;
}

/// A unary op with its constants splatted once.
#[derive(Clone, Copy)]
pub(super) enum Un<T: Arith> {
    Neg,
    Abs,
    Sqrt,
    Exp,
    Ln,
    Sq,
    Cube,
    RSqrt,
    Recip,
    RecipSq,
    Id,
    Pow(T::S),
    Add(T),
    Mul(T),
    Clamp(T, T),
}

#[inline(always)]
pub(super) unsafe fn prep<T: Arith>(op: UnaryOp<T::S>) -> Un<T> {
    // SAFETY: splat is a register op (caller has the target features).
    unsafe {
        match op {
            UnaryOp::Neg => Un::Neg,
            UnaryOp::Abs => Un::Abs,
            UnaryOp::Sqrt => Un::Sqrt,
            UnaryOp::Exp => Un::Exp,
            UnaryOp::Log => Un::Ln,
            UnaryOp::Pow(p) => match PowKind::of(p) {
                PowKind::Half => Un::Sqrt,
                PowKind::One => Un::Id,
                PowKind::Two => Un::Sq,
                PowKind::Three => Un::Cube,
                PowKind::NegHalf => Un::RSqrt,
                PowKind::NegOne => Un::Recip,
                PowKind::NegTwo => Un::RecipSq,
                PowKind::General => Un::Pow(p),
            },
            UnaryOp::AddScalar(s) => Un::Add(T::splat(s)),
            UnaryOp::MulScalar(s) => Un::Mul(T::splat(s)),
            UnaryOp::Clamp(lo, hi) => Un::Clamp(T::splat(lo), T::splat(hi)),
        }
    }
}

#[inline(always)]
pub(super) unsafe fn eval_un<T: Arith>(op: Un<T>, x: T) -> T {
    // SAFETY: register ops only (caller has the target features).
    unsafe {
        let one = || T::splat(<T::S as crate::element::Float>::ONE);
        match op {
            Un::Neg => x.neg(),
            Un::Abs => x.abs(),
            Un::Sqrt => x.sqrt(),
            Un::Exp => x.exp(),
            Un::Ln => x.ln(),
            Un::Sq => x.mul(x),
            Un::Cube => x.mul(x).mul(x),
            Un::RSqrt => one().div(x.sqrt()),
            Un::Recip => one().div(x),
            Un::RecipSq => one().div(x.mul(x)),
            Un::Id => x,
            Un::Pow(p) => x.powf(p),
            Un::Add(s) => x.add(s),
            Un::Mul(s) => x.mul(s),
            Un::Clamp(lo, hi) => {
                let z = x.max_raw(lo).min_raw(hi);
                z.blend(x.unord(x), x)
            }
        }
    }
}

#[inline(always)]
pub(super) unsafe fn eval_bin<T: Arith>(op: BinaryOp, a: T, b: T) -> T {
    // SAFETY: register ops only.
    unsafe {
        match op {
            BinaryOp::Add => a.add(b),
            BinaryOp::Sub => a.sub(b),
            BinaryOp::Mul => a.mul(b),
            BinaryOp::Div => a.div(b),
            BinaryOp::Maximum => a.max_raw(b).blend(a.unord(b), a.add(b)),
            BinaryOp::Minimum => a.min_raw(b).blend(a.unord(b), a.add(b)),
        }
    }
}

/// Prefetch distance of the elementwise loops, in bytes (as the reductions'
/// `PF_BYTES`: masked loads train the hardware prefetcher poorly, and on
/// Zen 4 a masked in-place scale of 2^24 f32 ran at ~0.3 of a plain scale
/// without it).
const PF_BYTES: usize = 8192;

/// Prefetches the 64 elements at `p + i` plus [`PF_BYTES`] (a hint: never
/// faults, whatever the address).
#[inline(always)]
pub(super) fn prefetch64<S>(p: *const S, i: usize) {
    prefetch_lines(p.wrapping_add(i), 64 * std::mem::size_of::<S>());
}

/// Prefetches the `bytes` bytes at `p` plus [`PF_BYTES`], one hint per
/// 64-byte line (a hint: never faults, whatever the address). Shared by the
/// elementwise and loss rooms.
#[inline(always)]
pub(crate) fn prefetch_lines<S>(p: *const S, bytes: usize) {
    let base = p as *const i8;
    let mut o = 0;
    while o < bytes {
        // SAFETY: a prefetch is only a hint and never faults (SSE is part
        // of the x86-64 baseline).
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                base.wrapping_add(PF_BYTES + o),
            )
        };
        o += 64;
    }
}
