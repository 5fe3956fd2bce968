/* unit.c - the wrappers through which the core drives unit models (see unit.h). */
#include "unit.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "units.h"

unit *unit_new(const unit_ops *ops, const unit_env *env, unsigned index, err *e)
{
    assert(ops && ops->init && ops->size >= sizeof(unit) && env);
    const unit_kind *kind = unit_kind_of_ops(ops);
    const char *kind_name = kind ? kind->name : "unit";
    unit *u = err_calloc(1, ops->size, kind_name, e);
    if (!u)
        return NULL;
    u->ops = ops;
    u->kind = kind;
    u->env = env;
    u->index = index;
    snprintf(u->name, sizeof u->name, "%s%u", kind_name, index);
    if (ops->init(u, e)) {
        free(u);
        return NULL;
    }
    return u;
}

int unit_check(unit *u, const isa_insn *in, unit_work *w, err *e)
{
    return u->ops->check ? u->ops->check(u, in, w, e) : 0;
}

void *unit_ring_grow(void *ring, unsigned *cap, unsigned *head, unsigned count, size_t size,
                     unsigned first)
{
    unsigned ncap = *cap ? 2 * *cap : first;
    char *r = malloc((size_t)ncap * size);
    if (!r)
        return NULL;
    const char *old = ring;
    for (unsigned i = 0; i < count; i++)
        memcpy(r + (size_t)i * size, old + (size_t)((*head + i) % *cap) * size, size);
    free(ring);
    *cap = ncap;
    *head = 0;
    return r;
}

int unit_ring_grow_slow(void *ringp, unsigned *cap, unsigned *head, unsigned count, size_t size)
{
    void *ring;
    memcpy(&ring, ringp, sizeof ring);
    void *r = unit_ring_grow(ring, cap, head, count, size, 4);
    if (!r) {
        kern_fail_nomem();
        return -1;
    }
    memcpy(ringp, &r, sizeof r);
    return 0;
}

int unit_ring_init(unit_ring *r, unsigned cap)
{
    *r = (unit_ring){.v = malloc(cap * sizeof *r->v), .cap = cap};
    return r->v ? 0 : -1;
}

void unit_ring_fini(unit_ring *r)
{
    free(r->v);
    r->v = NULL;
}

int unit_check_vmem(const unit *u, const char *what, uint64_t addr, uint64_t bytes, err *e)
{
    uint64_t cap = u->env->vmem_bytes;
    if (bytes <= cap && addr <= cap - bytes)
        return 0;
    return err_set(e,
                   "%s VMEM range [0x%" PRIx64 ", 0x%" PRIx64 ") outside the %" PRIu64 "-byte VMEM",
                   what, addr, addr + bytes, cap);
}

int unit_can_start(unit *u, const isa_insn *in)
{
    return u->ops->can_start ? u->ops->can_start(u, in) : 1;
}

void unit_start(unit *u, const isa_insn *in, uint32_t token)
{
    u->ops->start(u, in, token);
}

void unit_register_stats(unit *u, stats_reg *r)
{
#define UNIT_STAT(field, unit_, desc) STATS_COUNTER(unit, field, unit_, desc),
    static const stats_def unit_defs[] = {UNIT_COUNTERS(UNIT_STAT)};
#undef UNIT_STAT
    stats_table(r, u->name, u, unit_defs, STATS_NDEFS(unit_defs));
    stats_table(r, u->name, u, u->ops->defs, u->ops->ndefs);
    if (u->ops->stats)
        u->ops->stats(u, r);
}

void unit_free(unit *u)
{
    if (!u)
        return;
    if (u->ops->fini)
        u->ops->fini(u);
    free(u);
}

void unit_finish(unit *u, uint32_t token)
{
    u->env->done(u->env->host, u, token);
}

void unit_wake(unit *u)
{
    u->env->wake(u->env->host, u);
}

void unit_wake_at(unit *u, uint64_t t_ps)
{
    assert(u->env->wake_at);
    u->env->wake_at(u->env->host, u, t_ps);
}

void unit_finish_wake(unit *u, uint32_t token, int *refused)
{
    unit_finish(u, token);
    if (*refused) {
        *refused = 0;
        unit_wake(u);
    }
}
