#!/usr/bin/env bash
# e2e_embedding.sh SOURCE_DIR TPUSIM_BIN WORKDIR - `tpusim gen embedding` end to end: the
# DLRM-like lookup generates and replays on every preset with SparseCores (v4, v5p, v6e, v7),
# one chip and sharded over 8 chips (all-to-all over ICI), forward and training; the report
# lists the SparseCore unit in text, --json (traffic hbm, time class memory) and --csv, with
# its FLOPs and HBM bytes; a preset without SparseCores is refused with one stderr line and
# no output file. Prints "N passed, N failed".
set -u
. "$(dirname "$0")/lib/e2e.sh" "$@"

args="--tables 8 --rows 200000 --dim 64 --lookups 16 --batch 1024"
for p in v4 v5p v6e v7; do
    for mode in "" "--training"; do
        for dims in "" "2x2x2"; do
            # v6e is a 2-D torus: shard its 8 chips as 4x2
            d=$dims
            [ -n "$d" ] && [ "$p" = v6e ] && d=4x2
            set -- $args $mode
            [ -n "$d" ] && set -- "$@" --chips 8 -p ici.dims=$d
            if ! "$bin" gen embedding "$@" -c "$p" -o e.tpt 2>err.txt; then
                bad "gen embedding $* -c $p: $(cat err.txt)"
                continue
            fi
            ovr=()
            [ -n "$d" ] && ovr=(-p "ici.dims=$d")
            if "$bin" run -q -c "$p" "${ovr[@]}" --json e.json --csv e.csv e.tpt >out.txt 2>err.txt &&
                grep -q '^  sc0 ' <("$bin" run -c "$p" "${ovr[@]}" e.tpt) &&
                grep -q '^unit,sc0,sc,' e.csv &&
                python3 - e.json "$d" <<'PY'; then ok; else bad "run -c $p (gen embedding $*): $(cat err.txt)"; fi
import json, sys
doc = json.load(open(sys.argv[1]))
sc = [u for u in doc["units"] if u["kind"] == "sc"]
assert len(sc) == 1 and sc[0]["traffic"] == "hbm" and sc[0]["time_class"] == "memory", sc
assert sc[0]["flops"] > 0 and sc[0]["bytes"] > 0 and sc[0]["instructions"] > 0
assert doc["summary"]["hbm_bytes"] >= sc[0]["bytes"]
if sys.argv[2]:
    assert doc["summary"]["ici_bytes"] > 0
    assert any(r["name"] == "embedding/alltoall" for r in doc["regions"])
PY
        done
    done
done

# No SparseCores on v5e: one line naming the cause, no trace left behind.
rm -f out.tpt
if "$bin" gen embedding $args -c v5e -o out.tpt 2>err.txt; then
    bad "gen embedding on v5e succeeded"
elif [ "$(wc -l <err.txt)" -ne 1 ] || ! grep -q 'has no SparseCores (sc.count = 0)' err.txt; then
    bad "gen embedding on v5e: stderr '$(cat err.txt)'"
elif [ -e out.tpt ] || [ -e out.tpt.tmp ]; then
    bad "gen embedding on v5e left an output file"
else
    ok
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
