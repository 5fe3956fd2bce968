"""tpustyle.py - the one style of every tools/tpuplot.py figure, made for a paper: sizes for a
two-column layout (a column is 3.5 in, the page 7.16 in, and text is set at the size it
will print: 8 pt labels, 7 pt ticks and legends), the Okabe-Ito colour-blind-safe palette,
units chosen by magnitude, labelled log axes, legends and notes outside the data, and
output by file extension (PDF and SVG as vectors with embedded or real text, PNG at --dpi)."""

import math
import os
import textwrap

# Figure widths in inches: one column of a two-column paper (IEEE, ACM) and the full page.
COLUMN = 3.5
PAGE = 7.16
FONT = 8  # labels; ticks and legends one point less, notes two
DEFAULT_DPI = 200

# Okabe & Ito (2008), "Color Universal Design": distinct under the common colour-vision
# deficiencies and in greyscale print by lightness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
GREY = "#777777"


def apply(matplotlib):
    """Set matplotlib's rcParams for every figure of the run."""
    from cycler import cycler
    matplotlib.rcParams.update({
        "font.size": FONT,
        "axes.titlesize": FONT,
        "axes.labelsize": FONT,
        "xtick.labelsize": FONT - 1,
        "ytick.labelsize": FONT - 1,
        "legend.fontsize": FONT - 1,
        "legend.title_fontsize": FONT - 1,
        "legend.frameon": False,
        "figure.titlesize": FONT + 1,
        "axes.prop_cycle": cycler(color=PALETTE),
        "axes.grid": True,
        "grid.alpha": 0.3,
        "grid.linewidth": 0.5,
        "axes.linewidth": 0.6,
        "lines.linewidth": 1.2,
        "lines.markersize": 3.5,
        "xtick.major.width": 0.6,
        "ytick.major.width": 0.6,
        "savefig.bbox": "tight",
        "savefig.pad_inches": 0.03,
        "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by paper systems
        "ps.fonttype": 42,
        "svg.fonttype": "none",  # SVG text stays text
    })


def save(fig, path, dpi=None):
    """Write fig by the extension of path (.png, .pdf, .svg) atomically; dpi for PNG.
    Raises ValueError for another extension and OSError when the file cannot be written."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".svg", ".pdf"):
        raise ValueError("%s: output must end in .png, .svg or .pdf" % path)
    tmp = path + ".tmp" + ext
    try:
        fig.savefig(tmp, dpi=dpi or DEFAULT_DPI, metadata=_metadata(ext))
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _metadata(ext):
    # Reproducible vector files: no creation date in PDF and SVG.
    if ext == ".pdf":
        return {"CreationDate": None}
    if ext == ".svg":
        return {"Date": None}
    return None


# ---- units by magnitude ----

TIME_UNITS = [("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9), ("ps", 1e-12)]


def time_unit(seconds):
    """(unit, factor) such that max(seconds) * factor lies in [1, 1000): values in seconds."""
    vals = [abs(v) for v in seconds if v is not None and v == v and v != 0]
    top = max(vals) if vals else 1.0
    for unit, size in TIME_UNITS:
        if top >= size:
            return unit, 1.0 / size
    return "ps", 1e12


ENERGY_UNITS = [("J", 1.0), ("mJ", 1e-3), ("uJ", 1e-6), ("nJ", 1e-9), ("pJ", 1e-12)]


def energy_unit(joules):
    """(unit, factor) such that max(joules) * factor lies in [1, 1000): values in joules."""
    vals = [abs(v) for v in joules if v is not None and v == v and v != 0]
    top = max(vals) if vals else 1.0
    for unit, size in ENERGY_UNITS:
        if top >= size:
            return unit, 1.0 / size
    return "pJ", 1e12


def fmt_time(seconds, digits=4):
    """'217.9 ms' for 0.2179."""
    unit, k = time_unit([seconds])
    return "%s %s" % (fmt_num(seconds * k, digits), unit)


def fmt_num(v, digits=3):
    """A number for a label: significant digits, no exponent for everyday magnitudes, thousands
    separated for large integers."""
    if v == 0 or v != v:
        return "0" if v == 0 else "n/a"
    a = abs(v)
    if a >= 1e4 and float(v).is_integer():
        return "{:,}".format(int(v))
    if 1e-3 <= a < 1e6:
        s = "%.*g" % (digits, v)
        return s if "e" not in s else "%.0f" % v
    return "%.*g" % (digits, v)


# ---- axes ----

def plain_log_axis(ax, axis="y", values=None):
    """A log axis whose ticks read as numbers (1, 10, 100; 0.5 and 2 between when the data span
    less than a decade), never '10^0' alone or a single labelled tick."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    a = ax.yaxis if axis == "y" else ax.xaxis
    fmt = FuncFormatter(lambda v, _: fmt_num(v, 3))
    a.set_major_formatter(fmt)
    vals = [v for v in (values or []) if v and v > 0]
    if vals and max(vals) / min(vals) < 30:
        a.set_minor_locator(LogLocator(base=10, subs=(2, 3, 5)))
        a.set_minor_formatter(fmt)
    else:
        a.set_minor_formatter(NullFormatter())


def legend_below(ax, handles=None, labels=None, ncol=None, offset=0.18):
    """A legend under the axes (outside the data), centred, in as many columns as fit."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if ncol is None:
        longest = max(len(str(lb)) for lb in labels)
        width_in = ax.figure.get_figwidth() * ax.get_position().width
        fit = max(1, int(width_in * 72 / ((FONT - 1) * 0.55 * longest + 24)))
        ncol = min(len(handles), fit)
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -offset),
                     ncol=ncol, frameon=False, borderaxespad=0, handlelength=1.8,
                     columnspacing=1.2)


def note(fig, text, y=None):
    """A note in small grey type under the figure, wrapped to its width (never off the page)."""
    if not text:
        return
    chars = int(fig.get_figwidth() * 72 / ((FONT - 2) * 0.5))
    wrapped = "\n".join(textwrap.wrap(text, chars))
    fig.text(0.01, -0.01 if y is None else y, wrapped, fontsize=FONT - 2, color=GREY,
             ha="left", va="top")


def boxes_overlap(a, b, pad=1.0):
    return not (a.x1 + pad <= b.x0 or b.x1 + pad <= a.x0 or a.y1 + pad <= b.y0 or
                b.y1 + pad <= a.y0)


def place_labels(fig, ax, points, offsets=None, fontsize=None, avoid=()):
    """Annotate points [((x, y), text)] without overlaps: each label tries offsets around its
    point and takes the first whose rendered box clears the labels placed so far, the axes'
    edges, and the artists in `avoid` (e.g. a legend); a label with no free place is left
    out. Returns the number left out."""
    fontsize = fontsize or FONT - 2
    offsets = offsets or [(4, 2, "left", "bottom"), (4, -2, "left", "top"),
                          (-4, 2, "right", "bottom"), (-4, -2, "right", "top"),
                          (0, 6, "center", "bottom"), (0, -6, "center", "top"),
                          (12, 14, "left", "bottom"), (12, -14, "left", "top"),
                          (-12, 14, "right", "bottom"), (-12, -14, "right", "top"),
                          (20, 26, "left", "bottom"), (20, -26, "left", "top"),
                          (-20, 26, "right", "bottom"), (-20, -26, "right", "top")]
    r = fig.canvas.get_renderer()
    frame = ax.get_window_extent(r)
    placed = [a.get_window_extent(r) for a in avoid if a is not None]
    left_out = 0
    for (x, y), text in points:
        for dx, dy, ha, va in offsets:
            far = abs(dx) + abs(dy) > 10  # away from its point: a leader line says whose
            t = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha,
                            va=va, fontsize=fontsize, annotation_clip=True,
                            arrowprops=dict(arrowstyle="-", lw=0.4, color=GREY, shrinkA=0,
                                            shrinkB=2) if far else None)
            b = t.get_window_extent(r)
            inside = (b.x0 >= frame.x0 and b.x1 <= frame.x1 and b.y0 >= frame.y0 and
                      b.y1 <= frame.y1)
            if inside and not any(boxes_overlap(b, p) for p in placed):
                placed.append(b)
                break
            t.remove()
        else:
            left_out += 1
    return left_out


def log_ticks_decades(lo, hi):
    """Powers of ten between lo and hi (for labelled log axes)."""
    return [10.0 ** e for e in range(int(math.floor(math.log10(lo))),
                                     int(math.ceil(math.log10(hi))) + 1)]
