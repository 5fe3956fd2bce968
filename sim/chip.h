/* chip.h - one TPU chip: a dispatcher (the core) feeding per-unit in-order queues for the
 * units of the unit table (sim/units/units.h: MXUs, vector unit, DMA, ICI port, ...),
 * sharing VMEM and HBM.
 *
 * Megacore approximation: a chip's cores are driven by one instruction stream. MXUs are
 * numbered 0..cores*mxu.count-1, the vector unit is the cores' vector units ganged
 * (cores x sublanes x lanes per cycle), VMEM is one address space of cores x vmem.bytes. */
#ifndef TPU_CHIP_H
#define TPU_CHIP_H

#include <stdint.h>

#include "err.h"
#include "trace.h"
#include "config.h"
#include "stats.h"

typedef struct chip chip;
struct ici_net;

/* Build a chip that will replay the trace at `trace_path` when the kernel runs.
 * `net` may be NULL (no ICI instructions allowed then). Events are created now; the
 * caller runs the kernel (kern_run) and then calls chip_finish. Free with chip_free. */
chip *chip_new(const cfg *c, unsigned chip_id, struct ici_net *net, const char *trace_path, err *e);
/* Decode the chip's trace on a second thread (trace_reader_prefetch) before the kernel runs:
 * for single-chip runs, where dispatch would otherwise also inflate and decode. */
int chip_prefetch(chip *ch, err *e);
/* After kern_run: non-zero with e filled if the replay failed (trace error, invalid
 * instruction, VMEM overflow, deadlock). */
int chip_finish(chip *ch, err *e);
/* 1 once every instruction has completed. */
int chip_done(const chip *ch);
/* Register all counters of the chip, its units, VMEM and HBM under `prefix` ("" for the
 * single-chip report, "chip3." in multi-chip runs). */
void chip_register_stats(chip *ch, stats_reg *r);
/* Summary figures used by reports and the pod model. */
typedef struct chip_summary {
    uint64_t end_ps; /* completion time of the last instruction */
    uint64_t insns;
    uint64_t flops; /* MXU + vector FLOPs */
    uint64_t mxu_flops;
    uint64_t hbm_bytes;
    uint64_t ici_bytes;
    uint64_t ici_busy_ps;    /* time with at least one ICI instruction in flight */
    uint64_t ici_exposed_ps; /* ICI time not overlapped by MXU/VPU/DMA work */
} chip_summary;
void chip_summarize(const chip *ch, chip_summary *s);
/* Instructions in the chip's trace from its trailer, UINT64_MAX if unknown (a pipe). */
uint64_t chip_trace_count(const chip *ch);
void chip_free(chip *ch);
/* The chip's dispatcher and config, for reports (core.h is internal to sim/). */
struct core *chip_core(const chip *ch);
const cfg *chip_cfg(const chip *ch);
/* The chip's VMEM arbiter (its byte count: the limiter). */
const struct vmem *chip_vmem(const chip *ch);
/* The note in the chip's trace header (owned by the chip). */
const char *chip_trace_note(const chip *ch);

#endif
