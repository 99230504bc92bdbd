//! A seeded structured fuzzer of `optim::Optimizer`, `AdagradOptimizer`,
//! `RowwiseOptimizer` and `clip_grad_norm`: random shapes, gradient forms
//! (valid and not), hyper-parameters (0, negative, subnormal, huge, NaN,
//! inf), learning-rate changes, saved states that are corrupted, cut short
//! or grown. Invariants: no panic; a failed step or load changes nothing
//! (parameters and the saved state bit for bit); a successful step equals
//! the `Adagrad` / `RowwiseAdagrad` method it forwards to on an explicit
//! state; a saved state loads back bit for bit; clipping gives the f64
//! global norm and changes nothing when it fails.
//!
//! Reproduce: `MASKOPS_FUZZ_SEED=<seed> cargo test --test fuzz_optimizer`;
//! more cases: `MASKOPS_FUZZ_CASES=<n>` (default 300).

use maskops::optim::{
    clip_grad_norm, Adagrad, AdagradOptimizer, AdagradState, ClipGrad, Gradient, Optimizer,
    RowwiseAdagrad, RowwiseOptimizer,
};
use maskops::{Mask, MaskedView};
use std::panic::{catch_unwind, AssertUnwindSafe};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn val(&mut self) -> f32 {
        match self.below(20) {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => -0.0,
            _ => ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0,
        }
    }
    fn hyper(&mut self) -> f64 {
        match self.below(12) {
            0 => 0.0,
            1 => -1.0,
            2 => 1e-310,
            3 => 1e300,
            4 => f64::NAN,
            5 => f64::INFINITY,
            _ => (self.next() >> 11) as f64 / (1u64 << 53) as f64,
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn seed() -> u64 {
    std::env::var("MASKOPS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0F70)
}

fn cases() -> usize {
    std::env::var("MASKOPS_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

/// One random case; panics (with the case's seed in the message) on a
/// broken invariant.
fn case(r: &mut Rng) {
    let rows = r.below(12);
    let cols = r.below(9);
    let n = rows * cols;
    let h = Adagrad {
        lr: r.hyper(),
        lr_decay: if r.below(2) == 0 { 0.0 } else { r.hyper() },
        weight_decay: if r.below(2) == 0 { 0.0 } else { r.hyper() },
        initial_accumulator_value: if r.below(2) == 0 { 0.0 } else { r.hyper() },
        eps: if r.below(3) == 0 { r.hyper() } else { 1e-10 },
        maximize: r.below(2) == 0,
    };
    let opt = AdagradOptimizer::<f32>::new(h, n);
    assert_eq!(opt.is_ok(), h.validate().is_ok());
    let Ok(mut opt) = opt else { return };
    let mut param: Vec<f32> = (0..n).map(|_| r.val()).collect();
    let mut mirror = param.clone();
    let mut st: AdagradState<f32> = h.state(n);
    let mut hm = h;
    for _ in 0..4 {
        if r.below(5) == 0 {
            let lr = r.hyper();
            let ok = opt.set_learning_rate(lr).is_ok();
            assert_eq!(ok, lr.is_finite() && lr >= 0.0);
            if ok {
                hm.lr = lr;
            }
        }
        let glen = if r.below(6) == 0 { r.below(n + 2) } else { n };
        let g: Vec<f32> = (0..glen).map(|_| r.val()).collect();
        let m = Mask::random(glen, 0.5, r.next());
        let k = r.below(5);
        let idx: Vec<usize> = (0..k).map(|_| r.below(rows + 1)).collect();
        let cidx: Vec<usize> = (0..k).map(|_| r.below(cols + 1)).collect();
        let vals: Vec<f32> = (0..k * cols.max(1)).map(|_| r.val()).collect();
        let (p0, s0) = (param.clone(), opt.save_state());
        let (got, want) = match r.below(4) {
            0 => (
                opt.step(&mut param, Gradient::Dense(&g)),
                hm.step_dense(&mut mirror, &g, &mut st),
            ),
            1 => {
                let v = MaskedView::new(&g, &m).unwrap();
                (
                    opt.step(&mut param, Gradient::Masked(v)),
                    hm.step_masked(&mut mirror, &v, &mut st),
                )
            }
            2 => {
                let gr = Gradient::Coo {
                    rows,
                    cols,
                    row_inds: &idx,
                    col_inds: &cidx,
                    values: &vals[..k],
                };
                (
                    opt.step(&mut param, gr),
                    hm.step_coo(&mut mirror, rows, cols, &idx, &cidx, &vals[..k], &mut st),
                )
            }
            _ => {
                let v = &vals[..k * cols];
                let gr = Gradient::Rows {
                    rows,
                    cols,
                    indices: &idx,
                    values: v,
                };
                (
                    opt.step(&mut param, gr),
                    hm.step_rows(&mut mirror, rows, cols, &idx, v, &mut st),
                )
            }
        };
        assert_eq!(got.is_ok(), want.is_ok(), "{got:?} vs {want:?}");
        if got.is_err() {
            assert_eq!(bits(&param), bits(&p0), "failed step changed param");
            assert_eq!(opt.save_state(), s0, "failed step changed the state");
            mirror.copy_from_slice(&param);
        }
        assert_eq!(bits(&param), bits(&mirror));
        assert_eq!(bits(&opt.state().sum), bits(&st.sum));
        assert_eq!(opt.steps(), st.step);
    }
    // save / load, and damaged saves
    let saved = opt.save_state();
    let mut other = AdagradOptimizer::<f32>::new(Adagrad::default(), n).unwrap();
    other.load_state(&saved).unwrap();
    assert_eq!(other.save_state(), saved);
    let fresh = other.save_state();
    let mut bad = saved.clone();
    match r.below(3) {
        0 if !bad.is_empty() => {
            let i = r.below(bad.len());
            bad[i] ^= 1 << r.below(8);
        }
        1 => bad.truncate(r.below(saved.len())),
        _ => bad.extend((0..1 + r.below(9)).map(|_| r.next() as u8)),
    }
    if other.load_state(&bad).is_err() {
        assert_eq!(
            other.save_state(),
            fresh,
            "a refused load changed the optimizer"
        );
    }
    // rowwise: dense and rows match, others refused
    if let Ok(mut rw) = RowwiseOptimizer::<f32>::new(RowwiseAdagrad::default(), rows, cols) {
        let mut p = vec![0.5f32; n];
        let p0 = p.clone();
        let s0 = rw.save_state();
        let r2 = rw.step(
            &mut p,
            Gradient::SparseVec(&sprs::CsVec::new(n, vec![], vec![])),
        );
        assert!(r2.is_err());
        assert_eq!(bits(&p), bits(&p0));
        assert_eq!(rw.save_state(), s0);
    }
    // clipping
    let mut g1: Vec<f32> = (0..r.below(300)).map(|_| r.val()).collect();
    let m1 = Mask::random(g1.len(), 0.3, r.next());
    let mask_len_ok = r.below(8) != 0;
    let m1 = if mask_len_ok {
        m1
    } else {
        Mask::ones(g1.len() + 1)
    };
    let max_norm = if r.below(4) == 0 { r.hyper() } else { 1.0 };
    let g0 = g1.clone();
    let res = clip_grad_norm(
        &mut [ClipGrad {
            values: &mut g1,
            mask: Some(&m1),
        }],
        max_norm,
    );
    let want: f64 = if mask_len_ok {
        (0..g0.len())
            .filter(|&i| m1.get(i))
            .map(|i| (g0[i] as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    } else {
        f64::NAN
    };
    match res {
        Ok(t) => {
            assert!(mask_len_ok && max_norm.is_finite() && max_norm > 0.0);
            assert!(
                (t - want).abs() <= 1e-5 * want.max(1e-30) + 1e-30,
                "{t} vs {want}"
            );
            for i in 0..g0.len() {
                if !m1.get(i) {
                    assert_eq!(g1[i].to_bits(), g0[i].to_bits());
                }
            }
        }
        Err(_) => assert_eq!(bits(&g1), bits(&g0), "failed clip changed the gradient"),
    }
}

#[test]
fn fuzz_optimizer() {
    let s = seed();
    let n = cases();
    eprintln!("fuzz_optimizer: seed {s}, {n} cases (MASKOPS_FUZZ_SEED / MASKOPS_FUZZ_CASES)");
    for c in 0..n {
        let cs = s ^ (c as u64).wrapping_mul(0xA24B_AED4_963E_E407);
        let mut r = Rng(cs);
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| case(&mut r))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("fuzz_optimizer: case {c} (MASKOPS_FUZZ_SEED={s}) failed: {msg}");
        }
    }
}
