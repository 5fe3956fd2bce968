/* test_compare.c - the JSON reader (values, escapes, error offsets, depth limit) and the
 * `tpusim report` comparison table (ratios, CSV, missing keys). */
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

static cmp_json *parse(const char *s, err *e)
{
    return compare_json_parse(s, strlen(s), "x.json", e);
}

static void test_compare_json_reads_every_value_kind(void **state)
{
    (void)state;
    err e = {0};
    cmp_json *v =
        parse(" {\"a\": [1, -2.5e3, true, false, null], \"s\": \"q\\\"\\n\\u00e9\\ud83d\\ude00\","
              " \"o\": {\"k\": {}} , \"e\": []}\n",
              &e);
    if (!v)
        fail_msg("%s", e.msg);
    const cmp_json *a = compare_json_get(v, "a");
    assert_int_equal(a->type, CMP_JARR);
    assert_int_equal(a->n, 5);
    assert_true(a->kid[1].num == -2500.0);
    assert_int_equal(a->kid[2].type, CMP_JBOOL);
    assert_true(a->kid[2].num == 1);
    assert_int_equal(a->kid[4].type, CMP_JNULL);
    assert_string_equal(compare_json_get(v, "s")->str, "q\"\n\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(compare_json_path(v, "o.k")->type, CMP_JOBJ);
    assert_true(compare_json_path(v, "a.1")->num == -2500.0);
    assert_null(compare_json_path(v, "a.5"));
    assert_null(compare_json_path(v, "o.missing"));
    assert_int_equal(compare_json_get(v, "e")->n, 0);
    compare_json_free(v);
}

static void test_compare_json_errors_name_file_and_byte_offset(void **state)
{
    (void)state;
    err e = {0};
    assert_null(parse("{\"a\":1,}", &e));
    assert_string_equal(e.msg, "x.json: byte 7: expected a '\"' starting a member name");
    assert_null(parse("[1, 2", &e));
    assert_non_null(strstr(e.msg, "x.json: byte 5: unexpected end of input"));
    assert_null(parse("{\"a\" 1}", &e));
    assert_non_null(strstr(e.msg, "byte 5: expected ':'"));
    assert_null(parse("[1] x", &e));
    assert_non_null(strstr(e.msg, "byte 4: expected end of input"));
    assert_null(parse("[tru]", &e));
    assert_non_null(strstr(e.msg, "byte 1: expected a value"));
    assert_null(parse("\"\\x\"", &e));
    assert_non_null(strstr(e.msg, "valid escape"));
}

static void test_compare_json_limits_nesting_depth(void **state)
{
    (void)state;
    char deep[400];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    err e = {0};
    assert_null(compare_json_parse(deep, sizeof deep, "d.json", &e));
    assert_non_null(strstr(e.msg, "nesting"));
    cmp_json *ok = compare_json_parse(deep + 150, 100, "d.json", &e); /* 50 levels: fine */
    assert_non_null(ok);
    compare_json_free(ok);
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
            "\"hbm_util\":null},"
            "\"roofline\":{\"intensity_flop_per_byte\":3,\"fraction_of_bound\":0.5,"
            "\"bound_by\":\"memory\"},"
            "\"time_split_ps\":{\"compute\":%.0f,\"memory\":0,\"exposed_comm\":0,\"idle\":0},"
            "\"units\":[{\"name\":\"mxu0\",\"util\":%g},{\"name\":\"dma0\",\"util\":0.1}]}\n",
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
    char dir[] = "/tmp/tpusim_cmp_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[64], b[64], csv[64];
    snprintf(a, sizeof a, "%s/a.json", dir);
    snprintf(b, sizeof b, "%s/b.json", dir);
    snprintf(csv, sizeof csv, "%s/c.csv", dir);
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
    unlink(csv);
    unlink(a);
    unlink(b);
    rmdir(dir);
}

static void test_compare_missing_key_is_an_error_naming_file_and_key(void **state)
{
    (void)state;
    char dir[] = "/tmp/tpusim_cmp_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[64], b[64];
    snprintf(a, sizeof a, "%s/a.json", dir);
    snprintf(b, sizeof b, "%s/b.json", dir);
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
    assert_non_null(strstr(e.msg, "not a 'tpusim run --json' report"));
    char *argv2[] = {"report", "--bogus"};
    free(run_compare(2, argv2, &rc, &e));
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e.msg, "--bogus"));
    unlink(a);
    unlink(b);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare_json_reads_every_value_kind),
        cmocka_unit_test(test_compare_json_errors_name_file_and_byte_offset),
        cmocka_unit_test(test_compare_json_limits_nesting_depth),
        cmocka_unit_test(test_compare_table_shows_ratios_and_writes_csv),
        cmocka_unit_test(test_compare_missing_key_is_an_error_naming_file_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
