/* core.h - the dispatcher of one chip: reads the trace in order, checks each instruction,
 * places it in its unit's in-order queue, issues queue heads when their semaphore wait holds
 * and the unit can take them, and keeps semaphores, regions and stall accounting.
 * Internal to sim/: chip.c builds it, report.c reads it. */
#ifndef TPU_CORE_H
#define TPU_CORE_H

#include <math.h>
#include <stdint.h>

#include "err.h"
#include "trace.h"
#include "config.h"
#include "stats.h"
#include "unit.h"

struct ici_net;

typedef struct core core;

/* Per-region counters (a region runs from one `mark` to the next). */
typedef struct core_region {
    char name[ISA_NAME_MAX];
    uint64_t insns;
    uint64_t flops; /* MXU + vector */
    uint64_t mxu_flops;
    uint64_t mxu_ideal_ps; /* MXU FLOPs at peak rate of their datatype */
    uint64_t hbm_bytes;
    uint64_t ici_bytes;
    uint64_t first_start_ps;
    uint64_t last_end_ps;
    uint64_t busy_ps[ISA_UNIT_COUNT]; /* summed instruction durations per unit class */
} core_region;

/* Per-unit stall counters kept by the dispatcher. */
typedef struct core_unit_stats {
    uint64_t stall_sem_ps;   /* queue head waiting on its semaphore */
    uint64_t stall_qfull_ps; /* dispatcher blocked because this queue was full */
    uint64_t queue_max;      /* deepest occupancy seen */
} core_unit_stats;

/* units: every unit of the chip in unit-table order (units.h), each kind's instances
 * consecutive, nunits of them. Fails if the table leaves an ISA unit class unserved.
 * The core does not own the units or the reader. */
core *core_new(const cfg *c, const char *trace_path, trace_reader *tr, unit **units,
               unsigned nunits, struct ici_net *net, unsigned chip_id, err *e);
void core_free(core *co);
/* Begin dispatching at the current kernel time (schedules the first pump). */
void core_start(core *co);
/* Unit callbacks (wired into unit_env by the chip). */
void core_unit_done(void *host, unit *u, uint32_t token);
void core_unit_wake(void *host, unit *u);
void core_unit_wake_at(void *host, unit *u, uint64_t t_ps);
/* After the kernel ran: 0 if all instructions completed; else e says why (trace error,
 * invalid instruction, deadlock with instruction index and semaphore). */
int core_finish(core *co, err *e);
/* After a deadlock, how directly this chip is the cause: 0 stuck on its own (a semaphore
 * nothing can signal; also 0 without a deadlock), 1 waiting in an ICI instruction (a receive
 * or collective other chips never served), 2 arrived at a barrier others never reached.
 * Lets a pod report the chip that blocks the others. */
int core_waits_on_other_chips(const core *co);
int core_done(const core *co);

uint64_t core_end_ps(const core *co);
uint64_t core_insns(const core *co);
const core_region *core_regions(const core *co, unsigned *count);
const core_region *core_total(const core *co); /* whole-trace totals in the same form */
const core_unit_stats *core_unit_stat(const core *co, unsigned unit_slot);
unsigned core_unit_count(const core *co);
unit *core_unit_at(const core *co, unsigned unit_slot);
uint64_t core_dispatch_stall_ps(const core *co); /* sync.wait and barrier stalls */
uint64_t core_ici_exposed_ps(const core *co);    /* ICI busy while no compute/DMA busy */
uint64_t core_ici_busy_ps(const core *co);
void core_register_stats(core *co, stats_reg *r);

/* Observer of completed instructions (timelines, progress). Called once per instruction
 * that ran on a unit, at its completion, with the trace index, opcode, unit, start and end
 * (ps), region index and the HBM or ICI bytes the instruction moved (the bytes its unit's
 * traffic class charges to the region: 0 for compute). Not called for sync/mark
 * instructions. */
typedef void (*core_observer)(void *ctx, uint64_t idx, unsigned op, const unit *u,
                              uint64_t start_ps, uint64_t end_ps, unsigned region,
                              uint64_t bytes);
/* For observers that attribute time slices to regions at completions (energy meter, limiter):
 * the owner of the slice [last_ps, end_ps) closed by a completion of `region` while `cur` was
 * the current region: the region that ran most of it. The completing instruction ran
 * [start_ps, end_ps), so a long first instruction of a new region (a collective) is not
 * charged to the region before it. */
static inline unsigned core_slice_owner(unsigned cur, unsigned region, uint64_t last_ps,
                                        uint64_t start_ps, uint64_t end_ps)
{
    if (region == cur)
        return cur;
    uint64_t from = start_ps > last_ps ? start_ps : last_ps;
    return end_ps > from && 2 * (end_ps - from) > end_ps - last_ps ? region : cur;
}
/* Such an observer's sampling state: it closes a slice at the completion that changes the
 * region or passes the end of the window of the last sample. */
typedef struct core_sampler {
    int started;
    unsigned cur_region;   /* region of the completions since the last sample */
    double next_sample_ps; /* end of the window of the last sample */
} core_sampler;
/* Nonzero if the completion of `region` ending at end_ps closes a slice (the first completion
 * only sets the current region); the caller then charges the slice and calls
 * core_sampler_next. */
static inline int core_sampler_due(core_sampler *s, unsigned region, uint64_t end_ps)
{
    if (!s->started) {
        s->started = 1;
        s->cur_region = region;
    }
    return region != s->cur_region || (double)end_ps >= s->next_sample_ps;
}
/* After the slice is charged: `region` is current, and the next slice closes at the end of
 * end_ps's window of win_ps (windows [k win_ps, (k+1) win_ps)). */
static inline void core_sampler_next(core_sampler *s, unsigned region, uint64_t end_ps,
                                     double win_ps)
{
    s->cur_region = region;
    s->next_sample_ps = (floor((double)end_ps / win_ps) + 1) * win_ps;
}
void core_set_observer(core *co, core_observer fn, void *ctx);
/* Instructions read from the trace so far (for progress reporting). */
uint64_t core_dispatched(const core *co);

#endif
