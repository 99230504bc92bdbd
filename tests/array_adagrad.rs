//! The MaskedTensor seed's masked Adagrad, written with MaskedArray ops,
//! equals `optim::Adagrad::step_masked` to the last bit.
//!
//! The seed writes the update as `param.add((g / std).to_tensor(0),
//! alpha=-clr)`, i.e. `p + (-clr) * (g / std)`; PyTorch's dense Adagrad (and
//! `step_masked`) uses `param.addcdiv_(g, std, value=-clr)`, i.e.
//! `p - (clr * g) / std`. The two orders can differ in the last bit, so the
//! ops below follow addcdiv's order — `g.mul_scalar(clr).div(&std)`
//! subtracted from `param` — and the result is bit-identical. The seed's
//! order is checked to stay within one ulp of it.

use maskops::optim::{Adagrad, AdagradElement};
use maskops::{BinaryOp, Float, Mask, MaskedArray, MaskedView};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Scratch buffers reused across steps (an allocation-free loop for a
/// fixed mask).
struct Scratch<T> {
    g: MaskedArray<T>,
    t: MaskedArray<T>,
}

impl<T: Float> Scratch<T> {
    fn new(mask: &Mask) -> Self {
        let z = vec![T::ZERO; mask.len()];
        Scratch {
            g: MaskedArray::new(z.clone(), mask.clone()).unwrap(),
            t: MaskedArray::new(z, mask.clone()).unwrap(),
        }
    }
}

/// One masked Adagrad step written with masked ops (the seed's code, in
/// PyTorch's addcdiv order).
fn step_with_ops<T: Float>(
    opt: &Adagrad,
    step: u64,
    param: &mut [T],
    sum: &mut [T],
    grad: &MaskedArray<T>,
    s: &mut Scratch<T>,
) {
    let clr = T::from_f64(opt.lr / (1.0 + (step - 1) as f64 * opt.lr_decay));
    let eps = T::from_f64(opt.eps);
    let Scratch { g, t } = s;
    g.copy_values_from(grad.values()).unwrap();
    if opt.maximize {
        g.neg_assign();
    }
    if opt.weight_decay != 0.0 {
        // g = g + weight_decay * param (on the specified entries)
        t.copy_values_from(param).unwrap();
        t.mul_scalar_assign(T::from_f64(opt.weight_decay));
        g.add_assign(&*t).unwrap();
    }
    // state_sum = state_sum + g.pow(2).to_tensor(0)
    t.copy_values_from(g.values()).unwrap();
    t.pow_assign(T::from_f64(2.0));
    t.update_dense(BinaryOp::Add, sum).unwrap();
    // std = masked_tensor(state_sum, g.mask()).sqrt().add(eps)
    t.copy_values_from(sum).unwrap();
    t.sqrt_assign();
    t.add_scalar_assign(eps);
    // param.addcdiv_(g, std, value=-clr)
    g.mul_scalar_assign(clr);
    g.div_assign(&*t).unwrap();
    g.update_dense(BinaryOp::Sub, param).unwrap();
}

fn bits<T: Float>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

fn check<T: Float + AdagradElement<State = T>>(seed: u64, opt: Adagrad, fixed_mask: bool) {
    let mut r = Rng(seed);
    for &(rows, cols) in &[(1usize, 1usize), (3, 5), (17, 33), (64, 65), (700, 1500)] {
        let n = rows * cols;
        let mut p_ops: Vec<T> = (0..n).map(|_| T::from_f64(r.unit() * 4.0 - 2.0)).collect();
        let mut p_opt = p_ops.clone();
        let mut st = opt.state::<T>(n);
        let mut sum_ops = st.sum.clone();
        let mut mask = Mask::random(n, 0.4, seed ^ n as u64);
        let mut scratch = Scratch::new(&mask);
        for step in 1..=4u64 {
            if !fixed_mask {
                mask = Mask::random(n, [0.0, 0.4, 1.0, 0.97][step as usize % 4], seed + step);
                scratch = Scratch::new(&mask);
            }
            let gv: Vec<T> = (0..n)
                .map(|i| {
                    if mask.get(i) {
                        T::from_f64(r.unit() * 2.0 - 1.0)
                    } else {
                        T::from_f64(f64::NAN)
                    }
                })
                .collect();
            let grad = MaskedArray::matrix(gv.clone(), mask.clone(), rows, cols).unwrap();
            step_with_ops(&opt, step, &mut p_ops, &mut sum_ops, &grad, &mut scratch);
            opt.step_masked(&mut p_opt, &MaskedView::new(&gv, &mask).unwrap(), &mut st)
                .unwrap();
            assert_eq!(st.step, step);
            assert_eq!(
                bits(&p_ops),
                bits(&p_opt),
                "{} {rows}x{cols} step {step} param",
                T::NAME
            );
            assert_eq!(
                bits(&sum_ops),
                bits(&st.sum),
                "{} {rows}x{cols} step {step} sum",
                T::NAME
            );
        }
        assert!(p_ops.iter().all(|x| x.to_f64().is_finite()));
    }
}

#[test]
fn ops_equal_step_masked_f32() {
    check::<f32>(
        1,
        Adagrad {
            lr: 0.1,
            ..Default::default()
        },
        false,
    );
    check::<f32>(
        2,
        Adagrad {
            lr: 0.05,
            lr_decay: 0.01,
            weight_decay: 0.1,
            initial_accumulator_value: 0.5,
            eps: 1e-8,
            maximize: true,
        },
        true,
    );
}

#[test]
fn ops_equal_step_masked_f64() {
    check::<f64>(
        3,
        Adagrad {
            lr: 0.1,
            ..Default::default()
        },
        true,
    );
    check::<f64>(
        4,
        Adagrad {
            lr: 0.3,
            lr_decay: 0.5,
            weight_decay: 0.01,
            initial_accumulator_value: 0.1,
            eps: 1e-6,
            maximize: false,
        },
        false,
    );
}

/// The seed's exact example: param = arange(8).reshape(2, 4), a COO gradient
/// with values 3, 4, 5 at (0,2), (1,0), (1,2), state_sum = 0.5, clr = 0.1,
/// eps = 1e-10; the masked-op version equals step_masked and step_sparse.
#[test]
fn seed_example() {
    let opt = Adagrad {
        lr: 0.1,
        initial_accumulator_value: 0.5,
        eps: 1e-10,
        ..Default::default()
    };
    let mask = Mask::from_bools(&[false, false, true, false, true, false, true, false]);
    let gv = vec![0.0f32, 0.0, 3.0, 0.0, 4.0, 0.0, 5.0, 0.0];
    let grad = MaskedArray::matrix(gv.clone(), mask.clone(), 2, 4).unwrap();

    let mut p_ops: Vec<f32> = (0..8).map(|i| i as f32).collect();
    let mut sum_ops = vec![0.5f32; 8];
    step_with_ops(
        &opt,
        1,
        &mut p_ops,
        &mut sum_ops,
        &grad,
        &mut Scratch::new(&mask),
    );

    let mut p_masked: Vec<f32> = (0..8).map(|i| i as f32).collect();
    let mut st = opt.state::<f32>(8);
    opt.step_masked(
        &mut p_masked,
        &MaskedView::new(&gv, &mask).unwrap(),
        &mut st,
    )
    .unwrap();
    assert_eq!(p_ops, p_masked);
    assert_eq!(sum_ops, st.sum);

    let mut p_sparse: Vec<f32> = (0..8).map(|i| i as f32).collect();
    let mut st2 = opt.state::<f32>(8);
    let coo =
        sprs::TriMat::from_triplets((2, 4), vec![0, 1, 1], vec![2, 0, 2], vec![3.0f32, 4.0, 5.0]);
    opt.step_sparse(&mut p_sparse, 2, 4, &coo, &mut st2)
        .unwrap();
    assert_eq!(p_ops, p_sparse);
    assert_eq!(sum_ops, st2.sum);
    assert_eq!(sum_ops, vec![0.5, 0.5, 9.5, 0.5, 16.5, 0.5, 25.5, 0.5]);

    // The seed's own order, p + (-clr) * (g / std), is within one ulp.
    let mut p_seed: Vec<f32> = (0..8).map(|i| i as f32).collect();
    let mut sum_seed = vec![0.5f32; 8];
    grad.pow(2.0)
        .update_dense(BinaryOp::Add, &mut sum_seed)
        .unwrap();
    let std = MaskedArray::matrix(sum_seed.clone(), grad.mask().clone(), 2, 4)
        .unwrap()
        .sqrt()
        .add_scalar(1e-10);
    grad.div(&std)
        .unwrap()
        .mul_scalar(-0.1)
        .update_dense(BinaryOp::Add, &mut p_seed)
        .unwrap();
    for (a, b) in p_seed.iter().zip(&p_ops) {
        assert!(
            (a.to_bits() as i64 - b.to_bits() as i64).abs() <= 1,
            "{a} vs {b}"
        );
    }
}
