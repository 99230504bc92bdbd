//! `avx2` elementwise kernels: 8 `f32` / 4 `f64` lanes.
//!
//! Chunks of 64 elements with no kept bit are skipped. Inside a chunk every
//! vector is processed without branching on its lanes (a branch on "all
//! lanes kept" mispredicts at densities near 0.9): masked-out input lanes
//! are zeroed by an AND before any arithmetic (poison never reaches an op),
//! and the result is blended with the destination's current value and
//! stored whole, so masked-out slots get back exactly the bits they held.
//! A vector reaching past the end goes through `vmaskmovps`/`vmaskmovpd`,
//! which touches kept lanes only. Each lane evaluates exactly the portable scalar definition
//! (`crate::cpu::arch::portable::elementwise`): same IEEE operations in the
//! same order, no FMA; `exp`/`ln` for `f32` transcribe `crate::math`; for
//! `f64` they (and a general `pow`) call `std` lane by lane.
//!
//! Contract of the raw-pointer entry points: see the portable module.

use crate::array::{BinaryOp, UnaryOp};
use crate::cpu::arch::portable::elementwise::{chunk_bits, RawRhs};
use crate::cpu::arch::x86_64::ew_ops::{eval_bin, eval_un, prefetch64, prep, Arith, Un};
use crate::math::{EXP_HI, EXP_LO, EXP_P, LN2_HI, LN2_LO, LOG2E, LOG_P, SQRTHF};
use std::arch::x86_64::*;

/// A 256-bit vector of one float type; lane masks are vectors of the same
/// type with all bits set in selected lanes. All methods require AVX2 (they
/// are only inlined into the `#[target_feature]` entry points below).
trait V: Arith<M = Self> {
    const L: usize;
    const FULL: u64;
    /// Lane mask from the low `L` bits of `k`.
    unsafe fn lanes(k: u64) -> Self;
    unsafe fn load(p: *const Self::S) -> Self;
    unsafe fn store(p: *mut Self::S, v: Self);
    unsafe fn maskload(p: *const Self::S, m: Self) -> Self;
    unsafe fn maskstore(p: *mut Self::S, m: Self, v: Self);
    /// Bitwise AND (zeroes the lanes outside a lane mask).
    unsafe fn and(self, m: Self) -> Self;
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
struct F32x8(__m256);
#[derive(Clone, Copy)]
struct F64x4(__m256d);

impl Arith for F32x8 {
    type S = f32;
    type M = Self;
    #[inline(always)]
    unsafe fn splat(s: f32) -> Self {
        F32x8(_mm256_set1_ps(s))
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        F32x8(_mm256_add_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        F32x8(_mm256_sub_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        F32x8(_mm256_mul_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        F32x8(_mm256_div_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        F32x8(_mm256_sqrt_ps(self.0))
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        F32x8(_mm256_xor_ps(self.0, _mm256_set1_ps(-0.0)))
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        F32x8(_mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0))
    }
    #[inline(always)]
    unsafe fn max_raw(self, o: Self) -> Self {
        F32x8(_mm256_max_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn min_raw(self, o: Self) -> Self {
        F32x8(_mm256_min_ps(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn unord(self, o: Self) -> Self {
        F32x8(_mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn blend(self, m: Self, t: Self) -> Self {
        F32x8(_mm256_blendv_ps(self.0, t.0, m.0))
    }
    #[inline(always)]
    unsafe fn exp(self) -> Self {
        // Transcription of crate::math::exp_f32.
        let x = self.0;
        let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
        let hi = _mm256_cmp_ps::<_CMP_GT_OQ>(x, _mm256_set1_ps(EXP_HI));
        let lo = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_LO));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
        );
        let r = _mm256_sub_ps(
            _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(LN2_HI))),
            _mm256_mul_ps(n, _mm256_set1_ps(LN2_LO)),
        );
        let z = _mm256_mul_ps(r, r);
        let mut p = _mm256_set1_ps(EXP_P[0]);
        for &c in &EXP_P[1..] {
            p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(c));
        }
        let y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, z), r), _mm256_set1_ps(1.0));
        let ni = _mm256_cvtps_epi32(n);
        // n1 = ni / 2 truncating toward zero.
        let n1 = _mm256_srai_epi32::<1>(_mm256_add_epi32(ni, _mm256_srli_epi32::<31>(ni)));
        let n2 = _mm256_sub_epi32(ni, n1);
        let bias = _mm256_set1_epi32(127);
        let p1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias)));
        let p2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias)));
        let mut res = _mm256_mul_ps(_mm256_mul_ps(y, p1), p2);
        res = _mm256_blendv_ps(res, _mm256_set1_ps(f32::INFINITY), hi);
        res = _mm256_blendv_ps(res, _mm256_setzero_ps(), lo);
        res = _mm256_blendv_ps(res, x, nan);
        F32x8(res)
    }
    #[inline(always)]
    unsafe fn ln(self) -> Self {
        // Transcription of crate::math::ln_f32.
        let x = self.0;
        let zero = _mm256_setzero_ps();
        let bad = _mm256_or_ps(
            _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x),
            _mm256_cmp_ps::<_CMP_LT_OQ>(x, zero),
        );
        let is0 = _mm256_cmp_ps::<_CMP_EQ_OQ>(x, zero);
        let isinf = _mm256_cmp_ps::<_CMP_EQ_OQ>(x, _mm256_set1_ps(f32::INFINITY));
        let bits0 = _mm256_castps_si256(x);
        let sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x0080_0000), bits0);
        let xs = _mm256_blendv_ps(
            x,
            _mm256_mul_ps(x, _mm256_set1_ps(8_388_608.0)),
            _mm256_castsi256_ps(sub),
        );
        let bits = _mm256_castps_si256(xs);
        let e0 = _mm256_and_si256(sub, _mm256_set1_epi32(-23));
        let mut e = _mm256_add_epi32(
            e0,
            _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(126)),
        );
        let m0 = _mm256_castsi256_ps(_mm256_or_si256(
            _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
            _mm256_set1_epi32(0x3f00_0000),
        ));
        let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(m0, _mm256_set1_ps(SQRTHF));
        // lt lanes are -1 as integers: e -= 1 there.
        e = _mm256_add_epi32(e, _mm256_castps_si256(lt));
        let one = _mm256_set1_ps(1.0);
        let m = _mm256_blendv_ps(
            _mm256_sub_ps(m0, one),
            _mm256_sub_ps(_mm256_add_ps(m0, m0), one),
            lt,
        );
        let ef = _mm256_cvtepi32_ps(e);
        let z = _mm256_mul_ps(m, m);
        let mut p = _mm256_set1_ps(LOG_P[0]);
        for &c in &LOG_P[1..] {
            p = _mm256_add_ps(_mm256_mul_ps(p, m), _mm256_set1_ps(c));
        }
        let mut y = _mm256_mul_ps(_mm256_mul_ps(p, m), z);
        y = _mm256_add_ps(y, _mm256_mul_ps(_mm256_set1_ps(LN2_LO), ef));
        y = _mm256_add_ps(y, _mm256_mul_ps(_mm256_set1_ps(-0.5), z));
        let r = _mm256_add_ps(m, y);
        let mut res = _mm256_add_ps(r, _mm256_mul_ps(_mm256_set1_ps(LN2_HI), ef));
        res = _mm256_blendv_ps(res, x, isinf);
        res = _mm256_blendv_ps(res, _mm256_set1_ps(f32::NEG_INFINITY), is0);
        res = _mm256_blendv_ps(res, _mm256_set1_ps(f32::NAN), bad);
        F32x8(res)
    }
    #[inline(always)]
    unsafe fn powf(self, p: f32) -> Self {
        // SAFETY: 8-element stack buffer.
        unsafe {
            F32x8(per_lane!(
                self.0,
                f32,
                8,
                |x: f32| x.powf(p),
                _mm256_loadu_ps,
                _mm256_storeu_ps
            ))
        }
    }
}

impl V for F32x8 {
    const L: usize = 8;
    const FULL: u64 = 0xFF;
    #[inline(always)]
    unsafe fn lanes(k: u64) -> Self {
        let sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        let m = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(k as i32), sel), sel);
        F32x8(_mm256_castsi256_ps(m))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: caller guarantees 8 in-bounds elements.
        F32x8(unsafe { _mm256_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self) {
        // SAFETY: as `load`.
        unsafe { _mm256_storeu_ps(p, v.0) }
    }
    #[inline(always)]
    unsafe fn maskload(p: *const f32, m: Self) -> Self {
        // SAFETY: caller guarantees selected lanes are in bounds; others
        // are not accessed.
        F32x8(unsafe { _mm256_maskload_ps(p, _mm256_castps_si256(m.0)) })
    }
    #[inline(always)]
    unsafe fn maskstore(p: *mut f32, m: Self, v: Self) {
        // SAFETY: as `maskload`.
        unsafe { _mm256_maskstore_ps(p, _mm256_castps_si256(m.0), v.0) }
    }
    #[inline(always)]
    unsafe fn and(self, m: Self) -> Self {
        F32x8(_mm256_and_ps(self.0, m.0))
    }
}

impl Arith for F64x4 {
    type S = f64;
    type M = Self;
    #[inline(always)]
    unsafe fn splat(s: f64) -> Self {
        F64x4(_mm256_set1_pd(s))
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        F64x4(_mm256_add_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        F64x4(_mm256_sub_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        F64x4(_mm256_mul_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        F64x4(_mm256_div_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        F64x4(_mm256_sqrt_pd(self.0))
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        F64x4(_mm256_xor_pd(self.0, _mm256_set1_pd(-0.0)))
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        F64x4(_mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0))
    }
    #[inline(always)]
    unsafe fn max_raw(self, o: Self) -> Self {
        F64x4(_mm256_max_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn min_raw(self, o: Self) -> Self {
        F64x4(_mm256_min_pd(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn unord(self, o: Self) -> Self {
        F64x4(_mm256_cmp_pd::<_CMP_UNORD_Q>(self.0, o.0))
    }
    #[inline(always)]
    unsafe fn blend(self, m: Self, t: Self) -> Self {
        F64x4(_mm256_blendv_pd(self.0, t.0, m.0))
    }
    #[inline(always)]
    unsafe fn exp(self) -> Self {
        // SAFETY: 4-element stack buffer.
        unsafe {
            F64x4(per_lane!(
                self.0,
                f64,
                4,
                f64::exp,
                _mm256_loadu_pd,
                _mm256_storeu_pd
            ))
        }
    }
    #[inline(always)]
    unsafe fn ln(self) -> Self {
        // SAFETY: 4-element stack buffer.
        unsafe {
            F64x4(per_lane!(
                self.0,
                f64,
                4,
                f64::ln,
                _mm256_loadu_pd,
                _mm256_storeu_pd
            ))
        }
    }
    #[inline(always)]
    unsafe fn powf(self, p: f64) -> Self {
        // SAFETY: 4-element stack buffer.
        unsafe {
            F64x4(per_lane!(
                self.0,
                f64,
                4,
                |x: f64| x.powf(p),
                _mm256_loadu_pd,
                _mm256_storeu_pd
            ))
        }
    }
}

impl V for F64x4 {
    const L: usize = 4;
    const FULL: u64 = 0xF;
    #[inline(always)]
    unsafe fn lanes(k: u64) -> Self {
        let sel = _mm256_setr_epi64x(1, 2, 4, 8);
        let m = _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(k as i64), sel), sel);
        F64x4(_mm256_castsi256_pd(m))
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: caller guarantees 4 in-bounds elements.
        F64x4(unsafe { _mm256_loadu_pd(p) })
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, v: Self) {
        // SAFETY: as `load`.
        unsafe { _mm256_storeu_pd(p, v.0) }
    }
    #[inline(always)]
    unsafe fn maskload(p: *const f64, m: Self) -> Self {
        // SAFETY: caller guarantees selected lanes are in bounds.
        F64x4(unsafe { _mm256_maskload_pd(p, _mm256_castpd_si256(m.0)) })
    }
    #[inline(always)]
    unsafe fn maskstore(p: *mut f64, m: Self, v: Self) {
        // SAFETY: as `maskload`.
        unsafe { _mm256_maskstore_pd(p, _mm256_castpd_si256(m.0), v.0) }
    }
    #[inline(always)]
    unsafe fn and(self, m: Self) -> Self {
        F64x4(_mm256_and_pd(self.0, m.0))
    }
}

/// The op a loop evaluates.
#[derive(Clone, Copy)]
enum Op<T: V> {
    Un(Un<T>),
    Bin(BinaryOp),
}

#[inline(always)]
unsafe fn eval<T: V>(op: Op<T>, x: T, y: Option<T>) -> T {
    // SAFETY: register ops only (caller has the target features).
    unsafe {
        match (op, y) {
            (Op::Un(u), _) => eval_un(u, x),
            (Op::Bin(b), Some(y)) => eval_bin(b, x, y),
            (Op::Bin(_), None) => x,
        }
    }
}

/// Where the second operand comes from.
#[derive(Clone, Copy)]
enum B<T: V> {
    Ptr(*const T::S),
    Splat(T),
    None,
}

/// The shared loop. Inside the run, every vector of a 64-element chunk with
/// a kept lane is handled without branching on its lanes: masked-out input
/// lanes are zeroed by an AND before any arithmetic, the result is blended
/// with the destination's current value and stored whole (masked-out slots
/// get back the bits they held). A vector reaching past the end uses
/// `vmaskmov` (touches kept lanes only).
///
/// # Safety
/// The portable module's contract; AVX2 available.
#[inline(always)]
unsafe fn run<T: V>(
    op: Op<T>,
    a: *const T::S,
    b: B<T>,
    dst: *mut T::S,
    n: usize,
    words: &[u64],
    off: usize,
) {
    let mut i = 0;
    while i < n {
        prefetch64(a, i);
        if let B::Ptr(p) = b {
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
                let at = i + j;
                // SAFETY: when `at + L <= n` all L lanes are in bounds;
                // otherwise vmaskmov touches only kept lanes, all < n (bits
                // past n are cleared). `at < n` keeps the pointer
                // arithmetic in bounds.
                unsafe {
                    let m = T::lanes(k);
                    if at + T::L <= n {
                        let x = T::load(a.add(at)).and(m);
                        let y = match b {
                            B::Ptr(p) => Some(T::load(p.add(at)).and(m)),
                            B::Splat(s) => Some(s),
                            B::None => None,
                        };
                        let old = T::load(dst.add(at));
                        T::store(dst.add(at), old.blend(m, eval(op, x, y)));
                    } else if k != 0 {
                        let x = T::maskload(a.add(at), m);
                        let y = match b {
                            B::Ptr(p) => Some(T::maskload(p.add(at), m)),
                            B::Splat(s) => Some(s),
                            B::None => None,
                        };
                        T::maskstore(dst.add(at), m, eval(op, x, y));
                    }
                }
                j += T::L;
            }
        }
        i += 64;
    }
}

/// # Safety
/// The portable module's contract; AVX2 available.
#[inline(always)]
unsafe fn run_unary<T: V>(
    op: UnaryOp<T::S>,
    src: *const T::S,
    dst: *mut T::S,
    n: usize,
    words: &[u64],
    off: usize,
) {
    // SAFETY: caller has the target features; forwarded contract.
    unsafe {
        let op = prep::<T>(op);
        run(Op::Un(op), src, B::None, dst, n, words, off)
    }
}

/// # Safety
/// The portable module's contract; AVX2 available.
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
    // SAFETY: caller has the target features; forwarded contract.
    unsafe {
        let b = match b {
            RawRhs::Ptr(p) => B::Ptr(p),
            RawRhs::Scalar(s) => B::Splat(T::splat(s)),
        };
        run(Op::Bin(op), a, b, dst, n, words, off)
    }
}

/// Unary op on `f32`.
///
/// # Safety
/// The portable module's contract; AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn unary_f32(
    op: UnaryOp<f32>,
    src: *const f32,
    dst: *mut f32,
    n: usize,
    words: &[u64],
    off: usize,
) {
    // SAFETY: forwarded contract; features enabled on this function.
    unsafe { run_unary::<F32x8>(op, src, dst, n, words, off) }
}

/// Unary op on `f64`.
///
/// # Safety
/// As [`unary_f32`].
#[target_feature(enable = "avx2,fma")]
pub unsafe fn unary_f64(
    op: UnaryOp<f64>,
    src: *const f64,
    dst: *mut f64,
    n: usize,
    words: &[u64],
    off: usize,
) {
    // SAFETY: forwarded contract; features enabled on this function.
    unsafe { run_unary::<F64x4>(op, src, dst, n, words, off) }
}

/// Binary op on `f32`.
///
/// # Safety
/// As [`unary_f32`].
#[target_feature(enable = "avx2,fma")]
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
    unsafe { run_binary::<F32x8>(op, a, b, dst, n, words, off) }
}

/// Binary op on `f64`.
///
/// # Safety
/// As [`unary_f32`].
#[target_feature(enable = "avx2,fma")]
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
    unsafe { run_binary::<F64x4>(op, a, b, dst, n, words, off) }
}
