/* run.c - replay a trace on one chip and build its report. */
#include "run.h"

#include <string.h>

int run_trace(run *r, const char *config_path, const char **overrides, unsigned noverrides,
              const char *trace_path, const sim_hooks *hooks, err *e)
{
    memset(r, 0, sizeof *r);
    if (sim_run_trace(&r->sim, config_path, overrides, noverrides, trace_path, hooks, e))
        return -1;
    if (report_build(&r->rep, r->sim.chip, r->sim.stats, trace_path, r->sim.cfg.source, e))
        return -1;
    r->rep.energy = r->sim.energy;
    return 0;
}

void run_fini(run *r)
{
    report_fini(&r->rep);
    sim_run_fini(&r->sim);
}
