#!/usr/bin/env python3
"""Write the PyTorch golden fixtures of maskops under tests/golden/.

Not run by CI. Needs PyTorch and NumPy; see tools/README.md.

    python tools/make_golden.py            # (re)writes tests/golden/*.json

Every fixture is deterministic (fixed seeds, no time stamps), so running the
script twice gives byte-identical files.

Encoding (read by tests/golden.rs):
  * f32 / f64 arrays: JSON numbers (Python repr, shortest round-trip), and the
    strings "NaN", "Infinity", "-Infinity" for non-finite values.  Every *input*
    value lies on a coarse dyadic grid (multiples of 2^-10 below 2^10, or a short
    decimal such as a hyper-parameter), so its decimal text has at most 15
    significant digits and any JSON parser (serde_json's fast path included)
    reads back exactly the same binary value.  Expected outputs are full-precision
    f64 reprs of the exact math and are compared with a tolerance anyway.
  * f16 / bf16 input arrays: their u16 bit patterns (JSON integers).
  * masks: arrays of 0/1, 1 = keep.  Row-major for matrices.
  * Every masked-out slot of every input holds poison (NaN, +inf, -inf in turn):
    a kernel that reads it leaks it into the result and the test fails.

Expected values are computed in float64 by PyTorch from the (rounded) inputs,
on the kept elements only, following torch.masked / torch.nn.functional /
torch.optim.Adagrad semantics, with maskops's rules on top (docs/design.md):
  * a reduction with nothing kept -> null (whole) / a cleared output bit (per dim),
    var/std with count <= correction as well; values under cleared bits are 0;
  * softmax over a fully masked row -> that row's output bits cleared, values 0;
  * a loss averaged over nothing kept -> value 0 and zero gradient (torch: NaN);
  * masked Adagrad = torch's sparse Adagrad with the kept positions as indices.
Where torch.masked implements the op, the script cross-checks the hand-written
computation against it.
"""

import json
import math
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

torch.use_deterministic_algorithms(True)
warnings.filterwarnings("ignore", message="Sparse invariant checks")
F64 = torch.float64
GRID = 1024.0  # inputs are multiples of 1/GRID
POISON = [float("nan"), float("inf"), float("-inf")]
TORCH_DT = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16}
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")


# --------------------------------------------------------------------------- encoding

def num(v):
    """One float as JSON: a number, or a string for non-finite values."""
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def check_exact_text(v):
    """Assert that repr(v) has <= 15 significant digits (exact with any JSON parser)."""
    if not math.isfinite(v) or v == 0.0:
        return
    s = repr(float(v)).lower().lstrip("-")
    mant, _, exp = s.partition("e")
    digits = mant.replace(".", "").lstrip("0")
    assert len(digits.rstrip("0")) <= 15, (v, s)
    assert abs(int(exp or 0)) <= 22 and abs(v) < 1e15, (v, s)


def enc(t, dtype):
    """Encode an input tensor of dtype `dtype` (already rounded to it)."""
    t = t.detach().reshape(-1)
    if dtype in ("f16", "bf16"):
        bits = t.to(TORCH_DT[dtype]).view(torch.int16).to(torch.int32) & 0xFFFF
        return [int(b) for b in bits.tolist()]
    out = []
    for v in t.to(F64).tolist():
        check_exact_text(v)
        out.append(num(v))
    return out


def out(t):
    """Encode an expected f64 output."""
    return [num(v) for v in t.detach().reshape(-1).to(F64).tolist()]


def bits(m):
    return [1 if b else 0 for b in m.reshape(-1).tolist()]


# --------------------------------------------------------------------------- data

def grid(rng, shape, lo, hi):
    """Uniform values on the 1/GRID grid in [lo, hi)."""
    return torch.tensor(np.round(rng.uniform(lo, hi, size=shape) * GRID) / GRID, dtype=F64)


def signed_mag(rng, shape, log2_lo, log2_hi):
    """Random sign times 2^U(log2_lo, log2_hi), on the grid."""
    mag = np.exp2(rng.uniform(log2_lo, log2_hi, size=shape))
    sign = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    v = np.round(sign * mag * GRID) / GRID
    v[v == 0] = 1.0 / GRID
    return torch.tensor(v, dtype=F64)


def round_to(x64, dtype):
    """Round f64 values to `dtype`; return them widened back to f64 (exact)."""
    return x64.to(TORCH_DT[dtype]).to(F64)


def poison(x64, keep):
    """Copy of x64 with NaN / +inf / -inf cycling through the masked-out slots."""
    x = x64.clone().reshape(-1)
    k = keep.reshape(-1)
    j = 0
    for i in range(x.numel()):
        if not bool(k[i]):
            x[i] = POISON[j % 3]
            j += 1
    return x.reshape(x64.shape)


def rand_mask(rng, shape, p_keep):
    return torch.tensor(rng.uniform(size=shape) < p_keep)


# --------------------------------------------------------------------------- reductions

RED_OPS = ["sum", "mean", "prod", "amin", "amax", "argmin", "argmax",
           "var:0", "var:1", "std:0", "std:1", "norm:1", "norm:2", "norm:inf", "logsumexp"]


def reduce_kept(op, v, pos):
    """(value, scale) of `op` over the kept values v (1-D f64) at positions pos; None if empty.

    scale bounds the magnitudes that enter the computation; the Rust side derives
    its tolerance from it (see tests/golden.rs)."""
    n = v.numel()
    if n == 0:
        return None
    a = v.abs()
    a = a[torch.isfinite(a)]  # kept inf/NaN give exact (non-finite) results; scale the rest
    if a.numel() == 0:
        a = torch.zeros(1, dtype=F64)
    if op == "sum":
        return v.sum().item(), a.sum().item()
    if op == "mean":
        return v.mean().item(), a.mean().item()
    if op == "prod":
        p = v.prod().item()
        return p, abs(p)
    if op == "amin":
        return v.min().item(), 0.0
    if op == "amax":
        return v.max().item(), 0.0
    if op == "argmin":
        return int(pos[torch.argmin(v)].item()), 0.0  # first occurrence
    if op == "argmax":
        return int(pos[torch.argmax(v)].item()), 0.0
    if op.startswith("var:") or op.startswith("std:"):
        c = int(op[4:])
        if n <= c:
            return None
        var = torch.var(v, correction=c).item()
        vscale = (a * a).sum().item() / (n - c)
        if op.startswith("var"):
            return var, vscale
        return math.sqrt(var), math.sqrt(vscale)
    if op.startswith("norm:"):
        p = float(op[5:])
        r = torch.linalg.vector_norm(v, ord=p).item()
        return r, (0.0 if math.isinf(p) else (a.sum().item() if p == 1 else r))
    if op == "logsumexp":
        return torch.logsumexp(v, 0).item(), a.max().item() + math.log(n) + 1.0
    raise ValueError(op)


def finite_scale(x):
    """Non-finite results (kept inf/NaN) are compared exactly: scale 0."""
    return x if math.isfinite(x) else 0.0


CHECKS = [0]


def masked_check(op, x, keep, dim, expected_vals, expected_mask):
    """Cross-check against torch.masked where it has the op."""
    kw = {}
    if op in ("sum", "mean", "prod", "amin", "amax", "logsumexp"):
        fn = getattr(torch.masked, op)
    elif op.startswith("var:") or op.startswith("std:"):
        fn = getattr(torch.masked, op[:3])
        kw["correction"] = int(op[4:])
    elif op.startswith("norm:"):
        fn = torch.masked.norm
        kw["ord"] = float(op[5:])
    else:
        return
    if dim is None:
        r = fn(x, mask=keep, **kw).reshape(1)
    else:
        r = fn(x, dim=dim, mask=keep, **kw)
    CHECKS[0] += 1
    for i, ok in enumerate(expected_mask):
        if ok:
            got = r.reshape(-1)[i].item()
            want = expected_vals[i]
            if math.isnan(want):
                assert math.isnan(got), (op, dim, i, got, want)
            else:
                assert got == want or math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (op, dim, i, got, want)


def reductions_case(name, dtype, x64, keep):
    """x64: f64 values already rounded to dtype (shape [n] or [r, c]); keep: bool same shape."""
    shape = list(x64.shape)
    case = {"name": name, "dtype": dtype, "shape": shape,
            "data": enc(poison(x64, keep), dtype), "mask": bits(keep)}
    flat = x64.reshape(-1)
    kflat = keep.reshape(-1)
    pos_all = torch.arange(flat.numel())
    full = {}
    for op in RED_OPS:
        r = reduce_kept(op, flat[kflat], pos_all[kflat])
        full[op] = {"value": None if r is None else (r[0] if op.startswith("arg") else num(r[0])),
                    "scale": 0.0 if r is None else finite_scale(r[1])}
        if r is not None and not op.startswith("arg"):
            masked_check(op, x64, keep, None, [r[0]], [True])
    case["full"] = full
    x2 = x64.reshape(-1, 1) if len(shape) == 1 else x64
    k2 = keep.reshape(-1, 1) if len(shape) == 1 else keep
    rows, cols = x2.shape
    dims = [0] if len(shape) == 1 else [0, 1]
    for dim in dims:
        res = {}
        nout = cols if dim == 0 else rows
        for op in RED_OPS:
            vals, msk, scales = [], [], []
            for o in range(nout):
                if dim == 0:
                    v, k = x2[:, o], k2[:, o]
                else:
                    v, k = x2[o, :], k2[o, :]
                r = reduce_kept(op, v[k], torch.arange(v.numel())[k])
                if r is None:
                    vals.append(0)
                    msk.append(0)
                    scales.append(0.0)
                else:
                    vals.append(r[0])
                    msk.append(1)
                    scales.append(finite_scale(r[1]))
            if not op.startswith("arg"):
                if len(shape) == 2:
                    masked_check(op, x64, keep, dim, vals, msk)
                vals = [num(v) for v in vals]
            res[op] = {"values": vals, "mask": msk, "scale": scales}
        case["dim%d" % dim] = res
    return case


def make_reductions():
    cases = []
    rng = np.random.default_rng(20261122)
    # 7 x 37 random mask with a fully masked row (2) and column (5), a row (4) and a
    # column (11) with exactly one kept element, a column (20) with exactly two.
    base = signed_mag(rng, (7, 37), -0.6, 0.6)
    keep = rand_mask(rng, (7, 37), 0.7)
    keep[2, :] = False
    keep[:, 5] = False
    keep[4, :] = False
    keep[4, 9] = True
    keep[:, 11] = False
    keep[6, 11] = True
    keep[:, 20] = False
    keep[0, 20] = True
    keep[3, 20] = True
    # offset data (variance cancellation), small
    off = 8.0 + grid(rng, (3, 5), -0.5, 0.5)
    off_keep = torch.ones(3, 5, dtype=torch.bool)
    off_keep[1, 3] = False
    # ties: small integers, several equal minima / maxima, masked-out slots would win
    ties = torch.tensor([[3., 1., 4., 1., 5., 9., 2., 6.],
                         [5., 3., 5., 8., 9., 7., 9., 3.],
                         [2., 2., 2., 2., 2., 2., 2., 2.]], dtype=F64)
    ties_keep = torch.tensor([[1, 1, 1, 1, 1, 0, 1, 1],
                              [0, 1, 1, 1, 1, 1, 1, 1],
                              [1, 0, 1, 1, 0, 1, 1, 1]], dtype=torch.bool)
    all_kept = signed_mag(rng, (4, 5), -1.0, 1.0)
    one_d = signed_mag(rng, (100,), -0.5, 0.5)
    one_d_keep = rand_mask(rng, (100,), 0.6)
    # kept non-finite values: NaN propagates, infinities follow torch (masked-out poison still excluded)
    nan, inf = float("nan"), float("inf")
    nf = torch.tensor([[1.0, nan, -2.0, 3.0, 0.5],
                       [inf, 2.0, -1.0, 0.25, 1.0],
                       [-inf, 4.0, 1.5, -3.0, 2.0],
                       [inf, -inf, 1.0, 2.0, -1.0]], dtype=F64)
    nf_keep = torch.tensor([[1, 1, 1, 1, 0],
                            [1, 1, 1, 0, 1],
                            [1, 1, 0, 1, 1],
                            [1, 1, 1, 0, 0]], dtype=torch.bool)
    for dtype in ("f32", "f64", "f16", "bf16"):
        cases.append(reductions_case("keptnonfinite4x5", dtype, round_to(nf, dtype), nf_keep))
        cases.append(reductions_case("rand7x37", dtype, round_to(base, dtype), keep))
        cases.append(reductions_case("offset3x5", dtype, round_to(off, dtype), off_keep))
        cases.append(reductions_case("ties3x8", dtype, round_to(ties, dtype), ties_keep))
        cases.append(reductions_case("allkept4x5", dtype, round_to(all_kept, dtype),
                                     torch.ones(4, 5, dtype=torch.bool)))
        cases.append(reductions_case("nonekept3x4", dtype, round_to(all_kept[:3, :4], dtype),
                                     torch.zeros(3, 4, dtype=torch.bool)))
        cases.append(reductions_case("vec100", dtype, round_to(one_d, dtype), one_d_keep))
        cases.append(reductions_case("single1x1", dtype, round_to(torch.tensor([[-2.5]], dtype=F64), dtype),
                                     torch.ones(1, 1, dtype=torch.bool)))
    return {"ops": RED_OPS, "cases": cases}


# --------------------------------------------------------------------------- softmax

def softmax_case(name, dtype, x64, keep, g64):
    """Masked softmax / log_softmax (forward and backward) along every dim."""
    shape = list(x64.shape)
    case = {"name": name, "dtype": dtype, "shape": shape,
            "data": enc(poison(x64, keep), dtype), "mask": bits(keep),
            "grad_output": enc(poison(g64, keep), dtype)}
    x2 = x64.reshape(-1, 1) if len(shape) == 1 else x64
    k2 = keep.reshape(-1, 1) if len(shape) == 1 else keep
    g2 = g64.reshape(-1, 1) if len(shape) == 1 else g64
    dims = [0] if len(shape) == 1 else [0, 1]
    for dim in dims:
        rdim = 0 if len(shape) == 1 else dim
        ent = {}
        for kind in ("softmax", "log_softmax"):
            y = torch.zeros_like(x2)
            gi = torch.zeros_like(x2)
            omask = torch.zeros_like(k2)
            scale = 1.0
            gscale = 0.0
            nslices = x2.shape[1] if rdim == 0 else x2.shape[0]
            for s in range(nslices):
                sl = (slice(None), s) if rdim == 0 else (s, slice(None))
                k = k2[sl]
                if not bool(k.any()):
                    continue
                xv = x2[sl][k].clone().requires_grad_(True)
                fn = torch.softmax if kind == "softmax" else torch.log_softmax
                yv = fn(xv, 0)
                (yv * g2[sl][k]).sum().backward()
                yy = y[sl]
                yy[k] = yv.detach()
                y[sl] = yy
                gg = gi[sl]
                gg[k] = xv.grad
                gi[sl] = gg
                om = omask[sl]
                om[k] = True
                omask[sl] = om
                if kind == "log_softmax":
                    scale = max(scale, (xv.max() - xv.min()).item() + math.log(k.sum().item()) + 1.0)
                gscale = max(gscale, g2[sl][k].abs().max().item() * (1.0 + k.sum().item() if kind == "log_softmax" else 2.0))
            # cross-check with torch.masked (fully masked slices excluded)
            tm = getattr(torch.masked, kind)(x2, rdim, mask=k2)
            assert torch.allclose(torch.where(omask, tm, torch.zeros_like(tm)), y, rtol=1e-12, atol=1e-14)
            ent[kind] = {"values": out(y), "mask": bits(omask), "scale": scale}
            ent[kind + "_backward"] = {"values": out(gi), "mask": bits(omask), "scale": max(gscale, 1e-300)}
        case["dim%d" % dim] = ent
    return case


def make_softmax():
    rng = np.random.default_rng(777)
    cases = []
    # key padding: lengths per row, one fully padded row (length 0) -> cleared output row
    lengths = [9, 4, 0, 1, 6]
    pad = torch.zeros(5, 9, dtype=torch.bool)
    for i, l in enumerate(lengths):
        pad[i, :l] = True
    xp = grid(rng, (5, 9), -4.0, 4.0)
    gp = grid(rng, (5, 9), -1.0, 1.0)
    # random mask with a fully masked column and row
    xr = grid(rng, (7, 37), -6.0, 6.0)
    gr = grid(rng, (7, 37), -1.0, 1.0)
    kr = rand_mask(rng, (7, 37), 0.6)
    kr[:, 13] = False
    kr[3, :] = False
    # 1-D (a single attention row) with a large spread (exp underflow in f16)
    x1 = grid(rng, (70,), -12.0, 12.0)
    g1 = grid(rng, (70,), -1.0, 1.0)
    k1 = rand_mask(rng, (70,), 0.5)
    for dtype in ("f32", "f64", "f16", "bf16"):
        cases.append(softmax_case("padding5x9", dtype, round_to(xp, dtype), pad, round_to(gp, dtype)))
        cases.append(softmax_case("rand7x37", dtype, round_to(xr, dtype), kr, round_to(gr, dtype)))
        cases.append(softmax_case("vec70", dtype, round_to(x1, dtype), k1, round_to(g1, dtype)))
    return {"padding_lengths": lengths, "cases": cases}


# --------------------------------------------------------------------------- losses

RED = ["none", "sum", "mean"]


def elementwise_loss(kind, params, x, t, reduction, kept=None):
    """kept: bool selector of the flat elements x, t were taken from (for a per-column pos_weight)."""
    if kind == "mse":
        return F.mse_loss(x, t, reduction=reduction)
    if kind == "l1":
        return F.l1_loss(x, t, reduction=reduction)
    if kind == "huber":
        return F.huber_loss(x, t, reduction=reduction, delta=params["delta"])
    if kind == "smooth_l1":
        return F.smooth_l1_loss(x, t, reduction=reduction, beta=params["beta"])
    if kind == "bce_with_logits":
        pw = params.get("pos_weight")
        if isinstance(pw, list):
            # per-class pos_weight broadcast over a row-major [rows, classes] input: element i
            # takes pos_weight[i % classes]; select the kept elements' weights
            full = torch.tensor(pw, dtype=F64).repeat(kept.numel() // len(pw))
            pw = full[kept]
        elif pw is not None:
            pw = torch.tensor(pw, dtype=F64)
        return F.binary_cross_entropy_with_logits(x, t, reduction=reduction, pos_weight=pw)
    raise ValueError(kind)


def elementwise_case(name, kind, params, dtype, x64, t64, keep, reduction):
    x64 = round_to(x64, dtype)
    t64 = round_to(t64, dtype)
    xf = x64.reshape(-1).clone().requires_grad_(True)
    kf = keep.reshape(-1)
    tf = t64.reshape(-1)
    n = int(kf.sum().item())
    if reduction == "none":
        val = torch.zeros_like(xf)
        if n:
            val = val.index_put((kf,), elementwise_loss(kind, params, xf[kf], tf[kf], "none", kf))
        total = val.sum()
        value = val
    elif n == 0:
        total = (xf[kf] * 0).sum()  # our rule: 0 and zero gradient (torch's mean gives NaN)
        value = total.reshape(1)
    else:
        total = elementwise_loss(kind, params, xf[kf], tf[kf], reduction, kf)
        if kind == "bce_with_logits" and isinstance(params.get("pos_weight"), list) and keep.dim() == 2:
            # torch's own broadcasting on the full (clean) matrix agrees
            pw = torch.tensor(params["pos_weight"], dtype=F64)
            full = F.binary_cross_entropy_with_logits(x64, t64, reduction="none", pos_weight=pw)
            agg = full[keep].sum()
            agg = agg / n if reduction == "mean" else agg
            assert torch.allclose(agg, total)
        value = total.reshape(1)
    # cross-check the masked formula against torch on un-poisoned data times the mask
    if n and reduction != "none":
        ref = elementwise_loss(kind, params, x64.reshape(-1)[kf], tf[kf], reduction, kf)
        assert torch.allclose(ref, total)
    if total.requires_grad:
        total.backward()
    grad = xf.grad if xf.grad is not None else torch.zeros_like(xf)
    if kind == "mse" and n and reduction == "mean":
        # the seed's masked_mse_loss (sum over the mask / mask count) on clean data agrees
        m = kf.to(F64)
        seed = F.mse_loss(x64.reshape(-1) * m, tf * m, reduction="sum") / m.sum()
        assert torch.allclose(seed, total)
    scale = (xf.detach()[kf].abs().sum() + tf[kf].abs().sum()).item() if n else 0.0
    return {"name": name, "loss": kind, "params": params, "dtype": dtype, "reduction": reduction,
            "shape": list(x64.shape), "input": enc(poison(x64, keep), dtype),
            "target": enc(poison(t64, keep), dtype), "mask": bits(keep),
            "value": out(value), "grad": out(grad), "count": n, "scale": scale}


def ce_case(name, dtype, logits64, targets, cfg, reduction):
    """cross_entropy over the rows whose target != ignore_index (ignored rows are poisoned)."""
    logits64 = round_to(logits64, dtype)
    rows, classes = logits64.shape
    ig = cfg["ignore_index"]
    tt = torch.tensor(targets, dtype=torch.int64)
    keep_rows = tt != ig
    w = None if cfg["weight"] is None else round_to(torch.tensor(cfg["weight"], dtype=F64), dtype)
    ls = cfg["label_smoothing"]
    x = logits64.clone().requires_grad_(True)
    n = int(keep_rows.sum().item())
    if n == 0:
        value = torch.zeros(rows if reduction == "none" else 1, dtype=F64)
        grad = torch.zeros_like(logits64)
    else:
        xs = x[keep_rows]
        ts = tt[keep_rows]
        if reduction == "none":
            v = F.cross_entropy(xs, ts, weight=w, label_smoothing=ls, reduction="none")
            value = torch.zeros(rows, dtype=F64).index_put((keep_rows,), v)
            total = value.sum()
        else:
            total = F.cross_entropy(xs, ts, weight=w, label_smoothing=ls, reduction=reduction)
            value = total.reshape(1)
        # torch on the full (clean) logits with ignore_index gives the same
        direct = F.cross_entropy(logits64, tt, weight=w, ignore_index=ig, label_smoothing=ls, reduction=reduction)
        assert torch.allclose(direct.reshape(-1), value.detach().reshape(-1)), (name, direct, value)
        total.backward()
        grad = x.grad
    keep = keep_rows.reshape(rows, 1).expand(rows, classes)
    return {"name": name, "dtype": dtype, "reduction": reduction, "rows": rows, "classes": classes,
            "logits": enc(poison(logits64, keep), dtype), "targets": targets,
            "ignore_index": ig, "weight": None if w is None else enc(w, dtype),
            "label_smoothing": ls, "value": out(value.detach()), "grad": out(grad),
            "scale": logits64[keep_rows].abs().max().item() + math.log(classes) + 1.0 if n else 1.0}


def ecs_loss(emb, threshold):
    """The seed's elastic_cell_similarity_loss (with its ecs_threshold typo fixed)."""
    normed = F.normalize(emb, p=2, dim=1)
    cos = torch.mm(normed, normed.t())
    eye = torch.eye(cos.size(0), dtype=torch.bool)
    cos = cos.masked_fill(eye, 0.0)
    cos = F.relu(cos)
    return torch.mean(1 - (cos - threshold) ** 2)


def ecs_case(name, dtype, emb64, threshold, keep_rows):
    emb64 = round_to(emb64, dtype)
    rows, dim = emb64.shape
    x = emb64.clone().requires_grad_(True)
    n = int(keep_rows.sum().item())
    if n:
        total = ecs_loss(x[keep_rows], threshold)
        total.backward()
        grad = x.grad
        value = total.detach().reshape(1)
    else:
        value = torch.zeros(1, dtype=F64)
        grad = torch.zeros_like(emb64)
    keep = keep_rows.reshape(rows, 1).expand(rows, dim)
    return {"name": name, "dtype": dtype, "rows": rows, "cols": dim, "threshold": threshold,
            "input": enc(poison(emb64, keep), dtype), "row_mask": bits(keep_rows),
            "value": out(value), "grad": out(grad)}


def pearson_case(name, dtype, x64, y64, keep):
    """Per-row Pearson correlation over the kept entries; rows with < 2 kept are cleared.

    grad = d(sum over valid rows of r) / d input."""
    x64 = round_to(x64, dtype)
    y64 = round_to(y64, dtype)
    rows, cols = x64.shape
    x = x64.clone().requires_grad_(True)
    vals, msk = [], []
    total = x.sum() * 0
    for i in range(rows):
        k = keep[i]
        if int(k.sum()) < 2:
            vals.append(0.0)
            msk.append(0)
            continue
        a = x[i][k]
        b = y64[i][k]
        ac = a - a.mean()
        bc = b - b.mean()
        r = (ac * bc).sum() / torch.sqrt((ac * ac).sum() * (bc * bc).sum())
        rc = torch.corrcoef(torch.stack([a.detach(), b]))[0, 1]
        assert math.isclose(r.item(), rc.item(), rel_tol=1e-10, abs_tol=1e-12)
        vals.append(r.item())
        msk.append(1)
        total = total + r
    total.backward()
    return {"name": name, "dtype": dtype, "rows": rows, "cols": cols,
            "input": enc(poison(x64, keep), dtype), "target": enc(poison(y64, keep), dtype),
            "mask": bits(keep), "values": [num(v) for v in vals], "values_mask": msk,
            "grad": out(x.grad)}


def make_losses():
    rng = np.random.default_rng(4242)
    shape = (4, 13)
    x = grid(rng, shape, -3.0, 3.0)
    t = grid(rng, shape, -3.0, 3.0)
    tb = torch.tensor(np.round(rng.uniform(0, 1, size=shape) * 4) / 4, dtype=F64)  # {0,.25,.5,.75,1}
    keep = rand_mask(rng, shape, 0.65)
    keep[1, :] = False
    xs, ts, tbs = x[:3, :5], t[:3, :5], tb[:3, :5]
    configs = [("mse", {}), ("l1", {}), ("huber", {"delta": 1.0}), ("huber", {"delta": 0.5}),
               ("smooth_l1", {"beta": 1.0}), ("smooth_l1", {"beta": 0.25}),
               ("bce_with_logits", {}), ("bce_with_logits", {"pos_weight": 2.5}),
               ("bce_with_logits", {"pos_weight": [0.5, 1.0, 2.0, 3.0, 0.25, 1.5, 1.0, 4.0, 0.75, 2.5, 1.0, 0.5, 2.0]})]
    elem = []
    for kind, params in configs:
        tgt, tgts = (tb, tbs) if kind == "bce_with_logits" else (t, ts)
        xs_, sh = xs, (3, 5)
        if isinstance(params.get("pos_weight"), list):  # per-class: keep 13 columns
            xs_, tgts, sh = x[:2], tb[:2], (2, 13)
        small = "%dx%d" % sh
        for dtype in ("f32", "f64"):
            for red in RED:
                elem.append(elementwise_case("rand4x13", kind, params, dtype, x, tgt, keep, red))
            elem.append(elementwise_case("allkept" + small, kind, params, dtype, xs_, tgts,
                                         torch.ones(*sh, dtype=torch.bool), "mean"))
            for red in RED:
                elem.append(elementwise_case("nonekept" + small, kind, params, dtype, xs_, tgts,
                                             torch.zeros(*sh, dtype=torch.bool), red))

    # cross-entropy
    rows, classes = 9, 5
    logits = grid(rng, (rows, classes), -3.0, 3.0)
    base_t = [int(v) for v in rng.integers(0, classes, size=rows)]
    weight = [0.5, 2.0, 1.0, 0.25, 1.5]

    def with_ignored(ig, rows_ignored):
        return [ig if i in rows_ignored else base_t[i] for i in range(rows)]

    ce_cfgs = [
        ("ign-100", {"ignore_index": -100, "weight": None, "label_smoothing": 0.0}, [1, 6]),
        ("ign-1", {"ignore_index": -1, "weight": None, "label_smoothing": 0.0}, [0, 4, 8]),
        ("weight", {"ignore_index": -100, "weight": weight, "label_smoothing": 0.0}, [3]),
        ("smooth", {"ignore_index": -1, "weight": None, "label_smoothing": 0.1}, [2, 5]),
        ("weight_smooth", {"ignore_index": -100, "weight": weight, "label_smoothing": 0.2}, [7]),
        ("weight_smooth_ign-1", {"ignore_index": -1, "weight": weight, "label_smoothing": 0.05}, [0, 1]),
        ("noignored_weight_smooth", {"ignore_index": -100, "weight": weight, "label_smoothing": 0.3}, []),
        ("allignored", {"ignore_index": -1, "weight": weight, "label_smoothing": 0.1}, list(range(rows))),
    ]
    ce = []
    for name, cfg, ign in ce_cfgs:
        targets = with_ignored(cfg["ignore_index"], ign)
        for dtype in ("f32", "f64"):
            for red in RED:
                ce.append(ce_case(name, dtype, logits, targets, cfg, red))

    # elastic cell similarity (seed 003)
    emb = grid(rng, (6, 8), -1.0, 1.0)
    emb[4] = emb[1] * 0.5 + emb[0] * 0.25  # a pair with a high positive similarity
    ecs = []
    for dtype in ("f32", "f64"):
        for thr in (0.85, 0.3):
            ecs.append(ecs_case("emb6x8", dtype, emb, thr, torch.ones(6, dtype=torch.bool)))
        ecs.append(ecs_case("emb6x8_rowmask", dtype, emb, 0.85,
                            torch.tensor([1, 1, 0, 1, 1, 0], dtype=torch.bool)))

    # per-row masked Pearson
    px = grid(rng, (5, 11), -2.0, 2.0)
    py = (px * 0.6 + grid(rng, (5, 11), -1.0, 1.0))
    py = torch.round(py * GRID) / GRID
    pk = rand_mask(rng, (5, 11), 0.75)
    pk[2, :] = False          # fully masked row -> cleared
    pk[3, :] = False
    pk[3, 4] = True           # one kept -> cleared (no correlation of one point)
    pearson = [pearson_case("rand5x11", dt, px, py, pk) for dt in ("f32", "f64")]
    return {"elementwise": elem, "cross_entropy": ce, "ecs": ecs, "pearson": pearson}


# --------------------------------------------------------------------------- Adagrad

def adagrad_opts(cfg):
    return dict(lr=cfg.get("lr", 0.01), lr_decay=cfg.get("lr_decay", 0.0),
                weight_decay=cfg.get("weight_decay", 0.0),
                initial_accumulator_value=cfg.get("initial_accumulator_value", 0.0),
                eps=cfg.get("eps", 1e-10), maximize=cfg.get("maximize", False))


def run_adagrad(param64, grads, cfg):
    """grads: list of dense f64 tensors or sparse COO tensors. Returns per-step (param, sum)."""
    p = torch.nn.Parameter(param64.clone())
    opt = torch.optim.Adagrad([p], **adagrad_opts(cfg))
    params, sums = [], []
    for g in grads:
        opt.zero_grad()
        p.grad = g
        opt.step()
        params.append(out(p.detach()))
        sums.append(out(opt.state[p]["sum"]))
        assert int(opt.state[p]["step"].item()) == len(params)
    return params, sums


def run_adagrad_hand(param64, grads, cfg):
    """The same update written out with torch ops, for gradients that torch's Adagrad
    refuses (weight_decay with a sparse gradient): only the specified entries are
    touched, weight decay included (maskops's masked semantics).

    grads: list of sparse COO tensors (coalesced here: duplicates summed first)."""
    o = adagrad_opts(cfg)
    p = param64.clone()
    s = torch.full_like(p, o["initial_accumulator_value"])
    params, sums = [], []
    for t, g in enumerate(grads, 1):
        g = g.coalesce()
        spec = torch.zeros(p.shape, dtype=torch.bool)
        if g._nnz():
            spec = g.to_dense() != 0
            spec[tuple(g.indices())] = True  # specified entries, zeros included
        gd = g.to_dense()[spec]
        clr = o["lr"] / (1 + (t - 1) * o["lr_decay"])
        if o["maximize"]:
            gd = -gd
        if o["weight_decay"] != 0:
            gd = gd + o["weight_decay"] * p[spec]
        s[spec] = s[spec] + gd * gd
        p[spec] = p[spec] - clr * gd / (s[spec].sqrt() + o["eps"])
        params.append(out(p))
        sums.append(out(s))
    return params, sums


def run_sparse(param64, grads, cfg):
    """torch's Adagrad where it accepts the configuration, else the hand-written update;
    the two are cross-checked wherever both apply."""
    hand = run_adagrad_hand(param64, grads, cfg)
    if cfg.get("weight_decay", 0.0) != 0.0:
        return hand, False
    ref = run_adagrad(param64, grads, cfg)
    for a, b in zip(hand[0] + hand[1], ref[0] + ref[1]):
        assert np.allclose(a, b, rtol=1e-13, atol=1e-15)
    return ref, True


def adagrad_cases():
    rng = np.random.default_rng(31337)
    dense_cfgs = [
        ("default", {}),
        ("lr_decay", {"lr": 0.1, "lr_decay": 0.05}),
        ("init_acc", {"lr": 0.1, "initial_accumulator_value": 0.5}),
        ("eps", {"lr": 0.05, "eps": 1e-3}),
        ("maximize", {"lr": 0.1, "maximize": True}),
        ("weight_decay", {"lr": 0.1, "weight_decay": 0.1}),
        ("all", {"lr": 0.2, "lr_decay": 0.01, "weight_decay": 0.05,
                 "initial_accumulator_value": 0.1, "eps": 1e-6, "maximize": True}),
    ]
    sparse_cfgs = dense_cfgs  # weight decay: by hand (torch refuses it with sparse gradients)
    steps = 5
    rows, cols = 3, 7
    p0 = grid(rng, (rows, cols), -1.0, 1.0)
    dgrads = [grid(rng, (rows, cols), -2.0, 2.0) for _ in range(steps)]
    masks = [rand_mask(rng, (rows, cols), 0.6) for _ in range(steps)]
    masks[2] = torch.zeros(rows, cols, dtype=torch.bool)  # a step with nothing kept
    masks[3] = torch.ones(rows, cols, dtype=torch.bool)   # and one with everything kept
    dense, masked, coo, vec, rowsparse = [], [], [], [], []
    for dtype in ("f32", "f64"):
        pd = round_to(p0, dtype)
        gd = [round_to(g, dtype) for g in dgrads]
        for name, cfg in dense_cfgs:
            params, sums = run_adagrad(pd, gd, cfg)
            # the hand-written update (used for sparse + weight decay) equals torch's dense
            # step when every entry is specified
            allidx = torch.stack([torch.arange(rows).repeat_interleave(cols), torch.arange(cols).repeat(rows)])
            hand = run_adagrad_hand(pd, [torch.sparse_coo_tensor(allidx, g.reshape(-1), (rows, cols))
                                         for g in gd], cfg)
            for a, b in zip(hand[0] + hand[1], params + sums):
                assert np.allclose(a, b, rtol=1e-13, atol=1e-15), name
            dense.append({"name": name, "dtype": dtype, "config": adagrad_opts(cfg), "shape": [rows, cols],
                          "param": enc(pd, dtype), "grads": [enc(g, dtype) for g in gd],
                          "params": params, "sums": sums})
        for name, cfg in sparse_cfgs:
            # masked = torch's sparse Adagrad with the kept positions as indices
            sg = []
            for g, m in zip(gd, masks):
                idx = m.reshape(-1).nonzero().reshape(-1)
                r, c = idx // cols, idx % cols
                sg.append(torch.sparse_coo_tensor(torch.stack([r, c]), g.reshape(-1)[idx],
                                                  (rows, cols), dtype=F64, check_invariants=True))
            (params, sums), native = run_sparse(pd, sg, cfg)
            masked.append({"name": name, "dtype": dtype, "config": adagrad_opts(cfg), "torch_native": native,
                           "shape": [rows, cols],
                           "param": enc(pd, dtype),
                           "grads": [enc(poison(g, m), dtype) for g, m in zip(gd, masks)],
                           "masks": [bits(m) for m in masks], "params": params, "sums": sums})
    # COO with duplicate indices (summed before the non-linear update: grad.coalesce())
    crow, ccol = 4, 6
    cp0 = grid(rng, (crow, ccol), -1.0, 1.0)
    trip_steps = []
    for s in range(4):
        k = 9
        r = [int(v) for v in rng.integers(0, crow, size=k)]
        c = [int(v) for v in rng.integers(0, ccol, size=k)]
        r += [r[0], r[0], r[1]]  # duplicates: (r0,c0) three times, (r1,c1) twice
        c += [c[0], c[0], c[1]]
        v = grid(rng, (len(r),), -2.0, 2.0).tolist()
        if s == 1:  # duplicates that cancel: the entry is specified with value 0
            r += [3, 3]
            c += [5, 5]
            v += [0.75, -0.75]
        trip_steps.append((r, c, v))
    if True:
        trip_steps.append(([], [], []))  # an empty gradient still counts a step
    for dtype in ("f32", "f64"):
        pd = round_to(cp0, dtype)
        for name, cfg in sparse_cfgs:
            sg, enc_steps = [], []
            for r, c, v in trip_steps:
                vv = round_to(torch.tensor(v, dtype=F64), dtype)
                sg.append(torch.sparse_coo_tensor(torch.tensor([r, c], dtype=torch.int64).reshape(2, -1),
                                                  vv, (crow, ccol), dtype=F64))
                enc_steps.append({"rows": r, "cols": c, "values": enc(vv, dtype)})
            (params, sums), native = run_sparse(pd, sg, cfg)
            coo.append({"name": name, "dtype": dtype, "config": adagrad_opts(cfg), "torch_native": native,
                        "shape": [crow, ccol],
                        "param": enc(pd, dtype), "steps": enc_steps, "params": params, "sums": sums})
    # CsVec: 1-D, sorted unique indices
    vlen = 17
    vp0 = grid(rng, (vlen,), -1.0, 1.0)
    vsteps = []
    for s in range(4):
        idx = sorted(set(int(i) for i in rng.integers(0, vlen, size=6)))
        vsteps.append((idx, grid(rng, (len(idx),), -2.0, 2.0)))
    for dtype in ("f32", "f64"):
        pd = round_to(vp0, dtype)
        for name, cfg in sparse_cfgs:
            sg, enc_steps = [], []
            for idx, v in vsteps:
                vv = round_to(v, dtype)
                sg.append(torch.sparse_coo_tensor(torch.tensor([idx], dtype=torch.int64), vv, (vlen,), dtype=F64))
                enc_steps.append({"indices": idx, "values": enc(vv, dtype)})
            (params, sums), native = run_sparse(pd, sg, cfg)
            vec.append({"name": name, "dtype": dtype, "config": adagrad_opts(cfg), "torch_native": native,
                        "len": vlen,
                        "param": enc(pd, dtype), "steps": enc_steps, "params": params, "sums": sums})
    # row-sparse (embedding backward): torch hybrid COO, one sparse dim, duplicate rows
    erows, ecols = 6, 4
    ep0 = grid(rng, (erows, ecols), -1.0, 1.0)
    esteps = []
    for s in range(4):
        ri = [int(i) for i in rng.integers(0, erows, size=4)] + [1]
        ri[2] = ri[0]
        esteps.append((ri, grid(rng, (len(ri), ecols), -2.0, 2.0)))
    # cross-check: torch's own embedding backward with sparse=True gives the same gradient
    emb = torch.nn.Embedding(erows, ecols, sparse=True).to(F64)
    emb.weight.data.copy_(ep0)
    ri, vals = esteps[0]
    emb(torch.tensor(ri)).backward(vals)
    hybrid = torch.sparse_coo_tensor(torch.tensor([ri]), vals, (erows, ecols))
    assert torch.equal(emb.weight.grad.to_dense(), hybrid.to_dense())
    for dtype in ("f32", "f64"):
        pd = round_to(ep0, dtype)
        for name, cfg in sparse_cfgs:
            sg, enc_steps = [], []
            for ri, v in esteps:
                vv = round_to(v, dtype)
                sg.append(torch.sparse_coo_tensor(torch.tensor([ri], dtype=torch.int64), vv,
                                                  (erows, ecols), dtype=F64))
                enc_steps.append({"row_indices": ri, "values": enc(vv, dtype)})
            (params, sums), native = run_sparse(pd, sg, cfg)
            rowsparse.append({"name": name, "dtype": dtype, "config": adagrad_opts(cfg), "torch_native": native,
                              "shape": [erows, ecols], "param": enc(pd, dtype), "steps": enc_steps,
                              "params": params, "sums": sums})
    return {"dense": dense, "masked": masked, "coo": coo, "csvec": vec, "rows": rowsparse}


# --------------------------------------------------------------------------- main

def write(name, obj):
    obj = {"generator": "tools/make_golden.py", "torch": torch.__version__.split("+")[0], **obj}
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    return os.path.getsize(path)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0
    for name, fn in (("reductions.json", make_reductions), ("softmax.json", make_softmax),
                     ("losses.json", make_losses), ("adagrad.json", adagrad_cases)):
        size = write(name, fn())
        total += size
        print("%-16s %8d bytes" % (name, size))
    print("%-16s %8d bytes" % ("total", total))
    print("cross-checks against torch.masked reductions: %d" % CHECKS[0])
    assert total < 2_000_000, "fixtures must stay under 2 MB"


if __name__ == "__main__":
    sys.exit(main())
