//! x86-64 kernels (`#[target_feature]` functions; call only via `crate::cpu`).

/// Generates a room's row-sparse Adagrad step `$rows` for element type `$t`
/// from the room's one-row update `$row`, under the room's attributes
/// (`#[target_feature]`): the shared driver
/// (`portable::adagrad::rows_driver`) inlined into the ISA function, with
/// the gradient rows prefetched a short distance ahead (they come from
/// cache).
macro_rules! adagrad_rows_entry {
    ($(#[$attr:meta])* $t:ty, $rows:ident, $row:ident) => {
        /// A row-sparse step over sorted items: the shared driver
        /// (`portable::adagrad::rows_driver`) with this room's row update,
        /// compiled for this ISA.
        ///
        /// # Safety
        /// The CPU must support the ISA; `sum.len() >= param.len()`, `cols >
        /// 0`, `key_shift < 64`; every key `items[k] >> key_shift` in `base ..
        /// base + param.len() / cols`; every `((items[k] & pos_mask) + 1) *
        /// cols <= values.len()`.
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        pub unsafe fn $rows(
            param: &mut [$t],
            sum: &mut [$t],
            cols: usize,
            base: usize,
            values: &[$t],
            items: &[u64],
            key_shift: u32,
            pos_mask: u64,
            h: &$crate::cpu::arch::portable::adagrad::Hp<$t>,
            pf: usize,
        ) {
            $crate::cpu::arch::portable::adagrad::rows_driver(
                param,
                sum,
                cols,
                base,
                items,
                key_shift,
                pf,
                // gradient rows: a short distance (they come from cache)
                2,
                |it| {
                    $crate::cpu::adagrad::prefetch_bytes(
                        values.as_ptr().wrapping_add((it & pos_mask) as usize * cols),
                        cols * core::mem::size_of::<$t>(),
                    )
                },
                // SAFETY: the row slices are `cols` long; every position is
                // in range by the caller's contract.
                |p, s, it| unsafe { $row(p, s, values, it, pos_mask, h) },
            );
        }
    };
}
pub(crate) use adagrad_rows_entry;

pub mod avx2;
pub mod avx512;
pub(crate) mod ew_ops;
