#!/usr/bin/env bash
# e2e_inputs.sh SOURCE_DIR TPUSIM_BIN WORKDIR - inputs that lie (issue 13): odd bytes in
# assembly and trace notes, names that are not UTF-8, sizes near 2^64, configs whose keys
# contradict each other, and deadlocks whose cause is not the barrier they stop at.
#
# Failing cases are checked as in e2e_errors.sh: non-zero exit below 128, stderr exactly one
# line starting "tpusim: " holding the given facts (extended regexes), and no requested
# output (nor OUTPUT.tmp) left behind. E2E_VERBOSE=1 shows every message. Prints
# "N passed, N failed" and exits non-zero on any failure.
set -u
. "$(dirname "$0")/lib/e2e.sh" "$@"
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

# check NAME COMMAND...: the command must succeed.
check() {
    local name=$1
    shift
    if "$@" >out.txt 2>err.txt; then
        ok
    else
        bad "$name: exit $?: $(head -c 2000 err.txt)"
    fi
}

printf 'dma.h2v hbm=0 vmem=0 bytes=64K signal=0\nv.exp src=0 dst=65536 n=16384 dtype=bf16 wait=0\n' >good.s
check "asm of the good trace" "$bin" asm good.s -o good.tpt

# ---------------------------------------------------------------- 11: names not UTF-8
printf 'mark name="bad\\xffname"\nv.add src=0 dst=4096 n=1024 dtype=bf16\n' >utf.s
check "asm of a mark name with byte 0xff" "$bin" asm utf.s -o utf.tpt
check "run with a non-UTF-8 region name" "$bin" run -q -c v7 --json utf.json --timeline utf.tl.json utf.tpt
if $py - utf.json utf.tl.json <<'PY'; then ok; else bad "a non-UTF-8 region name: JSON not strict UTF-8 or name not replaced"; fi
import json, sys
rep = json.load(open(sys.argv[1], encoding="utf-8", errors="strict"))
tl = json.load(open(sys.argv[2], encoding="utf-8", errors="strict"))
assert [r["name"] for r in rep["regions"]] == ["bad\ufffdname"], rep["regions"]
events = tl["traceEvents"] if isinstance(tl, dict) else tl
assert any(e.get("cat") == "region" and e["name"] == "bad\ufffdname" for e in events)
PY

# ---------------------------------------------------------------- 17, 20: one config check
# The same cross-key error, with file:line, from config, gen, run and pod.
printf 'include: v7\nici.links_per_chip: 1\n' >links.yaml
printf 'include: links.yaml\nici:\n  dims: "8"\n  wrap: x\n' >ring.yaml
printf 'include: v7\nhbm:\n  tRFC_ns: 350\n  tREFI_ns: 300\n' >refi.yaml
for c in "ring.yaml;links\.yaml:2: key 'ici\.links_per_chip': 1, but ici\.dims '8' needs 2" \
    "refi.yaml;refi\.yaml:4: key 'hbm\.tREFI_ns': 300 ns is not above hbm\.tRFC_ns \(350 ns\)"; do
    f=${c%%;*} re=${c#*;}
    expect_fail "config $f" "$re" "" -- "$bin" config "$f"
    expect_fail "gen $f" "$re" "g.tpt" -- "$bin" gen gemm --m 128 --n 128 --k 128 -c "$f" -o g.tpt
    expect_fail "run $f" "$re" "r.json" -- "$bin" run -q -c "$f" --json r.json good.tpt
    expect_fail "pod $f" "$re" "p.json" -- "$bin" pod -q -c "$f" --chips 8 --json p.json good.tpt
done
big="ici\.dims;axis length 1000000000 not in \[1, 1048576\]"
expect_fail "config -p ici.dims=1e9" "$big" "" -- "$bin" config v7 -p ici.dims=1000000000
expect_fail "run -p ici.dims=1e9" "$big" "" -- "$bin" run -q -c v7 -p ici.dims=1000000000 good.tpt
expect_fail "gen -p ici.dims=1e9" "$big" "g.tpt" -- \
    "$bin" gen gemm --m 128 --n 128 --k 128 -c v7 -p ici.dims=1000000000 -o g.tpt
expect_fail "-p hbm.tREFI_ns below tRFC" "hbm\.tREFI_ns;not above hbm\.tRFC_ns" "" -- \
    "$bin" run -q -c v7 -p hbm.tREFI_ns=100 -p hbm.tRFC_ns=350 good.tpt

# ---------------------------------------------------------------- 10, 19: bytes in assembly
printf 'nop\nnop\0 garbage\nnop\n' >nul.s
expect_fail "asm of a NUL byte" "nul\.s:2:4;NUL" "nul.tpt" -- "$bin" asm nul.s -o nul.tpt
printf '\xef\xbb\xbfnop\nnop\n' >bom.s
check "asm skips a UTF-8 BOM" "$bin" asm bom.s -o bom.tpt
if [ "$("$bin" disasm bom.tpt 2>&1)" = "$(printf 'nop\nnop')" ]; then ok; else bad "BOM: disasm: $("$bin" disasm bom.tpt 2>&1 | head -3)"; fi

# ---------------------------------------------------------------- 12: NUL in a trace note
printf '.note "abcdefghij"\nnop\n' >note.s
check "asm with a note" "$bin" asm note.s -o note.tpt
cp note.tpt notenul.tpt
printf '\0' | dd of=notenul.tpt bs=1 seek=29 conv=notrunc status=none
expect_fail "disasm of a NUL in the note" "notenul\.tpt;byte 29;NUL" "" -- "$bin" disasm notenul.tpt
expect_fail "run of a NUL in the note" "notenul\.tpt;byte 29;NUL" "r.json" -- \
    "$bin" run -q -c v7 --json r.json notenul.tpt

# ---------------------------------------------------------------- 13: sizes near 2^64
llm="--d-model 1024 --heads 16 --d-ff 4096 --vocab 32000 --seq 1024 --batch 8 --decode"
expect_fail "gen llm-step --layers 4e9" "--layers 4000000000;HBM" "g.tpt" -- \
    "$bin" gen llm-step --layers 4000000000 $llm -c v7 -o g.tpt
expect_fail "gen llm-step --layers 2^64-1" "--layers 18446744073709551615;64 bits" "g.tpt" -- \
    "$bin" gen llm-step --layers 18446744073709551615 $llm -c v7 -o g.tpt
expect_fail "gen llm-step --vocab 2^60" "--vocab 1152921504606846976;64 bits" "g.tpt" -- \
    "$bin" gen llm-step --layers 8 --d-model 1024 --heads 16 --d-ff 4096 --vocab 1152921504606846976 \
    --seq 1024 --batch 8 -c v7 -o g.tpt
expect_fail "gen gemm 2^32 cubed" "--m 4294967296 x --k 4294967296;64 bits" "g.tpt" -- \
    "$bin" gen gemm --m 4294967296 --n 4294967296 --k 4294967296 -c v7 -o g.tpt
expect_fail "gen gemm --m 2^64-1" "--m 18446744073709551615;64 bits" "g.tpt" -- \
    "$bin" gen gemm --m 18446744073709551615 --n 128 --k 128 -c v7 -o g.tpt
expect_fail "gen elementwise 2^64-1" "--elements 18446744073709551615;64 bits" "g.tpt" -- \
    "$bin" gen elementwise --op exp --elements 18446744073709551615 -c v7 -o g.tpt
expect_fail "gen conv2d --padding 2^63-1" "--padding 9223372036854775807;64 bits" "g.tpt" -- \
    "$bin" gen conv2d --batch 8 --height 56 --width 56 --in-channels 64 --out-channels 128 \
    --kernel 3 --padding 9223372036854775807 -c v7 -o g.tpt
expect_fail "gen mlp 2^32 x 2^32" "--layers 4294967296 x --layers 4294967296;64 bits" "g.tpt" -- \
    "$bin" gen mlp --layers 4294967296,4294967296 --batch 8 -c v7 -o g.tpt
expect_fail "gen attention 2^16^4" "--batch 65536 x --heads 65536 x --seq 65536 x --head-dim 65536" \
    "g.tpt" -- "$bin" gen attention --batch 65536 --heads 65536 --seq 65536 --head-dim 65536 -c v7 -o g.tpt
expect_fail "gen transformer --d-model 2^32" "--d-model 4294967296 x --d-model 4294967296" "g.tpt" -- \
    "$bin" gen transformer --d-model 4294967296 --heads 16 --d-ff 4096 --seq 1024 --batch 4 -c v7 -o g.tpt
# sizes that fit in 64 bits but not in HBM still say so
expect_fail "gen gemm 1G cubed" "HBM" "g.tpt" -- "$bin" gen gemm --m 1G --n 1G --k 1G -c v7 -o g.tpt

# ---------------------------------------------------------------- 15: who blocks a barrier
# Chip 3 waits on a semaphore nothing signals; chip 5 on a receive no chip sends: each is named,
# not the other chips' "barrier never released".
for i in 0 1 2 3 4 5 6 7; do
    case $i in
    3) printf 'nop\nsync.wait wait=5\nsync.barrier\n' >sem$i.s ;;
    *) printf 'nop\nsync.barrier\n' >sem$i.s ;;
    esac
    case $i in
    5) printf 'ici.recv axis=x dir=+1 bytes=4K vmem=0\nsync.barrier\n' >rcv$i.s ;;
    *) printf 'nop\nsync.barrier\n' >rcv$i.s ;;
    esac
    "$bin" asm sem$i.s -o sem$i.tpt && "$bin" asm rcv$i.s -o rcv$i.tpt || bad "setup: asm chip $i"
done
expect_fail "pod: barrier blocked by a semaphore" "chip 3: sem3\.tpt;instruction 1 \(sync\.wait\) waits on semaphore 5" \
    "p.json" -- "$bin" pod -q -c v7 --topology 2x2x2 --mode full --json p.json 'sem{chip}.tpt'
expect_fail "pod: barrier blocked by a receive" "chip 5: rcv5\.tpt;waits for instruction 0 \(ici\.recv\);no matching ici\.send" \
    "p.json" -- "$bin" pod -q -c v7 --topology 2x2x2 --mode full --json p.json 'rcv{chip}.tpt'
expect_fail "run: barrier after a receive" "rcv5\.tpt;instruction 1 \(sync\.barrier\) waits for instruction 0 \(ici\.recv\)" \
    "r.json" -- "$bin" run -q -c v7 --json r.json rcv5.tpt

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
