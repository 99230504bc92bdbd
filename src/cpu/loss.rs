//! Dispatch for the loss family: the only caller of the loss kernels in the
//! ISA rooms.
//!
//! Every `*_with(isa, …)` entry validates like the reference, then runs the
//! fused one-pass kernels: each canonical block (elementwise losses) or row
//! (cross-entropy) computes its values and writes its gradient in one pass,
//! and the sums follow the canonical order of [`crate::canonical`], so the
//! result has the same bits for every `isa` and every rayon thread count.
//! `f32` has portable, AVX2, AVX-512 and NEON kernels; `f64` runs the portable
//! kernels (with `std` `exp`/`ln`), for the elementwise losses compiled
//! inside each ISA room so the compiler vectorizes them (same bits).
//!
//! `f32` cross-entropy and BCE use [`crate::math::exp_f32`] /
//! [`crate::math::ln_f32`] or their exact SIMD transcriptions (checked bit
//! for bit by `tests/loss_simd.rs`, which also measures their ulp error
//! against `f64`: see [`exp_with`]).
//!
//! From [`par_min_elems`] elements (elementwise) or logits (cross-entropy)
//! the work is spread over rayon's pool, by canonical block or by row.

use std::any::TypeId;

use crate::par;

use crate::canonical::{canonical_fold, fold_partials, BLOCK};
#[cfg(target_arch = "aarch64")]
use crate::cpu::arch::aarch64::neon::loss as neon;
use crate::cpu::arch::portable::loss as portable;
#[cfg(target_arch = "x86_64")]
use crate::cpu::arch::x86_64::{avx2::loss as avx2, avx512::loss as avx512};
use crate::cpu::Isa;
use crate::element::Float;
use crate::error::{Error, Result};
use crate::loss::{
    check_bce, check_beta, check_ce, check_elementwise, check_positive, CrossEntropy, Loss,
    Reduction,
};
use crate::mask::Mask;
use crate::reference::loss as reference;

/// Default of [`par_min_elems`].
pub const PAR_MIN_ELEMS: usize = 1 << 17;

static PAR_MIN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(PAR_MIN_ELEMS);

/// Work (in MSE-element equivalents: an element of MSE/L1/Huber/smooth L1
/// counts 1, of BCE 8, a cross-entropy logit 4, ECS `rows^2 * cols`,
/// Pearson `rows * cols`) from which a call is split over rayon's pool;
/// below it one thread is faster. Default [`PAR_MIN_ELEMS`] (about 30 µs of
/// single-thread MSE); see the report for the measurement. The thread
/// count never changes the bits.
pub fn par_min_elems() -> usize {
    PAR_MIN.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets [`par_min_elems`] for the whole process (0 always splits,
/// `usize::MAX` never does); for benchmarks, tuning and tests.
pub fn set_par_min_elems(n: usize) {
    PAR_MIN.store(n, std::sync::atomic::Ordering::Relaxed)
}

/// Default of [`stream_min_elems`]: 2^22 elements (16 MiB of `f32`
/// gradient), more than any core's private caches. Streaming stores are the
/// usual choice for outputs that large (glibc's `memset` switches to them
/// too). On the development machine (a shared VM with a 480 MiB last-level
/// cache) they measured within noise, for the elementwise losses and for
/// cross-entropy's zero rows, hot or cold caches alike.
pub const STREAM_MIN_ELEMS: usize = 1 << 22;

static STREAM_MIN: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(STREAM_MIN_ELEMS);

/// From this many elements (default [`STREAM_MIN_ELEMS`]) the AVX2 and
/// AVX-512 rooms write the gradient (and per-element values) of the
/// elementwise losses, and the zero rows of ignored cross-entropy targets,
/// with non-temporal stores where the buffer is aligned: no read of every
/// line before it is written, and the caches are not flushed by an output
/// that would not fit anyway. It changes no bits.
pub fn stream_min_elems() -> usize {
    STREAM_MIN.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets [`stream_min_elems`] for the whole process (`usize::MAX` turns
/// streaming stores off); for benchmarks and tuning.
pub fn set_stream_min_elems(n: usize) {
    STREAM_MIN.store(n, std::sync::atomic::Ordering::Relaxed)
}

/// The float types the fused kernels compute in, with the deterministic
/// `exp`/`ln` each uses.
pub(crate) trait Lf: Float {
    /// `exp`: [`crate::math::exp_f32`] for `f32`, `std` for `f64`.
    fn dexp(self) -> Self;
    /// `ln`: [`crate::math::ln_f32`] for `f32`, `std` for `f64`.
    fn dln(self) -> Self;
    /// `self` if bit 0 of `bit` is set, else `+0`, by AND-ing the bit
    /// pattern with an all-ones / all-zeros mask (a select, never a multiply;
    /// written so that the compiler vectorizes it).
    fn keep_or_zero(self, bit: u64) -> Self;
}

impl Lf for f32 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn dexp(self) -> f32 {
        crate::math::exp_f32(self)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn dln(self) -> f32 {
        crate::math::ln_f32(self)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn keep_or_zero(self, bit: u64) -> f32 {
        f32::from_bits(self.to_bits() & ((bit & 1) as u32).wrapping_neg())
    }
}

impl Lf for f64 {
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn dexp(self) -> f64 {
        self.exp()
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn dln(self) -> f64 {
        self.ln()
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    fn keep_or_zero(self, bit: u64) -> f64 {
        f64::from_bits(self.to_bits() & (bit & 1).wrapping_neg())
    }
}

/// Loss kinds of the elementwise kernel (a const generic parameter).
pub(crate) mod kind {
    /// `(x - y)^2`.
    pub const MSE: u8 = 0;
    /// `|x - y|`.
    pub const L1: u8 = 1;
    /// Huber with `delta`.
    pub const HUBER: u8 = 2;
    /// Smooth L1 with `beta > 0`.
    pub const SMOOTH: u8 = 3;
    /// Binary cross-entropy with logits.
    pub const BCE: u8 = 4;
    /// Smooth L1 with a `beta` outside the range of [`SMOOTH`]'s constants
    /// (`0.5 / beta`, `scale / beta` or `beta^2` overflows the float type):
    /// the reference's formula per element, in `f64`. Portable room only.
    pub const SMOOTH_WIDE: u8 = 5;
    /// Huber with a `delta` that rounds to 0 or to infinity in the float
    /// type (`inf * 0` or `inf - inf` for an infinite difference): the
    /// reference's formula per element, in `f64`. Portable room only.
    pub const HUBER_WIDE: u8 = 6;
}

/// Constants of the elementwise kernels, rounded once from `f64` (their
/// meaning per kind is in `portable::elem_op`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ElemParams<F> {
    /// Gradient scale (MSE: `2 * scale`).
    pub s: F,
    /// Smooth L1: `scale / beta`.
    pub s2: F,
    /// Huber: `delta`; smooth L1: `beta`.
    pub a: F,
    /// Huber: `delta / 2`; smooth L1: `beta / 2`.
    pub b: F,
    /// Huber: `delta * scale`; smooth L1: `0.5 / beta`.
    pub c: F,
    /// [`kind::SMOOTH_WIDE`]: `beta`; [`kind::HUBER_WIDE`]: `delta` (in `f64`).
    pub wide: f64,
    /// Write the outputs with non-temporal (streaming) stores where aligned:
    /// set for inputs far larger than the caches, where it saves the
    /// read-for-ownership of every gradient line. Changes no bits. Only
    /// the x86 rooms have streaming stores (the NEON room stores plainly).
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    pub stream: bool,
}

/// The kernels of one float type on one ISA.
pub(crate) trait Kernels: Lf {
    #[allow(clippy::too_many_arguments)]
    fn elem_block<const K: u8>(
        isa: Isa,
        p: &ElemParams<Self>,
        x: &[Self],
        y: &[Self],
        pw: Option<(&[Self], usize)>,
        words: &[u64],
        grad: &mut [Self],
        vals: Option<&mut [Self]>,
    ) -> Self;
    fn ce_stats(
        isa: Isa,
        x: &[Self],
        w: Option<&[Self]>,
        with_q: bool,
        g: &mut [Self],
    ) -> (Self, Self, Self);
    fn ce_grad(isa: Isa, g: &mut [Self], w: Option<&[Self]>, alpha: Self, beta: Self);
    /// Zeroes a gradient row, with streaming stores when `stream`.
    fn zero_row(isa: Isa, g: &mut [Self], stream: bool) {
        let _ = (isa, stream);
        g.fill(Self::ZERO);
    }
}

impl Kernels for f64 {
    fn elem_block<const K: u8>(
        isa: Isa,
        p: &ElemParams<f64>,
        x: &[f64],
        y: &[f64],
        pw: Option<(&[f64], usize)>,
        words: &[u64],
        grad: &mut [f64],
        vals: Option<&mut [f64]>,
    ) -> f64 {
        match isa.clamp_available() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX-512 F/BW/VL/DQ (clamp_available).
            Isa::Avx512 => unsafe { avx512::elem_block_f64::<K>(p, x, y, pw, words, grad, vals) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 (clamp_available).
            Isa::Avx2 => unsafe { avx2::elem_block_f64::<K>(p, x, y, pw, words, grad, vals) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: NEON is part of the aarch64 base architecture.
            Isa::Neon => unsafe { neon::elem_block_f64::<K>(p, x, y, pw, words, grad, vals) },
            _ => portable::elem_block::<f64, K>(p, x, y, pw, words, grad, vals),
        }
    }
    fn ce_stats(
        _isa: Isa,
        x: &[f64],
        w: Option<&[f64]>,
        with_q: bool,
        g: &mut [f64],
    ) -> (f64, f64, f64) {
        portable::ce_stats(x, w, with_q, g)
    }
    fn ce_grad(_isa: Isa, g: &mut [f64], w: Option<&[f64]>, alpha: f64, beta: f64) {
        portable::ce_grad(g, w, alpha, beta)
    }
}

impl Kernels for f32 {
    #[inline]
    fn elem_block<const K: u8>(
        isa: Isa,
        p: &ElemParams<f32>,
        x: &[f32],
        y: &[f32],
        pw: Option<(&[f32], usize)>,
        words: &[u64],
        grad: &mut [f32],
        vals: Option<&mut [f32]>,
    ) -> f32 {
        match isa.clamp_available() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX-512 F/BW/VL/DQ + AVX2/FMA (clamp_available).
            Isa::Avx512 => unsafe { avx512::elem_block::<K>(p, x, y, pw, words, grad, vals) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 + FMA (clamp_available).
            Isa::Avx2 => unsafe { avx2::elem_block::<K>(p, x, y, pw, words, grad, vals) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: NEON is part of the aarch64 base architecture.
            Isa::Neon => unsafe { neon::elem_block::<K>(p, x, y, pw, words, grad, vals) },
            _ => portable::elem_block::<f32, K>(p, x, y, pw, words, grad, vals),
        }
    }
    #[inline]
    fn ce_stats(
        isa: Isa,
        x: &[f32],
        w: Option<&[f32]>,
        with_q: bool,
        g: &mut [f32],
    ) -> (f32, f32, f32) {
        match isa.clamp_available() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX-512 (clamp_available).
            Isa::Avx512 => unsafe { avx512::ce_stats(x, w, with_q, g) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 (clamp_available).
            Isa::Avx2 => unsafe { avx2::ce_stats(x, w, with_q, g) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: NEON is part of the aarch64 base architecture.
            Isa::Neon => unsafe { neon::ce_stats(x, w, with_q, g) },
            _ => portable::ce_stats(x, w, with_q, g),
        }
    }
    #[inline]
    fn ce_grad(isa: Isa, g: &mut [f32], w: Option<&[f32]>, alpha: f32, beta: f32) {
        match isa.clamp_available() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX-512 (clamp_available).
            Isa::Avx512 => unsafe { avx512::ce_grad(g, w, alpha, beta) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 (clamp_available).
            Isa::Avx2 => unsafe { avx2::ce_grad(g, w, alpha, beta) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: NEON is part of the aarch64 base architecture.
            Isa::Neon => unsafe { neon::ce_grad(g, w, alpha, beta) },
            _ => portable::ce_grad(g, w, alpha, beta),
        }
    }
    #[inline]
    fn zero_row(isa: Isa, g: &mut [f32], stream: bool) {
        match (isa.clamp_available(), stream) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX-512 (clamp_available).
            (Isa::Avx512, true) => unsafe { avx512::zero_stream(g) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 (clamp_available).
            (Isa::Avx2, true) => unsafe { avx2::zero_stream(g) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: NEON is part of the aarch64 base architecture.
            (Isa::Neon, true) => unsafe { neon::zero_stream(g) },
            _ => g.fill(0.0),
        }
    }
}

// ------------------------------------------------------------ type bridge

fn same<T: 'static, U: 'static>() -> bool {
    TypeId::of::<T>() == TypeId::of::<U>()
}

/// Reinterprets a slice of `T` as a slice of `U`.
///
/// # Safety
/// `T` and `U` must be the same type.
unsafe fn re<T, U>(s: &[T]) -> &[U] {
    // SAFETY: same type (caller), so same layout, length and lifetime.
    unsafe { std::slice::from_raw_parts(s.as_ptr() as *const U, s.len()) }
}

/// Mutable version of [`re`].
///
/// # Safety
/// `T` and `U` must be the same type.
unsafe fn re_mut<T, U>(s: &mut [T]) -> &mut [U] {
    // SAFETY: same type (caller), so same layout, length and lifetime.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut U, s.len()) }
}

// ------------------------------------------------------------ elementwise

/// An elementwise loss and its hyper-parameter.
#[derive(Debug, Clone, Copy)]
enum Op {
    Mse,
    L1,
    Huber(f64),
    Smooth(f64),
    Bce,
}

/// The fused elementwise loss in `F`: writes `grad` (and the per-element
/// values into `vals` for `Reduction::None`) and returns the reduced value
/// (the sum, or the mean; meaningless for `Reduction::None`).
#[allow(clippy::too_many_arguments)]
fn elem_impl<F: Kernels>(
    isa: Isa,
    op: Op,
    x: &[F],
    y: &[F],
    pw: Option<&[F]>,
    mask: &Mask,
    reduction: Reduction,
    grad: &mut [F],
    vals: Option<&mut [F]>,
) -> F {
    let kept = mask.count_ones();
    let scale = match reduction {
        Reduction::Mean => {
            if kept == 0 {
                grad.fill(F::ZERO);
                return F::ZERO;
            }
            1.0 / kept as f64
        }
        _ => 1.0,
    };
    let f = F::from_f64;
    let mut p = ElemParams {
        s: f(scale),
        s2: F::ZERO,
        a: F::ZERO,
        b: F::ZERO,
        c: F::ZERO,
        wide: 0.0,
        stream: x.len() >= stream_min_elems(),
    };
    let total = match op {
        Op::Mse => {
            p.s = f(2.0 * scale);
            run_blocks::<F, { kind::MSE }>(isa, &p, x, y, pw, mask, grad, vals)
        }
        Op::L1 => run_blocks::<F, { kind::L1 }>(isa, &p, x, y, pw, mask, grad, vals),
        Op::Smooth(0.0) => run_blocks::<F, { kind::L1 }>(isa, &p, x, y, pw, mask, grad, vals),
        Op::Huber(delta) => {
            p.a = f(delta);
            p.b = f(0.5 * delta);
            p.c = f(delta * scale);
            p.wide = delta;
            if p.a > F::ZERO && p.a.is_finite() {
                run_blocks::<F, { kind::HUBER }>(isa, &p, x, y, pw, mask, grad, vals)
            } else {
                // delta outside the type's range: the reference's formula
                run_blocks::<F, { kind::HUBER_WIDE }>(Isa::Portable, &p, x, y, pw, mask, grad, vals)
            }
        }
        Op::Smooth(beta) => {
            p.s2 = f(scale / beta);
            p.a = f(beta);
            p.b = f(0.5 * beta);
            p.c = f(0.5 / beta);
            p.wide = beta;
            if p.s2.is_finite() && p.c.is_finite() && (p.a * p.a).is_finite() {
                run_blocks::<F, { kind::SMOOTH }>(isa, &p, x, y, pw, mask, grad, vals)
            } else {
                // A tiny beta (`0 * inf` for a kept zero difference) or a huge
                // one (`d * d` overflows where `0.5 d^2 / beta` does not):
                // the reference's formula, the same on every ISA.
                run_blocks::<F, { kind::SMOOTH_WIDE }>(
                    Isa::Portable,
                    &p,
                    x,
                    y,
                    pw,
                    mask,
                    grad,
                    vals,
                )
            }
        }
        Op::Bce => run_blocks::<F, { kind::BCE }>(isa, &p, x, y, pw, mask, grad, vals),
    };
    match reduction {
        Reduction::Mean => F::from_f64(total.to_f64() / kept as f64),
        _ => total,
    }
}

/// Runs every canonical block (spread over rayon's pool from
/// [`par_min_elems`] elements) and folds the block partials canonically.
#[allow(clippy::too_many_arguments)]
fn run_blocks<F: Kernels, const K: u8>(
    isa: Isa,
    p: &ElemParams<F>,
    x: &[F],
    y: &[F],
    pw: Option<&[F]>,
    mask: &Mask,
    grad: &mut [F],
    vals: Option<&mut [F]>,
) -> F {
    let n = x.len();
    let words = mask.words();
    let block = |b: usize, g: &mut [F], v: Option<&mut [F]>| -> F {
        let start = b * BLOCK;
        let end = n.min(start + BLOCK);
        F::elem_block::<K>(
            isa,
            p,
            &x[start..end],
            &y[start..end],
            pw.map(|w| (w, start % w.len())),
            &words[start / 64..],
            g,
            v,
        )
    };
    let mut partials = vec![F::ZERO; n.div_ceil(BLOCK)];
    // BCE costs about 8 times an MSE element (exp, ln, two divisions)
    let cost = if K == kind::BCE { 8 } else { 1 };
    let par = n.saturating_mul(cost) >= par_min_elems() && par::threads() > 1;
    match vals {
        Some(v) => par::chunks3_if(
            par,
            grad,
            BLOCK,
            v,
            BLOCK,
            &mut partials,
            1,
            &|b, g, v, o| o[0] = block(b, g, Some(v)),
        ),
        None => par::chunks2_if(par, grad, BLOCK, &mut partials, 1, &|b, g, o| {
            o[0] = block(b, g, None)
        }),
    }
    fold_partials(&partials, F::ZERO, |a, b| a + b)
}

/// Type bridge for the elementwise losses: runs `elem_impl` in `f32` or
/// `f64` on `isa` and writes `grad`; returns the value vector.
#[allow(clippy::too_many_arguments)]
fn elementwise_into<T: Float>(
    isa: Isa,
    op: Op,
    input: &[T],
    target: &[T],
    pw: Option<&[T]>,
    mask: &Mask,
    reduction: Reduction,
    grad: &mut [T],
) -> Vec<T> {
    let n = input.len();
    let mut value = crate::buf::zeroed::<T>(if reduction == Reduction::None { n } else { 1 });
    macro_rules! run {
        ($F:ty, $isa:expr) => {{
            // SAFETY: T is $F (checked by the caller's TypeId test).
            let (x, y, pw, g, v) = unsafe {
                (
                    re::<T, $F>(input),
                    re::<T, $F>(target),
                    pw.map(|p| re::<T, $F>(p)),
                    re_mut::<T, $F>(grad),
                    re_mut::<T, $F>(&mut value),
                )
            };
            if reduction == Reduction::None {
                elem_impl::<$F>($isa, op, x, y, pw, mask, reduction, g, Some(v));
            } else {
                v[0] = elem_impl::<$F>($isa, op, x, y, pw, mask, reduction, g, None);
            }
        }};
    }
    if same::<T, f32>() {
        run!(f32, isa);
    } else if same::<T, f64>() {
        run!(f64, isa);
    } else {
        // `Float` is sealed to f32 and f64; any other type takes the reference
        let l = match op {
            Op::Mse => reference::mse(input, target, mask, reduction),
            Op::L1 => reference::l1(input, target, mask, reduction),
            Op::Huber(d) => reference::huber(input, target, mask, d, reduction),
            Op::Smooth(b) => reference::smooth_l1(input, target, mask, b, reduction),
            Op::Bce => reference::bce_with_logits(input, target, mask, pw, reduction),
        };
        if let Ok(l) = l {
            grad.copy_from_slice(&l.grad);
            value = l.value;
        }
    }
    value
}

fn check_grad_len(n: usize, grad: usize) -> Result<()> {
    crate::error::check_len("grad", n, grad)
}

fn check_out_len(n: usize, out: usize) -> Result<()> {
    crate::error::check_len("out", n, out)
}

macro_rules! elementwise_entry {
    ($(#[$doc:meta])* $name:ident, $name_into:ident, $imp:ident, $k:ident, $public:literal, ($($p:ident : $pt:ty),*), $check:expr, $op:expr) => {
        $(#[$doc])*
        #[doc = concat!("[`crate::loss::", $public, "`] on the given ISA.")]
        pub fn $name<T: Float>(
            isa: Isa,
            input: &[T],
            target: &[T],
            mask: &Mask,
            $($p: $pt,)*
            reduction: Reduction,
        ) -> Result<Loss<T>> {
            let mut grad = crate::buf::zeroed::<T>(input.len());
            let value = $name_into(isa, input, target, mask, $($p,)* reduction, &mut grad)?;
            Ok(Loss { value, grad })
        }

        #[doc = concat!("[`crate::loss::", $public, "`] on the given ISA, writing the gradient into `grad` (the input's length); returns the value.")]
        pub fn $name_into<T: Float>(
            isa: Isa,
            input: &[T],
            target: &[T],
            mask: &Mask,
            $($p: $pt,)*
            reduction: Reduction,
            grad: &mut [T],
        ) -> Result<Vec<T>> {
            T::$k(isa, input, target, mask, $($p,)* reduction, grad)
        }

        /// The body of the `_into` form, instantiated per type in `crate::entry`.
        pub(crate) fn $imp<T: Float>(
            isa: Isa,
            input: &[T],
            target: &[T],
            mask: &Mask,
            $($p: $pt,)*
            reduction: Reduction,
            grad: &mut [T],
        ) -> Result<Vec<T>> {
            check_elementwise(input.len(), target.len(), mask)?;
            check_grad_len(input.len(), grad.len())?;
            #[allow(clippy::redundant_closure_call)]
            ($check)($($p),*)?;
            Ok(elementwise_into(isa, $op($($p),*), input, target, None, mask, reduction, grad))
        }
    };
}

elementwise_entry!(
    mse_with,
    mse_into_with,
    mse_imp,
    k_mse,
    "mse",
    (),
    || Ok::<(), Error>(()),
    || Op::Mse
);
elementwise_entry!(
    l1_with,
    l1_into_with,
    l1_imp,
    k_l1,
    "l1",
    (),
    || Ok::<(), Error>(()),
    || Op::L1
);
elementwise_entry!(
    huber_with,
    huber_into_with,
    huber_imp,
    k_huber,
    "huber",
    (delta: f64),
    |d| check_positive("delta", d),
    Op::Huber
);
elementwise_entry!(
    smooth_l1_with,
    smooth_l1_into_with,
    smooth_l1_imp,
    k_smooth_l1,
    "smooth_l1",
    (beta: f64),
    check_beta,
    Op::Smooth
);

/// [`crate::loss::bce_with_logits`] on the given ISA.
pub fn bce_with_logits_with<T: Float>(
    isa: Isa,
    input: &[T],
    target: &[T],
    mask: &Mask,
    pos_weight: Option<&[T]>,
    reduction: Reduction,
) -> Result<Loss<T>> {
    let mut grad = crate::buf::zeroed::<T>(input.len());
    let value =
        bce_with_logits_into_with(isa, input, target, mask, pos_weight, reduction, &mut grad)?;
    Ok(Loss { value, grad })
}

/// [`crate::loss::bce_with_logits`] on the given ISA, writing the gradient
/// into `grad` (the input's length); returns the value.
pub(crate) fn bce_with_logits_into_with_imp<T: Float>(
    isa: Isa,
    input: &[T],
    target: &[T],
    mask: &Mask,
    pos_weight: Option<&[T]>,
    reduction: Reduction,
    grad: &mut [T],
) -> Result<Vec<T>> {
    check_bce(input.len(), target.len(), mask, pos_weight.map(|p| p.len()))?;
    check_grad_len(input.len(), grad.len())?;
    Ok(elementwise_into(
        isa,
        Op::Bce,
        input,
        target,
        pos_weight,
        mask,
        reduction,
        grad,
    ))
}

// ------------------------------------------------------------ cross-entropy

/// The fused cross-entropy in `F`: writes `grad` and the per-row losses
/// `rowv` (0 for ignored rows), returns the reduced value.
#[allow(clippy::too_many_arguments)]
fn ce_impl<F: Kernels>(
    isa: Isa,
    x: &[F],
    rows: usize,
    classes: usize,
    targets: &[i64],
    w: Option<&[F]>,
    eps: f64,
    ign: i64,
    reduction: Reduction,
    grad: &mut [F],
    rowv: &mut [F],
) -> F {
    let wt = |t: i64| w.map_or(F::ONE, |w| w[t as usize]);
    let denom = canonical_fold(
        rows,
        F::ZERO,
        |i| targets[i] != ign,
        |i| wt(targets[i]),
        |a, b| a + b,
    );
    let scale = match reduction {
        Reduction::Mean if denom == F::ZERO => {
            grad.fill(F::ZERO);
            rowv.fill(F::ZERO);
            return F::ZERO;
        }
        Reduction::Mean => 1.0 / denom.to_f64(),
        _ => 1.0,
    };
    if classes == 0 {
        // every row is ignored (any other target is out of range)
        rowv.fill(F::ZERO);
        return F::ZERO;
    }
    let cf = classes as f64;
    let w_all: f64 = w.map_or(cf, |w| w.iter().map(|v| v.to_f64()).sum());
    let smooth = eps > 0.0;
    let a1 = F::from_f64(1.0 - eps);
    let a2 = F::from_f64(eps / cf);
    let w_all_f = F::from_f64(w_all);
    let beta = F::from_f64(scale * eps / cf);
    let stream = rows.saturating_mul(classes) >= stream_min_elems();
    let row = |r: usize, g: &mut [F]| -> F {
        let t = targets[r];
        if t == ign {
            F::zero_row(isa, g, stream);
            return F::ZERO;
        }
        let wtv = wt(t);
        let t = t as usize;
        let xr = &x[r * classes..(r + 1) * classes];
        let (m, s, q) = F::ce_stats(isa, xr, w, smooth, g);
        let ls = s.dln();
        let nll = wtv * (ls - (xr[t] - m));
        let loss = if smooth {
            a1 * nll + a2 * (w_all_f * ls - q)
        } else {
            nll
        };
        let wt64 = wtv.to_f64();
        let alpha = F::from_f64(scale * ((1.0 - eps) * wt64 + eps / cf * w_all) / s.to_f64());
        F::ce_grad(isa, g, w, alpha, beta);
        g[t] -= F::from_f64(scale * (1.0 - eps) * wt64);
        loss
    };
    // a kept logit costs about 4 MSE elements (max, exp, gradient passes)
    let par =
        rows.saturating_mul(classes).saturating_mul(4) >= par_min_elems() && par::threads() > 1;
    // tasks of `min_rows` rows (each row's result is its own)
    let min_rows = (4096 / classes).max(1);
    par::chunks2_if(par, grad, classes * min_rows, rowv, min_rows, &|t, g, v| {
        for (i, (g, v)) in g.chunks_mut(classes).zip(v.iter_mut()).enumerate() {
            *v = row(t * min_rows + i, g);
        }
    });
    let total = canonical_fold(
        rows,
        F::ZERO,
        |i| targets[i] != ign,
        |i| rowv[i],
        |a, b| a + b,
    );
    match reduction {
        Reduction::Mean => F::from_f64(total.to_f64() / denom.to_f64()),
        _ => total,
    }
}

/// [`crate::loss::cross_entropy`] on the given ISA.
pub fn cross_entropy_with<T: Float>(
    isa: Isa,
    logits: &[T],
    rows: usize,
    classes: usize,
    targets: &[i64],
    opts: &CrossEntropy<T>,
) -> Result<Loss<T>> {
    let mut grad = crate::buf::zeroed::<T>(logits.len());
    let value = cross_entropy_into_with(isa, logits, rows, classes, targets, opts, &mut grad)?;
    Ok(Loss { value, grad })
}

/// [`crate::loss::cross_entropy`] on the given ISA, writing the gradient
/// into `grad` (the logits' length); returns the value.
pub(crate) fn cross_entropy_into_with_imp<T: Float>(
    isa: Isa,
    logits: &[T],
    rows: usize,
    classes: usize,
    targets: &[i64],
    opts: &CrossEntropy<T>,
    grad: &mut [T],
) -> Result<Vec<T>> {
    check_ce(logits.len(), rows, classes, targets, opts)?;
    check_grad_len(logits.len(), grad.len())?;
    let mut rowv = vec![T::ZERO; rows];
    let value: T;
    macro_rules! run {
        ($F:ty, $isa:expr) => {{
            // SAFETY: T is $F (TypeId checked just above).
            let (x, w, g, rv) = unsafe {
                (
                    re::<T, $F>(logits),
                    opts.weight.as_deref().map(|w| re::<T, $F>(w)),
                    re_mut::<T, $F>(grad),
                    re_mut::<T, $F>(&mut rowv),
                )
            };
            let v = ce_impl::<$F>(
                $isa,
                x,
                rows,
                classes,
                targets,
                w,
                opts.label_smoothing,
                opts.ignore_index,
                opts.reduction,
                g,
                rv,
            );
            value = T::from_f64(v as f64);
        }};
    }
    if same::<T, f32>() {
        run!(f32, isa);
    } else if same::<T, f64>() {
        run!(f64, Isa::Portable);
    } else {
        let l = reference::cross_entropy(logits, rows, classes, targets, opts)?;
        grad.copy_from_slice(&l.grad);
        return Ok(l.value);
    }
    Ok(match opts.reduction {
        Reduction::None => rowv,
        _ => vec![value],
    })
}

// ------------------------------------------------------------ exp / ln

/// `exp` of every element of `x` into `out` with the `f32` kernels of
/// `isa`: [`crate::math::exp_f32`] or its exact SIMD transcription (the
/// same bits, checked by `tests/loss_simd.rs`).
///
/// Accuracy measured by that test against `f64` `exp` rounded to `f32`:
/// at most 1 ulp over about 1.1 million inputs evenly spaced (every 1009th
/// bit pattern) in `[-87.34, 0]`, the range the losses use, and over every
/// 62281st bit pattern of the normal-result range `[-87.34, 88.72]`.
pub fn exp_with(isa: Isa, x: &[f32], out: &mut [f32]) -> Result<()> {
    check_out_len(x.len(), out.len())?;
    match isa.clamp_available() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512 (clamp_available).
        Isa::Avx512 => unsafe { avx512::exp_slice(x, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 (clamp_available).
        Isa::Avx2 => unsafe { avx2::exp_slice(x, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: NEON is part of the aarch64 base architecture.
        Isa::Neon => unsafe { neon::exp_slice(x, out) },
        _ => portable::exp_slice(x, out),
    }
    Ok(())
}

/// `ln` of every element of `x` into `out` with the `f32` kernels of
/// `isa`: [`crate::math::ln_f32`] or its exact SIMD transcription.
///
/// Accuracy measured by `tests/loss_simd.rs` against `f64`: at most 1 ulp
/// over every 1009th bit pattern in `[1, 8192]` (cross-entropy's `ln` of a
/// sum of up to 8192 terms, BCE's `ln(1 + e)`) and every 62281st positive
/// finite `f32`.
pub fn ln_with(isa: Isa, x: &[f32], out: &mut [f32]) -> Result<()> {
    check_out_len(x.len(), out.len())?;
    match isa.clamp_available() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512 (clamp_available).
        Isa::Avx512 => unsafe { avx512::ln_slice(x, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 (clamp_available).
        Isa::Avx2 => unsafe { avx2::ln_slice(x, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: NEON is part of the aarch64 base architecture.
        Isa::Neon => unsafe { neon::ln_slice(x, out) },
        _ => portable::ln_slice(x, out),
    }
    Ok(())
}

// ------------------------------------------------------------ ECS, Pearson

/// ECS in `F`: returns the value, writes the gradient.
fn ecs_impl<F: Lf>(isa: Isa, e: &[F], rows: usize, cols: usize, thr: f64, grad: &mut [F]) -> F {
    let n2 = (rows * rows) as f64;
    let eps = F::from_f64(1e-12);
    let work = rows.saturating_mul(rows).saturating_mul(cols.max(1));
    let par = work >= par_min_elems() && par::threads() > 1;
    // norms and the normalized embedding
    let norms: Vec<F> = (0..rows)
        .map(|i| {
            let r = &e[i * cols..(i + 1) * cols];
            portable::dot(r, r).sqrt()
        })
        .collect();
    let mut u = e.to_vec();
    for (i, row) in u.chunks_mut(cols.max(1)).enumerate().take(rows) {
        let d = if norms[i] > eps { norms[i] } else { eps };
        for v in row.iter_mut() {
            *v /= d;
        }
    }
    let thr_f = F::from_f64(thr);
    let inv_n2 = F::from_f64(1.0 / n2);
    let mut vals = vec![F::ZERO; rows * rows];
    let mut gc = vec![F::ZERO; rows * rows];
    let fwd = |i: usize, v: &mut [F], g: &mut [F]| match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512 (clamped by the caller).
        Isa::Avx512 => unsafe { avx512::ecs_row(&u, cols, i, thr_f, inv_n2, v, g) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 (clamped by the caller).
        Isa::Avx2 => unsafe { avx2::ecs_row(&u, cols, i, thr_f, inv_n2, v, g) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: NEON is part of the aarch64 base architecture.
        Isa::Neon => unsafe { neon::ecs_row(&u, cols, i, thr_f, inv_n2, v, g) },
        _ => portable::ecs_row(&u, cols, i, thr_f, inv_n2, v, g),
    };
    par::chunks2_if(par, &mut vals, rows, &mut gc, rows, &fwd);
    if cols > 0 {
        let bwd = |i: usize, out: &mut [F]| {
            let gci = &gc[i * rows..(i + 1) * rows];
            match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX-512 (clamped by the caller).
                Isa::Avx512 => unsafe { avx512::ecs_grad_row(&u, cols, i, gci, norms[i], out) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX2 (clamped by the caller).
                Isa::Avx2 => unsafe { avx2::ecs_grad_row(&u, cols, i, gci, norms[i], out) },
                #[cfg(target_arch = "aarch64")]
                // SAFETY: NEON is part of the aarch64 base architecture.
                Isa::Neon => unsafe { neon::ecs_grad_row(&u, cols, i, gci, norms[i], out) },
                _ => portable::ecs_grad_row(&u, cols, i, gci, norms[i], out),
            }
        };
        par::chunks_if(par, grad, cols, &bwd);
    }
    let total = canonical_fold(rows * rows, F::ZERO, |_| true, |k| vals[k], |a, b| a + b);
    F::from_f64(total.to_f64() / n2)
}

/// [`crate::loss::ecs`] on the given ISA. ECS is the portable code
/// (written to auto-vectorize) compiled for each ISA, rayon over rows; the
/// operations are the same everywhere, so the bits never depend on `isa`
/// or on the thread count: dot products in the canonical order,
/// `dL/du_i = sum_j 2 g_ij u_j` in increasing `j`.
pub(crate) fn ecs_with_imp<T: Float>(
    isa: Isa,
    embedding: &[T],
    rows: usize,
    cols: usize,
    threshold: f64,
) -> Result<Loss<T>> {
    crate::loss::check_ecs(embedding.len(), rows, cols, threshold)?;
    let isa = isa.clamp_available();
    if rows == 0 {
        return Ok(Loss {
            value: vec![T::ZERO],
            grad: Vec::new(),
        });
    }
    let mut grad = vec![T::ZERO; embedding.len()];
    let value;
    macro_rules! run {
        ($F:ty) => {{
            // SAFETY: T is $F (TypeId checked by the caller).
            let (e, g) = unsafe { (re::<T, $F>(embedding), re_mut::<T, $F>(&mut grad)) };
            value = T::from_f64(ecs_impl::<$F>(isa, e, rows, cols, threshold, g) as f64);
        }};
    }
    if same::<T, f32>() {
        run!(f32);
    } else if same::<T, f64>() {
        run!(f64);
    } else {
        return reference::ecs(embedding, rows, cols, threshold);
    }
    Ok(Loss {
        value: vec![value],
        grad,
    })
}

/// [`crate::loss::pearson`] on the given ISA: one portable implementation
/// (canonical sums per row, rayon over rows), the same bits for every `isa`.
pub(crate) fn pearson_with_imp<T: Float>(
    _isa: Isa,
    input: &[T],
    target: &[T],
    mask: &Mask,
    rows: usize,
    cols: usize,
) -> Result<crate::view::MaskedVec<T>> {
    crate::loss::check_pearson(input.len(), target.len(), mask, rows, cols)?;
    let mut values = vec![T::ZERO; rows];
    let mut ok = vec![false; rows];
    macro_rules! run {
        ($F:ty) => {{
            // SAFETY: T is $F (TypeId checked by the caller).
            let (x, y, v) = unsafe {
                (
                    re::<T, $F>(input),
                    re::<T, $F>(target),
                    re_mut::<T, $F>(&mut values),
                )
            };
            let row = |r: usize, out: &mut $F, flag: &mut bool| {
                let s = r * cols;
                let keep: Vec<bool> = (s..s + cols).map(|i| mask.get(i)).collect();
                if let Some(p) =
                    portable::pearson_row::<$F>(&x[s..s + cols], &y[s..s + cols], &keep)
                {
                    *out = p;
                    *flag = true;
                }
            };
            let par = rows * cols >= par_min_elems() && par::threads() > 1;
            par::chunks2_if(par, v, 1, &mut ok, 1, &|r, o, f| {
                row(r, &mut o[0], &mut f[0])
            });
        }};
    }
    if same::<T, f32>() {
        run!(f32);
    } else if same::<T, f64>() {
        run!(f64);
    } else {
        return reference::pearson(input, target, mask, rows, cols);
    }
    Ok(crate::view::MaskedVec {
        values,
        mask: Mask::from_bools(&ok),
    })
}

// ---------- forwarding shells: the kernels are instantiated in `crate::entry` ----------

/// [`bce_with_logits_into_with_imp`] for `T`, through its instance compiled in maskops.
pub fn bce_with_logits_into_with<T: Float>(
    isa: Isa,
    input: &[T],
    target: &[T],
    mask: &Mask,
    pos_weight: Option<&[T]>,
    reduction: Reduction,
    grad: &mut [T],
) -> Result<Vec<T>> {
    T::k_bce(isa, input, target, mask, pos_weight, reduction, grad)
}

/// [`cross_entropy_into_with_imp`] for `T`, through its instance compiled in maskops.
pub fn cross_entropy_into_with<T: Float>(
    isa: Isa,
    logits: &[T],
    rows: usize,
    classes: usize,
    targets: &[i64],
    opts: &CrossEntropy<T>,
    grad: &mut [T],
) -> Result<Vec<T>> {
    T::k_cross_entropy(isa, logits, rows, classes, targets, opts, grad)
}

/// [`ecs_with_imp`] for `T`, through its instance compiled in maskops.
pub fn ecs_with<T: Float>(
    isa: Isa,
    embedding: &[T],
    rows: usize,
    cols: usize,
    threshold: f64,
) -> Result<Loss<T>> {
    T::k_ecs(isa, embedding, rows, cols, threshold)
}

/// [`pearson_with_imp`] for `T`, through its instance compiled in maskops.
pub fn pearson_with<T: Float>(
    isa: Isa,
    input: &[T],
    target: &[T],
    mask: &Mask,
    rows: usize,
    cols: usize,
) -> Result<crate::view::MaskedVec<T>> {
    T::k_pearson(isa, input, target, mask, rows, cols)
}
