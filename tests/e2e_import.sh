#!/usr/bin/env bash
# e2e_import.sh SOURCE_DIR TPUSIM_BIN WORKDIR - `tpusim import hlo` end to end: each test
# module under tests/hlo/ imports and replays on every preset in configs/ (the SPMD one with
# ici.dims 4x2, its FSDP x TP mesh; strided_groups on a ring of 8); the replay carries the
# module's closed-form MXU FLOPs and ICI bytes; the importer's --json summary holds the
# closed forms; the forward MLP written as HLO and `gen mlp` of the same shapes give the same
# FLOPs and simulated times within 10% on every preset; the 2 MB module of tools/hlo_big.sh imports with its closed-form FLOPs; broken
# and truncated modules give one stderr line with file:line:column and no output. Prints
# "N passed, N failed".
set -u
. "$(dirname "$0")/lib/e2e.sh" "$@"

flops() { # trace -> MXU FLOPs of the replay
    "$bin" run -c "$2" -q --json r.json "$1" >/dev/null 2>&1 &&
        sed -n 's/.*"mxu_flops": *\([0-9]*\).*/\1/p' r.json | head -1
}
time_ps() {
    "$bin" run -c "$2" -q --json r.json "$1" >/dev/null 2>&1 &&
        sed -n 's/.*"time_ps": *\([0-9]*\).*/\1/p' r.json | head -1
}
field() { # JSON FILE KEY -> the first integer value of KEY
    sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p" "$1" | head -1
}

declare -A want=(
    [mlp_fwd]=$((2 * 256 * (512 * 1024 + 1024 * 1024)))
    [mlp_train]=$((2 * 128 * (784 * 512 * 2 + 512 * 512 * 3 + 512 * 10 * 3)))
    [transformer_layer]=$((3 * 2 * 512 * (512 * 1536 + 512 * 512 + 512 * 2048 + 2048 * 512) + 6 * 2 * 16 * 256 * 256 * 64))
    [spmd_fsdp_tp]=$((4 * 6 * 2 * 1024 * 1024 * 1024))
    [strided_groups]=$((2 * 256 * 1024 * 1024))
    [convnet]=$((2 * 32 * 32 * 32 * 32 * 27 + 2 * 32 * 16 * 16 * 64 * 288 + 2 * 32 * 16 * 16 * 64 * 9 + 2 * 32 * 16 * 16 * 128 * 64 + 3 * 2 * 32 * 8192 * 10 + 2 * 64 * 128 * 16 * 16 * 32 + 2 * 32 * 16 * 16 * 64 * 128))
)
# ICI bytes: the SPMD step's 16 all-gathers of 2 MiB (a 1 MiB shard gathered over 2), 8
# all-reduces of 2 MiB and the 4-byte loss, 8 reduce-scatters of a 2 MiB operand; no
# collective in the others but strided_groups, whose collectives are routed point to point:
# its bytes are the sends, hops x chunk, on a ring of 8: all-gather 4 x 1 MiB, all-reduce 12,
# reduce-scatter 6, all-to-all 8 and the permute 1 x 256 KiB
MiB2=$((2 << 20))
declare -A want_ici=([mlp_fwd]=0 [mlp_train]=0 [transformer_layer]=0 [convnet]=0
    [spmd_fsdp_tp]=$((16 * MiB2 + 8 * MiB2 + 4 + 8 * MiB2))
    [strided_groups]=$((4 * (1 << 20) + 27 * (256 << 10))))
declare -A dims=([spmd_fsdp_tp]=4x2x1 [strided_groups]=8x1x1)
for cfgf in "$src"/configs/*.yaml; do
    p=$(basename "$cfgf" .yaml)
    for m in "${!want[@]}"; do
        extra=()
        [ -n "${dims[$m]:-}" ] && extra=(-p "ici.dims=${dims[$m]}")
        if ! "$bin" import hlo "$src/tests/hlo/$m.hlo" -c "$p" "${extra[@]}" -o "$m-$p.tpt" -q 2>err.txt; then
            bad "import $m -c $p: $(cat err.txt)"
            continue
        fi
        cfg=$p
        if [ -n "${dims[$m]:-}" ]; then
            printf 'include: %s\nici.dims: %s\n' "$p" "${dims[$m]}" >"$p-${dims[$m]}.yaml"
            cfg=$p-${dims[$m]}.yaml
        fi
        f=$(flops "$m-$p.tpt" "$cfg")
        if [ "$f" = "${want[$m]}" ]; then ok; else bad "$m on $p: MXU FLOPs '$f', closed form ${want[$m]}"; fi
        ici=$(field r.json ici_bytes)
        if [ "$ici" = "${want_ici[$m]}" ]; then ok; else bad "$m on $p: ICI bytes '$ici', closed form ${want_ici[$m]}"; fi
    done
done

# The importer's --json summary of the SPMD step: its closed forms, counted by class (33
# collectives: 16 all-gathers, 8 + 1 all-reduces, 8 reduce-scatters; 28 async dones).
"$bin" import hlo "$src/tests/hlo/spmd_fsdp_tp.hlo" -c v5p -p ici.dims=4x2x1 -o s.tpt -q \
    --json s.json 2>err.txt || bad "spmd --json: $(cat err.txt)"
for kv in "mxu_flops ${want[spmd_fsdp_tp]}" "collective_bytes ${want_ici[spmd_fsdp_tp]}" \
    "collective 33" "wait 28" "unknown_ops 0" "custom 0"; do
    set -- $kv
    v=$(field s.json "$1")
    [ "$v" = "$2" ] && ok || bad "spmd --json: $1 '$v', expected $2"
done
grep -q '"schema": "tpusim.import/1"' s.json && grep -q '"flops_by_class"' s.json && ok ||
    bad "spmd --json: schema or flops_by_class missing"
# a --chips that is not the torus: one line, no trace
expect_fail "import with --chips not matching ici.dims" "--chips 4;4x2x1" "c.tpt" -- \
    "$bin" import hlo "$src/tests/hlo/spmd_fsdp_tp.hlo" -c v5p -p ici.dims=4x2x1 --chips 4 -o c.tpt

# The same MLP as an HLO module and as `gen mlp`: equal FLOPs, times within 10% (both lower
# through the workload IR, the tanh fused into the first matmul as an epilogue).
for cfgf in "$src"/configs/*.yaml; do
    p=$(basename "$cfgf" .yaml)
    "$bin" gen mlp --layers 512,1024,1024 --batch 256 -c $p -o g.tpt &&
        "$bin" import hlo "$src/tests/hlo/mlp_fwd.hlo" -c $p -o i.tpt -q || { bad "mlp pair on $p"; continue; }
    fg=$(flops g.tpt $p) fi=$(flops i.tpt $p) tg=$(time_ps g.tpt $p) ti=$(time_ps i.tpt $p)
    [ "$fg" = "$fi" ] && ok || bad "mlp on $p: gen FLOPs $fg, imported $fi"
    if [ $((ti * 10 <= tg * 11 && ti * 10 >= tg * 9)) = 1 ]; then ok; else bad "mlp on $p: gen $tg ps, imported $ti ps"; fi
    echo "mlp on $p: gen $tg ps, import $ti ps, FLOPs $fg / $fi"
done

# The 2 MB module (tools/hlo_big.sh: a 420-layer MLP training step, unrolled): imports with
# MXU FLOPs 2 x 256 x 1024^2 x (3 x 420 - 1). Its speed is tools/bench.sh's, not a test's.
bash "$src/tools/hlo_big.sh" >big.hlo
size=$(wc -c <big.hlo)
[ "$size" -ge 2000000 ] && ok || bad "tools/hlo_big.sh wrote $size bytes, not 2 MB"
if "$bin" import hlo big.hlo -c v7 -o big.tpt -q --json big.json 2>err.txt; then
    f=$(field big.json mxu_flops) w=$((2 * 256 * 1024 * 1024 * (3 * 420 - 1)))
    [ "$f" = "$w" ] && ok || bad "big.hlo: MXU FLOPs $f, closed form $w"
else
    bad "big.hlo: $(cat err.txt)"
fi

# Truncated modules through the CLI (test_hlo cuts at every token; here the command's own
# output): the SPMD step cut at 16 points spread over it gives one stderr line with
# file:line:column and no trace.
n=$(wc -c <"$src/tests/hlo/spmd_fsdp_tp.hlo")
for k in $(seq 1 16); do
    head -c $((n * k / 17 + k)) "$src/tests/hlo/spmd_fsdp_tp.hlo" >cut.hlo
    expect_fail "spmd_fsdp_tp.hlo cut at $((n * k / 17 + k))" '^tpusim: cut\.hlo:[0-9]+:[0-9]+: ' \
        "cut.tpt" -- "$bin" import hlo cut.hlo -c v5p -p ici.dims=4x2x1 -o cut.tpt
done

# A broken module: one line with file:line:column, non-zero exit, no output.
printf 'HloModule m\nENTRY e {\n  a = f32[2 parameter(0)\n}\n' >bad.hlo
if "$bin" import hlo bad.hlo -c v7 -o bad.tpt 2>err.txt; then
    bad "broken module imported"
else
    [ "$(wc -l <err.txt)" = 1 ] && grep -q 'bad.hlo:3:13: expected' err.txt && [ ! -e bad.tpt ] && ok ||
        bad "broken module: $(cat err.txt)"
fi
# A module attribute whose value spans lines (found by fuzz_hlo): still one line, the value's
# first token quoted, no newline copied into the message.
printf 'HloModule m, num_partitions={\n}\nENTRY e {\n  ROOT a = f32[2] parameter(0)\n}\n' >bad2.hlo
if "$bin" import hlo bad2.hlo -c v7 -o bad2.tpt 2>err.txt; then
    bad "module with num_partitions={} imported"
else
    [ "$(wc -l <err.txt)" = 1 ] && grep -q "bad2.hlo:1:29: expected a positive count, found '{'" err.txt &&
        [ ! -e bad2.tpt ] && ok || bad "multi-line attribute value: $(cat err.txt)"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
