//! Validation shared by the reference and the fast paths: everything here
//! runs before anything is written.

use super::adagrad::Adagrad;
use crate::error::{check_len, check_nonneg, check_shape, Error, Result};

/// The per-step hyper-parameters, in `f64`, once validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hyper {
    /// `lr / (1 + (step - 1) * lr_decay)`.
    pub clr: f64,
    /// `eps`.
    pub eps: f64,
    /// `weight_decay`.
    pub wd: f64,
    /// Negate the gradient.
    pub maximize: bool,
}

/// Checks the hyper-parameters (finite and `>= 0`).
pub(crate) fn check_hyper(opt: &Adagrad) -> Result<()> {
    check_nonneg("lr", opt.lr)?;
    check_nonneg("lr_decay", opt.lr_decay)?;
    check_nonneg("weight_decay", opt.weight_decay)?;
    check_nonneg("initial_accumulator_value", opt.initial_accumulator_value)?;
    check_nonneg("eps", opt.eps)?;
    Ok(())
}

/// Validates the hyper-parameters and the step counter, and returns the new
/// step value with the hyper-parameters for it. Mutates nothing.
pub(crate) fn next_step(opt: &Adagrad, step: u64) -> Result<(u64, Hyper)> {
    check_hyper(opt)?;
    let step = step.checked_add(1).ok_or(Error::Param {
        name: "state.step",
        value: step as f64,
        expected: "below u64::MAX",
    })?;
    let clr = opt.lr / (1.0 + (step - 1) as f64 * opt.lr_decay);
    if !clr.is_finite() {
        return Err(Error::Param {
            name: "lr",
            value: opt.lr,
            expected: "such that lr / (1 + (step - 1) * lr_decay) is finite",
        });
    }
    Ok((
        step,
        Hyper {
            clr,
            eps: opt.eps,
            wd: opt.weight_decay,
            maximize: opt.maximize,
        },
    ))
}

/// Checks the accumulator length against the parameter length.
pub(crate) fn check_state(param_len: usize, state_len: usize) -> Result<()> {
    check_len("state.sum", param_len, state_len)
}

/// Checks `rows * cols == param.len()`.
pub(crate) fn check_param_shape(rows: usize, cols: usize, param_len: usize) -> Result<()> {
    check_shape("param", rows, cols, param_len)
}

/// Checks that every index is `< bound`; the first offender is reported with
/// its position.
pub(crate) fn check_indices(arg: &'static str, indices: &[usize], bound: usize) -> Result<()> {
    // A branch-free max first (fast, vectorizable), the position only on error.
    let max = indices.iter().copied().max().unwrap_or(0);
    if indices.is_empty() || max < bound {
        return Ok(());
    }
    let position = indices.iter().position(|&i| i >= bound).unwrap_or(0);
    Err(Error::Index {
        arg,
        index: indices[position],
        position,
        bound,
    })
}

/// Validates a COO gradient against a `rows x cols` parameter.
pub(crate) fn check_coo(
    rows: usize,
    cols: usize,
    param_len: usize,
    row_inds: &[usize],
    col_inds: &[usize],
    values_len: usize,
) -> Result<()> {
    check_coo_shapes(rows, cols, param_len, row_inds, col_inds, values_len)?;
    check_indices("row_inds", row_inds, rows)?;
    check_indices("col_inds", col_inds, cols)?;
    Ok(())
}

/// The shape and length checks of [`check_coo`], in its order, without the
/// index checks (which must follow, in `row_inds`, `col_inds` order).
pub(crate) fn check_coo_shapes(
    rows: usize,
    cols: usize,
    param_len: usize,
    row_inds: &[usize],
    col_inds: &[usize],
    values_len: usize,
) -> Result<()> {
    check_param_shape(rows, cols, param_len)?;
    check_len("col_inds", row_inds.len(), col_inds.len())?;
    check_len("values", row_inds.len(), values_len)?;
    Ok(())
}

/// Validates a row-sparse gradient against a `rows x cols` parameter.
pub(crate) fn check_rows(
    rows: usize,
    cols: usize,
    param_len: usize,
    row_indices: &[usize],
    values_len: usize,
) -> Result<()> {
    check_param_shape(rows, cols, param_len)?;
    check_shape("values", row_indices.len(), cols, values_len)?;
    check_indices("row_indices", row_indices, rows)?;
    Ok(())
}
