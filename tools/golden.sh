#!/usr/bin/env bash
# golden.sh - the JSON results of 42 trace x preset pairs, for proving a refactor keeps results
# byte-identical: the 11 shipped traces (made for v7) on v6e and v7, and two bench traces
# (decode L=8, attention b=16), a GEMM, a conv2d and a training transformer generated per preset
# by the binary under test (so a generator change shows up too) on v4, v5e, v5p and v7. A pair
# that fails records its error message (NAME-PRESET.err) instead of a JSON.
# Usage: tools/golden.sh OUT_DIR [BUILD_DIR]; then `diff -r OLD_DIR NEW_DIR` (no output = identical).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
bin=$(cd "${2:-$root/build}" && pwd)/tpusim
export TPUSIM_PRESETS=$root/configs
cd "$out"
for p in v4 v5e v5p v7; do
    g=traces-$p
    mkdir -p "$g"
    "$bin" gen llm-step --layers 8 --d-model 1024 --heads 16 --d-ff 4096 --vocab 32000 \
        --seq 1024 --batch 8 --decode -c $p -o "$g/decode-l8.tpt" >/dev/null
    "$bin" gen attention --batch 16 --heads 16 --seq 2048 --head-dim 128 -c $p -o "$g/attn-b16.tpt" >/dev/null
    "$bin" gen gemm --m 4096 --n 4096 --k 4096 -c $p -o "$g/gemm-4k.tpt" >/dev/null
    "$bin" gen conv2d --batch 8 --height 56 --width 56 --in-channels 64 --out-channels 128 \
        --kernel 3 -c $p -o "$g/conv2d.tpt" >/dev/null
    "$bin" gen transformer --d-model 1024 --heads 16 --d-ff 4096 --seq 1024 --batch 4 \
        --training -c $p -o "$g/transformer.tpt" >/dev/null
    for t in "$g"/*.tpt $(case $p in v7) echo "$root"/traces/*.tpt;; esac); do
        n=$(basename "$t" .tpt)
        "$bin" run -q -c "$p" --json "$n-$p.json" "$t" 2>"$n-$p.err"
        [ -s "$n-$p.err" ] || rm -f "$n-$p.err"
    done
done
for t in "$root"/traces/*.tpt; do
    n=$(basename "$t" .tpt)
    (cd "$out" && "$bin" run -q -c v6e --json "$out/$n-v6e.json" "$t" 2>"$out/$n-v6e.err")
    [ -s "$out/$n-v6e.err" ] || rm -f "$out/$n-v6e.err"
done
# the pod estimator: symmetric 9,216-chip Ironwood and a full-mode slice
"$bin" pod -q -c v7 --chips 9216 --scaling 256,4096 --json pod-v7-sym.json traces-v7/transformer.tpt
"$bin" pod -q -c v7 --topology 2x2x2 --mode full --json pod-v7-full.json "$root"/traces/transformer-train-tp.tpt
sed -i "s#$root#ROOT#g; s#$out#OUT#g" ./*.json ./*.err  # two checkouts and output dirs compare equal
# ... and at two revisions, at two times: the provenance's revision, start and wall time go
sed -i -E '/^ *"(revision|started_utc|wall_s)": /d' ./*.json
echo "golden: $(ls "$out"/*.json | wc -l) results, $(ls "$out"/*.err 2>/dev/null | wc -l) errors in $out"
