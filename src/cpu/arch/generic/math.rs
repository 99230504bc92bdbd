//! `crate::math::{exp_f32, ln_f32}` on `f32` lanes, written once over
//! [`MathLanes`]: the same IEEE operations in the same order as the scalar
//! functions (plain multiplies and adds, no FMA), so every room gives their
//! bits. A room implements only the compares, the rounding and the
//! integer work on the exponent bits.

use super::elementwise::Arith;
use crate::math::{EXP_HI, EXP_LO, EXP_P, LN2_HI, LN2_LO, LOG2E, LOG_P};

/// The lane primitives of the `f32` `exp`/`ln` transcriptions.
///
/// # Safety
/// As [`Vreg`](super::Vreg): the room's target features.
#[allow(clippy::missing_safety_doc)]
pub trait MathLanes: Arith<T = f32> {
    /// Lanes where `self > o` (ordered).
    unsafe fn gt(self, o: Self) -> Self::M;
    /// Lanes where `self < o` (ordered).
    unsafe fn lt(self, o: Self) -> Self::M;
    /// Lanes where `self == o` (ordered).
    unsafe fn eq(self, o: Self) -> Self::M;
    /// Lanes where `self` is NaN or `self < o` (not `>=`, unordered).
    unsafe fn nge(self, o: Self) -> Self::M;
    /// Rounds to the nearest integer, ties to even.
    unsafe fn round(self) -> Self;
    /// `(2^n1, 2^n2)` for the integral `self = n` (`|n| <= 255`), with
    /// `n1 = n / 2` truncated toward zero and `n2 = n - n1`, both built in
    /// the exponent bits (`exp_f32`'s scaling).
    unsafe fn pow2_halves(self) -> (Self, Self);
    /// `ln_f32`'s argument reduction of a non-negative `self = x`: `(f, e)`
    /// with `e` integral and `f` the reduced mantissa (`2m - 1` or `m - 1`,
    /// `m` in `[0.5, 1)` after scaling subnormals by 2^23), as `ln_f32`
    /// computes them. Lanes with negative or NaN `x` are replaced by the
    /// caller.
    unsafe fn ln_reduce(self) -> (Self, Self);
}

/// `exp_f32` on `W` lanes.
///
/// # Safety
/// Room features.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn exp_f32<V: MathLanes>(x: V) -> V {
    let nan = x.unord(x);
    let hi = x.gt(V::splat(EXP_HI));
    let lo = x.lt(V::splat(EXP_LO));
    let n = x.mul(V::splat(LOG2E)).round();
    let r = x.sub(n.mul(V::splat(LN2_HI))).sub(n.mul(V::splat(LN2_LO)));
    let z = r.mul(r);
    let mut p = V::splat(EXP_P[0]);
    for &c in &EXP_P[1..] {
        p = p.mul(r).add(V::splat(c));
    }
    let y = p.mul(z).add(r).add(V::splat(1.0));
    let (p1, p2) = n.pow2_halves();
    let y = y.mul(p1).mul(p2);
    // lo, hi and nan are disjoint: the order of the selects is free
    let y = y.select(lo, V::splat(0.0));
    let y = y.select(hi, V::splat(f32::INFINITY));
    y.select(nan, x)
}

/// `ln_f32` on `W` lanes.
///
/// # Safety
/// Room features.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn ln_f32<V: MathLanes>(x: V) -> V {
    let zero = V::splat(0.0);
    let bad = x.nge(zero); // NaN or < 0
    let is0 = x.eq(zero);
    let isinf = x.eq(V::splat(f32::INFINITY));
    let (m, ef) = x.ln_reduce();
    let z = m.mul(m);
    let mut p = V::splat(LOG_P[0]);
    for &c in &LOG_P[1..] {
        p = p.mul(m).add(V::splat(c));
    }
    let mut y = p.mul(m).mul(z);
    y = y.add(V::splat(LN2_LO).mul(ef));
    y = y.add(V::splat(-0.5).mul(z));
    let r = m.add(y);
    let r = r.add(V::splat(LN2_HI).mul(ef));
    // bad, is0 and isinf are disjoint: the order of the selects is free
    let r = r.select(bad, V::splat(f32::NAN));
    let r = r.select(is0, V::splat(f32::NEG_INFINITY));
    r.select(isinf, x)
}
