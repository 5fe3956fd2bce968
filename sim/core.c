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
 * Routing: an opcode's ISA unit class names the row of the unit table (units.h) serving it,
 * and that row's instances are consecutive unit slots; a row with a `select` operand (the MXU's
 * `mxu=`) picks the instance by that operand, else instance 0. Both are resolved once, at
 * core_new; a class without a row is an error there. Checks beyond the decoder's ranges and an
 * instruction's FLOPs and bytes come from the unit's check op (unit_check).
 *
 * Time accounting: at every change of the set of busy time-split classes (the unit table's
 * `time`), the elapsed interval is charged to one of compute (a compute unit busy), memory
 * (a memory unit but no compute unit busy), exposed communication (only communication units
 * busy) or idle — the breakdown the pod report uses. */
#include "core.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ici.h"
#include "kernel.h"
#include "mem.h"
#include "units.h"

typedef struct core_qent {
    isa_insn in;
    uint64_t idx; /* instruction index in the trace */
    uint32_t region;
    uint64_t ideal_ps; /* matrix units: FLOPs at peak rate */
    uint64_t flops;    /* known at dispatch (unit_check) */
    uint64_t bytes;    /* HBM or ICI bytes, known at dispatch (unit_check) */
} core_qent;

typedef struct core_queue {
    core_qent *e;
    unsigned head, count, cap;
    uint64_t blocked_since; /* head waiting on a semaphore since (UINT64_MAX = not) */
    /* The head may have become issuable since it was last refused: its unit woke or
     * finished an instruction, or a semaphore it waits on was signalled. Only such queues
     * are retried by core_pump; a refused head stays refused until one of these happens. */
    int poll;
    /* The unit refused the head (can_start) and has not woken since: it calls unit_wake at
     * the time the head can start, so its completions alone need no pump. */
    int refused;
    uint64_t wake_at; /* unit_wake_at pending for this time (UINT64_MAX: none) */
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

/* Where an ISA unit class goes: its row of the unit table and that row's unit slots. */
typedef struct core_route {
    const unit_kind *kind;
    unsigned first, count;
} core_route;

struct core {
    const cfg *cfg;
    char path[PATH_MAX]; /* the trace's, for messages (any path that opens fits) */
    trace_reader *tr;
    unit **units;
    unsigned nunits;
    core_route route[ISA_UNIT_COUNT];
    int8_t select_arg[ISA_OP_COUNT]; /* operand picking the instance, -1: instance 0 */
    struct ici_net *net;
    unsigned chip_id;

    core_queue *q;
    core_unit_stats *ust;
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
    unsigned nwake_at; /* queues with a wake_at pending */
    err fail;

    /* regions: an array indexed by region number, and an open-addressing hash table of
     * region numbers + 1 (0 = empty slot) keyed by name, so a `mark` costs one hash, not a
     * scan. Both grow by doubling without a cap: memory is bounded by the number of distinct
     * names in the trace (about 160 bytes each), which the trace's length bounds. */
    core_region *regions;
    unsigned nregions, cur_region;
    size_t regions_cap;
    uint32_t *rhash;
    uint32_t rhash_cap; /* a power of two, kept at least twice nregions */
    core_region total;
    uint64_t end_ps;

    /* time breakdown */
    unsigned cls_busy[UNIT_TIME_COUNT];
    uint64_t last_change_ps;
    uint64_t t_split_ps[UNIT_SPLIT_COUNT]; /* the time split (units.h) */
    uint64_t t_ici_busy_ps;
    /* exposed communication by unit kind, when the chip has more than one kind of
     * communication unit (ICI and DCN): busy instructions per ISA unit class, the classes of
     * the communication kinds present, and the time with only class c's unit busy */
    unsigned ucls_busy[ISA_UNIT_COUNT];
    unsigned comm_cls[ISA_UNIT_COUNT], ncomm;
    uint64_t t_comm_only_ps[ISA_UNIT_COUNT];
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
    return co->units[slot]->kind->time;
}

static void core_account(core *co)
{
    uint64_t now = kern_now();
    uint64_t dt = now - co->last_change_ps;
    co->last_change_ps = now;
    if (!dt)
        return;
    if (co->cls_busy[UNIT_TIME_COMM])
        co->t_ici_busy_ps += dt;
    unsigned k = 0;
    while (k < UNIT_TIME_COUNT && !co->cls_busy[k])
        k++;
    if (k < UNIT_SPLIT_IDLE || co->inflight || !co->eof || co->have_pending || co->blocked)
        co->t_split_ps[k] += dt; /* idle: waiting on a unit, a semaphore, the trace or a barrier */
    if (k == UNIT_TIME_COMM) {
        if (co->ncomm > 1) {
            unsigned only = ISA_UNIT_COUNT, n = 0;
            for (unsigned i = 0; i < co->ncomm; i++)
                if (co->ucls_busy[co->comm_cls[i]]) {
                    only = co->comm_cls[i];
                    n++;
                }
            if (n == 1)
                co->t_comm_only_ps[only] += dt;
        }
    }
}

static void pump_cb(void *ctx)
{
    core_pump(ctx);
}

static int core_vfail(core *co, err_kind kind, const char *fmt, va_list ap)
{
    err_vsetk(&co->fail, kind, fmt, ap);
    co->failed = 1;
    kern_stop();
    return -1;
}

static int core_fail(core *co, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int core_fail(core *co, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    core_vfail(co, ERR_INPUT, fmt, ap);
    va_end(ap);
    return -1;
}

static int core_failk(core *co, err_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int core_failk(core *co, err_kind kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    core_vfail(co, kind, fmt, ap);
    va_end(ap);
    return -1;
}

/* Route every ISA unit class to its row of the unit table and the row's slots (units are
 * in table order, each row's instances consecutive). Start-up only. */
static int core_route_init(core *co, err *e)
{
    if (unit_kinds_check(unit_kinds, unit_kind_count, e))
        return -1;
    unsigned s = 0;
    for (unsigned i = 0; i < unit_kind_count; i++) {
        const unit_kind *k = &unit_kinds[i];
        core_route *rt = &co->route[k->serves];
        rt->kind = k;
        rt->first = s;
        while (s < co->nunits && co->units[s]->kind == k)
            s++;
        rt->count = s - rt->first;
        if (rt->count && k->time == UNIT_TIME_COMM)
            co->comm_cls[co->ncomm++] = k->serves;
    }
    if (s != co->nunits)
        return err_set(e, "core: unit %u (%s) is not in unit-table order", s, co->units[s]->name);
    for (unsigned op = 0; op < ISA_OP_COUNT; op++) {
        const isa_info *info = isa_info_of(op);
        const unit_kind *k = co->route[info->unit].kind;
        co->select_arg[op] = (int8_t)(k && k->select ? isa_arg_index(op, k->select) : -1);
    }
    return 0;
}

core *core_new(const cfg *c, const char *trace_path, trace_reader *tr, unit **units,
               unsigned nunits, struct ici_net *net, unsigned chip_id, err *e)
{
    core *co = err_calloc(1, sizeof *co, NULL, e);
    if (!co)
        return NULL;
    co->cfg = c;
    snprintf(co->path, sizeof co->path, "%s", trace_path);
    co->tr = tr;
    co->units = units;
    co->nunits = nunits;
    co->net = net;
    co->chip_id = chip_id;
    if (core_route_init(co, e)) {
        free(co);
        return NULL;
    }
    co->q = calloc(co->nunits ? co->nunits : 1, sizeof *co->q);
    co->ust = calloc(co->nunits ? co->nunits : 1, sizeof *co->ust);
    co->sem = calloc(ISA_SEM_MAX, sizeof *co->sem);
    co->fl_cap = 256;
    co->fl = calloc(co->fl_cap, sizeof *co->fl);
    co->regions_cap = 16;
    co->regions = calloc(co->regions_cap, sizeof *co->regions);
    co->rhash_cap = 64;
    co->rhash = calloc(co->rhash_cap, sizeof *co->rhash);
    if (!co->q || !co->ust || !co->sem || !co->fl || !co->regions || !co->rhash)
        goto out_oom;
    for (unsigned i = 0; i < co->nunits; i++) {
        co->q[i].cap = (unsigned)c->core_queue_depth;
        co->q[i].e = malloc(co->q[i].cap * sizeof(core_qent));
        co->q[i].blocked_since = UINT64_MAX;
        co->q[i].wake_at = UINT64_MAX;
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
    err_setk(e, ERR_NOMEM, "out of memory");
    return NULL;
}

void core_free(core *co)
{
    if (!co)
        return;
    kern_event_free(co->pump_ev);
    if (co->q)
        for (unsigned i = 0; i < co->nunits; i++)
            free(co->q[i].e);
    MEM_FREE_ALL(co->q, co->ust, co->sem, co->fl, co->regions, co->rhash, co);
}

void core_start(core *co)
{
    co->last_change_ps = kern_now();
    kern_notify(co->pump_ev, 0);
}

/* ---- checks at dispatch ---- */

/* Check an instruction bound for unit slot `slot` (its class's instance, or the class's first
 * slot if the selecting operand is out of range) and fill its work; 0 if fine. */
static int core_check(core *co, core_qent *q, unsigned slot)
{
    const isa_info *info = isa_info_of(q->in.op);
    const core_route *rt = &co->route[info->unit];
    int sel = co->select_arg[q->in.op];
    unit_work w = {0};
    err e;
    if (!rt->count)
        return core_fail(co, "%s: instruction %" PRIu64 " (%s): %s", co->path, q->idx,
                         info->mnemonic, rt->kind->absent ? rt->kind->absent : "no such unit");
    if (sel >= 0 && q->in.arg[sel] >= rt->count)
        return core_fail(co, "%s: instruction %" PRIu64 " (%s): %s %u, the chip has %u", co->path,
                         q->idx, info->mnemonic, rt->kind->select, (unsigned)q->in.arg[sel],
                         rt->count);
    if (unit_check(co->units[slot], &q->in, &w, &e))
        return core_fail(co, "%s: instruction %" PRIu64 " (%s): %s", co->path, q->idx,
                         info->mnemonic, e.msg);
    q->flops = w.flops;
    q->ideal_ps = w.ideal_ps;
    q->bytes = w.bytes;
    return 0;
}

/* ---- issue ---- */

static uint32_t flight_alloc(core *co)
{
    if (co->fl_free >= co->fl_cap) {
        uint32_t old = co->fl_cap;
        core_flight *fl = realloc(co->fl, 2 * (size_t)old * sizeof *fl);
        if (!fl) {
            core_failk(co, ERR_NOMEM, "out of memory");
            return UINT32_MAX;
        }
        co->fl = fl;
        co->fl_cap *= 2;
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
        if (!unit_can_start(u, &q->in)) {
            qu->refused = 1;
            return progress;
        }
        qu->refused = 0;
        uint64_t now = kern_now(); /* read only once the head issues: pumps poll every queue */
        if (qu->blocked_since != UINT64_MAX) {
            co->ust[slot].stall_sem_ps += now - qu->blocked_since;
            qu->blocked_since = UINT64_MAX;
        }
        if (w)
            co->sem[w - 1]--;
        uint32_t t = flight_alloc(co);
        if (t == UINT32_MAX)
            return progress;
        core_flight *f = &co->fl[t];
        f->slot = (uint16_t)slot;
        f->signal = q->in.signal;
        f->region = q->region;
        f->idx = q->idx;
        f->start_ps = now;
        f->flops = q->flops;
        f->ideal_ps = q->ideal_ps;
        f->op = (uint8_t)q->in.op;
        f->bytes = q->bytes;
        isa_insn in = q->in; /* the unit may read it after we pop */
        uint64_t idx = q->idx;
        qu->head = (qu->head + 1) % qu->cap;
        qu->count--;
        core_account(co);
        co->cls_busy[slot_class(co, slot)]++;
        co->ucls_busy[u->kind->serves]++;
        co->inflight++;
        progress = 1;
        unit_start(u, &in, t);
        if (kern_overflowed() && !co->failed) {
            core_failk(co, ERR_OVERFLOW,
                       "%s: instruction %" PRIu64 " (%s): its completion time does not fit the "
                       "64-bit picosecond clock (2^64 ps, about 213 days)",
                       co->path, idx, isa_info_of(in.op)->mnemonic);
            return 0;
        }
    }
    return progress;
}

/* Count semaphore `sem` up and mark the queues whose head waits on it for a retry. Returns
 * nonzero if that may let something issue or dispatch: such a head, or the dispatcher
 * blocked on a wait for it. */
static int core_signal(core *co, unsigned sem)
{
    int woke = co->blocked == 2 && co->pending.wait == sem + 1;
    co->sem[sem]++;
    for (unsigned s = 0; s < co->nunits; s++) {
        core_queue *qu = &co->q[s];
        if (qu->count && qu->e[qu->head].in.wait == sem + 1) {
            qu->poll = 1;
            woke = 1;
        }
    }
    return woke;
}

/* Charge a completed instruction of unit kind k (ISA class cls_unit) to region r. Sums
 * saturate and set *ovf rather than wrap: a run whose totals pass 2^64 is an error. */
static void region_charge(core_region *r, const core_flight *f, const unit_kind *k,
                          unsigned cls_unit, uint64_t now, int *ovf)
{
    r->insns++;
    r->flops = stats_add_sat(r->flops, f->flops, ovf);
    if (k->matrix) {
        r->mxu_flops = stats_add_sat(r->mxu_flops, f->flops, ovf);
        r->mxu_ideal_ps = stats_add_sat(r->mxu_ideal_ps, f->ideal_ps, ovf);
    }
    if (k->traffic == UNIT_TRAFFIC_HBM)
        r->hbm_bytes = stats_add_sat(r->hbm_bytes, f->bytes, ovf);
    else if (k->traffic == UNIT_TRAFFIC_ICI)
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
    co->ucls_busy[u->kind->serves]--;
    co->inflight--;
    const unit_kind *k = co->units[f->slot]->kind;
    if (co->obs)
        co->obs(co->obs_ctx, f->idx, f->op, u, f->start_ps, now, f->region,
                k->traffic == UNIT_TRAFFIC_HBM || k->traffic == UNIT_TRAFFIC_ICI ? f->bytes : 0);
    int ovf = 0;
    region_charge(&co->regions[f->region], f, k, ucls, now, &ovf);
    region_charge(&co->total, f, k, ucls, now, &ovf);
    if (ovf && !co->failed)
        core_failk(co, ERR_OVERFLOW,
                   "%s: instruction %" PRIu64 " (%s): the run's FLOP, byte or busy-time total "
                   "passes 2^64",
                   co->path, f->idx, isa_info_of(f->op)->mnemonic);
    if (now > co->end_ps)
        co->end_ps = now;
    co->q[f->slot].poll = 1;
    /* A pump is needed only if this completion may let something issue or dispatch: the
     * unit's queue has a head that was not refused (a refused one waits for unit_wake) and
     * whose semaphore is free, the signal reaches a waiter, or a barrier waits for the last
     * instruction in flight. Else the pump would find nothing to do (every other blocked
     * state waits on one of these), and costs an event per instant. */
    const core_queue *qu = &co->q[f->slot];
    unsigned hw = qu->count ? qu->e[qu->head].in.wait : 0;
    int need = (qu->count && !qu->refused && (!hw || co->sem[hw - 1])) ||
               (co->blocked == 3 && !co->inflight);
    if (f->signal && core_signal(co, f->signal - 1u))
        need = 1;
    f->live = 0;
    f->next_free = co->fl_free;
    co->fl_free = token;
    if (need)
        core_pump_later(co);
}

/* The queue of unit u (each unit has one slot); NULL for a unit the core does not hold. */
static core_queue *core_queue_of(core *co, const unit *u)
{
    for (unsigned s = 0; s < co->nunits; s++)
        if (co->units[s] == u)
            return &co->q[s];
    return NULL;
}

void core_unit_wake(void *host, unit *u)
{
    core *co = host;
    core_queue *qu = core_queue_of(co, u);
    if (qu) {
        qu->poll = 1;
        qu->refused = 0;
    }
    core_pump_later(co);
}

/* The wake is kept with the unit's queue and the pump event armed for the first delta cycle
 * of t_ps (the kernel keeps an earlier pending notification; the pump re-arms for the rest):
 * the pump applies it there, after every timed callback of t_ps, where a pump requested by
 * unit_wake in the timed phase would run. So a unit's wake costs the pump's event alone. */
void core_unit_wake_at(void *host, unit *u, uint64_t t_ps)
{
    core *co = host;
    core_queue *qu = core_queue_of(co, u);
    if (qu) {
        if (qu->wake_at == UINT64_MAX)
            co->nwake_at++;
        if (t_ps < qu->wake_at)
            qu->wake_at = t_ps;
    }
    kern_notify_at_delta(co->pump_ev, t_ps);
}

/* At a pump: apply the wakes due by now (as core_unit_wake); with `rearm`, arm the pump for
 * the earliest one still pending (a pump requested meanwhile may have replaced it). */
static void core_wakes(core *co, int rearm)
{
    uint64_t now = kern_now(), next = UINT64_MAX;
    for (unsigned s = 0; s < co->nunits; s++) {
        core_queue *qu = &co->q[s];
        if (qu->wake_at == UINT64_MAX)
            continue;
        if (qu->wake_at <= now) {
            qu->wake_at = UINT64_MAX;
            co->nwake_at--;
            qu->poll = 1;
            qu->refused = 0;
        } else if (qu->wake_at < next)
            next = qu->wake_at;
    }
    if (rearm && next != UINT64_MAX)
        kern_notify_at_delta(co->pump_ev, next);
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
    if (mem_grow(&co->regions, &co->regions_cap, (size_t)co->nregions + 1, sizeof *co->regions,
                 16))
        return -1;
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
    core_account(co); /* the interval so far was spent blocked (idle unless a unit is busy) */
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
                /* A barrier completes when it is released: the run lasts at least until then
                 * (a trailing barrier's wait is part of the run, as its time split says). */
                if (kern_now() > co->end_ps)
                    co->end_ps = kern_now();
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
        const core_route *rt = &co->route[info->unit];
        int sel = co->select_arg[in->op];
        unsigned slot = rt->first;
        if (!rt->count) {
            core_qent q = {.in = *in, .idx = co->next_idx};
            core_check(co, &q, slot); /* reports the missing unit */
            return progress;
        }
        if (sel >= 0 && in->arg[sel] < rt->count)
            slot += (unsigned)in->arg[sel]; /* out of range: core_check reports it */
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
        if (core_check(co, q, slot))
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
    if (co->nwake_at)
        core_wakes(co, 0);
    do {
        co->pump_again = 0;
        for (unsigned s = 0; s < co->nunits; s++)
            if (co->q[s].count && co->q[s].poll && try_issue(co, s))
                co->pump_again = 1;
        if (dispatch(co))
            co->pump_again = 1;
    } while (co->pump_again && !co->failed);
    co->in_pump = 0;
    if (co->nwake_at)
        core_wakes(co, 1);
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
        return err_setk(e, co->fail.kind, "%s", co->fail.msg);
    if (kern_overflowed()) {
        /* The oldest instruction still in flight is one whose end does not fit. */
        const core_flight *old = core_oldest_live(co);
        if (old)
            return err_setk(e, ERR_OVERFLOW,
                            "%s: instruction %" PRIu64 " (%s): its completion time does not fit "
                            "the 64-bit picosecond clock (2^64 ps, about 213 days)",
                            co->path, old->idx, isa_info_of(old->op)->mnemonic);
        return err_setk(e, ERR_OVERFLOW,
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
            return err_setk(e, ERR_DEADLOCK,
                            "%s: deadlock: instruction %" PRIu64 " (%s) waits on semaphore %u, "
                            "which nothing left can signal",
                            co->path, q->idx, isa_info_of(q->in.op)->mnemonic, q->in.wait - 1);
    }
    if (co->have_pending && co->pending.wait && co->blocked == 2)
        return err_setk(e, ERR_DEADLOCK,
                        "%s: deadlock: instruction %" PRIu64 " (%s) waits on semaphore %u, which "
                        "nothing left can signal",
                        co->path, co->next_idx, isa_info_of(co->pending.op)->mnemonic,
                        co->pending.wait - 1);
    /* A barrier first waits for this chip's own instructions to finish, then for the other
     * chips: name whichever of the two it is stuck on. */
    const core_flight *old = core_oldest_live(co);
    if (co->blocked == 3 && !co->barrier_arrived && old)
        return err_setk(e, ERR_DEADLOCK,
                        "%s: deadlock: instruction %" PRIu64 " (sync.barrier) waits for "
                        "instruction %" PRIu64 " (%s), which started but never completed%s",
                        co->path, co->next_idx, old->idx, isa_info_of(old->op)->mnemonic,
                        old->op == ISA_OP_ICI_RECV ? " (no matching ici.send reached it)" : "");
    if (co->blocked == 3 && co->barrier_arrived) {
        unsigned first = 0, missing = co->net ? ici_net_barrier_missing(co->net, &first) : 0;
        if (missing)
            return err_setk(e, ERR_DEADLOCK,
                            "%s: deadlock: instruction %" PRIu64 " (sync.barrier) never released: "
                            "%u chip(s) never reached it, the first chip %u (see its own "
                            "deadlock)",
                            co->path, co->next_idx, missing, first);
    }
    if (co->blocked == 3)
        return err_setk(e, ERR_DEADLOCK,
                        "%s: deadlock: instruction %" PRIu64 " (sync.barrier) never released",
                        co->path, co->next_idx);
    if (old)
        return err_setk(e, ERR_DEADLOCK,
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
    return co->t_split_ps[UNIT_TIME_COMM];
}

uint64_t core_ici_busy_ps(const core *co)
{
    return co->t_ici_busy_ps;
}

void core_register_stats(core *co, stats_reg *r)
{
    static const stats_def core_defs[] = {
        STATS_COUNTER(core, end_ps, "ps", "completion time of the last instruction"),
        STATS_U64(core, total.insns, "insns", "insns", "instructions replayed"),
        STATS_U64(core, total.flops, "flops", "FLOP", "MXU and vector FLOPs"),
        STATS_U64(core, total.mxu_flops, "mxu_flops", "FLOP", "MXU FLOPs"),
        STATS_U64(core, total.mxu_ideal_ps, "mxu_ideal_ps", "ps",
                  "MXU FLOPs at the peak rate of their datatype"),
        STATS_U64(core, total.hbm_bytes, "hbm_bytes", "B", "bytes moved by DMA"),
        STATS_U64(core, total.ici_bytes, "ici_bytes", "B", "bytes sent over ICI"),
        STATS_COUNTER(core, dispatch_stall_ps, "ps", "dispatcher stalled on sync.wait or barrier"),
    };
    stats_table(r, "core", co, core_defs, STATS_NDEFS(core_defs));
    for (unsigned k = 0; k < UNIT_SPLIT_COUNT; k++)
        stats_u64(r, "core", unit_split_stat(k), "ps", unit_split_desc(k), &co->t_split_ps[k]);
    stats_u64(r, "core", "t_ici_busy_ps", "ps", "time with ICI (or, between slices, DCN) busy",
              &co->t_ici_busy_ps);
    /* Exposed communication split by kind, only when there is more than one kind (a chip of
     * one slice keeps t_comm_ps alone). t_comm_ps minus their sum: several kinds at once. */
    for (unsigned i = 0; co->ncomm > 1 && i < co->ncomm; i++) {
        char nm[48];
        snprintf(nm, sizeof nm, "t_comm_%s_ps", co->route[co->comm_cls[i]].kind->name);
        stats_u64(r, "core", nm, "ps",
                  "time with only this kind of communication unit busy (its exposed time)",
                  &co->t_comm_only_ps[co->comm_cls[i]]);
    }
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
