//! `portable` Adagrad kernels: plain Rust (auto-vectorized where LLVM can),
//! generic over the parameter type, and the scalar element update that every
//! other room uses for its tails.
//!
//! The element update is, in the state type `S` and in this order, with no
//! FMA (Rust never contracts `a * b + c`):
//! `g = maximize ? -g : g; g = decay ? g + wd * p : g; s = s + g * g;
//! p = p - (clr * g) / (sqrt(s) + eps)`.

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

/// One element: returns `(new_param, new_sum)`.
#[inline(always)]
pub fn update<S: Float>(p: S, g: S, s: S, h: &Hp<S>) -> (S, S) {
    let g = if h.maximize { -g } else { g };
    let g = if h.decay { g + h.wd * p } else { g };
    let s = s + g * g;
    (p - (h.clr * g) / (s.sqrt() + h.eps), s)
}

/// Applies [`update`] to `p[i]`, `s[i]` with gradient `g` (state type).
#[inline(always)]
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
