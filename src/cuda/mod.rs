//! CUDA kernels (`kernels/*.cu`): launch plans, the device backend (feature
//! `cuda`) and the host emulator (feature `cuda-emulator`).
//!
//! # Design
//!
//! Every operation is written once in [`ops`] against the [`plan::Backend`]
//! trait: it computes its launches ([`plan::Launch`]: kernel name, grid,
//! block, dynamic shared bytes, parameters — exactly `cuLaunchKernel`'s
//! arguments) and hands them to the backend it is given:
//!
//! * `Gpu` (feature `cuda`): a CUDA context and stream from cudarc; each
//!   launch goes to `cuLaunchKernel` (`cudarc::driver::result::launch_kernel`)
//!   with the plan's `void**` parameter array.
//! * `emu::Emulator` (feature `cuda-emulator`): the same `.cu` sources
//!   compiled for the host by `build.rs` with `kernels/emu.cuh`, a small
//!   emulation of the CUDA execution model (one OS thread per CUDA thread, a
//!   timed barrier per block for `__syncthreads`, a per-warp exchange for
//!   `__shfl_*_sync` / `__ballot_sync`, atomics through `std::atomic_ref`).
//!   Each kernel is declared once with `MASKOPS_KERNEL(name, params...)`:
//!   under NVRTC that is the `extern "C" __global__` function; on the host it
//!   also emits `maskops_emu_<name>(grid, block, shared, void** params)` and
//!   registers it for `maskops_emu_launch(name, ...)`, which the emulator
//!   backend calls with the plan's parameter array. A kernel that deadlocks
//!   (a barrier or a shuffle in divergent code) makes the launch return an
//!   error after `MASKOPS_EMU_TIMEOUT_MS` (default 10 s) instead of hanging.
//!
//! The tests in `tests/cuda_cases` are generic over the backend: the
//! emulated tests (`tests/cuda_emu_*.rs`) and the device tests
//! (`tests/cuda_device.rs`, skipped with a message when no driver/device is
//! present) run the same cases through the same launch plans.
//!
//! # Numerics
//!
//! Sums follow the crate's canonical order ([`crate::canonical`]): a warp's
//! 32 lanes are the 32 lane accumulators of a 4096-element block (lane `j`
//! takes offsets `j, j+32, …`), the warp is folded by `__shfl_down_sync` with
//! offsets 16, 8, 4, 2, 1 (exactly the halving tree), block partials are
//! padded to a power of two and folded by the halving tree in a second
//! kernel. Column reductions (`dim = 0`) hold the 32 lane accumulators of a
//! column in registers of one thread. `exp`/`ln` are transcriptions of
//! [`crate::math`]; NVRTC runs with `--fmad=false` (no contraction), IEEE
//! division and square root, no flush-to-zero. The emulated results are
//! checked with `==` against the canonical definition
//! ([`crate::canonical::canonical_fold`]) and, for losses and Adagrad, a
//! transcription of the CPU kernels' formulas; a GPU must give the same
//! bits as the CPU, **except NaN payloads**: a GPU writes its canonical NaN
//! where x86 keeps the input's payload, so a NaN result is a NaN on both,
//! not always the same NaN (not yet verified on hardware, see below).
//! Kept counts are 64-bit, so a mean or variance over more than 2^32 kept
//! elements is right.
//!
//! Kernels: masked reductions (sum, mean, prod, amin, amax, argmin, argmax,
//! var, std, norm 1/2/inf, logsumexp; whole array, `dim = 1`, `dim = 0`;
//! `f32`, `f16`, `bf16` inputs with `f32` accumulation, `f64` with `f64`
//! accumulation — bit for bit except `logsumexp`, which uses the device's
//! f64 `exp`/`log`), softmax and
//! log-softmax forward and backward (`f32`, `f16`, `bf16`; `dim = 1`: a warp per row up to 4096
//! elements, a block per row above, no length limit; `dim = 0` through the
//! column reductions), losses with gradients (mse, l1, huber, smooth L1 on
//! `f32` and `f64`; cross-entropy on `f32` with `ignore_index`, class
//! weights and label smoothing), Adagrad (`f32` and `f64`: dense, masked, sparse COO and row-sparse with
//! duplicates summed in order of appearance after a deterministic device
//! sort — bitonic network on `index << 32 | position` keys, then one thread
//! per run; no float atomics — and FBGEMM's row-wise Adagrad).
//!
//! # Build requirements and PTX
//!
//! * `cuda`: cudarc loads `libcuda` and `libnvrtc` at run time
//!   (`dynamic-loading`); nothing CUDA is needed to *build*. `build.rs`
//!   compiles the kernels with NVRTC if `libnvrtc.so` can be loaded (e.g.
//!   `pip install nvidia-cuda-nvrtc-cu12` and its `lib` directory on
//!   `LD_LIBRARY_PATH`), else it warns and embeds empty PTX, and
//!   `Gpu::new` compiles the embedded sources with the NVRTC it finds at
//!   run time (`ptx::compile`). With NVRTC 12.9 the PTX is
//!   `.version 8.8`, `.target sm_70`: it needs a driver that supports
//!   CUDA 12.9 (575 or newer) and a GPU of compute capability 7.0 or newer;
//!   with an older driver, `Gpu::new` falls back to the run-time NVRTC when
//!   loading the prebuilt PTX fails. CI (`.ci/cuda-check.sh`) assembles every
//!   kernel with `ptxas` for sm_75, sm_80 and sm_90 and fails on any warning
//!   (register spills included) or stack frame.
//! * `cuda-emulator`: a C++20 compiler (the `cc` crate); no CUDA install,
//!   independent of `cuda`.
//!
//! No host round-trip happens inside an operation except to return a scalar
//! the caller asked for, and the host arguments some operations take
//! (cross-entropy targets and weights, sparse indices) which are validated on
//! the host and uploaded.
//!
//! **Not yet run on real hardware**: every kernel has been compiled by NVRTC
//! and assembled by ptxas for sm_75/80/90, and executed only under the
//! emulator. `cargo test --features cuda` on a GPU machine runs the same
//! cases on the device; `cargo bench --features cuda --bench cuda` measures
//! against the H100 bandwidth targets; `.ci/gpu-check.sh` (build here, run
//! there) runs the device tests in strict mode, compares the device with the
//! CPU API at large sizes with each kernel's fraction of peak bandwidth, and
//! runs `compute-sanitizer` where it is installed.
//!
//! ```
//! # #[cfg(feature = "cuda")] {
//! use maskops::cuda::{ops::Reduce, Gpu};
//! use maskops::{Error, Mask};
//! match Gpu::new(0) {
//!     Ok(gpu) => {
//!         let x = gpu.upload(&[1.0f32, 2.0, f32::NAN, 4.0]).unwrap();
//!         let mask = gpu.upload_mask(&Mask::from_bools(&[true, true, false, true])).unwrap();
//!         assert_eq!(gpu.reduce(&x, &mask, Reduce::Sum).unwrap(), Some(7.0));
//!     }
//!     // no driver or no device: an error, never a panic
//!     Err(e) => assert!(matches!(e, Error::CudaUnavailable(_))),
//! }
//! # }
//! ```

pub mod ops;
pub mod plan;

#[cfg(feature = "cuda-emulator")]
pub mod emu;

#[cfg(feature = "cuda")]
pub mod ptx;

#[cfg(feature = "cuda")]
mod device;
#[cfg(feature = "cuda")]
pub use device::{
    driver_present, DeviceAdagrad, DeviceAdagradState, DeviceElement, DeviceFloat, DeviceLoss,
    DeviceMask, DeviceMaskedVec, Gpu,
};
