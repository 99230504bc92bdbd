//! `avx512` Adagrad: the generic bodies (`generic::adagrad`) over this
//! room's registers ([`super::lanes`]), 16 `f32` or 8 `f64` lanes, with
//! mask registers for the lane masks and masked loads and stores for the
//! tails. Call only through `crate::cpu::adagrad`.

use super::lanes::{Z16, Z8};

crate::cpu::arch::generic::adagrad::adagrad_entries!(
    #[target_feature(enable = "avx512f,avx512dq")]
    Z16,
    Z8
);
