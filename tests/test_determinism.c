/* test_determinism.c - one process, many simulations: the SystemC clock behind sim/kernel.cpp
 * is process-wide and only moves forward, so every run, pod estimate and generated trace must
 * come out byte-identical however many simulations ran before it in the same process (the
 * wrapper rebases time to each run's start). Fresh processes are checked by
 * tests/e2e_determinism.sh. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gen.h"
#include "cli.h"
#include "pod.h"
#include "report.h"
#include "run.h"

#define TRACES TPUSIM_SOURCE_DIR "/traces/"
#define V7     TPUSIM_SOURCE_DIR "/configs/v7.yaml"

#include "harness.h"

/* Next line of f that is not one of the provenance's wall-clock lines ("started_utc",
 * "wall_s": the only bytes that differ between runs of the same inputs) or its command line
 * (the outputs compared here are written to different paths); NULL at the end. */
static char *next_line(FILE *f, char **buf, size_t *cap, ssize_t *len)
{
    while ((*len = getline(buf, cap, f)) >= 0)
        if (!strstr(*buf, "\"wall_s\"") && !strstr(*buf, "\"started_utc\"") &&
            !strstr(*buf, "\"command\""))
            return *buf;
    return NULL;
}

/* Assert that two files hold the same, non-empty bytes, wall-clock lines aside. */
static void assert_same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    char *la = NULL, *lb = NULL;
    size_t ca = 0, cb = 0;
    long n = 0;
    for (;;) {
        ssize_t nx, ny;
        char *x = next_line(fa, &la, &ca, &nx), *y = next_line(fb, &lb, &cb, &ny);
        if (!x && !y)
            break;
        if (!x || !y || nx != ny || memcmp(x, y, (size_t)nx))
            fail_msg("%s and %s differ at line %ld", a, b, n + 1);
        n++;
    }
    free(la);
    free(lb);
    fclose(fa);
    fclose(fb);
    assert_true(n > 0);
}

static void run_json(const char *config, const char *trace, const char *json)
{
    run s;
    err e;
    if (run_trace(&s, config, NULL, 0, trace, NULL, &e))
        fail_msg("sim_run_trace %s: %s", trace, e.msg);
    if (report_json(&s.rep, json, &e))
        fail_msg("report_json: %s", e.msg);
    run_fini(&s);
}

static void pod_json(const char *mode, const char *topo, const char *trace, const char *json)
{
    char *argv[] = {"pod",        "-c",         V7,       "-q",         "--mode",      (char *)mode,
                    "--topology", (char *)topo, "--json", (char *)json, (char *)trace, NULL};
    err e;
    if (cli_pod(11, argv, &e))
        fail_msg("pod_main: %s", e.msg);
}

static void gen_trace(const char *out)
{
    char *argv[] = {"gen", "mlp",       "-c", V7, "--batch", "64", "--layers", "1024,4096,1024",
                    "-o",  (char *)out, NULL};
    err e;
    if (cli_gen(10, argv, &e))
        fail_msg("cli_gen: %s", e.msg);
}

static void test_runs_after_other_simulations_give_identical_json(void **state)
{
    (void)state;
    char a[300], b[300], x[300];
    harness_path("run-a.json", a, sizeof a);
    harness_path("run-b.json", b, sizeof b);
    harness_path("other.json", x, sizeof x);
    run_json(V7, TRACES "llm-tiny-train.tpt", a);
    /* Move the process-wide clock on: a long run, a pod estimate and a generator run. */
    run_json(V7, TRACES "llm-tiny-decode.tpt", x);
    pod_json("symmetric", "4x4x4", TRACES "llm-tiny-train.tpt", x);
    run_json(V7, TRACES "llm-tiny-train.tpt", b);
    assert_same_file(a, b);
}

static void test_pod_estimates_repeat_byte_for_byte_in_one_process(void **state)
{
    (void)state;
    char a[300], b[300], fa[300], fb[300], x[300];
    harness_path("pod-a.json", a, sizeof a);
    harness_path("pod-b.json", b, sizeof b);
    harness_path("full-a.json", fa, sizeof fa);
    harness_path("full-b.json", fb, sizeof fb);
    harness_path("other2.json", x, sizeof x);
    pod_json("symmetric", "4x4x4", TRACES "llm-tiny-train.tpt", a);
    pod_json("full", "2x2x2", TRACES "llm-tiny-train.tpt", fa);
    run_json(V7, TRACES "attention-small.tpt", x);
    pod_json("full", "2x2x2", TRACES "llm-tiny-train.tpt", fb);
    pod_json("symmetric", "4x4x4", TRACES "llm-tiny-train.tpt", b);
    assert_same_file(a, b);
    assert_same_file(fa, fb);
}

static void test_generated_traces_repeat_byte_for_byte_in_one_process(void **state)
{
    (void)state;
    char a[300], b[300], x[300];
    harness_path("gen.tpt", a, sizeof a);
    harness_path("gen-first.tpt", b, sizeof b);
    harness_path("other3.json", x, sizeof x);
    /* The same -o both times: the trace's note records the command line. */
    gen_trace(a);
    assert_int_equal(rename(a, b), 0);
    run_json(V7, b, x);
    gen_trace(a);
    assert_same_file(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_after_other_simulations_give_identical_json),
        cmocka_unit_test(test_pod_estimates_repeat_byte_for_byte_in_one_process),
        cmocka_unit_test(test_generated_traces_repeat_byte_for_byte_in_one_process),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
