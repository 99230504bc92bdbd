//! Backend-generic operations: each computes its launch plans once
//! ([`super::plan`]) and runs them on whichever [`Backend`] it is given.

use super::plan::{Arg, Backend, DType, Launch};
use crate::canonical::BLOCK;
use crate::{Error, Result};

/// A masked reduction (the `MaskedView` reductions of the CPU API).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reduce {
    /// Sum of the kept elements.
    Sum,
    /// Sum / count.
    Mean,
    /// Product.
    Prod,
    /// Minimum (NaN propagates).
    Amin,
    /// Maximum (NaN propagates).
    Amax,
    /// Variance `sum (x - mean)^2 / (count - correction)` (two passes, the
    /// mean `sum / count`); no result (like nothing kept) when
    /// `count <= correction`.
    Var(u32),
    /// Square root of [`Reduce::Var`].
    Std(u32),
    /// `sum |x|`.
    Norm1,
    /// `sqrt(sum x^2)`.
    Norm2,
    /// `max |x|`.
    NormInf,
    /// `min |x|`.
    NormNegInf,
    /// The number of nonzero kept elements (NaN counts), as f32.
    Norm0,
    /// `m + ln(sum exp(x - m))` with `m` the max; `m` itself when it is
    /// infinite or NaN (`torch.logsumexp`).
    LogSumExp,
}

impl Reduce {
    /// The norm of order `p` the kernels compute exactly: 0, 1, 2, inf,
    /// -inf (`None` for other orders, which need `powf`).
    pub fn norm(p: f64) -> Option<Reduce> {
        if p == 0.0 {
            Some(Reduce::Norm0)
        } else if p == 1.0 {
            Some(Reduce::Norm1)
        } else if p == 2.0 {
            Some(Reduce::Norm2)
        } else if p == f64::INFINITY {
            Some(Reduce::NormInf)
        } else if p == f64::NEG_INFINITY {
            Some(Reduce::NormNegInf)
        } else {
            None
        }
    }
}

/// How the sequences of a reduction lie in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Sequence `s` is `x[s*len .. (s+1)*len]`: the whole array (one
    /// sequence) or the rows of a row-major matrix (`dim = 1`).
    Rows,
    /// Sequence `s` is the column `x[k*seqs + s]`, `k < len` (`dim = 0`).
    Cols,
}

/// Kernel codes of reduce.cu (`MO_K_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
enum Kind {
    Sum = 0,
    Prod = 1,
    Min = 2,
    Max = 3,
    SqDev = 4,
    ExpDev = 5,
    Abs = 6,
    Sq = 7,
    AbsMax = 8,
    NonZero = 9,
    AbsMin = 10,
}

/// Finalize codes of reduce.cu (`MO_FIN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
enum Fin {
    Value = 0,
    Mean = 1,
    Var = 2,
    Std = 3,
    Lse = 4,
    LseCenter = 5,
    Sqrt = 6,
}

/// Threads per block of the partials kernels.
pub const REDUCE_THREADS: u32 = 256;

/// The launches of one pass (partials, fold if any, finalize) of a reduction.
#[allow(clippy::too_many_arguments)]
fn pass_plan(
    x: u64,
    dtype: DType,
    mask: u64,
    seqs: u64,
    len: u64,
    layout: Layout,
    kind: Kind,
    center_in: u64,
    part: u64,
    cnt: u64,
    fin: Fin,
    center_fin: u64,
    correction: u32,
    out: u64,
    out_dtype: DType,
    out_cnt: u64,
) -> Result<Vec<Launch>> {
    let nb = len.div_ceil(BLOCK as u64).max(1);
    let p2 = nb.next_power_of_two();
    let mut v = Vec::with_capacity(3);
    let args = vec![
        Arg::Ptr(x),
        Arg::Ptr(mask),
        Arg::U64(seqs),
        Arg::U64(len),
        Arg::I32(kind as i32),
        Arg::Ptr(center_in),
        Arg::Ptr(part),
        Arg::Ptr(cnt),
        Arg::U64(p2),
        Arg::U64(nb),
    ];
    let work = seqs * nb;
    match layout {
        Layout::Rows => {
            let warps = (REDUCE_THREADS / 32) as u64;
            v.push(Launch::linear(
                format!("maskops_reduce_rows_{}", dtype.suffix()),
                work.div_ceil(warps),
                REDUCE_THREADS,
                args,
            )?);
        }
        Layout::Cols => v.push(Launch::linear(
            format!("maskops_reduce_cols_{}", dtype.suffix()),
            work.div_ceil(REDUCE_THREADS as u64),
            REDUCE_THREADS,
            args,
        )?),
    }
    // f64 data accumulates in f64: the fold and finalize of that type.
    let acc_sfx = if dtype == DType::F64 { "_f64" } else { "" };
    if p2 > 1 {
        let threads = (p2 / 2).clamp(32, 256) as u32;
        v.push(Launch::linear(
            format!("maskops_reduce_fold{acc_sfx}"),
            seqs,
            threads,
            vec![
                Arg::Ptr(part),
                Arg::Ptr(cnt),
                Arg::U64(p2),
                Arg::U64(nb),
                Arg::I32(kind as i32),
            ],
        )?);
    }
    v.push(Launch::linear(
        format!("maskops_reduce_finalize{acc_sfx}"),
        seqs.div_ceil(256),
        256,
        vec![
            Arg::Ptr(part),
            Arg::Ptr(cnt),
            Arg::U64(seqs),
            Arg::U64(p2),
            Arg::I32(fin as i32),
            Arg::Ptr(center_fin),
            Arg::U32(correction),
            Arg::Ptr(out),
            Arg::I32(out_dtype.code()),
            Arg::Ptr(out_cnt),
        ],
    )?);
    Ok(v)
}

/// Runs a masked reduction of `seqs` sequences of `len` elements.
///
/// `x` holds `seqs * len` elements of `dtype`, `mask` their keep bits (bit
/// `i` for element `x[i]`). Writes `seqs` results of `out_dtype` to `out`
/// (0 where nothing is kept) and, when `out_cnt != 0`, the `u64` count of
/// kept elements of each sequence. Every sum is in the canonical order.
#[allow(clippy::too_many_arguments)]
pub fn reduce<B: Backend>(
    be: &B,
    x: u64,
    dtype: DType,
    mask: u64,
    seqs: u64,
    len: u64,
    layout: Layout,
    red: Reduce,
    out: u64,
    out_dtype: DType,
    out_cnt: u64,
) -> Result<()> {
    if seqs == 0 {
        return Ok(());
    }
    if seqs.checked_mul(len).is_none() {
        return Err(Error::Cuda(format!(
            "reduce: {seqs} x {len} elements overflow"
        )));
    }
    let nb = len.div_ceil(BLOCK as u64).max(1);
    let p2 = nb.next_power_of_two();
    let slots = (seqs * p2) as usize;
    let acc = dtype.acc();
    let part = be.alloc_zeroed(slots * acc.size())?;
    let cnt = be.alloc_zeroed(slots * 8)?;
    let (pp, cp) = (be.ptr(&part), be.ptr(&cnt));
    let one = |kind: Kind,
               center_in: u64,
               fin: Fin,
               center_fin: u64,
               corr: u32,
               o: u64,
               od: DType,
               oc: u64| {
        pass_plan(
            x, dtype, mask, seqs, len, layout, kind, center_in, pp, cp, fin, center_fin, corr, o,
            od, oc,
        )
    };
    let mut plans = Vec::new();
    let center;
    match red {
        Reduce::Var(_) | Reduce::Std(_) | Reduce::LogSumExp => {
            let c = match red {
                Reduce::Var(c) | Reduce::Std(c) => c,
                _ => 0,
            };
            center = Some(be.alloc_zeroed(seqs as usize * acc.size())?);
            let ctr = be.ptr(center.as_ref().unwrap());
            let (k1, f1, k2, f2) = match red {
                Reduce::Var(_) => (Kind::Sum, Fin::Mean, Kind::SqDev, Fin::Var),
                Reduce::Std(_) => (Kind::Sum, Fin::Mean, Kind::SqDev, Fin::Std),
                _ => (Kind::Max, Fin::LseCenter, Kind::ExpDev, Fin::Lse),
            };
            plans.extend(one(k1, 0, f1, 0, 0, ctr, acc, 0)?);
            plans.extend(one(k2, ctr, f2, ctr, c, out, out_dtype, out_cnt)?);
        }
        _ => {
            center = None;
            let (k, f) = match red {
                Reduce::Sum => (Kind::Sum, Fin::Value),
                Reduce::Mean => (Kind::Sum, Fin::Mean),
                Reduce::Prod => (Kind::Prod, Fin::Value),
                Reduce::Amin => (Kind::Min, Fin::Value),
                Reduce::Amax => (Kind::Max, Fin::Value),
                Reduce::Norm1 => (Kind::Abs, Fin::Value),
                Reduce::Norm2 => (Kind::Sq, Fin::Sqrt),
                Reduce::NormNegInf => (Kind::AbsMin, Fin::Value),
                Reduce::Norm0 => (Kind::NonZero, Fin::Value),
                _ => (Kind::AbsMax, Fin::Value),
            };
            plans.extend(one(k, 0, f, 0, 0, out, out_dtype, out_cnt)?);
        }
    }
    for l in &plans {
        be.launch(l)?;
    }
    // The scratch buffers must outlive the launches: a device backend frees
    // asynchronously in stream order, the emulator runs synchronously.
    drop(center);
    drop(part);
    drop(cnt);
    Ok(())
}

/// One canonical pass over the columns of a `rows x cols` matrix writing
/// the f32 fold of every column (no finalize arithmetic): `kind` on `x`
/// with the optional per-column `center`.
#[allow(clippy::too_many_arguments)]
fn column_fold<B: Backend>(
    be: &B,
    x: u64,
    dtype: DType,
    mask: u64,
    rows: u64,
    cols: u64,
    kind: Kind,
    center: u64,
    out: u64,
) -> Result<()> {
    let nb = rows.div_ceil(BLOCK as u64).max(1);
    let p2 = nb.next_power_of_two();
    let part = be.alloc_zeroed((cols * p2) as usize * 4)?;
    let cnt = be.alloc_zeroed((cols * p2) as usize * 8)?;
    let plans = pass_plan(
        x,
        dtype,
        mask,
        cols,
        rows,
        Layout::Cols,
        kind,
        center,
        be.ptr(&part),
        be.ptr(&cnt),
        Fin::Value,
        0,
        0,
        out,
        DType::F32,
        0,
    )?;
    for l in &plans {
        be.launch(l)?;
    }
    drop((part, cnt));
    Ok(())
}

/// Packs "count > 0" of `n` `u64` counts into `n.div_ceil(64)` mask words.
pub fn pack_counts<B: Backend>(be: &B, cnt: u64, n: u64, words: u64) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let nw = n.div_ceil(64);
    be.launch(&Launch::linear(
        "maskops_pack_counts".into(),
        nw.div_ceil(256),
        256,
        vec![Arg::Ptr(cnt), Arg::U64(n), Arg::Ptr(words)],
    )?)
}

/// The number of set bits in `n` mask words at `words` (a device mask's
/// kept count), counted on the device and read back as one `u64`.
pub fn mask_count<B: Backend>(be: &B, words: u64, n: u64) -> Result<u64> {
    if n == 0 {
        return Ok(0);
    }
    let out = be.alloc_zeroed(8)?;
    be.launch(&Launch::linear(
        "maskops_popcount".into(),
        n.div_ceil(256),
        256,
        vec![Arg::Ptr(words), Arg::U64(n), Arg::Ptr(be.ptr(&out))],
    )?)?;
    let mut b = [0u8; 8];
    be.download(be.ptr(&out), &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// A whole-array reduction returning the scalar: `None` when nothing is kept.
/// The result is read back as `f32` (the accumulator type).
///
/// ```
/// # #[cfg(feature = "cuda-emulator")] {
/// use maskops::cuda::emu::Emulator;
/// use maskops::cuda::ops::{reduce_scalar, Reduce};
/// use maskops::cuda::plan::{upload, Backend, DType};
/// use maskops::Mask;
/// let emu = Emulator::default();
/// let x = upload(&emu, &[1.0f32, f32::NAN, 3.0]).unwrap();
/// let m = upload(&emu, Mask::from_bools(&[true, false, true]).words()).unwrap();
/// let s = reduce_scalar(&emu, emu.ptr(&x), DType::F32, emu.ptr(&m), 3, Reduce::Sum).unwrap();
/// assert_eq!(s, Some(4.0));
/// # }
/// ```
pub fn reduce_scalar<B: Backend>(
    be: &B,
    x: u64,
    dtype: DType,
    mask: u64,
    len: u64,
    red: Reduce,
) -> Result<Option<f32>> {
    if dtype == DType::F64 {
        return Err(Error::Cuda(
            "reduce_scalar: f64 data has an f64 result, use reduce_scalar_f64".into(),
        ));
    }
    // the f32 accumulator widened to f64 and back is exact
    Ok(reduce_scalar_f64(be, x, dtype, mask, len, red)?.map(|v| v as f32))
}

/// A whole-array reduction returning the accumulator widened to `f64`
/// (exact for the f32 accumulator of f32/f16/bf16 data; the f64 accumulator
/// of f64 data): `None` when nothing is kept.
pub fn reduce_scalar_f64<B: Backend>(
    be: &B,
    x: u64,
    dtype: DType,
    mask: u64,
    len: u64,
    red: Reduce,
) -> Result<Option<f64>> {
    let acc = dtype.acc();
    // the value (bytes 0..8) and the kept count (8..16) in one buffer, read
    // back by one copy (one synchronisation, not two)
    let res = be.alloc_zeroed(16)?;
    let rp = be.ptr(&res);
    reduce(
        be,
        x,
        dtype,
        mask,
        1,
        len,
        Layout::Rows,
        red,
        rp,
        acc,
        rp + 8,
    )?;
    let mut b = [0u8; 16];
    be.download(rp, &mut b)?;
    let value = match acc {
        DType::F64 => f64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
        _ => f32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as f64,
    };
    let kept = u64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
    Ok((kept > 0).then_some(value))
}

/// The kernels other than the reductions exist for f32/f16/bf16 only.
fn no_f64(dtype: DType, what: &str) -> Result<()> {
    if dtype == DType::F64 {
        Err(Error::Cuda(format!(
            "{what}: f64 is not implemented on the device"
        )))
    } else {
        Ok(())
    }
}

/// Threads per CUDA block of the softmax kernels (8 warps).
pub const SOFTMAX_THREADS: u32 = 256;

/// The launch of a softmax-family kernel over `rows` rows of `n` elements:
/// a warp per row when the row is one canonical block (`n <= 4096`), else a
/// CUDA block per row with a scratch row of `p2` partials. Returns the plan
/// and the scratch size in floats.
fn softmax_plan(
    stem: &str,
    dtype: DType,
    rows: u64,
    n: u64,
    mut args: Vec<Arg>,
    scratch: impl FnOnce(usize) -> Result<u64>,
) -> Result<Launch> {
    if n <= BLOCK as u64 {
        let per_block = (SOFTMAX_THREADS / 32) as u64;
        Launch::linear(
            format!("maskops_{stem}_warp_{}", dtype.suffix()),
            rows.div_ceil(per_block),
            SOFTMAX_THREADS,
            args,
        )
    } else {
        let p2 = n.div_ceil(BLOCK as u64).next_power_of_two();
        let floats = rows
            .checked_mul(p2)
            .ok_or_else(|| Error::Cuda(format!("{stem}: {rows} x {n} too large")))?;
        args.push(Arg::Ptr(scratch(floats as usize)?));
        args.push(Arg::U64(p2));
        Launch::linear(
            format!("maskops_{stem}_block_{}", dtype.suffix()),
            rows,
            SOFTMAX_THREADS,
            args,
        )
    }
}

/// Masked softmax (`log = false`) or log-softmax (`log = true`) over the
/// rows of a row-major `rows x n` matrix (`dim = 1`); `out` gets the same
/// dtype, 0 under masked-out entries.
#[allow(clippy::too_many_arguments)]
pub fn softmax<B: Backend>(
    be: &B,
    x: u64,
    dtype: DType,
    mask: u64,
    rows: u64,
    n: u64,
    log: bool,
    out: u64,
) -> Result<()> {
    no_f64(dtype, "softmax")?;
    if rows == 0 || n == 0 {
        return Ok(());
    }
    let mut held = None;
    let args = vec![
        Arg::Ptr(x),
        Arg::Ptr(mask),
        Arg::U64(rows),
        Arg::U64(n),
        Arg::I32(log as i32),
        Arg::Ptr(out),
    ];
    let plan = softmax_plan("softmax", dtype, rows, n, args, |floats| {
        let b = be.alloc_zeroed(floats * 4)?;
        let p = be.ptr(&b);
        held = Some(b);
        Ok(p)
    })?;
    be.launch(&plan)?;
    drop(held);
    Ok(())
}

/// Backward of [`softmax`]: `dx` from the forward output `y` and the
/// upstream gradient `g` (same dtype and shape), 0 under masked-out entries.
#[allow(clippy::too_many_arguments)]
pub fn softmax_backward<B: Backend>(
    be: &B,
    y: u64,
    g: u64,
    dtype: DType,
    mask: u64,
    rows: u64,
    n: u64,
    log: bool,
    dx: u64,
) -> Result<()> {
    no_f64(dtype, "softmax")?;
    if rows == 0 || n == 0 {
        return Ok(());
    }
    let mut held = None;
    let args = vec![
        Arg::Ptr(y),
        Arg::Ptr(g),
        Arg::Ptr(mask),
        Arg::U64(rows),
        Arg::U64(n),
        Arg::I32(log as i32),
        Arg::Ptr(dx),
    ];
    let plan = softmax_plan("softmax_bwd", dtype, rows, n, args, |floats| {
        let b = be.alloc_zeroed(floats * 4)?;
        let p = be.ptr(&b);
        held = Some(b);
        Ok(p)
    })?;
    be.launch(&plan)?;
    drop(held);
    Ok(())
}

/// How a loss is reduced (PyTorch's `reduction`); `Mean` over nothing kept
/// gives 0 with a zero gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReduction {
    /// Per-element (per-row for cross-entropy) values.
    None,
    /// Sum in the canonical order.
    Sum,
    /// Sum / denominator (kept count; cross-entropy: sum of kept weights).
    Mean,
}

/// An elementwise masked loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ElemLoss {
    /// `(x - y)^2`.
    Mse,
    /// `|x - y|`.
    L1,
    /// Huber with `delta > 0`.
    Huber(f64),
    /// Smooth L1 with `beta >= 0` (`beta = 0` is L1).
    SmoothL1(f64),
}

/// The per-kernel constants `{s, s2, a, b, c}` of an elementwise loss,
/// rounded once from `f64` exactly like the CPU kernels do, and the kind code.
fn elem_params(kind: ElemLoss, scale: f64, dtype: DType) -> (i32, [Arg; 5]) {
    let f = |v: f64| match dtype {
        DType::F64 => Arg::F64(v),
        _ => Arg::F32(v as f32),
    };
    let z = f(0.0);
    match kind {
        ElemLoss::Mse => (0, [f(2.0 * scale), z, z, z, z]),
        ElemLoss::L1 | ElemLoss::SmoothL1(0.0) => (1, [f(scale), z, z, z, z]),
        ElemLoss::Huber(d) => (2, [f(scale), z, f(d), f(0.5 * d), f(d * scale)]),
        ElemLoss::SmoothL1(b) => (3, [f(scale), f(scale / b), f(b), f(0.5 * b), f(0.5 / b)]),
    }
}

/// Threads per block of the loss kernels.
pub const LOSS_THREADS: u32 = 256;

/// An elementwise masked loss over `n` f32 elements: writes the gradient of
/// the reduced value into `grad` (0 where masked out), the per-element values
/// into `vals` when it is not 0 (use it for [`LossReduction::None`]), and the
/// sum or mean into `out[0]`. `kept` is the number of set bits of `mask`
/// (a `DeviceMask` caches it), needed before the pass for the mean's scale.
#[allow(clippy::too_many_arguments)]
pub fn loss_elementwise<B: Backend>(
    be: &B,
    dtype: DType,
    kind: ElemLoss,
    x: u64,
    y: u64,
    mask: u64,
    n: u64,
    kept: u64,
    red: LossReduction,
    grad: u64,
    vals: u64,
    out: u64,
) -> Result<()> {
    let scale = match red {
        LossReduction::Mean if kept > 0 => 1.0 / kept as f64,
        _ => 1.0,
    };
    let sfx = float_only(dtype, "loss")?;
    let (code, p) = elem_params(kind, scale, dtype);
    let nb = n.div_ceil(BLOCK as u64).max(1);
    let p2 = nb.next_power_of_two();
    let part = be.alloc_zeroed(p2 as usize * dtype.size())?;
    let cnt = be.alloc_zeroed(p2 as usize * 8)?;
    let (pp, cp) = (be.ptr(&part), be.ptr(&cnt));
    let mut plans = vec![Launch::linear(
        format!("maskops_loss_elem_{sfx}"),
        nb.div_ceil((LOSS_THREADS / 32) as u64),
        LOSS_THREADS,
        vec![
            Arg::Ptr(x),
            Arg::Ptr(y),
            Arg::Ptr(mask),
            Arg::U64(n),
            Arg::I32(code),
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            Arg::Ptr(grad),
            Arg::Ptr(vals),
            Arg::Ptr(pp),
            Arg::Ptr(cp),
        ],
    )?];
    let f64_sfx = if dtype == DType::F64 { "_f64" } else { "" };
    if p2 > 1 {
        plans.push(Launch::linear(
            format!("maskops_reduce_fold{f64_sfx}"),
            1,
            (p2 / 2).clamp(32, 256) as u32,
            vec![
                Arg::Ptr(pp),
                Arg::Ptr(cp),
                Arg::U64(p2),
                Arg::U64(nb),
                Arg::I32(Kind::Sum as i32),
            ],
        )?);
    }
    let mean = Arg::I32((red == LossReduction::Mean) as i32);
    plans.push(if dtype == DType::F64 {
        Launch::linear(
            "maskops_loss_finalize_f64".into(),
            1,
            32,
            vec![Arg::Ptr(pp), Arg::U64(kept), mean, Arg::Ptr(out)],
        )?
    } else {
        Launch::linear(
            "maskops_loss_finalize".into(),
            1,
            32,
            vec![
                Arg::Ptr(pp),
                Arg::Ptr(0),
                Arg::U64(kept),
                mean,
                Arg::Ptr(out),
            ],
        )?
    });
    for l in &plans {
        be.launch(l)?;
    }
    drop((part, cnt));
    Ok(())
}

/// Cross-entropy settings for [`cross_entropy`] (the host has validated the
/// targets: each is in `[0, classes)` or `ignore_index`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CeArgs {
    /// Targets equal to this are ignored.
    pub ignore_index: i64,
    /// Device pointer to `classes` f32 class weights, or 0 for none.
    pub weight: u64,
    /// Sum of the weights in f64, summed in index order (`classes` without
    /// weights), as the CPU computes it.
    pub weight_sum: f64,
    /// Label smoothing in `[0, 1]`.
    pub label_smoothing: f64,
    /// The reduction.
    pub reduction: LossReduction,
}

/// Cross-entropy over `rows x classes` f32 logits with `i64` targets: the
/// gradient into `grad` (`rows * classes`), each row's loss into `rowv`
/// (`rows`, 0 for ignored rows) and the sum or mean into `out[0]`.
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy<B: Backend>(
    be: &B,
    x: u64,
    rows: u64,
    classes: u64,
    targets: u64,
    a: &CeArgs,
    grad: u64,
    rowv: u64,
    out: u64,
) -> Result<()> {
    if rows == 0 {
        let zero = be.alloc_zeroed(4)?;
        return be.launch(&Launch::linear(
            "maskops_loss_finalize".into(),
            1,
            32,
            vec![
                Arg::Ptr(be.ptr(&zero)),
                Arg::Ptr(0),
                Arg::U64(0),
                Arg::I32(0),
                Arg::Ptr(out),
            ],
        )?);
    }
    let wrow = be.alloc_zeroed(rows as usize * 4)?;
    let words = be.alloc_zeroed(rows.div_ceil(64) as usize * 8)?;
    let denom = be.alloc_zeroed(8)?;
    let total = be.alloc_zeroed(8)?;
    let (wp, kp, dp, tp) = (
        be.ptr(&wrow),
        be.ptr(&words),
        be.ptr(&denom),
        be.ptr(&total),
    );
    be.launch(&Launch::linear(
        "maskops_ce_prep".into(),
        rows.div_ceil(64).div_ceil(256),
        256,
        vec![
            Arg::Ptr(targets),
            Arg::U64(rows),
            Arg::U64(a.ignore_index as u64),
            Arg::Ptr(a.weight),
            Arg::Ptr(wp),
            Arg::Ptr(kp),
        ],
    )?)?;
    reduce(
        be,
        wp,
        DType::F32,
        kp,
        1,
        rows,
        Layout::Rows,
        Reduce::Sum,
        dp,
        DType::F32,
        0,
    )?;
    let mean = a.reduction == LossReduction::Mean;
    let args = vec![
        Arg::Ptr(x),
        Arg::U64(rows),
        Arg::U64(classes),
        Arg::Ptr(targets),
        Arg::U64(a.ignore_index as u64),
        Arg::Ptr(a.weight),
        Arg::F64(a.label_smoothing),
        Arg::F64(a.weight_sum),
        Arg::I32(mean as i32),
        Arg::Ptr(dp),
        Arg::Ptr(grad),
        Arg::Ptr(rowv),
    ];
    let mut held = None;
    let plan = if classes <= BLOCK as u64 {
        Launch::linear(
            "maskops_ce_rows_warp_f32".into(),
            rows.div_ceil((SOFTMAX_THREADS / 32) as u64),
            SOFTMAX_THREADS,
            args,
        )?
    } else {
        let p2 = classes.div_ceil(BLOCK as u64).next_power_of_two();
        let stride = p2.max(32);
        let b = be.alloc_zeroed(rows as usize * stride as usize * 4)?;
        let mut args = args;
        args.push(Arg::Ptr(be.ptr(&b)));
        args.push(Arg::U64(p2));
        held = Some(b);
        Launch::linear(
            "maskops_ce_rows_block_f32".into(),
            rows,
            SOFTMAX_THREADS,
            args,
        )?
    };
    be.launch(&plan)?;
    reduce(
        be,
        rowv,
        DType::F32,
        kp,
        1,
        rows,
        Layout::Rows,
        Reduce::Sum,
        tp,
        DType::F32,
        0,
    )?;
    be.launch(&Launch::linear(
        "maskops_loss_finalize".into(),
        1,
        32,
        vec![
            Arg::Ptr(tp),
            Arg::Ptr(dp),
            Arg::U64(0),
            Arg::I32(mean as i32),
            Arg::Ptr(out),
        ],
    )?)?;
    drop((held, wrow, words, denom, total));
    Ok(())
}

/// Adagrad hyper-parameters of one step, in f64; the launch rounds them to
/// the state type once (as the CPU optimizer does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdagradStep {
    /// `lr / (1 + (step - 1) * lr_decay)`, computed in f64.
    pub clr: f64,
    /// `eps`.
    pub eps: f64,
    /// `weight_decay`.
    pub weight_decay: f64,
    /// Negate the gradient.
    pub maximize: bool,
}

impl AdagradStep {
    /// The constants of step number `step` (1 for the first call).
    pub fn new(
        lr: f64,
        lr_decay: f64,
        weight_decay: f64,
        eps: f64,
        maximize: bool,
        step: u64,
    ) -> Self {
        let clr = lr / (1.0 + step.saturating_sub(1) as f64 * lr_decay);
        AdagradStep {
            clr,
            eps,
            weight_decay,
            maximize,
        }
    }
    /// The kernel arguments for state type `dtype` (F32 or F64).
    fn args(&self, dtype: DType) -> [Arg; 5] {
        let v = |x: f64| match dtype {
            DType::F64 => Arg::F64(x),
            _ => Arg::F32(x as f32),
        };
        [
            v(self.clr),
            v(self.eps),
            v(self.weight_decay),
            Arg::I32(self.maximize as i32),
            Arg::I32((self.weight_decay != 0.0) as i32),
        ]
    }
}

/// Adagrad runs on f32 or f64 parameters.
fn float_only(dtype: DType, what: &str) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("f32"),
        DType::F64 => Ok("f64"),
        _ => Err(Error::Cuda(format!("{what}: f32 or f64 parameters only"))),
    }
}

/// Threads per block of the Adagrad kernels.
pub const ADAGRAD_THREADS: u32 = 256;

/// Dense (`mask == 0`) or masked Adagrad step over `n` f32 entries.
#[allow(clippy::too_many_arguments)]
pub fn adagrad_dense<B: Backend>(
    be: &B,
    dtype: DType,
    param: u64,
    sum: u64,
    grad: u64,
    mask: u64,
    n: u64,
    h: &AdagradStep,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let mut args = vec![
        Arg::Ptr(param),
        Arg::Ptr(sum),
        Arg::Ptr(grad),
        Arg::Ptr(mask),
        Arg::U64(n),
    ];
    let sfx = float_only(dtype, "adagrad")?;
    args.extend(h.args(dtype));
    be.launch(&Launch::linear(
        format!("maskops_adagrad_dense_{sfx}"),
        n.div_ceil(ADAGRAD_THREADS as u64),
        ADAGRAD_THREADS,
        args,
    )?)
}

/// Sorts `idx[i] << 32 | i` (device `u64` indices, `nnz` of them) by a
/// bitonic network: the stable order of the indices. Returns the key buffer.
fn sort_keys<B: Backend>(be: &B, idx: u64, nnz: u64) -> Result<B::Buf> {
    if nnz > u32::MAX as u64 {
        return Err(Error::Cuda(format!(
            "sparse gradient of {nnz} entries: at most 2^32 - 1"
        )));
    }
    let p2 = nnz.next_power_of_two();
    let keys = be.alloc_zeroed(p2 as usize * 8)?;
    let kp = be.ptr(&keys);
    let blocks = p2.div_ceil(ADAGRAD_THREADS as u64);
    be.launch(&Launch::linear(
        "maskops_sparse_keys".into(),
        blocks,
        ADAGRAD_THREADS,
        vec![Arg::Ptr(idx), Arg::U64(nnz), Arg::U64(p2), Arg::Ptr(kp)],
    )?)?;
    let mut k = 2;
    while k <= p2 {
        let mut j = k / 2;
        while j >= 1 {
            be.launch(&Launch::linear(
                "maskops_bitonic_step".into(),
                blocks,
                ADAGRAD_THREADS,
                vec![Arg::Ptr(kp), Arg::U64(p2), Arg::U64(k), Arg::U64(j)],
            )?)?;
            j /= 2;
        }
        k *= 2;
    }
    Ok(keys)
}

/// Sparse COO Adagrad step: `nnz` entries with flattened `u64` indices
/// `idx` (each `< 2^32` and inside the parameter; the caller validates) and
/// f32 `values`. Duplicates are summed in order of appearance before the
/// update; no float atomics.
#[allow(clippy::too_many_arguments)]
pub fn adagrad_sparse<B: Backend>(
    be: &B,
    dtype: DType,
    param: u64,
    sum: u64,
    idx: u64,
    values: u64,
    nnz: u64,
    h: &AdagradStep,
) -> Result<()> {
    if nnz == 0 {
        return Ok(());
    }
    let sfx = float_only(dtype, "adagrad_sparse")?;
    let keys = sort_keys(be, idx, nnz)?;
    let mut args = vec![
        Arg::Ptr(be.ptr(&keys)),
        Arg::U64(nnz),
        Arg::Ptr(values),
        Arg::Ptr(param),
        Arg::Ptr(sum),
    ];
    args.extend(h.args(dtype));
    be.launch(&Launch::linear(
        format!("maskops_adagrad_sparse_runs_{sfx}"),
        nnz.div_ceil(ADAGRAD_THREADS as u64),
        ADAGRAD_THREADS,
        args,
    )?)?;
    drop(keys);
    Ok(())
}

/// Row-sparse Adagrad step (embedding gradient): `values` is
/// `nnz x cols` f32, row `i` adding to parameter row `rows_idx[i]` (`u64`,
/// validated by the caller). Duplicate rows are summed in order of
/// appearance before the update.
#[allow(clippy::too_many_arguments)]
pub fn adagrad_rows<B: Backend>(
    be: &B,
    dtype: DType,
    param: u64,
    sum: u64,
    cols: u64,
    rows_idx: u64,
    values: u64,
    nnz: u64,
    h: &AdagradStep,
) -> Result<()> {
    if nnz == 0 || cols == 0 {
        return Ok(());
    }
    let sfx = float_only(dtype, "adagrad_rows")?;
    let keys = sort_keys(be, rows_idx, nnz)?;
    let mut args = vec![
        Arg::Ptr(be.ptr(&keys)),
        Arg::U64(nnz),
        Arg::U64(cols),
        Arg::Ptr(values),
        Arg::Ptr(param),
        Arg::Ptr(sum),
    ];
    args.extend(h.args(dtype));
    let work = nnz
        .checked_mul(cols)
        .ok_or_else(|| Error::Cuda(format!("adagrad_rows: {nnz} x {cols} overflows")))?;
    be.launch(&Launch::linear(
        format!("maskops_adagrad_rows_{sfx}"),
        work.div_ceil(ADAGRAD_THREADS as u64),
        ADAGRAD_THREADS,
        args,
    )?)?;
    drop(keys);
    Ok(())
}

/// `argmin` (`max = false`) or `argmax` of every sequence: `out_idx` (`u64`
/// per sequence) gets the position of the first kept extreme element (NaN
/// counts as the extreme, as in PyTorch), `u64::MAX` where nothing is kept;
/// `out_cnt` (if not 0) the kept counts.
#[allow(clippy::too_many_arguments)]
pub fn argreduce<B: Backend>(
    be: &B,
    x: u64,
    dtype: DType,
    mask: u64,
    seqs: u64,
    len: u64,
    layout: Layout,
    max: bool,
    out_idx: u64,
    out_cnt: u64,
) -> Result<()> {
    if seqs == 0 {
        return Ok(());
    }
    let total = seqs
        .checked_mul(len)
        .ok_or_else(|| Error::Cuda(format!("argreduce: {seqs} x {len} elements overflow")))?;
    let m = be.alloc_zeroed(seqs as usize * dtype.acc().size())?;
    let mp = be.ptr(&m);
    let red = if max { Reduce::Amax } else { Reduce::Amin };
    reduce(
        be,
        x,
        dtype,
        mask,
        seqs,
        len,
        layout,
        red,
        mp,
        dtype.acc(),
        out_cnt,
    )?;
    be.launch(&Launch::linear(
        "maskops_fill_u64".into(),
        seqs.div_ceil(256),
        256,
        vec![Arg::Ptr(out_idx), Arg::U64(seqs), Arg::U64(u64::MAX)],
    )?)?;
    if total > 0 {
        be.launch(&Launch::linear(
            format!("maskops_argfind_{}", dtype.suffix()),
            total.div_ceil(256),
            256,
            vec![
                Arg::Ptr(x),
                Arg::Ptr(mask),
                Arg::U64(seqs),
                Arg::U64(len),
                Arg::I32((layout == Layout::Cols) as i32),
                Arg::Ptr(mp),
                Arg::Ptr(out_idx),
            ],
        )?)?;
    }
    drop(m);
    Ok(())
}

/// Whole-array `argmin` / `argmax`: `None` when nothing is kept.
pub fn argreduce_scalar<B: Backend>(
    be: &B,
    x: u64,
    dtype: DType,
    mask: u64,
    len: u64,
    max: bool,
) -> Result<Option<usize>> {
    let out = be.alloc_zeroed(8)?;
    argreduce(
        be,
        x,
        dtype,
        mask,
        1,
        len,
        Layout::Rows,
        max,
        be.ptr(&out),
        0,
    )?;
    let mut b = [0u8; 8];
    be.download(be.ptr(&out), &mut b)?;
    let i = u64::from_le_bytes(b);
    Ok((i != u64::MAX).then_some(i as usize))
}

/// Masked softmax / log-softmax over the columns (`dim = 0`) of a row-major
/// `rows x cols` matrix: per column `m = max`, `s = sum exp(x - m)` in the
/// canonical order (columns layout of the reduction kernels), then one
/// thread per element. Same definition as [`softmax`] along the other dim.
#[allow(clippy::too_many_arguments)]
pub fn softmax_cols<B: Backend>(
    be: &B,
    x: u64,
    dtype: DType,
    mask: u64,
    rows: u64,
    cols: u64,
    log: bool,
    out: u64,
) -> Result<()> {
    no_f64(dtype, "softmax")?;
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let m = be.alloc_zeroed(cols as usize * 4)?;
    let s = be.alloc_zeroed(cols as usize * 4)?;
    let (mp, sp) = (be.ptr(&m), be.ptr(&s));
    column_fold(be, x, dtype, mask, rows, cols, Kind::Max, 0, mp)?;
    column_fold(be, x, dtype, mask, rows, cols, Kind::ExpDev, mp, sp)?;
    be.launch(&Launch::linear(
        format!("maskops_softmax_cols_apply_{}", dtype.suffix()),
        (rows * cols).div_ceil(256),
        256,
        vec![
            Arg::Ptr(x),
            Arg::Ptr(mask),
            Arg::U64(rows),
            Arg::U64(cols),
            Arg::I32(log as i32),
            Arg::Ptr(mp),
            Arg::Ptr(sp),
            Arg::Ptr(out),
        ],
    )?)?;
    drop((m, s));
    Ok(())
}

/// Backward of [`softmax_cols`].
#[allow(clippy::too_many_arguments)]
pub fn softmax_cols_backward<B: Backend>(
    be: &B,
    y: u64,
    g: u64,
    dtype: DType,
    mask: u64,
    rows: u64,
    cols: u64,
    log: bool,
    dx: u64,
) -> Result<()> {
    no_f64(dtype, "softmax")?;
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let n = rows * cols;
    let gy = be.alloc_zeroed(n as usize * 4)?;
    let dot = be.alloc_zeroed(cols as usize * 4)?;
    let (gp, dp) = (be.ptr(&gy), be.ptr(&dot));
    be.launch(&Launch::linear(
        format!("maskops_softmax_cols_gy_{}", dtype.suffix()),
        n.div_ceil(256),
        256,
        vec![
            Arg::Ptr(y),
            Arg::Ptr(g),
            Arg::U64(n),
            Arg::I32(log as i32),
            Arg::Ptr(gp),
        ],
    )?)?;
    column_fold(be, gp, DType::F32, mask, rows, cols, Kind::Sum, 0, dp)?;
    be.launch(&Launch::linear(
        format!("maskops_softmax_bwd_cols_apply_{}", dtype.suffix()),
        n.div_ceil(256),
        256,
        vec![
            Arg::Ptr(y),
            Arg::Ptr(g),
            Arg::Ptr(mask),
            Arg::U64(rows),
            Arg::U64(cols),
            Arg::I32(log as i32),
            Arg::Ptr(dp),
            Arg::Ptr(dx),
        ],
    )?)?;
    drop((gy, dot));
    Ok(())
}

/// Row-wise Adagrad (FBGEMM; one accumulator per row of a `rows x cols`
/// f32 table): `rows_idx == 0` is the dense form (`values` is `nnz x cols`
/// with row `i` for table row `i`, `nnz` = rows); otherwise `rows_idx`
/// holds `nnz` `u64` table rows (validated by the caller) and duplicate rows
/// are summed in order of appearance.
#[allow(clippy::too_many_arguments)]
pub fn adagrad_rowwise<B: Backend>(
    be: &B,
    dtype: DType,
    param: u64,
    sum: u64,
    cols: u64,
    rows_idx: u64,
    values: u64,
    nnz: u64,
    h: &AdagradStep,
) -> Result<()> {
    if nnz == 0 || cols == 0 {
        return Ok(());
    }
    let sfx = float_only(dtype, "adagrad_rowwise")?;
    let keys = if rows_idx != 0 {
        Some(sort_keys(be, rows_idx, nnz)?)
    } else {
        None
    };
    let nb = cols.div_ceil(BLOCK as u64);
    let p2 = if nb > 1 { nb.next_power_of_two() } else { 0 };
    let scratch = be.alloc_zeroed((nnz * p2).max(1) as usize * dtype.size())?;
    let mut args = vec![
        Arg::Ptr(keys.as_ref().map_or(0, |k| be.ptr(k))),
        Arg::U64(nnz),
        Arg::U64(cols),
        Arg::Ptr(values),
        Arg::Ptr(param),
        Arg::Ptr(sum),
        Arg::Ptr(be.ptr(&scratch)),
        Arg::U64(p2),
    ];
    args.extend(h.args(dtype));
    be.launch(&Launch::linear(
        format!("maskops_adagrad_rowwise_{sfx}"),
        nnz.div_ceil((ADAGRAD_THREADS / 32) as u64),
        ADAGRAD_THREADS,
        args,
    )?)?;
    drop((keys, scratch));
    Ok(())
}
