/* vmem.h - on-chip vector memory: capacity and a shared-bandwidth arbiter.
 *
 * Bandwidth model: the chip's VMEM moves cores x vmem.bytes_per_cycle bytes per cycle.
 * A client (an MXU, the vector unit, a DMA chunk) that starts a transfer of `bytes` gets an
 * equal share of that bandwidth among the clients active at that moment (itself included)
 * and holds it until vmem_end(). The share is fixed at start: a client that starts while
 * others run does not slow the ones already running. This errs optimistic when many
 * clients overlap and is exact when they do not. */
#ifndef TPU_VMEM_H
#define TPU_VMEM_H

#include <stdint.h>

#include "config.h"

typedef struct vmem vmem;

vmem *vmem_new(const cfg *c); /* aborts on out-of-memory; free with vmem_free */
void vmem_free(vmem *v);
uint64_t vmem_capacity(const vmem *v); /* bytes, all cores */
/* 1 if [addr, addr+bytes) lies inside VMEM (no overflow). */
int vmem_contains(const vmem *v, uint64_t addr, uint64_t bytes);
/* Register an active client moving `bytes`; returns the ps that transfer needs at its
 * bandwidth share. Pair with vmem_end(). */
uint64_t vmem_begin(vmem *v, uint64_t bytes);
void vmem_end(vmem *v);
/* Bytes moved and time with at least one client active (for utilisation). */
uint64_t vmem_bytes(const vmem *v);

#endif
