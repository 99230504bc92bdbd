//! x86-64 kernels (`#[target_feature]` functions; call only via `crate::cpu`).

pub mod avx2;
pub mod avx512;

/// Writes [`MathLanes`](crate::cpu::arch::generic::math::MathLanes)'
/// compares (`gt`, `lt`, `eq`, `nge`) inside a room's `impl MathLanes`
/// block from its `f32` compare intrinsic `$cmp::<PREDICATE>` (a vector of
/// lane masks on AVX2, a `k` mask on AVX-512).
macro_rules! math_cmps {
    ($m:ty, $cmp:ident) => {
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn gt(self, o: Self) -> $m {
            $cmp::<_CMP_GT_OQ>(self.0, o.0)
        }
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn lt(self, o: Self) -> $m {
            $cmp::<_CMP_LT_OQ>(self.0, o.0)
        }
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn eq(self, o: Self) -> $m {
            $cmp::<_CMP_EQ_OQ>(self.0, o.0)
        }
        #[cfg_attr(not(maskops_o0), inline(always))]
        #[cfg_attr(maskops_o0, inline)]
        unsafe fn nge(self, o: Self) -> $m {
            $cmp::<_CMP_NGE_UQ>(self.0, o.0)
        }
    };
}
pub(crate) use math_cmps;
