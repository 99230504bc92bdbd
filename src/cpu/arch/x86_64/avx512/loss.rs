//! `avx512` loss kernels (`f32`). The 32 canonical lanes live in two
//! `__m512` registers (lanes 0–15 and 16–31); a mask bit selects through
//! the AVX-512 `k` registers directly (`mask_add`: a masked-out lane is
//! never added; `maskz`: its gradient is 0). Every formula is a line-by-line
//! transcription of `portable::elem_op` / `math::{exp_f32, ln_f32}`: plain
//! multiplies and adds, no FMA, so the bits are those of the portable room.
//!
//! Call only through `crate::cpu::loss` after checking `Isa::Avx512`.

use std::arch::x86_64::*;

use crate::canonical::{fold_partials, halving_tree, BLOCK, LANES};
use crate::cpu::arch::x86_64::ew_ops::prefetch_lines;
use crate::cpu::loss::{kind, ElemParams};
use crate::math::{EXP_HI, EXP_LO, EXP_P, LN2_HI, LN2_LO, LOG2E, LOG_P, SQRTHF};

#[inline(always)]
fn set1(v: f32) -> __m512 {
    // SAFETY: only called from functions compiled with AVX-512F.
    unsafe { _mm512_set1_ps(v) }
}

/// `exp_f32` on 16 lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
fn exp16(x: __m512) -> __m512 {
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
    let hi = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, set1(EXP_HI));
    let lo = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, set1(EXP_LO));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, set1(LOG2E)),
    );
    let r = _mm512_sub_ps(
        _mm512_sub_ps(x, _mm512_mul_ps(n, set1(LN2_HI))),
        _mm512_mul_ps(n, set1(LN2_LO)),
    );
    let z = _mm512_mul_ps(r, r);
    let mut p = set1(EXP_P[0]);
    for &c in &EXP_P[1..] {
        p = _mm512_add_ps(_mm512_mul_ps(p, r), set1(c));
    }
    let y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, z), r), set1(1.0));
    let ni = _mm512_cvtps_epi32(n);
    let n1 = _mm512_srai_epi32::<1>(_mm512_add_epi32(ni, _mm512_srli_epi32::<31>(ni)));
    let n2 = _mm512_sub_epi32(ni, n1);
    let bias = _mm512_set1_epi32(127);
    let p1 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n1, bias)));
    let p2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n2, bias)));
    let y = _mm512_mul_ps(_mm512_mul_ps(y, p1), p2);
    let y = _mm512_mask_mov_ps(y, lo, _mm512_setzero_ps());
    let y = _mm512_mask_mov_ps(y, hi, set1(f32::INFINITY));
    _mm512_mask_mov_ps(y, nan, x)
}

/// `ln_f32` on 16 lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
fn ln16(x: __m512) -> __m512 {
    let zero = _mm512_setzero_ps();
    let bad = _mm512_cmp_ps_mask::<_CMP_NGE_UQ>(x, zero); // NaN or < 0
    let is0 = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, zero);
    let isinf = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, set1(f32::INFINITY));
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
    let ef = _mm512_cvtepi32_ps(e);
    let z = _mm512_mul_ps(m, m);
    let mut p = set1(LOG_P[0]);
    for &c in &LOG_P[1..] {
        p = _mm512_add_ps(_mm512_mul_ps(p, m), set1(c));
    }
    let mut y = _mm512_mul_ps(_mm512_mul_ps(p, m), z);
    y = _mm512_add_ps(y, _mm512_mul_ps(set1(LN2_LO), ef));
    y = _mm512_add_ps(y, _mm512_mul_ps(set1(-0.5), z));
    let r = _mm512_add_ps(m, y);
    let r = _mm512_add_ps(r, _mm512_mul_ps(set1(LN2_HI), ef));
    let r = _mm512_mask_mov_ps(r, bad, set1(f32::NAN));
    let r = _mm512_mask_mov_ps(r, is0, set1(f32::NEG_INFINITY));
    _mm512_mask_mov_ps(r, isinf, x)
}

/// `sign(d)`: 1, -1, 0, NaN for NaN (portable `sgn`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
fn sgn16(d: __m512) -> __m512 {
    let zero = _mm512_setzero_ps();
    let r = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask::<_CMP_GT_OQ>(d, zero), set1(1.0));
    let r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(d, zero), set1(-1.0));
    _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(d, d), d)
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
fn neg16(v: __m512) -> __m512 {
    _mm512_castsi512_ps(_mm512_xor_si512(
        _mm512_castps_si512(v),
        _mm512_set1_epi32(i32::MIN),
    ))
}

/// The broadcast constants of [`ElemParams`].
#[derive(Clone, Copy)]
struct C {
    s: __m512,
    s2: __m512,
    a: __m512,
    b: __m512,
    c: __m512,
}

/// `portable::elem_op` on 16 lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
fn op16<const K: u8>(c: &C, x: __m512, y: __m512, pw: __m512) -> (__m512, __m512) {
    let half = set1(0.5);
    let one = set1(1.0);
    match K {
        kind::MSE => {
            let d = _mm512_sub_ps(x, y);
            (_mm512_mul_ps(d, d), _mm512_mul_ps(d, c.s))
        }
        kind::L1 => {
            let d = _mm512_sub_ps(x, y);
            (_mm512_abs_ps(d), _mm512_mul_ps(sgn16(d), c.s))
        }
        kind::HUBER => {
            let d = _mm512_sub_ps(x, y);
            let a = _mm512_abs_ps(d);
            let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, c.a);
            let v = _mm512_mask_blend_ps(
                lt,
                _mm512_mul_ps(_mm512_sub_ps(a, c.b), c.a),
                _mm512_mul_ps(_mm512_mul_ps(d, d), half),
            );
            let g = _mm512_mask_blend_ps(lt, _mm512_mul_ps(sgn16(d), c.c), _mm512_mul_ps(d, c.s));
            (v, g)
        }
        kind::SMOOTH => {
            let d = _mm512_sub_ps(x, y);
            let a = _mm512_abs_ps(d);
            let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, c.a);
            let v = _mm512_mask_blend_ps(
                lt,
                _mm512_sub_ps(a, c.b),
                _mm512_mul_ps(_mm512_mul_ps(d, d), c.c),
            );
            let g = _mm512_mask_blend_ps(lt, _mm512_mul_ps(sgn16(d), c.s), _mm512_mul_ps(d, c.s2));
            (v, g)
        }
        _ => {
            let ax = _mm512_abs_ps(x);
            let e = exp16(neg16(ax));
            let u = _mm512_add_ps(one, e);
            let u1 = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(u, one);
            let lp = _mm512_mask_blend_ps(
                u1,
                _mm512_mul_ps(ln16(u), _mm512_div_ps(e, _mm512_sub_ps(u, one))),
                e,
            );
            let sp = _mm512_add_ps(lp, _mm512_max_ps(neg16(x), _mm512_setzero_ps()));
            let omy = _mm512_sub_ps(one, y);
            let lw = _mm512_add_ps(one, _mm512_mul_ps(_mm512_sub_ps(pw, one), y));
            let v = _mm512_add_ps(_mm512_mul_ps(omy, x), _mm512_mul_ps(lw, sp));
            let ge = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_setzero_ps());
            let sn = _mm512_mask_blend_ps(ge, _mm512_div_ps(one, u), _mm512_div_ps(e, u));
            let g = _mm512_mul_ps(_mm512_sub_ps(omy, _mm512_mul_ps(lw, sn)), c.s);
            (v, g)
        }
    }
}

/// One canonical block of an elementwise loss (see `portable::elem_block`).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/DQ. Slices as in the portable room:
/// `y`, `grad` (and `vals`) have `x.len() <= BLOCK` elements and `words`
/// covers them.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
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
    let mut acc0 = _mm512_setzero_ps();
    let mut acc1 = _mm512_setzero_ps();
    let mut pwbuf = [1.0f32; LANES];
    let mut pi = pw.map_or(0, |(_, o)| o);
    let (xp, yp, gp) = (x.as_ptr(), y.as_ptr(), grad.as_mut_ptr());
    let stream = p.stream && (gp as usize).is_multiple_of(64);
    let stream_v = p.stream
        && vals
            .as_deref()
            .is_some_and(|v| (v.as_ptr() as usize).is_multiple_of(64));
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
        let (v0, v1) = (valid as u16, (valid >> 16) as u16);
        let (k0, k1) = (bits as u16, (bits >> 16) as u16);
        if let Some((w, _)) = pw {
            for slot in pwbuf.iter_mut().take(rem.min(32)) {
                *slot = w[pi];
                pi += 1;
                if pi == w.len() {
                    pi = 0;
                }
            }
        }
        // SAFETY: lanes past `rem` are masked off (v0/v1), and masked
        // AVX-512 loads/stores never touch masked-off lanes (no fault, no
        // access); the pointers are formed with `wrapping_add` because the
        // second half may start past the end of the slice in the last chunk.
        unsafe {
            let x0 = _mm512_maskz_loadu_ps(v0, xp.wrapping_add(k));
            let x1 = _mm512_maskz_loadu_ps(v1, xp.wrapping_add(k + 16));
            let y0 = _mm512_maskz_loadu_ps(v0, yp.wrapping_add(k));
            let y1 = _mm512_maskz_loadu_ps(v1, yp.wrapping_add(k + 16));
            let w0 = _mm512_loadu_ps(pwbuf.as_ptr());
            let w1 = _mm512_loadu_ps(pwbuf.as_ptr().wrapping_add(16));
            let (l0, g0) = op16::<K>(&c, x0, y0, w0);
            let (l1, g1) = op16::<K>(&c, x1, y1, w1);
            acc0 = _mm512_mask_add_ps(acc0, k0, acc0, l0);
            acc1 = _mm512_mask_add_ps(acc1, k1, acc1, l1);
            let (g0, g1) = (_mm512_maskz_mov_ps(k0, g0), _mm512_maskz_mov_ps(k1, g1));
            if stream && rem >= 32 {
                // 64-byte aligned: checked for the block start, k % 32 == 0
                _mm512_stream_ps(gp.wrapping_add(k), g0);
                _mm512_stream_ps(gp.wrapping_add(k + 16), g1);
            } else {
                _mm512_mask_storeu_ps(gp.wrapping_add(k), v0, g0);
                _mm512_mask_storeu_ps(gp.wrapping_add(k + 16), v1, g1);
            }
            if let Some(vs) = vals.as_deref_mut() {
                let vp = vs.as_mut_ptr();
                let (l0, l1) = (_mm512_maskz_mov_ps(k0, l0), _mm512_maskz_mov_ps(k1, l1));
                if stream_v && rem >= 32 {
                    _mm512_stream_ps(vp.wrapping_add(k), l0);
                    _mm512_stream_ps(vp.wrapping_add(k + 16), l1);
                } else {
                    _mm512_mask_storeu_ps(vp.wrapping_add(k), v0, l0);
                    _mm512_mask_storeu_ps(vp.wrapping_add(k + 16), v1, l1);
                }
            }
        }
        k += 32;
    }
    if stream || stream_v {
        // order the streaming stores before anything that publishes them
        _mm_sfence();
    }
    lane_tree(acc0, acc1)
}

/// Folds the 32 lanes (two registers) by the canonical halving tree.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
fn lane_tree(acc0: __m512, acc1: __m512) -> f32 {
    let mut lanes = [0.0f32; LANES];
    // SAFETY: `lanes` holds 32 f32, two unaligned 16-lane stores fit.
    unsafe {
        _mm512_storeu_ps(lanes.as_mut_ptr(), acc0);
        _mm512_storeu_ps(lanes.as_mut_ptr().wrapping_add(16), acc1);
    }
    halving_tree(&mut lanes, 0.0, |a, b| a + b)
}

/// Cross-entropy row statistics (see `portable::ce_stats`).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/DQ; `g` and `w` (if any) have
/// `x.len()` elements.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub(crate) unsafe fn ce_stats(
    x: &[f32],
    w: Option<&[f32]>,
    with_q: bool,
    g: &mut [f32],
) -> (f32, f32, f32) {
    let n = x.len();
    assert!(g.len() == n && w.is_none_or(|w| w.len() == n));
    let xp = x.as_ptr();
    let gp = g.as_mut_ptr();
    let ninf = set1(f32::NEG_INFINITY);
    // row max (exact, so any order gives the same value)
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
        let xv = unsafe { _mm512_mask_loadu_ps(ninf, v, xp.wrapping_add(k)) };
        mx = _mm512_max_ps(mx, xv);
        k += 16;
    }
    let m = _mm512_reduce_max_ps(mx);
    let mv = set1(m);
    let nb = n.div_ceil(BLOCK);
    let mut ps = Vec::with_capacity(nb);
    let mut pq = Vec::with_capacity(nb);
    for b in 0..nb {
        let start = b * BLOCK;
        let end = n.min(start + BLOCK);
        let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let (mut q0, mut q1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut k = start;
        while k < end {
            let rem = end - k;
            let valid: u32 = if rem >= 32 {
                u32::MAX
            } else {
                (1u32 << rem) - 1
            };
            let (v0, v1) = (valid as u16, (valid >> 16) as u16);
            // SAFETY: masked loads/stores stay inside the row (v0/v1).
            unsafe {
                let d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(v0, xp.wrapping_add(k)), mv);
                let d1 = _mm512_sub_ps(_mm512_maskz_loadu_ps(v1, xp.wrapping_add(k + 16)), mv);
                let e0 = exp16(d0);
                let e1 = exp16(d1);
                _mm512_mask_storeu_ps(gp.wrapping_add(k), v0, e0);
                _mm512_mask_storeu_ps(gp.wrapping_add(k + 16), v1, e1);
                s0 = _mm512_mask_add_ps(s0, v0, s0, e0);
                s1 = _mm512_mask_add_ps(s1, v1, s1, e1);
                if with_q {
                    let (t0, t1) = match w {
                        Some(w) => {
                            let wp = w.as_ptr();
                            (
                                _mm512_mul_ps(_mm512_maskz_loadu_ps(v0, wp.wrapping_add(k)), d0),
                                _mm512_mul_ps(
                                    _mm512_maskz_loadu_ps(v1, wp.wrapping_add(k + 16)),
                                    d1,
                                ),
                            )
                        }
                        None => (d0, d1),
                    };
                    q0 = _mm512_mask_add_ps(q0, v0, q0, t0);
                    q1 = _mm512_mask_add_ps(q1, v1, q1, t1);
                }
            }
            k += 32;
        }
        ps.push(lane_tree(s0, s1));
        pq.push(lane_tree(q0, q1));
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
/// The CPU must support AVX-512 F/BW/VL/DQ; `w` (if any) has `g.len()` elements.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub(crate) unsafe fn ce_grad(g: &mut [f32], w: Option<&[f32]>, alpha: f32, beta: f32) {
    let n = g.len();
    assert!(w.is_none_or(|w| w.len() == n));
    let (av, bv) = (set1(alpha), set1(beta));
    let gp = g.as_mut_ptr();
    let mut k = 0;
    while k < n {
        let rem = n - k;
        let v: u16 = if rem >= 16 {
            u16::MAX
        } else {
            (1u16 << rem) - 1
        };
        // SAFETY: masked loads/stores stay inside the row.
        unsafe {
            let gv = _mm512_maskz_loadu_ps(v, gp.wrapping_add(k));
            let t = match w {
                Some(w) => _mm512_mul_ps(bv, _mm512_maskz_loadu_ps(v, w.as_ptr().wrapping_add(k))),
                None => bv,
            };
            _mm512_mask_storeu_ps(
                gp.wrapping_add(k),
                v,
                _mm512_sub_ps(_mm512_mul_ps(gv, av), t),
            );
        }
        k += 16;
    }
}

/// [`exp16`] over a slice.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/DQ; `out.len() == x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub(crate) unsafe fn exp_slice(x: &[f32], out: &mut [f32]) {
    map16(x, out, |v| exp16(v))
}

/// [`ln16`] over a slice.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/DQ; `out.len() == x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub(crate) unsafe fn ln_slice(x: &[f32], out: &mut [f32]) {
    map16(x, out, |v| ln16(v))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
#[inline]
fn map16(x: &[f32], out: &mut [f32], f: impl Fn(__m512) -> __m512) {
    let n = x.len();
    assert_eq!(out.len(), n);
    let mut k = 0;
    while k < n {
        let rem = n - k;
        let v: u16 = if rem >= 16 {
            u16::MAX
        } else {
            (1u16 << rem) - 1
        };
        // SAFETY: masked loads/stores stay inside both slices.
        unsafe {
            let xv = _mm512_maskz_loadu_ps(v, x.as_ptr().wrapping_add(k));
            _mm512_mask_storeu_ps(out.as_mut_ptr().wrapping_add(k), v, f(xv));
        }
        k += 16;
    }
}

/// Fills `g` with `+0` using non-temporal stores for its aligned middle
/// (no read-for-ownership of the lines), then orders them with `sfence`.
///
/// # Safety
/// The CPU must support the room's ISA.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub(crate) unsafe fn zero_stream(g: &mut [f32]) {
    let n = g.len();
    let head = g.as_ptr().align_offset(64).min(n);
    g[..head].fill(0.0);
    let body = (n - head) / 16 * 16;
    let zero = _mm512_setzero_ps();
    let mut k = head;
    while k < head + body {
        // SAFETY: k is 64-byte aligned and k + 16 <= n.
        unsafe { _mm512_stream_ps(g.as_mut_ptr().wrapping_add(k), zero) };
        k += 16;
    }
    g[head + body..].fill(0.0);
    _mm_sfence();
}

crate::cpu::arch::portable::loss::forwarders!(#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]);
