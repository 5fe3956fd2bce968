#!/usr/bin/env bash
# e2e_python.sh SOURCE_DIR TPUSIM_BIN WORKDIR - the Python API (tools/python/tpusim over
# libtpusim.so, docs/python.md): run, gen, pod and config give the same documents as the
# command line's --json, errors raise with the CLI's one-line message, many runs share one
# process, the docs' what-if study runs, and from a `cmake --install` prefix (PYTHONPATH as
# the docs say, TPUSIM_PRESETS unset, elsewhere than the source tree) the must-show one-liner
# prints the CLI's figure. An ASan build's library is loaded with the sanitizer runtimes
# preloaded (docs/python.md). Prints "N passed, N failed".
. "$(dirname "$0")/lib/e2e.sh" "$@"
ok() { pass=$((pass + 1)); echo "ok: $*"; }
build=$(dirname "$bin")
lib=$build/libtpusim.so
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
if [ ! -e "$lib" ]; then
    echo "FAIL: $lib not built"
    echo "0 passed, 1 failed"
    exit 1
fi
e2e_preload_sanitizers "$lib"

# ---- in the source tree: the same documents as the CLI ----
export TPUSIM_PRESETS=$src/configs
"$bin" run -q -c v7 --json cli-run.json "$src/traces/sample.tpt"
"$bin" run -q -c v7 -p hbm.gbps_per_pin=9.6 -p dma.engines=4 --json cli-ovr.json \
    "$src/traces/sample.tpt"
"$bin" gen gemm -c v7 --m 512 --n 1024 --k 256 -o cli-gemm.tpt
"$bin" pod -q -c v7 "$src/traces/llm-tiny-train.tpt" --scaling 4,64 --json cli-pod.json
"$bin" run -q -c v7 --json bad.json nope.tpt 2>cli-err.txt
if TPUSIM_LIB=$lib PYTHONPATH=$src/tools/python $py - "$src" "$bin" >api.txt 2>&1 <<'PY'; then
import json, os, subprocess, sys
import tpusim
src = sys.argv[1]
def same(name, a, b):
    # Provenance records how each document was made: the command line (none for the API),
    # the start and the wall time differ by nature; everything else must match.
    a, b = dict(a), dict(b)
    for d in (a, b):
        if "provenance" in d:
            d["provenance"] = {k: v for k, v in d["provenance"].items()
                               if k not in ("command", "started_utc", "wall_s")}
    if a != b:
        keys = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
        raise SystemExit("%s: API and CLI documents differ in %s" % (name, sorted(keys)[:5]))
    print("same:", name)
sample = os.path.join(src, "traces/sample.tpt")
same("run", tpusim.run("v7", sample), json.load(open("cli-run.json")))
same("run with overrides",
     tpusim.run("v7", sample, overrides={"hbm.gbps_per_pin": 9.6, "dma.engines": 4}),
     json.load(open("cli-ovr.json")))
g = tpusim.gen("gemm", "v7", out="api-gemm.tpt", m=512, n=1024, k=256)
def disasm(path):  # the instructions; the .note line records each command as typed
    out = subprocess.run([sys.argv[2], "disasm", path], capture_output=True, text=True, check=True)
    return [ln for ln in out.stdout.splitlines() if not ln.startswith(".note")]
assert g == "api-gemm.tpt" and disasm(g) == disasm("cli-gemm.tpt"), "gen differs"
print("same: gen")
t = tpusim.gen("gemm", "v7", m=256, n=256, k=256)
assert os.path.exists(t) and tpusim.run("v7", t)["summary"]["flops"] == 2 * 256 ** 3
os.unlink(t)
same("pod", tpusim.pod("v7", os.path.join(src, "traces/llm-tiny-train.tpt"),
                       scaling=[4, 64]), json.load(open("cli-pod.json")))
c = tpusim.config("v7")
assert c["hbm.model"] == "banked" and c["source"].endswith("v7.yaml"), c["source"]
assert tpusim.config("v7", overrides={"mxu.rows": 256})["mxu.rows"] == 256
assert tpusim.config()["chip.name"] == "generic"
print("ok: config")
cli_err = open("cli-err.txt").read().strip()
try:
    tpusim.run("v7", "nope.tpt")
    raise SystemExit("a missing trace did not raise")
except tpusim.InputError as e:
    assert "tpusim: " + str(e) == cli_err, (str(e), cli_err)
for call, frag in [(lambda: tpusim.run("v7", sample, {"hbm.chanels": 4}), "did you mean"),
                   (lambda: tpusim.gen("gemm", "v7", mm=3), "unknown option '--mm'"),
                   (lambda: tpusim.pod("v7", sample, chips=0), "--chips '0'"),
                   (lambda: tpusim.config("no-such-preset"), "no-such-preset")]:
    try:
        call()
        raise SystemExit("no error for %s" % frag)
    except tpusim.Error as e:
        assert frag in str(e) and "\n" not in str(e), str(e)
print("ok: errors")
t0 = tpusim.run("v7", sample)["summary"]["time_ps"]
for _ in range(20):  # one process, many simulators in turn
    assert tpusim.run("v7", sample)["summary"]["time_ps"] == t0
print("ok: 20 runs in one process")
PY
    ok "API documents equal the CLI's (run, overrides, gen, pod), config, errors, repeated runs"
else
    bad "API in the source tree: $(tail -n 5 api.txt)"
fi

# ---- the docs' what-if study, as written, from the repository root ----
$py - "$src/docs/python.md" >example.py <<'PY'
import re, sys
doc = open(sys.argv[1]).read()
print(re.search(r"## A what-if study.*?```python\n(.*?)```", doc, re.S).group(1))
PY
if (cd "$src" && TPUSIM_LIB=$lib PYTHONPATH=$src/tools/python $py "$work/example.py") \
    >example.txt 2>&1 && grep -q 'decode      9.6' example.txt && grep -q '256 chips' example.txt; then
    ok "docs/python.md what-if study runs ($(wc -l <example.py) lines)"
else
    bad "docs/python.md what-if study: $(tail -n 3 example.txt)"
fi

# ---- from an installed prefix: the must-show one-liner ----
prefix=$work/inst
if cmake --install "$build" --prefix "$prefix" >install.log 2>&1; then
    ok "cmake --install"
else
    bad "cmake --install: $(tail -n 3 install.log)"
fi
for f in lib/libtpusim.so include/tpusim/api.h share/tpusim/tools/python/tpusim/__init__.py \
    share/tpusim/tools/sweep.py share/tpusim/tools/tpuplot.py share/tpusim/tools/tpulib.py \
    share/tpusim/tools/sweeps/hbm-speed.yaml share/tpusim/traces/sample.tpt; do
    if [ -e "$prefix/$f" ]; then ok "installed $f"; else bad "not installed: $f"; fi
done
cli=$("$bin" run -q -c v7 --json - "$src/traces/sample.tpt" |
    $py -c "import json,sys; print(json.load(sys.stdin)['summary']['time_s'])")
unset TPUSIM_PRESETS TPUSIM_LIB
mkdir -p elsewhere
# The README's one-liner, from the source tree (traces/sample.tpt relative) ...
got=$(cd "$src" && PYTHONPATH=$prefix/share/tpusim/tools/python $py -c \
    "import tpusim; r = tpusim.run('v7', 'traces/sample.tpt'); print(r['summary']['time_s'])" 2>&1)
if [ "$got" = "$cli" ]; then ok "installed one-liner prints the CLI's $cli"; else bad "installed one-liner: '$got', CLI: '$cli'"; fi
# ... and from a directory without configs/: presets come from PREFIX/share/tpusim/configs.
got=$(cd elsewhere && PYTHONPATH=$prefix/share/tpusim/tools/python $py -c "
import tpusim
assert tpusim.library_path().startswith('$prefix/'), tpusim.library_path()
r = tpusim.run('v7', '$prefix/share/tpusim/traces/sample.tpt'); print(r['summary']['time_s'])" 2>&1)
if [ "$got" = "$cli" ]; then ok "installed module outside the tree loads PREFIX/lib and finds the presets"; else bad "installed, outside the tree: '$got', CLI: '$cli'"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
