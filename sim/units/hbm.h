/* hbm.h - high-bandwidth memory timing: channels, pseudo-channels, banks and rows.
 *
 * Requests are reserved, not queued: hbm_access() computes when an access issued at
 * `now` completes given each pseudo-channel's bus and bank state, and updates that state.
 * Callers (DMA engines) issue per chunk, so there is one call per chunk, never per byte or
 * burst; inside, the work is per interleave granule. Requests from several engines share
 * the same bus and bank state, so they share bandwidth. Models are chosen by hbm.model:
 * "banked" (row-buffer state machine with tRCD/tRP/tCL, turnaround and refresh) and
 * "simple" (peak x efficiency plus a fixed latency). See the comments in hbm.c. */
#ifndef TPU_HBM_H
#define TPU_HBM_H

#include <stdint.h>

#include "config.h"
#include "stats.h"

typedef struct hbm hbm;

hbm *hbm_new(const cfg *c, err *e); /* NULL with e (ERR_NOMEM) on failure; free with hbm_free */
void hbm_free(hbm *h);
/* Access [addr, addr+bytes) (bytes > 0, within capacity) issued at now_ps; returns the
 * time (ps, >= now_ps) at which its last data beat has transferred. */
uint64_t hbm_access(hbm *h, uint64_t addr, uint64_t bytes, int is_write, uint64_t now_ps);
/* count blocks of `block` bytes (> 0), block k at addr + k x stride (stride >= block, all
 * within capacity), issued in order at now_ps: the same timing and counters as count
 * hbm_access calls, at a cost per row touched rather than per block when the blocks fit in
 * interleave granules. Returns the time the last data beat of any block has transferred. */
uint64_t hbm_access_strided(hbm *h, uint64_t addr, uint64_t block, uint64_t stride, uint64_t count,
                            int is_write, uint64_t now_ps);
double hbm_peak_bytes_per_ps(const hbm *h);
/* Register counters under group "hbm": bytes read/written, row hits/misses, refreshes,
 * busy time, and formulas for achieved bandwidth. */
void hbm_register_stats(hbm *h, stats_reg *r);

#endif
