//! `avx2` elementwise kernels: the generic bodies (`generic::elementwise`)
//! over this room's registers ([`super::lanes`]), 8 `f32` / 4 `f64` lanes.
//! Every whole vector of a chunk with a kept bit is handled without
//! branching on its lanes: masked-out input lanes are zeroed by an AND
//! before any arithmetic, and the result is blended with the destination's
//! current value and stored whole; a vector reaching past the end goes
//! through `vmaskmovps`/`vmaskmovpd`, which touches kept lanes only.
//!
//! Contract of the raw-pointer entry points: see the portable module.

use super::lanes::{Y4, Y8};

crate::cpu::arch::generic::elementwise::elementwise_entries!(
    #[target_feature(enable = "avx2,fma")]
    Y8,
    Y4
);
