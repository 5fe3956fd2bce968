/* lower_tile.c - the tiling and expansion pass: rewrites IR ops the machine has no kernel
 * for into ones it has (a convolution becomes an im2col gather into a patch tensor and a
 * GEMM on it) and chooses the VMEM tiling of every GEMM (op->tile), which lower_emit then
 * follows. The GEMM search and its VMEM formula are below and in docs/generators.md. */
#include <stdio.h>
#include <string.h>

#include "gen.h"
#include "lower.h"

#define TILE_VMEM_ALIGN 512

static uint64_t cdiv(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

static uint64_t umin(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t align_up(uint64_t a, uint64_t al)
{
    return (a + al - 1) / al * al;
}

/* VMEM of one buffer set (double buffering doubles it). */
static uint64_t plan_bytes(uint64_t mt, uint64_t kc, uint64_t ng, isa_dtype dt, isa_dtype odt)
{
    uint64_t b = gen_dt_bytes(dt, mt * kc) + gen_dt_bytes(dt, kc * ng) + mt * ng * 4;
    if (odt != ISA_DT_FP32)
        b += gen_dt_bytes(odt, mt * ng);
    return align_up(b, 4 * TILE_VMEM_ALIGN);
}

int lower_gemm_tile(const cfg *c, uint64_t vmem, uint64_t m, uint64_t n, uint64_t k, isa_dtype dt,
                    isa_dtype out_dt, ir_gemm_tile *p, err *e)
{
    const uint64_t R = c->mxu_rows, C = c->mxu_cols, P = cfg_mxu_total(c);
    const uint64_t NT = cdiv(n, C), KT = cdiv(k, R);
    /* Largest row block first (weight reuse and arithmetic intensity grow with it), then
     * the widest column group up to one tile per MXU, then the longest K step. */
    static const uint64_t mts[] = {2048, 1024, 512, 256, 128, 64, 32, 16, 8, 1};
    for (unsigned i = 0; i < sizeof mts / sizeof mts[0]; i++) {
        uint64_t mt = umin(mts[i], m);
        if (i > 0 && mt >= umin(mts[i - 1], m))
            continue; /* same as the previous candidate */
        for (uint64_t ns = umin(NT, P); ns >= 1; ns /= 2) {
            for (uint64_t kts = umin(KT, 4); kts >= 1; kts /= 2) {
                uint64_t kc = umin(k, kts * R), ng = umin(n, ns * C);
                uint64_t b = plan_bytes(mt, kc, ng, dt, out_dt);
                if (2 * b > vmem)
                    continue;
                p->mt = mt;
                p->kc = kc;
                p->ng = ng;
                p->nsub = ns;
                /* Fewer column tiles than MXUs: split the row block too, keeping at least
                 * R rows per matmul so a weight load hides behind the stream. */
                uint64_t ms = ns < P ? P / ns : 1;
                uint64_t mmax = mt / R ? mt / R : 1;
                p->msub = ms < mmax ? ms : mmax;
                p->vmem_bytes = 2 * b;
                return 0;
            }
        }
    }
    return err_set(e,
                   "gen: gemm %llux%llux%llu: even an 1-row block with one %llux%llu tile does "
                   "not fit in %llu bytes of VMEM",
                   (unsigned long long)m, (unsigned long long)n, (unsigned long long)k,
                   (unsigned long long)R, (unsigned long long)C, (unsigned long long)vmem);
}

int gen_gemm_plan_for(const cfg *c, uint64_t vmem, uint64_t m, uint64_t n, uint64_t k, isa_dtype dt,
                      isa_dtype out_dt, gen_gemm_plan *p, err *e)
{
    return lower_gemm_tile(c, vmem, m, n, k, dt, out_dt, p, e);
}

/* conv2d -> im2col + GEMM: each output pixel's patch row gathers kw x C contiguous NHWC
 * elements per filter row into a [N*P*Q, R*S*C] tensor, then patches x weights. */
static int expand_conv(ir *p, int i, err *e)
{
    ir_op o = *ir_op_get(p, i);
    uint64_t P = (o.ch + 2 * o.pad - o.kh) / o.stride + 1;
    uint64_t Q = (o.cw + 2 * o.pad - o.kw) / o.stride + 1;
    uint64_t M = o.cn * P * Q, K = o.cc * o.kh * o.kw, N = o.ck;
    isa_dtype dt = o.dt;
    int patches = ir_tensor_new(p, "im2col", dt, M, K);
    if (patches < 0)
        return ir_error(p, e);
    uint64_t row = gen_dt_bytes(dt, o.kw * o.cc), stride = gen_dt_bytes(dt, o.cw * o.cc);
    if (stride < row)
        stride = row;
    ir_op gth = {.code = IR_GATHER, .nin = 1, .nout = 1, .dt = dt, .batch = 1, .token = -1};
    gth.in[0] = o.in[0];
    gth.out[0] = patches;
    gth.block = row;
    gth.gstride = stride;
    snprintf(gth.region, sizeof gth.region, "%.40s/im2col", o.region);
    ir_op mm = {.code = IR_MATMUL, .nin = 2, .nout = 1, .dt = dt, .batch = 1, .token = -1};
    mm.in[0] = patches;
    mm.in[1] = o.in[1];
    mm.out[0] = o.out[0];
    mm.m = M, mm.n = N, mm.k = K;
    snprintf(mm.region, sizeof mm.region, "%.40s/gemm", o.region);
    *ir_op_at(p, i) = mm;
    return ir_insert(p, i, &gth) < 0 ? ir_error(p, e) : 0;
}

int lower_tile(ir *p, err *e)
{
    const cfg *c = ir_cfg(p);
    uint64_t vmem = (uint64_t)cfg_vmem_total_bytes(c);
    if (ir_verify(p, e))
        return -1;
    for (int i = 0; i < ir_nops(p); i++)
        if (ir_op_get(p, i)->code == IR_CONV2D && expand_conv(p, i, e))
            return -1;
    for (int i = 0; i < ir_nops(p); i++) {
        ir_op *o = ir_op_at(p, i);
        if (o->code != IR_MATMUL)
            continue;
        isa_dtype odt = ir_tensor_get(p, o->out[0])->dt;
        if (lower_gemm_tile(c, vmem, o->m, o->n, o->k, o->dt, odt, &o->tile, e))
            return -1;
    }
    return 0;
}
