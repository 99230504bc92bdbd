//! In-place masked arithmetic allocates nothing: a steady-state loop (the
//! seed's masked Adagrad written with `*_assign` ops, broadcasts, buffers
//! filled by `*_into`) is run under a per-thread counting allocator.

use maskops::{BinaryOp, Mask, MaskPolicy, MaskedArray, Operand, UnaryOp};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const-
// initialized thread-local Cell, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

#[test]
fn steady_state_loop_allocates_nothing() {
    let (rows, cols) = (37, 129);
    let n = rows * cols;
    let mask = Mask::from_fn(n, |i| i % 7 != 2 && i % 11 != 5);
    let sub = Mask::from_fn(n, |i| mask.get(i) && i % 3 == 0);
    let gvals: Vec<f32> = (0..n).map(|i| ((i % 13) as f32 - 6.0) * 0.1).collect();
    let grad = MaskedArray::matrix(gvals, mask.clone(), rows, cols).unwrap();
    let other = MaskedArray::matrix(vec![2.0f32; n], mask.clone(), rows, cols).unwrap();
    let mut small = MaskedArray::matrix(vec![1.0f32; n], sub, rows, cols).unwrap();
    let mut g = grad.clone();
    let mut t = grad.clone();
    let mut param = vec![0.5f32; n];
    let mut sum = vec![0.1f32; n];
    let mut buf = vec![0.0f32; n];
    let row: Vec<f32> = (0..cols).map(|j| j as f32 * 0.01).collect();
    let col: Vec<f32> = (0..rows).map(|i| 1.0 + i as f32 * 0.01).collect();
    let (clr, eps) = (0.1f32, 1e-10f32);

    let mut step = |param: &mut [f32], sum: &mut [f32], buf: &mut [f32]| {
        g.copy_values_from(grad.values()).unwrap();
        t.copy_values_from(g.values()).unwrap();
        t.pow_assign(2.0);
        t.update_dense(BinaryOp::Add, sum).unwrap();
        t.copy_values_from(sum).unwrap();
        t.sqrt_assign();
        t.add_scalar_assign(eps);
        g.mul_scalar_assign(clr);
        g.div_assign(&t).unwrap();
        g.update_dense(BinaryOp::Sub, param).unwrap();
        // broadcasts, other ops, buffers
        t.sub_assign(Operand::Row(&row)).unwrap();
        t.mul_assign(Operand::Col(&col)).unwrap();
        t.maximum_assign(&other).unwrap();
        t.clamp_assign(-1.0, 1.0).unwrap();
        t.exp_assign();
        t.log_assign();
        t.map_into(UnaryOp::Abs, buf).unwrap();
        t.binary_into(BinaryOp::Minimum, &other, MaskPolicy::Match, buf)
            .unwrap();
        t.to_dense_into(0.0, buf).unwrap();
        // Intersect with a subset mask keeps the mask: no new mask either
        small
            .binary_assign(BinaryOp::Add, &other, MaskPolicy::Intersect)
            .unwrap();
    };
    // warm-up: first-call ISA detection may allocate (env lookup)
    step(&mut param, &mut sum, &mut buf);
    let before = allocs();
    for _ in 0..20 {
        step(&mut param, &mut sum, &mut buf);
    }
    assert_eq!(allocs() - before, 0, "allocations in the steady-state loop");
    assert!(param.iter().all(|p| p.is_finite()));
}
