/* test_fuzz_sim.c - the simulator fuzzer's checker in the normal suite: the harness body of
 * tests/fuzz/fuzz_sim.c (config and program generation, single-chip and pod runs, the
 * invariants) replayed over the fixed seeds of tests/fuzz/corpus/sim/, which between them
 * reach valid programs, deliberate deadlocks, deliberate operand errors and both pod modes;
 * and the checker shown to catch results that break an invariant. */
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The harness and its scratch-file helpers, without libFuzzer's entry point (some helpers
 * serve only the other harnesses or the entry point). */
#define SF_NO_FUZZER_ENTRY
#define FUZZ_PRESETS_DIR TPUSIM_SOURCE_DIR "/configs"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "fuzz/fuzz_sim.c"
#pragma GCC diagnostic pop

#define SEEDS TPUSIM_SOURCE_DIR "/tests/fuzz/corpus/sim"

static jmp_buf caught_jmp;
static char caught[1024];

static void catch_failure(const char *msg)
{
    snprintf(caught, sizeof caught, "%s", msg);
    longjmp(caught_jmp, 1);
}

static uint8_t *read_seed(const char *name, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", SEEDS, name);
    uint8_t *d = fuzz_slurp(path, size);
    assert_non_null(d);
    return d;
}

/* Run one seed through the harness; fails the test with the invariant's message. */
static void run_seed(const char *name)
{
    size_t size;
    uint8_t *d = read_seed(name, &size);
    caught[0] = 0;
    sf_fail_hook = catch_failure;
    if (setjmp(caught_jmp)) {
        sf_fail_hook = NULL;
        if (sf_current)
            sf_dump(sf_current);
        free(d);
        fail_msg("seed %s: %s", name, caught);
    }
    int rc = sf_one(d, size);
    sf_fail_hook = NULL;
    free(d);
    assert_int_equal(rc, 0);
}

static int seed_filter(const struct dirent *de)
{
    return de->d_name[0] != '.';
}

static void test_fuzz_sim_seeds_hold_every_invariant(void **state)
{
    (void)state;
    struct dirent **list;
    int n = scandir(SEEDS, &list, seed_filter, alphasort);
    assert_true(n >= 10);
    memset(&sf_count, 0, sizeof sf_count);
    for (int i = 0; i < n; i++) {
        run_seed(list[i]->d_name);
        free(list[i]);
    }
    free(list);
    /* the seeds reach each kind of outcome and both pod modes */
    assert_true(sf_count.ok > 0);
    assert_true(sf_count.deadlock > 0);
    assert_true(sf_count.error > 0);
    assert_true(sf_count.pod_sym > 0);
    assert_true(sf_count.pod_full > 0);
}

/* The simulator findings: a replay that failed (kern_stop) left a method process triggered
 * for the next delta cycle, which then ran the callback of the next simulation's DMA engine
 * (same pooled event): a valid send/recv program reported "deadlock: 4294967295
 * instruction(s) started but never completed" (f3); and it left cancelled timed
 * notifications that reordered same-time events of the next simulation, whose single-chip
 * time then differed from the symmetric pod's on the same topology (f5). */
static void test_fuzz_sim_failed_run_leaves_no_stale_event(void **state)
{
    (void)state;
    run_seed("f3a-stale-event-after-failed-run");
    run_seed("f3a-stale-event-after-failed-run");
    run_seed("f3b-stale-event-after-failed-run");
    run_seed("f5a-run-after-a-failed-run");
    run_seed("f5b-run-after-a-failed-run");
}

/* Build the case of a seed and run it on one chip, as sf_one does. */
static void run_case(sf_case *k, run *r, const char *seed)
{
    size_t size;
    uint8_t *d = read_seed(seed, &size);
    sf_src s = {d, size};
    memset(k, 0, sizeof *k);
    sf_u8(&s);
    sf_make_cfg(k, &s);
    sf_make_prog(k, &s);
    free(d);
    assert_int_equal(k->expect, SF_OK);
    char path[512];
    fuzz_path(path, sizeof path, "check.tpt");
    assert_int_equal(sf_write_trace(k, path), 0);
    err e;
    memset(r, 0, sizeof *r);
    assert_int_equal(sim_run_cfg(&r->sim, &k->c, path, NULL, &e), 0);
    assert_int_equal(report_build(&r->rep, r->sim.chip, r->sim.stats, path, "", &e), 0);
}

/* Expect sf_check_run to report a violation containing `what`. */
static void expect_caught(const sf_case *k, const run *r, const char *what)
{
    caught[0] = 0;
    sf_fail_hook = catch_failure;
    if (!setjmp(caught_jmp))
        sf_check_run(k, r);
    sf_fail_hook = NULL;
    if (!strstr(caught, what))
        fail_msg("expected a violation about '%s', got '%s'", what, caught);
}

static void test_fuzz_sim_checker_catches_broken_results(void **state)
{
    (void)state;
    static sf_case k;
    run r;
    run_case(&k, &r, "valid-mixed");
    assert_true(k.flops > 0 && k.hbm_bytes > 0 && r.rep.end_ps > 0);

    /* the untouched result passes */
    sf_fail_hook = catch_failure;
    caught[0] = 0;
    if (!setjmp(caught_jmp))
        assert_int_equal(sf_check_run(&k, &r), 0);
    sf_fail_hook = NULL;
    assert_string_equal(caught, "");

    report saved = r.rep;
    r.rep.t_split_ps[UNIT_SPLIT_IDLE]++;
    expect_caught(&k, &r, "time split");
    r.rep = saved;
    r.rep.flops++;
    expect_caught(&k, &r, "FLOPs");
    r.rep = saved;
    /* the same bytes on an HBM a million times slower than the one that moved them */
    double gbps = k.c.hbm_gbps_per_pin;
    k.c.hbm_gbps_per_pin *= 1e-6;
    expect_caught(&k, &r, "above the");
    k.c.hbm_gbps_per_pin = gbps;
    r.rep.units[0].busy_ps = r.rep.end_ps + 1;
    expect_caught(&k, &r, "busy");
    r.rep = saved;
    run_fini(&r);

    /* an outcome other than the one the program was built for */
    k.expect = SF_DEADLOCK;
    k.why = "a wait on a semaphore nothing signals";
    err e = {0};
    sf_fail_hook = catch_failure;
    caught[0] = 0;
    if (!setjmp(caught_jmp))
        sf_check_failure(&k, 0, &e, "single chip");
    sf_fail_hook = NULL;
    assert_non_null(strstr(caught, "not a deadlock"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_sim_seeds_hold_every_invariant),
        cmocka_unit_test(test_fuzz_sim_failed_run_leaves_no_stale_event),
        cmocka_unit_test(test_fuzz_sim_checker_catches_broken_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
