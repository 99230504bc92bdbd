//! `f16` and `bf16` through the `f32` kernels (the portable room).
//!
//! A half-precision element's accumulator is `f32`, and widening it to
//! `f32` is exact, so the canonical fold of a half sequence is the
//! canonical fold of its widened values, and a softmax output rounded to
//! the half type is the `f32` output rounded once. The portable room's
//! entry points for the half types therefore widen their input into an
//! `f32` scratch buffer piece by piece (with the room's own loads and
//! stores, the conversions the engine applies), run the room's `f32`
//! entry on it and narrow what it writes. The bits are those of the engine
//! on the half type (the `==` tests across ISAs and the bit fixture check
//! it), and the portable engine is instantiated for `f32` and `f64` only:
//! its auto-vectorized 32-lane arrays are the costliest instances of the
//! crate's optimized build.
//!
//! The pieces respect the engine's own structure: two canonical blocks
//! for a whole sequence, whole rows for the row kernels, and for a dim-0
//! column tile, sub-tiles of [`SUB`] columns whose mask bits are repacked
//! one word per row (every column's fold is the same at any tile width).
//!
//! The SIMD rooms keep their half instances. Routed through here (tried,
//! `MASKOPS_REPORT=reduce`, same run), their optimized build was 89-134 s
//! instead of 169 s, but `f16` sums ran at 0.6-0.75x their speed (the
//! conversion pass and the fold no longer overlap), dim-0 sums at 0.2-0.3x
//! (short strided sub-tile reads) and only softmax gained (1.4x).

use crate::canonical::BLOCK;
use std::cell::RefCell;

/// Elements widened per piece of a whole sequence: two canonical blocks
/// (32 KiB of `f32`, the engine's pair of blocks), folded while in L1.
pub const PIECE: usize = 2 * BLOCK;

/// Columns of a dim-0 sub-tile (one mask word per row).
pub const SUB: usize = 64;

/// A room's conversions of one half type `H`: exact widening to `f32`
/// and round-to-nearest-even narrowing (its vector loads and stores).
#[derive(Clone, Copy)]
pub struct Cv<'f, H> {
    /// `dst[i] = src[i]` as `f32`.
    pub widen: &'f dyn Fn(&[H], &mut [f32]),
    /// `dst[i] = src[i]` rounded to `H`.
    pub narrow: &'f dyn Fn(&[f32], &mut [H]),
}

/// The `f32` `block_partials` entry: `(x, words, bit0, c, out)`.
pub type PartsFn<'f> = &'f dyn Fn(&[f32], &[u64], usize, f32, &mut [f32]);
/// The `f32` whole-sequence fold entry: `(x, words, bit0, c)`.
pub type SeqFn<'f> = &'f dyn Fn(&[f32], &[u64], usize, f32) -> f32;
/// Folds block partials (the kind's padded halving tree).
pub type FoldFn<'f> = &'f dyn Fn(&mut Vec<f32>) -> f32;
/// The `f32` `rows_fold` entry: `(x, words, bit0, cols, c, out)`.
pub type RowsFn<'f> = &'f dyn Fn(&[f32], &[u64], usize, usize, Option<&[f32]>, &mut [f32]);

/// A row map with one input: `(x, y, bit0)`.
pub type MapFn<'f> = &'f dyn Fn(&[f32], &mut [f32], usize);
/// A row map with two inputs: `(g, y, dx, bit0)`.
pub type Map2Fn<'f> = &'f dyn Fn(&[f32], &[f32], &mut [f32], usize);

/// Scratch of one thread: three `f32` buffers and mask words.
#[derive(Default)]
pub struct Scratch {
    /// First input (or the only one).
    pub a: Vec<f32>,
    /// Second input.
    pub b: Vec<f32>,
    /// Output.
    pub o: Vec<f32>,
    /// Repacked mask words.
    pub w: Vec<u64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Runs `f` with this thread's scratch (a fresh one if it is in use).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// `v[..n]`, grown if needed.
fn take<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

/// Rows per piece of a row kernel over `cols`-wide rows.
fn rows_per_piece(cols: usize) -> usize {
    (PIECE / cols.max(1)).max(1)
}

/// Block partials of `x` (bit of `x[0]` at `bit0`) into `out`, by `f`
/// (the `f32` `block_partials`) on widened pieces.
pub fn block_partials<H: Copy>(
    cv: Cv<'_, H>,
    x: &[H],
    words: &[u64],
    bit0: usize,
    c: f32,
    out: &mut [f32],
    f: PartsFn<'_>,
) {
    with_scratch(|s| {
        for (i, xs) in x.chunks(PIECE).enumerate() {
            let a = take(&mut s.a, xs.len());
            (cv.widen)(xs, a);
            let o0 = i * (PIECE / BLOCK);
            f(
                a,
                words,
                bit0 + i * PIECE,
                c,
                &mut out[o0..o0 + xs.len().div_ceil(BLOCK)],
            );
        }
    })
}

/// The canonical fold of all of `x`: `seq` (the `f32` whole fold) on a
/// sequence of one piece, else the partials by `parts` folded by `fold`.
#[allow(clippy::too_many_arguments)]
pub fn seq_fold<H: Copy>(
    cv: Cv<'_, H>,
    x: &[H],
    words: &[u64],
    bit0: usize,
    c: f32,
    seq: SeqFn<'_>,
    parts: PartsFn<'_>,
    fold: FoldFn<'_>,
) -> f32 {
    if x.len() <= PIECE {
        return with_scratch(|s| {
            let a = take(&mut s.a, x.len());
            (cv.widen)(x, a);
            seq(a, words, bit0, c)
        });
    }
    let mut p = vec![0.0f32; x.len().div_ceil(BLOCK)];
    block_partials(cv, x, words, bit0, c, &mut p, parts);
    fold(&mut p)
}

/// One fold per row (`cols` wide), by `f` (the `f32` `rows_fold`) on
/// pieces of whole rows.
#[allow(clippy::too_many_arguments)]
pub fn rows_fold<H: Copy>(
    cv: Cv<'_, H>,
    x: &[H],
    words: &[u64],
    bit0: usize,
    cols: usize,
    c: Option<&[f32]>,
    out: &mut [f32],
    f: RowsFn<'_>,
) {
    if cols == 0 {
        return f(&[], words, bit0, cols, c, out);
    }
    let per = rows_per_piece(cols);
    with_scratch(|s| {
        for (i, xs) in x.chunks(per * cols).enumerate() {
            let (r0, nr) = (i * per, xs.len() / cols);
            let a = take(&mut s.a, xs.len());
            (cv.widen)(xs, a);
            let cs = c.map(|c| &c[r0..r0 + nr]);
            f(a, words, bit0 + r0 * cols, cols, cs, &mut out[r0..r0 + nr]);
        }
    })
}

/// The mask bits of a `nrows x ws` sub-tile (`ws <= 64`) whose first
/// element is bit `o`, rows `cols` bits apart: one word per row.
fn pack_rows(words: &[u64], o: usize, cols: usize, ws: usize, nrows: usize, w: &mut [u64]) {
    let keep = if ws == 64 { u64::MAX } else { (1u64 << ws) - 1 };
    for (r, d) in w[..nrows].iter_mut().enumerate() {
        *d = super::word_at(words, o + r * cols) & keep;
    }
}

/// Widens the `nrows x ws` sub-tile of `x` at `o` (rows `cols` apart)
/// into `dst`, densely.
fn widen_tile<H: Copy>(
    cv: Cv<'_, H>,
    x: &[H],
    o: usize,
    cols: usize,
    ws: usize,
    nrows: usize,
    dst: &mut [f32],
) {
    for (r, d) in dst.chunks_mut(ws).take(nrows).enumerate() {
        let s = o + r * cols;
        (cv.widen)(&x[s..s + ws], d);
    }
}

/// The `f32` dim-0 block kernel's arguments for a dense sub-tile:
/// `(x, words, cols, col0, w, row0, nrows, c, out)`.
pub type Dim0Fn<'f> =
    &'f dyn Fn(&[f32], &[u64], usize, usize, usize, usize, usize, Option<&[f32]>, &mut [f32]);

/// Dim-0 block partials of the column tile `col0 .. col0 + w`, rows
/// `row0 .. row0 + nrows` (a multiple of [`crate::canonical::LANES`]
/// apart from row 0), by `f` (the `f32` `dim0_block`) on dense sub-tiles.
#[allow(clippy::too_many_arguments)]
pub fn dim0_block<H: Copy>(
    cv: Cv<'_, H>,
    x: &[H],
    words: &[u64],
    cols: usize,
    col0: usize,
    w: usize,
    row0: usize,
    nrows: usize,
    c: Option<&[f32]>,
    out: &mut [f32],
    f: Dim0Fn<'_>,
) {
    if nrows == 0 || w == 0 {
        return f(&[], &[], SUB, 0, w, 0, 0, c, out);
    }
    with_scratch(|s| {
        for j0 in (0..w).step_by(SUB) {
            let ws = SUB.min(w - j0);
            let o = row0 * cols + col0 + j0;
            let a = take(&mut s.a, nrows * ws);
            widen_tile(cv, x, o, cols, ws, nrows, a);
            let m = tile_mask(take(&mut s.w, nrows), words, o, cols, ws);
            let cs = c.map(|c| &c[j0..j0 + ws]);
            f(a, &m, ws, 0, ws, 0, nrows, cs, &mut out[j0..j0 + ws]);
        }
    })
}

/// The mask words of a dense `m.len() x ws` sub-tile whose first element is
/// bit `o`, rows `cols` bits apart: one word per row when `ws == 64`,
/// otherwise the rows' bits back to back (row `r` from bit `r * ws`).
fn tile_mask<'m>(
    m: &'m mut [u64],
    words: &[u64],
    o: usize,
    cols: usize,
    ws: usize,
) -> std::borrow::Cow<'m, [u64]> {
    let nrows = m.len();
    pack_rows(words, o, cols, ws, nrows, m);
    if ws < 64 {
        std::borrow::Cow::Owned(repack_dense(m, ws))
    } else {
        std::borrow::Cow::Borrowed(m)
    }
}

/// Rows of `ws < 64` bits (one word each) packed back to back.
fn repack_dense(rows: &[u64], ws: usize) -> Vec<u64> {
    let mut d = vec![0u64; (rows.len() * ws).div_ceil(64)];
    for (r, &v) in rows.iter().enumerate() {
        let p = r * ws;
        let (i, sh) = (p / 64, p % 64);
        d[i] |= v << sh;
        if sh + ws > 64 {
            d[i + 1] |= v >> (64 - sh);
        }
    }
    d
}

/// The `f32` dim-0 dot kernel's arguments for a dense sub-tile:
/// `(g, y, words, cols, col0, w, row0, nrows, out)`.
pub type Dim0DotFn<'f> =
    &'f dyn Fn(&[f32], &[f32], &[u64], usize, usize, usize, usize, usize, &mut [f32]);

/// Dim-0 `sum g*y` block partials of a column tile (see [`dim0_block`]).
#[allow(clippy::too_many_arguments)]
pub fn dim0_dot_block<H: Copy>(
    cv: Cv<'_, H>,
    g: &[H],
    y: &[H],
    words: &[u64],
    cols: usize,
    col0: usize,
    w: usize,
    row0: usize,
    nrows: usize,
    out: &mut [f32],
    f: Dim0DotFn<'_>,
) {
    if nrows == 0 || w == 0 {
        return f(&[], &[], &[], SUB, 0, w, 0, 0, out);
    }
    with_scratch(|s| {
        for j0 in (0..w).step_by(SUB) {
            let ws = SUB.min(w - j0);
            let o = row0 * cols + col0 + j0;
            let a = take(&mut s.a, nrows * ws);
            widen_tile(cv, g, o, cols, ws, nrows, a);
            let b = take(&mut s.b, nrows * ws);
            widen_tile(cv, y, o, cols, ws, nrows, b);
            let m = tile_mask(take(&mut s.w, nrows), words, o, cols, ws);
            f(a, b, &m, ws, 0, ws, 0, nrows, &mut out[j0..j0 + ws]);
        }
    })
}

/// A row map with one input: `f(x, y, bit0)` on pieces of whole rows
/// (`cols` wide), `y` narrowed back.
pub fn map_rows<H: Copy>(
    cv: Cv<'_, H>,
    x: &[H],
    y: &mut [H],
    bit0: usize,
    cols: usize,
    f: MapFn<'_>,
) {
    if cols == 0 {
        return;
    }
    let per = rows_per_piece(cols) * cols;
    with_scratch(|s| {
        for (i, (xs, ys)) in x.chunks(per).zip(y.chunks_mut(per)).enumerate() {
            let a = take(&mut s.a, xs.len());
            (cv.widen)(xs, a);
            let o = take(&mut s.o, xs.len());
            f(a, o, bit0 + i * per);
            (cv.narrow)(o, ys);
        }
    })
}

/// A row map with two inputs: `f(g, y, dx, bit0)` on pieces of whole rows,
/// `dx` narrowed back.
pub fn map_rows2<H: Copy>(
    cv: Cv<'_, H>,
    g: &[H],
    y: &[H],
    dx: &mut [H],
    bit0: usize,
    cols: usize,
    f: Map2Fn<'_>,
) {
    if cols == 0 {
        return;
    }
    let per = rows_per_piece(cols) * cols;
    with_scratch(|s| {
        for (i, ((gs, ys), ds)) in g
            .chunks(per)
            .zip(y.chunks(per))
            .zip(dx.chunks_mut(per))
            .enumerate()
        {
            let a = take(&mut s.a, gs.len());
            (cv.widen)(gs, a);
            let b = take(&mut s.b, ys.len());
            (cv.widen)(ys, b);
            let o = take(&mut s.o, gs.len());
            f(a, b, o, bit0 + i * per);
            (cv.narrow)(o, ds);
        }
    })
}
