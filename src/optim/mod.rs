//! Optimizers: PyTorch-exact Adagrad for dense, masked and sparse gradients,
//! and FBGEMM's row-wise Adagrad for embedding tables ([`RowwiseAdagrad`]).
//!
//! # Update rule (PyTorch's `torch.optim.Adagrad`)
//!
//! For every entry the gradient specifies, with `step` advanced once per call
//! (even by an empty gradient):
//!
//! ```text
//! clr  = lr / (1 + (step - 1) * lr_decay)        (computed in f64)
//! g    = maximize ? -g : g
//! g    = g + weight_decay * p                    (only if weight_decay != 0)
//! sum  = sum + g * g
//! p    = p - (clr * g) / (sqrt(sum) + eps)
//! ```
//!
//! The fast paths evaluate exactly these IEEE operations, in this order, in
//! the state type (`f32` for `f32`/`f16`/`bf16` parameters, `f64` for `f64`),
//! with no FMA: every ISA and every thread count gives the same bits. The
//! hyper-parameters are rounded to the state type once (as PyTorch does with
//! its scalar arguments).
//!
//! # Gradient forms
//!
//! * [`Adagrad::step_dense`]: a dense gradient, every entry updated.
//! * [`Adagrad::step_masked`]: a dense gradient with a bit-packed mask; only
//!   kept entries are updated (masked-out gradient values, NaN included, are
//!   never read into arithmetic). Equal to the sparse form with the same
//!   entries, as in the MaskedTensor Adagrad example.
//! * [`Adagrad::step_sparse`] (`sprs::TriMat`), [`Adagrad::step_coo`] (raw COO
//!   arrays), [`Adagrad::step_sparse_vec`] (`sprs::CsVec`): duplicates are
//!   **summed before** the non-linear update, like PyTorch's `coalesce()`,
//!   in order of appearance, so results are deterministic.
//! * [`Adagrad::step_rows`]: the row-sparse gradient of an embedding lookup
//!   (`values` is `row_indices.len() x cols`, duplicate rows summed).
//!
//! **Embedding tables**: use [`Adagrad::step_rows`] (or [`Gradient::Rows`]):
//! it takes the row ids and gradient rows of the lookup as they are, while
//! [`Adagrad::step_sparse`] needs a `TriMat` built per step and coalesces
//! entry by entry (about 4x more time per gradient entry in
//! `examples/embedding.rs`, the TriMat build not counted; the same bits).
//!
//! # In a training loop
//!
//! [`Optimizer`] is what a loop holds: [`AdagradOptimizer`] and
//! [`RowwiseOptimizer`] own their state and workspace (no ISA argument, no
//! allocation per step once warm), take any [`Gradient`] form, expose the
//! learning rate for schedules and save / load their state bit for bit
//! (a versioned format; `Err` on another version, element type or length).
//! [`clip_grad_norm`] clips by the global norm over the kept entries before
//! the step.
//!
//! **Weight decay on sparse gradients**: PyTorch refuses `weight_decay != 0`
//! with sparse gradients; here it decays only the entries the gradient touches
//! (for the masked form: only kept entries), which is the masked semantics.
//!
//! # Validation
//!
//! Every argument is checked before anything is written: shapes, the state
//! length, every sparse index (an out-of-range index gives [`Error::Index`](crate::Error::Index)
//! with the index, its position in the gradient and the bound) and the
//! hyper-parameters (finite and `>= 0`). A failed step leaves the parameters,
//! the accumulator and the step counter exactly as they were.
//!
//! # Speed and determinism
//!
//! * Dense and masked steps run the SIMD kernels of the CPU backend
//!   (AVX-512, AVX2, portable; `f32` and `f64`, half types through the
//!   portable path), in parallel over 64-aligned chunks with rayon when the
//!   step is large (see [`Workspace::parallel_min`]).
//! * Sparse steps coalesce duplicates in linear time (scratch kept in a
//!   [`Workspace`] so a steady-state loop allocates nothing; the plain
//!   methods keep one per thread). `step_rows` sorts the rows with a stable
//!   LSD radix sort and updates each unique row with the SIMD row kernel
//!   (the loop over rows inside the kernel, rows prefetched ahead).
//!   `step_sparse`, `step_coo`, `step_sparse_vec` group the entries into
//!   buckets of consecutive indices with one counting scatter (for COO
//!   gradients the index check runs in the same pass), sum each bucket's duplicates in a
//!   direct-addressed table, and update the unique elements in batches with
//!   the SIMD dense kernel, prefetching ahead. Both run in parallel over
//!   disjoint index ranges. Untouched rows and elements are never read.
//! * Every path performs the same IEEE operations in the same order (no FMA),
//!   and each duplicate sum is done by one thread in order of appearance, so
//!   the result is the same bit for bit on every ISA and thread count (the
//!   `*_with(isa, workspace, ..)` methods pick the ISA; tests compare with
//!   `==`). For `f64` parameters it equals [`crate::reference::adagrad`].
//!
//! ```
//! use maskops::optim::Adagrad;
//! let opt = Adagrad { lr: 0.1, ..Default::default() };
//! let mut param = vec![1.0f32, 2.0, 3.0];
//! let mut state = opt.state(param.len());
//! opt.step_dense(&mut param, &[0.5, 0.0, -1.0], &mut state).unwrap();
//! assert_eq!(state.step, 1);
//! assert!((param[0] - 0.9).abs() < 1e-6);
//! assert_eq!(param[1], 2.0);
//! ```

mod adagrad;
mod element;
mod engine;
mod optimizer;
mod rowwise;
pub(crate) mod validate;
mod workspace;

pub use adagrad::{Adagrad, AdagradState};
pub use element::AdagradElement;
pub use optimizer::{
    clip_grad_norm, AdagradOptimizer, ClipGrad, Gradient, Optimizer, RowwiseOptimizer,
};
pub use rowwise::RowwiseAdagrad;
pub use workspace::{Workspace, DEFAULT_PARALLEL_MIN};
