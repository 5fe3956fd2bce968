/* sim.h - one single-chip simulation, built, run and freed as a unit (library entry point
 * used by the CLI, the tests and the benchmarks). */
#ifndef TPU_SIM_H
#define TPU_SIM_H

#include "err.h"
#include "chip.h"
#include "config.h"
#include "stats.h"

#include "core.h"
#include "energy.h"
#include "limiter.h"

/* Optional observers attached before the replay starts (timeline, progress). */
typedef struct sim_hooks {
    core_observer observer;
    void *ctx;
    /* Called once the trace is open, before the replay: its instruction count from the
     * trailer, UINT64_MAX when unknown (a pipe). The trace is read only once, so a caller
     * that wants the count (a progress line) gets it here rather than by opening the file. */
    void (*start)(void *start_ctx, uint64_t trace_insns);
    void *start_ctx;
} sim_hooks;

typedef struct sim_run {
    cfg cfg;
    struct ici_net *net;
    chip *chip;
    stats_reg *stats;
    energy_probe *eprobe;  /* the chip's dynamic-energy terms */
    energy_meter *emeter;  /* observes completions: regions, windows */
    energy_result *energy; /* the run's energy figures (registered under "energy") */
    limiter *lim;          /* observes completions: bottleneck attribution (limiter.h) */
    double wall_s;         /* wall-clock seconds of the replay */
    uint64_t events;       /* kernel callbacks run */
} sim_run;

/* Load config_path (NULL = defaults) with `noverrides` "key=value" overrides, replay the
 * trace on one chip (collectives timed on the config's ici.dims in symmetric mode), and
 * register the chip's and the network's counters in s->stats (the report is built from them by
 * the output layer, run.h). On failure returns non-zero with e filled; sim_run_fini is always safe.
 */
int sim_run_trace(sim_run *s, const char *config_path, const char **overrides, unsigned noverrides,
                  const char *trace_path, const sim_hooks *hooks, err *e);
/* Same, with an already loaded config. hooks may be NULL. */
int sim_run_cfg(sim_run *s, const cfg *c, const char *trace_path, const sim_hooks *hooks, err *e);
void sim_run_fini(sim_run *s);
/* Load a config and apply overrides ("key=value"), then cfg_check. */
int sim_load_cfg(cfg *c, const char *config_path, const char **overrides, unsigned n, err *e);

#endif
