//! The interface a training loop holds: [`Optimizer`], implemented by
//! [`AdagradOptimizer`] and [`RowwiseOptimizer`], which own their state and
//! workspace; global-norm gradient clipping ([`clip_grad_norm`]).

use super::adagrad::{Adagrad, AdagradState};
use super::element::AdagradElement;
use super::rowwise::RowwiseAdagrad;
use super::workspace::Workspace;
use crate::element::{Element, Float};
use crate::error::{check_len, Error, Result};
use crate::mask::Mask;
use crate::view::MaskedView;

/// A gradient in one of the forms the optimizers take (see the `step_*`
/// methods of [`Adagrad`] for each form's rules).
#[derive(Debug, Clone, Copy)]
pub enum Gradient<'a, P> {
    /// Every entry ([`Adagrad::step_dense`]).
    Dense(&'a [P]),
    /// The kept entries of a dense gradient ([`Adagrad::step_masked`]).
    Masked(MaskedView<'a, P>),
    /// COO arrays of a `rows x cols` parameter, duplicates summed
    /// ([`Adagrad::step_coo`]).
    Coo {
        /// Rows of the parameter matrix.
        rows: usize,
        /// Columns of the parameter matrix.
        cols: usize,
        /// Row of each entry.
        row_inds: &'a [usize],
        /// Column of each entry.
        col_inds: &'a [usize],
        /// Value of each entry.
        values: &'a [P],
    },
    /// A `sprs` COO matrix ([`Adagrad::step_sparse`]).
    Sparse(&'a sprs::TriMat<P>),
    /// A `sprs` sparse vector ([`Adagrad::step_sparse_vec`]).
    SparseVec(&'a sprs::CsVec<P>),
    /// The row-sparse gradient of an embedding lookup: row `k` of `values`
    /// (`indices.len() x cols`) is the gradient of parameter row
    /// `indices[k]` ([`Adagrad::step_rows`]). The fastest form for
    /// embedding tables.
    Rows {
        /// Rows of the parameter table.
        rows: usize,
        /// Columns of the parameter table.
        cols: usize,
        /// The parameter row of each gradient row.
        indices: &'a [usize],
        /// `indices.len() x cols` gradient rows, row-major.
        values: &'a [P],
    },
}

impl<P> Gradient<'_, P> {
    fn name(&self) -> &'static str {
        match self {
            Gradient::Dense(_) => "Gradient::Dense",
            Gradient::Masked(_) => "Gradient::Masked",
            Gradient::Coo { .. } => "Gradient::Coo",
            Gradient::Sparse(_) => "Gradient::Sparse",
            Gradient::SparseVec(_) => "Gradient::SparseVec",
            Gradient::Rows { .. } => "Gradient::Rows",
        }
    }
}

/// An optimizer as a training loop holds it: it owns its state (and a
/// workspace, so a step allocates nothing once warm), exposes its learning
/// rate for schedules, and saves and restores its state.
///
/// A step that returns `Err` changes nothing: not the parameters, not the
/// state, not the step counter.
///
/// New optimizers (SGD with momentum, the Adam family) implement the same
/// trait: their state (momentum buffers, first and second moments) goes in
/// the same self-describing byte format under a kind tag of their own, and
/// a form of [`Gradient`] they do not support is refused with
/// [`Error::Unsupported`]. Nothing here needs to change for them.
///
/// ```
/// use maskops::optim::{Adagrad, AdagradOptimizer, Gradient, Optimizer};
/// let mut opt = AdagradOptimizer::<f32>::new(Adagrad { lr: 0.1, ..Default::default() }, 3).unwrap();
/// let mut param = vec![1.0f32, 2.0, 3.0];
/// opt.step(&mut param, Gradient::Dense(&[1.0, 0.0, -1.0])).unwrap();
/// opt.set_learning_rate(0.05).unwrap(); // a schedule
/// opt.step(&mut param, Gradient::Rows { rows: 3, cols: 1, indices: &[2, 2], values: &[1.0, 1.0] })
///     .unwrap();
/// assert_eq!(opt.steps(), 2);
///
/// // save, then restore into a fresh optimizer: bit for bit the same state
/// let saved = opt.save_state();
/// let mut again = AdagradOptimizer::<f32>::new(Adagrad::default(), 3).unwrap();
/// again.load_state(&saved).unwrap();
/// assert_eq!(again.state(), opt.state());
/// assert_eq!(again.learning_rate(), 0.05);
/// // a state saved for another element type or length is refused
/// assert!(AdagradOptimizer::<f64>::new(Adagrad::default(), 3).unwrap().load_state(&saved).is_err());
/// assert!(AdagradOptimizer::<f32>::new(Adagrad::default(), 4).unwrap().load_state(&saved).is_err());
/// ```
pub trait Optimizer<P> {
    /// The learning rate in force.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate (finite and `>= 0`, else `Err` and no change).
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;
    /// Steps taken so far.
    fn steps(&self) -> u64;
    /// One step of `param` with `grad`.
    fn step(&mut self, param: &mut [P], grad: Gradient<'_, P>) -> Result<()>;
    /// The state and hyper-parameters as bytes (a versioned format that
    /// names the optimizer, the element types and the length).
    fn save_state(&self) -> Vec<u8>;
    /// Restores what [`Optimizer::save_state`] wrote: bit for bit the same
    /// state, step counter and hyper-parameters. `Err` (and no change) on
    /// another format version, optimizer, element type or length.
    fn load_state(&mut self, bytes: &[u8]) -> Result<()>;
}

/// Magic bytes that open a saved optimizer state.
const MAGIC: &[u8; 8] = b"MASKOPS\0";
/// The saved-state format version.
const VERSION: u32 = 1;
/// Kind tags of the saved states.
const KIND_ADAGRAD: u8 = 1;
const KIND_ROWWISE: u8 = 2;

fn state_err(reason: String) -> Error {
    Error::State { reason }
}

/// The hyper-parameters both Adagrad forms share, in save order.
fn hyper_values(a: &Adagrad) -> [f64; 5] {
    [
        a.lr,
        a.lr_decay,
        a.weight_decay,
        a.initial_accumulator_value,
        a.eps,
    ]
}

fn write_state<P: AdagradElement>(kind: u8, h: &Adagrad, st: &AdagradState<P::State>) -> Vec<u8> {
    let width = std::mem::size_of::<P::State>();
    let mut out = Vec::with_capacity(64 + st.sum.len() * width);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(kind);
    for name in [P::NAME, <P::State as Element>::NAME] {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    for v in hyper_values(h) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.push(h.maximize as u8);
    out.extend_from_slice(&st.step.to_le_bytes());
    out.extend_from_slice(&(st.sum.len() as u64).to_le_bytes());
    for &v in &st.sum {
        if width == 4 {
            out.extend_from_slice(&v.to_f32().to_bits().to_le_bytes());
        } else {
            out.extend_from_slice(&v.to_f64().to_bits().to_le_bytes());
        }
    }
    out
}

/// A cursor over saved bytes that reports what was cut short.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(e) => {
                let s = &self.bytes[self.pos..e];
                self.pos = e;
                Ok(s)
            }
            None => Err(state_err(format!(
                "the saved state ends at byte {} while reading {what} ({n} bytes)",
                self.bytes.len()
            ))),
        }
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().unwrap_or([0; 4]),
        ))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().unwrap_or([0; 8]),
        ))
    }
    fn name(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.u8(what)? as usize;
        self.take(n, what)
    }
}

/// Parses a saved state for `P` of kind `kind` and length `len`; returns
/// the hyper-parameters and the state. Checks everything before returning.
fn read_state<P: AdagradElement>(
    bytes: &[u8],
    kind: u8,
    len: usize,
) -> Result<(Adagrad, AdagradState<P::State>)> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(MAGIC.len(), "the magic bytes")? != MAGIC {
        return Err(state_err(
            "not a maskops optimizer state (bad magic bytes)".into(),
        ));
    }
    let version = r.u32("the version")?;
    if version != VERSION {
        return Err(state_err(format!(
            "format version {version}, this maskops reads version {VERSION}"
        )));
    }
    let k = r.u8("the optimizer kind")?;
    if k != kind {
        let name = |k: u8| match k {
            KIND_ADAGRAD => "Adagrad",
            KIND_ROWWISE => "RowwiseAdagrad",
            _ => "an unknown optimizer",
        };
        return Err(state_err(format!(
            "saved by {} (kind {k}), loading into {}",
            name(k),
            name(kind)
        )));
    }
    for (what, want) in [
        ("the parameter type", P::NAME),
        ("the state type", <P::State as Element>::NAME),
    ] {
        let got = r.name(what)?;
        if got != want.as_bytes() {
            return Err(state_err(format!(
                "{what} is {}, expected {want}",
                String::from_utf8_lossy(got)
            )));
        }
    }
    let mut h = [0.0f64; 5];
    for v in &mut h {
        *v = f64::from_bits(r.u64("the hyper-parameters")?);
    }
    let maximize = r.u8("maximize")? != 0;
    let hyper = Adagrad {
        lr: h[0],
        lr_decay: h[1],
        weight_decay: h[2],
        initial_accumulator_value: h[3],
        eps: h[4],
        maximize,
    };
    hyper.validate()?;
    let step = r.u64("the step counter")?;
    let n = r.u64("the length")?;
    if n != len as u64 {
        return Err(state_err(format!(
            "the saved accumulator has {n} entries, this optimizer {len}"
        )));
    }
    let width = std::mem::size_of::<P::State>();
    let raw = r.take(len.saturating_mul(width), "the accumulator")?;
    if r.pos != bytes.len() {
        return Err(state_err(format!(
            "{} bytes past the end of the saved state",
            bytes.len() - r.pos
        )));
    }
    let sum = raw
        .chunks_exact(width)
        .map(|c| {
            if width == 4 {
                let b: [u8; 4] = c.try_into().unwrap_or([0; 4]);
                <P::State as Element>::from_f32(f32::from_bits(u32::from_le_bytes(b)))
            } else {
                let b: [u8; 8] = c.try_into().unwrap_or([0; 8]);
                <P::State as Element>::from_f64(f64::from_bits(u64::from_le_bytes(b)))
            }
        })
        .collect();
    Ok((hyper, AdagradState { sum, step }))
}

/// [`Adagrad`] with its state and workspace: every gradient form, no ISA
/// argument, no allocation per step once the workspace is warm.
#[derive(Debug, Clone)]
pub struct AdagradOptimizer<P: AdagradElement> {
    config: Adagrad,
    state: AdagradState<P::State>,
    ws: Workspace,
}

impl<P: AdagradElement> AdagradOptimizer<P> {
    /// An optimizer for `len` parameters (accumulator filled with
    /// `initial_accumulator_value`, step 0). `Err` on a bad hyper-parameter.
    pub fn new(config: Adagrad, len: usize) -> Result<Self> {
        config.validate()?;
        Ok(AdagradOptimizer {
            state: config.state(len),
            config,
            ws: Workspace::new(),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Adagrad {
        &self.config
    }

    /// The accumulator and step counter.
    pub fn state(&self) -> &AdagradState<P::State> {
        &self.state
    }

    /// The workspace (to set [`Workspace::set_parallel_min`]).
    pub fn workspace_mut(&mut self) -> &mut Workspace {
        &mut self.ws
    }
}

impl<P: AdagradElement> Optimizer<P> for AdagradOptimizer<P> {
    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        crate::error::check_nonneg("lr", lr)?;
        self.config.lr = lr;
        Ok(())
    }

    fn steps(&self) -> u64 {
        self.state.step
    }

    fn step(&mut self, param: &mut [P], grad: Gradient<'_, P>) -> Result<()> {
        let (c, isa, ws, st) = (
            &self.config,
            crate::cpu::isa(),
            &mut self.ws,
            &mut self.state,
        );
        match grad {
            Gradient::Dense(g) => c.step_dense_with(isa, ws, param, g, st),
            Gradient::Masked(g) => c.step_masked_with(isa, ws, param, &g, st),
            Gradient::Coo {
                rows,
                cols,
                row_inds,
                col_inds,
                values,
            } => c.step_coo_with(isa, ws, param, rows, cols, row_inds, col_inds, values, st),
            Gradient::Sparse(g) => c.step_sparse_with(isa, ws, param, g.rows(), g.cols(), g, st),
            Gradient::SparseVec(g) => c.step_sparse_vec_with(isa, ws, param, g, st),
            Gradient::Rows {
                rows,
                cols,
                indices,
                values,
            } => c.step_rows_with(isa, ws, param, rows, cols, indices, values, st),
        }
    }

    fn save_state(&self) -> Vec<u8> {
        write_state::<P>(KIND_ADAGRAD, &self.config, &self.state)
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let (config, state) = read_state::<P>(bytes, KIND_ADAGRAD, self.state.sum.len())?;
        self.config = config;
        self.state = state;
        Ok(())
    }
}

/// [`RowwiseAdagrad`] for a `rows x cols` table, with its state (one
/// accumulator per row) and workspace. Takes [`Gradient::Rows`] and
/// [`Gradient::Dense`]; other forms give [`Error::Unsupported`].
#[derive(Debug, Clone)]
pub struct RowwiseOptimizer<P: AdagradElement> {
    config: RowwiseAdagrad,
    rows: usize,
    cols: usize,
    state: AdagradState<P::State>,
    ws: Workspace,
}

impl<P: AdagradElement> RowwiseOptimizer<P> {
    /// An optimizer for a `rows x cols` table. `Err` on a bad
    /// hyper-parameter or a shape whose size overflows.
    pub fn new(config: RowwiseAdagrad, rows: usize, cols: usize) -> Result<Self> {
        config.validate()?;
        if rows.checked_mul(cols).is_none() {
            return Err(Error::Shape {
                arg: "table",
                rows,
                cols,
                len: 0,
            });
        }
        Ok(RowwiseOptimizer {
            state: config.state(rows),
            config,
            rows,
            cols,
            ws: Workspace::new(),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &RowwiseAdagrad {
        &self.config
    }

    /// The per-row accumulator and step counter.
    pub fn state(&self) -> &AdagradState<P::State> {
        &self.state
    }
}

impl<P: AdagradElement> Optimizer<P> for RowwiseOptimizer<P> {
    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        crate::error::check_nonneg("lr", lr)?;
        self.config.lr = lr;
        Ok(())
    }

    fn steps(&self) -> u64 {
        self.state.step
    }

    fn step(&mut self, param: &mut [P], grad: Gradient<'_, P>) -> Result<()> {
        let (rows, cols) = (self.rows, self.cols);
        match grad {
            Gradient::Dense(g) => self
                .config
                .step_dense(param, rows, cols, g, &mut self.state),
            Gradient::Rows {
                rows: r,
                cols: c,
                indices,
                values,
            } => {
                check_len("grad.rows", rows, r)?;
                check_len("grad.cols", cols, c)?;
                let isa = crate::cpu::isa();
                self.config.step_rows_with(
                    isa,
                    &mut self.ws,
                    param,
                    rows,
                    cols,
                    indices,
                    values,
                    &mut self.state,
                )
            }
            other => Err(Error::Unsupported {
                what: other.name(),
                by: "RowwiseOptimizer (one accumulator per row: dense or row-sparse gradients)",
            }),
        }
    }

    fn save_state(&self) -> Vec<u8> {
        write_state::<P>(KIND_ROWWISE, &self.config.as_adagrad(), &self.state)
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let (h, state) = read_state::<P>(bytes, KIND_ROWWISE, self.rows)?;
        self.config = RowwiseAdagrad {
            lr: h.lr,
            lr_decay: h.lr_decay,
            weight_decay: h.weight_decay,
            initial_accumulator_value: h.initial_accumulator_value,
            eps: h.eps,
            maximize: h.maximize,
        };
        self.state = state;
        Ok(())
    }
}

/// One gradient for [`clip_grad_norm`]: its values and, for a masked
/// gradient, the mask of the entries that count (others are neither read
/// nor scaled).
#[derive(Debug)]
pub struct ClipGrad<'a, T> {
    /// The gradient values, scaled in place.
    pub values: &'a mut [T],
    /// `None`: every entry counts.
    pub mask: Option<&'a Mask>,
}

/// Clips gradients by their global L2 norm, as PyTorch's
/// `clip_grad_norm_`: `total = sqrt(sum_i norm(g_i)^2)` over the kept
/// entries (each `norm` in the canonical order), and when `total >
/// max_norm` every kept entry is multiplied by `max_norm / (total + 1e-6)`.
/// Returns `total` (before clipping). Call it before `step`.
///
/// Unlike PyTorch's default, a non-finite total norm (a kept NaN or inf in
/// a gradient) gives `Err` and scales nothing, so one bad batch cannot turn
/// the parameters into NaN; `max_norm` must be finite and `> 0`.
///
/// ```
/// use maskops::optim::{clip_grad_norm, ClipGrad};
/// use maskops::Mask;
/// let mut a = vec![3.0f32, 0.0];
/// let mut b = vec![4.0f32, f32::NAN]; // the NaN is masked out
/// let m = Mask::from_bools(&[true, false]);
/// let total = clip_grad_norm(
///     &mut [ClipGrad { values: &mut a, mask: None }, ClipGrad { values: &mut b, mask: Some(&m) }],
///     1.0,
/// )
/// .unwrap();
/// assert_eq!(total, 5.0);
/// assert!((a[0] - 0.6).abs() < 1e-6 && (b[0] - 0.8).abs() < 1e-6);
/// assert!(b[1].is_nan()); // masked out: untouched
/// ```
pub fn clip_grad_norm<T: Float>(grads: &mut [ClipGrad<'_, T>], max_norm: f64) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::Param {
            name: "max_norm",
            value: max_norm,
            expected: "finite and > 0",
        });
    }
    let mut sq = 0.0f64;
    for g in grads.iter() {
        let n = match g.mask {
            Some(m) => MaskedView::new(g.values, m)?.norm(2.0),
            None => MaskedView::new(g.values, &Mask::ones(g.values.len()))?.norm(2.0),
        };
        if let Some(n) = n {
            let n = n.to_f64();
            sq += n * n;
        }
    }
    let total = sq.sqrt();
    if !total.is_finite() {
        return Err(Error::Param {
            name: "grads",
            value: total,
            expected: "a finite total norm (a kept NaN or inf in a gradient)",
        });
    }
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        let isa = crate::cpu::isa();
        let k = T::from_f64(coef);
        for g in grads.iter_mut() {
            let op = crate::array::UnaryOp::MulScalar(k);
            match g.mask {
                Some(m) => crate::cpu::elementwise::unary_inplace_with(isa, op, g.values, m)?,
                None => {
                    let ones = Mask::ones(g.values.len());
                    crate::cpu::elementwise::unary_inplace_with(isa, op, g.values, &ones)?
                }
            }
        }
    }
    Ok(total)
}
