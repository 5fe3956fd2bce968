/* test_robust.c - robustness: deterministic reports, saturating counters, constant-memory
 * streaming of long traces, and I/O and allocation failures that must give errors, never
 * crashes or stray files. Fuzzing lives in tests/fuzz (tools/fuzz.sh); crashes it finds are
 * pinned here as regression tests. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "asm.h"
#include "config.h"
#include "report.h"
#include "run.h"
#include "stats.h"
#include "trace.h"

#if defined(__SANITIZE_ADDRESS__)
#define ROBUST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ROBUST_ASAN 1
#endif
#endif
#ifndef ROBUST_ASAN
#define ROBUST_ASAN 0
#endif

#define V7_PRESET TPUSIM_SOURCE_DIR "/configs/v7.yaml"

#include "harness.h"
#include "tmpleft.h"

static isa_insn mk(isa_opcode op, unsigned wait, unsigned signal, ...)
{
    isa_insn in;
    memset(&in, 0, sizeof in);
    in.op = (uint16_t)op;
    in.wait = (uint16_t)wait;
    in.signal = (uint16_t)signal;
    const isa_info *info = isa_info_of(op);
    va_list ap;
    va_start(ap, signal);
    for (int i = 0; i < info->nargs; i++)
        in.arg[i] = va_arg(ap, uint64_t);
    va_end(ap);
    return in;
}

#define U(x) ((uint64_t)(x))
/* wait/signal take semaphore+1; SEM(s) names semaphore s. */
#define SEM(s) ((s) + 1)

/* A small workload touching DMA, MXU, VPU, marks and semaphores. */
static void write_mixed_trace(const char *path)
{
    trace_writer *w;
    err e;
    assert_int_equal(trace_writer_open(&w, path, "test_robust mixed", &e), 0);
    isa_insn m = mk(ISA_OP_MARK, 0, 0, U(5));
    strcpy(m.name, "layer");
    assert_int_equal(trace_writer_put(w, &m, &e), 0);
    for (unsigned t = 0; t < 8; t++) {
        isa_insn seq[] = {
            mk(ISA_OP_DMA_H2V, 0, SEM(0), U(t * 65536), U(0), U(32768), U(0), U(0)),
            mk(ISA_OP_DMA_H2V, 0, SEM(1), U(0x100000 + t * 65536), U(65536), U(32768), U(0), U(0)),
            mk(ISA_OP_MXU_LDW, SEM(0), 0, U(t % 4), U(0), U(128), U(128), U(ISA_DT_BF16)),
            mk(ISA_OP_MXU_MATMUL, SEM(1), SEM(2), U(t % 4), U(65536), U(131072), U(128),
               U(ISA_DT_BF16), U(0)),
            mk(ISA_OP_V_EXP, SEM(2), SEM(3), U(131072), U(262144), U(16384), U(ISA_DT_FP32)),
            mk(ISA_OP_DMA_V2H, SEM(3), 0, U(0x400000 + t * 65536), U(262144), U(65536), U(0), U(0)),
        };
        for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++)
            assert_int_equal(trace_writer_put(w, &seq[i], &e), 0);
    }
    assert_int_equal(trace_writer_close(w, &e), 0);
}

/* Remove the provenance's wall-clock lines ("started_utc", "wall_s") from a JSON report in
 * place: the only bytes that differ between two runs of the same inputs. */
static void drop_wall_clock(uint8_t *buf, size_t *size)
{
    size_t out = 0;
    for (size_t i = 0; i < *size;) {
        size_t j = i;
        while (j < *size && buf[j] != '\n')
            j++;
        j += j < *size;
        int wall = 0;
        for (size_t k = i; k + 8 <= j && !wall; k++)
            wall = !memcmp(buf + k, "\"wall_s\"", 8) ||
                   (k + 13 <= j && !memcmp(buf + k, "\"started_utc\"", 13));
        if (!wall) {
            memmove(buf + out, buf + i, j - i);
            out += j - i;
        }
        i = j;
    }
    *size = out;
}

/* ------------------------------------------------------------------ determinism */

static void run_to_json(const char *config, const char *trace, const char *json)
{
    run s;
    err e;
    int rc = run_trace(&s, config, NULL, 0, trace, NULL, &e);
    if (rc)
        fail_msg("sim_run_trace: %s", e.msg);
    if (report_json(&s.rep, json, &e))
        fail_msg("report_json: %s", e.msg);
    run_fini(&s);
}

static void test_same_trace_twice_in_one_process_gives_identical_json(void **state)
{
    (void)state;
    char trace[300], a[300], b[300], c[300];
    harness_path("mixed.tpt", trace, sizeof trace);
    harness_path("a.json", a, sizeof a);
    harness_path("b.json", b, sizeof b);
    harness_path("c.json", c, sizeof c);
    write_mixed_trace(trace);
    run_to_json(V7_PRESET, trace, a);
    run_to_json(NULL, trace, c); /* a different machine in between must not leak state */
    run_to_json(V7_PRESET, trace, b);
    size_t na, nb, nc;
    uint8_t *ba = (uint8_t *)harness_slurp(a, &na), *bb = (uint8_t *)harness_slurp(b, &nb),
            *bc = (uint8_t *)harness_slurp(c, &nc);
    drop_wall_clock(ba, &na);
    drop_wall_clock(bb, &nb);
    drop_wall_clock(bc, &nc);
    assert_int_equal(na, nb);
    assert_memory_equal(ba, bb, na);
    /* Sanity: the run did something and the other machine gave another answer. */
    assert_non_null(strstr((const char *)ba, "\"instructions\""));
    assert_true(na != nc || memcmp(ba, bc, na) != 0);
    free(ba);
    free(bb);
    free(bc);
}

/* ------------------------------------------------------------------ counters */

static void test_stats_add_sat_saturates_and_flags_overflow(void **state)
{
    (void)state;
    int ovf = 0;
    assert_int_equal(stats_add_sat(1, 2, &ovf), 3);
    assert_int_equal(ovf, 0);
    assert_true(stats_add_sat(UINT64_MAX - 5, 5, &ovf) == UINT64_MAX);
    assert_int_equal(ovf, 0); /* exactly the maximum is not an overflow */
    assert_true(stats_add_sat(UINT64_MAX - 5, 6, &ovf) == UINT64_MAX);
    assert_int_equal(ovf, 1);
    ovf = 0;
    assert_true(stats_add_sat(UINT64_MAX, UINT64_MAX, &ovf) == UINT64_MAX);
    assert_int_equal(ovf, 1);
    /* The flag is sticky (only ever set) and NULL is allowed. */
    assert_true(stats_add_sat(1, 1, &ovf) == 2);
    assert_int_equal(ovf, 1);
    assert_true(stats_add_sat(UINT64_MAX, 1, NULL) == UINT64_MAX);
    /* Accumulating past 2^64 stays pinned at the maximum instead of wrapping. */
    uint64_t acc = 0;
    ovf = 0;
    for (int i = 0; i < 5; i++)
        acc = stats_add_sat(acc, UINT64_MAX / 4, &ovf);
    assert_true(acc == UINT64_MAX);
    assert_int_equal(ovf, 1);
}

/* ------------------------------------------------------------------ streaming memory */

#define LONG_TRACE_INSNS 3000000u

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

typedef struct rss_probe {
    uint64_t calls;
    long peak;
} rss_probe;

static void rss_observer(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                         uint64_t end_ps, unsigned region, uint64_t bytes)
{
    (void)idx, (void)op, (void)u, (void)start_ps, (void)end_ps, (void)region, (void)bytes;
    rss_probe *p = ctx;
    if ((p->calls++ & 0x3ffff) == 0) {
        long r = rss_bytes();
        if (r > p->peak)
            p->peak = r;
    }
}

static void test_three_million_instructions_stream_in_bounded_memory(void **state)
{
    (void)state;
    char path[300];
    harness_path("long.tpt", path, sizeof path);
    trace_writer *w;
    err e;
    assert_int_equal(trace_writer_open(&w, path, NULL, &e), 0);
    isa_insn nop = mk(ISA_OP_NOP, 0, 0);
    isa_insn add = mk(ISA_OP_V_ADD, 0, 0, U(0), U(4096), U(8), U(ISA_DT_BF16));
    for (unsigned i = 0; i < LONG_TRACE_INSNS; i++)
        assert_int_equal(trace_writer_put(w, (i & 1) ? &add : &nop, &e), 0);
    assert_int_equal(trace_writer_close(w, &e), 0);

    /* Warm up once on a short trace so one-time allocations (kernel, pools) are not
     * counted as growth. */
    char mixed[300];
    harness_path("warm.tpt", mixed, sizeof mixed);
    write_mixed_trace(mixed);
    run s;
    assert_int_equal(run_trace(&s, NULL, NULL, 0, mixed, NULL, &e), 0);
    run_fini(&s);

    long before = rss_bytes();
    assert_true(before > 0);
    rss_probe probe = {.calls = 0, .peak = before};
    sim_hooks hooks = {.observer = rss_observer, .ctx = &probe};
    if (run_trace(&s, NULL, NULL, 0, path, &hooks, &e))
        fail_msg("sim_run_trace: %s", e.msg);
    long after = rss_bytes();
    if (after > probe.peak)
        probe.peak = after;
    assert_int_equal(s.rep.insns, LONG_TRACE_INSNS);
    assert_int_equal(probe.calls, LONG_TRACE_INSNS / 2); /* one completion per v.add */
    run_fini(&s);
    long growth = probe.peak - before;
    print_message("rss before %ld KiB, peak %ld KiB, growth %ld KiB\n", before / 1024,
                  probe.peak / 1024, growth / 1024);
    assert_true(growth < 32L * 1024 * 1024);
}

/* Run fn in a child process whose file-size limit is `limit` bytes (writes past it fail with
 * EFBIG instead of raising SIGXFSZ) and that is killed after CHILD_TIMEOUT_S seconds, so a
 * hang fails the test quickly. The child also keeps the kernel's process-wide clock out of
 * the parent. Returns the child's exit status; a signal (crash or hang) fails the test. */
#define CHILD_TIMEOUT_S 30
static int in_child_with_fsize(rlim_t limit, int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        alarm(CHILD_TIMEOUT_S);
        struct rlimit rl = {limit, limit};
        if (setrlimit(RLIMIT_FSIZE, &rl))
            _exit(99);
        _exit(fn(arg));
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st))
        fail_msg("child killed by signal %d (%s)", WTERMSIG(st),
                 WTERMSIG(st) == SIGALRM ? "hang: no result within the time limit" : "crash");
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* ------------------------------------------------------------------ regressions
 * Inputs found by fuzzing and probing that the simulator got wrong. */

/* Write a trace of `count` copies of `in` to the test directory/name; fills path. */
static void write_repeated(char *path, size_t cap, const char *name, const isa_insn *in,
                           unsigned count)
{
    harness_path(name, path, cap);
    trace_writer *w;
    err e;
    assert_int_equal(trace_writer_open(&w, path, NULL, &e), 0);
    for (unsigned i = 0; i < count; i++)
        assert_int_equal(trace_writer_put(w, in, &e), 0);
    assert_int_equal(trace_writer_close(w, &e), 0);
}

/* v.add n=2^60+1 bf16 needs 2^61+2 bytes of VMEM, but n x 16 bits wraps to 16 in 64-bit
 * arithmetic (sim/core.c dt_bytes), so the VMEM bounds check passed and the run "succeeded"
 * reading exabytes from a 16 MiB VMEM. Must be a VMEM range error naming the instruction. */
typedef struct run_job {
    const char *trace;
    const char **ovr;
    unsigned novr;
    const char *want[2]; /* substrings the error message must hold */
} run_job;

/* Child: the run must fail with a message holding both wanted substrings. Exit codes:
 * 0 as expected, 3 the run succeeded, 4 the message lacks a substring. */
static int child_run_must_fail(void *arg)
{
    run_job *j = arg;
    run s;
    err e = {0};
    int rc = run_trace(&s, NULL, j->ovr, j->novr, j->trace, NULL, &e);
    if (rc == 0)
        fprintf(stderr, "run succeeded: %llu ps, %llu instructions\n",
                (unsigned long long)s.rep.end_ps, (unsigned long long)s.rep.insns);
    else
        fprintf(stderr, "run failed: %s\n", e.msg);
    run_fini(&s);
    if (rc == 0)
        return 3;
    for (int i = 0; i < 2; i++)
        if (j->want[i] && !strstr(e.msg, j->want[i]))
            return 4;
    return 0;
}

static void test_vector_length_whose_byte_size_overflows_is_a_vmem_error(void **state)
{
    (void)state;
    char path[300];
    isa_insn in = mk(ISA_OP_V_ADD, 0, 0, U(0), U(0), U(0x1000000000000001), U(ISA_DT_BF16));
    write_repeated(path, sizeof path, "vlen.tpt", &in, 1);
    run_job j = {.trace = path, .want = {"instruction 0", "VMEM"}};
    assert_int_equal(in_child_with_fsize(RLIM_INFINITY, child_run_must_fail, &j), 0);
}

/* 4000 transcendental ops of 2^39 bf16 elements at 0.05 GHz and 1000 cycles per vreg take
 * 2^28 x 1000 x 20000 ps = 5.4e15 ps each, 2.2e19 ps in all: more than 2^64 ps. The run
 * reported a time of 1.844e19 ps (clamped) as if nothing happened, and after an earlier
 * simulation in the same process (the kernel's clock is process-wide) it hung in
 * vpu_pipe_event. A simulated time that does not fit the 64-bit clock must be an error. */
static void test_simulated_time_beyond_64_bits_is_an_error(void **state)
{
    (void)state;
    char path[300];
    isa_insn in = mk(ISA_OP_V_EXP, 0, 0, U(0), U(0), U(1) << 39, U(ISA_DT_BF16));
    write_repeated(path, sizeof path, "longtime.tpt", &in, 4000);
    const char *ovr[] = {"vmem.bytes=1TiB", "vpu.trans_cycles=1000", "chip.clock_ghz=0.05"};
    run_job j = {.trace = path, .ovr = ovr, .novr = 3, .want = {"longtime.tpt", NULL}};
    assert_int_equal(in_child_with_fsize(RLIM_INFINITY, child_run_must_fail, &j), 0);
}

/* ici.allreduce of 2^64-1 bytes per chip: nothing bounds ICI byte counts, and the run
 * "succeeded" with a time clamped near 2^63 ps. An instruction whose time cannot be
 * represented must be an error naming it, not a clamped report. */
static void test_collective_too_large_to_time_is_an_error(void **state)
{
    (void)state;
    char path[300];
    isa_insn in = mk(ISA_OP_ICI_ALLREDUCE, 0, 0, U(3), UINT64_MAX, U(ISA_DT_BF16));
    write_repeated(path, sizeof path, "huge_ici.tpt", &in, 1);
    run_job j = {.trace = path, .want = {"huge_ici.tpt", "instruction 0"}};
    assert_int_equal(in_child_with_fsize(RLIM_INFINITY, child_run_must_fail, &j), 0);
}

/* 8200 matmuls of 2^26 x 4096 x 4096 bf16 are 2^51 FLOPs each, 1.8e19 in all: more than
 * 2^64, in only ~825 s of simulated time. The core's FLOP total wrapped silently (the report
 * said 2^54). A total that does not fit 64 bits must be an error naming the instruction. */
static void test_flop_total_beyond_64_bits_is_an_error(void **state)
{
    (void)state;
    char path[300];
    harness_path("flops.tpt", path, sizeof path);
    trace_writer *w;
    err e;
    assert_int_equal(trace_writer_open(&w, path, NULL, &e), 0);
    isa_insn ld = mk(ISA_OP_MXU_LDW, 0, 0, U(0), U(0), U(4096), U(4096), U(ISA_DT_BF16));
    assert_int_equal(trace_writer_put(w, &ld, &e), 0);
    isa_insn mm = mk(ISA_OP_MXU_MATMUL, 0, 0, U(0), U(0), U(0), U(1) << 26, U(ISA_DT_BF16), U(0));
    for (unsigned i = 0; i < 8200; i++)
        assert_int_equal(trace_writer_put(w, &mm, &e), 0);
    assert_int_equal(trace_writer_close(w, &e), 0);
    const char *ovr[] = {"vmem.bytes=1TiB", "mxu.rows=4096", "mxu.cols=4096"};
    run_job j = {.trace = path, .ovr = ovr, .novr = 3, .want = {"flops.tpt", "2^64"}};
    assert_int_equal(in_child_with_fsize(RLIM_INFINITY, child_run_must_fail, &j), 0);
}

/* ------------------------------------------------------------------ I/O failures */

static void test_reader_on_missing_directory_fails_cleanly(void **state)
{
    (void)state;
    trace_reader *r = (trace_reader *)&r; /* must be reset to NULL */
    err e = {0};
    assert_int_not_equal(trace_reader_open(&r, "/nonexistent-dir/x.tpt", &e), 0);
    assert_null(r);
    assert_non_null(strstr(e.msg, "/nonexistent-dir/x.tpt"));
    assert_null(strchr(e.msg, '\n'));
}

static void test_reader_on_directory_fails_cleanly(void **state)
{
    (void)state;
    trace_reader *r;
    err e = {0};
    assert_int_not_equal(trace_reader_open(&r, harness_dir(), &e), 0);
    assert_null(r);
    assert_non_null(strstr(e.msg, harness_dir()));
}

static void test_writer_to_missing_directory_fails_and_leaves_nothing(void **state)
{
    (void)state;
    char path[300];
    harness_path("nodir/x.tpt", path, sizeof path);
    trace_writer *w = (trace_writer *)&w;
    err e = {0};
    assert_int_not_equal(trace_writer_open(&w, path, "n", &e), 0);
    assert_null(w);
    assert_non_null(strstr(e.msg, "nodir/x.tpt"));
}

static void test_asm_and_json_to_missing_directory_fail_cleanly(void **state)
{
    (void)state;
    char src[300], out[300];
    harness_path("ok.s", src, sizeof src);
    harness_path("nodir/ok.tpt", out, sizeof out);
    FILE *f = fopen(src, "w");
    assert_non_null(f);
    fputs("nop\nv.add src=0 dst=0 n=8 dtype=bf16\n", f);
    fclose(f);
    err e = {0};
    assert_int_not_equal(asm_file(src, out, &e), 0);
    assert_non_null(strstr(e.msg, "nodir/ok.tpt"));

    /* A report to a missing directory. */
    char trace[300];
    harness_path("ok.tpt", trace, sizeof trace);
    assert_int_equal(asm_file(src, trace, &e), 0);
    run s;
    assert_int_equal(run_trace(&s, NULL, NULL, 0, trace, NULL, &e), 0);
    harness_path("nodir/r.json", out, sizeof out);
    assert_int_not_equal(report_json(&s.rep, out, &e), 0);
    assert_non_null(strstr(e.msg, "nodir/r.json"));
    harness_path("nodir/r.csv", out, sizeof out);
    assert_int_not_equal(report_csv(&s.rep, out, &e), 0);
    assert_non_null(strstr(e.msg, "nodir/r.csv"));
    run_fini(&s);
    assert_int_equal(tmp_left(out), 0);
}

static void test_sim_on_missing_trace_reports_the_path(void **state)
{
    (void)state;
    run s;
    err e = {0};
    assert_int_not_equal(run_trace(&s, NULL, NULL, 0, "/nonexistent-dir/t.tpt", NULL, &e), 0);
    assert_non_null(strstr(e.msg, "/nonexistent-dir/t.tpt"));
    run_fini(&s); /* documented as always safe */
}

/* Child: write a trace bigger than the limit. Exit 0 if the failure was reported (by put
 * or close) with a message naming the file. */
static int child_write_big_trace(void *arg)
{
    const char *path = arg;
    trace_writer *w;
    err e = {0};
    if (trace_writer_open(&w, path, "fsize", &e))
        return 2;
    int failed = 0;
    for (uint64_t i = 0; i < 200000 && !failed; i++) {
        /* Operands that vary so the stream does not compress to nothing. */
        uint64_t x = i * 0x9e3779b97f4a7c15ULL;
        isa_insn in =
            mk(ISA_OP_DMA_H2V, 0, 0, x >> 20, (x >> 7) & 0xffffff, (x & 0xffff) + 1, U(0), U(0));
        failed = trace_writer_put(w, &in, &e) != 0;
    }
    if (!failed) {
        if (trace_writer_close(w, &e) == 0)
            return 3; /* the write past the limit went unnoticed */
    } else {
        trace_writer_abort(w);
    }
    /* the output named with the reason (EFBIG), never the input or a bare "cannot write" */
    return strstr(e.msg, "fsize.tpt: cannot write: File too large") ? 0 : 4;
}

static void test_trace_write_failure_is_reported_and_leaves_no_file(void **state)
{
    (void)state;
    char path[300];
    harness_path("fsize.tpt", path, sizeof path);
    assert_int_equal(in_child_with_fsize(4096, child_write_big_trace, path), 0);
    assert_false(harness_exists(path));
    assert_int_equal(tmp_left(path), 0);
}

typedef struct json_job {
    const report *rep;
    const char *path;
} json_job;

static int child_write_json(void *arg)
{
    json_job *j = arg;
    err e = {0};
    if (report_json(j->rep, j->path, &e) == 0)
        return 3;
    return strstr(e.msg, "small.json: cannot write: File too large") ? 0 : 4;
}

static void test_json_write_failure_is_reported_and_leaves_no_file(void **state)
{
    (void)state;
    char trace[300], path[300];
    harness_path("mixed2.tpt", trace, sizeof trace);
    harness_path("small.json", path, sizeof path);
    write_mixed_trace(trace);
    run s;
    err e;
    assert_int_equal(run_trace(&s, NULL, NULL, 0, trace, NULL, &e), 0);
    json_job j = {.rep = &s.rep, .path = path};
    int rc = in_child_with_fsize(100, child_write_json, &j);
    run_fini(&s);
    assert_int_equal(rc, 0);
    assert_false(harness_exists(path));
    assert_int_equal(tmp_left(path), 0);
}

/* Child: with the address space capped just above its current size, open readers until
 * one fails; the failure must be a clean error (NULL reader, a message), never a crash. */
static int child_open_until_oom(void *arg)
{
    const char *path = arg;
    enum { N = 256 };
    trace_reader *r[N];
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    if (!f || fscanf(f, "%ld", &pages) != 1)
        return 2;
    fclose(f);
    rlim_t lim = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + 8u * 1024 * 1024;
    struct rlimit rl = {lim, lim};
    if (setrlimit(RLIMIT_AS, &rl))
        return 2;
    int n = 0, rc = 5;
    for (; n < N; n++) {
        err e = {0};
        if (trace_reader_open(&r[n], path, &e)) {
            rc = (r[n] == NULL && e.msg[0] && strstr(e.msg, path)) ? 0 : 4;
            break;
        }
    }
    for (int i = 0; i < n; i++)
        trace_reader_free(r[i]);
    return rc;
}

static void test_reader_open_under_memory_exhaustion_fails_cleanly(void **state)
{
    (void)state;
    if (ROBUST_ASAN) {
        skip(); /* ASan reserves terabytes of shadow: an address-space cap cannot work */
        return;
    }
    char trace[300];
    harness_path("mixed3.tpt", trace, sizeof trace);
    write_mixed_trace(trace);
    assert_int_equal(in_child_with_fsize(RLIM_INFINITY, child_open_until_oom, trace), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_add_sat_saturates_and_flags_overflow),
        cmocka_unit_test(test_same_trace_twice_in_one_process_gives_identical_json),
        cmocka_unit_test(test_three_million_instructions_stream_in_bounded_memory),
        cmocka_unit_test(test_vector_length_whose_byte_size_overflows_is_a_vmem_error),
        cmocka_unit_test(test_simulated_time_beyond_64_bits_is_an_error),
        cmocka_unit_test(test_collective_too_large_to_time_is_an_error),
        cmocka_unit_test(test_flop_total_beyond_64_bits_is_an_error),
        cmocka_unit_test(test_reader_on_missing_directory_fails_cleanly),
        cmocka_unit_test(test_reader_on_directory_fails_cleanly),
        cmocka_unit_test(test_writer_to_missing_directory_fails_and_leaves_nothing),
        cmocka_unit_test(test_asm_and_json_to_missing_directory_fail_cleanly),
        cmocka_unit_test(test_sim_on_missing_trace_reports_the_path),
        cmocka_unit_test(test_trace_write_failure_is_reported_and_leaves_no_file),
        cmocka_unit_test(test_json_write_failure_is_reported_and_leaves_no_file),
        cmocka_unit_test(test_reader_open_under_memory_exhaustion_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
