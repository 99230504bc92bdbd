//! Adagrad (kernels/adagrad.cu) under the host emulator through the launch
//! plans of `maskops::cuda::ops`: dense, masked, sparse COO with duplicates
//! (device sort + segmented sum) and row-sparse, bit for bit against the
//! CPU update rule (transcribed here), within a tolerance against f64.

use super::{Dev, NanClass};
use maskops::cuda::ops::{adagrad_dense, adagrad_rows, adagrad_sparse, AdagradStep};
use maskops::cuda::plan::DType;
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

/// The CPU element update (src/optim), in f32.
fn update(p: &mut f32, s: &mut f32, g: f32, h: &AdagradStep) {
    let g = if h.maximize { -g } else { g };
    let g = if h.weight_decay != 0.0 {
        g + (h.weight_decay as f32) * *p
    } else {
        g
    };
    *s += g * g;
    *p -= ((h.clr as f32) * g) / (s.sqrt() + h.eps as f32);
}

/// f64 version for the tolerance check.
fn update64(p: &mut f64, s: &mut f64, g: f64, lr: f64, wd: f64, eps: f64, maximize: bool) {
    let g = if maximize { -g } else { g };
    let g = g + wd * *p;
    *s += g * g;
    *p -= lr * g / (s.sqrt() + eps);
}

fn steps() -> Vec<(AdagradStep, f64, f64, bool)> {
    vec![
        (
            AdagradStep::new(0.1, 0.0, 0.0, 1e-10, false, 1),
            0.1,
            0.0,
            false,
        ),
        (
            AdagradStep::new(0.05, 0.01, 0.01, 1e-8, false, 3),
            0.05 / 1.02,
            0.01,
            false,
        ),
        (
            AdagradStep::new(0.1, 0.0, 0.0, 1e-10, true, 2),
            0.1,
            0.0,
            true,
        ),
    ]
}

pub fn dense_and_masked<B: Dev>(emu: &B) {
    let n = 1_000;
    let mut r = Rng(1);
    let p0: Vec<f32> = (0..n).map(|_| r.f32(-1.0, 1.0)).collect();
    let s0: Vec<f32> = (0..n).map(|_| r.f32(0.0, 0.5)).collect();
    let mask = Mask::random(n, 0.4, 9);
    let g: Vec<f32> = (0..n)
        .map(|i| {
            if !mask.get(i) && i % 3 == 0 {
                f32::NAN
            } else {
                r.f32(-2.0, 2.0)
            }
        })
        .collect();
    for (h, lr, wd, mx) in steps() {
        for masked in [false, true] {
            let (pb, sb, gb, mb) = (emu.up(&p0), emu.up(&s0), emu.up(&g), emu.up(mask.words()));
            let mp = if masked { emu.ptr(&mb) } else { 0 };
            adagrad_dense(
                emu,
                DType::F32,
                emu.ptr(&pb),
                emu.ptr(&sb),
                emu.ptr(&gb),
                mp,
                n as u64,
                &h,
            )
            .unwrap();
            let (pg, sg) = (emu.rd::<f32>(&pb), emu.rd::<f32>(&sb));
            for i in 0..n {
                let (mut p, mut s) = (p0[i], s0[i]);
                let (mut p64, mut s64) = (p0[i] as f64, s0[i] as f64);
                if !masked || mask.get(i) {
                    update(&mut p, &mut s, g[i], &h);
                    update64(&mut p64, &mut s64, g[i] as f64, lr, wd, h.eps as f64, mx);
                }
                assert_eq!(
                    (pg[i].key(), sg[i].key()),
                    (p.key(), s.key()),
                    "masked={masked} i={i}"
                );
                if p64.is_nan() {
                    assert!(pg[i].is_nan(), "i={i}: a kept NaN gradient gives NaN");
                } else {
                    assert!(
                        (pg[i] as f64 - p64).abs() <= 1e-5 * p64.abs().max(1.0),
                        "i={i}: {} vs {p64}",
                        pg[i]
                    );
                }
            }
        }
    }
}

pub fn sparse_coo_sums_duplicates_in_order_of_appearance<B: Dev>(emu: &B) {
    for (n, nnz, seed) in [(50usize, 1usize, 2u64), (50, 200, 3), (300, 250, 4)] {
        let mut r = Rng(seed);
        let p0: Vec<f32> = (0..n).map(|_| r.f32(-1.0, 1.0)).collect();
        let s0: Vec<f32> = (0..n).map(|_| r.f32(0.0, 0.5)).collect();
        let idx: Vec<u64> = (0..nnz).map(|_| r.next() % n as u64).collect();
        let vals: Vec<f32> = (0..nnz).map(|_| r.f32(-1.0, 1.0)).collect();
        for (h, ..) in steps() {
            let (pb, sb) = (emu.up(&p0), emu.up(&s0));
            let (ib, vb) = (emu.up(&idx), emu.up(&vals));
            adagrad_sparse(
                emu,
                DType::F32,
                emu.ptr(&pb),
                emu.ptr(&sb),
                emu.ptr(&ib),
                emu.ptr(&vb),
                nnz as u64,
                &h,
            )
            .unwrap();
            // CPU: coalesce in order of appearance (first value, then +=), then update
            let mut acc: Vec<Option<f32>> = vec![None; n];
            for (k, &i) in idx.iter().enumerate() {
                let i = i as usize;
                acc[i] = Some(match acc[i] {
                    None => vals[k],
                    Some(a) => a + vals[k],
                });
            }
            let (mut p, mut s) = (p0.clone(), s0.clone());
            for i in 0..n {
                if let Some(g) = acc[i] {
                    update(&mut p[i], &mut s[i], g, &h);
                }
            }
            let (pg, sg) = (emu.rd::<f32>(&pb), emu.rd::<f32>(&sb));
            for i in 0..n {
                assert_eq!(
                    (pg[i].key(), sg[i].key()),
                    (p[i].key(), s[i].key()),
                    "n={n} nnz={nnz} i={i}"
                );
            }
        }
    }
}

pub fn row_sparse_embedding_gradient<B: Dev>(emu: &B) {
    let (rows, cols, nnz) = (20usize, 7usize, 45usize);
    let mut r = Rng(5);
    let p0: Vec<f32> = (0..rows * cols).map(|_| r.f32(-1.0, 1.0)).collect();
    let s0 = vec![0.0f32; rows * cols];
    let ridx: Vec<u64> = (0..nnz).map(|_| r.next() % rows as u64).collect();
    let vals: Vec<f32> = (0..nnz * cols).map(|_| r.f32(-1.0, 1.0)).collect();
    let h = AdagradStep::new(0.1, 0.0, 0.01, 1e-10, false, 1);
    let (pb, sb, ib, vb) = (emu.up(&p0), emu.up(&s0), emu.up(&ridx), emu.up(&vals));
    adagrad_rows(
        emu,
        DType::F32,
        emu.ptr(&pb),
        emu.ptr(&sb),
        cols as u64,
        emu.ptr(&ib),
        emu.ptr(&vb),
        nnz as u64,
        &h,
    )
    .unwrap();
    let mut acc: Vec<Option<Vec<f32>>> = vec![None; rows];
    for (k, &row) in ridx.iter().enumerate() {
        let v = &vals[k * cols..(k + 1) * cols];
        let a = &mut acc[row as usize];
        match a {
            None => *a = Some(v.to_vec()),
            Some(a) => a.iter_mut().zip(v).for_each(|(a, b)| *a += b),
        }
    }
    let (mut p, mut s) = (p0.clone(), s0.clone());
    for row in 0..rows {
        if let Some(g) = &acc[row] {
            for c in 0..cols {
                update(&mut p[row * cols + c], &mut s[row * cols + c], g[c], &h);
            }
        }
    }
    let (pg, sg) = (emu.rd::<f32>(&pb), emu.rd::<f32>(&sb));
    for i in 0..rows * cols {
        assert_eq!(
            (pg[i].key(), sg[i].key()),
            (p[i].key(), s[i].key()),
            "entry {i}"
        );
    }
}

/// Row-wise Adagrad, transcribing the CPU's `RowwiseAdagrad` (canonical
/// sum of squares per row), dense and row-sparse with duplicates, short and
/// long rows.
pub fn rowwise_dense_and_sparse<B: Dev>(emu: &B) {
    use maskops::canonical::canonical_fold;
    use maskops::cuda::ops::adagrad_rowwise;
    for (rows, cols, nnz, sparse, seed) in [
        (6usize, 9usize, 6usize, false, 6u64),
        (12, 40, 30, true, 7),
        (3, 4_200, 4, true, 8),
    ] {
        let mut r = Rng(seed);
        let p0: Vec<f32> = (0..rows * cols).map(|_| r.f32(-1.0, 1.0)).collect();
        let s0: Vec<f32> = (0..rows).map(|_| r.f32(0.0, 0.5)).collect();
        let ridx: Vec<u64> = if sparse {
            (0..nnz).map(|_| r.next() % rows as u64).collect()
        } else {
            (0..rows as u64).collect()
        };
        let vals: Vec<f32> = (0..nnz * cols).map(|_| r.f32(-1.0, 1.0)).collect();
        for h in [
            AdagradStep::new(0.1, 0.0, 0.0, 1e-10, false, 1),
            AdagradStep::new(0.05, 0.0, 0.01, 1e-8, true, 2),
        ] {
            let (pb, sb, ib, vb) = (emu.up(&p0), emu.up(&s0), emu.up(&ridx), emu.up(&vals));
            let ip = if sparse { emu.ptr(&ib) } else { 0 };
            adagrad_rowwise(
                emu,
                DType::F32,
                emu.ptr(&pb),
                emu.ptr(&sb),
                cols as u64,
                ip,
                emu.ptr(&vb),
                nnz as u64,
                &h,
            )
            .unwrap();
            // CPU
            let mut runs: Vec<Option<Vec<usize>>> = vec![None; rows];
            for (k, &row) in ridx.iter().enumerate() {
                runs[row as usize].get_or_insert_with(Vec::new).push(k);
            }
            let (mut p, mut s) = (p0.clone(), s0.clone());
            for row in 0..rows {
                let Some(items) = &runs[row] else { continue };
                let grad = |j: usize, pj: f32| {
                    let mut g = vals[items[0] * cols + j];
                    for &k in &items[1..] {
                        g += vals[k * cols + j];
                    }
                    let g = if h.maximize { -g } else { g };
                    if h.weight_decay != 0.0 {
                        g + (h.weight_decay as f32) * pj
                    } else {
                        g
                    }
                };
                let pr = &mut p[row * cols..(row + 1) * cols];
                let sq = canonical_fold(
                    cols,
                    0.0f32,
                    |_| true,
                    |j| {
                        let g = grad(j, pr[j]);
                        g * g
                    },
                    |a, b| a + b,
                );
                let ns = s[row] + sq / cols as f32;
                s[row] = ns;
                let mult = (h.clr as f32) / (ns.sqrt() + h.eps as f32);
                for j in 0..cols {
                    let g = grad(j, pr[j]);
                    pr[j] -= mult * g;
                }
            }
            let (pg, sg) = (emu.rd::<f32>(&pb), emu.rd::<f32>(&sb));
            for i in 0..rows * cols {
                assert_eq!(pg[i].key(), p[i].key(), "rows={rows} cols={cols} param {i}");
            }
            for i in 0..rows {
                assert_eq!(sg[i].key(), s[i].key(), "rows={rows} cols={cols} sum {i}");
            }
        }
    }
}

/// f64 parameters and state: dense, masked, sparse COO with duplicates and
/// row-wise, bit for bit against the CPU rule in f64.
pub fn f64_parameters<B: Dev>(emu: &B) {
    use maskops::canonical::canonical_fold;
    use maskops::cuda::ops::adagrad_rowwise;
    fn upd(p: &mut f64, s: &mut f64, g: f64, h: &AdagradStep) {
        let g = if h.maximize { -g } else { g };
        let g = if h.weight_decay != 0.0 {
            g + h.weight_decay * *p
        } else {
            g
        };
        *s += g * g;
        *p -= (h.clr * g) / (s.sqrt() + h.eps);
    }
    let mut r = Rng(77);
    let n = 300usize;
    let p0: Vec<f64> = (0..n).map(|_| r.f32(-1.0, 1.0) as f64 / 3.0).collect();
    let s0: Vec<f64> = (0..n).map(|_| r.f32(0.0, 0.5) as f64).collect();
    let g: Vec<f64> = (0..n).map(|_| r.f32(-2.0, 2.0) as f64 / 7.0).collect();
    let mask = Mask::random(n, 0.4, 78);
    let h = AdagradStep::new(0.05, 0.01, 0.01, 1e-10, false, 3);
    for masked in [false, true] {
        let (pb, sb, gb, mb) = (emu.up(&p0), emu.up(&s0), emu.up(&g), emu.up(mask.words()));
        let mp = if masked { emu.ptr(&mb) } else { 0 };
        adagrad_dense(
            emu,
            DType::F64,
            emu.ptr(&pb),
            emu.ptr(&sb),
            emu.ptr(&gb),
            mp,
            n as u64,
            &h,
        )
        .unwrap();
        let (pg, sg) = (emu.rd::<f64>(&pb), emu.rd::<f64>(&sb));
        for i in 0..n {
            let (mut p, mut s) = (p0[i], s0[i]);
            if !masked || mask.get(i) {
                upd(&mut p, &mut s, g[i], &h);
            }
            assert_eq!(
                (pg[i].key(), sg[i].key()),
                (p.key(), s.key()),
                "f64 masked={masked} i={i}"
            );
        }
    }
    // sparse COO with duplicates
    let nnz = 200usize;
    let idx: Vec<u64> = (0..nnz).map(|_| r.next() % 50).collect();
    let vals: Vec<f64> = (0..nnz).map(|_| r.f32(-1.0, 1.0) as f64 / 3.0).collect();
    let (pb, sb, ib, vb) = (emu.up(&p0), emu.up(&s0), emu.up(&idx), emu.up(&vals));
    adagrad_sparse(
        emu,
        DType::F64,
        emu.ptr(&pb),
        emu.ptr(&sb),
        emu.ptr(&ib),
        emu.ptr(&vb),
        nnz as u64,
        &h,
    )
    .unwrap();
    let mut acc: Vec<Option<f64>> = vec![None; n];
    for (k, &i) in idx.iter().enumerate() {
        let a = &mut acc[i as usize];
        *a = Some(a.map_or(vals[k], |a| a + vals[k]));
    }
    let (mut p, mut s) = (p0.clone(), s0.clone());
    for i in 0..n {
        if let Some(gv) = acc[i] {
            upd(&mut p[i], &mut s[i], gv, &h);
        }
    }
    let (pg, sg) = (emu.rd::<f64>(&pb), emu.rd::<f64>(&sb));
    for i in 0..n {
        assert_eq!(
            (pg[i].key(), sg[i].key()),
            (p[i].key(), s[i].key()),
            "f64 sparse i={i}"
        );
    }
    // row-wise, dense form: 10 rows of 30
    let (rows, cols) = (10usize, 30usize);
    let rs0: Vec<f64> = (0..rows).map(|_| r.f32(0.0, 0.5) as f64).collect();
    let (pb, sb, vb) = (emu.up(&p0), emu.up(&rs0), emu.up(&g));
    adagrad_rowwise(
        emu,
        DType::F64,
        emu.ptr(&pb),
        emu.ptr(&sb),
        cols as u64,
        0,
        emu.ptr(&vb),
        rows as u64,
        &h,
    )
    .unwrap();
    let (mut p, mut s) = (p0.clone(), rs0.clone());
    for row in 0..rows {
        let grad = |j: usize, pj: f64| g[row * cols + j] + h.weight_decay * pj;
        let pr = &mut p[row * cols..(row + 1) * cols];
        let sq = canonical_fold(
            cols,
            0.0f64,
            |_| true,
            |j| grad(j, pr[j]) * grad(j, pr[j]),
            |a, b| a + b,
        );
        let ns = s[row] + sq / cols as f64;
        s[row] = ns;
        let mult = h.clr / (ns.sqrt() + h.eps);
        for j in 0..cols {
            let gj = grad(j, pr[j]);
            pr[j] -= mult * gj;
        }
    }
    let (pg, sg) = (emu.rd::<f64>(&pb), emu.rd::<f64>(&sb));
    for i in 0..rows * cols {
        assert_eq!(pg[i].key(), p[i].key(), "f64 rowwise param {i}");
    }
    for i in 0..rows {
        assert_eq!(sg[i].key(), s[i].key(), "f64 rowwise sum {i}");
    }
}
