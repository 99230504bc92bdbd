//! Launch plans: what every backend executes.
//!
//! A [`Launch`] is exactly what `cuLaunchKernel` takes — a kernel name, grid
//! and block dimensions, dynamic shared-memory bytes and the parameters —
//! and [`Launch::with_params`] builds the driver API's `void**` array from
//! it. The op functions in [`super::ops`] compute their plans once and hand
//! them to a [`Backend`]: the real device (feature `cuda`) or the host
//! emulator (feature `cuda-emulator`), so the emulated tests run the same
//! launch code as the GPU.

use crate::{Error, Result};
use std::ffi::c_void;

/// Element type of a device buffer, as the kernels name it (`MO_F32`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// `f32`.
    F32 = 0,
    /// `half::f16`, as raw bits.
    F16 = 1,
    /// `half::bf16`, as raw bits.
    Bf16 = 2,
    /// `f64` (reductions only; accumulates in f64).
    F64 = 3,
}

impl DType {
    /// The suffix of the kernel names for this type.
    pub fn suffix(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Bf16 => "bf16",
            DType::F64 => "f64",
        }
    }
    /// The accumulator type of reductions over this type: `F64` for `F64`,
    /// else `F32`.
    pub fn acc(self) -> DType {
        match self {
            DType::F64 => DType::F64,
            _ => DType::F32,
        }
    }
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::Bf16 => 2,
            DType::F64 => 8,
        }
    }
    /// The code the kernels use (`MO_F32` = 0, `MO_F16` = 1, `MO_BF16` = 2).
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// One kernel parameter, passed by value like `cuLaunchKernel` does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg {
    /// A device pointer (`CUdeviceptr`; a host address under the emulator);
    /// 0 is the null pointer.
    Ptr(u64),
    /// A `u64` (sizes, counts).
    U64(u64),
    /// A `u32`.
    U32(u32),
    /// An `int` (kind and mode codes).
    I32(i32),
    /// A `float`.
    F32(f32),
    /// A `double`.
    F64(f64),
}

impl Arg {
    fn bits(self) -> u64 {
        match self {
            Arg::Ptr(p) | Arg::U64(p) => p,
            Arg::U32(v) => v as u64,
            Arg::I32(v) => v as u32 as u64,
            Arg::F32(v) => v.to_bits() as u64,
            Arg::F64(v) => v.to_bits(),
        }
    }
}

/// A kernel launch: name, grid, block, dynamic shared bytes, parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// The `extern "C"` kernel name.
    pub kernel: String,
    /// Grid dimensions (blocks).
    pub grid: (u32, u32, u32),
    /// Block dimensions (threads).
    pub block: (u32, u32, u32),
    /// Dynamic shared memory, bytes.
    pub shared: u32,
    /// Parameters in declaration order.
    pub args: Vec<Arg>,
}

/// Most blocks a one-dimensional grid may have (`gridDim.x` limit).
pub const MAX_GRID_X: u64 = (1 << 31) - 1;

impl Launch {
    /// A one-dimensional launch of `blocks` blocks of `threads` threads.
    pub fn linear(kernel: String, blocks: u64, threads: u32, args: Vec<Arg>) -> Result<Launch> {
        if blocks == 0 || blocks > MAX_GRID_X {
            return Err(Error::Cuda(format!(
                "{kernel}: grid of {blocks} blocks is outside 1..={MAX_GRID_X}"
            )));
        }
        Ok(Launch {
            kernel,
            grid: (blocks as u32, 1, 1),
            block: (threads, 1, 1),
            shared: 0,
            args,
        })
    }

    /// Calls `f` with the driver API's parameter array: element `i` points to
    /// the value of parameter `i` (each stored in its own 8-byte slot,
    /// little-endian, so a 4-byte parameter is the slot's first 4 bytes).
    pub fn with_params<R>(&self, f: impl FnOnce(&mut [*mut c_void]) -> R) -> R {
        let mut slots: Vec<u64> = self.args.iter().map(|a| a.bits()).collect();
        let mut ptrs: Vec<*mut c_void> = slots
            .iter_mut()
            .map(|s| s as *mut u64 as *mut c_void)
            .collect();
        f(&mut ptrs)
    }
}

/// Where launches run: the device (feature `cuda`) or the host emulator
/// (feature `cuda-emulator`). Buffers are addressed by raw device pointers.
pub trait Backend {
    /// An owned device allocation.
    type Buf;
    /// Allocates `bytes` zeroed bytes (at least 8-byte aligned).
    fn alloc_zeroed(&self, bytes: usize) -> Result<Self::Buf>;
    /// The device pointer of a buffer.
    fn ptr(&self, buf: &Self::Buf) -> u64;
    /// The size of a buffer in bytes.
    fn buf_len(&self, buf: &Self::Buf) -> usize;
    /// Runs one launch (asynchronously on the device; in order).
    fn launch(&self, launch: &Launch) -> Result<()>;
    /// Copies `dst.len()` bytes from device address `src` (waits for the
    /// launches before it).
    fn download(&self, src: u64, dst: &mut [u8]) -> Result<()>;
    /// A new buffer holding a copy of `data`.
    fn upload_bytes(&self, data: &[u8]) -> Result<Self::Buf>;
}

/// Uploads a slice of a plain-old-data type (`f32`, `u16`, `u64`, `i64`, ...).
pub fn upload<B: Backend, T: Copy>(be: &B, data: &[T]) -> Result<B::Buf> {
    // SAFETY: any initialized plain-old-data slice may be viewed as bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts(data.as_ptr() as *const u8, std::mem::size_of_val(data))
    };
    be.upload_bytes(bytes)
}

/// Downloads `n` values of a plain-old-data type from device address `src`.
pub fn download<B: Backend, T: Copy + Default>(be: &B, src: u64, n: usize) -> Result<Vec<T>> {
    let mut v = vec![T::default(); n];
    // SAFETY: the vector's storage is n * size_of::<T>() initialized bytes,
    // and every bit pattern written by the device is valid for the POD types used.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(
            v.as_mut_ptr() as *mut u8,
            std::mem::size_of_val(v.as_slice()),
        )
    };
    be.download(src, bytes)?;
    Ok(v)
}
