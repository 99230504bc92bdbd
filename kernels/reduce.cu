// Masked reductions in the canonical order (src/canonical.rs).
//
// A reduction runs over `seqs` sequences of `len` elements each: the whole
// array (1 sequence), the rows of a row-major matrix (dim = 1) or its columns
// (dim = 0). Three kernels:
//   1. partials: the partial of every canonical block (4096 elements) of every
//      sequence, plus the count of kept elements. Rows layout: one warp per
//      (sequence, block), lane j folds offsets j, j+32, ... and the warp is
//      folded by shuffles (= the halving tree). Columns layout: one thread per
//      (column, block) holding the 32 lane accumulators in registers, so a warp
//      reads 32 adjacent columns (coalesced).
//   2. fold: one CUDA block per sequence pads its `p2` partials (a power of
//      two) with the identity and folds them by the halving tree in place.
//      Skipped when every sequence has a single block.
//   3. finalize: one thread per sequence turns (partial, count) into the
//      result (mean, variance, logsumexp, ...) in the output dtype.
// A fourth kernel packs "count > 0" into the output mask words.
#ifndef MASKOPS_COMMON_CUH
#include "common.cuh"
#endif

// Element transform + fold (codes shared with src/cuda/plan.rs Kind).
#define MO_K_SUM 0
#define MO_K_PROD 1
#define MO_K_MIN 2
#define MO_K_MAX 3
#define MO_K_SQDEV 4   // sum (x - c)^2
#define MO_K_EXPDEV 5  // sum exp_f32(x - c)
#define MO_K_ABS 6     // sum |x|
#define MO_K_SQ 7      // sum x*x
#define MO_K_ABSMAX 8  // max |x|
#define MO_K_NONZERO 9 // sum (x != 0 ? 1 : 0), NaN counting as nonzero (norm 0)
#define MO_K_ABSMIN 10 // min |x| (norm -inf)

template <int K>
struct MoKind;
#define MO_KIND(K, OPC, EXPR)                                                            \
    template <>                                                                          \
    struct MoKind<K> {                                                                   \
        enum { OP = OPC };                                                               \
        template <class A>                                                               \
        static __device__ __forceinline__ A t(A x, A c) { return EXPR; }                 \
    };
MO_KIND(MO_K_SUM, MO_OP_SUM, ((void)c, x))
MO_KIND(MO_K_PROD, MO_OP_PROD, ((void)c, x))
MO_KIND(MO_K_MIN, MO_OP_MIN, ((void)c, x))
MO_KIND(MO_K_MAX, MO_OP_MAX, ((void)c, x))
MO_KIND(MO_K_SQDEV, MO_OP_SUM, (x - c) * (x - c))
MO_KIND(MO_K_EXPDEV, MO_OP_SUM, mo_exp(x - c))
MO_KIND(MO_K_ABS, MO_OP_SUM, ((void)c, mo_abs(x)))
MO_KIND(MO_K_SQ, MO_OP_SUM, ((void)c, x * x))
MO_KIND(MO_K_ABSMAX, MO_OP_MAX, ((void)c, mo_abs(x)))
MO_KIND(MO_K_NONZERO, MO_OP_SUM, ((void)c, x != A(0) ? A(1) : A(0)))
MO_KIND(MO_K_ABSMIN, MO_OP_MIN, ((void)c, mo_abs(x)))

__device__ __forceinline__ int mo_kind_op(int kind) {
    switch (kind) {
        case MO_K_PROD:
            return MO_OP_PROD;
        case MO_K_MIN:
        case MO_K_ABSMIN:
            return MO_OP_MIN;
        case MO_K_MAX:
        case MO_K_ABSMAX:
            return MO_OP_MAX;
        default:
            return MO_OP_SUM;
    }
}

// Rows layout: warp `g` of the grid takes block b = g % nb of sequence
// s = g / nb; element k of sequence s is x[s * len + k].
template <int D, int K>
__device__ __forceinline__ void mo_partials_rows(const typename MoElem<D>::T* __restrict__ x,
                                                 const u64* __restrict__ mask, u64 seqs, u64 len,
                                                 const typename MoElem<D>::Acc* __restrict__ center,
                                                 typename MoElem<D>::Acc* __restrict__ part, u64* __restrict__ cnt,
                                                 u64 p2, u64 nb) {
    typedef MoKind<K> Kd;
    typedef typename MoElem<D>::Acc A;
    const u64 warps_per_block = blockDim.x / 32u;
    const u64 g = (u64)blockIdx.x * warps_per_block + threadIdx.x / 32u;
    const u32 lane = threadIdx.x & 31u;
    if (g >= seqs * nb) return;  // whole warps leave together
    const u64 s = g / nb;
    const u64 b = g - s * nb;
    const u64 start = b * MASKOPS_BLOCK;
    const u64 n = len - start < MASKOPS_BLOCK ? len - start : MASKOPS_BLOCK;
    const u64 base = s * len + start;
    const A c = center ? center[s] : A(0);
    A acc = MoOp<Kd::OP, A>::id();
    u32 kept = 0;
    for (u64 k = lane; k < n; k += 32u) {
        if (mo_keep(mask, base + k)) {
            acc = MoOp<Kd::OP, A>::f(acc, Kd::t(A(MoElem<D>::load(x, base + k)), c));
            ++kept;
        }
    }
    acc = mo_warp_fold<Kd::OP>(acc);
    kept = mo_warp_sum_u32(kept);
    if (lane == 0) {
        part[s * p2 + b] = acc;
        cnt[s * p2 + b] = kept;
    }
}

// Columns layout: thread `g` takes column s = g % seqs, block b = g / seqs;
// element k of column s is x[k * seqs + s].
template <int D, int K>
__device__ __forceinline__ void mo_partials_cols(const typename MoElem<D>::T* __restrict__ x,
                                                 const u64* __restrict__ mask, u64 seqs, u64 len,
                                                 const typename MoElem<D>::Acc* __restrict__ center,
                                                 typename MoElem<D>::Acc* __restrict__ part, u64* __restrict__ cnt,
                                                 u64 p2, u64 nb) {
    typedef MoKind<K> Kd;
    typedef typename MoElem<D>::Acc A;
    const u64 g = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= seqs * nb) return;
    const u64 b = g / seqs;
    const u64 s = g - b * seqs;
    const u64 start = b * MASKOPS_BLOCK;
    const u64 n = len - start < MASKOPS_BLOCK ? len - start : MASKOPS_BLOCK;
    const A c = center ? center[s] : A(0);
    A acc[32];
#pragma unroll
    for (int j = 0; j < 32; ++j) acc[j] = MoOp<Kd::OP, A>::id();
    u32 kept = 0;
    for (u64 i0 = 0; i0 < n; i0 += 32u) {
#pragma unroll
        for (int j = 0; j < 32; ++j) {
            const u64 i = i0 + (u64)j;
            if (i < n) {
                const u64 idx = (start + i) * seqs + s;
                if (mo_keep(mask, idx)) {
                    acc[j] = MoOp<Kd::OP, A>::f(acc[j], Kd::t(A(MoElem<D>::load(x, idx)), c));
                    ++kept;
                }
            }
        }
    }
    const A r = mo_lanes_fold<Kd::OP>(acc);
    part[s * p2 + b] = r;
    cnt[s * p2 + b] = kept;
}

#define MO_KIND_SWITCH(FN, D, ...)                    \
    switch (kind) {                                   \
        case MO_K_SUM:                                \
            FN<D, MO_K_SUM>(__VA_ARGS__);             \
            break;                                    \
        case MO_K_PROD:                               \
            FN<D, MO_K_PROD>(__VA_ARGS__);            \
            break;                                    \
        case MO_K_MIN:                                \
            FN<D, MO_K_MIN>(__VA_ARGS__);             \
            break;                                    \
        case MO_K_MAX:                                \
            FN<D, MO_K_MAX>(__VA_ARGS__);             \
            break;                                    \
        case MO_K_SQDEV:                              \
            FN<D, MO_K_SQDEV>(__VA_ARGS__);           \
            break;                                    \
        case MO_K_EXPDEV:                             \
            FN<D, MO_K_EXPDEV>(__VA_ARGS__);          \
            break;                                    \
        case MO_K_ABS:                                \
            FN<D, MO_K_ABS>(__VA_ARGS__);             \
            break;                                    \
        case MO_K_SQ:                                 \
            FN<D, MO_K_SQ>(__VA_ARGS__);              \
            break;                                    \
        case MO_K_NONZERO:                            \
            FN<D, MO_K_NONZERO>(__VA_ARGS__);         \
            break;                                    \
        case MO_K_ABSMIN:                             \
            FN<D, MO_K_ABSMIN>(__VA_ARGS__);          \
            break;                                    \
        default:                                      \
            FN<D, MO_K_ABSMAX>(__VA_ARGS__);          \
            break;                                    \
    }

#define MO_PARTIALS_KERNELS(SUFFIX, D, TY, ACC)                                                              \
    MASKOPS_KERNEL(maskops_reduce_rows_##SUFFIX, const TY* __restrict__ x, const u64* __restrict__ mask,     \
                   u64 seqs, u64 len, int kind, const ACC* __restrict__ center, ACC* __restrict__ part,      \
                   u64* __restrict__ cnt, u64 p2, u64 nb) {                                                 \
        MO_KIND_SWITCH(mo_partials_rows, D, x, mask, seqs, len, center, part, cnt, p2, nb)                   \
    }                                                                                                        \
    MASKOPS_KERNEL(maskops_reduce_cols_##SUFFIX, const TY* __restrict__ x, const u64* __restrict__ mask,     \
                   u64 seqs, u64 len, int kind, const ACC* __restrict__ center, ACC* __restrict__ part,      \
                   u64* __restrict__ cnt, u64 p2, u64 nb) {                                                 \
        MO_KIND_SWITCH(mo_partials_cols, D, x, mask, seqs, len, center, part, cnt, p2, nb)                   \
    }

MO_PARTIALS_KERNELS(f32, MO_F32, float, float)
MO_PARTIALS_KERNELS(f16, MO_F16, u16, float)
MO_PARTIALS_KERNELS(bf16, MO_BF16, u16, float)
MO_PARTIALS_KERNELS(f64, MO_F64, double, double)

// Step 4: block s pads part[s*p2 + nb .. s*p2 + p2) with the identity and
// folds the p2 partials by the halving tree; the result lands in part[s*p2].
template <class A>
__device__ __forceinline__ void mo_fold_body(A* __restrict__ part, u64* __restrict__ cnt, u64 p2, u64 nb, int kind) {
    const u64 s = blockIdx.x;
    A* v = part + s * p2;
    u64* c = cnt + s * p2;
    const int op = mo_kind_op(kind);
    const A id = mo_op_id<A>(op);
    for (u64 j = nb + threadIdx.x; j < p2; j += blockDim.x) {
        v[j] = id;
        c[j] = 0;
    }
    __syncthreads();
    for (u64 w = p2 / 2; w >= 1; w /= 2) {
        for (u64 j = threadIdx.x; j < w; j += blockDim.x) {
            v[j] = mo_op_apply(op, v[j], v[j + w]);
            c[j] += c[j + w];
        }
        __syncthreads();
    }
}

MASKOPS_KERNEL(maskops_reduce_fold, float* __restrict__ part, u64* __restrict__ cnt, u64 p2, u64 nb, int kind) {
    mo_fold_body<float>(part, cnt, p2, nb, kind);
}
MASKOPS_KERNEL(maskops_reduce_fold_f64, double* __restrict__ part, u64* __restrict__ cnt, u64 p2, u64 nb, int kind) {
    mo_fold_body<double>(part, cnt, p2, nb, kind);
}

// Finalize modes (codes shared with src/cuda/plan.rs Finish).
#define MO_FIN_VALUE 0       // the fold itself (sum, prod, min, max, norm 1 / inf)
#define MO_FIN_MEAN 1        // acc / count
#define MO_FIN_VAR 2         // acc / (count - correction); nothing (count 0) when count <= correction
#define MO_FIN_STD 3         // sqrt of MO_FIN_VAR
#define MO_FIN_LSE 4         // c + ln(acc), or c itself when the max c is not finite
#define MO_FIN_LSE_CENTER 5  // the max (pass 1 of logsumexp)
#define MO_FIN_SQRT 6        // sqrt(acc) (norm 2)

// One thread per sequence: out[s] (dtype out_dtype) and out_cnt[s]. Nothing
// kept gives 0 (the caller clears the output bit from the count). A is the
// accumulator type (f64 only for f64 data, whose output is f64).
template <class A>
__device__ __forceinline__ void mo_finalize_body(const A* __restrict__ part, const u64* __restrict__ cnt, u64 seqs,
                                                 u64 p2, int fin, const A* __restrict__ center, u32 correction,
                                                 void* out, int out_dtype, u64* __restrict__ out_cnt) {
    const u64 s = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (s >= seqs) return;
    const A acc = part[s * p2];
    u64 n = cnt[s * p2];
    // var / std of count <= correction elements: no result (cleared bit), as
    // for nothing kept.
    if ((fin == MO_FIN_VAR || fin == MO_FIN_STD) && n <= (u64)correction) n = 0;
    A r = A(0);
    if (n > 0) {
        switch (fin) {
            case MO_FIN_MEAN:
                r = acc / (A)n;
                break;
            case MO_FIN_VAR:
            case MO_FIN_STD:
                r = acc / (A)(n - (u64)correction);
                if (fin == MO_FIN_STD) r = mo_sqrt(r);
                break;
            case MO_FIN_LSE: {
                const A c = center[s];
                r = (c - c == A(0)) ? c + mo_ln(acc) : c;  // c - c != 0: c is +-inf or NaN
                break;
            }
            case MO_FIN_SQRT:
                r = mo_sqrt(acc);
                break;
            default:
                r = acc;
                break;
        }
    }
    if (out_dtype == MO_F64) {
        ((double*)out)[s] = (double)r;
    } else {
        mo_store_any(out, out_dtype, s, (float)r);
    }
    if (out_cnt) out_cnt[s] = n;
}

MASKOPS_KERNEL(maskops_reduce_finalize, const float* __restrict__ part, const u64* __restrict__ cnt, u64 seqs,
               u64 p2, int fin, const float* __restrict__ center, u32 correction, void* out, int out_dtype,
               u64* __restrict__ out_cnt) {
    mo_finalize_body<float>(part, cnt, seqs, p2, fin, center, correction, out, out_dtype, out_cnt);
}
MASKOPS_KERNEL(maskops_reduce_finalize_f64, const double* __restrict__ part, const u64* __restrict__ cnt, u64 seqs,
               u64 p2, int fin, const double* __restrict__ center, u32 correction, void* out, int out_dtype,
               u64* __restrict__ out_cnt) {
    mo_finalize_body<double>(part, cnt, seqs, p2, fin, center, correction, out, out_dtype, out_cnt);
}

// Output mask: bit s of words = (cnt[s] > 0), one thread per u64 word.
MASKOPS_KERNEL(maskops_pack_counts, const u64* __restrict__ cnt, u64 n, u64* __restrict__ words) {
    const u64 w = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (w >= (n + 63) / 64) return;
    u64 bits = 0;
    for (u64 i = 0; i < 64; ++i) {
        const u64 k = w * 64 + i;
        if (k < n && cnt[k] > 0) bits |= 1ull << i;
    }
    words[w] = bits;
}

// argmin / argmax, second pass: given the extreme value m[s] of each
// sequence (a MO_K_MIN / MO_K_MAX reduction into f32), out[s] becomes the
// smallest position k of a kept element equal to m[s] (NaN matches NaN),
// via atomicMin on integers (order-free, so deterministic). out must hold
// ~0 beforehand (maskops_fill_u64); it stays ~0 where nothing is kept.
// Layout: rows (element k of s at s*len + k) or cols (at k*seqs + s); one
// thread per element.
#define MO_ARGFIND_KERNEL(SUFFIX, D, TY, ACC)                                                                \
    MASKOPS_KERNEL(maskops_argfind_##SUFFIX, const TY* __restrict__ x, const u64* __restrict__ mask, u64 seqs, \
                   u64 len, int cols_layout, const ACC* __restrict__ m, unsigned long long* __restrict__ out) { \
        const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;                                            \
        if (i >= seqs * len) return;                                                                         \
        if (!mo_keep(mask, i)) return;                                                                       \
        const u64 s = cols_layout ? i % seqs : i / len;                                                      \
        const u64 k = cols_layout ? i / seqs : i % len;                                                      \
        const ACC v = MoElem<D>::load(x, i);                                                                 \
        const ACC t = m[s];                                                                                  \
        if (v == t || (v != v && t != t)) atomicMin(out + s, (unsigned long long)k);                         \
    }
MO_ARGFIND_KERNEL(f32, MO_F32, float, float)
MO_ARGFIND_KERNEL(f16, MO_F16, u16, float)
MO_ARGFIND_KERNEL(bf16, MO_BF16, u16, float)
MO_ARGFIND_KERNEL(f64, MO_F64, double, double)

// out[i] = v for i < n.
MASKOPS_KERNEL(maskops_fill_u64, unsigned long long* __restrict__ out, u64 n, unsigned long long v) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = v;
}

// Popcount of n mask words into *out (a device mask's kept count). An
// integer sum, so the atomics give the same total in any order; every
// thread of a warp takes part in the shuffle.
MASKOPS_KERNEL(maskops_popcount, const u64* __restrict__ words, u64 n, unsigned long long* __restrict__ out) {
    const u64 w = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u32 c = w < n ? (u32)__popcll(words[w]) : 0u;
    c = mo_warp_sum_u32(c);
    if ((threadIdx.x & 31u) == 0 && c != 0u) atomicAdd(out, (unsigned long long)c);
}
