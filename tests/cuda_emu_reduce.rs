//! The reduce cases of `tests/cuda_cases/reduce.rs` under the host emulator
//! (kernels compiled for the host with kernels/emu.cuh), through the same
//! launch plans the device runs.
#![cfg(feature = "cuda-emulator")]

mod cuda_cases;

use maskops::cuda::emu::Emulator;

#[test]
fn whole_array_sum_matches_canonical_bits() {
    cuda_cases::reduce::whole_array_sum_matches_canonical_bits(&Emulator::default());
}

#[test]
fn whole_array_every_reduction() {
    cuda_cases::reduce::whole_array_every_reduction(&Emulator::default());
}

#[test]
fn per_row_f32_short_and_long_rows() {
    cuda_cases::reduce::per_row_f32_short_and_long_rows(&Emulator::default());
}

#[test]
fn per_col_f32_short_and_long_cols() {
    cuda_cases::reduce::per_col_f32_short_and_long_cols(&Emulator::default());
}

#[test]
fn per_dim_half_types() {
    cuda_cases::reduce::per_dim_half_types(&Emulator::default());
}

#[test]
fn argmin_argmax() {
    cuda_cases::reduce::argmin_argmax(&Emulator::default());
}

#[test]
fn edge_values() {
    cuda_cases::reduce::edge_values(&Emulator::default());
}

#[test]
fn random_shapes_unaligned() {
    cuda_cases::reduce::random_shapes_unaligned(&Emulator::default());
}

#[test]
fn f64_reductions() {
    cuda_cases::reduce::f64_reductions(&Emulator::default());
}

#[test]
fn counts_past_u32_do_not_wrap() {
    cuda_cases::reduce::counts_past_u32_do_not_wrap(&Emulator::default());
}

#[test]
fn mask_count_matches_popcount() {
    cuda_cases::reduce::mask_count_matches_popcount(&Emulator::default());
}
