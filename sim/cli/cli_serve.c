/* cli_serve.c - `tpusim serve`: options, the run (memory plan, step-time grid, workload,
 * scheduler, figures), the text report, JSON and per-request CSV. The library is sim/serve/. */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "ofile.h"
#include "serve.h"
#include "serve_steps.h"
#include "sim.h"

#define SERVE_MAX_OVERRIDES 256
#define SERVE_MAX_RATES     32
#define SERVE_MAX_CHECK     200

typedef struct serve_cli {
    const char *config, *model, *workload, *json, *csv;
    const char *ovr[SERVE_MAX_OVERRIDES];
    unsigned novr;
    unsigned chips, prefill_chips, decode_chips;
    isa_dtype dt, kv_dt;
    int kv_dt_given;
    double rates[SERVE_MAX_RATES];
    unsigned nrates;
    uint64_t requests, seed, kv_tokens;
    serve_len prompt, output;
    unsigned max_batch;
    uint32_t token_budget, max_prefill, block_tokens;
    int exact, full_layers, quiet;
    unsigned check;
    double slo_ttft, slo_tpot;
} serve_cli;

static void serve_usage(FILE *out)
{
    fprintf(out,
            "usage: tpusim serve -c CONFIG --model NAME [--chips N] [workload] [options]\n"
            "\n"
            "Serve a request stream with an LLM on a slice: continuous batching, chunked\n"
            "prefill, a paged KV cache in HBM, step times from the simulator (decode and\n"
            "prefill steps generated and timed on the slice, cached over a grid). Reports\n"
            "TTFT, TPOT and end-to-end latency, tokens/s per chip, goodput, cost, energy,\n"
            "average power and output tokens per joule.\n"
            "See docs/serving.md.\n"
            "\n"
            "model and slice:\n"
            "  -c, --config CONFIG   machine config (YAML file or preset name such as v6e)\n"
            "  -p key=value          override one config key (repeatable)\n"
            "      --model NAME      dense model preset (tpusim gen --list-models) (required)\n"
            "      --chips N         devices of one model replica, tensor parallel (default\n"
            "                        1): chips, or TensorCores on v2, v3 and v7 (two per chip)\n"
            "      --dtype T         weights and step datatype: bf16, int8, fp8 (default bf16)\n"
            "      --kv-dtype T      KV-cache datatype (default: --dtype)\n"
            "      --prefill-chips N --decode-chips N\n"
            "                        disaggregated: prefill and decode on separate slices,\n"
            "                        the KV cache sent over ICI\n"
            "workload:\n"
            "      --rate R          Poisson arrivals, requests/s\n"
            "      --rates A,B,...   a latency-throughput sweep over these rates\n"
            "      --requests N      requests (default 1000; with --workload: the first N)\n"
            "      --prompt LEN      prompt tokens: N, uniform:LO:HI or lognormal:MEAN:SD\n"
            "                        (default 512)\n"
            "      --output LEN      output tokens, same forms (default 128)\n"
            "      --workload FILE   CSV request trace: arrival_s,prompt_tokens,output_tokens\n"
            "      --seed S          random seed (default 1)\n"
            "scheduler:\n"
            "      --max-batch B     sequences per step (default 64)\n"
            "      --token-budget T  chunked prefill: tokens per step, decode included\n"
            "                        (default 0: whole-prompt prefill steps before decode)\n"
            "      --max-prefill T   whole-prompt steps: prompt tokens per step (default 8192)\n"
            "      --block-tokens N  KV-cache block size in tokens (default 16)\n"
            "      --kv-tokens N     KV-cache capacity in tokens per replica (default: HBM\n"
            "                        after weights and activations)\n"
            "step times:\n"
            "      --exact           simulate every distinct step (slow), no grid\n"
            "      --full-layers     simulate all layers (default: from 1- and 5-layer runs)\n"
            "      --check-grid N    interpolation error at N off-grid points, simulated\n"
            "reports:\n"
            "      --slo-ttft T      time-to-first-token SLO for goodput (s, or with ms)\n"
            "      --slo-tpot T      time-per-output-token SLO for goodput (s, or with ms)\n"
            "      --json FILE       everything as JSON (atomically; - = stdout)\n"
            "      --csv FILE        one row per request (the last rate of a sweep)\n"
            "  -q, --quiet           no text report\n");
}

static int parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -1;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || x < lo || x > hi)
        return -1;
    *v = x;
    return 0;
}

static int parse_seconds(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    if (end == s || !isfinite(*v) || *v <= 0)
        return -1;
    if (!strcmp(end, "ms"))
        *v /= 1000;
    else if (*end && strcmp(end, "s"))
        return -1;
    return 0;
}

static int parse_rates(const char *s, serve_cli *o, err *e)
{
    const char *p = s;
    o->nrates = 0;
    while (*p) {
        char *end;
        if (o->nrates == SERVE_MAX_RATES)
            return err_set(e, "serve: --rates '%s': at most %d rates", s, SERVE_MAX_RATES);
        double r = strtod(p, &end);
        if (end == p || !(r > 0) || !isfinite(r) || (*end && *end != ','))
            return err_set(e, "serve: --rates '%s': expected rates > 0 such as 1,2,4", s);
        o->rates[o->nrates++] = r;
        p = *end ? end + 1 : end;
    }
    return o->nrates ? 0 : err_set(e, "serve: --rates: expected rates such as 1,2,4");
}

static int parse_dtype(const char *s, const char *what, isa_dtype *dt, err *e)
{
    int d = isa_dtype_lookup(s);
    if (d != ISA_DT_BF16 && d != ISA_DT_INT8 && d != ISA_DT_FP8)
        return err_set(e, "serve: %s '%s': expected bf16, int8 or fp8", what, s);
    *dt = (isa_dtype)d;
    return 0;
}

static int parse_args(int argc, char **argv, serve_cli *o, int *help, err *e)
{
    enum {
        O_MODEL = 256,
        O_CHIPS,
        O_DTYPE,
        O_KVDT,
        O_PCHIPS,
        O_DCHIPS,
        O_RATE,
        O_RATES,
        O_REQ,
        O_PROMPT,
        O_OUTPUT,
        O_WORK,
        O_SEED,
        O_MAXB,
        O_BUDGET,
        O_MAXPRE,
        O_BLOCK,
        O_KVTOK,
        O_EXACT,
        O_FULL,
        O_CHECK,
        O_SLOT,
        O_SLOP,
        O_JSON,
        O_CSV
    };
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"model", required_argument, 0, O_MODEL},
                                         {"chips", required_argument, 0, O_CHIPS},
                                         {"dtype", required_argument, 0, O_DTYPE},
                                         {"kv-dtype", required_argument, 0, O_KVDT},
                                         {"prefill-chips", required_argument, 0, O_PCHIPS},
                                         {"decode-chips", required_argument, 0, O_DCHIPS},
                                         {"rate", required_argument, 0, O_RATE},
                                         {"rates", required_argument, 0, O_RATES},
                                         {"requests", required_argument, 0, O_REQ},
                                         {"prompt", required_argument, 0, O_PROMPT},
                                         {"output", required_argument, 0, O_OUTPUT},
                                         {"workload", required_argument, 0, O_WORK},
                                         {"seed", required_argument, 0, O_SEED},
                                         {"max-batch", required_argument, 0, O_MAXB},
                                         {"token-budget", required_argument, 0, O_BUDGET},
                                         {"max-prefill", required_argument, 0, O_MAXPRE},
                                         {"block-tokens", required_argument, 0, O_BLOCK},
                                         {"kv-tokens", required_argument, 0, O_KVTOK},
                                         {"exact", no_argument, 0, O_EXACT},
                                         {"full-layers", no_argument, 0, O_FULL},
                                         {"check-grid", required_argument, 0, O_CHECK},
                                         {"slo-ttft", required_argument, 0, O_SLOT},
                                         {"slo-tpot", required_argument, 0, O_SLOP},
                                         {"json", required_argument, 0, O_JSON},
                                         {"csv", required_argument, 0, O_CSV},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->chips = 1;
    o->dt = o->kv_dt = ISA_DT_BF16;
    o->requests = 1000;
    o->seed = 1;
    o->max_batch = 64;
    o->max_prefill = 8192;
    o->block_tokens = 16;
    o->prompt = (serve_len){SERVE_LEN_FIXED, 512, 0};
    o->output = (serve_len){SERVE_LEN_FIXED, 128, 0};
    *help = 0;
    optind = 0;
    opterr = 0;
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "c:p:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'p':
            if (o->novr == SERVE_MAX_OVERRIDES)
                return err_set(e, "serve: too many -p overrides (at most %d)", SERVE_MAX_OVERRIDES);
            o->ovr[o->novr++] = optarg;
            break;
        case O_MODEL:
            o->model = optarg;
            break;
#define UINT_OPT(K, NAME, LO, HI, FIELD)                                                           \
    case K:                                                                                        \
        if (parse_uint(optarg, LO, HI, &v))                                                        \
            return err_set(e, "serve: --" NAME " '%s': expected a whole number in [%llu, %llu]",   \
                           optarg, (unsigned long long)(LO), (unsigned long long)(HI));            \
        o->FIELD = v;                                                                              \
        break;
            UINT_OPT(O_CHIPS, "chips", 1, 4096, chips)
            UINT_OPT(O_PCHIPS, "prefill-chips", 1, 4096, prefill_chips)
            UINT_OPT(O_DCHIPS, "decode-chips", 1, 4096, decode_chips)
            UINT_OPT(O_REQ, "requests", 1, 10000000, requests)
            UINT_OPT(O_SEED, "seed", 0, UINT64_MAX, seed)
            UINT_OPT(O_MAXB, "max-batch", 1, 4096, max_batch)
            UINT_OPT(O_BUDGET, "token-budget", 0, 1 << 20, token_budget)
            UINT_OPT(O_MAXPRE, "max-prefill", 1, 1 << 20, max_prefill)
            UINT_OPT(O_BLOCK, "block-tokens", 1, 1 << 16, block_tokens)
            UINT_OPT(O_KVTOK, "kv-tokens", 1, UINT64_MAX, kv_tokens)
            UINT_OPT(O_CHECK, "check-grid", 1, SERVE_MAX_CHECK, check)
#undef UINT_OPT
        case O_DTYPE:
            if (parse_dtype(optarg, "--dtype", &o->dt, e))
                return -1;
            break;
        case O_KVDT:
            if (parse_dtype(optarg, "--kv-dtype", &o->kv_dt, e))
                return -1;
            o->kv_dt_given = 1;
            break;
        case O_RATE:
        case O_RATES:
            if (parse_rates(optarg, o, e))
                return -1;
            if (c == O_RATE && o->nrates != 1)
                return err_set(e, "serve: --rate '%s': one rate (use --rates for a sweep)", optarg);
            break;
        case O_PROMPT:
            if (serve_len_parse(&o->prompt, optarg, "serve: --prompt", e))
                return -1;
            break;
        case O_OUTPUT:
            if (serve_len_parse(&o->output, optarg, "serve: --output", e))
                return -1;
            break;
        case O_WORK:
            o->workload = optarg;
            break;
        case O_EXACT:
            o->exact = 1;
            break;
        case O_FULL:
            o->full_layers = 1;
            break;
        case O_SLOT:
        case O_SLOP:
            if (parse_seconds(optarg, c == O_SLOT ? &o->slo_ttft : &o->slo_tpot))
                return err_set(e, "serve: --%s '%s': expected seconds > 0 (or N ms)",
                               c == O_SLOT ? "slo-ttft" : "slo-tpot", optarg);
            break;
        case O_JSON:
            o->json = optarg;
            break;
        case O_CSV:
            o->csv = optarg;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            *help = 1;
            return 0;
        default:
            return err_set(e, "serve: bad option '%s' (see 'tpusim serve --help')",
                           argv[optind - 1]);
        }
    }
    if (optind < argc)
        return err_set(e, "serve: unexpected argument '%s'", argv[optind]);
    if (!o->config)
        return err_set(e, "serve: -c CONFIG is required (see 'tpusim serve --help')");
    if (!o->model)
        return err_set(e, "serve: --model NAME is required (see 'tpusim gen --list-models')");
    if (!o->workload && !o->nrates)
        return err_set(e, "serve: give --rate R, --rates A,B,... or --workload FILE.csv");
    if (o->workload && o->nrates)
        return err_set(e, "serve: --workload and --rate/--rates exclude each other");
    if (!o->prefill_chips != !o->decode_chips)
        return err_set(e, "serve: --prefill-chips and --decode-chips go together");
    if (o->token_budget && o->token_budget < 2)
        return err_set(e, "serve: --token-budget %u: at least 2", o->token_budget);
    if (!o->kv_dt_given)
        o->kv_dt = o->dt;
    return 0;
}

/* ---- one run ----------------------------------------------------------------------------- */

typedef struct run_out {
    double rate; /* 0: workload file */
    serve_result res;
    serve_summary sum;
} run_out;

static void put_dist(json_w *j, const char *key, const serve_dist *d)
{
    json_obj_begin(j, key);
    json_num(j, "mean_s", d->mean);
    json_num(j, "p50_s", d->p50);
    json_num(j, "p90_s", d->p90);
    json_num(j, "p99_s", d->p99);
    json_num(j, "max_s", d->max);
    json_u64(j, "n", d->n);
    json_obj_end(j);
}

static void put_run(json_w *j, const run_out *r, int series)
{
    const serve_summary *s = &r->sum;
    const serve_result *x = &r->res;
    json_obj_begin(j, NULL);
    if (r->rate > 0)
        json_num(j, "rate_rps", r->rate);
    json_u64(j, "requests", x->n);
    put_dist(j, "ttft", &s->ttft);
    put_dist(j, "tpot", &s->tpot);
    put_dist(j, "e2e", &s->e2e);
    json_num(j, "makespan_s", x->makespan_s);
    json_num(j, "output_tokens", s->out_tokens);
    json_num(j, "prompt_tokens", s->in_tokens);
    json_num(j, "output_tokens_per_s", s->tokens_per_s);
    json_num(j, "output_tokens_per_s_per_chip", s->tokens_per_s_chip);
    json_num(j, "requests_per_s", s->requests_per_s);
    json_num(j, "goodput_rps", s->goodput_rps);
    json_num(j, "goodput_fraction", s->goodput_frac);
    if (s->usd_per_mtok > 0)
        json_num(j, "usd_per_million_output_tokens", s->usd_per_mtok);
    json_u64(j, "steps", x->steps);
    json_u64(j, "prefill_steps", x->prefill_steps);
    json_u64(j, "decode_steps", x->decode_steps);
    json_u64(j, "mixed_steps", x->mixed_steps);
    json_u64(j, "preemptions", x->preemptions);
    json_num(j, "busy_s", x->busy_s);
    json_num(j, "mean_batch", x->mean_batch);
    json_u64(j, "max_batch", x->max_batch_seen);
    json_num(j, "mean_kv_occupancy", x->mean_kv_occupancy);
    json_num(j, "max_kv_occupancy", x->max_kv_occupancy);
    /* energy (docs/serving.md, "Energy") */
    json_num(j, "energy_j", s->energy_j);
    json_num(j, "dynamic_j", s->dynamic_j);
    json_num(j, "static_j", s->static_j);
    json_num(j, "steps_dynamic_j", x->dyn_j);
    if (x->prefill_dyn_j > 0 || x->xfer_dyn_j > 0) {
        json_num(j, "prefill_slice_dynamic_j", x->prefill_dyn_j);
        json_num(j, "kv_transfer_dynamic_j", x->xfer_dyn_j);
    }
    json_num(j, "avg_power_w", s->avg_w);
    json_num(j, "avg_power_w_per_chip", s->avg_w_chip);
    json_num(j, "output_tokens_per_j", s->tokens_per_j);
    json_num(j, "mj_per_output_token", s->j_per_token * 1e3);
    if (series) {
        json_arr_begin(j, "series");
        for (size_t i = 0; i < x->nseries; i++) {
            const serve_point *p = &x->series[i];
            json_obj_begin(j, NULL);
            json_num(j, "t_s", p->t_s);
            json_u64(j, "batch", p->batch);
            json_u64(j, "prefill_tokens", p->prefill_tokens);
            json_num(j, "kv_occupancy", p->kv_occupancy);
            json_obj_end(j);
        }
        json_arr_end(j);
    }
    json_obj_end(j);
}


/* The step cache's axes and tables as JSON arrays (rows of a [batch][context] grid). */
static void put_u32s(json_w *j, const char *key, const uint32_t *v, unsigned n)
{
    json_arr_begin(j, key);
    for (unsigned i = 0; i < n; i++)
        json_u64(j, NULL, v[i]);
    json_arr_end(j);
}

static void put_table(json_w *j, const char *key, const double (*m)[SERVE_GRID_MAX], unsigned rows,
                      unsigned cols)
{
    json_arr_begin(j, key);
    for (unsigned i = 0; i < rows; i++) {
        json_arr_begin(j, NULL);
        for (unsigned k = 0; k < cols; k++)
            json_num(j, NULL, m[i][k]);
        json_arr_end(j);
    }
    json_arr_end(j);
}

static void put_grid(json_w *j, const char *key, const serve_grid *g, int exact)
{
    json_obj_begin(j, key);
    json_str(j, "topology", g->topo);
    json_bool(j, "exact", exact);
    json_num(j, "head_s", g->head_s);
    json_num(j, "weight_read_s", g->weight_read_s);
    /* dynamic energy of the same steps, J of the replica (all its devices) */
    json_num(j, "head_dynamic_j", g->head_j);
    json_num(j, "weight_read_dynamic_j", g->weight_read_j);
    json_u64(j, "simulations", g->sims);
    json_num(j, "simulation_wall_s", g->sim_wall_s);
    if (!exact) {
        put_u32s(j, "batch", g->b, g->nb);
        put_u32s(j, "context", g->ctx, g->nc);
        put_table(j, "decode_s", g->dec, g->nb, g->nc);         /* [batch][context] */
        put_table(j, "decode_sim_s", g->dec_sim, g->nb, g->nc); /* before smoothing */
        put_table(j, "decode_dynamic_j", g->dec_j, g->nb, g->nc);
        put_table(j, "decode_sim_dynamic_j", g->dec_j_sim, g->nb, g->nc);
        json_arr_begin(j, "decode_filled"); /* 0 simulated, 1 unreachable, 2 did not fit */
        for (unsigned i = 0; i < g->nb; i++) {
            json_arr_begin(j, NULL);
            for (unsigned k = 0; k < g->nc; k++)
                json_u64(j, NULL, g->dec_fill[i][k]);
            json_arr_end(j);
        }
        json_arr_end(j);
        put_u32s(j, "prefill_tokens", g->p, g->np);
        json_arr_begin(j, "prefill_layers_s");
        for (unsigned i = 0; i < g->np; i++)
            json_num(j, NULL, g->pre[i]);
        json_arr_end(j);
        json_arr_begin(j, "prefill_layers_dynamic_j");
        for (unsigned i = 0; i < g->np; i++)
            json_num(j, NULL, g->pre_j[i]);
        json_arr_end(j);
    }
    json_obj_end(j);
}

static void print_grid(FILE *out, const char *what, const serve_grid *g, int exact)
{
    fprintf(out, "  %s steps: topology %s, head %.3f ms, %u simulations in %.1f s\n", what, g->topo,
            g->head_s * 1e3, g->sims, g->sim_wall_s);
    if (!exact && g->nb && g->nc && g->np)
        fprintf(out,
                "    dynamic energy per step (replica): decode b=%u ctx=%u %.2f mJ, b=%u ctx=%u "
                "%.2f mJ; prefill %u tokens %.2f mJ (all layers + head)\n",
                g->b[0], g->ctx[0], g->dec_j[0][0] * 1e3, g->b[g->nb - 1], g->ctx[g->nc - 1],
                g->dec_j[g->nb - 1][g->nc - 1] * 1e3, g->p[g->np - 1],
                (g->pre_j[g->np - 1] + g->head_j) * 1e3);
    if (exact)
        return;
    fprintf(out, "    decode step (ms), batch x context:\n      %6s", "b\\ctx");
    for (unsigned k = 0; k < g->nc; k++)
        fprintf(out, " %8u", g->ctx[k]);
    fprintf(out, "\n");
    for (unsigned i = 0; i < g->nb; i++) {
        fprintf(out, "      %6u", g->b[i]);
        for (unsigned k = 0; k < g->nc; k++)
            fprintf(out, " %7.2f%c", g->dec[i][k] * 1e3, " ~!"[g->dec_fill[i][k]]);
        fprintf(out, "\n");
    }
    fprintf(out,
            "      (~ beyond the KV cache's reach, ! did not fit in simulation: extrapolated)\n");
    fprintf(out, "    prefill (ms, all layers), tokens (axis refined where the time bends):");
    for (unsigned k = 0; k < g->np; k++)
        fprintf(out, "%s%u:%.2f", k % 10 ? " " : "\n      ", g->p[k], g->pre[k] * 1e3);
    fprintf(out, "\n");
}

static void run_label(const run_out *r, char *buf, size_t cap)
{
    if (r->rate > 0)
        snprintf(buf, cap, "%.3g", r->rate);
    else
        snprintf(buf, cap, "trace");
}

/* Energy of a run: total, its static part, average power, tokens per joule, mJ per token. */
static void print_energy(FILE *out, const run_out *r, int header)
{
    const serve_summary *s = &r->sum;
    if (header)
        fprintf(out, "  %8s %11s %11s %11s %9s %9s %9s %9s\n", "rate/s", "energy J", "dynamic J",
                "static J", "W/chip", "W total", "tok/J", "mJ/tok");
    char rate[16];
    run_label(r, rate, sizeof rate);
    fprintf(out, "  %8s %11.4g %11.4g %11.4g %9.1f %9.1f %9.3f %9.3f\n", rate, s->energy_j,
            s->dynamic_j, s->static_j, s->avg_w_chip, s->avg_w, s->tokens_per_j,
            s->j_per_token * 1e3);
}

static void print_run(FILE *out, const run_out *r, int header)
{
    const serve_summary *s = &r->sum;
    if (header)
        fprintf(out, "  %8s %8s %9s %9s %9s %9s %9s %9s %10s %9s %8s %8s %7s\n", "rate/s", "req/s",
                "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99", "E2E p50", "E2E p99", "tok/s/chip",
                "goodput", "batch", "KV max", "$/Mtok");
    char rate[16];
    run_label(r, rate, sizeof rate);
    fprintf(
        out,
        "  %8s %8.3g %7.1fms %7.1fms %7.2fms %7.2fms %8.2fs %8.2fs %10.1f %8.1f%% %8.1f %7.1f%% "
        "%7.3g\n",
        rate, s->requests_per_s, s->ttft.p50 * 1e3, s->ttft.p99 * 1e3, s->tpot.p50 * 1e3,
        s->tpot.p99 * 1e3, s->e2e.p50, s->e2e.p99, s->tokens_per_s_chip, 100 * s->goodput_frac,
        r->res.mean_batch, 100 * r->res.max_kv_occupancy, s->usd_per_mtok);
}

static uint32_t max_len(const serve_len *l)
{
    if (l->kind == SERVE_LEN_FIXED)
        return (uint32_t)l->a;
    if (l->kind == SERVE_LEN_UNIFORM)
        return (uint32_t)l->b;
    return 0; /* unbounded: from the drawn workloads */
}

int cli_serve(int argc, char **argv, err *e)
{
    serve_cli o;
    int help;
    if (parse_args(argc, argv, &o, &help, e))
        return -1;
    if (help) {
        serve_usage(stdout);
        return 0;
    }
    cfg c;
    serve_model m;
    if (sim_load_cfg(&c, o.config, o.ovr, o.novr, e) || serve_model_preset(&m, o.model, e))
        return -1;
    /* before any work (the step grid takes seconds to minutes): outputs creatable, neither
     * an input nor the other output */
    int json_stdout = o.json && !strcmp(o.json, "-"), csv_stdout = o.csv && !strcmp(o.csv, "-");
    if (json_stdout && csv_stdout)
        return err_set(e, "serve: only one of --json and --csv can be '-'");
    FILE *out = json_stdout || csv_stdout ? stderr : stdout; /* stdout carries the file then */
    const ofile_ref outs[] = {{o.json, "--json"}, {o.csv, "--csv"}};
    const ofile_ref ins[] = {{o.workload, "workload"}, {o.config, "config"}, {c.source, "config"}};
    if (ofile_check(outs, 2, ins, 3, e))
        return -1;
    int disagg = o.prefill_chips > 0;
    unsigned dchips = disagg ? o.decode_chips : o.chips;
    unsigned total_chips = disagg ? o.prefill_chips + o.decode_chips : o.chips;
    /* --chips counts devices, as gen does (docs/architecture.md, "Devices and megacore"); a
     * chip's other devices serve other replicas, so per-chip figures and the price use
     * devices / devices per chip chips */
    unsigned dpc = cfg_devices_per_chip(&c);
    double chip_count = (double)total_chips / dpc;
    if (m.heads % dchips || m.d_ff % dchips || m.vocab % dchips ||
        (disagg &&
         (m.heads % o.prefill_chips || m.d_ff % o.prefill_chips || m.vocab % o.prefill_chips)))
        return err_set(e,
                       "serve: %s: heads %llu, d-ff %llu and vocab %llu must divide by the "
                       "tensor-parallel chips",
                       m.name, (unsigned long long)m.heads, (unsigned long long)m.d_ff,
                       (unsigned long long)m.vocab);

    int rc = -1;
    unsigned nruns = o.workload ? 1 : o.nrates;
    serve_workload *wl = calloc(nruns, sizeof *wl);
    run_out *runs = calloc(nruns, sizeof *runs);
    serve_check *chk = o.check ? calloc(o.check, sizeof *chk) : NULL;
    serve_steps *dst = NULL, *pst = NULL;
    json_w j;
    int json_open_ok = 0;
    if (!wl || !runs || (o.check && !chk)) {
        err_setk(e, ERR_NOMEM, "serve: out of memory");
        goto out;
    }
    /* Workloads first: the grid's bounds come from them. */
    uint32_t max_prompt = o.workload ? 0 : max_len(&o.prompt);
    uint32_t max_ctx = o.workload ? 0 : max_prompt + max_len(&o.output);
    for (unsigned i = 0; i < nruns; i++) {
        if (o.workload ? serve_workload_csv(&wl[i], o.workload, o.requests, e)
                       : serve_workload_poisson(&wl[i], o.rates[i], o.requests, &o.prompt,
                                                &o.output, o.seed, e))
            goto out;
        runs[i].rate = o.workload ? 0 : o.rates[i];
        for (size_t k = 0; k < wl[i].n; k++) {
            const serve_req *q = &wl[i].req[k];
            if (q->prompt > max_prompt)
                max_prompt = q->prompt;
            if (q->prompt + q->output > max_ctx)
                max_ctx = q->prompt + q->output;
        }
    }
    /* Memory: the decode (or only) slice holds the KV cache. */
    serve_memory mem;
    uint64_t step_tokens = o.token_budget ? o.token_budget : o.max_prefill;
    if (max_prompt > step_tokens && !o.token_budget)
        step_tokens = max_prompt;
    serve_memory_plan(&mem, &m, &c, dchips, o.dt, o.kv_dt, step_tokens, o.max_batch);
    {
        /* the generator's memory plan, where it plans (else the analytic figures stay) */
        serve_hw_opts mo = {
            .c = &c, .m = &m, .chips = dchips, .w_dt = o.dt, .max_batch = o.max_batch};
        serve_memory pm = mem;
        err pe;
        if (serve_steps_memory(&mo, step_tokens, &pm, &pe) == 0)
            mem = pm;
    }
    uint64_t kv_tokens = o.kv_tokens ? o.kv_tokens : mem.kv_tokens;
    if (!kv_tokens) {
        err_set(e,
                "serve: %s does not fit %u %s(s) of %s: %.2f GB of weights and %.2f GB of "
                "activations per %s, %.2f GB of HBM (use more --chips)",
                m.name, dchips, dpc > 1 ? "device" : "chip", c.chip_name, mem.weights / 1e9,
                mem.activations / 1e9, dpc > 1 ? "device" : "chip", mem.hbm / 1e9);
        goto out;
    }
    serve_sched_opts so = {.max_batch = o.max_batch,
                           .token_budget = o.token_budget,
                           .max_prefill = o.max_prefill,
                           .kv_blocks = kv_tokens / o.block_tokens,
                           .block_tokens = o.block_tokens,
                           .disaggregated = disagg,
                           .kv_bytes_per_token = serve_kv_bytes_per_token(&m, 1, o.kv_dt)};
    if (disagg) {
        /* every chip of the smaller slice sends (or receives) its shard over one link (a
         * device over its share of one: cfg_ici_link_bps) */
        unsigned links = o.prefill_chips < o.decode_chips ? o.prefill_chips : o.decode_chips;
        so.kv_transfer_bps = links * cfg_ici_link_bps(&c);
        so.kv_transfer_latency_s = c.ici_hop_latency_ns * 1e-9;
        so.kv_transfer_j_per_byte = 8.0 * c.energy_ici_pj_bit * 1e-12; /* one hop */
    }
    serve_hw_opts ho = {.c = &c,
                        .m = &m,
                        .chips = dchips,
                        .w_dt = o.dt,
                        .exact = o.exact,
                        .full_layers = o.full_layers,
                        .max_batch = o.max_batch,
                        .max_ctx = max_ctx,
                        .max_prefill = o.token_budget ? o.token_budget : max_prompt,
                        .kv_tokens = kv_tokens};
    if (!(dst = serve_steps_new(&ho, e)))
        goto out;
    serve_hw_opts hp = ho;
    if (disagg) {
        hp.chips = o.prefill_chips;
        hp.max_batch = 1; /* only the prefill axis and the head are used */
        hp.max_ctx = 128;
        if (!(pst = serve_steps_new(&hp, e)))
            goto out;
    }
    if (o.check && serve_steps_check(dst, o.check, o.seed, chk, e))
        goto out;
    for (unsigned i = 0; i < nruns; i++) {
        if (serve_schedule(&wl[i], &so, serve_steps_time, dst, disagg ? serve_steps_time : NULL,
                           pst, &runs[i].res, e) ||
            serve_summarise(&runs[i].sum, &runs[i].res, chip_count, c.cost_usd_per_chip_hour,
                            c.energy_static_w, o.slo_ttft, o.slo_tpot, e))
            goto out;
    }
    if (o.csv && serve_write_csv(&runs[nruns - 1].res, o.csv, e))
        goto out;

    double max_err = 0, sum_err = 0, max_err_j = 0, sum_err_j = 0;
    for (unsigned k = 0; k < o.check; k++) {
        sum_err += fabs(chk[k].rel_err);
        if (fabs(chk[k].rel_err) > max_err)
            max_err = fabs(chk[k].rel_err);
        sum_err_j += fabs(chk[k].rel_err_j);
        if (fabs(chk[k].rel_err_j) > max_err_j)
            max_err_j = fabs(chk[k].rel_err_j);
    }
    if (!o.quiet) {
        if (dpc > 1)
            fprintf(out, "tpusim serve: %s on %s, %u device(s) = %g chip(s)%s\n", m.name,
                    c.chip_name, total_chips, chip_count, disagg ? " (disaggregated)" : "");
        else
            fprintf(out, "tpusim serve: %s on %s, %u chip(s)%s\n", m.name, c.chip_name, total_chips,
                    disagg ? " (disaggregated)" : "");
        if (disagg)
            fprintf(out,
                    "  slices: prefill %u chip(s), decode %u chip(s); KV %.3g MB/token over %.0f "
                    "GB/s\n",
                    o.prefill_chips, o.decode_chips, so.kv_bytes_per_token / 1e6,
                    so.kv_transfer_bps / 1e9);
        fprintf(out,
                "  model: %.2fB parameters, %llu layers, d_model %llu, %llu heads (%llu kv), "
                "d_ff %llu, vocab %llu; weights %s, KV %s\n",
                m.params / 1e9, (unsigned long long)m.layers, (unsigned long long)m.d_model,
                (unsigned long long)m.heads, (unsigned long long)m.kv_heads,
                (unsigned long long)m.d_ff, (unsigned long long)m.vocab, isa_dtype_name(o.dt),
                isa_dtype_name(o.kv_dt));
        fprintf(out,
                "  HBM per %s: %.2f GB = weights %.2f + activations %.2f (%s) + KV cache %.2f GB; "
                "KV %.1f KB/token -> %llu tokens per replica%s (%llu blocks of %u)\n",
                dpc > 1 ? "device" : "chip", mem.hbm / 1e9, mem.weights / 1e9,
                mem.activations / 1e9, mem.from_plan ? "memory plan" : "analytic",
                (mem.kv > 0 ? mem.kv : 0) / 1e9, mem.kv_per_token / 1e3,
                (unsigned long long)kv_tokens, o.kv_tokens ? " (--kv-tokens)" : "",
                (unsigned long long)so.kv_blocks, o.block_tokens);
        print_grid(out, disagg ? "decode-slice" : "serving", serve_steps_grid(dst), o.exact);
        if (pst)
            print_grid(out, "prefill-slice", serve_steps_grid(pst), o.exact);
        if (o.check) {
            fprintf(out, "  interpolation error at %u off-grid points: mean %.2f%%, max %.2f%%\n",
                    o.check, 100 * sum_err / o.check, 100 * max_err);
            fprintf(out, "  dynamic energy, the same points: mean %.2f%%, max %.2f%%\n",
                    100 * sum_err_j / o.check, 100 * max_err_j);
            for (unsigned k = 0; k < o.check; k++) {
                const serve_check *x = &chk[k];
                if (x->decode)
                    fprintf(out, "    decode  b=%-4u ctx=%-6u", x->b, x->ctx);
                else
                    fprintf(out, "    prefill p=%-12u", x->p);
                fprintf(out, " grid %9.3f ms  sim %9.3f ms  %+6.2f%%;  energy %+6.2f%%\n",
                        x->grid_s * 1e3, x->sim_s * 1e3, 100 * x->rel_err, 100 * x->rel_err_j);
            }
        }
        fprintf(out, "  scheduler: max batch %u, %s, %llu requests per run%s\n", o.max_batch,
                o.token_budget ? "chunked prefill" : "whole-prompt prefill steps",
                (unsigned long long)wl[0].n, o.workload ? " (trace)" : " (Poisson)");
        if (o.token_budget)
            fprintf(out, "  token budget %u per step\n", o.token_budget);
        for (unsigned i = 0; i < nruns; i++)
            print_run(out, &runs[i], i == 0);
        const run_out *l = &runs[nruns - 1];
        fprintf(out,
                "  last run: %llu steps (%llu prefill, %llu decode, %llu mixed), %llu "
                "preemptions, makespan %.2f s, mean TTFT %.1f ms, mean TPOT %.2f ms, mean E2E "
                "%.3f s, %.1f output tok/s\n",
                (unsigned long long)l->res.steps, (unsigned long long)l->res.prefill_steps,
                (unsigned long long)l->res.decode_steps, (unsigned long long)l->res.mixed_steps,
                (unsigned long long)l->res.preemptions, l->res.makespan_s, l->sum.ttft.mean * 1e3,
                l->sum.tpot.mean * 1e3, l->sum.e2e.mean, l->sum.tokens_per_s);
        if (o.slo_ttft > 0 || o.slo_tpot > 0)
            fprintf(out, "  goodput: requests meeting TTFT <= %g ms and TPOT <= %g ms (0 = none)\n",
                    o.slo_ttft * 1e3, o.slo_tpot * 1e3);
        fprintf(out,
                "  energy: the steps' dynamic energy + static %g W/chip x %g chip(s) x makespan "
                "(idle included); tok/J counts output tokens\n",
                c.energy_static_w, chip_count);
        for (unsigned i = 0; i < nruns; i++)
            print_energy(out, &runs[i], i == 0);
    }
    if (o.json) {
        if (json_open(&j, o.json, e))
            goto out;
        json_open_ok = 1;
        json_obj_begin(&j, NULL);
        json_str(&j, "tool", "tpusim serve");
        json_str(&j, "chip", c.chip_name);
        json_str(&j, "model", m.name);
        json_num(&j, "params", m.params);
        json_u64(&j, "kv_heads", m.kv_heads);
        json_num(&j, "chips", chip_count);
        json_num(&j, "replica_chips", (double)dchips / dpc);
        json_u64(&j, "devices", total_chips);
        json_u64(&j, "devices_per_chip", dpc);
        if (disagg) {
            json_u64(&j, "prefill_chips", o.prefill_chips);
            json_u64(&j, "decode_chips", o.decode_chips);
            json_num(&j, "kv_transfer_bytes_per_s", so.kv_transfer_bps);
        }
        json_str(&j, "dtype", isa_dtype_name(o.dt));
        json_str(&j, "kv_dtype", isa_dtype_name(o.kv_dt));
        json_num(&j, "usd_per_chip_hour", c.cost_usd_per_chip_hour);
        json_num(&j, "static_w_per_chip", c.energy_static_w);
        json_obj_begin(&j, "memory");
        json_num(&j, "hbm_bytes", mem.hbm);
        json_num(&j, "weights_bytes", mem.weights);
        json_num(&j, "activations_bytes", mem.activations);
        json_str(&j, "memory_source", mem.from_plan ? "memory_plan" : "analytic");
        json_num(&j, "kv_bytes", mem.kv);
        json_num(&j, "kv_bytes_per_token", mem.kv_per_token);
        json_u64(&j, "kv_tokens", kv_tokens);
        json_u64(&j, "kv_blocks", so.kv_blocks);
        json_u64(&j, "block_tokens", o.block_tokens);
        json_obj_end(&j);
        json_obj_begin(&j, "scheduler");
        json_u64(&j, "max_batch", o.max_batch);
        json_u64(&j, "token_budget", o.token_budget);
        json_u64(&j, "max_prefill", o.max_prefill);
        json_num(&j, "slo_ttft_s", o.slo_ttft);
        json_num(&j, "slo_tpot_s", o.slo_tpot);
        json_obj_end(&j);
        put_grid(&j, "steps", serve_steps_grid(dst), o.exact);
        if (pst)
            put_grid(&j, "prefill_steps", serve_steps_grid(pst), o.exact);
        if (o.check) {
            json_obj_begin(&j, "interpolation_check");
            json_num(&j, "mean_abs_rel_err", sum_err / o.check);
            json_num(&j, "max_abs_rel_err", max_err);
            json_num(&j, "mean_abs_rel_err_dynamic_j", sum_err_j / o.check);
            json_num(&j, "max_abs_rel_err_dynamic_j", max_err_j);
            json_arr_begin(&j, "points");
            for (unsigned k = 0; k < o.check; k++) {
                json_obj_begin(&j, NULL);
                json_str(&j, "kind", chk[k].decode ? "decode" : "prefill");
                if (chk[k].decode) {
                    json_u64(&j, "batch", chk[k].b);
                    json_u64(&j, "context", chk[k].ctx);
                } else {
                    json_u64(&j, "tokens", chk[k].p);
                }
                json_num(&j, "grid_s", chk[k].grid_s);
                json_num(&j, "sim_s", chk[k].sim_s);
                json_num(&j, "rel_err", chk[k].rel_err);
                json_num(&j, "grid_dynamic_j", chk[k].grid_j);
                json_num(&j, "sim_dynamic_j", chk[k].sim_j);
                json_num(&j, "rel_err_dynamic_j", chk[k].rel_err_j);
                json_obj_end(&j);
            }
            json_arr_end(&j);
            json_obj_end(&j);
        }
        json_arr_begin(&j, "runs");
        for (unsigned i = 0; i < nruns; i++)
            put_run(&j, &runs[i], 1);
        json_arr_end(&j);
        json_obj_end(&j);
        json_open_ok = 0;
        if (json_close(&j, e))
            goto out;
    }
    rc = 0;
out:
    if (json_open_ok)
        json_abort(&j);
    for (unsigned i = 0; wl && i < nruns; i++)
        serve_workload_fini(&wl[i]);
    for (unsigned i = 0; runs && i < nruns; i++)
        serve_result_fini(&runs[i].res);
    free(wl);
    free(runs);
    free(chk);
    serve_steps_free(dst);
    serve_steps_free(pst);
    return rc;
}
