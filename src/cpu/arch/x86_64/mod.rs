//! x86-64 kernels (`#[target_feature]` functions; call only via `crate::cpu`).

pub mod avx2;
pub mod avx512;
