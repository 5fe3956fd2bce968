/* core.c - in-order dispatch of one chip's trace into per-unit in-order queues.
 *
 * Semantics (docs/isa.md): instructions are read in trace order. sync.* and mark are
 * executed by the dispatcher itself; every other instruction is checked (operand ranges,
 * VMEM/HBM bounds, datatype supported, weights loaded) and appended to its unit's queue;
 * dispatch stalls while that queue is full. A queue head issues when its `wait` semaphore
 * is positive (the wait consumes one count) and the unit accepts it; on completion its
 * `signal` semaphore is incremented. Dispatch itself takes no simulated time: the front
 * end is assumed to keep up with the units (the queues hide its latency).
 *
 * Time accounting: at every change of the set of busy unit classes, the elapsed interval is
 * charged to one of compute (an MXU or the vector unit busy), memory (only DMA busy),
 * exposed communication (only ICI busy) or idle — the breakdown the pod report uses. */
#include "core.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ici.h"
#include "kernel.h"

typedef struct core_qent {
    isa_insn in;
    uint64_t idx; /* instruction index in the trace */
    uint32_t region;
    uint64_t ideal_ps; /* matmul only: FLOPs at peak rate */
    uint64_t flops;    /* known at dispatch for MXU and vector ops */
} core_qent;

typedef struct core_queue {
    core_qent *e;
    unsigned head, count, cap;
    uint64_t blocked_since; /* head waiting on a semaphore since (UINT64_MAX = not) */
    /* The head may have become issuable since it was last refused: its unit woke or
     * finished an instruction, or a semaphore it waits on was signalled. Only such queues
     * are retried by core_pump; a refused head stays refused until one of these happens. */
    int poll;
} core_queue;

typedef struct core_flight {
    uint32_t next_free;
    uint16_t slot;   /* unit slot */
    uint16_t signal; /* semaphore + 1 */
    uint32_t region;
    uint64_t idx;
    uint64_t start_ps;
    uint64_t flops, ideal_ps, bytes;
    uint8_t op;
    uint8_t live; /* started, not yet completed */
} core_flight;

/* Which class of work a unit slot does, for the time breakdown. */
enum { CLS_COMPUTE, CLS_DMA, CLS_ICI, CLS_N };

/* Per-MXU weight state as seen in dispatch order (for checks and FLOP counts). */
typedef struct core_mxu_w {
    uint32_t k, n;
    uint8_t dtype, loaded;
} core_mxu_w;

struct core {
    const cfg *cfg;
    char path[512];
    trace_reader *tr;
    unit **units;
    unsigned nunits, n_mxu, slot_vpu, slot_dma, slot_ici;
    struct ici_net *net;
    unsigned chip_id;
    uint64_t hbm_bytes, vmem_bytes;
    double peak_ps_per_flop[ISA_DTYPE_COUNT];

    core_queue *q;
    core_unit_stats *ust;
    core_mxu_w *mxw;
    uint32_t *sem;

    core_flight *fl;
    uint32_t fl_cap, fl_free, inflight;

    /* dispatcher state */
    isa_insn pending;
    int have_pending, eof, failed, in_pump, pump_again;
    int blocked;           /* 0 none, 1 queue full, 2 sync.wait, 3 barrier */
    unsigned blocked_slot; /* queue-full slot */
    uint64_t blocked_since;
    uint64_t next_idx; /* index of the next instruction to read */
    uint64_t dispatch_stall_ps;
    int barrier_arrived, barrier_released;
    kern_event *pump_ev;
    err fail;

    /* regions: an array indexed by region number, and an open-addressing hash table of
     * region numbers + 1 (0 = empty slot) keyed by name, so a `mark` costs one hash, not a
     * scan. Both grow by doubling without a cap: memory is bounded by the number of distinct
     * names in the trace (about 160 bytes each), which the trace's length bounds. */
    core_region *regions;
    unsigned nregions, regions_cap, cur_region;
    uint32_t *rhash;
    uint32_t rhash_cap; /* a power of two, kept at least twice nregions */
    core_region total;
    uint64_t end_ps;

    /* time breakdown */
    unsigned cls_busy[CLS_N];
    uint64_t last_change_ps;
    uint64_t t_compute_ps, t_memory_ps, t_comm_ps, t_idle_ps, t_ici_busy_ps;
    int overflow;
    core_observer obs;
    void *obs_ctx;
};

static void core_pump(core *co);
static int region_intern(core *co, const char *name, unsigned *out);

/* Issue and dispatch once every event of this instant has run: the pump event is notified
 * for the next delta cycle (notifying it again meanwhile changes nothing). So units whose
 * resources free at the same time t all report before any queue head issues at t, and heads
 * issue in slot order, not in the order the kernel happens to run same-time events. Within
 * the pump itself (a unit finishing as it starts), the pump simply goes round again. */
static void core_pump_later(core *co)
{
    if (co->in_pump)
        co->pump_again = 1;
    else
        kern_notify(co->pump_ev, 0);
}

static unsigned slot_class(const core *co, unsigned slot)
{
    if (slot == co->slot_dma)
        return CLS_DMA;
    if (slot == co->slot_ici)
        return CLS_ICI;
    return CLS_COMPUTE;
}

static void core_account(core *co)
{
    uint64_t now = kern_now();
    uint64_t dt = now - co->last_change_ps;
    co->last_change_ps = now;
    if (!dt)
        return;
    if (co->cls_busy[CLS_ICI])
        co->t_ici_busy_ps += dt;
    if (co->cls_busy[CLS_COMPUTE])
        co->t_compute_ps += dt;
    else if (co->cls_busy[CLS_DMA])
        co->t_memory_ps += dt;
    else if (co->cls_busy[CLS_ICI])
        co->t_comm_ps += dt;
    else if (co->inflight || !co->eof || co->have_pending)
        co->t_idle_ps += dt;
}

static void pump_cb(void *ctx)
{
    core_pump(ctx);
}

static int core_fail(core *co, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int core_fail(core *co, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(&co->fail, fmt, ap);
    va_end(ap);
    co->failed = 1;
    kern_stop();
    return -1;
}

core *core_new(const cfg *c, const char *trace_path, trace_reader *tr, unit **units, unsigned n_mxu,
               struct ici_net *net, unsigned chip_id, uint64_t hbm_bytes, uint64_t vmem_bytes,
               err *e)
{
    core *co = calloc(1, sizeof *co);
    if (!co) {
        err_set(e, "out of memory");
        return NULL;
    }
    co->cfg = c;
    snprintf(co->path, sizeof co->path, "%s", trace_path);
    co->tr = tr;
    co->units = units;
    co->n_mxu = n_mxu;
    co->slot_vpu = n_mxu;
    co->slot_dma = n_mxu + 1;
    co->slot_ici = n_mxu + 2;
    co->nunits = n_mxu + 3;
    co->net = net;
    co->chip_id = chip_id;
    co->hbm_bytes = hbm_bytes;
    co->vmem_bytes = vmem_bytes;
    for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++) {
        double peak = cfg_peak_flops(c, dt);
        co->peak_ps_per_flop[dt] = peak > 0 ? 1e12 / peak : 0;
    }
    co->q = calloc(co->nunits, sizeof *co->q);
    co->ust = calloc(co->nunits, sizeof *co->ust);
    co->mxw = calloc(n_mxu, sizeof *co->mxw);
    co->sem = calloc(ISA_SEM_MAX, sizeof *co->sem);
    co->fl_cap = 256;
    co->fl = calloc(co->fl_cap, sizeof *co->fl);
    co->regions_cap = 16;
    co->regions = calloc(co->regions_cap, sizeof *co->regions);
    co->rhash_cap = 64;
    co->rhash = calloc(co->rhash_cap, sizeof *co->rhash);
    if (!co->q || !co->ust || !co->mxw || !co->sem || !co->fl || !co->regions || !co->rhash)
        goto out_oom;
    for (unsigned i = 0; i < co->nunits; i++) {
        co->q[i].cap = (unsigned)c->core_queue_depth;
        co->q[i].e = malloc(co->q[i].cap * sizeof(core_qent));
        co->q[i].blocked_since = UINT64_MAX;
        if (!co->q[i].e)
            goto out_oom;
    }
    for (uint32_t i = 0; i < co->fl_cap; i++)
        co->fl[i].next_free = i + 1;
    co->fl_free = 0;
    if (region_intern(co, "(start)", &co->cur_region))
        goto out_oom;
    co->total.first_start_ps = UINT64_MAX;
    snprintf(co->total.name, ISA_NAME_MAX, "(total)");
    co->pump_ev = kern_event_new(pump_cb, co);
    return co;
out_oom:
    core_free(co);
    err_set(e, "out of memory");
    return NULL;
}

void core_free(core *co)
{
    if (!co)
        return;
    if (co->pump_ev)
        kern_event_free(co->pump_ev);
    if (co->q)
        for (unsigned i = 0; i < co->nunits; i++)
            free(co->q[i].e);
    free(co->q);
    free(co->ust);
    free(co->mxw);
    free(co->sem);
    free(co->fl);
    free(co->regions);
    free(co->rhash);
    free(co);
}

void core_start(core *co)
{
    co->last_change_ps = kern_now();
    kern_notify(co->pump_ev, 0);
}

/* ---- checks at dispatch ---- */

static int vmem_ok(const core *co, uint64_t addr, uint64_t bytes)
{
    return bytes <= co->vmem_bytes && addr <= co->vmem_bytes - bytes;
}

static int check_vmem(core *co, const core_qent *q, const char *what, uint64_t addr, uint64_t bytes)
{
    if (vmem_ok(co, addr, bytes))
        return 0;
    return core_fail(co,
                     "%s: instruction %" PRIu64 " (%s): %s VMEM range [0x%" PRIx64 ", 0x%" PRIx64
                     ") outside the %" PRIu64 "-byte VMEM",
                     co->path, q->idx, isa_info_of(q->in.op)->mnemonic, what, addr, addr + bytes,
                     co->vmem_bytes);
}

static int check_dtype_mxu(core *co, const core_qent *q, unsigned dt)
{
    if (cfg_mxu_rate(co->cfg, dt) > 0)
        return 0;
    return core_fail(co, "%s: instruction %" PRIu64 " (%s): datatype %s not supported by %s's MXU",
                     co->path, q->idx, isa_info_of(q->in.op)->mnemonic, isa_dtype_name(dt),
                     co->cfg->chip_name);
}

static uint64_t dt_bytes(unsigned dt, uint64_t n)
{
    unsigned bits = isa_dtype_bits(dt);
    if (n > (UINT64_MAX - 7) / bits)
        return UINT64_MAX;
    return (n * bits + 7) / 8;
}

/* Check an instruction bound for a unit queue and fill its FLOPs; 0 if fine. */
static int core_check(core *co, core_qent *q)
{
    const isa_insn *in = &q->in;
    const isa_info *info = isa_info_of(in->op);
    const uint64_t *a = in->arg;
    q->flops = 0;
    q->ideal_ps = 0;
    switch (info->unit) {
    case ISA_UNIT_DMA: {
        uint64_t bytes = a[ISA_DMA_BYTES], block = a[ISA_DMA_BLOCK];
        uint64_t extent = bytes;
        if (block) {
            uint64_t nb = (bytes + block - 1) / block;
            uint64_t stride = a[ISA_DMA_STRIDE];
            if (stride < block)
                return core_fail(co,
                                 "%s: instruction %" PRIu64 " (%s): stride %" PRIu64
                                 " smaller than block %" PRIu64,
                                 co->path, q->idx, info->mnemonic, stride, block);
            if (nb - 1 > (UINT64_MAX - block) / stride)
                extent = UINT64_MAX;
            else
                extent = (nb - 1) * stride + block;
        }
        if (extent > co->hbm_bytes || a[ISA_DMA_HBM] > co->hbm_bytes - extent)
            return core_fail(co,
                             "%s: instruction %" PRIu64 " (%s): HBM range [0x%" PRIx64 ", +%" PRIu64
                             ") outside the %" PRIu64 "-byte HBM",
                             co->path, q->idx, info->mnemonic, a[ISA_DMA_HBM], extent,
                             co->hbm_bytes);
        return check_vmem(co, q, "DMA", a[ISA_DMA_VMEM], bytes);
    }
    case ISA_UNIT_MXU: {
        unsigned m = (unsigned)a[ISA_LDW_MXU];
        if (m >= co->n_mxu)
            return core_fail(co, "%s: instruction %" PRIu64 " (%s): mxu %u, the chip has %u",
                             co->path, q->idx, info->mnemonic, m, co->n_mxu);
        core_mxu_w *w = &co->mxw[m];
        if (in->op == ISA_OP_MXU_LDW) {
            uint64_t k = a[ISA_LDW_K], n = a[ISA_LDW_N];
            unsigned dt = (unsigned)a[ISA_LDW_DTYPE];
            if (k > co->cfg->mxu_rows || n > co->cfg->mxu_cols)
                return core_fail(co,
                                 "%s: instruction %" PRIu64 " (mxu.ldw): tile %" PRIu64
                                 " x %" PRIu64 " larger than the %" PRIu64 " x %" PRIu64 " array",
                                 co->path, q->idx, k, n, co->cfg->mxu_rows, co->cfg->mxu_cols);
            if (check_dtype_mxu(co, q, dt))
                return -1;
            if (check_vmem(co, q, "weights", a[ISA_LDW_VMEM], dt_bytes(dt, k * n)))
                return -1;
            w->k = (uint32_t)k;
            w->n = (uint32_t)n;
            w->dtype = (uint8_t)dt;
            w->loaded = 1;
            return 0;
        }
        unsigned dt = (unsigned)a[ISA_MM_DTYPE];
        uint64_t mm = a[ISA_MM_M];
        if (!w->loaded)
            return core_fail(
                co, "%s: instruction %" PRIu64 " (mxu.matmul): mxu %u has no weights loaded",
                co->path, q->idx, m);
        if (dt != w->dtype)
            return core_fail(co,
                             "%s: instruction %" PRIu64 " (mxu.matmul): dtype %s differs from the "
                             "loaded weights' %s",
                             co->path, q->idx, isa_dtype_name(dt), isa_dtype_name(w->dtype));
        if (check_dtype_mxu(co, q, dt))
            return -1;
        if (check_vmem(co, q, "operand", a[ISA_MM_SRC], dt_bytes(dt, stats_mul_sat(mm, w->k))) ||
            check_vmem(co, q, "result", a[ISA_MM_DST], stats_mul_sat(stats_mul_sat(mm, w->n), 4)))
            return -1;
        q->flops = 2 * mm * w->k * w->n;
        q->ideal_ps = (uint64_t)((double)q->flops * co->peak_ps_per_flop[dt] + 0.5);
        return 0;
    }
    case ISA_UNIT_VPU: {
        unsigned dt = (unsigned)a[ISA_V_DTYPE];
        uint64_t n = a[ISA_V_N];
        uint64_t out = n;
        unsigned odt = dt;
        if (in->op == ISA_OP_V_CAST)
            odt = (unsigned)a[ISA_V_EXTRA];
        if (in->op == ISA_OP_V_REDUCE) {
            uint64_t w = a[ISA_V_EXTRA] ? a[ISA_V_EXTRA] : co->cfg->vpu_lanes;
            out = (n + w - 1) / w;
        }
        if (check_vmem(co, q, "source", a[ISA_V_SRC], dt_bytes(dt, n)) ||
            check_vmem(co, q, "destination", a[ISA_V_DST], dt_bytes(odt, out)))
            return -1;
        switch (info->cost) {
        case ISA_COST_V_ELEM:
            q->flops = (in->op == ISA_OP_V_SELECT || in->op == ISA_OP_V_CAST) ? 0 : n;
            break;
        case ISA_COST_V_FMA:
            q->flops = 2 * n;
            break;
        case ISA_COST_V_TRANS:
        case ISA_COST_V_REDUCE:
            q->flops = n;
            break;
        default:
            break;
        }
        return 0;
    }
    case ISA_UNIT_ICI:
        if (!co->net || !co->units[co->slot_ici])
            return core_fail(co,
                             "%s: instruction %" PRIu64 " (%s): ICI instruction on a chip "
                             "without an interconnect",
                             co->path, q->idx, info->mnemonic);
        {
            unsigned axes = (unsigned)(in->op == ISA_OP_ICI_SEND || in->op == ISA_OP_ICI_RECV
                                           ? a[ISA_P2P_AXIS]
                                           : a[ISA_COLL_AXES]);
            unsigned naxes = ici_net_axes(co->net);
            if (axes >> naxes)
                return core_fail(co,
                                 "%s: instruction %" PRIu64 " (%s): axis not in the %u-axis "
                                 "topology",
                                 co->path, q->idx, info->mnemonic, naxes);
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- issue ---- */

static uint32_t flight_alloc(core *co)
{
    if (co->fl_free >= co->fl_cap) {
        uint32_t old = co->fl_cap;
        co->fl_cap *= 2;
        co->fl = realloc(co->fl, co->fl_cap * sizeof *co->fl);
        if (!co->fl)
            abort();
        for (uint32_t i = old; i < co->fl_cap; i++) {
            co->fl[i].next_free = i + 1;
            co->fl[i].live = 0;
        }
        co->fl_free = old;
    }
    uint32_t t = co->fl_free;
    co->fl_free = co->fl[t].next_free;
    co->fl[t].live = 1;
    return t;
}

/* Issue queue heads of `slot` while possible; returns 1 if anything issued. */
static int try_issue(core *co, unsigned slot)
{
    core_queue *qu = &co->q[slot];
    unit *u = co->units[slot];
    int progress = 0;
    qu->poll = 0; /* set again by whatever, from here on, may let the head issue */
    while (qu->count && !co->failed) {
        core_qent *q = &qu->e[qu->head];
        unsigned w = q->in.wait;
        if (w && co->sem[w - 1] == 0) {
            if (qu->blocked_since == UINT64_MAX)
                qu->blocked_since = kern_now();
            return progress;
        }
        if (!unit_can_start(u, &q->in))
            return progress;
        uint64_t now = kern_now(); /* read only once the head issues: pumps poll every queue */
        if (qu->blocked_since != UINT64_MAX) {
            co->ust[slot].stall_sem_ps += now - qu->blocked_since;
            qu->blocked_since = UINT64_MAX;
        }
        if (w)
            co->sem[w - 1]--;
        uint32_t t = flight_alloc(co);
        core_flight *f = &co->fl[t];
        f->slot = (uint16_t)slot;
        f->signal = q->in.signal;
        f->region = q->region;
        f->idx = q->idx;
        f->start_ps = now;
        f->flops = q->flops;
        f->ideal_ps = q->ideal_ps;
        f->op = (uint8_t)q->in.op;
        f->bytes = 0;
        if (f->op == ISA_OP_DMA_H2V || f->op == ISA_OP_DMA_V2H)
            f->bytes = q->in.arg[ISA_DMA_BYTES];
        else if (f->op == ISA_OP_ICI_SEND)
            f->bytes = q->in.arg[ISA_P2P_BYTES];
        else if (isa_info_of(f->op)->unit == ISA_UNIT_ICI && f->op != ISA_OP_ICI_RECV)
            f->bytes = q->in.arg[ISA_COLL_BYTES]; /* a transfer counts once, at its sender */
        isa_insn in = q->in;                      /* the unit may read it after we pop */
        uint64_t idx = q->idx;
        qu->head = (qu->head + 1) % qu->cap;
        qu->count--;
        core_account(co);
        co->cls_busy[slot_class(co, slot)]++;
        co->inflight++;
        progress = 1;
        unit_start(u, &in, t);
        if (kern_overflowed() && !co->failed) {
            core_fail(co,
                      "%s: instruction %" PRIu64 " (%s): its completion time does not fit the "
                      "64-bit picosecond clock (2^64 ps, about 213 days)",
                      co->path, idx, isa_info_of(in.op)->mnemonic);
            return 0;
        }
    }
    return progress;
}

/* Count semaphore `sem` up and mark the queues whose head waits on it for a retry. */
static void core_signal(core *co, unsigned sem)
{
    co->sem[sem]++;
    for (unsigned s = 0; s < co->nunits; s++) {
        core_queue *qu = &co->q[s];
        if (qu->count && qu->e[qu->head].in.wait == sem + 1)
            qu->poll = 1;
    }
}

/* Sums saturate and set *ovf rather than wrap: a run whose totals pass 2^64 is an error. */
static void region_charge(core_region *r, const core_flight *f, unsigned cls_unit, uint64_t now,
                          int *ovf)
{
    r->insns++;
    r->flops = stats_add_sat(r->flops, f->flops, ovf);
    if (cls_unit == ISA_UNIT_MXU) {
        r->mxu_flops = stats_add_sat(r->mxu_flops, f->flops, ovf);
        r->mxu_ideal_ps = stats_add_sat(r->mxu_ideal_ps, f->ideal_ps, ovf);
    }
    if (cls_unit == ISA_UNIT_DMA)
        r->hbm_bytes = stats_add_sat(r->hbm_bytes, f->bytes, ovf);
    if (cls_unit == ISA_UNIT_ICI)
        r->ici_bytes = stats_add_sat(r->ici_bytes, f->bytes, ovf);
    if (f->start_ps < r->first_start_ps)
        r->first_start_ps = f->start_ps;
    if (now > r->last_end_ps)
        r->last_end_ps = now;
    r->busy_ps[cls_unit] = stats_add_sat(r->busy_ps[cls_unit], now - f->start_ps, ovf);
}

void core_unit_done(void *host, unit *u, uint32_t token)
{
    core *co = host;
    assert(token < co->fl_cap);
    core_flight *f = &co->fl[token];
    uint64_t now = kern_now();
    unsigned ucls = isa_info_of(f->op)->unit;
    core_account(co);
    co->cls_busy[slot_class(co, f->slot)]--;
    co->inflight--;
    if (co->obs)
        co->obs(co->obs_ctx, f->idx, f->op, u, f->start_ps, now, f->region);
    int ovf = 0;
    region_charge(&co->regions[f->region], f, ucls, now, &ovf);
    region_charge(&co->total, f, ucls, now, &ovf);
    if (ovf && !co->failed)
        core_fail(co,
                  "%s: instruction %" PRIu64 " (%s): the run's FLOP, byte or busy-time total "
                  "passes 2^64",
                  co->path, f->idx, isa_info_of(f->op)->mnemonic);
    if (now > co->end_ps)
        co->end_ps = now;
    co->q[f->slot].poll = 1;
    if (f->signal)
        core_signal(co, f->signal - 1u);
    f->live = 0;
    f->next_free = co->fl_free;
    co->fl_free = token;
    core_pump_later(co);
}

void core_unit_wake(void *host, unit *u)
{
    core *co = host;
    for (unsigned s = 0; s < co->nunits; s++)
        if (co->units[s] == u)
            co->q[s].poll = 1;
    core_pump_later(co);
}

/* ---- dispatch ---- */

/* FNV-1a over the name's bytes up to its NUL. */
static uint32_t region_hash(const char *name)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* Put region number idx into the hash table (the name is not there yet). */
static void region_hash_put(uint32_t *tab, uint32_t cap, const char *name, uint32_t idx)
{
    uint32_t i = region_hash(name) & (cap - 1);
    while (tab[i])
        i = (i + 1) & (cap - 1);
    tab[i] = idx + 1;
}

/* The region number of `name`, adding a region the first time a name is seen. Returns 0 and
 * sets *out, or -1 when memory runs out (the caller names the instruction). The region
 * named "(start)" (number 0, before any mark) is in the table like any other. */
static int region_intern(core *co, const char *name, unsigned *out)
{
    uint32_t mask = co->rhash_cap - 1;
    for (uint32_t i = region_hash(name) & mask; co->rhash[i]; i = (i + 1) & mask)
        if (!strcmp(co->regions[co->rhash[i] - 1].name, name)) {
            *out = co->rhash[i] - 1;
            return 0;
        }
    if (co->nregions >= UINT32_MAX / 4)
        return -1; /* the table could not double again */
    if (co->nregions == co->regions_cap) {
        core_region *r = realloc(co->regions, 2 * (size_t)co->regions_cap * sizeof *r);
        if (!r)
            return -1;
        co->regions = r;
        co->regions_cap *= 2;
    }
    if (2 * (co->nregions + 1) > co->rhash_cap) {
        uint32_t cap = co->rhash_cap * 2;
        uint32_t *tab = calloc(cap, sizeof *tab);
        if (!tab)
            return -1;
        for (unsigned k = 0; k < co->nregions; k++)
            region_hash_put(tab, cap, co->regions[k].name, k);
        free(co->rhash);
        co->rhash = tab;
        co->rhash_cap = cap;
    }
    core_region *r = &co->regions[co->nregions];
    memset(r, 0, sizeof *r);
    snprintf(r->name, ISA_NAME_MAX, "%s", name);
    r->first_start_ps = UINT64_MAX;
    region_hash_put(co->rhash, co->rhash_cap, r->name, co->nregions);
    *out = co->nregions++;
    return 0;
}

static void barrier_done(void *arg)
{
    core *co = arg;
    co->barrier_released = 1;
    core_pump_later(co);
}

static void block_end(core *co)
{
    if (!co->blocked)
        return;
    uint64_t d = kern_now() - co->blocked_since;
    if (co->blocked == 1)
        co->ust[co->blocked_slot].stall_qfull_ps += d;
    else
        co->dispatch_stall_ps += d;
    co->blocked = 0;
}

static void block_begin(core *co, int why, unsigned slot)
{
    if (co->blocked)
        return;
    co->blocked = why;
    co->blocked_slot = slot;
    co->blocked_since = kern_now();
}

/* Dispatch until something blocks; returns 1 if any instruction was consumed. */
static int dispatch(core *co)
{
    int progress = 0;
    err e;
    while (!co->failed) {
        if (!co->have_pending) {
            if (co->eof)
                return progress;
            int r = trace_reader_next(co->tr, &co->pending, &e);
            if (r < 0) {
                core_fail(co, "%s", e.msg);
                return progress;
            }
            if (r == 0) {
                co->eof = 1;
                return progress;
            }
            co->have_pending = 1;
        }
        isa_insn *in = &co->pending;
        const isa_info *info = isa_info_of(in->op);
        if (info->unit == ISA_UNIT_SYNC) {
            switch (in->op) {
            case ISA_OP_SYNC_WAIT:
                if (in->wait && co->sem[in->wait - 1] == 0) {
                    block_begin(co, 2, 0);
                    return progress;
                }
                if (in->wait)
                    co->sem[in->wait - 1]--;
                break;
            case ISA_OP_SYNC_BARRIER:
                if (co->inflight || co->barrier_arrived == 0) {
                    int idle = !co->inflight;
                    for (unsigned s = 0; s < co->nunits && idle; s++)
                        idle = co->q[s].count == 0;
                    if (!idle) {
                        block_begin(co, 3, 0);
                        return progress;
                    }
                    if (!co->barrier_arrived) {
                        co->barrier_arrived = 1;
                        co->barrier_released = 0;
                        block_begin(co, 3, 0);
                        if (co->net)
                            ici_net_barrier(co->net, co->chip_id, barrier_done, co);
                        else
                            co->barrier_released = 1;
                    }
                }
                if (!co->barrier_released) {
                    block_begin(co, 3, 0);
                    return progress;
                }
                co->barrier_arrived = 0;
                break;
            case ISA_OP_MARK:
                if (region_intern(co, in->name, &co->cur_region)) {
                    core_fail(co,
                              "%s: instruction %" PRIu64 " (mark \"%s\"): out of memory for "
                              "region %u",
                              co->path, co->next_idx, in->name, co->nregions);
                    return progress;
                }
                break;
            default:
                break;
            }
            if (in->op != ISA_OP_SYNC_WAIT && in->wait) {
                /* A wait on a dispatcher-executed instruction behaves as sync.wait. */
                if (co->sem[in->wait - 1] == 0) {
                    block_begin(co, 2, 0);
                    return progress;
                }
                co->sem[in->wait - 1]--;
            }
            if (in->signal)
                core_signal(co, in->signal - 1u);
            block_end(co);
            co->regions[co->cur_region].insns++;
            co->total.insns++;
            co->have_pending = 0;
            co->next_idx++;
            progress = 1;
            continue;
        }
        unsigned slot;
        switch (info->unit) {
        case ISA_UNIT_MXU:
            slot = (unsigned)in->arg[ISA_LDW_MXU];
            if (slot >= co->n_mxu)
                slot = 0; /* core_check reports it */
            break;
        case ISA_UNIT_VPU:
            slot = co->slot_vpu;
            break;
        case ISA_UNIT_DMA:
            slot = co->slot_dma;
            break;
        default:
            slot = co->slot_ici;
            break;
        }
        core_queue *qu = &co->q[slot];
        if (qu->count == qu->cap) {
            block_begin(co, 1, slot);
            return progress;
        }
        block_end(co);
        core_qent *q = &qu->e[(qu->head + qu->count) % qu->cap];
        q->in = *in;
        q->idx = co->next_idx;
        q->region = co->cur_region;
        if (core_check(co, q))
            return progress;
        qu->count++;
        if (qu->count > co->ust[slot].queue_max)
            co->ust[slot].queue_max = qu->count;
        co->have_pending = 0;
        co->next_idx++;
        progress = 1;
        if (qu->count == 1)
            try_issue(co, slot);
    }
    return progress;
}

static void core_pump(core *co)
{
    if (co->in_pump) {
        co->pump_again = 1;
        return;
    }
    co->in_pump = 1;
    do {
        co->pump_again = 0;
        for (unsigned s = 0; s < co->nunits; s++)
            if (co->q[s].count && co->q[s].poll && try_issue(co, s))
                co->pump_again = 1;
        if (dispatch(co))
            co->pump_again = 1;
    } while (co->pump_again && !co->failed);
    co->in_pump = 0;
}

int core_done(const core *co)
{
    if (co->failed || !co->eof || co->have_pending || co->inflight)
        return 0;
    for (unsigned s = 0; s < co->nunits; s++)
        if (co->q[s].count)
            return 0;
    return 1;
}

/* The oldest instruction started on a unit and not yet completed, or NULL. */
static const core_flight *core_oldest_live(const core *co)
{
    const core_flight *old = NULL;
    for (uint32_t i = 0; i < co->fl_cap; i++)
        if (co->fl[i].live && (!old || co->fl[i].idx < old->idx))
            old = &co->fl[i];
    return old;
}

int core_waits_on_other_chips(const core *co)
{
    if (co->failed || core_done(co))
        return 0;
    for (unsigned s = 0; s < co->nunits; s++) {
        const core_queue *qu = &co->q[s];
        const core_qent *q = &qu->e[qu->head];
        if (qu->count && q->in.wait && co->sem[q->in.wait - 1] == 0)
            return 0; /* a semaphore nothing left can signal: this chip's own deadlock */
    }
    if (co->blocked == 2)
        return 0;
    if (co->blocked == 3 && co->barrier_arrived)
        return 2;
    const core_flight *old = core_oldest_live(co);
    return old && isa_info_of(old->op)->unit == ISA_UNIT_ICI;
}

int core_finish(core *co, err *e)
{
    core_account(co);
    if (co->failed)
        return err_set(e, "%s", co->fail.msg);
    if (kern_overflowed()) {
        /* The oldest instruction still in flight is one whose end does not fit. */
        const core_flight *old = core_oldest_live(co);
        if (old)
            return err_set(e,
                           "%s: instruction %" PRIu64 " (%s): its completion time does not fit "
                           "the 64-bit picosecond clock (2^64 ps, about 213 days)",
                           co->path, old->idx, isa_info_of(old->op)->mnemonic);
        return err_set(e,
                       "%s: simulated time passed the end of the 64-bit picosecond clock "
                       "(2^64 ps, about 213 days) after instruction %" PRIu64,
                       co->path, co->next_idx);
    }
    if (core_done(co))
        return 0;
    /* Nothing left to happen but work remains: a deadlock. Name the blocked instruction. */
    for (unsigned s = 0; s < co->nunits; s++) {
        core_queue *qu = &co->q[s];
        if (!qu->count)
            continue;
        core_qent *q = &qu->e[qu->head];
        if (q->in.wait && co->sem[q->in.wait - 1] == 0)
            return err_set(e,
                           "%s: deadlock: instruction %" PRIu64 " (%s) waits on semaphore %u, "
                           "which nothing left can signal",
                           co->path, q->idx, isa_info_of(q->in.op)->mnemonic, q->in.wait - 1);
    }
    if (co->have_pending && co->pending.wait && co->blocked == 2)
        return err_set(e,
                       "%s: deadlock: instruction %" PRIu64 " (%s) waits on semaphore %u, which "
                       "nothing left can signal",
                       co->path, co->next_idx, isa_info_of(co->pending.op)->mnemonic,
                       co->pending.wait - 1);
    /* A barrier first waits for this chip's own instructions to finish, then for the other
     * chips: name whichever of the two it is stuck on. */
    const core_flight *old = core_oldest_live(co);
    if (co->blocked == 3 && !co->barrier_arrived && old)
        return err_set(e,
                       "%s: deadlock: instruction %" PRIu64 " (sync.barrier) waits for "
                       "instruction %" PRIu64 " (%s), which started but never completed%s",
                       co->path, co->next_idx, old->idx, isa_info_of(old->op)->mnemonic,
                       old->op == ISA_OP_ICI_RECV ? " (no matching ici.send reached it)" : "");
    if (co->blocked == 3 && co->barrier_arrived) {
        unsigned first = 0, missing = co->net ? ici_net_barrier_missing(co->net, &first) : 0;
        if (missing)
            return err_set(e,
                           "%s: deadlock: instruction %" PRIu64 " (sync.barrier) never released: "
                           "%u chip(s) never reached it, the first chip %u (see its own "
                           "deadlock)",
                           co->path, co->next_idx, missing, first);
    }
    if (co->blocked == 3)
        return err_set(e, "%s: deadlock: instruction %" PRIu64 " (sync.barrier) never released",
                       co->path, co->next_idx);
    if (old)
        return err_set(e,
                       "%s: deadlock: instruction %" PRIu64 " (%s) started but never completed%s "
                       "(%u instruction(s) in flight)",
                       co->path, old->idx, isa_info_of(old->op)->mnemonic,
                       old->op == ISA_OP_ICI_RECV ? ": no matching ici.send reached it"
                       : isa_info_of(old->op)->unit == ISA_UNIT_ICI ? ": waiting on other chips"
                                                                    : "",
                       co->inflight);
    return err_set(e, "%s: replay stopped after instruction %" PRIu64 " of the trace", co->path,
                   co->next_idx);
}

uint64_t core_end_ps(const core *co)
{
    return co->end_ps;
}

uint64_t core_insns(const core *co)
{
    return co->total.insns;
}

const core_region *core_regions(const core *co, unsigned *count)
{
    *count = co->nregions;
    return co->regions;
}

const core_region *core_total(const core *co)
{
    return &co->total;
}

const core_unit_stats *core_unit_stat(const core *co, unsigned slot)
{
    return &co->ust[slot];
}

unsigned core_unit_count(const core *co)
{
    return co->nunits;
}

unit *core_unit_at(const core *co, unsigned slot)
{
    return co->units[slot];
}

uint64_t core_dispatch_stall_ps(const core *co)
{
    return co->dispatch_stall_ps;
}

uint64_t core_ici_exposed_ps(const core *co)
{
    return co->t_comm_ps;
}

uint64_t core_ici_busy_ps(const core *co)
{
    return co->t_ici_busy_ps;
}

void core_register_stats(core *co, stats_reg *r)
{
    stats_u64(r, "core", "end_ps", "ps", "completion time of the last instruction", &co->end_ps);
    stats_u64(r, "core", "insns", "insns", "instructions replayed", &co->total.insns);
    stats_u64(r, "core", "flops", "FLOP", "MXU and vector FLOPs", &co->total.flops);
    stats_u64(r, "core", "mxu_flops", "FLOP", "MXU FLOPs", &co->total.mxu_flops);
    stats_u64(r, "core", "mxu_ideal_ps", "ps", "MXU FLOPs at the peak rate of their datatype",
              &co->total.mxu_ideal_ps);
    stats_u64(r, "core", "hbm_bytes", "B", "bytes moved by DMA", &co->total.hbm_bytes);
    stats_u64(r, "core", "ici_bytes", "B", "bytes sent over ICI", &co->total.ici_bytes);
    stats_u64(r, "core", "dispatch_stall_ps", "ps", "dispatcher stalled on sync.wait or barrier",
              &co->dispatch_stall_ps);
    stats_u64(r, "core", "t_compute_ps", "ps", "time with an MXU or the vector unit busy",
              &co->t_compute_ps);
    stats_u64(r, "core", "t_memory_ps", "ps", "time with only DMA busy", &co->t_memory_ps);
    stats_u64(r, "core", "t_comm_ps", "ps", "time with only ICI busy (exposed communication)",
              &co->t_comm_ps);
    stats_u64(r, "core", "t_idle_ps", "ps", "time with nothing busy", &co->t_idle_ps);
    stats_u64(r, "core", "t_ici_busy_ps", "ps", "time with ICI busy", &co->t_ici_busy_ps);
    for (unsigned s = 0; s < co->nunits; s++) {
        if (!co->units[s])
            continue;
        const char *g = co->units[s]->name;
        stats_u64(r, g, "stall_sem_ps", "ps", "queue head waiting on a semaphore",
                  &co->ust[s].stall_sem_ps);
        stats_u64(r, g, "stall_qfull_ps", "ps", "dispatcher blocked on this full queue",
                  &co->ust[s].stall_qfull_ps);
        stats_u64(r, g, "queue_max", "insns", "deepest queue occupancy", &co->ust[s].queue_max);
    }
}

void core_set_observer(core *co, core_observer fn, void *ctx)
{
    co->obs = fn;
    co->obs_ctx = ctx;
}

uint64_t core_dispatched(const core *co)
{
    return co->next_idx;
}
