//! A sequence-model training step with the three masks such a step needs:
//!
//! 1. **key padding**: a batch of token sequences of different lengths,
//!    padded to `T`; `Mask::padding(lengths, T)` keeps the real tokens. The
//!    attention scores `[B, H, T, T]` take the `[B, T]` key mask broadcast
//!    as `[B, 1, 1, T]` (`NdView::broadcast`, never expanded in memory),
//!    and the masked softmax runs over the keys into a buffer held across
//!    steps (padded keys hold NaN here, to show that nothing under a
//!    cleared bit reaches a result), followed by its backward;
//! 2. **MLM masking**: 15% of the real tokens are chosen for prediction with
//!    `Mask::random` (its cleared bits), ANDed with the padding mask;
//! 3. **`ignore_index`**: the labels are the token at chosen positions and
//!    `-100` elsewhere (padding included), and `loss::cross_entropy` skips
//!    the `-100` rows.
//!
//! The model is deliberately trivial — one learnable logit per vocabulary
//! entry, shared by every position, trained with Adagrad — so that the loss
//! falls from `ln(V)` towards the entropy of the token distribution, the
//! best such a model can reach.
//!
//! Run: `cargo run --release --example sequence`

use maskops::loss::{self, CrossEntropy};
use maskops::mask::uniform;
use maskops::nd::NdView;
use maskops::optim::Adagrad;
use maskops::{Mask, MaskedView};
use std::time::Instant;

const B: usize = 32; // sequences per batch
const T: usize = 128; // padded length
const H: usize = 8; // attention heads
const V: usize = 1000; // vocabulary
const MLM_PROB: f64 = 0.15;
const STEPS: usize = 60;

/// Token `k` of batch `step`: skewed towards small ids (`id = V * u^6`).
fn token(step: u64, k: u64) -> i64 {
    ((uniform(30 + step, 0, k).powi(6) * V as f64) as i64).min(V as i64 - 1)
}

/// The probability of token `id` under [`token`]'s distribution.
fn token_prob(id: usize) -> f64 {
    let c = |x: f64| (x / V as f64).powf(1.0 / 6.0);
    c(id as f64 + 1.0) - c(id as f64)
}

struct Batch {
    lengths: Vec<usize>,
    /// `[B, T]` keep mask of the real tokens.
    keys: Mask,
    /// `[B, T]`: the real tokens chosen for prediction.
    predict: Mask,
    /// `[B, T]`: the token where `predict`, else `-100`.
    labels: Vec<i64>,
}

fn make_batch(step: u64) -> maskops::Result<Batch> {
    // lengths from 8 to T
    let lengths: Vec<usize> = (0..B as u64)
        .map(|b| 8 + (uniform(40 + step, 0, b) * (T - 7) as f64) as usize)
        .collect();
    let keys = Mask::padding(&lengths, T)?;
    // Mask::random clears each bit with probability MLM_PROB: the cleared
    // bits are the hidden positions, so `!visible & keys` are the real tokens
    // the model must predict.
    let visible = Mask::random(B * T, MLM_PROB, 50 + step);
    let predict = !visible & &keys;
    let labels = (0..B * T)
        .map(|i| {
            if predict.get(i) {
                token(step, i as u64)
            } else {
                -100
            }
        })
        .collect();
    Ok(Batch {
        lengths,
        keys,
        predict,
        labels,
    })
}

/// Attention over the keys: masked softmax of `[B, H, T, T]` scores with the
/// `[B, T]` key padding mask broadcast as `[B, 1, 1, T]` (never expanded),
/// into `probs` (held across steps), and its backward. Returns (forward
/// ms, backward ms).
fn attention(
    batch: &Batch,
    scores: &mut [f32],
    probs: &mut [f32],
    verbose: bool,
) -> maskops::Result<(f64, f64)> {
    let shape = [B, H, T, T];
    let mask_shape = [B, 1, 1, T];
    // element (b, h, q, k) keeps key k of sequence b
    let keeps = |i: usize| batch.keys.get((i / (H * T * T)) * T + i % T);
    // garbage in the padded key slots: it must never leak
    for (i, s) in scores.iter_mut().enumerate() {
        if !keeps(i) {
            *s = f32::NAN;
        }
    }

    let t = Instant::now();
    let view = NdView::broadcast(scores, &shape, &batch.keys, &mask_shape)?;
    view.softmax_into(3, probs)?;
    let fwd_ms = t.elapsed().as_secs_f64() * 1e3;

    // backward with an upstream gradient dL/dprobs (here: d(sum p * s)/dp = s)
    let t = Instant::now();
    let pv = NdView::broadcast(probs, &shape, &batch.keys, &mask_shape)?;
    let dscores = pv.softmax_backward(scores, 3)?;
    let bwd_ms = t.elapsed().as_secs_f64() * 1e3;

    if verbose {
        let rows = B * H * T;
        let kept = view.count();
        let mut worst = 0.0f64;
        for r in probs.chunks_exact(T) {
            let s: f64 = r.iter().map(|&p| p as f64).sum();
            worst = worst.max((s - 1.0).abs());
        }
        let padded_prob_zero = probs.iter().enumerate().all(|(i, &p)| keeps(i) || p == 0.0);
        let finite =
            probs.iter().all(|p| p.is_finite()) && dscores.values.iter().all(|d| d.is_finite());
        println!(
            "attention scores [B, H, T, T] = [{B}, {H}, {T}, {T}] -> {rows} softmax rows of {T} keys \
             ({} elements)",
            rows * T
        );
        println!(
            "  key mask [B, T] broadcast as [B, 1, 1, T] (NdView, never expanded): {kept} of {} scores kept ({:.1}%)",
            rows * T,
            100.0 * kept as f64 / (rows * T) as f64
        );
        println!(
            "  softmax over keys {fwd_ms:.1} ms ({:.2} elem/ns), backward {bwd_ms:.1} ms",
            (rows * T) as f64 / (fwd_ms * 1e6)
        );
        println!(
            "  every row sums to 1 within {worst:.1e}; padded keys get probability 0: {padded_prob_zero}; \
             no NaN from the padded slots in the output or the gradient: {finite}"
        );
    }
    Ok((fwd_ms, bwd_ms))
}

fn main() -> maskops::Result<()> {
    let t0 = Instant::now();
    // attention scores (a stand-in for q·k / sqrt(d)); refilled each step
    let base_scores: Vec<f32> = (0..B * H * T * T)
        .map(|i| (uniform(1, 0, i as u64) * 4.0 - 2.0) as f32)
        .collect();
    let mut scores = base_scores.clone();
    // the attention probabilities, written in place every step (`softmax_into`)
    let mut attn = vec![0.0f32; B * H * T * T];

    let probs: Vec<f64> = (0..V).map(token_prob).collect();
    let entropy: f64 = probs
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    // the expected cross-entropy of the shared bias on a fresh token:
    // logsumexp(bias) - sum_c p_c * bias_c (a masked reduction with every bit kept)
    let all_classes = Mask::ones(V);
    let expected = |bias: &[f32]| -> f64 {
        let lse = MaskedView::new(bias, &all_classes)
            .unwrap()
            .logsumexp()
            .unwrap() as f64;
        lse - probs
            .iter()
            .zip(bias)
            .map(|(p, &b)| p * b as f64)
            .sum::<f64>()
    };

    // the model: one logit per vocabulary entry, broadcast to every position
    let opt = Adagrad {
        lr: 0.5,
        ..Default::default()
    };
    let mut bias = vec![0.0f32; V];
    let mut state = opt.state(V);
    let ce = CrossEntropy::<f32>::default(); // ignore_index = -100, mean over predicted tokens
    let rows = B * T;
    let mut logits = vec![0.0f32; rows * V];
    let mut grad = vec![0.0f32; rows * V];
    let all_rows = Mask::ones(rows * V);

    let (mut attn_fwd, mut attn_bwd, mut ce_ms) = (0.0, 0.0, 0.0);
    let mut first = None;
    let mut last = 0.0f32;
    for step in 0..STEPS {
        let batch = make_batch(step as u64)?;
        if step == 0 {
            let (min, max) = (
                batch.lengths.iter().min().unwrap(),
                batch.lengths.iter().max().unwrap(),
            );
            let real = batch.keys.count_ones();
            println!(
                "\nbatch [B, T] = [{B}, {T}], lengths {min}..={max} (mean {:.1}); key padding mask: {real} of {} kept \
                 (PyTorch's src_key_padding_mask is !mask: {} padded)",
                real as f64 / B as f64,
                B * T,
                (!&batch.keys).count_ones()
            );
        }

        scores.copy_from_slice(&base_scores);
        let (f, b) = attention(&batch, &mut scores, &mut attn, step == 0)?;
        attn_fwd += f;
        attn_bwd += b;

        // logits [B*T, V]: the shared bias at every position
        for row in logits.chunks_exact_mut(V) {
            row.copy_from_slice(&bias);
        }
        let t = Instant::now();
        let value = loss::cross_entropy_into(&logits, rows, V, &batch.labels, &ce, &mut grad)?;
        // d loss / d bias = the sum of the logits' gradient over positions
        // (ignored rows have a zero gradient)
        let dbias = MaskedView::matrix(&grad, &all_rows, rows, V)?.sum_dim(0)?;
        ce_ms += t.elapsed().as_secs_f64() * 1e3;
        opt.step_dense(&mut bias, &dbias.values, &mut state)?;

        let l = value[0];
        first.get_or_insert(l);
        last = l;
        if step == 0 {
            println!(
                "cross-entropy on [{rows}, {V}] logits, labels -100 except at the predicted positions\n"
            );
            println!("step  real tokens  predicted (15%)  ignored rows  batch CE  expected CE");
        }
        if step < 3 || (step + 1) % 10 == 0 {
            let real = batch.keys.count_ones();
            let pred = batch.predict.count_ones();
            println!(
                "{:>4}  {real:>11}  {pred:>9} ({:>4.1}%)  {:>12}  {l:>8.4}  {:>11.4}",
                step + 1,
                100.0 * pred as f64 / real as f64,
                rows - pred,
                expected(&bias)
            );
        }
    }
    println!(
        "\nbatch loss {:.4} -> {last:.4}; expected loss now {:.4}; ln(V) = {:.4}; entropy of the token \
         distribution = {entropy:.4} (the best a shared bias can reach)",
        first.unwrap(),
        expected(&bias),
        (V as f64).ln()
    );
    println!(
        "per step: attention softmax {:.1} ms + backward {:.1} ms; cross-entropy fwd+bwd and the bias gradient {:.1} ms",
        attn_fwd / STEPS as f64,
        attn_bwd / STEPS as f64,
        ce_ms / STEPS as f64
    );
    println!("total {:.2} s", t0.elapsed().as_secs_f64());
    Ok(())
}
