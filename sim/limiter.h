/* limiter.h - bottleneck attribution: which resource limited each stretch of a run, measured
 * from the counters the unit models keep (not from the roofline position).
 *
 * Rule (docs/architecture.md, "Bottleneck attribution"): the run is cut into slices at every
 * window boundary (limiter.window_us) and every change of the region of the completing
 * instructions. Over each slice the limiter takes the utilisation of every resource from the
 * growth of its counters:
 *   mxu              sum of the MXUs' streaming-port busy time / (MXUs x slice)
 *   mxu_weight_load  sum of the MXUs' weight-load-path busy time / (MXUs x slice)
 *   vpu              vector-unit busy time (union of its pipes) / (vector units x slice)
 *   vmem             bytes through VMEM / (VMEM bandwidth x slice)
 *   hbm              HBM data bus busy or idle with a request queued (hbm.busy_demand_ps,
 *                    averaged over buses) / slice, then its exponential moving average over
 *                    the region's slices so far (time constant LIMITER_HBM_TAU_PS)
 *   ici              time with an ICI instruction in flight / slice
 * each clamped to 1. A compute resource (mxu, mxu_weight_load, vpu) at LIMITER_SATURATED
 * explains the slice, half and half with the more loaded memory when that one is saturated
 * too. Otherwise the slice is charged to the most utilised resource (ties: the order above);
 * when even that one is below LIMITER_BUSY (half used), nothing is saturated and the slice
 * waits on latency or semaphore chains: `dependency`. A region's and the run's shares
 * are their slices' times per resource; their limiter is the resource with the largest share.
 * Counters are charged when the models charge them (an MXU stream and a weight load at their
 * start, HBM bus time when reserved), so a slice shorter than one instruction can borrow from
 * its neighbour; the window keeps slices long against instructions. */
#ifndef TPU_LIMITER_H
#define TPU_LIMITER_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "stats.h"
#include "core.h"
#include "unit.h"

struct vmem;

typedef enum limiter_res {
    LIMITER_MXU,
    LIMITER_MXU_WEIGHT_LOAD,
    LIMITER_VPU,
    LIMITER_VMEM,
    LIMITER_HBM,
    LIMITER_ICI,
    LIMITER_DEPENDENCY,
    LIMITER_COUNT
} limiter_res;

/* Utilisation below which a slice's busiest resource does not explain it. */
#define LIMITER_BUSY 0.5
/* Level from which a resource is saturated: a saturated compute resource explains its slice,
 * shared with memory only when that is saturated too. */
#define LIMITER_SATURATED 0.95
/* Time constant of the HBM level's moving average. DMA loads are issued ahead of their use
 * (double and triple buffering), so a burst that fills HBM for a few microseconds and is
 * followed by an idle bus shows HBM keeping up, not limiting; HBM limits when its demand
 * fills it over the span such buffering covers. 10 us: ten windows; the decode checks of
 * docs/architecture.md name the same limiters from 5 to 20 us. */
#define LIMITER_HBM_TAU_PS 10e6
/* Longest slice: short against a step, long against one instruction. */
#define LIMITER_WINDOW_PS 1000000.0

/* "mxu", "mxu_weight_load", "vpu", "vmem", "hbm", "ici", "dependency". */
const char *limiter_name(limiter_res r);

/* Time (ps) attributed to each resource. */
typedef struct limiter_shares {
    double ps[LIMITER_COUNT];
} limiter_shares;

/* The resource with the largest share (ties: enum order); dependency when all are zero. */
limiter_res limiter_pick(const limiter_shares *s);
/* r's share of the attributed time, in [0, 1] (0 when nothing was attributed). */
double limiter_fraction(const limiter_shares *s, limiter_res r);
/* The slice rule on one slice's utilisations (indexed by limiter_res, dependency unused):
 * fills w with the fraction of the slice charged to each resource (summing to 1). */
void limiter_slice(const double util[LIMITER_COUNT], double w[LIMITER_COUNT]);

typedef struct limiter limiter;

/* Resolve the counters in r (a chip's registry: units by the unit table's kinds, "hbm",
 * "core") and vm's byte count; they, not the registry, must outlive the limiter. NULL with e
 * (ERR_NOMEM) on failure. Free with limiter_free. */
limiter *limiter_new(const cfg *c, const stats_reg *r, const struct vmem *vm, err *e);
void limiter_free(limiter *l);
/* Forward each completion to another observer (the energy meter) after attributing. */
void limiter_chain(limiter *l, core_observer next, void *ctx);
/* A core_observer: samples the counters at the first completion of a new region and the first
 * completion past a window boundary. */
void limiter_observe(void *l, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                     uint64_t end_ps, unsigned region, uint64_t bytes);
/* After the run: attribute the last slice, up to end_ps. 0, or -1 with e (ERR_NOMEM, also for
 * a failure while observing). */
int limiter_finish(limiter *l, uint64_t end_ps, err *e);
/* The run's shares, and region i's (the core's region order; zeros for a region never
 * sampled). Valid until limiter_free. */
const limiter_shares *limiter_total(const limiter *l);
const limiter_shares *limiter_region(const limiter *l, unsigned region);

#endif
