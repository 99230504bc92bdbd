//! Reference masked elementwise ops: one element at a time, computed in
//! `f64` and rounded once to `T`. The oracle of `crate::cpu::elementwise`.
//!
//! The semantics (PyTorch's) are spelled out once more here, independently
//! of the fast paths: NaN-propagating `maximum`/`minimum` (`b` on ties),
//! `clamp` keeping NaN with `lo > hi` giving `hi`, `pow` as the mathematical
//! power. Results are [`MaskedVec`]s: `0` under every cleared bit.
//!
//! For `+ - * / sqrt`, negation, `abs`, `maximum`, `minimum`, `clamp` and
//! scalar `+`/`*` of `f32` inputs, computing in `f64` and rounding once gives
//! exactly the `f32` IEEE result, so the fast paths must match the reference
//! bit for bit ([`tolerance_ulps`] = 0). `exp`/`log` of `f32` go through
//! [`crate::math`] (within 2 ulp); `pow` is within 2 ulp of the rounded
//! `f64` power (PyTorch's special exponents are evaluated with one or two
//! roundings in `T`).

use crate::array::{BinaryOp, MaskPolicy, UnaryOp};
use crate::element::Float;
use crate::error::{check_len, check_shape, Error, Result};
use crate::mask::Mask;
use crate::view::MaskedVec;

/// One unary op on one value, in `f64`.
pub fn unary_f64(op: UnaryOp<f64>, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Pow(p) => {
            // Where the correctly rounded power has a one-operation
            // expression, use it (libm's `pow` is not correctly rounded).
            if p == 0.5 {
                x.sqrt()
            } else if p == 1.0 {
                x
            } else if p == 2.0 {
                x * x
            } else if p == -1.0 {
                1.0 / x
            } else if p == -0.5 {
                1.0 / x.sqrt()
            } else {
                x.powf(p)
            }
        }
        UnaryOp::AddScalar(s) => x + s,
        UnaryOp::MulScalar(s) => x * s,
        UnaryOp::Clamp(lo, hi) => {
            if x.is_nan() {
                x
            } else {
                let y = if x > lo { x } else { lo };
                if y < hi {
                    y
                } else {
                    hi
                }
            }
        }
    }
}

/// One binary op on one pair, in `f64`.
pub fn binary_f64(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Maximum | BinaryOp::Minimum if a.is_nan() || b.is_nan() => f64::NAN,
        BinaryOp::Maximum => {
            if a > b {
                a
            } else {
                b
            }
        }
        BinaryOp::Minimum => {
            if a < b {
                a
            } else {
                b
            }
        }
    }
}

/// How far (in ulps of `T`) a fast path may be from this reference for
/// `op` (0 = bit for bit; NaN must match NaN).
pub fn tolerance_ulps<T: Float>(op: UnaryOp<T>) -> u64 {
    match op {
        UnaryOp::Exp | UnaryOp::Log => 2,
        UnaryOp::Pow(p) => {
            let p = p.to_f64();
            if p == 0.5 || p == 1.0 || p == 2.0 || p == -1.0 {
                0
            } else {
                2
            }
        }
        _ => 0,
    }
}

fn to64<T: Float>(op: UnaryOp<T>) -> UnaryOp<f64> {
    match op {
        UnaryOp::Neg => UnaryOp::Neg,
        UnaryOp::Abs => UnaryOp::Abs,
        UnaryOp::Sqrt => UnaryOp::Sqrt,
        UnaryOp::Exp => UnaryOp::Exp,
        UnaryOp::Log => UnaryOp::Log,
        UnaryOp::Pow(p) => UnaryOp::Pow(p.to_f64()),
        UnaryOp::AddScalar(s) => UnaryOp::AddScalar(s.to_f64()),
        UnaryOp::MulScalar(s) => UnaryOp::MulScalar(s.to_f64()),
        UnaryOp::Clamp(lo, hi) => UnaryOp::Clamp(lo.to_f64(), hi.to_f64()),
    }
}

/// Reference unary op: kept entries computed, `0` elsewhere.
pub fn unary<T: Float>(op: UnaryOp<T>, values: &[T], mask: &Mask) -> Result<MaskedVec<T>> {
    check_len("mask", values.len(), mask.len())?;
    let op = to64(op);
    let out = (0..values.len())
        .map(|i| {
            if mask.get(i) {
                T::from_f64(unary_f64(op, values[i].to_f64()))
            } else {
                T::ZERO
            }
        })
        .collect();
    Ok(MaskedVec {
        values: out,
        mask: mask.clone(),
    })
}

/// The second operand of [`binary`].
#[derive(Debug, Clone, Copy)]
pub enum RefRhs<'a, T> {
    /// A masked operand of the same shape and the policy combining masks.
    Masked(&'a [T], &'a Mask, MaskPolicy),
    /// Dense, same shape.
    Dense(&'a [T]),
    /// Row vector (`cols`).
    Row(&'a [T]),
    /// Column vector (`rows`).
    Col(&'a [T]),
    /// A scalar.
    Scalar(T),
}

/// Reference binary op on a row-major `rows x cols` masked array `a`.
pub fn binary<T: Float>(
    op: BinaryOp,
    a: &[T],
    amask: &Mask,
    rhs: RefRhs<'_, T>,
    rows: usize,
    cols: usize,
) -> Result<MaskedVec<T>> {
    check_shape("a", rows, cols, a.len())?;
    check_len("mask", a.len(), amask.len())?;
    let n = a.len();
    let keep: Vec<bool> = match rhs {
        RefRhs::Masked(b, bm, policy) => {
            check_len("other", n, b.len())?;
            check_len("other mask", n, bm.len())?;
            if let Some(p) = (0..n).find(|&i| amask.get(i) != bm.get(i)) {
                if policy == MaskPolicy::Match {
                    return Err(Error::MaskMismatch { position: p });
                }
            }
            (0..n).map(|i| amask.get(i) && bm.get(i)).collect()
        }
        RefRhs::Dense(b) => {
            check_len("other", n, b.len())?;
            (0..n).map(|i| amask.get(i)).collect()
        }
        RefRhs::Row(b) => {
            check_len("row", cols, b.len())?;
            (0..n).map(|i| amask.get(i)).collect()
        }
        RefRhs::Col(b) => {
            check_len("col", rows, b.len())?;
            (0..n).map(|i| amask.get(i)).collect()
        }
        RefRhs::Scalar(_) => (0..n).map(|i| amask.get(i)).collect(),
    };
    let bval = |i: usize| -> T {
        match rhs {
            RefRhs::Masked(b, _, _) | RefRhs::Dense(b) => b[i],
            RefRhs::Row(b) => b[i % cols],
            RefRhs::Col(b) => b[i / cols],
            RefRhs::Scalar(s) => s,
        }
    };
    let values = (0..n)
        .map(|i| {
            if keep[i] {
                T::from_f64(binary_f64(op, a[i].to_f64(), bval(i).to_f64()))
            } else {
                T::ZERO
            }
        })
        .collect();
    Ok(MaskedVec {
        values,
        mask: Mask::from_bools(&keep),
    })
}

/// Reference `to_dense(fill)`.
pub fn to_dense<T: Float>(values: &[T], mask: &Mask, fill: T) -> Vec<T> {
    (0..values.len())
        .map(|i| if mask.get(i) { values[i] } else { fill })
        .collect()
}
