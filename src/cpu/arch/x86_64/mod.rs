//! x86-64 kernels (`#[target_feature]` functions; call only via `crate::cpu`).

/// Generates a room's row-sparse Adagrad step `$rows` for element type `$t`
/// from the room's one-row update `$row`, under the room's attributes
/// (`#[target_feature]`): the shared driver
/// (`portable::adagrad::rows_driver`) inlined into the ISA function, with
/// the gradient rows prefetched a short distance ahead (they come from
/// cache).
macro_rules! adagrad_rows_entry {
    ($(#[$attr:meta])* $t:ty, $rows:ident, $row:ident) => {
        /// A row-sparse step over sorted items (see `GroupedRows`): the
        /// shared driver (`portable::adagrad::rows_driver`) with this room's
        /// row update, compiled for this ISA.
        ///
        /// # Safety
        /// The CPU must support the ISA; `sum.len() >= param.len()`;
        /// `g.cols > 0`, `g.key_shift < 64`; every key
        /// `g.items[k] >> g.key_shift` in `g.base .. g.base + param.len() /
        /// g.cols`; every
        /// `((g.items[k] & g.pos_mask) + 1) * g.cols <= g.values.len()`.
        $(#[$attr])*
        pub unsafe fn $rows(
            param: &mut [$t],
            sum: &mut [$t],
            g: &$crate::cpu::arch::portable::adagrad::GroupedRows<'_, $t>,
        ) {
            let $crate::cpu::arch::portable::adagrad::GroupedRows {
                cols,
                values,
                pos_mask,
                h,
                ..
            } = *g;
            $crate::cpu::arch::portable::adagrad::rows_driver(
                param,
                sum,
                g,
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
                |p, s, it| unsafe { $row(p, s, values, it, pos_mask, &h) },
            );
        }
    };
}
pub(crate) use adagrad_rows_entry;

pub mod avx2;
pub mod avx512;
pub(crate) mod ew_ops;
