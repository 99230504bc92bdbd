//! An embedding-table recommender trained with sparse Adagrad, twice: once
//! with `Adagrad::step_rows` (the looked-up row ids and one gradient row per
//! lookup — what an embedding lookup's backward produces) and once with
//! `Adagrad::step_sparse` on a `sprs::TriMat` built from the same gradient
//! every step. Both see the same batches from the same initial table.
//!
//! The model: a 100 000 x 32 item table `E`, trained; a 4 096 x 32 user table
//! `U`, frozen (a user tower trained elsewhere). A lookup `(user, item)`
//! predicts `<U[user], E[item]>`; the synthetic rating is
//! `<U[user], T[item]> + noise` for a hidden item table `T`. Items are drawn
//! from a skewed popularity (a few items are in almost every batch, so a
//! batch holds many duplicate rows). The loss is the MSE of the ratings.
//!
//! Printed: the loss falling (training batches and a held-out batch), the
//! steps per second and the optimizer's nanoseconds per gradient entry of
//! each run, the cost of building the `TriMat`, the measured ratio, and
//! whether the two final tables are equal.
//!
//! Run: `cargo run --release --example embedding`

use maskops::loss::{self, Reduction};
use maskops::mask::uniform;
use maskops::optim::{Adagrad, AdagradState};
use maskops::sprs::TriMat;
use maskops::Mask;
use std::time::{Duration, Instant};

const ITEMS: usize = 100_000;
const USERS: usize = 4_096;
const DIM: usize = 32;
const BATCH: usize = 4_096;
const STEPS: usize = 300;
const NOISE: f32 = 0.1;
/// Items below this id are the "head": about 32% of all lookups.
const HEAD: usize = 1_000;

/// A standard normal from the crate's counter-based generator (Box-Muller).
fn normal(seed: u64, i: u64) -> f32 {
    let u1 = uniform(seed, 10, i).max(1e-300);
    let u2 = uniform(seed, 11, i);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// One batch of lookups: `(user, item)` pairs and their ratings.
struct Batch {
    users: Vec<usize>,
    items: Vec<usize>,
    ratings: Vec<f32>,
}

/// Batch `b` (the same for both runs). Items follow a skewed popularity:
/// `item = ITEMS * u^4`, so item 0..100 take about 18% of all lookups.
fn batch(b: u64, users: &[f32], truth: &[f32]) -> Batch {
    let base = b * BATCH as u64;
    let users_ids: Vec<usize> = (0..BATCH as u64)
        .map(|k| (uniform(20, 0, base + k) * USERS as f64) as usize)
        .collect();
    let items: Vec<usize> = (0..BATCH as u64)
        .map(|k| ((uniform(21, 0, base + k).powi(4) * ITEMS as f64) as usize).min(ITEMS - 1))
        .collect();
    let ratings = users_ids
        .iter()
        .zip(&items)
        .enumerate()
        .map(|(k, (&u, &i))| {
            dot(
                &users[u * DIM..(u + 1) * DIM],
                &truth[i * DIM..(i + 1) * DIM],
            ) + NOISE * normal(22, base + k as u64)
        })
        .collect();
    Batch {
        users: users_ids,
        items,
        ratings,
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Forward and backward of one batch: fills `pred`, `dpred` and the gradient
/// rows `grad_rows` (`BATCH x DIM`: row `k` is `dL/dE[items[k]]` of lookup
/// `k`); returns the mean squared error.
fn forward_backward(
    table: &[f32],
    users: &[f32],
    b: &Batch,
    all: &Mask,
    pred: &mut [f32],
    dpred: &mut [f32],
    grad_rows: &mut [f32],
) -> f32 {
    for (k, p) in pred.iter_mut().enumerate() {
        let (u, i) = (b.users[k], b.items[k]);
        *p = dot(
            &users[u * DIM..(u + 1) * DIM],
            &table[i * DIM..(i + 1) * DIM],
        );
    }
    let value = loss::mse_into(pred, &b.ratings, all, Reduction::Mean, dpred).unwrap();
    // d pred_k / d E[item_k] = U[user_k]
    for (k, row) in grad_rows.chunks_exact_mut(DIM).enumerate() {
        let u = &users[b.users[k] * DIM..(b.users[k] + 1) * DIM];
        for (g, &x) in row.iter_mut().zip(u) {
            *g = dpred[k] * x;
        }
    }
    value[0]
}

/// How a run hands its gradient to Adagrad.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    Rows,
    Sparse,
}

/// Held-out MSE over all lookups and over those of the head items (a
/// masked MSE: the mask keeps the head lookups).
fn evaluate(table: &[f32], users: &[f32], eval: &Batch, head: &Mask) -> (f32, f32) {
    let pred: Vec<f32> = (0..BATCH)
        .map(|k| {
            let (u, i) = (eval.users[k], eval.items[k]);
            dot(
                &users[u * DIM..(u + 1) * DIM],
                &table[i * DIM..(i + 1) * DIM],
            )
        })
        .collect();
    let mse = |m: &Mask| {
        loss::mse(&pred, &eval.ratings, m, Reduction::Mean)
            .unwrap()
            .scalar()
            .unwrap()
    };
    (mse(&Mask::ones(BATCH)), mse(head))
}

struct Run {
    table: Vec<f32>,
    first_eval: (f32, f32),
    last_eval: (f32, f32),
    total: Duration,
    build: Duration,
    step: Duration,
}

fn train(form: Form, users: &[f32], truth: &[f32], eval: &Batch) -> Run {
    let opt = Adagrad {
        lr: 0.2,
        ..Default::default()
    };
    let mut table = vec![0.0f32; ITEMS * DIM];
    let mut state: AdagradState<f32> = opt.state(table.len());
    let all = Mask::ones(BATCH);
    let (mut pred, mut dpred) = (vec![0.0f32; BATCH], vec![0.0f32; BATCH]);
    let mut grad_rows = vec![0.0f32; BATCH * DIM];
    let head = Mask::from_fn(BATCH, |k| eval.items[k] < HEAD);
    let eval_loss = |table: &[f32]| evaluate(table, users, eval, &head);
    let first_eval = eval_loss(&table);
    let name = match form {
        Form::Rows => "step_rows",
        Form::Sparse => "step_sparse (TriMat built per step)",
    };
    println!("\n{name}:");
    println!("  step   train MSE   held-out MSE   held-out, head items");

    let (mut build, mut step) = (Duration::ZERO, Duration::ZERO);
    let (mut window, mut window_n) = (0.0f64, 0usize);
    let t_run = Instant::now();
    for s in 0..STEPS {
        let b = batch(s as u64, users, truth);
        let l = forward_backward(
            &table,
            users,
            &b,
            &all,
            &mut pred,
            &mut dpred,
            &mut grad_rows,
        );
        window += l as f64;
        window_n += 1;
        match form {
            Form::Rows => {
                let t = Instant::now();
                opt.step_rows(&mut table, ITEMS, DIM, &b.items, &grad_rows, &mut state)
                    .unwrap();
                step += t.elapsed();
            }
            Form::Sparse => {
                let t = Instant::now();
                let mut g = TriMat::with_capacity((ITEMS, DIM), BATCH * DIM);
                for (k, row) in grad_rows.chunks_exact(DIM).enumerate() {
                    for (j, &v) in row.iter().enumerate() {
                        g.add_triplet(b.items[k], j, v);
                    }
                }
                build += t.elapsed();
                let t = Instant::now();
                opt.step_sparse(&mut table, ITEMS, DIM, &g, &mut state)
                    .unwrap();
                step += t.elapsed();
            }
        }
        if s == 0 || (s + 1) % 50 == 0 {
            let (e, h) = eval_loss(&table);
            println!(
                "  {:>4}   {:>9.4}   {:>12.4}   {:>20.4}",
                s + 1,
                window / window_n as f64,
                e,
                h
            );
            window = 0.0;
            window_n = 0;
        }
    }
    let total = t_run.elapsed();
    let last_eval = eval_loss(&table);
    Run {
        table,
        first_eval,
        last_eval,
        total,
        build,
        step,
    }
}

fn main() {
    let t0 = Instant::now();
    let users: Vec<f32> = (0..USERS * DIM)
        .map(|i| normal(1, i as u64) / (DIM as f32).sqrt())
        .collect();
    let truth: Vec<f32> = (0..ITEMS * DIM).map(|i| normal(2, i as u64)).collect();
    let eval = batch(1 << 40, &users, &truth);

    let b0 = batch(0, &users, &truth);
    let mut unique = b0.items.clone();
    unique.sort_unstable();
    unique.dedup();
    println!(
        "item table {ITEMS} x {DIM} f32 ({:.1} MB), frozen user table {USERS} x {DIM}",
        (ITEMS * DIM * 4) as f64 / 1e6
    );
    println!(
        "{STEPS} steps of {BATCH} lookups ({} gradient entries per step); batch 0 touches {} distinct rows \
         ({:.0}% of its lookups are repeats); rating noise variance {:.4} (the best reachable MSE)",
        BATCH * DIM,
        unique.len(),
        100.0 * (1.0 - unique.len() as f64 / BATCH as f64),
        NOISE * NOISE
    );
    let head_share = eval.items.iter().filter(|&&i| i < HEAD).count() as f64 / BATCH as f64;
    println!("setup {:.2} s", t0.elapsed().as_secs_f64());

    let rows = train(Form::Rows, &users, &truth, &eval);
    let sparse = train(Form::Sparse, &users, &truth, &eval);

    let entries = (STEPS * BATCH * DIM) as f64;
    let ns = |d: Duration| d.as_secs_f64() * 1e9 / entries;
    println!(
        "\nthroughput ({STEPS} steps, wall clock, rayon pool of {} threads):",
        rayon::current_num_threads()
    );
    println!(
        "  step_rows:   {:>6.0} steps/s   optimizer {:>5.1} ns per gradient entry",
        STEPS as f64 / rows.total.as_secs_f64(),
        ns(rows.step)
    );
    println!(
        "  step_sparse: {:>6.0} steps/s   optimizer {:>5.1} ns per gradient entry, + TriMat build {:>5.1} ns per entry",
        STEPS as f64 / sparse.total.as_secs_f64(),
        ns(sparse.step),
        ns(sparse.build)
    );
    println!(
        "  step_sparse / step_rows: {:.1}x for the optimizer step, {:.1}x with the TriMat build",
        sparse.step.as_secs_f64() / rows.step.as_secs_f64(),
        (sparse.step + sparse.build).as_secs_f64() / rows.step.as_secs_f64()
    );

    let max_diff = rows
        .table
        .iter()
        .zip(&sparse.table)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let identical = rows
        .table
        .iter()
        .zip(&sparse.table)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    println!(
        "\nheld-out MSE: {:.4} -> {:.4} (step_rows), {:.4} -> {:.4} (step_sparse); on the {HEAD} most \
         popular items ({:.0}% of lookups): {:.4} -> {:.4}; noise floor {:.4}",
        rows.first_eval.0,
        rows.last_eval.0,
        sparse.first_eval.0,
        sparse.last_eval.0,
        100.0 * head_share,
        rows.first_eval.1,
        rows.last_eval.1,
        NOISE * NOISE
    );
    if identical {
        println!(
            "final tables: bit-identical (both forms sum duplicate rows in order of appearance, \
             then apply the same update)"
        );
    } else {
        println!("final tables differ: max |difference| = {max_diff:e}");
    }
    println!("total {:.2} s", t0.elapsed().as_secs_f64());
}
