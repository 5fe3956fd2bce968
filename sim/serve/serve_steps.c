/* serve_steps.c - step times and dynamic energy of a serving slice: decode and prefill steps
 * generated with the gen library into scratch traces, timed by the pod estimator (which also
 * gives each step's dynamic energy from the same run), cached over a grid and interpolated
 * (bilinear in batch and context for decode, linear in tokens for prefill; linear
 * extrapolation beyond the ends; energy with the time's weights). The step model is stated in
 * serve_steps.h. */
#define _POSIX_C_SOURCE 200809L
#include "serve_steps.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gen.h"
#include "mem.h"
#include "pod.h"

/* One simulated step (or part of one): seconds (< 0: failed, e filled) and the dynamic
 * energy of the replica, J summed over its devices. */
typedef struct cost {
    double s, j;
} cost;

static const cost COST_FAIL = {-1, 0};

/* Memo of exactly simulated steps (exact mode): open addressing on a 64-bit key. */
typedef struct memo {
    uint64_t *key;
    cost *val;
    size_t cap, n;
} memo;

struct serve_steps {
    serve_hw_opts o;
    cfg c; /* the machine with ici.dims = the slice */
    serve_grid g;
    pod_result *res;
    unsigned seq; /* scratch trace counter */
    char tmpdir[PATH_MAX];
    memo dmemo, pmemo;
    gen_result plan; /* memory plan of the latest generated step */
};

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Generate o into a scratch trace (its memory plan into st->plan) and, if `timed`, time it on
 * the slice. Returns seconds (0 untimed), or < 0; *dyn_j (if not NULL) the step's dynamic
 * energy on the replica: the representative device's (pod_result: the chip's dynamic joules /
 * devices per chip) x the replica's devices, each running the same program in symmetric mode. */
static double gen_opts_run(serve_steps *st, gen_opts *o, int timed, double *dyn_j, err *e)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/tpusim-serve-%ld-%u.tpt", st->tmpdir,
                         (long)getpid(), st->seq++) >= sizeof path)
        return err_path(e, st->tmpdir, "scratch directory: path too long"), -1.0;
    o->output = path;
    if (st->o.chips > 1) {
        unsigned d[3];
        int naxes = cfg_parse_dims(st->c.ici_dims, d);
        o->chips = st->o.chips;
        o->tp = st->o.chips;
        o->tp_axes = (1u << (naxes > 0 ? naxes : 1)) - 1;
    }
    double t0 = wall_now(), t = -1;
    if (gen_run_result(o, &st->c, "tpusim serve step", &st->plan, e))
        goto out;
    if (!timed) {
        t = 0;
        goto out;
    }
    if (pod_estimate(&st->c, path, st->g.topo, ICI_MODE_SYMMETRIC, st->res, e))
        goto out;
    t = (double)st->res->step_ps * 1e-12;
    if (dyn_j) {
        const pod_result *r = st->res;
        double chip = r->chip_j_total - r->chip_j[ENERGY_STATIC];
        *dyn_j = chip / (r->devices_per_chip ? r->devices_per_chip : 1) * st->o.chips;
    }
out:
    if (timed)
        st->g.sims++;
    remove(path);
    st->g.sim_wall_s += wall_now() - t0;
    return t;
}

static cost sim_opts(serve_steps *st, gen_opts *o, err *e)
{
    cost c = {0, 0};
    c.s = gen_opts_run(st, o, 1, &c.j, e);
    return c.s < 0 ? COST_FAIL : c;
}

static serve_steps *steps_alloc(const serve_hw_opts *o, err *e);

static void model_opts(const serve_steps *st, gen_opts *o, gen_kind kind)
{
    const serve_model *m = st->o.m;
    gen_opts_init(o, kind);
    o->dtype = st->o.w_dt;
    o->d_model = m->d_model;
    o->heads = m->heads;
    /* grouped-query attention: the KV cache and K/V projections. With fewer kv heads than
     * chips each chip keeps one (replicated, as serve_kv_bytes_per_token counts them): the
     * per-chip step is that of chips kv heads. */
    o->kv_heads = m->kv_heads < st->o.chips ? st->o.chips : m->kv_heads;
    o->head_dim = m->head_dim;
    o->d_ff = m->d_ff;
    o->vocab = m->vocab;
}

/* Decode step of nl layers. */
static cost decode_layers(serve_steps *st, uint32_t b, uint32_t ctx, uint64_t nl, err *e)
{
    gen_opts o;
    model_opts(st, &o, GEN_LLM_STEP);
    o.decode = 1;
    o.batch = b;
    o.seq = ctx ? ctx : 1;
    o.layers = o.sizes[0] = nl; /* llm-step takes --layers as its one size */
    o.nsizes = 1;
    return sim_opts(st, &o, e);
}

/* Layers of the two runs the decode step is extrapolated from. Four layers apart: the step
 * time of a few layers jitters by a few microseconds with the exact sizes (HBM channel
 * mapping, pipeline fill across layer boundaries), and extrapolating L - 1 layers from a
 * 1-layer difference multiplied that jitter by L - 1 (+-2% on Llama-3-8B against all 32
 * layers simulated; 1 and 5 layers: max 0.47%, docs/serving.md). */
#define DECODE_LA 1u
#define DECODE_LB 5u

/* Decode step of L layers, extrapolated from runs of DECODE_LA and DECODE_LB layers (time and
 * energy alike: the layers are identical). *head gets the non-layer part. */
static cost sim_decode(serve_steps *st, uint32_t b, uint32_t ctx, cost *head, err *e)
{
    uint64_t L = st->o.m->layers;
    if (st->o.full_layers || L <= DECODE_LB) {
        cost t = decode_layers(st, b, ctx, L, e);
        if (head && t.s >= 0) {
            cost t1 = decode_layers(st, b, ctx, 1, e);
            double k = (double)(L > 1 ? L - 1 : 1);
            *head = t1.s < 0 ? COST_FAIL : (cost){t1.s - (t.s - t1.s) / k, t1.j - (t.j - t1.j) / k};
        }
        return t;
    }
    cost ta = decode_layers(st, b, ctx, DECODE_LA, e);
    if (ta.s < 0)
        return COST_FAIL;
    cost tb = decode_layers(st, b, ctx, DECODE_LB, e);
    if (tb.s < 0)
        return COST_FAIL;
    double per = (tb.s - ta.s) / (double)(DECODE_LB - DECODE_LA);
    double per_j = (tb.j - ta.j) / (double)(DECODE_LB - DECODE_LA);
    if (head)
        *head = (cost){ta.s - DECODE_LA * per, ta.j - DECODE_LA * per_j};
    return (cost){ta.s + (double)(L - DECODE_LA) * per, ta.j + (double)(L - DECODE_LA) * per_j};
}

/* L forward blocks of p tokens (one sequence, causal). */
static cost sim_prefill_layers(serve_steps *st, uint32_t p, err *e)
{
    gen_opts o;
    model_opts(st, &o, GEN_TRANSFORMER);
    o.batch = 1;
    o.seq = p;
    o.causal = 1;
    cost t = sim_opts(st, &o, e);
    double L = (double)st->o.m->layers;
    return t.s < 0 ? COST_FAIL : (cost){t.s * L, t.j * L};
}

/* A prefill-only step: L blocks + head. */
static cost sim_prefill(serve_steps *st, uint32_t p, err *e)
{
    cost t = sim_prefill_layers(st, p, e);
    return t.s < 0 ? COST_FAIL : (cost){t.s + st->g.head_s, t.j + st->g.head_j};
}

double serve_steps_sim_decode(serve_steps *st, uint32_t b, uint32_t ctx, err *e)
{
    return sim_decode(st, b, ctx, NULL, e).s;
}

double serve_steps_sim_prefill(serve_steps *st, uint32_t p, err *e)
{
    return sim_prefill(st, p, e).s;
}

/* ---- grid -------------------------------------------------------------------------------- */

/* Axis from lo up to the first value >= hi (hi itself ends it): doubling, or with `half` also
 * the points 1.5x between (lo, 1.5 lo, 2 lo, 3 lo, ...), where the time bends more, and from
 * `quarter` on (0: never) the points 1.25x, 1.5x and 1.75x between (32, 40, 48, 56, 64, 80,
 * ...). The batch steps that called for them (up to 8% at multiples of 16 on v7) were the
 * generator's KV-cache layout, since fixed; the quarter steps stay for margin: without them
 * the decode error at 20 random points rose from 0.89% to 1.13% (Llama-3-8B on v7). */
static unsigned axis(uint32_t *v, uint32_t lo, uint32_t hi, int half, uint32_t quarter)
{
    unsigned n = 0;
    if (hi < lo)
        hi = lo;
    for (uint64_t x = lo; n < SERVE_GRID_MAX; x *= 2) {
        v[n++] = (uint32_t)(x < hi ? x : hi);
        if (x >= hi)
            break;
        for (unsigned q = 1; q < 4 && half; q++) {
            uint64_t m = x + x * q / 4;
            if ((quarter && x >= quarter) || q == 2)
                if (m > x && m < hi && m < 2 * x && n < SERVE_GRID_MAX)
                    v[n++] = (uint32_t)m;
        }
    }
    return n;
}

/* Smooth row i along the context axis: each simulated point becomes the value at its context
 * of a least-squares quadratic through the 5 nearest simulated points (the window shifted
 * inside the row at its ends). The simulated decode time is a smooth trend in the context
 * (KV reads) plus a jitter of up to +-1.5% from one context to the next (HBM channel mapping
 * of the padded cache rows: 480, 496, 512 tokens of 48 sequences take 14.24, 14.02, 14.38
 * ms), and a grid point on such a spike carried it to every context around it. Rows with
 * fewer than 5 simulated points stay as simulated. The dynamic energy rows get the same fit
 * (sim: as simulated, out: smoothed): its HBM part moves with the same channel mapping (row
 * activations in the banked model), and a step's time and energy stay one point. */
typedef double grid_table[SERVE_GRID_MAX][SERVE_GRID_MAX];

static void smooth_row(serve_grid *g, unsigned i, const grid_table sim, grid_table out_tab)
{
    unsigned idx[SERVE_GRID_MAX], n = 0;
    for (unsigned j = 0; j < g->nc; j++)
        if (!g->dec_fill[i][j])
            idx[n++] = j;
    if (n < 5)
        return;
    double out[SERVE_GRID_MAX];
    for (unsigned k = 0; k < n; k++) {
        unsigned lo = k < 2 ? 0 : k - 2;
        if (lo + 5 > n)
            lo = n - 5;
        /* normal equations of y = a + b u + c u^2, u = (ctx - ctx_k) / ctx_k */
        double s[5] = {0}, r[3] = {0};
        for (unsigned w = lo; w < lo + 5; w++) {
            double u = ((double)g->ctx[idx[w]] - g->ctx[idx[k]]) / (double)g->ctx[idx[k]];
            double y = sim[i][idx[w]], p = 1;
            for (unsigned d = 0; d < 5; d++, p *= u) {
                s[d] += p;
                if (d < 3)
                    r[d] += p * y;
            }
        }
        double a[3][4] = {
            {s[0], s[1], s[2], r[0]}, {s[1], s[2], s[3], r[1]}, {s[2], s[3], s[4], r[2]}};
        for (unsigned c = 0; c < 3; c++) /* Gaussian elimination; the system is positive definite */
            for (unsigned rr = c + 1; rr < 3; rr++) {
                double f = a[rr][c] / a[c][c];
                for (unsigned cc = c; cc < 4; cc++)
                    a[rr][cc] -= f * a[c][cc];
            }
        double x2 = a[2][3] / a[2][2], x1 = (a[1][3] - a[1][2] * x2) / a[1][1];
        out[k] = (a[0][3] - a[0][1] * x1 - a[0][2] * x2) / a[0][0]; /* the fit at u = 0 */
    }
    for (unsigned k = 0; k < n; k++)
        out_tab[i][idx[k]] = out[k];
}

/* Fill grid point (i, j) of table d from its row: linear along the context axis. */
static void fill_tab(const serve_grid *g, grid_table d, unsigned i, unsigned j)
{
    if (j >= 2) {
        double s = (d[i][j - 1] - d[i][j - 2]) / (double)(g->ctx[j - 1] - g->ctx[j - 2]);
        d[i][j] = d[i][j - 1] + s * (double)(g->ctx[j] - g->ctx[j - 1]);
    } else if (j == 1) {
        d[i][j] = d[i][0] * (double)g->ctx[1] / (double)g->ctx[0];
    }
}

/* Fill grid point (i, j): time and energy alike. */
static void fill_ctx(serve_grid *g, unsigned i, unsigned j)
{
    fill_tab(g, g->dec, i, j);
    fill_tab(g, g->dec_j, i, j);
}

/* Refine the prefill axis by bisection: an interval's midpoint is simulated and inserted, and
 * the two halves are refined further while the midpoint missed the chord by more than
 * PREFILL_TOL, down to
 * PREFILL_GAP tokens or SERVE_PREFILL_MAX points. The prefill block's time is not smooth in the
 * tokens: Llama-3-70B on two v7 chips takes 26.3 ms at 400 tokens and 32.3 ms at 416 (the doubling
 * axis 256, 512 missed 445 tokens by 11%); bisection pins such a step to PREFILL_GAP tokens. */
#define PREFILL_TOL       0.005
#define PREFILL_MIN_STEPS 16u /* every doubling gets at least 16 intervals */
#define PREFILL_GAP       2u

static int refine_prefill(serve_steps *st, err *e)
{
    serve_grid *g = &st->g;
    unsigned char open[SERVE_PREFILL_MAX]; /* interval k (p[k], p[k + 1]) still to refine */
    memset(open, 1, sizeof open);
    /* breadth first: each pass halves every open interval once (right to left, so inserting
     * keeps the indices still to visit), and the point budget is spread over the axis */
    for (int any = 1; any && g->np < SERVE_PREFILL_MAX;) {
        any = 0;
        for (unsigned k = g->np - 1; k-- > 0 && g->np < SERVE_PREFILL_MAX;) {
            uint32_t a = g->p[k], b = g->p[k + 1];
            int coarse = b - a > a / PREFILL_MIN_STEPS; /* refined whatever its midpoint */
            if ((!open[k] && !coarse) || b - a <= PREFILL_GAP)
                continue;
            uint32_t m = a + (b - a) / 2;
            cost c = sim_prefill_layers(st, m, e);
            if (c.s < 0)
                return -1;
            double t = c.s;
            double chord =
                g->pre[k] + (g->pre[k + 1] - g->pre[k]) * (double)(m - a) / (double)(b - a);
            int bent = fabs(t - chord) > PREFILL_TOL * t;
            memmove(&g->p[k + 2], &g->p[k + 1], (g->np - k - 1) * sizeof g->p[0]);
            memmove(&g->pre[k + 2], &g->pre[k + 1], (g->np - k - 1) * sizeof g->pre[0]);
            memmove(&g->pre_j[k + 2], &g->pre_j[k + 1], (g->np - k - 1) * sizeof g->pre_j[0]);
            memmove(&open[k + 2], &open[k + 1], g->np - k - 1);
            g->p[k + 1] = m;
            g->pre[k + 1] = t;
            g->pre_j[k + 1] = c.j;
            g->np++;
            open[k] = open[k + 1] = (unsigned char)bent;
            any |= bent || coarse;
        }
    }
    return 0;
}

static int build_grid(serve_steps *st, err *e)
{
    serve_grid *g = &st->g;
    const serve_hw_opts *o = &st->o;
    g->nb = axis(g->b, 1, o->max_batch, 1, 32);
    g->nc = axis(g->ctx, 128, o->max_ctx, 1, 0);
    g->np = axis(g->p, 16, o->max_prefill, 0, 0);
    /* head: the non-layer part at batch 1 (from the first decode point) */
    for (unsigned i = 0; i < g->nb; i++)
        for (unsigned j = 0; j < g->nc; j++) {
            /* Reachable: the cell below-left of the point holds at most the cache's tokens. */
            uint64_t lb = i ? g->b[i - 1] : g->b[0], lc = j ? g->ctx[j - 1] : g->ctx[0];
            if (o->kv_tokens && j >= 2 && lb * lc > o->kv_tokens) {
                g->dec_fill[i][j] = 1;
                fill_ctx(g, i, j);
                continue;
            }
            err tmp;
            cost h = {0, 0};
            cost t = sim_decode(st, g->b[i], g->ctx[j], i == 0 && j == 0 ? &h : NULL, &tmp);
            if (t.s < 0) {
                if (j < 2) {
                    if (e)
                        *e = tmp;
                    return -1;
                }
                g->dec_fill[i][j] = 2;
                fill_ctx(g, i, j);
                continue;
            }
            if (i == 0 && j == 0) {
                g->head_s = h.s > 0 ? h.s : 0;
                g->head_j = h.j > 0 ? h.j : 0;
            }
            g->dec[i][j] = g->dec_sim[i][j] = t.s;
            g->dec_j[i][j] = g->dec_j_sim[i][j] = t.j;
        }
    for (unsigned i = 0; i < g->nb; i++) {
        smooth_row(g, i, g->dec_sim, g->dec);
        smooth_row(g, i, g->dec_j_sim, g->dec_j);
        for (unsigned j = 0; j < g->nc; j++)
            if (g->dec_fill[i][j]) { /* again, from the smoothed row */
                fill_ctx(g, i, j);
                g->dec_sim[i][j] = g->dec[i][j];
                g->dec_j_sim[i][j] = g->dec_j[i][j];
            }
    }
    for (unsigned k = 0; k < g->np; k++) {
        cost t = sim_prefill_layers(st, g->p[k], e);
        if (t.s < 0)
            return -1;
        g->pre[k] = t.s;
        g->pre_j[k] = t.j;
    }
    return refine_prefill(st, e);
}

/* Segment of x on axis v[0..n-1] and its weight (outside: the end segment, extrapolating). */
static unsigned seg(const uint32_t *v, unsigned n, double x, double *w)
{
    if (n < 2) {
        *w = 0;
        return 0;
    }
    unsigned i = 0;
    while (i + 2 < n && x > v[i + 1])
        i++;
    *w = (x - v[i]) / (double)(v[i + 1] - v[i]);
    return i;
}

/* Bilinear in table d at the cell (i..i1, j..j1) with weights wb, wc; at least 0. */
static double bilinear(const grid_table d, unsigned i, unsigned i1, unsigned j, unsigned j1,
                       double wb, double wc)
{
    double lo = d[i][j] + wc * (d[i][j1] - d[i][j]);
    double hi = d[i1][j] + wc * (d[i1][j1] - d[i1][j]);
    double t = lo + wb * (hi - lo);
    return t > 0 ? t : 0;
}

/* Decode step (b, ctx): time and dynamic energy, the same cell and weights. */
static cost grid_decode(const serve_grid *g, double b, double ctx)
{
    double wb, wc;
    unsigned i = seg(g->b, g->nb, b, &wb), j = seg(g->ctx, g->nc, ctx, &wc);
    unsigned i1 = g->nb > 1 ? i + 1 : i, j1 = g->nc > 1 ? j + 1 : j;
    return (cost){bilinear(g->dec, i, i1, j, j1, wb, wc), bilinear(g->dec_j, i, i1, j, j1, wb, wc)};
}

/* L prefill blocks of p tokens from axis values v (times or energies) */
static double prefill_at(const serve_grid *g, const double *v, double p)
{
    if (p <= g->p[0] || g->np < 2)
        return v[0] * (g->np < 2 && p > g->p[0] ? p / g->p[0] : 1);
    unsigned n = g->np - 1;
    if (p > g->p[n]) {
        /* beyond the axis (whole-prompt steps of several prompts): linear from the last
         * doubling, not from the last refined segment, which may be 2 tokens of jitter */
        unsigned k = n;
        while (k > 0 && g->p[k] > g->p[n] / 2)
            k--;
        double s = (v[n] - v[k]) / (double)(g->p[n] - g->p[k]);
        return v[n] + (s > 0 ? s : 0) * (p - g->p[n]);
    }
    double w;
    unsigned k = seg(g->p, g->np, p, &w);
    return v[k] + w * (v[k + 1] - v[k]);
}

static cost grid_prefill(const serve_grid *g, double p)
{
    return (cost){prefill_at(g, g->pre, p), prefill_at(g, g->pre_j, p)};
}

/* ---- exact memo -------------------------------------------------------------------------- */

static cost *memo_find(memo *m, uint64_t key, int *found)
{
    if (m->n * 2 >= m->cap) {
        size_t nc = m->cap ? 2 * m->cap : 256;
        uint64_t *nk = calloc(nc, sizeof *nk);
        cost *nv = calloc(nc, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i]) {
                size_t h = (m->key[i] * 0x9e3779b97f4a7c15ull) % nc;
                while (nk[h])
                    h = (h + 1) % nc;
                nk[h] = m->key[i];
                nv[h] = m->val[i];
            }
        free(m->key);
        free(m->val);
        m->key = nk;
        m->val = nv;
        m->cap = nc;
    }
    key++; /* 0 marks an empty slot */
    size_t h = (key * 0x9e3779b97f4a7c15ull) % m->cap;
    while (m->key[h] && m->key[h] != key)
        h = (h + 1) % m->cap;
    *found = m->key[h] == key;
    if (!*found) {
        m->key[h] = key;
        m->n++;
    }
    return &m->val[h];
}

static cost exact_decode(serve_steps *st, uint32_t b, uint32_t ctx, err *e)
{
    int found;
    cost *v = memo_find(&st->dmemo, (uint64_t)b << 32 | ctx, &found);
    if (!v)
        return err_setk(e, ERR_NOMEM, "serve: out of memory for the step memo"), COST_FAIL;
    if (!found && (*v = sim_decode(st, b, ctx, NULL, e)).s < 0)
        return COST_FAIL; /* the failed key stays, with a negative time: the run stops anyway */
    return *v;
}

static cost exact_prefill(serve_steps *st, uint32_t p, err *e)
{
    int found;
    cost *v = memo_find(&st->pmemo, p, &found);
    if (!v)
        return err_setk(e, ERR_NOMEM, "serve: out of memory for the step memo"), COST_FAIL;
    if (!found && (*v = sim_prefill_layers(st, p, e)).s < 0)
        return COST_FAIL;
    return *v;
}

/* ---- the step function ------------------------------------------------------------------- */

double serve_steps_time(void *ctx, const serve_step *s, double *dyn_j, err *e)
{
    serve_steps *st = ctx;
    const serve_grid *g = &st->g;
    cost dc = {0, 0}, pc = {0, 0};
    if (s->decode)
        dc = st->o.exact ? exact_decode(st, s->decode, (uint32_t)lround(s->ctx), e)
                         : grid_decode(g, s->decode, s->ctx);
    if (s->prefill)
        pc = st->o.exact ? exact_prefill(st, s->prefill, e) : grid_prefill(g, s->prefill);
    double dec = dc.s, pre = pc.s;
    if (dec < 0 || pre < 0) {
        if (!st->o.exact) /* exact mode: e is filled by the failed simulation */
            err_set(e, "serve: negative interpolated step time (decode %g s, prefill %g s)", dec,
                    pre);
        return -1;
    }
    if (!s->decode) {
        *dyn_j = pc.j + g->head_j;
        return pre + g->head_s;
    }
    if (!s->prefill) {
        *dyn_j = dc.j;
        return dec;
    }
    /* fused step: the layer weights are read once; the read saved is charged back as its
     * energy, in proportion when less than a whole read overlaps */
    double ov = g->weight_read_s;
    if (ov > pre)
        ov = pre;
    if (ov > dec - g->head_s)
        ov = dec - g->head_s;
    if (ov < 0)
        ov = 0;
    *dyn_j = dc.j + pc.j - (g->weight_read_s > 0 ? g->weight_read_j * ov / g->weight_read_s : 0);
    return dec + pre - ov;
}

/* ---- memory plan ------------------------------------------------------------------------- */

/* Plan of a decode step of nl layers at batch b against a 16-token cache (gen only). */
static int plan_decode(serve_steps *st, uint32_t b, uint64_t nl, gen_result *r, err *e)
{
    gen_opts o;
    model_opts(st, &o, GEN_LLM_STEP);
    o.decode = 1;
    o.batch = b;
    o.seq = 16;
    o.layers = o.sizes[0] = nl;
    o.nsizes = 1;
    if (gen_opts_run(st, &o, 0, NULL, e) < 0)
        return -1;
    *r = st->plan;
    return 0;
}

int serve_steps_memory(const serve_hw_opts *o, uint64_t step_tokens, serve_memory *mem, err *e)
{
    serve_steps *st = steps_alloc(o, e);
    if (!st)
        return -1;
    int rc = -1;
    uint64_t L = o->m->layers;
    gen_result d1, d2, db, pf;
    if (plan_decode(st, 1, 1, &d1, e) || (L > 1 && plan_decode(st, 1, 2, &d2, e)) ||
        plan_decode(st, o->max_batch ? o->max_batch : 1, 1, &db, e))
        goto out;
    gen_opts po;
    model_opts(st, &po, GEN_TRANSFORMER);
    po.batch = 1;
    po.seq = step_tokens ? step_tokens : 1;
    po.causal = 1;
    if (gen_opts_run(st, &po, 0, NULL, e) < 0)
        goto out;
    pf = st->plan;
    double pers = (double)d1.persistent_bytes;
    if (L > 1)
        pers += (double)(L - 1) * ((double)d2.persistent_bytes - (double)d1.persistent_bytes);
    /* less the 16-token cache of the batch-1 step (2 kv rows per layer) */
    pers -= 16.0 * serve_kv_bytes_per_token(o->m, o->chips, o->w_dt);
    mem->weights = pers;
    mem->activations = (double)(db.peak_hbm_bytes - db.persistent_bytes) +
                       (double)(pf.peak_hbm_bytes - pf.persistent_bytes);
    mem->kv = mem->hbm - mem->weights - mem->activations;
    mem->kv_tokens = mem->kv > 0 ? (uint64_t)(mem->kv / mem->kv_per_token) : 0;
    mem->from_plan = 1;
    rc = 0;
out:
    serve_steps_free(st);
    return rc;
}

/* ---- lifecycle and checks ---------------------------------------------------------------- */

/* The source without its grid: options, the slice's topology, scratch directory. */
static serve_steps *steps_alloc(const serve_hw_opts *o, err *e)
{
    serve_steps *st = calloc(1, sizeof *st);
    if (!st || !(st->res = malloc(sizeof *st->res))) {
        free(st);
        err_setk(e, ERR_NOMEM, "serve: out of memory");
        return NULL;
    }
    st->o = *o;
    st->c = *o->c;
    /* Scratch traces: memory-backed /dev/shm when there is one (the trace writer syncs each
     * file, which costs more than the simulation on a disk). */
    const char *td = o->tmpdir ? o->tmpdir : getenv("TMPDIR");
    if (!td || !*td)
        td = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    if (strlen(td) >= sizeof st->tmpdir) {
        err_path(e, td, "scratch directory: path too long");
        goto fail;
    }
    memcpy(st->tmpdir, td, strlen(td) + 1);
    if (pod_topology(&st->c, o->chips, st->g.topo, sizeof st->g.topo, e))
        goto fail;
    snprintf(st->c.ici_dims, sizeof st->c.ici_dims, "%s", st->g.topo);
    {
        const serve_model *m = o->m;
        double layer_w =
            (double)m->layers * (2.0 * (double)m->d_model * (double)(m->heads * m->head_dim) +
                                 2.0 * (double)m->d_model * (double)(m->kv_heads * m->head_dim) +
                                 3.0 * (double)m->d_model * (double)m->d_ff);
        double bytes = layer_w * isa_dtype_bits(o->w_dt) / 8.0; /* the replica's */
        st->g.weight_read_s = bytes / o->chips / cfg_hbm_peak_bps(&st->c);
        /* its energy: read from HBM and written into VMEM by the DMA (the MXUs' reads of the
         * weights from VMEM are not subtracted) */
        st->g.weight_read_j =
            bytes * 8.0 * (st->c.energy_hbm_pj_bit + st->c.energy_vmem_wr_pj_bit) * 1e-12;
    }
    return st;
fail:
    serve_steps_free(st);
    return NULL;
}

serve_steps *serve_steps_new(const serve_hw_opts *o, err *e)
{
    serve_steps *st = steps_alloc(o, e);
    if (!st)
        return NULL;
    if (o->exact) {
        /* the head still comes from one batch-1 decode point */
        cost h = {0, 0};
        if (sim_decode(st, 1, 128, &h, e).s < 0)
            goto fail;
        st->g.head_s = h.s > 0 ? h.s : 0;
        st->g.head_j = h.j > 0 ? h.j : 0;
    } else if (build_grid(st, e)) {
        goto fail;
    }
    return st;
fail:
    serve_steps_free(st);
    return NULL;
}

void serve_steps_free(serve_steps *st)
{
    if (st)
        MEM_FREE_ALL(st->dmemo.key, st->dmemo.val, st->pmemo.key, st->pmemo.val, st->res, st);
}

const serve_grid *serve_steps_grid(const serve_steps *st)
{
    return &st->g;
}

static int on_grid(const uint32_t *v, unsigned n, uint32_t x)
{
    for (unsigned i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

int serve_steps_check(serve_steps *st, unsigned n, uint64_t seed, serve_check *out, err *e)
{
    const serve_grid *g = &st->g;
    if (st->o.exact)
        return err_set(e, "serve: --check-grid needs the grid (not --exact)");
    uint64_t x = seed * 2862933555777941757ull + 3037000493ull;
#define NEXT() (x = x * 6364136223846793005ull + 1442695040888963407ull, (x >> 33))
    for (unsigned k = 0; k < n; k++) {
        serve_check *c = &out[k];
        memset(c, 0, sizeof *c);
        c->decode = g->np < 2 || k % 2 == 0;
        if (c->decode) {
            /* off-grid in both coordinates, within the grid and the cache's reach */
            for (int tries = 0; tries < 1000; tries++) {
                uint32_t bmax = g->b[g->nb - 1], cmax = g->ctx[g->nc - 1];
                c->b = 1 + (uint32_t)(NEXT() % bmax);
                c->ctx = g->ctx[0] + (uint32_t)(NEXT() % (cmax - g->ctx[0] + 1));
                if ((g->nb < 2 || !on_grid(g->b, g->nb, c->b)) && !on_grid(g->ctx, g->nc, c->ctx) &&
                    (!st->o.kv_tokens || (uint64_t)c->b * c->ctx <= st->o.kv_tokens))
                    break;
            }
            cost gc = grid_decode(g, c->b, c->ctx);
            /* all L layers: the error includes the layer extrapolation */
            cost sc = decode_layers(st, c->b, c->ctx, st->o.m->layers, e);
            c->grid_s = gc.s;
            c->grid_j = gc.j;
            c->sim_s = sc.s;
            c->sim_j = sc.j;
        } else {
            do
                c->p = g->p[0] + (uint32_t)(NEXT() % (g->p[g->np - 1] - g->p[0] + 1));
            while (on_grid(g->p, g->np, c->p));
            cost gc = grid_prefill(g, c->p);
            cost sc = sim_prefill(st, c->p, e);
            c->grid_s = gc.s + g->head_s;
            c->grid_j = gc.j + g->head_j;
            c->sim_s = sc.s;
            c->sim_j = sc.j;
        }
        if (c->sim_s < 0)
            return -1;
        c->rel_err = (c->grid_s - c->sim_s) / c->sim_s;
        c->rel_err_j = c->sim_j > 0 ? (c->grid_j - c->sim_j) / c->sim_j : 0;
    }
#undef NEXT
    return 0;
}
