//! `portable` loss kernels.
