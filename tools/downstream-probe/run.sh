#!/usr/bin/env bash
# What depending on maskops costs a caller: cold release and debug builds of
# this probe (one op of every family), a rebuild after touching only the
# caller's main.rs, and the binary sizes. Run from anywhere:
#   bash tools/downstream-probe/run.sh
# Uses its own target directory (tools/downstream-probe/target), removed first
# so the builds are cold; dependencies' sources come from cargo's cache.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR=never CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-}
rm -rf target
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>build.log || { cat build.log; exit 1; }; e=$(date +%s.%N); echo "$e - $s" | bc; }

# maskops alone (and the other dependencies), then the probe on top of it
deps_rel=$(t cargo build --release -p maskops)
probe_rel=$(t cargo build --release)
touch src/main.rs
touch_rel=$(t cargo build --release)
deps_dbg=$(t cargo build -p maskops)
probe_dbg=$(t cargo build)
touch src/main.rs
touch_dbg=$(t cargo build)
size_rel=$(stat -c %s target/release/downstream-probe)
size_dbg=$(stat -c %s target/debug/downstream-probe)
out=$(target/release/downstream-probe)

printf '%-46s %8s %8s\n' "" release debug
printf '%-46s %7.1fs %7.1fs\n' "maskops and its dependencies, cold" "$deps_rel" "$deps_dbg"
printf '%-46s %7.1fs %7.1fs\n' "the probe on top of them (caller's crate)" "$probe_rel" "$probe_dbg"
printf '%-46s %7.1fs %7.1fs\n' "rebuild after touching the caller's main.rs" "$touch_rel" "$touch_dbg"
printf '%-46s %7.1fM %7.1fM\n' "binary size" "$(echo "$size_rel/1048576" | bc -l)" "$(echo "$size_dbg/1048576" | bc -l)"
echo "probe output: $out"
