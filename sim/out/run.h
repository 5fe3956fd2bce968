/* run.h - a single-chip run (sim.h) together with its report (report.h): the entry point the
 * CLI and the tests use to replay a trace and read its figures. */
#ifndef TPU_RUN_H
#define TPU_RUN_H

#include "err.h"
#include "prov.h"
#include "report.h"
#include "sim.h"

typedef struct run {
    sim_run sim;
    report rep;
    prov prov; /* rep.prov points here; the CLI adds the command line (prov_set_command) */
} run;

/* sim_run_trace, then the report of the finished run with its provenance (config as given,
 * overrides, the trace's note). Returns 0, or non-zero with e filled; run_fini is always
 * safe afterwards. */
int run_trace(run *r, const char *config_path, const char **overrides, unsigned noverrides,
              const char *trace_path, const sim_hooks *hooks, err *e);
/* The same with a config already loaded (sim_load_cfg), so that the caller can check its
 * files (ofile_check) before simulating; config_path and the overrides are those c was loaded
 * with, for the provenance. */
int run_trace_cfg(run *r, const cfg *c, const char *config_path, const char **overrides,
                  unsigned noverrides, const char *trace_path, const sim_hooks *hooks, err *e);
void run_fini(run *r);

#endif
