/* test_dcn.c - the DCN unit (sim/units/dcn.c): an all-reduce across dcn.slices slices against
 * the closed form stated there and in docs/models-ici.md ("DCN"),
 *     T = 2 (S-1) (lat + B / (S bw)),
 * its bytes and energy, all-reduces serialising on the chip's share, overlap with the ICI
 * (the exposed time split by kind), and a chip of one slice having no DCN unit at all.
 *
 * Test machine: the built-in defaults with dcn.gbs = 6.25 (160 ps per byte exactly) and
 * dcn.latency_us = 10 unless a test overrides them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "run.h"

#define US  1000000ULL /* ps */
#define MiB (1ULL << 20)

/* Replay `text` with the overrides; fails the test on error. */
static void run_text(run *s, const char *name, const char *text, const char **ovr, unsigned n)
{
    char p[256];
    harness_assemble(name, text, p, sizeof p);
    err e;
    if (run_trace(s, NULL, ovr, n, p, NULL, &e))
        fail_msg("%s: %s", name, e.msg);
}

static double stat(const run *s, const char *group, const char *name)
{
    return stats_get(s->sim.stats, group, name, -1);
}

/* The closed form in ps: 2 (S-1) lat + 2 (S-1)/S B / bw, bw in GB/s = 1e-3 B/ps. */
static double closed_form_ps(unsigned S, double bytes, double gbs, double lat_us)
{
    return 2.0 * (S - 1) * lat_us * 1e6 + 2.0 * (S - 1) / S * bytes * 1e3 / gbs;
}

#define AR64 "dcn.allreduce bytes=64M dtype=bf16\n"

/* Two slices: each chip sends half its buffer and receives half (reduce-scatter), then sends
 * and receives the other half (all-gather): T = 2 lat + B / bw. */
static void test_dcn_two_slices_take_two_latencies_plus_the_buffer_over_the_bandwidth(void **state)
{
    (void)state;
    const char *ovr[] = {"dcn.slices=2", "dcn.gbs=6.25", "dcn.latency_us=10"};
    run s;
    run_text(&s, "two", AR64, ovr, 3);
    uint64_t want = 2 * 10 * US + 64 * MiB * 160; /* 160 ps per byte */
    assert_int_equal(s.rep.end_ps, want);
    assert_true(s.rep.end_ps == (uint64_t)closed_form_ps(2, 64.0 * MiB, 6.25, 10));
    assert_int_equal(stat(&s, "dcn0", "allreduce_count"), 1);
    assert_int_equal(stat(&s, "dcn0", "allreduce_bytes"), 64 * MiB);
    assert_int_equal(stat(&s, "dcn0", "allreduce_time_ps"), want);
    assert_int_equal(stat(&s, "dcn0", "busy_ps"), want);
    /* nothing else runs: the whole run is exposed DCN time */
    assert_int_equal(stat(&s, "core", "t_comm_ps"), want);
    assert_int_equal(stat(&s, "core", "t_comm_dcn_ps"), want);
    assert_int_equal(stat(&s, "core", "t_comm_ici_ps"), 0);
    run_fini(&s);
}

/* With no latency the time is bytes over bandwidth: twice the bandwidth, half the time. */
static void test_dcn_time_halves_when_the_bandwidth_doubles(void **state)
{
    (void)state;
    const char *slow[] = {"dcn.slices=2", "dcn.gbs=6.25", "dcn.latency_us=0"};
    const char *fast[] = {"dcn.slices=2", "dcn.gbs=12.5", "dcn.latency_us=0"};
    run a, b;
    run_text(&a, "slow", AR64, slow, 3);
    run_text(&b, "fast", AR64, fast, 3);
    assert_int_equal(a.rep.end_ps, 64 * MiB * 160);
    assert_int_equal(a.rep.end_ps, 2 * b.rep.end_ps);
    run_fini(&a);
    run_fini(&b);
}

/* S slices: a ring of 2 (S-1) steps of B/S each; the chip sends 2 (S-1)/S B, which the
 * energy model charges at energy.dcn_pj_bit. */
static void test_dcn_ring_over_s_slices_matches_the_closed_form(void **state)
{
    (void)state;
    static const unsigned S[] = {3, 4, 8, 64};
    for (unsigned i = 0; i < sizeof S / sizeof S[0]; i++) {
        char sl[32];
        snprintf(sl, sizeof sl, "dcn.slices=%u", S[i]);
        const char *ovr[] = {sl, "dcn.gbs=6.25", "dcn.latency_us=10", "energy.dcn_pj_bit=15"};
        run s;
        run_text(&s, "ring", AR64, ovr, 4);
        double want = closed_form_ps(S[i], 64.0 * MiB, 6.25, 10);
        assert_true(fabs((double)s.rep.end_ps - want) <= 1);
        double sent = 2.0 * (S[i] - 1) / S[i] * 64.0 * MiB;
        assert_true(fabs(stat(&s, "dcn0", "bytes") - sent) <= 1);
        assert_true(fabs(stat(&s, "energy", "dcn_j") - sent * 8 * 15e-12) <= 1e-9);
        run_fini(&s);
    }
}

/* One chip's share runs one all-reduce at a time: two independent ones take twice as long. */
static void test_dcn_allreduces_serialise_on_the_chips_share(void **state)
{
    (void)state;
    const char *ovr[] = {"dcn.slices=2", "dcn.gbs=6.25", "dcn.latency_us=10"};
    run s;
    run_text(&s, "two_ops", AR64 AR64, ovr, 3);
    assert_int_equal(s.rep.end_ps, 2 * (uint64_t)closed_form_ps(2, 64.0 * MiB, 6.25, 10));
    assert_int_equal(stat(&s, "dcn0", "allreduce_count"), 2);
    run_fini(&s);
}

/* The DCN has its own queue: an ICI all-reduce issued alongside overlaps it. While both run
 * the exposed time is neither kind's alone; after the ICI one ends, it is the DCN's. An
 * instruction waiting on a semaphore the ICI one signals starts at its end. */
static void test_dcn_overlaps_the_ici_and_splits_the_exposed_time(void **state)
{
    (void)state;
    const char *ovr[] = {"dcn.slices=2", "dcn.gbs=6.25",    "dcn.latency_us=10",   "ici.dims=4",
                         "ici.wrap=x",   "ici.link_gbs=50", "ici.hop_latency_ns=0"};
    /* ICI ring of 4, torus: all-reduce 2 x 3 x (1M/8 B x 20 ps/B) = 15,728,640 ps */
    uint64_t t_ici = 2 * 3 * (MiB / 8) * 20,
             t_dcn = (uint64_t)closed_form_ps(2, 64.0 * MiB, 6.25, 10);
    run s;
    run_text(&s, "overlap", "ici.allreduce axes=x bytes=1M dtype=bf16\n" AR64, ovr, 7);
    assert_int_equal(s.rep.end_ps, t_dcn);
    assert_int_equal(stat(&s, "core", "t_comm_ps"), t_dcn);
    assert_int_equal(stat(&s, "core", "t_comm_ici_ps"), 0);
    assert_int_equal(stat(&s, "core", "t_comm_dcn_ps"), t_dcn - t_ici);
    run_fini(&s);
    run_text(&s, "chain",
             "ici.allreduce axes=x bytes=1M dtype=bf16 signal=2\n"
             "dcn.allreduce bytes=64M dtype=bf16 wait=2\n",
             ovr, 7);
    assert_int_equal(s.rep.end_ps, t_ici + t_dcn);
    assert_int_equal(stat(&s, "core", "t_comm_ici_ps"), t_ici);
    assert_int_equal(stat(&s, "core", "t_comm_dcn_ps"), t_dcn);
    run_fini(&s);
}

/* One slice (the default): no DCN unit, no per-kind exposed time; a DCN instruction is an
 * error that says how to give the slices. */
static void test_dcn_one_slice_has_no_dcn_unit(void **state)
{
    (void)state;
    run s;
    run_text(&s, "one", "ici.allreduce axes=x bytes=1M dtype=bf16\n", NULL, 0);
    assert_true(stat(&s, "dcn0", "busy_ps") < 0);
    assert_true(stat(&s, "core", "t_comm_ici_ps") < 0);
    assert_true(stat(&s, "core", "t_comm_ps") > 0);
    run_fini(&s);
    char p[256];
    harness_assemble("one_dcn", AR64, p, sizeof p);
    err e;
    assert_int_not_equal(run_trace(&s, NULL, NULL, 0, p, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "dcn.slices = 1"));
    run_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dcn_two_slices_take_two_latencies_plus_the_buffer_over_the_bandwidth),
        cmocka_unit_test(test_dcn_time_halves_when_the_bandwidth_doubles),
        cmocka_unit_test(test_dcn_ring_over_s_slices_matches_the_closed_form),
        cmocka_unit_test(test_dcn_allreduces_serialise_on_the_chips_share),
        cmocka_unit_test(test_dcn_overlaps_the_ici_and_splits_the_exposed_time),
        cmocka_unit_test(test_dcn_one_slice_has_no_dcn_unit),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
