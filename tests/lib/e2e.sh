# e2e.sh - the set-up shared by the end-to-end scripts, sourced first thing as
#   . "$(dirname "$0")/lib/e2e.sh" "$@"        (arguments: SOURCE_DIR TPUSIM_BIN WORKDIR)
# It makes src and bin absolute, points TPUSIM_PRESETS at the source tree's configs unless
# set, enters a fresh WORKDIR, and defines the pass/fail counters with ok and bad.
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

. "$(dirname "${BASH_SOURCE[0]}")/sanitizers.sh"
