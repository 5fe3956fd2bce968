#!/usr/bin/env bash
# e2e_validate.sh SOURCE_DIR TPUSIM_BIN WORKDIR - tools/validate.py (docs/validation.md) in CTest:
# its dry run lists every row of the public reference with a command, and the smallest row's
# generator command is accepted at one layer (the full table takes minutes: run it by hand).
# Prints "N passed, N failed".
set -u
. "$(dirname "$0")/lib/e2e.sh" "$@"

python3 "$src/tools/validate.py" --bin "$bin" --dry-run --out dry.md >dry.txt 2>&1 ||
    bad "validate.py --dry-run: $(cat dry.txt)"
for row in palm-540b maxtext-32b maxtext-128b maxtext-1024b maxtext-1160b; do
    grep -q "^| $row |" dry.md && ok || bad "row $row missing from the dry run"
done
cmd=$(grep '^| maxtext-32b |' dry.md | sed 's/.*`tpusim gen \([^;]*\) -o t.tpt;.*/\1/; s/--layers L/--layers 1/')
# shellcheck disable=SC2086
"$bin" gen $cmd -o t.tpt >gen.txt 2>&1 && ok || bad "32B row at one layer: $(cat gen.txt)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
