//! MaskedArray and the elementwise kernels against the reference: every
//! available ISA, f32 and f64, odd lengths, unaligned sub-slices, densities
//! 0 / 1 / between, NaN/inf poison in masked-out slots.

mod shim;
use maskops::backend::Isa;
use maskops::reference::elementwise::{self as reference, RefRhs};
use maskops::{
    BinaryOp, Error, Float, Mask, MaskPolicy, MaskedArray, MaskedView, Operand, UnaryOp,
};
use shim::elementwise::{self as ew, Rhs};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const POISON: [f64; 5] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -f64::NAN, 1e300];

/// Kept values: mostly uniform in [-8, 8], with ~6% specials.
fn value<T: Float>(r: &mut Rng) -> T {
    let u = r.unit();
    if u < 0.06 {
        let sp = [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e-40,
            3e30,
            -1.0,
            1.0,
            2.0,
        ];
        T::from_f64(sp[(r.next() % sp.len() as u64) as usize])
    } else {
        T::from_f64(r.unit() * 16.0 - 8.0)
    }
}

struct Case<T> {
    values: Vec<T>,
    mask: Mask,
}

fn case<T: Float>(r: &mut Rng, n: usize, density: f64) -> Case<T> {
    let mask = Mask::from_fn(n, |_| r.unit() < density);
    let values = (0..n)
        .map(|i| {
            if mask.get(i) {
                value(r)
            } else {
                T::from_f64(POISON[(r.next() % 5) as usize])
            }
        })
        .collect();
    Case { values, mask }
}

const LENS: [usize; 12] = [0, 1, 7, 15, 16, 63, 64, 65, 100, 129, 1000, 4099];
const DENSITIES: [f64; 5] = [0.0, 1.0, 0.5, 0.03, 0.97];

fn ulps<T: Float>(a: T, b: T) -> u64 {
    let key = |x: f64| -> i128 {
        // order-preserving integer of the value rounded to T (via f64 bits of T's value)
        let bits = x.to_bits() as i64;
        (if bits < 0 { i64::MIN - bits } else { bits }) as i128
    };
    // measure in T's ulps: scale the f64 distance by T's precision
    let (x, y) = (a.to_f64(), b.to_f64());
    let d = (key(x) - key(y)).unsigned_abs() as u64;
    if T::NAME == "f32" {
        d >> 29
    } else {
        d
    }
}

fn same<T: Float>(a: T, b: T) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_f64().to_bits() == b.to_f64().to_bits()
}

/// Fast result vs reference on kept entries.
fn close<T: Float>(fast: T, refv: T, x: T, tol: u64) -> bool {
    if same(fast, refv) {
        return true;
    }
    if tol == 0 || fast.is_nan() || refv.is_nan() {
        return false;
    }
    let min_pos = if T::NAME == "f32" {
        f32::MIN_POSITIVE as f64
    } else {
        f64::MIN_POSITIVE
    };
    let xv = x.to_f64().abs();
    // Outside the documented accuracy range (subnormal results, huge
    // inputs) only cross-ISA bit identity is checked.
    if refv.to_f64().abs() < min_pos || xv > 1e4 || (xv != 0.0 && xv < min_pos) {
        return true;
    }
    ulps(fast, refv) <= tol
}

fn unary_ops<T: Float>() -> Vec<UnaryOp<T>> {
    let f = T::from_f64;
    vec![
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sqrt,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Pow(f(2.0)),
        UnaryOp::Pow(f(3.0)),
        UnaryOp::Pow(f(0.5)),
        UnaryOp::Pow(f(-0.5)),
        UnaryOp::Pow(f(-1.0)),
        UnaryOp::Pow(f(-2.0)),
        UnaryOp::Pow(f(1.0)),
        UnaryOp::Pow(f(1.7)),
        UnaryOp::Pow(f(0.0)),
        UnaryOp::AddScalar(f(1.25)),
        UnaryOp::MulScalar(f(-0.75)),
        UnaryOp::Clamp(f(-2.0), f(3.5)),
        UnaryOp::Clamp(f(0.0), f(0.0)),
        UnaryOp::Clamp(f(4.0), f(-4.0)),
    ]
}

const BIN_OPS: [BinaryOp; 6] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Maximum,
    BinaryOp::Minimum,
];

fn check_unary<T: Float>(seed: u64) {
    let mut r = Rng(seed);
    let isas = Isa::all_available();
    for &n in &LENS {
        for &d in &DENSITIES {
            let c = case::<T>(&mut r, n, d);
            // an unaligned copy: data starts 3 elements into a buffer
            let mut buf = vec![T::ZERO; n + 3];
            buf[3..].copy_from_slice(&c.values);
            for op in unary_ops::<T>() {
                let want = reference::unary(op, &c.values, &c.mask).unwrap();
                let tol = reference::tolerance_ulps(op);
                let mut first: Option<Vec<T>> = None;
                for &isa in &isas {
                    // out of place into a sentinel-filled buffer
                    let sentinel = T::from_f64(-12345.5);
                    let mut dst = vec![sentinel; n];
                    ew::unary_with(isa, op, &buf[3..], &c.mask, &mut dst).unwrap();
                    // in place on the unaligned slice
                    let mut inplace = buf.clone();
                    ew::unary_inplace_with(isa, op, &mut inplace[3..], &c.mask).unwrap();
                    for i in 0..n {
                        if c.mask.get(i) {
                            assert!(
                                close(dst[i], want.values[i], c.values[i], tol),
                                "{} {isa:?} {op:?} n={n} d={d} i={i}: x={:?} fast={:?} ref={:?}",
                                T::NAME,
                                c.values[i],
                                dst[i],
                                want.values[i]
                            );
                            assert!(same(inplace[3 + i], dst[i]), "in place differs");
                        } else {
                            assert!(same(dst[i], sentinel), "masked-out slot written");
                            assert!(same(inplace[3 + i], c.values[i]), "masked-out slot changed");
                        }
                    }
                    match &first {
                        None => first = Some(dst),
                        Some(f) => {
                            for i in 0..n {
                                assert!(
                                    same(f[i], dst[i]),
                                    "{} {isa:?} {op:?} differs from portable at {i}: {:?} vs {:?} (x={:?})",
                                    T::NAME,
                                    dst[i],
                                    f[i],
                                    c.values[i]
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn unary_matches_reference_f32() {
    check_unary::<f32>(1);
}

#[test]
fn unary_matches_reference_f64() {
    check_unary::<f64>(2);
}

/// Shapes (rows, cols) including 1-D-like and odd sizes.
const SHAPES: [(usize, usize); 15] = [
    (1, 0),
    (1500, 2),
    (5, 0),
    (1, 1),
    (70, 2),
    (300, 3),
    (9, 15),
    (2, 63),
    (1, 77),
    (3, 5),
    (7, 64),
    (5, 65),
    (13, 31),
    (64, 17),
    (31, 129),
];

fn check_binary<T: Float>(seed: u64) {
    let mut r = Rng(seed);
    let isas = Isa::all_available();
    for &(rows, cols) in &SHAPES {
        let n = rows * cols;
        for &d in &DENSITIES {
            let a = case::<T>(&mut r, n, d);
            let b = case::<T>(&mut r, n, 0.8);
            let bsame = Case {
                values: b.values.clone(),
                mask: a.mask.clone(),
            };
            let row: Vec<T> = (0..cols).map(|_| value(&mut r)).collect();
            let col: Vec<T> = (0..rows).map(|_| value(&mut r)).collect();
            let s = value::<T>(&mut r);
            for op in BIN_OPS {
                let rhs_list: Vec<(Rhs<T>, RefRhs<T>, Mask)> = vec![
                    (
                        Rhs::Slice(&bsame.values),
                        RefRhs::Masked(&bsame.values, &bsame.mask, MaskPolicy::Match),
                        a.mask.clone(),
                    ),
                    (
                        Rhs::Slice(&b.values),
                        RefRhs::Masked(&b.values, &b.mask, MaskPolicy::Intersect),
                        a.mask.and(&b.mask).unwrap(),
                    ),
                    (
                        Rhs::Slice(&b.values),
                        RefRhs::Dense(&b.values),
                        a.mask.clone(),
                    ),
                    (Rhs::Row(&row), RefRhs::Row(&row), a.mask.clone()),
                    (Rhs::Col(&col), RefRhs::Col(&col), a.mask.clone()),
                    (Rhs::Scalar(s), RefRhs::Scalar(s), a.mask.clone()),
                ];
                for (rhs, rref, keep) in rhs_list {
                    let want = reference::binary(op, &a.values, &a.mask, rref, rows, cols).unwrap();
                    assert_eq!(want.mask, keep);
                    let mut first: Option<Vec<T>> = None;
                    for &isa in &isas {
                        let sentinel = T::from_f64(777.25);
                        let mut dst = vec![sentinel; n];
                        ew::binary_with(isa, op, &a.values, rhs, rows, cols, &keep, &mut dst)
                            .unwrap();
                        let mut buf = vec![T::ZERO; n + 5];
                        buf[5..].copy_from_slice(&a.values);
                        ew::binary_inplace_with(isa, op, &mut buf[5..], rhs, rows, cols, &keep)
                            .unwrap();
                        for i in 0..n {
                            if keep.get(i) {
                                assert!(
                                    same(dst[i], want.values[i]),
                                    "{} {isa:?} {op:?} {rhs:?} ({rows}x{cols}) i={i}: {:?} vs ref {:?}",
                                    T::NAME,
                                    dst[i],
                                    want.values[i]
                                );
                                assert!(same(buf[5 + i], dst[i]));
                            } else {
                                assert!(same(dst[i], sentinel), "masked-out slot written");
                                assert!(same(buf[5 + i], a.values[i]), "masked-out slot changed");
                            }
                        }
                        match &first {
                            None => first = Some(dst),
                            Some(f) => assert!(f.iter().zip(&dst).all(|(x, y)| same(*x, *y))),
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn binary_matches_reference_f32() {
    check_binary::<f32>(3);
}

#[test]
fn binary_matches_reference_f64() {
    check_binary::<f64>(4);
}

/// Large inputs go through rayon; the result must equal the serial one.
#[test]
fn parallel_equals_serial() {
    let n = ew::PAR_MIN_LEN * 2 + 1234;
    let mut r = Rng(9);
    let c = case::<f32>(&mut r, n, 0.6);
    let b: Vec<f32> = (0..n).map(|_| value(&mut r)).collect();
    for &isa in &Isa::all_available() {
        let mut par = c.values.clone();
        ew::unary_inplace_with(isa, UnaryOp::Exp, &mut par, &c.mask).unwrap();
        let mut par2 = vec![0.0f32; n];
        ew::binary_with(
            isa,
            BinaryOp::Div,
            &c.values,
            Rhs::Slice(&b),
            1,
            n,
            &c.mask,
            &mut par2,
        )
        .unwrap();
        // serial: pieces below the threshold, at odd offsets via sub-masks
        let mut ser = c.values.clone();
        let mut ser2 = vec![0.0f32; n];
        let step = 100_003;
        let mut s = 0;
        while s < n {
            let len = step.min(n - s);
            let m = c.mask.slice(s, len).unwrap();
            ew::unary_inplace_with(isa, UnaryOp::Exp, &mut ser[s..s + len], &m).unwrap();
            ew::binary_with(
                isa,
                BinaryOp::Div,
                &c.values[s..s + len],
                Rhs::Slice(&b[s..s + len]),
                1,
                len,
                &m,
                &mut ser2[s..s + len],
            )
            .unwrap();
            s += len;
        }
        for i in 0..n {
            assert!(same(par[i], ser[i]), "exp {isa:?} at {i}");
            assert!(same(par2[i], ser2[i]), "div {isa:?} at {i}");
        }
        // broadcast over a tall matrix (rows split across tasks)
        let cols = 1001;
        let rows = n / cols;
        let m = c.mask.slice(0, rows * cols).unwrap();
        let row: Vec<f32> = (0..cols).map(|j| j as f32 * 0.5 - 3.0).collect();
        let mut out = vec![0.0f32; rows * cols];
        ew::binary_with(
            isa,
            BinaryOp::Mul,
            &c.values[..rows * cols],
            Rhs::Row(&row),
            rows,
            cols,
            &m,
            &mut out,
        )
        .unwrap();
        for i in 0..rows * cols {
            if m.get(i) {
                assert!(same(out[i], c.values[i] * row[i % cols]));
            }
        }
    }
}

/// Forcing the pool at small sizes (threshold 0) changes no bit.
#[test]
fn threshold_does_not_change_results() {
    let mut r = Rng(10);
    for &n in &[1usize, 100, 4099, 70_000] {
        let c = case::<f64>(&mut r, n, 0.5);
        let b: Vec<f64> = (0..n).map(|_| value(&mut r)).collect();
        let run = || {
            let mut x = c.values.clone();
            ew::unary_inplace(UnaryOp::Sqrt, &mut x, &c.mask).unwrap();
            ew::binary_inplace(BinaryOp::Maximum, &mut x, Rhs::Slice(&b), 1, n, &c.mask).unwrap();
            x
        };
        let serial = run();
        ew::set_parallel_min_len(0);
        let pooled = run();
        ew::set_parallel_min_len(ew::PAR_MIN_LEN);
        assert!(serial.iter().zip(&pooled).all(|(x, y)| same(*x, *y)));
    }
    // narrow broadcasts (pattern path) split over tasks
    let (rows, cols) = (40_000, 3);
    let c = case::<f32>(&mut r, rows * cols, 0.7);
    let row: Vec<f32> = (0..cols).map(|_| value(&mut r)).collect();
    let col: Vec<f32> = (0..rows).map(|_| value(&mut r)).collect();
    for (rhs, rref) in [
        (Rhs::Row(&row), RefRhs::Row(&row)),
        (Rhs::Col(&col), RefRhs::Col(&col)),
    ] {
        let want = reference::binary(BinaryOp::Sub, &c.values, &c.mask, rref, rows, cols).unwrap();
        for force in [false, true] {
            if force {
                ew::set_parallel_min_len(0);
            }
            let mut out = vec![0.0f32; rows * cols];
            ew::binary(BinaryOp::Sub, &c.values, rhs, rows, cols, &c.mask, &mut out).unwrap();
            ew::set_parallel_min_len(ew::PAR_MIN_LEN);
            for i in c.mask.iter_ones() {
                assert!(same(out[i], want.values[i]), "{rhs:?} {force} at {i}");
            }
        }
    }
}

// ----- MaskedArray API -----

#[test]
fn seed_first_example() {
    // data = arange(5); mask = [T, T, F, T, F]; m1 has ~mask
    let data: Vec<f32> = (0..5).map(|i| i as f32).collect();
    let mask = Mask::from_bools(&[true, true, false, true, false]);
    let m0 = MaskedArray::new(data.clone(), mask.clone()).unwrap();
    let m1 = MaskedArray::new(data.clone(), mask.not()).unwrap();
    let s = m0.add(&m0).unwrap();
    assert_eq!(s.mask(), &mask);
    assert_eq!(s.to_dense(-1.0), vec![0.0, 2.0, -1.0, 6.0, -1.0]);
    // masks must match: first differing position is 0
    assert_eq!(m0.add(&m1), Err(Error::MaskMismatch { position: 0 }));
    // NumPy: npm0 + npm1 is fully masked
    let i = m0
        .binary(BinaryOp::Add, &m1, MaskPolicy::Intersect)
        .unwrap();
    assert_eq!(i.mask().count_ones(), 0);
    // m2t = masked_tensor(m0t + m1t, m0.mask() & m1.mask())
    let m0t = m0.to_dense(0.0);
    let m1t = m1.to_dense(0.0);
    assert_eq!(m0t, vec![0.0, 1.0, 0.0, 3.0, 0.0]);
    assert_eq!(m1t, vec![0.0, 0.0, 2.0, 0.0, 4.0]);
}

#[test]
fn mask_mismatch_names_first_difference() {
    let n = 200;
    let a = Mask::from_fn(n, |i| i % 3 == 0);
    let mut b = a.clone();
    b.set(150, !b.get(150));
    b.set(170, !b.get(170));
    let x = MaskedArray::new(vec![1.0f64; n], a).unwrap();
    let y = MaskedArray::new(vec![2.0f64; n], b).unwrap();
    for op in BIN_OPS {
        assert_eq!(
            x.binary(op, &y, MaskPolicy::Match),
            Err(Error::MaskMismatch { position: 150 })
        );
    }
    let mut z = x.clone();
    assert_eq!(z.mul_assign(&y), Err(Error::MaskMismatch { position: 150 }));
    assert_eq!(z, x, "a failed in-place op changes nothing");
    assert_eq!(z.values(), x.values());
    let msg = x.sub(&y).unwrap_err().to_string();
    assert!(msg.contains("150"), "{msg}");
}

#[test]
fn shape_and_length_errors() {
    let a = MaskedArray::matrix(vec![1.0f32; 6], Mask::ones(6), 2, 3).unwrap();
    let b = MaskedArray::matrix(vec![1.0f32; 6], Mask::ones(6), 3, 2).unwrap();
    let c = MaskedArray::new(vec![1.0f32; 5], Mask::ones(5)).unwrap();
    assert!(matches!(a.add(&b), Err(Error::Shape { arg: "other", .. })));
    assert!(matches!(
        a.add(&c),
        Err(Error::Length {
            arg: "other",
            expected: 6,
            actual: 5
        })
    ));
    assert!(matches!(
        a.add(&[1.0f32; 4]),
        Err(Error::Length {
            arg: "other",
            expected: 6,
            actual: 4
        })
    ));
    assert!(matches!(
        a.add(Operand::Row(&[1.0; 2])),
        Err(Error::Length {
            arg: "row",
            expected: 3,
            actual: 2
        })
    ));
    assert!(matches!(
        a.add(Operand::Col(&[1.0; 3])),
        Err(Error::Length {
            arg: "col",
            expected: 2,
            actual: 3
        })
    ));
    assert!(matches!(
        MaskedArray::matrix(vec![1.0f32; 6], Mask::ones(6), 4, 2),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        MaskedArray::new(vec![1.0f32; 6], Mask::ones(5)),
        Err(Error::Length {
            arg: "mask",
            expected: 6,
            actual: 5
        })
    ));
    assert!(matches!(
        MaskedArray::from_parts(vec![1.0f32; 6], Mask::ones(6), &[2, 3, 1]),
        Err(Error::Dim { .. })
    ));
    assert!(matches!(
        a.clamp(f32::NAN, 1.0),
        Err(Error::Param { name: "min", .. })
    ));
    let mut out = vec![0.0f32; 5];
    assert!(matches!(
        a.to_dense_into(0.0, &mut out),
        Err(Error::Length { arg: "out", .. })
    ));
    assert!(matches!(
        a.update_dense(BinaryOp::Add, &mut out),
        Err(Error::Length { arg: "dense", .. })
    ));
}

#[test]
fn broadcasting_keeps_the_mask() {
    // masking-demo style: a cells x genes matrix, per-gene (row vector) and
    // per-cell (column vector) operands
    let (rows, cols) = (3, 4);
    let vals: Vec<f64> = (0..12).map(|i| i as f64).collect();
    let mask = Mask::from_fn(12, |i| i % 5 != 1);
    let a = MaskedArray::matrix(vals.clone(), mask.clone(), rows, cols).unwrap();
    let gene_mean = [10.0, 20.0, 30.0, 40.0];
    let cell_scale = [1.0, 2.0, 3.0];
    let centered = a.sub(Operand::Row(&gene_mean)).unwrap();
    let scaled = a.mul(Operand::Col(&cell_scale)).unwrap();
    assert_eq!(centered.mask(), &mask);
    assert_eq!(scaled.mask(), &mask);
    for i in 0..12 {
        assert_eq!(
            centered.get(i),
            mask.get(i).then(|| vals[i] - gene_mean[i % cols])
        );
        assert_eq!(
            scaled.get(i),
            mask.get(i).then(|| vals[i] * cell_scale[i / cols])
        );
    }
    // in place, allocation-free
    let mut b = a.clone();
    b.sub_assign(Operand::Row(&gene_mean)).unwrap();
    assert_eq!(b.to_dense(0.0), centered.to_dense(0.0));
    // a 1-D array: row = its length, col = 1
    let v = MaskedArray::new(vec![1.0f64, 2.0, 3.0], Mask::ones(3)).unwrap();
    assert_eq!(
        v.add(Operand::Col(&[10.0])).unwrap().to_dense(0.0),
        vec![11.0, 12.0, 13.0]
    );
    assert_eq!(
        v.add(Operand::Row(&[1.0, 2.0, 3.0])).unwrap().to_dense(0.0),
        vec![2.0, 4.0, 6.0]
    );
}

#[test]
fn poison_never_leaks() {
    let n = 300;
    let mask = Mask::from_fn(n, |i| i % 7 != 3);
    let vals: Vec<f32> = (0..n)
        .map(|i| {
            if mask.get(i) {
                1.0 + i as f32 * 0.01
            } else {
                f32::NAN
            }
        })
        .collect();
    let a = MaskedArray::new(vals, mask.clone()).unwrap();
    let other: Vec<f32> = (0..n)
        .map(|i| if mask.get(i) { 2.0 } else { f32::INFINITY })
        .collect();
    let b = MaskedArray::new(other.clone(), mask.clone()).unwrap();
    for isa in Isa::all_available() {
        let r = a
            .map_with(isa, UnaryOp::Log)
            .unwrap()
            .binary_with(isa, BinaryOp::Mul, &b, MaskPolicy::Match)
            .unwrap()
            .map_with(isa, UnaryOp::Exp)
            .unwrap();
        let dense = r.to_dense(0.0);
        assert!(dense.iter().all(|x| x.is_finite()), "{isa:?}");
        // reductions through view() see only kept entries
        assert!(r.view().sum().is_some_and(|s| s.is_finite()));
        let mut acc = vec![0.0f32; n];
        r.update_dense_with(isa, BinaryOp::Add, &mut acc).unwrap();
        assert!(acc.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn to_dense_and_views() {
    let mut r = Rng(5);
    for &n in &LENS {
        for &d in &DENSITIES {
            let c = case::<f64>(&mut r, n, d);
            let a = MaskedArray::new(c.values.clone(), c.mask.clone()).unwrap();
            let want = reference::to_dense(&c.values, &c.mask, -3.0);
            let got = a.to_dense(-3.0);
            assert!(got.iter().zip(&want).all(|(x, y)| same(*x, *y)));
            let mut buf = vec![9.0; n];
            a.to_dense_into(-3.0, &mut buf).unwrap();
            assert!(buf.iter().zip(&want).all(|(x, y)| same(*x, *y)));
            let v = a.view();
            assert_eq!(v.len(), n);
            let back = MaskedArray::from_view(&v);
            assert_eq!(back.mask(), a.mask());
            assert_eq!(back.shape(), &[n]);
        }
    }
    let big = ew::PAR_MIN_LEN + 77;
    let c = case::<f32>(&mut r, big, 0.5);
    let a = MaskedArray::new(c.values.clone(), c.mask.clone()).unwrap();
    let want = reference::to_dense(&c.values, &c.mask, 0.0);
    assert!(a.to_dense(0.0).iter().zip(&want).all(|(x, y)| same(*x, *y)));
    let m = MaskedArray::matrix(vec![1.0f32; 6], Mask::ones(6), 2, 3).unwrap();
    assert_eq!(m.shape(), &[2, 3]);
    assert_eq!((m.rows(), m.cols(), m.ndim()), (2, 3, 2));
    let v = m.view();
    assert_eq!((v.rows(), v.cols(), v.ndim()), (2, 3, 2));
    let from: MaskedArray<f32> = MaskedView::matrix(&[1.0, 2.0], &Mask::ones(2), 1, 2)
        .unwrap()
        .into();
    assert_eq!(from.shape(), &[1, 2]);
}

#[test]
fn unary_methods_match_map() {
    let mut r = Rng(6);
    let c = case::<f32>(&mut r, 333, 0.7);
    let a = MaskedArray::new(c.values.clone(), c.mask.clone()).unwrap();
    let pairs: Vec<(MaskedArray<f32>, UnaryOp<f32>)> = vec![
        (a.neg(), UnaryOp::Neg),
        (a.abs(), UnaryOp::Abs),
        (a.sqrt(), UnaryOp::Sqrt),
        (a.exp(), UnaryOp::Exp),
        (a.log(), UnaryOp::Log),
        (a.pow(2.0), UnaryOp::Pow(2.0)),
        (a.add_scalar(1.5), UnaryOp::AddScalar(1.5)),
        (a.mul_scalar(0.5), UnaryOp::MulScalar(0.5)),
        (a.clamp(-1.0, 1.0).unwrap(), UnaryOp::Clamp(-1.0, 1.0)),
    ];
    for (got, op) in pairs {
        let want = reference::unary(op, &c.values, &c.mask).unwrap();
        let tol = reference::tolerance_ulps(op);
        assert_eq!(got.mask(), &c.mask);
        for i in c.mask.iter_ones() {
            assert!(
                close(got.values()[i], want.values[i], c.values[i], tol),
                "{op:?} {i}"
            );
        }
        // in-place forms give the same bits
        let mut b = a.clone();
        b.map_assign(op).unwrap();
        for i in c.mask.iter_ones() {
            assert!(same(b.values()[i], got.values()[i]));
        }
    }
    let mut b = a.clone();
    b.neg_assign();
    b.abs_assign();
    b.sqrt_assign();
    b.add_scalar_assign(1.0);
    b.mul_scalar_assign(2.0);
    b.log_assign();
    b.exp_assign();
    b.pow_assign(2.0);
    b.clamp_assign(0.0, 100.0).unwrap();
    let chain = a
        .neg()
        .abs()
        .sqrt()
        .add_scalar(1.0)
        .mul_scalar(2.0)
        .log()
        .exp()
        .pow(2.0)
        .clamp(0.0, 100.0)
        .unwrap();
    for i in c.mask.iter_ones() {
        assert!(same(b.values()[i], chain.values()[i]));
    }
}

#[test]
fn into_caller_buffers() {
    let mut r = Rng(11);
    let (rows, cols) = (9, 70);
    let a = case::<f32>(&mut r, rows * cols, 0.6);
    let b = case::<f32>(&mut r, rows * cols, 0.7);
    let x = MaskedArray::matrix(a.values.clone(), a.mask.clone(), rows, cols).unwrap();
    let y = MaskedArray::matrix(b.values.clone(), b.mask.clone(), rows, cols).unwrap();
    let row: Vec<f32> = (0..cols).map(|j| j as f32 - 3.0).collect();
    for isa in Isa::all_available() {
        let mut out = vec![-7.0f32; rows * cols];
        x.map_into_with(isa, UnaryOp::Sqrt, &mut out).unwrap();
        let want = x.map_with(isa, UnaryOp::Sqrt).unwrap();
        for (i, &o) in out.iter().enumerate() {
            match want.get(i) {
                Some(w) => assert!(same(o, w)),
                None => assert_eq!(o, -7.0),
            }
        }
        let mut out = vec![-7.0f32; rows * cols];
        x.binary_into_with(isa, BinaryOp::Div, &y, MaskPolicy::Intersect, &mut out)
            .unwrap();
        let want = x
            .binary_with(isa, BinaryOp::Div, &y, MaskPolicy::Intersect)
            .unwrap();
        for (i, &o) in out.iter().enumerate() {
            match want.get(i) {
                Some(w) => assert!(same(o, w)),
                None => assert_eq!(o, -7.0),
            }
        }
        let mut out = vec![-7.0f32; rows * cols];
        x.binary_into_with(
            isa,
            BinaryOp::Sub,
            Operand::Row(&row),
            MaskPolicy::Match,
            &mut out,
        )
        .unwrap();
        for i in 0..rows * cols {
            if a.mask.get(i) {
                assert!(same(out[i], a.values[i] - row[i % cols]));
            } else {
                assert_eq!(out[i], -7.0);
            }
        }
        assert_eq!(
            x.binary_into_with(isa, BinaryOp::Add, &y, MaskPolicy::Match, &mut out),
            Err(Error::MaskMismatch {
                position: (0..rows * cols)
                    .find(|&i| a.mask.get(i) != b.mask.get(i))
                    .unwrap()
            })
        );
        assert!(matches!(
            x.map_into_with(isa, UnaryOp::Neg, &mut out[1..]),
            Err(Error::Length { arg: "out", .. })
        ));
    }
}

#[test]
fn equality_ignores_masked_out_slots() {
    let m = Mask::from_bools(&[true, false, true]);
    let a = MaskedArray::new(vec![1.0f32, f32::NAN, 3.0], m.clone()).unwrap();
    let b = MaskedArray::new(vec![1.0f32, 123.0, 3.0], m.clone()).unwrap();
    assert_eq!(a, b);
    let c = MaskedArray::new(vec![1.0f32, 123.0, 4.0], m.clone()).unwrap();
    assert_ne!(a, c);
    let d = MaskedArray::new(vec![1.0f32, 123.0, 3.0], Mask::ones(3)).unwrap();
    assert_ne!(b, d);
    let e = MaskedArray::matrix(vec![1.0f32, 123.0, 3.0], m, 1, 3).unwrap();
    assert_ne!(b, e, "1-D and 1x3 differ in shape");
}

#[test]
fn intersect_in_place_updates_mask() {
    let a_mask = Mask::from_bools(&[true, true, false, true, false, true]);
    let b_mask = Mask::from_bools(&[true, false, false, true, true, true]);
    let mut a = MaskedArray::new(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], a_mask.clone()).unwrap();
    let b = MaskedArray::new(
        vec![10.0f64, f64::NAN, 30.0, 40.0, 50.0, 60.0],
        b_mask.clone(),
    )
    .unwrap();
    a.binary_assign(BinaryOp::Add, &b, MaskPolicy::Intersect)
        .unwrap();
    assert_eq!(a.mask(), &a_mask.and(&b_mask).unwrap());
    assert_eq!(a.to_dense(0.0), vec![11.0, 0.0, 0.0, 44.0, 0.0, 66.0]);
    // subset: mask unchanged
    let mut c = MaskedArray::new(
        vec![1.0f64; 6],
        Mask::from_bools(&[true, false, false, false, false, true]),
    )
    .unwrap();
    c.binary_assign(BinaryOp::Mul, &b, MaskPolicy::Intersect)
        .unwrap();
    assert_eq!(c.to_dense(0.0), vec![10.0, 0.0, 0.0, 0.0, 0.0, 60.0]);
}

#[test]
fn maximum_minimum_semantics() {
    let a = [1.0f32, f32::NAN, 2.0, -0.0, 0.0, 5.0];
    let b = [2.0f32, 1.0, f32::NAN, 0.0, -0.0, 5.0];
    let m = Mask::ones(6);
    let x = MaskedArray::new(a.to_vec(), m.clone()).unwrap();
    let y = MaskedArray::new(b.to_vec(), m.clone()).unwrap();
    for isa in Isa::all_available() {
        let mx = x
            .binary_with(isa, BinaryOp::Maximum, &y, MaskPolicy::Match)
            .unwrap();
        let mn = x
            .binary_with(isa, BinaryOp::Minimum, &y, MaskPolicy::Match)
            .unwrap();
        assert_eq!(mx.values()[0], 2.0);
        assert!(mx.values()[1].is_nan() && mx.values()[2].is_nan());
        assert!(mn.values()[1].is_nan() && mn.values()[2].is_nan());
        assert_eq!(mn.values()[0], 1.0);
        // ties give b
        assert_eq!(mx.values()[3].to_bits(), 0.0f32.to_bits());
        assert_eq!(mx.values()[4].to_bits(), (-0.0f32).to_bits());
        let c = x.clamp(0.0, 3.0).unwrap();
        assert!(c.values()[1].is_nan());
        assert_eq!(c.values()[3].to_bits(), 0.0f32.to_bits());
        assert_eq!(c.values()[5], 3.0);
    }
}
