//! The execution-model self-check of kernels/selftest.cu: on the emulator
//! it checks the emulation, on a device that the emulation matches it.

use super::Dev;
use maskops::cuda::plan::{Arg, Launch};

pub fn warp_collectives_shared_memory_and_atomics<B: Dev>(emu: &B) {
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
    let o = emu.rd::<u32>(&out);
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
    assert_eq!(emu.rd::<u32>(&counter)[0], blocks * threads);
}
