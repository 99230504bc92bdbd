//! `avx512` Adagrad: the generic bodies (`generic::adagrad`) over this
//! room's registers, 16 `f32` or 8 `f64` lanes, with mask registers for the
//! lane masks and masked loads and stores for the tails. Call only through
//! `crate::cpu::adagrad`.

use crate::cpu::arch::generic::Vreg;
use core::arch::asm;
use core::arch::x86_64::*;

// Register-only lane selects in inline assembly. Written with intrinsics
// (`_mm512_mask_mov_ps`, `_mm512_maskz_mov_ps`), LLVM folds a blend with the
// value just loaded into a masked store (and a zeroing select after a load
// into a masked load); masked memory operations are slow on Zen 4 (the
// masked f32 step ran at 0.6 of the roofline instead of 0.9). The assembly
// keeps full loads and stores.

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
            #[inline(always)]
            unsafe fn splat(x: $t) -> Self {
                $name($set1(x))
            }
            #[inline(always)]
            unsafe fn load(p: *const $t) -> Self {
                // SAFETY: W readable elements at `p`, by the trait's contract.
                $name($loadu(p))
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut $t) {
                // SAFETY: W writable elements at `p`, by the trait's contract.
                $storeu(p, self.0)
            }
            #[inline(always)]
            unsafe fn load_part(p: *const $t, k: usize) -> Self {
                // SAFETY: a masked load reads only the `k` lanes of the mask,
                // readable by the trait's contract.
                $name($mzl(((1u32 << k) - 1) as $m, p))
            }
            #[inline(always)]
            unsafe fn store_part(self, p: *mut $t, k: usize) {
                // SAFETY: a masked store writes only the `k` lanes of the mask.
                $msu(p, ((1u32 << k) - 1) as $m, self.0)
            }
            #[inline(always)]
            unsafe fn add(self, o: Self) -> Self {
                $name($add(self.0, o.0))
            }
            #[inline(always)]
            unsafe fn sub(self, o: Self) -> Self {
                $name($sub(self.0, o.0))
            }
            #[inline(always)]
            unsafe fn mul(self, o: Self) -> Self {
                $name($mul(self.0, o.0))
            }
            #[inline(always)]
            unsafe fn div(self, o: Self) -> Self {
                $name($div(self.0, o.0))
            }
            #[inline(always)]
            unsafe fn sqrt(self) -> Self {
                $name($sqrt(self.0))
            }
            #[inline(always)]
            unsafe fn neg(self) -> Self {
                $name($xor(self.0, $set1(-0.0)))
            }
            #[inline(always)]
            unsafe fn mask(bits: u64) -> $m {
                bits as $m
            }
            #[inline(always)]
            unsafe fn zero_unless(m: $m, v: Self) -> Self {
                $name($mz(m, v.0))
            }
            #[inline(always)]
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

crate::cpu::arch::generic::adagrad::adagrad_entries!(
    #[target_feature(enable = "avx512f,avx512dq")]
    Z16,
    Z8
);
