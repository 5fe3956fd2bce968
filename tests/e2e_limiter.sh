#!/usr/bin/env bash
# e2e_limiter.sh - the named limiter is the resource whose 2x speed-up shortens the run most:
# a Llama-3-8B decode step on v7 (issue 14's shape with 4 of its 32 layers, same per-layer
# mix; the full one names the same limiters) run as is and with each resource made 2x faster
# by one -p override. On one v7 device (the preset) the run's limiter must be the one with the
# largest time change, and so must each of the attention and MLP regions (summed over the
# layers). On the same chip as one megacore (-p chip.megacore=true) the regions are checked
# (attention weight-load bound, the MLP HBM bound); its run at 4 layers is a near tie (2x HBM
# -7.6%, 2x weight loads -7.4%) named weight loads, a case where the largest time share and
# the largest 2x gain differ (at 32 layers they agree; docs/architecture.md).
# Usage: tests/e2e_limiter.sh SOURCE_DIR TPUSIM_BIN WORKDIR
. "$(dirname "$0")/lib/e2e.sh" "$@"

check() { # check TAG WHOLE_RUN (overrides of the chip in ${extra[@]}): gen, six runs, compare
    local tag=$1 whole=$2 v n
    "$bin" gen llm-step --layers 4 --d-model 4096 --heads 32 --kv-heads 8 --d-ff 14336 \
        --vocab 128256 --seq 8192 --batch 64 --decode -c v7 "${extra[@]}" -o "$tag.tpt" \
        2>/dev/null || bad "gen decode ($tag)"
    for v in "base" "mxu -p mxu.rate_bf16=2" "mxu_weight_load -p mxu.weight_load_rows=2" \
        "vpu -p vpu.valu_slots=2 -p vpu.trans_cycles=0.5" "vmem -p vmem.bytes_per_cycle=32768" \
        "hbm -p hbm.gbps_per_pin=14.4"; do
        set -- $v
        n=$1
        shift
        "$bin" run -q -c v7 "${extra[@]}" "$@" "$tag.tpt" --json "${tag}_$n.json" >/dev/null ||
            bad "run $tag $n"
    done
    if python3 - "$tag" "$whole" <<'PY'; then ok; else bad "$tag: a named limiter is not the largest 2x change"; fi
import json, sys
tag, whole = sys.argv[1], sys.argv[2] == "1"
res = ("mxu", "mxu_weight_load", "vpu", "vmem", "hbm")
doc = {r: json.load(open("%s_%s.json" % (tag, r))) for r in ("base",) + res}
def region_time(d, kind):
    return sum(g["end_ps"] - g["start_ps"] for g in d["regions"] if g["name"].endswith("/" + kind))
def region_limiter(d, kind):
    sh = {}
    for g in d["regions"]:
        if g["name"].endswith("/" + kind):
            for k, v in g["limiter_shares"].items():
                sh[k] = sh.get(k, 0) + v * (g["end_ps"] - g["start_ps"])
    return max(sh, key=sh.get)
checks = [("attn", region_limiter(doc["base"], "attn"),
           {r: 1 - region_time(doc[r], "attn") / region_time(doc["base"], "attn") for r in res}),
          ("mlp", region_limiter(doc["base"], "mlp"),
           {r: 1 - region_time(doc[r], "mlp") / region_time(doc["base"], "mlp") for r in res})]
if whole:
    t = lambda r: doc[r]["summary"]["time_ps"]
    checks.append(("run", doc["base"]["summary"]["limiter"], {r: 1 - t(r) / t("base") for r in res}))
    assert abs(sum(doc["base"]["summary"]["limiter_shares"].values()) - 1) < 1e-9
fail = 0
for what, named, gain in checks:
    best = max(gain, key=gain.get)
    print("%s %s: limiter %s; 2x gains %s" % (tag, what, named,
          {k: round(v, 4) for k, v in gain.items()}))
    fail |= named != best
sys.exit(fail)
PY
}

extra=()
check device 1
extra=(-p chip.megacore=true)
check megacore 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
