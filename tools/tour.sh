#!/usr/bin/env bash
# tour.sh - the README's tour of the command line, run in order, every command as written
# there: the lines between the "tour:" markers below are README.md's tour block, verbatim
# (tests/e2e_tour.sh runs this script and checks that the two match). Later commands use the
# files earlier ones make (base.json, what-if.json, r.json, step.tpt, scaling.json).
#
# Usage: tools/tour.sh [BUILD_DIR [WORKDIR]]
# WORKDIR (default: a new temporary directory, removed afterwards) is laid out like the
# repository root, without its files: configs/, traces/, tools/ and docs/ link to this
# checkout and build/ to BUILD_DIR (default: build/ of this checkout), so the tour's outputs
# land in WORKDIR and no earlier output can make a command pass. Each command is echoed; its
# output goes to WORKDIR/tour.log, whose end is shown if a command fails. Needs python3 with
# python3-yaml and python3-matplotlib (tools/bootstrap.sh test installs them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath "${1:-$root/build}")
if [ ! -x "$build/tpusim" ]; then
    echo "tour: $build/tpusim not built (cmake -S . -B build && make -C build)" >&2
    exit 1
fi
if [ -n "${2:-}" ]; then
    work=$2
    rm -rf "$work"
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
work=$(realpath "$work")
for d in configs traces tools docs; do ln -s "$root/$d" "$work/$d"; done
ln -s "$build" "$work/build"
cd "$work"
unset TPUSIM_PRESETS TPUSIM_LIB

tour() {
    set -x
# tour:begin
export TPUSIM_PRESETS=configs          # presets by name (installed builds find their own)
build/tpusim run -c v7 traces/sample.tpt                           # one chip
build/tpusim run -c v7 -q --json base.json traces/sample.tpt       # the same run as JSON
build/tpusim run -c v7 -q -p hbm.gbps_per_pin=9.6 --json what-if.json traces/sample.tpt  # faster HBM
build/tpusim report base.json what-if.json                         # two runs side by side
build/tpusim run -c v7 --json r.json --csv r.csv --timeline tl.json traces/llm-tiny-train.tpt
build/tpusim gen gemm --m 8192 --n 8192 --k 8192 -c v7 -o g.tpt    # make a workload trace
build/tpusim gen llm-step --help                                   # whole training / decode steps
build/tpusim gen llm-step -c v7 --chips 64 --layers 2 --d-model 1024 --heads 8 --d-ff 2816 \
    --vocab 32000 --seq 2048 --batch 64 -o step.tpt                # a data-parallel training step
build/tpusim pod -c v7 step.tpt --chips 9216                       # 9,216-chip Ironwood pod
build/tpusim pod -c v7 step.tpt --scaling 256,1024,4096,9216 --json scaling.json
build/tpusim config v7 ; build/tpusim config --help                # resolved config, every key
build/tpusim isa                                                   # the instruction set
build/tpusim asm traces/sample.s -o s.tpt ; build/tpusim disasm s.tpt
tools/sweep.py tools/sweeps/hbm-speed.yaml -j 2 --out sweep.csv    # cross-product sweeps (+ Slurm)
/usr/bin/python3 tools/tpuplot.py roofline r.json -o roofline.png  # research figures
/usr/bin/python3 tools/tpuplot.py scaling scaling.json -o scaling.pdf    # vector, for papers
PYTHONPATH=tools/python python3 -c "import tpusim; r = tpusim.run('v7', 'traces/sample.tpt'); print(r['summary']['time_s'])"
# tour:end
    { set +x; } 2>/dev/null
}

echo "tour: in $work (build/ -> $build)"
# (errexit is ignored inside a tested command, so the status is taken afterwards)
set +e
(
    set -e
    tour
) >tour.log 2>&1
rc=$?
set -e
if [ $rc -ne 0 ]; then
    grep '^+' tour.log | sed 's/^+* */tour: ran: /' | tail -n 3 >&2
    echo "tour: a command failed; the end of $work/tour.log:" >&2
    tail -n 15 tour.log >&2
    exit 1
fi
grep '^+ ' tour.log | sed 's/^+ /tour: ok: /'
echo "tour: every command passed"
