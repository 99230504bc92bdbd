//! Saved inputs of every defect the fuzzer (`tests/fuzz.rs`) or an outside
//! fuzz run has found, replayed on every ISA on every `cargo test`.
//!
//! Each test names the defect, the input that showed it and what is
//! expected now. New findings go here with the seed and case index that
//! produced them (`MASKOPS_FUZZ_SEED=<seed> MASKOPS_FUZZ_CASE=<i> cargo test
//! --release --test fuzz -- --nocapture` replays one case).

use maskops::backend::{self, Isa};
use maskops::loss::{self, Loss, Reduction};
use maskops::reference::loss as rl;
use maskops::{Error, Float, Mask};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn bits<T: Float>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// `got` equals `want` (the reference, computed in `f64` and rounded once to
/// `T`) within `ulps` units in the last place of `T`, element by element,
/// NaN against NaN only.
fn assert_close<T: Float>(got: &[T], want: &[T], ulps: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let eps = if T::NAME == "f64" {
        f64::EPSILON
    } else {
        f32::EPSILON as f64
    };
    let denorm = if T::NAME == "f64" {
        f64::from_bits(1)
    } else {
        f32::from_bits(1) as f64
    };
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.to_f64(), w.to_f64());
        assert!(!g.is_nan(), "{what}[{i}]: NaN, reference {w}");
        if w.is_infinite() {
            assert_eq!(g, w, "{what}[{i}]");
            continue;
        }
        assert!(
            (g - w).abs() <= ulps * eps * w.abs() + 2.0 * denorm,
            "{what}[{i}]: {g} vs reference {w}"
        );
    }
}

/// Issue 16, defect 1: `smooth_l1` with a tiny (subnormal) `beta` and
/// exactly equal kept pairs gave NaN on every ISA: the kernels multiplied
/// `0 * (0.5 / beta)` with `0.5 / beta` overflowed to inf. Reproduced with
/// 257 `f32` elements, every fifth pair equal, `beta = 1e-39`,
/// `Reduction::Sum` (the reference gives 384.63); `f64` the same with
/// `beta = 5e-324`. Expected: the reference's value and gradient.
#[test]
fn smooth_l1_tiny_beta_equal_pairs() {
    fn run<T: Float>(beta: f64) {
        let n = 257;
        let x: Vec<T> = (0..n)
            .map(|i| T::from_f64(((i * 37) % 101) as f64 / 7.0 - 5.0))
            .collect();
        let y: Vec<T> = (0..n)
            .map(|i| {
                if i % 5 == 0 {
                    x[i]
                } else {
                    T::from_f64(((i * 53) % 89) as f64 / 11.0 - 3.0)
                }
            })
            .collect();
        // a few kept differences below beta too (subnormal), and a masked-out NaN
        let mut x = x;
        let tiny = T::from_f64(beta * 0.375);
        x[3] = tiny;
        let mut y = y;
        y[3] = T::ZERO;
        x[4] = T::from_f64(f64::NAN);
        let m = Mask::from_fn(n, |i| i != 4);
        for red in [Reduction::None, Reduction::Sum, Reduction::Mean] {
            let want = rl::smooth_l1(&x, &y, &m, beta, red).unwrap();
            for isa in Isa::all_available() {
                let got: Loss<T> =
                    backend::with_isa(isa, || loss::smooth_l1(&x, &y, &m, beta, red)).unwrap();
                let what = format!("{} beta={beta:e} {red:?} {isa:?}", T::NAME);
                // value: one canonical sum of 256 terms
                assert_close(&got.value, &want.value, 300.0, &format!("{what} value"));
                assert_close(&got.grad, &want.grad, 2.0, &format!("{what} grad"));
                let mut g = vec![T::ZERO; n];
                let v =
                    backend::with_isa(isa, || loss::smooth_l1_into(&x, &y, &m, beta, red, &mut g))
                        .unwrap();
                assert_eq!(bits(&v), bits(&got.value), "{what}: _into value");
                assert_eq!(bits(&g), bits(&got.grad), "{what}: _into grad");
            }
        }
    }
    run::<f32>(1e-39);
    run::<f32>(f32::from_bits(1) as f64); // the smallest f32 subnormal
    run::<f32>(1e-50); // below f32's range: rounds to 0 in f32
    run::<f32>(2e-39); // 0.5 / beta finite, 1 / beta not
    run::<f64>(5e-324);
    run::<f64>(1e-310);
}

/// The same family, found by `tests/fuzz.rs`: a huge `beta` (`beta^2`
/// overflows `T`) made the quadratic branch `(d * d) * (0.5 / beta)`
/// overflow to inf on finite data where the reference,
/// `0.5 * d * d / beta` in `f64`, is finite (`f32`, `beta = 1e30`,
/// `d = 1e20` gives 5e9); and `beta` above `f32::MAX` gave
/// `inf - inf = NaN` for an infinite difference where the reference gives
/// inf.
#[test]
fn smooth_l1_huge_beta() {
    fn run<T: Float>(beta: f64, d: f64) {
        let x: Vec<T> = [d, -d, 1.0, 0.0, 3.0].map(T::from_f64).to_vec();
        let y: Vec<T> = [0.0, 0.0, 1.0, 0.5, -2.0].map(T::from_f64).to_vec();
        let m = Mask::ones(x.len());
        for red in [Reduction::None, Reduction::Sum, Reduction::Mean] {
            let want = rl::smooth_l1(&x, &y, &m, beta, red).unwrap();
            for isa in Isa::all_available() {
                let got: Loss<T> =
                    backend::with_isa(isa, || loss::smooth_l1(&x, &y, &m, beta, red)).unwrap();
                let what = format!("{} beta={beta:e} d={d:e} {red:?} {isa:?}", T::NAME);
                assert_close(&got.value, &want.value, 8.0, &format!("{what} value"));
                assert_close(&got.grad, &want.grad, 2.0, &format!("{what} grad"));
            }
        }
    }
    run::<f32>(1e30, 1e20);
    run::<f32>(1e39, 3e38);
    run::<f32>(1e300, 1e38);
    run::<f64>(1e300, 1e150);
    // an infinite kept difference with beta above f32::MAX: inf, not NaN
    let x = [f32::INFINITY, 1.0];
    let y = [0.0f32, 0.0];
    let m = Mask::ones(2);
    let want = rl::smooth_l1(&x, &y, &m, 1e300, Reduction::None).unwrap();
    assert_eq!(want.value[0], f32::INFINITY);
    for isa in Isa::all_available() {
        let got =
            backend::with_isa(isa, || loss::smooth_l1(&x, &y, &m, 1e300, Reduction::None)).unwrap();
        assert_eq!(bits(&got.value), bits(&want.value), "{isa:?}");
        assert_eq!(bits(&got.grad), bits(&want.grad), "{isa:?}");
    }
}

/// Issue 16, defect 2: `ecs` with `rows * rows` overflowing (`rows = 2^63`,
/// `cols = 0`, empty data: `rows * cols` is valid) panicked with "attempt to
/// multiply with overflow" in a debug build and "capacity overflow" in
/// release. Expected: `Err` naming `rows`, in the fast path and the
/// reference alike. Also `rows` whose `rows x rows` matrix cannot be
/// addressed (`rows^2` elements of 8 bytes above `isize::MAX`).
#[test]
fn ecs_rows_squared_overflow() {
    for rows in [1usize << 63, usize::MAX, 1 << 32, (1 << 31) + 1] {
        for isa in Isa::all_available() {
            let got = catch_unwind(AssertUnwindSafe(|| {
                backend::with_isa(isa, || loss::ecs(&[] as &[f32], rows, 0, 0.5))
            }))
            .unwrap_or_else(|_| panic!("ecs rows={rows} {isa:?} panicked"));
            match got {
                Err(Error::Param { name: "rows", .. }) => {}
                other => panic!("ecs rows={rows} {isa:?}: {other:?}"),
            }
            let got64 = backend::with_isa(isa, || loss::ecs(&[] as &[f64], rows, 0, 0.5));
            assert!(matches!(got64, Err(Error::Param { name: "rows", .. })));
        }
        let r = catch_unwind(|| rl::ecs(&[] as &[f32], rows, 0, 0.5))
            .unwrap_or_else(|_| panic!("reference ecs rows={rows} panicked"));
        assert!(matches!(r, Err(Error::Param { name: "rows", .. })), "{r:?}");
    }
    // a small valid one still works
    let l = loss::ecs(&[1.0f32, 0.0, 0.0, 1.0], 2, 2, 0.5).unwrap();
    assert!(l.value[0].is_finite());
}

/// Found by `tests/fuzz.rs` (seed 1, case 379 at the time): the reference
/// `huber` / `smooth_l1` checked the hyper-parameter before the lengths,
/// the public functions the lengths first, so two bad arguments gave two
/// different errors. Expected: the same error (the public order).
#[test]
fn reference_validates_in_the_public_order() {
    let (x, y) = ([1.0f32, 2.0], [0.0f32; 3]);
    let m = Mask::ones(2);
    for isa in Isa::all_available() {
        let fast = backend::with_isa(isa, || loss::huber(&x, &y, &m, 0.0, Reduction::Sum));
        let want = rl::huber(&x, &y, &m, 0.0, Reduction::Sum);
        assert!(
            matches!(want, Err(Error::Length { arg: "target", .. })),
            "{want:?}"
        );
        assert_eq!(fast, want, "{isa:?}");
        let fast = backend::with_isa(isa, || {
            loss::smooth_l1(&x, &y, &m, f64::NAN, Reduction::Sum)
        });
        let want = rl::smooth_l1(&x, &y, &m, f64::NAN, Reduction::Sum);
        assert!(
            matches!(want, Err(Error::Length { arg: "target", .. })),
            "{want:?}"
        );
        assert_eq!(format!("{fast:?}"), format!("{want:?}"), "{isa:?}");
    }
}

/// Found by `tests/fuzz.rs` (its huge-shapes family): the reference
/// cross-entropy summed the class weights over `0..classes` before looking
/// at any row, so a valid empty input of `0 x 2^63` logits ran for ages
/// (the fast path returns at once). Expected: an immediate empty result.
#[test]
fn reference_cross_entropy_no_rows_huge_classes() {
    let opts = loss::CrossEntropy::<f32>::default();
    let t = std::time::Instant::now();
    let want = rl::cross_entropy(&[] as &[f32], 0, 1 << 63, &[], &opts).unwrap();
    assert!(t.elapsed().as_secs_f64() < 1.0, "took {:?}", t.elapsed());
    assert_eq!(want.value, vec![0.0]);
    assert!(want.grad.is_empty());
    for isa in Isa::all_available() {
        let fast = backend::with_isa(isa, || {
            loss::cross_entropy(&[] as &[f32], 0, 1 << 63, &[], &opts)
        });
        assert_eq!(fast.unwrap(), want, "{isa:?}");
    }
}

/// Found by `tests/fuzz.rs` (its huge-shapes family): the reference
/// row-wise Adagrad with a dense gradient collected `0..rows` before
/// checking the state's length, so `rows = 2^63`, `cols = 0` (a valid empty
/// table) with a short state panicked with "capacity overflow" where the
/// fast path returns `Err(Length)`. Expected: the same `Err`, nothing changed.
#[test]
fn reference_rowwise_dense_huge_rows() {
    use maskops::optim::{AdagradState, RowwiseAdagrad};
    let opt = RowwiseAdagrad::default();
    let mut p: Vec<f32> = vec![];
    let mut s = AdagradState::<f32> {
        sum: vec![],
        step: 5,
    };
    let want = catch_unwind(AssertUnwindSafe(|| {
        maskops::reference::adagrad::rowwise_step_dense(&opt, &mut p, 1 << 63, 0, &[], &mut s)
    }))
    .expect("the reference panicked");
    assert!(
        matches!(
            want,
            Err(Error::Length {
                arg: "state.sum",
                ..
            })
        ),
        "{want:?}"
    );
    assert_eq!(s.step, 5);
    let fast = opt.step_dense(&mut p, 1 << 63, 0, &[], &mut s);
    assert_eq!(fast, want);
    assert_eq!(s.step, 5);
}

/// Found by `tests/fuzz.rs` (seed 1, case 37 at the time): a norm order
/// that rounds to 0 or to infinity in the `f32` accumulator (`f32`, `f16`,
/// `bf16` data) changed the norm: `p = 1e-300` became `p = 0` in `f32`, so
/// a kept zero counted `0^0 = 1` (norm 1 where the reference gives 0), and
/// `p = 1e300` became `inf` with `1 / p = 0`, so every norm was `s^0 = 1`
/// (where the reference gives 0, 1 or inf). Expected: the reference's value.
#[test]
fn norm_orders_outside_f32() {
    fn run<T: maskops::Element>() {
        let rows: [&[f64]; 6] = [
            &[0.0],
            &[0.0, 0.0, 0.0],
            &[0.5],
            &[0.0, 3.0],
            &[0.5, 0.25, 2.0],
            &[1.0, 0.5],
        ];
        for p in [1e-300, -1e-300, 1e300, -1e300, 1e-45, 1e39] {
            for r in rows {
                let x: Vec<T> = r.iter().map(|&v| T::from_f64(v)).collect();
                let m = Mask::ones(x.len());
                let v = maskops::MaskedView::new(&x, &m).unwrap();
                let want = maskops::reference::reduce::norm(&v, p).unwrap().to_f64();
                for isa in Isa::all_available() {
                    let got = backend::with_isa(isa, || v.norm(p)).unwrap().to_f64();
                    let ok = (got.is_nan() && want.is_nan())
                        || got == want
                        || (got - want).abs() <= 1e-6 * want.abs();
                    assert!(
                        ok,
                        "{} p={p:e} {r:?} {isa:?}: {got} vs reference {want}",
                        T::NAME
                    );
                    let d = backend::with_isa(isa, || v.norm_dim(0, p)).unwrap();
                    assert_eq!(d.get(0).unwrap().to_f64().to_bits(), got.to_bits());
                }
            }
        }
    }
    run::<f32>();
    run::<half::f16>();
    run::<half::bf16>();
    run::<f64>();
}

/// Found by `tests/fuzz.rs` (seed 2, case 2141 and seed 3, case 568 at the
/// time): Huber with a `delta` that rounds to 0 (`2.2e-308`) or to infinity
/// (`1e39`) in `f32` gave NaN for a kept infinite difference
/// (`(inf - 0) * 0`, `(inf - inf) * inf`) where the reference gives inf.
/// Expected: the reference's value and gradient (the same family as
/// `smooth_l1_tiny_beta_equal_pairs`).
#[test]
fn huber_delta_outside_f32() {
    let x = [f32::INFINITY, 1.0, -3.0, f32::NEG_INFINITY, 0.0];
    let y = [0.0f32, 0.5, 1e30, 2.0, 0.0];
    let m = Mask::ones(x.len());
    for delta in [2.2250738585072014e-308, 1e-50, 1e39, 1e300] {
        for red in [Reduction::None, Reduction::Sum, Reduction::Mean] {
            let want = rl::huber(&x, &y, &m, delta, red).unwrap();
            for isa in Isa::all_available() {
                let got = backend::with_isa(isa, || loss::huber(&x, &y, &m, delta, red)).unwrap();
                let what = format!("delta={delta:e} {red:?} {isa:?}");
                assert_close(&got.value, &want.value, 8.0, &format!("{what} value"));
                assert_close(&got.grad, &want.grad, 2.0, &format!("{what} grad"));
            }
        }
    }
}
