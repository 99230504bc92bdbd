//! `avx512` reduce kernels.
