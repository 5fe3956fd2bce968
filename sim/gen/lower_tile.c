/* lower_tile.c - the tiling and expansion pass: rewrites IR ops the machine has no kernel
 * for into ones it has (a convolution becomes an implicit GEMM reading its patches
 * straight from the input) and chooses the VMEM tiling of every GEMM (op->tile), which lower_emit
 * then follows. The GEMM search and its VMEM formula are below and in docs/generators.md. */
#include <stdio.h>
#include <string.h>

#include "gen.h"
#include "lower.h"
#include "umath.h"

#define TILE_VMEM_ALIGN 512

/* VMEM of a plan: two sets (double buffering) of an A buffer (one mt x kc chunk, or the
 * whole mt x K panel when A stays resident), a B buffer (kc x ng, or the K x ng panel), the
 * fp32 accumulator block and, for a narrower output, its cast copy; and nbuf - 2 more
 * buffers of each streamed operand (deeper prefetch). */
static uint64_t plan_vmem(const ir_gemm_tile *t, uint64_t k, isa_dtype dt, isa_dtype odt,
                          unsigned nextra)
{
    uint64_t b = gen_dt_bytes(dt, t->mt * (t->a_resident ? k : t->kc)) +
                 gen_dt_bytes(dt, (t->w_resident ? k : t->kc) * t->ng) +
                 (1 + (uint64_t)nextra) * t->mt * t->ng * 4;
    if (odt != ISA_DT_FP32)
        b += gen_dt_bytes(odt, t->mt * t->ng);
    uint64_t s = (t->a_resident ? 0 : gen_dt_bytes(dt, t->mt * t->kc)) +
                 (t->w_resident ? 0 : gen_dt_bytes(dt, t->kc * t->ng));
    uint64_t nb = t->nbuf ? t->nbuf : 2;
    return 2 * um_align_up(b, 4 * TILE_VMEM_ALIGN) + (nb - 2) * um_align_up(s, 2 * TILE_VMEM_ALIGN);
}

/* HBM bytes a plan moves: A is read once per column group unless it stays resident (the
 * m-outer order), B once per row block unless it stays resident (the n-outer order), and
 * C is written once. */
uint64_t lower_gemm_traffic(const ir_gemm_tile *t, uint64_t m, uint64_t n, uint64_t k, isa_dtype dt,
                            isa_dtype odt)
{
    uint64_t nmb = um_cdiv(m, t->mt), nng = um_cdiv(n, t->ng);
    uint64_t A = gen_dt_bytes(dt, m * k), Bb = gen_dt_bytes(dt, k * n);
    return (t->a_resident ? A : nng * A) + (t->w_resident ? Bb : nmb * Bb) +
           gen_dt_bytes(odt, m * n);
}

/* Per-step figures of a plan (seconds):
 *   comp   the MXU time of a step (the peak time stretched as below)
 *   mem    its HBM time at peak bandwidth: the plan's traffic over its steps, plus one
 *          dma.latency_ns (each step's loads pay it first)
 *   load   the time the largest step's loads take on their own: dma.latency_ns plus an A
 *          chunk and a B chunk at peak bandwidth
 *   drain  the fill/drain skew of a step's last matmul, (R + C) cycles: the DONE fence
 *          that frees the step's buffers fires when its result has drained
 *          (docs/models-compute.md)
 *   ldw    one weight load, R / mxu.weight_load_rows cycles: a step's first weight tile
 *          cannot be loaded into the MXU before its chunk has arrived */
typedef struct plan_step {
    double comp, mem, load, drain, ldw, steps;
} plan_step;

static plan_step plan_steps(const cfg *c, const ir_gemm_tile *t, uint64_t m, uint64_t n, uint64_t k,
                            isa_dtype dt, isa_dtype odt)
{
    const uint64_t P = cfg_mxu_total(c);
    plan_step ps;
    double bw = cfg_hbm_peak_bps(c), units = (double)(t->nsub * t->msub);
    double slots = units < (double)P ? (double)P : (double)(um_cdiv(t->nsub * t->msub, P) * P);
    double comp = 2.0 * (double)m * (double)n * (double)k / cfg_peak_flops(c, dt) * slots / units;
    double rows = (double)um_cdiv(t->mt, t->msub);
    double load = (double)um_cdiv(c->mxu_rows, c->mxu_weight_load_rows);
    double cyc = cfg_cycle_ps(c) * 1e-12;
    if (rows < load) {
        comp *= load / rows;
        rows = load;
    }
    /* Per matmul about (R + C) / 16 cycles of the fill/drain skew stay exposed in the MXU
     * model (measured on v7 8192^3: 98.9% of peak MACs at 2048 rows per matmul, 97.2% at
     * 1024, 94.6% at 768), so longer streams are worth a little traffic. */
    comp *= (rows + (double)(c->mxu_rows + c->mxu_cols) / 16) / rows;
    ps.steps = (double)(um_cdiv(m, t->mt) * um_cdiv(n, t->ng) * um_cdiv(k, t->kc));
    ps.comp = comp / ps.steps;
    ps.mem =
        (double)lower_gemm_traffic(t, m, n, k, dt, odt) / bw / ps.steps + c->dma_latency_ns * 1e-9;
    ps.load =
        (double)gen_dt_bytes(dt, t->mt * t->kc + t->kc * t->ng) / bw + c->dma_latency_ns * 1e-9;
    ps.drain = (double)(c->mxu_rows + c->mxu_cols) * cyc;
    ps.ldw = load * cyc;
    return ps;
}

/* The software pipeline (gen_emit.c, gen_gemm) with B operand buffers issues step s's
 * loads when step s - B finishes (its DONE fence), and step s's matmuls start once they
 * have arrived and its first weight tile is loaded, so with steady period p
 *   B p >= comp + drain + load + ldw                                      (plan_step)
 * and the period is max(comp, mem, (comp + drain + load + ldw) / B). Two buffers serialise
 * loads and compute whenever a step's loads take about as long as its matmuls (427 x 28672
 * x 4096 on one v7 device: 157 us, MXUs and DMA each busy about 70% of the time). */
static double plan_period(const plan_step *ps, unsigned nbuf)
{
    double p = ps->comp > ps->mem ? ps->comp : ps->mem;
    double pipe = (ps->comp + ps->drain + ps->load + ps->ldw) / (double)(nbuf ? nbuf : 2);
    return pipe > p ? pipe : p;
}

/* Operand buffers a plan asks for: the fewest B (2 or 3) whose loads arrive a whole step
 * before they are needed,
 *   (B - 1) max(comp, mem) >= comp + drain + load + ldw,
 * so the write-back, the cast's VMEM share and HBM contention, which the estimate leaves
 * out, do not stall the MXUs (measured on v7, 3 buffers instead of 2: 512 x 8192 x 8192
 * 83.7 -> 68.0 us, 2048 x 8192 x 8192 255.6 -> 242.6 us). At most 3: a fourth adds
 * concurrent DMAs whose VMEM shares slow the matmuls more than it gains (427 x 28672 x
 * 4096: 110.0 us with 3, 111.2 with 4). */
static unsigned plan_nbuf(const plan_step *ps)
{
    double p = ps->comp > ps->mem ? ps->comp : ps->mem;
    unsigned b = 2;
    while (b < IR_GEMM_NBUF_MAX && (double)(b - 1) * p < ps->comp + ps->drain + ps->load + ps->ldw)
        b++;
    return b;
}

/* Estimated time of a plan (seconds): the pipeline's period (plan_period) times the steps,
 * plus what cannot overlap: the first step's loads and the last block's write-back. The
 * MXU time is the peak time stretched when the work units of a step do not divide evenly
 * over the MXUs, and when a matmul streams fewer rows than a weight load takes
 * (R / mxu.weight_load_rows cycles; docs/models-compute.md), which it cannot hide. */
static double plan_time(const cfg *c, const ir_gemm_tile *t, uint64_t m, uint64_t n, uint64_t k,
                        isa_dtype dt, isa_dtype odt)
{
    plan_step ps = plan_steps(c, t, m, n, k, dt, odt);
    /* Exposed: the first step's loads (latency included) and first weight load before any
     * matmul; after the last, its drain and the last block's write-back DMA. */
    double tail = ps.load + ps.ldw + ps.drain + c->dma_latency_ns * 1e-9 +
                  (double)gen_dt_bytes(odt, t->mt * t->ng) / cfg_hbm_peak_bps(c);
    return ps.steps * plan_period(&ps, t->nbuf) + tail;
}

/* The GEMM tiling search. Candidates: row blocks mt (all of M, or 8192 ... 1 rows), column
 * groups of ns tiles (all columns, multiples of the MXU count P, or P/2, P/4, ...), K steps
 * of 1, 2, 4, 8 or 16 tiles, and three schedules: stream both operands, keep the A panel resident
 * (m-outer), keep the B panel resident (n-outer). A work unit is a (row sub-block, column
 * tile) pair; msub row sub-blocks make the units of a step a multiple of P when rows allow
 * (each matmul keeps at least R rows, so a weight load hides behind the stream). Among the
 * plans whose double-buffered working set fits VMEM, the one with the lowest estimated
 * time (plan_time) wins; ties go to less HBM traffic, then fewer steps. */
int lower_gemm_tile(const cfg *c, uint64_t vmem, uint64_t m, uint64_t n, uint64_t k, isa_dtype dt,
                    isa_dtype out_dt, ir_gemm_tile *p, err *e)
{
    return lower_gemm_tile_epi(c, vmem, m, n, k, dt, out_dt, 0, p, e);
}

int lower_gemm_tile_epi(const cfg *c, uint64_t vmem, uint64_t m, uint64_t n, uint64_t k,
                        isa_dtype dt, isa_dtype out_dt, unsigned nextra, ir_gemm_tile *p, err *e)
{
    const uint64_t R = c->mxu_rows, C = c->mxu_cols, P = cfg_mxu_total(c);
    const uint64_t NT = um_cdiv(n, C), KT = um_cdiv(k, R);
    static const uint64_t mts[] = {0,   8192, 6144, 4096, 3072, 2048, 1536, 1024, 768,
                                   512, 384,  256,  128,  64,   32,   16,   8,    1};
    int found = 0;
    double best_t = 0;
    uint64_t best_traffic = 0, best_steps = 0, best_rows = 0;
    uint64_t nss[80], nns = 0;
    nss[nns++] = NT;
    for (uint64_t j = NT / P; j >= 1 && nns < 64; j--)
        if (j * P != NT)
            nss[nns++] = j * P;
    for (uint64_t q = P / 2; q >= 1 && nns < 80; q /= 2)
        if (q < NT)
            nss[nns++] = q;
    for (unsigned i = 0; i < sizeof mts / sizeof mts[0]; i++) {
        uint64_t mt = mts[i] ? um_min(mts[i], m) : m;
        if (i > 0 && mts[i] >= m)
            continue; /* same as "all of M" */
        for (unsigned si = 0; si < nns; si++) {
            uint64_t ns = nss[si];
            if (ns > NT)
                continue;
            uint64_t mmax = mt / R ? mt / R : 1;
            uint64_t ms = ns < P ? P / ns : P / um_gcd(ns, P);
            if (ms > mmax)
                ms = ns < P ? mmax : 1;
            for (uint64_t kts = um_min(KT, 16); kts >= 1; kts /= 2) {
                for (int sched = 0; sched < 3; sched++) {
                    ir_gemm_tile t = {.mt = mt,
                                      .kc = um_min(k, kts * R),
                                      .ng = um_min(n, ns * C),
                                      .nsub = ns,
                                      .msub = ms,
                                      .a_resident = sched == 1,
                                      .w_resident = sched == 2,
                                      .m_outer = sched == 1};
                    uint64_t nmb = um_cdiv(m, mt), nng = um_cdiv(n, t.ng);
                    if ((sched == 1 && (nng == 1 || t.kc == k)) ||
                        (sched == 2 && (nmb == 1 || t.kc == k)))
                        continue; /* resident or not, the same traffic */
                    t.nbuf = 2;
                    t.vmem_bytes = plan_vmem(&t, k, dt, out_dt, nextra);
                    if (t.vmem_bytes > vmem)
                        continue;
                    /* Deeper buffering where the pipeline needs it and VMEM allows. */
                    plan_step ps = plan_steps(c, &t, m, n, k, dt, out_dt);
                    for (unsigned nb = plan_nbuf(&ps); nb > 2; nb--) {
                        ir_gemm_tile d = t;
                        d.nbuf = nb;
                        d.vmem_bytes = plan_vmem(&d, k, dt, out_dt, nextra);
                        if (d.vmem_bytes <= vmem) {
                            t = d;
                            break;
                        }
                    }
                    double tt = plan_time(c, &t, m, n, k, dt, out_dt);
                    uint64_t tr = lower_gemm_traffic(&t, m, n, k, dt, out_dt);
                    uint64_t steps = nmb * nng * um_cdiv(k, t.kc);
                    /* Within 1% of the best time, less traffic wins (the estimate ignores
                     * DMA contention, which more traffic only adds to), then longer MXU
                     * streams, then fewer steps. */
                    uint64_t rows = um_cdiv(t.mt, t.msub);
                    int near = found && tt <= best_t * 1.01 && best_t <= tt * 1.01;
                    int tie_rows = rows > best_rows || (rows == best_rows && steps < best_steps);
                    int better = !found || (!near && tt < best_t) ||
                                 (near && (tr < best_traffic || (tr == best_traffic && tie_rows)));
                    if (better) {
                        *p = t;
                        best_t = tt;
                        best_traffic = tr;
                        best_steps = steps;
                        best_rows = rows;
                        found = 1;
                    }
                }
            }
        }
    }
    if (found) {
        /* Memory-bound (HBM time above the MXU time at peak) with more matmul instructions
         * per MXU per step than its queue holds (core.queue_depth): the dispatcher would
         * block on a full MXU queue before reaching the next step's loads, so the emitter
         * issues each step's loads before its matmuls. Otherwise the matmuls go first, so the
         * MXU queues never drain between steps. */
        double comp = 2.0 * (double)m * (double)n * (double)k / cfg_peak_flops(c, dt);
        double mem = (double)lower_gemm_traffic(p, m, n, k, dt, out_dt) / cfg_hbm_peak_bps(c);
        uint64_t per_mxu = 2 * um_cdiv(p->nsub * p->msub, P) * um_cdiv(p->kc, R);
        p->loads_first = mem > comp && per_mxu > c->core_queue_depth;
        return 0;
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

/* conv2d -> an implicit GEMM, as a TPU compiler convolves: out[N*P*Q, K] = patches[N*P*Q,
 * R*S*C] x filter[R*S*C, K] where the patch matrix is never built: each step's A chunk is
 * read straight from the NHWC input, one run per output pixel (consecutive pixels
 * stride x C elements apart). The matmul keeps the convolution's shapes in its attributes. */
static void expand_conv(ir *p, int i)
{
    ir_op *o = ir_op_at(p, i);
    uint64_t P = (o->ch + 2 * o->pad - o->kh) / o->stride + 1;
    uint64_t Q = (o->cw + 2 * o->pad - o->kw) / o->stride + 1;
    o->code = IR_MATMUL;
    o->m = o->cn * P * Q;
    o->k = o->cc * o->kh * o->kw;
    o->n = o->ck;
    o->batch = 1;
    o->tile.a_implicit = 1;
}

int lower_tile(ir *p, err *e)
{
    const cfg *c = ir_cfg(p);
    uint64_t vmem = (uint64_t)cfg_vmem_total_bytes(c);
    if (ir_verify(p, e))
        return -1;
    for (int i = 0; i < ir_nops(p); i++)
        if (ir_op_get(p, i)->code == IR_CONV2D)
            expand_conv(p, i);
    for (int i = 0; i < ir_nops(p); i++) {
        ir_op *o = ir_op_at(p, i);
        if (o->code != IR_MATMUL)
            continue;
        isa_dtype odt = ir_tensor_get(p, o->out[0])->dt;
        int implicit = o->tile.a_implicit;
        if (lower_gemm_tile_epi(c, vmem, o->m, o->n, o->k, o->dt, odt,
                                ir_epilogue_reads_buffer(o) ? 1 : 0, &o->tile, e))
            return -1;
        if (implicit) {
            uint64_t run = gen_dt_bytes(o->dt, o->tile.kc < o->cc ? o->tile.kc : o->cc);
            o->tile.a_implicit = 1;
            o->tile.a_block = run;
            o->tile.a_stride = gen_dt_bytes(o->dt, o->stride * o->cc);
            if (o->tile.a_stride < run)
                o->tile.a_stride = run;
            o->tile.a_resident = 0; /* the patch panel would be K x mt: stream it */
            o->tile.m_outer = 0;
        }
        /* Parameters are laid out for their (forward) consumer, as XLA assigns parameter
         * layouts: a weight read in its stored shape keeps each kc x ng chunk contiguous, so
         * a memory-bound GEMM streams it in long runs. Transposed reads (backward) see the
         * row-major approximation. */
        const ir_tensor *w = ir_tensor_get(p, o->in[1]);
        o->tile.b_blocked = o->batch == 1 && ir_tensor_get(p, ir_root(p, o->in[1]))->persistent &&
                            w->rows == o->k && w->cols == o->n;
    }
    return 0;
}
