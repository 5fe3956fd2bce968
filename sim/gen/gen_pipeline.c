/* gen_pipeline.c - pipeline parallelism of the llm-step training step: P stages of layers/P
 * layers on one torus axis, M microbatches in GPipe or 1F1B order, activations sent forward
 * and their gradients backward between neighbouring stages by ICI send/recv, one trace per
 * stage. Assumes equal stages (the first adds the embedding, the last the LM head and loss)
 * and gradients accumulated over the microbatches then reduced once. The stage's model is
 * built by gen_models.c (gen_stage_*); this file holds the options, the schedule and the
 * per-stage trace files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

static const char *const sched_names[GEN_SCHED_COUNT] = {
    [GEN_SCHED_GPIPE] = "gpipe",
    [GEN_SCHED_1F1B] = "1f1b",
};

int gen_sched_lookup(const char *name)
{
    for (int i = 0; i < GEN_SCHED_COUNT; i++)
        if (!strcmp(name, sched_names[i]))
            return i;
    return -1;
}

const char *gen_sched_name(int s)
{
    return s >= 0 && s < GEN_SCHED_COUNT ? sched_names[s] : NULL;
}

double gen_pipeline_bubble(const gen_opts *o)
{
    double P = (double)o->pipeline, M = (double)(o->microbatches ? o->microbatches : 1);
    return o->pipeline > 1 ? (P - 1) / (M + P - 1) : 0;
}

/* Chips along each torus axis of c (0 axes: bad ici.dims). */
static int dims_of(const cfg *c, unsigned d[3])
{
    int n = cfg_parse_dims(c->ici_dims, d);
    return n < 0 ? 0 : n;
}

int gen_pipeline_check(gen_opts *o, const cfg *c, err *e)
{
    if (o->pipeline <= 1)
        return 0;
    if (!o->microbatches)
        o->microbatches = 1;
    if (o->decode)
        return err_set(e, "gen: --pipeline applies to training steps (not --decode)");
    if (o->fsdp > 1 || o->sp > 1 || o->tied_embedding)
        return err_set(e, "gen: --pipeline with --fsdp, --seq-parallel or --tied-embedding is not "
                          "modelled");
    if (o->pipeline > GEN_MAX_STAGES)
        return err_set(e, "gen: --pipeline %llu: at most %d stages",
                       (unsigned long long)o->pipeline, GEN_MAX_STAGES);
    if (o->layers % o->pipeline)
        return err_set(e, "gen: --pipeline %llu must divide --layers %llu",
                       (unsigned long long)o->pipeline, (unsigned long long)o->layers);
    uint64_t mb = o->dp * gen_slices(o) * o->microbatches;
    if (o->batch % mb)
        return err_set(e, "gen: --batch %llu is not divisible by data x %smicrobatches = %llu",
                       (unsigned long long)o->batch, gen_slices(o) > 1 ? "slices x " : "",
                       (unsigned long long)mb);
    unsigned d[3];
    int n = dims_of(c, d);
    if (!o->pp_axes)
        o->pp_axes = n == 3 ? 4u : 1u;
    unsigned a = 0;
    while (a < 3 && !(o->pp_axes & (1u << a)))
        a++;
    if ((o->pp_axes & (o->pp_axes - 1)) || (int)a >= n)
        return err_set(e, "gen: --pp-axes: one axis of the %d-axis topology ici.dims=%s", n,
                       c->ici_dims);
    if (d[a] != o->pipeline)
        return err_set(e,
                       "gen: --pipeline %llu: the pipeline axis %c of ici.dims=%s has %u chips "
                       "(one stage per chip along it)",
                       (unsigned long long)o->pipeline, "xyz"[a], c -> ici_dims, d[a]);
    unsigned used = (o->dp > 1 ? o->dp_axes : 0) | (o->tp > 1 ? o->tp_axes : 0);
    if (used & o->pp_axes)
        return err_set(e, "gen: --pp-axes overlaps the data or tensor axes");
    if (o->schedule < 0 || o->schedule >= GEN_SCHED_COUNT)
        return err_set(e, "gen: unknown pipeline schedule %d", o->schedule);
    return 0;
}

/* GPipe: F0..F(M-1), then B0..B(M-1). 1F1B: w = min(P - s - 1, M) warm-up forwards, then
 * F(i+w) B(i) alternately, then the last w backwards: stage s holds at most w + 1
 * microbatches' activations (GPipe: all M). */
int gen_fe_pipeline(ir *p, const gen_opts *o)
{
    gen_stage *s = gen_stage_new(p, o);
    if (!s)
        return -1;
    unsigned M = (unsigned)o->microbatches, P = (unsigned)o->pipeline, st = o->stage;
    int rc = 0;
    if (o->schedule == GEN_SCHED_GPIPE) {
        for (unsigned i = 0; i < M && !rc; i++)
            rc = gen_stage_fwd(s, i);
        for (unsigned i = 0; i < M && !rc; i++)
            rc = gen_stage_bwd(s, i);
    } else {
        unsigned w = P - st - 1 < M ? P - st - 1 : M;
        for (unsigned i = 0; i < w && !rc; i++)
            rc = gen_stage_fwd(s, i);
        for (unsigned i = 0; i + w < M && !rc; i++)
            rc = gen_stage_fwd(s, i + w) || gen_stage_bwd(s, i);
        for (unsigned i = M - w; i < M && !rc; i++)
            rc = gen_stage_bwd(s, i);
    }
    rc = rc || gen_stage_finish(s);
    gen_stage_free(s);
    return rc ? -1 : 0;
}

/* `tmpl` with every `key` replaced by v. */
static int expand(const char *tmpl, const char *key, unsigned v, char *buf, size_t cap, err *e)
{
    size_t len = 0, kl = strlen(key);
    for (const char *q = tmpl; *q;) {
        char num[16];
        const char *add = q;
        size_t n = 1, skip = 1;
        if (!strncmp(q, key, kl)) {
            snprintf(num, sizeof num, "%u", v);
            add = num;
            n = strlen(num);
            skip = kl;
        }
        if (len + n >= cap)
            return err_set(e, "gen: output path '%s' too long", tmpl);
        memcpy(buf + len, add, n);
        len += n;
        q += skip;
    }
    buf[len] = 0;
    return 0;
}

static int copy_file(const char *from, const char *to, err *e)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[1 << 16];
    size_t n;
    int rc = in && out ? 0 : -1;
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in && ferror(in))
        rc = -1;
    if (out && fclose(out))
        rc = -1;
    if (in)
        fclose(in);
    return rc ? err_set(e, "gen: cannot copy '%s' to '%s'", from, to) : 0;
}

int gen_pipeline_run(const gen_opts *opts, const cfg *c, const char *note, gen_result *res,
                     gen_one_fn one, err *e)
{
    gen_opts o = *opts;
    int per_chip = strstr(opts->output, "{chip}") != NULL;
    if (!per_chip && !strstr(opts->output, "{stage}"))
        return err_set(e, "gen: --pipeline writes one trace per stage: name OUT with {stage} (one "
                          "per stage) or {chip} (one per chip, for tpusim pod --mode full)");
    unsigned d[3], chips = 1, stride = 1, axis = 0;
    int n = dims_of(c, d);
    for (int i = 0; i < n; i++)
        chips *= d[i];
    while (!(o.pp_axes & (1u << axis)))
        axis++;
    for (unsigned i = 0; i < axis; i++)
        stride *= d[i];
    char path[1024], first[1024];
    gen_result r;
    memset(res, 0, sizeof *res);
    res->stages = (unsigned)o.pipeline;
    res->bubble = gen_pipeline_bubble(&o);
    for (unsigned s = 0; s < o.pipeline; s++) {
        o.stage = s;
        /* per chip: the stage's trace is generated for the first chip with that coordinate
         * (chip s * stride) and copied to the others */
        if (per_chip ? expand(opts->output, "{chip}", s * stride, first, sizeof first, e)
                     : expand(opts->output, "{stage}", s, first, sizeof first, e))
            return -1;
        o.output = first;
        if (one(&o, c, note, &r, e))
            return -1;
        res->stage_peak[s] = r.peak_hbm_bytes;
        if (r.peak_hbm_bytes > res->peak_hbm_bytes) { /* the largest stage's plan */
            res->peak_hbm_bytes = r.peak_hbm_bytes;
            res->persistent_bytes = r.persistent_bytes;
            res->naive_hbm_bytes = r.naive_hbm_bytes;
        }
        res->ops += r.ops;
        res->tensors += r.tensors;
        for (unsigned ch = 0; per_chip && ch < chips; ch++) {
            if ((ch / stride) % d[axis] != s || ch == s * stride)
                continue;
            if (expand(opts->output, "{chip}", ch, path, sizeof path, e) ||
                copy_file(first, path, e))
                return -1;
        }
    }
    return 0;
}
