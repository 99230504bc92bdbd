//! `portable` reduce kernels.
