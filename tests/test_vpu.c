/* test_vpu.c - the vector unit on the event kernel with a fake core: closed-form times for
 * elementwise ops under each packing, pipe overlap (VALU, transcendental, cross-lane), in-order
 * issue, cross-lane costs, megacore scaling, VMEM-bound ops and exact FLOP counters. */
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

#define CYC 1000ULL /* ps per cycle at 1 GHz */

/* Defaults (8 x 128 lanes, pack 2, 1 VALU slot, latencies 4/16/8) at 1 GHz with VMEM
 * bandwidth high enough never to bind, unless a test lowers it. */
static void cfg_vpu(cfg *c)
{
    cfg_defaults(c);
    c->chip_clock_ghz = 1.0;
    c->chip_cores = 1;
    c->vpu_sublanes = 8;
    c->vpu_lanes = 128;
    c->vpu_max_pack = 2;
    c->vpu_valu_slots = 1;
    c->vpu_latency = 4;
    c->vpu_trans_cycles = 2;
    c->vpu_trans_latency = 16;
    c->vpu_xlane_units = 1;
    c->vpu_reduce_cycles = 2;
    c->vpu_transpose_cycles = 4;
    c->vpu_xlane_latency = 8;
    c->vmem_bytes_per_cycle = 1ULL << 30;
}

/* Queue a vector op; `extra` is cast's `to` or the reduce/transpose width. */
static harness *vpu_host(const cfg *c)
{
    harness *h = harness_new(c, &vpu_ops, 0);
    assert_string_equal(h->u->name, "vpu0");
    return h;
}

static unsigned vop(harness *h, isa_opcode op, uint64_t n, isa_dtype dt, uint64_t extra)
{
    isa_insn *in = harness_add(h, op);
    in->arg[ISA_V_N] = n;
    in->arg[ISA_V_DTYPE] = dt;
    in->arg[ISA_V_EXTRA] = extra;
    return h->n - 1;
}

/* Completion time of one op alone on c. */
static uint64_t one_op(const cfg *c, isa_opcode op, uint64_t n, isa_dtype dt, uint64_t extra)
{
    harness *h = vpu_host(c);
    vop(h, op, n, dt, extra);
    harness_run(h);
    uint64_t t = h->done[0];
    harness_free(h);
    return t;
}

static void test_vpu_elementwise_time_follows_packing(void **state)
{
    (void)state;
    cfg c;
    cfg_vpu(&c);
    uint64_t n = 10240; /* 10 fp32 vregs of 8 x 128 */
    assert_int_equal(one_op(&c, ISA_OP_V_ADD, n, ISA_DT_FP32, 0), (10 + 4) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_ADD, n, ISA_DT_BF16, 0), (5 + 4) * CYC);
    /* max_pack 2 caps 8-bit packing at 2 */
    assert_int_equal(one_op(&c, ISA_OP_V_ADD, n, ISA_DT_INT8, 0), (5 + 4) * CYC);
    c.vpu_max_pack = 4;
    assert_int_equal(one_op(&c, ISA_OP_V_ADD, n, ISA_DT_INT8, 0), (3 + 4) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_ADD, n, ISA_DT_BF16, 0), (5 + 4) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_ADD, n, ISA_DT_INT4, 0), (3 + 4) * CYC);
    c.vpu_max_pack = 8;
    assert_int_equal(one_op(&c, ISA_OP_V_ADD, n, ISA_DT_INT4, 0), (2 + 4) * CYC);
    c.vpu_max_pack = 1; /* no packing at all */
    assert_int_equal(one_op(&c, ISA_OP_V_ADD, n, ISA_DT_BF16, 0), (10 + 4) * CYC);
}

static void test_vpu_partial_vreg_rounds_up(void **state)
{
    (void)state;
    cfg c;
    cfg_vpu(&c);
    assert_int_equal(one_op(&c, ISA_OP_V_MUL, 1, ISA_DT_FP32, 0), (1 + 4) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_MUL, 1025, ISA_DT_FP32, 0), (2 + 4) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_MUL, 2049, ISA_DT_BF16, 0), (2 + 4) * CYC);
}

static void test_vpu_valu_slots_divide_occupancy(void **state)
{
    (void)state;
    cfg c;
    cfg_vpu(&c);
    c.vpu_valu_slots = 2;
    assert_int_equal(one_op(&c, ISA_OP_V_ADD, 10240, ISA_DT_FP32, 0), (5 + 4) * CYC);
    c.vpu_valu_slots = 4; /* 2.5 cycles of occupancy */
    assert_int_equal(one_op(&c, ISA_OP_V_ADD, 10240, ISA_DT_FP32, 0), 2500 + 4 * CYC);
    c.vpu_valu_slots = 0.5;
    assert_int_equal(one_op(&c, ISA_OP_V_FMA, 10240, ISA_DT_FP32, 0), (20 + 4) * CYC);
}

static void test_vpu_valu_ops_pipeline_back_to_back(void **state)
{
    (void)state;
    cfg c;
    cfg_vpu(&c);
    harness *h = vpu_host(&c);
    uint64_t n = 10240;
    vop(h, ISA_OP_V_ADD, n, ISA_DT_FP32, 0);
    vop(h, ISA_OP_V_MUL, n, ISA_DT_FP32, 0);
    vop(h, ISA_OP_V_FMA, n, ISA_DT_FP32, 0);
    harness_run(h);
    for (unsigned i = 0; i < 3; i++) {
        /* the pipe frees after the occupancy; the latency overlaps the next op */
        assert_int_equal(h->start[i], i * 10 * CYC);
        assert_int_equal(h->done[i], (i * 10 + 10 + 4) * CYC);
    }
    assert_int_equal(h->u->busy_ps, 30 * CYC);
    assert_int_equal(h->u->flops, n + n + 2 * n);
    assert_int_equal(harness_stat(h, "valu_vregs"), 30);
    assert_int_equal(harness_stat(h, "valu_ops"), 3);
    assert_int_equal(harness_stat(h, "valu_busy_ps"), 30 * CYC);
    assert_int_equal(harness_stat(h, "trans_busy_ps"), 0);
    harness_free(h);
}

static void test_vpu_exp_uses_trans_pipe_and_overlaps_add(void **state)
{
    (void)state;
    cfg c;
    cfg_vpu(&c);
    harness *h = vpu_host(&c);
    vop(h, ISA_OP_V_EXP, 8192, ISA_DT_FP32, 0); /* 8 vregs x 2 cycles, latency 16 */
    vop(h, ISA_OP_V_ADD, 8192, ISA_DT_FP32, 0); /* 8 vregs on the VALU, latency 4 */
    harness_run(h);
    assert_int_equal(h->start[0], 0);
    assert_int_equal(h->start[1], 0);
    assert_int_equal(h->done[0], (16 + 16) * CYC);
    assert_int_equal(h->done[1], (8 + 4) * CYC);
    /* busy is the union of the pipes' occupancy, not the sum */
    assert_int_equal(h->u->busy_ps, 16 * CYC);
    assert_int_equal(harness_stat(h, "trans_busy_ps"), 16 * CYC);
    assert_int_equal(harness_stat(h, "valu_busy_ps"), 8 * CYC);
    assert_int_equal(harness_stat(h, "trans_vregs"), 8);
    harness_free(h);
}

static void test_vpu_in_order_issue_waits_behind_busy_pipe(void **state)
{
    (void)state;
    cfg c;
    cfg_vpu(&c);
    harness *h = vpu_host(&c);
    vop(h, ISA_OP_V_TANH, 8192, ISA_DT_FP32, 0);
    vop(h, ISA_OP_V_RSQRT, 8192, ISA_DT_FP32, 0);
    vop(h, ISA_OP_V_SUB, 8192, ISA_DT_FP32, 0);
    harness_pump(h);
    assert_int_equal(h->next, 1); /* the second transcendental is refused: pipe busy */
    assert_int_equal(kern_run(KERN_FOREVER), 0);
    assert_int_equal(h->start[1], 16 * CYC);
    assert_int_equal(h->done[1], (16 + 16 + 16) * CYC);
    assert_int_equal(h->start[2], 16 * CYC); /* in order: behind the rsqrt */
    assert_int_equal(h->done[2], (16 + 8 + 4) * CYC);
    assert_int_equal(h->u->busy_ps, 32 * CYC);
    harness_free(h);
}

static void test_vpu_reduce_and_transpose_costs(void **state)
{
    (void)state;
    cfg c;
    cfg_vpu(&c);
    /* 8 fp32 vregs: reduce 8 x 2 + 8, transpose 8 x 4 + 8 */
    assert_int_equal(one_op(&c, ISA_OP_V_REDUCE, 8192, ISA_DT_FP32, 0), (16 + 8) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_TRANSPOSE, 8192, ISA_DT_FP32, 128), (32 + 8) * CYC);
    c.vpu_xlane_units = 2; /* two cross-lane units halve the occupancy, not the latency */
    assert_int_equal(one_op(&c, ISA_OP_V_REDUCE, 8192, ISA_DT_FP32, 0), (8 + 8) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_TRANSPOSE, 8192, ISA_DT_FP32, 128), (16 + 8) * CYC);

    /* reduce and transpose share the cross-lane pipe; an add overlaps both */
    harness *h = vpu_host(&c);
    vop(h, ISA_OP_V_REDUCE, 8192, ISA_DT_FP32, 0);
    vop(h, ISA_OP_V_TRANSPOSE, 8192, ISA_DT_FP32, 128);
    vop(h, ISA_OP_V_ADD, 8192, ISA_DT_FP32, 0);
    harness_run(h);
    assert_int_equal(h->start[1], 8 * CYC);
    assert_int_equal(h->done[1], (8 + 16 + 8) * CYC);
    assert_int_equal(h->start[2], 8 * CYC);
    assert_int_equal(harness_stat(h, "xlane_busy_ps"), 24 * CYC);
    assert_int_equal(harness_stat(h, "xlane_ops"), 2);
    assert_int_equal(h->u->busy_ps, 24 * CYC);
    harness_free(h);
}

static void test_vpu_two_cores_halve_everything(void **state)
{
    (void)state;
    cfg c;
    cfg_vpu(&c);
    c.chip_cores = 2;
    assert_int_equal(one_op(&c, ISA_OP_V_ADD, 10240, ISA_DT_FP32, 0), (5 + 4) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_EXP, 8192, ISA_DT_FP32, 0), (8 + 16) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_REDUCE, 8192, ISA_DT_FP32, 0), (8 + 8) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_TRANSPOSE, 8192, ISA_DT_FP32, 0), (16 + 8) * CYC);
}

static void test_vpu_cast_packs_at_the_wider_type(void **state)
{
    (void)state;
    cfg c;
    cfg_vpu(&c);
    c.vpu_max_pack = 4;
    uint64_t n = 10240;
    assert_int_equal(one_op(&c, ISA_OP_V_CAST, n, ISA_DT_BF16, ISA_DT_FP32), (10 + 4) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_CAST, n, ISA_DT_FP32, ISA_DT_BF16), (10 + 4) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_CAST, n, ISA_DT_BF16, ISA_DT_INT8), (5 + 4) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_CAST, n, ISA_DT_INT8, ISA_DT_FP8), (3 + 4) * CYC);
}

static void test_vpu_flops_per_op_class(void **state)
{
    (void)state;
    cfg c;
    cfg_vpu(&c);
    struct {
        isa_opcode op;
        uint64_t extra, flops_per_elem;
    } cases[] = {
        {ISA_OP_V_ADD, 0, 1},    {ISA_OP_V_SUB, 0, 1},
        {ISA_OP_V_MUL, 0, 1},    {ISA_OP_V_MAX, 0, 1},
        {ISA_OP_V_MIN, 0, 1},    {ISA_OP_V_FMA, 0, 2},
        {ISA_OP_V_SELECT, 0, 0}, {ISA_OP_V_CAST, ISA_DT_BF16, 0},
        {ISA_OP_V_EXP, 0, 1},    {ISA_OP_V_LOG, 0, 1},
        {ISA_OP_V_RSQRT, 0, 1},  {ISA_OP_V_TANH, 0, 1},
        {ISA_OP_V_REDUCE, 0, 1}, {ISA_OP_V_TRANSPOSE, 0, 0},
    };
    uint64_t n = 3000, total = 0;
    harness *h = vpu_host(&c);
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vop(h, cases[i].op, n, ISA_DT_FP32, cases[i].extra);
        total += cases[i].flops_per_elem * n;
    }
    harness_run(h);
    assert_int_equal(h->u->flops, total);
    assert_int_equal(harness_stat(h, "valu_ops") + harness_stat(h, "trans_ops") +
                         harness_stat(h, "xlane_ops"),
                     14);
    assert_int_equal(harness_stat(h, "trans_ops"), 4);
    harness_free(h);
}

static void test_vpu_low_vmem_bandwidth_bounds_ops(void **state)
{
    (void)state;
    cfg c;
    cfg_vpu(&c);
    c.vmem_bytes_per_cycle = 64;
    /* add, 1 fp32 vreg: reads 2 x 4 KiB, writes 4 KiB = 12288 B = 192 cycles (occupancy 1) */
    harness *h = vpu_host(&c);
    vop(h, ISA_OP_V_ADD, 1024, ISA_DT_FP32, 0);
    harness_run(h);
    assert_int_equal(h->done[0], (192 + 4) * CYC);
    assert_int_equal(h->u->stall_vmem_ps, 191 * CYC);
    assert_int_equal(h->u->busy_ps, 192 * CYC);
    assert_int_equal(vmem_bytes(h->env.vmem), 12288);
    harness_free(h);
    /* fma and select read three operands: 16384 B = 256 cycles */
    assert_int_equal(one_op(&c, ISA_OP_V_FMA, 1024, ISA_DT_FP32, 0), (256 + 4) * CYC);
    assert_int_equal(one_op(&c, ISA_OP_V_SELECT, 1024, ISA_DT_FP32, 0), (256 + 4) * CYC);
    /* reduce of 1024 fp32 in rows of 128: reads 4096 B, writes 8 x 4 B = 64.5 cycles */
    assert_int_equal(one_op(&c, ISA_OP_V_REDUCE, 1024, ISA_DT_FP32, 0), 64500 + 8 * CYC);
    /* cast bf16 -> fp32 reads 2 KiB and writes 4 KiB = 96 cycles */
    assert_int_equal(one_op(&c, ISA_OP_V_CAST, 1024, ISA_DT_BF16, ISA_DT_FP32), (96 + 4) * CYC);

    /* Two concurrent ops (exp then add) share the bandwidth: the exp alone gets 64 B/cycle
     * for its 8 KiB (128 cycles); the add starting beside it gets half: 384 cycles. */
    h = vpu_host(&c);
    vop(h, ISA_OP_V_EXP, 1024, ISA_DT_FP32, 0);
    vop(h, ISA_OP_V_ADD, 1024, ISA_DT_FP32, 0);
    harness_run(h);
    assert_int_equal(h->done[0], (128 + 16) * CYC);
    assert_int_equal(h->done[1], (384 + 4) * CYC);
    assert_int_equal(h->u->busy_ps, 384 * CYC);
    harness_free(h);
}

static void test_vpu_releases_vmem_before_next_op_at_same_time(void **state)
{
    (void)state;
    /* 64 B/cycle: an add of 1024 fp32 moves 12288 B = 192 cycles. Another unit's event at
     * 192 (notified first, so it runs before the vector unit's own) makes the core issue the
     * second add; it must see the first add's share released and get the full bandwidth. */
    cfg c;
    cfg_vpu(&c);
    c.vmem_bytes_per_cycle = 64;
    harness *h = vpu_host(&c);
    kern_event *other = kern_event_new(harness_pump_event, h);
    kern_notify_at(other, 192 * CYC);
    vop(h, ISA_OP_V_ADD, 1024, ISA_DT_FP32, 0);
    vop(h, ISA_OP_V_ADD, 1024, ISA_DT_FP32, 0);
    harness_run(h);
    assert_int_equal(h->start[1], 192 * CYC);
    assert_int_equal(h->done[1], (192 + 192 + 4) * CYC);
    kern_event_free(other);
    harness_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vpu_elementwise_time_follows_packing),
        cmocka_unit_test(test_vpu_partial_vreg_rounds_up),
        cmocka_unit_test(test_vpu_valu_slots_divide_occupancy),
        cmocka_unit_test(test_vpu_valu_ops_pipeline_back_to_back),
        cmocka_unit_test(test_vpu_exp_uses_trans_pipe_and_overlaps_add),
        cmocka_unit_test(test_vpu_in_order_issue_waits_behind_busy_pipe),
        cmocka_unit_test(test_vpu_reduce_and_transpose_costs),
        cmocka_unit_test(test_vpu_two_cores_halve_everything),
        cmocka_unit_test(test_vpu_cast_packs_at_the_wider_type),
        cmocka_unit_test(test_vpu_flops_per_op_class),
        cmocka_unit_test(test_vpu_low_vmem_bandwidth_bounds_ops),
        cmocka_unit_test(test_vpu_releases_vmem_before_next_op_at_same_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
