//! The kernel sources and the cubins and PTX `build.rs` made from them.
//!
//! `build.rs` runs NVRTC (CUDA 12.9, `nvidia-cuda-nvrtc-cu12` 12.9.x in CI)
//! with `--fmad=false --ftz=false --prec-div=true --prec-sqrt=true` twice
//! over: to a **cubin** per SM architecture (default sm_70, 75, 80, 90;
//! `MASKOPS_CUDA_ARCHS` at build time changes the list, e.g. adding 86 and
//! 89, whose GPUs otherwise run the sm_80 cubin), machine code
//! that any driver of that CUDA major version loads without a JIT, and to
//! **PTX** for `compute_70` (`compute_75` on an NVRTC that dropped Volta).
//! `Gpu::new` picks the cubin of the device's architecture ([`cubin_for`]:
//! the newest one of the same major version and a minor version not above
//! the device's, which the driver runs unchanged), else JIT-compiles the
//! PTX — whose header (`.version 8.8` from NVRTC 12.9) needs a driver of
//! CUDA 12.9 (575+) — else compiles [`source`] with the NVRTC it finds at
//! run time, whose PTX the matching driver accepts.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

pub use generated::{COMMON, CUBINS, KERNEL_FILES};

/// NVRTC options used by `build.rs` and by the run-time fallback, besides
/// the architecture.
pub const NVRTC_OPTIONS: &[&str] = &[
    "--fmad=false",
    "--ftz=false",
    "--prec-div=true",
    "--prec-sqrt=true",
    "--std=c++17",
];

/// Of the cubin architectures `archs` (10 * major + minor), the one a
/// device of compute capability `major.minor` runs: the newest with the
/// same major version and a minor version not above the device's (SASS is
/// compatible within a major version, upwards). `None`: JIT from PTX.
///
/// ```
/// use maskops::cuda::ptx::pick_arch;
/// let built = [70, 75, 80, 90]; // the default
/// assert_eq!(pick_arch(&built, 8, 6), Some(80)); // A10, RTX 30 run sm_80
/// assert_eq!(pick_arch(&[70, 75, 80, 86, 89, 90], 8, 7), Some(86)); // Jetson Orin
/// assert_eq!(pick_arch(&built, 9, 0), Some(90)); // H100, H200
/// assert_eq!(pick_arch(&built, 10, 0), None);    // Blackwell: PTX JIT
/// assert_eq!(pick_arch(&built, 6, 1), None);     // Pascal: too old
/// ```
pub fn pick_arch(archs: &[u32], major: u32, minor: u32) -> Option<u32> {
    archs
        .iter()
        .copied()
        .filter(|&a| a / 10 == major && a % 10 <= minor)
        .max()
}

/// The embedded cubin of kernel file `stem` for a device of compute
/// capability `major.minor` (see [`pick_arch`]), with its architecture.
pub fn cubin_for(stem: &str, major: u32, minor: u32) -> Option<(u32, &'static [u8])> {
    let archs: Vec<u32> = CUBINS
        .iter()
        .filter(|(s, _, _)| *s == stem)
        .map(|(_, a, _)| *a)
        .collect();
    let a = pick_arch(&archs, major, minor)?;
    CUBINS
        .iter()
        .find(|(s, b, _)| *s == stem && *b == a)
        .map(|(_, a, bytes)| (*a, *bytes))
}

/// The SM architecture a cubin's ELF header names (`EM_CUDA` machine, the
/// low byte of `e_flags`), `None` if `bytes` is not a 64-bit CUDA ELF.
///
/// ```
/// use maskops::cuda::ptx::cubin_arch;
/// assert_eq!(cubin_arch(b"not an ELF file at all, not a cubin, just some bytes to read"), None);
/// ```
pub fn cubin_arch(bytes: &[u8]) -> Option<u32> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return None;
    }
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    let flags = u32::from_le_bytes([bytes[48], bytes[49], bytes[50], bytes[51]]);
    (machine == 190).then_some(flags & 0xff)
}

/// The PTX target of the run-time fallback: `compute_70` unless this NVRTC
/// no longer supports Volta (CUDA 13), then `compute_75`.
fn runtime_ptx_arch() -> &'static str {
    let mut n: std::ffi::c_int = 0;
    // SAFETY: NVRTC is loaded (checked by the caller); `n` is a valid out-pointer.
    let ok = unsafe { cudarc::nvrtc::sys::nvrtcGetNumSupportedArchs(&mut n) }
        .result()
        .is_ok();
    if !ok || n <= 0 {
        return "compute_70";
    }
    let mut v = vec![0 as std::ffi::c_int; n as usize];
    // SAFETY: `v` holds the `n` entries NVRTC writes.
    let ok = unsafe { cudarc::nvrtc::sys::nvrtcGetSupportedArchs(v.as_mut_ptr()) }
        .result()
        .is_ok();
    if ok && !v.contains(&70) {
        "compute_75"
    } else {
        "compute_70"
    }
}

/// The full NVRTC input for one kernel file: `common.cuh` then the file.
pub fn source(stem: &str) -> Option<String> {
    KERNEL_FILES
        .iter()
        .find(|(s, _, _)| *s == stem)
        .map(|(s, src, _)| format!("{COMMON}\n#line 1 \"{s}.cu\"\n{src}"))
}

/// The PTX `build.rs` produced for a kernel file (empty when the build had
/// no NVRTC).
pub fn prebuilt(stem: &str) -> Option<&'static str> {
    KERNEL_FILES
        .iter()
        .find(|(s, _, _)| *s == stem)
        .map(|(_, _, p)| *p)
}

/// Compiles one kernel file with the NVRTC found at run time (the fallback
/// when the build had no NVRTC or the driver refuses the prebuilt PTX);
/// returns the PTX text. `Err(CudaUnavailable)` when libnvrtc cannot be
/// loaded.
pub fn compile(stem: &str) -> crate::Result<String> {
    use crate::Error;
    // SAFETY: only tries to dlopen the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::CudaUnavailable(format!(
            "no usable PTX for kernels/{stem}.cu and libnvrtc could not be loaded to compile it"
        )));
    }
    let src = source(stem).ok_or_else(|| Error::Cuda(format!("no kernel file {stem}")))?;
    let mut options: Vec<String> = NVRTC_OPTIONS.iter().map(|s| s.to_string()).collect();
    options.push(format!("--gpu-architecture={}", runtime_ptx_arch()));
    let opts = cudarc::nvrtc::CompileOptions {
        options,
        name: Some(format!("{stem}.cu")),
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(&src, opts)
        .map(|p| p.to_src())
        .map_err(|e| Error::Cuda(format!("NVRTC on kernels/{stem}.cu: {e:?}")))
}
