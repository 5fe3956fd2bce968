#!/usr/bin/env bash
# e2e_determinism.sh SOURCE_DIR TPUSIM_BIN WORKDIR - same inputs, byte-identical outputs.
#
# Every output tpusim writes is a function of its inputs alone: the JSON and CSV reports of
# `run`, the timeline, `gen` traces and `pod` estimates carry no host name, process id or
# address, and no wall-clock time except the provenance's `started_utc` and `wall_s` (one
# line each), so two fresh processes given the same config and trace must write the same
# bytes but those lines. (The same within one process, where the SystemC clock carries over from
# run to run, is checked by test_robust.) Prints "N passed, N failed".
set -u
. "$(dirname "$0")/lib/e2e.sh" "$@"

# A file without the provenance's wall-clock lines (JSON "started_utc"/"wall_s" keys, CSV
# "# started_utc:"/"# wall_s:" header lines).
nowall() { grep -a -v -E '^ *"(started_utc|wall_s)": |^# (started_utc|wall_s): ' "$1" || true; }

# twice NAME OUTPUTS -- COMMAND...: run COMMAND in two fresh directories a/ and b/ (so
# relative output names are the same) and require every listed output to match byte for
# byte, and to be non-empty.
twice() {
    local name=$1 outs=$2
    shift 3
    local d
    for d in a b; do
        rm -rf "$d"
        mkdir "$d"
        if ! (cd "$d" && "$@" >stdout.txt 2>stderr.txt); then
            bad "$name: run in $d/ failed: $(head -c 300 "$d/stderr.txt")"
            return
        fi
    done
    local o why=""
    for o in $outs; do
        [ -s "a/$o" ] || why+=" a/$o missing or empty;"
        # The provenance's start and wall time are the only bytes allowed to differ.
        cmp -s <(nowall "a/$o") <(nowall "b/$o") ||
            why+=" $o differs: $(cmp <(nowall "a/$o") <(nowall "b/$o") 2>&1 | head -1);"
    done
    if [ -n "$why" ]; then bad "$name:$why"; else pass=$((pass + 1)); fi
}

for t in "$src"/traces/*.tpt; do
    n=$(basename "$t" .tpt)
    # The shipped traces target v7; the second machine is v7 with a simple HBM model.
    twice "run $n on v7" "r.json r.csv stdout.txt" -- \
        "$bin" run -c v7 --json r.json --csv r.csv "$t"
    twice "run $n on v7 with hbm.model=simple" "r.json" -- \
        "$bin" run -q -c v7 -p hbm.model=simple --json r.json "$t"
done
twice "timeline of gemm-1k" "t.json" -- \
    "$bin" run -q -c v7 --timeline t.json "$src/traces/gemm-1k.tpt"
twice "gen transformer" "g.tpt" -- \
    "$bin" gen transformer -c v7 --batch 8 --seq 512 --d-model 1024 --heads 8 --d-ff 4096 \
    --training --data-parallel 4 --tensor-parallel 2 -o g.tpt
twice "gen gemm" "g.tpt" -- "$bin" gen gemm -c v5p --m 1024 --n 2048 --k 512 -o g.tpt
twice "pod symmetric" "p.json stdout.txt" -- \
    "$bin" pod -c v7 --chips 64 --json p.json "$src/traces/llm-tiny-train.tpt"
twice "pod full" "p.json" -- \
    "$bin" pod -c v7 --topology 2x2x2 --mode full -q --json p.json \
    "$src/traces/llm-tiny-train.tpt"

# No key of the JSON report may look like a wall-clock stamp, but the provenance's two.
if "$bin" run -q -c v7 --json w.json "$src/traces/gemm-1k.tpt" 2>/dev/null; then
    if nowall w.json | grep -Eiq '"(wall|date|timestamp|host|hostname|pid|elapsed|runtime_s)[a-z_]*"'; then
        bad "run --json has a wall-clock or host key: $(grep -Eio '"(wall|date|timestamp|host|pid|elapsed|runtime_s)[a-z_]*"' w.json | head -3)"
    else
        pass=$((pass + 1))
    fi
else
    bad "run --json on gemm-1k failed"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
