/* test_ir.c - the workload IR and each lowering pass alone on hand-built programs: the
 * builders and verifier reject malformed programs, lower_mem reuses dead buffers, keeps
 * persistent tensors and async collectives' buffers alive, pads pitches and names the
 * largest live tensors when the plan does not fit; lower_tile lowers convolutions to
 * implicit GEMMs and tiles GEMMs within VMEM; lower_emit writes a trace whose DMAs use the plan's
 * addresses, whose markers follow the regions, whose semaphores balance and whose collectives move
 * their buffers through HBM and reduce on the vector unit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gen.h"
#include "lower.h"

static cfg *load(const char *preset)
{
    cfg *c = malloc(sizeof *c);
    err e;
    assert_non_null(c);
    cfg_defaults(c);
    if (cfg_load(c, preset, NULL, &e))
        fail_msg("%s", e.msg);
    return c;
}

static void test_ir_builders_reject_bad_ids_and_keep_the_first_error(void **state)
{
    (void)state;
    cfg *c = load("v7");
    err e;
    ir *p = ir_new(c, &e);
    int a = ir_tensor_new(p, "a", ISA_DT_BF16, 64, 64);
    assert_true(a >= 0);
    assert_int_equal(ir_matmul(p, a, 99, a, 64, 64, 64), -1);
    assert_int_equal(ir_fusion(p, 16, &a, 1, &a, 1, NULL, 0), -1); /* ignored after an error */
    assert_int_equal(ir_error(p, &e), -1);
    assert_non_null(strstr(e.msg, "not a tensor"));
    ir_free(p);
    free(c);
}

static void test_ir_verify_rejects_a_matmul_larger_than_its_operands(void **state)
{
    (void)state;
    cfg *c = load("v7");
    err e;
    ir *p = ir_new(c, &e);
    int a = ir_tensor_new(p, "a", ISA_DT_BF16, 64, 32);
    int w = ir_tensor_new(p, "w", ISA_DT_BF16, 64, 64);
    int o = ir_tensor_new(p, "o", ISA_DT_BF16, 64, 64);
    assert_true(ir_matmul(p, a, w, o, 64, 64, 64) >= 0); /* k = 64 but a has 32 columns */
    assert_int_equal(ir_verify(p, &e), -1);
    assert_non_null(strstr(e.msg, "do not fit"));
    ir_free(p);
    free(c);
}

/* a -> t1 -> t2 -> out: t1 is dead once t2 exists, so t3 (born after) takes t1's space. */
static void test_ir_mem_reuses_the_space_of_dead_tensors(void **state)
{
    (void)state;
    cfg *c = load("v7");
    err e;
    ir *p = ir_new(c, &e);
    const uint64_t n = 1 << 20;
    int in = ir_param_new(p, "in", ISA_DT_BF16, 1, n);
    int t1 = ir_tensor_new(p, "t1", ISA_DT_BF16, 1, n);
    int t2 = ir_tensor_new(p, "t2", ISA_DT_BF16, 1, n);
    int t3 = ir_tensor_new(p, "t3", ISA_DT_BF16, 1, n);
    int out = ir_param_new(p, "out", ISA_DT_BF16, 1, n);
    ir_vop v = {.op = ISA_OP_V_EXP, .src = 0, .dst = 1, .dt = ISA_DT_BF16};
    assert_true(ir_fusion(p, n, &in, 1, &t1, 1, &v, 1) >= 0);
    assert_true(ir_fusion(p, n, &t1, 1, &t2, 1, &v, 1) >= 0);
    assert_true(ir_fusion(p, n, &t2, 1, &t3, 1, &v, 1) >= 0);
    assert_true(ir_fusion(p, n, &t3, 1, &out, 1, &v, 1) >= 0);
    assert_int_equal(lower_mem(p, c->hbm_bytes, &e), 0);
    const ir_mem_plan *mp = ir_mem_get(p);
    assert_int_equal(ir_tensor_get(p, t3)->addr, ir_tensor_get(p, t1)->addr);
    assert_int_not_equal(ir_tensor_get(p, t2)->addr, ir_tensor_get(p, t1)->addr);
    assert_int_equal(mp->peak_bytes, 4 * 2 * n); /* in, out, two live temporaries */
    assert_int_equal(mp->naive_bytes, 5 * 2 * n);
    assert_int_equal(mp->persistent_bytes, 2 * 2 * n);
    /* Live ranges never overlap in address. */
    for (int i = 0; i < ir_ntensors(p); i++)
        for (int j = i + 1; j < ir_ntensors(p); j++) {
            const ir_tensor *x = ir_tensor_get(p, i), *y = ir_tensor_get(p, j);
            int xf = x->persistent ? -1 : x->first, yf = y->persistent ? -1 : y->first;
            int overlap_t = xf <= y->last && yf <= x->last;
            int overlap_a = x->addr < y->addr + y->bytes && y->addr < x->addr + x->bytes;
            assert_false(overlap_t && overlap_a);
        }
    ir_free(p);
    free(c);
}

/* A buffer an async collective reads stays live until the wait on its token. */
static void test_ir_mem_keeps_async_collective_buffers_until_their_wait(void **state)
{
    (void)state;
    cfg *c = load("v7");
    err e;
    ir *p = ir_new(c, &e);
    const uint64_t n = 1 << 16;
    int in = ir_param_new(p, "in", ISA_DT_BF16, 1, n);
    int g = ir_tensor_new(p, "grad", ISA_DT_BF16, 1, n);
    int t = ir_tensor_new(p, "t", ISA_DT_BF16, 1, n);
    int out = ir_param_new(p, "out", ISA_DT_BF16, 1, n);
    ir_vop v = {.op = ISA_OP_V_EXP, .src = 0, .dst = 1, .dt = ISA_DT_BF16};
    int tok = ir_token_new(p);
    assert_true(ir_fusion(p, n, &in, 1, &g, 1, &v, 1) >= 0);
    assert_true(ir_collective(p, ISA_OP_ICI_ALLREDUCE, 1, 2 * n, g, g, tok) >= 0);
    assert_true(ir_fusion(p, n, &in, 1, &t, 1, &v, 1) >= 0);
    assert_true(ir_fusion(p, n, &t, 1, &out, 1, &v, 1) >= 0);
    int w = ir_wait(p, tok);
    assert_int_equal(lower_mem(p, c->hbm_bytes, &e), 0);
    assert_int_equal(ir_tensor_get(p, g)->last, w);
    assert_int_not_equal(ir_tensor_get(p, t)->addr, ir_tensor_get(p, g)->addr);
    ir_free(p);
    free(c);
}

static void test_ir_mem_pads_pitches_to_an_odd_number_of_granules(void **state)
{
    (void)state;
    cfg *c = load("v7");
    err e;
    ir *p = ir_new(c, &e);
    /* 96 heads x 128 bf16 = 24 KiB rows: a power-of-two multiple of the granule. */
    int q = ir_param_new(p, "Q", ISA_DT_BF16, 2048, 96 * 128);
    int o = ir_param_new(p, "O", ISA_DT_BF16, 2048, 96 * 128);
    ir_vop v = {.op = ISA_OP_V_EXP, .src = 0, .dst = 1, .dt = ISA_DT_BF16};
    assert_true(ir_fusion(p, 2048 * 96 * 128, &q, 1, &o, 1, &v, 1) >= 0);
    assert_int_equal(lower_mem(p, c->hbm_bytes, &e), 0);
    uint64_t G = c->hbm_interleave_bytes, pb = ir_tensor_get(p, q)->pitch * 2;
    assert_true(pb >= 96 * 128 * 2);
    assert_int_equal(pb % G, 0);
    assert_int_equal((pb / G) % 2, 1);
    ir_free(p);
    free(c);
}

static void test_ir_mem_out_of_hbm_names_the_largest_live_tensors(void **state)
{
    (void)state;
    cfg *c = load("v7");
    err e;
    ir *p = ir_new(c, &e);
    int a = ir_param_new(p, "weights", ISA_DT_BF16, 1, 1 << 20);
    int b = ir_tensor_new(p, "big_activation", ISA_DT_BF16, 1, 4 << 20);
    ir_vop v = {.op = ISA_OP_V_EXP, .src = 0, .dst = 1, .dt = ISA_DT_BF16};
    assert_true(ir_fusion(p, 1 << 20, &a, 1, &b, 1, &v, 1) >= 0);
    assert_int_equal(lower_mem(p, 4 << 20, &e), -1);
    assert_non_null(strstr(e.msg, "big_activation"));
    assert_non_null(strstr(e.msg, "weights"));
    assert_true(strstr(e.msg, "big_activation") < strstr(e.msg, "weights"));
    ir_free(p);
    free(c);
}

static void test_ir_view_outside_its_root_is_a_generator_bug(void **state)
{
    (void)state;
    cfg *c = load("v7");
    err e;
    ir *p = ir_new(c, &e);
    int a = ir_param_new(p, "a", ISA_DT_BF16, 1, 1024);
    int v = ir_view(p, a, "tail", 1024, 1, 1024, 0); /* bytes 1024..3072 of 2048 */
    ir_vop op = {.op = ISA_OP_V_EXP, .src = 0, .dst = 1, .dt = ISA_DT_BF16};
    assert_true(ir_fusion(p, 1024, &a, 1, &v, 1, &op, 1) >= 0);
    assert_int_equal(lower_mem(p, c->hbm_bytes, &e), -1);
    assert_non_null(strstr(e.msg, "outside"));
    ir_free(p);
    free(c);
}

static void test_ir_tile_lowers_conv2d_to_an_implicit_gemm(void **state)
{
    (void)state;
    cfg *c = load("v4");
    err e;
    ir *p = ir_new(c, &e);
    int in = ir_param_new(p, "in", ISA_DT_BF16, 2 * 16 * 16, 32);
    int w = ir_param_new(p, "w", ISA_DT_BF16, 3 * 3 * 32, 64);
    int out = ir_param_new(p, "out", ISA_DT_BF16, 2 * 16 * 16, 64);
    ir_region(p, "conv");
    assert_true(ir_conv2d(p, in, w, out, 2, 16, 16, 32, 64, 3, 3, 1, 1) >= 0);
    int nt = ir_ntensors(p);
    assert_int_equal(lower_tile(p, &e), 0);
    /* One GEMM reading its patches from the input: no im2col tensor, no gather. */
    assert_int_equal(ir_nops(p), 1);
    assert_int_equal(ir_ntensors(p), nt);
    const ir_op *m = ir_op_get(p, 0);
    assert_int_equal(m->code, IR_MATMUL);
    assert_string_equal(m->region, "conv");
    assert_int_equal(m->m, 2 * 16 * 16);
    assert_int_equal(m->k, 3 * 3 * 32);
    assert_int_equal(m->n, 64);
    assert_true(m->tile.a_implicit);
    assert_int_equal(m->in[0], in);
    assert_int_equal(m->tile.a_stride, 32 * 2); /* consecutive pixels: stride x C elements */
    assert_true(m->tile.vmem_bytes > 0 && m->tile.vmem_bytes <= (uint64_t)cfg_vmem_total_bytes(c));
    ir_free(p);
    free(c);
}

/* Hand-built program through tile, mem and emit: the DMAs touch only planned addresses, the
 * markers follow the regions, every wait has its signal. */
static void test_ir_emit_uses_the_plan_and_balances_semaphores(void **state)
{
    (void)state;
    cfg *c = load("v5e");
    err e;
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_ir_%d.tpt", (int)getpid());
    ir *p = ir_new(c, &e);
    int a = ir_param_new(p, "a", ISA_DT_BF16, 512, 512);
    int w = ir_param_new(p, "w", ISA_DT_BF16, 512, 512);
    int y = ir_tensor_new(p, "y", ISA_DT_BF16, 512, 512);
    int z = ir_param_new(p, "z", ISA_DT_BF16, 512, 512);
    ir_vop v = {.op = ISA_OP_V_TANH, .src = 0, .dst = 1, .dt = ISA_DT_BF16};
    int tok = ir_token_new(p);
    ir_region(p, "mm");
    assert_true(ir_matmul(p, a, w, y, 512, 512, 512) >= 0);
    ir_region(p, "comm");
    assert_true(ir_collective(p, ISA_OP_ICI_ALLREDUCE, 1, 512 * 512 * 2, y, y, tok) >= 0);
    assert_true(ir_wait(p, tok) >= 0);
    ir_region(p, "act");
    assert_true(ir_fusion(p, 512 * 512, &y, 1, &z, 1, &v, 1) >= 0);
    assert_int_equal(lower_tile(p, &e), 0);
    assert_int_equal(lower_mem(p, c->hbm_bytes, &e), 0);
    uint64_t top = ir_mem_get(p)->peak_bytes;
    if (lower_emit(p, path, "hand-built", &e))
        fail_msg("%s", e.msg);
    trace_reader *r;
    assert_int_equal(trace_reader_open(&r, path, &e), 0);
    assert_string_equal(trace_reader_header(r)->note, "hand-built");
    isa_insn in;
    int64_t sem[ISA_SEM_MAX] = {0};
    char marks[256] = "";
    uint64_t dmas = 0, colls = 0, adds = 0, ybytes = 0;
    uint64_t ya = ir_tensor_get(p, y)->addr, yend = ya + ir_tensor_get(p, y)->bytes;
    while (trace_reader_next(r, &in, &e) == 1) {
        if (in.wait) {
            sem[in.wait - 1]--;
            assert_true(sem[in.wait - 1] >= 0);
        }
        if (in.signal)
            sem[in.signal - 1]++;
        if (in.op == ISA_OP_DMA_H2V || in.op == ISA_OP_DMA_V2H) {
            dmas++;
            assert_true(in.arg[ISA_DMA_HBM] < top);
        }
        if (in.op == ISA_OP_ICI_ALLREDUCE)
            colls++;
        if (in.op == ISA_OP_V_ADD)
            adds += in.arg[ISA_V_N];
        if ((in.op == ISA_OP_DMA_H2V || in.op == ISA_OP_DMA_V2H) && in.arg[ISA_DMA_HBM] >= ya &&
            in.arg[ISA_DMA_HBM] < yend)
            ybytes += in.arg[ISA_DMA_BYTES];
        if (in.op == ISA_OP_MARK) {
            strcat(marks, in.name);
            strcat(marks, "|");
        }
    }
    trace_reader_free(r);
    unlink(path);
    for (int s = 0; s < ISA_SEM_MAX; s++)
        assert_int_equal(sem[s], 0);
    assert_string_equal(marks, "mm|comm|act|");
    assert_true(dmas > 0);
    assert_int_equal(colls, 1);
    /* The all-reduce over x (16 chips on v5e's 16x16) uses the chip: y is written by the
     * GEMM, read and written by the collective, read by the tanh (>= 4 x its bytes through
     * the DMAs), and 15/16 of its elements are added on the vector unit. */
    assert_true(ybytes >= 4ull * 512 * 512 * 2);
    assert_int_equal(adds, 512ull * 512 / 16 * 15);
    ir_free(p);
    free(c);
}

/* Pipeline stages exchange activations point to point: a send and a recv on one axis, both
 * completed by a wait on their token. */
static void test_ir_emit_point_to_point_send_and_recv(void **state)
{
    (void)state;
    cfg *c = load("v7");
    err e;
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_ir_p2p_%d.tpt", (int)getpid());
    ir *p = ir_new(c, &e);
    int a = ir_param_new(p, "act.out", ISA_DT_BF16, 256, 1024);
    int b = ir_param_new(p, "act.in", ISA_DT_BF16, 256, 1024);
    int tok = ir_token_new(p);
    ir_region(p, "stage");
    assert_true(ir_send(p, 1, +1, a, tok) >= 0);
    assert_true(ir_recv(p, 1, -1, b, tok) >= 0);
    assert_true(ir_wait(p, tok) >= 0);
    assert_int_equal(lower_tile(p, &e), 0);
    assert_int_equal(lower_mem(p, c->hbm_bytes, &e), 0);
    if (lower_emit(p, path, "p2p", &e))
        fail_msg("%s", e.msg);
    trace_reader *r;
    assert_int_equal(trace_reader_open(&r, path, &e), 0);
    isa_insn in;
    unsigned sends = 0, recvs = 0, waits = 0;
    while (trace_reader_next(r, &in, &e) == 1) {
        if (in.op == ISA_OP_ICI_SEND || in.op == ISA_OP_ICI_RECV) {
            assert_int_equal(in.arg[ISA_P2P_BYTES], 256 * 1024 * 2);
            assert_true(in.signal != 0);
            sends += in.op == ISA_OP_ICI_SEND;
            recvs += in.op == ISA_OP_ICI_RECV;
        }
        waits += in.op == ISA_OP_SYNC_WAIT;
    }
    trace_reader_free(r);
    unlink(path);
    assert_int_equal(sends, 1);
    assert_int_equal(recvs, 1);
    assert_int_equal(waits, 2);
    ir_free(p);
    free(c);
}

/* One collective of `op` on `axes`, chained `chain` (IR_CHAIN_IN or _OUT) with no partner:
 * ir_verify refuses it with a message containing want. */
static void expect_lone_chain_refused(const cfg *c, int op, unsigned axes, unsigned chain,
                                      const char *want)
{
    err e;
    ir *p = ir_new(c, &e);
    assert_non_null(p);
    int g = ir_param_new(p, "grads", ISA_DT_BF16, 1, 1024);
    int x = ir_collective(p, op, axes, 2048, g, g, IR_TOKEN_LATE);
    assert_true(ir_chain(p, x, chain) >= 0);
    assert_int_equal(ir_verify(p, &e), -1);
    if (!strstr(e.msg, want))
        fail_msg("got '%s', want '%s'", e.msg, want);
    ir_free(p);
}

/* Across slices a gradient is reduce-scattered over ICI, all-reduced over the DCN and
 * all-gathered over ICI, each step waiting for the one before through the two chain
 * semaphores (ICI -> DCN, DCN -> ICI) rather than the dispatcher: the chained producer
 * signals the chain, the consumer waits on it; the DCN all-reduce reduces over the slices
 * (half its elements added with 2 slices). Unpaired chains are generator bugs. */
static void test_ir_chained_collectives_wait_on_each_other_across_queues(void **state)
{
    (void)state;
    cfg *c = load("v7");
    err e;
    assert_int_equal(cfg_set(c, "dcn.slices", "2", "-p", &e), 0);
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_ir_dcn_%d.tpt", (int)getpid());
    ir *p = ir_new(c, &e);
    int g = ir_param_new(p, "grads", ISA_DT_BF16, 1, 1 << 20);
    ir_region(p, "comm");
    int rs = ir_collective(p, ISA_OP_ICI_REDUCESCATTER, 1, 2 << 20, g, g, IR_TOKEN_LATE);
    int d = ir_collective(p, ISA_OP_DCN_ALLREDUCE, 0, (2 << 20) / 4, g, g, IR_TOKEN_LATE);
    int ag = ir_collective(p, ISA_OP_ICI_ALLGATHER, 1, 2 << 20, g, g, IR_TOKEN_LATE);
    assert_true(ir_chain(p, rs, IR_CHAIN_OUT) >= 0 && ir_chain(p, d, IR_CHAIN_IN) >= 0 &&
                ir_chain(p, d, IR_CHAIN_OUT) >= 0 && ir_chain(p, ag, IR_CHAIN_IN) >= 0);
    assert_true(ir_wait(p, IR_TOKEN_LATE) >= 0);
    assert_int_equal(ir_verify(p, &e), 0);
    assert_int_equal(lower_tile(p, &e), 0);
    assert_int_equal(lower_mem(p, c->hbm_bytes, &e), 0);
    if (lower_emit(p, path, "chain", &e))
        fail_msg("%s", e.msg);
    trace_reader *r;
    assert_int_equal(trace_reader_open(&r, path, &e), 0);
    isa_insn in;
    int64_t sem[ISA_SEM_MAX] = {0};
    unsigned seen = 0, i2n = 0, n2i = 0;
    uint64_t adds = 0;
    while (trace_reader_next(r, &in, &e) == 1) {
        if (in.wait) {
            sem[in.wait - 1]--;
            assert_true(sem[in.wait - 1] >= 0); /* never waits before its producer */
        }
        if (in.signal)
            sem[in.signal - 1]++;
        if (in.op == ISA_OP_ICI_REDUCESCATTER) {
            assert_int_equal(seen++, 0);
            i2n = in.signal;
            assert_int_equal(in.wait, 0);
        } else if (in.op == ISA_OP_DCN_ALLREDUCE) {
            assert_int_equal(seen++, 1);
            assert_int_equal(in.wait, i2n);
            assert_int_equal(in.arg[ISA_DCN_BYTES], (2 << 20) / 4);
            n2i = in.signal;
            assert_true(n2i != 0 && n2i != i2n);
        } else if (in.op == ISA_OP_ICI_ALLGATHER) {
            assert_int_equal(seen++, 2);
            assert_int_equal(in.wait, n2i);
        } else if (in.op == ISA_OP_V_ADD) {
            adds += in.arg[ISA_V_N];
        }
    }
    trace_reader_free(r);
    unlink(path);
    assert_int_equal(seen, 3);
    for (int s = 0; s < ISA_SEM_MAX; s++)
        assert_int_equal(sem[s], 0);
    /* reduce-scatter over x (4 chips): 3/4 of 1 Mi elements; DCN over 2 slices: 1/2 of its
     * 256 Ki elements */
    assert_int_equal(adds, (1u << 20) / 4 * 3 + (1u << 18) / 2);
    ir_free(p);
    /* a consumer without a producer, and a producer nobody waits for */
    expect_lone_chain_refused(c, ISA_OP_DCN_ALLREDUCE, 0, IR_CHAIN_IN,
                              "chained to no earlier ICI collective");
    expect_lone_chain_refused(c, ISA_OP_ICI_REDUCESCATTER, 1, IR_CHAIN_OUT, "nothing waiting");
    free(c);
}

static void test_ir_emit_without_tiling_is_refused(void **state)
{
    (void)state;
    cfg *c = load("v7");
    err e;
    ir *p = ir_new(c, &e);
    int in = ir_param_new(p, "in", ISA_DT_BF16, 64, 8);
    int w = ir_param_new(p, "w", ISA_DT_BF16, 72, 8);
    int out = ir_param_new(p, "out", ISA_DT_BF16, 64, 8);
    assert_true(ir_conv2d(p, in, w, out, 1, 8, 8, 8, 8, 3, 3, 1, 1) >= 0);
    assert_int_equal(lower_mem(p, c->hbm_bytes, &e), 0);
    assert_int_equal(lower_emit(p, "/tmp/test_ir_never.tpt", "", &e), -1);
    assert_non_null(strstr(e.msg, "lower_tile"));
    assert_int_equal(access("/tmp/test_ir_never.tpt", F_OK), -1);
    ir_free(p);
    free(c);
}

int main(void)
{
    setenv("TPUSIM_PRESETS", TPUSIM_SOURCE_DIR "/configs", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ir_builders_reject_bad_ids_and_keep_the_first_error),
        cmocka_unit_test(test_ir_verify_rejects_a_matmul_larger_than_its_operands),
        cmocka_unit_test(test_ir_chained_collectives_wait_on_each_other_across_queues),
        cmocka_unit_test(test_ir_mem_reuses_the_space_of_dead_tensors),
        cmocka_unit_test(test_ir_mem_keeps_async_collective_buffers_until_their_wait),
        cmocka_unit_test(test_ir_mem_pads_pitches_to_an_odd_number_of_granules),
        cmocka_unit_test(test_ir_mem_out_of_hbm_names_the_largest_live_tensors),
        cmocka_unit_test(test_ir_view_outside_its_root_is_a_generator_bug),
        cmocka_unit_test(test_ir_tile_lowers_conv2d_to_an_implicit_gemm),
        cmocka_unit_test(test_ir_emit_uses_the_plan_and_balances_semaphores),
        cmocka_unit_test(test_ir_emit_point_to_point_send_and_recv),
        cmocka_unit_test(test_ir_emit_without_tiling_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
