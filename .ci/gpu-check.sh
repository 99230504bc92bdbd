#!/usr/bin/env bash
# One-command GPU check (issue 17, item 6), for a machine with one NVIDIA GPU
# and no network, in under 5 minutes:
#   0. gpu-check --info: the device, driver and compute capability (cudarc);
#   1. every device test (tests/cuda_device.rs) in strict mode
#      (MASKOPS_REQUIRE_GPU=1: a missing driver or device fails, nothing skips);
#   2. gpu-check (benches/gpucheck/main.rs): prints the device, driver
#      version, compute capability and peak memory bandwidth, compares the
#      device with the CPU API bit for bit (NaN as a class) at large sizes
#      (2^26 f32/f16 whole reductions, 4096 x 16384 both dims, softmax
#      64Ki x 1024 and 64 x 1Mi, MSE, cross-entropy, dense and 1% sparse
#      Adagrad with duplicates) and prints each kernel's GB/s and fraction of
#      peak;
#   3. compute-sanitizer memcheck and synccheck on a few small device tests,
#      when compute-sanitizer is installed.
#
# Two steps, because the GPU machine has no network (and maybe no cargo):
#
#   .ci/gpu-check.sh build [DIR]   # here (cargo, the crates, NVRTC; no GPU):
#                                  # builds the two executables with
#                                  # --features cuda into DIR
#                                  # (default target/gpu-check)
#   .ci/gpu-check.sh [run] [DIR]   # on the GPU machine, from a copy of the
#                                  # working tree with DIR in it: runs them
#
# `build` embeds cubins for $MASKOPS_CUDA_ARCHS (default "80 90": A100 and
# H100/H200 load machine code; any other GPU JIT-compiles the embedded PTX
# once) and needs NVRTC: the wheel in $MASKOPS_CUDA_VENV (default
# target/cuda-venv, made by .ci/cuda-check.sh). `run` needs only the NVIDIA
# driver; if DIR has no executables and cargo is there, it builds them first.
# The device test comparing run-time NVRTC with the build's PTX needs
# libnvrtc on the GPU machine (a CUDA toolkit, or $MASKOPS_NVRTC_LIB = a
# directory holding libnvrtc.so.12); without it that one test is skipped
# and the summary says so.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=run
case "${1:-}" in
    build | run) mode="$1"; shift ;;
esac
DIR="${1:-target/gpu-check}"

build() {
    set -e
    local venv="${MASKOPS_CUDA_VENV:-target/cuda-venv}"
    # the NVRTC wheel, as .ci/cuda-check.sh makes it
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    if ! "$venv/bin/python" -c "import nvidia.cuda_nvrtc" 2>/dev/null; then
        "$venv/bin/pip" install --quiet "nvidia-cuda-nvrtc-cu12==12.9.*"
    fi
    local site
    site="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))')"
    export LD_LIBRARY_PATH="$site/nvidia/cuda_nvrtc/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export MASKOPS_CUDA_ARCHS="${MASKOPS_CUDA_ARCHS:-80 90}"
    echo "gpu-check build: cubins for sm_{${MASKOPS_CUDA_ARCHS// /,}} (+ PTX), release profile, into $DIR"
    local exe
    exe="$(cargo test --release -p maskops --features cuda --test cuda_device --no-run \
        --message-format=json 2>/dev/null | "$venv/bin/python" -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "cuda_device" and m.get("executable"):
        print(m["executable"])')"
    if [ -z "$exe" ]; then
        cargo test --release -p maskops --features cuda --test cuda_device --no-run # show the error
        echo "gpu-check build: building tests/cuda_device.rs failed" >&2
        exit 1
    fi
    cargo build --release -p maskops-bench --features cuda --bin gpu-check
    mkdir -p "$DIR"
    cp "$exe" "$DIR/cuda_device"
    cp target/release/gpu-check "$DIR/gpu-check"
    {
        echo "commit $(git rev-parse HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
        echo "built $(date -u +%FT%TZ) on $(uname -m), cubins sm_{${MASKOPS_CUDA_ARCHS// /,}}"
    } >"$DIR/BUILD-INFO"
    ls -l "$DIR"
    set +e
}

if [ "$mode" = build ]; then
    build
    echo "gpu-check build: done; on the GPU machine: .ci/gpu-check.sh run $DIR"
    exit 0
fi

if [ ! -x "$DIR/gpu-check" ] || [ ! -x "$DIR/cuda_device" ]; then
    if command -v cargo >/dev/null; then
        build
    else
        echo "gpu-check: no executables in $DIR and no cargo; run '.ci/gpu-check.sh build' on a build machine and copy $DIR here" >&2
        exit 1
    fi
fi

start=$(date +%s)
results=()
fail=0
step() { # name, command...: runs it, records ok/FAILED with its time
    local name="$1"; shift
    local t0=$(date +%s)
    echo
    echo "=== $name"
    "$@"
    local rc=$?
    local dt=$(($(date +%s) - t0))
    if [ $rc -eq 0 ]; then
        results+=("ok      $name (${dt} s)")
    else
        results+=("FAILED  $name (exit $rc, ${dt} s)")
        fail=1
    fi
}

echo "gpu-check: $(cat "$DIR/BUILD-INFO" 2>/dev/null | tr '\n' ' ')"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,clocks.max.memory --format=csv 2>/dev/null || nvidia-smi -L
fi

# libnvrtc for the run-time NVRTC test: $MASKOPS_NVRTC_LIB, a CUDA toolkit, or the loader's cache
for d in "${MASKOPS_NVRTC_LIB:-}" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    if [ -n "$d" ] && ls "$d"/libnvrtc.so* >/dev/null 2>&1; then
        export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        break
    fi
done
skip=()
nvrtc_note=""
if ! { ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so'; } \
    && ! { for d in ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }}; do ls "$d"/libnvrtc.so* 2>/dev/null; done | grep -q .; }; then
    skip=(--skip run_time_nvrtc_reproduces_the_build_time_ptx)
    nvrtc_note="not run: run_time_nvrtc_reproduces_the_build_time_ptx (no libnvrtc on this machine; set MASKOPS_NVRTC_LIB)"
fi

# 0. the device, as the driver reports it (through cudarc); exit 2: no
# driver or no device, and nothing else can run
echo
echo "=== device"
timeout 60 "$DIR/gpu-check" --info
rc=$?
if [ $rc -eq 2 ]; then
    echo "gpu-check: FAILED: this machine has no usable NVIDIA driver or device (see above)" >&2
    exit 2
fi
[ $rc -eq 0 ] && results+=("ok      device") || { results+=("FAILED  device (exit $rc)"); fail=1; }

# 1. every device test, nothing skipped
step "device tests, strict (MASKOPS_REQUIRE_GPU=1)" \
    env MASKOPS_REQUIRE_GPU=1 timeout 150 "$DIR/cuda_device" "${skip[@]}"

# 2. large sizes against the CPU, with bandwidth
step "gpu-check: device vs CPU at large sizes, GB/s" timeout 150 "$DIR/gpu-check"

# 3. compute-sanitizer on small tests
SAN="$(command -v compute-sanitizer || true)"
[ -z "$SAN" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && SAN=/usr/local/cuda/bin/compute-sanitizer
small_tests=(
    on_device::warp_collectives_shared_memory_and_atomics
    on_device::mask_count_matches_popcount
    on_device::cross_entropy_all_ignored_mean_is_zero
    on_device::short_rows_warp_per_row_f32
)
if [ -n "$SAN" ]; then
    for tool in memcheck synccheck; do
        step "compute-sanitizer --tool $tool (${#small_tests[@]} small tests)" \
            env MASKOPS_REQUIRE_GPU=1 timeout 90 "$SAN" --tool "$tool" --error-exitcode 99 \
            "$DIR/cuda_device" --exact --test-threads=1 "${small_tests[@]}"
    done
else
    results+=("not run: compute-sanitizer (not installed)")
fi
[ -n "$nvrtc_note" ] && results+=("$nvrtc_note")

echo
echo "=== gpu-check summary ($(($(date +%s) - start)) s)"
printf '  %s\n' "${results[@]}"
exit $fail
