//! `avx512` Adagrad kernels (f32: 16 lanes, f64: 8 lanes).
//!
//! Exactly the portable element update (`portable::adagrad::update`), lane
//! by lane: xor of the sign bit for `maximize`, then separate `mul` and `add`
//! (never FMA), `add`, `sqrt`, `add`, `mul`, `div`, `sub`: the same IEEE
//! operations in the same order, hence the same bits. Tails use masked loads
//! and stores. Call only through `crate::cpu::adagrad`.

use crate::cpu::arch::portable::adagrad::Hp;
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

macro_rules! avx512_family {
    (
        $t:ty, $lanes:expr, $mask:ty, $v:ty,
        set1 = $set1:ident, loadu = $loadu:ident, maskz_loadu = $mzl:ident,
        storeu = $storeu:ident, mask_storeu = $msu:ident,
        zero = $mz:ident, blend = $mm:ident,
        add = $add:ident, sub = $sub:ident, mul = $mul:ident, div = $div:ident,
        sqrt = $sqrt:ident, xor = $xor:ident,
        dense = $dense:ident, masked = $masked:ident, row = $row:ident, rows = $rows:ident, ct = $ct:ident, cst = $cst:ident, upd = $upd:ident
    ) => {
        struct $ct {
            clr: $v,
            eps: $v,
            wd: $v,
            sign: $v,
            maximize: bool,
            decay: bool,
        }

        #[target_feature(enable = "avx512f,avx512dq")]
        #[inline]
        fn $cst(h: &Hp<$t>) -> $ct {
            $ct {
                clr: $set1(h.clr),
                eps: $set1(h.eps),
                wd: $set1(h.wd),
                sign: $set1(-0.0),
                maximize: h.maximize,
                decay: h.decay,
            }
        }

        /// One vector of the element update: returns `(p, s)`.
        #[target_feature(enable = "avx512f,avx512dq")]
        #[inline]
        fn $upd(p: $v, g: $v, s: $v, c: &$ct) -> ($v, $v) {
            let g = if c.maximize { $xor(g, c.sign) } else { g };
            let g = if c.decay { $add(g, $mul(c.wd, p)) } else { g };
            let s = $add(s, $mul(g, g));
            let d = $add($sqrt(s), c.eps);
            ($sub(p, $div($mul(c.clr, g), d)), s)
        }

        /// Dense update of `p`, `s` by `g` (same lengths).
        ///
        /// # Safety
        /// The CPU must support AVX-512 F and DQ; `s.len()` and `g.len()`
        /// must be at least `p.len()`.
        #[target_feature(enable = "avx512f,avx512dq")]
        pub unsafe fn $dense(p: &mut [$t], s: &mut [$t], g: &[$t], h: &Hp<$t>) {
            let n = p.len();
            debug_assert!(s.len() >= n && g.len() >= n);
            let c = $cst(h);
            let (pp, sp, gp) = (p.as_mut_ptr(), s.as_mut_ptr(), g.as_ptr());
            let mut i = 0;
            // SAFETY: every access is at `i .. i + lanes <= n` (or masked to
            // `< n`), inside all three slices by the caller's contract.
            unsafe {
                while i + $lanes <= n {
                    let (np, ns) =
                        $upd($loadu(pp.add(i)), $loadu(gp.add(i)), $loadu(sp.add(i)), &c);
                    $storeu(pp.add(i), np);
                    $storeu(sp.add(i), ns);
                    i += $lanes;
                }
                if i < n {
                    let k: $mask = ((1u32 << (n - i)) - 1) as $mask;
                    let (np, ns) = $upd(
                        $mzl(k, pp.add(i)),
                        $mzl(k, gp.add(i)),
                        $mzl(k, sp.add(i)),
                        &c,
                    );
                    $msu(pp.add(i), k, np);
                    $msu(sp.add(i), k, ns);
                }
            }
        }

        /// Masked update: element `i < p.len()` is updated iff bit `i` of
        /// `words` is set.
        ///
        /// Whole words run without masked memory operations (slow on some
        /// cores) and without per-vector branches: full loads, masked-out
        /// gradient lanes zeroed in registers (no NaN is even computed from
        /// them), every lane computed, and the old `p`, `s` bits blended back
        /// under cleared mask bits before full stores. Masked-out entries
        /// thus keep their exact bits. The last partial word uses masked
        /// loads and stores.
        ///
        /// # Safety
        /// AVX-512 F and DQ; `s.len()`, `g.len()` `>= p.len()`;
        /// `words.len() * 64 >= p.len()`.
        #[target_feature(enable = "avx512f,avx512dq")]
        pub unsafe fn $masked(p: &mut [$t], s: &mut [$t], g: &[$t], words: &[u64], h: &Hp<$t>) {
            let n = p.len();
            debug_assert!(s.len() >= n && g.len() >= n && words.len() * 64 >= n);
            let c = $cst(h);
            let (pp, sp, gp) = (p.as_mut_ptr(), s.as_mut_ptr(), g.as_ptr());
            let full_words = n / 64;
            for (w, &word) in words[..full_words].iter().enumerate() {
                if word == 0 {
                    continue;
                }
                let base = w * 64;
                let mut j = 0;
                while j < 64 {
                    let i = base + j;
                    let k: $mask = (word >> j) as $mask;
                    // SAFETY: `i + lanes <= base + 64 <= n`: inside all three
                    // slices. Lanes with a clear bit in `k` are stored back
                    // with the bits just loaded.
                    unsafe {
                        let pv = $loadu(pp.add(i));
                        let sv = $loadu(sp.add(i));
                        let gv = $mz(k, $loadu(gp.add(i)));
                        let (np, ns) = $upd(pv, gv, sv, &c);
                        $storeu(pp.add(i), $mm(k, pv, np));
                        $storeu(sp.add(i), $mm(k, sv, ns));
                    }
                    j += $lanes;
                }
            }
            let base = full_words * 64;
            if base < n {
                let word = words[full_words];
                let mut j = 0;
                while base + j < n {
                    let i = base + j;
                    let valid: u64 = if n - i >= $lanes {
                        (1u64 << $lanes) - 1
                    } else {
                        (1u64 << (n - i)) - 1
                    };
                    let k: $mask = ((word >> j) & valid) as $mask;
                    j += $lanes;
                    if k == 0 {
                        continue;
                    }
                    // SAFETY: lanes with a clear bit in `k` are neither read
                    // nor written; set lanes are `< n` (masked by `valid`).
                    unsafe {
                        let (np, ns) = $upd(
                            $mzl(k, pp.add(i)),
                            $mzl(k, gp.add(i)),
                            $mzl(k, sp.add(i)),
                            &c,
                        );
                        $msu(pp.add(i), k, np);
                        $msu(sp.add(i), k, ns);
                    }
                }
            }
        }

        /// One row of a row-sparse gradient: `g = sum of values rows
        /// (items[k] & pos_mask)` in order, then the update of `p`, `s`
        /// (`cols = p.len()` long).
        ///
        /// # Safety
        /// AVX-512 F and DQ; `items` non-empty; `s.len() >= p.len()`; every
        /// `(items[k] & pos_mask + 1) * p.len() <= values.len()`.
        #[target_feature(enable = "avx512f,avx512dq")]
        #[inline]
        pub unsafe fn $row(
            p: &mut [$t],
            s: &mut [$t],
            values: &[$t],
            items: &[u64],
            pos_mask: u64,
            h: &Hp<$t>,
        ) {
            let cols = p.len();
            debug_assert!(s.len() >= cols && !items.is_empty());
            debug_assert!(items
                .iter()
                .all(|&it| ((it & pos_mask) as usize + 1) * cols <= values.len()));
            let c = $cst(h);
            let (pp, sp, vp) = (p.as_mut_ptr(), s.as_mut_ptr(), values.as_ptr());
            let first = (items[0] & pos_mask) as usize * cols;
            let mut j = 0;
            // Whole vectors: plain loads and stores (masked memory operations
            // are slow on some cores, even with every bit set).
            while j + $lanes <= cols {
                // SAFETY: lanes `j .. j + lanes <= cols` of the row and of each
                // values row, inside the slices by the caller's contract.
                unsafe {
                    let mut g = $loadu(vp.add(first + j));
                    for &it in &items[1..] {
                        g = $add(g, $loadu(vp.add((it & pos_mask) as usize * cols + j)));
                    }
                    let (np, ns) = $upd($loadu(pp.add(j)), g, $loadu(sp.add(j)), &c);
                    $storeu(pp.add(j), np);
                    $storeu(sp.add(j), ns);
                }
                j += $lanes;
            }
            if j < cols {
                let k: $mask = ((1u32 << (cols - j)) - 1) as $mask;
                // SAFETY: lanes `j .. cols` (masked) of the row and of each
                // values row, inside the slices by the caller's contract.
                unsafe {
                    let mut g = $mzl(k, vp.add(first + j));
                    for &it in &items[1..] {
                        g = $add(g, $mzl(k, vp.add((it & pos_mask) as usize * cols + j)));
                    }
                    let (np, ns) = $upd($mzl(k, pp.add(j)), g, $mzl(k, sp.add(j)), &c);
                    $msu(pp.add(j), k, np);
                    $msu(sp.add(j), k, ns);
                }
            }
        }

        crate::cpu::arch::x86_64::adagrad_rows_entry!(
            #[target_feature(enable = "avx512f,avx512dq")]
            $t,
            $rows,
            $row
        );
    };
}

avx512_family!(
    f32,
    16,
    __mmask16,
    __m512,
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
    xor = _mm512_xor_ps,
    dense = dense_f32,
    masked = masked_f32,
    row = row_f32,
    rows = rows_f32,
    ct = Consts32,
    cst = consts_f32,
    upd = upd_f32
);

avx512_family!(
    f64,
    8,
    __mmask8,
    __m512d,
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
    xor = _mm512_xor_pd,
    dense = dense_f64,
    masked = masked_f64,
    row = row_f64,
    rows = rows_f64,
    ct = Consts64,
    cst = consts_f64,
    upd = upd_f64
);
