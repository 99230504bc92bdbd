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
    /// Variance `sum (x - mean)^2 / (count - correction)` (two passes);
    /// NaN when `count <= correction`.
    Var(u32),
    /// Square root of [`Reduce::Var`].
    Std(u32),
    /// `sum |x|`.
    Norm1,
    /// `sqrt(sum x^2)`.
    Norm2,
    /// `max |x|`.
    NormInf,
    /// `c + ln(sum exp(x - c))` with `c` the max (0 when the max is infinite).
    LogSumExp,
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
    if p2 > 1 {
        let threads = (p2 / 2).clamp(32, 256) as u32;
        v.push(Launch::linear(
            "maskops_reduce_fold".into(),
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
        "maskops_reduce_finalize".into(),
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
/// (0 where nothing is kept) and, when `out_cnt != 0`, the `u32` count of
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
    let part = be.alloc_zeroed(slots * 4)?;
    let cnt = be.alloc_zeroed(slots * 4)?;
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
            center = Some(be.alloc_zeroed(seqs as usize * 4)?);
            let ctr = be.ptr(center.as_ref().unwrap());
            let (k1, f1, k2, f2) = match red {
                Reduce::Var(_) => (Kind::Sum, Fin::Mean, Kind::SqDev, Fin::Var),
                Reduce::Std(_) => (Kind::Sum, Fin::Mean, Kind::SqDev, Fin::Std),
                _ => (Kind::Max, Fin::LseCenter, Kind::ExpDev, Fin::Lse),
            };
            plans.extend(one(k1, 0, f1, 0, 0, ctr, DType::F32, 0)?);
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

/// Packs "count > 0" of `n` `u32` counts into `n.div_ceil(64)` mask words.
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

/// A whole-array reduction returning the scalar: `None` when nothing is kept.
/// The result is read back as `f32` (the accumulator type).
pub fn reduce_scalar<B: Backend>(
    be: &B,
    x: u64,
    dtype: DType,
    mask: u64,
    len: u64,
    red: Reduce,
) -> Result<Option<f32>> {
    let out = be.alloc_zeroed(8)?;
    let oc = be.alloc_zeroed(8)?;
    reduce(
        be,
        x,
        dtype,
        mask,
        1,
        len,
        Layout::Rows,
        red,
        be.ptr(&out),
        DType::F32,
        be.ptr(&oc),
    )?;
    let mut v = [0u8; 4];
    let mut c = [0u8; 4];
    be.download(be.ptr(&out), &mut v)?;
    be.download(be.ptr(&oc), &mut c)?;
    Ok((u32::from_le_bytes(c) > 0).then(|| f32::from_le_bytes(v)))
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
