#!/usr/bin/env bash
# e2e_serve.sh - `tpusim serve` end to end on a small grid (Llama-3-8B on one v6e chip, batch
# at most 4): the closed forms on the simulated steps (one request alone: TTFT = its prefill
# step, end-to-end = TTFT + (output - 1) decode steps, read back from the JSON grid; its energy
# = those grid steps' dynamic energy + static power x the run; an idle stretch adds exactly
# static power x its length), a rate sweep, the per-request CSV, determinism under a seed, and
# one-line errors naming the line of a bad workload file.
# Usage: tests/e2e_serve.sh SOURCE_DIR TPUSIM_BIN WORKDIR
. "$(dirname "$0")/lib/e2e.sh" "$@"

small=(-c v6e --model llama3-8b --max-batch 4 -q)

# One request alone, from a trace: 64 prompt tokens (a grid point), 9 output tokens.
printf 'arrival_s,prompt_tokens,output_tokens\n0.5,64,9\n' >one.csv
if "$bin" serve "${small[@]}" --workload one.csv --json one.json --csv one_req.csv; then
    python3 - one.json <<'PY' && ok || bad "one request: closed forms"
import json, sys
j = json.load(open(sys.argv[1]))
g, r = j["steps"], j["runs"][0]
pre = g["prefill_layers_s"][g["prefill_tokens"].index(64)] + g["head_s"]
dec = g["decode_s"][0][0]  # batch 1; contexts 64..72 lie below the one context point
ttft, e2e = r["ttft"]["p50_s"], r["e2e"]["p50_s"]
assert abs(ttft - pre) < 1e-9 * pre, (ttft, pre)
assert abs(e2e - (pre + 8 * dec)) < 1e-9 * e2e, (e2e, pre, dec)
assert r["prefill_steps"] == 1 and r["decode_steps"] == 8
# KV capacity from the memory plan: weights within 3% of the parameters' bf16 bytes
mem = j["memory"]
assert mem["memory_source"] == "memory_plan", mem
assert abs(mem["weights_bytes"] / (2 * 8.03e9) - 1) < 0.03, mem["weights_bytes"]
assert abs(mem["kv_bytes"] - (mem["hbm_bytes"] - mem["weights_bytes"] - mem["activations_bytes"])) < 1e3
# energy: the same grid points' dynamic energy + static power of the chip over the run
dyn = g["prefill_layers_dynamic_j"][g["prefill_tokens"].index(64)] + g["head_dynamic_j"] \
    + 8 * g["decode_dynamic_j"][0][0]
stat = j["static_w_per_chip"] * j["chips"] * r["makespan_s"]
assert dyn > 0 and j["static_w_per_chip"] > 0
assert abs(r["dynamic_j"] - dyn) < 1e-9 * dyn, (r["dynamic_j"], dyn)
assert abs(r["static_j"] - stat) < 1e-9 * stat, (r["static_j"], stat)
assert abs(r["energy_j"] - (dyn + stat)) < 1e-9 * r["energy_j"]
assert abs(r["output_tokens_per_j"] - 9 / r["energy_j"]) < 1e-9 * r["output_tokens_per_j"]
assert abs(r["mj_per_output_token"] - 1e3 * r["energy_j"] / 9) < 1e-9 * r["mj_per_output_token"]
assert abs(r["avg_power_w"] - r["energy_j"] / r["makespan_s"]) < 1e-9 * r["avg_power_w"]
PY
    [ "$(wc -l <one_req.csv)" = 2 ] && ok || bad "one request: CSV rows"
else
    bad "serve --workload one.csv failed"
fi

# An idle stretch costs static power x its length: two requests 20 s apart and 120 s apart run
# the same steps (same grid), and the second run's energy is 100 s of static power more.
printf 'arrival_s,prompt_tokens,output_tokens\n0.5,64,9\n20.5,64,9\n' >gap20.csv
printf 'arrival_s,prompt_tokens,output_tokens\n0.5,64,9\n120.5,64,9\n' >gap120.csv
if "$bin" serve "${small[@]}" --workload gap20.csv --json gap20.json &&
    "$bin" serve "${small[@]}" --workload gap120.csv --json gap120.json; then
    python3 - gap20.json gap120.json <<'PY' && ok || bad "idle stretch: static power x its length"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
ra, rb = a["runs"][0], b["runs"][0]
idle = a["static_w_per_chip"] * a["chips"] * 100
assert abs(rb["makespan_s"] - ra["makespan_s"] - 100) < 1e-9 * rb["makespan_s"]
assert abs(rb["dynamic_j"] - ra["dynamic_j"]) < 1e-9 * ra["dynamic_j"]
assert abs(rb["energy_j"] - ra["energy_j"] - idle) < 1e-9 * rb["energy_j"], (ra, rb, idle)
assert abs(rb["output_tokens_per_j"] * rb["energy_j"] - 18) < 1e-9
PY
else
    bad "serve --workload gap*.csv failed"
fi

# A sweep of two rates; requests per run and their CSV.
if "$bin" serve "${small[@]}" --rates 0.5,50 --requests 30 --prompt 64 --output uniform:4:16 \
    --seed 3 --json sweep.json --csv sweep.csv --slo-ttft 1s --slo-tpot 100ms; then
    python3 - sweep.json <<'PY' && ok || bad "sweep: two runs, higher rate has higher latency"
import json, sys
j = json.load(open(sys.argv[1]))
a, b = j["runs"]
assert a["rate_rps"] == 0.5 and b["rate_rps"] == 50 and a["requests"] == 30
assert b["ttft"]["p90_s"] >= a["ttft"]["p90_s"]
assert b["mean_batch"] > a["mean_batch"]
assert 0 < b["max_kv_occupancy"] <= 1 and len(b["series"]) > 0
PY
    [ "$(wc -l <sweep.csv)" = 31 ] && ok || bad "sweep: CSV rows"
    "$bin" serve "${small[@]}" --rates 0.5,50 --requests 30 --prompt 64 --output uniform:4:16 \
        --seed 3 --csv sweep2.csv
    cmp -s sweep.csv sweep2.csv && ok || bad "same seed, different per-request results"
    # The serve plot: a log throughput axis when the curves span more than 10x (the two
    # rates, and a second report with 30x the tokens/s per chip), linear on request or when
    # they do not (the runs set to 100 and 200 tokens/s per chip).
    py=python3
    [ -x /usr/bin/python3 ] && py=/usr/bin/python3
    MPLBACKEND=Agg $py - "$src/tools" sweep.json <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import tpuplot
try:
    import matplotlib  # noqa: F401
except ImportError:
    sys.exit(3)
j = json.load(open(sys.argv[2]))
for r in j["runs"]:
    r["output_tokens_per_s_per_chip"] *= 30
json.dump(j, open("fast.json", "w"))
for i, r in enumerate(j["runs"]):
    r["output_tokens_per_s_per_chip"] = 100.0 * (i + 1)
json.dump(j, open("narrow.json", "w"))
scales = []
tpuplot._save = lambda fig, args: scales.append(fig.axes[0].get_xscale())
for extra in ([], ["--xscale", "linear"]):
    assert tpuplot.main(["serve", "sweep.json", "fast.json", "-o", "s.png"] + extra) in (0, None)
assert tpuplot.main(["serve", "narrow.json", "-o", "s.png"]) in (0, None)
assert scales == ["log", "linear", "linear"], scales
# Two devices per chip (v7: --chips counts TensorCores): the legend gives both counts, not
# "x0.5" alone.
for dev, chips, want in ((1, 0.5, "x1 device (0.5 chip)"), (4, 2, "x4 devices (2 chips)")):
    j.update(devices=dev, chips=chips, devices_per_chip=2)
    json.dump(j, open("dev.json", "w"))
    labels = []
    tpuplot._save = lambda fig, args: labels.extend(
        t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert tpuplot.main(["serve", "dev.json", "-o", "s.png"]) in (0, None)
    assert len(labels) == 1 and labels[0].endswith(want), (labels, want)
PY
    case $? in
    0) ok ;;
    3) echo "skip: serve plot (no python3-matplotlib)" ;;
    *) bad "serve plot: x axis scale (auto log above a 10x span, --xscale linear), device labels" ;;
    esac
else
    bad "serve --rates failed"
fi

# Bad workload files: one line on stderr naming the file and line, exit status 1.
check_err() { # check_err NAME CONTENT EXPECTED
    printf "$2" >"$1"
    "$bin" serve "${small[@]}" --workload "$1" >out.txt 2>err.txt
    rc=$?
    if [ $rc = 1 ] && [ "$(wc -l <err.txt)" = 1 ] && grep -q -- "$3" err.txt; then ok; else
        bad "$1: status $rc, stderr: $(cat err.txt)"
    fi
}
check_err nocol.csv 'arrival_s,prompt_tokens\n0,5\n' "nocol.csv:1: header has no column 'output_tokens'"
check_err neg.csv 'arrival_s,prompt_tokens,output_tokens\n0,5,5\n1,5,-2\n' "neg.csv:3: column output_tokens: negative value -2"
check_err unsorted.csv 'arrival_s,prompt_tokens,output_tokens\n3,5,5\n1,5,5\n' "unsorted.csv:3: arrival_s 1 is before"
"$bin" serve "${small[@]}" --rate 1 --prompt uniform:5 2>err.txt
[ $? = 1 ] && grep -q -- "--prompt uniform:5" err.txt && ok || bad "bad --prompt: $(cat err.txt)"
"$bin" serve -c v5e --model llama3-70b --rate 1 2>err.txt
[ $? = 1 ] && grep -q "does not fit" err.txt && ok || bad "70B on one v5e chip: $(cat err.txt)"

echo "e2e_serve: $pass passed, $fail failed"
[ $fail = 0 ]
