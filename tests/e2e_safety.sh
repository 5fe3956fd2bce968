#!/usr/bin/env bash
# e2e_safety.sh SOURCE_DIR TPUSIM_BIN WORKDIR - outputs never destroy anything, and inputs are
# read the way they come (issue 13, defects 1-5, 8, 14, 18, 21; every command that writes): a device, FIFO or symlink
# given as an output stays one; an output that is an input or another output is refused before
# any work, the input intact; temporaries are unique and removed on SIGINT/SIGTERM; long paths
# are written under their full name; the trace is read once (pipes, FIFOs); a write error on
# stdout or on a file fails the command with the output named and errno's reason; an output
# that cannot be created fails at once; --json - keeps stdout for the JSON.
# Prints "N passed, N failed" and exits non-zero on any failure.
set -u
. "$(dirname "$0")/lib/e2e.sh" "$@"

check() { # check NAME COMMAND...: the command must succeed
    local name=$1
    shift
    if "$@"; then ok; else bad "$name"; fi
}
no_temps() { ! compgen -G "*.tmp.*" >/dev/null && ! compgen -G "*/*.tmp.*" >/dev/null; }
is_json() { python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null; }

cp "$src/traces/gemm-1k.tpt" t.tpt
cp "$src/configs/v7.yaml" my.yaml
run() { "$bin" run -q -c v7 "$@"; }

# ---- 1: a character device, a FIFO and a symlink are written in place, never replaced.
# As root, private nodes with /dev/null's and /dev/full's numbers stand in, so a regression
# cannot break the machine's devices; otherwise the devices themselves (which we could not
# replace anyway). Stdout redirections use /dev/full itself: the shell opens it, not tpusim.
null=/dev/null full=/dev/full
if [ "$(id -u)" -eq 0 ] && mknod -m 666 null c 1 3 2>/dev/null &&
    mknod -m 666 full c 1 7 2>/dev/null; then
    null=$PWD/null full=$PWD/full
fi
check "run --json/--csv/--timeline to a char device" run --json "$null" --csv "$null" t.tpt
check "run --timeline to a char device" run --timeline "$null" t.tpt
check "gen -o to a char device" "$bin" gen gemm --m 64 --n 64 --k 64 -c v7 -o "$null"
printf 'arrival_s,prompt_tokens,output_tokens\n0.5,64,9\n' >one.csv
serve=(serve -c v6e --model llama3-8b --max-batch 4 -q)
check "serve --json/--csv to a char device" "$bin" "${serve[@]}" --workload one.csv --json "$null" \
    --csv "$null"
check "char device is still a char device" test -c "$null"
check "/dev/null is still a char device" test -c /dev/null
mkfifo fifo
cat fifo >from_fifo.json &
reader=$!
check "run --json to a FIFO" run --json fifo t.tpt
check "FIFO is still a FIFO" test -p fifo
test -p fifo || kill $reader # a replaced FIFO: its reader would wait forever
wait $reader
check "the JSON came through the FIFO" is_json from_fifo.json
echo old >real.json
ln -s real.json link.json
check "run --json through a symlink" run --json link.json t.tpt
check "the symlink is still a symlink" test -L link.json
check "the symlink's target was written" is_json real.json
echo old >real.csv
ln -s real.csv link.csv
check "serve --csv through a symlink" "$bin" "${serve[@]}" --workload one.csv --csv link.csv
check "the symlink is still a symlink, its target the CSV" \
    test -L link.csv -a "$(head -c 10 real.csv)" = arrival_s,

# ---- 2: an output equal to an input or to another output is refused; nothing is touched.
# refused NAME FILE COMMAND...: one-line error saying why, exit 1..127, FILE unchanged.
refused() {
    local name=$1 file=$2 sum
    shift 2
    sum=$(cksum <"$file")
    "$@" >out.txt 2>err.txt
    local rc=$?
    if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then
        bad "$name: exit $rc"
    elif [ "$(wc -l <err.txt)" -ne 1 ] || ! grep -qE '^tpusim: .*same file as' err.txt; then
        bad "$name: stderr: $(cat err.txt)"
    elif [ "$(cksum <"$file")" != "$sum" ]; then
        bad "$name: $file was modified"
    else
        ok
    fi
}
ln t.tpt hard.tpt
ln -s t.tpt soft.tpt
refused "run --json = trace" t.tpt run --json t.tpt t.tpt
refused "run --csv = trace (./ path)" t.tpt run --csv ./t.tpt t.tpt
refused "run --timeline = trace (hard link)" t.tpt run --timeline hard.tpt t.tpt
refused "run --json = trace (symlink)" t.tpt run --json soft.tpt t.tpt
refused "run --json = config" my.yaml "$bin" run -q -c my.yaml --json my.yaml t.tpt
refused "run --csv = --json" t.tpt run --json same.json --csv ./same.json t.tpt
check "refused outputs were not created" test ! -e same.json
"$bin" disasm t.tpt >t.s
refused "asm -o = source" t.s "$bin" asm t.s -o t.s
refused "gen -o = config" my.yaml "$bin" gen gemm --m 64 --n 64 --k 64 -c my.yaml -o my.yaml
refused "pod --json = trace" t.tpt "$bin" pod -q -c v7 --json t.tpt t.tpt
run --json a.json t.tpt
refused "report --csv = report input" a.json "$bin" report a.json --csv a.json
cp "$src/tests/hlo/mlp_fwd.hlo" m.hlo
refused "import -o = HLO module" m.hlo "$bin" import hlo m.hlo -c v7 -o m.hlo -q
refused "import --json = -o" m.hlo "$bin" import hlo m.hlo -c v7 -o imp.tpt --json ./imp.tpt -q
check "refused import wrote no trace" test ! -e imp.tpt
refused "serve --csv = workload" one.csv "$bin" "${serve[@]}" --workload one.csv --csv one.csv
refused "serve --json = config" my.yaml "$bin" serve -c my.yaml --model llama3-8b --rate 1 \
    --json my.yaml -q
refused "serve --csv = --json" one.csv "$bin" "${serve[@]}" --workload one.csv --json s.json \
    --csv s.json
check "refused serve wrote no JSON" test ! -e s.json

# ---- 3: two writers of one output never share a temporary.
mkdir out.json.tmp # the old fixed temporary name, taken
check "run --json while PATH.tmp exists" run --json out.json t.tpt
rmdir out.json.tmp
run --json both.json t.tpt &
p1=$!
run --json both.json t.tpt &
p2=$!
wait $p1 && r1=0 || r1=$?
wait $p2 && r2=0 || r2=$?
check "two concurrent runs to one --json both succeed" test $r1 -eq 0 -a $r2 -eq 0
check "and leave one whole JSON" is_json both.json
check "no temporaries left" no_temps

# ---- 4: long paths are written under their full name; a long path in an error keeps the reason.
long=$PWD
for i in 1 2 3; do long+=/$(printf 'd%.0s' $(seq 200)); done
mkdir -p "$long"
check "run --json to a ${#long}-byte directory" run --json "$long/r.json" t.tpt
check "written under the full name" is_json "$long/r.json"
run --json "$long/missing/r.json" t.tpt 2>err.txt
check "long path error keeps its reason" grep -q 'No such file or directory$' err.txt
check "long path error is one line, shortened" test "$(wc -l <err.txt)" -eq 1 -a "$(wc -c <err.txt)" -lt 530
# long input paths: kept whole in the report, and every error about them keeps its reason
cp t.tpt "$long/t.tpt"
cp my.yaml "$long/c.yaml"
run --json lp.json "$long/t.tpt"
check "a ${#long}-byte trace path is whole in the JSON" python3 -c \
    'import json,sys; assert json.load(open("lp.json"))["trace"] == sys.argv[1]' "$long/t.tpt"
check "a config at a ${#long}-byte path loads" "$bin" run -q -c "$long/c.yaml" t.tpt
head -c 100 t.tpt >"$long/bad.tpt"
printf 'nop\nfoo\n' >"$long/bad.s"
printf 'include: v7\nhbm.bogus: 1\n' >"$long/bad.yaml"
printf 'nop\nsync.wait wait=3\n' >dl.s
"$bin" asm dl.s -o "$long/dl.tpt"
for c in "truncated header;run -q -c v7 $long/bad.tpt" "truncated header;disasm $long/bad.tpt" \
    "bad.s:2: unknown opcode 'foo';asm $long/bad.s -o x.tpt" \
    "bad.yaml:2: unknown key 'hbm.bogus';run -q -c $long/bad.yaml t.tpt" \
    "dl.tpt: deadlock: instruction 1 (sync.wait) waits on semaphore 3;run -q -c v7 $long/dl.tpt" \
    "missing.json: cannot open: No such file or directory;report $long/missing.json"; do
    want=${c%%;*}
    read -r -a args <<<"${c#*;}"
    "$bin" "${args[@]}" >/dev/null 2>err.txt
    if [ "$(wc -l <err.txt)" -eq 1 ] && [ "$(wc -c <err.txt)" -lt 530 ] && grep -qF "$want" err.txt; then
        ok
    else
        bad "${args[0]} with a long path: the reason '$want' lost: $(cat err.txt)"
    fi
done

# ---- 5: the trace is read once: a pipe and a FIFO work.
run --json direct.json t.tpt
cat t.tpt | run --json piped.json /dev/stdin 2>err.txt
check "run from a pipe (/dev/stdin)" is_json piped.json
# but the trace's name and the provenance's command line and wall-clock lines
grep -v -E '"(trace|command|started_utc|wall_s)"' direct.json >d.txt
grep -v -E '"(trace|command|started_utc|wall_s)"' piped.json >p.txt 2>/dev/null
check "the pipe gives the same results" cmp -s d.txt p.txt
"$bin" gen gemm --m 256 --n 256 --k 256 -c v7 -o - | run --json - /dev/stdin >gen_pipe.json
check "gen -o - | run --json - /dev/stdin" is_json gen_pipe.json
"$bin" disasm t.tpt | "$bin" asm /dev/stdin -o - >piped.tpt
check "disasm | asm -o - reproduces the trace" cmp -s piped.tpt t.tpt
mkfifo tfifo
cat t.tpt >tfifo 2>/dev/null &
writer=$!
check "run from a FIFO" timeout 60 "$bin" run -q -c v7 --json fifo_in.json tfifo
kill $writer 2>/dev/null # a reader that opened the FIFO twice leaves it blocked
wait $writer 2>/dev/null

# ---- 8: a failed write to stdout fails the command, whatever wrote it.
stdout_full() { # NAME COMMAND...
    local name=$1
    shift
    "$@" >/dev/full 2>err.txt
    local rc=$?
    if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then
        bad "$name > /dev/full: exit $rc"
    elif ! grep -q 'No space left on device' err.txt; then
        bad "$name > /dev/full: stderr: $(cat err.txt)"
    else
        ok
    fi
}
stdout_full "run" "$bin" run -c v7 t.tpt
stdout_full "disasm" "$bin" disasm t.tpt
stdout_full "config" "$bin" config v7
stdout_full "config --help" "$bin" config --help # one 12 KB write: stdio keeps no errno for it
stdout_full "isa" "$bin" isa
stdout_full "run --json -" run --json - t.tpt
stdout_full "pod --json -" "$bin" pod -q -c v7 --json - t.tpt

# --json -: stdout is the JSON alone, the text report goes to stderr.
"$bin" run -c v7 --json - t.tpt >stdout.json 2>stderr.txt
check "run --json -: stdout is JSON" is_json stdout.json
check "run --json -: the text report is on stderr" grep -q '^tpusim report:' stderr.txt
"$bin" pod -c v7 --json - t.tpt >stdout.json 2>stderr.txt
check "pod --json -: stdout is JSON" is_json stdout.json
check "pod --json -: the text report is on stderr" test -s stderr.txt
"$bin" serve -c v6e --model llama3-8b --max-batch 4 --workload one.csv --json - >stdout.json \
    2>stderr.txt
check "serve --json -: stdout is JSON" is_json stdout.json
check "serve --json -: the text report is on stderr" grep -q '^tpusim serve:' stderr.txt
"$bin" serve -c v6e --model llama3-8b --max-batch 4 --workload one.csv --csv - >stdout.csv \
    2>stderr.txt
check "serve --csv -: stdout is the CSV alone" test "$(head -c 10 stdout.csv)" = arrival_s, -a \
    "$(wc -l <stdout.csv)" -eq 2 -a ! -e ./-
"$bin" import hlo m.hlo -c v7 -o imp.tpt --json - >stdout.json 2>stderr.txt
check "import --json -: stdout is JSON" is_json stdout.json
check "import --json -: the summary line is on stderr" grep -q '^imported ' stderr.txt

# ---- 18: a full disk names the output and the reason.
"$bin" gen gemm --m 64 --n 64 --k 64 -c v7 -o "$full" 2>err.txt
check "gen -o /dev/full names the output and errno" \
    grep -qx "tpusim: $full: cannot write: No space left on device" err.txt
run --json "$full" t.tpt 2>err.txt
check "run --json /dev/full names the output and errno" \
    grep -qx "tpusim: $full: cannot write: No space left on device" err.txt
"$bin" "${serve[@]}" --workload one.csv --csv "$full" 2>err.txt
check "serve --csv /dev/full names the output and errno" \
    grep -qx "tpusim: $full: cannot write: No space left on device" err.txt
check "/dev/full is still a char device" test -c "$full" -a -c /dev/full
# a regular file on a full disk: a 4 KB file-size limit stands in (SIGXFSZ ignored: EFBIG)
(
    trap '' XFSZ
    ulimit -f 4
    exec "$bin" run -q -c v7 --json big.json t.tpt
) 2>err.txt
check "run --json past the size limit names the output and errno" \
    grep -qx 'tpusim: big.json: cannot write: File too large' err.txt
check "and leaves neither the output nor a temporary" test ! -e big.json
check "no temporaries left" no_temps

# ---- 21 and 14 need a long run: a 16-layer LLM step (about 20 s with a timeline; 16 layers
# so that its Adam state fits one v7 device's 96 GiB).
"$bin" gen llm-step --layers 16 --d-model 4096 --heads 32 --d-ff 16384 --vocab 32000 \
    --seq 2048 --batch 4 -c v7 -o big.tpt
# 21: an output that cannot be created fails before simulating.
for opt in --json --csv --timeline; do
    t0=$(date +%s%N)
    run "$opt" /nonexistent-dir/x big.tpt 2>err.txt
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [ $rc -eq 0 ] || ! grep -q "cannot create the $opt output: No such file" err.txt; then
        bad "run $opt /nonexistent-dir/x: exit $rc: $(cat err.txt)"
    elif [ $ms -gt 2000 ]; then
        bad "run $opt /nonexistent-dir/x failed only after $ms ms: it simulated first"
    else
        ok
    fi
done

# serve and import check theirs before the step grid and the import
"$bin" serve -c v6e --model llama3-8b --max-batch 4 --workload one.csv -q \
    --json /nonexistent-dir/x 2>err.txt
check "serve --json /nonexistent-dir/x fails at once" \
    grep -q "cannot create the --json output: No such file" err.txt
"$bin" import hlo m.hlo -c v7 -o imp2.tpt --json /nonexistent-dir/x -q 2>err.txt
check "import --json /nonexistent-dir/x fails before writing the trace" \
    test ! -e imp2.tpt -a "$(grep -c 'cannot create the --json output' err.txt)" -eq 1

# 14: SIGINT/SIGTERM remove the temporaries and end the process by that signal.
set -m # job control: background jobs get SIGINT (without it they ignore it)
interrupt() { # SIG OUTPUT COMMAND... (a program, not a shell function)
    local sig=$1 out=$2 i
    shift 2
    "$@" 2>/dev/null &
    local pid=$!
    for i in $(seq 200); do
        compgen -G "$out.tmp.*" >/dev/null && break
        sleep 0.05
    done
    sleep 0.2
    kill -"$sig" $pid
    wait $pid
    local rc=$? want=$((128 + $(kill -l "$sig")))
    if [ $rc -ne $want ]; then
        bad "$sig to $*: exit $rc, expected $want"
    elif [ -e "$out" ] || compgen -G "$out.tmp.*" >/dev/null; then
        bad "$sig to $*: left $(echo "$out"*)"
    else
        ok
    fi
}
interrupt INT tl.json "$bin" run -q -c v7 --timeline tl.json big.tpt
interrupt TERM tl.json "$bin" run -q -c v7 --timeline tl.json big.tpt
# asm reading a FIFO whose writer stalls: the trace's temporary is open while it waits
mkfifo asm_in
for sig in INT TERM; do
    (printf 'nop\nnop\n'; sleep 30) >asm_in &
    writer=$!
    interrupt $sig a.tpt "$bin" asm asm_in -o a.tpt
    kill -- -$writer 2>/dev/null # the subshell and its sleep (job control: its own group)
    wait $writer 2>/dev/null
done
interrupt INT g.tpt "$bin" gen llm-step --layers 1400 --d-model 1024 --heads 16 --d-ff 4096 \
    --vocab 32000 --seq 2048 --batch 4 --decode -c v7 -o g.tpt
set +m

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
