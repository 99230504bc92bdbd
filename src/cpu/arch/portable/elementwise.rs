//! `portable` elementwise kernels.
