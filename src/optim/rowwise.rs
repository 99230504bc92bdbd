//! Row-wise Adagrad (FBGEMM's embedding-table optimizer).

use super::adagrad::{Adagrad, AdagradState};
use super::element::AdagradElement;
use super::engine::{self, with_thread_ws};
use super::validate;
use super::workspace::Workspace;
use crate::canonical::{block_partial, canonical_fold, BLOCK};
use crate::cpu::adagrad::Hp;
use crate::cpu::{self, Isa};
use crate::element::{Element, Float};
use crate::error::{check_len, Result};

/// Row-wise Adagrad, FBGEMM's optimizer for embedding tables: **one**
/// accumulator per row of a row-major `rows x cols` parameter, so the state
/// is `rows` long instead of `rows * cols`.
///
/// For every row the gradient touches (duplicate rows summed first, in order
/// of appearance), with `clr` as in [`Adagrad`]:
///
/// ```text
/// g      = maximize ? -g : g
/// g      = g + weight_decay * p                  (only if weight_decay != 0)
/// sum[r] = sum[r] + (sum_j g_j^2) / cols          (the canonical summation order)
/// p      = p - (clr / (sqrt(sum[r]) + eps)) * g
/// ```
///
/// The sum of squares is taken in the crate's canonical order
/// ([`crate::canonical`]) in the state type, so results are reproducible
/// bit for bit; this optimizer runs one portable path (no ISA choice).
///
/// Build it with `..Default::default()`, as below: a field added in a later
/// version always comes with a default that keeps today's behaviour.
///
/// ```
/// use maskops::optim::RowwiseAdagrad;
/// let opt = RowwiseAdagrad { lr: 0.1, ..Default::default() };
/// let mut table = vec![0.0f32; 3 * 2];
/// let mut state = opt.state(3); // one accumulator per row
/// opt.step_rows(&mut table, 3, 2, &[2], &[3.0, 4.0], &mut state).unwrap();
/// assert_eq!(state.sum, vec![0.0, 0.0, 12.5]); // (9 + 16) / 2
/// assert!((table[4] + 0.1 * 3.0 / 12.5f32.sqrt()).abs() < 1e-7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowwiseAdagrad {
    /// Learning rate.
    pub lr: f64,
    /// Learning-rate decay: step `t` uses `lr / (1 + (t - 1) * lr_decay)`.
    pub lr_decay: f64,
    /// L2 penalty added to the gradient of the touched rows.
    pub weight_decay: f64,
    /// Starting value of each row's accumulator.
    pub initial_accumulator_value: f64,
    /// Added to `sqrt(sum[r])`.
    pub eps: f64,
    /// Maximize the objective (negate the gradient).
    pub maximize: bool,
}

impl Default for RowwiseAdagrad {
    /// The same defaults as [`Adagrad`] (PyTorch's).
    fn default() -> Self {
        let a = Adagrad::default();
        RowwiseAdagrad {
            lr: a.lr,
            lr_decay: a.lr_decay,
            weight_decay: a.weight_decay,
            initial_accumulator_value: a.initial_accumulator_value,
            eps: a.eps,
            maximize: a.maximize,
        }
    }
}

impl RowwiseAdagrad {
    pub(crate) fn as_adagrad(&self) -> Adagrad {
        Adagrad {
            lr: self.lr,
            lr_decay: self.lr_decay,
            weight_decay: self.weight_decay,
            initial_accumulator_value: self.initial_accumulator_value,
            eps: self.eps,
            maximize: self.maximize,
        }
    }

    /// Checks the hyper-parameters: each finite and `>= 0`.
    pub fn validate(&self) -> Result<()> {
        self.as_adagrad().validate()
    }

    /// A fresh state for a table of `rows` rows (one accumulator each).
    pub fn state<T: Float>(&self, rows: usize) -> AdagradState<T> {
        self.as_adagrad().state(rows)
    }

    /// One step with a dense gradient (`grad` is `rows x cols`, every row
    /// updated).
    pub fn step_dense<P: AdagradElement>(
        &self,
        param: &mut [P],
        rows: usize,
        cols: usize,
        grad: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        P::k_rowwise_dense(self, param, rows, cols, grad, state)
    }

    /// The body of [`RowwiseAdagrad::step_dense`], instantiated per type in maskops.
    pub(crate) fn dense_imp<P: AdagradElement>(
        &self,
        param: &mut [P],
        rows: usize,
        cols: usize,
        grad: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        validate::check_param_shape(rows, cols, param.len())?;
        check_len("grad", param.len(), grad.len())?;
        check_len("state.sum", rows, state.sum.len())?;
        let (step, h) = validate::next_step(&self.as_adagrad(), state.step)?;
        state.step = step;
        let hp = engine::hp::<P>(&h);
        if cols == 0 {
            return Ok(());
        }
        for (r, (p, s)) in param.chunks_mut(cols).zip(state.sum.iter_mut()).enumerate() {
            row_update(p, s, grad, &[r as u64], u64::MAX, &hp);
        }
        Ok(())
    }

    /// One step with a row-sparse gradient (`values` is
    /// `row_indices.len() x cols`; duplicate rows summed first). Untouched
    /// rows, and their accumulators, are not read.
    pub fn step_rows<P: AdagradElement>(
        &self,
        param: &mut [P],
        rows: usize,
        cols: usize,
        row_indices: &[usize],
        values: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        with_thread_ws(|ws| {
            self.step_rows_with(
                cpu::isa(),
                ws,
                param,
                rows,
                cols,
                row_indices,
                values,
                state,
            )
        })
    }

    /// [`RowwiseAdagrad::step_rows`] with a given workspace (the ISA is
    /// accepted for uniformity; this optimizer has one portable path).
    #[allow(clippy::too_many_arguments)]
    pub fn step_rows_with<P: AdagradElement>(
        &self,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [P],
        rows: usize,
        cols: usize,
        row_indices: &[usize],
        values: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        P::k_rowwise_rows(self, isa, ws, param, rows, cols, row_indices, values, state)
    }

    /// The body of [`RowwiseAdagrad::step_rows_with`], instantiated per type in maskops.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rows_imp<P: AdagradElement>(
        &self,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [P],
        rows: usize,
        cols: usize,
        row_indices: &[usize],
        values: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        let _ = isa;
        validate::check_rows(rows, cols, param.len(), row_indices, values.len())?;
        check_len("state.sum", rows, state.sum.len())?;
        let (step, h) = validate::next_step(&self.as_adagrad(), state.step)?;
        state.step = step;
        let hp = engine::hp::<P>(&h);
        if cols == 0 {
            return Ok(());
        }
        let mode = ws.sort(row_indices.len(), rows, |k| row_indices[k]);
        let s = ws.sorted(mode);
        let mut i = 0;
        while i < s.len() {
            let j = s.run_end(i);
            let r = s.key(i);
            row_update(
                &mut param[r * cols..(r + 1) * cols],
                &mut state.sum[r],
                values,
                &s.items[i..j],
                s.pos_mask,
                &hp,
            );
            i = j;
        }
        Ok(())
    }
}

/// The gradient of column `j`: the `values` rows `items[k] & pos_mask`
/// summed in order, negated if maximizing, plus weight decay.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
fn grad_at<P: AdagradElement>(
    p: P,
    values: &[P],
    cols: usize,
    items: &[u64],
    pos_mask: u64,
    j: usize,
    h: &Hp<P::State>,
) -> P::State {
    let mut g = values[(items[0] & pos_mask) as usize * cols + j].to_state();
    for &it in &items[1..] {
        g += values[(it & pos_mask) as usize * cols + j].to_state();
    }
    let g = if h.maximize { -g } else { g };
    if h.decay {
        g + h.wd * p.to_state()
    } else {
        g
    }
}

/// One row: accumulator update by the mean of squares, then the step.
fn row_update<P: AdagradElement>(
    p: &mut [P],
    s: &mut P::State,
    values: &[P],
    items: &[u64],
    pos_mask: u64,
    h: &Hp<P::State>,
) {
    let cols = p.len();
    let zero = <P::State as Element>::ZERO;
    let sq = {
        let p: &[P] = p;
        let val = |j: usize| {
            let g = grad_at(p[j], values, cols, items, pos_mask, j, h);
            g * g
        };
        if cols <= BLOCK {
            block_partial(cols, zero, |_| true, val, |a, b| a + b)
        } else {
            canonical_fold(cols, zero, |_| true, val, |a, b| a + b)
        }
    };
    let ns = *s + sq / <P::State as Element>::from_f64(cols as f64);
    *s = ns;
    let mult = h.clr / (ns.sqrt() + h.eps);
    for (j, pj) in p.iter_mut().enumerate() {
        let g = grad_at(*pj, values, cols, items, pos_mask, j, h);
        *pj = P::from_state(pj.to_state() - mult * g);
    }
}
