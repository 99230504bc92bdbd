//! The host emulator backend (feature `cuda-emulator`).
//!
//! `build.rs` compiles every `kernels/*.cu` for the host together with
//! `kernels/emu.cuh` (one OS thread per CUDA thread, from a pool of parked
//! threads reused across blocks and launches; timed barriers for
//! `__syncthreads` and the warp exchange) into a static library whose
//! `maskops_emu_launch` takes a kernel name and exactly the arguments of
//! `cuLaunchKernel`. [`Emulator`] implements [`Backend`] on host memory, so
//! the launch plans of [`super::ops`] run unchanged.

use super::plan::{Backend, Launch};
use crate::{Error, Result};
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

extern "C" {
    fn maskops_emu_launch(
        name: *const c_char,
        gx: u32,
        gy: u32,
        gz: u32,
        bx: u32,
        by: u32,
        bz: u32,
        shared: u32,
        params: *mut *mut c_void,
    ) -> c_int;
    fn maskops_emu_last_error(buf: *mut c_char, cap: usize) -> usize;
    fn maskops_emu_set_timeout_ms(ms: std::ffi::c_long);
}

/// One emulated launch at a time (the emulator's error slot is global and
/// every launch already runs many threads).
static LAUNCH_LOCK: Mutex<()> = Mutex::new(());

/// A host allocation standing in for device memory (8-byte aligned).
#[derive(Debug)]
pub struct EmuBuf {
    words: Box<[u64]>,
    bytes: usize,
}

impl EmuBuf {
    /// Bytes in the buffer.
    pub fn len(&self) -> usize {
        self.bytes
    }
    /// `true` when the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }
    /// The contents as bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `bytes` initialized bytes; u8 has no alignment needs.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.bytes) }
    }
    /// Reads the buffer as `n` values of a plain-old-data type.
    pub fn read<T: Copy + Default>(&self) -> Vec<T> {
        let n = self.bytes / std::mem::size_of::<T>();
        let mut v = vec![T::default(); n];
        // SAFETY: the destination has room for n * size_of::<T>() bytes, the
        // source holds at least as many; callers use it for f32/u16/u32/u64 only.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.words.as_ptr() as *const u8,
                v.as_mut_ptr() as *mut u8,
                n * std::mem::size_of::<T>(),
            )
        };
        v
    }
}

/// The host emulator of the CUDA execution model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Emulator {
    /// A launch running longer than this aborts the process with a message
    /// (a kernel spinning without reaching a barrier); deadlocks at a barrier
    /// are caught by the emulator itself (`MASKOPS_EMU_TIMEOUT_MS`) and
    /// returned as `Err`.
    pub watchdog: Option<Duration>,
    /// How long a thread may wait at `__syncthreads` or a warp collective
    /// before the launch is declared deadlocked (default
    /// `MASKOPS_EMU_TIMEOUT_MS`, else 10 s).
    pub barrier_timeout: Option<Duration>,
}

impl Emulator {
    /// A buffer holding a copy of `data` (any plain-old-data element type).
    pub fn upload<T: Copy>(&self, data: &[T]) -> EmuBuf {
        let bytes = std::mem::size_of_val(data);
        let mut words = vec![0u64; bytes.div_ceil(8).max(1)].into_boxed_slice();
        // SAFETY: `words` has room for `bytes` bytes; the regions do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr() as *const u8,
                words.as_mut_ptr() as *mut u8,
                bytes,
            )
        };
        EmuBuf { words, bytes }
    }
}

struct SendPtr(*mut *mut c_void);
// SAFETY: the parameter array and what it points to outlive the launch: the
// caller waits for it (or aborts the process on the watchdog).
unsafe impl Send for SendPtr {}

fn last_error() -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: the buffer is valid for `buf.len()` bytes; the C side writes a NUL-terminated prefix.
    let n = unsafe { maskops_emu_last_error(buf.as_mut_ptr() as *mut c_char, buf.len()) };
    buf.truncate(n.min(4095));
    String::from_utf8_lossy(&buf).into_owned()
}

impl Backend for Emulator {
    type Buf = EmuBuf;

    fn alloc_zeroed(&self, bytes: usize) -> Result<EmuBuf> {
        Ok(EmuBuf {
            words: vec![0u64; bytes.div_ceil(8).max(1)].into_boxed_slice(),
            bytes,
        })
    }

    fn ptr(&self, buf: &EmuBuf) -> u64 {
        buf.words.as_ptr() as u64
    }

    fn buf_len(&self, buf: &EmuBuf) -> usize {
        buf.bytes
    }

    fn launch(&self, l: &Launch) -> Result<()> {
        let _g = LAUNCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let name = CString::new(l.kernel.as_str()).map_err(|e| Error::Cuda(e.to_string()))?;
        let watchdog = self.watchdog.unwrap_or(Duration::from_secs(120));
        let ms = self
            .barrier_timeout
            .map_or(0, |d| d.as_millis().max(1) as std::ffi::c_long);
        // SAFETY: sets an atomic in the emulator; launches are serialized by LAUNCH_LOCK.
        unsafe { maskops_emu_set_timeout_ms(ms) };
        let rc = l.with_params(|params| {
            let p = SendPtr(params.as_mut_ptr());
            let (grid, block, shared) = (l.grid, l.block, l.shared);
            let name_ptr = SendPtr(name.as_ptr() as *mut *mut c_void);
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let (p, np) = (p, name_ptr);
                // SAFETY: name is a NUL-terminated string and params the
                // driver-style array of pointers to the argument values, both
                // alive until this launch returns (the caller blocks on rx).
                let rc = unsafe {
                    maskops_emu_launch(
                        np.0 as *const c_char,
                        grid.0,
                        grid.1,
                        grid.2,
                        block.0,
                        block.1,
                        block.2,
                        shared,
                        p.0,
                    )
                };
                let _ = tx.send(rc);
            });
            match rx.recv_timeout(watchdog) {
                Ok(rc) => rc,
                Err(_) => {
                    eprintln!(
                        "maskops emulator: {} ran longer than {:?} without returning; aborting",
                        l.kernel, watchdog
                    );
                    std::process::abort();
                }
            }
        });
        match rc {
            0 => Ok(()),
            _ => Err(Error::Cuda(format!(
                "emulated launch failed: {}",
                last_error()
            ))),
        }
    }

    fn upload_bytes(&self, data: &[u8]) -> Result<EmuBuf> {
        Ok(self.upload(data))
    }

    fn download(&self, src: u64, dst: &mut [u8]) -> Result<()> {
        // SAFETY: under the emulator device pointers are host addresses of
        // live EmuBufs, and callers ask for at most the buffer's length.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }
}
