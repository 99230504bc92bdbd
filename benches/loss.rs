//! Criterion benches of the fused losses (forward + backward), one thread
//! unless the name says `t2`, against a STREAM-like bandwidth baseline and
//! the reference.
//!
//! Targets (issue 4): masked MSE / L1 / Huber on 2^24 f32 at >= 70% of the
//! bandwidth counting input + target + mask read and gradient written
//! (12.125 bytes per element); cross-entropy on 8192 x 1000 f32 logits with
//! 15% of the rows kept (the rest `ignore_index`) at >= 50% of the
//! bandwidth counting the kept rows' logits read once and the whole
//! gradient written once. Criterion's throughput (bytes) is set to those
//! counts, so its GiB/s is directly comparable with `bandwidth/triad`
//! (two arrays read, one written: 12 bytes per element).
//!
//! Run: `cargo bench --bench loss` (or with a filter, e.g. `-- mse`). It
//! ends with a summary table of the targets: minimum and median of 31 runs
//! of the 2^24 losses and of 101 runs of cross-entropy, each run
//! interleaved with a run of the triad so that the percentage compares the
//! two under the same load (the development machine is shared);
//! `cargo bench --bench loss -- summary` prints the table alone.

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
#[path = "../tests/shim/mod.rs"]
mod shim;
use maskops::backend::Isa;
use maskops::loss::{CrossEntropy, Reduction};
use maskops::{reference, Mask};
use shim::loss as fast;

const N: usize = 1 << 24;

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

fn pool(t: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(t)
        .build()
        .unwrap()
}

fn bandwidth(c: &mut Criterion) {
    let a = data(N, 1);
    let b = data(N, 2);
    let mut out = vec![0.0f32; N];
    let mut g = c.benchmark_group("bandwidth");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Bytes((N * 12) as u64));
    g.bench_function("triad_2r1w_2^24", |bch| {
        bch.iter(|| {
            for ((o, x), y) in out.iter_mut().zip(&a).zip(&b) {
                *o = *x + 0.5 * *y;
            }
            black_box(&out);
        })
    });
    g.finish();
}

fn elementwise(c: &mut Criterion) {
    let x = data(N, 3);
    let y = data(N, 4);
    let m = Mask::random(N, 0.5, 7);
    let mut grad = vec![0.0f32; N];
    let one = pool(1);
    let two = pool(2);
    let mut g = c.benchmark_group("loss_2^24_f32");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Bytes((N * 12 + N / 8) as u64));
    for isa in Isa::all_available() {
        let name = isa.name();
        g.bench_function(BenchmarkId::new("mse", name), |b| {
            b.iter(|| {
                one.install(|| fast::mse_into_with(isa, &x, &y, &m, Reduction::Mean, &mut grad))
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("l1", name), |b| {
            b.iter(|| {
                one.install(|| fast::l1_into_with(isa, &x, &y, &m, Reduction::Mean, &mut grad))
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("huber", name), |b| {
            b.iter(|| {
                one.install(|| {
                    fast::huber_into_with(isa, &x, &y, &m, 1.0, Reduction::Mean, &mut grad)
                })
                .unwrap()
            })
        });
    }
    let best = maskops::backend::isa();
    g.bench_function(BenchmarkId::new("mse_t2", best.name()), |b| {
        b.iter(|| {
            two.install(|| fast::mse_into_with(best, &x, &y, &m, Reduction::Mean, &mut grad))
                .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("mse_alloc", best.name()), |b| {
        b.iter(|| {
            one.install(|| fast::mse_with(best, &x, &y, &m, Reduction::Mean))
                .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("smooth_l1", best.name()), |b| {
        b.iter(|| {
            one.install(|| {
                fast::smooth_l1_into_with(best, &x, &y, &m, 0.5, Reduction::Mean, &mut grad)
            })
            .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("bce", best.name()), |b| {
        b.iter(|| {
            one.install(|| {
                fast::bce_with_logits_into_with(best, &x, &y, &m, None, Reduction::Mean, &mut grad)
            })
            .unwrap()
        })
    });
    g.finish();
    // the reference on a 2^20 slice, for scale
    let n = 1 << 20;
    let mut g = c.benchmark_group("loss_2^20_f32_reference");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Bytes((n * 12 + n / 8) as u64));
    let ms = Mask::random(n, 0.5, 7);
    g.bench_function("mse_reference", |b| {
        b.iter(|| reference::loss::mse(&x[..n], &y[..n], &ms, Reduction::Mean).unwrap())
    });
    g.finish();
}

fn cross_entropy(c: &mut Criterion) {
    let (rows, classes) = (8192usize, 1000usize);
    let x = data(rows * classes, 5);
    // 15% of the rows kept (MLM), the rest ignore_index
    let mut s = 11u64;
    let t: Vec<i64> = (0..rows)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if (s >> 33) % 100 < 15 {
                ((s >> 40) % classes as u64) as i64
            } else {
                -100
            }
        })
        .collect();
    let kept = t.iter().filter(|&&v| v != -100).count();
    let mut grad = vec![0.0f32; rows * classes];
    let opts = CrossEntropy::default();
    let one = pool(1);
    let two = pool(2);
    let mut g = c.benchmark_group("cross_entropy_8192x1000_f32_15pct");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Bytes(((kept + rows) * classes * 4) as u64));
    for isa in Isa::all_available() {
        g.bench_function(BenchmarkId::new("ce", isa.name()), |b| {
            b.iter(|| {
                one.install(|| {
                    fast::cross_entropy_into_with(isa, &x, rows, classes, &t, &opts, &mut grad)
                })
                .unwrap()
            })
        });
    }
    let best = maskops::backend::isa();
    g.bench_function(BenchmarkId::new("ce_t2", best.name()), |b| {
        b.iter(|| {
            two.install(|| {
                fast::cross_entropy_into_with(best, &x, rows, classes, &t, &opts, &mut grad)
            })
            .unwrap()
        })
    });
    let smooth = CrossEntropy {
        label_smoothing: 0.1,
        weight: Some(data(classes, 9).iter().map(|v| v.abs() + 0.5).collect()),
        ..Default::default()
    };
    g.bench_function(BenchmarkId::new("ce_weight_smooth", best.name()), |b| {
        b.iter(|| {
            one.install(|| {
                fast::cross_entropy_into_with(best, &x, rows, classes, &t, &smooth, &mut grad)
            })
            .unwrap()
        })
    });
    g.finish();
}

fn scformer(c: &mut Criterion) {
    let mut g = c.benchmark_group("scformer");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let (cells, dim) = (256usize, 128usize);
    let e = data(cells * dim, 13);
    g.bench_function("ecs_256x128", |b| {
        b.iter(|| maskops::loss::ecs(&e, cells, dim, 0.85).unwrap())
    });
    g.bench_function("ecs_256x128_reference", |b| {
        b.iter(|| reference::loss::ecs(&e, cells, dim, 0.85).unwrap())
    });
    let (rows, cols) = (1024usize, 1000usize);
    let x = data(rows * cols, 14);
    let y = data(rows * cols, 15);
    let m = Mask::random(rows * cols, 0.3, 3);
    g.bench_function("pearson_1024x1000", |b| {
        b.iter(|| maskops::loss::pearson(&x, &y, &m, rows, cols).unwrap())
    });
    g.finish();
}

/// Interleaved timing of a kernel and the triad (one thread): `reps`
/// rounds of (triad, kernel) after a warm-up of each; returns the kernel's
/// minimum and median and the triad's minimum over the same rounds, so the
/// ratio compares the two under the same load of a shared machine.
fn paired(reps: usize, triad: &mut dyn FnMut(), kernel: &mut dyn FnMut()) -> (f64, f64, f64) {
    triad();
    kernel();
    let mut tk = Vec::with_capacity(reps);
    let mut tt = f64::MAX;
    for _ in 0..reps {
        let s = Instant::now();
        triad();
        tt = tt.min(s.elapsed().as_secs_f64());
        let s = Instant::now();
        kernel();
        tk.push(s.elapsed().as_secs_f64());
    }
    tk.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (tk[0], tk[reps / 2], tt)
}

/// The targets as one table.
fn summary() {
    // LOSS_STREAM=<elements>: streaming-store threshold for this run
    if let Some(v) = std::env::var("LOSS_STREAM")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        fast::set_stream_min_elems(v);
        println!("streaming stores from {v} elements");
    }
    let one = pool(1);
    let two = pool(2);
    let gbs = |bytes: usize, t: f64| bytes as f64 / t / 1e9;
    println!(
        "\n== loss summary: min (median) of 31 runs (CE: 101), each interleaved with the \
         triad (2 read + 1 write of 2^24 f32, 1 thread); GB/s by the issue's byte counts =="
    );
    let x = data(N, 3);
    let y = data(N, 4);
    let m = Mask::random(N, 0.5, 7);
    let mut grad = vec![0.0f32; N];
    let (ta, tb_) = (data(N, 1), data(N, 2));
    let mut tout = vec![0.0f32; N];
    let mut triad = || {
        one.install(|| {
            for ((o, a), b) in tout.iter_mut().zip(&ta).zip(&tb_) {
                *o = *a + 0.5 * *b;
            }
            black_box(&tout);
        })
    };
    let row = |name: &str, bytes: usize, t: (f64, f64, f64), target: f64| {
        let (b, bm, tri) = (gbs(bytes, t.0), gbs(bytes, t.1), gbs(N * 12, t.2));
        println!(
            "{name:<27} {:6.2} ms {b:6.2} ({bm:6.2}) GB/s | triad {tri:6.2} | {:5.1}% (target {:.0}%: {})",
            t.0 * 1e3,
            100.0 * b / tri,
            target * 100.0,
            if b >= target * tri { "met" } else { "MISSED" }
        );
    };
    let bytes = N * 12 + N / 8;
    for isa in Isa::all_available() {
        for (name, k) in [("mse", 0), ("l1", 1), ("huber", 2)] {
            let mut kernel = || {
                one.install(|| match k {
                    0 => fast::mse_into_with(isa, &x, &y, &m, Reduction::Mean, &mut grad),
                    1 => fast::l1_into_with(isa, &x, &y, &m, Reduction::Mean, &mut grad),
                    _ => fast::huber_into_with(isa, &x, &y, &m, 1.0, Reduction::Mean, &mut grad),
                })
                .unwrap();
            };
            let t = paired(31, &mut triad, &mut kernel);
            row(&format!("{name} 2^24 {} 1t", isa.name()), bytes, t, 0.7);
        }
    }
    let best = maskops::backend::isa();
    let mut kernel = || {
        two.install(|| fast::mse_into_with(best, &x, &y, &m, Reduction::Mean, &mut grad))
            .unwrap();
    };
    let t = paired(31, &mut triad, &mut kernel);
    row(&format!("mse 2^24 {} 2t", best.name()), bytes, t, 0.7);
    drop((x, y, grad));

    let (rows, classes) = (8192usize, 1000usize);
    let xl = data(rows * classes, 5);
    let mut s = 11u64;
    let t: Vec<i64> = (0..rows)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if (s >> 33) % 100 < 15 {
                ((s >> 40) % classes as u64) as i64
            } else {
                -100
            }
        })
        .collect();
    let kept = t.iter().filter(|&&v| v != -100).count();
    let mut gl = vec![0.0f32; rows * classes];
    let opts = CrossEntropy::default();
    let cbytes = (kept + rows) * classes * 4;
    let mut runs: Vec<(String, Isa, usize)> = Isa::all_available()
        .into_iter()
        .map(|isa| (format!("ce 8192x1000 15% {} 1t", isa.name()), isa, 1))
        .collect();
    runs.push((format!("ce 8192x1000 15% {} 2t", best.name()), best, 2));
    for (name, isa, threads) in runs {
        let p = if threads == 1 { &one } else { &two };
        let mut kernel = || {
            p.install(|| {
                fast::cross_entropy_into_with(isa, &xl, rows, classes, &t, &opts, &mut gl)
            })
            .unwrap();
        };
        let tt = paired(101, &mut triad, &mut kernel);
        row(&name, cbytes, tt, 0.5);
    }
}

criterion_group!(benches, bandwidth, elementwise, cross_entropy, scformer);

fn main() {
    // The summary alone with the filter "summary"; otherwise criterion's
    // groups (filtered as usual), then the summary when no filter is given.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let only_summary = filters.iter().any(|f| f.as_str() == "summary");
    if !only_summary {
        benches();
    }
    if args.iter().any(|a| a == "--bench") && (filters.is_empty() || only_summary) {
        summary();
    }
    Criterion::default().configure_from_args().final_summary();
}
