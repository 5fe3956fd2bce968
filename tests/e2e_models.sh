#!/usr/bin/env bash
# e2e_models.sh SOURCE_DIR TPUSIM_BIN WORKDIR - model presets end to end: `gen --list-models`
# lists every shipped preset; `gen llm-step --model llama2-7b` with overriding flags generates a
# trace whose note is the expanded command (the user's flags after the preset's) and that
# replays; every llama2-7b key is applied (no stderr note); every preset
# generates one reduced layer (names and aliases); an unknown name fails with one stderr
# line suggesting the close names and no output file. Prints "N passed, N failed".
set -u
. "$(dirname "$0")/lib/e2e.sh" "$@"

# The list: every file of configs/models, by name.
if "$bin" gen --list-models >list.txt 2>err.txt; then ok; else bad "gen --list-models: $(cat err.txt)"; fi
for f in "$src"/configs/models/*.yaml; do
    m=$(basename "$f" .yaml)
    if grep -q "^$m " list.txt; then ok; else bad "--list-models does not show $m"; fi
done

# The issue's example: generate, check the note and the override, replay.
if "$bin" gen llm-step --model llama2-7b --seq 256 --batch 8 --layers 2 -c v7 -o x.tpt 2>err.txt; then
    ok
else
    bad "gen llm-step --model llama2-7b: $(cat err.txt)"
fi
if [ ! -s err.txt ]; then
    ok
else
    bad "llama2-7b: every key is an llm-step option now, expected no note, got: $(cat err.txt)"
fi
note=$("$bin" disasm x.tpt | head -1)
case $note in
*"--d-model 4096 --heads 32 --kv-heads 32 --head-dim 128 --d-ff 11008 --vocab 32000 --seq 4096 --mlp swiglu --seq 256 --batch 8 --layers 2"*) ok ;;
*) bad "note is not the expanded command: $note" ;;
esac
if "$bin" run -q -c v7 x.tpt 2>err.txt; then ok; else bad "run x.tpt: $(cat err.txt)"; fi
layers=$("$bin" disasm x.tpt | grep -c 'mark name="L[0-9]*/fwd/attn"')
if [ "$layers" -eq 2 ]; then ok; else bad "x.tpt has $layers layers, expected 2 (--layers 2 overrides 32)"; fi

# Every preset (and one alias each) generates one layer, sharded so PaLM's fits one chip.
for f in "$src"/configs/models/*.yaml; do
    m=$(basename "$f" .yaml)
    if "$bin" gen llm-step --model "$m" --layers 1 --seq 256 --batch 4 --fsdp 4 -c v7 \
        -o "$m.tpt" 2>err.txt; then ok; else bad "gen --model $m: $(cat err.txt)"; fi
    rm -f "$m.tpt"
done
for a in llama-3-8b gpt-3 mixtral palm; do
    if "$bin" gen transformer --model "$a" --batch 1 --seq 128 -c v7 -o a.tpt 2>err.txt; then ok; else
        bad "gen transformer --model $a: $(cat err.txt)"
    fi
done

# MoE presets apply their expert keys (no "not applied" note); DeepSeek's layer 3 is MoE.
for m in mixtral-8x7b deepseek-v3; do
    if "$bin" gen llm-step --model "$m" --layers 4 --expert-d-ff 256 --seq 128 --batch 4 --fsdp 4 \
        -c v7 -o moe.tpt \
        2>err.txt && ! grep -q "not applied" err.txt &&
        "$bin" disasm moe.tpt | head -5 | grep -q -- "--experts .* --top-k" &&
        "$bin" disasm moe.tpt | grep -q 'L3.moe.dispatch\|name="L3/fwd/mlp"'; then ok; else
        bad "gen --model $m: MoE keys not applied: $(cat err.txt)"
    fi
done
rm -f moe.tpt

# Unknown name: one line naming the close ones, exit 1, no trace.
rm -f u.tpt
"$bin" gen llm-step --model llama3-7b --batch 1 -c v7 -o u.tpt 2>err.txt
rc=$?
if [ $rc -eq 1 ] && [ ! -e u.tpt ] && [ "$(wc -l <err.txt)" -eq 1 ] &&
    grep -q "unknown model 'llama3-7b' (did you mean .*llama3-8b" err.txt; then ok; else
    bad "unknown model: rc $rc, $(cat err.txt)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
