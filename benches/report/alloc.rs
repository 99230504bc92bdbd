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

/// A zeroed buffer of `n` floats as maskops' allocating forms get theirs:
/// fresh from the allocator (a new mapping at this size), advised
/// `MADV_HUGEPAGE`.
fn fresh_huge(n: usize) -> Vec<f32> {
    let layout = std::alloc::Layout::array::<f32>(n).unwrap();
    // SAFETY: a non-zero size; checked for null below.
    let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut f32;
    assert!(!p.is_null());
    let start = (p as usize).next_multiple_of(4096);
    let end = (p as usize + n * 4) & !4095;
    // SAFETY: a page-aligned range inside the allocation; advice only.
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    // SAFETY: allocated with the layout of `[f32; n]`, all zero bits.
    unsafe { Vec::from_raw_parts(p, n, n) }
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
        // the floor: what a fresh 64 MiB output costs a plain loop
        let mut out = zeros(N);
        pair(
            ctx,
            "floor: y = 2x, plain loop",
            "2^24",
            || {
                let mut v = fresh_huge(N);
                for (o, s) in v.iter_mut().zip(&x) {
                    *o = s * 2.0;
                }
                std::hint::black_box(&v);
            },
            || {
                for (o, s) in out.iter_mut().zip(&x) {
                    *o = s * 2.0;
                }
                std::hint::black_box(&out);
            },
        );
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
    println!("(ratio: allocating time over _into time; the allocating form returns a fresh output, whose pages the OS faults in and zeroes, and frees it; the floor row is the same cost under a plain loop: the OS zeroing 64 MiB, which only a reused buffer avoids)");
}
