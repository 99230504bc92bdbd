//! Kernel bodies written once, generic over a room's lane type (memchr's
//! `arch/generic`): each ISA room implements the lane trait for its
//! registers and instantiates the bodies inside its `#[target_feature]`
//! entry points. The bodies are `#[inline(always)]`, so every lane
//! operation is compiled with the entry point's features (except in an
//! unoptimized build, `cfg(maskops_o0)` from `build.rs`, where they are
//! plain `#[inline]`: forced inlining at opt-level 0 only copies each body
//! into every call site).
//!
//! One lane-trait hierarchy: [`Vreg`] (registers, memory, IEEE arithmetic,
//! lane masks) is what Adagrad needs; [`elementwise::Arith`] adds what the
//! elementwise ops need (abs, min/max, compares, selects, `exp`/`ln`/`pow`,
//! the room's masked loads and stores), [`math::MathLanes`] the primitives
//! of the `f32` `exp`/`ln` transcriptions (written once in [`math`]), and
//! [`loss::LossLanes`] what the losses need. A room implements them for one register type per width.
//!
//! The reduce engine (`crate::cpu::reduce::engine`, 32 canonical lanes) is
//! the other such body; the families here work one register at a time
//! (the losses: `LANES / W` registers side by side).

pub mod adagrad;
// Instantiated by the x86 and NEON rooms (the portable room has its own
// scalar bodies, which define the bits).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub mod elementwise;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub mod loss;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub mod math;

use crate::element::{Element, Float};

/// One register of `W` lanes of `T`, with the operations the bodies need.
/// Every arithmetic operation is the IEEE one, lane by lane (no FMA), so a
/// body gives the bits of its scalar transcription.
///
/// # Safety
/// Every method is `unsafe`: implementations use intrinsics that need the
/// room's CPU features, and run only inside that room's `#[target_feature]`
/// entry points. Pointer methods need `W` valid elements (or `k`, for the
/// partial forms).
#[allow(clippy::missing_safety_doc)]
pub trait Vreg: Copy {
    /// The element.
    type T: Float;
    /// A lane mask.
    type M: Copy;
    /// Lanes per register (at most 64).
    const W: usize;
    /// Every lane `x`.
    unsafe fn splat(x: Self::T) -> Self;
    /// `W` elements from `p` (unaligned).
    unsafe fn load(p: *const Self::T) -> Self;
    /// `W` elements to `p` (unaligned).
    unsafe fn store(self, p: *mut Self::T);
    /// The first `k < W` elements from `p`, the other lanes `+0.0`; reads
    /// only those `k`.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_part(p: *const Self::T, k: usize) -> Self {
        let mut buf = [Self::T::ZERO; 64];
        // SAFETY: `k < W <= 64` readable elements at `p`, by the contract.
        core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), k);
        Self::load(buf.as_ptr())
    }
    /// The first `k < W` lanes to `p`; writes only those `k`.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_part(self, p: *mut Self::T, k: usize) {
        let mut buf = [Self::T::ZERO; 64];
        self.store(buf.as_mut_ptr());
        // SAFETY: `k < W <= 64` writable elements at `p`, by the contract.
        core::ptr::copy_nonoverlapping(buf.as_ptr(), p, k);
    }
    /// Lane-wise `+`.
    unsafe fn add(self, o: Self) -> Self;
    /// Lane-wise `-`.
    unsafe fn sub(self, o: Self) -> Self;
    /// Lane-wise `*`.
    unsafe fn mul(self, o: Self) -> Self;
    /// Lane-wise `/`.
    unsafe fn div(self, o: Self) -> Self;
    /// Lane-wise square root (correctly rounded).
    unsafe fn sqrt(self) -> Self;
    /// Lane-wise sign flip (Rust's `-x`: the sign bit, NaN payloads kept).
    unsafe fn neg(self) -> Self;
    /// The mask of lanes `j` whose bit `j` of `bits` is set (bits `W` and
    /// above are ignored).
    unsafe fn mask(bits: u64) -> Self::M;
    /// `v` in the lanes of `m`, `+0.0` elsewhere.
    unsafe fn zero_unless(m: Self::M, v: Self) -> Self;
    /// `new` in the lanes of `m`, `old` elsewhere.
    unsafe fn blend(m: Self::M, old: Self, new: Self) -> Self;
}

/// Writes the [`Vreg`] methods that are one intrinsic each (`splat`,
/// `load`, `store`, `add`, `sub`, `mul`, `div`, `sqrt`) inside a room's
/// `impl Vreg for $reg` block, `$reg` being a one-field tuple struct of the
/// room's register type.
macro_rules! vreg_ops {
    (
        $reg:ident, $t:ty, splat = $splat:path, load = $load:path, store = $store:path,
        add = $add:path, sub = $sub:path, mul = $mul:path, div = $div:path,
        sqrt = $sqrt:path $(,)?
    ) => {
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn splat(x: $t) -> Self {
            $reg($splat(x))
        }
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn load(p: *const $t) -> Self {
            // SAFETY: W readable elements at `p`, by the trait's contract.
            $reg($load(p))
        }
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn store(self, p: *mut $t) {
            // SAFETY: W writable elements at `p`, by the trait's contract.
            $store(p, self.0)
        }
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn add(self, o: Self) -> Self {
            $reg($add(self.0, o.0))
        }
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn sub(self, o: Self) -> Self {
            $reg($sub(self.0, o.0))
        }
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn mul(self, o: Self) -> Self {
            $reg($mul(self.0, o.0))
        }
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn div(self, o: Self) -> Self {
            $reg($div(self.0, o.0))
        }
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn sqrt(self) -> Self {
            $reg($sqrt(self.0))
        }
    };
}
pub(crate) use vreg_ops;

/// Prefetch distance of the elementwise and loss loops, in bytes (as the
/// reductions' `PF_BYTES`: masked loads train the hardware prefetcher
/// poorly, and on Zen 4 a masked in-place scale of 2^24 f32 ran at ~0.3 of
/// a plain scale without it).
#[cfg(target_arch = "x86_64")]
const PF_BYTES: usize = 8192;

/// Prefetches the `bytes` bytes at `p` plus `PF_BYTES`, one hint per
/// 64-byte line (a hint: never faults, whatever the address).
#[cfg(target_arch = "x86_64")]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub(crate) fn prefetch_lines<S>(p: *const S, bytes: usize) {
    let base = p as *const i8;
    let mut o = 0;
    while o < bytes {
        // SAFETY: a prefetch is only a hint and never faults (SSE is part
        // of the x86-64 baseline).
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                base.wrapping_add(PF_BYTES + o),
            )
        };
        o += 64;
    }
}

/// No software prefetch in the NEON room: its loads are plain full-vector
/// loads, which the hardware prefetchers follow (the x86 hint is there for
/// masked loads).
#[cfg(target_arch = "aarch64")]
#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
pub(crate) fn prefetch_lines<S>(_p: *const S, _bytes: usize) {}
