//! The softmax cases of `tests/cuda_cases/softmax.rs` under the host emulator
//! (kernels compiled for the host with kernels/emu.cuh), through the same
//! launch plans the device runs.
#![cfg(feature = "cuda-emulator")]

mod cuda_cases;

use maskops::cuda::emu::Emulator;

#[test]
fn short_rows_warp_per_row_f32() {
    cuda_cases::softmax::short_rows_warp_per_row_f32(&Emulator::default());
}

#[test]
fn long_rows_block_per_row_f32() {
    cuda_cases::softmax::long_rows_block_per_row_f32(&Emulator::default());
}

#[test]
fn half_types() {
    cuda_cases::softmax::half_types(&Emulator::default());
}

#[test]
fn columns_dim0() {
    cuda_cases::softmax::columns_dim0(&Emulator::default());
}

#[test]
fn random_shapes() {
    cuda_cases::softmax::random_shapes(&Emulator::default());
}
