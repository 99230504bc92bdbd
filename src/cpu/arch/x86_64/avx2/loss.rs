//! `avx2` loss kernels (`f32`). The 32 canonical lanes live in four `__m256`
//! registers (lanes 0–7, 8–15, 16–23, 24–31); mask bits are expanded to
//! lane masks and select by AND (a masked-out lane adds `+0`, which leaves
//! an accumulator that started at `+0` bit-for-bit unchanged, and its
//! gradient is `+0`). Every formula is a line-by-line transcription of
//! `portable::elem_op` / `math::{exp_f32, ln_f32}`: plain multiplies and
//! adds, no FMA, so the bits are those of the portable room.
//!
//! Call only through `crate::cpu::loss` after checking `Isa::Avx2`.

use std::arch::x86_64::*;

use crate::canonical::{fold_partials, halving_tree, BLOCK, LANES};
use crate::cpu::arch::x86_64::ew_ops::prefetch_lines;
use crate::cpu::loss::{kind, ElemParams};
use crate::math::{EXP_HI, EXP_LO, EXP_P, LN2_HI, LN2_LO, LOG2E, LOG_P, SQRTHF};

#[inline(always)]
fn set1(v: f32) -> __m256 {
    // SAFETY: only called from functions compiled with AVX.
    unsafe { _mm256_set1_ps(v) }
}

#[inline(always)]
fn seti(v: i32) -> __m256i {
    // SAFETY: only called from functions compiled with AVX.
    unsafe { _mm256_set1_epi32(v) }
}

/// `a` where `m` is clear, `b` where it is set (lane masks of all ones/zeros).
#[target_feature(enable = "avx2")]
#[inline]
fn sel(m: __m256, a: __m256, b: __m256) -> __m256 {
    _mm256_blendv_ps(a, b, m)
}

/// `exp_f32` on 8 lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn exp8(x: __m256) -> __m256 {
    let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
    let hi = _mm256_cmp_ps::<_CMP_GT_OQ>(x, set1(EXP_HI));
    let lo = _mm256_cmp_ps::<_CMP_LT_OQ>(x, set1(EXP_LO));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        set1(LOG2E),
    ));
    let r = _mm256_sub_ps(
        _mm256_sub_ps(x, _mm256_mul_ps(n, set1(LN2_HI))),
        _mm256_mul_ps(n, set1(LN2_LO)),
    );
    let z = _mm256_mul_ps(r, r);
    let mut p = set1(EXP_P[0]);
    for &c in &EXP_P[1..] {
        p = _mm256_add_ps(_mm256_mul_ps(p, r), set1(c));
    }
    let y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, z), r), set1(1.0));
    let ni = _mm256_cvtps_epi32(n);
    let n1 = _mm256_srai_epi32::<1>(_mm256_add_epi32(ni, _mm256_srli_epi32::<31>(ni)));
    let n2 = _mm256_sub_epi32(ni, n1);
    let p1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, seti(127))));
    let p2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, seti(127))));
    let y = _mm256_mul_ps(_mm256_mul_ps(y, p1), p2);
    let y = sel(lo, y, _mm256_setzero_ps());
    let y = sel(hi, y, set1(f32::INFINITY));
    sel(nan, y, x)
}

/// `ln_f32` on 8 lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn ln8(x: __m256) -> __m256 {
    let zero = _mm256_setzero_ps();
    let bad = _mm256_cmp_ps::<_CMP_NGE_UQ>(x, zero); // NaN or < 0
    let is0 = _mm256_cmp_ps::<_CMP_EQ_OQ>(x, zero);
    let isinf = _mm256_cmp_ps::<_CMP_EQ_OQ>(x, set1(f32::INFINITY));
    // positive inputs have the sign bit clear, so a signed compare is the
    // unsigned one there (negative inputs are replaced by NaN below)
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
    let ef = _mm256_cvtepi32_ps(e);
    let z = _mm256_mul_ps(m, m);
    let mut p = set1(LOG_P[0]);
    for &c in &LOG_P[1..] {
        p = _mm256_add_ps(_mm256_mul_ps(p, m), set1(c));
    }
    let mut y = _mm256_mul_ps(_mm256_mul_ps(p, m), z);
    y = _mm256_add_ps(y, _mm256_mul_ps(set1(LN2_LO), ef));
    y = _mm256_add_ps(y, _mm256_mul_ps(set1(-0.5), z));
    let r = _mm256_add_ps(m, y);
    let r = _mm256_add_ps(r, _mm256_mul_ps(set1(LN2_HI), ef));
    let r = sel(bad, r, set1(f32::NAN));
    let r = sel(is0, r, set1(f32::NEG_INFINITY));
    sel(isinf, r, x)
}

/// `sign(d)`: 1, -1, 0, NaN for NaN (portable `sgn`).
#[target_feature(enable = "avx2")]
#[inline]
fn sgn8(d: __m256) -> __m256 {
    // the three cases are exclusive, so AND/OR selects them (no blends)
    let zero = _mm256_setzero_ps();
    let pos = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(d, zero), set1(1.0));
    let neg = _mm256_and_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(d, zero), set1(-1.0));
    let nan = _mm256_and_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(d, d), d);
    _mm256_or_ps(_mm256_or_ps(pos, neg), nan)
}

#[target_feature(enable = "avx2")]
#[inline]
fn abs8(v: __m256) -> __m256 {
    _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(v), seti(i32::MAX)))
}

#[target_feature(enable = "avx2")]
#[inline]
fn neg8(v: __m256) -> __m256 {
    _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(v), seti(i32::MIN)))
}

/// The broadcast constants of [`ElemParams`].
#[derive(Clone, Copy)]
struct C {
    s: __m256,
    s2: __m256,
    a: __m256,
    b: __m256,
    c: __m256,
}

/// `portable::elem_op` on 8 lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn op8<const K: u8>(c: &C, x: __m256, y: __m256, pw: __m256) -> (__m256, __m256) {
    let half = set1(0.5);
    let one = set1(1.0);
    match K {
        kind::MSE => {
            let d = _mm256_sub_ps(x, y);
            (_mm256_mul_ps(d, d), _mm256_mul_ps(d, c.s))
        }
        kind::L1 => {
            let d = _mm256_sub_ps(x, y);
            (abs8(d), _mm256_mul_ps(sgn8(d), c.s))
        }
        kind::HUBER => {
            let d = _mm256_sub_ps(x, y);
            let a = abs8(d);
            let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(a, c.a);
            let v = sel(
                lt,
                _mm256_mul_ps(_mm256_sub_ps(a, c.b), c.a),
                _mm256_mul_ps(_mm256_mul_ps(d, d), half),
            );
            let g = sel(lt, _mm256_mul_ps(sgn8(d), c.c), _mm256_mul_ps(d, c.s));
            (v, g)
        }
        kind::SMOOTH => {
            let d = _mm256_sub_ps(x, y);
            let a = abs8(d);
            let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(a, c.a);
            let v = sel(
                lt,
                _mm256_sub_ps(a, c.b),
                _mm256_mul_ps(_mm256_mul_ps(d, d), c.c),
            );
            let g = sel(lt, _mm256_mul_ps(sgn8(d), c.s), _mm256_mul_ps(d, c.s2));
            (v, g)
        }
        _ => {
            let ax = abs8(x);
            let e = exp8(neg8(ax));
            let u = _mm256_add_ps(one, e);
            let u1 = _mm256_cmp_ps::<_CMP_EQ_OQ>(u, one);
            let lp = sel(
                u1,
                _mm256_mul_ps(ln8(u), _mm256_div_ps(e, _mm256_sub_ps(u, one))),
                e,
            );
            let sp = _mm256_add_ps(lp, _mm256_max_ps(neg8(x), _mm256_setzero_ps()));
            let omy = _mm256_sub_ps(one, y);
            let lw = _mm256_add_ps(one, _mm256_mul_ps(_mm256_sub_ps(pw, one), y));
            let v = _mm256_add_ps(_mm256_mul_ps(omy, x), _mm256_mul_ps(lw, sp));
            let ge = _mm256_cmp_ps::<_CMP_GE_OQ>(x, _mm256_setzero_ps());
            let sn = sel(ge, _mm256_div_ps(one, u), _mm256_div_ps(e, u));
            let g = _mm256_mul_ps(_mm256_sub_ps(omy, _mm256_mul_ps(lw, sn)), c.s);
            (v, g)
        }
    }
}

/// Lane masks (all ones where bit `8 q + j` of `bits` is set) for the four
/// 8-lane quarters of a 32-lane chunk.
#[target_feature(enable = "avx2")]
#[inline]
fn lane_masks(bits: u32) -> [__m256; 4] {
    let sel_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    std::array::from_fn(|q| {
        let b = seti(((bits >> (8 * q)) & 0xff) as i32);
        _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, sel_bits), sel_bits))
    })
}

/// Folds the 32 lanes (four registers) by the canonical halving tree.
#[target_feature(enable = "avx2")]
#[inline]
fn lane_tree(acc: &[__m256; 4]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    for (q, a) in acc.iter().enumerate() {
        // SAFETY: `lanes` holds 32 f32; quarter q covers 8q..8q+8.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr().wrapping_add(8 * q), *a) };
    }
    halving_tree(&mut lanes, 0.0, |a, b| a + b)
}

/// One canonical block of an elementwise loss (see `portable::elem_block`).
///
/// # Safety
/// The CPU must support AVX2. Slices as in the portable room: `y`, `grad`
/// (and `vals`) have `x.len() <= BLOCK` elements and `words` covers them.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn elem_block<const K: u8>(
    p: &ElemParams<f32>,
    x: &[f32],
    y: &[f32],
    pw: Option<(&[f32], usize)>,
    words: &[u64],
    grad: &mut [f32],
    mut vals: Option<&mut [f32]>,
) -> f32 {
    let n = x.len();
    assert!(n <= BLOCK && y.len() == n && grad.len() == n && words.len() * 64 >= n);
    if let Some(v) = vals.as_deref() {
        assert_eq!(v.len(), n);
    }
    let c = C {
        s: set1(p.s),
        s2: set1(p.s2),
        a: set1(p.a),
        b: set1(p.b),
        c: set1(p.c),
    };
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut pwbuf = [1.0f32; LANES];
    let mut pi = pw.map_or(0, |(_, o)| o);
    let (xp, yp, gp) = (x.as_ptr(), y.as_ptr(), grad.as_mut_ptr());
    let stream = p.stream && (gp as usize).is_multiple_of(32);
    let stream_v = p.stream
        && vals
            .as_deref()
            .is_some_and(|v| (v.as_ptr() as usize).is_multiple_of(32));
    let mut k = 0;
    while k < n {
        let rem = n - k;
        let valid: u32 = if rem >= 32 {
            u32::MAX
        } else {
            (1u32 << rem) - 1
        };
        prefetch_lines(xp.wrapping_add(k), 128);
        prefetch_lines(yp.wrapping_add(k), 128);
        let bits = ((words[k / 64] >> (k % 64)) as u32) & valid;
        let keep = lane_masks(bits);
        if let Some((w, _)) = pw {
            for slot in pwbuf.iter_mut().take(rem.min(32)) {
                *slot = w[pi];
                pi += 1;
                if pi == w.len() {
                    pi = 0;
                }
            }
        }
        let vm = if rem >= 32 {
            None
        } else {
            Some(lane_masks(valid).map(|v| _mm256_castps_si256(v)))
        };
        for q in 0..4 {
            let o = k + 8 * q;
            // SAFETY: full chunks read/write 32 in-bounds lanes; in the last,
            // partial chunk maskload/maskstore touch only lanes < rem (the
            // pointers use `wrapping_add`: a quarter may start past the end).
            unsafe {
                let (xv, yv) = match &vm {
                    None => (
                        _mm256_loadu_ps(xp.wrapping_add(o)),
                        _mm256_loadu_ps(yp.wrapping_add(o)),
                    ),
                    Some(v) => (
                        _mm256_maskload_ps(xp.wrapping_add(o), v[q]),
                        _mm256_maskload_ps(yp.wrapping_add(o), v[q]),
                    ),
                };
                let wv = _mm256_loadu_ps(pwbuf.as_ptr().wrapping_add(8 * q));
                let (l, g) = op8::<K>(&c, xv, yv, wv);
                let l = _mm256_and_ps(l, keep[q]);
                let g = _mm256_and_ps(g, keep[q]);
                acc[q] = _mm256_add_ps(acc[q], l);
                match &vm {
                    // 32-byte aligned: checked for the block start, o % 8 == 0
                    None if stream => _mm256_stream_ps(gp.wrapping_add(o), g),
                    None => _mm256_storeu_ps(gp.wrapping_add(o), g),
                    Some(v) => _mm256_maskstore_ps(gp.wrapping_add(o), v[q], g),
                }
                if let Some(vs) = vals.as_deref_mut() {
                    let vp = vs.as_mut_ptr();
                    match &vm {
                        None if stream_v => _mm256_stream_ps(vp.wrapping_add(o), l),
                        None => _mm256_storeu_ps(vp.wrapping_add(o), l),
                        Some(v) => _mm256_maskstore_ps(vp.wrapping_add(o), v[q], l),
                    }
                }
            }
        }
        k += 32;
    }
    if stream || stream_v {
        // order the streaming stores before anything that publishes them
        _mm_sfence();
    }
    lane_tree(&acc)
}

/// Cross-entropy row statistics (see `portable::ce_stats`).
///
/// # Safety
/// The CPU must support AVX2; `g` and `w` (if any) have `x.len()` elements.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn ce_stats(
    x: &[f32],
    w: Option<&[f32]>,
    with_q: bool,
    g: &mut [f32],
) -> (f32, f32, f32) {
    let n = x.len();
    assert!(g.len() == n && w.is_none_or(|w| w.len() == n));
    // row max (exact, so any order gives the same value)
    let mut mx = set1(f32::NEG_INFINITY);
    let full = n / 8 * 8;
    let mut k = 0;
    while k < full {
        // SAFETY: k + 8 <= n.
        mx = _mm256_max_ps(mx, unsafe { _mm256_loadu_ps(x.as_ptr().wrapping_add(k)) });
        k += 8;
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: 8 f32 fit in `lanes`.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), mx) };
    let m = lanes
        .iter()
        .chain(&x[full..])
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mv = set1(m);
    let nb = n.div_ceil(BLOCK);
    let mut ps = Vec::with_capacity(nb);
    let mut pq = Vec::with_capacity(nb);
    let (xp, gp) = (x.as_ptr(), g.as_mut_ptr());
    for b in 0..nb {
        let start = b * BLOCK;
        let end = n.min(start + BLOCK);
        let mut sacc = [_mm256_setzero_ps(); 4];
        let mut qacc = [_mm256_setzero_ps(); 4];
        let mut k = start;
        while k < end {
            let rem = end - k;
            let vm = if rem >= 32 {
                None
            } else {
                Some(lane_masks((1u32 << rem) - 1))
            };
            for q in 0..4 {
                let o = k + 8 * q;
                // SAFETY: full chunks are in bounds; the partial one uses
                // maskload/maskstore over lanes < rem only.
                unsafe {
                    let xv = match &vm {
                        None => _mm256_loadu_ps(xp.wrapping_add(o)),
                        Some(v) => {
                            _mm256_maskload_ps(xp.wrapping_add(o), _mm256_castps_si256(v[q]))
                        }
                    };
                    let d = _mm256_sub_ps(xv, mv);
                    let e = exp8(d);
                    let (e_sel, d_w) = match &vm {
                        None => {
                            _mm256_storeu_ps(gp.wrapping_add(o), e);
                            let dw = match w {
                                Some(w) => {
                                    _mm256_mul_ps(_mm256_loadu_ps(w.as_ptr().wrapping_add(o)), d)
                                }
                                None => d,
                            };
                            (e, dw)
                        }
                        Some(v) => {
                            let vi = _mm256_castps_si256(v[q]);
                            _mm256_maskstore_ps(gp.wrapping_add(o), vi, e);
                            let dw = match w {
                                Some(w) => _mm256_mul_ps(
                                    _mm256_maskload_ps(w.as_ptr().wrapping_add(o), vi),
                                    d,
                                ),
                                None => d,
                            };
                            (_mm256_and_ps(e, v[q]), _mm256_and_ps(dw, v[q]))
                        }
                    };
                    sacc[q] = _mm256_add_ps(sacc[q], e_sel);
                    if with_q {
                        qacc[q] = _mm256_add_ps(qacc[q], d_w);
                    }
                }
            }
            k += 32;
        }
        ps.push(lane_tree(&sacc));
        pq.push(lane_tree(&qacc));
    }
    let s = fold_partials(&ps, 0.0, |a, b| a + b);
    let q = if with_q {
        fold_partials(&pq, 0.0, |a, b| a + b)
    } else {
        0.0
    };
    (m, s, q)
}

/// Cross-entropy row gradient `g = g * alpha - beta * w` (see the portable room).
///
/// # Safety
/// The CPU must support AVX2; `w` (if any) has `g.len()` elements.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn ce_grad(g: &mut [f32], w: Option<&[f32]>, alpha: f32, beta: f32) {
    let n = g.len();
    assert!(w.is_none_or(|w| w.len() == n));
    let (av, bv) = (set1(alpha), set1(beta));
    let full = n / 8 * 8;
    let gp = g.as_mut_ptr();
    let mut k = 0;
    while k < full {
        // SAFETY: k + 8 <= n for `g` and `w`.
        unsafe {
            let gv = _mm256_loadu_ps(gp.wrapping_add(k));
            let t = match w {
                Some(w) => _mm256_mul_ps(bv, _mm256_loadu_ps(w.as_ptr().wrapping_add(k))),
                None => bv,
            };
            _mm256_storeu_ps(gp.wrapping_add(k), _mm256_sub_ps(_mm256_mul_ps(gv, av), t));
        }
        k += 8;
    }
    for i in full..n {
        let t = match w {
            Some(w) => beta * w[i],
            None => beta,
        };
        g[i] = g[i] * alpha - t;
    }
}

/// [`exp8`] over a slice.
///
/// # Safety
/// The CPU must support AVX2; `out.len() == x.len()`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn exp_slice(x: &[f32], out: &mut [f32]) {
    map8(x, out, |v| exp8(v))
}

/// [`ln8`] over a slice.
///
/// # Safety
/// The CPU must support AVX2; `out.len() == x.len()`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn ln_slice(x: &[f32], out: &mut [f32]) {
    map8(x, out, |v| ln8(v))
}

#[target_feature(enable = "avx2")]
#[inline]
fn map8(x: &[f32], out: &mut [f32], f: impl Fn(__m256) -> __m256) {
    let n = x.len();
    assert_eq!(out.len(), n);
    let mut k = 0;
    while k < n {
        let mut buf = [0.0f32; 8];
        let m = (n - k).min(8);
        buf[..m].copy_from_slice(&x[k..k + m]);
        // SAFETY: `buf` holds 8 f32.
        let r = f(unsafe { _mm256_loadu_ps(buf.as_ptr()) });
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), r) };
        out[k..k + m].copy_from_slice(&buf[..m]);
        k += 8;
    }
}

/// Fills `g` with `+0` using non-temporal stores for its aligned middle
/// (no read-for-ownership of the lines), then orders them with `sfence`.
///
/// # Safety
/// The CPU must support the room's ISA.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn zero_stream(g: &mut [f32]) {
    let n = g.len();
    let head = g.as_ptr().align_offset(32).min(n);
    g[..head].fill(0.0);
    let body = (n - head) / 8 * 8;
    let zero = _mm256_setzero_ps();
    let mut k = head;
    while k < head + body {
        // SAFETY: k is 32-byte aligned and k + 8 <= n.
        unsafe { _mm256_stream_ps(g.as_mut_ptr().wrapping_add(k), zero) };
        k += 8;
    }
    g[head + body..].fill(0.0);
    _mm_sfence();
}

crate::cpu::arch::portable::loss::forwarders!(#[target_feature(enable = "avx2")]);
