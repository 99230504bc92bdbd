//! The `neon` room's registers: 4 `f32` lanes ([`Q4`]) and 2 `f64` lanes
//! ([`Q2`]) in one q register, with the lane traits of
//! `crate::cpu::arch::generic` the kernel bodies run on. The 32 canonical
//! lanes of a loss chunk are eight `Q4` side by side (lanes 0–3, 4–7, …).
//!
//! Lane masks are all-ones / all-zeros vectors: the mask word broadcast and
//! tested against each lane's bit by one `cmtst` (no branch per bit);
//! masked-out lanes are zeroed by an AND and selects are `bsl`. NEON has
//! no masked loads or stores, so whole vectors are loaded and stored whole
//! (a store writes back the bits the masked-out lanes held, as the AVX2
//! room does), and only a vector reaching past the end of the data moves
//! its selected lanes one by one. `exp`/`ln` for `f32` are
//! `generic::math`'s over this room's primitives; for `f64` they (and a
//! general `pow`) call `std` lane by lane (`Arith`'s defaults). Max/min
//! are compare-and-select, not `fmax`/`fmin` (whose NaN and signed-zero
//! rules differ from the canonical `a > b ? a : b`). There are no non-temporal stores here: the
//! losses' streaming stores are plain stores in this room.
//!
//! NEON is part of the aarch64 base architecture; the methods are still
//! only inlined into this room's `#[target_feature(enable = "neon")]`
//! entry points, reached through `crate::cpu`'s dispatch.

use super::reduce::{BIT2, BIT4};
use crate::cpu::arch::generic::elementwise::Arith;
use crate::cpu::arch::generic::loss::LossLanes;
use crate::cpu::arch::generic::math::{exp_f32, ln_f32, MathLanes};
use crate::cpu::arch::generic::Vreg;
use crate::math::SQRTHF;
use core::arch::aarch64::*;

/// 4 `f32` lanes.
#[derive(Clone, Copy)]
pub struct Q4(pub(super) float32x4_t);
/// 2 `f64` lanes.
#[derive(Clone, Copy)]
pub struct Q2(pub(super) float64x2_t);

/// The selected lanes of a 4-lane mask as bits (lane `j` is bit `j`).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn bits4(m: uint32x4_t) -> u32 {
    // SAFETY: BIT4[0] holds 4 u32.
    vaddvq_u32(vandq_u32(m, vld1q_u32(BIT4[0].as_ptr())))
}

/// The selected lanes of a 2-lane mask as bits.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn bits2(m: uint64x2_t) -> u32 {
    // SAFETY: BIT2[0] holds 2 u64.
    vaddvq_u64(vandq_u64(m, vld1q_u64(BIT2[0].as_ptr()))) as u32
}

/// Copies element `j` of `src` to element `j` of `dst` for the set bits `j`
/// of `bits` (a tail: one lane at a time).
///
/// # Safety
/// For each set bit `j`, `src + j` is readable and `dst + j` writable.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn copy_lanes<T: Copy>(src: *const T, dst: *mut T, bits: u32, w: usize) {
    for j in 0..w {
        if bits >> j & 1 != 0 {
            // SAFETY: lane j is selected, so both ends are valid (contract).
            unsafe { *dst.add(j) = *src.add(j) };
        }
    }
}

impl Vreg for Q4 {
    type T = f32;
    type M = uint32x4_t;
    const W: usize = 4;
    crate::cpu::arch::generic::vreg_ops!(
        Q4,
        f32,
        splat = vdupq_n_f32,
        load = vld1q_f32,
        store = vst1q_f32,
        add = vaddq_f32,
        sub = vsubq_f32,
        mul = vmulq_f32,
        div = vdivq_f32,
        sqrt = vsqrtq_f32
    );
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn neg(self) -> Self {
        // fneg flips the sign bit only (NaN payloads kept), as Rust's `-x`
        Q4(vnegq_f32(self.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn mask(bits: u64) -> uint32x4_t {
        // SAFETY: BIT4[0] holds 4 u32.
        vtstq_u32(vdupq_n_u32(bits as u32), vld1q_u32(BIT4[0].as_ptr()))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn zero_unless(m: uint32x4_t, v: Self) -> Self {
        Q4(vreinterpretq_f32_u32(vandq_u32(
            vreinterpretq_u32_f32(v.0),
            m,
        )))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn blend(m: uint32x4_t, old: Self, new: Self) -> Self {
        Q4(vbslq_f32(m, new.0, old.0))
    }
}

impl Arith for Q4 {
    const SKIP_EMPTY: bool = false;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        // fabs clears the sign bit only (NaN payloads kept)
        Q4(vabsq_f32(self.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_raw(self, o: Self) -> Self {
        Q4(vbslq_f32(vcgtq_f32(self.0, o.0), self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_raw(self, o: Self) -> Self {
        Q4(vbslq_f32(vcltq_f32(self.0, o.0), self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn unord(self, o: Self) -> uint32x4_t {
        vmvnq_u32(vandq_u32(vceqq_f32(self.0, self.0), vceqq_f32(o.0, o.0)))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(self, m: uint32x4_t, t: Self) -> Self {
        Q4(vbslq_f32(m, t.0, self.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn keep(m: uint32x4_t, v: Self) -> Self {
        Self::zero_unless(m, v)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn exp(self) -> Self {
        exp_f32(self)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn ln(self) -> Self {
        ln_f32(self)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_kept(p: *const f32, m: uint32x4_t, whole: bool) -> Self {
        if whole {
            // SAFETY: 4 readable elements at `p` (`whole`).
            Self::zero_unless(m, Q4(vld1q_f32(p)))
        } else {
            let mut buf = [0.0f32; 4];
            // SAFETY: the lanes of `m` are readable at `p` (the contract).
            copy_lanes(p, buf.as_mut_ptr(), bits4(m), 4);
            Q4(vld1q_f32(buf.as_ptr()))
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_kept(self, p: *mut f32, m: uint32x4_t, whole: bool) {
        if whole {
            // SAFETY: 4 readable and writable elements at `p` (`whole`);
            // the masked-out lanes get back the bits they held.
            vst1q_f32(p, vbslq_f32(m, self.0, vld1q_f32(p)))
        } else {
            let mut buf = [0.0f32; 4];
            vst1q_f32(buf.as_mut_ptr(), self.0);
            // SAFETY: the lanes of `m` are writable at `p` (the contract).
            copy_lanes(buf.as_ptr(), p, bits4(m), 4);
        }
    }
}

impl MathLanes for Q4 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn gt(self, o: Self) -> uint32x4_t {
        vcgtq_f32(self.0, o.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn lt(self, o: Self) -> uint32x4_t {
        vcltq_f32(self.0, o.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn eq(self, o: Self) -> uint32x4_t {
        vceqq_f32(self.0, o.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn nge(self, o: Self) -> uint32x4_t {
        vmvnq_u32(vcgeq_f32(self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn round(self) -> Self {
        // frintn: to nearest, ties to even
        Q4(vrndnq_f32(self.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn pow2_halves(self) -> (Self, Self) {
        // n is integral (and in range wherever the result is used): exact
        let ni = vcvtq_s32_f32(self.0);
        // n1 = ni / 2 truncated toward zero: add the sign bit, shift
        let sign = vreinterpretq_s32_u32(vshrq_n_u32::<31>(vreinterpretq_u32_s32(ni)));
        let n1 = vshrq_n_s32::<1>(vaddq_s32(ni, sign));
        let n2 = vsubq_s32(ni, n1);
        let bias = vdupq_n_s32(127);
        let p1 = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(n1, bias)));
        let p2 = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(n2, bias)));
        (Q4(p1), Q4(p2))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn ln_reduce(self) -> (Self, Self) {
        let x = self.0;
        // positive inputs have the sign bit clear, so a signed compare is
        // the unsigned one there (negative inputs are replaced by NaN)
        let xi = vreinterpretq_s32_f32(x);
        let sub = vcgtq_s32(vdupq_n_s32(0x0080_0000), xi);
        let xs = vbslq_f32(sub, vmulq_f32(x, vdupq_n_f32(8_388_608.0)), x);
        let bits = vreinterpretq_s32_f32(xs);
        let e0 = vandq_s32(vreinterpretq_s32_u32(sub), vdupq_n_s32(-23));
        let top = vreinterpretq_s32_u32(vshrq_n_u32::<23>(vreinterpretq_u32_s32(bits)));
        let e = vaddq_s32(e0, vsubq_s32(top, vdupq_n_s32(126)));
        let m = vreinterpretq_f32_s32(vorrq_s32(
            vandq_s32(bits, vdupq_n_s32(0x007f_ffff)),
            vdupq_n_s32(0x3f00_0000),
        ));
        let lt = vcltq_f32(m, vdupq_n_f32(SQRTHF));
        // e - 1 where lt: adding the all-ones lane mask (-1)
        let e = vaddq_s32(e, vreinterpretq_s32_u32(lt));
        let one = vdupq_n_f32(1.0);
        // 2m - 1 where m < sqrt(1/2) (and e - 1 above), m - 1 elsewhere
        let m = vbslq_f32(lt, vsubq_f32(vaddq_f32(m, m), one), vsubq_f32(m, one));
        (Q4(m), Q4(vcvtq_f32_s32(e)))
    }
}

impl LossLanes for Q4 {
    // eight registers per chunk, two independent exp/ln chains at a time
    const PAIRS: bool = true;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn ge(self, o: Self) -> uint32x4_t {
        vcgeq_f32(self.0, o.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sgn(self) -> Self {
        // the three cases are exclusive, so AND/OR selects them
        let d = self.0;
        let zero = vdupq_n_f32(0.0);
        let pos = vandq_u32(vcgtq_f32(d, zero), vreinterpretq_u32_f32(vdupq_n_f32(1.0)));
        let neg = vandq_u32(vcltq_f32(d, zero), vreinterpretq_u32_f32(vdupq_n_f32(-1.0)));
        let nan = vandq_u32(vmvnq_u32(vceqq_f32(d, d)), vreinterpretq_u32_f32(d));
        Q4(vreinterpretq_f32_u32(vorrq_u32(vorrq_u32(pos, neg), nan)))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add_kept(acc: Self, m: uint32x4_t, v: Self) -> Self {
        // a masked-out lane adds +0
        acc.add(Self::zero_unless(m, v))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_valid(p: *const f32, tail: Option<uint32x4_t>) -> Self {
        match tail {
            // SAFETY: 4 readable elements at `p` (the trait's contract).
            None => Q4(vld1q_f32(p)),
            // SAFETY: the lanes of `m` are readable (the trait's contract).
            Some(m) => Self::load_kept(p, m, false),
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_valid(self, p: *mut f32, tail: Option<uint32x4_t>, _stream: bool) {
        match tail {
            // SAFETY: 4 writable elements at `p` (the trait's contract).
            None => vst1q_f32(p, self.0),
            // SAFETY: the lanes of `m` are writable (the trait's contract).
            Some(m) => self.store_kept(p, m, false),
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn stream(self, p: *mut f32) {
        // SAFETY: 4 writable elements at `p` (the trait's contract); a
        // plain store (see the module documentation).
        vst1q_f32(p, self.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sfence() {
        // plain stores: nothing to order
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn row_max(x: &[f32]) -> f32 {
        // fmaxnm ignores NaN, as the portable room's `f32::max` fold does;
        // the maximum is exact, so the order does not matter
        let n = x.len();
        let mut mx = vdupq_n_f32(f32::NEG_INFINITY);
        let full = n / 4 * 4;
        let mut k = 0;
        while k < full {
            // SAFETY: k + 4 <= n.
            mx = vmaxnmq_f32(mx, vld1q_f32(x.as_ptr().add(k)));
            k += 4;
        }
        let mut lanes = [0.0f32; 4];
        // SAFETY: 4 f32 fit in `lanes`.
        vst1q_f32(lanes.as_mut_ptr(), mx);
        lanes
            .iter()
            .chain(&x[full..])
            .fold(f32::NEG_INFINITY, |a, &b| a.max(b))
    }
}

impl Vreg for Q2 {
    type T = f64;
    type M = uint64x2_t;
    const W: usize = 2;
    crate::cpu::arch::generic::vreg_ops!(
        Q2,
        f64,
        splat = vdupq_n_f64,
        load = vld1q_f64,
        store = vst1q_f64,
        add = vaddq_f64,
        sub = vsubq_f64,
        mul = vmulq_f64,
        div = vdivq_f64,
        sqrt = vsqrtq_f64
    );
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn neg(self) -> Self {
        Q2(vnegq_f64(self.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn mask(bits: u64) -> uint64x2_t {
        // SAFETY: BIT2[0] holds 2 u64.
        vtstq_u64(vdupq_n_u64(bits), vld1q_u64(BIT2[0].as_ptr()))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn zero_unless(m: uint64x2_t, v: Self) -> Self {
        Q2(vreinterpretq_f64_u64(vandq_u64(
            vreinterpretq_u64_f64(v.0),
            m,
        )))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn blend(m: uint64x2_t, old: Self, new: Self) -> Self {
        Q2(vbslq_f64(m, new.0, old.0))
    }
}

impl Arith for Q2 {
    const SKIP_EMPTY: bool = false;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        Q2(vabsq_f64(self.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_raw(self, o: Self) -> Self {
        Q2(vbslq_f64(vcgtq_f64(self.0, o.0), self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_raw(self, o: Self) -> Self {
        Q2(vbslq_f64(vcltq_f64(self.0, o.0), self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn unord(self, o: Self) -> uint64x2_t {
        let ord = vandq_u64(vceqq_f64(self.0, self.0), vceqq_f64(o.0, o.0));
        // no 64-bit `mvn`: the 32-bit one flips the same bits
        vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(ord)))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(self, m: uint64x2_t, t: Self) -> Self {
        Q2(vbslq_f64(m, t.0, self.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn keep(m: uint64x2_t, v: Self) -> Self {
        Self::zero_unless(m, v)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_kept(p: *const f64, m: uint64x2_t, whole: bool) -> Self {
        if whole {
            // SAFETY: 2 readable elements at `p` (`whole`).
            Self::zero_unless(m, Q2(vld1q_f64(p)))
        } else {
            let mut buf = [0.0f64; 2];
            // SAFETY: the lanes of `m` are readable at `p` (the contract).
            copy_lanes(p, buf.as_mut_ptr(), bits2(m), 2);
            Q2(vld1q_f64(buf.as_ptr()))
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_kept(self, p: *mut f64, m: uint64x2_t, whole: bool) {
        if whole {
            // SAFETY: 2 readable and writable elements at `p` (`whole`);
            // the masked-out lanes get back the bits they held.
            vst1q_f64(p, vbslq_f64(m, self.0, vld1q_f64(p)))
        } else {
            let mut buf = [0.0f64; 2];
            vst1q_f64(buf.as_mut_ptr(), self.0);
            // SAFETY: the lanes of `m` are writable at `p` (the contract).
            copy_lanes(buf.as_ptr(), p, bits2(m), 2);
        }
    }
}
