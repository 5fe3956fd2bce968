/* podrep.c - the pod estimate as text and JSON (`tpusim pod`); the figures come from pod.c. */
#include "podrep.h"

#include <stdio.h>
#include <string.h>

#include "fmt.h"
#include "json.h"

static double share(double part, uint64_t step)
{
    return step ? part / (double)step : 0;
}

static const char *mfu_dtype_name(int dt)
{
    return dt < 0 ? "mixed" : isa_dtype_name(dt);
}

void pod_report_text(FILE *out, const cfg *c, const pod_view *o, const pod_result *r)
{
    char b1[32], b2[32];
    fprintf(out, "tpusim pod: %s%s%s%s, trace %s", c->chip_name, c->source[0] ? " (" : "",
            c->source, c->source[0] ? ")" : "", r->trace);
    if (o->per_chip_traces)
        fprintf(out, " (chip 0 of %u per-chip traces)", r->chips);
    fprintf(out, "\n");
    if (o->nscaling && o->strong)
        fprintf(out,
                "note: strong scaling - each chip count runs its own trace (%s); they scale "
                "a fixed model only if generated for one.\n",
                o->trace);
    else if (o->nscaling)
        fprintf(out, "note: weak scaling - every chip runs the trace's per-chip work unchanged; "
                     "use {chips} in the trace name for one trace per chip count.\n");
    fprintf(out, "topology        %s, %u chips%s", r->desc,
            r->slices > 1 ? r->chips_slice : r->chips, r->slices > 1 ? " per slice" : "");
    if (r->devices_per_chip > 1)
        fprintf(out, " = %llu devices (%u per chip; the trace is one device's program)",
                (unsigned long long)(r->slices > 1 ? r->chips_slice : r->chips) *
                    r->devices_per_chip,
                r->devices_per_chip);
    fprintf(out, ", %s\n",
            o->mode == ICI_MODE_FULL ? "full mode (every chip simulated)"
                                     : "symmetric mode (one representative chip)");
    if (r->slices > 1)
        fprintf(out,
                "slices          %u x %u chips = %u chips, data parallel over the data-centre "
                "network (%.4g GB/s per chip each way, %.4g us per transfer)\n",
                r->slices, r->chips_slice, r->chips, c->dcn_gbs, c->dcn_latency_us);
    fprintf(out, "peak            ");
    for (int dt = 0, first = 1; dt < ISA_DTYPE_COUNT; dt++)
        if (r->peak_ef[dt] > 0) {
            fprintf(out, "%s%.4g EF %s", first ? "" : ", ", r->peak_ef[dt], isa_dtype_name(dt));
            first = 0;
        }
    fprintf(out, "\n");
    fmt_time_fixed(b1, sizeof b1, (double)r->step_ps);
    fprintf(out, "step time       %s\n", b1);
    if (r->model_flops_per_chip > 0)
        fprintf(out,
                "sustained       %.4g EF (all FLOPs); MFU %.1f%% (model FLOPs), HFU %.1f%% "
                "(MXU FLOPs executed) of %s peak\n",
                r->sustained_ef, r->mfu * 100, r->hfu * 100, mfu_dtype_name(r->mfu_dtype));
    else
        fprintf(out, "sustained       %.4g EF (all FLOPs); MFU %.1f%% of %s peak (MXU FLOPs)\n",
                r->sustained_ef, r->mfu * 100, mfu_dtype_name(r->mfu_dtype));
    fprintf(out,
            "time split      compute %.1f%%  memory-bound %.1f%%  exposed comm %.1f%%  "
            "idle %.1f%%\n",
            share(r->t_split[UNIT_TIME_COMPUTE], r->step_ps) * 100,
            share(r->t_split[UNIT_TIME_MEMORY], r->step_ps) * 100,
            share(r->t_split[UNIT_TIME_COMM], r->step_ps) * 100,
            share(r->t_split[UNIT_SPLIT_IDLE], r->step_ps) * 100);
    if (r->stages) {
        fprintf(out, "stages          %u, each alone (receives never wait: no bubble); step",
                r->stages);
        for (unsigned i = 0; i < r->stages; i++)
            fprintf(out, " %.3f", (double)r->stage_step_ps[i] * 1e-9);
        fprintf(out, " ms; the slowest is reported\n");
    }
    if (r->wait_frac_max - r->wait_frac_min > 1e-3) /* chips differ: pipeline stages */
        fprintf(out,
                "waiting         %.1f%% of the step per chip (1 - busy/step; pipeline bubble), "
                "%.1f%% to %.1f%%\n",
                r->wait_frac * 100, r->wait_frac_min * 100, r->wait_frac_max * 100);
    fprintf(out,
            "energy          %.4g J per chip per step (static %.1f%%), %.4g W per chip; "
            "%.4g TFLOP/s per W\n",
            r->chip_j_total,
            r->chip_j_total > 0 ? r->chip_j[ENERGY_STATIC] / r->chip_j_total * 100 : 0, r->chip_w,
            r->tflops_per_w);
    fprintf(out, "pod power       %.4g MW; %.4g MJ per step (%u chips)\n", r->pod_mw,
            r->pod_j_per_step * 1e-6, r->chips);
    if (r->mismatches)
        fprintf(out,
                "warning: %llu collectives differed in kind or size between the chips of a "
                "group; the operands of the first chip to arrive were used\n",
                (unsigned long long)r->mismatches);
    fmt_bytes_fixed(b1, sizeof b1, r->ici_link_bytes_per_chip);
    fmt_bytes_fixed(b2, sizeof b2, r->ici_bytes_per_chip);
    fprintf(out, "ICI             %s per chip sent on links (instruction bytes %s)", b1, b2);
    if (r->devices_per_chip > 1)
        fprintf(out, "; its %u devices share the links, 1/%u of each per device",
                r->devices_per_chip, r->devices_per_chip);
    fprintf(out, "\n");
    if (r->slices > 1) {
        char b3[32], b4[32];
        fmt_bytes_fixed(b1, sizeof b1, r->dcn_bytes);
        fmt_time_fixed(b2, sizeof b2, r->dcn_ps);
        fmt_time_fixed(b3, sizeof b3, r->dcn_closed_ps);
        fmt_time_fixed(b4, sizeof b4, r->dcn_exposed_ps);
        fprintf(out,
                "DCN             %.0f all-reduces of %s per %s across the slices: %s in flight "
                "(%.1f%% of the step; closed form 2(S-1)(lat + B/(S bw)): %s), exposed %s "
                "(%.1f%% of the step)\n",
                r->dcn_ops, b1, r->devices_per_chip > 1 ? "device" : "chip", b2,
                share(r->dcn_ps, r->step_ps) * 100, b3, b4,
                share(r->dcn_exposed_ps, r->step_ps) * 100);
    }
    if (r->nrows) {
        fprintf(out, "collectives (chip 0)\n");
        fprintf(out, "  %-14s %-4s %-56s %7s %12s %12s %12s\n", "kind", "axes", "algorithm",
                "count", "bytes", "time", "bus GB/s");
        for (unsigned i = 0; i < r->nrows; i++) {
            const ici_row *w = &r->rows[i];
            char ax[4];
            fmt_bytes_fixed(b1, sizeof b1, (double)w->bytes);
            fmt_time_fixed(b2, sizeof b2, (double)w->time_ps);
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

void pod_report_scaling_text(FILE *out, const pod_result *s, unsigned n, int strong)
{
    fprintf(out, "scaling (%s)\n",
            strong ? "strong: one trace per chip count" : "weak: fixed per-chip trace");
    fprintf(out, "  %8s %-12s %12s %14s %8s %11s %11s\n", "chips", "topology", "step time",
            "sustained EF", "MFU", "comm share", "efficiency");
    for (unsigned i = 0; i < n; i++) {
        char b[32];
        fmt_time_fixed(b, sizeof b, (double)s[i].step_ps);
        fprintf(out, "  %8u %-12s %12s %14.4g %7.1f%% %10.1f%% %10.1f%%\n", s[i].chips, s[i].topo,
                b, s[i].sustained_ef, s[i].mfu * 100,
                share(s[i].t_split[UNIT_TIME_COMM], s[i].step_ps) * 100,
                efficiency(s, i, strong) * 100);
    }
}

static void json_result_core(json_w *w, const pod_result *r)
{
    json_u64(w, "chips", r->chips);
    json_u64(w, "devices", r->devices);
    json_u64(w, "devices_per_chip", r->devices_per_chip);
    json_str(w, "topology", r->topo);
    json_num(w, "step_time_s", (double)r->step_ps * 1e-12);
    json_num(w, "sustained_exaflops", r->sustained_ef);
    json_num(w, "mfu", r->mfu);
    json_num(w, "comm_share", share(r->t_split[UNIT_TIME_COMM], r->step_ps));
}

int pod_report_json(const char *path, const cfg *c, const pod_view *o, const pod_result *r,
                    const pod_result *sc, unsigned nsc, err *e)
{
    json_w w;
    if (json_open(&w, path, e))
        return -1;
    json_obj_begin(&w, NULL);
    json_str(&w, "schema", "tpusim.pod/1");
    json_str(&w, "tool", "tpusim pod");
    json_str(&w, "chip", c->chip_name);
    json_str(&w, "config", o->prov ? o->prov->config : c->source);
    json_str(&w, "config_path", c->source);
    json_str(&w, "trace", r->trace);
    json_str(&w, "mode", o->mode == ICI_MODE_FULL ? "full" : "symmetric");
    json_bool(&w, "per_chip_traces", o->per_chip_traces);
    json_bool(&w, "weak_scaling", !o->strong);
    json_str(&w, "scaling_kind", o->strong ? "strong" : "weak");
    json_result_core(&w, r);
    if (r->stages) {
        json_arr_begin(&w, "stage_step_time_s");
        for (unsigned i = 0; i < r->stages; i++)
            json_num(&w, NULL, (double)r->stage_step_ps[i] * 1e-12);
        json_arr_end(&w);
    }
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
    json_num(&w, "flops_per_device", r->flops_per_device);
    json_num(&w, "mxu_flops_per_chip", r->mxu_flops_per_chip);
    json_num(&w, "model_flops_per_chip", r->model_flops_per_chip);
    json_num(&w, "hfu", r->hfu);
    json_num(&w, "ici_bytes_per_chip", r->ici_bytes_per_chip);
    json_num(&w, "ici_link_bytes_per_chip", r->ici_link_bytes_per_chip);
    json_u64(&w, "collective_mismatches", r->mismatches);
    if (r->slices > 1) { /* several slices only: one slice's document is unchanged */
        json_obj_begin(&w, "dcn");
        json_u64(&w, "slices", r->slices);
        json_u64(&w, "chips_per_slice", r->chips_slice);
        json_num(&w, "gbs_per_chip", c->dcn_gbs);
        json_num(&w, "latency_s", c->dcn_latency_us * 1e-6);
        json_num(&w, "allreduces_per_chip", r->dcn_ops);
        json_num(&w, "bytes_per_chip", r->dcn_bytes);
        json_num(&w, "sent_bytes_per_chip", r->dcn_sent);
        json_num(&w, "time_s", r->dcn_ps * 1e-12);
        json_num(&w, "closed_form_s", r->dcn_closed_ps * 1e-12);
        json_num(&w, "share", share(r->dcn_ps, r->step_ps));
        json_num(&w, "exposed_s", r->dcn_exposed_ps * 1e-12);
        json_num(&w, "exposed_share", share(r->dcn_exposed_ps, r->step_ps));
        json_obj_end(&w);
    }
    json_obj_begin(&w, "energy");
    json_num(&w, "chip_j_per_step", r->chip_j_total);
    for (int i = 0; i < ENERGY_CAT_COUNT; i++) {
        char k[32];
        snprintf(k, sizeof k, "chip_%s_j", energy_cat_name((energy_cat)i));
        json_num(&w, k, r->chip_j[i]);
    }
    json_num(&w, "chip_w", r->chip_w);
    json_num(&w, "pod_mw", r->pod_mw);
    json_num(&w, "pod_j_per_step", r->pod_j_per_step);
    json_num(&w, "tflops_per_w", r->tflops_per_w);
    json_obj_end(&w);
    json_obj_begin(&w, "time_split");
    char key[32];
    for (unsigned k = 0; k < UNIT_SPLIT_COUNT; k++) {
        snprintf(key, sizeof key, "%s_s", unit_split_name(k));
        json_num(&w, key, r->t_split[k] * 1e-12);
    }
    for (unsigned k = 0; k < UNIT_SPLIT_COUNT; k++) {
        snprintf(key, sizeof key, "%s_share", unit_split_name(k));
        json_num(&w, key, share(r->t_split[k], r->step_ps));
    }
    if (r->wait_frac_max - r->wait_frac_min > 1e-3) {
        json_num(&w, "wait_share", r->wait_frac);
        json_num(&w, "wait_share_min", r->wait_frac_min);
        json_num(&w, "wait_share_max", r->wait_frac_max);
    }
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
        json_num(&w, "efficiency", nsc ? efficiency(sc, i, o->strong) : 1.0);
        json_obj_end(&w);
    }
    json_arr_end(&w);
    if (o->prov)
        prov_json(o->prov, &w, r->topo);
    json_obj_end(&w);
    return json_close(&w, e);
}
