//! CUDA kernels (`kernels/*.cu`): launch plans, the device backend (feature
//! `cuda`) and the host emulator (feature `cuda-emulator`).
//!
//! Every operation is written once in [`ops`] against the [`plan::Backend`]
//! trait: it computes its launches (grid, block, shared bytes, parameters)
//! and hands them to the backend it is given. The device backend calls
//! `cuLaunchKernel` through cudarc; the emulator calls the host build of the
//! same `.cu` sources with the same arguments.

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
    driver_present, DeviceAdagrad, DeviceAdagradState, DeviceElement, DeviceLoss, DeviceMask,
    DeviceMaskedVec, Gpu,
};
