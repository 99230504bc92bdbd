//! A steady-state training loop allocates nothing: every form, after a
//! warm-up step, through the plain methods (thread-local workspace) and the
//! `*_with` methods (caller's workspace). Counted by a global allocator.

use maskops::optim::{Adagrad, RowwiseAdagrad, Workspace};
use maskops::{Mask, MaskedView};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_allocates_nothing() {
    let (rows, cols) = (500, 16);
    let n = rows * cols;
    let opt = Adagrad {
        weight_decay: 0.01,
        ..Default::default()
    };
    let rw = RowwiseAdagrad::default();
    let mut p = vec![0.5f32; n];
    let mut st = opt.state::<f32>(n);
    let mut rst = rw.state::<f32>(rows);
    let g: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
    let mask = Mask::from_fn(n, |i| i % 3 != 0);
    let view = MaskedView::new(&g, &mask).unwrap();
    let idx: Vec<usize> = (0..700).map(|k| (k * 7919) % rows).collect();
    let vals: Vec<f32> = (0..idx.len() * cols)
        .map(|i| (i % 5) as f32 * 0.01)
        .collect();
    let r: Vec<usize> = (0..2000).map(|k| (k * 31) % rows).collect();
    let c: Vec<usize> = (0..2000).map(|k| (k * 17) % cols).collect();
    let v: Vec<f32> = (0..2000).map(|k| k as f32 * 1e-3).collect();
    let tri = sprs::TriMat::from_triplets((rows, cols), r.clone(), c.clone(), v.clone());
    let cv = sprs::CsVec::new(n, (0..n).step_by(3).collect(), vec![0.25f32; n.div_ceil(3)]);
    let mut ws = Workspace::new();
    let isa = maskops::backend::isa();

    let mut round = |p: &mut Vec<f32>| {
        opt.step_dense(p, &g, &mut st).unwrap();
        opt.step_masked(p, &view, &mut st).unwrap();
        opt.step_rows(p, rows, cols, &idx, &vals, &mut st).unwrap();
        opt.step_sparse(p, rows, cols, &tri, &mut st).unwrap();
        opt.step_coo(p, rows, cols, &r, &c, &v, &mut st).unwrap();
        opt.step_sparse_vec(p, &cv, &mut st).unwrap();
        opt.step_rows_with(isa, &mut ws, p, rows, cols, &idx, &vals, &mut st)
            .unwrap();
        opt.step_coo_with(isa, &mut ws, p, rows, cols, &r, &c, &v, &mut st)
            .unwrap();
        rw.step_rows(p, rows, cols, &idx, &vals, &mut rst).unwrap();
        rw.step_dense(p, rows, cols, &g, &mut rst).unwrap();
    };
    round(&mut p); // warm-up: workspaces grow, rayon starts
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..10 {
        round(&mut p);
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "allocations in steady state");
    assert_eq!(st.step, 11 * 8);
}
