//! The SIMD transcriptions of `math::exp_f32` / `math::ln_f32` (and the
//! special `pow` exponents) equal the scalar definitions bit for bit over a
//! sweep of f32 bit patterns: every sign, exponent and boundary region.

mod shim;
use maskops::backend::Isa;
use maskops::math::{exp_f32, ln_f32, EXP_HI, EXP_LO};
use maskops::{Mask, UnaryOp};
use shim::elementwise as ew;

fn inputs() -> Vec<f32> {
    let mut v: Vec<f32> = (0..(1u64 << 32))
        .step_by(2053)
        .map(|b| f32::from_bits(b as u32))
        .collect();
    for c in [EXP_HI, EXP_LO, 0.0, f32::MIN_POSITIVE, 1.0, f32::MAX] {
        let b = c.to_bits();
        for d in 0..64u32 {
            v.push(f32::from_bits(b.wrapping_add(d)));
            v.push(f32::from_bits(b.wrapping_sub(d)));
            v.push(-f32::from_bits(b.wrapping_add(d)));
        }
    }
    v.extend([
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -0.0,
        1e-45,
        -1e-45,
    ]);
    v
}

type Scalar = fn(f32) -> f32;

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[test]
fn exp_ln_pow_transcriptions_are_exact() {
    let x = inputs();
    let mask = Mask::ones(x.len());
    let cases: [(UnaryOp<f32>, Scalar); 5] = [
        (UnaryOp::Exp, exp_f32),
        (UnaryOp::Log, ln_f32),
        (UnaryOp::Pow(3.0), |x| (x * x) * x),
        (UnaryOp::Pow(-0.5), |x| 1.0 / x.sqrt()),
        (UnaryOp::Pow(-2.0), |x| 1.0 / (x * x)),
    ];
    for isa in Isa::all_available() {
        for (op, f) in cases {
            let mut out = vec![0.0f32; x.len()];
            ew::unary_with(isa, op, &x, &mask, &mut out).unwrap();
            for (i, (&xi, &oi)) in x.iter().zip(&out).enumerate() {
                assert!(
                    same(oi, f(xi)),
                    "{isa:?} {op:?} x={xi:e} ({:#x}) at {i}: {oi:e} vs {:e}",
                    xi.to_bits(),
                    f(xi)
                );
            }
        }
    }
}

#[test]
fn f64_exp_ln_pow_are_std() {
    let x: Vec<f64> = (0..20000)
        .map(|i| (i as f64 - 10000.0) * 0.0731)
        .chain([f64::NAN, f64::INFINITY, -0.0, 5e-324])
        .collect();
    let mask = Mask::ones(x.len());
    for isa in Isa::all_available() {
        for (op, f) in [
            (UnaryOp::Exp, f64::exp as fn(f64) -> f64),
            (UnaryOp::Log, f64::ln),
            (UnaryOp::Pow(1.3), |x: f64| x.powf(1.3)),
        ] {
            let mut out = vec![0.0f64; x.len()];
            ew::unary_with(isa, op, &x, &mask, &mut out).unwrap();
            for (&xi, &oi) in x.iter().zip(&out) {
                let w = f(xi);
                assert!(
                    oi.to_bits() == w.to_bits() || (oi.is_nan() && w.is_nan()),
                    "{isa:?} {op:?} {xi}"
                );
            }
        }
    }
}
