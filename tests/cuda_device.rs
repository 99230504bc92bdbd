//! The shared cases of `tests/cuda_cases` on a real GPU (feature `cuda`).
//! Without a driver, or without a device, every test reports that it was
//! skipped and which of the two it was, and passes; any other failure to
//! open the device (a context error, PTX the driver refuses) fails every
//! test with the driver's message. With `MASKOPS_REQUIRE_GPU=1` (the GPU
//! check, `.ci/gpu-check.sh`) nothing is skipped: no driver or no device
//! fails too. The emulated tests (`tests/cuda_emu_*.rs`, feature
//! `cuda-emulator`) run the same cases on the CPU.
#![cfg(feature = "cuda")]

mod cuda_cases;

use maskops::cuda::Gpu;
use maskops::Error;
use std::sync::OnceLock;

/// `MASKOPS_REQUIRE_GPU=1`: a missing driver or device fails the tests.
fn strict() -> bool {
    std::env::var("MASKOPS_REQUIRE_GPU").is_ok_and(|v| v.trim() == "1")
}

/// Why the device tests skip (None: they run). Panics (fails the test) on
/// anything but a missing driver or device, and on those too in strict mode.
fn skip_reason(opened: &std::result::Result<Gpu, Error>) -> Option<String> {
    match opened {
        Ok(_) => None,
        Err(Error::CudaUnavailable(why)) if !strict() => Some(why.clone()),
        Err(e) => panic!(
            "the CUDA device could not be opened: {e}{}",
            if strict() {
                " (MASKOPS_REQUIRE_GPU=1: no skipping)"
            } else {
                ""
            }
        ),
    }
}

/// The device, opened once for the whole test binary (None: skipped).
fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<std::result::Result<Gpu, Error>> = OnceLock::new();
    let opened = GPU.get_or_init(|| {
        let g = Gpu::new(0);
        if let Ok(g) = &g {
            // which architecture, and whether the cubins loaded (or PTX JIT)
            eprintln!(
                "maskops cuda device tests: compute capability {:?}, kernels: {}",
                g.compute_capability(),
                g.loaded_from().join(", ")
            );
        }
        g
    });
    match skip_reason(opened) {
        None => opened.as_ref().ok(),
        Some(why) => {
            eprintln!("maskops cuda device tests: SKIPPED ({why})");
            None
        }
    }
}

macro_rules! device_case {
    ($m:ident, $f:ident) => {
        #[test]
        fn $f() {
            match gpu() {
                Some(g) => cuda_cases::$m::$f(g),
                None => eprintln!("{}: skipped (see above why)", stringify!($f)),
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
        assert!(
            !strict(),
            "libnvrtc is not loadable (MASKOPS_REQUIRE_GPU=1: no skipping)"
        );
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

#[test]
fn cubins_are_chosen_by_compute_capability_and_match_their_labels() {
    use maskops::cuda::ptx::{cubin_arch, pick_arch, CUBINS};
    let built = [70, 75, 80, 90];
    assert_eq!(pick_arch(&built, 7, 0), Some(70));
    assert_eq!(pick_arch(&built, 7, 5), Some(75));
    assert_eq!(pick_arch(&built, 8, 0), Some(80));
    assert_eq!(
        pick_arch(&built, 8, 9),
        Some(80),
        "Ada runs the sm_80 cubin"
    );
    assert_eq!(pick_arch(&built, 9, 0), Some(90));
    assert_eq!(pick_arch(&built, 12, 0), None, "a newer major: PTX JIT");
    assert_eq!(pick_arch(&[80, 86], 8, 0), Some(80), "never a newer minor");
    // whatever build.rs embedded (none when MASKOPS_CUDA_ARCHS=none or no
    // NVRTC at build time) is a CUDA ELF of the architecture it is filed under
    for (stem, arch, bytes) in CUBINS {
        assert_eq!(cubin_arch(bytes), Some(*arch), "{stem}.sm_{arch}.cubin");
    }
}
