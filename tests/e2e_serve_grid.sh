#!/usr/bin/env bash
# e2e_serve_grid.sh - the step-time cache of `tpusim serve` against direct simulation, on each
# slice of docs/serving.md (Llama-3-8B on 1 v6e chip, 4 v5e chips and 1 v7 device, Llama-3-70B
# on 16 v5e chips, 8 v6e chips and 4 v7 devices = 2 chips; batch up to 64, contexts up to 640):
# at 20 off-grid points (10
# decode steps simulated with all layers, 10 prefill steps) the interpolated step times are
# within 2% ("Step times"). On 8B/v6e also: the decode grid is smoothed, not replaced (each
# smoothed point within 2% of its simulated value), and the prefill axis was refined. The
# slices run two at a time (about 80 s of CPU in all).
# Usage: tests/e2e_serve_grid.sh SOURCE_DIR TPUSIM_BIN WORKDIR
. "$(dirname "$0")/lib/e2e.sh" "$@"

grid() { # grid MODEL CONFIG CHIPS: the check into MODEL-CONFIG.json (.err on failure)
    "$bin" serve -c "$2" --model "$1" --chips "$3" --rate 1 --requests 20 --check-grid 20 -q \
        --json "$1-$2.json" 2>"$1-$2.err" || echo "exit $?" >>"$1-$2.err"
}
# two lists of about equal CPU time (the 70B on four v7 devices is the longest)
(grid llama3-70b v7 4; grid llama3-8b v5e 4; grid llama3-70b v5e 16) &
(grid llama3-8b v6e 1; grid llama3-8b v7 1; grid llama3-70b v6e 8) &
wait
for s in llama3-8b-v6e llama3-8b-v5e llama3-8b-v7 llama3-70b-v5e llama3-70b-v6e llama3-70b-v7; do
    if [ -s $s.err ] || [ ! -s $s.json ]; then
        bad "$s: serve --check-grid 20 failed: $(head -c 300 $s.err)"
        continue
    fi
    python3 - $s.json <<'PY' && ok || bad "$s: interpolation error at 20 off-grid points"
import json, sys
j = json.load(open(sys.argv[1]))
chk = j["interpolation_check"]
pts = chk["points"]
assert len(pts) == 20 and sum(p["kind"] == "decode" for p in pts) == 10, len(pts)
worst = max(abs(p["rel_err"]) for p in pts)
assert worst < 0.02, ("max |error|", worst, max(pts, key=lambda p: abs(p["rel_err"])))
assert abs(chk["max_abs_rel_err"] - worst) < 1e-12
if sys.argv[1] == "llama3-8b-v6e.json":
    g = j["steps"]
    for row, raw in zip(g["decode_s"], g["decode_sim_s"]):
        for a, b in zip(row, raw):
            assert abs(a / b - 1) < 0.02, (a, b)
    # the prefill axis was refined between the doubling points
    assert len(g["prefill_tokens"]) > 6 and g["prefill_tokens"] == sorted(g["prefill_tokens"])
PY
done

# Prefill steps of several whole prompts (16 x 512 = 8192 tokens) lie beyond the refined
# prefill axis; on 4 v5e chips its last segment (510 -> 512 tokens) slopes down, and
# extrapolating from it gave negative step times. Every wave takes 4 such steps + 127 decodes.
python3 -c "
print('arrival_s,prompt_tokens,output_tokens')
for i in range(32): print('0,512,128')" >burst.csv
if "$bin" serve -c v5e --model llama3-8b --chips 4 --max-batch 16 --workload burst.csv -q \
    --json burst.json; then
    python3 - burst.json <<'PY' && ok || bad "burst: waves of whole-prompt prefill steps"
import json, sys
j = json.load(open(sys.argv[1]))
r = j["runs"][0]
assert r["prefill_steps"] == 2 and r["decode_steps"] == 2 * 127, r
assert r["makespan_s"] > 0 and r["ttft"]["p50_s"] > 0
PY
else
    bad "serve --workload burst.csv (prefill beyond the axis) failed"
fi

echo "e2e_serve_grid: $pass passed, $fail failed"
[ $fail = 0 ]
