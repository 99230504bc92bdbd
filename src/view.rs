//! Masked views (MaskedTensor-like, borrowed) and masked results.

use crate::element::Element;
use crate::error::{check_len, check_shape, Error, Result};
use crate::mask::Mask;

/// A borrowed 1-D array or row-major `rows x cols` matrix with a mask.
///
/// Masked-out values are never read into arithmetic: they may hold NaN,
/// infinities or garbage.
///
/// ```
/// use maskops::{Mask, MaskedView};
/// let x = [1.0f32, f32::NAN, 3.0, 4.0];
/// let m = Mask::from_bools(&[true, false, true, true]);
/// let v = MaskedView::new(&x, &m).unwrap();
/// assert_eq!(v.sum(), Some(8.0));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MaskedView<'a, T> {
    data: &'a [T],
    mask: &'a Mask,
    rows: usize,
    cols: usize,
    ndim: usize,
}

/// An owned masked result: `values[i]` is meaningful where `mask.get(i)`,
/// and is `0` under a cleared bit.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedVec<T> {
    /// The values; `0` (or `T::default()`) under a cleared bit.
    pub values: Vec<T>,
    /// Which values are specified.
    pub mask: Mask,
}

impl<T: Copy> MaskedVec<T> {
    /// The value at `i` if its bit is set, `None` if masked out or out of range.
    pub fn get(&self, i: usize) -> Option<T> {
        if i < self.values.len() && i < self.mask.len() && self.mask.get(i) {
            Some(self.values[i])
        } else {
            None
        }
    }

    /// Number of values (kept or not).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// `true` if there are no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values with `fill` under every cleared bit (MaskedTensor's `to_tensor(fill)`);
    /// values past the end of a shorter mask count as masked out.
    pub fn to_dense(&self, fill: T) -> Vec<T> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if i < self.mask.len() && self.mask.get(i) {
                    v
                } else {
                    fill
                }
            })
            .collect()
    }
}

impl<'a, T: Element> MaskedView<'a, T> {
    /// A 1-D view; `mask.len()` must equal `data.len()`.
    pub fn new(data: &'a [T], mask: &'a Mask) -> Result<Self> {
        check_len("mask", data.len(), mask.len())?;
        Ok(MaskedView {
            data,
            mask,
            rows: 1,
            cols: data.len(),
            ndim: 1,
        })
    }

    /// A row-major `rows x cols` view; `data` and `mask` must both hold
    /// `rows * cols` elements.
    pub fn matrix(data: &'a [T], mask: &'a Mask, rows: usize, cols: usize) -> Result<Self> {
        check_shape("data", rows, cols, data.len())?;
        check_len("mask", data.len(), mask.len())?;
        Ok(MaskedView {
            data,
            mask,
            rows,
            cols,
            ndim: 2,
        })
    }

    /// The underlying values (masked-out slots included).
    #[inline]
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// The mask.
    #[inline]
    pub fn mask(&self) -> &'a Mask {
        self.mask
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// `true` for an empty view.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Rows (1 for a 1-D view).
    #[inline]
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (the length for a 1-D view).
    #[inline]
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// 1 or 2.
    #[inline]
    pub fn ndim(&self) -> usize {
        self.ndim
    }

    /// Checks `dim < ndim`.
    pub(crate) fn check_dim(&self, dim: usize) -> Result<()> {
        if dim < self.ndim {
            Ok(())
        } else {
            Err(Error::Dim {
                dim,
                ndim: self.ndim,
            })
        }
    }

    /// The values with `fill` under every cleared bit (MaskedTensor's `to_tensor(fill)`).
    pub fn to_dense(&self, fill: T) -> Vec<T> {
        self.data
            .iter()
            .enumerate()
            .map(|(i, &v)| if self.mask.get(i) { v } else { fill })
            .collect()
    }
}

/// Masked reductions (PyTorch `torch.masked` semantics, docs/design.md's rules):
/// a reduction with nothing kept gives `None`; per-dim versions give a cleared
/// output bit (value 0) for a row/column with nothing kept. A NaN among the
/// kept elements propagates; masked-out values are never read.
///
/// `dim = 1` reduces over columns (one result per row), `dim = 0` over rows
/// (one per column); a 1-D view has only `dim = 0`, which reduces everything
/// to a one-element [`MaskedVec`]. A bad `dim` gives `Err(Error::Dim)`.
impl<'a, T: Element> MaskedView<'a, T> {
    /// Sum of the kept elements; `None` if nothing is kept.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [1.0f32, f32::INFINITY, 2.0];
    /// let m = Mask::from_bools(&[true, false, true]);
    /// let v = MaskedView::new(&x, &m).unwrap();
    /// assert_eq!(v.sum(), Some(3.0));
    /// let none = Mask::zeros(3);
    /// assert_eq!(MaskedView::new(&x, &none).unwrap().sum(), None);
    /// ```
    pub fn sum(&self) -> Option<T> {
        crate::cpu::reduce::reduce(self, crate::cpu::reduce::Reduction::Sum)
    }

    /// Mean of the kept elements (`sum / count`); `None` if nothing is kept.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [1.0f64, f64::NAN, 4.0];
    /// let m = Mask::not_nan(&x);
    /// assert_eq!(MaskedView::new(&x, &m).unwrap().mean(), Some(2.5));
    /// ```
    pub fn mean(&self) -> Option<T> {
        crate::cpu::reduce::reduce(self, crate::cpu::reduce::Reduction::Mean)
    }

    /// Product of the kept elements; `None` if nothing is kept.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [2.0f32, 0.0, 3.0];
    /// let m = Mask::from_bools(&[true, false, true]);
    /// assert_eq!(MaskedView::new(&x, &m).unwrap().prod(), Some(6.0));
    /// ```
    pub fn prod(&self) -> Option<T> {
        crate::cpu::reduce::reduce(self, crate::cpu::reduce::Reduction::Prod)
    }

    /// Minimum of the kept elements (NaN if a kept element is NaN);
    /// `None` if nothing is kept.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [2.0f32, -9.0, 3.0];
    /// let m = Mask::from_bools(&[true, false, true]);
    /// assert_eq!(MaskedView::new(&x, &m).unwrap().amin(), Some(2.0));
    /// ```
    pub fn amin(&self) -> Option<T> {
        crate::cpu::reduce::reduce(self, crate::cpu::reduce::Reduction::Amin)
    }

    /// Maximum of the kept elements (NaN if a kept element is NaN);
    /// `None` if nothing is kept.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [2.0f32, 9.0, 3.0];
    /// let m = Mask::from_bools(&[true, false, true]);
    /// assert_eq!(MaskedView::new(&x, &m).unwrap().amax(), Some(3.0));
    /// ```
    pub fn amax(&self) -> Option<T> {
        crate::cpu::reduce::reduce(self, crate::cpu::reduce::Reduction::Amax)
    }

    /// Flat index of the first minimum among the kept elements (of the first
    /// kept NaN, if any, like `torch.argmin`); `None` if nothing is kept.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [2.0f32, -9.0, 1.0, 1.0];
    /// let m = Mask::from_bools(&[true, false, true, true]);
    /// assert_eq!(MaskedView::new(&x, &m).unwrap().argmin(), Some(2));
    /// ```
    pub fn argmin(&self) -> Option<usize> {
        crate::cpu::reduce::arg(self, crate::cpu::reduce::ArgReduction::Argmin)
    }

    /// Flat index of the first maximum among the kept elements (of the first
    /// kept NaN, if any, like `torch.argmax`); `None` if nothing is kept.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [5.0f32, 9.0, 5.0];
    /// let m = Mask::from_bools(&[true, false, true]);
    /// assert_eq!(MaskedView::new(&x, &m).unwrap().argmax(), Some(0));
    /// ```
    pub fn argmax(&self) -> Option<usize> {
        crate::cpu::reduce::arg(self, crate::cpu::reduce::ArgReduction::Argmax)
    }

    /// Variance of the kept elements, `sum((x - mean)^2) / (count - correction)`
    /// (`correction = 1` is the unbiased estimator, PyTorch's default);
    /// `None` if `count <= correction`.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [1.0f64, 100.0, 3.0];
    /// let m = Mask::from_bools(&[true, false, true]);
    /// let v = MaskedView::new(&x, &m).unwrap();
    /// assert_eq!(v.var(1), Some(2.0));
    /// assert_eq!(v.var(0), Some(1.0));
    /// assert_eq!(v.var(2), None);
    /// ```
    pub fn var(&self, correction: usize) -> Option<T> {
        crate::cpu::reduce::reduce(self, crate::cpu::reduce::Reduction::Var { correction })
    }

    /// Standard deviation: the square root of [`var`](Self::var);
    /// `None` if `count <= correction`.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [1.0f64, 3.0];
    /// let m = Mask::ones(2);
    /// assert_eq!(MaskedView::new(&x, &m).unwrap().std(0), Some(1.0));
    /// ```
    pub fn std(&self, correction: usize) -> Option<T> {
        crate::cpu::reduce::reduce(self, crate::cpu::reduce::Reduction::Std { correction })
    }

    /// Vector `p`-norm of the kept elements (`torch.linalg.vector_norm` on the
    /// kept elements): `p = inf` is `max |x|`, `p = -inf` is `min |x|`,
    /// `p = 0` counts the nonzero kept elements, any other `p` (negative and
    /// non-integer included) is `(sum |x|^p)^(1/p)`.
    /// `None` if nothing is kept or `p` is NaN (the only invalid order;
    /// [`norm_dim`](Self::norm_dim) reports it as `Err(Error::Param)`).
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [3.0f32, f32::NAN, -4.0];
    /// let m = Mask::from_bools(&[true, false, true]);
    /// let v = MaskedView::new(&x, &m).unwrap();
    /// assert_eq!(v.norm(2.0), Some(5.0));
    /// assert_eq!(v.norm(1.0), Some(7.0));
    /// assert_eq!(v.norm(f64::INFINITY), Some(4.0));
    /// assert_eq!(v.norm(f64::NAN), None);
    /// ```
    pub fn norm(&self, p: f64) -> Option<T> {
        crate::cpu::reduce::reduce(self, crate::cpu::reduce::Reduction::Norm { p })
    }

    /// `log(sum(exp(x)))` over the kept elements, computed stably (shifted by
    /// the maximum); all kept `-inf` gives `-inf`; `None` if nothing is kept.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [0.0f64, 1e9, 0.0];
    /// let m = Mask::from_bools(&[true, false, true]);
    /// let v = MaskedView::new(&x, &m).unwrap();
    /// assert_eq!(v.logsumexp(), Some(2f64.ln()));
    /// ```
    pub fn logsumexp(&self) -> Option<T> {
        crate::cpu::reduce::reduce(self, crate::cpu::reduce::Reduction::LogSumExp)
    }

    /// Per-dim [`sum`](Self::sum): one result per row (`dim = 1`) or column
    /// (`dim = 0`); a cleared bit (value 0) where nothing is kept.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [1.0f32, 2.0, 3.0,
    ///          4.0, 5.0, 6.0];
    /// let m = Mask::from_bools(&[true, true, false,
    ///                            false, false, false]);
    /// let v = MaskedView::matrix(&x, &m, 2, 3).unwrap();
    /// let rows = v.sum_dim(1).unwrap();
    /// assert_eq!(rows.get(0), Some(3.0));
    /// assert_eq!(rows.get(1), None); // fully masked row
    /// assert_eq!(rows.values, vec![3.0, 0.0]);
    /// let cols = v.sum_dim(0).unwrap();
    /// assert_eq!(cols.to_dense(f32::NAN)[..2], [1.0, 2.0]);
    /// assert!(v.sum_dim(2).is_err());
    /// ```
    pub fn sum_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        crate::cpu::reduce::reduce_dim(self, dim, crate::cpu::reduce::Reduction::Sum)
    }

    /// Per-dim [`mean`](Self::mean); a cleared bit where nothing is kept.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [1.0f64, 3.0, f64::NAN, 8.0];
    /// let m = Mask::not_nan(&x);
    /// let v = MaskedView::matrix(&x, &m, 2, 2).unwrap();
    /// assert_eq!(v.mean_dim(0).unwrap().values, vec![1.0, 5.5]);
    /// ```
    pub fn mean_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        crate::cpu::reduce::reduce_dim(self, dim, crate::cpu::reduce::Reduction::Mean)
    }

    /// Per-dim [`prod`](Self::prod); a cleared bit where nothing is kept.
    pub fn prod_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        crate::cpu::reduce::reduce_dim(self, dim, crate::cpu::reduce::Reduction::Prod)
    }

    /// Per-dim [`amin`](Self::amin); a cleared bit where nothing is kept.
    pub fn amin_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        crate::cpu::reduce::reduce_dim(self, dim, crate::cpu::reduce::Reduction::Amin)
    }

    /// Per-dim [`amax`](Self::amax); a cleared bit where nothing is kept.
    pub fn amax_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        crate::cpu::reduce::reduce_dim(self, dim, crate::cpu::reduce::Reduction::Amax)
    }

    /// Per-dim [`argmin`](Self::argmin): the position along `dim` (column
    /// index for `dim = 1`, row index for `dim = 0`); a cleared bit (value 0)
    /// where nothing is kept.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [3.0f32, 1.0,
    ///          0.0, 2.0];
    /// let m = Mask::from_bools(&[true, true, false, true]);
    /// let v = MaskedView::matrix(&x, &m, 2, 2).unwrap();
    /// assert_eq!(v.argmin_dim(1).unwrap().values, vec![1, 1]);
    /// assert_eq!(v.argmin_dim(0).unwrap().values, vec![0, 0]);
    /// ```
    pub fn argmin_dim(&self, dim: usize) -> Result<MaskedVec<usize>> {
        crate::cpu::reduce::arg_dim(self, dim, crate::cpu::reduce::ArgReduction::Argmin)
    }

    /// Per-dim [`argmax`](Self::argmax): the position along `dim`; a cleared
    /// bit (value 0) where nothing is kept.
    pub fn argmax_dim(&self, dim: usize) -> Result<MaskedVec<usize>> {
        crate::cpu::reduce::arg_dim(self, dim, crate::cpu::reduce::ArgReduction::Argmax)
    }

    /// Per-dim [`var`](Self::var); a cleared bit where `count <= correction`.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [1.0f64, 3.0, 5.0, 7.0];
    /// let m = Mask::from_bools(&[true, true, true, false]);
    /// let v = MaskedView::matrix(&x, &m, 2, 2).unwrap();
    /// let r = v.var_dim(1, 1).unwrap();
    /// assert_eq!(r.get(0), Some(2.0));
    /// assert_eq!(r.get(1), None); // one kept element, correction 1
    /// ```
    pub fn var_dim(&self, dim: usize, correction: usize) -> Result<MaskedVec<T>> {
        crate::cpu::reduce::reduce_dim(self, dim, crate::cpu::reduce::Reduction::Var { correction })
    }

    /// Per-dim [`std`](Self::std); a cleared bit where `count <= correction`.
    pub fn std_dim(&self, dim: usize, correction: usize) -> Result<MaskedVec<T>> {
        crate::cpu::reduce::reduce_dim(self, dim, crate::cpu::reduce::Reduction::Std { correction })
    }

    /// Per-dim [`norm`](Self::norm); a cleared bit where nothing is kept.
    /// `Err(Error::Param)` if `p` is NaN.
    ///
    /// ```
    /// use maskops::{Mask, MaskedView, Error};
    /// let x = [3.0f32, 4.0, 1.0, -1.0];
    /// let m = Mask::ones(4);
    /// let v = MaskedView::matrix(&x, &m, 2, 2).unwrap();
    /// assert_eq!(v.norm_dim(1, 2.0).unwrap().values, vec![5.0, 2f32.sqrt()]);
    /// assert!(matches!(v.norm_dim(1, f64::NAN), Err(Error::Param { .. })));
    /// ```
    pub fn norm_dim(&self, dim: usize, p: f64) -> Result<MaskedVec<T>> {
        crate::cpu::reduce::reduce_dim(self, dim, crate::cpu::reduce::Reduction::Norm { p })
    }

    /// Per-dim [`logsumexp`](Self::logsumexp); a cleared bit where nothing is kept.
    pub fn logsumexp_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        crate::cpu::reduce::reduce_dim(self, dim, crate::cpu::reduce::Reduction::LogSumExp)
    }

    /// Masked softmax along `dim` (1: over each row, 0: over each column; a
    /// 1-D view has only `dim = 0`), over the kept elements only. The output
    /// mask is the input mask (fully masked rows stay cleared) and values
    /// under cleared bits are 0. As in PyTorch, a row whose kept values are
    /// all `-inf` gives NaN. Backward: [`crate::softmax::softmax_backward`].
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [0.0f32, 0.0, f32::INFINITY,
    ///          5.0,    6.0, 7.0];
    /// let m = Mask::from_bools(&[true, true, false,
    ///                            false, false, false]);
    /// let y = MaskedView::matrix(&x, &m, 2, 3).unwrap().softmax(1).unwrap();
    /// assert_eq!(y.values, vec![0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
    /// assert_eq!(y.mask, m);
    /// ```
    pub fn softmax(&self, dim: usize) -> Result<MaskedVec<T>> {
        crate::cpu::reduce::softmax(self, dim, false)
    }

    /// Masked log-softmax along `dim` (see [`softmax`](Self::softmax)):
    /// `x - max - ln(sum(exp(x - max)))` over the kept elements, 0 under
    /// cleared bits. Backward: [`crate::softmax::log_softmax_backward`].
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [1.0f64, 1.0, f64::NAN];
    /// let m = Mask::not_nan(&x);
    /// let y = MaskedView::new(&x, &m).unwrap().log_softmax(0).unwrap();
    /// assert_eq!(y.values, vec![-(2f64.ln()), -(2f64.ln()), 0.0]);
    /// ```
    pub fn log_softmax(&self, dim: usize) -> Result<MaskedVec<T>> {
        crate::cpu::reduce::softmax(self, dim, true)
    }
}
