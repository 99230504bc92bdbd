//! `avx512` loss kernels (`f32`): the generic bodies (`generic::loss`) over
//! this room's registers ([`super::lanes`]). The 32 canonical lanes live in
//! two `__m512` registers (lanes 0–15 and 16–31); a mask bit selects
//! through the AVX-512 `k` registers directly (a masked add: a masked-out
//! lane is never added; a zero-masking move: its gradient is 0).
//!
//! Call only through `crate::cpu::loss` after checking `Isa::Avx512`.

use super::lanes::Z16;

crate::cpu::arch::generic::loss::loss_entries!(
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
    Z16
);
