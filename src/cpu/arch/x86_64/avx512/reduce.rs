//! `avx512` reduce and softmax kernels: the 32 canonical lanes live in two
//! zmm registers (lanes 0-15, 16-31) for `f32` accumulators and four for
//! `f64`. Each 16-bit (8-bit for `f64`) slice of the mask word is the
//! `__mmask16` of a masked load that merges the fold's neutral input into
//! masked-out lanes, so masked-out memory is never read. Halves widen with
//! `vcvtph2ps` (f16) or a 16-bit shift (bf16).

use crate::cpu::reduce::engine::{Lanes, LoadT};
use crate::math::{EXP_HI, EXP_LO, EXP_P, LN2_HI, LN2_LO, LOG2E};
use half::{bf16, f16};
use std::arch::x86_64::*;

/// 32 `f32` lanes in two zmm registers.
#[derive(Clone, Copy)]
pub struct Z32([__m512; 2]);

/// 32 `f64` lanes in four zmm registers.
#[derive(Clone, Copy)]
pub struct Z64([__m512d; 4]);

const RNE: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

/// `fixupimm` table of [`exp_ps`]'s out-of-range lanes, by the class of
/// `x`: QNaN and SNaN -> `x` itself (code 1), `-inf` and negative -> `+0`
/// (code 8), `+inf` and positive -> `+inf` (code 5); zero and one never
/// reach it (code 0, keep).
const EXP_FIXUP: i32 = 0x5858_0011;

/// `math::exp_f32`, bit for bit: same constants, same rounded operations,
/// round-ties-even range reduction. Three steps differ in form only:
/// `x - n * LN2_HI` is one `vfnmadd` (the product is exact: `|n| <= 128`
/// and `LN2_HI` has 9 significant bits, so the fused form rounds the same
/// single difference); `(y * 2^n1) * 2^n2` is one `vscalef` (for every `n`
/// the clamps let through, `-126 <= n <= 128`, `y * 2^n1` is an exact
/// normal number, so both compute `y * 2^n` rounded once, subnormal
/// results included); and the three clamps are one masked `vfixupimm`
/// on the lanes with `x < EXP_LO`, `x > EXP_HI` or NaN. Checked against
/// `exp_f32` on all 2^32 inputs.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn exp_ps(x: __m512) -> __m512 {
    let s = _mm512_set1_ps;
    let n = _mm512_roundscale_ps::<RNE>(_mm512_mul_ps(x, s(LOG2E)));
    let r = _mm512_sub_ps(
        _mm512_fnmadd_ps(n, s(LN2_HI), x),
        _mm512_mul_ps(n, s(LN2_LO)),
    );
    let z = _mm512_mul_ps(r, r);
    let mut p = s(EXP_P[0]);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), s(EXP_P[1]));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), s(EXP_P[2]));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), s(EXP_P[3]));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), s(EXP_P[4]));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), s(EXP_P[5]));
    let y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, z), r), s(1.0));
    let res = _mm512_scalef_ps(y, n);
    let out = _mm512_cmp_ps_mask::<_CMP_NGE_UQ>(x, s(EXP_LO))
        | _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, s(EXP_HI));
    _mm512_mask_fixupimm_ps::<0>(res, out, x, _mm512_set1_epi32(EXP_FIXUP))
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn max_ps(a: __m512, b: __m512) -> __m512 {
    let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(b, a)
        | (_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(b, b) & _mm512_cmp_ps_mask::<_CMP_ORD_Q>(a, a));
    _mm512_mask_blend_ps(take, a, b)
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn min_ps(a: __m512, b: __m512) -> __m512 {
    let take = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(b, a)
        | (_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(b, b) & _mm512_cmp_ps_mask::<_CMP_ORD_Q>(a, a));
    _mm512_mask_blend_ps(take, a, b)
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn max_pd(a: __m512d, b: __m512d) -> __m512d {
    let take = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(b, a)
        | (_mm512_cmp_pd_mask::<_CMP_UNORD_Q>(b, b) & _mm512_cmp_pd_mask::<_CMP_ORD_Q>(a, a));
    _mm512_mask_blend_pd(take, a, b)
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn min_pd(a: __m512d, b: __m512d) -> __m512d {
    let take = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(b, a)
        | (_mm512_cmp_pd_mask::<_CMP_UNORD_Q>(b, b) & _mm512_cmp_pd_mask::<_CMP_ORD_Q>(a, a));
    _mm512_mask_blend_pd(take, a, b)
}

impl Z32 {
    /// The halving tree in registers: each step brings lanes j + w down to
    /// lane j and applies the fold's vector op (only lanes < w matter);
    /// with `FAST`, [`Kind::op_fast_v`] (see [`Lanes::tree_fast`]).
    ///
    /// # Safety
    /// The room's CPU features must be available.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn tree_with<K: Kind, const FAST: bool>(self) -> f32 {
        // (a macro, not a closure: closures would not inherit the target features)
        macro_rules! op {
            ($a:expr, $b:expr) => {{
                let (a, b) = ($a, $b);
                let (a, b) = (Z32([a, a]), Z32([b, b]));
                if FAST {
                    K::op_fast_v(a, b).0[0]
                } else {
                    K::op_v(a, b).0[0]
                }
            }};
        }
        let t = op!(self.0[0], self.0[1]);
        let t = op!(t, _mm512_shuffle_f32x4::<0b11_10_11_10>(t, t));
        let t = op!(t, _mm512_shuffle_f32x4::<0b01_01_01_01>(t, t));
        let t = op!(t, _mm512_permute_ps::<0b11_10_11_10>(t));
        let t = op!(t, _mm512_permute_ps::<0b01_01_01_01>(t));
        _mm512_cvtss_f32(t)
    }
}

impl Lanes for Z32 {
    type A = f32;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn tree<K: Kind>(self) -> f32 {
        self.tree_with::<K, false>()
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn tree_fast<K: Kind>(self) -> f32 {
        self.tree_with::<K, true>()
    }
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
        Z32([_mm512_set1_ps(a); 2])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_acc(p: *const f32) -> Self {
        Z32([_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_acc(self, p: *mut f32) {
        _mm512_storeu_ps(p, self.0[0]);
        _mm512_storeu_ps(p.add(16), self.0[1]);
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add(self, o: Self) -> Self {
        Z32([
            _mm512_add_ps(self.0[0], o.0[0]),
            _mm512_add_ps(self.0[1], o.0[1]),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sub(self, o: Self) -> Self {
        Z32([
            _mm512_sub_ps(self.0[0], o.0[0]),
            _mm512_sub_ps(self.0[1], o.0[1]),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn mul(self, o: Self) -> Self {
        Z32([
            _mm512_mul_ps(self.0[0], o.0[0]),
            _mm512_mul_ps(self.0[1], o.0[1]),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn div(self, o: Self) -> Self {
        Z32([
            _mm512_div_ps(self.0[0], o.0[0]),
            _mm512_div_ps(self.0[1], o.0[1]),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        Z32([_mm512_abs_ps(self.0[0]), _mm512_abs_ps(self.0[1])])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_op(self, o: Self) -> Self {
        Z32([max_ps(self.0[0], o.0[0]), max_ps(self.0[1], o.0[1])])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_op(self, o: Self) -> Self {
        Z32([min_ps(self.0[0], o.0[0]), min_ps(self.0[1], o.0[1])])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_fast(self, o: Self) -> Self {
        // vmaxps(o, a) = o > a ? o : a (the second operand on NaN and ties)
        Z32([
            _mm512_max_ps(o.0[0], self.0[0]),
            _mm512_max_ps(o.0[1], self.0[1]),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_fast(self, o: Self) -> Self {
        // vminps(o, a) = o < a ? o : a
        Z32([
            _mm512_min_ps(o.0[0], self.0[0]),
            _mm512_min_ps(o.0[1], self.0[1]),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn nan_lanes(self) -> u32 {
        let (a, b) = (self.0[0], self.0[1]);
        (_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a) as u32)
            | ((_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(b, b) as u32) << 16)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn exp(self) -> Self {
        Z32([exp_ps(self.0[0]), exp_ps(self.0[1])])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add_masked(self, bits: u32, o: Self) -> Self {
        let (k0, k1) = (bits as u16, (bits >> 16) as u16);
        Z32([
            _mm512_mask_add_ps(self.0[0], k0, self.0[0], o.0[0]),
            _mm512_mask_add_ps(self.0[1], k1, self.0[1], o.0[1]),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(bits: u32, a: Self, b: Self) -> Self {
        Z32([
            _mm512_mask_blend_ps(bits as u16, b.0[0], a.0[0]),
            _mm512_mask_blend_ps((bits >> 16) as u16, b.0[1], a.0[1]),
        ])
    }
}

impl LoadT<f32> for Z32 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const f32, bits: u32, n: Self) -> Self {
        Z32([
            _mm512_mask_loadu_ps(n.0[0], bits as u16, p),
            _mm512_mask_loadu_ps(n.0[1], (bits >> 16) as u16, p.add(16)),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut f32) {
        self.store_acc(p)
    }
}

impl LoadT<f16> for Z32 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const f16, bits: u32, n: Self) -> Self {
        let q = p as *const i16;
        let (k0, k1) = (bits as u16, (bits >> 16) as u16);
        let h0 = _mm256_maskz_loadu_epi16(k0, q);
        let h1 = _mm256_maskz_loadu_epi16(k1, q.add(16));
        Z32([
            _mm512_mask_blend_ps(k0, n.0[0], _mm512_cvtph_ps(h0)),
            _mm512_mask_blend_ps(k1, n.0[1], _mm512_cvtph_ps(h1)),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut f16) {
        let q = p as *mut __m256i;
        _mm256_storeu_si256(q, _mm512_cvtps_ph::<RNE>(self.0[0]));
        _mm256_storeu_si256(q.add(1), _mm512_cvtps_ph::<RNE>(self.0[1]));
    }
}

/// `f32` -> `bf16` bits, round to nearest even, NaN quieted (as `half`).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn to_bf16(v: __m512) -> __m256i {
    let b = _mm512_castps_si512(v);
    let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(1));
    let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(
        _mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)),
        lsb,
    ));
    let nan = _mm512_or_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(0x40));
    let r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v), rounded, nan);
    _mm512_cvtepi32_epi16(r)
}

/// 16 `bf16` bit patterns -> `f32` (a 16-bit left shift, exact).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn widen_bf16(h: __m256i) -> __m512 {
    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
}

impl LoadT<bf16> for Z32 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const bf16, bits: u32, n: Self) -> Self {
        let q = p as *const i16;
        let (k0, k1) = (bits as u16, (bits >> 16) as u16);
        Z32([
            _mm512_mask_blend_ps(k0, n.0[0], widen_bf16(_mm256_maskz_loadu_epi16(k0, q))),
            _mm512_mask_blend_ps(
                k1,
                n.0[1],
                widen_bf16(_mm256_maskz_loadu_epi16(k1, q.add(16))),
            ),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut bf16) {
        let q = p as *mut __m256i;
        _mm256_storeu_si256(q, to_bf16(self.0[0]));
        _mm256_storeu_si256(q.add(1), to_bf16(self.0[1]));
    }
}

/// Applies a binary intrinsic to each of the four register pairs (a macro,
/// not a closure-taking function, so the intrinsics inline under the
/// room's target features).
macro_rules! z64_map2 {
    ($a:expr, $b:expr, $f:path) => {
        Z64([
            $f($a.0[0], $b.0[0]),
            $f($a.0[1], $b.0[1]),
            $f($a.0[2], $b.0[2]),
            $f($a.0[3], $b.0[3]),
        ])
    };
}

impl Lanes for Z64 {
    type A = f64;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn splat(a: f64) -> Self {
        Z64([_mm512_set1_pd(a); 4])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_acc(p: *const f64) -> Self {
        Z64([
            _mm512_loadu_pd(p),
            _mm512_loadu_pd(p.add(8)),
            _mm512_loadu_pd(p.add(16)),
            _mm512_loadu_pd(p.add(24)),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_acc(self, p: *mut f64) {
        for i in 0..4 {
            _mm512_storeu_pd(p.add(8 * i), self.0[i]);
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add(self, o: Self) -> Self {
        z64_map2!(self, o, _mm512_add_pd)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sub(self, o: Self) -> Self {
        z64_map2!(self, o, _mm512_sub_pd)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn mul(self, o: Self) -> Self {
        z64_map2!(self, o, _mm512_mul_pd)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn div(self, o: Self) -> Self {
        z64_map2!(self, o, _mm512_div_pd)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        Z64([
            _mm512_abs_pd(self.0[0]),
            _mm512_abs_pd(self.0[1]),
            _mm512_abs_pd(self.0[2]),
            _mm512_abs_pd(self.0[3]),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_op(self, o: Self) -> Self {
        z64_map2!(self, o, max_pd)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_op(self, o: Self) -> Self {
        z64_map2!(self, o, min_pd)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_fast(self, o: Self) -> Self {
        // vmaxpd(o, a) = o > a ? o : a
        z64_map2!(o, self, _mm512_max_pd)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_fast(self, o: Self) -> Self {
        // vminpd(o, a) = o < a ? o : a
        z64_map2!(o, self, _mm512_min_pd)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn nan_lanes(self) -> u32 {
        let mut m = 0u32;
        for i in 0..4 {
            let v = self.0[i];
            m |= (_mm512_cmp_pd_mask::<_CMP_UNORD_Q>(v, v) as u32) << (8 * i);
        }
        m
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(bits: u32, a: Self, b: Self) -> Self {
        Z64([
            _mm512_mask_blend_pd(bits as u8, b.0[0], a.0[0]),
            _mm512_mask_blend_pd((bits >> 8) as u8, b.0[1], a.0[1]),
            _mm512_mask_blend_pd((bits >> 16) as u8, b.0[2], a.0[2]),
            _mm512_mask_blend_pd((bits >> 24) as u8, b.0[3], a.0[3]),
        ])
    }
}

impl LoadT<f64> for Z64 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load(p: *const f64, bits: u32, n: Self) -> Self {
        Z64([
            _mm512_mask_loadu_pd(n.0[0], bits as u8, p),
            _mm512_mask_loadu_pd(n.0[1], (bits >> 8) as u8, p.add(8)),
            _mm512_mask_loadu_pd(n.0[2], (bits >> 16) as u8, p.add(16)),
            _mm512_mask_loadu_pd(n.0[3], (bits >> 24) as u8, p.add(24)),
        ])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store(self, p: *mut f64) {
        self.store_acc(p)
    }
}

crate::cpu::reduce::engine::room_entries!(
    native: Z32, Z64,
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,popcnt")]
);

/// Adds the byte counters `c8` (64 columns each, from column 0) to `out`
/// and clears them.
///
/// # Safety
/// AVX-512F/BW must be available.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn flush_counts(c8: &mut [__m512i], out: &mut [usize]) {
    for (c, o) in c8.iter_mut().zip(out.chunks_mut(64)) {
        let mut b = [0u8; 64];
        _mm512_storeu_si512(b.as_mut_ptr() as *mut __m512i, *c);
        for (o, &v) in o.iter_mut().zip(&b) {
            *o += v as usize;
        }
        *c = _mm512_setzero_si512();
    }
}

/// Kept elements per column of a `rows x cols` row-major mask (bit of
/// element `(r, c)` at `r * cols + c`), added to `out[..cols]`: 64 one-byte
/// counters per 64 columns; each row's mask word subtracts its `vpmovm2b`
/// expansion (`-1` per set bit), flushed every 255 rows.
///
/// # Safety
/// AVX-512F/BW must be available.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn col_counts(words: &[u64], rows: usize, cols: usize, out: &mut [usize]) {
    use crate::cpu::reduce::engine::bits64;
    let chunks = cols.div_ceil(64);
    let mut c8 = vec![_mm512_setzero_si512(); chunks];
    let tail = cols - (chunks.max(1) - 1) * 64;
    let last = if tail >= 64 {
        u64::MAX
    } else {
        (1u64 << tail) - 1
    };
    for r in 0..rows {
        let b = r * cols;
        if let Some((lc, head)) = c8.split_last_mut() {
            for (i, c) in head.iter_mut().enumerate() {
                let w = bits64(words, b + i * 64);
                *c = _mm512_sub_epi8(*c, _mm512_movm_epi8(w));
            }
            let w = bits64(words, b + (chunks - 1) * 64) & last;
            *lc = _mm512_sub_epi8(*lc, _mm512_movm_epi8(w));
        }
        if r % 255 == 254 {
            flush_counts(&mut c8, out);
        }
    }
    flush_counts(&mut c8, out);
}
