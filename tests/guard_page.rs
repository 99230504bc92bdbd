//! Guard-page probe: every kernel family on every ISA with its inputs
//! ending exactly at a `PROT_NONE` page, so a read (or write) past the end
//! faults and kills this test.
//!
//! This binary installs a global allocator that, while a thread is in
//! "guard mode", places every allocation so that it ends exactly at an
//! inaccessible page: a bump arena reserved with `mmap(PROT_NONE)`, each
//! block's pages opened with `mprotect(PROT_READ | PROT_WRITE)` and the page
//! after them left closed (freed blocks of up to 8 pages are reused, their
//! guard page still closed; larger ones are closed again). Inputs built in
//! guard mode — data `Vec`s, and the words of every `Mask` (a `Mask` owns a
//! `Vec<u64>` of exactly `ceil(len / 64)` words) — end at a guard page; the
//! kernels run in guard mode as well, so their outputs and scratch buffers
//! end at one too (a write past the end faults as well).
//!
//! Lengths 1..=130 (every lane count of the 8-, 16- and 32-lane kernels, two
//! mask words and a bit), 1-D and every 2-D factorization, as whole slices
//! and as sub-slices starting 3 elements into a guarded buffer.
//!
//! What this cannot see: reads *before* the start of a buffer, and reads
//! past the end that stay inside the same page as the end (there are none
//! here: every buffer ends at a page boundary). Large inputs (the parallel
//! and streaming-store paths start at 2^17 elements) are not probed.

use half::{bf16, f16};
use maskops::array::{BinaryOp, MaskPolicy, MaskedArray, Operand, UnaryOp};
use maskops::backend::{self, Isa};
use maskops::loss::{self, CrossEntropy, Reduction};
use maskops::optim::{Adagrad, AdagradElement, RowwiseAdagrad};
use maskops::{softmax, Element, Float, Mask, MaskedView};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

// ------------------------------------------------------------------ allocator

/// Address space reserved for guarded blocks (never backed unless used).
const ARENA: usize = 64 << 30;
static BASE: AtomicUsize = AtomicUsize::new(0);
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static GUARD: Cell<bool> = const { Cell::new(false) };
}

fn page() -> usize {
    4096
}

fn arena() -> usize {
    let b = BASE.load(Ordering::Acquire);
    if b != 0 {
        return b;
    }
    // SAFETY: an anonymous private reservation; no memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            ARENA,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert!(p != libc::MAP_FAILED, "mmap of the guard arena failed");
    match BASE.compare_exchange(0, p as usize, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => p as usize,
        Err(other) => {
            // SAFETY: our own reservation, unused.
            unsafe { libc::munmap(p, ARENA) };
            other
        }
    }
}

fn in_arena(p: *mut u8) -> bool {
    let b = BASE.load(Ordering::Acquire);
    b != 0 && (p as usize) >= b && (p as usize) < b + ARENA
}

/// Freed open regions of 1..=`BUCKETS` pages kept for reuse (their guard
/// page stays closed), so that most blocks cost no system call.
const BUCKETS: usize = 8;
const KEEP: usize = 512;

struct Pool {
    lock: AtomicBool,
    cells: UnsafeCell<[[usize; KEEP]; BUCKETS]>,
    lens: UnsafeCell<[usize; BUCKETS]>,
}

// SAFETY: `cells` and `lens` are only touched while `lock` is held.
unsafe impl Sync for Pool {}

static POOL: Pool = Pool {
    lock: AtomicBool::new(false),
    cells: UnsafeCell::new([[0; KEEP]; BUCKETS]),
    lens: UnsafeCell::new([0; BUCKETS]),
};

impl Pool {
    fn with<R>(
        &self,
        f: impl FnOnce(&mut [[usize; KEEP]; BUCKETS], &mut [usize; BUCKETS]) -> R,
    ) -> R {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the lock is held.
        let r = unsafe { f(&mut *self.cells.get(), &mut *self.lens.get()) };
        self.lock.store(false, Ordering::Release);
        r
    }
}

struct GuardAlloc;

unsafe impl GlobalAlloc for GuardAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let guarded = GUARD.try_with(|g| g.get()).unwrap_or(false);
        if !guarded || l.align() > page() {
            // SAFETY: forwarded as is.
            return unsafe { System.alloc(l) };
        }
        let pg = page();
        let pages = l.size().div_ceil(pg).max(1);
        let reused = if pages <= BUCKETS {
            POOL.with(|cells, lens| {
                let b = pages - 1;
                (lens[b] > 0).then(|| {
                    lens[b] -= 1;
                    cells[b][lens[b]]
                })
            })
        } else {
            None
        };
        let region = match reused {
            Some(r) => r,
            None => {
                let off = NEXT.fetch_add((pages + 1) * pg, Ordering::Relaxed);
                assert!(off + (pages + 1) * pg <= ARENA, "guard arena exhausted");
                let region = arena() + off;
                // SAFETY: inside our reservation; opens the block's pages, the
                // page after them stays PROT_NONE.
                let rc = unsafe {
                    libc::mprotect(
                        region as *mut libc::c_void,
                        pages * pg,
                        libc::PROT_READ | libc::PROT_WRITE,
                    )
                };
                if rc != 0 {
                    return std::ptr::null_mut();
                }
                region
            }
        };
        let end = region + pages * pg;
        ((end - l.size()) & !(l.align() - 1)) as *mut u8
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if !in_arena(p) {
            // SAFETY: allocated by System (everything outside the arena).
            return unsafe { System.dealloc(p, l) };
        }
        let pg = page();
        let region = (p as usize) & !(pg - 1);
        let pages = l.size().div_ceil(pg).max(1);
        let kept = pages <= BUCKETS
            && POOL.with(|cells, lens| {
                let b = pages - 1;
                (lens[b] < KEEP)
                    .then(|| {
                        cells[b][lens[b]] = region;
                        lens[b] += 1;
                    })
                    .is_some()
            });
        if !kept {
            // SAFETY: the block's own pages: dropped and closed again.
            unsafe {
                libc::madvise(region as *mut libc::c_void, pages * pg, libc::MADV_DONTNEED);
                libc::mprotect(region as *mut libc::c_void, pages * pg, libc::PROT_NONE);
            }
        }
    }
}

#[global_allocator]
static ALLOC: GuardAlloc = GuardAlloc;

/// Runs `f` with every allocation of this thread ending at a guard page.
fn guarded<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            GUARD.with(|g| g.set(self.0));
        }
    }
    let _reset = Reset(GUARD.with(|g| g.replace(true)));
    f()
}

/// A copy of `v` ending at a guard page.
fn gvec<T: Clone>(v: &[T]) -> Vec<T> {
    guarded(|| v.to_vec())
}

/// A mask whose words end at a guard page.
fn gmask(n: usize, seed: usize) -> Mask {
    guarded(|| Mask::from_fn(n, |i| !(i * 7 + seed).is_multiple_of(5)))
}

/// The probe itself: a read one element past a guarded vector, or one word
/// past a guarded mask's words, faults (in a child process, so the fault
/// does not end this test).
#[test]
fn the_guard_faults() {
    match std::env::var("MASKOPS_GUARD_CHILD").as_deref() {
        Ok("data") => {
            let v = gvec(&[1.0f32; 5]);
            // SAFETY: deliberately out of bounds: must fault.
            let x = unsafe { std::ptr::read_volatile(v.as_ptr().add(5)) };
            println!("read past the end: {x}");
            std::process::exit(0);
        }
        Ok("mask") => {
            let m = gmask(65, 0);
            let w = m.words();
            assert_eq!(w.len(), 2);
            // SAFETY: deliberately out of bounds: must fault.
            let x = unsafe { std::ptr::read_volatile(w.as_ptr().add(2)) };
            println!("read past the end: {x}");
            std::process::exit(0);
        }
        _ => {}
    }
    for what in ["data", "mask"] {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "the_guard_faults",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("MASKOPS_GUARD_CHILD", what)
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGSEGV),
            "{what}: the probe's guard page did not fault: {out:?}"
        );
    }
}

// ------------------------------------------------------------------ data

fn vals<T: Element>(n: usize, seed: usize) -> Vec<T> {
    (0..n)
        .map(|i| T::from_f64((((i + seed) * 37) % 19) as f64 / 4.0 - 2.0))
        .collect()
}

/// Guarded data of `n` elements: the whole vector (`off = 0`) or a
/// sub-slice starting `off` elements into a guarded buffer.
struct G<T> {
    buf: Vec<T>,
    off: usize,
}

impl<T: Element> G<T> {
    fn new(n: usize, off: usize, seed: usize) -> G<T> {
        G {
            buf: gvec(&vals::<T>(n + off, seed)),
            off,
        }
    }
    fn s(&self) -> &[T] {
        &self.buf[self.off..]
    }
}

/// `(rows, cols)` factorizations of `n` (1-D excluded).
fn shapes(n: usize) -> Vec<(usize, usize)> {
    let mut v = vec![(1, n), (n, 1)];
    for k in [2, 3, 5, 7, 8, 16, 33] {
        if n.is_multiple_of(k) && n / k > 1 {
            v.push((k, n / k));
        }
    }
    v
}

/// Every ISA, every length 1..=130, whole and as a sub-slice at offset 3
/// (a debug build, to stay quick, takes the sub-slice for odd lengths and
/// the whole slice for even ones; the release run in CI takes both).
fn each_case(mut f: impl FnMut(Isa, usize, usize)) {
    for isa in Isa::all_available() {
        for n in 1..=130 {
            let offs: &[usize] = match (cfg!(debug_assertions), n % 2) {
                (false, _) => &[0, 3],
                (true, 0) => &[0],
                (true, _) => &[3],
            };
            for &off in offs {
                backend::with_isa(isa, || f(isa, n, off));
            }
        }
    }
}

// ------------------------------------------------------------------ families

fn reductions<T: Element>(n: usize, off: usize) {
    let x = G::<T>::new(n, off, 1);
    let m = gmask(n, 2);
    let v = MaskedView::new(x.s(), &m).unwrap();
    guarded(|| {
        let _ = (v.sum(), v.mean(), v.prod(), v.amin(), v.amax());
        let _ = (v.argmin(), v.argmax(), v.var(1), v.std(0), v.logsumexp());
        for p in [2.0, 1.0, 3.0, 0.0, f64::INFINITY, f64::NEG_INFINITY] {
            let _ = v.norm(p);
        }
    });
    let mut views = vec![v];
    for (r, c) in shapes(n) {
        views.push(MaskedView::matrix(x.s(), &m, r, c).unwrap());
    }
    for v in &views {
        for dim in 0..v.ndim() {
            guarded(|| {
                let _ = v.sum_dim(dim).unwrap();
                let _ = v.mean_dim(dim).unwrap();
                let _ = v.prod_dim(dim).unwrap();
                let _ = v.amin_dim(dim).unwrap();
                let _ = v.amax_dim(dim).unwrap();
                let _ = v.argmin_dim(dim).unwrap();
                let _ = v.argmax_dim(dim).unwrap();
                let _ = v.var_dim(dim, 1).unwrap();
                let _ = v.std_dim(dim, 0).unwrap();
                let _ = v.norm_dim(dim, 2.0).unwrap();
                let _ = v.norm_dim(dim, 3.0).unwrap();
                let _ = v.logsumexp_dim(dim).unwrap();
                for log in [false, true] {
                    let y = if log {
                        v.log_softmax(dim).unwrap()
                    } else {
                        v.softmax(dim).unwrap()
                    };
                    let yv = gvec(&y.values);
                    let ym = guarded(|| y.mask.clone());
                    let out = if v.ndim() == 1 {
                        MaskedView::new(&yv, &ym).unwrap()
                    } else {
                        MaskedView::matrix(&yv, &ym, v.rows(), v.cols()).unwrap()
                    };
                    let dy = gvec(&vals::<T>(n, 5));
                    let _ = if log {
                        softmax::log_softmax_backward(&out, &dy, dim).unwrap()
                    } else {
                        softmax::softmax_backward(&out, &dy, dim).unwrap()
                    };
                }
            });
        }
    }
}

fn losses<T: Float>(n: usize, off: usize) {
    let x = G::<T>::new(n, off, 1);
    let y = G::<T>::new(n, off, 2);
    let t = gvec(
        &(0..n)
            .map(|i| T::from_f64((i % 3) as f64 / 2.0))
            .collect::<Vec<T>>(),
    );
    let m = gmask(n, 3);
    let pw1 = gvec(&[T::from_f64(1.5)]);
    let pwn = gvec(&vals::<T>(n, 4));
    for red in [Reduction::None, Reduction::Sum, Reduction::Mean] {
        guarded(|| {
            let _ = loss::mse(x.s(), y.s(), &m, red).unwrap();
            let _ = loss::l1(x.s(), y.s(), &m, red).unwrap();
            let _ = loss::huber(x.s(), y.s(), &m, 0.7, red).unwrap();
            let _ = loss::smooth_l1(x.s(), y.s(), &m, 0.5, red).unwrap();
            let _ = loss::smooth_l1(x.s(), y.s(), &m, 1e-300, red).unwrap();
            let _ = loss::bce_with_logits(x.s(), &t, &m, None, red).unwrap();
            let _ = loss::bce_with_logits(x.s(), &t, &m, Some(&pw1), red).unwrap();
            let _ = loss::bce_with_logits(x.s(), &t, &m, Some(&pwn), red).unwrap();
            let mut g = G::<T>::new(n, off, 9);
            let gs = &mut g.buf[off..];
            let _ = loss::mse_into(x.s(), y.s(), &m, red, gs).unwrap();
            let _ = loss::l1_into(x.s(), y.s(), &m, red, gs).unwrap();
            let _ = loss::huber_into(x.s(), y.s(), &m, 0.7, red, gs).unwrap();
            let _ = loss::smooth_l1_into(x.s(), y.s(), &m, 0.5, red, gs).unwrap();
            let _ = loss::bce_with_logits_into(x.s(), &t, &m, Some(&pwn), red, gs).unwrap();
        });
    }
    for (r, c) in shapes(n) {
        let targets = gvec(&(0..r).map(|i| (i % (c + 1)) as i64 - 1).collect::<Vec<_>>());
        let w = gvec(&vals::<T>(c, 6));
        for (weight, ls) in [(None, 0.0), (Some(w.clone()), 0.1)] {
            let opts = CrossEntropy {
                ignore_index: -1,
                weight,
                label_smoothing: ls,
                reduction: Reduction::None,
            };
            guarded(|| {
                let _ = loss::cross_entropy(x.s(), r, c, &targets, &opts).unwrap();
                let mut g = G::<T>::new(n, off, 9);
                let _ = loss::cross_entropy_into(x.s(), r, c, &targets, &opts, &mut g.buf[off..])
                    .unwrap();
            });
        }
        guarded(|| {
            let _ = loss::pearson(x.s(), y.s(), &m, r, c).unwrap();
            if r <= 40 {
                let _ = loss::ecs(x.s(), r, c, 0.85).unwrap();
            }
        });
    }
}

fn arrays<T: Float>(n: usize, off: usize) {
    let mut arrs =
        vec![
            guarded(|| MaskedArray::new(vals::<T>(n, 1), Mask::from_fn(n, |i| i % 3 != 0)))
                .unwrap(),
        ];
    for (r, c) in shapes(n) {
        arrs.push(
            guarded(|| {
                MaskedArray::matrix(vals::<T>(n, 2), Mask::from_fn(n, |i| i % 4 != 1), r, c)
            })
            .unwrap(),
        );
    }
    let s = T::from_f64(0.75);
    let ops = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sqrt,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Pow(T::from_f64(2.0)),
        UnaryOp::Pow(T::from_f64(1.5)),
        UnaryOp::Pow(T::from_f64(-0.5)),
        UnaryOp::AddScalar(s),
        UnaryOp::MulScalar(s),
        UnaryOp::Clamp(T::from_f64(-1.0), T::from_f64(1.0)),
    ];
    for a in &arrs {
        let other = guarded(|| {
            MaskedArray::from_parts(vals::<T>(n, 3), a.mask().clone(), a.shape()).unwrap()
        });
        let other2 = guarded(|| {
            MaskedArray::from_parts(vals::<T>(n, 3), Mask::from_fn(n, |i| i % 2 == 0), a.shape())
                .unwrap()
        });
        let dense = G::<T>::new(n, off, 4);
        let row = gvec(&vals::<T>(a.cols(), 5));
        let col = gvec(&vals::<T>(a.rows(), 6));
        guarded(|| {
            for op in ops {
                let _ = a.map(op).unwrap();
                let mut b = a.clone();
                b.map_assign(op).unwrap();
                let mut out = G::<T>::new(n, off, 7);
                a.map_into(op, &mut out.buf[off..]).unwrap();
            }
            for op in [
                BinaryOp::Add,
                BinaryOp::Sub,
                BinaryOp::Mul,
                BinaryOp::Div,
                BinaryOp::Maximum,
                BinaryOp::Minimum,
            ] {
                let rhss = [
                    Operand::Array(&other),
                    Operand::Dense(dense.s()),
                    Operand::Row(&row),
                    Operand::Col(&col),
                    Operand::Scalar(s),
                ];
                for rhs in rhss {
                    let _ = a.binary(op, rhs, MaskPolicy::Match).unwrap();
                    let mut b = a.clone();
                    b.binary_assign(op, rhs, MaskPolicy::Match).unwrap();
                    let mut out = G::<T>::new(n, off, 8);
                    a.binary_into(op, rhs, MaskPolicy::Match, &mut out.buf[off..])
                        .unwrap();
                }
                let _ = a
                    .binary(op, Operand::Array(&other2), MaskPolicy::Intersect)
                    .unwrap();
                let mut b = a.clone();
                b.binary_assign(op, Operand::Array(&other2), MaskPolicy::Intersect)
                    .unwrap();
                let mut d = G::<T>::new(n, off, 9);
                a.update_dense(op, &mut d.buf[off..]).unwrap();
                let mut d = G::<T>::new(n, off, 9);
                a.to_dense_into(T::ZERO, &mut d.buf[off..]).unwrap();
            }
        });
    }
}

fn adagrads<P: AdagradElement>(n: usize, off: usize) {
    let opt = Adagrad {
        lr: 0.1,
        weight_decay: 0.05,
        initial_accumulator_value: 0.1,
        ..Default::default()
    };
    let ropt = RowwiseAdagrad {
        lr: 0.1,
        ..Default::default()
    };
    let g = G::<P>::new(n, off, 1);
    let m = gmask(n, 4);
    for (r, c) in shapes(n) {
        let mut p = G::<P>::new(n, off, 2);
        let mut st = guarded(|| opt.state(n));
        let ri = gvec(&(0..2 * r).map(|k| (k * 7) % r).collect::<Vec<_>>());
        let ci = gvec(&(0..2 * r).map(|k| (k * 3) % c).collect::<Vec<_>>());
        let cv = gvec(&vals::<P>(2 * r, 3));
        let rv = gvec(&vals::<P>(2 * r * c, 4));
        let idx: Vec<usize> = (0..n).filter(|i| i % 3 != 1).collect();
        let sv = guarded(|| sprs::CsVec::new(n, idx.clone(), vals::<P>(idx.len(), 5)));
        let tri =
            guarded(|| sprs::TriMat::from_triplets((r, c), ri.to_vec(), ci.to_vec(), cv.to_vec()));
        guarded(|| {
            let ps = &mut p.buf[off..];
            opt.step_dense(ps, g.s(), &mut st).unwrap();
            let gv = MaskedView::new(g.s(), &m).unwrap();
            opt.step_masked(ps, &gv, &mut st).unwrap();
            opt.step_coo(ps, r, c, &ri, &ci, &cv, &mut st).unwrap();
            opt.step_sparse(ps, r, c, &tri, &mut st).unwrap();
            opt.step_sparse_vec(ps, &sv, &mut st).unwrap();
            opt.step_rows(ps, r, c, &ri, &rv, &mut st).unwrap();
        });
        let mut p = G::<P>::new(n, off, 2);
        let mut rs = guarded(|| ropt.state(r));
        guarded(|| {
            let ps = &mut p.buf[off..];
            ropt.step_dense(ps, r, c, g.s(), &mut rs).unwrap();
            ropt.step_rows(ps, r, c, &ri, &rv, &mut rs).unwrap();
        });
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn reductions_and_softmax_at_a_guard_page() {
    each_case(|_, n, off| {
        reductions::<f32>(n, off);
        reductions::<f64>(n, off);
        reductions::<f16>(n, off);
        reductions::<bf16>(n, off);
    });
}

#[test]
fn losses_at_a_guard_page() {
    each_case(|_, n, off| {
        losses::<f32>(n, off);
        losses::<f64>(n, off);
    });
}

#[test]
fn masked_arrays_at_a_guard_page() {
    each_case(|_, n, off| {
        arrays::<f32>(n, off);
        arrays::<f64>(n, off);
    });
}

#[test]
fn adagrad_at_a_guard_page() {
    each_case(|_, n, off| {
        adagrads::<f32>(n, off);
        adagrads::<f64>(n, off);
        adagrads::<f16>(n, off);
        adagrads::<bf16>(n, off);
    });
}
