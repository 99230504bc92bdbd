//! `portable` adagrad kernels.
