//! Calls one op of every maskops family, so that its build shows what a
//! caller's crate compiles. `run.sh` times it.

use maskops::loss::{self, CrossEntropy, Reduction};
use maskops::optim::{Adagrad, RowwiseAdagrad};
use maskops::{Mask, MaskedArray, MaskedView};

fn main() {
    let (rows, cols) = (8usize, 13usize);
    let n = rows * cols;
    let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32) / 17.0 - 2.0).collect();
    let y: Vec<f32> = (0..n).map(|i| ((i * 53 % 97) as f32) / 23.0 - 1.5).collect();
    let m = Mask::random(n, 0.3, 7);
    let v = MaskedView::matrix(&x, &m, rows, cols).unwrap();
    let mut acc = 0.0f64;

    // reductions: whole, per dim, softmax
    acc += v.sum().unwrap_or(0.0) as f64;
    acc += v.amax_dim(0).unwrap().values.iter().sum::<f32>() as f64;
    acc += v.var_dim(1, 1).unwrap().values.iter().sum::<f32>() as f64;
    let sm = v.softmax(1).unwrap();
    acc += sm.values.iter().sum::<f32>() as f64;
    let g = maskops::softmax::softmax_backward(&MaskedView::matrix(&sm.values, &sm.mask, rows, cols).unwrap(), &y, 1).unwrap();
    acc += g.values.iter().sum::<f32>() as f64;

    // every loss
    acc += loss::mse(&x, &y, &m, Reduction::Mean).unwrap().value[0] as f64;
    acc += loss::l1(&x, &y, &m, Reduction::Sum).unwrap().value[0] as f64;
    acc += loss::huber(&x, &y, &m, 1.0, Reduction::Mean).unwrap().value[0] as f64;
    acc += loss::smooth_l1(&x, &y, &m, 0.5, Reduction::Mean).unwrap().value[0] as f64;
    let t01: Vec<f32> = y.iter().map(|v| (*v > 0.0) as u8 as f32).collect();
    acc += loss::bce_with_logits(&x, &t01, &m, None, Reduction::Mean).unwrap().value[0] as f64;
    let labels: Vec<i64> = (0..rows as i64).map(|r| if r % 3 == 0 { -100 } else { r % cols as i64 }).collect();
    acc += loss::cross_entropy(&x, rows, cols, &labels, &CrossEntropy::default()).unwrap().value[0] as f64;
    acc += loss::ecs(&x, rows, cols, 0.5).unwrap().value[0] as f64;
    acc += loss::pearson(&x, &y, &m, rows, cols).unwrap().values.iter().map(|v| *v as f64).sum::<f64>();

    // masked arithmetic
    let a = MaskedArray::matrix(x.clone(), m.clone(), rows, cols).unwrap();
    let b = a.mul_scalar(2.0).add(&a).unwrap();
    acc += b.view().sum().unwrap_or(0.0) as f64;

    // every Adagrad form
    let opt = Adagrad::default();
    let mut p = x.clone();
    let mut st = opt.state::<f32>(n);
    opt.step_dense(&mut p, &y, &mut st).unwrap();
    opt.step_masked(&mut p, &MaskedView::new(&y, &m).unwrap(), &mut st).unwrap();
    let mut tri = sprs::TriMat::new((rows, cols));
    tri.add_triplet(1, 2, 0.5f32);
    tri.add_triplet(1, 2, 0.25f32);
    tri.add_triplet(5, 0, -1.0f32);
    opt.step_sparse(&mut p, rows, cols, &tri, &mut st).unwrap();
    let cv = sprs::CsVec::new(n, vec![3, 9], vec![1.0f32, -2.0]);
    opt.step_sparse_vec(&mut p, &cv, &mut st).unwrap();
    opt.step_rows(&mut p, rows, cols, &[2, 6, 2], &y[..3 * cols], &mut st).unwrap();
    opt.step_coo(&mut p, rows, cols, &[0, 4], &[1, 1], &[0.5, 0.5], &mut st).unwrap();
    let rw = RowwiseAdagrad::default();
    let mut rst = rw.state::<f32>(rows);
    rw.step_rows(&mut p, rows, cols, &[1, 7], &y[..2 * cols], &mut rst).unwrap();
    acc += p.iter().map(|v| *v as f64).sum::<f64>();

    println!("checksum {acc:.6}");
}
