//! Criterion benches of the masked reductions and softmax (issue 3): the
//! same rows as `cargo run --release --bin report`, each group with the
//! unmasked vectorized read of the same buffer (the bandwidth baseline) and
//! the reference. `cargo bench --bench reduce`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use half::{bf16, f16};
#[path = "../tests/shim/mod.rs"]
mod shim;
use maskops::{Mask, MaskedView};
use shim::reduce::{reduce, reduce_dim, softmax_into, Reduction};
use std::time::Duration;

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

/// Unmasked read of `x` with 64 independent lanes (load-bound).
fn unmasked_read(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 64];
    let mut it = x.chunks_exact(64);
    for c in &mut it {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += *v;
        }
    }
    acc.iter().sum::<f32>() + it.remainder().iter().sum::<f32>()
}

fn one_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(f)
}

fn whole(c: &mut Criterion) {
    for log2n in [16u32, 24] {
        let n = 1usize << log2n;
        let x = data(n, 7);
        let mut g = c.benchmark_group(format!("masked_f32_2^{log2n}"));
        g.sample_size(10).measurement_time(Duration::from_secs(2));
        g.throughput(Throughput::Bytes(n as u64 * 4 + n as u64 / 8));
        g.bench_function("unmasked_read", |b| b.iter(|| unmasked_read(black_box(&x))));
        for dens in [0.5, 0.9] {
            let m = Mask::random(n, 1.0 - dens, 11);
            let v = MaskedView::new(&x, &m).unwrap();
            for (name, op) in [
                ("sum", Reduction::Sum),
                ("mean", Reduction::Mean),
                ("amin", Reduction::Amin),
                ("amax", Reduction::Amax),
            ] {
                g.bench_with_input(BenchmarkId::new(name, dens), &v, |b, v| {
                    one_thread(|| b.iter(|| reduce(black_box(v), op)))
                });
            }
            g.bench_with_input(BenchmarkId::new("reference_sum", dens), &v, |b, v| {
                b.iter(|| maskops::reference::reduce::sum(black_box(v)))
            });
            g.bench_with_input(BenchmarkId::new("sum_2_threads", dens), &v, |b, v| {
                b.iter(|| reduce(black_box(v), Reduction::Sum))
            });
        }
        g.finish();
    }
}

fn dims(c: &mut Criterion) {
    let (r, k) = (4096usize, 4096usize);
    let x = data(r * k, 3);
    let m = Mask::random(r * k, 0.1, 5);
    let v = MaskedView::matrix(&x, &m, r, k).unwrap();
    let mut g = c.benchmark_group("sum_4096x4096");
    g.sample_size(10).measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements((r * k) as u64));
    g.bench_function("whole", |b| {
        one_thread(|| b.iter(|| reduce(&v, Reduction::Sum)))
    });
    g.bench_function("dim0", |b| {
        one_thread(|| b.iter(|| reduce_dim(&v, 0, Reduction::Sum).unwrap()))
    });
    g.bench_function("dim1", |b| {
        one_thread(|| b.iter(|| reduce_dim(&v, 1, Reduction::Sum).unwrap()))
    });
    g.finish();
}

fn softmax(c: &mut Criterion) {
    let (r, k) = (32768usize, 512usize);
    let x = data(r * k, 9);
    let lens: Vec<usize> = (0..r).map(|i| 1 + (i * 7919) % k).collect();
    let m = Mask::padding(&lens, k).unwrap();
    let v = MaskedView::matrix(&x, &m, r, k).unwrap();
    let mut out = vec![0.0f32; r * k];
    let mut g = c.benchmark_group("softmax_32768x512");
    g.sample_size(10).measurement_time(Duration::from_secs(2));
    // one read and one write per element (+ the mask)
    g.throughput(Throughput::Bytes((r * k) as u64 * 8 + (r * k) as u64 / 8));
    g.bench_function("unmasked_read", |b| b.iter(|| unmasked_read(black_box(&x))));
    g.bench_function("softmax", |b| {
        one_thread(|| b.iter(|| softmax_into(&v, 1, false, &mut out).unwrap()))
    });
    g.bench_function("log_softmax", |b| {
        one_thread(|| b.iter(|| softmax_into(&v, 1, true, &mut out).unwrap()))
    });
    g.finish();
}

fn halves(c: &mut Criterion) {
    let n = 1usize << 24;
    let x = data(n, 21);
    let m = Mask::random(n, 0.1, 4);
    let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    let mut g = c.benchmark_group("sum_2^24_types");
    g.sample_size(10).measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(n as u64));
    let (v32, v16, vb) = (
        MaskedView::new(&x, &m).unwrap(),
        MaskedView::new(&xh, &m).unwrap(),
        MaskedView::new(&xb, &m).unwrap(),
    );
    g.bench_function("f32", |b| {
        one_thread(|| b.iter(|| reduce(&v32, Reduction::Sum)))
    });
    g.bench_function("f16", |b| {
        one_thread(|| b.iter(|| reduce(&v16, Reduction::Sum)))
    });
    g.bench_function("bf16", |b| {
        one_thread(|| b.iter(|| reduce(&vb, Reduction::Sum)))
    });
    g.finish();
}

criterion_group!(benches, whole, dims, softmax, halves);
criterion_main!(benches);
