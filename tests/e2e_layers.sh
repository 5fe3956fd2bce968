#!/usr/bin/env bash
# e2e_layers.sh - the layering rules, checked on the sources: the library targets (isa/, the
# sim/ engine with sim/units/, sim/gen/, sim/out/) never print to the terminal (printf, puts,
# putchar, perror, fprintf/fputs/fputc/fwrite on stdout or stderr, std::cout/cerr) and never
# exit or abort (exit, _exit, abort, quick_exit): only sim/cli/ does; writers that take a
# FILE * are fine. And no library source includes a header of a layer above or beside it:
#   isa/ <- sim/ + sim/units/ <- sim/gen/, sim/out/ <- sim/serve/ <- sim/cli/ <- sim/api/
# sim/api/ (libtpusim.so, loaded into other programs such as python3) must not print either.
# Comments are ignored. With LAYERS_SELFTEST=1 it also proves the check can fail: it plants
# a printf in a copy of sim/core.c and a cli.h include in a copy of sim/gen/gen.c.
# Usage: tests/e2e_layers.sh SOURCE_DIR TPUSIM_BIN WORKDIR
. "$(dirname "$0")/lib/e2e.sh" "$@"

# Source text with comments and string literals blanked, line numbers kept.
# strip_all ROOT FILE...: copies of the files under stripped/ROOT with comments blanked and
# string literals emptied (line numbers kept), made by one Python process for all files.
strip_all() {
    python3 - "$@" <<'PY'
import os, re, sys
root = sys.argv[1]
def blank(m):
    t = m.group(0)
    if t.startswith('"'):
        return '""'
    return re.sub(r"[^\n]", " ", t)
for f in sys.argv[2:]:
    s = open(os.path.join(root, f), encoding="utf-8", errors="replace").read()
    out = os.path.join("stripped", root.strip("/").replace("/", "_"), f)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as o:
        o.write(re.sub(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"', blank, s, flags=re.S))
PY
}
strip() { # strip ROOT FILE: the stripped copy made by strip_all
    cat "stripped/$(printf %s "$1" | sed 's#^/##; s#/$##; s#/#_#g')/$2"
}

print_re='(^|[^A-Za-z0-9_.>])(printf|vprintf|puts|putchar|perror|exit|_exit|_Exit|quick_exit|abort)[[:space:]]*\('
stream_re='(^|[^A-Za-z0-9_])(fprintf|vfprintf|fputs|fputc|putc|fwrite)[[:space:]]*\([^;]*\b(stdout|stderr)\b'
cxx_re='std::(cout|cerr|clog)|(^|[^A-Za-z0-9_])(cout|cerr)[[:space:]]*<<'

# check_print ROOT FILE...: report each terminal print or exit in FILE (paths relative to ROOT).
check_print() {
    local root=$1 f hits
    shift
    for f in "$@"; do
        hits=$(strip "$root" "$f" | grep -nE "$print_re|$stream_re|$cxx_re" || true)
        if [ -n "$hits" ]; then
            while IFS= read -r h; do bad "$f:${h%%:*}: prints or exits in a library: ${h#*:}"; done <<<"$hits"
        else
            ok
        fi
    done
}

# Layer of a directory (relative to the root), and the directories each layer may include from.
allowed_dirs() {
    case $1 in
    isa) echo "isa" ;;
    sim | sim/units) echo "isa sim sim/units" ;;
    sim/gen) echo "isa sim sim/units sim/gen" ;;
    sim/out) echo "isa sim sim/units sim/out" ;;
    sim/serve) echo "isa sim sim/units sim/gen sim/out sim/serve" ;;
    sim/api) echo "isa sim sim/units sim/gen sim/out sim/serve sim/cli sim/api" ;;
    esac
}

# check_includes ROOT FILE...: every #include "x" of FILE must exist in a directory its layer
# may use (system headers <...> are not checked).
check_includes() {
    local root=$1 f dir inc d found
    shift
    for f in "$@"; do
        dir=$(dirname "$f")
        local okf=1
        # from the raw text: strip blanks string literals, include names among them
        while IFS= read -r inc; do
            found=0
            for d in $(allowed_dirs "$dir"); do
                [ -e "$root/$d/$inc" ] && found=1 && break
            done
            if [ $found = 0 ]; then
                okf=0
                bad "$f: includes \"$inc\", not a header of its layer ($dir) or below"
            fi
        done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/$f" |
            sed -E 's/^[^"]*"([^"]*)".*$/\1/')
        [ $okf = 1 ] && ok
    done
}

# The library sources of a tree, relative to it.
lib_sources() {
    (cd "$1" && ls isa/*.[ch] sim/*.[ch] sim/*.cpp sim/units/*.[ch] sim/gen/*.[ch] sim/out/*.[ch] sim/serve/*.[ch] \
        sim/api/*.[ch] 2>/dev/null)
}

mapfile -t libs < <(lib_sources "$src")
strip_all "$src" "${libs[@]}" sim/cli/main.c
[ ${#libs[@]} -gt 20 ] || bad "found only ${#libs[@]} library sources under $src"
check_print "$src" "${libs[@]}"
check_includes "$src" "${libs[@]}"

# The CLI is where printing lives: the check must see it there (else it matches nothing).
n=$(strip "$src" sim/cli/main.c | grep -cE "$print_re|$stream_re" || true)
[ "$n" -gt 0 ] && ok || bad "the print pattern finds nothing in sim/cli/main.c"

if [ "${LAYERS_SELFTEST:-1}" = 1 ]; then
    # A copy of the tree with one planted violation each: the checks must report them.
    mkdir -p tree
    (cd "$src" && tar cf - isa sim) | (cd tree && tar xf -)
    printf '\nstatic void planted(void) { printf("x\\n"); }\n' >>tree/sim/core.c
    sed -i '0,/#include "gen.h"/s//#include "gen.h"\n#include "cli.h"/' tree/sim/gen/gen.c
    printf '\nvoid planted_exit(void) { exit(1); }\n' >>tree/sim/units/vmem.c
    strip_all tree sim/core.c sim/units/vmem.c
    before=$fail
    check_print tree sim/core.c sim/units/vmem.c >planted.out
    check_includes tree sim/gen/gen.c >>planted.out
    fail=$before
    for want in "sim/core.c:.*prints or exits" "sim/units/vmem.c:.*prints or exits" \
        "sim/gen/gen.c: includes \"cli.h\""; do
        grep -qE "$want" planted.out && ok || bad "planted violation not reported: $want"
    done
fi

echo "e2e_layers: $pass passed, $fail failed"
[ $fail = 0 ]
