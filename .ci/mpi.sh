#!/usr/bin/env bash
# MPI: Open MPI and libclang (rsmpi builds its bindings with bindgen), then
# the sharded-table checks across real ranks: tests/mpi_ranks.rs (which
# starts itself under mpirun -np 3 and -np 2) and the sharded_embedding
# example at 1, 2 and 3 ranks, row-range and modulo sharding, each run
# comparing the trained table with one process bit for bit (exit 1 if not).
#
#   bash .ci/mpi.sh install    only the packages (before clippy --features mpi)
#   bash .ci/mpi.sh            install if needed, then the checks
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mpirun >/dev/null || ! command -v mpicc >/dev/null \
    || ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        openmpi-bin libopenmpi-dev libclang-dev pkg-config >/dev/null
fi
mpirun --version | head -1
[ "${1:-}" = install ] && exit 0

# root is allowed (CI runs as root); one rayon thread per rank on 2 cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 RAYON_NUM_THREADS=1
cargo test -p maskops --features mpi --test mpi_ranks --test shard
cargo test -p maskops --features mpi --doc dist
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p maskops --features mpi
cargo build -p maskops-examples --features mpi --example sharded_embedding
ex=target/debug/examples/sharded_embedding
"$ex" --steps 60
# the example's own size: 100k x 32, 300 steps, 2048 ids per rank per step
mpirun -np 2 --oversubscribe "$ex"
mpirun -np 3 --oversubscribe "$ex"
mpirun -np 3 --oversubscribe "$ex" --steps 60 --modulo
