//! # maskops
//!
//! Kernels driven by bit-packed masks, for Rust training and optimizer code:
//! masked reductions and softmax ([`MaskedView`]), masked losses with their
//! gradients ([`loss`]), and a masked / sparse Adagrad ([`optim`]).
//!
//! Conventions (DESIGN.md):
//! - A [`Mask`] is 1 bit per element in `u64` words, LSB-first, **bit = 1
//!   keeps** (Arrow's validity bitmap on little-endian). To compute on the
//!   masked-*out* entries (a loss on what was hidden), pass `mask.not()`.
//! - Matrices are row-major `[rows, cols]`; `dim = 1` reduces over columns
//!   (one result per row), `dim = 0` over rows, as in PyTorch.
//! - Nothing kept gives `None` or a cleared output bit, never NaN; masked-out
//!   NaN/inf never leaks into a result.
//! - Bad input gives `Err(`[`Error`]`)` naming the argument and the numbers.
//! - Sums follow one [`canonical`] order, so every fast path returns the same
//!   bits on every ISA and thread count.
//!
//! ```
//! use maskops::{Mask, MaskedView};
//! let x = [1.0f32, f32::NAN, 3.0, 5.0];
//! let m = Mask::not_nan(&x);
//! let v = MaskedView::new(&x, &m).unwrap();
//! assert_eq!(v.mean(), Some(3.0));
//! assert_eq!(v.amax(), Some(5.0));
//! ```
#![warn(missing_docs)]

pub mod backend;
pub mod canonical;
mod cpu;
pub mod element;
mod entry;
pub mod error;
pub mod mask;
pub mod math;
pub mod reference;
pub mod view;

pub use element::{Element, Float};
pub use error::{Error, Result};
pub use mask::{Mask, MaskBuilder};
pub use view::{MaskedVec, MaskedView};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

// --- reductions & softmax (reduce helper) ---
pub mod softmax;

// --- losses (loss helper) ---
pub mod loss;

// --- optimizer (adagrad helper) ---
pub mod optim;

// --- masked arithmetic (array helper) ---
pub mod array;
pub use array::{BinaryOp, MaskPolicy, MaskedArray, Operand, UnaryOp};

// --- cuda (cuda helper) ---
#[cfg(any(feature = "cuda", feature = "cuda-emulator"))]
pub mod cuda;
