//! CPU backend: ISA detection and the one dispatch place.
//!
//! The instruction set is detected once and cached in an atomic (memchr's
//! pattern). `MASKOPS_ISA=portable|neon|avx2|avx512` forces a lower ISA for the
//! whole process (benchmarks, CI); tests call the `*_with(isa, …)` entry
//! points of each kernel family to run every ISA the machine has in one
//! process. A request for an ISA the machine lacks falls back to the best
//! one it has below it.
//!
//! Every `#[target_feature]` function under `arch/` is reached only through
//! the `match isa` in this module's families (`dispatch_*` functions), after
//! [`Isa::available`] has been checked.

pub mod adagrad;
pub mod arch;
pub mod elementwise;
pub mod loss;
pub mod reduce;

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level the CPU kernels are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust written to auto-vectorize; runs everywhere.
    Portable,
    /// aarch64 Advanced SIMD (part of the base architecture, so every
    /// aarch64 CPU has it). Every family has NEON kernels (the `f64`
    /// losses, as on x86, run the portable kernels compiled in the room).
    Neon,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL/DQ.
    Avx512,
}

impl Isa {
    /// Every ISA, lowest first.
    pub const ALL: [Isa; 4] = [Isa::Portable, Isa::Neon, Isa::Avx2, Isa::Avx512];

    /// The name used by `MASKOPS_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Neon => "neon",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parses a `MASKOPS_ISA` value.
    pub fn parse(s: &str) -> Option<Isa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" | "scalar" | "generic" => Some(Isa::Portable),
            "neon" => Some(Isa::Neon),
            "avx2" => Some(Isa::Avx2),
            "avx512" | "avx-512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// Whether this machine can run the ISA.
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Neon => cfg!(target_arch = "aarch64"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("f16c")
                    && std::arch::is_x86_feature_detected!("popcnt")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && Isa::Avx2.available()
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        }
    }

    /// The best available ISA not above `self`.
    pub fn clamp_available(self) -> Isa {
        let mut isa = self;
        while !isa.available() {
            isa = match isa {
                Isa::Avx512 => Isa::Avx2,
                _ => Isa::Portable,
            };
        }
        isa
    }

    /// Every ISA this machine can run, lowest first (what tests iterate over).
    pub fn all_available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.available()).collect()
    }

    fn to_u8(self) -> u8 {
        match self {
            Isa::Portable => 1,
            Isa::Avx2 => 2,
            Isa::Avx512 => 3,
            Isa::Neon => 4,
        }
    }

    fn from_u8(v: u8) -> Isa {
        match v {
            4 => Isa::Neon,
            3 => Isa::Avx512,
            2 => Isa::Avx2,
            _ => Isa::Portable,
        }
    }
}

static DETECTED: AtomicU8 = AtomicU8::new(0);

/// The ISA the public API uses: the best this machine has, lowered by
/// `MASKOPS_ISA` if set. Detected on first call, then one relaxed atomic load.
#[inline]
pub fn isa() -> Isa {
    let f = FORCED.with(|c| c.get());
    if f != 0 {
        return Isa::from_u8(f);
    }
    let v = DETECTED.load(Ordering::Relaxed);
    if v != 0 {
        return Isa::from_u8(v);
    }
    let isa = detect();
    DETECTED.store(isa.to_u8(), Ordering::Relaxed);
    isa
}

thread_local! {
    /// The ISA forced on this thread by [`with_forced`] (0: none).
    static FORCED: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// Runs `f` with [`isa()`] returning `isa` on this thread (the caller
/// clamps it to an available one); the previous value comes back when `f`
/// returns or unwinds.
pub(crate) fn with_forced<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    struct Restore(u8);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|c| c.replace(isa.to_u8())));
    f()
}

fn detect() -> Isa {
    let best = if cfg!(target_arch = "aarch64") {
        Isa::Neon
    } else {
        Isa::Avx512.clamp_available()
    };
    match std::env::var("MASKOPS_ISA")
        .ok()
        .and_then(|s| Isa::parse(&s))
    {
        Some(req) => req.min(best).clamp_available(),
        None => best,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_clamp() {
        assert_eq!(Isa::parse("AVX2"), Some(Isa::Avx2));
        assert_eq!(Isa::parse("neon"), Some(Isa::Neon));
        assert_eq!(Isa::parse("sse9"), None);
        assert_eq!(Isa::Neon.available(), cfg!(target_arch = "aarch64"));
        assert!(Isa::Portable.available());
        assert!(isa().available());
        for i in Isa::all_available() {
            assert_eq!(i.clamp_available(), i);
        }
    }
}
