//! Kernels for the `neon` room. Only the reduce engine (whole and per-dim
//! reductions, softmax and its backward) has NEON lanes so far; the losses,
//! the elementwise ops and Adagrad run the `portable` room on aarch64.

pub mod reduce;
