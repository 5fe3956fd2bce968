#!/usr/bin/env bash
# e2e_limiter.sh - the run's named limiter is the resource whose 2x speed-up shortens the run
# most: a Llama-3-8B decode step on v7 (issue 14's shape with 4 of its 32 layers, same per-layer
# mix; the full one names the same limiter) run as is and with each resource made 2x faster by
# one -p override; the limiter in summary.limiter must be the one with the largest time change.
# Usage: tests/e2e_limiter.sh SOURCE_DIR TPUSIM_BIN WORKDIR
. "$(dirname "$0")/lib/e2e.sh" "$@"

"$bin" gen llm-step --layers 4 --d-model 4096 --heads 32 --kv-heads 8 --d-ff 14336 \
    --vocab 128256 --seq 8192 --batch 64 --decode -c v7 -o dec.tpt 2>/dev/null || bad "gen decode"
run() { # run NAME OVERRIDES...: JSON report NAME.json
    local n=$1
    shift
    "$bin" run -c v7 "$@" dec.tpt --json "$n.json" >/dev/null || bad "run $n"
}
run base
run mxu -p mxu.rate_bf16=2
run mxu_weight_load -p mxu.weight_load_rows=2
run vpu -p vpu.valu_slots=2 -p vpu.trans_cycles=0.5
run vmem -p vmem.bytes_per_cycle=32768
run hbm -p hbm.gbps_per_pin=14.4
if python3 - <<'PY'; then ok; else bad "named limiter is not the largest 2x change"; fi
import json
t = lambda n: json.load(open(n + ".json"))["summary"]["time_ps"]
s = json.load(open("base.json"))["summary"]
gain = {r: 1 - t(r) / t("base") for r in ("mxu", "mxu_weight_load", "vpu", "vmem", "hbm")}
best = max(gain, key=gain.get)
print("limiter %s, shares %s; 2x gains %s" % (s["limiter"],
      {k: round(v, 3) for k, v in s["limiter_shares"].items()},
      {k: round(v, 4) for k, v in gain.items()}))
assert s["limiter"] == best, (s["limiter"], best)
assert abs(sum(s["limiter_shares"].values()) - 1) < 1e-9
PY

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
