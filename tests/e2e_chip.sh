#!/usr/bin/env bash
# e2e_chip.sh - the chip model against the roofline: a sweep of generated GEMM and
# elementwise traces over presets and datatypes never beats peak FLOP/s, peak HBM bandwidth
# or the roofline bound; and the model responds to the machine as a roofline predicts
# (halving HBM bandwidth doubles a memory-bound run and barely moves a compute-bound one,
# doubling the MXUs halves the compute-bound one and leaves the memory-bound one alone).
# Usage: tests/e2e_chip.sh SOURCE_DIR TPUSIM_BIN WORKDIR
set -euo pipefail
src=$1 bin=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export TPUSIM_PRESETS=$src/configs
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

# run NAME CONFIG TRACE [-p k=v]... : writes NAME.json
run() {
    local name=$1 cfg=$2 trace=$3
    shift 3
    "$bin" run -q -c "$cfg" "$@" --json "$name.json" "$trace"
}

# check NAME: every roofline invariant of one run report
check() {
    if msg=$($py - "$1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = r["summary"]; rf = r["roofline"]
eps = 1e-9
errs = []
if s["time_ps"] <= 0:
    errs.append("time %r" % s["time_ps"])
if s["mac_util"] > 1 + eps:
    errs.append("MXU at %.4f of peak MACs" % s["mac_util"])
if s["hbm_gbs"] > s["hbm_peak_gbs"] * (1 + eps):
    errs.append("HBM %.1f GB/s above peak %.1f" % (s["hbm_gbs"], s["hbm_peak_gbs"]))
if rf["bound_time_ps"] > s["time_ps"] * (1 + eps) or rf["fraction_of_bound"] > 1 + eps:
    errs.append("faster than the roofline: bound %g ps, time %g ps" % (rf["bound_time_ps"], s["time_ps"]))
mxu_tf = s["mxu_flops"] / s["time_s"] * 1e-12
if mxu_tf > rf["bound_tflops"] * (1 + eps):
    errs.append("MXU %.3f TFLOP/s above the bound %.3f" % (mxu_tf, rf["bound_tflops"]))
if s["flops"] and s["mxu_flops"] and s["tflops"] > s["peak_tflops_bf16"] * 4:
    errs.append("%.1f TFLOP/s above any datatype's peak" % s["tflops"])
print("; ".join(errs))
sys.exit(1 if errs else 0)
PY
    ); then ok "roofline invariants: $1"; else bad "roofline invariants: $1: $msg"; fi
}

# ---- roofline invariant sweep ----
for c in v4 v5e v7; do
    case $c in v7) low=fp8 ;; *) low=int8 ;; esac
    for shape in "256 256 256" "512 1024 384" "1000 600 1536" "2048 512 2048"; do
        set -- $shape
        for dt in bf16 $low fp32; do
            n=gemm-$c-$1x$2x$3-$dt
            "$bin" gen gemm --m "$1" --n "$2" --k "$3" --dtype "$dt" -c "$c" -o "$n.tpt"
            run "$n" "$c" "$n.tpt" && check "$n"
        done
    done
    for op in add exp; do
        for dt in bf16 fp32 $low; do
            [ "$op/$dt" = "exp/$low" ] && continue
            n=elem-$c-$op-$dt
            "$bin" gen elementwise --op "$op" --elements 3M --dtype "$dt" -c "$c" -o "$n.tpt"
            run "$n" "$c" "$n.tpt" && check "$n"
        done
    done
done

# ---- sensitivity on v4 ----
# Memory-bound: elementwise add (no MXU work). Compute-bound: an int8 GEMM, whose tiling
# reaches ~800 FLOP/B, well above the ridge (229 FLOP/B, 459 with half the HBM bandwidth).
# Doubling the MXUs also doubles vmem.bytes_per_cycle: VMEM is sized to feed the configured
# MXUs (configs/v4.yaml), so twice the MXUs without it would measure VMEM, not the MXUs.
half="-p hbm.gbps_per_pin=1.171875"                      # v4: 2.34375 Gb/s per pin
dbl="-p mxu.count=8 -p vmem.bytes_per_cycle=16384"        # v4: 4 MXUs, 8192 B/cycle
"$bin" gen elementwise --op add --elements 16M -c v4 -o mem.tpt
"$bin" gen gemm --m 4096 --n 4096 --k 4096 --dtype int8 -c v4 -o mm.tpt
"$bin" gen gemm --m 4096 --n 4096 --k 4096 --dtype int8 -c v4 $dbl -o mm8.tpt
run mem v4 mem.tpt
run mem-half v4 mem.tpt $half
run mem-dbl v4 mem.tpt $dbl
run mm v4 mm.tpt
run mm-half v4 mm.tpt $half
run mm-dbl v4 mm8.tpt $dbl

# ratio A B LO HI WHAT: time(A) / time(B) within [LO, HI]
ratio() {
    local r
    r=$($py -c "import json,sys; t=lambda n: json.load(open(n+'.json'))['summary']['time_ps']; print('%.4f' % (t('$1') / t('$2')))")
    if $py -c "import sys; sys.exit(0 if $3 <= $r <= $4 else 1)"; then
        ok "$5: ratio $r in [$3, $4]"
    else
        bad "$5: ratio $r not in [$3, $4]"
    fi
}
ratio mem-half mem 1.8 2.2 "halving HBM bandwidth doubles the memory-bound run"
ratio mm-half mm 1.0 1.05 "halving HBM bandwidth barely changes the compute-bound GEMM"
ratio mm mm-dbl 1.8 2.2 "doubling the MXUs halves the compute-bound GEMM"
ratio mem-dbl mem 0.95 1.05 "doubling the MXUs leaves the memory-bound run alone"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
