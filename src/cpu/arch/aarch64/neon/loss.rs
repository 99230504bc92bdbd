//! `neon` loss kernels (`f32`): the generic bodies (`generic::loss`) over
//! this room's registers ([`super::lanes`]). The 32 canonical lanes live in
//! eight `float32x4_t` registers (lanes 0–3, 4–7, …, 28–31); mask bits are
//! expanded to lane masks by `cmtst` and select by AND (a masked-out lane
//! adds `+0`, which leaves an accumulator that started at `+0` bit-for-bit
//! unchanged, and its gradient is `+0`). `f64` and the ECS rows forward to
//! the portable kernels, compiled here.
//!
//! Call only through `crate::cpu::loss` after checking `Isa::Neon`.

use super::lanes::Q4;

crate::cpu::arch::generic::loss::loss_entries!(
    #[target_feature(enable = "neon")]
    Q4
);
