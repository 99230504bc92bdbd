//! A structured, seeded fuzzer of the whole public API (issue 16).
//!
//! Every case draws a family (reductions whole and per dim, softmax and its
//! backward, every loss and its `*_into` form, `MaskedArray` unary and
//! binary ops, every Adagrad form, `RowwiseAdagrad`, huge and overflowing
//! shapes, masks), an element type, a shape (0 to a few thousand elements,
//! sometimes around the 32-lane, 64-bit word and 4096-element block
//! boundaries, sometimes huge or overflowing), data (ordinary, spanning the
//! whole exponent range, subnormal; NaN and infinities in kept slots now and
//! then, always in masked-out ones), an unaligned sub-slice of a larger
//! buffer, masks of the wrong length, hyper-parameters that are 0, negative,
//! subnormal, huge, infinite or NaN, and indices out of range and
//! duplicated. It runs the case on every ISA the machine has (and, one case
//! in five, with every rayon threshold forced to 1 in a 3-thread pool) and
//! checks:
//!
//! 1. no panic (each call runs under `catch_unwind`);
//! 2. `Err` exactly when the reference (`maskops::reference`) gives `Err`,
//!    with the same error (exceptions below);
//! 3. the same bits on every ISA and thread configuration (every NaN
//!    counted as one value: Rust and LLVM leave the sign and payload of a
//!    NaN that arithmetic produces unspecified; the NaN bits the crate does
//!    promise, `amin`/`amax`'s, are checked by `tests/simd_reduce.rs`);
//! 4. the result equals the reference within a tolerance derived from the
//!    error bound of the canonical order (the approach of
//!    `tests/simd_reduce.rs` and `tests/loss_simd.rs`), NaN only against
//!    NaN, infinity only against the same infinity, so a result is finite
//!    wherever the reference's is;
//! 5. a failed optimizer step leaves the parameters, the accumulator and
//!    the step counter bit for bit as they were; `map_assign` /
//!    `binary_assign` / `*_into` / `update_dense` never write an entry the
//!    mask does not keep.
//!
//! Where the fast path legitimately differs from the `f64` reference the
//! value check (4) is skipped and only (1)–(3) and (5) apply: when an
//! intermediate in the working type (`f32` for `f32` and the half types)
//! can overflow (a bound on the magnitudes of the summed terms above
//! `MAX / 16`), when a product's partial products can leave the normal
//! range, when `x - y` overflows in the element type (the elementwise
//! losses), when an ECS row's norm leaves the range or sits at the `1e-12`
//! clamp, when a Pearson row's deviations underflow, and for `f32`/half
//! Adagrad when `g^2` or the accumulator leaves the `f32` range (PyTorch's
//! `f32` arithmetic, which the fast path reproduces). Near the bottom of the
//! range an absolute floor applies (subnormal spacing, `exp_f32`'s flush
//! below `2^-126`).
//!
//! Documented exceptions to (2): `reference::elementwise::unary` does not
//! validate `Clamp` bounds (the fast path refuses NaN bounds with
//! `Err(Param)`), and `reference::elementwise::binary` sees only lengths,
//! not a 2-D shape (the fast path refuses a same-length operand of another
//! shape with `Err(Shape)`). Valid shapes whose *output* cannot be
//! allocated (a per-dim reduction along a `usize::MAX` dimension of an empty
//! view, Pearson or ECS with `cols = 0` and billions of rows) are not
//! generated: they are resource limits, not argument errors.
//!
//! # Running it
//!
//! `cargo test --test fuzz` runs a default budget (a fixed seed, at most
//! [`DEFAULT_CASES`] cases or [`DEFAULT_SECONDS`] seconds). Environment:
//!
//! * `MASKOPS_FUZZ_SEED=<n>`: the run's seed (printed at the start and with
//!   every failure);
//! * `MASKOPS_FUZZ_CASES=<n>`, `MASKOPS_FUZZ_SECONDS=<s>`: bounds (either
//!   one alone lifts the other default);
//! * `MASKOPS_FUZZ_CASE=<i>`: replay case `i` of the seed alone;
//! * `MASKOPS_FUZZ_VERBOSE=1`: one line per case (what it ran, how long).
//!
//! A failure prints its seed, case index, family and the replay command.
//! A longer run (ten minutes on a time-based seed):
//!
//! ```text
//! MASKOPS_FUZZ_SECONDS=600 MASKOPS_FUZZ_SEED=$(date +%s) cargo test --release --test fuzz -- --nocapture
//! ```
//!
//! Inputs of every defect found are kept in `tests/fuzz_regressions.rs`.

#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

use half::{bf16, f16};
use maskops::array::{BinaryOp, MaskPolicy, MaskedArray, Operand, UnaryOp};
use maskops::backend::{self, Isa, Threshold};
use maskops::loss::{self, CrossEntropy, Loss, Reduction};
use maskops::optim::{Adagrad, AdagradElement, AdagradState, RowwiseAdagrad, Workspace};
use maskops::reference;
use maskops::reference::elementwise::RefRhs;
use maskops::{softmax, Element, Error, Float, Mask, MaskedVec, MaskedView};
use std::cell::RefCell;
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Cases of a plain `cargo test` run.
const DEFAULT_CASES: u64 = 4000;
/// Time cap of a plain `cargo test` run (seconds).
const DEFAULT_SECONDS: f64 = 12.0;
/// The seed of a plain run.
const DEFAULT_SEED: u64 = 0x1655_F022;

// ------------------------------------------------------------------ random

/// SplitMix64 (Steele, Lea & Flood 2014).
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo) as u64 + 1) as usize
    }
    fn unif(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unif() < p
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ------------------------------------------------------------------ types

/// Per-type constants of the tolerances.
trait Ty: Element {
    /// Unit roundoff of the type (the final rounding of every result).
    const U: f64;
    /// Unit roundoff of the fast paths' accumulator (`f32` for the halves).
    const U_ACC: f64;
    /// Largest finite value of the type.
    const MAX: f64;
    /// Largest finite value of the accumulator.
    const ACC_MAX: f64;
    /// Smallest normal of the accumulator.
    const ACC_MIN: f64;
    /// Smallest subnormal of the accumulator.
    const ACC_DENORM: f64;
    /// Absolute floor of a comparison at the bottom of the range (one
    /// subnormal spacing of the type; `exp_f32` flushes below `2^-126`).
    const TINY: f64;
    /// Exponent range of generated "wide" values (subnormals included).
    const EXP: (i32, i32);
}

impl Ty for f32 {
    const U: f64 = 1.0 / (1u64 << 24) as f64;
    const U_ACC: f64 = Self::U;
    const MAX: f64 = f32::MAX as f64;
    const ACC_MAX: f64 = f32::MAX as f64;
    const ACC_MIN: f64 = f32::MIN_POSITIVE as f64;
    const ACC_DENORM: f64 = 1.401298464324817e-45;
    const TINY: f64 = 1.1754943508222875e-38;
    const EXP: (i32, i32) = (-149, 127);
}
impl Ty for f64 {
    const U: f64 = f64::EPSILON / 2.0;
    const U_ACC: f64 = Self::U;
    const MAX: f64 = f64::MAX;
    const ACC_MAX: f64 = f64::MAX;
    const ACC_MIN: f64 = f64::MIN_POSITIVE;
    const ACC_DENORM: f64 = 5e-324;
    const TINY: f64 = 1e-300;
    const EXP: (i32, i32) = (-1074, 1023);
}
impl Ty for f16 {
    const U: f64 = 1.0 / 2048.0;
    const U_ACC: f64 = <f32 as Ty>::U;
    const MAX: f64 = 65504.0;
    const ACC_MAX: f64 = f32::MAX as f64;
    const ACC_MIN: f64 = f32::MIN_POSITIVE as f64;
    const ACC_DENORM: f64 = 1.401298464324817e-45;
    const TINY: f64 = 5.960464477539063e-8;
    const EXP: (i32, i32) = (-24, 15);
}
impl Ty for bf16 {
    const U: f64 = 1.0 / 256.0;
    const U_ACC: f64 = <f32 as Ty>::U;
    const MAX: f64 = 3.3895313892515355e38;
    const ACC_MAX: f64 = f32::MAX as f64;
    const ACC_MIN: f64 = f32::MIN_POSITIVE as f64;
    const ACC_DENORM: f64 = 1.401298464324817e-45;
    const TINY: f64 = 1.1754943508222875e-38;
    const EXP: (i32, i32) = (-133, 127);
}

// ------------------------------------------------------------------ failures

thread_local! {
    /// What the current case is doing (printed with a failure).
    static NOTE: RefCell<String> = const { RefCell::new(String::new()) };
}

fn note(s: String) {
    NOTE.with(|n| *n.borrow_mut() = s);
}

/// Fails the case (a panic the driver catches and reports).
macro_rules! fail {
    ($($t:tt)*) => { panic!("FUZZ CHECK FAILED: {}", format!($($t)*)) };
}

macro_rules! check {
    ($c:expr, $($t:tt)*) => {{
        let ok: bool = $c;
        if !ok {
            fail!($($t)*)
        }
    }};
}

fn panic_msg(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(non-string panic)".into())
}

/// Runs `f`, failing the case if the library panics.
fn call<R>(what: &str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(e) => {
            let m = panic_msg(&*e);
            if m.starts_with("FUZZ CHECK FAILED") {
                std::panic::resume_unwind(e)
            }
            fail!("{what} panicked: {m}")
        }
    }
}

// ------------------------------------------------------------------ bits

/// A bit fingerprint, to compare results across ISAs and thread counts.
trait Fp {
    fn fp(&self, out: &mut Vec<u64>);
    fn bits(&self) -> Vec<u64> {
        let mut v = Vec::new();
        self.fp(&mut v);
        v
    }
}
/// Floats by their bits, every NaN as one value: Rust and LLVM leave the
/// sign and payload of a NaN that arithmetic produces unspecified (an
/// operand swap of a commutative op changes it on x86), so the fast paths
/// cannot promise them; where the crate does promise them (`amin` /
/// `amax`), `tests/simd_reduce.rs` checks them.
macro_rules! fp_float {
    ($($t:ty),*) => {$(
        impl Fp for $t {
            fn fp(&self, out: &mut Vec<u64>) {
                let v = self.to_f64();
                out.push(if v.is_nan() { 0x7ff8_0000_0000_0000 } else { v.to_bits() });
            }
        }
    )*};
}
fp_float!(f32, f64, f16, bf16);
impl Fp for usize {
    fn fp(&self, out: &mut Vec<u64>) {
        out.push(*self as u64);
    }
}
impl Fp for u64 {
    fn fp(&self, out: &mut Vec<u64>) {
        out.push(*self);
    }
}
impl<A: Fp> Fp for [A] {
    fn fp(&self, out: &mut Vec<u64>) {
        out.push(self.len() as u64);
        self.iter().for_each(|x| x.fp(out));
    }
}
impl<A: Fp> Fp for Vec<A> {
    fn fp(&self, out: &mut Vec<u64>) {
        self.as_slice().fp(out)
    }
}
impl<A: Fp> Fp for Option<A> {
    fn fp(&self, out: &mut Vec<u64>) {
        match self {
            None => out.push(0xdead),
            Some(a) => {
                out.push(1);
                a.fp(out)
            }
        }
    }
}
impl Fp for Mask {
    fn fp(&self, out: &mut Vec<u64>) {
        out.push(self.len() as u64);
        out.extend_from_slice(self.words());
    }
}
impl<A: Fp> Fp for MaskedVec<A> {
    fn fp(&self, out: &mut Vec<u64>) {
        self.values.fp(out);
        self.mask.fp(out);
    }
}
impl<A: Fp> Fp for Loss<A> {
    fn fp(&self, out: &mut Vec<u64>) {
        self.value.fp(out);
        self.grad.fp(out);
    }
}
impl<A: Fp + Float> Fp for MaskedArray<A> {
    fn fp(&self, out: &mut Vec<u64>) {
        self.values().fp(out);
        self.mask().fp(out);
        for &d in self.shape() {
            out.push(d as u64);
        }
    }
}
impl<A: Fp> Fp for AdagradState<A> {
    fn fp(&self, out: &mut Vec<u64>) {
        self.sum.fp(out);
        out.push(self.step);
    }
}
impl<A: Fp, B: Fp> Fp for (A, B) {
    fn fp(&self, out: &mut Vec<u64>) {
        self.0.fp(out);
        self.1.fp(out);
    }
}
impl<A: Fp, B: Fp, C: Fp> Fp for (A, B, C) {
    fn fp(&self, out: &mut Vec<u64>) {
        self.0.fp(out);
        self.1.fp(out);
        self.2.fp(out);
    }
}
impl Fp for () {
    fn fp(&self, _: &mut Vec<u64>) {}
}
impl<A: Fp> Fp for Result<A, Error> {
    fn fp(&self, out: &mut Vec<u64>) {
        match self {
            Ok(a) => {
                out.push(0);
                a.fp(out)
            }
            Err(e) => {
                out.push(1);
                // the error's description, bytes packed
                for c in format!("{e:?}").bytes() {
                    out.push(c as u64);
                }
            }
        }
    }
}

/// Where two fingerprints first differ (words shown as `f64` too).
fn first_diff(a: &[u64], b: &[u64]) -> String {
    if a.len() != b.len() {
        return format!("fingerprint lengths {} vs {}", a.len(), b.len());
    }
    match a.iter().zip(b).position(|(x, y)| x != y) {
        None => "equal".into(),
        Some(i) => format!(
            "word {i}: {:#018x} ({:e}) vs {:#018x} ({:e})",
            a[i],
            f64::from_bits(a[i]),
            b[i],
            f64::from_bits(b[i])
        ),
    }
}

// ------------------------------------------------------------------ context

/// Per-case settings shared by the families.
struct Ctx {
    rng: Rng,
    /// Also run with every threshold forced to 1 in a 3-thread pool.
    par: bool,
    /// Largest generated length.
    max_len: usize,
    pool3: rayon::ThreadPool,
}

fn set_all_thresholds(v: Option<usize>) {
    for t in Threshold::ALL {
        backend::set_threshold(t, v.unwrap_or_else(|| t.default_value()));
    }
}

impl Ctx {
    /// Runs `f` on every available ISA (and forced-parallel on one of them
    /// when `self.par`), checks that every run gives the same bits, and
    /// returns the first (portable) result.
    fn across<R: Fp + Send>(&mut self, what: &str, f: impl Fn() -> R + Sync) -> R {
        let isas = Isa::all_available();
        let mut first: Option<(R, Vec<u64>)> = None;
        for &isa in &isas {
            let r = call(&format!("{what} on {isa:?}"), || backend::with_isa(isa, &f));
            let b = r.bits();
            match &first {
                None => first = Some((r, b)),
                Some((_, b0)) => check!(
                    &b == b0,
                    "{what}: {isa:?} gives other bits than {:?}: {}",
                    isas[0],
                    first_diff(&b, b0)
                ),
            }
        }
        let (r, b0) = first.expect("at least the portable ISA");
        if self.par {
            let isa = self.rng.pick(&isas);
            set_all_thresholds(Some(1));
            let got = catch_unwind(AssertUnwindSafe(|| {
                self.pool3.install(|| backend::with_isa(isa, &f))
            }));
            set_all_thresholds(None);
            let got = match got {
                Ok(g) => g,
                Err(e) => fail!(
                    "{what} (thresholds 1, 3 threads, {isa:?}) panicked: {}",
                    panic_msg(&*e)
                ),
            };
            let gb = got.bits();
            check!(
                gb == b0,
                "{what}: thresholds forced to 1 on 3 threads ({isa:?}) give other bits: {}",
                first_diff(&gb, &b0)
            );
        }
        r
    }
}

// ------------------------------------------------------------------ generators

#[derive(Clone, Copy, Debug, PartialEq)]
enum Profile {
    /// Uniform in [-4, 4], zeros, small integers.
    Normal,
    /// Any exponent of the type, subnormals included.
    Wide,
    /// Around the bottom of the range.
    Tiny,
    /// Mostly normal with some wide values.
    Mixed,
}

fn gen_profile(rng: &mut Rng) -> Profile {
    match rng.below(10) {
        0..=5 => Profile::Normal,
        6 | 7 => Profile::Wide,
        8 => Profile::Tiny,
        _ => Profile::Mixed,
    }
}

fn gen_val<T: Ty>(rng: &mut Rng, p: Profile) -> f64 {
    let sign = if rng.chance(0.5) { -1.0 } else { 1.0 };
    let wide = |rng: &mut Rng, lo: i32, hi: i32| {
        let e = lo + rng.below((hi - lo + 1) as u64) as i32;
        sign * (1.0 + rng.unif()) * 2f64.powi(e)
    };
    match p {
        Profile::Normal => match rng.below(16) {
            0 => 0.0,
            1 => -0.0,
            2 | 3 => rng.range(0, 8) as f64 - 4.0,
            _ => rng.unif() * 8.0 - 4.0,
        },
        Profile::Wide => wide(rng, T::EXP.0, T::EXP.1),
        Profile::Tiny => match rng.below(4) {
            0 => 0.0,
            _ => {
                let lo = T::EXP.0;
                wide(rng, lo, lo + 40)
            }
        },
        Profile::Mixed => {
            if rng.chance(0.1) {
                wide(rng, T::EXP.0, T::EXP.1)
            } else {
                gen_val::<T>(rng, Profile::Normal)
            }
        }
    }
}

/// What a masked-out slot may hold.
fn poison(rng: &mut Rng) -> f64 {
    rng.pick(&[
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e300,
        -1e300,
        f64::from_bits(0x7ff0_dead_beef_0001),
        12345.0,
    ])
}

fn special(rng: &mut Rng) -> f64 {
    rng.pick(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY])
}

/// A length: small, around lane / word / block boundaries, or up to `max`.
fn gen_len(rng: &mut Rng, max: usize) -> usize {
    match rng.below(20) {
        0 => 0,
        1..=4 => rng.range(1, 8),
        5..=9 => rng.range(9, 140),
        10..=12 => rng.range(140, 1100),
        13..=16 => {
            let b = rng.pick(&[32usize, 64, 128, 256, 512, 4096, 8192]);
            (b + rng.range(0, 4)).saturating_sub(2).min(max)
        }
        17 | 18 => rng.range(1100, 5000.min(max)),
        _ => rng.range(1, max),
    }
}

/// `(rows, cols, ndim)` with `rows * cols` near `n`.
fn gen_shape(rng: &mut Rng, max: usize) -> (usize, usize, usize) {
    let n = gen_len(rng, max);
    match rng.below(8) {
        0 | 1 => (1, n, 1),
        2 => (1, n, 2),
        3 => (n, 1, 2),
        4 => {
            if rng.chance(0.5) {
                (0, rng.range(0, 50), 2)
            } else {
                (rng.range(0, 50), 0, 2)
            }
        }
        _ => {
            let rows = rng.range(1, 70.min(n.max(1)));
            (rows, n / rows, 2)
        }
    }
}

fn gen_mask(rng: &mut Rng, len: usize) -> Mask {
    match rng.below(9) {
        0 => Mask::ones(len),
        1 => Mask::zeros(len),
        2 => {
            let p = rng.unif();
            Mask::from_fn(len, |_| rng.unif() < p)
        }
        3 => {
            // runs
            let mut keep = rng.chance(0.5);
            let mut left = 0usize;
            Mask::from_fn(len, |_| {
                if left == 0 {
                    keep = !keep;
                    left = rng.range(1, 80);
                }
                left -= 1;
                keep
            })
        }
        4 => {
            // whole words on or off, some random
            let kinds: Vec<u64> = (0..len.div_ceil(64)).map(|_| rng.below(3)).collect();
            Mask::from_fn(len, |i| match kinds[i / 64] {
                0 => false,
                1 => true,
                _ => mix(i as u64 ^ 0x55) & 1 == 1,
            })
        }
        5 => Mask::from_fn(len, |_| rng.chance(0.03)),
        6 => Mask::from_fn(len, |_| rng.chance(0.97)),
        7 => {
            let k = rng.range(1, 70);
            Mask::from_fn(len, |i| i % k == 0)
        }
        _ => Mask::random(len, rng.unif(), rng.next()),
    }
}

/// A mask length: usually `n`, sometimes wrong.
fn gen_mask_len(rng: &mut Rng, n: usize) -> usize {
    if rng.chance(0.04) {
        match rng.below(3) {
            0 => n + rng.range(1, 70),
            1 => n.saturating_sub(rng.range(1, 3)),
            _ => rng.range(0, 200),
        }
    } else {
        n
    }
}

/// Data of `n` elements at offset `off` of a larger buffer: kept slots drawn
/// from `prof` (with a kept NaN/inf now and then when `specials`),
/// masked-out slots and the padding around holding poison.
struct Data<T> {
    buf: Vec<T>,
    off: usize,
    n: usize,
}

impl<T: Copy> Data<T> {
    fn x(&self) -> &[T] {
        &self.buf[self.off..self.off + self.n]
    }
    fn x_mut(&mut self) -> &mut [T] {
        let (o, n) = (self.off, self.n);
        &mut self.buf[o..o + n]
    }
}

fn gen_data<T: Ty>(
    rng: &mut Rng,
    n: usize,
    mask: Option<&Mask>,
    prof: Profile,
    specials: bool,
) -> Data<T> {
    let off = if rng.chance(0.6) { rng.range(1, 7) } else { 0 };
    let tail = rng.range(0, 3);
    let mut buf: Vec<T> = (0..off + n + tail)
        .map(|_| T::from_f64(poison(rng)))
        .collect();
    let p_special = if specials {
        0.02 + rng.unif() * 0.05
    } else {
        0.0
    };
    for i in 0..n {
        let kept = mask.is_none_or(|m| i >= m.len() || m.get(i));
        buf[off + i] = if kept {
            if rng.chance(p_special) {
                T::from_f64(special(rng))
            } else {
                T::from_f64(gen_val::<T>(rng, prof))
            }
        } else {
            T::from_f64(poison(rng))
        };
    }
    Data { buf, off, n }
}

/// A hyper-parameter: ordinary, 0, negative, subnormal, huge, inf, NaN.
fn gen_hyper(rng: &mut Rng) -> f64 {
    match rng.below(24) {
        0 => 0.0,
        1 => -0.0,
        2 => -rng.unif() * 2.0,
        3 => 5e-324,
        4 => 1e-39,
        5 => 2e-39,
        6 => f32::from_bits(1) as f64,
        7 => f64::MIN_POSITIVE,
        8 => 1e-30,
        9 => 1e19,
        10 => 1e30,
        11 => 1e39,
        12 => 1e300,
        13 => f64::INFINITY,
        14 => f64::NEG_INFINITY,
        15 => f64::NAN,
        16 => 1.0,
        _ => rng.unif() * 3.0,
    }
}

// ------------------------------------------------------------------ comparisons

/// `|got - want| <= tol + 2 u |want| + TINY`; NaN only against NaN, an
/// infinity only against the same infinity, except that a value within
/// `tol` of the type's overflow threshold may round either way.
fn close<T: Ty>(got: f64, want: f64, tol: f64, what: &dyn Fn() -> String) {
    if want.is_nan() || got.is_nan() {
        check!(
            want.is_nan() && got.is_nan(),
            "{}: {got:e} vs reference {want:e}",
            what()
        );
        return;
    }
    let near_max = |f: f64| f.abs() + tol + 4.0 * T::U * T::MAX >= T::MAX;
    if want.is_infinite() || got.is_infinite() {
        let ok = got == want
            || (got.is_finite() && near_max(got) && got.signum() == want.signum())
            || (want.is_finite() && near_max(want) && got.signum() == want.signum());
        check!(ok, "{}: {got:e} vs reference {want:e}", what());
        return;
    }
    let bound = tol + 2.0 * T::U * want.abs() + T::TINY;
    check!(
        (got - want).abs() <= bound,
        "{}: {got:e} vs reference {want:e}, |diff| {:e} > bound {bound:e}",
        what(),
        (got - want).abs()
    );
}

/// The same error (or both `Ok`).
fn same_err<A, B>(got: &Result<A, Error>, want: &Result<B, Error>, what: &str) {
    match (got, want) {
        (Ok(_), Ok(_)) => {}
        // (compared by description: a NaN parameter makes `==` false)
        (Err(a), Err(b)) => check!(
            format!("{a:?}") == format!("{b:?}"),
            "{what}: error {a:?}, reference {b:?}"
        ),
        (Err(a), Ok(_)) => fail!("{what}: Err({a:?}) where the reference is Ok"),
        (Ok(_), Err(b)) => fail!("{what}: Ok where the reference is Err({b:?})"),
    }
}

fn gamma(k: f64, u: f64) -> f64 {
    k * u / (1.0 - k * u).max(0.5)
}

/// Depth of the canonical summation tree of `len` elements (see
/// `tests/simd_reduce.rs`).
fn depth(len: usize) -> f64 {
    let blocks = len.div_ceil(4096).max(1);
    (len.min(4096).div_ceil(32) + 5) as f64 + (blocks as f64).log2().ceil() + 1.0
}

// ================================================================== families

#[derive(Clone, Copy, Debug, PartialEq)]
enum ROp {
    Sum,
    Mean,
    Prod,
    Amin,
    Amax,
    Var(usize),
    Std(usize),
    Norm(f64),
    Lse,
}

fn fast_whole<T: Element>(v: &MaskedView<T>, op: ROp) -> Option<T> {
    match op {
        ROp::Sum => v.sum(),
        ROp::Mean => v.mean(),
        ROp::Prod => v.prod(),
        ROp::Amin => v.amin(),
        ROp::Amax => v.amax(),
        ROp::Var(c) => v.var(c),
        ROp::Std(c) => v.std(c),
        ROp::Norm(p) => v.norm(p),
        ROp::Lse => v.logsumexp(),
    }
}

fn ref_whole<T: Element>(v: &MaskedView<T>, op: ROp) -> Option<T> {
    use reference::reduce as r;
    match op {
        ROp::Sum => r::sum(v),
        ROp::Mean => r::mean(v),
        ROp::Prod => r::prod(v),
        ROp::Amin => r::amin(v),
        ROp::Amax => r::amax(v),
        ROp::Var(c) => r::var(v, c),
        ROp::Std(c) => r::std(v, c),
        ROp::Norm(p) => r::norm(v, p),
        ROp::Lse => r::logsumexp(v),
    }
}

fn fast_dim<T: Element>(v: &MaskedView<T>, dim: usize, op: ROp) -> Result<MaskedVec<T>, Error> {
    match op {
        ROp::Sum => v.sum_dim(dim),
        ROp::Mean => v.mean_dim(dim),
        ROp::Prod => v.prod_dim(dim),
        ROp::Amin => v.amin_dim(dim),
        ROp::Amax => v.amax_dim(dim),
        ROp::Var(c) => v.var_dim(dim, c),
        ROp::Std(c) => v.std_dim(dim, c),
        ROp::Norm(p) => v.norm_dim(dim, p),
        ROp::Lse => v.logsumexp_dim(dim),
    }
}

fn ref_dim<T: Element>(v: &MaskedView<T>, dim: usize, op: ROp) -> Result<MaskedVec<T>, Error> {
    use reference::reduce as r;
    match op {
        ROp::Sum => r::sum_dim(v, dim),
        ROp::Mean => r::mean_dim(v, dim),
        ROp::Prod => r::prod_dim(v, dim),
        ROp::Amin => r::amin_dim(v, dim),
        ROp::Amax => r::amax_dim(v, dim),
        ROp::Var(c) => r::var_dim(v, dim, c),
        ROp::Std(c) => r::std_dim(v, dim, c),
        ROp::Norm(p) => r::norm_dim(v, dim, p),
        ROp::Lse => r::logsumexp_dim(v, dim),
    }
}

/// The tolerance of `op` on one sequence (kept values `v`, length `len`),
/// or `None` where an intermediate of the accumulator type can leave its
/// range (then only the structure is compared).
fn tol_reduce<T: Ty>(op: ROp, v: &[f64], len: usize, want: f64) -> Option<f64> {
    let u = T::U_ACC;
    let d = depth(len);
    let n = v.len() as f64;
    // range checks on the finite values first: an intermediate that
    // overflows (or a partial product that underflows) makes the class of a
    // result with kept infinities differ too (inf - inf, 0 * inf)
    let fin: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    let sabs: f64 = fin.iter().map(|x| x.abs()).sum();
    let maxabs = fin.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    let lim = T::ACC_MAX / 16.0;
    let in_range = match op {
        ROp::Prod => {
            let hi: f64 = fin.iter().map(|x| x.abs().max(1.0).ln()).sum();
            let lo: f64 = fin
                .iter()
                .filter(|x| **x != 0.0)
                .map(|x| x.abs().min(1.0).ln())
                .sum();
            hi <= (T::ACC_MAX / 16.0).ln() && lo >= (T::ACC_MIN * 16.0).ln()
        }
        ROp::Amin | ROp::Amax | ROp::Lse => true,
        ROp::Norm(p) if p.is_infinite() || p == 0.0 => true,
        ROp::Var(_) | ROp::Std(_) => sabs <= lim && n * (2.0 * maxabs) * (2.0 * maxabs) <= lim,
        ROp::Norm(p) if p != 1.0 => {
            let nn = n.max(1.0);
            fin.iter().all(|x| {
                let t = x.abs().powf(p);
                t <= lim / nn && (p > 0.0 || t == 0.0 || t >= T::ACC_MIN)
            })
        }
        _ => sabs <= lim,
    };
    if !in_range {
        return None;
    }
    if v.iter().any(|x| !x.is_finite()) {
        // kept NaN / inf: the class must match (close() with tol inf)
        return Some(f64::INFINITY);
    }
    let w = if want.is_finite() { want.abs() } else { 0.0 };
    let dn_floor = 4.0 * n * T::ACC_DENORM;
    // the reference's own error: sequential sums in f64 (matters for f64)
    let rn = gamma(n + 4.0, f64::EPSILON / 2.0);
    Some(match op {
        ROp::Sum | ROp::Norm(1.0) => (gamma(d, u) + rn) * sabs,
        ROp::Mean => (gamma(d, u) + rn) * sabs / n.max(1.0) + u * w,
        ROp::Amin | ROp::Amax => 0.0,
        ROp::Norm(p) if p.is_infinite() || p == 0.0 => 0.0,
        ROp::Prod => gamma(n + 1.0, u) * w,
        ROp::Var(c) | ROp::Std(c) => {
            let mean = v.iter().sum::<f64>() / n.max(1.0);
            let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
            let dm = (gamma(d, u) + rn) * sabs / n + u * mean.abs();
            let dn = (n - c as f64).max(1.0);
            let tv = (gamma(d + 4.0, u) + rn) * (ss + n * dm * dm + 2.0 * dm * sabs) / dn
                + dn_floor / dn;
            if matches!(op, ROp::Var(_)) {
                tv + u * w
            } else {
                let sd = (ss / dn).sqrt();
                (tv / (2.0 * sd.max(1e-300))).min(tv.sqrt()) + u * w
            }
        }
        ROp::Norm(p) => {
            // |x|^p per term, a canonical sum, s^(1/p)
            let terms: Vec<f64> = v.iter().map(|x| x.abs().powf(p)).collect();
            let s: f64 = terms.iter().sum();
            if !s.is_finite() || (p < 0.0 && s < T::ACC_MIN * 1e6) {
                return None;
            }
            let ts = (gamma(d + 8.0, u) + rn) * s + dn_floor;
            let hi = (s + ts).powf(1.0 / p);
            let lo = (s - ts).max(0.0).powf(1.0 / p);
            let spread = (hi - lo).abs();
            if !spread.is_finite() {
                return None;
            }
            spread + 4.0 * u * w + if p > 0.0 { dn_floor.powf(1.0 / p) } else { 0.0 }
        }
        ROp::Lse => {
            let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = v.iter().map(|x| (x - m).exp()).sum();
            gamma(d + 4.0, u) + rn + 3.0 * u * (s.ln().abs() + w + m.abs())
        }
    })
}

fn gen_rops(rng: &mut Rng, n: usize) -> Vec<ROp> {
    let corr = |rng: &mut Rng| rng.pick(&[0, 1, 1, 2, n, n + 1, usize::MAX]);
    let p = rng.pick(&[
        2.0,
        1.0,
        3.0,
        0.5,
        0.0,
        -1.0,
        -2.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1e-300,
        1e300,
        7.25,
    ]);
    vec![
        ROp::Sum,
        ROp::Mean,
        ROp::Prod,
        ROp::Amin,
        ROp::Amax,
        ROp::Var(corr(rng)),
        ROp::Std(corr(rng)),
        ROp::Norm(p),
        ROp::Lse,
    ]
}

/// A 1-D or 2-D view of generated data; `None` if the mask length is wrong
/// (after checking that the constructor refuses it).
fn reductions<T: Ty + Fp>(ctx: &mut Ctx) {
    let rng = &mut ctx.rng;
    let (rows, cols, ndim) = gen_shape(rng, ctx.max_len);
    let n = rows * cols;
    let prof = gen_profile(rng);
    let specials = rng.chance(0.15);
    let mlen = gen_mask_len(rng, n);
    let m = gen_mask(rng, mlen);
    let data = gen_data::<T>(rng, n, Some(&m), prof, specials);
    note(format!(
        "reductions {} {rows}x{cols} ndim {ndim} {prof:?} specials {specials} mask len {mlen}",
        T::NAME
    ));
    let x = data.x();
    let view = if ndim == 1 {
        MaskedView::new(x, &m)
    } else {
        MaskedView::matrix(x, &m, rows, cols)
    };
    if mlen != n {
        check!(
            matches!(view, Err(Error::Length { arg: "mask", .. })),
            "a mask of length {mlen} for {n} elements: {view:?}"
        );
        return;
    }
    let v = view.unwrap_or_else(|e| fail!("view: {e}"));
    let ops = gen_rops(&mut ctx.rng, n);
    let whole = reference::reduce::whole(&v);
    let kept_all: Vec<f64> = reference::reduce::kept(&v, whole).map(|(_, x)| x).collect();
    for &op in &ops {
        let got = ctx.across(&format!("{op:?} whole"), || fast_whole(&v, op));
        let want = ref_whole(&v, op);
        check!(
            got.is_some() == want.is_some(),
            "{op:?}: {got:?} vs reference {want:?}"
        );
        if let (Some(g), Some(w)) = (got, want) {
            let (g, w) = (g.to_f64(), w.to_f64());
            if let Some(tol) = tol_reduce::<T>(op, &kept_all, n, w) {
                close::<T>(g, w, tol, &|| format!("{op:?} whole"));
            }
        }
    }
    for (name, f, r) in [
        (
            "argmin",
            (|v: &MaskedView<T>| v.argmin()) as fn(&MaskedView<T>) -> Option<usize>,
            reference::reduce::argmin::<T> as fn(&MaskedView<T>) -> Option<usize>,
        ),
        ("argmax", |v| v.argmax(), reference::reduce::argmax::<T>),
    ] {
        let got = ctx.across(name, || f(&v));
        check!(got == r(&v), "{name}: {got:?} vs reference {:?}", r(&v));
    }
    // per dim: usually a valid dim, sometimes not
    let dim = ctx.rng.pick(&[0, 1, 1, 0, 2, 7, usize::MAX]);
    for &op in &ops {
        let got = ctx.across(&format!("{op:?} dim {dim}"), || fast_dim(&v, dim, op));
        let want = ref_dim(&v, dim, op);
        same_err(&got, &want, &format!("{op:?} dim {dim}"));
        let (Ok(got), Ok(want)) = (got, want) else {
            continue;
        };
        check!(
            got.mask == want.mask && got.values.len() == want.values.len(),
            "{op:?} dim {dim}: mask or length differs from the reference"
        );
        let seqs = reference::reduce::sequences(&v, dim).unwrap();
        for (s, seq) in seqs.iter().enumerate() {
            let (Some(g), Some(w)) = (got.get(s), want.get(s)) else {
                continue;
            };
            let vals: Vec<f64> = reference::reduce::kept(&v, *seq).map(|(_, x)| x).collect();
            let (g, w) = (g.to_f64(), w.to_f64());
            if let Some(tol) = tol_reduce::<T>(op, &vals, seq.len, w) {
                close::<T>(g, w, tol, &|| format!("{op:?} dim {dim} seq {s}"));
            }
        }
    }
    for (name, arg_min) in [("argmin_dim", true), ("argmax_dim", false)] {
        let got = ctx.across(name, || {
            if arg_min {
                v.argmin_dim(dim)
            } else {
                v.argmax_dim(dim)
            }
        });
        let want = if arg_min {
            reference::reduce::argmin_dim(&v, dim)
        } else {
            reference::reduce::argmax_dim(&v, dim)
        };
        same_err(&got, &want, name);
        if let (Ok(g), Ok(w)) = (&got, &want) {
            check!(g == w, "{name} dim {dim}: differs from the reference");
        }
    }
}

fn softmaxes<T: Ty + Fp>(ctx: &mut Ctx) {
    let rng = &mut ctx.rng;
    let (rows, cols, ndim) = gen_shape(rng, ctx.max_len);
    let n = rows * cols;
    let prof = gen_profile(rng);
    let specials = rng.chance(0.15);
    let m = gen_mask(rng, n);
    let data = gen_data::<T>(rng, n, Some(&m), prof, specials);
    let dim = rng.pick(&[0, 1, 1, 0, 0, 1, 2, usize::MAX]);
    let log = rng.chance(0.5);
    let gprof = if rng.chance(0.8) {
        Profile::Normal
    } else {
        prof
    };
    note(format!(
        "softmax {} {rows}x{cols} ndim {ndim} dim {dim} log {log} {prof:?} specials {specials} dy {gprof:?}",
        T::NAME
    ));
    let x = data.x();
    let v = if ndim == 1 {
        MaskedView::new(x, &m).unwrap()
    } else {
        MaskedView::matrix(x, &m, rows, cols).unwrap()
    };
    let got = ctx.across("softmax", || {
        if log {
            softmax::log_softmax(&v, dim)
        } else {
            softmax::softmax(&v, dim)
        }
    });
    let want = if log {
        reference::softmax::log_softmax(&v, dim)
    } else {
        reference::softmax::softmax(&v, dim)
    };
    same_err(&got, &want, "softmax");
    let (Ok(got), Ok(want)) = (got, want) else {
        return;
    };
    check!(got.mask == want.mask, "softmax: mask differs");
    let u = T::U_ACC;
    let seqs = reference::reduce::sequences(&v, dim).unwrap_or_default();
    let mut seq_of = vec![usize::MAX; n];
    for (s, seq) in seqs.iter().enumerate() {
        for k in 0..seq.len {
            seq_of[seq.at(k)] = s;
        }
    }
    let len = seqs.first().map_or(0, |s| s.len);
    let d = depth(len);
    let maxes: Vec<f64> = seqs
        .iter()
        .map(|&s| {
            reference::reduce::kept(&v, s)
                .map(|(_, x)| x)
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .collect();
    let lse: Vec<f64> = seqs
        .iter()
        .zip(&maxes)
        .map(|(&s, &mx)| {
            let z: f64 = reference::reduce::kept(&v, s)
                .map(|(_, x)| (x - mx).exp())
                .sum();
            z.ln().abs() + mx.abs()
        })
        .collect();
    for i in 0..n {
        if !m.get(i) {
            check!(
                got.values[i].to_f64().to_bits() == 0,
                "softmax: masked-out value {i} is not +0"
            );
            continue;
        }
        let w = want.values[i].to_f64();
        let rn = gamma(len as f64 + 4.0, f64::EPSILON / 2.0);
        let tol = if log {
            gamma(d + 6.0, u) + rn + 4.0 * u * (lse[seq_of[i]] + x[i].to_f64().abs())
        } else {
            // exp(x - m): the rounding of x - m, relative to |x - m|
            let dist = (x[i].to_f64() - maxes[seq_of[i]]).abs();
            let dist = if dist.is_finite() { dist } else { 0.0 };
            (gamma(d + 8.0, u) + rn + 2.0 * u * dist) * w.abs()
        };
        close::<T>(got.values[i].to_f64(), w, tol, &|| format!("softmax[{i}]"));
    }
    // backward, from the reference's forward output
    let glen = if ctx.rng.chance(0.05) { n + 1 } else { n };
    let dyd = gen_data::<T>(&mut ctx.rng, glen, Some(&m), gprof, false);
    let dy = dyd.x();
    let out = if ndim == 1 {
        MaskedView::new(&want.values, &want.mask).unwrap()
    } else {
        MaskedView::matrix(&want.values, &want.mask, rows, cols).unwrap()
    };
    let gb = ctx.across("softmax backward", || {
        if log {
            softmax::log_softmax_backward(&out, dy, dim)
        } else {
            softmax::softmax_backward(&out, dy, dim)
        }
    });
    let wb = if log {
        reference::softmax::log_softmax_backward(&out, dy, dim)
    } else {
        reference::softmax::softmax_backward(&out, dy, dim)
    };
    same_err(&gb, &wb, "softmax backward");
    let (Ok(gb), Ok(wb)) = (gb, wb) else {
        return;
    };
    check!(gb.mask == wb.mask, "softmax backward: mask differs");
    let k: Vec<f64> = seqs
        .iter()
        .map(|&s| {
            (0..s.len)
                .map(|j| s.at(j))
                .filter(|&i| m.get(i))
                .map(|i| {
                    let gi = dy[i].to_f64().abs();
                    if log {
                        gi
                    } else {
                        gi * want.values[i].to_f64().abs()
                    }
                })
                .sum()
        })
        .collect();
    for i in 0..n {
        if !m.get(i) {
            continue;
        }
        let y = want.values[i].to_f64();
        let gi = dy[i].to_f64().abs();
        let ks = k[seq_of[i]];
        if !ks.is_finite() || ks > T::ACC_MAX / 16.0 || gi > T::ACC_MAX / 16.0 {
            continue;
        }
        let rn = gamma(len as f64 + 4.0, f64::EPSILON / 2.0);
        let tol = if y.is_nan() {
            0.0
        } else if log {
            rn * (gi + y.exp() * ks)
                + y.exp() * (gamma(d + 4.0, u) * ks)
                + 4.0 * u * (gi + y.exp() * ks)
                + ks * T::TINY
        } else {
            y.abs() * ((gamma(d + 2.0, u) + rn) * ks + 2.0 * u * (gi + ks)) + 4.0 * T::TINY
        };
        close::<T>(gb.values[i].to_f64(), wb.values[i].to_f64(), tol, &|| {
            format!("softmax backward[{i}]")
        });
    }
}

// ------------------------------------------------------------------ losses

#[derive(Clone, Copy, Debug, PartialEq)]
enum LKind {
    Mse,
    L1,
    Huber(f64),
    Smooth(f64),
    Bce,
}

fn loss_fast<T: Float>(
    k: LKind,
    x: &[T],
    y: &[T],
    m: &Mask,
    pw: Option<&[T]>,
    red: Reduction,
) -> Result<Loss<T>, Error> {
    match k {
        LKind::Mse => loss::mse(x, y, m, red),
        LKind::L1 => loss::l1(x, y, m, red),
        LKind::Huber(d) => loss::huber(x, y, m, d, red),
        LKind::Smooth(b) => loss::smooth_l1(x, y, m, b, red),
        LKind::Bce => loss::bce_with_logits(x, y, m, pw, red),
    }
}

fn loss_into<T: Float>(
    k: LKind,
    x: &[T],
    y: &[T],
    m: &Mask,
    pw: Option<&[T]>,
    red: Reduction,
    g: &mut [T],
) -> Result<Vec<T>, Error> {
    match k {
        LKind::Mse => loss::mse_into(x, y, m, red, g),
        LKind::L1 => loss::l1_into(x, y, m, red, g),
        LKind::Huber(d) => loss::huber_into(x, y, m, d, red, g),
        LKind::Smooth(b) => loss::smooth_l1_into(x, y, m, b, red, g),
        LKind::Bce => loss::bce_with_logits_into(x, y, m, pw, red, g),
    }
}

fn loss_ref<T: Float>(
    k: LKind,
    x: &[T],
    y: &[T],
    m: &Mask,
    pw: Option<&[T]>,
    red: Reduction,
) -> Result<Loss<T>, Error> {
    use reference::loss as r;
    match k {
        LKind::Mse => r::mse(x, y, m, red),
        LKind::L1 => r::l1(x, y, m, red),
        LKind::Huber(d) => r::huber(x, y, m, d, red),
        LKind::Smooth(b) => r::smooth_l1(x, y, m, b, red),
        LKind::Bce => r::bce_with_logits(x, y, m, pw, red),
    }
}

fn up<T: Element>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

fn gen_red(rng: &mut Rng) -> Reduction {
    rng.pick(&[Reduction::None, Reduction::Sum, Reduction::Mean])
}

/// A buffer for an `*_into` output: poison around (and in) it, at an odd
/// offset; `len` is sometimes wrong.
fn out_buf<T: Ty>(rng: &mut Rng, len: usize) -> Data<T> {
    let len = if rng.chance(0.04) { len + 1 } else { len };
    let off = rng.range(0, 5);
    let buf = (0..len + off + 2)
        .map(|_| T::from_f64(poison(rng)))
        .collect();
    Data { buf, off, n: len }
}

fn elementwise_losses<T: Ty + Float + Fp>(ctx: &mut Ctx) {
    let rng = &mut ctx.rng;
    let n = gen_len(rng, ctx.max_len);
    let kind = match rng.below(5) {
        0 => LKind::Mse,
        1 => LKind::L1,
        2 => LKind::Huber(gen_hyper(rng)),
        3 => LKind::Smooth(gen_hyper(rng)),
        _ => LKind::Bce,
    };
    let prof = gen_profile(rng);
    let specials = rng.chance(0.15);
    let red = gen_red(rng);
    let mlen = gen_mask_len(rng, n);
    let m = gen_mask(rng, mlen);
    let tlen = if rng.chance(0.04) { n + 1 } else { n };
    let xd = gen_data::<T>(rng, n, Some(&m), prof, specials);
    let yspecial = specials && rng.chance(0.5);
    let mut yd = gen_data::<T>(rng, tlen, Some(&m), prof, yspecial);
    if kind == LKind::Bce && rng.chance(0.8) {
        // probabilities, the usual targets
        let mm = m.clone();
        for (i, t) in yd.x_mut().iter_mut().enumerate() {
            if i < mm.len() && mm.get(i) {
                let u = rng.unif();
                *t = T::from_f64(rng.pick(&[0.0, 1.0, u]));
            }
        }
    }
    let pw: Option<Vec<T>> = (kind == LKind::Bce && rng.chance(0.5)).then(|| {
        let p = match rng.below(6) {
            0 => 1,
            1 => 0,
            2 => n + 1,
            _ => {
                let d = rng.pick(&[2usize, 3, 5, 7, 64, 100]);
                if n.is_multiple_of(d) {
                    d
                } else {
                    1
                }
            }
        };
        let wprof = if rng.chance(0.8) {
            None
        } else {
            Some(gen_profile(rng))
        };
        (0..p)
            .map(|_| {
                T::from_f64(match wprof {
                    None => 0.1 + 3.0 * rng.unif(),
                    Some(pr) => gen_val::<T>(rng, pr),
                })
            })
            .collect()
    });
    note(format!(
        "loss {kind:?} {} n {n} {prof:?} specials {specials} {red:?} mask len {mlen} target len {tlen} pos_weight {:?}",
        T::NAME,
        pw.as_ref().map(|p| p.len())
    ));
    let (x, y) = (xd.x(), yd.x());
    let pw = pw.as_deref();
    let mut gbuf = out_buf::<T>(rng, n);
    let g0 = gbuf.buf.clone();
    let got = ctx.across(&format!("{kind:?}"), || loss_fast(kind, x, y, &m, pw, red));
    let want_t = loss_ref(kind, x, y, &m, pw, red);
    same_err(&got, &want_t, &format!("{kind:?}"));
    // the _into form on the detected ISA: the same bits, or the same error
    // (also for a grad of the wrong length)
    let into = call("loss _into", || {
        loss_into(kind, x, y, &m, pw, red, gbuf.x_mut())
    });
    match (&into, &got) {
        (Ok(v), Ok(l)) => {
            check!(v.bits() == l.value.bits(), "{kind:?} _into: value differs");
            check!(
                gbuf.x().bits() == l.grad.bits(),
                "{kind:?} _into: grad differs"
            );
        }
        (Err(Error::Length { arg: "grad", .. }), _) if gbuf.n != n => {}
        (Err(e), Err(f)) => check!(
            format!("{e:?}") == format!("{f:?}"),
            "{kind:?} _into: {e:?} vs {f:?}"
        ),
        _ => fail!("{kind:?} _into: {into:?} vs plain {:?}", got.as_ref().err()),
    }
    if gbuf.n != n && into.is_ok() {
        fail!("{kind:?} _into accepted a grad of length {}", gbuf.n);
    }
    // nothing written outside the grad slice
    let o = gbuf.off;
    check!(
        gbuf.buf[..o].bits() == g0[..o].bits()
            && gbuf.buf[o + gbuf.n..].bits() == g0[o + gbuf.n..].bits(),
        "{kind:?} _into wrote outside its buffer"
    );
    let Ok(got) = got else { return };
    // against the reference on the f64-widened inputs (no final rounding)
    let pw64 = pw.map(up);
    let want = loss_ref(kind, &up(x), &up(y), &m, pw64.as_deref(), red).unwrap();
    let per = loss_ref(kind, &up(x), &up(y), &m, pw64.as_deref(), Reduction::None).unwrap();
    let u = T::U;
    let kept = m.count_ones();
    let scale = if red == Reduction::Mean && kept > 0 {
        1.0 / kept as f64
    } else {
        1.0
    };
    let ke = match kind {
        LKind::Mse | LKind::L1 => 4.0,
        LKind::Huber(_) | LKind::Smooth(_) => 6.0,
        LKind::Bce => 24.0,
    };
    let amp = match kind {
        LKind::Smooth(b) if b > 0.0 => (0.5 / b).min(1e300),
        _ => 1.0,
    };
    let lim = T::MAX / 16.0;
    let pwv = |i: usize| pw64.as_ref().map_or(1.0, |p| p[i % p.len()]);
    let mut sum_mag = 0.0;
    // absolute errors (underflow of an intermediate, e.g. d * d in smooth
    // L1's quadratic zone, amplified by 0.5 / beta): added to the total's
    // tolerance as they are, not scaled by the relative error
    let mut sum_floor = 0.0;
    let mut special_total = false;
    let mut skip_total = false;
    for i in 0..n {
        if !m.get(i) {
            check!(
                got.grad[i].to_f64().to_bits() == 0,
                "{kind:?}: masked-out grad {i} is not +0"
            );
            if red == Reduction::None {
                check!(
                    got.value[i].to_f64().to_bits() == 0,
                    "{kind:?}: masked-out value {i} is not +0"
                );
            }
            continue;
        }
        let (xi, yi) = (x[i].to_f64(), y[i].to_f64());
        let v = per.value[i];
        if kind != LKind::Bce && (xi - yi).abs() > T::MAX / 4.0 && (xi - yi).is_finite() {
            // x - y overflows (or nearly) in T, not in the f64 reference
            skip_total = true;
            continue;
        }
        let mag = match kind {
            LKind::Bce => {
                // 1 - y and lw = 1 + (pw - 1) y are rounded before they cancel
                let lw = 1.0 + (pwv(i) - 1.0).abs() * yi.abs();
                (1.0 + yi.abs()) * xi.abs() + lw * (xi.abs() + 1.0)
            }
            _ => v.abs(),
        };
        // an intermediate of T out of range (finite parts only): neither the
        // value nor the class of this element, nor the total, is comparable
        // with the f64 reference (e.g. lw = 1 + (pw - 1) y overflows to inf
        // in f32, then lw * 0 = NaN where the reference has 0)
        let inter = match kind {
            LKind::Bce => {
                let lw = 1.0 + (pwv(i) - 1.0).abs() * yi.abs();
                [
                    1.0 + yi.abs(),
                    lw,
                    (1.0 + yi.abs()) * xi.abs(),
                    lw * (xi.abs() + 1.0),
                ]
                .into_iter()
                .filter(|t| t.is_finite())
                .fold(0.0, f64::max)
            }
            _ => {
                if v.is_finite() {
                    v.abs()
                } else {
                    0.0
                }
            }
        };
        // an infinite lw (infinite target or pos_weight) times sigmoid(-x):
        // exp_f32 flushes below 2^-126 (|x| > 87), the f64 reference does not,
        // so inf * 0 = NaN there against inf * tiny = inf here
        let lw_inf = !(yi.is_finite() && pwv(i).is_finite());
        if kind == LKind::Bce && lw_inf && xi.abs() > 80.0 {
            skip_total = true;
            continue;
        }
        if inter > lim {
            skip_total = true;
            continue;
        }
        let floor = 4.0 * T::ACC_DENORM * (1.0 + amp).min(1e300) + 8.0 * T::TINY;
        let floor = match kind {
            LKind::Smooth(b) => floor.min(b.max(8.0 * T::TINY)),
            _ => floor,
        };
        if !mag.is_finite() || !v.is_finite() {
            special_total = true;
        } else {
            sum_mag += mag;
            sum_floor += floor;
        }
        let gw = want.grad[i];
        let gm = match kind {
            LKind::Bce => {
                let lw = 1.0 + (pwv(i) - 1.0).abs() * yi.abs();
                (1.0 + yi.abs() + lw) * scale
            }
            _ => gw.abs(),
        };
        let gfloor = 4.0 * T::ACC_DENORM + 8.0 * T::TINY;
        if !gm.is_finite() || !gw.is_finite() {
            close::<T>(got.grad[i].to_f64(), gw, f64::INFINITY, &|| {
                format!("{kind:?} grad[{i}]")
            });
        } else if gm / scale <= lim {
            // (BCE's gradient is scaled after (1 - y) - lw sigmoid(-x): that
            // intermediate must stay in range too)
            let tol = (ke + 2.0) * u * gm + gfloor;
            close::<T>(got.grad[i].to_f64(), gw, tol, &|| {
                format!("{kind:?} grad[{i}]")
            });
        }
        if red == Reduction::None {
            if !mag.is_finite() || !v.is_finite() {
                close::<T>(got.value[i].to_f64(), v, f64::INFINITY, &|| {
                    format!("{kind:?} value[{i}]")
                });
            } else if mag <= lim {
                let tol = ke * u * mag + floor;
                close::<T>(got.value[i].to_f64(), v, tol, &|| {
                    format!("{kind:?} value[{i}]")
                });
            }
        }
    }
    if red != Reduction::None && !skip_total {
        let w = want.value[0];
        if special_total || !w.is_finite() {
            close::<T>(got.value[0].to_f64(), w, f64::INFINITY, &|| {
                format!("{kind:?} {red:?}")
            });
        } else if sum_mag <= lim {
            let blocks = n.div_ceil(4096).max(1) as f64;
            let dep = 128.0 + 5.0 + blocks.log2().ceil() + ke + 2.0;
            let tol = (dep * u + gamma(n as f64 + 4.0, f64::EPSILON / 2.0))
                * (sum_mag + sum_floor)
                * scale
                + 2.0 * sum_floor * scale;
            close::<T>(got.value[0].to_f64(), w, tol, &|| {
                format!("{kind:?} {red:?}")
            });
        }
    }
}

fn cross_entropies<T: Ty + Float + Fp>(ctx: &mut Ctx) {
    let rng = &mut ctx.rng;
    let classes = rng.pick(&[0usize, 1, 2, 3, 7, 31, 32, 33, 64, 100, 257, 1000, 4097]);
    let max_rows = (ctx.max_len / classes.max(1)).clamp(1, 300);
    let rows = if rng.chance(0.1) {
        0
    } else {
        rng.range(1, max_rows)
    };
    let prof = gen_profile(rng);
    let specials = rng.chance(0.1);
    let len = if rng.chance(0.04) {
        rows * classes + 1
    } else {
        rows * classes
    };
    let xd = gen_data::<T>(rng, len, None, prof, specials);
    let ignore_index = rng.pick(&[-100i64, -100, -1, 0, 3, i64::MIN, i64::MAX]);
    let bad_targets = rng.chance(0.08);
    let tlen = if rng.chance(0.04) { rows + 1 } else { rows };
    let targets: Vec<i64> = (0..tlen)
        .map(|_| {
            if bad_targets && rng.chance(0.2) {
                rng.pick(&[classes as i64, -5, i64::MAX, i64::MIN + 1])
            } else if classes == 0 || rng.chance(0.15) {
                ignore_index
            } else {
                rng.range(0, classes - 1) as i64
            }
        })
        .collect();
    let wprof = rng.below(6);
    let weight: Option<Vec<T>> = rng.chance(0.5).then(|| {
        let wl = if rng.chance(0.04) {
            classes + 1
        } else {
            classes
        };
        (0..wl)
            .map(|_| {
                T::from_f64(match wprof {
                    0 => rng.pick(&[0.0, -1.0, 2.0]),
                    1 => gen_val::<T>(rng, Profile::Wide),
                    2 if rng.chance(0.1) => special(rng),
                    _ => 0.1 + 3.0 * rng.unif(),
                })
            })
            .collect()
    });
    let ls = rng.pick(&[0.0, 0.0, 0.0, 0.1, 0.5, 1.0, 0.37, -0.1, 1.5, f64::NAN]);
    let red = gen_red(rng);
    let opts = CrossEntropy {
        ignore_index,
        weight: weight.clone(),
        label_smoothing: ls,
        reduction: red,
    };
    note(format!(
        "cross_entropy {} {rows}x{classes} len {len} {prof:?} specials {specials} ignore {ignore_index} bad targets {bad_targets} weight {:?} ls {ls} {red:?}",
        T::NAME,
        weight.as_ref().map(|w| w.len())
    ));
    let x = xd.x();
    let mut gbuf = out_buf::<T>(rng, len);
    let got = ctx.across("cross_entropy", || {
        loss::cross_entropy(x, rows, classes, &targets, &opts)
    });
    let want_t = reference::loss::cross_entropy(x, rows, classes, &targets, &opts);
    same_err(&got, &want_t, "cross_entropy");
    let into = call("cross_entropy_into", || {
        loss::cross_entropy_into(x, rows, classes, &targets, &opts, gbuf.x_mut())
    });
    match (&into, &got) {
        (Ok(v), Ok(l)) => {
            check!(
                v.bits() == l.value.bits(),
                "cross_entropy_into: value differs"
            );
            check!(
                gbuf.x().bits() == l.grad.bits(),
                "cross_entropy_into: grad differs"
            );
        }
        (Err(Error::Length { arg: "grad", .. }), _) if gbuf.n != len => {}
        (Err(e), Err(f)) => check!(
            format!("{e:?}") == format!("{f:?}"),
            "cross_entropy_into: {e:?} vs {f:?}"
        ),
        _ => fail!(
            "cross_entropy_into: {into:?} vs plain {:?}",
            got.as_ref().err()
        ),
    }
    let Ok(got) = got else { return };
    let c = classes;
    let opts64 = CrossEntropy {
        ignore_index,
        weight: weight.as_ref().map(|w| up(w)),
        label_smoothing: ls,
        reduction: red,
    };
    let want = reference::loss::cross_entropy(&up(x), rows, c, &targets, &opts64).unwrap();
    let u = T::U;
    let lim = T::MAX / 16.0;
    let w = |k: usize| opts64.weight.as_ref().map_or(1.0, |w| w[k]);
    let wabs: f64 = (0..c).map(|k| w(k).abs()).fold(0.0, f64::max);
    // (sum |w|, not |sum w|: negative weights cancel after rounding)
    let w_all: f64 = (0..c).map(|k| w(k).abs()).sum();
    let den: f64 = (0..rows)
        .filter(|&i| targets[i] != ignore_index)
        .map(|i| w(targets[i] as usize))
        .sum();
    let scale = if red == Reduction::Mean && den != 0.0 {
        1.0 / den.abs()
    } else {
        1.0
    };
    // the denominator is a sum of weights: relative error up to
    // rows u sum|w_t| / |den| (negative weights cancel)
    let den_abs: f64 = (0..rows)
        .filter(|&i| targets[i] != ignore_index)
        .map(|i| w(targets[i] as usize).abs())
        .sum();
    let kden = if red == Reduction::Mean && den != 0.0 {
        (rows as f64 + 4.0) * (u + f64::EPSILON) * den_abs / den.abs()
    } else {
        0.0
    };
    let wild = !(0..c).all(|k| w(k).is_finite() && w(k).abs() <= 1e6)
        || x.iter().any(|v| !v.to_f64().is_finite())
        || (red == Reduction::Mean && den.abs() < 1e-3 && den != 0.0);
    let lanes = (c as f64 / 32.0).ceil() + 8.0;
    let mut total_tol = 0.0;
    let mut total_ok = true;
    for i in 0..rows {
        if targets[i] == ignore_index {
            check!(
                got.grad[i * c..(i + 1) * c]
                    .iter()
                    .all(|v| v.to_f64().to_bits() == 0),
                "cross_entropy: ignored row {i} has a nonzero grad"
            );
            continue;
        }
        let xr = up(&x[i * c..(i + 1) * c]);
        let m = xr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lsum = xr.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let ti = targets[i] as usize;
        let a = (1.0 - ls) * w(ti).abs() + ls / c as f64 * w_all.abs();
        // lse = m + ln(s) carries an absolute error of u |m|
        let mut mag = w(ti).abs() * (1.0 + lsum + (xr[ti] - m).abs()) + a * m.abs();
        // the smoothing sum, an intermediate in T (before its eps / c)
        let inter: f64 = (0..c).map(|k| (w(k) * (xr[k] - m)).abs()).sum();
        if ls > 0.0 {
            mag += ls / c as f64 * (w_all.abs() * (1.0 + lsum) + inter);
            if inter > lim || (0..c).any(|k| (xr[k] - m).abs() > lim) {
                total_ok = false;
                continue;
            }
        }
        let ur = c as f64 * f64::EPSILON;
        let row_tol = ((lanes + 16.0) * u + ur) * mag + 16.0 * T::TINY * (1.0 + wabs) * c as f64;
        if wild || !mag.is_finite() || mag > lim {
            total_ok = false;
            continue;
        }
        total_tol += row_tol;
        for k in 0..c {
            let p = (xr[k] - lsum - m).exp();
            let gm = scale
                * (a * p
                    + ls / c as f64 * w(k).abs()
                    + if k == ti {
                        (1.0 - ls) * w(ti).abs()
                    } else {
                        0.0
                    });
            let dist = if (xr[k] - m).is_finite() {
                (xr[k] - m).abs().min(1e30)
            } else {
                0.0
            };
            let tol = ((lanes + 16.0 + dist) * u + ur + kden) * gm
                + 16.0 * T::TINY * (1.0 + wabs) * scale;
            close::<T>(
                got.grad[i * c + k].to_f64(),
                want.grad[i * c + k],
                tol,
                &|| format!("cross_entropy grad[{i}][{k}]"),
            );
        }
        if red == Reduction::None {
            close::<T>(got.value[i].to_f64(), want.value[i], row_tol, &|| {
                format!("cross_entropy value[{i}]")
            });
        }
    }
    if red != Reduction::None && total_ok {
        let sum_abs: f64 = want.value.iter().map(|v| v.abs()).sum::<f64>() / scale;
        let tol = (total_tol + (150.0 * u + rows as f64 * f64::EPSILON + kden) * sum_abs)
            * scale
            * (1.0 + 4.0 * u);
        if sum_abs <= lim {
            close::<T>(got.value[0].to_f64(), want.value[0], tol, &|| {
                format!("cross_entropy {red:?}")
            });
        }
    }
}

fn ecs_cases<T: Ty + Float + Fp>(ctx: &mut Ctx) {
    let rng = &mut ctx.rng;
    let rows = if rng.chance(0.1) { 0 } else { rng.range(1, 40) };
    let cols = rng.pick(&[0usize, 1, 2, 3, 8, 31, 32, 33, 64, 70]);
    let len = if rng.chance(0.05) {
        rows * cols + 1
    } else {
        rows * cols
    };
    let prof = gen_profile(rng);
    let specials = rng.chance(0.08);
    let mut xd = gen_data::<T>(rng, len, None, prof, specials);
    if cols > 0 && rng.chance(0.3) {
        // an all-zero row (normalized by eps, not by its norm)
        let r = rng.range(0, rows.saturating_sub(1));
        for v in xd.x_mut().iter_mut().skip(r * cols).take(cols) {
            *v = T::ZERO;
        }
    }
    let thr = rng.pick(&[
        0.85,
        0.85,
        0.0,
        -0.5,
        1.0,
        0.3,
        f64::NAN,
        f64::INFINITY,
        1e300,
    ]);
    note(format!(
        "ecs {} {rows}x{cols} len {len} {prof:?} specials {specials} threshold {thr}",
        T::NAME
    ));
    let x = xd.x();
    let got = ctx.across("ecs", || loss::ecs(x, rows, cols, thr));
    let want_t = reference::loss::ecs(x, rows, cols, thr);
    same_err(&got, &want_t, "ecs");
    let Ok(got) = got else { return };
    let want = reference::loss::ecs(&up(x), rows, cols, thr).unwrap();
    if rows == 0 {
        check!(got.grad.is_empty(), "ecs: no rows, a gradient");
        return;
    }
    let e = up(x);
    let u = T::U;
    let norms: Vec<f64> = (0..rows)
        .map(|i| {
            e[i * cols..(i + 1) * cols]
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let maxabs = e.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let tiny_row = norms
        .iter()
        .any(|&nm| nm > 0.0 && (nm * nm < T::ACC_MIN * 1e6 || (nm / 1e-12 - 1.0).abs() < 1e-3));
    if e.iter().any(|v| !v.is_finite()) {
        close::<T>(got.value[0].to_f64(), want.value[0], f64::INFINITY, &|| {
            "ecs value".into()
        });
        return;
    }
    if maxabs * maxabs * cols as f64 > T::ACC_MAX / 16.0 || tiny_row || thr.abs() > 1e6 {
        return;
    }
    let n2 = (rows * rows) as f64;
    let a = 1.0 + thr.abs();
    let ur = f64::EPSILON / 2.0;
    let dc = (gamma(depth(cols) + 12.0, u) + gamma(cols as f64 + 4.0, ur)) * 2.0;
    let tol_v =
        2.0 * a * dc + (gamma(depth(rows * rows) + 6.0, u) + gamma(n2 + 4.0, ur)) * (1.0 + a * a);
    close::<T>(got.value[0].to_f64(), want.value[0], tol_v, &|| {
        "ecs value".into()
    });
    // cosines, for the ReLU's switch at 0
    let un: Vec<f64> = (0..rows * cols)
        .map(|k| e[k] / norms[k / cols].max(1e-12))
        .collect();
    let cosv = |i: usize, j: usize| -> f64 {
        (0..cols).map(|k| un[i * cols + k] * un[j * cols + k]).sum()
    };
    let g_all = 4.0 * a * rows as f64 / n2;
    for i in 0..rows {
        let flips = (0..rows)
            .filter(|&j| j != i && cosv(i, j).abs() <= 4.0 * dc)
            .count() as f64;
        let tol_g =
            ((depth(rows) + depth(cols) + 32.0) * u + (rows + cols) as f64 * ur) * g_all * 4.0
                + flips * 4.0 * (thr.abs() + 4.0 * dc) / n2
                + rows as f64 * 4.0 * dc / n2;
        let tol = 2.0 * tol_g / norms[i].max(1e-12);
        for k in 0..cols {
            let idx = i * cols + k;
            close::<T>(got.grad[idx].to_f64(), want.grad[idx], tol, &|| {
                format!("ecs grad[{i}][{k}]")
            });
        }
    }
}

fn pearsons<T: Ty + Float + Fp>(ctx: &mut Ctx) {
    let rng = &mut ctx.rng;
    let rows = rng.range(0, 60);
    let cols = rng.pick(&[0usize, 1, 2, 3, 5, 31, 32, 33, 64, 100, 130]);
    let n = rows * cols;
    let xlen = if rng.chance(0.04) { n + 1 } else { n };
    let tlen = if rng.chance(0.04) { n + 2 } else { n };
    let mlen = gen_mask_len(rng, n);
    let m = gen_mask(rng, mlen);
    let prof = gen_profile(rng);
    let specials = rng.chance(0.1);
    let xd = gen_data::<T>(rng, xlen, Some(&m), prof, specials);
    let mut yd = gen_data::<T>(rng, tlen, Some(&m), prof, specials);
    if rng.chance(0.3) {
        // correlated target: y = a x + b (+ noise)
        let (a, b) = (rng.unif() * 4.0 - 2.0, rng.unif());
        for i in 0..n.min(tlen).min(xlen) {
            let noise = if rng.chance(0.5) {
                rng.unif() * 0.01
            } else {
                0.0
            };
            yd.x_mut()[i] = T::from_f64(a * xd.x()[i].to_f64() + b + noise);
        }
    }
    note(format!(
        "pearson {} {rows}x{cols} lens {xlen}/{tlen}/{mlen} {prof:?} specials {specials}",
        T::NAME
    ));
    let (x, y) = (xd.x(), yd.x());
    let got = ctx.across("pearson", || loss::pearson(x, y, &m, rows, cols));
    let want = reference::loss::pearson(x, y, &m, rows, cols);
    same_err(&got, &want, "pearson");
    let (Ok(got), Ok(want)) = (got, want) else {
        return;
    };
    let u = T::U;
    for r in 0..rows {
        let idx: Vec<usize> = (r * cols..(r + 1) * cols).filter(|&i| m.get(i)).collect();
        let xs: Vec<f64> = idx.iter().map(|&i| x[i].to_f64()).collect();
        let ys: Vec<f64> = idx.iter().map(|&i| y[i].to_f64()).collect();
        if xs.iter().chain(&ys).any(|v| !v.is_finite()) {
            check!(
                got.mask.get(r) == want.mask.get(r),
                "pearson row {r}: bit differs (non-finite data)"
            );
            close::<T>(
                got.values[r].to_f64(),
                want.values[r].to_f64(),
                f64::INFINITY,
                &|| format!("pearson row {r}"),
            );
            continue;
        }
        // conditioning: shifted sums of squares over centered ones
        let stats = |v: &[f64]| -> (f64, f64, f64) {
            if v.is_empty() {
                return (0.0, 0.0, 0.0);
            }
            let p = v[0];
            let nn = v.len() as f64;
            let mean = v.iter().map(|a| a - p).sum::<f64>() / nn;
            let a: f64 = v.iter().map(|a| (a - p) * (a - p)).sum();
            let s: f64 = v.iter().map(|a| ((a - p) - mean).powi(2)).sum();
            let small = v
                .iter()
                .map(|a| ((a - p) - mean).abs())
                .filter(|d| *d > 0.0)
                .fold(f64::INFINITY, f64::min);
            (a, s, small)
        };
        let (ax, sx, smx) = stats(&xs);
        let (ay, sy, smy) = stats(&ys);
        let lim = T::ACC_MAX / 16.0;
        let floor = (T::ACC_MIN * 1e4).sqrt();
        if ax > lim
            || ay > lim
            || smx < floor
            || smy < floor
            || sx < T::ACC_MIN * 1e8
            || sy < T::ACC_MIN * 1e8
        {
            // squares of the deviations leave the range: skip
            continue;
        }
        check!(
            got.mask.get(r) == want.mask.get(r),
            "pearson row {r}: bit {} vs reference {}",
            got.mask.get(r),
            want.mask.get(r)
        );
        if !want.mask.get(r) {
            continue;
        }
        let (kx, ky) = (ax / sx, ay / sy);
        let w = want.values[r].to_f64();
        let uu = u + f64::EPSILON;
        let tol = 8.0 * (cols as f64 + 16.0) * uu * ((kx * ky).sqrt() + w.abs() * (kx + ky) + 1.0);
        close::<T>(got.values[r].to_f64(), w, tol, &|| {
            format!("pearson row {r}")
        });
    }
}

// ------------------------------------------------------------------ MaskedArray

/// Distance in units in the last place of `T` (0 for equal values, NaN
/// against NaN; `u64::MAX` for NaN against a number).
fn ulps<T: Element>(a: T, b: T) -> u64 {
    let (a, b) = (a.to_f64(), b.to_f64());
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    if a == b {
        return 0;
    }
    let key = |v: f64| -> i64 {
        // f32 values are compared on the f32 grid
        let bits = if T::NAME == "f32" {
            (v as f32).to_bits() as i64
        } else {
            v.to_bits() as i64
        };
        let neg = v.is_sign_negative();
        let mag = if T::NAME == "f32" {
            bits & 0x7fff_ffff
        } else {
            bits & i64::MAX
        };
        if neg {
            -mag
        } else {
            mag
        }
    };
    key(a).abs_diff(key(b))
}

fn gen_scalar<T: Ty>(rng: &mut Rng) -> T {
    T::from_f64(match rng.below(10) {
        0 => special(rng),
        1 => gen_val::<T>(rng, Profile::Wide),
        2 => 0.0,
        3 => -0.0,
        _ => gen_val::<T>(rng, Profile::Normal),
    })
}

fn gen_unary<T: Ty + Float>(rng: &mut Rng) -> UnaryOp<T> {
    match rng.below(9) {
        0 => UnaryOp::Neg,
        1 => UnaryOp::Abs,
        2 => UnaryOp::Sqrt,
        3 => UnaryOp::Exp,
        4 => UnaryOp::Log,
        5 => UnaryOp::Pow(T::from_f64(rng.pick(&[
            0.5,
            1.0,
            2.0,
            3.0,
            -0.5,
            -1.0,
            -2.0,
            0.0,
            1.5,
            -3.7,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e10,
        ]))),
        6 => UnaryOp::AddScalar(gen_scalar(rng)),
        7 => UnaryOp::MulScalar(gen_scalar(rng)),
        _ => {
            let lo = gen_scalar::<T>(rng);
            let hi = gen_scalar::<T>(rng);
            UnaryOp::Clamp(lo, hi)
        }
    }
}

/// The same op through the named method (`neg`, `sqrt`, `pow`, `clamp`, ...).
fn named<T: Float>(a: &MaskedArray<T>, op: UnaryOp<T>) -> Result<MaskedArray<T>, Error> {
    Ok(match op {
        UnaryOp::Neg => a.neg(),
        UnaryOp::Abs => a.abs(),
        UnaryOp::Sqrt => a.sqrt(),
        UnaryOp::Exp => a.exp(),
        UnaryOp::Log => a.log(),
        UnaryOp::Pow(p) => a.pow(p),
        UnaryOp::AddScalar(s) => a.add_scalar(s),
        UnaryOp::MulScalar(s) => a.mul_scalar(s),
        UnaryOp::Clamp(lo, hi) => return a.clamp(lo, hi),
    })
}

fn gen_array<T: Ty + Float>(rng: &mut Rng, max: usize) -> (MaskedArray<T>, usize, usize) {
    let (rows, cols, ndim) = gen_shape(rng, max);
    let n = rows * cols;
    let m = gen_mask(rng, n);
    let prof = gen_profile(rng);
    let specials = rng.chance(0.15);
    let d = gen_data::<T>(rng, n, Some(&m), prof, specials);
    let a = if ndim == 1 {
        MaskedArray::new(d.x().to_vec(), m)
    } else {
        MaskedArray::matrix(d.x().to_vec(), m, rows, cols)
    }
    .unwrap_or_else(|e| fail!("MaskedArray: {e}"));
    (a, rows, ndim)
}

fn unary_ops<T: Ty + Float + Fp>(ctx: &mut Ctx) {
    let rng = &mut ctx.rng;
    let (a, _, ndim) = gen_array::<T>(rng, ctx.max_len);
    let op = gen_unary::<T>(rng);
    let n = a.len();
    let mut obuf = out_buf::<T>(rng, n);
    let o0 = obuf.buf.clone();
    note(format!(
        "unary {op:?} {} shape {:?} ndim {ndim}",
        T::NAME,
        a.shape()
    ));
    // a mask of the wrong length is refused
    if rng.chance(0.05) {
        let r = MaskedArray::new(a.values().to_vec(), Mask::ones(n + 1));
        check!(
            matches!(r, Err(Error::Length { .. })),
            "MaskedArray::new with a bad mask: {r:?}"
        );
    }
    let got = ctx.across("map", || {
        let r = a.map(op);
        let mut b = a.clone();
        let ra = b.map_assign(op).map(|_| b);
        let nm = named(&a, op);
        (r, ra, nm)
    });
    let (r, ra, nm) = got;
    let bad_clamp = matches!(op, UnaryOp::Clamp(lo, hi) if lo.is_nan() || hi.is_nan());
    match &r {
        Err(Error::Param { .. }) if bad_clamp => {
            check!(
                ra.is_err() && nm.is_err(),
                "unary: map_assign / named accept a NaN clamp bound"
            );
            return;
        }
        Err(e) => fail!("unary {op:?}: {e:?}"),
        Ok(_) if bad_clamp => fail!("unary {op:?}: a NaN clamp bound is accepted"),
        Ok(_) => {}
    }
    let (r, ra, nm) = (r.unwrap(), ra.unwrap(), nm.unwrap());
    check!(
        nm.bits() == r.bits(),
        "unary {op:?}: the named method differs from map"
    );
    check!(
        r.mask() == a.mask() && ra.mask() == a.mask(),
        "unary: the mask changed"
    );
    let into = call("map_into", || a.map_into(op, obuf.x_mut()));
    if obuf.n != n {
        check!(
            matches!(into, Err(Error::Length { .. })),
            "map_into with a bad out: {into:?}"
        );
    } else {
        check!(into.is_ok(), "map_into: {into:?}");
    }
    let want = reference::elementwise::unary(op, a.values(), a.mask()).unwrap();
    let tol = reference::elementwise::tolerance_ulps(op);
    let o = obuf.off;
    for i in 0..n {
        if !a.mask().get(i) {
            check!(
                ra.values()[i].to_f64().to_bits() == a.values()[i].to_f64().to_bits(),
                "map_assign wrote masked-out entry {i}"
            );
            check!(
                obuf.buf[o + i].to_f64().to_bits() == o0[o + i].to_f64().to_bits(),
                "map_into wrote masked-out entry {i}"
            );
            continue;
        }
        let (g, w) = (r.values()[i], want.values[i]);
        let d = ulps(g, w);
        // exp_f32 flushes below 2^-126; 1/(x*x) and (x*x)*x round twice and
        // can underflow or overflow in the intermediate
        let bottom = tol > 0 && g.to_f64().abs() <= T::TINY && w.to_f64().abs() <= T::TINY;
        // 1/(x*x) with x*x subnormal in T: x*x carries an absolute error of
        // half a subnormal spacing
        let xv = a.values()[i].to_f64();
        let sub = match op {
            UnaryOp::Pow(p) if p.to_f64() == -2.0 && xv * xv < T::TINY && xv != 0.0 => {
                (T::ACC_DENORM / (xv * xv) / (2.0 * T::U)).min(1e18) as u64 + 1
            }
            _ => 0,
        };
        check!(
            d <= tol + sub || bottom,
            "unary {op:?} [{i}] of {:e}: {:e} vs reference {:e} ({d} ulps > {tol})",
            a.values()[i].to_f64(),
            g.to_f64(),
            w.to_f64()
        );
        check!(
            ra.values()[i].bits() == g.bits(),
            "map_assign [{i}] differs from map"
        );
        if obuf.n == n {
            check!(
                obuf.buf[o + i].bits() == g.bits(),
                "map_into [{i}] differs from map"
            );
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum RhsKind {
    SameMask,
    OtherMask,
    OtherShape,
    Dense,
    Row,
    Col,
    Scalar,
}

fn binary_ops<T: Ty + Float + Fp>(ctx: &mut Ctx) {
    let rng = &mut ctx.rng;
    let (a, _, ndim) = gen_array::<T>(rng, ctx.max_len);
    let (rows, cols, n) = (a.rows(), a.cols(), a.len());
    let op = rng.pick(&[
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ]);
    let policy = rng.pick(&[MaskPolicy::Match, MaskPolicy::Intersect]);
    let kind = rng.pick(&[
        RhsKind::SameMask,
        RhsKind::SameMask,
        RhsKind::OtherMask,
        RhsKind::OtherMask,
        RhsKind::OtherShape,
        RhsKind::Dense,
        RhsKind::Row,
        RhsKind::Col,
        RhsKind::Scalar,
    ]);
    let bad_len = rng.chance(0.05);
    let prof = gen_profile(rng);
    let specials = rng.chance(0.15);
    let bad_len = bad_len && kind != RhsKind::OtherShape;
    let blen = match kind {
        RhsKind::Row => cols,
        RhsKind::Col => rows,
        RhsKind::Scalar => 1,
        _ => n,
    } + bad_len as usize;
    let bmask = match kind {
        RhsKind::SameMask if !bad_len => a.mask().clone(),
        _ => gen_mask(rng, blen),
    };
    let bd = gen_data::<T>(rng, blen, Some(&bmask), prof, specials);
    let b_arr: Option<MaskedArray<T>> = match kind {
        RhsKind::SameMask | RhsKind::OtherMask if !bad_len => Some(if ndim == 1 {
            MaskedArray::new(bd.x().to_vec(), bmask.clone()).unwrap()
        } else {
            MaskedArray::matrix(bd.x().to_vec(), bmask.clone(), rows, cols).unwrap()
        }),
        RhsKind::SameMask | RhsKind::OtherMask => {
            Some(MaskedArray::new(bd.x().to_vec(), bmask.clone()).unwrap())
        }
        RhsKind::OtherShape => {
            // the same number of elements, another shape
            let r = MaskedArray::new(bd.x().to_vec(), bmask.clone()).unwrap();
            if ndim == 1 && n > 0 {
                Some(MaskedArray::matrix(bd.x().to_vec(), bmask.clone(), 1, n).unwrap())
            } else {
                Some(r)
            }
        }
        _ => None,
    };
    let scalar = bd.x().first().copied().unwrap_or(T::ZERO);
    let rhs: Operand<T> = match kind {
        RhsKind::SameMask | RhsKind::OtherMask | RhsKind::OtherShape => {
            Operand::Array(b_arr.as_ref().unwrap())
        }
        RhsKind::Dense => Operand::Dense(bd.x()),
        RhsKind::Row => Operand::Row(bd.x()),
        RhsKind::Col => Operand::Col(bd.x()),
        RhsKind::Scalar => Operand::Scalar(scalar),
    };
    let mut obuf = out_buf::<T>(rng, n);
    let o0 = obuf.buf.clone();
    let mut dense = gen_data::<T>(rng, n, None, prof, specials);
    let dense0 = dense.x().to_vec();
    note(format!(
        "binary {op:?} {policy:?} {kind:?} bad_len {bad_len} {} shape {:?}",
        T::NAME,
        a.shape()
    ));
    let (r, ra) = ctx.across("binary", || {
        let r = a.binary(op, rhs, policy);
        let mut b = a.clone();
        let ra = b.binary_assign(op, rhs, policy).map(|_| b);
        (r, ra)
    });
    let into = call("binary_into", || {
        a.binary_into(op, rhs, policy, obuf.x_mut())
    });
    let upd = ctx.across("update_dense", || {
        let mut d = dense0.clone();
        a.update_dense(op, &mut d).map(|_| d)
    });
    let _ = &mut dense;
    let rref = match rhs {
        Operand::Array(b) => RefRhs::Masked(b.values(), b.mask(), policy),
        Operand::Dense(b) => RefRhs::Dense(b),
        Operand::Row(b) => RefRhs::Row(b),
        Operand::Col(b) => RefRhs::Col(b),
        Operand::Scalar(s) => RefRhs::Scalar(s),
    };
    let want = reference::elementwise::binary(op, a.values(), a.mask(), rref, rows, cols);
    let shape_differs = b_arr.as_ref().is_some_and(|b| b.shape() != a.shape());
    if shape_differs {
        // documented exception: the reference sees lengths only
        check!(
            r.is_err() && ra.is_err(),
            "binary with another shape: {:?}",
            r.as_ref().err()
        );
        check!(into.is_err(), "binary_into with another shape is Ok");
        return;
    }
    same_err(&r, &want, "binary");
    same_err(&ra, &want, "binary_assign");
    if obuf.n == n {
        same_err(&into, &want, "binary_into");
    } else {
        check!(into.is_err(), "binary_into with a bad out is Ok");
    }
    if let Ok(u) = &upd {
        let wu =
            reference::elementwise::binary(op, &dense0, a.mask(), RefRhs::Dense(a.values()), 1, n)
                .unwrap();
        for i in 0..n {
            let expect = if a.mask().get(i) {
                wu.values[i]
            } else {
                dense0[i]
            };
            check!(
                ulps(u[i], expect) == 0,
                "update_dense [{i}]: {:e} vs {:e}",
                u[i].to_f64(),
                expect.to_f64()
            );
        }
    } else {
        fail!("update_dense: {upd:?}");
    }
    let (Ok(r), Ok(ra), Ok(want)) = (r, ra, want) else {
        return;
    };
    check!(
        r.mask() == &want.mask && ra.mask() == &want.mask,
        "binary: mask differs from the reference"
    );
    let o = obuf.off;
    for i in 0..n {
        if !want.mask.get(i) {
            check!(
                ra.values()[i].to_f64().to_bits() == a.values()[i].to_f64().to_bits(),
                "binary_assign wrote entry {i}, not kept by the result"
            );
            if obuf.n == n {
                check!(
                    obuf.buf[o + i].to_f64().to_bits() == o0[o + i].to_f64().to_bits(),
                    "binary_into wrote entry {i}, not kept by the result"
                );
            }
            continue;
        }
        let (g, w) = (r.values()[i], want.values[i]);
        check!(
            ulps(g, w) == 0,
            "binary {op:?} [{i}]: {:e} vs reference {:e}",
            g.to_f64(),
            w.to_f64()
        );
        check!(
            ra.values()[i].bits() == g.bits(),
            "binary_assign [{i}] differs"
        );
        if obuf.n == n {
            check!(
                obuf.buf[o + i].bits() == g.bits(),
                "binary_into [{i}] differs"
            );
        }
    }
}

// ------------------------------------------------------------------ Adagrad

#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Dense,
    Masked,
    Sparse,
    Coo,
    SparseVec,
    Rows,
    RowwiseDense,
    RowwiseRows,
}

struct AdaCase<P> {
    rows: usize,
    cols: usize,
    /// Dense / masked gradient values, COO / CsVec values, or the
    /// `row_indices.len() x cols` rows.
    vals: Vec<P>,
    mask: Mask,
    ri: Vec<usize>,
    ci: Vec<usize>,
    /// TriMat / CsVec shapes (may differ from the parameter's).
    gshape: (usize, usize),
}

fn run_form<P: AdagradElement>(
    form: Form,
    opt: &Adagrad,
    ropt: &RowwiseAdagrad,
    c: &AdaCase<P>,
    p: &mut [P],
    s: &mut AdagradState<P::State>,
    ws: Option<&mut Workspace>,
) -> Result<(), Error> {
    let (rows, cols) = (c.rows, c.cols);
    match ws {
        None => match form {
            Form::Dense => opt.step_dense(p, &c.vals, s),
            Form::Masked => {
                let g = MaskedView::new(&c.vals, &c.mask)?;
                opt.step_masked(p, &g, s)
            }
            Form::Sparse => {
                let t = sprs::TriMat::from_triplets(
                    c.gshape,
                    c.ri.clone(),
                    c.ci.clone(),
                    c.vals.clone(),
                );
                opt.step_sparse(p, rows, cols, &t, s)
            }
            Form::Coo => opt.step_coo(p, rows, cols, &c.ri, &c.ci, &c.vals, s),
            Form::SparseVec => {
                let v = sprs::CsVec::try_new(c.gshape.0, c.ri.clone(), c.vals.clone())
                    .unwrap_or_else(|e| fail!("CsVec: {e:?}"));
                opt.step_sparse_vec(p, &v, s)
            }
            Form::Rows => opt.step_rows(p, rows, cols, &c.ri, &c.vals, s),
            Form::RowwiseDense => ropt.step_dense(p, rows, cols, &c.vals, s),
            Form::RowwiseRows => ropt.step_rows(p, rows, cols, &c.ri, &c.vals, s),
        },
        Some(ws) => {
            let isa = backend::isa();
            match form {
                Form::Dense => opt.step_dense_with(isa, ws, p, &c.vals, s),
                Form::Masked => {
                    let g = MaskedView::new(&c.vals, &c.mask)?;
                    opt.step_masked_with(isa, ws, p, &g, s)
                }
                Form::Sparse => {
                    let t = sprs::TriMat::from_triplets(
                        c.gshape,
                        c.ri.clone(),
                        c.ci.clone(),
                        c.vals.clone(),
                    );
                    opt.step_sparse_with(isa, ws, p, rows, cols, &t, s)
                }
                Form::Coo => opt.step_coo_with(isa, ws, p, rows, cols, &c.ri, &c.ci, &c.vals, s),
                Form::SparseVec => {
                    let v = sprs::CsVec::try_new(c.gshape.0, c.ri.clone(), c.vals.clone())
                        .unwrap_or_else(|e| fail!("CsVec: {e:?}"));
                    opt.step_sparse_vec_with(isa, ws, p, &v, s)
                }
                Form::Rows => opt.step_rows_with(isa, ws, p, rows, cols, &c.ri, &c.vals, s),
                Form::RowwiseDense => ropt.step_dense(p, rows, cols, &c.vals, s),
                Form::RowwiseRows => ropt.step_rows_with(isa, ws, p, rows, cols, &c.ri, &c.vals, s),
            }
        }
    }
}

fn run_ref<P: AdagradElement>(
    form: Form,
    opt: &Adagrad,
    ropt: &RowwiseAdagrad,
    c: &AdaCase<P>,
    p: &mut [P],
    s: &mut AdagradState<P::State>,
) -> Result<(), Error> {
    use reference::adagrad as r;
    let (rows, cols) = (c.rows, c.cols);
    match form {
        Form::Dense => r::step_dense(opt, p, &c.vals, s),
        Form::Masked => {
            let g = MaskedView::new(&c.vals, &c.mask)?;
            r::step_masked(opt, p, &g, s)
        }
        Form::Sparse => {
            let t =
                sprs::TriMat::from_triplets(c.gshape, c.ri.clone(), c.ci.clone(), c.vals.clone());
            r::step_sparse(opt, p, rows, cols, &t, s)
        }
        Form::Coo => r::step_coo(opt, p, rows, cols, &c.ri, &c.ci, &c.vals, s),
        Form::SparseVec => {
            let v = sprs::CsVec::try_new(c.gshape.0, c.ri.clone(), c.vals.clone()).unwrap();
            r::step_sparse_vec(opt, p, &v, s)
        }
        Form::Rows => r::step_rows(opt, p, rows, cols, &c.ri, &c.vals, s),
        Form::RowwiseDense => r::rowwise_step_dense(ropt, p, rows, cols, &c.vals, s),
        Form::RowwiseRows => r::rowwise_step_rows(ropt, p, rows, cols, &c.ri, &c.vals, s),
    }
}

fn gen_opt(rng: &mut Rng) -> Adagrad {
    let wild = rng.chance(0.3);
    let h = |ordinary: f64, rng: &mut Rng| {
        if wild && rng.chance(0.3) {
            gen_hyper(rng)
        } else {
            ordinary
        }
    };
    let lr = 0.01 + 0.5 * rng.unif();
    let lr = h(lr, rng);
    let lr_decay = rng.pick(&[0.0, 0.1]);
    let lr_decay = h(lr_decay, rng);
    let wd = rng.pick(&[0.0, 0.05]);
    let weight_decay = h(wd, rng);
    let iu = 0.1 + rng.unif();
    let init = rng.pick(&[0.0, iu]);
    let initial_accumulator_value = h(init, rng);
    let eps = rng.pick(&[1e-10, 1e-6]);
    let eps = h(eps, rng);
    Adagrad {
        lr,
        lr_decay,
        weight_decay,
        initial_accumulator_value,
        eps,
        maximize: rng.chance(0.3),
    }
}

fn adagrads<P>(ctx: &mut Ctx)
where
    P: AdagradElement + Ty + Fp,
    P::State: Ty + Fp + Float,
{
    let rng = &mut ctx.rng;
    let form = rng.pick(&[
        Form::Dense,
        Form::Masked,
        Form::Sparse,
        Form::Coo,
        Form::SparseVec,
        Form::Rows,
        Form::RowwiseDense,
        Form::RowwiseRows,
    ]);
    let rows = rng.range(0, 120);
    let cols = rng.pick(&[0usize, 1, 3, 7, 8, 16, 17, 33, 64, 100]);
    let n = rows * cols;
    let plen = if rng.chance(0.04) { n + 1 } else { n };
    let opt = gen_opt(rng);
    let ropt = RowwiseAdagrad {
        lr: opt.lr,
        lr_decay: opt.lr_decay,
        weight_decay: opt.weight_decay,
        initial_accumulator_value: opt.initial_accumulator_value,
        eps: opt.eps,
        maximize: opt.maximize,
    };
    let pprof = if rng.chance(0.8) {
        Profile::Normal
    } else {
        gen_profile(rng)
    };
    let gprof = if rng.chance(0.8) {
        Profile::Normal
    } else {
        gen_profile(rng)
    };
    let specials = rng.chance(0.1);
    let rowwise = matches!(form, Form::RowwiseDense | Form::RowwiseRows);
    let slen = if rowwise { rows } else { plen };
    let slen = if rng.chance(0.04) { slen + 1 } else { slen };
    let step0 = rng.pick(&[0u64, 0, 1, 7, u64::MAX, u64::MAX - 1]);
    let pd = gen_data::<P>(rng, plen, None, pprof, false);
    let param0 = pd.x().to_vec();
    let mut state0: AdagradState<P::State> = opt.state(slen);
    state0.step = step0;
    if rng.chance(0.3) {
        for v in state0.sum.iter_mut() {
            *v = <P::State as Element>::from_f64(rng.unif() * 2.0);
        }
    }
    let bad_index = rng.chance(0.06);
    // the entries of the sparse forms: duplicates, sometimes out of range
    let nnz = if n == 0 {
        rng.range(0, 2)
    } else {
        rng.range(0, (2 * n).min(400))
    };
    let mut ri: Vec<usize> = (0..nnz)
        .map(|_| rng.range(0, rows.saturating_sub(1)))
        .collect();
    let mut ci: Vec<usize> = (0..nnz)
        .map(|_| rng.range(0, cols.saturating_sub(1)))
        .collect();
    if bad_index && nnz > 0 {
        let k = rng.range(0, nnz - 1);
        if rng.chance(0.5) {
            ri[k] = rng.pick(&[rows, rows + 5, usize::MAX]);
        } else {
            ci[k] = rng.pick(&[cols, cols + 1, usize::MAX]);
        }
    }
    let mut gshape = (rows, cols);
    let (vals_len, mask) = match form {
        Form::Dense | Form::RowwiseDense => {
            (if rng.chance(0.04) { n + 1 } else { n }, Mask::ones(0))
        }
        Form::Masked => {
            let l = if rng.chance(0.04) { n + 1 } else { n };
            (l, gen_mask(rng, l))
        }
        Form::Sparse => {
            // sprs refuses out-of-range triplets itself: keep them in range of
            // its shape, which may differ from the parameter's
            if rng.chance(0.05) {
                gshape = (rows + 1, cols);
            }
            for k in 0..nnz {
                ri[k] = ri[k].min(gshape.0.saturating_sub(1));
                ci[k] = ci[k].min(gshape.1.saturating_sub(1));
            }
            if gshape.0 == 0 || gshape.1 == 0 {
                ri.clear();
                ci.clear();
            }
            (ri.len(), Mask::ones(0))
        }
        Form::Coo => {
            if rng.chance(0.04) {
                ci.push(0);
            }
            (if rng.chance(0.04) { nnz + 1 } else { nnz }, Mask::ones(0))
        }
        Form::SparseVec => {
            // sorted, unique, in range of the vector's dimension
            let dim = if rng.chance(0.05) { plen + 1 } else { plen };
            gshape = (dim, 1);
            let mut idx: Vec<usize> = (0..dim).filter(|_| rng.chance(0.3)).collect();
            idx.truncate(400);
            ri = idx;
            (ri.len(), Mask::ones(0))
        }
        Form::Rows | Form::RowwiseRows => {
            let k = rng.range(0, 3 * rows.max(1)).min(200);
            ri = (0..k)
                .map(|_| rng.range(0, rows.saturating_sub(1)))
                .collect();
            if bad_index && k > 0 {
                ri[rng.range(0, k - 1)] = rng.pick(&[rows, usize::MAX]);
            }
            let l = k * cols;
            (if rng.chance(0.04) { l + 1 } else { l }, Mask::ones(0))
        }
    };
    let gd = gen_data::<P>(
        rng,
        vals_len,
        (form == Form::Masked).then_some(&mask),
        gprof,
        specials,
    );
    let c = AdaCase {
        rows,
        cols,
        vals: gd.x().to_vec(),
        mask,
        ri,
        ci,
        gshape,
    };
    note(format!(
        "adagrad {form:?} {} {rows}x{cols} plen {plen} slen {slen} step {step0} {opt:?} p {pprof:?} g {gprof:?} specials {specials} bad index {bad_index} nnz {} vals {}",
        P::NAME,
        c.ri.len(),
        c.vals.len()
    ));
    let (res, p, s) = ctx.across(&format!("adagrad {form:?}"), || {
        let mut p = param0.clone();
        let mut s = state0.clone();
        let r = if backend::threshold(Threshold::Elementwise) == 1 {
            let mut ws = Workspace::new();
            ws.set_parallel_min(1);
            run_form(form, &opt, &ropt, &c, &mut p, &mut s, Some(&mut ws))
        } else {
            run_form(form, &opt, &ropt, &c, &mut p, &mut s, None)
        };
        (r.map(|_| 0u64), p, s)
    });
    let mut rp = param0.clone();
    let mut rs = state0.clone();
    let want = call("reference adagrad", || {
        run_ref(form, &opt, &ropt, &c, &mut rp, &mut rs)
    });
    same_err(&res, &want, &format!("adagrad {form:?}"));
    if res.is_err() {
        check!(
            p.bits() == param0.bits() && s.bits() == state0.bits(),
            "adagrad {form:?}: a failed step changed the parameters, the accumulator or the step"
        );
        return;
    }
    check!(
        s.step == rs.step,
        "adagrad {form:?}: step {} vs {}",
        s.step,
        rs.step
    );
    // f64: the very operations of the reference, bit for bit (row-wise
    // Adagrad sums its squares in the canonical order: within tolerance)
    if P::NAME == "f64" && !rowwise {
        for i in 0..p.len() {
            check!(
                ulps(p[i], rp[i]) == 0,
                "adagrad {form:?} f64 param[{i}]: {:e} vs reference {:e}",
                p[i].to_f64(),
                rp[i].to_f64()
            );
        }
        for i in 0..s.sum.len() {
            check!(
                ulps(s.sum[i], rs.sum[i]) == 0,
                "adagrad {form:?} f64 sum[{i}]: {:e} vs reference {:e}",
                s.sum[i].to_f64(),
                rs.sum[i].to_f64()
            );
        }
        return;
    }
    // the others: within a tolerance, where everything stays in range
    let all_finite = |v: &[f64]| v.iter().all(|x| x.is_finite() && x.abs() < 1e15);
    let hyper_ok = [
        opt.lr,
        opt.lr_decay,
        opt.weight_decay,
        opt.initial_accumulator_value,
    ]
    .iter()
    .all(|h| *h <= 1e3)
        && opt.eps >= 1e-12;
    if !all_finite(&up(&c.vals))
        || !all_finite(&up(&param0))
        || !all_finite(&up(&state0.sum))
        || !hyper_ok
    {
        return;
    }
    let us = <P::State as Ty>::U;
    let up_ = P::U;
    let clr = opt.lr / (1.0 + (s.step - 1) as f64 * opt.lr_decay);
    // sum of |g| per element (duplicates), for the rounding of the sums
    let gabs: f64 = c.vals.iter().map(|v| v.to_f64().abs()).fold(0.0, f64::max)
        * (1.0 + c.ri.len() as f64).min(64.0)
        + opt.weight_decay * up(&param0).iter().fold(0.0f64, |a, v| a.max(v.abs()));
    // The rounding of the coalesced gradient (duplicates summed in the
    // state's type, weight decay added) moves g by up to dg. The update
    // clr * g / (sqrt(s0 + g^2) + eps) has a slope in g of at most
    // 1 / (sqrt(s0 + g_lo^2) + eps) over that interval, g_lo the smallest
    // |g| in it: where duplicates and weight decay cancel (|g| near 0) the
    // step is ill-conditioned and the tolerance must say so (fuzz seed
    // 1796626792 case 112761: |g| 1e-7 after cancelling 0.13, eps 1e-6).
    let dg = 64.0 * us * gabs;
    let lo_sum = |i: usize| -> f64 {
        let (s0, s1) = (state0.sum[i].to_f64().max(0.0), rs.sum[i].to_f64().max(0.0));
        let added = (s1 - s0 - 4.0 * us * s1).max(0.0);
        if rowwise {
            // the row's mean of g^2: each |g_j| <= sqrt(cols * mean)
            let gmax = (c.cols as f64 * added).sqrt();
            s0.max(s1 - 4.0 * us * s1 - 2.0 * gmax * dg - dg * dg)
        } else {
            let g_lo = (added.sqrt() - dg).max(0.0);
            s0 + g_lo * g_lo
        }
    };
    for i in 0..p.len() {
        let (a, b) = (p[i].to_f64(), rp[i].to_f64());
        let si = if rowwise { i / c.cols.max(1) } else { i };
        let cond = clr * dg / (lo_sum(si).max(0.0).sqrt() + opt.eps);
        let tol = 64.0 * us * (param0[i].to_f64().abs() + b.abs() + clr * 4.0 + gabs * us)
            + 2.0 * up_ * b.abs()
            + 2.0 * up_ * clr
            + 2.0 * cond
            + 1e-30;
        close::<P>(a, b, tol, &|| format!("adagrad {form:?} param[{i}]"));
    }
    for i in 0..s.sum.len() {
        let (a, b) = (s.sum[i].to_f64(), rs.sum[i].to_f64());
        let tol = 64.0 * us * (state0.sum[i].to_f64().abs() + b.abs() + gabs * gabs) + 1e-30;
        close::<P::State>(a, b, tol, &|| format!("adagrad {form:?} sum[{i}]"));
    }
}

// ------------------------------------------------------------------ huge shapes

/// Shapes whose product overflows or is far from the data, and valid empty
/// shapes with a huge dimension, through every family (only where the
/// output stays small: see the module docs).
fn huge_shapes(ctx: &mut Ctx) {
    let rng = &mut ctx.rng;
    let h = rng.pick(&[
        usize::MAX,
        1 << 63,
        (usize::MAX >> 1) + 1,
        1 << 40,
        1 << 32,
        1 << 31,
    ]);
    let k = rng.range(0, 3);
    let small = rng.range(1, 3);
    note(format!("huge shapes h {h} k {k} small {small}"));
    let x: Vec<f32> = (0..k).map(|i| i as f32).collect();
    let m = Mask::ones(k);
    // views
    for (r, c) in [(h, h), (h, small), (small, h), (h, 0), (0, h)] {
        let v = MaskedView::matrix(&x, &m, r, c);
        let ok = r.checked_mul(c) == Some(k);
        check!(
            v.is_ok() == ok,
            "MaskedView::matrix({r}, {c}) on {k}: {v:?}"
        );
        match v {
            Err(e) => check!(matches!(e, Error::Shape { arg: "data", .. }), "{e:?}"),
            Ok(v) => {
                let ops = gen_rops(&mut ctx.rng, 0);
                for op in ops {
                    let got = ctx.across("huge whole", || fast_whole(&v, op));
                    check!(got.is_none(), "{op:?} on an empty view: {got:?}");
                    // only the dim with an empty output (rows = 0 for dim 1)
                    let dim = if r == 0 { 1 } else { 0 };
                    let got = ctx.across("huge dim", || fast_dim(&v, dim, op));
                    let want = ref_dim(&v, dim, op);
                    same_err(&got, &want, &format!("{op:?} {r}x{c} dim {dim}"));
                    if let (Ok(g), Ok(w)) = (&got, &want) {
                        check!(g.bits() == w.bits(), "{op:?} {r}x{c} dim {dim}: differs");
                    }
                }
                for dim in [0, 1, 2] {
                    let got = ctx.across("huge softmax", || softmax::softmax(&v, dim));
                    let want = reference::softmax::softmax(&v, dim);
                    same_err(&got, &want, "huge softmax");
                    let got = ctx.across("huge softmax bwd", || {
                        softmax::log_softmax_backward(&v, &[], dim)
                    });
                    let want = reference::softmax::log_softmax_backward(&v, &[], dim);
                    same_err(&got, &want, "huge softmax backward");
                }
            }
        }
    }
    // losses
    let opts = CrossEntropy::<f32>::default();
    for (r, c) in [(0, h), (h, 0), (h, h), (small, h)] {
        let t = vec![0i64; r.min(3)];
        let got = ctx.across("huge ce", || loss::cross_entropy(&x, r, c, &t, &opts));
        let want = reference::loss::cross_entropy(&x, r, c, &t, &opts);
        same_err(&got, &want, &format!("cross_entropy {r}x{c}"));
        let got = ctx.across("huge ecs", || loss::ecs(&x, r, c, 0.85));
        let want = reference::loss::ecs(&x, r, c, 0.85);
        same_err(&got, &want, &format!("ecs {r}x{c}"));
        if r <= 1 << 20 {
            let got = ctx.across("huge pearson", || loss::pearson(&x, &x, &m, r, c));
            let want = reference::loss::pearson(&x, &x, &m, r, c);
            same_err(&got, &want, &format!("pearson {r}x{c}"));
        }
    }
    // masked arrays
    for (r, c) in [(0, h), (h, 0), (h, h)] {
        let a = MaskedArray::matrix(x.clone(), m.clone(), r, c);
        check!(
            a.is_ok() == (r.checked_mul(c) == Some(k)),
            "MaskedArray::matrix({r}, {c}): {a:?}"
        );
        if let Ok(a) = a {
            let one = [1.0f32];
            for rhs in [
                Operand::Col(&x[..0]),
                Operand::Row(&one),
                Operand::Scalar(2.0),
                Operand::Dense(&x),
            ] {
                let got = ctx.across("huge binary", || {
                    a.binary(BinaryOp::Mul, rhs, MaskPolicy::Match)
                });
                let rref = match rhs {
                    Operand::Dense(b) => RefRhs::Dense(b),
                    Operand::Row(b) => RefRhs::Row(b),
                    Operand::Col(b) => RefRhs::Col(b),
                    Operand::Scalar(s) => RefRhs::Scalar(s),
                    Operand::Array(_) => unreachable!(),
                };
                let want =
                    reference::elementwise::binary(BinaryOp::Mul, a.values(), a.mask(), rref, r, c);
                same_err(&got, &want, &format!("binary {r}x{c} {rhs:?}"));
            }
            let got = ctx.across("huge map", || a.map(UnaryOp::Exp));
            check!(got.is_ok(), "map on {r}x{c}: {got:?}");
        }
    }
    check!(
        MaskedArray::from_parts(x.clone(), m.clone(), &[h]).is_err() || h == k,
        "from_parts with a huge length"
    );
    // optimizers: a huge table with no columns is valid and empty
    let opt = Adagrad::default();
    for (r, c) in [(h, 0), (0, h), (h, h)] {
        let idx = [0usize, r.saturating_sub(1), r / 2, 0];
        for form in [Form::Rows, Form::Coo, Form::RowwiseRows, Form::RowwiseDense] {
            let cc = AdaCase::<f32> {
                rows: r,
                cols: c,
                vals: vec![1.0; if form == Form::Coo { 4 } else { 0 }],
                mask: Mask::ones(0),
                ri: idx.to_vec(),
                ci: vec![0, c.saturating_sub(1), 0, 0],
                gshape: (r, c),
            };
            let ropt = RowwiseAdagrad::default();
            let state0 = AdagradState::<f32> {
                sum: vec![],
                step: 3,
            };
            let (res, p, s) = ctx.across("huge adagrad", || {
                let mut p: Vec<f32> = vec![];
                let mut s = state0.clone();
                let r = run_form(form, &opt, &ropt, &cc, &mut p, &mut s, None);
                (r.map(|_| 0u64), p, s)
            });
            let mut rp: Vec<f32> = vec![];
            let mut rs = state0.clone();
            let want = call("reference huge adagrad", || {
                run_ref(form, &opt, &ropt, &cc, &mut rp, &mut rs)
            });
            same_err(&res, &want, &format!("adagrad {form:?} {r}x{c}"));
            if res.is_err() {
                check!(
                    s.step == 3 && p.is_empty(),
                    "a failed step changed the state"
                );
            }
        }
    }
    // masks
    check!(
        Mask::padding(&[1, 2], usize::MAX).is_err(),
        "Mask::padding with an overflowing total"
    );
    check!(
        m.slice(h, 1).is_err() && m.slice(1, h).is_err(),
        "Mask::slice out of range"
    );
    if h.checked_mul(h).is_none() {
        check!(
            maskops::MaskBuilder::new(h, h).try_build().is_err(),
            "MaskBuilder overflow"
        );
    }
}

/// Mask constructors and operations against their plain definitions.
fn masks(ctx: &mut Ctx) {
    let rng = &mut ctx.rng;
    let n = gen_len(rng, 3000);
    let a = gen_mask(rng, n);
    let blen = if rng.chance(0.1) { n + 1 } else { n };
    let b = gen_mask(rng, blen);
    note(format!("masks n {n} b {}", b.len()));
    let bools: Vec<bool> = (0..n).map(|i| a.get(i)).collect();
    check!(Mask::from_bools(&bools) == a, "from_bools");
    check!(
        a.count_ones() == bools.iter().filter(|&&x| x).count(),
        "count_ones"
    );
    check!(a.iter_ones().eq((0..n).filter(|&i| bools[i])), "iter_ones");
    let w = Mask::from_words(a.words().to_vec(), n);
    check!(w.as_ref() == Ok(&a), "from_words round trip");
    if !n.is_multiple_of(64) {
        let mut words = a.words().to_vec();
        *words.last_mut().unwrap() |= 1 << 63;
        check!(
            matches!(Mask::from_words(words, n), Err(Error::TailBits { .. })),
            "from_words with tail bits"
        );
    }
    check!(
        matches!(
            Mask::from_words(vec![0; n.div_ceil(64) + 1], n),
            Err(Error::Length { .. })
        ),
        "from_words with a word too many"
    );
    for (name, r, f) in [
        (
            "and",
            a.and(&b),
            (|x: bool, y: bool| x && y) as fn(bool, bool) -> bool,
        ),
        ("or", a.or(&b), |x, y| x || y),
    ] {
        if b.len() != n {
            check!(
                matches!(r, Err(Error::Length { .. })),
                "{name} of other lengths: {r:?}"
            );
            continue;
        }
        let r = r.unwrap_or_else(|e| fail!("{name}: {e}"));
        check!((0..n).all(|i| r.get(i) == f(a.get(i), b.get(i))), "{name}");
    }
    let not = a.not();
    check!(
        (0..n).all(|i| not.get(i) != a.get(i)) && not.not() == a,
        "not"
    );
    let start = rng.range(0, n);
    let len = rng.range(0, n - start + 1);
    match a.slice(start, len) {
        Ok(s) if start + len <= n => {
            check!(
                (0..len).all(|i| s.get(i) == a.get(start + i)),
                "slice({start}, {len})"
            )
        }
        Err(_) if start + len > n => {}
        r => fail!("slice({start}, {len}) of {n}: {r:?}"),
    }
    for s in [0, 1, 63, 64, 65, n.saturating_sub(1), n] {
        let wa = a.word_at(s);
        let want = (0..64).fold(0u64, |acc, k| {
            acc | (((s + k < n && a.get(s + k)) as u64) << k)
        });
        check!(wa == want, "word_at({s})");
    }
}

// ------------------------------------------------------------------ driver

fn run_case(ctx: &mut Ctx) {
    match ctx.rng.below(100) {
        0..=7 => reductions::<f32>(ctx),
        8..=12 => reductions::<f64>(ctx),
        13..=15 => reductions::<f16>(ctx),
        16..=18 => reductions::<bf16>(ctx),
        19..=22 => softmaxes::<f32>(ctx),
        23..=25 => softmaxes::<f64>(ctx),
        26..=27 => softmaxes::<f16>(ctx),
        28..=29 => softmaxes::<bf16>(ctx),
        30..=38 => elementwise_losses::<f32>(ctx),
        39..=44 => elementwise_losses::<f64>(ctx),
        45..=48 => cross_entropies::<f32>(ctx),
        49..=51 => cross_entropies::<f64>(ctx),
        52..=54 => ecs_cases::<f32>(ctx),
        55..=56 => ecs_cases::<f64>(ctx),
        57..=59 => pearsons::<f32>(ctx),
        60..=61 => pearsons::<f64>(ctx),
        62..=66 => unary_ops::<f32>(ctx),
        67..=69 => unary_ops::<f64>(ctx),
        70..=75 => binary_ops::<f32>(ctx),
        76..=78 => binary_ops::<f64>(ctx),
        79..=84 => adagrads::<f32>(ctx),
        85..=88 => adagrads::<f64>(ctx),
        89..=90 => adagrads::<f16>(ctx),
        91..=92 => adagrads::<bf16>(ctx),
        93..=95 => huge_shapes(ctx),
        _ => masks(ctx),
    }
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
    )
}

/// (seed, case) of the failures that were the fuzzer's own fault, fixed in
/// the fuzzer; each run replays them before its own cases.
///
/// * 1796626792, 112761: f32 Adagrad on rows whose duplicates and weight
///   decay cancel to |g| ~ 1e-7 with eps 1e-6, an ill-conditioned step the
///   tolerance ignored (it now bounds the slope of the update in g).
///
/// * 1796648955, 62853: f32 smooth L1 with beta 1e-30, `Sum` of pairs in the
///   quadratic zone: `d * d` underflows in f32 (as in PyTorch's f32
///   kernel) where the f64 reference keeps 2.2e-32; the total's tolerance
///   scaled the per-element underflow floor by the rounding error instead of
///   adding it.
const REPLAYS: &[(u64, u64)] = &[(1_796_626_792, 112_761), (1_796_648_955, 62_853)];

fn case_seed(seed: u64, i: u64) -> u64 {
    mix(seed ^ mix(i.wrapping_add(0x5851_F42D_4C95_7F2D)))
}

#[test]
fn fuzz() {
    let seed: u64 = env("MASKOPS_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let only: Option<u64> = env("MASKOPS_FUZZ_CASE");
    let cases: Option<u64> = env("MASKOPS_FUZZ_CASES");
    let seconds: Option<f64> = env("MASKOPS_FUZZ_SECONDS");
    let verbose = env::<u8>("MASKOPS_FUZZ_VERBOSE").is_some_and(|v| v > 0);
    let (cases, seconds) = match (cases, seconds) {
        (None, None) => (Some(DEFAULT_CASES), Some(DEFAULT_SECONDS)),
        other => other,
    };
    let max_len = if cfg!(debug_assertions) { 6000 } else { 20_000 };
    eprintln!(
        "fuzz: seed {seed} (MASKOPS_FUZZ_SEED), cases {cases:?}, seconds {seconds:?}, ISAs {:?}, {} rayon threads",
        Isa::all_available(),
        rayon::current_num_threads()
    );
    let pool3 = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let start = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut done = 0u64;
    // cases that once failed for a fault of the fuzzer itself (a tolerance
    // too tight), replayed first on every run that is not a replay
    let replays: &[(u64, u64)] = match only {
        Some(_) => &[],
        None => REPLAYS,
    };
    let range: Box<dyn Iterator<Item = (u64, u64, bool)>> = match only {
        Some(i) => Box::new(std::iter::once((seed, i, false))),
        None => Box::new(
            replays
                .iter()
                .map(|&(s, i)| (s, i, true))
                .chain((0..).map(move |i| (seed, i, false))),
        ),
    };
    let mut ctx = Ctx {
        rng: Rng(0),
        par: false,
        max_len,
        pool3,
    };
    for (seed, i, replay) in range {
        if only.is_none() && !replay {
            if cases.is_some_and(|c| i >= c) {
                break;
            }
            if seconds.is_some_and(|s| start.elapsed().as_secs_f64() >= s) {
                break;
            }
        }
        ctx.rng = Rng(case_seed(seed, i));
        ctx.par = ctx.rng.chance(0.2);
        note(String::new());
        let t0 = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| run_case(&mut ctx)));
        set_all_thresholds(None);
        done += 1;
        if verbose {
            let what = NOTE.with(|n| n.borrow().clone());
            eprintln!(
                "case {i} ({:.3} s, par {}): {what}",
                t0.elapsed().as_secs_f64(),
                ctx.par
            );
        }
        if let Err(e) = r {
            let what = NOTE.with(|n| n.borrow().clone());
            let msg = format!(
                "seed {seed} case {i}: {}\n    case: {what}\n    replay: MASKOPS_FUZZ_SEED={seed} MASKOPS_FUZZ_CASE={i} cargo test --release --test fuzz -- --nocapture",
                panic_msg(&*e)
            );
            eprintln!("fuzz FAILURE {msg}");
            failures.push(msg);
            if failures.len() >= 10 {
                break;
            }
        }
    }
    eprintln!(
        "fuzz: seed {seed}: {done} cases in {:.1} s, {} failures",
        start.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} fuzz failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
