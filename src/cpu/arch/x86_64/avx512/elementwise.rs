//! `avx512` elementwise kernels: 16 `f32` / 8 `f64` lanes, the keep bits
//! used directly as the `k` mask register of every load and store.
//!
//! Masked-out lanes are loaded as `0` (`vmovups` with zero-masking, which
//! also suppresses faults past the end), computed on harmlessly, and never
//! stored. Each lane evaluates exactly the portable scalar definition
//! (`crate::cpu::arch::portable::elementwise`): same IEEE operations in the
//! same order, no FMA; `exp`/`ln` for `f32` transcribe `crate::math`; for
//! `f64` they (and a general `pow`) call `std` lane by lane.
//!
//! Contract of the raw-pointer entry points: see the portable module.

use crate::array::{BinaryOp, UnaryOp};
use crate::cpu::arch::portable::elementwise::{chunk_bits, RawRhs};
use crate::cpu::arch::x86_64::ew_ops::{eval_bin, eval_un, prefetch64, prep, Arith};
use crate::math::{EXP_HI, EXP_LO, EXP_P, LN2_HI, LN2_LO, LOG2E, LOG_P, SQRTHF};
use std::arch::x86_64::*;

/// A 512-bit vector of one float type. All methods require AVX-512F/DQ
/// (they are only inlined into the `#[target_feature]` entry points below).
trait V: Arith<M = u64> {
    const L: usize;
    const FULL: u64;
    unsafe fn loadz(k: u64, p: *const Self::S) -> Self;
    unsafe fn store(p: *mut Self::S, k: u64, v: Self);
}

/// Lane-by-lane scalar fallback through memory.
macro_rules! per_lane {
    ($v:expr, $t:ty, $n:expr, $f:expr, $load:ident, $store:ident) => {{
        let mut buf = [0 as $t; $n];
        $store(buf.as_mut_ptr(), $v);
        for x in buf.iter_mut() {
            *x = $f(*x);
        }
        $load(buf.as_ptr())
    }};
}

#[derive(Clone, Copy)]
struct F32x16(__m512);
#[derive(Clone, Copy)]
struct F64x8(__m512d);

impl Arith for F32x16 {
    type S = f32;
    type M = u64;
    #[inline(always)]
    unsafe fn splat(s: f32) -> Self {
        F32x16(_mm512_set1_ps(s))
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        F32x16(_mm512_add_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        F32x16(_mm512_sub_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        F32x16(_mm512_mul_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        F32x16(_mm512_div_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        F32x16(_mm512_sqrt_ps(self.0))
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        F32x16(_mm512_castsi512_ps(_mm512_xor_si512(
            _mm512_castps_si512(self.0),
            _mm512_set1_epi32(i32::MIN),
        )))
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        F32x16(_mm512_castsi512_ps(_mm512_and_si512(
            _mm512_castps_si512(self.0),
            _mm512_set1_epi32(i32::MAX),
        )))
    }
    #[inline(always)]
    unsafe fn max_raw(self, o: Self) -> Self {
        F32x16(_mm512_max_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn min_raw(self, o: Self) -> Self {
        F32x16(_mm512_min_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn unord(self, o: Self) -> u64 {
        _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, o.0) as u64
    }
    #[inline(always)]
    unsafe fn blend(self, k: u64, t: Self) -> Self {
        F32x16(_mm512_mask_blend_ps(k as __mmask16, self.0, t.0))
    }
    #[inline(always)]
    unsafe fn exp(self) -> Self {
        // Transcription of crate::math::exp_f32.
        let x = self.0;
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
        let hi = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, _mm512_set1_ps(EXP_HI));
        let lo = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(EXP_LO));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(LOG2E)),
        );
        let r = _mm512_sub_ps(
            _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(LN2_HI))),
            _mm512_mul_ps(n, _mm512_set1_ps(LN2_LO)),
        );
        let z = _mm512_mul_ps(r, r);
        let mut p = _mm512_set1_ps(EXP_P[0]);
        for &c in &EXP_P[1..] {
            p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(c));
        }
        let y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, z), r), _mm512_set1_ps(1.0));
        let ni = _mm512_cvtps_epi32(n);
        // n1 = ni / 2 truncating toward zero.
        let n1 = _mm512_srai_epi32::<1>(_mm512_add_epi32(ni, _mm512_srli_epi32::<31>(ni)));
        let n2 = _mm512_sub_epi32(ni, n1);
        let bias = _mm512_set1_epi32(127);
        let p1 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n1, bias)));
        let p2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n2, bias)));
        let mut res = _mm512_mul_ps(_mm512_mul_ps(y, p1), p2);
        res = _mm512_mask_blend_ps(hi, res, _mm512_set1_ps(f32::INFINITY));
        res = _mm512_mask_blend_ps(lo, res, _mm512_setzero_ps());
        res = _mm512_mask_blend_ps(nan, res, x);
        F32x16(res)
    }
    #[inline(always)]
    unsafe fn ln(self) -> Self {
        // Transcription of crate::math::ln_f32.
        let x = self.0;
        let zero = _mm512_setzero_ps();
        let bad =
            _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x) | _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, zero);
        let is0 = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, zero);
        let isinf = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, _mm512_set1_ps(f32::INFINITY));
        let bits0 = _mm512_castps_si512(x);
        let sub = _mm512_cmplt_epi32_mask(bits0, _mm512_set1_epi32(0x0080_0000));
        let xs = _mm512_mask_blend_ps(sub, x, _mm512_mul_ps(x, _mm512_set1_ps(8_388_608.0)));
        let bits = _mm512_castps_si512(xs);
        let e0 = _mm512_maskz_mov_epi32(sub, _mm512_set1_epi32(-23));
        let mut e = _mm512_add_epi32(
            e0,
            _mm512_sub_epi32(_mm512_srli_epi32::<23>(bits), _mm512_set1_epi32(126)),
        );
        let m0 = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
            _mm512_set1_epi32(0x3f00_0000),
        ));
        let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(m0, _mm512_set1_ps(SQRTHF));
        e = _mm512_mask_sub_epi32(e, lt, e, _mm512_set1_epi32(1));
        let one = _mm512_set1_ps(1.0);
        let m = _mm512_mask_blend_ps(
            lt,
            _mm512_sub_ps(m0, one),
            _mm512_sub_ps(_mm512_add_ps(m0, m0), one),
        );
        let ef = _mm512_cvtepi32_ps(e);
        let z = _mm512_mul_ps(m, m);
        let mut p = _mm512_set1_ps(LOG_P[0]);
        for &c in &LOG_P[1..] {
            p = _mm512_add_ps(_mm512_mul_ps(p, m), _mm512_set1_ps(c));
        }
        let mut y = _mm512_mul_ps(_mm512_mul_ps(p, m), z);
        y = _mm512_add_ps(y, _mm512_mul_ps(_mm512_set1_ps(LN2_LO), ef));
        y = _mm512_add_ps(y, _mm512_mul_ps(_mm512_set1_ps(-0.5), z));
        let r = _mm512_add_ps(m, y);
        let mut res = _mm512_add_ps(r, _mm512_mul_ps(_mm512_set1_ps(LN2_HI), ef));
        res = _mm512_mask_blend_ps(isinf, res, x);
        res = _mm512_mask_blend_ps(is0, res, _mm512_set1_ps(f32::NEG_INFINITY));
        res = _mm512_mask_blend_ps(bad, res, _mm512_set1_ps(f32::NAN));
        F32x16(res)
    }
    #[inline(always)]
    unsafe fn powf(self, p: f32) -> Self {
        // SAFETY: 16-element stack buffer.
        unsafe {
            F32x16(per_lane!(
                self.0,
                f32,
                16,
                |x: f32| x.powf(p),
                _mm512_loadu_ps,
                _mm512_storeu_ps
            ))
        }
    }
}

impl V for F32x16 {
    const L: usize = 16;
    const FULL: u64 = 0xFFFF;
    #[inline(always)]
    unsafe fn loadz(k: u64, p: *const f32) -> Self {
        // SAFETY: caller guarantees every lane in `k` is in bounds; masked
        // lanes are not accessed (fault suppression).
        F32x16(unsafe { _mm512_maskz_loadu_ps(k as __mmask16, p) })
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, k: u64, v: Self) {
        // SAFETY: as `loadz`.
        unsafe { _mm512_mask_storeu_ps(p, k as __mmask16, v.0) }
    }
}

impl Arith for F64x8 {
    type S = f64;
    type M = u64;
    #[inline(always)]
    unsafe fn splat(s: f64) -> Self {
        F64x8(_mm512_set1_pd(s))
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        F64x8(_mm512_add_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        F64x8(_mm512_sub_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        F64x8(_mm512_mul_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        F64x8(_mm512_div_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        F64x8(_mm512_sqrt_pd(self.0))
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        F64x8(_mm512_castsi512_pd(_mm512_xor_si512(
            _mm512_castpd_si512(self.0),
            _mm512_set1_epi64(i64::MIN),
        )))
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        F64x8(_mm512_castsi512_pd(_mm512_and_si512(
            _mm512_castpd_si512(self.0),
            _mm512_set1_epi64(i64::MAX),
        )))
    }
    #[inline(always)]
    unsafe fn max_raw(self, o: Self) -> Self {
        F64x8(_mm512_max_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn min_raw(self, o: Self) -> Self {
        F64x8(_mm512_min_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn unord(self, o: Self) -> u64 {
        _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(self.0, o.0) as u64
    }
    #[inline(always)]
    unsafe fn blend(self, k: u64, t: Self) -> Self {
        F64x8(_mm512_mask_blend_pd(k as __mmask8, self.0, t.0))
    }
    #[inline(always)]
    unsafe fn exp(self) -> Self {
        // SAFETY: 8-element stack buffer.
        unsafe {
            F64x8(per_lane!(
                self.0,
                f64,
                8,
                f64::exp,
                _mm512_loadu_pd,
                _mm512_storeu_pd
            ))
        }
    }
    #[inline(always)]
    unsafe fn ln(self) -> Self {
        // SAFETY: 8-element stack buffer.
        unsafe {
            F64x8(per_lane!(
                self.0,
                f64,
                8,
                f64::ln,
                _mm512_loadu_pd,
                _mm512_storeu_pd
            ))
        }
    }
    #[inline(always)]
    unsafe fn powf(self, p: f64) -> Self {
        // SAFETY: 8-element stack buffer.
        unsafe {
            F64x8(per_lane!(
                self.0,
                f64,
                8,
                |x: f64| x.powf(p),
                _mm512_loadu_pd,
                _mm512_storeu_pd
            ))
        }
    }
}

impl V for F64x8 {
    const L: usize = 8;
    const FULL: u64 = 0xFF;
    #[inline(always)]
    unsafe fn loadz(k: u64, p: *const f64) -> Self {
        // SAFETY: caller guarantees every lane in `k` is in bounds.
        F64x8(unsafe { _mm512_maskz_loadu_pd(k as __mmask8, p) })
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, k: u64, v: Self) {
        // SAFETY: as `loadz`.
        unsafe { _mm512_mask_storeu_pd(p, k as __mmask8, v.0) }
    }
}

/// # Safety
/// The portable module's contract; AVX-512F/DQ available.
#[inline(always)]
unsafe fn run_unary<T: V>(
    op: UnaryOp<T::S>,
    src: *const T::S,
    dst: *mut T::S,
    n: usize,
    words: &[u64],
    off: usize,
) {
    // SAFETY: caller has the target features.
    let op = unsafe { prep::<T>(op) };
    let mut i = 0;
    while i < n {
        prefetch64(src, i);
        if !std::ptr::eq(dst, src) {
            prefetch64(dst, i);
        }
        let bits = chunk_bits(words, off, i, n);
        if bits != 0 {
            let rem = n - i;
            let mut j = 0;
            while j < 64 && j < rem {
                let k = (bits >> j) & T::FULL;
                if k != 0 {
                    // SAFETY: lanes in `k` are < n (bits past n are
                    // cleared); i + j < n keeps the pointers in bounds.
                    unsafe {
                        let x = T::loadz(k, src.add(i + j));
                        T::store(dst.add(i + j), k, eval_un(op, x));
                    }
                }
                j += T::L;
            }
        }
        i += 64;
    }
}

/// # Safety
/// The portable module's contract; AVX-512F/DQ available.
#[inline(always)]
unsafe fn run_binary<T: V>(
    op: BinaryOp,
    a: *const T::S,
    b: RawRhs<T::S>,
    dst: *mut T::S,
    n: usize,
    words: &[u64],
    off: usize,
) {
    // SAFETY: caller has the target features.
    let splat = unsafe {
        match b {
            RawRhs::Scalar(s) => Some(T::splat(s)),
            RawRhs::Ptr(_) => None,
        }
    };
    let mut i = 0;
    while i < n {
        prefetch64(a, i);
        if let RawRhs::Ptr(p) = b {
            prefetch64(p, i);
        }
        if !std::ptr::eq(dst, a) {
            prefetch64(dst, i);
        }
        let bits = chunk_bits(words, off, i, n);
        if bits != 0 {
            let rem = n - i;
            let mut j = 0;
            while j < 64 && j < rem {
                let k = (bits >> j) & T::FULL;
                if k != 0 {
                    // SAFETY: as in `run_unary`; a `Ptr` operand holds n
                    // elements.
                    unsafe {
                        let x = T::loadz(k, a.add(i + j));
                        let y = match (splat, b) {
                            (Some(s), _) => s,
                            (None, RawRhs::Ptr(p)) => T::loadz(k, p.add(i + j)),
                            (None, RawRhs::Scalar(s)) => T::splat(s),
                        };
                        T::store(dst.add(i + j), k, eval_bin(op, x, y));
                    }
                }
                j += T::L;
            }
        }
        i += 64;
    }
}

/// Unary op on `f32`.
///
/// # Safety
/// The portable module's contract; AVX-512F/BW/VL/DQ available.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub unsafe fn unary_f32(
    op: UnaryOp<f32>,
    src: *const f32,
    dst: *mut f32,
    n: usize,
    words: &[u64],
    off: usize,
) {
    // SAFETY: forwarded contract; features enabled on this function.
    unsafe { run_unary::<F32x16>(op, src, dst, n, words, off) }
}

/// Unary op on `f64`.
///
/// # Safety
/// As [`unary_f32`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub unsafe fn unary_f64(
    op: UnaryOp<f64>,
    src: *const f64,
    dst: *mut f64,
    n: usize,
    words: &[u64],
    off: usize,
) {
    // SAFETY: forwarded contract; features enabled on this function.
    unsafe { run_unary::<F64x8>(op, src, dst, n, words, off) }
}

/// Binary op on `f32`.
///
/// # Safety
/// As [`unary_f32`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub unsafe fn binary_f32(
    op: BinaryOp,
    a: *const f32,
    b: RawRhs<f32>,
    dst: *mut f32,
    n: usize,
    words: &[u64],
    off: usize,
) {
    // SAFETY: forwarded contract; features enabled on this function.
    unsafe { run_binary::<F32x16>(op, a, b, dst, n, words, off) }
}

/// Binary op on `f64`.
///
/// # Safety
/// As [`unary_f32`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub unsafe fn binary_f64(
    op: BinaryOp,
    a: *const f64,
    b: RawRhs<f64>,
    dst: *mut f64,
    n: usize,
    words: &[u64],
    off: usize,
) {
    // SAFETY: forwarded contract; features enabled on this function.
    unsafe { run_binary::<F64x8>(op, a, b, dst, n, words, off) }
}
