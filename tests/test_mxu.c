/* test_mxu.c - the systolic-array model on the event kernel with a fake core: closed-form
 * times for weight loads, single and back-to-back tiles with one and two weight buffers,
 * partial tiles, datatype rates, VMEM-bound streams, and exact FLOP and stall counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "harness.h"
#include "kernel.h"
#include "stats.h"
#include "unit.h"
#include "units.h"
#include "vmem.h"

#define CYC 1000ULL /* ps per cycle at the 1 GHz default clock */

/* Defaults at 1 GHz with an R x C array, bf16 at 1 row/cycle, weight rows at 1/cycle. */
static void cfg_mxu(cfg *c, uint64_t rows, uint64_t cols, unsigned buffers)
{
    cfg_defaults(c);
    c->chip_clock_ghz = 1.0;
    c->mxu_rows = rows;
    c->mxu_cols = cols;
    c->mxu_weight_buffers = buffers;
    c->mxu_weight_load_rows = 1;
    c->mxu_rate_bf16 = 1;
}

static harness *mxu_host(const cfg *c)
{
    harness *h = harness_new(c, &mxu_ops, 0);
    assert_string_equal(h->u->name, "mxu0");
    return h;
}

static unsigned ldw(harness *h, uint64_t k, uint64_t n, isa_dtype dt)
{
    isa_insn *in = harness_add(h, ISA_OP_MXU_LDW);
    in->arg[ISA_LDW_K] = k;
    in->arg[ISA_LDW_N] = n;
    in->arg[ISA_LDW_DTYPE] = dt;
    return h->n - 1;
}

static unsigned matmul(harness *h, uint64_t m, isa_dtype dt, int acc)
{
    isa_insn *in = harness_add(h, ISA_OP_MXU_MATMUL);
    in->arg[ISA_MM_M] = m;
    in->arg[ISA_MM_DTYPE] = dt;
    in->arg[ISA_MM_ACC] = (uint64_t)acc;
    return h->n - 1;
}

static const uint64_t shapes[][2] = {{128, 128}, {256, 256}, {64, 32}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static void test_mxu_ldw_takes_k_over_load_rows_cycles(void **state)
{
    (void)state;
    for (unsigned s = 0; s < NSHAPES; s++) {
        uint64_t R = shapes[s][0], C = shapes[s][1];
        const double rates[] = {1, 4, 0.5, 8};
        for (unsigned r = 0; r < 4; r++) {
            cfg c;
            cfg_mxu(&c, R, C, 2);
            c.mxu_weight_load_rows = rates[r];
            harness *h = mxu_host(&c);
            uint64_t k = R - 3; /* not a multiple of the rate: rounds up */
            ldw(h, k, C, ISA_DT_BF16);
            harness_run(h);
            uint64_t cycles = (uint64_t)((double)k / rates[r]);
            if ((double)cycles * rates[r] < (double)k)
                cycles++;
            assert_int_equal(h->done[0], cycles * CYC);
            assert_int_equal(h->u->busy_ps, 0); /* the streaming port never ran */
            assert_int_equal(h->u->flops, 0);
            assert_int_equal(harness_stat(h, "load_busy_ps"), cycles * CYC);
            assert_int_equal(harness_stat(h, "weight_loads"), 1);
            harness_free(h);
        }
    }
}

static void test_mxu_single_tile_is_k_plus_m_plus_skew(void **state)
{
    (void)state;
    for (unsigned s = 0; s < NSHAPES; s++) {
        uint64_t R = shapes[s][0], C = shapes[s][1];
        for (unsigned b = 1; b <= 2; b++) {
            cfg c;
            cfg_mxu(&c, R, C, b);
            harness *h = mxu_host(&c);
            uint64_t m = 3 * R + 5;
            ldw(h, R, C, ISA_DT_BF16);
            matmul(h, m, ISA_DT_BF16, 0);
            harness_run(h);
            assert_int_equal(h->done[0], R * CYC);
            assert_int_equal(h->start[1], R * CYC);
            assert_int_equal(h->done[1], (R + m + R + C - 1) * CYC);
            assert_int_equal(h->u->busy_ps, m * CYC);
            assert_int_equal(h->u->flops, 2 * m * R * C);
            assert_int_equal(h->u->stall_vmem_ps, 0);
            assert_int_equal(harness_stat(h, "drain_exposed_ps"), (R + C - 1) * CYC);
            assert_int_equal(harness_stat(h, "stream_cycles"), m);
            assert_int_equal(harness_stat(h, "weight_wait_ps"),
                             R * CYC); /* matmul waited for ldw */
            harness_free(h);
        }
    }
}

static void test_mxu_one_buffer_serialises_tiles(void **state)
{
    (void)state;
    const unsigned T = 5;
    for (unsigned s = 0; s < NSHAPES; s++) {
        uint64_t R = shapes[s][0], C = shapes[s][1];
        uint64_t k = R, m = 2 * R;
        cfg c;
        cfg_mxu(&c, R, C, 1);
        harness *h = mxu_host(&c);
        for (unsigned t = 0; t < T; t++) {
            ldw(h, k, C, ISA_DT_BF16);
            matmul(h, m, ISA_DT_BF16, 0);
        }
        harness_run(h);
        uint64_t tile = k + m + R + C - 1;
        for (unsigned t = 0; t < T; t++) {
            /* each load waits for the previous tile to drain completely */
            assert_int_equal(h->start[2 * t], t * tile * CYC);
            assert_int_equal(h->done[2 * t + 1], (t + 1) * tile * CYC);
        }
        assert_int_equal(harness_stat(h, "drain_exposed_ps"), T * (R + C - 1) * CYC);
        assert_int_equal(harness_stat(h, "buffer_wait_ps"), (T - 1) * (m + R + C - 1) * CYC);
        assert_int_equal(h->u->flops, T * 2 * m * k * C);
        harness_free(h);
    }
}

static void test_mxu_two_buffers_hide_weight_loads(void **state)
{
    (void)state;
    const unsigned T = 6;
    for (unsigned s = 0; s < NSHAPES; s++) {
        uint64_t R = shapes[s][0], C = shapes[s][1];
        const uint64_t ms[] = {R, 2 * R + 7}; /* m >= k */
        for (unsigned i = 0; i < 2; i++) {
            uint64_t k = R, m = ms[i];
            cfg c;
            cfg_mxu(&c, R, C, 2);
            harness *h = mxu_host(&c);
            for (unsigned t = 0; t < T; t++) {
                ldw(h, k, C, ISA_DT_BF16);
                matmul(h, m, ISA_DT_BF16, 0);
            }
            harness_run(h);
            /* streams run back to back; only the last tile's skew is exposed */
            for (unsigned t = 0; t < T; t++)
                assert_int_equal(h->start[2 * t + 1], (k + t * m) * CYC);
            assert_int_equal(h->done[2 * T - 1], (k + T * m + R + C - 1) * CYC);
            assert_int_equal(harness_stat(h, "drain_exposed_ps"), (R + C - 1) * CYC);
            assert_int_equal(harness_stat(h, "weight_wait_ps"), k * CYC); /* only the first load */
            assert_int_equal(h->u->busy_ps, T * m * CYC);
            harness_free(h);
        }
    }
}

static void test_mxu_two_buffers_short_streams_wait_for_loads(void **state)
{
    (void)state;
    /* m < k: the load path is the bottleneck, one tile per k cycles. */
    const unsigned T = 4;
    uint64_t R = 128, C = 128, k = 128, m = 40;
    cfg c;
    cfg_mxu(&c, R, C, 2);
    harness *h = mxu_host(&c);
    for (unsigned t = 0; t < T; t++) {
        ldw(h, k, C, ISA_DT_BF16);
        matmul(h, m, ISA_DT_BF16, 0);
    }
    harness_run(h);
    for (unsigned t = 0; t < T; t++)
        assert_int_equal(h->start[2 * t + 1], (t + 1) * k * CYC);
    assert_int_equal(h->done[2 * T - 1], (T * k + m + R + C - 1) * CYC);
    assert_int_equal(harness_stat(h, "weight_wait_ps"), (k + (T - 1) * (k - m)) * CYC);
    /* Gaps of k - m < R + C - 1 between streams: each exposes that much of the drain. */
    assert_int_equal(harness_stat(h, "drain_exposed_ps"), ((T - 1) * (k - m) + R + C - 1) * CYC);
    harness_free(h);
}

static void test_mxu_back_to_back_matmuls_overlap_drain(void **state)
{
    (void)state;
    for (unsigned s = 0; s < NSHAPES; s++) {
        uint64_t R = shapes[s][0], C = shapes[s][1];
        cfg c;
        cfg_mxu(&c, R, C, 1);
        harness *h = mxu_host(&c);
        ldw(h, R, C, ISA_DT_BF16);
        const uint64_t ms[] = {7, R, 3};
        for (unsigned i = 0; i < 3; i++)
            matmul(h, ms[i], ISA_DT_BF16, 0);
        harness_run(h);
        uint64_t t = R;
        for (unsigned i = 0; i < 3; i++) {
            assert_int_equal(h->start[1 + i], t * CYC);
            t += ms[i];
            assert_int_equal(h->done[1 + i], (t + R + C - 1) * CYC);
        }
        assert_int_equal(harness_stat(h, "drain_exposed_ps"), (R + C - 1) * CYC);
        harness_free(h);
    }
}

static void test_mxu_many_single_row_matmuls_complete_in_order(void **state)
{
    (void)state;
    /* m = 1: R + C matmuls drain at once; each completes one cycle after the previous. */
    uint64_t R = 128, C = 128, N = 600;
    cfg c;
    cfg_mxu(&c, R, C, 2);
    harness *h = mxu_host(&c);
    ldw(h, R, C, ISA_DT_BF16);
    for (uint64_t i = 0; i < N; i++)
        matmul(h, 1, ISA_DT_BF16, 0);
    harness_run(h);
    for (uint64_t i = 0; i < N; i++)
        assert_int_equal(h->done[1 + i], (R + i + 1 + R + C - 1) * CYC);
    assert_int_equal(h->u->flops, N * 2 * R * C);
    /* Events are per instruction, never per row or cycle. */
    assert_true(kern_event_count() <= 3 * (N + 1));
    harness_free(h);
}

static void test_mxu_events_do_not_scale_with_rows(void **state)
{
    (void)state;
    cfg c;
    cfg_mxu(&c, 128, 128, 2);
    harness *h = mxu_host(&c);
    ldw(h, 128, 128, ISA_DT_BF16);
    matmul(h, 10000000, ISA_DT_BF16, 0);
    harness_run(h);
    assert_int_equal(h->done[1], (128 + 10000000 + 255) * CYC);
    assert_true(kern_event_count() <= 6);
    harness_free(h);
}

static void test_mxu_partial_tile_wastes_columns(void **state)
{
    (void)state;
    uint64_t R = 128, C = 128, m = 512;
    uint64_t dur[2], flops[2];
    double util[2];
    const uint64_t kn[2][2] = {{128, 128}, {64, 32}};
    for (unsigned i = 0; i < 2; i++) {
        cfg c;
        cfg_mxu(&c, R, C, 2);
        harness *h = mxu_host(&c);
        ldw(h, kn[i][0], kn[i][1], ISA_DT_BF16);
        matmul(h, m, ISA_DT_BF16, 0);
        harness_run(h);
        assert_int_equal(h->done[0], kn[i][0] * CYC);
        dur[i] = h->done[1] - h->start[1];
        flops[i] = h->u->flops;
        util[i] = harness_stat(h, "cell_util");
        assert_int_equal(harness_stat(h, "util_cells_ps"), kn[i][0] * kn[i][1] * m * CYC);
        harness_free(h);
    }
    /* the skew runs through the whole physical array whatever the tile */
    assert_int_equal(dur[0], (m + R + C - 1) * CYC);
    assert_int_equal(dur[1], dur[0]);
    assert_int_equal(flops[0], 2 * m * 128 * 128);
    assert_int_equal(flops[1], 2 * m * 64 * 32);
    assert_true(util[0] > 0.999999 && util[0] < 1.000001);
    assert_true(util[1] > 0.125 - 1e-9 && util[1] < 0.125 + 1e-9);
}

static void test_mxu_datatype_rate_scales_stream(void **state)
{
    (void)state;
    struct {
        isa_dtype dt;
        double rate;
        uint64_t m, s;
    } cases[] = {
        {ISA_DT_BF16, 1, 256, 256}, {ISA_DT_INT8, 2, 256, 128},   {ISA_DT_INT8, 2, 255, 128},
        {ISA_DT_FP8, 2, 100, 50},   {ISA_DT_FP32, 0.25, 64, 256}, {ISA_DT_INT4, 4, 10, 3},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cfg c;
        cfg_mxu(&c, 128, 128, 2);
        c.mxu_rate_int8 = 2;
        c.mxu_rate_fp8 = 2;
        c.mxu_rate_int4 = 4;
        c.mxu_rate_fp32 = 0.25;
        harness *h = mxu_host(&c);
        ldw(h, 128, 128, cases[i].dt);
        matmul(h, cases[i].m, cases[i].dt, 0);
        harness_run(h);
        assert_int_equal(h->done[1], (128 + cases[i].s + 255) * CYC);
        assert_int_equal(h->u->busy_ps, cases[i].s * CYC);
        assert_int_equal(harness_stat(h, "stream_cycles"), cases[i].s);
        assert_int_equal(h->u->flops, 2 * cases[i].m * 128 * 128);
        harness_free(h);
    }
}

static void test_mxu_low_vmem_bandwidth_bounds_load_and_stream(void **state)
{
    (void)state;
    /* 64 B/cycle: the 32 KiB bf16 tile needs 512 cycles (> 128 to shift in); the stream of
     * m=128 reads 128x128x2 and writes 128x128x4 bytes = 1536 cycles (> 128). */
    cfg c;
    cfg_mxu(&c, 128, 128, 2);
    c.vmem_bytes_per_cycle = 64;
    harness *h = mxu_host(&c);
    ldw(h, 128, 128, ISA_DT_BF16);
    matmul(h, 128, ISA_DT_BF16, 0);
    harness_run(h);
    assert_int_equal(h->done[0], 512 * CYC);
    assert_int_equal(h->done[1], (512 + 1536 + 255) * CYC);
    assert_int_equal(h->u->busy_ps, 1536 * CYC);
    /* the stream's stall is part of busy_ps; the load's is the load path's own */
    assert_int_equal(h->u->stall_vmem_ps, (1536 - 128) * CYC);
    assert_int_equal(harness_stat(h, "load_stall_vmem_ps"), (512 - 128) * CYC);
    assert_int_equal(harness_stat(h, "load_busy_ps"), 512 * CYC);
    assert_int_equal(vmem_bytes(h->env.vmem), 32768 + 98304);
    harness_free(h);
}

static void test_mxu_accumulate_reads_the_results_too(void **state)
{
    (void)state;
    /* acc=1 adds m x n x 4 bytes of reads: 128x128x(2+4+4) = 163840 B = 2560 cycles. */
    cfg c;
    cfg_mxu(&c, 128, 128, 2);
    c.vmem_bytes_per_cycle = 64;
    harness *h = mxu_host(&c);
    ldw(h, 128, 128, ISA_DT_BF16);
    matmul(h, 128, ISA_DT_BF16, 1);
    harness_run(h);
    assert_int_equal(h->done[1], (512 + 2560 + 255) * CYC);
    assert_int_equal(vmem_bytes(h->env.vmem), 32768 + 163840);
    harness_free(h);
}

static void test_mxu_load_overlapping_stream_shares_vmem(void **state)
{
    (void)state;
    /* With two buffers the second ldw starts while the first matmul streams: both hold a
     * VMEM share, so the load gets half the bandwidth. 256 B/cycle: tile 32 KiB alone = 128
     * cycles; stream 128 rows = 98304 B = 384 cycles alone; second load at half = 256. */
    cfg c;
    cfg_mxu(&c, 128, 128, 2);
    c.vmem_bytes_per_cycle = 256;
    harness *h = mxu_host(&c);
    ldw(h, 128, 128, ISA_DT_BF16);
    matmul(h, 128, ISA_DT_BF16, 0);
    ldw(h, 128, 128, ISA_DT_BF16);
    harness_run(h);
    assert_int_equal(h->done[0], 128 * CYC);
    assert_int_equal(h->start[1], 128 * CYC);
    assert_int_equal(h->done[1], (128 + 384 + 255) * CYC);
    assert_int_equal(h->start[2], 128 * CYC);
    assert_int_equal(h->done[2], (128 + 256) * CYC);
    harness_free(h);
}

static void test_mxu_clock_scales_times(void **state)
{
    (void)state;
    cfg c;
    cfg_mxu(&c, 128, 128, 2);
    c.chip_clock_ghz = 2.0; /* 500 ps per cycle */
    harness *h = mxu_host(&c);
    ldw(h, 128, 128, ISA_DT_BF16);
    matmul(h, 1000, ISA_DT_BF16, 0);
    harness_run(h);
    assert_int_equal(h->done[1], (128 + 1000 + 255) * 500);
    harness_free(h);
}

static void test_mxu_ldw_refused_while_load_path_busy_then_woken(void **state)
{
    (void)state;
    cfg c;
    cfg_mxu(&c, 128, 128, 2);
    harness *h = mxu_host(&c);
    ldw(h, 128, 128, ISA_DT_BF16);
    ldw(h, 100, 128, ISA_DT_BF16);
    harness_pump(h);
    assert_int_equal(h->next, 1); /* the second ldw was refused */
    assert_false(unit_can_start(h->u, &h->in[1]));
    assert_int_equal(kern_run(KERN_FOREVER), 0);
    assert_int_equal(h->start[1], 128 * CYC);
    assert_int_equal(h->done[1], 228 * CYC);
    assert_int_equal(harness_stat(h, "weight_loads"), 2);
    assert_int_equal(harness_stat(h, "matmuls"), 0);
    harness_free(h);
}

static void test_mxu_releases_vmem_before_next_op_at_same_time(void **state)
{
    (void)state;
    /* 64 B/cycle: the ldw is VMEM-bound to 512 cycles. Another unit's event at 512 (notified
     * first, so it runs before the MXU's own) makes the core issue the matmul; it must see
     * the load's share released and stream at the full bandwidth (1536 cycles, not 3072). */
    cfg c;
    cfg_mxu(&c, 128, 128, 2);
    c.vmem_bytes_per_cycle = 64;
    harness *h = mxu_host(&c);
    kern_event *other = kern_event_new(harness_pump_event, h);
    kern_notify_at(other, 512 * CYC);
    ldw(h, 128, 128, ISA_DT_BF16);
    matmul(h, 128, ISA_DT_BF16, 0);
    harness_run(h);
    assert_int_equal(h->done[0], 512 * CYC);
    assert_int_equal(h->start[1], 512 * CYC);
    assert_int_equal(h->done[1], (512 + 1536 + 255) * CYC);
    kern_event_free(other);
    harness_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxu_ldw_takes_k_over_load_rows_cycles),
        cmocka_unit_test(test_mxu_single_tile_is_k_plus_m_plus_skew),
        cmocka_unit_test(test_mxu_one_buffer_serialises_tiles),
        cmocka_unit_test(test_mxu_two_buffers_hide_weight_loads),
        cmocka_unit_test(test_mxu_two_buffers_short_streams_wait_for_loads),
        cmocka_unit_test(test_mxu_back_to_back_matmuls_overlap_drain),
        cmocka_unit_test(test_mxu_many_single_row_matmuls_complete_in_order),
        cmocka_unit_test(test_mxu_events_do_not_scale_with_rows),
        cmocka_unit_test(test_mxu_partial_tile_wastes_columns),
        cmocka_unit_test(test_mxu_datatype_rate_scales_stream),
        cmocka_unit_test(test_mxu_low_vmem_bandwidth_bounds_load_and_stream),
        cmocka_unit_test(test_mxu_accumulate_reads_the_results_too),
        cmocka_unit_test(test_mxu_load_overlapping_stream_shares_vmem),
        cmocka_unit_test(test_mxu_clock_scales_times),
        cmocka_unit_test(test_mxu_ldw_refused_while_load_path_busy_then_woken),
        cmocka_unit_test(test_mxu_releases_vmem_before_next_op_at_same_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
