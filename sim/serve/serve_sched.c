/* serve_sched.c - the serving scheduler, iteration by iteration as vLLM runs it: continuous
 * batching (requests join and leave between steps), a paged KV cache (blocks reserved for the
 * whole prompt at admission, one more each block_tokens generated tokens), FIFO admission that
 * waits while the cache or the batch is full, preemption by recomputation (the latest admitted
 * request gives its blocks back and is prefilled again, prompt and generated tokens, when
 * readmitted), and chunked prefill with a per-step token budget that decode tokens share
 * (Sarathi-Serve), or whole-prompt prefill-only steps that take priority over decode (vLLM's
 * default without chunking). Disaggregated serving runs a prefill slice and a decode slice as
 * two instances with their own clocks; a finished prefill reaches the decode slice after its
 * KV transfer. The end of a prefill emits a token (the first one, or after a recomputation
 * the next one); every decode step emits one token per decoding sequence. The dynamic energy
 * the step function returns is summed per slice, with the KV transfers' (static power is
 * serve_summarise's: it needs only the run's span). */
#include "serve.h"
#include "mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { RQ_PENDING, RQ_WAIT, RQ_PREFILL, RQ_DECODE, RQ_XFER, RQ_DONE };

typedef struct rq {
    uint32_t target;   /* tokens to prefill: the prompt, plus generated tokens after preemption */
    uint32_t done_pre; /* of target, prefilled */
    uint32_t gen;      /* output tokens emitted */
    uint32_t blocks;   /* KV blocks held */
    uint32_t chunk;    /* prefill tokens in the current step */
    int state;
    double ready_s; /* disaggregated: KV arrives at the decode slice */
} rq;

/* FIFO of request indices with push at both ends (preempted requests go first). */
typedef struct fifo {
    size_t *v, cap, head, n;
} fifo;

static size_t fifo_at(const fifo *q, size_t i)
{
    return q->v[(q->head + i) % q->cap];
}
static void fifo_push(fifo *q, size_t x)
{
    q->v[(q->head + q->n++) % q->cap] = x;
}
static void fifo_push_front(fifo *q, size_t x)
{
    q->head = (q->head + q->cap - 1) % q->cap;
    q->v[q->head] = x;
    q->n++;
}
static size_t fifo_pop(fifo *q)
{
    size_t x = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->n--;
    return x;
}

typedef enum { ROLE_BOTH, ROLE_PREFILL, ROLE_DECODE } role;

typedef struct inst {
    role role;
    serve_step_fn fn;
    void *ctx;
    double t;          /* free from */
    fifo wait;         /* admitted in this order */
    size_t *run, nrun; /* running, in admission order */
    uint64_t free_blocks, blocks;
    int limit_blocks; /* 0: the prefill slice's KV is transient and not limited */
} inst;

typedef struct sched {
    const serve_workload *w;
    const serve_sched_opts *o;
    rq *r;
    serve_result *res;
    size_t next_arrival;
    /* disaggregated: requests whose KV is in flight, by ready time (sorted insert) */
    size_t *xfer, nxfer;
    size_t series_cap;
    double sum_batch, sum_kv;
} sched;

static uint32_t blocks_for(const sched *s, uint64_t tokens)
{
    return (uint32_t)((tokens + s->o->block_tokens - 1) / s->o->block_tokens);
}

static void release(inst *in, rq *q)
{
    if (in->limit_blocks)
        in->free_blocks += q->blocks;
    q->blocks = 0;
}

static void run_remove(inst *in, size_t k)
{
    memmove(&in->run[k], &in->run[k + 1], (in->nrun - k - 1) * sizeof *in->run);
    in->nrun--;
}

/* Preempt the latest admitted running request: blocks back, prefilled again when readmitted. */
static void preempt_last(sched *s, inst *in)
{
    size_t i = in->run[in->nrun - 1];
    rq *q = &s->r[i];
    release(in, q);
    q->state = RQ_WAIT;
    q->target = s->w->req[i].prompt + q->gen;
    q->done_pre = 0;
    in->nrun--;
    fifo_push_front(&in->wait, i);
    s->res->rec[i].preemptions++;
    s->res->preemptions++;
}

/* Move what has arrived by `t` into the instances' waiting queues. */
static void take_arrivals(sched *s, inst *front, double t)
{
    while (s->next_arrival < s->w->n && s->w->req[s->next_arrival].arrival_s <= t) {
        size_t i = s->next_arrival++;
        s->r[i].state = RQ_WAIT;
        fifo_push(&front->wait, i);
    }
}

static void take_transfers(sched *s, inst *dec, double t)
{
    size_t k = 0;
    while (k < s->nxfer && s->r[s->xfer[k]].ready_s <= t) {
        s->r[s->xfer[k]].state = RQ_WAIT;
        fifo_push(&dec->wait, s->xfer[k]);
        k++;
    }
    memmove(s->xfer, s->xfer + k, (s->nxfer - k) * sizeof *s->xfer);
    s->nxfer -= k;
}

/* Try to admit the head of the wait queue: it needs a batch slot and blocks for its target
 * (plus the next token when it only decodes). Returns the request, or (size_t)-1. */
static size_t admit_head(sched *s, inst *in)
{
    if (!in->wait.n || in->nrun >= s->o->max_batch)
        return (size_t)-1;
    size_t i = fifo_at(&in->wait, 0);
    rq *q = &s->r[i];
    uint32_t need = blocks_for(s, q->target);
    if (in->limit_blocks && need > in->free_blocks)
        return (size_t)-1;
    fifo_pop(&in->wait);
    if (in->limit_blocks)
        in->free_blocks -= need;
    q->blocks = need;
    q->state = q->done_pre >= q->target ? RQ_DECODE : RQ_PREFILL;
    in->run[in->nrun++] = i;
    return i;
}

static void record_point(sched *s, inst *in, uint32_t batch, uint32_t prefill)
{
    serve_result *r = s->res;
    double occ = in->blocks ? 1.0 - (double)in->free_blocks / (double)in->blocks : 0;
    s->sum_batch += batch;
    s->sum_kv += occ;
    if (batch > r->max_batch_seen)
        r->max_batch_seen = batch;
    if (occ > r->max_kv_occupancy)
        r->max_kv_occupancy = occ;
    /* the series is a sample: a failed growth only shortens it */
    if (mem_grow(&r->series, &s->series_cap, (size_t)r->nseries + 1, sizeof *r->series, 4096))
        return;
    r->series[r->nseries++] = (serve_point){in->t, batch, prefill, occ};
}

/* One step of instance `in` starting at in->t. Returns 0, 1 when there was nothing to do, or
 * -1 with e filled. */
static int step(sched *s, inst *in, err *e)
{
    const serve_sched_opts *o = s->o;
    serve_step st = {0};
    double ctx_sum = 0;
    int chunked = o->token_budget > 0;
    int prefill_only = 0;

    for (size_t k = 0; k < in->nrun; k++)
        s->r[in->run[k]].chunk = 0;
    if (in->role == ROLE_PREFILL) {
        uint32_t budget = chunked ? o->token_budget : o->max_prefill;
        for (size_t k = 0; k < in->nrun; k++) {
            rq *q = &s->r[in->run[k]];
            uint32_t c = q->target - q->done_pre;
            q->chunk = c < budget - st.prefill ? c : budget - st.prefill;
            st.prefill += q->chunk;
        }
        while (st.prefill < budget) {
            size_t i = admit_head(s, in);
            if (i == (size_t)-1)
                break;
            rq *q = &s->r[i];
            uint32_t c = q->target - q->done_pre;
            if (!chunked && st.prefill && c > budget - st.prefill) {
                /* whole prompts only: this one waits for the next step */
                run_remove(in, in->nrun - 1);
                release(in, q);
                q->state = RQ_WAIT;
                fifo_push_front(&in->wait, i);
                break;
            }
            q->chunk = chunked && c > budget - st.prefill ? budget - st.prefill : c;
            st.prefill += q->chunk;
        }
        prefill_only = 1;
    } else if (!chunked) {
        /* Prefill-only step when a waiting request can be admitted (whole prompts up to
         * max_prefill tokens), else a decode step. */
        size_t first = admit_head(s, in);
        if (first != (size_t)-1 && s->r[first].state == RQ_PREFILL) {
            prefill_only = 1;
            rq *q = &s->r[first];
            q->chunk = q->target - q->done_pre;
            st.prefill = q->chunk;
            for (;;) {
                if (!in->wait.n)
                    break;
                rq *h = &s->r[fifo_at(&in->wait, 0)];
                if (h->done_pre < h->target &&
                    st.prefill + (h->target - h->done_pre) > o->max_prefill)
                    break;
                size_t i = admit_head(s, in);
                if (i == (size_t)-1)
                    break;
                q = &s->r[i];
                q->chunk = q->target - q->done_pre;
                st.prefill += q->chunk;
            }
        } else {
            /* admitted an already-prefilled request (disaggregated): admit more of those */
            while (admit_head(s, in) != (size_t)-1)
                ;
        }
    }

    if (!prefill_only) {
        /* Decode tokens first: each decoding sequence needs room for one more KV entry. */
        for (size_t k = 0; k < in->nrun; k++) {
            size_t i = in->run[k];
            rq *q = &s->r[i];
            if (q->state != RQ_DECODE)
                continue;
            uint32_t need = blocks_for(s, (uint64_t)s->w->req[i].prompt + q->gen);
            while (need > q->blocks && in->limit_blocks && !in->free_blocks) {
                preempt_last(s, in);
                if (in->nrun <= k)
                    break; /* preempted itself */
            }
            if (in->nrun <= k)
                break;
            if (need > q->blocks) {
                if (in->limit_blocks)
                    in->free_blocks--;
                q->blocks++;
            }
            st.decode++;
            ctx_sum += (double)s->w->req[i].prompt + q->gen;
        }
        if (chunked) {
            /* The rest of the budget: running prefills first, then newly admitted requests
             * (admitted only while budget is left, blocks permitting). */
            uint32_t left = o->token_budget > st.decode ? o->token_budget - st.decode : 0;
            for (size_t k = 0; k < in->nrun && left; k++) {
                rq *q = &s->r[in->run[k]];
                if (q->state != RQ_PREFILL)
                    continue;
                uint32_t c = q->target - q->done_pre;
                q->chunk = c < left ? c : left;
                left -= q->chunk;
                st.prefill += q->chunk;
            }
            size_t i;
            while (left && (i = admit_head(s, in)) != (size_t)-1) {
                rq *q = &s->r[i];
                if (q->state == RQ_DECODE) { /* disaggregated: KV already here */
                    uint32_t need = blocks_for(s, (uint64_t)s->w->req[i].prompt + q->gen);
                    if (need > q->blocks && in->free_blocks) {
                        in->free_blocks--;
                        q->blocks++;
                    }
                    st.decode++;
                    ctx_sum += (double)s->w->req[i].prompt + q->gen;
                    left--;
                    continue;
                }
                uint32_t c = q->target - q->done_pre;
                q->chunk = c < left ? c : left;
                left -= q->chunk;
                st.prefill += q->chunk;
            }
        }
    }
    for (size_t k = 0; k < in->nrun; k++)
        if (s->r[in->run[k]].chunk)
            st.prefill_seqs++;
    if (!st.decode && !st.prefill)
        return 1;
    st.ctx = st.decode ? ctx_sum / st.decode : 0;

    double dj = 0;
    double dt = in->fn(in->ctx, &st, &dj, e);
    if (dt < 0)
        return -1;
    in->t += dt;
    serve_result *r = s->res;
    if (in->role == ROLE_PREFILL)
        r->prefill_dyn_j += dj;
    else
        r->dyn_j += dj;
    if (in->role != ROLE_PREFILL) {
        r->steps++;
        r->busy_s += dt;
        if (st.prefill && st.decode)
            r->mixed_steps++;
        else if (st.prefill)
            r->prefill_steps++;
        else
            r->decode_steps++;
        record_point(s, in, st.decode + st.prefill_seqs, st.prefill);
    }

    /* Apply the step's effects. */
    for (size_t k = 0; k < in->nrun;) {
        size_t i = in->run[k];
        rq *q = &s->r[i];
        serve_rec *rec = &r->rec[i];
        int emitted = 0;
        if (q->state == RQ_PREFILL && q->chunk) {
            q->done_pre += q->chunk;
            if (q->done_pre >= q->target) {
                emitted = 1;
                q->state = RQ_DECODE;
            }
        } else if (q->state == RQ_DECODE && !prefill_only) {
            emitted = 1;
        }
        q->chunk = 0;
        if (emitted) {
            if (!q->gen)
                rec->first_token_s = in->t;
            q->gen++;
        }
        if (q->gen >= rec->output) {
            q->state = RQ_DONE;
            rec->done_s = in->t;
            release(in, q);
            run_remove(in, k);
            continue;
        }
        if (in->role == ROLE_PREFILL && q->state == RQ_DECODE) {
            /* hand over to the decode slice once the KV has crossed */
            release(in, q);
            run_remove(in, k);
            q->state = RQ_XFER;
            double bytes = (double)q->target * o->kv_bytes_per_token;
            q->ready_s = in->t + o->kv_transfer_latency_s +
                         (o->kv_transfer_bps > 0 ? bytes / o->kv_transfer_bps : 0);
            r->xfer_dyn_j += bytes * o->kv_transfer_j_per_byte;
            size_t at = s->nxfer;
            while (at > 0 && s->r[s->xfer[at - 1]].ready_s > q->ready_s)
                at--;
            memmove(&s->xfer[at + 1], &s->xfer[at], (s->nxfer - at) * sizeof *s->xfer);
            s->xfer[at] = i;
            s->nxfer++;
            continue;
        }
        k++;
    }
    return 0;
}

/* Earliest time instance `in` can have work: now if it has any, else the next input. */
static double next_start(const sched *s, const inst *in, int fed_by_arrivals)
{
    if (in->nrun || in->wait.n)
        return in->t;
    double nxt = INFINITY;
    if (fed_by_arrivals && s->next_arrival < s->w->n)
        nxt = s->w->req[s->next_arrival].arrival_s;
    if (!fed_by_arrivals && s->nxfer)
        nxt = s->r[s->xfer[0]].ready_s;
    return nxt > in->t ? nxt : in->t;
}

static int inst_init(inst *in, role ro, serve_step_fn fn, void *ctx, size_t n, unsigned max_batch,
                     uint64_t blocks, int limit)
{
    memset(in, 0, sizeof *in);
    in->role = ro;
    in->fn = fn;
    in->ctx = ctx;
    in->wait.cap = n + 1;
    in->wait.v = malloc(in->wait.cap * sizeof *in->wait.v);
    in->run = malloc(((size_t)max_batch + 1) * sizeof *in->run);
    in->blocks = in->free_blocks = blocks;
    in->limit_blocks = limit;
    return in->wait.v && in->run ? 0 : -1;
}

static void inst_fini(inst *in)
{
    free(in->wait.v);
    free(in->run);
}

static void downsample(serve_result *r, unsigned max)
{
    if (!max)
        max = 512;
    if (r->nseries <= max)
        return;
    /* keep max points, evenly spaced by step index, the last step included */
    for (size_t k = 0; k < max; k++)
        r->series[k] = r->series[(size_t)((double)k * (double)(r->nseries - 1) / (max - 1))];
    r->nseries = max;
}

int serve_schedule(const serve_workload *w, const serve_sched_opts *o, serve_step_fn decode_fn,
                   void *decode_ctx, serve_step_fn prefill_fn, void *prefill_ctx, serve_result *r,
                   err *e)
{
    memset(r, 0, sizeof *r);
    if (!o->max_batch || !o->block_tokens || !o->kv_blocks)
        return err_set(e, "serve: max batch, KV block size and KV blocks must be > 0");
    if (!o->token_budget && !o->max_prefill)
        return err_set(e, "serve: a prefill token limit is needed without a token budget");
    if (o->disaggregated && !prefill_fn)
        return err_set(e, "serve: disaggregated serving needs a prefill step function");
    for (size_t i = 0; i < w->n; i++) {
        uint64_t need =
            ((uint64_t)w->req[i].prompt + w->req[i].output + o->block_tokens - 1) / o->block_tokens;
        if (need > o->kv_blocks)
            return err_set(
                e,
                "serve: request %zu (%u prompt + %u output tokens) needs %llu KV blocks, "
                "the cache has %llu",
                i + 1, w->req[i].prompt, w->req[i].output, (unsigned long long)need,
                (unsigned long long)o->kv_blocks);
    }
    sched s = {.w = w, .o = o, .res = r};
    inst main_in, pre_in;
    int rc = -1;
    memset(&pre_in, 0, sizeof pre_in);
    s.r = calloc(w->n ? w->n : 1, sizeof *s.r);
    s.xfer = malloc((w->n + 1) * sizeof *s.xfer);
    r->rec = calloc(w->n ? w->n : 1, sizeof *r->rec);
    int ok = s.r && s.xfer && r->rec &&
             !inst_init(&main_in, o->disaggregated ? ROLE_DECODE : ROLE_BOTH, decode_fn, decode_ctx,
                        w->n, o->max_batch, o->kv_blocks, 1) &&
             (!o->disaggregated || !inst_init(&pre_in, ROLE_PREFILL, prefill_fn, prefill_ctx, w->n,
                                              o->max_batch, o->kv_blocks, 0));
    if (!ok) {
        err_setk(e, ERR_NOMEM, "serve: out of memory for %zu requests", w->n);
        goto out;
    }
    r->n = w->n;
    for (size_t i = 0; i < w->n; i++) {
        s.r[i].target = w->req[i].prompt;
        r->rec[i] = (serve_rec){.arrival_s = w->req[i].arrival_s,
                                .prompt = w->req[i].prompt,
                                .output = w->req[i].output};
    }
    inst *front = o->disaggregated ? &pre_in : &main_in;
    size_t done_guard = 0;
    for (;;) {
        double tf = next_start(&s, front, 1);
        double tm = o->disaggregated ? next_start(&s, &main_in, 0) : INFINITY;
        inst *in = front;
        double t = tf;
        if (o->disaggregated && tm < tf) {
            in = &main_in;
            t = tm;
        }
        if (!isfinite(t))
            break; /* nothing left anywhere */
        in->t = t;
        if (in == front)
            take_arrivals(&s, front, t);
        else
            take_transfers(&s, in, t);
        int st = step(&s, in, e);
        if (st < 0)
            goto out;
        if (st == 1) {
            /* nothing runnable although work waits: only possible if admission is blocked
             * with nothing running, which the capacity check above excludes */
            if (++done_guard > 4) {
                err_set(e, "serve: scheduler stalled at t = %g s (internal error)", t);
                goto out;
            }
            in->t = nextafter(t, INFINITY);
            continue;
        }
        done_guard = 0;
    }
    for (size_t i = 0; i < w->n; i++) {
        if (s.r[i].state != RQ_DONE) {
            err_set(e, "serve: request %zu never finished (internal error)", i + 1);
            goto out;
        }
        if (r->rec[i].done_s - w->req[0].arrival_s > r->makespan_s)
            r->makespan_s = r->rec[i].done_s - w->req[0].arrival_s;
    }
    if (r->steps) {
        r->mean_batch = s.sum_batch / (double)r->steps;
        r->mean_kv_occupancy = s.sum_kv / (double)r->steps;
    }
    downsample(r, o->series_max);
    rc = 0;
out:
    free(s.r);
    free(s.xfer);
    inst_fini(&main_in);
    if (o->disaggregated)
        inst_fini(&pre_in);
    if (rc)
        serve_result_fini(r);
    return rc;
}

void serve_result_fini(serve_result *r)
{
    free(r->rec);
    free(r->series);
    memset(r, 0, sizeof *r);
}
