/* test_progress.c - the stderr progress line: silent when disabled, redraw rate limited by
 * the (injected) wall clock, percentage and ETA, newline at the end; the observer fan-out. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "progress.h"

static double fake_now(void *ctx)
{
    return *(double *)ctx;
}

static void feed(progress *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        progress_observe(p, i, 0, NULL, i, i + 1000, 0);
}

static void test_progress_disabled_prints_nothing(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    double t = 0;
    progress *p = progress_new(out, 1000000, 0, NULL);
    progress_set_clock(p, fake_now, &t);
    for (int b = 0; b < 4; b++) {
        t += 10;
        feed(p, PROGRESS_CHECK_EVERY);
    }
    assert_int_equal(progress_done(p), 4 * PROGRESS_CHECK_EVERY);
    progress_free(p);
    fclose(out);
    assert_int_equal(len, 0);
    free(buf);
}

static void test_progress_redraws_at_most_every_half_second(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    double t = 0;
    progress *p = progress_new(out, 1000000, 1, NULL);
    progress_set_clock(p, fake_now, &t);
    /* Clock reads at 0.3 s (too soon), 0.6 s (draw), 0.9 s (too soon), 1.2 s (draw). */
    const double at[] = {0.3, 0.6, 0.9, 1.2};
    for (int b = 0; b < 4; b++) {
        t = at[b];
        feed(p, PROGRESS_CHECK_EVERY);
        assert_int_equal(progress_draws(p), (uint64_t)(b + 1) / 2);
    }
    /* Fewer than PROGRESS_CHECK_EVERY more completions never look at the clock. */
    t = 100;
    feed(p, PROGRESS_CHECK_EVERY - 1);
    assert_int_equal(progress_draws(p), 2);
    fflush(out);
    assert_non_null(strstr(buf, "\rtpusim: 131.1k/1.00M insns (13.1%)"));
    /* 131072 insns in 0.6 s: 218k/s, 868928 left: ETA 4 s. */
    assert_non_null(strstr(buf, "ETA 0:00:04"));
    assert_null(strchr(buf, '\n'));
    progress_finish(p);
    fflush(out);
    assert_int_equal(buf[len - 1], '\n');
    progress_free(p); /* finish again: no second newline */
    fclose(out);
    assert_int_equal(strchr(buf, '\n') - buf, (long)len - 1);
    free(buf);
}

static void test_progress_unknown_total_has_no_percentage(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    double t = 0;
    progress *p = progress_new(out, 0, 1, NULL);
    progress_set_clock(p, fake_now, &t);
    t = 1;
    feed(p, PROGRESS_CHECK_EVERY);
    progress_free(p);
    fclose(out);
    assert_non_null(strstr(buf, "65.5k insns"));
    assert_null(strchr(buf, '%'));
    assert_null(strstr(buf, "ETA"));
    free(buf);
}

static void test_progress_finish_without_draw_prints_nothing(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    progress *p = progress_new(out, 10, 1, NULL);
    feed(p, 10);
    progress_free(p);
    fclose(out);
    assert_int_equal(len, 0);
    free(buf);
}

static unsigned calls[2];
static void count0(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t s, uint64_t e,
                   unsigned r)
{
    (void)ctx, (void)idx, (void)op, (void)u, (void)s, (void)e, (void)r;
    calls[0]++;
}
static void count1(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t s, uint64_t e,
                   unsigned r)
{
    (void)ctx, (void)op, (void)u, (void)s, (void)e, (void)r;
    calls[1] += (unsigned)idx;
    assert_ptr_equal(ctx, calls);
}

static void test_progress_fanout_calls_each_observer_with_its_ctx(void **state)
{
    (void)state;
    progress_fanout f = {0};
    assert_int_equal(progress_fanout_add(&f, count0, NULL), 0);
    assert_int_equal(progress_fanout_add(&f, count1, calls), 0);
    progress_fanout_observe(&f, 5, 0, NULL, 0, 1, 0);
    progress_fanout_observe(&f, 7, 0, NULL, 0, 1, 0);
    assert_int_equal(calls[0], 2);
    assert_int_equal(calls[1], 12);
    assert_int_equal(progress_fanout_add(&f, count0, NULL), 0);
    assert_int_equal(progress_fanout_add(&f, count0, NULL), 0);
    assert_int_equal(progress_fanout_add(&f, count0, NULL), -1);
}

/* The total arrives from the replay's reader (sim_hooks.start), not from a second open. */
static void test_progress_start_sets_the_total(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    double t = 0;
    progress *p = progress_new(out, 0, 1, NULL);
    progress_set_clock(p, fake_now, &t);
    progress_start(p, 2 * PROGRESS_CHECK_EVERY);
    t = 1;
    feed(p, PROGRESS_CHECK_EVERY);
    progress_start(p, UINT64_MAX); /* unknown: no percentage from here on */
    t = 2;
    feed(p, PROGRESS_CHECK_EVERY);
    progress_free(p);
    fclose(out);
    assert_non_null(strstr(buf, "(50.0%)"));
    assert_null(strstr(buf, "(100.0%)"));
    free(buf);
}

static void test_progress_complete_ends_at_100_percent(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    double t = 0;
    progress *p = progress_new(out, 10 * PROGRESS_CHECK_EVERY, 1, NULL);
    progress_set_clock(p, fake_now, &t);
    /* 9 of 10 parts complete on units (the rest are syncs and marks), drawn once at 10%. */
    t = 1;
    feed(p, 9 * PROGRESS_CHECK_EVERY);
    progress_complete(p);
    progress_free(p);
    fclose(out);
    const char *last = strrchr(buf, '\r');
    assert_non_null(last);
    assert_non_null(strstr(last, "(100.0%)"));
    assert_non_null(strstr(buf, "(10.0%)")); /* the draw during the run */
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_complete_ends_at_100_percent),
        cmocka_unit_test(test_progress_disabled_prints_nothing),
        cmocka_unit_test(test_progress_redraws_at_most_every_half_second),
        cmocka_unit_test(test_progress_unknown_total_has_no_percentage),
        cmocka_unit_test(test_progress_finish_without_draw_prints_nothing),
        cmocka_unit_test(test_progress_fanout_calls_each_observer_with_its_ctx),
        cmocka_unit_test(test_progress_start_sets_the_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
