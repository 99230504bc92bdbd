//! `avx2` adagrad kernels.
