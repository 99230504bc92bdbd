//! Deterministic elementary functions shared by every fast path.
//!
//! `exp` and `ln` of the platform's libm differ between CPU, SIMD and CUDA.
//! Where the crate promises bit-identical results (softmax, logsumexp,
//! cross-entropy on `f32`/`f16`/`bf16`), every path evaluates these
//! functions instead: the same Cephes polynomials, the same operation order,
//! plain multiplies and adds (no FMA), round-to-nearest-even range
//! reduction. The SIMD and CUDA versions are line-by-line transcriptions.
//!
//! Accuracy (measured by `tests/math.rs` against `f64` over the ranges
//! stated there): `exp_f32` within 2 ulp for results >= 2^-126 (results below
//! the normal range are flushed to 0, inputs below [`EXP_LO`]), `ln_f32`
//! within 2 ulp on positive normal and subnormal inputs.

/// Inputs above this give `+inf` from [`exp_f32`].
pub const EXP_HI: f32 = 88.722_83;
/// Inputs below this give `0` from [`exp_f32`] (`ln(2^-126)`).
pub const EXP_LO: f32 = -87.336_55;
/// `log2(e)` rounded to `f32`.
pub const LOG2E: f32 = std::f32::consts::LOG2_E;
/// High part of `ln 2` (exact in 9 bits, so `n * LN2_HI` is exact).
pub const LN2_HI: f32 = 0.693_359_4;
/// Low part of `ln 2` (`ln 2 - LN2_HI`).
pub const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes `expf` polynomial coefficients, highest degree first.
pub const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];
/// Cephes `logf` polynomial coefficients, highest degree first.
pub const LOG_P: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_9e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_4e-1,
    -2.499_999_4e-1,
    3.333_333e-1,
];
/// `sqrt(1/2)`: the mantissa split point of [`ln_f32`].
pub const SQRTHF: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// `2^k` for `-126 <= k <= 127`, built from the exponent bits.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
fn pow2i(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `e^x` in `f32`, deterministic on every path (see the module docs).
///
/// ```
/// use maskops::math::exp_f32;
/// assert_eq!(exp_f32(0.0), 1.0);
/// assert!((exp_f32(1.0) - std::f32::consts::E).abs() <= f32::EPSILON * 3.0);
/// assert_eq!(exp_f32(-100.0), 0.0);
/// assert_eq!(exp_f32(100.0), f32::INFINITY);
/// ```
#[inline]
pub fn exp_f32(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x > EXP_HI {
        return f32::INFINITY;
    }
    if x < EXP_LO {
        return 0.0;
    }
    let n = (x * LOG2E).round_ties_even();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let z = r * r;
    let mut p = EXP_P[0];
    p = p * r + EXP_P[1];
    p = p * r + EXP_P[2];
    p = p * r + EXP_P[3];
    p = p * r + EXP_P[4];
    p = p * r + EXP_P[5];
    let y = (p * z + r) + 1.0;
    let ni = n as i32;
    let n1 = ni / 2;
    let n2 = ni - n1;
    (y * pow2i(n1)) * pow2i(n2)
}

/// Natural logarithm in `f32`, deterministic on every path (see the module docs).
///
/// ```
/// use maskops::math::ln_f32;
/// assert_eq!(ln_f32(1.0), 0.0);
/// assert!((ln_f32(std::f32::consts::E) - 1.0).abs() <= f32::EPSILON * 2.0);
/// assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
/// assert!(ln_f32(-1.0).is_nan());
/// ```
#[inline]
pub fn ln_f32(x: f32) -> f32 {
    if x.is_nan() || x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 {
        return f32::NEG_INFINITY;
    }
    if x == f32::INFINITY {
        return x;
    }
    let mut bits = x.to_bits();
    let mut e: i32 = 0;
    if bits < 0x0080_0000 {
        // subnormal: scale by 2^23 (exact)
        bits = (x * 8_388_608.0).to_bits();
        e = -23;
    }
    // m in [0.5, 1), x = m * 2^e
    e += ((bits >> 23) as i32) - 126;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    if m < SQRTHF {
        e -= 1;
        m = (m + m) - 1.0;
    } else {
        m -= 1.0;
    }
    let ef = e as f32;
    let z = m * m;
    let mut p = LOG_P[0];
    for &c in &LOG_P[1..] {
        p = p * m + c;
    }
    let mut y = (p * m) * z;
    y += LN2_LO * ef;
    y += -0.5 * z;
    let r = m + y;
    r + LN2_HI * ef
}

/// [`exp_f32`] of every element of `x` into `out` (the same length), with
/// the vector transcription of the current ISA ([`crate::backend`]): the
/// same bits as [`exp_f32`] on every element, on every ISA.
///
/// Accuracy against `f64` `exp` rounded to `f32`: at most 1 ulp, measured
/// over about 1.1 million inputs evenly spaced in `[-87.34, 0]` (every 1009th
/// bit pattern: the range the losses and softmax use) and over every
/// 62281st bit pattern of the normal-result range `[-87.34, 88.72]`.
///
/// ```
/// let x = [0.0f32, 1.0, -2.5, f32::NEG_INFINITY];
/// let mut y = [0.0f32; 4];
/// maskops::math::exp_into(&x, &mut y).unwrap();
/// assert_eq!(y[0], 1.0);
/// assert_eq!(y[2], maskops::math::exp_f32(-2.5));
/// assert_eq!(y[3], 0.0);
/// assert!(maskops::math::exp_into(&x, &mut [0.0; 3]).is_err());
/// ```
pub fn exp_into(x: &[f32], out: &mut [f32]) -> crate::Result<()> {
    crate::cpu::loss::exp_with(crate::cpu::isa(), x, out)
}

/// [`ln_f32`] of every element of `x` into `out` (the same length), with
/// the vector transcription of the current ISA: the same bits as
/// [`ln_f32`] on every element, on every ISA. At most 1 ulp from `f64`'s
/// `ln`, measured over every 1009th bit pattern in `[1, 8192]` and every
/// 62281st positive finite `f32`.
///
/// ```
/// let x = [1.0f32, 2.0, 0.0, -1.0];
/// let mut y = [0.0f32; 4];
/// maskops::math::ln_into(&x, &mut y).unwrap();
/// assert_eq!(y[0], 0.0);
/// assert_eq!(y[1], maskops::math::ln_f32(2.0));
/// assert_eq!(y[2], f32::NEG_INFINITY);
/// assert!(y[3].is_nan());
/// ```
pub fn ln_into(x: &[f32], out: &mut [f32]) -> crate::Result<()> {
    crate::cpu::loss::ln_with(crate::cpu::isa(), x, out)
}
