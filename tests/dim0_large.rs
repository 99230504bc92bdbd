//! Dim-0 reductions and softmax on shapes the property tests do not reach:
//! full 256-row bands, several canonical row blocks, column tiles, rows on
//! and off mask-word boundaries. Every column must equal the whole-array
//! reduction of that column (a different code path, same canonical order),
//! bit for bit, on every ISA and with one and two threads.

use half::{bf16, f16};
mod shim;
use maskops::backend::Isa;
use maskops::{Element, Mask, MaskedView};
use shim::reduce::{reduce_dim_with, reduce_with, softmax_backward_with, softmax_with, Reduction};

fn same_bits<T: Element>(a: T, b: T) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_f64().to_bits() == b.to_f64().to_bits()
}

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

fn check<T: Element>(rows: usize, cols: usize, seed: u64) {
    let n = rows * cols;
    let mut next = xorshift(seed);
    let keep: Vec<bool> = (0..n).map(|_| !next().is_multiple_of(10)).collect();
    let x: Vec<T> = (0..n)
        .map(|i| {
            if keep[i] {
                T::from_f64(((next() % 20001) as f64 - 10000.0) / 2500.0)
            } else {
                T::from_f64(f64::NAN)
            }
        })
        .collect();
    let m = Mask::from_bools(&keep);
    let v = MaskedView::matrix(&x, &m, rows, cols).unwrap();
    let pools: Vec<rayon::ThreadPool> = [1, 2]
        .iter()
        .map(|&t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
        })
        .collect();
    let probe: Vec<usize> = [
        0,
        1,
        63,
        64,
        1023,
        1024,
        1025,
        2047,
        2048,
        4095,
        4096,
        cols / 2,
        cols - 1,
    ]
    .into_iter()
    .filter(|&c| c < cols)
    .collect();
    for op in [
        Reduction::Sum,
        Reduction::Amax,
        Reduction::Var { correction: 1 },
        Reduction::LogSumExp,
    ] {
        let first = reduce_dim_with(Isa::Portable, &v, 0, op).unwrap();
        for &c in &probe {
            let (vals, bits): (Vec<T>, Vec<bool>) = (0..rows)
                .map(|r| (x[r * cols + c], keep[r * cols + c]))
                .unzip();
            let mm = Mask::from_bools(&bits);
            let one = reduce_with(Isa::Portable, &MaskedView::new(&vals, &mm).unwrap(), op);
            let got = first.get(c);
            assert!(
                match (got, one) {
                    (None, None) => true,
                    (Some(a), Some(b)) => same_bits(a, b),
                    _ => false,
                },
                "{op:?} {} {rows}x{cols} column {c}: {got:?} vs {one:?}",
                T::NAME
            );
        }
        for isa in Isa::all_available() {
            for pool in &pools {
                let got = pool.install(|| reduce_dim_with(isa, &v, 0, op).unwrap());
                assert!(got.mask == first.mask, "{op:?} {isa:?} mask");
                for (i, (&a, &b)) in got.values.iter().zip(&first.values).enumerate() {
                    assert!(same_bits(a, b), "{op:?} {} {isa:?} column {i}", T::NAME);
                }
            }
        }
    }
    let g: Vec<T> = (0..n)
        .map(|i| T::from_f64(((i * 7919) % 13) as f64 / 4.0 - 1.5))
        .collect();
    for log in [false, true] {
        let first = softmax_with(Isa::Portable, &v, 0, log).unwrap();
        let out = MaskedView::matrix(&first.values, &first.mask, rows, cols).unwrap();
        let bfirst = softmax_backward_with(Isa::Portable, &out, &g, 0, log).unwrap();
        for isa in Isa::all_available() {
            for pool in &pools {
                let y = pool.install(|| softmax_with(isa, &v, 0, log).unwrap());
                let b = pool.install(|| softmax_backward_with(isa, &out, &g, 0, log).unwrap());
                for (i, (&a, &b)) in y.values.iter().zip(&first.values).enumerate() {
                    assert!(same_bits(a, b), "softmax log={log} {isa:?} element {i}");
                }
                for (i, (&a, &c)) in b.values.iter().zip(&bfirst.values).enumerate() {
                    assert!(same_bits(a, c), "softmax bwd log={log} {isa:?} element {i}");
                }
            }
        }
    }
}

// One test per shape, so that the harness runs them side by side.

/// Aligned rows (cols % 64 == 0), several canonical row blocks, full bands
/// and a tail (two threads: one column tile per thread). The unoptimized
/// default `cargo test` takes 192 columns; CI's `--release` run (and
/// `MASKOPS_FULL_TESTS=1`) the full 1088.
#[test]
fn dim0_aligned_row_blocks() {
    let full = !cfg!(debug_assertions) || std::env::var_os("MASKOPS_FULL_TESTS").is_some();
    check::<f32>(4096 + 300, if full { 1088 } else { 192 }, 1);
}

/// Two of the widest column tiles (4096 f32 accumulators, 2048 f64).
#[test]
fn dim0_widest_tiles() {
    check::<f32>(300, 4096 + 130, 6);
    check::<f64>(70, 2048 + 64, 7);
}

/// Unaligned rows, a short tail group, one band.
#[test]
fn dim0_unaligned_rows() {
    check::<f32>(290, 1057, 2);
    check::<f64>(600, 1152, 3);
    check::<f16>(520, 128, 4);
    check::<bf16>(300, 70, 5);
}

/// Row softmax on rows that start on mask-word boundaries (`cols % 64 ==
/// 0`: the word-at-a-time paths) equals the same rows with one masked-out
/// column appended (rows off word boundaries: the general path), bit for
/// bit.
fn check_rows_aligned<T: Element>(rows: usize, cols: usize, seed: u64) {
    let mut next = xorshift(seed);
    let n = rows * cols;
    // key padding plus scattered holes
    let keep: Vec<bool> = (0..n)
        .map(|i| i % cols < 1 + (i / cols * 7919) % cols && !next().is_multiple_of(7))
        .collect();
    // values, with signed zeros and -inf scattered, and a kept NaN (row 3
    // mod 17) or +inf (row 5 mod 17) in some rows (those rows: all NaN)
    let x: Vec<T> = (0..n)
        .map(|i| match (i / cols % 17, i % cols, next() % 40) {
            (3, 0, _) => T::from_f64(f64::NAN),
            (5, 0, _) => T::from_f64(f64::INFINITY),
            (_, _, 0) => T::from_f64(-0.0),
            (_, _, 1) => T::from_f64(0.0),
            (_, _, 2) => T::from_f64(f64::NEG_INFINITY),
            _ => T::from_f64(((next() % 20001) as f64 - 10000.0) / 2500.0),
        })
        .collect();
    let m = Mask::from_bools(&keep);
    let v = MaskedView::matrix(&x, &m, rows, cols).unwrap();
    let w = cols + 1;
    let mut x2 = vec![T::from_f64(f64::NAN); rows * w];
    let mut keep2 = vec![false; rows * w];
    for r in 0..rows {
        x2[r * w..r * w + cols].copy_from_slice(&x[r * cols..(r + 1) * cols]);
        keep2[r * w..r * w + cols].copy_from_slice(&keep[r * cols..(r + 1) * cols]);
    }
    let m2 = Mask::from_bools(&keep2);
    let v2 = MaskedView::matrix(&x2, &m2, rows, w).unwrap();
    for isa in Isa::all_available() {
        for log in [false, true] {
            let a = softmax_with(isa, &v, 1, log).unwrap();
            let b = softmax_with(isa, &v2, 1, log).unwrap();
            let p = softmax_with(Isa::Portable, &v, 1, log).unwrap();
            for r in 0..rows {
                for c in 0..cols {
                    let i = r * cols + c;
                    assert!(
                        same_bits(a.values[i], b.values[r * w + c])
                            && same_bits(a.values[i], p.values[i]),
                        "{} log={log} {isa:?} ({r}, {c})",
                        T::NAME
                    );
                }
            }
        }
    }
}

#[test]
fn softmax_rows_on_and_off_word_boundaries_f32() {
    check_rows_aligned::<f32>(200, 512, 6);
}

#[test]
fn softmax_rows_on_and_off_word_boundaries_wide() {
    check_rows_aligned::<f32>(40, 4096 + 64, 7);
}

#[test]
fn softmax_rows_on_and_off_word_boundaries_f64_f16() {
    check_rows_aligned::<f64>(100, 192, 8);
    check_rows_aligned::<f16>(50, 128, 9);
}
