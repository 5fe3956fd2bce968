#!/usr/bin/env bash
# bootstrap.sh - set up a fresh Debian machine, build tpusim and run the demo or the tests.
#   bash tools/bootstrap.sh demo   install what is missing, build, simulate the sample trace
#                                  on the Ironwood (v7) preset and print its report
#   bash tools/bootstrap.sh test   install what is missing, build, run the whole test suite
#                                  (CTest), then again under AddressSanitizer + UBSan
set -euo pipefail
mode=${1:-demo}
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

need=(cmake make gcc g++ pkg-config libsystemc-dev zlib1g-dev libyaml-dev libjansson-dev)
# The tests' Python tools (sweep.py needs PyYAML, tpuplot.py matplotlib); without them those
# checks skip with a message. TPUSIM_NO_PLOTS=1 leaves matplotlib out (a large install).
[ "$mode" = test ] && need+=(libcmocka-dev python3 python3-yaml)
[ "$mode" = test ] && [ "${TPUSIM_NO_PLOTS:-0}" != 1 ] && need+=(python3-matplotlib)
missing=()
for p in "${need[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}" >&2
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build() { # build DIR [cmake args...]: quiet, but a failure shows the compiler's complaint
    local dir=$1; shift
    mkdir -p "$dir"
    if ! { cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" &&
        cmake --build "$dir" -j"$jobs"; } >"$dir/bootstrap-build.log" 2>&1; then
        echo "bootstrap: build in $dir failed; from $dir/bootstrap-build.log:" >&2
        grep -E 'error|warning|Error' "$dir/bootstrap-build.log" | head -30 >&2 || true
        tail -n 15 "$dir/bootstrap-build.log" >&2
        exit 1
    fi
}

case "$mode" in
demo)
    build "$root/build" -DTPUSIM_TESTS=OFF
    cd "$root" # relative paths: the report's first line reads as README.md shows it
    exec build/tpusim run -c configs/v7.yaml traces/sample.tpt
    ;;
test)
    # Warnings fail the CI build: the tree is -Wall -Wextra clean with gcc and clang.
    # TPUSIM_TESTS=ON explicitly: a demo before configured build/ without the tests and the
    # cache keeps that; --no-tests=error makes an empty suite a failure, never a pass.
    build "$root/build" -DTPUSIM_WERROR=ON -DTPUSIM_TESTS=ON
    (cd "$root/build" && ctest --output-on-failure --no-tests=error -j"$jobs")
    if [ "${TPUSIM_SKIP_SANITIZE:-0}" != 1 ]; then
        echo "bootstrap: test suite again under AddressSanitizer + UndefinedBehaviorSanitizer" >&2
        build "$root/build-asan" -DTPUSIM_SANITIZE=ON -DTPUSIM_TESTS=ON
        (cd "$root/build-asan" &&
            ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --no-tests=error -j"$jobs")
    fi
    ;;
*)
    echo "usage: bootstrap.sh demo|test" >&2
    exit 2
    ;;
esac
