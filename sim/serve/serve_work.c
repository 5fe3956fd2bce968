/* serve_work.c - request streams for `tpusim serve`: Poisson arrivals with fixed, uniform or
 * lognormal prompt and output lengths from an own PRNG (xoshiro256**, seeded by splitmix64, so
 * a seed gives the same stream everywhere), or a CSV request trace checked line by line. */
#include "serve.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- PRNG ------------------------------------------------------------------------------- */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in (0, 1): 53 random bits, never 0 (logs of it are finite). */
static double rng_unit(rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal by Box-Muller (one of the pair used: simple and deterministic). */
static double rng_normal(rng *r)
{
    double u = rng_unit(r), v = rng_unit(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- lengths ---------------------------------------------------------------------------- */

int serve_len_parse(serve_len *l, const char *text, const char *what, err *e)
{
    char *end;
    memset(l, 0, sizeof *l);
    const char *p = text;
    if (!strncmp(text, "uniform:", 8)) {
        l->kind = SERVE_LEN_UNIFORM;
        p = text + 8;
    } else if (!strncmp(text, "lognormal:", 10)) {
        l->kind = SERVE_LEN_LOGNORMAL;
        p = text + 10;
    }
    errno = 0;
    l->a = strtod(p, &end);
    if (l->kind != SERVE_LEN_FIXED) {
        if (end == p || *end != ':')
            goto bad;
        p = end + 1;
        l->b = strtod(p, &end);
    }
    if (end == p || *end || errno || !isfinite(l->a) || !isfinite(l->b))
        goto bad;
    if (l->kind == SERVE_LEN_FIXED && (l->a < 1 || l->a != floor(l->a)))
        return err_set(e, "%s %s: expected a whole number of tokens >= 1", what, text);
    if (l->kind == SERVE_LEN_UNIFORM && (l->a < 1 || l->b < l->a))
        return err_set(e, "%s %s: expected uniform:LO:HI with 1 <= LO <= HI", what, text);
    if (l->kind == SERVE_LEN_LOGNORMAL && (l->a < 1 || l->b < 0))
        return err_set(e, "%s %s: expected lognormal:MEAN:SD with MEAN >= 1, SD >= 0", what, text);
    if (l->a > 1e7 || l->b > 1e7)
        return err_set(e, "%s %s: at most 10000000 tokens", what, text);
    return 0;
bad:
    return err_set(e, "%s %s: expected N, uniform:LO:HI or lognormal:MEAN:SD", what, text);
}

static uint32_t len_draw(const serve_len *l, rng *r)
{
    double x;
    switch (l->kind) {
    case SERVE_LEN_UNIFORM:
        x = floor(l->a + rng_unit(r) * (floor(l->b) - floor(l->a) + 1));
        break;
    case SERVE_LEN_LOGNORMAL: {
        /* mean m and sd s of the lognormal itself: sigma^2 = ln(1 + s^2/m^2),
         * mu = ln m - sigma^2 / 2 */
        double s2 = log(1.0 + (l->b * l->b) / (l->a * l->a));
        x = round(exp(log(l->a) - s2 / 2 + sqrt(s2) * rng_normal(r)));
        break;
    }
    default:
        x = l->a;
    }
    if (x < 1)
        x = 1;
    if (x > 1e7)
        x = 1e7;
    return (uint32_t)x;
}

/* ---- streams ---------------------------------------------------------------------------- */

int serve_workload_poisson(serve_workload *w, double rate, size_t n, const serve_len *prompt,
                           const serve_len *output, uint64_t seed, err *e)
{
    memset(w, 0, sizeof *w);
    if (!(rate > 0) || !isfinite(rate))
        return err_set(e, "serve: --rate %g: expected requests per second > 0", rate);
    if (!n)
        return err_set(e, "serve: --requests 0: expected at least one request");
    w->req = calloc(n, sizeof *w->req);
    if (!w->req)
        return err_setk(e, ERR_NOMEM, "serve: out of memory for %zu requests", n);
    rng r;
    rng_seed(&r, seed);
    double t = 0;
    for (size_t i = 0; i < n; i++) {
        t += -log(rng_unit(&r)) / rate;
        w->req[i].arrival_s = t;
        w->req[i].prompt = len_draw(prompt, &r);
        w->req[i].output = len_draw(output, &r);
    }
    w->n = n;
    return 0;
}

void serve_workload_fini(serve_workload *w)
{
    free(w->req);
    memset(w, 0, sizeof *w);
}

/* Split line (modified in place) at commas into at most cap fields; returns the count. */
static unsigned split_csv(char *line, char **f, unsigned cap)
{
    unsigned n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (n < cap)
            f[n] = p;
        n++;
        char *c = strchr(p, ',');
        char *end = c ? c : p + strlen(p);
        while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
            end--;
        char *next = c ? c + 1 : NULL;
        *end = 0;
        if (!next)
            break;
        p = next;
    }
    return n;
}

static int csv_num(const char *path, unsigned line, const char *col, const char *s, int whole,
                   double *v, err *e)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(*v))
        return err_set(e, "%s:%u: column %s: expected a number, got '%s'", path, line, col, s);
    if (*v < 0)
        return err_set(e, "%s:%u: column %s: negative value %s", path, line, col, s);
    if (whole && (*v != floor(*v) || *v < 1 || *v > 1e7))
        return err_set(
            e, "%s:%u: column %s: expected a whole number of tokens in [1, 10000000], got %s", path,
            line, col, s);
    return 0;
}

#define CSV_MAX_COLS 64

int serve_workload_csv(serve_workload *w, const char *path, size_t limit, err *e)
{
    static const char *const want[3] = {"arrival_s", "prompt_tokens", "output_tokens"};
    memset(w, 0, sizeof *w);
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, have = 0;
    unsigned lineno = 0, ncols = 0;
    int col[3] = {-1, -1, -1};
    int rc = -1;
    double last = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *fields[CSV_MAX_COLS];
        char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (!*p || *p == '#')
            continue; /* blank lines and comments */
        unsigned n = split_csv(line, fields, CSV_MAX_COLS);
        if (n > CSV_MAX_COLS) {
            err_set(e, "%s:%u: %u columns, at most %d", path, lineno, n, CSV_MAX_COLS);
            goto out;
        }
        if (!ncols) { /* header */
            ncols = n;
            for (unsigned i = 0; i < n; i++)
                for (int k = 0; k < 3; k++)
                    if (!strcmp(fields[i], want[k]))
                        col[k] = (int)i;
            for (int k = 0; k < 3; k++)
                if (col[k] < 0) {
                    err_set(e,
                            "%s:%u: header has no column '%s' (expected arrival_s,prompt_tokens,"
                            "output_tokens)",
                            path, lineno, want[k]);
                    goto out;
                }
            continue;
        }
        if (n != ncols) {
            err_set(e, "%s:%u: %u columns, the header has %u", path, lineno, n, ncols);
            goto out;
        }
        double v[3];
        for (int k = 0; k < 3; k++)
            if (csv_num(path, lineno, want[k], fields[col[k]], k > 0, &v[k], e))
                goto out;
        if (have && v[0] < last) {
            err_set(e, "%s:%u: arrival_s %s is before the previous request's %g (sort by arrival)",
                    path, lineno, fields[col[0]], last);
            goto out;
        }
        last = v[0];
        if (have % 1024 == 0) {
            serve_req *nr = realloc(w->req, (have + 1024) * sizeof *nr);
            if (!nr) {
                err_setk(e, ERR_NOMEM, "%s:%u: out of memory", path, lineno);
                goto out;
            }
            w->req = nr;
        }
        w->req[have++] = (serve_req){v[0], (uint32_t)v[1], (uint32_t)v[2]};
        if (limit && have == limit)
            break;
    }
    if (ferror(f)) {
        err_set(e, "%s: read error", path);
        goto out;
    }
    if (!ncols) {
        err_set(e, "%s:%u: empty file: expected the header arrival_s,prompt_tokens,output_tokens",
                path, lineno);
        goto out;
    }
    if (!have) {
        err_set(e, "%s:%u: no requests after the header", path, lineno);
        goto out;
    }
    w->n = have;
    rc = 0;
out:
    free(line);
    fclose(f);
    if (rc)
        serve_workload_fini(w);
    return rc;
}
