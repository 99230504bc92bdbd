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
        if i < self.values.len() && self.mask.get(i) {
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

    /// The values with `fill` under every cleared bit (MaskedTensor's `to_tensor(fill)`).
    pub fn to_dense(&self, fill: T) -> Vec<T> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, &v)| if self.mask.get(i) { v } else { fill })
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
