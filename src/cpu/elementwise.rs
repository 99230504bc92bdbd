//! Dispatch for the masked elementwise kernels (the only caller of the
//! `arch/*/elementwise.rs` rooms).
//!
//! Every kernel computes an op on the **kept** elements only: masked-out
//! destination slots keep exactly the bits they held, and masked-out source
//! slots never reach arithmetic, so NaN/inf/garbage there can neither leak
//! nor hit a slow path. AVX-512 uses the keep bits as the `k` register of
//! every load and store (masked-out lanes are neither read nor written);
//! AVX2 zeroes masked-out lanes with an AND before computing and blends the
//! result into the destination's current value (branch-free; `vmaskmov` for
//! the tail); NEON does as AVX2 (`bsl` merges, kept lanes one by one in
//! the tail); the portable path maps fully kept 64-element chunks in one
//! loop and visits only the set bits of the others.
//!
//! Results are bit-identical across ISAs and thread counts: each element is
//! computed by one fixed sequence of IEEE operations (no FMA), defined by the
//! scalar forms of the portable room (`binary_scalar` and the per-op
//! scalar functions). `exp`/`log` on `f32` use
//! [`crate::math::exp_f32`] / [`crate::math::ln_f32`], transcribed exactly in
//! SIMD; on `f64` every path calls `std`'s `exp`/`ln` lane by lane, as it does
//! for `pow` with an exponent outside PyTorch's special set
//! (`0.5, 1, 2, 3, -0.5, -1, -2`). NaN results are NaN on every path (the
//! payload follows x86's rules on x86 and is not promised elsewhere).
//!
//! Inputs of [`parallel_min_len`] elements or more (default [`PAR_MIN_LEN`])
//! are split over rayon's pool in chunks of [`PAR_CHUNK`] elements (whole
//! rows for broadcasts).

use crate::array::{BinaryOp, UnaryOp};
use crate::cpu::arch::portable::elementwise as portable;
use crate::cpu::Isa;
use crate::element::Float;
use crate::error::{check_len, check_shape, Result};
use crate::mask::Mask;
use crate::par;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use portable::is_f32;
use portable::RawRhs;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Default of [`parallel_min_len`]: below this many elements a kernel runs
/// on the calling thread. Transcendental ops (`exp`, `log`, `pow` outside
/// the special exponents) split at a quarter of it.
///
/// Measured with `cargo bench --bench elementwise -- threshold` (in-place
/// `mul_scalar` and `exp` on `f32`, density 0.5, one thread against the
/// whole pool forced at every size) on the 2-core development machine
/// (shared, so noisy): for `mul_scalar` the pool lost up to 2^20 elements
/// (pool/serial 1.3 at 2^20) and won at 2^22 (0.42-0.70); for `exp` it won
/// from 2^19-2^20 on (0.63-0.75). A machine whose single core does not
/// saturate memory wants it lower: see [`set_parallel_min_len`].
pub const PAR_MIN_LEN: usize = 1 << 21;

static PAR_MIN: AtomicUsize = AtomicUsize::new(PAR_MIN_LEN);

/// The current serial/parallel threshold (elements), [`PAR_MIN_LEN`] unless
/// changed by [`set_parallel_min_len`].
pub fn parallel_min_len() -> usize {
    PAR_MIN.load(Ordering::Relaxed)
}

/// Sets the serial/parallel threshold for every elementwise kernel of the
/// process (`usize::MAX` = never split; `0` = always use the pool).
/// Results do not depend on it (elementwise ops are computed per element).
pub fn set_parallel_min_len(n: usize) {
    PAR_MIN.store(n, Ordering::Relaxed)
}

/// Elements per rayon task (a multiple of 64, so tasks start on mask words).
pub const PAR_CHUNK: usize = 1 << 15;

/// Broadcasts over rows narrower than this go through a pattern buffer.
const NARROW: usize = 64;
/// Elements in the pattern buffer of a narrow broadcast (on the stack).
const PATTERN: usize = 1024;

/// The second operand of a binary kernel.
#[derive(Debug, Clone, Copy)]
pub enum Rhs<'a, T> {
    /// A dense operand of the same shape.
    Slice(&'a [T]),
    /// A row vector (`cols` elements) broadcast over every row.
    Row(&'a [T]),
    /// A column vector (`rows` elements) broadcast over every column.
    Col(&'a [T]),
    /// One value for every element.
    Scalar(T),
}

/// A raw pointer that may cross into rayon tasks (each task touches a
/// disjoint range; see the `SAFETY` comments at the use sites).
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: only used to hand disjoint element ranges to rayon tasks.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn get(self) -> *mut T {
        self.0
    }
}

/// The threshold for a unary op: a quarter of [`parallel_min_len`] for the
/// transcendental ones.
fn unary_min<T: Float>(op: &UnaryOp<T>) -> usize {
    let heavy = match op {
        UnaryOp::Exp | UnaryOp::Log => true,
        UnaryOp::Pow(p) => portable::PowKind::of(*p) == portable::PowKind::General,
        _ => false,
    };
    if heavy {
        parallel_min_len() / 4
    } else {
        parallel_min_len()
    }
}

// the SIMD rooms' per-type kernels take these casts
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn cast_unary<T: Float, U: Float>(op: UnaryOp<T>) -> UnaryOp<U> {
    let c = |x: T| U::from_f64(x.to_f64());
    match op {
        UnaryOp::Neg => UnaryOp::Neg,
        UnaryOp::Abs => UnaryOp::Abs,
        UnaryOp::Sqrt => UnaryOp::Sqrt,
        UnaryOp::Exp => UnaryOp::Exp,
        UnaryOp::Log => UnaryOp::Log,
        UnaryOp::Pow(p) => UnaryOp::Pow(c(p)),
        UnaryOp::AddScalar(s) => UnaryOp::AddScalar(c(s)),
        UnaryOp::MulScalar(s) => UnaryOp::MulScalar(c(s)),
        UnaryOp::Clamp(lo, hi) => UnaryOp::Clamp(c(lo), c(hi)),
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn cast_rhs<T: Float, U: Float>(b: RawRhs<T>) -> RawRhs<U> {
    match b {
        RawRhs::Ptr(p) => RawRhs::Ptr(p as *const U),
        RawRhs::Scalar(s) => RawRhs::Scalar(U::from_f64(s.to_f64())),
    }
}

/// One serial unary run. `isa` must be available.
///
/// # Safety
/// The rooms' contract: `src`/`dst` valid for `n` elements, equal or
/// disjoint; `words` covers bits `off .. off + n`.
unsafe fn unary_raw<T: Float>(
    isa: Isa,
    op: UnaryOp<T>,
    src: *const T,
    dst: *mut T,
    n: usize,
    words: &[u64],
    off: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::cpu::arch::x86_64::{avx2, avx512};
        let f32_ = is_f32::<T>();
        match isa {
            // SAFETY: `isa` is available (checked by the callers) and the
            // contract is forwarded; T is f32 (resp. f64, the only other
            // Float) so the pointer casts are identities.
            Isa::Avx512 if f32_ => unsafe {
                return avx512::elementwise::unary_f32(
                    cast_unary(op),
                    src as *const f32,
                    dst as *mut f32,
                    n,
                    words,
                    off,
                );
            },
            // SAFETY: as above.
            Isa::Avx512 => unsafe {
                return avx512::elementwise::unary_f64(
                    cast_unary(op),
                    src as *const f64,
                    dst as *mut f64,
                    n,
                    words,
                    off,
                );
            },
            // SAFETY: as above.
            Isa::Avx2 if f32_ => unsafe {
                return avx2::elementwise::unary_f32(
                    cast_unary(op),
                    src as *const f32,
                    dst as *mut f32,
                    n,
                    words,
                    off,
                );
            },
            // SAFETY: as above.
            Isa::Avx2 => unsafe {
                return avx2::elementwise::unary_f64(
                    cast_unary(op),
                    src as *const f64,
                    dst as *mut f64,
                    n,
                    words,
                    off,
                );
            },
            Isa::Portable | Isa::Neon => {}
        }
    }
    #[cfg(target_arch = "aarch64")]
    if isa == Isa::Neon {
        use crate::cpu::arch::aarch64::neon;
        if is_f32::<T>() {
            // SAFETY: NEON is part of the aarch64 base architecture and the
            // contract is forwarded; T is f32 so the casts are identities.
            unsafe {
                return neon::elementwise::unary_f32(
                    cast_unary(op),
                    src as *const f32,
                    dst as *mut f32,
                    n,
                    words,
                    off,
                );
            }
        }
        // SAFETY: as above; T is f64 (the only other Float).
        unsafe {
            return neon::elementwise::unary_f64(
                cast_unary(op),
                src as *const f64,
                dst as *mut f64,
                n,
                words,
                off,
            );
        }
    }
    let _ = isa;
    // SAFETY: forwarded contract.
    unsafe { portable::unary(op, src, dst, n, words, off) }
}

/// One serial binary run. `isa` must be available.
///
/// # Safety
/// As [`unary_raw`]; a `RawRhs::Ptr` is valid for `n` elements.
#[allow(clippy::too_many_arguments)]
unsafe fn binary_raw<T: Float>(
    isa: Isa,
    op: BinaryOp,
    a: *const T,
    b: RawRhs<T>,
    dst: *mut T,
    n: usize,
    words: &[u64],
    off: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::cpu::arch::x86_64::{avx2, avx512};
        let f32_ = is_f32::<T>();
        match isa {
            // SAFETY: `isa` is available and the contract is forwarded; the
            // casts are identities (T is f32, resp. f64).
            Isa::Avx512 if f32_ => unsafe {
                return avx512::elementwise::binary_f32(
                    op,
                    a as *const f32,
                    cast_rhs(b),
                    dst as *mut f32,
                    n,
                    words,
                    off,
                );
            },
            // SAFETY: as above.
            Isa::Avx512 => unsafe {
                return avx512::elementwise::binary_f64(
                    op,
                    a as *const f64,
                    cast_rhs(b),
                    dst as *mut f64,
                    n,
                    words,
                    off,
                );
            },
            // SAFETY: as above.
            Isa::Avx2 if f32_ => unsafe {
                return avx2::elementwise::binary_f32(
                    op,
                    a as *const f32,
                    cast_rhs(b),
                    dst as *mut f32,
                    n,
                    words,
                    off,
                );
            },
            // SAFETY: as above.
            Isa::Avx2 => unsafe {
                return avx2::elementwise::binary_f64(
                    op,
                    a as *const f64,
                    cast_rhs(b),
                    dst as *mut f64,
                    n,
                    words,
                    off,
                );
            },
            Isa::Portable | Isa::Neon => {}
        }
    }
    #[cfg(target_arch = "aarch64")]
    if isa == Isa::Neon {
        use crate::cpu::arch::aarch64::neon;
        if is_f32::<T>() {
            // SAFETY: NEON is part of the aarch64 base architecture and the
            // contract is forwarded; T is f32 so the casts are identities.
            unsafe {
                return neon::elementwise::binary_f32(
                    op,
                    a as *const f32,
                    cast_rhs(b),
                    dst as *mut f32,
                    n,
                    words,
                    off,
                );
            }
        }
        // SAFETY: as above; T is f64 (the only other Float).
        unsafe {
            return neon::elementwise::binary_f64(
                op,
                a as *const f64,
                cast_rhs(b),
                dst as *mut f64,
                n,
                words,
                off,
            );
        }
    }
    let _ = isa;
    // SAFETY: forwarded contract.
    unsafe { portable::binary(op, a, b, dst, n, words, off) }
}

/// Runs `f(start, count)` over `0..units` units of `unit_len` elements,
/// on rayon's pool when the total reaches `min`.
fn par_units(units: usize, unit_len: usize, min: usize, f: &(dyn Fn(usize, usize) + Sync)) {
    let total = units.saturating_mul(unit_len);
    if total < min || units < 2 || par::threads() < 2 {
        f(0, units);
        return;
    }
    let per = (PAR_CHUNK / unit_len.max(1)).max(1);
    let tasks = units.div_ceil(per);
    par::for_each(tasks, &|t| {
        let s = t * per;
        f(s, per.min(units - s));
    });
}

/// Unary op on the kept elements of `src` into `dst` (same length as
/// `src` and `mask`), on the given ISA (lowered to an available one).
/// Masked-out slots of `dst` are left as they were.
pub(crate) fn unary_with_imp<T: Float>(
    isa: Isa,
    op: UnaryOp<T>,
    src: &[T],
    mask: &Mask,
    dst: &mut [T],
) -> Result<()> {
    check_len("mask", src.len(), mask.len())?;
    check_len("dst", src.len(), dst.len())?;
    let isa = isa.clamp_available();
    let s = SendPtr(src.as_ptr() as *mut T);
    let d = SendPtr(dst.as_mut_ptr());
    let words = mask.words();
    par_units(src.len(), 1, unary_min(&op), &|start, count| {
        // SAFETY: `src` and `dst` are distinct borrows (so disjoint) of
        // `src.len()` elements; each call covers `start .. start + count`,
        // disjoint between tasks; the mask has `src.len()` bits.
        unsafe {
            unary_raw(
                isa,
                op,
                s.get().add(start),
                d.get().add(start),
                count,
                words,
                start,
            )
        }
    });
    Ok(())
}

/// Unary op on the kept elements of `x`, in place.
pub(crate) fn unary_inplace_with_imp<T: Float>(
    isa: Isa,
    op: UnaryOp<T>,
    x: &mut [T],
    mask: &Mask,
) -> Result<()> {
    check_len("mask", x.len(), mask.len())?;
    let isa = isa.clamp_available();
    let p = SendPtr(x.as_mut_ptr());
    let words = mask.words();
    par_units(x.len(), 1, unary_min(&op), &|start, count| {
        // SAFETY: source and destination are the same range of `x`
        // (allowed by the contract); tasks cover disjoint ranges.
        unsafe {
            unary_raw(
                isa,
                op,
                p.get().add(start),
                p.get().add(start),
                count,
                words,
                start,
            )
        }
    });
    Ok(())
}

fn check_rhs<T>(rhs: &Rhs<'_, T>, rows: usize, cols: usize) -> Result<()> {
    match rhs {
        Rhs::Slice(b) => check_len("other", rows * cols, b.len()),
        Rhs::Row(b) => check_len("row", cols, b.len()),
        Rhs::Col(b) => check_len("col", rows, b.len()),
        Rhs::Scalar(_) => Ok(()),
    }
}

/// # Safety
/// `a`/`dst` valid for `rows * cols` elements, equal or disjoint; `rhs`
/// checked by [`check_rhs`]; `words` covers `rows * cols` bits.
#[allow(clippy::too_many_arguments)]
unsafe fn binary_run<T: Float>(
    isa: Isa,
    op: BinaryOp,
    a: SendPtr<T>,
    rhs: Rhs<'_, T>,
    rows: usize,
    cols: usize,
    words: &[u64],
    dst: SendPtr<T>,
) {
    match rhs {
        Rhs::Slice(_) | Rhs::Scalar(_) => {
            let bp = match rhs {
                Rhs::Slice(b) => SendPtr(b.as_ptr() as *mut T),
                _ => SendPtr(std::ptr::null_mut()),
            };
            let scalar = match rhs {
                Rhs::Scalar(s) => Some(s),
                _ => None,
            };
            par_units(rows * cols, 1, parallel_min_len(), &|start, count| {
                let b = match scalar {
                    Some(s) => RawRhs::Scalar(s),
                    // SAFETY: `b` has rows * cols elements (checked).
                    None => RawRhs::Ptr(unsafe { bp.get().add(start) } as *const T),
                };
                // SAFETY: disjoint ranges per task, forwarded contract.
                unsafe {
                    binary_raw(
                        isa,
                        op,
                        a.get().add(start),
                        b,
                        dst.get().add(start),
                        count,
                        words,
                        start,
                    )
                }
            });
        }
        Rhs::Row(_) | Rhs::Col(_) if cols > 0 && cols < NARROW => {
            // Narrow rows: one kernel call per row would cost more than the
            // row itself, so the operand is expanded into a pattern covering
            // `group` rows and the kernel runs over whole groups. Each
            // element still gets op(a, the same operand value): same bits.
            let group = PATTERN / cols;
            par_units(rows, cols, parallel_min_len(), &|r0, nr| {
                let mut pat = [T::ZERO; PATTERN];
                if let Rhs::Row(v) = rhs {
                    for (k, p) in pat[..group * cols].iter_mut().enumerate() {
                        *p = v[k % cols];
                    }
                }
                let mut r = r0;
                while r < r0 + nr {
                    let g = group.min(r0 + nr - r);
                    if let Rhs::Col(v) = rhs {
                        for (q, chunk) in pat[..g * cols].chunks_mut(cols).enumerate() {
                            chunk.fill(v[r + q]);
                        }
                    }
                    let s = r * cols;
                    // SAFETY: rows r .. r + g are inside the matrix and
                    // belong to this task only; `pat` holds g * cols values.
                    unsafe {
                        binary_raw(
                            isa,
                            op,
                            a.get().add(s),
                            RawRhs::Ptr(pat.as_ptr()),
                            dst.get().add(s),
                            g * cols,
                            words,
                            s,
                        )
                    }
                    r += g;
                }
            });
        }
        Rhs::Row(_) | Rhs::Col(_) => {
            par_units(rows, cols, parallel_min_len(), &|r0, nr| {
                for r in r0..r0 + nr {
                    let b = match rhs {
                        Rhs::Row(v) => RawRhs::Ptr(v.as_ptr()),
                        Rhs::Col(v) => RawRhs::Scalar(v[r]),
                        _ => unreachable!(),
                    };
                    let s = r * cols;
                    // SAFETY: row `r` is `s .. s + cols`, inside the
                    // matrix; rows are disjoint between tasks; a row
                    // vector holds `cols` elements (checked).
                    unsafe {
                        binary_raw(isa, op, a.get().add(s), b, dst.get().add(s), cols, words, s)
                    }
                }
            });
        }
    }
}

/// Binary op `dst = op(a, rhs)` on the kept elements of the row-major
/// `rows x cols` array `a` (a 1-D array is `1 x len`), on the given ISA.
/// Masked-out slots of `dst` are left as they were.
#[allow(clippy::too_many_arguments)]
pub(crate) fn binary_with_imp<T: Float>(
    isa: Isa,
    op: BinaryOp,
    a: &[T],
    rhs: Rhs<'_, T>,
    rows: usize,
    cols: usize,
    mask: &Mask,
    dst: &mut [T],
) -> Result<()> {
    check_shape("a", rows, cols, a.len())?;
    check_len("mask", a.len(), mask.len())?;
    check_len("dst", a.len(), dst.len())?;
    check_rhs(&rhs, rows, cols)?;
    let isa = isa.clamp_available();
    // SAFETY: `a` and `dst` are distinct borrows of `rows * cols` elements;
    // `rhs` and the mask were checked above.
    unsafe {
        binary_run(
            isa,
            op,
            SendPtr(a.as_ptr() as *mut T),
            rhs,
            rows,
            cols,
            mask.words(),
            SendPtr(dst.as_mut_ptr()),
        )
    };
    Ok(())
}

/// Binary op `a = op(a, rhs)` in place on the kept elements of `a`.
pub(crate) fn binary_inplace_with_imp<T: Float>(
    isa: Isa,
    op: BinaryOp,
    a: &mut [T],
    rhs: Rhs<'_, T>,
    rows: usize,
    cols: usize,
    mask: &Mask,
) -> Result<()> {
    check_shape("a", rows, cols, a.len())?;
    check_len("mask", a.len(), mask.len())?;
    check_rhs(&rhs, rows, cols)?;
    let isa = isa.clamp_available();
    let p = SendPtr(a.as_mut_ptr());
    // SAFETY: source and destination are the same buffer (allowed); `rhs`
    // is a shared borrow, so it cannot alias the exclusive `a`.
    unsafe { binary_run(isa, op, p, rhs, rows, cols, mask.words(), p) };
    Ok(())
}

/// `out[i] = if mask.get(i) { values[i] } else { fill }` (MaskedTensor's
/// `to_tensor(fill)`), never reading masked-out values.
pub(crate) fn select_imp<T: Float>(
    values: &[T],
    mask: &Mask,
    fill: T,
    out: &mut [T],
) -> Result<()> {
    check_len("mask", values.len(), mask.len())?;
    check_len("out", values.len(), out.len())?;
    let words = mask.words();
    if values.len() >= parallel_min_len() && par::threads() > 1 {
        par::chunks(out, PAR_CHUNK, &|c, o| {
            let s = c * PAR_CHUNK;
            portable::select(&values[s..s + o.len()], words, s, fill, o)
        });
    } else {
        portable::select(values, words, 0, fill, out);
    }
    Ok(())
}

// ---------- forwarding shells: the kernels are instantiated in `crate::entry` ----------

/// [`unary_with_imp`] for `T`, through its instance compiled in maskops.
pub fn unary_with<T: Float>(
    isa: Isa,
    op: UnaryOp<T>,
    src: &[T],
    mask: &Mask,
    dst: &mut [T],
) -> Result<()> {
    T::k_unary(isa, op, src, mask, dst)
}

/// [`unary_inplace_with_imp`] for `T`, through its instance compiled in maskops.
pub fn unary_inplace_with<T: Float>(
    isa: Isa,
    op: UnaryOp<T>,
    x: &mut [T],
    mask: &Mask,
) -> Result<()> {
    T::k_unary_inplace(isa, op, x, mask)
}

/// [`binary_with_imp`] for `T`, through its instance compiled in maskops.
#[allow(clippy::too_many_arguments)]
pub fn binary_with<T: Float>(
    isa: Isa,
    op: BinaryOp,
    a: &[T],
    rhs: Rhs<'_, T>,
    rows: usize,
    cols: usize,
    mask: &Mask,
    dst: &mut [T],
) -> Result<()> {
    T::k_binary(isa, op, a, rhs, rows, cols, mask, dst)
}

/// [`binary_inplace_with_imp`] for `T`, through its instance compiled in maskops.
pub fn binary_inplace_with<T: Float>(
    isa: Isa,
    op: BinaryOp,
    a: &mut [T],
    rhs: Rhs<'_, T>,
    rows: usize,
    cols: usize,
    mask: &Mask,
) -> Result<()> {
    T::k_binary_inplace(isa, op, a, rhs, rows, cols, mask)
}

/// [`select_imp`] for `T`, through its instance compiled in maskops.
pub fn select<T: Float>(values: &[T], mask: &Mask, fill: T, out: &mut [T]) -> Result<()> {
    T::k_select(values, mask, fill, out)
}
