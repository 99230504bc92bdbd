//! ndarray interop (feature `ndarray`): masked views of arrays without
//! copying, and results back as arrays.
//!
//! A view borrows the array's elements in place when they are contiguous in
//! row-major order (`ArrayView::to_slice`); any other layout (a transposed
//! or strided view) is refused with [`Error::Unsupported`] rather than
//! copied behind the caller's back — `as_standard_layout()` makes the copy
//! explicit. The mask is a [`Mask`] over the same row-major order (or, for
//! [`NdView::from_array`], a broadcast one).
//!
//! ```
//! use maskops::ndarray::{array, Array2};
//! use maskops::{Mask, MaskedView};
//! let a: Array2<f32> = array![[1.0, f32::NAN, 3.0], [4.0, 5.0, 6.0]];
//! let m = Mask::not_nan(a.as_slice().unwrap());
//! let v = MaskedView::from_array2(a.view(), &m)?;
//! let rows = v.sum_dim(1)?.to_array(&[2], f32::NAN)?;
//! assert_eq!(rows, array![4.0, 15.0].into_dyn());
//! # Ok::<(), maskops::Error>(())
//! ```

use crate::element::Element;
use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::nd::NdView;
use crate::view::{MaskedVec, MaskedView};
use ndarray::{ArrayD, ArrayView, ArrayView1, ArrayView2, Dimension, IxDyn};

const LAYOUT: &str = "maskops views of ndarray arrays, which take row-major contiguous \
                      arrays only (use `.as_standard_layout()`)";

impl<'a, T: Element> MaskedView<'a, T> {
    /// A 1-D view of `a`'s elements (contiguous) with `mask`.
    ///
    /// ```
    /// use maskops::{ndarray::array, Mask, MaskedView};
    /// let a = array![1.0f64, 2.0, 3.0];
    /// let m = Mask::from_bools(&[true, false, true]);
    /// assert_eq!(MaskedView::from_array1(a.view(), &m)?.sum(), Some(4.0));
    /// # Ok::<(), maskops::Error>(())
    /// ```
    pub fn from_array1(a: ArrayView1<'a, T>, mask: &'a Mask) -> Result<Self> {
        let data = a.to_slice().ok_or(Error::Unsupported {
            what: "a non-contiguous ArrayView1",
            by: LAYOUT,
        })?;
        MaskedView::new(data, mask)
    }

    /// A `rows x cols` view of `a`'s elements (row-major contiguous) with
    /// `mask`.
    ///
    /// ```
    /// use maskops::{ndarray::array, Mask, MaskedView, Error};
    /// let a = array![[1.0f32, 2.0], [3.0, 4.0]];
    /// let m = Mask::ones(4);
    /// assert_eq!(MaskedView::from_array2(a.view(), &m)?.sum_dim(0)?.values, vec![4.0, 6.0]);
    /// // a transposed view is not row-major: refused, not copied
    /// let e = MaskedView::from_array2(a.t(), &m).unwrap_err();
    /// assert!(matches!(e, Error::Unsupported { .. }));
    /// # Ok::<(), maskops::Error>(())
    /// ```
    pub fn from_array2(a: ArrayView2<'a, T>, mask: &'a Mask) -> Result<Self> {
        let (rows, cols) = a.dim();
        let data = a.to_slice().ok_or(Error::Unsupported {
            what: "a non-row-major ArrayView2",
            by: LAYOUT,
        })?;
        MaskedView::matrix(data, mask, rows, cols)
    }
}

impl<'a, T: Element> NdView<'a, T> {
    /// An N-d view of `a`'s elements (row-major contiguous) with a mask of
    /// shape `mask_shape` (broadcast as in [`NdView::broadcast`]; pass
    /// `a.shape()` for a full mask).
    ///
    /// ```
    /// use maskops::{ndarray::Array4, nd::NdView, Mask};
    /// let scores = Array4::<f32>::zeros((2, 3, 4, 4)); // [B, H, Tq, Tk]
    /// let pad = Mask::padding(&[4, 2], 4)?; // [B, Tk]
    /// let v = NdView::from_array(scores.view(), &pad, &[2, 1, 1, 4])?;
    /// let p = v.softmax(3)?;
    /// assert_eq!(&p.values[..4], &[0.25; 4]);
    /// assert_eq!(&p.values[48..52], &[0.5, 0.5, 0.0, 0.0]); // sequence 1: 2 keys
    /// # Ok::<(), maskops::Error>(())
    /// ```
    pub fn from_array<D: Dimension>(
        a: ArrayView<'a, T, D>,
        mask: &'a Mask,
        mask_shape: &[usize],
    ) -> Result<Self> {
        let shape = a.shape().to_vec();
        let data = a.to_slice().ok_or(Error::Unsupported {
            what: "a non-row-major ArrayView",
            by: LAYOUT,
        })?;
        NdView::broadcast(data, &shape, mask, mask_shape)
    }
}

impl<T: Copy> MaskedVec<T> {
    /// The values as an array of `shape` (row-major), with `fill` under
    /// every cleared bit. `Err` if `shape` does not hold `len()` elements.
    pub fn to_array(&self, shape: &[usize], fill: T) -> Result<ArrayD<T>> {
        // ndarray refuses a shape whose product differs or overflows
        ArrayD::from_shape_vec(IxDyn(shape), self.to_dense(fill)).map_err(|_| Error::Length {
            arg: "shape",
            expected: self.values.len(),
            actual: shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .unwrap_or(usize::MAX),
        })
    }
}
