// Masked losses with their gradients, f32, transcribing the CPU kernels
// (src/cpu/loss.rs and its portable room): the same per-element formulas
// with the constants rounded once from f64 on the host, sums in the
// canonical order, the mean as f32(f64(total) / f64(denominator)).
//
// Elementwise (mse, l1, huber, smooth_l1): one warp per canonical block of
// 4096 elements writes the gradient (0 where masked out), optionally the
// per-element values, and the block partial; reduce.cu's fold kernel folds
// the partials and maskops_loss_finalize divides for the mean.
//
// Cross-entropy over `rows x classes` logits with i64 targets: per row
//   m = max_c x_c, s = sum_c exp(x_c - m), q = sum_c w_c (x_c - m) (smoothing)
//   loss_r = w_t (ln s - (x_t - m))                  (no smoothing)
//          = a1 * nll + a2 * (w_all ln s - q)        (label smoothing eps)
//   grad_c = exp(x_c - m) * alpha - beta * w_c, grad_t -= scale (1 - eps) w_t
// with scale = 1 / sum of the kept rows' weights for the mean. A warp per
// row for classes <= 4096, a CUDA block per row above.
#ifndef MASKOPS_COMMON_CUH
#include "common.cuh"
#endif

// Elementwise loss kinds (codes shared with src/cuda/ops.rs).
#define MO_L_MSE 0
#define MO_L_L1 1
#define MO_L_HUBER 2
#define MO_L_SMOOTH 3

// sign(d): 1, -1, 0 for +-0, NaN for NaN (like the CPU's sgn).
template <class A>
__device__ __forceinline__ A mo_sgn(A d) {
    if (d != d) return d;
    if (d < A(0)) return A(-1);
    if (d > A(0)) return A(1);
    return A(0);
}

// Rust's f32::max: a NaN operand is ignored.
__device__ __forceinline__ float mo_fmax_rs(float a, float b) {
    if (a != a) return b;
    if (b != b) return a;
    return a > b ? a : b;
}

// The per-element (value, gradient) of one kept element: src/cpu/arch/
// portable/loss.rs elem_op. p = {s, s2, a, b, c}.
template <int K, class A>
__device__ __forceinline__ void mo_loss_elem(A x, A y, A ps, A ps2, A pa, A pb, A pc, A* v, A* g) {
    const A d = x - y;
    if (K == MO_L_MSE) {
        *v = d * d;
        *g = d * ps;
    } else if (K == MO_L_L1) {
        *v = mo_abs(d);
        *g = mo_sgn(d) * ps;
    } else if (K == MO_L_HUBER) {
        const A a = mo_abs(d);
        if (a < pa) {
            *v = (d * d) * A(0.5);
            *g = d * ps;
        } else {
            *v = (a - pb) * pa;
            *g = mo_sgn(d) * pc;
        }
    } else {
        const A a = mo_abs(d);
        if (a < pa) {
            *v = (d * d) * pc;
            *g = d * ps2;
        } else {
            *v = a - pb;
            *g = mo_sgn(d) * ps;
        }
    }
}

template <int K, class A>
__device__ __forceinline__ void mo_loss_elem_blocks(const A* __restrict__ x, const A* __restrict__ y,
                                                    const u64* __restrict__ mask, u64 n, A ps, A ps2, A pa, A pb,
                                                    A pc, A* __restrict__ grad, A* __restrict__ vals,
                                                    A* __restrict__ part, u64* __restrict__ cnt) {
    const u64 b = (u64)blockIdx.x * (blockDim.x / 32u) + threadIdx.x / 32u;
    const u32 lane = threadIdx.x & 31u;
    const u64 nb = (n + MASKOPS_BLOCK - 1) / MASKOPS_BLOCK;
    if (b >= nb) return;
    const u64 start = b * MASKOPS_BLOCK;
    const u64 len = n - start < MASKOPS_BLOCK ? n - start : MASKOPS_BLOCK;
    A acc = A(0);
    u32 kept = 0;
    for (u64 k = lane; k < len; k += 32u) {
        const u64 i = start + k;
        A v = A(0), g = A(0);
        if (mo_keep(mask, i)) {
            mo_loss_elem<K, A>(x[i], y[i], ps, ps2, pa, pb, pc, &v, &g);
            acc = acc + v;
            ++kept;
        }
        grad[i] = g;
        if (vals) vals[i] = v;
    }
    acc = mo_warp_fold<MO_OP_SUM, A>(acc);
    kept = mo_warp_sum_u32(kept);
    if (lane == 0) {
        part[b] = acc;
        cnt[b] = kept;
    }
}

#define MO_LOSS_ELEM_KERNEL(SUFFIX, A)                                                                           \
    MASKOPS_KERNEL(maskops_loss_elem_##SUFFIX, const A* __restrict__ x, const A* __restrict__ y,                  \
                   const u64* __restrict__ mask, u64 n, int kind, A ps, A ps2, A pa, A pb, A pc,                 \
                   A* __restrict__ grad, A* __restrict__ vals, A* __restrict__ part, u64* __restrict__ cnt) {    \
        switch (kind) {                                                                                          \
            case MO_L_MSE:                                                                                       \
                mo_loss_elem_blocks<MO_L_MSE, A>(x, y, mask, n, ps, ps2, pa, pb, pc, grad, vals, part, cnt);     \
                break;                                                                                           \
            case MO_L_L1:                                                                                        \
                mo_loss_elem_blocks<MO_L_L1, A>(x, y, mask, n, ps, ps2, pa, pb, pc, grad, vals, part, cnt);      \
                break;                                                                                           \
            case MO_L_HUBER:                                                                                     \
                mo_loss_elem_blocks<MO_L_HUBER, A>(x, y, mask, n, ps, ps2, pa, pb, pc, grad, vals, part, cnt);   \
                break;                                                                                           \
            default:                                                                                             \
                mo_loss_elem_blocks<MO_L_SMOOTH, A>(x, y, mask, n, ps, ps2, pa, pb, pc, grad, vals, part, cnt);  \
                break;                                                                                           \
        }                                                                                                        \
    }
MO_LOSS_ELEM_KERNEL(f32, float)
MO_LOSS_ELEM_KERNEL(f64, double)

// out[0] = mean ? f32(f64(total) / f64(denominator)) : total, and 0 when the
// denominator is 0. The denominator is `kept` or, when denom is not null,
// *denom (cross-entropy's sum of weights).
MASKOPS_KERNEL(maskops_loss_finalize, const float* __restrict__ total, const float* __restrict__ denom, u64 kept,
               int mean, float* __restrict__ out) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    const double d = denom ? (double)denom[0] : (double)kept;
    float r = total[0];
    if (mean) r = d == 0.0 ? 0.0f : (float)((double)r / d);
    out[0] = r;
}

// The same for f64 losses (elementwise only): total / kept in f64.
MASKOPS_KERNEL(maskops_loss_finalize_f64, const double* __restrict__ total, u64 kept, int mean,
               double* __restrict__ out) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double r = total[0];
    if (mean) r = kept == 0 ? 0.0 : r / (double)kept;
    out[0] = r;
}

// Cross-entropy preparation, one thread per 64 rows: the keep bits
// (target != ignore_index) and each row's weight (0 when ignored).
MASKOPS_KERNEL(maskops_ce_prep, const i64* __restrict__ targets, u64 rows, i64 ignore_index,
               const float* __restrict__ weight, float* __restrict__ wrow, u64* __restrict__ words) {
    const u64 w = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (w >= (rows + 63) / 64) return;
    u64 bits = 0;
    for (u64 i = 0; i < 64; ++i) {
        const u64 r = w * 64 + i;
        if (r >= rows) break;
        const i64 t = targets[r];
        const bool keep = t != ignore_index;
        if (keep) bits |= 1ull << i;
        wrow[r] = keep ? (weight ? weight[t] : 1.0f) : 0.0f;
    }
    words[w] = bits;
}

// Canonical fold over one row of all `n` classes (no mask); see softmax.cu's
// mo_row_fold for the WARP / block split.
template <int OP, bool WARP, class Val>
__device__ __forceinline__ float mo_ce_fold(u64 n, Val val, float* __restrict__ scratch, u64 p2) {
    const u32 lane = threadIdx.x & 31u;
    if (WARP) {
        float acc = MoOp<OP>::id();
        for (u64 k = lane; k < n; k += 32u) acc = MoOp<OP>::f(acc, val(k));
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
        for (u64 k = lane; k < len; k += 32u) acc = MoOp<OP>::f(acc, val(start + k));
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
    __syncthreads();
    return r;
}

// Max with Rust's f32::max semantics (order-free apart from +-0), folded by
// the same structure.
template <bool WARP, class Val>
__device__ __forceinline__ float mo_ce_max(u64 n, Val val, float* __restrict__ scratch) {
    const u32 lane = threadIdx.x & 31u;
    float acc = -MASKOPS_INF;
    if (WARP) {
        for (u64 k = lane; k < n; k += 32u) acc = mo_fmax_rs(acc, val(k));
#pragma unroll
        for (int w = 16; w >= 1; w >>= 1) acc = mo_fmax_rs(acc, __shfl_down_sync(MASKOPS_FULL_MASK, acc, w));
        return __shfl_sync(MASKOPS_FULL_MASK, acc, 0);
    }
    for (u64 k = threadIdx.x; k < n; k += blockDim.x) acc = mo_fmax_rs(acc, val(k));
#pragma unroll
    for (int w = 16; w >= 1; w >>= 1) acc = mo_fmax_rs(acc, __shfl_down_sync(MASKOPS_FULL_MASK, acc, w));
    if (lane == 0) scratch[threadIdx.x / 32u] = acc;
    __syncthreads();
    float r = -MASKOPS_INF;
    for (u32 k = 0; k < blockDim.x / 32u; ++k) r = mo_fmax_rs(r, scratch[k]);
    __syncthreads();
    return r;
}

template <bool WARP>
__device__ __forceinline__ void mo_ce_row(const float* __restrict__ x, u64 rows, u64 classes,
                                          const i64* __restrict__ targets, i64 ign, const float* __restrict__ w,
                                          double eps, double w_all, int mean, const float* __restrict__ denom,
                                          float* __restrict__ grad, float* __restrict__ rowv,
                                          float* __restrict__ scratch, u64 p2) {
    const u64 r = WARP ? (u64)blockIdx.x * (blockDim.x / 32u) + threadIdx.x / 32u : (u64)blockIdx.x;
    if (r >= rows) return;
    const u64 first = WARP ? (threadIdx.x & 31u) : threadIdx.x;
    const u64 step = WARP ? 32u : blockDim.x;
    const float* xr = x + r * classes;
    float* gr = grad + r * classes;
    const i64 t = targets[r];
    const double den = (double)denom[0];
    if (t == ign || (mean && den == 0.0)) {
        for (u64 c = first; c < classes; c += step) gr[c] = 0.0f;
        if (first == 0) rowv[r] = 0.0f;
        return;
    }
    float* sc = WARP ? scratch : scratch + r * (p2 < 32u ? 32u : p2);  // row stride: see ops.rs
    const double scale = mean ? 1.0 / den : 1.0;
    const double cf = (double)classes;
    const bool smooth = eps > 0.0;
    const float a1 = (float)(1.0 - eps);
    const float a2 = (float)(eps / cf);
    const float w_all_f = (float)w_all;
    const float beta = (float)(scale * eps / cf);
    const float wtv = w ? w[t] : 1.0f;
    const float m = mo_ce_max<WARP>(classes, [&](u64 c) { return xr[c]; }, sc);
    const float s = mo_ce_fold<MO_OP_SUM, WARP>(classes, [&](u64 c) { return mo_exp(xr[c] - m); }, sc, p2);
    float q = 0.0f;
    if (smooth) {
        if (w) {
            q = mo_ce_fold<MO_OP_SUM, WARP>(classes, [&](u64 c) { return w[c] * (xr[c] - m); }, sc, p2);
        } else {
            q = mo_ce_fold<MO_OP_SUM, WARP>(classes, [&](u64 c) { return xr[c] - m; }, sc, p2);
        }
    }
    const float ls = mo_ln(s);
    const float nll = wtv * (ls - (xr[t] - m));
    const float loss = smooth ? a1 * nll + a2 * (w_all_f * ls - q) : nll;
    const double wt64 = (double)wtv;
    const float alpha = (float)(scale * ((1.0 - eps) * wt64 + eps / cf * w_all) / (double)s);
    const float gt = (float)(scale * (1.0 - eps) * wt64);
    for (u64 c = first; c < classes; c += step) {
        const float e = mo_exp(xr[c] - m);
        float g = w ? e * alpha - beta * w[c] : e * alpha - beta;
        if (c == (u64)t) g -= gt;
        gr[c] = g;
    }
    if (first == 0) rowv[r] = loss;
}

MASKOPS_KERNEL(maskops_ce_rows_warp_f32, const float* __restrict__ x, u64 rows, u64 classes,
               const i64* __restrict__ targets, i64 ign, const float* __restrict__ w, double eps, double w_all,
               int mean, const float* __restrict__ denom, float* __restrict__ grad, float* __restrict__ rowv) {
    mo_ce_row<true>(x, rows, classes, targets, ign, w, eps, w_all, mean, denom, grad, rowv, (float*)0, 1);
}

MASKOPS_KERNEL(maskops_ce_rows_block_f32, const float* __restrict__ x, u64 rows, u64 classes,
               const i64* __restrict__ targets, i64 ign, const float* __restrict__ w, double eps, double w_all,
               int mean, const float* __restrict__ denom, float* __restrict__ grad, float* __restrict__ rowv,
               float* __restrict__ scratch, u64 p2) {
    mo_ce_row<false>(x, rows, classes, targets, ign, w, eps, w_all, mean, denom, grad, rowv, scratch, p2);
}
