//! Choosing how the CPU kernels run: the instruction set and the sizes from
//! which work is split over threads.
//!
//! Nothing here changes a result: every ISA and every thread count gives the
//! same bits (the canonical order, [`crate::canonical`]). These knobs are for
//! tests that compare the paths, for benchmarks, and for tuning.
//!
//! * The ISA is detected once, the best this machine has; the environment
//!   variable `MASKOPS_ISA=portable|neon|avx2|avx512` lowers it for the whole
//!   process (a request above what the machine has falls back to the best
//!   one below it). [`with_isa`] forces one for a closure, on the calling
//!   thread; [`Isa::all_available`] lists what the machine can run.
//! * Reductions, softmax, losses and elementwise ops split their work over
//!   rayon's pool from a size set by [`set_threshold`].
//!
//! ```
//! use maskops::backend::{self, Isa};
//! use maskops::{Mask, MaskedView};
//!
//! let x: Vec<f32> = (0..1000).map(|i| i as f32 * 0.25).collect();
//! let m = Mask::random(x.len(), 0.3, 1);
//! let v = MaskedView::new(&x, &m).unwrap();
//! let fast = v.sum();
//! for isa in Isa::all_available() {
//!     // the same bits on every ISA
//!     assert_eq!(backend::with_isa(isa, || v.sum()), fast);
//! }
//! ```

pub use crate::cpu::Isa;

/// The ISA the kernels use on this thread now: the one forced by
/// [`with_isa`] inside its closure, else the detected one (lowered by
/// `MASKOPS_ISA`).
pub fn isa() -> Isa {
    crate::cpu::isa()
}

/// Runs `f` with the CPU kernels forced to `isa` on the calling thread
/// (clamped to what this machine has; see [`Isa::clamp_available`]), then
/// restores the previous choice, also when `f` panics. Work that a kernel
/// hands to rayon's threads runs on the ISA chosen here. Nesting is allowed;
/// the innermost call wins.
///
/// ```
/// use maskops::backend::{with_isa, Isa};
/// use maskops::loss::{self, Reduction};
/// use maskops::Mask;
///
/// let (x, y) = ([1.0f32, 2.0, 3.0], [0.0f32, 0.0, 5.0]);
/// let m = Mask::ones(3);
/// let portable = with_isa(Isa::Portable, || loss::mse(&x, &y, &m, Reduction::Sum)).unwrap();
/// assert_eq!(portable.value, vec![9.0]);
/// assert_eq!(loss::mse(&x, &y, &m, Reduction::Sum).unwrap(), portable);
/// ```
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    crate::cpu::with_forced(isa.clamp_available(), f)
}

/// A size from which a family splits its work over rayon's pool (below it,
/// one thread). See [`threshold`] and [`set_threshold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Threshold {
    /// Reductions and softmax: elements (default `2^17`).
    Reduce,
    /// Losses: work in MSE-element equivalents (an element of MSE, L1,
    /// Huber or smooth L1 counts 1, of BCE 8, a cross-entropy logit 4, ECS
    /// `rows^2 * cols`, Pearson `rows * cols`; default `2^17`).
    Loss,
    /// Losses: elements from which the AVX2 and AVX-512 kernels write large
    /// gradients with non-temporal stores (default `2^22`; `usize::MAX`
    /// turns them off).
    LossStream,
    /// Masked arithmetic (`MaskedArray`): elements (default `2^21`).
    Elementwise,
}

impl Threshold {
    /// Every threshold.
    pub const ALL: [Threshold; 4] = [
        Threshold::Reduce,
        Threshold::Loss,
        Threshold::LossStream,
        Threshold::Elementwise,
    ];

    /// The value this threshold has when the process starts.
    pub fn default_value(self) -> usize {
        match self {
            Threshold::Reduce => crate::cpu::reduce::PAR_MIN_LEN,
            Threshold::Loss => crate::cpu::loss::PAR_MIN_ELEMS,
            Threshold::LossStream => crate::cpu::loss::STREAM_MIN_ELEMS,
            Threshold::Elementwise => crate::cpu::elementwise::PAR_MIN_LEN,
        }
    }
}

/// The current value of a threshold.
pub fn threshold(t: Threshold) -> usize {
    match t {
        Threshold::Reduce => crate::cpu::reduce::par_min_len(),
        Threshold::Loss => crate::cpu::loss::par_min_elems(),
        Threshold::LossStream => crate::cpu::loss::stream_min_elems(),
        Threshold::Elementwise => crate::cpu::elementwise::parallel_min_len(),
    }
}

/// Sets a threshold for the whole process (tests set 0 or 1 to run the
/// parallel paths on small inputs; `usize::MAX` keeps everything on one
/// thread). Results never depend on it, only speed does. The optimizers'
/// threshold belongs to their [`crate::optim::Workspace`].
///
/// ```
/// use maskops::backend::{set_threshold, threshold, Threshold};
/// set_threshold(Threshold::Elementwise, 1 << 20);
/// assert_eq!(threshold(Threshold::Elementwise), 1 << 20);
/// set_threshold(Threshold::Elementwise, Threshold::Elementwise.default_value());
/// ```
pub fn set_threshold(t: Threshold, n: usize) {
    match t {
        Threshold::Reduce => crate::cpu::reduce::set_par_min_len(n),
        Threshold::Loss => crate::cpu::loss::set_par_min_elems(n),
        Threshold::LossStream => crate::cpu::loss::set_stream_min_elems(n),
        Threshold::Elementwise => crate::cpu::elementwise::set_parallel_min_len(n),
    }
}
