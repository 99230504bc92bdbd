//! `gpu-check`: the device against the CPU API at large sizes, with each
//! kernel's bandwidth (issue 17, item 6; run by `.ci/gpu-check.sh`).
//!
//! For every case it runs the device operation once on fresh buffers,
//! compares every result with the CPU public API (`MaskedView`, `loss`,
//! `optim::Adagrad`) bit for bit — NaN as a class: a GPU writes its
//! canonical NaN where x86 keeps the payload — then times a few more runs
//! and prints GB/s for the bytes the operation must move and the fraction
//! of the device's peak bandwidth (`2 * memory clock * bus width / 8`, from
//! the driver's device attributes).
//!
//! ```text
//! gpu-check              # the sizes of issue 17 (2^26 elements, 4096 x 16384, ...)
//! gpu-check --small      # small sizes (seconds), same cases
//! gpu-check --info       # only the device, driver and peak bandwidth
//! gpu-check --emulate    # small sizes on the host emulator (feature
//!                        # cuda-emulator): checks this program without a GPU
//! ```
//!
//! Exit status: 0 every comparison equal; 1 a mismatch or a device error;
//! 2 no driver or no device (the message says which).

use half::f16;
use maskops::cuda::ops::{ElemLoss, LossReduction, Reduce};
use maskops::cuda::{DeviceAdagrad, DeviceElement, Gpu};
use maskops::loss::{self, CrossEntropy};
use maskops::optim::Adagrad;
use maskops::{Element, Mask, MaskedView};
use std::time::Instant;

/// A result and, on a device, the seconds one run took (best of a few).
type Timed<R> = (R, Option<f64>);

/// The device operations the check runs, with host data in and out. The GPU
/// keeps its inputs on the device while it times the operation; the
/// emulator runs once, untimed.
trait Dev {
    fn reduce<T: DeviceElement + Element>(
        &self,
        x: &[T],
        m: &Mask,
        r: Reduce,
    ) -> Timed<Option<f64>>
    where
        T::Acc: Into<f64>;
    #[allow(clippy::too_many_arguments)]
    fn reduce_dim<T: DeviceElement + Element + Default>(
        &self,
        x: &[T],
        m: &Mask,
        rows: usize,
        cols: usize,
        dim: usize,
        r: Reduce,
    ) -> Timed<(Vec<T>, Mask)>;
    fn softmax<T: DeviceElement + Element + Default>(
        &self,
        x: &[T],
        m: &Mask,
        rows: usize,
        cols: usize,
        log: bool,
    ) -> Timed<Vec<T>>;
    fn mse(&self, x: &[f32], y: &[f32], m: &Mask) -> Timed<(f32, Vec<f32>)>;
    #[allow(clippy::too_many_arguments)]
    fn cross_entropy(
        &self,
        x: &[f32],
        rows: usize,
        classes: usize,
        t: &[i64],
        ignore: i64,
        ls: f64,
    ) -> Timed<(f32, Vec<f32>)>;
    /// One step from `p`, `s` (state after `step - 1` steps): dense
    /// (`sparse = None`) or COO with flattened indices.
    #[allow(clippy::too_many_arguments)]
    fn adagrad(
        &self,
        opt: &DeviceAdagrad,
        p: &[f32],
        s: &[f32],
        g: &[f32],
        sparse: Option<&[usize]>,
    ) -> Timed<(Vec<f32>, Vec<f32>)>;
}

fn fail(what: &str, e: maskops::Error) -> ! {
    eprintln!("gpu-check: {what}: {e}");
    std::process::exit(1)
}

// ---------------------------------------------------------------- device

struct Device {
    gpu: Gpu,
    iters: usize,
}

impl Device {
    /// Runs `f` once more than `iters` times after the first call, returns
    /// the best seconds of one run (each run waited for).
    fn time(&self, mut f: impl FnMut()) -> f64 {
        let mut best = f64::INFINITY;
        for _ in 0..self.iters {
            let t = Instant::now();
            f();
            self.gpu.synchronize().unwrap_or_else(|e| fail("sync", e));
            best = best.min(t.elapsed().as_secs_f64());
        }
        best
    }
}

macro_rules! ok {
    ($what:expr, $e:expr) => {
        $e.unwrap_or_else(|e| fail($what, e))
    };
}

impl Dev for Device {
    fn reduce<T: DeviceElement + Element>(&self, x: &[T], m: &Mask, r: Reduce) -> Timed<Option<f64>>
    where
        T::Acc: Into<f64>,
    {
        let g = &self.gpu;
        let (xb, mb) = (ok!("upload", g.upload(x)), ok!("upload", g.upload_mask(m)));
        let v = ok!("reduce", g.reduce(&xb, &mb, r));
        let v = v.map(Into::into);
        let t = self.time(|| {
            ok!("reduce", g.reduce(&xb, &mb, r));
        });
        (v, Some(t))
    }

    fn reduce_dim<T: DeviceElement + Element + Default>(
        &self,
        x: &[T],
        m: &Mask,
        rows: usize,
        cols: usize,
        dim: usize,
        r: Reduce,
    ) -> Timed<(Vec<T>, Mask)> {
        let g = &self.gpu;
        let (xb, mb) = (ok!("upload", g.upload(x)), ok!("upload", g.upload_mask(m)));
        let out = ok!("reduce_dim", g.reduce_dim(&xb, &mb, rows, cols, dim, r));
        let v = ok!("download", g.download(&out.values));
        let om = ok!("download", g.download_mask(&out.mask));
        let t = self.time(|| {
            ok!("reduce_dim", g.reduce_dim(&xb, &mb, rows, cols, dim, r));
        });
        ((v, om), Some(t))
    }

    fn softmax<T: DeviceElement + Element + Default>(
        &self,
        x: &[T],
        m: &Mask,
        rows: usize,
        cols: usize,
        log: bool,
    ) -> Timed<Vec<T>> {
        let g = &self.gpu;
        let (xb, mb) = (ok!("upload", g.upload(x)), ok!("upload", g.upload_mask(m)));
        let y = ok!("softmax", g.softmax(&xb, &mb, rows, cols, 1, log));
        let v = ok!("download", g.download(&y));
        drop(y);
        let t = self.time(|| {
            ok!("softmax", g.softmax(&xb, &mb, rows, cols, 1, log));
        });
        (v, Some(t))
    }

    fn mse(&self, x: &[f32], y: &[f32], m: &Mask) -> Timed<(f32, Vec<f32>)> {
        let g = &self.gpu;
        let (xb, yb) = (ok!("upload", g.upload(x)), ok!("upload", g.upload(y)));
        let mb = ok!("upload", g.upload_mask(m));
        let l = ok!(
            "mse",
            g.loss(ElemLoss::Mse, &xb, &yb, &mb, LossReduction::Mean)
        );
        let v = ok!("download", g.download(&l.value))[0];
        let gr = ok!("download", g.download(&l.grad));
        drop(l);
        let t = self.time(|| {
            ok!(
                "mse",
                g.loss(ElemLoss::Mse, &xb, &yb, &mb, LossReduction::Mean)
            );
        });
        ((v, gr), Some(t))
    }

    fn cross_entropy(
        &self,
        x: &[f32],
        rows: usize,
        classes: usize,
        t: &[i64],
        ignore: i64,
        ls: f64,
    ) -> Timed<(f32, Vec<f32>)> {
        let g = &self.gpu;
        let xb = ok!("upload", g.upload(x));
        let run = || {
            ok!(
                "cross_entropy",
                g.cross_entropy(&xb, rows, classes, t, ignore, None, ls, LossReduction::Mean)
            )
        };
        let l = run();
        let v = ok!("download", g.download(&l.value))[0];
        let gr = ok!("download", g.download(&l.grad));
        drop(l);
        let secs = self.time(|| {
            run();
        });
        ((v, gr), Some(secs))
    }

    fn adagrad(
        &self,
        opt: &DeviceAdagrad,
        p: &[f32],
        s: &[f32],
        gr: &[f32],
        sparse: Option<&[usize]>,
    ) -> Timed<(Vec<f32>, Vec<f32>)> {
        let g = &self.gpu;
        let mut pb = ok!("upload", g.upload(p));
        let mut st = maskops::cuda::DeviceAdagradState {
            sum: ok!("upload", g.upload(s)),
            step: 0,
        };
        let gb = ok!("upload", g.upload(gr));
        let step = |pb: &mut _, st: &mut _| match sparse {
            None => ok!("adagrad", g.adagrad_step(opt, pb, &gb, None, st)),
            // host indices and values: validated and uploaded by the call
            Some(idx) => ok!("adagrad", g.adagrad_step_sparse(opt, pb, idx, gr, st)),
        };
        step(&mut pb, &mut st);
        let r = (
            ok!("download", g.download(&pb)),
            ok!("download", g.download(&st.sum)),
        );
        let t = self.time(|| step(&mut pb, &mut st));
        (r, Some(t))
    }
}

// ---------------------------------------------------------------- emulator

#[cfg(feature = "cuda-emulator")]
mod emulated {
    use super::*;
    use maskops::cuda::emu::Emulator;
    use maskops::cuda::ops::{self, Layout};
    use maskops::cuda::plan::{self, Backend};

    pub struct Emu(pub Emulator);

    fn up<T: Copy>(e: &Emulator, d: &[T]) -> <Emulator as Backend>::Buf {
        plan::upload(e, d).unwrap_or_else(|e| fail("upload", e))
    }
    fn rd<T: Copy + Default>(e: &Emulator, b: &<Emulator as Backend>::Buf, n: usize) -> Vec<T> {
        plan::download(e, e.ptr(b), n).unwrap_or_else(|e| fail("download", e))
    }
    fn alloc(e: &Emulator, bytes: usize) -> <Emulator as Backend>::Buf {
        e.alloc_zeroed(bytes.max(8))
            .unwrap_or_else(|e| fail("alloc", e))
    }

    impl Dev for Emu {
        fn reduce<T: DeviceElement + Element>(
            &self,
            x: &[T],
            m: &Mask,
            r: Reduce,
        ) -> Timed<Option<f64>>
        where
            T::Acc: Into<f64>,
        {
            let e = &self.0;
            let (xb, mb) = (up(e, x), up(e, m.words()));
            let v = ok!(
                "reduce",
                ops::reduce_scalar_f64(e, e.ptr(&xb), T::DTYPE, e.ptr(&mb), x.len() as u64, r)
            );
            (v, None)
        }

        fn reduce_dim<T: DeviceElement + Element + Default>(
            &self,
            x: &[T],
            m: &Mask,
            rows: usize,
            cols: usize,
            dim: usize,
            r: Reduce,
        ) -> Timed<(Vec<T>, Mask)> {
            let e = &self.0;
            let (seqs, len, layout) = if dim == 1 {
                (rows, cols, Layout::Rows)
            } else {
                (cols, rows, Layout::Cols)
            };
            let (xb, mb) = (up(e, x), up(e, m.words()));
            let out = alloc(e, seqs * std::mem::size_of::<T>());
            let cnt = alloc(e, seqs * 8);
            let words = alloc(e, seqs.div_ceil(64) * 8);
            ok!(
                "reduce",
                ops::reduce(
                    e,
                    e.ptr(&xb),
                    T::DTYPE,
                    e.ptr(&mb),
                    seqs as u64,
                    len as u64,
                    layout,
                    r,
                    e.ptr(&out),
                    T::DTYPE,
                    e.ptr(&cnt),
                )
            );
            ok!(
                "pack",
                ops::pack_counts(e, e.ptr(&cnt), seqs as u64, e.ptr(&words))
            );
            let v = rd::<T>(e, &out, seqs);
            let w = rd::<u64>(e, &words, seqs.div_ceil(64));
            ((v, ok!("mask", Mask::from_words(w, seqs))), None)
        }

        fn softmax<T: DeviceElement + Element + Default>(
            &self,
            x: &[T],
            m: &Mask,
            rows: usize,
            cols: usize,
            log: bool,
        ) -> Timed<Vec<T>> {
            let e = &self.0;
            let (xb, mb) = (up(e, x), up(e, m.words()));
            let out = alloc(e, std::mem::size_of_val(x));
            ok!(
                "softmax",
                ops::softmax(
                    e,
                    e.ptr(&xb),
                    T::DTYPE,
                    e.ptr(&mb),
                    rows as u64,
                    cols as u64,
                    log,
                    e.ptr(&out)
                )
            );
            (rd(e, &out, x.len()), None)
        }

        fn mse(&self, x: &[f32], y: &[f32], m: &Mask) -> Timed<(f32, Vec<f32>)> {
            let e = &self.0;
            let (xb, yb, mb) = (up(e, x), up(e, y), up(e, m.words()));
            let (grad, out) = (alloc(e, x.len() * 4), alloc(e, 4));
            ok!(
                "mse",
                ops::loss_elementwise(
                    e,
                    f32::DTYPE,
                    ElemLoss::Mse,
                    e.ptr(&xb),
                    e.ptr(&yb),
                    e.ptr(&mb),
                    x.len() as u64,
                    m.count_ones() as u64,
                    LossReduction::Mean,
                    e.ptr(&grad),
                    0,
                    e.ptr(&out)
                )
            );
            ((rd::<f32>(e, &out, 1)[0], rd(e, &grad, x.len())), None)
        }

        fn cross_entropy(
            &self,
            x: &[f32],
            rows: usize,
            classes: usize,
            t: &[i64],
            ignore: i64,
            ls: f64,
        ) -> Timed<(f32, Vec<f32>)> {
            let e = &self.0;
            let (xb, tb) = (up(e, x), up(e, t));
            let (grad, rowv, out) = (alloc(e, x.len() * 4), alloc(e, rows * 4), alloc(e, 4));
            let a = ops::CeArgs {
                ignore_index: ignore,
                weight: 0,
                weight_sum: classes as f64,
                label_smoothing: ls,
                reduction: LossReduction::Mean,
            };
            ok!(
                "cross_entropy",
                ops::cross_entropy(
                    e,
                    e.ptr(&xb),
                    rows as u64,
                    classes as u64,
                    e.ptr(&tb),
                    &a,
                    e.ptr(&grad),
                    e.ptr(&rowv),
                    e.ptr(&out)
                )
            );
            ((rd::<f32>(e, &out, 1)[0], rd(e, &grad, x.len())), None)
        }

        fn adagrad(
            &self,
            opt: &DeviceAdagrad,
            p: &[f32],
            s: &[f32],
            g: &[f32],
            sparse: Option<&[usize]>,
        ) -> Timed<(Vec<f32>, Vec<f32>)> {
            let e = &self.0;
            let (pb, sb, gb) = (up(e, p), up(e, s), up(e, g));
            let h = ops::AdagradStep::new(
                opt.lr,
                opt.lr_decay,
                opt.weight_decay,
                opt.eps,
                opt.maximize,
                1,
            );
            match sparse {
                None => ok!(
                    "adagrad",
                    ops::adagrad_dense(
                        e,
                        f32::DTYPE,
                        e.ptr(&pb),
                        e.ptr(&sb),
                        e.ptr(&gb),
                        0,
                        p.len() as u64,
                        &h
                    )
                ),
                Some(idx) => {
                    let ib = up(e, &idx.iter().map(|&i| i as u64).collect::<Vec<u64>>());
                    ok!(
                        "adagrad",
                        ops::adagrad_sparse(
                            e,
                            f32::DTYPE,
                            e.ptr(&pb),
                            e.ptr(&sb),
                            e.ptr(&ib),
                            e.ptr(&gb),
                            idx.len() as u64,
                            &h
                        )
                    )
                }
            }
            ((rd(e, &pb, p.len()), rd(e, &sb, s.len())), None)
        }
    }
}

// ---------------------------------------------------------------- checks

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn f(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// Values in `[lo, hi)` where kept, NaN / +inf / -inf where masked out
/// (none of which may reach a result).
fn data<T: Element>(rng: &mut Rng, m: &Mask, lo: f64, hi: f64) -> Vec<T> {
    (0..m.len())
        .map(|i| {
            if m.get(i) {
                T::from_f64(rng.f(lo, hi))
            } else {
                T::from_f64([f64::NAN, f64::INFINITY, f64::NEG_INFINITY][i % 3])
            }
        })
        .collect()
}

/// Same bits, NaN as one class (through the exact widening to f64).
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// The sizes of one run.
struct Sizes {
    whole: usize,
    dims: (usize, usize),
    soft: [(usize, usize); 2],
    ce: (usize, usize),
    iters: usize,
}

impl Sizes {
    fn large() -> Sizes {
        Sizes {
            whole: 1 << 26,
            dims: (4096, 16384),
            soft: [(64 << 10, 1024), (64, 1 << 20)],
            ce: (64 << 10, 1024),
            iters: 5,
        }
    }
    fn small() -> Sizes {
        Sizes {
            whole: (1 << 16) + 77,
            dims: (67, 4099),
            soft: [(37, 1024), (3, 9000)],
            ce: (37, 1000),
            iters: 3,
        }
    }
}

struct Checker {
    /// Peak bandwidth in bytes per second (None: unknown, or emulated).
    peak: Option<f64>,
    failures: usize,
    cases: usize,
}

impl Checker {
    /// Counts the positions where `cpu` and `dev` differ (NaN as a class),
    /// prints one line with the first few and the timing.
    fn report(&mut self, name: &str, diffs: Vec<String>, total: usize, bytes: u64, t: Option<f64>) {
        self.cases += 1;
        let speed = match t {
            Some(t) => {
                let gbs = bytes as f64 / t / 1e9;
                let frac = self
                    .peak
                    .map(|p| format!(", {:.0}% of peak", 100.0 * bytes as f64 / t / p))
                    .unwrap_or_default();
                format!("  {:>9.1} us  {gbs:>7.1} GB/s{frac}", t * 1e6)
            }
            None => String::new(),
        };
        if diffs.is_empty() {
            println!("  ok    {name:<44} {total:>10} values equal{speed}");
        } else {
            self.failures += 1;
            println!(
                "  FAIL  {name:<44} {} of {total} differ{speed}",
                diffs.len()
            );
            for d in diffs.iter().take(5) {
                println!("          {d}");
            }
        }
    }
}

/// Element-by-element comparison of two float sequences (`keep`: which
/// positions count; a position outside it is ignored).
fn diff<T: Element>(cpu: &[T], dev: &[T], keep: impl Fn(usize) -> bool) -> Vec<String> {
    let mut v = Vec::new();
    if cpu.len() != dev.len() {
        v.push(format!(
            "lengths {} (cpu) and {} (device)",
            cpu.len(),
            dev.len()
        ));
        return v;
    }
    for i in 0..cpu.len() {
        if keep(i) && !same(cpu[i].to_f64(), dev[i].to_f64()) {
            v.push(format!(
                "[{i}] cpu {:e} device {:e}",
                cpu[i].to_f64(),
                dev[i].to_f64()
            ));
        }
    }
    v
}

fn whole<D: Dev, T: DeviceElement + Element + Default>(d: &D, c: &mut Checker, n: usize)
where
    T::Acc: Into<f64>,
{
    let mut rng = Rng(11 + T::NAME.len() as u64);
    let m = Mask::random(n, 0.25, 7);
    let x = data::<T>(&mut rng, &m, -3.0, 3.0);
    let view = MaskedView::new(&x, &m).unwrap();
    let bytes = (n * std::mem::size_of::<T>() + n / 8) as u64;
    let cases: [(&str, Reduce, Option<T>); 6] = [
        ("sum", Reduce::Sum, view.sum()),
        ("mean", Reduce::Mean, view.mean()),
        ("amax", Reduce::Amax, view.amax()),
        ("var(1)", Reduce::Var(1), view.var(1)),
        ("norm(2)", Reduce::Norm2, view.norm(2.0)),
        ("logsumexp", Reduce::LogSumExp, view.logsumexp()),
    ];
    for (name, r, cpu) in cases {
        let (dev, t) = d.reduce(&x, &m, r);
        // the device returns the accumulator; the CPU API rounds it to T once
        let dev = dev.map(|a| T::from_f64(a).to_f64());
        let cpu = cpu.map(|v| v.to_f64());
        let diffs = match (cpu, dev) {
            (Some(a), Some(b)) if same(a, b) => vec![],
            (None, None) => vec![],
            _ => vec![format!("cpu {cpu:?} device {dev:?}")],
        };
        c.report(&format!("{} {name} whole {n}", T::NAME), diffs, 1, bytes, t);
    }
}

fn dims<D: Dev, T: DeviceElement + Element + Default>(d: &D, c: &mut Checker, s: &Sizes) {
    let (rows, cols) = s.dims;
    let n = rows * cols;
    let mut rng = Rng(23);
    let m = Mask::random(n, 0.25, 8);
    let x = data::<T>(&mut rng, &m, -3.0, 3.0);
    let view = MaskedView::matrix(&x, &m, rows, cols).unwrap();
    let sz = std::mem::size_of::<T>();
    for dim in [1usize, 0] {
        let seqs = if dim == 1 { rows } else { cols };
        let bytes = (n * sz + n / 8 + seqs * sz) as u64;
        let cases = [
            ("sum", Reduce::Sum, view.sum_dim(dim)),
            ("mean", Reduce::Mean, view.mean_dim(dim)),
            ("amax", Reduce::Amax, view.amax_dim(dim)),
        ];
        for (name, r, cpu) in cases {
            let cpu = cpu.unwrap();
            let ((v, om), t) = d.reduce_dim(&x, &m, rows, cols, dim, r);
            let mut diffs = Vec::new();
            if om.words() != cpu.mask.words() {
                diffs.push("output masks differ".to_string());
            }
            diffs.extend(diff(&cpu.values, &v, |i| cpu.mask.get(i)));
            c.report(
                &format!("{} {name} dim{dim} {rows}x{cols}", T::NAME),
                diffs,
                seqs,
                bytes,
                t,
            );
        }
    }
}

fn softmax<D: Dev>(d: &D, c: &mut Checker, s: &Sizes) {
    for (k, &(rows, cols)) in s.soft.iter().enumerate() {
        let n = rows * cols;
        let mut rng = Rng(31 + k as u64);
        // a few fully masked rows, the rest 75% kept
        let mut m = Mask::random(n, 0.25, 9 + k as u64);
        for r in (0..rows).step_by(17) {
            for j in 0..cols {
                m.set(r * cols + j, false);
            }
        }
        let x = data::<f32>(&mut rng, &m, -8.0, 8.0);
        let view = MaskedView::matrix(&x, &m, rows, cols).unwrap();
        let bytes = (8 * n + n / 8) as u64;
        for log in [false, true] {
            let cpu = if log {
                view.log_softmax(1)
            } else {
                view.softmax(1)
            }
            .unwrap();
            let (v, t) = d.softmax(&x, &m, rows, cols, log);
            c.report(
                &format!(
                    "f32 {} dim1 {rows}x{cols}",
                    if log { "log_softmax" } else { "softmax" }
                ),
                diff(&cpu.values, &v, |_| true),
                n,
                bytes,
                t,
            );
        }
    }
}

fn losses<D: Dev>(d: &D, c: &mut Checker, s: &Sizes) {
    let n = s.whole;
    let mut rng = Rng(41);
    let m = Mask::random(n, 0.25, 10);
    let x = data::<f32>(&mut rng, &m, -2.0, 2.0);
    let y = data::<f32>(&mut rng, &Mask::ones(n), -2.0, 2.0);
    let cpu = loss::mse(&x, &y, &m, loss::Reduction::Mean).unwrap();
    let ((v, g), t) = d.mse(&x, &y, &m);
    let mut diffs = diff(&cpu.value, &[v], |_| true);
    diffs.extend(diff(&cpu.grad, &g, |_| true));
    c.report(
        &format!("f32 mse mean {n}"),
        diffs,
        n + 1,
        (12 * n + n / 8) as u64,
        t,
    );

    let (rows, classes) = s.ce;
    let n = rows * classes;
    let x: Vec<f32> = (0..n).map(|_| rng.f(-8.0, 8.0) as f32).collect();
    let ignore = -100i64;
    let t: Vec<i64> = (0..rows)
        .map(|_| {
            let r = rng.next();
            if r.is_multiple_of(10) {
                ignore
            } else {
                ((r >> 8) % classes as u64) as i64
            }
        })
        .collect();
    for ls in [0.0, 0.1] {
        let opts = CrossEntropy {
            ignore_index: ignore,
            label_smoothing: ls,
            ..Default::default()
        };
        let cpu = loss::cross_entropy(&x, rows, classes, &t, &opts).unwrap();
        let ((v, g), secs) = d.cross_entropy(&x, rows, classes, &t, ignore, ls);
        let mut diffs = diff(&cpu.value, &[v], |_| true);
        diffs.extend(diff(&cpu.grad, &g, |_| true));
        c.report(
            &format!("f32 cross_entropy ls{ls} {rows}x{classes}"),
            diffs,
            n + 1,
            (8 * n + 8 * rows) as u64,
            secs,
        );
    }
}

fn adagrad<D: Dev>(d: &D, c: &mut Checker, s: &Sizes) {
    let n = s.whole;
    let (rows, cols) = (n.div_ceil(4096), 4096);
    let n = rows * cols;
    let mut rng = Rng(53);
    let opt = Adagrad {
        lr: 0.05,
        weight_decay: 0.01,
        initial_accumulator_value: 0.1,
        ..Default::default()
    };
    let dopt = DeviceAdagrad {
        lr: opt.lr,
        lr_decay: opt.lr_decay,
        weight_decay: opt.weight_decay,
        initial_accumulator_value: opt.initial_accumulator_value,
        eps: opt.eps,
        maximize: opt.maximize,
    };
    let ones = Mask::ones(n);
    let p0 = data::<f32>(&mut rng, &ones, -1.0, 1.0);
    let g = data::<f32>(&mut rng, &ones, -2.0, 2.0);
    // dense
    {
        let mut p = p0.clone();
        let mut st = opt.state::<f32>(n);
        let s0 = st.sum.clone();
        opt.step_dense(&mut p, &g, &mut st).unwrap();
        let ((dp, ds), t) = d.adagrad(&dopt, &p0, &s0, &g, None);
        let mut diffs = diff(&p, &dp, |_| true);
        diffs.extend(diff(&st.sum, &ds, |_| true));
        c.report(
            &format!("f32 adagrad dense {n}"),
            diffs,
            2 * n,
            20 * n as u64,
            t,
        );
    }
    // 1% sparse COO with duplicates: every 8th entry repeats an earlier index
    {
        let nnz = (n / 100).max(8);
        let mut idx: Vec<usize> = Vec::with_capacity(nnz);
        for k in 0..nnz {
            if k % 8 == 7 {
                let j = (rng.next() % k as u64) as usize;
                idx.push(idx[j]);
            } else {
                idx.push((rng.next() % n as u64) as usize);
            }
        }
        let vals = data::<f32>(&mut rng, &Mask::ones(nnz), -2.0, 2.0);
        let mut tri = sprs::TriMat::new((rows, cols));
        for (k, &i) in idx.iter().enumerate() {
            tri.add_triplet(i / cols, i % cols, vals[k]);
        }
        let mut p = p0.clone();
        let mut st = opt.state::<f32>(n);
        let s0 = st.sum.clone();
        opt.step_sparse(&mut p, rows, cols, &tri, &mut st).unwrap();
        let ((dp, ds), t) = d.adagrad(&dopt, &p0, &s0, &vals, Some(&idx));
        let mut diffs = diff(&p, &dp, |_| true);
        diffs.extend(diff(&st.sum, &ds, |_| true));
        c.report(
            &format!("f32 adagrad sparse 1% ({nnz} of {n}, dups)"),
            diffs,
            2 * n,
            28 * nnz as u64,
            t,
        );
    }
}

fn run_all<D: Dev>(d: &D, c: &mut Checker, s: &Sizes) {
    let t0 = Instant::now();
    println!(
        "whole-array reductions (2^{:.1} elements, 75% kept)",
        (s.whole as f64).log2()
    );
    whole::<D, f32>(d, c, s.whole);
    whole::<D, f16>(d, c, s.whole);
    println!("per-dim reductions");
    dims::<D, f32>(d, c, s);
    dims::<D, f16>(d, c, s);
    println!("softmax");
    softmax(d, c, s);
    println!("losses");
    losses(d, c, s);
    println!("adagrad");
    adagrad(d, c, s);
    println!(
        "gpu-check: {} cases, {} failed, {:.1} s",
        c.cases,
        c.failures,
        t0.elapsed().as_secs_f64()
    );
}

/// Prints the device (name, driver, compute capability, memory, SMs) and
/// returns its peak memory bandwidth in bytes per second.
fn describe(gpu: &Gpu) -> Option<f64> {
    use cudarc::driver::sys::CUdevice_attribute as A;
    let ctx = gpu.stream().context();
    let attr = |a| ctx.attribute(a).ok();
    let mut drv: std::ffi::c_int = 0;
    // SAFETY: the driver library is loaded (Gpu::new succeeded); `drv` is a
    // valid out-pointer.
    let drv_ok = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut drv) }
        .result()
        .is_ok();
    let (major, minor) = gpu.compute_capability();
    println!(
        "device 0: {} | compute capability {major}.{minor} | driver CUDA {} | {} SMs | {:.1} GiB",
        ctx.name().unwrap_or_else(|e| format!("(name: {e:?})")),
        if drv_ok {
            format!("{}.{}", drv / 1000, (drv % 1000) / 10)
        } else {
            "?".into()
        },
        attr(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).unwrap_or(0),
        ctx.total_mem().unwrap_or(0) as f64 / (1u64 << 30) as f64,
    );
    println!("kernels: {}", gpu.loaded_from().join(", "));
    let clock_khz = attr(A::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE)?;
    let bus_bits = attr(A::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH)?;
    let peak = 2.0 * clock_khz as f64 * 1000.0 * bus_bits as f64 / 8.0;
    println!(
        "memory: {} MHz, {bus_bits}-bit bus -> peak {:.0} GB/s (2 x clock x bus width / 8)",
        clock_khz / 1000,
        peak / 1e9
    );
    (peak > 0.0).then_some(peak)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let small = args.iter().any(|a| a == "--small");
    let emulate = args.iter().any(|a| a == "--emulate");
    let info = args.iter().any(|a| a == "--info");
    if let Some(a) = args
        .iter()
        .find(|a| !["--small", "--emulate", "--info"].contains(&a.as_str()))
    {
        eprintln!("gpu-check: unknown argument {a} (expected --small, --emulate, --info)");
        std::process::exit(1);
    }
    let mut c = Checker {
        peak: None,
        failures: 0,
        cases: 0,
    };
    if emulate {
        #[cfg(feature = "cuda-emulator")]
        {
            println!("gpu-check: host emulator, small sizes (nothing timed)");
            let d = emulated::Emu(maskops::cuda::emu::Emulator::default());
            run_all(&d, &mut c, &Sizes::small());
        }
        #[cfg(not(feature = "cuda-emulator"))]
        {
            eprintln!("gpu-check: --emulate needs the feature cuda-emulator");
            std::process::exit(1);
        }
    } else {
        let s = if small {
            Sizes::small()
        } else {
            Sizes::large()
        };
        let gpu = match Gpu::new(0) {
            Ok(g) => g,
            Err(maskops::Error::CudaUnavailable(why)) => {
                eprintln!("gpu-check: no GPU: {why}");
                std::process::exit(2);
            }
            Err(e) => {
                eprintln!("gpu-check: the CUDA device could not be opened: {e}");
                std::process::exit(1);
            }
        };
        c.peak = describe(&gpu);
        if info {
            return;
        }
        let d = Device {
            gpu,
            iters: s.iters,
        };
        run_all(&d, &mut c, &s);
    }
    std::process::exit(if c.failures == 0 { 0 } else { 1 });
}
