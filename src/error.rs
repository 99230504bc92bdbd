//! The crate's error type: every bad input is reported, never panicked on.

use std::fmt;

/// Result alias used by every fallible function in the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in `maskops`.
///
/// Every variant names the offending argument and the numbers involved, so a
/// message is actionable without a debugger. The enum is `#[non_exhaustive]`:
/// match it with a wildcard arm.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// An argument has the wrong number of elements.
    Length {
        /// The argument's name, e.g. `"target"`.
        arg: &'static str,
        /// The length the other arguments imply.
        expected: usize,
        /// The length that was passed.
        actual: usize,
    },
    /// A `rows x cols` shape does not match the data (`rows * cols != len`,
    /// or the product overflows).
    Shape {
        /// The argument's name.
        arg: &'static str,
        /// Rows asked for.
        rows: usize,
        /// Columns asked for.
        cols: usize,
        /// Elements present.
        len: usize,
    },
    /// `dim` is not a dimension of the input.
    Dim {
        /// The `dim` that was passed.
        dim: usize,
        /// The number of dimensions of the input.
        ndim: usize,
    },
    /// A cross-entropy target outside `[0, classes)` that is not the ignore index.
    Target {
        /// The row (sample) holding the target.
        row: usize,
        /// The offending target value.
        value: i64,
        /// The number of classes.
        classes: usize,
        /// The ignore index in force.
        ignore_index: i64,
    },
    /// A sparse index out of range.
    Index {
        /// Which index array, e.g. `"row_indices"` or `"col"`.
        arg: &'static str,
        /// The offending index.
        index: usize,
        /// Its position in the gradient (0-based entry number).
        position: usize,
        /// The exclusive bound it must stay below.
        bound: usize,
    },
    /// A hyper-parameter or scalar argument out of its domain (NaN, infinite,
    /// negative, outside an interval).
    Param {
        /// The parameter's name, e.g. `"lr"`.
        name: &'static str,
        /// The value that was passed.
        value: f64,
        /// What it must be, e.g. `"finite and >= 0"`.
        expected: &'static str,
    },
    /// Two masked operands whose masks differ, under the matching-masks rule.
    MaskMismatch {
        /// The first position where the masks differ.
        position: usize,
    },
    /// Bits set past the length of a mask built from raw words.
    TailBits {
        /// The mask length.
        len: usize,
        /// The index of the first set bit at or past `len`.
        bit: usize,
    },
    /// A saved optimizer state that cannot be loaded (another format
    /// version, optimizer, element type or length, or cut short).
    State {
        /// What does not match, with the numbers.
        reason: String,
    },
    /// A form of input this operation does not take.
    Unsupported {
        /// What was passed, e.g. `"Gradient::Coo"`.
        what: &'static str,
        /// What refused it, and what it takes.
        by: &'static str,
    },
    /// A mask shape that does not broadcast against an array's shape (a
    /// mask dimension must equal the array's or be 1).
    Broadcast {
        /// The dimension (of the array) where the shapes clash.
        dim: usize,
        /// The mask's size there.
        mask: usize,
        /// The array's size there.
        array: usize,
    },
    /// A global row id that a table shard does not own.
    NotOwned {
        /// Which id array, e.g. `"row_indices"`.
        arg: &'static str,
        /// The offending global id.
        index: usize,
        /// Its position in the array.
        position: usize,
        /// What the shard owns, e.g. `"rows [100, 200)"`.
        owned: String,
    },
    /// Another rank of a collective refused its input (or its layout
    /// differs), so every rank returned this error and nothing changed on
    /// any of them; that rank returned the error itself.
    Peer {
        /// The first rank that refused.
        rank: usize,
        /// What it reported, in words.
        reason: String,
    },
    /// An MPI call failed (feature `mpi`): the call and MPI's message.
    Mpi(String),
    /// The CUDA driver or NVRTC is not available on this machine.
    CudaUnavailable(String),
    /// A CUDA driver / NVRTC call failed.
    Cuda(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Length {
                arg,
                expected,
                actual,
            } => write!(
                f,
                "`{arg}` has length {actual}, expected {expected}"
            ),
            Error::Shape {
                arg,
                rows,
                cols,
                len,
            } => match rows.checked_mul(*cols) {
                None => write!(
                    f,
                    "`{arg}`: shape {rows} x {cols} (more elements than usize can count) does not match {len} elements"
                ),
                Some(_) => write!(
                    f,
                    "`{arg}`: shape {rows} x {cols} does not match {len} elements"
                ),
            },
            Error::Dim { dim, ndim } => write!(
                f,
                "`dim` = {dim} is out of range for a {ndim}-dimensional input"
            ),
            Error::Target {
                row,
                value,
                classes,
                ignore_index,
            } => write!(
                f,
                "`targets`[{row}] = {value} is out of range [0, {classes}) and is not the ignore_index {ignore_index}"
            ),
            Error::Index {
                arg,
                index,
                position,
                bound,
            } => write!(
                f,
                "`{arg}`[{position}] = {index} is not in [0, {bound})"
            ),
            Error::Param {
                name,
                value,
                expected,
            } => write!(f, "`{name}` = {value}: must be {expected}"),
            Error::MaskMismatch { position } => write!(
                f,
                "masks differ at position {position} (use MaskPolicy::Intersect for NumPy's semantics)"
            ),
            Error::TailBits { len, bit } => write!(
                f,
                "`words` has bit {bit} set, past the mask length {len}"
            ),
            Error::State { reason } => write!(f, "cannot load the optimizer state: {reason}"),
            Error::Unsupported { what, by } => write!(f, "{what} is not supported by {by}"),
            Error::Broadcast { dim, mask, array } => write!(
                f,
                "`mask_shape` does not broadcast: dimension {dim} is {mask} in the mask and {array} in the array (must be equal or 1)"
            ),
            Error::NotOwned {
                arg,
                index,
                position,
                owned,
            } => write!(
                f,
                "`{arg}`[{position}] = {index} is not owned by this shard ({owned})"
            ),
            Error::Peer { rank, reason } => write!(
                f,
                "rank {rank} refused the collective step ({reason}); nothing was changed on any rank"
            ),
            Error::Mpi(why) => write!(f, "MPI error: {why}"),
            Error::CudaUnavailable(why) => write!(f, "CUDA is unavailable: {why}"),
            Error::Cuda(why) => write!(f, "CUDA error: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Checks `actual == expected` for the argument `arg`.
pub(crate) fn check_len(arg: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::Length {
            arg,
            expected,
            actual,
        })
    }
}

/// Checks that `rows * cols == len` without overflow.
pub(crate) fn check_shape(arg: &'static str, rows: usize, cols: usize, len: usize) -> Result<()> {
    match rows.checked_mul(cols) {
        Some(n) if n == len => Ok(()),
        _ => Err(Error::Shape {
            arg,
            rows,
            cols,
            len,
        }),
    }
}

/// Checks that a hyper-parameter is finite and `>= 0`.
#[allow(dead_code)]
pub(crate) fn check_nonneg(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::Param {
            name,
            value,
            expected: "finite and >= 0",
        })
    }
}

/// Checks that a hyper-parameter is finite.
#[allow(dead_code)]
pub(crate) fn check_finite(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::Param {
            name,
            value,
            expected: "finite",
        })
    }
}
