//! `portable` Adagrad kernels: plain Rust (auto-vectorized where LLVM can),
//! generic over the parameter type, and the scalar element update that every
//! other room uses for its tails.
//!
//! The element update is, in the state type `S` and in this order, with no
//! FMA (Rust never contracts `a * b + c`):
//! `g = maximize ? -g : g; g = decay ? g + wd * p : g; s = s + g * g;
//! p = p - (clr * g) / (sqrt(s) + eps)`.

use crate::cpu::adagrad::prefetch_bytes;
use crate::element::Float;
use crate::optim::AdagradElement;

/// Hyper-parameters of one step, rounded to the state type `S`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hp<S> {
    /// `lr / (1 + (step - 1) * lr_decay)`, rounded to `S`.
    pub clr: S,
    /// `eps`.
    pub eps: S,
    /// `weight_decay`.
    pub wd: S,
    /// Negate the gradient first.
    pub maximize: bool,
    /// `weight_decay != 0` (PyTorch skips the add when it is 0).
    pub decay: bool,
}

/// The arguments of a row-sparse step over grouped items, apart from the
/// parameter and accumulator it updates (`param`, `sum`: `cols` wide, rows
/// `base ..`).
///
/// `items` are sorted by key (`item >> key_shift`), equal keys in order of
/// appearance; each run of equal keys updates row `key - base` with the
/// sum, in order, of the `values` rows `item & pos_mask` (`values` is
/// `n x cols`). The rows of the entries up to `pf` ahead are prefetched.
#[derive(Debug, Clone, Copy)]
pub struct GroupedRows<'a, P: AdagradElement> {
    /// Row width of `param`, `sum` and `values`.
    pub cols: usize,
    /// Key of the first row of `param` and `sum`.
    pub base: usize,
    /// Gradient rows (`n x cols`).
    pub values: &'a [P],
    /// Sorted items: key in the high bits, `values` row in `pos_mask`.
    pub items: &'a [u64],
    /// `item >> key_shift` is the key (`< 64`).
    pub key_shift: u32,
    /// `item & pos_mask` is the `values` row.
    pub pos_mask: u64,
    /// Hyper-parameters of the step (a copy: a local in the kernel, so
    /// that LLVM keeps them in registers across the row stores).
    pub h: Hp<P::State>,
    /// Entries ahead whose parameter and accumulator rows are prefetched.
    pub pf: usize,
}

/// One element: returns `(new_param, new_sum)`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn update<S: Float>(p: S, g: S, s: S, h: &Hp<S>) -> (S, S) {
    let g = if h.maximize { -g } else { g };
    let g = if h.decay { g + h.wd * p } else { g };
    let s = s + g * g;
    (p - (h.clr * g) / (s.sqrt() + h.eps), s)
}

/// Applies [`update`] to `p[i]`, `s[i]` with gradient `g` (state type).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn update_at<P: AdagradElement>(p: &mut P, s: &mut P::State, g: P::State, h: &Hp<P::State>) {
    let (np, ns) = update(p.to_state(), g, *s, h);
    *p = P::from_state(np);
    *s = ns;
}

/// Dense: every element. `p`, `s`, `g` have the same length.
pub fn dense<P: AdagradElement>(p: &mut [P], s: &mut [P::State], g: &[P], h: &Hp<P::State>) {
    for ((p, s), g) in p.iter_mut().zip(s.iter_mut()).zip(g) {
        update_at(p, s, g.to_state(), h);
    }
}

/// Masked: element `i` is updated iff bit `i` of `words` is set
/// (`words.len() * 64 >= p.len()`). Masked-out gradient values are never
/// read into arithmetic.
pub fn masked<P: AdagradElement>(
    p: &mut [P],
    s: &mut [P::State],
    g: &[P],
    words: &[u64],
    h: &Hp<P::State>,
) {
    for (w, &word) in words.iter().enumerate() {
        let start = w * 64;
        if start >= p.len() {
            break;
        }
        let end = (start + 64).min(p.len());
        if word == u64::MAX && end - start == 64 {
            dense(&mut p[start..end], &mut s[start..end], &g[start..end], h);
            continue;
        }
        let mut bits = word;
        while bits != 0 {
            let i = start + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if i < end {
                update_at(&mut p[i], &mut s[i], g[i].to_state(), h);
            }
        }
    }
}

/// One row of a row-sparse gradient: the gradient of this row is the sum, in
/// the order given, of the rows `items[k] & pos_mask` of `values`
/// (`values` is `n x cols`). `p` and `s` are the row (`cols` long).
pub fn row<P: AdagradElement>(
    p: &mut [P],
    s: &mut [P::State],
    values: &[P],
    items: &[u64],
    pos_mask: u64,
    h: &Hp<P::State>,
) {
    let cols = p.len();
    let first = (items[0] & pos_mask) as usize * cols;
    for c in 0..cols {
        let mut g = values[first + c].to_state();
        for &it in &items[1..] {
            g += values[(it & pos_mask) as usize * cols + c].to_state();
        }
        update_at(&mut p[c], &mut s[c], g, h);
    }
}

/// The row-sparse driver every room shares (see [`GroupedRows`]; its
/// `values`, `pos_mask` and `h` are for `row`): for each run of equal keys
/// of `g.items`, `row` updates row `key - base` of `param` and `sum` with
/// that run's items. The parameter and accumulator rows of the entries up to
/// `g.pf` ahead of the current run are prefetched (once per run), so that
/// several random rows are in flight; `pv` is called once on each item, up to
/// `vpf` entries ahead of the current run's end (the room's gradient-row
/// prefetch).
///
/// Callers guarantee `key_shift < 64` and every key in `base .. base +
/// param.len() / cols` (the row slices are still bounds-checked).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn rows_driver<P: AdagradElement>(
    param: &mut [P],
    sum: &mut [P::State],
    g: &GroupedRows<'_, P>,
    vpf: usize,
    pv: impl Fn(u64),
    mut row: impl FnMut(&mut [P], &mut [P::State], &[u64]),
) {
    let GroupedRows {
        cols,
        base,
        items,
        key_shift,
        pf,
        ..
    } = *g;
    let n = items.len();
    let mut vpc = 0;
    let key = |i: usize| (items[i] >> key_shift) as usize;
    let p_bytes = cols * core::mem::size_of::<P>();
    let s_bytes = cols * core::mem::size_of::<P::State>();
    let mut i = 0;
    // Every entry below `pfc` has had its rows prefetched.
    let mut pfc = 0;
    let mut last = usize::MAX;
    while i < n {
        let k = key(i);
        let mut j = i + 1;
        while j < n && key(j) == k {
            j += 1;
        }
        let ahead = (j + pf).min(n);
        while pfc < ahead {
            let kk = key(pfc);
            if kk != last {
                last = kk;
                let r = (kk - base) * cols;
                prefetch_bytes(param.as_ptr().wrapping_add(r), p_bytes);
                prefetch_bytes(sum.as_ptr().wrapping_add(r), s_bytes);
            }
            pfc += 1;
        }
        let vahead = (j + vpf).min(n);
        while vpc < vahead {
            pv(items[vpc]);
            vpc += 1;
        }
        let r = (k - base) * cols;
        row(&mut param[r..r + cols], &mut sum[r..r + cols], &items[i..j]);
        i = j;
    }
}

/// A row-sparse step over sorted items (see [`GroupedRows`]) through
/// [`rows_driver`] with the portable row update.
pub fn rows<P: AdagradElement>(param: &mut [P], sum: &mut [P::State], g: &GroupedRows<'_, P>) {
    let GroupedRows {
        values,
        pos_mask,
        h,
        ..
    } = *g;
    rows_driver(
        param,
        sum,
        g,
        0,
        |_| {},
        |p, s, it| row(p, s, values, it, pos_mask, &h),
    );
}
