/* test_core.c - the dispatcher: in-order queues, semaphores, stalls, regions, checks and
 * deadlock detection, on small assembled traces with closed-form timings.
 * Default config: 1 GHz (1000 ps/cycle), 128x128 MXUs, weight_load_rows 1, bf16 rate 1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asm.h"
#include "core.h"
#include "run.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tpusim_core_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

/* Assemble `text` into DIR/name.tpt and return its path (static buffer per call site). */
static const char *assemble(const char *name, const char *text, char *out, size_t cap)
{
    char src[256];
    snprintf(src, sizeof src, "%s/%s.s", dir, name);
    snprintf(out, cap, "%s/%s.tpt", dir, name);
    FILE *f = fopen(src, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    err e;
    if (asm_file(src, out, &e))
        fail_msg("asm: %s", e.msg);
    return out;
}

typedef struct obs_log {
    unsigned n;
    uint64_t idx[64], start[64], end[64];
} obs_log;

static void obs(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t start, uint64_t end,
                unsigned region)
{
    (void)op;
    (void)u;
    (void)region;
    obs_log *l = ctx;
    if (l->n < 64) {
        l->idx[l->n] = idx;
        l->start[l->n] = start;
        l->end[l->n] = end;
        l->n++;
    }
}

static int run_t(run *s, const char *trace, const char **ovr, unsigned novr, obs_log *log, err *e)
{
    sim_hooks h = {.observer = obs, .ctx = log};
    return run_trace(s, NULL, ovr, novr, trace, log ? &h : NULL, e);
}

static void test_core_single_tile_matches_closed_form(void **state)
{
    (void)state;
    char p[256];
    assemble("single",
             "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n"
             "mxu.matmul mxu=0 src=65536 dst=131072 m=256 dtype=bf16\n",
             p, sizeof p);
    run s;
    err e;
    assert_int_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
    /* load k = 128 cycles, stream m = 256 cycles, drain rows + cols - 1 = 255 cycles */
    assert_int_equal(s.rep.end_ps, (128 + 256 + 255) * 1000ULL);
    assert_int_equal(s.rep.mxu_flops, 2ULL * 256 * 128 * 128);
    assert_true(s.rep.mac_util <= 1.0);
    run_fini(&s);
}

static void test_core_semaphore_orders_units(void **state)
{
    (void)state;
    char p[256];
    assemble("sem",
             "dma.h2v hbm=0 vmem=0 bytes=32768 signal=1\n"
             "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=1\n"
             "mxu.matmul mxu=0 src=65536 dst=131072 m=128 dtype=bf16\n",
             p, sizeof p);
    run s;
    err e;
    obs_log log = {0};
    assert_int_equal(run_t(&s, p, NULL, 0, &log, &e), 0);
    assert_int_equal(log.n, 3);
    /* completion order: dma (0), ldw (1), matmul (2) */
    assert_int_equal(log.idx[0], 0);
    assert_int_equal(log.idx[1], 1);
    assert_true(log.start[1] >= log.end[0]); /* ldw waited for the DMA's signal */
    assert_int_equal(log.end[1] - log.start[1], 128 * 1000ULL);
    assert_true(s.rep.units[0].stall_sem_ps > 0); /* mxu0 head waited on semaphore 1 */
    assert_int_equal(s.rep.units[0].stall_sem_ps, log.start[1]);
    run_fini(&s);
}

static void test_core_units_run_concurrently(void **state)
{
    (void)state;
    char p[256];
    assemble("conc",
             "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n"
             "mxu.ldw mxu=1 vmem=0 k=128 n=128 dtype=bf16\n"
             "mxu.matmul mxu=0 src=65536 dst=131072 m=512 dtype=bf16\n"
             "mxu.matmul mxu=1 src=65536 dst=1048576 m=512 dtype=bf16\n",
             p, sizeof p);
    run s;
    err e;
    assert_int_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
    /* Two MXUs in parallel take the time of one (VMEM bandwidth is ample by default). */
    assert_int_equal(s.rep.end_ps, (128 + 512 + 255) * 1000ULL);
    run_fini(&s);
}

/* Both weight loads end at cycle 128, where both matmuls become ready. The core issues only
 * after every same-time completion has run, in slot order (mxu0 first, though the trace
 * lists mxu1 first), and the ended load shares are not counted: mxu0 streams at the whole
 * VMEM bandwidth, mxu1 at half, whatever order the kernel ran the two load events in.
 * VMEM 512 B/cycle: ldw 32 KiB at <= 2 shares <= 128 cycles = the shift time; matmul moves
 * 512 x 128 x 2 + 512 x 128 x 4 = 384 KiB: 768 cycles alone, 1536 with two shares. */
static void test_core_same_time_issue_is_in_slot_order(void **state)
{
    (void)state;
    char p[256];
    assemble("order",
             "mxu.ldw mxu=1 vmem=0 k=128 n=128 dtype=bf16\n"
             "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n"
             "mxu.matmul mxu=1 src=65536 dst=1048576 m=512 dtype=bf16\n"
             "mxu.matmul mxu=0 src=65536 dst=131072 m=512 dtype=bf16\n",
             p, sizeof p);
    const char *ovr[] = {"vmem.bytes_per_cycle=512"};
    run s;
    err e;
    assert_int_equal(run_t(&s, p, ovr, 1, NULL, &e), 0);
    assert_string_equal(s.rep.units[0].name, "mxu0");
    assert_string_equal(s.rep.units[1].name, "mxu1");
    assert_int_equal(s.rep.units[0].stall_vmem_ps, (768 - 512) * 1000ULL);
    assert_int_equal(s.rep.units[1].stall_vmem_ps, (1536 - 512) * 1000ULL);
    assert_int_equal(s.rep.end_ps, (128 + 1536 + 255) * 1000ULL);
    run_fini(&s);
}

static void test_core_full_queue_stalls_dispatch(void **state)
{
    (void)state;
    char p[256];
    char text[4096] = "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n";
    for (int i = 0; i < 8; i++)
        strcat(text, "mxu.matmul mxu=0 src=65536 dst=131072 m=128 dtype=bf16\n");
    assemble("qfull", text, p, sizeof p);
    const char *ovr[] = {"core.queue_depth=2"};
    run s;
    err e;
    assert_int_equal(run_t(&s, p, ovr, 1, NULL, &e), 0);
    assert_true(s.rep.units[0].stall_qfull_ps > 0);
    /* back-to-back matmuls: load, 8 streams, one drain */
    assert_int_equal(s.rep.end_ps, (128 + 8 * 128 + 255) * 1000ULL);
    run_fini(&s);
}

static void test_core_deadlock_names_instruction_and_semaphore(void **state)
{
    (void)state;
    char p[256];
    assemble("dead",
             "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n"
             "mxu.matmul mxu=0 src=65536 dst=131072 m=128 dtype=bf16 wait=5\n",
             p, sizeof p);
    run s;
    err e;
    assert_int_not_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "deadlock"));
    assert_non_null(strstr(e.msg, "instruction 1"));
    assert_non_null(strstr(e.msg, "semaphore 5"));
    run_fini(&s);
}

static void test_core_vmem_overflow_names_instruction(void **state)
{
    (void)state;
    char p[256];
    assemble("vmemof",
             "nop\n"
             "dma.h2v hbm=0 vmem=0xfff000 bytes=8192\n", /* 16 MiB VMEM by default */
             p, sizeof p);
    run s;
    err e;
    assert_int_not_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "instruction 1"));
    assert_non_null(strstr(e.msg, "VMEM"));
    run_fini(&s);
}

static void test_core_unsupported_dtype_is_an_error(void **state)
{
    (void)state;
    char p[256];
    assemble("fp8", "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=fp8\n", p, sizeof p);
    run s;
    err e;
    assert_int_not_equal(run_t(&s, p, NULL, 0, NULL, &e), 0); /* default mxu.rate_fp8 = 0 */
    assert_non_null(strstr(e.msg, "fp8"));
    assert_non_null(strstr(e.msg, "not supported"));
    run_fini(&s);
    const char *ovr[] = {"mxu.rate_fp8=2"};
    assert_int_equal(run_t(&s, p, ovr, 1, NULL, &e), 0);
    run_fini(&s);
}

static void test_core_matmul_without_weights_is_an_error(void **state)
{
    (void)state;
    char p[256];
    assemble("now", "mxu.matmul mxu=2 src=0 dst=65536 m=8 dtype=bf16\n", p, sizeof p);
    run s;
    err e;
    assert_int_not_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "no weights"));
    run_fini(&s);
}

static void test_core_sync_wait_blocks_dispatch_until_signal(void **state)
{
    (void)state;
    char p[256];
    assemble("syncw",
             "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 signal=3\n"
             "sync.wait wait=3\n"
             "mxu.ldw mxu=1 vmem=0 k=64 n=128 dtype=bf16\n",
             p, sizeof p);
    run s;
    err e;
    obs_log log = {0};
    assert_int_equal(run_t(&s, p, NULL, 0, &log, &e), 0);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.start[1], 128 * 1000ULL); /* second load after the first */
    assert_int_equal(s.rep.end_ps, (128 + 64) * 1000ULL);
    run_fini(&s);
}

static void test_core_regions_collect_their_instructions(void **state)
{
    (void)state;
    char p[256];
    assemble("regions",
             "mark name=\"load\"\n"
             "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n"
             "mark name=\"compute\"\n"
             "mxu.matmul mxu=0 src=65536 dst=131072 m=256 dtype=bf16\n"
             "mxu.matmul mxu=0 src=65536 dst=131072 m=256 dtype=bf16 acc=1\n",
             p, sizeof p);
    run s;
    err e;
    assert_int_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
    const report_region *load = NULL, *comp = NULL;
    for (unsigned i = 0; i < s.rep.nregions; i++) {
        if (!strcmp(s.rep.regions[i].name, "load"))
            load = &s.rep.regions[i];
        if (!strcmp(s.rep.regions[i].name, "compute"))
            comp = &s.rep.regions[i];
    }
    assert_non_null(load);
    assert_non_null(comp);
    assert_int_equal(load->mxu_flops, 0);
    assert_int_equal(comp->mxu_flops, 2 * 2ULL * 256 * 128 * 128);
    assert_int_equal(comp->insns, 3); /* the mark and two matmuls */
    assert_int_equal(comp->start_ps, 128 * 1000ULL);
    assert_int_equal(comp->end_ps, (128 + 512 + 255) * 1000ULL);
    run_fini(&s);
}

static void test_core_repeated_runs_in_one_process_agree(void **state)
{
    (void)state;
    char p[256];
    assemble("repeat",
             "dma.h2v hbm=0 vmem=0 bytes=1M signal=1\n"
             "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=1\n"
             "mxu.matmul mxu=0 src=65536 dst=131072 m=1024 dtype=bf16\n"
             "dma.v2h hbm=0x100000 vmem=131072 bytes=512K\n",
             p, sizeof p);
    uint64_t first = 0;
    for (int i = 0; i < 3; i++) {
        run s;
        err e;
        assert_int_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
        if (i == 0)
            first = s.rep.end_ps;
        assert_int_equal(s.rep.end_ps, first);
        assert_true(s.rep.hbm_util <= 1.0);
        run_fini(&s);
    }
    assert_true(first > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_single_tile_matches_closed_form),
        cmocka_unit_test(test_core_semaphore_orders_units),
        cmocka_unit_test(test_core_units_run_concurrently),
        cmocka_unit_test(test_core_same_time_issue_is_in_slot_order),
        cmocka_unit_test(test_core_full_queue_stalls_dispatch),
        cmocka_unit_test(test_core_deadlock_names_instruction_and_semaphore),
        cmocka_unit_test(test_core_vmem_overflow_names_instruction),
        cmocka_unit_test(test_core_unsupported_dtype_is_an_error),
        cmocka_unit_test(test_core_matmul_without_weights_is_an_error),
        cmocka_unit_test(test_core_sync_wait_blocks_dispatch_until_signal),
        cmocka_unit_test(test_core_regions_collect_their_instructions),
        cmocka_unit_test(test_core_repeated_runs_in_one_process_agree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
