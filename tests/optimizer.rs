//! `optim::Optimizer`: each gradient form through the trait equals the
//! `step_*` method it forwards to, bit for bit; saved states round-trip bit
//! for bit and bad ones are refused with nothing changed; a failed step
//! changes nothing; global-norm clipping against an f64 computation.

use half::f16;
use maskops::optim::{
    clip_grad_norm, Adagrad, AdagradElement, AdagradOptimizer, AdagradState, ClipGrad, Gradient,
    Optimizer, RowwiseAdagrad, RowwiseOptimizer,
};
use maskops::{Element, Error, Mask, MaskedView};

fn bits<T: Element>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

fn data<T: Element>(n: usize, seed: u64) -> Vec<T> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            T::from_f64(((s >> 40) as f64 / (1u64 << 24) as f64) * 4.0 - 2.0)
        })
        .collect()
}

fn hyper() -> Adagrad {
    Adagrad {
        lr: 0.05,
        lr_decay: 0.01,
        weight_decay: 0.1,
        initial_accumulator_value: 0.2,
        eps: 1e-8,
        maximize: false,
    }
}

/// Runs the same sequence of every gradient form through the trait and
/// through `Adagrad`'s methods with an explicit state.
fn forms_match<P: AdagradElement>() {
    let (rows, cols) = (13, 7);
    let n = rows * cols;
    let h = hyper();
    let mut opt = AdagradOptimizer::<P>::new(h, n).unwrap();
    let mut p1: Vec<P> = data(n, 1);
    let mut p2 = p1.clone();
    let mut st: AdagradState<P::State> = h.state(n);
    let g: Vec<P> = data(n, 2);
    let m = Mask::random(n, 0.4, 3);
    let (ri, ci) = (vec![1usize, 4, 1, 12], vec![0usize, 6, 0, 3]);
    let vals: Vec<P> = data(4, 4);
    let mut tri = sprs::TriMat::new((rows, cols));
    for k in 0..4 {
        tri.add_triplet(ri[k], ci[k], vals[k]);
    }
    let cv = sprs::CsVec::new(n, vec![3, 50, 90], data::<P>(3, 5));
    let idx = [2usize, 9, 2];
    let rv: Vec<P> = data(3 * cols, 6);

    opt.step(&mut p1, Gradient::Dense(&g)).unwrap();
    h.step_dense(&mut p2, &g, &mut st).unwrap();
    let view = MaskedView::new(&g, &m).unwrap();
    opt.step(&mut p1, Gradient::Masked(view)).unwrap();
    h.step_masked(&mut p2, &view, &mut st).unwrap();
    let coo = Gradient::Coo {
        rows,
        cols,
        row_inds: &ri,
        col_inds: &ci,
        values: &vals,
    };
    opt.step(&mut p1, coo).unwrap();
    h.step_coo(&mut p2, rows, cols, &ri, &ci, &vals, &mut st)
        .unwrap();
    opt.step(&mut p1, Gradient::Sparse(&tri)).unwrap();
    h.step_sparse(&mut p2, rows, cols, &tri, &mut st).unwrap();
    opt.step(&mut p1, Gradient::SparseVec(&cv)).unwrap();
    h.step_sparse_vec(&mut p2, &cv, &mut st).unwrap();
    let rg = Gradient::Rows {
        rows,
        cols,
        indices: &idx,
        values: &rv,
    };
    opt.step(&mut p1, rg).unwrap();
    h.step_rows(&mut p2, rows, cols, &idx, &rv, &mut st)
        .unwrap();

    assert_eq!(bits(&p1), bits(&p2), "{}", P::NAME);
    assert_eq!(bits(&opt.state().sum), bits(&st.sum));
    assert_eq!(opt.steps(), 6);
    assert_eq!(opt.state().step, st.step);
}

#[test]
fn every_form_matches_the_step_methods() {
    forms_match::<f32>();
    forms_match::<f64>();
    forms_match::<f16>();
}

fn round_trip<P: AdagradElement>() {
    let n = 37;
    let mut opt = AdagradOptimizer::<P>::new(hyper(), n).unwrap();
    let mut p: Vec<P> = data(n, 7);
    for s in 0..3 {
        opt.step(&mut p, Gradient::Dense(&data::<P>(n, 10 + s)))
            .unwrap();
    }
    opt.set_learning_rate(0.125).unwrap();
    let saved = opt.save_state();
    let mut other = AdagradOptimizer::<P>::new(Adagrad::default(), n).unwrap();
    other.load_state(&saved).unwrap();
    assert_eq!(bits(&other.state().sum), bits(&opt.state().sum));
    assert_eq!(other.steps(), 3);
    assert_eq!(other.config(), opt.config());
    assert_eq!(other.save_state(), saved);
    // both continue identically
    let mut q = p.clone();
    let g: Vec<P> = data(n, 99);
    opt.step(&mut p, Gradient::Dense(&g)).unwrap();
    other.step(&mut q, Gradient::Dense(&g)).unwrap();
    assert_eq!(bits(&p), bits(&q));
}

#[test]
fn saved_state_round_trips_bit_for_bit() {
    round_trip::<f32>();
    round_trip::<f64>();
    round_trip::<f16>();
}

fn expect_state_err(r: maskops::Result<()>, needle: &str) {
    match r {
        Err(Error::State { reason }) => assert!(reason.contains(needle), "{reason} !~ {needle}"),
        other => panic!("expected Error::State containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn bad_saved_states_are_refused_and_change_nothing() {
    let n = 10;
    let mut a = AdagradOptimizer::<f32>::new(hyper(), n).unwrap();
    let mut p = vec![1.0f32; n];
    a.step(&mut p, Gradient::Dense(&[0.5; 10])).unwrap();
    let saved = a.save_state();

    let mut b = AdagradOptimizer::<f32>::new(Adagrad::default(), n).unwrap();
    let before = b.save_state();
    let mut v = saved.clone();
    v[8] = 9; // version
    expect_state_err(b.load_state(&v), "format version 9");
    expect_state_err(b.load_state(&saved[..saved.len() - 1]), "ends at byte");
    let mut long = saved.clone();
    long.push(0);
    expect_state_err(b.load_state(&long), "past the end");
    expect_state_err(b.load_state(b"not a state at all"), "magic");
    let mut c = AdagradOptimizer::<f64>::new(Adagrad::default(), n).unwrap();
    expect_state_err(c.load_state(&saved), "parameter type is f32, expected f64");
    let mut d = AdagradOptimizer::<f32>::new(Adagrad::default(), n + 1).unwrap();
    expect_state_err(d.load_state(&saved), "10 entries, this optimizer 11");
    let mut e = RowwiseOptimizer::<f32>::new(RowwiseAdagrad::default(), n, 1).unwrap();
    expect_state_err(e.load_state(&saved), "saved by Adagrad");
    assert_eq!(
        b.save_state(),
        before,
        "a refused load changed the optimizer"
    );
}

#[test]
fn failed_step_changes_nothing() {
    let (rows, cols) = (5, 4);
    let mut opt = AdagradOptimizer::<f32>::new(hyper(), rows * cols).unwrap();
    let mut p: Vec<f32> = data(rows * cols, 3);
    opt.step(&mut p, Gradient::Dense(&data::<f32>(rows * cols, 4)))
        .unwrap();
    let (p0, s0) = (p.clone(), opt.save_state());
    let bad = Gradient::Rows {
        rows,
        cols,
        indices: &[1, 5],
        values: &[1.0; 8],
    };
    assert!(matches!(opt.step(&mut p, bad), Err(Error::Index { .. })));
    assert!(opt.step(&mut p, Gradient::Dense(&[1.0; 3])).is_err());
    assert!(opt.set_learning_rate(f64::NAN).is_err());
    assert_eq!(bits(&p), bits(&p0));
    assert_eq!(opt.save_state(), s0);
}

#[test]
fn rowwise_forms_match_and_others_are_refused() {
    let (rows, cols) = (9, 5);
    let h = RowwiseAdagrad {
        lr: 0.1,
        weight_decay: 0.01,
        ..Default::default()
    };
    let mut opt = RowwiseOptimizer::<f32>::new(h, rows, cols).unwrap();
    let mut p1: Vec<f32> = data(rows * cols, 1);
    let mut p2 = p1.clone();
    let mut st = h.state::<f32>(rows);
    let g: Vec<f32> = data(rows * cols, 2);
    opt.step(&mut p1, Gradient::Dense(&g)).unwrap();
    h.step_dense(&mut p2, rows, cols, &g, &mut st).unwrap();
    let (idx, vals) = ([3usize, 0, 3], data::<f32>(3 * cols, 3));
    opt.step(
        &mut p1,
        Gradient::Rows {
            rows,
            cols,
            indices: &idx,
            values: &vals,
        },
    )
    .unwrap();
    h.step_rows(&mut p2, rows, cols, &idx, &vals, &mut st)
        .unwrap();
    assert_eq!(bits(&p1), bits(&p2));
    assert_eq!(bits(&opt.state().sum), bits(&st.sum));
    let r = opt.step(
        &mut p1,
        Gradient::SparseVec(&sprs::CsVec::new(rows * cols, vec![1], vec![1.0])),
    );
    assert!(matches!(
        r,
        Err(Error::Unsupported {
            what: "Gradient::SparseVec",
            ..
        })
    ));
    let wrong = Gradient::Rows {
        rows: rows + 1,
        cols,
        indices: &idx,
        values: &vals,
    };
    assert!(matches!(
        opt.step(&mut p1, wrong),
        Err(Error::Length {
            arg: "grad.rows",
            ..
        })
    ));
    assert_eq!(bits(&p1), bits(&p2));
    // round trip
    let saved = opt.save_state();
    let mut other = RowwiseOptimizer::<f32>::new(RowwiseAdagrad::default(), rows, cols).unwrap();
    other.load_state(&saved).unwrap();
    assert_eq!(other.save_state(), saved);
    assert_eq!(other.config(), opt.config());
}

#[test]
fn clip_grad_norm_matches_f64_and_refuses_non_finite() {
    let mut a: Vec<f32> = data(1000, 1);
    let mut b: Vec<f32> = data(333, 2);
    let m = Mask::random(333, 0.5, 9);
    for (i, v) in b.iter_mut().enumerate() {
        if !m.get(i) {
            *v = f32::NAN;
        }
    }
    let want: f64 = a.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>()
        + (0..333)
            .filter(|&i| m.get(i))
            .map(|i| (b[i] as f64).powi(2))
            .sum::<f64>();
    let want = want.sqrt();
    let (a0, b0) = (a.clone(), b.clone());
    // above the total: nothing changes
    let t = clip_grad_norm(
        &mut [
            ClipGrad {
                values: &mut a,
                mask: None,
            },
            ClipGrad {
                values: &mut b,
                mask: Some(&m),
            },
        ],
        want * 2.0,
    )
    .unwrap();
    assert!((t - want).abs() <= 1e-5 * want, "{t} vs {want}");
    assert_eq!(bits(&a), bits(&a0));
    assert_eq!(bits(&b), bits(&b0));
    // below: scaled to max_norm
    let t2 = clip_grad_norm(
        &mut [
            ClipGrad {
                values: &mut a,
                mask: None,
            },
            ClipGrad {
                values: &mut b,
                mask: Some(&m),
            },
        ],
        1.0,
    )
    .unwrap();
    assert_eq!(t2, t);
    let after: f64 = a.iter().map(|&v| (v as f64).powi(2)).sum::<f64>()
        + (0..333)
            .filter(|&i| m.get(i))
            .map(|i| (b[i] as f64).powi(2))
            .sum::<f64>();
    assert!((after.sqrt() - 1.0).abs() < 1e-4, "{}", after.sqrt());
    assert!((0..333).filter(|&i| !m.get(i)).all(|i| b[i].is_nan()));
    // a kept NaN: Err, nothing scaled
    let mut c = vec![1.0f64, f64::NAN, 3.0];
    let c0 = c.clone();
    assert!(clip_grad_norm(
        &mut [ClipGrad {
            values: &mut c,
            mask: None
        }],
        1.0
    )
    .is_err());
    assert_eq!(bits(&c), bits(&c0));
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(clip_grad_norm(
            &mut [ClipGrad {
                values: &mut c,
                mask: None
            }],
            bad
        )
        .is_err());
    }
    let short = Mask::ones(2);
    assert!(clip_grad_norm(
        &mut [ClipGrad {
            values: &mut c,
            mask: Some(&short)
        }],
        1.0
    )
    .is_err());
}
