//! `portable` elementwise kernels, and the scalar definition of every
//! elementwise op that the SIMD rooms transcribe lane by lane.
//!
//! Every function here that takes raw pointers follows the same contract
//! (checked by the dispatch in `crate::cpu::elementwise`, the only caller):
//! `src`/`a` and `dst` hold `n` elements and are either the same pointer
//! (in place) or do not overlap; `b` (when a slice) holds `n` elements;
//! `words` holds the bits `off .. off + n` (bit `off + i` keeps element `i`).
//! Only kept elements of `src`/`a`/`b` enter arithmetic, and masked-out
//! slots of `dst` keep exactly the bits they held. (This path neither reads
//! nor writes masked-out slots; AVX-512 neither; AVX2 loads whole vectors,
//! zeroes masked-out lanes before computing and stores back the bits a
//! masked-out slot held.)

use crate::array::{BinaryOp, UnaryOp};
use crate::element::Float;
use crate::math::{exp_f32, ln_f32};
use std::any::TypeId;

/// `true` when `T` is `f32`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn is_f32<T: 'static>() -> bool {
    TypeId::of::<T>() == TypeId::of::<f32>()
}

/// The 64 mask bits starting at bit `pos` of `words` (zero past the end).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn bits_at(words: &[u64], pos: usize) -> u64 {
    let w = pos / 64;
    let b = pos % 64;
    let lo = words.get(w).copied().unwrap_or(0) >> b;
    if b == 0 {
        lo
    } else {
        lo | (words.get(w + 1).copied().unwrap_or(0) << (64 - b))
    }
}

/// The keep bits of the 64-element chunk starting at element `i` of an
/// `n`-element run whose bit 0 is bit `off` of `words` (bits past `n` cleared).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn chunk_bits(words: &[u64], off: usize, i: usize, n: usize) -> u64 {
    let bits = bits_at(words, off + i);
    let rem = n - i;
    if rem < 64 {
        bits & ((1u64 << rem) - 1)
    } else {
        bits
    }
}

/// `e^x`: [`exp_f32`] for `f32` (bit-identical on every path), `std` for `f64`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn exp_scalar<T: Float>(x: T) -> T {
    if is_f32::<T>() {
        T::from_f32(exp_f32(x.to_f32()))
    } else {
        x.exp()
    }
}

/// `ln x`: [`ln_f32`] for `f32` (bit-identical on every path), `std` for `f64`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn ln_scalar<T: Float>(x: T) -> T {
    if is_f32::<T>() {
        T::from_f32(ln_f32(x.to_f32()))
    } else {
        x.ln()
    }
}

/// `x^p` with PyTorch's special exponents: `0.5` is `sqrt(x)`, `1` is `x`,
/// `2` is `x*x`, `3` is `(x*x)*x`, `-0.5` is `1/sqrt(x)`, `-1` is `1/x`,
/// `-2` is `1/(x*x)`; any other exponent is `std`'s `powf`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn pow_scalar<T: Float>(x: T, p: T) -> T {
    match PowKind::of(p) {
        PowKind::Half => x.sqrt(),
        PowKind::One => x,
        PowKind::Two => x * x,
        PowKind::Three => (x * x) * x,
        PowKind::NegHalf => T::ONE / x.sqrt(),
        PowKind::NegOne => T::ONE / x,
        PowKind::NegTwo => T::ONE / (x * x),
        PowKind::General => x.powf(p),
    }
}

/// How [`pow_scalar`] evaluates an exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowKind {
    /// `0.5`: `sqrt(x)`.
    Half,
    /// `1`: `x`.
    One,
    /// `2`: `x * x`.
    Two,
    /// `3`: `(x * x) * x`.
    Three,
    /// `-0.5`: `1 / sqrt(x)`.
    NegHalf,
    /// `-1`: `1 / x`.
    NegOne,
    /// `-2`: `1 / (x * x)`.
    NegTwo,
    /// Anything else: `powf` lane by lane.
    General,
}

impl PowKind {
    /// Classifies an exponent.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    pub fn of<T: Float>(p: T) -> PowKind {
        let p = p.to_f64();
        if p == 0.5 {
            PowKind::Half
        } else if p == 1.0 {
            PowKind::One
        } else if p == 2.0 {
            PowKind::Two
        } else if p == 3.0 {
            PowKind::Three
        } else if p == -0.5 {
            PowKind::NegHalf
        } else if p == -1.0 {
            PowKind::NegOne
        } else if p == -2.0 {
            PowKind::NegTwo
        } else {
            PowKind::General
        }
    }
}

/// `clamp(x, lo, hi)` as PyTorch: NaN stays NaN, otherwise
/// `y = if x > lo { x } else { lo }; if y < hi { y } else { hi }`
/// (so `lo > hi` gives `hi`, and `clamp(-0.0, 0.0, _)` is `+0.0`).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn clamp_scalar<T: Float>(x: T, lo: T, hi: T) -> T {
    if x.is_nan() {
        return x;
    }
    let y = if x > lo { x } else { lo };
    if y < hi {
        y
    } else {
        hi
    }
}

/// The scalar definition of a binary op. `maximum`/`minimum` propagate NaN
/// (PyTorch's `torch.maximum`): a NaN operand gives `a + b`; otherwise
/// `if a > b { a } else { b }` (`minimum`: `a < b`), which is x86's
/// `maxps`/`minps` operand order.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn binary_scalar<T: Float>(op: BinaryOp, a: T, b: T) -> T {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Maximum => {
            if a.is_nan() || b.is_nan() {
                a + b
            } else if a > b {
                a
            } else {
                b
            }
        }
        BinaryOp::Minimum => {
            if a.is_nan() || b.is_nan() {
                a + b
            } else if a < b {
                a
            } else {
                b
            }
        }
    }
}

/// Applies `f` to the kept elements (see the module contract).
///
/// A fully kept 64-element chunk is mapped in one loop (vectorized); a
/// mixed chunk visits its set bits only (`trailing_zeros`), so masked-out
/// slots are neither read nor written.
///
/// # Safety
/// The module contract.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn run_unary<T: Float>(
    f: impl Fn(T) -> T,
    src: *const T,
    dst: *mut T,
    n: usize,
    words: &[u64],
    off: usize,
) {
    let mut i = 0;
    while i < n {
        let bits = chunk_bits(words, off, i, n);
        if bits == u64::MAX {
            for k in 0..64 {
                // SAFETY: a full chunk: i + k < n; src/dst valid for n.
                unsafe { *dst.add(i + k) = f(*src.add(i + k)) };
            }
        } else {
            let mut m = bits;
            while m != 0 {
                let k = m.trailing_zeros() as usize;
                m &= m - 1;
                // SAFETY: bits past n are cleared, so i + k < n.
                unsafe { *dst.add(i + k) = f(*src.add(i + k)) };
            }
        }
        i += 64;
    }
}

/// Unary op over the kept elements.
///
/// # Safety
/// The module contract.
pub unsafe fn unary<T: Float>(
    op: UnaryOp<T>,
    src: *const T,
    dst: *mut T,
    n: usize,
    words: &[u64],
    off: usize,
) {
    // SAFETY (all arms): forwarded contract.
    unsafe {
        match op {
            UnaryOp::Neg => run_unary(|x: T| -x, src, dst, n, words, off),
            UnaryOp::Abs => run_unary(|x: T| x.abs(), src, dst, n, words, off),
            UnaryOp::Sqrt => run_unary(|x: T| x.sqrt(), src, dst, n, words, off),
            UnaryOp::Exp => run_unary(exp_scalar::<T>, src, dst, n, words, off),
            UnaryOp::Log => run_unary(ln_scalar::<T>, src, dst, n, words, off),
            UnaryOp::Pow(p) => match PowKind::of(p) {
                PowKind::Two => run_unary(|x: T| x * x, src, dst, n, words, off),
                _ => run_unary(|x: T| pow_scalar(x, p), src, dst, n, words, off),
            },
            UnaryOp::AddScalar(s) => run_unary(|x: T| x + s, src, dst, n, words, off),
            UnaryOp::MulScalar(s) => run_unary(|x: T| x * s, src, dst, n, words, off),
            UnaryOp::Clamp(lo, hi) => {
                run_unary(|x: T| clamp_scalar(x, lo, hi), src, dst, n, words, off)
            }
        }
    }
}

/// The second operand of a binary kernel.
#[derive(Debug, Clone, Copy)]
pub enum RawRhs<T> {
    /// `n` elements, read where kept.
    Ptr(*const T),
    /// One value for every element.
    Scalar(T),
}

/// Binary op over the kept elements: `dst[i] = op(a[i], b[i])`.
///
/// # Safety
/// The module contract.
pub unsafe fn binary<T: Float>(
    op: BinaryOp,
    a: *const T,
    b: RawRhs<T>,
    dst: *mut T,
    n: usize,
    words: &[u64],
    off: usize,
) {
    match b {
        RawRhs::Scalar(s) => {
            // SAFETY (all arms): forwarded contract.
            unsafe {
                match op {
                    BinaryOp::Add => run_unary(|x: T| x + s, a, dst, n, words, off),
                    BinaryOp::Sub => run_unary(|x: T| x - s, a, dst, n, words, off),
                    BinaryOp::Mul => run_unary(|x: T| x * s, a, dst, n, words, off),
                    BinaryOp::Div => run_unary(|x: T| x / s, a, dst, n, words, off),
                    _ => run_unary(|x: T| binary_scalar(op, x, s), a, dst, n, words, off),
                }
            }
        }
        RawRhs::Ptr(b) => {
            // SAFETY (all arms): forwarded contract.
            unsafe {
                match op {
                    BinaryOp::Add => run_binary(|x: T, y: T| x + y, a, b, dst, n, words, off),
                    BinaryOp::Sub => run_binary(|x: T, y: T| x - y, a, b, dst, n, words, off),
                    BinaryOp::Mul => run_binary(|x: T, y: T| x * y, a, b, dst, n, words, off),
                    BinaryOp::Div => run_binary(|x: T, y: T| x / y, a, b, dst, n, words, off),
                    _ => run_binary(
                        |x: T, y: T| binary_scalar(op, x, y),
                        a,
                        b,
                        dst,
                        n,
                        words,
                        off,
                    ),
                }
            }
        }
    }
}

/// Binary form of [`run_unary`].
///
/// # Safety
/// The module contract.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
#[allow(clippy::too_many_arguments)]
unsafe fn run_binary<T: Float>(
    f: impl Fn(T, T) -> T,
    a: *const T,
    b: *const T,
    dst: *mut T,
    n: usize,
    words: &[u64],
    off: usize,
) {
    let mut i = 0;
    while i < n {
        let bits = chunk_bits(words, off, i, n);
        if bits == u64::MAX {
            for k in 0..64 {
                // SAFETY: a full chunk: i + k < n; a, b, dst valid for n.
                unsafe { *dst.add(i + k) = f(*a.add(i + k), *b.add(i + k)) };
            }
        } else {
            let mut m = bits;
            while m != 0 {
                let k = m.trailing_zeros() as usize;
                m &= m - 1;
                // SAFETY: bits past n are cleared, so i + k < n.
                unsafe { *dst.add(i + k) = f(*a.add(i + k), *b.add(i + k)) };
            }
        }
        i += 64;
    }
}

/// `out[i] = if kept { values[i] } else { fill }` (MaskedTensor's `to_tensor`).
/// Masked-out values are never read.
pub fn select<T: Float>(values: &[T], words: &[u64], off: usize, fill: T, out: &mut [T]) {
    let n = values.len();
    let mut i = 0;
    while i < n {
        let bits = chunk_bits(words, off, i, n);
        let len = (n - i).min(64);
        let full = if len == 64 {
            u64::MAX
        } else {
            (1u64 << len) - 1
        };
        let v = &values[i..i + len];
        let o = &mut out[i..i + len];
        if bits == full {
            o.copy_from_slice(v);
        } else if bits == 0 {
            o.fill(fill);
        } else {
            for k in 0..len {
                o[k] = if (bits >> k) & 1 != 0 { v[k] } else { fill };
            }
        }
        i += 64;
    }
}
