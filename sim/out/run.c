/* run.c - replay a trace on one chip and build its report. */
#include "run.h"

#include <string.h>

int run_trace(run *r, const char *config_path, const char **overrides, unsigned noverrides,
              const char *trace_path, const sim_hooks *hooks, err *e)
{
    memset(r, 0, sizeof *r);
    prov_init(&r->prov);
    if (sim_run_trace(&r->sim, config_path, overrides, noverrides, trace_path, hooks, e) ||
        report_build(&r->rep, r->sim.chip, r->sim.stats, trace_path, r->sim.cfg.source, e) ||
        prov_set_config(&r->prov, config_path, &r->sim.cfg, overrides, noverrides, e))
        return -1;
    /* The note is read again after the replay; a trace gone since (or a pipe, read once)
     * leaves it empty rather than failing a finished run. */
    err ignored;
    prov_set_trace(&r->prov, trace_path, &ignored);
    r->rep.prov = &r->prov;
    return 0;
}

void run_fini(run *r)
{
    prov_fini(&r->prov);
    report_fini(&r->rep);
    sim_run_fini(&r->sim);
}
