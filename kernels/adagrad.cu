// Adagrad (PyTorch's update rule), f32 parameters and state, transcribing
// the CPU kernels (src/optim): per entry, in this order, no FMA,
//   g = maximize ? -g : g;  g = decay ? g + wd * p : g;
//   s = s + g * g;          p = p - (clr * g) / (sqrt(s) + eps)
// with clr = lr / (1 + (step - 1) lr_decay) computed in f64 on the host and
// rounded once.
//
// Dense and masked: one thread per entry. Sparse COO (flattened indices) and
// row-sparse gradients: duplicates are summed BEFORE the update, in order of
// appearance, deterministically and without float atomics:
//   1. keys[i] = index << 32 | i (unique), padded with ~0 to a power of two;
//   2. bitonic sort of the keys (a network of compare-exchange launches; the
//      keys are unique, so the result is the stable order);
//   3. one thread per run of equal indices (a run starts where the index
//      changes) sums its gradient values in sorted (= appearance) order,
//      starting from the first value, and updates that entry; runs own
//      distinct entries, so no two threads write the same parameter.
#ifndef MASKOPS_COMMON_CUH
#include "common.cuh"
#endif

__device__ __forceinline__ void mo_adagrad_update(float* __restrict__ p, float* __restrict__ s, float g, float clr,
                                                  float eps, float wd, int maximize, int decay) {
    float pv = *p;
    if (maximize) g = -g;
    if (decay) g = g + wd * pv;
    const float sv = *s + g * g;
    *s = sv;
    *p = pv - (clr * g) / (sqrtf(sv) + eps);
}

// Dense (mask == null) or masked (bit i keeps entry i).
MASKOPS_KERNEL(maskops_adagrad_dense_f32, float* __restrict__ param, float* __restrict__ sum,
               const float* __restrict__ grad, const u64* __restrict__ mask, u64 n, float clr, float eps, float wd,
               int maximize, int decay) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    if (mask && !mo_keep(mask, i)) return;
    mo_adagrad_update(param + i, sum + i, grad[i], clr, eps, wd, maximize, decay);
}

// keys[i] = idx[i] << 32 | i for i < nnz, ~0 up to p2.
MASKOPS_KERNEL(maskops_sparse_keys, const u64* __restrict__ idx, u64 nnz, u64 p2, u64* __restrict__ keys) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p2) return;
    keys[i] = i < nnz ? (idx[i] << 32) | i : ~0ull;
}

// One compare-exchange stage (k, j) of the bitonic network over p2 keys.
MASKOPS_KERNEL(maskops_bitonic_step, u64* __restrict__ keys, u64 p2, u64 k, u64 j) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p2) return;
    const u64 l = i ^ j;
    if (l <= i) return;
    const u64 a = keys[i];
    const u64 b = keys[l];
    const bool up = (i & k) == 0;
    if ((a > b) == up) {
        keys[i] = b;
        keys[l] = a;
    }
}

// One thread per sorted position that starts a run: sums the run's values
// in order and updates the entry.
MASKOPS_KERNEL(maskops_adagrad_sparse_runs_f32, const u64* __restrict__ keys, u64 nnz,
               const float* __restrict__ values, float* __restrict__ param, float* __restrict__ sum, float clr,
               float eps, float wd, int maximize, int decay) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nnz) return;
    const u64 k = keys[i] >> 32;
    if (i > 0 && (keys[i - 1] >> 32) == k) return;
    float g = values[keys[i] & 0xffffffffull];
    for (u64 j = i + 1; j < nnz && (keys[j] >> 32) == k; ++j) g += values[keys[j] & 0xffffffffull];
    mo_adagrad_update(param + k, sum + k, g, clr, eps, wd, maximize, decay);
}

// Row-sparse: thread (i, c) for sorted position i and column c; runs of
// equal rows are summed in order (values is nnz x cols, row-major).
MASKOPS_KERNEL(maskops_adagrad_rows_f32, const u64* __restrict__ keys, u64 nnz, u64 cols,
               const float* __restrict__ values, float* __restrict__ param, float* __restrict__ sum, float clr,
               float eps, float wd, int maximize, int decay) {
    const u64 t = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= nnz * cols) return;
    const u64 i = t / cols;
    const u64 c = t - i * cols;
    const u64 r = keys[i] >> 32;
    if (i > 0 && (keys[i - 1] >> 32) == r) return;
    float g = values[(keys[i] & 0xffffffffull) * cols + c];
    for (u64 j = i + 1; j < nnz && (keys[j] >> 32) == r; ++j) g += values[(keys[j] & 0xffffffffull) * cols + c];
    mo_adagrad_update(param + r * cols + c, sum + r * cols + c, g, clr, eps, wd, maximize, decay);
}
