//! `Adagrad` and its state.

use super::element::AdagradElement;
use super::engine::{self, with_thread_ws};
use super::validate;
use super::workspace::Workspace;
use crate::cpu::{self, Isa};
use crate::element::{Element, Float};
use crate::error::{check_len, Result};
use crate::view::MaskedView;

/// Adagrad with PyTorch's hyper-parameters (`torch.optim.Adagrad`).
///
/// `Default` gives PyTorch's defaults: `lr = 1e-2`, `lr_decay = 0`,
/// `weight_decay = 0`, `initial_accumulator_value = 0`, `eps = 1e-10`,
/// `maximize = false`. Every hyper-parameter must be finite and `>= 0`,
/// which each step checks before touching anything.
///
/// Build it with `..Default::default()` for the fields you leave at
/// PyTorch's values, as below. A field added in a later version always comes
/// with a default that keeps today's behaviour, so code written this way
/// keeps compiling and computing the same thing. (The struct is not
/// `#[non_exhaustive]`, which would forbid exactly this form outside the
/// crate.)
///
/// ```
/// use maskops::optim::Adagrad;
/// let opt = Adagrad { lr: 0.1, lr_decay: 1e-3, ..Default::default() };
/// let mut table = vec![0.0f32; 4 * 3]; // 4 rows x 3 columns
/// let mut state = opt.state(table.len());
/// // rows 1 and 1 again (summed), then row 3
/// opt.step_rows(&mut table, 4, 3, &[1, 3, 1], &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0], &mut state)
///     .unwrap();
/// assert_eq!(&table[0..3], &[0.0, 0.0, 0.0]);
/// assert!((table[3] + 0.1).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adagrad {
    /// Learning rate.
    pub lr: f64,
    /// Learning-rate decay: step `t` uses `lr / (1 + (t - 1) * lr_decay)`.
    pub lr_decay: f64,
    /// L2 penalty added to the gradient (`g + weight_decay * p`); for the
    /// masked and sparse forms only the specified entries are decayed.
    pub weight_decay: f64,
    /// Starting value of the squared-gradient accumulator.
    pub initial_accumulator_value: f64,
    /// Added to `sqrt(sum)` in the denominator.
    pub eps: f64,
    /// Maximize the objective (negate the gradient).
    pub maximize: bool,
}

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// Per-parameter Adagrad state: the squared-gradient accumulator (one entry
/// per parameter element) and the step counter.
///
/// For `f32`/`f16`/`bf16` parameters `T` is `f32`, for `f64` it is `f64`
/// (see [`AdagradElement::State`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AdagradState<T> {
    /// The accumulator `sum` of squared gradients.
    pub sum: Vec<T>,
    /// Number of steps taken (advanced by every successful call, even with an
    /// empty gradient).
    pub step: u64,
}

impl Adagrad {
    /// Checks the hyper-parameters: each finite and `>= 0`.
    pub fn validate(&self) -> Result<()> {
        super::validate::check_hyper(self)
    }

    /// A fresh state for `len` parameters: the accumulator filled with
    /// `initial_accumulator_value`, step 0.
    pub fn state<T: Float>(&self, len: usize) -> AdagradState<T> {
        AdagradState {
            sum: vec![<T as Element>::from_f64(self.initial_accumulator_value); len],
            step: 0,
        }
    }

    /// One step with a dense gradient (`grad.len() == param.len()`).
    pub fn step_dense<P: AdagradElement>(
        &self,
        param: &mut [P],
        grad: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        with_thread_ws(|ws| self.step_dense_with(cpu::isa(), ws, param, grad, state))
    }

    /// [`Adagrad::step_dense`] on a given ISA (any ISA gives the same bits)
    /// and workspace (only its [`Workspace::parallel_min`] is used).
    pub(crate) fn dense_imp<P: AdagradElement>(
        &self,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [P],
        grad: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        check_len("grad", param.len(), grad.len())?;
        validate::check_state(param.len(), state.sum.len())?;
        let (step, h) = validate::next_step(self, state.step)?;
        state.step = step;
        engine::dense(
            isa,
            ws.parallel_min(),
            param,
            &mut state.sum,
            grad,
            &engine::hp::<P>(&h),
        );
        Ok(())
    }

    /// One step with a masked gradient: only entries whose mask bit is set
    /// are updated (accumulator and parameter); the others, and the gradient
    /// values under them (NaN or garbage allowed), are not touched.
    /// `grad.len()` must equal `param.len()` (its 2-D shape is irrelevant).
    ///
    /// ```
    /// use maskops::{Mask, MaskedView, optim::Adagrad};
    /// let opt = Adagrad { lr: 0.1, ..Default::default() };
    /// let mut p = vec![1.0f32, 1.0];
    /// let mut st = opt.state(2);
    /// let g = [1.0f32, f32::NAN];
    /// let m = Mask::from_bools(&[true, false]);
    /// opt.step_masked(&mut p, &MaskedView::new(&g, &m).unwrap(), &mut st).unwrap();
    /// assert_eq!(p[1], 1.0);
    /// assert!((p[0] - 0.9).abs() < 1e-6);
    /// ```
    pub fn step_masked<P: AdagradElement>(
        &self,
        param: &mut [P],
        grad: &MaskedView<'_, P>,
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        with_thread_ws(|ws| self.step_masked_with(cpu::isa(), ws, param, grad, state))
    }

    /// [`Adagrad::step_masked`] on a given ISA and workspace.
    pub(crate) fn masked_imp<P: AdagradElement>(
        &self,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [P],
        grad: &MaskedView<'_, P>,
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        check_len("grad", param.len(), grad.len())?;
        validate::check_state(param.len(), state.sum.len())?;
        let (step, h) = validate::next_step(self, state.step)?;
        state.step = step;
        engine::masked(
            isa,
            ws.parallel_min(),
            param,
            &mut state.sum,
            grad.data(),
            grad.mask().words(),
            &engine::hp::<P>(&h),
        );
        Ok(())
    }

    /// One step with a COO gradient (`sprs::TriMat` of shape `rows x cols`)
    /// on a row-major `rows x cols` parameter. Duplicates are summed in order
    /// of appearance before the update; only the entries present are
    /// updated (and, with `weight_decay`, decayed).
    ///
    /// ```
    /// use maskops::optim::Adagrad;
    /// let opt = Adagrad { lr: 0.1, ..Default::default() };
    /// let mut p: Vec<f32> = (0..8).map(|x| x as f32).collect();
    /// let mut st = opt.state(8);
    /// let g = sprs::TriMat::from_triplets((2, 4), vec![0, 1, 1], vec![2, 0, 2], vec![3.0f32, 4.0, 5.0]);
    /// opt.step_sparse(&mut p, 2, 4, &g, &mut st).unwrap();
    /// assert_eq!(st.sum[2], 9.0);
    /// ```
    pub fn step_sparse<P: AdagradElement>(
        &self,
        param: &mut [P],
        rows: usize,
        cols: usize,
        grad: &sprs::TriMat<P>,
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        with_thread_ws(|ws| self.step_sparse_with(cpu::isa(), ws, param, rows, cols, grad, state))
    }

    /// [`Adagrad::step_sparse`] on a given ISA and workspace.
    #[allow(clippy::too_many_arguments)]
    pub fn step_sparse_with<P: AdagradElement>(
        &self,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [P],
        rows: usize,
        cols: usize,
        grad: &sprs::TriMat<P>,
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        check_len("grad.rows", rows, grad.rows())?;
        check_len("grad.cols", cols, grad.cols())?;
        self.step_coo_with(
            isa,
            ws,
            param,
            rows,
            cols,
            grad.row_inds(),
            grad.col_inds(),
            grad.data(),
            state,
        )
    }

    /// One step with a COO gradient given as raw arrays (`row_inds[k]`,
    /// `col_inds[k]`, `values[k]`), as [`Adagrad::step_sparse`].
    #[allow(clippy::too_many_arguments)]
    pub fn step_coo<P: AdagradElement>(
        &self,
        param: &mut [P],
        rows: usize,
        cols: usize,
        row_inds: &[usize],
        col_inds: &[usize],
        values: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        with_thread_ws(|ws| {
            self.step_coo_with(
                cpu::isa(),
                ws,
                param,
                rows,
                cols,
                row_inds,
                col_inds,
                values,
                state,
            )
        })
    }

    /// [`Adagrad::step_coo`] on a given ISA and workspace (any ISA gives the
    /// same bits; it runs the batched updates of the unique entries).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn coo_imp<P: AdagradElement>(
        &self,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [P],
        rows: usize,
        cols: usize,
        row_inds: &[usize],
        col_inds: &[usize],
        values: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        validate::check_coo_shapes(rows, cols, param.len(), row_inds, col_inds, values.len())?;
        let n = values.len();
        let (row_inds, col_inds) = (&row_inds[..n], &col_inds[..n]);
        // The index check runs inside the grouping pass (which only writes
        // the workspace); the exact error comes from the plain check.
        let keys = row_inds.iter().zip(col_inds).map(|(&r, &c)| {
            (
                r.wrapping_mul(cols).wrapping_add(c),
                (r >= rows) | (c >= cols),
            )
        });
        let grouped = engine::group(ws, param.len(), keys, values);
        if grouped.is_none_or(|g| g.invalid) {
            validate::check_indices("row_inds", row_inds, rows)?;
            validate::check_indices("col_inds", col_inds, cols)?;
        }
        // (never invalid here: an invalid entry fails the checks above)
        let grouped = grouped.filter(|g| !g.invalid);
        validate::check_state(param.len(), state.sum.len())?;
        let (step, h) = validate::next_step(self, state.step)?;
        state.step = step;
        engine::coalesced(
            isa,
            ws,
            grouped,
            param,
            &mut state.sum,
            values,
            |k| row_inds[k] * cols + col_inds[k],
            &engine::hp::<P>(&h),
        );
        Ok(())
    }

    /// One step with a sparse vector gradient (`grad.dim() == param.len()`).
    pub fn step_sparse_vec<P: AdagradElement>(
        &self,
        param: &mut [P],
        grad: &sprs::CsVec<P>,
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        with_thread_ws(|ws| self.step_sparse_vec_with(cpu::isa(), ws, param, grad, state))
    }

    /// [`Adagrad::step_sparse_vec`] on a given ISA and workspace.
    pub(crate) fn sparse_vec_imp<P: AdagradElement>(
        &self,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [P],
        grad: &sprs::CsVec<P>,
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        check_len("grad.dim", param.len(), grad.dim())?;
        let (idx, vals) = (grad.indices(), grad.data());
        check_len("grad.data", idx.len(), vals.len())?;
        validate::check_indices("grad.indices", idx, param.len())?;
        validate::check_state(param.len(), state.sum.len())?;
        let (step, h) = validate::next_step(self, state.step)?;
        state.step = step;
        // Indices of a CsVec increase: the sort reduces to one packing pass.
        let grouped = engine::group(ws, param.len(), idx.iter().map(|&i| (i, false)), vals);
        engine::coalesced(
            isa,
            ws,
            grouped,
            param,
            &mut state.sum,
            vals,
            |k| idx[k],
            &engine::hp::<P>(&h),
        );
        Ok(())
    }

    /// One step with a row-sparse gradient, as an embedding lookup produces
    /// it: row `k` of `values` (`row_indices.len() x cols`, row-major) is the
    /// gradient of parameter row `row_indices[k]`. Duplicate rows are summed
    /// in order of appearance before the update; untouched rows cost nothing.
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

    /// [`Adagrad::step_rows`] on a given ISA and workspace.
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
        validate::check_rows(rows, cols, param.len(), row_indices, values.len())?;
        validate::check_state(param.len(), state.sum.len())?;
        let (step, h) = validate::next_step(self, state.step)?;
        state.step = step;
        let mode = ws.sort(row_indices.len(), rows, |k| row_indices[k]);
        let sorted = ws.sorted(mode);
        engine::rows(
            isa,
            ws,
            sorted,
            param,
            &mut state.sum,
            cols,
            values,
            &engine::hp::<P>(&h),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The comparison-sort fallback (taken when index and position do not fit
    /// one `u64` together) gives the same bits as the radix path, through
    /// every sparse form, sequential and split in parallel.
    #[test]
    fn pairs_fallback_matches_radix() {
        let opt = Adagrad {
            lr: 0.3,
            weight_decay: 0.1,
            initial_accumulator_value: 0.2,
            ..Default::default()
        };
        let (rows, cols) = (37, 11);
        let n = rows * cols;
        let mut x = 99u64;
        let mut rnd = |m: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m as u64) as usize
        };
        let r: Vec<usize> = (0..900).map(|_| rnd(rows)).collect();
        let c: Vec<usize> = (0..900).map(|_| rnd(cols)).collect();
        let v: Vec<f64> = (0..900).map(|_| rnd(1000) as f64 / 500.0 - 1.0).collect();
        let idx: Vec<usize> = (0..300).map(|_| rnd(rows)).collect();
        let vals: Vec<f64> = (0..300 * cols)
            .map(|_| rnd(1000) as f64 / 500.0 - 1.0)
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let run = |force: bool, par_min: usize| {
            let mut ws = Workspace::new();
            ws.force_pairs = force;
            ws.set_parallel_min(par_min);
            let mut p: Vec<f64> = (0..n).map(|i| i as f64 * 0.01).collect();
            let mut st = opt.state::<f64>(n);
            pool.install(|| {
                for _ in 0..2 {
                    opt.step_coo_with(cpu::isa(), &mut ws, &mut p, rows, cols, &r, &c, &v, &mut st)
                        .unwrap();
                    opt.step_rows_with(
                        cpu::isa(),
                        &mut ws,
                        &mut p,
                        rows,
                        cols,
                        &idx,
                        &vals,
                        &mut st,
                    )
                    .unwrap();
                }
            });
            (p, st)
        };
        let want = run(false, 1 << 20);
        for force in [false, true] {
            for par_min in [1, 16, 1 << 20] {
                assert_eq!(run(force, par_min), want, "force {force} par_min {par_min}");
            }
        }
        // And the f64 reference, bit for bit.
        let mut p: Vec<f64> = (0..n).map(|i| i as f64 * 0.01).collect();
        let mut st = opt.state::<f64>(n);
        for _ in 0..2 {
            crate::reference::adagrad::step_coo(&opt, &mut p, rows, cols, &r, &c, &v, &mut st)
                .unwrap();
            crate::reference::adagrad::step_rows(&opt, &mut p, rows, cols, &idx, &vals, &mut st)
                .unwrap();
        }
        assert_eq!((p, st), want);
    }
}

#[cfg(test)]
mod group_tests {
    use super::*;

    /// The bucket grouping (several buckets, split in parallel at bucket
    /// boundaries) gives the same bits as the radix-sort and comparison-sort
    /// paths, for `f32` (values packed in the items) and `f64` (positions),
    /// through `step_coo` and `step_sparse_vec`; invalid indices are still
    /// reported exactly, before anything changes.
    #[test]
    fn grouping_matches_sorting() {
        fn run<P: AdagradElement>(conv: impl Fn(f64) -> P) {
            let opt = Adagrad {
                lr: 0.3,
                weight_decay: 0.1,
                initial_accumulator_value: 0.2,
                ..Default::default()
            };
            let mut x = 4242u64;
            let mut rnd = |m: usize| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % m as u64) as usize
            };
            // (rows, cols, nnz): 16 buckets; 64 buckets with few entries;
            // so sparse that the sort path is taken; one bucket.
            for &(rows, cols, nnz) in &[
                (700, 300, 5000),
                (1024, 1024, 3000),
                (1024, 1024, 2),
                (30, 40, 900),
            ] {
                let n = rows * cols;
                let mut r: Vec<usize> = (0..nnz).map(|_| rnd(rows)).collect();
                let mut c: Vec<usize> = (0..nnz).map(|_| rnd(cols)).collect();
                for k in 0..nnz / 5 {
                    let j = rnd(nnz);
                    r[k] = r[j];
                    c[k] = c[j];
                }
                let v: Vec<P> = (0..nnz)
                    .map(|_| conv(rnd(1000) as f64 / 500.0 - 1.0))
                    .collect();
                let mut vi: Vec<usize> = (0..nnz).map(|_| rnd(n)).collect();
                vi.sort_unstable();
                vi.dedup();
                let vv: Vec<P> = (0..vi.len())
                    .map(|_| conv(rnd(1000) as f64 / 500.0))
                    .collect();
                let cv = sprs::CsVec::new(n, vi, vv);
                let p0: Vec<P> = (0..n).map(|i| conv((i % 97) as f64 * 0.01)).collect();
                let go = |mode: usize, threads: usize, par_min: usize| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let mut ws = Workspace::new();
                    ws.force_sort = mode == 1;
                    ws.force_pairs = mode == 2;
                    ws.set_parallel_min(par_min);
                    let mut p = p0.clone();
                    let mut st = opt.state::<P::State>(n);
                    pool.install(|| {
                        for _ in 0..2 {
                            opt.step_coo_with(
                                cpu::isa(),
                                &mut ws,
                                &mut p,
                                rows,
                                cols,
                                &r,
                                &c,
                                &v,
                                &mut st,
                            )
                            .unwrap();
                            opt.step_sparse_vec_with(cpu::isa(), &mut ws, &mut p, &cv, &mut st)
                                .unwrap();
                        }
                    });
                    (p, st)
                };
                let want = go(1, 1, 1 << 20);
                for mode in 0..3 {
                    for (threads, par_min) in [(1, 1 << 20), (3, 1), (3, 64), (2, 700)] {
                        assert!(
                            go(mode, threads, par_min) == want,
                            "{rows}x{cols} nnz {nnz} mode {mode} threads {threads} par_min {par_min}"
                        );
                    }
                }
                // An invalid index anywhere: the exact error, nothing changed.
                for (bad_r, bad_c) in [(rows, 0), (0, cols + 3)] {
                    let (mut r2, mut c2) = (r.clone(), c.clone());
                    r2[nnz / 2] = bad_r;
                    c2[nnz / 2] = bad_c;
                    let mut ws = Workspace::new();
                    let mut p = p0.clone();
                    let mut st = opt.state::<P::State>(n);
                    let e = opt
                        .step_coo_with(
                            cpu::isa(),
                            &mut ws,
                            &mut p,
                            rows,
                            cols,
                            &r2,
                            &c2,
                            &v,
                            &mut st,
                        )
                        .unwrap_err();
                    let (arg, index, bound) = if bad_r == rows {
                        ("row_inds", rows, rows)
                    } else {
                        ("col_inds", cols + 3, cols)
                    };
                    assert_eq!(
                        e,
                        crate::Error::Index {
                            arg,
                            index,
                            position: nnz / 2,
                            bound
                        }
                    );
                    assert!(p == p0 && st == opt.state::<P::State>(n));
                }
            }
        }
        run::<f32>(|x| x as f32);
        run::<f64>(|x| x);
        run::<half::bf16>(half::bf16::from_f64);
    }
}

/// The public `*_with` forms: each forwards to the instance of its body
/// compiled in maskops for `P` (see `AdagradElement`), so a caller's crate
/// compiles no optimizer code.
impl Adagrad {
    /// [`Adagrad::step_dense`] on a given ISA (any ISA gives the same bits)
    /// and workspace (only its [`Workspace::parallel_min`] is used).
    pub fn step_dense_with<P: AdagradElement>(
        &self,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [P],
        grad: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        P::k_step_dense(self, isa, ws, param, grad, state)
    }

    /// [`Adagrad::step_masked`] on a given ISA and workspace.
    pub fn step_masked_with<P: AdagradElement>(
        &self,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [P],
        grad: &MaskedView<'_, P>,
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        P::k_step_masked(self, isa, ws, param, grad, state)
    }

    /// [`Adagrad::step_coo`] on a given ISA and workspace (any ISA gives the
    /// same bits; it runs the batched updates of the unique entries).
    #[allow(clippy::too_many_arguments)]
    pub fn step_coo_with<P: AdagradElement>(
        &self,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [P],
        rows: usize,
        cols: usize,
        row_inds: &[usize],
        col_inds: &[usize],
        values: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        P::k_step_coo(
            self, isa, ws, param, rows, cols, row_inds, col_inds, values, state,
        )
    }

    /// [`Adagrad::step_sparse_vec`] on a given ISA and workspace.
    pub fn step_sparse_vec_with<P: AdagradElement>(
        &self,
        isa: Isa,
        ws: &mut Workspace,
        param: &mut [P],
        grad: &sprs::CsVec<P>,
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        P::k_step_sparse_vec(self, isa, ws, param, grad, state)
    }

    /// [`Adagrad::step_rows`] on a given ISA and workspace.
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
        P::k_step_rows(self, isa, ws, param, rows, cols, row_indices, values, state)
    }
}
