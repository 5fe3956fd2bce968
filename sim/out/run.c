/* run.c - replay a trace on one chip and build its report. */
#include "run.h"

#include <string.h>

int run_trace(run *r, const char *config_path, const char **overrides, unsigned noverrides,
              const char *trace_path, const sim_hooks *hooks, err *e)
{
    memset(r, 0, sizeof *r);
    if (sim_run_trace(&r->sim, config_path, overrides, noverrides, trace_path, hooks, e))
        return -1;
    return report_build(&r->rep, r->sim.chip, r->sim.stats, trace_path, r->sim.cfg.source, e);
}

int run_trace_cfg(run *r, const cfg *c, const char *trace_path, const sim_hooks *hooks, err *e)
{
    memset(r, 0, sizeof *r);
    if (sim_run_cfg(&r->sim, c, trace_path, hooks, e))
        return -1;
    return report_build(&r->rep, r->sim.chip, r->sim.stats, trace_path, r->sim.cfg.source, e);
}

void run_fini(run *r)
{
    report_fini(&r->rep);
    sim_run_fini(&r->sim);
}
