//! `avx2` Adagrad: the generic bodies (`generic::adagrad`) over this room's
//! registers ([`super::lanes`]), 8 `f32` or 4 `f64` lanes. Call only
//! through `crate::cpu::adagrad`.

use super::lanes::{Y4, Y8};

crate::cpu::arch::generic::adagrad::adagrad_entries!(
    #[target_feature(enable = "avx2")]
    Y8,
    Y4
);
