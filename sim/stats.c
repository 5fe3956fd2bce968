/* stats.c - the statistics registry: a growable array of named counters and formulas. */
#include "stats.h"
#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stats_reg {
    stats_entry *v;
    size_t n, cap;
    int nomem; /* a registration was dropped for want of memory (stats_check reports it) */
};

stats_reg *stats_new(err *e)
{
    stats_reg *r = calloc(1, sizeof *r);
    if (!r)
        err_setk(e, ERR_NOMEM, "out of memory for the statistics registry");
    return r;
}

int stats_check(const stats_reg *r, err *e)
{
    if (r->nomem)
        return err_setk(e, ERR_NOMEM, "out of memory registering statistics");
    return 0;
}

void stats_free(stats_reg *r)
{
    if (r)
        MEM_FREE_ALL(r->v, r);
}

/* Copy src into dst[n] (n > 0), truncated and NUL-terminated, as snprintf("%s") would, at
 * a fraction of its cost: a chip registers a few thousand counters per run. */
static void stats_copy(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; i + 1 < n && src[i]; i++)
        dst[i] = src[i];
    dst[i] = 0;
}

static stats_entry *stats_push(stats_reg *r, const char *group, const char *name, const char *unit,
                               const char *desc)
{
    if (mem_grow(&r->v, &r->cap, r->n + 1, sizeof *r->v, 64)) {
        r->nomem = 1;
        return NULL;
    }
    stats_entry *e = &r->v[r->n++];
    memset(e, 0, sizeof *e);
    stats_copy(e->group, sizeof e->group, group);
    stats_copy(e->name, sizeof e->name, name);
    e->unit = unit;
    e->desc = desc;
    return e;
}

void stats_u64(stats_reg *r, const char *group, const char *name, const char *unit,
               const char *desc, const uint64_t *value)
{
    stats_entry *e = stats_push(r, group, name, unit, desc);
    if (e)
        e->value = value;
}

void stats_formula(stats_reg *r, const char *group, const char *name, const char *unit,
                   const char *desc, stats_fn fn, const void *ctx)
{
    stats_entry *e = stats_push(r, group, name, unit, desc);
    if (!e)
        return;
    e->fn = fn;
    e->ctx = ctx;
}

void stats_table(stats_reg *r, const char *group, const void *owner, const stats_def *defs,
                 size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const stats_def *d = &defs[i];
        const void *at = (const char *)owner + d->offset;
        if (d->fn)
            stats_formula(r, group, d->name, d->unit, d->desc, d->fn, at);
        else
            stats_u64(r, group, d->name, d->unit, d->desc, (const uint64_t *)at);
    }
}

size_t stats_count(const stats_reg *r)
{
    return r->n;
}

const stats_entry *stats_at(const stats_reg *r, size_t i)
{
    return i < r->n ? &r->v[i] : NULL;
}

const stats_entry *stats_find(const stats_reg *r, const char *group, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].group, group) && !strcmp(r->v[i].name, name))
            return &r->v[i];
    return NULL;
}

double stats_value(const stats_entry *e)
{
    if (e->value)
        return (double)*e->value;
    return e->fn ? e->fn(e->ctx) : 0.0;
}

double stats_get(const stats_reg *r, const char *group, const char *name, double dflt)
{
    const stats_entry *e = stats_find(r, group, name);
    return e ? stats_value(e) : dflt;
}
