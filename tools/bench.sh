#!/usr/bin/env bash
# bench.sh - simulation speed of the chip model: trace instructions per wall-second and
# simulated cycles per wall-second on the sample traces, and peak memory (RSS) as traces
# grow (1x, 4x, 16x the instructions), the kernel's raw event rate (kern_bench) and the start-up
# time of a tiny run, the import time of a 2 MB HLO module (tools/hlo_big.sh) and the README's
# 7B pod estimate. Ends with three verdict lines:
# instructions/s on the instruction-dense traces against the 4,000,000/s target (issue 19),
# kernel events per instruction on them against 1.5, and whether RSS stays flat.
# Usage: tools/bench.sh [BUILD_DIR]   (default: build)
# Each trace runs BENCH_REPEAT times (default 3) and the fastest run is kept: on a shared VM
# other work only ever adds time, so the best of a few runs is the least disturbed one.
# Speed is measured here, never in tests. CPU time and peak RSS come from wait4's rusage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
bin=$build/tpusim
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -x "$bin" ] || { echo "bench: $bin not built" >&2; exit 1; }

printf '%-34s %10s %12s %14s %14s %10s\n' trace insns wall_s insns/s cycles/s rss_MiB
repeat=${BENCH_REPEAT:-3}
# measure N CMD...: run CMD N times; print the start and end wall time of the fastest run, its
# CPU time (user + sys, both threads, from wait4's rusage) and the largest peak RSS in MiB.
# Peak RSS comes from /usr/bin/time, whose tiny image is what the command's RSS starts from
# (a process exec'd straight from Python would count Python's pages: Linux keeps the peak
# across exec); "-" without it.
cat >"$work/measure.py" <<'PY'
import os, sys, time
n, out, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
tm = os.path.exists("/usr/bin/time")
best, rss = None, 0
# stderr goes to OUT.err: with TPUSIM_BENCH_KERNEL=1 tpusim prints its kernel event count there;
# stdout (a pod report) to /dev/null
fa = [(os.POSIX_SPAWN_OPEN, 2, out + ".err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
      (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
for _ in range(n):
    argv = (["/usr/bin/time", "-f", "%M", "-o", out] if tm else []) + cmd
    t0 = time.time()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.time()
    if status:
        sys.exit("bench: %s failed" % " ".join(cmd))
    if tm:
        rss = max(rss, int(open(out).read().split()[-1]) // 1024)
    if best is None or t1 - t0 < best[1] - best[0]:
        best = (t0, t1, ru.ru_utime + ru.ru_stime)
print("%.6f %.6f %.6f %s" % (best[0], best[1], best[2], rss if tm else "-"))
PY
bench_one() { # bench_one NAME CONFIG TRACE [GROUP]: GROUP names the log the verdicts read
    local name=$1 cfg=$2 trace=$3 t0 t1 cpu rss out
    out=$(TPUSIM_BENCH_KERNEL=1 python3 "$work/measure.py" "$repeat" "$work/rss" "$bin" run -q \
        -c "$cfg" --json "$work/r.json" "$trace")
    read -r t0 t1 cpu rss <<<"$out"
    local ev
    ev=$(sed -n 's/.*kernel: \([0-9]*\) events.*/\1/p' "$work/rss.err")
    python3 - "$work/r.json" "$name" "$t0" "$t1" "$rss" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = r["summary"]
wall = float(sys.argv[4]) - float(sys.argv[3])
print("%-34s %10d %12.3f %14.0f %14.0f %10s" % (sys.argv[2], s["instructions"], wall,
      s["instructions"] / wall, s["cycles"] / wall, sys.argv[5]))
PY
    echo "$name $(python3 -c "import json; print(json.load(open('$work/r.json'))['summary']['instructions'])") ${ev:-0} $cpu $t0 $t1 $rss" >>"$work/${4:-other}.log"
}

for t in "$root"/traces/*.tpt; do
    bench_one "$(basename "$t")" "$root/configs/v7.yaml" "$t"
done
v7=$root/configs/v7.yaml
# Growing traces, 1x / 4x / 16x the instructions; memory must stay flat. A GEMM moves
# megabytes per instruction (bound by the HBM model's work per byte); decode steps and
# attention are instruction-dense (many small MXU, vector and strided DMA instructions).
for m in 2048 8192 32768; do
    "$bin" gen gemm --m "$m" --n 8192 --k 8192 -c "$v7" -o "$work/g$m.tpt" >/dev/null
    bench_one "gemm ${m}x8192x8192 (v7)" "$v7" "$work/g$m.tpt" gemm
done
for l in 2 8 32; do
    "$bin" gen llm-step --layers "$l" --d-model 1024 --heads 16 --d-ff 4096 --vocab 32000 \
        --seq 1024 --batch 8 --decode -c "$v7" -o "$work/l$l.tpt" >/dev/null
    bench_one "llm-step decode L=$l (v7)" "$v7" "$work/l$l.tpt" dense
done
for b in 4 16 64; do
    "$bin" gen attention --batch "$b" --heads 16 --seq 2048 --head-dim 128 -c "$v7" \
        -o "$work/a$b.tpt" >/dev/null
    bench_one "attention b=$b s=2048 (v7)" "$v7" "$work/a$b.tpt" dense
done

# The kernel's raw event rate, measured now (same machine, same load).
"$build/kern_bench" 2000000
# Start-up: the whole process (exec, loading, config, elaboration, replay, report) for the
# 68-instruction sample, fastest of BENCH_STARTUP_REPEAT runs (default 50), against a process
# doing nothing (/bin/true), a process that only loads libsystemc and starts the kernel
# (kern_bench --startup: the floor of any run, set by Debian's shared SystemC: its loading,
# relocations and static initialisers) and the same run at the DMA maximum (engines and slots
# made lazily).
cat >"$work/startup.py" <<'PY'
import os, sys, time
n = int(sys.argv[1])
def best(argv):
    b = None
    for _ in range(n):
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ)
        _, status = os.waitpid(pid, 0)
        t = time.perf_counter() - t0
        if status:
            sys.exit("bench: %s failed" % " ".join(argv))
        b = t if b is None or t < b else b
    return b * 1e3
true = best(["/bin/true"])
floor = best([sys.argv[2], "--startup"])
run = best(sys.argv[3:])
dmax = best(sys.argv[3:5] + ["-p", "dma.engines=256", "-p", "dma.outstanding=1024"] + sys.argv[5:])
print("start-up: %.2f ms for `tpusim run -q -c v7 sample.tpt` (best of %d; /bin/true %.2f ms, "
      "libsystemc loaded and the kernel started %.2f ms), %.2f ms at the DMA maximum "
      "(dma.engines=256 dma.outstanding=1024); target < 2 ms: %s"
      % (run, n, true, floor, dmax, "PASS" if run < 2.0 else "FAIL"))
PY
python3 "$work/startup.py" "${BENCH_STARTUP_REPEAT:-50}" "$build/kern_bench" "$bin" run -q -c "$v7" \
    "$root/traces/sample.tpt"

# HLO import speed (issue 16's target: a 2 MB module in under a second): the unrolled 420-layer
# MLP training step tools/hlo_big.sh writes, imported on v7 (parse, cost, IR, lowering, trace).
bash "$root/tools/hlo_big.sh" >"$work/big.hlo"
out=$(python3 "$work/measure.py" "$repeat" "$work/rss" "$bin" import hlo "$work/big.hlo" -c "$v7" \
    -q -o "$work/big.tpt")
read -r t0 t1 cpu rss <<<"$out"
python3 - "$t0" "$t1" "$cpu" "$rss" "$repeat" "$(wc -c <"$work/big.hlo")" <<'PY'
import sys
t0, t1, cpu, rss, n, size = sys.argv[1:]
wall = float(t1) - float(t0)
print("hlo import: %d-byte module (tools/hlo_big.sh) in %.3f s wall (best of %s), %.3f s CPU, "
      "%s MiB peak RSS; target < 1 s for 2 MB: %s"
      % (int(size), wall, n, float(cpu), rss, "PASS" if wall < 1.0 and int(size) >= 2e6 else "FAIL"))
PY

# The README's pod estimate: the 7B training step on a 9,216-chip Ironwood pod (issue 19's
# target: under 4 s and 64 MB). BENCH_POD=0 skips it (about 20 s with the default repeats).
if [ "${BENCH_POD:-1}" != 0 ]; then
    "$bin" gen llm-step -c "$v7" -p ici.dims=16x24x24 -o "$work/l7b.tpt" --layers 32 \
        --d-model 4096 --heads 32 --d-ff 11008 --vocab 32000 --seq 4096 --batch 9216 \
        --fsdp 384 --fsdp-axes xy --data-parallel 24 --dp-axes z >/dev/null
    out=$(python3 "$work/measure.py" "$repeat" "$work/rss" "$bin" pod -c "$v7" "$work/l7b.tpt" \
        --chips 9216 --json "$work/pod.json")
    read -r t0 t1 cpu rss <<<"$out"
    python3 - "$t0" "$t1" "$cpu" "$rss" "$repeat" <<'PY'
import sys
t0, t1, cpu, rss, n = sys.argv[1:]
wall = float(t1) - float(t0)
ok = wall < 4.0 and rss != "-" and int(rss) < 64
print("pod: 7B training step on a 9,216-chip v7 pod (README command): %.2f s wall (best of %s), "
      "%.2f s CPU, %s MiB peak RSS; target < 4 s and < 64 MB: %s"
      % (wall, n, float(cpu), rss, "PASS" if ok else "FAIL"))
PY
fi

# Verdicts. Speed: instructions over wall time summed over the instruction-dense traces
# (process start-up included); the rate per CPU-second and the load average are printed too,
# since other work on the machine stretches wall time. Memory: largest / smallest peak RSS per growing family.
python3 - "$work" "$repeat" <<'PY'
import sys
work = sys.argv[1]
def rows(group):
    out = []
    for line in open("%s/%s.log" % (work, group)):
        f = line.split()
        out.append((" ".join(f[:-6]), int(f[-6]), float(f[-2]) - float(f[-3]), f[-1], f[-4],
                    int(f[-5])))
    return out
dense = rows("dense")
insns = sum(r[1] for r in dense); wall = sum(r[2] for r in dense)
rate = insns / wall if wall else 0.0
cpus = [float(r[4]) for r in dense if r[4] != "-"]
cpu = ("; %.0f per CPU-second (user + sys)" % (insns / sum(cpus))
       if cpus and sum(cpus) > 0 and len(cpus) == len(dense) else "")
load = open("/proc/loadavg").read().split()[0] if __import__("os").path.exists("/proc/loadavg") else "?"
print("verdict: speed %s: %.0f instructions per wall-second on the instruction-dense traces, "
      "best of %s runs each, start-up included (target 4000000%s; load average %s)"
      % ("PASS" if rate >= 4e6 else "FAIL", rate, sys.argv[2], cpu, load))
events = sum(r[5] for r in dense)
epi = events / insns if insns else 0.0
print("verdict: events %s: %.2f kernel events per instruction on the instruction-dense traces "
      "(%d events, target <= 1.5); %.0f events per wall-second, start-up included, against the "
      "kernel's own rate above" % ("PASS" if epi <= 1.5 else "FAIL", epi, events,
                                   events / wall if wall else 0.0))
flat = True; parts = []
for fam, rs in (("gemm", rows("gemm")), ("decode", dense[:3]), ("attention", dense[3:])):
    rss = [int(r[3]) for r in rs if r[3] != "-"]
    if not rss:
        continue
    ratio = max(rss) / max(min(rss), 1)
    flat = flat and ratio <= 1.25
    parts.append("%s %s MiB" % (fam, "/".join(str(x) for x in rss)))
print("verdict: memory %s: peak RSS at 1x/4x/16x instructions: %s (flat = within 25%%)"
      % ("PASS" if flat else "FAIL", "; ".join(parts)))
PY
