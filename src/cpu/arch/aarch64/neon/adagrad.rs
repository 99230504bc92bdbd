//! `neon` Adagrad: the generic bodies (`generic::adagrad`) over 4 `f32` or
//! 2 `f64` lanes per q register. Lane masks are one `vtst` of the
//! broadcast mask bits against each lane's bit; selects are `bsl`. Call
//! only through `crate::cpu::adagrad`.

use crate::cpu::arch::generic::Vreg;
use core::arch::aarch64::*;

/// 4 `f32` lanes.
#[derive(Clone, Copy)]
pub struct Q4(float32x4_t);
/// 2 `f64` lanes.
#[derive(Clone, Copy)]
pub struct Q2(float64x2_t);

/// Each `f32` lane's bit.
const BIT4: [u32; 4] = [1, 2, 4, 8];
/// Each `f64` lane's bit.
const BIT2: [u64; 2] = [1, 2];

impl Vreg for Q4 {
    type T = f32;
    type M = uint32x4_t;
    const W: usize = 4;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Q4(vdupq_n_f32(x))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: 4 readable elements at `p`, by the trait's contract.
        Q4(vld1q_f32(p))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: 4 writable elements at `p`, by the trait's contract.
        vst1q_f32(p, self.0)
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Q4(vaddq_f32(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Q4(vsubq_f32(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Q4(vmulq_f32(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Q4(vdivq_f32(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        Q4(vsqrtq_f32(self.0))
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        // fneg flips the sign bit only (NaN payloads kept), as Rust's `-x`
        Q4(vnegq_f32(self.0))
    }
    #[inline(always)]
    unsafe fn mask(bits: u64) -> uint32x4_t {
        // SAFETY: BIT4 holds 4 u32.
        vtstq_u32(vdupq_n_u32(bits as u32), vld1q_u32(BIT4.as_ptr()))
    }
    #[inline(always)]
    unsafe fn zero_unless(m: uint32x4_t, v: Self) -> Self {
        Q4(vreinterpretq_f32_u32(vandq_u32(
            vreinterpretq_u32_f32(v.0),
            m,
        )))
    }
    #[inline(always)]
    unsafe fn blend(m: uint32x4_t, old: Self, new: Self) -> Self {
        Q4(vbslq_f32(m, new.0, old.0))
    }
}

impl Vreg for Q2 {
    type T = f64;
    type M = uint64x2_t;
    const W: usize = 2;
    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        Q2(vdupq_n_f64(x))
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: 2 readable elements at `p`, by the trait's contract.
        Q2(vld1q_f64(p))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: 2 writable elements at `p`, by the trait's contract.
        vst1q_f64(p, self.0)
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Q2(vaddq_f64(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Q2(vsubq_f64(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Q2(vmulq_f64(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Q2(vdivq_f64(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        Q2(vsqrtq_f64(self.0))
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        Q2(vnegq_f64(self.0))
    }
    #[inline(always)]
    unsafe fn mask(bits: u64) -> uint64x2_t {
        // SAFETY: BIT2 holds 2 u64.
        vtstq_u64(vdupq_n_u64(bits), vld1q_u64(BIT2.as_ptr()))
    }
    #[inline(always)]
    unsafe fn zero_unless(m: uint64x2_t, v: Self) -> Self {
        Q2(vreinterpretq_f64_u64(vandq_u64(
            vreinterpretq_u64_f64(v.0),
            m,
        )))
    }
    #[inline(always)]
    unsafe fn blend(m: uint64x2_t, old: Self, new: Self) -> Self {
        Q2(vbslq_f64(m, new.0, old.0))
    }
}

crate::cpu::arch::generic::adagrad::adagrad_entries!(
    #[target_feature(enable = "neon")]
    Q4,
    Q2
);
