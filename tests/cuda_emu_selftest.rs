//! The emulator's execution model (kernels/selftest.cu): warp collectives,
//! shared memory, atomics, and deadlocks reported as errors, not hangs.
#![cfg(feature = "cuda-emulator")]

use maskops::cuda::emu::Emulator;
use maskops::cuda::plan::{Arg, Backend, Launch};
use std::time::{Duration, Instant};

#[test]
fn warp_collectives_shared_memory_and_atomics() {
    let emu = Emulator::default();
    let (blocks, threads) = (2u32, 64u32);
    let out = emu
        .alloc_zeroed((blocks * threads * 6 * 4) as usize)
        .unwrap();
    let counter = emu.alloc_zeroed(4).unwrap();
    let mut l = Launch::linear(
        "maskops_selftest_warp".into(),
        blocks as u64,
        threads,
        vec![Arg::Ptr(emu.ptr(&out)), Arg::Ptr(emu.ptr(&counter))],
    )
    .unwrap();
    l.shared = threads * 4;
    emu.launch(&l).unwrap();
    let o = out.read::<u32>();
    let block_sum: u32 = (0..threads).map(|t| 3 * t).sum();
    for g in 0..(blocks * threads) as usize {
        let lane = (g % threads as usize % 32) as u32;
        let r = &o[g * 6..g * 6 + 6];
        assert_eq!(r[0], 496, "xor butterfly, thread {g}");
        assert_eq!(r[1], 0xaaaa_aaaa, "ballot, thread {g}");
        assert_eq!(r[2], ((lane + 1) % 32) * 10, "shfl, thread {g}");
        assert_eq!(r[3], lane.saturating_sub(1), "shfl_up, thread {g}");
        assert_eq!(
            r[4],
            if lane == 31 { 31 } else { lane + 1 },
            "shfl_down, thread {g}"
        );
        assert_eq!(r[5], block_sum, "shared memory sum, thread {g}");
    }
    assert_eq!(counter.read::<u32>()[0], blocks * threads);
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
