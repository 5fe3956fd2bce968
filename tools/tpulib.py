"""tpulib.py - helpers shared by tools/tpuplot.py and tools/sweep.py: loading tpusim's JSON
outputs with clear errors, dotted-path lookup into run reports, and finding a Python that has
the Debian packages the tools need (python3-matplotlib, python3-yaml)."""

import json
import os
import sys

# Exit status of a tool whose optional Python package is missing (tests skip on it).
EXIT_MISSING_PACKAGE = 3

# Interpreters tried, in order, when the running one lacks a module: the system Python is
# where Debian's python3-* packages install, and it may differ from the first python3 on
# PATH (pyenv, venvs).
SYSTEM_PYTHONS = ("/usr/bin/python3",)


def require_module(module, debian_package, tool):
    """Import `module`, re-running the tool under the system Python if only that one has it;
    exit with EXIT_MISSING_PACKAGE and a one-line message naming the Debian package if no
    interpreter has it."""
    try:
        return __import__(module)
    except ImportError:
        pass
    here = os.path.realpath(sys.executable or "")
    tried = os.environ.get("TPUSIM_TOOLS_REEXEC", "")
    for py in SYSTEM_PYTHONS:
        if os.path.exists(py) and os.path.realpath(py) != here and py not in tried:
            os.environ["TPUSIM_TOOLS_REEXEC"] = tried + ":" + py
            os.execv(py, [py] + sys.argv)
    sys.stderr.write("%s: Python module '%s' is missing (Debian: apt-get install %s)\n"
                     % (tool, module, debian_package))
    sys.exit(EXIT_MISSING_PACKAGE)


class ToolError(Exception):
    """A user-facing error: printed as one line 'tool: message', exit status 1."""


def load_json(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise ToolError("%s: cannot read: %s" % (path, e.strerror))
    except json.JSONDecodeError as e:
        raise ToolError("%s: line %d column %d: %s" % (path, e.lineno, e.colno, e.msg))


def load_run_report(path):
    """A `tpusim run --json` document; checks its schema key."""
    doc = load_json(path)
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("tpusim.run/"):
        raise ToolError("%s: not a 'tpusim run --json' report (no schema 'tpusim.run/N')" % path)
    return doc


_MISSING = object()


def lookup(doc, path, default=_MISSING):
    """Follow a dotted path into a JSON document. Parts index objects by key (a key that
    itself contains dots, like the "group.name" keys of "counters", matches several parts),
    arrays by number, or arrays of objects by their "name" member: "units.mxu0.util",
    "counters.hbm.row_hits". Raises KeyError naming the path unless a default is given."""
    parts = path.split(".")
    cur = doc
    i = 0
    while i < len(parts):
        part = parts[i]
        nxt = _MISSING
        if isinstance(cur, dict):
            for j in range(i + 1, len(parts) + 1):
                key = ".".join(parts[i:j])
                if key in cur:
                    nxt, i = cur[key], j - 1
                    break
        elif isinstance(cur, list):
            if part.isdigit() and int(part) < len(cur):
                nxt = cur[int(part)]
            else:
                for item in cur:
                    if isinstance(item, dict) and item.get("name") == part:
                        nxt = item
                        break
        if nxt is _MISSING:
            if default is _MISSING:
                raise KeyError(path)
            return default
        cur = nxt
        i += 1
    return cur


# Axis labels with units for the report paths and config-key suffixes the tools plot most.
METRIC_LABELS = {
    "summary.time_ps": "run time (ps)",
    "summary.time_s": "run time (s)",
    "summary.cycles": "run time (cycles)",
    "summary.instructions": "instructions",
    "summary.flops": "FLOPs",
    "summary.tflops": "achieved TFLOP/s",
    "summary.peak_tflops_bf16": "peak bf16 TFLOP/s",
    "summary.mxu_util": "MXU utilisation (fraction)",
    "summary.mac_util": "MAC utilisation (fraction of peak)",
    "summary.hbm_bytes": "HBM traffic (bytes)",
    "summary.hbm_gbs": "HBM bandwidth (GB/s)",
    "summary.hbm_util": "HBM utilisation (fraction of peak)",
    "roofline.intensity_flop_per_byte": "arithmetic intensity (FLOP/B)",
    "roofline.fraction_of_bound": "fraction of the roofline bound",
    "roofline.bound_tflops": "roofline bound (TFLOP/s)",
}
# Metrics shown in a more readable unit: path -> (label, factor applied to the values).
METRIC_SCALE = {
    "summary.time_ps": ("run time (us)", 1e-6),
    "summary.time_s": ("run time (us)", 1e6),
    "roofline.bound_time_ps": ("roofline bound on run time (us)", 1e-6),
}
SUFFIX_UNITS = [("_ps", "ps"), ("_ns", "ns"), ("ghz", "GHz"), ("gbps_per_pin", "Gbit/s per pin"),
                ("gbs", "GB/s"), ("bytes", "bytes"), ("_per_cycle", "per cycle"),
                ("util", "fraction"), ("_cycles", "cycles")]


def axis_label(name):
    """A metric path or config key with its unit, for axis labels."""
    if name in METRIC_LABELS:
        return METRIC_LABELS[name]
    for suffix, unit in SUFFIX_UNITS:
        if name.endswith(suffix):
            return "%s (%s)" % (name, unit)
    return name


def run_title(doc):
    """'trace on chip (config)' for plot titles."""
    trace = os.path.basename(str(doc.get("trace", "?")))
    config = doc.get("config") or "defaults"
    return "%s on %s (%s)" % (trace, doc.get("chip", "?"), os.path.basename(str(config)))


def short_names(paths):
    """Names that tell files apart in a legend: the base names without extension, with more of
    the path only where base names repeat."""
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(names)) == len(names):
        return names
    return [os.path.normpath(p) for p in paths]
