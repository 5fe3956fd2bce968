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

def _label_groups(regions):
    """Labels for region dots, longest regions first: regions whose dots coincide (within 3%
    on both log axes, e.g. the same layer repeated) share one label "a, b (+N)" instead of
    printing on top of each other. Returns [((x, y), label)]."""
    span = lambda r: float(r.get("end_ps", 0)) - float(r.get("start_ps", 0))
    groups = []  # [x, y, [names], total span]
    for r in sorted(regions, key=span, reverse=True):
        x, y = float(r["intensity_flop_per_byte"]), float(r.get("tflops") or 0)
        for g in groups:
            if abs(x / g[0] - 1) < 0.03 and y > 0 and abs(y / g[1] - 1) < 0.03:
                g[2].append(str(r.get("name", "?")))
                break
        else:
            groups.append([x, y if y > 0 else 1e-9, [str(r.get("name", "?"))]])
    out = []
    for x, y, names in groups:
        text = ", ".join(n[:24] for n in names[:2])
        if len(names) > 2:
            text += " (+%d)" % (len(names) - 2)
        out.append(((x, y), text))
    return out


def _place_labels(fig, ax, labels, fontsize=7):
    """Annotate log-log points without overlapping text: each label tries a few offsets
    around its point (right-above, right-below, further down, left) and takes the first whose
    box (estimated from the font size) is clear of the labels already placed."""
    import math
    x0, x1 = (math.log10(v) for v in ax.get_xlim())
    y0, y1 = (math.log10(v) for v in ax.get_ylim())
    bbox = ax.get_position()
    w_pt = fig.get_figwidth() * 72 * bbox.width
    h_pt = fig.get_figheight() * 72 * bbox.height
    placed = []  # boxes in points from the axes' lower-left corner

    def clear(b):
        return all(b[2] <= p[0] or b[0] >= p[2] or b[3] <= p[1] or b[1] >= p[3] for p in placed)
    for (x, y), text in labels:
        px = (math.log10(x) - x0) / (x1 - x0) * w_pt
        py = (math.log10(y) - y0) / (y1 - y0) * h_pt
        tw, th = 0.55 * fontsize * len(text), fontsize + 1
        for dx, dy, ha in ((4, 3, "left"), (4, -th - 2, "left"), (4, -2 * th - 3, "left"),
                           (4, th + 4, "left"), (-4, 3, "right"), (-4, -th - 2, "right")):
            left = px + dx if ha == "left" else px + dx - tw
            b = (left, py + dy, left + tw, py + dy + th)
            if clear(b):
                break
        placed.append(b)
        ax.annotate(text, (x, y), fontsize=fontsize, xytext=(dx, dy), ha=ha,
                    textcoords="offset points")


def cmd_roofline(args):
    plt = _plt()
    docs = [(p, tpulib.load_run_report(p)) for p in args.reports]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    xs = []
    slope_list = []  # (HBM GB/s, highest ceiling, colour, chip) per distinct chip
    drawn_ceilings = set()
    notes = []
    labels = []  # ((x, y), text) of region dots, placed once the axes' limits are known
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
            labels += _label_groups(shown)[: args.max_labels]
        if hidden:
            notes.append("%d region(s) of %s without MXU FLOPs or HBM traffic (intensity 0) "
                         "not shown" % (hidden, label))
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
    _place_labels(fig, ax, labels)
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


def unit_breakdown(u, total_ps, where, ideal_ps=0.0):
    """Shares of run time for one unit, summing to 1. Busy time splits into work and the
    time added by limited VMEM and HBM bandwidth (the models count those inside an
    instruction's duration; summed over concurrent transfers they can exceed the busy union,
    so they are scaled down in proportion to fit it, leaving at least ideal_ps of work: for
    DMA, its bytes at peak HBM bandwidth, without which a bandwidth-bound DMA would show no
    work at all). Semaphore and queue-full stalls are
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
    room = max(0.0, busy - min(busy, ideal_ps / total_ps if total_ps > 0 else 0.0))
    if vm + hb > room:
        k = room / (vm + hb)
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
    peak_gbs = float(lookup(doc, "summary.hbm_peak_gbs", 0) or 0)

    def ideal(u):  # units moving HBM traffic: their bytes at peak HBM bandwidth (GB/s = 1e-3 B/ps)
        if u.get("traffic") != "hbm" or peak_gbs <= 0:
            return 0.0
        return float(u.get("bytes") or 0) / (peak_gbs * 1e-3)
    rows = [unit_breakdown(u, total, args.report, ideal(u)) for u in units]
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

def _lanes(intervals):
    """Lanes needed to draw (start, duration, ...) intervals sorted by start without overlap."""
    ends = []
    for it in intervals:
        lane = next((i for i, e in enumerate(ends) if e <= it[0] + 1e-9), None)
        if lane is None:
            ends.append(0.0)
            lane = len(ends) - 1
        ends[lane] = it[0] + it[1]
    return len(ends)


def cmd_timeline(args):
    plt = _plt()
    doc = tpulib.load_json(args.timeline)
    events = doc.get("traceEvents") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise ToolError("%s: missing key 'traceEvents' (is it a 'tpusim run --timeline' file?)"
                        % args.timeline)
    names = {}
    sort_index = {}  # track display order, written by the simulator from its unit table
    for ev in events:
        if ev.get("ph") == "M" and ev.get("name") == "thread_name":
            names[(ev.get("pid", 0), ev.get("tid", 0))] = str(ev["args"]["name"])
        if ev.get("ph") == "M" and ev.get("name") == "thread_sort_index":
            sort_index[(ev.get("pid", 0), ev.get("tid", 0))] = int(ev["args"]["sort_index"])
    slices = [ev for ev in events if ev.get("ph") == "X" and ev.get("cat") != "region"]
    counters = {}
    channels = set()  # per-HBM-channel counters: too many to draw as lines
    for ev in events:
        if ev.get("ph") == "C":
            if str(ev.get("name", "")).startswith("HBM ch"):
                channels.add((ev.get("pid", 0), ev["name"]))
                continue
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
    rank = {}
    for s in slices:
        key = (s.get("pid", 0), s.get("tid", 0))
        nm = names.get(key, "tid %s" % s.get("tid"))
        nm = re.sub(r" #\d+$", "", nm)  # overlap lanes of one unit count as that unit
        if s.get("pid", 0):
            nm = "chip%s.%s" % (s["pid"], nm)
        if nm not in rows:
            rows[nm] = [0.0] * nb
            order.append(nm)
            rank[nm] = (int(s.get("pid", 0)), sort_index.get(key, 1 << 62), nm)
        a, d = float(s["ts"]), float(s.get("dur", 0))
        b = a + d
        i0, i1 = int((a - t0) / w), int((b - t0) / w)
        for i in range(max(0, i0), min(nb - 1, i1) + 1):
            lo, hi = max(a, t0 + i * w), min(b, t0 + (i + 1) * w)
            if hi > lo:
                rows[nm][i] += (hi - lo) / w
    order.sort(key=lambda n: rank[n])
    grid = [[min(1.0, v) for v in rows[n]] for n in order]
    regions = sorted((float(ev["ts"]), float(ev.get("dur", 0)), str(ev.get("name", "?")))
                     for ev in events if ev.get("ph") == "X" and ev.get("cat") == "region")
    panels = (["regions"] if regions else []) + ["units"] + (["counters"] if counters else [])
    heights = {"regions": 0.35 + 0.3 * _lanes(regions), "units": max(2.0, 0.28 * len(order)),
               "counters": 2.2}
    # Two grid columns: the panels, and a narrow one holding only the heatmap's colour bar,
    # so that every panel has the same width and the time axes line up.
    fig = plt.figure(figsize=(10, 1.2 + sum(heights[p] for p in panels)))
    gs = fig.add_gridspec(len(panels), 2, width_ratios=[1, 0.018], wspace=0.1,
                          height_ratios=[heights[p] for p in panels])
    ax_of = {}
    for i, p in enumerate(panels):
        ax_of[p] = fig.add_subplot(gs[i, 0], sharex=ax_of.get(panels[0]))
    axes = [[ax_of[p]] for p in panels]
    for p in panels[:-1]:
        ax_of[p].tick_params(labelbottom=False)
    ax = ax_of["units"]
    im = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1,
                   extent=(t0, t1, len(order) - 0.5, -0.5))
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels(order, fontsize=7)
    ax.set_ylabel("unit")
    cb = fig.colorbar(im, cax=fig.add_subplot(gs[panels.index("units"), 1]))
    cb.set_label("unit busy fraction per %.3g us bucket" % w, fontsize=8)
    label = str(doc.get("otherData", {}).get("label") or os.path.basename(args.timeline))
    label = re.sub(r"^\S*/", "", label)  # the trace's file name, not its directory
    axes[0][0].set_title(args.title or "Timeline: " + label, fontsize=10)
    if regions:
        # Regions overlap (an all-reduce's region runs on while the next compute region
        # starts): greedy interval partitioning onto lanes, as the timeline's region tracks.
        rax = ax_of["regions"]
        palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        lane_end, placed = [], []
        for ts, dur, name in regions:
            lane = next((i for i, e in enumerate(lane_end) if e <= ts + 1e-9), None)
            if lane is None:
                lane = len(lane_end)
                lane_end.append(0.0)
            lane_end[lane] = ts + dur
            placed.append((ts, dur, name, lane))
        nl = len(lane_end)
        span = t1 - t0
        for i, (ts, dur, name, lane) in enumerate(placed):
            rax.broken_barh([(ts, max(dur, 1e-9))], (lane + 0.08, 0.84),
                            color=palette[i % len(palette)], alpha=0.75)
        # Name the widest regions that have room for their name.
        for ts, dur, name, lane in sorted(placed, key=lambda r: -r[1])[:args.max_labels]:
            if dur > 0.04 * span:
                rax.text(ts + dur / 2, lane + 0.5, name, ha="center", va="center", fontsize=7,
                         clip_on=True)
        rax.set_ylim(nl, 0)
        rax.set_yticks([i + 0.5 for i in range(nl)])
        rax.set_yticklabels(["regions"] + ["regions #%d" % (i + 1) for i in range(1, nl)],
                            fontsize=7)
    if counters:
        cax = ax_of["counters"]
        lines = []
        twin = None
        for key, pts in sorted(counters.items()):
            pts.sort()
            on = cax
            if key.startswith("ICI"):
                twin = twin or cax.twinx()
                on = twin
            link = key.startswith("ICI link")
            color = None if link else "#e6550d" if key.startswith("ICI") else "#2b8cbe"
            lines += on.step([p[0] for p in pts], [p[1] for p in pts], where="post",
                             label=key, color=color, lw=0.8 if link else 1,
                             ls="--" if link else "-")
        cax.set_ylabel("HBM bandwidth (GB/s)", fontsize=8)
        if twin:
            twin.set_ylabel("ICI bandwidth (GB/s)", fontsize=8)
            twin.set_ylim(bottom=0)
        cax.set_ylim(bottom=0)
        if channels:  # a legend entry without a line
            lines += cax.plot([], [], " ", label="(+%d HBM channel counters: open the file "
                              "in Perfetto)" % len(channels))
        # Below the time axis: with link counters the legend would hide the curves.
        cax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="upper left",
                   bbox_to_anchor=(0.0, -0.3), ncol=4 if len(lines) > 3 else len(lines),
                   frameon=False)
        cax.grid(True, alpha=0.25)
    axes[-1][0].set_xlim(t0, t1)
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
    if "step time (s)" in series:  # seconds are unreadable at pod scale: pick ms or us
        vals = [v for v in series["step time (s)"] if v is not None]
        unit, k = ("ms", 1e3) if vals and max(vals) >= 1e-3 else ("us", 1e6)
        series["step time (%s)" % unit] = [None if v is None else v * k
                                           for v in series.pop("step time (s)")]
        panels = ["step time (%s)" % unit if p == "step time (s)" else p for p in panels]
    from matplotlib.ticker import (FixedLocator, FuncFormatter, NullFormatter, NullLocator,
                                   ScalarFormatter)
    chips = series["chips"]
    ticks = sorted({c for c in chips if c is not None})
    for ax, label in zip(axes[:, 0], panels):
        pts = [(c, v) for c, v in zip(chips, series[label]) if c is not None and v is not None]
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_ylabel(label, fontsize=9)
        ax.set_xscale("log", base=2)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7)
        if label.startswith("step time") or label.startswith("sustained"):
            ax.set_yscale("log")  # both can span decades over a scaling study
            ys = [p[1] for p in pts if p[1] > 0]
            plain = FuncFormatter(lambda v, _: "%g" % v)
            ax.yaxis.set_major_formatter(plain)
            if ys and max(ys) / min(ys) < 10:  # under a decade: label the minor ticks too
                ax.yaxis.set_minor_formatter(plain)
                ax.tick_params(axis="y", which="minor", labelsize=7)
            else:
                ax.yaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(ScalarFormatter())
    axes[-1][0].set_xlabel("chips (log scale)")
    trace = os.path.basename(str(doc.get("trace", "?")))
    config = os.path.basename(str(doc.get("config") or doc.get("chip") or "?"))
    kind = "weak scaling, fixed per-chip trace" if doc.get("weak_scaling") else "scaling"
    axes[0][0].set_title(args.title or "Pod %s: %s on %s (%s)" % (kind, trace, doc.get(
        "chip", "?"), config), fontsize=10)
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
    ylabel, yscale = tpulib.METRIC_SCALE.get(y, (tpulib.axis_label(y), 1.0))
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for key, rs in sorted(groups.items()):
        pts = []
        for r in rs:
            yv = _as_float(r[y])
            if yv is None:
                continue
            yv *= yscale
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
        from matplotlib.ticker import FuncFormatter
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "%g" % v))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: "%g" % v))
        ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xlabel(args.xlabel or tpulib.axis_label(x))
    ax.set_ylabel(args.ylabel or ylabel)
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=7, title=", ".join(others) if others else None, title_fontsize=7)
    failed = len(rows) - len(ok)
    traces = sorted({os.path.basename(r["trace"]) for r in ok})
    configs = sorted({os.path.basename(r["config"]) or "defaults" for r in ok})
    yname = re.sub(r" \(.*\)$", "", ylabel) if y in tpulib.METRIC_SCALE else y
    ax.set_title(args.title or "Sweep of %s: %s on %s (%s)%s" % (
        x, yname, ", ".join(traces), ", ".join(configs),
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
    p.add_argument("--max-labels", type=int, default=12,
                   help="name at most N region spans (the widest)")
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
