//! The shared cases of `tests/cuda_cases` on a real GPU (feature `cuda`).
//! Without a driver or a device every test reports that it was skipped and
//! why, and passes; the emulated tests (`tests/cuda_emu_*.rs`, feature
//! `cuda-emulator`) run the same cases on the CPU.
#![cfg(feature = "cuda")]

mod cuda_cases;

use maskops::cuda::Gpu;
use maskops::Error;
use std::sync::OnceLock;

/// The device, opened once for the whole test binary (None: skipped).
fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new(0) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("maskops cuda device tests: SKIPPED ({e})");
            None
        }
    })
    .as_ref()
}

macro_rules! device_case {
    ($m:ident, $f:ident) => {
        #[test]
        fn $f() {
            match gpu() {
                Some(g) => cuda_cases::$m::$f(g),
                None => eprintln!("{}: skipped, no CUDA device", stringify!($f)),
            }
        }
    };
}

mod on_device {
    use super::*;
    for_each_case!(device_case);
}

#[test]
fn no_driver_or_no_device_is_an_error_not_a_panic() {
    if !maskops::cuda::driver_present() {
        match Gpu::new(0) {
            Err(Error::CudaUnavailable(why)) => assert!(why.contains("libcuda"), "{why}"),
            other => panic!("expected CudaUnavailable, got {other:?}"),
        }
    } else {
        // A driver is present: an ordinal no machine has is still an error.
        assert!(matches!(Gpu::new(4096), Err(Error::CudaUnavailable(_))));
    }
}

#[test]
fn run_time_nvrtc_reproduces_the_build_time_ptx() {
    if !nvrtc_present() {
        eprintln!("skipped: libnvrtc not loadable");
        return;
    }
    for (stem, _, prebuilt) in maskops::cuda::ptx::KERNEL_FILES {
        let ptx = maskops::cuda::ptx::compile(stem).unwrap();
        assert!(
            ptx.contains(".entry maskops_"),
            "{stem}: no kernel entry in the PTX"
        );
        if !prebuilt.is_empty() {
            assert_eq!(
                &ptx, prebuilt,
                "{stem}: build.rs and run-time NVRTC options differ"
            );
        }
    }
}

/// Whether the NVRTC library can be loaded (via the public compile entry:
/// CudaUnavailable means it cannot).
fn nvrtc_present() -> bool {
    !matches!(
        maskops::cuda::ptx::compile("selftest"),
        Err(Error::CudaUnavailable(_))
    )
}
