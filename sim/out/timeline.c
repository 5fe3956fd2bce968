/* timeline.c - writes the trace-event JSON timeline of a run (see timeline.h).
 *
 * Assumptions: the observer is attached before the run starts (unit byte counters start
 * at zero) and is called in completion order, so end times never decrease. The bandwidth
 * counters spread each DMA instruction's bytes evenly over its own [start, end). (Not the
 * growth of the unit's `bytes` counter between completions: the DMA model counts a chunk
 * when it completes and a transfer's in-flight tail at its end, so chunks issued together
 * land together, and a v7 training step's optimizer read as bursts of 3x the HBM peak in
 * 512 ns buckets.) ICI counts the link bytes of a collective as it starts: the growth since
 * the previous ICI completion is spread from that completion (or from this instruction's
 * start, if later) to now. The per-channel and per-link counters have no per-instruction
 * share: their growth since the previous completion is spread the same way. */
#include "timeline.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "hbm.h"
#include "ofile.h"
#include "ici.h"
#include "json.h"
#include "stats.h"
#include "units.h"
#include "mem.h"

#define TL_REGION_LANES    8    /* tids 1..8: region tracks; units start after them */
#define TL_FIRST_BUCKET_PS 1000 /* 1 ns initial counter bucket; doubles as the run grows */

enum { TL_KIND_OTHER, TL_KIND_DMA, TL_KIND_ICI };

typedef struct tl_slice {
    uint64_t start, end, first_idx, n;
    uint32_t region;
    uint16_t op;
    uint8_t live;
} tl_slice;

typedef struct tl_track {
    const unit *u;
    int kind;
    unsigned sort; /* display order: unit-table order, then unit index */
    uint64_t last_bytes; /* the unit's byte counter at its previous completion */
    uint64_t last_end;   /* previous completion on this unit */
    tl_slice lane[TIMELINE_LANES];
    uint8_t named[TIMELINE_LANES];
} tl_track;

/* Bytes per time bucket; buckets start at the window start. */
typedef struct tl_counter {
    double *b;   /* nb buckets */
    unsigned nb; /* TIMELINE_BUCKETS, or TIMELINE_SUB_BUCKETS for a channel or link */
    uint64_t width_ps;
    unsigned used; /* buckets touched: 0..used-1 */
} tl_counter;

/* A per-HBM-channel or per-ICI-link byte counter found in the models' statistics (see
 * tl_probe), sampled at each DMA or ICI completion like the unit byte counters. */
typedef struct tl_sub {
    const uint64_t *value;
    uint64_t last;
    char name[32]; /* counter track name: "HBM ch3", "ICI link x+" */
    tl_counter k;
} tl_sub;

typedef struct tl_chip {
    timeline *tl;
    unsigned id;
    tl_track *tracks;
    unsigned ntracks, last_hit;
    size_t cap;
    tl_counter hbm, ici;
    tl_sub *subs[2]; /* [0] HBM channels, [1] ICI links */
    unsigned nsubs[2];
    int probed[2];
} tl_chip;

struct timeline {
    FILE *f;
    ofile *of; /* f's file */
    timeline_opts o;
    char label[600];
    tl_chip **chips;
    unsigned nchips;
    timeline_counts cnt;
    int nevents;      /* any event written yet (comma placement) */
    uint64_t last_ps; /* latest end seen, for the truncation notice */
    int oom;
};

void timeline_opts_default(timeline_opts *o)
{
    memset(o, 0, sizeof *o);
    o->merge_gap_ps = 0;
    o->max_events = TIMELINE_DEFAULT_MAX;
}

/* ---- output helpers ---- */

/* Microseconds with six decimals: exact for integer picoseconds, and deterministic. */
static void tl_put_us(FILE *f, uint64_t ps)
{
    fprintf(f, "%" PRIu64 ".%06" PRIu64, ps / 1000000, ps % 1000000);
}

static void tl_event_sep(timeline *tl)
{
    fputs(tl->nevents ? ",\n" : "\n", tl->f);
    tl->nevents = 1;
}

/* Trace viewers reserve pid 0 and tid 0 (Perfetto treats 0 as "no process/thread"): chip N
 * is pid N + 1, region lane L is tid L + 1, and unit tracks follow the region lanes. */
static unsigned tl_pid(unsigned chip_id)
{
    return chip_id + 1;
}

static void tl_meta(timeline *tl, unsigned pid, long tid, const char *what, const char *name,
                    unsigned sort)
{
    tl_event_sep(tl);
    fprintf(tl->f, "{\"ph\":\"M\",\"pid\":%u,", pid);
    if (tid >= 0)
        fprintf(tl->f, "\"tid\":%ld,", tid);
    fprintf(tl->f, "\"name\":\"%s\",\"args\":{\"name\":", what);
    json_put_string(tl->f, name);
    fputs("}}", tl->f);
    if (tid >= 0) {
        tl_event_sep(tl);
        fprintf(tl->f,
                "{\"ph\":\"M\",\"pid\":%u,\"tid\":%ld,\"name\":\"thread_sort_index\","
                "\"args\":{\"sort_index\":%u}}",
                pid, tid, sort);
    }
}

/* ---- chips and tracks ---- */

static int tl_counter_init(tl_counter *k, unsigned nb)
{
    k->b = calloc(nb, sizeof *k->b);
    k->nb = nb;
    k->width_ps = TL_FIRST_BUCKET_PS;
    k->used = 0;
    return k->b ? 0 : -1;
}

static tl_chip *tl_chip_get(timeline *tl, unsigned id)
{
    for (unsigned i = 0; i < tl->nchips; i++)
        if (tl->chips[i]->id == id)
            return tl->chips[i];
    tl_chip **nc = realloc(tl->chips, (tl->nchips + 1) * sizeof *nc);
    if (!nc)
        return NULL;
    tl->chips = nc;
    tl_chip *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->tl = tl;
    c->id = id;
    if (tl_counter_init(&c->hbm, TIMELINE_BUCKETS) || tl_counter_init(&c->ici, TIMELINE_BUCKETS)) {
        free(c->hbm.b);
        free(c);
        return NULL;
    }
    tl->chips[tl->nchips++] = c;
    char name[32];
    snprintf(name, sizeof name, "chip %u", id);
    tl_meta(tl, tl_pid(id), -1, "process_name", name, 0);
    return c;
}

static tl_track *tl_track_get(tl_chip *c, const unit *u)
{
    if (c->last_hit < c->ntracks && c->tracks[c->last_hit].u == u)
        return &c->tracks[c->last_hit];
    for (unsigned i = 0; i < c->ntracks; i++)
        if (c->tracks[i].u == u) {
            c->last_hit = i;
            return &c->tracks[i];
        }
    if (mem_grow(&c->tracks, &c->cap, (size_t)c->ntracks + 1, sizeof *c->tracks, 16))
        return NULL;
    tl_track *t = &c->tracks[c->ntracks];
    memset(t, 0, sizeof *t);
    t->u = u;
    unit_traffic traffic = u->kind ? u->kind->traffic : UNIT_TRAFFIC_NONE;
    t->kind = traffic == UNIT_TRAFFIC_HBM   ? TL_KIND_DMA
              : traffic == UNIT_TRAFFIC_ICI ? TL_KIND_ICI
                                            : TL_KIND_OTHER;
    unsigned rank = unit_kind_rank(u->kind);
    t->sort = TL_REGION_LANES + (rank << 20) + (u->index & 0xFFFF) * TIMELINE_LANES;
    c->last_hit = c->ntracks++;
    return t;
}

static unsigned tl_tid(const tl_chip *c, const tl_track *t, unsigned lane)
{
    return 1 + TL_REGION_LANES + (unsigned)(t - c->tracks) * TIMELINE_LANES + lane;
}

/* ---- slices ---- */

static void tl_flush(tl_chip *c, tl_track *t, unsigned lane)
{
    timeline *tl = c->tl;
    tl_slice *s = &t->lane[lane];
    if (!s->live)
        return;
    s->live = 0;
    if (tl->cnt.slices >= tl->o.max_events) {
        tl->cnt.dropped++;
        return;
    }
    unsigned tid = tl_tid(c, t, lane);
    if (!t->named[lane]) {
        char name[48];
        if (lane)
            snprintf(name, sizeof name, "%s #%u", t->u->name, lane + 1);
        else
            snprintf(name, sizeof name, "%s", t->u->name);
        tl_meta(tl, tl_pid(c->id), tid, "thread_name", name, t->sort + lane);
        t->named[lane] = 1;
    }
    const isa_info *info = isa_info_of(s->op);
    tl_event_sep(tl);
    fprintf(tl->f, "{\"ph\":\"X\",\"pid\":%u,\"tid\":%u,\"ts\":", tl_pid(c->id), tid);
    tl_put_us(tl->f, s->start);
    fputs(",\"dur\":", tl->f);
    tl_put_us(tl->f, s->end - s->start);
    fprintf(tl->f,
            ",\"name\":\"%s\",\"args\":{\"index\":%" PRIu64 ",\"region\":%" PRIu32 ",\"n\":%" PRIu64
            "}}",
            info ? info->mnemonic : "?", s->first_idx, s->region, s->n);
    tl->cnt.slices++;
}

/* Add `bytes` spread evenly over [s, e) (ps relative to the window start). */
static void tl_counter_add(tl_counter *k, uint64_t s, uint64_t e, double bytes)
{
    if (bytes <= 0)
        return;
    while (e / k->width_ps >= k->nb) {
        /* Double the bucket width: merge pairs. Bounded: at most 64 doublings in total. */
        for (unsigned i = 0; i < k->nb / 2; i++)
            k->b[i] = k->b[2 * i] + k->b[2 * i + 1];
        memset(&k->b[k->nb / 2], 0, k->nb / 2 * sizeof *k->b);
        k->width_ps *= 2;
        k->used = (k->used + 1) / 2;
    }
    uint64_t w = k->width_ps;
    unsigned b0 = (unsigned)(s / w), b1 = (unsigned)(e > s ? (e - 1) / w : s / w);
    if (b1 + 1 > k->used)
        k->used = b1 + 1;
    if (e <= s || b0 == b1) {
        k->b[b0] += bytes;
        return;
    }
    double per_ps = bytes / (double)(e - s);
    for (unsigned b = b0; b <= b1; b++) {
        uint64_t lo = (uint64_t)b * w, hi = lo + w;
        if (lo < s)
            lo = s;
        if (hi > e)
            hi = e;
        k->b[b] += per_ps * (double)(hi - lo);
    }
}

/* Find the per-channel HBM counters ("hbm" "ch<N>_bytes") or per-link ICI counters ("ici"
 * "link_<axis><+|->_bytes", the representative chip's links) the models register, through a
 * private statistics registry filled by the models' own register functions; only the counter
 * addresses are kept. Models that register no such counters give no tracks. Runs once per
 * chip and kind, at its first DMA or ICI completion. */
static void tl_probe(tl_chip *c, int which, const unit *u)
{
    c->probed[which] = 1;
    if (!u->env || (which == 0 ? !u->env->hbm : !u->env->net || c->id != 0))
        return;
    stats_reg *r = stats_new(NULL);
    if (!r) {
        c->tl->oom = 1;
        return;
    }
    if (which == 0)
        hbm_register_stats(u->env->hbm, r);
    else
        ici_net_register_stats(u->env->net, r);
    size_t n = stats_count(r);
    c->subs[which] = calloc(n ? n : 1, sizeof *c->subs[which]);
    if (!c->subs[which]) {
        c->tl->oom = 1;
        stats_free(r);
        return;
    }
    for (size_t i = 0; i < n && c->nsubs[which] < TIMELINE_MAX_SUBS; i++) {
        const stats_entry *se = stats_at(r, i);
        unsigned ch = 0;
        char axis = 0, sign = 0, rest[8] = "";
        int used = 0;
        tl_sub *sb = &c->subs[which][c->nsubs[which]];
        if (!se->value)
            continue;
        if (which == 0 && !strcmp(se->group, "hbm") &&
            sscanf(se->name, "ch%u_bytes%n", &ch, &used) == 1 && used && !se->name[used])
            snprintf(sb->name, sizeof sb->name, "HBM ch%u", ch);
        else if (which == 1 && !strcmp(se->group, "ici") &&
                 sscanf(se->name, "link_%c%c_%7s", &axis, &sign, rest) == 3 &&
                 !strcmp(rest, "bytes") && (sign == '+' || sign == '-'))
            snprintf(sb->name, sizeof sb->name, "ICI link %c%c", axis, sign);
        else
            continue;
        if (tl_counter_init(&sb->k, TIMELINE_SUB_BUCKETS)) {
            c->tl->oom = 1;
            break;
        }
        sb->value = se->value;
        sb->last = 0; /* counters start at zero: the observer is attached before the run */
        c->nsubs[which]++;
    }
    stats_free(r);
}

/* Add `bytes` moved over [from, end) (absolute ps) to k, clipped to the timeline window. */
static void tl_spread(const timeline *tl, tl_counter *k, uint64_t from, uint64_t end,
                      uint64_t bytes)
{
    uint64_t ws = tl->o.window_start_ps, we = tl->o.window_end_ps;
    uint64_t s = from < ws ? ws : from, e = we && end > we ? we : end;
    if (!bytes || e < s || (we && s > we) || end < ws)
        return;
    double frac = end > from ? (double)(e - s) / (double)(end - from) : 1.0;
    tl_counter_add(k, s - ws, e - ws, frac * (double)bytes);
}

static void tl_observe(tl_chip *c, uint64_t idx, unsigned op, const unit *u, uint64_t start,
                       uint64_t end, unsigned region, uint64_t bytes)
{
    timeline *tl = c->tl;
    tl_track *t = tl_track_get(c, u);
    if (!t) {
        tl->oom = 1;
        return;
    }
    if (end > tl->last_ps)
        tl->last_ps = end;
    uint64_t ws = tl->o.window_start_ps, we = tl->o.window_end_ps;
    int outside = end < ws || (we && start > we);
    if (t->kind != TL_KIND_OTHER) {
        int which = t->kind == TL_KIND_DMA ? 0 : 1;
        if (!c->probed[which])
            tl_probe(c, which, u);
        /* Sampled counters (the ICI unit's link bytes, counted as collectives start; the
         * channel and link counters): their growth since the unit's previous completion,
         * spread from that completion if instructions overlapped, else from this start. One
         * read per counter per completion; several DMA units would share the interval (there
         * is one per chip). */
        uint64_t since = start < t->last_end ? t->last_end : start;
        uint64_t grown = u->bytes - t->last_bytes;
        t->last_bytes = u->bytes;
        t->last_end = end;
        if (which == 0) /* DMA: this instruction's own bytes over its own [start, end) */
            tl_spread(tl, &c->hbm, start, end, bytes);
        else
            tl_spread(tl, &c->ici, since, end, grown);
        for (unsigned i = 0; i < c->nsubs[which]; i++) {
            tl_sub *sb = &c->subs[which][i];
            uint64_t v = *sb->value;
            tl_spread(tl, &sb->k, since, end, v - sb->last);
            sb->last = v;
        }
    }
    if (outside) {
        tl->cnt.outside++;
        return;
    }
    if (start < ws)
        start = ws;
    if (we && end > we)
        end = we;
    uint64_t gap = tl->o.merge_gap_ps;
    /* 1. extend a live slice of the same mnemonic that ended at most `gap` before. */
    if (gap != TIMELINE_NO_MERGE)
        for (unsigned l = 0; l < TIMELINE_LANES; l++) {
            tl_slice *s = &t->lane[l];
            if (s->live && s->op == op && s->region == region && start >= s->start &&
                start <= (s->end > UINT64_MAX - gap ? UINT64_MAX : s->end + gap)) {
                if (end > s->end)
                    s->end = end;
                s->n++;
                tl->cnt.merged++;
                return;
            }
        }
    /* 2. else the first lane free at `start`; 3. else the earliest-ending lane, with the
     *    new slice clipped to start at its end so that events on a track still nest. */
    unsigned pick = TIMELINE_LANES;
    for (unsigned l = 0; l < TIMELINE_LANES && pick == TIMELINE_LANES; l++)
        if (!t->lane[l].live || t->lane[l].end <= start)
            pick = l;
    if (pick == TIMELINE_LANES) {
        pick = 0;
        for (unsigned l = 1; l < TIMELINE_LANES; l++)
            if (t->lane[l].end < t->lane[pick].end)
                pick = l;
        if (start < t->lane[pick].end)
            start = t->lane[pick].end;
        if (end < start)
            end = start;
    }
    tl_flush(c, t, pick);
    t->lane[pick] = (tl_slice){.start = start,
                               .end = end,
                               .first_idx = idx,
                               .n = 1,
                               .region = region,
                               .op = (uint16_t)op,
                               .live = 1};
}

void timeline_observe(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                      uint64_t end_ps, unsigned region, uint64_t bytes)
{
    timeline *tl = ctx;
    tl_chip *c = tl->nchips && tl->chips[0]->id == 0 ? tl->chips[0] : tl_chip_get(tl, 0);
    if (!c) {
        tl->oom = 1;
        return;
    }
    tl_observe(c, idx, op, u, start_ps, end_ps, region, bytes);
}

void *timeline_chip_ctx(timeline *tl, unsigned chip_id)
{
    return tl_chip_get(tl, chip_id);
}

void timeline_observe_chip(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                           uint64_t end_ps, unsigned region, uint64_t bytes)
{
    tl_observe(ctx, idx, op, u, start_ps, end_ps, region, bytes);
}

/* ---- lifecycle ---- */

timeline *timeline_new(const char *path, const timeline_opts *opts, err *e)
{
    timeline *tl = err_calloc(1, sizeof *tl, NULL, e);
    if (!tl)
        return NULL;
    if (opts)
        tl->o = *opts;
    else
        timeline_opts_default(&tl->o);
    if (!tl->o.max_events)
        tl->o.max_events = TIMELINE_DEFAULT_MAX;
    snprintf(tl->label, sizeof tl->label, "%s", tl->o.label ? tl->o.label : "");
    tl->o.label = NULL;
    if (tl->o.window_end_ps && tl->o.window_end_ps <= tl->o.window_start_ps) {
        err_set(e, "%s: timeline window end must be after its start", path);
        free(tl);
        return NULL;
    }
    if (ofile_open(&tl->of, path, e)) {
        free(tl);
        return NULL;
    }
    tl->f = ofile_stream(tl->of);
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", tl->f);
    if (!tl_chip_get(tl, 0)) {
        err_setk(e, ERR_NOMEM, "out of memory");
        timeline_abort(tl);
        return NULL;
    }
    return tl;
}

static void tl_free(timeline *tl)
{
    for (unsigned i = 0; i < tl->nchips; i++) {
        tl_chip *c = tl->chips[i];
        for (unsigned w = 0; w < 2; w++) {
            for (unsigned j = 0; j < c->nsubs[w]; j++)
                free(c->subs[w][j].k.b);
            free(c->subs[w]);
        }
        free(c->hbm.b);
        free(c->ici.b);
        free(c->tracks);
        free(c);
    }
    free(tl->chips);
    free(tl);
}

void timeline_abort(timeline *tl)
{
    if (!tl)
        return;
    ofile_abort(tl->of);
    tl_free(tl);
}

void timeline_add_regions(timeline *tl, unsigned chip_id, const chip *ch)
{
    if (!tl || !ch)
        return;
    tl_chip *c = tl_chip_get(tl, chip_id);
    if (!c) {
        tl->oom = 1;
        return;
    }
    unsigned n;
    const core_region *r = core_regions(chip_core(ch), &n);
    uint64_t lane_end[TL_REGION_LANES] = {0};
    int lane_named[TL_REGION_LANES] = {0};
    uint64_t ws = tl->o.window_start_ps, we = tl->o.window_end_ps;
    for (unsigned i = 0; i < n; i++) {
        if (!r[i].insns || r[i].first_start_ps == UINT64_MAX)
            continue;
        uint64_t s = r[i].first_start_ps, e = r[i].last_end_ps;
        if (e < ws || (we && s > we))
            continue;
        if (s < ws)
            s = ws;
        if (we && e > we)
            e = we;
        /* Regions overlap when one's tail runs past the next one's start: greedy
         * interval partitioning onto up to TL_REGION_LANES tracks. */
        unsigned pick = TL_REGION_LANES;
        for (unsigned l = 0; l < TL_REGION_LANES && pick == TL_REGION_LANES; l++)
            if (lane_end[l] <= s)
                pick = l;
        if (pick == TL_REGION_LANES) {
            pick = 0;
            for (unsigned l = 1; l < TL_REGION_LANES; l++)
                if (lane_end[l] < lane_end[pick])
                    pick = l;
            if (s < lane_end[pick])
                s = lane_end[pick];
            if (e < s)
                e = s;
        }
        lane_end[pick] = e;
        if (!lane_named[pick]) {
            char name[32];
            snprintf(name, sizeof name, pick ? "regions #%u" : "regions", pick + 1);
            tl_meta(tl, tl_pid(c->id), pick + 1, "thread_name", name, pick);
            lane_named[pick] = 1;
        }
        tl_event_sep(tl);
        fprintf(tl->f,
                "{\"ph\":\"X\",\"cat\":\"region\",\"pid\":%u,\"tid\":%u,\"ts\":", tl_pid(c->id),
                pick + 1);
        tl_put_us(tl->f, s);
        fputs(",\"dur\":", tl->f);
        tl_put_us(tl->f, e - s);
        fputs(",\"name\":", tl->f);
        json_put_string(tl->f, r[i].name);
        fprintf(tl->f,
                ",\"args\":{\"region\":%u,\"instructions\":%" PRIu64 ",\"flops\":%" PRIu64
                ",\"hbm_bytes\":%" PRIu64 "}}",
                i, r[i].insns, r[i].flops, r[i].hbm_bytes);
    }
}

/* One "power" counter event at ps, unless the value is *prev (unchanged). */
static void tl_power_event(timeline *tl, unsigned pid, uint64_t ps, double watts, double *prev)
{
    if (watts == *prev)
        return;
    *prev = watts;
    tl_event_sep(tl);
    fprintf(tl->f, "{\"ph\":\"C\",\"pid\":%u,\"name\":\"power\",\"ts\":", pid);
    tl_put_us(tl->f, ps);
    fprintf(tl->f, ",\"args\":{\"W\":%.6g}}", watts);
}

void timeline_add_power(timeline *tl, unsigned chip_id, const double *w, uint64_t n,
                        uint64_t width_ps, uint64_t end_ps)
{
    if (!tl || !w || !n || !width_ps)
        return;
    tl_chip *c = tl_chip_get(tl, chip_id);
    if (!c) {
        tl->oom = 1;
        return;
    }
    uint64_t ws = tl->o.window_start_ps, we = tl->o.window_end_ps;
    double prev = -1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t lo = i * width_ps;
        if (lo >= end_ps || (we && lo > we))
            break;
        if (lo + width_ps > ws)
            tl_power_event(tl, tl_pid(c->id), lo < ws ? ws : lo, w[i], &prev);
    }
    uint64_t stop = we && we < end_ps ? we : end_ps; /* the run (or the timeline) ends */
    if (stop >= ws && prev >= 0)
        tl_power_event(tl, tl_pid(c->id), stop, 0.0, &prev);
}

static void tl_write_counter(timeline *tl, const tl_chip *c, const tl_counter *k, const char *name)
{
    if (!k->used)
        return;
    double prev = -1;
    for (unsigned b = 0; b <= k->used; b++) {
        /* GB/s = bytes / (width ps) * 1e12 / 1e9; one event per change of value. */
        double v = b < k->used ? k->b[b] * 1e3 / (double)k->width_ps : 0.0;
        if (v == prev)
            continue;
        prev = v;
        tl_event_sep(tl);
        fprintf(tl->f, "{\"ph\":\"C\",\"pid\":%u,\"name\":\"%s\",\"ts\":", tl_pid(c->id), name);
        tl_put_us(tl->f, tl->o.window_start_ps + (uint64_t)b * k->width_ps);
        fprintf(tl->f, ",\"args\":{\"GB/s\":%.6g}}", v);
    }
}

void timeline_flush(timeline *tl)
{
    /* Pending slices go out in chip, track, then lane order: deterministic. A flushed
     * slice is no longer live, so calling this again writes nothing. */
    for (unsigned i = 0; i < tl->nchips; i++) {
        tl_chip *c = tl->chips[i];
        for (unsigned t = 0; t < c->ntracks; t++)
            for (unsigned l = 0; l < TIMELINE_LANES; l++)
                tl_flush(c, &c->tracks[t], l);
    }
}

int timeline_close(timeline *tl, err *e)
{
    timeline_flush(tl);
    for (unsigned i = 0; i < tl->nchips; i++) {
        tl_chip *c = tl->chips[i];
        tl_write_counter(tl, c, &c->hbm, "HBM bandwidth");
        tl_write_counter(tl, c, &c->ici, "ICI bandwidth");
        for (unsigned w = 0; w < 2; w++)
            for (unsigned j = 0; j < c->nsubs[w]; j++)
                tl_write_counter(tl, c, &c->subs[w][j].k, c->subs[w][j].name);
    }
    if (tl->cnt.dropped) {
        tl_event_sep(tl);
        fprintf(tl->f, "{\"ph\":\"i\",\"s\":\"g\",\"pid\":1,\"tid\":1,\"ts\":");
        tl_put_us(tl->f, tl->last_ps);
        fprintf(tl->f,
                ",\"name\":\"timeline truncated: %" PRIu64
                " slices dropped after the cap of %" PRIu64 " events\"}",
                tl->cnt.dropped, tl->o.max_events);
    }
    fprintf(tl->f, "\n],\"otherData\":{\"generator\":\"tpusim\",\"label\":");
    json_put_string(tl->f, tl->label);
    fprintf(tl->f,
            ",\"window_start_ps\":%" PRIu64 ",\"window_end_ps\":%" PRIu64
            ",\"merge_gap_ps\":%.0f,\"max_events\":%" PRIu64 ",\"slices\":%" PRIu64
            ",\"merged_instructions\":%" PRIu64 ",\"dropped_slices\":%" PRIu64
            ",\"outside_window\":%" PRIu64 "}}\n",
            tl->o.window_start_ps, tl->o.window_end_ps,
            tl->o.merge_gap_ps == TIMELINE_NO_MERGE ? -1.0 : (double)tl->o.merge_gap_ps,
            tl->o.max_events, tl->cnt.slices, tl->cnt.merged, tl->cnt.dropped, tl->cnt.outside);
    ofile *of = tl->of;
    tl->of = NULL;
    tl->f = NULL;
    if (tl->oom) {
        err_path(e, ofile_path(of), "out of memory while recording the timeline");
        e->kind = ERR_NOMEM;
        ofile_abort(of);
        tl_free(tl);
        return -1;
    }
    int rc = ofile_close(of, e);
    tl_free(tl);
    return rc;
}

void timeline_get_counts(const timeline *tl, timeline_counts *c)
{
    *c = tl->cnt;
}

/* ---- option parsing ---- */

int timeline_parse_time(const char *s, uint64_t *ps, const char *what, err *e)
{
    static const struct {
        const char *suffix;
        double scale;
    } units[] = {{"ps", 1}, {"ns", 1e3}, {"us", 1e6}, {"ms", 1e9}, {"s", 1e12}};
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v >= 0) || !isfinite(v))
        return err_set(e, "%s '%s': expected a non-negative time such as 10us or 2ms", what, s);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(end, units[i].suffix)) {
            double p = v * units[i].scale;
            if (p >= 1.8e19)
                return err_set(e, "%s '%s': too large", what, s);
            *ps = (uint64_t)(p + 0.5);
            return 0;
        }
    return err_set(e, "%s '%s': expected a unit ps, ns, us, ms or s after the number", what, s);
}

int timeline_parse_window(const char *s, timeline_opts *o, err *e)
{
    const char *colon = strchr(s, ':');
    if (!colon)
        return err_set(e, "--timeline-window '%s': expected START:END, e.g. 10us:2ms", s);
    char a[64];
    size_t la = (size_t)(colon - s);
    if (la >= sizeof a)
        return err_set(e, "--timeline-window '%s': start too long", s);
    memcpy(a, s, la);
    a[la] = 0;
    uint64_t start = 0, end = 0;
    if (la && timeline_parse_time(a, &start, "--timeline-window start", e))
        return -1;
    if (colon[1] && timeline_parse_time(colon + 1, &end, "--timeline-window end", e))
        return -1;
    if (colon[1] && end <= start)
        return err_set(e, "--timeline-window '%s': end must be after start", s);
    o->window_start_ps = start;
    o->window_end_ps = end;
    return 0;
}

int timeline_set_option(timeline_opts *o, const char *name, const char *value, err *e)
{
    if (!strcmp(name, "timeline-window"))
        return timeline_parse_window(value, o, e);
    if (!strcmp(name, "timeline-merge-gap")) {
        if (!strcmp(value, "off")) {
            o->merge_gap_ps = TIMELINE_NO_MERGE;
            return 0;
        }
        return timeline_parse_time(value, &o->merge_gap_ps, "--timeline-merge-gap", e);
    }
    if (!strcmp(name, "timeline-max-events")) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (end == value || *end || errno || v == 0 || value[0] == '-')
            return err_set(e, "--timeline-max-events '%s': expected a positive count", value);
        o->max_events = v;
        return 0;
    }
    return err_set(e, "unknown timeline option '%s'", name);
}
