//! The device backend and the public device API (feature `cuda`).
//!
//! [`Gpu`] owns a CUDA context, its default stream and the kernel modules
//! (the PTX `build.rs` produced, or PTX compiled at run time by the user's
//! NVRTC when that is empty or the driver refuses it). It implements
//! [`Backend`], so every operation runs the launch plans of [`super::ops`],
//! the same code the emulated tests execute. No operation copies data to the
//! host except a scalar result the caller asked for (and the few host
//! arguments it takes: targets, sparse indices, which are validated on the
//! host first).

use super::ops::{self, CeArgs, ElemLoss, LossReduction, Reduce};
use super::plan::{Backend, DType, Launch};
use super::ptx;
use crate::error::{check_len, check_nonneg, check_shape};
use crate::{Error, Mask, Result};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DevicePtrMut,
};
use std::collections::HashMap;

/// Event guards of the buffers an operation's kernels use (see `Gpu::p`).
type Guards<'a> = Vec<cudarc::driver::SyncOnDrop<'a>>;
use std::sync::{Arc, Mutex};

fn cuda_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Cuda(format!("{what}: {e:?}"))
}

/// The error of opening device `ordinal`: [`Error::CudaUnavailable`] when
/// the machine has no such device (`CUDA_ERROR_NO_DEVICE`,
/// `CUDA_ERROR_INVALID_DEVICE`), [`Error::Cuda`] with the driver's message
/// for anything else (a driver that fails to initialize is a fault, not a
/// missing GPU).
fn context_err(ordinal: usize, e: cudarc::driver::DriverError) -> Error {
    use cudarc::driver::sys::CUresult;
    match e.0 {
        CUresult::CUDA_ERROR_NO_DEVICE | CUresult::CUDA_ERROR_INVALID_DEVICE => {
            Error::CudaUnavailable(format!("no CUDA device {ordinal} on this machine: {e:?}"))
        }
        _ => Error::Cuda(format!("CUDA device {ordinal}: creating a context: {e:?}")),
    }
}

/// `true` when the NVIDIA driver library (`libcuda`) can be loaded; says
/// nothing about whether a device is present.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the library.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
    impl Sealed for f64 {}
}

/// An element type the device reductions take: `f32`, `half::f16`,
/// `half::bf16` (accumulating in f32, rounded once at the end, like the CPU
/// paths) and `f64` (accumulating in f64). Softmax takes all but `f64`.
pub trait DeviceElement:
    sealed::Sealed + cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits + Copy + 'static
{
    /// The kernels' name for the type.
    const DTYPE: DType;
    /// The accumulator type, in which scalar reductions are returned.
    type Acc: Copy + std::fmt::Debug + PartialEq;
    /// Narrows an accumulator value widened to f64 back (exact).
    fn acc(v: f64) -> Self::Acc;
}
impl DeviceElement for f32 {
    const DTYPE: DType = DType::F32;
    type Acc = f32;
    fn acc(v: f64) -> f32 {
        v as f32
    }
}
impl DeviceElement for half::f16 {
    const DTYPE: DType = DType::F16;
    type Acc = f32;
    fn acc(v: f64) -> f32 {
        v as f32
    }
}
impl DeviceElement for half::bf16 {
    const DTYPE: DType = DType::Bf16;
    type Acc = f32;
    fn acc(v: f64) -> f32 {
        v as f32
    }
}
impl DeviceElement for f64 {
    const DTYPE: DType = DType::F64;
    type Acc = f64;
    fn acc(v: f64) -> f64 {
        v
    }
}

/// A CUDA device with the maskops kernels loaded, and its stream.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    modules: Vec<Arc<CudaModule>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
    /// Compute capability (major, minor).
    capability: (u32, u32),
    /// How each kernel file was loaded (cubin, PTX JIT, run-time NVRTC).
    loaded: Vec<String>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("ordinal", &self.ctx.ordinal())
            .field("compute_capability", &self.capability)
            .field("loaded", &self.loaded)
            .finish()
    }
}

/// A mask on the device: the `u64` words, uploaded once.
#[derive(Debug)]
pub struct DeviceMask {
    /// The words (LSB-first; bits past `len` are 0).
    pub words: CudaSlice<u64>,
    len: usize,
    ones: Option<usize>,
}

impl DeviceMask {
    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }
    /// `true` for a mask of no bits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The number of set bits when known without a device read (masks
    /// uploaded from the host).
    pub fn count_ones_cached(&self) -> Option<usize> {
        self.ones
    }
}

/// Values with a mask, on the device (per-dim reductions).
#[derive(Debug)]
pub struct DeviceMaskedVec<T> {
    /// The values (0 under a cleared bit).
    pub values: CudaSlice<T>,
    /// The mask: cleared where nothing was kept.
    pub mask: DeviceMask,
}

/// A loss on the device: `value` has one element unless
/// [`LossReduction::None`]; `grad` is `d value.sum() / d input`.
#[derive(Debug)]
pub struct DeviceLoss<T> {
    /// The loss value(s).
    pub value: CudaSlice<T>,
    /// The gradient with respect to the input.
    pub grad: CudaSlice<T>,
}

/// Adagrad hyper-parameters for the device steps (PyTorch's meaning and
/// defaults, as `maskops::optim::Adagrad`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceAdagrad {
    /// Learning rate.
    pub lr: f64,
    /// Step `t` uses `lr / (1 + (t - 1) * lr_decay)`.
    pub lr_decay: f64,
    /// L2 penalty (touched entries only for masked/sparse steps).
    pub weight_decay: f64,
    /// Initial value of the accumulator.
    pub initial_accumulator_value: f64,
    /// Added to `sqrt(sum)`.
    pub eps: f64,
    /// Maximize instead of minimize.
    pub maximize: bool,
}

impl Default for DeviceAdagrad {
    fn default() -> Self {
        DeviceAdagrad {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// A parameter type of the device Adagrad steps: `f32` or `f64` (the state
/// has the parameter's type).
pub trait DeviceFloat: DeviceElement {
    /// Rounds an f64 hyper-parameter to the type.
    fn from_f64(v: f64) -> Self;
}
impl DeviceFloat for f32 {
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
}
impl DeviceFloat for f64 {
    fn from_f64(v: f64) -> f64 {
        v
    }
}

/// Adagrad state on the device.
#[derive(Debug)]
pub struct DeviceAdagradState<T> {
    /// The accumulator of squared gradients.
    pub sum: CudaSlice<T>,
    /// Steps taken.
    pub step: u64,
}

impl DeviceAdagrad {
    fn validate(&self) -> Result<()> {
        check_nonneg("lr", self.lr)?;
        check_nonneg("lr_decay", self.lr_decay)?;
        check_nonneg("weight_decay", self.weight_decay)?;
        check_nonneg("initial_accumulator_value", self.initial_accumulator_value)?;
        check_nonneg("eps", self.eps)?;
        Ok(())
    }
    fn step_consts(&self, step: u64) -> ops::AdagradStep {
        ops::AdagradStep::new(
            self.lr,
            self.lr_decay,
            self.weight_decay,
            self.eps,
            self.maximize,
            step,
        )
    }
}

impl Gpu {
    /// Opens device `ordinal`: `Err(Error::CudaUnavailable)` when the driver
    /// library is missing or no such device exists, `Err(Error::Cuda)` with
    /// the driver's message for any other failure (a context that cannot be
    /// created, kernels the driver refuses to load or JIT-compile). Never a
    /// panic.
    pub fn new(ordinal: usize) -> Result<Gpu> {
        if !driver_present() {
            return Err(Error::CudaUnavailable(
                "the NVIDIA driver library (libcuda.so) could not be loaded".into(),
            ));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| context_err(ordinal, e))?;
        // a stream of its own, not the legacy NULL stream: the caller's
        // other streams are not serialized behind maskops' work, and
        // cudarc's buffer events order the two where they share buffers
        let stream = ctx.new_stream().map_err(|e| cuda_err("new_stream", e))?;
        Gpu::open(ctx, stream)
    }

    /// A `Gpu` that queues every operation on the caller's `stream` (and
    /// uses its context): maskops' kernels then run in order with the
    /// caller's own work on that stream. Errors as [`Gpu::new`].
    pub fn with_stream(stream: Arc<CudaStream>) -> Result<Gpu> {
        if !driver_present() {
            return Err(Error::CudaUnavailable(
                "the NVIDIA driver library (libcuda.so) could not be loaded".into(),
            ));
        }
        let ctx = stream.context().clone();
        Gpu::open(ctx, stream)
    }

    /// Loads the kernels into `ctx` (see [`Gpu::new`]).
    fn open(ctx: Arc<CudaContext>, stream: Arc<CudaStream>) -> Result<Gpu> {
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| cuda_err("compute capability", e))?;
        let (major, minor) = (major.max(0) as u32, minor.max(0) as u32);
        let mut modules = Vec::new();
        let mut loaded = Vec::new();
        for (stem, _, prebuilt) in ptx::KERNEL_FILES {
            // 1. the cubin of this architecture, 2. the embedded PTX (JIT;
            // refused by a driver older than its PTX version), 3. NVRTC at
            // run time; an error carries every message
            let mut tried = Vec::new();
            let mut module = None;
            match ptx::cubin_for(stem, major, minor) {
                Some((arch, bytes)) => {
                    match ctx.load_module(cudarc::nvrtc::Ptx::from_binary(bytes.to_vec())) {
                        Ok(m) => {
                            module = Some(m);
                            loaded.push(format!("{stem}: sm_{arch} cubin"));
                        }
                        Err(e) => tried.push(format!(
                            "the driver refused the embedded {stem}.sm_{arch}.cubin: {e:?}"
                        )),
                    }
                }
                None => tried.push(format!(
                    "no embedded cubin for compute capability {major}.{minor}"
                )),
            }
            if module.is_none() {
                if prebuilt.is_empty() {
                    tried.push("build.rs embedded no PTX (no NVRTC at build time)".into());
                } else {
                    match ctx.load_module(cudarc::nvrtc::Ptx::from_src(*prebuilt)) {
                        Ok(m) => {
                            module = Some(m);
                            loaded.push(format!("{stem}: embedded PTX, JIT-compiled"));
                        }
                        Err(e) => {
                            tried.push(format!("the driver refused the embedded {stem}.ptx: {e:?}"))
                        }
                    }
                }
            }
            let module = match module {
                Some(m) => m,
                None => {
                    let first = tried.join("; ");
                    let src = ptx::compile(stem).map_err(|e| {
                        Error::Cuda(format!("{first}; run-time NVRTC of {stem}.cu: {e}"))
                    })?;
                    let m = ctx
                        .load_module(cudarc::nvrtc::Ptx::from_src(src))
                        .map_err(|e| {
                            Error::Cuda(format!(
                                "{first}; and the run-time NVRTC PTX of {stem}.cu: {e:?}"
                            ))
                        })?;
                    loaded.push(format!("{stem}: run-time NVRTC PTX"));
                    m
                }
            };
            modules.push(module);
        }
        Ok(Gpu {
            ctx,
            stream,
            modules,
            functions: Mutex::new(HashMap::new()),
            capability: (major, minor),
            loaded,
        })
    }

    /// The device's compute capability `(major, minor)`.
    pub fn compute_capability(&self) -> (u32, u32) {
        self.capability
    }

    /// How each kernel file was loaded: `"reduce: sm_90 cubin"`,
    /// `"...: embedded PTX, JIT-compiled"` or `"...: run-time NVRTC PTX"`.
    pub fn loaded_from(&self) -> &[String] {
        &self.loaded
    }

    /// The stream every operation is queued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Waits for every queued operation.
    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| cuda_err("synchronize", e))
    }

    /// Copies a host slice to the device.
    pub fn upload<T: cudarc::driver::DeviceRepr>(&self, data: &[T]) -> Result<CudaSlice<T>> {
        self.stream
            .clone_htod(data)
            .map_err(|e| cuda_err("upload", e))
    }

    /// Copies a device buffer to the host.
    pub fn download<T: cudarc::driver::DeviceRepr>(&self, data: &CudaSlice<T>) -> Result<Vec<T>> {
        self.stream
            .clone_dtoh(data)
            .map_err(|e| cuda_err("download", e))
    }

    /// Uploads a mask's words once.
    pub fn upload_mask(&self, mask: &Mask) -> Result<DeviceMask> {
        let words = if mask.words().is_empty() {
            self.upload(&[0u64])?
        } else {
            self.upload(mask.words())?
        };
        Ok(DeviceMask {
            words,
            len: mask.len(),
            ones: Some(mask.count_ones()),
        })
    }

    /// Reads a device mask back.
    pub fn download_mask(&self, mask: &DeviceMask) -> Result<Mask> {
        let mut w = self.download(&mask.words)?;
        w.truncate(mask.len.div_ceil(64));
        Mask::from_words(w, mask.len)
    }

    /// `s`'s device address for a read by the kernels this operation is
    /// about to queue. The guard goes into `g`, which the operation drops
    /// after its last launch: cudarc then records the buffer's read event
    /// *after* the kernels, so work on another stream that uses the buffer
    /// waits for them.
    fn p<'a, T>(&'a self, g: &mut Guards<'a>, s: &'a CudaSlice<T>) -> u64 {
        let (p, sync) = s.device_ptr(&self.stream);
        g.push(sync);
        p
    }
    /// `s`'s device address for a write (see [`Gpu::p`]).
    fn pm<'a, T>(&'a self, g: &mut Guards<'a>, s: &'a mut CudaSlice<T>) -> u64 {
        let (p, sync) = s.device_ptr_mut(&self.stream);
        g.push(sync);
        p
    }

    /// A buffer of `n` elements for an operation's output that its kernels
    /// write in full: allocated without a memset (`CudaStream::alloc`). An
    /// empty output (`n == 0`: no kernel writes it) is one zeroed element,
    /// as before.
    ///
    /// # Safety
    /// The operation must queue, before anything reads the buffer, kernels
    /// that write every one of its `n` elements. The device cases
    /// (`tests/cuda_cases`) hand these kernels outputs filled with 0xFF
    /// bytes, so an element left unwritten fails them under the emulator.
    unsafe fn alloc_written<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        n: usize,
    ) -> Result<CudaSlice<T>> {
        if n == 0 {
            return self
                .stream
                .alloc_zeros::<T>(1)
                .map_err(|e| cuda_err("alloc", e));
        }
        // SAFETY: uninitialized device memory is only written by the
        // operation's kernels before it is read (the caller's contract).
        unsafe { self.stream.alloc::<T>(n) }.map_err(|e| cuda_err("alloc", e))
    }

    fn kept(&self, mask: &DeviceMask) -> Result<usize> {
        match mask.ones {
            Some(k) => Ok(k),
            None => {
                // counted on the device: one 8-byte read, not the mask
                let mut guards = Guards::new();
                let n = mask.len.div_ceil(64) as u64;
                let k = ops::mask_count(self, self.p(&mut guards, &mask.words), n)?;
                drop(guards);
                Ok(k as usize)
            }
        }
    }

    /// A whole-array masked reduction: `None` when nothing is kept. The
    /// result is the accumulator (f32, not rounded to a half type; f64 for
    /// f64 data).
    pub fn reduce<T: DeviceElement>(
        &self,
        x: &CudaSlice<T>,
        mask: &DeviceMask,
        red: Reduce,
    ) -> Result<Option<T::Acc>> {
        check_len("mask", x.len(), mask.len)?;
        let mut guards = Guards::new();
        let r = ops::reduce_scalar_f64(
            self,
            self.p(&mut guards, x),
            T::DTYPE,
            self.p(&mut guards, &mask.words),
            x.len() as u64,
            red,
        )?;
        drop(guards);
        Ok(r.map(T::acc))
    }

    /// A per-dim reduction of a row-major `rows x cols` matrix (`dim = 1`:
    /// one result per row; `dim = 0`: per column); values in `T`.
    pub fn reduce_dim<T: DeviceElement>(
        &self,
        x: &CudaSlice<T>,
        mask: &DeviceMask,
        rows: usize,
        cols: usize,
        dim: usize,
        red: Reduce,
    ) -> Result<DeviceMaskedVec<T>> {
        check_shape("x", rows, cols, x.len())?;
        check_len("mask", x.len(), mask.len)?;
        let (seqs, len, layout) = match dim {
            1 => (rows, cols, ops::Layout::Rows),
            0 => (cols, rows, ops::Layout::Cols),
            _ => return Err(Error::Dim { dim, ndim: 2 }),
        };
        // SAFETY: maskops_reduce_finalize{,_f64} (the last launch of
        // ops::reduce) writes values[s] and cnt[s] for every s < seqs, and
        // maskops_pack_counts writes every one of the seqs.div_ceil(64) words.
        let (mut values, mut cnt, mut words) = unsafe {
            (
                self.alloc_written::<T>(seqs)?,
                self.alloc_written::<u64>(seqs)?,
                self.alloc_written::<u64>(seqs.div_ceil(64))?,
            )
        };
        let mut guards = Guards::new();
        let (vp, cp, wp) = (
            self.pm(&mut guards, &mut values),
            self.pm(&mut guards, &mut cnt),
            self.pm(&mut guards, &mut words),
        );
        ops::reduce(
            self,
            self.p(&mut guards, x),
            T::DTYPE,
            self.p(&mut guards, &mask.words),
            seqs as u64,
            len as u64,
            layout,
            red,
            vp,
            T::DTYPE,
            cp,
        )?;
        ops::pack_counts(self, cp, seqs as u64, wp)?;
        drop(guards);
        Ok(DeviceMaskedVec {
            values,
            mask: DeviceMask {
                words,
                len: seqs,
                ones: None,
            },
        })
    }

    /// Whole-array `argmin` (`max = false`) or `argmax`: the first kept
    /// position of the extreme value (NaN counts as extreme); `None` when
    /// nothing is kept.
    pub fn argreduce(
        &self,
        x: &CudaSlice<f32>,
        mask: &DeviceMask,
        max: bool,
    ) -> Result<Option<usize>> {
        check_len("mask", x.len(), mask.len)?;
        let mut guards = Guards::new();
        let r = ops::argreduce_scalar(
            self,
            self.p(&mut guards, x),
            DType::F32,
            self.p(&mut guards, &mask.words),
            x.len() as u64,
            max,
        );
        drop(guards);
        r
    }

    /// Per-dim `argmin` / `argmax` of a row-major `rows x cols` f32 matrix:
    /// indices along `dim` (`u64::MAX` where nothing is kept) and the mask of
    /// sequences with something kept.
    #[allow(clippy::too_many_arguments)]
    pub fn argreduce_dim(
        &self,
        x: &CudaSlice<f32>,
        mask: &DeviceMask,
        rows: usize,
        cols: usize,
        dim: usize,
        max: bool,
    ) -> Result<(CudaSlice<u64>, DeviceMask)> {
        check_shape("x", rows, cols, x.len())?;
        check_len("mask", x.len(), mask.len)?;
        let (seqs, len, layout) = match dim {
            1 => (rows, cols, ops::Layout::Rows),
            0 => (cols, rows, ops::Layout::Cols),
            _ => return Err(Error::Dim { dim, ndim: 2 }),
        };
        // SAFETY: ops::argreduce fills idx[s] for every s < seqs
        // (maskops_fill_u64) before maskops_argfind lowers some of them;
        // maskops_reduce_finalize writes cnt[s] for every s < seqs and
        // maskops_pack_counts every one of the seqs.div_ceil(64) words.
        let (mut idx, mut cnt, mut words) = unsafe {
            (
                self.alloc_written::<u64>(seqs)?,
                self.alloc_written::<u64>(seqs)?,
                self.alloc_written::<u64>(seqs.div_ceil(64))?,
            )
        };
        let mut guards = Guards::new();
        let (ip, cp, wp) = (
            self.pm(&mut guards, &mut idx),
            self.pm(&mut guards, &mut cnt),
            self.pm(&mut guards, &mut words),
        );
        ops::argreduce(
            self,
            self.p(&mut guards, x),
            DType::F32,
            self.p(&mut guards, &mask.words),
            seqs as u64,
            len as u64,
            layout,
            max,
            ip,
            cp,
        )?;
        ops::pack_counts(self, cp, seqs as u64, wp)?;
        drop(guards);
        Ok((
            idx,
            DeviceMask {
                words,
                len: seqs,
                ones: None,
            },
        ))
    }

    /// Masked softmax (`log = false`) or log-softmax of a row-major
    /// `rows x cols` matrix along `dim` (1: each row, 0: each column); the
    /// output has the input's type, 0 under masked-out entries. The output
    /// mask is the input mask (a fully masked row has no set bit already).
    #[allow(clippy::too_many_arguments)]
    pub fn softmax<T: DeviceElement>(
        &self,
        x: &CudaSlice<T>,
        mask: &DeviceMask,
        rows: usize,
        cols: usize,
        dim: usize,
        log: bool,
    ) -> Result<CudaSlice<T>> {
        check_shape("x", rows, cols, x.len())?;
        check_len("mask", x.len(), mask.len)?;
        if dim > 1 {
            return Err(Error::Dim { dim, ndim: 2 });
        }
        // SAFETY: for rows * cols > 0 (so rows, cols > 0) every element is
        // stored by maskops_softmax_{warp,block}_* (dim 1: each row's
        // threads store all its positions, 0 where masked out) or
        // maskops_softmax_cols_apply_* (dim 0: one thread per element).
        let mut out = unsafe { self.alloc_written::<T>(x.len())? };
        let mut guards = Guards::new();
        let op = self.pm(&mut guards, &mut out);
        let (xp, mp, r, c) = (
            self.p(&mut guards, x),
            self.p(&mut guards, &mask.words),
            rows as u64,
            cols as u64,
        );
        match dim {
            1 => ops::softmax(self, xp, T::DTYPE, mp, r, c, log, op)?,
            0 => ops::softmax_cols(self, xp, T::DTYPE, mp, r, c, log, op)?,
            _ => return Err(Error::Dim { dim, ndim: 2 }),
        }
        drop(guards);
        Ok(out)
    }

    /// Backward of [`Gpu::softmax`] from its output `y` and the upstream
    /// gradient `g`.
    #[allow(clippy::too_many_arguments)]
    pub fn softmax_backward<T: DeviceElement>(
        &self,
        y: &CudaSlice<T>,
        g: &CudaSlice<T>,
        mask: &DeviceMask,
        rows: usize,
        cols: usize,
        dim: usize,
        log: bool,
    ) -> Result<CudaSlice<T>> {
        check_shape("y", rows, cols, y.len())?;
        check_len("grad", y.len(), g.len())?;
        check_len("mask", y.len(), mask.len)?;
        if dim > 1 {
            return Err(Error::Dim { dim, ndim: 2 });
        }
        // SAFETY: for rows * cols > 0 every element is stored by
        // maskops_softmax_bwd_{warp,block}_* (dim 1) or
        // maskops_softmax_bwd_cols_apply_* (dim 0), 0 where masked out.
        let mut dx = unsafe { self.alloc_written::<T>(y.len())? };
        let mut guards = Guards::new();
        let dp = self.pm(&mut guards, &mut dx);
        let (yp, gp, mp, r, c) = (
            self.p(&mut guards, y),
            self.p(&mut guards, g),
            self.p(&mut guards, &mask.words),
            rows as u64,
            cols as u64,
        );
        match dim {
            1 => ops::softmax_backward(self, yp, gp, T::DTYPE, mp, r, c, log, dp)?,
            0 => ops::softmax_cols_backward(self, yp, gp, T::DTYPE, mp, r, c, log, dp)?,
            _ => return Err(Error::Dim { dim, ndim: 2 }),
        }
        drop(guards);
        Ok(dx)
    }

    /// An elementwise masked loss (mse, l1, huber, smooth L1) with its gradient.
    pub fn loss<T: DeviceFloat>(
        &self,
        kind: ElemLoss,
        input: &CudaSlice<T>,
        target: &CudaSlice<T>,
        mask: &DeviceMask,
        reduction: LossReduction,
    ) -> Result<DeviceLoss<T>> {
        check_len("target", input.len(), target.len())?;
        check_len("mask", input.len(), mask.len)?;
        match kind {
            ElemLoss::Huber(d) if !(d.is_finite() && d > 0.0) => {
                return Err(Error::Param {
                    name: "delta",
                    value: d,
                    expected: "finite and > 0",
                })
            }
            ElemLoss::SmoothL1(b) if !(b.is_finite() && b >= 0.0) => {
                return Err(Error::Param {
                    name: "beta",
                    value: b,
                    expected: "finite and >= 0",
                })
            }
            _ => {}
        }
        let n = input.len();
        let kept = self.kept(mask)?;
        let none = reduction == LossReduction::None;
        // SAFETY: maskops_loss_elem_* stores grad[i] (and vals[i] when it
        // is passed: Reduction::None) for every i < n, 0 where masked out;
        // maskops_loss_finalize{,_f64} stores out[0] in every case.
        let (mut grad, mut vals, mut out) = unsafe {
            (
                self.alloc_written::<T>(n)?,
                self.alloc_written::<T>(if none { n } else { 0 })?,
                self.alloc_written::<T>(1)?,
            )
        };
        let mut guards = Guards::new();
        let (gp, vp, op) = (
            self.pm(&mut guards, &mut grad),
            self.pm(&mut guards, &mut vals),
            self.pm(&mut guards, &mut out),
        );
        ops::loss_elementwise(
            self,
            T::DTYPE,
            kind,
            self.p(&mut guards, input),
            self.p(&mut guards, target),
            self.p(&mut guards, &mask.words),
            n as u64,
            kept as u64,
            reduction,
            gp,
            if none { vp } else { 0 },
            op,
        )?;
        drop(guards);
        Ok(DeviceLoss {
            value: if none { vals } else { out },
            grad,
        })
    }

    /// Cross-entropy over `rows x classes` f32 logits; `targets` (host) are
    /// validated like the CPU API: each in `[0, classes)` or `ignore_index`.
    #[allow(clippy::too_many_arguments)]
    pub fn cross_entropy(
        &self,
        logits: &CudaSlice<f32>,
        rows: usize,
        classes: usize,
        targets: &[i64],
        ignore_index: i64,
        weight: Option<&[f32]>,
        label_smoothing: f64,
        reduction: LossReduction,
    ) -> Result<DeviceLoss<f32>> {
        check_shape("logits", rows, classes, logits.len())?;
        check_len("targets", rows, targets.len())?;
        if let Some(w) = weight {
            check_len("weight", classes, w.len())?;
        }
        if !(label_smoothing.is_finite() && (0.0..=1.0).contains(&label_smoothing)) {
            return Err(Error::Param {
                name: "label_smoothing",
                value: label_smoothing,
                expected: "in [0, 1]",
            });
        }
        for (row, &t) in targets.iter().enumerate() {
            if t != ignore_index && (t < 0 || t as u64 >= classes as u64) {
                return Err(Error::Target {
                    row,
                    value: t,
                    classes,
                    ignore_index,
                });
            }
        }
        let tb = self.upload(if targets.is_empty() {
            &[0i64][..]
        } else {
            targets
        })?;
        let wb = match weight {
            Some(w) if !w.is_empty() => Some(self.upload(w)?),
            _ => None,
        };
        let weight_sum = weight.map_or(classes as f64, |w| w.iter().map(|&v| v as f64).sum());
        // SAFETY: maskops_ce_rows_{warp,block}_f32 store every class of
        // every row of grad (0 for an ignored row) and rowv[r] for every
        // row; maskops_loss_finalize stores out[0] (also when rows == 0).
        let (mut grad, mut rowv, mut out) = unsafe {
            (
                self.alloc_written::<f32>(logits.len())?,
                self.alloc_written::<f32>(rows)?,
                self.alloc_written::<f32>(1)?,
            )
        };
        let mut guards = Guards::new();
        let (gp, rp, op) = (
            self.pm(&mut guards, &mut grad),
            self.pm(&mut guards, &mut rowv),
            self.pm(&mut guards, &mut out),
        );
        let args = CeArgs {
            ignore_index,
            weight: wb.as_ref().map_or(0, |b| self.p(&mut guards, b)),
            weight_sum,
            label_smoothing,
            reduction,
        };
        ops::cross_entropy(
            self,
            self.p(&mut guards, logits),
            rows as u64,
            classes as u64,
            self.p(&mut guards, &tb),
            &args,
            gp,
            rp,
            op,
        )?;
        drop(guards);
        let value = if reduction == LossReduction::None {
            rowv
        } else {
            out
        };
        Ok(DeviceLoss { value, grad })
    }

    /// A fresh Adagrad state for `len` parameters.
    pub fn adagrad_state<T: DeviceFloat>(
        &self,
        opt: &DeviceAdagrad,
        len: usize,
    ) -> Result<DeviceAdagradState<T>> {
        opt.validate()?;
        let sum = self.upload(&vec![
            T::from_f64(opt.initial_accumulator_value);
            len.max(1)
        ])?;
        Ok(DeviceAdagradState { sum, step: 0 })
    }

    /// Dense (`mask = None`) or masked Adagrad step.
    pub fn adagrad_step<T: DeviceFloat>(
        &self,
        opt: &DeviceAdagrad,
        param: &mut CudaSlice<T>,
        grad: &CudaSlice<T>,
        mask: Option<&DeviceMask>,
        state: &mut DeviceAdagradState<T>,
    ) -> Result<()> {
        opt.validate()?;
        let n = param.len();
        check_len("grad", n, grad.len())?;
        check_len("state.sum", n.max(1), state.sum.len())?;
        if let Some(m) = mask {
            check_len("mask", n, m.len)?;
        }
        let h = opt.step_consts(state.step + 1);
        let mut guards = Guards::new();
        let mp = mask.map_or(0, |m| self.p(&mut guards, &m.words));
        let (pp, sp) = (
            self.pm(&mut guards, param),
            self.pm(&mut guards, &mut state.sum),
        );
        ops::adagrad_dense(
            self,
            T::DTYPE,
            pp,
            sp,
            self.p(&mut guards, grad),
            mp,
            n as u64,
            &h,
        )?;
        drop(guards);
        state.step += 1;
        Ok(())
    }

    /// Sparse COO Adagrad step: `indices` (host, flattened, each `< len`)
    /// with `values`; duplicates summed in order of appearance on the device.
    pub fn adagrad_step_sparse<T: DeviceFloat>(
        &self,
        opt: &DeviceAdagrad,
        param: &mut CudaSlice<T>,
        indices: &[usize],
        values: &[T],
        state: &mut DeviceAdagradState<T>,
    ) -> Result<()> {
        opt.validate()?;
        let n = param.len();
        check_len("values", indices.len(), values.len())?;
        check_len("state.sum", n.max(1), state.sum.len())?;
        for (position, &index) in indices.iter().enumerate() {
            if index >= n || index > u32::MAX as usize {
                return Err(Error::Index {
                    arg: "indices",
                    index,
                    position,
                    bound: n.min(u32::MAX as usize + 1),
                });
            }
        }
        let h = opt.step_consts(state.step + 1);
        if !indices.is_empty() {
            let idx: Vec<u64> = indices.iter().map(|&i| i as u64).collect();
            let ib = self.upload(&idx)?;
            let vb = self.upload(values)?;
            let mut guards = Guards::new();
            let (pp, sp) = (
                self.pm(&mut guards, param),
                self.pm(&mut guards, &mut state.sum),
            );
            ops::adagrad_sparse(
                self,
                T::DTYPE,
                pp,
                sp,
                self.p(&mut guards, &ib),
                self.p(&mut guards, &vb),
                idx.len() as u64,
                &h,
            )?;
            drop(guards);
        }
        state.step += 1;
        Ok(())
    }

    /// Row-sparse Adagrad step (embedding gradient): `values` is
    /// `row_indices.len() x cols` on the device.
    pub fn adagrad_step_rows<T: DeviceFloat>(
        &self,
        opt: &DeviceAdagrad,
        param: &mut CudaSlice<T>,
        cols: usize,
        row_indices: &[usize],
        values: &CudaSlice<T>,
        state: &mut DeviceAdagradState<T>,
    ) -> Result<()> {
        opt.validate()?;
        let n = param.len();
        let rows = n.checked_div(cols).unwrap_or(0);
        if cols == 0 || rows * cols != n {
            return Err(Error::Shape {
                arg: "param",
                rows,
                cols,
                len: n,
            });
        }
        check_shape(
            "values",
            row_indices.len(),
            cols,
            if row_indices.is_empty() {
                0
            } else {
                values.len()
            },
        )?;
        check_len("state.sum", n.max(1), state.sum.len())?;
        for (position, &index) in row_indices.iter().enumerate() {
            if index >= rows || index > u32::MAX as usize {
                return Err(Error::Index {
                    arg: "row_indices",
                    index,
                    position,
                    bound: rows,
                });
            }
        }
        let h = opt.step_consts(state.step + 1);
        if !row_indices.is_empty() {
            let idx: Vec<u64> = row_indices.iter().map(|&i| i as u64).collect();
            let ib = self.upload(&idx)?;
            let mut guards = Guards::new();
            let (pp, sp) = (
                self.pm(&mut guards, param),
                self.pm(&mut guards, &mut state.sum),
            );
            ops::adagrad_rows(
                self,
                T::DTYPE,
                pp,
                sp,
                cols as u64,
                self.p(&mut guards, &ib),
                self.p(&mut guards, values),
                idx.len() as u64,
                &h,
            )?;
            drop(guards);
        }
        state.step += 1;
        Ok(())
    }

    /// Row-wise Adagrad step (FBGEMM): one accumulator per row of the
    /// `rows x cols` table `param`; `state` from [`Gpu::adagrad_state`] with
    /// `len = rows`. `row_indices = None` is the dense form (`values` is the
    /// whole `rows x cols` gradient); otherwise `values` is
    /// `row_indices.len() x cols` and duplicate rows are summed in order of
    /// appearance.
    pub fn adagrad_step_rowwise<T: DeviceFloat>(
        &self,
        opt: &DeviceAdagrad,
        param: &mut CudaSlice<T>,
        cols: usize,
        row_indices: Option<&[usize]>,
        values: &CudaSlice<T>,
        state: &mut DeviceAdagradState<T>,
    ) -> Result<()> {
        opt.validate()?;
        let n = param.len();
        let rows = n.checked_div(cols).unwrap_or(0);
        if cols == 0 || rows * cols != n {
            return Err(Error::Shape {
                arg: "param",
                rows,
                cols,
                len: n,
            });
        }
        check_len("state.sum", rows.max(1), state.sum.len())?;
        let nnz = row_indices.map_or(rows, |r| r.len());
        check_shape("values", nnz, cols, if nnz == 0 { 0 } else { values.len() })?;
        if let Some(ri) = row_indices {
            for (position, &index) in ri.iter().enumerate() {
                if index >= rows || index > u32::MAX as usize {
                    return Err(Error::Index {
                        arg: "row_indices",
                        index,
                        position,
                        bound: rows,
                    });
                }
            }
        }
        let h = opt.step_consts(state.step + 1);
        if nnz > 0 {
            let ib = match row_indices {
                Some(ri) => Some(self.upload(&ri.iter().map(|&i| i as u64).collect::<Vec<u64>>())?),
                None => None,
            };
            let mut guards = Guards::new();
            let ip = ib.as_ref().map_or(0, |b| self.p(&mut guards, b));
            let (pp, sp) = (
                self.pm(&mut guards, param),
                self.pm(&mut guards, &mut state.sum),
            );
            ops::adagrad_rowwise(
                self,
                T::DTYPE,
                pp,
                sp,
                cols as u64,
                ip,
                self.p(&mut guards, values),
                nnz as u64,
                &h,
            )?;
            drop(guards);
        }
        state.step += 1;
        Ok(())
    }
}

impl Backend for Gpu {
    type Buf = CudaSlice<u8>;

    fn alloc_zeroed(&self, bytes: usize) -> Result<CudaSlice<u8>> {
        self.stream
            .alloc_zeros::<u8>(bytes.max(8))
            .map_err(|e| cuda_err("alloc", e))
    }

    fn ptr(&self, buf: &CudaSlice<u8>) -> u64 {
        // the operations' scratch buffers: allocated, used and freed on
        // this stream within one operation, so no event is needed
        let (p, _sync) = buf.device_ptr(&self.stream);
        p
    }

    fn buf_len(&self, buf: &CudaSlice<u8>) -> usize {
        buf.len()
    }

    fn launch(&self, l: &Launch) -> Result<()> {
        let f = {
            let mut fs = self.functions.lock().unwrap_or_else(|e| e.into_inner());
            match fs.get(&l.kernel) {
                Some(f) => f.clone(),
                None => {
                    let f = self
                        .modules
                        .iter()
                        .find_map(|m| m.load_function(&l.kernel).ok())
                        .ok_or_else(|| Error::Cuda(format!("no kernel named {}", l.kernel)))?;
                    fs.insert(l.kernel.clone(), f.clone());
                    f
                }
            }
        };
        self.ctx
            .bind_to_thread()
            .map_err(|e| cuda_err("bind context", e))?;
        l.with_params(|params| {
            // SAFETY: the function belongs to this context; params is the
            // driver-style array whose entries point to values of the kernel's
            // parameter types (the launch plans are written against the
            // kernel signatures), alive for the duration of the call;
            // cuLaunchKernel copies them before returning.
            unsafe {
                cudarc::driver::result::launch_kernel(
                    f.cu_function(),
                    l.grid,
                    l.block,
                    l.shared,
                    self.stream.cu_stream(),
                    params,
                )
            }
        })
        .map_err(|e| cuda_err(&format!("launch {}", l.kernel), e))
    }

    fn download(&self, src: u64, dst: &mut [u8]) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| cuda_err("bind context", e))?;
        // SAFETY: src is a live allocation of this context of at least
        // dst.len() bytes (callers pass their own buffers); the copy is
        // ordered after the queued launches on this stream and waited for.
        unsafe { cudarc::driver::result::memcpy_dtoh_async(dst, src, self.stream.cu_stream()) }
            .map_err(|e| cuda_err("download", e))?;
        self.synchronize()
    }

    fn upload_bytes(&self, data: &[u8]) -> Result<CudaSlice<u8>> {
        if data.is_empty() {
            return self.alloc_zeroed(1);
        }
        self.upload(data)
    }
}
