//! Golden cases from NumPy's `numpy.ma` (tools/make_golden_ma.py):
//! `MaskPolicy::Intersect` between masked arrays, and dense / row / column
//! operands keeping the masked array's mask. Kept values must match NumPy
//! bit for bit, on every available ISA.

use maskops::backend::Isa;
use maskops::{BinaryOp, Float, Mask, MaskPolicy, MaskedArray, Operand};
use serde_json::Value;

fn op_of(s: &str) -> BinaryOp {
    match s {
        "add" => BinaryOp::Add,
        "sub" => BinaryOp::Sub,
        "mul" => BinaryOp::Mul,
        "div" => BinaryOp::Div,
        "maximum" => BinaryOp::Maximum,
        "minimum" => BinaryOp::Minimum,
        _ => panic!("unknown op {s}"),
    }
}

/// A value stored as its IEEE bit pattern (u32 for f32, u64 for f64).
fn from_bits<T: Float>(b: u64) -> T {
    if T::NAME == "f32" {
        T::from_f32(f32::from_bits(b as u32))
    } else {
        T::from_f64(f64::from_bits(b))
    }
}

fn nums<T: Float>(v: &Value) -> Vec<T> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| from_bits(x.as_u64().unwrap()))
        .collect()
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_bool().unwrap())
        .collect()
}

fn run<T: Float>(file: &str) {
    let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() > 200);
    let mut checked = 0usize;
    for (ci, c) in cases.iter().enumerate() {
        let op = op_of(c["op"].as_str().unwrap());
        let shape: Vec<usize> = c["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        let (rows, cols) = (shape[0], shape[1]);
        let a = MaskedArray::matrix(
            nums::<T>(&c["a"]),
            Mask::from_bools(&bools(&c["a_keep"])),
            rows,
            cols,
        )
        .unwrap();
        let b = nums::<T>(&c["b"]);
        let want_keep = Mask::from_bools(&bools(&c["result_keep"]));
        let want: Vec<Option<T>> = c["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().map(from_bits::<T>))
            .collect();
        let kind = c["kind"].as_str().unwrap();
        let bm;
        let rhs: Operand<T> = match kind {
            "masked" => {
                bm = MaskedArray::matrix(
                    b.clone(),
                    Mask::from_bools(&bools(&c["b_keep"])),
                    rows,
                    cols,
                )
                .unwrap();
                Operand::Array(&bm)
            }
            "dense" => Operand::Dense(&b),
            "row" => Operand::Row(&b),
            "col" => Operand::Col(&b),
            _ => panic!("kind {kind}"),
        };
        for isa in Isa::all_available() {
            let got = a.binary_with(isa, op, rhs, MaskPolicy::Intersect).unwrap();
            assert_eq!(got.mask(), &want_keep, "case {ci} {op:?} {kind} mask");
            let mut inplace = a.clone();
            inplace
                .binary_assign_with(isa, op, rhs, MaskPolicy::Intersect)
                .unwrap();
            assert_eq!(inplace.mask(), &want_keep);
            for (i, w) in want.iter().enumerate() {
                match w {
                    Some(w) => {
                        let g = got.get(i).unwrap();
                        assert!(
                            g.to_f64().to_bits() == w.to_f64().to_bits(),
                            "case {ci} {isa:?} {op:?} {kind} {rows}x{cols} at {i}: {g:?} vs numpy {w:?}"
                        );
                        assert_eq!(
                            inplace.get(i).unwrap().to_f64().to_bits(),
                            g.to_f64().to_bits()
                        );
                        checked += 1;
                    }
                    None => assert_eq!(got.get(i), None),
                }
            }
            // Under the default policy, differing masks are an error.
            if kind == "masked" {
                let r = a.binary_with(isa, op, rhs, MaskPolicy::Match);
                let differ = a.mask() != bm_mask(&rhs);
                assert_eq!(r.is_err(), differ, "case {ci}");
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

fn bm_mask<'a, T: Float>(r: &Operand<'a, T>) -> &'a Mask {
    match r {
        Operand::Array(a) => a.mask(),
        _ => unreachable!(),
    }
}

#[test]
fn numpy_ma_f32() {
    run::<f32>("ma_f32.json");
}

#[test]
fn numpy_ma_f64() {
    run::<f64>("ma_f64.json");
}
