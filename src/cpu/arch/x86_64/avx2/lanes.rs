//! The `avx2` room's registers: 8 `f32` lanes ([`Y8`]) and 4 `f64` lanes
//! ([`Y4`]) in one `ymm` register, with the lane traits of
//! `crate::cpu::arch::generic` the kernel bodies run on. Lane masks are
//! vectors with all bits set in selected lanes, made from mask bits by
//! broadcast / and / compare; masked-out lanes are zeroed by an AND, and
//! tails go through `vmaskmovps`/`vmaskmovpd`, which touch selected lanes
//! only. `exp`/`ln` for `f32` are `generic::math`'s over this room's
//! primitives; for `f64` they (and a general `pow`) call `std` lane by lane
//! (`Arith`'s defaults).
//!
//! Every method requires AVX2: they are only inlined into this room's
//! `#[target_feature]` entry points.

use crate::cpu::arch::generic::elementwise::Arith;
use crate::cpu::arch::generic::loss::LossLanes;
use crate::cpu::arch::generic::math::{exp_f32, ln_f32, MathLanes};
use crate::cpu::arch::generic::Vreg;
use crate::math::SQRTHF;
use core::arch::asm;
use core::arch::x86_64::*;

// The blends of `Vreg::blend` (Adagrad) are inline assembly: written with
// `_mm256_blendv_ps`, LLVM folds "load p; blend old and new; store p" into
// a masked store (`vmaskmovps`), which is slow on AMD cores; the assembly
// keeps a full store, as the AVX-512 room does for the same reason.
// `Arith::select` keeps the intrinsic (the elementwise ops and losses as
// they were measured).

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

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn set1(v: f32) -> __m256 {
    _mm256_set1_ps(v)
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn seti(v: i32) -> __m256i {
    _mm256_set1_epi32(v)
}

/// `a` where `m` is clear, `b` where it is set (lane masks of all ones/zeros).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn sel(m: __m256, a: __m256, b: __m256) -> __m256 {
    _mm256_blendv_ps(a, b, m)
}

impl Vreg for Y8 {
    type T = f32;
    type M = __m256;
    const W: usize = 8;
    crate::cpu::arch::generic::vreg_ops!(
        Y8,
        f32,
        splat = _mm256_set1_ps,
        load = _mm256_loadu_ps,
        store = _mm256_storeu_ps,
        add = _mm256_add_ps,
        sub = _mm256_sub_ps,
        mul = _mm256_mul_ps,
        div = _mm256_div_ps,
        sqrt = _mm256_sqrt_ps
    );
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn neg(self) -> Self {
        Y8(_mm256_xor_ps(self.0, _mm256_set1_ps(-0.0)))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn mask(bits: u64) -> __m256 {
        let lb = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        let b = _mm256_set1_epi32(bits as i32);
        _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, lb), lb))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn zero_unless(m: __m256, v: Self) -> Self {
        Y8(_mm256_and_ps(v.0, m))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn blend(m: __m256, old: Self, new: Self) -> Self {
        Y8(blend_ps(m, old.0, new.0))
    }
}

impl Arith for Y8 {
    const SKIP_EMPTY: bool = false;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        Y8(_mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_raw(self, o: Self) -> Self {
        Y8(_mm256_max_ps(self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_raw(self, o: Self) -> Self {
        Y8(_mm256_min_ps(self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn unord(self, o: Self) -> __m256 {
        _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, o.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(self, m: __m256, t: Self) -> Self {
        Y8(_mm256_blendv_ps(self.0, t.0, m))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn keep(m: __m256, v: Self) -> Self {
        Y8(_mm256_and_ps(v.0, m))
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
    unsafe fn load_kept(p: *const f32, m: __m256, whole: bool) -> Self {
        // SAFETY: `whole`: 8 readable elements; otherwise vmaskmov reads
        // only the selected lanes (the trait's contract).
        if whole {
            Y8(_mm256_and_ps(_mm256_loadu_ps(p), m))
        } else {
            Y8(_mm256_maskload_ps(p, _mm256_castps_si256(m)))
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_kept(self, p: *mut f32, m: __m256, whole: bool) {
        // SAFETY: as `load_kept`; a whole store writes back the bits the
        // masked-out lanes held. The opaque `Vreg::blend`: with a plain
        // `blendv` LLVM folds load-blend-store into a (slow) `vmaskmovps`.
        if whole {
            let old = Y8(_mm256_loadu_ps(p));
            _mm256_storeu_ps(p, Self::blend(m, old, self).0)
        } else {
            _mm256_maskstore_ps(p, _mm256_castps_si256(m), self.0)
        }
    }
}

impl MathLanes for Y8 {
    crate::cpu::arch::x86_64::math_cmps!(__m256, _mm256_cmp_ps);
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn round(self) -> Self {
        Y8(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(self.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn pow2_halves(self) -> (Self, Self) {
        let ni = _mm256_cvtps_epi32(self.0);
        // n1 = ni / 2 truncating toward zero.
        let n1 = _mm256_srai_epi32::<1>(_mm256_add_epi32(ni, _mm256_srli_epi32::<31>(ni)));
        let n2 = _mm256_sub_epi32(ni, n1);
        let p1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, seti(127))));
        let p2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, seti(127))));
        (Y8(p1), Y8(p2))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn ln_reduce(self) -> (Self, Self) {
        let x = self.0;
        // positive inputs have the sign bit clear, so a signed compare is the
        // unsigned one there (negative inputs are replaced by NaN)
        let subi = _mm256_cmpgt_epi32(seti(0x0080_0000), _mm256_castps_si256(x));
        let sub = _mm256_castsi256_ps(subi);
        let xs = sel(sub, x, _mm256_mul_ps(x, set1(8_388_608.0)));
        let bits = _mm256_castps_si256(xs);
        let e0 = _mm256_and_si256(subi, seti(-23));
        let e = _mm256_add_epi32(
            e0,
            _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), seti(126)),
        );
        let m = _mm256_castsi256_ps(_mm256_or_si256(
            _mm256_and_si256(bits, seti(0x007f_ffff)),
            seti(0x3f00_0000),
        ));
        let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(m, set1(SQRTHF));
        // e - 1 where lt: adding the all-ones lane mask (-1)
        let e = _mm256_add_epi32(e, _mm256_castps_si256(lt));
        let one = set1(1.0);
        let m = sel(
            lt,
            _mm256_sub_ps(m, one),
            _mm256_sub_ps(_mm256_add_ps(m, m), one),
        );
        (Y8(m), Y8(_mm256_cvtepi32_ps(e)))
    }
}

impl LossLanes for Y8 {
    const PAIRS: bool = false;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn ge(self, o: Self) -> __m256 {
        _mm256_cmp_ps::<_CMP_GE_OQ>(self.0, o.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sgn(self) -> Self {
        // the three cases are exclusive, so AND/OR selects them (no blends)
        let d = self.0;
        let zero = _mm256_setzero_ps();
        let pos = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(d, zero), set1(1.0));
        let neg = _mm256_and_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(d, zero), set1(-1.0));
        let nan = _mm256_and_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(d, d), d);
        Y8(_mm256_or_ps(_mm256_or_ps(pos, neg), nan))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add_kept(acc: Self, m: __m256, v: Self) -> Self {
        // a masked-out lane adds +0
        Y8(_mm256_add_ps(acc.0, _mm256_and_ps(v.0, m)))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_valid(p: *const f32, tail: Option<__m256>) -> Self {
        // SAFETY: by the trait's contract (vmaskmov reads selected lanes only).
        match tail {
            None => Y8(_mm256_loadu_ps(p)),
            Some(m) => Y8(_mm256_maskload_ps(p, _mm256_castps_si256(m))),
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_valid(self, p: *mut f32, tail: Option<__m256>, stream: bool) {
        // SAFETY: by the trait's contract (vmaskmov writes selected lanes only).
        match tail {
            None if stream => _mm256_stream_ps(p, self.0),
            None => _mm256_storeu_ps(p, self.0),
            Some(m) => _mm256_maskstore_ps(p, _mm256_castps_si256(m), self.0),
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn stream(self, p: *mut f32) {
        // SAFETY: 32-byte aligned, 8 writable elements (the trait's contract).
        _mm256_stream_ps(p, self.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sfence() {
        _mm_sfence()
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn row_max(x: &[f32]) -> f32 {
        let n = x.len();
        let mut mx = set1(f32::NEG_INFINITY);
        let full = n / 8 * 8;
        let mut k = 0;
        while k < full {
            // SAFETY: k + 8 <= n.
            mx = _mm256_max_ps(mx, _mm256_loadu_ps(x.as_ptr().add(k)));
            k += 8;
        }
        let mut lanes = [0.0f32; 8];
        // SAFETY: 8 f32 fit in `lanes`.
        _mm256_storeu_ps(lanes.as_mut_ptr(), mx);
        lanes
            .iter()
            .chain(&x[full..])
            .fold(f32::NEG_INFINITY, |a, &b| a.max(b))
    }
}

impl Vreg for Y4 {
    type T = f64;
    type M = __m256d;
    const W: usize = 4;
    crate::cpu::arch::generic::vreg_ops!(
        Y4,
        f64,
        splat = _mm256_set1_pd,
        load = _mm256_loadu_pd,
        store = _mm256_storeu_pd,
        add = _mm256_add_pd,
        sub = _mm256_sub_pd,
        mul = _mm256_mul_pd,
        div = _mm256_div_pd,
        sqrt = _mm256_sqrt_pd
    );
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn neg(self) -> Self {
        Y4(_mm256_xor_pd(self.0, _mm256_set1_pd(-0.0)))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn mask(bits: u64) -> __m256d {
        let lb = _mm256_setr_epi64x(1, 2, 4, 8);
        let b = _mm256_set1_epi64x(bits as i64);
        _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(b, lb), lb))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn zero_unless(m: __m256d, v: Self) -> Self {
        Y4(_mm256_and_pd(v.0, m))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn blend(m: __m256d, old: Self, new: Self) -> Self {
        Y4(blend_pd(m, old.0, new.0))
    }
}

impl Arith for Y4 {
    const SKIP_EMPTY: bool = false;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        Y4(_mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_raw(self, o: Self) -> Self {
        Y4(_mm256_max_pd(self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_raw(self, o: Self) -> Self {
        Y4(_mm256_min_pd(self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn unord(self, o: Self) -> __m256d {
        _mm256_cmp_pd::<_CMP_UNORD_Q>(self.0, o.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(self, m: __m256d, t: Self) -> Self {
        Y4(_mm256_blendv_pd(self.0, t.0, m))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn keep(m: __m256d, v: Self) -> Self {
        Y4(_mm256_and_pd(v.0, m))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_kept(p: *const f64, m: __m256d, whole: bool) -> Self {
        // SAFETY: `whole`: 4 readable elements; otherwise vmaskmov reads
        // only the selected lanes (the trait's contract).
        if whole {
            Y4(_mm256_and_pd(_mm256_loadu_pd(p), m))
        } else {
            Y4(_mm256_maskload_pd(p, _mm256_castpd_si256(m)))
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_kept(self, p: *mut f64, m: __m256d, whole: bool) {
        // SAFETY: as `load_kept`; a whole store writes back the bits the
        // masked-out lanes held. The opaque `Vreg::blend`: with a plain
        // `blendv` LLVM folds load-blend-store into a (slow) `vmaskmovps`.
        if whole {
            let old = Y4(_mm256_loadu_pd(p));
            _mm256_storeu_pd(p, Self::blend(m, old, self).0)
        } else {
            _mm256_maskstore_pd(p, _mm256_castpd_si256(m), self.0)
        }
    }
}
