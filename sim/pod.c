/* pod.c - pod-scale estimate: a trace's per-chip work replayed on a pod
 * topology. Symmetric mode (default) simulates one representative chip whose collectives are
 * timed on the whole topology (icinet.c, SYMMETRIC); full mode simulates every chip of a
 * slice on one FULL network, with one SPMD trace or one trace per chip. Scaling rows are weak
 * scaling with one trace (the per-chip work is fixed), strong scaling with a "{chips}" trace
 * name (one trace per chip count, generated for a fixed model).
 * Figures and their definitions: docs/models-ici.md ("Pod estimate"). */
#include "pod.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chip.h"
#include "config.h"
#include "core.h"
#include "ici.h"
#include "kernel.h"
#include "stats.h"
#include "units.h"

/* ---- topology choice ---- */

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

/* The chip's DCN figures (pod_result.dcn_*): the counters of the unit whose row in the unit
 * table carries DCN traffic, and the core's exposed time of that kind, found by walking the
 * registry; all 0 on a chip of one slice (no such unit). */
static void pod_dcn_add(const stats_reg *r, pod_result *res)
{
    for (size_t i = 0, n = stats_count(r); i < n; i++) {
        const stats_entry *s = stats_at(r, i);
        const unit_kind *k = unit_kind_of_group(s->group);
        if (!k || k->traffic != UNIT_TRAFFIC_DCN)
            continue;
        double v = stats_value(s);
        if (!strcmp(s->name, "allreduce_count"))
            res->dcn_ops += v;
        else if (!strcmp(s->name, "allreduce_bytes"))
            res->dcn_bytes += v;
        else if (!strcmp(s->name, "bytes"))
            res->dcn_sent += v;
        else if (!strcmp(s->name, "busy_ps")) {
            char nm[48];
            snprintf(nm, sizeof nm, "t_comm_%s_ps", k->name);
            res->dcn_ps += v;
            res->dcn_exposed_ps += st(r, "core", nm);
        }
    }
}

/* Bytes the chip sent on its links: the "bytes" of every unit whose row in the unit table
 * carries ICI traffic (today the one ICI port), found by walking the registry. */
static double pod_link_bytes(const stats_reg *r)
{
    double sum = 0;
    for (size_t i = 0, n = stats_count(r); i < n; i++) {
        const stats_entry *s = stats_at(r, i);
        const unit_kind *k = unit_kind_of_group(s->group);
        if (k && k->traffic == UNIT_TRAFFIC_ICI && !strcmp(s->name, "bytes"))
            sum += stats_value(s);
    }
    return sum;
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

/* The traces fit the network and the mode; fills the topology fields of res. */
static int pod_check_layout(const ici_net *net, const char *const *traces, unsigned ntraces,
                            const char *topo, ici_mode mode, pod_result *res, err *e)
{
    int per_chip = ntraces > 1 || pod_trace_per_chip(traces[0]);
    if (ntraces > 1 && ntraces != ici_net_chips(net))
        return err_set(e,
                       "pod: %u traces for the %u chips of %s: give one SPMD trace, or one per "
                       "chip in chip-id order",
                       ntraces, ici_net_chips(net), topo);
    if (per_chip && mode != ICI_MODE_FULL)
        return err_set(e,
                       "pod: per-chip traces need --mode full (symmetric mode simulates one chip)");
    res->chips = ici_net_chips(net);
    res->naxes = ici_net_axes(net);
    ici_net_dims(net, res->dims);
    snprintf(res->topo, sizeof res->topo, "%s", topo);
    snprintf(res->desc, sizeof res->desc, "%s", ici_net_describe(net));
    if (mode == ICI_MODE_FULL && res->chips > POD_FULL_MAX_CHIPS)
        return err_set(e,
                       "pod: full mode simulates every chip; %s has %u chips (at most %d): use "
                       "--mode symmetric",
                       topo, res->chips, POD_FULL_MAX_CHIPS);
    return 0;
}

/* chips[0..nchips-1] on net, each with its trace (the template expanded per chip). */
static int pod_build_chips(const cfg *c, ici_net *net, const char *const *traces, unsigned ntraces,
                           chip **chips, unsigned nchips, pod_result *res, err *e)
{
    char path[sizeof res->trace];
    for (unsigned i = 0; i < nchips; i++) {
        if (pod_trace_path(traces[ntraces > 1 ? i : 0], i, res->chips, path, sizeof path, e))
            return -1;
        if (i == 0)
            snprintf(res->trace, sizeof res->trace, "%s", path);
        if (!(chips[i] = chip_new(c, i, net, path, e)))
            return -1;
    }
    return 0;
}

/* After the run: a chip that fails stops issuing and the others then deadlock in its
 * collectives. Report the failing chip's own error, not the first deadlock it caused; among
 * deadlocks, the chip most directly the cause: stuck on a semaphore, then waiting in a receive
 * or collective, last one waiting at a barrier for the others. */
static int pod_finish_chips(chip **chips, unsigned nchips, err *e)
{
    if (kern_out_of_memory())
        return err_setk(e, ERR_NOMEM, "pod: out of memory during the replay");
    int failed = 0, best = 0;
    for (unsigned i = 0; i < nchips; i++) {
        err ei;
        if (!chip_finish(chips[i], &ei))
            continue;
        int dead = ei.kind == ERR_DEADLOCK;
        int rank = dead ? core_waits_on_other_chips(chip_core(chips[i])) : 0;
        if (!failed || !dead || rank < best) {
            if (nchips > 1 && dead)
                err_setk(e, ERR_DEADLOCK, "chip %u: %s", i, ei.msg);
            else
                *e = ei;
            best = rank;
        }
        if (!dead)
            return -1;
        failed = 1;
    }
    return failed ? -1 : 0;
}

/* Per-chip averages of the step time split, FLOPs and ICI bytes; step_ps is the slowest. */
/* Model FLOPs stated by the trace note (tpusim gen appends " # model FLOPs per chip: N"),
 * 0 when absent. */
static double note_model_flops(const char *note)
{
    static const char key[] = " # model FLOPs per chip: ";
    const char *m = note ? strstr(note, key) : NULL;
    return m ? strtod(m + sizeof key - 1, NULL) : 0;
}

static int pod_average_chips(const cfg *c, chip **chips, unsigned nchips, pod_result *res, err *e)
{
    double busy_min = INFINITY, busy_max = 0;
    for (unsigned i = 0; i < nchips; i++) {
        res->model_flops_per_chip += note_model_flops(chip_trace_note(chips[i]));
        chip_summary s;
        chip_summarize(chips[i], &s);
        stats_reg *r = stats_new(e);
        if (!r)
            return -1;
        chip_register_stats(chips[i], r);
        if (stats_check(r, e)) {
            stats_free(r);
            return -1;
        }
        if (s.end_ps > res->step_ps)
            res->step_ps = s.end_ps;
        res->flops_per_chip += (double)s.flops;
        res->mxu_flops_per_chip += (double)s.mxu_flops;
        res->mxu_ideal_ps += st(r, "core", "mxu_ideal_ps");
        res->ici_bytes_per_chip += (double)s.ici_bytes;
        res->ici_link_bytes_per_chip += pod_link_bytes(r);
        pod_dcn_add(r, res);
        double busy = st(r, "core", unit_split_stat(UNIT_TIME_COMPUTE)) +
                      st(r, "core", unit_split_stat(UNIT_TIME_MEMORY));
        busy_min = busy < busy_min ? busy : busy_min;
        busy_max = busy > busy_max ? busy : busy_max;
        for (unsigned p = 0; p < UNIT_SPLIT_IDLE; p++) /* idle: the rest of the step, below */
            res->t_split[p] += st(r, "core", unit_split_stat(p));
        energy_result en;
        int rc = energy_eval(c, r, 0, 0, &en, e); /* dynamic only: static follows the step */
        stats_free(r);
        if (rc)
            return -1;
        for (int k = 0; k < ENERGY_CAT_COUNT; k++)
            res->chip_j[k] += en.j[k];
        energy_result_fini(&en);
    }
    /* the sums over the chips simulated become per-chip means */
    double k = 1.0 / nchips;
    double *const sums[] = {
        &res->flops_per_chip, &res->mxu_flops_per_chip, &res->model_flops_per_chip,
        &res->mxu_ideal_ps,   &res->ici_bytes_per_chip, &res->ici_link_bytes_per_chip,
        &res->dcn_ops,        &res->dcn_bytes,          &res->dcn_sent,
        &res->dcn_ps,         &res->dcn_exposed_ps};
    for (size_t i = 0; i < sizeof sums / sizeof sums[0]; i++)
        *sums[i] *= k;
    for (unsigned p = 0; p < UNIT_SPLIT_IDLE; p++)
        res->t_split[p] *= k;
    for (int i = 0; i < ENERGY_CAT_COUNT; i++)
        res->chip_j[i] *= k;
    /* idle: the rest of the step, including the wait of early finishers (full mode) */
    double *split = res->t_split;
    double busy = split[UNIT_TIME_COMPUTE] + split[UNIT_TIME_MEMORY] + split[UNIT_TIME_COMM];
    split[UNIT_SPLIT_IDLE] = (double)res->step_ps > busy ? (double)res->step_ps - busy : 0;
    double step = (double)res->step_ps;
    if (step > 0) {
        res->wait_frac = 1 - (split[UNIT_TIME_COMPUTE] + split[UNIT_TIME_MEMORY]) / step;
        res->wait_frac_min = 1 - busy_max / step;
        res->wait_frac_max = 1 - busy_min / step;
    }
    return 0;
}

/* Pod-level figures from the per-chip averages: exaflops (peak, sustained) and MFU. Every
 * slice is a copy of the simulated one: the pod has slices x chips_slice chips. */
static void pod_derive(const cfg *c, pod_result *res)
{
    res->slices = (unsigned)c->dcn_slices;
    res->chips_slice = res->chips;
    res->chips = res->slices * res->chips_slice;
    /* the DCN unit's closed form (dcn.c) over the all-reduces it ran, one at a time, at the
     * device's share of the chip's DCN bandwidth */
    double S = res->slices, lat_ps = (double)llround(c->dcn_latency_us * 1e6);
    res->dcn_closed_ps =
        S > 1 ? 2 * (S - 1) * (res->dcn_ops * lat_ps + res->dcn_bytes / S * 1e12 / cfg_dcn_bps(c))
              : 0;
    /* The simulated chip is one device; a chip runs devices_per_chip copies of its program
     * (each on its own core and HBM share, and over its share of the chip's ICI links and DCN
     * bandwidth: icinet.c, dcn.c), so a chip's FLOPs, bytes and dynamic energy are theirs
     * summed. */
    unsigned dpc = cfg_devices_per_chip(c);
    res->devices_per_chip = dpc;
    res->devices = (uint64_t)res->chips * dpc;
    res->flops_per_device = res->flops_per_chip;
    res->flops_per_chip *= dpc;
    res->mxu_flops_per_chip *= dpc;
    res->model_flops_per_chip *= dpc;
    res->ici_bytes_per_chip *= dpc;
    res->ici_link_bytes_per_chip *= dpc;
    res->dcn_sent *= dpc; /* dcn_ops, dcn_bytes and the times stay the device's */
    for (int i = 0; i < ENERGY_CAT_COUNT; i++)
        res->chip_j[i] *= dpc;
    for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++)
        res->peak_ef[dt] = res->chips * cfg_chip_peak_flops(c, dt) * 1e-18;
    double step_s = (double)res->step_ps * 1e-12;
    res->sustained_ef = step_s > 0 ? res->chips * res->flops_per_chip / step_s * 1e-18 : 0;
    /* MFU against the peak of the trace's MXU datatype mix: mxu_ideal_ps is the MXU FLOPs at
     * the peak rate of their datatype, so the effective peak is mxu_flops / mxu_ideal_ps. */
    res->mfu_dtype = ISA_DT_BF16;
    double peak_chip = cfg_chip_peak_flops(c, ISA_DT_BF16);
    if (res->mxu_flops_per_chip > 0 && res->mxu_ideal_ps > 0) {
        /* mxu_ideal_ps is one device's; its devices run side by side */
        peak_chip = res->mxu_flops_per_chip / (res->mxu_ideal_ps * 1e-12);
        res->mfu_dtype = -1;
        for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++) {
            double p = cfg_chip_peak_flops(c, dt);
            if (p > 0 && fabs(p - peak_chip) <= 1e-3 * p) {
                res->mfu_dtype = dt;
                peak_chip = p;
                break;
            }
        }
    }
    /* HFU counts every MXU FLOP executed (recomputation included); MFU the model's FLOPs
     * (docs/generators.md, "MFU and HFU"), when the trace states them. */
    res->hfu = step_s > 0 && peak_chip > 0 ? res->mxu_flops_per_chip / step_s / peak_chip : 0;
    res->mfu = res->model_flops_per_chip > 0 && step_s > 0 && peak_chip > 0
                   ? res->model_flops_per_chip / step_s / peak_chip
                   : res->hfu;
    /* Energy per step: each chip's dynamic energy plus static power over the whole step. */
    res->chip_j[ENERGY_STATIC] = c->energy_static_w * step_s;
    res->chip_j_total = 0;
    for (int i = 0; i < ENERGY_CAT_COUNT; i++)
        res->chip_j_total += res->chip_j[i];
    res->chip_w = step_s > 0 ? res->chip_j_total / step_s : 0;
    res->pod_j_per_step = res->chips * res->chip_j_total;
    res->pod_mw = res->chips * res->chip_w * 1e-6;
    res->tflops_per_w = res->chip_j_total > 0 ? res->flops_per_chip / res->chip_j_total * 1e-12 : 0;
}

/* The network's per-collective rows (at most POD_MAX_ROWS) and mismatch count. */
static void pod_copy_rows(const ici_net *net, pod_result *res)
{
    res->mismatches = ici_net_mismatches(net);
    res->nrows = ici_net_nrows(net);
    if (res->nrows > POD_MAX_ROWS)
        res->nrows = POD_MAX_ROWS;
    for (unsigned i = 0; i < res->nrows; i++)
        res->rows[i] = *ici_net_row(net, i);
}

int pod_trace_per_stage(const char *tmpl)
{
    return strstr(tmpl, "{stage}") != NULL;
}

static int pod_estimate_one(const cfg *c, const char *const *traces, unsigned ntraces,
                            const char *topo, ici_mode mode, int lone, pod_result *res, err *e);

/* Symmetric estimates of each stage trace of `tmpl` alone; res is the slowest stage's. */
static int pod_estimate_stages(const cfg *c, const char *tmpl, const char *topo, pod_result *res,
                               err *e)
{
    pod_result *r = malloc(sizeof *r);
    if (!r)
        return err_setk(e, ERR_NOMEM, "pod: out of memory");
    uint64_t steps[64];
    unsigned n = 0;
    int rc = 0;
    memset(res, 0, sizeof *res);
    for (; n < 64 && !rc; n++) {
        char path[sizeof res->trace];
        size_t len = 0;
        const char *k = strstr(tmpl, "{stage}");
        len = (size_t)snprintf(path, sizeof path, "%.*s%u%s", (int)(k - tmpl), tmpl, n, k + 7);
        if (len >= sizeof path) {
            rc = err_set(e, "pod: trace path '%s' too long", tmpl);
            break;
        }
        FILE *f = fopen(path, "rb");
        if (!f)
            break;
        fclose(f);
        const char *one = path;
        if ((rc = pod_estimate_one(c, &one, 1, topo, ICI_MODE_SYMMETRIC, 1, r, e)))
            break;
        steps[n] = r->step_ps;
        if (r->step_ps >= res->step_ps)
            *res = *r;
    }
    if (!rc && !n)
        rc = err_set(e, "pod: no trace '%s' for stage 0", tmpl);
    if (!rc) {
        res->stages = n;
        memcpy(res->stage_step_ps, steps, n * sizeof *steps);
    }
    free(r);
    return rc;
}

int pod_estimate_traces(const cfg *c, const char *const *traces, unsigned ntraces, const char *topo,
                        ici_mode mode, pod_result *res, err *e)
{
    if (mode == ICI_MODE_SYMMETRIC && ntraces == 1 && pod_trace_per_stage(traces[0]))
        return pod_estimate_stages(c, traces[0], topo, res, e);
    return pod_estimate_one(c, traces, ntraces, topo, mode, 0, res, e);
}

static int pod_estimate_one(const cfg *c, const char *const *traces, unsigned ntraces,
                            const char *topo, ici_mode mode, int lone, pod_result *res, err *e)
{
    memset(res, 0, sizeof *res);
    int rc = -1;
    chip **chips = NULL;
    unsigned nchips = 0;
    kern_begin();
    ici_net *net = ici_net_new(c, topo, mode, e);
    if (!net)
        return -1;
    ici_net_set_lone_stage(net, lone);
    if (pod_check_layout(net, traces, ntraces, topo, mode, res, e))
        goto out;
    nchips = mode == ICI_MODE_FULL ? res->chips : 1;
    chips = calloc(nchips, sizeof *chips);
    if (!chips) {
        err_setk(e, ERR_NOMEM, "pod: out of memory");
        goto out;
    }
    if (pod_build_chips(c, net, traces, ntraces, chips, nchips, res, e))
        goto out;
    kern_run(KERN_FOREVER);
    if (pod_finish_chips(chips, nchips, e) || pod_average_chips(c, chips, nchips, res, e))
        goto out;
    pod_derive(c, res);
    pod_copy_rows(net, res);
    rc = 0;
out:
    if (chips)
        for (unsigned i = 0; i < nchips; i++)
            chip_free(chips[i]);
    free(chips);
    ici_net_free(net);
    return rc;
}
