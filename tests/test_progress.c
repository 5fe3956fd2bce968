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
        progress_observe(p, i, 0, NULL, i, i + 1000, 0, 0);
}

/* A progress line writing to memory, on the fake clock t. */
typedef struct {
    char *buf;
    size_t len;
    FILE *out;
    double t;
    progress *p;
} line;

static void line_open(line *l, uint64_t total, int enabled)
{
    l->buf = NULL;
    l->len = 0;
    l->out = open_memstream(&l->buf, &l->len);
    assert_non_null(l->out);
    l->t = 0;
    l->p = progress_new(l->out, total, enabled, NULL);
    progress_set_clock(l->p, fake_now, &l->t);
}

/* Free the progress line (its finish) and close the stream; buf and len stay readable. */
static void line_close(line *l)
{
    progress_free(l->p);
    fclose(l->out);
}

static void test_progress_disabled_prints_nothing(void **state)
{
    (void)state;
    line l;
    line_open(&l, 1000000, 0);
    for (int b = 0; b < 4; b++) {
        l.t += 10;
        feed(l.p, PROGRESS_CHECK_EVERY);
    }
    assert_int_equal(progress_done(l.p), 4 * PROGRESS_CHECK_EVERY);
    line_close(&l);
    assert_int_equal(l.len, 0);
    free(l.buf);
}

static void test_progress_redraws_at_most_every_half_second(void **state)
{
    (void)state;
    line l;
    line_open(&l, 1000000, 1);
    /* Clock reads at 0.3 s (too soon), 0.6 s (draw), 0.9 s (too soon), 1.2 s (draw). */
    const double at[] = {0.3, 0.6, 0.9, 1.2};
    for (int b = 0; b < 4; b++) {
        l.t = at[b];
        feed(l.p, PROGRESS_CHECK_EVERY);
        assert_int_equal(progress_draws(l.p), (uint64_t)(b + 1) / 2);
    }
    /* Fewer than PROGRESS_CHECK_EVERY more completions never look at the clock. */
    l.t = 100;
    feed(l.p, PROGRESS_CHECK_EVERY - 1);
    assert_int_equal(progress_draws(l.p), 2);
    fflush(l.out);
    assert_non_null(strstr(l.buf, "\rtpusim: 131.1k/1.00M insns (13.1%)"));
    /* 131072 insns in 0.6 s: 218k/s, 868928 left: ETA 4 s. */
    assert_non_null(strstr(l.buf, "ETA 0:00:04"));
    assert_null(strchr(l.buf, '\n'));
    progress_finish(l.p);
    fflush(l.out);
    assert_int_equal(l.buf[l.len - 1], '\n');
    line_close(&l); /* finish again: no second newline */
    assert_int_equal(strchr(l.buf, '\n') - l.buf, (long)l.len - 1);
    free(l.buf);
}

static void test_progress_unknown_total_has_no_percentage(void **state)
{
    (void)state;
    line l;
    line_open(&l, 0, 1);
    l.t = 1;
    feed(l.p, PROGRESS_CHECK_EVERY);
    line_close(&l);
    assert_non_null(strstr(l.buf, "65.5k insns"));
    assert_null(strchr(l.buf, '%'));
    assert_null(strstr(l.buf, "ETA"));
    free(l.buf);
}

static void test_progress_finish_without_draw_prints_nothing(void **state)
{
    (void)state;
    line l;
    line_open(&l, 10, 1);
    feed(l.p, 10);
    line_close(&l);
    assert_int_equal(l.len, 0);
    free(l.buf);
}

static unsigned calls[2];
static void count0(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t s, uint64_t e,
                   unsigned r, uint64_t b)
{
    (void)ctx, (void)idx, (void)op, (void)u, (void)s, (void)e, (void)r, (void)b;
    calls[0]++;
}
static void count1(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t s, uint64_t e,
                   unsigned r, uint64_t b)
{
    (void)ctx, (void)op, (void)u, (void)s, (void)e, (void)r, (void)b;
    calls[1] += (unsigned)idx;
    assert_ptr_equal(ctx, calls);
}

static void test_progress_fanout_calls_each_observer_with_its_ctx(void **state)
{
    (void)state;
    progress_fanout f = {0};
    assert_int_equal(progress_fanout_add(&f, count0, NULL), 0);
    assert_int_equal(progress_fanout_add(&f, count1, calls), 0);
    progress_fanout_observe(&f, 5, 0, NULL, 0, 1, 0, 0);
    progress_fanout_observe(&f, 7, 0, NULL, 0, 1, 0, 0);
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
    line l;
    line_open(&l, 0, 1);
    progress_start(l.p, 2 * PROGRESS_CHECK_EVERY);
    l.t = 1;
    feed(l.p, PROGRESS_CHECK_EVERY);
    progress_start(l.p, UINT64_MAX); /* unknown: no percentage from here on */
    l.t = 2;
    feed(l.p, PROGRESS_CHECK_EVERY);
    line_close(&l);
    assert_non_null(strstr(l.buf, "(50.0%)"));
    assert_null(strstr(l.buf, "(100.0%)"));
    free(l.buf);
}

static void test_progress_complete_ends_at_100_percent(void **state)
{
    (void)state;
    line l;
    line_open(&l, 10 * PROGRESS_CHECK_EVERY, 1);
    /* 9 of 10 parts complete on units (the rest are syncs and marks), drawn once at 10%. */
    l.t = 1;
    feed(l.p, 9 * PROGRESS_CHECK_EVERY);
    progress_complete(l.p);
    line_close(&l);
    const char *last = strrchr(l.buf, '\r');
    assert_non_null(last);
    assert_non_null(strstr(last, "(100.0%)"));
    assert_non_null(strstr(l.buf, "(10.0%)")); /* the draw during the run */
    free(l.buf);
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
