//! `portable` reduce and softmax kernels: the 32 canonical lanes are a
//! plain array, every lane operation a fixed-length loop the compiler
//! auto-vectorizes. Masked-out lanes are replaced by the fold's neutral
//! input with a select before any arithmetic.

use crate::cpu::reduce::engine::{max_op, min_op, Acc, Lanes, LoadT};
use half::{bf16, f16};

/// 32 lanes of `A` in an array.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct P<A>([A; 32]);

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
fn map1<A: Acc>(a: P<A>, f: impl Fn(A) -> A) -> P<A> {
    let mut o = a.0;
    for v in o.iter_mut() {
        *v = f(*v);
    }
    P(o)
}

#[cfg_attr(not(maskops_o0), inline(always))]
#[cfg_attr(maskops_o0, inline)]
fn map2<A: Acc>(a: P<A>, b: P<A>, f: impl Fn(A, A) -> A) -> P<A> {
    let mut o = a.0;
    for (v, w) in o.iter_mut().zip(b.0.iter()) {
        *v = f(*v, *w);
    }
    P(o)
}

impl<A: Acc> Lanes for P<A> {
    type A = A;
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn splat(a: A) -> Self {
        P([a; 32])
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn load_acc(p: *const A) -> Self {
        // SAFETY: the caller guarantees 32 readable accumulators at `p`.
        P(std::ptr::read_unaligned(p as *const [A; 32]))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn store_acc(self, p: *mut A) {
        // SAFETY: the caller guarantees 32 writable accumulators at `p`.
        std::ptr::write_unaligned(p as *mut [A; 32], self.0)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn add(self, o: Self) -> Self {
        map2(self, o, |a, b| a.add(b))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn sub(self, o: Self) -> Self {
        map2(self, o, |a, b| a.sub(b))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn mul(self, o: Self) -> Self {
        map2(self, o, |a, b| a.mul(b))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn div(self, o: Self) -> Self {
        map2(self, o, |a, b| a.div(b))
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn abs(self) -> Self {
        map1(self, |a| a.abs())
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_op(self, o: Self) -> Self {
        map2(self, o, max_op)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_op(self, o: Self) -> Self {
        map2(self, o, min_op)
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn max_fast(self, o: Self) -> Self {
        // a plain compare-select (auto-vectorizes to a hardware max)
        map2(self, o, |a, b| if b > a { b } else { a })
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn min_fast(self, o: Self) -> Self {
        map2(self, o, |a, b| if b < a { b } else { a })
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn exp(self) -> Self {
        map1(self, |a| a.exp())
    }
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    unsafe fn select(bits: u32, a: Self, b: Self) -> Self {
        let mut o = b.0;
        for (i, v) in o.iter_mut().enumerate() {
            if (bits >> i) & 1 != 0 {
                *v = a.0[i];
            }
        }
        P(o)
    }
}

macro_rules! load_store {
    ($t:ty, $a:ty, $widen:expr, $narrow:expr) => {
        impl LoadT<$t> for P<$a> {
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            unsafe fn load(p: *const $t, bits: u32, neutral: Self) -> Self {
                // SAFETY: the caller guarantees 32 readable elements at `p`.
                let x = std::ptr::read_unaligned(p as *const [$t; 32]);
                let mut o = neutral.0;
                for (i, v) in o.iter_mut().enumerate() {
                    // select before arithmetic: masked-out values are never widened into a lane
                    if (bits >> i) & 1 != 0 {
                        *v = $widen(x[i]);
                    }
                }
                P(o)
            }
            #[cfg_attr(not(maskops_o0), inline(always))]
            #[cfg_attr(maskops_o0, inline)]
            unsafe fn store(self, p: *mut $t) {
                let mut o = [<$t>::default(); 32];
                for (d, s) in o.iter_mut().zip(self.0.iter()) {
                    *d = $narrow(*s);
                }
                // SAFETY: the caller guarantees 32 writable elements at `p`.
                std::ptr::write_unaligned(p as *mut [$t; 32], o)
            }
        }
    };
}
load_store!(f32, f32, |x: f32| x, |a: f32| a);
load_store!(f64, f64, |x: f64| x, |a: f64| a);
load_store!(f16, f32, |x: f16| x.to_f32(), f16::from_f32);
load_store!(bf16, f32, |x: bf16| x.to_f32(), bf16::from_f32);

crate::cpu::reduce::engine::room_entries!(widened: P<f32>, P<f64>);
