//! Kernels for the `neon` room: every family has NEON lanes. The reduce
//! engine (reductions whole and per dim, softmax and its backward) has its
//! 32-lane types in [`reduce`]; the losses, the elementwise ops and Adagrad
//! run the generic bodies over the one-register types of [`lanes`].

pub mod adagrad;
pub mod elementwise;
pub mod lanes;
pub mod loss;
pub mod reduce;
