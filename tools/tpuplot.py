#!/usr/bin/env python3
"""tpuplot.py - figures from tpusim's outputs (matplotlib, Agg backend; the output format
follows the file extension: .png, .svg or .pdf).

  tpuplot.py roofline REPORT.json [REPORT.json ...] -o roofline.png
        log-log roofline: the chip's bf16 compute ceiling (and the trace's effective peak
        when its datatypes differ), the HBM slope, the run's point and one per region.
  tpuplot.py units REPORT.json -o units.png
        per-unit time breakdown as stacked bars: work, VMEM and HBM bandwidth stretch,
        semaphore wait, queue full, idle.
  tpuplot.py energy REPORT.json -o energy.png [--max-regions N]
        energy by unit (MXU, vector unit, VMEM, HBM, ICI, DCN, static) per region as stacked
        bars, from the report's regions[].energy_by_unit_j.
  tpuplot.py timeline TIMELINE.json -o timeline.png [--buckets N]
        from `tpusim run --timeline`: busy fraction per unit over time (heatmap) and the
        HBM/ICI bandwidth counters.
  tpuplot.py scaling POD.json -o scaling.png
        from `tpusim pod --json`: step time, sustained exaflops, MFU and communication share
        against the number of chips, with ideal scaling dashed; linear axes (--log: log).
  tpuplot.py sweep RESULTS.csv -o sweep.png [--x PARAM] [--y METRIC] [--logx] [--logy]
        from tools/sweep.py: y against x, one line per combination of the other parameters.
  tpuplot.py serve SERVE.json [SERVE.json ...] -o serve.png [--latency tpot|ttft|e2e]
                   [--xscale auto|log|linear] [--logy]
        from `tpusim serve --rates ... --json`: latency (p50 solid, p90 dashed) against
        output tokens/s per chip, one curve per file (slice and model); the x axis is log
        when the throughputs span more than 10x (--xscale auto, the default).

Inputs are described in docs/outputs.md. Needs python3-matplotlib (Debian); exits with
status 3 and a message when it is missing, 1 on bad input, 0 on success."""

import argparse
import csv
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tpulib  # noqa: E402
import tpustyle  # noqa: E402
from tpulib import ToolError, lookup  # noqa: E402

TOOL = "tpuplot"


def _plt():
    tpulib.require_module("matplotlib", "python3-matplotlib", TOOL)
    import matplotlib
    matplotlib.use("Agg")
    tpustyle.apply(matplotlib)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, args):
    try:
        tpustyle.save(fig, args.output, args.dpi)
    except ValueError as e:
        raise ToolError(str(e))
    except OSError as e:
        raise ToolError("%s: cannot write: %s" % (args.output, e.strerror))


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


def _title(args, default):
    return default if args.title is None else args.title


def cmd_roofline(args):
    plt = _plt()
    docs = [(p, tpulib.load_run_report(p)) for p in args.reports]
    fig, ax = plt.subplots(figsize=(tpustyle.COLUMN, 2.7))
    colors = tpustyle.PALETTE
    xs = []
    slope_list = []  # (HBM GB/s, highest ceiling, colour, chip) per distinct chip
    drawn_ceilings = set()
    notes = []
    labels = []  # ((x, y), text) of region dots, placed once the axes' limits are known
    names = tpulib.short_names([p for p, _ in docs])
    for i, (path, doc) in enumerate(docs):
        c = colors[i % len(colors)]
        chip = str(doc.get("chip", "?"))
        peak = _num(doc, "summary.peak_tflops_bf16", path)
        bw = _num(doc, "summary.hbm_peak_gbs", path)
        ridge = _num(doc, "roofline.ridge_flop_per_byte", path)
        eff_peak = ridge * bw / 1000.0 if ridge == ridge and bw > 0 else peak
        inten = _num(doc, "roofline.intensity_flop_per_byte", path)
        tflops = _num(doc, "summary.tflops", path)
        regions = [r for r in doc.get("regions", []) if isinstance(r, dict)]
        pts = [inten] + [float(r.get("intensity_flop_per_byte") or 0) for r in regions]
        xs += [x for x in pts if x > 0] + [peak * 1000.0 / bw if bw > 0 else 1.0]
        if abs(eff_peak - peak) <= 0.01 * peak:
            eff_peak = peak
        ceiling = (chip, "%.4g" % peak, "%.4g" % eff_peak)
        if ceiling not in drawn_ceilings:
            drawn_ceilings.add(ceiling)
            if peak > 0:
                ax.axhline(peak, color=c, ls="--", lw=0.9,
                           label="%s bf16 peak, %s TFLOP/s" % (chip, tpustyle.fmt_num(peak, 4)))
            if abs(eff_peak - peak) > 0.01 * peak:
                ax.axhline(eff_peak, color=c, ls=":", lw=0.9,
                           label="%s peak of the trace's datatypes, %s TFLOP/s"
                           % (chip, tpustyle.fmt_num(eff_peak, 4)))
        slope_list.append((bw, max(peak, eff_peak), c, chip))
        label = names[i] if len(docs) > 1 else "whole run"
        if inten > 0:
            ax.scatter([inten], [tflops], s=60, marker="*", color=c, zorder=5,
                       edgecolors="black", linewidths=0.4,
                       label="%s: %s TFLOP/s at %s FLOP/B" % (
                           label, tpustyle.fmt_num(tflops), tpustyle.fmt_num(inten)))
        else:
            notes.append("%s has no HBM traffic (intensity undefined): not shown" % label)
        shown = [r for r in regions if float(r.get("intensity_flop_per_byte") or 0) > 0]
        hidden = len(regions) - len(shown)
        if shown:
            ax.scatter([float(r["intensity_flop_per_byte"]) for r in shown],
                       [max(float(r.get("tflops") or 0), 1e-9) for r in shown], s=12,
                       color=c, marker=tpustyle.MARKERS[i % len(tpustyle.MARKERS)], alpha=0.8,
                       zorder=4, linewidths=0,
                       label="%s regions (%d)" % (label, len(shown)))
            # Runs of one trace share region names: label a dot only if no dot of that name
            # was labelled near it (within 30% on both axes).
            def near(a, b):
                return a[1] == b[1] and all(abs(u / v - 1) < 0.3 for u, v in zip(a[0], b[0]))
            labels += [lb for lb in _label_groups(shown)[: args.max_labels]
                       if not any(near(lb, o) for o in labels)]
        if hidden:
            notes.append("%d region(s) of %s without MXU FLOPs or HBM traffic (intensity 0) "
                         "not shown." % (hidden, label))
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
        ax.plot([lo, ridge_x], [lo * bw / 1000.0, top], color=c, lw=1.2,
                label="%s HBM, %s GB/s" % (chip, tpustyle.fmt_num(bw, 4)))
    pts_y = [y for coll in ax.collections for y in coll.get_offsets()[:, 1] if y > 0]
    if ys:
        ax.set_ylim(min(pts_y + [min(ys)]) / 10.0, max(ys) * 3.0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    tpustyle.plain_log_axis(ax, "x")
    tpustyle.plain_log_axis(ax, "y")
    ax.set_xlabel("arithmetic intensity (MXU FLOP per HBM byte, log)")
    ax.set_ylabel("throughput (TFLOP/s, log)")
    first = docs[0][1]
    ax.set_title(_title(args, tpulib.run_title(first) if len(docs) == 1 else
                        "%d runs on %s" % (len(docs), first.get("chip", "?"))))
    ax.grid(True, which="major")
    leg = tpustyle.legend_below(ax, ncol=1, offset=0.2)
    fig.canvas.draw()
    omitted = tpustyle.place_labels(fig, ax, labels)
    if omitted:
        notes.append("%d region label(s) left out for lack of room (--max-labels)." % omitted)
    _below(fig, ax, leg, " ".join(n for n in notes if n))
    _save(fig, args)


def _below(fig, ax, legend, text):
    """A note under the legend under the axes (both outside the data)."""
    if not text:
        return
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    lowest = min(a.get_window_extent(r).y0 for a in (ax, legend) if a is not None)
    # Tick labels and axis label under the axes are part of its tight box.
    lowest = min(lowest, ax.get_tightbbox(r).y0)
    y = lowest / fig.bbox.height - 0.02
    tpustyle.note(fig, text, y=y)


# ---- per-unit breakdown ----

UNIT_PARTS = [  # Okabe-Ito colours (tpustyle.PALETTE), idle in light grey
    ("work", "#0072B2"),
    ("VMEM bandwidth", "#56B4E9"),
    ("HBM bandwidth", "#E69F00"),
    ("semaphore wait", "#D55E00"),
    ("queue full", "#CC79A7"),
    ("idle", "#E0E0E0"),
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
    fig, ax = plt.subplots(figsize=(tpustyle.COLUMN, 0.5 + 0.17 * len(units)))
    left = [0.0] * len(units)
    for k, (part, color) in enumerate(UNIT_PARTS):
        vals = [100.0 * r[k] for r in rows]
        ax.barh(names, vals, left=left, color=color, label=part, edgecolor="white", lw=0.3,
                height=0.75)
        left = [a + b for a, b in zip(left, vals)]
    ax.invert_yaxis()
    ax.grid(False, axis="y")
    ax.set_xlabel("share of run time (%%; run = %s)" % tpustyle.fmt_time(total * 1e-12))
    ax.set_xlim(0, 100)
    ax.margins(y=0.01)
    ax.set_title(_title(args, "Unit time: " + tpulib.run_title(doc)))
    tpustyle.legend_below(ax, ncol=3, offset=0.4 / (0.5 + 0.17 * len(units)) + 0.12)
    _save(fig, args)


# ---- energy by unit per region ----

ENERGY_PARTS = [  # keys of regions[].energy_by_unit_j, Okabe-Ito colours, static in grey
    ("mxu", "MXU", "#0072B2"),
    ("vpu", "vector unit", "#56B4E9"),
    ("vmem", "VMEM", "#009E73"),
    ("hbm", "HBM", "#E69F00"),
    ("ici", "ICI", "#D55E00"),
    ("dcn", "DCN", "#CC79A7"),
    ("static", "static", "#C8C8C8"),
]


def energy_rows(doc, where, max_regions):
    """[(label, [J per ENERGY_PARTS entry])] in region order; past max_regions regions, the
    highest-energy ones are kept (in order) and the others summed into one last row."""
    regions = doc.get("regions")
    if not isinstance(regions, list) or not regions:
        raise ToolError("%s: missing key 'regions' (a non-empty array)" % where)
    rows = []
    for i, r in enumerate(regions):
        by = r.get("energy_by_unit_j") if isinstance(r, dict) else None
        if not isinstance(by, dict):
            raise ToolError("%s: missing key 'regions[%d].energy_by_unit_j' (a report from a "
                            "tpusim without the energy model?)" % (where, i))
        try:
            vals = [float(by.get(k) or 0) for k, _, _ in ENERGY_PARTS]
        except (TypeError, ValueError):
            raise ToolError("%s: regions[%d].energy_by_unit_j: not numbers" % (where, i))
        rows.append((str(r.get("name", "?")), vals))
    if max_regions > 0 and len(rows) > max_regions:
        keep = set(sorted(range(len(rows)), key=lambda i: -sum(rows[i][1]))[:max_regions - 1])
        rest = [rows[i][1] for i in range(len(rows)) if i not in keep]
        rows = [rows[i] for i in sorted(keep)]
        rows.append(("(%d other regions)" % len(rest), [sum(c) for c in zip(*rest)]))
    return rows


def cmd_energy(args):
    plt = _plt()
    doc = tpulib.load_run_report(args.report)
    rows = energy_rows(doc, args.report, args.max_regions)
    total = _num(doc, "counters.energy.total_j", args.report)
    avg_w = _num(doc, "counters.energy.avg_w", args.report)
    unit, k = tpustyle.energy_unit([sum(v) for _, v in rows])
    names = [n if len(n) <= 28 else n[:27] + "\u2026" for n, _ in rows]
    height = 0.7 + 0.15 * len(rows)
    fig, ax = plt.subplots(figsize=(tpustyle.COLUMN, height))
    left = [0.0] * len(rows)
    for j, (key, label, color) in enumerate(ENERGY_PARTS):
        vals = [v[j] * k for _, v in rows]
        if not any(vals):  # a category no region uses (DCN: not modelled) gets no legend entry
            continue
        ax.barh(range(len(rows)), vals, left=left, color=color, label=label, edgecolor="white",
                lw=0.3, height=0.75)
        left = [a + b for a, b in zip(left, vals)]
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.grid(False, axis="y")
    ax.set_xlim(0, max(left) * 1.02 if max(left) > 0 else 1)
    ax.margins(y=0.01)
    ax.set_xlabel("energy (%s; run = %s %s at %s W average)"
                  % (unit, tpustyle.fmt_num(total * k, 4), unit, tpustyle.fmt_num(avg_w, 4)))
    ax.set_title(_title(args, "Energy: " + tpulib.run_title(doc)))
    tpustyle.legend_below(ax, ncol=4, offset=0.5 / (height - 0.45))
    _save(fig, args)


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


def _bucket_means(pts, t0, w, n):
    """Time-weighted means over n buckets of width w from t0 of a step curve: pts sorted
    (time, value) pairs, each value holding until the next time (and after the last)."""
    out = [0.0] * n
    for k, (a, v) in enumerate(pts):
        b = pts[k + 1][0] if k + 1 < len(pts) else t0 + n * w
        a, b = max(a, t0), min(b, t0 + n * w)
        i = int((a - t0) / w) if b > a else n
        while i < n and b > a:
            hi = min(b, t0 + (i + 1) * w)
            out[i] += v * (hi - a) / w
            a = hi
            i += 1
    return out


def cmd_timeline(args):
    plt = _plt()
    doc = tpulib.load_json(args.timeline)
    events = doc.get("traceEvents") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise ToolError("%s: missing key 'traceEvents' (is it a 'tpusim run --timeline' file?)"
                        % args.timeline)
    names = {}
    sort_index = {}  # track display order, written by the simulator from its unit table
    chip_of = {}  # pid -> chip id, from the process names ("chip N"; pid is N + 1)
    for ev in events:
        if ev.get("ph") == "M" and ev.get("name") == "process_name":
            m = re.match(r"chip (\d+)$", str(ev.get("args", {}).get("name", "")))
            if m:
                chip_of[ev.get("pid", 0)] = int(m.group(1))
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
            if "GB/s" not in ev.get("args", {}):  # the power track (W): tpuplot.py energy
                continue
            key = "%s (chip %s)" % (ev.get("name", "?"),
                                    chip_of.get(ev.get("pid", 0), ev.get("pid", 0)))
            counters.setdefault(key, []).append((float(ev["ts"]),
                                                 float(list(ev["args"].values())[0])))
    if not slices:
        raise ToolError("%s: no instruction slices to plot" % args.timeline)
    t0 = min(float(s["ts"]) for s in slices)
    t1 = max(float(s["ts"]) + float(s.get("dur", 0)) for s in slices)
    if t1 <= t0:
        t1 = t0 + 1e-6
    # A truncated timeline (--timeline-max-events) keeps no slices after the cap, while its
    # counters and the truncation marker run to the end: the figure spans the whole run and
    # shades the part without slices.
    other = doc.get("otherData") if isinstance(doc.get("otherData"), dict) else {}
    dropped = int(other.get("dropped_slices") or 0)
    t_end = t1
    if dropped:
        marks = [float(ev["ts"]) for ev in events if ev.get("ph") == "i" and
                 str(ev.get("name", "")).startswith("timeline truncated")]
        t_end = max([t1] + marks + [p[0] for pts in counters.values() for p in pts])
    nb = max(1, args.buckets)
    w = (t1 - t0) / nb
    rows = {}
    order = []
    rank = {}
    for s in slices:
        key = (s.get("pid", 0), s.get("tid", 0))
        nm = names.get(key, "tid %s" % s.get("tid"))
        nm = re.sub(r" #\d+$", "", nm)  # overlap lanes of one unit count as that unit
        chip = chip_of.get(s.get("pid", 0), s.get("pid", 0))
        if chip:
            nm = "chip%s.%s" % (chip, nm)
        if nm not in rows:
            rows[nm] = [0.0] * nb
            order.append(nm)
            rank[nm] = (int(chip), sort_index.get(key, 1 << 62), nm)
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
    fig = plt.figure(figsize=(tpustyle.PAGE, 0.8 + 0.75 * sum(heights[p] for p in panels)))
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
    ax.set_yticklabels(order)
    ax.grid(False)
    ax.set_ylabel("unit")
    unit, k = tpustyle.time_unit([(t_end - t0) * 1e-6])
    cbax = fig.add_subplot(gs[panels.index("units"), 1])
    cbax.grid(False)
    cb = fig.colorbar(im, cax=cbax)
    cb.set_label("busy fraction per %s bucket" % tpustyle.fmt_time(w * 1e-6, 3))
    if dropped:
        ax.axvspan(t1, t_end, facecolor="white", edgecolor=tpustyle.GREY, hatch="////", lw=0)
        ax.text((t1 + t_end) / 2, (len(order) - 1) / 2, "not recorded:\ntimeline truncated",
                ha="center", va="center", fontsize=tpustyle.FONT - 1,
                bbox=dict(facecolor="white", edgecolor="none", pad=1))
    label = str(doc.get("otherData", {}).get("label") or os.path.basename(args.timeline))
    label = re.sub(r"^\S*/", "", label)  # the trace's file name, not its directory
    axes[0][0].set_title(_title(args, "Timeline: " + label))
    if regions:
        # Regions overlap (an all-reduce's region runs on while the next compute region
        # starts): greedy interval partitioning onto lanes, as the timeline's region tracks.
        rax = ax_of["regions"]
        palette = tpustyle.PALETTE
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
        width_pt = tpustyle.PAGE * 72 * 0.85  # about the axes' width
        span = t_end - t0
        for ts, dur, name, lane in sorted(placed, key=lambda r: -r[1])[:args.max_labels]:
            if dur / span * width_pt > 0.55 * (tpustyle.FONT - 2) * len(name) + 4:
                rax.text(ts + dur / 2, lane + 0.5, name, ha="center", va="center",
                         fontsize=tpustyle.FONT - 2, clip_on=True)
        rax.set_ylim(nl, 0)
        rax.set_yticks([i + 0.5 for i in range(nl)])
        rax.set_yticklabels(["regions"] + ["regions #%d" % (i + 1) for i in range(1, nl)])
        rax.grid(False)
    leg = None
    if counters:
        cax = ax_of["counters"]
        lines = []
        twin = None
        # The counter files' buckets (down to 512 ns) are shorter than a DMA: averaged over the
        # heat map's buckets, as its busy fractions are (docs/outputs.md, "Counters").
        nc = max(1, int(math.ceil((t_end - t0) / w - 1e-9)))
        for key, pts in sorted(counters.items()):
            pts.sort()
            means = _bucket_means(pts, t0, w, nc)
            pts = [(t0 + i * w, m) for i, m in enumerate(means)] + [(t0 + nc * w, means[-1])]
            on = cax
            if key.startswith("ICI"):
                twin = twin or cax.twinx()
                on = twin
            link = key.startswith("ICI link")
            color = None if link else tpustyle.PALETTE[3] if key.startswith("ICI") \
                else tpustyle.PALETTE[0]
            lines += on.step([p[0] for p in pts], [p[1] for p in pts], where="post",
                             label=key, color=color, lw=0.8 if link else 1,
                             ls="--" if link else "-")
        cax.set_ylabel("HBM (GB/s, %s mean)" % tpustyle.fmt_time(w * 1e-6, 3))
        if twin:
            twin.set_ylabel("ICI (GB/s)")
            twin.grid(False)
            twin.set_ylim(bottom=0)
        cax.set_ylim(bottom=0)
        if channels:  # a legend entry without a line
            lines += cax.plot([], [], " ", label="(+%d HBM channel counters: open the file "
                              "in Perfetto)" % len(channels))
        # Below the time axis: with link counters the legend would hide the curves.
        leg = cax.legend(lines, [ln.get_label() for ln in lines], loc="upper left",
                   bbox_to_anchor=(0.0, -0.45), ncol=4 if len(lines) > 3 else len(lines),
                   frameon=False)
    from matplotlib.ticker import FuncFormatter
    axes[-1][0].set_xlim(t0, t_end)
    axes[-1][0].xaxis.set_major_formatter(FuncFormatter(
        lambda v, _: tpustyle.fmt_num(v * 1e-6 * k, 4)))
    axes[-1][0].set_xlabel("simulated time (%s)" % unit)
    if dropped:
        _below(fig, axes[-1][0], leg, "Truncated timeline: %s slices dropped after the cap of %s "
                      "(--timeline-max-events); unit rows end at %s of %s simulated."
                      % (tpustyle.fmt_num(dropped), tpustyle.fmt_num(other.get("max_events", 0)),
                         tpustyle.fmt_time((t1 - t0) * 1e-6),
                         tpustyle.fmt_time((t_end - t0) * 1e-6)))
        axes[0][0].set_title(axes[0][0].get_title() + " (truncated)")
    _save(fig, args)


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
    strong = doc.get("scaling_kind") == "strong" or doc.get("weak_scaling") is False
    if "step time (s)" in series:  # seconds are unreadable at pod scale: a unit by magnitude
        unit, k = tpustyle.time_unit(series["step time (s)"])
        series["step time (%s)" % unit] = [None if v is None else v * k
                                           for v in series.pop("step time (s)")]
        panels = ["step time (%s)" % unit if p == "step time (s)" else p for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(tpustyle.COLUMN, 0.5 + 1.25 * len(panels)),
                             sharex=True, squeeze=False)
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    chips = series["chips"]
    for ax, label in zip(axes[:, 0], panels):
        pts = sorted((c, v) for c, v in zip(chips, series[label])
                     if c is not None and v is not None)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        ax.plot(xs, ys, marker="o", color=tpustyle.PALETTE[0], label="simulated", zorder=3)
        # Ideal scaling from the smallest pod: weak scaling keeps the step time and MFU and
        # grows throughput with the chips; strong scaling also divides the step time.
        c0, v0 = pts[0]
        ideal = None
        if label.startswith("step time"):
            ideal = [v0 * c0 / c for c in xs] if strong else [v0] * len(xs)
        elif label.startswith("sustained") or label.startswith("MFU"):
            ideal = [v0 * c / c0 for c in xs] if label.startswith("sustained") else [v0] * len(xs)
        if ideal and len(xs) > 1:
            ax.plot(xs, ideal, ls="--", color=tpustyle.GREY, lw=0.9, label="ideal", zorder=2)
        ax.set_ylabel(label.replace("communication share", "comm. share"))
        if args.log:
            ax.set_xscale("log", base=2)
            if all(v > 0 for v in ys + (ideal or [])):
                ax.set_yscale("log")
                tpustyle.plain_log_axis(ax, "y", ys + (ideal or []))
                ax.set_ylabel(ax.get_ylabel() + ", log")
        else:
            ax.set_ylim(bottom=0, top=max(ys + (ideal or [])) * 1.12 or 1)
            ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: tpustyle.fmt_num(v)))
        if ax is axes[0][0]:
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, borderaxespad=0.1)
    if args.log:
        from matplotlib.ticker import FixedLocator, NullLocator
        ticks = []
        for c in sorted({c for c in chips if c is not None}, reverse=True):
            if not ticks or ticks[-1] / c >= 2.5:  # from the largest down: labels stay clear
                ticks.append(c)
        axes[-1][0].xaxis.set_major_locator(FixedLocator(ticks))
        axes[-1][0].xaxis.set_minor_locator(NullLocator())
        axes[-1][0].xaxis.set_major_formatter(FuncFormatter(lambda v, _: tpustyle.fmt_num(v)))
        axes[-1][0].set_xlabel("chips (log scale)")
    else:
        axes[-1][0].set_xlim(left=0)
        axes[-1][0].set_xlabel("chips")
    trace = os.path.basename(str(doc.get("trace", "?")))
    kind = "strong scaling" if strong else "weak scaling"
    fig.suptitle(_title(args, "Pod %s: %s on %s" % (kind, trace, doc.get("chip", "?"))),
                 y=0.985)
    fig.align_ylabels(axes[:, 0])
    fig.subplots_adjust(top=1 - 0.42 / fig.get_figheight(), hspace=0.22)
    _save(fig, args)


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
    to_s = 1e-12 if y.endswith("_ps") else 1.0 if y.endswith("time_s") else None
    if to_s:  # a time: shown in the unit its magnitude calls for
        unit, k = tpustyle.time_unit([(_as_float(r[y]) or 0) * to_s for r in ok])
        yscale = to_s * k
        ylabel = re.sub(r" \((ps|s|us)\)$", "", tpulib.axis_label(y)) + " (%s)" % unit
    fig, ax = plt.subplots(figsize=(tpustyle.COLUMN, 2.4))
    for key, rs in sorted(groups.items()):
        pts = []
        for r in rs:
            yv = _as_float(r[y])
            if yv is None:
                continue
            yv *= yscale
            pts.append((_as_float(r[x]) if numeric_x else cats.index(r[x]), yv))
        pts.sort()
        i = len(ax.lines)
        ax.plot([p[0] for p in pts], [p[1] for p in pts],
                marker=tpustyle.MARKERS[i % len(tpustyle.MARKERS)],
                label=", ".join(key) if key else y)
    if not numeric_x:
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats)
    xlabel, ylabel = args.xlabel or tpulib.axis_label(x), args.ylabel or ylabel
    if args.logx:
        ax.set_xscale("log")
        tpustyle.plain_log_axis(ax, "x", [p for ln in ax.lines for p in ln.get_xdata()])
        xlabel += ", log" if not args.xlabel else ""
    if args.logy:
        ax.set_yscale("log")
        tpustyle.plain_log_axis(ax, "y", [p for ln in ax.lines for p in ln.get_ydata()])
        ylabel += ", log" if not args.ylabel else ""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if groups and (len(groups) > 1 or others):
        tpustyle.legend_below(ax, offset=0.25)
    failed = len(rows) - len(ok)
    configs = sorted({os.path.basename(r["config"]) or "defaults" for r in ok})
    ax.set_title(_title(args, "Sweep on %s%s" % (", ".join(configs),
                 "; %d failed run(s) omitted" % failed if failed else "")))
    _save(fig, args)


def cmd_serve(args):
    """Latency against throughput per chip, one curve per `tpusim serve --json` file."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(tpustyle.COLUMN, 2.6))
    key = args.latency
    xs = []
    for i, path in enumerate(args.reports):
        doc = tpulib.load_json(path)
        runs = doc.get("runs") if isinstance(doc, dict) else None
        if not runs:
            raise ToolError("%s: no 'runs' (expected tpusim serve --json output)" % path)
        pts = sorted((_num(r, "output_tokens_per_s_per_chip", path),
                      _num(r, key + ".p50_s", path) * 1e3,
                      _num(r, key + ".p90_s", path) * 1e3) for r in runs)
        label = "%s, %s x%s" % (doc.get("model", "?"), doc.get("chip", "?"), doc.get("chips", "?"))
        if (doc.get("devices_per_chip") or 1) > 1:  # v7: --chips counts TensorCores
            dev, chips = doc.get("devices", 0), doc.get("chips", 0)
            label = "%s, %s x%s device%s (%s chip%s)" % (
                doc.get("model", "?"), doc.get("chip", "?"), dev, "" if dev == 1 else "s",
                tpustyle.fmt_num(chips), "" if chips <= 1 else "s")
        m = tpustyle.MARKERS[i % len(tpustyle.MARKERS)]
        (ln,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=m, label=label)
        ax.plot([p[0] for p in pts], [p[2] for p in pts], marker=m, linestyle="--",
                color=ln.get_color(), alpha=0.6)
        xs += [p[0] for p in pts]
    if args.target_ms:
        ax.axhline(args.target_ms, color="0.5", linewidth=0.8, linestyle=":")
    # Slices differ by 100x in tokens/s per chip (a 70B on 16 v5e chips against an 8B on one
    # v7): on a linear axis the slow curves collapse onto the y axis.
    pos = [x for x in xs if x > 0]
    logx = args.xscale == "log" or (args.xscale == "auto" and pos and max(pos) > 10 * min(pos))
    xlabel = "output tokens/s per chip"
    if logx:
        ax.set_xscale("log")
        tpustyle.plain_log_axis(ax, "x", pos)
        xlabel += ", log"
    ax.set_xlabel(xlabel)
    ax.set_ylabel("%s (ms; p50 solid, p90 dashed)" % key.upper())
    if args.logy:
        ax.set_yscale("log")
    tpustyle.legend_below(ax, offset=0.25)
    ax.set_title(_title(args, "Serving: %s against throughput" % key.upper()))
    _save(fig, args)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tpuplot.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("-o", "--output", required=True, help="figure file (.png/.svg/.pdf)")
        p.add_argument("--title", help="override the title (--title '' for none)")
        p.add_argument("--dpi", type=int, default=tpustyle.DEFAULT_DPI,
                       help="PNG resolution (default %d; PDF and SVG are vectors)"
                       % tpustyle.DEFAULT_DPI)

    p = sub.add_parser("roofline", help="roofline with the run and its regions")
    p.add_argument("reports", nargs="+", help="tpusim run --json reports")
    p.add_argument("--max-labels", type=int, default=12, help="label the N longest regions")
    common(p)
    p = sub.add_parser("units", help="per-unit utilisation and stall breakdown")
    p.add_argument("report", help="tpusim run --json report")
    common(p)
    p = sub.add_parser("energy", help="stacked energy by unit per region")
    p.add_argument("report", help="tpusim run --json report")
    p.add_argument("--max-regions", type=int, default=30,
                   help="show the N highest-energy regions, the rest as one bar (default 30)")
    common(p)
    p = sub.add_parser("timeline", help="busy fraction per unit over time")
    p.add_argument("timeline", help="tpusim run --timeline output")
    p.add_argument("--buckets", type=int, default=200, help="time buckets (default 200)")
    p.add_argument("--max-labels", type=int, default=12,
                   help="name at most N region spans (the widest)")
    common(p)
    p = sub.add_parser("scaling", help="pod scaling curves")
    p.add_argument("pod", help="tpusim pod --json report")
    p.add_argument("--log", action="store_true",
                   help="log-log axes (default linear, from zero: small changes look small)")
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
    p = sub.add_parser("serve", help="serving latency against throughput per chip")
    p.add_argument("reports", nargs="+", help="tpusim serve --json outputs (with --rates)")
    p.add_argument("--latency", choices=["tpot", "ttft", "e2e"], default="tpot")
    p.add_argument("--target-ms", type=float, help="draw a latency target line (ms)")
    p.add_argument("--xscale", choices=["auto", "log", "linear"], default="auto",
                   help="throughput axis: log, linear, or auto (log when the throughputs "
                        "span more than 10x; the default)")
    p.add_argument("--logy", action="store_true")
    common(p)
    args = ap.parse_args(argv)
    try:
        {"roofline": cmd_roofline, "units": cmd_units, "energy": cmd_energy,
         "timeline": cmd_timeline, "scaling": cmd_scaling, "sweep": cmd_sweep,
         "serve": cmd_serve}[args.cmd](args)
    except ToolError as e:
        sys.stderr.write("%s: %s\n" % (TOOL, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
