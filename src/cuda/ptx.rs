//! The kernel sources and the PTX `build.rs` made from them.
//!
//! PTX is produced by NVRTC from CUDA 12.9 (`nvidia-cuda-nvrtc-cu12`
//! 12.9.x in CI) for `compute_70` with `--fmad=false --ftz=false
//! --prec-div=true --prec-sqrt=true`: the PTX header reads `.version 8.8`,
//! `.target sm_70`, which the driver JIT-compiles for any GPU of compute
//! capability 7.0 or newer **if the driver supports PTX ISA 8.8, i.e. driver
//! 575 or newer (CUDA 12.9)**. With an older driver, or when the build had no
//! libnvrtc (the PTX is then empty), the runtime compiles [`source`] with the
//! NVRTC it finds (`libnvrtc.so`), whose PTX the matching driver accepts.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

pub use generated::{COMMON, KERNEL_FILES};

/// NVRTC options used by `build.rs` and by the run-time fallback.
pub const NVRTC_OPTIONS: &[&str] = &[
    "--fmad=false",
    "--ftz=false",
    "--prec-div=true",
    "--prec-sqrt=true",
    "--gpu-architecture=compute_70",
    "--std=c++17",
];

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
    let opts = cudarc::nvrtc::CompileOptions {
        options: NVRTC_OPTIONS.iter().map(|s| s.to_string()).collect(),
        name: Some(format!("{stem}.cu")),
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(&src, opts)
        .map(|p| p.to_src())
        .map_err(|e| Error::Cuda(format!("NVRTC on kernels/{stem}.cu: {e:?}")))
}
