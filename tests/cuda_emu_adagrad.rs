//! The adagrad cases of `tests/cuda_cases/adagrad.rs` under the host emulator
//! (kernels compiled for the host with kernels/emu.cuh), through the same
//! launch plans the device runs.
#![cfg(feature = "cuda-emulator")]

mod cuda_cases;

use maskops::cuda::emu::Emulator;

#[test]
fn dense_and_masked() {
    cuda_cases::adagrad::dense_and_masked(&Emulator::default());
}

#[test]
fn sparse_coo_sums_duplicates_in_order_of_appearance() {
    cuda_cases::adagrad::sparse_coo_sums_duplicates_in_order_of_appearance(&Emulator::default());
}

#[test]
fn row_sparse_embedding_gradient() {
    cuda_cases::adagrad::row_sparse_embedding_gradient(&Emulator::default());
}

#[test]
fn rowwise_dense_and_sparse() {
    cuda_cases::adagrad::rowwise_dense_and_sparse(&Emulator::default());
}

#[test]
fn f64_parameters() {
    cuda_cases::adagrad::f64_parameters(&Emulator::default());
}
