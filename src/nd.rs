//! N-dimensional masked views with broadcast masks.
//!
//! [`NdView`] is a row-major array of any rank with a mask of the same
//! rank whose dimensions are either the array's or `1` (NumPy's
//! broadcasting; a mask of lower rank is aligned to the right). The typical
//! use is attention: scores `[B, H, Tq, Tk]` and a key padding mask
//! `[B, Tk]` given the shape `[B, 1, 1, Tk]`, never expanded to `B*H*Tq*Tk`
//! bits in memory.
//!
//! Reductions along any one dimension and softmax / log-softmax along any
//! one dimension (and their backward) run the 2-D kernels of
//! [`MaskedView`] on pieces of the array: runs of whole rows when `dim` is
//! the last dimension, one `[shape[dim], inner]` matrix per outer index
//! otherwise. Each piece's mask is expanded from the broadcast mask into a
//! scratch of at most [`PIECE_ELEMS`] bits (or one piece) just before its
//! kernel runs. Every output element depends only on its own row or
//! column, whose canonical order is the same in a piece as in the whole, so
//! the results have **the same bits as the flattened computation** with the
//! expanded mask (checked by `tests/nd.rs`).
//!
//! ```
//! use maskops::{nd::NdView, Mask};
//! // scores [B=2, H=1, Tq=2, Tk=3]; sequence 0 has 2 real keys, sequence 1 all 3
//! let scores = [0.0f32, 0.0, 9.0, 0.0, 0.0, 9.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
//! let pad = Mask::padding(&[2, 3], 3)?; // [B, Tk]
//! let v = NdView::broadcast(&scores, &[2, 1, 2, 3], &pad, &[2, 1, 1, 3])?;
//! let p = v.softmax(3)?;
//! assert_eq!(&p.values[..3], &[0.5, 0.5, 0.0]); // the padded key gets 0
//! assert_eq!(v.sum_dim(3)?.values, vec![0.0, 0.0, 3.0, 3.0]);
//! # Ok::<(), maskops::Error>(())
//! ```

use crate::cpu::reduce::{ArgReduction, Reduction};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::par;
use crate::view::{MaskedVec, MaskedView};

/// The largest piece (in elements) handed to one 2-D kernel call when
/// reducing along the last dimension: big enough that the kernel splits it
/// over rayon's pool itself, small enough that its expanded mask (128 KiB)
/// stays in cache.
pub const PIECE_ELEMS: usize = 1 << 20;

/// An operation on one 2-D piece, along the piece's `dim`.
type PieceOp<'f, T, R> = &'f (dyn Fn(&MaskedView<'_, T>, usize) -> Result<MaskedVec<R>> + Sync);
/// An elementwise map of one 2-D piece (piece, its `dim`, its first
/// element in the array, its output).
type PieceMap<'f, T> =
    &'f (dyn Fn(&MaskedView<'_, T>, usize, usize, &mut [T]) -> Result<()> + Sync);

/// A borrowed row-major array of any rank with a (possibly broadcast) mask.
/// Masked-out values are never read into arithmetic.
#[derive(Debug, Clone)]
pub struct NdView<'a, T> {
    data: &'a [T],
    shape: Vec<usize>,
    mask: &'a Mask,
    /// The mask's shape, of the array's rank (left-padded with 1s).
    mask_shape: Vec<usize>,
}

fn product(dims: &[usize]) -> Result<usize> {
    dims.iter().try_fold(1usize, |a, &d| {
        a.checked_mul(d).ok_or(Error::Param {
            name: "shape",
            value: f64::INFINITY,
            expected: "a product of dimensions that fits in usize",
        })
    })
}

impl<'a, T: Element> NdView<'a, T> {
    /// A view of `data` with shape `shape` and a mask of the same shape
    /// (`mask.len() == data.len() == product(shape)`).
    ///
    /// ```
    /// use maskops::{nd::NdView, Mask};
    /// let x = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    /// let m = Mask::from_bools(&[true, true, false, true, true, true, true, false]);
    /// let v = NdView::new(&x, &[2, 2, 2], &m)?;
    /// assert_eq!(v.sum_dim(1)?.values, vec![1.0, 6.0, 12.0, 6.0]);
    /// # Ok::<(), maskops::Error>(())
    /// ```
    pub fn new(data: &'a [T], shape: &[usize], mask: &'a Mask) -> Result<Self> {
        Self::broadcast(data, shape, mask, shape)
    }

    /// A view of `data` with shape `shape` and a mask of shape `mask_shape`,
    /// broadcast as in NumPy: `mask_shape` is aligned to the right of
    /// `shape` (missing leading dimensions count as 1) and each of its
    /// dimensions equals the array's or is 1. `mask.len()` must be the
    /// product of `mask_shape`, `data.len()` that of `shape`.
    ///
    /// ```
    /// use maskops::{nd::NdView, Mask, Error};
    /// let x = [0.0f32; 24];
    /// let pad = Mask::ones(8); // [B=2, T=4]
    /// assert!(NdView::broadcast(&x, &[2, 3, 4], &pad, &[2, 1, 4]).is_ok());
    /// // a [3] mask cannot broadcast against a last dimension of 4
    /// let m3 = Mask::ones(3);
    /// let e = NdView::broadcast(&x, &[2, 3, 4], &m3, &[3]).unwrap_err();
    /// assert!(matches!(e, Error::Broadcast { dim: 2, mask: 3, array: 4 }));
    /// ```
    pub fn broadcast(
        data: &'a [T],
        shape: &[usize],
        mask: &'a Mask,
        mask_shape: &[usize],
    ) -> Result<Self> {
        let n = product(shape)?;
        if data.len() != n {
            return Err(Error::Length {
                arg: "data",
                expected: n,
                actual: data.len(),
            });
        }
        if mask_shape.len() > shape.len() {
            return Err(Error::Length {
                arg: "mask_shape",
                expected: shape.len(),
                actual: mask_shape.len(),
            });
        }
        let mut ms = vec![1usize; shape.len() - mask_shape.len()];
        ms.extend_from_slice(mask_shape);
        for (k, (&m, &s)) in ms.iter().zip(shape).enumerate() {
            if m != s && m != 1 {
                return Err(Error::Broadcast {
                    dim: k,
                    mask: m,
                    array: s,
                });
            }
        }
        let mn = product(&ms)?;
        if mask.len() != mn {
            return Err(Error::Length {
                arg: "mask",
                expected: mn,
                actual: mask.len(),
            });
        }
        Ok(NdView {
            data,
            shape: shape.to_vec(),
            mask,
            mask_shape: ms,
        })
    }

    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The mask's shape, of the array's rank (leading 1s added).
    pub fn mask_shape(&self) -> &[usize] {
        &self.mask_shape
    }

    /// The elements.
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// The shape of a reduction along `dim`: `shape` without `dim`.
    pub fn reduced_shape(&self, dim: usize) -> Result<Vec<usize>> {
        self.check_dim(dim)?;
        let mut s = self.shape.clone();
        s.remove(dim);
        Ok(s)
    }

    /// The broadcast mask expanded to the array's shape (one bit per
    /// element). The operations never build it; it is here for callers
    /// that want it, and for tests.
    pub fn expanded_mask(&self) -> Mask {
        Mask::from_words(self.expand(0, self.data.len()), self.data.len())
            .expect("expand writes no bit past the end")
    }

    fn check_dim(&self, dim: usize) -> Result<()> {
        if dim >= self.shape.len() {
            return Err(Error::Dim {
                dim,
                ndim: self.shape.len(),
            });
        }
        Ok(())
    }

    /// The expanded mask bits of elements `start..start + len` (see
    /// [`expand`]).
    fn expand(&self, start: usize, len: usize) -> Vec<u64> {
        expand(&self.shape, &self.mask_shape, self.mask, start, len)
    }

    /// How an operation along `dim` splits into 2-D pieces.
    fn split(&self, dim: usize) -> Split {
        let n = self.shape[dim];
        let inner: usize = self.shape[dim + 1..].iter().product();
        // the outer indices: rows of `n` when `inner == 1`, else matrices
        let units: usize = self.shape[..dim].iter().product();
        if inner == 1 {
            // rows of `n` (the outer indices), as many as fit in a piece,
            // along the piece's dim 1; the kernel parallelizes a piece
            Split {
                unit: n,
                per: (PIECE_ELEMS / n.max(1)).max(1),
                units,
                rows: None,
                cols: n,
                dim: 1,
                par: false,
            }
        } else {
            // one [n, inner] matrix per outer index, along its dim 0; in
            // parallel over outer indices when the pieces are small
            Split {
                unit: n * inner,
                per: 1,
                units,
                rows: Some(n),
                cols: inner,
                dim: 0,
                par: self.data.len() >= PIECE_ELEMS && n * inner < PIECE_ELEMS,
            }
        }
    }

    /// Runs `f` on the piece of units `u0 .. u0 + k` (its mask expanded).
    fn with_piece<R>(
        &self,
        sp: &Split,
        u0: usize,
        k: usize,
        f: impl FnOnce(&MaskedView<'_, T>) -> Result<R>,
    ) -> Result<R> {
        let (start, len) = (u0 * sp.unit, k * sp.unit);
        let m = Mask::from_words(self.expand(start, len), len)?;
        let rows = sp.rows.unwrap_or(k);
        f(&MaskedView::matrix(
            &self.data[start..start + len],
            &m,
            rows,
            sp.cols,
        )?)
    }

    /// Runs `f` on the 2-D pieces for an operation along `dim` and
    /// concatenates their results.
    fn pieces<R: Send + Copy + Default>(
        &self,
        dim: usize,
        f: PieceOp<'_, T, R>,
    ) -> Result<MaskedVec<R>> {
        self.check_dim(dim)?;
        let sp = self.split(dim);
        let job = |p: usize| -> Result<MaskedVec<R>> {
            let u0 = p * sp.per;
            self.with_piece(&sp, u0, sp.per.min(sp.units - u0), |v| f(v, sp.dim))
        };
        let parts = par::map_if(sp.par, sp.units.div_ceil(sp.per), &job);
        let mut values = Vec::new();
        let mut bits = Vec::new();
        for p in parts {
            append(&mut values, &mut bits, p?);
        }
        Ok(MaskedVec {
            values,
            mask: Mask::from_bools(&bits),
        })
    }

    /// A whole-array reduction: the flat [`MaskedView`]'s when the mask is
    /// not broadcast; otherwise the same canonical blocks, each block's
    /// mask expanded just before it is folded.
    fn whole(&self, op: Reduction) -> Option<T> {
        if self.mask_shape == self.shape {
            // not broadcast: `mask.len() == data.len()` (checked by `broadcast`)
            let v = MaskedView::new(self.data, self.mask).ok()?;
            return crate::cpu::reduce::reduce(&v, op);
        }
        let ex = |s: usize, len: usize| self.expand(s, len);
        crate::cpu::reduce::reduce_expanded(self.data, &ex, op)
    }

    /// Whole-array argmin / argmax (see [`whole`](Self::whole)).
    fn whole_arg(&self, op: ArgReduction) -> Option<usize> {
        if self.mask_shape == self.shape {
            let v = MaskedView::new(self.data, self.mask).ok()?;
            return crate::cpu::reduce::arg(&v, op);
        }
        let ex = |s: usize, len: usize| self.expand(s, len);
        crate::cpu::reduce::arg_expanded(self.data, &ex, op)
    }

    /// Sum of the kept elements of the whole array; `None` if nothing is
    /// kept. Like every whole-array reduction of an `NdView`, it has the
    /// bits of [`MaskedView`]'s over the flat data and the expanded mask,
    /// and never builds the expanded mask: each canonical block's bits are
    /// expanded just before the block is folded.
    ///
    /// ```
    /// use maskops::{nd::NdView, Mask};
    /// // [B=2, T=3] values, a [B=2, 1] mask that drops all of batch 1
    /// let x = [1.0f32, 2.0, 3.0, 40.0, 50.0, 60.0];
    /// let m = Mask::from_bools(&[true, false]);
    /// let v = NdView::broadcast(&x, &[2, 3], &m, &[2, 1])?;
    /// assert_eq!(v.sum(), Some(6.0));
    /// assert_eq!(v.mean(), Some(2.0));
    /// assert_eq!((v.amin(), v.amax(), v.prod()), (Some(1.0), Some(3.0), Some(6.0)));
    /// assert_eq!(v.count(), 3);
    /// # Ok::<(), maskops::Error>(())
    /// ```
    pub fn sum(&self) -> Option<T> {
        self.whole(Reduction::Sum)
    }

    /// Mean of the kept elements; `None` if nothing is kept (see [`sum`](Self::sum)).
    pub fn mean(&self) -> Option<T> {
        self.whole(Reduction::Mean)
    }

    /// Product of the kept elements; `None` if nothing is kept (see [`sum`](Self::sum)).
    pub fn prod(&self) -> Option<T> {
        self.whole(Reduction::Prod)
    }

    /// Smallest kept element (NaN if one is kept); `None` if nothing is kept.
    pub fn amin(&self) -> Option<T> {
        self.whole(Reduction::Amin)
    }

    /// Largest kept element (NaN if one is kept); `None` if nothing is kept.
    pub fn amax(&self) -> Option<T> {
        self.whole(Reduction::Amax)
    }

    /// Number of kept elements of the whole array (the expanded mask's
    /// popcount, without expanding it).
    pub fn count(&self) -> usize {
        if self.mask_shape == self.shape {
            return self.mask.count_ones();
        }
        // each kept mask bit stands for the product of the broadcast dims
        let rep: usize = self
            .shape
            .iter()
            .zip(&self.mask_shape)
            .map(|(&s, &m)| if m == 1 { s } else { 1 })
            .product();
        self.mask.count_ones() * rep
    }

    /// Flat (row-major) index of the first minimum among the kept elements
    /// (the first kept NaN, if any); `None` if nothing is kept.
    ///
    /// ```
    /// use maskops::{nd::NdView, Mask};
    /// let x = [5.0f64, -9.0, 7.0, 2.0, 8.0, 1.0];
    /// let m = Mask::from_bools(&[true, false, true]); // [1, 3], column 1 masked
    /// let v = NdView::broadcast(&x, &[2, 3], &m, &[1, 3])?;
    /// assert_eq!(v.argmin(), Some(5)); // 1.0; the -9.0 at 1 is masked out
    /// assert_eq!(v.argmax(), Some(2));
    /// # Ok::<(), maskops::Error>(())
    /// ```
    pub fn argmin(&self) -> Option<usize> {
        self.whole_arg(ArgReduction::Argmin)
    }

    /// Flat index of the first maximum among the kept elements (the first
    /// kept NaN, if any); `None` if nothing is kept.
    pub fn argmax(&self) -> Option<usize> {
        self.whole_arg(ArgReduction::Argmax)
    }

    /// Variance of the kept elements, `sum((x - mean)^2) / (count -
    /// correction)`; `None` if `count <= correction`.
    ///
    /// ```
    /// use maskops::{nd::NdView, Mask};
    /// let x = [1.0f64, 3.0, 100.0, 200.0];
    /// let m = Mask::from_bools(&[true, false]); // [2, 1]: row 1 masked
    /// let v = NdView::broadcast(&x, &[2, 2], &m, &[2, 1])?;
    /// assert_eq!(v.var(1), Some(2.0));
    /// assert_eq!(v.std(0), Some(1.0));
    /// assert_eq!(v.var(2), None);
    /// # Ok::<(), maskops::Error>(())
    /// ```
    pub fn var(&self, correction: usize) -> Option<T> {
        self.whole(Reduction::Var { correction })
    }

    /// Standard deviation of the kept elements (the square root of
    /// [`var`](Self::var)); `None` if `count <= correction`.
    pub fn std(&self, correction: usize) -> Option<T> {
        self.whole(Reduction::Std { correction })
    }

    /// Vector `p`-norm of the kept elements, as [`MaskedView::norm`]
    /// defines it; `None` if nothing is kept or `p` is NaN.
    ///
    /// ```
    /// use maskops::{nd::NdView, Mask};
    /// let x = [3.0f32, 4.0, f32::NAN, f32::NAN];
    /// let m = Mask::from_bools(&[true, false]); // [2, 1]
    /// let v = NdView::broadcast(&x, &[2, 2], &m, &[2, 1])?;
    /// assert_eq!(v.norm(2.0), Some(5.0));
    /// assert_eq!(v.norm(3.0), v.norm(3.0)); // any order
    /// assert_eq!(v.logsumexp().map(|l| l > 4.0), Some(true));
    /// # Ok::<(), maskops::Error>(())
    /// ```
    pub fn norm(&self, p: f64) -> Option<T> {
        self.whole(Reduction::Norm { p })
    }

    /// `log(sum(exp(x)))` over the kept elements (shifted by the maximum);
    /// `None` if nothing is kept.
    pub fn logsumexp(&self) -> Option<T> {
        self.whole(Reduction::LogSumExp)
    }

    /// Masked sum along `dim`; a cleared bit where nothing is kept. The
    /// values are in row-major order of [`reduced_shape`](Self::reduced_shape).
    pub fn sum_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        self.pieces(dim, &|v, d| v.sum_dim(d))
    }

    /// Masked mean along `dim`.
    pub fn mean_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        self.pieces(dim, &|v, d| v.mean_dim(d))
    }

    /// Masked product along `dim`.
    pub fn prod_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        self.pieces(dim, &|v, d| v.prod_dim(d))
    }

    /// Masked minimum along `dim`.
    pub fn amin_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        self.pieces(dim, &|v, d| v.amin_dim(d))
    }

    /// Masked maximum along `dim`.
    pub fn amax_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        self.pieces(dim, &|v, d| v.amax_dim(d))
    }

    /// Index along `dim` of the first kept minimum.
    pub fn argmin_dim(&self, dim: usize) -> Result<MaskedVec<usize>> {
        self.pieces(dim, &|v, d| v.argmin_dim(d))
    }

    /// Index along `dim` of the first kept maximum.
    pub fn argmax_dim(&self, dim: usize) -> Result<MaskedVec<usize>> {
        self.pieces(dim, &|v, d| v.argmax_dim(d))
    }

    /// Masked variance along `dim` with Bessel-style `correction`.
    pub fn var_dim(&self, dim: usize, correction: usize) -> Result<MaskedVec<T>> {
        self.pieces(dim, &|v, d| v.var_dim(d, correction))
    }

    /// Masked standard deviation along `dim`.
    pub fn std_dim(&self, dim: usize, correction: usize) -> Result<MaskedVec<T>> {
        self.pieces(dim, &|v, d| v.std_dim(d, correction))
    }

    /// Masked `p`-norm along `dim`.
    pub fn norm_dim(&self, dim: usize, p: f64) -> Result<MaskedVec<T>> {
        self.pieces(dim, &|v, d| v.norm_dim(d, p))
    }

    /// Masked log-sum-exp along `dim`.
    pub fn logsumexp_dim(&self, dim: usize) -> Result<MaskedVec<T>> {
        self.pieces(dim, &|v, d| v.logsumexp_dim(d))
    }

    /// Masked softmax along `dim` (0 under cleared bits); the output mask is
    /// the expanded mask. For the hot path see
    /// [`softmax_into`](Self::softmax_into), which writes values only.
    pub fn softmax(&self, dim: usize) -> Result<MaskedVec<T>> {
        self.softmax_vec(dim, false)
    }

    /// Masked log-softmax along `dim` (0 under cleared bits).
    pub fn log_softmax(&self, dim: usize) -> Result<MaskedVec<T>> {
        self.softmax_vec(dim, true)
    }

    /// (Log-)softmax as an owned result with the expanded mask.
    fn softmax_vec(&self, dim: usize, log: bool) -> Result<MaskedVec<T>> {
        let mut values = vec![T::default(); self.data.len()];
        self.softmax_map(dim, &mut values, log)?;
        Ok(MaskedVec {
            values,
            mask: self.expanded_mask(),
        })
    }

    /// [`softmax`](Self::softmax) into `out` (the array's length), values
    /// only: nothing the size of the expanded mask is built.
    ///
    /// ```
    /// use maskops::{nd::NdView, Mask};
    /// let x = [1.0f32, 1.0, 5.0, 1.0, 1.0, 5.0];
    /// let keys = Mask::from_bools(&[true, true, false]); // [Tk]
    /// let mut out = [9.0f32; 6];
    /// NdView::broadcast(&x, &[2, 3], &keys, &[3])?.softmax_into(1, &mut out)?;
    /// assert_eq!(out, [0.5, 0.5, 0.0, 0.5, 0.5, 0.0]);
    /// # Ok::<(), maskops::Error>(())
    /// ```
    pub fn softmax_into(&self, dim: usize, out: &mut [T]) -> Result<()> {
        self.softmax_map(dim, out, false)
    }

    /// [`log_softmax`](Self::log_softmax) into `out`, values only.
    pub fn log_softmax_into(&self, dim: usize, out: &mut [T]) -> Result<()> {
        self.softmax_map(dim, out, true)
    }

    fn softmax_map(&self, dim: usize, out: &mut [T], log: bool) -> Result<()> {
        self.check_dim(dim)?;
        crate::error::check_len("out", self.data.len(), out.len())?;
        let run = |v: &MaskedView<'_, T>, d: usize, o: &mut [T]| {
            if log {
                crate::softmax::log_softmax_into(v, d, o)
            } else {
                crate::softmax::softmax_into(v, d, o)
            }
        };
        self.map_pieces(dim, out, &|v, d, _, o| run(v, d, o))
    }

    /// Backward of [`softmax`](Self::softmax) along `dim`: `self` is the
    /// softmax *output* (with the same mask), `grad_output` the gradient
    /// with respect to it; returns the gradient with respect to the input
    /// (0 under cleared bits).
    pub fn softmax_backward(&self, grad_output: &[T], dim: usize) -> Result<MaskedVec<T>> {
        self.softmax_backward_map(grad_output, dim, false)
    }

    /// Backward of [`log_softmax`](Self::log_softmax) along `dim` (`self` is
    /// the log-softmax output).
    pub fn log_softmax_backward(&self, grad_output: &[T], dim: usize) -> Result<MaskedVec<T>> {
        self.softmax_backward_map(grad_output, dim, true)
    }

    fn softmax_backward_map(&self, g: &[T], dim: usize, log: bool) -> Result<MaskedVec<T>> {
        self.check_dim(dim)?;
        crate::error::check_len("grad_output", self.data.len(), g.len())?;
        let mut values = vec![T::default(); self.data.len()];
        self.map_pieces(dim, &mut values, &|v, d, s, o| {
            let gp = &g[s..s + v.len()];
            let r = if log {
                crate::softmax::log_softmax_backward(v, gp, d)?
            } else {
                crate::softmax::softmax_backward(v, gp, d)?
            };
            o.copy_from_slice(&r.values);
            Ok(())
        })?;
        Ok(MaskedVec {
            values,
            mask: self.expanded_mask(),
        })
    }

    /// Runs `f(piece, dim of the piece, its first element, out piece)` over
    /// the 2-D pieces of an elementwise map along `dim`; `out` has the
    /// array's length.
    fn map_pieces(&self, dim: usize, out: &mut [T], f: PieceMap<'_, T>) -> Result<()> {
        let sp = self.split(dim);
        if self.data.is_empty() {
            return Ok(());
        }
        let job = |t: usize, o: &mut [T]| -> Result<()> {
            let u0 = t * sp.per;
            self.with_piece(&sp, u0, o.len() / sp.unit, |v| {
                f(v, sp.dim, u0 * sp.unit, o)
            })
        };
        let errs = std::sync::Mutex::new(None);
        par::chunks_if(sp.par, out, sp.per * sp.unit, &|t, o| {
            if let Err(e) = job(t, o) {
                errs.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
        });
        match errs.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// How an operation along one dimension splits into 2-D pieces: `units`
/// units of `unit` elements (rows of the reduced dimension, or whole
/// `[n, inner]` matrices), `per` units to a piece.
struct Split {
    unit: usize,
    per: usize,
    units: usize,
    /// The piece's rows: `Some(n)` for a matrix piece; `None` for row
    /// pieces (as many rows as units).
    rows: Option<usize>,
    cols: usize,
    /// The dimension of the piece the operation runs along.
    dim: usize,
    par: bool,
}

/// The expanded mask bits of elements `start..start + len` (anywhere in
/// the array) of an array of `shape` under a mask of `mask_shape` (same
/// rank, broadcast), LSB-first from `start`.
/// Not generic over the element type, so compiled once, in maskops.
fn expand(
    shape: &[usize],
    mask_shape: &[usize],
    mask: &Mask,
    start: usize,
    len: usize,
) -> Vec<u64> {
    let mut out = vec![0u64; len.div_ceil(64)];
    let rank = shape.len();
    if len == 0 {
        return out;
    }
    if rank == 0 {
        out[0] = mask.word_at(0) & 1;
        return out;
    }
    let last = shape[rank - 1];
    let mlast = mask_shape[rank - 1];
    // mask strides (row-major over mask_shape); a broadcast dim has stride 0
    let mut mstride = vec![0usize; rank];
    let mut acc = 1usize;
    for k in (0..rank).rev() {
        mstride[k] = if mask_shape[k] == 1 { 0 } else { acc };
        acc *= mask_shape[k];
    }
    let mut pos = 0usize;
    let mut row = start / last.max(1);
    // the first row may start inside a row (whole-array reductions cut
    // the array into canonical blocks, not rows)
    let mut col = start % last.max(1);
    while pos < len {
        // the mask offset of this row's first element
        let mut rem = row;
        let mut off = 0usize;
        for k in (0..rank - 1).rev() {
            let i = rem % shape[k];
            rem /= shape[k];
            off += i * mstride[k];
        }
        let n = (last - col).min(len - pos);
        if mlast == 1 {
            if mask.get(off) {
                set_ones(&mut out, pos, n);
            }
        } else {
            copy_bits(&mut out, pos, mask, off + col, n);
        }
        pos += n;
        row += 1;
        col = 0;
    }
    out
}

/// Appends a piece's values and mask bits.
fn append<R: Copy>(values: &mut Vec<R>, bits: &mut Vec<bool>, o: MaskedVec<R>) {
    bits.extend((0..o.values.len()).map(|i| o.mask.get(i)));
    values.extend_from_slice(&o.values);
}

/// Sets bits `pos..pos + n` of `out`.
fn set_ones(out: &mut [u64], pos: usize, n: usize) {
    let mut i = pos;
    let end = pos + n;
    while i < end {
        let b = i % 64;
        let k = (64 - b).min(end - i);
        let m = if k == 64 {
            u64::MAX
        } else {
            ((1u64 << k) - 1) << b
        };
        out[i / 64] |= m;
        i += k;
    }
}

/// Copies bits `src_pos..src_pos + n` of `src` to `out` from `pos` (the
/// destination bits are zero before).
fn copy_bits(out: &mut [u64], pos: usize, src: &Mask, src_pos: usize, n: usize) {
    let mut i = 0;
    while i < n {
        let b = (pos + i) % 64;
        let k = (64 - b).min(n - i);
        let mut w = src.word_at(src_pos + i);
        if k < 64 {
            w &= (1u64 << k) - 1;
        }
        out[(pos + i) / 64] |= w << b;
        i += k;
    }
}
