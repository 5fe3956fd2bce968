/* serve_steps.h - step times of a serving slice from the simulator: decode and prefill steps
 * are generated with the gen library (llm-step --decode; prefill as transformer blocks in
 * forward mode), timed by the pod estimator on the slice's topology (one representative chip
 * with symmetric collectives; one chip is a 1-chip slice), and cached over a grid of (batch,
 * context) for decode and prefill tokens for prefill, with interpolation between grid points
 * (decode rows first smoothed along the context by local quadratic least squares). Each step's
 * dynamic energy comes from the same simulation (the pod estimate's counters; J of the whole
 * replica, every device of it) and goes through the same extrapolation, smoothing and
 * interpolation, with the same weights (docs/serving.md, "Energy").
 * Step model (docs/serving.md, "Step times"):
 *   decode(b, c)   one llm-step --decode of batch b against a KV cache of c tokens (the
 *                  model's kv heads and head_dim); the layers are extrapolated from 1- and
 *                  5-layer runs, t = t1 + (L - 1) (t5 - t1) / 4 (the layers are identical;
 *                  --full-layers, or L <= 5, simulates all L instead)
 *   prefill(p)     L x one forward transformer block of p tokens (one causal sequence) +
 *                  head, the non-layer part of a batch-1 decode step (embedding, final norm,
 *                  LM head and sampling for the finishing sequences' last tokens)
 *   mixed(b, c, p) decode(b, c) + L x block(p) - min(layer weights / HBM peak, either part's
 *                  layers): a fused step reads the layer weights once. Its energy: both parts'
 *                  less the energy of that read (HBM read + VMEM write of the layer weights)
 *                  in proportion to the time taken off. */
#ifndef TPU_SERVE_STEPS_H
#define TPU_SERVE_STEPS_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "isa.h"
#include "serve.h"

typedef struct serve_hw_opts {
    const cfg *c; /* the machine (checked); ici.dims is set to the slice */
    const serve_model *m;
    unsigned chips;     /* tensor-parallel degree of one model replica */
    isa_dtype w_dt;     /* datatype of the simulated steps (weights and activations) */
    const char *tmpdir; /* scratch traces (NULL: $TMPDIR, else /dev/shm, else /tmp) */
    int exact;          /* simulate every distinct step (memoised), no grid */
    int full_layers;    /* simulate all layers instead of extrapolating from 1 and 2 */
    unsigned max_batch; /* grid bounds */
    uint32_t max_ctx, max_prefill;
    uint64_t kv_tokens; /* decode points with b x c beyond the cache's reach are not simulated
                         * (0: no limit) */
} serve_hw_opts;

#define SERVE_GRID_MAX    24
#define SERVE_PREFILL_MAX 128 /* prefill axis points, refined adaptively */

/* The cache: grid points, their simulated times in seconds, and how they were obtained. */
typedef struct serve_grid {
    unsigned nb, nc, np;
    uint32_t b[SERVE_GRID_MAX], ctx[SERVE_GRID_MAX], p[SERVE_PREFILL_MAX];
    double dec[SERVE_GRID_MAX][SERVE_GRID_MAX];     /* interpolated: smoothed along context */
    double dec_sim[SERVE_GRID_MAX][SERVE_GRID_MAX]; /* as simulated (filled points: as dec) */
    /* 0 simulated; 1 beyond the KV cache's reach; 2 did not fit the chip in simulation. Both
     * are filled by linear extrapolation along the context axis. */
    unsigned char dec_fill[SERVE_GRID_MAX][SERVE_GRID_MAX];
    double pre[SERVE_PREFILL_MAX]; /* L blocks of p tokens */
    double head_s;                 /* non-layer part of a batch-1 decode step */
    double weight_read_s;          /* one chip's layer weights at HBM peak */
    /* Dynamic energy of the same steps, J of the replica (all its devices; static power is
     * the run's, serve_summarise): as dec, dec_sim, pre, head_s, and the energy of one read of
     * the replica's layer weights (HBM read + VMEM write), which a fused step saves. */
    double dec_j[SERVE_GRID_MAX][SERVE_GRID_MAX], dec_j_sim[SERVE_GRID_MAX][SERVE_GRID_MAX];
    double pre_j[SERVE_PREFILL_MAX];
    double head_j, weight_read_j;
    unsigned sims;     /* simulations run (grid, checks and exact steps) */
    double sim_wall_s; /* wall-clock seconds spent in them */
    char topo[32];
} serve_grid;

typedef struct serve_steps serve_steps;

/* Build the step source; simulates the grid unless o->exact. The options (and what they point
 * to) must outlive the source. Returns NULL with e filled on failure. */
serve_steps *serve_steps_new(const serve_hw_opts *o, err *e);
void serve_steps_free(serve_steps *st);
const serve_grid *serve_steps_grid(const serve_steps *st);

/* serve_step_fn over a serve_steps: interpolated (or, exact, simulated) step seconds, and in
 * *dyn_j the step's dynamic energy on the replica (J), interpolated with the same weights. */
double serve_steps_time(void *st, const serve_step *s, double *dyn_j, err *e);

/* Direct simulation of a decode step (b, c) or a prefill-only step of p tokens, with the same
 * layer model as the grid. Returns seconds, or < 0 with e filled. */
double serve_steps_sim_decode(serve_steps *st, uint32_t b, uint32_t ctx, err *e);
double serve_steps_sim_prefill(serve_steps *st, uint32_t p, err *e);

/* The HBM budget of one chip from the generator's memory plan (gen_result), replacing
 * serve_memory_plan's analytic weights and activations (docs/serving.md, "KV capacity"):
 *   weights     the persistent footprint of a batch-1 decode step of L layers (parameters,
 *               step inputs and outputs), from 1- and 2-layer plans, p1 + (L - 1)(p2 - p1),
 *               less its 16-token KV cache
 *   activations peak - persistent of a 1-layer decode step at o->max_batch (the LM head's
 *               logits included) + peak - persistent of one forward block of step_tokens
 *               tokens (a prefill step; a mixed step holds both)
 * Only gen runs (no timing). mem's hbm and kv_per_token must be set (serve_memory_plan);
 * kv and kv_tokens are recomputed and from_plan set. Returns 0, or -1 with e filled (the
 * plan does not fit, or gen failed): the caller keeps the analytic figures. */
int serve_steps_memory(const serve_hw_opts *o, uint64_t step_tokens, serve_memory *mem, err *e);

/* Interpolation error at n off-grid points drawn from `seed` (alternately decode points inside
 * the reachable grid and prefill points), each simulated directly: decode steps with all L
 * layers (so the error includes the layer extrapolation), prefill steps as L blocks + head. */
typedef struct serve_check {
    int decode; /* 1: decode (b, ctx); 0: prefill p */
    uint32_t b, ctx, p;
    double grid_s, sim_s, rel_err;   /* rel_err = (grid - sim) / sim */
    double grid_j, sim_j, rel_err_j; /* the step's dynamic energy (J, replica), the same way */
} serve_check;
int serve_steps_check(serve_steps *st, unsigned n, uint64_t seed, serve_check *out, err *e);

#endif
