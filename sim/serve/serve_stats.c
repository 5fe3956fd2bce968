/* serve_stats.c - the figures of a serving run: latency percentiles (TTFT, TPOT, end-to-end),
 * throughput per chip, goodput under SLOs, cost per million output tokens, energy (the steps'
 * dynamic energy + static power over the run), tokens per joule, and the per-request CSV.
 * Definitions: docs/serving.md, "Figures" and "Energy". */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ofile.h"

double serve_percentile(const double *v, size_t n, double q)
{
    if (!n)
        return 0;
    double x = (double)(n - 1) * q / 100.0;
    size_t i = (size_t)x;
    if (i + 1 >= n)
        return v[n - 1];
    return v[i] + (v[i + 1] - v[i]) * (x - (double)i);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void serve_dist_of(serve_dist *d, double *v, size_t n)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    if (!n)
        return;
    qsort(v, n, sizeof *v, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    d->mean = sum / (double)n;
    d->p50 = serve_percentile(v, n, 50);
    d->p90 = serve_percentile(v, n, 90);
    d->p99 = serve_percentile(v, n, 99);
    d->max = v[n - 1];
}

/* TPOT of one request: the decode time per token after the first, (e2e - ttft) / (out - 1). */
static double tpot(const serve_rec *r)
{
    return r->output > 1 ? (r->done_s - r->first_token_s) / (double)(r->output - 1) : 0;
}

int serve_summarise(serve_summary *s, const serve_result *r, double chips, double usd_per_chip_hour,
                    double static_w, double slo_ttft_s, double slo_tpot_s, err *e)
{
    memset(s, 0, sizeof *s);
    s->chips = chips;
    size_t n = r->n;
    double *a = malloc((n ? n : 1) * sizeof *a), *b = malloc((n ? n : 1) * sizeof *b),
           *c = malloc((n ? n : 1) * sizeof *c);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return err_setk(e, ERR_NOMEM, "serve: out of memory for the figures");
    }
    size_t nt = 0, good = 0;
    for (size_t i = 0; i < n; i++) {
        const serve_rec *q = &r->rec[i];
        a[i] = q->first_token_s - q->arrival_s;
        c[i] = q->done_s - q->arrival_s;
        if (q->output > 1)
            b[nt++] = tpot(q);
        s->out_tokens += q->output;
        s->in_tokens += q->prompt;
        if ((slo_ttft_s <= 0 || a[i] <= slo_ttft_s) && (slo_tpot_s <= 0 || tpot(q) <= slo_tpot_s))
            good++;
    }
    serve_dist_of(&s->ttft, a, n);
    serve_dist_of(&s->tpot, b, nt);
    serve_dist_of(&s->e2e, c, n);
    free(a);
    free(b);
    free(c);
    if (r->makespan_s > 0) {
        s->tokens_per_s = s->out_tokens / r->makespan_s;
        s->tokens_per_s_chip = s->tokens_per_s / chips;
        s->requests_per_s = (double)n / r->makespan_s;
        s->goodput_rps = (double)good / r->makespan_s;
    }
    s->goodput_frac = n ? (double)good / (double)n : 0;
    /* chips x hours of the run, priced, per million output tokens */
    if (usd_per_chip_hour > 0 && s->out_tokens > 0)
        s->usd_per_mtok =
            usd_per_chip_hour * chips * (r->makespan_s / 3600.0) / (s->out_tokens / 1e6);
    /* energy: the executed steps' dynamic joules + every chip's static power over the run */
    s->dynamic_j = r->dyn_j + r->prefill_dyn_j + r->xfer_dyn_j;
    s->static_j = static_w * chips * r->makespan_s;
    s->energy_j = s->dynamic_j + s->static_j;
    if (r->makespan_s > 0) {
        s->avg_w = s->energy_j / r->makespan_s;
        s->avg_w_chip = chips > 0 ? s->avg_w / chips : 0;
    }
    if (s->energy_j > 0)
        s->tokens_per_j = s->out_tokens / s->energy_j;
    if (s->out_tokens > 0)
        s->j_per_token = s->energy_j / s->out_tokens;
    return 0;
}

int serve_write_csv(const serve_result *r, const char *path, err *e)
{
    ofile *of;
    if (ofile_open(&of, path, e))
        return -1;
    FILE *f = ofile_stream(of);
    fprintf(f, "arrival_s,prompt_tokens,output_tokens,ttft_s,tpot_s,e2e_s,preemptions\n");
    for (size_t i = 0; i < r->n; i++) {
        const serve_rec *q = &r->rec[i];
        fprintf(f, "%.9g,%u,%u,%.9g,%.9g,%.9g,%u\n", q->arrival_s, q->prompt, q->output,
                q->first_token_s - q->arrival_s, tpot(q), q->done_s - q->arrival_s, q->preemptions);
    }
    return ofile_close(of, e);
}
