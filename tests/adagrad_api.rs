//! Adagrad public API: hand-computed values (the MaskedTensor seed's example),
//! agreement between gradient forms, duplicates, empty gradients, several
//! steps with every hyper-parameter, and validation before mutation.

use maskops::optim::{Adagrad, AdagradState};
use maskops::{Error, Mask, MaskedView};
use sprs::{CsVec, TriMat};

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

/// The MaskedTensor seed: param = arange(8) as 2x4, COO i = [[0,1,1],[2,0,2]],
/// v = [3,4,5], state 0.5, clr 0.1, eps 1e-10.
#[test]
fn seed_example_all_forms() {
    let opt = Adagrad {
        lr: 0.1,
        initial_accumulator_value: 0.5,
        ..Default::default()
    };
    let p0: Vec<f32> = (0..8).map(|x| x as f32).collect();
    // Values computed by hand (Python, f64) from 2 - 0.1*3/sqrt(0.5+9) etc.
    let expect_p = [
        0.0,
        1.0,
        1.902_667_147_324_700_3,
        3.0,
        3.901_526_807_218_958,
        5.0,
        5.900_985_245_704_294,
        7.0,
    ];
    let expect_s = [0.5, 0.5, 9.5, 0.5, 16.5, 0.5, 25.5, 0.5];

    let check = |p: &[f32], st: &AdagradState<f32>, what: &str| {
        assert_eq!(st.step, 1, "{what}");
        for i in 0..8 {
            assert!(
                (p[i] as f64 - expect_p[i]).abs() <= 1e-6,
                "{what}: param[{i}] = {} vs {}",
                p[i],
                expect_p[i]
            );
            assert_eq!(st.sum[i] as f64, expect_s[i], "{what}: sum[{i}]");
        }
    };

    let tri = TriMat::from_triplets((2, 4), vec![0, 1, 1], vec![2, 0, 2], vec![3.0f32, 4.0, 5.0]);
    let mut p = p0.clone();
    let mut st = opt.state(8);
    opt.step_sparse(&mut p, 2, 4, &tri, &mut st).unwrap();
    check(&p, &st, "sparse");
    let p_sparse = p.clone();

    // Masked: dense gradient with poison under the cleared bits.
    let g = [f32::NAN, f32::INFINITY, 3.0, -1e30, 4.0, f32::NAN, 5.0, 7.0];
    let m = Mask::from_bools(&[false, false, true, false, true, false, true, false]);
    let mut p = p0.clone();
    let mut st = opt.state(8);
    opt.step_masked(&mut p, &MaskedView::matrix(&g, &m, 2, 4).unwrap(), &mut st)
        .unwrap();
    check(&p, &st, "masked");
    assert_eq!(p, p_sparse, "masked must equal sparse bit for bit");

    // CsVec over the flattened parameter.
    let v = CsVec::new(8, vec![2, 4, 6], vec![3.0f32, 4.0, 5.0]);
    let mut p = p0.clone();
    let mut st = opt.state(8);
    opt.step_sparse_vec(&mut p, &v, &mut st).unwrap();
    check(&p, &st, "sparse_vec");
    assert_eq!(p, p_sparse);

    // Rows form: 8 rows x 1 col.
    let mut p = p0.clone();
    let mut st = opt.state(8);
    opt.step_rows(&mut p, 8, 1, &[2, 4, 6], &[3.0, 4.0, 5.0], &mut st)
        .unwrap();
    check(&p, &st, "rows");
    assert_eq!(p, p_sparse);
}

fn reference_dense(opt: &Adagrad, p: &mut [f64], s: &mut [f64], g: &[f64], step: u64) {
    let clr = opt.lr / (1.0 + (step - 1) as f64 * opt.lr_decay);
    for i in 0..p.len() {
        let mut gi = if opt.maximize { -g[i] } else { g[i] };
        if opt.weight_decay != 0.0 {
            gi += opt.weight_decay * p[i];
        }
        s[i] += gi * gi;
        p[i] -= clr * gi / (s[i].sqrt() + opt.eps);
    }
}

/// Several steps with every hyper-parameter set, against a loop written
/// here from PyTorch's formula (f64: bit for bit, f32: within 1e-5 rel).
#[test]
fn several_steps_all_hyperparameters() {
    let opts = [
        Adagrad::default(),
        Adagrad {
            lr: 0.05,
            lr_decay: 0.1,
            weight_decay: 0.01,
            initial_accumulator_value: 0.3,
            eps: 1e-6,
            maximize: true,
        },
        Adagrad {
            lr: 0.5,
            lr_decay: 0.0,
            weight_decay: 0.2,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        },
    ];
    let mut rng = Rng(7);
    for opt in opts {
        let n = 37;
        let mut p64: Vec<f64> = (0..n).map(|_| rng.unif()).collect();
        let mut p32: Vec<f32> = p64.iter().map(|&x| x as f32).collect();
        let mut want_p: Vec<f64> = p64.clone();
        let mut want_s = vec![opt.initial_accumulator_value; n];
        let mut want_p32: Vec<f64> = p32.iter().map(|&x| x as f64).collect();
        let mut want_s32 = vec![opt.initial_accumulator_value; n];
        let mut st64 = opt.state::<f64>(n);
        let mut st32 = opt.state::<f32>(n);
        for step in 1..=5u64 {
            let g64: Vec<f64> = (0..n).map(|_| rng.unif()).collect();
            let g32: Vec<f32> = g64.iter().map(|&x| x as f32).collect();
            opt.step_dense(&mut p64, &g64, &mut st64).unwrap();
            opt.step_dense(&mut p32, &g32, &mut st32).unwrap();
            reference_dense(&opt, &mut want_p, &mut want_s, &g64, step);
            let g32w: Vec<f64> = g32.iter().map(|&x| x as f64).collect();
            reference_dense(&opt, &mut want_p32, &mut want_s32, &g32w, step);
            assert_eq!(st64.step, step);
            assert_eq!(p64, want_p, "f64 params, step {step}, {opt:?}");
            assert_eq!(st64.sum, want_s, "f64 sum, step {step}");
            for i in 0..n {
                let tol = 1e-5 * (1.0 + want_p32[i].abs());
                assert!(
                    (p32[i] as f64 - want_p32[i]).abs() <= tol,
                    "f32 param[{i}] step {step}: {} vs {}",
                    p32[i],
                    want_p32[i]
                );
                assert!((st32.sum[i] as f64 - want_s32[i]).abs() <= 1e-5 * (1.0 + want_s32[i]));
            }
        }
    }
}

/// Duplicates are summed before the update (coalesce), not applied twice.
#[test]
fn duplicates_summed_before_update() {
    let opt = Adagrad {
        lr: 0.1,
        ..Default::default()
    };
    // (0,1) appears three times: 1 + 2 + 0.5 = 3.5; exact in f32.
    let tri = TriMat::from_triplets(
        (3, 3),
        vec![0, 2, 0, 0, 1],
        vec![1, 2, 1, 1, 0],
        vec![1.0f32, -2.0, 2.0, 0.5, 4.0],
    );
    let summed = TriMat::from_triplets(
        (3, 3),
        vec![1, 0, 2],
        vec![0, 1, 2],
        vec![4.0f32, 3.5, -2.0],
    );
    let p0: Vec<f32> = (0..9).map(|x| x as f32 * 0.5).collect();
    let mut a = p0.clone();
    let mut sa = opt.state(9);
    opt.step_sparse(&mut a, 3, 3, &tri, &mut sa).unwrap();
    let mut b = p0.clone();
    let mut sb = opt.state(9);
    opt.step_sparse(&mut b, 3, 3, &summed, &mut sb).unwrap();
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    assert_eq!(sa.sum[1], 3.5 * 3.5);
    // With zero initial accumulator, one coalesced step moves by exactly ~lr.
    assert!((a[1] as f64 - (0.5 - 0.1)).abs() < 1e-6);

    // Rows with duplicates equal rows pre-summed.
    let mut c = p0.clone();
    let mut sc = opt.state(9);
    opt.step_rows(
        &mut c,
        3,
        3,
        &[2, 0, 2],
        &[1.0, 2.0, 3.0, 0.0, 0.0, 1.0, 0.5, 0.25, -3.0],
        &mut sc,
    )
    .unwrap();
    let mut d = p0.clone();
    let mut sd = opt.state(9);
    opt.step_rows(
        &mut d,
        3,
        3,
        &[0, 2],
        &[0.0, 0.0, 1.0, 1.5, 2.25, 0.0],
        &mut sd,
    )
    .unwrap();
    assert_eq!(c, d);
    assert_eq!(sc, sd);

    // CsVec cannot hold duplicates; COO raw arrays can: same as TriMat.
    let mut e = p0.clone();
    let mut se = opt.state(9);
    opt.step_coo(
        &mut e,
        3,
        3,
        tri.row_inds(),
        tri.col_inds(),
        tri.data(),
        &mut se,
    )
    .unwrap();
    assert_eq!(e, a);
    assert_eq!(se, sa);
}

/// Random gradients: every sparse form agrees with the masked form on the
/// same entries (no duplicates), and with the f64 path.
#[test]
fn forms_agree_random() {
    let mut rng = Rng(11);
    for trial in 0..20 {
        let rows = 1 + rng.below(9);
        let cols = 1 + rng.below(70);
        let n = rows * cols;
        let opt = Adagrad {
            lr: 0.01 + rng.unif().abs(),
            lr_decay: 0.05,
            weight_decay: if trial % 2 == 0 { 0.0 } else { 0.1 },
            initial_accumulator_value: rng.unif().abs(),
            eps: 1e-8,
            maximize: trial % 3 == 0,
        };
        let p0: Vec<f32> = (0..n).map(|_| rng.unif() as f32).collect();
        let keep: Vec<bool> = (0..n).map(|_| rng.below(3) == 0).collect();
        let g: Vec<f32> = (0..n)
            .map(|i| if keep[i] { rng.unif() as f32 } else { f32::NAN })
            .collect();
        let mask = Mask::from_bools(&keep);
        let idx: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
        let vals: Vec<f32> = idx.iter().map(|&i| g[i]).collect();

        let mut pm = p0.clone();
        let mut sm = opt.state(n);
        let mut pc = p0.clone();
        let mut sc = opt.state(n);
        let mut pv = p0.clone();
        let mut sv = opt.state(n);
        for _ in 0..3 {
            opt.step_masked(&mut pm, &MaskedView::new(&g, &mask).unwrap(), &mut sm)
                .unwrap();
            // shuffled COO order: no duplicates, so order cannot matter
            let mut order: Vec<usize> = (0..idx.len()).collect();
            for k in (1..order.len()).rev() {
                order.swap(k, rng.below(k + 1));
            }
            let r: Vec<usize> = order.iter().map(|&k| idx[k] / cols).collect();
            let c: Vec<usize> = order.iter().map(|&k| idx[k] % cols).collect();
            let v: Vec<f32> = order.iter().map(|&k| vals[k]).collect();
            let tri = TriMat::from_triplets((rows, cols), r, c, v);
            opt.step_sparse(&mut pc, rows, cols, &tri, &mut sc).unwrap();
            let cv = CsVec::new(n, idx.clone(), vals.clone());
            opt.step_sparse_vec(&mut pv, &cv, &mut sv).unwrap();
        }
        assert_eq!(pm, pc, "trial {trial}");
        assert_eq!(sm, sc);
        assert_eq!(pm, pv);
        assert_eq!(sm, sv);
        for i in 0..n {
            if !keep[i] {
                assert_eq!(pm[i], p0[i]);
                assert_eq!(sm.sum[i], opt.state::<f32>(1).sum[0]);
            }
        }

        // Rows form == masked form with whole rows kept.
        let row_keep: Vec<usize> = (0..rows).filter(|_| rng.below(2) == 0).collect();
        let mut bools = vec![false; n];
        let mut gv = Vec::new();
        let gd: Vec<f32> = (0..n).map(|_| rng.unif() as f32).collect();
        for &r in &row_keep {
            for c in 0..cols {
                bools[r * cols + c] = true;
                gv.push(gd[r * cols + c]);
            }
        }
        let m = Mask::from_bools(&bools);
        let mut pr = p0.clone();
        let mut sr = opt.state(n);
        opt.step_rows(&mut pr, rows, cols, &row_keep, &gv, &mut sr)
            .unwrap();
        let mut pm = p0.clone();
        let mut sm = opt.state(n);
        opt.step_masked(&mut pm, &MaskedView::new(&gd, &m).unwrap(), &mut sm)
            .unwrap();
        assert_eq!(pr, pm);
        assert_eq!(sr, sm);
    }
}

#[test]
fn empty_gradients_advance_step_only() {
    let opt = Adagrad {
        lr: 0.1,
        lr_decay: 0.5,
        weight_decay: 0.3,
        initial_accumulator_value: 0.1,
        ..Default::default()
    };
    let p0 = vec![1.0f64, -2.0, 3.0, 4.0];
    let mut p = p0.clone();
    let mut st = opt.state(4);
    let s0 = st.sum.clone();
    opt.step_sparse(&mut p, 2, 2, &TriMat::new((2, 2)), &mut st)
        .unwrap();
    opt.step_sparse_vec(&mut p, &CsVec::new(4, vec![], vec![]), &mut st)
        .unwrap();
    opt.step_rows(&mut p, 2, 2, &[], &[], &mut st).unwrap();
    opt.step_coo(&mut p, 2, 2, &[], &[], &[], &mut st).unwrap();
    let none = Mask::zeros(4);
    let g = [f64::NAN; 4];
    opt.step_masked(&mut p, &MaskedView::new(&g, &none).unwrap(), &mut st)
        .unwrap();
    assert_eq!(st.step, 5);
    assert_eq!(p, p0);
    assert_eq!(st.sum, s0);
    // The next real step uses clr = lr / (1 + 5 * lr_decay).
    opt.step_dense(&mut p, &[1.0, 0.0, 0.0, 0.0], &mut st)
        .unwrap();
    let clr = 0.1 / (1.0 + 5.0 * 0.5);
    let g0 = 1.0 + 0.3 * 1.0;
    let s = 0.1 + g0 * g0;
    assert_eq!(p[0], 1.0 - clr * g0 / (f64::sqrt(s) + 1e-10));
    // Zero-length parameter.
    let mut e: Vec<f32> = vec![];
    let mut se = opt.state(0);
    opt.step_dense(&mut e, &[], &mut se).unwrap();
    opt.step_rows(&mut e, 0, 5, &[], &[], &mut se).unwrap();
    assert_eq!(se.step, 2);
}

/// Half-precision parameters update through f32 state: a zero gradient
/// never gives NaN (PyTorch's fp16 eps underflow).
#[test]
fn half_params_f32_state() {
    use half::{bf16, f16};
    let opt = Adagrad::default();
    let mut p: Vec<f16> = vec![f16::from_f32(1.0); 4];
    let mut st = opt.state::<f32>(4);
    opt.step_dense(&mut p, &[f16::ZERO; 4], &mut st).unwrap();
    assert!(p.iter().all(|x| x.to_f32() == 1.0));
    let g = [
        f16::from_f32(0.5),
        f16::ZERO,
        f16::from_f32(-1.0),
        f16::ZERO,
    ];
    opt.step_dense(&mut p, &g, &mut st).unwrap();
    assert!((p[0].to_f32() - 0.99).abs() < 1e-3);
    assert!((p[2].to_f32() - 1.01).abs() < 1e-3);
    assert_eq!(p[1].to_f32(), 1.0);
    let mut b: Vec<bf16> = vec![bf16::from_f32(2.0); 6];
    let mut sb = opt.state::<f32>(6);
    opt.step_rows(&mut b, 3, 2, &[1, 1], &[bf16::ONE; 4], &mut sb)
        .unwrap();
    assert_eq!(sb.sum[2], 4.0);
    assert_eq!(b[0].to_f32(), 2.0);
    assert!((b[2].to_f32() - 1.99).abs() < 1e-2);
}

/// Every bad input returns the right error and changes nothing.
#[test]
fn validation_before_mutation() {
    let opt = Adagrad {
        lr: 0.1,
        initial_accumulator_value: 0.25,
        ..Default::default()
    };
    let p0: Vec<f32> = (0..12).map(|x| x as f32).collect();
    let fresh = || {
        let mut st = opt.state::<f32>(12);
        st.step = 3;
        (p0.clone(), st)
    };
    let unchanged = |p: &Vec<f32>, st: &AdagradState<f32>| {
        assert_eq!(p, &p0);
        assert_eq!(st.step, 3);
        assert!(st.sum.iter().all(|&s| s == 0.25));
    };

    // Index out of range in row_indices: reported with its position, and the
    // valid rows before it untouched.
    let (mut p, mut st) = fresh();
    let e = opt
        .step_rows(&mut p, 3, 4, &[0, 2, 3, 1], &[1.0; 16], &mut st)
        .unwrap_err();
    assert_eq!(
        e,
        Error::Index {
            arg: "row_indices",
            index: 3,
            position: 2,
            bound: 3
        }
    );
    assert!(e.to_string().contains("3"));
    unchanged(&p, &st);

    let (mut p, mut st) = fresh();
    let e = opt
        .step_coo(
            &mut p,
            3,
            4,
            &[0, 1, 2],
            &[0, 4, 1],
            &[1.0, 2.0, 3.0],
            &mut st,
        )
        .unwrap_err();
    assert_eq!(
        e,
        Error::Index {
            arg: "col_inds",
            index: 4,
            position: 1,
            bound: 4
        }
    );
    unchanged(&p, &st);

    let (mut p, mut st) = fresh();
    let e = opt
        .step_coo(&mut p, 3, 4, &[0, 7], &[0, 0], &[1.0, 2.0], &mut st)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Index {
            arg: "row_inds",
            index: 7,
            position: 1,
            bound: 3
        }
    ));
    unchanged(&p, &st);

    // CsVec with an index past its dimension (only constructible unsafely).
    let (mut p, mut st) = fresh();
    // SAFETY: sprs's unchecked constructor; the indices are deliberately
    // out of range to test our validation, which never indexes with them.
    let bad = unsafe { CsVec::new_uncheked(12, vec![1, 12], vec![1.0f32, 1.0]) };
    let e = opt.step_sparse_vec(&mut p, &bad, &mut st).unwrap_err();
    assert_eq!(
        e,
        Error::Index {
            arg: "grad.indices",
            index: 12,
            position: 1,
            bound: 12
        }
    );
    unchanged(&p, &st);

    // Shapes.
    let (mut p, mut st) = fresh();
    let e = opt.step_dense(&mut p, &[1.0; 11], &mut st).unwrap_err();
    assert_eq!(
        e,
        Error::Length {
            arg: "grad",
            expected: 12,
            actual: 11
        }
    );
    unchanged(&p, &st);
    let (mut p, mut st) = fresh();
    let e = opt
        .step_rows(&mut p, 3, 4, &[0, 1], &[1.0; 7], &mut st)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Shape {
            arg: "values",
            rows: 2,
            cols: 4,
            len: 7
        }
    ));
    unchanged(&p, &st);
    let (mut p, mut st) = fresh();
    let e = opt
        .step_rows(&mut p, 5, 4, &[0], &[1.0; 4], &mut st)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Shape {
            arg: "param",
            rows: 5,
            cols: 4,
            len: 12
        }
    ));
    unchanged(&p, &st);
    let (mut p, mut st) = fresh();
    let tri = TriMat::from_triplets((4, 3), vec![0], vec![0], vec![1.0f32]);
    let e = opt.step_sparse(&mut p, 3, 4, &tri, &mut st).unwrap_err();
    assert!(matches!(
        e,
        Error::Length {
            arg: "grad.rows",
            expected: 3,
            actual: 4
        }
    ));
    unchanged(&p, &st);
    let (mut p, mut st) = fresh();
    let e = opt
        .step_sparse_vec(&mut p, &CsVec::new(13, vec![0], vec![1.0f32]), &mut st)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Length {
            arg: "grad.dim",
            expected: 12,
            actual: 13
        }
    ));
    unchanged(&p, &st);
    let (mut p, mut st) = fresh();
    let g = [1.0f32; 13];
    let m = Mask::ones(13);
    let e = opt
        .step_masked(&mut p, &MaskedView::new(&g, &m).unwrap(), &mut st)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Length {
            arg: "grad",
            expected: 12,
            actual: 13
        }
    ));
    unchanged(&p, &st);

    // State of the wrong length.
    let mut p = p0.clone();
    let mut st = opt.state::<f32>(11);
    st.step = 3;
    let e = opt.step_dense(&mut p, &[1.0; 12], &mut st).unwrap_err();
    assert!(matches!(
        e,
        Error::Length {
            arg: "state.sum",
            expected: 12,
            actual: 11
        }
    ));
    assert_eq!(p, p0);
    assert_eq!(st.step, 3);

    // Hyper-parameters: NaN, infinite, negative.
    let bad = [
        (
            Adagrad {
                lr: f64::NAN,
                ..opt
            },
            "lr",
        ),
        (Adagrad { lr: -0.1, ..opt }, "lr"),
        (
            Adagrad {
                lr_decay: f64::INFINITY,
                ..opt
            },
            "lr_decay",
        ),
        (
            Adagrad {
                weight_decay: -1.0,
                ..opt
            },
            "weight_decay",
        ),
        (
            Adagrad {
                eps: f64::NAN,
                ..opt
            },
            "eps",
        ),
        (
            Adagrad {
                initial_accumulator_value: -0.5,
                ..opt
            },
            "initial_accumulator_value",
        ),
    ];
    for (o, name) in bad {
        assert!(matches!(o.validate(), Err(Error::Param { name: n, .. }) if n == name));
        let (mut p, mut st) = fresh();
        let tri = TriMat::from_triplets((3, 4), vec![0], vec![0], vec![1.0f32]);
        for r in [
            o.step_dense(&mut p, &[1.0; 12], &mut st),
            o.step_sparse(&mut p, 3, 4, &tri, &mut st),
            o.step_rows(&mut p, 3, 4, &[1], &[1.0; 4], &mut st),
        ] {
            assert!(
                matches!(r, Err(Error::Param { name: n, .. }) if n == name),
                "{name}: {r:?}"
            );
        }
        unchanged(&p, &st);
    }

    // Step counter at its maximum.
    let (mut p, mut st) = fresh();
    st.step = u64::MAX;
    let e = opt.step_dense(&mut p, &[1.0; 12], &mut st).unwrap_err();
    assert!(matches!(
        e,
        Error::Param {
            name: "state.step",
            ..
        }
    ));
    assert_eq!(p, p0);
    assert_eq!(st.step, u64::MAX);
}
