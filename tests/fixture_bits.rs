//! Result bits saved on one machine, compared on every other: the NEON room
//! (aarch64, run under qemu in CI) and every x86 room must give the bits
//! that `tests/fixtures/bits.txt` holds for the same inputs.
//!
//! Each line of the fixture is `name hash`: an FNV-1a hash of the result's
//! bits (NaN counted as one class: payloads may differ between hardware and
//! software half conversions) for one op on one deterministic input. The
//! ops are those whose bits the canonical order fixes on every target:
//! reductions (whole, dim 0, dim 1), softmax, log-softmax and their
//! backward, for all four element types, except where `f64` goes through
//! the platform's `exp`/`ln`/`pow` (`logsumexp`, softmax, norms other than
//! 1, 2 and the infinities), which the design leaves to the C library; and
//! three Adagrad steps (dense, masked, rows with duplicates; `f32` and
//! `f64`, weight decay and `maximize` on and off); the losses' values and
//! gradients (MSE, L1, Huber, smooth L1 for `f32` and `f64`; BCE with
//! logits and cross-entropy — ignore_index, weights, label smoothing, a row
//! mask — for `f32`, whose `exp`/`ln` are the crate's); and the
//! elementwise ops of `MaskedArray` (every unary op, every binary op
//! against a masked array, a dense slice, a row and a column vector and a
//! scalar, allocating and in place; `f64` and the general `pow` without
//! the ops that call the platform's `exp`/`ln`/`pow`).
//!
//! `MASKOPS_WRITE_FIXTURE=1 cargo test --release --test fixture_bits`
//! rewrites the file (from the portable room) after a deliberate change of
//! bits; say why in the commit.

mod shim;
use half::{bf16, f16};
use maskops::backend::{with_isa, Isa};
use maskops::loss::{self, CrossEntropy, Loss, Reduction as LossReduction};
use maskops::optim::{Adagrad, AdagradElement};
use maskops::{
    BinaryOp, Element, Float, Mask, MaskPolicy, MaskedArray, MaskedVec, MaskedView, Operand,
    UnaryOp,
};
use shim::reduce::{reduce_dim_with, reduce_with, softmax_backward_with, softmax_with, Reduction};
use std::collections::BTreeMap;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bits.txt");

const REDUCTIONS: [(&str, Reduction, bool); 13] = [
    ("sum", Reduction::Sum, true),
    ("mean", Reduction::Mean, true),
    ("prod", Reduction::Prod, true),
    ("amin", Reduction::Amin, true),
    ("amax", Reduction::Amax, true),
    ("var0", Reduction::Var { correction: 0 }, true),
    ("var1", Reduction::Var { correction: 1 }, true),
    ("std1", Reduction::Std { correction: 1 }, true),
    ("norm2", Reduction::Norm { p: 2.0 }, true),
    ("norm1", Reduction::Norm { p: 1.0 }, true),
    ("norminf", Reduction::Norm { p: f64::INFINITY }, true),
    ("norm3", Reduction::Norm { p: 3.0 }, false),
    ("logsumexp", Reduction::LogSumExp, false),
];

struct Fnv(u64);
impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn put(&mut self, v: u64) {
        for b in v.to_le_bytes() {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn val<T: Element>(&mut self, v: Option<T>) {
        match v {
            None => self.put(1),
            Some(x) if x.is_nan() => self.put(2),
            Some(x) => self.put(x.to_f64().to_bits()),
        }
    }
    fn vec<T: Element>(&mut self, v: &MaskedVec<T>) {
        self.put(v.values.len() as u64);
        for (i, &x) in v.values.iter().enumerate() {
            self.val(v.mask.get(i).then_some(x));
        }
    }
}

/// A deterministic input: values of mixed sign and magnitude, NaN and inf
/// under cleared mask bits, every 13th row fully masked, the data starting
/// one element into its buffer.
fn input<T: Element>(rows: usize, cols: usize, seed: u64) -> (Vec<T>, Mask) {
    let n = rows * cols;
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut keep = Vec::with_capacity(n);
    let mut data = vec![T::from_f64(0.0)];
    for i in 0..n {
        let r = next();
        let k = r % 5 != 0 && (i / cols.max(1)) % 13 != 12;
        let mag = [0.01, 1.0, 3.0, 40.0][(r >> 8) as usize % 4];
        let v = ((r >> 16) % 20001) as f64 / 10000.0 - 1.0;
        keep.push(k);
        data.push(T::from_f64(if k {
            v * mag
        } else {
            [f64::NAN, f64::INFINITY, -1e30, 7.0][(r >> 40) as usize % 4]
        }));
    }
    (data, Mask::from_bools(&keep))
}

fn results<T: Element>(isa: Isa, out: &mut BTreeMap<String, u64>) {
    let f64_ = T::NAME == "f64";
    for &(rows, cols, seed) in &[(1usize, 4099usize, 1u64), (37, 301, 2), (300, 65, 3)] {
        let (buf, m) = input::<T>(rows, cols, seed);
        let x = &buf[1..];
        let v = MaskedView::matrix(x, &m, rows, cols).unwrap();
        let tag = |what: &str| format!("{} {rows}x{cols} {what}", T::NAME);
        for &(name, op, everywhere) in &REDUCTIONS {
            if f64_ && !everywhere {
                continue;
            }
            let mut h = Fnv::new();
            h.val(reduce_with(isa, &MaskedView::new(x, &m).unwrap(), op));
            out.insert(tag(&format!("{name} whole")), h.0);
            for dim in 0..2 {
                let mut h = Fnv::new();
                h.vec(&reduce_dim_with(isa, &v, dim, op).unwrap());
                out.insert(tag(&format!("{name} dim{dim}")), h.0);
            }
        }
        if f64_ {
            continue;
        }
        for dim in 0..2 {
            for log in [false, true] {
                let s = softmax_with(isa, &v, dim, log).unwrap();
                let mut h = Fnv::new();
                h.vec(&s);
                let name = if log { "log_softmax" } else { "softmax" };
                out.insert(tag(&format!("{name} dim{dim}")), h.0);
                let g: Vec<T> = (0..x.len())
                    .map(|i| T::from_f64(((i * 7919) % 201) as f64 / 100.0 - 1.0))
                    .collect();
                let sv = MaskedView::matrix(&s.values, &s.mask, rows, cols).unwrap();
                let b = softmax_backward_with(isa, &sv, &g, dim, log).unwrap();
                let mut h = Fnv::new();
                h.vec(&b);
                out.insert(tag(&format!("{name} backward dim{dim}")), h.0);
            }
        }
    }
}

/// One Adagrad step of some form on a parameter and its state.
type Step<'a, P> =
    dyn Fn(&mut [P], &mut maskops::optim::AdagradState<<P as AdagradElement>::State>) + 'a;

/// Three steps of each Adagrad form on a 61 x 37 table.
fn adagrad<P: AdagradElement + Element>(isa: Isa, out: &mut BTreeMap<String, u64>)
where
    P::State: Element,
{
    let (rows, cols) = (61usize, 37usize);
    let n = rows * cols;
    for (wd, maximize) in [(0.0, false), (0.01, true)] {
        let opt = Adagrad {
            lr: 0.05,
            lr_decay: 0.001,
            weight_decay: wd,
            maximize,
            ..Adagrad::default()
        };
        let (p0, _) = input::<P>(rows, cols, 7);
        let (g, m) = input::<P>(rows, cols, 8);
        let p0: Vec<P> = p0[1..]
            .iter()
            .map(|v| {
                if v.is_nan() || v.to_f64().abs() > 1e3 {
                    P::from_f64(0.5)
                } else {
                    *v
                }
            })
            .collect();
        let g = &g[1..];
        let ids: Vec<usize> = (0..90).map(|k| (k * 37 + k / 3) % rows).collect();
        let gr: Vec<P> = (0..ids.len() * cols)
            .map(|i| P::from_f64(((i * 7919) % 401) as f64 / 200.0 - 1.0))
            .collect();
        let forms: [(&str, &Step<'_, P>); 3] = [
            ("dense", &|p, s| {
                let dense: Vec<P> = g
                    .iter()
                    .map(|v| {
                        if v.to_f64().is_finite() {
                            *v
                        } else {
                            P::from_f64(0.25)
                        }
                    })
                    .collect();
                opt.step_dense(p, &dense, s).unwrap()
            }),
            ("masked", &|p, s| {
                opt.step_masked(p, &MaskedView::new(g, &m).unwrap(), s)
                    .unwrap()
            }),
            ("rows", &|p, s| {
                opt.step_rows(p, rows, cols, &ids, &gr, s).unwrap()
            }),
        ];
        for (name, step) in forms {
            let mut p = p0.clone();
            let mut s = opt.state::<P::State>(n);
            with_isa(isa, || {
                for _ in 0..3 {
                    step(&mut p, &mut s);
                }
            });
            let mut h = Fnv::new();
            for v in &p {
                h.val(Some(*v));
            }
            for v in &s.sum {
                h.val(Some(*v));
            }
            out.insert(
                format!("{} adagrad {name} wd {wd} maximize {maximize}", P::NAME),
                h.0,
            );
        }
    }
}

/// Finite values for the inputs that take no mask (logits, targets):
/// non-finite or huge entries of [`input`] become `0.5`.
fn finite<T: Element>(v: &[T]) -> Vec<T> {
    v.iter()
        .map(|v| {
            if v.is_nan() || v.to_f64().abs() > 1e3 {
                T::from_f64(0.5)
            } else {
                *v
            }
        })
        .collect()
}

fn hash_loss<T: Element>(l: &Loss<T>) -> u64 {
    let mut h = Fnv::new();
    h.put(l.value.len() as u64);
    for v in &l.value {
        h.val(Some(*v));
    }
    h.put(l.grad.len() as u64);
    for v in &l.grad {
        h.val(Some(*v));
    }
    h.0
}

const LOSS_REDUCTIONS: [(&str, LossReduction); 3] = [
    ("none", LossReduction::None),
    ("sum", LossReduction::Sum),
    ("mean", LossReduction::Mean),
];

/// The elementwise losses on masked inputs (poison under cleared bits) of
/// one and three canonical blocks with tails; BCE (`f32` only) with and
/// without `pos_weight`.
fn losses<T: Float>(isa: Isa, out: &mut BTreeMap<String, u64>) {
    let f32_ = T::NAME == "f32";
    for &(n, seed) in &[(4099usize, 11u64), (11137, 12)] {
        let (x, m) = input::<T>(1, n, seed);
        let x = &x[1..];
        let (y, _) = input::<T>(1, n, seed + 100);
        let y = finite(&y[1..]);
        // BCE targets in [0, 1], some exactly 0 and 1
        let t: Vec<T> = y
            .iter()
            .enumerate()
            .map(|(i, v)| match i % 7 {
                0 => T::from_f64(0.0),
                1 => T::from_f64(1.0),
                _ => T::from_f64((v.to_f64().abs() / 40.0).min(1.0)),
            })
            .collect();
        let pw: Vec<T> = (0..n)
            .map(|i| T::from_f64(0.25 + (i % 11) as f64 * 0.3))
            .collect();
        for &(rname, red) in &LOSS_REDUCTIONS {
            let mut put = |what: &str, l: Loss<T>| {
                out.insert(
                    format!("{} loss {what} n{n} {rname}", T::NAME),
                    hash_loss(&l),
                );
            };
            with_isa(isa, || {
                put("mse", loss::mse(x, &y, &m, red).unwrap());
                put("l1", loss::l1(x, &y, &m, red).unwrap());
                put("huber1", loss::huber(x, &y, &m, 1.0, red).unwrap());
                put("huber0.05", loss::huber(x, &y, &m, 0.05, red).unwrap());
                put("smooth_l1", loss::smooth_l1(x, &y, &m, 0.5, red).unwrap());
                if f32_ {
                    put("bce", loss::bce_with_logits(x, &t, &m, None, red).unwrap());
                    let l = loss::bce_with_logits(x, &t, &m, Some(&pw), red).unwrap();
                    put("bce pos_weight", l);
                }
            });
        }
    }
}

/// Cross-entropy (`f32`): rows of a few classes and rows longer than a
/// canonical block; targets with ignored rows; weights, smoothing, a row
/// mask.
fn cross_entropy(isa: Isa, out: &mut BTreeMap<String, u64>) {
    for &(rows, classes, seed) in &[(300usize, 65usize, 21u64), (37, 301, 22), (3, 9001, 23)] {
        let (x, _) = input::<f32>(rows, classes, seed);
        let x = finite(&x[1..]);
        let targets: Vec<i64> = (0..rows)
            .map(|r| match r % 9 {
                4 => -1,
                7 => -100,
                _ => ((r * 7919 + 3) % classes) as i64,
            })
            .collect();
        let weight: Vec<f32> = (0..classes).map(|c| 0.5 + (c % 5) as f32 * 0.25).collect();
        let row_mask = Mask::from_bools(&(0..rows).map(|r| r % 5 != 3).collect::<Vec<_>>());
        for &(rname, reduction) in &LOSS_REDUCTIONS {
            let cases: [(&str, CrossEntropy<f32>); 5] = [
                ("default", CrossEntropy::default()),
                (
                    "ignore-1",
                    CrossEntropy {
                        ignore_index: -1,
                        ..Default::default()
                    },
                ),
                (
                    "weight",
                    CrossEntropy {
                        ignore_index: -1,
                        weight: Some(weight.clone()),
                        ..Default::default()
                    },
                ),
                (
                    "smooth",
                    CrossEntropy {
                        ignore_index: -1,
                        label_smoothing: 0.1,
                        ..Default::default()
                    },
                ),
                (
                    "weight smooth",
                    CrossEntropy {
                        ignore_index: -1,
                        weight: Some(weight.clone()),
                        label_smoothing: 0.2,
                        ..Default::default()
                    },
                ),
            ];
            for (name, opts) in cases {
                let opts = CrossEntropy { reduction, ..opts };
                // the negative targets are this case's ignore_index
                let targets: Vec<i64> = targets
                    .iter()
                    .map(|&t| if t < 0 { opts.ignore_index } else { t })
                    .collect();
                let tag = |what: &str| format!("f32 cross_entropy {rows}x{classes} {what} {rname}");
                let l = with_isa(isa, || {
                    loss::cross_entropy(&x, rows, classes, &targets, &opts).unwrap()
                });
                out.insert(tag(name), hash_loss(&l));
                let l = with_isa(isa, || {
                    loss::cross_entropy_masked(&x, rows, classes, &targets, &row_mask, &opts)
                        .unwrap()
                });
                out.insert(tag(&format!("{name} row_mask")), hash_loss(&l));
            }
        }
    }
}

/// Every value's bits (NaN as a class) and the mask.
fn hash_array<T: Float>(a: &MaskedArray<T>, kept_only: bool) -> u64 {
    let mut h = Fnv::new();
    h.put(a.len() as u64);
    for (i, &v) in a.values().iter().enumerate() {
        let kept = a.mask().get(i);
        h.put(kept as u64);
        if kept || !kept_only {
            h.val(Some(v));
        }
    }
    h.0
}

/// The elementwise ops of `MaskedArray` on masked matrices (poison under
/// cleared bits): allocating (masked-out results `0`) and in place
/// (masked-out slots keep their bits).
fn elementwise<T: Float>(isa: Isa, out: &mut BTreeMap<String, u64>) {
    let f32_ = T::NAME == "f32";
    let c = T::from_f64;
    for &(rows, cols, seed) in &[(1usize, 4099usize, 31u64), (37, 301, 32)] {
        let (x, m) = input::<T>(rows, cols, seed);
        let a = MaskedArray::matrix(x[1..].to_vec(), m, rows, cols).unwrap();
        let (y, my) = input::<T>(rows, cols, seed + 100);
        let b = MaskedArray::matrix(y[1..].to_vec(), my, rows, cols).unwrap();
        let dense = finite(&y[1..]);
        let row: Vec<T> = (0..cols)
            .map(|j| c(((j % 9) as f64 - 4.0) * 0.75))
            .collect();
        let col: Vec<T> = (0..rows).map(|i| c(((i % 7) as f64 - 3.0) * 1.5)).collect();
        let tag = |what: &str| format!("{} array {rows}x{cols} {what}", T::NAME);
        let mut unary: Vec<(String, UnaryOp<T>)> = vec![
            ("neg".into(), UnaryOp::Neg),
            ("abs".into(), UnaryOp::Abs),
            ("sqrt".into(), UnaryOp::Sqrt),
            ("add_scalar".into(), UnaryOp::AddScalar(c(1.5))),
            ("mul_scalar".into(), UnaryOp::MulScalar(c(-2.5))),
            ("clamp".into(), UnaryOp::Clamp(c(-0.5), c(0.75))),
            ("clamp inverted".into(), UnaryOp::Clamp(c(1.0), c(-1.0))),
        ];
        for p in [0.5, 1.0, 2.0, 3.0, -0.5, -1.0, -2.0] {
            unary.push((format!("pow {p}"), UnaryOp::Pow(c(p))));
        }
        if f32_ {
            unary.push(("exp".into(), UnaryOp::Exp));
            unary.push(("log".into(), UnaryOp::Log));
        }
        for (name, op) in unary {
            let r = a.map_with(isa, op).unwrap();
            out.insert(tag(&name), hash_array(&r, true));
            let mut r = a.clone();
            r.map_assign_with(isa, op).unwrap();
            out.insert(tag(&format!("{name} assign")), hash_array(&r, false));
        }
        let ops = [
            ("add", BinaryOp::Add),
            ("sub", BinaryOp::Sub),
            ("mul", BinaryOp::Mul),
            ("div", BinaryOp::Div),
            ("maximum", BinaryOp::Maximum),
            ("minimum", BinaryOp::Minimum),
        ];
        for (name, op) in ops {
            let a2 = MaskedArray::matrix(y[1..].to_vec(), a.mask().clone(), rows, cols).unwrap();
            let rhs: [(&str, Operand<'_, T>, MaskPolicy); 6] = [
                ("array", Operand::Array(&a2), MaskPolicy::Match),
                ("array intersect", Operand::Array(&b), MaskPolicy::Intersect),
                ("dense", Operand::Dense(&dense), MaskPolicy::Match),
                ("row", Operand::Row(&row), MaskPolicy::Match),
                ("col", Operand::Col(&col), MaskPolicy::Match),
                ("scalar", Operand::Scalar(c(-0.75)), MaskPolicy::Match),
            ];
            for (rname, r, policy) in rhs {
                let v = a.binary_with(isa, op, r, policy).unwrap();
                out.insert(tag(&format!("{name} {rname}")), hash_array(&v, true));
                let mut v = a.clone();
                v.binary_assign_with(isa, op, r, policy).unwrap();
                let what = format!("{name} {rname} assign");
                out.insert(tag(&what), hash_array(&v, false));
            }
        }
    }
}

fn all(isa: Isa) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    adagrad::<f32>(isa, &mut m);
    adagrad::<f64>(isa, &mut m);
    losses::<f32>(isa, &mut m);
    losses::<f64>(isa, &mut m);
    cross_entropy(isa, &mut m);
    elementwise::<f32>(isa, &mut m);
    elementwise::<f64>(isa, &mut m);
    results::<f32>(isa, &mut m);
    results::<f64>(isa, &mut m);
    results::<f16>(isa, &mut m);
    results::<bf16>(isa, &mut m);
    m
}

#[test]
fn bits_match_the_fixture_on_every_isa() {
    if std::env::var("MASKOPS_WRITE_FIXTURE").is_ok_and(|v| v == "1") {
        let text: String = all(Isa::Portable)
            .iter()
            .map(|(k, v)| format!("{k} {v:016x}\n"))
            .collect();
        std::fs::write(FIXTURE, text).unwrap();
    }
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let want: BTreeMap<String, u64> = text
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), u64::from_str_radix(v, 16).unwrap())
        })
        .collect();
    for isa in Isa::all_available() {
        let got = all(isa);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{isa:?}: the fixture's ops"
        );
        let bad: Vec<&String> = got.keys().filter(|k| got[*k] != want[*k]).collect();
        assert!(
            bad.is_empty(),
            "{isa:?} ({}): {} results differ from tests/fixtures/bits.txt: {bad:?}",
            std::env::consts::ARCH,
            bad.len()
        );
    }
}
