//! `avx2` reduce and softmax kernels: the 32 canonical lanes live in four
//! ymm registers for `f32` accumulators and eight for `f64`. Each byte of
//! the mask word is expanded to an 8-lane mask by broadcast / and / compare
//! (nibbles to 4-lane masks for `f64`), and the fold's neutral input is
//! blended into masked-out lanes before any arithmetic. Halves widen with
//! F16C (`vcvtph2ps`) or a 16-bit shift (bf16).

use crate::cpu::reduce::engine::{Lanes, LoadT};
use crate::math::{EXP_HI, EXP_LO, EXP_P, LN2_HI, LN2_LO, LOG2E};
use half::{bf16, f16};
use std::arch::x86_64::*;

/// 32 `f32` lanes in four ymm registers.
#[derive(Clone, Copy)]
pub struct Y32([__m256; 4]);

/// 32 `f64` lanes in eight ymm registers.
#[derive(Clone, Copy)]
pub struct Y64([__m256d; 8]);

/// Lane mask of 8 `f32` lanes from bits `8g .. 8g + 8`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn lane_mask8(bits: u32, g: u32) -> __m256 {
    let b = _mm256_set1_epi32(((bits >> (8 * g)) & 0xff) as i32);
    let m = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, m), m))
}

/// Lane mask of 4 `f64` lanes from bits `4g .. 4g + 4`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn lane_mask4(bits: u32, g: u32) -> __m256d {
    let b = _mm256_set1_epi64x(((bits >> (4 * g)) & 0xf) as i64);
    let m = _mm256_setr_epi64x(1, 2, 4, 8);
    _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(b, m), m))
}

/// `math::exp_f32`, transcribed: same constants, same operation order, no
/// FMA, round-ties-even range reduction.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn exp_ps(x: __m256) -> __m256 {
    let s = _mm256_set1_ps;
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        s(LOG2E),
    ));
    let r = _mm256_sub_ps(
        _mm256_sub_ps(x, _mm256_mul_ps(n, s(LN2_HI))),
        _mm256_mul_ps(n, s(LN2_LO)),
    );
    let z = _mm256_mul_ps(r, r);
    let mut p = s(EXP_P[0]);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), s(EXP_P[1]));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), s(EXP_P[2]));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), s(EXP_P[3]));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), s(EXP_P[4]));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), s(EXP_P[5]));
    let y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, z), r), s(1.0));
    let ni = _mm256_cvtps_epi32(n);
    // n1 = ni / 2 truncated toward zero, as Rust's i32 division
    let n1 = _mm256_srai_epi32::<1>(_mm256_add_epi32(ni, _mm256_srli_epi32::<31>(ni)));
    let n2 = _mm256_sub_epi32(ni, n1);
    let bias = _mm256_set1_epi32(127);
    let p1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias)));
    let p2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias)));
    let mut res = _mm256_mul_ps(_mm256_mul_ps(y, p1), p2);
    res = _mm256_blendv_ps(
        res,
        _mm256_setzero_ps(),
        _mm256_cmp_ps::<_CMP_LT_OQ>(x, s(EXP_LO)),
    );
    res = _mm256_blendv_ps(
        res,
        s(f32::INFINITY),
        _mm256_cmp_ps::<_CMP_GT_OQ>(x, s(EXP_HI)),
    );
    _mm256_blendv_ps(res, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x))
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn max_ps(a: __m256, b: __m256) -> __m256 {
    let take = _mm256_or_ps(
        _mm256_cmp_ps::<_CMP_GT_OQ>(b, a),
        _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_UNORD_Q>(b, b),
            _mm256_cmp_ps::<_CMP_ORD_Q>(a, a),
        ),
    );
    _mm256_blendv_ps(a, b, take)
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn min_ps(a: __m256, b: __m256) -> __m256 {
    let take = _mm256_or_ps(
        _mm256_cmp_ps::<_CMP_LT_OQ>(b, a),
        _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_UNORD_Q>(b, b),
            _mm256_cmp_ps::<_CMP_ORD_Q>(a, a),
        ),
    );
    _mm256_blendv_ps(a, b, take)
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn max_pd(a: __m256d, b: __m256d) -> __m256d {
    let take = _mm256_or_pd(
        _mm256_cmp_pd::<_CMP_GT_OQ>(b, a),
        _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_UNORD_Q>(b, b),
            _mm256_cmp_pd::<_CMP_ORD_Q>(a, a),
        ),
    );
    _mm256_blendv_pd(a, b, take)
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn min_pd(a: __m256d, b: __m256d) -> __m256d {
    let take = _mm256_or_pd(
        _mm256_cmp_pd::<_CMP_LT_OQ>(b, a),
        _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_UNORD_Q>(b, b),
            _mm256_cmp_pd::<_CMP_ORD_Q>(a, a),
        ),
    );
    _mm256_blendv_pd(a, b, take)
}

/// Builds a register array by repeating an expression for each index,
/// without closures (closures would not inherit the target features).
macro_rules! each {
    (Y32, 4, |$i:ident| $e:expr) => {
        Y32([
            { let $i = 0usize; $e },
            { let $i = 1usize; $e },
            { let $i = 2usize; $e },
            { let $i = 3usize; $e },
        ])
    };
    (Y64, 8, |$i:ident| $e:expr) => {
        Y64([
            { let $i = 0usize; $e },
            { let $i = 1usize; $e },
            { let $i = 2usize; $e },
            { let $i = 3usize; $e },
            { let $i = 4usize; $e },
            { let $i = 5usize; $e },
            { let $i = 6usize; $e },
            { let $i = 7usize; $e },
        ])
    };
}

impl Lanes for Y32 {
    type A = f32;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn prefetch(p: *const u8, write: bool) {
        if write {
            _mm_prefetch::<_MM_HINT_ET0>(p as *const i8);
        } else {
            _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn splat(a: f32) -> Self {
        Y32([_mm256_set1_ps(a); 4])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_acc(p: *const f32) -> Self {
        each!(Y32, 4, |i| _mm256_loadu_ps(p.add(8 * i)))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_acc(self, p: *mut f32) {
        for i in 0..4 {
            _mm256_storeu_ps(p.add(8 * i), self.0[i]);
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add(self, o: Self) -> Self {
        each!(Y32, 4, |i| _mm256_add_ps(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sub(self, o: Self) -> Self {
        each!(Y32, 4, |i| _mm256_sub_ps(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn mul(self, o: Self) -> Self {
        each!(Y32, 4, |i| _mm256_mul_ps(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn div(self, o: Self) -> Self {
        each!(Y32, 4, |i| _mm256_div_ps(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        let m = _mm256_set1_ps(-0.0);
        each!(Y32, 4, |i| _mm256_andnot_ps(m, self.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_op(self, o: Self) -> Self {
        each!(Y32, 4, |i| max_ps(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_op(self, o: Self) -> Self {
        each!(Y32, 4, |i| min_ps(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_fast(self, o: Self) -> Self {
        // vmaxps(o, a) = o > a ? o : a (the second operand on NaN and ties)
        each!(Y32, 4, |i| _mm256_max_ps(o.0[i], self.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_fast(self, o: Self) -> Self {
        // vminps(o, a) = o < a ? o : a
        each!(Y32, 4, |i| _mm256_min_ps(o.0[i], self.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn nan_lanes(self) -> u32 {
        let mut m = 0u32;
        for i in 0..4 {
            let v = self.0[i];
            m |= (_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v)) as u32) << (8 * i);
        }
        m
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn exp(self) -> Self {
        each!(Y32, 4, |i| exp_ps(self.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(bits: u32, a: Self, b: Self) -> Self {
        each!(Y32, 4, |i| _mm256_blendv_ps(
            b.0[i],
            a.0[i],
            lane_mask8(bits, i as u32)
        ))
    }
}

impl LoadT<f32> for Y32 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const f32, bits: u32, n: Self) -> Self {
        // the blend happens before any arithmetic: masked-out lanes are replaced
        each!(Y32, 4, |i| _mm256_blendv_ps(
            n.0[i],
            _mm256_loadu_ps(p.add(8 * i)),
            lane_mask8(bits, i as u32)
        ))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut f32) {
        self.store_acc(p)
    }
}

impl LoadT<f16> for Y32 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const f16, bits: u32, n: Self) -> Self {
        let q = p as *const __m128i;
        each!(Y32, 4, |i| _mm256_blendv_ps(
            n.0[i],
            _mm256_cvtph_ps(_mm_loadu_si128(q.add(i))),
            lane_mask8(bits, i as u32)
        ))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut f16) {
        let q = p as *mut __m128i;
        for i in 0..4 {
            _mm_storeu_si128(
                q.add(i),
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(self.0[i]),
            );
        }
    }
}

/// `f32` -> `bf16` bits, round to nearest even, NaN quieted (as `half`).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn to_bf16(v: __m256) -> __m128i {
    let b = _mm256_castps_si256(v);
    let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(b), _mm256_set1_epi32(1));
    let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(
        _mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)),
        lsb,
    ));
    let nan = _mm256_or_si256(_mm256_srli_epi32::<16>(b), _mm256_set1_epi32(0x40));
    let isnan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
    let r = _mm256_blendv_epi8(rounded, nan, isnan);
    _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256::<1>(r))
}

impl LoadT<bf16> for Y32 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const bf16, bits: u32, n: Self) -> Self {
        let q = p as *const __m128i;
        each!(Y32, 4, |i| _mm256_blendv_ps(
            n.0[i],
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(
                _mm_loadu_si128(q.add(i))
            ))),
            lane_mask8(bits, i as u32)
        ))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut bf16) {
        let q = p as *mut __m128i;
        for i in 0..4 {
            _mm_storeu_si128(q.add(i), to_bf16(self.0[i]));
        }
    }
}

impl Lanes for Y64 {
    type A = f64;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn splat(a: f64) -> Self {
        Y64([_mm256_set1_pd(a); 8])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_acc(p: *const f64) -> Self {
        each!(Y64, 8, |i| _mm256_loadu_pd(p.add(4 * i)))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_acc(self, p: *mut f64) {
        for i in 0..8 {
            _mm256_storeu_pd(p.add(4 * i), self.0[i]);
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add(self, o: Self) -> Self {
        each!(Y64, 8, |i| _mm256_add_pd(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sub(self, o: Self) -> Self {
        each!(Y64, 8, |i| _mm256_sub_pd(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn mul(self, o: Self) -> Self {
        each!(Y64, 8, |i| _mm256_mul_pd(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn div(self, o: Self) -> Self {
        each!(Y64, 8, |i| _mm256_div_pd(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        let m = _mm256_set1_pd(-0.0);
        each!(Y64, 8, |i| _mm256_andnot_pd(m, self.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_op(self, o: Self) -> Self {
        each!(Y64, 8, |i| max_pd(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_op(self, o: Self) -> Self {
        each!(Y64, 8, |i| min_pd(self.0[i], o.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_fast(self, o: Self) -> Self {
        // vmaxpd(o, a) = o > a ? o : a
        each!(Y64, 8, |i| _mm256_max_pd(o.0[i], self.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_fast(self, o: Self) -> Self {
        // vminpd(o, a) = o < a ? o : a
        each!(Y64, 8, |i| _mm256_min_pd(o.0[i], self.0[i]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn nan_lanes(self) -> u32 {
        let mut m = 0u32;
        for i in 0..8 {
            let v = self.0[i];
            m |= (_mm256_movemask_pd(_mm256_cmp_pd::<_CMP_UNORD_Q>(v, v)) as u32) << (4 * i);
        }
        m
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(bits: u32, a: Self, b: Self) -> Self {
        each!(Y64, 8, |i| _mm256_blendv_pd(
            b.0[i],
            a.0[i],
            lane_mask4(bits, i as u32)
        ))
    }
}

impl LoadT<f64> for Y64 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const f64, bits: u32, n: Self) -> Self {
        each!(Y64, 8, |i| _mm256_blendv_pd(
            n.0[i],
            _mm256_loadu_pd(p.add(4 * i)),
            lane_mask4(bits, i as u32)
        ))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut f64) {
        self.store_acc(p)
    }
}

crate::cpu::reduce::engine::room_entries!(
    native: Y32, Y64,
    #[target_feature(enable = "avx2,fma,f16c,popcnt")]
);
