#!/usr/bin/env bash
# CUDA checks without a GPU (docs/design.md, "How CUDA is checked without a GPU"):
#   1. NVRTC (from the PyPI wheel) compiles every kernels/*.cu to PTX during
#      `cargo build --features cuda` (build.rs);
#   2. ptxas (from the PyPI wheel) assembles every PTX for each of
#      $MASKOPS_PTXAS_ARCHS (default sm_75 sm_80 sm_90); a warning (register
#      spills included), an error, or a stack frame (local memory; set
#      MASKOPS_ALLOW_STACK=1 to allow) fails the check;
#   3. the kernels run under the host emulator: cargo test --features
#      cuda-emulator on the tests/cuda_*.rs files (feature `cuda` too, so the
#      device tests report that they are skipped).
# Usage: .ci/cuda-check.sh   (from anywhere; uses $MASKOPS_CUDA_VENV, default
# target/cuda-venv, created and filled with pip when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${MASKOPS_CUDA_VENV:-target/cuda-venv}"
ARCHS="${MASKOPS_PTXAS_ARCHS:-sm_75 sm_80 sm_90}"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import nvidia.cuda_nvrtc, nvidia.cuda_nvcc" 2>/dev/null; then
    "$VENV/bin/pip" install --quiet "nvidia-cuda-nvrtc-cu12==12.9.*" "nvidia-cuda-nvcc-cu12==12.9.*"
fi
SITE="$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))')"
NVRTC_LIB="$SITE/nvidia/cuda_nvrtc/lib"
PTXAS="$SITE/nvidia/cuda_nvcc/bin/ptxas"
[ -e "$NVRTC_LIB/libnvrtc.so.12" ] || { echo "cuda-check: no libnvrtc.so.12 under $NVRTC_LIB" >&2; exit 1; }
[ -x "$PTXAS" ] || { echo "cuda-check: no ptxas at $PTXAS" >&2; exit 1; }
export LD_LIBRARY_PATH="$NVRTC_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "cuda-check: $("$PTXAS" --version | tail -1)"

# 1. NVRTC through build.rs; find the OUT_DIR of maskops' build script.
OUT_DIR="$(cargo build -p maskops --features cuda --message-format=json 2>/dev/null | "$VENV/bin/python" -c '
import json, sys
out = ""
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "build-script-executed" and m.get("package_id", "").find("maskops") >= 0:
        out = m.get("out_dir", "")
print(out)')"
if [ -z "$OUT_DIR" ]; then
    cargo build -p maskops --features cuda   # show the error
    echo "cuda-check: cargo build --features cuda failed" >&2
    exit 1
fi
echo "cuda-check: PTX in $OUT_DIR"

# 2. ptxas for every kernel file and architecture.
fail=0
shopt -s nullglob
ptxs=("$OUT_DIR"/*.ptx)
[ ${#ptxs[@]} -gt 0 ] || { echo "cuda-check: no PTX was produced" >&2; exit 1; }
for ptx in "${ptxs[@]}"; do
    name="$(basename "$ptx" .ptx)"
    if [ ! -s "$ptx" ]; then
        echo "cuda-check: $name.ptx is empty (NVRTC not loaded by build.rs)" >&2
        fail=1
        continue
    fi
    head -n 12 "$ptx" | grep -E '^\.(version|target)' | tr '\n' ' '
    echo "<- $name.ptx"
    for arch in $ARCHS; do
        log="$(mktemp)"
        if "$PTXAS" -arch="$arch" -v --warn-on-spills --warning-as-error "$ptx" -o /dev/null >"$log" 2>&1; then
            regs="$(grep -oE 'Used [0-9]+ registers' "$log" | awk '{print $2}' | sort -n | tail -1)"
            stack="$(grep -oE '[0-9]+ bytes stack frame' "$log" | awk '{print $1}' | sort -n | tail -1)"
            kernels="$(grep -c 'Compiling entry function' "$log" || true)"
            echo "  ptxas $arch $name: ok ($kernels kernels, max $regs registers, max stack frame ${stack:-0} bytes)"
            if [ "${stack:-0}" -gt 0 ] && [ -z "${MASKOPS_ALLOW_STACK:-}" ]; then
                echo "  ptxas $arch $name: a kernel uses a stack frame (local memory); see ptxas -v" >&2
                fail=1
            fi
        else
            echo "  ptxas $arch $name: FAILED" >&2
            cat "$log" >&2
            fail=1
        fi
        rm -f "$log"
    done
done
[ $fail -eq 0 ] || { echo "cuda-check: ptxas failed" >&2; exit 1; }

# 2b. The cubins build.rs embeds (MASKOPS_CUDA_ARCHS, default sm_70 75 80
# 90): one per kernel file and architecture, each a 64-bit CUDA ELF
# (EM_CUDA = 190) whose e_flags name the architecture in its file name.
CUBIN_ARCHS="${MASKOPS_CUDA_ARCHS:-70 75 80 90}"
"$VENV/bin/python" - "$OUT_DIR" $CUBIN_ARCHS <<'PY' || { echo "cuda-check: cubin check failed" >&2; exit 1; }
import glob, os, struct, sys
out, archs = sys.argv[1], [a.replace("sm_", "") for a in sys.argv[2:]]
bad = 0
for ptx in sorted(glob.glob(os.path.join(out, "*.ptx"))):
    stem = os.path.basename(ptx)[:-4]
    sizes = []
    for a in archs:
        path = os.path.join(out, f"{stem}.sm_{a}.cubin")
        if not os.path.exists(path):
            print(f"  cubin {stem} sm_{a}: MISSING", file=sys.stderr); bad = 1; continue
        b = open(path, "rb").read()
        ok = len(b) >= 64 and b[:4] == b"\x7fELF" and b[4] == 2
        mach = struct.unpack("<H", b[18:20])[0] if ok else 0
        flags = struct.unpack("<I", b[48:52])[0] if ok else 0
        if not ok or mach != 190 or flags & 0xff != int(a):
            print(f"  cubin {stem} sm_{a}: bad ELF header (machine {mach}, e_flags {flags:#x})", file=sys.stderr); bad = 1
        sizes.append(f"sm_{a} {len(b) // 1024} KiB")
    print(f"  cubins {stem}: " + ", ".join(sizes))
sys.exit(bad)
PY

# 3. Emulated execution (and the device tests, which skip without a GPU).
tests=()
for t in tests/cuda_*.rs; do tests+=(--test "$(basename "$t" .rs)"); done
# --nocapture: without a GPU the device tests print that (and why) they skipped.
# Without a GPU the test build embeds PTX only (MASKOPS_CUDA_ARCHS=none):
# the cubins were checked above and nothing here would load them.
if [ ! -e /dev/nvidia0 ]; then export MASKOPS_CUDA_ARCHS=none; fi
# Every combination of tests/cuda_emu_vs_cpu.rs (a covering subset without it).
export MASKOPS_EMU_EXHAUSTIVE=1
cargo test -p maskops --features "cuda cuda-emulator" "${tests[@]}" -- --nocapture
# 4. Strict mode: on this machine (no GPU) MASKOPS_REQUIRE_GPU=1 must make
# the device tests fail, not skip.
if [ -e /dev/nvidia0 ]; then
    echo "cuda-check: a GPU is present; the strict-mode failure check is for machines without one"
elif MASKOPS_REQUIRE_GPU=1 cargo test -q -p maskops --features "cuda cuda-emulator" --test cuda_device >/tmp/maskops-strict.log 2>&1; then
    cat /tmp/maskops-strict.log >&2
    echo "cuda-check: MASKOPS_REQUIRE_GPU=1 passed without a GPU (the device tests skipped)" >&2
    exit 1
else
    grep -m1 "could not be opened" /tmp/maskops-strict.log || true
    echo "cuda-check: strict mode fails without a GPU, as it must"
fi
echo "cuda-check: ok"
