#!/usr/bin/env bash
# e2e_pod.sh SOURCE_DIR TPUSIM_BIN WORKDIR - `tpusim pod` end to end: per-chip traces in full
# mode (a list in chip-id order and a {chip} template), full and symmetric agreement, strong
# scaling with a {chips} trace name feeding tools/tpuplot.py, twisted tori, pod power and energy
# per step on 9,216 Ironwood chips, and the errors
# (bad topology, --chips not matching --topology, collectives on a missing axis, wrong trace
# counts, untwistable shapes, too few links): one stderr line each, non-zero exit below 128.
# Prints "N passed, N failed" and exits non-zero on any failure.
set -u
. "$(dirname "$0")/lib/e2e.sh" "$@"

# pod_fail NAME REGEX -- COMMAND...
pod_fail() {
    local name=$1 re=$2
    shift 3
    "$@" >out.txt 2>err.txt
    local rc=$? why=""
    [ "$rc" -eq 0 ] && why+=" exit code 0;"
    [ "$rc" -ge 128 ] && why+=" killed by signal $((rc - 128));"
    [ "$(wc -l <err.txt)" -ne 1 ] && why+=" stderr has $(wc -l <err.txt) lines, expected 1;"
    grep -qE -- "$re" err.txt || why+=" stderr lacks /$re/;"
    if [ -n "$why" ]; then
        bad "$name:$why"
        echo "    stderr: $(head -c 500 err.txt)"
    else
        ok
    fi
}

# field FILE KEY: the first numeric value of "KEY": in a JSON file
field() { grep -oE "\"$2\": [-0-9.e+]+" "$1" | head -n 1 | sed 's/.*: //'; }

# asm NAME M: a 3D step whose matmul has M rows
asm3() {
    cat >"$1.s" <<EOF
dma.h2v hbm=0 vmem=0 bytes=1M signal=1
mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=1
mxu.matmul mxu=0 src=0 dst=2M m=$2 dtype=bf16 signal=2
ici.allreduce axes=xyz bytes=8M dtype=bf16 wait=2
ici.allgather axes=z bytes=2M dtype=bf16
ici.alltoall axes=xyz bytes=2M dtype=bf16
ici.send axis=z dir=+1 bytes=256K
ici.recv axis=z dir=-1 bytes=256K
sync.barrier
EOF
    "$bin" asm "$1.s" -o "$1.tpt" || bad "asm $1"
}

asm3 spmd 65536
for i in 0 1 2 3 4 5 6 7; do asm3 chip.$i 65536; done
asm3 chip.6 98304 # one slow chip (1.5x: 48 MiB of results fit one v7 device's 64 MiB VMEM)

# ---- per-chip traces: a {chip} template and a list give the same estimate
"$bin" pod -c v7 --topology 2x2x2 --mode full --json tmpl.json 'chip.{chip}.tpt' >tmpl.txt 2>&1 ||
    bad "pod with a {chip} template: $(tail -n 1 tmpl.txt)"
"$bin" pod -c v7 --topology 2x2x2 --mode full --json list.json chip.{0..7}.tpt >list.txt 2>&1 ||
    bad "pod with 8 traces: $(tail -n 1 list.txt)"
"$bin" pod -c v7 --topology 2x2x2 --mode full --json spmd.json spmd.tpt >spmd.txt 2>&1 ||
    bad "pod full SPMD: $(tail -n 1 spmd.txt)"
a=$(field tmpl.json step_time_s) b=$(field list.json step_time_s) s=$(field spmd.json step_time_s)
if [ -n "$a" ] && [ "$a" = "$b" ] && awk -v a="$a" -v s="$s" 'BEGIN { exit !(a > s) }'; then
    ok
else
    bad "per-chip traces: template $a s, list $b s, SPMD $s s (the slow chip 6 must set the step)"
fi
grep -q '"per_chip_traces": true' tmpl.json && ok || bad "per_chip_traces not true in the JSON"
grep -q 'chip 0 of 8 per-chip traces' tmpl.txt && ok || bad "report does not name per-chip traces"

# ---- full and symmetric agree within 3% (4x4x4 torus, 2x2x4 mesh)
for t in "4x4x4 xyz" "2x2x4 none"; do
    set -- $t
    w=$([ "$2" = none ] && echo "" || echo "$2")
    "$bin" pod -c v7 -p ici.wrap=$w --topology "$1" --mode full --json f.json spmd.tpt >/dev/null &&
        "$bin" pod -c v7 -p ici.wrap=$w --topology "$1" --json s.json spmd.tpt >/dev/null ||
        bad "pod $1 full/symmetric failed"
    f=$(field f.json step_time_s) s=$(field s.json step_time_s)
    awk -v f="$f" -v s="$s" 'BEGIN { d = (f - s) / s; exit !(d < 0.03 && d > -0.03) }' && ok ||
        bad "$1 wrap '$w': full $f s vs symmetric $s s"
done

# ---- expert parallelism (8 experts, top-2, 4-way over x) on 4x4x4: full and symmetric agree
if "$bin" gen transformer --batch 16 --seq 256 --d-model 512 --heads 8 --d-ff 1024 --experts 8 \
    --top-k 2 --expert-parallel 4 --ep-axes x --data-parallel 16 --dp-axes xy --training \
    -p ici.dims=4x4x4 -c v5p -o ep.tpt 2>/dev/null &&
    "$bin" pod -c v5p -p ici.dims=4x4x4 --topology 4x4x4 --mode full --json f.json ep.tpt \
        >/dev/null &&
    "$bin" pod -c v5p -p ici.dims=4x4x4 --topology 4x4x4 --json s.json ep.tpt >/dev/null; then
    f=$(field f.json step_time_s) s=$(field s.json step_time_s)
    awk -v f="$f" -v s="$s" 'BEGIN { d = (f - s) / s; exit !(d < 0.03 && d > -0.03) }' && ok ||
        bad "MoE expert parallelism: full $f s vs symmetric $s s"
else
    bad "MoE expert-parallel gen or pod failed"
fi

# ---- strong scaling: one trace per chip count ({chips}), JSON rows ready for tpuplot
for n in 8 16 32; do asm3 strong.$n $((524288 / n)); done
"$bin" pod -c v7 -q --json strong.json --scaling 8,16,32 'strong.{chips}.tpt' 2>err.txt ||
    bad "strong scaling: $(cat err.txt)"
grep -q '"scaling_kind": "strong"' strong.json && ok || bad "scaling_kind is not strong"
grep -q '"weak_scaling": false' strong.json && ok || bad "weak_scaling is not false"
[ "$(grep -c '"efficiency"' strong.json)" -eq 3 ] && ok || bad "3 efficiency keys expected"
grep -q '"trace": "strong.16.tpt"' strong.json && ok ||
    bad "the 16-chip row does not name its trace"
py=/usr/bin/python3
if [ -x "$py" ] && "$py" -c 'import matplotlib' 2>/dev/null; then
    if MPLBACKEND=Agg "$py" "$src/tools/tpuplot.py" scaling strong.json -o strong.png \
        >plot.txt 2>&1 && [ -s strong.png ]; then
        ok
    else
        bad "tpuplot.py scaling on the strong-scaling JSON: $(tail -n 2 plot.txt)"
    fi
fi

# ---- twisted torus: all-to-all faster than untwisted on 4x4x8
cat >a2a.s <<EOF
ici.alltoall axes=xyz bytes=32M dtype=bf16
EOF
"$bin" asm a2a.s -o a2a.tpt || bad "asm a2a"
"$bin" pod -c v4 --topology 4x4x8 -q --json plain.json a2a.tpt &&
    "$bin" pod -c v4 -p ici.twisted=true --topology 4x4x8 --json tw.json a2a.tpt >tw.txt ||
    bad "twisted pod failed"
p=$(field plain.json step_time_s) t=$(field tw.json step_time_s)
awk -v p="$p" -v t="$t" 'BEGIN { exit !(p / t > 1.5) }' && ok ||
    bad "twisted all-to-all $t s is not well below untwisted $p s"
grep -q 'twisted torus(xyz)' tw.txt && ok || bad "twisted topology not named in the report"

# ---- points on several processes: the same results, a progress line per point, errors
nowall() { grep -v -E '"(started_utc|wall_s|command)": ' "$1"; }
"$bin" pod -c v7 -q --json j1.json --scaling 8,16,32 -j 1 'strong.{chips}.tpt' 2>j1.err ||
    bad "pod -j 1: $(cat j1.err)"
"$bin" pod -c v7 -q --progress --json j3.json --scaling 8,16,32 -j 3 'strong.{chips}.tpt' 2>j3.err ||
    bad "pod -j 3: $(cat j3.err)"
cmp -s <(nowall j1.json) <(nowall j3.json) && ok || bad "pod -j 3 and -j 1 give different JSON"
[ ! -s j1.err ] && ok || bad "pod -q -j 1 printed: $(cat j1.err)"
[ "$(grep -c '^tpusim pod: [1-3]/3 done: [0-9]* chips (' j3.err)" -eq 3 ] && ok ||
    bad "pod --progress: expected 3 progress lines, got: $(cat j3.err)"
"$bin" pod -c v7 --json jt.json --scaling 8,16,32 -j 2 'strong.{chips}.tpt' >jt.txt 2>&1 &&
    grep -q '^scaling (strong' jt.txt && ok || bad "pod -j 2 text report: $(head -5 jt.txt)"
mv strong.16.tpt strong.16.moved
pod_fail "a point that fails in its own process" "strong\.16\.tpt" -- \
    "$bin" pod -c v7 -q --scaling 8,16,32 -j 3 'strong.{chips}.tpt'
mv strong.16.moved strong.16.tpt
pod_fail "bad -j" "-j '0'" -- "$bin" pod -c v7 -j 0 spmd.tpt

# ---- energy on a full Ironwood pod: a small FSDP x DP llm-step on 9216 chips prints pod power
# (MW) and energy per step; both agree with the JSON and with chips x the per-chip figures,
# and a chip draws at least its static power.
"$bin" gen llm-step -c v7 -p ici.dims=16x24x24 -o pod9216.tpt --layers 1 --d-model 256 \
    --heads 4 --d-ff 512 --vocab 1024 --seq 128 --batch 9216 --fsdp 384 --fsdp-axes xy \
    --data-parallel 24 --dp-axes z >/dev/null 2>gen.err || bad "gen llm-step for 9216 chips: $(cat gen.err)"
if "$bin" pod -c v7 pod9216.tpt --chips 9216 --json pod9216.json >pod9216.txt 2>pod.err; then
    line=$(grep -E '^pod power +[0-9.e+-]+ MW; [0-9.e+-]+ MJ per step \(9216 chips\)$' pod9216.txt)
    eline=$(grep -E '^energy +[0-9.e+-]+ J per chip per step \(static [0-9.]+%\), [0-9.e+-]+ W per chip' pod9216.txt)
    if [ -z "$line" ] || [ -z "$eline" ]; then
        bad "pod 9216: no pod power / energy lines in: $(grep -E '^(energy|pod power)' pod9216.txt)"
    else
        mw=$(echo "$line" | awk '{print $3}') mj=$(echo "$line" | awk '{print $5}')
        cj=$(echo "$eline" | awk '{print $2}') cw=$(echo "$eline" | sed -E 's/.*, ([0-9.e+-]+) W per chip.*/\1/')
        if python3 - pod9216.json "$mw" "$mj" "$cj" "$cw" <<'PY'; then ok; else bad "pod 9216 energy figures"; fi
import json, sys
d = json.load(open(sys.argv[1]))
mw, mj, cj, cw = map(float, sys.argv[2:])
e, n, step = d["energy"], d["chips"], d["step_time_s"]
close = lambda a, b, tol=1e-3: abs(a - b) <= tol * abs(b)
assert n == 9216 and close(e["pod_mw"], mw) and close(e["pod_j_per_step"] * 1e-6, mj), (e, mw, mj)
assert close(e["chip_j_per_step"], cj) and close(e["chip_w"], cw), (e, cj, cw)
assert close(mw, n * cw * 1e-6, 2e-3) and close(mj, n * cj * 1e-6, 2e-3), "pod = chips x chip"
assert close(e["pod_j_per_step"], e["pod_mw"] * 1e6 * step, 1e-6), "J per step = MW x step"
static_w = e["chip_static_j"] / step
assert e["chip_w"] > static_w > 0 and e["chip_j_per_step"] > e["chip_static_j"], e
print("9216 chips: %.4g MW, %.4g MJ per step, %.4g W per chip" % (mw, mj, cw))
PY
    fi
else
    bad "pod --chips 9216: $(cat pod.err)"
fi

# ---- errors
pod_fail "bad topology string" "--topology '4x4x'" -- "$bin" pod -c v7 spmd.tpt --topology 4x4x
pod_fail "topology with a zero axis" "--topology '4x0x4'" -- \
    "$bin" pod -c v7 spmd.tpt --topology 4x0x4
pod_fail "chips not matching topology" "--chips 100 does not match --topology 4x4x4 \(64" -- \
    "$bin" pod -c v7 spmd.tpt --chips 100 --topology 4x4x4
pod_fail "collective on an axis the topology lacks" "instruction 3 \(ici.allreduce\): axis" -- \
    "$bin" pod -c v7 spmd.tpt --topology 4x4
pod_fail "per-chip trace count" "3 traces for the 8 chips" -- \
    "$bin" pod -c v7 --topology 2x2x2 --mode full chip.0.tpt chip.1.tpt chip.2.tpt
pod_fail "per-chip traces in symmetric mode" "need --mode full" -- \
    "$bin" pod -c v7 --topology 2x2x2 'chip.{chip}.tpt'
pod_fail "missing per-chip file" "chip\.8\.tpt" -- \
    "$bin" pod -c v7 --topology 2x2x4 --mode full 'chip.{chip}.tpt'
pod_fail "untwistable shape" "ici.twisted.*4x4x4" -- \
    "$bin" pod -c v4 -p ici.twisted=true --topology 4x4x4 spmd.tpt
pod_fail "3D torus on 4-port chips" "needs 6 links per chip" -- \
    "$bin" pod -c v5e --topology 4x4x4 spmd.tpt
pod_fail "full mode too large" "full mode" -- \
    "$bin" pod -c v7 --chips 4096 --mode full spmd.tpt

# Two slices over the data-centre network: a generated training step (data parallel in the
# slice and across 2 slices) whose DCN all-reduce time is the closed form for the configured
# bandwidth, 2 (S-1) (n lat + B / (S bw)); twice the bandwidth with no latency halves it; the
# pod has twice the chips; a trace of one slice estimated on two is warned about.
"$bin" gen llm-step -c v7 --layers 2 --d-model 512 --heads 8 --d-ff 1024 --vocab 4096 \
    --seq 256 --batch 128 --chips 64 --slices 2 -o slices2.tpt >/dev/null 2>&1
"$bin" pod -q -c v7 --topology 4x4x4 --slices 2 --json s2.json slices2.tpt 2>s2.err
"$bin" pod -q -c v7 --topology 4x4x4 --slices 2 -p dcn.latency_us=0 --json s2a.json slices2.tpt
"$bin" pod -q -c v7 --topology 4x4x4 --slices 2 -p dcn.latency_us=0 -p dcn.gbs=12.5 \
    --json s2b.json slices2.tpt
if $py - s2.json s2a.json s2b.json <<'PY'; then ok; else bad "two slices: DCN time against the closed form"; fi
import json, sys
r, a, b = (json.load(open(f)) for f in sys.argv[1:4])
d = r["dcn"]
assert d["slices"] == 2 and d["chips_per_slice"] == 64 and r["chips"] == 128, d
assert d["allreduces_per_chip"] > 0 and d["bytes_per_chip"] > 0
dpc = r["devices_per_chip"]  # a device has 1/dpc of the chip's 6.25 GB/s
closed = 2 * (2 - 1) * (d["allreduces_per_chip"] * 10e-6 + d["bytes_per_chip"] / 2 / (6.25e9 / dpc))
assert abs(d["time_s"] - closed) <= 1e-9 * closed, (d["time_s"], closed)
assert abs(d["closed_form_s"] - closed) <= 1e-9 * closed
assert d["sent_bytes_per_chip"] == dpc * d["bytes_per_chip"]  # 2 (S-1)/S = 1 for two slices
assert 0 <= d["exposed_s"] <= d["time_s"]
assert abs(d["share"] - d["time_s"] / r["step_time_s"]) <= 1e-9
ta, tb = a["dcn"]["time_s"], b["dcn"]["time_s"]
assert abs(ta - 2 * tb) <= 1e-9 * ta, (ta, tb)
assert abs(ta - d["bytes_per_chip"] / (6.25e9 / dpc)) <= 1e-9 * ta
assert r["energy"]["chip_dcn_j"] > 0
PY
[ ! -s s2.err ] && ok || bad "two slices: unexpected stderr: $(cat s2.err)"
"$bin" gen llm-step -c v7 --layers 2 --d-model 512 --heads 8 --d-ff 1024 --vocab 4096 \
    --seq 256 --batch 64 --chips 64 -o slices1.tpt >/dev/null 2>&1
"$bin" pod -q -c v7 --topology 4x4x4 --slices 2 slices1.tpt 2>s1.err
grep -q "generated for 1 slice but is timed with dcn.slices=2" s1.err && ok ||
    bad "one-slice trace on two slices: no warning ($(cat s1.err))"
# (with --strict the slice count alone is the error; without, the replay stops at the first
# dcn.allreduce)
pod_fail "two-slice trace on one slice, --strict" "generated for 2 slices.*--strict" -- \
    "$bin" pod -c v7 --topology 4x4x4 --strict slices2.tpt
"$bin" pod -c v7 --topology 4x4x4 slices2.tpt >out.txt 2>err.txt
[ $? -ne 0 ] && grep -q "dcn.allreduce.*dcn.slices = 1" err.txt && ok ||
    bad "two-slice trace on one slice: $(cat err.txt)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
