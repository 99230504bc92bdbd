#!/usr/bin/env python3
"""Golden cases from NumPy's numpy.ma for MaskedArray's MaskPolicy::Intersect
and for dense / row / column operands (the masked array's mask is kept).

Writes tests/golden/ma_<dtype>.json. Run from the repository root:

    /tmp/venvs/torch/bin/python tools/make_golden_ma.py

numpy.ma stores the *inverted* mask (True = masked); the fixtures store
keep-bits (True = kept), maskops' convention. Values are stored as their
IEEE bit patterns (u32 for float32, u64 for float64) so that no JSON float
parser can round them; masked-out results are null. Divisors
are kept away from 0 so that numpy.ma's divide domain (which masks tiny
divisors) does not add masked entries beyond the AND of the masks.
"""
import json
import os

import numpy as np

OPS = {
    "add": np.ma.add,
    "sub": np.ma.subtract,
    "mul": np.ma.multiply,
    "div": np.ma.divide,
    "maximum": np.ma.maximum,
    "minimum": np.ma.minimum,
}


def values(rng, shape, dtype):
    # multiples of 1/64: short JSON, and + - * exact; / and the mixed-sign
    # cases still exercise rounding
    v = np.round(rng.uniform(-8.0, 8.0, size=shape) * 64.0) / 64.0
    # keep |v| >= 0.25 so numpy.ma.divide masks nothing extra
    v = np.where(np.abs(v) < 0.25, 0.25 + np.abs(v), v)
    return v.astype(dtype)


def bits(x):
    """The IEEE bit pattern of one float32/float64 value, as an int."""
    x = np.asarray(x)
    return int(x.view(np.uint32 if x.dtype == np.float32 else np.uint64))


def listify(a):
    return [bits(x) for x in np.asarray(a).ravel()]


def case(rng, op, shape, dtype, kind, density_a, density_b):
    a = values(rng, shape, dtype)
    keep_a = rng.uniform(size=shape) < density_a
    ma = np.ma.masked_array(a, ~keep_a)
    out = {"op": op, "kind": kind, "shape": list(shape), "a": listify(a),
           "a_keep": [bool(x) for x in keep_a.ravel()]}
    rows, cols = shape
    if kind == "masked":
        b = values(rng, shape, dtype)
        keep_b = rng.uniform(size=shape) < density_b
        rhs = np.ma.masked_array(b, ~keep_b)
        out["b"] = listify(b)
        out["b_keep"] = [bool(x) for x in keep_b.ravel()]
    elif kind == "dense":
        rhs = values(rng, shape, dtype)
        out["b"] = listify(rhs)
    elif kind == "row":
        rhs = values(rng, (cols,), dtype)
        out["b"] = listify(rhs)
    elif kind == "col":
        rhs = values(rng, (rows, 1), dtype)
        out["b"] = listify(rhs)
    else:
        raise ValueError(kind)
    with np.errstate(all="ignore"):
        r = OPS[op](ma, rhs)
    assert r.dtype == np.dtype(dtype), (r.dtype, dtype)
    keep_r = ~np.ma.getmaskarray(r)
    out["result_keep"] = [bool(x) for x in keep_r.ravel()]
    # masked-out results are unspecified: written as null
    out["result"] = [bits(v) if k else None
                     for v, k in zip(np.asarray(r.data).ravel(), keep_r.ravel())]
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outdir = os.path.join(root, "tests", "golden")
    os.makedirs(outdir, exist_ok=True)
    for dtype in ("float32", "float64"):
        rng = np.random.default_rng(20261122 if dtype == "float32" else 7)
        cases = []
        # the seed's 2x5 example (mask0 / mask1 of the reductions section)
        data0 = np.arange(10.0).reshape(2, 5).astype(dtype)
        data1 = (np.arange(10.0).reshape(2, 5) + 10).astype(dtype)
        m0 = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 1, 1]], bool)
        m1 = np.array([[0, 0, 0, 1, 1], [1, 1, 0, 0, 0]], bool)
        # the seed passes these as numpy masks (True = masked)
        r = np.ma.masked_array(data0, m0) + np.ma.masked_array(data1, m1)
        cases.append({"op": "add", "kind": "masked", "shape": [2, 5],
                      "a": listify(data0), "a_keep": [bool(x) for x in (~m0).ravel()],
                      "b": listify(data1), "b_keep": [bool(x) for x in (~m1).ravel()],
                      "result_keep": [bool(x) for x in (~np.ma.getmaskarray(r)).ravel()],
                      "result": [bits(v) if k else None for v, k in
                                 zip(r.data.ravel(), (~np.ma.getmaskarray(r)).ravel())]})
        for op in OPS:
            for shape in [(1, 1), (1, 67), (3, 5), (4, 65)]:
                for kind in ("masked", "dense", "row", "col"):
                    dens = [(0.7, 0.6), (0.95, 0.2)]
                    if shape == (3, 5):
                        dens += [(1.0, 1.0), (0.0, 0.5)]
                    for da, db in dens:
                        cases.append(case(rng, op, shape, dtype, kind, da, db))
        name = {"float32": "f32", "float64": "f64"}[dtype]
        path = os.path.join(outdir, f"ma_{name}.json")
        with open(path, "w") as f:
            json.dump({"numpy": np.__version__, "dtype": dtype, "cases": cases}, f)
        print(path, len(cases), "cases")


if __name__ == "__main__":
    main()
