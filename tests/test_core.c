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
#include <time.h>
#include <unistd.h>

#include "asm.h"
#include "harness.h"
#include "core.h"
#include "run.h"
#include "units.h"

static int run_t(run *s, const char *trace, const char **ovr, unsigned novr, harness_obs *log,
                 err *e)
{
    sim_hooks h = {.observer = harness_observe, .ctx = log};
    return run_trace(s, NULL, ovr, novr, trace, log ? &h : NULL, e);
}

static void test_core_single_tile_matches_closed_form(void **state)
{
    (void)state;
    char p[256];
    harness_assemble("single",
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
    harness_assemble("sem",
                     "dma.h2v hbm=0 vmem=0 bytes=32768 signal=1\n"
                     "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=1\n"
                     "mxu.matmul mxu=0 src=65536 dst=131072 m=128 dtype=bf16\n",
                     p, sizeof p);
    run s;
    err e;
    harness_obs log = {0};
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
    harness_assemble("conc",
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
    harness_assemble("order",
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
    harness_assemble("qfull", text, p, sizeof p);
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
    harness_assemble("dead",
                     "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n"
                     "mxu.matmul mxu=0 src=65536 dst=131072 m=128 dtype=bf16 wait=5\n",
                     p, sizeof p);
    run s;
    err e;
    assert_int_not_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "deadlock"));
    assert_int_equal(e.kind, ERR_DEADLOCK);
    assert_non_null(strstr(e.msg, "instruction 1"));
    assert_non_null(strstr(e.msg, "semaphore 5"));
    run_fini(&s);
}

static void test_core_vmem_overflow_names_instruction(void **state)
{
    (void)state;
    char p[256];
    harness_assemble("vmemof",
                     "nop\n"
                     "dma.h2v hbm=0 vmem=0xfff000 bytes=8192\n", /* 16 MiB VMEM by default */
                     p, sizeof p);
    run s;
    err e;
    assert_int_not_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "instruction 1"));
    assert_non_null(strstr(e.msg, "VMEM"));
    assert_int_equal(e.kind, ERR_INPUT); /* the trace's fault, not a deadlock */
    run_fini(&s);
}

static void test_core_unsupported_dtype_is_an_error(void **state)
{
    (void)state;
    char p[256];
    harness_assemble("fp8", "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=fp8\n", p, sizeof p);
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
    harness_assemble("now", "mxu.matmul mxu=2 src=0 dst=65536 m=8 dtype=bf16\n", p, sizeof p);
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
    harness_assemble("syncw",
                     "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 signal=3\n"
                     "sync.wait wait=3\n"
                     "mxu.ldw mxu=1 vmem=0 k=64 n=128 dtype=bf16\n",
                     p, sizeof p);
    run s;
    err e;
    harness_obs log = {0};
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
    harness_assemble("regions",
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

/* 70,000 distinct mark names (past the old silent cap of 65,535): each keeps its own
 * counters, a name seen again adds to its first region, and interning is a hash lookup (the
 * old linear scan took about 29 s here). */
static void test_core_regions_beyond_65535_stay_distinct_and_fast(void **state)
{
    (void)state;
    enum { N = 70000 };
    size_t cap = (size_t)N * 64 + 256, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (unsigned i = 0; i < N; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "mark name=\"r%u\"\nv.add src=0 dst=4096 n=64 dtype=bf16\n", i);
    snprintf(text + len, cap - len, "mark name=\"r5\"\nv.add src=0 dst=4096 n=64 dtype=bf16\n");
    char p[256];
    harness_assemble("manyregions", text, p, sizeof p);
    free(text);
    run s;
    err e;
    clock_t t0 = clock();
    assert_int_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 10.0);
    assert_int_equal(s.rep.nregions, N); /* "(start)" has no instructions and is left out */
    char want[16];
    for (unsigned i = 0; i < N; i += 997) {
        snprintf(want, sizeof want, "r%u", i);
        assert_string_equal(s.rep.regions[i].name, want);
        assert_int_equal(s.rep.regions[i].insns, i == 5 ? 4 : 2);
    }
    assert_string_equal(s.rep.regions[N - 1].name, "r69999");
    assert_int_equal(s.rep.regions[N - 1].insns, 2);
    assert_int_equal(s.rep.regions[5].insns, 4);
    run_fini(&s);
}

/* A barrier that waits for the chip's own receive (which no send ever serves) names that
 * receive; it used to say "not every chip reached it" on a single chip. */
static void test_core_barrier_deadlock_names_the_receive_it_waits_for(void **state)
{
    (void)state;
    char p[256];
    harness_assemble("barrier_recv",
                     "nop\n"
                     "ici.recv axis=x dir=+1 bytes=4K vmem=0\n"
                     "sync.barrier\n",
                     p, sizeof p);
    run s;
    err e;
    assert_int_not_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "deadlock: instruction 2 (sync.barrier) waits for instruction 1 "
                                  "(ici.recv), which started but never completed (no matching "
                                  "ici.send reached it)"));
    run_fini(&s);
}

static void test_core_repeated_runs_in_one_process_agree(void **state)
{
    (void)state;
    char p[256];
    harness_assemble("repeat",
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

/* 16 cores x 8 MXUs: 128 MXUs, then the vector unit, DMA and ICI port (the unit table's
 * order). The report lists all 131 units in text, JSON and CSV, and MXU utilisation is the
 * mean over all 128 MXUs: mxu0 and mxu127 each stream 640 cycles of a run that ends at
 * 128 + 640 + 255 cycles, so util = 2 x 640 / 1023 / 128. */
static void test_core_report_lists_every_unit_of_a_128_mxu_chip(void **state)
{
    (void)state;
    char p[256];
    harness_assemble("many",
                     "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n"
                     "mxu.ldw mxu=127 vmem=0 k=128 n=128 dtype=bf16\n"
                     "mxu.matmul mxu=0 src=65536 dst=131072 m=640 dtype=bf16\n"
                     "mxu.matmul mxu=127 src=65536 dst=1048576 m=640 dtype=bf16\n",
                     p, sizeof p);
    const char *ovr[] = {"chip.cores=16", "mxu.count=8"};
    run s;
    err e;
    if (run_t(&s, p, ovr, 2, NULL, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(s.rep.end_ps, (128 + 640 + 255) * 1000ULL);
    assert_int_equal(s.rep.nunits, 131);
    assert_string_equal(s.rep.units[127].name, "mxu127");
    assert_string_equal(s.rep.units[128].name, "vpu0");
    assert_string_equal(s.rep.units[129].name, "dma0");
    assert_string_equal(s.rep.units[130].name, "ici0");
    assert_int_equal(s.rep.units[127].busy_ps, 640 * 1000ULL);
    assert_float_equal(s.rep.mxu_util, 2.0 * 640 / 1023 / 128, 1e-12);

    char jp[128], cp[128], tp[128], line[512];
    harness_path("many.json", jp, sizeof jp);
    harness_path("many.csv", cp, sizeof cp);
    harness_path("many.txt", tp, sizeof tp);
    assert_int_equal(report_json(&s.rep, jp, &e), 0);
    assert_int_equal(report_csv(&s.rep, cp, &e), 0);
    FILE *t = fopen(tp, "w");
    assert_non_null(t);
    report_text(&s.rep, t);
    fclose(t);
    unsigned json_units = 0, csv_units = 0, text_units = 0;
    FILE *f = fopen(jp, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        json_units += strstr(line, "\"busy_cycles\"") != NULL;
    fclose(f);
    f = fopen(cp, "r");
    assert_non_null(f);
    int csv_ici = 0;
    while (fgets(line, sizeof line, f)) {
        csv_units += !strncmp(line, "unit,", 5);
        csv_ici |= !strncmp(line, "unit,ici0,ici,", 14);
    }
    fclose(f);
    f = fopen(tp, "r");
    assert_non_null(f);
    int text_last = 0;
    while (fgets(line, sizeof line, f)) {
        char name[32];
        unsigned long long insns;
        if (sscanf(line, " %31s %llu", name, &insns) == 2 &&
            (!strncmp(name, "mxu", 3) || !strcmp(name, "vpu0") || !strcmp(name, "dma0") ||
             !strcmp(name, "ici0")))
            text_units++;
        text_last |= !strncmp(line, "  ici0 ", 7);
    }
    fclose(f);
    assert_int_equal(json_units, 131);
    assert_int_equal(csv_units, 131);
    assert_true(csv_ici);
    assert_int_equal(text_units, 131);
    assert_true(text_last);
    run_fini(&s);
}

/* The `mxu` operand picks the instance; one past the last MXU is an error naming both. */
static void test_core_select_operand_past_the_last_unit_is_an_error(void **state)
{
    (void)state;
    char p[256];
    harness_assemble("past", "mxu.ldw mxu=4 vmem=0 k=128 n=128 dtype=bf16\n", p, sizeof p);
    run s;
    err e;
    assert_int_not_equal(run_t(&s, p, NULL, 0, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "instruction 0 (mxu.ldw): mxu 4, the chip has 4"));
    run_fini(&s);
}

/* The unit table serves every ISA unit class but sync exactly once; a table missing a class,
 * serving one twice, serving sync, or selecting by an operand an opcode lacks is refused. */
static void test_core_unit_table_must_serve_every_isa_class_once(void **state)
{
    (void)state;
    err e;
    assert_int_equal(unit_kinds_check(unit_kinds, unit_kind_count, &e), 0);
    unit_kind t[16];
    assert_true(unit_kind_count + 1 <= 16);
    unsigned n = 0, dma = unit_kind_count;
    for (unsigned i = 0; i < unit_kind_count; i++) {
        if (unit_kinds[i].serves == ISA_UNIT_DMA)
            dma = i;
        else
            t[n++] = unit_kinds[i];
    }
    assert_true(dma < unit_kind_count);
    assert_int_equal(unit_kinds_check(t, n, &e), -1);
    assert_non_null(strstr(e.msg, "class 'dma' is served by 0 unit kinds"));
    t[n++] = unit_kinds[dma];
    t[n++] = unit_kinds[dma];
    assert_int_equal(unit_kinds_check(t, n, &e), -1);
    assert_non_null(strstr(e.msg, "class 'dma' is served by 2 unit kinds"));
    t[n - 1].serves = ISA_UNIT_SYNC;
    assert_int_equal(unit_kinds_check(t, n, &e), -1);
    assert_non_null(strstr(e.msg, "'sync'"));
    n--;
    t[n - 1].select = "nosuch";
    assert_int_equal(unit_kinds_check(t, n, &e), -1);
    assert_non_null(strstr(e.msg, "operand 'nosuch'"));
}

static void test_core_unit_kind_of_group_needs_the_index(void **state)
{
    (void)state;
    assert_ptr_equal(unit_kind_of_group("ici0"), unit_kind_of_ops(&ici_ops));
    assert_ptr_equal(unit_kind_of_group("mxu127"), unit_kind_of_ops(&mxu_ops));
    assert_null(unit_kind_of_group("ici")); /* the network's group, not a unit */
    assert_null(unit_kind_of_group("hbm"));
    assert_null(unit_kind_of_group("mxu1x"));
}

static void test_core_unit_ring_grow_keeps_fifo_order(void **state)
{
    (void)state;
    unsigned cap = 4, head = 2;
    uint64_t *r = malloc(cap * sizeof *r);
    assert_non_null(r);
    for (unsigned i = 0; i < 4; i++)
        r[(head + i) % cap] = 10 + i; /* oldest at slot 2, wrapped */
    r = unit_ring_grow(r, &cap, &head, 4, sizeof *r, 4);
    assert_non_null(r);
    assert_int_equal(cap, 8);
    assert_int_equal(head, 0);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(r[i], 10 + i);
    free(r);
    unsigned cap0 = 0, head0 = 0;
    r = unit_ring_grow(NULL, &cap0, &head0, 0, sizeof *r, 4);
    assert_non_null(r);
    assert_int_equal(cap0, 4);
    free(r);
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
        cmocka_unit_test(test_core_regions_beyond_65535_stay_distinct_and_fast),
        cmocka_unit_test(test_core_barrier_deadlock_names_the_receive_it_waits_for),
        cmocka_unit_test(test_core_repeated_runs_in_one_process_agree),
        cmocka_unit_test(test_core_report_lists_every_unit_of_a_128_mxu_chip),
        cmocka_unit_test(test_core_select_operand_past_the_last_unit_is_an_error),
        cmocka_unit_test(test_core_unit_table_must_serve_every_isa_class_once),
        cmocka_unit_test(test_core_unit_kind_of_group_needs_the_index),
        cmocka_unit_test(test_core_unit_ring_grow_keeps_fifo_order),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
