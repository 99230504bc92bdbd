//! SIMD reductions and softmax: bit-identical to the canonical order on
//! every ISA and thread count, and within a derived tolerance of the f64
//! reference.

use half::{bf16, f16};
use maskops::canonical::canonical_fold;
mod shim;
use maskops::backend::Isa;
use maskops::{Element, Mask, MaskedVec, MaskedView};
use proptest::prelude::*;
use shim::reduce::{
    arg_dim_with, arg_with, reduce_dim_with, reduce_with, softmax_backward_with, softmax_with,
    ArgReduction, Reduction,
};

const REDUCTIONS: [Reduction; 14] = [
    Reduction::Sum,
    Reduction::Mean,
    Reduction::Prod,
    Reduction::Amin,
    Reduction::Amax,
    Reduction::Var { correction: 0 },
    Reduction::Var { correction: 1 },
    Reduction::Std { correction: 1 },
    Reduction::Norm { p: 2.0 },
    Reduction::Norm { p: 1.0 },
    Reduction::Norm { p: f64::INFINITY },
    Reduction::Norm {
        p: f64::NEG_INFINITY,
    },
    Reduction::Norm { p: 3.0 },
    Reduction::LogSumExp,
];

/// Bitwise equality, NaN equal to NaN (payloads may differ between the
/// hardware and software half conversions).
fn same_bits<T: Element>(a: T, b: T) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_f64().to_bits() == b.to_f64().to_bits()
}

fn same_opt<T: Element>(a: Option<T>, b: Option<T>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same_bits(a, b),
        _ => false,
    }
}

fn same_vec<T: Element>(a: &MaskedVec<T>, b: &MaskedVec<T>) -> bool {
    a.mask == b.mask
        && a.values.len() == b.values.len()
        && a.values
            .iter()
            .zip(&b.values)
            .all(|(&x, &y)| same_bits(x, y))
}

/// A test case: data buffer with an unaligned start, mask with poison
/// under cleared bits.
#[derive(Debug, Clone)]
struct Case {
    buf: Vec<f64>,
    offset: usize,
    keep: Vec<bool>,
    rows: usize,
    cols: usize,
}

fn case(max_rows: usize, max_cols: usize) -> impl Strategy<Value = Case> {
    (
        1..=max_rows,
        1..=max_cols,
        0usize..4,
        0u8..4,
        any::<u64>(),
        0u8..6,
    )
        .prop_map(move |(rows, cols, offset, dens, seed, special)| {
            let n = rows * cols;
            let p = [0.0, 1.0, 0.5, 0.9][dens as usize];
            let mut s = seed | 1;
            let mut next = || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s
            };
            let keep: Vec<bool> = (0..n)
                .map(|_| (next() % 1000) as f64 / 1000.0 < p)
                .collect();
            let mut buf = vec![0.0; n + offset];
            for (i, v) in buf.iter_mut().enumerate() {
                let r = next();
                let k = i >= offset && keep[i - offset];
                *v = if k {
                    ((r % 20001) as f64 - 10000.0) / 2500.0
                } else {
                    [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e30][(r % 4) as usize]
                };
            }
            // one case in six carries a kept NaN, +inf or -inf (they must
            // propagate the same way on every path)
            if special < 3 {
                if let Some(k) = keep.iter().rposition(|&k| k) {
                    buf[offset + k] =
                        [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][special as usize];
                }
            }
            Case {
                buf,
                offset,
                keep,
                rows,
                cols,
            }
        })
}

fn data<T: Element>(c: &Case) -> Vec<T> {
    c.buf.iter().map(|&v| T::from_f64(v)).collect()
}

fn pools() -> [rayon::ThreadPool; 2] {
    [1, 2].map(|n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    })
}

/// The accumulator of each element type, as the crate defines it: `f32`
/// for `f32`, `f16` and `bf16` (rounded back once at the end), `f64` for
/// `f64`.
trait Acc: Copy + PartialOrd {
    const ZERO: Self;
    const ONE: Self;
    const INF: Self;
    const NEG_INF: Self;
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn sqrt(self) -> Self;
    fn from_count(n: usize) -> Self;
    fn is_nan(self) -> bool;
}

macro_rules! acc {
    ($t:ty) => {
        impl Acc for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const INF: Self = <$t>::INFINITY;
            const NEG_INF: Self = <$t>::NEG_INFINITY;
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn div(self, o: Self) -> Self {
                self / o
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn from_count(n: usize) -> Self {
                n as $t
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}
acc!(f32);
acc!(f64);

/// An element type with its accumulator.
trait SimdElem: Element {
    type Acc: Acc;
    fn to_acc(self) -> Self::Acc;
    fn from_acc(a: Self::Acc) -> Self;
}
impl SimdElem for f32 {
    type Acc = f32;
    fn to_acc(self) -> f32 {
        self
    }
    fn from_acc(a: f32) -> f32 {
        a
    }
}
impl SimdElem for f64 {
    type Acc = f64;
    fn to_acc(self) -> f64 {
        self
    }
    fn from_acc(a: f64) -> f64 {
        a
    }
}
impl SimdElem for f16 {
    type Acc = f32;
    fn to_acc(self) -> f32 {
        self.to_f32()
    }
    fn from_acc(a: f32) -> f16 {
        f16::from_f32(a)
    }
}
impl SimdElem for bf16 {
    type Acc = f32;
    fn to_acc(self) -> f32 {
        self.to_f32()
    }
    fn from_acc(a: f32) -> bf16 {
        bf16::from_f32(a)
    }
}

/// The canonical max: NaN-propagating, first operand kept on ties.
fn max_op<A: Acc>(a: A, b: A) -> A {
    if b > a || (b.is_nan() && !a.is_nan()) {
        b
    } else {
        a
    }
}

/// The canonical min: NaN-propagating, first operand kept on ties.
fn min_op<A: Acc>(a: A, b: A) -> A {
    if b < a || (b.is_nan() && !a.is_nan()) {
        b
    } else {
        a
    }
}

/// Canonical expectations for the folds with a plain definition.
fn canonical<T: SimdElem>(x: &[T], m: &Mask, op: Reduction) -> Option<T> {
    let n = x.len();
    if m.count_ones() == 0 {
        return None;
    }
    let keep = |i| m.get(i);
    let v = |i: usize| x[i].to_acc();
    let a: T::Acc = match op {
        Reduction::Sum => canonical_fold(n, T::Acc::ZERO, keep, v, |a, b| a.add(b)),
        Reduction::Prod => canonical_fold(n, T::Acc::ONE, keep, v, |a, b| a.mul(b)),
        Reduction::Amax => canonical_fold(n, T::Acc::NEG_INF, keep, v, max_op),
        Reduction::Amin => canonical_fold(n, T::Acc::INF, keep, v, min_op),
        Reduction::Mean => canonical_fold(n, T::Acc::ZERO, keep, v, |a, b| a.add(b))
            .div(T::Acc::from_count(m.count_ones())),
        Reduction::Norm { p: 2.0 } => {
            canonical_fold(n, T::Acc::ZERO, keep, |i| v(i).mul(v(i)), |a, b| a.add(b)).sqrt()
        }
        _ => unreachable!(),
    };
    Some(T::from_acc(a))
}

fn check_whole<T: SimdElem>(c: &Case) {
    let buf = data::<T>(c);
    let x = &buf[c.offset..];
    let m = Mask::from_bools(&c.keep);
    let v = MaskedView::new(x, &m).unwrap();
    let isas = Isa::all_available();
    let pools = pools();
    for op in REDUCTIONS {
        let first = reduce_with(Isa::Portable, &v, op);
        if matches!(
            op,
            Reduction::Sum | Reduction::Prod | Reduction::Amax | Reduction::Amin | Reduction::Mean
        ) || op == (Reduction::Norm { p: 2.0 })
        {
            let want = canonical(x, &m, op);
            assert!(
                same_opt(first, want),
                "{op:?} {}: {first:?} vs canonical {want:?}",
                T::NAME
            );
        }
        for &isa in &isas {
            for pool in &pools {
                let got = pool.install(|| reduce_with(isa, &v, op));
                assert!(
                    same_opt(got, first),
                    "{op:?} {} {isa:?} threads={}: {got:?} vs portable {first:?}",
                    T::NAME,
                    pool.current_num_threads()
                );
            }
        }
    }
    for op in [ArgReduction::Argmin, ArgReduction::Argmax] {
        let first = arg_with(Isa::Portable, &v, op);
        for &isa in &isas {
            assert_eq!(arg_with(isa, &v, op), first, "{op:?} {isa:?}");
        }
    }
}

fn check_dims<T: SimdElem>(c: &Case) {
    let buf = data::<T>(c);
    let x = &buf[c.offset..];
    let m = Mask::from_bools(&c.keep);
    let v = MaskedView::matrix(x, &m, c.rows, c.cols).unwrap();
    let isas = Isa::all_available();
    let pools = pools();
    for dim in 0..2 {
        for op in REDUCTIONS {
            let first = reduce_dim_with(Isa::Portable, &v, dim, op).unwrap();
            assert_eq!(first.len(), if dim == 0 { c.cols } else { c.rows });
            // each sequence equals the whole-array reduction of that row / column
            for s in 0..first.len().min(3) {
                let (vals, bits): (Vec<T>, Vec<bool>) = if dim == 1 {
                    (0..c.cols)
                        .map(|j| (x[s * c.cols + j], c.keep[s * c.cols + j]))
                        .unzip()
                } else {
                    (0..c.rows)
                        .map(|i| (x[i * c.cols + s], c.keep[i * c.cols + s]))
                        .unzip()
                };
                let mm = Mask::from_bools(&bits);
                let one = reduce_with(Isa::Portable, &MaskedView::new(&vals, &mm).unwrap(), op);
                assert!(same_opt(first.get(s), one), "{op:?} dim {dim} seq {s}");
            }
            for &isa in &isas {
                for pool in &pools {
                    let got = pool.install(|| reduce_dim_with(isa, &v, dim, op).unwrap());
                    assert!(
                        same_vec(&got, &first),
                        "{op:?} dim {dim} {} {isa:?}",
                        T::NAME
                    );
                }
            }
        }
        for op in [ArgReduction::Argmin, ArgReduction::Argmax] {
            let first = arg_dim_with(Isa::Portable, &v, dim, op).unwrap();
            for &isa in &isas {
                assert_eq!(arg_dim_with(isa, &v, dim, op).unwrap(), first);
            }
        }
        for log in [false, true] {
            let first = softmax_with(Isa::Portable, &v, dim, log).unwrap();
            let g: Vec<T> = (0..x.len())
                .map(|i| T::from_f64(((i * 7919) % 13) as f64 / 4.0 - 1.5))
                .collect();
            let out = MaskedView::matrix(&first.values, &first.mask, c.rows, c.cols).unwrap();
            let bfirst = softmax_backward_with(Isa::Portable, &out, &g, dim, log).unwrap();
            for &isa in &isas {
                for pool in &pools {
                    let got = pool.install(|| softmax_with(isa, &v, dim, log).unwrap());
                    assert!(
                        same_vec(&got, &first),
                        "softmax log={log} dim {dim} {isa:?}"
                    );
                    let b =
                        pool.install(|| softmax_backward_with(isa, &out, &g, dim, log).unwrap());
                    assert!(
                        same_vec(&b, &bfirst),
                        "softmax bwd log={log} dim {dim} {isa:?}"
                    );
                }
            }
        }
    }
}

// ---------- against the f64 reference, with a tolerance from the error bound ----------

/// Unit roundoff of the accumulator (`f32` for f32/f16/bf16, `f64` for f64).
fn u_acc<T: Element>() -> f64 {
    if T::NAME == "f64" {
        f64::EPSILON / 2.0
    } else {
        f32::EPSILON as f64 / 2.0
    }
}

/// Unit roundoff of the element type (the final rounding of every result).
fn u_elem<T: Element>() -> f64 {
    match T::NAME {
        "f64" => f64::EPSILON / 2.0,
        "f32" => f32::EPSILON as f64 / 2.0,
        "f16" => 2f64.powi(-11),
        _ => 2f64.powi(-8),
    }
}

/// Depth of the canonical summation tree of a sequence of `len` elements:
/// at most `ceil(min(len, 4096) / 32)` additions per lane, 5 lane-tree
/// levels, `ceil(log2(blocks))` block-tree levels. A sum of `k` terms in
/// this order is within `depth * u / (1 - depth * u) * sum |x_i|` of exact.
fn depth(len: usize) -> f64 {
    let blocks = len.div_ceil(4096).max(1);
    (len.min(4096).div_ceil(32) + 5) as f64 + (blocks as f64).log2().ceil() + 1.0
}

fn gamma(k: f64, u: f64) -> f64 {
    k * u / (1.0 - k * u)
}

/// `|got - want| <= tol + 2 u_T |want|` (+ the smallest normal of the type
/// for results near underflow); NaN only against NaN, infinities exactly.
fn close<T: Element>(got: Option<T>, want: Option<T>, tol: f64, what: &str) {
    match (got, want) {
        (None, None) => {}
        (Some(g), Some(w)) => {
            let (g, w) = (g.to_f64(), w.to_f64());
            if w.is_nan() || g.is_nan() {
                assert!(
                    w.is_nan() && g.is_nan(),
                    "{what} {}: {g} vs reference {w}",
                    T::NAME
                );
            } else if w.is_infinite() || g.is_infinite() {
                assert_eq!(g, w, "{what} {}", T::NAME);
            } else {
                // one unit in the last place at the bottom of the range: both
                // sides round to T, where subnormal spacing is absolute
                // (f16: 2^-24; exp_f32 flushes below 2^-126)
                let tiny = match T::NAME {
                    "f64" => 1e-300,
                    "f16" => 2f64.powi(-24),
                    _ => 2f64.powi(-126),
                };
                let bound = tol + 2.0 * u_elem::<T>() * w.abs() + tiny;
                assert!(
                    (g - w).abs() <= bound,
                    "{what} {}: {g} vs reference {w}, |diff| {} > bound {bound}",
                    T::NAME,
                    (g - w).abs()
                );
            }
        }
        _ => panic!("{what} {}: {got:?} vs reference {want:?}", T::NAME),
    }
}

/// One sequence's kept values (as f64) and its full length.
fn seq_vals<T: Element>(x: &[T], keep: &[bool], idx: impl Iterator<Item = usize>) -> Vec<f64> {
    idx.filter(|&i| keep[i]).map(|i| x[i].to_f64()).collect()
}

/// Tolerance of `op` on one sequence (kept values `v`, length `len`).
fn tol_of<T: Element>(op: Reduction, v: &[f64], len: usize, want: Option<T>) -> f64 {
    let u = u_acc::<T>();
    let d = depth(len);
    let n = v.len() as f64;
    let sabs: f64 = v.iter().map(|x| x.abs()).sum();
    let w = want.map_or(0.0, |w| w.to_f64().abs());
    let mean = v.iter().sum::<f64>() / n.max(1.0);
    match op {
        Reduction::Sum | Reduction::Norm { p: 1.0 } => gamma(d, u) * sabs,
        Reduction::Mean => gamma(d, u) * sabs / n.max(1.0) + u * w,
        Reduction::Amin | Reduction::Amax => 0.0,
        Reduction::Norm { p } if p.is_infinite() => 0.0,
        Reduction::Prod => gamma(n + 1.0, u) * w,
        Reduction::Var { correction } | Reduction::Std { correction } => {
            let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
            let dm = gamma(d, u) * sabs / n + u * mean.abs();
            let dn = (n - correction as f64).max(1.0);
            let tv = gamma(d + 4.0, u) * (ss + n * dm * dm + 2.0 * dm * sabs) / dn;
            if matches!(op, Reduction::Var { .. }) {
                tv + u * w
            } else {
                let sd = (ss / dn).sqrt();
                (tv / (2.0 * sd.max(1e-300))).min(tv.sqrt()) + u * w
            }
        }
        Reduction::Norm { p: 2.0 } => {
            let ss: f64 = v.iter().map(|x| x * x).sum();
            (gamma(d + 2.0, u) * ss) / (2.0 * ss.sqrt().max(1e-300)) + u * w
        }
        Reduction::Norm { p } => {
            let s: f64 = v.iter().map(|x| x.abs().powf(p)).sum();
            // |x|^p to a few ulp, canonical sum, then s^(1/p)
            let ts = gamma(d + 8.0, u) * s;
            w * (ts / s.max(1e-300)) / p.abs() + 4.0 * u * w
        }
        Reduction::LogSumExp => {
            let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = v.iter().map(|x| (x - m).exp()).sum();
            gamma(d + 4.0, u) + 3.0 * u * (s.ln().abs() + w + m.abs())
        }
    }
}

fn reference<T: Element>(v: &MaskedView<'_, T>, op: Reduction) -> Option<T> {
    use maskops::reference::reduce as r;
    match op {
        Reduction::Sum => r::sum(v),
        Reduction::Mean => r::mean(v),
        Reduction::Prod => r::prod(v),
        Reduction::Amin => r::amin(v),
        Reduction::Amax => r::amax(v),
        Reduction::Var { correction } => r::var(v, correction),
        Reduction::Std { correction } => r::std(v, correction),
        Reduction::Norm { p } => r::norm(v, p),
        Reduction::LogSumExp => r::logsumexp(v),
    }
}

fn reference_dim<T: Element>(v: &MaskedView<'_, T>, dim: usize, op: Reduction) -> MaskedVec<T> {
    use maskops::reference::reduce as r;
    match op {
        Reduction::Sum => r::sum_dim(v, dim),
        Reduction::Mean => r::mean_dim(v, dim),
        Reduction::Prod => r::prod_dim(v, dim),
        Reduction::Amin => r::amin_dim(v, dim),
        Reduction::Amax => r::amax_dim(v, dim),
        Reduction::Var { correction } => r::var_dim(v, dim, correction),
        Reduction::Std { correction } => r::std_dim(v, dim, correction),
        Reduction::Norm { p } => r::norm_dim(v, dim, p),
        Reduction::LogSumExp => r::logsumexp_dim(v, dim),
    }
    .unwrap()
}

/// Every reduction (prod aside: see `prod_vs_reference`) of the whole view
/// and along both dims, on every ISA, against the reference.
fn check_reference<T: SimdElem>(c: &Case) {
    use maskops::reference::reduce as r;
    let buf = data::<T>(c);
    let x = &buf[c.offset..];
    let m = Mask::from_bools(&c.keep);
    let flat = MaskedView::new(x, &m).unwrap();
    let mat = MaskedView::matrix(x, &m, c.rows, c.cols).unwrap();
    for isa in Isa::all_available() {
        for op in REDUCTIONS.iter().copied().filter(|o| *o != Reduction::Prod) {
            let want = reference(&flat, op);
            let v = seq_vals(x, &c.keep, 0..x.len());
            close(
                reduce_with(isa, &flat, op),
                want,
                tol_of::<T>(op, &v, x.len(), want),
                &format!("{op:?} {isa:?}"),
            );
            for dim in 0..2 {
                let got = reduce_dim_with(isa, &mat, dim, op).unwrap();
                let want = reference_dim(&mat, dim, op);
                assert_eq!(got.mask, want.mask, "{op:?} dim {dim} mask");
                for s in 0..got.len() {
                    let (v, len) = if dim == 1 {
                        (seq_vals(x, &c.keep, s * c.cols..(s + 1) * c.cols), c.cols)
                    } else {
                        (
                            seq_vals(x, &c.keep, (0..c.rows).map(|i| i * c.cols + s)),
                            c.rows,
                        )
                    };
                    let w = want.get(s);
                    close(
                        got.get(s),
                        w,
                        tol_of::<T>(op, &v, len, w),
                        &format!("{op:?} dim {dim} seq {s} {isa:?}"),
                    );
                }
            }
        }
        assert_eq!(arg_with(isa, &flat, ArgReduction::Argmin), r::argmin(&flat));
        assert_eq!(arg_with(isa, &flat, ArgReduction::Argmax), r::argmax(&flat));
        for dim in 0..2 {
            assert_eq!(
                arg_dim_with(isa, &mat, dim, ArgReduction::Argmin).unwrap(),
                r::argmin_dim(&mat, dim).unwrap()
            );
            assert_eq!(
                arg_dim_with(isa, &mat, dim, ArgReduction::Argmax).unwrap(),
                r::argmax_dim(&mat, dim).unwrap()
            );
        }
    }
}

/// Softmax / log-softmax forward and backward against the reference.
fn check_softmax_reference<T: SimdElem>(c: &Case) {
    use maskops::reference::softmax as rs;
    let buf = data::<T>(c);
    let x = &buf[c.offset..];
    let m = Mask::from_bools(&c.keep);
    let mat = MaskedView::matrix(x, &m, c.rows, c.cols).unwrap();
    let g: Vec<T> = (0..x.len())
        .map(|i| T::from_f64(((i * 7919) % 13) as f64 / 4.0 - 1.5))
        .collect();
    let u = u_acc::<T>();
    for isa in Isa::all_available() {
        for dim in 0..2 {
            let len = if dim == 1 { c.cols } else { c.rows };
            let d = depth(len);
            let seq_of = |i: usize| if dim == 1 { i / c.cols } else { i % c.cols };
            let nseq = if dim == 1 { c.rows } else { c.cols };
            let members = |s: usize| -> Vec<usize> {
                if dim == 1 {
                    (s * c.cols..(s + 1) * c.cols).collect()
                } else {
                    (0..c.rows).map(|i| i * c.cols + s).collect()
                }
            };
            for log in [false, true] {
                let got = softmax_with(isa, &mat, dim, log).unwrap();
                let want = if log {
                    rs::log_softmax(&mat, dim)
                } else {
                    rs::softmax(&mat, dim)
                }
                .unwrap();
                assert_eq!(got.mask, want.mask);
                // per-sequence log-sum-exp magnitude for the log-softmax bound
                let lse: Vec<f64> = (0..nseq)
                    .map(|s| {
                        let v = seq_vals(x, &c.keep, members(s).into_iter());
                        let mx = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                        v.iter().map(|x| (x - mx).exp()).sum::<f64>().ln().abs() + mx.abs()
                    })
                    .collect();
                for i in 0..x.len() {
                    let w = want.values[i];
                    let tol = if !c.keep[i] {
                        0.0
                    } else if log {
                        gamma(d + 6.0, u) + 4.0 * u * (lse[seq_of(i)] + x[i].to_f64().abs())
                    } else {
                        gamma(d + 8.0, u) * w.to_f64().abs()
                    };
                    close(
                        Some(got.values[i]),
                        Some(w),
                        tol,
                        &format!("softmax log={log} dim {dim} i {i} {isa:?}"),
                    );
                }
                // backward, from the reference's forward output
                let out = MaskedView::matrix(&want.values, &want.mask, c.rows, c.cols).unwrap();
                let gb = softmax_backward_with(isa, &out, &g, dim, log).unwrap();
                let wb = if log {
                    rs::log_softmax_backward(&out, &g, dim)
                } else {
                    rs::softmax_backward(&out, &g, dim)
                }
                .unwrap();
                assert_eq!(gb.mask, wb.mask);
                let k: Vec<f64> = (0..nseq)
                    .map(|s| {
                        members(s)
                            .into_iter()
                            .filter(|&i| c.keep[i])
                            .map(|i| {
                                let gi = g[i].to_f64().abs();
                                if log {
                                    gi
                                } else {
                                    gi * want.values[i].to_f64().abs()
                                }
                            })
                            .sum()
                    })
                    .collect();
                for i in 0..x.len() {
                    let y = want.values[i].to_f64();
                    let gi = g[i].to_f64().abs();
                    let tol = if !c.keep[i] || y.is_nan() {
                        0.0
                    } else if log {
                        y.exp() * (gamma(d + 4.0, u) * k[seq_of(i)])
                            + 4.0 * u * (gi + y.exp() * k[seq_of(i)])
                    } else {
                        y.abs() * (gamma(d + 2.0, u) * k[seq_of(i)] + 2.0 * u * (gi + k[seq_of(i)]))
                    };
                    close(
                        Some(gb.values[i]),
                        Some(wb.values[i]),
                        tol,
                        &format!("softmax bwd log={log} dim {dim} i {i} {isa:?}"),
                    );
                }
            }
        }
    }
}

/// Products on data near 1 (no over/underflow in any lane), against the reference.
fn prod_vs_reference<T: SimdElem>(c: &Case) {
    let buf: Vec<T> = c
        .buf
        .iter()
        .map(|&v| T::from_f64(1.0 + (v % 1.0) * 0.1))
        .collect();
    let x = &buf[c.offset..];
    let m = Mask::from_bools(&c.keep);
    let flat = MaskedView::new(x, &m).unwrap();
    let v = seq_vals(x, &c.keep, 0..x.len());
    for isa in Isa::all_available() {
        let want = reference(&flat, Reduction::Prod);
        close(
            reduce_with(isa, &flat, Reduction::Prod),
            want,
            tol_of::<T>(Reduction::Prod, &v, x.len(), want),
            "prod",
        );
    }
}

/// Cases per property: `PROPTEST_CASES` if set; else `full` in an
/// optimized build (CI runs this file with `--release`) and a quarter of it
/// (at least 1) in the default unoptimized `cargo test`, where the kernels
/// run many times slower. The properties are the same either way.
fn cases(full: u32) -> u32 {
    match std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(n) => n,
        None if cfg!(debug_assertions) => (full / 4).max(1),
        None => full,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(24), ..ProptestConfig::default() })]

    #[test]
    fn whole_f32(c in case(1, 9000)) { check_whole::<f32>(&c); }
    #[test]
    fn whole_f64(c in case(1, 9000)) { check_whole::<f64>(&c); }
    #[test]
    fn whole_f16(c in case(1, 9000)) { check_whole::<f16>(&c); }
    #[test]
    fn whole_bf16(c in case(1, 9000)) { check_whole::<bf16>(&c); }

    #[test]
    fn dims_f32(c in case(70, 90)) { check_dims::<f32>(&c); }
    #[test]
    fn dims_f64(c in case(70, 90)) { check_dims::<f64>(&c); }
    #[test]
    fn dims_f16(c in case(70, 90)) { check_dims::<f16>(&c); }
    #[test]
    fn dims_bf16(c in case(70, 90)) { check_dims::<bf16>(&c); }

    #[test]
    fn reference_f32(c in case(40, 300)) { check_reference::<f32>(&c); check_softmax_reference::<f32>(&c); }
    #[test]
    fn reference_f64(c in case(40, 300)) { check_reference::<f64>(&c); check_softmax_reference::<f64>(&c); }
    #[test]
    fn reference_f16(c in case(40, 300)) { check_reference::<f16>(&c); check_softmax_reference::<f16>(&c); }
    #[test]
    fn reference_bf16(c in case(40, 300)) { check_reference::<bf16>(&c); check_softmax_reference::<bf16>(&c); }
}

/// The parallel paths (rayon over blocks, rows, column tiles) give the same
/// bits as one thread and as the portable room.
fn check_parallel<T: SimdElem>(c: &Case) {
    shim::reduce::set_par_min_len(1);
    check_whole::<T>(c);
    check_dims::<T>(c);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(6), ..ProptestConfig::default() })]

    #[test]
    fn parallel_f32(c in case(1, 30000)) { check_parallel::<f32>(&c); }
    #[test]
    fn parallel_matrix(c in case(9000, 3)) { check_parallel::<f32>(&c); }
    // the same shapes in bf16, a test of its own so that the two (the
    // binary's longest, unoptimized) run side by side
    #[test]
    fn parallel_matrix_bf16(c in case(9000, 3)) { check_parallel::<bf16>(&c); }
    #[test]
    fn parallel_wide(c in case(3, 3000)) { check_parallel::<f64>(&c); check_parallel::<f16>(&c); }

    #[test]
    fn reference_long_f32(c in case(1, 20000)) { check_reference::<f32>(&c); prod_vs_reference::<f32>(&c); }
    #[test]
    fn reference_long_f64(c in case(1, 20000)) { check_reference::<f64>(&c); prod_vs_reference::<f64>(&c); }
    #[test]
    fn reference_long_halves(c in case(1, 20000)) {
        check_reference::<f16>(&c);
        check_reference::<bf16>(&c);
        prod_vs_reference::<f16>(&c);
        prod_vs_reference::<bf16>(&c);
    }
}

/// amin / amax / max-abs norm with kept NaNs of distinct payloads: every ISA
/// and thread count returns the canonical NaN bit for bit (the fast
/// min/max folds record each lane's first NaN and must end with it).
#[test]
fn nan_payloads_are_canonical() {
    let isas = Isa::all_available();
    let pools = pools();
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for &n in &[1usize, 31, 33, 100, 4095, 4097, 9000, 20_011] {
        for trial in 0..4 {
            let nans = [0, 1, 3, 50][trial];
            let mut x32: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 100.0).collect();
            let mut x64: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
            for _ in 0..nans {
                let i = (rnd() % n as u64) as usize;
                let payload = (rnd() % 0x3f_ffff) as u32 + 1;
                let sign = (rnd() & 1) as u32;
                x32[i] = f32::from_bits((sign << 31) | 0x7fc0_0000 | payload);
                x64[i] =
                    f64::from_bits(((sign as u64) << 63) | 0x7ff8_0000_0000_0000 | payload as u64);
            }
            let keep: Vec<bool> = (0..n).map(|_| rnd() % 4 != 0).collect();
            let m = Mask::from_bools(&keep);
            let v32 = MaskedView::new(&x32, &m).unwrap();
            let v64 = MaskedView::new(&x64, &m).unwrap();
            for op in [Reduction::Amax, Reduction::Amin] {
                let w32 = canonical(&x32, &m, op).map(f32::to_bits);
                let w64 = canonical(&x64, &m, op).map(f64::to_bits);
                for &isa in &isas {
                    for pool in &pools {
                        let g32 = pool
                            .install(|| reduce_with(isa, &v32, op))
                            .map(f32::to_bits);
                        let g64 = pool
                            .install(|| reduce_with(isa, &v64, op))
                            .map(f64::to_bits);
                        assert_eq!(g32, w32, "f32 {op:?} {isa:?} n={n} nans={nans}");
                        assert_eq!(g64, w64, "f64 {op:?} {isa:?} n={n} nans={nans}");
                    }
                }
            }
            // per row (dim 1) on a 7-row matrix when the length allows it
            if n % 7 == 0 {
                let mv = MaskedView::matrix(&x32, &m, 7, n / 7).unwrap();
                for (op, dim) in [
                    (Reduction::Amax, 1),
                    (Reduction::Amin, 1),
                    (Reduction::Amax, 0),
                    (Reduction::Amin, 0),
                ] {
                    let first = reduce_dim_with(Isa::Portable, &mv, dim, op).unwrap();
                    // the portable dim result against the canonical fold of
                    // each row / column on its own
                    let lines = if dim == 1 { 7 } else { n / 7 };
                    for l in 0..lines {
                        let idx: Vec<usize> = if dim == 1 {
                            (l * (n / 7)..(l + 1) * (n / 7)).collect()
                        } else {
                            (0..7).map(|r| r * (n / 7) + l).collect()
                        };
                        let xs: Vec<f32> = idx.iter().map(|&i| x32[i]).collect();
                        let ms =
                            Mask::from_bools(&idx.iter().map(|&i| keep[i]).collect::<Vec<_>>());
                        let want = canonical(&xs, &ms, op);
                        let got = first.mask.get(l).then(|| first.values[l]);
                        assert_eq!(
                            got.map(f32::to_bits),
                            want.map(f32::to_bits),
                            "dim{dim} {op:?} line {l}"
                        );
                    }
                    for &isa in &isas {
                        let got = reduce_dim_with(isa, &mv, dim, op).unwrap();
                        let bits = |r: &MaskedVec<f32>| {
                            r.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                        };
                        assert_eq!(got.mask, first.mask);
                        assert_eq!(bits(&got), bits(&first), "dim{dim} {op:?} {isa:?}");
                    }
                }
            }
        }
    }
}

/// Whole blocks in cache are folded two at a time (`block_fold_pair`);
/// these lengths have two to four whole blocks, with a kept NaN, `+inf`,
/// `-inf` or `-0.0` in the first or the second block of a pair: every
/// fold must still equal the canonical order.
#[test]
fn block_pairs_match_canonical() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for (len, dens, special, at) in [
        (8192, 0.9, None, 0),
        (8192 + 37, 0.5, Some(f64::NAN), 5000),
        (8192, 1.0, Some(f64::NAN), 100),
        (3 * 4096 + 5, 0.9, Some(f64::INFINITY), 4097),
        (4 * 4096, 0.5, Some(f64::NEG_INFINITY), 9000),
        (4 * 4096, 1.0, Some(-0.0), 12000),
        (8192, 0.0, None, 0),
    ] {
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let keep: Vec<bool> = (0..len)
            .map(|_| ((next() % 1000) as f64) < dens * 1000.0)
            .collect();
        let mut buf: Vec<f64> = (0..len)
            .map(|i| {
                let r = next();
                if keep[i] {
                    ((r % 20001) as f64 - 10000.0) / 2500.0
                } else {
                    [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e30][(r % 4) as usize]
                }
            })
            .collect();
        let mut keep = keep;
        if let Some(v) = special {
            buf[at] = v;
            keep[at] = true;
        }
        let c = Case {
            buf,
            offset: 0,
            keep,
            rows: 1,
            cols: len,
        };
        check_whole::<f32>(&c);
        check_whole::<f64>(&c);
        check_whole::<f16>(&c);
        check_whole::<bf16>(&c);
    }
}
