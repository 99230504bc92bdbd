//! The reference losses (and hence the public API's semantics): hand-computed
//! values, gradients by central finite differences, poison in masked-out
//! slots, all-ignored batches, and every error.

use maskops::loss::{self, CrossEntropy, Loss, Reduction};
use maskops::reference::loss as r;
use maskops::{Error, Mask};

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
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unif()
    }
    fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.range(lo, hi)).collect()
    }
    fn mask(&mut self, n: usize, p_keep: f64) -> Mask {
        Mask::from_fn(n, |_| self.unif() < p_keep)
    }
}

const RED: [Reduction; 3] = [Reduction::None, Reduction::Sum, Reduction::Mean];

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// Central finite differences of `value.sum()` against `grad`.
fn check_grad(x: &[f64], f: impl Fn(&[f64]) -> Loss<f64>, tol: f64) {
    let l = f(x);
    assert_eq!(l.grad.len(), x.len());
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        let h = 1e-6 * (1.0 + x[i].abs());
        xp[i] = x[i] + h;
        let fp: f64 = f(&xp).value.iter().sum();
        xp[i] = x[i] - h;
        let fm: f64 = f(&xp).value.iter().sum();
        xp[i] = x[i];
        let fd = (fp - fm) / (2.0 * h);
        assert!(
            close(fd, l.grad[i], tol),
            "grad[{i}]: finite difference {fd} vs analytic {}",
            l.grad[i]
        );
    }
}

#[test]
fn mse_hand_values_and_reductions() {
    let x = [1.0f64, 2.0, 5.0, -1.0];
    let y = [0.0f64, 2.0, 1.0, 1.0];
    let m = Mask::from_bools(&[true, true, true, false]);
    let none = r::mse(&x, &y, &m, Reduction::None).unwrap();
    assert_eq!(none.value, vec![1.0, 0.0, 16.0, 0.0]);
    assert_eq!(none.grad, vec![2.0, 0.0, 8.0, 0.0]);
    let sum = r::mse(&x, &y, &m, Reduction::Sum).unwrap();
    assert_eq!(sum.value, vec![17.0]);
    assert_eq!(sum.grad, none.grad);
    let mean = r::mse(&x, &y, &m, Reduction::Mean).unwrap();
    assert_eq!(mean.value, vec![17.0 / 3.0]);
    assert_eq!(mean.grad, vec![2.0 / 3.0, 0.0, 8.0 / 3.0, 0.0]);
}

#[test]
fn scformer_masked_mse_matches_its_formula() {
    // scFormer: F.mse_loss(input*mask, target*mask, "sum") / mask.sum()
    let mut g = Rng(1);
    let n = 300;
    let x = g.vec(n, -3.0, 3.0);
    let y = g.vec(n, -3.0, 3.0);
    let m = g.mask(n, 0.4);
    let mf: Vec<f64> = (0..n).map(|i| if m.get(i) { 1.0 } else { 0.0 }).collect();
    let s: f64 = (0..n).map(|i| (x[i] * mf[i] - y[i] * mf[i]).powi(2)).sum();
    let want = s / mf.iter().sum::<f64>();
    let l = r::mse(&x, &y, &m, Reduction::Mean).unwrap();
    assert!(close(l.value[0], want, 1e-13));
}

#[test]
fn l1_huber_smooth_l1_hand_values() {
    let x = [3.0f64, 1.0, 0.2, -4.0];
    let y = [1.0f64, 1.0, 0.0, 0.0];
    let m = Mask::ones(4);
    let l = r::l1(&x, &y, &m, Reduction::None).unwrap();
    assert_eq!(l.value, vec![2.0, 0.0, 0.2, 4.0]);
    assert_eq!(l.grad, vec![1.0, 0.0, 1.0, -1.0]);
    let h = r::huber(&x, &y, &m, 1.5, Reduction::None).unwrap();
    // |d|=2 >= 1.5: 1.5*(2-0.75); 0; 0.5*0.04; 1.5*(4-0.75)
    assert_eq!(h.value, vec![1.5 * 1.25, 0.0, 0.5 * 0.2 * 0.2, 1.5 * 3.25]);
    assert_eq!(h.grad, vec![1.5, 0.0, 0.2, -1.5]);
    let s = r::smooth_l1(&x, &y, &m, 0.5, Reduction::None).unwrap();
    assert_eq!(s.value, vec![1.75, 0.0, 0.5 * 0.2 * 0.2 / 0.5, 3.75]);
    assert_eq!(s.grad, vec![1.0, 0.0, 0.2 / 0.5, -1.0]);
    // beta = 0 is L1 (PyTorch)
    let s0 = r::smooth_l1(&x, &y, &m, 0.0, Reduction::None).unwrap();
    assert_eq!(s0, l);
    // huber = beta * smooth_l1 with beta = delta
    let h1 = r::huber(&x, &y, &m, 0.7, Reduction::Sum).unwrap();
    let s1 = r::smooth_l1(&x, &y, &m, 0.7, Reduction::Sum).unwrap();
    assert!(close(h1.value[0], 0.7 * s1.value[0], 1e-15));
}

#[test]
fn bce_hand_values() {
    let m = Mask::ones(3);
    let x = [0.0f64, 2.0, -3.0];
    let y = [1.0f64, 0.0, 0.25];
    let l = r::bce_with_logits(&x, &y, &m, None, Reduction::None).unwrap();
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    for i in 0..3 {
        let p = sig(x[i]);
        let want = -(y[i] * p.ln() + (1.0 - y[i]) * (1.0 - p).ln());
        assert!(close(l.value[i], want, 1e-14), "{i}");
        assert!(close(l.grad[i], p - y[i], 1e-14), "{i}");
    }
    // pos_weight broadcast over 2 columns: element i uses pw[i % 2]
    let x = [0.5f64, -0.5, 1.0, 2.0];
    let y = [1.0f64, 1.0, 0.0, 0.5];
    let pw = [3.0f64, 0.5];
    let l = r::bce_with_logits(&x, &y, &Mask::ones(4), Some(&pw), Reduction::None).unwrap();
    for i in 0..4 {
        let p = sig(x[i]);
        let w = pw[i % 2];
        let want = -(w * y[i] * p.ln() + (1.0 - y[i]) * (1.0 - p).ln());
        assert!(close(l.value[i], want, 1e-14), "{i}");
    }
    // extreme logits stay finite
    let l = r::bce_with_logits(
        &[1e4f64, -1e4],
        &[0.0, 0.0],
        &Mask::ones(2),
        None,
        Reduction::None,
    )
    .unwrap();
    assert_eq!(l.value, vec![1e4, 0.0]);
    assert_eq!(l.grad, vec![1.0, 0.0]);
}

#[test]
fn elementwise_gradients_by_finite_differences() {
    let mut g = Rng(7);
    let n = 37;
    let x = g.vec(n, -3.0, 3.0);
    let y = g.vec(n, -3.0, 3.0);
    let yb = g.vec(n, 0.0, 1.0);
    let m = g.mask(n, 0.7);
    let pw = g.vec(n, 0.5, 2.0);
    for red in RED {
        check_grad(&x, |x| r::mse(x, &y, &m, red).unwrap(), 1e-6);
        check_grad(&x, |x| r::l1(x, &y, &m, red).unwrap(), 1e-6);
        check_grad(&x, |x| r::huber(x, &y, &m, 0.8, red).unwrap(), 1e-6);
        check_grad(&x, |x| r::smooth_l1(x, &y, &m, 0.6, red).unwrap(), 1e-6);
        check_grad(
            &x,
            |x| r::bce_with_logits(x, &yb, &m, None, red).unwrap(),
            1e-6,
        );
        check_grad(
            &x,
            |x| r::bce_with_logits(x, &yb, &m, Some(&pw), red).unwrap(),
            1e-6,
        );
    }
}

#[test]
fn poison_in_masked_out_slots_never_leaks() {
    let mut g = Rng(3);
    let n = 50;
    let x = g.vec(n, -2.0, 2.0);
    let y = g.vec(n, 0.0, 1.0);
    let m = g.mask(n, 0.5);
    let (mut xp, mut yp) = (x.clone(), y.clone());
    for i in 0..n {
        if !m.get(i) {
            xp[i] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][i % 3];
            yp[i] = [f64::INFINITY, f64::NAN, 1e308][i % 3];
        }
    }
    for red in RED {
        assert_eq!(
            r::mse(&x, &y, &m, red).unwrap(),
            r::mse(&xp, &yp, &m, red).unwrap()
        );
        assert_eq!(
            r::l1(&x, &y, &m, red).unwrap(),
            r::l1(&xp, &yp, &m, red).unwrap()
        );
        assert_eq!(
            r::huber(&x, &y, &m, 1.0, red).unwrap(),
            r::huber(&xp, &yp, &m, 1.0, red).unwrap()
        );
        assert_eq!(
            r::smooth_l1(&x, &y, &m, 1.0, red).unwrap(),
            r::smooth_l1(&xp, &yp, &m, 1.0, red).unwrap()
        );
        let a = r::bce_with_logits(&x, &y, &m, None, red).unwrap();
        let b = r::bce_with_logits(&xp, &yp, &m, None, red).unwrap();
        assert_eq!(a, b);
        assert!(b.value.iter().chain(&b.grad).all(|v| v.is_finite()));
    }
    // the public API too
    let a = loss::mse(&xp, &yp, &m, Reduction::Mean).unwrap();
    assert!(a.value[0].is_finite() && a.grad.iter().all(|v| v.is_finite()));
}

#[test]
fn mean_over_nothing_is_zero_with_zero_gradient() {
    let x = [f64::NAN, 1.0, 2.0];
    let y = [0.0f64; 3];
    let m = Mask::zeros(3);
    for l in [
        r::mse(&x, &y, &m, Reduction::Mean).unwrap(),
        r::l1(&x, &y, &m, Reduction::Mean).unwrap(),
        r::huber(&x, &y, &m, 1.0, Reduction::Mean).unwrap(),
        r::smooth_l1(&x, &y, &m, 1.0, Reduction::Mean).unwrap(),
        r::bce_with_logits(&x, &y, &m, None, Reduction::Mean).unwrap(),
    ] {
        assert_eq!(l.value, vec![0.0]);
        assert_eq!(l.grad, vec![0.0; 3]);
    }
    let e = r::mse::<f32>(&[], &[], &Mask::zeros(0), Reduction::Mean).unwrap();
    assert_eq!((e.value, e.grad), (vec![0.0], vec![]));
    let e = r::mse::<f32>(&[], &[], &Mask::zeros(0), Reduction::None).unwrap();
    assert!(e.value.is_empty() && e.grad.is_empty());
}

fn lse(x: &[f64]) -> f64 {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

#[test]
fn cross_entropy_hand_values() {
    // F.cross_entropy([[1,2,3]], [0]) = 2.4076059644443806
    let l = r::cross_entropy(&[1.0f64, 2.0, 3.0], 1, 3, &[0], &CrossEntropy::default()).unwrap();
    assert!(close(l.value[0], 2.407_605_964_444_380_6, 1e-15));
    let p: Vec<f64> = [1.0f64, 2.0, 3.0]
        .iter()
        .map(|v| (v - lse(&[1.0, 2.0, 3.0])).exp())
        .collect();
    assert!(close(l.grad[0], p[0] - 1.0, 1e-15));
    assert!(close(l.grad[2], p[2], 1e-15));
}

#[test]
fn cross_entropy_minus_one_trick_seed() {
    // the seed notebook: one-hot logits of 1000, three rows ignored with -1
    let onehot = |seq: &[usize]| {
        let mut v = vec![0.0f32; seq.len() * 10];
        for (i, &c) in seq.iter().enumerate() {
            v[i * 10 + c] = 1000.0;
        }
        v
    };
    let opts = CrossEntropy {
        ignore_index: -1,
        ..Default::default()
    };
    let masked = [-1i64, -1, -1, 8, 2, 1];
    let l = r::cross_entropy(&onehot(&[3, 4, 3, 8, 2, 1]), 6, 10, &masked, &opts).unwrap();
    assert_eq!(l.value, vec![0.0]);
    let l = r::cross_entropy(&onehot(&[3, 4, 3, 8, 2, 8]), 6, 10, &masked, &opts).unwrap();
    assert!((l.value[0] - 1000.0 / 3.0).abs() < 1e-3, "{:?}", l.value);
    assert!(l.grad[..30].iter().all(|&g| g == 0.0));
    // the public API gives the same
    let p = loss::cross_entropy(&onehot(&[3, 4, 3, 8, 2, 8]), 6, 10, &masked, &opts).unwrap();
    assert!((p.value[0] - 1000.0 / 3.0).abs() < 1e-3);
}

/// Independent formula for PyTorch's label-smoothed, weighted cross-entropy
/// (nll term and smoothing term, each reduced as aten does).
#[allow(clippy::too_many_arguments)]
fn ce_formula(
    x: &[f64],
    rows: usize,
    c: usize,
    t: &[i64],
    w: Option<&[f64]>,
    eps: f64,
    ign: i64,
    red: Reduction,
) -> Vec<f64> {
    let wt = |k: usize| w.map_or(1.0, |w| w[k]);
    let mut nll = vec![0.0; rows];
    let mut smooth = vec![0.0; rows];
    let mut den = 0.0;
    for i in 0..rows {
        if t[i] == ign {
            continue;
        }
        let row = &x[i * c..(i + 1) * c];
        let l = lse(row);
        let ti = t[i] as usize;
        nll[i] = -wt(ti) * (row[ti] - l);
        smooth[i] = -(0..c).map(|k| wt(k) * (row[k] - l)).sum::<f64>();
        den += wt(ti);
    }
    match red {
        Reduction::None => (0..rows)
            .map(|i| (1.0 - eps) * nll[i] + smooth[i] * (eps / c as f64))
            .collect(),
        Reduction::Sum => vec![
            (1.0 - eps) * nll.iter().sum::<f64>() + smooth.iter().sum::<f64>() * (eps / c as f64),
        ],
        Reduction::Mean => vec![
            (1.0 - eps) * nll.iter().sum::<f64>() / den
                + smooth.iter().sum::<f64>() / den * (eps / c as f64),
        ],
    }
}

#[test]
fn cross_entropy_weights_and_smoothing_together() {
    let mut g = Rng(11);
    let (rows, c) = (9, 5);
    let x = g.vec(rows * c, -4.0, 4.0);
    let t: Vec<i64> = (0..rows)
        .map(|i| {
            if i % 4 == 1 {
                -100
            } else {
                (g.next() % c as u64) as i64
            }
        })
        .collect();
    let w = g.vec(c, 0.2, 3.0);
    for eps in [0.0, 0.1, 1.0] {
        for weight in [None, Some(w.clone())] {
            for red in RED {
                let opts = CrossEntropy {
                    weight: weight.clone(),
                    label_smoothing: eps,
                    reduction: red,
                    ..Default::default()
                };
                let l = r::cross_entropy(&x, rows, c, &t, &opts).unwrap();
                let want = ce_formula(&x, rows, c, &t, weight.as_deref(), eps, -100, red);
                assert_eq!(l.value.len(), want.len());
                for (a, b) in l.value.iter().zip(&want) {
                    assert!(close(*a, *b, 1e-13), "eps {eps} {red:?}: {a} vs {b}");
                }
                check_grad(
                    &x,
                    |x| r::cross_entropy(x, rows, c, &t, &opts).unwrap(),
                    1e-6,
                );
                for i in (1..rows).step_by(4) {
                    assert!(l.grad[i * c..(i + 1) * c].iter().all(|&v| v == 0.0));
                }
            }
        }
    }
}

#[test]
fn cross_entropy_all_ignored_and_extreme_logits() {
    let x = [f64::NAN, 1.0, 2.0, 3.0];
    for red in RED {
        let opts = CrossEntropy {
            ignore_index: 7,
            reduction: red,
            ..Default::default()
        };
        let l = r::cross_entropy(&x, 2, 2, &[7, 7], &opts).unwrap();
        assert!(l.value.iter().all(|&v| v == 0.0));
        assert_eq!(l.grad, vec![0.0; 4]);
    }
    let x = [1e4f32, -1e4, 0.0, -1e4, 1e4, 0.0];
    let l = r::cross_entropy(&x, 2, 3, &[1, 1], &CrossEntropy::default()).unwrap();
    assert!((l.value[0] - 1e4).abs() < 1e-2);
    assert!(l.grad.iter().all(|v| v.is_finite()));
    assert_eq!(l.grad, vec![0.5, -0.5, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn ecs_matches_scformer_formula_and_gradient() {
    let mut g = Rng(5);
    let (rows, cols) = (6, 4);
    let e = g.vec(rows * cols, -1.0, 1.0);
    let thr = 0.3;
    let l = r::ecs(&e, rows, cols, thr).unwrap();
    // the scFormer function step by step
    let mut u = e.clone();
    for i in 0..rows {
        let n = (0..cols)
            .map(|k| e[i * cols + k].powi(2))
            .sum::<f64>()
            .sqrt();
        for k in 0..cols {
            u[i * cols + k] /= n.max(1e-12);
        }
    }
    let mut total = 0.0;
    for i in 0..rows {
        for j in 0..rows {
            let mut c: f64 = (0..cols).map(|k| u[i * cols + k] * u[j * cols + k]).sum();
            if i == j {
                c = 0.0;
            }
            let c = c.max(0.0);
            total += 1.0 - (c - thr).powi(2);
        }
    }
    assert!(close(l.value[0], total / (rows * rows) as f64, 1e-14));
    check_grad(&e, |e| r::ecs(e, rows, cols, thr).unwrap(), 1e-6);
    check_grad(&e, |e| loss::ecs(e, rows, cols, 0.85).unwrap(), 1e-6);
    let z = r::ecs::<f32>(&[], 0, 3, 0.85).unwrap();
    assert_eq!((z.value, z.grad), (vec![0.0], vec![]));
}

#[test]
fn pearson_per_row() {
    let x = [
        1.0f64,
        2.0,
        3.0,
        4.0,
        /**/ 1.0,
        1.0,
        1.0,
        9.0,
        /**/ 5.0,
        f64::NAN,
        0.0,
        0.0,
    ];
    let y = [
        2.0f64, 4.0, 6.0, 9.0, /**/ 1.0, 2.0, 3.0, 9.0, /**/ 1.0, 0.0, 0.0, 0.0,
    ];
    let m = Mask::from_bools(&[
        true, true, true, false, //
        true, true, true, false, //
        true, false, false, false,
    ]);
    let p = r::pearson(&x, &y, &m, 3, 4).unwrap();
    assert!(close(p.get(0).unwrap(), 1.0, 1e-15));
    assert_eq!(p.get(1), None); // constant input among kept
    assert_eq!(p.get(2), None); // one kept
    assert_eq!(p.values[1], 0.0);
    let x = [1.0f64, 2.0, 3.0, 4.0];
    let y = [1.0f64, 3.0, 2.0, 5.0];
    let p = loss::pearson(&x, &y, &Mask::ones(4), 1, 4).unwrap();
    // r = 5.5 / sqrt(5 * 8.75)
    assert!(close(
        p.get(0).unwrap(),
        5.5 / (5.0f64 * 8.75).sqrt(),
        1e-15
    ));
}

#[test]
fn errors_name_the_argument() {
    let x = [0.0f32; 4];
    let m = Mask::ones(4);
    assert_eq!(
        loss::mse(&x, &x[..3], &m, Reduction::Mean),
        Err(Error::Length {
            arg: "target",
            expected: 4,
            actual: 3
        })
    );
    assert!(matches!(
        loss::l1(&x, &x, &Mask::ones(5), Reduction::Mean),
        Err(Error::Length { arg: "mask", .. })
    ));
    for d in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            loss::huber(&x, &x, &m, d, Reduction::Mean),
            Err(Error::Param { name: "delta", .. })
        ));
    }
    for b in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            loss::smooth_l1(&x, &x, &m, b, Reduction::Mean),
            Err(Error::Param { name: "beta", .. })
        ));
    }
    assert!(matches!(
        loss::bce_with_logits(&x, &x, &m, Some(&[1.0f32; 3]), Reduction::Mean),
        Err(Error::Length {
            arg: "pos_weight",
            ..
        })
    ));
    let ce = CrossEntropy::<f32>::default();
    assert_eq!(
        loss::cross_entropy(&x, 2, 2, &[1, 2], &ce),
        Err(Error::Target {
            row: 1,
            value: 2,
            classes: 2,
            ignore_index: -100
        })
    );
    assert!(matches!(
        loss::cross_entropy(&x, 2, 2, &[-1, 0], &ce),
        Err(Error::Target {
            row: 0,
            value: -1,
            ..
        })
    ));
    assert!(matches!(
        loss::cross_entropy(&x, 3, 2, &[0, 0, 0], &ce),
        Err(Error::Shape { arg: "logits", .. })
    ));
    assert!(matches!(
        loss::cross_entropy(&x, 2, 2, &[0], &ce),
        Err(Error::Length { arg: "targets", .. })
    ));
    let bad_w = CrossEntropy {
        weight: Some(vec![1.0f32; 3]),
        ..Default::default()
    };
    assert!(matches!(
        loss::cross_entropy(&x, 2, 2, &[0, 1], &bad_w),
        Err(Error::Length {
            arg: "weight",
            expected: 2,
            actual: 3
        })
    ));
    for ls in [-0.1, 1.5, f64::NAN] {
        let o = CrossEntropy::<f32> {
            label_smoothing: ls,
            ..Default::default()
        };
        assert!(matches!(
            loss::cross_entropy(&x, 2, 2, &[0, 1], &o),
            Err(Error::Param {
                name: "label_smoothing",
                ..
            })
        ));
    }
    assert!(matches!(
        loss::ecs(&x, 3, 2, 0.85),
        Err(Error::Shape {
            arg: "embedding",
            ..
        })
    ));
    assert!(matches!(
        loss::ecs(&x, 2, 2, f64::NAN),
        Err(Error::Param {
            name: "threshold",
            ..
        })
    ));
    assert!(matches!(
        loss::pearson(&x, &x, &m, 3, 2),
        Err(Error::Shape { arg: "input", .. })
    ));
    // errors carry readable messages
    let e = loss::cross_entropy(&x, 2, 2, &[1, 5], &ce).unwrap_err();
    assert!(e.to_string().contains("[1] = 5"), "{e}");
}
