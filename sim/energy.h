/* energy.h - the energy model: dynamic energy is data over the counters the unit models keep (a
 * table of counter x coefficient rows, energy.c), static energy is energy.static_w x time. A
 * meter observes instruction completions to attribute energy to regions and to fixed time
 * windows, from which average and peak power, the power cap (chip.tdp_w) and the per-window
 * DVFS throttle follow. Formulas: docs/models-energy.md; coefficients: configs/README.md. */
#ifndef TPU_ENERGY_H
#define TPU_ENERGY_H

#include <stdint.h>

#include "err.h"
#include "config.h"
#include "core.h"
#include "stats.h"
#include "unit.h"

/* Where energy goes: the rows of "energy by unit". */
typedef enum energy_cat {
    ENERGY_MXU,    /* MACs per datatype */
    ENERGY_VPU,    /* vector-register operations: elementwise, transcendental, cross-lane */
    ENERGY_VMEM,   /* bytes read and written in VMEM by every unit */
    ENERGY_HBM,    /* bytes read and written, row activations (banked model) */
    ENERGY_ICI,    /* bytes x hops: every link a byte crosses */
    ENERGY_DCN,    /* bytes over the data-centre network (none modelled yet) */
    ENERGY_STATIC, /* energy.static_w x time */
    ENERGY_CAT_COUNT
} energy_cat;

const char *energy_cat_name(energy_cat c); /* "mxu", "vpu", ..., "static" */

/* A chip's dynamic-energy terms, resolved once from its registered counters. */
typedef struct energy_probe energy_probe;

/* Resolve the terms of the energy table against the counters in r (a chip's registry; the
 * counters, not the registry, must outlive the probe). NULL with e (ERR_NOMEM) on failure.
 * Free with energy_probe_free. */
energy_probe *energy_probe_new(const cfg *c, const stats_reg *r, err *e);
void energy_probe_free(energy_probe *p);
/* Dynamic energy so far per category, pJ (pj[ENERGY_STATIC] = 0). */
void energy_probe_sample(const energy_probe *p, double pj[ENERGY_CAT_COUNT]);

/* Energy figures of one chip's run. */
typedef struct energy_result {
    double j[ENERGY_CAT_COUNT]; /* J per category, static included */
    double total_j, dynamic_j;
    double seconds; /* run time (end of the last instruction) */
    double avg_w;   /* total_j / seconds */
    double peak_w;  /* highest average power over a full window (the run's, if shorter) */
    double window_s;
    uint64_t windows;
    double tdp_w;           /* chip.tdp_w, 0 = no cap */
    uint64_t windows_over;  /* windows whose average power exceeds tdp_w */
    int throttle;           /* energy.throttle */
    double throttled_s;     /* run time with the over-cap windows' clocks scaled */
    double throttled_j;     /* energy of the throttled run */
    double min_clock_scale; /* lowest scale chosen (1 = never throttled) */
    double flops;           /* MXU + vector FLOPs */
    double tflops_per_w;    /* flops / total_j / 1e12 */
    double tokens;          /* tokens the trace produces (trace note "tokens=N"), 0 = unknown */
    double tokens_per_j;
    unsigned nregions;
    double (*region_j)[ENERGY_CAT_COUNT]; /* per region, the core's region order; owned */
    double *window_w; /* average power of each of the `windows` windows, W (window w covers
                       * [w x window_s, (w+1) x window_s), the last one ends at `seconds`);
                       * owned; NULL without a meter (energy_eval) */
} energy_result;

void energy_result_fini(energy_result *r);

/* Totals without a meter (pod estimates): dynamic energy from the counters in r, static power
 * x end_ps; no windows or regions (peak_w = avg_w). 0, or -1 with e (ERR_NOMEM). */
int energy_eval(const cfg *c, const stats_reg *r, uint64_t end_ps, double flops, energy_result *out,
                err *e);

/* The meter: a core_observer that samples the probe at the first completion of a new region
 * and the first completion past a window boundary (and at the end). The energy begun since the
 * previous sample (and static power over that interval) is charged to the region of the
 * completions in between and spread evenly over that interval in the windows. The probe must
 * outlive the meter (not owned). */
typedef struct energy_meter energy_meter;
energy_meter *energy_meter_new(const cfg *c, const energy_probe *p, err *e);
void energy_meter_free(energy_meter *m);
/* Forward each completion to another observer (timeline, progress) after metering. */
void energy_meter_chain(energy_meter *m, core_observer next, void *ctx);
void energy_meter_observe(void *m, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                          uint64_t end_ps, unsigned region, uint64_t bytes);
/* After the run: fill out (release with energy_result_fini). nregions: the core's region
 * count; note: the trace note (a "tokens=N" word gives tokens per joule), may be NULL.
 * 0, or -1 with e (ERR_NOMEM, or a failure the meter hit while observing). */
int energy_meter_result(energy_meter *m, uint64_t end_ps, double flops, unsigned nregions,
                        const char *note, energy_result *out, err *e);

/* Throttle closed form for one window of length len_ps with dynamic energy dyn_pj (see
 * docs/models-energy.md): the clock scale s in [min_scale, 1] that brings static_w + dynamic
 * power x s^exp down to tdp_w. Returns 1 when the window is within the cap. */
double energy_clock_scale(double dyn_pj, double len_ps, double static_w, double tdp_w,
                          double min_scale, double exp);

/* Register the result's figures under group "energy" (J, W, TFLOP/s/W); res must outlive r. */
void energy_register_stats(const energy_result *res, stats_reg *r);

#endif
