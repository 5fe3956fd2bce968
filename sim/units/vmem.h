/* vmem.h - on-chip vector memory: capacity and a shared-bandwidth arbiter.
 *
 * Bandwidth model: the chip's VMEM moves cores x vmem.bytes_per_cycle bytes per cycle.
 * A client (an MXU's weight load or stream, a vector-unit pipe, a DMA chunk) that starts a
 * transfer of `bytes` at time `now` gets what the shares held at that moment leave of that
 * bandwidth (each holds the rate it was granted, bytes / duration), at least an equal share
 * among them (itself included), and holds its share until the time vmem_share returns. The arbiter keeps each share's end time and drops the ones that have ended
 * before counting, so a share ending at the very time another starts is never counted as
 * a competitor. Clients starting at the same instant see each other in the order they
 * claim, which is defined, not left to the kernel's order of same-time events: the DMA
 * unit's chunks by (engine, slot), then the instructions the core issues, by unit slot
 * (docs/architecture.md, "Same-instant semantics"). The share is fixed at start: a client
 * that starts while others run does not slow the ones already running. This errs optimistic
 * when many clients overlap and is exact when they do not. */
#ifndef TPU_VMEM_H
#define TPU_VMEM_H

#include <stdint.h>

#include "config.h"

typedef struct vmem vmem;

vmem *vmem_new(const cfg *c, err *e); /* NULL with e (ERR_NOMEM) on failure; free with vmem_free */
void vmem_free(vmem *v);
uint64_t vmem_capacity(const vmem *v); /* bytes, all cores */
/* 1 if [addr, addr+bytes) lies inside VMEM (no overflow). */
int vmem_contains(const vmem *v, uint64_t addr, uint64_t bytes);
/* A client busy for at least busy_ps from `now` moves `bytes` through VMEM: returns
 *   d = max(busy_ps, ceil(bytes / max(B / n, B - sum of the held shares' rates)))
 * (n = the shares held at now, this one included) and holds the share, at rate bytes / d,
 * until now + d (saturating at 2^64 - 1). Calls' `now` never decreases. */
uint64_t vmem_share(vmem *v, uint64_t bytes, uint64_t busy_ps, uint64_t now);
/* The same for a share claimed at the instant `now` that starts later, at start >= now:
 * it counts the shares still held at start. */
uint64_t vmem_share_at(vmem *v, uint64_t bytes, uint64_t busy_ps, uint64_t start, uint64_t now);
/* Bytes moved through vmem_share (for utilisation). */
uint64_t vmem_bytes(const vmem *v);

#endif
