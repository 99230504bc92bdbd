// Adagrad (PyTorch's update rule), f32 or f64 parameters and state (the
// state type is the parameter type), transcribing
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

template <class A>
__device__ __forceinline__ void mo_adagrad_update(A* __restrict__ p, A* __restrict__ s, A g, A clr, A eps, A wd,
                                                  int maximize, int decay) {
    A pv = *p;
    if (maximize) g = -g;
    if (decay) g = g + wd * pv;
    const A sv = *s + g * g;
    *s = sv;
    *p = pv - (clr * g) / (mo_sqrt(sv) + eps);
}

// Dense (mask == null) or masked (bit i keeps entry i).
#define MO_ADAGRAD_DENSE(SUFFIX, A)                                                                            \
    MASKOPS_KERNEL(maskops_adagrad_dense_##SUFFIX, A* __restrict__ param, A* __restrict__ sum,                  \
                   const A* __restrict__ grad, const u64* __restrict__ mask, u64 n, A clr, A eps, A wd,         \
                   int maximize, int decay) {                                                                  \
        const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;                                              \
        if (i >= n) return;                                                                                    \
        if (mask && !mo_keep(mask, i)) return;                                                                 \
        mo_adagrad_update<A>(param + i, sum + i, grad[i], clr, eps, wd, maximize, decay);                      \
    }
MO_ADAGRAD_DENSE(f32, float)
MO_ADAGRAD_DENSE(f64, double)

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
#define MO_ADAGRAD_RUNS(SUFFIX, A)                                                                             \
    MASKOPS_KERNEL(maskops_adagrad_sparse_runs_##SUFFIX, const u64* __restrict__ keys, u64 nnz,                 \
                   const A* __restrict__ values, A* __restrict__ param, A* __restrict__ sum, A clr, A eps,     \
                   A wd, int maximize, int decay) {                                                            \
        const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;                                              \
        if (i >= nnz) return;                                                                                  \
        const u64 k = keys[i] >> 32;                                                                           \
        if (i > 0 && (keys[i - 1] >> 32) == k) return;                                                         \
        A g = values[keys[i] & 0xffffffffull];                                                                 \
        for (u64 j = i + 1; j < nnz && (keys[j] >> 32) == k; ++j) g += values[keys[j] & 0xffffffffull];        \
        mo_adagrad_update<A>(param + k, sum + k, g, clr, eps, wd, maximize, decay);                            \
    }
MO_ADAGRAD_RUNS(f32, float)
MO_ADAGRAD_RUNS(f64, double)

// Row-sparse: thread (i, c) for sorted position i and column c; runs of
// equal rows are summed in order (values is nnz x cols, row-major).
#define MO_ADAGRAD_ROWS(SUFFIX, A)                                                                             \
    MASKOPS_KERNEL(maskops_adagrad_rows_##SUFFIX, const u64* __restrict__ keys, u64 nnz, u64 cols,              \
                   const A* __restrict__ values, A* __restrict__ param, A* __restrict__ sum, A clr, A eps,     \
                   A wd, int maximize, int decay) {                                                            \
        const u64 t = (u64)blockIdx.x * blockDim.x + threadIdx.x;                                              \
        if (t >= nnz * cols) return;                                                                           \
        const u64 i = t / cols;                                                                                \
        const u64 c = t - i * cols;                                                                            \
        const u64 r = keys[i] >> 32;                                                                           \
        if (i > 0 && (keys[i - 1] >> 32) == r) return;                                                         \
        A g = values[(keys[i] & 0xffffffffull) * cols + c];                                                    \
        for (u64 j = i + 1; j < nnz && (keys[j] >> 32) == r; ++j)                                              \
            g += values[(keys[j] & 0xffffffffull) * cols + c];                                                 \
        mo_adagrad_update<A>(param + r * cols + c, sum + r * cols + c, g, clr, eps, wd, maximize, decay);      \
    }
MO_ADAGRAD_ROWS(f32, float)
MO_ADAGRAD_ROWS(f64, double)

// Row-wise Adagrad (FBGEMM; src/optim/rowwise.rs): one accumulator per row.
// One warp per sorted position that starts a run (keys null: dense, row i at
// position i, no duplicates). For the run's row r:
//   g_j    = sum of the run's values in column j (in order), maximize, decay
//   sum[r] = sum[r] + (canonical sum_j g_j^2) / cols
//   p_j    = p_j - (clr / (sqrt(sum[r]) + eps)) * g_j
// Lane l folds columns l, l+32, ... of each canonical block; rows longer than
// one block keep their block partials in scratch (p2 per warp of the grid)
// and fold them by the halving tree.
template <class A>
__device__ __forceinline__ A mo_rowwise_grad(const u64* __restrict__ keys, u64 nnz, u64 i, u64 r, u64 cols, u64 j,
                                             const A* __restrict__ values, A p, A wd, int maximize, int decay) {
    A g;
    if (keys) {
        g = values[(keys[i] & 0xffffffffull) * cols + j];
        for (u64 k = i + 1; k < nnz && (keys[k] >> 32) == r; ++k) g += values[(keys[k] & 0xffffffffull) * cols + j];
    } else {
        g = values[i * cols + j];
    }
    if (maximize) g = -g;
    if (decay) g = g + wd * p;
    return g;
}

template <class A>
__device__ __forceinline__ void mo_rowwise_body(const u64* __restrict__ keys, u64 nnz, u64 cols,
                                                const A* __restrict__ values, A* __restrict__ param,
                                                A* __restrict__ sum, A* __restrict__ scratch, u64 p2, A clr, A eps,
                                                A wd, int maximize, int decay) {
    const u64 i = (u64)blockIdx.x * (blockDim.x / 32u) + threadIdx.x / 32u;
    const u32 lane = threadIdx.x & 31u;
    if (i >= nnz) return;  // whole warps
    const u64 r = keys ? keys[i] >> 32 : i;
    if (keys && i > 0 && (keys[i - 1] >> 32) == r) return;  // not the start of a run
    A* p = param + r * cols;
    const u64 nb = (cols + MASKOPS_BLOCK - 1) / MASKOPS_BLOCK;
    A sq = A(0);
    A* sc = scratch + i * p2;
    for (u64 b = 0; b < nb; ++b) {
        const u64 start = b * MASKOPS_BLOCK;
        const u64 len = cols - start < MASKOPS_BLOCK ? cols - start : MASKOPS_BLOCK;
        A acc = A(0);
        for (u64 k = lane; k < len; k += 32u) {
            const A g = mo_rowwise_grad<A>(keys, nnz, i, r, cols, start + k, values, p[start + k], wd, maximize, decay);
            acc = acc + g * g;
        }
        acc = mo_warp_fold<MO_OP_SUM, A>(acc);
        if (nb == 1) {
            sq = acc;
        } else if (lane == 0) {
            sc[b] = acc;
        }
    }
    if (nb > 1) {
        for (u64 j = nb + lane; j < p2; j += 32u) sc[j] = A(0);
        __syncwarp();
        for (u64 w = p2 / 2; w >= 1; w /= 2) {
            for (u64 j = lane; j < w; j += 32u) sc[j] = sc[j] + sc[j + w];
            __syncwarp();
        }
        sq = sc[0];
    }
    sq = __shfl_sync(MASKOPS_FULL_MASK, sq, 0);
    const A ns = sum[r] + sq / (A)cols;
    const A mult = clr / (mo_sqrt(ns) + eps);
    for (u64 j = lane; j < cols; j += 32u) {
        const A g = mo_rowwise_grad<A>(keys, nnz, i, r, cols, j, values, p[j], wd, maximize, decay);
        p[j] = p[j] - mult * g;
    }
    __syncwarp();
    if (lane == 0) sum[r] = ns;
}

MASKOPS_KERNEL(maskops_adagrad_rowwise_f32, const u64* __restrict__ keys, u64 nnz, u64 cols,
               const float* __restrict__ values, float* __restrict__ param, float* __restrict__ sum,
               float* __restrict__ scratch, u64 p2, float clr, float eps, float wd, int maximize, int decay) {
    mo_rowwise_body<float>(keys, nnz, cols, values, param, sum, scratch, p2, clr, eps, wd, maximize, decay);
}
MASKOPS_KERNEL(maskops_adagrad_rowwise_f64, const u64* __restrict__ keys, u64 nnz, u64 cols,
               const double* __restrict__ values, double* __restrict__ param, double* __restrict__ sum,
               double* __restrict__ scratch, u64 p2, double clr, double eps, double wd, int maximize, int decay) {
    mo_rowwise_body<double>(keys, nnz, cols, values, param, sum, scratch, p2, clr, eps, wd, maximize, decay);
}
