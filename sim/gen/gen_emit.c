/* gen_emit.c - the emission kernels lower_emit.c drives, one per kind of IR op: trace writer
 * wrapper, semaphore pool and fences, the VMEM allocator, the GEMM (with the tiling
 * lower_tile chose, fused epilogues, implicit-GEMM convolution loads), the streamed vector
 * pass, attention lanes (software-pipelined forward), strided copies and collectives that
 * use the chip.
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
#include "umath.h"

#define GEN_HBM_ALIGN  4096
#define GEN_VMEM_ALIGN 512

/* Dedicated chains (semaphores below GEN_SEM_FIXED; 2..49 are the attention lanes' below, 8..55
 * the embedding kind's, gen_embedding.c). D2V: epilogue input DMA -> vector; I2N and N2I: an
 * ICI collective -> the DCN all-reduce of its result -> an ICI collective (gradients across
 * slices, which share a trace with attention: above the lanes and D2V); HOP: a routed
 * collective's recv -> its next send on the ICI queue (above the embedding kind's). */
enum { SEM_V2D = 0, SEM_V2V = 1, SEM_D2V = 50, SEM_I2N = 51, SEM_N2I = 52, SEM_HOP = 56 };

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
    uint64_t coll_hbm, coll_span; /* HBM buffer the next gen_coll_chip reads and writes */
    /* vector chain: one op held back until we know whether another follows */
    int vheld;
    isa_insn vhold;
};

uint64_t gen_dt_bytes(isa_dtype dt, uint64_t n)
{
    return (n * isa_dtype_bits(dt) + 7) / 8;
}


uint64_t gen_pitch(const cfg *c, uint64_t cols, isa_dtype dt)
{
    uint64_t G = c->hbm_interleave_bytes, eb = gen_dt_bytes(dt, 8) / 8;
    uint64_t bytes = gen_dt_bytes(dt, cols);
    if (!eb || bytes < G || G % eb)
        return cols;
    /* Successive rows of a column start gr granules apart and so visit PCs / gcd(gr, PCs)
     * pseudo-channels; pad only when that is fewer than 16 (or all of them): a power-of-two
     * pitch that still rotates over 16 channels keeps its DRAM-row locality (v7, 4 KiB rows:
     * attention 4% faster unpadded), one that does not collapses onto a few (v3, 24 KiB
     * rows: 5.5% of HBM peak). An odd number of granules visits every pseudo-channel. */
    uint64_t gr = um_cdiv(bytes, G), pcs = cfg_hbm_channels(c) * c->hbm_pseudo_channels;
    uint64_t distinct = (pcs ? pcs : 1) / um_gcd(gr, pcs ? pcs : 1), want = pcs < 16 ? pcs : 16;
    if (distinct < want && gr % 2 == 0)
        gr++;
    return gr * G / eb;
}

gen *gen_new(const cfg *c, const char *path, const char *note, err *e)
{
    gen *g = err_calloc(1, sizeof *g, "gen", e);
    if (!g)
        return NULL;
    g->c = c;
    if (trace_writer_open(&g->w, path, note, e)) {
        free(g);
        return NULL;
    }
    g->hbm_cap = cfg_hbm_bytes(c);
    g->vmem_cap = (uint64_t)cfg_vmem_total_bytes(c);
    for (int s = ISA_SEM_MAX - 1; s >= GEN_SEM_FIXED; s--)
        g->pool[g->npool++] = s;
    g->late.sem = -1;
    return g;
}

void gen_free(gen *g)
{
    if (g)
        trace_writer_abort(g->w); /* NULL once closed */
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

/* The generator's first failure stays (err_first). */
#define gen_fail(g, ...) err_first(&(g)->e, &(g)->failed, __VA_ARGS__)

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
    uint64_t extent = block ? (um_cdiv(bytes, block) - 1) * stride + block : bytes;
    if (hbm + extent > g->hbm_cap || vmem + bytes > g->vmem_cap)
        return gen_fail(g,
                        "gen: DMA outside memory: hbm %llu + %llu of %llu, vmem %llu + %llu of "
                        "%llu (generator bug)",
                        (unsigned long long)hbm, (unsigned long long)extent,
                        (unsigned long long)g->hbm_cap, (unsigned long long)vmem,
                        (unsigned long long)bytes, (unsigned long long)g->vmem_cap);
    isa_insn in = {.op = to_hbm ? ISA_OP_DMA_V2H : ISA_OP_DMA_H2V,
                   .wait = (uint16_t)wait,
                   .signal = (uint16_t)signal,
                   .arg = {[ISA_DMA_HBM] = hbm, [ISA_DMA_VMEM] = vmem, [ISA_DMA_BYTES] = bytes,
                           [ISA_DMA_STRIDE] = stride, [ISA_DMA_BLOCK] = block}};
    return gen_put(g, &in);
}

static isa_insn vec_insn(int op, uint64_t src, uint64_t dst, uint64_t n, isa_dtype dt,
                         uint64_t extra)
{
    isa_insn in = {.op = (uint16_t)op,
                   .arg = {[ISA_V_SRC] = src, [ISA_V_DST] = dst, [ISA_V_N] = n, [ISA_V_DTYPE] = dt}};
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

static int is_dcn(int op)
{
    return isa_info_of((unsigned)op)->unit == ISA_UNIT_DCN;
}

int gen_coll_chained(gen *g, int op, unsigned axes, uint64_t bytes, isa_dtype dt, gen_fence *f,
                     unsigned chain)
{
    if (gen_flush_vec(g))
        return -1;
    int dcn = is_dcn(op);
    if ((!axes && !dcn) || !bytes)
        return chain ? gen_fail(g, "gen: an empty collective cannot chain (generator bug)") : 0;
    isa_insn in = {.op = (uint16_t)op};
    if (dcn) {
        in.arg[ISA_DCN_BYTES] = bytes;
        in.arg[ISA_DCN_DTYPE] = dt;
    } else {
        in.arg[ISA_COLL_AXES] = axes;
        in.arg[ISA_COLL_BYTES] = bytes;
        in.arg[ISA_COLL_DTYPE] = dt;
    }
    /* both ends are in-order queues, so one semaphore per direction pairs them in order */
    if (chain & GEN_CHAIN_IN)
        in.wait = (uint16_t)((dcn ? SEM_I2N : SEM_N2I) + 1);
    if (chain & GEN_CHAIN_OUT)
        in.signal = (uint16_t)((dcn ? SEM_N2I : SEM_I2N) + 1);
    else
        in.signal = (uint16_t)gen_fence_sig(g, f ? f : &g->late);
    return gen_put(g, &in);
}

int gen_coll(gen *g, int op, unsigned axes, uint64_t bytes, isa_dtype dt, gen_fence *f)
{
    return gen_coll_chained(g, op, axes, bytes, dt, f, 0);
}

/* Collective on the chip (docs/models-ici.md, "Collectives on the chip"): besides the ICI
 * instruction, the chip reads what it sends from HBM and writes what it receives to HBM
 * through the DMA unit (staged in a VMEM buffer at the top of VMEM, in chunks), and the
 * vector unit adds what a reduction receives. Ring algorithms over p chips: all-reduce reads
 * B, writes B, adds (p-1)/p of B's elements; reduce-scatter reads B, writes B/p, adds
 * (p-1)/p; all-gather (B = gathered size) reads B/p, writes B; all-to-all reads and writes
 * B. The collective is pipelined in chunks, so this work overlaps its link time: it is
 * issued alongside the ICI instruction, contending for HBM, DMA engines, VMEM and the
 * vector unit, and every piece signals the collective's fence. */
/* The chip's part of a ring collective of `bytes` over p chips (above): phase 0 the HBM reads
 * of what it sends, phase 1 the reduction adds and the HBM writes of what it receives, each
 * signalling ff. */
static int coll_work(gen *g, int op, uint64_t bytes, isa_dtype dt, uint64_t p, gen_fence *ff,
                     int phase)
{
    uint64_t rd = bytes, wr = bytes, red = 0;
    p = p ? p : 1;
    switch (op) {
    case ISA_OP_ICI_ALLREDUCE:
    case ISA_OP_DCN_ALLREDUCE:
        red = bytes / p * (p - 1);
        break;
    case ISA_OP_ICI_REDUCESCATTER:
        wr = bytes / p;
        red = bytes / p * (p - 1);
        break;
    case ISA_OP_ICI_ALLGATHER:
        rd = bytes / p;
        break;
    default:
        break;
    }
    /* Staging: two chunks at the top of VMEM (a binary vector op reads its second operand
     * right after the first). */
    uint64_t stage = um_min(4u << 20, g->vmem_cap / 16), base = g->vmem_cap - 2 * stage;
    uint64_t eb = gen_dt_bytes(dt, 8) / 8 ? gen_dt_bytes(dt, 8) / 8 : 1;
    if (phase == 0) {
        for (uint64_t o = 0; o < rd; o += stage)
            if (gen_dma(g, 0, g->coll_hbm + o % g->coll_span, base, um_min(stage, rd - o), 0, 0, 0,
                        gen_fence_sig(g, ff)))
                return -1;
        return 0;
    }
    for (uint64_t o = 0; o < red; o += stage) {
        uint64_t n = um_min(stage, red - o) / eb;
        if (gen_vec(g, ISA_OP_V_ADD, base, base, n ? n : 1, dt, 0, 0, gen_fence_sig(g, ff)))
            return -1;
    }
    for (uint64_t o = 0; o < wr; o += stage)
        if (gen_dma(g, 1, g->coll_hbm + o % g->coll_span, base, um_min(stage, wr - o), 0, 0, 0,
                    gen_fence_sig(g, ff)))
            return -1;
    return 0;
}

int gen_coll_chip(gen *g, int op, unsigned axes, uint64_t bytes, isa_dtype dt, uint64_t p,
                  gen_fence *f, unsigned chain)
{
    if (gen_flush_vec(g))
        return -1;
    if ((!axes && !is_dcn(op)) || !bytes)
        return chain ? gen_fail(g, "gen: an empty collective cannot chain (generator bug)") : 0;
    gen_fence *ff = f ? f : &g->late;
    if (coll_work(g, op, bytes, dt, p, ff, 0) ||
        gen_coll_chained(g, op, axes, bytes, dt, ff, chain))
        return -1;
    return coll_work(g, op, bytes, dt, p, ff, 1);
}

int gen_coll_routed(gen *g, int op, unsigned axes, const gen_hop *hops, size_t nhops,
                    uint64_t bytes, isa_dtype dt, uint64_t p, int chip, gen_fence *f)
{
    if (gen_flush_vec(g))
        return -1;
    if (!axes || !bytes || !nhops)
        return 0;
    gen_fence *ff = f ? f : &g->late;
    /* a shift (ici.send) moves its operand: read and written once, like an all-to-all */
    int work_op = op == ISA_OP_ICI_SEND ? ISA_OP_ICI_ALLTOALL : op;
    if (chip && coll_work(g, work_op, bytes, dt, p, ff, 0))
        return -1;
    for (size_t i = 0; i < nhops; i++) {
        isa_insn in = {.op = ISA_OP_ICI_SEND};
        in.arg[ISA_P2P_AXIS] = axes;
        in.arg[ISA_P2P_DIR] = hops[i].dir < 0 ? 1 : 0;
        in.arg[ISA_P2P_BYTES] = hops[i].bytes ? hops[i].bytes : 1;
        in.wait = (uint16_t)(i ? SEM_HOP + 1 : 0);
        if (gen_put(g, &in))
            return -1;
        in.op = ISA_OP_ICI_RECV;
        in.arg[ISA_P2P_DIR] = hops[i].dir < 0 ? 0 : 1; /* from the other side */
        in.wait = 0;
        in.signal = (uint16_t)(i + 1 < nhops ? SEM_HOP + 1 : gen_fence_sig(g, ff));
        if (gen_put(g, &in))
            return -1;
    }
    return chip ? coll_work(g, work_op, bytes, dt, p, ff, 1) : 0;
}

void gen_coll_buffer(gen *g, uint64_t hbm, uint64_t span)
{
    g->coll_hbm = hbm;
    g->coll_span = span ? span : 1;
}

int gen_drain(gen *g)
{
    return gen_fence_wait(g, &g->late);
}

int gen_wait_late(gen *g)
{
    return gen_fence_wait(g, &g->late);
}

/* One side of a chunk's transfer, split by whole blocks over up to engines DMAs: a strided
 * transfer of small blocks is latency-bound on one engine (each block is its own HBM
 * request), so its pieces run on several engines at once. */
static int copy_part(gen *g, int to_hbm, uint64_t hbm, uint64_t vmem, uint64_t n, uint64_t block,
                     uint64_t stride, uint64_t engines, gen_fence *f)
{
    uint64_t nb = block ? um_cdiv(n, block) : 1;
    uint64_t parts = um_min(engines, nb), per = um_cdiv(nb, parts);
    if (!block || parts <= 1)
        return gen_dma(g, to_hbm, hbm, vmem, n, block, stride, 0, gen_fence_sig(g, f));
    for (uint64_t b0 = 0; b0 < nb; b0 += per) {
        uint64_t len = um_min(per * block, n - b0 * block);
        if (gen_dma(g, to_hbm, hbm + b0 * stride, vmem + b0 * block, len, block, stride, 0,
                    gen_fence_sig(g, f)))
            return -1;
    }
    return 0;
}

/* One side of a staged copy in HBM: blocks of block bytes stride apart (block 0: contiguous);
 * wrap (a gather's source of span bytes): a chunk's offset wraps so that it stays inside. */
typedef struct {
    uint64_t hbm, block, stride, span;
    int wrap;
} copy_side;

/* HBM address of the n-byte chunk at byte off of the copy on side sd. */
static uint64_t copy_at(const copy_side *sd, uint64_t off, uint64_t n)
{
    if (!sd->block)
        return sd->hbm + off;
    uint64_t o = off / sd->block * sd->stride;
    if (sd->wrap) {
        uint64_t extent = (um_cdiv(n, sd->block) - 1) * sd->stride + sd->block;
        o = sd->span > extent ? o % (sd->span - extent + 1) : 0;
    }
    return sd->hbm + o;
}

/* Copy bytes from one side to the other through two VMEM buffers of ch bytes: chunk c is read
 * into buffer c % 2 once that buffer's last write-back has passed, then written out; each
 * side's transfer on up to engines DMAs (copy_part). */
static int copy_staged(gen *g, const copy_side *from, const copy_side *to, uint64_t bytes,
                       uint64_t ch, uint64_t engines)
{
    uint64_t buf[2];
    gen_fence rd = {.sem = -1}, wb[2] = {{.sem = -1}, {.sem = -1}};
    if (gen_vmem_alloc(g, ch, &buf[0]) || gen_vmem_alloc(g, ch, &buf[1]))
        return -1;
    for (uint64_t c = 0, off = 0; off < bytes; c++, off += ch) {
        uint64_t n = um_min(ch, bytes - off), v = buf[c % 2];
        if ((c >= 2 && gen_fence_wait(g, &wb[c % 2])) ||
            copy_part(g, 0, copy_at(from, off, n), v, n, from->block, from->stride, engines, &rd) ||
            gen_fence_wait(g, &rd) ||
            copy_part(g, 1, copy_at(to, off, n), v, n, to->block, to->stride, engines, &wb[c % 2]))
            return -1;
    }
    return gen_fence_wait(g, &wb[0]) || gen_fence_wait(g, &wb[1]) ? -1 : 0;
}

int gen_gather(gen *g, uint64_t src, uint64_t src_bytes, uint64_t dst, uint64_t bytes,
               uint64_t block, uint64_t stride)
{
    if (g->failed)
        return -1;
    gen_vmem_reset(g);
    uint64_t ch =
        um_min(bytes, um_align_up(um_min(g->vmem_cap / 4, 8u << 20), block) / block * block);
    if (ch > g->vmem_cap / 2)
        ch = g->vmem_cap / 2 / block * block;
    if (!ch)
        return gen_fail(g, "gen: VMEM too small for a gather of %llu-byte rows",
                        (unsigned long long)block);
    const copy_side from = {
        .hbm = src, .block = block, .stride = stride, .span = src_bytes, .wrap = 1};
    const copy_side to = {.hbm = dst};
    return copy_staged(g, &from, &to, bytes, ch, 1);
}

/* Chunks hold whole blocks of both sides (a multiple of their lcm), double-buffered; each
 * side's transfer split over the DMA engines. */
int gen_copy2d(gen *g, uint64_t src, uint64_t sblock, uint64_t sstride, uint64_t dst,
               uint64_t dblock, uint64_t dstride, uint64_t bytes)
{
    if (g->failed)
        return -1;
    uint64_t sb = sblock ? sblock : bytes, db = dblock ? dblock : bytes;
    uint64_t unit = sb / um_gcd(sb, db) * db;
    gen_vmem_reset(g);
    uint64_t ch = um_min(bytes, um_max(unit, um_min(g->vmem_cap / 4, 8u << 20) / unit * unit));
    if (2 * ch > g->vmem_cap)
        return gen_fail(g, "gen: VMEM too small for a copy of %llu-byte blocks",
                        (unsigned long long)unit);
    const copy_side from = {.hbm = src, .block = sblock, .stride = sstride};
    const copy_side to = {.hbm = dst, .block = dblock, .stride = dstride};
    return copy_staged(g, &from, &to, bytes, ch, g->c->dma_engines);
}

int gen_copy2d_async(gen *g, uint64_t src, uint64_t sblock, uint64_t sstride, uint64_t dst,
                     uint64_t dblock, uint64_t dstride, uint64_t bytes, gen_fence *done)
{
    if (g->failed)
        return -1;
    if (bytes > um_min(g->vmem_cap / 4, 8u << 20))
        return gen_copy2d(g, src, sblock, sstride, dst, dblock, dstride, bytes);
    uint64_t buf;
    gen_fence rd = {.sem = -1};
    gen_vmem_reset(g);
    return gen_vmem_alloc(g, bytes, &buf) ||
                   copy_part(g, 0, src, buf, bytes, sblock, sstride, g->c->dma_engines, &rd) ||
                   gen_fence_wait(g, &rd) ||
                   copy_part(g, 1, dst, buf, bytes, dblock, dstride, g->c->dma_engines,
                             done ? done : &g->late)
               ? -1
               : 0;
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
    uint64_t a = um_align_up(g->hbm_next, GEN_HBM_ALIGN);
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
    uint64_t a = um_align_up(g->vmem_next, GEN_VMEM_ALIGN);
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
    return g->vmem_cap - um_align_up(g->vmem_next, GEN_VMEM_ALIGN);
}

/* ---- MXU tiles ------------------------------------------------------------------------ */

static int put_ldw(gen *g, unsigned mxu, uint64_t vmem, uint64_t k, uint64_t n, isa_dtype dt)
{
    isa_insn in = {.op = ISA_OP_MXU_LDW,
                   .arg = {[ISA_LDW_MXU] = mxu, [ISA_LDW_VMEM] = vmem, [ISA_LDW_K] = k,
                           [ISA_LDW_N] = n, [ISA_LDW_DTYPE] = dt}};
    return gen_put(g, &in);
}

static int put_mm(gen *g, unsigned mxu, uint64_t src, uint64_t dst, uint64_t m, isa_dtype dt,
                  int acc, unsigned wait, unsigned signal)
{
    isa_insn in = {.op = ISA_OP_MXU_MATMUL,
                   .wait = (uint16_t)wait,
                   .signal = (uint16_t)signal,
                   .arg = {[ISA_MM_MXU] = mxu, [ISA_MM_SRC] = src, [ISA_MM_DST] = dst, [ISA_MM_M] = m,
                           [ISA_MM_DTYPE] = dt, [ISA_MM_ACC] = acc ? 1 : 0}};
    return gen_put(g, &in);
}

/* VMEM layouts used with the MXU (element offsets):
 *   operand  [m][K]  stored k-tile-major: k-tile t at t*R*m, a contiguous m x kw_t block
 *   weights  [K][N]  stored n-strip-major: strip j at j*C*K, within it k-tile t at t*R*nw_j
 *   result   [m][N]  fp32, n-strip-major: strip j at j*C*m, a contiguous m x nw_j block */
static uint64_t tile_w(uint64_t tot, uint64_t t, uint64_t size)
{
    return um_min(size, tot - t * size);
}

/* Lane GEMMs emitted interleaved: tile x of every lane before tile x+1 of any, so each MXU's
 * queue (core.queue_depth deep) fills in parallel and the dispatcher never waits for one
 * lane's long sequence to drain before the next lane can start. Each lane keeps its own
 * order (its GEMMs run on its own MXU). */
#define LANE_MAX_MM 3
#ifndef LANE_BURST
#define LANE_BURST 4 /* tiles of one lane per turn */
#endif
typedef struct lane_spec {
    uint64_t src, m, K, N, w, dst;
    int acc0;
    isa_dtype dt;
    unsigned wait, signal;
} lane_spec;

typedef struct lane_batch {
    lane_spec mm[32][LANE_MAX_MM];
    unsigned n[32];
} lane_batch;

static void lb_add(lane_batch *lb, uint64_t lane, lane_spec sp)
{
    lb->mm[lane][lb->n[lane]++] = sp;
}

static uint64_t lb_tiles(const gen *g, const lane_spec *sp)
{
    return um_cdiv(sp->N, g->c->mxu_cols) * um_cdiv(sp->K, g->c->mxu_rows);
}

static int lb_emit(gen *g, lane_batch *lb, uint64_t lanes)
{
    const uint64_t R = g->c->mxu_rows, C = g->c->mxu_cols;
    uint64_t cur[32] = {0}, pos[32] = {0};
    for (int more = 1; more;) {
        more = 0;
        for (uint64_t i = 0; i < lanes; i++) {
            for (uint64_t burst = 0; burst < LANE_BURST; burst++) {
                while (cur[i] < lb->n[i] && pos[i] >= lb_tiles(g, &lb->mm[i][cur[i]])) {
                    cur[i]++;
                    pos[i] = 0;
                }
                if (cur[i] >= lb->n[i])
                    break;
                more = 1;
                const lane_spec *sp = &lb->mm[i][cur[i]];
                uint64_t kt = um_cdiv(sp->K, R), nt = um_cdiv(sp->N, C), x = pos[i]++;
                uint64_t j = x / kt, t = x % kt, nw = tile_w(sp->N, j, C), kw = tile_w(sp->K, t, R);
                int last = j == nt - 1 && t == kt - 1;
                if (put_ldw(g, (unsigned)i,
                            sp->w + gen_dt_bytes(sp->dt, j * C * sp->K + t * R * nw), kw, nw,
                            sp->dt) ||
                    put_mm(g, (unsigned)i, sp->src + gen_dt_bytes(sp->dt, t * R * sp->m),
                           sp->dst + (j * C * sp->m) * 4, sp->m, sp->dt, sp->acc0 || t > 0,
                           x == 0 ? sp->wait : 0, last ? sp->signal : 0))
                    return -1;
            }
        }
    }
    memset(lb->n, 0, sizeof lb->n);
    return 0;
}

/* ---- GEMM tiler ------------------------------------------------------------------------ */

typedef struct gemm_state {
    gen_gemm_args a;
    gen_gemm_plan p;
    uint64_t nmb, nkc, nng, steps;
    uint64_t nbuf; /* streamed operand buffers: step s uses buffer s % nbuf */
    uint64_t abuf[IR_GEMM_NBUF_MAX], wbuf[IR_GEMM_NBUF_MAX], cbuf[2], obuf[2], ebuf[2];
    gen_fence ready[IR_GEMM_NBUF_MAX], done[IR_GEMM_NBUF_MAX], wb[2];
} gemm_state;

/* Step s -> (n-group, m-block, k-chunk); k-chunk innermost so a C block stays in VMEM;
 * column groups outer, or row blocks outer (m_outer, with a resident A panel). */
/* Step s's block: column group gi, row block mi, k-chunk ki, and where each starts (m0, k0,
 * n0) and how wide it is (mr, kcw, ngw; the last of each is cut to the matrix). */
typedef struct {
    uint64_t gi, mi, ki;
    uint64_t m0, mr, k0, kcw, n0, ngw;
} gemm_tile;

static gemm_tile gemm_at(const gemm_state *st, uint64_t s)
{
    gemm_tile b, *t = &b;
    t->ki = s % st->nkc;
    if (st->p.m_outer) {
        t->gi = (s / st->nkc) % st->nng;
        t->mi = s / (st->nkc * st->nng);
    } else {
        t->mi = (s / st->nkc) % st->nmb;
        t->gi = s / (st->nkc * st->nmb);
    }
    t->m0 = t->mi * st->p.mt;
    t->mr = tile_w(st->a.m, t->mi, st->p.mt);
    t->k0 = t->ki * st->p.kc;
    t->kcw = tile_w(st->a.k, t->ki, st->p.kc);
    t->n0 = t->gi * st->p.ng;
    t->ngw = tile_w(st->a.n, t->gi, st->p.ng);
    return b;
}

/* VMEM of step s's A chunk and B chunk: buffer s % nbuf of the streamed operand, or chunk
 * ki of the resident panel of its row block (A) or column group (B), double-buffered. */
static uint64_t gemm_abuf(const gemm_state *st, uint64_t s, uint64_t mi, uint64_t ki)
{
    if (st->p.a_resident)
        return st->abuf[mi % 2] + gen_dt_bytes(st->a.dt, ki * st->p.mt * st->p.kc);
    return st->abuf[s % st->nbuf];
}

static uint64_t gemm_wbuf(const gemm_state *st, uint64_t s, uint64_t gi, uint64_t ki)
{
    if (st->p.w_resident)
        return st->wbuf[gi % 2] + gen_dt_bytes(st->a.dt, ki * st->p.kc * st->p.ng);
    return st->wbuf[s % st->nbuf];
}

/* A strided operand load split by whole rows into up to dma.engines DMAs of at least
 * 4 x dma.chunk_bytes each, so that a big load runs on several engines at once (one
 * engine keeps only dma.outstanding chunks in flight).
 *
 * HBM tensors use the TPU's tiled layout: tiles of 8 rows of 32-bit words by 128 lanes
 * (T = 32 / bits x 8 rows: 16 for bf16, 32 for 8-bit types), a tile row's tiles stored one
 * after the other. A window of whole tiles therefore reads T rows' worth of its columns as
 * one contiguous run, one run per tile row (T x pitch apart). */
static uint64_t tile_rows(isa_dtype dt)
{
    unsigned bits = isa_dtype_bits(dt);
    return bits >= 32 ? 8 : 8 * 32 / bits;
}

static int gemm_load(gen *g, uint64_t hbm, uint64_t vmem, uint64_t rows, uint64_t rowb,
                     uint64_t pitchb, isa_dtype dt, gen_fence *f)
{
    uint64_t T = tile_rows(dt);
    if (rows % T == 0 && rowb % gen_dt_bytes(dt, 128) == 0) {
        rows /= T;
        rowb *= T;
        pitchb *= T;
    }
    uint64_t bytes = rows * rowb, minb = 4 * g->c->dma_chunk_bytes;
    uint64_t parts = um_min(um_min(g->c->dma_engines, rows), um_max(1, bytes / minb));
    uint64_t per = um_cdiv(rows, parts);
    for (uint64_t r0 = 0; r0 < rows; r0 += per) {
        uint64_t n = um_min(per, rows - r0);
        if (gen_dma(g, 0, hbm + r0 * pitchb, vmem + r0 * rowb, n * rowb, rowb, pitchb, 0,
                    gen_fence_sig(g, f)))
            return -1;
    }
    return 0;
}

/* Issue step s's operand loads (A and B chunks, unless resident), signalling its READY
 * fence. */
static int gemm_inputs(gen *g, gemm_state *st, uint64_t s)
{
    const gemm_tile tl = gemm_at(st, s);
    const gen_gemm_args *a = &st->a;
    uint64_t ab = gen_dt_bytes(a->dt, 1);
    gen_fence *f = &st->ready[s % st->nbuf];
    /* One DMA per operand: whole row runs from HBM (long bursts), written into VMEM in the
     * MXU tile layout (TPU DMAs tile as they write). */
    if (st->p.a_implicit) {
        /* Implicit GEMM: the chunk's patch rows straight from the input, one run of a_block
         * bytes per output pixel, a_stride apart (wrapping inside the input). */
        uint64_t bytes = tl.mr * tl.kcw * ab, blk = st->p.a_block, str = st->p.a_stride;
        uint64_t extent = (um_cdiv(bytes, blk) - 1) * str + blk;
        uint64_t room = a->a_span > extent ? a->a_span - extent + 1 : 1;
        if (gen_dma(g, 0, a->a + (tl.m0 * str + tl.k0 * ab) % room, gemm_abuf(st, s, tl.mi, tl.ki), bytes, blk,
                    str, 0, gen_fence_sig(g, f)))
            return -1;
    }
    /* A resident panel is loaded by the first group (A) or block (B) that uses it. */
    if (!st->p.a_implicit && !(st->p.a_resident && tl.gi > 0) &&
        gemm_load(g, a->a + (tl.m0 * a->lda + tl.k0) * ab, gemm_abuf(st, s, tl.mi, tl.ki), tl.mr, tl.kcw * ab,
                  a->lda * ab, a->dt, f))
        return -1;
    if (st->p.w_resident && tl.mi > 0)
        return 0;
    if (st->p.b_blocked) /* chunk (tl.ki, tl.gi) of a blocked weight: one contiguous run */
        return gemm_load(g, a->b + (tl.n0 * a->k + tl.k0 * tl.ngw) * ab, gemm_wbuf(st, s, tl.gi, tl.ki), tl.kcw,
                         tl.ngw * ab, tl.ngw * ab, a->dt, f);
    if (gemm_load(g, a->b + (tl.k0 * a->ldb + tl.n0) * ab, gemm_wbuf(st, s, tl.gi, tl.ki), tl.kcw, tl.ngw * ab,
                  a->ldb * ab, a->dt, f))
        return -1;
    return 0;
}

static int gemm_compute(gen *g, gemm_state *st, uint64_t s, gemm_tile tl)
{
    const uint64_t R = g->c->mxu_rows, C = g->c->mxu_cols, P = cfg_mxu_total(g->c);
    const gen_gemm_args *a = &st->a;
    uint64_t nsub = um_cdiv(tl.ngw, C), msub = um_min(st->p.msub, tl.mr);
    uint64_t msz = um_cdiv(tl.mr, msub);
    msub = um_cdiv(tl.mr, msz);
    uint64_t units = nsub * msub, kts = um_cdiv(tl.kcw, R);
    uint64_t ab = gen_dt_bytes(a->dt, 1);
    for (uint64_t t = 0; t < kts; t++) {
        uint64_t kw = tile_w(tl.kcw, t, R);
        for (uint64_t u = 0; u < units; u++) {
            uint64_t j = u % nsub, si = u / nsub;
            uint64_t nw = tile_w(tl.ngw, j, C);
            uint64_t r0 = si * msz, rows = tile_w(tl.mr, si, msz);
            unsigned mxu = (unsigned)(u % P);
            int last = t == kts - 1 && u + P >= units;
            uint64_t w = gemm_wbuf(st, s, tl.gi, tl.ki) + (j * C * tl.kcw + t * R * nw) * ab;
            uint64_t src = gemm_abuf(st, s, tl.mi, tl.ki) + (t * R * tl.mr + r0 * kw) * ab;
            uint64_t dst = st->cbuf[(s / st->nkc) % 2] + (j * C * tl.mr + r0 * nw) * 4;
            if (put_ldw(g, mxu, w, kw, nw, a->dt) ||
                put_mm(g, mxu, src, dst, rows, a->dt, tl.ki > 0 || t > 0, 0,
                       last ? gen_fence_sig(g, &st->done[s % st->nbuf]) : 0))
                return -1;
        }
    }
    return 0;
}

/* Write back the C block finished by step s (its last k-chunk), whose tile is tl. */
static int gemm_writeback(gen *g, gemm_state *st, uint64_t s, gemm_tile tl)
{
    const gen_gemm_args *a = &st->a;
    uint64_t ob = gen_dt_bytes(a->out_dt, 1);
    uint64_t cb = (s / st->nkc) % 2; /* C buffers alternate per block */
    gen_fence *wb = &st->wb[cb];
    uint64_t cv = st->cbuf[cb], hbm = a->c + (tl.m0 * a->ldc + tl.n0) * ob, n = tl.mr * tl.ngw;
    if (a->nepi) {
        /* Fused epilogue: the block's tile of the extra input (bias, residual) arrives by
         * DMA into the buffer after the accumulator (where a binary op reads its second
         * operand), then the ops run in place on the fp32 block. */
        unsigned w0 = 0;
        if (a->has_ex) {
            uint64_t xb = gen_dt_bytes(a->ex_dt, 1);
            if (gen_dma(g, 0, a->ex + (tl.m0 * a->ldx + tl.n0) * xb, st->ebuf[cb], n * xb, tl.ngw * xb,
                        a->ldx * xb, 0, SEM_D2V + 1))
                return -1;
            w0 = SEM_D2V + 1;
        }
        for (unsigned i = 0; i < a->nepi; i++) {
            const ir_vop *v = &a->epi[i];
            uint64_t src = v->src == 1 ? st->ebuf[cb] : cv, dst = v->dst == 1 ? st->ebuf[cb] : cv;
            if (vchain(g, i == 0, w0, v->op, src, dst, n, v->dt, v->width))
                return -1;
        }
        if (a->out_dt == ISA_DT_FP32) {
            if (vchain_end(g, SEM_V2D + 1))
                return -1;
            return gen_dma(g, 1, hbm, cv, n * 4, tl.ngw * 4, a->ldc * 4, SEM_V2D + 1,
                           gen_fence_sig(g, wb));
        }
        if (vchain(g, 0, 0, ISA_OP_V_CAST, cv, st->obuf[cb], n, ISA_DT_FP32, a->out_dt) ||
            vchain_end(g, SEM_V2D + 1))
            return -1;
        return gen_dma(g, 1, hbm, st->obuf[cb], n * ob, tl.ngw * ob, a->ldc * ob, SEM_V2D + 1,
                       gen_fence_sig(g, wb));
    }
    if (a->out_dt == ISA_DT_FP32)
        return gen_dma(g, 1, hbm, cv, n * 4, tl.ngw * 4, a->ldc * 4, 0, gen_fence_sig(g, wb));
    uint64_t ov = st->obuf[cb];
    return gen_vec(g, ISA_OP_V_CAST, cv, ov, n, ISA_DT_FP32, a->out_dt, 0, SEM_V2D + 1) ||
                   gen_dma(g, 1, hbm, ov, n * ob, tl.ngw * ob, a->ldc * ob, SEM_V2D + 1,
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
    if (args->tile)
        st.p = *args->tile;
    else if (gen_gemm_plan_for(g->c, g->vmem_cap, st.a.m, st.a.n, st.a.k, st.a.dt, st.a.out_dt,
                               &st.p, &g->e)) {
        g->failed = 1;
        return -1;
    }
    const gen_gemm_plan *p = &st.p;
    /* The buffer after the accumulator: the extra input's tile, or the broadcast row a
     * binary epilogue op without one (a bias add) reads there. */
    int ebuf = st.a.has_ex;
    for (unsigned i = 0; i < st.a.nepi; i++)
        ebuf |= ir_vop_binary(st.a.epi[i].op);
    st.nbuf = p->nbuf ? p->nbuf : 2;
    if (st.nbuf < 2 || st.nbuf > IR_GEMM_NBUF_MAX)
        return gen_fail(g, "gen: gemm plan with %llu operand buffers (generator bug)",
                        (unsigned long long)st.nbuf);
    uint64_t abytes = gen_dt_bytes(st.a.dt, p->mt * (p->a_resident ? st.a.k : p->kc));
    uint64_t wbytes = gen_dt_bytes(st.a.dt, (p->w_resident ? st.a.k : p->kc) * p->ng);
    for (int i = 0; i < 2; i++) {
        if (gen_vmem_alloc(g, abytes, &st.abuf[i]) || gen_vmem_alloc(g, wbytes, &st.wbuf[i]) ||
            gen_vmem_alloc(g, p->mt * p->ng * 4, &st.cbuf[i]) ||
            (ebuf && gen_vmem_alloc(g, p->mt * p->ng * 4, &st.ebuf[i])) ||
            (st.a.out_dt != ISA_DT_FP32 &&
             gen_vmem_alloc(g, gen_dt_bytes(st.a.out_dt, p->mt * p->ng), &st.obuf[i])))
            return -1;
        st.wb[i].sem = -1;
    }
    /* Buffers beyond the second, for the streamed operands only (a resident panel stays
     * double-buffered: the next block's panel loads while this one is used). */
    for (uint64_t i = 2; i < st.nbuf; i++)
        if ((!p->a_resident && gen_vmem_alloc(g, abytes, &st.abuf[i])) ||
            (!p->w_resident && gen_vmem_alloc(g, wbytes, &st.wbuf[i])))
            return -1;
    for (uint64_t i = 0; i < st.nbuf; i++)
        st.ready[i].sem = st.done[i].sem = -1;
    st.nmb = um_cdiv(st.a.m, p->mt);
    st.nkc = um_cdiv(st.a.k, p->kc);
    st.nng = um_cdiv(st.a.n, p->ng);
    st.steps = st.nmb * st.nkc * st.nng;
    /* Software pipeline over B = nbuf operand buffers: the inputs of steps 0..B-1 are issued
     * up front; step s + B - 1's inputs go into the buffers step s-1 used, once step s-1's
     * DONE fence has passed, which is waited on after step s's matmuls are queued, so the
     * dispatcher stalls with step s queued. A step's loads are thus issued when the step
     * B steps before it finishes, and with steady period p (docs/generators.md, "GEMM
     * tiling"):
     *   B p >= MXU time of a step + its last matmul's fill/drain + its loads' latency and
     *          transfer time,
     * so B = 2 serialises loads and compute whenever a step's loads take about as long as
     * its matmuls; deeper buffering keeps B - 1 steps of loads in flight. */
    const uint64_t B = st.nbuf;
    for (uint64_t s = 0; s < B && s < st.steps; s++)
        if (gemm_inputs(g, &st, s))
            return -1;
    uint64_t blocks = 0; /* C blocks started */
    for (uint64_t s = 0; s < st.steps; s++) {
        const gemm_tile tl = gemm_at(&st, s);
        if (gen_fence_wait(g, &st.ready[s % B]))
            return -1;
        if (tl.ki == 0) {
            /* This C buffer's previous block must be written back before acc=0 reuses it. */
            if (blocks >= 2 && gen_fence_wait(g, &st.wb[(s / st.nkc) % 2]))
                return -1;
            blocks++;
        }
        /* Memory-bound plans (loads_first) issue step s+B-1's loads (into step s-1's
         * buffers) and step s-1's write-back before step s's matmuls: the MXU queues
         * (core.queue_depth) are short next to a step's tiles, and the dispatcher would
         * otherwise reach the loads only when the MXUs had nearly finished step s,
         * serialising loads and compute. Compute-bound plans emit the matmuls first, so the
         * MXUs never drain between steps. The loads go to the DMA queue before the
         * write-back, whose DMA waits for the vector unit's cast. */
        if (!p->loads_first && gemm_compute(g, &st, s, tl))
            return -1;
        if (s >= 1) {
            const gemm_tile pt = gemm_at(&st, s - 1);
            if (gen_fence_wait(g, &st.done[(s - 1) % B]))
                return -1;
            if (s + B - 1 < st.steps && gemm_inputs(g, &st, s + B - 1))
                return -1;
            if (pt.ki == st.nkc - 1 && gemm_writeback(g, &st, s - 1, pt))
                return -1;
        }
        if (p->loads_first && gemm_compute(g, &st, s, tl))
            return -1;
    }
    if (gen_fence_wait(g, &st.done[(st.steps - 1) % B]) ||
        gemm_writeback(g, &st, st.steps - 1, gemm_at(&st, st.steps - 1)) ||
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
    uint64_t want = um_min(8u << 20, um_max(256u << 10, um_align_up(um_cdiv(s->n, 8), 1024)));
    st.ch = um_min(s->n, um_min(fit, want));
    if (st.ch == 0)
        return gen_fail(g, "gen: VMEM too small for a streamed vector pass");
    st.nch = um_cdiv(s->n, st.ch);
    uint64_t o = 0;
    for (unsigned i = 0; i < nbuf + scratch; i++) {
        st.off[i] = o;
        uint64_t b = i < s->nin ? gen_dt_bytes(s->in_dt[i], st.ch)
                     : i < nbuf ? gen_dt_bytes(s->out_dt[i - s->nin], st.ch)
                                : st.ch * 4;
        o += um_align_up(b, GEN_VMEM_ALIGN);
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
        t += um_align_up(sz[i], GEN_VMEM_ALIGN);
    return 2 * t;
}

static uint64_t attn_target_lanes(const cfg *c)
{
    return um_min(cfg_mxu_total(c), GEN_ATTN_LANES);
}

uint64_t gen_attn_block(const cfg *c, uint64_t seq, uint64_t kv_len, uint64_t head_dim,
                        isa_dtype dt, int backward)
{
    static const uint64_t ms[] = {512, 256, 128, 64, 32, 16, 8, 4, 2, 1};
    uint64_t vmem = (uint64_t)cfg_vmem_total_bytes(c), target = attn_target_lanes(c);
    uint64_t best = 0, best_score = 0;
    for (unsigned i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        uint64_t m = um_min(ms[i], seq);
        if (i > 0 && m >= um_min(ms[i - 1], seq))
            continue;
        uint64_t fit = vmem / attn_lane_bytes(m, kv_len, head_dim, dt, backward);
        uint64_t score = um_min(fit, target) * um_min(m, c->mxu_rows);
        if (score > best_score) {
            best = m;
            best_score = score;
        }
    }
    return best;
}

static uint64_t attn_kv(uint64_t kv_len, uint64_t seq, int causal, uint64_t q0, uint64_t m)
{
    return causal ? um_min(kv_len, kv_len - seq + q0 + m) : kv_len;
}

uint64_t gen_attn_flops(const cfg *c, uint64_t seq, uint64_t kv_len, uint64_t head_dim, int causal,
                        isa_dtype dt, int backward)
{
    uint64_t mq = gen_attn_block(c, seq, kv_len, head_dim, dt, backward), f = 0;
    if (!mq)
        return 0;
    for (uint64_t q0 = 0; q0 < seq; q0 += mq) {
        uint64_t m = um_min(mq, seq - q0);
        f += m * attn_kv(kv_len, seq, causal, q0, m) * head_dim * (backward ? 10 : 4);
    }
    return f;
}

typedef struct attn_state {
    const gen_attn_args *a;
    uint64_t qbs, qrs, qhs;    /* q/o/dout/dq element strides: batch, query row, head */
    uint64_t grp;              /* query heads per key/value head (grouped-query attention) */
    uint64_t kvbs, kvrs, kvhs; /* k/v/dk/dv element strides: batch, key row, kv head */
    uint64_t mq, nq, lanes, pairs, rounds;
    uint64_t D; /* buffer sets: 2, or 3 for the software-pipelined forward */
    uint64_t buf[GEN_ATTN_LANES][3][AB_N];
    gen_fence ready[3], done[3], wb[3];
} attn_state;

/* Lane i's item in round r: query block qi (rows q0.., m of them, against L keys) of one
 * (batch, head) pair, and the byte offsets of its query rows and its key/value head. */
typedef struct {
    uint64_t qi, q0, m, L, qrow, krow;
} attn_lane;

/* Fill lane i's item in round r; 0 if the lane has none (qi, q0, m and L are set anyway). */
static int attn_lane_at(const attn_state *st, uint64_t i, uint64_t r, attn_lane *l)
{
    const gen_attn_args *a = st->a;
    uint64_t p = i + st->lanes * (r / st->nq), ab = gen_dt_bytes(a->dt, 1);
    l->qi = r % st->nq;
    l->q0 = l->qi * st->mq;
    l->m = um_min(st->mq, a->seq - l->q0);
    l->L = attn_kv(a->kv_len, a->seq, a->causal, l->q0, l->m);
    if (p >= st->pairs)
        return 0;
    uint64_t b = p / a->heads, h = p % a->heads;
    l->qrow = (b * st->qbs + l->q0 * st->qrs + h * st->qhs) * ab;
    l->krow = (b * st->kvbs + h / st->grp * st->kvhs) * ab;
    return 1;
}

/* rows x head_dim elements between HBM at hbm (query rows, or key rows with kv) and VMEM. */
static int attn_dma(gen *g, const attn_state *st, int out, uint64_t hbm, uint64_t vmem,
                    uint64_t rows, int kv, gen_fence *f)
{
    uint64_t ab = gen_dt_bytes(st->a->dt, 1), hdb = st->a->head_dim * ab;
    return gen_dma(g, out, hbm, vmem, rows * hdb, hdb, (kv ? st->kvrs : st->qrs) * ab, 0,
                   gen_fence_sig(g, f));
}

/* Round r's loads (q, k, v; backward also dout and o, back to back in one buffer) signalling
 * its READY fence, or its write-backs (o; backward dq, and dk, dv after a pair's last query
 * block) signalling its WB fence. */
static int attn_io(gen *g, attn_state *st, uint64_t r, int out)
{
    const gen_attn_args *a = st->a;
    gen_fence *f = out ? &st->wb[r % st->D] : &st->ready[r % st->D];
    for (uint64_t i = 0; i < st->lanes; i++) {
        attn_lane l;
        if (!attn_lane_at(st, i, r, &l))
            continue;
        uint64_t *bf = st->buf[i][r % st->D], *pb = st->buf[i][(r / st->nq) % 2];
        uint64_t mb = l.m * a->head_dim * gen_dt_bytes(a->dt, 1);
        if (!out) {
            if (attn_dma(g, st, 0, a->q + l.qrow, bf[AB_Q], l.m, 0, f) ||
                attn_dma(g, st, 0, a->k + l.krow, bf[AB_K], l.L, 1, f) ||
                attn_dma(g, st, 0, a->v + l.krow, bf[AB_V], l.L, 1, f) ||
                (a->backward && (attn_dma(g, st, 0, a->dout + l.qrow, bf[AB_DOO], l.m, 0, f) ||
                                 attn_dma(g, st, 0, a->o + l.qrow, bf[AB_DOO] + mb, l.m, 0, f))))
                return -1;
        } else if (!a->backward) {
            if (attn_dma(g, st, 1, a->o + l.qrow, bf[AB_O], l.m, 0, f))
                return -1;
        } else if (attn_dma(g, st, 1, a->dq + l.qrow, bf[AB_DQ], l.m, 0, f) ||
                   (l.qi == st->nq - 1 &&
                    (attn_dma(g, st, 1, a->dk + l.krow, pb[AB_DK], a->kv_len, 1, f) ||
                     attn_dma(g, st, 1, a->dv + l.krow, pb[AB_DV], a->kv_len, 1, f))))
            return -1;
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
        VC(ISA_OP_V_SELECT, S, S, m * um_min(m, L), F, 0);
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

/* Parts of a forward round, emitted in the order the caller asks: QK^T (MXU), softmax
 * (vector unit), PV (MXU), cast (vector unit, signals the round's done fence). Each unit's
 * part of round r+1 may come before the other unit's part of round r as long as each
 * lane's MXU->VPU and VPU->MXU semaphore chains are produced and consumed in the same
 * order. The backward always runs whole (ATT_ALL). */
enum { ATT_QK = 1, ATT_SM = 2, ATT_PV = 4, ATT_CAST = 8, ATT_ALL = 15 };

static int attn_compute(gen *g, attn_state *st, uint64_t r, int parts)
{
    const gen_attn_args *a = st->a;
    const isa_dtype F = ISA_DT_FP32, dt = a->dt;
    const uint64_t hd = a->head_dim;
    gen_fence *done = &st->done[r % st->D];
    uint64_t m[GEN_ATTN_LANES], L[GEN_ATTN_LANES], qi[GEN_ATTN_LANES];
    int live[GEN_ATTN_LANES], diag[GEN_ATTN_LANES];
    lane_batch lb;
    memset(lb.n, 0, sizeof lb.n);
    for (uint64_t i = 0; i < st->lanes; i++) {
        attn_lane l;
        live[i] = attn_lane_at(st, i, r, &l);
        qi[i] = l.qi;
        m[i] = live[i] ? l.m : 0;
        L[i] = live[i] ? l.L : 0;
        diag[i] = a->causal;
    }
#define LANES                                                                                      \
    for (uint64_t i = 0; i < st->lanes; i++)                                                       \
        if (live[i])
#define BF(x) st->buf[i][r % st->D][x]
    unsigned mv, vm;
    if (!a->backward) {
        if (parts & ATT_QK) {
            LANES
            {
                mv = SEM_MV + 1 + (unsigned)i;
                lb_add(&lb, i,
                       (lane_spec){BF(AB_Q), m[i], hd, L[i], BF(AB_K), BF(AB_S), 0, dt, 0, mv});
            }
            if (lb_emit(g, &lb, st->lanes))
                return -1;
        }
        if (parts & ATT_SM) {
            LANES
            {
                if (attn_softmax(g, a, st->buf[i][r % st->D], m[i], L[i], diag[i], 0,
                                 SEM_MV + 1 + (unsigned)i) ||
                    vchain_end(g, SEM_VM + 1 + (unsigned)i))
                    return -1;
            }
        }
        if (parts & ATT_PV) {
            LANES
            {
                mv = SEM_MV + 1 + (unsigned)i;
                vm = SEM_VM + 1 + (unsigned)i;
                lb_add(&lb, i,
                       (lane_spec){BF(AB_S), m[i], L[i], hd, BF(AB_V), BF(AB_O), 0, dt, vm, mv});
            }
            if (lb_emit(g, &lb, st->lanes))
                return -1;
        }
        if (parts & ATT_CAST) {
            LANES
            {
                if (vchain(g, 1, SEM_MV + 1 + (unsigned)i, ISA_OP_V_CAST, BF(AB_O), BF(AB_O),
                           m[i] * hd, F, dt) ||
                    vchain_end(g, gen_fence_sig(g, done)))
                    return -1;
            }
        }
        return 0;
    }
    LANES
    {
        mv = SEM_MV + 1 + (unsigned)i;
        lb_add(&lb, i, (lane_spec){BF(AB_Q), m[i], hd, L[i], BF(AB_K), BF(AB_S), 0, dt, 0, mv});
        lb_add(&lb, i, (lane_spec){BF(AB_DOO), m[i], hd, L[i], BF(AB_V), BF(AB_DP), 0, dt, 0, mv});
    }
    if (lb_emit(g, &lb, st->lanes))
        return -1;
    LANES
    {
        mv = SEM_MV + 1 + (unsigned)i;
        uint64_t n = m[i] * L[i], sst = BF(AB_ST);
        if (attn_softmax(g, a, st->buf[i][r % st->D], m[i], L[i], diag[i], 1, mv) ||
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
        lb_add(&lb, i,
               (lane_spec){BF(AB_PT), L[i], m[i], hd, BF(AB_DOO), pb[AB_DV], acc, dt, vm, 0});
        lb_add(&lb, i,
               (lane_spec){BF(AB_DST), L[i], m[i], hd, BF(AB_Q), pb[AB_DK], acc, dt, vm, 0});
        lb_add(&lb, i, (lane_spec){BF(AB_DP), m[i], L[i], hd, BF(AB_K), BF(AB_DQ), 0, dt, 0, mv});
    }
    if (lb_emit(g, &lb, st->lanes))
        return -1;
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

/* The forward over three buffer sets: QK^T of round r+1 runs on the MXUs while the vector
 * unit does round r's softmax, and the loads of round r+2 while both compute. The MXU
 * queues are short (core.queue_depth) next to a round's tiles, so the dispatcher emits each
 * round's DMAs before its long MXU sequences: set (r+2) % 3 is reloaded as soon as round
 * r-1 (its previous user) is done, and a set's output buffer is rewritten only once the
 * write-back of round r-3 has read it (its wb fence). */
static int attn_pipelined(gen *g, attn_state *st)
{
    const uint64_t R = st->rounds;
    for (uint64_t r = 0; r < 3 && r < R; r++)
        if (attn_io(g, st, r, 0))
            return -1;
    if (gen_fence_wait(g, &st->ready[0]) || attn_compute(g, st, 0, ATT_QK | ATT_SM))
        return -1;
    /* Per round r: QK^T(r+1) and PV(r) on the MXUs, then softmax(r+1) and cast(r) on the
     * vector unit (dispatching the softmax first would block on the short vector queue
     * until QK^T(r+1) finishes, holding back PV(r)). */
    for (uint64_t r = 0; r < R; r++) {
        if (r >= 1 && (gen_fence_wait(g, &st->done[(r - 1) % 3]) || attn_io(g, st, r - 1, 1) ||
                       (r + 2 < R && attn_io(g, st, r + 2, 0))))
            return -1;
        if (r + 1 < R &&
            (gen_fence_wait(g, &st->ready[(r + 1) % 3]) || attn_compute(g, st, r + 1, ATT_QK)))
            return -1;
        if ((r >= 3 && gen_fence_wait(g, &st->wb[r % 3])) || attn_compute(g, st, r, ATT_PV) ||
            (r + 1 < R && attn_compute(g, st, r + 1, ATT_SM)) || attn_compute(g, st, r, ATT_CAST))
            return -1;
    }
    return gen_fence_wait(g, &st->done[(R - 1) % 3]) || attn_io(g, st, R - 1, 1) ||
                   gen_fence_wait(g, &st->wb[0]) || gen_fence_wait(g, &st->wb[1]) ||
                   gen_fence_wait(g, &st->wb[2])
               ? -1
               : 0;
}

int gen_attention(gen *g, const gen_attn_args *args)
{
    if (g->failed)
        return -1;
    gen_attn_args fa = *args;
    const gen_attn_args *a = &fa;
    uint64_t kvh = args->kv_heads ? args->kv_heads : args->heads;
    if (!kvh || args->heads % kvh)
        return gen_fail(g, "gen: attention with %llu heads over %llu kv heads (generator bug)",
                        (unsigned long long)args->heads, (unsigned long long)kvh);
    attn_state st = {.a = a,
                     .qbs = args->seq * args->ld,
                     .qrs = args->ld,
                     .qhs = args->head_dim,
                     .grp = args->heads / kvh,
                     .kvbs = args->kv_len * args->kv_ld,
                     .kvrs = args->kv_ld,
                     .kvhs = args->head_dim};
    if (args->kv_head_major) { /* one row of kv_ld elements per (batch, kv head) */
        st.kvrs = args->head_dim;
        st.kvhs = args->kv_ld;
        st.kvbs = kvh * st.kvhs;
    }
    if (st.grp > 1 && args->seq == 1 && !args->causal && !args->backward) {
        /* Decode with grouped-query attention: the group's query vectors (adjacent in the
         * row) form one block of grp rows against their shared keys and values, so the KV
         * cache is read once per kv head, not once per query head. */
        fa.heads = kvh;
        fa.seq = st.grp;
        st.qbs = args->ld;
        st.qrs = args->head_dim;
        st.qhs = st.grp * args->head_dim;
        st.grp = 1;
    }
    st.mq = gen_attn_block(g->c, a->seq, a->kv_len, a->head_dim, a->dt, a->backward);
    uint64_t per = st.mq ? attn_lane_bytes(st.mq, a->kv_len, a->head_dim, a->dt, a->backward) : 0;
    if (!st.mq || per > g->vmem_cap)
        return gen_fail(g,
                        "gen: attention with %llu keys of head_dim %llu does not fit in %llu "
                        "bytes of VMEM even one query row at a time",
                        (unsigned long long)a->kv_len, (unsigned long long)a->head_dim,
                        (unsigned long long)g->vmem_cap);
    st.pairs = a->batch * a->heads;
    st.nq = um_cdiv(a->seq, st.mq);
    st.lanes = um_min(um_min(attn_target_lanes(g->c), st.pairs), g->vmem_cap / per);
    st.rounds = um_cdiv(st.pairs, st.lanes) * st.nq;
    /* Forward with room for a third buffer set per lane (per counts two): pipelined. */
    st.D = !a->backward && st.rounds > 2 && st.lanes * (per / 2 * 3) <= g->vmem_cap ? 3 : 2;
    gen_vmem_reset(g);
    for (uint64_t i = 0; i < st.lanes; i++)
        for (uint64_t x = 0; x < st.D; x++) {
            uint64_t sz[AB_N];
            attn_sizes(st.mq, a->kv_len, a->head_dim, a->dt, a->backward, sz);
            for (int b = 0; b < AB_N; b++) {
                st.buf[i][x][b] = 0;
                if (sz[b] && gen_vmem_alloc(g, sz[b], &st.buf[i][x][b]))
                    return -1;
            }
        }
    for (int x = 0; x < 3; x++)
        st.ready[x].sem = st.done[x].sem = st.wb[x].sem = -1;
    if (st.D == 3)
        return attn_pipelined(g, &st);
    if (attn_io(g, &st, 0, 0) || (st.rounds > 1 && attn_io(g, &st, 1, 0)))
        return -1;
    for (uint64_t r = 0; r < st.rounds; r++) {
        if (gen_fence_wait(g, &st.ready[r % 2]) || (r >= 2 && gen_fence_wait(g, &st.wb[r % 2])) ||
            attn_compute(g, &st, r, ATT_ALL))
            return -1;
        if (r >= 1 && (gen_fence_wait(g, &st.done[(r - 1) % 2]) || attn_io(g, &st, r - 1, 1) ||
                       (r + 1 < st.rounds && attn_io(g, &st, r + 1, 0))))
            return -1;
    }
    return gen_fence_wait(g, &st.done[(st.rounds - 1) % 2]) ||
                   attn_io(g, &st, st.rounds - 1, 1) || gen_fence_wait(g, &st.wb[0]) ||
                   gen_fence_wait(g, &st.wb[1])
               ? -1
               : 0;
}
