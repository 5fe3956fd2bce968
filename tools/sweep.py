#!/usr/bin/env python3
"""sweep.py - run tpusim over the cross product of config parameters and traces, and collect
one CSV row per run.

  tools/sweep.py SPEC.yaml [-j JOBS] [--out results.csv] [--lib PATH] [--keep DIR]
  tools/sweep.py SPEC.yaml --slurm DIR [--time T] [--partition P]   # write a Slurm job array
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
Each run is one call of the Python API (tools/python/tpusim, over libtpusim.so) in a worker
process of its own, JOBS at a time (default: the number of cores): the simulation kernel is
process-wide, and a process can be stopped at --timeout. Parsing the spec needs PyYAML
(Debian: python3-yaml); everything else is the standard library."""

import argparse
import csv
import itertools
import json
import multiprocessing
import os
import queue
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(HERE, "python"))  # the tpusim module, beside us (and installed so)
import tpulib  # noqa: E402
from tpulib import ToolError  # noqa: E402

TOOL = "sweep"

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
# sbatch --time formats.
SLURM_TIME = re.compile(r"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|"
                        r"\d+-\d+:\d{1,2}:\d{1,2})$")


def find_lib(args):
    """The libtpusim.so the runs use, as an absolute path: --lib, the one beside --tpusim (a
    build directory's binary), or the tpusim module's own search ($TPUSIM_LIB, the install
    prefix, build/). Loading it here also reports a missing library once, not per point."""
    lib = args.lib
    if not lib and args.tpusim:
        lib = os.path.join(os.path.dirname(os.path.abspath(args.tpusim)), "libtpusim.so")
    if lib:
        if not os.path.exists(lib):
            raise ToolError("%s: no such library (build tpusim, or see --lib)" % lib)
        os.environ["TPUSIM_LIB"] = os.path.abspath(lib)
    try:
        import tpusim
        return tpusim.library_path()
    except ImportError as e:
        raise ToolError(str(e))


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


def last_line(text):
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _worker_main(conn, lib):
    """A worker process: loads libtpusim.so once, then runs each (base, trace, params) it is
    sent with tpusim.run and answers (ok, error line, report), until the pipe closes."""
    os.environ["TPUSIM_LIB"] = lib
    try:
        import tpusim
    except ImportError as e:
        tpusim = None
        failed = str(e)
    while True:
        try:
            base, trace, params = conn.recv()
        except EOFError:
            return
        if tpusim is None:
            conn.send((False, failed, None))
            continue
        try:
            conn.send((True, "", tpusim.run(base, trace, overrides=params)))
        except tpusim.Error as e:
            conn.send((False, str(e), None))


class Worker:
    """One job slot: a worker process (started on first use, restarted after a timeout or a
    crash) running points one at a time. The simulation kernel is process-wide, so parallel
    runs need processes; a process can also be stopped when a run exceeds --timeout."""

    def __init__(self, lib):
        self.lib, self.proc, self.conn = lib, None, None

    def run(self, base, point, timeout=None):
        """Returns (ok, error line, report dict)."""
        if self.proc is None:
            ctx = multiprocessing.get_context("forkserver")
            self.conn, child = ctx.Pipe()
            self.proc = ctx.Process(target=_worker_main, args=(child, self.lib), daemon=True)
            self.proc.start()
            child.close()
        try:
            self.conn.send((base, point["trace"], point["params"]))
            if not self.conn.poll(timeout):
                self.close(kill=True)
                return False, "timed out after %s s" % timeout, None
            return self.conn.recv()
        except (EOFError, OSError):  # the worker died without an answer: a crash
            code = self.close()
            return False, "worker process died (exit status %s)" % code, None

    def close(self, kill=False):
        if self.proc is None:
            return None
        if kill:
            self.proc.kill()
        self.conn.close()
        self.proc.join()
        code, self.proc, self.conn = self.proc.exitcode, None, None
        return code


def save_report(doc, path):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def row_for(point, base, names, metrics, ok, error, doc):
    row = {"point": point["point"], "trace": point["trace"], "config": base or ""}
    row.update({k: point["params"].get(k, "") for k in names})
    row["status"] = "ok" if ok else "failed"
    row["error"] = error
    for m in metrics:
        row[m] = ""
    if ok:
        try:
            for m in metrics:
                v = tpulib.lookup(doc, m)
                row[m] = "" if v is None else (v if not isinstance(v, float) else "%.10g" % v)
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
    lib = find_lib(args)
    jobs = args.jobs or os.cpu_count() or 1
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    lock = threading.Lock()
    done = [0]
    slots = queue.Queue()
    workers = [Worker(lib) for _ in range(min(jobs, len(points)))]
    for w in workers:
        slots.put(w)

    def one(point):  # on a thread: borrow a job slot's worker for one point
        w = slots.get()
        try:
            ok, error, doc = w.run(spec["base"], point, args.timeout)
        finally:
            slots.put(w)
        if ok and args.keep:
            save_report(doc, os.path.join(args.keep, "%d.json" % point["point"]))
        row = row_for(point, spec["base"], names, spec["metrics"], ok, error, doc)
        with lock:
            done[0] += 1
            if not args.quiet:
                sys.stderr.write("[%d/%d] %-6s %s\n" % (done[0], len(points), row["status"],
                                                        describe(point)))
        return row
    try:
        with ThreadPoolExecutor(max_workers=len(workers)) as ex:
            rows = list(ex.map(one, points))
    finally:
        for w in workers:
            w.close()
    write_csv(args.out, names, spec["metrics"], rows)
    return report_failures(rows, points)


# ---- Slurm ----

def cmd_slurm(args):
    spec = load_spec(args.spec)
    names, points = make_points(spec)
    d = os.path.abspath(args.slurm)
    os.makedirs(os.path.join(d, "results"), exist_ok=True)
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    lib = find_lib(args)
    meta = {"lib": lib, "base": spec["base"], "params": names,
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
    extra = "".join("#SBATCH --%s=%s\n" % (k, v) for k, v in
                    (("time", args.time), ("partition", args.partition)) if v)
    with open(script, "w", encoding="utf-8") as f:
        f.write("#!/bin/bash\n"
                "#SBATCH --job-name=tpusim-sweep\n"
                "#SBATCH --array=0-%d\n"
                "#SBATCH --cpus-per-task=1\n"
                "#SBATCH --output=%s/logs/%%a.out\n"
                "%s"
                "# Generated by tools/sweep.py from %s: one array task per line of points.tsv.\n"
                "# Each task writes results/N.json (the run report) or results/N.err.\n"
                "# Submit: sbatch %s\n"
                "# Merge:  tools/sweep.py --merge %s --out results.csv\n"
                "set -euo pipefail\n"
                "exec python3 %s --run-point %s \"$SLURM_ARRAY_TASK_ID\"\n"
                % (len(points) - 1, d, extra, os.path.abspath(args.spec), script, d,
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
    if "lib" not in meta:
        raise ToolError("%s: written by an older sweep.py (it records a binary, not a library): "
                        "run --slurm again" % d)
    w = Worker(meta["lib"])
    try:
        ok, error, doc = w.run(meta["base"], points[i], meta.get("timeout"))
    finally:
        w.close()
    if ok:
        save_report(doc, out)
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
            try:
                doc, ok, error = tpulib.load_run_report(out), True, ""
            except ToolError as e:
                doc, ok, error = None, False, str(e)
            rows.append(row_for(p, meta["base"], names, meta["metrics"], ok, error, doc))
        else:
            error = "no result (array task not run yet?)"
            if os.path.exists(errf):
                with open(errf, encoding="utf-8") as f:
                    error = last_line(f.read()) or "failed"
            rows.append(row_for(p, meta["base"], names, meta["metrics"], False, error, None))
    write_csv(args.out, names, meta["metrics"], rows)
    return report_failures(rows, points)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="sweep.py", description=__doc__.split("\n\n")[0],
                                 epilog="See docs/outputs.md.")
    ap.add_argument("spec", nargs="?", help="sweep spec (YAML)")
    ap.add_argument("-j", "--jobs", type=int, default=0, help="parallel runs (default: cores)")
    ap.add_argument("--out", default="results.csv", help="CSV to write (default results.csv)")
    ap.add_argument("--lib", help="libtpusim.so to run (default: $TPUSIM_LIB, the install "
                    "prefix's, build/)")
    ap.add_argument("--tpusim", metavar="BIN", help="use the libtpusim.so beside this tpusim "
                    "binary (a build directory's)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per run (default none)")
    ap.add_argument("--keep", metavar="DIR", help="keep each run's report as DIR/N.json")
    ap.add_argument("--slurm", metavar="DIR", help="write a Slurm job array into DIR instead")
    ap.add_argument("--time", help="Slurm time limit per array task (#SBATCH --time: MINUTES, "
                    "MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
    ap.add_argument("--partition", help="Slurm partition (#SBATCH --partition)")
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
        if (args.time or args.partition) and not args.slurm:
            ap.error("--time and --partition go with --slurm DIR")
        if args.time and not SLURM_TIME.match(args.time):
            ap.error("--time '%s': expected MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM or "
                     "D-HH:MM:SS" % args.time)
        if args.partition is not None and not re.match(r"^[A-Za-z0-9_.,-]+$", args.partition):
            ap.error("--partition '%s': expected a partition name (letters, digits, _ . - ,)"
                     % args.partition)
        return cmd_slurm(args) if args.slurm else cmd_local(args)
    except ToolError as e:
        sys.stderr.write("%s: %s\n" % (TOOL, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
