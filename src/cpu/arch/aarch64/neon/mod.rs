//! Kernels for the `neon` room: the reduce engine (whole and per-dim
//! reductions, softmax and its backward) and Adagrad have NEON lanes; the
//! losses and the elementwise ops run the `portable` room on aarch64.

pub mod adagrad;
pub mod reduce;
