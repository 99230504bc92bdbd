//! Execution of validated steps: chunking for rayon, runs of equal indices,
//! prefetching. Everything here runs after validation and cannot fail.

use super::element::AdagradElement;
use super::validate::Hyper;
use super::workspace::{Sorted, Workspace};
use crate::cpu::adagrad::{prefetch, Hp};
use crate::cpu::arch::portable::adagrad::update_at;
use crate::cpu::Isa;
use crate::element::Element;
use rayon::prelude::*;
use std::cell::RefCell;

thread_local! {
    static WS: RefCell<Workspace> = RefCell::new(Workspace::new());
}

/// Runs `f` with this thread's workspace (a fresh one if it is in use).
pub(crate) fn with_thread_ws<R>(f: impl FnOnce(&mut Workspace) -> R) -> R {
    WS.with(|w| match w.try_borrow_mut() {
        Ok(mut w) => f(&mut w),
        Err(_) => f(&mut Workspace::new()),
    })
}

/// The hyper-parameters rounded to the state type.
pub(crate) fn hp<P: AdagradElement>(h: &Hyper) -> Hp<P::State> {
    Hp {
        clr: <P::State as Element>::from_f64(h.clr),
        eps: <P::State as Element>::from_f64(h.eps),
        wd: <P::State as Element>::from_f64(h.wd),
        maximize: h.maximize,
        decay: h.wd != 0.0,
    }
}

fn parallel(work: usize, min: usize) -> bool {
    work >= 2 * min && rayon::current_num_threads() > 1
}

fn chunk(min: usize) -> usize {
    min.div_ceil(64).max(1) * 64
}

/// Dense step body.
pub(crate) fn dense<P: AdagradElement>(
    isa: Isa,
    min: usize,
    p: &mut [P],
    s: &mut [P::State],
    g: &[P],
    h: &Hp<P::State>,
) {
    if parallel(p.len(), min) {
        let ch = chunk(min);
        p.par_chunks_mut(ch)
            .zip(s.par_chunks_mut(ch))
            .zip(g.par_chunks(ch))
            .for_each(|((p, s), g)| P::k_dense(isa, p, s, g, h));
    } else {
        P::k_dense(isa, p, s, g, h);
    }
}

/// Masked step body (`words` cover `p.len()` bits).
pub(crate) fn masked<P: AdagradElement>(
    isa: Isa,
    min: usize,
    p: &mut [P],
    s: &mut [P::State],
    g: &[P],
    words: &[u64],
    h: &Hp<P::State>,
) {
    if parallel(p.len(), min) {
        let ch = chunk(min);
        p.par_chunks_mut(ch)
            .zip(s.par_chunks_mut(ch))
            .zip(g.par_chunks(ch))
            .zip(words.par_chunks(ch / 64))
            .for_each(|(((p, s), g), w)| P::k_masked(isa, p, s, g, w, h));
    } else {
        P::k_masked(isa, p, s, g, words, h);
    }
}

/// Splits the sorted entries `lo..hi` at run boundaries near the middle and
/// the parameter (`stride` elements per key, keys from `base`) with them,
/// recursing in parallel while each half keeps at least `min_items` entries.
#[allow(clippy::too_many_arguments)]
fn split_runs<P, S, F>(
    s: &Sorted<'_>,
    lo: usize,
    hi: usize,
    param: &mut [P],
    sum: &mut [S],
    base: usize,
    stride: usize,
    min_items: usize,
    f: &F,
) where
    P: Send,
    S: Send,
    F: Fn(&mut [P], &mut [S], usize, usize, usize) + Sync,
{
    if hi - lo < 2 * min_items || rayon::current_num_threads() == 1 {
        return f(param, sum, base, lo, hi);
    }
    let mut mid = lo + (hi - lo) / 2;
    let km = s.key(mid);
    while mid > lo && s.key(mid - 1) == km {
        mid -= 1;
    }
    if mid == lo {
        mid = s.run_end(lo);
        if mid >= hi {
            return f(param, sum, base, lo, hi);
        }
    }
    let split = s.key(mid);
    let at = (split - base) * stride;
    let (pl, pr) = param.split_at_mut(at);
    let (sl, sr) = sum.split_at_mut(at);
    rayon::join(
        || split_runs(s, lo, mid, pl, sl, base, stride, min_items, f),
        || split_runs(s, mid, hi, pr, sr, split, stride, min_items, f),
    );
}

/// Element-sparse step body: `s` sorts the gradient entries by flat index;
/// each run is summed in order of appearance (state type), then updated.
pub(crate) fn sparse<P: AdagradElement>(
    ws: &Workspace,
    s: Sorted<'_>,
    param: &mut [P],
    sum: &mut [P::State],
    values: &[P],
    h: &Hp<P::State>,
) {
    const PF: usize = 16;
    let seq = |param: &mut [P], sum: &mut [P::State], base: usize, lo: usize, hi: usize| {
        let mut i = lo;
        while i < hi {
            if i + PF < hi {
                let k = s.key(i + PF) - base;
                prefetch(param.as_ptr().wrapping_add(k));
                prefetch(sum.as_ptr().wrapping_add(k));
            }
            let k = s.key(i);
            let mut g = values[s.pos(i)].to_state();
            i += 1;
            while i < hi && s.key(i) == k {
                g += values[s.pos(i)].to_state();
                i += 1;
            }
            update_at(&mut param[k - base], &mut sum[k - base], g, h);
        }
    };
    split_runs(&s, 0, s.len(), param, sum, 0, 1, ws.parallel_min(), &seq);
}

/// Row-sparse step body: `s` sorts the gradient rows by parameter row; each
/// run of equal rows is summed in order of appearance and updated by the
/// row kernel of `isa`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rows<P: AdagradElement>(
    isa: Isa,
    ws: &Workspace,
    s: Sorted<'_>,
    param: &mut [P],
    sum: &mut [P::State],
    cols: usize,
    values: &[P],
    h: &Hp<P::State>,
) {
    if cols == 0 {
        return;
    }
    // Rows ahead to prefetch (param and state lines); random rows are
    // latency-bound, so several must be in flight.
    const PF: usize = 8;
    let p_bytes = cols * std::mem::size_of::<P>();
    let s_bytes = cols * std::mem::size_of::<P::State>();
    let seq = |param: &mut [P], sum: &mut [P::State], base: usize, lo: usize, hi: usize| {
        let mut i = lo;
        while i < hi {
            if i + PF < hi {
                let r = (s.key(i + PF) - base) * cols;
                let pp = param.as_ptr().wrapping_add(r) as *const u8;
                let sp = sum.as_ptr().wrapping_add(r) as *const u8;
                for off in (0..p_bytes).step_by(64) {
                    prefetch(pp.wrapping_add(off));
                }
                for off in (0..s_bytes).step_by(64) {
                    prefetch(sp.wrapping_add(off));
                }
            }
            let j = s.run_end(i);
            let r = (s.key(i) - base) * cols;
            P::k_row(
                isa,
                &mut param[r..r + cols],
                &mut sum[r..r + cols],
                values,
                &s.items[i..j],
                s.pos_mask,
                h,
            );
            i = j;
        }
    };
    let min_items = ws.parallel_min().div_ceil(cols).max(1);
    split_runs(&s, 0, s.len(), param, sum, 0, cols, min_items, &seq);
}
