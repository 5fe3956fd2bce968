/* test_timeline.c - the trace-event timeline writer fed synthetic observer calls: slices,
 * merging, windows, the event cap, overlap lanes, bandwidth counters, and clean files. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <math.h>

#include "compare.h"
#include "isa.h"
#include "timeline.h"
#include "unit.h"
#include "units.h"
#include "tmpleft.h"

static const unit_ops fake_mxu_ops = {0};
static const unit_ops fake_dma_ops = {0};

typedef struct fixture {
    char dir[64], path[128];
    unit mxu, dma;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tpusim_tl_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/t.json", f->dir);
    f->mxu.ops = &fake_mxu_ops;
    f->mxu.kind = unit_kind_of_ops(&mxu_ops);
    snprintf(f->mxu.name, sizeof f->mxu.name, "mxu0");
    f->dma.ops = &fake_dma_ops;
    f->dma.kind = unit_kind_of_ops(&dma_ops);
    snprintf(f->dma.name, sizeof f->dma.name, "dma0");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    free(f);
    return system(cmd) ? -1 : 0;
}

/* The value at a dotted path of a loaded document (NULL if absent), as a number (NaN if
 * absent) or a string ("" if absent). */
static json_t *jpath(json_t *v, const char *path)
{
    char part[64];
    while (v && *path) {
        size_t l = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)l, path);
        path += l + (path[l] == '.');
        v = json_object_get(v, part);
    }
    return v;
}

static double jnum(json_t *v, const char *path)
{
    json_t *x = jpath(v, path);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static const char *jstr(json_t *v, const char *path)
{
    const char *s = json_string_value(jpath(v, path));
    return s ? s : "";
}

/* Parse the written file with a real JSON reader; check no temporary is left behind. */
static json_t *load(const fixture *f)
{
    assert_int_equal(tmp_left(f->path), 0);
    err e = {0};
    json_t *doc = compare_load(f->path, &e);
    if (!doc)
        fail_msg("%s", e.msg);
    json_t *ev = jpath(doc, "traceEvents");
    assert_non_null(ev);
    assert_true(json_is_array(ev));
    assert_non_null(jpath(doc, "otherData"));
    return doc;
}

/* Number of events with "ph" == ph (and name == name unless NULL). */
static size_t count_ph(json_t *doc, const char *ph, const char *name)
{
    json_t *ev = jpath(doc, "traceEvents");
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *p = jpath(json_array_get(ev, i), "ph");
        json_t *nm = jpath(json_array_get(ev, i), "name");
        if (p && !strcmp(json_string_value(p), ph) &&
            (!name || (nm && !strcmp(json_string_value(nm), name))))
            n++;
    }
    return n;
}

static json_t *find_ph(json_t *doc, const char *ph, size_t nth)
{
    json_t *ev = jpath(doc, "traceEvents");
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *p = jpath(json_array_get(ev, i), "ph");
        if (p && !strcmp(json_string_value(p), ph) && nth-- == 0)
            return json_array_get(ev, i);
    }
    return NULL;
}

static timeline *open_tl(fixture *f, uint64_t gap, uint64_t ws, uint64_t we, uint64_t cap)
{
    timeline_opts o;
    timeline_opts_default(&o);
    o.merge_gap_ps = gap;
    o.window_start_ps = ws;
    o.window_end_ps = we;
    o.max_events = cap;
    err e = {0};
    timeline *tl = timeline_new(f->path, &o, &e);
    if (!tl)
        fail_msg("%s", e.msg);
    return tl;
}

static void close_tl(timeline *tl)
{
    err e = {0};
    if (timeline_close(tl, &e))
        fail_msg("%s", e.msg);
}

static void test_timeline_writes_one_slice_per_instruction_without_merging(void **state)
{
    fixture *f = *state;
    timeline *tl = open_tl(f, TIMELINE_NO_MERGE, 0, 0, 0);
    for (uint64_t i = 0; i < 10; i++)
        timeline_observe(tl, i, ISA_OP_MXU_MATMUL, &f->mxu, i * 1000, i * 1000 + 1000, 0, 0);
    timeline_counts c;
    timeline_get_counts(tl, &c);
    assert_int_equal(c.merged, 0);
    close_tl(tl);
    json_t *doc = load(f);
    assert_int_equal(count_ph(doc, "X", "mxu.matmul"), 10);
    /* The unit's track is named, and ts/dur are microseconds: 1000 ps = 0.001 us. */
    assert_int_equal(count_ph(doc, "M", "thread_name"), 1);
    json_t *x = find_ph(doc, "X", 3);
    assert_non_null(x);
    assert_true(jnum(x, "ts") > 0.0029 && jnum(x, "ts") < 0.0031);
    assert_true(jnum(x, "dur") > 0.00099 && jnum(x, "dur") < 0.00101);
    assert_int_equal((int)jnum(x, "args.index"), 3);
    json_decref(doc);
}

static void test_timeline_merges_touching_same_mnemonic_slices(void **state)
{
    fixture *f = *state;
    timeline *tl = open_tl(f, 0, 0, 0, 0);
    for (uint64_t i = 0; i < 100; i++)
        timeline_observe(tl, i, ISA_OP_MXU_MATMUL, &f->mxu, i * 1000, i * 1000 + 1000, 0, 0);
    close_tl(tl);
    json_t *doc = load(f);
    assert_int_equal(count_ph(doc, "X", NULL), 1);
    json_t *x = find_ph(doc, "X", 0);
    assert_int_equal((int)jnum(x, "args.n"), 100);
    assert_true(jnum(x, "dur") > 0.0999 && jnum(x, "dur") < 0.1001);
    assert_int_equal((int)jnum(doc, "otherData.merged_instructions"), 99);
    json_decref(doc);
}

static void test_timeline_does_not_merge_across_gaps_or_mnemonics(void **state)
{
    fixture *f = *state;
    timeline *tl = open_tl(f, 500, 0, 0, 0);
    /* Gap of 400 ps (merged), then 600 ps (not), then a different mnemonic (not), then the
     * same mnemonic touching but in another region (not). */
    timeline_observe(tl, 0, ISA_OP_MXU_MATMUL, &f->mxu, 0, 1000, 0, 0);
    timeline_observe(tl, 1, ISA_OP_MXU_MATMUL, &f->mxu, 1400, 2000, 0, 0);
    timeline_observe(tl, 2, ISA_OP_MXU_MATMUL, &f->mxu, 2600, 3000, 0, 0);
    timeline_observe(tl, 3, ISA_OP_MXU_LDW, &f->mxu, 3000, 3500, 0, 0);
    timeline_observe(tl, 4, ISA_OP_MXU_LDW, &f->mxu, 3500, 4000, 1, 0);
    close_tl(tl);
    json_t *doc = load(f);
    assert_int_equal(count_ph(doc, "X", "mxu.matmul"), 2);
    assert_int_equal(count_ph(doc, "X", "mxu.ldw"), 2);
    json_decref(doc);
}

static void test_timeline_window_drops_slices_outside(void **state)
{
    fixture *f = *state;
    /* Window [10 ns, 20 ns]: instructions of 1 ns every 1 ns from 0 to 30 ns. */
    timeline *tl = open_tl(f, TIMELINE_NO_MERGE, 10000, 20000, 0);
    for (uint64_t i = 0; i < 30; i++)
        timeline_observe(tl, i, ISA_OP_MXU_MATMUL, &f->mxu, i * 1000 + 100, i * 1000 + 900, 0, 0);
    timeline_counts c;
    timeline_get_counts(tl, &c);
    assert_int_equal(c.outside, 20); /* 0..9 end before 10 ns, 20..29 start after 20 ns */
    close_tl(tl);
    json_t *doc = load(f);
    assert_int_equal(count_ph(doc, "X", NULL), 10);
    json_t *first = find_ph(doc, "X", 0);
    assert_true(jnum(first, "ts") >= 0.010);
    json_decref(doc);
}

static void test_timeline_cap_stops_growth_and_says_so(void **state)
{
    fixture *f = *state;
    timeline *tl = open_tl(f, TIMELINE_NO_MERGE, 0, 0, 5);
    for (uint64_t i = 0; i < 100; i++)
        timeline_observe(tl, i, ISA_OP_MXU_MATMUL, &f->mxu, i * 2000, i * 2000 + 1000, 0, 0);
    close_tl(tl);
    long small = 0;
    FILE *fp = fopen(f->path, "r");
    fseek(fp, 0, SEEK_END);
    small = ftell(fp);
    fclose(fp);
    json_t *doc = load(f);
    assert_int_equal(count_ph(doc, "X", NULL), 5);
    assert_int_equal(count_ph(doc, "i", NULL), 1);
    assert_non_null(strstr(find_ph(doc, "i", 0) ? jstr(find_ph(doc, "i", 0), "name") : "",
                           "95 slices dropped"));
    assert_int_equal((int)jnum(doc, "otherData.dropped_slices"), 95);
    json_decref(doc);
    /* Ten times more instructions: the file does not grow by more than the counts' digits. */
    tl = open_tl(f, TIMELINE_NO_MERGE, 0, 0, 5);
    for (uint64_t i = 0; i < 1000; i++)
        timeline_observe(tl, i, ISA_OP_MXU_MATMUL, &f->mxu, i * 2000, i * 2000 + 1000, 0, 0);
    close_tl(tl);
    fp = fopen(f->path, "r");
    fseek(fp, 0, SEEK_END);
    long big = ftell(fp);
    fclose(fp);
    assert_true(big - small < 16);
}

static void test_timeline_flush_makes_counts_final_before_close(void **state)
{
    fixture *f = *state;
    timeline *tl = open_tl(f, TIMELINE_NO_MERGE, 0, 0, 2);
    for (uint64_t i = 0; i < 10; i++)
        timeline_observe(tl, i, ISA_OP_MXU_MATMUL, &f->mxu, i * 2000, i * 2000 + 1000, 0, 0);
    timeline_counts c;
    timeline_get_counts(tl, &c);
    assert_int_equal(c.slices + c.dropped, 9); /* the last slice is still pending */
    timeline_flush(tl);
    timeline_flush(tl); /* idempotent */
    timeline_get_counts(tl, &c);
    assert_int_equal(c.slices, 2);
    assert_int_equal(c.dropped, 8);
    close_tl(tl);
    json_t *doc = load(f);
    assert_int_equal(count_ph(doc, "X", NULL), 2);
    assert_int_equal((int)jnum(doc, "otherData.dropped_slices"), 8);
    json_decref(doc);
}

static void test_timeline_overlapping_instructions_use_extra_lanes(void **state)
{
    fixture *f = *state;
    timeline *tl = open_tl(f, 0, 0, 0, 0);
    /* Two DMAs in flight at once, different directions: must not share a track. */
    timeline_observe(tl, 0, ISA_OP_DMA_H2V, &f->dma, 0, 1000, 0, 0);
    timeline_observe(tl, 1, ISA_OP_DMA_V2H, &f->dma, 500, 1500, 0, 0);
    close_tl(tl);
    json_t *doc = load(f);
    json_t *a = find_ph(doc, "X", 0), *b = find_ph(doc, "X", 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_not_equal((int)jnum(a, "tid"), (int)jnum(b, "tid"));
    assert_int_equal(count_ph(doc, "M", "thread_name"), 2);
    json_decref(doc);
}

static void test_timeline_hbm_counter_reports_bandwidth(void **state)
{
    fixture *f = *state;
    timeline *tl = open_tl(f, 0, 0, 0, 0);
    /* 1000 bytes in 1 ns = 1000 GB/s, then 500 bytes over the next 1 ns = 500 GB/s. */
    f->dma.bytes = 1000;
    timeline_observe(tl, 0, ISA_OP_DMA_H2V, &f->dma, 0, 1000, 0, 1000);
    f->dma.bytes = 1500;
    timeline_observe(tl, 1, ISA_OP_DMA_H2V, &f->dma, 1000, 2000, 0, 500);
    close_tl(tl);
    json_t *doc = load(f);
    assert_int_equal(count_ph(doc, "C", "HBM bandwidth"), 3); /* 1000, 500, then 0 */
    assert_true(fabs(jnum(find_ph(doc, "C", 0), "args.GB/s") - 1000) < 1e-6);
    json_decref(doc);
}

/* The HBM counter spreads each DMA's own bytes over its own time, not the growth of the
 * unit's byte counter between completions: the DMA model counts a transfer's in-flight tail
 * only at its end, so a counter sampled at completions piles bytes moved earlier into the
 * short gap after the previous completion (3x the HBM peak in a v7 training step). */
static void test_timeline_hbm_counter_spreads_each_dma_over_its_own_time(void **state)
{
    fixture *f = *state;
    timeline *tl = open_tl(f, 0, 0, 0, 0);
    /* A: 1000 bytes over [0, 1 ns); B: 2000 bytes over [0, 2 ns), all counted by the unit
     * at B's end. Both run at 1000 GB/s: 2000 GB/s while they overlap, then 1000. */
    f->dma.bytes = 1000;
    timeline_observe(tl, 0, ISA_OP_DMA_H2V, &f->dma, 0, 1000, 0, 1000);
    f->dma.bytes = 3000;
    timeline_observe(tl, 1, ISA_OP_DMA_H2V, &f->dma, 0, 2000, 0, 2000);
    close_tl(tl);
    json_t *doc = load(f);
    assert_int_equal(count_ph(doc, "C", "HBM bandwidth"), 3); /* 2000, 1000, then 0 */
    json_t *first = find_ph(doc, "C", 0), *second = find_ph(doc, "C", 1);
    assert_true(fabs(jnum(first, "args.GB/s") - 2000) < 1e-6);
    assert_true(fabs(jnum(second, "ts") - 0.001) < 1e-9);
    assert_true(fabs(jnum(second, "args.GB/s") - 1000) < 1e-6);
    json_decref(doc);
}

static void test_timeline_counter_buckets_stay_bounded(void **state)
{
    fixture *f = *state;
    timeline *tl = open_tl(f, 0, 0, 0, 0);
    /* 1 ms of transfers with alternating rates in 1 ns steps: at most TIMELINE_BUCKETS + 1
     * counter events whatever the run length. */
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < 20000; i++) {
        bytes += (i & 1) ? 100 : 300;
        f->dma.bytes = bytes;
        timeline_observe(tl, i, ISA_OP_DMA_H2V, &f->dma, i * 50000, i * 50000 + 1000, 0,
                         (i & 1) ? 100 : 300);
    }
    close_tl(tl);
    json_t *doc = load(f);
    size_t n = count_ph(doc, "C", NULL);
    assert_true(n > 2 && n <= TIMELINE_BUCKETS + 1);
    json_decref(doc);
}

/* Value of the nth "power" counter event, and its time in us. */
static double power_at(json_t *doc, size_t nth, double *ts_us)
{
    json_t *ev = jpath(doc, "traceEvents");
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *e = json_array_get(ev, i);
        if (!strcmp(jstr(e, "name"), "power") && nth-- == 0) {
            *ts_us = jnum(e, "ts");
            return jnum(e, "args.W");
        }
    }
    fail_msg("no power event");
    return 0;
}

static void test_timeline_power_track_has_one_event_per_change(void **state)
{
    fixture *f = *state;
    const double w[] = {20, 30, 30, 10};
    timeline *tl = open_tl(f, 0, 0, 0, 0);
    timeline_add_power(tl, 0, w, 4, 1000000, 3500000); /* 1 us windows, the last one half */
    close_tl(tl);
    json_t *doc = load(f);
    assert_int_equal(count_ph(doc, "C", "power"), 4); /* 20, 30, 10, then 0 at the end */
    const double want_w[] = {20, 30, 10, 0}, want_ts[] = {0, 1, 3, 3.5};
    for (size_t i = 0; i < 4; i++) {
        double ts;
        assert_true(power_at(doc, i, &ts) == want_w[i]);
        assert_true(fabs(ts - want_ts[i]) < 1e-9);
    }
    json_decref(doc);
}

static void test_timeline_power_track_clipped_to_the_window(void **state)
{
    fixture *f = *state;
    const double w[] = {20, 30, 30, 10};
    timeline *tl = open_tl(f, 0, 1500000, 2500000, 0);
    timeline_add_power(tl, 0, w, 4, 1000000, 3500000);
    timeline_add_power(tl, 0, NULL, 0, 1000000, 3500000); /* no windows: no track */
    close_tl(tl);
    json_t *doc = load(f);
    assert_int_equal(count_ph(doc, "C", "power"), 2); /* 30 W from the window start, 0 at its end */
    double ts;
    assert_true(power_at(doc, 0, &ts) == 30);
    assert_true(fabs(ts - 1.5) < 1e-9);
    assert_true(power_at(doc, 1, &ts) == 0);
    assert_true(fabs(ts - 2.5) < 1e-9);
    json_decref(doc);
}

static void test_timeline_parse_window_accepts_units(void **state)
{
    (void)state;
    timeline_opts o;
    err e = {0};
    timeline_opts_default(&o);
    assert_int_equal(timeline_parse_window("10us:2ms", &o, &e), 0);
    assert_int_equal(o.window_start_ps, 10000000ull);
    assert_int_equal(o.window_end_ps, 2000000000ull);
    assert_int_equal(timeline_parse_window(":1.5ns", &o, &e), 0);
    assert_int_equal(o.window_start_ps, 0);
    assert_int_equal(o.window_end_ps, 1500);
    assert_int_equal(timeline_parse_window("250ps:", &o, &e), 0);
    assert_int_equal(o.window_start_ps, 250);
    assert_int_equal(o.window_end_ps, 0);
    assert_int_not_equal(timeline_parse_window("10:20us", &o, &e), 0);
    assert_non_null(strstr(e.msg, "unit"));
    assert_int_not_equal(timeline_parse_window("2ms:1ms", &o, &e), 0);
    assert_int_not_equal(timeline_parse_window("10us", &o, &e), 0);
    assert_non_null(strstr(e.msg, "START:END"));
}

static void test_timeline_set_option_by_cli_name(void **state)
{
    (void)state;
    timeline_opts o;
    err e = {0};
    timeline_opts_default(&o);
    assert_int_equal(timeline_set_option(&o, "timeline-merge-gap", "off", &e), 0);
    assert_true(o.merge_gap_ps == TIMELINE_NO_MERGE);
    assert_int_equal(timeline_set_option(&o, "timeline-merge-gap", "2ns", &e), 0);
    assert_int_equal(o.merge_gap_ps, 2000);
    assert_int_equal(timeline_set_option(&o, "timeline-max-events", "42", &e), 0);
    assert_int_equal(o.max_events, 42);
    assert_int_not_equal(timeline_set_option(&o, "timeline-max-events", "0", &e), 0);
    assert_non_null(strstr(e.msg, "--timeline-max-events '0'"));
    assert_int_not_equal(timeline_set_option(&o, "timeline-max-events", "-5", &e), 0);
    assert_int_not_equal(timeline_set_option(&o, "timeline-max-events", "12x", &e), 0);
    assert_int_equal(timeline_set_option(&o, "timeline-window", "1us:2us", &e), 0);
    assert_int_equal(o.window_end_ps, 2000000);
}

static void test_timeline_unwritable_path_fails_cleanly(void **state)
{
    fixture *f = *state;
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/dir/t.json", f->dir);
    err e = {0};
    assert_null(timeline_new(bad, NULL, &e));
    assert_non_null(strstr(e.msg, "no/such/dir/t.json: cannot create: No such file or directory"));
}

static void test_timeline_abort_leaves_no_files(void **state)
{
    fixture *f = *state;
    timeline *tl = open_tl(f, 0, 0, 0, 0);
    timeline_observe(tl, 0, ISA_OP_MXU_MATMUL, &f->mxu, 0, 1000, 0, 0);
    timeline_abort(tl);
    assert_int_equal(tmp_left(f->path), 0);
    assert_int_not_equal(access(f->path, F_OK), 0);
}

static void test_timeline_output_is_deterministic(void **state)
{
    fixture *f = *state;
    char *text[2];
    for (int r = 0; r < 2; r++) {
        timeline *tl = open_tl(f, 0, 0, 0, 0);
        for (uint64_t i = 0; i < 50; i++) {
            f->dma.bytes = (i + 1) * 64;
            timeline_observe(tl, i, i % 3 ? ISA_OP_DMA_H2V : ISA_OP_DMA_V2H, &f->dma, i * 700,
                             i * 700 + 1100, (unsigned)(i / 10), 64);
        }
        close_tl(tl);
        FILE *fp = fopen(f->path, "r");
        fseek(fp, 0, SEEK_END);
        long n = ftell(fp);
        rewind(fp);
        text[r] = calloc(1, (size_t)n + 1);
        assert_int_equal(fread(text[r], 1, (size_t)n, fp), (size_t)n);
        fclose(fp);
    }
    assert_string_equal(text[0], text[1]);
    free(text[0]);
    free(text[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_timeline_writes_one_slice_per_instruction_without_merging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeline_merges_touching_same_mnemonic_slices, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeline_does_not_merge_across_gaps_or_mnemonics,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeline_window_drops_slices_outside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeline_cap_stops_growth_and_says_so, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeline_flush_makes_counts_final_before_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeline_overlapping_instructions_use_extra_lanes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeline_hbm_counter_reports_bandwidth, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeline_hbm_counter_spreads_each_dma_over_its_own_time,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeline_counter_buckets_stay_bounded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeline_power_track_has_one_event_per_change, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeline_power_track_clipped_to_the_window, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeline_parse_window_accepts_units, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeline_set_option_by_cli_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeline_unwritable_path_fails_cleanly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeline_abort_leaves_no_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeline_output_is_deterministic, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
