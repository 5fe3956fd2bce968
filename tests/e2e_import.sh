#!/usr/bin/env bash
# e2e_import.sh SOURCE_DIR TPUSIM_BIN WORKDIR - `tpusim import hlo` end to end: each test
# module under tests/hlo/ imports and replays on every preset in configs/ (the SPMD one with
# ici.dims 4x2, its FSDP x TP mesh); the imported trace carries the module's closed-form MXU
# FLOPs; the forward MLP written as HLO and `gen mlp` of the same shapes give the same FLOPs
# and simulated times within 10%; a broken module gives one stderr line with line:column and
# no output. Prints "N passed, N failed".
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

declare -A want=(
    [mlp_fwd]=$((2 * 256 * (512 * 1024 + 1024 * 1024)))
    [mlp_train]=$((2 * 128 * (784 * 512 * 2 + 512 * 512 * 3 + 512 * 10 * 3)))
    [transformer_layer]=$((3 * 2 * 512 * (512 * 1536 + 512 * 512 + 512 * 2048 + 2048 * 512) + 6 * 2 * 16 * 256 * 256 * 64))
    [spmd_fsdp_tp]=$((4 * 6 * 2 * 1024 * 1024 * 1024))
    [convnet]=$((2 * 32 * 32 * 32 * 32 * 27 + 2 * 32 * 16 * 16 * 64 * 288 + 2 * 32 * 16 * 16 * 64 * 9 + 2 * 32 * 16 * 16 * 128 * 64 + 3 * 2 * 32 * 8192 * 10 + 2 * 64 * 128 * 16 * 16 * 32 + 2 * 32 * 16 * 16 * 64 * 128))
)
for cfgf in "$src"/configs/*.yaml; do
    p=$(basename "$cfgf" .yaml)
    for m in "${!want[@]}"; do
        extra=()
        [ "$m" = spmd_fsdp_tp ] && extra=(-p ici.dims=4x2x1)
        if ! "$bin" import hlo "$src/tests/hlo/$m.hlo" -c "$p" "${extra[@]}" -o "$m-$p.tpt" -q 2>err.txt; then
            bad "import $m -c $p: $(cat err.txt)"
            continue
        fi
        cfg=$p
        if [ "$m" = spmd_fsdp_tp ]; then
            printf 'include: %s\nici.dims: 4x2x1\n' "$p" >"$p-4x2.yaml"
            cfg=$p-4x2.yaml
        fi
        f=$(flops "$m-$p.tpt" "$cfg")
        if [ "$f" = "${want[$m]}" ]; then ok; else bad "$m on $p: MXU FLOPs '$f', closed form ${want[$m]}"; fi
    done
done

# The same MLP as an HLO module and as `gen mlp`: equal FLOPs, times within 10% (both lower
# through the workload IR, the tanh fused into the first matmul as an epilogue).
for p in v5e v7; do
    "$bin" gen mlp --layers 512,1024,1024 --batch 256 -c $p -o g.tpt &&
        "$bin" import hlo "$src/tests/hlo/mlp_fwd.hlo" -c $p -o i.tpt -q || { bad "mlp pair on $p"; continue; }
    fg=$(flops g.tpt $p) fi=$(flops i.tpt $p) tg=$(time_ps g.tpt $p) ti=$(time_ps i.tpt $p)
    [ "$fg" = "$fi" ] && ok || bad "mlp on $p: gen FLOPs $fg, imported $fi"
    if [ $((ti * 10 <= tg * 11 && ti * 10 >= tg * 9)) = 1 ]; then ok; else bad "mlp on $p: gen $tg ps, imported $ti ps"; fi
    echo "mlp on $p: gen $tg ps, import $ti ps, FLOPs $fg / $fi"
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
