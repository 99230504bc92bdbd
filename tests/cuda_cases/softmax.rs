//! Masked softmax / log-softmax forward and backward (kernels/softmax.cu)
//! under the host emulator, through the launch plans of
//! `maskops::cuda::ops`: bit for bit against the canonical definition, within
//! a tolerance against f64.

use super::Dev;
use maskops::canonical::canonical_fold;
use maskops::cuda::ops::{softmax, softmax_backward};
use maskops::cuda::plan::DType;
use maskops::math::{exp_f32, ln_f32};
use maskops::Mask;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

fn nmax(a: f32, b: f32) -> f32 {
    if a.is_nan() {
        a
    } else if b.is_nan() {
        b
    } else if a > b {
        a
    } else {
        b
    }
}

/// Rounds through the dtype (the kernels read and write that type).
fn round(d: DType, v: f32) -> f32 {
    match d {
        DType::F32 => v,
        DType::F16 => half::f16::from_f32(v).to_f32(),
        DType::F64 => unreachable!("f64 data has its own cases"),
        DType::Bf16 => half::bf16::from_f32(v).to_f32(),
    }
}

fn upload<B: Dev>(emu: &B, d: DType, v: &[f32]) -> B::Buf {
    match d {
        DType::F32 => emu.up(v),
        DType::F16 => emu.up(&v
            .iter()
            .map(|&a| half::f16::from_f32(a))
            .collect::<Vec<_>>()),
        DType::F64 => unreachable!("f64 data has its own cases"),
        DType::Bf16 => emu.up(&v
            .iter()
            .map(|&a| half::bf16::from_f32(a))
            .collect::<Vec<_>>()),
    }
}

fn download<B: Dev>(emu: &B, d: DType, b: &B::Buf) -> Vec<f32> {
    match d {
        DType::F32 => emu.rd::<f32>(&b),
        DType::F16 => emu
            .rd::<u16>(&b)
            .into_iter()
            .map(|u| half::f16::from_bits(u).to_f32())
            .collect(),
        DType::F64 => unreachable!("f64 data has its own cases"),
        DType::Bf16 => emu
            .rd::<u16>(&b)
            .into_iter()
            .map(|u| half::bf16::from_bits(u).to_f32())
            .collect(),
    }
}

/// The canonical definition of one row (see kernels/softmax.cu).
fn fwd_row(x: &[f32], keep: &dyn Fn(usize) -> bool, log: bool) -> Vec<f32> {
    let n = x.len();
    let m = canonical_fold(n, f32::NEG_INFINITY, keep, |i| x[i], nmax);
    let s = canonical_fold(n, 0.0f32, keep, |i| exp_f32(x[i] - m), |a, b| a + b);
    let lns = ln_f32(s);
    (0..n)
        .map(|i| match (keep(i), log) {
            (false, _) => 0.0,
            (true, true) => (x[i] - m) - lns,
            (true, false) => exp_f32(x[i] - m) * (1.0 / s),
        })
        .collect()
}

fn bwd_row(y: &[f32], g: &[f32], keep: &dyn Fn(usize) -> bool, log: bool) -> Vec<f32> {
    let n = y.len();
    let dot = if log {
        canonical_fold(n, 0.0f32, keep, |i| g[i], |a, b| a + b)
    } else {
        canonical_fold(n, 0.0f32, keep, |i| g[i] * y[i], |a, b| a + b)
    };
    (0..n)
        .map(|i| match (keep(i), log) {
            (false, _) => 0.0,
            (true, true) => g[i] - exp_f32(y[i]) * dot,
            (true, false) => y[i] * (g[i] - dot),
        })
        .collect()
}

fn bits_eq(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

pub fn run<B: Dev>(emu: &B, d: DType, rows: usize, n: usize, seed: u64) {
    let mut r = Rng(seed);
    let mut mask = Mask::random(rows * n, 0.3, seed);
    if rows > 1 {
        for k in 0..n {
            mask.set(n + k, false); // row 1 fully masked
        }
    }
    let x: Vec<f32> = (0..rows * n)
        .map(|i| {
            if !mask.get(i) && i % 5 == 0 {
                f32::NAN
            } else {
                round(d, r.f32(-6.0, 6.0))
            }
        })
        .collect();
    let g: Vec<f32> = (0..rows * n).map(|_| round(d, r.f32(-1.0, 1.0))).collect();
    let mb = emu.up(mask.words());
    let xb = upload(emu, d, &x);
    let gb = upload(emu, d, &g);
    for log in [false, true] {
        let yb = emu.poisoned(rows * n * d.size());
        softmax(
            emu,
            emu.ptr(&xb),
            d,
            emu.ptr(&mb),
            rows as u64,
            n as u64,
            log,
            emu.ptr(&yb),
        )
        .unwrap();
        let y = download(emu, d, &yb);
        let dxb = emu.poisoned(rows * n * d.size());
        softmax_backward(
            emu,
            emu.ptr(&yb),
            emu.ptr(&gb),
            d,
            emu.ptr(&mb),
            rows as u64,
            n as u64,
            log,
            emu.ptr(&dxb),
        )
        .unwrap();
        let dx = download(emu, d, &dxb);
        for row in 0..rows {
            let s = row * n..(row + 1) * n;
            let keep = |k: usize| mask.get(row * n + k);
            let want: Vec<f32> = fwd_row(&x[s.clone()], &keep, log)
                .into_iter()
                .map(|v| round(d, v))
                .collect();
            for k in 0..n {
                assert!(
                    bits_eq(y[row * n + k], want[k]),
                    "{d:?} log={log} fwd [{row},{k}]: {} != {}",
                    y[row * n + k],
                    want[k]
                );
            }
            // f64 check of the forward
            let kept: Vec<usize> = (0..n).filter(|&k| keep(k)).collect();
            if !kept.is_empty() {
                let m = kept
                    .iter()
                    .map(|&k| x[row * n + k] as f64)
                    .fold(f64::NEG_INFINITY, f64::max);
                let s64: f64 = kept
                    .iter()
                    .map(|&k| (x[row * n + k] as f64 - m).exp())
                    .sum();
                let tol = if d == DType::F32 { 1e-5 } else { 1e-2 };
                for &k in &kept {
                    let e = x[row * n + k] as f64 - m;
                    let w = if log { e - s64.ln() } else { e.exp() / s64 };
                    let gv = y[row * n + k] as f64;
                    assert!(
                        (gv - w).abs() <= tol * w.abs().max(1.0),
                        "{d:?} log={log} [{row},{k}] {gv} vs f64 {w}"
                    );
                }
            }
            let want: Vec<f32> = bwd_row(&y[s.clone()], &g[s.clone()], &keep, log)
                .into_iter()
                .map(|v| round(d, v))
                .collect();
            for k in 0..n {
                assert!(
                    bits_eq(dx[row * n + k], want[k]),
                    "{d:?} log={log} bwd [{row},{k}]: {} != {}",
                    dx[row * n + k],
                    want[k]
                );
            }
        }
    }
}

pub fn short_rows_warp_per_row_f32<B: Dev>(emu: &B) {
    run(emu, DType::F32, 11, 70, 1);
    run(emu, DType::F32, 3, 4096, 2);
    run(emu, DType::F32, 2, 1, 3);
}

pub fn long_rows_block_per_row_f32<B: Dev>(emu: &B) {
    run(emu, DType::F32, 2, 9_000, 4);
}

pub fn half_types<B: Dev>(emu: &B) {
    run(emu, DType::F16, 4, 100, 5);
    run(emu, DType::Bf16, 4, 100, 6);
    run(emu, DType::Bf16, 2, 4_500, 7);
}

/// Softmax over the columns (dim = 0): the same definition along the other
/// axis, checked bit for bit per column.
pub fn run_cols<B: Dev>(emu: &B, d: DType, rows: usize, cols: usize, seed: u64) {
    use maskops::cuda::ops::{softmax_cols, softmax_cols_backward};
    let mut r = Rng(seed);
    let mut mask = Mask::random(rows * cols, 0.3, seed);
    if cols > 1 {
        for k in 0..rows {
            mask.set(k * cols + 1, false); // column 1 fully masked
        }
    }
    let x: Vec<f32> = (0..rows * cols)
        .map(|i| {
            if !mask.get(i) && i % 5 == 0 {
                f32::NAN
            } else {
                round(d, r.f32(-6.0, 6.0))
            }
        })
        .collect();
    let g: Vec<f32> = (0..rows * cols)
        .map(|_| round(d, r.f32(-1.0, 1.0)))
        .collect();
    let mb = emu.up(mask.words());
    let xb = upload(emu, d, &x);
    let gb = upload(emu, d, &g);
    for log in [false, true] {
        let yb = emu.poisoned(rows * cols * d.size());
        softmax_cols(
            emu,
            emu.ptr(&xb),
            d,
            emu.ptr(&mb),
            rows as u64,
            cols as u64,
            log,
            emu.ptr(&yb),
        )
        .unwrap();
        let y = download(emu, d, &yb);
        let dxb = emu.poisoned(rows * cols * d.size());
        softmax_cols_backward(
            emu,
            emu.ptr(&yb),
            emu.ptr(&gb),
            d,
            emu.ptr(&mb),
            rows as u64,
            cols as u64,
            log,
            emu.ptr(&dxb),
        )
        .unwrap();
        let dx = download(emu, d, &dxb);
        for c in 0..cols {
            let col = |v: &[f32]| -> Vec<f32> { (0..rows).map(|k| v[k * cols + c]).collect() };
            let keep = |k: usize| mask.get(k * cols + c);
            let want: Vec<f32> = fwd_row(&col(&x), &keep, log)
                .into_iter()
                .map(|v| round(d, v))
                .collect();
            let got = col(&y);
            for k in 0..rows {
                assert!(
                    bits_eq(got[k], want[k]),
                    "{d:?} log={log} cols fwd [{k},{c}]: {} != {}",
                    got[k],
                    want[k]
                );
            }
            let want: Vec<f32> = bwd_row(&got, &col(&g), &keep, log)
                .into_iter()
                .map(|v| round(d, v))
                .collect();
            let gotd = col(&dx);
            for k in 0..rows {
                assert!(
                    bits_eq(gotd[k], want[k]),
                    "{d:?} log={log} cols bwd [{k},{c}]: {} != {}",
                    gotd[k],
                    want[k]
                );
            }
        }
    }
}

pub fn columns_dim0<B: Dev>(emu: &B) {
    run_cols(emu, DType::F32, 70, 5, 11);
    run_cols(emu, DType::F32, 4_500, 2, 12);
    run_cols(emu, DType::Bf16, 40, 3, 13);
    run_cols(emu, DType::F16, 40, 3, 14);
}

/// Random small shapes on both dims and all dtypes.
pub fn random_shapes<B: Dev>(emu: &B) {
    let mut r = Rng(0xabc);
    for it in 0..8 {
        let rows = 1 + (r.next() % 19) as usize;
        let cols = 1 + (r.next() % 150) as usize;
        let d = [DType::F32, DType::F16, DType::Bf16][(r.next() % 3) as usize];
        if r.next().is_multiple_of(2) {
            run(emu, d, rows, cols, 200 + it);
        } else {
            run_cols(emu, d, rows, cols, 300 + it);
        }
    }
}
