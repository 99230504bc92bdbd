//! aarch64 kernels (call only via `crate::cpu`).
//!
//! NEON (Advanced SIMD) is part of the aarch64 base architecture, so the
//! room's functions need no run-time detection; they are still reached only
//! through the dispatch in `crate::cpu`, after [`crate::cpu::Isa::available`].

pub mod neon;
