"""tpusim - the simulator from Python, in-process, through libtpusim.so and ctypes.

    import tpusim
    r = tpusim.run("v7", "traces/sample.tpt", overrides={"hbm.gbps_per_pin": 9.6})
    print(r["summary"]["time_s"])             # the document of `tpusim run --json`
    g = tpusim.gen("gemm", "v7", m=8192, n=8192, k=8192)     # -> path of the new trace
    p = tpusim.pod("v7", g, chips=256)        # the document of `tpusim pod --json`
    tpusim.config("v7")["hbm.channels"]       # the resolved config, keys as -p names them

Configs are YAML paths or preset names; overrides are {"dotted.key": value}, exactly what
`-p key=value` takes (the keys of tpusim.config()). Errors raise tpusim.Error (InputError for
bad input) carrying tpusim's one-line message. No compiled extension: the module loads the
shared library found by, in order, $TPUSIM_LIB, an install prefix (PREFIX/lib beside
PREFIX/share/tpusim/tools/python), a source checkout's build/, then the dynamic loader.
Calls are serialised by a lock (the simulation kernel is process-wide); for parallel runs
use processes, as tools/sweep.py does. See docs/python.md."""

import ctypes
import json
import os
import tempfile
import threading

__all__ = ["run", "gen", "pod", "config", "release", "library_path", "Error", "InputError",
           "DeadlockError", "TimeOverflowError"]

API_VERSION = 1  # the TPUSIM_API_VERSION this module was written for (sim/api/api.h)
_ERRLEN = 1024
_HERE = os.path.dirname(os.path.abspath(__file__))


class Error(Exception):
    """A failed call; str(e) is tpusim's one-line message, e.kind its class."""

    kind = "error"


class InputError(Error, ValueError):
    """Bad input: config, trace, option or path (what `tpusim` reports and exits 1 on)."""

    kind = "input"


class DeadlockError(Error):
    """The replay ended with work that nothing can unblock (the message names it)."""

    kind = "deadlock"


class TimeOverflowError(Error):
    """Simulated time passed the end of the 64-bit picosecond clock."""

    kind = "overflow"


_ERRORS = {1: InputError, 2: MemoryError, 3: DeadlockError, 4: TimeOverflowError}
_lock = threading.Lock()
_lib = None
_lib_path = None


def _candidates():
    env = os.environ.get("TPUSIM_LIB")
    if env:
        return [env]
    names = ("libtpusim.so", "libtpusim.so.0")
    # Installed: PREFIX/share/tpusim/tools/python/tpusim -> PREFIX/lib.
    prefix = os.path.normpath(os.path.join(_HERE, *[os.pardir] * 5))
    # Source checkout: tools/python/tpusim -> the repository's build/.
    repo = os.path.normpath(os.path.join(_HERE, *[os.pardir] * 3))
    out = [os.path.join(prefix, d, n) for d in ("lib", "lib64") for n in names]
    out += [os.path.join(repo, "build", n) for n in names]
    return out + list(names)  # last: the loader's search path (LD_LIBRARY_PATH, ldconfig)


def _load():
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    tried = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(path)
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            continue
        break
    else:
        raise ImportError("tpusim: libtpusim.so not found (build it, install it, or set "
                          "TPUSIM_LIB); tried: " + ", ".join(tried))
    lib.tpusim_api_version.restype = ctypes.c_int
    lib.tpusim_api_version.argtypes = []
    got = lib.tpusim_api_version()
    if got != API_VERSION:
        raise ImportError("tpusim: %s has API version %d, this module expects %d"
                          % (path, got, API_VERSION))
    cp, vp, sz = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t
    strs = ctypes.POINTER(ctypes.c_char_p)
    out = ctypes.POINTER(ctypes.c_void_p)
    lib.tpusim_api_release.restype = cp
    lib.tpusim_api_release.argtypes = []
    lib.tpusim_api_run.argtypes = [cp, strs, ctypes.c_uint, cp, out, cp, sz]
    lib.tpusim_api_gen.argtypes = [ctypes.c_int, strs, cp, sz]
    lib.tpusim_api_pod.argtypes = [ctypes.c_int, strs, out, cp, sz]
    lib.tpusim_api_config.argtypes = [cp, strs, ctypes.c_uint, out, cp, sz]
    for f in ("run", "gen", "pod", "config"):
        getattr(lib, "tpusim_api_" + f).restype = ctypes.c_int
    lib.tpusim_api_free.argtypes = [vp]
    lib.tpusim_api_free.restype = None
    _lib, _lib_path = lib, path
    return lib


def library_path():
    """The shared library this module uses."""
    _load()
    return _lib_path


def release():
    """The tpusim release of the loaded library, e.g. '0.1.0'."""
    return _load().tpusim_api_release().decode()


def _b(s):
    return None if s is None else os.fsencode(os.fspath(s))


def _strs(items):
    arr = (ctypes.c_char_p * (len(items) + 1))()
    for i, s in enumerate(items):
        arr[i] = _b(s)
    return arr


def _value(v):
    """A Python value as `-p` and the gen options take it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return repr(v)
    if isinstance(v, (list, tuple)):
        return ",".join(_value(x) for x in v)
    return str(v)


def _overrides(overrides):
    if not overrides:
        return []
    if not isinstance(overrides, dict):
        raise TypeError("overrides: expected a dict of dotted config keys to values")
    return ["%s=%s" % (k, _value(v)) for k, v in overrides.items()]


def _call(fn, *args, doc=True):
    """Call fn(*args, [&out,] errbuf, errlen) under the lock; the JSON document as a dict."""
    lib = _load()
    errbuf = ctypes.create_string_buffer(_ERRLEN)
    p = ctypes.c_void_p()
    with _lock:
        if doc:
            rc = getattr(lib, fn)(*args, ctypes.byref(p), errbuf, _ERRLEN)
        else:
            rc = getattr(lib, fn)(*args, errbuf, _ERRLEN)
    if rc:
        msg = errbuf.value.decode("utf-8", "replace") or "%s failed (%d)" % (fn, rc)
        raise _ERRORS.get(rc, Error)(msg)
    if not doc:
        return None
    try:
        return json.loads(ctypes.string_at(p.value).decode("utf-8"))
    finally:
        lib.tpusim_api_free(p)


def run(config, trace, overrides=None):
    """Replay trace on one chip of config; returns the `tpusim run --json` document
    (schema tpusim.run/1: summary, roofline, time_split_ps, units, regions, counters)."""
    ovr = _overrides(overrides)
    return _call("tpusim_api_run", _b(config), _strs(ovr), len(ovr), _b(trace))


def _options(options):
    """Keyword options as command-line options: d_model=4096 -> --d-model 4096; True -> a
    bare flag; False and None are left out; lists join with commas."""
    argv = []
    for k, v in options.items():
        if v is None or v is False:
            continue
        argv.append("--" + k.replace("_", "-"))
        if v is not True:
            argv.append(_value(v))
    return argv


def gen(kind, config, out=None, overrides=None, **options):
    """Generate a workload trace (`tpusim gen KIND -c CONFIG -o OUT [options]`); options are
    the kind's command-line options as keywords (tpusim gen KIND --help). Returns the path
    written: out, or a new temporary file that the caller owns when out is None."""
    if out is None:
        fd, out = tempfile.mkstemp(prefix="tpusim-%s-" % kind, suffix=".tpt")
        os.close(fd)
        made = True
    else:
        out, made = os.fspath(out), False
    argv = [kind]
    if config is not None:
        argv += ["-c", config]
    for o in _overrides(overrides):
        argv += ["-p", o]
    argv += ["-o", out] + _options(options)
    try:
        _call("tpusim_api_gen", len(argv), _strs(argv), doc=False)
    except Error:
        if made:
            os.unlink(out)
        raise
    return out


def pod(config, trace, chips=None, topology=None, mode=None, scaling=None, overrides=None,
        **options):
    """Estimate trace at pod scale (`tpusim pod`); returns the `tpusim pod --json` document.
    trace may be a list (per-chip traces, mode='full'); scaling a list of chip counts."""
    argv = []
    if config is not None:
        argv += ["-c", config]
    for o in _overrides(overrides):
        argv += ["-p", o]
    argv += _options({"chips": chips, "topology": topology, "mode": mode, "scaling": scaling})
    argv += _options(options)
    traces = [trace] if isinstance(trace, (str, bytes, os.PathLike)) else list(trace)
    argv += [os.fspath(t) for t in traces]
    return _call("tpusim_api_pod", len(argv), _strs(argv))


def config(name=None, overrides=None):
    """The resolved config (defaults, includes, overrides) as a flat dict keyed by the dotted
    key names ('mxu.rows': 256, ...), plus 'source': the file it came from. name=None gives
    the built-in defaults."""
    ovr = _overrides(overrides)
    return _call("tpusim_api_config", _b(name), _strs(ovr), len(ovr))
