#!/usr/bin/env bash
# e2e_serve_grid.sh - the step-time cache of `tpusim serve` against direct simulation: at 20
# off-grid points (10 decode steps simulated with all layers, 10 prefill steps) the
# interpolated step times are within 2% (Llama-3-8B on one v6e chip, batch up to 64, contexts
# up to 640; docs/serving.md, "Step times"), and the decode grid is smoothed, not replaced:
# each smoothed point stays within 2% of its simulated value.
# Usage: tests/e2e_serve_grid.sh SOURCE_DIR TPUSIM_BIN WORKDIR
. "$(dirname "$0")/lib/e2e.sh" "$@"

if "$bin" serve -c v6e --model llama3-8b --rate 1 --requests 20 --check-grid 20 -q \
    --json grid.json; then
    python3 - grid.json <<'PY' && ok || bad "interpolation error at 20 off-grid points"
import json, sys
j = json.load(open(sys.argv[1]))
chk = j["interpolation_check"]
pts = chk["points"]
assert len(pts) == 20 and sum(p["kind"] == "decode" for p in pts) == 10, len(pts)
worst = max(abs(p["rel_err"]) for p in pts)
assert worst < 0.02, ("max |error|", worst)
assert abs(chk["max_abs_rel_err"] - worst) < 1e-12
g = j["steps"]
for row, raw in zip(g["decode_s"], g["decode_sim_s"]):
    for a, b in zip(row, raw):
        assert abs(a / b - 1) < 0.02, (a, b)
# the prefill axis was refined between the doubling points
assert len(g["prefill_tokens"]) > 6 and g["prefill_tokens"] == sorted(g["prefill_tokens"])
PY
else
    bad "serve --check-grid 20 failed"
fi

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
