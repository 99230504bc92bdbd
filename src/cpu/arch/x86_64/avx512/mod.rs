//! Kernels for the `avx512` room, one file per family.

pub mod adagrad;
pub mod elementwise;
pub mod lanes;
pub mod loss;
pub mod reduce;
