/* progress.c - the stderr progress line (see progress.h). The hot path is one increment and
 * one mask test per completed instruction; the clock is read every 65536 completions. */
#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fmt.h"

struct progress {
    FILE *out;
    uint64_t total, done, sim_ps, draws;
    int enabled, drawn;
    double t0, last_draw;
    size_t last_len;
    double (*now)(void *);
    void *now_ctx;
};

static double progress_wall(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

progress *progress_new(FILE *out, uint64_t total_insns, int enabled, err *e)
{
    progress *p = err_calloc(1, sizeof *p, NULL, e);
    if (!p)
        return NULL;
    p->out = out;
    p->total = total_insns == UINT64_MAX ? 0 : total_insns;
    p->enabled = enabled && out;
    p->now = progress_wall;
    p->t0 = p->last_draw = p->now(NULL);
    return p;
}

void progress_set_clock(progress *p, double (*now)(void *ctx), void *ctx)
{
    p->now = now ? now : progress_wall;
    p->now_ctx = ctx;
    p->t0 = p->last_draw = p->now(p->now_ctx);
}

static void progress_draw(progress *p, double now)
{
    char line[160], done[16], total[16], rate[16], sim[32], eta[32] = "";
    double el = now - p->t0;
    double r = el > 0 ? (double)p->done / el : 0;
    fmt_count(done, sizeof done, (double)p->done);
    fmt_count(rate, sizeof rate, r);
    fmt_time_fixed(sim, sizeof sim, (double)p->sim_ps);
    int n;
    if (p->total) {
        double frac = (double)p->done / (double)p->total;
        if (frac > 1)
            frac = 1;
        fmt_count(total, sizeof total, (double)p->total);
        if (r > 0) {
            double left = ((double)p->total - (double)p->done) / r;
            if (left < 0)
                left = 0;
            unsigned s = (unsigned)(left + 0.5);
            snprintf(eta, sizeof eta, "  ETA %u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
        }
        n = snprintf(line, sizeof line, "tpusim: %s/%s insns (%.1f%%)  sim %s  %s insn/s%s", done,
                     total, 100 * frac, sim, rate, eta);
    } else {
        n = snprintf(line, sizeof line, "tpusim: %s insns  sim %s  %s insn/s", done, sim, rate);
    }
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof line ? sizeof line - 1 : (size_t)n;
    /* Pad with spaces over the tail of a longer previous line. */
    fprintf(p->out, "\r%s%*s", line, p->last_len > len ? (int)(p->last_len - len) : 0, "");
    fflush(p->out);
    p->last_len = len;
    p->drawn = 1;
    p->draws++;
    p->last_draw = now;
}

void progress_observe(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                      uint64_t end_ps, unsigned region, uint64_t bytes)
{
    (void)idx, (void)op, (void)u, (void)start_ps, (void)region, (void)bytes;
    progress *p = ctx;
    p->done++;
    if (end_ps > p->sim_ps)
        p->sim_ps = end_ps;
    if (p->done % PROGRESS_CHECK_EVERY || !p->enabled)
        return;
    double now = p->now(p->now_ctx);
    if (now - p->last_draw >= PROGRESS_MIN_INTERVAL)
        progress_draw(p, now);
}

void progress_finish(progress *p)
{
    if (!p || !p->drawn)
        return;
    progress_draw(p, p->now(p->now_ctx));
    fputc('\n', p->out);
    fflush(p->out);
    p->drawn = 0;
}

void progress_complete(progress *p)
{
    if (p && p->total > p->done)
        p->done = p->total;
    progress_finish(p);
}

void progress_free(progress *p)
{
    if (!p)
        return;
    progress_finish(p);
    free(p);
}

uint64_t progress_done(const progress *p)
{
    return p->done;
}

uint64_t progress_draws(const progress *p)
{
    return p->draws;
}

void progress_start(void *ctx, uint64_t total_insns)
{
    progress *p = ctx;
    p->total = total_insns == UINT64_MAX ? 0 : total_insns;
}

int progress_fanout_add(progress_fanout *f, core_observer fn, void *ctx)
{
    if (f->n == PROGRESS_FANOUT_MAX)
        return -1;
    f->fn[f->n] = fn;
    f->ctx[f->n] = ctx;
    f->n++;
    return 0;
}

void progress_fanout_observe(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                             uint64_t end_ps, unsigned region, uint64_t bytes)
{
    const progress_fanout *f = ctx;
    for (unsigned i = 0; i < f->n; i++)
        f->fn[i](f->ctx[i], idx, op, u, start_ps, end_ps, region, bytes);
}
