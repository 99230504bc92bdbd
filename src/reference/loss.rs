//! Reference losses: naive, obviously correct, every intermediate in `f64`.
//!
//! These are the oracle for the fast paths in `crate::cpu::loss` and the
//! definition of the semantics of [`crate::loss`] (PyTorch's, plus the
//! crate's rules: masked-out entries are never read into arithmetic, a mean
//! over nothing is 0 with a zero gradient). Each function validates its
//! arguments exactly like the public one, then loops in the plainest order.
//! The results are rounded to `T` once, at the end.

#![allow(clippy::needless_range_loop)] // naive index loops are the point of a reference

use crate::element::Float;
use crate::error::Result;
use crate::loss::{
    check_bce, check_ce, check_ecs, check_elementwise, check_pearson, check_positive, CrossEntropy,
    Loss, Reduction,
};
use crate::mask::Mask;
use crate::view::MaskedVec;

/// Finishes an elementwise loss from per-element `(value, grad)` pairs in
/// `f64` (already 0 where masked out).
fn finish_elementwise<T: Float>(
    vals: Vec<f64>,
    grads: Vec<f64>,
    kept: usize,
    reduction: Reduction,
) -> Loss<T> {
    let to_t = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
    match reduction {
        Reduction::None => Loss {
            value: to_t(vals),
            grad: to_t(grads),
        },
        Reduction::Sum => Loss {
            value: vec![T::from_f64(vals.iter().sum())],
            grad: to_t(grads),
        },
        Reduction::Mean => {
            if kept == 0 {
                return Loss {
                    value: vec![T::ZERO],
                    grad: vec![T::ZERO; grads.len()],
                };
            }
            let n = kept as f64;
            Loss {
                value: vec![T::from_f64(vals.iter().sum::<f64>() / n)],
                grad: grads.into_iter().map(|g| T::from_f64(g / n)).collect(),
            }
        }
    }
}

/// Applies `f(input, target) -> (value, d value / d input)` to every kept
/// element; masked-out elements get value 0 and gradient 0 without being read.
fn elementwise<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    reduction: Reduction,
    f: impl Fn(f64, f64, usize) -> (f64, f64),
) -> Result<Loss<T>> {
    check_elementwise(input.len(), target.len(), mask)?;
    let n = input.len();
    let mut vals = vec![0.0f64; n];
    let mut grads = vec![0.0f64; n];
    let mut kept = 0usize;
    for i in 0..n {
        if mask.get(i) {
            kept += 1;
            let (v, g) = f(input[i].to_f64(), target[i].to_f64(), i);
            vals[i] = v;
            grads[i] = g;
        }
    }
    Ok(finish_elementwise(vals, grads, kept, reduction))
}

/// `sign(d)` with `sign(0) = 0` (PyTorch's `sgn`, the L1 subgradient).
fn sign(d: f64) -> f64 {
    if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else if d.is_nan() {
        d
    } else {
        0.0
    }
}

/// Masked mean squared error: `(x - y)^2`, gradient `2 (x - y)`.
pub fn mse<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    reduction: Reduction,
) -> Result<Loss<T>> {
    elementwise(input, target, mask, reduction, |x, y, _| {
        let d = x - y;
        (d * d, 2.0 * d)
    })
}

/// Masked L1: `|x - y|`, gradient `sign(x - y)` (0 at 0).
pub fn l1<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    reduction: Reduction,
) -> Result<Loss<T>> {
    elementwise(input, target, mask, reduction, |x, y, _| {
        let d = x - y;
        (d.abs(), sign(d))
    })
}

/// Masked Huber loss (PyTorch's `huber_loss`): `0.5 d^2` for `|d| < delta`,
/// else `delta (|d| - 0.5 delta)`; gradient `clamp(d, -delta, delta)`.
pub fn huber<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    delta: f64,
    reduction: Reduction,
) -> Result<Loss<T>> {
    // lengths first, then the hyper-parameter: the public function's order
    check_elementwise(input.len(), target.len(), mask)?;
    check_positive("delta", delta)?;
    elementwise(input, target, mask, reduction, |x, y, _| {
        let d = x - y;
        let a = d.abs();
        if a < delta {
            (0.5 * d * d, d)
        } else {
            (delta * (a - 0.5 * delta), delta * sign(d))
        }
    })
}

/// Masked smooth L1 (PyTorch's `smooth_l1_loss`): `0.5 d^2 / beta` for
/// `|d| < beta`, else `|d| - 0.5 beta`; `beta = 0` is L1.
pub fn smooth_l1<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    beta: f64,
    reduction: Reduction,
) -> Result<Loss<T>> {
    check_elementwise(input.len(), target.len(), mask)?;
    crate::loss::check_beta(beta)?;
    elementwise(input, target, mask, reduction, |x, y, _| {
        let d = x - y;
        let a = d.abs();
        if a < beta {
            (0.5 * d * d / beta, d / beta)
        } else {
            (a - 0.5 * beta, sign(d))
        }
    })
}

/// Masked binary cross-entropy with logits (PyTorch's
/// `binary_cross_entropy_with_logits`): with `lw = 1 + (pos_weight - 1) y`,
/// `loss = (1 - y) x + lw (ln(1 + e^-|x|) + max(-x, 0))`, gradient
/// `(1 - y) - lw sigmoid(-x)`. `pos_weight[i % pos_weight.len()]` applies to
/// element `i` (a per-class vector broadcast over row-major rows).
pub fn bce_with_logits<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    pos_weight: Option<&[T]>,
    reduction: Reduction,
) -> Result<Loss<T>> {
    check_bce(input.len(), target.len(), mask, pos_weight.map(|p| p.len()))?;
    elementwise(input, target, mask, reduction, |x, y, i| {
        let pw = pos_weight.map_or(1.0, |p| p[i % p.len()].to_f64());
        let lw = 1.0 + (pw - 1.0) * y;
        let softplus_neg = (-x.abs()).exp().ln_1p() + (-x).max(0.0);
        let sig_neg = 1.0 / (1.0 + x.exp());
        ((1.0 - y) * x + lw * softplus_neg, (1.0 - y) - lw * sig_neg)
    })
}

/// Cross-entropy over `rows x classes` logits with class-index targets,
/// exactly as `torch.nn.functional.cross_entropy` (ignore_index, weight,
/// label_smoothing, reduction), with a mean over nothing giving 0.
pub fn cross_entropy<T: Float>(
    logits: &[T],
    rows: usize,
    classes: usize,
    targets: &[i64],
    opts: &CrossEntropy<T>,
) -> Result<Loss<T>> {
    check_ce(logits.len(), rows, classes, targets, opts)?;
    let eps = opts.label_smoothing;
    let w = |c: usize| opts.weight.as_ref().map_or(1.0, |w| w[c].to_f64());
    // (not a loop over `0..classes`: with no rows, `classes` may be huge)
    let w_all: f64 = match &opts.weight {
        Some(wt) => wt.iter().map(|v| v.to_f64()).sum(),
        None => classes as f64,
    };
    let cf = classes as f64;
    let mut vals = vec![0.0f64; rows];
    let mut grads = vec![0.0f64; rows * classes];
    let mut denom = 0.0f64;
    for r in 0..rows {
        if targets[r] == opts.ignore_index {
            continue;
        }
        let t = targets[r] as usize;
        let x = &logits[r * classes..(r + 1) * classes];
        let x: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
        let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = x.iter().map(|&v| (v - m).exp()).sum();
        let lse = m + s.ln();
        let wt = w(t);
        denom += wt;
        let nll = wt * (lse - x[t]);
        vals[r] = if eps > 0.0 {
            let smooth: f64 = (0..classes).map(|c| w(c) * (lse - x[c])).sum();
            (1.0 - eps) * nll + eps / cf * smooth
        } else {
            // PyTorch skips the smoothing term entirely (a -inf logit would
            // otherwise give 0 * inf)
            nll
        };
        let g = &mut grads[r * classes..(r + 1) * classes];
        for c in 0..classes {
            let p = (x[c] - lse).exp();
            let onehot = if c == t { 1.0 } else { 0.0 };
            g[c] = (1.0 - eps) * wt * (p - onehot) + eps / cf * (w_all * p - w(c));
        }
    }
    let to_t = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
    Ok(match opts.reduction {
        Reduction::None => Loss {
            value: to_t(vals),
            grad: to_t(grads),
        },
        Reduction::Sum => Loss {
            value: vec![T::from_f64(vals.iter().sum())],
            grad: to_t(grads),
        },
        Reduction::Mean => {
            if denom == 0.0 {
                Loss {
                    value: vec![T::ZERO],
                    grad: vec![T::ZERO; grads.len()],
                }
            } else {
                Loss {
                    value: vec![T::from_f64(vals.iter().sum::<f64>() / denom)],
                    grad: grads.into_iter().map(|g| T::from_f64(g / denom)).collect(),
                }
            }
        }
    })
}

/// scFormer's elastic cell similarity loss on a `rows x cols` embedding:
/// rows L2-normalized (`F.normalize`, eps `1e-12`), cosine similarity
/// matrix with the diagonal zeroed, ReLU, then `mean(1 - (cos - threshold)^2)`
/// over all `rows^2` entries. The gradient is with respect to the embedding.
/// No rows: value 0, empty gradient.
pub fn ecs<T: Float>(embedding: &[T], rows: usize, cols: usize, threshold: f64) -> Result<Loss<T>> {
    check_ecs(embedding.len(), rows, cols, threshold)?;
    if rows == 0 {
        return Ok(Loss {
            value: vec![T::ZERO],
            grad: Vec::new(),
        });
    }
    let e: Vec<f64> = embedding.iter().map(|v| v.to_f64()).collect();
    let norms: Vec<f64> = (0..rows)
        .map(|i| {
            e[i * cols..(i + 1) * cols]
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let den: Vec<f64> = norms.iter().map(|&n| n.max(1e-12)).collect();
    let u: Vec<f64> = (0..rows * cols).map(|k| e[k] / den[k / cols]).collect();
    let n2 = (rows * rows) as f64;
    let mut total = 0.0f64;
    // dL/dcos_ij (i != j), symmetric
    let mut gc = vec![0.0f64; rows * rows];
    for i in 0..rows {
        for j in 0..rows {
            let c = if i == j {
                0.0
            } else {
                (0..cols).map(|k| u[i * cols + k] * u[j * cols + k]).sum()
            };
            let r = c.max(0.0);
            total += 1.0 - (r - threshold) * (r - threshold);
            if i != j && c > 0.0 {
                gc[i * rows + j] = -2.0 * (r - threshold) / n2;
            }
        }
    }
    // dL/du_i = sum_j (gc_ij + gc_ji) u_j
    let mut gu = vec![0.0f64; rows * cols];
    for i in 0..rows {
        for j in 0..rows {
            let g = gc[i * rows + j] + gc[j * rows + i];
            if g != 0.0 {
                for k in 0..cols {
                    gu[i * cols + k] += g * u[j * cols + k];
                }
            }
        }
    }
    // through u = e / max(|e|, eps)
    let mut ge = vec![0.0f64; rows * cols];
    for i in 0..rows {
        let gi = &gu[i * cols..(i + 1) * cols];
        let ui = &u[i * cols..(i + 1) * cols];
        if norms[i] > 1e-12 {
            let dot: f64 = gi.iter().zip(ui).map(|(g, u)| g * u).sum();
            for k in 0..cols {
                ge[i * cols + k] = (gi[k] - ui[k] * dot) / norms[i];
            }
        } else {
            for k in 0..cols {
                ge[i * cols + k] = gi[k] / 1e-12;
            }
        }
    }
    Ok(Loss {
        value: vec![T::from_f64(total / n2)],
        grad: ge.into_iter().map(T::from_f64).collect(),
    })
}

/// Masked Pearson correlation per row of `rows x cols` `input` and `target`
/// over the kept entries of each row. A row with fewer than 2 kept entries
/// or zero variance in either operand gets a cleared bit (value 0).
pub fn pearson<T: Float>(
    input: &[T],
    target: &[T],
    mask: &Mask,
    rows: usize,
    cols: usize,
) -> Result<MaskedVec<T>> {
    check_pearson(input.len(), target.len(), mask, rows, cols)?;
    let mut values = vec![T::ZERO; rows];
    let mut out = Mask::zeros(rows);
    for r in 0..rows {
        let idx: Vec<usize> = (r * cols..(r + 1) * cols)
            .filter(|&i| mask.get(i))
            .collect();
        if idx.len() < 2 {
            continue;
        }
        let n = idx.len() as f64;
        // shift by the first kept pair (mathematically neutral; makes a
        // constant row exactly constant 0, hence zero variance)
        let (px, py) = (input[idx[0]].to_f64(), target[idx[0]].to_f64());
        let mx = idx.iter().map(|&i| input[i].to_f64() - px).sum::<f64>() / n;
        let my = idx.iter().map(|&i| target[i].to_f64() - py).sum::<f64>() / n;
        let (mut sxy, mut sxx, mut syy) = (0.0f64, 0.0f64, 0.0f64);
        for &i in &idx {
            let dx = (input[i].to_f64() - px) - mx;
            let dy = (target[i].to_f64() - py) - my;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }
        if sxx > 0.0 && syy > 0.0 {
            values[r] = T::from_f64(sxy / (sxx.sqrt() * syy.sqrt()));
            out.set(r, true);
        } else if sxx.is_nan() || syy.is_nan() {
            // NaN in a kept entry propagates (like a NaN sum), bit stays set
            values[r] = T::from_f64(f64::NAN);
            out.set(r, true);
        }
    }
    Ok(MaskedVec { values, mask: out })
}
