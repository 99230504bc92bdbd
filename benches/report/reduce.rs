//! Report rows of the reduce family: masked reductions and softmax (issue 3).

use crate::shim::reduce::{
    arg, reduce, reduce_dim, softmax, softmax_backward, softmax_into, ArgReduction, Reduction,
};
use crate::{header, unmasked_read, Ctx};
use half::{bf16, f16};
use maskops::{Element, Mask, MaskedView};
use rayon::prelude::*;

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

/// Bytes per masked element: 4 B of f32 + 1/8 B of mask.
const BPE: f64 = 4.0 + 0.125;

/// The reference (oracle) implementation of a reduction.
fn reference(v: &MaskedView<'_, f32>, name: &str, op: Option<Reduction>) -> Option<f32> {
    use maskops::reference::reduce as r;
    match (name, op) {
        ("argmax", _) => r::argmax(v).map(|i| i as f32),
        (_, Some(Reduction::Sum)) => r::sum(v),
        (_, Some(Reduction::Mean)) => r::mean(v),
        (_, Some(Reduction::Amin)) => r::amin(v),
        (_, Some(Reduction::Amax)) => r::amax(v),
        (_, Some(Reduction::Prod)) => r::prod(v),
        (_, Some(Reduction::Var { correction })) => r::var(v, correction),
        (_, Some(Reduction::Norm { p })) => r::norm(v, p),
        (_, Some(Reduction::LogSumExp)) => r::logsumexp(v),
        _ => None,
    }
}

pub fn run(ctx: &Ctx) {
    let p1 = pool(1);
    let p2 = pool(2);

    header("reduce: whole-array masked reductions, f32, one thread");
    println!(
        "{:<10} {:>9} {:>5} {:>10} {:>8} {:>7} {:>8} {:>9}",
        "op", "N", "dens", "time", "elem/ns", "GB/s", "vs read", "vs ref"
    );
    let ops: [(&str, Option<Reduction>); 10] = [
        ("sum", Some(Reduction::Sum)),
        ("mean", Some(Reduction::Mean)),
        ("amin", Some(Reduction::Amin)),
        ("amax", Some(Reduction::Amax)),
        ("prod", Some(Reduction::Prod)),
        ("var", Some(Reduction::Var { correction: 1 })),
        ("norm2", Some(Reduction::Norm { p: 2.0 })),
        ("logsumexp", Some(Reduction::LogSumExp)),
        ("argmax", None),
        ("read", None),
    ];
    for log2n in [16u32, 24] {
        let n = 1usize << log2n;
        let x = data(n, 7);
        let read = p1.install(|| ctx.read_time(&x));
        println!(
            "{:<10} {:>9} {:>5} {:>8.1}us {:>8.2} {:>7.1} {:>8} {:>9}",
            "(unmasked read)",
            format!("2^{log2n}"),
            "-",
            read * 1e6,
            n as f64 / read / 1e9,
            n as f64 * 4.0 / read / 1e9,
            "1.00",
            "-"
        );
        for dens in [0.5, 0.9] {
            let m = Mask::random(n, 1.0 - dens, 11);
            let v = MaskedView::new(&x, &m).unwrap();
            for (name, op) in ops.iter() {
                let t = match (name, op) {
                    (_, Some(op)) => p1.install(|| ctx.time(|| reduce(&v, *op))),
                    (&"argmax", None) => p1.install(|| ctx.time(|| arg(&v, ArgReduction::Argmax))),
                    _ => continue,
                };
                let tref = p1.install(|| ctx.time(|| reference(&v, name, *op)));
                // masked reads move 4 B of data + 1/8 B of mask per element;
                // "vs read" compares bytes/s with the unmasked read's 4 B/element
                let gbs = n as f64 * BPE / t / 1e9;
                let read_gbs = n as f64 * 4.0 / read / 1e9;
                println!(
                    "{:<10} {:>9} {:>5} {:>8.1}us {:>8.2} {:>7.1} {:>8.2} {:>8.1}x",
                    name,
                    format!("2^{log2n}"),
                    dens,
                    t * 1e6,
                    n as f64 / t / 1e9,
                    gbs,
                    gbs / read_gbs,
                    tref / t
                );
            }
        }
    }
    println!("(\"vs read\": GB/s over the unmasked read's GB/s; \"vs ref\": speedup over maskops::reference)");

    header("reduce: per-dim vs whole array, 4096 x 4096 f32, density 0.9, one thread");
    let (r, c) = (4096usize, 4096usize);
    let x = data(r * c, 3);
    let m = Mask::random(r * c, 0.1, 5);
    let v = MaskedView::matrix(&x, &m, r, c).unwrap();
    for (name, op) in [
        ("sum", Reduction::Sum),
        ("amax", Reduction::Amax),
        ("var", Reduction::Var { correction: 1 }),
    ] {
        let whole = p1.install(|| ctx.time(|| reduce(&v, op)));
        let d0 = p1.install(|| ctx.time(|| reduce_dim(&v, 0, op).unwrap()));
        let d1 = p1.install(|| ctx.time(|| reduce_dim(&v, 1, op).unwrap()));
        println!(
            "{name:<5} whole {:>7.2} ms   dim0 {:>7.2} ms ({:.2}x whole)   dim1 {:>7.2} ms ({:.2}x whole)",
            whole * 1e3,
            d0 * 1e3,
            d0 / whole,
            d1 * 1e3,
            d1 / whole
        );
    }
    drop(x);

    header("reduce: masked softmax, 32768 x 512 f32, key padding mask, one thread");
    let (r, c) = (32768usize, 512usize);
    let x = data(r * c, 9);
    let lens: Vec<usize> = (0..r).map(|i| 1 + (i * 7919) % c).collect();
    let m = Mask::padding(&lens, c).unwrap();
    let v = MaskedView::matrix(&x, &m, r, c).unwrap();
    let read = p1.install(|| ctx.read_time(&x));
    let read_gbs = (r * c) as f64 * 4.0 / read / 1e9;
    println!("unmasked read: {:.1} GB/s", read_gbs);
    let y = softmax(&v, 1, false).unwrap();
    let yv = MaskedView::matrix(&y.values, &y.mask, r, c).unwrap();
    let g = data(r * c, 13);
    let mut out = vec![0.0f32; r * c];
    for (name, bytes) in [
        ("softmax_into", 8.125),
        ("log_sm_into", 8.125),
        ("softmax", 8.125),
        ("softmax bwd", 12.125),
    ] {
        let t = p1.install(|| {
            ctx.time(|| match name {
                "softmax_into" => softmax_into(&v, 1, false, &mut out).unwrap(),
                "log_sm_into" => softmax_into(&v, 1, true, &mut out).unwrap(),
                "softmax" => drop(softmax(&v, 1, false).unwrap()),
                _ => drop(softmax_backward(&yv, &g, 1, false).unwrap()),
            })
        });
        let gbs = (r * c) as f64 * bytes / t / 1e9;
        println!(
            "{name:<12} {:>7.2} ms  {:>6.2} elem/ns  {:>6.1} GB/s (reads + writes)  {:.2} of read bandwidth",
            t * 1e3,
            (r * c) as f64 / t / 1e9,
            gbs,
            gbs / read_gbs
        );
    }
    drop((x, y, g));

    header("reduce: f16 / bf16 vs f32 (elements per ns, one thread, density 0.9)");
    for log2n in [16u32, 24] {
        let n = 1usize << log2n;
        let x = data(n, 21);
        let m = Mask::random(n, 0.1, 4);
        let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        for (name, op) in [
            ("sum", Reduction::Sum),
            ("amax", Reduction::Amax),
            ("logsumexp", Reduction::LogSumExp),
        ] {
            let t32 = p1.install(|| ctx.time(|| reduce(&MaskedView::new(&x, &m).unwrap(), op)));
            let t16 = p1.install(|| ctx.time(|| reduce(&MaskedView::new(&xh, &m).unwrap(), op)));
            let tb = p1.install(|| ctx.time(|| reduce(&MaskedView::new(&xb, &m).unwrap(), op)));
            let r = |t: f64| n as f64 / t / 1e9;
            println!(
                "{name:<10} 2^{log2n}: f32 {:>6.2}  f16 {:>6.2} ({:.2}x f32)  bf16 {:>6.2} ({:.2}x f32)",
                r(t32),
                r(t16),
                t32 / t16,
                r(tb),
                t32 / tb
            );
        }
    }

    // the half types run the f32 kernels on widened pieces (src/cpu/reduce/widen.rs)
    header("reduce: f16 / bf16 vs f32 along a dimension and softmax (4096 x 4096, one thread, density 0.9)");
    {
        let (r, c) = (4096usize, 4096usize);
        let x = data(r * c, 23);
        let m = Mask::random(r * c, 0.1, 5);
        let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        fn t<T: Element>(ctx: &Ctx, x: &[T], m: &Mask, r: usize, c: usize, what: &str) -> f64 {
            let v = MaskedView::matrix(x, m, r, c).unwrap();
            match what {
                "sum dim 0" => ctx.time(|| reduce_dim(&v, 0, Reduction::Sum).unwrap()),
                "sum dim 1" => ctx.time(|| reduce_dim(&v, 1, Reduction::Sum).unwrap()),
                _ => ctx.time(|| softmax(&v, 1, false).unwrap()),
            }
        }
        for what in ["sum dim 0", "sum dim 1", "softmax"] {
            let t32 = p1.install(|| t(ctx, &x, &m, r, c, what));
            let t16 = p1.install(|| t(ctx, &xh, &m, r, c, what));
            let tb = p1.install(|| t(ctx, &xb, &m, r, c, what));
            let e = |t: f64| (r * c) as f64 / t / 1e9;
            println!(
                "{what:<10}: f32 {:>6.2}  f16 {:>6.2} ({:.2}x f32)  bf16 {:>6.2} ({:.2}x f32)",
                e(t32),
                e(t16),
                t32 / t16,
                e(tb),
                t32 / tb
            );
        }
    }

    header("reduce: one vs two threads, N = 2^24 f32, density 0.9 (wall clock)");
    let n = 1usize << 24;
    let x = data(n, 17);
    let m = Mask::random(n, 0.1, 8);
    let v = MaskedView::new(&x, &m).unwrap();
    let r1 = p1.install(|| ctx.read_time(&x));
    let r2 = p2.install(|| ctx.time(|| x.par_chunks(1 << 20).map(unmasked_read).sum::<f32>()));
    println!(
        "unmasked read: 1 thread {:.1} GB/s, 2 threads {:.1} GB/s ({:.2}x)",
        n as f64 * 4.0 / r1 / 1e9,
        n as f64 * 4.0 / r2 / 1e9,
        r1 / r2
    );
    for (name, op) in [
        ("sum", Reduction::Sum),
        ("amax", Reduction::Amax),
        ("logsumexp", Reduction::LogSumExp),
    ] {
        let t1 = p1.install(|| ctx.time_with(true, || reduce(&v, op)));
        let t2 = p2.install(|| ctx.time_with(true, || reduce(&v, op)));
        println!(
            "{name:<10} 1 thread {:>6.2} ms ({:>5.1} GB/s)  2 threads {:>6.2} ms ({:>5.1} GB/s)  speedup {:.2}x",
            t1 * 1e3,
            n as f64 * BPE / t1 / 1e9,
            t2 * 1e3,
            n as f64 * BPE / t2 / 1e9,
            t1 / t2
        );
    }
    // where does splitting over two threads start to pay? (PAR_MIN_LEN)
    println!("parallel threshold scan (sum, density 0.9, forced split vs one thread, wall clock):");
    for log2n in 13u32..=20 {
        let n = 1usize << log2n;
        let x = data(n, 19);
        let m = Mask::random(n, 0.1, 2);
        let v = MaskedView::new(&x, &m).unwrap();
        crate::shim::reduce::set_par_min_len(1);
        let t2 = p2.install(|| ctx.time_with(true, || reduce(&v, Reduction::Sum)));
        crate::shim::reduce::set_par_min_len(crate::shim::reduce::PAR_MIN_LEN);
        let t1 = p1.install(|| ctx.time_with(true, || reduce(&v, Reduction::Sum)));
        println!(
            "  N = 2^{log2n:<2}  1 thread {:>8.1} us  2 threads {:>8.1} us  ({:.2}x)",
            t1 * 1e6,
            t2 * 1e6,
            t1 / t2
        );
    }
    println!(
        "  (the kernels split at N >= {} = PAR_MIN_LEN)",
        crate::shim::reduce::PAR_MIN_LEN
    );
    let _ = <f32 as Element>::NAME;
}
