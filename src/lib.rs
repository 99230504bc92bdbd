//! # maskops
//!
//! Kernels driven by bit-packed masks. See the README for the overview.
#![warn(missing_docs)]

pub mod canonical;
pub mod cpu;
pub mod element;
pub mod error;
pub mod mask;
pub mod math;
pub mod reference;
pub mod view;

pub use element::{Element, Float};
pub use error::{Error, Result};
pub use mask::{Mask, MaskBuilder};
pub use view::{MaskedVec, MaskedView};

// --- reductions & softmax (reduce helper) ---
pub mod softmax;

// --- losses (loss helper) ---

// --- optimizer (adagrad helper) ---

// --- masked arithmetic (array helper) ---

// --- cuda (cuda helper) ---
