/* test_dma.c - the DMA unit on the event kernel with a fake core: latency plus HBM time,
 * bandwidth shared between engines, serialisation on one engine, strided transfers, VMEM
 * limits and exact byte counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "harness.h"
#include "hbm.h"
#include "kernel.h"
#include "stats.h"
#include "unit.h"
#include "units.h"
#include "vmem.h"

#define KiB 1024ULL
#define MiB (1024ULL * 1024ULL)

static void dma_add(harness *h, int write, uint64_t hbm, uint64_t bytes, uint64_t stride,
                    uint64_t block)
{
    isa_insn *in = harness_add(h, write ? ISA_OP_DMA_V2H : ISA_OP_DMA_H2V);
    in->arg[ISA_DMA_HBM] = hbm;
    in->arg[ISA_DMA_VMEM] = 0;
    in->arg[ISA_DMA_BYTES] = bytes;
    in->arg[ISA_DMA_STRIDE] = stride;
    in->arg[ISA_DMA_BLOCK] = block;
}

static void cfg_test(cfg *c)
{
    cfg_defaults(c);
    c->hbm_trefi_ns = 1e6; /* closed forms without refresh */
}

/* Time of one transfer of `bytes` alone on `c`. */
static uint64_t one_transfer(const cfg *c, uint64_t bytes)
{
    harness h;
    harness_init(&h, c, &dma_ops, HARNESS_HBM);
    dma_add(&h, 0, 0, bytes, 0, 0);
    harness_run(&h);
    uint64_t t = h.done[0];
    harness_fini(&h);
    return t;
}

static void test_dma_time_is_latency_plus_hbm_time(void **state)
{
    (void)state;
    cfg c;
    cfg_test(&c);
    /* 256 KiB = 4 chunks of 64 KiB, all in flight at once (dma.outstanding = 4), issued
     * when the 100 ns descriptor latency has elapsed. */
    hbm *ref = hbm_new(&c, NULL);
    uint64_t lat = 100000, expect = 0;
    for (uint64_t k = 0; k < 4; k++) {
        uint64_t t = hbm_access(ref, 4 * MiB + k * 64 * KiB, 64 * KiB, 0, lat);
        expect = t > expect ? t : expect;
    }
    hbm_free(ref);
    harness h;
    harness_init(&h, &c, &dma_ops, HARNESS_HBM);
    dma_add(&h, 0, 4 * MiB, 256 * KiB, 0, 0);
    harness_run(&h);
    assert_int_equal(h.done[0], expect);
    assert_int_equal(h.u->busy_ps, expect);
    assert_int_equal(h.u->insns, 1);
    assert_int_equal(h.u->stall_vmem_ps, 0);
    harness_fini(&h);
}

static void test_dma_two_engines_share_hbm_bandwidth(void **state)
{
    (void)state;
    cfg c;
    cfg_test(&c);
    c.dma_engines = 2;
    uint64_t t8 = one_transfer(&c, 8 * MiB), t16 = one_transfer(&c, 16 * MiB);
    harness h;
    harness_init(&h, &c, &dma_ops, HARNESS_HBM);
    dma_add(&h, 0, 0, 8 * MiB, 0, 0);
    dma_add(&h, 0, 64 * MiB, 8 * MiB, 0, 0);
    harness_run(&h);
    assert_int_equal(h.start[1], 0); /* both engines started at once */
    uint64_t end = h.done[0] > h.done[1] ? h.done[0] : h.done[1];
    /* Together they take about as long as one double-size transfer, not as one. */
    assert_true(end > t16 * 95 / 100 && end < t16 * 105 / 100);
    assert_true(end > t8 * 18 / 10);
    assert_true(h.done[0] > t8 * 15 / 10 && h.done[1] > t8 * 15 / 10);
    assert_int_equal(h.u->busy_ps, end);
    harness_fini(&h);
}

static void test_dma_one_engine_serialises(void **state)
{
    (void)state;
    cfg c;
    cfg_test(&c);
    c.dma_engines = 1;
    uint64_t t8 = one_transfer(&c, 8 * MiB);
    harness h;
    harness_init(&h, &c, &dma_ops, HARNESS_HBM);
    dma_add(&h, 0, 0, 8 * MiB, 0, 0);
    dma_add(&h, 0, 64 * MiB, 8 * MiB, 0, 0);
    harness_run(&h);
    assert_int_equal(h.done[0], t8);
    assert_int_equal(h.start[1], t8); /* waited for the engine */
    assert_true(h.wakes >= 1);
    uint64_t second = h.done[1] - h.start[1];
    assert_true(second > t8 * 98 / 100 && second < t8 * 102 / 100);
    harness_fini(&h);
}

static void test_dma_strided_small_blocks_slower_than_contiguous(void **state)
{
    (void)state;
    cfg c;
    cfg_test(&c);
    uint64_t contiguous = one_transfer(&c, 1 * MiB);
    harness h;
    harness_init(&h, &c, &dma_ops, HARNESS_HBM);
    /* 64-byte blocks 4 KiB apart: every block lands on 1 of 4 pseudo-channels. */
    dma_add(&h, 0, 0, 1 * MiB, 4 * KiB, 64);
    harness_run(&h);
    assert_true(h.done[0] > 4 * contiguous);
    stats_reg *r = stats_new(NULL);
    unit_register_stats(h.u, r);
    assert_int_equal(stats_get(r, "dma0", "hbm_requests", -1), 1 * MiB / 64);
    stats_free(r);
    harness_fini(&h);
}

static void test_dma_stride_equal_to_block_is_contiguous(void **state)
{
    (void)state;
    cfg c;
    cfg_test(&c);
    uint64_t contiguous = one_transfer(&c, 1 * MiB);
    harness h;
    harness_init(&h, &c, &dma_ops, HARNESS_HBM);
    dma_add(&h, 0, 0, 1 * MiB, 256, 256);
    harness_run(&h);
    assert_int_equal(h.done[0], contiguous);
    harness_fini(&h);
}

static void test_dma_bytes_counters_are_exact(void **state)
{
    (void)state;
    cfg c;
    cfg_test(&c);
    harness h;
    harness_init(&h, &c, &dma_ops, HARNESS_HBM);
    dma_add(&h, 0, 0, 1000003, 0, 0);         /* not a multiple of the chunk */
    dma_add(&h, 1, 32 * MiB, 777777, 0, 0);   /* a write */
    dma_add(&h, 0, 64 * MiB, 1000, 4096, 64); /* strided, last block 40 bytes */
    harness_run(&h);
    stats_reg *r = stats_new(NULL);
    unit_register_stats(h.u, r);
    hbm_register_stats(h.env.hbm, r);
    assert_int_equal(stats_get(r, "dma0", "bytes", -1), 1000003 + 777777 + 1000);
    assert_int_equal(stats_get(r, "dma0", "bytes_read", -1), 1000003 + 1000);
    assert_int_equal(stats_get(r, "dma0", "bytes_written", -1), 777777);
    assert_int_equal(stats_get(r, "dma0", "insns", -1), 3);
    assert_int_equal(stats_get(r, "hbm", "bytes_read", -1), 1000003 + 1000);
    assert_int_equal(stats_get(r, "hbm", "bytes_written", -1), 777777);
    /* ceil(1000003 / 64 KiB) + ceil(777777 / 64 KiB) + 1 chunk */
    assert_int_equal(stats_get(r, "dma0", "chunks", -1), 16 + 12 + 1);
    assert_int_equal(vmem_bytes(h.env.vmem), 1000003 + 777777 + 1000);
    stats_free(r);
    harness_fini(&h);
}

static void test_dma_hbm_stall_is_time_beyond_peak(void **state)
{
    (void)state;
    cfg c;
    cfg_test(&c);
    harness h;
    harness_init(&h, &c, &dma_ops, HARNESS_HBM);
    dma_add(&h, 0, 0, 16 * MiB, 0, 0);
    harness_run(&h);
    double ideal = (double)(16 * MiB) / hbm_peak_bytes_per_ps(h.env.hbm);
    double expect = (double)(h.done[0] - 100000) - ideal;
    assert_true(expect > 0);
    assert_true((double)h.u->stall_hbm_ps > expect - 2 && (double)h.u->stall_hbm_ps < expect + 2);
    assert_int_equal(h.u->stall_vmem_ps, 0);
    harness_fini(&h);
}

static void test_dma_slow_vmem_limits_and_is_charged_to_vmem(void **state)
{
    (void)state;
    cfg c;
    cfg_test(&c);
    c.vmem_bytes_per_cycle = 64; /* 64 GB/s at 1 GHz, far below HBM */
    harness h;
    harness_init(&h, &c, &dma_ops, HARNESS_HBM);
    dma_add(&h, 0, 0, 4 * MiB, 0, 0);
    harness_run(&h);
    /* 4 chunks in flight each get a quarter of 64 B/ps... of 64 B/ns: 4 MiB at 64 GB/s. */
    double vmem_ps = (double)(4 * MiB) / 0.064;
    double t = (double)(h.done[0] - 100000);
    assert_true(t > vmem_ps * 0.99 && t < vmem_ps * 1.05);
    assert_true(h.u->stall_vmem_ps > (uint64_t)(t * 0.9));
    assert_true(h.u->stall_hbm_ps < (uint64_t)(t * 0.1));
    harness_fini(&h);
}

static void test_dma_can_start_only_while_an_engine_is_idle(void **state)
{
    (void)state;
    cfg c;
    cfg_test(&c);
    c.dma_engines = 3;
    harness h;
    harness_init(&h, &c, &dma_ops, HARNESS_HBM);
    for (int i = 0; i < 5; i++)
        dma_add(&h, 0, (uint64_t)i * MiB, 64 * KiB, 0, 0);
    harness_pump(&h);
    assert_int_equal(h.next, 3);
    assert_false(unit_can_start(h.u, &h.in[3]));
    assert_int_equal(kern_run(KERN_FOREVER), 0);
    assert_int_equal(h.ndone, 5);
    assert_true(h.start[3] > 0 && h.start[4] > 0);
    harness_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dma_time_is_latency_plus_hbm_time),
        cmocka_unit_test(test_dma_two_engines_share_hbm_bandwidth),
        cmocka_unit_test(test_dma_one_engine_serialises),
        cmocka_unit_test(test_dma_strided_small_blocks_slower_than_contiguous),
        cmocka_unit_test(test_dma_stride_equal_to_block_is_contiguous),
        cmocka_unit_test(test_dma_bytes_counters_are_exact),
        cmocka_unit_test(test_dma_hbm_stall_is_time_beyond_peak),
        cmocka_unit_test(test_dma_slow_vmem_limits_and_is_charged_to_vmem),
        cmocka_unit_test(test_dma_can_start_only_while_an_engine_is_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
