//! `neon` Adagrad: the generic bodies (`generic::adagrad`) over this room's
//! registers ([`super::lanes`]), 4 `f32` or 2 `f64` lanes per q register.
//! Call only through `crate::cpu::adagrad`.

use super::lanes::{Q2, Q4};

crate::cpu::arch::generic::adagrad::adagrad_entries!(
    #[target_feature(enable = "neon")]
    Q4,
    Q2
);
