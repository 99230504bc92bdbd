//! The elementwise ops of `MaskedArray`, written once over [`Arith`]. Each
//! lane evaluates exactly the portable scalar definition
//! (`crate::cpu::arch::portable::elementwise`): same IEEE operations in the
//! same order, no FMA; `exp`/`ln` for `f32` transcribe `crate::math`; for
//! `f64` they (and a general `pow`) call `std` lane by lane.
//!
//! Chunks of 64 elements with no kept bit are skipped. Inside a chunk, a
//! room either handles every whole vector without branching on its lanes
//! (`SKIP_EMPTY = false`: a branch on "all lanes kept" mispredicts at
//! densities near 0.9; AVX2 zeroes masked-out input lanes by an AND and
//! blends the result with the destination's current value before a whole
//! store) or skips the vectors with no kept lane (`SKIP_EMPTY = true`:
//! AVX-512, whose masked loads and stores never touch masked-out lanes).
//! Either way poison never reaches an op and masked-out slots keep exactly
//! the bits they held.
//!
//! Contract of the raw-pointer entry points: see the portable module.

use super::{prefetch_lines, Vreg};
use crate::array::{BinaryOp, UnaryOp};
use crate::cpu::arch::portable::elementwise::{chunk_bits, exp_scalar, ln_scalar, PowKind, RawRhs};
use crate::element::Float;

/// What the elementwise ops need on top of [`Vreg`].
///
/// # Safety
/// As [`Vreg`]: the room's target features; pointer methods as documented.
#[allow(clippy::missing_safety_doc)]
pub trait Arith: Vreg {
    /// `false`: every whole vector of a chunk is loaded and stored without
    /// a branch on its lanes ([`Arith::load_kept`] / [`Arith::store_kept`]
    /// with `whole`); `true`: vectors with no kept lane are skipped.
    const SKIP_EMPTY: bool;
    /// Lane-wise absolute value (clears the sign bit).
    unsafe fn abs(self) -> Self;
    /// `self > o ? self : o` per lane (x86 `max` operand order).
    unsafe fn max_raw(self, o: Self) -> Self;
    /// `self < o ? self : o` per lane.
    unsafe fn min_raw(self, o: Self) -> Self;
    /// Lanes where `self` or `o` is NaN.
    unsafe fn unord(self, o: Self) -> Self::M;
    /// `t` in the lanes of `m`, `self` elsewhere: a plain select the
    /// compiler may fold into its neighbours ([`Vreg::blend`] is the form
    /// Adagrad keeps opaque).
    unsafe fn select(self, m: Self::M, t: Self) -> Self;
    /// `v` in the lanes of `m`, `+0.0` elsewhere (as [`Arith::select`], a
    /// plain operation; [`Vreg::zero_unless`] is the opaque form).
    unsafe fn keep(m: Self::M, v: Self) -> Self;
    /// `crate::math::exp_f32` per lane (`f32`), `std`'s `exp` (`f64`):
    /// by default the scalar function lane by lane; the rooms give `f32`
    /// the vector transcription (`generic::math`).
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn exp(self) -> Self {
        self.per_lane(exp_scalar)
    }
    /// `crate::math::ln_f32` per lane (`f32`), `std`'s `ln` (`f64`), as
    /// [`Arith::exp`].
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn ln(self) -> Self {
        self.per_lane(ln_scalar)
    }
    /// `f` on each lane, through memory: the scalar fallbacks (`std`'s
    /// `exp`/`ln` for `f64`, a general `pow`).
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn per_lane(self, f: impl Fn(Self::T) -> Self::T) -> Self {
        let mut buf = core::mem::MaybeUninit::<[Self::T; 64]>::uninit();
        let p = buf.as_mut_ptr() as *mut Self::T;
        // SAFETY: `buf` holds 64 >= W elements; `store` writes the first W
        // before they are read.
        self.store(p);
        for i in 0..Self::W {
            // SAFETY: i < W, written above.
            *p.add(i) = f(*p.add(i));
        }
        Self::load(p)
    }
    /// `std`'s `powf` per lane.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn powf(self, p: Self::T) -> Self {
        self.per_lane(|x| x.powf(p))
    }
    /// The lanes of `m` from `p`, `+0.0` elsewhere. `whole`: all `W`
    /// elements at `p` are readable; otherwise only the lanes of `m` are,
    /// and only those are read.
    unsafe fn load_kept(p: *const Self::T, m: Self::M, whole: bool) -> Self;
    /// Writes the lanes of `m` of `self` to `p`; the other elements keep
    /// their bits. `whole`: all `W` elements at `p` are readable and
    /// writable; otherwise only the lanes of `m` are, and only those are
    /// touched.
    unsafe fn store_kept(self, p: *mut Self::T, m: Self::M, whole: bool);
}

/// A unary op with its constants splatted once.
#[derive(Clone, Copy)]
pub enum Un<V: Vreg> {
    Neg,
    Abs,
    Sqrt,
    Exp,
    Ln,
    Sq,
    Cube,
    RSqrt,
    Recip,
    RecipSq,
    Id,
    Pow(V::T),
    Add(V),
    Mul(V),
    Clamp(V, V),
}

/// # Safety
/// Room features (see [`Vreg`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn prep<V: Arith>(op: UnaryOp<V::T>) -> Un<V> {
    match op {
        UnaryOp::Neg => Un::Neg,
        UnaryOp::Abs => Un::Abs,
        UnaryOp::Sqrt => Un::Sqrt,
        UnaryOp::Exp => Un::Exp,
        UnaryOp::Log => Un::Ln,
        UnaryOp::Pow(p) => match PowKind::of(p) {
            PowKind::Half => Un::Sqrt,
            PowKind::One => Un::Id,
            PowKind::Two => Un::Sq,
            PowKind::Three => Un::Cube,
            PowKind::NegHalf => Un::RSqrt,
            PowKind::NegOne => Un::Recip,
            PowKind::NegTwo => Un::RecipSq,
            PowKind::General => Un::Pow(p),
        },
        UnaryOp::AddScalar(s) => Un::Add(V::splat(s)),
        UnaryOp::MulScalar(s) => Un::Mul(V::splat(s)),
        UnaryOp::Clamp(lo, hi) => Un::Clamp(V::splat(lo), V::splat(hi)),
    }
}

/// # Safety
/// Room features (see [`Vreg`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn eval_un<V: Arith>(op: Un<V>, x: V) -> V {
    let one = || V::splat(V::T::ONE);
    match op {
        Un::Neg => x.neg(),
        Un::Abs => x.abs(),
        Un::Sqrt => x.sqrt(),
        Un::Exp => x.exp(),
        Un::Ln => x.ln(),
        Un::Sq => x.mul(x),
        Un::Cube => x.mul(x).mul(x),
        Un::RSqrt => one().div(x.sqrt()),
        Un::Recip => one().div(x),
        Un::RecipSq => one().div(x.mul(x)),
        Un::Id => x,
        Un::Pow(p) => x.powf(p),
        Un::Add(s) => x.add(s),
        Un::Mul(s) => x.mul(s),
        Un::Clamp(lo, hi) => {
            let z = x.max_raw(lo).min_raw(hi);
            z.select(x.unord(x), x)
        }
    }
}

/// # Safety
/// Room features (see [`Vreg`]).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn eval_bin<V: Arith>(op: BinaryOp, a: V, b: V) -> V {
    match op {
        BinaryOp::Add => a.add(b),
        BinaryOp::Sub => a.sub(b),
        BinaryOp::Mul => a.mul(b),
        BinaryOp::Div => a.div(b),
        BinaryOp::Maximum => a.max_raw(b).select(a.unord(b), a.add(b)),
        BinaryOp::Minimum => a.min_raw(b).select(a.unord(b), a.add(b)),
    }
}

/// The op a loop evaluates.
#[derive(Clone, Copy)]
enum Op<V: Vreg> {
    Un(Un<V>),
    Bin(BinaryOp),
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn eval<V: Arith>(op: Op<V>, x: V, y: Option<V>) -> V {
    match (op, y) {
        (Op::Un(u), _) => eval_un(u, x),
        (Op::Bin(b), Some(y)) => eval_bin(b, x, y),
        (Op::Bin(_), None) => x,
    }
}

/// Where the second operand comes from.
#[derive(Clone, Copy)]
enum B<V: Vreg> {
    Ptr(*const V::T),
    Splat(V),
    None,
}

/// Prefetches the 64 elements at `p + i` (plus the prefetch distance).
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
fn prefetch64<S>(p: *const S, i: usize) {
    prefetch_lines(p.wrapping_add(i), 64 * core::mem::size_of::<S>());
}

/// One vector: `dst = op(a, b)` in the lanes of `m` (see [`Arith::load_kept`]
/// for `whole`); `at` is the vector's element offset into `b`.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn step<V: Arith>(
    op: Op<V>,
    a: *const V::T,
    b: B<V>,
    at: usize,
    dst: *mut V::T,
    m: V::M,
    whole: bool,
) {
    let x = V::load_kept(a, m, whole);
    let y = match b {
        B::Ptr(p) => Some(V::load_kept(p.add(at), m, whole)),
        B::Splat(s) => Some(s),
        B::None => None,
    };
    eval(op, x, y).store_kept(dst, m, whole);
}

/// The shared loop (see the module documentation).
///
/// # Safety
/// The portable module's contract; room features.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
unsafe fn run<V: Arith>(
    op: Op<V>,
    a: *const V::T,
    b: B<V>,
    dst: *mut V::T,
    n: usize,
    words: &[u64],
    off: usize,
) {
    let lanes: u64 = if V::W == 64 {
        u64::MAX
    } else {
        (1u64 << V::W) - 1
    };
    let mut i = 0;
    while i < n {
        prefetch64(a, i);
        if let B::Ptr(p) = b {
            prefetch64(p, i);
        }
        if !core::ptr::eq(dst, a) {
            prefetch64(dst, i);
        }
        let bits = chunk_bits(words, off, i, n);
        if bits != 0 {
            let rem = n - i;
            let mut j = 0;
            while j < 64 && j < rem {
                let k = (bits >> j) & lanes;
                let at = i + j;
                // SAFETY: when `whole`, all W lanes are in bounds;
                // otherwise the loads and stores touch only kept lanes,
                // all < n (bits past n are cleared). `at < n` keeps the
                // pointer arithmetic in bounds.
                if at + V::W <= n && !V::SKIP_EMPTY {
                    step(op, a.add(at), b, at, dst.add(at), V::mask(k), true);
                } else if k != 0 {
                    let whole = at + V::W <= n;
                    step(op, a.add(at), b, at, dst.add(at), V::mask(k), whole);
                }
                j += V::W;
            }
        }
        i += 64;
    }
}

/// # Safety
/// The portable module's contract; room features.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn unary<V: Arith>(
    op: UnaryOp<V::T>,
    src: *const V::T,
    dst: *mut V::T,
    n: usize,
    words: &[u64],
    off: usize,
) {
    let op = prep::<V>(op);
    run(Op::Un(op), src, B::None, dst, n, words, off)
}

/// # Safety
/// The portable module's contract; room features.
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub unsafe fn binary<V: Arith>(
    op: BinaryOp,
    a: *const V::T,
    b: RawRhs<V::T>,
    dst: *mut V::T,
    n: usize,
    words: &[u64],
    off: usize,
) {
    let b = match b {
        RawRhs::Ptr(p) => B::Ptr(p),
        RawRhs::Scalar(s) => B::Splat(V::splat(s)),
    };
    run(Op::Bin(op), a, b, dst, n, words, off)
}

/// Generates a room's elementwise entry points `unary_f32`, `unary_f64`,
/// `binary_f32`, `binary_f64` from its lane types `$v32`, `$v64`, under the
/// room's attributes (`#[target_feature]`).
macro_rules! elementwise_entries {
    ($(#[$attr:meta])* $v32:ty, $v64:ty) => {
        $crate::cpu::arch::generic::elementwise::elementwise_entries!(@one $(#[$attr])* f32, $v32, unary_f32, binary_f32);
        $crate::cpu::arch::generic::elementwise::elementwise_entries!(@one $(#[$attr])* f64, $v64, unary_f64, binary_f64);
    };
    (@one $(#[$attr:meta])* $t:ty, $v:ty, $unary:ident, $binary:ident) => {
        /// Unary op (the generic body, this room's lanes).
        ///
        /// # Safety
        /// The portable module's contract; the room's CPU features.
        $(#[$attr])*
        pub unsafe fn $unary(
            op: $crate::array::UnaryOp<$t>,
            src: *const $t,
            dst: *mut $t,
            n: usize,
            words: &[u64],
            off: usize,
        ) {
            // SAFETY: forwarded contract; features enabled on this function.
            unsafe { $crate::cpu::arch::generic::elementwise::unary::<$v>(op, src, dst, n, words, off) }
        }

        /// Binary op (the generic body, this room's lanes).
        ///
        /// # Safety
        /// The portable module's contract; the room's CPU features.
        $(#[$attr])*
        pub unsafe fn $binary(
            op: $crate::array::BinaryOp,
            a: *const $t,
            b: $crate::cpu::arch::portable::elementwise::RawRhs<$t>,
            dst: *mut $t,
            n: usize,
            words: &[u64],
            off: usize,
        ) {
            // SAFETY: forwarded contract; features enabled on this function.
            unsafe { $crate::cpu::arch::generic::elementwise::binary::<$v>(op, a, b, dst, n, words, off) }
        }
    };
}
pub(crate) use elementwise_entries;
