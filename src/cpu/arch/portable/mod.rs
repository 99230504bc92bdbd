//! Kernels for the `portable` room, one file per family.

pub mod adagrad;
pub mod elementwise;
pub mod loss;
pub mod reduce;
