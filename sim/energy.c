/* energy.c - energy as data over counters: each row of energy_rows names a counter the unit
 * models register and the config coefficient that converts it to picojoules.
 *
 *   E_dynamic = sum over rows r, over every counter c matching r:  value(c) x coef(r)   [pJ]
 *   E_static  = energy.static_w x T                          (1 W x 1 ps = 1 pJ)
 *   E         = E_dynamic + E_static
 *
 * Counters are incremented by the models when an instruction starts (MACs, vector registers,
 * VMEM bytes) or while it runs (HBM bytes and activations per chunk, ICI link bytes), so a
 * sample of the probe at any time is the dynamic energy of the work begun so far.
 *
 * Windows: fixed width W = energy.window_us (doubled, pairs merged, if a run would need more
 * than ENERGY_MAX_WINDOWS). Window w's power is P_w = static_w + E_w / W. Throttle (per-window
 * DVFS step, energy.throttle): a window with P_w > chip.tdp_w runs at clock scale
 *   s_w = clamp(((tdp - static_w) / (E_w / W))^(1/x), min_clock_scale, 1)   x = energy.dvfs_exp
 * taking W / s_w (its work is assumed clock-bound: an upper bound on a re-timed run; why this
 * is a post-pass and its error bounds: docs/models-energy.md) with dynamic energy
 * E_w x s_w^(x-1) (energy per operation ~ V^2, V ~ clock when x = 3), so its dynamic power is
 * (E_w / W) x s_w^x.
 *   T_throttled = sum_w W_w / s_w,  E_throttled = static_w x T_throttled + sum_w E_w s_w^(x-1). */
#include "energy.h"

#include "core.h"
#include "mem.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ENERGY_MAX_WINDOWS (1u << 20)

static const char *const energy_cat_names[ENERGY_CAT_COUNT] = {
    "mxu", "vpu", "vmem", "hbm", "ici", "dcn", "static",
};

const char *energy_cat_name(energy_cat c)
{
    return c < ENERGY_CAT_COUNT ? energy_cat_names[c] : "?";
}

/* Coefficients, pJ per counted unit. Vector registers are counted ganged over the chip's
 * cores (vpu.c), the key is per core's register: x chip.cores. Bytes: x 8 bits. */
static double co_bf16(const cfg *c)
{
    return c->energy_mac_bf16_pj;
}
static double co_int8(const cfg *c)
{
    return c->energy_mac_int8_pj;
}
static double co_fp8(const cfg *c)
{
    return c->energy_mac_fp8_pj;
}
static double co_fp32(const cfg *c)
{
    return c->energy_mac_fp32_pj;
}
static double co_int4(const cfg *c)
{
    return c->energy_mac_int4_pj;
}
static double co_valu(const cfg *c)
{
    return c->energy_valu_vreg_pj * (double)cfg_device_cores(c);
}
static double co_trans(const cfg *c)
{
    return c->energy_trans_vreg_pj * (double)cfg_device_cores(c);
}
static double co_xlane(const cfg *c)
{
    return c->energy_xlane_vreg_pj * (double)cfg_device_cores(c);
}
static double co_vrd(const cfg *c)
{
    return 8 * c->energy_vmem_rd_pj_bit;
}
static double co_vwr(const cfg *c)
{
    return 8 * c->energy_vmem_wr_pj_bit;
}
static double co_hbm(const cfg *c)
{
    return 8 * c->energy_hbm_pj_bit;
}
static double co_act(const cfg *c)
{
    return c->energy_hbm_act_pj;
}
static double co_ici(const cfg *c)
{
    return 8 * c->energy_ici_pj_bit;
}
static double co_dcn(const cfg *c)
{
    return 8 * c->energy_dcn_pj_bit;
}

/* The energy table. kind: the counter's group is this unit kind name followed by its index
 * ("mxu" matches mxu0..mxuN), "*" any group; with a trailing '#' the index is required ("ici#"
 * matches ici0, not the network's group "ici"). */
typedef struct energy_row {
    energy_cat cat;
    const char *kind, *counter;
    double (*coef)(const cfg *c);
} energy_row;

static const energy_row energy_rows[] = {
    {ENERGY_MXU, "mxu", "macs_bf16", co_bf16},
    {ENERGY_MXU, "mxu", "macs_int8", co_int8},
    {ENERGY_MXU, "mxu", "macs_fp8", co_fp8},
    {ENERGY_MXU, "mxu", "macs_fp32", co_fp32},
    {ENERGY_MXU, "mxu", "macs_int4", co_int4},
    {ENERGY_VPU, "vpu", "valu_vregs", co_valu},
    {ENERGY_VPU, "vpu", "trans_vregs", co_trans},
    {ENERGY_VPU, "vpu", "xlane_vregs", co_xlane},
    {ENERGY_VMEM, "*", "vmem_rd_bytes", co_vrd},
    {ENERGY_VMEM, "*", "vmem_wr_bytes", co_vwr},
    {ENERGY_HBM, "hbm", "bytes_read", co_hbm},
    {ENERGY_HBM, "hbm", "bytes_written", co_hbm},
    {ENERGY_HBM, "hbm", "row_misses", co_act},
    /* ici<N>.bytes: bytes the chip transmits on its links, each link crossing counted (ring
     * steps are one hop; routed all-to-all loads count every link of the route): bytes x hops */
    {ENERGY_ICI, "ici#", "bytes", co_ici},
    {ENERGY_DCN, "dcn#", "bytes", co_dcn},
};

typedef struct energy_term {
    const uint64_t *ctr;
    double pj;
    energy_cat cat;
} energy_term;

struct energy_probe {
    unsigned n;
    energy_term t[]; /* room for one per registered counter */
};

static int group_matches(const char *kind, const char *group)
{
    if (!strcmp(kind, "*"))
        return 1;
    size_t k = strlen(kind);
    int need_digit = k && kind[k - 1] == '#';
    if (need_digit)
        k--;
    if (strncmp(kind, group, k))
        return 0;
    const char *p = group + k;
    if (need_digit && !*p)
        return 0;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    return 1;
}

energy_probe *energy_probe_new(const cfg *c, const stats_reg *r, err *e)
{
    size_t n = stats_count(r);
    energy_probe *p = err_calloc(1, sizeof *p + n * sizeof *p->t, "energy", e);
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const stats_entry *s = stats_at(r, i);
        if (!s->value)
            continue;
        for (size_t k = 0; k < sizeof energy_rows / sizeof *energy_rows; k++) {
            const energy_row *row = &energy_rows[k];
            if (!strcmp(row->counter, s->name) && group_matches(row->kind, s->group)) {
                p->t[p->n++] = (energy_term){s->value, row->coef(c), row->cat};
                break;
            }
        }
    }
    return p;
}

void energy_probe_free(energy_probe *p)
{
    free(p);
}

void energy_probe_sample(const energy_probe *p, double pj[ENERGY_CAT_COUNT])
{
    for (int i = 0; i < ENERGY_CAT_COUNT; i++)
        pj[i] = 0;
    for (unsigned i = 0; i < p->n; i++)
        pj[p->t[i].cat] += (double)*p->t[i].ctr * p->t[i].pj;
}

double energy_clock_scale(double dyn_pj, double len_ps, double static_w, double tdp_w,
                          double min_scale, double exp)
{
    if (tdp_w <= 0 || len_ps <= 0 || dyn_pj <= 0)
        return 1;
    double pdyn = dyn_pj / len_ps; /* pJ/ps = W */
    if (static_w + pdyn <= tdp_w)
        return 1;
    if (tdp_w <= static_w)
        return min_scale;
    double s = pow((tdp_w - static_w) / pdyn, 1.0 / exp);
    return s < min_scale ? min_scale : s > 1 ? 1 : s;
}

void energy_result_fini(energy_result *r)
{
    free(r->region_j);
    free(r->window_w);
    memset(r, 0, sizeof *r);
}

/* "tokens=N" as a word of the trace note; 0 if absent. */
static double note_tokens(const char *note)
{
    for (const char *p = note ? strstr(note, "tokens=") : NULL; p; p = strstr(p + 1, "tokens=")) {
        if (p != note && !isspace((unsigned char)p[-1]))
            continue;
        char *end;
        double v = strtod(p + 7, &end);
        if (end != p + 7 && v > 0 && (!*end || isspace((unsigned char)*end)))
            return v;
    }
    return 0;
}

/* Totals, averages and ratios from r->j (dynamic categories filled) and the run's length. */
static void energy_totals(const cfg *c, energy_result *r, uint64_t end_ps, double flops)
{
    r->seconds = (double)end_ps * 1e-12;
    r->j[ENERGY_STATIC] = cfg_static_w(c) * r->seconds;
    r->dynamic_j = 0;
    for (int i = 0; i < ENERGY_CAT_COUNT; i++)
        if (i != ENERGY_STATIC)
            r->dynamic_j += r->j[i];
    r->total_j = r->dynamic_j + r->j[ENERGY_STATIC];
    r->avg_w = r->seconds > 0 ? r->total_j / r->seconds : 0;
    r->tdp_w = cfg_tdp_w(c);
    r->throttle = c->energy_throttle;
    r->flops = flops;
    r->tflops_per_w = r->total_j > 0 ? flops / r->total_j * 1e-12 : 0;
    r->throttled_s = r->seconds;
    r->throttled_j = r->total_j;
    r->min_clock_scale = 1;
}

int energy_eval(const cfg *c, const stats_reg *r, uint64_t end_ps, double flops, energy_result *out,
                err *e)
{
    memset(out, 0, sizeof *out);
    energy_probe *p = energy_probe_new(c, r, e);
    if (!p)
        return -1;
    double pj[ENERGY_CAT_COUNT];
    energy_probe_sample(p, pj);
    energy_probe_free(p);
    for (int i = 0; i < ENERGY_CAT_COUNT; i++)
        out->j[i] = pj[i] * 1e-12;
    energy_totals(c, out, end_ps, flops);
    out->peak_w = out->avg_w;
    return 0;
}

/* ---- the meter ---- */

struct energy_meter {
    const cfg *cfg;
    const energy_probe *p;
    double last[ENERGY_CAT_COUNT]; /* probe at the previous completion, pJ */
    uint64_t last_ps;
    double win_ps;  /* window width */
    double *win_pj; /* dynamic energy per window */
    uint64_t nwin;
    size_t capwin;
    double (*reg)[ENERGY_CAT_COUNT]; /* pJ per region */
    unsigned nreg;
    size_t capreg;
    int oom;
    core_sampler smp;
    core_observer next;
    void *next_ctx;
};

energy_meter *energy_meter_new(const cfg *c, const energy_probe *p, err *e)
{
    energy_meter *m = err_calloc(1, sizeof *m, "energy", e);
    if (!m)
        return NULL;
    m->cfg = c;
    m->p = p;
    m->win_ps = c->energy_window_us * 1e6;
    return m;
}

void energy_meter_free(energy_meter *m)
{
    if (m)
        MEM_FREE_ALL(m->win_pj, m->reg, m);
}

void energy_meter_chain(energy_meter *m, core_observer next, void *ctx)
{
    m->next = next;
    m->next_ctx = ctx;
}

/* Make window index w exist: grow the array, or past ENERGY_MAX_WINDOWS double the width
 * (merging pairs). Returns w's index under the (possibly new) width; -1 on out-of-memory. */
static int64_t meter_window(energy_meter *m, double t_ps)
{
    for (;;) {
        uint64_t w = (uint64_t)(t_ps / m->win_ps);
        if (w < m->nwin)
            return (int64_t)w;
        if (w < m->capwin) {
            for (uint64_t i = m->nwin; i <= w; i++)
                m->win_pj[i] = 0;
            m->nwin = w + 1;
            return (int64_t)w;
        }
        if (w < ENERGY_MAX_WINDOWS) {
            if (mem_grow(&m->win_pj, &m->capwin, w + 1, sizeof *m->win_pj, 64))
                return -1;
            continue;
        }
        for (uint64_t i = 0; i < m->nwin; i++)
            m->win_pj[i / 2] = (i % 2 ? m->win_pj[i / 2] : 0) + m->win_pj[i];
        m->nwin = (m->nwin + 1) / 2;
        m->win_ps *= 2;
    }
}

/* Spread pj evenly over [a, b) (b == a: into a's window). */
static void meter_spread(energy_meter *m, uint64_t a, uint64_t b, double pj)
{
    if (pj == 0)
        return;
    if (meter_window(m, (double)b) < 0) { /* the last window first: may widen them all */
        m->oom = 1;
        return;
    }
    int64_t w0 = meter_window(m, (double)a), w1 = meter_window(m, (double)b);
    if (b == a || w0 == w1) {
        m->win_pj[w0] += pj;
        return;
    }
    double per_ps = pj / (double)(b - a);
    for (int64_t w = w0; w <= w1; w++) {
        double lo = (double)w * m->win_ps, hi = lo + m->win_ps;
        if (lo < (double)a)
            lo = (double)a;
        if (hi > (double)b)
            hi = (double)b;
        if (hi > lo)
            m->win_pj[w] += per_ps * (hi - lo);
    }
}

/* Charge the energy begun since the previous sample, and static power since then, to region
 * and to the windows. */
/* Charge [last_ps, end_ps): the counters' growth (dynamic energy) to `region`, static energy
 * by time: [last_ps, split_ps) to `region`, [split_ps, end_ps) to `after` (the new region whose
 * first completing instruction started at split_ps; split_ps = end_ps when there is none). */
static void meter_charge_split(energy_meter *m, uint64_t end_ps, unsigned region, uint64_t split_ps,
                               unsigned after)
{
    double cur[ENERGY_CAT_COUNT], dyn = 0;
    energy_probe_sample(m->p, cur);
    unsigned top = region > after ? region : after;
    if (mem_grow(&m->reg, &m->capreg, (size_t)top + 1, sizeof *m->reg, 16)) {
        m->oom = 1;
        return;
    }
    if (top >= m->nreg)
        m->nreg = top + 1;
    uint64_t t = end_ps > m->last_ps ? end_ps : m->last_ps;
    uint64_t sp = split_ps < m->last_ps ? m->last_ps : split_ps > t ? t : split_ps;
    for (int i = 0; i < ENERGY_CAT_COUNT; i++) {
        if (i == ENERGY_STATIC)
            continue;
        double d = cur[i] - m->last[i];
        m->reg[region][i] += d;
        dyn += d;
        m->last[i] = cur[i];
    }
    m->reg[region][ENERGY_STATIC] += cfg_static_w(m->cfg) * (double)(sp - m->last_ps);
    m->reg[after][ENERGY_STATIC] += cfg_static_w(m->cfg) * (double)(t - sp);
    meter_spread(m, m->last_ps, t, dyn);
    m->last_ps = t;
}

static void meter_charge(energy_meter *m, uint64_t end_ps, unsigned region)
{
    meter_charge_split(m, end_ps, region, end_ps, region);
}

void energy_meter_observe(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                          uint64_t end_ps, unsigned region, uint64_t bytes)
{
    energy_meter *m = ctx;
    /* Sample (a pass over every counter of the probe) only when the region changes or a window
     * boundary is passed: per-completion cost stays a compare. */
    if (core_sampler_due(&m->smp, region, end_ps)) {
        unsigned cur = m->smp.cur_region;
        if (region != cur) /* the new region's first instruction ran [start_ps, end_ps) */
            meter_charge_split(m, end_ps,
                               core_slice_owner(cur, region, m->last_ps, start_ps, end_ps),
                               start_ps, region);
        else
            meter_charge(m, end_ps, cur);
        core_sampler_next(&m->smp, region, end_ps, m->win_ps);
    }
    if (m->next)
        m->next(m->next_ctx, idx, op, u, start_ps, end_ps, region, bytes);
}

/* Power per window, peak power, cap and throttle over the windows of [0, end_ps). 0, or -1 on
 * out-of-memory. */
static int meter_windows(energy_meter *m, uint64_t end_ps, energy_result *r)
{
    const cfg *c = m->cfg;
    double W = m->win_ps, T = (double)end_ps, sw = cfg_static_w(c);
    r->window_s = W * 1e-12;
    r->windows = T > 0 ? (uint64_t)ceil(T / W) : 0;
    if (!(r->window_w = calloc(r->windows ? r->windows : 1, sizeof *r->window_w)))
        return -1;
    r->peak_w = r->avg_w;
    int full_seen = 0;
    double t_thr = 0, dyn_thr = 0;
    for (uint64_t w = 0; w < r->windows; w++) {
        double lo = (double)w * W, len = (T - lo < W ? T - lo : W);
        double pj = w < m->nwin ? m->win_pj[w] : 0;
        double p = sw + pj / len;
        r->window_w[w] = p;
        if (len >= W) { /* a partial last window is not a window's average */
            if (!full_seen || p > r->peak_w)
                r->peak_w = p;
            full_seen = 1;
        }
        if (cfg_tdp_w(c) > 0 && p > cfg_tdp_w(c))
            r->windows_over++;
        double s = 1;
        if (c->energy_throttle)
            s = energy_clock_scale(pj, len, sw, cfg_tdp_w(c), c->energy_min_clock_scale,
                                   c->energy_dvfs_exp);
        if (s < r->min_clock_scale)
            r->min_clock_scale = s;
        t_thr += len / s;
        dyn_thr += pj * pow(s, c->energy_dvfs_exp - 1);
    }
    if (c->energy_throttle) {
        r->throttled_s = t_thr * 1e-12;
        r->throttled_j = sw * r->throttled_s + dyn_thr * 1e-12;
    }
    return 0;
}

int energy_meter_result(energy_meter *m, uint64_t end_ps, double flops, unsigned nregions,
                        const char *note, energy_result *out, err *e)
{
    memset(out, 0, sizeof *out);
    /* Work begun after the last completion (none in a finished run) goes to the last region. */
    if (m->smp.started)
        meter_charge(m, end_ps, m->smp.cur_region);
    if (m->oom)
        return err_setk(e, ERR_NOMEM, "energy: out of memory while metering");
    double pj[ENERGY_CAT_COUNT];
    energy_probe_sample(m->p, pj);
    for (int i = 0; i < ENERGY_CAT_COUNT; i++)
        out->j[i] = pj[i] * 1e-12;
    energy_totals(m->cfg, out, end_ps, flops);
    out->nregions = nregions;
    out->region_j = calloc(nregions ? nregions : 1, sizeof *out->region_j);
    if (!out->region_j)
        return err_setk(e, ERR_NOMEM, "energy: out of memory");
    for (unsigned i = 0; i < nregions && i < m->nreg; i++)
        for (int k = 0; k < ENERGY_CAT_COUNT; k++)
            out->region_j[i][k] = m->reg[i][k] * 1e-12;
    out->tokens = note_tokens(note);
    out->tokens_per_j = out->tokens > 0 && out->total_j > 0 ? out->tokens / out->total_j : 0;
    if (meter_windows(m, end_ps, out))
        return err_setk(e, ERR_NOMEM, "energy: out of memory");
    return 0;
}

/* ---- statistics ---- */

static double stat_dbl(const void *ctx)
{
    return *(const double *)ctx;
}

static double stat_u64(const void *ctx)
{
    return (double)*(const uint64_t *)ctx;
}

void energy_register_stats(const energy_result *res, stats_reg *r)
{
#define E_J(cat, name, desc) STATS_FIELD_FORMULA(energy_result, j[cat], stat_dbl, name, "J", desc)
    static const stats_def energy_defs[] = {
        STATS_FIELD_FORMULA(energy_result, total_j, stat_dbl, "total_j", "J", "energy of the run"),
        E_J(ENERGY_MXU, "mxu_j", "MXU MACs"),
        E_J(ENERGY_VPU, "vpu_j", "vector-register operations"),
        E_J(ENERGY_VMEM, "vmem_j", "VMEM reads and writes"),
        E_J(ENERGY_HBM, "hbm_j", "HBM bytes and row activations"),
        E_J(ENERGY_ICI, "ici_j", "ICI bytes x hops"),
        E_J(ENERGY_DCN, "dcn_j", "DCN bytes"),
        E_J(ENERGY_STATIC, "static_j", "static power x run time"),
        STATS_FIELD_FORMULA(energy_result, avg_w, stat_dbl, "avg_w", "W",
                            "total energy / run time"),
        STATS_FIELD_FORMULA(energy_result, peak_w, stat_dbl, "peak_w", "W",
                            "highest average power over a window"),
        STATS_FIELD_FORMULA(energy_result, window_s, stat_dbl, "window_s", "s", "power window"),
        STATS_FIELD_FORMULA(energy_result, tflops_per_w, stat_dbl, "tflops_per_w", "TFLOP/s/W",
                            "FLOPs per joule / 1e12"),
        STATS_FIELD_FORMULA(energy_result, tokens_per_j, stat_dbl, "tokens_per_j", "tokens/J",
                            "tokens of the trace note's tokens=N per joule (0: none)"),
        STATS_FIELD_FORMULA(energy_result, windows_over, stat_u64, "windows_over_tdp", "windows",
                            "windows whose average power exceeds chip.tdp_w"),
        STATS_FIELD_FORMULA(energy_result, throttled_s, stat_dbl, "throttled_s", "s",
                            "run time with over-cap windows clocked down (energy.throttle)"),
        STATS_FIELD_FORMULA(energy_result, throttled_j, stat_dbl, "throttled_j", "J",
                            "energy of the throttled run"),
    };
#undef E_J
    _Static_assert(STATS_NDEFS(energy_defs) == ENERGY_CAT_COUNT + 9, "one row per category");
    stats_table(r, "energy", res, energy_defs, STATS_NDEFS(energy_defs));
}
