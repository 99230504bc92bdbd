// Masked softmax / log-softmax over the rows of a row-major matrix (dim = 1),
// forward and backward, in the canonical order, with the deterministic
// exp/ln of src/math.rs. For a row with kept set K (masked-out entries are
// never read into arithmetic and get 0):
//   m  = max_K x                      (NaN propagates)
//   s  = sum_K exp(x - m)             (canonical order)
//   softmax      y = exp(x - m) * (1 / s)   (the reciprocal rounded once: the CPU fast path)
//   log_softmax  y = (x - m) - ln(s)
// backward, given y and the upstream gradient g:
//   softmax      dx = y * (g - sum_K g*y)
//   log_softmax  dx = g - exp(y) * sum_K g
// Short rows (<= 4096, one canonical block): one warp per row, 8 rows per
// CUDA block. Long rows: one CUDA block per row, its warps take the
// canonical blocks of the row and the partials are folded by the halving
// tree in a global scratch row of p2 floats; no length limit.
#ifndef MASKOPS_COMMON_CUH
#include "common.cuh"
#endif

// Canonical fold of val(k) over the kept k < n of one row.
//   WARP: the calling warp alone (n <= 4096); every lane gets the result.
//   block: every thread of the block; scratch holds p2 >= ceil(n/4096)
//   floats; every thread gets the result.
template <int OP, bool WARP, class Val>
__device__ __forceinline__ float mo_row_fold(const u64* __restrict__ mask, u64 base, u64 n, Val val,
                                             float* __restrict__ scratch, u64 p2) {
    const u32 lane = threadIdx.x & 31u;
    if (WARP) {
        float acc = MoOp<OP>::id();
        for (u64 k = lane; k < n; k += 32u)
            if (mo_keep(mask, base + k)) acc = MoOp<OP>::f(acc, val(k));
        acc = mo_warp_fold<OP>(acc);
        return __shfl_sync(MASKOPS_FULL_MASK, acc, 0);
    }
    const u32 warp = threadIdx.x / 32u;
    const u32 nwarps = blockDim.x / 32u;
    const u64 nb = (n + MASKOPS_BLOCK - 1) / MASKOPS_BLOCK;
    for (u64 b = warp; b < nb; b += nwarps) {
        const u64 start = b * MASKOPS_BLOCK;
        const u64 len = n - start < MASKOPS_BLOCK ? n - start : MASKOPS_BLOCK;
        float acc = MoOp<OP>::id();
        for (u64 k = lane; k < len; k += 32u)
            if (mo_keep(mask, base + start + k)) acc = MoOp<OP>::f(acc, val(start + k));
        acc = mo_warp_fold<OP>(acc);
        if (lane == 0) scratch[b] = acc;
    }
    for (u64 j = nb + threadIdx.x; j < p2; j += blockDim.x) scratch[j] = MoOp<OP>::id();
    __syncthreads();
    for (u64 w = p2 / 2; w >= 1; w /= 2) {
        for (u64 j = threadIdx.x; j < w; j += blockDim.x) scratch[j] = MoOp<OP>::f(scratch[j], scratch[j + w]);
        __syncthreads();
    }
    const float r = scratch[0];
    __syncthreads();  // scratch is reused by the next fold
    return r;
}

template <int D, bool WARP>
__device__ __forceinline__ void mo_softmax_fwd(const typename MoElem<D>::T* __restrict__ x, const u64* __restrict__ mask,
                                               u64 rows, u64 n, int log, typename MoElem<D>::T* __restrict__ out,
                                               float* __restrict__ scratch, u64 p2) {
    const u64 row = WARP ? (u64)blockIdx.x * (blockDim.x / 32u) + threadIdx.x / 32u : (u64)blockIdx.x;
    if (row >= rows) return;  // whole warps (WARP) or whole blocks leave together
    const u64 base = row * n;
    float* sc = WARP ? scratch : scratch + row * p2;
    const float m = mo_row_fold<MO_OP_MAX, WARP>(
        mask, base, n, [&](u64 k) { return MoElem<D>::load(x, base + k); }, sc, p2);
    const float s = mo_row_fold<MO_OP_SUM, WARP>(
        mask, base, n, [&](u64 k) { return mo_exp(MoElem<D>::load(x, base + k) - m); }, sc, p2);
    const float lns = log ? mo_ln(s) : 0.0f;
    const u64 step = WARP ? 32u : blockDim.x;
    for (u64 k = WARP ? (threadIdx.x & 31u) : threadIdx.x; k < n; k += step) {
        float y = 0.0f;
        if (mo_keep(mask, base + k)) {
            const float d = MoElem<D>::load(x, base + k) - m;
            y = log ? d - lns : mo_exp(d) * (1.0f / s);  // the CPU fast path: numerators times 1/s
        }
        MoElem<D>::store(out, base + k, y);
    }
}

template <int D, bool WARP>
__device__ __forceinline__ void mo_softmax_bwd(const typename MoElem<D>::T* __restrict__ y,
                                               const typename MoElem<D>::T* __restrict__ g,
                                               const u64* __restrict__ mask, u64 rows, u64 n, int log,
                                               typename MoElem<D>::T* __restrict__ dx, float* __restrict__ scratch,
                                               u64 p2) {
    const u64 row = WARP ? (u64)blockIdx.x * (blockDim.x / 32u) + threadIdx.x / 32u : (u64)blockIdx.x;
    if (row >= rows) return;
    const u64 base = row * n;
    float* sc = WARP ? scratch : scratch + row * p2;
    float dot;
    if (log) {
        dot = mo_row_fold<MO_OP_SUM, WARP>(
            mask, base, n, [&](u64 k) { return MoElem<D>::load(g, base + k); }, sc, p2);
    } else {
        dot = mo_row_fold<MO_OP_SUM, WARP>(
            mask, base, n,
            [&](u64 k) { return MoElem<D>::load(g, base + k) * MoElem<D>::load(y, base + k); }, sc, p2);
    }
    const u64 step = WARP ? 32u : blockDim.x;
    for (u64 k = WARP ? (threadIdx.x & 31u) : threadIdx.x; k < n; k += step) {
        float r = 0.0f;
        if (mo_keep(mask, base + k)) {
            const float yk = MoElem<D>::load(y, base + k);
            const float gk = MoElem<D>::load(g, base + k);
            r = log ? gk - mo_exp(yk) * dot : yk * (gk - dot);
        }
        MoElem<D>::store(dx, base + k, r);
    }
}

#define MO_SOFTMAX_KERNELS(SUFFIX, D, TY)                                                                       \
    MASKOPS_KERNEL(maskops_softmax_warp_##SUFFIX, const TY* __restrict__ x, const u64* __restrict__ mask,       \
                   u64 rows, u64 n, int log, TY* __restrict__ out) {                                          \
        mo_softmax_fwd<D, true>(x, mask, rows, n, log, out, (float*)0, 1);                                      \
    }                                                                                                           \
    MASKOPS_KERNEL(maskops_softmax_block_##SUFFIX, const TY* __restrict__ x, const u64* __restrict__ mask,      \
                   u64 rows, u64 n, int log, TY* __restrict__ out, float* __restrict__ scratch, u64 p2) {     \
        mo_softmax_fwd<D, false>(x, mask, rows, n, log, out, scratch, p2);                                      \
    }                                                                                                           \
    MASKOPS_KERNEL(maskops_softmax_bwd_warp_##SUFFIX, const TY* __restrict__ y, const TY* __restrict__ g,       \
                   const u64* __restrict__ mask, u64 rows, u64 n, int log, TY* __restrict__ dx) {             \
        mo_softmax_bwd<D, true>(y, g, mask, rows, n, log, dx, (float*)0, 1);                                    \
    }                                                                                                           \
    MASKOPS_KERNEL(maskops_softmax_bwd_block_##SUFFIX, const TY* __restrict__ y, const TY* __restrict__ g,      \
                   const u64* __restrict__ mask, u64 rows, u64 n, int log, TY* __restrict__ dx,               \
                   float* __restrict__ scratch, u64 p2) {                                                       \
        mo_softmax_bwd<D, false>(y, g, mask, rows, n, log, dx, scratch, p2);                                    \
    }

MO_SOFTMAX_KERNELS(f32, MO_F32, float)
MO_SOFTMAX_KERNELS(f16, MO_F16, u16)
MO_SOFTMAX_KERNELS(bf16, MO_BF16, u16)

// ---- dim = 0 (columns) ------------------------------------------------------
// The column statistics come from reduce.cu (a thread per (column, canonical
// block) holding the 32 lane accumulators, then the fold): m = max, s = sum
// exp(x - m), and for the backward dot = sum g*y (or sum g). These kernels
// are the elementwise parts, one thread per element; column c = i % cols.

#define MO_SOFTMAX_COLS_KERNELS(SUFFIX, D, TY)                                                                   \
    MASKOPS_KERNEL(maskops_softmax_cols_apply_##SUFFIX, const TY* __restrict__ x, const u64* __restrict__ mask,  \
                   u64 rows, u64 cols, int log, const float* __restrict__ m, const float* __restrict__ s,       \
                   TY* __restrict__ out) {                                                                     \
        const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;                                              \
        if (i >= rows * cols) return;                                                                          \
        const u64 c = i % cols;                                                                                \
        float y = 0.0f;                                                                                        \
        if (mo_keep(mask, i)) {                                                                                \
            const float d = MoElem<D>::load(x, i) - m[c];                                                      \
            y = log ? d - mo_ln(s[c]) : mo_exp(d) * (1.0f / s[c]);                                             \
        }                                                                                                      \
        MoElem<D>::store(out, i, y);                                                                           \
    }                                                                                                          \
    MASKOPS_KERNEL(maskops_softmax_cols_gy_##SUFFIX, const TY* __restrict__ y, const TY* __restrict__ g, u64 n, \
                   int log, float* __restrict__ out) {                                                         \
        const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;                                              \
        if (i >= n) return;                                                                                    \
        const float gv = MoElem<D>::load(g, i);                                                                \
        out[i] = log ? gv : gv * MoElem<D>::load(y, i);                                                        \
    }                                                                                                          \
    MASKOPS_KERNEL(maskops_softmax_bwd_cols_apply_##SUFFIX, const TY* __restrict__ y, const TY* __restrict__ g,  \
                   const u64* __restrict__ mask, u64 rows, u64 cols, int log, const float* __restrict__ dot,    \
                   TY* __restrict__ dx) {                                                                      \
        const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;                                              \
        if (i >= rows * cols) return;                                                                          \
        const u64 c = i % cols;                                                                                \
        float r = 0.0f;                                                                                        \
        if (mo_keep(mask, i)) {                                                                                \
            const float yk = MoElem<D>::load(y, i);                                                            \
            const float gk = MoElem<D>::load(g, i);                                                            \
            r = log ? gk - mo_exp(yk) * dot[c] : yk * (gk - dot[c]);                                           \
        }                                                                                                      \
        MoElem<D>::store(dx, i, r);                                                                            \
    }

MO_SOFTMAX_COLS_KERNELS(f32, MO_F32, float)
MO_SOFTMAX_COLS_KERNELS(f16, MO_F16, u16)
MO_SOFTMAX_COLS_KERNELS(bf16, MO_BF16, u16)
