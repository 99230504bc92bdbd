// The cases are shared by the emulator and the device tests; with both
// features on, some generic calls become concrete and trip style lints that
// do not apply to the generic code.
#![allow(
    clippy::needless_range_loop,
    clippy::unnecessary_cast,
    clippy::needless_borrow
)]

//! Test cases shared by the emulated tests (`tests/cuda_emu_*.rs`, run on
//! `maskops::cuda::emu::Emulator`) and the device tests
//! (`tests/cuda_device.rs`, run on `maskops::cuda::Gpu`): every case is
//! generic over the backend, so both run the same launch plans on the same
//! inputs and check the same bits.
#![allow(dead_code)]

pub mod adagrad;
pub mod loss;
pub mod reduce;
pub mod selftest;
pub mod softmax;

use maskops::cuda::plan::{self, Backend};

/// A float's bits with every NaN in one class. A GPU writes the canonical
/// NaN (`0x7FFFFFFF` for f32) where x86 keeps the input's payload, so the
/// cases compare device results with the CPU's bit for bit except NaN
/// payloads: "same bits as the CPU, except NaN payloads".
pub trait NanClass: Copy {
    /// The bits, or one fixed value for any NaN.
    fn key(self) -> u64;
}
impl NanClass for f32 {
    fn key(self) -> u64 {
        if self.is_nan() {
            u64::MAX
        } else {
            self.to_bits() as u64
        }
    }
}
impl NanClass for f64 {
    fn key(self) -> u64 {
        if self.is_nan() {
            u64::MAX
        } else {
            self.to_bits()
        }
    }
}

/// Upload / read helpers over any backend (panicking: test code).
pub trait Dev: Backend + Sized {
    /// A buffer holding a copy of `data`.
    fn up<T: Copy>(&self, data: &[T]) -> Self::Buf {
        plan::upload(self, data).expect("upload")
    }
    /// A buffer of `bytes` bytes all 0xFF (NaN in every float type, `u64::MAX`
    /// as a count): the output buffers of the cases, so a kernel that leaves
    /// an element unwritten shows. `Gpu` allocates its outputs without a
    /// memset (`CudaStream::alloc`), relying on the kernels writing every
    /// element.
    fn poisoned(&self, bytes: usize) -> Self::Buf {
        if bytes == 0 {
            return self.alloc_zeroed(0).expect("alloc");
        }
        self.up(&vec![0xFFu8; bytes])
    }
    /// The whole buffer read back as `T`s.
    fn rd<T: Copy + Default>(&self, buf: &Self::Buf) -> Vec<T> {
        let n = self.buf_len(buf) / std::mem::size_of::<T>();
        plan::download(self, self.ptr(buf), n).expect("download")
    }
}

impl<B: Backend> Dev for B {}

/// Lists every case as `(module, function)`, for the test files' macros.
#[macro_export]
macro_rules! for_each_case {
    ($m:ident) => {
        $m!(reduce, whole_array_sum_matches_canonical_bits);
        $m!(reduce, whole_array_every_reduction);
        $m!(reduce, per_row_f32_short_and_long_rows);
        $m!(reduce, per_col_f32_short_and_long_cols);
        $m!(reduce, per_dim_half_types);
        $m!(reduce, argmin_argmax);
        $m!(reduce, edge_values);
        $m!(reduce, random_shapes_unaligned);
        $m!(reduce, f64_reductions);
        $m!(reduce, counts_past_u32_do_not_wrap);
        $m!(reduce, mask_count_matches_popcount);
        $m!(softmax, short_rows_warp_per_row_f32);
        $m!(softmax, long_rows_block_per_row_f32);
        $m!(softmax, half_types);
        $m!(softmax, columns_dim0);
        $m!(softmax, random_shapes);
        $m!(loss, elementwise_losses_match_cpu_formulas_bitwise);
        $m!(loss, cross_entropy_warp_per_row);
        $m!(loss, cross_entropy_block_per_row);
        $m!(loss, cross_entropy_all_ignored_mean_is_zero);
        $m!(loss, elementwise_losses_f64);
        $m!(adagrad, dense_and_masked);
        $m!(adagrad, sparse_coo_sums_duplicates_in_order_of_appearance);
        $m!(adagrad, row_sparse_embedding_gradient);
        $m!(adagrad, rowwise_dense_and_sparse);
        $m!(adagrad, f64_parameters);
        $m!(selftest, warp_collectives_shared_memory_and_atomics);
    };
}
