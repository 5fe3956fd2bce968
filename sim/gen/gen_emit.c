/* gen_emit.c - the generators' emission core: trace writer wrapper, semaphore pool and
 * fences, HBM/VMEM allocators, and the shared GEMM tiler and streamed vector pass.
 *
 * Synchronisation follows a TPU scalar core: a DMA completion is awaited by the dispatcher
 * (sync.wait on a fence the DMAs signal), buffers are freed by a fence the last reader on
 * each MXU signals, and in-order producer/consumer pairs between two unit queues (cast then
 * write-back DMA, chained vector ops) use dedicated semaphores. Every wait is emitted after
 * the instructions that signal it, so no wait can starve. Assumptions: VMEM is one flat
 * address space of cores x vmem.bytes; tiles are laid out tile-major in VMEM by the DMAs. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

#define GEN_HBM_ALIGN  4096
#define GEN_VMEM_ALIGN 512

/* Dedicated chains (semaphores below GEN_SEM_FIXED). */
enum { SEM_V2D = 0, SEM_V2V = 1 };

struct gen {
    const cfg *c;
    trace_writer *w;
    err e;
    int failed;
    uint64_t hbm_next, hbm_cap;
    uint64_t hbm_top[3], hbm_nallocs; /* the largest HBM allocations, for the capacity error */
    uint64_t vmem_next, vmem_cap;
    int pool[ISA_SEM_MAX];
    unsigned npool;
    gen_fence late; /* collectives nobody waits on before the end (gradient reductions) */
    /* vector chain: one op held back until we know whether another follows */
    int vheld;
    isa_insn vhold;
};

uint64_t gen_dt_bytes(isa_dtype dt, uint64_t n)
{
    return (n * isa_dtype_bits(dt) + 7) / 8;
}

static uint64_t cdiv(uint64_t a, uint64_t b);

uint64_t gen_pitch(const cfg *c, uint64_t cols, isa_dtype dt)
{
    uint64_t G = c->hbm_interleave_bytes, eb = gen_dt_bytes(dt, 8) / 8;
    uint64_t bytes = gen_dt_bytes(dt, cols);
    if (!eb || bytes < G || G % eb)
        return cols;
    uint64_t gr = cdiv(bytes, G);
    if (gr % 2 == 0)
        gr++;
    return gr * G / eb;
}

static uint64_t cdiv(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

static uint64_t umin(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t umax(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static uint64_t align_up(uint64_t a, uint64_t al)
{
    return (a + al - 1) / al * al;
}

gen *gen_new(const cfg *c, const char *path, const char *note, err *e)
{
    gen *g = calloc(1, sizeof *g);
    if (!g) {
        err_setk(e, ERR_NOMEM, "gen: out of memory");
        return NULL;
    }
    g->c = c;
    if (trace_writer_open(&g->w, path, note, e)) {
        free(g);
        return NULL;
    }
    g->hbm_cap = c->hbm_bytes;
    g->vmem_cap = (uint64_t)cfg_vmem_total_bytes(c);
    for (int s = ISA_SEM_MAX - 1; s >= GEN_SEM_FIXED; s--)
        g->pool[g->npool++] = s;
    g->late.sem = -1;
    return g;
}

void gen_free(gen *g)
{
    if (!g)
        return;
    if (g->w)
        trace_writer_abort(g->w);
    free(g);
}

err *gen_err(gen *g)
{
    return &g->e;
}

const cfg *gen_cfg(const gen *g)
{
    return g->c;
}

static int gen_flush_vec(gen *g);

int gen_put(gen *g, const isa_insn *in)
{
    if (g->failed)
        return -1;
    if (trace_writer_put(g->w, in, &g->e)) {
        g->failed = 1;
        return -1;
    }
    return 0;
}

static int gen_fail(gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(&g->e, fmt, ap);
    va_end(ap);
    g->failed = 1;
    return -1;
}

int gen_mark(gen *g, const char *fmt, ...)
{
    isa_insn in = {.op = ISA_OP_MARK};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in.name, sizeof in.name, fmt, ap);
    va_end(ap);
    in.arg[0] = strlen(in.name);
    return gen_flush_vec(g) || gen_put(g, &in);
}

gen_fence gen_fence_new(gen *g)
{
    gen_fence f = {.sem = -1, .count = 0};
    if (g->npool == 0) {
        gen_fail(g, "gen: semaphore pool exhausted (generator bug)");
        return f;
    }
    f.sem = g->pool[--g->npool];
    return f;
}

unsigned gen_fence_sig(gen *g, gen_fence *f)
{
    if (f->sem < 0)
        *f = gen_fence_new(g);
    if (f->sem < 0)
        return 0;
    f->count++;
    return (unsigned)f->sem + 1;
}

int gen_fence_wait(gen *g, gen_fence *f)
{
    if (gen_flush_vec(g))
        return -1;
    if (f->sem < 0)
        return 0;
    isa_insn in = {.op = ISA_OP_SYNC_WAIT, .wait = (uint16_t)(f->sem + 1)};
    for (unsigned i = 0; i < f->count; i++)
        if (gen_put(g, &in))
            return -1;
    g->pool[g->npool++] = f->sem;
    f->sem = -1;
    f->count = 0;
    return 0;
}

int gen_dma(gen *g, int to_hbm, uint64_t hbm, uint64_t vmem, uint64_t bytes, uint64_t block,
            uint64_t stride, unsigned wait, unsigned signal)
{
    if (gen_flush_vec(g))
        return -1;
    if (block && (block == stride || block >= bytes))
        block = stride = 0; /* contiguous after all */
    uint64_t extent = block ? (cdiv(bytes, block) - 1) * stride + block : bytes;
    if (hbm + extent > g->hbm_cap || vmem + bytes > g->vmem_cap)
        return gen_fail(g, "gen: DMA outside memory (generator bug)");
    isa_insn in = {.op = to_hbm ? ISA_OP_DMA_V2H : ISA_OP_DMA_H2V,
                   .wait = (uint16_t)wait,
                   .signal = (uint16_t)signal};
    in.arg[ISA_DMA_HBM] = hbm;
    in.arg[ISA_DMA_VMEM] = vmem;
    in.arg[ISA_DMA_BYTES] = bytes;
    in.arg[ISA_DMA_STRIDE] = stride;
    in.arg[ISA_DMA_BLOCK] = block;
    return gen_put(g, &in);
}

static isa_insn vec_insn(int op, uint64_t src, uint64_t dst, uint64_t n, isa_dtype dt,
                         uint64_t extra)
{
    isa_insn in = {.op = (uint16_t)op};
    in.arg[ISA_V_SRC] = src;
    in.arg[ISA_V_DST] = dst;
    in.arg[ISA_V_N] = n;
    in.arg[ISA_V_DTYPE] = dt;
    if (op == ISA_OP_V_CAST || op == ISA_OP_V_REDUCE || op == ISA_OP_V_TRANSPOSE)
        in.arg[ISA_V_EXTRA] = extra;
    return in;
}

int gen_vec(gen *g, int op, uint64_t src, uint64_t dst, uint64_t n, isa_dtype dt, uint64_t extra,
            unsigned wait, unsigned signal)
{
    if (gen_flush_vec(g))
        return -1;
    isa_insn in = vec_insn(op, src, dst, n, dt, extra);
    in.wait = (uint16_t)wait;
    in.signal = (uint16_t)signal;
    return gen_put(g, &in);
}

/* Vector chains: consecutive ops with a data dependence. The unit issues in order but its
 * pipes overlap, so each op after the first waits on its predecessor through SEM_V2V; the
 * held op learns whether it must signal the chain only when the next op arrives. */
static int gen_flush_vec(gen *g)
{
    if (!g->vheld)
        return 0;
    g->vheld = 0;
    return gen_put(g, &g->vhold);
}

static int vchain(gen *g, int first, unsigned wait, int op, uint64_t src, uint64_t dst, uint64_t n,
                  isa_dtype dt, uint64_t extra)
{
    if (!first && g->vheld) {
        g->vhold.signal = SEM_V2V + 1;
        if (gen_put(g, &g->vhold))
            return -1;
        g->vheld = 0;
        wait = SEM_V2V + 1;
    } else if (gen_flush_vec(g)) {
        return -1;
    }
    g->vhold = vec_insn(op, src, dst, n, dt, extra);
    g->vhold.wait = (uint16_t)wait;
    g->vheld = 1;
    return 0;
}

/* End a chain: the held last op signals `signal`. */
static int vchain_end(gen *g, unsigned signal)
{
    if (!g->vheld)
        return 0;
    g->vhold.signal = (uint16_t)signal;
    return gen_flush_vec(g);
}

int gen_coll(gen *g, int op, unsigned axes, uint64_t bytes, isa_dtype dt, gen_fence *f)
{
    if (gen_flush_vec(g))
        return -1;
    if (!axes || !bytes)
        return 0;
    isa_insn in = {.op = (uint16_t)op};
    in.arg[ISA_COLL_AXES] = axes;
    in.arg[ISA_COLL_BYTES] = bytes;
    in.arg[ISA_COLL_DTYPE] = dt;
    in.signal = (uint16_t)gen_fence_sig(g, f ? f : &g->late);
    return gen_put(g, &in);
}

int gen_drain(gen *g)
{
    return gen_fence_wait(g, &g->late);
}

int gen_wait_late(gen *g)
{
    return gen_fence_wait(g, &g->late);
}

int gen_gather(gen *g, uint64_t src, uint64_t src_bytes, uint64_t dst, uint64_t bytes,
               uint64_t block, uint64_t stride)
{
    if (g->failed)
        return -1;
    gen_vmem_reset(g);
    uint64_t ch = umin(bytes, align_up(umin(g->vmem_cap / 4, 8u << 20), block) / block * block);
    if (ch > g->vmem_cap / 2)
        ch = g->vmem_cap / 2 / block * block;
    if (!ch)
        return gen_fail(g, "gen: VMEM too small for a gather of %llu-byte rows",
                        (unsigned long long)block);
    uint64_t buf[2];
    gen_fence rd = {.sem = -1}, wb[2] = {{.sem = -1}, {.sem = -1}};
    if (gen_vmem_alloc(g, ch, &buf[0]) || gen_vmem_alloc(g, ch, &buf[1]))
        return -1;
    for (uint64_t c = 0, off = 0; off < bytes; c++, off += ch) {
        uint64_t n = umin(ch, bytes - off);
        uint64_t extent = (cdiv(n, block) - 1) * stride + block;
        uint64_t s0 = src_bytes > extent ? (off / block * stride) % (src_bytes - extent + 1) : 0;
        if ((c >= 2 && gen_fence_wait(g, &wb[c % 2])) ||
            gen_dma(g, 0, src + s0, buf[c % 2], n, block, stride, 0, gen_fence_sig(g, &rd)) ||
            gen_fence_wait(g, &rd) ||
            gen_dma(g, 1, dst + off, buf[c % 2], n, 0, 0, 0, gen_fence_sig(g, &wb[c % 2])))
            return -1;
    }
    return gen_fence_wait(g, &wb[0]) || gen_fence_wait(g, &wb[1]) ? -1 : 0;
}

int gen_finish(gen *g, err *e)
{
    int rc = gen_drain(g);
    if (rc || g->failed) {
        *e = g->e;
        gen_free(g);
        return -1;
    }
    trace_writer *w = g->w;
    g->w = NULL;
    free(g);
    return trace_writer_close(w, e);
}

/* Bytes for a person: "1.5 GiB", "512 B". */
static const char *gen_human_bytes(char *buf, size_t cap, uint64_t b)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)b;
    unsigned i = 0;
    while (v >= 1024 && i < 6) {
        v /= 1024;
        i++;
    }
    snprintf(buf, cap, i ? "%.3g %s" : "%.0f %s", v, unit[i]);
    return buf;
}

int gen_hbm_alloc(gen *g, uint64_t bytes, uint64_t *addr)
{
    uint64_t a = align_up(g->hbm_next, GEN_HBM_ALIGN);
    if (bytes > g->hbm_cap || a > g->hbm_cap - bytes) {
        char cap[32], req[32], used[32], one[32], top[128] = "";
        for (unsigned i = 0; i < 3 && i < g->hbm_nallocs; i++)
            snprintf(top + strlen(top), sizeof top - strlen(top), "%s%s", i ? ", " : " (largest ",
                     gen_human_bytes(one, sizeof one, g->hbm_top[i]));
        return gen_fail(g,
                        "gen: the workload needs more than the chip's %s of HBM: %s more "
                        "requested with %s in %llu allocation%s already%s%s; shard it "
                        "(--tensor-parallel, --fsdp) or shrink it",
                        gen_human_bytes(cap, sizeof cap, g->hbm_cap),
                        gen_human_bytes(req, sizeof req, bytes),
                        gen_human_bytes(used, sizeof used, a), (unsigned long long)g->hbm_nallocs,
                        g->hbm_nallocs == 1 ? "" : "s", top, top[0] ? ")" : "");
    }
    *addr = a;
    g->hbm_next = a + bytes;
    /* Keep the three largest sizes, in decreasing order. */
    g->hbm_nallocs++;
    for (unsigned i = 0; i < 3; i++)
        if (bytes > g->hbm_top[i]) {
            uint64_t t = g->hbm_top[i];
            g->hbm_top[i] = bytes;
            bytes = t;
        }
    return 0;
}

int gen_vmem_alloc(gen *g, uint64_t bytes, uint64_t *addr)
{
    uint64_t a = align_up(g->vmem_next, GEN_VMEM_ALIGN);
    if (bytes > g->vmem_cap || a > g->vmem_cap - bytes)
        return gen_fail(g, "gen: VMEM plan exceeds %llu bytes (generator bug)",
                        (unsigned long long)g->vmem_cap);
    *addr = a;
    g->vmem_next = a + bytes;
    return 0;
}

void gen_vmem_reset(gen *g)
{
    g->vmem_next = 0;
}

uint64_t gen_vmem_free_bytes(const gen *g)
{
    return g->vmem_cap - align_up(g->vmem_next, GEN_VMEM_ALIGN);
}

/* ---- MXU tiles ------------------------------------------------------------------------ */

static int put_ldw(gen *g, unsigned mxu, uint64_t vmem, uint64_t k, uint64_t n, isa_dtype dt)
{
    isa_insn in = {.op = ISA_OP_MXU_LDW};
    in.arg[ISA_LDW_MXU] = mxu;
    in.arg[ISA_LDW_VMEM] = vmem;
    in.arg[ISA_LDW_K] = k;
    in.arg[ISA_LDW_N] = n;
    in.arg[ISA_LDW_DTYPE] = dt;
    return gen_put(g, &in);
}

static int put_mm(gen *g, unsigned mxu, uint64_t src, uint64_t dst, uint64_t m, isa_dtype dt,
                  int acc, unsigned wait, unsigned signal)
{
    isa_insn in = {.op = ISA_OP_MXU_MATMUL, .wait = (uint16_t)wait, .signal = (uint16_t)signal};
    in.arg[ISA_MM_MXU] = mxu;
    in.arg[ISA_MM_SRC] = src;
    in.arg[ISA_MM_DST] = dst;
    in.arg[ISA_MM_M] = m;
    in.arg[ISA_MM_DTYPE] = dt;
    in.arg[ISA_MM_ACC] = acc ? 1 : 0;
    return gen_put(g, &in);
}

/* VMEM layouts used with the MXU (element offsets):
 *   operand  [m][K]  stored k-tile-major: k-tile t at t*R*m, a contiguous m x kw_t block
 *   weights  [K][N]  stored n-strip-major: strip j at j*C*K, within it k-tile t at t*R*nw_j
 *   result   [m][N]  fp32, n-strip-major: strip j at j*C*m, a contiguous m x nw_j block */
static uint64_t tile_w(uint64_t tot, uint64_t t, uint64_t size)
{
    return umin(size, tot - t * size);
}

/* One small GEMM on one MXU: dst[m,N] (+)= src[m,K] w[K,N]. The first matmul waits `wait`,
 * the last signals `signal`. */
static int lane_mm(gen *g, unsigned mxu, uint64_t src, uint64_t m, uint64_t K, uint64_t N,
                   uint64_t w, uint64_t dst, int acc0, isa_dtype dt, unsigned wait, unsigned signal)
{
    const uint64_t R = g->c->mxu_rows, C = g->c->mxu_cols;
    uint64_t kt = cdiv(K, R), nt = cdiv(N, C);
    for (uint64_t j = 0; j < nt; j++) {
        uint64_t nw = tile_w(N, j, C);
        for (uint64_t t = 0; t < kt; t++) {
            uint64_t kw = tile_w(K, t, R);
            int last = j == nt - 1 && t == kt - 1;
            if (put_ldw(g, mxu, w + gen_dt_bytes(dt, j * C * K + t * R * nw), kw, nw, dt) ||
                put_mm(g, mxu, src + gen_dt_bytes(dt, t * R * m), dst + (j * C * m) * 4, m, dt,
                       acc0 || t > 0, j == 0 && t == 0 ? wait : 0, last ? signal : 0))
                return -1;
        }
    }
    return 0;
}

/* ---- GEMM tiler ------------------------------------------------------------------------ */

/* VMEM of one buffer set (double buffering doubles it). */
static uint64_t plan_bytes(uint64_t mt, uint64_t kc, uint64_t ng, isa_dtype dt, isa_dtype odt)
{
    uint64_t b = gen_dt_bytes(dt, mt * kc) + gen_dt_bytes(dt, kc * ng) + mt * ng * 4;
    if (odt != ISA_DT_FP32)
        b += gen_dt_bytes(odt, mt * ng);
    return align_up(b, 4 * GEN_VMEM_ALIGN);
}

int gen_gemm_plan_for(const cfg *c, uint64_t vmem, uint64_t m, uint64_t n, uint64_t k, isa_dtype dt,
                      isa_dtype out_dt, gen_gemm_plan *p, err *e)
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

typedef struct gemm_state {
    gen_gemm_args a;
    gen_gemm_plan p;
    uint64_t nmb, nkc, nng, steps;
    uint64_t abuf[2], wbuf[2], cbuf[2], obuf[2];
    gen_fence ready[2], done[2], wb[2];
} gemm_state;

/* Step s -> (n-group, m-block, k-chunk); k-chunk innermost so a C block stays in VMEM. */
static void gemm_step(const gemm_state *st, uint64_t s, uint64_t *gi, uint64_t *mi, uint64_t *ki)
{
    *ki = s % st->nkc;
    *mi = (s / st->nkc) % st->nmb;
    *gi = s / (st->nkc * st->nmb);
}

static int gemm_inputs(gen *g, gemm_state *st, uint64_t s)
{
    uint64_t gi, mi, ki;
    gemm_step(st, s, &gi, &mi, &ki);
    const gen_gemm_args *a = &st->a;
    uint64_t m0 = mi * st->p.mt, mr = tile_w(a->m, mi, st->p.mt);
    uint64_t k0 = ki * st->p.kc, kcw = tile_w(a->k, ki, st->p.kc);
    uint64_t n0 = gi * st->p.ng, ngw = tile_w(a->n, gi, st->p.ng);
    uint64_t ab = gen_dt_bytes(a->dt, 1);
    gen_fence *f = &st->ready[s % 2];
    /* One DMA per operand: whole row runs from HBM (long bursts), written into VMEM in the
     * MXU tile layout (TPU DMAs tile as they write). */
    if (gen_dma(g, 0, a->a + (m0 * a->lda + k0) * ab, st->abuf[s % 2], mr * kcw * ab, kcw * ab,
                a->lda * ab, 0, gen_fence_sig(g, f)) ||
        gen_dma(g, 0, a->b + (k0 * a->ldb + n0) * ab, st->wbuf[s % 2], kcw * ngw * ab, ngw * ab,
                a->ldb * ab, 0, gen_fence_sig(g, f)))
        return -1;
    return 0;
}

static int gemm_compute(gen *g, gemm_state *st, uint64_t s)
{
    const uint64_t R = g->c->mxu_rows, C = g->c->mxu_cols, P = cfg_mxu_total(g->c);
    uint64_t gi, mi, ki;
    gemm_step(st, s, &gi, &mi, &ki);
    const gen_gemm_args *a = &st->a;
    uint64_t mr = tile_w(a->m, mi, st->p.mt);
    uint64_t kcw = tile_w(a->k, ki, st->p.kc);
    uint64_t ngw = tile_w(a->n, gi, st->p.ng);
    uint64_t nsub = cdiv(ngw, C), msub = umin(st->p.msub, mr);
    uint64_t msz = cdiv(mr, msub);
    msub = cdiv(mr, msz);
    uint64_t units = nsub * msub, kts = cdiv(kcw, R);
    uint64_t ab = gen_dt_bytes(a->dt, 1);
    for (uint64_t t = 0; t < kts; t++) {
        uint64_t kw = tile_w(kcw, t, R);
        for (uint64_t u = 0; u < units; u++) {
            uint64_t j = u % nsub, si = u / nsub;
            uint64_t nw = tile_w(ngw, j, C);
            uint64_t r0 = si * msz, rows = tile_w(mr, si, msz);
            unsigned mxu = (unsigned)(u % P);
            int last = t == kts - 1 && u + P >= units;
            uint64_t w = st->wbuf[s % 2] + (j * C * kcw + t * R * nw) * ab;
            uint64_t src = st->abuf[s % 2] + (t * R * mr + r0 * kw) * ab;
            uint64_t dst = st->cbuf[(s / st->nkc) % 2] + (j * C * mr + r0 * nw) * 4;
            if (put_ldw(g, mxu, w, kw, nw, a->dt) ||
                put_mm(g, mxu, src, dst, rows, a->dt, ki > 0 || t > 0, 0,
                       last ? gen_fence_sig(g, &st->done[s % 2]) : 0))
                return -1;
        }
    }
    return 0;
}

/* Write back the C block finished by step s (its last k-chunk). */
static int gemm_writeback(gen *g, gemm_state *st, uint64_t s)
{
    uint64_t gi, mi, ki;
    gemm_step(st, s, &gi, &mi, &ki);
    const gen_gemm_args *a = &st->a;
    uint64_t m0 = mi * st->p.mt, mr = tile_w(a->m, mi, st->p.mt);
    uint64_t n0 = gi * st->p.ng, ngw = tile_w(a->n, gi, st->p.ng);
    uint64_t ob = gen_dt_bytes(a->out_dt, 1);
    uint64_t cb = (s / st->nkc) % 2; /* C buffers alternate per block */
    gen_fence *wb = &st->wb[cb];
    uint64_t cv = st->cbuf[cb], hbm = a->c + (m0 * a->ldc + n0) * ob;
    if (a->out_dt == ISA_DT_FP32)
        return gen_dma(g, 1, hbm, cv, mr * ngw * 4, ngw * 4, a->ldc * 4, 0, gen_fence_sig(g, wb));
    uint64_t ov = st->obuf[cb];
    return gen_vec(g, ISA_OP_V_CAST, cv, ov, mr * ngw, ISA_DT_FP32, a->out_dt, 0, SEM_V2D + 1) ||
                   gen_dma(g, 1, hbm, ov, mr * ngw * ob, ngw * ob, a->ldc * ob, SEM_V2D + 1,
                           gen_fence_sig(g, wb))
               ? -1
               : 0;
}

int gen_gemm(gen *g, const gen_gemm_args *args)
{
    if (g->failed)
        return -1;
    if (!args->m || !args->n || !args->k)
        return gen_fail(g, "gen: gemm with a zero dimension (%llux%llux%llu)",
                        (unsigned long long)args->m, (unsigned long long)args->n,
                        (unsigned long long)args->k);
    gemm_state st = {.a = *args};
    if (!st.a.lda)
        st.a.lda = gen_pitch(g->c, st.a.k, st.a.dt);
    if (!st.a.ldb)
        st.a.ldb = gen_pitch(g->c, st.a.n, st.a.dt);
    if (!st.a.ldc)
        st.a.ldc = gen_pitch(g->c, st.a.n, st.a.out_dt);
    gen_vmem_reset(g);
    if (gen_gemm_plan_for(g->c, g->vmem_cap, st.a.m, st.a.n, st.a.k, st.a.dt, st.a.out_dt, &st.p,
                          &g->e)) {
        g->failed = 1;
        return -1;
    }
    const gen_gemm_plan *p = &st.p;
    for (int i = 0; i < 2; i++) {
        if (gen_vmem_alloc(g, gen_dt_bytes(st.a.dt, p->mt * p->kc), &st.abuf[i]) ||
            gen_vmem_alloc(g, gen_dt_bytes(st.a.dt, p->kc * p->ng), &st.wbuf[i]) ||
            gen_vmem_alloc(g, p->mt * p->ng * 4, &st.cbuf[i]) ||
            (st.a.out_dt != ISA_DT_FP32 &&
             gen_vmem_alloc(g, gen_dt_bytes(st.a.out_dt, p->mt * p->ng), &st.obuf[i])))
            return -1;
        st.ready[i].sem = st.done[i].sem = st.wb[i].sem = -1;
    }
    st.nmb = cdiv(st.a.m, p->mt);
    st.nkc = cdiv(st.a.k, p->kc);
    st.nng = cdiv(st.a.n, p->ng);
    st.steps = st.nmb * st.nkc * st.nng;
    /* Software pipeline: inputs of step s+1 load while step s computes; the inputs of step
     * s+1 go into the buffers step s-1 used, once step s-1's DONE fence has passed, which is
     * emitted after step s's matmuls so the dispatcher stalls with step s already queued. */
    if (gemm_inputs(g, &st, 0) || (st.steps > 1 && gemm_inputs(g, &st, 1)))
        return -1;
    uint64_t blocks = 0; /* C blocks started */
    for (uint64_t s = 0; s < st.steps; s++) {
        uint64_t gi, mi, ki;
        gemm_step(&st, s, &gi, &mi, &ki);
        if (gen_fence_wait(g, &st.ready[s % 2]))
            return -1;
        if (ki == 0) {
            /* This C buffer's previous block must be written back before acc=0 reuses it. */
            if (blocks >= 2 && gen_fence_wait(g, &st.wb[(s / st.nkc) % 2]))
                return -1;
            blocks++;
        }
        if (gemm_compute(g, &st, s))
            return -1;
        if (s >= 1) {
            uint64_t pg, pm, pk;
            gemm_step(&st, s - 1, &pg, &pm, &pk);
            if (gen_fence_wait(g, &st.done[(s - 1) % 2]))
                return -1;
            if (pk == st.nkc - 1 && gemm_writeback(g, &st, s - 1))
                return -1;
            if (s + 1 < st.steps && gemm_inputs(g, &st, s + 1))
                return -1;
        }
    }
    if (gen_fence_wait(g, &st.done[(st.steps - 1) % 2]) || gemm_writeback(g, &st, st.steps - 1) ||
        gen_fence_wait(g, &st.wb[0]) || gen_fence_wait(g, &st.wb[1]))
        return -1;
    return 0;
}

/* ---- streamed vector pass ---------------------------------------------------------------- */

/* Chunk slots of a streamed pass: chunk c computes in slot c % DEPTH while chunk c+DEPTH-1
 * loads and chunk c-1 writes back, so the DMA queue always holds the next chunk's reads
 * behind the current write-back (DEPTH-1 chunks of loads in flight). */
#define GEN_STREAM_DEPTH 3

typedef struct stream_state {
    const gen_stream_args *s;
    uint64_t ch, nch;
    uint64_t base[GEN_STREAM_DEPTH]; /* per slot: inputs, outputs, then fp32 scratch slots */
    uint64_t off[14];                /* element-buffer offsets within a slot region, by index */
    gen_fence ready[GEN_STREAM_DEPTH], done[GEN_STREAM_DEPTH], wb[GEN_STREAM_DEPTH];
} stream_state;

static int stream_io(gen *g, stream_state *st, uint64_t c, int out)
{
    const gen_stream_args *s = st->s;
    uint64_t e0 = c * st->ch, n = tile_w(s->n, c, st->ch);
    unsigned cnt = out ? s->nout : s->nin;
    for (unsigned i = 0; i < cnt; i++) {
        isa_dtype dt = out ? s->out_dt[i] : s->in_dt[i];
        uint64_t hbm = (out ? s->out[i] : s->in[i]) + gen_dt_bytes(dt, e0);
        uint64_t v = st->base[c % GEN_STREAM_DEPTH] + st->off[out ? s->nin + i : i];
        gen_fence *f = out ? &st->wb[c % GEN_STREAM_DEPTH] : &st->ready[c % GEN_STREAM_DEPTH];
        if (gen_dma(g, out, hbm, v, gen_dt_bytes(dt, n), 0, 0, 0, gen_fence_sig(g, f)))
            return -1;
    }
    return 0;
}

static int stream_ops(gen *g, stream_state *st, uint64_t c)
{
    const gen_stream_args *s = st->s;
    uint64_t n = tile_w(s->n, c, st->ch), b = st->base[c % GEN_STREAM_DEPTH];
    for (unsigned i = 0; i < s->nops; i++) {
        const gen_vop *o = &s->ops[i];
        uint64_t cnt = o->div ? (n / o->div ? n / o->div : 1) : n;
        if (vchain(g, i == 0, 0, o->op, b + st->off[o->src], b + st->off[o->dst], cnt, o->dt,
                   o->width))
            return -1;
    }
    return vchain_end(g, gen_fence_sig(g, &st->done[c % GEN_STREAM_DEPTH]));
}

int gen_stream(gen *g, const gen_stream_args *s)
{
    if (g->failed)
        return -1;
    if (!s->n || !s->nops || s->nin > 6 || s->nout > 6)
        return gen_fail(g, "gen: bad streamed vector pass (generator bug)");
    stream_state st = {.s = s};
    unsigned nbuf = s->nin + s->nout, scratch = 0;
    for (unsigned i = 0; i < s->nops; i++) {
        if (s->ops[i].src > nbuf + 1 || s->ops[i].dst > nbuf + 1)
            return gen_fail(g, "gen: vector op buffer index out of range (generator bug)");
        unsigned hi = s->ops[i].src > s->ops[i].dst ? s->ops[i].src : s->ops[i].dst;
        if (hi >= nbuf && hi - nbuf + 1 > scratch)
            scratch = hi - nbuf + 1;
    }
    uint64_t per = 0; /* bytes per 8 elements of one slot region */
    for (unsigned i = 0; i < s->nin; i++)
        per += gen_dt_bytes(s->in_dt[i], 8);
    for (unsigned i = 0; i < s->nout; i++)
        per += gen_dt_bytes(s->out_dt[i], 8);
    per = per / 8 + 4 * scratch; /* + fp32 scratch slots the ops use */
    gen_vmem_reset(g);
    uint64_t fit = g->vmem_cap / (GEN_STREAM_DEPTH * per + 1) / 1024 * 1024;
    /* Chunks of n/8 (256 Ki..8 Mi elements): at least ~8 chunks keep the pipeline full, and
     * big DMAs amortise each transfer's set-up (dma.latency_ns): on v7 an add over 256 Mi
     * elements reaches 75% of HBM peak with 1 Mi-element chunks, 85% with 8 Mi. */
    uint64_t want = umin(8u << 20, umax(256u << 10, align_up(cdiv(s->n, 8), 1024)));
    st.ch = umin(s->n, umin(fit, want));
    if (st.ch == 0)
        return gen_fail(g, "gen: VMEM too small for a streamed vector pass");
    st.nch = cdiv(s->n, st.ch);
    uint64_t o = 0;
    for (unsigned i = 0; i < nbuf + scratch; i++) {
        st.off[i] = o;
        uint64_t b = i < s->nin ? gen_dt_bytes(s->in_dt[i], st.ch)
                     : i < nbuf ? gen_dt_bytes(s->out_dt[i - s->nin], st.ch)
                                : st.ch * 4;
        o += align_up(b, GEN_VMEM_ALIGN);
    }
    for (int i = 0; i < GEN_STREAM_DEPTH; i++) {
        if (gen_vmem_alloc(g, o, &st.base[i]))
            return -1;
        st.ready[i].sem = st.done[i].sem = st.wb[i].sem = -1;
    }
    const uint64_t D = GEN_STREAM_DEPTH;
    for (uint64_t c = 0; c + 1 < D && c < st.nch; c++)
        if (stream_io(g, &st, c, 0))
            return -1;
    for (uint64_t c = 0; c < st.nch; c++) {
        /* Inputs arrived; the write-back of the chunk that last used this slot is done. */
        if (gen_fence_wait(g, &st.ready[c % D]) || (c >= D && gen_fence_wait(g, &st.wb[c % D])) ||
            stream_ops(g, &st, c))
            return -1;
        /* Chunk c-1's ops are done: write it back, and refill its slot's inputs with chunk
         * c+D-1 (slot (c-1) % D; for c = 0 a slot not used yet). */
        if (c >= 1 && (gen_fence_wait(g, &st.done[(c - 1) % D]) || stream_io(g, &st, c - 1, 1)))
            return -1;
        if (c + D - 1 < st.nch && stream_io(g, &st, c + D - 1, 0))
            return -1;
    }
    if (gen_fence_wait(g, &st.done[(st.nch - 1) % D]) || stream_io(g, &st, st.nch - 1, 1))
        return -1;
    for (uint64_t i = 0; i < D; i++)
        if (gen_fence_wait(g, &st.wb[i]))
            return -1;
    return 0;
}

/* ---- attention lanes ------------------------------------------------------------------- */

#define GEN_ATTN_LANES 24
enum { SEM_MV = 2, SEM_VM = SEM_MV + GEN_ATTN_LANES }; /* per-lane MXU->VPU, VPU->MXU */

/* Per-lane buffers of one parity (bytes, in allocation order). */
enum {
    AB_Q,
    AB_K,
    AB_V,
    AB_DOO,
    AB_S,
    AB_DP,
    AB_PT,
    AB_DST,
    AB_O,
    AB_DQ,
    AB_DK,
    AB_DV,
    AB_ST,
    AB_N
};

static void attn_sizes(uint64_t m, uint64_t L, uint64_t hd, isa_dtype dt, int bwd,
                       uint64_t sz[AB_N])
{
    memset(sz, 0, AB_N * sizeof sz[0]);
    sz[AB_Q] = gen_dt_bytes(dt, m * hd);
    sz[AB_K] = sz[AB_V] = gen_dt_bytes(dt, L * hd);
    sz[AB_S] = m * L * 4;
    sz[AB_ST] = 2 * m * 4;
    if (!bwd) {
        sz[AB_O] = m * hd * 4;
        return;
    }
    sz[AB_DOO] = 2 * gen_dt_bytes(dt, m * hd);
    sz[AB_DP] = m * L * 4;
    sz[AB_PT] = sz[AB_DST] = gen_dt_bytes(dt, L * m);
    sz[AB_DQ] = m * hd * 4;
    sz[AB_DK] = sz[AB_DV] = L * hd * 4;
    sz[AB_ST] = m * hd * 4 + 4 * m * 4; /* dO*O products, then row sums */
}

static uint64_t attn_lane_bytes(uint64_t m, uint64_t L, uint64_t hd, isa_dtype dt, int bwd)
{
    uint64_t sz[AB_N], t = 0;
    attn_sizes(m, L, hd, dt, bwd, sz);
    for (int i = 0; i < AB_N; i++)
        t += align_up(sz[i], GEN_VMEM_ALIGN);
    return 2 * t;
}

static uint64_t attn_target_lanes(const cfg *c)
{
    return umin(cfg_mxu_total(c), GEN_ATTN_LANES);
}

uint64_t gen_attn_block(const cfg *c, uint64_t seq, uint64_t kv_len, uint64_t head_dim,
                        isa_dtype dt, int backward)
{
    static const uint64_t ms[] = {512, 256, 128, 64, 32, 16, 8, 4, 2, 1};
    uint64_t vmem = (uint64_t)cfg_vmem_total_bytes(c), target = attn_target_lanes(c);
    uint64_t best = 0, best_score = 0;
    for (unsigned i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        uint64_t m = umin(ms[i], seq);
        if (i > 0 && m >= umin(ms[i - 1], seq))
            continue;
        uint64_t fit = vmem / attn_lane_bytes(m, kv_len, head_dim, dt, backward);
        uint64_t score = umin(fit, target) * umin(m, c->mxu_rows);
        if (score > best_score) {
            best = m;
            best_score = score;
        }
    }
    return best;
}

static uint64_t attn_kv(uint64_t kv_len, uint64_t seq, int causal, uint64_t q0, uint64_t m)
{
    return causal ? umin(kv_len, kv_len - seq + q0 + m) : kv_len;
}

uint64_t gen_attn_flops(const cfg *c, uint64_t seq, uint64_t kv_len, uint64_t head_dim, int causal,
                        isa_dtype dt, int backward)
{
    uint64_t mq = gen_attn_block(c, seq, kv_len, head_dim, dt, backward), f = 0;
    if (!mq)
        return 0;
    for (uint64_t q0 = 0; q0 < seq; q0 += mq) {
        uint64_t m = umin(mq, seq - q0);
        f += m * attn_kv(kv_len, seq, causal, q0, m) * head_dim * (backward ? 10 : 4);
    }
    return f;
}

typedef struct attn_state {
    const gen_attn_args *a;
    uint64_t mq, nq, lanes, pairs, rounds;
    uint64_t buf[GEN_ATTN_LANES][2][AB_N];
    gen_fence ready[2], done[2], wb[2];
} attn_state;

/* Item of lane i in round r; 0 if the lane has none. */
static int attn_item(const attn_state *st, uint64_t i, uint64_t r, uint64_t *pair, uint64_t *qi)
{
    *pair = i + st->lanes * (r / st->nq);
    *qi = r % st->nq;
    return *pair < st->pairs;
}

static int attn_inputs(gen *g, attn_state *st, uint64_t r)
{
    const gen_attn_args *a = st->a;
    uint64_t ab = gen_dt_bytes(a->dt, 1), hdb = a->head_dim * ab;
    gen_fence *f = &st->ready[r % 2];
    for (uint64_t i = 0; i < st->lanes; i++) {
        uint64_t p, qi;
        if (!attn_item(st, i, r, &p, &qi))
            continue;
        uint64_t b = p / a->heads, h = p % a->heads, q0 = qi * st->mq;
        uint64_t m = umin(st->mq, a->seq - q0), L = attn_kv(a->kv_len, a->seq, a->causal, q0, m);
        uint64_t *bf = st->buf[i][r % 2];
        uint64_t qrow = ((b * a->seq + q0) * a->ld + h * a->head_dim) * ab;
        uint64_t krow = ((b * a->kv_len) * a->kv_ld + h * a->head_dim) * ab;
        if (gen_dma(g, 0, a->q + qrow, bf[AB_Q], m * hdb, hdb, a->ld * ab, 0,
                    gen_fence_sig(g, f)) ||
            gen_dma(g, 0, a->k + krow, bf[AB_K], L * hdb, hdb, a->kv_ld * ab, 0,
                    gen_fence_sig(g, f)) ||
            gen_dma(g, 0, a->v + krow, bf[AB_V], L * hdb, hdb, a->kv_ld * ab, 0,
                    gen_fence_sig(g, f)))
            return -1;
        if (a->backward && (gen_dma(g, 0, a->dout + qrow, bf[AB_DOO], m * hdb, hdb, a->ld * ab, 0,
                                    gen_fence_sig(g, f)) ||
                            gen_dma(g, 0, a->o + qrow, bf[AB_DOO] + m * hdb, m * hdb, hdb,
                                    a->ld * ab, 0, gen_fence_sig(g, f))))
            return -1;
    }
    return 0;
}

static int attn_outputs(gen *g, attn_state *st, uint64_t r)
{
    const gen_attn_args *a = st->a;
    uint64_t ab = gen_dt_bytes(a->dt, 1), hdb = a->head_dim * ab;
    gen_fence *f = &st->wb[r % 2];
    for (uint64_t i = 0; i < st->lanes; i++) {
        uint64_t p, qi;
        if (!attn_item(st, i, r, &p, &qi))
            continue;
        uint64_t b = p / a->heads, h = p % a->heads, q0 = qi * st->mq;
        uint64_t m = umin(st->mq, a->seq - q0);
        uint64_t *bf = st->buf[i][r % 2];
        uint64_t qrow = ((b * a->seq + q0) * a->ld + h * a->head_dim) * ab;
        if (!a->backward) {
            if (gen_dma(g, 1, a->o + qrow, bf[AB_O], m * hdb, hdb, a->ld * ab, 0,
                        gen_fence_sig(g, f)))
                return -1;
            continue;
        }
        if (gen_dma(g, 1, a->dq + qrow, bf[AB_DQ], m * hdb, hdb, a->ld * ab, 0,
                    gen_fence_sig(g, f)))
            return -1;
        if (qi == st->nq - 1) {
            uint64_t *pb = st->buf[i][(r / st->nq) % 2];
            uint64_t krow = ((b * a->kv_len) * a->kv_ld + h * a->head_dim) * ab;
            if (gen_dma(g, 1, a->dk + krow, pb[AB_DK], a->kv_len * hdb, hdb, a->kv_ld * ab, 0,
                        gen_fence_sig(g, f)) ||
                gen_dma(g, 1, a->dv + krow, pb[AB_DV], a->kv_len * hdb, hdb, a->kv_ld * ab, 0,
                        gen_fence_sig(g, f)))
                return -1;
        }
    }
    return 0;
}

/* Softmax of an m x L fp32 score block on the vector unit, then cast to dt in place:
 * [mask], row max (cross-lane reduce), subtract, exp, row sum, reciprocal (rsqrt squared),
 * multiply. Backward recomputes P from the saved row statistics: subtract, exp. */
static int attn_softmax(gen *g, const gen_attn_args *a, const uint64_t *bf, uint64_t m, uint64_t L,
                        int diag, int bwd, unsigned wait)
{
    const isa_dtype F = ISA_DT_FP32;
    uint64_t S = bf[AB_S], st = bf[AB_ST], n = m * L;
    int first = 1;
#define VC(op, src, dst, cnt, dt, x)                                                               \
    do {                                                                                           \
        if (vchain(g, first, wait, op, src, dst, cnt, dt, x))                                      \
            return -1;                                                                             \
        first = 0;                                                                                 \
    } while (0)
    if (diag)
        VC(ISA_OP_V_SELECT, S, S, m * umin(m, L), F, 0);
    if (!bwd) {
        VC(ISA_OP_V_REDUCE, S, st, n, F, L);
        VC(ISA_OP_V_SUB, S, S, n, F, 0);
        VC(ISA_OP_V_EXP, S, S, n, F, 0);
        VC(ISA_OP_V_REDUCE, S, st + m * 4, n, F, L);
        VC(ISA_OP_V_RSQRT, st + m * 4, st + m * 4, m, F, 0);
        VC(ISA_OP_V_MUL, st + m * 4, st + m * 4, m, F, 0);
        VC(ISA_OP_V_MUL, S, S, n, F, 0);
    } else {
        VC(ISA_OP_V_SUB, S, S, n, F, 0);
        VC(ISA_OP_V_EXP, S, S, n, F, 0);
    }
    VC(ISA_OP_V_CAST, S, S, n, F, a->dt);
#undef VC
    return 0;
}

static int attn_compute(gen *g, attn_state *st, uint64_t r)
{
    const gen_attn_args *a = st->a;
    const isa_dtype F = ISA_DT_FP32, dt = a->dt;
    const uint64_t hd = a->head_dim;
    gen_fence *done = &st->done[r % 2];
    uint64_t m[GEN_ATTN_LANES], L[GEN_ATTN_LANES], qi[GEN_ATTN_LANES];
    int live[GEN_ATTN_LANES], diag[GEN_ATTN_LANES];
    for (uint64_t i = 0; i < st->lanes; i++) {
        uint64_t p;
        live[i] = attn_item(st, i, r, &p, &qi[i]);
        uint64_t q0 = qi[i] * st->mq;
        m[i] = live[i] ? umin(st->mq, a->seq - q0) : 0;
        L[i] = live[i] ? attn_kv(a->kv_len, a->seq, a->causal, q0, m[i]) : 0;
        diag[i] = a->causal;
    }
#define LANES                                                                                      \
    for (uint64_t i = 0; i < st->lanes; i++)                                                       \
        if (live[i])
#define BF(x) st->buf[i][r % 2][x]
    unsigned mv, vm;
    if (!a->backward) {
        LANES
        {
            mv = SEM_MV + 1 + (unsigned)i;
            if (lane_mm(g, (unsigned)i, BF(AB_Q), m[i], hd, L[i], BF(AB_K), BF(AB_S), 0, dt, 0, mv))
                return -1;
        }
        LANES
        {
            if (attn_softmax(g, a, st->buf[i][r % 2], m[i], L[i], diag[i], 0,
                             SEM_MV + 1 + (unsigned)i) ||
                vchain_end(g, SEM_VM + 1 + (unsigned)i))
                return -1;
        }
        LANES
        {
            mv = SEM_MV + 1 + (unsigned)i;
            vm = SEM_VM + 1 + (unsigned)i;
            if (lane_mm(g, (unsigned)i, BF(AB_S), m[i], L[i], hd, BF(AB_V), BF(AB_O), 0, dt, vm,
                        mv))
                return -1;
        }
        LANES
        {
            if (vchain(g, 1, SEM_MV + 1 + (unsigned)i, ISA_OP_V_CAST, BF(AB_O), BF(AB_O), m[i] * hd,
                       F, dt) ||
                vchain_end(g, gen_fence_sig(g, done)))
                return -1;
        }
        return 0;
    }
    LANES
    {
        mv = SEM_MV + 1 + (unsigned)i;
        if (lane_mm(g, (unsigned)i, BF(AB_Q), m[i], hd, L[i], BF(AB_K), BF(AB_S), 0, dt, 0, mv) ||
            lane_mm(g, (unsigned)i, BF(AB_DOO), m[i], hd, L[i], BF(AB_V), BF(AB_DP), 0, dt, 0, mv))
            return -1;
    }
    LANES
    {
        mv = SEM_MV + 1 + (unsigned)i;
        uint64_t n = m[i] * L[i], sst = BF(AB_ST);
        if (attn_softmax(g, a, st->buf[i][r % 2], m[i], L[i], diag[i], 1, mv) ||
            vchain(g, 0, 0, ISA_OP_V_TRANSPOSE, BF(AB_S), BF(AB_PT), n, dt, L[i]) ||
            vchain(g, 0, 0, ISA_OP_V_MUL, BF(AB_DOO), sst, m[i] * hd, dt, 0) ||
            vchain(g, 0, 0, ISA_OP_V_REDUCE, sst, sst + m[i] * hd * 4, m[i] * hd, F, hd) ||
            vchain_end(g, SEM_VM + 1 + (unsigned)i))
            return -1;
    }
    LANES
    {
        mv = SEM_MV + 1 + (unsigned)i;
        uint64_t n = m[i] * L[i];
        if (vchain(g, 1, mv, ISA_OP_V_SUB, BF(AB_DP), BF(AB_DP), n, F, 0) ||
            vchain(g, 0, 0, ISA_OP_V_MUL, BF(AB_DP), BF(AB_DP), n, F, 0) ||
            vchain(g, 0, 0, ISA_OP_V_CAST, BF(AB_DP), BF(AB_DP), n, F, dt) ||
            vchain(g, 0, 0, ISA_OP_V_TRANSPOSE, BF(AB_DP), BF(AB_DST), n, dt, L[i]) ||
            vchain_end(g, SEM_VM + 1 + (unsigned)i))
            return -1;
    }
    LANES
    {
        mv = SEM_MV + 1 + (unsigned)i;
        vm = SEM_VM + 1 + (unsigned)i;
        const uint64_t *pb = st->buf[i][(r / st->nq) % 2];
        int acc = qi[i] > 0;
        if (lane_mm(g, (unsigned)i, BF(AB_PT), L[i], m[i], hd, BF(AB_DOO), pb[AB_DV], acc, dt, vm,
                    0) ||
            lane_mm(g, (unsigned)i, BF(AB_DST), L[i], m[i], hd, BF(AB_Q), pb[AB_DK], acc, dt, vm,
                    0) ||
            lane_mm(g, (unsigned)i, BF(AB_DP), m[i], L[i], hd, BF(AB_K), BF(AB_DQ), 0, dt, 0, mv))
            return -1;
    }
    LANES
    {
        const uint64_t *pb = st->buf[i][(r / st->nq) % 2];
        if (vchain(g, 1, SEM_MV + 1 + (unsigned)i, ISA_OP_V_CAST, BF(AB_DQ), BF(AB_DQ), m[i] * hd,
                   F, dt))
            return -1;
        if (qi[i] == st->nq - 1 &&
            (vchain(g, 0, 0, ISA_OP_V_CAST, pb[AB_DK], pb[AB_DK], a->kv_len * hd, F, dt) ||
             vchain(g, 0, 0, ISA_OP_V_CAST, pb[AB_DV], pb[AB_DV], a->kv_len * hd, F, dt)))
            return -1;
        if (vchain_end(g, gen_fence_sig(g, done)))
            return -1;
    }
#undef LANES
#undef BF
    return 0;
}

int gen_attention(gen *g, const gen_attn_args *a)
{
    if (g->failed)
        return -1;
    attn_state st = {.a = a};
    st.mq = gen_attn_block(g->c, a->seq, a->kv_len, a->head_dim, a->dt, a->backward);
    uint64_t per = st.mq ? attn_lane_bytes(st.mq, a->kv_len, a->head_dim, a->dt, a->backward) : 0;
    if (!st.mq || per > g->vmem_cap)
        return gen_fail(g,
                        "gen: attention with %llu keys of head_dim %llu does not fit in %llu "
                        "bytes of VMEM even one query row at a time",
                        (unsigned long long)a->kv_len, (unsigned long long)a->head_dim,
                        (unsigned long long)g->vmem_cap);
    st.pairs = a->batch * a->heads;
    st.nq = cdiv(a->seq, st.mq);
    st.lanes = umin(umin(attn_target_lanes(g->c), st.pairs), g->vmem_cap / per);
    st.rounds = cdiv(st.pairs, st.lanes) * st.nq;
    gen_vmem_reset(g);
    for (uint64_t i = 0; i < st.lanes; i++)
        for (int x = 0; x < 2; x++) {
            uint64_t sz[AB_N];
            attn_sizes(st.mq, a->kv_len, a->head_dim, a->dt, a->backward, sz);
            for (int b = 0; b < AB_N; b++) {
                st.buf[i][x][b] = 0;
                if (sz[b] && gen_vmem_alloc(g, sz[b], &st.buf[i][x][b]))
                    return -1;
            }
        }
    for (int x = 0; x < 2; x++)
        st.ready[x].sem = st.done[x].sem = st.wb[x].sem = -1;
    if (attn_inputs(g, &st, 0) || (st.rounds > 1 && attn_inputs(g, &st, 1)))
        return -1;
    for (uint64_t r = 0; r < st.rounds; r++) {
        if (gen_fence_wait(g, &st.ready[r % 2]) || (r >= 2 && gen_fence_wait(g, &st.wb[r % 2])) ||
            attn_compute(g, &st, r))
            return -1;
        if (r >= 1 && (gen_fence_wait(g, &st.done[(r - 1) % 2]) || attn_outputs(g, &st, r - 1) ||
                       (r + 1 < st.rounds && attn_inputs(g, &st, r + 1))))
            return -1;
    }
    return gen_fence_wait(g, &st.done[(st.rounds - 1) % 2]) ||
                   attn_outputs(g, &st, st.rounds - 1) || gen_fence_wait(g, &st.wb[0]) ||
                   gen_fence_wait(g, &st.wb[1])
               ? -1
               : 0;
}
