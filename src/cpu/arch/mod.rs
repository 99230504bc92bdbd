//! One room per ISA. Nothing here is called except through `crate::cpu`'s
//! dispatch functions.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod generic;
pub mod portable;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;
