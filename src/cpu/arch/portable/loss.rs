//! `portable` loss kernels: plain Rust, generic over `f32` and `f64`.
//!
//! These are the executable statement of what every SIMD room computes: the
//! per-element formulas in `elem_op` (same operations, same order, no FMA)
//! and the canonical lane order (element at block offset `k` goes to lane
//! `k % 32`, lanes folded by the halving tree). The AVX2 and AVX-512 rooms
//! give the same bits for `f32`; `f64` runs here on every ISA.

use crate::canonical::{fold_partials, halving_tree, BLOCK, LANES};
use crate::cpu::loss::{kind, ElemParams, Lf};

/// `sign(d)`: 1, -1, 0 for ±0, NaN for NaN.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
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
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
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
        kind::HUBER_WIDE => {
            // `reference::loss::huber` on one element, in f64
            let (d, delta) = (x.to_f64() - y.to_f64(), p.wide);
            let a = d.abs();
            let (v, g) = if a < delta {
                (0.5 * d * d, d)
            } else {
                (delta * (a - 0.5 * delta), delta * sgn(d))
            };
            (F::from_f64(v), F::from_f64(g * p.s.to_f64()))
        }
        kind::SMOOTH_WIDE => {
            // `reference::loss::smooth_l1` on one element, in f64
            let (d, beta) = (x.to_f64() - y.to_f64(), p.wide);
            let a = d.abs();
            let (v, g) = if a < beta {
                (0.5 * d * d / beta, d / beta)
            } else {
                (a - 0.5 * beta, sgn(d))
            };
            (F::from_f64(v), F::from_f64(g * p.s.to_f64()))
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
#[inline]
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
    // whole 32-lane chunks without a positive weight: branch-free selects
    // that the compiler vectorizes. Adding +0 for a masked-out lane is the
    // same as skipping it: a lane accumulator starts at +0 and a sum is -0
    // only if both terms are -0, so it is never -0.
    let full = if pw.is_none() { n / LANES * LANES } else { 0 };
    let mut vbuf = [F::ZERO; LANES];
    for k in (0..full).step_by(LANES) {
        let bits = words[k / 64] >> (k % 64);
        let (xs, ys) = (&x[k..k + LANES], &y[k..k + LANES]);
        let gs = &mut grad[k..k + LANES];
        for j in 0..LANES {
            let (v, g) = elem_op::<F, K>(p, xs[j], ys[j], F::ONE);
            let v = v.keep_or_zero(bits >> j);
            acc[j] += v;
            gs[j] = g.keep_or_zero(bits >> j);
            vbuf[j] = v;
        }
        if let Some(vs) = vals.as_deref_mut() {
            vs[k..k + LANES].copy_from_slice(&vbuf);
        }
    }
    for i in full..n {
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

/// `sum_k a_k b_k` in the canonical order (lane `k % 32` inside blocks of
/// `BLOCK`, halving trees); the inner fixed-width loop vectorizes without
/// reassociation. Symmetric: `dot(a, b) == dot(b, a)` bit for bit.
#[inline]
pub(crate) fn dot<F: Lf>(a: &[F], b: &[F]) -> F {
    let n = a.len().min(b.len());
    let nb = n.div_ceil(BLOCK);
    let partial = |start: usize, end: usize| {
        let mut acc = [F::ZERO; LANES];
        let (ab, bb) = (&a[start..end], &b[start..end]);
        let full = ab.len() / LANES * LANES;
        for (ca, cb) in ab[..full]
            .chunks_exact(LANES)
            .zip(bb[..full].chunks_exact(LANES))
        {
            for j in 0..LANES {
                acc[j] += ca[j] * cb[j];
            }
        }
        for (j, (x, y)) in ab[full..].iter().zip(&bb[full..]).enumerate() {
            acc[j] += *x * *y;
        }
        halving_tree(&mut acc, F::ZERO, |x, y| x + y)
    };
    if nb <= 1 {
        return partial(0, n);
    }
    let ps: Vec<F> = (0..nb)
        .map(|b| partial(b * BLOCK, n.min((b + 1) * BLOCK)))
        .collect();
    fold_partials(&ps, F::ZERO, |x, y| x + y)
}

/// One row `i` of the ECS forward: with `u` the normalized `rows x cols`
/// embedding, writes `vals[j] = 1 - (relu(cos_ij) - thr)^2` (cos_ii = 0)
/// and `gc[j] = dL/dcos_ij = -2 (relu(cos_ij) - thr) * inv_n2` where
/// `cos_ij > 0`, `i != j` (0 elsewhere).
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn ecs_row<F: Lf>(
    u: &[F],
    cols: usize,
    i: usize,
    thr: F,
    inv_n2: F,
    vals: &mut [F],
    gc: &mut [F],
) {
    let ui = &u[i * cols..(i + 1) * cols];
    let two = F::from_f64(2.0);
    for (j, (v, g)) in vals.iter_mut().zip(gc.iter_mut()).enumerate() {
        let c = if i == j {
            F::ZERO
        } else {
            dot(ui, &u[j * cols..(j + 1) * cols])
        };
        let r = if c > F::ZERO { c } else { F::ZERO };
        let t = r - thr;
        *v = F::ONE - t * t;
        *g = if c > F::ZERO {
            -(two * t) * inv_n2
        } else {
            F::ZERO
        };
    }
}

/// One row of the ECS backward: `ge_i` from `gc_i` (row `i` of the
/// symmetric `dL/dcos`), the normalized embedding `u` and the row norm:
/// `gu_i = sum_j 2 gc_ij u_j` (sequential in `j`), then through
/// `u = e / max(|e|, 1e-12)`.
#[inline]
pub(crate) fn ecs_grad_row<F: Lf>(
    u: &[F],
    cols: usize,
    i: usize,
    gc: &[F],
    norm: F,
    out: &mut [F],
) {
    let two = F::from_f64(2.0);
    out.fill(F::ZERO);
    for (j, &g) in gc.iter().enumerate() {
        if g != F::ZERO {
            let w = two * g;
            for (o, &uj) in out.iter_mut().zip(&u[j * cols..(j + 1) * cols]) {
                *o += w * uj;
            }
        }
    }
    let eps = F::from_f64(1e-12);
    let ui = &u[i * cols..(i + 1) * cols];
    if norm > eps {
        let d = dot(out, ui);
        for (o, &uk) in out.iter_mut().zip(ui) {
            *o = (*o - uk * d) / norm;
        }
    } else {
        for o in out.iter_mut() {
            *o /= eps;
        }
    }
}

/// Canonical-order sums of `K` sequences at once over the kept positions
/// of a row (`keep[k]`): `f(k)` gives the `K` terms at position `k`.
fn csums<F: Lf, const N: usize>(keep: &[bool], f: impl Fn(usize) -> [F; N]) -> [F; N] {
    let n = keep.len();
    let nb = n.div_ceil(BLOCK);
    let mut parts: Vec<[F; N]> = Vec::with_capacity(nb);
    for b in 0..nb {
        let start = b * BLOCK;
        let end = n.min(start + BLOCK);
        let mut acc = [[F::ZERO; LANES]; N];
        for k in start..end {
            if keep[k] {
                let t = f(k);
                for q in 0..N {
                    acc[q][(k - start) % LANES] += t[q];
                }
            }
        }
        parts.push(std::array::from_fn(|q| {
            halving_tree(&mut acc[q], F::ZERO, |x, y| x + y)
        }));
    }
    std::array::from_fn(|q| {
        let col: Vec<F> = parts.iter().map(|p| p[q]).collect();
        fold_partials(&col, F::ZERO, |x, y| x + y)
    })
}

/// Masked Pearson correlation of one row over the positions with
/// `keep[k]`. Sums in the canonical order over the row; values are shifted
/// by the first kept pair first (exact for constant rows, so they get zero
/// variance). Returns `None` for < 2 kept or zero variance.
pub(crate) fn pearson_row<F: Lf>(x: &[F], y: &[F], keep: &[bool]) -> Option<F> {
    let first = keep.iter().position(|&b| b)?;
    let cnt = keep.iter().filter(|&&b| b).count();
    if cnt < 2 {
        return None;
    }
    let (px, py) = (x[first], y[first]);
    let cf = F::from_f64(cnt as f64);
    let [sx, sy] = csums(keep, |k| [x[k] - px, y[k] - py]);
    let (mx, my) = (sx / cf, sy / cf);
    let [sxy, sxx, syy] = csums(keep, |k| {
        let dx = (x[k] - px) - mx;
        let dy = (y[k] - py) - my;
        [dx * dy, dx * dx, dy * dy]
    });
    if sxx > F::ZERO && syy > F::ZERO {
        Some(sxy / (sxx.sqrt() * syy.sqrt()))
    } else if sxx.is_nan() || syy.is_nan() {
        Some(F::from_f64(f64::NAN))
    } else {
        None
    }
}

/// Generates a room's forwarding entry points: the portable kernels below
/// compiled under the room's `#[target_feature]` attributes (the compiler
/// vectorizes their branch-free fixed-lane chunks; the operations are the
/// same, so are the bits). Each x86-64 room and the NEON room invoke it once.
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(unused_macros)
)]
macro_rules! forwarders {
    ($(#[$attr:meta])*) => {
        use $crate::cpu::arch::portable::loss as fwd;

        /// `f64` elementwise block: `portable::elem_block` for this ISA.
        ///
        /// # Safety
        /// The CPU must support the room's ISA; slices as in
        /// `portable::elem_block`.
        #[allow(clippy::too_many_arguments)]
        $(#[$attr])*
        pub(crate) unsafe fn elem_block_f64<const K: u8>(
            p: &$crate::cpu::loss::ElemParams<f64>,
            x: &[f64],
            y: &[f64],
            pw: Option<(&[f64], usize)>,
            words: &[u64],
            grad: &mut [f64],
            vals: Option<&mut [f64]>,
        ) -> f64 {
            fwd::elem_block::<f64, K>(p, x, y, pw, words, grad, vals)
        }

        /// One ECS forward row: `portable::ecs_row` for this ISA.
        ///
        /// # Safety
        /// The CPU must support the room's ISA.
        #[allow(clippy::too_many_arguments)]
        $(#[$attr])*
        pub(crate) unsafe fn ecs_row<F: $crate::cpu::loss::Lf>(
            u: &[F],
            cols: usize,
            i: usize,
            thr: F,
            inv_n2: F,
            vals: &mut [F],
            gc: &mut [F],
        ) {
            fwd::ecs_row(u, cols, i, thr, inv_n2, vals, gc)
        }

        /// One ECS backward row: `portable::ecs_grad_row` for this ISA.
        ///
        /// # Safety
        /// The CPU must support the room's ISA.
        $(#[$attr])*
        pub(crate) unsafe fn ecs_grad_row<F: $crate::cpu::loss::Lf>(
            u: &[F],
            cols: usize,
            i: usize,
            gc: &[F],
            norm: F,
            out: &mut [F],
        ) {
            fwd::ecs_grad_row(u, cols, i, gc, norm, out)
        }
    };
}
// the x86 and NEON rooms' loss entry points
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) use forwarders;
