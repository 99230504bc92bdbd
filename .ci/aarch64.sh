#!/usr/bin/env bash
# aarch64 under qemu-user: Debian's Rust (rustc-web, with the arm64 std) and
# a cross linker. Checks that the crate builds without warnings for aarch64
# and that the NEON room gives the reference's bits (and the x86 bits saved
# in tests/fixtures/bits.txt).
#
#   bash .ci/aarch64.sh            install (if needed), build, test
#   bash .ci/aarch64.sh build      only the -D warnings build
#
# Note: no `-L /usr/aarch64-linux-gnu` on the qemu runner: with it, mixed
# glibc builds make every spawned thread spin forever.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -x /usr/bin/cargo ] || ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu \
        libc6-dev-arm64-cross qemu-user >/dev/null
fi
export PATH=/usr/bin:$PATH
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
export CARGO_TARGET_DIR=target/aarch64
export RUSTFLAGS="-D warnings"
cargo=/usr/bin/cargo
t=--target=aarch64-unknown-linux-gnu
/usr/bin/rustc --version
if [ "${1:-}" = build ]; then
    $cargo build $t -p maskops --lib --features ndarray
    exit 0
fi
# (RUSTFLAGS=-D warnings: the library and the tests build without warnings.)
# The NEON room against the portable room and the reference, and against
# the bits saved on x86; release, because qemu runs unoptimized SIMD code
# very slowly. simd_reduce is left out here (163 s under qemu even with a
# quarter of its cases, on top of its build): the fuzzer below runs every
# reduction on every ISA the target has and compares their bits, and the
# fixture pins the NEON bits to x86's. The library's own unit tests are
# left out too: they would compile the crate a second time, and test
# nothing ISA-specific beyond Isa::parse. loss_simd, array and array_math
# run the NEON losses and elementwise ops against the portable room (bit
# for bit) and the reference; fixture_bits pins them (and everything else)
# to the x86 bits.
$cargo test $t --release -p maskops --test dim0_large --test nd --test fixture_bits --test golden \
    --test adagrad_fast --test loss_simd --test array --test array_math
# the fuzzer: every family, every ISA the target has, against the reference
MASKOPS_FUZZ_SECONDS=${MASKOPS_FUZZ_SECONDS:-60} MASKOPS_FUZZ_SEED=${MASKOPS_FUZZ_SEED:-1} \
    $cargo test $t --release -p maskops --test fuzz -- --nocapture
