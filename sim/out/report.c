/* report.c - turns a finished chip's counters into the run report (text, JSON, CSV).
 *
 * Definitions (docs/report-schema.md):
 *   time        = completion of the last instruction;  cycles = time / cycle
 *   TFLOP/s     = (MXU + vector FLOPs) / time
 *   MXU util    = mean over MXUs (units of the unit table's matrix kinds) of busy time / time
 *   MAC util    = MXU FLOPs at their datatype's peak rate / time (= achieved / peak)
 *   roofline    = max(MXU FLOPs at peak rate, HBM bytes / HBM peak bandwidth): no replay
 *                 can be faster than this bound, so bound / time <= 1 always holds. */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "fmt.h"
#include "json.h"
#include "prov.h"
#include "units.h"

static double safe_div(double a, double b)
{
    return b > 0 ? a / b : 0.0;
}

int report_build(report *r, chip *ch, const stats_reg *stats, const char *trace_path,
                 const char *config_path, err *e)
{
    const cfg *c = chip_cfg(ch);
    core *co = chip_core(ch);
    const core_region *t = core_total(co);
    memset(r, 0, sizeof *r);
    r->stats = stats;
    snprintf(r->chip, sizeof r->chip, "%s", c->chip_name);
    snprintf(r->trace, sizeof r->trace, "%s", trace_path);
    snprintf(r->config, sizeof r->config, "%s", config_path ? config_path : "");
    r->clock_ghz = c->chip_clock_ghz;
    r->cycle_ps = cfg_cycle_ps(c);
    r->end_ps = core_end_ps(co);
    r->cycles = (uint64_t)(r->end_ps / r->cycle_ps + 0.5);
    r->insns = core_insns(co);
    r->flops = t->flops;
    r->mxu_flops = t->mxu_flops;
    r->vpu_flops = t->flops - t->mxu_flops;
    r->hbm_bytes = t->hbm_bytes;
    r->ici_bytes = t->ici_bytes;
    r->mxu_ideal_ps = t->mxu_ideal_ps;
    r->seconds = r->end_ps * 1e-12;
    r->tflops = safe_div(r->flops, r->seconds) * 1e-12;
    r->peak_tflops_bf16 = cfg_peak_flops(c, ISA_DT_BF16) * 1e-12;
    for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++)
        r->peak_tflops[dt] = cfg_peak_flops(c, (isa_dtype)dt) * 1e-12;
    r->mac_util = safe_div((double)r->mxu_ideal_ps, (double)r->end_ps);
    double hbm_peak = cfg_hbm_peak_bps(c);
    r->hbm_peak_gbs = hbm_peak * 1e-9;
    r->hbm_gbs = safe_div(r->hbm_bytes, r->seconds) * 1e-9;
    r->hbm_util = safe_div(r->hbm_gbs, r->hbm_peak_gbs);
    r->intensity = safe_div(r->mxu_flops, r->hbm_bytes);
    /* Ridge point of the dominant datatype: peak FLOP/s over peak bytes/s. The effective
     * peak of a mixed-dtype trace is mxu_flops / mxu_ideal_ps. */
    double eff_peak =
        r->mxu_ideal_ps ? r->mxu_flops / (r->mxu_ideal_ps * 1e-12) : cfg_peak_flops(c, ISA_DT_BF16);
    r->ridge = safe_div(eff_peak, hbm_peak);
    static const char mkey[] = " # model FLOPs per chip: ";
    const char *note = chip_trace_note(ch), *mf = note ? strstr(note, mkey) : NULL;
    r->model_flops = mf ? strtod(mf + sizeof mkey - 1, NULL) : 0;
    r->mfu = safe_div(r->model_flops, r->seconds * eff_peak);
    r->hfu = safe_div(r->mxu_flops, r->seconds * eff_peak);
    double mem_ps = safe_div((double)r->hbm_bytes, hbm_peak) * 1e12;
    r->bound_ps = mem_ps > r->mxu_ideal_ps ? mem_ps : (double)r->mxu_ideal_ps;
    r->bound_by = mem_ps > r->mxu_ideal_ps ? "memory" : "compute";
    r->roofline_tflops =
        r->hbm_bytes
            ? (r->intensity * hbm_peak < eff_peak ? r->intensity * hbm_peak : eff_peak) * 1e-12
            : eff_peak * 1e-12;
    r->bound_frac = safe_div(r->bound_ps, (double)r->end_ps);
    for (unsigned k = 0; k < UNIT_SPLIT_COUNT; k++)
        r->t_split_ps[k] = (uint64_t)stats_get(stats, "core", unit_split_stat(k), 0);
    r->dispatch_stall_ps = core_dispatch_stall_ps(co);

    unsigned nmxu = 0;
    double mxu_busy = 0;
    r->units = calloc(core_unit_count(co) ? core_unit_count(co) : 1, sizeof *r->units);
    if (!r->units)
        return err_set(e, "out of memory");
    for (unsigned s = 0; s < core_unit_count(co); s++) {
        unit *u = core_unit_at(co, s);
        if (!u)
            continue;
        report_unit *ru = &r->units[r->nunits++];
        const core_unit_stats *cs = core_unit_stat(co, s);
        snprintf(ru->name, sizeof ru->name, "%s", u->name);
        ru->kind = u->kind ? u->kind->name : "?";
        ru->time = u->kind ? unit_time_name(u->kind->time) : "?";
        ru->traffic = !u->kind                               ? "?"
                      : u->kind->traffic == UNIT_TRAFFIC_HBM ? "hbm"
                      : u->kind->traffic == UNIT_TRAFFIC_ICI ? "ici"
                      : u->kind->traffic == UNIT_TRAFFIC_DCN ? "dcn"
                                                             : "none";
        ru->insns = u->insns;
        ru->busy_ps = u->busy_ps;
        ru->busy_cycles = u->busy_ps / r->cycle_ps;
        ru->flops = u->flops;
        ru->bytes = u->bytes;
        ru->stall_sem_ps = cs->stall_sem_ps;
        ru->stall_qfull_ps = cs->stall_qfull_ps;
        ru->stall_vmem_ps = u->stall_vmem_ps;
        ru->stall_hbm_ps = u->stall_hbm_ps;
        ru->util = safe_div((double)u->busy_ps, (double)r->end_ps);
        if (u->kind && u->kind->matrix) {
            nmxu++;
            mxu_busy += ru->util;
        }
    }
    r->mxu_util = nmxu ? mxu_busy / nmxu : 0;

    unsigned nreg;
    const core_region *cr = core_regions(co, &nreg);
    r->regions = calloc(nreg ? nreg : 1, sizeof *r->regions);
    if (!r->regions)
        return err_setk(e, ERR_NOMEM, "out of memory");
    for (unsigned i = 0; i < nreg; i++) {
        if (!cr[i].insns)
            continue;
        report_region *rr = &r->regions[r->nregions++];
        rr->name = cr[i].name;
        rr->index = i;
        rr->insns = cr[i].insns;
        rr->flops = cr[i].flops;
        rr->mxu_flops = cr[i].mxu_flops;
        rr->hbm_bytes = cr[i].hbm_bytes;
        rr->ici_bytes = cr[i].ici_bytes;
        rr->start_ps = cr[i].first_start_ps == UINT64_MAX ? 0 : cr[i].first_start_ps;
        rr->end_ps = cr[i].last_end_ps;
        double span = rr->end_ps > rr->start_ps ? (rr->end_ps - rr->start_ps) * 1e-12 : 0;
        rr->tflops = safe_div(rr->flops, span) * 1e-12;
        rr->intensity = safe_div(rr->mxu_flops, rr->hbm_bytes);
        double rmem = safe_div((double)rr->hbm_bytes, hbm_peak) * 1e12;
        rr->bound_ps = rmem > cr[i].mxu_ideal_ps ? rmem : (double)cr[i].mxu_ideal_ps;
    }
    return 0;
}

void report_fini(report *r)
{
    free(r->units);
    r->units = NULL;
    free(r->regions);
    r->regions = NULL;
}

/* part as a percentage of whole, in floating point: 100 * part in uint64 arithmetic wraps
 * once part passes 2^64 / 100 ps (about 51 hours of simulated time). */
static double pct(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* Energy: totals by unit, power, efficiency, cap; then energy by region (J), when metered. */
static void report_energy_text(const report *r, FILE *out)
{
    const energy_result *en = r->energy;
    if (!en)
        return;
    fprintf(out, "  energy          %.4g J: ", en->total_j);
    for (int i = 0, first = 1; i < ENERGY_CAT_COUNT; i++)
        if (en->j[i] > 0 || i == ENERGY_STATIC) {
            fprintf(out, "%s%s %.4g", first ? "" : ", ", energy_cat_name((energy_cat)i), en->j[i]);
            first = 0;
        }
    fprintf(out,
            "\n  power           average %.4g W, peak %.4g W over %.3g us windows; %.4g "
            "TFLOP/s per W\n",
            en->avg_w, en->peak_w, en->window_s * 1e6, en->tflops_per_w);
    if (en->tokens > 0)
        fprintf(out, "  tokens          %.6g (trace note), %.4g tokens per J\n", en->tokens,
                en->tokens_per_j);
    if (en->tdp_w > 0 && en->windows_over) {
        fprintf(out, "  power cap       %" PRIu64 " of %" PRIu64 " windows over chip.tdp_w %.4g W",
                en->windows_over, en->windows, en->tdp_w);
        if (en->throttle)
            fprintf(out, "; throttled: %.4g ms -> %.4g ms (x%.4f), %.4g J, clock scale >= %.3f\n",
                    en->seconds * 1e3, en->throttled_s * 1e3,
                    en->seconds > 0 ? en->throttled_s / en->seconds : 1, en->throttled_j,
                    en->min_clock_scale);
        else
            fprintf(out, " (energy.throttle: false, not applied)\n");
    }
}

/* Joules of the core's region i, or a negative value when not metered. */
static double region_j(const report *r, unsigned i)
{
    if (!r->energy || i >= r->energy->nregions)
        return -1;
    double s = 0;
    for (int k = 0; k < ENERGY_CAT_COUNT; k++)
        s += r->energy->region_j[i][k];
    return s;
}

/* "hbm 62.1%, mxu 20.0%, ...": the shares over 0.05%, largest first. */
static void report_shares_text(const limiter_shares *s, FILE *out)
{
    int done[LIMITER_COUNT] = {0};
    for (int n = 0; n < LIMITER_COUNT; n++) {
        int best = -1;
        for (int k = 0; k < LIMITER_COUNT; k++)
            if (!done[k] && (best < 0 || s->ps[k] > s->ps[best]))
                best = k;
        done[best] = 1;
        double f = limiter_fraction(s, (limiter_res)best);
        if (f < 0.0005)
            break;
        fprintf(out, "%s%s %.1f%%", n ? ", " : "", limiter_name((limiter_res)best), 100 * f);
    }
}

static void report_shares_json(json_w *w, const limiter_shares *s)
{
    json_str(w, "limiter", limiter_name(limiter_pick(s)));
    json_obj_begin(w, "limiter_shares");
    for (int k = 0; k < LIMITER_COUNT; k++)
        json_num(w, limiter_name((limiter_res)k), limiter_fraction(s, (limiter_res)k));
    json_obj_end(w);
}

void report_text(const report *r, FILE *out)
{
    char t[32], b[32];
    fmt_time(t, sizeof t, (double)r->end_ps);
    fprintf(out, "tpusim report: %s on %s (%s)\n", r->trace, r->chip,
            r->config[0] ? r->config : "defaults");
    fprintf(out, "  time            %s  (%" PRIu64 " cycles at %.3g GHz)\n", t, r->cycles,
            r->clock_ghz);
    fprintf(out, "  instructions    %" PRIu64 "\n", r->insns);
    fprintf(out, "  FLOPs           %.6g  (MXU %.6g, vector %.6g)\n", (double)r->flops,
            (double)r->mxu_flops, (double)r->vpu_flops);
    /* The bf16 peak, or, on a machine without bf16 MXU work, the peaks it has. */
    fprintf(out, "  achieved        %.2f TFLOP/s  (peak", r->tflops);
    for (int dt = 0, n = 0; dt < ISA_DTYPE_COUNT; dt++)
        if (r->peak_tflops[dt] > 0 && (r->peak_tflops_bf16 > 0 ? dt == ISA_DT_BF16 : 1))
            fprintf(out, "%s %s %.1f", n++ ? "," : "", isa_dtype_name(dt), r->peak_tflops[dt]);
    fprintf(out, " TFLOP/s)\n");
    fprintf(out, "  MXU utilisation %.1f%% busy, %.1f%% of peak MACs\n", 100 * r->mxu_util,
            100 * r->mac_util);
    if (r->model_flops > 0)
        fprintf(out,
                "  MFU, HFU        %.1f%%, %.1f%% (model FLOPs %.6g from the trace note; MXU "
                "FLOPs executed)\n",
                100 * r->mfu, 100 * r->hfu, r->model_flops);
    fmt_bytes(b, sizeof b, (double)r->hbm_bytes);
    fprintf(out, "  HBM             %s moved, %.1f GB/s of %.1f GB/s peak (%.1f%%)\n", b,
            r->hbm_gbs, r->hbm_peak_gbs, 100 * r->hbm_util);
    /* A memory-bound run's ceiling is HBM bandwidth; in TFLOP/s it would read 0 for a
     * trace without MXU FLOPs, so state it as a bandwidth and the time it allows. */
    if (strcmp(r->bound_by, "memory") == 0)
        fprintf(out,
                "  roofline        intensity %.3g FLOP/B (ridge %.3g): memory-bound, bound "
                "%.1f GB/s HBM (>= %.1f us); run reaches %.1f%% of the bound\n",
                r->intensity, r->ridge, r->hbm_peak_gbs, r->bound_ps * 1e-6, 100 * r->bound_frac);
    else
        fprintf(out,
                "  roofline        intensity %.3g FLOP/B (ridge %.3g): compute-bound, bound "
                "%.2f TFLOP/s; run reaches %.1f%% of the bound\n",
                r->intensity, r->ridge, r->roofline_tflops, 100 * r->bound_frac);
    if (r->ici_bytes) {
        fmt_bytes(b, sizeof b, (double)r->ici_bytes);
        fprintf(out, "  ICI             %s sent\n", b);
    }
    fprintf(out,
            "  time split      compute %.1f%%, memory-only %.1f%%, exposed comm %.1f%%, "
            "idle %.1f%%\n",
            pct(r->t_split_ps[UNIT_TIME_COMPUTE], r->end_ps),
            pct(r->t_split_ps[UNIT_TIME_MEMORY], r->end_ps),
            pct(r->t_split_ps[UNIT_TIME_COMM], r->end_ps),
            pct(r->t_split_ps[UNIT_SPLIT_IDLE], r->end_ps));
    if (r->lim) {
        const limiter_shares *ls = limiter_total(r->lim);
        fprintf(out, "  limiter         %s (time by limiter: ", limiter_name(limiter_pick(ls)));
        report_shares_text(ls, out);
        fprintf(out, ")\n");
    }
    fprintf(out, "\n  %-8s %10s %14s %6s %10s %10s %10s %10s\n", "unit", "insns", "busy cycles",
            "util", "stall:sem", "queue", "vmem", "hbm");
    for (unsigned i = 0; i < r->nunits; i++) {
        const report_unit *u = &r->units[i];
        fprintf(out, "  %-8s %10" PRIu64 " %14.0f %5.1f%% %10.0f %10.0f %10.0f %10.0f\n", u->name,
                u->insns, u->busy_cycles, 100 * u->util, u->stall_sem_ps / r->cycle_ps,
                u->stall_qfull_ps / r->cycle_ps, u->stall_vmem_ps / r->cycle_ps,
                u->stall_hbm_ps / r->cycle_ps);
    }
    fprintf(out, "  (stalls in cycles: semaphore wait at the queue head, dispatcher blocked on "
                 "a full queue, VMEM and HBM bandwidth)\n");
    report_energy_text(r, out);
    if (r->nregions > 1 || (r->nregions == 1 && strcmp(r->regions[0].name, "(start)"))) {
        fprintf(out, "\n  %-28s %10s %12s %10s %12s %8s %10s  %s\n", "region", "insns", "time",
                "TFLOP/s", "HBM bytes", "FLOP/B", "energy J", "limiter");
        for (unsigned i = 0; i < r->nregions; i++) {
            const report_region *g = &r->regions[i];
            fmt_time(t, sizeof t, (double)(g->end_ps - g->start_ps));
            fmt_bytes(b, sizeof b, (double)g->hbm_bytes);
            const limiter_shares *ls = r->lim ? limiter_region(r->lim, g->index) : NULL;
            fprintf(out, "  %-28s %10" PRIu64 " %12s %10.2f %12s %8.3g %10.4g  ", g->name, g->insns,
                    t, g->tflops, b, g->intensity, region_j(r, g->index));
            if (ls) {
                limiter_res lr = limiter_pick(ls);
                fprintf(out, "%s %.0f%%", limiter_name(lr), 100 * limiter_fraction(ls, lr));
            }
            fputc('\n', out);
        }
    }
}

/* What report_json writes of the report, a unit and a region, in order (json_fields): the
 * member, its JSON key, and how it is read (U uint64_t, N double, S const char *). */
#define U(T, m, k)                  JSON_FIELD(T, m, k, JSON_F_U64)
#define N(T, m, k)                  JSON_FIELD(T, m, k, JSON_F_NUM)
#define S(T, m, k)                  JSON_FIELD(T, m, k, JSON_F_STR)
#define JSON_FIELDS(w, base, table) json_fields(w, base, table, sizeof table / sizeof table[0])
// clang-format off
static const json_field summary_fields[] = {
    U(report, end_ps, "time_ps"), N(report, seconds, "time_s"), U(report, cycles, "cycles"),
    U(report, insns, "instructions"), U(report, flops, "flops"), U(report, mxu_flops, "mxu_flops"),
    U(report, vpu_flops, "vector_flops"), N(report, tflops, "tflops"),
    N(report, peak_tflops_bf16, "peak_tflops_bf16")};
static const json_field summary_util_fields[] = {
    N(report, mxu_util, "mxu_util"), N(report, mac_util, "mac_util"),
    U(report, hbm_bytes, "hbm_bytes"), N(report, hbm_gbs, "hbm_gbs"),
    N(report, hbm_peak_gbs, "hbm_peak_gbs"), N(report, hbm_util, "hbm_util"),
    U(report, ici_bytes, "ici_bytes")};
static const json_field roofline_fields[] = {
    N(report, intensity, "intensity_flop_per_byte"), N(report, ridge, "ridge_flop_per_byte"),
    N(report, roofline_tflops, "bound_tflops"), N(report, bound_ps, "bound_time_ps"),
    N(report, bound_frac, "fraction_of_bound"), S(report, bound_by, "bound_by")};
static const json_field unit_fields[] = {
    JSON_FIELD(report_unit, name, "name", JSON_F_CHARS), S(report_unit, kind, "kind"),
    S(report_unit, time, "time_class"), S(report_unit, traffic, "traffic"),
    U(report_unit, insns, "instructions"), U(report_unit, busy_ps, "busy_ps"),
    N(report_unit, busy_cycles, "busy_cycles"), N(report_unit, util, "util"),
    U(report_unit, flops, "flops"), U(report_unit, bytes, "bytes"),
    JSON_FIELD_OBJ("stall_ps"),
    U(report_unit, stall_sem_ps, "semaphore"), U(report_unit, stall_qfull_ps, "queue_full"),
    U(report_unit, stall_vmem_ps, "vmem_bandwidth"), U(report_unit, stall_hbm_ps, "hbm_bandwidth"),
    JSON_FIELD_END};
static const json_field region_fields[] = {
    S(report_region, name, "name"), U(report_region, insns, "instructions"),
    U(report_region, start_ps, "start_ps"), U(report_region, end_ps, "end_ps"),
    U(report_region, flops, "flops"), U(report_region, mxu_flops, "mxu_flops"),
    U(report_region, hbm_bytes, "hbm_bytes"), U(report_region, ici_bytes, "ici_bytes"),
    N(report_region, tflops, "tflops"), N(report_region, intensity, "intensity_flop_per_byte"),
    N(report_region, bound_ps, "bound_time_ps")};
// clang-format on
#undef U
#undef N
#undef S

int report_json(const report *r, const char *path, err *e)
{
    json_w w;
    if (json_open(&w, path, e))
        return -1;
    json_obj_begin(&w, NULL);
    json_str(&w, "schema", "tpusim.run/1");
    json_str(&w, "trace", r->trace);
    json_str(&w, "config", r->prov ? r->prov->config : r->config);
    json_str(&w, "config_path", r->config);
    json_str(&w, "chip", r->chip);
    json_num(&w, "clock_ghz", r->clock_ghz);
    json_obj_begin(&w, "summary");
    JSON_FIELDS(&w, r, summary_fields);
    json_obj_begin(&w, "peak_tflops");
    for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++)
        if (r->peak_tflops[dt] > 0)
            json_num(&w, isa_dtype_name(dt), r->peak_tflops[dt]);
    json_obj_end(&w);
    JSON_FIELDS(&w, r, summary_util_fields);
    if (r->lim)
        report_shares_json(&w, limiter_total(r->lim));
    json_obj_end(&w);
    json_obj_begin(&w, "roofline");
    JSON_FIELDS(&w, r, roofline_fields);
    json_obj_end(&w);
    json_obj_begin(&w, "time_split_ps");
    for (unsigned k = 0; k < UNIT_SPLIT_COUNT; k++)
        json_u64(&w, unit_split_name(k), r->t_split_ps[k]);
    json_u64(&w, "dispatch_stall", r->dispatch_stall_ps);
    json_obj_end(&w);
    json_arr_begin(&w, "units");
    for (unsigned i = 0; i < r->nunits; i++) {
        json_obj_begin(&w, NULL);
        JSON_FIELDS(&w, &r->units[i], unit_fields);
        json_obj_end(&w);
    }
    json_arr_end(&w);
    json_arr_begin(&w, "regions");
    for (unsigned i = 0; i < r->nregions; i++) {
        const report_region *g = &r->regions[i];
        json_obj_begin(&w, NULL);
        JSON_FIELDS(&w, g, region_fields);
        if (r->lim)
            report_shares_json(&w, limiter_region(r->lim, g->index));
        if (r->energy && g->index < r->energy->nregions) {
            json_num(&w, "energy_j", region_j(r, g->index));
            json_obj_begin(&w, "energy_by_unit_j");
            for (int k = 0; k < ENERGY_CAT_COUNT; k++)
                json_num(&w, energy_cat_name((energy_cat)k), r->energy->region_j[g->index][k]);
            json_obj_end(&w);
        }
        json_obj_end(&w);
    }
    json_arr_end(&w);
    json_obj_begin(&w, "counters");
    for (size_t i = 0; i < stats_count(r->stats); i++) {
        const stats_entry *s = stats_at(r->stats, i);
        char key[80];
        snprintf(key, sizeof key, "%s.%s", s->group, s->name);
        /* A counter is an integer and prints exactly (a double keeps only 53 bits, and
         * %.10g only ten digits); a formula is a real number. */
        if (s->value)
            json_u64(&w, key, *s->value);
        else
            json_num(&w, key, stats_value(s));
    }
    json_obj_end(&w);
    if (r->prov)
        prov_json(r->prov, &w, NULL);
    json_obj_end(&w);
    return json_close(&w, e);
}

int report_csv(const report *r, const char *path, err *e)
{
    ofile *of;
    if (ofile_open(&of, path, e))
        return -1;
    FILE *f = ofile_stream(of);
    if (r->prov)
        prov_csv(r->prov, f);
    fprintf(f, "row,name,kind,instructions,start_ps,end_ps,busy_ps,util,flops,bytes,"
               "stall_sem_ps,stall_queue_ps,stall_vmem_ps,stall_hbm_ps,tflops\n");
    fputs("total,", f);
    fmt_csv_field(f, r->chip, 0);
    fprintf(f,
            ",chip,%" PRIu64 ",0,%" PRIu64 ",%" PRIu64 ",%.6g,%" PRIu64 ",%" PRIu64
            ",0,0,0,0,%.6g\n",
            r->insns, r->end_ps, r->end_ps, r->mac_util, r->flops, r->hbm_bytes, r->tflops);
    for (unsigned i = 0; i < r->nunits; i++) {
        const report_unit *u = &r->units[i];
        fputs("unit,", f);
        fmt_csv_field(f, u->name, 0);
        fputc(',', f);
        fmt_csv_field(f, u->kind, 0);
        fprintf(f,
                ",%" PRIu64 ",0,%" PRIu64 ",%" PRIu64 ",%.6g,%" PRIu64 ",%" PRIu64 ",%" PRIu64
                ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",\n",
                u->insns, r->end_ps, u->busy_ps, u->util, u->flops, u->bytes, u->stall_sem_ps,
                u->stall_qfull_ps, u->stall_vmem_ps, u->stall_hbm_ps);
    }
    for (unsigned i = 0; i < r->nregions; i++) {
        const report_region *g = &r->regions[i];
        fputs("region,", f);
        fmt_csv_field(f, g->name, 1); /* region names are always quoted, as before */
        fprintf(f,
                ",region,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",,%" PRIu64 ",%" PRIu64
                ",,,,,%.6g\n",
                g->insns, g->start_ps, g->end_ps, g->end_ps - g->start_ps, g->flops, g->hbm_bytes,
                g->tflops);
    }
    return ofile_close(of, e);
}
