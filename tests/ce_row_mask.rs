//! `loss::cross_entropy_masked{,_into}`: a row mask (padding) beside
//! `ignore_index`. Checked against the reference oracle on the kept rows
//! alone (compacted), on random shapes with junk (NaN logits, out-of-range
//! targets) in the dropped rows, every reduction, class weights and label
//! smoothing; dropped rows get a zero gradient; bad lengths are errors that
//! leave `grad` untouched.

#![allow(clippy::needless_range_loop)] // rows are indexed in several arrays at once

use maskops::loss::{self, CrossEntropy, Reduction};
use maskops::{reference, Error, Mask};

/// xorshift64*
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

fn check<T: maskops::Float>(rng: &mut Rng, tol: f64) {
    let rows = rng.below(70);
    let classes = 1 + rng.below(40);
    let keep_p = [0.0, 0.5, 0.9, 1.0][rng.below(4)];
    let keep: Vec<bool> = (0..rows).map(|_| rng.unit() < keep_p).collect();
    let row_mask = Mask::from_bools(&keep);
    let mut logits: Vec<T> = (0..rows * classes)
        .map(|_| T::from_f64(rng.unit() * 8.0 - 4.0))
        .collect();
    let mut targets: Vec<i64> = (0..rows).map(|_| rng.below(classes) as i64).collect();
    for r in 0..rows {
        if !keep[r] {
            // junk a padded row may hold
            targets[r] = [12345, -7, classes as i64][rng.below(3)];
            logits[r * classes] = T::from_f64(f64::NAN);
        } else if rng.below(6) == 0 {
            targets[r] = -100; // ignore_index still works beside the mask
        }
    }
    let weight = (rng.below(2) == 0).then(|| {
        (0..classes)
            .map(|_| T::from_f64(0.25 + rng.unit()))
            .collect::<Vec<T>>()
    });
    let reduction = [Reduction::None, Reduction::Sum, Reduction::Mean][rng.below(3)];
    let opts = CrossEntropy {
        weight,
        label_smoothing: [0.0, 0.1][rng.below(2)],
        reduction,
        ..Default::default()
    };
    let got = loss::cross_entropy_masked(&logits, rows, classes, &targets, &row_mask, &opts)
        .expect("valid arguments");

    // oracle: the reference on the kept rows only
    let kept: Vec<usize> = (0..rows).filter(|&r| keep[r]).collect();
    let cl: Vec<T> = kept
        .iter()
        .flat_map(|&r| logits[r * classes..(r + 1) * classes].iter().copied())
        .collect();
    let ct: Vec<i64> = kept.iter().map(|&r| targets[r]).collect();
    let want = reference::loss::cross_entropy(&cl, kept.len(), classes, &ct, &opts).unwrap();
    match reduction {
        Reduction::None => {
            assert_eq!(got.value.len(), rows);
            let mut k = 0;
            for r in 0..rows {
                if keep[r] {
                    let (a, b) = (got.value[r].to_f64(), want.value[k].to_f64());
                    assert!(close(a, b, tol), "row {r}: {a} vs {b}");
                    k += 1;
                } else {
                    assert_eq!(got.value[r].to_f64(), 0.0, "dropped row {r}");
                }
            }
        }
        _ => {
            let (a, b) = (got.value[0].to_f64(), want.value[0].to_f64());
            assert!(close(a, b, tol), "{reduction:?}: {a} vs {b}");
        }
    }
    let mut k = 0;
    for r in 0..rows {
        let g = &got.grad[r * classes..(r + 1) * classes];
        if keep[r] {
            let w = &want.grad[k * classes..(k + 1) * classes];
            for (c, (a, b)) in g.iter().zip(w).enumerate() {
                assert!(
                    close(a.to_f64(), b.to_f64(), tol),
                    "grad[{r}][{c}]: {a:?} vs {b:?}"
                );
            }
            k += 1;
        } else {
            assert!(g.iter().all(|v| v.to_f64() == 0.0), "dropped row {r}");
        }
    }

    // the `_into` form: same bits, written into the caller's buffer
    let mut grad = vec![T::from_f64(9.0); rows * classes];
    let v = loss::cross_entropy_masked_into(
        &logits, rows, classes, &targets, &row_mask, &opts, &mut grad,
    )
    .unwrap();
    let bits = |x: &[T]| x.iter().map(|v| v.to_f64().to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&v), bits(&got.value));
    assert_eq!(bits(&grad), bits(&got.grad));
}

#[test]
fn masked_rows_are_ignored_rows_on_random_shapes() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..300 {
        check::<f32>(&mut rng, 2e-5);
        check::<f64>(&mut rng, 1e-12);
    }
}

#[test]
fn masked_equals_ignore_index_substitution_bit_for_bit() {
    // rows across several canonical blocks and the parallel threshold
    let (rows, classes) = (5000, 7);
    let mut rng = Rng(7);
    let logits: Vec<f32> = (0..rows * classes).map(|_| rng.unit() as f32).collect();
    let targets: Vec<i64> = (0..rows).map(|_| rng.below(classes) as i64).collect();
    let keep: Vec<bool> = (0..rows).map(|_| rng.below(3) != 0).collect();
    let m = Mask::from_bools(&keep);
    let sub: Vec<i64> = (0..rows)
        .map(|r| if keep[r] { targets[r] } else { -100 })
        .collect();
    for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
        let opts = CrossEntropy {
            reduction,
            label_smoothing: 0.05,
            ..Default::default()
        };
        let a = loss::cross_entropy_masked(&logits, rows, classes, &targets, &m, &opts).unwrap();
        let b = loss::cross_entropy(&logits, rows, classes, &sub, &opts).unwrap();
        assert_eq!(a.value, b.value);
        assert_eq!(a.grad, b.grad);
    }
}

#[test]
fn wrong_row_mask_length_is_an_error_and_changes_nothing() {
    let logits = [0.0f32; 6];
    let opts = CrossEntropy::default();
    let mut grad = vec![3.0f32; 6];
    let e = loss::cross_entropy_masked_into(
        &logits,
        3,
        2,
        &[0, 1, 0],
        &Mask::ones(4),
        &opts,
        &mut grad,
    )
    .unwrap_err();
    assert!(matches!(
        e,
        Error::Length {
            arg: "row_mask",
            expected: 3,
            actual: 4
        }
    ));
    assert_eq!(grad, vec![3.0; 6]);
    // a wrong `targets` length is reported as such, not as the mask's
    let e = loss::cross_entropy_masked(&logits, 3, 2, &[0, 1], &Mask::ones(3), &opts).unwrap_err();
    assert!(matches!(e, Error::Length { arg: "targets", .. }), "{e}");
}
