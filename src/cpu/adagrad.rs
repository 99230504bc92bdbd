//! Adagrad dispatch: the one place that calls the `#[target_feature]`
//! Adagrad kernels of the rooms under `arch/`.
//!
//! Every function checks that `isa` is available and falls back to the best
//! available ISA below it (so a caller cannot reach an unsupported
//! instruction); all ISAs give the same bits.

use super::Isa;
use crate::cpu::arch::portable::adagrad as portable;
pub use crate::cpu::arch::portable::adagrad::{GroupedRows, Hp};

macro_rules! dispatch {
    ($t:ty, $dense:ident, $masked:ident, $rows:ident) => {
        /// Dense update of `p`, `s` by `g` (all the same length).
        pub fn $dense(isa: Isa, p: &mut [$t], s: &mut [$t], g: &[$t], h: &Hp<$t>) {
            assert!(
                s.len() == p.len() && g.len() == p.len(),
                "adagrad dense: length mismatch"
            );
            match isa.clamp_available() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX-512 F/DQ checked by `clamp_available`; lengths asserted.
                Isa::Avx512 => unsafe { super::arch::x86_64::avx512::adagrad::$dense(p, s, g, h) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX2 checked by `clamp_available`; lengths asserted.
                Isa::Avx2 => unsafe { super::arch::x86_64::avx2::adagrad::$dense(p, s, g, h) },
                #[cfg(target_arch = "aarch64")]
                // SAFETY: NEON is part of every aarch64 CPU; lengths asserted.
                Isa::Neon => unsafe { super::arch::aarch64::neon::adagrad::$dense(p, s, g, h) },
                _ => portable::dense(p, s, g, h),
            }
        }

        /// Masked update: element `i` of `p`/`s` is updated iff bit `i` of
        /// `words` (LSB-first) is set.
        pub fn $masked(isa: Isa, p: &mut [$t], s: &mut [$t], g: &[$t], words: &[u64], h: &Hp<$t>) {
            assert!(
                s.len() == p.len() && g.len() == p.len() && words.len() * 64 >= p.len(),
                "adagrad masked: length mismatch"
            );
            match isa.clamp_available() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX-512 F/DQ checked; lengths asserted.
                Isa::Avx512 => unsafe {
                    super::arch::x86_64::avx512::adagrad::$masked(p, s, g, words, h)
                },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX2 checked; lengths asserted.
                Isa::Avx2 => unsafe {
                    super::arch::x86_64::avx2::adagrad::$masked(p, s, g, words, h)
                },
                #[cfg(target_arch = "aarch64")]
                // SAFETY: NEON is part of every aarch64 CPU; lengths asserted.
                Isa::Neon => unsafe {
                    super::arch::aarch64::neon::adagrad::$masked(p, s, g, words, h)
                },
                _ => portable::masked(p, s, g, words, h),
            }
        }

        /// A row-sparse step over `g.items` sorted by key (see
        /// [`GroupedRows`]): for each run of equal keys, row `key - base` of
        /// `param`/`sum` (`cols` wide) gets the update with the sum, in
        /// order, of the `values` rows `item & pos_mask`. Rows `pf` entries
        /// ahead are prefetched.
        pub fn $rows(isa: Isa, param: &mut [$t], sum: &mut [$t], g: &GroupedRows<'_, $t>) {
            let GroupedRows {
                cols,
                base,
                values,
                items,
                key_shift,
                pos_mask,
                ..
            } = *g;
            assert!(
                cols > 0 && sum.len() == param.len() && param.len() % cols == 0 && key_shift < 64,
                "adagrad rows: bad arguments"
            );
            let (nrows, vrows) = (param.len() / cols, values.len() / cols);
            assert!(
                items.iter().all(|&it| {
                    let k = (it >> key_shift) as usize;
                    k >= base && k - base < nrows && ((it & pos_mask) as usize) < vrows
                }),
                "adagrad rows: key or position out of range"
            );
            match isa.clamp_available() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX-512 F/DQ checked; arguments asserted above.
                Isa::Avx512 => unsafe {
                    super::arch::x86_64::avx512::adagrad::$rows(param, sum, g)
                },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX2 checked; arguments asserted above.
                Isa::Avx2 => unsafe { super::arch::x86_64::avx2::adagrad::$rows(param, sum, g) },
                #[cfg(target_arch = "aarch64")]
                // SAFETY: NEON is part of every aarch64 CPU; arguments asserted above.
                Isa::Neon => unsafe { super::arch::aarch64::neon::adagrad::$rows(param, sum, g) },
                _ => portable::rows(param, sum, g),
            }
        }
    };
}

dispatch!(f32, dense_f32, masked_f32, rows_f32);
dispatch!(f64, dense_f64, masked_f64, rows_f64);

/// Hints the CPU to fetch the cache line holding `ptr` (no-op off x86-64).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub fn prefetch<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint and never faults, whatever the
    // address; SSE is part of the x86-64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch(ptr as *const i8, core::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Hints the CPU to fetch the `bytes` bytes at `ptr`, one [`prefetch`] per
/// 64-byte line from `ptr` on (a hint: never faults, whatever the address).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub(crate) fn prefetch_bytes<T>(ptr: *const T, bytes: usize) {
    let p = ptr as *const u8;
    let mut off = 0;
    while off < bytes {
        prefetch(p.wrapping_add(off));
        off += 64;
    }
}
