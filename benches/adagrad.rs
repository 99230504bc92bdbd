//! Adagrad benchmarks for the optimizer issue's targets (one thread unless
//! the name says `threads`):
//!
//! * `adagrad/bandwidth`: the memory roofline measured in the same run: a
//!   plain loop with the dense step's traffic (`p += g; s += g` on 16M f32:
//!   p and s read + written, g read) and a copy.
//! * `adagrad/dense`, `adagrad/masked`: 16M f32 (throughput in bytes: p and
//!   s read + written, g read, mask read).
//! * `adagrad/rows`: 1,000,000 x 64 f32 table, 4096 lookups with duplicates
//!   (bytes: for each unique row p and s read + written, plus the gradient).
//! * `adagrad/sparse`: 1% random nnz of a 16M parameter (4096 x 4096) with
//!   duplicates, against a sort-by-comparison + scalar-update baseline
//!   (throughput in elements = nnz).
//!
//! `cargo bench --bench adagrad` prints them, then a summary table of the
//! targets (minimum of repeated runs, robust to a shared machine; also with
//! the tables on transparent huge pages); `cargo bench --bench adagrad --
//! summary` prints the table alone. `MASKOPS_ISA` lowers the ISA.

use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use maskops::backend::{self as cpu, Isa};
use maskops::optim::{Adagrad, Workspace};
use maskops::{Mask, MaskedView};
use std::time::{Duration, Instant};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unif(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

const N: usize = 16 << 20;

fn one_thread() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
}

fn isas() -> Vec<Isa> {
    let best = cpu::isa();
    let mut v = vec![best];
    if best != Isa::Portable {
        v.push(Isa::Portable);
    }
    v
}

fn bench_dense(c: &mut Criterion) {
    let pool = one_thread();
    let mut rng = Rng(1);
    let mut p: Vec<f32> = (0..N).map(|_| rng.unif()).collect();
    let g: Vec<f32> = (0..N).map(|_| rng.unif()).collect();
    let opt = Adagrad::default();
    let mut st = opt.state::<f32>(N);
    let mut g_ = c.benchmark_group("adagrad/bandwidth");
    g_.throughput(Throughput::Bytes((N * 20) as u64));
    g_.bench_function("p+=g,s+=g 16M f32", |b| {
        b.iter(|| {
            for ((p, s), g) in p.iter_mut().zip(st.sum.iter_mut()).zip(&g) {
                *p += *g;
                *s += *g;
            }
            black_box(&p);
        })
    });
    g_.throughput(Throughput::Bytes((N * 8) as u64));
    g_.bench_function("copy 16M f32", |b| {
        b.iter(|| {
            st.sum.copy_from_slice(black_box(&g));
        })
    });
    g_.finish();

    let mut g_ = c.benchmark_group("adagrad/dense");
    g_.throughput(Throughput::Bytes((N * 20) as u64));
    let mut ws = Workspace::new();
    for isa in isas() {
        g_.bench_function(BenchmarkId::new("16M f32", isa.name()), |b| {
            b.iter(|| {
                pool.install(|| {
                    opt.step_dense_with(isa, &mut ws, &mut p, &g, &mut st)
                        .unwrap()
                })
            })
        });
    }
    g_.bench_function(
        BenchmarkId::new("16M f32 threads", rayon::current_num_threads()),
        |b| b.iter(|| opt.step_dense(&mut p, &g, &mut st).unwrap()),
    );
    g_.finish();

    let mut g_ = c.benchmark_group("adagrad/masked");
    g_.throughput(Throughput::Bytes((N * 20 + N / 8) as u64));
    for keep in [0.5, 0.9] {
        let mask = Mask::from_fn(N, |_| {
            ((rng.next() >> 11) as f64 / (1u64 << 53) as f64) < keep
        });
        let view = MaskedView::new(&g, &mask).unwrap();
        for isa in isas() {
            g_.bench_function(
                BenchmarkId::new(format!("16M f32 keep {keep}"), isa.name()),
                |b| {
                    b.iter(|| {
                        pool.install(|| {
                            opt.step_masked_with(isa, &mut ws, &mut p, &view, &mut st)
                                .unwrap()
                        })
                    })
                },
            );
        }
    }
    g_.finish();
}

fn bench_rows(c: &mut Criterion) {
    let pool = one_thread();
    let (rows, cols, lookups) = (1_000_000usize, 64usize, 4096usize);
    let mut rng = Rng(2);
    let mut p: Vec<f32> = (0..rows * cols).map(|_| rng.unif()).collect();
    let opt = Adagrad::default();
    let mut st = opt.state::<f32>(rows * cols);
    // Duplicates: a quarter of the lookups hit 64 hot rows (Zipf-like head).
    let make = |rng: &mut Rng| -> Vec<usize> {
        (0..lookups)
            .map(|_| {
                if rng.below(4) == 0 {
                    rng.below(64) * 7919
                } else {
                    rng.below(rows)
                }
            })
            .collect()
    };
    let sets: Vec<Vec<usize>> = (0..8).map(|_| make(&mut rng)).collect();
    let values: Vec<f32> = (0..lookups * cols).map(|_| rng.unif() * 0.1).collect();
    let uniq = {
        let mut u = sets[0].clone();
        u.sort_unstable();
        u.dedup();
        u.len()
    };
    let bytes = uniq * cols * 4 * 4 + lookups * cols * 4;
    println!(
        "adagrad/rows: {uniq} unique rows of {lookups} lookups; {bytes} bytes per step counted"
    );
    let mut g_ = c.benchmark_group("adagrad/rows");
    g_.throughput(Throughput::Bytes(bytes as u64));
    let mut ws = Workspace::new();
    for isa in isas() {
        let mut k = 0;
        g_.bench_function(
            BenchmarkId::new("1Mx64 f32 4096 lookups", isa.name()),
            |b| {
                b.iter(|| {
                    k = (k + 1) % sets.len();
                    pool.install(|| {
                        opt.step_rows_with(
                            isa, &mut ws, &mut p, rows, cols, &sets[k], &values, &mut st,
                        )
                        .unwrap()
                    })
                })
            },
        );
    }
    g_.finish();
}

/// The straightforward baseline: (key, position) pairs sorted by comparison
/// (stable), duplicates summed, scalar update.
#[allow(clippy::too_many_arguments)]
fn baseline_sparse(
    opt: &Adagrad,
    p: &mut [f32],
    s: &mut [f32],
    step: u64,
    cols: usize,
    r: &[usize],
    c: &[usize],
    v: &[f32],
) {
    let mut idx: Vec<(usize, usize)> = (0..v.len()).map(|k| (r[k] * cols + c[k], k)).collect();
    idx.sort_by_key(|&(key, _)| key);
    let clr = (opt.lr / (1.0 + (step - 1) as f64 * opt.lr_decay)) as f32;
    let eps = opt.eps as f32;
    let mut i = 0;
    while i < idx.len() {
        let key = idx[i].0;
        let mut g = v[idx[i].1];
        i += 1;
        while i < idx.len() && idx[i].0 == key {
            g += v[idx[i].1];
            i += 1;
        }
        s[key] += g * g;
        p[key] -= clr * g / (s[key].sqrt() + eps);
    }
}

fn bench_sparse(c: &mut Criterion) {
    let pool = one_thread();
    let (rows, cols) = (4096usize, 4096usize);
    let n = rows * cols;
    let nnz = n / 100;
    let mut rng = Rng(3);
    let mut p: Vec<f32> = (0..n).map(|_| rng.unif()).collect();
    let opt = Adagrad::default();
    let mut st = opt.state::<f32>(n);
    // 1% nnz; 10% of the entries repeat an earlier index.
    let mut r = Vec::with_capacity(nnz);
    let mut cc = Vec::with_capacity(nnz);
    for k in 0..nnz {
        if k > 0 && rng.below(10) == 0 {
            let j = rng.below(k);
            r.push(r[j]);
            cc.push(cc[j]);
        } else {
            r.push(rng.below(rows));
            cc.push(rng.below(cols));
        }
    }
    let v: Vec<f32> = (0..nnz).map(|_| rng.unif()).collect();
    let tri = sprs::TriMat::from_triplets((rows, cols), r.clone(), cc.clone(), v.clone());
    let mut g_ = c.benchmark_group("adagrad/sparse");
    g_.throughput(Throughput::Elements(nnz as u64));
    let mut ws = Workspace::new();
    g_.bench_function("16M 1% nnz f32 radix", |b| {
        b.iter(|| {
            pool.install(|| {
                opt.step_sparse_with(cpu::isa(), &mut ws, &mut p, rows, cols, &tri, &mut st)
                    .unwrap()
            })
        })
    });
    g_.bench_function("16M 1% nnz f32 baseline sort_by_key+scalar", |b| {
        b.iter(|| {
            st.step += 1;
            baseline_sparse(&opt, &mut p, &mut st.sum, st.step, cols, &r, &cc, &v)
        })
    });
    g_.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_dense, bench_rows, bench_sparse
}

/// A vector whose 2 MiB-aligned interior is advised for transparent huge
/// pages (Linux `madvise(MADV_HUGEPAGE)`) before it is touched.
fn huge_vec(n: usize, v: f32) -> Vec<f32> {
    let slack = (2 << 20) / 4;
    let mut x: Vec<f32> = Vec::with_capacity(n + slack);
    #[cfg(target_os = "linux")]
    {
        let p = x.as_mut_ptr() as usize;
        let a = (p + (2 << 20) - 1) & !((2 << 20) - 1);
        let len = (n * 4).saturating_sub(a - p) & !((2 << 20) - 1);
        if len > 0 {
            // SAFETY: the range lies inside the vector's allocation; madvise
            // only changes the paging policy of those pages.
            unsafe { libc::madvise(a as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
        }
    }
    x.resize(n, v);
    x
}

/// Minimum and median of `reps` timed runs of `f` (after 2 warm-ups).
fn time(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (t[0], t[reps / 2])
}

/// The targets as one table: minimum (and median) of 15 runs each,
/// one thread, against the roofline measured in the same run.
fn summary() {
    let pool = one_thread();
    let reps = 15;
    let isa = cpu::isa();
    println!(
        "\n== adagrad summary: one thread, ISA {}, min (median) of {reps} runs ==",
        isa.name()
    );
    let mut rng = Rng(11);
    let opt = Adagrad::default();
    let mut ws = Workspace::new();
    let gbs = |bytes: usize, t: f64| bytes as f64 / t / 1e9;

    // Dense / masked, 16M f32, and the roofline with the same traffic.
    let (roof, dense, m90, m50) = {
        let mut p: Vec<f32> = (0..N).map(|_| rng.unif()).collect();
        let g: Vec<f32> = (0..N).map(|_| rng.unif()).collect();
        let mut st = opt.state::<f32>(N);
        let bytes = N * 20;
        let roof = time(reps, || {
            for ((p, s), g) in p.iter_mut().zip(st.sum.iter_mut()).zip(&g) {
                *p += *g;
                *s += *g;
            }
            black_box(&p);
        });
        let roof_gbs = gbs(bytes, roof.0);
        println!(
            "roofline  p+=g; s+=g  16M f32: {:.2} ms ({:.2}) = {:.1} GB/s (20 B/element)",
            roof.0 * 1e3,
            roof.1 * 1e3,
            roof_gbs
        );
        let dense = time(reps, || {
            pool.install(|| {
                opt.step_dense_with(isa, &mut ws, &mut p, &g, &mut st)
                    .unwrap()
            })
        });
        println!(
            "step_dense  16M f32: {:.2} ms ({:.2}) = {:.1} GB/s = {:.0}% of roofline (target >= 70%)",
            dense.0 * 1e3,
            dense.1 * 1e3,
            gbs(bytes, dense.0),
            100.0 * gbs(bytes, dense.0) / roof_gbs
        );
        let mut ms = Vec::new();
        for keep in [0.9, 0.5] {
            let mask = Mask::from_fn(N, |_| {
                ((rng.next() >> 11) as f64 / (1u64 << 53) as f64) < keep
            });
            let view = MaskedView::new(&g, &mask).unwrap();
            let bytes = N * 20 + N / 8;
            let t = time(reps, || {
                pool.install(|| {
                    opt.step_masked_with(isa, &mut ws, &mut p, &view, &mut st)
                        .unwrap()
                })
            });
            println!(
                "step_masked 16M f32 keep {keep}: {:.2} ms ({:.2}) = {:.1} GB/s = {:.0}% of roofline (target >= 70%)",
                t.0 * 1e3,
                t.1 * 1e3,
                gbs(bytes, t.0),
                100.0 * gbs(bytes, t.0) / roof_gbs
            );
            ms.push(t);
        }
        (roof_gbs, dense, ms[0], ms[1])
    };
    let _ = (dense, m90, m50);

    // step_rows: 1M x 64 f32, 4096 lookups with duplicates.
    {
        let (rows, cols, lookups) = (1_000_000usize, 64usize, 4096usize);
        let sets: Vec<Vec<usize>> = (0..8)
            .map(|_| {
                (0..lookups)
                    .map(|_| {
                        if rng.below(4) == 0 {
                            rng.below(64) * 7919
                        } else {
                            rng.below(rows)
                        }
                    })
                    .collect()
            })
            .collect();
        let values: Vec<f32> = (0..lookups * cols).map(|_| rng.unif() * 0.1).collect();
        let uniq: usize = sets
            .iter()
            .map(|s| {
                let mut u = s.clone();
                u.sort_unstable();
                u.dedup();
                u.len()
            })
            .sum::<usize>()
            / sets.len();
        let bytes = uniq * cols * 16 + lookups * cols * 4;
        for thp in [false, true] {
            let (mut p, sum) = if thp {
                (huge_vec(rows * cols, 0.5), huge_vec(rows * cols, 0.0))
            } else {
                (vec![0.5f32; rows * cols], vec![0.0f32; rows * cols])
            };
            let mut st = maskops::optim::AdagradState { sum, step: 0 };
            let mut k = 0;
            let t = time(reps * 4, || {
                k = (k + 1) % sets.len();
                pool.install(|| {
                    opt.step_rows_with(isa, &mut ws, &mut p, rows, cols, &sets[k], &values, &mut st)
                        .unwrap()
                })
            });
            println!(
                "step_rows 1Mx64 f32, 4096 lookups (~{uniq} unique){}: {:.1} us ({:.1}) = {:.1} GB/s = {:.0}% of roofline (target >= 50%)",
                if thp { ", THP table" } else { "" },
                t.0 * 1e6,
                t.1 * 1e6,
                gbs(bytes, t.0),
                100.0 * gbs(bytes, t.0) / roof
            );
        }
    }

    // step_sparse: 1% nnz of 16M with duplicates, vs the comparison-sort baseline.
    {
        let (rows, cols) = (4096usize, 4096usize);
        let n = rows * cols;
        let nnz = n / 100;
        let mut r = Vec::with_capacity(nnz);
        let mut cc = Vec::with_capacity(nnz);
        for k in 0..nnz {
            if k > 0 && rng.below(10) == 0 {
                let j = rng.below(k);
                r.push(r[j]);
                cc.push(cc[j]);
            } else {
                r.push(rng.below(rows));
                cc.push(rng.below(cols));
            }
        }
        let v: Vec<f32> = (0..nnz).map(|_| rng.unif()).collect();
        let tri = sprs::TriMat::from_triplets((rows, cols), r.clone(), cc.clone(), v.clone());
        for thp in [false, true] {
            let (mut p, sum) = if thp {
                (huge_vec(n, 0.5), huge_vec(n, 0.0))
            } else {
                (vec![0.5f32; n], vec![0.0f32; n])
            };
            let mut st = maskops::optim::AdagradState { sum, step: 0 };
            let ours = time(reps, || {
                pool.install(|| {
                    opt.step_sparse_with(isa, &mut ws, &mut p, rows, cols, &tri, &mut st)
                        .unwrap()
                })
            });
            let base = time(reps, || {
                st.step += 1;
                baseline_sparse(&opt, &mut p, &mut st.sum, st.step, cols, &r, &cc, &v)
            });
            let sort_only = time(reps, || {
                let mut idx: Vec<(usize, usize)> =
                    (0..nnz).map(|k| (r[k] * cols + cc[k], k)).collect();
                idx.sort_by_key(|&(key, _)| key);
                black_box(&idx);
            });
            println!(
                "step_sparse 1% of 16M f32 ({nnz} nnz, ~10% duplicates){}: {:.2} ms ({:.2}) = {:.1} ns/nnz; baseline {:.2} ms ({:.2}) = {:.1} ns/nnz (its sort alone {:.2} ms); speedup {:.2}x (target >= 5x)",
                if thp { ", THP" } else { "" },
                ours.0 * 1e3,
                ours.1 * 1e3,
                ours.0 * 1e9 / nnz as f64,
                base.0 * 1e3,
                base.1 * 1e3,
                base.0 * 1e9 / nnz as f64,
                sort_only.0 * 1e3,
                base.0 / ours.0
            );
        }
    }
}

fn main() {
    benches();
    // The summary runs under `cargo bench` (criterion gets `--bench`), when
    // no filter is given or the filter is "summary".
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if args.iter().any(|a| a == "--bench")
        && (filters.is_empty() || filters.iter().any(|f| f.as_str() == "summary"))
    {
        summary();
    }
    Criterion::default().configure_from_args().final_summary();
}
