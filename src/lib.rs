//! # maskops
//!
//! Kernels driven by bit-packed masks, for Rust training and optimizer code:
//! masked reductions and softmax, masked losses with their gradients, masked
//! elementwise arithmetic and a masked / sparse Adagrad. Every result is
//! exact in one sense: sums follow one canonical order, so each fast path
//! (AVX-512, AVX2, portable, any thread count, the CUDA kernels) returns the
//! same bits; and nothing under a cleared mask bit (NaN, infinity, garbage)
//! ever reaches a result.
//!
//! ## Families
//!
//! | what | where |
//! |---|---|
//! | masks: constructors (`ones`, `from_bools`, `from_words`, `from_labels`, `not_nan`, `padding`, `random`), `!`, `&`, `\|` | [`Mask`], [`MaskBuilder`] (row, column and random masks ANDed), [`mask`] |
//! | masked reductions (`sum mean prod amin amax argmin argmax var std norm logsumexp`, whole or per row / column) and softmax | [`MaskedView`], [`MaskedVec`], [`softmax`] (backward) |
//! | the same along any dimension of an N-d array, with a NumPy-broadcast mask (attention scores `[B, H, T, T]` with a `[B, 1, 1, T]` key padding mask) | [`nd::NdView`] |
//! | masked elementwise arithmetic with MaskedTensor's semantics | [`MaskedArray`], [`MaskPolicy`] |
//! | losses with their gradients (`mse l1 huber smooth_l1 bce_with_logits cross_entropy ecs pearson`; cross-entropy with a padding row mask) | [`loss`] |
//! | Adagrad on dense, masked, sparse COO (`sprs::TriMat`, `CsVec`) and row-sparse gradients; row-wise Adagrad | [`optim`] |
//! | row-sharded tables: owners, the partition of a gradient for an all-to-all, the merge, shard steps with global ids, bit-identical to one process; over MPI with feature `mpi` | [`shard`], `dist` |
//! | the naive `f64` oracle of every op | [`reference`](mod@reference) |
//! | the canonical summation order; deterministic `exp` / `ln` | [`canonical`], [`math`] |
//! | which CPU instruction set runs, and from which size work is split over threads | [`backend`] |
//!
//! For an embedding table, train with
//! [`Adagrad::step_rows`](optim::Adagrad::step_rows) (the looked-up row ids
//! and one gradient row per lookup): it is the fastest sparse form and needs
//! no `sprs` matrix. [`Adagrad::step_sparse`](optim::Adagrad::step_sparse)
//! takes any COO gradient.
//!
//! ## Conventions
//!
//! The design document, `docs/design.md` in the repository, gives them in
//! full, with the public API contract and how the CUDA kernels are checked
//! without a GPU. In short:
//!
//! - A [`Mask`] is 1 bit per element in `u64` words, LSB-first, **bit = 1
//!   keeps** (Arrow's validity bitmap on little-endian). PyTorch's padding
//!   masks (`src_key_padding_mask`) use `true` for *padded*: convert with
//!   `!mask`. To compute on the masked-*out* entries (a loss on what was
//!   hidden), pass `!mask` too.
//! - Matrices are row-major `[rows, cols]`; `dim = 1` reduces over columns
//!   (one result per row), `dim = 0` over rows, as in PyTorch.
//! - Nothing kept gives `None` or a cleared output bit, never NaN; masked-out
//!   NaN/inf never leaks into a result.
//! - Bad input gives `Err(`[`Error`]`)` naming the argument and the numbers.
//! - Sums follow one [`canonical`] order, so every fast path returns the same
//!   bits on every ISA and thread count.
//!
//! ```
//! use maskops::{Mask, MaskedView};
//! let x = [1.0f32, f32::NAN, 3.0, 5.0];
//! let m = Mask::not_nan(&x);
//! let v = MaskedView::new(&x, &m).unwrap();
//! assert_eq!(v.mean(), Some(3.0));
//! assert_eq!(v.amax(), Some(5.0));
//! ```
//!
//! ## CPU backend
//!
//! The instruction set (AVX-512, AVX2, NEON on aarch64, or portable) is
//! detected once; the environment variable
//! `MASKOPS_ISA=portable|neon|avx2|avx512` lowers it for the
//! process, and [`backend::with_isa`] forces one for a closure. Large inputs
//! are split over rayon's global pool from the sizes in
//! [`backend::Threshold`]. None of this changes a result.
//!
//! ## Cargo features
//!
//! None is on by default; the default build needs no CUDA and no C++
//! compiler.
//!
//! - **`cuda`**: the kernels on NVIDIA GPUs through cudarc and NVRTC — the
//!   `cuda` module (`Gpu`, device buffers, masks uploaded once as `u64`
//!   words, reductions, softmax, losses and Adagrad on the device). Nothing
//!   CUDA is needed to build: the driver and NVRTC are loaded at run time,
//!   and without them `Gpu::new` returns [`Error::CudaUnavailable`].
//! - **`cuda-emulator`**: runs the same `.cu` kernels on the host, under an
//!   emulation of the CUDA execution model, with the launch plans the device
//!   path computes — for testing the kernels without a GPU. Needs a C++20
//!   compiler; brings the `cuda` module's launch plans and
//!   `cuda::emu::Emulator`.
//! - **`ndarray`**: masked views of ndarray arrays without a copy
//!   (`MaskedView::from_array1`, `from_array2`, `nd::NdView::from_array`;
//!   row-major contiguous arrays, other layouts are refused) and results
//!   back as arrays (`MaskedVec::to_array`); re-exports `ndarray`. It is the
//!   ndarray that `sprs` already builds.
//! - **`mpi`**: `dist::Exchange`, a sharded table's lookups and collective
//!   Adagrad steps over `MPI_Alltoallv` (rsmpi, re-exported as
//!   `maskops::mpi`); needs an MPI library (Open MPI, MPICH) and libclang
//!   at build time.
//! - **`arrow`**: a [`Mask`] from an Arrow validity bitmap (arrow-buffer's
//!   `BooleanBuffer` or `NullBuffer`, valid = kept) and back, sharing the
//!   bits without a copy when they start on a 64-bit word (the common case
//!   of an unsliced array); re-exports `arrow_buffer`.
//!
//!   ```
//!   # #[cfg(feature = "arrow")] {
//!   use maskops::arrow_buffer::NullBuffer;
//!   use maskops::{Mask, MaskedView};
//!   // a Float32Array's values and its validity (slot 1 is null)
//!   let values = vec![1.0f32, f32::NAN, 3.0, 4.0];
//!   let nulls = NullBuffer::from(vec![true, false, true, true]);
//!   let mask = Mask::from_null_buffer(&nulls);
//!   assert_eq!(MaskedView::new(&values, &mask).unwrap().sum(), Some(8.0));
//!   // back to Arrow: the mask's words become the validity buffer, no copy
//!   assert_eq!(NullBuffer::from(mask).null_count(), 1);
//!   # }
//!   ```
//!
//! ## Re-exports
//!
//! [`sprs`] and [`half`] are re-exported, so a caller builds gradients and
//! half-precision data with the versions this crate was built against.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod backend;
mod buf;
pub mod canonical;
mod cpu;
pub mod element;
mod entry;
pub mod error;
pub mod mask;
pub mod math;
pub mod nd;
mod par;
pub mod reference;
pub mod view;

pub use element::{Element, Float};
pub use error::{Error, Result};
pub use mask::{Mask, MaskBuilder};
pub use view::{MaskedVec, MaskedView};

/// The `sprs` crate this crate's sparse gradients use
/// ([`optim::Adagrad::step_sparse`] takes a `sprs::TriMat`), re-exported so
/// callers need not match its version.
pub use sprs;

/// The `half` crate of the [`f16`](half::f16) and [`bf16`](half::bf16)
/// element types, re-exported so callers need not match its version.
pub use half;

/// The ndarray version maskops is built against (feature `ndarray`).
#[cfg(feature = "ndarray")]
#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
pub use ndarray;
#[cfg(feature = "ndarray")]
mod interop_ndarray;
/// The arrow-buffer version maskops is built against (feature `arrow`).
#[cfg(feature = "arrow")]
#[cfg_attr(docsrs, doc(cfg(feature = "arrow")))]
pub use arrow_buffer;
#[cfg(feature = "arrow")]
mod interop_arrow;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

// --- softmax backward (the forward is on MaskedView) ---
pub mod softmax;

// --- losses ---
pub mod loss;

// --- optimizers ---
pub mod optim;

// --- sharded tables (the exchange layout; MPI behind the `mpi` feature) ---
#[cfg(feature = "mpi")]
#[cfg_attr(docsrs, doc(cfg(feature = "mpi")))]
pub mod dist;
pub mod shard;
/// The rsmpi crate `maskops::dist` is built on (feature `mpi`): initialize
/// MPI and make communicators with this version.
#[cfg(feature = "mpi")]
#[cfg_attr(docsrs, doc(cfg(feature = "mpi")))]
pub use mpi;

// --- masked arithmetic ---
pub mod array;
pub use array::{BinaryOp, MaskPolicy, MaskedArray, Operand, UnaryOp};

// --- CUDA: device backend (feature `cuda`) and host emulator (feature `cuda-emulator`) ---
#[cfg(any(feature = "cuda", feature = "cuda-emulator"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "cuda", feature = "cuda-emulator"))))]
pub mod cuda;
