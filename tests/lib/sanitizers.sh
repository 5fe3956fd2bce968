# sanitizers.sh - sourced by end-to-end scripts that load libtpusim.so into python3.
# e2e_preload_sanitizers LIB: when LIB (libtpusim.so) is an ASan build, preload the sanitizer
# runtimes so that an uninstrumented python3 can load it (docs/python.md); Python's objects
# alive at exit are not leaks worth reporting.
e2e_preload_sanitizers() {
    # (no grep -q: an early exit would fail the pipe under pipefail)
    if nm -D "$1" 2>/dev/null | grep __asan >/dev/null; then
        local cc=${CC:-cc}
        export LD_PRELOAD="$($cc -print-file-name=libasan.so) $($cc -print-file-name=libubsan.so)"
        export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 # the last setting wins
        echo "note: sanitizer build: LD_PRELOAD=$LD_PRELOAD"
    fi
}
