/* report.h - the single-chip run report: built once from the chip's counters, then printed
 * as text, JSON (stable keys, docs/outputs.md) or CSV. Derived figures are computed
 * here from counters, never stored by the models. */
#ifndef TPU_REPORT_H
#define TPU_REPORT_H

#include <stdint.h>
#include <limits.h>
#include <stdio.h>

#include "err.h"
#include "chip.h"
#include "stats.h"
#include "energy.h"
#include "limiter.h"
#include "units.h"

struct prov;

typedef struct report_unit {
    char name[32];
    const char *kind;    /* the unit table's kind name */
    const char *time;    /* its time-split class: "compute", "memory", "communication" */
    const char *traffic; /* where its bytes go: "hbm", "ici" or "none" */
    uint64_t insns, busy_ps, flops, bytes;
    uint64_t stall_sem_ps, stall_qfull_ps, stall_vmem_ps, stall_hbm_ps;
    double util;        /* busy / total time */
    double busy_cycles; /* busy_ps in clock cycles */
} report_unit;

typedef struct report_region {
    const char *name;
    unsigned index; /* the core's region number (energy_result.region_j) */
    uint64_t insns, flops, mxu_flops, hbm_bytes, ici_bytes;
    uint64_t start_ps, end_ps;
    double tflops;    /* flops / span */
    double intensity; /* FLOP per HBM byte */
    double bound_ps;  /* roofline lower bound on the region's time */
} report_region;

typedef struct report {
    char chip[64], trace[PATH_MAX], config[PATH_MAX]; /* any path that opens fits */
    double clock_ghz, cycle_ps;
    uint64_t end_ps, cycles, insns, flops, mxu_flops, vpu_flops, hbm_bytes, ici_bytes;
    uint64_t mxu_ideal_ps;
    double seconds, tflops, peak_tflops_bf16, mxu_util, mac_util;
    double peak_tflops[ISA_DTYPE_COUNT]; /* chip peak per MXU datatype; 0 = unsupported */
    double hbm_gbs, hbm_peak_gbs, hbm_util;
    double intensity, ridge, roofline_tflops, bound_ps, bound_frac;
    /* model FLOPs the trace note states (tpusim gen; 0: none) and MFU / HFU against the
     * effective MXU peak: model FLOPs or every MXU FLOP executed, over the run time */
    double model_flops, mfu, hfu;
    const char *bound_by;                  /* "compute" or "memory" */
    uint64_t t_split_ps[UNIT_SPLIT_COUNT]; /* the time split (units.h) */
    uint64_t dispatch_stall_ps;
    unsigned nunits;
    report_unit *units; /* every unit of the chip, in unit-table order; owned (report_fini) */
    unsigned nregions;
    report_region *regions; /* owned: free with report_fini */
    const stats_reg *stats;
    const struct prov *prov;     /* how the run was made (prov.h); NULL: no provenance written */
    const energy_result *energy; /* the run's energy (run.c sets it), NULL: none shown */
    const limiter *lim;          /* the run's bottleneck attribution (run.c), NULL: none */
} report;

/* Fill r from a finished chip and its registered counters. MXU utilisation is the mean
 * over every unit of the matrix kinds of the unit table. Release with report_fini (also
 * after a failure). */
int report_build(report *r, chip *ch, const stats_reg *stats, const char *trace_path,
                 const char *config_path, err *e);
void report_fini(report *r);
void report_text(const report *r, FILE *out);
/* JSON: `config` is the config as given (provenance) and `config_path` the file it resolved
 * to; the "provenance" object when r->prov is set. */
int report_json(const report *r, const char *path, err *e);
/* CSV: one row per unit and one per region, tagged by the first column; provenance as
 * "# key: value" lines before the header row when r->prov is set. */
int report_csv(const report *r, const char *path, err *e);

#endif
