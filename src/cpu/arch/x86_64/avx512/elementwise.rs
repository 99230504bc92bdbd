//! `avx512` elementwise kernels.
