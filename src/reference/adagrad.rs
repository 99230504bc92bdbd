//! Reference Adagrad: naive, obviously correct, every update computed in
//! `f64` and rounded once to the parameter / state type.
//!
//! Duplicate sparse entries are summed in `f64` in order of appearance before
//! the update (PyTorch's `coalesce()`). For `f64` parameters the fast paths
//! perform the very same operations, so they agree with this module bit for
//! bit; for `f32` (and the half types) they differ by the rounding of the
//! intermediate results only.

use crate::element::Element;
use crate::error::Result;
use crate::optim::validate::{self, Hyper};
use crate::optim::{Adagrad, AdagradElement, AdagradState, RowwiseAdagrad};
use crate::view::MaskedView;
use std::collections::BTreeMap;

/// One element's update in `f64`: returns `(new_param, new_sum)`.
pub fn update(p: f64, g: f64, sum: f64, clr: f64, eps: f64, wd: f64, maximize: bool) -> (f64, f64) {
    let mut g = if maximize { -g } else { g };
    if wd != 0.0 {
        g += wd * p;
    }
    let sum = sum + g * g;
    let p = p - (clr * g) / (sum.sqrt() + eps);
    (p, sum)
}

fn apply<P: AdagradElement>(param: &mut [P], sum: &mut [P::State], i: usize, g: f64, h: &Hyper) {
    let (p, s) = update(
        param[i].to_f64(),
        g,
        sum[i].to_f64(),
        h.clr,
        h.eps,
        h.wd,
        h.maximize,
    );
    param[i] = P::from_f64(p);
    sum[i] = <P::State as Element>::from_f64(s);
}

/// Sums duplicates in order of appearance (`f64`), keyed by flat index.
fn coalesce(entries: impl Iterator<Item = (usize, f64)>) -> BTreeMap<usize, f64> {
    let mut map = BTreeMap::new();
    for (k, v) in entries {
        map.entry(k).and_modify(|s| *s += v).or_insert(v);
    }
    map
}

/// Dense gradient: every entry updated.
pub fn step_dense<P: AdagradElement>(
    opt: &Adagrad,
    param: &mut [P],
    grad: &[P],
    state: &mut AdagradState<P::State>,
) -> Result<()> {
    crate::error::check_len("grad", param.len(), grad.len())?;
    validate::check_state(param.len(), state.sum.len())?;
    let (step, h) = validate::next_step(opt, state.step)?;
    state.step = step;
    for (i, g) in grad.iter().enumerate() {
        apply(param, &mut state.sum, i, g.to_f64(), &h);
    }
    Ok(())
}

/// Masked gradient: only kept entries updated.
pub fn step_masked<P: AdagradElement>(
    opt: &Adagrad,
    param: &mut [P],
    grad: &MaskedView<P>,
    state: &mut AdagradState<P::State>,
) -> Result<()> {
    crate::error::check_len("grad", param.len(), grad.len())?;
    validate::check_state(param.len(), state.sum.len())?;
    let (step, h) = validate::next_step(opt, state.step)?;
    state.step = step;
    for i in 0..param.len() {
        if grad.mask().get(i) {
            apply(param, &mut state.sum, i, grad.data()[i].to_f64(), &h);
        }
    }
    Ok(())
}

/// COO gradient on a `rows x cols` parameter; duplicates summed first.
#[allow(clippy::too_many_arguments)]
pub fn step_coo<P: AdagradElement>(
    opt: &Adagrad,
    param: &mut [P],
    rows: usize,
    cols: usize,
    row_inds: &[usize],
    col_inds: &[usize],
    values: &[P],
    state: &mut AdagradState<P::State>,
) -> Result<()> {
    validate::check_coo(rows, cols, param.len(), row_inds, col_inds, values.len())?;
    validate::check_state(param.len(), state.sum.len())?;
    let (step, h) = validate::next_step(opt, state.step)?;
    state.step = step;
    let map =
        coalesce((0..values.len()).map(|k| (row_inds[k] * cols + col_inds[k], values[k].to_f64())));
    for (i, g) in map {
        apply(param, &mut state.sum, i, g, &h);
    }
    Ok(())
}

/// `sprs::TriMat` gradient: its shape must be `rows x cols`.
pub fn step_sparse<P: AdagradElement>(
    opt: &Adagrad,
    param: &mut [P],
    rows: usize,
    cols: usize,
    grad: &sprs::TriMat<P>,
    state: &mut AdagradState<P::State>,
) -> Result<()> {
    crate::error::check_len("grad.rows", rows, grad.rows())?;
    crate::error::check_len("grad.cols", cols, grad.cols())?;
    step_coo(
        opt,
        param,
        rows,
        cols,
        grad.row_inds(),
        grad.col_inds(),
        grad.data(),
        state,
    )
}

/// `sprs::CsVec` gradient: its dimension must be `param.len()`.
pub fn step_sparse_vec<P: AdagradElement>(
    opt: &Adagrad,
    param: &mut [P],
    grad: &sprs::CsVec<P>,
    state: &mut AdagradState<P::State>,
) -> Result<()> {
    crate::error::check_len("grad.dim", param.len(), grad.dim())?;
    crate::error::check_len("grad.data", grad.indices().len(), grad.data().len())?;
    validate::check_indices("grad.indices", grad.indices(), param.len())?;
    validate::check_state(param.len(), state.sum.len())?;
    let (step, h) = validate::next_step(opt, state.step)?;
    state.step = step;
    let map = coalesce(
        grad.indices()
            .iter()
            .zip(grad.data())
            .map(|(&i, v)| (i, v.to_f64())),
    );
    for (i, g) in map {
        apply(param, &mut state.sum, i, g, &h);
    }
    Ok(())
}

/// Row-sparse gradient (embedding lookup): `values` is
/// `row_indices.len() x cols`, duplicate rows summed first.
pub fn step_rows<P: AdagradElement>(
    opt: &Adagrad,
    param: &mut [P],
    rows: usize,
    cols: usize,
    row_indices: &[usize],
    values: &[P],
    state: &mut AdagradState<P::State>,
) -> Result<()> {
    validate::check_rows(rows, cols, param.len(), row_indices, values.len())?;
    validate::check_state(param.len(), state.sum.len())?;
    let (step, h) = validate::next_step(opt, state.step)?;
    state.step = step;
    let map = coalesce(
        row_indices
            .iter()
            .enumerate()
            .flat_map(|(k, &r)| (0..cols).map(move |c| (r * cols + c, k * cols + c)))
            .map(|(i, src)| (i, values[src].to_f64())),
    );
    for (i, g) in map {
        apply(param, &mut state.sum, i, g, &h);
    }
    Ok(())
}
/// Row-wise Adagrad (FBGEMM): one accumulator per row of a `rows x cols`
/// parameter; `rows` is `sum.len()`. For each touched row `r` (duplicates
/// summed first): `g = g + wd * p` (if `wd != 0`), `sum[r] += mean(g^2)`,
/// `p -= (clr / (sqrt(sum[r]) + eps)) * g`.
fn rowwise_update<P: AdagradElement>(
    param: &mut [P],
    cols: usize,
    sum: &mut [P::State],
    row_grads: &BTreeMap<usize, Vec<f64>>,
    h: &Hyper,
) {
    for (&r, g) in row_grads {
        let p = &mut param[r * cols..(r + 1) * cols];
        let g: Vec<f64> = g
            .iter()
            .zip(p.iter())
            .map(|(&g, &p)| {
                let g = if h.maximize { -g } else { g };
                if h.wd != 0.0 {
                    g + h.wd * p.to_f64()
                } else {
                    g
                }
            })
            .collect();
        let mean = if cols == 0 {
            0.0
        } else {
            g.iter().map(|x| x * x).sum::<f64>() / cols as f64
        };
        let s = sum[r].to_f64() + mean;
        sum[r] = <P::State as Element>::from_f64(s);
        let mult = h.clr / (s.sqrt() + h.eps);
        for (pj, gj) in p.iter_mut().zip(&g) {
            *pj = P::from_f64(pj.to_f64() - mult * gj);
        }
    }
}

/// Groups a row-sparse gradient by row, summing duplicates in `f64` in order
/// of appearance.
pub fn coalesce_rows<P: Element>(
    cols: usize,
    row_indices: &[usize],
    values: &[P],
) -> BTreeMap<usize, Vec<f64>> {
    let mut map: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for (k, &r) in row_indices.iter().enumerate() {
        let src = &values[k * cols..(k + 1) * cols];
        match map.get_mut(&r) {
            Some(acc) => acc.iter_mut().zip(src).for_each(|(a, v)| *a += v.to_f64()),
            None => {
                map.insert(r, src.iter().map(|v| v.to_f64()).collect());
            }
        }
    }
    map
}

fn rowwise_hyper(opt: &RowwiseAdagrad) -> Adagrad {
    Adagrad {
        lr: opt.lr,
        lr_decay: opt.lr_decay,
        weight_decay: opt.weight_decay,
        initial_accumulator_value: opt.initial_accumulator_value,
        eps: opt.eps,
        maximize: opt.maximize,
    }
}

/// Row-wise Adagrad, row-sparse gradient (`state.sum` has one entry per row).
#[allow(clippy::too_many_arguments)]
pub fn rowwise_step_rows<P: AdagradElement>(
    opt: &RowwiseAdagrad,
    param: &mut [P],
    rows: usize,
    cols: usize,
    row_indices: &[usize],
    values: &[P],
    state: &mut AdagradState<P::State>,
) -> Result<()> {
    validate::check_rows(rows, cols, param.len(), row_indices, values.len())?;
    crate::error::check_len("state.sum", rows, state.sum.len())?;
    let (step, h) = validate::next_step(&rowwise_hyper(opt), state.step)?;
    state.step = step;
    let map = coalesce_rows(cols, row_indices, values);
    rowwise_update(param, cols, &mut state.sum, &map, &h);
    Ok(())
}

/// Row-wise Adagrad, dense `rows x cols` gradient.
pub fn rowwise_step_dense<P: AdagradElement>(
    opt: &RowwiseAdagrad,
    param: &mut [P],
    rows: usize,
    cols: usize,
    grad: &[P],
    state: &mut AdagradState<P::State>,
) -> Result<()> {
    validate::check_param_shape(rows, cols, param.len())?;
    crate::error::check_len("grad", param.len(), grad.len())?;
    // (the state's length first: with `cols = 0`, `rows` may be huge)
    crate::error::check_len("state.sum", rows, state.sum.len())?;
    let all: Vec<usize> = (0..rows).collect();
    rowwise_step_rows(opt, param, rows, cols, &all, grad, state)
}
