//! The Adagrad kernels, written once over [`Vreg`]: dense, masked and one
//! row of a row-sparse gradient. Each lane runs exactly the portable
//! element update (`portable::adagrad::update`): xor of the sign bit for
//! `maximize`, then separate `mul` and `add` (never FMA), `add`, `sqrt`,
//! `add`, `mul`, `div`, `sub` — the same IEEE operations in the same order,
//! hence the same bits on every room. Tails load and store only their `k`
//! elements (`Vreg::load_part`), computed in full registers.

use super::Vreg;
use crate::cpu::arch::portable::adagrad::Hp;

/// The step's constants in registers.
#[derive(Clone, Copy)]
pub struct Consts<V> {
    clr: V,
    eps: V,
    wd: V,
    maximize: bool,
    decay: bool,
}

/// Broadcasts `h`.
///
/// # Safety
/// Room features (see [`Vreg`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn consts<V: Vreg>(h: &Hp<V::T>) -> Consts<V> {
    Consts {
        clr: V::splat(h.clr),
        eps: V::splat(h.eps),
        wd: V::splat(h.wd),
        maximize: h.maximize,
        decay: h.decay,
    }
}

/// One register of the element update: returns `(p, s)`.
///
/// # Safety
/// Room features (see [`Vreg`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn update<V: Vreg>(p: V, g: V, s: V, c: &Consts<V>) -> (V, V) {
    let g = if c.maximize { g.neg() } else { g };
    let g = if c.decay { g.add(c.wd.mul(p)) } else { g };
    let s = s.add(g.mul(g));
    let d = s.sqrt().add(c.eps);
    (p.sub(c.clr.mul(g).div(d)), s)
}

/// Dense update of `p`, `s` by `g`.
///
/// # Safety
/// Room features; `s.len()`, `g.len()` `>= p.len()`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn dense<V: Vreg>(p: &mut [V::T], s: &mut [V::T], g: &[V::T], h: &Hp<V::T>) {
    let n = p.len();
    debug_assert!(s.len() >= n && g.len() >= n);
    let c = consts::<V>(h);
    let (pp, sp, gp) = (p.as_mut_ptr(), s.as_mut_ptr(), g.as_ptr());
    let mut i = 0;
    while i + V::W <= n {
        // SAFETY: `i + W <= n`, inside all three slices.
        let (np, ns) = update(
            V::load(pp.add(i)),
            V::load(gp.add(i)),
            V::load(sp.add(i)),
            &c,
        );
        np.store(pp.add(i));
        ns.store(sp.add(i));
        i += V::W;
    }
    if i < n {
        let k = n - i;
        // SAFETY: `k` elements from `i` are inside all three slices.
        let (np, ns) = update(
            V::load_part(pp.add(i), k),
            V::load_part(gp.add(i), k),
            V::load_part(sp.add(i), k),
            &c,
        );
        np.store_part(pp.add(i), k);
        ns.store_part(sp.add(i), k);
    }
}

/// Masked update: element `i < p.len()` is updated iff bit `i` of `words`
/// is set. Masked-out gradient lanes are zeroed before any arithmetic;
/// masked-out parameter and accumulator lanes get their old values stored
/// back (no branch on the bits inside a word: mispredicted at high density).
///
/// # Safety
/// Room features; `s.len()`, `g.len()` `>= p.len()`; `words.len() * 64 >= p.len()`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn masked<V: Vreg>(
    p: &mut [V::T],
    s: &mut [V::T],
    g: &[V::T],
    words: &[u64],
    h: &Hp<V::T>,
) {
    let n = p.len();
    debug_assert!(s.len() >= n && g.len() >= n && words.len() * 64 >= n);
    let c = consts::<V>(h);
    let (pp, sp, gp) = (p.as_mut_ptr(), s.as_mut_ptr(), g.as_ptr());
    let lanes: u64 = if V::W == 64 {
        u64::MAX
    } else {
        (1u64 << V::W) - 1
    };
    let full_words = n / 64;
    for (w, &word) in words[..full_words].iter().enumerate() {
        if word == 0 {
            continue;
        }
        let base = w * 64;
        let mut j = 0;
        while j < 64 {
            let i = base + j;
            let m = V::mask((word >> j) & lanes);
            // SAFETY: `i + W <= base + 64 <= n`, inside all three slices.
            let (pv, sv) = (V::load(pp.add(i)), V::load(sp.add(i)));
            let gv = V::zero_unless(m, V::load(gp.add(i)));
            let (np, ns) = update(pv, gv, sv, &c);
            V::blend(m, pv, np).store(pp.add(i));
            V::blend(m, sv, ns).store(sp.add(i));
            j += V::W;
        }
    }
    let base = full_words * 64;
    if base < n {
        let word = words[full_words];
        let mut j = 0;
        while base + j < n {
            let i = base + j;
            let k = (n - i).min(V::W);
            let valid = if k == 64 { u64::MAX } else { (1u64 << k) - 1 };
            let bits = (word >> j) & valid;
            j += V::W;
            if bits == 0 {
                continue;
            }
            let m = V::mask(bits);
            // SAFETY: `k` elements from `i` are inside all three slices; a
            // full register when `k == W`.
            let (pv, gv, sv) = if k == V::W {
                (V::load(pp.add(i)), V::load(gp.add(i)), V::load(sp.add(i)))
            } else {
                (
                    V::load_part(pp.add(i), k),
                    V::load_part(gp.add(i), k),
                    V::load_part(sp.add(i), k),
                )
            };
            let (np, ns) = update(pv, V::zero_unless(m, gv), sv, &c);
            let (np, ns) = (V::blend(m, pv, np), V::blend(m, sv, ns));
            if k == V::W {
                np.store(pp.add(i));
                ns.store(sp.add(i));
            } else {
                np.store_part(pp.add(i), k);
                ns.store_part(sp.add(i), k);
            }
        }
    }
}

/// One row of a row-sparse gradient: `g = sum of values rows
/// (items[k] & pos_mask)` in order, then the update of `p`, `s`
/// (`cols = p.len()` long).
///
/// # Safety
/// Room features; `items` non-empty; `s.len() >= p.len()`; every
/// `((items[k] & pos_mask) + 1) * p.len() <= values.len()`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn row<V: Vreg>(
    p: &mut [V::T],
    s: &mut [V::T],
    values: &[V::T],
    items: &[u64],
    pos_mask: u64,
    h: &Hp<V::T>,
) {
    let cols = p.len();
    debug_assert!(s.len() >= cols && !items.is_empty());
    debug_assert!(items
        .iter()
        .all(|&it| ((it & pos_mask) as usize + 1) * cols <= values.len()));
    let c = consts::<V>(h);
    let (pp, sp, vp) = (p.as_mut_ptr(), s.as_mut_ptr(), values.as_ptr());
    let first = (items[0] & pos_mask) as usize * cols;
    let mut j = 0;
    while j + V::W <= cols {
        // SAFETY: lanes `j .. j + W <= cols` of the row and of each values
        // row, inside the slices by the caller's contract.
        let mut g = V::load(vp.add(first + j));
        for &it in &items[1..] {
            g = g.add(V::load(vp.add((it & pos_mask) as usize * cols + j)));
        }
        let (np, ns) = update(V::load(pp.add(j)), g, V::load(sp.add(j)), &c);
        np.store(pp.add(j));
        ns.store(sp.add(j));
        j += V::W;
    }
    if j < cols {
        let k = cols - j;
        // SAFETY: as above, `k` lanes.
        let mut g = V::load_part(vp.add(first + j), k);
        for &it in &items[1..] {
            g = g.add(V::load_part(vp.add((it & pos_mask) as usize * cols + j), k));
        }
        let (np, ns) = update(
            V::load_part(pp.add(j), k),
            g,
            V::load_part(sp.add(j), k),
            &c,
        );
        np.store_part(pp.add(j), k);
        ns.store_part(sp.add(j), k);
    }
}

/// Generates a room's row-sparse Adagrad step `$rows` for element type `$t`
/// from the room's one-row update `$row`, under the room's attributes
/// (`#[target_feature]`): the shared driver
/// (`portable::adagrad::rows_driver`) inlined into the ISA function, with
/// the gradient rows prefetched a short distance ahead (they come from
/// cache).
macro_rules! adagrad_rows_entry {
    ($(#[$attr:meta])* $t:ty, $rows:ident, $row:ident) => {
        /// A row-sparse step over sorted items (see `GroupedRows`): the
        /// shared driver (`portable::adagrad::rows_driver`) with this room's
        /// row update, compiled for this ISA.
        ///
        /// # Safety
        /// The CPU must support the ISA; `sum.len() >= param.len()`;
        /// `g.cols > 0`, `g.key_shift < 64`; every key
        /// `g.items[k] >> g.key_shift` in `g.base .. g.base + param.len() /
        /// g.cols`; every
        /// `((g.items[k] & g.pos_mask) + 1) * g.cols <= g.values.len()`.
        $(#[$attr])*
        pub unsafe fn $rows(
            param: &mut [$t],
            sum: &mut [$t],
            g: &$crate::cpu::arch::portable::adagrad::GroupedRows<'_, $t>,
        ) {
            let $crate::cpu::arch::portable::adagrad::GroupedRows {
                cols,
                values,
                pos_mask,
                h,
                ..
            } = *g;
            $crate::cpu::arch::portable::adagrad::rows_driver(
                param,
                sum,
                g,
                // gradient rows: a short distance (they come from cache)
                2,
                |it| {
                    $crate::cpu::adagrad::prefetch_bytes(
                        values.as_ptr().wrapping_add((it & pos_mask) as usize * cols),
                        cols * core::mem::size_of::<$t>(),
                    )
                },
                // SAFETY: the row slices are `cols` long; every position is
                // in range by the caller's contract.
                |p, s, it| unsafe { $row(p, s, values, it, pos_mask, &h) },
            );
        }
    };
}
pub(crate) use adagrad_rows_entry;

/// Generates a room's Adagrad entry points `dense_f32`, `masked_f32`,
/// `rows_f32` and the `f64` ones from its lane types `$v32`, `$v64`, under
/// the room's attributes (`#[target_feature]`).
macro_rules! adagrad_entries {
    ($(#[$attr:meta])* $v32:ty, $v64:ty) => {
        $crate::cpu::arch::generic::adagrad::adagrad_entries!(@one $(#[$attr])* f32, $v32, dense_f32, masked_f32, row_f32, rows_f32);
        $crate::cpu::arch::generic::adagrad::adagrad_entries!(@one $(#[$attr])* f64, $v64, dense_f64, masked_f64, row_f64, rows_f64);
    };
    (@one $(#[$attr:meta])* $t:ty, $v:ty, $dense:ident, $masked:ident, $row:ident, $rows:ident) => {
        /// Dense update of `p`, `s` by `g` (the generic body, this room's lanes).
        ///
        /// # Safety
        /// The room's CPU features; `s.len()`, `g.len()` `>= p.len()`.
        $(#[$attr])*
        pub unsafe fn $dense(
            p: &mut [$t],
            s: &mut [$t],
            g: &[$t],
            h: &$crate::cpu::arch::portable::adagrad::Hp<$t>,
        ) {
            $crate::cpu::arch::generic::adagrad::dense::<$v>(p, s, g, h)
        }

        /// Masked update (the generic body, this room's lanes).
        ///
        /// # Safety
        /// The room's CPU features; `s.len()`, `g.len()` `>= p.len()`;
        /// `words.len() * 64 >= p.len()`.
        $(#[$attr])*
        pub unsafe fn $masked(
            p: &mut [$t],
            s: &mut [$t],
            g: &[$t],
            words: &[u64],
            h: &$crate::cpu::arch::portable::adagrad::Hp<$t>,
        ) {
            $crate::cpu::arch::generic::adagrad::masked::<$v>(p, s, g, words, h)
        }

        /// One row of a row-sparse gradient (the generic body).
        ///
        /// # Safety
        /// As `generic::adagrad::row`, and the room's CPU features.
        $(#[$attr])*
        #[inline]
        unsafe fn $row(
            p: &mut [$t],
            s: &mut [$t],
            values: &[$t],
            items: &[u64],
            pos_mask: u64,
            h: &$crate::cpu::arch::portable::adagrad::Hp<$t>,
        ) {
            $crate::cpu::arch::generic::adagrad::row::<$v>(p, s, values, items, pos_mask, h)
        }

        $crate::cpu::arch::generic::adagrad::adagrad_rows_entry!(
            $(#[$attr])*
            $t,
            $rows,
            $row
        );
    };
}
pub(crate) use adagrad_entries;
