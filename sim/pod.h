/* pod.h - pod-scale estimate: one trace (the work of one chip) replayed on a pod topology,
 * either one representative chip with symmetric collectives or every chip of a slice on one
 * network (full mode). Definitions of every figure: docs/models-ici.md, "Pod estimate". */
#ifndef TPU_POD_H
#define TPU_POD_H

#include <stdint.h>

#include "../isa/err.h"
#include "config.h"
#include "ici.h"

#define POD_MAX_ROWS (ICI_KIND_COUNT * 8)

/* Everything one estimate reports. Times in ps; per-chip figures are means over the chips
 * simulated (one in symmetric mode). */
typedef struct pod_result {
    unsigned chips, naxes, dims[3];
    char topo[32];    /* "16x24x24" */
    char desc[64];    /* "16x24x24 torus(xyz)" */
    uint64_t step_ps; /* latest chip's end */
    double flops_per_chip, mxu_flops_per_chip;
    double mxu_ideal_ps; /* MXU FLOPs at the peak rate of their datatype, per chip */
    /* split of the step: compute (an MXU or the vector unit busy), memory-bound (only DMA
     * busy), exposed communication (only ICI busy), idle (the rest of step_ps) */
    double t_compute, t_memory, t_comm, t_idle;
    double ici_bytes_per_chip;
    double peak_ef[ISA_DTYPE_COUNT]; /* chips x per-chip peak, 0 = unsupported */
    double sustained_ef;             /* chips x flops_per_chip / step */
    double mfu;                      /* mxu_flops_per_chip / step / peak of mfu_dtype */
    int mfu_dtype;                   /* the trace's MXU datatype; -1 = mixed (effective peak) */
    unsigned nrows;
    ici_row rows[POD_MAX_ROWS]; /* chip 0's collectives */
} pod_result;

/* Topology text for a pod of `chips` (0 = the config's pod.dims): near-square for 2D
 * generations (pod.dims has 2 axes), near-cubic otherwise, axes ascending; unit axes are kept (6
 * chips: 1x2x3) so a trace's axis names stay valid. */
int pod_topology(const cfg *c, uint64_t chips, char *buf, size_t cap, err *e);
/* Run one estimate on a new kernel simulation (kern_begin is called). `c` must be checked
 * (cfg_check). Returns 0, or non-zero with e filled (bad topology, trace errors, full mode on
 * more than 1024 chips). */
int pod_estimate(const cfg *c, const char *trace, const char *topo, ici_mode mode, pod_result *res,
                 err *e);

/* `tpusim pod` (argv[0] = "pod"). Prints the report to stdout; returns 0, or non-zero with
 * e filled. */
int pod_main(int argc, char **argv, err *e);

#endif
