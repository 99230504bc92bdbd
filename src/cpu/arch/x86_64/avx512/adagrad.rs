//! `avx512` adagrad kernels.
