//! Golden tests: maskops's public API against PyTorch fixtures.
//!
//! The fixtures under `tests/golden/` are written by `tools/make_golden.py`
//! (PyTorch + NumPy, not run by CI; see `tools/README.md` for how to
//! regenerate them and for their exact semantics). Every masked-out slot of
//! every input holds NaN / +inf / -inf, so a kernel that reads one fails here.
//!
//! # Tolerances
//!
//! Expected values are the exact math computed in `f64` by PyTorch from the
//! (already rounded) inputs. Masks, output masks, argmin/argmax indices and
//! `null`/`None` are compared exactly, and so is every value that involves no
//! rounding: `amin`, `amax`, `norm(inf)` (fixture `scale` 0) and every value
//! under a cleared bit or at a masked-out position (must be exactly 0).
//! Otherwise, with `u_out` the unit roundoff of the output type (f64 2^-53,
//! f32 2^-24, f16 2^-11, bf16 2^-8), `u_acc` that of the accumulator (f64 for
//! f64, f32 for the other three types), and `n` the length of the reduced
//! sequence (an upper bound on the kept count):
//!
//! * reductions, softmax, log-softmax:
//!   `|got - want| <= u_out |want| + 4 (n + 16) u_acc scale + atol`, where
//!   `scale` (from the fixture) bounds the magnitudes entering the computation
//!   (`sum |x|` for sums, `|prod|`, `sum x^2 / (n - c)` for var, `max |x| +
//!   ln n + 1` for logsumexp/log-softmax, ...): the first term is the final
//!   rounding to the output type, the second a (generous) bound of the
//!   summation error in any order, and `atol` is half the smallest subnormal
//!   of the output type (results that underflow). Where the exact result
//!   overflows the output type (`prod` of f16), the expected value is its
//!   rounding, infinity, and must match exactly.
//! * softmax backward additionally allows `2 u_out scale` for the rounding of
//!   the forward output it is computed from.
//! * losses (f32, f64): `|got - want| <= 4 (n + 16) u (|want| + S)` with `S` the
//!   largest expected magnitude of that output (values or gradient) in the case.
//! * Adagrad: after step `t`, `|got - want| <= 32 t u (|want| + 1)` for the
//!   parameters and the accumulator.

use half::{bf16, f16};
use maskops::loss::{self, CrossEntropy, Reduction};
use maskops::optim::{Adagrad, AdagradElement};
use maskops::{softmax, Element, Float, Mask, MaskedVec, MaskedView};
use serde_json::Value;

// ------------------------------------------------------------------ loading

fn load(name: &str) -> Value {
    let path = format!("{}/tests/golden/{}", env!("CARGO_MANIFEST_DIR"), name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One encoded float: a JSON number or "NaN" / "Infinity" / "-Infinity".
fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("float"),
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => panic!("bad float string {other:?}"),
        },
        other => panic!("not a float: {other}"),
    }
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn nums(v: &Value) -> Vec<f64> {
    arr(v).iter().map(num).collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    arr(v)
        .iter()
        .map(|x| x.as_u64().expect("index") as usize)
        .collect()
}

fn i64s(v: &Value) -> Vec<i64> {
    arr(v)
        .iter()
        .map(|x| x.as_i64().expect("integer"))
        .collect()
}

fn bools(v: &Value) -> Vec<bool> {
    arr(v)
        .iter()
        .map(|x| match x.as_u64() {
            Some(0) => false,
            Some(1) => true,
            _ => panic!("mask bit must be 0 or 1: {x}"),
        })
        .collect()
}

fn mask_of(v: &Value) -> Mask {
    Mask::from_bools(&bools(v))
}

fn mask_bits(m: &Mask) -> Vec<bool> {
    (0..m.len()).map(|i| m.get(i)).collect()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string {key}"))
}

fn shape(v: &Value) -> Vec<usize> {
    usizes(&v["shape"])
}

// ------------------------------------------------------------------ element types

/// Decoding and tolerance constants per element type.
trait Gold: Element {
    /// Unit roundoff of the type.
    const U: f64;
    /// Unit roundoff of the accumulator the crate uses for this type.
    const U_ACC: f64;
    /// Half the smallest positive subnormal.
    const ATOL: f64;
    /// Decode one encoded input (exact: the fixture is built so).
    fn decode(v: &Value) -> Self;
}

impl Gold for f32 {
    const U: f64 = f32::EPSILON as f64 / 2.0;
    const U_ACC: f64 = f32::EPSILON as f64 / 2.0;
    const ATOL: f64 = f32::from_bits(1) as f64 / 2.0;
    fn decode(v: &Value) -> f32 {
        let x = num(v);
        let r = x as f32;
        assert!(x.is_nan() || r as f64 == x, "input {x} is not an f32");
        r
    }
}

impl Gold for f64 {
    const U: f64 = f64::EPSILON / 2.0;
    const U_ACC: f64 = f64::EPSILON / 2.0;
    const ATOL: f64 = 0.0;
    fn decode(v: &Value) -> f64 {
        num(v)
    }
}

impl Gold for f16 {
    const U: f64 = f16::EPSILON.to_f64_const() / 2.0;
    const U_ACC: f64 = f32::EPSILON as f64 / 2.0;
    const ATOL: f64 = f16::from_bits(1).to_f64_const() / 2.0;
    fn decode(v: &Value) -> f16 {
        f16::from_bits(v.as_u64().expect("f16 bits") as u16)
    }
}

impl Gold for bf16 {
    const U: f64 = bf16::EPSILON.to_f64_const() / 2.0;
    const U_ACC: f64 = f32::EPSILON as f64 / 2.0;
    const ATOL: f64 = bf16::from_bits(1).to_f64_const() / 2.0;
    fn decode(v: &Value) -> bf16 {
        bf16::from_bits(v.as_u64().expect("bf16 bits") as u16)
    }
}

fn decode<T: Gold>(v: &Value) -> Vec<T> {
    arr(v).iter().map(T::decode).collect()
}

/// Collects mismatches so one run reports all of them.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    checked: usize,
    /// Largest `|got - want| / tol` among the passing tolerance checks.
    worst: f64,
}

impl Report {
    fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }

    /// `got` against `want` within `tol`; exact when `tol == 0`.
    fn close(&mut self, what: &dyn Fn() -> String, got: f64, want: f64, tol: f64) {
        self.checked += 1;
        let ok = if want.is_nan() {
            got.is_nan()
        } else if want.is_infinite() || tol == 0.0 {
            got == want
        } else {
            let r = (got - want).abs() / tol;
            if r <= 1.0 {
                self.worst = self.worst.max(r);
            }
            if r > 0.5 && std::env::var_os("GOLDEN_VERBOSE").is_some() {
                eprintln!("{}: ratio {r:.3} got {got:e} want {want:e}", what());
            }
            r <= 1.0
        };
        if !ok {
            self.fail(format!(
                "{}: got {got:e}, want {want:e} (diff {:e}, tol {tol:e})",
                what(),
                (got - want).abs()
            ));
        }
    }

    fn eq<V: PartialEq + std::fmt::Debug>(&mut self, what: &dyn Fn() -> String, got: V, want: V) {
        self.checked += 1;
        if got != want {
            self.fail(format!("{}: got {got:?}, want {want:?}", what()));
        }
    }

    fn finish(self, name: &str) {
        assert!(self.checked > 0, "{name}: nothing checked");
        if !self.failures.is_empty() {
            let shown: Vec<&String> = self.failures.iter().take(60).collect();
            panic!(
                "{name}: {} of {} checks failed:\n{}",
                self.failures.len(),
                self.checked,
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        eprintln!(
            "{name}: {} checks passed; worst error/tolerance {:.3}",
            self.checked, self.worst
        );
    }
}

/// Reduction-style tolerance (see the module docs).
fn red_tol<T: Gold>(want: f64, scale: f64, n: usize) -> f64 {
    if scale == 0.0 {
        return 0.0;
    }
    T::U * want.abs() + 4.0 * (n as f64 + 16.0) * T::U_ACC * scale + T::ATOL
}

/// The expected value as the output type gives it: overflow becomes +-inf.
fn expect_in<T: Gold>(want: f64) -> f64 {
    let r = T::from_f64(want).to_f64();
    if r.is_infinite() {
        r
    } else {
        want
    }
}

// ------------------------------------------------------------------ reductions

/// A 1-D view for a one-element shape, else a row-major matrix view.
fn view_of<'a, T: Element>(data: &'a [T], mask: &'a Mask, shp: &[usize]) -> MaskedView<'a, T> {
    if shp.len() == 1 {
        MaskedView::new(data, mask).unwrap()
    } else {
        MaskedView::matrix(data, mask, shp[0], shp[1]).unwrap()
    }
}

fn whole<T: Gold>(v: &MaskedView<T>, op: &str) -> Result<Option<f64>, Option<usize>> {
    let f = |x: Option<T>| Ok(x.map(|y| y.to_f64()));
    match op {
        "sum" => f(v.sum()),
        "mean" => f(v.mean()),
        "prod" => f(v.prod()),
        "amin" => f(v.amin()),
        "amax" => f(v.amax()),
        "argmin" => Err(v.argmin()),
        "argmax" => Err(v.argmax()),
        "var:0" => f(v.var(0)),
        "var:1" => f(v.var(1)),
        "std:0" => f(v.std(0)),
        "std:1" => f(v.std(1)),
        "norm:1" => f(v.norm(1.0)),
        "norm:2" => f(v.norm(2.0)),
        "norm:inf" => f(v.norm(f64::INFINITY)),
        "logsumexp" => f(v.logsumexp()),
        _ => panic!("unknown op {op}"),
    }
}

enum DimOut<T> {
    Val(MaskedVec<T>),
    Idx(MaskedVec<usize>),
}

fn per_dim<T: Gold>(v: &MaskedView<T>, op: &str, dim: usize) -> DimOut<T> {
    let r = match op {
        "sum" => v.sum_dim(dim),
        "mean" => v.mean_dim(dim),
        "prod" => v.prod_dim(dim),
        "amin" => v.amin_dim(dim),
        "amax" => v.amax_dim(dim),
        "argmin" => return DimOut::Idx(v.argmin_dim(dim).expect("argmin_dim")),
        "argmax" => return DimOut::Idx(v.argmax_dim(dim).expect("argmax_dim")),
        "var:0" => v.var_dim(dim, 0),
        "var:1" => v.var_dim(dim, 1),
        "std:0" => v.std_dim(dim, 0),
        "std:1" => v.std_dim(dim, 1),
        "norm:1" => v.norm_dim(dim, 1.0),
        "norm:2" => v.norm_dim(dim, 2.0),
        "norm:inf" => v.norm_dim(dim, f64::INFINITY),
        "logsumexp" => v.logsumexp_dim(dim),
        _ => panic!("unknown op {op}"),
    };
    DimOut::Val(r.unwrap_or_else(|e| panic!("{op}_dim({dim}): {e}")))
}

fn reduction_case<T: Gold>(case: &Value, ops: &[String], rep: &mut Report) {
    let name = format!("{}/{}", s(case, "name"), s(case, "dtype"));
    let shp = shape(case);
    let data: Vec<T> = decode(&case["data"]);
    let mask = mask_of(&case["mask"]);
    let view = view_of(&data, &mask, &shp);
    let (rows, cols) = (view.rows(), view.cols());
    for op in ops {
        // over everything
        let exp = &case["full"][op.as_str()];
        let scale = num(&exp["scale"]);
        let what = || format!("{name} {op}()");
        match whole(&view, op) {
            Ok(got) => match (&exp["value"], got) {
                (Value::Null, None) => rep.eq(&what, 0, 0),
                (Value::Null, Some(g)) => rep.fail(format!("{}: got Some({g}), want None", what())),
                (w, None) => rep.fail(format!("{}: got None, want {w}", what())),
                (w, Some(g)) => {
                    let w = expect_in::<T>(num(w));
                    rep.close(&what, g, w, red_tol::<T>(w, scale, data.len()))
                }
            },
            Err(got) => {
                let want = exp["value"].as_u64().map(|x| x as usize);
                rep.eq(&what, got, want)
            }
        }
        // per dim
        let dims: &[usize] = if shp.len() == 1 { &[0] } else { &[0, 1] };
        for &dim in dims {
            let exp = &case[format!("dim{dim}").as_str()][op.as_str()];
            let want_mask = bools(&exp["mask"]);
            let scales = nums(&exp["scale"]);
            let n = if shp.len() == 1 || dim == 1 {
                cols
            } else {
                rows
            };
            let what = || format!("{name} {op}_dim({dim}) mask");
            match per_dim(&view, op, dim) {
                DimOut::Val(got) => {
                    rep.eq(&what, mask_bits(&got.mask), want_mask.clone());
                    let want = nums(&exp["values"]);
                    rep.eq(
                        &|| format!("{name} {op}_dim({dim}) len"),
                        got.len(),
                        want.len(),
                    );
                    for (i, (&g, &w)) in got.values.iter().zip(&want).enumerate() {
                        let what = || format!("{name} {op}_dim({dim})[{i}]");
                        if want_mask[i] {
                            let w = expect_in::<T>(w);
                            rep.close(&what, g.to_f64(), w, red_tol::<T>(w, scales[i], n));
                        } else {
                            rep.close(&what, g.to_f64(), 0.0, 0.0);
                        }
                    }
                }
                DimOut::Idx(got) => {
                    rep.eq(&what, mask_bits(&got.mask), want_mask.clone());
                    let want = usizes(&exp["values"]);
                    let what = || format!("{name} {op}_dim({dim}) values");
                    let got_kept: Vec<Option<usize>> = (0..got.len()).map(|i| got.get(i)).collect();
                    let want_kept: Vec<Option<usize>> = want
                        .iter()
                        .zip(&want_mask)
                        .map(|(&w, &k)| k.then_some(w))
                        .collect();
                    rep.eq(&what, got_kept, want_kept);
                }
            }
        }
    }
}

#[test]
fn golden_reductions() {
    let g = load("reductions.json");
    let ops: Vec<String> = arr(&g["ops"])
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    let mut rep = Report::default();
    let mut dtypes = std::collections::BTreeSet::new();
    for case in arr(&g["cases"]) {
        let dt = s(case, "dtype");
        dtypes.insert(dt.to_string());
        match dt {
            "f32" => reduction_case::<f32>(case, &ops, &mut rep),
            "f64" => reduction_case::<f64>(case, &ops, &mut rep),
            "f16" => reduction_case::<f16>(case, &ops, &mut rep),
            "bf16" => reduction_case::<bf16>(case, &ops, &mut rep),
            other => panic!("unknown dtype {other}"),
        }
    }
    assert_eq!(dtypes.len(), 4, "all four dtypes covered");
    rep.finish("reductions");
}

// ------------------------------------------------------------------ softmax

fn softmax_case<T: Gold>(case: &Value, rep: &mut Report) {
    let name = format!("{}/{}", s(case, "name"), s(case, "dtype"));
    let shp = shape(case);
    let data: Vec<T> = decode(&case["data"]);
    let gout: Vec<T> = decode(&case["grad_output"]);
    let mask = mask_of(&case["mask"]);
    let (rows, cols) = (
        view_of(&data, &mask, &shp).rows(),
        view_of(&data, &mask, &shp).cols(),
    );
    let view = view_of(&data, &mask, &shp);
    let dims: &[usize] = if shp.len() == 1 { &[0] } else { &[0, 1] };
    for &dim in dims {
        let n = if shp.len() == 1 || dim == 1 {
            cols
        } else {
            rows
        };
        let ent = &case[format!("dim{dim}").as_str()];
        for kind in ["softmax", "log_softmax"] {
            let fwd = if kind == "softmax" {
                view.softmax(dim)
            } else {
                view.log_softmax(dim)
            }
            .unwrap_or_else(|e| panic!("{name} {kind}({dim}): {e}"));
            let exp = &ent[kind];
            let want_mask = bools(&exp["mask"]);
            rep.eq(
                &|| format!("{name} {kind}({dim}) mask"),
                mask_bits(&fwd.mask),
                want_mask.clone(),
            );
            let want = nums(&exp["values"]);
            let scale = num(&exp["scale"]);
            for (i, (&g, &w)) in fwd.values.iter().zip(&want).enumerate() {
                let what = || format!("{name} {kind}({dim})[{i}]");
                let tol = if want_mask[i] {
                    red_tol::<T>(w, scale, n)
                } else {
                    0.0
                };
                rep.close(&what, g.to_f64(), w, tol);
            }
            // backward from maskops's own forward output
            let yv = view_of(&fwd.values, &fwd.mask, &shp);
            let bwd = if kind == "softmax" {
                softmax::softmax_backward(&yv, &gout, dim)
            } else {
                softmax::log_softmax_backward(&yv, &gout, dim)
            }
            .unwrap_or_else(|e| panic!("{name} {kind}_backward({dim}): {e}"));
            let exp = &ent[format!("{kind}_backward").as_str()];
            let want_mask = bools(&exp["mask"]);
            rep.eq(
                &|| format!("{name} {kind}_backward({dim}) mask"),
                mask_bits(&bwd.mask),
                want_mask.clone(),
            );
            let want = nums(&exp["values"]);
            let gscale = num(&exp["scale"]);
            for (i, (&g, &w)) in bwd.values.iter().zip(&want).enumerate() {
                let what = || format!("{name} {kind}_backward({dim})[{i}]");
                let tol = if want_mask[i] {
                    red_tol::<T>(w, gscale, n) + 2.0 * T::U * gscale
                } else {
                    0.0
                };
                rep.close(&what, g.to_f64(), w, tol);
            }
        }
    }
}

#[test]
fn golden_softmax() {
    let g = load("softmax.json");
    let mut rep = Report::default();
    // the key-padding cases' mask is what Mask::padding builds from the lengths
    let lengths = usizes(&g["padding_lengths"]);
    let pad = Mask::padding(&lengths, 9).unwrap();
    for case in arr(&g["cases"])
        .iter()
        .filter(|c| s(c, "name") == "padding5x9")
    {
        rep.eq(
            &|| "Mask::padding".into(),
            mask_bits(&pad),
            bools(&case["mask"]),
        );
    }
    for case in arr(&g["cases"]) {
        match s(case, "dtype") {
            "f32" => softmax_case::<f32>(case, &mut rep),
            "f64" => softmax_case::<f64>(case, &mut rep),
            "f16" => softmax_case::<f16>(case, &mut rep),
            "bf16" => softmax_case::<bf16>(case, &mut rep),
            other => panic!("unknown dtype {other}"),
        }
    }
    rep.finish("softmax");
}

// ------------------------------------------------------------------ losses

fn reduction(r: &str) -> Reduction {
    match r {
        "none" => Reduction::None,
        "sum" => Reduction::Sum,
        "mean" => Reduction::Mean,
        _ => panic!("unknown reduction {r}"),
    }
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Loss-style comparison of a whole output vector (see the module docs).
fn check_vec<T: Gold>(rep: &mut Report, what: &str, got: &[T], want: &[f64], n: usize) {
    rep.eq(&|| format!("{what} len"), got.len(), want.len());
    let big = max_abs(want);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 4.0 * (n as f64 + 16.0) * T::U * (w.abs() + big);
        rep.close(&|| format!("{what}[{i}]"), g.to_f64(), w, tol);
    }
}

fn elementwise_case<T: Gold + Float>(case: &Value, rep: &mut Report) {
    let kind = s(case, "loss");
    let params = &case["params"];
    let red = s(case, "reduction");
    let name = format!(
        "{}/{} {kind}{} {red}",
        s(case, "name"),
        s(case, "dtype"),
        params
    );
    let x: Vec<T> = decode(&case["input"]);
    let t: Vec<T> = decode(&case["target"]);
    let mask = mask_of(&case["mask"]);
    let r = reduction(red);
    // one value, or one per class (column) broadcast over the row-major input
    let pw: Option<Vec<T>> = params.get("pos_weight").map(|p| match p {
        Value::Array(_) => decode(p),
        _ => vec![T::decode(p)],
    });
    let out = match kind {
        "mse" => loss::mse(&x, &t, &mask, r),
        "l1" => loss::l1(&x, &t, &mask, r),
        "huber" => loss::huber(&x, &t, &mask, num(&params["delta"]), r),
        "smooth_l1" => loss::smooth_l1(&x, &t, &mask, num(&params["beta"]), r),
        "bce_with_logits" => loss::bce_with_logits(&x, &t, &mask, pw.as_deref(), r),
        _ => panic!("unknown loss {kind}"),
    }
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    check_vec(
        rep,
        &format!("{name} value"),
        &out.value,
        &nums(&case["value"]),
        x.len(),
    );
    check_vec(
        rep,
        &format!("{name} grad"),
        &out.grad,
        &nums(&case["grad"]),
        x.len(),
    );
}

fn ce_case<T: Gold + Float>(case: &Value, rep: &mut Report) {
    let name = format!(
        "cross_entropy {}/{} {}",
        s(case, "name"),
        s(case, "dtype"),
        s(case, "reduction")
    );
    let logits: Vec<T> = decode(&case["logits"]);
    let rows = case["rows"].as_u64().unwrap() as usize;
    let classes = case["classes"].as_u64().unwrap() as usize;
    let targets = i64s(&case["targets"]);
    let opts = CrossEntropy {
        ignore_index: case["ignore_index"].as_i64().unwrap(),
        weight: match &case["weight"] {
            Value::Null => None,
            w => Some(decode::<T>(w)),
        },
        label_smoothing: num(&case["label_smoothing"]),
        reduction: reduction(s(case, "reduction")),
    };
    let out = loss::cross_entropy(&logits, rows, classes, &targets, &opts)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let n = rows * classes;
    check_vec(
        rep,
        &format!("{name} value"),
        &out.value,
        &nums(&case["value"]),
        n,
    );
    check_vec(
        rep,
        &format!("{name} grad"),
        &out.grad,
        &nums(&case["grad"]),
        n,
    );
}

/// ECS has no mask argument: a row-masked case is the loss on the sub-batch
/// of kept rows, so the test compacts them and scatters the gradient back.
fn ecs_case<T: Gold + Float>(case: &Value, rep: &mut Report) {
    let rows = case["rows"].as_u64().unwrap() as usize;
    let cols = case["cols"].as_u64().unwrap() as usize;
    let thr = num(&case["threshold"]);
    let name = format!(
        "ecs {}/{} threshold {thr}",
        s(case, "name"),
        s(case, "dtype")
    );
    let emb: Vec<T> = decode(&case["input"]);
    let keep = bools(&case["row_mask"]);
    let kept: Vec<usize> = (0..rows).filter(|&r| keep[r]).collect();
    let sub: Vec<T> = kept
        .iter()
        .flat_map(|&r| emb[r * cols..(r + 1) * cols].iter().copied())
        .collect();
    let out = loss::ecs(&sub, kept.len(), cols, thr).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut grad = vec![T::ZERO; rows * cols];
    for (k, &r) in kept.iter().enumerate() {
        grad[r * cols..(r + 1) * cols].copy_from_slice(&out.grad[k * cols..(k + 1) * cols]);
    }
    let n = rows * rows * cols;
    check_vec(
        rep,
        &format!("{name} value"),
        &out.value,
        &nums(&case["value"]),
        n,
    );
    check_vec(rep, &format!("{name} grad"), &grad, &nums(&case["grad"]), n);
}

/// Pearson is forward-only in maskops: values and output mask are checked
/// (the fixture's `grad` is not used).
fn pearson_case<T: Gold + Float>(case: &Value, rep: &mut Report) {
    let rows = case["rows"].as_u64().unwrap() as usize;
    let cols = case["cols"].as_u64().unwrap() as usize;
    let name = format!("pearson {}/{}", s(case, "name"), s(case, "dtype"));
    let x: Vec<T> = decode(&case["input"]);
    let y: Vec<T> = decode(&case["target"]);
    let mask = mask_of(&case["mask"]);
    let out = loss::pearson(&x, &y, &mask, rows, cols).unwrap_or_else(|e| panic!("{name}: {e}"));
    rep.eq(
        &|| format!("{name} mask"),
        mask_bits(&out.mask),
        bools(&case["values_mask"]),
    );
    let want = nums(&case["values"]);
    rep.eq(&|| format!("{name} len"), out.values.len(), want.len());
    for (i, (&g, &w)) in out.values.iter().zip(&want).enumerate() {
        let tol = if out.mask.get(i) {
            4.0 * (cols as f64 + 16.0) * T::U * (w.abs() + 1.0)
        } else {
            0.0
        };
        rep.close(&|| format!("{name}[{i}]"), g.to_f64(), w, tol);
    }
}

fn per_dtype(
    case: &Value,
    rep: &mut Report,
    f32f: fn(&Value, &mut Report),
    f64f: fn(&Value, &mut Report),
) {
    match s(case, "dtype") {
        "f32" => f32f(case, rep),
        "f64" => f64f(case, rep),
        other => panic!("unexpected dtype {other}"),
    }
}

#[test]
fn golden_elementwise_losses() {
    let g = load("losses.json");
    let mut rep = Report::default();
    for case in arr(&g["elementwise"]) {
        per_dtype(
            case,
            &mut rep,
            elementwise_case::<f32>,
            elementwise_case::<f64>,
        );
    }
    rep.finish("elementwise losses");
}

#[test]
fn golden_cross_entropy() {
    let g = load("losses.json");
    let mut rep = Report::default();
    for case in arr(&g["cross_entropy"]) {
        per_dtype(case, &mut rep, ce_case::<f32>, ce_case::<f64>);
    }
    rep.finish("cross_entropy");
}

#[test]
fn golden_ecs_and_pearson() {
    let g = load("losses.json");
    let mut rep = Report::default();
    for case in arr(&g["ecs"]) {
        per_dtype(case, &mut rep, ecs_case::<f32>, ecs_case::<f64>);
    }
    for case in arr(&g["pearson"]) {
        per_dtype(case, &mut rep, pearson_case::<f32>, pearson_case::<f64>);
    }
    rep.finish("ecs + pearson");
}

// ------------------------------------------------------------------ Adagrad

fn adagrad_of(case: &Value) -> Adagrad {
    let c = &case["config"];
    Adagrad {
        lr: num(&c["lr"]),
        lr_decay: num(&c["lr_decay"]),
        weight_decay: num(&c["weight_decay"]),
        initial_accumulator_value: num(&c["initial_accumulator_value"]),
        eps: num(&c["eps"]),
        maximize: c["maximize"].as_bool().unwrap(),
    }
}

/// Runs `step(k, param, state)` for every step of the case and compares the
/// parameters and the accumulator after each.
fn adagrad_run<T, F>(case: &Value, form: &str, rep: &mut Report, mut step: F)
where
    T: Gold + Float + AdagradElement<State = T>,
    F: FnMut(
        &Adagrad,
        usize,
        &mut Vec<T>,
        &mut maskops::optim::AdagradState<T>,
    ) -> maskops::Result<()>,
{
    let name = format!("adagrad {form} {}/{}", s(case, "name"), s(case, "dtype"));
    let opt = adagrad_of(case);
    let mut param: Vec<T> = decode(&case["param"]);
    let mut state = opt.state::<T>(param.len());
    let params = arr(&case["params"]);
    let sums = arr(&case["sums"]);
    for k in 0..params.len() {
        step(&opt, k, &mut param, &mut state).unwrap_or_else(|e| panic!("{name} step {k}: {e}"));
        rep.eq(&|| format!("{name} step counter"), state.step, k as u64 + 1);
        let t = (k + 1) as f64;
        for (what, got, want) in [("param", &param, &params[k]), ("sum", &state.sum, &sums[k])] {
            let want = nums(want);
            rep.eq(
                &|| format!("{name} step {} {what} len", k + 1),
                got.len(),
                want.len(),
            );
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let tol = 32.0 * t * T::U * (w.abs() + 1.0);
                rep.close(
                    &|| format!("{name} step {} {what}[{i}]", k + 1),
                    g.to_f64(),
                    w,
                    tol,
                );
            }
        }
    }
}

fn adagrad_dense<T: Gold + Float + AdagradElement<State = T>>(case: &Value, rep: &mut Report) {
    let grads: Vec<Vec<T>> = arr(&case["grads"]).iter().map(decode).collect();
    adagrad_run::<T, _>(case, "dense", rep, |opt, k, p, st| {
        opt.step_dense(p, &grads[k], st)
    });
}

fn adagrad_masked<T: Gold + Float + AdagradElement<State = T>>(case: &Value, rep: &mut Report) {
    let grads: Vec<Vec<T>> = arr(&case["grads"]).iter().map(decode).collect();
    let masks: Vec<Mask> = arr(&case["masks"]).iter().map(mask_of).collect();
    adagrad_run::<T, _>(case, "masked", rep, |opt, k, p, st| {
        let v = MaskedView::new(&grads[k], &masks[k])?;
        opt.step_masked(p, &v, st)
    });
}

fn adagrad_coo<T: Gold + Float + AdagradElement<State = T>>(case: &Value, rep: &mut Report) {
    let shp = shape(case);
    let steps: Vec<sprs::TriMat<T>> = arr(&case["steps"])
        .iter()
        .map(|st| {
            sprs::TriMat::from_triplets(
                (shp[0], shp[1]),
                usizes(&st["rows"]),
                usizes(&st["cols"]),
                decode(&st["values"]),
            )
        })
        .collect();
    adagrad_run::<T, _>(case, "coo", rep, |opt, k, p, st| {
        opt.step_sparse(p, shp[0], shp[1], &steps[k], st)
    });
}

fn adagrad_csvec<T: Gold + Float + AdagradElement<State = T>>(case: &Value, rep: &mut Report) {
    let len = case["len"].as_u64().unwrap() as usize;
    let steps: Vec<sprs::CsVec<T>> = arr(&case["steps"])
        .iter()
        .map(|st| sprs::CsVec::new(len, usizes(&st["indices"]), decode(&st["values"])))
        .collect();
    adagrad_run::<T, _>(case, "csvec", rep, |opt, k, p, st| {
        opt.step_sparse_vec(p, &steps[k], st)
    });
}

fn adagrad_rows<T: Gold + Float + AdagradElement<State = T>>(case: &Value, rep: &mut Report) {
    let shp = shape(case);
    let steps: Vec<(Vec<usize>, Vec<T>)> = arr(&case["steps"])
        .iter()
        .map(|st| (usizes(&st["row_indices"]), decode(&st["values"])))
        .collect();
    adagrad_run::<T, _>(case, "rows", rep, |opt, k, p, st| {
        opt.step_rows(p, shp[0], shp[1], &steps[k].0, &steps[k].1, st)
    });
}

#[test]
fn golden_adagrad() {
    let g = load("adagrad.json");
    let mut rep = Report::default();
    for case in arr(&g["dense"]) {
        per_dtype(case, &mut rep, adagrad_dense::<f32>, adagrad_dense::<f64>);
    }
    for case in arr(&g["masked"]) {
        per_dtype(case, &mut rep, adagrad_masked::<f32>, adagrad_masked::<f64>);
    }
    for case in arr(&g["coo"]) {
        per_dtype(case, &mut rep, adagrad_coo::<f32>, adagrad_coo::<f64>);
    }
    for case in arr(&g["csvec"]) {
        per_dtype(case, &mut rep, adagrad_csvec::<f32>, adagrad_csvec::<f64>);
    }
    for case in arr(&g["rows"]) {
        per_dtype(case, &mut rep, adagrad_rows::<f32>, adagrad_rows::<f64>);
    }
    rep.finish("adagrad");
}
