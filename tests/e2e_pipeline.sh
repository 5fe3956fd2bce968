#!/usr/bin/env bash
# e2e_pipeline.sh SOURCE_DIR TPUSIM_BIN WORKDIR - pipeline parallelism end to end: a GPipe
# llm-step of 4 stages x 8 microbatches on v5p (1x1x4, one stage per chip) generates one
# trace per chip, `tpusim pod --mode full` runs all four, and the measured waiting fraction
# (1 - busy/step, the bubble) is within 5% of the analytic 3/11; 1F1B's peak HBM (the memory
# plan's, stage 0) is below GPipe's. Prints "N passed, N failed".
set -u
. "$(dirname "$0")/lib/e2e.sh" "$@"

model="llm-step --layers 8 --d-model 2048 --heads 16 --d-ff 8192 --vocab 1024 --seq 1024
    --batch 32 --pipeline 4 --microbatches 8 -c v5p -p ici.dims=1x1x4"
# shellcheck disable=SC2086
"$bin" gen $model --schedule gpipe -o 'g{chip}.tpt' >gpipe.txt 2>&1 || bad "gen gpipe: $(cat gpipe.txt)"
# shellcheck disable=SC2086
"$bin" gen $model --schedule 1f1b -o 'f{chip}.tpt' >1f1b.txt 2>&1 || bad "gen 1f1b: $(cat 1f1b.txt)"
grep -q 'bubble (P-1)/(M+P-1) = 0.2727' gpipe.txt && ok || bad "gen does not report the bubble 3/11"
g0=$(awk '/^stage 0:/ {gsub(/[(]/, "", $7); print $7}' gpipe.txt)
f0=$(awk '/^stage 0:/ {gsub(/[(]/, "", $7); print $7}' 1f1b.txt)
[ -n "$g0" ] && [ -n "$f0" ] && [ "$f0" -lt "$g0" ] && ok ||
    bad "1F1B stage-0 peak $f0 not below GPipe's $g0"
"$bin" pod -c v5p --topology 1x1x4 --mode full 'g{chip}.tpt' >pod.txt 2>&1 || bad "pod: $(cat pod.txt)"
w=$(awk '/^waiting/ {sub(/%/, "", $2); print $2}' pod.txt)
if [ -n "$w" ] && awk -v w="$w" 'BEGIN { b = 300 / 11; e = (w - b) / b; exit !(e < 0.05 && e > -0.05) }'; then
    ok
else
    bad "measured bubble '$w'% not within 5% of 27.27%"
fi
[ -n "${E2E_VERBOSE:-}" ] && echo "bubble measured $w% (analytic 27.27%); stage 0 peak gpipe $g0, 1f1b $f0"

# The shipped pipelined sample (traces/pipeline/llm-tiny-pipe.{stage}.tpt) is what its note generates,
# and symmetric pod mode runs its stages alone.
note=$("$bin" disasm "$src/traces/pipeline/llm-tiny-pipe.0.tpt" | head -1 |
    sed -n 's/^\.note "tpusim \(gen .*\)"$/\1/p' | sed 's/ # peak HBM.*//')
# shellcheck disable=SC2086
"$bin" ${note/-o traces\/pipeline\/llm-tiny-pipe./-o re.} >/dev/null 2>err.txt ||
    bad "sample note '$note' failed: $(cat err.txt)"
for s in 0 1 2 3; do
    if diff <("$bin" disasm "$src/traces/pipeline/llm-tiny-pipe.$s.tpt" | tail -n +2) \
        <("$bin" disasm "re.$s.tpt" | tail -n +2) >/dev/null; then ok; else
        bad "pipeline/llm-tiny-pipe.$s.tpt differs from what its note generates (traces/gen-samples.sh)"
    fi
done
"$bin" pod -c v7 --topology 1x1x4 "$src/traces/pipeline/llm-tiny-pipe.{stage}.tpt" >sym.txt 2>&1 &&
    grep -q '^stages *4,' sym.txt && ok || bad "symmetric pod of the sample stages: $(cat sym.txt)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
