//! `avx2` elementwise kernels.
