//! Execution of validated steps: chunking for rayon, runs of equal indices,
//! prefetching. Everything here runs after validation and cannot fail.

use super::element::AdagradElement;
use super::validate::Hyper;
use super::workspace::{pos_bits, GroupInfo, Grouped, Sorted, Workspace};
use crate::cpu::adagrad::{prefetch, GroupedRows, Hp};
use crate::cpu::arch::portable::adagrad::update_at;
use crate::cpu::Isa;
use crate::element::Element;
use crate::par;
use std::cell::RefCell;

thread_local! {
    static WS: RefCell<Workspace> = RefCell::new(Workspace::new());
}

/// The duplicate table of the grouped sparse step: one slot per key of a
/// bucket, `slot[k] = gen << 32 | j` when key `k` of the current bucket is
/// the `j`-th unique key seen (`ukey[j]`), its running sum in `usum[j]` (as
/// `f64`: exact for `f32` and `f64` state values; every sum is done in the
/// state type).
#[derive(Default)]
struct DupTable {
    slot: Vec<u64>,
    ukey: Vec<u32>,
    usum: Vec<f64>,
    gen: u32,
}

impl DupTable {
    fn ensure(&mut self, size: usize) {
        if self.slot.len() < size {
            self.slot.resize(size, 0);
        }
    }

    /// A generation no slot holds (slots start at generation 0).
    fn next_gen(&mut self) -> u64 {
        if self.gen == u32::MAX {
            self.slot.fill(0);
            self.gen = 0;
        }
        self.gen += 1;
        self.gen as u64
    }
}

thread_local! {
    static DUP: RefCell<DupTable> = RefCell::new(DupTable::default());
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
    work >= 2 * min && par::threads() > 1
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
        par::chunks2(p, ch, s, ch, &|t, p, s| {
            P::k_dense(isa, p, s, &g[t * ch..t * ch + p.len()], h)
        });
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
        par::chunks2(p, ch, s, ch, &|t, p, s| {
            let (g, w) = (&g[t * ch..t * ch + p.len()], &words[t * (ch / 64)..]);
            P::k_masked(isa, p, s, g, &w[..p.len().div_ceil(64).min(w.len())], h)
        });
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
    if hi - lo < 2 * min_items || par::threads() == 1 {
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
    par::join(
        &mut || split_runs(s, lo, mid, pl, sl, base, stride, min_items, f),
        &mut || split_runs(s, mid, hi, pr, sr, split, stride, min_items, f),
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

/// Whether grouped items carry the gradient value itself (its `f32` bits)
/// instead of its position: when the state type is `f32`, the conversion
/// `P -> f32 -> bits -> f32` is exact.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
fn packs_values<P: AdagradElement>() -> bool {
    std::mem::size_of::<P::State>() == 4
}

/// Groups the `values.len()` gradient entries by their `keys` (`< bound`,
/// one per value, with a flag for an invalid entry) for [`coalesced`] (see [`Workspace::group`]: the keys may
/// be invalid, the caller validates them in the same pass). `None`: grouping
/// does not apply, [`coalesced`] sorts instead.
pub(crate) fn group<P: AdagradElement>(
    ws: &mut Workspace,
    bound: usize,
    keys: impl Iterator<Item = (usize, bool)>,
    values: &[P],
) -> Option<GroupInfo> {
    let n = values.len();
    if packs_values::<P>() {
        let e = keys
            .zip(values)
            .map(|((k, bad), v)| (k, v.to_state().to_f32().to_bits() as u64, bad));
        ws.group(n, bound, e, 32)
    } else {
        let e = keys.zip(0..n as u64).map(|((k, bad), p)| (k, p, bad));
        ws.group(n, bound, e, pos_bits(n))
    }
}

/// Element-sparse step after validation: the update once per unique key
/// (`< param.len()`), duplicates summed in order of appearance, on the
/// entries grouped by [`group`] or, when `grouped` is `None`, sorted here by
/// `key`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn coalesced<P: AdagradElement>(
    isa: Isa,
    ws: &mut Workspace,
    grouped: Option<GroupInfo>,
    param: &mut [P],
    sum: &mut [P::State],
    values: &[P],
    key: impl Fn(usize) -> usize,
    h: &Hp<P::State>,
) {
    match grouped {
        Some(info) => sparse_grouped(isa, ws, ws.grouped(info), param, sum, values, h),
        None => {
            let mode = ws.sort(values.len(), param.len(), key);
            sparse(ws, ws.sorted(mode), param, sum, values, h);
        }
    }
}

/// Element-sparse step body on grouped entries: per bucket, the duplicates
/// are summed in order of appearance (state type) in a direct-addressed
/// table, then each unique entry is updated once, with the parameter and
/// accumulator lines prefetched `PF` entries ahead. Buckets are disjoint key
/// ranges, so they split in parallel.
pub(crate) fn sparse_grouped<P: AdagradElement>(
    isa: Isa,
    ws: &Workspace,
    g: Grouped<'_>,
    param: &mut [P],
    sum: &mut [P::State],
    values: &[P],
    h: &Hp<P::State>,
) {
    // Entries ahead to prefetch: the updates are bound by memory-level
    // parallelism (two random lines per key), ~2-3 us of work ahead.
    const PF: usize = 96;
    let isa = isa.clamp_available();
    let seq = |param: &mut [P], sum: &mut [P::State], base: usize, b_lo: usize, b_hi: usize| {
        DUP.with(|t| match t.try_borrow_mut() {
            Ok(mut t) => grouped_run(isa, &mut t, &g, b_lo, b_hi, param, sum, base, values, h, PF),
            Err(_) => grouped_run(
                isa,
                &mut DupTable::default(),
                &g,
                b_lo,
                b_hi,
                param,
                sum,
                base,
                values,
                h,
                PF,
            ),
        })
    };
    split_buckets(&g, 0, g.buckets(), param, sum, 0, ws.parallel_min(), &seq);
}

/// Splits the buckets `b_lo..b_hi` near the middle entry, and the parameter
/// (keys from `base`) with them, recursing in parallel while each half keeps
/// at least `min_items` entries.
#[allow(clippy::too_many_arguments)]
fn split_buckets<P, S, F>(
    g: &Grouped<'_>,
    b_lo: usize,
    b_hi: usize,
    param: &mut [P],
    sum: &mut [S],
    base: usize,
    min_items: usize,
    f: &F,
) where
    P: Send,
    S: Send,
    F: Fn(&mut [P], &mut [S], usize, usize, usize) + Sync,
{
    let (lo, hi) = (g.starts[b_lo], g.starts[b_hi]);
    if hi - lo < 2 * min_items || b_hi - b_lo < 2 || par::threads() == 1 {
        return f(param, sum, base, b_lo, b_hi);
    }
    let mid_item = lo + (hi - lo) / 2;
    // first bucket starting at or after the middle entry, inside (b_lo, b_hi)
    let mid =
        (b_lo + g.starts[b_lo..b_hi].partition_point(|&s| s < mid_item)).clamp(b_lo + 1, b_hi - 1);
    let split = mid << g.lo_bits;
    let at = (split - base).min(param.len());
    let (pl, pr) = param.split_at_mut(at);
    let (sl, sr) = sum.split_at_mut(at);
    par::join(
        &mut || split_buckets(g, b_lo, mid, pl, sl, base, min_items, f),
        &mut || split_buckets(g, mid, b_hi, pr, sr, split, min_items, f),
    );
}

/// The sequential body of [`sparse_grouped`] on buckets `b_lo..b_hi`;
/// `param`, `sum` start at key `base`.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn grouped_run<P: AdagradElement>(
    isa: Isa,
    t: &mut DupTable,
    g: &Grouped<'_>,
    b_lo: usize,
    b_hi: usize,
    param: &mut [P],
    sum: &mut [P::State],
    base: usize,
    values: &[P],
    h: &Hp<P::State>,
    pf: usize,
) {
    let size = 1usize << g.lo_bits;
    t.ensure(size);
    let (lb, lm) = (g.low_bits, g.low_mask);
    let hi_item = g.starts[b_hi];
    let items = &g.items[..hi_item];
    let (pp, sp) = (param.as_ptr(), sum.as_ptr());
    for b in b_lo..b_hi {
        let (s0, s1) = (g.starts[b], g.starts[b + 1]);
        if s0 == s1 {
            continue;
        }
        if t.ukey.len() < s1 - s0 {
            t.ukey.resize(s1 - s0, 0);
            t.usum.resize(s1 - s0, 0.0);
        }
        let gen = t.next_gen();
        let slot = &mut t.slot[..size];
        let (ukey, usum) = (&mut t.ukey[..s1 - s0], &mut t.usum[..s1 - s0]);
        let kb = b << g.lo_bits;
        // Pass 1: the unique keys in order of first appearance, each with its
        // duplicates summed in order of appearance; prefetch the parameter
        // and accumulator lines `pf` entries ahead.
        let mut m = 0usize;
        for e in s0..s1 {
            if e + pf < hi_item {
                let k = (items[e + pf] >> lb) as usize - base;
                prefetch(pp.wrapping_add(k));
                prefetch(sp.wrapping_add(k));
            }
            let it = items[e];
            let kl = (it >> lb) as usize - kb;
            let v = if packs_values::<P>() {
                <P::State as Element>::from_f32(f32::from_bits((it & lm) as u32))
            } else {
                values[(it & lm) as usize].to_state()
            };
            let sl = slot[kl];
            if sl >> 32 != gen {
                slot[kl] = (gen << 32) | m as u64;
                ukey[m] = kl as u32;
                usum[m] = v.to_f64();
                m += 1;
            } else {
                let j = sl as u32 as usize;
                usum[j] = (<P::State as Element>::from_f64(usum[j]) + v).to_f64();
            }
        }
        // Pass 2: one update per unique key. Where the parameter is its own
        // state type (f32, f64), chunks of entries are gathered into small
        // buffers and updated by the ISA's dense kernel (the same operations
        // lane by lane as `update_at`, so the same bits), which takes the
        // square roots and divisions out of the scalar latency chain.
        if std::mem::size_of::<P>() == std::mem::size_of::<P::State>() {
            const CH: usize = 64;
            let zp = P::from_f64(0.0);
            let mut pb = [zp; CH];
            let mut gb = [zp; CH];
            let mut sb = [<P::State as Element>::from_f64(0.0); CH];
            for (kc, gc) in ukey[..m].chunks(CH).zip(usum[..m].chunks(CH)) {
                let c = kc.len();
                for l in 0..c {
                    let i = kb + kc[l] as usize - base;
                    pb[l] = param[i];
                    sb[l] = sum[i];
                    gb[l] = P::from_state(<P::State as Element>::from_f64(gc[l]));
                }
                P::k_dense(isa, &mut pb[..c], &mut sb[..c], &gb[..c], h);
                for l in 0..c {
                    let i = kb + kc[l] as usize - base;
                    param[i] = pb[l];
                    sum[i] = sb[l];
                }
            }
        } else {
            for (&kl, &gs) in ukey[..m].iter().zip(&usum[..m]) {
                let i = kb + kl as usize - base;
                update_at(
                    &mut param[i],
                    &mut sum[i],
                    <P::State as Element>::from_f64(gs),
                    h,
                );
            }
        }
    }
}

/// Row-sparse step body: `s` sorts the gradient rows by parameter row; each
/// run of equal rows is summed in order of appearance and updated by the
/// row kernel of `isa` (the loop over runs and the prefetching run inside
/// the ISA's kernel, one call per task).
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
    // Entries ahead to prefetch (parameter and state rows): random rows are
    // latency-bound, so several must be in flight.
    const PF: usize = 8;
    let isa = isa.clamp_available();
    let seq = |param: &mut [P], sum: &mut [P::State], base: usize, lo: usize, hi: usize| {
        match s.key_shift() {
            Some(key_shift) => P::k_rows(
                isa,
                param,
                sum,
                &GroupedRows {
                    cols,
                    base,
                    values,
                    items: &s.items[lo..hi],
                    key_shift,
                    pos_mask: s.pos_mask,
                    h: *h,
                    pf: PF,
                },
            ),
            None => {
                // Keys apart from the items (comparison-sort fallback): one
                // run at a time, each through the driver with key 0.
                let mut i = lo;
                while i < hi {
                    let j = s.run_end(i);
                    let r = (s.key(i) - base) * cols;
                    P::k_rows(
                        isa,
                        &mut param[r..r + cols],
                        &mut sum[r..r + cols],
                        &GroupedRows {
                            cols,
                            base: 0,
                            values,
                            items: &s.items[i..j],
                            key_shift: 63,
                            pos_mask: s.pos_mask,
                            h: *h,
                            pf: 0,
                        },
                    );
                    i = j;
                }
            }
        }
    };
    let min_items = ws.parallel_min().div_ceil(cols).max(1);
    split_runs(&s, 0, s.len(), param, sum, 0, cols, min_items, &seq);
}
