//! `avx512` elementwise kernels: the generic bodies (`generic::elementwise`)
//! over this room's registers ([`super::lanes`]), 16 `f32` / 8 `f64` lanes,
//! the keep bits used directly as the `k` mask of every load and store.
//! Masked-out lanes are loaded as `0` (zero-masking, which also suppresses
//! faults past the end), computed on harmlessly, and never stored; vectors
//! with no kept lane are skipped.
//!
//! Contract of the raw-pointer entry points: see the portable module.

use super::lanes::{Z16, Z8};

crate::cpu::arch::generic::elementwise::elementwise_entries!(
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    Z16,
    Z8
);
