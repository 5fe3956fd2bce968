/* test_ici.c - the ICI network and unit: ring collectives against their closed forms on tori
 * and meshes (docs/models-ici.md), link contention, point-to-point timing, barriers, FULL
 * versus SYMMETRIC agreement on traces driven through the unit by fake cores, and the memory
 * footprint of a 9,216-chip pod network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "ici.h"
#include "kernel.h"
#include "stats.h"
#include "unit.h"
#include "units.h"

#define MiB      (1024ULL * 1024ULL)
#define MAXCHIPS 64
#define MAXI     32

/* ---- helpers ---- */

static void test_cfg(cfg *c, const char *wrap, double gbs, double hop_ns)
{
    cfg_defaults(c);
    snprintf(c->ici_wrap, sizeof c->ici_wrap, "%s", wrap);
    c->ici_link_gbs = gbs;
    c->ici_hop_latency_ns = hop_ns;
    c->ici_links_per_chip = 6; /* 3D topologies need 2 links per axis */
}

static uint64_t g_end[MAXCHIPS * 2];
static unsigned g_ndone;

static void rec_done(void *arg, uint64_t end_ps)
{
    uint64_t *slot = arg;
    *slot = end_ps;
    g_ndone++;
}

/* Run `reps` copies of one operation started at time 0 on every chip (FULL) or on chip 0
 * (SYMMETRIC); return the latest completion. */
static uint64_t run_op(const cfg *c, const char *dims, ici_mode mode, ici_kind kind, unsigned axes,
                       unsigned dir, uint64_t bytes, unsigned reps)
{
    err e;
    kern_begin();
    ici_net *n = ici_net_new(c, dims, mode, &e);
    assert_non_null(n);
    unsigned chips = mode == ICI_MODE_FULL ? ici_net_chips(n) : 1;
    assert_true(chips * reps <= MAXCHIPS * 2);
    g_ndone = 0;
    memset(g_end, 0, sizeof g_end);
    for (unsigned r = 0; r < reps; r++)
        for (unsigned i = 0; i < chips; i++)
            ici_net_start(n, i, kind, axes, dir, bytes, rec_done, &g_end[r * chips + i]);
    kern_run(KERN_FOREVER);
    assert_int_equal(g_ndone, chips * reps);
    uint64_t end = 0;
    for (unsigned i = 0; i < chips * reps; i++)
        end = g_end[i] > end ? g_end[i] : end;
    ici_net_free(n);
    return end;
}

/* Closed form of a ring reduce-scatter (or all-gather) phase on an axis of p chips moving B
 * bytes per chip: (p-1) * (hop + B/(2p)/bw) with wraparound, (p-1) * (hop + B/p/bw) on a
 * mesh line. Times in ps, bw in bytes/ps. */
static double ring_ps(unsigned p, int wrap, double B, double hop, double bw)
{
    return (p - 1) * (hop + B / (p * (wrap ? 2.0 : 1.0)) / bw);
}

static void assert_close(double got, double want, double tol)
{
    double rel = got > want ? (got - want) / want : (want - got) / want;
    if (rel > tol)
        fail_msg("got %.0f ps, expected %.0f ps (%.2f%% off, tolerance %.2f%%)", got, want,
                 rel * 100, tol * 100);
}

static const double HOP = 1e6; /* 1000 ns in ps */
static const double BW = 0.05; /* 50 GB/s in bytes/ps */

/* ---- closed forms, uncontended ---- */

/* A collective over the first naxes axes of dims (4 chips per axis) in both modes, against
 * `rings` ring passes per axis with the payload shrinking 4x per axis: an all-gather is one
 * pass per axis (the output growing back to B), an all-reduce two (reduce-scatter x, y, z,
 * then all-gather back). */
static void check_rings(ici_kind kind, unsigned rings, const char *dims, const char *wrap,
                        unsigned naxes)
{
    cfg c;
    test_cfg(&c, wrap, 50, 1000);
    double B = 48 * MiB;
    unsigned axes = (1u << naxes) - 1;
    double want = 0, b = B;
    for (unsigned a = 0; a < naxes; a++) {
        want += rings * ring_ps(4, strchr(wrap, "xyz"[a]) != NULL, b, HOP, BW);
        b /= 4;
    }
    for (int m = 0; m < 2; m++) {
        uint64_t t =
            run_op(&c, dims, m ? ICI_MODE_SYMMETRIC : ICI_MODE_FULL, kind, axes, 0, (uint64_t)B, 1);
        assert_close((double)t, want, 0.01);
    }
}

static void check_allgather(const char *dims, const char *wrap, unsigned naxes)
{
    check_rings(ICI_ALLGATHER, 1, dims, wrap, naxes);
}

static void test_ici_allgather_matches_ring_closed_form_on_torus_and_mesh(void **state)
{
    (void)state;
    check_allgather("4x4", "xy", 2);
    check_allgather("4x4", "", 2);
    check_allgather("4x4x4", "xyz", 3);
    check_allgather("4x4x4", "", 3);
}

static void check_allreduce(const char *dims, const char *wrap, unsigned naxes)
{
    check_rings(ICI_ALLREDUCE, 2, dims, wrap, naxes);
}

static void test_ici_allreduce_is_reduce_scatter_then_all_gather_per_axis(void **state)
{
    (void)state;
    check_allreduce("4x4", "xy", 2);
    check_allreduce("4x4", "", 2);
    check_allreduce("4x4x4", "xyz", 3);
    check_allreduce("4x4x4", "", 3);
}

/* Two devices per chip (chip.cores 2, chip.megacore false, as v7): the simulated device and
 * its sibling run the same program over the chip's links, so each gets half of every link
 * direction. A collective then takes the ring closed form at bw / 2 (hop latency unchanged),
 * in both modes: all-gather 1 pass per axis, all-reduce 2. The same chip as one megacore
 * device keeps the whole link. */
static void test_ici_two_devices_per_chip_take_the_closed_form_at_half_the_link(void **state)
{
    (void)state;
    static const struct {
        const char *dims, *wrap;
        unsigned naxes;
    } topo[] = {{"4x4x4", "xyz", 3}, {"4x4x4", "", 3}, {"4x4", "xy", 2}};
    for (size_t t = 0; t < sizeof topo / sizeof topo[0]; t++)
        for (int mega = 0; mega < 2; mega++)
            for (unsigned rings = 1; rings <= 2; rings++) {
                cfg c;
                test_cfg(&c, topo[t].wrap, 50, 1000);
                c.chip_cores = 2;
                c.chip_megacore = mega;
                assert_int_equal(cfg_devices_per_chip(&c), mega ? 1 : 2);
                double bw = mega ? BW : BW / 2, B = 48 * MiB, b = B, want = 0;
                for (unsigned a = 0; a < topo[t].naxes; a++) {
                    want += rings * ring_ps(4, strchr(topo[t].wrap, "xyz"[a]) != NULL, b, HOP, bw);
                    b /= 4;
                }
                ici_kind kind = rings == 1 ? ICI_ALLGATHER : ICI_ALLREDUCE;
                unsigned axes = (1u << topo[t].naxes) - 1;
                for (int m = 0; m < 2; m++)
                    assert_close((double)run_op(&c, topo[t].dims,
                                                m ? ICI_MODE_SYMMETRIC : ICI_MODE_FULL, kind, axes,
                                                0, (uint64_t)B, 1),
                                 want, 0.01);
            }
}

/* A point-to-point send of one device also takes bytes / (bw / 2) + hop. */
static void test_ici_two_devices_per_chip_halve_a_send(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "xy", 50, 1000);
    c.chip_cores = 2;
    c.chip_megacore = 0;
    for (int m = 0; m < 2; m++) {
        uint64_t t =
            run_op(&c, "4x4", m ? ICI_MODE_SYMMETRIC : ICI_MODE_FULL, ICI_SEND, 1, 0, 8 * MiB, 1);
        assert_close((double)t, 8 * MiB / (BW / 2) + HOP, 1e-6);
    }
}

static void test_ici_single_axis_allreduce_over_y_only(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "xy", 50, 1000);
    double B = 8 * MiB;
    double want = 2 * ring_ps(8, 1, B, HOP, BW);
    assert_close((double)run_op(&c, "4x8", ICI_MODE_FULL, ICI_ALLREDUCE, 2, 0, B, 1), want, 0.01);
    assert_close((double)run_op(&c, "4x8", ICI_MODE_SYMMETRIC, ICI_ALLREDUCE, 2, 0, B, 1), want,
                 0.01);
}

static void test_ici_mesh_axis_has_half_the_ring_bandwidth(void **state)
{
    (void)state;
    cfg torus, mesh;
    test_cfg(&torus, "x", 50, 0);
    test_cfg(&mesh, "", 50, 0);
    for (int m = 0; m < 2; m++) {
        ici_mode mode = m ? ICI_MODE_SYMMETRIC : ICI_MODE_FULL;
        double tt = (double)run_op(&torus, "8", mode, ICI_REDUCESCATTER, 1, 0, 64 * MiB, 1);
        double tm = (double)run_op(&mesh, "8", mode, ICI_REDUCESCATTER, 1, 0, 64 * MiB, 1);
        assert_close(tm / tt, 2.0, 0.001);
    }
}

static void test_ici_alltoall_is_bisection_limited(void **state)
{
    (void)state;
    cfg torus, mesh;
    test_cfg(&torus, "x", 50, 1000);
    test_cfg(&mesh, "", 50, 1000);
    double B = 32 * MiB;
    /* p = 8 torus: per link-direction load B/p * S/2, S = 1+2+3+4+3+2+1 = 16 -> B; the
     * farthest chip is 4 hops away. Mesh: middle cut carries B/p * 4 * 4 = 2B, 7 hops. */
    double want_t = 4 * HOP + B / BW, want_m = 7 * HOP + 2 * B / BW;
    for (int m = 0; m < 2; m++) {
        ici_mode mode = m ? ICI_MODE_SYMMETRIC : ICI_MODE_FULL;
        assert_close((double)run_op(&torus, "8", mode, ICI_ALLTOALL, 1, 0, B, 1), want_t, 0.01);
        assert_close((double)run_op(&mesh, "8", mode, ICI_ALLTOALL, 1, 0, B, 1), want_m, 0.01);
    }
}

static void test_ici_multi_axis_alltoall_routes_all_axes_at_once(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "xyz", 50, 1000);
    double B = 32 * MiB;
    /* 4x4x8 torus, dimension-ordered routing on every axis at once: per link direction x and y
     * carry B/4 * 4/2 = B/2, z carries B/8 * 16/2 = B (the bottleneck); the farthest chip is
     * 2 + 2 + 4 hops away. */
    double want = 8 * HOP + B / BW;
    for (int m = 0; m < 2; m++) {
        ici_mode mode = m ? ICI_MODE_SYMMETRIC : ICI_MODE_FULL;
        assert_close((double)run_op(&c, "4x4x8", mode, ICI_ALLTOALL, 7, 0, B, 1), want, 0.01);
    }
    /* mesh 4x4: each axis' middle link carries B/4 * 2 * 2 = B; 3 + 3 hops */
    test_cfg(&c, "", 50, 1000);
    for (int m = 0; m < 2; m++) {
        ici_mode mode = m ? ICI_MODE_SYMMETRIC : ICI_MODE_FULL;
        assert_close((double)run_op(&c, "4x4", mode, ICI_ALLTOALL, 3, 0, B, 1), 6 * HOP + B / BW,
                     0.01);
    }
}

static void test_ici_twisted_torus_speeds_up_alltoall_not_rings(void **state)
{
    (void)state;
    cfg plain, tw;
    test_cfg(&plain, "xyz", 50, 1000);
    test_cfg(&tw, "xyz", 50, 1000);
    tw.ici_twisted = 1;
    double B = 32 * MiB;
    /* 4x4x8 twisted (x and y wraps shift z by 4): breadth-first search gives a mean distance
     * of 3.4375 hops (55/16) and a diameter of 6, against 4 and 8 untwisted; balanced routing
     * loads every link direction with B * 3.4375 / 6. */
    double want = 6 * HOP + B * (55.0 / 16) / 6 / BW;
    for (int m = 0; m < 2; m++) {
        ici_mode mode = m ? ICI_MODE_SYMMETRIC : ICI_MODE_FULL;
        double t = (double)run_op(&tw, "4x4x8", mode, ICI_ALLTOALL, 7, 0, B, 1);
        assert_close(t, want, 0.01);
        double u = (double)run_op(&plain, "4x4x8", mode, ICI_ALLTOALL, 7, 0, B, 1);
        assert_true(u / t > 1.6); /* about 1.7x (bandwidth 1.75x, latency 8 vs 6 hops) */
        /* ring collectives use the same logical rings and links: unchanged */
        assert_int_equal(run_op(&tw, "4x4x8", mode, ICI_ALLREDUCE, 7, 0, B, 1),
                         run_op(&plain, "4x4x8", mode, ICI_ALLREDUCE, 7, 0, B, 1));
    }
    err e;
    kern_begin();
    ici_net *n = ici_net_new(&tw, "4x4x8", ICI_MODE_SYMMETRIC, &e);
    assert_non_null(n);
    assert_string_equal(ici_net_describe(n), "4x4x8 twisted torus(xyz)");
    uint64_t end = 0;
    ici_net_start(n, 0, ICI_ALLTOALL, 7, 0, B, rec_done, &end);
    kern_run(KERN_FOREVER);
    assert_string_equal(ici_net_row(n, 0)->algo,
                        "routed all-to-all over x,y,z (twisted torus, balanced)");
    ici_net_free(n);
}

static void test_ici_twisted_wrap_links_reach_the_shifted_chip(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "xyz", 50, 1000);
    c.ici_twisted = 1;
    uint64_t bytes = 1 * MiB;
    uint64_t want = (uint64_t)(HOP + bytes / BW + 0.5);
    /* a ring shift along each axis on every chip of a 2x2x4 twisted torus: the recvs match
     * only if the +x wrap of chip (1,y,z) lands on (0,y,z+2) and the -x wrap of (0,y,z+2)
     * comes back to (1,y,z) */
    for (unsigned a = 0; a < 3; a++) {
        err e;
        kern_begin();
        ici_net *n = ici_net_new(&c, "2x2x4", ICI_MODE_FULL, &e);
        assert_non_null(n);
        static uint64_t s[16], r[16];
        g_ndone = 0;
        for (unsigned i = 0; i < 16; i++) {
            ici_net_start(n, i, ICI_RECV, 1u << a, 1, bytes, rec_done, &r[i]);
            ici_net_start(n, i, ICI_SEND, 1u << a, 0, bytes, rec_done, &s[i]);
        }
        kern_run(KERN_FOREVER);
        assert_int_equal(g_ndone, 32);
        for (unsigned i = 0; i < 16; i++)
            assert_int_equal(r[i], want);
        ici_net_free(n);
    }
}

/* ---- contention and point to point ---- */

static void test_ici_two_concurrent_collectives_on_one_axis_take_twice_as_long(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "xy", 50, 1000);
    for (int m = 0; m < 2; m++) {
        ici_mode mode = m ? ICI_MODE_SYMMETRIC : ICI_MODE_FULL;
        double one = (double)run_op(&c, "4x4", mode, ICI_ALLGATHER, 1, 0, 64 * MiB, 1);
        double two = (double)run_op(&c, "4x4", mode, ICI_ALLGATHER, 1, 0, 64 * MiB, 2);
        assert_close(two / one, 2.0, 0.05);
    }
}

static void test_ici_send_recv_take_hop_latency_plus_bytes_over_bandwidth(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "xy", 50, 1000);
    uint64_t bytes = 1 * MiB;
    uint64_t want = (uint64_t)(HOP + bytes / BW + 0.5);
    for (int m = 0; m < 2; m++) {
        err e;
        kern_begin();
        ici_net *n = ici_net_new(&c, "4x4", m ? ICI_MODE_SYMMETRIC : ICI_MODE_FULL, &e);
        assert_non_null(n);
        unsigned chips = m ? 1 : 16;
        uint64_t sends[16], recvs[16];
        g_ndone = 0;
        /* every chip shifts along y: send towards +, receive from - */
        for (unsigned i = 0; i < chips; i++) {
            ici_net_start(n, i, ICI_RECV, 2, 1, bytes, rec_done, &recvs[i]);
            ici_net_start(n, i, ICI_SEND, 2, 0, bytes, rec_done, &sends[i]);
        }
        kern_run(KERN_FOREVER);
        assert_int_equal(g_ndone, 2 * chips);
        for (unsigned i = 0; i < chips; i++) {
            assert_int_equal(sends[i], want);
            assert_int_equal(recvs[i], want);
        }
        ici_net_free(n);
    }
}

static void test_ici_back_to_back_sends_serialise_on_the_link(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "x", 50, 1000);
    uint64_t bytes = 4 * MiB;
    double want = HOP + 3.0 * bytes / BW;
    assert_close((double)run_op(&c, "4", ICI_MODE_FULL, ICI_SEND, 1, 0, bytes, 3), want, 1e-6);
    assert_close((double)run_op(&c, "4", ICI_MODE_SYMMETRIC, ICI_SEND, 1, 0, bytes, 3), want, 1e-6);
}

/* ---- barrier ---- */

static unsigned g_bar;
static uint64_t g_bar_t;
static void bar_done(void *arg)
{
    (void)arg;
    g_bar++;
    g_bar_t = kern_now();
}

typedef struct bar_kick {
    ici_net *n;
    unsigned chip;
    kern_event *ev;
} bar_kick;

static void kick(void *ctx)
{
    bar_kick *k = ctx;
    ici_net_barrier(k->n, k->chip, bar_done, NULL);
}

static void test_ici_full_barrier_waits_for_the_last_chip(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "xy", 50, 1000);
    err e;
    kern_begin();
    ici_net *n = ici_net_new(&c, "2x2", ICI_MODE_FULL, &e);
    assert_non_null(n);
    bar_kick k[4];
    for (unsigned i = 0; i < 4; i++) {
        k[i] = (bar_kick){n, i, kern_event_new(kick, &k[i])};
        kern_notify(k[i].ev, 1000 * (i + 1));
    }
    g_bar = 0;
    kern_run(KERN_FOREVER);
    assert_int_equal(g_bar, 4);
    /* the last chip arrives at 4000 ps; release 2 (p - 1) hops per axis later, as in
     * symmetric mode: 2 axes x 2 x 1 hop x 1 us */
    assert_int_equal(g_bar_t, 4000 + 2 * 2 * 1 * 1000000ull);
    for (unsigned i = 0; i < 4; i++)
        kern_event_free(k[i].ev);
    ici_net_free(n);
}

static void test_ici_symmetric_barrier_costs_a_zero_byte_allreduce(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "xyz", 50, 1000);
    err e;
    kern_begin();
    ici_net *n = ici_net_new(&c, "4x4x8", ICI_MODE_SYMMETRIC, &e);
    assert_non_null(n);
    g_bar = 0;
    ici_net_barrier(n, 0, bar_done, NULL);
    assert_int_equal(g_bar, 0); /* never synchronously */
    kern_run(KERN_FOREVER);
    assert_int_equal(g_bar, 1);
    assert_int_equal(g_bar_t, (uint64_t)(2 * (3 + 3 + 7) * HOP));
    ici_net_free(n);
}

/* ---- the unit driven by fake cores: FULL vs SYMMETRIC on a trace ---- */

typedef struct fake {
    unit_env env;
    unit *u;
    const isa_insn *prog;
    unsigned n, next, ndone;
    uint64_t end_ps;
} fake;

static void fake_pump(fake *f)
{
    while (f->next < f->n && unit_can_start(f->u, &f->prog[f->next])) {
        unsigned i = f->next++;
        unit_start(f->u, &f->prog[i], i);
    }
}

static void fake_done(void *host, unit *u, uint32_t token)
{
    fake *f = host;
    assert_ptr_equal(u, f->u);
    assert_true(token < f->n);
    f->ndone++;
    f->end_ps = kern_now();
    fake_pump(f);
}

static void fake_wake(void *host, unit *u)
{
    (void)u;
    fake_pump(host);
}

typedef struct fake_kick {
    fake *f;
    kern_event *ev;
} fake_kick;

static void fake_kick_cb(void *ctx)
{
    fake_pump(((fake_kick *)ctx)->f);
}

static isa_insn coll(unsigned op, unsigned axes, uint64_t bytes)
{
    isa_insn in = {.op = (uint16_t)op};
    in.arg[ISA_COLL_AXES] = axes;
    in.arg[ISA_COLL_BYTES] = bytes;
    in.arg[ISA_COLL_DTYPE] = ISA_DT_BF16;
    return in;
}

static isa_insn p2p(unsigned op, unsigned axis, unsigned dir, uint64_t bytes)
{
    isa_insn in = {.op = (uint16_t)op};
    in.arg[ISA_P2P_AXIS] = axis;
    in.arg[ISA_P2P_DIR] = dir;
    in.arg[ISA_P2P_BYTES] = bytes;
    return in;
}

/* Replay `prog` on every chip (FULL) or one chip (SYMMETRIC) through the ICI unit; returns
 * the latest end and fills *bytes0 with chip 0's unit byte counter. */
static uint64_t run_prog(const cfg *c, const char *dims, ici_mode mode, const isa_insn *prog,
                         unsigned n, uint64_t *bytes0, uint64_t *insns0)
{
    static fake f[MAXCHIPS];
    static fake_kick k[MAXCHIPS];
    err e;
    kern_begin();
    ici_net *net = ici_net_new(c, dims, mode, &e);
    assert_non_null(net);
    unsigned chips = mode == ICI_MODE_FULL ? ici_net_chips(net) : 1;
    assert_true(chips <= MAXCHIPS);
    for (unsigned i = 0; i < chips; i++) {
        f[i] = (fake){.env = {.cfg = c,
                              .cycle_ps = cfg_cycle_ps(c),
                              .net = net,
                              .chip_id = i,
                              .host = &f[i],
                              .done = fake_done,
                              .wake = fake_wake},
                      .prog = prog,
                      .n = n};
        f[i].u = unit_new(&ici_ops, &f[i].env, 0, &e);
        assert_non_null(f[i].u);
        k[i] = (fake_kick){&f[i], kern_event_new(fake_kick_cb, &k[i])};
        kern_notify(k[i].ev, 0);
    }
    kern_run(KERN_FOREVER);
    uint64_t end = 0;
    for (unsigned i = 0; i < chips; i++) {
        assert_int_equal(f[i].ndone, n);
        end = f[i].end_ps > end ? f[i].end_ps : end;
    }
    *bytes0 = f[0].u->bytes;
    *insns0 = f[0].u->insns;
    stats_reg *r = stats_new(NULL);
    unit_register_stats(f[0].u, r);
    ici_net_register_stats(net, r);
    assert_int_equal((uint64_t)stats_get(r, "ici", "mismatches", -1), 0);
    assert_true(stats_get(r, "ici0", "allreduce_count", 0) >= 1);
    stats_free(r);
    for (unsigned i = 0; i < chips; i++) {
        unit_free(f[i].u);
        kern_event_free(k[i].ev);
    }
    ici_net_free(net);
    return end;
}

static void check_agreement(const char *dims, const char *wrap)
{
    cfg c;
    test_cfg(&c, wrap, 50, 1000);
    const isa_insn prog[] = {
        coll(ISA_OP_ICI_ALLREDUCE, 3, 16 * MiB),    p2p(ISA_OP_ICI_SEND, 1, 0, 2 * MiB),
        p2p(ISA_OP_ICI_RECV, 1, 1, 2 * MiB),        coll(ISA_OP_ICI_ALLGATHER, 1, 8 * MiB),
        coll(ISA_OP_ICI_REDUCESCATTER, 2, 8 * MiB), coll(ISA_OP_ICI_ALLTOALL, 3, 4 * MiB),
        p2p(ISA_OP_ICI_SEND, 2, 1, 1 * MiB),        p2p(ISA_OP_ICI_RECV, 2, 0, 1 * MiB),
        coll(ISA_OP_ICI_ALLREDUCE, 7, 1 * MiB),
    };
    unsigned n = sizeof prog / sizeof prog[0];
    uint64_t bf, bs, inf, ins;
    double tf = (double)run_prog(&c, dims, ICI_MODE_FULL, prog, n, &bf, &inf);
    double ts = (double)run_prog(&c, dims, ICI_MODE_SYMMETRIC, prog, n, &bs, &ins);
    assert_close(ts, tf, 0.03);
    assert_int_equal(inf, n);
    assert_int_equal(ins, n);
    assert_int_equal(bf, bs); /* the same bytes leave chip 0's links */
}

static void test_ici_full_and_symmetric_agree_on_a_collective_trace(void **state)
{
    (void)state;
    check_agreement("4x4", "xy");
    check_agreement("4x4x4", "xyz");
    check_agreement("2x4", "");
}

static void test_ici_unit_runs_send_and_recv_together_but_collectives_alone(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "x", 50, 1000);
    err e;
    kern_begin();
    ici_net *net = ici_net_new(&c, "4", ICI_MODE_SYMMETRIC, &e);
    assert_non_null(net);
    fake f = {.env = {.cfg = &c, .net = net, .chip_id = 0, .done = fake_done, .wake = fake_wake}};
    f.env.host = &f;
    f.u = unit_new(&ici_ops, &f.env, 0, &e);
    assert_non_null(f.u);
    isa_insn s = p2p(ISA_OP_ICI_SEND, 1, 0, MiB), r = p2p(ISA_OP_ICI_RECV, 1, 1, MiB);
    isa_insn a = coll(ISA_OP_ICI_ALLREDUCE, 1, MiB);
    assert_true(unit_can_start(f.u, &s));
    unit_start(f.u, &s, 0);
    assert_true(unit_can_start(f.u, &r));
    assert_false(unit_can_start(f.u, &s));
    unit_start(f.u, &r, 1);
    assert_false(unit_can_start(f.u, &a));
    f.n = f.next = 2; /* started by hand: the fake core has nothing more to issue */
    kern_run(KERN_FOREVER);
    assert_int_equal(f.ndone, 2);
    assert_true(unit_can_start(f.u, &a));
    unit_start(f.u, &a, 0);
    assert_false(unit_can_start(f.u, &s));
    assert_false(unit_can_start(f.u, &a));
    f.n = f.next = 1;
    f.ndone = 0;
    kern_run(KERN_FOREVER);
    assert_int_equal(f.ndone, 1);
    assert_int_equal(f.u->insns, 3);
    unit_free(f.u);
    ici_net_free(net);
}

/* ---- scale, errors, description ---- */

static void test_ici_pod_of_9216_chips_is_small_and_fast_in_symmetric_mode(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "xyz", 100, 1000);
    err e;
    kern_begin();
    ici_net *n = ici_net_new(&c, "16x24x24", ICI_MODE_SYMMETRIC, &e);
    assert_non_null(n);
    assert_int_equal(ici_net_chips(n), 9216);
    assert_int_equal(ici_net_axes(n), 3);
    uint64_t end = 0;
    g_ndone = 0;
    ici_net_start(n, 0, ICI_ALLREDUCE, 7, 0, 256 * MiB, rec_done, &end);
    kern_run(KERN_FOREVER);
    assert_int_equal(g_ndone, 1);
    double B = 256 * MiB, bw = 0.1;
    double want = 2 * (ring_ps(16, 1, B, HOP, bw) + ring_ps(24, 1, B / 16, HOP, bw) +
                       ring_ps(24, 1, B / 16 / 24, HOP, bw));
    assert_close((double)end, want, 0.01);
    assert_true(ici_net_footprint(n) < 64 * MiB);
    assert_true(ici_net_footprint(n) < 64 * 1024); /* no per-chip state at all */
    ici_net_free(n);
    /* FULL mode keeps per-link state for every chip but nothing per pair */
    kern_begin();
    n = ici_net_new(&c, "16x24x24", ICI_MODE_FULL, &e);
    assert_non_null(n);
    assert_true(ici_net_footprint(n) < 64 * MiB);
    ici_net_free(n);
}

static void test_ici_rejects_bad_topologies(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "xy", 50, 1000);
    err e;
    const char *bad[] = {"", "4x", "x4", "4x4x4x4", "0x4", "4y4"};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e.msg[0] = 0;
        assert_null(ici_net_new(&c, bad[i], ICI_MODE_SYMMETRIC, &e));
        assert_non_null(strstr(e.msg, "ici"));
    }
    snprintf(c.ici_wrap, sizeof c.ici_wrap, "xw");
    assert_null(ici_net_new(&c, "4x4", ICI_MODE_SYMMETRIC, &e));
    assert_non_null(strstr(e.msg, "'w'"));
    /* a 3D torus needs 6 ports */
    test_cfg(&c, "xyz", 50, 1000);
    c.ici_links_per_chip = 4;
    assert_null(ici_net_new(&c, "4x4x4", ICI_MODE_SYMMETRIC, &e));
    assert_non_null(strstr(e.msg, "needs 6 links per chip"));
    kern_begin();
    ici_net *ok = ici_net_new(&c, "4x4x1", ICI_MODE_SYMMETRIC, &e); /* a unit axis needs none */
    assert_non_null(ok);
    ici_net_free(ok);
    /* twisting needs a wrapped k x k x 2k-like shape */
    test_cfg(&c, "xyz", 50, 1000);
    c.ici_twisted = 1;
    const char *untwistable[] = {"4x4x4", "4x4x12", "8", "1x2x2"};
    for (unsigned i = 0; i < sizeof untwistable / sizeof untwistable[0]; i++) {
        e.msg[0] = 0;
        assert_null(ici_net_new(&c, untwistable[i], ICI_MODE_SYMMETRIC, &e));
        assert_non_null(strstr(e.msg, "ici.twisted"));
    }
    test_cfg(&c, "xy", 50, 1000);
    c.ici_twisted = 1;
    assert_null(ici_net_new(&c, "4x4x8", ICI_MODE_SYMMETRIC, &e)); /* z is not wrapped */
    assert_non_null(strstr(e.msg, "every axis wrapped"));
    kern_begin();
    ok = ici_net_new(&c, "8x4", ICI_MODE_SYMMETRIC, &e); /* 2D 2k x k */
    assert_non_null(ok);
    ici_net_free(ok);
}

static void test_ici_describes_topology_and_records_rows(void **state)
{
    (void)state;
    cfg c;
    test_cfg(&c, "x", 50, 1000);
    err e;
    kern_begin();
    ici_net *n = ici_net_new(&c, "4x2", ICI_MODE_SYMMETRIC, &e);
    assert_non_null(n);
    assert_string_equal(ici_net_describe(n), "4x2 torus(x) mesh(y)");
    uint64_t end = 0;
    ici_net_start(n, 0, ICI_ALLREDUCE, 3, 0, 8 * MiB, rec_done, &end);
    ici_net_start(n, 0, ICI_ALLREDUCE, 3, 0, 8 * MiB, rec_done, &end);
    kern_run(KERN_FOREVER);
    assert_int_equal(ici_net_nrows(n), 1);
    const ici_row *r = ici_net_row(n, 0);
    assert_int_equal(r->kind, ICI_ALLREDUCE);
    assert_int_equal(r->axes, 3);
    assert_int_equal(r->count, 2);
    assert_int_equal(r->bytes, 16 * MiB);
    assert_string_equal(r->algo, "bidir-ring/line RS+AG over x,y");
    assert_true(r->bus_factor == 2.0 * 7 / 8);
    double bw = ici_row_busbw(r);
    assert_true(bw > 0 && bw < 4 * 50e9); /* cannot exceed the chip's 4 link directions */
    stats_reg *reg = stats_new(NULL);
    ici_net_register_stats(n, reg);
    assert_true(stats_get(reg, "ici", "allreduce_xy_count", 0) == 2);
    assert_true(stats_get(reg, "ici", "allreduce_xy_busbw", 0) > 0);
    stats_free(reg);
    ici_net_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ici_allgather_matches_ring_closed_form_on_torus_and_mesh),
        cmocka_unit_test(test_ici_allreduce_is_reduce_scatter_then_all_gather_per_axis),
        cmocka_unit_test(test_ici_two_devices_per_chip_take_the_closed_form_at_half_the_link),
        cmocka_unit_test(test_ici_two_devices_per_chip_halve_a_send),
        cmocka_unit_test(test_ici_single_axis_allreduce_over_y_only),
        cmocka_unit_test(test_ici_mesh_axis_has_half_the_ring_bandwidth),
        cmocka_unit_test(test_ici_alltoall_is_bisection_limited),
        cmocka_unit_test(test_ici_multi_axis_alltoall_routes_all_axes_at_once),
        cmocka_unit_test(test_ici_twisted_torus_speeds_up_alltoall_not_rings),
        cmocka_unit_test(test_ici_twisted_wrap_links_reach_the_shifted_chip),
        cmocka_unit_test(test_ici_two_concurrent_collectives_on_one_axis_take_twice_as_long),
        cmocka_unit_test(test_ici_send_recv_take_hop_latency_plus_bytes_over_bandwidth),
        cmocka_unit_test(test_ici_back_to_back_sends_serialise_on_the_link),
        cmocka_unit_test(test_ici_full_barrier_waits_for_the_last_chip),
        cmocka_unit_test(test_ici_symmetric_barrier_costs_a_zero_byte_allreduce),
        cmocka_unit_test(test_ici_full_and_symmetric_agree_on_a_collective_trace),
        cmocka_unit_test(test_ici_unit_runs_send_and_recv_together_but_collectives_alone),
        cmocka_unit_test(test_ici_pod_of_9216_chips_is_small_and_fast_in_symmetric_mode),
        cmocka_unit_test(test_ici_rejects_bad_topologies),
        cmocka_unit_test(test_ici_describes_topology_and_records_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
