//! Report rows of the loss family (issue 4): fused masked losses with their
//! gradients, cross-entropy with ignore_index, scFormer's ECS and Pearson.

use crate::bw::{data, fmt_t, pool, row, table_header, zeros, Base, Rng};
use crate::{header, Ctx};
use maskops::loss::{self, CrossEntropy, Reduction};
use maskops::{reference, Mask};

/// Loss rows measured at 2^24 (the reference at 2^20: it is scalar f64 and
/// would take seconds per call at 2^24).
const N: usize = 1 << 24;
const NREF: usize = 1 << 20;

pub fn run(ctx: &Ctx) {
    let p1 = pool(1);
    let p2 = pool(2);

    header("loss: fused forward + backward (value + gradient), 2^24 f32, density 0.9, one thread");
    let base = p1.install(|| Base::measure(ctx));
    base.print();
    let x = data(N, 3, -2.0, 2.0);
    let y = data(N, 4, -2.0, 2.0);
    // BCE targets are probabilities
    let yb = data(N, 5, 0.0, 1.0);
    let m = Mask::random(N, 0.1, 7);
    let mr = Mask::random(NREF, 0.1, 7);
    let mut grad = zeros(N);
    // input + target read (8 B), gradient written (4 B), mask read (1/8 B)
    let bpe = 12.125;
    println!("bytes per element: input + target read, gradient written, mask read = 12.125 B; Reduction::Mean, gradient into a caller's buffer (*_into)");
    table_header("triad");
    let (xr, yr, ybr) = (&x[..NREF], &y[..NREF], &yb[..NREF]);
    for name in ["mse", "l1", "huber", "smooth_l1", "bce_with_logits"] {
        let mean = Reduction::Mean;
        let t = p1.install(|| {
            ctx.time(|| {
                match name {
                    "mse" => loss::mse_into(&x, &y, &m, mean, &mut grad),
                    "l1" => loss::l1_into(&x, &y, &m, mean, &mut grad),
                    "huber" => loss::huber_into(&x, &y, &m, 1.0, mean, &mut grad),
                    "smooth_l1" => loss::smooth_l1_into(&x, &y, &m, 0.5, mean, &mut grad),
                    _ => loss::bce_with_logits_into(&x, &yb, &m, None, mean, &mut grad),
                }
                .unwrap()
            })
        });
        let tref = p1.install(|| {
            ctx.time(|| {
                use reference::loss as r;
                match name {
                    "mse" => r::mse(xr, yr, &mr, mean),
                    "l1" => r::l1(xr, yr, &mr, mean),
                    "huber" => r::huber(xr, yr, &mr, 1.0, mean),
                    "smooth_l1" => r::smooth_l1(xr, yr, &mr, 0.5, mean),
                    _ => r::bce_with_logits(xr, ybr, &mr, None, mean),
                }
                .unwrap()
            })
        });
        let vs_ref = (tref / NREF as f64) / (t / N as f64);
        row(
            name,
            "2^24",
            t,
            N as f64,
            bpe,
            base.triad,
            base.read,
            Some(vs_ref),
        );
    }
    let t1 = p1.install(|| {
        ctx.time_with(true, || {
            loss::mse_into(&x, &y, &m, Reduction::Mean, &mut grad).unwrap()
        })
    });
    let t2 = p2.install(|| {
        ctx.time_with(true, || {
            loss::mse_into(&x, &y, &m, Reduction::Mean, &mut grad).unwrap()
        })
    });
    println!(
        "mse, wall clock: 1 thread {} ({:.1} GB/s), 2 threads {} ({:.1} GB/s), speedup {:.2}x",
        fmt_t(t1),
        N as f64 * bpe / t1 / 1e9,
        fmt_t(t2),
        N as f64 * bpe / t2 / 1e9,
        t1 / t2
    );
    println!("(\"vs triad\"/\"vs read\": GB/s over the baseline's GB/s, same run; \"vs ref\": reference time per element at 2^20 over this time per element at 2^24)");
    drop((x, y, yb, grad));

    header("loss: cross-entropy forward + backward, 8192 x 1000 f32 logits, 15% of targets kept (rest ignore_index)");
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
    let kept = targets.iter().filter(|&&t| t != -100).count();
    let mut gl = zeros(rows * classes);
    let opts = CrossEntropy::default();
    // kept rows' logits read once, the whole gradient written once
    let bytes = ((kept + rows) * classes * 4) as f64;
    let elems = (rows * classes) as f64;
    let bpe = bytes / elems;
    println!(
        "{kept} of {rows} rows kept; bytes = kept rows' logits read + whole gradient written = {:.1} MB ({bpe:.3} B per logit)",
        bytes / 1e6
    );
    let ce =
        |gl: &mut [f32]| loss::cross_entropy_into(&xl, rows, classes, &targets, &opts, gl).unwrap();
    let tref = p1.install(|| {
        ctx.time(|| reference::loss::cross_entropy(&xl, rows, classes, &targets, &opts).unwrap())
    });
    table_header("triad");
    let t = p1.install(|| ctx.time(|| ce(&mut gl)));
    row(
        "cross_entropy 1t",
        "8192x1000",
        t,
        elems,
        bpe,
        base.triad,
        base.read,
        Some(tref / t),
    );
    let tw1 = p1.install(|| ctx.time_with(true, || ce(&mut gl)));
    row(
        "cross_entropy 1t (wall)",
        "8192x1000",
        tw1,
        elems,
        bpe,
        base.triad,
        base.read,
        Some(tref / tw1),
    );
    let tw2 = p2.install(|| ctx.time_with(true, || ce(&mut gl)));
    row(
        "cross_entropy 2t (wall)",
        "8192x1000",
        tw2,
        elems,
        bpe,
        base.triad,
        base.read,
        Some(tref / tw2),
    );
    println!(
        "two threads vs one (wall clock): {:.2}x; baselines are one thread; \"vs ref\": one-thread reference (on-CPU time) over this time",
        tw1 / tw2
    );
    drop((xl, gl));

    header("loss: scFormer ECS (forward + backward) and masked Pearson (forward), one thread");
    let (cells, dim) = (256usize, 128usize);
    let e = data(cells * dim, 13, -1.0, 1.0);
    let t = p1.install(|| ctx.time(|| loss::ecs(&e, cells, dim, 0.85).unwrap()));
    let tref = p1.install(|| ctx.time(|| reference::loss::ecs(&e, cells, dim, 0.85).unwrap()));
    println!(
        "ecs      256 x 128 f32 (threshold 0.85):   {:>10}  reference {:>10}  speedup {:.1}x",
        fmt_t(t),
        fmt_t(tref),
        tref / t
    );
    let (r, c) = (1024usize, 1000usize);
    let px = data(r * c, 14, -2.0, 2.0);
    let py = data(r * c, 15, -2.0, 2.0);
    let pm = Mask::random(r * c, 0.3, 3);
    let t = p1.install(|| ctx.time(|| loss::pearson(&px, &py, &pm, r, c).unwrap()));
    let tref = p1.install(|| ctx.time(|| reference::loss::pearson(&px, &py, &pm, r, c).unwrap()));
    println!(
        "pearson 1024 x 1000 f32 (density 0.7):    {:>10}  reference {:>10}  speedup {:.1}x  ({:.1} GB/s counting x + y + mask read)",
        fmt_t(t),
        fmt_t(tref),
        tref / t,
        (r * c) as f64 * 8.125 / t / 1e9
    );
}
