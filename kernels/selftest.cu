// Self-checks of the execution model (run by tests/cuda_emu_selftest.rs
// under the emulator; also compiled by NVRTC and ptxas like every kernel, and
// harmless on a device). Not used by any operation.
#ifndef MASKOPS_COMMON_CUH
#include "common.cuh"
#endif

// out[t] for thread t of block b (t < blockDim.x):
//   [0] butterfly sum of lane ids over the warp (shfl_xor) = 496
//   [1] ballot of odd lanes
//   [2] value of lane (lane + 1) % 32 via __shfl_sync
//   [3] shfl_up by 1 (own value for lane 0), [4] shfl_down by 1
//   [5] sum over the block through shared memory after __syncthreads
// and atomicAdd(counter, 1) once per thread.
MASKOPS_KERNEL(maskops_selftest_warp, u32* __restrict__ out, u32* __restrict__ counter) {
    MASKOPS_SHARED(u32, tile, 1024);
    MASKOPS_EXTERN_SHARED(u32, dyn);
    const u32 t = threadIdx.x;
    const u32 lane = t & 31u;
    u32 v = lane;
#pragma unroll
    for (int m = 16; m >= 1; m >>= 1) v += __shfl_xor_sync(MASKOPS_FULL_MASK, v, m);
    u32* o = out + ((u64)blockIdx.x * blockDim.x + t) * 6u;
    o[0] = v;
    o[1] = __ballot_sync(MASKOPS_FULL_MASK, (lane & 1u) != 0);
    o[2] = __shfl_sync(MASKOPS_FULL_MASK, lane * 10u, (int)((lane + 1u) & 31u));
    o[3] = __shfl_up_sync(MASKOPS_FULL_MASK, lane, 1);
    o[4] = __shfl_down_sync(MASKOPS_FULL_MASK, lane, 1);
    tile[t] = t;
    dyn[t] = 2u * t;
    __syncthreads();
    u32 s = 0;
    for (u32 k = 0; k < blockDim.x; ++k) s += tile[k] + dyn[k];
    o[5] = s;
    atomicAdd(counter, 1u);
}

// A barrier in divergent code: deadlocks (the emulator must report it).
MASKOPS_KERNEL(maskops_selftest_divergent_sync, u32* __restrict__ out) {
    if (threadIdx.x < 16u) {
        __syncthreads();
    }
    out[threadIdx.x] = 1u;
}

// A shuffle in divergent code: undefined on a device, reported by the emulator.
MASKOPS_KERNEL(maskops_selftest_divergent_shfl, u32* __restrict__ out) {
    u32 v = threadIdx.x;
    if ((threadIdx.x & 1u) == 0u) {
        v = __shfl_down_sync(MASKOPS_FULL_MASK, v, 1);
    }
    out[threadIdx.x] = v;
}
