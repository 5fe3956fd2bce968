#!/usr/bin/env bash
# e2e_install.sh SOURCE_DIR TPUSIM_BIN WORKDIR - `cmake --install` of the build that made
# TPUSIM_BIN into a fresh prefix gives a working tool and trace library: bin/tpusim finds the
# installed presets by name with TPUSIM_PRESETS unset and no ./configs (it looks in
# BINDIR/../share/tpusim/configs, and in its models/ for gen --list-models), and a program
# built only against include/tpusim and lib/libtpuisa.a writes a trace that the installed
# tpusim reads. Prints "N passed, N failed".
set -u
src=${1:?usage: e2e_install.sh SOURCE_DIR TPUSIM_BIN WORKDIR}
bin=${2:?usage: e2e_install.sh SOURCE_DIR TPUSIM_BIN WORKDIR}
work=${3:?usage: e2e_install.sh SOURCE_DIR TPUSIM_BIN WORKDIR}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
unset TPUSIM_PRESETS

pass=0
fail=0
check() { # check NAME COMMAND...: the command must succeed
    local name=$1
    shift
    if "$@" >out.txt 2>err.txt; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $name: $(head -c 400 err.txt)"
    fi
}

prefix=$work/inst
if ! cmake --install "$(dirname "$bin")" --prefix "$prefix" >install.log 2>&1; then
    echo "FAIL: cmake --install: $(tail -3 install.log)"
    echo "0 passed, 1 failed"
    exit 1
fi
for f in bin/tpusim lib/libtpuisa.a include/tpusim/isa.h include/tpusim/isa_ops.def \
    include/tpusim/trace.h include/tpusim/asm.h include/tpusim/err.h; do
    check "installed $f" test -e "$prefix/$f"
done
for p in "$src"/configs/*.yaml; do
    check "installed preset $(basename "$p")" cmp "$p" "$prefix/share/tpusim/configs/$(basename "$p")"
done

for p in "$src"/configs/models/*.yaml; do
    check "installed model preset $(basename "$p")" \
        cmp "$p" "$prefix/share/tpusim/configs/models/$(basename "$p")"
done

# Presets by name from a directory without configs/, TPUSIM_PRESETS unset.
check "installed tpusim gen --list-models" "$prefix/bin/tpusim" gen --list-models
grep -q '^llama3-8b ' out.txt || {
    fail=$((fail + 1))
    echo "FAIL: installed gen --list-models does not list llama3-8b"
}
check "installed tpusim config v7" "$prefix/bin/tpusim" config v7
grep -q 'Ironwood' out.txt || {
    fail=$((fail + 1))
    echo "FAIL: config v7 does not show the v7 preset"
}
check "installed tpusim config v5e" "$prefix/bin/tpusim" config v5e

# A client of the installed trace library.
cat >client.c <<'C'
#include <stdio.h>
#include <string.h>
#include <tpusim/trace.h>
int main(int argc, char **argv)
{
    trace_writer *w;
    err e;
    isa_insn in;
    memset(&in, 0, sizeof in);
    in.op = ISA_OP_NOP;
    if (argc != 2 || trace_writer_open(&w, argv[1], "client", &e))
        return 1;
    for (int i = 0; i < 3; i++)
        if (trace_writer_put(w, &in, &e))
            return 1;
    if (trace_writer_close(w, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    return 0;
}
C
cc=${CC:-cc}
san=()
# A sanitizer build (TPUSIM_SANITIZE) installs an instrumented library: link the runtimes.
nm "$prefix/lib/libtpuisa.a" 2>/dev/null | grep -q __asan && san=(-fsanitize=address,undefined)
check "client builds against include/tpusim and libtpuisa.a" \
    "$cc" -std=c17 -Wall -Wextra -Werror "${san[@]}" -I"$prefix/include" client.c -o client \
    "$prefix/lib/libtpuisa.a" -lz
check "client writes a trace" ./client c.tpt
check "installed tpusim reads the client's trace" "$prefix/bin/tpusim" disasm c.tpt
[ "$(grep -c '^nop' out.txt 2>/dev/null)" = 3 ] || {
    fail=$((fail + 1))
    echo "FAIL: disasm of the client's trace does not show 3 nops: $(head -5 out.txt)"
}
check "installed tpusim runs it on a preset" "$prefix/bin/tpusim" run -q -c v7 --json r.json c.tpt

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
