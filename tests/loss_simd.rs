//! The fused loss kernels: the same bits on every ISA and every thread count
//! (compared with `==` on the bit patterns), and close to the `f64`
//! reference within a tolerance derived from the error bound of the
//! canonical order.
//!
//! Tolerances (u = 2^-24, the f32 unit roundoff): a canonical sum of
//! non-negative terms is within `(128 + 5 + ceil(log2 blocks)) u * sum|v|`
//! of the exact sum of the rounded terms (128 serial adds per lane in a
//! 4096-element block, a 5-level lane tree, then the block tree), and each
//! term carries its own small relative error (`K_ELEM` ulps: the
//! subtraction, the square, the mean's scale; exp/ln's 2 ulp each for BCE).

#![allow(clippy::needless_range_loop)]

mod shim;
use maskops::backend::Isa;
use maskops::loss::{CrossEntropy, Loss, Reduction};
use maskops::reference::loss as r;
use maskops::Mask;
use shim::loss as fast;

const U: f64 = 1.0 / (1u64 << 24) as f64;
const RED: [Reduction; 3] = [Reduction::None, Reduction::Sum, Reduction::Mean];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unif(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn vec32(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n)
            .map(|_| (lo + (hi - lo) * self.unif()) as f32)
            .collect()
    }
    fn mask(&mut self, n: usize, p_keep: f64) -> Mask {
        Mask::from_fn(n, |_| self.unif() < p_keep)
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn same_bits(a: &Loss<f32>, b: &Loss<f32>, what: &str) {
    assert_eq!(bits(&a.value), bits(&b.value), "{what}: values differ");
    assert_eq!(bits(&a.grad), bits(&b.grad), "{what}: gradients differ");
}

fn up(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn poison(v: &mut [f32], m: &Mask) {
    for (i, x) in v.iter_mut().enumerate() {
        if !m.get(i) {
            *x = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN][i % 4];
        }
    }
}

fn pools() -> Vec<rayon::ThreadPool> {
    [1, 2, 3]
        .iter()
        .map(|&t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum E {
    Mse,
    L1,
    Huber(f64),
    Smooth(f64),
    Bce,
    BcePw,
}

fn run_fast(
    isa: Isa,
    e: E,
    x: &[f32],
    y: &[f32],
    pw: &[f32],
    m: &Mask,
    red: Reduction,
) -> Loss<f32> {
    match e {
        E::Mse => fast::mse_with(isa, x, y, m, red),
        E::L1 => fast::l1_with(isa, x, y, m, red),
        E::Huber(d) => fast::huber_with(isa, x, y, m, d, red),
        E::Smooth(b) => fast::smooth_l1_with(isa, x, y, m, b, red),
        E::Bce => fast::bce_with_logits_with(isa, x, y, m, None, red),
        E::BcePw => fast::bce_with_logits_with(isa, x, y, m, Some(pw), red),
    }
    .unwrap()
}

fn run_ref(e: E, x: &[f64], y: &[f64], pw: &[f64], m: &Mask, red: Reduction) -> Loss<f64> {
    match e {
        E::Mse => r::mse(x, y, m, red),
        E::L1 => r::l1(x, y, m, red),
        E::Huber(d) => r::huber(x, y, m, d, red),
        E::Smooth(b) => r::smooth_l1(x, y, m, b, red),
        E::Bce => r::bce_with_logits(x, y, m, None, red),
        E::BcePw => r::bce_with_logits(x, y, m, Some(pw), red),
    }
    .unwrap()
}

/// Per-element relative error of the fused term (ulps of the term's magnitude).
fn k_elem(e: E) -> f64 {
    match e {
        E::Mse | E::L1 => 4.0,
        E::Huber(_) | E::Smooth(_) => 6.0,
        E::Bce | E::BcePw => 24.0,
    }
}

/// Magnitude the per-element error is relative to (the reference value,
/// or for BCE the sum of the magnitudes of its two terms).
fn magnitude(e: E, x: f64, y: f64, pw: f64, v: f64) -> f64 {
    match e {
        E::Bce | E::BcePw => {
            let lw = 1.0 + (pw - 1.0) * y;
            ((1.0 - y) * x).abs() + lw.abs() * (x.abs() + 1.0)
        }
        _ => v.abs(),
    }
}

fn grad_mag(e: E, y: f64, pw: f64, g: f64, scale: f64) -> f64 {
    match e {
        E::Bce | E::BcePw => {
            let lw = 1.0 + (pw - 1.0) * y;
            ((1.0 - y).abs() + lw.abs()) * scale
        }
        _ => g.abs(),
    }
}

#[allow(clippy::too_many_arguments)]
fn check_close(
    e: E,
    x: &[f32],
    y: &[f32],
    pw: &[f32],
    m: &Mask,
    red: Reduction,
    got: &Loss<f32>,
    want: &Loss<f64>,
) {
    let n = x.len();
    let kept = m.count_ones().max(1) as f64;
    let scale = if red == Reduction::Mean {
        1.0 / kept
    } else {
        1.0
    };
    let pwv = |i: usize| {
        if matches!(e, E::BcePw) {
            pw[i % pw.len()] as f64
        } else {
            1.0
        }
    };
    let k = k_elem(e);
    // per-element value magnitudes from the reference (None gives them directly)
    let per = run_ref(e, &up(x), &up(y), &up(pw), m, Reduction::None);
    let mut sum_mag = 0.0;
    for i in 0..n {
        if !m.get(i) {
            assert_eq!(
                got.grad[i].to_bits(),
                0,
                "{e:?} {red:?}: masked grad {i} not +0"
            );
            continue;
        }
        let mag = magnitude(e, x[i] as f64, y[i] as f64, pwv(i), per.value[i]);
        sum_mag += mag;
        let gm = grad_mag(e, y[i] as f64, pwv(i), want.grad[i], scale);
        let tol = (k + 2.0) * U * gm + f64::MIN_POSITIVE;
        assert!(
            (got.grad[i] as f64 - want.grad[i]).abs() <= tol,
            "{e:?} {red:?} grad[{i}]: {} vs {} (tol {tol})",
            got.grad[i],
            want.grad[i]
        );
        if red == Reduction::None {
            let tol = k * U * mag + f64::MIN_POSITIVE;
            assert!(
                (got.value[i] as f64 - want.value[i]).abs() <= tol,
                "{e:?} value[{i}]: {} vs {}",
                got.value[i],
                want.value[i]
            );
        }
    }
    if red != Reduction::None {
        let blocks = n.div_ceil(4096).max(1) as f64;
        let depth = 128.0 + 5.0 + blocks.log2().ceil() + k + 2.0;
        let tol = depth * U * sum_mag * scale + f64::MIN_POSITIVE;
        assert!(
            (got.value[0] as f64 - want.value[0]).abs() <= tol,
            "{e:?} {red:?}: {} vs {} (tol {tol})",
            got.value[0],
            want.value[0]
        );
    }
}

const ALL_E: [E; 7] = [
    E::Mse,
    E::L1,
    E::Huber(0.7),
    E::Smooth(0.5),
    E::Smooth(0.0),
    E::Bce,
    E::BcePw,
];

#[test]
fn elementwise_bitwise_across_isas_and_close_to_reference() {
    let mut g = Rng(42);
    let isas = Isa::all_available();
    for &n in &[0usize, 1, 7, 31, 33, 64, 100, 1000, 4095, 4096, 4097, 9000] {
        for &p_keep in &[0.0, 0.3, 1.0] {
            // unaligned sub-slices: offset 3 into bigger buffers
            let xb = g.vec32(n + 3, -4.0, 4.0);
            let yb = g.vec32(n + 3, -4.0, 4.0);
            let tb = g.vec32(n + 3, 0.0, 1.0);
            let m = g.mask(n, p_keep);
            let pw = g.vec32(if n % 5 == 0 && n > 0 { 5 } else { 1 }, 0.3, 3.0);
            let (mut x, y, mut t) = (xb[3..].to_vec(), yb[3..].to_vec(), tb[3..].to_vec());
            // poison the masked-out slots (the reference must not see poison)
            let (xc, tc) = (x.clone(), t.clone());
            poison(&mut x, &m);
            poison(&mut t, &m);
            for e in ALL_E {
                let target = if matches!(e, E::Bce | E::BcePw) {
                    &t
                } else {
                    &y
                };
                let target_clean = if matches!(e, E::Bce | E::BcePw) {
                    &tc
                } else {
                    &y
                };
                for red in RED {
                    let base = run_fast(Isa::Portable, e, &x, target, &pw, &m, red);
                    for &isa in &isas {
                        let l = run_fast(isa, e, &x, target, &pw, &m, red);
                        same_bits(&base, &l, &format!("{e:?} {red:?} n={n} {isa:?}"));
                    }
                    assert!(base.value.iter().chain(&base.grad).all(|v| v.is_finite()));
                    let want = run_ref(e, &up(&xc), &up(target_clean), &up(&pw), &m, red);
                    check_close(e, &xc, target_clean, &pw, &m, red, &base, &want);
                }
            }
        }
    }
}

#[test]
fn elementwise_bitwise_across_thread_counts() {
    let mut g = Rng(9);
    let n = fast::PAR_MIN_ELEMS * 2 + 12_348;
    let x = g.vec32(n, -3.0, 3.0);
    let y = g.vec32(n, 0.0, 1.0);
    let m = g.mask(n, 0.6);
    let pw = g.vec32(4, 0.5, 2.0);
    for e in ALL_E {
        for red in RED {
            let base = run_fast(Isa::Portable, e, &x, &y, &pw, &m, red);
            for pool in pools() {
                for isa in Isa::all_available() {
                    let l = pool.install(|| run_fast(isa, e, &x, &y, &pw, &m, red));
                    same_bits(&base, &l, &format!("{e:?} {red:?} {isa:?} threads"));
                }
            }
        }
    }
}

#[test]
fn nan_in_kept_slots_propagates_on_every_isa() {
    let x = [1.0f32, f32::NAN, 3.0, 0.5];
    let y = [0.0f32, 0.0, f32::INFINITY, 0.5];
    let m = Mask::ones(4);
    for isa in Isa::all_available() {
        for e in ALL_E {
            let l = run_fast(isa, e, &x, &y, &[1.0], &m, Reduction::None);
            let want = run_ref(e, &up(&x), &up(&y), &[1.0], &m, Reduction::None);
            for i in 0..4 {
                assert_eq!(
                    l.value[i].is_nan(),
                    want.value[i].is_nan(),
                    "{e:?} {isa:?} v{i}"
                );
                assert_eq!(
                    l.grad[i].is_nan(),
                    want.grad[i].is_nan(),
                    "{e:?} {isa:?} g{i}"
                );
            }
        }
    }
}

#[test]
fn bce_extreme_logits_on_every_isa() {
    let x = [1e4f32, -1e4, 88.0, -88.0, 100.0, -100.0, 0.0, 1e-30];
    let y = [0.0f32, 0.0, 1.0, 1.0, 0.3, 0.7, 0.5, 1.0];
    let m = Mask::ones(x.len());
    let want = r::bce_with_logits(&up(&x), &up(&y), &m, None, Reduction::None).unwrap();
    for isa in Isa::all_available() {
        let l = fast::bce_with_logits_with(isa, &x, &y, &m, None, Reduction::None).unwrap();
        for i in 0..x.len() {
            assert!(l.value[i].is_finite() && l.grad[i].is_finite());
            let tol = 1e-6 * (1.0 + want.value[i].abs());
            assert!(
                (l.value[i] as f64 - want.value[i]).abs() <= tol,
                "{isa:?} {i}"
            );
            assert!(
                (l.grad[i] as f64 - want.grad[i]).abs() <= 1e-6,
                "{isa:?} g{i}"
            );
        }
    }
}

/// Maximum ulp distance of `got` from the correctly rounded f32 of `want`.
fn ulps(got: f32, want: f64) -> u64 {
    let w = want as f32;
    if got == w {
        return 0;
    }
    let key = |v: f32| {
        let b = v.to_bits() as i64;
        if b < 0x8000_0000 {
            b
        } else {
            0x8000_0000 - b
        }
    };
    (key(got) - key(w)).unsigned_abs()
}

#[test]
fn vector_exp_ln_are_bitwise_the_scalar_ones_and_measured() {
    // every 61st f32 bit pattern over the inputs cross-entropy and BCE use
    // (exp on [-87.34, 88.72]; ln on (0, inf)), plus the special values
    let mut xs: Vec<f32> = Vec::new();
    let mut b = 0u32;
    while b < 0x7f80_0000 {
        let v = f32::from_bits(b);
        xs.push(v);
        xs.push(-v);
        b += 61 * 1021;
    }
    xs.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
        1e-45,
        88.72283,
        88.72284,
        -87.33655,
        -87.336_56,
        -103.0,
        1.0,
    ]);
    let n = xs.len();
    let mut base_e = vec![0.0f32; n];
    let mut base_l = vec![0.0f32; n];
    fast::exp_with(Isa::Portable, &xs, &mut base_e).unwrap();
    fast::ln_with(Isa::Portable, &xs, &mut base_l).unwrap();
    for (i, &x) in xs.iter().enumerate() {
        assert_eq!(base_e[i].to_bits(), maskops::math::exp_f32(x).to_bits());
        assert_eq!(base_l[i].to_bits(), maskops::math::ln_f32(x).to_bits());
    }
    for isa in Isa::all_available() {
        let mut e = vec![0.0f32; n];
        let mut l = vec![0.0f32; n];
        fast::exp_with(isa, &xs, &mut e).unwrap();
        fast::ln_with(isa, &xs, &mut l).unwrap();
        assert_eq!(bits(&e), bits(&base_e), "exp {isa:?}");
        assert_eq!(bits(&l), bits(&base_l), "ln {isa:?}");
    }
    // measured accuracy against f64 (documented in maskops::math::exp_into)
    let mut max_exp = 0;
    let mut max_ln = 0;
    for (i, &x) in xs.iter().enumerate() {
        let xd = x as f64;
        if (-87.33655..=88.72283).contains(&x) && xd.exp() >= f32::MIN_POSITIVE as f64 {
            max_exp = max_exp.max(ulps(base_e[i], xd.exp()));
        }
        if x > 0.0 && x.is_finite() {
            max_ln = max_ln.max(ulps(base_l[i], xd.ln()));
        }
    }
    // denser sweeps over the ranges the losses use: exp on [-87.34, 0]
    // (cross-entropy's exp(x - max), BCE's exp(-|x|)), ln on [1, 2^13]
    // (cross-entropy's ln(sum) for up to 8192 classes, BCE's ln(1 + e))
    let dense = |lo: u32, hi: u32| {
        (lo..hi)
            .step_by(1009)
            .map(f32::from_bits)
            .collect::<Vec<_>>()
    };
    let xe: Vec<f32> = (0..=87.33655f32.to_bits())
        .step_by(1009)
        .map(|b| -f32::from_bits(b))
        .collect();
    let xl = dense(1.0f32.to_bits(), 8192.0f32.to_bits());
    let mut oe = vec![0.0f32; xe.len()];
    let mut ol = vec![0.0f32; xl.len()];
    let best = *Isa::all_available().last().unwrap();
    fast::exp_with(best, &xe, &mut oe).unwrap();
    fast::ln_with(best, &xl, &mut ol).unwrap();
    for (i, &x) in xe.iter().enumerate() {
        assert_eq!(oe[i].to_bits(), maskops::math::exp_f32(x).to_bits());
        if (x as f64).exp() >= f32::MIN_POSITIVE as f64 {
            max_exp = max_exp.max(ulps(oe[i], (x as f64).exp()));
        }
    }
    for (i, &x) in xl.iter().enumerate() {
        assert_eq!(ol[i].to_bits(), maskops::math::ln_f32(x).to_bits());
        max_ln = max_ln.max(ulps(ol[i], (x as f64).ln()));
    }
    eprintln!(
        "max ulp: exp {max_exp}, ln {max_ln} ({} + {} dense points)",
        xe.len(),
        xl.len()
    );
    assert!(max_exp <= 2, "exp max ulp {max_exp}");
    assert!(max_ln <= 2, "ln max ulp {max_ln}");
}

#[allow(clippy::too_many_arguments)]
fn ce_check(
    x: &[f32],
    rows: usize,
    c: usize,
    t: &[i64],
    opts: &CrossEntropy<f32>,
    got: &Loss<f32>,
) {
    let opts64 = CrossEntropy {
        ignore_index: opts.ignore_index,
        weight: opts.weight.as_ref().map(|w| up(w)),
        label_smoothing: opts.label_smoothing,
        reduction: opts.reduction,
    };
    let want = r::cross_entropy(&up(x), rows, c, t, &opts64).unwrap();
    let eps = opts.label_smoothing;
    let w = |k: usize| opts64.weight.as_ref().map_or(1.0, |w| w[k]);
    let w_all: f64 = (0..c).map(w).sum();
    let den: f64 = (0..rows)
        .filter(|&i| t[i] != opts.ignore_index)
        .map(|i| w(t[i] as usize))
        .sum();
    let scale = if opts.reduction == Reduction::Mean && den != 0.0 {
        1.0 / den
    } else {
        1.0
    };
    let lanes = (c as f64 / 32.0).ceil() + 8.0;
    let mut total_tol = 0.0;
    let mut row_tol = vec![0.0; rows];
    for i in 0..rows {
        if t[i] == opts.ignore_index {
            assert!(got.grad[i * c..(i + 1) * c]
                .iter()
                .all(|v| v.to_bits() == 0));
            continue;
        }
        let xr = up(&x[i * c..(i + 1) * c]);
        let m = xr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let ls = xr.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let ti = t[i] as usize;
        let a = (1.0 - eps) * w(ti).abs() + eps / c as f64 * w_all.abs();
        let mut mag = w(ti).abs() * (1.0 + ls + (xr[ti] - m).abs());
        if eps > 0.0 {
            mag += eps / c as f64
                * (w_all.abs() * (1.0 + ls)
                    + (0..c).map(|k| (w(k) * (xr[k] - m)).abs()).sum::<f64>());
        }
        row_tol[i] = (lanes + 16.0) * U * mag;
        total_tol += row_tol[i];
        for k in 0..c {
            let p = (xr[k] - ls - m).exp();
            let gm = scale
                * (a * p
                    + eps / c as f64 * w(k).abs()
                    + if k == ti {
                        (1.0 - eps) * w(ti).abs()
                    } else {
                        0.0
                    });
            let dist = if (xr[k] - m).is_finite() {
                (xr[k] - m).abs()
            } else {
                0.0
            };
            let tol = (lanes + 16.0 + dist) * U * gm + f64::MIN_POSITIVE;
            let (gv, wv) = (got.grad[i * c + k] as f64, want.grad[i * c + k]);
            assert!(
                (gv - wv).abs() <= tol,
                "row {i} class {k}: {gv} vs {wv} (tol {tol})"
            );
        }
    }
    match opts.reduction {
        Reduction::None => {
            for i in 0..rows {
                assert!(
                    (got.value[i] as f64 - want.value[i]).abs() <= row_tol[i] + f64::MIN_POSITIVE,
                    "row {i}: {} vs {}",
                    got.value[i],
                    want.value[i]
                );
            }
        }
        _ => {
            let sum_abs: f64 = want.value.iter().map(|v| v.abs()).sum::<f64>() / scale;
            let tol =
                (total_tol + 150.0 * U * sum_abs) * scale * (1.0 + 4.0 * U) + f64::MIN_POSITIVE;
            assert!(
                (got.value[0] as f64 - want.value[0]).abs() <= tol,
                "{:?}: {} vs {} (tol {tol})",
                opts.reduction,
                got.value[0],
                want.value[0]
            );
        }
    }
}

#[test]
fn cross_entropy_bitwise_across_isas_and_close_to_reference() {
    let mut g = Rng(77);
    for &(rows, c) in &[
        (1usize, 1usize),
        (5, 3),
        (17, 10),
        (9, 33),
        (12, 1000),
        (3, 5000),
        (0, 4),
    ] {
        let xb = g.vec32(rows * c + 1, -8.0, 8.0);
        let mut x = xb[1..].to_vec();
        let t: Vec<i64> = (0..rows)
            .map(|i| {
                if i % 3 == 2 {
                    -1
                } else {
                    (g.next() % c as u64) as i64
                }
            })
            .collect();
        // poison ignored rows
        for i in 0..rows {
            if t[i] == -1 {
                x[i * c] = f32::NAN;
            }
        }
        let w = g.vec32(c, 0.1, 2.5);
        for eps in [0.0, 0.2, 1.0] {
            for weight in [None, Some(w.clone())] {
                for red in RED {
                    let opts = CrossEntropy {
                        ignore_index: -1,
                        weight: weight.clone(),
                        label_smoothing: eps,
                        reduction: red,
                    };
                    let base =
                        fast::cross_entropy_with(Isa::Portable, &x, rows, c, &t, &opts).unwrap();
                    for isa in Isa::all_available() {
                        let l = fast::cross_entropy_with(isa, &x, rows, c, &t, &opts).unwrap();
                        same_bits(
                            &base,
                            &l,
                            &format!("ce {rows}x{c} eps {eps} {red:?} {isa:?}"),
                        );
                    }
                    ce_check(&x, rows, c, &t, &opts, &base);
                }
            }
        }
    }
}

#[test]
fn cross_entropy_bitwise_across_thread_counts() {
    let mut g = Rng(5);
    let (rows, c) = (300, 517);
    let x = g.vec32(rows * c, -5.0, 5.0);
    let t: Vec<i64> = (0..rows)
        .map(|i| {
            if i % 7 < 5 {
                -100
            } else {
                (g.next() % c as u64) as i64
            }
        })
        .collect();
    let w = g.vec32(c, 0.5, 1.5);
    for red in RED {
        let opts = CrossEntropy {
            weight: Some(w.clone()),
            label_smoothing: 0.1,
            reduction: red,
            ..Default::default()
        };
        let base = fast::cross_entropy_with(Isa::Portable, &x, rows, c, &t, &opts).unwrap();
        for pool in pools() {
            for isa in Isa::all_available() {
                let l = pool
                    .install(|| fast::cross_entropy_with(isa, &x, rows, c, &t, &opts))
                    .unwrap();
                same_bits(&base, &l, &format!("ce threads {red:?} {isa:?}"));
            }
        }
    }
}

#[test]
fn cross_entropy_extreme_logits_and_all_ignored() {
    let x = [
        1e4f32,
        -1e4,
        0.0,
        -1e4,
        1e4,
        0.0,
        f32::NEG_INFINITY,
        0.0,
        1.0,
    ];
    let t = [0i64, 0, 2];
    for isa in Isa::all_available() {
        for red in RED {
            let opts = CrossEntropy {
                reduction: red,
                ..Default::default()
            };
            let l = fast::cross_entropy_with(isa, &x, 3, 3, &t, &opts).unwrap();
            assert!(
                l.value.iter().chain(&l.grad).all(|v| v.is_finite()),
                "{isa:?} {red:?}"
            );
            ce_check(&x, 3, 3, &t, &opts, &l);
            // every row ignored: zeros, never NaN
            let ign = CrossEntropy {
                ignore_index: 9,
                ..opts.clone()
            };
            let z = fast::cross_entropy_with(isa, &[f32::NAN; 9], 3, 3, &[9, 9, 9], &ign).unwrap();
            assert!(z.value.iter().chain(&z.grad).all(|v| v.to_bits() == 0));
        }
        // zero total weight under Mean: 0, not NaN
        let opts = CrossEntropy {
            weight: Some(vec![0.0f32, 1.0, 1.0]),
            ..Default::default()
        };
        let l = fast::cross_entropy_with(isa, &x[..3], 1, 3, &[0], &opts).unwrap();
        assert_eq!(l.value, vec![0.0]);
        assert!(l.grad.iter().all(|&v| v == 0.0));
    }
}

#[test]
fn into_variants_match_and_check_the_buffer() {
    let mut g = Rng(3);
    let n = 777;
    let x = g.vec32(n, -2.0, 2.0);
    let y = g.vec32(n, -2.0, 2.0);
    let m = g.mask(n, 0.5);
    let isa = maskops::backend::isa();
    let mut grad = vec![f32::NAN; n];
    let v = fast::huber_into_with(isa, &x, &y, &m, 1.0, Reduction::Mean, &mut grad).unwrap();
    let l = fast::huber_with(isa, &x, &y, &m, 1.0, Reduction::Mean).unwrap();
    assert_eq!((v, grad), (l.value, l.grad));
    let mut short = vec![0.0f32; n - 1];
    assert!(matches!(
        fast::mse_into_with(isa, &x, &y, &m, Reduction::Sum, &mut short),
        Err(maskops::Error::Length { arg: "grad", .. })
    ));
    let t: Vec<i64> = (0..27).map(|i| i % 3).collect();
    let xl = g.vec32(27 * 3, -1.0, 1.0);
    let mut grad = vec![1.0f32; 81];
    let o = CrossEntropy::default();
    let v = fast::cross_entropy_into_with(isa, &xl, 27, 3, &t, &o, &mut grad).unwrap();
    let l = fast::cross_entropy_with(isa, &xl, 27, 3, &t, &o).unwrap();
    assert_eq!((v, grad), (l.value, l.grad));
}

#[test]
fn ecs_fast_matches_reference_and_threads() {
    let mut g = Rng(21);
    for &(rows, cols) in &[(1usize, 3usize), (2, 2), (7, 5), (40, 33), (300, 64)] {
        let mut e = g.vec32(rows * cols, -1.0, 1.0);
        if rows > 3 {
            // a zero row (norm below eps) and a row parallel to row 0
            e[cols..2 * cols].fill(0.0);
            let r0: Vec<f32> = e[..cols].iter().map(|v| v * 3.0).collect();
            e[2 * cols..3 * cols].copy_from_slice(&r0);
        }
        let base = fast::ecs_with(Isa::Portable, &e, rows, cols, 0.5).unwrap();
        for pool in pools() {
            for isa in Isa::all_available() {
                let l = pool
                    .install(|| fast::ecs_with(isa, &e, rows, cols, 0.5))
                    .unwrap();
                same_bits(&base, &l, &format!("ecs {rows}x{cols} {isa:?}"));
            }
        }
        let want = r::ecs(&up(&e), rows, cols, 0.5).unwrap();
        // cos error <= (cols/32 + 8) u (canonical dot of unit vectors plus the
        // normalization); each of the rows^2 terms 1 - (r - thr)^2 moves by at
        // most 2 |r - thr| <= 3 times that, plus the canonical sum's own error
        let ce = (cols as f64 / 32.0 + 8.0) * U;
        let tol = 3.0 * ce + (rows as f64).log2().ceil() * 2.0 * U + 140.0 * U;
        assert!(
            (base.value[0] as f64 - want.value[0]).abs() <= tol,
            "ecs {rows}x{cols}: {} vs {}",
            base.value[0],
            want.value[0]
        );
        // gradient: sum over rows of terms bounded by (2 (1 + thr) / n^2) / |e_i|
        for i in 0..rows {
            let ni: f64 = (0..cols)
                .map(|k| (e[i * cols + k] as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            if ni < 1e-6 {
                continue;
            }
            let scale = 2.0 * 2.0 * 1.5 * rows as f64 / (rows * rows) as f64 / ni;
            for k in 0..cols {
                let (a, b) = (base.grad[i * cols + k] as f64, want.grad[i * cols + k]);
                let tol = (rows as f64 + cols as f64 / 32.0 + 16.0) * ce.max(U) * scale * 4.0;
                assert!(
                    (a - b).abs() <= tol,
                    "ecs grad {rows}x{cols} [{i},{k}]: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn pearson_fast_matches_reference() {
    let mut g = Rng(8);
    let (rows, cols) = (50, 301);
    let mut x = g.vec32(rows * cols, -3.0, 3.0);
    let y: Vec<f32> = x.iter().map(|v| v * 0.5 + 0.3).collect::<Vec<_>>();
    let y: Vec<f32> = y
        .iter()
        .zip(g.vec32(rows * cols, -1.0, 1.0))
        .map(|(a, b)| a + b)
        .collect();
    let mut m = g.mask(rows * cols, 0.4);
    // row 0: constant 0.1 input (zero variance though the f32 mean rounds)
    x[..cols].fill(0.1);
    // row 1: one kept entry; row 2: nothing kept
    for k in 0..cols {
        m.set(cols + k, k == 5);
        m.set(2 * cols + k, false);
    }
    let mut xp = x.clone();
    poison(&mut xp, &m);
    let want = r::pearson(&up(&x), &up(&y), &m, rows, cols).unwrap();
    for isa in Isa::all_available() {
        let p = fast::pearson_with(isa, &xp, &y, &m, rows, cols).unwrap();
        assert_eq!(p.mask, want.mask);
        assert!(!p.mask.get(0) && !p.mask.get(1) && !p.mask.get(2));
        for i in 3..rows {
            let (a, b) = (p.values[i] as f64, want.values[i]);
            assert!(
                (a - b).abs() <= (cols as f64 / 32.0 + 32.0) * U * 4.0,
                "row {i}: {a} vs {b}"
            );
        }
        assert_eq!(p.values[..3], [0.0; 3]);
    }
}

/// A 64-byte aligned sub-slice of `buf` (streaming stores need alignment).
fn aligned(buf: &mut [f32]) -> &mut [f32] {
    let off = buf.as_ptr().align_offset(64);
    &mut buf[off..]
}

#[test]
fn streaming_stores_and_forced_threads_change_no_bits() {
    let mut g = Rng(99);
    let n = 3 * 4096 + 77;
    let x = g.vec32(n, -3.0, 3.0);
    let y = g.vec32(n, 0.0, 1.0);
    let m = g.mask(n, 0.5);
    let isas = Isa::all_available();
    for e in ALL_E {
        for red in RED {
            fast::set_stream_min_elems(usize::MAX);
            let base = run_fast(Isa::Portable, e, &x, &y, &[1.0], &m, red);
            fast::set_stream_min_elems(0);
            fast::set_par_min_elems(0);
            for &isa in &isas {
                // aligned and unaligned gradient buffers, with the *_into entry
                let mut buf = vec![0.0f32; n + 32];
                for g in [&mut aligned(&mut buf)[..n], &mut vec![7.0f32; n + 1][1..]] {
                    let v = match e {
                        E::Mse => fast::mse_into_with(isa, &x, &y, &m, red, g),
                        E::L1 => fast::l1_into_with(isa, &x, &y, &m, red, g),
                        E::Huber(d) => fast::huber_into_with(isa, &x, &y, &m, d, red, g),
                        E::Smooth(b) => fast::smooth_l1_into_with(isa, &x, &y, &m, b, red, g),
                        E::Bce => fast::bce_with_logits_into_with(isa, &x, &y, &m, None, red, g),
                        E::BcePw => {
                            fast::bce_with_logits_into_with(isa, &x, &y, &m, Some(&[1.0]), red, g)
                        }
                    }
                    .unwrap();
                    assert_eq!(bits(&v), bits(&base.value), "{e:?} {red:?} {isa:?}");
                    assert_eq!(bits(g), bits(&base.grad), "{e:?} {red:?} {isa:?}");
                }
            }
            fast::set_stream_min_elems(fast::STREAM_MIN_ELEMS);
            fast::set_par_min_elems(fast::PAR_MIN_ELEMS);
        }
    }
    // cross-entropy's ignored rows zeroed with streaming stores
    let (rows, c) = (40, 77);
    let xl = g.vec32(rows * c, -3.0, 3.0);
    let t: Vec<i64> = (0..rows as i64)
        .map(|i| if i % 3 == 0 { i % 77 } else { -100 })
        .collect();
    let o = CrossEntropy::default();
    fast::set_stream_min_elems(usize::MAX);
    let base = fast::cross_entropy_with(Isa::Portable, &xl, rows, c, &t, &o).unwrap();
    fast::set_stream_min_elems(0);
    for &isa in &isas {
        let mut buf = vec![1.0f32; rows * c + 32];
        let g = &mut aligned(&mut buf)[..rows * c];
        let v = fast::cross_entropy_into_with(isa, &xl, rows, c, &t, &o, g).unwrap();
        assert_eq!(bits(&v), bits(&base.value));
        assert_eq!(bits(g), bits(&base.grad));
    }
    fast::set_stream_min_elems(fast::STREAM_MIN_ELEMS);
}

#[test]
fn f64_elementwise_bitwise_across_isas() {
    let mut g = Rng(64);
    for &n in &[5usize, 64, 4097, 9001] {
        let x: Vec<f64> = up(&g.vec32(n, -3.0, 3.0)).iter().map(|v| v * 1.1).collect();
        let y: Vec<f64> = up(&g.vec32(n, 0.0, 1.0));
        let m = g.mask(n, 0.6);
        for red in RED {
            let base = fast::huber_with(Isa::Portable, &x, &y, &m, 0.3, red).unwrap();
            let want = r::huber(&x, &y, &m, 0.3, red).unwrap();
            for (a, b) in base.grad.iter().zip(&want.grad) {
                assert!((a - b).abs() <= 1e-15 * (1.0 + b.abs()));
            }
            for isa in Isa::all_available() {
                let l = fast::huber_with(isa, &x, &y, &m, 0.3, red).unwrap();
                let b64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(b64(&l.value), b64(&base.value), "f64 {red:?} {isa:?}");
                assert_eq!(b64(&l.grad), b64(&base.grad), "f64 {red:?} {isa:?}");
                let a = fast::mse_with(isa, &x, &y, &m, red).unwrap();
                let b = fast::mse_with(Isa::Portable, &x, &y, &m, red).unwrap();
                assert_eq!(a, b);
                let a = fast::bce_with_logits_with(isa, &x, &y, &m, None, red).unwrap();
                let b = fast::bce_with_logits_with(Isa::Portable, &x, &y, &m, None, red).unwrap();
                assert_eq!(a, b);
            }
        }
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn elementwise_random_shapes(n in 0usize..9000, off in 0usize..5, p in 0.0f64..1.0, seed in any::<u64>(), which in 0usize..7, red in 0usize..3) {
            let mut g = Rng(seed);
            let xb = g.vec32(n + off, -6.0, 6.0);
            let yb = g.vec32(n + off, 0.0, 1.0);
            let (x, y) = (&xb[off..], &yb[off..]);
            let m = g.mask(n, p);
            let e = ALL_E[which];
            let red = RED[red];
            let pw = [1.5f32];
            let base = run_fast(Isa::Portable, e, x, y, &pw, &m, red);
            for isa in Isa::all_available() {
                let l = run_fast(isa, e, x, y, &pw, &m, red);
                prop_assert_eq!(bits(&l.value), bits(&base.value));
                prop_assert_eq!(bits(&l.grad), bits(&base.grad));
            }
            let want = run_ref(e, &up(x), &up(y), &up(&pw), &m, red);
            check_close(e, x, y, &pw, &m, red, &base, &want);
        }

        #[test]
        fn cross_entropy_random_shapes(rows in 0usize..40, classes in 1usize..300, keep in 0.0f64..1.0, eps in 0.0f64..1.0, weighted in any::<bool>(), seed in any::<u64>(), red in 0usize..3) {
            let mut g = Rng(seed);
            let x = g.vec32(rows * classes, -20.0, 20.0);
            let t: Vec<i64> = (0..rows)
                .map(|_| if g.unif() < keep { (g.next() % classes as u64) as i64 } else { -100 })
                .collect();
            let opts = CrossEntropy {
                weight: if weighted { Some(g.vec32(classes, 0.0, 2.0)) } else { None },
                label_smoothing: eps,
                reduction: RED[red],
                ..Default::default()
            };
            let base = fast::cross_entropy_with(Isa::Portable, &x, rows, classes, &t, &opts).unwrap();
            for isa in Isa::all_available() {
                let l = fast::cross_entropy_with(isa, &x, rows, classes, &t, &opts).unwrap();
                prop_assert_eq!(bits(&l.value), bits(&base.value));
                prop_assert_eq!(bits(&l.grad), bits(&base.grad));
            }
            ce_check(&x, rows, classes, &t, &opts, &base);
        }
    }
}
