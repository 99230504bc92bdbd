//! Masked losses (kernels/loss.cu) under the host emulator through the launch
//! plans of `maskops::cuda::ops`: bit for bit against a transcription of the
//! CPU loss kernels' formulas in the canonical order, within a tolerance
//! against f64.

use super::{Dev, NanClass};
use maskops::canonical::canonical_fold;
use maskops::cuda::ops::{cross_entropy, loss_elementwise, CeArgs, ElemLoss, LossReduction};
use maskops::math::{exp_f32, ln_f32};
use maskops::Mask;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

fn sgn(d: f32) -> f32 {
    if d.is_nan() {
        d
    } else if d < 0.0 {
        -1.0
    } else if d > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// (value, gradient) of one kept element, the CPU formulas.
fn elem(kind: ElemLoss, scale: f64, x: f32, y: f32) -> (f32, f32) {
    let f = |v: f64| v as f32;
    let d = x - y;
    match kind {
        ElemLoss::Mse => (d * d, d * f(2.0 * scale)),
        ElemLoss::L1 | ElemLoss::SmoothL1(0.0) => (d.abs(), sgn(d) * f(scale)),
        ElemLoss::Huber(delta) => {
            let a = d.abs();
            if a < f(delta) {
                ((d * d) * 0.5, d * f(scale))
            } else {
                ((a - f(0.5 * delta)) * f(delta), sgn(d) * f(delta * scale))
            }
        }
        ElemLoss::SmoothL1(b) => {
            let a = d.abs();
            if a < f(b) {
                ((d * d) * f(0.5 / b), d * f(scale / b))
            } else {
                (a - f(0.5 * b), sgn(d) * f(scale))
            }
        }
    }
}

fn f64_value(kind: ElemLoss, x: f64, y: f64) -> f64 {
    let d = x - y;
    match kind {
        ElemLoss::Mse => d * d,
        ElemLoss::L1 | ElemLoss::SmoothL1(0.0) => d.abs(),
        ElemLoss::Huber(delta) => {
            if d.abs() < delta {
                0.5 * d * d
            } else {
                delta * (d.abs() - 0.5 * delta)
            }
        }
        ElemLoss::SmoothL1(b) => {
            if d.abs() < b {
                0.5 * d * d / b
            } else {
                d.abs() - 0.5 * b
            }
        }
    }
}

fn bits(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

pub fn elementwise_losses_match_cpu_formulas_bitwise<B: Dev>(emu: &B) {
    for (n, keep_p, seed) in [
        (1usize, 1.0, 1u64),
        (300, 0.6, 2),
        (9_100, 0.8, 3),
        (77, 0.0, 4),
    ] {
        let mut r = Rng(seed);
        let mask = Mask::random(n, 1.0 - keep_p, seed);
        let x: Vec<f32> = (0..n)
            .map(|i| {
                if !mask.get(i) && i % 4 == 0 {
                    f32::NAN
                } else {
                    r.f32(-3.0, 3.0)
                }
            })
            .collect();
        let y: Vec<f32> = (0..n).map(|_| r.f32(-3.0, 3.0)).collect();
        let (xb, yb, mb) = (emu.up(&x), emu.up(&y), emu.up(mask.words()));
        let kept = mask.count_ones();
        for kind in [
            ElemLoss::Mse,
            ElemLoss::L1,
            ElemLoss::Huber(1.0),
            ElemLoss::SmoothL1(0.5),
            ElemLoss::SmoothL1(0.0),
        ] {
            for red in [LossReduction::None, LossReduction::Sum, LossReduction::Mean] {
                let grad = emu.poisoned(n * 4);
                let vals = emu.poisoned(n * 4);
                let out = emu.poisoned(4);
                loss_elementwise(
                    emu,
                    maskops::cuda::plan::DType::F32,
                    kind,
                    emu.ptr(&xb),
                    emu.ptr(&yb),
                    emu.ptr(&mb),
                    n as u64,
                    kept as u64,
                    red,
                    emu.ptr(&grad),
                    emu.ptr(&vals),
                    emu.ptr(&out),
                )
                .unwrap();
                let scale = if red == LossReduction::Mean && kept > 0 {
                    1.0 / kept as f64
                } else {
                    1.0
                };
                let (g, v) = (emu.rd::<f32>(&grad), emu.rd::<f32>(&vals));
                for i in 0..n {
                    let (wv, wg) = if mask.get(i) {
                        elem(kind, scale, x[i], y[i])
                    } else {
                        (0.0, 0.0)
                    };
                    assert!(
                        bits(v[i], wv) && bits(g[i], wg),
                        "{kind:?} {red:?} n={n} i={i}"
                    );
                }
                let total = canonical_fold(
                    n,
                    0.0f32,
                    |i| mask.get(i),
                    |i| elem(kind, 1.0, x[i], y[i]).0,
                    |a, b| a + b,
                );
                let want = match red {
                    LossReduction::Mean if kept == 0 => 0.0,
                    LossReduction::Mean => (total as f64 / kept as f64) as f32,
                    _ => total,
                };
                let got = emu.rd::<f32>(&out)[0];
                assert!(bits(got, want), "{kind:?} {red:?} n={n}: {got} != {want}");
                let s64: f64 = (0..n)
                    .filter(|&i| mask.get(i))
                    .map(|i| f64_value(kind, x[i] as f64, y[i] as f64))
                    .sum();
                let w64 = if red == LossReduction::Mean {
                    if kept == 0 {
                        0.0
                    } else {
                        s64 / kept as f64
                    }
                } else {
                    s64
                };
                assert!(
                    (got as f64 - w64).abs() <= 1e-5 * w64.abs().max(1.0),
                    "{kind:?} {red:?}: {got} vs f64 {w64}"
                );
            }
        }
    }
}

/// The CPU cross-entropy of one row, transcribed (canonical sums).
#[allow(clippy::too_many_arguments)]
fn ce_row(
    x: &[f32],
    t: usize,
    w: Option<&[f32]>,
    eps: f64,
    w_all: f64,
    scale: f64,
    g: &mut [f32],
) -> f32 {
    let c = x.len();
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let s = canonical_fold(c, 0.0f32, |_| true, |i| exp_f32(x[i] - m), |a, b| a + b);
    let smooth = eps > 0.0;
    let q = if smooth {
        canonical_fold(
            c,
            0.0f32,
            |_| true,
            |i| w.map_or(1.0, |w| w[i]) * (x[i] - m),
            |a, b| a + b,
        )
    } else {
        0.0
    };
    // without weights the CPU sums (x - m) directly; 1.0 * d == d, same bits
    let cf = c as f64;
    let wtv = w.map_or(1.0, |w| w[t]);
    let ls = ln_f32(s);
    let nll = wtv * (ls - (x[t] - m));
    let loss = if smooth {
        (1.0 - eps) as f32 * nll + (eps / cf) as f32 * (w_all as f32 * ls - q)
    } else {
        nll
    };
    let wt64 = wtv as f64;
    let alpha = (scale * ((1.0 - eps) * wt64 + eps / cf * w_all) / s as f64) as f32;
    let beta = (scale * eps / cf) as f32;
    for i in 0..c {
        let e = exp_f32(x[i] - m);
        g[i] = match w {
            Some(w) => e * alpha - beta * w[i],
            None => e * alpha - beta,
        };
    }
    g[t] -= (scale * (1.0 - eps) * wt64) as f32;
    loss
}

pub fn ce_case<B: Dev>(
    emu: &B,
    rows: usize,
    classes: usize,
    weighted: bool,
    eps: f64,
    red: LossReduction,
    seed: u64,
) {
    let mut r = Rng(seed);
    let ign = -100i64;
    let x: Vec<f32> = (0..rows * classes).map(|_| r.f32(-5.0, 5.0)).collect();
    let targets: Vec<i64> = (0..rows)
        .map(|i| {
            if i % 4 == 1 {
                ign
            } else {
                (r.next() % classes as u64) as i64
            }
        })
        .collect();
    let w: Option<Vec<f32>> = weighted.then(|| (0..classes).map(|_| r.f32(0.1, 2.0)).collect());
    let w_all: f64 = w
        .as_ref()
        .map_or(classes as f64, |w| w.iter().map(|&v| v as f64).sum());
    let xb = emu.up(&x);
    let tb = emu.up(&targets);
    let wb = w.as_ref().map(|w| emu.up(w));
    let grad = emu.poisoned(rows * classes * 4);
    let rowv = emu.poisoned(rows * 4);
    let out = emu.poisoned(4);
    let args = CeArgs {
        ignore_index: ign,
        weight: wb.as_ref().map_or(0, |b| emu.ptr(b)),
        weight_sum: w_all,
        label_smoothing: eps,
        reduction: red,
    };
    cross_entropy(
        emu,
        emu.ptr(&xb),
        rows as u64,
        classes as u64,
        emu.ptr(&tb),
        &args,
        emu.ptr(&grad),
        emu.ptr(&rowv),
        emu.ptr(&out),
    )
    .unwrap();
    // expected, CPU order
    let wt = |t: i64| w.as_ref().map_or(1.0f32, |w| w[t as usize]);
    let denom = canonical_fold(
        rows,
        0.0f32,
        |i| targets[i] != ign,
        |i| wt(targets[i]),
        |a, b| a + b,
    );
    let mean = red == LossReduction::Mean;
    let scale = if mean { 1.0 / denom as f64 } else { 1.0 };
    let mut g = vec![0.0f32; rows * classes];
    let mut rv = vec![0.0f32; rows];
    for i in 0..rows {
        if targets[i] != ign && !(mean && denom == 0.0) {
            rv[i] = ce_row(
                &x[i * classes..(i + 1) * classes],
                targets[i] as usize,
                w.as_deref(),
                eps,
                w_all,
                scale,
                &mut g[i * classes..(i + 1) * classes],
            );
        }
    }
    let total = canonical_fold(rows, 0.0f32, |i| targets[i] != ign, |i| rv[i], |a, b| a + b);
    let want = if mean {
        if denom == 0.0 {
            0.0
        } else {
            (total as f64 / denom as f64) as f32
        }
    } else {
        total
    };
    let (gg, gr, go) = (
        emu.rd::<f32>(&grad),
        emu.rd::<f32>(&rowv),
        emu.rd::<f32>(&out)[0],
    );
    for i in 0..rows * classes {
        assert!(
            bits(gg[i], g[i]),
            "grad [{}, {}]: {} != {}",
            i / classes,
            i % classes,
            gg[i],
            g[i]
        );
    }
    for i in 0..rows {
        assert!(bits(gr[i], rv[i]), "row {i}: {} != {}", gr[i], rv[i]);
    }
    assert!(bits(go, want), "value {go} != {want}");
    // f64 check of the loss value
    let mut s64 = 0.0f64;
    let mut d64 = 0.0f64;
    for i in 0..rows {
        if targets[i] == ign {
            continue;
        }
        let xr: Vec<f64> = x[i * classes..(i + 1) * classes]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let m = xr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + xr.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let t = targets[i] as usize;
        let wv = |c: usize| w.as_ref().map_or(1.0, |w| w[c] as f64);
        let nll = wv(t) * (lse - xr[t]);
        let smooth: f64 = (0..classes).map(|c| wv(c) * (lse - xr[c])).sum::<f64>() / classes as f64;
        s64 += (1.0 - eps) * nll + eps * smooth;
        d64 += wv(t);
    }
    let w64 = if mean { s64 / d64 } else { s64 };
    assert!(
        (go as f64 - w64).abs() <= 1e-4 * w64.abs().max(1.0),
        "value {go} vs f64 {w64}"
    );
}

pub fn cross_entropy_warp_per_row<B: Dev>(emu: &B) {
    ce_case(emu, 13, 10, false, 0.0, LossReduction::Mean, 1);
    ce_case(emu, 13, 10, true, 0.0, LossReduction::Mean, 2);
    ce_case(emu, 9, 37, true, 0.1, LossReduction::Sum, 3);
    ce_case(emu, 9, 37, false, 0.2, LossReduction::None, 4);
}

pub fn cross_entropy_block_per_row<B: Dev>(emu: &B) {
    ce_case(emu, 2, 5_000, true, 0.1, LossReduction::Mean, 5);
}

pub fn cross_entropy_all_ignored_mean_is_zero<B: Dev>(emu: &B) {
    let x = vec![1.0f32; 3 * 4];
    let t = vec![-100i64; 3];
    let (xb, tb) = (emu.up(&x), emu.up(&t));
    let grad = emu.up(&[7.0f32; 12]);
    let rowv = emu.poisoned(12);
    let out = emu.up(&[9.0f32]);
    let args = CeArgs {
        ignore_index: -100,
        weight: 0,
        weight_sum: 4.0,
        label_smoothing: 0.0,
        reduction: LossReduction::Mean,
    };
    cross_entropy(
        emu,
        emu.ptr(&xb),
        3,
        4,
        emu.ptr(&tb),
        &args,
        emu.ptr(&grad),
        emu.ptr(&rowv),
        emu.ptr(&out),
    )
    .unwrap();
    assert_eq!(emu.rd::<f32>(&out)[0], 0.0);
    assert!(emu.rd::<f32>(&grad).iter().all(|&g| g == 0.0));
}

/// Elementwise losses on f64 data: the same formulas in f64 (constants not
/// rounded), bit for bit.
pub fn elementwise_losses_f64<B: Dev>(emu: &B) {
    use maskops::cuda::plan::DType;
    fn sgn64(d: f64) -> f64 {
        if d.is_nan() {
            d
        } else if d < 0.0 {
            -1.0
        } else if d > 0.0 {
            1.0
        } else {
            0.0
        }
    }
    fn elem64(kind: ElemLoss, scale: f64, x: f64, y: f64) -> (f64, f64) {
        let d = x - y;
        match kind {
            ElemLoss::Mse => (d * d, d * (2.0 * scale)),
            ElemLoss::L1 | ElemLoss::SmoothL1(0.0) => (d.abs(), sgn64(d) * scale),
            ElemLoss::Huber(delta) => {
                let a = d.abs();
                if a < delta {
                    ((d * d) * 0.5, d * scale)
                } else {
                    ((a - 0.5 * delta) * delta, sgn64(d) * (delta * scale))
                }
            }
            ElemLoss::SmoothL1(b) => {
                let a = d.abs();
                if a < b {
                    ((d * d) * (0.5 / b), d * (scale / b))
                } else {
                    (a - 0.5 * b, sgn64(d) * scale)
                }
            }
        }
    }
    let mut r = Rng(99);
    let n = 5_000usize;
    let mask = Mask::random(n, 0.3, 98);
    let x: Vec<f64> = (0..n)
        .map(|i| {
            if !mask.get(i) && i % 4 == 0 {
                f64::NAN
            } else {
                r.f32(-3.0, 3.0) as f64 / 3.0
            }
        })
        .collect();
    let y: Vec<f64> = (0..n).map(|_| r.f32(-3.0, 3.0) as f64 / 7.0).collect();
    let (xb, yb, mb) = (emu.up(&x), emu.up(&y), emu.up(mask.words()));
    let kept = mask.count_ones();
    for kind in [
        ElemLoss::Mse,
        ElemLoss::L1,
        ElemLoss::Huber(0.3),
        ElemLoss::SmoothL1(0.2),
    ] {
        for red in [LossReduction::Sum, LossReduction::Mean] {
            let grad = emu.poisoned(n * 8);
            let out = emu.poisoned(8);
            loss_elementwise(
                emu,
                DType::F64,
                kind,
                emu.ptr(&xb),
                emu.ptr(&yb),
                emu.ptr(&mb),
                n as u64,
                kept as u64,
                red,
                emu.ptr(&grad),
                0,
                emu.ptr(&out),
            )
            .unwrap();
            let scale = if red == LossReduction::Mean {
                1.0 / kept as f64
            } else {
                1.0
            };
            let g = emu.rd::<f64>(&grad);
            for i in 0..n {
                let wg = if mask.get(i) {
                    elem64(kind, scale, x[i], y[i]).1
                } else {
                    0.0
                };
                assert_eq!(g[i].key(), wg.key(), "f64 {kind:?} {red:?} grad {i}");
            }
            let total = canonical_fold(
                n,
                0.0f64,
                |i| mask.get(i),
                |i| elem64(kind, 1.0, x[i], y[i]).0,
                |a, b| a + b,
            );
            let want = if red == LossReduction::Mean {
                total / kept as f64
            } else {
                total
            };
            let got = emu.rd::<f64>(&out)[0];
            assert_eq!(
                got.key(),
                want.key(),
                "f64 {kind:?} {red:?}: {got} != {want}"
            );
        }
    }
}
