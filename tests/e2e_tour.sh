#!/usr/bin/env bash
# e2e_tour.sh SOURCE_DIR TPUSIM_BIN WORKDIR - the README's tour works as written: README.md's
# tour block is tools/tour.sh's tour section line for line, and tools/tour.sh runs every
# command in order in a scratch directory with nothing but links to configs/, traces/,
# tools/, docs/ and the build directory of TPUSIM_BIN (so no file left by an earlier run can
# make a command pass). Its Python one-liner prints the CLI's figure. Prints "N passed, N failed".
. "$(dirname "$0")/lib/e2e.sh" "$@"
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
e2e_preload_sanitizers "$(dirname "$bin")/libtpusim.so"

if $py - "$src/README.md" "$src/tools/tour.sh" >diff.txt 2>&1 <<'PY'; then ok; else bad "README tour and tools/tour.sh differ: $(head -c 600 diff.txt)"; fi
import difflib, sys
readme, tour = open(sys.argv[1]).read(), open(sys.argv[2]).read()
i = readme.index("```sh\n", readme.index("A tour of the command line")) + 6
block = readme[i:readme.index("```", i)].splitlines()
sec = tour[tour.index("# tour:begin\n") + 13:tour.index("# tour:end")].splitlines()
if block != sec:
    print("\n".join(difflib.unified_diff(sec, block, "tools/tour.sh", "README.md", lineterm="")))
    sys.exit(1)
PY

if bash "$src/tools/tour.sh" "$(dirname "$bin")" "$work/tour" >tour.txt 2>&1; then
    ok
else
    bad "tools/tour.sh: $(tail -n 12 tour.txt)"
fi
cli=$($py -c "import json,sys; print(json.load(open(sys.argv[1]))['summary']['time_s'])" \
    "$work/tour/base.json" 2>&1)
if [ -n "$cli" ] && [ "$(tail -n 1 "$work/tour/tour.log")" = "$cli" ]; then
    ok
else
    bad "the tour's Python one-liner printed '$(tail -n 1 "$work/tour/tour.log")', the CLI's base.json has '$cli'"
fi
for f in base.json what-if.json step.tpt scaling.json sweep.csv roofline.png scaling.pdf; do
    [ -s "$work/tour/$f" ] && ok || bad "the tour did not make $f"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
