//! The reference implementations: naive, obviously correct, accumulating in
//! `f64`. They are the oracle every fast path is tested against.
//!
//! They stay public on purpose: they are the crate's specification in code,
//! and a user who wraps maskops (a custom layout, another tensor library, a
//! GPU port) can test their own path against the same oracle the crate's
//! tests use, with the same semantics (nothing kept gives `None` or a
//! cleared bit; masked-out values are never read). They are slow (one `f64`
//! loop, no SIMD, no threads) and generic, so a caller compiles only the
//! ones it calls; training code should call the fast API instead.
//!
//! ```
//! use maskops::{reference, Mask, MaskedView};
//! let x = [1.0f32, f32::NAN, 3.0];
//! let m = Mask::not_nan(&x);
//! let v = MaskedView::new(&x, &m).unwrap();
//! // the fast path agrees with the oracle (here exactly; in general within
//! // the documented error bound of the canonical order)
//! assert_eq!(v.sum(), reference::reduce::sum(&v));
//! ```

pub mod adagrad;
pub mod elementwise;
pub mod loss;
pub mod reduce;
pub mod softmax;
