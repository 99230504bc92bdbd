//! Masked reductions and masked softmax on the CPU: the one dispatch place.
//!
//! Every kernel lives three times, in the rooms `arch::portable`,
//! `arch::x86_64::avx2` and `arch::x86_64::avx512` (generic bodies in
//! [`engine`]). This module is their only caller: each `*_with(isa, …)`
//! function clamps `isa` to one the machine has and `match`es on it; the
//! functions without `_with` use [`crate::cpu::isa()`].
//!
//! All sums follow the canonical order of [`crate::canonical`] (blocks of
//! 4096, 32 strided lanes, halving trees), so results are bit-identical on
//! every ISA and for every rayon thread count. Large inputs are split over
//! rayon by whole canonical blocks (whole arrays), output rows (`dim = 1`)
//! or column tiles x row blocks (`dim = 0`); partials are folded in the fixed
//! canonical tree afterwards.
//!
//! Semantics (PyTorch's `torch.masked` with docs/design.md's rules): nothing kept
//! gives `None` (whole array) or a cleared output bit (per dim).
//! `mean = sum / count`; `var`/`std` are two-pass (canonical mean, then the
//! canonical sum of squared deviations) divided by `count - correction`,
//! masked out when `count <= correction`; `norm(p)`: `p = 2` square root of
//! the sum of squares, `p = 1` sum of `|x|`, `p = ±inf` max/min `|x|`,
//! `p = 0` the number of non-zeros, other `p` `(sum |x|^p)^(1/p)`;
//! `logsumexp = m + ln(sum exp(x - m))` with `m` the max (`m` itself when it
//! is not finite); `amin`/`amax`/`argmin`/`argmax` are exact, NaN wins,
//! ties go to the first index. Half types accumulate in `f32` and round once
//! at the end. `norm` with a NaN `p` gives `None` (per dim: `Err(Param)`).
//!
//! Softmax along a row or column: `m` = max of the kept elements,
//! `s` = canonical `sum exp(x - m)`, output `exp(x - m) * (1 / s)`
//! (log-softmax: `(x - m) - ln s`); `exp`/`ln` are [`crate::math`]'s
//! deterministic `f32` functions (std for `f64`). Backward:
//! `dx = y * (g - sum(g * y))`, log-softmax `dx = g - exp(y) * sum(g)`, the
//! sums canonical over the kept elements.
//!
//! The public face of this module is [`crate::MaskedView`]'s reductions
//! and softmax ([`crate::softmax`] for the `_into` and backward forms).

pub mod engine;
pub(crate) mod widen;

use crate::canonical::{canonical_fold, BLOCK, LANES};
use crate::cpu::{arch, Isa};
use crate::element::Element;
use crate::error::{check_len, Result};
use crate::mask::Mask;
use crate::par;
use crate::view::{MaskedVec, MaskedView};
use engine::{fold_partials_in, Acc, Kind, SimdElem};
use std::any::TypeId;

/// A reduction to one value per sequence (whole array, row or column).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reduction {
    /// Sum of the kept elements.
    Sum,
    /// Sum / count.
    Mean,
    /// Product of the kept elements.
    Prod,
    /// Minimum (NaN propagates).
    Amin,
    /// Maximum (NaN propagates).
    Amax,
    /// Variance with `count - correction` in the denominator.
    Var {
        /// Bessel's correction (1 = unbiased).
        correction: usize,
    },
    /// Square root of [`Reduction::Var`].
    Std {
        /// Bessel's correction (1 = unbiased).
        correction: usize,
    },
    /// Vector `p`-norm.
    Norm {
        /// The order `p` (any real, `±inf` included).
        p: f64,
    },
    /// `ln(sum(exp(x)))`, computed stably.
    LogSumExp,
}

/// An index-valued reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgReduction {
    /// Index of the first minimum (of the first NaN if any).
    Argmin,
    /// Index of the first maximum (of the first NaN if any).
    Argmax,
}

/// Default of [`par_min_len`]: inputs at least this long are split over
/// rayon (measured with the report example: below it the fork/join costs
/// more than the second core gains).
pub const PAR_MIN_LEN: usize = 1 << 17;

static PAR_MIN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(PAR_MIN_LEN);

/// Inputs with at least this many elements are split over rayon.
#[inline]
pub fn par_min_len() -> usize {
    PAR_MIN.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets [`par_min_len`] (tests lower it to exercise the parallel paths on
/// small inputs; results never depend on it, only speed does).
pub fn set_par_min_len(n: usize) {
    PAR_MIN.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}
/// Fewest canonical blocks per rayon task for whole-array folds.
const TASK_BLOCKS: usize = 8;

/// Canonical blocks per rayon task for `nb` blocks: about four tasks per
/// thread, between [`TASK_BLOCKS`] and 64 blocks (1 MiB of `f32`). Small
/// tasks at 2^24 made two threads interleave 128 KiB pieces, and the
/// streams (and prefetches) of the two cores ran 1.2x one thread; 1 MiB
/// tasks ran 2.1x. The bits do not depend on it (partials are per block).
fn task_blocks(nb: usize) -> usize {
    (nb / (4 * par::threads().max(1))).clamp(TASK_BLOCKS, 64)
}
/// Elements per rayon task for row-wise and map kernels.
const TASK_ELEMS: usize = 1 << 15;

/// Element types the kernels are instantiated for (all four of the crate).
#[cfg(target_arch = "x86_64")]
pub trait Elem:
    SimdElem
    + arch::portable::reduce::E
    + arch::x86_64::avx2::reduce::E
    + arch::x86_64::avx512::reduce::E
{
}
/// Element types the kernels are instantiated for (all four of the crate).
#[cfg(target_arch = "aarch64")]
pub trait Elem: SimdElem + arch::portable::reduce::E + arch::aarch64::neon::reduce::E {}
/// Element types the kernels are instantiated for (all four of the crate).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub trait Elem: SimdElem + arch::portable::reduce::E {}
impl Elem for f32 {}
impl Elem for f64 {}
impl Elem for half::f16 {}
impl Elem for half::bf16 {}

/// Calls room function `$f` for `$isa` (already clamped to an available ISA).
macro_rules! room {
    ($isa:expr, $f:ident ($($a:expr),* $(,)?)) => {
        room!($isa, $f::<>($($a),*))
    };
    ($isa:expr, $f:ident :: <$($g:ty),*> ($($a:expr),* $(,)?)) => {
        match $isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` was clamped by `Isa::clamp_available`, so this CPU has
            // AVX-512F/BW/VL/DQ, AVX2, FMA, F16C and POPCNT (checked by `Isa::available`).
            Isa::Avx512 => unsafe { arch::x86_64::avx512::reduce::$f::<$($g),*>($($a),*) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` was clamped by `Isa::clamp_available`, so this CPU has
            // AVX2, FMA, F16C and POPCNT (checked by `Isa::available`).
            Isa::Avx2 => unsafe { arch::x86_64::avx2::reduce::$f::<$($g),*>($($a),*) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `isa` was clamped by `Isa::clamp_available`; NEON is part
            // of every aarch64 CPU (the base target enables it).
            Isa::Neon => unsafe { arch::aarch64::neon::reduce::$f::<$($g),*>($($a),*) },
            // SAFETY: the portable room needs no CPU feature.
            _ => unsafe { arch::portable::reduce::$f::<$($g),*>($($a),*) },
        }
    };
}

/// The mask words of elements `start .. start + len` of a sequence,
/// LSB-first from `start`, with no bit set past `len`: how an N-d view with
/// a broadcast mask hands a whole-array reduction its mask, piece by piece,
/// without expanding all of it.
pub(crate) type Expand<'f> = &'f (dyn Fn(usize, usize) -> Vec<u64> + Sync);

/// The mask bits of one sequence.
#[derive(Clone, Copy)]
enum Bits<'a> {
    /// Element `i`'s bit is bit `bit0 + i` of the words.
    Words(&'a [u64], usize),
    /// Produced piece by piece.
    Expand(Expand<'a>),
}

impl<'a> Bits<'a> {
    /// The words of elements `s .. s + len`, and the bit of element `s` in them.
    fn piece(&self, s: usize, len: usize) -> (std::borrow::Cow<'a, [u64]>, usize) {
        match *self {
            Bits::Words(w, bit0) => (std::borrow::Cow::Borrowed(w), bit0 + s),
            Bits::Expand(f) => (std::borrow::Cow::Owned(f(s, len)), 0),
        }
    }

    /// Kept elements among the first `n`.
    fn count(&self, isa: Isa, n: usize) -> usize {
        match *self {
            Bits::Words(w, bit0) => room!(isa, count_range(w, bit0, n)),
            Bits::Expand(_) => (0..n)
                .step_by(EXPAND_ELEMS)
                .map(|s| {
                    let len = EXPAND_ELEMS.min(n - s);
                    let (w, b) = self.piece(s, len);
                    room!(isa, count_range(&w, b, len))
                })
                .sum(),
        }
    }
}

/// Elements per expanded piece when counting (a multiple of [`BLOCK`]).
const EXPAND_ELEMS: usize = 1 << 20;

/// Canonical fold of one sequence `x` (its mask bits `bits`), split over
/// rayon by canonical blocks when `par` and long enough. The block
/// partials do not depend on the split, so neither do the bits.
fn fold_seq<T: Elem, K: Kind>(isa: Isa, x: &[T], bits: Bits<'_>, c: T::Acc, par: bool) -> T::Acc {
    let n = x.len();
    let par = par && n >= par_min_len() && par::threads() > 1;
    if let (false, Bits::Words(words, bit0)) = (par, bits) {
        return room!(isa, seq_fold::<T, K>(x, words, bit0, c));
    }
    let mut parts = vec![T::Acc::ZERO; n.div_ceil(BLOCK)];
    let tb = task_blocks(parts.len());
    par::chunks_if(par, &mut parts, tb, &|t, out| {
        let s = t * tb * BLOCK;
        let e = n.min(s + out.len() * BLOCK);
        let (w, b) = bits.piece(s, e - s);
        room!(isa, block_partials::<T, K>(&x[s..e], &w, b, c, out));
    });
    fold_partials_in(&mut parts, K::identity(), K::op)
}

/// The sequences a reduction runs over: the whole array, each row, or
/// each column of a row-major matrix.
#[derive(Clone, Copy)]
enum Seqs<'a, T> {
    /// One sequence: all of `x`.
    Whole(&'a [T]),
    /// `rows` sequences of `cols` contiguous elements.
    Rows(&'a [T], usize, usize),
    /// `cols` sequences of `rows` elements `cols` apart.
    Cols(&'a [T], usize, usize),
    /// One sequence, all of `x`, its mask produced piece by piece (the
    /// `words` argument of the methods is not read).
    Expanded(&'a [T], Expand<'a>),
}

impl<T: Elem> Seqs<'_, T> {
    /// The underlying elements.
    fn data(&self) -> &[T] {
        match *self {
            Seqs::Whole(x) | Seqs::Rows(x, _, _) | Seqs::Cols(x, _, _) | Seqs::Expanded(x, _) => x,
        }
    }

    fn count(&self) -> usize {
        match *self {
            Seqs::Whole(_) | Seqs::Expanded(..) => 1,
            Seqs::Rows(_, r, _) => r,
            Seqs::Cols(_, _, c) => c,
        }
    }

    /// Kept elements per sequence.
    fn counts(&self, isa: Isa, words: &[u64]) -> Vec<usize> {
        match *self {
            Seqs::Whole(x) => vec![room!(isa, count_range(words, 0, x.len()))],
            Seqs::Expanded(x, f) => vec![Bits::Expand(f).count(isa, x.len())],
            Seqs::Rows(_, r, c) => (0..r)
                .map(|i| room!(isa, count_range(words, i * c, c)))
                .collect(),
            Seqs::Cols(_, r, c) => col_counts(isa, words, r, c),
        }
    }

    /// Canonical fold `K` of every sequence, constant `c[i]` for sequence `i`.
    fn fold<K: Kind>(&self, isa: Isa, words: &[u64], c: Option<&[T::Acc]>) -> Vec<T::Acc> {
        match *self {
            Seqs::Whole(x) => {
                let c0 = c.map_or(T::Acc::ZERO, |c| c[0]);
                vec![fold_seq::<T, K>(isa, x, Bits::Words(words, 0), c0, true)]
            }
            Seqs::Expanded(x, f) => {
                let c0 = c.map_or(T::Acc::ZERO, |c| c[0]);
                vec![fold_seq::<T, K>(isa, x, Bits::Expand(f), c0, true)]
            }
            Seqs::Rows(x, rows, cols) => {
                let mut out = vec![T::Acc::ZERO; rows];
                if cols == 0 {
                    out.fill(K::identity());
                    return out;
                }
                let per = (TASK_ELEMS / cols).max(1);
                let par = rows * cols >= par_min_len() && rows > 1;
                par::chunks_if(par, &mut out, per, &|t, o| {
                    let r0 = t * per;
                    let xs = &x[r0 * cols..(r0 + o.len()) * cols];
                    let cs = c.map(|c| &c[r0..r0 + o.len()]);
                    room!(isa, rows_fold::<T, K>(xs, words, r0 * cols, cols, cs, o));
                });
                out
            }
            Seqs::Cols(x, rows, cols) => cols_fold::<T, K>(isa, x, words, rows, cols, c),
        }
    }

    /// Canonical fold with an arbitrary scalar map (rare norms), scalar code.
    fn fold_map(&self, words: &[u64], val: impl Fn(T::Acc) -> T::Acc + Sync) -> Vec<T::Acc> {
        let bit = |i: usize| (words[i / 64] >> (i % 64)) & 1 != 0;
        let add = |a: T::Acc, b: T::Acc| a.add(b);
        match *self {
            Seqs::Whole(x) => vec![canonical_fold(
                x.len(),
                T::Acc::ZERO,
                bit,
                |i| val(x[i].to_acc()),
                add,
            )],
            Seqs::Expanded(x, f) => {
                // block by block, each block's mask expanded on its own
                let parts: Vec<T::Acc> = (0..x.len())
                    .step_by(BLOCK)
                    .map(|s| {
                        let len = BLOCK.min(x.len() - s);
                        let w = f(s, len);
                        crate::canonical::block_partial(
                            len,
                            T::Acc::ZERO,
                            |k| (w[k / 64] >> (k % 64)) & 1 != 0,
                            |k| val(x[s + k].to_acc()),
                            add,
                        )
                    })
                    .collect();
                vec![crate::canonical::fold_partials(&parts, T::Acc::ZERO, add)]
            }
            Seqs::Rows(x, rows, cols) => (0..rows)
                .map(|r| {
                    canonical_fold(
                        cols,
                        T::Acc::ZERO,
                        |i| bit(r * cols + i),
                        |i| val(x[r * cols + i].to_acc()),
                        add,
                    )
                })
                .collect(),
            Seqs::Cols(x, rows, cols) => (0..cols)
                .map(|c| {
                    canonical_fold(
                        rows,
                        T::Acc::ZERO,
                        |i| bit(i * cols + c),
                        |i| val(x[i * cols + c].to_acc()),
                        add,
                    )
                })
                .collect(),
        }
    }
}

/// `LUT[b]`: byte `j` of the result is bit `j` of `b` (8 one-byte counters).
const BYTE_SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut j = 0;
        while j < 8 {
            if (b >> j) & 1 != 0 {
                t[b] |= 1u64 << (8 * j);
            }
            j += 1;
        }
        b += 1;
    }
    t
};

/// Kept elements per column of a `rows x cols` mask. AVX-512: one
/// `vpmovm2b` and a byte subtraction per mask word (see
/// `arch::x86_64::avx512::reduce::col_counts`). Otherwise each mask byte
/// adds to eight one-byte counters at once (a table lookup and one `u64`
/// add per 8 elements), flushed to wide counters every 255 rows.
fn col_counts(isa: Isa, words: &[u64], rows: usize, cols: usize) -> Vec<usize> {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        let mut out = vec![0usize; cols];
        // SAFETY: `isa` was clamped by `Isa::clamp_available`, so this CPU
        // has AVX-512F/BW.
        unsafe { arch::x86_64::avx512::reduce::col_counts(words, rows, cols, &mut out) };
        return out;
    }
    let _ = isa;
    let nb = cols.div_ceil(8);
    let mut c8 = vec![0u64; nb];
    let mut total = vec![0usize; nb * 8];
    let flush = |c8: &mut [u64], total: &mut [usize]| {
        for (i, v) in c8.iter_mut().enumerate() {
            for j in 0..8 {
                total[i * 8 + j] += ((*v >> (8 * j)) & 0xff) as usize;
            }
            *v = 0;
        }
    };
    for r in 0..rows {
        let mut c = 0;
        while c < cols {
            let k = (cols - c).min(64);
            let mut w = word_at(words, r * cols + c);
            if k < 64 {
                w &= (1u64 << k) - 1;
            }
            for (j, v) in c8[c / 8..(c + k).div_ceil(8)].iter_mut().enumerate() {
                *v += BYTE_SPREAD[((w >> (8 * j)) & 0xff) as usize];
            }
            c += 64;
        }
        if r % 255 == 254 {
            flush(&mut c8, &mut total);
        }
    }
    flush(&mut c8, &mut total);
    total.truncate(cols);
    total
}

/// 64 mask bits from bit `pos` (zero past the end).
#[inline]
fn word_at(words: &[u64], pos: usize) -> u64 {
    let w = pos / 64;
    let s = pos % 64;
    let lo = words.get(w).copied().unwrap_or(0) >> s;
    if s == 0 {
        lo
    } else {
        lo | (words.get(w + 1).copied().unwrap_or(0) << (64 - s))
    }
}

/// Dim-0 canonical fold of every column: work items are column tiles x
/// canonical row blocks (rayon), each vectorized across its columns; block
/// partials are folded per column afterwards.
fn cols_fold<T: Elem, K: Kind>(
    isa: Isa,
    x: &[T],
    words: &[u64],
    rows: usize,
    cols: usize,
    c: Option<&[T::Acc]>,
) -> Vec<T::Acc> {
    let par = rows * cols >= par_min_len();
    let tile = dim0_tile_width::<T::Acc>(rows, cols, par);
    let tiles = cols.div_ceil(tile);
    let rblocks = rows.div_ceil(BLOCK);
    let items = tiles * rblocks;
    let job = |it: usize| -> Vec<T::Acc> {
        let (t, b) = (it / rblocks, it % rblocks);
        let col0 = t * tile;
        let w = (cols - col0).min(tile);
        let row0 = b * BLOCK;
        let nr = (rows - row0).min(BLOCK);
        let cs = c.map(|c| &c[col0..col0 + w]);
        let mut out = vec![T::Acc::ZERO; w];
        room!(
            isa,
            dim0_block::<T, K>(x, words, cols, col0, w, row0, nr, cs, &mut out)
        );
        out
    };
    let parts: Vec<Vec<T::Acc>> = par::map_if(par && items > 1, items, &job);
    combine_col_parts::<T::Acc>(&parts, rows, cols, tile, K::identity(), K::op)
}

/// Column tile width of a dim-0 fold over a `rows x cols` matrix: the
/// widest tile ([`engine::tile_max`]), narrowed (to a multiple of 64, at
/// least 256) when a parallel fold on more than one thread would otherwise
/// have fewer work items than threads. The width only splits the columns into work items:
/// every column's fold is the same at any width.
fn dim0_tile_width<A>(rows: usize, cols: usize, par: bool) -> usize {
    let max = engine::tile_max::<A>();
    let threads = par::threads();
    if !par || threads <= 1 {
        return max;
    }
    let rblocks = rows.div_ceil(BLOCK).max(1);
    let want = threads.div_ceil(rblocks);
    if want <= 1 {
        return max;
    }
    (cols.div_ceil(want).div_ceil(64) * 64).clamp(256, max)
}

fn combine_col_parts<A: Acc>(
    parts: &[Vec<A>],
    rows: usize,
    cols: usize,
    tile: usize,
    identity: A,
    op: impl Fn(A, A) -> A + Copy,
) -> Vec<A> {
    let tiles = cols.div_ceil(tile);
    let rblocks = rows.div_ceil(BLOCK);
    let mut out = vec![identity; cols];
    if rblocks == 0 {
        return out;
    }
    let mut tmp = Vec::with_capacity(rblocks.next_power_of_two());
    for t in 0..tiles {
        let col0 = t * tile;
        for (j, o) in out[col0..cols.min(col0 + tile)].iter_mut().enumerate() {
            tmp.clear();
            tmp.extend((0..rblocks).map(|b| parts[t * rblocks + b][j]));
            *o = fold_partials_in(&mut tmp, identity, op);
        }
    }
    out
}

/// Every reduction over a set of sequences: `None` where nothing (or, for
/// var/std, no more than `correction`) is kept.
fn reduce_seqs<T: Elem>(
    isa: Isa,
    s: &Seqs<'_, T>,
    words: &[u64],
    op: Reduction,
) -> Vec<Option<T::Acc>> {
    use engine::{Max, MaxAbs, Min, MinAbs, Prod, Sum, SumAbs, SumExp, SumSq, SumSqDev};
    if s.data().is_empty() {
        // nothing to read: every sequence is empty (and a huge empty
        // dimension must not be walked, e.g. 0 x usize::MAX)
        return vec![None; s.count()];
    }
    let cnt = s.counts(isa, words);
    let n = s.count();
    let keep = |v: Vec<T::Acc>, min: usize| -> Vec<Option<T::Acc>> {
        v.into_iter()
            .zip(&cnt)
            .map(|(v, &k)| (k > min).then_some(v))
            .collect()
    };
    if cnt.iter().all(|&k| k == 0) {
        return vec![None; n];
    }
    match op {
        Reduction::Sum => keep(s.fold::<Sum>(isa, words, None), 0),
        Reduction::Prod => keep(s.fold::<Prod>(isa, words, None), 0),
        Reduction::Amin => keep(s.fold::<Min>(isa, words, None), 0),
        Reduction::Amax => keep(s.fold::<Max>(isa, words, None), 0),
        Reduction::Mean => {
            let sum = s.fold::<Sum>(isa, words, None);
            let m = sum
                .iter()
                .zip(&cnt)
                .map(|(&v, &k)| v.div(T::Acc::from_count(k)))
                .collect();
            keep(m, 0)
        }
        Reduction::Var { correction } | Reduction::Std { correction } => {
            let sum = s.fold::<Sum>(isa, words, None);
            let mean: Vec<T::Acc> = sum
                .iter()
                .zip(&cnt)
                .map(|(&v, &k)| {
                    if k == 0 {
                        T::Acc::ZERO
                    } else {
                        v.div(T::Acc::from_count(k))
                    }
                })
                .collect();
            let ss = s.fold::<SumSqDev>(isa, words, Some(&mean));
            let std = matches!(op, Reduction::Std { .. });
            let v = ss
                .iter()
                .zip(&cnt)
                .map(|(&q, &k)| {
                    let v = q.div(T::Acc::from_count(k.saturating_sub(correction)));
                    if std {
                        v.sqrt()
                    } else {
                        v
                    }
                })
                .collect();
            keep(v, correction)
        }
        Reduction::Norm { p } => {
            let v = if p == 2.0 {
                s.fold::<SumSq>(isa, words, None)
                    .into_iter()
                    .map(|v| v.sqrt())
                    .collect()
            } else if p == 1.0 {
                s.fold::<SumAbs>(isa, words, None)
            } else if p == f64::INFINITY {
                s.fold::<MaxAbs>(isa, words, None)
            } else if p == f64::NEG_INFINITY {
                s.fold::<MinAbs>(isa, words, None)
            } else if p == 0.0 {
                s.fold_map(words, |x| {
                    if x == T::Acc::ZERO {
                        T::Acc::ZERO
                    } else {
                        T::Acc::ONE
                    }
                })
            } else {
                let pa = acc_order::<T::Acc>(p);
                let inv = acc_order::<T::Acc>(1.0 / p);
                s.fold_map(words, |x| x.abs().powf(pa))
                    .into_iter()
                    .map(|v| v.powf(inv))
                    .collect()
            };
            keep(v, 0)
        }
        Reduction::LogSumExp => {
            let m = s.fold::<Max>(isa, words, None);
            let mc: Vec<T::Acc> = m
                .iter()
                .map(|&v| if v.is_finite() { v } else { T::Acc::ZERO })
                .collect();
            let se = s.fold::<SumExp>(isa, words, Some(&mc));
            let v = m
                .iter()
                .zip(&se)
                .map(|(&m, &e)| if m.is_finite() { m.add(e.ln()) } else { m })
                .collect();
            keep(v, 0)
        }
    }
}

/// A norm order (or its inverse) rounded to the accumulator type without
/// changing its class: a nonzero order that rounds to 0 in `f32` (then
/// `0^0 = 1` would count the kept zeros) becomes the smallest subnormal of
/// its sign, a finite one that rounds to infinity the largest finite `f32`
/// (`f64` orders are exact).
fn acc_order<A: Acc>(v: f64) -> A {
    let a = A::from_f64(v);
    if v != 0.0 && a.to_f64() == 0.0 {
        A::from_f64(v.signum() * f32::from_bits(1) as f64)
    } else if v.is_finite() && !a.is_finite() {
        A::from_f64(v.signum() * f32::MAX as f64)
    } else {
        a
    }
}

// ---------- type plumbing: `T: Element` -> one of the four concrete types ----------

/// Reinterprets `&MaskedView<T>` as `&MaskedView<U>`; `None` unless `T == U`.
fn view_as<'v, 'a, T: Element, U: Element>(
    v: &'v MaskedView<'a, T>,
) -> Option<&'v MaskedView<'a, U>> {
    if TypeId::of::<T>() == TypeId::of::<U>() {
        // SAFETY: T and U are the same type (equal TypeIds), so the layouts are identical.
        Some(unsafe { &*(v as *const MaskedView<'a, T> as *const MaskedView<'a, U>) })
    } else {
        None
    }
}

/// Reinterprets `&[T]` as `&[U]`; `None` unless `T == U`.
fn slice_as<T: Element, U: Element>(v: &[T]) -> Option<&[U]> {
    if TypeId::of::<T>() == TypeId::of::<U>() {
        // SAFETY: T and U are the same type (equal TypeIds).
        Some(unsafe { std::slice::from_raw_parts(v.as_ptr() as *const U, v.len()) })
    } else {
        None
    }
}

/// Reinterprets `&mut [T]` as `&mut [U]`; `None` unless `T == U`.
fn slice_as_mut<T: Element, U: Element>(v: &mut [T]) -> Option<&mut [U]> {
    if TypeId::of::<T>() == TypeId::of::<U>() {
        // SAFETY: T and U are the same type (equal TypeIds); the borrow is moved.
        Some(unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut U, v.len()) })
    } else {
        None
    }
}

/// Moves a value of type `A` into type `B`; both are the same type
/// (callers check the element TypeIds first).
fn same<A: 'static, B: 'static>(a: A) -> B {
    assert_eq!(TypeId::of::<A>(), TypeId::of::<B>());
    let a = std::mem::ManuallyDrop::new(a);
    // SAFETY: A and B are the same type (asserted above); `a` is not dropped.
    unsafe { std::mem::transmute_copy::<A, B>(&a) }
}

/// Runs `$body` with `$U` the concrete type equal to `$T` and `$v` its view.
macro_rules! with_elem {
    ($T:ty, $view:expr, |$v:ident : $U:ident| $body:expr) => {{
        if let Some($v) = view_as::<$T, f32>($view) {
            #[allow(dead_code)]
            type $U = f32;
            same($body)
        } else if let Some($v) = view_as::<$T, f64>($view) {
            #[allow(dead_code)]
            type $U = f64;
            same($body)
        } else if let Some($v) = view_as::<$T, half::f16>($view) {
            #[allow(dead_code)]
            type $U = half::f16;
            same($body)
        } else if let Some($v) = view_as::<$T, half::bf16>($view) {
            #[allow(dead_code)]
            type $U = half::bf16;
            same($body)
        } else {
            unreachable!("Element is sealed to f32, f64, f16, bf16")
        }
    }};
}

fn seqs_of<'a, T: Elem>(v: &MaskedView<'a, T>, dim: Option<usize>) -> Seqs<'a, T> {
    match dim {
        None => Seqs::Whole(v.data()),
        Some(_) if v.ndim() == 1 => Seqs::Rows(v.data(), 1, v.len()),
        Some(0) => Seqs::Cols(v.data(), v.rows(), v.cols()),
        Some(_) => Seqs::Rows(v.data(), v.rows(), v.cols()),
    }
}

fn to_masked_vec<T: Elem>(r: Vec<Option<T::Acc>>) -> MaskedVec<T> {
    let mask = Mask::from_fn(r.len(), |i| r[i].is_some());
    let values = r
        .into_iter()
        .map(|v| v.map_or(T::ZERO, T::from_acc))
        .collect();
    MaskedVec { values, mask }
}

// ---------- public entry points ----------

/// A whole-array reduction of `view` on the given ISA (clamped to one this
/// machine has). `None` when nothing is kept (or `count <= correction`).
pub(crate) fn reduce_with_imp<T: Element>(
    isa: Isa,
    view: &MaskedView<'_, T>,
    op: Reduction,
) -> Option<T> {
    if let Reduction::Norm { p } = op {
        if p.is_nan() {
            return None;
        }
    }
    let isa = isa.clamp_available();
    with_elem!(T, view, |v: U| {
        let s = seqs_of(v, None);
        reduce_seqs::<U>(isa, &s, v.mask().words(), op)[0].map(U::from_acc)
    })
}

/// A whole-array reduction of `x` whose mask words `ex` produces piece by
/// piece (an N-d view with a broadcast mask): the bits of the reduction of
/// `x` under the expanded mask.
pub(crate) fn reduce_expanded_imp<T: Elem>(
    isa: Isa,
    x: &[T],
    ex: Expand<'_>,
    op: Reduction,
) -> Option<T> {
    if let Reduction::Norm { p } = op {
        if p.is_nan() {
            return None;
        }
    }
    let isa = isa.clamp_available();
    reduce_seqs::<T>(isa, &Seqs::Expanded(x, ex), &[], op)[0].map(T::from_acc)
}

/// Whole-array argmin / argmax of `x` under the mask `ex` produces.
pub(crate) fn arg_expanded_imp<T: Elem>(
    isa: Isa,
    x: &[T],
    ex: Expand<'_>,
    op: ArgReduction,
) -> Option<usize> {
    let isa = isa.clamp_available();
    arg_seqs::<T>(isa, &Seqs::Expanded(x, ex), &[], op)[0]
}

/// [`reduce_with`] on [`crate::cpu::isa()`].
pub fn reduce<T: Element>(view: &MaskedView<'_, T>, op: Reduction) -> Option<T> {
    reduce_with(crate::cpu::isa(), view, op)
}

/// A reduction along `dim` (0: down the columns, one result per column;
/// 1: along the rows, one per row; a 1-D view takes `dim = 0` and gives one
/// result). Sequences with nothing kept get a cleared bit and value 0.
pub(crate) fn reduce_dim_with_imp<T: Element>(
    isa: Isa,
    view: &MaskedView<'_, T>,
    dim: usize,
    op: Reduction,
) -> Result<MaskedVec<T>> {
    if let Reduction::Norm { p } = op {
        crate::reference::reduce::check_norm_p(p)?;
    }
    view.check_dim(dim)?;
    let isa = isa.clamp_available();
    Ok(with_elem!(T, view, |v: U| {
        let s = seqs_of(v, Some(dim));
        to_masked_vec::<U>(reduce_seqs::<U>(isa, &s, v.mask().words(), op))
    }))
}

/// [`reduce_dim_with`] on [`crate::cpu::isa()`].
pub fn reduce_dim<T: Element>(
    view: &MaskedView<'_, T>,
    dim: usize,
    op: Reduction,
) -> Result<MaskedVec<T>> {
    reduce_dim_with(crate::cpu::isa(), view, dim, op)
}

/// First index of the max (`Argmax`) or min (`Argmin`) of one sequence,
/// NaN first; block partials locate the block, a scalar scan the index.
fn seq_arg<T: Elem>(
    isa: Isa,
    x: &[T],
    bits: Bits<'_>,
    op: ArgReduction,
    par: bool,
) -> Option<usize> {
    let n = x.len();
    if bits.count(isa, n) == 0 {
        return None;
    }
    let nb = n.div_ceil(BLOCK);
    let mut parts = vec![T::Acc::ZERO; nb];
    let fill = |s: usize, out: &mut [T::Acc]| {
        let e = n.min(s + out.len() * BLOCK);
        let (w, b) = bits.piece(s, e - s);
        match op {
            ArgReduction::Argmax => room!(
                isa,
                block_partials::<T, engine::Max>(&x[s..e], &w, b, T::Acc::ZERO, out)
            ),
            ArgReduction::Argmin => room!(
                isa,
                block_partials::<T, engine::Min>(&x[s..e], &w, b, T::Acc::ZERO, out)
            ),
        }
    };
    let tb = task_blocks(parts.len());
    par::chunks_if(
        par && n >= par_min_len() && par::threads() > 1,
        &mut parts,
        tb,
        &|t, out| fill(t * tb * BLOCK, out),
    );
    let mut tmp = parts.clone();
    let best = match op {
        ArgReduction::Argmax => fold_partials_in(&mut tmp, T::Acc::NEG_INF, engine::max_op),
        ArgReduction::Argmin => fold_partials_in(&mut tmp, T::Acc::INF, engine::min_op),
    };
    let hit = |v: T::Acc| v == best || (best.is_nan() && v.is_nan());
    let blk = parts.iter().position(|&p| hit(p))?;
    let s = blk * BLOCK;
    let e = n.min(s + BLOCK);
    let (w, b) = bits.piece(s, e - s);
    (s..e).find(|&i| {
        let p = b + (i - s);
        (w[p / 64] >> (p % 64)) & 1 != 0 && hit(x[i].to_acc())
    })
}

fn arg_seqs<T: Elem>(
    isa: Isa,
    s: &Seqs<'_, T>,
    words: &[u64],
    op: ArgReduction,
) -> Vec<Option<usize>> {
    if s.data().is_empty() {
        return vec![None; s.count()];
    }
    match *s {
        Seqs::Whole(x) => vec![seq_arg(isa, x, Bits::Words(words, 0), op, true)],
        Seqs::Expanded(x, f) => vec![seq_arg(isa, x, Bits::Expand(f), op, true)],
        Seqs::Rows(x, rows, cols) => {
            let f = |r: usize| {
                seq_arg(
                    isa,
                    &x[r * cols..(r + 1) * cols],
                    Bits::Words(words, r * cols),
                    op,
                    false,
                )
            };
            par::map_if(rows * cols >= par_min_len() && rows > 1, rows, &f)
        }
        Seqs::Cols(x, rows, cols) => {
            let best = match op {
                ArgReduction::Argmax => {
                    cols_fold::<T, engine::Max>(isa, x, words, rows, cols, None)
                }
                ArgReduction::Argmin => {
                    cols_fold::<T, engine::Min>(isa, x, words, rows, cols, None)
                }
            };
            let mut idx: Vec<Option<usize>> = vec![None; cols];
            let mut left = col_counts(isa, words, rows, cols)
                .iter()
                .filter(|&&k| k > 0)
                .count();
            for r in 0..rows {
                if left == 0 {
                    break;
                }
                for c in 0..cols {
                    let p = r * cols + c;
                    if idx[c].is_none() && (words[p / 64] >> (p % 64)) & 1 != 0 {
                        let v = x[p].to_acc();
                        let b = best[c];
                        if v == b || (b.is_nan() && v.is_nan()) {
                            idx[c] = Some(r);
                            left -= 1;
                        }
                    }
                }
            }
            idx
        }
    }
}

/// Index of the first min / max of the whole array (flat index), `None`
/// when nothing is kept.
pub(crate) fn arg_with_imp<T: Element>(
    isa: Isa,
    view: &MaskedView<'_, T>,
    op: ArgReduction,
) -> Option<usize> {
    let isa = isa.clamp_available();
    with_elem!(T, view, |v: U| {
        arg_seqs::<U>(isa, &seqs_of(v, None), v.mask().words(), op)[0]
    })
}

/// [`arg_with`] on [`crate::cpu::isa()`].
pub fn arg<T: Element>(view: &MaskedView<'_, T>, op: ArgReduction) -> Option<usize> {
    arg_with(crate::cpu::isa(), view, op)
}

/// Index (within the row or column) of the first min / max along `dim`.
pub(crate) fn arg_dim_with_imp<T: Element>(
    isa: Isa,
    view: &MaskedView<'_, T>,
    dim: usize,
    op: ArgReduction,
) -> Result<MaskedVec<usize>> {
    view.check_dim(dim)?;
    let isa = isa.clamp_available();
    let r: Vec<Option<usize>> = with_elem!(T, view, |v: U| {
        arg_seqs::<U>(isa, &seqs_of(v, Some(dim)), v.mask().words(), op)
    });
    let mask = Mask::from_fn(r.len(), |i| r[i].is_some());
    Ok(MaskedVec {
        values: r.into_iter().map(|v| v.unwrap_or(0)).collect(),
        mask,
    })
}

/// [`arg_dim_with`] on [`crate::cpu::isa()`].
pub fn arg_dim<T: Element>(
    view: &MaskedView<'_, T>,
    dim: usize,
    op: ArgReduction,
) -> Result<MaskedVec<usize>> {
    arg_dim_with(crate::cpu::isa(), view, dim, op)
}

/// Shape of a softmax: `(rows, cols, along_rows)`.
fn softmax_shape<T: Element>(v: &MaskedView<'_, T>, dim: usize) -> (usize, usize, bool) {
    if v.ndim() == 1 {
        (1, v.len(), true)
    } else {
        (v.rows(), v.cols(), dim == 1)
    }
}

fn softmax_imp<T: Elem>(isa: Isa, v: &MaskedView<'_, T>, dim: usize, log: bool, y: &mut [T]) {
    let (rows, cols, along_rows) = softmax_shape(v, dim);
    let x = v.data();
    let words = v.mask().words();
    if x.is_empty() {
        return;
    }
    let per = (TASK_ELEMS / cols).max(1) * cols;
    let par = x.len() >= par_min_len() && rows > 1;
    if along_rows {
        let job = |t: usize, yc: &mut [T]| {
            let s = t * per;
            room!(
                isa,
                softmax_rows::<T>(&x[s..s + yc.len()], yc, words, s, cols, log)
            );
        };
        par::chunks_if(par, y, per, &job);
    } else {
        let m = cols_fold::<T, engine::Max>(isa, x, words, rows, cols, None);
        let mc: Vec<T::Acc> = m
            .iter()
            .map(|&v| if v.is_finite() { v } else { T::Acc::ZERO })
            .collect();
        let s = cols_fold::<T, engine::SumExp>(isa, x, words, rows, cols, Some(&mc));
        let (shift, scale): (Vec<T::Acc>, Vec<T::Acc>) = m
            .iter()
            .zip(&s)
            .map(|(&m, &s)| engine::softmax_consts(m, s, log))
            .unzip();
        let job = |t: usize, yc: &mut [T]| {
            let s0 = t * per;
            room!(
                isa,
                softmax_cols_map::<T>(
                    &x[s0..s0 + yc.len()],
                    yc,
                    words,
                    s0,
                    cols,
                    &shift,
                    &scale,
                    log
                )
            );
        };
        par::chunks_if(par, y, per, &job);
    }
}

/// Masked softmax (`log = false`) or log-softmax (`log = true`) along `dim`
/// (1-D views: `dim = 0`). Masked-out outputs are 0; the output mask is the
/// input mask (a fully masked row keeps no bit). A kept `±inf` or NaN makes
/// its whole row NaN, as in PyTorch.
pub fn softmax_with<T: Element>(
    isa: Isa,
    view: &MaskedView<'_, T>,
    dim: usize,
    log: bool,
) -> Result<MaskedVec<T>> {
    let mut values = crate::buf::zeroed::<T>(view.len());
    softmax_into_with(isa, view, dim, log, &mut values)?;
    Ok(MaskedVec {
        values,
        mask: view.mask().clone(),
    })
}

/// [`softmax_with`] writing into `out` (`view.len()` elements; every
/// element is written, masked-out ones with 0). The output mask is
/// `view.mask()`. Saves the allocation (and its page faults) of
/// [`softmax_with`] when called repeatedly.
pub(crate) fn softmax_into_with_imp<T: Element>(
    isa: Isa,
    view: &MaskedView<'_, T>,
    dim: usize,
    log: bool,
    out: &mut [T],
) -> Result<()> {
    view.check_dim(dim)?;
    check_len("out", view.len(), out.len())?;
    let isa = isa.clamp_available();
    with_elem!(T, view, |v: U| {
        let o = slice_as_mut::<T, U>(out).expect("same element type");
        softmax_imp::<U>(isa, v, dim, log, o)
    });
    Ok(())
}

/// [`softmax_into_with`] on [`crate::cpu::isa()`].
pub fn softmax_into<T: Element>(
    view: &MaskedView<'_, T>,
    dim: usize,
    log: bool,
    out: &mut [T],
) -> Result<()> {
    softmax_into_with(crate::cpu::isa(), view, dim, log, out)
}

/// [`softmax_with`] on [`crate::cpu::isa()`].
pub fn softmax<T: Element>(
    view: &MaskedView<'_, T>,
    dim: usize,
    log: bool,
) -> Result<MaskedVec<T>> {
    softmax_with(crate::cpu::isa(), view, dim, log)
}

fn softmax_bwd_imp<T: Elem>(
    isa: Isa,
    out: &MaskedView<'_, T>,
    grad: &[T],
    dim: usize,
    log: bool,
) -> MaskedVec<T> {
    let (rows, cols, along_rows) = softmax_shape(out, dim);
    let y = out.data();
    let words = out.mask().words();
    let mut dx = crate::buf::zeroed::<T>(y.len());
    if y.is_empty() {
        return MaskedVec {
            values: dx,
            mask: out.mask().clone(),
        };
    }
    let per = (TASK_ELEMS / cols).max(1) * cols;
    let par = y.len() >= par_min_len() && rows > 1;
    if along_rows {
        let job = |t: usize, dc: &mut [T]| {
            let s = t * per;
            let e = s + dc.len();
            room!(
                isa,
                softmax_bwd_rows::<T>(&grad[s..e], &y[s..e], dc, words, s, cols, log)
            );
        };
        par::chunks_if(par, &mut dx, per, &job);
    } else {
        let k = if log {
            cols_fold::<T, engine::Sum>(isa, grad, words, rows, cols, None)
        } else {
            let tile = dim0_tile_width::<T::Acc>(rows, cols, par);
            let tiles = cols.div_ceil(tile);
            let rblocks = rows.div_ceil(BLOCK);
            let job = |it: usize| -> Vec<T::Acc> {
                let (t, b) = (it / rblocks, it % rblocks);
                let col0 = t * tile;
                let w = (cols - col0).min(tile);
                let row0 = b * BLOCK;
                let nr = (rows - row0).min(BLOCK);
                let mut o = vec![T::Acc::ZERO; w];
                room!(
                    isa,
                    dim0_dot_block::<T>(grad, y, words, cols, col0, w, row0, nr, &mut o)
                );
                o
            };
            let items = tiles * rblocks;
            let parts: Vec<Vec<T::Acc>> = par::map_if(par && items > 1, items, &job);
            combine_col_parts(&parts, rows, cols, tile, T::Acc::ZERO, |a, b| a.add(b))
        };
        let job = |t: usize, dc: &mut [T]| {
            let s = t * per;
            let e = s + dc.len();
            room!(
                isa,
                softmax_bwd_cols_map::<T>(&grad[s..e], &y[s..e], dc, words, s, cols, &k, log)
            );
        };
        par::chunks_if(par, &mut dx, per, &job);
    }
    MaskedVec {
        values: dx,
        mask: out.mask().clone(),
    }
}

/// Backward of [`softmax_with`]: given the forward output `out` (values
/// and mask) and the upstream gradient `grad` (same length), the gradient
/// with respect to the input: `y * (g - sum(g * y))` for softmax,
/// `g - exp(y) * sum(g)` for log-softmax (sums over the kept elements of
/// each row / column, canonical order); 0 at masked-out entries and in
/// fully masked rows.
pub(crate) fn softmax_backward_with_imp<T: Element>(
    isa: Isa,
    out: &MaskedView<'_, T>,
    grad: &[T],
    dim: usize,
    log: bool,
) -> Result<MaskedVec<T>> {
    out.check_dim(dim)?;
    check_len("grad_output", out.len(), grad.len())?;
    let isa = isa.clamp_available();
    Ok(with_elem!(T, out, |v: U| {
        let g = slice_as::<T, U>(grad).expect("same element type");
        softmax_bwd_imp::<U>(isa, v, g, dim, log)
    }))
}

/// [`softmax_backward_with`] on [`crate::cpu::isa()`].
pub fn softmax_backward<T: Element>(
    out: &MaskedView<'_, T>,
    grad: &[T],
    dim: usize,
    log: bool,
) -> Result<MaskedVec<T>> {
    softmax_backward_with(crate::cpu::isa(), out, grad, dim, log)
}

#[allow(dead_code)]
const _LANES_CHECK: () = assert!(LANES == 32);

// ---------- forwarding shells: the kernels are instantiated in `crate::entry` ----------

/// [`reduce_with_imp`] for `T`, through its instance compiled in maskops.
pub fn reduce_with<T: Element>(isa: Isa, view: &MaskedView<'_, T>, op: Reduction) -> Option<T> {
    T::k_reduce(isa, view, op)
}

/// [`reduce_dim_with_imp`] for `T`, through its instance compiled in maskops.
pub fn reduce_dim_with<T: Element>(
    isa: Isa,
    view: &MaskedView<'_, T>,
    dim: usize,
    op: Reduction,
) -> Result<MaskedVec<T>> {
    T::k_reduce_dim(isa, view, dim, op)
}

/// [`arg_with_imp`] for `T`, through its instance compiled in maskops.
pub fn arg_with<T: Element>(isa: Isa, view: &MaskedView<'_, T>, op: ArgReduction) -> Option<usize> {
    T::k_arg(isa, view, op)
}

/// [`arg_dim_with_imp`] for `T`, through its instance compiled in maskops.
pub fn arg_dim_with<T: Element>(
    isa: Isa,
    view: &MaskedView<'_, T>,
    dim: usize,
    op: ArgReduction,
) -> Result<MaskedVec<usize>> {
    T::k_arg_dim(isa, view, dim, op)
}

/// [`reduce_expanded_imp`] for `T` on [`crate::cpu::isa()`], through its
/// instance compiled in maskops.
pub(crate) fn reduce_expanded<T: Element>(x: &[T], ex: Expand<'_>, op: Reduction) -> Option<T> {
    T::k_reduce_expanded(crate::cpu::isa(), x, ex, op)
}

/// [`arg_expanded_imp`] for `T` on [`crate::cpu::isa()`], through its
/// instance compiled in maskops.
pub(crate) fn arg_expanded<T: Element>(x: &[T], ex: Expand<'_>, op: ArgReduction) -> Option<usize> {
    T::k_arg_expanded(crate::cpu::isa(), x, ex, op)
}

/// [`softmax_into_with_imp`] for `T`, through its instance compiled in maskops.
pub fn softmax_into_with<T: Element>(
    isa: Isa,
    view: &MaskedView<'_, T>,
    dim: usize,
    log: bool,
    out: &mut [T],
) -> Result<()> {
    T::k_softmax_into(isa, view, dim, log, out)
}

/// [`softmax_backward_with_imp`] for `T`, through its instance compiled in maskops.
pub fn softmax_backward_with<T: Element>(
    isa: Isa,
    out: &MaskedView<'_, T>,
    grad: &[T],
    dim: usize,
    log: bool,
) -> Result<MaskedVec<T>> {
    T::k_softmax_backward(isa, out, grad, dim, log)
}
