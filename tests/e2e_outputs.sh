#!/usr/bin/env bash
# e2e_outputs.sh - research outputs end to end: deterministic --json, --csv, `tpusim report`,
# --timeline, tools/sweep.py (local pool, failures, Slurm array + merge) and the plot scripts.
# Usage: tests/e2e_outputs.sh SOURCE_DIR TPUSIM_BIN WORKDIR
# Plots are skipped (with a message, still exit 0) when matplotlib is not installed; CLI
# features that are not built in (timeline, report, pod --json) are skipped the same way.
set -euo pipefail
src=$1 bin=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fails=0 passes=0 skips=0
ok() { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }
skip() { skips=$((skips + 1)); echo "skip: $*"; }
# Debian's python has python3-yaml and python3-matplotlib; a pyenv/venv python3 first on PATH
# may not (the tools re-run themselves under /usr/bin/python3 then, see tools/tpulib.py).
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
# The keys a section of docs/outputs.md documents: the backticked names in the first cell of
# each table row, prefixed by the context the last matching line opened ("`summary`:" ...).
cat >dockeys.py <<'PY'
import re


def doc_keys(sec, contexts):
    documented, prefix = set(), None
    for line in sec.splitlines():
        for start, p in contexts.items():
            if line.startswith(start):
                prefix = p
        m = re.match(r"\|\s*((?:`[^`]+`(?:,\s*)?)+)\s*\|", line)
        if m and prefix is not None:
            documented |= {prefix + k for k in re.findall(r"`([^`]+)`", m.group(1))}
    return documented
PY

# ---- a small trace that fits the default config and whose time depends on the clock ----
trace=$src/traces/elementwise-exp-4m.tpt
if [ ! -f "$trace" ]; then
    echo "e2e_outputs: $trace missing (made by traces/gen-samples.sh)"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "trace: $trace"

# ---- --json is deterministic; --csv has a header and rows ----
"$bin" run -q --json a.json --csv a.csv "$trace"
"$bin" run -q --json a2.json "$trace"
# All but the provenance's wall-clock lines and command line (the runs write other files).
nowall() { grep -v -E '^ *"(started_utc|wall_s|command)": |^# (started_utc|wall_s|command): ' "$1"; }
if cmp -s <(nowall a.json) <(nowall a2.json); then ok "--json twice is byte-identical but the wall-clock lines"; else bad "--json differs between runs"; fi
if grep -v '^#' a.csv | head -n 1 | grep -q '^row,name,kind,' && [ "$(wc -l <a.csv)" -ge 3 ]; then
    ok "--csv has a header and rows"
else
    bad "--csv: $(head -n 2 a.csv | tr '\n' '|')"
fi
# docs/outputs.md documents exactly the keys --json emits (counters aside) and the CSV header.
if $py - "$src/docs/outputs.md" a.json a.csv <<'PY'; then ok "docs/outputs.md matches the --json keys and the --csv header"; else bad "docs/outputs.md and the emitted keys differ"; fi
import json, re, sys
from dockeys import doc_keys
doc, rep, csvf = open(sys.argv[1]).read(), json.load(open(sys.argv[2])), open(sys.argv[3])
sec = doc[doc.index("## `tpusim run --json`"):doc.index("## `tpusim run --csv`")]
contexts = {"Top level:": "", "`summary`:": "summary.", "`roofline`:": "roofline.",
            "`time_split_ps`": "time_split_ps.", "`units[]`": "units[].", "`regions[]`": "regions[].",
            "`provenance`:": "provenance."}
documented = doc_keys(sec, contexts)
emitted = set()
def walk(o, path):
    if path.count(".") == 1 and not path.endswith("[]."):
        emitted.add(path[:-1])  # top-level keys, objects and arrays included
    leaves = ("counters.", "summary.peak_tflops.", "provenance.config_values.", "provenance.topology.",
              "provenance.trace_topology.")  # documented in prose
    if isinstance(o, dict) and path not in leaves:
        for k, v in o.items():
            walk(v, path + k + ".")
    elif isinstance(o, list) and path in ("units.", "regions."):
        for item in o:
            walk(item, path[:-1] + "[].")
    else:
        emitted.add(path[:-1])
walk(rep, "")
assert rep["units"] and rep["regions"], "the trace has no units or regions to check"
missing, undocumented = documented - emitted, emitted - documented
assert not missing, "documented but not emitted: %s" % sorted(missing)
assert not undocumented, "emitted but not documented: %s" % sorted(undocumented)
header = re.search(r"```\n(row,[^\n]*)\n```", doc).group(1)
line = csvf.readline()
while line.startswith("#"):  # the provenance lines
    line = csvf.readline()
assert line.strip() == header, "CSV header differs from docs/outputs.md"
print("%d documented keys checked" % len(documented))
PY
"$bin" run -q -p chip.clock_ghz=0.5 --json b.json "$trace"

# ---- an int8-only machine: the text report names the peaks it has, not "bf16 0.0"
"$bin" run -c v5e -p mxu.rate_bf16=0 -p mxu.rate_fp32=0 -p mxu.rate_int4=0 --json i8.json "$trace" >i8.txt
if grep -q 'peak int8 393.2 TFLOP/s)' i8.txt && ! grep -q 'bf16 0.0' i8.txt &&
    grep -q '"int8": 393' i8.json; then
    ok "int8-only config: peak int8 in the report and in summary.peak_tflops"
else
    bad "int8-only peak: $(grep achieved i8.txt)"
fi

# ---- provenance: overrides, config as given, hash, topology, trace note, command ----
"$bin" run -q -c v7 -p chip.clock_ghz=1.5 -p 'chip.name=a, b' --json pv1.json --csv pv1.csv "$trace"
"$bin" run -q -c "$src/configs/v7.yaml" --json pv2.json "$trace"
"$bin" gen gemm -c v7 -p ici.dims=2x2 -p ici.wrap=none --m 256 --n 256 --k 256 -o pvg.tpt
"$bin" run -q -c v7 -p ici.dims=2x2 -p ici.wrap=none --json pv3.json pvg.tpt
if $py - pv1.json pv2.json pv3.json pv1.csv "$src/configs/v7.yaml" <<'PY'; then ok "provenance records overrides, config, hash, topology, trace note and command"; else bad "provenance"; fi
import json, sys
a, b, c = (json.load(open(p))["provenance"] for p in sys.argv[1:4])
ja = json.load(open(sys.argv[1]))
assert ja["config"] == "v7" and ja["config_path"] == sys.argv[5], (ja["config"], ja["config_path"])
assert a["overrides"] == ["chip.clock_ghz=1.5", "chip.name=a, b"], a["overrides"]
assert b["overrides"] == [] and b["config"] == sys.argv[5]
assert a["config_hash"] != b["config_hash"] and b["config_hash"].startswith("fnv1a64:")
assert c["config_hash"] != b["config_hash"]
assert a["config_values"]["chip.clock_ghz"] == "1.5" and b["config_values"]["chip.clock_ghz"] == "2.2"
assert a["topology"] == {"ici_dims": "4x4x4", "ici_wrap": "xyz"}, a["topology"]
assert c["topology"] == {"ici_dims": "2x2", "ici_wrap": ""}, c["topology"]
assert c["trace_note"].startswith("tpusim gen gemm -c v7"), c["trace_note"]
assert c["trace_topology"] == {"chips": 1, "ici_dims": "2x2", "ici_wrap": ""}, c["trace_topology"]
assert a["command"].startswith("tpusim run -q -c v7 -p chip.clock_ghz=1.5 -p 'chip.name=a, b' --json pv1.json")
assert a["version"] and a["revision"] and a["started_utc"].endswith("Z") and a["wall_s"] >= 0
head = [l for l in open(sys.argv[4]) if l.startswith("#")]
assert "# override: chip.clock_ghz=1.5\n" in head and "# config: v7\n" in head, head
assert any(l.startswith("# config_hash: " + a["config_hash"]) for l in head)
PY
# The two runs with different overrides: `tpusim report` lists them first.
if "$bin" report pv1.json pv2.json >pvr.txt 2>&1 && grep -q '^-p overrides .*chip.clock_ghz=1.5' pvr.txt &&
    grep -q '^  chip.clock_ghz .* 1.5 .* 2.2' pvr.txt; then
    ok "report lists the differing overrides and config keys"
else
    bad "report of pv1/pv2: $(head -20 pvr.txt)"
fi
compgen -G "./*.tmp*" >/dev/null && bad "a temporary (.tmp.*) file was left behind" || ok "no temporaries left"

# ---- tpusim report ----
if "$bin" report --help >/dev/null 2>&1; then
    if "$bin" report a.json b.json --csv cmp.csv >report.txt 2>report.err &&
        grep -q 'B/A' report.txt && grep -q '^TFLOP/s' report.txt && grep -q '^metric,' cmp.csv; then
        ok "tpusim report a.json b.json"
    else
        bad "tpusim report: $(cat report.err)"
    fi
    # Half the clock: the run takes longer, so B/A of time is above 1.
    ratio=$(awk '/^time \(us\)/ {print $NF}' report.txt)
    if awk -v r="$ratio" 'BEGIN { exit !(r > 1.0) }'; then ok "report ratio B/A of time = $ratio"; else bad "report time ratio '$ratio'"; fi
    # A run and a pod estimate side by side: the pod's chips and the run's regions align.
    "$bin" pod -q -c v7 --chips 16 --json pod.json "$src/traces/llm-tiny-train.tpt"
    "$bin" run -q -c v7 --json run7.json "$src/traces/llm-tiny-train.tpt"
    if "$bin" report run7.json pod.json >mixed.txt 2>mixed.err &&
        grep -q '^chips .* 16' mixed.txt && grep -q '^region L0/fwd/attn (us)' mixed.txt &&
        grep -q '^kind .*tpusim.pod/1' mixed.txt; then
        ok "tpusim report of a run and a pod report"
    else
        bad "tpusim report run7.json pod.json: $(cat mixed.err) $(head -20 mixed.txt)"
    fi
    # Two pod what-ifs side by side: the override and the key it changed come first.
    "$bin" pod -q -c v7 --chips 64 -p ici.link_gbs=200 --json pod2.json "$src/traces/llm-tiny-train.tpt"
    "$bin" pod -q -c v7 --chips 64 --json pod1.json "$src/traces/llm-tiny-train.tpt"
    if "$bin" report pod1.json pod2.json >pods.txt 2>pods.err &&
        grep -q '^-p overrides .* ici.link_gbs=200' pods.txt && grep -q '^  ici.link_gbs ' pods.txt &&
        awk '/^time \(us\)/ { exit !($NF < 1.0) }' pods.txt; then
        ok "tpusim report of two pod reports: overrides first, faster links take less time"
    else
        bad "tpusim report pod1.json pod2.json: $(cat pods.err) $(head -12 pods.txt)"
    fi
    echo '{"schema":"tpusim.run/1"}' >broken.json
    if "$bin" report a.json broken.json >/dev/null 2>err.txt; then
        bad "report accepted a document without keys"
    elif grep -q "broken.json: missing key" err.txt; then
        ok "report names the file and the missing key"
    else
        bad "report error: $(cat err.txt)"
    fi
else
    skip "'tpusim report' is not built in"
fi

# ---- --timeline ----
have_timeline=0
if "$bin" run --help 2>/dev/null | grep -q -- '--timeline'; then
    have_timeline=1
    "$bin" run -q --timeline tl.json "$trace"
    # A trace with ICI traffic and regions: every track kind and counter must appear.
    tl_trace=$src/traces/llm-tiny-train.tpt
    "$bin" run -q -c v7 --timeline tl_full.json "$tl_trace"
    "$bin" run -q -c v7 --timeline tl_off.json --timeline-merge-gap off "$tl_trace"
    "$bin" run -q -c v7 --timeline tl_win.json --timeline-window 100us:200us "$tl_trace"
    cat >tlcheck.py <<'PY'
import json, sys
def check(path):
    """Well-formed trace-event JSON as Perfetto and chrome://tracing read it."""
    d = json.load(open(path))
    ev = d["traceEvents"]
    threads, procs = {}, set()
    for e in ev:
        assert all(k in e for k in ("ph", "pid", "name")), e
        # trace viewers reserve pid 0 and tid 0
        assert e["pid"] >= 1 and e.get("tid", 1) >= 1, "pid/tid 0: %s" % e
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name", "thread_sort_index"), e
            if e["name"] == "thread_name":
                threads[(e["pid"], e["tid"])] = e["args"]["name"]
            elif e["name"] == "process_name":
                procs.add(e["pid"])
        elif e["ph"] == "X":
            assert all(k in e for k in ("ts", "dur", "tid")), e
            assert e["ts"] >= 0 and e["dur"] >= 0, e
        elif e["ph"] == "C":
            assert "ts" in e and all(isinstance(v, (int, float)) for v in e["args"].values()), e
        else:
            assert e["ph"] == "i", e
    xs = [e for e in ev if e["ph"] == "X"]
    assert xs, "no slices"
    tracks = {}
    for e in xs:
        assert (e["pid"], e["tid"]) in threads and e["pid"] in procs, "unnamed track: %s" % e
        tracks.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    for k, v in tracks.items():  # slices on one track nest or follow each other
        v.sort()
        for (a0, a1), (b0, b1) in zip(v, v[1:]):
            assert b0 >= a1 - 1e-6 or b1 <= a1 + 1e-6, "overlap on %s" % threads[k]
    return d, ev, set(threads.values()), xs
d, ev, names, xs = check(sys.argv[1])
for want in ("mxu0", "vpu0", "dma0", "ici0", "regions"):
    assert want in names, "no %s track in %s" % (want, sorted(names))
counters = {e["name"] for e in ev if e["ph"] == "C"}
assert {"HBM bandwidth", "ICI bandwidth", "power"} <= counters, counters
o = d["otherData"]
for k in ("label", "window_start_ps", "window_end_ps", "merge_gap_ps", "max_events", "slices",
          "merged_instructions", "dropped_slices", "outside_window"):
    assert k in o, "otherData has no '%s'" % k
# The HBM curve stays within the device's peak (v7: 3686.4 GB/s) over 4 us: each DMA's bytes
# are spread over its own time, not piled where the DMA model counts its chunks (which read
# as 3x the peak in 512 ns buckets and 1.1x over 4 us; docs/outputs.md, "Counters").
hbm = sorted((e["ts"], e["args"]["GB/s"]) for e in ev if e["name"] == "HBM bandwidth")
t_end, W, worst = hbm[-1][0], 4.0, 0.0
for k in range(int(t_end / W) + 1):
    lo, hi, acc = k * W, (k + 1) * W, 0.0
    for (a, v), (b, _) in zip(hbm, hbm[1:] + [(t_end, 0)]):
        acc += v * max(0.0, min(b, hi) - max(a, lo))
    worst = max(worst, acc / W)
assert 2000 < worst <= 3686.4, "HBM bandwidth peaks at %.0f GB/s over 4 us" % worst
_, _, _, xs_off = check(sys.argv[2])
off = json.load(open(sys.argv[2]))["otherData"]
assert off["merged_instructions"] == 0 and off["slices"] > o["slices"], (off, o)
w, _, _, xs_w = check(sys.argv[3])
assert w["otherData"]["outside_window"] > 0
assert all(100 <= e["ts"] and e["ts"] + e["dur"] <= 200 + 1e-6 for e in xs_w if e.get("cat") != "region")
print("slices: %d merged, %d one per instruction, %d in the window" %
      (o["slices"], off["slices"], w["otherData"]["slices"]))
PY
    if $py tlcheck.py tl_full.json tl_off.json tl_win.json; then
        ok "--timeline: well-formed trace events, unit/region tracks, HBM and ICI counters, merge and window options"
    else
        bad "--timeline output"
    fi
    compgen -G "tl*.json.tmp*" >/dev/null && bad "timeline temporary left" || true
    # HBM channel and ICI link tracks exist when the models register per-channel ("hbm"
    # "ch<N>_bytes") and per-link ("ici" "link_x+_bytes") counters (docs/outputs.md).
    "$bin" run -q -c v7 --json tl_full_run.json "$tl_trace"
    rc=0
    $py - tl_full_run.json tl_full.json <<'PY' || rc=$?
import json, sys
counters = json.load(open(sys.argv[1]))["counters"]
names = {e["name"] for e in json.load(open(sys.argv[2]))["traceEvents"] if e["ph"] == "C"}
chans = [k for k in counters if k.startswith("hbm.ch") and k.endswith("_bytes")]
links = [k for k in counters if k.startswith("ici.link_") and k[9:11] in
         ("x+", "x-", "y+", "y-", "z+", "z-")]
if not chans and not links:
    sys.exit(3)
assert all("HBM ch%s" % k[6:-6] in names for k in chans), "missing HBM channel tracks"
assert all("ICI link %s" % k[9:11] in names for k in links), "missing ICI link tracks"
PY
    case $rc in
    0) ok "--timeline: a counter track per HBM channel and ICI link" ;;
    3) skip "HBM channel / ICI link tracks: the models register no per-channel or per-link counters" ;;
    *) bad "HBM channel / ICI link tracks" ;;
    esac
    # The power track (W per energy window) integrates to the run's energy.
    if $py - tl_full_run.json tl_full.json <<'PY'; then ok "--timeline: the power track integrates to energy.total_j"; else bad "--timeline power track"; fi
import json, sys
total = json.load(open(sys.argv[1]))["counters"]["energy.total_j"]
ev = [e for e in json.load(open(sys.argv[2]))["traceEvents"] if e["name"] == "power"]
assert len(ev) >= 3 and ev[-1]["args"]["W"] == 0, ev[-3:]
j = sum(a["args"]["W"] * (b["ts"] - a["ts"]) * 1e-6 for a, b in zip(ev, ev[1:]))
assert abs(j / total - 1) < 1e-4, (j, total)
print("power track: %.6g J, energy.total_j %.6g J" % (j, total))
PY
    "$bin" run -q -c v7 --timeline tl_small.json --timeline-max-events 3 "$tl_trace" 2>cap.err
    if $py -c 'import json,sys; d=json.load(open(sys.argv[1])); ev=d["traceEvents"]; n=sum(1 for e in ev if e["ph"]=="X" and e.get("cat")!="region"); assert n<=3, n; assert any(e["ph"]=="i" for e in ev)' tl_small.json &&
        grep -q "timeline truncated" cap.err; then
        ok "--timeline-max-events caps the slices and says so"
    else
        bad "--timeline-max-events"
    fi
else
    skip "--timeline is not built in"
fi

# ---- sweep: 2x2 grid, failures reported, Slurm array + merge ----
# sweep.py runs points through libtpusim.so: an ASan build's needs the runtimes preloaded.
. "$src/tests/lib/sanitizers.sh"
e2e_preload_sanitizers "$(dirname "$bin")/libtpusim.so" >/dev/null
cat >spec.yaml <<EOF
params:
  chip.clock_ghz: [1.0, 1.5]
  dma.engines: [1, 2]
traces: [$trace]
metrics: [summary.time_ps, summary.tflops, units.mxu0.util, roofline.bound_by]
EOF
if $py "$src/tools/sweep.py" spec.yaml -j 2 -q --tpusim "$bin" --out sweep.csv 2>sweep.err; then
    rows=$(tail -n +2 sweep.csv | grep -c ',ok,' || true)
    if [ "$(wc -l <sweep.csv)" -eq 5 ] && [ "$rows" -eq 4 ]; then
        ok "sweep over a 2x2 grid gives 4 ok rows"
    else
        bad "sweep.csv: $(cat sweep.csv)"
    fi
elif grep -q "python3-yaml" sweep.err; then
    skip "sweep: PyYAML missing ($(cat sweep.err))"
else
    bad "sweep: $(cat sweep.err)"
fi
if [ -s sweep.csv ]; then
    cat >spec_bad.yaml <<EOF
params:
  chip.clock_ghz: [1.0, -3]
traces: [$trace]
EOF
    if $py "$src/tools/sweep.py" spec_bad.yaml -j 2 -q --tpusim "$bin" --out bad.csv 2>bad.err; then
        bad "sweep with an invalid value exited 0"
    elif [ "$(grep -c ',ok,' bad.csv)" -eq 1 ] && [ "$(grep -c ',failed,' bad.csv)" -eq 1 ] &&
        grep -q 'point 1' bad.err; then
        ok "a failed sweep point is reported, the others still run"
    else
        bad "failed sweep: $(cat bad.csv bad.err)"
    fi
    $py "$src/tools/sweep.py" spec.yaml --slurm slurm --tpusim "$bin" >/dev/null
    if grep -q '^#SBATCH --array=0-3$' slurm/sweep.sbatch && [ "$(wc -l <slurm/points.tsv)" -eq 5 ]; then
        ok "--slurm writes a 4-task job array"
    else
        bad "--slurm output"
    fi
    # --time and --partition become #SBATCH lines; a malformed time is refused.
    $py "$src/tools/sweep.py" spec.yaml --slurm slurm-tp --tpusim "$bin" --time 1-02:30:00 \
        --partition short >/dev/null
    if grep -q '^#SBATCH --time=1-02:30:00$' slurm-tp/sweep.sbatch &&
        grep -q '^#SBATCH --partition=short$' slurm-tp/sweep.sbatch &&
        ! grep -q -- '--time\|--partition' slurm/sweep.sbatch; then
        ok "--slurm --time/--partition write #SBATCH lines (and only when given)"
    else
        bad "--slurm --time/--partition: $(grep SBATCH slurm-tp/sweep.sbatch | tr '\n' '|')"
    fi
    if $py "$src/tools/sweep.py" spec.yaml --slurm slurm-bad --time 2h 2>time.err ||
        ! grep -q "expected MINUTES" time.err; then
        bad "--time 2h accepted or unclear: $(cat time.err)"
    else
        ok "--time 2h is refused with the accepted formats"
    fi
    for i in 0 1 2 3; do $py "$src/tools/sweep.py" --run-point slurm $i || bad "--run-point $i"; done
    $py "$src/tools/sweep.py" --merge slurm --out merged.csv || bad "--merge exit status"
    # Same points, same (deterministic) metrics; only the trace column may differ in form.
    if [ "$(cut -d, -f1,3- merged.csv | md5sum)" = "$(cut -d, -f1,3- sweep.csv | md5sum)" ] &&
        [ "$(grep -c ',ok,' merged.csv)" -eq 4 ]; then
        ok "--merge of the array results matches the local sweep"
    else
        bad "--merge: $(cat merged.csv)"
    fi
fi

# ---- tpusim pod --json: docs/outputs.md documents exactly the keys it emits ----
if "$bin" pod --help 2>/dev/null | grep -q -- '--json'; then
    "$bin" pod -q -c v7 --json podkeys.json --chips 16 --scaling 4,16 "$src/traces/llm-tiny-train.tpt"
    # and a two-slice estimate, for the keys only several slices emit ("dcn")
    "$bin" gen llm-step -c v7 --layers 1 --d-model 256 --heads 4 --d-ff 512 --vocab 1000 \
        --seq 128 --batch 128 --chips 64 --slices 2 -o slices2.tpt >/dev/null
    "$bin" pod -q -c v7 --topology 4x4x4 --slices 2 --json podkeys2.json slices2.tpt
    if $py - "$src/docs/outputs.md" podkeys.json podkeys2.json <<'PY'; then ok "docs/outputs.md matches the pod --json keys (one slice and two)"; else bad "docs/outputs.md and the pod --json keys differ"; fi
import json, re, sys
from dockeys import doc_keys
doc, rep = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
sec = doc[doc.index("## `tpusim pod --json`"):doc.index("## `tpusim report`")]
contexts = {"Top level:": "", "`energy`:": "energy.", "`time_split`:": "time_split.",
            "`dcn` (several": "dcn.", "`collectives[]`:": "collectives[].",
            "`scaling[]`:": "scaling[]."}
documented = doc_keys(sec, contexts)
# The provenance object is the run report's (its table in the run section).
run = doc[doc.index("## `tpusim run --json`"):doc.index("## `tpusim run --csv`")]
prov = run[run.index("`provenance`: "):]
for line in prov.splitlines()[1:]:
    if line.startswith("`") and "|" not in line:
        break
    m = re.match(r"\|\s*((?:`[^`]+`(?:,\s*)?)+)\s*\|", line)
    if m:
        documented |= {"provenance." + k for k in re.findall(r"`([^`]+)`", m.group(1))}
emitted = set()
def walk(o, path):
    if isinstance(o, dict) and path not in ("peak_exaflops.", "provenance.config_values.",
                                            "provenance.topology.", "provenance.trace_topology."):
        for k, v in o.items():
            walk(v, path + k + ".")
    elif isinstance(o, list) and path in ("collectives.", "scaling."):
        emitted.add(path[:-1])
        for item in o:
            walk(item, path[:-1] + "[].")
    else:
        emitted.add(path[:-1])
    if isinstance(o, dict) and path.count(".") == 1 and "[" not in path:
        emitted.add(path[:-1])  # top-level objects themselves
walk(rep, "")
assert rep["collectives"] and len(rep["scaling"]) == 2, "nothing to check in the arrays"
assert "dcn" not in rep, "one slice: no dcn object"
two = json.load(open(sys.argv[3]))
walk(two, "")
assert two["dcn"]["slices"] == 2 and two["chips"] == 2 * two["dcn"]["chips_per_slice"]
assert abs(two["dcn"]["time_s"] - two["dcn"]["closed_form_s"]) <= 1e-9 * two["dcn"]["time_s"]
missing, undocumented = documented - emitted, emitted - documented
assert not missing, "documented but not emitted: %s" % sorted(missing)
assert not undocumented, "emitted but not documented: %s" % sorted(undocumented)
for k in ("chip_j_per_step", "chip_w", "pod_mw", "pod_j_per_step"):
    assert rep["energy"][k] > 0, k
print("%d documented pod keys checked" % len(documented))
PY
else
    skip "'tpusim pod --json' is not built in"
fi

unset LD_PRELOAD
# ---- plots ----
png_ok() { [ -s "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = "211PNG" ]; }
no_mpl=0
plot() { # plot NAME SUBCOMMAND ARGS... (writes NAME.png)
    local name=$1 rc=0
    shift
    [ $no_mpl = 1 ] && return 0
    $py "$src/tools/tpuplot.py" "$@" 2>plot.err || rc=$?
    if [ $rc -eq 3 ]; then
        no_mpl=1
        skip "plots: $(cat plot.err)"
    elif [ $rc -ne 0 ]; then
        bad "plot $name: $(cat plot.err)"
    elif png_ok "$name.png"; then
        ok "plot $name"
    else
        bad "plot $name: not a PNG"
    fi
    return 0
}
plot roofline roofline a.json b.json -o roofline.png
plot units units a.json -o units.png
plot energy energy a.json -o energy.png
if [ -s tl_full_run.json ]; then plot energy_few energy tl_full_run.json --max-regions 5 -o energy_few.png; fi
if [ $no_mpl = 0 ]; then
    echo '{"schema":"tpusim.run/1","regions":[{"name":"a"}]}' >no_energy.json
    if $py "$src/tools/tpuplot.py" energy no_energy.json -o ne.png 2>ne.err; then
        bad "tpuplot energy accepted a report without energy_by_unit_j"
    elif grep -q "regions\[0\].energy_by_unit_j" ne.err && [ ! -e ne.png ]; then
        ok "tpuplot energy names the missing key"
    else
        bad "tpuplot energy error: $(cat ne.err)"
    fi
fi
if [ -s sweep.csv ]; then plot sweep sweep sweep.csv --x chip.clock_ghz --y summary.tflops -o sweep.png; fi
if [ $have_timeline = 1 ]; then plot timeline timeline tl.json -o timeline.png; fi
if [ $no_mpl = 0 ]; then
    if "$bin" pod --help 2>/dev/null | grep -q -- '--json'; then
        if "$bin" pod -c v7 --json pod.json "$trace" >/dev/null 2>pod.err; then
            plot scaling scaling pod.json -o scaling.png
        else
            skip "tpusim pod --json failed: $(tail -n 1 pod.err)"
        fi
    else
        skip "'tpusim pod --json' is not built in"
    fi
fi

# Paper output: --dpi scales a PNG, .pdf and .svg are vectors with text kept as text, a
# truncated timeline says so on the figure, a log scaling plot labels its decades.
if [ $no_mpl = 0 ] && [ -s tl_small.json ] && [ -s pod.json ]; then
    if MPLBACKEND=Agg $py - "$src/tools" a.json tl_small.json pod.json <<'PY' 2>paper.err; then ok "plots: --dpi, PDF and SVG output, truncated timeline stated, labelled log axes"; else bad "plots for papers: $(tail -n 2 paper.err)"; fi
import struct, sys
sys.path.insert(0, sys.argv[1])
import tpuplot
def width(path):
    return struct.unpack(">I", open(path, "rb").read(24)[16:20])[0]
for dpi in (100, 300):
    assert tpuplot.main(["units", sys.argv[2], "--dpi", str(dpi), "-o", "u%d.png" % dpi]) in (0, None)
assert abs(width("u300.png") / width("u100.png") - 3) < 0.05, (width("u100.png"), width("u300.png"))
assert tpuplot.main(["units", sys.argv[2], "-o", "u.pdf"]) in (0, None)
assert open("u.pdf", "rb").read(5) == b"%PDF-"
assert tpuplot.main(["units", sys.argv[2], "-o", "u.svg"]) in (0, None)
svg = open("u.svg").read()
assert "<svg" in svg and "mxu0" in svg, "SVG without its text"
texts = []
save = tpuplot._save
tpuplot._save = lambda fig, args: texts.extend(
    [t.get_text() for t in fig.texts] + [a.get_title() for a in fig.axes]
    + [t.get_text() for a in fig.axes for t in a.texts])
assert tpuplot.main(["timeline", sys.argv[3], "-o", "t.png"]) in (0, None)
assert any(t.endswith("(truncated)") for t in texts), texts
assert any(t.startswith("Truncated timeline") for t in texts), texts
labels = []
tpuplot._save = lambda fig, args: (fig.canvas.draw(), labels.extend(
    t.get_text() for t in fig.axes[0].get_yticklabels() if t.get_text()))
assert tpuplot.main(["scaling", sys.argv[4], "--log", "-o", "s.png"]) in (0, None)
assert len(labels) >= 2, "log axis labels: %s" % labels
PY
fi

# ---- figures quoted in the docs match a fresh run at this revision ----
# README's demo output (each line the start of a line of a fresh run), and
# docs/outputs.md's time and exposed-communication share of llm-tiny-train on v7.
(cd "$src" && TPUSIM_PRESETS=configs "$bin" run -c v7 traces/sample.tpt) >demo.txt 2>&1 || true
TPUSIM_PRESETS=$src/configs "$bin" run -q -c v7 --json tiny-train.json \
    "$src/traces/llm-tiny-train.tpt" 2>/dev/null || true
if $py - "$src/README.md" demo.txt "$src/docs/outputs.md" tiny-train.json <<'PY'; then ok "README demo output and docs/outputs.md's llm-tiny-train figures match a fresh run"; else bad "figures quoted in README.md or docs/outputs.md are stale"; fi
import json, re, sys
readme, out, outputs = open(sys.argv[1]).read(), open(sys.argv[2]).read().splitlines(), open(sys.argv[3]).read()
i = readme.index("```", readme.index("The demo prints:")) + 4
block = readme[i:readme.index("```", i)].splitlines()
for line in block:  # the README shortens lines (drops the last columns, ends with "...")
    line = line.rstrip()
    if line.endswith("..."):
        line = line[:-3]
    if line.strip():
        assert any(o.startswith(line) for o in out), "README demo line not in a fresh run: %r" % line
d = json.load(open(sys.argv[4]))
s, split = d["summary"], d["time_split_ps"]
m = re.search(r"on v7 it runs\s+([0-9.]+) us, (\d+)% of it exposed communication", outputs)
assert m, "docs/outputs.md: no 'on v7 it runs X us, N% of it exposed communication'"
got = ("%.1f" % (s["time_s"] * 1e6), "%.0f" % (100 * split["exposed_comm"] / s["time_ps"]))
assert (m.group(1), m.group(2)) == got, "docs/outputs.md says %s us, %s%%; a fresh run %s us, %s%%" % (m.group(1), m.group(2)) + got
PY

echo "$passes passed, $fails failed, $skips skipped"
[ $fails -eq 0 ]
