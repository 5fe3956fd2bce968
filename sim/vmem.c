/* vmem.c - on-chip vector memory: capacity check and an equal-share bandwidth arbiter whose
 * share is fixed when a client starts (see vmem.h for why that errs optimistic). */
#include "vmem.h"

#include <assert.h>
#include <stdlib.h>

#include "stats.h"

struct vmem {
    uint64_t capacity;   /* bytes: chip.cores x vmem.bytes */
    double bytes_per_ps; /* chip.cores x vmem.bytes_per_cycle / ps per cycle */
    unsigned active;     /* clients between vmem_begin and vmem_end */
    uint64_t bytes;      /* bytes moved through vmem_begin */
};

vmem *vmem_new(const cfg *c)
{
    vmem *v = calloc(1, sizeof *v);
    if (!v)
        abort();
    v->capacity = c->chip_cores * c->vmem_bytes;
    v->bytes_per_ps = (double)(c->chip_cores * c->vmem_bytes_per_cycle) / cfg_cycle_ps(c);
    return v;
}

void vmem_free(vmem *v)
{
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

/* Time for `bytes` at an equal share among the clients active now, this one included:
 *   t = ceil(bytes x active / (cores x bytes_per_cycle / cycle_ps))
 * Rounded up so a client never moves data faster than its share. */
uint64_t vmem_begin(vmem *v, uint64_t bytes)
{
    v->active++;
    v->bytes = stats_add_sat(v->bytes, bytes, NULL); /* saturates, never wraps */
    double ps = (double)bytes * v->active / v->bytes_per_ps;
    uint64_t r = (uint64_t)ps;
    return (double)r < ps ? r + 1 : r;
}

void vmem_end(vmem *v)
{
    assert(v->active > 0);
    v->active--;
}

uint64_t vmem_bytes(const vmem *v)
{
    return v->bytes;
}
