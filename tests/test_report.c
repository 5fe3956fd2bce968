/* test_report.c - the single-chip report's outputs: text time split, CSV quoting and JSON
 * counters, on hand-built reports (no simulation needed) and on one shipped trace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "run.h"

#include "harness.h"

/* 100 hours of simulated time is 3.6e17 ps; its 75 hours of compute are above 2^64 / 100 ps
 * (51 h): the old uint64 arithmetic (100 * part / total) wrapped, printing 24.5% for a run
 * that was all compute. */
static void test_report_time_split_is_right_above_51_hours(void **state)
{
    (void)state;
    static report r; /* large (per-unit rows): keep it off the stack */
    memset(&r, 0, sizeof r);
    snprintf(r.chip, sizeof r.chip, "chip");
    snprintf(r.trace, sizeof r.trace, "t.tpt");
    r.bound_by = "compute";
    r.cycle_ps = 1000;
    r.end_ps = 100ULL * 3600 * 1000000000000ULL;
    r.t_split_ps[UNIT_TIME_COMPUTE] = r.end_ps / 4 * 3;
    r.t_split_ps[UNIT_TIME_MEMORY] = r.end_ps / 4;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    report_text(&r, f);
    fclose(f);
    assert_non_null(strstr(text, "compute 75.0%, memory-only 25.0%, exposed comm 0.0%, idle 0.0%"));
    free(text);
}

static void test_report_csv_quotes_fields_per_rfc4180(void **state)
{
    (void)state;
    static report r;
    memset(&r, 0, sizeof r);
    snprintf(r.chip, sizeof r.chip, "v7, \"big\"");
    report_unit u = {.name = "mxu0", .kind = "mxu", .time = "compute", .traffic = "none"};
    r.nunits = 1;
    r.units = &u;
    report_region g[3] = {
        {.name = "plain"}, {.name = "say \"hi\", then go"}, {.name = "two\r\nlines"}};
    r.regions = g;
    r.nregions = 3;
    char path[300];
    harness_path("q.csv", path, sizeof path);
    err e;
    assert_int_equal(report_csv(&r, path, &e), 0);
    char *csv = harness_slurp(path, NULL);
    assert_non_null(strstr(csv, "\ntotal,\"v7, \"\"big\"\"\",chip,"));
    assert_non_null(strstr(csv, "\nunit,mxu0,mxu,"));
    assert_non_null(strstr(csv, "\nregion,\"plain\",region,"));
    assert_non_null(strstr(csv, "\nregion,\"say \"\"hi\"\", then go\",region,"));
    assert_non_null(strstr(csv, "\nregion,\"two\r\nlines\",region,"));
    free(csv);
}

/* One v7 device (chip.megacore: false) is one core: 4 MXUs of 256x256 at 2.2 GHz. Each takes
 * one 256x256 weight tile (256 cycles to shift in) and streams m rows: the run ends after
 * k + m + R + C - 1 cycles (docs/models-compute.md), and its peak is the core's 1153.4 TFLOP/s;
 * a fifth MXU does not exist on the device. The megacore chip has 8 MXUs and twice the peak. */
static void gemm_trace(unsigned nmxu, uint64_t m, const char *name, char *out, size_t cap)
{
    char text[2048];
    size_t n = 0;
    for (unsigned i = 0; i < nmxu; i++) /* weights 128 KiB, A m x 512 B, C m x 1 KiB apart */
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "mxu.ldw mxu=%u vmem=%u k=256 n=256 dtype=bf16\n"
                              "mxu.matmul mxu=%u src=%llu dst=%llu m=%llu dtype=bf16\n",
                              i, i * 131072u, i, (unsigned long long)(1048576 + i * m * 512),
                              (unsigned long long)(1048576 + nmxu * m * 512 + i * m * 1024),
                              (unsigned long long)m);
    harness_assemble(name, text, out, cap);
}

static void test_report_v7_device_gemm_time_is_closed_form(void **state)
{
    (void)state;
    const uint64_t m = 8192, R = 256, C = 256, k = 256;
    char tr[300], tr5[300];
    gemm_trace(4, m, "dev4", tr, sizeof tr);
    run s;
    err e;
    if (run_trace(&s, TPUSIM_SOURCE_DIR "/configs/v7.yaml", NULL, 0, tr, NULL, &e))
        fail_msg("run: %s", e.msg);
    double cyc = 1000.0 / 2.2, want = (double)(k + m + R + C - 1) * cyc;
    if (fabs((double)s.rep.end_ps - want) > 4 * cyc)
        fail_msg("end %llu ps, closed form %.0f ps", (unsigned long long)s.rep.end_ps, want);
    assert_true(s.rep.mxu_flops == 4 * 2 * m * k * C);
    assert_true(fabs(s.rep.peak_tflops_bf16 - 1153.4) < 0.1);
    /* MXU utilisation: FLOPs / (time x the device's peak) = m / (k + m + R + C - 1) */
    double util = (double)s.rep.mxu_flops / (s.rep.seconds * s.rep.peak_tflops_bf16 * 1e12);
    assert_true(fabs(util - (double)m / (double)(k + m + R + C - 1)) < 1e-3);
    run_fini(&s);

    gemm_trace(5, 64, "dev5", tr5, sizeof tr5);
    assert_int_not_equal(
        run_trace(&s, TPUSIM_SOURCE_DIR "/configs/v7.yaml", NULL, 0, tr5, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "mxu 4"));
    run_fini(&s);

    const char *mc[] = {"chip.megacore=true"};
    if (run_trace(&s, TPUSIM_SOURCE_DIR "/configs/v7.yaml", mc, 1, tr5, NULL, &e))
        fail_msg("megacore run: %s", e.msg);
    assert_true(fabs(s.rep.peak_tflops_bf16 - 2306.9) < 0.1);
    run_fini(&s);
}

/* Every registered counter appears in --json as its exact integer: %.10g printed
 * core.mxu_flops 34191966208 as 3.419196621e+10. */
static void test_report_json_counters_are_exact_integers(void **state)
{
    (void)state;
    run s;
    err e;
    if (run_trace(&s, TPUSIM_SOURCE_DIR "/configs/v7.yaml", NULL, 0,
                  TPUSIM_SOURCE_DIR "/traces/attention-small.tpt", NULL, &e))
        fail_msg("run: %s", e.msg);
    char path[300];
    harness_path("c.json", path, sizeof path);
    assert_int_equal(report_json(&s.rep, path, &e), 0);
    char *json = harness_slurp(path, NULL);
    unsigned big = 0;
    for (size_t i = 0; i < stats_count(s.rep.stats); i++) {
        const stats_entry *c = stats_at(s.rep.stats, i);
        if (!c->value)
            continue;
        char want[160];
        snprintf(want, sizeof want, "\"%s.%s\": %" PRIu64, c->group, c->name, *c->value);
        const char *at = strstr(json, want);
        if (!at)
            fail_msg("counter %s.%s = %" PRIu64 " not printed exactly", c->group, c->name,
                     *c->value);
        char next = at[strlen(want)];
        assert_true(next == ',' || next == '\n');
        big += *c->value >= 10000000000ULL; /* 11 digits: %.10g would round it */
    }
    assert_true(big > 0);
    free(json);
    run_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_time_split_is_right_above_51_hours),
        cmocka_unit_test(test_report_csv_quotes_fields_per_rfc4180),
        cmocka_unit_test(test_report_json_counters_are_exact_integers),
        cmocka_unit_test(test_report_v7_device_gemm_time_is_closed_form),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
