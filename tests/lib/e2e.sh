# e2e.sh - the set-up shared by the end-to-end scripts, sourced first thing as
#   . "$(dirname "$0")/lib/e2e.sh" "$@"        (arguments: SOURCE_DIR TPUSIM_BIN WORKDIR)
# It makes src and bin absolute, points TPUSIM_PRESETS at the source tree's configs unless
# set, enters a fresh WORKDIR, and defines the pass/fail counters with ok and bad, and
# expect_fail for a command that must fail with one clear line.
e2e_me=$(basename "$0")
src=${1:?usage: $e2e_me SOURCE_DIR TPUSIM_BIN WORKDIR}
bin=${2:?usage: $e2e_me SOURCE_DIR TPUSIM_BIN WORKDIR}
work=${3:?usage: $e2e_me SOURCE_DIR TPUSIM_BIN WORKDIR}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
case $src in /*) ;; *) src=$PWD/$src ;; esac
export TPUSIM_PRESETS=${TPUSIM_PRESETS:-$src/configs}
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*"
}

# expect_fail NAME 'REGEX;REGEX...' 'OUTPUT FILES...' -- COMMAND...
# The command must fail cleanly: exit code non-zero and below 128 (no signal), stderr exactly
# one line starting "tpusim: " (or "tpusim CMD: ") and a reason, holding every REGEX
# (extended), and none of the OUTPUT FILES nor a temporary OUTPUT.tmp* left behind.
# E2E_VERBOSE=1 shows every message.
expect_fail() {
    local name=$1 facts=$2 outs=$3
    shift 4
    rm -f $outs
    "$@" >out.txt 2>err.txt
    local rc=$? lines first why=""
    lines=$(wc -l <err.txt)
    first=$(head -c 2000 err.txt)
    [ "$rc" -eq 0 ] && why+=" exit code 0;"
    [ "$rc" -ge 128 ] && why+=" killed by signal $((rc - 128));"
    [ "$lines" -ne 1 ] && why+=" stderr has $lines lines, expected 1;"
    grep -qE '^tpusim( [a-z]+)?: .' err.txt || why+=" stderr does not start with 'tpusim: ' and a reason;"
    local IFS=';'
    for re in $facts; do
        grep -qE -- "$re" err.txt || why+=" stderr lacks /$re/;"
    done
    IFS=' '
    for o in $outs; do
        [ -e "$o" ] && why+=" output $o left behind;"
        compgen -G "$o.tmp*" >/dev/null && why+=" a temporary $o.tmp* left behind;"
    done
    if [ -n "$why" ]; then
        bad "$name:$why"
        echo "    command: $*"
        echo "    exit $rc, stderr: $first"
    else
        ok
        [ -n "${E2E_VERBOSE:-}" ] && echo "ok: $name: exit $rc: $first"
    fi
}

. "$(dirname "${BASH_SOURCE[0]}")/sanitizers.sh"
