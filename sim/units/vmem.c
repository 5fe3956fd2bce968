/* vmem.c - on-chip vector memory: capacity check and a bandwidth arbiter that gives a
 * starting client what the running ones leave, at least an equal share; the share is fixed
 * when a client starts (see vmem.h for why that errs optimistic). */
#include "vmem.h"

#include <assert.h>
#include <stdlib.h>

#include "kernel.h"
#include "stats.h"
#include "mem.h"

/* A share held: until when, at the rate it was granted (bytes per ps: bytes / duration). */
typedef struct {
    uint64_t until;
    double rate;
} vmem_held;

struct vmem {
    uint64_t capacity;   /* bytes: chip.cores x vmem.bytes */
    double bytes_per_ps; /* chip.cores x vmem.bytes_per_cycle / ps per cycle */
    vmem_held *sh;       /* the shares held (unordered), `held` of them; NULL until the first */
    unsigned held; /* bounded by the clients that can overlap (units x pipes/slots) */
    size_t cap;
    uint64_t bytes;      /* bytes moved through vmem_share */
};

vmem *vmem_new(const cfg *c, err *e)
{
    vmem *v = err_calloc(1, sizeof *v, "vmem", e);
    if (!v)
        return NULL;
    v->capacity = cfg_device_cores(c) * c->vmem_bytes;
    v->bytes_per_ps = (double)(cfg_device_cores(c) * c->vmem_bytes_per_cycle) / cfg_cycle_ps(c);
    return v;
}

void vmem_free(vmem *v)
{
    if (v)
        MEM_FREE_ALL(v->sh, v);
}

uint64_t vmem_capacity(const vmem *v)
{
    return v->capacity;
}

int vmem_contains(const vmem *v, uint64_t addr, uint64_t bytes)
{
    return addr <= v->capacity && bytes <= v->capacity - addr;
}

/* Drop the shares that ended by the instant `now`; then, with B the bandwidth, n the shares
 * held at start (this one included) and r_j the rates the other n - 1 were granted:
 *   alloc = max(B / n, B - sum r_j)     what the running clients leave, at least an equal share
 *   t = ceil(bytes / alloc);  d = max(busy_ps, t);  this share's rate = bytes / d
 * Rounded up so a client never moves data faster than its allocation. A client that needs
 * less than its share (a matmul stream paced by the array, a DMA chunk paced by HBM) holds
 * only the rate it uses, and the rest goes to the next one to start, as a round-robin
 * arbiter hands a requester's idle slots to the others (max-min fair at each start). */
uint64_t vmem_share_at(vmem *v, uint64_t bytes, uint64_t busy_ps, uint64_t start, uint64_t now)
{
    assert(start >= now);
    uint64_t shares = 1;
    double used = 0;
    for (unsigned i = 0; i < v->held;)
        if (v->sh[i].until <= now) {
            v->sh[i] = v->sh[--v->held];
        } else {
            if (v->sh[i].until > start) {
                shares++;
                used += v->sh[i].rate;
            }
            i++;
        }
    v->bytes = stats_add_sat(v->bytes, bytes, NULL); /* saturates, never wraps */
    double equal = v->bytes_per_ps / (double)shares, left = v->bytes_per_ps - used;
    double ps = (double)bytes / (left > equal ? left : equal);
    uint64_t t = (uint64_t)ps;
    if ((double)t < ps)
        t++;
    uint64_t d = t > busy_ps ? t : busy_ps;
    /* grows while the overlapping clients are first seen */
    if (mem_grow(&v->sh, &v->cap, (size_t)v->held + 1, sizeof *v->sh, 32)) {
        kern_fail_nomem(); /* the share goes untracked; the run is reported as failed */
        return d;
    }
    double rate = d ? (double)bytes / (double)d : 0;
    v->sh[v->held++] = (vmem_held){stats_add_sat(start, d, NULL), rate};
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
