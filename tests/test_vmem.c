/* test_vmem.c - the VMEM bandwidth arbiter: closed-form share times, shares fixed at start,
 * expiry by end time (a share ending at t is not a competitor of one starting at t, in
 * whichever order same-time clients arrive), busy time dominating, capacity checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "config.h"
#include "vmem.h"

/* 1 GHz, 2 cores x 64 B/cycle = 128 B per 1000 ps: 1000 B alone take ceil(7812.5) ps. */
static vmem *vm_new(void)
{
    cfg c;
    cfg_defaults(&c);
    c.chip_clock_ghz = 1.0;
    c.chip_cores = 2;
    c.vmem_bytes_per_cycle = 64;
    c.vmem_bytes = 4096;
    return vmem_new(&c, NULL);
}

static void test_alone_and_shared(void **state)
{
    (void)state;
    vmem *v = vm_new();
    assert_int_equal(vmem_share(v, 1000, 0, 0), 7813);    /* ceil(1000 / 0.128) */
    assert_int_equal(vmem_share(v, 1000, 0, 100), 15625); /* 2 shares held at 100 */
    assert_int_equal(vmem_share(v, 1280, 0, 200), 30000); /* 3 shares: 1280 x 3 / 0.128 */
    assert_int_equal(vmem_share(v, 0, 0, 300), 0);        /* nothing to move */
    assert_int_equal(vmem_bytes(v), 3280);
    vmem_free(v);
}

static void test_busy_dominates_and_holds(void **state)
{
    (void)state;
    vmem *v = vm_new();
    /* Compute-bound client: busy 50000 ps > 7813 ps of transfer; it holds its share for
     * the whole 50000 ps at the rate it uses, 1000 B / 50000 ps = 0.02 B/ps, so a client at
     * 40000 gets what it leaves of 0.128 B/ps: 1000 / 0.108 = 9259.3 -> 9260 ps (an equal
     * split would have given 15625); one at 55625 is alone. */
    assert_int_equal(vmem_share(v, 1000, 50000, 0), 50000);
    assert_int_equal(vmem_share(v, 1000, 0, 40000), 9260);
    assert_int_equal(vmem_share(v, 1000, 0, 55625), 7813); /* both ended by 55625 */
    vmem_free(v);
}

/* Two shares end at 7813; two clients start at 7813. Neither counts the ended shares; the
 * second to claim sees the first (the callers make same-instant claims in a defined order). */
static void test_expiry_at_same_time(void **state)
{
    (void)state;
    vmem *v = vm_new();
    assert_int_equal(vmem_share(v, 1000, 0, 0), 7813);
    assert_int_equal(vmem_share(v, 500, 7813, 0), 7813); /* busy 7813 > 2 x 500 B */
    assert_int_equal(vmem_share(v, 1000, 0, 7813), 7813);
    assert_int_equal(vmem_share(v, 1000, 0, 7813), 15625);
    /* A share claimed now that starts later counts only what is still held then. */
    assert_int_equal(vmem_share_at(v, 1000, 0, 20000, 7813), 15625); /* the first ended */
    vmem_free(v);
}

/* More overlapping clients than the initial table holds: the table grows, counts stay exact. */
static void test_many_clients(void **state)
{
    (void)state;
    vmem *v = vm_new();
    for (uint64_t i = 1; i <= 100; i++)
        assert_int_equal(vmem_share(v, 128, 1000000, 0), 1000000);
    /* 101st share while all 100 are held, each using 128 B / 1e6 ps: it gets the rest,
     * 0.128 - 100 x 1.28e-4 = 0.1152 B/ps: 128 / 0.1152 = 1111.1 -> 1112 ps. */
    assert_int_equal(vmem_share(v, 128, 0, 10), 1112);
    /* After they all end, alone again. */
    assert_int_equal(vmem_share(v, 128, 0, 1000000), 1000);
    vmem_free(v);
}

/* Clients that want all they can get split the bandwidth equally (the rest left by those
 * already running is less than an equal share): 1000 B alone 7813 ps; a second starting at
 * the same instant gets 0.128 / 2 (the first holds 0.128): 15625; a third 0.128 / 3: 23438.
 * A paced client next to them still gets at least an equal share: with the three held, a
 * fourth of 1000 B over at least 100000 ps gets max(0.128 / 4, 0.128 - 0.128 - 0.064 - ...)
 * = 0.032 B/ps, 31250 ps < 100000: its busy time. */
static void test_hungry_clients_split_equally(void **state)
{
    (void)state;
    vmem *v = vm_new();
    assert_int_equal(vmem_share(v, 1000, 0, 0), 7813);
    assert_int_equal(vmem_share(v, 1000, 0, 0), 15625);
    assert_int_equal(vmem_share(v, 1000, 0, 0), 23438);
    assert_int_equal(vmem_share(v, 1000, 100000, 0), 100000);
    vmem_free(v);
}

static void test_capacity(void **state)
{
    (void)state;
    vmem *v = vm_new();
    assert_int_equal(vmem_capacity(v), 8192); /* 2 cores x 4096 */
    assert_true(vmem_contains(v, 0, 8192));
    assert_true(vmem_contains(v, 8191, 1));
    assert_false(vmem_contains(v, 8191, 2));
    assert_false(vmem_contains(v, 8193, 0));
    assert_false(vmem_contains(v, 1, UINT64_MAX)); /* no wrap-around */
    vmem_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alone_and_shared),
        cmocka_unit_test(test_busy_dominates_and_holds),
        cmocka_unit_test(test_expiry_at_same_time),
        cmocka_unit_test(test_many_clients),
        cmocka_unit_test(test_hungry_clients_split_equally),
        cmocka_unit_test(test_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
