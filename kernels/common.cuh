// Shared helpers of every kernels/*.cu file: portable kernel declaration,
// mask-bit access, half/bfloat16 conversions on raw bits, the deterministic
// exp/ln of src/math.rs, and the warp fold of the canonical order
// (src/canonical.rs).
//
// Compiled three ways with one source:
//   * by NVRTC (build.rs, or at run time from the embedded text): this file
//     is prepended to each kernel file, so the `#include "common.cuh"` guarded
//     by MASKOPS_COMMON_CUH in the .cu files is skipped;
//   * for the host by the `cuda-emulator` feature: emu.cuh supplies the
//     execution model;
//   * options: --fmad=false (no FMA contraction), default IEEE div/sqrt,
//     no flush-to-zero. The code never relies on fast-math intrinsics.
#ifndef MASKOPS_COMMON_CUH
#define MASKOPS_COMMON_CUH

#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef long long i64;
#define MASKOPS_KERNEL(name, ...) extern "C" __global__ void name(__VA_ARGS__)
#define MASKOPS_EXTERN_SHARED(T, name) extern __shared__ T name[]
#define MASKOPS_SHARED(T, name, N) __shared__ T name[N]
#define MASKOPS_INF __int_as_float(0x7f800000)
#define MASKOPS_NAN __int_as_float(0x7fc00000)
#else
#include "emu.cuh"
typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef long long i64;
#define MASKOPS_INF __int_as_float(0x7f800000)
#define MASKOPS_NAN __int_as_float(0x7fc00000)
#endif

#define MASKOPS_FULL_MASK 0xffffffffu
// Canonical order constants (src/canonical.rs).
#define MASKOPS_BLOCK 4096u
#define MASKOPS_LANES 32u

// ---- masks ---------------------------------------------------------------

// Bit i of an LSB-first u64 bitmap; 1 keeps the element.
__device__ __forceinline__ bool mo_keep(const u64* __restrict__ mask, u64 i) {
    return ((mask[i >> 6] >> (i & 63u)) & 1ull) != 0;
}

// ---- element types on raw bits --------------------------------------------

// dtype codes shared with the Rust side (src/cuda/plan.rs DType).
#define MO_F32 0
#define MO_F16 1
#define MO_BF16 2
#define MO_F64 3

__device__ __forceinline__ float mo_f16_to_f32(u16 h) {
    const u32 s = (u32)(h & 0x8000u) << 16;
    const u32 e = (h >> 10) & 0x1fu;
    const u32 m = h & 0x3ffu;
    if (e == 0x1fu) return __uint_as_float(s | 0x7f800000u | (m << 13));
    if (e == 0u) {
        // zero or subnormal: m * 2^-24, exact in f32
        const float v = (float)m * 5.9604644775390625e-8f;
        return s ? -v : v;
    }
    return __uint_as_float(s | ((e + 112u) << 23) | (m << 13));
}

// Round to nearest even, like half::f16::from_f32.
__device__ __forceinline__ u16 mo_f32_to_f16(float f) {
    const u32 x = __float_as_uint(f);
    const u32 sign = (x >> 16) & 0x8000u;
    const u32 ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {
        return (u16)(sign | (ax > 0x7f800000u ? (0x7e00u | ((ax >> 13) & 0x3ffu)) : 0x7c00u));
    }
    if (ax >= 0x477ff000u) return (u16)(sign | 0x7c00u);  // >= 65520 rounds to inf
    if (ax < 0x38800000u) {
        // below 2^-14: subnormal f16 (or zero); f * 2^24 is exact, rintf rounds ties to even
        const float q = rintf(__uint_as_float(ax) * 16777216.0f);
        return (u16)(sign | (u32)q);
    }
    const u32 e = (ax >> 23) - 112u;
    const u32 mant = ax & 0x7fffffu;
    u32 h = (e << 10) | (mant >> 13);
    const u32 rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h += 1u;
    return (u16)(sign | h);
}

__device__ __forceinline__ float mo_bf16_to_f32(u16 h) { return __uint_as_float((u32)h << 16); }

// Round to nearest even, like half::bf16::from_f32 (NaN stays quiet NaN).
__device__ __forceinline__ u16 mo_f32_to_bf16(float f) {
    const u32 x = __float_as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (u16)((x >> 16) | 0x0040u);
    const u32 r = x + 0x7fffu + ((x >> 16) & 1u);
    return (u16)(r >> 16);
}

template <int D>
struct MoElem;
template <>
struct MoElem<MO_F32> {
    typedef float T;
    typedef float Acc;
    static __device__ __forceinline__ float load(const float* __restrict__ p, u64 i) { return p[i]; }
    static __device__ __forceinline__ void store(float* p, u64 i, float v) { p[i] = v; }
};
template <>
struct MoElem<MO_F16> {
    typedef u16 T;
    typedef float Acc;
    static __device__ __forceinline__ float load(const u16* __restrict__ p, u64 i) { return mo_f16_to_f32(p[i]); }
    static __device__ __forceinline__ void store(u16* p, u64 i, float v) { p[i] = mo_f32_to_f16(v); }
};
template <>
struct MoElem<MO_BF16> {
    typedef u16 T;
    typedef float Acc;
    static __device__ __forceinline__ float load(const u16* __restrict__ p, u64 i) { return mo_bf16_to_f32(p[i]); }
    static __device__ __forceinline__ void store(u16* p, u64 i, float v) { p[i] = mo_f32_to_bf16(v); }
};

template <>
struct MoElem<MO_F64> {
    typedef double T;
    typedef double Acc;
    static __device__ __forceinline__ double load(const double* __restrict__ p, u64 i) { return p[i]; }
    static __device__ __forceinline__ void store(double* p, u64 i, double v) { p[i] = v; }
};

// Stores an f32 result into an output of any dtype (runtime code).
__device__ __forceinline__ void mo_store_any(void* out, int dtype, u64 i, float v) {
    if (dtype == MO_F16) {
        ((u16*)out)[i] = mo_f32_to_f16(v);
    } else if (dtype == MO_BF16) {
        ((u16*)out)[i] = mo_f32_to_bf16(v);
    } else {
        ((float*)out)[i] = v;
    }
}

// ---- deterministic exp / ln: transcriptions of src/math.rs -----------------

#define MO_EXP_HI 88.72283f
#define MO_EXP_LO -87.33655f
#define MO_LOG2E 1.44269504088896340736f
#define MO_LN2_HI 0.6933594f
#define MO_LN2_LO -2.1219444e-4f
#define MO_SQRTHF 0.70710678118654752440f

__device__ __forceinline__ float mo_pow2i(int k) { return __int_as_float((k + 127) << 23); }

__device__ __forceinline__ float mo_exp(float x) {
    if (x != x) return x;
    if (x > MO_EXP_HI) return MASKOPS_INF;
    if (x < MO_EXP_LO) return 0.0f;
    const float n = rintf(x * MO_LOG2E);
    const float r = (x - n * MO_LN2_HI) - n * MO_LN2_LO;
    const float z = r * r;
    float p = 1.9875691e-4f;
    p = p * r + 1.3982e-3f;
    p = p * r + 8.333452e-3f;
    p = p * r + 4.1665796e-2f;
    p = p * r + 1.6666665e-1f;
    p = p * r + 5.0000001e-1f;
    const float y = (p * z + r) + 1.0f;
    const int ni = (int)n;
    const int n1 = ni / 2;
    const int n2 = ni - n1;
    return (y * mo_pow2i(n1)) * mo_pow2i(n2);
}

__device__ __forceinline__ float mo_ln(float x) {
    if (x != x || x < 0.0f) return MASKOPS_NAN;
    if (x == 0.0f) return -MASKOPS_INF;
    if (x == MASKOPS_INF) return x;
    u32 bits = __float_as_uint(x);
    int e = 0;
    if (bits < 0x00800000u) {
        bits = __float_as_uint(x * 8388608.0f);
        e = -23;
    }
    e += (int)(bits >> 23) - 126;
    float m = __uint_as_float((bits & 0x007fffffu) | 0x3f000000u);
    if (m < MO_SQRTHF) {
        e -= 1;
        m = (m + m) - 1.0f;
    } else {
        m -= 1.0f;
    }
    const float ef = (float)e;
    const float z = m * m;
    float p = 7.0376836e-2f;
    p = p * m + -1.151461e-1f;
    p = p * m + 1.1676999e-1f;
    p = p * m + -1.2420141e-1f;
    p = p * m + 1.4249323e-1f;
    p = p * m + -1.6668058e-1f;
    p = p * m + 2.0000714e-1f;
    p = p * m + -2.4999994e-1f;
    p = p * m + 3.333333e-1f;
    float y = (p * m) * z;
    y += MO_LN2_LO * ef;
    y += -0.5f * z;
    const float r = m + y;
    return r + MO_LN2_HI * ef;
}

// f64 data (reductions only): the device's double exp / log / sqrt. Not
// bit-reproducible against a CPU libm (the CPU f64 paths use std), so f64
// results involving exp/ln are checked with a tolerance.
__device__ __forceinline__ double mo_exp(double x) { return exp(x); }
__device__ __forceinline__ double mo_ln(double x) { return log(x); }
__device__ __forceinline__ float mo_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double mo_sqrt(double x) { return sqrt(x); }

// ---- folds -----------------------------------------------------------------

// NaN-propagating max/min (the first NaN operand wins; ties keep `b`).
template <class A>
__device__ __forceinline__ A mo_max(A a, A b) {
    if (a != a) return a;
    if (b != b) return b;
    return a > b ? a : b;
}
template <class A>
__device__ __forceinline__ A mo_min(A a, A b) {
    if (a != a) return a;
    if (b != b) return b;
    return a < b ? a : b;
}

__device__ __forceinline__ float mo_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double mo_abs(double x) { return fabs(x); }

// Fold operators of the reductions (codes shared with src/cuda/plan.rs).
#define MO_OP_SUM 0
#define MO_OP_PROD 1
#define MO_OP_MIN 2
#define MO_OP_MAX 3

// MoOp<OP, A>: identity and fold in the accumulator type A (f32, or f64
// for f64 data).
template <int OP, class A = float>
struct MoOp;
template <class A>
struct MoOp<MO_OP_SUM, A> {
    static __device__ __forceinline__ A id() { return A(0); }
    static __device__ __forceinline__ A f(A a, A b) { return a + b; }
};
template <class A>
struct MoOp<MO_OP_PROD, A> {
    static __device__ __forceinline__ A id() { return A(1); }
    static __device__ __forceinline__ A f(A a, A b) { return a * b; }
};
template <class A>
struct MoOp<MO_OP_MIN, A> {
    static __device__ __forceinline__ A id() { return A(MASKOPS_INF); }
    static __device__ __forceinline__ A f(A a, A b) { return mo_min(a, b); }
};
template <class A>
struct MoOp<MO_OP_MAX, A> {
    static __device__ __forceinline__ A id() { return A(-MASKOPS_INF); }
    static __device__ __forceinline__ A f(A a, A b) { return mo_max(a, b); }
};

template <class A>
__device__ __forceinline__ A mo_op_id(int op) {
    return op == MO_OP_SUM ? A(0) : op == MO_OP_PROD ? A(1) : op == MO_OP_MIN ? A(MASKOPS_INF) : A(-MASKOPS_INF);
}
template <class A>
__device__ __forceinline__ A mo_op_apply(int op, A a, A b) {
    return op == MO_OP_SUM ? a + b : op == MO_OP_PROD ? a * b : op == MO_OP_MIN ? mo_min(a, b) : mo_max(a, b);
}

// Step 3 of the canonical order over a warp: lane j holds acc_j; after the
// call lane 0 holds the block partial (shfl_down by 16, 8, 4, 2, 1 is exactly
// the halving tree acc_j = op(acc_j, acc_{j+w}) for j < w). All 32 lanes must
// call it.
template <int OP, class A>
__device__ __forceinline__ A mo_warp_fold(A v) {
#pragma unroll
    for (int w = 16; w >= 1; w >>= 1) v = MoOp<OP, A>::f(v, __shfl_down_sync(MASKOPS_FULL_MASK, v, w));
    return v;
}

__device__ __forceinline__ u32 mo_warp_sum_u32(u32 v) {
#pragma unroll
    for (int w = 16; w >= 1; w >>= 1) v += __shfl_down_sync(MASKOPS_FULL_MASK, v, w);
    return v;
}

// The halving tree over a register array of 32 lane accumulators.
template <int OP, class A>
__device__ __forceinline__ A mo_lanes_fold(A* acc) {
    // Written level by level so every index is a constant (registers, not
    // local memory).
#pragma unroll
    for (int j = 0; j < 16; ++j) acc[j] = MoOp<OP, A>::f(acc[j], acc[j + 16]);
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[j] = MoOp<OP, A>::f(acc[j], acc[j + 8]);
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[j] = MoOp<OP, A>::f(acc[j], acc[j + 4]);
#pragma unroll
    for (int j = 0; j < 2; ++j) acc[j] = MoOp<OP, A>::f(acc[j], acc[j + 2]);
    acc[0] = MoOp<OP, A>::f(acc[0], acc[1]);
    return acc[0];
}

#endif  // MASKOPS_COMMON_CUH
