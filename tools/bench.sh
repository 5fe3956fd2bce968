#!/usr/bin/env bash
# bench.sh - simulation speed of the chip model: trace instructions per wall-second and
# simulated cycles per wall-second on the sample traces, and peak memory (RSS) as traces
# grow. Usage: tools/bench.sh [BUILD_DIR]   (default: build)
# Speed is measured here, never in tests. Uses /usr/bin/time for peak RSS when present.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
bin=$build/tpusim
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -x "$bin" ] || { echo "bench: $bin not built" >&2; exit 1; }

printf '%-34s %10s %12s %14s %14s %10s\n' trace insns wall_s insns/s cycles/s rss_MiB
bench_one() { # bench_one NAME CONFIG TRACE
    local name=$1 cfg=$2 trace=$3
    local t0 t1 rss
    t0=$(date +%s.%N)
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%M' -o "$work/rss" "$bin" run -q -c "$cfg" --json "$work/r.json" "$trace"
        rss=$(( $(cat "$work/rss") / 1024 ))
    else
        "$bin" run -q -c "$cfg" --json "$work/r.json" "$trace"; rss=-
    fi
    t1=$(date +%s.%N)
    python3 - "$work/r.json" "$name" "$t0" "$t1" "$rss" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = r["summary"]
wall = float(sys.argv[4]) - float(sys.argv[3])
print("%-34s %10d %12.3f %14.0f %14.0f %10s" % (sys.argv[2], s["instructions"], wall,
      s["instructions"] / wall, s["cycles"] / wall, sys.argv[5]))
PY
}

for t in "$root"/traces/*.tpt; do
    bench_one "$(basename "$t")" "$root/configs/v7.yaml" "$t"
done
# Growing traces: the same GEMM at growing sizes; memory must stay flat.
for m in 4096 8192 16384; do
    "$bin" gen gemm --m "$m" --n 8192 --k 8192 -c "$root/configs/v7.yaml" -o "$work/g$m.tpt"
    bench_one "gemm ${m}x8192x8192 (v7)" "$root/configs/v7.yaml" "$work/g$m.tpt"
done
