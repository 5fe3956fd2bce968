/* pod.h - pod-scale estimate: one trace (the work of one chip) replayed on a pod topology,
 * either one representative chip with symmetric collectives or every chip of a slice on one
 * network (full mode). Definitions of every figure: docs/models-ici.md, "Pod estimate". */
#ifndef TPU_POD_H
#define TPU_POD_H

#include <limits.h>
#include <stdint.h>

#include "err.h"
#include "config.h"
#include "ici.h"
#include "energy.h"
#include "units.h"

#define POD_MAX_ROWS       (ICI_KIND_COUNT * 8)
#define POD_FULL_MAX_CHIPS 1024 /* every chip is a full chip model: keep full mode to slices */

/* Everything one estimate reports. Times in ps; per-chip figures are means over the chips
 * simulated (one in symmetric mode), each the program of one of its devices, times
 * devices_per_chip for FLOPs, ICI bytes and dynamic energy (the chip's devices run it side by
 * side over shares of the chip's links). */
typedef struct pod_result {
    unsigned chips, naxes, dims[3]; /* chips: of every slice; dims: one slice's topology */
    /* several slices (dcn.slices > 1, docs/models-ici.md "DCN"): copies of the simulated
     * slice of chips_slice chips, data parallel over the data-centre network */
    unsigned slices, chips_slice;
    /* A trace is one device's program (docs/architecture.md, "Devices and megacore"): a chip
     * is devices_per_chip devices running it side by side (1 with chip.megacore). */
    unsigned devices_per_chip;
    uint64_t devices;     /* chips x devices_per_chip */
    char topo[32];        /* "16x24x24" */
    char desc[64];        /* "16x24x24 torus(xyz)" */
    char trace[PATH_MAX]; /* chip 0's trace path (templates expanded) */
    uint64_t step_ps;     /* latest chip's end */
    double flops_per_chip, mxu_flops_per_chip;
    double mxu_ideal_ps; /* MXU FLOPs at the peak rate of their datatype, per chip */
    /* split of the step: compute (an MXU or the vector unit busy), memory-bound (only DMA
     * busy), exposed communication (only ICI busy), idle (the rest of step_ps) */
    double t_split[UNIT_SPLIT_COUNT]; /* ps, by part of the time split (units.h) */
    /* waiting fraction of the step, 1 - (compute + memory-bound) / step, per chip: the mean
     * and the extremes over the chips simulated (a pipeline stage's bubble, full mode) */
    double wait_frac, wait_frac_min, wait_frac_max;
    /* symmetric mode with a "{stage}" trace name: one estimate per stage trace (each stage
     * alone, receives never waiting: no bubble); the result is the slowest stage's, and
     * stage_step_ps[s] each stage's step */
    unsigned stages;
    uint64_t stage_step_ps[64];
    double ici_bytes_per_chip; /* ICI instruction bytes (core.ici_bytes) */
    double
        ici_link_bytes_per_chip; /* bytes the chip transmits on its links (its ICI units' bytes) */
    double peak_ef[ISA_DTYPE_COUNT]; /* chips x per-chip peak, 0 = unsupported */
    double sustained_ef;             /* chips x flops_per_chip / step = devices x device's */
    double flops_per_device;         /* the trace's FLOPs: flops_per_chip / devices_per_chip */
    double mfu; /* model FLOPs per chip / step / peak of mfu_dtype (HFU's MXU FLOPs when the
                 * trace note states no model FLOPs) */
    double hfu; /* mxu_flops_per_chip (every FLOP executed) / step / peak of mfu_dtype */
    double model_flops_per_chip; /* from the trace note (`gen`: " # model FLOPs per chip: N"),
                                  * mean over the chips; 0: not stated */
    int mfu_dtype;               /* the trace's MXU datatype; -1 = mixed (effective peak) */
    /* energy (docs/models-energy.md): per chip, dynamic from its counters (mean over the chips
     * simulated), static = energy.static_w x step (every chip is powered for the whole step) */
    double chip_j[ENERGY_CAT_COUNT]; /* J per chip per step, by category */
    double chip_j_total;             /* J per chip per step */
    double chip_w;                   /* chip_j_total / step */
    double pod_j_per_step;           /* chips x chip_j_total */
    double pod_mw;                   /* pod_j_per_step / step, MW */
    double tflops_per_w;             /* flops per joule / 1e12 */
    uint64_t mismatches; /* collectives whose kind or size differed within a group (full) */
    /* DCN (slices > 1), per device (mean over the devices simulated): all-reduces across the
     * slices, their buffer bytes, bytes sent (the chip's: devices_per_chip x the device's),
     * time in flight (the DCN unit's busy time), the closed form 2 (S-1) (n lat + bytes /
     * (S bw)) of that time, bw the device's share of dcn.gbs, and the exposed part (only the
     * DCN busy: core.t_comm_dcn_ps) */
    double dcn_ops, dcn_bytes, dcn_sent, dcn_ps, dcn_closed_ps, dcn_exposed_ps;
    unsigned nrows;
    ici_row rows[POD_MAX_ROWS]; /* chip 0's collectives */
} pod_result;

/* Topology text for a pod of `chips` (0 = the config's pod.dims): near-square for 2D
 * generations (pod.dims has 2 axes), near-cubic otherwise, axes ascending; unit axes are kept (6
 * chips: 1x2x3) so a trace's axis names stay valid. */
int pod_topology(const cfg *c, uint64_t chips, char *buf, size_t cap, err *e);
/* Run one estimate on a new kernel simulation (kern_begin is called). `c` must be checked
 * (cfg_check). Returns 0, or non-zero with e filled (bad topology, trace errors, full mode on
 * more than 1024 chips). Same as pod_estimate_traces with one trace. */
int pod_estimate(const cfg *c, const char *trace, const char *topo, ici_mode mode, pod_result *res,
                 err *e);
/* Trace path of `chip` in a pod of `chips`: `tmpl` with every "{chip}" replaced by the chip id
 * and every "{chips}" by the chip count. Returns 0, or non-zero with e filled if the result
 * does not fit `cap`. */
int pod_trace_path(const char *tmpl, unsigned chip, unsigned chips, char *buf, size_t cap, err *e);
/* 1 if `tmpl` names one trace per chip (contains "{chip}"). */
int pod_trace_per_chip(const char *tmpl);
/* The estimate with traces[0..ntraces-1]: ntraces == 1 is an SPMD trace (every chip runs it,
 * after pod_trace_path expansion, so "{chip}" gives per-chip files); ntraces == chips gives
 * chip i traces[i] (full mode only). Per-chip traces in symmetric mode, or a count that is
 * neither, are errors. */
int pod_estimate_traces(const cfg *c, const char *const *traces, unsigned ntraces, const char *topo,
                        ici_mode mode, pod_result *res, err *e);
/* 1 if `tmpl` names one trace per pipeline stage (contains "{stage}"): symmetric mode then
 * estimates every stage (s = 0, 1, ... while the file exists) alone (pod_result.stages). */
int pod_trace_per_stage(const char *tmpl);

#endif
