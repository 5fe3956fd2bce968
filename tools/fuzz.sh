#!/usr/bin/env bash
# fuzz.sh - build the libFuzzer harnesses of tests/fuzz and run each for SECONDS.
#   bash tools/fuzz.sh [SECONDS] [HARNESS...]    default 60 s each;
#   harnesses: trace asm config report hlo sim (sim: generated programs through the simulator)
# Fails (non-zero exit) on any crash, sanitizer report, invariant violation (sim), hang (> 5 s
# on one input, 30 s for sim), leak or memory blow-up (> 2 GiB); the offending input is kept
# as build-fuzz/artifacts/NAME-*. Reproduce one with:
#   build-fuzz/fuzz_NAME build-fuzz/artifacts/NAME-crash-...
# (fuzz_sim also prints the config, the program and the two inputs run before it: the SystemC
# kernel is process-wide, so `fuzz_sim PREV2 PREV1 CRASH` may be needed; FUZZ_SIM_DUMP=1
# prints every case.)
# Installs clang and libclang-rt-14-dev (libFuzzer) with apt-get when they are missing.
# Env: TPUSIM_FUZZ_BUILD (build dir, default build-fuzz), TPUSIM_FUZZ_JOBS.
set -euo pipefail
secs=${1:-60}
shift || true
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(trace asm config report hlo sim)
root=$(cd "$(dirname "$0")/.." && pwd)
bdir=${TPUSIM_FUZZ_BUILD:-$root/build-fuzz}
jobs=${TPUSIM_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

say() { echo "fuzz: $*" >&2; }

# A fuzzer needs clang plus the libFuzzer runtime: check by linking a tiny one.
have_libfuzzer() {
    local d
    d=$(mktemp -d)
    printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$d/t.c"
    clang -fsanitize=fuzzer,address,undefined "$d/t.c" -o "$d/t" >/dev/null 2>&1
    local rc=$?
    rm -rf "$d"
    return $rc
}
need=(cmake make pkg-config zlib1g-dev libyaml-dev libjansson-dev libsystemc-dev)
command -v clang >/dev/null 2>&1 && have_libfuzzer || need+=(clang libclang-rt-14-dev)
missing=()
for p in "${need[@]}"; do
    case $p in clang | libclang-rt-14-dev) missing+=("$p") ;; *) dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p") ;; esac
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    SUDO=
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    have_libfuzzer || { say "clang cannot link a libFuzzer target even after installing ${missing[*]}"; exit 1; }
fi

cmake -S "$root/tests/fuzz" -B "$bdir" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$bdir" -j"$jobs" >/dev/null

# Seed corpora: the committed seeds plus the repo's shipped traces and configs. Runs add
# what they find to $bdir/corpus/NAME, which is kept between runs (not committed).
corpus=$bdir/corpus
mkdir -p "$corpus"/{trace,asm,config,report,hlo,sim} "$bdir/artifacts"
cp -f "$root"/tests/hlo/*.hlo "$corpus/hlo/"
cp -f "$root"/tests/fuzz/corpus/asm/*.s "$corpus/asm/"
cp -f "$root"/tests/fuzz/corpus/config/*.yaml "$corpus/config/"
cp -f "$root"/tests/fuzz/corpus/report/*.json "$corpus/report/"
cp -f "$root"/tests/fuzz/corpus/sim/* "$corpus/sim/"
shopt -s nullglob
for f in "$root"/configs/*.yaml; do cp -f "$f" "$corpus/config/"; done
for f in "$root"/traces/*.tpt; do
    [ "$(stat -c %s "$f")" -le 1048576 ] && cp -f "$f" "$corpus/trace/"
done
for f in "$root"/traces/*.s; do cp -f "$f" "$corpus/asm/"; done
"$bdir/fuzz_mkseed" "$corpus/trace" "$root"/tests/fuzz/corpus/asm/*.s

# Dictionaries from the two tables (isa_ops.def, config_keys.def): tokens libFuzzer splices
# into inputs, so mutations reach past "unknown opcode" and "unknown key" quickly.
{
    grep -o 'ISA_OP([A-Z_0-9]*, "[a-z.0-9]*"' "$root/isa/isa_ops.def" | sed 's/.*"\(.*\)"/"\1 "/'
    grep -o 'ISA_ARG([a-z0-9_]*' "$root/isa/isa_ops.def" | sed 's/ISA_ARG(\(.*\)/"\1="/' | sort -u
    printf '"%s"\n' wait= signal= bf16 int8 fp8 fp32 int4 xyz +1 -1 0x K M G '.note ' '\\x' ':'
} >"$bdir/asm.dict"
{
    sed -n 's/^CFG_KEY([a-z_0-9]*, "\([^"]*\)".*/\1/p' "$root/sim/config_keys.def" |
        while IFS= read -r k; do
            printf '"%s: "\n"%s:"\n' "$k" "${k##*.}"
            printf '"%s:\\x0a  "\n' "${k%%.*}"
        done | sort -u
    printf '"%s"\n' 'include: ' v7 v5p KiB MiB GiB true false banked simple 4x4x4 '{' '}' '[' ']' \
        '&a' '*a' '!!str' '---' '"'
} >"$bdir/config.dict"
# JSON dictionary for report: keys compare_reports looks up, quotes escaped for libFuzzer.
printf '"%s"\n' '\"schema\": ' '\"tpusim.run/1\"' '\"units\": ' '\"name\": ' '\"util\": ' \
    '\"summary\": ' '\"roofline\": ' '\"bound_by\": ' '\\u00' 1e308 -0 true null >"$bdir/report.dict"
printf '"%s"\n' HloModule ENTRY ROOT '%' ' = ' 'f32[' 'bf16[' '{1,0}' ':T(8,128)' 'metadata={' \
    'replica_groups=' '<=' 'T(1,0)' 'dim_labels=' '->' 'window={size=' 'slice={[' 'calls=' \
    'to_apply=' 'condition=' 'body=' '/*' '\\"' >"$bdir/hlo.dict"
: >"$bdir/trace.dict"
printf '"%s"\n' TPUTRACE TEND >>"$bdir/trace.dict"

fail=0
npass=0
for n in "${names[@]}"; do
    bin=$bdir/fuzz_$n
    [ -x "$bin" ] || { say "no harness '$n' (expected trace, asm, config, report or sim)"; exit 2; }
    # fuzz_sim: every byte is a choice and longer inputs are longer programs (capped at 160
    # instructions), so start at full length; a pod of 8 chips takes up to ~0.1 s, ~2 s under
    # the sanitizers and coverage, and more on a loaded host.
    case $n in
    sim) opts=(-timeout=30 -max_len=2048 -len_control=0) ;;
    *) opts=(-timeout=5 -max_len=65536 -dict="$bdir/$n.dict") ;;
    esac
    log=$bdir/fuzz_$n.log
    say "running fuzz_$n for ${secs}s (log: $log)"
    # detect_leaks: a leak fails the run like a crash does.
    if ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
        "$bin" -max_total_time="$secs" "${opts[@]}" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$bdir/artifacts/$n-" "$corpus/$n" \
        >"$log" 2>&1; then
        execs=$(grep -m1 '^stat::number_of_executed_units' "$log" | awk '{print $2}')
        cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)
        say "fuzz_$n: ok, ${execs:-?} inputs, ${cov:-cov: ?}"
        npass=$((npass + 1))
    else
        fail=$((fail + 1))
        say "fuzz_$n: FAILED; last lines of $log:"
        grep -E 'ERROR|SUMMARY|deadly|Test unit written|timeout|leak|==[0-9]+==' "$log" | head -20 >&2 || true
        tail -5 "$log" >&2
        # What the harness itself said just before the crash (its own checks print a line and
        # abort, which libFuzzer reports only as a "deadly signal"), and the input, so a CI log
        # is enough to reproduce: echo BASE64 | base64 -d >crash; build-fuzz/fuzz_NAME crash
        grep -B4 -m1 -E '^==[0-9]+== ?ERROR|runtime error' "$log" | grep -vE '^#[0-9]+|^==' >&2 || true
        art=$(grep -Eo 'Test unit written to [^ ]+' "$log" | tail -1 | cut -d' ' -f5)
        if [ -n "$art" ] && [ -f "$art" ]; then
            say "fuzz_$n: input ($(wc -c <"$art") bytes, first 4 KiB, base64):"
            head -c 4096 "$art" | base64 -w 0 >&2
            echo >&2
        fi
    fi
done
echo "fuzz: $npass passed, $fail failed"
[ "$fail" -eq 0 ]
