//! The crate's one door to rayon.
//!
//! Kernels are instantiated per element type, fold kind and ISA. Had each
//! instance called rayon's generic adaptors with a closure of its own,
//! rayon's glue (jobs, latches, unwinding, producers) would be compiled
//! again for every instance: before this module it was 38% of the crate's
//! LLVM IR (`cargo llvm-lines --release --lib`), 10,683 copies. Here the
//! task body is a `dyn` closure, so that glue is compiled once per slice
//! element type, and a kernel instance adds only its own body.
//!
//! One indirect call per task (a task is thousands of elements) is all it
//! costs at run time. Which task runs which range is fixed by the
//! arguments, never by the pool, so results do not depend on the number of
//! threads.

use rayon::prelude::*;

/// A task over chunk `t` of two slices.
type Task2<'a, U, V> = &'a (dyn Fn(usize, &mut [U], &mut [V]) + Sync);
/// A task over chunk `t` of three slices.
type Task3<'a, U, V, W> = &'a (dyn Fn(usize, &mut [U], &mut [V], &mut [W]) + Sync);

/// Threads in the current rayon pool.
#[inline]
pub(crate) fn threads() -> usize {
    rayon::current_num_threads()
}

/// Runs `f(t)` for every task `t < n` on the pool.
pub(crate) fn for_each(n: usize, f: &(dyn Fn(usize) + Sync)) {
    (0..n).into_par_iter().for_each(f);
}

/// `[f(0), f(1), …, f(n - 1)]`, computed on the pool.
pub(crate) fn map<R: Send>(n: usize, f: &(dyn Fn(usize) -> R + Sync)) -> Vec<R> {
    (0..n).into_par_iter().map(f).collect()
}

/// Runs `f(t, chunk)` for the `per`-element chunks of `a` (the last may be
/// shorter) on the pool.
pub(crate) fn chunks<U: Send>(a: &mut [U], per: usize, f: &(dyn Fn(usize, &mut [U]) + Sync)) {
    a.par_chunks_mut(per).enumerate().for_each(|(t, c)| f(t, c));
}

/// Runs `f(t, chunk t of a, chunk t of b)` on the pool, `a` in chunks of
/// `pa` elements and `b` in chunks of `pb`, for as many tasks as the
/// shorter of the two has chunks.
pub(crate) fn chunks2<U: Send, V: Send>(
    a: &mut [U],
    pa: usize,
    b: &mut [V],
    pb: usize,
    f: Task2<'_, U, V>,
) {
    a.par_chunks_mut(pa)
        .zip(b.par_chunks_mut(pb))
        .enumerate()
        .for_each(|(t, (x, y))| f(t, x, y));
}

/// Runs `a` and `b`, potentially in parallel.
pub(crate) fn join(a: &mut (dyn FnMut() + Send), b: &mut (dyn FnMut() + Send)) {
    rayon::join(a, b);
}

/// [`chunks`] when `par`, else the same tasks in order on this thread.
pub(crate) fn chunks_if<U: Send>(
    par: bool,
    a: &mut [U],
    per: usize,
    f: &(dyn Fn(usize, &mut [U]) + Sync),
) {
    if par {
        chunks(a, per, f);
    } else {
        for (t, c) in a.chunks_mut(per).enumerate() {
            f(t, c);
        }
    }
}

/// [`chunks2`] when `par`, else the same tasks in order on this thread.
pub(crate) fn chunks2_if<U: Send, V: Send>(
    par: bool,
    a: &mut [U],
    pa: usize,
    b: &mut [V],
    pb: usize,
    f: Task2<'_, U, V>,
) {
    if par {
        chunks2(a, pa, b, pb, f);
    } else {
        for (t, (x, y)) in a.chunks_mut(pa).zip(b.chunks_mut(pb)).enumerate() {
            f(t, x, y);
        }
    }
}

/// [`map`] when `par`, else the same calls in order on this thread.
pub(crate) fn map_if<R: Send>(par: bool, n: usize, f: &(dyn Fn(usize) -> R + Sync)) -> Vec<R> {
    if par {
        map(n, f)
    } else {
        (0..n).map(f).collect()
    }
}

/// [`chunks2`] over three slices, when `par`; else in order on this thread.
#[allow(clippy::too_many_arguments)]
pub(crate) fn chunks3_if<U: Send, V: Send, W: Send>(
    par: bool,
    a: &mut [U],
    pa: usize,
    b: &mut [V],
    pb: usize,
    c: &mut [W],
    pc: usize,
    f: Task3<'_, U, V, W>,
) {
    if par {
        a.par_chunks_mut(pa)
            .zip(b.par_chunks_mut(pb))
            .zip(c.par_chunks_mut(pc))
            .enumerate()
            .for_each(|(t, ((x, y), z))| f(t, x, y, z));
    } else {
        for (t, ((x, y), z)) in a
            .chunks_mut(pa)
            .zip(b.chunks_mut(pb))
            .zip(c.chunks_mut(pc))
            .enumerate()
        {
            f(t, x, y, z);
        }
    }
}
