//! The reference implementations: naive, obviously correct, accumulating in
//! `f64`. They are the oracle every fast path is tested against.

pub mod adagrad;
pub mod elementwise;
pub mod loss;
pub mod reduce;
pub mod softmax;
