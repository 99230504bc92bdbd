//! `avx2` Adagrad kernels (f32: 8 lanes, f64: 4 lanes).
//!
//! Exactly the portable element update (`portable::adagrad::update`), lane
//! by lane, with separate `mul` and `add` (never FMA): the same IEEE
//! operations in the same order, hence the same bits. Tails run the scalar
//! update itself. Masked groups compute every lane and blend the old values
//! back under cleared bits (masked-out gradient lanes are zeroed first, so
//! no NaN is even computed). Call only through `crate::cpu::adagrad`.

use crate::cpu::arch::portable::adagrad::{update, Hp};
use core::arch::x86_64::*;

/// Lane-select vector for 8 f32 lanes from the low 8 bits of `bits`.
#[target_feature(enable = "avx2")]
#[inline]
fn select_f32(bits: u64) -> __m256 {
    let lb = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let b = _mm256_set1_epi32(bits as i32);
    _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, lb), lb))
}

/// Lane-select vector for 4 f64 lanes from the low 4 bits of `bits`.
#[target_feature(enable = "avx2")]
#[inline]
fn select_f64(bits: u64) -> __m256d {
    let lb = _mm256_setr_epi64x(1, 2, 4, 8);
    let b = _mm256_set1_epi64x(bits as i64);
    _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(b, lb), lb))
}

macro_rules! avx2_family {
    (
        $t:ty, $lanes:expr, $v:ty,
        set1 = $set1:ident, loadu = $loadu:ident, storeu = $storeu:ident,
        add = $add:ident, sub = $sub:ident, mul = $mul:ident, div = $div:ident,
        sqrt = $sqrt:ident, xor = $xor:ident, and = $and:ident, blendv = $blendv:ident,
        select = $select:ident,
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

        #[target_feature(enable = "avx2")]
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
        #[target_feature(enable = "avx2")]
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
        /// The CPU must support AVX2; `s.len()`, `g.len()` `>= p.len()`.
        #[target_feature(enable = "avx2")]
        pub unsafe fn $dense(p: &mut [$t], s: &mut [$t], g: &[$t], h: &Hp<$t>) {
            let n = p.len();
            debug_assert!(s.len() >= n && g.len() >= n);
            let c = $cst(h);
            let (pp, sp, gp) = (p.as_mut_ptr(), s.as_mut_ptr(), g.as_ptr());
            let mut i = 0;
            while i + $lanes <= n {
                // SAFETY: `i + lanes <= n`, inside all three slices.
                unsafe {
                    let (np, ns) =
                        $upd($loadu(pp.add(i)), $loadu(gp.add(i)), $loadu(sp.add(i)), &c);
                    $storeu(pp.add(i), np);
                    $storeu(sp.add(i), ns);
                }
                i += $lanes;
            }
            for i in i..n {
                let (np, ns) = update(p[i], g[i], s[i], h);
                p[i] = np;
                s[i] = ns;
            }
        }

        /// Masked update: element `i < p.len()` is updated iff bit `i` of
        /// `words` is set.
        ///
        /// # Safety
        /// AVX2; `s.len()`, `g.len()` `>= p.len()`; `words.len() * 64 >= p.len()`.
        #[target_feature(enable = "avx2")]
        pub unsafe fn $masked(p: &mut [$t], s: &mut [$t], g: &[$t], words: &[u64], h: &Hp<$t>) {
            let n = p.len();
            debug_assert!(s.len() >= n && g.len() >= n && words.len() * 64 >= n);
            let c = $cst(h);
            let (pp, sp, gp) = (p.as_mut_ptr(), s.as_mut_ptr(), g.as_ptr());
            let full: u64 = (1u64 << $lanes) - 1;
            for (w, &word) in words.iter().enumerate() {
                let base = w * 64;
                if base >= n {
                    break;
                }
                if word == 0 {
                    continue;
                }
                let mut j = 0;
                while j < 64 && base + j < n {
                    let i = base + j;
                    let bits = (word >> j) & full;
                    j += $lanes;
                    if i + $lanes > n {
                        // Tail group: scalar, same operations.
                        for l in 0..(n - i) {
                            if bits >> l & 1 == 1 {
                                let (np, ns) = update(p[i + l], g[i + l], s[i + l], h);
                                p[i + l] = np;
                                s[i + l] = ns;
                            }
                        }
                        continue;
                    }
                    // SAFETY: `i + lanes <= n`, inside all three slices; lanes
                    // with a clear bit get their old values stored back. No
                    // branch on the bits (mispredicted at high density).
                    unsafe {
                        let pv = $loadu(pp.add(i));
                        let sv = $loadu(sp.add(i));
                        let sel = $select(bits);
                        let gv = $and($loadu(gp.add(i)), sel);
                        let (np, ns) = $upd(pv, gv, sv, &c);
                        $storeu(pp.add(i), $blendv(pv, np, sel));
                        $storeu(sp.add(i), $blendv(sv, ns, sel));
                    }
                }
            }
        }

        /// One row of a row-sparse gradient: `g = sum of values rows
        /// (items[k] & pos_mask)` in order, then the update of `p`, `s`
        /// (`cols = p.len()` long).
        ///
        /// # Safety
        /// AVX2; `items` non-empty; `s.len() >= p.len()`; every
        /// `(items[k] & pos_mask + 1) * p.len() <= values.len()`.
        #[target_feature(enable = "avx2")]
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
            for j in j..cols {
                let mut g = values[first + j];
                for &it in &items[1..] {
                    g += values[(it & pos_mask) as usize * cols + j];
                }
                let (np, ns) = update(p[j], g, s[j], h);
                p[j] = np;
                s[j] = ns;
            }
        }

        crate::cpu::arch::x86_64::adagrad_rows_entry!(
            #[target_feature(enable = "avx2")]
            $t,
            $rows,
            $row
        );
    };
}

avx2_family!(
    f32,
    8,
    __m256,
    set1 = _mm256_set1_ps,
    loadu = _mm256_loadu_ps,
    storeu = _mm256_storeu_ps,
    add = _mm256_add_ps,
    sub = _mm256_sub_ps,
    mul = _mm256_mul_ps,
    div = _mm256_div_ps,
    sqrt = _mm256_sqrt_ps,
    xor = _mm256_xor_ps,
    and = _mm256_and_ps,
    blendv = _mm256_blendv_ps,
    select = select_f32,
    dense = dense_f32,
    masked = masked_f32,
    row = row_f32,
    rows = rows_f32,
    ct = Consts32,
    cst = consts_f32,
    upd = upd_f32
);

avx2_family!(
    f64,
    4,
    __m256d,
    set1 = _mm256_set1_pd,
    loadu = _mm256_loadu_pd,
    storeu = _mm256_storeu_pd,
    add = _mm256_add_pd,
    sub = _mm256_sub_pd,
    mul = _mm256_mul_pd,
    div = _mm256_div_pd,
    sqrt = _mm256_sqrt_pd,
    xor = _mm256_xor_pd,
    and = _mm256_and_pd,
    blendv = _mm256_blendv_pd,
    select = select_f64,
    dense = dense_f64,
    masked = masked_f64,
    row = row_f64,
    rows = rows_f64,
    ct = Consts64,
    cst = consts_f64,
    upd = upd_f64
);
