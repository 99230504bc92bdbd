//! The `avx512` room's registers: 16 `f32` lanes ([`Z16`]) and 8 `f64`
//! lanes ([`Z8`]) in one `zmm` register, with the lane traits of
//! `crate::cpu::arch::generic` the kernel bodies run on. Lane masks are the
//! mask bits themselves in a `k` register: masked loads zero the
//! masked-out lanes (and suppress their faults past the end), masked
//! stores never touch them. `exp`/`ln` for `f32` are `generic::math`'s
//! over this room's primitives; for `f64` they (and a general `pow`) call
//! `std` lane by lane (`Arith`'s defaults).
//!
//! Every method requires AVX-512 F/DQ (the losses and elementwise ops also
//! BW/VL): they are only inlined into this room's `#[target_feature]`
//! entry points.

use crate::cpu::arch::generic::elementwise::Arith;
use crate::cpu::arch::generic::loss::LossLanes;
use crate::cpu::arch::generic::math::{exp_f32, ln_f32, MathLanes};
use crate::cpu::arch::generic::Vreg;
use crate::math::SQRTHF;
use core::arch::asm;
use core::arch::x86_64::*;

// Register-only lane selects in inline assembly. Written with intrinsics
// (`_mm512_mask_mov_ps`, `_mm512_maskz_mov_ps`), LLVM folds a blend with the
// value just loaded into a masked store (and a zeroing select after a load
// into a masked load); masked memory operations are slow on Zen 4 (the
// masked f32 step ran at 0.6 of the roofline instead of 0.9). The assembly
// keeps full loads and stores. `Arith::select` and `Arith::keep` keep the
// intrinsics (the elementwise ops and losses as they were measured).

macro_rules! lane_select {
    ($zero:ident, $blend:ident, $v:ty, $m:ty, $mov:literal, $bl:literal) => {
        /// `v` with the lanes whose bit in `k` is clear set to `+0.0`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn $zero(k: $m, v: $v) -> $v {
            let r: $v;
            // SAFETY: a register-to-register move; no memory, no flags.
            unsafe {
                asm!(
                    concat!($mov, " {r}{{{k}}}{{z}}, {v}"),
                    r = lateout(zmm_reg) r,
                    k = in(kreg) k,
                    v = in(zmm_reg) v,
                    options(pure, nomem, nostack, preserves_flags)
                )
            };
            r
        }

        /// Lane `l` of `new` where bit `l` of `k` is set, of `old` elsewhere
        /// (bitwise: `old` lanes keep their exact bits).
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn $blend(k: $m, old: $v, new: $v) -> $v {
            let r: $v;
            // SAFETY: a register-only blend; no memory, no flags.
            unsafe {
                asm!(
                    concat!($bl, " {r}{{{k}}}, {old}, {new}"),
                    r = lateout(zmm_reg) r,
                    k = in(kreg) k,
                    old = in(zmm_reg) old,
                    new = in(zmm_reg) new,
                    options(pure, nomem, nostack, preserves_flags)
                )
            };
            r
        }
    };
}

lane_select!(zero_ps, blend_ps, __m512, __mmask16, "vmovaps", "vblendmps");
lane_select!(zero_pd, blend_pd, __m512d, __mmask8, "vmovapd", "vblendmpd");

macro_rules! zmm {
    (
        $name:ident, $t:ty, $v:ty, $m:ty, $w:expr,
        set1 = $set1:ident, loadu = $loadu:ident, maskz_loadu = $mzl:ident,
        storeu = $storeu:ident, mask_storeu = $msu:ident,
        zero = $mz:ident, blend = $mm:ident,
        add = $add:ident, sub = $sub:ident, mul = $mul:ident, div = $div:ident,
        sqrt = $sqrt:ident, xor = $xor:ident
    ) => {
        /// One zmm register of lanes.
        #[derive(Clone, Copy)]
        pub struct $name($v);

        impl Vreg for $name {
            type T = $t;
            type M = $m;
            const W: usize = $w;
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            unsafe fn load_part(p: *const $t, k: usize) -> Self {
                // SAFETY: a masked load reads only the `k` lanes of the mask,
                // readable by the trait's contract.
                $name($mzl(((1u32 << k) - 1) as $m, p))
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            unsafe fn store_part(self, p: *mut $t, k: usize) {
                // SAFETY: a masked store writes only the `k` lanes of the mask.
                $msu(p, ((1u32 << k) - 1) as $m, self.0)
            }
            $crate::cpu::arch::generic::vreg_ops!(
                $name,
                $t,
                splat = $set1,
                load = $loadu,
                store = $storeu,
                add = $add,
                sub = $sub,
                mul = $mul,
                div = $div,
                sqrt = $sqrt
            );
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            unsafe fn neg(self) -> Self {
                $name($xor(self.0, $set1(-0.0)))
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            unsafe fn mask(bits: u64) -> $m {
                bits as $m
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            unsafe fn zero_unless(m: $m, v: Self) -> Self {
                $name($mz(m, v.0))
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            unsafe fn blend(m: $m, old: Self, new: Self) -> Self {
                $name($mm(m, old.0, new.0))
            }
        }
    };
}

zmm!(
    Z16,
    f32,
    __m512,
    __mmask16,
    16,
    set1 = _mm512_set1_ps,
    loadu = _mm512_loadu_ps,
    maskz_loadu = _mm512_maskz_loadu_ps,
    storeu = _mm512_storeu_ps,
    mask_storeu = _mm512_mask_storeu_ps,
    zero = zero_ps,
    blend = blend_ps,
    add = _mm512_add_ps,
    sub = _mm512_sub_ps,
    mul = _mm512_mul_ps,
    div = _mm512_div_ps,
    sqrt = _mm512_sqrt_ps,
    xor = _mm512_xor_ps
);

zmm!(
    Z8,
    f64,
    __m512d,
    __mmask8,
    8,
    set1 = _mm512_set1_pd,
    loadu = _mm512_loadu_pd,
    maskz_loadu = _mm512_maskz_loadu_pd,
    storeu = _mm512_storeu_pd,
    mask_storeu = _mm512_mask_storeu_pd,
    zero = zero_pd,
    blend = blend_pd,
    add = _mm512_add_pd,
    sub = _mm512_sub_pd,
    mul = _mm512_mul_pd,
    div = _mm512_div_pd,
    sqrt = _mm512_sqrt_pd,
    xor = _mm512_xor_pd
);

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn set1(v: f32) -> __m512 {
    _mm512_set1_ps(v)
}

impl Arith for Z16 {
    const SKIP_EMPTY: bool = true;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        Z16(_mm512_castsi512_ps(_mm512_and_si512(
            _mm512_castps_si512(self.0),
            _mm512_set1_epi32(i32::MAX),
        )))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_raw(self, o: Self) -> Self {
        Z16(_mm512_max_ps(self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_raw(self, o: Self) -> Self {
        Z16(_mm512_min_ps(self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn unord(self, o: Self) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, o.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(self, m: __mmask16, t: Self) -> Self {
        Z16(_mm512_mask_blend_ps(m, self.0, t.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn keep(m: __mmask16, v: Self) -> Self {
        Z16(_mm512_maskz_mov_ps(m, v.0))
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
    unsafe fn load_kept(p: *const f32, m: __mmask16, _whole: bool) -> Self {
        // SAFETY: every lane of `m` is readable (the trait's contract);
        // masked-out lanes are not accessed (fault suppression).
        Z16(_mm512_maskz_loadu_ps(m, p))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_kept(self, p: *mut f32, m: __mmask16, _whole: bool) {
        // SAFETY: as `load_kept`.
        _mm512_mask_storeu_ps(p, m, self.0)
    }
}

impl MathLanes for Z16 {
    crate::cpu::arch::x86_64::math_cmps!(__mmask16, _mm512_cmp_ps_mask);
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn round(self) -> Self {
        Z16(_mm512_roundscale_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(self.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn pow2_halves(self) -> (Self, Self) {
        let ni = _mm512_cvtps_epi32(self.0);
        // n1 = ni / 2 truncating toward zero.
        let n1 = _mm512_srai_epi32::<1>(_mm512_add_epi32(ni, _mm512_srli_epi32::<31>(ni)));
        let n2 = _mm512_sub_epi32(ni, n1);
        let bias = _mm512_set1_epi32(127);
        let p1 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n1, bias)));
        let p2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n2, bias)));
        (Z16(p1), Z16(p2))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn ln_reduce(self) -> (Self, Self) {
        let x = self.0;
        // negative inputs (sign bit set: not subnormal here) become NaN
        let sub = _mm512_cmplt_epu32_mask(_mm512_castps_si512(x), _mm512_set1_epi32(0x0080_0000));
        let xs = _mm512_mask_mul_ps(x, sub, x, set1(8_388_608.0));
        let bits = _mm512_castps_si512(xs);
        let e0 = _mm512_maskz_mov_epi32(sub, _mm512_set1_epi32(-23));
        let e = _mm512_add_epi32(
            e0,
            _mm512_sub_epi32(_mm512_srli_epi32::<23>(bits), _mm512_set1_epi32(126)),
        );
        let m = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
            _mm512_set1_epi32(0x3f00_0000),
        ));
        let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(m, set1(SQRTHF));
        let e = _mm512_mask_sub_epi32(e, lt, e, _mm512_set1_epi32(1));
        let one = set1(1.0);
        let m = _mm512_mask_blend_ps(
            lt,
            _mm512_sub_ps(m, one),
            _mm512_sub_ps(_mm512_add_ps(m, m), one),
        );
        (Z16(m), Z16(_mm512_cvtepi32_ps(e)))
    }
}

impl LossLanes for Z16 {
    const PAIRS: bool = true;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn ge(self, o: Self) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_GE_OQ>(self.0, o.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sgn(self) -> Self {
        let d = self.0;
        let zero = _mm512_setzero_ps();
        let r = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask::<_CMP_GT_OQ>(d, zero), set1(1.0));
        let r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(d, zero), set1(-1.0));
        Z16(_mm512_mask_mov_ps(
            r,
            _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(d, d),
            d,
        ))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add_kept(acc: Self, m: __mmask16, v: Self) -> Self {
        // a masked-out lane is never added
        Z16(_mm512_mask_add_ps(acc.0, m, acc.0, v.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_valid(p: *const f32, tail: Option<__mmask16>) -> Self {
        // SAFETY: by the trait's contract (a masked load reads only its lanes).
        match tail {
            None => Z16(_mm512_loadu_ps(p)),
            Some(m) => Z16(_mm512_maskz_loadu_ps(m, p)),
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_valid(self, p: *mut f32, tail: Option<__mmask16>, stream: bool) {
        // SAFETY: by the trait's contract (a masked store writes only its lanes).
        match tail {
            None if stream => _mm512_stream_ps(p, self.0),
            None => _mm512_storeu_ps(p, self.0),
            Some(m) => _mm512_mask_storeu_ps(p, m, self.0),
        }
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn stream(self, p: *mut f32) {
        // SAFETY: 64-byte aligned, 16 writable elements (the trait's contract).
        _mm512_stream_ps(p, self.0)
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
        let ninf = set1(f32::NEG_INFINITY);
        let mut mx = ninf;
        let mut k = 0;
        while k < n {
            let rem = n - k;
            let v: u16 = if rem >= 16 {
                u16::MAX
            } else {
                (1u16 << rem) - 1
            };
            // SAFETY: masked load, lanes past the end are not read.
            let xv = _mm512_mask_loadu_ps(ninf, v, x.as_ptr().wrapping_add(k));
            mx = _mm512_max_ps(mx, xv);
            k += 16;
        }
        _mm512_reduce_max_ps(mx)
    }
}

impl Arith for Z8 {
    const SKIP_EMPTY: bool = true;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        Z8(_mm512_castsi512_pd(_mm512_and_si512(
            _mm512_castpd_si512(self.0),
            _mm512_set1_epi64(i64::MAX),
        )))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_raw(self, o: Self) -> Self {
        Z8(_mm512_max_pd(self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_raw(self, o: Self) -> Self {
        Z8(_mm512_min_pd(self.0, o.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn unord(self, o: Self) -> __mmask8 {
        _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(self.0, o.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(self, m: __mmask8, t: Self) -> Self {
        Z8(_mm512_mask_blend_pd(m, self.0, t.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn keep(m: __mmask8, v: Self) -> Self {
        Z8(_mm512_maskz_mov_pd(m, v.0))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_kept(p: *const f64, m: __mmask8, _whole: bool) -> Self {
        // SAFETY: every lane of `m` is readable (the trait's contract).
        Z8(_mm512_maskz_loadu_pd(m, p))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_kept(self, p: *mut f64, m: __mmask8, _whole: bool) {
        // SAFETY: as `load_kept`.
        _mm512_mask_storeu_pd(p, m, self.0)
    }
}
