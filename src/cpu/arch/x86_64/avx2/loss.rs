//! `avx2` loss kernels (`f32`): the generic bodies (`generic::loss`) over
//! this room's registers ([`super::lanes`]). The 32 canonical lanes live in
//! four `__m256` registers (lanes 0–7, 8–15, 16–23, 24–31); mask bits are
//! expanded to lane masks and select by AND (a masked-out lane adds `+0`,
//! which leaves an accumulator that started at `+0` bit-for-bit unchanged,
//! and its gradient is `+0`).
//!
//! Call only through `crate::cpu::loss` after checking `Isa::Avx2`.

use super::lanes::Y8;

crate::cpu::arch::generic::loss::loss_entries!(
    #[target_feature(enable = "avx2")]
    Y8
);
