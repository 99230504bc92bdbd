//! SIMD reductions and softmax: bit-identical to the canonical order on
//! every ISA and thread count, and within a derived tolerance of the f64
//! reference.

use half::{bf16, f16};
use maskops::canonical::canonical_fold;
use maskops::cpu::reduce::engine::{max_op, min_op, Acc, SimdElem};
use maskops::cpu::reduce::{
    arg_dim_with, arg_with, reduce_dim_with, reduce_with, softmax_backward_with, softmax_with,
    ArgReduction, Reduction,
};
use maskops::cpu::Isa;
use maskops::{Element, Mask, MaskedVec, MaskedView};
use proptest::prelude::*;

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
    (1..=max_rows, 1..=max_cols, 0usize..4, 0u8..4, any::<u64>()).prop_map(
        move |(rows, cols, offset, dens, seed)| {
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
            Case {
                buf,
                offset,
                keep,
                rows,
                cols,
            }
        },
    )
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

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
}
