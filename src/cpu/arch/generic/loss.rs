//! The loss kernels (`f32`), written once over [`LossLanes`]: one canonical
//! block of an elementwise loss, the cross-entropy row statistics and
//! gradient, `exp`/`ln` over a slice and the streaming zero fill. The 32
//! canonical lanes live in `R = LANES / W` registers side by side (AVX2:
//! four of 8, AVX-512: two of 16). A masked-out lane adds nothing to its
//! accumulator (an AND to `+0` on AVX2, which leaves an accumulator that
//! started at `+0` bit-for-bit unchanged; a masked add on AVX-512) and its
//! gradient is `+0`. Every formula is a line-by-line transcription of
//! `portable::elem_op` / `math::{exp_f32, ln_f32}`: plain multiplies and
//! adds, no FMA, so the bits are those of the portable room.

use super::math::MathLanes;
use super::prefetch_lines;
use crate::canonical::{fold_partials, halving_tree, BLOCK, LANES};
use crate::cpu::loss::{kind, ElemParams};

/// Registers of a canonical 32-lane chunk, at most (NEON: 8 of 4 lanes).
const MAX_R: usize = 8;

/// What the losses need on top of [`MathLanes`] (`f32` lanes).
///
/// # Safety
/// As [`Vreg`](super::Vreg): the room's target features; pointer methods as documented.
#[allow(clippy::missing_safety_doc)]
pub trait LossLanes: MathLanes {
    /// An elementwise-loss chunk runs its registers two at a time, written
    /// out (AVX-512: its two halves), rather than in a loop (AVX2: four).
    const PAIRS: bool;
    /// Lanes where `self >= o` (ordered).
    unsafe fn ge(self, o: Self) -> Self::M;
    /// `sign(self)`: 1, -1, 0 (of either sign: `+0`), NaN for NaN (portable `sgn`).
    unsafe fn sgn(self) -> Self;
    /// `acc + v` in the lanes of `m`, `acc` elsewhere.
    unsafe fn add_kept(acc: Self, m: Self::M, v: Self) -> Self;
    /// `W` elements from `p`, or (`tail = Some(m)`) the lanes of `m`, the
    /// other lanes `+0.0`, reading only those.
    unsafe fn load_valid(p: *const f32, tail: Option<Self::M>) -> Self;
    /// `self` to the `W` elements at `p` (non-temporal when `stream`; `p`
    /// is then `W * 4`-byte aligned), or (`tail = Some(m)`) its lanes of `m`,
    /// writing only those.
    unsafe fn store_valid(self, p: *mut f32, tail: Option<Self::M>, stream: bool);
    /// A non-temporal store of `W` elements to `W * 4`-byte aligned `p`.
    unsafe fn stream(self, p: *mut f32);
    /// Orders the non-temporal stores before later stores.
    unsafe fn sfence();
    /// The largest element of `x` (exact; the room's order and NaN
    /// handling).
    unsafe fn row_max(x: &[f32]) -> f32;
}

/// The broadcast constants of [`ElemParams`].
#[derive(Clone, Copy)]
struct C<V> {
    s: V,
    s2: V,
    a: V,
    b: V,
    c: V,
}

/// `portable::elem_op` on `W` lanes: `(value, gradient)`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn op<V: LossLanes, const K: u8>(c: &C<V>, x: V, y: V, pw: V) -> (V, V) {
    let half = V::splat(0.5);
    let one = V::splat(1.0);
    let zero = V::splat(0.0);
    match K {
        kind::MSE => {
            let d = x.sub(y);
            (d.mul(d), d.mul(c.s))
        }
        kind::L1 => {
            let d = x.sub(y);
            (d.abs(), d.sgn().mul(c.s))
        }
        kind::HUBER => {
            let d = x.sub(y);
            let a = d.abs();
            let lt = a.lt(c.a);
            let v = a.sub(c.b).mul(c.a).select(lt, d.mul(d).mul(half));
            let g = d.sgn().mul(c.c).select(lt, d.mul(c.s));
            (v, g)
        }
        kind::SMOOTH => {
            let d = x.sub(y);
            let a = d.abs();
            let lt = a.lt(c.a);
            let v = a.sub(c.b).select(lt, d.mul(d).mul(c.c));
            let g = d.sgn().mul(c.s).select(lt, d.mul(c.s2));
            (v, g)
        }
        _ => {
            let e = x.abs().neg().exp();
            let u = one.add(e);
            let u1 = u.eq(one);
            let lp = u.ln().mul(e.div(u.sub(one))).select(u1, e);
            let sp = lp.add(x.neg().max_raw(zero));
            let omy = one.sub(y);
            let lw = one.add(pw.sub(one).mul(y));
            let v = omy.mul(x).add(lw.mul(sp));
            let ge = x.ge(zero);
            let sn = one.div(u).select(ge, e.div(u));
            let g = omy.sub(lw.mul(sn)).mul(c.s);
            (v, g)
        }
    }
}

/// Folds the 32 lanes (`R` registers) by the canonical halving tree.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn lane_tree<V: LossLanes>(acc: &[V; MAX_R]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    for (q, a) in acc.iter().take(LANES / V::W).enumerate() {
        // SAFETY: `lanes` holds 32 f32; register q covers W q .. W (q + 1).
        a.store(lanes.as_mut_ptr().add(V::W * q));
    }
    halving_tree(&mut lanes, 0.0, |a, b| a + b)
}

/// The lane masks of the `R` registers of a chunk from its 32 bits.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn masks<V: LossLanes>(bits: u32) -> [V::M; MAX_R] {
    let lanes = (1u64 << V::W) - 1;
    // registers past `LANES / W` keep the empty mask (never used); a loop,
    // not a closure, so that the lane operations inline into the caller
    let mut m = [V::mask(0); MAX_R];
    for (q, slot) in m.iter_mut().take(LANES / V::W).enumerate() {
        *slot = V::mask(((bits as u64) >> (V::W * q)) & lanes);
    }
    m
}

/// The outputs of one block of [`elem_block`].
struct Io {
    xp: *const f32,
    yp: *const f32,
    gp: *mut f32,
    vp: Option<*mut f32>,
    stream: bool,
    stream_v: bool,
}

/// The register at element `o` of a block of [`elem_block`], with the
/// positive weights `pw` of its lanes: stores its outputs, returns `acc`
/// plus its kept values.
///
/// # Safety
/// Room features; `W` elements at `o` of the inputs and outputs, or the
/// lanes of `tail` only.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn elem_reg<V: LossLanes, const K: u8>(
    c: &C<V>,
    io: &Io,
    o: usize,
    pw: *const f32,
    keep: V::M,
    tail: Option<V::M>,
    acc: V,
) -> V {
    // the pointers use `wrapping_add`: in a partial chunk a register may
    // start past the end
    let xv = V::load_valid(io.xp.wrapping_add(o), tail);
    let yv = V::load_valid(io.yp.wrapping_add(o), tail);
    let (l, g) = op::<V, K>(c, xv, yv, V::load(pw));
    // stream: aligned, checked for the block start, o % W == 0
    V::keep(keep, g).store_valid(io.gp.wrapping_add(o), tail, io.stream);
    if let Some(vp) = io.vp {
        V::keep(keep, l).store_valid(vp.wrapping_add(o), tail, io.stream_v);
    }
    V::add_kept(acc, keep, l)
}

/// One canonical block of an elementwise loss (see `portable::elem_block`).
///
/// # Safety
/// Room features. Slices as in the portable room: `y`, `grad` (and `vals`)
/// have `x.len() <= BLOCK` elements and `words` covers them.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn elem_block<V: LossLanes, const K: u8>(
    p: &ElemParams<f32>,
    x: &[f32],
    y: &[f32],
    pw: Option<(&[f32], usize)>,
    words: &[u64],
    grad: &mut [f32],
    vals: Option<&mut [f32]>,
) -> f32 {
    let r = LANES / V::W;
    debug_assert!(!V::PAIRS || r.is_multiple_of(2));
    let n = x.len();
    assert!(n <= BLOCK && y.len() == n && grad.len() == n && words.len() * 64 >= n);
    if let Some(v) = vals.as_deref() {
        assert_eq!(v.len(), n);
    }
    let c = C {
        s: V::splat(p.s),
        s2: V::splat(p.s2),
        a: V::splat(p.a),
        b: V::splat(p.b),
        c: V::splat(p.c),
    };
    let mut acc = [V::splat(0.0); MAX_R];
    let mut pwbuf = [1.0f32; LANES];
    let mut pi = pw.map_or(0, |(_, o)| o);
    let (xp, yp, gp) = (x.as_ptr(), y.as_ptr(), grad.as_mut_ptr());
    let align = V::W * core::mem::size_of::<f32>();
    let stream = p.stream && (gp as usize).is_multiple_of(align);
    let stream_v = p.stream
        && vals
            .as_deref()
            .is_some_and(|v| (v.as_ptr() as usize).is_multiple_of(align));
    let io = Io {
        xp,
        yp,
        gp,
        vp: vals.map(|v| v.as_mut_ptr()),
        stream,
        stream_v,
    };
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
        let keep = masks::<V>(bits);
        if let Some((w, _)) = pw {
            for slot in pwbuf.iter_mut().take(rem.min(32)) {
                *slot = w[pi];
                pi += 1;
                if pi == w.len() {
                    pi = 0;
                }
            }
        }
        let tails = if rem >= 32 {
            None
        } else {
            Some(masks::<V>(valid))
        };
        // SAFETY (both arms): full chunks read/write 32 in-bounds lanes; in
        // the last, partial chunk the `tail` loads and stores touch only
        // lanes < rem.
        if V::PAIRS {
            // two registers per step, written out: LLVM does not unroll a
            // loop over BCE bodies, and the AVX-512 room has always run its
            // two independent exp/ln chains side by side
            let mut q = 0;
            while q < r {
                let (t0, t1) = (tails.map(|t| t[q]), tails.map(|t| t[q + 1]));
                let pw = pwbuf.as_ptr().add(V::W * q);
                let (o0, o1) = (k + V::W * q, k + V::W * (q + 1));
                acc[q] = elem_reg::<V, K>(&c, &io, o0, pw, keep[q], t0, acc[q]);
                let pw = pw.add(V::W);
                acc[q + 1] = elem_reg::<V, K>(&c, &io, o1, pw, keep[q + 1], t1, acc[q + 1]);
                q += 2;
            }
        } else {
            for q in 0..r {
                let tail = tails.map(|t| t[q]);
                let pw = pwbuf.as_ptr().add(V::W * q);
                acc[q] = elem_reg::<V, K>(&c, &io, k + V::W * q, pw, keep[q], tail, acc[q]);
            }
        }
        k += 32;
    }
    if stream || stream_v {
        // order the streaming stores before anything that publishes them
        V::sfence();
    }
    lane_tree(&acc)
}

/// Cross-entropy row statistics (see `portable::ce_stats`).
///
/// # Safety
/// Room features; `g` and `w` (if any) have `x.len()` elements.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn ce_stats<V: LossLanes>(
    x: &[f32],
    w: Option<&[f32]>,
    with_q: bool,
    g: &mut [f32],
) -> (f32, f32, f32) {
    let r = LANES / V::W;
    let n = x.len();
    assert!(g.len() == n && w.is_none_or(|w| w.len() == n));
    // row max (exact, so any order gives the same value)
    let m = V::row_max(x);
    let mv = V::splat(m);
    let nb = n.div_ceil(BLOCK);
    let mut ps = Vec::with_capacity(nb);
    let mut pq = Vec::with_capacity(nb);
    let (xp, gp) = (x.as_ptr(), g.as_mut_ptr());
    for b in 0..nb {
        let start = b * BLOCK;
        let end = n.min(start + BLOCK);
        let mut sacc = [V::splat(0.0); MAX_R];
        let mut qacc = [V::splat(0.0); MAX_R];
        let mut k = start;
        while k < end {
            let rem = end - k;
            let tails = if rem >= 32 {
                None
            } else {
                Some(masks::<V>((1u32 << rem) - 1))
            };
            for q in 0..r {
                let o = k + V::W * q;
                let tail = tails.map(|t| t[q]);
                // SAFETY: full chunks are in bounds; the partial one loads
                // and stores the lanes < rem only.
                let d = V::load_valid(xp.wrapping_add(o), tail).sub(mv);
                let e = d.exp();
                e.store_valid(gp.wrapping_add(o), tail, false);
                sacc[q] = match tail {
                    None => sacc[q].add(e),
                    Some(t) => V::add_kept(sacc[q], t, e),
                };
                if with_q {
                    let dw = match w {
                        Some(w) => V::load_valid(w.as_ptr().wrapping_add(o), tail).mul(d),
                        None => d,
                    };
                    qacc[q] = match tail {
                        None => qacc[q].add(dw),
                        Some(t) => V::add_kept(qacc[q], t, dw),
                    };
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
/// Room features; `w` (if any) has `g.len()` elements.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn ce_grad<V: LossLanes>(g: &mut [f32], w: Option<&[f32]>, alpha: f32, beta: f32) {
    let n = g.len();
    assert!(w.is_none_or(|w| w.len() == n));
    let (av, bv) = (V::splat(alpha), V::splat(beta));
    let gp = g.as_mut_ptr();
    let mut k = 0;
    while k + V::W <= n {
        // SAFETY: `k + W <= n` in `g` and `w`.
        let t = match w {
            Some(w) => bv.mul(V::load(w.as_ptr().add(k))),
            None => bv,
        };
        V::load(gp.add(k)).mul(av).sub(t).store(gp.add(k));
        k += V::W;
    }
    if k < n {
        let part = n - k;
        // SAFETY: the `n - k < W` elements left in `g` and `w`.
        let t = match w {
            Some(w) => bv.mul(V::load_part(w.as_ptr().add(k), part)),
            None => bv,
        };
        V::load_part(gp.add(k), part)
            .mul(av)
            .sub(t)
            .store_part(gp.add(k), part);
    }
}

/// `exp_f32` (`exp`) or `ln_f32` (not `exp`) over a slice.
///
/// # Safety
/// Room features; `out.len() == x.len()`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn map<V: LossLanes>(x: &[f32], out: &mut [f32], exp: bool) {
    let n = x.len();
    assert_eq!(out.len(), n);
    let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
    let mut k = 0;
    while k + V::W <= n {
        // SAFETY: `k + W <= n` in both slices.
        map1(V::load(xp.add(k)), exp).store(op.add(k));
        k += V::W;
    }
    if k < n {
        // SAFETY: the `n - k < W` elements left in both slices.
        map1(V::load_part(xp.add(k), n - k), exp).store_part(op.add(k), n - k);
    }
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn map1<V: LossLanes>(v: V, exp: bool) -> V {
    if exp {
        v.exp()
    } else {
        v.ln()
    }
}

/// Fills `g` with `+0` using non-temporal stores for its aligned middle
/// (no read-for-ownership of the lines), then orders them with `sfence`.
///
/// # Safety
/// Room features.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn zero_stream<V: LossLanes>(g: &mut [f32]) {
    let n = g.len();
    let head = g
        .as_ptr()
        .align_offset(V::W * core::mem::size_of::<f32>())
        .min(n);
    g[..head].fill(0.0);
    let body = (n - head) / V::W * V::W;
    let zero = V::splat(0.0);
    let mut k = head;
    while k < head + body {
        // SAFETY: k is W * 4-byte aligned and k + W <= n.
        zero.stream(g.as_mut_ptr().add(k));
        k += V::W;
    }
    g[head + body..].fill(0.0);
    V::sfence();
}

/// Generates a room's loss entry points (`elem_block`, `ce_stats`,
/// `ce_grad`, `exp_slice`, `ln_slice`, `zero_stream` for `f32` over the
/// lane type `$v32`; the `f64` and ECS forwarders to the portable room)
/// under the room's attributes (`#[target_feature]`).
macro_rules! loss_entries {
    ($(#[$attr:meta])* $v32:ty) => {
        /// One canonical block of an elementwise loss (the generic body,
        /// this room's lanes).
        ///
        /// # Safety
        /// The room's CPU features; slices as in `portable::elem_block`.
        #[allow(clippy::too_many_arguments)]
        $(#[$attr])*
        pub(crate) unsafe fn elem_block<const K: u8>(
            p: &$crate::cpu::loss::ElemParams<f32>,
            x: &[f32],
            y: &[f32],
            pw: Option<(&[f32], usize)>,
            words: &[u64],
            grad: &mut [f32],
            vals: Option<&mut [f32]>,
        ) -> f32 {
            $crate::cpu::arch::generic::loss::elem_block::<$v32, K>(p, x, y, pw, words, grad, vals)
        }

        /// Cross-entropy row statistics (the generic body).
        ///
        /// # Safety
        /// The room's CPU features; `g` and `w` (if any) have `x.len()` elements.
        $(#[$attr])*
        pub(crate) unsafe fn ce_stats(
            x: &[f32],
            w: Option<&[f32]>,
            with_q: bool,
            g: &mut [f32],
        ) -> (f32, f32, f32) {
            $crate::cpu::arch::generic::loss::ce_stats::<$v32>(x, w, with_q, g)
        }

        /// Cross-entropy row gradient `g = g * alpha - beta * w` (the generic body).
        ///
        /// # Safety
        /// The room's CPU features; `w` (if any) has `g.len()` elements.
        $(#[$attr])*
        pub(crate) unsafe fn ce_grad(g: &mut [f32], w: Option<&[f32]>, alpha: f32, beta: f32) {
            $crate::cpu::arch::generic::loss::ce_grad::<$v32>(g, w, alpha, beta)
        }

        /// `exp_f32` over a slice.
        ///
        /// # Safety
        /// The room's CPU features; `out.len() == x.len()`.
        $(#[$attr])*
        pub(crate) unsafe fn exp_slice(x: &[f32], out: &mut [f32]) {
            $crate::cpu::arch::generic::loss::map::<$v32>(x, out, true)
        }

        /// `ln_f32` over a slice.
        ///
        /// # Safety
        /// The room's CPU features; `out.len() == x.len()`.
        $(#[$attr])*
        pub(crate) unsafe fn ln_slice(x: &[f32], out: &mut [f32]) {
            $crate::cpu::arch::generic::loss::map::<$v32>(x, out, false)
        }

        /// Fills `g` with `+0`, non-temporal stores for its aligned middle.
        ///
        /// # Safety
        /// The room's CPU features.
        $(#[$attr])*
        pub(crate) unsafe fn zero_stream(g: &mut [f32]) {
            $crate::cpu::arch::generic::loss::zero_stream::<$v32>(g)
        }

        $crate::cpu::arch::portable::loss::forwarders!($(#[$attr])*);
    };
}
pub(crate) use loss_entries;
