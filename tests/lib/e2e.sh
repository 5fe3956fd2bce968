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

# e2e_preload_sanitizers LIB: when LIB (libtpusim.so) is an ASan build, preload the sanitizer
# runtimes so that an uninstrumented python3 can load it (docs/python.md); Python's objects
# alive at exit are not leaks worth reporting.
e2e_preload_sanitizers() {
    if nm -D "$1" 2>/dev/null | grep -q __asan; then
        local cc=${CC:-cc}
        export LD_PRELOAD="$($cc -print-file-name=libasan.so) $($cc -print-file-name=libubsan.so)"
        export ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
        echo "note: sanitizer build: LD_PRELOAD=$LD_PRELOAD"
    fi
}
