//! The emulator's execution model (kernels/selftest.cu): warp collectives,
//! shared memory, atomics, and deadlocks reported as errors, not hangs.
#![cfg(feature = "cuda-emulator")]

mod cuda_cases;

use maskops::cuda::emu::Emulator;
use maskops::cuda::plan::{Arg, Backend, Launch};
use std::time::{Duration, Instant};

#[test]
fn warp_collectives_shared_memory_and_atomics() {
    cuda_cases::selftest::warp_collectives_shared_memory_and_atomics(&Emulator::default());
}

fn deadlock(kernel: &str) {
    let emu = Emulator {
        barrier_timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let out = emu.alloc_zeroed(64 * 4).unwrap();
    let l = Launch::linear(kernel.into(), 1, 64, vec![Arg::Ptr(emu.ptr(&out))]).unwrap();
    let t = Instant::now();
    let err = emu.launch(&l).unwrap_err().to_string();
    assert!(err.contains("deadlock"), "{kernel}: {err}");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "{kernel} took {:?}",
        t.elapsed()
    );
}

#[test]
fn divergent_syncthreads_fails_with_a_timeout() {
    deadlock("maskops_selftest_divergent_sync");
}

#[test]
fn divergent_shuffle_fails_with_a_timeout() {
    deadlock("maskops_selftest_divergent_shfl");
}

#[test]
fn bad_launches_are_errors() {
    let emu = Emulator::default();
    let out = emu.alloc_zeroed(64).unwrap();
    let l = Launch::linear(
        "no_such_kernel".into(),
        1,
        32,
        vec![Arg::Ptr(emu.ptr(&out))],
    )
    .unwrap();
    assert!(emu
        .launch(&l)
        .unwrap_err()
        .to_string()
        .contains("no kernel named"));
    let l = Launch::linear(
        "maskops_selftest_divergent_sync".into(),
        1,
        2048,
        vec![Arg::Ptr(emu.ptr(&out))],
    )
    .unwrap();
    assert!(emu
        .launch(&l)
        .unwrap_err()
        .to_string()
        .contains("invalid launch"));
}
