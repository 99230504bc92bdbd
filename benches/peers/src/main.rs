//! maskops vs arrow-rs: masked (nullable) `sum`, `min`, `max` of `f32` on
//! the same data and the same validity bitmap (a maskops `Mask`'s words are
//! an Arrow validity bitmap: LSB-first, bit = 1 valid). One thread, minimum
//! wall time over batches of calls.

use arrow_array::{Array, Float32Array};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use maskops::{Mask, MaskedView};
use std::hint::black_box;
use std::time::{Duration, Instant};

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

/// Minimum seconds per call of `f`, over batches lasting >= 1 ms, ~300 ms in all.
fn time<R>(mut f: impl FnMut() -> R) -> f64 {
    let t = Instant::now();
    black_box(f());
    let batch = ((1e-3 / t.elapsed().as_secs_f64().max(1e-9)).ceil() as usize).clamp(1, 10_000);
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut runs = 0;
    while runs < 5 || (start.elapsed() < Duration::from_millis(300) && runs < 1000) {
        let t = Instant::now();
        for _ in 0..batch {
            black_box(f());
        }
        best = best.min(t.elapsed().as_secs_f64() / batch as f64);
        runs += 1;
    }
    best
}

fn main() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    println!(
        "maskops ({:?}) vs arrow-rs nullable aggregates, f32, one thread, min wall time per call",
        maskops::backend::isa()
    );
    println!(
        "{:<5} {:>6} {:>5} {:>12} {:>12} {:>8}",
        "op", "N", "dens", "maskops", "arrow", "speedup"
    );
    for log2n in [16u32, 24] {
        let n = 1usize << log2n;
        let x = data(n, 7);
        for dens in [0.5, 0.9] {
            let m = Mask::random(n, 1.0 - dens, 11);
            let v = MaskedView::new(&x, &m).unwrap();
            // the same bits as an Arrow validity bitmap, no repacking
            let nulls = NullBuffer::new(BooleanBuffer::new(
                Buffer::from_vec(m.words().to_vec()),
                0,
                n,
            ));
            let arr = Float32Array::new(ScalarBuffer::from(x.clone()), Some(nulls));
            assert_eq!(arr.null_count(), n - m.count_ones());
            for op in ["sum", "min", "max"] {
                let (tm, ta, same) = pool.install(|| match op {
                    "sum" => {
                        let a = arrow_arith::aggregate::sum(&arr).unwrap();
                        let b = v.sum().unwrap();
                        let rel = ((a - b) / b).abs();
                        (
                            time(|| black_box(&v).sum()),
                            time(|| arrow_arith::aggregate::sum(black_box(&arr))),
                            rel < 1e-3,
                        )
                    }
                    "min" => (
                        time(|| black_box(&v).amin()),
                        time(|| arrow_arith::aggregate::min(black_box(&arr))),
                        arrow_arith::aggregate::min(&arr) == v.amin(),
                    ),
                    _ => (
                        time(|| black_box(&v).amax()),
                        time(|| arrow_arith::aggregate::max(black_box(&arr))),
                        arrow_arith::aggregate::max(&arr) == v.amax(),
                    ),
                });
                assert!(same, "{op}: maskops and arrow disagree");
                println!(
                    "{:<5} {:>6} {:>5} {:>10.1}us {:>10.1}us {:>7.2}x",
                    op,
                    format!("2^{log2n}"),
                    dens,
                    tm * 1e6,
                    ta * 1e6,
                    ta / tm
                );
            }
        }
    }
}
