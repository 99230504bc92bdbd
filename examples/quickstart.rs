//! The gene-expression masking workflow end to end on synthetic data made
//! in-process: a cells x genes expression matrix, a mask composed from whole
//! cells, whole genes and random entries (row, column and random masks
//! ANDed, `MaskBuilder`), a small low-rank
//! linear model that reconstructs the *hidden* entries from the visible
//! ones, trained with masked MSE on `!mask` and Adagrad, and the masked
//! per-gene statistics at the end.
//!
//! Run: `cargo run --release --example quickstart`

use maskops::loss::{self, Reduction};
use maskops::mask::uniform;
use maskops::optim::Adagrad;
use maskops::{MaskBuilder, MaskedView};
use std::time::Instant;

const CELLS: usize = 2048;
const GENES: usize = 512;
const RANK: usize = 8; // rank of the synthetic expression programme
const HIDDEN: usize = 16; // width of the model's bottleneck

/// A standard normal from the crate's counter-based generator (Box-Muller).
fn normal(seed: u64, i: u64) -> f32 {
    let u1 = uniform(seed, 10, i).max(1e-300);
    let u2 = uniform(seed, 11, i);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// `c[m x n] = a[m x k] * b[k x n]` (row-major, plain loops; the model is tiny).
fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    for i in 0..m {
        let ci = &mut c[i * n..(i + 1) * n];
        for p in 0..k {
            let aip = a[i * k + p];
            if aip == 0.0 {
                continue;
            }
            for (cv, &bv) in ci.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *cv += aip * bv;
            }
        }
    }
    c
}

/// `a^T` for a row-major `m x n` matrix.
fn transpose(a: &[f32], m: usize, n: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            t[j * m + i] = a[i * n + j];
        }
    }
    t
}

fn main() -> maskops::Result<()> {
    let t0 = Instant::now();

    // 1. Synthetic expression: a rank-8 programme plus noise.
    let u: Vec<f32> = (0..CELLS * RANK).map(|i| normal(1, i as u64)).collect();
    let v: Vec<f32> = (0..RANK * GENES)
        .map(|i| normal(2, i as u64) / (RANK as f32).sqrt())
        .collect();
    let mut expr = matmul(&u, &v, CELLS, RANK, GENES);
    for (i, x) in expr.iter_mut().enumerate() {
        *x += 0.1 * normal(3, i as u64);
    }

    // 2. The mask: 10% of cells, 5% of genes and 25% of entries hidden (bit = 1 keeps).
    let mask = MaskBuilder::new(CELLS, GENES)
        .mask_rows(0.10)
        .mask_cols(0.05)
        .mask_random(0.25)
        .seed(7)
        .build();
    let hidden = mask.not(); // the loss is computed on what was hidden
    println!(
        "expression {CELLS} x {GENES}: {} entries visible, {} hidden",
        mask.count_ones(),
        hidden.count_ones()
    );

    // The model sees the visible entries only (hidden ones filled with 0).
    let visible = MaskedView::matrix(&expr, &mask, CELLS, GENES)?;
    let input = visible.to_dense(0.0);

    // 3. Model: x_hat = input * A * B + bias, A: GENES x HIDDEN, B: HIDDEN x GENES.
    let mut a: Vec<f32> = (0..GENES * HIDDEN)
        .map(|i| 0.05 * normal(4, i as u64))
        .collect();
    let mut b: Vec<f32> = (0..HIDDEN * GENES)
        .map(|i| 0.05 * normal(5, i as u64))
        .collect();
    let mut bias = vec![0.0f32; GENES];
    let opt = Adagrad {
        lr: 0.05,
        ..Default::default()
    };
    let (mut sa, mut sb, mut sbias) = (opt.state(a.len()), opt.state(b.len()), opt.state(GENES));
    let input_t = transpose(&input, CELLS, GENES);

    let mut first = None;
    let mut last = 0.0;
    // the loss gradient's buffer, held across steps (`mse_into`): a fresh
    // one per step would cost its page faults every epoch
    let mut g = vec![0.0f32; CELLS * GENES];
    for epoch in 0..=40 {
        // forward
        let z = matmul(&input, &a, CELLS, GENES, HIDDEN); // CELLS x HIDDEN
        let mut pred = matmul(&z, &b, CELLS, HIDDEN, GENES);
        for row in pred.chunks_mut(GENES) {
            for (p, &c) in row.iter_mut().zip(&bias) {
                *p += c;
            }
        }
        // masked MSE on the hidden entries, with its gradient in the same pass
        let value = loss::mse_into(&pred, &expr, &hidden, Reduction::Mean, &mut g)?[0];
        first.get_or_insert(value);
        last = value;
        if epoch % 5 == 0 {
            println!("epoch {epoch:>3}  masked MSE on hidden entries = {value:.5}");
        }
        // backward: G = dL/dpred (zero outside `hidden`)
        let g = &g;
        let mut gbias = vec![0.0f32; GENES];
        for row in g.chunks(GENES) {
            for (gb, &gv) in gbias.iter_mut().zip(row) {
                *gb += gv;
            }
        }
        let gb = matmul(&transpose(&z, CELLS, HIDDEN), g, HIDDEN, CELLS, GENES);
        let gz = matmul(g, &transpose(&b, HIDDEN, GENES), CELLS, GENES, HIDDEN);
        let ga = matmul(&input_t, &gz, GENES, CELLS, HIDDEN);
        opt.step_dense(&mut a, &ga, &mut sa)?;
        opt.step_dense(&mut b, &gb, &mut sb)?;
        opt.step_dense(&mut bias, &gbias, &mut sbias)?;
    }
    let first = first.unwrap_or(0.0);
    println!(
        "loss fell from {first:.5} to {last:.5} ({:.1}% lower)",
        100.0 * (1.0 - last / first)
    );

    // 4. Masked statistics of the visible data: per-gene mean over visible cells.
    let gene_mean = visible.mean_dim(0)?;
    let fully_masked: Vec<usize> = (0..GENES).filter(|&j| gene_mean.get(j).is_none()).collect();
    println!(
        "per-gene masked mean: {} genes have visible cells; {} genes are fully masked (no mean, not NaN): {:?}{}",
        GENES - fully_masked.len(),
        fully_masked.len(),
        &fully_masked[..fully_masked.len().min(10)],
        if fully_masked.len() > 10 { " …" } else { "" }
    );
    for j in (0..GENES).filter(|j| gene_mean.get(*j).is_some()).take(3) {
        println!("  gene {j:>3}: mean {:.4}", gene_mean.values[j]);
    }
    let cell_var = visible.var_dim(1, 1)?;
    println!(
        "per-cell masked variance: {} of {CELLS} cells defined",
        cell_var.mask.count_ones()
    );
    println!("done in {:.2} s", t0.elapsed().as_secs_f64());
    Ok(())
}
