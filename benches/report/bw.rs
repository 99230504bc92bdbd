//! Shared helpers of the loss, adagrad and elementwise report families:
//! data, thread pools, bandwidth baselines measured in the same run, and
//! one table layout.

use crate::Ctx;
use std::hint::black_box;

/// A rayon pool of `n` threads.
pub fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

/// SplitMix64: deterministic data, indices and masks.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `[-1, 1)`.
    pub fn unif(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// `n` values uniform in `[lo, hi)`.
pub fn data(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut r = Rng(seed);
    (0..n)
        .map(|_| lo + (r.unif() + 1.0) * 0.5 * (hi - lo))
        .collect()
}

/// A zero-filled vector whose pages are all touched now (a plain
/// `vec![0.0; n]` maps them lazily, and the first timed call would pay the
/// page faults).
pub fn zeros(n: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; n];
    // an opaque zero: the fill cannot be elided as a store to calloc'ed memory
    v.fill(black_box(0.0));
    v
}

/// Bandwidth baselines of one thread on 2^24 f32, measured in this run
/// (GB/s by the bytes each moves).
pub struct Base {
    /// Unmasked vectorized read (sum): 4 B/element.
    pub read: f64,
    /// In-place scale `x *= s`: one read + one write, 8 B/element.
    pub scale: f64,
    /// Triad `o = a + 0.5 b`: two reads + one write, 12 B/element.
    pub triad: f64,
}

pub const BASE_N: usize = 1 << 24;

impl Base {
    /// Measures the three baselines; call inside a one-thread pool.
    pub fn measure(ctx: &Ctx) -> Base {
        let n = BASE_N;
        let a = data(n, 1, -2.0, 2.0);
        let mut b = data(n, 2, -2.0, 2.0);
        let mut o = zeros(n);
        let read = ctx.read_time(&a);
        let mut k = 0u32;
        let scale = ctx.time(|| {
            // alternate x2 and x0.5 so that repeated runs stay exact and finite
            k ^= 1;
            let s = if k == 1 { 2.0f32 } else { 0.5 };
            for v in b.iter_mut() {
                *v *= s;
            }
            black_box(b.as_ptr());
        });
        let triad = ctx.time(|| {
            for ((o, x), y) in o.iter_mut().zip(&a).zip(&b) {
                *o = *x + 0.5 * *y;
            }
            black_box(o.as_ptr());
        });
        let gbs = |bytes: f64, t: f64| n as f64 * bytes / t / 1e9;
        Base {
            read: gbs(4.0, read),
            scale: gbs(8.0, scale),
            triad: gbs(12.0, triad),
        }
    }

    /// One line with the three figures.
    pub fn print(&self) {
        println!(
            "baselines, 2^24 f32, one thread: read {:.1} GB/s | scale x*=s (1 read + 1 write) {:.1} GB/s | triad o=a+0.5b (2 reads + 1 write) {:.1} GB/s",
            self.read, self.scale, self.triad
        );
    }
}

/// A time in adaptive units.
pub fn fmt_t(t: f64) -> String {
    if t >= 1.0 {
        format!("{:.2} s", t)
    } else if t >= 1e-3 {
        format!("{:.2} ms", t * 1e3)
    } else {
        format!("{:.1} us", t * 1e6)
    }
}

/// Column header of a bandwidth table; `base` names the baseline of the
/// "vs base" column.
pub fn table_header(base: &str) {
    println!(
        "{:<26} {:>9} {:>10} {:>8} {:>7} {:>7} {:>8} {:>7} {:>8}",
        "op",
        "N",
        "time",
        "elem/ns",
        "B/elem",
        "GB/s",
        &format!("vs {base}"),
        "vs read",
        "vs ref"
    );
}

/// One row: `elems` elements in `t` seconds moving `bpe` bytes each;
/// `base` and `read` are baseline GB/s; `vs_ref` the reference's time over
/// this one's (per element).
#[allow(clippy::too_many_arguments)]
pub fn row(
    name: &str,
    n_label: &str,
    t: f64,
    elems: f64,
    bpe: f64,
    base: f64,
    read: f64,
    vs_ref: Option<f64>,
) {
    let gbs = elems * bpe / t / 1e9;
    println!(
        "{:<26} {:>9} {:>10} {:>8.3} {:>7.3} {:>7.1} {:>8.2} {:>7.2} {:>8}",
        name,
        n_label,
        fmt_t(t),
        elems / t / 1e9,
        bpe,
        gbs,
        gbs / base,
        gbs / read,
        vs_ref.map_or_else(|| "-".to_string(), |s| format!("{s:.1}x"))
    );
}
