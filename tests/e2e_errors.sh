#!/usr/bin/env bash
# e2e_errors.sh SOURCE_DIR TPUSIM_BIN WORKDIR - every user-reachable error of the tpusim CLI.
#
# Each case runs one command that must fail and checks that: the exit code is non-zero and
# below 128 (no signal, no crash); stderr is exactly one line starting "tpusim: " (usage
# errors may say "tpusim CMD: "); that line holds the key facts (file name, line or byte
# offset, what was expected: given as extended regexes); no requested output file (--json,
# --csv, -o) nor its temporary is left behind. A few positive checks (determinism of two fresh
# runs) close the script. E2E_VERBOSE=1 shows every message. Prints "N passed, N failed" and exits non-zero on any failure.
set -u
. "$(dirname "$0")/lib/e2e.sh" "$@"
skip=0

# asm_ok NAME: assemble NAME.s (written by the caller) into NAME.tpt; a failure here is a
# broken test set-up, reported as a failure of the case that needs it.
asm_ok() {
    if ! "$bin" asm "$1.s" -o "$1.tpt" 2>asm_err.txt; then
        bad "setup: cannot assemble $1.s: $(cat asm_err.txt)"
        return 1
    fi
}

# patch FILE OFFSET HEXBYTE: overwrite one byte in place.
patch() {
    printf "\\x$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# ---------------------------------------------------------------- a good trace to damage
cat >good.s <<'EOF'
.note "e2e_errors"
dma.h2v hbm=0 vmem=0 bytes=64K signal=0
dma.h2v hbm=0x100000 vmem=65536 bytes=32K signal=1
mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=0
mxu.matmul mxu=0 src=65536 dst=131072 m=128 dtype=bf16 wait=1 signal=2
v.exp src=131072 dst=196608 n=16384 dtype=fp32 wait=2 signal=3
dma.v2h hbm=0x200000 vmem=196608 bytes=64K wait=3
EOF
for i in $(seq 1 200); do echo "v.add src=0 dst=4096 n=1024 dtype=bf16"; done >>good.s
asm_ok good || {
    echo "0 passed, $fail failed"
    exit 1
}
size=$(stat -c %s good.tpt)
hdr=$((24 + 10)) # fixed header + the 10-byte note "e2e_errors"

mkdir -p report-dir

# ---------------------------------------------------------------- trace files
expect_fail "missing trace" 'nope\.tpt' "r.json r.csv" -- \
    "$bin" run --json r.json --csv r.csv nope.tpt

cp good.tpt unreadable.tpt
chmod 000 unreadable.tpt
if [ "$(id -u)" -ne 0 ]; then
    expect_fail "unreadable trace" 'unreadable\.tpt' "r.json" -- \
        "$bin" run --json r.json unreadable.tpt
elif command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups \
    test -x "$bin" 2>/dev/null; then
    # Root reads anything: drop to nobody for this one case (the work dir must let it write).
    chmod 777 .
    expect_fail "unreadable trace (as nobody)" 'unreadable\.tpt' "r.json" -- \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$bin" run --json r.json \
        unreadable.tpt
else
    echo "SKIP: unreadable trace: running as root (root can read a chmod 000 file) and" \
        "cannot drop to nobody with setpriv"
    skip=$((skip + 1))
fi
chmod 644 unreadable.tpt

# A flipped byte in the compressed body: zlib or the CRC must catch it, naming the byte.
for off in $((hdr + 2)) $((hdr + 40)) $((size - 30)); do
    cp good.tpt corrupt.tpt
    orig=$(od -An -tx1 -j "$off" -N1 corrupt.tpt | tr -d ' ')
    patch corrupt.tpt "$off" "$(printf %02x $((0x$orig ^ 0x55)))"
    expect_fail "corrupt trace (byte $off)" 'corrupt\.tpt;byte [0-9]+' "r.json" -- \
        "$bin" run --json r.json corrupt.tpt
    expect_fail "disasm corrupt trace (byte $off)" 'corrupt\.tpt;byte [0-9]+' "" -- \
        "$bin" disasm corrupt.tpt
done

for cut in 0 5 12 23 $((hdr - 3)) $hdr $((hdr + 7)) $((size / 2)) $((size - 24)) \
    $((size - 10)) $((size - 1)); do
    head -c "$cut" good.tpt >trunc.tpt
    facts='trunc\.tpt'
    [ "$cut" -gt 0 ] && facts+=';byte [0-9]+'
    expect_fail "truncated trace ($cut of $size bytes)" "$facts" "r.json" -- \
        "$bin" run --json r.json trunc.tpt
done

cp good.tpt garbage.tpt
printf 'junk' >>garbage.tpt
expect_fail "trailing garbage after the trailer" 'garbage\.tpt;byte [0-9]+;trail' "r.json" -- \
    "$bin" run --json r.json garbage.tpt

cp good.tpt version.tpt
patch version.tpt 8 07
expect_fail "wrong format version" 'version\.tpt;byte 8;version 7;expected 1' "r.json" -- \
    "$bin" run --json r.json version.tpt
cp good.tpt isaver.tpt
patch isaver.tpt 10 63
expect_fail "wrong ISA version" 'isaver\.tpt;byte 10;99' "r.json" -- \
    "$bin" run --json r.json isaver.tpt
cp good.tpt magic.tpt
patch magic.tpt 0 58
expect_fail "bad magic" 'magic\.tpt;byte 0;TPUTRACE' "r.json" -- \
    "$bin" run --json r.json magic.tpt
printf 'not a trace at all\n' >text.tpt
expect_fail "text file as trace" 'text\.tpt;byte 0' "" -- "$bin" disasm text.tpt

# ---------------------------------------------------------------- assembly
printf 'nop\n# comment\nmxu.frob mxu=0\n' >badop.s
expect_fail "unknown opcode" 'badop\.s:3;mxu\.frob' "badop.tpt" -- \
    "$bin" asm badop.s -o badop.tpt
printf 'nop\nmxu.ldw mxu=300 vmem=0 k=128 n=128 dtype=bf16\n' >range.s
expect_fail "operand out of range" 'range\.s:2;mxu;300;255' "range.tpt" -- \
    "$bin" asm range.s -o range.tpt
printf 'dma.h2v hbm=0 vmem=0 bytes=4096 signal=4096\n' >sem.s
expect_fail "semaphore out of range" 'sem\.s:1;signal;4096;4095' "sem.tpt" -- \
    "$bin" asm sem.s -o sem.tpt
printf 'v.add src=0 dst=0 n=8 dtype=bf17\n' >dtype.s
expect_fail "unknown dtype" 'dtype\.s:1;bf17' "dtype.tpt" -- "$bin" asm dtype.s -o dtype.tpt
printf 'mxu.ldw mxu=0 vmem=0 k=128 dtype=bf16\n' >missing.s
expect_fail "missing operand" "missing\\.s:1;'n'" "missing.tpt" -- \
    "$bin" asm missing.s -o missing.tpt
printf 'v.add src=0 dst=0 n=99999999999999999999999 dtype=bf16\n' >huge.s
expect_fail "integer overflow" 'huge\.s:1;64 bits' "huge.tpt" -- "$bin" asm huge.s -o huge.tpt
printf 'mark name="unterminated\n' >str.s
expect_fail "unterminated string" 'str\.s:1;unterminated' "str.tpt" -- "$bin" asm str.s -o str.tpt
# An error after many good instructions: the partial output must be removed.
{
    for i in $(seq 1 5000); do echo "nop"; done
    echo "v.add src=0 dst=0 n=0 dtype=bf16"
} >late.s
expect_fail "late error removes partial output" 'late\.s:5001' "late.tpt" -- \
    "$bin" asm late.s -o late.tpt
expect_fail "missing assembly input" 'absent\.s' "absent.tpt" -- "$bin" asm absent.s -o absent.tpt
expect_fail "assembly output in a missing directory" 'nodir/x\.tpt' "nodir/x.tpt" -- \
    "$bin" asm good.s -o nodir/x.tpt

# ---------------------------------------------------------------- run-time errors
cat >vmem.s <<'EOF'
nop
dma.h2v hbm=0 vmem=16773120 bytes=8192
EOF
asm_ok vmem &&
    expect_fail "DMA past the end of VMEM" 'vmem\.tpt;instruction 1;dma\.h2v;VMEM' "r.json r.csv" -- \
        "$bin" run -p vmem.bytes=16MiB --json r.json --csv r.csv vmem.tpt

cat >deadlock.s <<'EOF'
dma.h2v hbm=0 vmem=0 bytes=32768 signal=0
mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=0
mxu.matmul mxu=0 src=0 dst=65536 m=128 dtype=bf16 wait=5
EOF
asm_ok deadlock &&
    expect_fail "semaphore deadlock" 'deadlock\.tpt;deadlock;instruction 2;semaphore 5' "r.json" -- \
        "$bin" run --json r.json deadlock.tpt

cat >int8.s <<'EOF'
mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=int8
mxu.matmul mxu=0 src=16384 dst=65536 m=128 dtype=int8
EOF
asm_ok int8 &&
    expect_fail "int8 matmul on v7 (no int8 MXU)" 'int8\.tpt;instruction 0;int8' "r.json" -- \
        "$bin" run -c v7 --json r.json int8.tpt

# ---------------------------------------------------------------- configs
printf 'mxu:\n  rows: 128\n  rowz: 5\n' >key.yaml
expect_fail "unknown config key" "key\\.yaml:3;rowz" "r.json" -- \
    "$bin" run -c key.yaml --json r.json good.tpt
printf 'chip:\n  cores: 1\nmxu:\n  rows: many\n' >type.yaml
expect_fail "config value of the wrong type" "type\\.yaml:4;mxu\\.rows;many" "r.json" -- \
    "$bin" run -c type.yaml --json r.json good.tpt
printf 'hbm:\n  channels: 0\n' >range.yaml
expect_fail "config value out of range" "range\\.yaml:2;hbm\\.channels;0;1024" "r.json" -- \
    "$bin" run -c range.yaml --json r.json good.tpt
printf 'hbm:\n  model: magic\n' >enum.yaml
expect_fail "config enum not a choice" "enum\\.yaml:2;hbm\\.model;magic" "" -- \
    "$bin" config enum.yaml
printf 'mxu: {rows: 1\n' >syntax.yaml
expect_fail "YAML syntax error" "syntax\\.yaml:[0-9]+;YAML" "" -- "$bin" config syntax.yaml
printf 'include: loop.yaml\nmxu:\n  rows: 64\n' >loop.yaml
expect_fail "include cycle" "loop\\.yaml" "" -- "$bin" config loop.yaml
printf 'include: no-such-preset\n' >inc.yaml
expect_fail "include not found" "inc\\.yaml:1;no-such-preset" "" -- "$bin" config inc.yaml
expect_fail "missing config file" "nofile\\.yaml" "r.json" -- \
    "$bin" run -c nofile.yaml --json r.json good.tpt
expect_fail "override of an unknown key" "mxu\\.rowz" "" -- "$bin" run -p mxu.rowz=5 good.tpt
expect_fail "override out of range" "-p;mxu\\.rows;0" "" -- "$bin" run -p mxu.rows=0 good.tpt
expect_fail "override without =" "-p;nonsense" "" -- "$bin" run -p nonsense good.tpt
expect_fail "no MXU datatype left" "rate" "" -- \
    "$bin" config -p mxu.rate_bf16=0 -p mxu.rate_fp32=0

# ---------------------------------------------------------------- outputs that cannot be written
expect_fail "JSON into a missing directory" 'nodir/r\.json' "nodir/r.json" -- \
    "$bin" run -q --json nodir/r.json good.tpt
expect_fail "CSV into a missing directory" 'nodir/r\.csv' "nodir/r.csv" -- \
    "$bin" run -q --csv nodir/r.csv good.tpt

# ---------------------------------------------------------------- generators and pod
expect_fail "gen without a kind" "gen;KIND" "" -- "$bin" gen
expect_fail "gen of an unknown kind" "frob;gemm" "" -- "$bin" gen frob -c v7 -o g.tpt
expect_fail "gen gemm without --m" "gemm;--m" "g.tpt" -- \
    "$bin" gen gemm -c v7 --n 128 --k 128 -o g.tpt
expect_fail "gen gemm with --m past 2^64" "--m;larger than 2\\^64" "g.tpt" -- \
    "$bin" gen gemm -c v7 --m 99999999999999999999 --n 128 --k 128 -o g.tpt
expect_fail "gen gemm with --m whose K suffix wraps" "--m;larger than 2\\^64" "g.tpt" -- \
    "$bin" gen gemm -c v7 --m 18014398509481985K --n 128 --k 128 -o g.tpt
expect_fail "gen gemm with --m 0" "--m;0" "g.tpt" -- \
    "$bin" gen gemm -c v7 --m 0 --n 128 --k 128 -o g.tpt
expect_fail "gen into a missing directory" "nodir/g\\.tpt" "nodir/g.tpt" -- \
    "$bin" gen gemm -c v7 --m 128 --n 128 --k 128 -o nodir/g.tpt
expect_fail "pod without a trace" "TRACE" "" -- "$bin" pod -c v7
expect_fail "pod on a missing trace" "nope\\.tpt" "p.json" -- \
    "$bin" pod -c v7 --json p.json nope.tpt
expect_fail "pod on a corrupt trace" "corrupt\\.tpt;byte [0-9]+" "p.json" -- \
    "$bin" pod -c v7 --json p.json corrupt.tpt
expect_fail "pod with a bad option" "--frob" "" -- "$bin" pod -c v7 --frob good.tpt
expect_fail "pod JSON into a missing directory" "nodir/p\\.json" "nodir/p.json" -- \
    "$bin" pod -c v7 -q --json nodir/p.json good.tpt

expect_fail "gen without -c" "gen gemm;-c" "g.tpt" -- "$bin" gen gemm --m 128 --n 128 --k 128 -o g.tpt
expect_fail "gen without -o" "gen gemm;-o" "" -- "$bin" gen gemm -c v7 --m 128 --n 128 --k 128
expect_fail "gen with a missing config" "nocfg" "g.tpt" -- \
    "$bin" gen gemm -c nocfg --m 128 --n 128 --k 128 -o g.tpt
expect_fail "gen with a non-numeric size" "--m;abc" "g.tpt" -- \
    "$bin" gen gemm -c v7 --m abc --n 128 --k 128 -o g.tpt
expect_fail "gen with an unknown option" "--frob" "g.tpt" -- \
    "$bin" gen gemm -c v7 --m 128 --n 128 --k 128 --frob -o g.tpt
expect_fail "gen with an override out of range" "-p;mxu\\.rows;0" "g.tpt" -- \
    "$bin" gen gemm -c v7 -p mxu.rows=0 --m 128 --n 128 --k 128 -o g.tpt
expect_fail "gen of an unsupported dtype for the generation" "int8;v7" "g.tpt" -- \
    "$bin" gen gemm -c v7 --m 128 --n 128 --k 128 --dtype int8 -o g.tpt
expect_fail "gen with heads not dividing d-model" "--d-model 1024;--heads 7" "g.tpt" -- \
    "$bin" gen transformer -c v7 --batch 8 --seq 512 --d-model 1024 --heads 7 --d-ff 4096 \
    -o g.tpt
expect_fail "gen with a parallel degree not dividing the model" "--tensor-parallel 3" "g.tpt" -- \
    "$bin" gen transformer -c v7 --batch 8 --seq 512 --d-model 1024 --heads 8 --d-ff 4096 \
    --tensor-parallel 3 -o g.tpt
expect_fail "gen of a workload larger than HBM" "HBM" "g.tpt" -- \
    "$bin" gen gemm -c v7 --m 1G --n 1G --k 1G -o g.tpt
expect_fail "pod with --chips 0" "--chips;0" "p.json" -- "$bin" pod -c v7 --chips 0 --json p.json good.tpt
expect_fail "pod with chips not matching the topology" "--chips 8;2x2" "p.json" -- \
    "$bin" pod -c v7 --topology 2x2 --chips 8 --json p.json good.tpt
expect_fail "pod with an unknown mode" "--mode;weird" "p.json" -- \
    "$bin" pod -c v7 --mode weird --json p.json good.tpt
expect_fail "pod with a zero topology axis" "--topology;0x2x2" "p.json" -- \
    "$bin" pod -c v7 --topology 0x2x2 --json p.json good.tpt
expect_fail "pod with a bad scaling list" "--scaling;abc" "p.json" -- \
    "$bin" pod -c v7 --scaling 1,abc --json p.json good.tpt
expect_fail "pod with too many chips" "--chips;1000000000" "p.json" -- \
    "$bin" pod -c v7 --chips 1000000000 --json p.json good.tpt
expect_fail "pod full with a missing per-chip trace" "absent\\.0\\.tpt" "p.json" -- \
    "$bin" pod -c v7 --mode full --topology 2x2x2 --json p.json 'absent.{chip}.tpt'
expect_fail "pod full with a wrong number of traces" "2 traces;8 chips" "p.json" -- \
    "$bin" pod -c v7 --mode full --topology 2x2x2 --json p.json good.tpt good.tpt
expect_fail "pod with an unknown override" "-p;ici\\.frob" "p.json" -- \
    "$bin" pod -c v7 -p ici.frob=1 --json p.json good.tpt
expect_fail "pod with a missing config" "nocfg" "p.json" -- "$bin" pod -c nocfg --json p.json good.tpt

# ---------------------------------------------------------------- report (compare JSON reports)
"$bin" run -q -c v7 --json rep.json good.tpt 2>/dev/null || bad "setup: run --json rep.json failed"
expect_fail "report without a file" "report;A\\.json" "" -- "$bin" report
expect_fail "report with an unknown option" "report;--frob" "" -- "$bin" report --frob rep.json
expect_fail "report of a missing file" "nope\\.json" "" -- "$bin" report rep.json nope.json
expect_fail "report --csv without a file" "--csv" "" -- "$bin" report rep.json --csv
expect_fail "report CSV into a missing directory" "nodir/c\\.csv" "nodir/c.csv" -- \
    "$bin" report rep.json --csv nodir/c.csv
head -c 300 rep.json >cut.json
expect_fail "report of a truncated JSON" "cut\\.json;byte 300" "c.csv" -- \
    "$bin" report rep.json cut.json --csv c.csv
printf '{"schema": "tpusim.run/1", "a": "\\uZZZZ"}' >esc.json
expect_fail "report of a bad escape" "esc\\.json;line 1, column [0-9]+ \\(byte [0-9]+\\);invalid escape" "c.csv" -- \
    "$bin" report esc.json --csv c.csv
printf '{"schema": "other/1"}' >other.json
expect_fail "report of a JSON that is not a run report" "other\\.json;schema" "c.csv" -- \
    "$bin" report other.json --csv c.csv
printf '{"schema": "tpusim.run/1"}' >nokeys.json
expect_fail "report of a run report missing keys" "nokeys\\.json;missing key" "c.csv" -- \
    "$bin" report rep.json nokeys.json --csv c.csv
expect_fail "report of too many files" "at most" "" -- "$bin" report $(printf 'rep.json %.0s' $(seq 1 30))
expect_fail "report of a directory" "report-dir" "" -- "$bin" report report-dir

# ---------------------------------------------------------------- command line
expect_fail "unknown subcommand" "frobnicate" "" -- "$bin" frobnicate
expect_fail "no subcommand" "" "" -- "$bin"
expect_fail "run without a trace" "TRACE" "" -- "$bin" run
expect_fail "run with two traces" "TRACE" "" -- "$bin" run good.tpt good.tpt
expect_fail "run with an unknown option" "" "" -- "$bin" run --frob good.tpt
expect_fail "asm without -o" "" "" -- "$bin" asm good.s
expect_fail "disasm without a trace" "TRACE" "" -- "$bin" disasm

# ---------------------------------------------------------------- determinism of fresh runs
if "$bin" run -q -c v7 --json a.json good.tpt 2>det_err.txt &&
    "$bin" run -q -c v7 --json b.json good.tpt 2>>det_err.txt; then
    # All but the provenance's start and wall time (docs/outputs.md) and its command line
    # (the two write to different files).
    nowall() { grep -v -E '^ *"(started_utc|wall_s|command)": ' "$1"; }
    if cmp -s <(nowall a.json) <(nowall b.json); then ok; else bad "two runs of the same trace differ: $(diff a.json b.json | head -5)"; fi
else
    bad "determinism: run failed: $(cat det_err.txt)"
fi

# ------------------------------------------------------- HBM capacity in human units
# (the IR's memory plan refuses it first: the peak and its largest live tensors, in GiB)
expect_fail "gen beyond HBM capacity" "needs [0-9.]+ GiB of HBM per device, more than the device's 96.00 GiB; at the peak \(L31/bwd/mlp\) the largest live tensors are adam.m [0-9.]+ GiB, adam.v [0-9.]+ GiB, master [0-9.]+ GiB; shard" "big.tpt" -- \
    "$bin" gen llm-step -c v7 --layers 32 --d-model 8192 --heads 64 --d-ff 28672 --vocab 32000 \
    --seq 4096 --batch 64 -o big.tpt

# ------------------------------------------------------- topology the trace was made for
# A trace generated for 2 chips on a 2-chip ring, replayed on the preset's 4x4x4: a warning
# (the run goes on), or with --strict an error; the matching topology is silent.
if "$bin" gen llm-step -c v7 -p ici.dims=2 --layers 1 --d-model 256 --heads 4 --d-ff 512 \
    --vocab 1000 --seq 64 --batch 4 --chips 2 -o ring2.tpt 2>gen_err.txt; then
    if "$bin" run -q -c v7 ring2.tpt 2>warn.txt &&
        grep -q '^tpusim: warning: ring2.tpt: the trace was generated for 2 chips (ici.dims=2 ici.wrap=x) but its collectives are timed on ici.dims=4x4x4 ici.wrap=xyz (64 chips)' warn.txt; then
        ok
    else
        bad "run of a 2-chip trace on 4x4x4: no warning: $(cat warn.txt)"
    fi
    expect_fail "run --strict of a trace for another topology" "ring2\.tpt;generated for 2 chips;--strict" "" -- \
        "$bin" run -q --strict -c v7 ring2.tpt
    expect_fail "pod --strict of a trace for another chip count" "ring2\.tpt;generated for 2 chips;pod has 64 chips" "" -- \
        "$bin" pod -q --strict -c v7 --chips 64 ring2.tpt
    if "$bin" run -q --strict -c v7 -p ici.dims=2 ring2.tpt 2>quiet.txt && [ ! -s quiet.txt ] &&
        "$bin" pod -q --strict -c v7 --chips 2 ring2.tpt 2>>quiet.txt && [ ! -s quiet.txt ]; then
        ok
    else
        bad "matching topology: $(cat quiet.txt)"
    fi
else
    bad "gen of a 2-chip trace failed: $(cat gen_err.txt)"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
