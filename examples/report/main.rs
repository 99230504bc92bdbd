//! maskops performance report: `cargo run --release --example report`.
//!
//! Prints, per kernel family, elements per ns, GB/s and the ratio to the
//! machine's bandwidth (an unmasked vectorized read of the same buffer,
//! measured in the same run), plus speedups over the reference. Every time
//! is the minimum over repeated runs inside a small time budget (the
//! minimum is the least disturbed by other processes on a shared machine).
//!
//! Families register in [`FAMILIES`]: each is a module of this example
//! with a `run(&Ctx)` function. `MASKOPS_REPORT=reduce,loss` runs a subset.

mod reduce;
// Other families add their module here (one line each), e.g.:
// mod loss;
// mod adagrad;
// mod elementwise;

use std::hint::black_box;
use std::time::{Duration, Instant};

/// A report family: its name and its rows.
type Family = (&'static str, fn(&Ctx));

/// The families of the report, in print order. To add one: write
/// `examples/report/<name>.rs` with `pub fn run(ctx: &Ctx)`, declare it with
/// `mod <name>;` above and add a line here.
const FAMILIES: &[Family] = &[
    ("reduce", reduce::run),
    // ("loss", loss::run),
    // ("adagrad", adagrad::run),
    // ("elementwise", elementwise::run),
];

/// Shared measurement context.
pub struct Ctx {
    /// Time budget per measurement.
    pub budget: Duration,
}

impl Ctx {
    /// Minimum wall time of `f` in seconds over repeated runs within the budget
    /// (at least 3 runs).
    pub fn time<R>(&self, mut f: impl FnMut() -> R) -> f64 {
        let start = Instant::now();
        let mut best = f64::INFINITY;
        let mut runs = 0;
        while runs < 3 || (start.elapsed() < self.budget && runs < 1000) {
            let t = Instant::now();
            black_box(f());
            best = best.min(t.elapsed().as_secs_f64());
            runs += 1;
        }
        best
    }

    /// Time of an unmasked vectorized read (sum) of `x`: the bandwidth
    /// baseline for a buffer of that size.
    pub fn read_time(&self, x: &[f32]) -> f64 {
        self.time(|| unmasked_read(black_box(x)))
    }
}

/// Unmasked vectorized read of `x` (a sum with 64 independent lanes, so it
/// is bound by loads, not by add latency).
pub fn unmasked_read(x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected at run time.
            return unsafe { read_avx512(x) };
        }
    }
    read_portable(x)
}

#[inline(always)]
fn read_portable(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 64];
    let mut it = x.chunks_exact(64);
    for c in &mut it {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += *v;
        }
    }
    acc.iter().sum::<f32>() + it.remainder().iter().sum::<f32>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn read_avx512(x: &[f32]) -> f32 {
    read_portable(x)
}

/// Prints a section header.
pub fn header(s: &str) {
    println!("\n== {s} ==");
}

fn main() {
    let only = std::env::var("MASKOPS_REPORT").ok();
    let budget_ms: u64 = std::env::var("MASKOPS_REPORT_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let ctx = Ctx {
        budget: Duration::from_millis(budget_ms),
    };
    println!(
        "maskops performance report: isa = {:?}, rayon threads = {}, {} ms per measurement (min time)",
        maskops::cpu::isa(),
        rayon::current_num_threads(),
        budget_ms
    );
    let t0 = Instant::now();
    for (name, run) in FAMILIES {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|s| s.trim() == *name))
        {
            continue;
        }
        run(&ctx);
    }
    println!("\nreport finished in {:.1} s", t0.elapsed().as_secs_f64());
}
