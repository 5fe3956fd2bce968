/* limiter.c - bottleneck attribution over slices of a run from the models' counters (the rule:
 * limiter.h). Sampling follows the energy meter: a compare per completion, a pass over a few
 * resolved counters per slice. */
#include "limiter.h"

#include "core.h"
#include "mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"
#include "vmem.h"

#define LIMITER_MAX_SRC 64 /* counters summed per resource (MXUs), more are ignored */

static const char *const limiter_names[LIMITER_COUNT] = {
    "mxu", "mxu_weight_load", "vpu", "vmem", "hbm", "ici", "dependency",
};

/* One resource's counters: their sum grows by its busy time (or bytes for vmem). */
typedef struct limiter_src {
    const uint64_t *v[LIMITER_MAX_SRC];
    unsigned n;
    stats_fn fn; /* a formula instead (HBM's averaged bus busy time), over ctx */
    const void *ctx;
    double cap; /* instances (busy time) or bytes/ps (vmem) */
    double last;
    double carry; /* busy time charged ahead of the slice (at an instruction's start) */
    /* Time the units' instructions were stretched by this resource (stall_vmem_ps of every
     * unit): summed over units, per slice time. */
    const uint64_t *w[LIMITER_MAX_SRC];
    unsigned nw;
    double wlast;
} limiter_src;

struct limiter {
    limiter_src src[LIMITER_DEPENDENCY];
    const struct vmem *vm;
    limiter_shares total;
    limiter_shares *reg;
    unsigned nreg;
    size_t capreg;
    int oom;
    double hbm_avg;      /* HBM level's moving average (LIMITER_HBM_TAU_PS); < 0: restart */
    unsigned hbm_region; /* the region hbm_avg averages over */
    core_sampler smp;
    uint64_t last_ps;
    core_observer next;
    void *next_ctx;
};

const char *limiter_name(limiter_res r)
{
    return r < LIMITER_COUNT ? limiter_names[r] : "?";
}

limiter_res limiter_pick(const limiter_shares *s)
{
    limiter_res best = LIMITER_DEPENDENCY;
    double most = 0;
    for (int r = 0; r < LIMITER_COUNT; r++)
        if (s->ps[r] > most) {
            most = s->ps[r];
            best = (limiter_res)r;
        }
    return best;
}

double limiter_fraction(const limiter_shares *s, limiter_res r)
{
    double sum = 0;
    for (int i = 0; i < LIMITER_COUNT; i++)
        sum += s->ps[i];
    return sum > 0 ? s->ps[r] / sum : 0;
}

void limiter_slice(const double util[LIMITER_COUNT], double w[LIMITER_COUNT])
{
    memset(w, 0, LIMITER_COUNT * sizeof *w);
    for (int r = LIMITER_MXU; r <= LIMITER_VPU; r++) {
        if (util[r] < LIMITER_SATURATED)
            continue;
        int m = util[LIMITER_HBM] >= util[LIMITER_VMEM] ? LIMITER_HBM : LIMITER_VMEM;
        if (util[m] >= LIMITER_SATURATED) { /* co-limited: memory saturated as well */
            w[r] = w[m] = 0.5;
        } else {
            w[r] = 1;
        }
        return;
    }
    limiter_res best = LIMITER_DEPENDENCY;
    double most = 0;
    for (int r = 0; r < LIMITER_DEPENDENCY; r++)
        if (util[r] > most) {
            most = util[r];
            best = (limiter_res)r;
        }
    w[most >= LIMITER_BUSY ? best : LIMITER_DEPENDENCY] = 1;
}

static void src_add(limiter_src *s, const uint64_t *v)
{
    if (s->n < LIMITER_MAX_SRC)
        s->v[s->n++] = v;
}

static double src_wait(const limiter_src *s)
{
    double sum = 0;
    for (unsigned i = 0; i < s->nw; i++)
        sum += (double)*s->w[i];
    return sum;
}

static double src_value(const limiter *l, const limiter_src *s, limiter_res r)
{
    if (r == LIMITER_VMEM)
        return l->vm ? (double)vmem_bytes(l->vm) : 0;
    if (s->fn)
        return s->fn(s->ctx);
    double sum = 0;
    for (unsigned i = 0; i < s->n; i++)
        sum += (double)*s->v[i];
    return sum;
}

limiter *limiter_new(const cfg *c, const stats_reg *r, const struct vmem *vm, err *e)
{
    limiter *l = err_calloc(1, sizeof *l, "limiter", e);
    if (!l)
        return NULL;
    l->vm = vm;
    l->hbm_avg = -1;
    unsigned nvec = 0;
    /* Units by their row of the unit table: matrix kinds feed mxu (streaming port) and
     * mxu_weight_load (load path), other compute kinds the vector unit. */
    for (size_t i = 0; i < stats_count(r); i++) {
        const stats_entry *s = stats_at(r, i);
        const unit_kind *k = unit_kind_of_group(s->group);
        if (!k || !s->value)
            continue;
        if (!strcmp(s->name, "stall_vmem_ps") && l->src[LIMITER_VMEM].nw < LIMITER_MAX_SRC)
            l->src[LIMITER_VMEM].w[l->src[LIMITER_VMEM].nw++] = s->value;
        if (k->matrix && !strcmp(s->name, "busy_ps"))
            src_add(&l->src[LIMITER_MXU], s->value);
        else if (k->matrix && !strcmp(s->name, "load_busy_ps"))
            src_add(&l->src[LIMITER_MXU_WEIGHT_LOAD], s->value);
        else if (k->time == UNIT_TIME_COMPUTE && !k->matrix && !strcmp(s->name, "busy_ps")) {
            src_add(&l->src[LIMITER_VPU], s->value);
            nvec++;
        }
    }
    double nmxu = l->src[LIMITER_MXU].n ? l->src[LIMITER_MXU].n : 1;
    l->src[LIMITER_MXU].cap = nmxu;
    l->src[LIMITER_MXU_WEIGHT_LOAD].cap = nmxu;
    l->src[LIMITER_VPU].cap = nvec ? nvec : 1;
    l->src[LIMITER_VMEM].cap =
        (double)(cfg_device_cores(c) * c->vmem_bytes_per_cycle) / cfg_cycle_ps(c); /* bytes/ps */
    /* HBM's level counts row, turnaround and refresh gaps with requests queued as busy, but not
     * the queueing itself: transfers prefetched far ahead queue without limiting anything. */
    const stats_entry *hbm = stats_find(r, "hbm", "busy_demand_ps"); /* dies with r */
    if (hbm && hbm->fn) {
        l->src[LIMITER_HBM].fn = hbm->fn;
        l->src[LIMITER_HBM].ctx = hbm->ctx;
    }
    l->src[LIMITER_HBM].cap = 1;
    const stats_entry *ici = stats_find(r, "core", "t_ici_busy_ps");
    if (ici && ici->value)
        src_add(&l->src[LIMITER_ICI], ici->value);
    l->src[LIMITER_ICI].cap = 1;
    for (int k = 0; k < LIMITER_DEPENDENCY; k++) {
        l->src[k].last = src_value(l, &l->src[k], (limiter_res)k);
        l->src[k].wlast = src_wait(&l->src[k]);
    }
    return l;
}

void limiter_free(limiter *l)
{
    if (l)
        MEM_FREE_ALL(l->reg, l);
}

void limiter_chain(limiter *l, core_observer next, void *ctx)
{
    l->next = next;
    l->next_ctx = ctx;
}

/* Region i's shares, growing the array; NULL on out-of-memory (remembered). */
static limiter_shares *limiter_reg(limiter *l, unsigned i)
{
    if (mem_grow(&l->reg, &l->capreg, (size_t)i + 1, sizeof *l->reg, 16)) {
        l->oom = 1;
        return NULL;
    }
    if (i >= l->nreg)
        l->nreg = i + 1;
    return &l->reg[i];
}

/* Attribute the slice [last_ps, t) to region and to the run. */
static void limiter_charge(limiter *l, uint64_t t, unsigned region)
{
    double dt = (double)(t - l->last_ps);
    double util[LIMITER_COUNT] = {0};
    for (int k = 0; k < LIMITER_DEPENDENCY; k++) {
        limiter_src *s = &l->src[k];
        double v = src_value(l, s, (limiter_res)k);
        double w = src_wait(s);
        double busy = v - s->last + s->carry, room = s->cap * dt;
        s->carry = busy > room ? busy - room : 0;
        double u = room > 0 ? (busy < room ? busy : room) / room : 0;
        double uw = dt > 0 ? (w - s->wlast) / dt : 0;
        util[k] = u > uw ? u : uw;
        s->last = v;
        s->wlast = w;
    }
    l->last_ps = t;
    if (dt <= 0)
        return;
    /* HBM over the span buffering covers: a = 1 - exp(-dt / tau), avg += (level - avg) a,
     * restarted at each region (a phase of its own) */
    if (region != l->hbm_region)
        l->hbm_avg = -1;
    l->hbm_region = region;
    double a = l->hbm_avg < 0 ? 1 : 1 - exp(-dt / LIMITER_HBM_TAU_PS);
    l->hbm_avg += (util[LIMITER_HBM] - l->hbm_avg) * a;
    util[LIMITER_HBM] = l->hbm_avg;
    double w[LIMITER_COUNT];
    limiter_slice(util, w);
    limiter_shares *g = limiter_reg(l, region);
    for (int k = 0; k < LIMITER_COUNT; k++) {
        l->total.ps[k] += w[k] * dt;
        if (g)
            g->ps[k] += w[k] * dt;
    }
}

void limiter_observe(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                     uint64_t end_ps, unsigned region, uint64_t bytes)
{
    limiter *l = ctx;
    if (core_sampler_due(&l->smp, region, end_ps)) {
        unsigned owner = core_slice_owner(l->smp.cur_region, region, l->last_ps, start_ps, end_ps);
        limiter_charge(l, end_ps, owner);
        core_sampler_next(&l->smp, region, end_ps, LIMITER_WINDOW_PS);
    }
    if (l->next)
        l->next(l->next_ctx, idx, op, u, start_ps, end_ps, region, bytes);
}

int limiter_finish(limiter *l, uint64_t end_ps, err *e)
{
    if (end_ps > l->last_ps)
        limiter_charge(l, end_ps, l->smp.cur_region);
    if (l->oom)
        return err_setk(e, ERR_NOMEM, "limiter: out of memory");
    return 0;
}

const limiter_shares *limiter_total(const limiter *l)
{
    return &l->total;
}

const limiter_shares *limiter_region(const limiter *l, unsigned region)
{
    static const limiter_shares none;
    return region < l->nreg ? &l->reg[region] : &none;
}
