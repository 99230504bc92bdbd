//! Small public additions: `Loss::scalar`, and the `sprs` / `half`
//! re-exports being the crate's own versions (a gradient built through
//! `maskops::sprs` is accepted by the optimizer, `maskops::half` types by the
//! reductions).

use maskops::loss::{self, CrossEntropy, Reduction};
use maskops::optim::Adagrad;
use maskops::{Mask, MaskedView};

#[test]
fn scalar_is_the_single_value_of_a_reduced_loss() {
    let x = [1.0f32, 2.0, f32::NAN, 4.0];
    let y = [0.0f32, 0.0, 0.0, 1.0];
    let m = Mask::from_bools(&[true, true, false, true]);
    for r in [Reduction::Sum, Reduction::Mean] {
        let l = loss::mse(&x, &y, &m, r).unwrap();
        assert_eq!(l.value.len(), 1);
        assert_eq!(l.scalar(), Some(l.value[0]));
    }
    assert_eq!(
        loss::mse(&x, &y, &m, Reduction::Sum).unwrap().scalar(),
        Some(14.0)
    );
    // a mean over nothing kept is 0 (and still one value)
    let none = Mask::zeros(4);
    assert_eq!(
        loss::l1(&x, &y, &none, Reduction::Mean).unwrap().scalar(),
        Some(0.0)
    );
    // Reduction::None: one value per element, no scalar ...
    let l = loss::mse(&x, &y, &m, Reduction::None).unwrap();
    assert_eq!(l.value.len(), 4);
    assert_eq!(l.scalar(), None);
    // ... except over exactly one element (or one cross-entropy row)
    let l = loss::mse(&[3.0f64], &[1.0], &Mask::ones(1), Reduction::None).unwrap();
    assert_eq!(l.scalar(), Some(4.0));
    let opts = CrossEntropy::<f32> {
        reduction: Reduction::None,
        ..Default::default()
    };
    let ce = loss::cross_entropy(&[0.0f32, 0.0], 1, 2, &[1], &opts).unwrap();
    assert_eq!(ce.scalar(), Some(ce.value[0]));
    let ce = loss::cross_entropy(&[0.0f32; 4], 2, 2, &[1, 0], &opts).unwrap();
    assert_eq!(ce.scalar(), None);
    // the empty input under Reduction::None has no value
    let l = loss::mse::<f32>(&[], &[], &Mask::ones(0), Reduction::None).unwrap();
    assert_eq!(l.scalar(), None);
}

#[test]
fn reexported_sprs_and_half_are_the_crates_own() {
    let opt = Adagrad {
        lr: 0.1,
        ..Default::default()
    };
    let mut p = vec![0.0f32; 4];
    let mut st = opt.state(4);
    let g = maskops::sprs::TriMat::from_triplets((2, 2), vec![1], vec![0], vec![2.0f32]);
    opt.step_sparse(&mut p, 2, 2, &g, &mut st).unwrap();
    assert_eq!(st.sum[2], 4.0);

    let x: Vec<maskops::half::f16> = [1.0f32, 2.5, 4.0]
        .iter()
        .map(|&v| maskops::half::f16::from_f32(v))
        .collect();
    let m = Mask::ones(3);
    let s = MaskedView::new(&x, &m).unwrap().sum().unwrap();
    assert_eq!(s.to_f32(), 7.5);
}
