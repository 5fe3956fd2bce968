#!/usr/bin/env python3
"""tpuplot.py - figures from tpusim's outputs (matplotlib, Agg backend; the output format
follows the file extension: .png, .svg or .pdf).

  tpuplot.py roofline REPORT.json [REPORT.json ...] -o roofline.png
        log-log roofline: the chip's bf16 compute ceiling (and the trace's effective peak
        when its datatypes differ), the HBM slope, the run's point and one per region.
  tpuplot.py units REPORT.json -o units.png
        per-unit time breakdown as stacked bars: work, VMEM and HBM bandwidth stretch,
        semaphore wait, queue full, idle.
  tpuplot.py timeline TIMELINE.json -o timeline.png [--buckets N]
        from `tpusim run --timeline`: busy fraction per unit over time (heatmap) and the
        HBM/ICI bandwidth counters.
  tpuplot.py scaling POD.json -o scaling.png
        from `tpusim pod --json`: step time, sustained exaflops, MFU and communication share
        against the number of chips.
  tpuplot.py sweep RESULTS.csv -o sweep.png [--x PARAM] [--y METRIC] [--logx] [--logy]
        from tools/sweep.py: y against x, one line per combination of the other parameters.

Inputs are described in docs/outputs.md. Needs python3-matplotlib (Debian); exits with
status 3 and a message when it is missing, 1 on bad input, 0 on success."""

import argparse
import csv
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tpulib  # noqa: E402
from tpulib import ToolError, lookup  # noqa: E402

TOOL = "tpuplot"


def _plt():
    tpulib.require_module("matplotlib", "python3-matplotlib", TOOL)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".svg", ".pdf"):
        raise ToolError("%s: output must end in .png, .svg or .pdf" % path)
    tmp = path + ".tmp" + ext
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise ToolError("%s: cannot write: %s" % (path, e.strerror))


def _num(doc, path, where):
    try:
        v = lookup(doc, path)
    except KeyError:
        raise ToolError("%s: missing key '%s'" % (where, path))
    return float("nan") if v is None else float(v)


# ---- roofline ----

def cmd_roofline(args):
    plt = _plt()
    docs = [(p, tpulib.load_run_report(p)) for p in args.reports]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    xs = []
    slope_list = []  # (HBM GB/s, highest ceiling, colour, chip) per distinct chip
    drawn_ceilings = set()
    notes = []
    for i, (path, doc) in enumerate(docs):
        c = colors[i % len(colors)]
        peak = _num(doc, "summary.peak_tflops_bf16", path)
        bw = _num(doc, "summary.hbm_peak_gbs", path)
        ridge = _num(doc, "roofline.ridge_flop_per_byte", path)
        eff_peak = ridge * bw / 1000.0 if ridge == ridge and bw > 0 else peak
        inten = _num(doc, "roofline.intensity_flop_per_byte", path)
        tflops = _num(doc, "summary.tflops", path)
        regions = [r for r in doc.get("regions", []) if isinstance(r, dict)]
        pts = [inten] + [float(r.get("intensity_flop_per_byte") or 0) for r in regions]
        xs += [x for x in pts if x > 0] + [peak * 1000.0 / bw if bw > 0 else 1.0]
        key = (doc.get("chip"), peak, bw)
        if key not in drawn_ceilings:
            drawn_ceilings.add(key)
            ax.axhline(peak, color=c, ls="--", lw=1,
                       label="%s bf16 peak %.0f TFLOP/s" % (doc.get("chip", "?"), peak))
            if abs(eff_peak - peak) > 0.01 * peak:
                ax.axhline(eff_peak, color=c, ls=":", lw=1,
                           label="%s effective peak of the trace's datatypes %.0f TFLOP/s"
                           % (doc.get("chip", "?"), eff_peak))
            slope_list.append((bw, max(peak, eff_peak), c, doc.get("chip", "?")))
        label = os.path.basename(path) if len(docs) > 1 else "whole run"
        if inten > 0:
            ax.scatter([inten], [tflops], s=90, marker="*", color=c, zorder=5,
                       label="%s: %.3g TFLOP/s at %.3g FLOP/B" % (label, tflops, inten))
        else:
            notes.append("%s has no HBM traffic (intensity undefined): not shown" % label)
        shown = [r for r in regions if float(r.get("intensity_flop_per_byte") or 0) > 0]
        hidden = len(regions) - len(shown)
        if shown:
            ax.scatter([float(r["intensity_flop_per_byte"]) for r in shown],
                       [float(r.get("tflops") or 0) for r in shown], s=22, color=c, alpha=0.7,
                       zorder=4, label="%s regions (%d)" % (label, len(shown)))
            span = lambda r: float(r.get("end_ps", 0)) - float(r.get("start_ps", 0))
            for r in sorted(shown, key=span, reverse=True)[: args.max_labels]:
                ax.annotate(str(r.get("name", "?"))[:24],
                            (float(r["intensity_flop_per_byte"]), float(r.get("tflops") or 0)),
                            fontsize=7, xytext=(4, 3), textcoords="offset points")
        if hidden:
            notes.append("%d region(s) of %s without HBM traffic not shown" % (hidden, label))
    if not xs:
        xs = [1.0]
    lo, hi = min(xs) / 10.0, max(xs) * 10.0
    slopes = {}
    for bw, top, c, chip in slope_list:
        if bw not in slopes or slopes[bw][0] < top:
            slopes[bw] = (top, c, chip)
    ys = [top for top, _, _ in slopes.values()]
    for bw, (top, c, chip) in sorted(slopes.items()):
        ridge_x = top * 1000.0 / bw if bw > 0 else hi
        ax.plot([lo, ridge_x], [lo * bw / 1000.0, top], color=c, lw=1.5,
                label="%s HBM %.0f GB/s" % (chip, bw))
    pts_y = [y for coll in ax.collections for y in coll.get_offsets()[:, 1] if y > 0]
    if ys:
        ax.set_ylim(min(pts_y + [min(ys)]) / 10.0, max(ys) * 2.0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (MXU FLOP per HBM byte)")
    ax.set_ylabel("achieved throughput (TFLOP/s)")
    first = docs[0][1]
    ax.set_title(args.title or "Roofline: " + tpulib.run_title(first), fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if notes:
        fig.text(0.01, 0.005, "; ".join(notes), fontsize=7, color="gray")
    _save(fig, args.output)


# ---- per-unit breakdown ----

UNIT_PARTS = [
    ("work", "#2b8cbe"),
    ("VMEM bandwidth", "#a6bddb"),
    ("HBM bandwidth", "#fdae6b"),
    ("semaphore wait", "#e6550d"),
    ("queue full", "#756bb1"),
    ("idle", "#d9d9d9"),
]


def unit_breakdown(u, total_ps, where):
    """Shares of run time for one unit, summing to 1. Busy time splits into work and the
    time added by limited VMEM and HBM bandwidth (the models count those inside an
    instruction's duration; summed over concurrent transfers they can exceed the busy union,
    so they are scaled down in proportion to fit it). Semaphore and queue-full stalls are
    measured at the queue head, which can wait while the previous instruction still runs:
    they are shown within the non-busy time, scaled down in proportion when they exceed it.
    Idle is the rest."""
    def f(key):
        v = lookup(u, key, None)
        if v is None:
            raise ToolError("%s: unit '%s' has no key '%s'" % (where, u.get("name", "?"), key))
        return float(v) / total_ps if total_ps > 0 else 0.0
    busy = min(f("busy_ps"), 1.0)
    vm, hb = f("stall_ps.vmem_bandwidth"), f("stall_ps.hbm_bandwidth")
    if vm + hb > busy:
        k = busy / (vm + hb)
        vm, hb = vm * k, hb * k
    sem, qf = f("stall_ps.semaphore"), f("stall_ps.queue_full")
    free = 1.0 - busy
    if sem + qf > free:
        k = free / (sem + qf)
        sem, qf = sem * k, qf * k
    return [busy - vm - hb, vm, hb, sem, qf, max(0.0, free - sem - qf)]


def cmd_units(args):
    plt = _plt()
    doc = tpulib.load_run_report(args.report)
    total = _num(doc, "summary.time_ps", args.report)
    units = doc.get("units")
    if not isinstance(units, list) or not units:
        raise ToolError("%s: missing key 'units' (a non-empty array)" % args.report)
    names = [str(u.get("name", "?")) for u in units]
    rows = [unit_breakdown(u, total, args.report) for u in units]
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.32 * len(units)))
    left = [0.0] * len(units)
    for k, (part, color) in enumerate(UNIT_PARTS):
        vals = [100.0 * r[k] for r in rows]
        ax.barh(names, vals, left=left, color=color, label=part, edgecolor="white", lw=0.3)
        left = [a + b for a, b in zip(left, vals)]
    ax.invert_yaxis()
    ax.set_xlabel("share of run time (%%; run = %.4g us)" % (total * 1e-6))
    ax.set_ylabel("unit")
    ax.set_xlim(0, 100)
    ax.set_title(args.title or "Unit time breakdown: " + tpulib.run_title(doc), fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, args.output)


# ---- timeline summary ----

def cmd_timeline(args):
    plt = _plt()
    doc = tpulib.load_json(args.timeline)
    events = doc.get("traceEvents") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise ToolError("%s: missing key 'traceEvents' (is it a 'tpusim run --timeline' file?)"
                        % args.timeline)
    names = {}
    for ev in events:
        if ev.get("ph") == "M" and ev.get("name") == "thread_name":
            names[(ev.get("pid", 0), ev.get("tid", 0))] = str(ev["args"]["name"])
    slices = [ev for ev in events if ev.get("ph") == "X" and ev.get("cat") != "region"]
    counters = {}
    for ev in events:
        if ev.get("ph") == "C":
            key = "%s (chip %s)" % (ev.get("name", "?"), ev.get("pid", 0))
            counters.setdefault(key, []).append((float(ev["ts"]),
                                                 float(list(ev["args"].values())[0])))
    if not slices:
        raise ToolError("%s: no instruction slices to plot" % args.timeline)
    t0 = min(float(s["ts"]) for s in slices)
    t1 = max(float(s["ts"]) + float(s.get("dur", 0)) for s in slices)
    if t1 <= t0:
        t1 = t0 + 1e-6
    nb = max(1, args.buckets)
    w = (t1 - t0) / nb
    rows = {}
    order = []
    for s in slices:
        nm = names.get((s.get("pid", 0), s.get("tid", 0)), "tid %s" % s.get("tid"))
        nm = re.sub(r" #\d+$", "", nm)  # overlap lanes of one unit count as that unit
        if s.get("pid", 0):
            nm = "chip%s.%s" % (s["pid"], nm)
        if nm not in rows:
            rows[nm] = [0.0] * nb
            order.append(nm)
        a, d = float(s["ts"]), float(s.get("dur", 0))
        b = a + d
        i0, i1 = int((a - t0) / w), int((b - t0) / w)
        for i in range(max(0, i0), min(nb - 1, i1) + 1):
            lo, hi = max(a, t0 + i * w), min(b, t0 + (i + 1) * w)
            if hi > lo:
                rows[nm][i] += (hi - lo) / w
    kind_rank = {"mxu": 0, "vpu": 1, "dma": 2, "ici": 3}

    def sort_key(n):
        m = re.match(r"(?:chip(\d+)\.)?([a-z]+)(\d*)", n)
        return (int(m.group(1) or 0), kind_rank.get(m.group(2), 9), int(m.group(3) or 0), n) \
            if m else (0, 9, 0, n)
    order.sort(key=sort_key)
    grid = [[min(1.0, v) for v in rows[n]] for n in order]
    nplots = 2 if counters else 1
    fig, axes = plt.subplots(nplots, 1, figsize=(9, 1.5 + 0.28 * len(order) + 2.2 * (nplots - 1)),
                             sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [max(2, len(order) * 0.3)] +
                                          ([2.2] if counters else [])})
    ax = axes[0][0]
    im = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1,
                   extent=(t0, t1, len(order) - 0.5, -0.5))
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels(order, fontsize=7)
    ax.set_ylabel("unit")
    cb = fig.colorbar(im, ax=axes[:, 0].tolist(), pad=0.01)
    cb.set_label("busy fraction of each %.3g us bucket" % w)
    label = str(doc.get("otherData", {}).get("label") or os.path.basename(args.timeline))
    ax.set_title(args.title or "Timeline: " + label, fontsize=10)
    if counters:
        cax = axes[1][0]
        for key, pts in sorted(counters.items()):
            pts.sort()
            cax.step([p[0] for p in pts], [p[1] for p in pts], where="post", label=key)
        cax.set_ylabel("bandwidth (GB/s)")
        cax.legend(fontsize=7, loc="upper right")
        cax.grid(True, alpha=0.25)
        cax.set_xlim(t0, t1)
    axes[-1][0].set_xlabel("simulated time (us)")
    _save(fig, args.output)


# ---- pod scaling ----

SCALING_KEYS = {
    "chips": ("chips", "n_chips", "num_chips"),
    "step time (s)": ("step_time_s", "step_s", "time_s"),
    "sustained EFLOP/s": ("sustained_exaflops", "exaflops", "eflops"),
    "MFU (%)": ("mfu",),
    "communication share (%)": ("comm_share", "comm_fraction", "comm_frac", "comm_pct"),
}


def _pick(row, names):
    for n in names:
        if n in row and row[n] is not None:
            return n, float(row[n])
    return None, None


def cmd_scaling(args):
    plt = _plt()
    doc = tpulib.load_json(args.pod)
    rows = doc.get("scaling") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not rows:
        raise ToolError("%s: missing key 'scaling' (a non-empty array; is it a "
                        "'tpusim pod --json' report?)" % args.pod)
    series = {}
    missing = []
    for label, names in SCALING_KEYS.items():
        pts = []
        for r in rows:
            k, v = _pick(r, names)
            if k is None and label == "step time (s)":
                k, v = _pick(r, ("step_time_ps",))
                v = v * 1e-12 if v is not None else None
            if k is None and label == "step time (s)":
                k, v = _pick(r, ("step_time_us",))
                v = v * 1e-6 if v is not None else None
            pts.append(v)
        if all(v is None for v in pts):
            missing.append("%s (keys %s)" % (label, "/".join(names)))
        else:
            series[label] = pts
    if "chips" not in series:
        raise ToolError("%s: scaling rows have no chip count (keys chips/n_chips/num_chips)"
                        % args.pod)
    for label in ("MFU (%)", "communication share (%)"):
        if label in series:  # fractions in the report, shown as percent
            vals = [v for v in series[label] if v is not None]
            if vals and max(vals) <= 1.0:
                series[label] = [None if v is None else 100 * v for v in series[label]]
    if missing:
        sys.stderr.write("%s: %s: not plotted, missing in the scaling rows: %s\n"
                         % (TOOL, args.pod, "; ".join(missing)))
    panels = [k for k in SCALING_KEYS if k != "chips" and k in series]
    if not panels:
        raise ToolError("%s: scaling rows have none of the plotted metrics" % args.pod)
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.3 * len(panels)), sharex=True,
                             squeeze=False)
    chips = series["chips"]
    for ax, label in zip(axes[:, 0], panels):
        pts = [(c, v) for c, v in zip(chips, series[label]) if c is not None and v is not None]
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_ylabel(label)
        ax.set_xscale("log", base=2)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7)
        if label == "step time (s)":
            ax.set_yscale("log")
    axes[-1][0].set_xlabel("chips")
    trace = os.path.basename(str(doc.get("trace", "?")))
    config = os.path.basename(str(doc.get("config") or doc.get("chip") or "?"))
    axes[0][0].set_title(args.title or "Pod scaling: %s on %s" % (trace, config), fontsize=10)
    _save(fig, args.output)


# ---- sweep ----

def read_sweep_csv(path):
    """Rows of a tools/sweep.py CSV and its parameter and metric columns. Layout:
    point, trace, config, <params...>, status, <metrics...>, error."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rd = csv.DictReader(f)
            rows = list(rd)
            cols = rd.fieldnames or []
    except OSError as e:
        raise ToolError("%s: cannot read: %s" % (path, e.strerror))
    for need in ("point", "trace", "config", "status", "error"):
        if need not in cols:
            raise ToolError("%s: missing column '%s' (is it a tools/sweep.py result?)"
                            % (path, need))
    i_cfg, i_status = cols.index("config"), cols.index("status")
    return rows, cols[i_cfg + 1:i_status], cols[i_status + 1:cols.index("error")]


def _as_float(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def cmd_sweep(args):
    plt = _plt()
    rows, params, metrics = read_sweep_csv(args.csv)
    x = args.x or (params[0] if params else None)
    if not x or x not in params:
        raise ToolError("%s: --x must be one of the swept parameters: %s"
                        % (args.csv, ", ".join(params) or "(none)"))
    y = args.y or ("summary.tflops" if "summary.tflops" in metrics else
                   (metrics[0] if metrics else None))
    if not y or y not in metrics:
        raise ToolError("%s: --y must be one of the metric columns: %s"
                        % (args.csv, ", ".join(metrics) or "(none)"))
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        raise ToolError("%s: no successful runs to plot" % args.csv)
    others = [p for p in params if p != x]
    multi_trace = len({r["trace"] for r in ok}) > 1
    groups = {}
    for r in ok:
        key = tuple("%s=%s" % (p, r[p]) for p in others)
        if multi_trace:
            key = (os.path.basename(r["trace"]),) + key
        groups.setdefault(key, []).append(r)
    numeric_x = all(_as_float(r[x]) is not None for r in ok)
    cats = []
    if not numeric_x:
        for r in ok:
            if r[x] not in cats:
                cats.append(r[x])
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for key, rs in sorted(groups.items()):
        pts = []
        for r in rs:
            yv = _as_float(r[y])
            if yv is None:
                continue
            pts.append((_as_float(r[x]) if numeric_x else cats.index(r[x]), yv))
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                label=", ".join(key) if key else y)
    if not numeric_x:
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats)
    if args.logx:
        ax.set_xscale("log")
    if args.logy:
        ax.set_yscale("log")
    ax.set_xlabel(args.xlabel or tpulib.axis_label(x))
    ax.set_ylabel(args.ylabel or tpulib.axis_label(y))
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=7, title=", ".join(others) if others else None, title_fontsize=7)
    failed = len(rows) - len(ok)
    traces = sorted({os.path.basename(r["trace"]) for r in ok})
    configs = sorted({os.path.basename(r["config"]) or "defaults" for r in ok})
    ax.set_title(args.title or "Sweep of %s: %s on %s (%s)%s" % (
        x, y, ", ".join(traces), ", ".join(configs),
        "; %d failed run(s) omitted" % failed if failed else ""), fontsize=10)
    _save(fig, args.output)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tpuplot.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("-o", "--output", required=True, help="figure file (.png/.svg/.pdf)")
        p.add_argument("--title", help="override the title")

    p = sub.add_parser("roofline", help="roofline with the run and its regions")
    p.add_argument("reports", nargs="+", help="tpusim run --json reports")
    p.add_argument("--max-labels", type=int, default=12, help="label the N longest regions")
    common(p)
    p = sub.add_parser("units", help="per-unit utilisation and stall breakdown")
    p.add_argument("report", help="tpusim run --json report")
    common(p)
    p = sub.add_parser("timeline", help="busy fraction per unit over time")
    p.add_argument("timeline", help="tpusim run --timeline output")
    p.add_argument("--buckets", type=int, default=200, help="time buckets (default 200)")
    common(p)
    p = sub.add_parser("scaling", help="pod scaling curves")
    p.add_argument("pod", help="tpusim pod --json report")
    common(p)
    p = sub.add_parser("sweep", help="a metric against a swept parameter")
    p.add_argument("csv", help="tools/sweep.py results CSV")
    p.add_argument("--x", help="parameter on the x axis (default: the first)")
    p.add_argument("--y", help="metric on the y axis (default: summary.tflops)")
    p.add_argument("--xlabel", help="x axis label (default: the parameter)")
    p.add_argument("--ylabel", help="y axis label (default: the metric)")
    p.add_argument("--logx", action="store_true")
    p.add_argument("--logy", action="store_true")
    common(p)
    args = ap.parse_args(argv)
    try:
        {"roofline": cmd_roofline, "units": cmd_units, "timeline": cmd_timeline,
         "scaling": cmd_scaling, "sweep": cmd_sweep}[args.cmd](args)
    except ToolError as e:
        sys.stderr.write("%s: %s\n" % (TOOL, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
