#!/usr/bin/env python3
"""sweep.py - run tpusim over the cross product of config parameters and traces, and collect
one CSV row per run.

  tools/sweep.py SPEC.yaml [-j JOBS] [--out results.csv] [--tpusim PATH] [--keep DIR]
  tools/sweep.py SPEC.yaml --slurm DIR [--tpusim PATH]      # write a Slurm job array
  tools/sweep.py --merge DIR --out results.csv               # collect its results
  tools/sweep.py --run-point DIR INDEX                       # one array task (used by sbatch)

SPEC (YAML; see tools/sweeps/example.yaml and docs/outputs.md):
  base: v7                      # config file or preset name, passed as `tpusim run -c`
  params:                       # dotted config keys -> list of values (cross product)
    mxu.rows: [128, 256]
  traces: [traces/gemm.tpt]     # paths relative to the spec file (or the working dir)
  metrics: [summary.tflops]     # optional: dotted paths into the run report

CSV columns: point, trace, config, <params...>, status, <metrics...>, error. status is "ok" or
"failed" (error then holds tpusim's error line); the exit status is 1 if any run failed.
Runs go in parallel on JOBS worker processes (default: the number of cores). Parsing the
spec needs PyYAML (Debian: python3-yaml); everything else is the standard library."""

import argparse
import csv
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tpulib  # noqa: E402
from tpulib import ToolError  # noqa: E402

TOOL = "sweep"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEFAULT_METRICS = [
    "summary.time_ps",
    "summary.cycles",
    "summary.tflops",
    "summary.mxu_util",
    "summary.mac_util",
    "summary.hbm_gbs",
    "summary.hbm_util",
    "roofline.fraction_of_bound",
    "roofline.bound_by",
]
SPEC_KEYS = ("base", "params", "traces", "metrics")


def find_tpusim(explicit):
    if explicit:
        return explicit
    if os.environ.get("TPUSIM"):
        return os.environ["TPUSIM"]
    built = os.path.join(ROOT, "build", "tpusim")
    return built if os.access(built, os.X_OK) else "tpusim"


def fmt_value(v):
    """A YAML scalar as tpusim's -p expects it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return repr(v)
    return str(v)


def load_spec(path):
    yaml = tpulib.require_module("yaml", "python3-yaml", TOOL)
    try:
        with open(path, "r", encoding="utf-8") as f:
            spec = yaml.safe_load(f)
    except OSError as e:
        raise ToolError("%s: cannot read: %s" % (path, e.strerror))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = ":%d" % (mark.line + 1) if mark else ""
        raise ToolError("%s%s: invalid YAML: %s" % (path, where, getattr(e, "problem", e)))
    if not isinstance(spec, dict):
        raise ToolError("%s: expected a mapping with keys %s" % (path, ", ".join(SPEC_KEYS)))
    for k in spec:
        if k not in SPEC_KEYS:
            raise ToolError("%s: unknown key '%s' (expected %s)" % (path, k, ", ".join(SPEC_KEYS)))
    spec_dir = os.path.dirname(os.path.abspath(path))

    def resolve(p):
        # Relative to the spec file if it exists there, else as given (working directory).
        cand = os.path.normpath(os.path.join(spec_dir, p))
        return cand if not os.path.isabs(p) and os.path.exists(cand) else p

    base = spec.get("base")
    if base is not None and not isinstance(base, str):
        raise ToolError("%s: key 'base': expected a config path or preset name" % path)
    if base and (base.endswith(".yaml") or base.endswith(".yml") or "/" in base):
        base = resolve(base)
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise ToolError("%s: key 'params': expected a mapping of dotted config keys to lists"
                        % path)
    plist = []
    for k, v in params.items():
        vals = v if isinstance(v, list) else [v]
        if not vals:
            raise ToolError("%s: params key '%s': empty list of values" % (path, k))
        for x in vals:
            if isinstance(x, (dict, list)) or x is None:
                raise ToolError("%s: params key '%s': value %r is not a scalar" % (path, k, x))
        plist.append((str(k), [fmt_value(x) for x in vals]))
    traces = spec.get("traces")
    if isinstance(traces, str):
        traces = [traces]
    if not isinstance(traces, list) or not traces or \
            not all(isinstance(t, str) for t in traces):
        raise ToolError("%s: key 'traces': expected a non-empty list of trace paths" % path)
    metrics = spec.get("metrics") or DEFAULT_METRICS
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise ToolError("%s: key 'metrics': expected a list of dotted report paths" % path)
    return {"base": base, "params": plist, "traces": [resolve(t) for t in traces],
            "metrics": metrics}


def make_points(spec):
    names = [k for k, _ in spec["params"]]
    points = []
    for trace in spec["traces"]:
        for combo in itertools.product(*[vals for _, vals in spec["params"]]):
            points.append({"point": len(points), "trace": trace,
                           "params": dict(zip(names, combo))})
    return names, points


def tpusim_cmd(tpusim, base, point, out_json):
    cmd = [tpusim, "run", "-q"]
    if base:
        cmd += ["-c", base]
    for k, v in point["params"].items():
        cmd += ["-p", "%s=%s" % (k, v)]
    return cmd + ["--json", out_json, point["trace"]]


def last_line(text):
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run_point(tpusim, base, point, out_json, timeout=None):
    """Run one point; returns (ok, error line). The report lands in out_json."""
    try:
        p = subprocess.run(tpusim_cmd(tpusim, base, point, out_json), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=timeout)
    except FileNotFoundError:
        return False, "cannot run '%s' (use --tpusim PATH)" % tpusim
    except subprocess.TimeoutExpired:
        return False, "timed out after %s s" % timeout
    if p.returncode != 0:
        return False, last_line(p.stderr) or "exit status %d" % p.returncode
    return True, ""


def row_for(point, base, names, metrics, ok, error, report_path):
    row = {"point": point["point"], "trace": point["trace"], "config": base or ""}
    row.update({k: point["params"].get(k, "") for k in names})
    row["status"] = "ok" if ok else "failed"
    row["error"] = error
    for m in metrics:
        row[m] = ""
    if ok:
        try:
            doc = tpulib.load_run_report(report_path)
            for m in metrics:
                v = tpulib.lookup(doc, m)
                row[m] = "" if v is None else (v if not isinstance(v, float) else "%.10g" % v)
        except ToolError as e:
            row["status"], row["error"] = "failed", str(e)
        except KeyError as e:
            row["status"] = "failed"
            row["error"] = "report has no metric '%s'" % e.args[0]
    return row


def write_csv(path, names, metrics, rows):
    cols = ["point", "trace", "config"] + names + ["status"] + metrics + ["error"]
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            for r in sorted(rows, key=lambda r: r["point"]):
                w.writerow(r)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise ToolError("%s: cannot write: %s" % (path, e.strerror))


def describe(point):
    ps = " ".join("%s=%s" % kv for kv in point["params"].items())
    return "%s%s" % (os.path.basename(point["trace"]), " " + ps if ps else "")


def report_failures(rows, points):
    failed = [r for r in rows if r["status"] != "ok"]
    for r in sorted(failed, key=lambda r: r["point"]):
        sys.stderr.write("%s: point %d (%s) %s: %s\n" % (TOOL, r["point"],
                         describe(points[r["point"]]), r["status"], r["error"]))
    return 1 if failed else 0


def cmd_local(args):
    spec = load_spec(args.spec)
    names, points = make_points(spec)
    tpusim = find_tpusim(args.tpusim)
    jobs = args.jobs or os.cpu_count() or 1
    keep = args.keep
    if keep:
        os.makedirs(keep, exist_ok=True)
    lock = threading.Lock()
    done = [0]
    with tempfile.TemporaryDirectory(prefix="tpusim-sweep-") as tmp:
        def one(point):
            out = os.path.join(keep or tmp, "%d.json" % point["point"])
            ok, error = run_point(tpusim, spec["base"], point, out, args.timeout)
            row = row_for(point, spec["base"], names, spec["metrics"], ok, error, out)
            with lock:
                done[0] += 1
                if not args.quiet:
                    sys.stderr.write("[%d/%d] %-6s %s\n" % (done[0], len(points), row["status"],
                                                            describe(point)))
            return row
        with ThreadPoolExecutor(max_workers=jobs) as ex:
            rows = list(ex.map(one, points))
    write_csv(args.out, names, spec["metrics"], rows)
    return report_failures(rows, points)


# ---- Slurm ----

def cmd_slurm(args):
    spec = load_spec(args.spec)
    names, points = make_points(spec)
    d = os.path.abspath(args.slurm)
    os.makedirs(os.path.join(d, "results"), exist_ok=True)
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    tpusim = find_tpusim(args.tpusim)
    if os.path.sep in tpusim:
        tpusim = os.path.abspath(tpusim)
    meta = {"tpusim": tpusim, "base": spec["base"], "params": names,
            "metrics": spec["metrics"], "spec": os.path.abspath(args.spec),
            "timeout": args.timeout,
            # Preset names (base: v7) resolve through TPUSIM_PRESETS; array tasks may start
            # without the submitting shell's environment, so the directory is recorded.
            "presets": os.path.abspath(os.environ["TPUSIM_PRESETS"])
            if os.environ.get("TPUSIM_PRESETS") else None}
    with open(os.path.join(d, "sweep.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    with open(os.path.join(d, "points.tsv"), "w", encoding="utf-8") as f:
        f.write("\t".join(["point", "trace"] + names) + "\n")
        for p in points:
            vals = [str(p["point"]), os.path.abspath(p["trace"])] + [p["params"][k] for k in names]
            if any("\t" in v or "\n" in v for v in vals):
                raise ToolError("%s: a trace path or value contains a tab or newline" % args.spec)
            f.write("\t".join(vals) + "\n")
    script = os.path.join(d, "sweep.sbatch")
    with open(script, "w", encoding="utf-8") as f:
        f.write("#!/bin/bash\n"
                "#SBATCH --job-name=tpusim-sweep\n"
                "#SBATCH --array=0-%d\n"
                "#SBATCH --cpus-per-task=1\n"
                "#SBATCH --output=%s/logs/%%a.out\n"
                "# Generated by tools/sweep.py from %s: one array task per line of points.tsv.\n"
                "# Each task writes results/N.json (the run report) or results/N.err.\n"
                "# Submit: sbatch %s\n"
                "# Merge:  tools/sweep.py --merge %s --out results.csv\n"
                "set -euo pipefail\n"
                "exec python3 %s --run-point %s \"$SLURM_ARRAY_TASK_ID\"\n"
                % (len(points) - 1, d, os.path.abspath(args.spec), script, d,
                   os.path.abspath(__file__), d))
    os.chmod(script, 0o755)
    sys.stdout.write("%s: %d points; submit with: sbatch %s\n" % (TOOL, len(points), script))
    return 0


def read_slurm_dir(d):
    try:
        with open(os.path.join(d, "sweep.json"), encoding="utf-8") as f:
            meta = json.load(f)
        with open(os.path.join(d, "points.tsv"), encoding="utf-8") as f:
            lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    except (OSError, ValueError) as e:
        raise ToolError("%s: not a sweep directory written by --slurm (%s)" % (d, e))
    head = lines[0].split("\t")
    names = head[2:]
    points = []
    for n, ln in enumerate(lines[1:], start=2):
        f = ln.split("\t")
        if len(f) != len(head):
            raise ToolError("%s/points.tsv:%d: expected %d tab-separated fields"
                            % (d, n, len(head)))
        points.append({"point": int(f[0]), "trace": f[1], "params": dict(zip(names, f[2:]))})
    return meta, names, points


def cmd_run_point(args):
    d, idx = args.run_point
    meta, _, points = read_slurm_dir(d)
    i = int(idx)
    if not 0 <= i < len(points):
        raise ToolError("%s: point %s not in 0..%d" % (d, idx, len(points) - 1))
    if meta.get("presets") and not os.environ.get("TPUSIM_PRESETS"):
        os.environ["TPUSIM_PRESETS"] = meta["presets"]
    out = os.path.join(d, "results", "%d.json" % i)
    errf = os.path.join(d, "results", "%d.err" % i)
    ok, error = run_point(meta["tpusim"], meta["base"], points[i], out, meta.get("timeout"))
    if ok:
        if os.path.exists(errf):
            os.unlink(errf)
        return 0
    with open(errf, "w", encoding="utf-8") as f:
        f.write(error + "\n")
    sys.stderr.write("%s: point %d: %s\n" % (TOOL, i, error))
    return 1


def cmd_merge(args):
    d = args.merge
    meta, names, points = read_slurm_dir(d)
    rows = []
    for p in points:
        out = os.path.join(d, "results", "%d.json" % p["point"])
        errf = os.path.join(d, "results", "%d.err" % p["point"])
        if os.path.exists(out):
            rows.append(row_for(p, meta["base"], names, meta["metrics"], True, "", out))
        else:
            error = "no result (array task not run yet?)"
            if os.path.exists(errf):
                with open(errf, encoding="utf-8") as f:
                    error = last_line(f.read()) or "failed"
            rows.append(row_for(p, meta["base"], names, meta["metrics"], False, error, out))
    write_csv(args.out, names, meta["metrics"], rows)
    return report_failures(rows, points)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="sweep.py", description=__doc__.split("\n\n")[0],
                                 epilog="See docs/outputs.md.")
    ap.add_argument("spec", nargs="?", help="sweep spec (YAML)")
    ap.add_argument("-j", "--jobs", type=int, default=0, help="parallel runs (default: cores)")
    ap.add_argument("--out", default="results.csv", help="CSV to write (default results.csv)")
    ap.add_argument("--tpusim", help="tpusim binary (default: $TPUSIM, build/tpusim, PATH)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per run (default none)")
    ap.add_argument("--keep", metavar="DIR", help="keep each run's report as DIR/N.json")
    ap.add_argument("--slurm", metavar="DIR", help="write a Slurm job array into DIR instead")
    ap.add_argument("--merge", metavar="DIR", help="merge DIR/results of a --slurm sweep")
    ap.add_argument("--run-point", nargs=2, metavar=("DIR", "INDEX"),
                    help="run one point of a --slurm sweep (what the array tasks do)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-run progress lines")
    args = ap.parse_args(argv)
    try:
        if args.run_point:
            return cmd_run_point(args)
        if args.merge:
            return cmd_merge(args)
        if not args.spec:
            ap.error("a SPEC.yaml is required (or --merge DIR)")
        if args.jobs < 0:
            ap.error("--jobs must be positive")
        return cmd_slurm(args) if args.slurm else cmd_local(args)
    except ToolError as e:
        sys.stderr.write("%s: %s\n" % (TOOL, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
