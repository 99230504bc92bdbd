//! Masked elementwise arithmetic: an owned [`MaskedArray`] with
//! MaskedTensor's semantics.
//!
//! * Unary ops (`neg abs sqrt exp log pow add_scalar mul_scalar clamp`) keep
//!   the mask and compute on kept entries only.
//! * Binary ops (`add sub mul div maximum minimum`) between two masked
//!   arrays require **equal masks** by default (MaskedTensor's rule: a
//!   mismatch is [`Error::MaskMismatch`] naming the first differing
//!   position); [`MaskPolicy::Intersect`] gives NumPy's `numpy.ma`
//!   semantics (the result keeps the AND of the masks). With a dense
//!   operand — same shape, a row vector (`cols` values) or a column vector
//!   (`rows` values) broadcast over a matrix — the result keeps the masked
//!   array's mask.
//! * Every op has an in-place form (`*_assign`) that allocates nothing;
//!   [`MaskedArray::map_into`] / [`MaskedArray::binary_into`] write kept
//!   results into a caller's buffer, [`MaskedArray::update_dense`] writes
//!   `dense[i] = op(dense[i], self[i])` on kept entries, and
//!   [`MaskedArray::to_dense_into`] is `to_tensor(fill)` into a buffer.
//!
//! Values under a cleared bit are unspecified: no op reads them into
//! arithmetic (NaN/inf there never leaks) and the kernels never write them,
//! so they keep whatever they held. Use [`MaskedArray::to_dense`] to read
//! the array with a fill value.
//!
//! Results are bit-identical on every ISA and thread count (see
//! [`crate::backend`]): `f32` `exp`/`log` use
//! [`crate::math::exp_f32`]/[`crate::math::ln_f32`], `f64` uses `std`.
//!
//! # The Adagrad of PyTorch's MaskedTensor tutorial, written with masked ops
//!
//! ```
//! use maskops::{BinaryOp, Mask, MaskedArray};
//! // param = arange(8).reshape(2, 4); grad specified at (0,2), (1,0), (1,2)
//! let mut param: Vec<f32> = (0..8).map(|i| i as f32).collect();
//! let mut state_sum = vec![0.5f32; 8];
//! let mask = Mask::from_bools(&[false, false, true, false, true, false, true, false]);
//! // masked-out gradient slots may hold anything, even NaN
//! let gvals = vec![f32::NAN, 0.0, 3.0, 0.0, 4.0, f32::NAN, 5.0, 0.0];
//! let grad = MaskedArray::matrix(gvals, mask, 2, 4).unwrap();
//! let (eps, clr) = (1e-10f32, 0.1f32);
//!
//! // state_sum = state_sum + grad.pow(2).to_tensor(0)
//! grad.pow(2.0).update_dense(BinaryOp::Add, &mut state_sum).unwrap();
//! // std = masked_tensor(state_sum, grad.mask()).sqrt().add(eps)
//! let std = MaskedArray::matrix(state_sum.clone(), grad.mask().clone(), 2, 4)
//!     .unwrap()
//!     .sqrt()
//!     .add_scalar(eps);
//! // param = param.add((grad / std).to_tensor(0), alpha=-clr)
//! grad.div(&std)
//!     .unwrap()
//!     .mul_scalar(-clr)
//!     .update_dense(BinaryOp::Add, &mut param)
//!     .unwrap();
//!
//! let expect = |p: f32, g: f32| p + -clr * (g / ((0.5f32 + g * g).sqrt() + eps));
//! assert_eq!(param[2], expect(2.0, 3.0));
//! assert_eq!(param[4], expect(4.0, 4.0));
//! assert_eq!(param[6], expect(6.0, 5.0));
//! assert_eq!(param[0], 0.0); // not specified: untouched
//! assert_eq!(state_sum[2], 9.5);
//! assert_eq!(state_sum[0], 0.5);
//! ```
//!
//! The tutorial updates with `p + (-clr) * (g / std)`; PyTorch's dense
//! Adagrad and [`optim::Adagrad::step_masked`](crate::optim::Adagrad::step_masked)
//! use `addcdiv`'s order, `p - (clr * g) / std`, which can differ in the last
//! bit. Written in that order — `g.mul_scalar(clr).div(&std)` then
//! `update_dense(BinaryOp::Sub, &mut param)` — the masked ops equal
//! `step_masked` bit for bit (`tests/array_adagrad.rs`, with weight decay,
//! `maximize`, `lr_decay`, over several steps; the tutorial's order stays
//! within one ulp).

use crate::cpu::elementwise::{self as ew, Rhs};
use crate::cpu::Isa;
use crate::element::Float;
use crate::error::{check_len, check_shape, Error, Result};
use crate::mask::Mask;
use crate::view::MaskedView;

/// How a binary op treats two masked operands whose masks differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskPolicy {
    /// MaskedTensor's rule: the masks must be equal, else
    /// [`Error::MaskMismatch`] with the first differing position.
    #[default]
    Match,
    /// NumPy's `numpy.ma` rule: an element is kept if both operands keep it
    /// (the AND of the masks).
    Intersect,
}

/// A unary elementwise op (computed on kept entries only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp<T> {
    /// `-x`.
    Neg,
    /// `|x|`.
    Abs,
    /// `sqrt(x)` (NaN for a negative kept value, like PyTorch).
    Sqrt,
    /// `e^x` (`f32`: [`crate::math::exp_f32`]).
    Exp,
    /// `ln x` (`f32`: [`crate::math::ln_f32`]).
    Log,
    /// `x^p`; PyTorch's special exponents `0.5, 1, 2, 3, -0.5, -1, -2` are
    /// `sqrt`, identity, `x*x`, `(x*x)*x`, `1/sqrt`, `1/x`, `1/(x*x)`;
    /// others use `powf`.
    Pow(T),
    /// `x + s`.
    AddScalar(T),
    /// `x * s`.
    MulScalar(T),
    /// `clamp(x, lo, hi)`: NaN stays NaN; `lo > hi` gives `hi` (PyTorch).
    Clamp(T, T),
}

/// A binary elementwise op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `torch.maximum`: NaN if either is NaN, else the larger (`b` on ties).
    Maximum,
    /// `torch.minimum`: NaN if either is NaN, else the smaller (`b` on ties).
    Minimum,
}

/// The second operand of a binary op on a [`MaskedArray`].
///
/// `&MaskedArray`, `&[T]`, `&Vec<T>` and `&[T; N]` convert into it, so
/// `a.add(&b)` and `a.add(&dense)` work directly; broadcasts and scalars are
/// spelled out:
///
/// ```
/// use maskops::{Mask, MaskedArray, Operand};
/// // a 2 x 3 cells-by-genes matrix; cell 1's gene 0 is masked out
/// let x = MaskedArray::matrix(vec![1.0f32, 2.0, 3.0, f32::NAN, 5.0, 6.0],
///                             Mask::from_bools(&[true, true, true, false, true, true]),
///                             2, 3).unwrap();
/// let gene_mean = [1.0f32, 2.0, 3.0];          // a row vector: one per column
/// let cell_scale = [10.0f32, 100.0];           // a column vector: one per row
/// let y = x.sub(Operand::Row(&gene_mean)).unwrap().mul(Operand::Col(&cell_scale)).unwrap();
/// assert_eq!(y.to_dense(-1.0), vec![0.0, 0.0, 0.0, -1.0, 300.0, 300.0]);
/// assert_eq!(y.mask(), x.mask()); // a dense operand keeps the masked array's mask
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Operand<'a, T> {
    /// Another masked array of the same shape (masks combined by the policy).
    Array(&'a MaskedArray<T>),
    /// A dense array of the same number of elements.
    Dense(&'a [T]),
    /// A row vector of `cols` values, broadcast over every row.
    Row(&'a [T]),
    /// A column vector of `rows` values, broadcast over every column.
    Col(&'a [T]),
    /// One value for every element.
    Scalar(T),
}

impl<'a, T> From<&'a MaskedArray<T>> for Operand<'a, T> {
    fn from(a: &'a MaskedArray<T>) -> Self {
        Operand::Array(a)
    }
}

impl<'a, T> From<&'a [T]> for Operand<'a, T> {
    fn from(a: &'a [T]) -> Self {
        Operand::Dense(a)
    }
}

impl<'a, T> From<&'a Vec<T>> for Operand<'a, T> {
    fn from(a: &'a Vec<T>) -> Self {
        Operand::Dense(a)
    }
}

impl<'a, T, const N: usize> From<&'a [T; N]> for Operand<'a, T> {
    fn from(a: &'a [T; N]) -> Self {
        Operand::Dense(a)
    }
}

/// An owned 1-D array or row-major `rows x cols` matrix of values with a
/// keep mask: MaskedTensor for elementwise arithmetic.
///
/// ```
/// use maskops::{Mask, MaskedArray, MaskPolicy, BinaryOp};
/// // the MaskedTensor tutorial's first example: data = arange(5), mask = [T, T, F, T, F]
/// let m0 = MaskedArray::new(vec![0.0f32, 1.0, 2.0, 3.0, 4.0],
///                           Mask::from_bools(&[true, true, false, true, false])).unwrap();
/// let m1 = MaskedArray::new(m0.values().to_vec(), m0.mask().not()).unwrap();
/// assert_eq!(m0.add(&m0).unwrap().to_dense(f32::NAN)[..2], [0.0, 2.0]);
/// assert!(m0.add(&m1).is_err()); // masks must match
/// // NumPy's intersection semantics on request: nothing is kept here
/// let s = m0.binary(BinaryOp::Add, &m1, MaskPolicy::Intersect).unwrap();
/// assert_eq!(s.mask().count_ones(), 0);
/// ```
///
/// Two arrays are equal (`==`) when they have the same shape, the same mask
/// and equal kept values; what lies under cleared bits is not compared.
#[derive(Debug, Clone)]
pub struct MaskedArray<T> {
    values: Vec<T>,
    mask: Mask,
    shape: [usize; 2],
    ndim: usize,
}

impl<T: Float> MaskedArray<T> {
    /// A 1-D masked array; `mask.len()` must equal `values.len()`.
    pub fn new(values: Vec<T>, mask: Mask) -> Result<Self> {
        check_len("mask", values.len(), mask.len())?;
        let n = values.len();
        Ok(MaskedArray {
            values,
            mask,
            shape: [n, 0],
            ndim: 1,
        })
    }

    /// A row-major `rows x cols` masked array; `values` and `mask` must hold
    /// `rows * cols` elements.
    pub fn matrix(values: Vec<T>, mask: Mask, rows: usize, cols: usize) -> Result<Self> {
        check_shape("values", rows, cols, values.len())?;
        check_len("mask", values.len(), mask.len())?;
        Ok(MaskedArray {
            values,
            mask,
            shape: [rows, cols],
            ndim: 2,
        })
    }

    /// From parts with an explicit shape (`[len]` or `[rows, cols]`).
    pub fn from_parts(values: Vec<T>, mask: Mask, shape: &[usize]) -> Result<Self> {
        match *shape {
            [n] => {
                check_len("values", n, values.len())?;
                MaskedArray::new(values, mask)
            }
            [r, c] => MaskedArray::matrix(values, mask, r, c),
            _ => Err(Error::Dim {
                dim: shape.len(),
                ndim: 2,
            }),
        }
    }

    /// Copies a view (values and mask; the shape follows `view.ndim()`).
    pub fn from_view(view: &MaskedView<'_, T>) -> Self {
        MaskedArray {
            values: view.data().to_vec(),
            mask: view.mask().clone(),
            shape: if view.ndim() == 2 {
                [view.rows(), view.cols()]
            } else {
                [view.len(), 0]
            },
            ndim: view.ndim(),
        }
    }

    /// A borrowed view, for the reductions (`view().sum()`, `sum_dim`, …).
    pub fn view(&self) -> MaskedView<'_, T> {
        let v = if self.ndim == 2 {
            MaskedView::matrix(&self.values, &self.mask, self.shape[0], self.shape[1])
        } else {
            MaskedView::new(&self.values, &self.mask)
        };
        v.expect("MaskedArray invariants imply a valid view")
    }

    /// The values; entries under a cleared bit are unspecified.
    pub fn values(&self) -> &[T] {
        &self.values
    }

    /// Mutable values (the mask is unchanged).
    pub fn values_mut(&mut self) -> &mut [T] {
        &mut self.values
    }

    /// The mask.
    pub fn mask(&self) -> &Mask {
        &self.mask
    }

    /// `[len]` for a 1-D array, `[rows, cols]` for a matrix.
    pub fn shape(&self) -> &[usize] {
        &self.shape[..self.ndim]
    }

    /// 1 or 2.
    pub fn ndim(&self) -> usize {
        self.ndim
    }

    /// Rows (1 for a 1-D array).
    pub fn rows(&self) -> usize {
        if self.ndim == 2 {
            self.shape[0]
        } else {
            1
        }
    }

    /// Columns (the length for a 1-D array).
    pub fn cols(&self) -> usize {
        if self.ndim == 2 {
            self.shape[1]
        } else {
            self.shape[0]
        }
    }

    /// Number of elements (kept or not).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// `true` if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value at `i` if kept, `None` if masked out or out of range.
    pub fn get(&self, i: usize) -> Option<T> {
        if i < self.values.len() && self.mask.get(i) {
            Some(self.values[i])
        } else {
            None
        }
    }

    /// Splits into values and mask.
    pub fn into_parts(self) -> (Vec<T>, Mask) {
        (self.values, self.mask)
    }

    /// The values with `fill` under every cleared bit (MaskedTensor's
    /// `to_tensor(fill)`).
    ///
    /// ```
    /// use maskops::{Mask, MaskedArray};
    /// let a = MaskedArray::new(vec![1.0f64, f64::NAN, 3.0], Mask::from_bools(&[true, false, true])).unwrap();
    /// assert_eq!(a.to_dense(0.0), vec![1.0, 0.0, 3.0]);
    /// let mut buf = [9.0; 3];
    /// a.to_dense_into(-1.0, &mut buf).unwrap(); // no allocation
    /// assert_eq!(buf, [1.0, -1.0, 3.0]);
    /// ```
    pub fn to_dense(&self, fill: T) -> Vec<T> {
        let mut out = vec![fill; self.len()];
        self.to_dense_into(fill, &mut out)
            .expect("buffer has the right length");
        out
    }

    /// [`to_dense`](Self::to_dense) into a caller's buffer of `len()` elements.
    pub fn to_dense_into(&self, fill: T, out: &mut [T]) -> Result<()> {
        ew::select(&self.values, &self.mask, fill, out)
    }

    /// Replaces the values with `src` (same length), keeping the mask; no
    /// allocation.
    pub fn copy_values_from(&mut self, src: &[T]) -> Result<()> {
        check_len("src", self.len(), src.len())?;
        self.values.copy_from_slice(src);
        Ok(())
    }

    // ----- unary -----

    /// Applies a unary op to the kept entries, returning a new array with
    /// the same mask, on the given ISA (tests run every available one).
    ///
    /// ```
    /// use maskops::{backend::Isa, Mask, MaskedArray, UnaryOp};
    /// let a = MaskedArray::new(vec![-4.0f32, 4.0, f32::NAN], Mask::from_bools(&[true, true, false])).unwrap();
    /// for isa in Isa::all_available() {
    ///     let r = a.map_with(isa, UnaryOp::Sqrt).unwrap();
    ///     assert!(r.get(0).unwrap().is_nan()); // a kept negative: NaN, like PyTorch
    ///     assert_eq!(r.get(1), Some(2.0));
    ///     assert_eq!(r.get(2), None);          // masked out: nothing computed
    /// }
    /// assert_eq!(a.clamp(-1.0, 1.0).unwrap().to_dense(0.0), vec![-1.0, 1.0, 0.0]);
    /// ```
    pub fn map_with(&self, isa: Isa, op: UnaryOp<T>) -> Result<Self> {
        check_unary(op)?;
        let mut values = crate::buf::zeroed::<T>(self.len());
        ew::unary_with(isa, op, &self.values, &self.mask, &mut values)?;
        Ok(MaskedArray {
            values,
            mask: self.mask.clone(),
            shape: self.shape,
            ndim: self.ndim,
        })
    }

    /// Applies a unary op to the kept entries in place, on the given ISA.
    pub fn map_assign_with(&mut self, isa: Isa, op: UnaryOp<T>) -> Result<()> {
        check_unary(op)?;
        ew::unary_inplace_with(isa, op, &mut self.values, &self.mask)
    }

    /// Writes `op(self[i])` into `out[i]` for every kept `i` (`out` holds
    /// `len()` values); the other entries of `out` are untouched. No
    /// allocation.
    pub fn map_into_with(&self, isa: Isa, op: UnaryOp<T>, out: &mut [T]) -> Result<()> {
        check_unary(op)?;
        check_len("out", self.len(), out.len())?;
        ew::unary_with(isa, op, &self.values, &self.mask, out)
    }

    /// [`map_into_with`](Self::map_into_with) on the detected ISA.
    pub fn map_into(&self, op: UnaryOp<T>, out: &mut [T]) -> Result<()> {
        self.map_into_with(crate::cpu::isa(), op, out)
    }

    /// [`map_with`](Self::map_with) on the detected ISA.
    pub fn map(&self, op: UnaryOp<T>) -> Result<Self> {
        self.map_with(crate::cpu::isa(), op)
    }

    /// [`map_assign_with`](Self::map_assign_with) on the detected ISA.
    pub fn map_assign(&mut self, op: UnaryOp<T>) -> Result<()> {
        self.map_assign_with(crate::cpu::isa(), op)
    }

    fn un(&self, op: UnaryOp<T>) -> Self {
        self.map(op).expect("infallible unary op")
    }

    fn un_assign(&mut self, op: UnaryOp<T>) {
        self.map_assign(op).expect("infallible unary op")
    }

    // ----- binary -----

    /// `op(self, rhs)` on the kept entries, on the given ISA.
    ///
    /// * [`Operand::Array`]: same shape required ([`Error::Shape`] /
    ///   [`Error::Length`]); masks combined by `policy`.
    /// * [`Operand::Dense`] / [`Operand::Row`] / [`Operand::Col`] /
    ///   [`Operand::Scalar`]: the result keeps `self`'s mask; `policy` is
    ///   ignored. A row (column) vector must hold `cols` (`rows`) values.
    pub fn binary_with<'a>(
        &self,
        isa: Isa,
        op: BinaryOp,
        rhs: impl Into<Operand<'a, T>>,
        policy: MaskPolicy,
    ) -> Result<Self>
    where
        T: 'a,
    {
        let rhs = rhs.into();
        let (r, mask) = self.resolve(&rhs, policy)?;
        let mask = mask.unwrap_or_else(|| self.mask.clone());
        let mut values = crate::buf::zeroed::<T>(self.len());
        ew::binary_with(
            isa,
            op,
            &self.values,
            r,
            self.rows(),
            self.cols(),
            &mask,
            &mut values,
        )?;
        Ok(MaskedArray {
            values,
            mask,
            shape: self.shape,
            ndim: self.ndim,
        })
    }

    /// `self = op(self, rhs)` on the kept entries, in place, on the given
    /// ISA. Allocates nothing, except a new mask under
    /// [`MaskPolicy::Intersect`] when `rhs` masks out something `self` keeps.
    pub fn binary_assign_with<'a>(
        &mut self,
        isa: Isa,
        op: BinaryOp,
        rhs: impl Into<Operand<'a, T>>,
        policy: MaskPolicy,
    ) -> Result<()>
    where
        T: 'a,
    {
        let rhs = rhs.into();
        let (r, mask) = self.resolve(&rhs, policy)?;
        let (rows, cols) = (self.rows(), self.cols());
        let mask_ref = mask.as_ref().unwrap_or(&self.mask);
        ew::binary_inplace_with(isa, op, &mut self.values, r, rows, cols, mask_ref)?;
        if let Some(m) = mask {
            self.mask = m;
        }
        Ok(())
    }

    /// Writes `op(self[i], rhs[i])` into `out[i]` for every `i` kept by the
    /// result mask (`self`'s, or the AND under [`MaskPolicy::Intersect`]);
    /// the other entries of `out` are untouched. Returns nothing: the
    /// result mask is `self.mask()` (or `self.mask().and(other.mask())`).
    /// Allocates nothing unless `Intersect` has to build a new mask.
    pub fn binary_into_with<'a>(
        &self,
        isa: Isa,
        op: BinaryOp,
        rhs: impl Into<Operand<'a, T>>,
        policy: MaskPolicy,
        out: &mut [T],
    ) -> Result<()>
    where
        T: 'a,
    {
        let rhs = rhs.into();
        check_len("out", self.len(), out.len())?;
        let (r, mask) = self.resolve(&rhs, policy)?;
        let mask = mask.as_ref().unwrap_or(&self.mask);
        ew::binary_with(
            isa,
            op,
            &self.values,
            r,
            self.rows(),
            self.cols(),
            mask,
            out,
        )
    }

    /// [`binary_into_with`](Self::binary_into_with) on the detected ISA.
    pub fn binary_into<'a>(
        &self,
        op: BinaryOp,
        rhs: impl Into<Operand<'a, T>>,
        policy: MaskPolicy,
        out: &mut [T],
    ) -> Result<()>
    where
        T: 'a,
    {
        self.binary_into_with(crate::cpu::isa(), op, rhs, policy, out)
    }

    /// [`binary_with`](Self::binary_with) on the detected ISA.
    pub fn binary<'a>(
        &self,
        op: BinaryOp,
        rhs: impl Into<Operand<'a, T>>,
        policy: MaskPolicy,
    ) -> Result<Self>
    where
        T: 'a,
    {
        self.binary_with(crate::cpu::isa(), op, rhs, policy)
    }

    /// [`binary_assign_with`](Self::binary_assign_with) on the detected ISA.
    pub fn binary_assign<'a>(
        &mut self,
        op: BinaryOp,
        rhs: impl Into<Operand<'a, T>>,
        policy: MaskPolicy,
    ) -> Result<()>
    where
        T: 'a,
    {
        self.binary_assign_with(crate::cpu::isa(), op, rhs, policy)
    }

    /// Checks `rhs` against `self` and returns the kernel operand and, when
    /// it differs from `self.mask`, the result mask.
    fn resolve<'a>(
        &self,
        rhs: &Operand<'a, T>,
        policy: MaskPolicy,
    ) -> Result<(Rhs<'a, T>, Option<Mask>)> {
        Ok(match *rhs {
            Operand::Array(o) => {
                if o.ndim != self.ndim || o.shape != self.shape {
                    return Err(if o.len() != self.len() {
                        Error::Length {
                            arg: "other",
                            expected: self.len(),
                            actual: o.len(),
                        }
                    } else {
                        Error::Shape {
                            arg: "other",
                            rows: o.rows(),
                            cols: o.cols(),
                            len: self.len(),
                        }
                    });
                }
                let diff = first_difference(&self.mask, &o.mask);
                let mask = match (diff, policy) {
                    (None, _) => None,
                    (Some(position), MaskPolicy::Match) => {
                        return Err(Error::MaskMismatch { position })
                    }
                    (Some(_), MaskPolicy::Intersect) => {
                        if is_subset(&self.mask, &o.mask) {
                            None
                        } else {
                            Some(self.mask.and(&o.mask)?)
                        }
                    }
                };
                (Rhs::Slice(&o.values), mask)
            }
            Operand::Dense(b) => {
                check_len("other", self.len(), b.len())?;
                (Rhs::Slice(b), None)
            }
            Operand::Row(b) => {
                check_len("row", self.cols(), b.len())?;
                (Rhs::Row(b), None)
            }
            Operand::Col(b) => {
                check_len("col", self.rows(), b.len())?;
                (Rhs::Col(b), None)
            }
            Operand::Scalar(s) => (Rhs::Scalar(s), None),
        })
    }

    /// `dense[i] = op(dense[i], self[i])` for every kept `i`; the other
    /// entries of `dense` are untouched. `dense` must hold `len()` values.
    ///
    /// ```
    /// use maskops::{BinaryOp, Mask, MaskedArray};
    /// let g = MaskedArray::new(vec![3.0f32, f32::NAN, 5.0], Mask::from_bools(&[true, false, true])).unwrap();
    /// let mut state_sum = vec![0.5f32; 3];
    /// // state_sum = state_sum + g.pow(2).to_tensor(0), without the temporary
    /// g.pow(2.0).update_dense(BinaryOp::Add, &mut state_sum).unwrap();
    /// assert_eq!(state_sum, vec![9.5, 0.5, 25.5]);
    /// ```
    ///
    /// With `BinaryOp::Add` this is MaskedTensor's `dense + self.to_tensor(0)`
    /// without the temporary (identical except that an untouched `-0.0`
    /// stays `-0.0`).
    pub fn update_dense_with(&self, isa: Isa, op: BinaryOp, dense: &mut [T]) -> Result<()> {
        check_len("dense", self.len(), dense.len())?;
        let n = self.len();
        ew::binary_inplace_with(isa, op, dense, Rhs::Slice(&self.values), 1, n, &self.mask)
    }

    /// [`update_dense_with`](Self::update_dense_with) on the detected ISA.
    pub fn update_dense(&self, op: BinaryOp, dense: &mut [T]) -> Result<()> {
        self.update_dense_with(crate::cpu::isa(), op, dense)
    }
}

/// Validates a unary op's parameters (clamp bounds must not be NaN).
fn check_unary<T: Float>(op: UnaryOp<T>) -> Result<()> {
    if let UnaryOp::Clamp(lo, hi) = op {
        for (name, v) in [("min", lo), ("max", hi)] {
            if v.is_nan() {
                return Err(Error::Param {
                    name,
                    value: v.to_f64(),
                    expected: "not NaN",
                });
            }
        }
    }
    Ok(())
}

/// The first position where two equally long masks differ.
fn first_difference(a: &Mask, b: &Mask) -> Option<usize> {
    a.words()
        .iter()
        .zip(b.words())
        .enumerate()
        .find_map(|(w, (x, y))| {
            let d = x ^ y;
            (d != 0).then(|| w * 64 + d.trailing_zeros() as usize)
        })
}

/// `true` if every bit of `a` is set in `b`.
fn is_subset(a: &Mask, b: &Mask) -> bool {
    a.words().iter().zip(b.words()).all(|(x, y)| x & !y == 0)
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident, $assign:ident => $op:expr;)*) => {
        impl<T: Float> MaskedArray<T> {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Self {
                    self.un($op)
                }
                #[doc = concat!("In-place [`", stringify!($name), "`](Self::", stringify!($name), ").")]
                pub fn $assign(&mut self) {
                    self.un_assign($op)
                }
            )*
        }
    };
}

unary_methods! {
    /// `-x` on kept entries.
    neg, neg_assign => UnaryOp::Neg;
    /// `|x|` on kept entries.
    abs, abs_assign => UnaryOp::Abs;
    /// `sqrt(x)` on kept entries (NaN for a negative kept value).
    sqrt, sqrt_assign => UnaryOp::Sqrt;
    /// `e^x` on kept entries.
    exp, exp_assign => UnaryOp::Exp;
    /// `ln x` on kept entries.
    log, log_assign => UnaryOp::Log;
}

macro_rules! scalar_methods {
    ($($(#[$doc:meta])* $name:ident, $assign:ident => $op:path;)*) => {
        impl<T: Float> MaskedArray<T> {
            $(
                $(#[$doc])*
                pub fn $name(&self, s: T) -> Self {
                    self.un($op(s))
                }
                #[doc = concat!("In-place [`", stringify!($name), "`](Self::", stringify!($name), ").")]
                pub fn $assign(&mut self, s: T) {
                    self.un_assign($op(s))
                }
            )*
        }
    };
}

scalar_methods! {
    /// `x^p` on kept entries (see [`UnaryOp::Pow`]).
    pow, pow_assign => UnaryOp::Pow;
    /// `x + s` on kept entries.
    add_scalar, add_scalar_assign => UnaryOp::AddScalar;
    /// `x * s` on kept entries.
    mul_scalar, mul_scalar_assign => UnaryOp::MulScalar;
}

impl<T: Float> MaskedArray<T> {
    /// `clamp(x, min, max)` on kept entries (see [`UnaryOp::Clamp`]);
    /// `Err` if a bound is NaN.
    pub fn clamp(&self, min: T, max: T) -> Result<Self> {
        self.map(UnaryOp::Clamp(min, max))
    }

    /// In-place [`clamp`](Self::clamp).
    pub fn clamp_assign(&mut self, min: T, max: T) -> Result<()> {
        self.map_assign(UnaryOp::Clamp(min, max))
    }
}

macro_rules! binary_methods {
    ($($name:ident, $assign:ident => $op:ident, $what:literal;)*) => {
        impl<T: Float> MaskedArray<T> {
            $(
                #[doc = concat!("`", $what, "` on kept entries, with another masked array (masks must ",
                    "match; see [`binary`](Self::binary) for NumPy's intersection), a dense slice, or ",
                    "an [`Operand`] (row / column broadcast, scalar).")]
                pub fn $name<'a>(&self, rhs: impl Into<Operand<'a, T>>) -> Result<Self>
                where
                    T: 'a,
                {
                    self.binary(BinaryOp::$op, rhs, MaskPolicy::Match)
                }
                #[doc = concat!("In-place [`", stringify!($name), "`](Self::", stringify!($name),
                    "): allocates nothing.")]
                pub fn $assign<'a>(&mut self, rhs: impl Into<Operand<'a, T>>) -> Result<()>
                where
                    T: 'a,
                {
                    self.binary_assign(BinaryOp::$op, rhs, MaskPolicy::Match)
                }
            )*
        }
    };
}

binary_methods! {
    add, add_assign => Add, "a + b";
    sub, sub_assign => Sub, "a - b";
    mul, mul_assign => Mul, "a * b";
    div, div_assign => Div, "a / b";
    maximum, maximum_assign => Maximum, "torch.maximum(a, b)";
    minimum, minimum_assign => Minimum, "torch.minimum(a, b)";
}

impl<T: Float> PartialEq for MaskedArray<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ndim == other.ndim
            && self.shape == other.shape
            && self.mask == other.mask
            && self
                .mask
                .iter_ones()
                .all(|i| self.values[i] == other.values[i])
    }
}

impl<'a, T: Float> From<MaskedView<'a, T>> for MaskedArray<T> {
    fn from(v: MaskedView<'a, T>) -> Self {
        MaskedArray::from_view(&v)
    }
}
