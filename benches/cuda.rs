//! Device benchmarks of the CUDA kernels (feature `cuda`; needs a GPU —
//! without one the bench prints why it skipped and exits).
//!
//! Every kernel here is memory-bound. Each benchmark declares the bytes the
//! operation must move at least (read every input once, write every output
//! once, 1 bit per element of mask) as its criterion throughput, and prints
//! the time that byte count takes at the H100 SXM's HBM3 bandwidth of
//! 3.35 TB/s: the target a kernel should approach (typically 80-90% of it).
//! Nothing here has been run on real hardware yet.
//!
//! ```text
//! cargo bench --features cuda --bench cuda
//! ```

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use maskops::cuda::ops::{ElemLoss, LossReduction, Reduce};
use maskops::cuda::{DeviceAdagrad, Gpu};
use maskops::Mask;

/// H100 SXM HBM3 bandwidth, bytes per second.
const H100_BYTES_PER_S: f64 = 3.35e12;

fn target(name: &str, bytes: u64) -> Throughput {
    let us = bytes as f64 / H100_BYTES_PER_S * 1e6;
    println!("{name}: {bytes} bytes -> H100 target {us:.1} us at 3.35 TB/s");
    Throughput::Bytes(bytes)
}

fn benches(c: &mut Criterion) {
    // a missing driver or device skips, unless MASKOPS_REQUIRE_GPU=1; any
    // other failure to open the device is a failure
    let strict = std::env::var("MASKOPS_REQUIRE_GPU").is_ok_and(|v| v.trim() == "1");
    let gpu = match Gpu::new(0) {
        Ok(g) => g,
        Err(maskops::Error::CudaUnavailable(why)) if !strict => {
            eprintln!("benches/cuda.rs: skipped ({why})");
            return;
        }
        Err(e) => panic!("benches/cuda.rs: the CUDA device could not be opened: {e}"),
    };
    let n: usize = 1 << 26; // 64 Mi elements
    let x: Vec<f32> = (0..n).map(|i| ((i % 1000) as f32) * 1e-3 - 0.5).collect();
    let mask = Mask::random(n, 0.25, 7);
    let dx = gpu.upload(&x).unwrap();
    let dy = gpu.upload(&x).unwrap();
    let dm = gpu.upload_mask(&mask).unwrap();
    let mask_bytes = (n / 8) as u64;

    let mut g = c.benchmark_group("cuda");
    g.sample_size(20);

    g.throughput(target("masked_sum_f32 64Mi", 4 * n as u64 + mask_bytes));
    g.bench_function("masked_sum_f32_64Mi", |b| {
        b.iter(|| gpu.reduce(&dx, &dm, Reduce::Sum).unwrap())
    });

    let (rows, cols) = (4096usize, n / 4096);
    g.throughput(target(
        "sum_dim1_f32 4096x16Ki",
        4 * n as u64 + mask_bytes + 4 * rows as u64,
    ));
    g.bench_function("sum_dim1_f32_4096x16Ki", |b| {
        b.iter(|| {
            let r = gpu
                .reduce_dim(&dx, &dm, rows, cols, 1, Reduce::Sum)
                .unwrap();
            gpu.synchronize().unwrap();
            r
        })
    });
    g.throughput(target(
        "sum_dim0_f32 4096x16Ki",
        4 * n as u64 + mask_bytes + 4 * cols as u64,
    ));
    g.bench_function("sum_dim0_f32_4096x16Ki", |b| {
        b.iter(|| {
            let r = gpu
                .reduce_dim(&dx, &dm, rows, cols, 0, Reduce::Sum)
                .unwrap();
            gpu.synchronize().unwrap();
            r
        })
    });

    let (srows, scols) = (n / 1024, 1024usize);
    g.throughput(target(
        "softmax_f32 64Ki x 1024 (warp per row)",
        8 * n as u64 + mask_bytes,
    ));
    g.bench_function("softmax_f32_64Kix1024", |b| {
        b.iter(|| {
            let r = gpu.softmax(&dx, &dm, srows, scols, 1, false).unwrap();
            gpu.synchronize().unwrap();
            r
        })
    });
    let (lrows, lcols) = (64usize, n / 64);
    g.throughput(target(
        "softmax_f32 64 x 1Mi (block per row)",
        8 * n as u64 + mask_bytes,
    ));
    g.bench_function("softmax_f32_64x1Mi", |b| {
        b.iter(|| {
            let r = gpu.softmax(&dx, &dm, lrows, lcols, 1, false).unwrap();
            gpu.synchronize().unwrap();
            r
        })
    });

    g.throughput(target(
        "mse_mean_f32 64Mi (x, y, mask -> grad)",
        12 * n as u64 + mask_bytes,
    ));
    g.bench_function("mse_mean_f32_64Mi", |b| {
        b.iter(|| {
            let r = gpu
                .loss(ElemLoss::Mse, &dx, &dy, &dm, LossReduction::Mean)
                .unwrap();
            gpu.synchronize().unwrap();
            r
        })
    });

    let (crows, classes) = (n / 1024, 1024usize);
    let targets: Vec<i64> = (0..crows).map(|i| (i * 7 % classes) as i64).collect();
    g.throughput(target(
        "cross_entropy_f32 64Ki x 1024 (logits -> grad)",
        8 * n as u64,
    ));
    g.bench_function("cross_entropy_f32_64Kix1024", |b| {
        b.iter(|| {
            let r = gpu
                .cross_entropy(
                    &dx,
                    crows,
                    classes,
                    &targets,
                    -100,
                    None,
                    0.0,
                    LossReduction::Mean,
                )
                .unwrap();
            gpu.synchronize().unwrap();
            r
        })
    });

    let opt = DeviceAdagrad {
        lr: 1e-3,
        ..Default::default()
    };
    let mut param = gpu.upload(&x).unwrap();
    let mut state = gpu.adagrad_state(&opt, n).unwrap();
    g.throughput(target(
        "adagrad_dense_f32 64Mi (p, s, g -> p, s)",
        20 * n as u64,
    ));
    g.bench_function("adagrad_dense_f32_64Mi", |b| {
        b.iter(|| {
            gpu.adagrad_step(&opt, &mut param, &dy, None, &mut state)
                .unwrap();
            gpu.synchronize().unwrap();
        })
    });
    // 75% kept: 20 bytes per kept entry, the mask, and a full read of nothing else.
    g.throughput(target(
        "adagrad_masked_f32 64Mi, 75% kept",
        15 * n as u64 + mask_bytes,
    ));
    g.bench_function("adagrad_masked_f32_64Mi", |b| {
        b.iter(|| {
            gpu.adagrad_step(&opt, &mut param, &dy, Some(&dm), &mut state)
                .unwrap();
            gpu.synchronize().unwrap();
        })
    });

    let nnz = n / 100;
    let idx: Vec<usize> = (0..nnz).map(|i| (i * 7919) % n).collect();
    let vals: Vec<f32> = (0..nnz).map(|i| (i % 17) as f32 * 0.01).collect();
    // 1%: index (8 B) + value (4 B) in, p and s read and written (16 B) per
    // entry; the host->device copy and the sort are extra, not credited.
    g.throughput(target("adagrad_sparse_f32 1% of 64Mi", 28 * nnz as u64));
    g.bench_function("adagrad_sparse_f32_1pct_64Mi", |b| {
        b.iter(|| {
            gpu.adagrad_step_sparse(&opt, &mut param, &idx, &vals, &mut state)
                .unwrap();
            gpu.synchronize().unwrap();
        })
    });
    g.finish();
}

criterion_group!(cuda_benches, benches);
criterion_main!(cuda_benches);
