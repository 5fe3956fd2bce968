#!/usr/bin/env bash
# make.sh - regenerate every figure in docs/figures/ from real runs of the shipped traces on the
# v7 preset (the commands docs/outputs.md lists under "Figures").
# Usage: docs/figures/make.sh [TPUSIM_BIN]   (default: build/tpusim; needs /usr/bin/python3 with
# python3-matplotlib and python3-yaml). Intermediate files go to a temporary directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(realpath "${1:-$root/build/tpusim}")
py=/usr/bin/python3
fig=$root/docs/figures
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TPUSIM_PRESETS=$root/configs
cd "$root"
run() { echo "+ $*"; "$@"; }

# Roofline, unit breakdown, timeline and energy by region of one LLM training step (2 layers, 4-chip data
# parallel, so it has a gradient all-reduce on ICI).
run "$bin" run -q -c v7 --json "$work/train.json" --timeline "$work/train-tl.json" \
    traces/llm-tiny-train.tpt
run $py tools/tpuplot.py roofline "$work/train.json" -o "$fig/roofline.png"
run $py tools/tpuplot.py units "$work/train.json" -o "$fig/units.png"
run $py tools/tpuplot.py timeline "$work/train-tl.json" -o "$fig/timeline.png"
run $py tools/tpuplot.py energy "$work/train.json" -o "$fig/energy.png"

# Weak scaling of the same step from 4 to 9216 chips.
run "$bin" pod -q -c v7 traces/llm-tiny-train.tpt --scaling 4,16,64,256,1024,4096,9216 \
    --json "$work/pod.json"
run $py tools/tpuplot.py scaling "$work/pod.json" -o "$fig/scaling.png"

# HBM pin speed x DMA engines on the decode and training steps (20 runs).
run $py tools/sweep.py tools/sweeps/hbm-speed.yaml -j 2 -q --tpusim "$bin" \
    --out "$work/hbm-speed.csv"
run $py tools/tpuplot.py sweep "$work/hbm-speed.csv" --x hbm.gbps_per_pin --y summary.time_ps \
    --logy -o "$fig/sweep.png"
# Serving: Llama-3-8B and 70B on v5e, v6e and v7 slices, latency against throughput
# (docs/serving.md, "Results").
for m in "llama3-8b v5e 4" "llama3-8b v6e 1" "llama3-8b v7 1"; do
    set -- $m
    run "$bin" serve -q -c "$2" --model "$1" --chips "$3" --rates 1,2,4,8,16,32,64 \
        --requests 300 --slo-tpot 50ms --json "$work/$1-$2.json"
done
for m in "llama3-70b v5e 16" "llama3-70b v6e 8" "llama3-70b v7 4"; do
    set -- $m
    run "$bin" serve -q -c "$2" --model "$1" --chips "$3" --rates 0.5,1,2,4,8,16,32 \
        --requests 300 --slo-tpot 50ms --json "$work/$1-$2.json"
done
run $py tools/tpuplot.py serve "$work"/llama3-8b-*.json "$work"/llama3-70b-*.json --target-ms 50 \
    -o "$fig/serve.png"
ls -l "$fig"/*.png
