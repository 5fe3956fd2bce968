/* run.c - replay a trace on one chip and build its report. */
#include "run.h"

#include <stdlib.h>
#include <string.h>

int run_trace(run *r, const char *config_path, const char **overrides, unsigned noverrides,
              const char *trace_path, const sim_hooks *hooks, err *e)
{
    memset(r, 0, sizeof *r);
    cfg *c = malloc(sizeof *c);
    if (!c)
        return err_setk(e, ERR_NOMEM, "out of memory");
    int rc = sim_load_cfg(c, config_path, overrides, noverrides, e) ||
             run_trace_cfg(r, c, config_path, overrides, noverrides, trace_path, hooks, e);
    free(c);
    return rc ? -1 : 0;
}

int run_trace_cfg(run *r, const cfg *c, const char *config_path, const char **overrides,
                  unsigned noverrides, const char *trace_path, const sim_hooks *hooks, err *e)
{
    memset(r, 0, sizeof *r);
    prov_init(&r->prov);
    if (sim_run_cfg(&r->sim, c, trace_path, hooks, e) ||
        report_build(&r->rep, r->sim.chip, r->sim.stats, trace_path, r->sim.cfg.source, e) ||
        prov_set_config(&r->prov, config_path, &r->sim.cfg, overrides, noverrides, e))
        return -1;
    r->rep.energy = r->sim.energy;
    r->rep.lim = r->sim.lim;
    /* The note from the replay's own reader: the trace is read once (pipes, FIFOs). */
    prov_set_trace_note(&r->prov, trace_path, chip_trace_note(r->sim.chip));
    r->rep.prov = &r->prov;
    return 0;
}

void run_fini(run *r)
{
    prov_fini(&r->prov);
    report_fini(&r->rep);
    sim_run_fini(&r->sim);
}
