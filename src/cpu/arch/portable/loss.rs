//! `portable` loss kernels: plain Rust, generic over `f32` and `f64`.
//!
//! These are the executable statement of what every SIMD room computes: the
//! per-element formulas in [`elem_op`] (same operations, same order, no FMA)
//! and the canonical lane order (element at block offset `k` goes to lane
//! `k % 32`, lanes folded by the halving tree). The AVX2 and AVX-512 rooms
//! give the same bits for `f32`; `f64` runs here on every ISA.

use crate::canonical::{fold_partials, halving_tree, BLOCK, LANES};
use crate::cpu::loss::{kind, ElemParams, Lf};

/// `sign(d)`: 1, -1, 0 for ±0, NaN for NaN.
#[inline(always)]
pub(crate) fn sgn<F: Lf>(d: F) -> F {
    if d.is_nan() {
        d
    } else if d < F::ZERO {
        -F::ONE
    } else if d > F::ZERO {
        F::ONE
    } else {
        F::ZERO
    }
}

/// The per-element `(value, gradient)` of loss kind `K` for one kept
/// element (`pw` is the positive weight, 1 without one; BCE only). The SIMD
/// rooms transcribe exactly these operations.
#[inline(always)]
pub(crate) fn elem_op<F: Lf, const K: u8>(p: &ElemParams<F>, x: F, y: F, pw: F) -> (F, F) {
    let half = F::from_f64(0.5);
    match K {
        kind::MSE => {
            let d = x - y;
            (d * d, d * p.s)
        }
        kind::L1 => {
            let d = x - y;
            (d.abs(), sgn(d) * p.s)
        }
        kind::HUBER => {
            let d = x - y;
            let a = d.abs();
            if a < p.a {
                ((d * d) * half, d * p.s)
            } else {
                ((a - p.b) * p.a, sgn(d) * p.c)
            }
        }
        kind::SMOOTH => {
            let d = x - y;
            let a = d.abs();
            if a < p.a {
                ((d * d) * p.c, d * p.s2)
            } else {
                (a - p.b, sgn(d) * p.s)
            }
        }
        _ => {
            // BCE with logits; ln(1 + e) by Goldberg's trick (accurate for
            // tiny e): ln(u) * e / (u - 1) with u = 1 + e, or e when u == 1
            let ax = x.abs();
            let e = (-ax).dexp();
            let u = F::ONE + e;
            let lp = if u == F::ONE {
                e
            } else {
                u.dln() * (e / (u - F::ONE))
            };
            let nx = -x;
            let sp = lp + if nx > F::ZERO { nx } else { F::ZERO };
            let omy = F::ONE - y;
            let lw = F::ONE + (pw - F::ONE) * y;
            let v = omy * x + lw * sp;
            let sn = if x >= F::ZERO { e / u } else { F::ONE / u };
            (v, (omy - lw * sn) * p.s)
        }
    }
}

/// One canonical block (`x.len() <= BLOCK`) of an elementwise loss: writes
/// the gradient (0 where masked out) and, if asked, the per-element values;
/// returns the block partial of the kept values. `words` starts at the
/// block's first element (blocks start at multiples of 64). `pw` is the
/// positive-weight vector and the index into it of the block's first element.
#[allow(clippy::too_many_arguments)]
pub(crate) fn elem_block<F: Lf, const K: u8>(
    p: &ElemParams<F>,
    x: &[F],
    y: &[F],
    pw: Option<(&[F], usize)>,
    words: &[u64],
    grad: &mut [F],
    mut vals: Option<&mut [F]>,
) -> F {
    let n = x.len();
    debug_assert!(n <= BLOCK && y.len() == n && grad.len() == n);
    let mut acc = [F::ZERO; LANES];
    let mut pi = pw.map_or(0, |(_, o)| o);
    for i in 0..n {
        let keep = (words[i / 64] >> (i % 64)) & 1 == 1;
        let (v, g) = if keep {
            let w = pw.map_or(F::ONE, |(w, _)| w[pi]);
            let (v, g) = elem_op::<F, K>(p, x[i], y[i], w);
            acc[i % LANES] += v;
            (v, g)
        } else {
            (F::ZERO, F::ZERO)
        };
        grad[i] = g;
        if let Some(vs) = vals.as_deref_mut() {
            vs[i] = v;
        }
        if let Some((w, _)) = pw {
            pi += 1;
            if pi == w.len() {
                pi = 0;
            }
        }
    }
    halving_tree(&mut acc, F::ZERO, |a, b| a + b)
}

/// Cross-entropy row statistics: returns `(m, s, q)` with `m` the row max,
/// `s = sum_c exp(x_c - m)` and (if `with_q`) `q = sum_c w_c (x_c - m)`,
/// both in the canonical order over the row; stores `exp(x_c - m)` in `g`.
pub(crate) fn ce_stats<F: Lf>(x: &[F], w: Option<&[F]>, with_q: bool, g: &mut [F]) -> (F, F, F) {
    let m = x
        .iter()
        .fold(F::from_f64(f64::NEG_INFINITY), |a, &b| a.max(b));
    let n = x.len();
    let nb = n.div_ceil(BLOCK);
    let mut ps: Vec<F> = Vec::with_capacity(nb);
    let mut pq: Vec<F> = Vec::with_capacity(nb);
    for b in 0..nb {
        let start = b * BLOCK;
        let end = n.min(start + BLOCK);
        let mut acc_s = [F::ZERO; LANES];
        let mut acc_q = [F::ZERO; LANES];
        for i in start..end {
            let d = x[i] - m;
            let e = d.dexp();
            g[i] = e;
            let j = (i - start) % LANES;
            acc_s[j] += e;
            if with_q {
                acc_q[j] += match w {
                    Some(w) => w[i] * d,
                    None => d,
                };
            }
        }
        ps.push(halving_tree(&mut acc_s, F::ZERO, |a, b| a + b));
        pq.push(halving_tree(&mut acc_q, F::ZERO, |a, b| a + b));
    }
    let s = fold_partials(&ps, F::ZERO, |a, b| a + b);
    let q = if with_q {
        fold_partials(&pq, F::ZERO, |a, b| a + b)
    } else {
        F::ZERO
    };
    (m, s, q)
}

/// Cross-entropy row gradient: `g_c = g_c * alpha - beta * w_c` (`- beta`
/// without weights), where `g` holds `exp(x_c - m)`.
pub(crate) fn ce_grad<F: Lf>(g: &mut [F], w: Option<&[F]>, alpha: F, beta: F) {
    match w {
        Some(w) => {
            for (gc, &wc) in g.iter_mut().zip(w) {
                *gc = *gc * alpha - beta * wc;
            }
        }
        None => {
            for gc in g.iter_mut() {
                *gc = *gc * alpha - beta;
            }
        }
    }
}

/// `exp` of every element (`math::exp_f32` for `f32`).
pub(crate) fn exp_slice<F: Lf>(x: &[F], out: &mut [F]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v.dexp();
    }
}

/// `ln` of every element (`math::ln_f32` for `f32`).
pub(crate) fn ln_slice<F: Lf>(x: &[F], out: &mut [F]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v.dln();
    }
}
