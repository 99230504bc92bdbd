//! Masked reductions of kernels/reduce.cu run under the host emulator with
//! the launch plans of `maskops::cuda::ops`, compared bit for bit with the
//! canonical order (`maskops::canonical`) and within a tolerance with a plain
//! f64 loop.

use super::Dev;
use maskops::canonical::canonical_fold;
use maskops::cuda::ops::{reduce, reduce_scalar, Layout, Reduce};
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

/// Values in [-4, 4) with NaN / inf planted in masked-out slots.
fn case(n: usize, keep_p: f64, seed: u64) -> (Vec<f32>, Mask) {
    let mut r = Rng(seed);
    let mask = Mask::random(n, 1.0 - keep_p, seed ^ 0x5eed);
    let x = (0..n)
        .map(|i| {
            if !mask.get(i) && i % 3 == 0 {
                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][i % 9 / 3]
            } else {
                r.f32(-4.0, 4.0)
            }
        })
        .collect();
    (x, mask)
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
fn nmin(a: f32, b: f32) -> f32 {
    if a.is_nan() {
        a
    } else if b.is_nan() {
        b
    } else if a < b {
        a
    } else {
        b
    }
}

/// The canonical-order definition of each reduction over one sequence.
fn canonical(red: Reduce, x: &[f32], keep: &dyn Fn(usize) -> bool) -> Option<f32> {
    let n = x.len();
    let count = (0..n).filter(|&i| keep(i)).count();
    if count == 0 {
        return None;
    }
    let sum = |f: &dyn Fn(f32) -> f32| canonical_fold(n, 0.0f32, keep, |i| f(x[i]), |a, b| a + b);
    Some(match red {
        Reduce::Sum => sum(&|v| v),
        Reduce::Mean => sum(&|v| v) / count as f32,
        Reduce::Prod => canonical_fold(n, 1.0f32, keep, |i| x[i], |a, b| a * b),
        Reduce::Amin => canonical_fold(n, f32::INFINITY, keep, |i| x[i], nmin),
        Reduce::Amax => canonical_fold(n, f32::NEG_INFINITY, keep, |i| x[i], nmax),
        Reduce::Var(c) | Reduce::Std(c) => {
            if count as u32 <= c {
                return None;
            }
            let m = sum(&|v| v) / count as f32;
            let ss = sum(&|v| (v - m) * (v - m));
            let var = ss / (count as u32 - c) as f32;
            if matches!(red, Reduce::Std(_)) {
                var.sqrt()
            } else {
                var
            }
        }
        Reduce::Norm1 => sum(&|v| v.abs()),
        Reduce::Norm2 => sum(&|v| v * v).sqrt(),
        Reduce::NormInf => canonical_fold(n, f32::NEG_INFINITY, keep, |i| x[i].abs(), nmax),
        Reduce::NormNegInf => canonical_fold(n, f32::INFINITY, keep, |i| x[i].abs(), nmin),
        Reduce::Norm0 => sum(&|v| if v != 0.0 { 1.0 } else { 0.0 }),
        Reduce::LogSumExp => {
            let m = canonical_fold(n, f32::NEG_INFINITY, keep, |i| x[i], nmax);
            if !m.is_finite() {
                return Some(m);
            }
            m + ln_f32(sum(&|v| exp_f32(v - m)))
        }
    })
}

/// Plain f64 evaluation, for the tolerance check.
fn f64_ref(red: Reduce, x: &[f32], keep: &dyn Fn(usize) -> bool) -> Option<f64> {
    let v: Vec<f64> = (0..x.len())
        .filter(|&i| keep(i))
        .map(|i| x[i] as f64)
        .collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let s: f64 = v.iter().sum();
    Some(match red {
        Reduce::Sum => s,
        Reduce::Mean => s / n,
        Reduce::Prod => v.iter().product(),
        Reduce::Amin => v.iter().cloned().fold(f64::INFINITY, f64::min),
        Reduce::Amax => v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        Reduce::Var(c) | Reduce::Std(c) => {
            if v.len() as u32 <= c {
                return None;
            }
            let m = s / n;
            let var = v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n - c as f64);
            if matches!(red, Reduce::Std(_)) {
                var.sqrt()
            } else {
                var
            }
        }
        Reduce::Norm1 => v.iter().map(|a| a.abs()).sum(),
        Reduce::Norm2 => v.iter().map(|a| a * a).sum::<f64>().sqrt(),
        Reduce::NormInf => v.iter().map(|a| a.abs()).fold(0.0, f64::max),
        Reduce::NormNegInf => v.iter().map(|a| a.abs()).fold(f64::INFINITY, f64::min),
        Reduce::Norm0 => v.iter().filter(|a| **a != 0.0).count() as f64,
        Reduce::LogSumExp => {
            let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            m + v.iter().map(|a| (a - m).exp()).sum::<f64>().ln()
        }
    })
}

fn same(a: Option<f32>, b: Option<f32>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
        (None, None) => true,
        _ => false,
    }
}

const ALL: [Reduce; 14] = [
    Reduce::Sum,
    Reduce::Mean,
    Reduce::Prod,
    Reduce::Amin,
    Reduce::Amax,
    Reduce::Var(1),
    Reduce::Std(0),
    Reduce::Norm1,
    Reduce::Norm2,
    Reduce::NormInf,
    Reduce::NormNegInf,
    Reduce::Norm0,
    Reduce::Var(0),
    Reduce::LogSumExp,
];

pub fn whole_array_sum_matches_canonical_bits<B: Dev>(emu: &B) {
    for (n, p, seed) in [
        (0usize, 0.5, 1u64),
        (1, 1.0, 2),
        (37, 0.7, 3),
        (4096, 1.0, 4),
        (4097, 0.6, 5),
        (13_000, 0.9, 6),
    ] {
        let (x, mask) = case(n, p, seed);
        let xb = emu.up(&x);
        let mb = emu.up(mask.words());
        let got = reduce_scalar(
            emu,
            emu.ptr(&xb),
            DType::F32,
            emu.ptr(&mb),
            n as u64,
            Reduce::Sum,
        )
        .unwrap();
        let want = canonical(Reduce::Sum, &x, &|i| mask.get(i));
        assert!(same(got, want), "n={n}: {got:?} != {want:?}");
        if let (Some(g), Some(r)) = (got, f64_ref(Reduce::Sum, &x, &|i| mask.get(i))) {
            let abs: f64 = (0..n)
                .filter(|&i| mask.get(i))
                .map(|i| x[i].abs() as f64)
                .sum();
            assert!(
                (g as f64 - r).abs() <= abs * 1e-5 + 1e-6,
                "n={n}: {g} vs f64 {r}"
            );
        }
    }
}

pub fn whole_array_every_reduction<B: Dev>(emu: &B) {
    for (n, p, seed) in [
        (1usize, 1.0, 10u64),
        (100, 0.5, 11),
        (9_000, 0.8, 12),
        (50, 0.0, 13),
    ] {
        let (mut x, mask) = case(n, p, seed);
        // keep products finite: values near 1
        let xp: Vec<f32> = x.iter().map(|v| 1.0 + v / 64.0).collect();
        let xb = emu.up(&x);
        let xpb = emu.up(&xp);
        let mb = emu.up(mask.words());
        for red in ALL {
            let (buf, src) = if red == Reduce::Prod {
                (&xpb, &xp)
            } else {
                (&xb, &x)
            };
            let got =
                reduce_scalar(emu, emu.ptr(buf), DType::F32, emu.ptr(&mb), n as u64, red).unwrap();
            let want = canonical(red, src, &|i| mask.get(i));
            assert!(same(got, want), "{red:?} n={n}: {got:?} != {want:?}");
            let r = f64_ref(red, src, &|i| mask.get(i));
            assert_eq!(got.is_some(), r.is_some());
            if let (Some(g), Some(r)) = (got, r) {
                if n > 1 || !matches!(red, Reduce::Var(_)) {
                    let tol = 1e-4 * r.abs().max(1.0);
                    assert!((g as f64 - r).abs() <= tol, "{red:?} n={n}: {g} vs f64 {r}");
                }
            }
        }
        x.clear();
    }
}

/// Per-dim reductions (rows: dim = 1, columns: dim = 0) in f32, f16 and
/// bf16, with the output in the input dtype and the output mask packed on the
/// device from the counts.
pub fn per_dim<B: Dev>(emu: &B, dtype: DType, rows: usize, cols: usize, layout: Layout, seed: u64) {
    let (x32, mask) = case(rows * cols, 0.7, seed);
    // Fully masked first row / column, to check the cleared output bit.
    let mut mask = mask;
    for c in 0..cols {
        mask.set(c, false);
    }
    for r in 0..rows {
        mask.set(r * cols, false);
    }
    // Round to the dtype; the canonical definition sees the widened values.
    let (xw, xb): (Vec<f32>, B::Buf) = match dtype {
        DType::F32 => (x32.clone(), emu.up(&x32)),
        DType::F16 => {
            let h: Vec<half::f16> = x32.iter().map(|&v| half::f16::from_f32(v)).collect();
            (h.iter().map(|v| v.to_f32()).collect(), emu.up(&h))
        }
        DType::F64 => unreachable!("f64 data has its own cases"),
        DType::Bf16 => {
            let h: Vec<half::bf16> = x32.iter().map(|&v| half::bf16::from_f32(v)).collect();
            (h.iter().map(|v| v.to_f32()).collect(), emu.up(&h))
        }
    };
    let mb = emu.up(mask.words());
    let (seqs, len) = match layout {
        Layout::Rows => (rows, cols),
        Layout::Cols => (cols, rows),
    };
    for red in ALL {
        let out = emu.poisoned(seqs * dtype.size());
        let cnt = emu.poisoned(seqs * 8);
        let words = emu.poisoned(seqs.div_ceil(64) * 8);
        reduce(
            emu,
            emu.ptr(&xb),
            dtype,
            emu.ptr(&mb),
            seqs as u64,
            len as u64,
            layout,
            red,
            emu.ptr(&out),
            dtype,
            emu.ptr(&cnt),
        )
        .unwrap();
        maskops::cuda::ops::pack_counts(emu, emu.ptr(&cnt), seqs as u64, emu.ptr(&words)).unwrap();
        let out_mask = Mask::from_words(emu.rd::<u64>(&words), seqs).unwrap();
        let got: Vec<f32> = match dtype {
            DType::F32 => emu.rd::<f32>(&out),
            DType::F16 => emu
                .rd::<u16>(&out)
                .into_iter()
                .map(|b| half::f16::from_bits(b).to_f32())
                .collect(),
            DType::F64 => unreachable!("f64 data has its own cases"),
            DType::Bf16 => emu
                .rd::<u16>(&out)
                .into_iter()
                .map(|b| half::bf16::from_bits(b).to_f32())
                .collect(),
        };
        for s in 0..seqs {
            let idx = |k: usize| match layout {
                Layout::Rows => s * len + k,
                Layout::Cols => k * seqs + s,
            };
            let seq: Vec<f32> = (0..len).map(|k| xw[idx(k)]).collect();
            let keep = |k: usize| mask.get(idx(k));
            let want = canonical(red, &seq, &keep).map(|v| match dtype {
                DType::F32 => v,
                DType::F16 => half::f16::from_f32(v).to_f32(),
                DType::F64 => unreachable!("f64 data has its own cases"),
                DType::Bf16 => half::bf16::from_f32(v).to_f32(),
            });
            let g = out_mask.get(s).then_some(got[s]);
            assert!(
                same(g, want),
                "{dtype:?} {layout:?} {red:?} seq {s}: {g:?} != {want:?}"
            );
            if want.is_none() {
                assert_eq!(got[s].to_bits(), 0, "value under a cleared bit must be 0");
            }
        }
    }
}

pub fn per_row_f32_short_and_long_rows<B: Dev>(emu: &B) {
    per_dim(emu, DType::F32, 5, 70, Layout::Rows, 20);
    per_dim(emu, DType::F32, 2, 9_000, Layout::Rows, 21);
}

pub fn per_col_f32_short_and_long_cols<B: Dev>(emu: &B) {
    per_dim(emu, DType::F32, 33, 7, Layout::Cols, 22);
    per_dim(emu, DType::F32, 8_300, 2, Layout::Cols, 23);
}

pub fn per_dim_half_types<B: Dev>(emu: &B) {
    per_dim(emu, DType::F16, 4, 100, Layout::Rows, 24);
    per_dim(emu, DType::Bf16, 4, 100, Layout::Rows, 25);
    per_dim(emu, DType::F16, 40, 3, Layout::Cols, 26);
    per_dim(emu, DType::Bf16, 40, 3, Layout::Cols, 27);
}

/// argmin / argmax: the first kept position holding the extreme value (NaN
/// is the extreme), per whole array and per dim, in every dtype.
pub fn argmin_argmax<B: Dev>(emu: &B) {
    use maskops::cuda::ops::{argreduce, argreduce_scalar};
    for (dtype, rows, cols, seed) in [
        (DType::F32, 7usize, 300usize, 30u64),
        (DType::F16, 5, 9, 31),
        (DType::Bf16, 3, 4_150, 32),
    ] {
        let n = rows * cols;
        let (x32, mut mask) = case(n, 0.6, seed);
        for c in 0..cols {
            mask.set(c, false); // row 0 fully masked
        }
        // few distinct values so ties happen; one kept NaN in row 2
        let mut xw: Vec<f32> = x32.iter().map(|v| (v * 2.0).round()).collect();
        if rows > 2 {
            if let Some(k) = (0..cols).find(|&k| mask.get(2 * cols + k)) {
                xw[2 * cols + k] = f32::NAN;
            }
        }
        let xb = match dtype {
            DType::F32 => emu.up(&xw),
            DType::F16 => emu.up(&xw
                .iter()
                .map(|&v| half::f16::from_f32(v))
                .collect::<Vec<_>>()),
            DType::F64 => unreachable!("f64 data has its own cases"),
            DType::Bf16 => emu.up(&xw
                .iter()
                .map(|&v| half::bf16::from_f32(v))
                .collect::<Vec<_>>()),
        };
        let mb = emu.up(mask.words());
        let first = |idx: &dyn Fn(usize) -> usize, len: usize, max: bool| -> Option<usize> {
            let mut best: Option<usize> = None;
            for k in 0..len {
                if !mask.get(idx(k)) {
                    continue;
                }
                let v = xw[idx(k)];
                best = match best {
                    None => Some(k),
                    Some(b) => {
                        let bv = xw[idx(b)];
                        let better = if bv.is_nan() {
                            false
                        } else if v.is_nan() {
                            true
                        } else if max {
                            v > bv
                        } else {
                            v < bv
                        };
                        Some(if better { k } else { b })
                    }
                };
            }
            best
        };
        for max in [false, true] {
            let got =
                argreduce_scalar(emu, emu.ptr(&xb), dtype, emu.ptr(&mb), n as u64, max).unwrap();
            assert_eq!(got, first(&|k| k, n, max), "{dtype:?} whole max={max}");
            for (layout, seqs, len) in [(Layout::Rows, rows, cols), (Layout::Cols, cols, rows)] {
                let out = emu.poisoned(seqs * 8);
                argreduce(
                    emu,
                    emu.ptr(&xb),
                    dtype,
                    emu.ptr(&mb),
                    seqs as u64,
                    len as u64,
                    layout,
                    max,
                    emu.ptr(&out),
                    0,
                )
                .unwrap();
                let o = emu.rd::<u64>(&out);
                for s in 0..seqs {
                    let idx = |k: usize| match layout {
                        Layout::Rows => s * len + k,
                        Layout::Cols => k * seqs + s,
                    };
                    let want = first(&idx, len, max).map_or(u64::MAX, |k| k as u64);
                    assert_eq!(o[s], want, "{dtype:?} {layout:?} max={max} seq {s}");
                }
            }
        }
    }
}

/// Edge values: logsumexp of kept infinities / NaN returns the max itself;
/// var/std with count <= correction give no result; norm 0 counts NaN.
pub fn edge_values<B: Dev>(emu: &B) {
    let cases: Vec<(Vec<f32>, Reduce, Option<f32>)> = vec![
        (
            vec![1.0, f32::INFINITY, 2.0],
            Reduce::LogSumExp,
            Some(f32::INFINITY),
        ),
        (
            vec![f32::NEG_INFINITY, f32::NEG_INFINITY],
            Reduce::LogSumExp,
            Some(f32::NEG_INFINITY),
        ),
        (vec![1.0, f32::NAN], Reduce::LogSumExp, Some(f32::NAN)),
        (vec![3.0], Reduce::Var(1), None),
        (vec![3.0, 5.0], Reduce::Std(2), None),
        (vec![3.0, 5.0], Reduce::Var(1), Some(2.0)),
        (vec![0.0, f32::NAN, -2.0, 0.0], Reduce::Norm0, Some(2.0)),
        (vec![-3.0, 0.5, -1.0], Reduce::NormNegInf, Some(0.5)),
        (vec![1.0, f32::NAN, 2.0], Reduce::Amax, Some(f32::NAN)),
    ];
    for (x, red, want) in cases {
        let n = x.len();
        let xb = emu.up(&x);
        let mb = emu.up(Mask::ones(n).words());
        let got =
            reduce_scalar(emu, emu.ptr(&xb), DType::F32, emu.ptr(&mb), n as u64, red).unwrap();
        assert!(same(got, want), "{red:?} of {x:?}: {got:?} != {want:?}");
        assert!(
            same(got, canonical(red, &x, &|_| true)),
            "{red:?} of {x:?}: canonical definition"
        );
    }
}

/// Random shapes (lengths that are not multiples of 64/32/8), random masks,
/// random reductions and dtypes, with the data starting 3 elements into its
/// buffer (an unaligned sub-slice).
pub fn random_shapes_unaligned<B: Dev>(emu: &B) {
    let mut r = Rng(0xfeed);
    for it in 0..12 {
        let rows = 1 + (r.next() % 37) as usize;
        let cols = 1 + (r.next() % 301) as usize;
        let n = rows * cols;
        let keep_p = [0.0, 0.3, 0.9, 1.0][(r.next() % 4) as usize];
        let (x32, mask) = case(n, keep_p, 100 + it);
        let dtype = [DType::F32, DType::F16, DType::Bf16][(r.next() % 3) as usize];
        let red = ALL[(r.next() % ALL.len() as u64) as usize];
        let layout = if r.next().is_multiple_of(2) {
            Layout::Rows
        } else {
            Layout::Cols
        };
        let off = 3usize;
        let (xw, xb): (Vec<f32>, B::Buf) = match dtype {
            DType::F32 => {
                let mut buf = vec![f32::NAN; off];
                buf.extend(&x32);
                (x32.clone(), emu.up(&buf))
            }
            DType::F16 => {
                let h: Vec<half::f16> = x32.iter().map(|&v| half::f16::from_f32(v)).collect();
                let mut buf = vec![half::f16::NAN; off];
                buf.extend(&h);
                (h.iter().map(|v| v.to_f32()).collect(), emu.up(&buf))
            }
            DType::F64 => unreachable!("f64 data has its own cases"),
            DType::Bf16 => {
                let h: Vec<half::bf16> = x32.iter().map(|&v| half::bf16::from_f32(v)).collect();
                let mut buf = vec![half::bf16::NAN; off];
                buf.extend(&h);
                (h.iter().map(|v| v.to_f32()).collect(), emu.up(&buf))
            }
        };
        let xp = emu.ptr(&xb) + (off * dtype.size()) as u64;
        let mb = emu.up(mask.words());
        let (seqs, len) = match layout {
            Layout::Rows => (rows, cols),
            Layout::Cols => (cols, rows),
        };
        let out = emu.poisoned(seqs * 4);
        let cnt = emu.poisoned(seqs * 8);
        reduce(
            emu,
            xp,
            dtype,
            emu.ptr(&mb),
            seqs as u64,
            len as u64,
            layout,
            red,
            emu.ptr(&out),
            DType::F32,
            emu.ptr(&cnt),
        )
        .unwrap();
        let (o, c) = (emu.rd::<f32>(&out), emu.rd::<u64>(&cnt));
        for s in 0..seqs {
            let idx = |k: usize| match layout {
                Layout::Rows => s * len + k,
                Layout::Cols => k * seqs + s,
            };
            let seq: Vec<f32> = (0..len).map(|k| xw[idx(k)]).collect();
            let want = canonical(red, &seq, &|k| mask.get(idx(k)));
            let got = (c[s] > 0).then_some(o[s]);
            assert!(
                same(got, want),
                "it {it}: {dtype:?} {layout:?} {red:?} {rows}x{cols} seq {s}: {got:?} != {want:?}"
            );
        }
    }
}

fn nmax64(a: f64, b: f64) -> f64 {
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
fn nmin64(a: f64, b: f64) -> f64 {
    if a.is_nan() {
        a
    } else if b.is_nan() {
        b
    } else if a < b {
        a
    } else {
        b
    }
}

/// The canonical definition for f64 data (f64 accumulator).
fn canonical64(red: Reduce, x: &[f64], keep: &dyn Fn(usize) -> bool) -> Option<f64> {
    let n = x.len();
    let count = (0..n).filter(|&i| keep(i)).count();
    if count == 0 {
        return None;
    }
    let sum = |f: &dyn Fn(f64) -> f64| canonical_fold(n, 0.0f64, keep, |i| f(x[i]), |a, b| a + b);
    Some(match red {
        Reduce::Sum => sum(&|v| v),
        Reduce::Mean => sum(&|v| v) / count as f64,
        Reduce::Prod => canonical_fold(n, 1.0f64, keep, |i| x[i], |a, b| a * b),
        Reduce::Amin => canonical_fold(n, f64::INFINITY, keep, |i| x[i], nmin64),
        Reduce::Amax => canonical_fold(n, f64::NEG_INFINITY, keep, |i| x[i], nmax64),
        Reduce::Var(c) | Reduce::Std(c) => {
            if count as u32 <= c {
                return None;
            }
            let m = sum(&|v| v) / count as f64;
            let var = sum(&|v| (v - m) * (v - m)) / (count as u32 - c) as f64;
            if matches!(red, Reduce::Std(_)) {
                var.sqrt()
            } else {
                var
            }
        }
        Reduce::Norm1 => sum(&|v| v.abs()),
        Reduce::Norm2 => sum(&|v| v * v).sqrt(),
        Reduce::NormInf => canonical_fold(n, f64::NEG_INFINITY, keep, |i| x[i].abs(), nmax64),
        Reduce::NormNegInf => canonical_fold(n, f64::INFINITY, keep, |i| x[i].abs(), nmin64),
        Reduce::Norm0 => sum(&|v| if v != 0.0 { 1.0 } else { 0.0 }),
        Reduce::LogSumExp => {
            let m = canonical_fold(n, f64::NEG_INFINITY, keep, |i| x[i], nmax64);
            if !m.is_finite() {
                return Some(m);
            }
            m + sum(&|v| (v - m).exp()).ln()
        }
    })
}

/// f64 data: every reduction, whole array and per dim, bit for bit in the
/// canonical order with f64 accumulators (logsumexp within 4 ulp: it uses
/// the platform's f64 exp/ln, which a GPU computes differently from libm).
pub fn f64_reductions<B: Dev>(emu: &B) {
    use maskops::cuda::ops::reduce_scalar_f64;
    for (rows, cols, layout, seed) in [
        (3usize, 5_000usize, Layout::Rows, 40u64),
        (70, 3, Layout::Cols, 41),
        (1, 37, Layout::Rows, 42),
    ] {
        let n = rows * cols;
        let (x32, mask) = case(n, 0.7, seed);
        let x: Vec<f64> = x32
            .iter()
            .enumerate()
            .map(|(i, &v)| v as f64 * (1.0 + 1e-9 * i as f64))
            .collect();
        let xb = emu.up(&x);
        let mb = emu.up(mask.words());
        let (seqs, len) = match layout {
            Layout::Rows => (rows, cols),
            Layout::Cols => (cols, rows),
        };
        let close = |red: Reduce, a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if red == Reduce::LogSumExp => {
                (a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1.0)
            }
            (Some(a), Some(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            (None, None) => true,
            _ => false,
        };
        for max in [false, true] {
            let got = maskops::cuda::ops::argreduce_scalar(
                emu,
                emu.ptr(&xb),
                DType::F64,
                emu.ptr(&mb),
                n as u64,
                max,
            )
            .unwrap();
            let mut best: Option<usize> = None;
            for i in (0..n).filter(|&i| mask.get(i)) {
                best = match best {
                    Some(b) if !(if max { x[i] > x[b] } else { x[i] < x[b] }) => Some(b),
                    _ => Some(i),
                };
            }
            assert_eq!(got, best, "f64 arg max={max}");
        }
        for red in ALL {
            let (src, buf): (Vec<f64>, _) = if red == Reduce::Prod {
                let xp: Vec<f64> = x.iter().map(|v| 1.0 + v / 64.0).collect();
                let b = emu.up(&xp);
                (xp, Some(b))
            } else {
                (x.clone(), None)
            };
            let xp = buf.as_ref().map_or(emu.ptr(&xb), |b| emu.ptr(b));
            let got = reduce_scalar_f64(emu, xp, DType::F64, emu.ptr(&mb), n as u64, red).unwrap();
            let want = canonical64(red, &src, &|i| mask.get(i));
            assert!(
                close(red, got, want),
                "f64 whole {red:?}: {got:?} != {want:?}"
            );
            let out = emu.poisoned(seqs * 8);
            let cnt = emu.poisoned(seqs * 8);
            reduce(
                emu,
                xp,
                DType::F64,
                emu.ptr(&mb),
                seqs as u64,
                len as u64,
                layout,
                red,
                emu.ptr(&out),
                DType::F64,
                emu.ptr(&cnt),
            )
            .unwrap();
            let (o, c) = (emu.rd::<f64>(&out), emu.rd::<u64>(&cnt));
            for s in 0..seqs {
                let idx = |k: usize| match layout {
                    Layout::Rows => s * len + k,
                    Layout::Cols => k * seqs + s,
                };
                let seq: Vec<f64> = (0..len).map(|k| src[idx(k)]).collect();
                let want = canonical64(red, &seq, &|k| mask.get(idx(k)));
                let got = (c[s] > 0).then_some(o[s]);
                assert!(
                    close(red, got, want),
                    "f64 {layout:?} {red:?} seq {s}: {got:?} != {want:?}"
                );
            }
        }
    }
}

/// Kept counts are 64-bit: partial counts summing to 2^32 (more kept
/// elements than a `u32` holds, as an 80 GB card's f16 array can have) give
/// the count 2^32 and the mean `sum / 2^32`, not a wrapped count of 0 (which
/// would read as "nothing kept"). The fold and finalize kernels are
/// launched directly on synthetic partials: 2^32 real elements would not
/// fit the emulator.
pub fn counts_past_u32_do_not_wrap<B: Dev>(emu: &B) {
    use maskops::cuda::plan::{Arg, Launch};
    let (p2, nb) = (4u64, 3u64);
    let part = emu.up(&[6.0f32, 2.0, 8.0, 0.0]);
    let cnt = emu.up(&[u32::MAX as u64, 1, 1 << 32, 0]);
    // kind 0 = sum (ops::Kind::Sum)
    emu.launch(
        &Launch::linear(
            "maskops_reduce_fold".into(),
            1,
            32,
            vec![
                Arg::Ptr(emu.ptr(&part)),
                Arg::Ptr(emu.ptr(&cnt)),
                Arg::U64(p2),
                Arg::U64(nb),
                Arg::I32(0),
            ],
        )
        .unwrap(),
    )
    .unwrap();
    let total = (1u64 << 33) as f32;
    for (fin, corr, want) in [
        (1, 0u32, 16.0f32 / total),               // mean
        (2, 1, 16.0 / ((1u64 << 33) - 1) as f32), // var, correction 1
    ] {
        let out = emu.poisoned(4);
        let out_cnt = emu.poisoned(8);
        emu.launch(
            &Launch::linear(
                "maskops_reduce_finalize".into(),
                1,
                32,
                vec![
                    Arg::Ptr(emu.ptr(&part)),
                    Arg::Ptr(emu.ptr(&cnt)),
                    Arg::U64(1),
                    Arg::U64(p2),
                    Arg::I32(fin),
                    Arg::Ptr(0),
                    Arg::U32(corr),
                    Arg::Ptr(emu.ptr(&out)),
                    Arg::I32(DType::F32.code()),
                    Arg::Ptr(emu.ptr(&out_cnt)),
                ],
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(emu.rd::<u64>(&out_cnt)[0], 1 << 33, "fin {fin}: the count");
        assert_eq!(
            emu.rd::<f32>(&out)[0].to_bits(),
            want.to_bits(),
            "fin {fin}"
        );
    }
}

/// A device mask's kept count, counted on the device, is its popcount.
pub fn mask_count_matches_popcount<B: Dev>(emu: &B) {
    for (k, len) in [0usize, 1, 63, 64, 65, 1000, 100_003]
        .into_iter()
        .enumerate()
    {
        let m = Mask::random(len, 0.3, 40 + k as u64);
        let w = emu.up(if len == 0 { &[0u64][..] } else { m.words() });
        let got =
            maskops::cuda::ops::mask_count(emu, emu.ptr(&w), len.div_ceil(64) as u64).unwrap();
        assert_eq!(got, m.count_ones() as u64, "len {len}");
    }
}
