//! `avx2` Adagrad: the generic bodies (`generic::adagrad`) over this room's
//! registers, 8 `f32` or 4 `f64` lanes. Lane masks come from the mask bits
//! by broadcast / and / compare; selects are `blendv`. Call only through
//! `crate::cpu::adagrad`.

use crate::cpu::arch::generic::Vreg;
use core::arch::asm;
use core::arch::x86_64::*;

// The blends are inline assembly: written with `_mm256_blendv_ps`, LLVM
// folds "load p; blend old and new; store p" into a masked store
// (`vmaskmovps`), which is slow on AMD cores; the assembly keeps a full
// store, as the AVX-512 room does for the same reason.

macro_rules! blendv {
    ($name:ident, $v:ty, $ins:literal) => {
        /// `new` in the lanes whose mask sign bit is set, `old` elsewhere.
        #[target_feature(enable = "avx")]
        #[inline]
        fn $name(m: $v, old: $v, new: $v) -> $v {
            let r: $v;
            // SAFETY: a register-only blend; no memory, no flags.
            unsafe {
                asm!(
                    concat!($ins, " {r}, {old}, {new}, {m}"),
                    r = lateout(ymm_reg) r,
                    old = in(ymm_reg) old,
                    new = in(ymm_reg) new,
                    m = in(ymm_reg) m,
                    options(pure, nomem, nostack, preserves_flags)
                )
            };
            r
        }
    };
}
blendv!(blend_ps, __m256, "vblendvps");
blendv!(blend_pd, __m256d, "vblendvpd");

/// 8 `f32` lanes.
#[derive(Clone, Copy)]
pub struct Y8(__m256);
/// 4 `f64` lanes.
#[derive(Clone, Copy)]
pub struct Y4(__m256d);

impl Vreg for Y8 {
    type T = f32;
    type M = __m256;
    const W: usize = 8;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Y8(_mm256_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: 8 readable elements at `p`, by the trait's contract.
        Y8(_mm256_loadu_ps(p))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: 8 writable elements at `p`, by the trait's contract.
        _mm256_storeu_ps(p, self.0)
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Y8(_mm256_add_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Y8(_mm256_sub_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Y8(_mm256_mul_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Y8(_mm256_div_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        Y8(_mm256_sqrt_ps(self.0))
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        Y8(_mm256_xor_ps(self.0, _mm256_set1_ps(-0.0)))
    }
    #[inline(always)]
    unsafe fn mask(bits: u64) -> __m256 {
        let lb = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        let b = _mm256_set1_epi32(bits as i32);
        _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, lb), lb))
    }
    #[inline(always)]
    unsafe fn zero_unless(m: __m256, v: Self) -> Self {
        Y8(_mm256_and_ps(v.0, m))
    }
    #[inline(always)]
    unsafe fn blend(m: __m256, old: Self, new: Self) -> Self {
        Y8(blend_ps(m, old.0, new.0))
    }
}

impl Vreg for Y4 {
    type T = f64;
    type M = __m256d;
    const W: usize = 4;
    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        Y4(_mm256_set1_pd(x))
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: 4 readable elements at `p`, by the trait's contract.
        Y4(_mm256_loadu_pd(p))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: 4 writable elements at `p`, by the trait's contract.
        _mm256_storeu_pd(p, self.0)
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Y4(_mm256_add_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Y4(_mm256_sub_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Y4(_mm256_mul_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Y4(_mm256_div_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        Y4(_mm256_sqrt_pd(self.0))
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        Y4(_mm256_xor_pd(self.0, _mm256_set1_pd(-0.0)))
    }
    #[inline(always)]
    unsafe fn mask(bits: u64) -> __m256d {
        let lb = _mm256_setr_epi64x(1, 2, 4, 8);
        let b = _mm256_set1_epi64x(bits as i64);
        _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(b, lb), lb))
    }
    #[inline(always)]
    unsafe fn zero_unless(m: __m256d, v: Self) -> Self {
        Y4(_mm256_and_pd(v.0, m))
    }
    #[inline(always)]
    unsafe fn blend(m: __m256d, old: Self, new: Self) -> Self {
        Y4(blend_pd(m, old.0, new.0))
    }
}

crate::cpu::arch::generic::adagrad::adagrad_entries!(
    #[target_feature(enable = "avx2")]
    Y8,
    Y4
);
