#!/usr/bin/env bash
# gen-samples.sh - regenerate the sample traces in traces/ with `tpusim gen`.
# Usage: traces/gen-samples.sh [TPUSIM_BIN]   (default: build/tpusim)
# Run from anywhere; commands use preset names resolved through configs/, and each trace's
# header note records the exact command that made it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/tpusim}
cd "$root"
export TPUSIM_PRESETS="$root/configs"
gen() { echo "tpusim gen $*"; "$bin" gen "$@"; }

gen gemm --m 1024 --n 1024 --k 1024 -c v7 -o traces/gemm-1k.tpt
gen elementwise --op add --elements 7000000 -c v7 -o traces/elementwise-7m.tpt
gen elementwise --op exp --elements 4M -c v7 -o traces/elementwise-exp-4m.tpt
gen conv2d --batch 8 --height 28 --width 28 --in-channels 64 --out-channels 128 --kernel 3 \
    --padding 1 -c v7 -o traces/conv2d-small.tpt
gen mlp --layers 1024,4096,1024 --batch 512 -c v7 -o traces/mlp-small.tpt
gen attention --batch 2 --heads 8 --seq 1024 --head-dim 128 --causal -c v7 \
    -o traces/attention-small.tpt
gen transformer --batch 8 --seq 512 --d-model 1024 --heads 16 --d-ff 2816 --training \
    --tensor-parallel 4 --fsdp 2 -c v7 -o traces/transformer-train-tp.tpt
gen llm-step --layers 2 --d-model 512 --heads 8 --d-ff 1408 --vocab 8000 --seq 256 --batch 8 \
    --chips 4 -c v7 -o traces/llm-tiny-train.tpt
gen llm-step --layers 2 --d-model 512 --heads 8 --d-ff 1408 --vocab 8000 --seq 1024 --batch 8 \
    --decode -c v7 -o traces/llm-tiny-decode.tpt
gen llm-step --layers 2 --d-model 512 --heads 8 --d-ff 1408 --vocab 8000 --seq 1024 --batch 8 \
    --tensor-parallel 2 --fsdp 2 --seq-parallel 2 --sp-axes x -c v7 -o traces/llm-tiny-sharded.tpt
# a mixture-of-experts training step: 8 experts, top-2, 4-way expert parallel on 4 chips
gen llm-step --layers 2 --d-model 512 --heads 8 --d-ff 1408 --vocab 8000 --seq 256 --batch 8 \
    --experts 8 --top-k 2 --expert-parallel 4 --ep-axes z --data-parallel 4 --dp-axes z \
    -c v7 -p ici.dims=1x1x4 -o traces/moe-tiny-train.tpt
# a pipelined step: one trace per stage in traces/pipeline/ (tests/e2e_pipeline.sh checks them)
gen llm-step --layers 4 --d-model 512 --heads 8 --d-ff 1408 --vocab 8000 --seq 256 --batch 8 \
    --pipeline 4 --microbatches 4 --schedule 1f1b -c v7 -p ici.dims=1x1x4 \
    -o 'traces/pipeline/llm-tiny-pipe.{stage}.tpt'
ls -l traces/*.tpt
