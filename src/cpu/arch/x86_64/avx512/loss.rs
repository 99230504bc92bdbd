//! `avx512` loss kernels.
