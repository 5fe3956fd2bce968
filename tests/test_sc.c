/* test_sc.c - the SparseCore model (sim/units/sc.c): gather, gather.mean, scatter-add and
 * spmem<->VMEM copies against the closed forms stated in sc.c and docs/models-sparsecore.md,
 * HBM-, port- and lane-bound, several SparseCores in parallel, contention with DMA through
 * the shared HBM model, and the dispatch-time checks.
 *
 * Test machine: 1 GHz (1000 ps/cycle), one SparseCore of 16 lanes and 64 B/cycle, 100 ns
 * per-request overhead; HBM `simple` with one 64-bit pseudo-channel at 0.9765625 Gb/s/pin:
 * 0.0078125 B/ps = 128 ps/B exactly, 100 ns latency, efficiency 1. A gather of segs 4 x
 * lookups 8 = 32 rows of 64 bf16 (128 B) therefore moves 4 KiB, one row 16384 ps on the bus. */
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
#include "harness.h"
#include "run.h"

#define NS    1000ULL  /* ps */
#define CYC   1000ULL  /* ps per cycle at 1 GHz */
#define ROWPS 16384ULL /* one 128-byte row on the HBM bus */

static const char *base_ovr[] = {
    "sc.count=1",
    "sc.lanes=16",
    "sc.bytes_per_cycle=64",
    "sc.overhead_ns=100",
    "sc.spmem_bytes=64KiB",
    "hbm.model=simple",
    "hbm.channels=1",
    "hbm.pseudo_channels=1",
    "hbm.bus_bits=64",
    "hbm.gbps_per_pin=0.9765625",
    "hbm.efficiency=1",
    "hbm.latency_ns=100",
    "dma.latency_ns=0",
};
#define NBASE (sizeof base_ovr / sizeof base_ovr[0])

/* ovr = the test machine's overrides, then extra[0..n); returns the count. */
static unsigned sc_overrides(const char **ovr, const char **extra, unsigned n)
{
    unsigned k = 0;
    for (unsigned i = 0; i < NBASE; i++)
        ovr[k++] = base_ovr[i];
    for (unsigned i = 0; i < n && k < 32; i++)
        ovr[k++] = extra[i];
    return k;
}

/* Replay `text` on the test machine with extra overrides; fails the test on error. */
static void run_text(run *s, const char *name, const char *text, const char **extra, unsigned n,
                     harness_obs *log)
{
    char p[256];
    const char *ovr[32];
    unsigned k = sc_overrides(ovr, extra, n);
    harness_assemble(name, text, p, sizeof p);
    sim_hooks h = {.observer = harness_observe, .ctx = log};
    err e;
    if (run_trace(s, NULL, ovr, k, p, log ? &h : NULL, &e))
        fail_msg("%s: %s", name, e.msg);
}

/* The error of replaying `text` (which must fail). */
static void run_error(const char *name, const char *text, const char **extra, unsigned n,
                      const char *want)
{
    char p[256];
    const char *ovr[32];
    unsigned k = sc_overrides(ovr, extra, n);
    harness_assemble(name, text, p, sizeof p);
    run s;
    err e;
    assert_int_not_equal(run_trace(&s, NULL, ovr, k, p, NULL, &e), 0);
    if (!strstr(e.msg, want))
        fail_msg("%s: error '%s' lacks '%s'", name, e.msg, want);
    run_fini(&s);
}

#define GATHER "table=0 trows=1000 dim=64 dtype=bf16 lookups=8 segs=4 spmem=0"

/* HBM-bound: 32 rows issued at t0 = 100 ns on the one bus: 100 ns latency + 32 x 16384 ps;
 * the port (4096 B / 64 = 64 cycles) and the reduce (32 x 64 / 16 = 128 cycles) are
 * shorter. end = 100 ns + max(...). FLOPs (32 - 4) x 64 adds; HBM bytes 32 x 128. */
static void test_sc_gather_hbm_bound_is_overhead_plus_row_reads(void **state)
{
    (void)state;
    run s;
    run_text(&s, "g_hbm", "sc.gather " GATHER "\n", NULL, 0, NULL);
    assert_int_equal(s.rep.end_ps, 100 * NS + 100 * NS + 32 * ROWPS);
    assert_int_equal(s.rep.flops, (32 - 4) * 64);
    assert_int_equal(s.rep.hbm_bytes, 32 * 128);
    assert_int_equal(s.rep.units[s.rep.nunits - 1].bytes, 32 * 128);
    assert_string_equal(s.rep.units[s.rep.nunits - 1].name, "sc0");
    run_fini(&s);
}

/* Lane-bound: 1 lane reduces 32 x 64 elements in 2048 cycles; the mean adds 4 x 64 = 256
 * cycles of divides and counts them as FLOPs (32 x 64 in all). */
static void test_sc_gather_lane_bound_and_mean(void **state)
{
    (void)state;
    const char *lanes1[] = {"sc.lanes=1"};
    run s;
    run_text(&s, "g_lane", "sc.gather " GATHER "\n", lanes1, 1, NULL);
    assert_int_equal(s.rep.end_ps, 100 * NS + 2048 * CYC);
    run_fini(&s);
    run_text(&s, "g_mean", "sc.gather.mean " GATHER "\n", lanes1, 1, NULL);
    assert_int_equal(s.rep.end_ps, 100 * NS + (2048 + 256) * CYC);
    assert_int_equal(s.rep.flops, 32 * 64);
    run_fini(&s);
}

/* Port-bound: at 1 B/cycle the SparseCore's own port takes 4096 cycles for the 4 KiB. */
static void test_sc_gather_port_bound(void **state)
{
    (void)state;
    const char *port1[] = {"sc.bytes_per_cycle=1"};
    run s;
    run_text(&s, "g_port", "sc.gather " GATHER "\n", port1, 1, NULL);
    assert_int_equal(s.rep.end_ps, 100 * NS + 4096 * CYC);
    run_fini(&s);
}

/* Scatter-add: each of the 32 rows is read and written back: 64 bus transfers after the
 * latency; 32 x 64 adds; 8 KiB of HBM traffic. */
static void test_sc_scatter_reads_and_writes_every_row(void **state)
{
    (void)state;
    run s;
    run_text(&s, "scat", "sc.scatter " GATHER "\n", NULL, 0, NULL);
    assert_int_equal(s.rep.end_ps, 100 * NS + 100 * NS + 64 * ROWPS);
    assert_int_equal(s.rep.flops, 32 * 64);
    assert_int_equal(s.rep.hbm_bytes, 2 * 32 * 128);
    run_fini(&s);
}

/* spmem -> VMEM copies: the port (4096 B / 64 = 64 cycles) unless VMEM is slower (16 B/cycle:
 * 256 cycles); no HBM bytes. */
static void test_sc_copy_is_port_or_vmem_bound(void **state)
{
    (void)state;
    run s;
    run_text(&s, "s2v", "sc.s2v spmem=0 vmem=0 bytes=4096\n", NULL, 0, NULL);
    assert_int_equal(s.rep.end_ps, 100 * NS + 64 * CYC);
    assert_int_equal(s.rep.hbm_bytes, 0);
    run_fini(&s);
    const char *slow[] = {"vmem.bytes_per_cycle=16"};
    run_text(&s, "v2s", "sc.v2s spmem=0 vmem=0 bytes=4096\n", slow, 1, NULL);
    assert_int_equal(s.rep.end_ps, 100 * NS + 256 * CYC);
    run_fini(&s);
}

/* Two lane-bound gathers: one SparseCore runs them back to back (each 100 ns + 2048 cycles),
 * two run them at once. Their rows share the one HBM bus (64 x 16384 ps after the latency,
 * still shorter than the reduce). */
static void test_sc_sparsecores_run_instructions_in_parallel(void **state)
{
    (void)state;
    const char *one[] = {"sc.lanes=1"}, *two[] = {"sc.lanes=1", "sc.count=2"};
    const char *text = "sc.gather " GATHER "\nsc.gather " GATHER "\n";
    run s;
    run_text(&s, "par1", text, one, 1, NULL);
    assert_int_equal(s.rep.end_ps, 2 * (100 * NS + 2048 * CYC));
    run_fini(&s);
    run_text(&s, "par2", text, two, 2, NULL);
    assert_int_equal(s.rep.end_ps, 100 * NS + 2048 * CYC);
    run_fini(&s);
}

/* SparseCore rows and DMA share the HBM model: a 4 KiB dma.h2v that alone ends at 100 ns +
 * 4096 x 128 ps, issued while a gather's 32 rows hold the bus from 100 ns, ends after them:
 * 100 ns + 32 x 16384 + 4096 x 128 ps. */
static void test_sc_traffic_contends_with_dma(void **state)
{
    (void)state;
    const char *now[] = {"sc.overhead_ns=0"};
    harness_obs log = {0};
    run s;
    run_text(&s, "dma_alone", "dma.h2v hbm=1048576 vmem=0 bytes=4096\n", now, 1, &log);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.end[0], 100 * NS + 4096 * 128);
    run_fini(&s);
    memset(&log, 0, sizeof log);
    run_text(&s, "dma_shared", "sc.gather " GATHER "\ndma.h2v hbm=1048576 vmem=0 bytes=4096\n", now,
             1, &log);
    assert_int_equal(log.n, 2);
    for (unsigned i = 0; i < 2; i++)
        if (log.idx[i] == 1)
            assert_int_equal(log.end[i], 100 * NS + 32 * ROWPS + 4096 * 128);
        else
            assert_int_equal(log.end[i], 100 * NS + 32 * ROWPS);
    run_fini(&s);
}

static void test_sc_checks_name_the_fault(void **state)
{
    (void)state;
    const char *big_spmem[] = {"sc.spmem_bytes=1MiB"};
    const char *none[] = {"sc.count=0"};
    run_error("none", "sc.gather " GATHER "\n", none, 1,
              "instruction 0 (sc.gather): SparseCore instruction on a chip without SparseCores");
    run_error("dim0", "sc.gather table=0 trows=1000 dim=0 dtype=bf16 lookups=8 segs=4 spmem=0\n",
              NULL, 0, "(sc.gather): operand 'dim' = 0, must be at least 1");
    run_error("tbl", "sc.scatter table=0 trows=1024G dim=64 dtype=bf16 lookups=8 segs=4 spmem=0\n",
              NULL, 0, "(sc.scatter): table [0x0, +");
    /* 4 segments x 64 x 4 B = 1 KiB from 64 KiB - 512 passes the end of the 64 KiB spmem */
    run_error("spm",
              "sc.gather table=0 trows=1000 dim=64 dtype=bf16 lookups=8 segs=4 spmem=65024\n", NULL,
              0, "spmem range [0xfe00, 0x10200) outside the 65536-byte spmem");
    run_error("big",
              "sc.gather table=0 trows=1000 dim=1 dtype=bf16 lookups=65537 segs=65536 "
              "spmem=0\n",
              big_spmem, 1, "segs x lookups = 4295032832 rows, more than 4294967296");
    run_error("cpy", "sc.s2v spmem=0 vmem=0 bytes=128K\n", NULL, 0,
              "(sc.s2v): spmem range [0x0, 0x20000)");
}

/* The operand order sc.c's slot enums assume (isa_ops.def ISA_SC_ARGS and the copies). */
static void test_sc_operand_slots_match_the_table(void **state)
{
    (void)state;
    static const char *rows[] = {"table", "trows", "dim", "dtype", "lookups", "segs", "spmem"};
    static const char *cp[] = {"spmem", "vmem", "bytes"};
    const unsigned rops[] = {ISA_OP_SC_GATHER, ISA_OP_SC_GATHER_MEAN, ISA_OP_SC_SCATTER};
    for (unsigned o = 0; o < 3; o++)
        for (int i = 0; i < 7; i++)
            assert_int_equal(isa_arg_index(rops[o], rows[i]), i);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(isa_arg_index(ISA_OP_SC_S2V, cp[i]), i);
        assert_int_equal(isa_arg_index(ISA_OP_SC_V2S, cp[i]), i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sc_gather_hbm_bound_is_overhead_plus_row_reads),
        cmocka_unit_test(test_sc_gather_lane_bound_and_mean),
        cmocka_unit_test(test_sc_gather_port_bound),
        cmocka_unit_test(test_sc_scatter_reads_and_writes_every_row),
        cmocka_unit_test(test_sc_copy_is_port_or_vmem_bound),
        cmocka_unit_test(test_sc_sparsecores_run_instructions_in_parallel),
        cmocka_unit_test(test_sc_traffic_contends_with_dma),
        cmocka_unit_test(test_sc_checks_name_the_fault),
        cmocka_unit_test(test_sc_operand_slots_match_the_table),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
