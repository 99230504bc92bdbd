//! `neon` elementwise kernels: the generic bodies (`generic::elementwise`)
//! over this room's registers ([`super::lanes`]), 4 `f32` / 2 `f64` lanes.
//! Every whole vector of a chunk with a kept bit is handled without
//! branching on its lanes: masked-out input lanes are zeroed by an AND
//! before any arithmetic, and the result is merged (`bsl`) into the
//! destination's current value and stored whole; a vector reaching past
//! the end moves its kept lanes one by one (NEON has no masked loads).
//!
//! Contract of the raw-pointer entry points: see the portable module.

use super::lanes::{Q2, Q4};

crate::cpu::arch::generic::elementwise::elementwise_entries!(
    #[target_feature(enable = "neon")]
    Q4,
    Q2
);
