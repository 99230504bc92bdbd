//! `neon` reduce and softmax kernels: the 32 canonical lanes live in eight
//! `float32x4_t` registers for `f32` accumulators and sixteen
//! `float64x2_t` for `f64`. Each nibble of the mask word (pair, for `f64`)
//! becomes a lane mask with one `vtst` against the lane bits, no branch per
//! bit, and the fold's neutral input is selected into masked-out lanes
//! before any arithmetic. Halves widen with `fcvtl` (`f16`, base AArch64)
//! or a 16-bit shift (`bf16`).
//!
//! Every operation is the scalar's, in the scalar's order: no fused
//! multiply-add (the intrinsics below are separate `fmul`/`fadd`, which
//! LLVM does not contract), round-ties-even range reduction in `exp`.

use crate::cpu::reduce::engine::{Lanes, LoadT};
use crate::math::{EXP_HI, EXP_LO, EXP_P, LN2_HI, LN2_LO, LOG2E};
use core::arch::aarch64::*;
use half::{bf16, f16};

/// 32 `f32` lanes in eight q registers.
#[derive(Clone, Copy)]
pub struct Q32([float32x4_t; 8]);

/// 32 `f64` lanes in sixteen q registers.
#[derive(Clone, Copy)]
pub struct Q64([float64x2_t; 16]);

/// Bit of each `f32` lane of register `g` in the 32-bit mask word: lane
/// `4g + j` is bit `4g + j`.
pub(super) const BIT4: [[u32; 4]; 8] = {
    let mut t = [[0u32; 4]; 8];
    let mut k = 0;
    while k < 32 {
        t[k / 4][k % 4] = 1 << k;
        k += 1;
    }
    t
};
/// Bit of each `f64` lane of register `g`: lane `2g + j` is bit `2g + j`.
pub(super) const BIT2: [[u64; 2]; 16] = {
    let mut t = [[0u64; 2]; 16];
    let mut k = 0;
    while k < 32 {
        t[k / 2][k % 2] = 1 << k;
        k += 1;
    }
    t
};

/// Lane mask of the 4 `f32` lanes of register `g`: the whole word
/// broadcast (once: the compiler shares it between the eight registers)
/// and tested against that register's lane bits, one `cmtst` per register.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn lane_mask4(bits: u32, g: usize) -> uint32x4_t {
    // SAFETY: `g < 8`; BIT4[g] holds 4 u32.
    vtstq_u32(vdupq_n_u32(bits), vld1q_u32(BIT4[g].as_ptr()))
}

/// Lane mask of the 2 `f64` lanes of register `g`, as [`lane_mask4`].
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn lane_mask2(bits: u32, g: usize) -> uint64x2_t {
    // SAFETY: `g < 16`; BIT2[g] holds 2 u64.
    vtstq_u64(vdupq_n_u64(bits as u64), vld1q_u64(BIT2[g].as_ptr()))
}

/// `math::exp_f32`, transcribed: same constants, same operation order, no
/// FMA, round-ties-even range reduction.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn exp_ps(x: float32x4_t) -> float32x4_t {
    let s = |v: f32| vdupq_n_f32(v);
    let n = vrndnq_f32(vmulq_f32(x, s(LOG2E)));
    let r = vsubq_f32(
        vsubq_f32(x, vmulq_f32(n, s(LN2_HI))),
        vmulq_f32(n, s(LN2_LO)),
    );
    let z = vmulq_f32(r, r);
    let mut p = s(EXP_P[0]);
    for &c in &EXP_P[1..6] {
        p = vaddq_f32(vmulq_f32(p, r), s(c));
    }
    let y = vaddq_f32(vaddq_f32(vmulq_f32(p, z), r), s(1.0));
    // n is integral (and in range wherever the result is used): exact
    let ni = vcvtq_s32_f32(n);
    // n1 = ni / 2 truncated toward zero, as Rust's i32 division
    let sign = vreinterpretq_s32_u32(vshrq_n_u32::<31>(vreinterpretq_u32_s32(ni)));
    let n1 = vshrq_n_s32::<1>(vaddq_s32(ni, sign));
    let n2 = vsubq_s32(ni, n1);
    let bias = vdupq_n_s32(127);
    let p1 = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(n1, bias)));
    let p2 = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(n2, bias)));
    let mut res = vmulq_f32(vmulq_f32(y, p1), p2);
    res = vbslq_f32(vcltq_f32(x, s(EXP_LO)), s(0.0), res);
    res = vbslq_f32(vcgtq_f32(x, s(EXP_HI)), s(f32::INFINITY), res);
    // NaN in, the same NaN out
    vbslq_f32(vceqq_f32(x, x), res, x)
}

/// `b` where `b > a` or (`b` is NaN and `a` is not), else `a`: `max_op`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn max_ps(a: float32x4_t, b: float32x4_t) -> float32x4_t {
    let b_nan_a_ord = vbicq_u32(vceqq_f32(a, a), vceqq_f32(b, b));
    vbslq_f32(vorrq_u32(vcgtq_f32(b, a), b_nan_a_ord), b, a)
}

/// `min_op`, as [`max_ps`].
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn min_ps(a: float32x4_t, b: float32x4_t) -> float32x4_t {
    let b_nan_a_ord = vbicq_u32(vceqq_f32(a, a), vceqq_f32(b, b));
    vbslq_f32(vorrq_u32(vcltq_f32(b, a), b_nan_a_ord), b, a)
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn max_pd(a: float64x2_t, b: float64x2_t) -> float64x2_t {
    let b_nan_a_ord = vbicq_u64(vceqq_f64(a, a), vceqq_f64(b, b));
    vbslq_f64(vorrq_u64(vcgtq_f64(b, a), b_nan_a_ord), b, a)
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn min_pd(a: float64x2_t, b: float64x2_t) -> float64x2_t {
    let b_nan_a_ord = vbicq_u64(vceqq_f64(a, a), vceqq_f64(b, b));
    vbslq_f64(vorrq_u64(vcltq_f64(b, a), b_nan_a_ord), b, a)
}

// NEON is part of the aarch64 base target, so closures (which do not
// inherit `#[target_feature]`) compile to the same instructions: the lane
// arrays are built with `core::array::from_fn`.

impl Lanes for Q32 {
    type A = f32;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn splat(a: f32) -> Self {
        Q32([vdupq_n_f32(a); 8])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_acc(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 32 readable accumulators at `p`.
        Q32(core::array::from_fn(|i| unsafe { vld1q_f32(p.add(4 * i)) }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_acc(self, p: *mut f32) {
        for (i, v) in self.0.iter().enumerate() {
            // SAFETY: the caller guarantees 32 writable accumulators at `p`.
            vst1q_f32(p.add(4 * i), *v);
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add(self, o: Self) -> Self {
        Q32(core::array::from_fn(|i| unsafe {
            vaddq_f32(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sub(self, o: Self) -> Self {
        Q32(core::array::from_fn(|i| unsafe {
            vsubq_f32(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn mul(self, o: Self) -> Self {
        Q32(core::array::from_fn(|i| unsafe {
            vmulq_f32(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn div(self, o: Self) -> Self {
        Q32(core::array::from_fn(|i| unsafe {
            vdivq_f32(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        // fabs clears the sign bit only (NaN payloads kept), as x86's andnot
        Q32(core::array::from_fn(|i| unsafe { vabsq_f32(self.0[i]) }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_op(self, o: Self) -> Self {
        Q32(core::array::from_fn(|i| unsafe {
            max_ps(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_op(self, o: Self) -> Self {
        Q32(core::array::from_fn(|i| unsafe {
            min_ps(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_fast(self, o: Self) -> Self {
        // `fmax` would turn max(-0, +0) into +0 where the canonical op keeps
        // the first operand: a compare and select instead
        Q32(core::array::from_fn(|i| unsafe {
            vbslq_f32(vcgtq_f32(o.0[i], self.0[i]), o.0[i], self.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_fast(self, o: Self) -> Self {
        Q32(core::array::from_fn(|i| unsafe {
            vbslq_f32(vcltq_f32(o.0[i], self.0[i]), o.0[i], self.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn nan_lanes(self) -> u32 {
        // lane j of a 4-lane word is bit j: the lane bits of register 0
        let bit = vld1q_u32(BIT4[0].as_ptr());
        let mut m = 0u32;
        for (i, v) in self.0.iter().enumerate() {
            let nan = vmvnq_u32(vceqq_f32(*v, *v));
            m |= vaddvq_u32(vandq_u32(nan, bit)) << (4 * i);
        }
        m
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn exp(self) -> Self {
        Q32(core::array::from_fn(|i| unsafe { exp_ps(self.0[i]) }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(bits: u32, a: Self, b: Self) -> Self {
        Q32(core::array::from_fn(|i| unsafe {
            vbslq_f32(lane_mask4(bits, i), a.0[i], b.0[i])
        }))
    }
}

impl LoadT<f32> for Q32 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const f32, bits: u32, n: Self) -> Self {
        // the select happens before any arithmetic: masked-out lanes are replaced
        // SAFETY: the caller guarantees 32 readable elements at `p`.
        Q32(core::array::from_fn(|i| unsafe {
            vbslq_f32(lane_mask4(bits, i), vld1q_f32(p.add(4 * i)), n.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut f32) {
        self.store_acc(p)
    }
}

/// Four `f16` (bits) widened exactly to `f32`; signalling NaNs come out
/// quiet with their payload, as `half` and x86's F16C do.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn f16x4_to_f32(h: uint16x4_t) -> float32x4_t {
    let r: float32x4_t;
    // SAFETY: FCVTL (half to single) is base AArch64 Advanced SIMD; it reads
    // and writes registers only. (Its intrinsic, `vcvt_f32_f16`, is not
    // stable Rust.)
    core::arch::asm!(
        "fcvtl {r:v}.4s, {h:v}.4h",
        r = lateout(vreg) r,
        h = in(vreg) h,
        options(pure, nomem, nostack, preserves_flags)
    );
    r
}

/// Four `f32` narrowed to `f16` bits, round to nearest even (FPCR's default
/// mode, which Rust code never changes); NaNs quieted with the payload's top
/// bits, as `half` and F16C.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn f32_to_f16x4(v: float32x4_t) -> uint16x4_t {
    let r: uint16x4_t;
    // SAFETY: FCVTN (single to half) is base AArch64 Advanced SIMD; registers
    // only.
    core::arch::asm!(
        "fcvtn {r:v}.4h, {v:v}.4s",
        r = lateout(vreg) r,
        v = in(vreg) v,
        options(pure, nomem, nostack, preserves_flags)
    );
    r
}

impl LoadT<f16> for Q32 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const f16, bits: u32, n: Self) -> Self {
        let q = p as *const u16;
        // SAFETY: the caller guarantees 32 readable elements at `p`.
        Q32(core::array::from_fn(|i| unsafe {
            vbslq_f32(
                lane_mask4(bits, i),
                f16x4_to_f32(vld1_u16(q.add(4 * i))),
                n.0[i],
            )
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut f16) {
        let q = p as *mut u16;
        for (i, v) in self.0.iter().enumerate() {
            // SAFETY: the caller guarantees 32 writable elements at `p`.
            vst1_u16(q.add(4 * i), f32_to_f16x4(*v));
        }
    }
}

/// `f32` -> `bf16` bits, round to nearest even, NaN quieted (as `half`).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn to_bf16(v: float32x4_t) -> uint16x4_t {
    let b = vreinterpretq_u32_f32(v);
    let lsb = vandq_u32(vshrq_n_u32::<16>(b), vdupq_n_u32(1));
    let rounded = vshrq_n_u32::<16>(vaddq_u32(vaddq_u32(b, vdupq_n_u32(0x7fff)), lsb));
    let nan = vorrq_u32(vshrq_n_u32::<16>(b), vdupq_n_u32(0x40));
    let is_nan = vmvnq_u32(vceqq_f32(v, v));
    vmovn_u32(vbslq_u32(is_nan, nan, rounded))
}

impl LoadT<bf16> for Q32 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const bf16, bits: u32, n: Self) -> Self {
        let q = p as *const u16;
        // SAFETY: the caller guarantees 32 readable elements at `p`.
        Q32(core::array::from_fn(|i| unsafe {
            let w = vreinterpretq_f32_u32(vshll_n_u16::<16>(vld1_u16(q.add(4 * i))));
            vbslq_f32(lane_mask4(bits, i), w, n.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut bf16) {
        let q = p as *mut u16;
        for (i, v) in self.0.iter().enumerate() {
            // SAFETY: the caller guarantees 32 writable elements at `p`.
            vst1_u16(q.add(4 * i), to_bf16(*v));
        }
    }
}

impl Lanes for Q64 {
    type A = f64;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn splat(a: f64) -> Self {
        Q64([vdupq_n_f64(a); 16])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_acc(p: *const f64) -> Self {
        // SAFETY: the caller guarantees 32 readable accumulators at `p`.
        Q64(core::array::from_fn(|i| unsafe { vld1q_f64(p.add(2 * i)) }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_acc(self, p: *mut f64) {
        for (i, v) in self.0.iter().enumerate() {
            // SAFETY: the caller guarantees 32 writable accumulators at `p`.
            vst1q_f64(p.add(2 * i), *v);
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add(self, o: Self) -> Self {
        Q64(core::array::from_fn(|i| unsafe {
            vaddq_f64(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sub(self, o: Self) -> Self {
        Q64(core::array::from_fn(|i| unsafe {
            vsubq_f64(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn mul(self, o: Self) -> Self {
        Q64(core::array::from_fn(|i| unsafe {
            vmulq_f64(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn div(self, o: Self) -> Self {
        Q64(core::array::from_fn(|i| unsafe {
            vdivq_f64(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        Q64(core::array::from_fn(|i| unsafe { vabsq_f64(self.0[i]) }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_op(self, o: Self) -> Self {
        Q64(core::array::from_fn(|i| unsafe {
            max_pd(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_op(self, o: Self) -> Self {
        Q64(core::array::from_fn(|i| unsafe {
            min_pd(self.0[i], o.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_fast(self, o: Self) -> Self {
        Q64(core::array::from_fn(|i| unsafe {
            vbslq_f64(vcgtq_f64(o.0[i], self.0[i]), o.0[i], self.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_fast(self, o: Self) -> Self {
        Q64(core::array::from_fn(|i| unsafe {
            vbslq_f64(vcltq_f64(o.0[i], self.0[i]), o.0[i], self.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn nan_lanes(self) -> u32 {
        let bit = vld1q_u64(BIT2[0].as_ptr());
        let mut ord = 0u32;
        for (i, v) in self.0.iter().enumerate() {
            ord |= (vaddvq_u64(vandq_u64(vceqq_f64(*v, *v), bit)) as u32) << (2 * i);
        }
        !ord
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(bits: u32, a: Self, b: Self) -> Self {
        Q64(core::array::from_fn(|i| unsafe {
            vbslq_f64(lane_mask2(bits, i), a.0[i], b.0[i])
        }))
    }
}

impl LoadT<f64> for Q64 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const f64, bits: u32, n: Self) -> Self {
        // SAFETY: the caller guarantees 32 readable elements at `p`.
        Q64(core::array::from_fn(|i| unsafe {
            vbslq_f64(lane_mask2(bits, i), vld1q_f64(p.add(2 * i)), n.0[i])
        }))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut f64) {
        self.store_acc(p)
    }
}

crate::cpu::reduce::engine::room_entries!(
    native: Q32, Q64,
    #[target_feature(enable = "neon")]
);
