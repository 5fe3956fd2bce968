/* serve.h - LLM inference serving on a slice (`tpusim serve`): a request stream (Poisson or a
 * CSV trace), a vLLM-style scheduler (continuous batching, chunked prefill with a per-step
 * token budget, paged KV cache with admission and preemption by recomputation, optional
 * disaggregated prefill and decode slices) and the latency and throughput figures of the run.
 *
 * Step times come from the chip model through a step-time function: serve_steps.c generates
 * decode and prefill steps with the gen library, times them with the pod estimator (one
 * representative chip, collectives on the slice) and caches them over a grid with
 * interpolation. The scheduler only sees the function, so tests drive it with closed forms.
 * Definitions of every figure: docs/serving.md. */
#ifndef TPU_SERVE_H
#define TPU_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "isa.h"

/* ---- model -------------------------------------------------------------------------------- */

/* The shape of a dense decoder-only model, as the serving figures need it. */
typedef struct serve_model {
    char name[48];
    uint64_t layers, d_model, heads, kv_heads, head_dim, d_ff, vocab;
    double params; /* total parameters (model_params) */
} serve_model;

/* The preset `name` (models.h: name, alias or path) into m. MoE presets are refused (the
 * serving steps are dense). Returns 0, or -1 with e filled. */
int serve_model_preset(serve_model *m, const char *name, err *e);

/* KV-cache bytes of one token on one chip of a `tp`-way tensor-parallel slice:
 * 2 (K and V) x layers x kv_heads x head_dim x bytes(kv_dt), kv heads split tp ways (each chip
 * keeps at least one: with fewer kv heads than chips they are replicated). */
double serve_kv_bytes_per_token(const serve_model *m, unsigned tp, isa_dtype kv_dt);

/* Analytic HBM budget of one chip (docs/serving.md, "KV capacity"; serve_steps_memory takes
 * weights and activations from the memory plan instead): weights = params x bytes(w_dt) / tp,
 * activations of a step of `step_tokens` tokens = step_tokens x (4 d_model + 3 d_ff/tp +
 * (heads + 2 kv_heads) head_dim / tp) x bytes(w_dt) + logits of `max_batch` rows x vocab/tp x 4
 * (fp32). kv = hbm - weights - activations (negative: the model does not fit). */
typedef struct serve_memory {
    double hbm, weights, activations, kv;
    double kv_per_token; /* bytes per token per chip */
    uint64_t kv_tokens;  /* kv / kv_per_token */
    int from_plan;       /* 1: weights and activations from the generator's memory plan
                          * (serve_steps_memory), 0: the analytic estimate above */
} serve_memory;
void serve_memory_plan(serve_memory *mem, const serve_model *m, const cfg *c, unsigned tp,
                       isa_dtype w_dt, isa_dtype kv_dt, uint64_t step_tokens, unsigned max_batch);

/* ---- workload ----------------------------------------------------------------------------- */

/* A length distribution: fixed a; uniform integers in [a, b]; lognormal with mean a, sd b. */
typedef enum serve_len_kind {
    SERVE_LEN_FIXED,
    SERVE_LEN_UNIFORM,
    SERVE_LEN_LOGNORMAL
} serve_len_kind;
typedef struct serve_len {
    serve_len_kind kind;
    double a, b;
} serve_len;

/* Parse "N", "uniform:LO:HI" or "lognormal:MEAN:SD" (what names the option in errors).
 * Lengths are at least 1. Returns 0, or -1 with e filled. */
int serve_len_parse(serve_len *l, const char *text, const char *what, err *e);

typedef struct serve_req {
    double arrival_s;
    uint32_t prompt, output;
} serve_req;

typedef struct serve_workload {
    serve_req *req; /* owned; serve_workload_fini frees it */
    size_t n;
} serve_workload;

/* n requests with Poisson arrivals at `rate` per second (exponential gaps, the first at its
 * gap after 0) and lengths drawn from the two distributions, from `seed` (xoshiro256**, the
 * same stream on every platform). Returns 0, or -1 with e filled. */
int serve_workload_poisson(serve_workload *w, double rate, size_t n, const serve_len *prompt,
                           const serve_len *output, uint64_t seed, err *e);
/* A CSV request trace: a header naming the columns arrival_s, prompt_tokens, output_tokens
 * (any order, other columns ignored), then one request per line, arrivals non-decreasing.
 * `limit` > 0 keeps the first `limit` requests. Errors name the file and line: missing column,
 * bad or negative number, zero lengths, unsorted arrival. */
int serve_workload_csv(serve_workload *w, const char *path, size_t limit, err *e);
void serve_workload_fini(serve_workload *w);

/* ---- step times --------------------------------------------------------------------------- */

/* One scheduler step: `decode` sequences generating one token each with a mean context of
 * `ctx` tokens (the KV entries a token attends to), and `prefill` prompt tokens in chunks of
 * `prefill_seqs` sequences. */
typedef struct serve_step {
    uint32_t decode, prefill, prefill_seqs;
    double ctx;
} serve_step;

/* Seconds one step takes on one model replica, and in *dyn_j (never NULL) its dynamic energy
 * on the replica, J summed over its devices (0 when not modelled); returns < 0 with e filled
 * on failure. */
typedef double (*serve_step_fn)(void *ctx, const serve_step *s, double *dyn_j, err *e);

/* ---- scheduler ---------------------------------------------------------------------------- */

typedef struct serve_sched_opts {
    unsigned max_batch;    /* sequences in a step (running, prefill or decode) */
    uint32_t token_budget; /* tokens per step, decode tokens included (chunked prefill);
                            * 0: whole prompts in prefill-only steps (no chunking) */
    uint32_t max_prefill;  /* without chunking: prompt tokens of one prefill step */
    uint64_t kv_blocks;    /* paged KV cache of one replica, in blocks */
    uint32_t block_tokens; /* tokens per block */
    /* disaggregated serving: prefill on its own slice (prefill_fn), KV sent to the decode
     * slice in kv_bytes_per_token / link_bps + latency seconds per request */
    int disaggregated;
    double kv_transfer_bps, kv_transfer_latency_s, kv_bytes_per_token;
    double kv_transfer_j_per_byte; /* dynamic energy of a transferred byte (one ICI hop) */
    unsigned series_max;           /* time-series points kept (downsampled); 0: 512 */
} serve_sched_opts;

/* Per-request outcome. */
typedef struct serve_rec {
    double arrival_s, first_token_s, done_s;
    uint32_t prompt, output;
    uint32_t preemptions;
} serve_rec;

/* One point of the time series: at the end of a step. */
typedef struct serve_point {
    double t_s;
    uint32_t batch, prefill_tokens;
    double kv_occupancy; /* fraction of the KV blocks in use */
} serve_point;

typedef struct serve_result {
    serve_rec *rec; /* one per request, in arrival order (owned) */
    size_t n;
    serve_point *series; /* owned */
    size_t nseries;
    uint64_t steps, prefill_steps, decode_steps, mixed_steps, preemptions;
    double makespan_s; /* first arrival to last completion */
    double busy_s;     /* time with a step running (decode slice when disaggregated) */
    /* dynamic energy, J: the sum of the executed steps' (step function) on the serving (or
     * decode) slice and on the prefill slice, and of the KV transfers between them */
    double dyn_j, prefill_dyn_j, xfer_dyn_j;
    double mean_batch, max_kv_occupancy, mean_kv_occupancy;
    unsigned max_batch_seen;
} serve_result;

/* Run the workload through the scheduler. decode_fn times every step of the serving (or, when
 * disaggregated, the decode) slice; prefill_fn the prefill slice (NULL unless
 * disaggregated). A request whose prompt + output cannot fit the whole KV cache is an error.
 * Returns 0 with r filled (serve_result_fini frees it), or -1 with e filled. */
int serve_schedule(const serve_workload *w, const serve_sched_opts *o, serve_step_fn decode_fn,
                   void *decode_ctx, serve_step_fn prefill_fn, void *prefill_ctx, serve_result *r,
                   err *e);
void serve_result_fini(serve_result *r);

/* ---- figures ------------------------------------------------------------------------------ */

typedef struct serve_dist {
    double mean, p50, p90, p99, max;
    size_t n;
} serve_dist;

/* Percentile q in [0, 100] of v[0..n-1] sorted ascending, linear between closest ranks
 * (numpy's default): v[(n-1) q / 100]. 0 for n == 0. */
double serve_percentile(const double *sorted, size_t n, double q);
/* Mean and percentiles of v (sorted in place). */
void serve_dist_of(serve_dist *d, double *v, size_t n);

typedef struct serve_summary {
    serve_dist ttft, tpot, e2e; /* seconds; TPOT over requests with > 1 output token */
    double out_tokens, in_tokens;
    double tokens_per_s, tokens_per_s_chip, requests_per_s;
    double goodput_rps, goodput_frac; /* requests meeting both SLOs (0 SLO: not checked) */
    double usd_per_mtok;              /* 0 when the config has no price */
    double chips; /* devices / devices per chip: 0.5 for one of a v7 chip's two devices */
    /* Energy (docs/serving.md, "Energy"): dynamic = the result's dyn_j + prefill_dyn_j +
     * xfer_dyn_j; static = static_w x chips x makespan (every chip powered for the whole run,
     * idle gaps included); energy = dynamic + static. Power = energy / makespan (total, and
     * per chip). Tokens per joule = output tokens / energy (every emitted token, the first
     * included; prompt tokens and tokens recomputed after a preemption do not count); energy
     * per output token = energy / output tokens. 0 when undefined. */
    double energy_j, dynamic_j, static_j;
    double avg_w, avg_w_chip;
    double tokens_per_j, j_per_token;
} serve_summary;

/* Figures of a run on `chips` chips at `usd_per_chip_hour` and `static_w` static power per
 * chip (energy.static_w), SLOs in seconds (0: none). chips need not be whole: a slice of
 * devices occupies devices / devices per chip chips (the rest of a chip serves another
 * replica). Returns 0, or -1 with e filled (out of memory). */
int serve_summarise(serve_summary *s, const serve_result *r, double chips, double usd_per_chip_hour,
                    double static_w, double slo_ttft_s, double slo_tpot_s, err *e);

/* Per-request CSV (arrival_s, prompt_tokens, output_tokens, ttft_s, tpot_s, e2e_s,
 * preemptions), written as every output is (ofile.h: a unique temporary renamed into place,
 * devices and FIFOs in place, "-" for standard output). */
int serve_write_csv(const serve_result *r, const char *path, err *e);

#endif
