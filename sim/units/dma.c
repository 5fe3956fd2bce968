/* dma.c - the chip's DMA unit: dma.engines engines, each running one HBM<->VMEM transfer at a
 * time as a pipeline of dma.chunk_bytes chunks with up to dma.outstanding in flight. Each
 * chunk reserves HBM time (hbm_access) and a VMEM bandwidth share (vmem_share) when it is
 * issued; HBM and VMEM sides stream concurrently, so a chunk completes at the later of the
 * two. Events are per chunk, never per byte: the unit keeps its engines' next steps (a
 * descriptor latency ending, a chunk completing) in one queue ordered by (time, engine,
 * slot) and has one kern_event, armed for the earliest. Everything due at one instant is
 * handled in that order, so the HBM reservations and VMEM shares made at one instant are
 * claimed by engine, then slot, whatever order the kernel runs same-time events in
 * (docs/architecture.md, "Same-instant semantics"). An engine's slots are made when it first
 * runs a transfer, so a configuration at the allowed maximum (dma.engines x dma.outstanding)
 * costs nothing for the engines a trace never uses. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>

#include "hbm.h"
#include "kernel.h"
#include "unit.h"
#include "vmem.h"
#include "umath.h"
#include "mem.h"

typedef struct dma dma;
typedef struct dma_engine dma_engine;

/* One in-flight chunk; due when its data has fully moved. */
typedef struct dma_slot {
    int busy; /* a chunk is in flight */
    uint64_t bytes;
    uint64_t done_ps; /* max(HBM completion, issue + VMEM time at its share) */
} dma_slot;

/* A step due at time t: key = engine x (outstanding + 1) for the end of the engine's
 * descriptor latency, + 1 + slot for a chunk completing in that slot. */
typedef struct dma_due {
    uint64_t t, key;
} dma_due;

struct dma_engine {
    dma *d;
    int active;
    uint32_t token;
    int is_write;                       /* dma.v2h writes HBM */
    uint64_t hbm, bytes, stride, block; /* block 0: contiguous */
    uint64_t issued, completed;         /* logical bytes */
    uint64_t t0_ps;                     /* first chunk issued (after the descriptor latency) */
    uint64_t frontier_ps;               /* latest completion of the chunks issued so far */
    uint64_t vmem_ps;                   /* part of the frontier's advance due to VMEM, not HBM */
    dma_slot *slots;                    /* dma.outstanding, NULL until its first transfer */
};

struct dma {
    unit u; /* first: the common unit state */
    unsigned nengines, outstanding;
    uint64_t chunk_bytes, latency_ps;
    double hbm_ps_per_byte; /* at peak HBM bandwidth */
    dma_engine *engines;
    unsigned nactive;
    kern_event *ev;         /* armed for the earliest due step */
    dma_due *due;           /* binary min-heap on (t, key), ndue of them */
    unsigned ndue; /* at most engines x (outstanding + 1) */
    size_t due_cap;
    uint64_t busy_since_ps;
    uint64_t bytes_read, bytes_written, chunks, hbm_requests;
};

static const stats_def dma_defs[] = {
    STATS_COUNTER(dma, bytes_read, "B", "bytes read from HBM (dma.h2v)"),
    STATS_COUNTER(dma, bytes_written, "B", "bytes written to HBM (dma.v2h)"),
    STATS_COUNTER(dma, chunks, "", "chunks issued"),
    STATS_COUNTER(dma, hbm_requests, "", "hbm_access calls (one per chunk or block)"),
};

/* HBM side of logical bytes [off, off+n) of the transfer, all requests issued at now. A
 * strided transfer (block > 0, stride != block) is split at block boundaries: logical byte
 * o lives at hbm + (o / block) x stride + o % block. */
static uint64_t dma_hbm(dma_engine *e, uint64_t off, uint64_t n, uint64_t now)
{
    dma *d = e->d;
    struct hbm *h = d->u.env->hbm;
    if (!e->block || e->stride == e->block) {
        d->hbm_requests++;
        return hbm_access(h, e->hbm + off, n, e->is_write, now);
    }
    /* Only the first piece may start inside a block and only the last may end inside one;
     * the whole blocks between go to HBM as one strided request (same timing as one request
     * per block, at a cost per row touched). */
    uint64_t done = now;
    uint64_t in_blk = off % e->block;
    uint64_t addr = e->hbm + off / e->block * e->stride + in_blk;
    if (in_blk) {
        uint64_t piece = e->block - in_blk < n ? e->block - in_blk : n;
        done = um_max(done, hbm_access(h, addr, piece, e->is_write, now));
        d->hbm_requests++;
        n -= piece;
        addr += e->stride - in_blk;
    }
    uint64_t whole = n / e->block;
    if (whole) {
        done =
            um_max(done, hbm_access_strided(h, addr, e->block, e->stride, whole, e->is_write, now));
        d->hbm_requests += whole;
        n -= whole * e->block;
        addr += whole * e->stride;
    }
    if (n) {
        done = um_max(done, hbm_access(h, addr, n, e->is_write, now));
        d->hbm_requests++;
    }
    return done;
}

static int dma_due_less(const dma_due *a, const dma_due *b)
{
    return a->t < b->t || (a->t == b->t && a->key < b->key);
}

/* Put x into the heap (room for it is there); returns its index (0: the earliest). */
static unsigned dma_due_insert(dma *d, dma_due x)
{
    unsigned i = d->ndue++;
    while (i && dma_due_less(&x, &d->due[(i - 1) / 2])) {
        d->due[i] = d->due[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    d->due[i] = x;
    return i;
}

/* Queue a step due at t (>= now); arm the unit's event when it becomes the earliest. */
static void dma_due_push(dma *d, uint64_t t, uint64_t key)
{
    if (mem_grow(&d->due, &d->due_cap, (size_t)d->ndue + 1, sizeof *d->due, 16)) {
        kern_fail_nomem(); /* the step is dropped; the run is reported as failed */
        return;
    }
    dma_due x = {t, key};
    if (!dma_due_insert(d, x))
        kern_notify_at(d->ev, t);
}

static dma_due dma_due_pop(dma *d)
{
    dma_due top = d->due[0], x = d->due[--d->ndue];
    unsigned n = d->ndue, i = 0;
    for (;;) {
        unsigned l = 2 * i + 1, m = i;
        const dma_due *best = &x;
        if (l < n && dma_due_less(&d->due[l], best)) {
            m = l;
            best = &d->due[l];
        }
        if (l + 1 < n && dma_due_less(&d->due[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        d->due[i] = d->due[m];
        i = m;
    }
    if (n)
        d->due[i] = x;
    return top;
}

/* The engine's last chunk was just issued: nothing but its finish, when its last chunk
 * completes (the frontier), is observable from here on (its other chunks' completions only
 * count bytes, which nobody reads during the run). So its chunk steps are replaced by one, at
 * the frontier, keyed by the highest slot completing then: it runs where that slot's step ran
 * (by engine, then slot), and dma_slot_done counts all the engine's bytes there. Saves a
 * kernel event per distinct completion time of an engine's tail chunks. */
static void dma_engine_tail(dma_engine *e)
{
    dma *d = e->d;
    uint64_t ei = (uint64_t)(e - d->engines), base = ei * (d->outstanding + 1u);
    unsigned last = 0, n = d->ndue;
    for (unsigned i = 0; i < d->outstanding; i++)
        if (e->slots[i].busy && e->slots[i].done_ps == e->frontier_ps)
            last = i;
    d->ndue = 0; /* rebuild the heap without the engine's chunk steps */
    for (unsigned i = 0; i < n; i++)
        if (d->due[i].key <= base || d->due[i].key > base + d->outstanding)
            (void)dma_due_insert(d, d->due[i]);
    /* It may be armed for a step just removed; dma_event, which this runs under, re-arms it
     * for the earliest step when it is done. */
    kern_cancel(d->ev);
    dma_due_push(d, e->frontier_ps, base + 1 + last);
}

/* Issue the next chunk into slot s at now:
 *   hbm_done  = hbm_access(...) (per block piece for strided transfers)
 *   done      = now + vmem_share(bytes, hbm_done - now)   (vmem.h: at least the HBM time;
 *               the chunk holds the VMEM rate bytes / (done - now), what HBM feeds it at)
 * The engine's frontier (latest completion so far) advances by max(0, done - frontier);
 * the part of that advance beyond max(frontier, hbm_done) is charged to VMEM. */
static void dma_issue(dma_engine *e, dma_slot *s, uint64_t now)
{
    dma *d = e->d;
    uint64_t n = e->bytes - e->issued;
    if (n > d->chunk_bytes)
        n = d->chunk_bytes;
    uint64_t hd = dma_hbm(e, e->issued, n, now);
    s->done_ps = now + vmem_share(d->u.env->vmem, n, hd > now ? hd - now : 0, now);
    s->bytes = n;
    s->busy = 1;
    if (e->is_write) /* HBM write: the chunk is read from VMEM (energy model counters) */
        d->u.vmem_rd_bytes = stats_add_sat(d->u.vmem_rd_bytes, n, NULL);
    else
        d->u.vmem_wr_bytes = stats_add_sat(d->u.vmem_wr_bytes, n, NULL);
    e->issued += n;
    d->chunks++;
    uint64_t floor = um_max(e->frontier_ps, hd);
    if (s->done_ps > floor)
        e->vmem_ps += s->done_ps - floor;
    e->frontier_ps = um_max(e->frontier_ps, s->done_ps);
    uint64_t ei = (uint64_t)(e - d->engines), si = (uint64_t)(s - e->slots);
    if (e->issued == e->bytes)
        dma_engine_tail(e);
    else
        dma_due_push(d, s->done_ps, ei * (d->outstanding + 1u) + 1 + si);
}

/* The descriptor latency has elapsed: fill every slot. */
static void dma_engine_begin(dma_engine *e, uint64_t now)
{
    e->t0_ps = now;
    e->frontier_ps = now;
    for (unsigned i = 0; i < e->d->outstanding && e->issued < e->bytes; i++)
        dma_issue(e, &e->slots[i], now);
}

/* Last chunk done. Stall split of the streaming time T = end - t0 (the latency excluded):
 *   stall_vmem = the frontier advance charged to VMEM (dma_issue)
 *   stall_hbm  = max(0, T - stall_vmem - bytes / HBM peak)
 * The engine is freed before unit_finish, which may start the next instruction on it. */
static void dma_engine_finish(dma_engine *e, uint64_t now)
{
    dma *d = e->d;
    uint64_t t = now - e->t0_ps;
    double ideal = (double)e->bytes * d->hbm_ps_per_byte;
    uint64_t vm = e->vmem_ps < t ? e->vmem_ps : t;
    double hbm_stall = (double)(t - vm) - ideal;
    d->u.stall_vmem_ps += vm;
    d->u.stall_hbm_ps += hbm_stall > 0 ? (uint64_t)hbm_stall : 0;
    d->u.insns++;
    e->active = 0;
    if (--d->nactive == 0)
        d->u.busy_ps += now - d->busy_since_ps;
    uint32_t token = e->token;
    unit_finish(&d->u, token);
    unit_wake(&d->u);
}

/* A chunk completed in slot s: count it and issue the next one; or, every chunk issued (the
 * step dma_engine_tail left), count every chunk still in flight and finish the transfer. */
static void dma_slot_done(dma_engine *e, dma_slot *s, uint64_t now)
{
    dma *d = e->d;
    int tail = e->issued == e->bytes;
    unsigned from = tail ? 0 : (unsigned)(s - e->slots), to = tail ? d->outstanding : from + 1;
    for (unsigned i = from; i < to; i++) {
        dma_slot *c = &e->slots[i];
        if (!c->busy)
            continue;
        c->busy = 0;
        e->completed += c->bytes;
        d->u.bytes += c->bytes;
        if (e->is_write)
            d->bytes_written += c->bytes;
        else
            d->bytes_read += c->bytes;
    }
    if (!tail)
        dma_issue(e, s, now);
    else {
        assert(e->completed == e->bytes);
        dma_engine_finish(e, now);
    }
}

/* Every step due by now, in (time, engine, slot) order; a chunk issued here is due later. */
static void dma_event(void *ctx)
{
    dma *d = ctx;
    uint64_t now = kern_now();
    while (d->ndue && d->due[0].t <= now) {
        dma_due x = dma_due_pop(d);
        dma_engine *e = &d->engines[x.key / (d->outstanding + 1u)];
        unsigned slot = (unsigned)(x.key % (d->outstanding + 1u));
        if (slot == 0)
            dma_engine_begin(e, now);
        else
            dma_slot_done(e, &e->slots[slot - 1], now);
    }
    if (d->ndue)
        kern_notify_at(d->ev, d->due[0].t);
}

static void dma_fini(unit *u)
{
    dma *d = (dma *)u;
    for (unsigned i = 0; i < d->nengines; i++)
        free(d->engines[i].slots);
    kern_event_free(d->ev);
    free(d->due);
    free(d->engines);
}

static int dma_init(unit *u, err *e)
{
    dma *d = (dma *)u;
    const cfg *c = u->env->cfg;
    d->nengines = (unsigned)c->dma_engines;
    d->outstanding = (unsigned)c->dma_outstanding;
    d->chunk_bytes = c->dma_chunk_bytes;
    d->latency_ps = (uint64_t)(c->dma_latency_ns * 1000.0 + 0.5);
    d->engines = calloc(d->nengines, sizeof *d->engines);
    if (!d->engines)
        return err_setk(e, ERR_NOMEM, "dma: out of memory");
    d->hbm_ps_per_byte = u->env->hbm ? 1.0 / hbm_peak_bytes_per_ps(u->env->hbm) : 0.0;
    for (unsigned i = 0; i < d->nengines; i++) {
        d->engines[i].d = d;
    }
    d->ev = kern_event_new(dma_event, d);
    return 0;
}

/* Checks at dispatch: a strided transfer's stride is at least its block; the HBM extent
 * ((blocks - 1) x stride + block, or bytes) and the VMEM range lie inside memory.
 * Work: bytes = the transfer's bytes (HBM traffic). */
static int dma_check(unit *u, const isa_insn *in, unit_work *w, err *e)
{
    const uint64_t *a = in->arg;
    uint64_t bytes = a[ISA_DMA_BYTES], block = a[ISA_DMA_BLOCK];
    uint64_t extent = bytes;
    uint64_t hbm_bytes = u->env->hbm_bytes;
    if (block) {
        uint64_t nb = (bytes + block - 1) / block;
        uint64_t stride = a[ISA_DMA_STRIDE];
        if (stride < block)
            return err_set(e, "stride %" PRIu64 " smaller than block %" PRIu64, stride, block);
        if (nb - 1 > (UINT64_MAX - block) / stride)
            extent = UINT64_MAX;
        else
            extent = (nb - 1) * stride + block;
    }
    if (extent > hbm_bytes || a[ISA_DMA_HBM] > hbm_bytes - extent)
        return err_set(e,
                       "HBM range [0x%" PRIx64 ", +%" PRIu64 ") outside the %" PRIu64 "-byte HBM",
                       a[ISA_DMA_HBM], extent, hbm_bytes);
    if (unit_check_vmem(u, "DMA", a[ISA_DMA_VMEM], bytes, e))
        return -1;
    w->bytes = bytes;
    return 0;
}

static int dma_can_start(unit *u, const isa_insn *in)
{
    (void)in;
    dma *d = (dma *)u;
    return d->nactive < d->nengines;
}

static void dma_start(unit *u, const isa_insn *in, uint32_t token)
{
    dma *d = (dma *)u;
    assert(in->op == ISA_OP_DMA_H2V || in->op == ISA_OP_DMA_V2H);
    assert(in->arg[ISA_DMA_BYTES] > 0);
    dma_engine *e = NULL;
    for (unsigned i = 0; i < d->nengines && !e; i++)
        if (!d->engines[i].active)
            e = &d->engines[i];
    assert(e && "dma_start without an idle engine (can_start was not asked)");
    if (!e->slots) { /* the engine's first transfer */
        e->slots = calloc(d->outstanding, sizeof *e->slots);
        if (!e->slots) {
            kern_fail_nomem(); /* the transfer is dropped; the run is reported as failed */
            return;
        }
    }
    e->active = 1;
    e->token = token;
    e->is_write = in->op == ISA_OP_DMA_V2H;
    e->hbm = in->arg[ISA_DMA_HBM];
    e->bytes = in->arg[ISA_DMA_BYTES];
    e->stride = in->arg[ISA_DMA_STRIDE];
    e->block = in->arg[ISA_DMA_BLOCK];
    e->issued = e->completed = 0;
    e->vmem_ps = 0;
    if (d->nactive++ == 0)
        d->busy_since_ps = kern_now();
    /* The descriptor set-up latency is paid once per instruction, before any chunk. */
    dma_due_push(d, stats_add_sat(kern_now(), d->latency_ps, NULL),
                 (uint64_t)(e - d->engines) * (d->outstanding + 1u));
}

const unit_ops dma_ops = UNIT_OPS(dma, dma, .defs = dma_defs, .ndefs = STATS_NDEFS(dma_defs));
