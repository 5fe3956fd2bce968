/* test_compare.c - loading reports (errors naming file, line and column; depth; integers past
 * 2^63) and the `tpusim report` comparison table (ratios, CSV, missing keys, runs and pods
 * side by side, differing config keys and overrides first, regions aligned by name). */
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

#include "cli.h"
#include "compare.h"
#include "harness.h"

static json_t *load_text(const char *text, err *e)
{
    char path[256];
    harness_write(harness_path("x.json", path, sizeof path), text);
    json_t *v = compare_load(path, e);
    unlink(path);
    return v;
}

static void test_compare_load_errors_name_file_line_and_column(void **state)
{
    (void)state;
    err e = {0};
    assert_null(load_text("{\"a\":1,}", &e));
    assert_non_null(strstr(e.msg, "x.json: line 1, column 8 (byte 8): "));
    assert_null(load_text("[1, 2", &e));
    assert_non_null(strstr(e.msg, "x.json: line 1"));
    assert_null(load_text("{\"a\": 1, \"a\": 2}", &e)); /* duplicate key */
    assert_non_null(strstr(e.msg, "x.json"));
    assert_null(load_text("[1]", &e));
    assert_non_null(strstr(e.msg, "x.json: expected a JSON object at the top level"));
    json_t *v = load_text("{\"big\": 18446744073709551615, \"s\": \"\\u00e9\"}", &e);
    if (!v)
        fail_msg("%s", e.msg);
    assert_true(json_number_value(json_object_get(v, "big")) > 1.8e19);
    assert_string_equal(json_string_value(json_object_get(v, "s")), "\xc3\xa9");
    json_decref(v);
    assert_null(compare_load("/nonexistent/r.json", &e));
    assert_non_null(strstr(e.msg, "/nonexistent/r.json: cannot open"));
}

static void test_compare_load_refuses_deep_nesting_without_crashing(void **state)
{
    (void)state;
    enum { DEPTH = 100000 };
    char *deep = malloc(2 * DEPTH + 1);
    assert_non_null(deep);
    memset(deep, '[', DEPTH);
    memset(deep + DEPTH, ']', DEPTH);
    deep[2 * DEPTH] = 0;
    err e = {0};
    assert_null(load_text(deep, &e));
    assert_non_null(strstr(e.msg, "x.json"));
    free(deep);
}

/* A minimal run report as 'tpusim run --json' writes it. */
static void write_report(const char *path, double time_ps, double tflops, double mxu0_util,
                         int with_tflops)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"schema\":\"tpusim.run/1\",\"trace\":\"t.tpt\",\"config\":\"\",\"chip\":\"v7\","
            "\"summary\":{\"time_ps\":%.0f,\"cycles\":1000,\"instructions\":10,%s"
            "\"peak_tflops_bf16\":2307,\"mxu_util\":0.5,\"mac_util\":0.25,\"hbm_gbs\":100,"
            "\"hbm_util\":null,\"ici_bytes\":0},"
            "\"roofline\":{\"intensity_flop_per_byte\":3,\"fraction_of_bound\":0.5,"
            "\"bound_by\":\"memory\"},"
            "\"time_split_ps\":{\"compute\":%.0f,\"memory\":0,\"exposed_comm\":0,\"idle\":0},"
            "\"units\":[{\"name\":\"mxu0\",\"util\":%g},{\"name\":\"dma0\",\"util\":0.1}],"
            "\"regions\":[]}\n",
            time_ps, with_tflops ? "\"tflops\":1.5," : "", time_ps / 2, tflops > 0 ? mxu0_util : 0);
    fclose(f);
    (void)tflops;
}

__attribute__((noinline)) static char *run_compare(int argc, char **argv, int *rc, err *e)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    *rc = cli_compare(argc, argv, out, e);
    fclose(out);
    return buf;
}

static void test_compare_table_shows_ratios_and_writes_csv(void **state)
{
    (void)state;
    char a[256], b[256], csv[256];
    harness_path("a.json", a, sizeof a);
    harness_path("b.json", b, sizeof b);
    harness_path("c.csv", csv, sizeof csv);
    write_report(a, 2e6, 1, 0.4, 1);
    write_report(b, 1e6, 1, 0.8, 1);
    char *argv[] = {"report", a, b, "--csv", csv};
    err e = {0};
    int rc;
    char *out = run_compare(5, argv, &rc, &e);
    if (rc)
        fail_msg("%s", e.msg);
    /* time halves: B/A = 0.5; mxu0 util doubles: 2.000; null hbm_util shows '-'. */
    assert_non_null(strstr(out, "time (us)"));
    const char *t = strstr(out, "time (us)");
    assert_non_null(strstr(t, "0.500"));
    const char *m = strstr(out, "mxu0 util (%)");
    assert_non_null(m);
    assert_true(strstr(m, "2.000") < strchr(m, '\n'));
    const char *h = strstr(out, "HBM util (%)");
    assert_true(strstr(h, " -") < strchr(h, '\n'));
    assert_non_null(strstr(out, "compute time (%)"));
    free(out);
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "metric,"));
    assert_non_null(strstr(line, ",B/A"));
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "time (us),2,1,0.5\n");
    fclose(f);
}

static void test_compare_missing_key_is_an_error_naming_file_and_key(void **state)
{
    (void)state;
    char a[256], b[256];
    harness_path("a.json", a, sizeof a);
    harness_path("b.json", b, sizeof b);
    write_report(a, 2e6, 1, 0.4, 1);
    write_report(b, 1e6, 1, 0.8, 0);
    char *argv[] = {"report", a, b};
    err e = {0};
    int rc;
    free(run_compare(3, argv, &rc, &e));
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e.msg, "b.json: missing key 'summary.tflops'"));
    FILE *f = fopen(b, "w");
    fputs("{\"schema\":\"other/1\"}", f);
    fclose(f);
    free(run_compare(3, argv, &rc, &e));
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e.msg, "not a 'tpusim run --json' or 'tpusim pod --json' report"));
    char *argv2[] = {"report", "--bogus"};
    free(run_compare(2, argv2, &rc, &e));
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e.msg, "--bogus"));
}

/* A run report with provenance and two regions, and a pod report, as the writers make them. */
static void write_prov_run(const char *path, const char *clock, const char *ovr, double t0)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"schema\":\"tpusim.run/1\",\"trace\":\"t.tpt\",\"config\":\"v7\",\"chip\":\"v7\","
            "\"provenance\":{\"version\":\"0.1.0\",\"config\":\"v7\",\"overrides\":[%s],"
            "\"config_values\":{\"chip.clock_ghz\":\"%s\",\"mxu.rows\":\"256\"},"
            "\"topology\":{\"ici_dims\":\"4x4x4\",\"ici_wrap\":\"xyz\"}},"
            "\"summary\":{\"time_ps\":2000000,\"cycles\":1000,\"instructions\":10,"
            "\"tflops\":1.5,\"peak_tflops_bf16\":2307,\"mxu_util\":0.5,\"mac_util\":0.25,"
            "\"hbm_gbs\":100,\"hbm_util\":0.1,\"ici_bytes\":0},"
            "\"roofline\":{\"intensity_flop_per_byte\":3,\"fraction_of_bound\":0.5,"
            "\"bound_by\":\"memory\"},"
            "\"time_split_ps\":{\"compute\":1000000,\"memory\":0,\"exposed_comm\":0,\"idle\":0},"
            "\"units\":[{\"name\":\"mxu0\",\"util\":0.5}],"
            "\"regions\":[{\"name\":\"attn\",\"start_ps\":0,\"end_ps\":%.0f},"
            "{\"name\":\"mlp\",\"start_ps\":1000000,\"end_ps\":2000000}]}\n",
            ovr, clock, t0);
    fclose(f);
}

static void write_pod(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"schema\":\"tpusim.pod/1\",\"tool\":\"tpusim pod\",\"chip\":\"v7\",\"config\":\"v7\","
          "\"trace\":\"t.tpt\",\"chips\":256,\"topology_desc\":\"4x8x8 torus(xyz)\","
          "\"step_time_s\":0.000004,\"sustained_exaflops\":0.001,\"mfu\":0.2,"
          "\"peak_exaflops\":{\"bf16\":1.18},\"flops_per_chip\":4e6,\"ici_bytes_per_chip\":1024,"
          "\"time_split\":{\"compute_share\":0.5,\"memory_share\":0.1,\"exposed_comm_share\":0.3,"
          "\"idle_share\":0.1},"
          "\"collectives\":[{\"kind\":\"all-reduce\",\"axes\":\"xyz\",\"time_s\":0.000001}],"
          "\"provenance\":{\"version\":\"0.1.0\",\"config\":\"v7\",\"overrides\":[],"
          "\"config_values\":{\"chip.clock_ghz\":\"1\",\"mxu.rows\":\"256\"},"
          "\"topology\":{\"ici_dims\":\"4x8x8\",\"ici_wrap\":\"xyz\"}}}\n",
          f);
    fclose(f);
}

static void test_compare_runs_and_pods_side_by_side_differences_first(void **state)
{
    (void)state;
    char a[256], b[256], p[256];
    harness_path("a.json", a, sizeof a);
    harness_path("b.json", b, sizeof b);
    harness_path("p.json", p, sizeof p);
    write_prov_run(a, "1", "", 1e6);
    write_prov_run(b, "0.5", "\"chip.clock_ghz=0.5\"", 5e5);
    write_pod(p);
    char *argv[] = {"report", a, b, p};
    err e = {0};
    int rc;
    char *out = run_compare(4, argv, &rc, &e);
    if (rc)
        fail_msg("%s", e.msg);
    /* The differences come before the metrics: the override, the key it changed, the kind
     * and the topology; the key that is the same everywhere is not listed. */
    const char *made = strstr(out, "how they were made: what differs");
    const char *metric = strstr(out, "\nmetric");
    assert_non_null(made);
    assert_non_null(metric);
    const char *ov = strstr(out, "-p overrides");
    assert_true(ov && ov < metric);
    assert_true(strstr(ov, "chip.clock_ghz=0.5") < strchr(ov, '\n'));
    const char *key = strstr(out, "  chip.clock_ghz");
    assert_true(key && key < metric && strstr(key, "0.5") < strchr(key, '\n'));
    assert_null(strstr(out, "  mxu.rows"));
    const char *dims = strstr(out, "ici.dims");
    assert_true(dims && dims < metric && strstr(dims, "4x8x8") < strchr(dims, '\n'));
    /* The pod's step time is on the time row; its chips row shows 256; the run's regions are
     * aligned by name (attn halves in B: 0.500), '-' for the pod. */
    const char *t = strstr(metric, "time (us)");
    assert_true(t && strstr(t, "4.000") < strchr(t, '\n'));
    const char *ch = strstr(metric, "\nchips");
    assert_true(ch && strstr(ch, "256") < strchr(ch + 1, '\n'));
    const char *attn = strstr(metric, "region attn (us)");
    assert_non_null(attn);
    const char *eol = strchr(attn, '\n');
    assert_true(strstr(attn, "0.500") < eol);
    assert_true(strstr(attn, " -") < eol);
    const char *coll = strstr(metric, "all-reduce xyz (us)");
    assert_non_null(coll);
    assert_non_null(strstr(metric, "MAC util / MFU (%)"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare_load_errors_name_file_line_and_column),
        cmocka_unit_test(test_compare_load_refuses_deep_nesting_without_crashing),
        cmocka_unit_test(test_compare_table_shows_ratios_and_writes_csv),
        cmocka_unit_test(test_compare_missing_key_is_an_error_naming_file_and_key),
        cmocka_unit_test(test_compare_runs_and_pods_side_by_side_differences_first),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
