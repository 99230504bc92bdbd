//! The loss cases of `tests/cuda_cases/loss.rs` under the host emulator
//! (kernels compiled for the host with kernels/emu.cuh), through the same
//! launch plans the device runs.
#![cfg(feature = "cuda-emulator")]

mod cuda_cases;

use maskops::cuda::emu::Emulator;

#[test]
fn elementwise_losses_match_cpu_formulas_bitwise() {
    cuda_cases::loss::elementwise_losses_match_cpu_formulas_bitwise(&Emulator::default());
}

#[test]
fn cross_entropy_warp_per_row() {
    cuda_cases::loss::cross_entropy_warp_per_row(&Emulator::default());
}

#[test]
fn cross_entropy_block_per_row() {
    cuda_cases::loss::cross_entropy_block_per_row(&Emulator::default());
}

#[test]
fn cross_entropy_all_ignored_mean_is_zero() {
    cuda_cases::loss::cross_entropy_all_ignored_mean_is_zero(&Emulator::default());
}

#[test]
fn elementwise_losses_f64() {
    cuda_cases::loss::elementwise_losses_f64(&Emulator::default());
}
