//! Report rows for allocating forms against their `*_into` forms: what a
//! fresh output buffer costs (its page faults) on top of the kernel, one
//! thread, wall clock (page faults and unmapping are kernel time), each
//! pair measured back to back in the same run.

use crate::bw::{data, fmt_t, pool, zeros, Rng};
use crate::{header, Ctx};
use maskops::array::{BinaryOp, MaskPolicy, MaskedArray};
use maskops::loss::{self, CrossEntropy, Reduction};
use maskops::{softmax, Mask, MaskedView};

const N: usize = 1 << 24;

fn pair(ctx: &Ctx, name: &str, size: &str, mut alloc: impl FnMut(), mut into: impl FnMut()) {
    let ti = ctx.time_with(true, &mut into);
    let ta = ctx.time_with(true, &mut alloc);
    println!(
        "{name:<34} {size:>10} {:>10} {:>10} {:>8.2}x",
        fmt_t(ti),
        fmt_t(ta),
        ta / ti
    );
}

pub fn run(ctx: &Ctx) {
    let p1 = pool(1);
    header("allocating forms vs *_into (a caller's buffer), 1 thread, wall clock");
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>9}",
        "op", "size", "_into", "allocating", "ratio"
    );
    p1.install(|| {
        let x = data(N, 3, -2.0, 2.0);
        let y = data(N, 4, -2.0, 2.0);
        let m = Mask::random(N, 0.1, 7);
        let mut grad = zeros(N);
        pair(
            ctx,
            "mse fwd+bwd (loss::mse)",
            "2^24",
            || drop(loss::mse(&x, &y, &m, Reduction::Mean).unwrap()),
            || drop(loss::mse_into(&x, &y, &m, Reduction::Mean, &mut grad).unwrap()),
        );

        let v = MaskedView::matrix(&x, &m, 4096, 4096).unwrap();
        let mut out = zeros(N);
        pair(
            ctx,
            "softmax dim 1 (softmax::softmax)",
            "4096x4096",
            || drop(softmax::softmax(&v, 1).unwrap()),
            || softmax::softmax_into(&v, 1, &mut out).unwrap(),
        );

        let a = MaskedArray::new(x.clone(), m.clone()).unwrap();
        let b = MaskedArray::new(y.clone(), m.clone()).unwrap();
        pair(
            ctx,
            "MaskedArray add (a.add(&b))",
            "2^24",
            || drop(a.add(&b).unwrap()),
            || {
                a.binary_into(BinaryOp::Add, &b, MaskPolicy::Match, &mut out)
                    .unwrap()
            },
        );
        drop((a, b, out, grad, v));

        let (rows, classes) = (8192usize, 1000usize);
        let xl = data(rows * classes, 6, -4.0, 4.0);
        let mut rng = Rng(12);
        let targets: Vec<i64> = (0..rows)
            .map(|_| {
                if rng.below(100) < 15 {
                    rng.below(classes) as i64
                } else {
                    -100
                }
            })
            .collect();
        let opts = CrossEntropy::default();
        let mut gl = zeros(rows * classes);
        pair(
            ctx,
            "cross_entropy fwd+bwd, 15% kept",
            "8192x1000",
            || drop(loss::cross_entropy(&xl, rows, classes, &targets, &opts).unwrap()),
            || {
                drop(
                    loss::cross_entropy_into(&xl, rows, classes, &targets, &opts, &mut gl).unwrap(),
                )
            },
        );
    });
    println!("(ratio: allocating time over _into time; the allocating form returns a fresh output, whose pages the kernel faults in and zeroes, and frees it)");
}
