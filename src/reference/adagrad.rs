//! Reference adagrad.
