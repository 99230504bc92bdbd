//! Row-wise Adagrad (FBGEMM): hand values, the reference, the canonical
//! order of the per-row sum of squares, duplicates, validation.

use maskops::canonical::canonical_fold;
use maskops::optim::{RowwiseAdagrad, Workspace};
use maskops::reference::adagrad as reference;
use maskops::Error;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unif(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

#[test]
fn hand_values_and_duplicates() {
    let opt = RowwiseAdagrad {
        lr: 0.5,
        initial_accumulator_value: 1.0,
        ..Default::default()
    };
    let mut p = vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut st = opt.state(3);
    // row 1 twice: g = [1 + 2, -1 + 1] = [3, 0]
    opt.step_rows(&mut p, 3, 2, &[1, 1], &[1.0, -1.0, 2.0, 1.0], &mut st)
        .unwrap();
    let s1 = 1.0 + (9.0 + 0.0) / 2.0;
    assert_eq!(st.sum, vec![1.0, s1, 1.0]);
    let mult = 0.5 / (f64::sqrt(s1) + 1e-10);
    assert_eq!(p, vec![1.0, 2.0, 3.0 - mult * 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(st.step, 1);
}

#[test]
fn canonical_sum_of_squares_bitwise() {
    // f32, 100 columns: the accumulator gets exactly the canonical fold of
    // g^2 divided by cols.
    let mut rng = Rng(5);
    let cols = 100;
    let g: Vec<f32> = (0..cols).map(|_| rng.unif() as f32).collect();
    let opt = RowwiseAdagrad::default();
    let mut p = vec![0.0f32; cols];
    let mut st = opt.state(1);
    opt.step_dense(&mut p, 1, cols, &g, &mut st).unwrap();
    let sq = canonical_fold(cols, 0.0f32, |_| true, |j| g[j] * g[j], |a, b| a + b);
    assert_eq!(st.sum[0], sq / cols as f32);
}

#[test]
fn matches_reference_and_dense_equals_all_rows() {
    let mut rng = Rng(9);
    for trial in 0..30 {
        let rows = 1 + rng.below(20);
        let cols = [1, 5, 16, 33, 64, 130][rng.below(6)];
        let opt = RowwiseAdagrad {
            lr: 0.01 + rng.unif().abs(),
            lr_decay: 0.1 * (trial % 2) as f64,
            weight_decay: 0.02 * (trial % 3) as f64,
            initial_accumulator_value: 0.1,
            eps: 1e-8,
            maximize: trial % 4 == 3,
        };
        let p0: Vec<f64> = (0..rows * cols).map(|_| rng.unif()).collect();
        let mut pf = p0.clone();
        let mut pr = p0.clone();
        let mut p32: Vec<f32> = p0.iter().map(|&x| x as f32).collect();
        let mut sf = opt.state::<f64>(rows);
        let mut sr = opt.state::<f64>(rows);
        let mut s32 = opt.state::<f32>(rows);
        let mut ws = Workspace::new();
        for _ in 0..3 {
            let k = rng.below(2 * rows + 1);
            let idx: Vec<usize> = (0..k).map(|_| rng.below(rows)).collect();
            let vals: Vec<f64> = (0..k * cols).map(|_| rng.unif()).collect();
            let v32: Vec<f32> = vals.iter().map(|&x| x as f32).collect();
            opt.step_rows_with(
                maskops::backend::isa(),
                &mut ws,
                &mut pf,
                rows,
                cols,
                &idx,
                &vals,
                &mut sf,
            )
            .unwrap();
            opt.step_rows(&mut p32, rows, cols, &idx, &v32, &mut s32)
                .unwrap();
            reference::rowwise_step_rows(&opt, &mut pr, rows, cols, &idx, &vals, &mut sr).unwrap();
        }
        for i in 0..rows * cols {
            assert!(
                (pf[i] - pr[i]).abs() <= 1e-12 * (1.0 + pr[i].abs()),
                "trial {trial} f64 p[{i}]"
            );
            assert!(
                (p32[i] as f64 - pr[i]).abs() <= 2e-5 * (1.0 + pr[i].abs()),
                "trial {trial} f32 p[{i}]"
            );
        }
        for r in 0..rows {
            assert!((sf.sum[r] - sr.sum[r]).abs() <= 1e-12 * (1.0 + sr.sum[r]));
        }
        // Dense == rows listing every row once, in any order.
        let g: Vec<f64> = (0..rows * cols).map(|_| rng.unif()).collect();
        let mut a = p0.clone();
        let mut sa = opt.state::<f64>(rows);
        opt.step_dense(&mut a, rows, cols, &g, &mut sa).unwrap();
        let order: Vec<usize> = (0..rows).rev().collect();
        let gv: Vec<f64> = order
            .iter()
            .flat_map(|&r| g[r * cols..(r + 1) * cols].to_vec())
            .collect();
        let mut b = p0.clone();
        let mut sb = opt.state::<f64>(rows);
        opt.step_rows(&mut b, rows, cols, &order, &gv, &mut sb)
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        let mut c = p0.clone();
        let mut sc = opt.state::<f64>(rows);
        reference::rowwise_step_dense(&opt, &mut c, rows, cols, &g, &mut sc).unwrap();
        for i in 0..rows * cols {
            assert!((a[i] - c[i]).abs() <= 1e-12 * (1.0 + c[i].abs()));
        }
    }
}

#[test]
fn validation_leaves_everything_untouched() {
    let opt = RowwiseAdagrad::default();
    let p0 = vec![1.0f32; 8];
    let mut p = p0.clone();
    let mut st = opt.state::<f32>(4);
    let e = opt
        .step_rows(&mut p, 4, 2, &[0, 4], &[1.0; 4], &mut st)
        .unwrap_err();
    assert_eq!(
        e,
        Error::Index {
            arg: "row_indices",
            index: 4,
            position: 1,
            bound: 4
        }
    );
    let mut bad = opt.state::<f32>(8); // per-element state is the wrong length
    let e = opt
        .step_rows(&mut p, 4, 2, &[0], &[1.0; 2], &mut bad)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Length {
            arg: "state.sum",
            expected: 4,
            actual: 8
        }
    ));
    let e = opt
        .step_dense(&mut p, 4, 2, &[1.0; 7], &mut st)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Length {
            arg: "grad",
            expected: 8,
            actual: 7
        }
    ));
    let nan = RowwiseAdagrad {
        eps: f64::NAN,
        ..opt
    };
    assert!(matches!(
        nan.step_rows(&mut p, 4, 2, &[0], &[1.0; 2], &mut st),
        Err(Error::Param { name: "eps", .. })
    ));
    assert_eq!(p, p0);
    assert_eq!(st.step, 0);
    assert!(st.sum.iter().all(|&s| s == 0.0));
    assert_eq!(bad.step, 0);
}
