//! `avx2` loss kernels.
