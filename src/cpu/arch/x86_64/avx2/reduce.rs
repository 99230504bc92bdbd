//! `avx2` reduce kernels.
