//! Masked elementwise ops at 2^24 f32 against the memory-bandwidth baseline
//! (one read + one write), and the serial/parallel crossover that sets
//! `backend::Threshold::Elementwise`.
//!
//! `cargo bench --bench elementwise` (all), `-- bandwidth` or `-- threshold`;
//! `cargo bench --bench elementwise -- --ratio [log2 n]` for interleaved
//! rounds against the baselines (robust to load drift on a shared machine).
//! Throughput is reported as bytes moved: 8 bytes per element (one f32 read,
//! one f32 written) for every row, so the rows compare directly.

use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use maskops::backend::{self, Isa, Threshold};
use maskops::{BinaryOp, Mask, MaskPolicy, MaskedArray, Operand, UnaryOp};

fn bandwidth(c: &mut Criterion) {
    let n = 1usize << 24;
    let src: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.001 + 1.0).collect();
    let mut dst = vec![0.0f32; n];
    let mut g = c.benchmark_group("bandwidth_2^24_f32");
    g.throughput(Throughput::Bytes(8 * n as u64));
    g.sample_size(20);
    g.bench_function("baseline/memcpy", |b| {
        b.iter(|| dst.copy_from_slice(black_box(&src)))
    });
    g.bench_function("baseline/dense_mul_scalar_inplace", |b| {
        let k = black_box(1.000_001f32);
        b.iter(|| {
            for x in dst.iter_mut() {
                *x *= k;
            }
        })
    });
    for density in [1.0, 0.9, 0.5] {
        let mask = Mask::random(n, 1.0 - density, 7);
        let mut arr = MaskedArray::new(src.clone(), mask.clone()).unwrap();
        let src_arr = MaskedArray::new(src.clone(), mask.clone()).unwrap();
        for isa in Isa::all_available() {
            g.bench_function(
                BenchmarkId::new(format!("mul_scalar_assign/{}", isa.name()), density),
                |b| {
                    b.iter(|| {
                        arr.map_assign_with(isa, UnaryOp::MulScalar(black_box(1.000_001f32)))
                            .unwrap()
                    })
                },
            );
            g.bench_function(
                BenchmarkId::new(format!("add_scalar_into/{}", isa.name()), density),
                |b| {
                    b.iter(|| {
                        black_box(&src_arr)
                            .binary_into_with(
                                isa,
                                BinaryOp::Add,
                                Operand::Scalar(1.0),
                                MaskPolicy::Match,
                                &mut dst,
                            )
                            .unwrap()
                    })
                },
            );
        }
    }
    g.finish();
}

fn threshold(c: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    threshold_op(
        c,
        &one,
        "threshold_mul_scalar_assign_f32",
        UnaryOp::MulScalar(1.0f32),
    );
    threshold_op(c, &one, "threshold_exp_assign_f32", UnaryOp::Exp);
}

fn threshold_op(c: &mut Criterion, one: &rayon::ThreadPool, name: &str, op: UnaryOp<f32>) {
    let mut g = c.benchmark_group(name);
    for log in [12usize, 14, 16, 17, 18, 19, 20, 22] {
        let n = 1usize << log;
        let mask = Mask::random(n, 0.5, 3);
        let x: Vec<f32> = (0..n).map(|i| (i % 100) as f32 * 0.01).collect();
        let mut x = MaskedArray::new(x, mask).unwrap();
        g.throughput(Throughput::Bytes(8 * n as u64));
        g.bench_function(BenchmarkId::new("serial", n), |b| {
            one.install(|| b.iter(|| x.map_assign(op).unwrap()))
        });
        g.bench_function(BenchmarkId::new("pool", n), |b| {
            // force the pool at every size to find the crossover
            backend::set_threshold(Threshold::Elementwise, 0);
            b.iter(|| x.map_assign(op).unwrap());
            backend::set_threshold(
                Threshold::Elementwise,
                Threshold::Elementwise.default_value(),
            );
        });
    }
    g.finish();
}

/// Interleaved rounds (`cargo bench --bench elementwise -- --ratio [log2 n]`):
/// each round times every variant once, so load drift on a shared machine
/// hits all of them alike; prints the median GiB/s (8 bytes per element)
/// and the ratio to the two one-read-one-write baselines.
fn ratio(log: usize) {
    use std::time::Instant;
    let n = 1usize << log;
    let src: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.001 + 1.0).collect();
    let mut dst = vec![0.0f32; n];
    let mut x = src.clone();
    let masks: Vec<(f64, Mask)> = [1.0, 0.9, 0.5]
        .into_iter()
        .map(|d| (d, Mask::random(n, 1.0 - d, 7)))
        .collect();
    // the masked operands: `x` in place, `src` into `dst`
    let mut xs: Vec<MaskedArray<f32>> = masks
        .iter()
        .map(|(_, m)| MaskedArray::new(src.clone(), m.clone()).unwrap())
        .collect();
    let srcs: Vec<MaskedArray<f32>> = masks
        .iter()
        .map(|(_, m)| MaskedArray::new(src.clone(), m.clone()).unwrap())
        .collect();
    let isa = backend::isa();
    let mut names: Vec<String> = vec!["memcpy".into(), "dense x *= k (in place)".into()];
    for (d, _) in &masks {
        names.push(format!("masked mul_scalar_assign d={d} [{}]", isa.name()));
    }
    for (d, _) in &masks {
        names.push(format!("masked add_scalar into dst d={d} [{}]", isa.name()));
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let k = black_box(1.000_001f32);
    for _round in 0..15 {
        let mut v = 0;
        let mut time = |f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            times[v].push(t.elapsed().as_secs_f64());
            v += 1;
        };
        time(&mut || dst.copy_from_slice(black_box(&src)));
        time(&mut || {
            for e in x.iter_mut() {
                *e *= k;
            }
        });
        for xa in xs.iter_mut() {
            time(&mut || xa.map_assign(UnaryOp::MulScalar(k)).unwrap());
        }
        for sa in &srcs {
            time(&mut || {
                sa.binary_into(
                    BinaryOp::Add,
                    Operand::Scalar(k),
                    MaskPolicy::Match,
                    &mut dst,
                )
                .unwrap()
            });
        }
    }
    let gib = |t: f64| 8.0 * n as f64 / t / (1u64 << 30) as f64;
    let med: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(|a, b| a.partial_cmp(b).unwrap());
            t[t.len() / 2]
        })
        .collect();
    println!(
        "n = 2^{log} f32, {} rayon threads, median of 15 interleaved rounds",
        rayon::current_num_threads()
    );
    for (name, t) in names.iter().zip(&med) {
        println!(
            "{name:45} {:7.2} GiB/s  {:6.2} ms  {:4.0}% of memcpy  {:4.0}% of dense in-place",
            gib(*t),
            t * 1e3,
            med[0] / t * 100.0,
            med[1] / t * 100.0
        );
    }
}

/// Row / column broadcasts at 2^22 f32 over matrices of different widths
/// (`cargo bench --bench elementwise -- --broadcast`): median ms of 9 runs.
fn broadcast() {
    use std::time::Instant;
    let n = 1usize << 22;
    let a: Vec<f32> = (0..n).map(|i| (i % 100) as f32).collect();
    let mask = Mask::random(n, 0.3, 5);
    let mut dst = vec![0.0f32; n];
    for cols in [2usize, 4, 8, 16, 64, 1024] {
        let rows = n / cols;
        let row = vec![1.5f32; cols];
        let col = vec![2.5f32; rows];
        let arr = MaskedArray::matrix(a.clone(), mask.clone(), rows, cols).unwrap();
        let mut med = |rhs: Operand<f32>| {
            let mut t: Vec<f64> = (0..9)
                .map(|_| {
                    let s = Instant::now();
                    arr.binary_into(BinaryOp::Add, rhs, MaskPolicy::Match, &mut dst)
                        .unwrap();
                    s.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            t.sort_by(|x, y| x.partial_cmp(y).unwrap());
            t[4]
        };
        let flat = med(Operand::Scalar(1.5));
        let r = med(Operand::Row(&row));
        let c = med(Operand::Col(&col));
        println!("{rows:>8} x {cols:<5} scalar {flat:6.2} ms  row {r:6.2} ms  col {c:6.2} ms");
    }
}

criterion_group!(benches, bandwidth, threshold);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(p) = args.iter().position(|a| a == "--ratio") {
        let log = args.get(p + 1).and_then(|s| s.parse().ok()).unwrap_or(24);
        ratio(log);
        return;
    }
    if args.iter().any(|a| a == "--broadcast") {
        broadcast();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
