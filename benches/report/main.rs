//! maskops performance report: `cargo run --release --bin report`.
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
#[path = "../../tests/shim/mod.rs"]
mod shim;
// Other families add their module here (one line each).
mod adagrad;
mod alloc;
mod bw; // helpers shared by loss, adagrad, elementwise
mod elementwise;
mod loss;

use std::hint::black_box;
use std::time::{Duration, Instant};

/// A report family: its name and its rows.
type Family = (&'static str, fn(&Ctx));

/// The families of the report, in print order. To add one: write
/// `examples/report/<name>.rs` with `pub fn run(ctx: &Ctx)`, declare it with
/// `mod <name>;` above and add a line here.
const FAMILIES: &[Family] = &[
    ("reduce", reduce::run),
    ("loss", loss::run),
    ("adagrad", adagrad::run),
    ("elementwise", elementwise::run),
    ("alloc", alloc::run),
];

/// Shared measurement context.
pub struct Ctx {
    /// Time budget per measurement.
    pub budget: Duration,
    /// Measure wall-clock time instead of on-CPU time.
    pub wall: bool,
}

impl Ctx {
    /// Minimum time of one call of `f` in seconds, over batches of calls
    /// inside the time budget (at least 3 batches; a batch lasts >= 1 ms).
    /// The clock is the measuring thread's on-CPU time
    /// (`CLOCK_THREAD_CPUTIME_ID`) when available and `wall` is false:
    /// on a shared machine time slices lost to other processes do not count.
    pub fn time_with<R>(&self, wall: bool, mut f: impl FnMut() -> R) -> f64 {
        let clock = |wall: bool| -> f64 {
            if !wall {
                if let Some(ns) = thread_cpu_ns() {
                    return ns as f64 * 1e-9;
                }
            }
            EPOCH.with(|e| e.elapsed().as_secs_f64())
        };
        // calibrate the batch size
        let t = Instant::now();
        black_box(f());
        let one = t.elapsed().as_secs_f64().max(1e-9);
        let batch = ((1e-3 / one).ceil() as usize).clamp(1, 10_000);
        let start = Instant::now();
        let mut best = f64::INFINITY;
        let mut runs = 0;
        while runs < 3 || (start.elapsed() < self.budget && runs < 1000) {
            let c0 = clock(wall);
            for _ in 0..batch {
                black_box(f());
            }
            best = best.min((clock(wall) - c0) / batch as f64);
            runs += 1;
        }
        best
    }

    /// [`Ctx::time_with`] on the default clock (on-CPU time unless
    /// `MASKOPS_REPORT_CLOCK=wall`).
    pub fn time<R>(&self, f: impl FnMut() -> R) -> f64 {
        self.time_with(self.wall, f)
    }

    /// Time of an unmasked vectorized read (sum) of `x`: the bandwidth
    /// baseline for a buffer of that size. The faster of a plain read and a
    /// read with software prefetch 8 KiB ahead (the kernels prefetch, so
    /// the baseline does too: on Zen 4 the prefetched read is ~1.35x the
    /// plain one for a buffer in DRAM).
    pub fn read_time(&self, x: &[f32]) -> f64 {
        let plain = self.time(|| unmasked_read_plain(black_box(x)));
        let pf = self.time(|| unmasked_read(black_box(x)));
        plain.min(pf)
    }
}

thread_local! {
    static EPOCH: Instant = Instant::now();
}

/// On-CPU time of the calling thread in ns: `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`
/// by a raw syscall (x86-64 Linux; `None` elsewhere, the report then uses wall time).
fn thread_cpu_ns() -> Option<u64> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let mut ts = [0i64; 2];
        let ret: i64;
        // SAFETY: syscall 228 is clock_gettime(clockid, *mut timespec) on x86-64
        // Linux; clock 3 is CLOCK_THREAD_CPUTIME_ID; `ts` is a valid, writable
        // timespec (two i64). rcx and r11 are clobbered by `syscall`.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") 228i64 => ret,
                in("rdi") 3i64,
                in("rsi") ts.as_mut_ptr(),
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack)
            );
        }
        if ret == 0 {
            return Some(ts[0] as u64 * 1_000_000_000 + ts[1] as u64);
        }
    }
    None
}

/// Unmasked vectorized read of `x` (a sum with 64 independent lanes, so it
/// is bound by loads, not by add latency), with software prefetch 8 KiB
/// ahead on x86-64.
pub fn unmasked_read(x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected at run time.
            return unsafe { read_avx512_pf(x) };
        }
    }
    read_portable(x)
}

/// [`unmasked_read`] without software prefetch.
pub fn unmasked_read_plain(x: &[f32]) -> f32 {
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn read_avx512_pf(x: &[f32]) -> f32 {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let mut acc = [0.0f32; 64];
    let mut it = x.chunks_exact(64);
    for c in &mut it {
        let p = c.as_ptr() as *const i8;
        for k in 0..4 {
            // SAFETY: a prefetch is a hint and never faults, whatever the address.
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(8192 + 64 * k));
        }
        for (a, v) in acc.iter_mut().zip(c) {
            *a += *v;
        }
    }
    acc.iter().sum::<f32>() + it.remainder().iter().sum::<f32>()
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
    let wall = std::env::var("MASKOPS_REPORT_CLOCK").is_ok_and(|v| v == "wall")
        || thread_cpu_ns().is_none();
    let ctx = Ctx {
        budget: Duration::from_millis(budget_ms),
        wall,
    };
    println!(
        "maskops performance report: isa = {:?}, rayon threads = {}, {} ms per measurement",
        maskops::backend::isa(),
        rayon::current_num_threads(),
        budget_ms
    );
    println!(
        "clock: {} (min per call over batches); load average: {}",
        if wall {
            "wall"
        } else {
            "on-CPU time of the measuring thread (MASKOPS_REPORT_CLOCK=wall for wall-clock)"
        },
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "n/a".into())
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
