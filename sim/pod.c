/* pod.c - pod-scale estimate (`tpusim pod`): a trace's per-chip work replayed on a pod
 * topology. Symmetric mode (default) simulates one representative chip whose collectives are
 * timed on the whole topology (icinet.c, SYMMETRIC); full mode simulates every chip of a
 * slice on one FULL network, with one SPMD trace or one trace per chip. Scaling rows are weak
 * scaling with one trace (the per-chip work is fixed), strong scaling with a "{chips}" trace
 * name (one trace per chip count, generated for a fixed model).
 * Figures and their definitions: docs/models-ici.md ("Pod estimate"). */
#include "pod.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chip.h"
#include "config.h"
#include "ici.h"
#include "json.h"
#include "kernel.h"
#include "sim.h"
#include "stats.h"

#define POD_MAX_OVERRIDES  256
#define POD_MAX_SCALING    32
#define POD_FULL_MAX_CHIPS 1024 /* every chip is a full chip model: keep full mode to slices */

typedef struct pod_opts {
    const char *config, *trace, *json, *topology;
    const char *const *traces; /* the TRACE arguments; trace = traces[0] */
    unsigned ntraces;
    int per_count; /* trace names contain "{chips}": one trace per chip count (strong scaling) */
    uint64_t chips;
    ici_mode mode;
    int quiet;
    const char *ovr[POD_MAX_OVERRIDES];
    unsigned novr;
    uint64_t scaling[POD_MAX_SCALING];
    unsigned nscaling;
} pod_opts;

static void pod_usage(FILE *out)
{
    fprintf(out,
            "usage: tpusim pod -c CONFIG TRACE... [--chips N] [--topology AxBxC]\n"
            "                  [--mode symmetric|full] [--json FILE] [-p key=value]...\n"
            "                  [--scaling N,N,...]\n"
            "\n"
            "Estimate TRACE (the work of one chip) at pod scale: peak and sustained exaflops,\n"
            "MFU, step time, the split into compute, memory-bound, exposed communication and\n"
            "idle time, and per-collective rows with achieved bus bandwidth.\n"
            "\n"
            "TRACE is one SPMD trace that every chip runs. In full mode, chips may run their\n"
            "own traces: give one TRACE per chip in chip-id order, or one name containing\n"
            "{chip} (replaced by the chip id, e.g. step.{chip}.tpt). {chips} in a name is\n"
            "replaced by the pod's chip count: with --scaling, one trace per chip count, e.g.\n"
            "generated for a fixed model with 'tpusim gen ... --chips N' (strong scaling).\n"
            "\n"
            "  -c, --config CONFIG   machine config (YAML file or preset name such as v7)\n"
            "  -p key=value          override one config key (repeatable)\n"
            "      --chips N         pod of N chips, near-cubic (2D generations: near-square)\n"
            "      --topology AxBxC  exact pod dimensions (default: the config's pod.dims);\n"
            "                        with --chips, N must equal the product\n"
            "      --mode MODE       symmetric (default): one representative chip, collectives\n"
            "                        timed on the whole topology; full: every chip simulated\n"
            "                        (slices of up to %d chips)\n"
            "      --json FILE       write the estimate as JSON (atomically; - = stdout)\n"
            "  -q, --quiet           do not print the text report\n"
            "      --scaling LIST    also estimate these chip counts: weak scaling with one\n"
            "                        trace, strong scaling with a {chips} trace name (the\n"
            "                        main estimate is then the last count, or --chips)\n",
            POD_FULL_MAX_CHIPS);
}

/* ---- topology choice ---- */

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -1;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || x == 0)
        return -1;
    *v = x;
    return 0;
}

/* The most nearly square (2 axes) or cubic (3 axes) factorisation of n, axes ascending:
 * minimise the ratio of the largest to the smallest axis, then the middle axis' spread. */
static void factorise(uint64_t n, unsigned naxes, unsigned dims[3])
{
    double best = INFINITY;
    dims[0] = 1;
    dims[1] = (unsigned)n;
    dims[2] = 1;
    if (naxes == 2) {
        for (uint64_t a = 1; a * a <= n; a++)
            if (n % a == 0 && (double)(n / a) / (double)a < best) {
                best = (double)(n / a) / (double)a;
                dims[0] = (unsigned)a;
                dims[1] = (unsigned)(n / a);
            }
        return;
    }
    for (uint64_t a = 1; a * a * a <= n; a++) {
        if (n % a)
            continue;
        for (uint64_t b = a; b * b <= n / a; b++) {
            if ((n / a) % b)
                continue;
            uint64_t c = n / a / b;
            double score = (double)c / (double)a + 1e-6 * (double)(c - b);
            if (score < best) {
                best = score;
                dims[0] = (unsigned)a;
                dims[1] = (unsigned)b;
                dims[2] = (unsigned)c;
            }
        }
    }
}

static void dims_text(const unsigned dims[3], unsigned naxes, char *buf, size_t cap)
{
    size_t len = 0;
    for (unsigned a = 0; a < naxes; a++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%u", a ? "x" : "", dims[a]);
}

int pod_topology(const cfg *c, uint64_t chips, char *buf, size_t cap, err *e)
{
    unsigned d[3];
    int naxes = cfg_parse_dims(c->pod_dims, d);
    if (naxes < 1)
        return err_set(e, "pod: key 'pod.dims': expected dimensions such as 16x16, got '%s'",
                       c->pod_dims);
    if (!chips) {
        snprintf(buf, cap, "%s", c->pod_dims);
        return 0;
    }
    if (chips > (1u << 24))
        return err_set(e, "pod: --chips %llu: at most %u chips", (unsigned long long)chips,
                       1u << 24);
    unsigned n = naxes == 2 ? 2 : 3;
    /* keep the generation's axis count even for unit axes (1x2x3), so that a trace's
     * collectives over x, y, z stay valid on any chip count */
    factorise(chips, n, d);
    dims_text(d, n, buf, cap);
    return 0;
}

/* ---- one estimate ---- */

static double st(const stats_reg *r, const char *group, const char *name)
{
    return stats_get(r, group, name, 0);
}

int pod_trace_path(const char *tmpl, unsigned chip, unsigned chips, char *buf, size_t cap, err *e)
{
    size_t len = 0;
    for (const char *p = tmpl; *p;) {
        char num[16] = "";
        size_t skip = 0;
        if (!strncmp(p, "{chip}", 6)) {
            snprintf(num, sizeof num, "%u", chip);
            skip = 6;
        } else if (!strncmp(p, "{chips}", 7)) {
            snprintf(num, sizeof num, "%u", chips);
            skip = 7;
        }
        const char *add = skip ? num : p;
        size_t n = skip ? strlen(num) : 1;
        if (len + n >= cap)
            return err_set(e, "pod: trace path '%s' too long for chip %u", tmpl, chip);
        memcpy(buf + len, add, n);
        len += n;
        p += skip ? skip : 1;
    }
    buf[len] = 0;
    return 0;
}

int pod_trace_per_chip(const char *tmpl)
{
    return strstr(tmpl, "{chip}") != NULL;
}

int pod_estimate(const cfg *c, const char *trace, const char *topo, ici_mode mode, pod_result *res,
                 err *e)
{
    return pod_estimate_traces(c, &trace, 1, topo, mode, res, e);
}

int pod_estimate_traces(const cfg *c, const char *const *traces, unsigned ntraces, const char *topo,
                        ici_mode mode, pod_result *res, err *e)
{
    memset(res, 0, sizeof *res);
    int rc = -1;
    chip **chips = NULL;
    unsigned nchips = 0;
    char path[sizeof res->trace];
    kern_begin();
    ici_net *net = ici_net_new(c, topo, mode, e);
    if (!net)
        return -1;
    int per_chip = ntraces > 1 || pod_trace_per_chip(traces[0]);
    if (ntraces > 1 && ntraces != ici_net_chips(net)) {
        err_set(e,
                "pod: %u traces for the %u chips of %s: give one SPMD trace, or one per chip "
                "in chip-id order",
                ntraces, ici_net_chips(net), topo);
        goto out;
    }
    if (per_chip && mode != ICI_MODE_FULL) {
        err_set(e, "pod: per-chip traces need --mode full (symmetric mode simulates one chip)");
        goto out;
    }
    res->chips = ici_net_chips(net);
    res->naxes = ici_net_axes(net);
    ici_net_dims(net, res->dims);
    snprintf(res->topo, sizeof res->topo, "%s", topo);
    snprintf(res->desc, sizeof res->desc, "%s", ici_net_describe(net));
    if (mode == ICI_MODE_FULL && res->chips > POD_FULL_MAX_CHIPS) {
        err_set(e,
                "pod: full mode simulates every chip; %s has %u chips (at most %d): use "
                "--mode symmetric",
                topo, res->chips, POD_FULL_MAX_CHIPS);
        goto out;
    }
    nchips = mode == ICI_MODE_FULL ? res->chips : 1;
    chips = calloc(nchips, sizeof *chips);
    if (!chips) {
        err_set(e, "pod: out of memory");
        goto out;
    }
    for (unsigned i = 0; i < nchips; i++) {
        if (pod_trace_path(traces[ntraces > 1 ? i : 0], i, res->chips, path, sizeof path, e))
            goto out;
        if (i == 0)
            snprintf(res->trace, sizeof res->trace, "%s", path);
        if (!(chips[i] = chip_new(c, i, net, path, e)))
            goto out;
    }
    kern_run(KERN_FOREVER);
    /* A chip that fails stops issuing; the others then deadlock in its collectives. Report the
     * failing chip's own error, not the first deadlock it caused. */
    int failed = 0;
    for (unsigned i = 0; i < nchips; i++) {
        err ei;
        if (!chip_finish(chips[i], &ei))
            continue;
        int dead = strstr(ei.msg, "deadlock") != NULL;
        if (!failed || !dead)
            *e = ei;
        if (!dead)
            goto out;
        failed = 1;
    }
    if (failed)
        goto out;
    for (unsigned i = 0; i < nchips; i++) {
        chip_summary s;
        chip_summarize(chips[i], &s);
        stats_reg *r = stats_new();
        chip_register_stats(chips[i], r);
        if (s.end_ps > res->step_ps)
            res->step_ps = s.end_ps;
        res->flops_per_chip += (double)s.flops;
        res->mxu_flops_per_chip += (double)s.mxu_flops;
        res->mxu_ideal_ps += st(r, "core", "mxu_ideal_ps");
        res->ici_bytes_per_chip += (double)s.ici_bytes;
        res->ici_link_bytes_per_chip += st(r, "ici0", "bytes");
        res->t_compute += st(r, "core", "t_compute_ps");
        res->t_memory += st(r, "core", "t_memory_ps");
        res->t_comm += st(r, "core", "t_comm_ps");
        stats_free(r);
    }
    double k = 1.0 / nchips;
    res->flops_per_chip *= k;
    res->mxu_flops_per_chip *= k;
    res->mxu_ideal_ps *= k;
    res->ici_bytes_per_chip *= k;
    res->ici_link_bytes_per_chip *= k;
    res->t_compute *= k;
    res->t_memory *= k;
    res->t_comm *= k;
    /* idle: the rest of the step, including the wait of early finishers (full mode) */
    double busy = res->t_compute + res->t_memory + res->t_comm;
    res->t_idle = (double)res->step_ps > busy ? (double)res->step_ps - busy : 0;
    for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++)
        res->peak_ef[dt] = res->chips * cfg_peak_flops(c, dt) * 1e-18;
    double step_s = (double)res->step_ps * 1e-12;
    res->sustained_ef = step_s > 0 ? res->chips * res->flops_per_chip / step_s * 1e-18 : 0;
    /* MFU against the peak of the trace's MXU datatype mix: mxu_ideal_ps is the MXU FLOPs at
     * the peak rate of their datatype, so the effective peak is mxu_flops / mxu_ideal_ps. */
    res->mfu_dtype = ISA_DT_BF16;
    double peak_chip = cfg_peak_flops(c, ISA_DT_BF16);
    if (res->mxu_flops_per_chip > 0 && res->mxu_ideal_ps > 0) {
        peak_chip = res->mxu_flops_per_chip / (res->mxu_ideal_ps * 1e-12);
        res->mfu_dtype = -1;
        for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++) {
            double p = cfg_peak_flops(c, dt);
            if (p > 0 && fabs(p - peak_chip) <= 1e-3 * p) {
                res->mfu_dtype = dt;
                peak_chip = p;
                break;
            }
        }
    }
    res->mfu = step_s > 0 && peak_chip > 0 ? res->mxu_flops_per_chip / step_s / peak_chip : 0;
    res->mismatches = ici_net_mismatches(net);
    res->nrows = ici_net_nrows(net);
    if (res->nrows > POD_MAX_ROWS)
        res->nrows = POD_MAX_ROWS;
    for (unsigned i = 0; i < res->nrows; i++)
        res->rows[i] = *ici_net_row(net, i);
    rc = 0;
out:
    if (chips)
        for (unsigned i = 0; i < nchips; i++)
            chip_free(chips[i]);
    free(chips);
    ici_net_free(net);
    return rc;
}

/* ---- output ---- */

static void fmt_time(char *b, size_t cap, double ps)
{
    double s = ps * 1e-12;
    if (s >= 1)
        snprintf(b, cap, "%.3f s", s);
    else if (s >= 1e-3)
        snprintf(b, cap, "%.3f ms", s * 1e3);
    else
        snprintf(b, cap, "%.3f us", s * 1e6);
}

static void fmt_bytes(char *b, size_t cap, double v)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    unsigned i = 0;
    while (v >= 1024 && i < 5) {
        v /= 1024;
        i++;
    }
    snprintf(b, cap, i ? "%.2f %s" : "%.0f %s", v, u[i]);
}

static double share(double part, uint64_t step)
{
    return step ? part / (double)step : 0;
}

static const char *mfu_dtype_name(int dt)
{
    return dt < 0 ? "mixed" : isa_dtype_name(dt);
}

static void print_result(FILE *out, const cfg *c, const pod_opts *o, const pod_result *r)
{
    char b1[32], b2[32];
    fprintf(out, "tpusim pod: %s%s%s%s, trace %s", c->chip_name, c->source[0] ? " (" : "",
            c->source, c->source[0] ? ")" : "", r->trace);
    if (o->ntraces > 1 || pod_trace_per_chip(o->trace))
        fprintf(out, " (chip 0 of %u per-chip traces)", r->chips);
    fprintf(out, "\n");
    if (o->nscaling && o->per_count)
        fprintf(out,
                "note: strong scaling - each chip count runs its own trace (%s); they scale "
                "a fixed model only if generated for one.\n",
                o->trace);
    else if (o->nscaling)
        fprintf(out, "note: weak scaling - every chip runs the trace's per-chip work unchanged; "
                     "use {chips} in the trace name for one trace per chip count.\n");
    fprintf(out, "topology        %s, %u chips, %s\n", r->desc, r->chips,
            o->mode == ICI_MODE_FULL ? "full mode (every chip simulated)"
                                     : "symmetric mode (one representative chip)");
    fprintf(out, "peak            ");
    for (int dt = 0, first = 1; dt < ISA_DTYPE_COUNT; dt++)
        if (r->peak_ef[dt] > 0) {
            fprintf(out, "%s%.4g EF %s", first ? "" : ", ", r->peak_ef[dt], isa_dtype_name(dt));
            first = 0;
        }
    fprintf(out, "\n");
    fmt_time(b1, sizeof b1, (double)r->step_ps);
    fprintf(out, "step time       %s\n", b1);
    fprintf(out, "sustained       %.4g EF (all FLOPs); MFU %.1f%% of %s peak (MXU FLOPs)\n",
            r->sustained_ef, r->mfu * 100, mfu_dtype_name(r->mfu_dtype));
    fprintf(out,
            "time split      compute %.1f%%  memory-bound %.1f%%  exposed comm %.1f%%  "
            "idle %.1f%%\n",
            share(r->t_compute, r->step_ps) * 100, share(r->t_memory, r->step_ps) * 100,
            share(r->t_comm, r->step_ps) * 100, share(r->t_idle, r->step_ps) * 100);
    if (r->mismatches)
        fprintf(out,
                "warning: %llu collectives differed in kind or size between the chips of a "
                "group; the operands of the first chip to arrive were used\n",
                (unsigned long long)r->mismatches);
    fmt_bytes(b1, sizeof b1, r->ici_link_bytes_per_chip);
    fmt_bytes(b2, sizeof b2, r->ici_bytes_per_chip);
    fprintf(out, "ICI             %s per chip sent on links (instruction bytes %s)\n", b1, b2);
    if (r->nrows) {
        fprintf(out, "collectives (chip 0)\n");
        fprintf(out, "  %-14s %-4s %-56s %7s %12s %12s %12s\n", "kind", "axes", "algorithm",
                "count", "bytes", "time", "bus GB/s");
        for (unsigned i = 0; i < r->nrows; i++) {
            const ici_row *w = &r->rows[i];
            char ax[4];
            fmt_bytes(b1, sizeof b1, (double)w->bytes);
            fmt_time(b2, sizeof b2, (double)w->time_ps);
            fprintf(out, "  %-14s %-4s %-56s %7llu %12s %12s %12.1f\n", ici_kind_name(w->kind),
                    ici_axes_name(w->axes, ax), w->algo, (unsigned long long)w->count, b1, b2,
                    ici_row_busbw(w) * 1e-9);
        }
    }
}

/* Scaling efficiency of row i against row 0: weak scaling (fixed per-chip work) step_0 /
 * step_i; strong scaling (fixed total work) (chips_0 step_0) / (chips_i step_i). 1 = ideal. */
static double efficiency(const pod_result *s, unsigned i, int strong)
{
    double d = (double)s[i].step_ps * (strong ? s[i].chips : 1);
    return d > 0 ? (double)s[0].step_ps * (strong ? s[0].chips : 1) / d : 0;
}

static void print_scaling(FILE *out, const pod_result *s, unsigned n, int strong)
{
    fprintf(out, "scaling (%s)\n",
            strong ? "strong: one trace per chip count" : "weak: fixed per-chip trace");
    fprintf(out, "  %8s %-12s %12s %14s %8s %11s %11s\n", "chips", "topology", "step time",
            "sustained EF", "MFU", "comm share", "efficiency");
    for (unsigned i = 0; i < n; i++) {
        char b[32];
        fmt_time(b, sizeof b, (double)s[i].step_ps);
        fprintf(out, "  %8u %-12s %12s %14.4g %7.1f%% %10.1f%% %10.1f%%\n", s[i].chips, s[i].topo,
                b, s[i].sustained_ef, s[i].mfu * 100, share(s[i].t_comm, s[i].step_ps) * 100,
                efficiency(s, i, strong) * 100);
    }
}

static void json_result_core(json_w *w, const pod_result *r)
{
    json_u64(w, "chips", r->chips);
    json_str(w, "topology", r->topo);
    json_num(w, "step_time_s", (double)r->step_ps * 1e-12);
    json_num(w, "sustained_exaflops", r->sustained_ef);
    json_num(w, "mfu", r->mfu);
    json_num(w, "comm_share", share(r->t_comm, r->step_ps));
}

static int write_json(const char *path, const cfg *c, const pod_opts *o, const pod_result *r,
                      const pod_result *sc, unsigned nsc, err *e)
{
    json_w w;
    if (json_open(&w, path, e))
        return -1;
    json_obj_begin(&w, NULL);
    json_str(&w, "tool", "tpusim pod");
    json_str(&w, "chip", c->chip_name);
    json_str(&w, "config", c->source);
    json_str(&w, "trace", r->trace);
    json_str(&w, "mode", o->mode == ICI_MODE_FULL ? "full" : "symmetric");
    json_bool(&w, "per_chip_traces", o->ntraces > 1 || pod_trace_per_chip(o->trace));
    json_bool(&w, "weak_scaling", !o->per_count);
    json_str(&w, "scaling_kind", o->per_count ? "strong" : "weak");
    json_result_core(&w, r);
    json_str(&w, "topology_desc", r->desc);
    json_arr_begin(&w, "dims");
    for (unsigned a = 0; a < r->naxes; a++)
        json_u64(&w, NULL, r->dims[a]);
    json_arr_end(&w);
    json_obj_begin(&w, "peak_exaflops");
    for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++)
        if (r->peak_ef[dt] > 0)
            json_num(&w, isa_dtype_name(dt), r->peak_ef[dt]);
    json_obj_end(&w);
    json_str(&w, "mfu_dtype", mfu_dtype_name(r->mfu_dtype));
    json_num(&w, "flops_per_chip", r->flops_per_chip);
    json_num(&w, "mxu_flops_per_chip", r->mxu_flops_per_chip);
    json_num(&w, "ici_bytes_per_chip", r->ici_bytes_per_chip);
    json_num(&w, "ici_link_bytes_per_chip", r->ici_link_bytes_per_chip);
    json_u64(&w, "collective_mismatches", r->mismatches);
    json_obj_begin(&w, "time_split");
    json_num(&w, "compute_s", r->t_compute * 1e-12);
    json_num(&w, "memory_s", r->t_memory * 1e-12);
    json_num(&w, "exposed_comm_s", r->t_comm * 1e-12);
    json_num(&w, "idle_s", r->t_idle * 1e-12);
    json_num(&w, "compute_share", share(r->t_compute, r->step_ps));
    json_num(&w, "memory_share", share(r->t_memory, r->step_ps));
    json_num(&w, "exposed_comm_share", share(r->t_comm, r->step_ps));
    json_num(&w, "idle_share", share(r->t_idle, r->step_ps));
    json_obj_end(&w);
    json_arr_begin(&w, "collectives");
    for (unsigned i = 0; i < r->nrows; i++) {
        const ici_row *row = &r->rows[i];
        char ax[4];
        json_obj_begin(&w, NULL);
        json_str(&w, "kind", ici_kind_name(row->kind));
        json_str(&w, "axes", ici_axes_name(row->axes, ax));
        json_str(&w, "algorithm", row->algo);
        json_u64(&w, "count", row->count);
        json_u64(&w, "bytes", row->bytes);
        json_num(&w, "time_s", (double)row->time_ps * 1e-12);
        json_num(&w, "bus_factor", row->bus_factor);
        json_num(&w, "busbw_gbs", ici_row_busbw(row) * 1e-9);
        json_obj_end(&w);
    }
    json_arr_end(&w);
    /* one row per --scaling chip count; without --scaling, the estimate itself, so that the
     * array is never empty and always plottable */
    json_arr_begin(&w, "scaling");
    for (unsigned i = 0; i < (nsc ? nsc : 1); i++) {
        json_obj_begin(&w, NULL);
        json_result_core(&w, nsc ? &sc[i] : r);
        json_str(&w, "trace", nsc ? sc[i].trace : r->trace);
        json_num(&w, "efficiency", nsc ? efficiency(sc, i, o->per_count) : 1.0);
        json_obj_end(&w);
    }
    json_arr_end(&w);
    json_obj_end(&w);
    return json_close(&w, e);
}

/* ---- command line ---- */

static int parse_scaling(const char *s, pod_opts *o, err *e)
{
    const char *p = s;
    while (*p) {
        char tok[32];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof tok)
            return err_set(e, "pod: --scaling '%s': expected chip counts such as 256,1024", s);
        memcpy(tok, p, len);
        tok[len] = 0;
        if (o->nscaling == POD_MAX_SCALING)
            return err_set(e, "pod: --scaling '%s': at most %d chip counts", s, POD_MAX_SCALING);
        if (parse_u64(tok, &o->scaling[o->nscaling]))
            return err_set(e, "pod: --scaling '%s': '%s' is not a chip count >= 1", s, tok);
        o->nscaling++;
        p += len;
        if (*p == ',' && *++p == 0)
            return err_set(e, "pod: --scaling '%s': trailing comma", s);
    }
    if (!o->nscaling)
        return err_set(e, "pod: --scaling: expected chip counts such as 256,1024");
    return 0;
}

static int parse_args(int argc, char **argv, pod_opts *o, int *help, err *e)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"chips", required_argument, 0, 'n'},
                                         {"topology", required_argument, 0, 't'},
                                         {"mode", required_argument, 0, 'm'},
                                         {"json", required_argument, 0, 'j'},
                                         {"scaling", required_argument, 0, 's'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    memset(o, 0, sizeof *o);
    o->mode = ICI_MODE_SYMMETRIC;
    *help = 0;
    optind = 0; /* full re-initialisation: pod_main may run many times per process */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:p:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'p':
            if (o->novr == POD_MAX_OVERRIDES)
                return err_set(e, "pod: too many -p overrides (at most %d)", POD_MAX_OVERRIDES);
            o->ovr[o->novr++] = optarg;
            break;
        case 'n':
            if (parse_u64(optarg, &o->chips))
                return err_set(e, "pod: --chips '%s': expected a chip count >= 1", optarg);
            break;
        case 't':
            o->topology = optarg;
            break;
        case 'm':
            if (!strcmp(optarg, "symmetric"))
                o->mode = ICI_MODE_SYMMETRIC;
            else if (!strcmp(optarg, "full"))
                o->mode = ICI_MODE_FULL;
            else
                return err_set(e, "pod: --mode '%s': expected symmetric or full", optarg);
            break;
        case 'j':
            o->json = optarg;
            break;
        case 's':
            if (parse_scaling(optarg, o, e))
                return -1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            *help = 1;
            return 0;
        default:
            return err_set(e, "pod: bad option '%s' (see 'tpusim pod --help')", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return err_set(e, "pod: expected a TRACE argument (see 'tpusim pod --help')");
    o->traces = (const char *const *)&argv[optind];
    o->ntraces = (unsigned)(argc - optind);
    o->trace = o->traces[0];
    for (unsigned i = 0; i < o->ntraces; i++)
        o->per_count |= strstr(o->traces[i], "{chips}") != NULL;
    if (o->ntraces > 1 && o->mode != ICI_MODE_FULL)
        return err_set(e, "pod: %u TRACE arguments: per-chip traces need --mode full", o->ntraces);
    if (o->ntraces > 1 && o->nscaling)
        return err_set(e, "pod: --scaling takes one TRACE (use {chips} in its name for one "
                          "trace per chip count)");
    if (o->topology) {
        unsigned d[3];
        if (cfg_parse_dims(o->topology, d) < 1 || !d[0] || !d[1] || !d[2])
            return err_set(e,
                           "pod: --topology '%s': expected 1 to 3 axes of at least 1 chip "
                           "such as 16x16 or 16x24x24",
                           o->topology);
        uint64_t n = (uint64_t)d[0] * d[1] * d[2];
        if (o->chips && o->chips != n)
            return err_set(e, "pod: --chips %llu does not match --topology %s (%llu chips)",
                           (unsigned long long)o->chips, o->topology, (unsigned long long)n);
    }
    return 0;
}

int pod_main(int argc, char **argv, err *e)
{
    pod_opts o;
    int help;
    if (parse_args(argc, argv, &o, &help, e))
        return -1;
    if (help) {
        pod_usage(stdout);
        return 0;
    }
    cfg c;
    if (sim_load_cfg(&c, o.config, o.ovr, o.novr, e))
        return -1;
    char topo[64];
    if (o.topology)
        snprintf(topo, sizeof topo, "%s", o.topology);
    else if (pod_topology(
                 &c, !o.chips && o.per_count && o.nscaling ? o.scaling[o.nscaling - 1] : o.chips,
                 topo, sizeof topo, e))
        return -1; /* strong scaling without --chips: the main estimate is the last count */
    pod_result *res = calloc(1 + o.nscaling, sizeof *res);
    if (!res)
        return err_set(e, "pod: out of memory");
    int rc = -1;
    if (pod_estimate_traces(&c, o.traces, o.ntraces, topo, o.mode, &res[0], e))
        goto out;
    for (unsigned i = 0; i < o.nscaling; i++) {
        char t[64];
        if (pod_topology(&c, o.scaling[i], t, sizeof t, e))
            goto out;
        if (o.ntraces == 1 && !strcmp(t, res[0].topo)) {
            res[1 + i] = res[0]; /* the same trace on the same topology: already estimated */
            continue;
        }
        if (pod_estimate(&c, o.trace, t, o.mode, &res[1 + i], e))
            goto out;
    }
    if (!o.quiet && (!o.json || strcmp(o.json, "-"))) {
        print_result(stdout, &c, &o, &res[0]);
        if (o.nscaling)
            print_scaling(stdout, &res[1], o.nscaling, o.per_count);
    }
    if (o.json && write_json(o.json, &c, &o, &res[0], &res[1], o.nscaling, e))
        goto out;
    rc = 0;
out:
    free(res);
    return rc;
}
