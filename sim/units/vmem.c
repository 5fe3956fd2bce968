/* vmem.c - on-chip vector memory: capacity check and an equal-share bandwidth arbiter whose
 * share is fixed when a client starts (see vmem.h for why that errs optimistic). */
#include "vmem.h"

#include <assert.h>
#include <stdlib.h>

#include "kernel.h"
#include "stats.h"

struct vmem {
    uint64_t capacity;   /* bytes: chip.cores x vmem.bytes */
    double bytes_per_ps; /* chip.cores x vmem.bytes_per_cycle / ps per cycle */
    uint64_t *until;     /* end times of the shares held (unordered), `held` of them */
    unsigned held, cap;  /* bounded by the clients that can overlap (units x pipes/slots) */
    uint64_t bytes;      /* bytes moved through vmem_share */
};

vmem *vmem_new(const cfg *c, err *e)
{
    vmem *v = calloc(1, sizeof *v);
    if (!v)
        goto out_nomem;
    v->capacity = c->chip_cores * c->vmem_bytes;
    v->bytes_per_ps = (double)(c->chip_cores * c->vmem_bytes_per_cycle) / cfg_cycle_ps(c);
    v->cap = 32;
    v->until = malloc(v->cap * sizeof *v->until);
    if (!v->until)
        goto out_nomem;
    return v;
out_nomem:
    vmem_free(v);
    err_setk(e, ERR_NOMEM, "vmem: out of memory");
    return NULL;
}

void vmem_free(vmem *v)
{
    if (!v)
        return;
    free(v->until);
    free(v);
}

uint64_t vmem_capacity(const vmem *v)
{
    return v->capacity;
}

int vmem_contains(const vmem *v, uint64_t addr, uint64_t bytes)
{
    return addr <= v->capacity && bytes <= v->capacity - addr;
}

/* Drop the shares that ended by the instant `now`, then (shares = those held at start, this
 * one included):
 *   t = ceil(bytes x shares / (cores x bytes_per_cycle / cycle_ps));  d = max(busy_ps, t)
 * Rounded up so a client never moves data faster than its share. */
uint64_t vmem_share_at(vmem *v, uint64_t bytes, uint64_t busy_ps, uint64_t start, uint64_t now)
{
    assert(start >= now);
    uint64_t shares = 1;
    for (unsigned i = 0; i < v->held;)
        if (v->until[i] <= now) {
            v->until[i] = v->until[--v->held];
        } else {
            shares += v->until[i] > start;
            i++;
        }
    v->bytes = stats_add_sat(v->bytes, bytes, NULL); /* saturates, never wraps */
    double ps = (double)bytes * (double)shares / v->bytes_per_ps;
    uint64_t t = (uint64_t)ps;
    if ((double)t < ps)
        t++;
    uint64_t d = t > busy_ps ? t : busy_ps;
    if (v->held == v->cap) { /* grows while the overlapping clients are first seen */
        uint64_t *u = realloc(v->until, 2 * v->cap * sizeof *u);
        if (!u) {
            kern_fail_nomem(); /* the share goes untracked; the run is reported as failed */
            return d;
        }
        v->until = u;
        v->cap *= 2;
    }
    v->until[v->held++] = stats_add_sat(start, d, NULL);
    return d;
}

uint64_t vmem_share(vmem *v, uint64_t bytes, uint64_t busy_ps, uint64_t now)
{
    return vmem_share_at(v, bytes, busy_ps, now, now);
}

uint64_t vmem_bytes(const vmem *v)
{
    return v->bytes;
}
