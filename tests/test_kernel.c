/* test_kernel.c - the SystemC wrapper: event ordering, time base, pooled events, and many
 * simulations in one process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kernel.h"

typedef struct rec {
    uint64_t t[16];
    int id[16];
    int n;
} rec;

typedef struct tag {
    rec *r;
    int id;
} tag;

static void record(void *ctx)
{
    tag *g = ctx;
    g->r->t[g->r->n] = kern_now();
    g->r->id[g->r->n++] = g->id;
}

static void test_kernel_events_fire_in_time_order(void **state)
{
    (void)state;
    rec r = {0};
    tag a = {&r, 1}, b = {&r, 2}, c = {&r, 3};
    kern_begin();
    kern_event *ea = kern_event_new(record, &a), *eb = kern_event_new(record, &b),
               *ec = kern_event_new(record, &c);
    kern_notify(ea, 3000);
    kern_notify(eb, 1000);
    kern_notify(ec, 2000);
    assert_int_equal(kern_run(KERN_FOREVER), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.id[0], 2);
    assert_int_equal(r.id[1], 3);
    assert_int_equal(r.id[2], 1);
    assert_int_equal(r.t[0], 1000);
    assert_int_equal(r.t[1], 2000);
    assert_int_equal(r.t[2], 3000);
    kern_event_free(ea);
    kern_event_free(eb);
    kern_event_free(ec);
}

static void test_kernel_pending_notification_keeps_earlier_time(void **state)
{
    (void)state;
    rec r = {0};
    tag a = {&r, 1};
    kern_begin();
    kern_event *e = kern_event_new(record, &a);
    kern_notify(e, 5000);
    kern_notify(e, 2000); /* earlier wins */
    kern_notify(e, 9000); /* later is ignored */
    kern_run(KERN_FOREVER);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.t[0], 2000);
    kern_event_free(e);
}

typedef struct chain {
    kern_event *ev;
    int left;
    uint64_t step;
} chain;

static void chain_cb(void *ctx)
{
    chain *c = ctx;
    if (--c->left > 0)
        kern_notify(c->ev, c->step);
}

static void test_kernel_each_simulation_starts_at_zero(void **state)
{
    (void)state;
    for (int run = 0; run < 5; run++) {
        chain c = {0};
        kern_begin();
        assert_int_equal(kern_now(), 0);
        c.ev = kern_event_new(chain_cb, &c);
        c.left = 100;
        c.step = 7;
        kern_notify(c.ev, 7);
        kern_run(KERN_FOREVER);
        assert_int_equal(c.left, 0);
        assert_int_equal(kern_now(), 700);
        assert_int_equal(kern_event_count(), 100);
        kern_event_free(c.ev);
    }
}

static void test_kernel_run_stops_at_limit_and_resumes(void **state)
{
    (void)state;
    chain c = {0};
    kern_begin();
    c.ev = kern_event_new(chain_cb, &c);
    c.left = 10;
    c.step = 100;
    kern_notify(c.ev, 100);
    assert_int_equal(kern_run(450), 1); /* events still pending */
    assert_int_equal(kern_now(), 450);
    assert_int_equal(c.left, 6);
    assert_int_equal(kern_run(KERN_FOREVER), 0);
    assert_int_equal(c.left, 0);
    assert_int_equal(kern_now(), 1000);
    kern_event_free(c.ev);
}

static void stopper(void *ctx)
{
    int *n = ctx;
    (*n)++;
    kern_stop();
}

static void test_kernel_stop_returns_with_events_pending(void **state)
{
    (void)state;
    int n = 0;
    rec r = {0};
    tag a = {&r, 1};
    kern_begin();
    kern_event *s = kern_event_new(stopper, &n), *later = kern_event_new(record, &a);
    kern_notify(s, 10);
    kern_notify(later, 20);
    assert_int_equal(kern_run(KERN_FOREVER), 1);
    assert_int_equal(n, 1);
    assert_int_equal(r.n, 0);
    kern_event_free(later); /* cancels the pending notification */
    assert_int_equal(kern_run(KERN_FOREVER), 0);
    assert_int_equal(r.n, 0);
    kern_event_free(s);
}

static void test_kernel_freed_events_are_reused_without_stale_callbacks(void **state)
{
    (void)state;
    rec r = {0};
    tag a = {&r, 1}, b = {&r, 2};
    kern_begin();
    kern_event *e1 = kern_event_new(record, &a);
    kern_notify(e1, 100);
    kern_event_free(e1);
    kern_event *e2 = kern_event_new(record, &b); /* likely the same pooled event */
    kern_notify(e2, 200);
    kern_run(KERN_FOREVER);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.id[0], 2);
    assert_int_equal(r.t[0], 200);
    kern_event_free(e2);
}

/* SystemC's order, which results depend on (kernel.cpp): every timed event of an instant runs
 * before the delta cycle after it, and a delta cycle's events run last-notified first. */
typedef struct fan {
    tag self;
    kern_event *d1, *d2;
} fan;

static void fan_out(void *ctx)
{
    fan *f = ctx;
    record(&f->self);
    kern_notify(f->d1, 0);
    kern_notify(f->d2, 0);
    kern_notify(f->d1, 500); /* a pending delta notification stays */
}

static void test_kernel_delta_cycle_runs_after_the_instant_last_notified_first(void **state)
{
    (void)state;
    rec r = {0};
    tag b = {&r, 1}, d1 = {&r, 2}, d2 = {&r, 3};
    kern_begin();
    fan f = {{&r, 0}, kern_event_new(record, &d1), kern_event_new(record, &d2)};
    kern_event *ea = kern_event_new(fan_out, &f), *eb = kern_event_new(record, &b);
    kern_notify(ea, 1000);
    kern_notify(eb, 1000);
    assert_int_equal(kern_run(KERN_FOREVER), 0);
    assert_int_equal(r.n, 4);
    const int want[4] = {0, 1, 3, 2};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r.id[i], want[i]);
        assert_int_equal(r.t[i], 1000);
    }
    kern_event_free(ea);
    kern_event_free(eb);
    kern_event_free(f.d1);
    kern_event_free(f.d2);
}

/* kern_set_order reverses (or shuffles) the callbacks triggered together; the default is
 * SystemC's order, restored for the other tests. */
static void test_kernel_order_knob_reverses_one_instant(void **state)
{
    (void)state;
    rec r = {0};
    tag g[4] = {{&r, 0}, {&r, 1}, {&r, 2}, {&r, 3}};
    kern_event *ev[4];
    int sc[3] = {0};
    for (int order = KERN_ORDER_SYSTEMC; order <= KERN_ORDER_REVERSE; order++) {
        r.n = 0;
        kern_set_order(order, 0);
        kern_begin();
        for (int i = 0; i < 4; i++) {
            ev[i] = kern_event_new(record, &g[i]);
            kern_notify(ev[i], i == 3 ? 2000 : 1000);
        }
        assert_int_equal(kern_run(KERN_FOREVER), 0);
        assert_int_equal(r.n, 4);
        int seen = 0;
        for (int i = 0; i < 3; i++)
            seen |= 1 << r.id[i];
        assert_int_equal(seen, 7); /* the instant at 1000 first, whatever its order */
        assert_int_equal(r.id[3], 3);
        for (int i = 0; i < 3; i++) {
            if (order == KERN_ORDER_REVERSE)
                assert_int_equal(r.id[i], sc[2 - i]);
            else
                sc[i] = r.id[i];
        }
        for (int i = 0; i < 4; i++)
            kern_event_free(ev[i]);
    }
    kern_set_order(KERN_ORDER_SYSTEMC, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_events_fire_in_time_order),
        cmocka_unit_test(test_kernel_pending_notification_keeps_earlier_time),
        cmocka_unit_test(test_kernel_each_simulation_starts_at_zero),
        cmocka_unit_test(test_kernel_run_stops_at_limit_and_resumes),
        cmocka_unit_test(test_kernel_stop_returns_with_events_pending),
        cmocka_unit_test(test_kernel_freed_events_are_reused_without_stale_callbacks),
        cmocka_unit_test(test_kernel_delta_cycle_runs_after_the_instant_last_notified_first),
        cmocka_unit_test(test_kernel_order_knob_reverses_one_instant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
