//! The emulated CUDA kernels (kernels/*.cu under `maskops::cuda::emu`,
//! through the launch plans of `maskops::cuda::ops`) against the CPU public
//! API (`MaskedView`, `softmax`, `loss`, `optim`, on the dispatched ISA and on
//! every `*_with(isa, ..)` entry this machine has), on random shapes with
//! poison NaN/inf in the masked-out slots and densities 0, 0.5 and 1.
//!
//! `docs/design.md` promises the same bits on every path: every comparison is `==`
//! on the bits (NaN equals NaN), except where a bound is stated next to the
//! check (see the module docs of each section).
//!
//! By default each test runs a covering subset of its combinations (every
//! pair of shape, density, operation and option values meets at least once;
//! see [`keep`]); `MASKOPS_EMU_EXHAUSTIVE=1`, which CI sets, runs all of them.
#![cfg(feature = "cuda-emulator")]
#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

mod cuda_cases;

use cuda_cases::Dev;
mod shim;
use maskops::backend::Isa;
use maskops::cuda::emu::Emulator;
use maskops::cuda::ops::{self, ElemLoss, Layout, LossReduction, Reduce};
use maskops::cuda::plan::{Backend, DType};
use maskops::loss::{self, CrossEntropy};
use maskops::optim::{Adagrad, Workspace};
use maskops::{Element, Mask, MaskedView};
use shim::reduce::{self as cr, ArgReduction, Reduction};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
    fn f(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// `T` values in `[lo, hi)`, with NaN/±inf in the masked-out slots.
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

fn mask(len: usize, density: f64, seed: u64) -> Mask {
    Mask::random(len, 1.0 - density, seed)
}

/// Bitwise equality through the exact widening to f64 (NaN equals NaN).
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Distance in units in the last place of `T` (through f64; both finite).
fn ulps<T: Element>(a: f64, b: f64) -> u64 {
    if same(a, b) {
        return 0;
    }
    if !a.is_finite() || !b.is_finite() {
        return u64::MAX;
    }
    let key = |v: f64| -> i64 {
        let bits = match T::NAME {
            "f64" => v.to_bits() as i64,
            _ => (v as f32).to_bits() as i32 as i64,
        };
        if bits < 0 {
            i64::MIN - bits
        } else {
            bits
        }
    };
    match T::NAME {
        "f16" | "bf16" => {
            // one ulp of a half type is 2^13 (f16) or 2^16 (bf16) f32 ulps
            let d = key(a).abs_diff(key(b));
            let unit = if T::NAME == "f16" { 1 << 13 } else { 1 << 16 };
            d.div_ceil(unit)
        }
        _ => key(a).abs_diff(key(b)),
    }
}

fn dtype<T: Element>() -> DType {
    match T::NAME {
        "f32" => DType::F32,
        "f64" => DType::F64,
        "f16" => DType::F16,
        "bf16" => DType::Bf16,
        n => panic!("no dtype for {n}"),
    }
}

/// Reads an accumulator-typed buffer (f32, or f64 for f64 data) as f64.
fn read_acc(emu: &Emulator, d: DType, b: &<Emulator as Backend>::Buf) -> Vec<f64> {
    match d.acc() {
        DType::F64 => emu.rd::<f64>(b),
        _ => emu.rd::<f32>(b).into_iter().map(|v| v as f64).collect(),
    }
}

/// Collects mismatches (op, case, index, cpu, cuda) and fails at the end with
/// all of them listed.
#[derive(Default)]
struct Report {
    bad: Vec<String>,
    checked: usize,
}

impl Report {
    /// `==` on bits, or within `bound` ulps of `T` when `bound > 0`.
    fn check<T: Element>(&mut self, what: &str, i: usize, cpu: f64, gpu: f64, bound: u64) {
        self.checked += 1;
        let d = ulps::<T>(cpu, gpu);
        if d > bound && self.bad.len() < 40 {
            self.bad.push(format!(
                "{what} [{i}]: cpu {cpu:e} ({:#x}) cuda {gpu:e} ({:#x}), {d} ulp > {bound}",
                cpu.to_bits(),
                gpu.to_bits()
            ));
        }
    }
    fn finish(self, name: &str) {
        assert!(self.checked > 0, "{name}: nothing compared");
        assert!(
            self.bad.is_empty(),
            "{name}: {} mismatches of {} (first ones):\n{}",
            self.bad.len(),
            self.checked,
            self.bad.join("\n")
        );
    }
}

const DENSITIES: [f64; 3] = [0.0, 0.5, 1.0];

/// `MASKOPS_EMU_EXHAUSTIVE=1` (CI's `.ci/cuda-check.sh` sets it): every
/// combination of shape, density, operation and option below.
fn exhaustive() -> bool {
    static E: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *E.get_or_init(|| std::env::var("MASKOPS_EMU_EXHAUSTIVE").is_ok_and(|v| v.trim() == "1"))
}

/// Whether the combination with factor indices `idx` runs: always in the
/// exhaustive sweep; by default those whose indices sum to 0 mod `k`. When
/// for any two factors of `idx` some third one has at least `k` values (as
/// at every call here), any value of one factor still meets any value of
/// another (all pairs are covered: fix the two, the third's `k` consecutive
/// indices complete the sum), in about `1/k` of the emulated launches.
fn keep(k: usize, idx: &[usize]) -> bool {
    exhaustive() || idx.iter().sum::<usize>() % k == 0
}

/// `(rows, cols)` shapes: odd, not multiples of 32/64, and with `long`
/// one long row and one long column (more than one canonical block; the
/// long column's dim-1 pass would be thousands of emulated rows, skipped).
fn shapes(rng: &mut Rng, long: bool) -> Vec<(usize, usize)> {
    let mut v = vec![(1, 1)];
    if long {
        v.push((3, 4099));
        v.push((4103, 3));
    }
    for _ in 0..2 {
        v.push((rng.range(1, 40) | 1, rng.range(2, 150) | 1));
    }
    v
}

/// The dims checked on a `rows x _` matrix: dim 1 only when the rows are
/// few enough to emulate quickly.
fn dims(rows: usize) -> Vec<usize> {
    if rows > 1000 {
        vec![0]
    } else {
        vec![0, 1]
    }
}

/// The CUDA op and the CPU reduction of the same name.
fn reductions() -> Vec<(Reduce, Reduction, &'static str)> {
    vec![
        (Reduce::Sum, Reduction::Sum, "sum"),
        (Reduce::Mean, Reduction::Mean, "mean"),
        (Reduce::Prod, Reduction::Prod, "prod"),
        (Reduce::Amin, Reduction::Amin, "amin"),
        (Reduce::Amax, Reduction::Amax, "amax"),
        (Reduce::Var(0), Reduction::Var { correction: 0 }, "var0"),
        (Reduce::Var(1), Reduction::Var { correction: 1 }, "var1"),
        (Reduce::Std(1), Reduction::Std { correction: 1 }, "std1"),
        (Reduce::Norm1, Reduction::Norm { p: 1.0 }, "norm1"),
        (Reduce::Norm2, Reduction::Norm { p: 2.0 }, "norm2"),
        (
            Reduce::NormInf,
            Reduction::Norm { p: f64::INFINITY },
            "norminf",
        ),
        (Reduce::LogSumExp, Reduction::LogSumExp, "logsumexp"),
    ]
}

fn isas() -> Vec<Option<Isa>> {
    let mut v = vec![None];
    v.extend(Isa::all_available().into_iter().map(Some));
    v
}

fn reduce_type<T: Element + Default>(seed: u64, rep: &mut Report) {
    let emu = Emulator::default();
    let d = dtype::<T>();
    let mut rng = Rng(seed);
    // the long column only for f32 (the emulated dim-0 pass is the slow part)
    for (si, (rows, cols)) in shapes(&mut rng, T::NAME == "f32").into_iter().enumerate() {
        for (di, &den) in DENSITIES.iter().enumerate() {
            let n = rows * cols;
            let m = mask(n, den, rng.next());
            // prod over long sequences: values near 1 keep it finite
            let (lo, hi) = if rng.next().is_multiple_of(2) {
                (-3.0, 3.0)
            } else {
                (0.5, 1.5)
            };
            let x = data::<T>(&mut rng, &m, lo, hi);
            let view = MaskedView::matrix(&x, &m, rows, cols).unwrap();
            let xb = emu.up(&x);
            let mb = emu.up(m.words());
            for (ri, (cred, cpu_red, name)) in reductions().into_iter().enumerate() {
                if !keep(3, &[ri, si, di]) {
                    continue;
                }
                // bitwise everywhere, f64 logsumexp included: the emulated
                // kernel's f64 `exp`/`log` are the host libm's, like std's; on
                // a device CUDA's f64 exp/log (within 1 ulp) can differ.
                let bound = 0;
                // whole array
                let g = ops::reduce_scalar_f64(&emu, emu.ptr(&xb), d, emu.ptr(&mb), n as u64, cred)
                    .unwrap()
                    .map(|v| T::from_f64(v).to_f64());
                for isa in isas() {
                    let c = match isa {
                        None => cr::reduce(&view, cpu_red),
                        Some(i) => cr::reduce_with(i, &view, cpu_red),
                    }
                    .map(|v| v.to_f64());
                    let what = format!("{} {name} whole {rows}x{cols} d{di} {isa:?}", T::NAME);
                    match (c, g) {
                        (Some(c), Some(g)) => rep.check::<T>(&what, 0, c, g, bound),
                        (None, None) => rep.checked += 1,
                        _ => rep.bad.push(format!("{what}: cpu {c:?} cuda {g:?}")),
                    }
                }
                // per dim
                for dim in dims(rows) {
                    let (seqs, len, layout) = if dim == 1 {
                        (rows, cols, Layout::Rows)
                    } else {
                        (cols, rows, Layout::Cols)
                    };
                    let out = emu.alloc_zeroed(seqs * d.acc().size()).unwrap();
                    let cnt = emu.alloc_zeroed(seqs * 8).unwrap();
                    ops::reduce(
                        &emu,
                        emu.ptr(&xb),
                        d,
                        emu.ptr(&mb),
                        seqs as u64,
                        len as u64,
                        layout,
                        cred,
                        emu.ptr(&out),
                        d.acc(),
                        emu.ptr(&cnt),
                    )
                    .unwrap();
                    let gv = read_acc(&emu, d, &out);
                    let gc = emu.rd::<u64>(&cnt);
                    for isa in isas() {
                        let c = match isa {
                            None => cr::reduce_dim(&view, dim, cpu_red),
                            Some(i) => cr::reduce_dim_with(i, &view, dim, cpu_red),
                        }
                        .unwrap();
                        let what =
                            format!("{} {name} dim{dim} {rows}x{cols} d{di} {isa:?}", T::NAME);
                        for s in 0..seqs {
                            let corr = match cred {
                                Reduce::Var(c) | Reduce::Std(c) => c,
                                _ => 0,
                            };
                            let gk = gc[s] > corr as u64;
                            if c.mask.get(s) != gk {
                                rep.bad.push(format!(
                                    "{what} [{s}]: cpu kept {} cuda count {}",
                                    c.mask.get(s),
                                    gc[s]
                                ));
                                continue;
                            }
                            if gk {
                                let gvs = T::from_f64(gv[s]).to_f64();
                                rep.check::<T>(&what, s, c.values[s].to_f64(), gvs, bound);
                            }
                        }
                    }
                }
            }
            // argmin / argmax
            for max in [false, true] {
                if !keep(2, &[max as usize, si, di]) {
                    continue;
                }
                let op = if max {
                    ArgReduction::Argmax
                } else {
                    ArgReduction::Argmin
                };
                let g = ops::argreduce_scalar(&emu, emu.ptr(&xb), d, emu.ptr(&mb), n as u64, max)
                    .unwrap();
                for dim in dims(rows) {
                    let (seqs, len, layout) = if dim == 1 {
                        (rows, cols, Layout::Rows)
                    } else {
                        (cols, rows, Layout::Cols)
                    };
                    let oi = emu.alloc_zeroed(seqs * 8).unwrap();
                    ops::argreduce(
                        &emu,
                        emu.ptr(&xb),
                        d,
                        emu.ptr(&mb),
                        seqs as u64,
                        len as u64,
                        layout,
                        max,
                        emu.ptr(&oi),
                        0,
                    )
                    .unwrap();
                    let gi = emu.rd::<u64>(&oi);
                    for isa in isas() {
                        let c = match isa {
                            None => cr::arg_dim(&view, dim, op),
                            Some(i) => cr::arg_dim_with(i, &view, dim, op),
                        }
                        .unwrap();
                        for s in 0..seqs {
                            rep.checked += 1;
                            let cv = c.mask.get(s).then_some(c.values[s] as u64);
                            let gv = (gi[s] != u64::MAX).then_some(gi[s]);
                            if cv != gv {
                                rep.bad.push(format!(
                                    "{} {op:?} dim{dim} {rows}x{cols} d{di} {isa:?} [{s}]: cpu {cv:?} cuda {gv:?}",
                                    T::NAME
                                ));
                            }
                        }
                    }
                }
                for isa in isas() {
                    let c = match isa {
                        None => cr::arg(&view, op),
                        Some(i) => cr::arg_with(i, &view, op),
                    };
                    rep.checked += 1;
                    if c != g {
                        rep.bad.push(format!(
                            "{} {op:?} whole {rows}x{cols} d{di} {isa:?}: cpu {c:?} cuda {g:?}",
                            T::NAME
                        ));
                    }
                }
            }
        }
    }
}

#[test]
fn reductions_f32() {
    let mut rep = Report::default();
    reduce_type::<f32>(1, &mut rep);
    rep.finish("reductions f32");
}

#[test]
fn reductions_f64() {
    let mut rep = Report::default();
    reduce_type::<f64>(2, &mut rep);
    rep.finish("reductions f64");
}

#[test]
fn reductions_half_types() {
    let mut rep = Report::default();
    reduce_type::<half::f16>(3, &mut rep);
    reduce_type::<half::bf16>(4, &mut rep);
    rep.finish("reductions f16/bf16");
}

fn softmax_type<T: Element + Default>(seed: u64, rep: &mut Report) {
    let emu = Emulator::default();
    let d = dtype::<T>();
    let mut rng = Rng(seed);
    for (si, (rows, cols)) in shapes(&mut rng, T::NAME == "f32").into_iter().enumerate() {
        for (di, &den) in DENSITIES.iter().enumerate() {
            let n = rows * cols;
            let m = mask(n, den, rng.next());
            let x = data::<T>(&mut rng, &m, -6.0, 6.0);
            let gup = data::<T>(&mut rng, &m, -2.0, 2.0);
            let view = MaskedView::matrix(&x, &m, rows, cols).unwrap();
            let xb = emu.up(&x);
            let mb = emu.up(m.words());
            let gb = emu.up(&gup);
            for dim in dims(rows) {
                for log in [false, true] {
                    if !keep(2, &[dim, log as usize, si, di]) {
                        continue;
                    }
                    let out = emu.alloc_zeroed(n * d.size()).unwrap();
                    let (xp, mp, op) = (emu.ptr(&xb), emu.ptr(&mb), emu.ptr(&out));
                    if dim == 1 {
                        ops::softmax(&emu, xp, d, mp, rows as u64, cols as u64, log, op)
                    } else {
                        ops::softmax_cols(&emu, xp, d, mp, rows as u64, cols as u64, log, op)
                    }
                    .unwrap();
                    let gy: Vec<T> = emu.rd::<T>(&out);
                    let name = if log { "log_softmax" } else { "softmax" };
                    let mut cpu_y = None;
                    for isa in isas() {
                        let c = match (isa, log) {
                            (None, false) => view.softmax(dim),
                            (None, true) => view.log_softmax(dim),
                            (Some(i), _) => cr::softmax_with(i, &view, dim, log),
                        }
                        .unwrap();
                        let what =
                            format!("{} {name} dim{dim} {rows}x{cols} d{di} {isa:?}", T::NAME);
                        for i in 0..n {
                            rep.check::<T>(&what, i, c.values[i].to_f64(), gy[i].to_f64(), 0);
                        }
                        cpu_y.get_or_insert(c);
                    }
                    // backward from the CPU forward output (the same input for both)
                    let y = cpu_y.unwrap();
                    let yb = emu.up(&y.values);
                    let ymb = emu.up(y.mask.words());
                    let dx = emu.alloc_zeroed(n * d.size()).unwrap();
                    let (yp, gp, ymp, dp) =
                        (emu.ptr(&yb), emu.ptr(&gb), emu.ptr(&ymb), emu.ptr(&dx));
                    if dim == 1 {
                        ops::softmax_backward(
                            &emu,
                            yp,
                            gp,
                            d,
                            ymp,
                            rows as u64,
                            cols as u64,
                            log,
                            dp,
                        )
                    } else {
                        ops::softmax_cols_backward(
                            &emu,
                            yp,
                            gp,
                            d,
                            ymp,
                            rows as u64,
                            cols as u64,
                            log,
                            dp,
                        )
                    }
                    .unwrap();
                    let gdx: Vec<T> = emu.rd::<T>(&dx);
                    let yv = MaskedView::matrix(&y.values, &y.mask, rows, cols).unwrap();
                    for isa in isas() {
                        let c = match (isa, log) {
                            (None, false) => maskops::softmax::softmax_backward(&yv, &gup, dim),
                            (None, true) => maskops::softmax::log_softmax_backward(&yv, &gup, dim),
                            (Some(i), _) => cr::softmax_backward_with(i, &yv, &gup, dim, log),
                        }
                        .unwrap();
                        let what = format!(
                            "{} {name} bwd dim{dim} {rows}x{cols} d{di} {isa:?}",
                            T::NAME
                        );
                        for i in 0..n {
                            rep.check::<T>(&what, i, c.values[i].to_f64(), gdx[i].to_f64(), 0);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn softmax_f32() {
    let mut rep = Report::default();
    softmax_type::<f32>(11, &mut rep);
    rep.finish("softmax f32");
}

#[test]
fn softmax_half_types() {
    let mut rep = Report::default();
    softmax_type::<half::f16>(12, &mut rep);
    softmax_type::<half::bf16>(13, &mut rep);
    rep.finish("softmax f16/bf16");
}

fn losses_type<T: maskops::Float + Default>(seed: u64, rep: &mut Report) {
    let emu = Emulator::default();
    let d = dtype::<T>();
    let mut rng = Rng(seed);
    let lens = [1usize, 31, 97, 1000, 4097 + 64 * 3 + 5, 9001];
    for (li, &n) in lens.iter().enumerate() {
        for (di, &den) in DENSITIES.iter().enumerate() {
            let m = mask(n, den, rng.next());
            let x = data::<T>(&mut rng, &m, -3.0, 3.0);
            let y = data::<T>(&mut rng, &m, -3.0, 3.0);
            let xb = emu.up(&x);
            let yb = emu.up(&y);
            let mb = emu.up(m.words());
            let kinds = [
                ElemLoss::Mse,
                ElemLoss::L1,
                ElemLoss::Huber(1.0),
                ElemLoss::Huber(0.3),
                ElemLoss::SmoothL1(0.7),
                ElemLoss::SmoothL1(0.0),
            ];
            for (ki, kind) in kinds.into_iter().enumerate() {
                for (ri, (gr, cr_)) in [
                    (LossReduction::None, loss::Reduction::None),
                    (LossReduction::Sum, loss::Reduction::Sum),
                    (LossReduction::Mean, loss::Reduction::Mean),
                ]
                .into_iter()
                .enumerate()
                {
                    if !keep(3, &[ki, ri, li, di]) {
                        continue;
                    }
                    let grad = emu.alloc_zeroed(n * d.size()).unwrap();
                    let vals = emu.alloc_zeroed(n * d.size()).unwrap();
                    let out = emu.alloc_zeroed(8).unwrap();
                    ops::loss_elementwise(
                        &emu,
                        d,
                        kind,
                        emu.ptr(&xb),
                        emu.ptr(&yb),
                        emu.ptr(&mb),
                        n as u64,
                        m.count_ones() as u64,
                        gr,
                        emu.ptr(&grad),
                        if gr == LossReduction::None {
                            emu.ptr(&vals)
                        } else {
                            0
                        },
                        emu.ptr(&out),
                    )
                    .unwrap();
                    let gg: Vec<T> = emu.rd::<T>(&grad);
                    let gvals: Vec<T> = if gr == LossReduction::None {
                        emu.rd::<T>(&vals)
                    } else {
                        vec![emu.rd::<T>(&out)[0]]
                    };
                    for isa in isas() {
                        let i = isa.unwrap_or_else(maskops::backend::isa);
                        let c = match (isa, kind) {
                            (None, ElemLoss::Mse) => loss::mse(&x, &y, &m, cr_),
                            (None, ElemLoss::L1) => loss::l1(&x, &y, &m, cr_),
                            (None, ElemLoss::Huber(dl)) => loss::huber(&x, &y, &m, dl, cr_),
                            (None, ElemLoss::SmoothL1(b)) => loss::smooth_l1(&x, &y, &m, b, cr_),
                            (_, ElemLoss::Mse) => shim::loss::mse_with(i, &x, &y, &m, cr_),
                            (_, ElemLoss::L1) => shim::loss::l1_with(i, &x, &y, &m, cr_),
                            (_, ElemLoss::Huber(dl)) => {
                                shim::loss::huber_with(i, &x, &y, &m, dl, cr_)
                            }
                            (_, ElemLoss::SmoothL1(b)) => {
                                shim::loss::smooth_l1_with(i, &x, &y, &m, b, cr_)
                            }
                        }
                        .unwrap();
                        let what = format!("{} {kind:?} {gr:?} n{n} d{di} {isa:?}", T::NAME);
                        assert_eq!(c.value.len(), gvals.len(), "{what}: value length");
                        for k in 0..gvals.len() {
                            rep.check::<T>(
                                &format!("{what} value"),
                                k,
                                c.value[k].to_f64(),
                                gvals[k].to_f64(),
                                0,
                            );
                        }
                        for k in 0..n {
                            rep.check::<T>(
                                &format!("{what} grad"),
                                k,
                                c.grad[k].to_f64(),
                                gg[k].to_f64(),
                                0,
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn elementwise_losses_f32_f64() {
    let mut rep = Report::default();
    losses_type::<f32>(21, &mut rep);
    losses_type::<f64>(22, &mut rep);
    rep.finish("elementwise losses");
}

#[test]
fn cross_entropy_f32() {
    let emu = Emulator::default();
    let mut rep = Report::default();
    let mut rng = Rng(31);
    let shapes = [
        (1usize, 1usize),
        (7, 3),
        (33, 10),
        (65, 129),
        (3, 4099),
        (5, 1),
    ];
    for (si, &(rows, classes)) in shapes.iter().enumerate() {
        for (ii, ignore_frac) in [0.0, 0.5, 1.0].into_iter().enumerate() {
            let n = rows * classes;
            let x: Vec<f32> = (0..n).map(|_| rng.f(-8.0, 8.0) as f32).collect();
            let ignore = -1i64;
            let t: Vec<i64> = (0..rows)
                .map(|_| {
                    if rng.unit() < ignore_frac {
                        ignore
                    } else {
                        rng.range(0, classes) as i64
                    }
                })
                .collect();
            let w: Vec<f32> = (0..classes).map(|_| rng.f(0.1, 2.0) as f32).collect();
            let xb = emu.up(&x);
            let tb = emu.up(&t);
            let wb = emu.up(&w);
            for weighted in [false, true] {
                for (lsi, ls) in [0.0, 0.1].into_iter().enumerate() {
                    for (ri, (gr, cr_)) in [
                        (LossReduction::None, loss::Reduction::None),
                        (LossReduction::Sum, loss::Reduction::Sum),
                        (LossReduction::Mean, loss::Reduction::Mean),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        if !keep(3, &[weighted as usize, lsi, ri, si, ii]) {
                            continue;
                        }
                        let weight_sum = if weighted {
                            w.iter().fold(0.0f64, |a, &v| a + v as f64)
                        } else {
                            classes as f64
                        };
                        let a = ops::CeArgs {
                            ignore_index: ignore,
                            weight: if weighted { emu.ptr(&wb) } else { 0 },
                            weight_sum,
                            label_smoothing: ls,
                            reduction: gr,
                        };
                        let grad = emu.alloc_zeroed(n * 4).unwrap();
                        let rowv = emu.alloc_zeroed(rows * 4).unwrap();
                        let out = emu.alloc_zeroed(4).unwrap();
                        ops::cross_entropy(
                            &emu,
                            emu.ptr(&xb),
                            rows as u64,
                            classes as u64,
                            emu.ptr(&tb),
                            &a,
                            emu.ptr(&grad),
                            emu.ptr(&rowv),
                            emu.ptr(&out),
                        )
                        .unwrap();
                        let gg = emu.rd::<f32>(&grad);
                        let gv = if gr == LossReduction::None {
                            emu.rd::<f32>(&rowv)
                        } else {
                            emu.rd::<f32>(&out)
                        };
                        let opts = CrossEntropy {
                            ignore_index: ignore,
                            weight: weighted.then(|| w.clone()),
                            label_smoothing: ls,
                            reduction: cr_,
                        };
                        for isa in isas() {
                            let c = match isa {
                                None => loss::cross_entropy(&x, rows, classes, &t, &opts),
                                Some(i) => {
                                    shim::loss::cross_entropy_with(i, &x, rows, classes, &t, &opts)
                                }
                            }
                            .unwrap();
                            let what = format!(
                                "ce {rows}x{classes} ign{ignore_frac} w{weighted} ls{ls} {gr:?} {isa:?}"
                            );
                            for k in 0..c.value.len() {
                                rep.check::<f32>(
                                    &format!("{what} value"),
                                    k,
                                    c.value[k] as f64,
                                    gv[k] as f64,
                                    0,
                                );
                            }
                            for k in 0..n {
                                rep.check::<f32>(
                                    &format!("{what} grad"),
                                    k,
                                    c.grad[k] as f64,
                                    gg[k] as f64,
                                    0,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    rep.finish("cross-entropy");
}

fn adagrad_type<T: maskops::optim::AdagradElement<State = T> + maskops::Float + Default>(
    seed: u64,
    rep: &mut Report,
) {
    let emu = Emulator::default();
    let d = dtype::<T>();
    let mut rng = Rng(seed);
    let hps = [
        Adagrad::default(),
        Adagrad {
            lr: 0.05,
            lr_decay: 0.01,
            weight_decay: 0.1,
            initial_accumulator_value: 0.2,
            eps: 1e-8,
            maximize: false,
        },
        Adagrad {
            lr: 0.3,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-6,
            maximize: true,
        },
    ];
    for (hi, opt) in hps.iter().enumerate() {
        for (si, &(rows, cols)) in [(1usize, 1usize), (7, 13), (3, 101)].iter().enumerate() {
            let n = rows * cols;
            for (di, &den) in DENSITIES.iter().enumerate() {
                if !keep(3, &[hi, si, di]) {
                    continue;
                }
                let p0 = data::<T>(&mut rng, &Mask::ones(n), -1.0, 1.0);
                // dense / masked
                for masked in [false, true] {
                    let mut p = p0.clone();
                    let mut st = opt.state::<T>(n);
                    let pb = emu.up(&p0);
                    let sb = emu.up(&st.sum);
                    for step in 1..=2u64 {
                        let m = if masked {
                            mask(n, den, rng.next())
                        } else {
                            Mask::ones(n)
                        };
                        let g = data::<T>(&mut rng, &m, -2.0, 2.0);
                        if masked {
                            opt.step_masked(&mut p, &MaskedView::new(&g, &m).unwrap(), &mut st)
                                .unwrap();
                        } else {
                            opt.step_dense(&mut p, &g, &mut st).unwrap();
                        }
                        let h = ops::AdagradStep::new(
                            opt.lr,
                            opt.lr_decay,
                            opt.weight_decay,
                            opt.eps,
                            opt.maximize,
                            step,
                        );
                        let gb = emu.up(&g);
                        let mb = emu.up(m.words());
                        ops::adagrad_dense(
                            &emu,
                            d,
                            emu.ptr(&pb),
                            emu.ptr(&sb),
                            emu.ptr(&gb),
                            if masked { emu.ptr(&mb) } else { 0 },
                            n as u64,
                            &h,
                        )
                        .unwrap();
                    }
                    let what = format!(
                        "{} adagrad masked={masked} hp{hi} {rows}x{cols} d{di}",
                        T::NAME
                    );
                    let (gp, gs) = (emu.rd::<T>(&pb), emu.rd::<T>(&sb));
                    for k in 0..n {
                        rep.check::<T>(
                            &format!("{what} param"),
                            k,
                            p[k].to_f64(),
                            gp[k].to_f64(),
                            0,
                        );
                        rep.check::<T>(
                            &format!("{what} sum"),
                            k,
                            st.sum[k].to_f64(),
                            gs[k].to_f64(),
                            0,
                        );
                    }
                }
                // sparse COO with duplicates, and rows with duplicates
                let nnz = ((n as f64 * den * 1.5) as usize).max(1);
                let ri: Vec<usize> = (0..nnz).map(|_| rng.range(0, rows)).collect();
                let ci: Vec<usize> = (0..nnz).map(|_| rng.range(0, cols)).collect();
                let vals = data::<T>(&mut rng, &Mask::ones(nnz), -2.0, 2.0);
                {
                    let mut p = p0.clone();
                    let mut st = opt.state::<T>(n);
                    let pb = emu.up(&p0);
                    let sb = emu.up(&st.sum);
                    let mut tri = sprs::TriMat::new((rows, cols));
                    for k in 0..nnz {
                        tri.add_triplet(ri[k], ci[k], vals[k]);
                    }
                    let idx: Vec<u64> = (0..nnz).map(|k| (ri[k] * cols + ci[k]) as u64).collect();
                    let ib = emu.up(&idx);
                    let vb = emu.up(&vals);
                    for step in 1..=2u64 {
                        opt.step_sparse(&mut p, rows, cols, &tri, &mut st).unwrap();
                        let h = ops::AdagradStep::new(
                            opt.lr,
                            opt.lr_decay,
                            opt.weight_decay,
                            opt.eps,
                            opt.maximize,
                            step,
                        );
                        ops::adagrad_sparse(
                            &emu,
                            d,
                            emu.ptr(&pb),
                            emu.ptr(&sb),
                            emu.ptr(&ib),
                            emu.ptr(&vb),
                            nnz as u64,
                            &h,
                        )
                        .unwrap();
                    }
                    let what = format!("{} adagrad coo hp{hi} {rows}x{cols} nnz{nnz}", T::NAME);
                    let (gp, gs) = (emu.rd::<T>(&pb), emu.rd::<T>(&sb));
                    for k in 0..n {
                        rep.check::<T>(
                            &format!("{what} param"),
                            k,
                            p[k].to_f64(),
                            gp[k].to_f64(),
                            0,
                        );
                        rep.check::<T>(
                            &format!("{what} sum"),
                            k,
                            st.sum[k].to_f64(),
                            gs[k].to_f64(),
                            0,
                        );
                    }
                }
                {
                    let nr = (rows as f64 * den * 1.5) as usize + 1;
                    let rix: Vec<usize> = (0..nr).map(|_| rng.range(0, rows)).collect();
                    let rv = data::<T>(&mut rng, &Mask::ones(nr * cols), -2.0, 2.0);
                    let mut p = p0.clone();
                    let mut st = opt.state::<T>(n);
                    let pb = emu.up(&p0);
                    let sb = emu.up(&st.sum);
                    let idx: Vec<u64> = rix.iter().map(|&r| r as u64).collect();
                    let ib = emu.up(&idx);
                    let vb = emu.up(&rv);
                    let mut ws = Workspace::new();
                    for step in 1..=2u64 {
                        if step == 1 {
                            opt.step_rows(&mut p, rows, cols, &rix, &rv, &mut st)
                                .unwrap();
                        } else {
                            let isa = *Isa::all_available().last().unwrap();
                            opt.step_rows_with(
                                isa, &mut ws, &mut p, rows, cols, &rix, &rv, &mut st,
                            )
                            .unwrap();
                        }
                        let h = ops::AdagradStep::new(
                            opt.lr,
                            opt.lr_decay,
                            opt.weight_decay,
                            opt.eps,
                            opt.maximize,
                            step,
                        );
                        ops::adagrad_rows(
                            &emu,
                            d,
                            emu.ptr(&pb),
                            emu.ptr(&sb),
                            cols as u64,
                            emu.ptr(&ib),
                            emu.ptr(&vb),
                            nr as u64,
                            &h,
                        )
                        .unwrap();
                    }
                    let what = format!("{} adagrad rows hp{hi} {rows}x{cols} nr{nr}", T::NAME);
                    let (gp, gs) = (emu.rd::<T>(&pb), emu.rd::<T>(&sb));
                    for k in 0..n {
                        rep.check::<T>(
                            &format!("{what} param"),
                            k,
                            p[k].to_f64(),
                            gp[k].to_f64(),
                            0,
                        );
                        rep.check::<T>(
                            &format!("{what} sum"),
                            k,
                            st.sum[k].to_f64(),
                            gs[k].to_f64(),
                            0,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn adagrad_f32_f64() {
    let mut rep = Report::default();
    adagrad_type::<f32>(41, &mut rep);
    adagrad_type::<f64>(42, &mut rep);
    rep.finish("adagrad");
}
