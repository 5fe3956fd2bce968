/* test_hbm.c - the HBM timing models driven directly (no kernel): closed-form latencies of
 * the banked state machine, stream efficiencies against peak, refresh, turnaround, and the
 * simple model's formula. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "hbm.h"
#include "stats.h"

#define KiB 1024ULL
#define MiB (1024ULL * 1024ULL)

/* Defaults with refresh pushed far out, so closed-form tests see no refresh. */
static void cfg_norefresh(cfg *c)
{
    cfg_defaults(c);
    c->hbm_trefi_ns = 1e6;
}

/* An HBM model for c with its counters registered in a new registry *r (the caller frees
 * both). */
static hbm *hbm_counted(const cfg *c, stats_reg **r)
{
    hbm *h = hbm_new(c, NULL);
    *r = stats_new(NULL);
    assert_non_null(h);
    assert_non_null(*r);
    hbm_register_stats(h, *r);
    return h;
}

/* v7-like HBM3: 128 channels x 2 pseudo-channels x 32 bits at 7.2 Gb/s, BL8. */
static void cfg_v7like(cfg *c)
{
    cfg_defaults(c);
    c->hbm_channels = 128;
    c->hbm_pseudo_channels = 2;
    c->hbm_bus_bits = 32;
    c->hbm_gbps_per_pin = 7.2;
    c->hbm_burst_length = 8;
    c->hbm_row_bytes = 1024;
    c->hbm_interleave_bytes = 256;
}

typedef uint64_t (*addr_fn)(uint64_t i, void *ctx);

/* Issue n accesses of `bytes` with `inflight` outstanding: each completion issues the next
 * access at that time (the way DMA engines do). Returns the time the last one completes. */
static uint64_t drive(hbm *h, addr_fn f, void *ctx, uint64_t n, uint64_t bytes, unsigned inflight,
                      int is_write)
{
    uint64_t done[4096] = {0};
    uint64_t issued = 0, end = 0;
    assert_true(inflight <= 4096);
    for (unsigned k = 0; k < inflight && issued < n; k++, issued++)
        done[k] = hbm_access(h, f(issued, ctx), bytes, is_write, 0);
    unsigned live = inflight < n ? inflight : (unsigned)n;
    while (live) {
        unsigned m = 0;
        for (unsigned k = 1; k < live; k++)
            if (done[k] < done[m])
                m = k;
        uint64_t t = done[m];
        if (t > end)
            end = t;
        if (issued < n) {
            done[m] = hbm_access(h, f(issued, ctx), bytes, is_write, t);
            issued++;
        } else {
            done[m] = done[--live];
        }
    }
    return end;
}

static uint64_t seq_addr(uint64_t i, void *ctx)
{
    return i * *(uint64_t *)ctx;
}

/* 256-byte-aligned pseudo-random addresses in the first 1 GiB (64-bit LCG, high bits). */
static uint64_t rand_addr(uint64_t i, void *ctx)
{
    (void)ctx;
    uint64_t x = (i + 1) * 6364136223846793005ULL + 1442695040888963407ULL;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return (x % (1ULL << 22)) * 256;
}

static double efficiency(const hbm *h, uint64_t bytes, uint64_t ps)
{
    return (double)bytes / ((double)ps * hbm_peak_bytes_per_ps(h));
}

/* 64 MiB as 64 KiB accesses, 16 in flight. */
static double seq_efficiency(const cfg *c)
{
    hbm *h = hbm_new(c, NULL);
    uint64_t chunk = 64 * KiB, n = 64 * MiB / chunk;
    uint64_t t = drive(h, seq_addr, &chunk, n, chunk, 16, 0);
    double e = efficiency(h, n * chunk, t);
    hbm_free(h);
    return e;
}

static double random_efficiency(const cfg *c, unsigned inflight)
{
    hbm *h = hbm_new(c, NULL);
    uint64_t n = 16 * MiB / 256;
    uint64_t t = drive(h, rand_addr, NULL, n, 256, inflight, 0);
    double e = efficiency(h, n * 256, t);
    hbm_free(h);
    return e;
}

static void test_hbm_closed_bank_access_takes_trcd_tcl_transfer(void **state)
{
    (void)state;
    cfg c;
    cfg_norefresh(&c);
    hbm *h = hbm_new(&c, NULL);
    /* 256 B on a 64-bit pseudo-channel at 3.2 Gb/s: 256 x 8 / (64 x 3.2) = 10 ns. */
    assert_int_equal(hbm_access(h, 0, 256, 0, 5000), 5000 + 14000 + 14000 + 10000);
    hbm_free(h);
}

static void test_hbm_row_hit_saves_trcd_and_conflict_adds_trp(void **state)
{
    (void)state;
    cfg c;
    cfg_norefresh(&c);
    hbm *h = hbm_new(&c, NULL);
    uint64_t t0 = hbm_access(h, 0, 256, 0, 0);
    assert_int_equal(t0, 38000);
    /* Same pseudo-channel, bank and row: the next granule of pc 0. */
    uint64_t t1 = hbm_access(h, 64 * 256, 256, 0, t0);
    assert_int_equal(t1 - t0, 14000 + 10000); /* tCL + transfer: no tRCD */
    /* Same pc and bank, next row: 64 pcs x 16 banks x 1 KiB rows = 1 MiB further. */
    uint64_t t2 = hbm_access(h, 1 * MiB, 256, 0, t1);
    assert_int_equal(t2 - t1, 14000 + 14000 + 14000 + 10000); /* tRP + tRCD + tCL + xfer */
    hbm_free(h);
}

static void test_hbm_precharge_waits_for_tras(void **state)
{
    (void)state;
    cfg c;
    cfg_norefresh(&c);
    c.hbm_tras_ns = 100;
    hbm *h = hbm_new(&c, NULL);
    assert_int_equal(hbm_access(h, 0, 256, 0, 0), 38000);
    /* Conflict right away: precharge waits until activate(0) + tRAS = 100 ns. */
    assert_int_equal(hbm_access(h, 1 * MiB, 256, 0, 38000), 100000 + 14000 + 14000 + 14000 + 10000);
    hbm_free(h);
}

static void test_hbm_sequential_stream_reaches_85_percent_of_peak_defaults(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    double e = seq_efficiency(&c);
    assert_true(e >= 0.85);
    assert_true(e <= 1.0);
}

static void test_hbm_sequential_stream_reaches_85_percent_of_peak_v7like(void **state)
{
    (void)state;
    cfg c;
    cfg_v7like(&c);
    hbm *h = hbm_new(&c, NULL);
    /* 256 pcs x 4 B x 7.2 GT/s = 7372.8 GB/s */
    assert_true(hbm_peak_bytes_per_ps(h) > 7.3727 && hbm_peak_bytes_per_ps(h) < 7.3729);
    hbm_free(h);
    double e = seq_efficiency(&c);
    assert_true(e >= 0.85);
    assert_true(e <= 1.0);
}

static void test_hbm_never_exceeds_peak_even_with_everything_in_flight(void **state)
{
    (void)state;
    cfg c;
    cfg_norefresh(&c);
    hbm *h = hbm_new(&c, NULL);
    uint64_t end = 0, n = 32 * MiB / (64 * KiB);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t = hbm_access(h, i * 64 * KiB, 64 * KiB, 0, 0);
        end = t > end ? t : end;
    }
    double e = efficiency(h, 32 * MiB, end);
    assert_true(e <= 1.0);
    assert_true(e > 0.95); /* no refresh, one activate per row: nearly peak */
    hbm_free(h);
}

static void test_hbm_random_256B_is_clearly_below_sequential(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    double seq = seq_efficiency(&c);
    /* Same bytes in flight as the sequential stream (16 x 64 KiB = 4096 x 256 B). */
    double rnd = random_efficiency(&c, 4096);
    assert_true(rnd < seq - 0.15);
    assert_true(rnd > 0.0);
}

static void test_hbm_same_bank_stride_is_below_random(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    double rnd = random_efficiency(&c, 4096);
    hbm *h = hbm_new(&c, NULL);
    uint64_t stride = 1 * MiB, n = 4096; /* every access: pc 0, bank 0, a new row */
    uint64_t t = drive(h, seq_addr, &stride, n, 256, 64, 0);
    double same = efficiency(h, n * 256, t);
    hbm_free(h);
    assert_true(same < rnd / 10);
    /* One bank cycles at tRAS + tRP = 47 ns per 256 B granule, on 1 of 64 buses. */
    assert_true(same < 1.0 / 64 * 10.0 / 47.0 * 1.01);
}

static void test_hbm_refresh_costs_about_trfc_over_trefi(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    double with = seq_efficiency(&c);
    c.hbm_trefi_ns = 1e6;
    double without = seq_efficiency(&c);
    double loss = (without - with) / without;
    double expect = 350.0 / 3900.0;
    assert_true(loss > 0.8 * expect);
    assert_true(loss < 1.3 * expect);
}

static void test_hbm_refresh_is_counted_in_closed_form_after_idle(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    c.hbm_channels = 1;
    c.hbm_pseudo_channels = 1;
    stats_reg *r;
    hbm *h = hbm_counted(&c, &r);
    /* 1 ms idle: refreshes due at 3.9, 7.8, ... us all ran while idle (256 of them); the
     * last (due 998.4 us) is over by 1 ms, so the access sees a closed bank only. */
    uint64_t t = 1000000000ULL;
    assert_int_equal(hbm_access(h, 0, 256, 0, t), t + 38000);
    assert_int_equal(stats_get(r, "hbm", "refreshes", -1), 256);
    stats_free(r);
    hbm_free(h);
}

static void test_hbm_halving_pin_rate_doubles_long_stream_time(void **state)
{
    (void)state;
    cfg c;
    cfg_norefresh(&c);
    uint64_t chunk = 64 * KiB, n = 32 * MiB / chunk;
    hbm *h = hbm_new(&c, NULL);
    uint64_t fast = drive(h, seq_addr, &chunk, n, chunk, 16, 0);
    hbm_free(h);
    c.hbm_gbps_per_pin /= 2;
    h = hbm_new(&c, NULL);
    uint64_t slow = drive(h, seq_addr, &chunk, n, chunk, 16, 0);
    hbm_free(h);
    double ratio = (double)slow / (double)fast;
    assert_true(ratio > 1.9 && ratio < 2.05);
}

static void test_hbm_write_after_read_pays_turnaround(void **state)
{
    (void)state;
    cfg c;
    cfg_norefresh(&c);
    /* Two granules of pc 0 in the same row, both issued at 0. */
    hbm *h = hbm_new(&c, NULL);
    assert_int_equal(hbm_access(h, 0, 256, 0, 0), 38000);
    uint64_t rr = hbm_access(h, 64 * 256, 256, 0, 0);
    hbm_free(h);
    h = hbm_new(&c, NULL);
    assert_int_equal(hbm_access(h, 0, 256, 0, 0), 38000);
    uint64_t rw = hbm_access(h, 64 * 256, 256, 1, 0);
    uint64_t wr = hbm_access(h, 2 * 64 * 256, 256, 0, 0);
    hbm_free(h);
    assert_int_equal(rr, 48000);
    assert_int_equal(rw - rr, 4000);         /* tRTW */
    assert_int_equal(wr, rw + 8000 + 10000); /* tWTR then the transfer */
}

static void test_hbm_simple_model_matches_closed_form(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    c.hbm_model = CFG_HBM_SIMPLE;
    hbm *h = hbm_new(&c, NULL);
    /* 64 KiB at 1638.4 GB/s x 0.9 = 1.47456 B/ps: ceil(65536 / 1.47456) = 44445 ps. */
    uint64_t xfer = 44445, lat = 120000;
    assert_int_equal(hbm_access(h, 0, 64 * KiB, 0, 1000), 1000 + lat + xfer);
    /* Issued together with the first still moving: queues behind it on the one bus. */
    assert_int_equal(hbm_access(h, 5 * MiB, 64 * KiB, 1, 1000), 1000 + lat + 2 * xfer);
    /* Long after: idle again, the closed form holds. */
    assert_int_equal(hbm_access(h, 0, 64 * KiB, 0, 10000000), 10000000 + lat + xfer);
    hbm_free(h);
}

static void test_hbm_counters_are_exact(void **state)
{
    (void)state;
    cfg c;
    cfg_norefresh(&c);
    stats_reg *r;
    hbm *h = hbm_counted(&c, &r);
    uint64_t chunk = 64 * KiB, n = 8 * MiB / chunk;
    drive(h, seq_addr, &chunk, n, chunk, 4, 0);
    hbm_access(h, 100, 1000, 1, 0);
    assert_int_equal(stats_get(r, "hbm", "bytes_read", -1), 8 * MiB);
    assert_int_equal(stats_get(r, "hbm", "bytes_written", -1), 1000);
    /* Sequential: one activate per 1 KiB row, hits on its other 3 granules; all but the
     * first activate of each of the 64 x 16 banks closes a row first. The write touches 5
     * granules (pcs 0-4), each in row 0 of bank 0 while row 7 is open there. */
    assert_int_equal(stats_get(r, "hbm", "row_misses", -1), 8 * MiB / 1024 + 5);
    assert_int_equal(stats_get(r, "hbm", "row_conflicts", -1), 8 * MiB / 1024 - 64 * 16 + 5);
    assert_int_equal(stats_get(r, "hbm", "row_hits", -1), 8 * MiB / 1024 * 3);
    double rate = stats_get(r, "hbm", "row_hit_rate", -1);
    assert_true(rate > 0.74 && rate < 0.76);
    /* 32 channels x 2 pseudo x 8 B x 3.2 GT/s */
    assert_true(stats_get(r, "hbm", "peak_gbs", -1) > 1638.39 &&
                stats_get(r, "hbm", "peak_gbs", -1) < 1638.41);
    stats_free(r);
    hbm_free(h);
}

/* hbm.busy_demand_ps (the limiter's HBM level) counts the bus idling while a request waits
 * behind earlier data on bank timing, not an idle bus's latency. Defaults: tRCD = tCL = tRP
 * = 14 ns, tRAS 33 ns, 10 ns per 256 B. */
static void test_hbm_queued_request_counts_its_bank_gap_as_demand(void **state)
{
    (void)state;
    cfg c;
    cfg_norefresh(&c);
    stats_reg *r;
    hbm *h = hbm_counted(&c, &r);
    /* alone on an idle bus: act 0, data 28-38 ns; its 28 ns of latency is no gap */
    assert_int_equal(hbm_access(h, 0, 256, 0, 0), 38000);
    assert_int_equal(stats_get(r, "hbm", "bus_gap_sum_ps", -1), 0);
    /* issued at 30 ns, queued behind that data: the row conflict precharges at act + tRAS =
     * 33 ns, activates at 47, reads at 61, data 75-85 ns; the bus idles 38-75 ns with it
     * waiting */
    assert_int_equal(hbm_access(h, 1 * MiB, 256, 0, 30000), 85000);
    assert_int_equal(stats_get(r, "hbm", "bus_gap_sum_ps", -1), 75000 - 38000);
    /* issued on an idle bus again (a conflict: tRP + tRCD + tCL): latency only */
    assert_int_equal(hbm_access(h, 0, 256, 0, 200000), 200000 + 3 * 14000 + 10000);
    assert_int_equal(stats_get(r, "hbm", "bus_gap_sum_ps", -1), 75000 - 38000);
    double nbus = 32 * 2;
    assert_true(stats_get(r, "hbm", "busy_demand_ps", -1) == (3 * 10000 + 37000) / nbus);
    stats_free(r);
    hbm_free(h);
}

static void test_hbm_peak_matches_config_formula(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    for (int i = 0; i < 2; i++) {
        if (i)
            cfg_v7like(&c);
        hbm *h = hbm_new(&c, NULL);
        double model = hbm_peak_bytes_per_ps(h) * 1e12, report = cfg_hbm_peak_bps(&c);
        assert_true(model > report * (1 - 1e-12) && model < report * (1 + 1e-12));
        hbm_free(h);
    }
}

/* A long access is timed per row run in closed form (hbm.c banked_run); it must equal the
 * same bytes issued one granule piece at a time at the same instant, in address order -
 * across refreshes, misaligned ends, direction changes, non-power-of-two geometry and
 * granules larger than a row. */
/* Two identical HBM models with their counters, for comparing two ways of issuing the same
 * traffic: twins_check asserts that every counter agrees and frees both. */
typedef struct twins {
    hbm *a, *b;
    stats_reg *ra, *rb;
} twins;

static twins twins_new(const cfg *c)
{
    twins t = {hbm_new(c, NULL), hbm_new(c, NULL), stats_new(NULL), stats_new(NULL)};
    hbm_register_stats(t.a, t.ra);
    hbm_register_stats(t.b, t.rb);
    return t;
}

static void twins_check(twins *t)
{
    const char *keys[] = {"row_hits",    "row_misses",      "row_conflicts", "refreshes",
                          "turnarounds", "bus_busy_sum_ps", "bytes_read",    "bytes_written",
                          "ch0_bytes",   "ch1_bytes"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        assert_true(stats_get(t->ra, "hbm", keys[k], -1) == stats_get(t->rb, "hbm", keys[k], -1));
    stats_free(t->ra);
    stats_free(t->rb);
    hbm_free(t->a);
    hbm_free(t->b);
}

static void check_run_equals_granules(const cfg *c, uint64_t addr, uint64_t bytes, int nreq)
{
    twins t = twins_new(c);
    hbm *a = t.a, *b = t.b;
    uint64_t now = 0, g = c->hbm_interleave_bytes;
    for (int i = 0; i < nreq; i++) {
        int w = (i % 3) == 2;
        uint64_t at = addr + (uint64_t)i * bytes;
        uint64_t ta = hbm_access(a, at, bytes, w, now), tb = now;
        for (uint64_t o = at; o < at + bytes;) {
            uint64_t piece = g - o % g;
            if (piece > at + bytes - o)
                piece = at + bytes - o;
            uint64_t t = hbm_access(b, o, piece, w, now);
            tb = t > tb ? t : tb;
            o += piece;
        }
        assert_int_equal(ta, tb);
        now = ta - (ta - now) / 3; /* the next request overlaps this one */
    }
    twins_check(&t);
}

static void test_hbm_long_access_equals_granule_by_granule(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    check_run_equals_granules(&c, 0, 1 * MiB, 40);   /* crosses many refreshes */
    check_run_equals_granules(&c, 1000, 777777, 30); /* misaligned starts and ends */
    cfg_v7like(&c);
    check_run_equals_granules(&c, 0, 256 * KiB, 60);
    check_run_equals_granules(&c, 96, 300 * KiB + 5, 40);
    /* whole granules on every pc, each pc's run inside one row (banked_rowrun), with
     * refreshes falling due inside runs */
    check_run_equals_granules(&c, 0, 192 * KiB, 400);
    check_run_equals_granules(&c, 256 * 77, 64 * KiB + 256 * 5, 400);
    cfg_defaults(&c);
    c.hbm_channels = 3; /* non-power-of-two geometry: divisions, not shifts */
    c.hbm_banks = 6;
    c.hbm_row_bytes = 1536;
    c.hbm_interleave_bytes = 384;
    check_run_equals_granules(&c, 200, 100 * KiB + 17, 40);
    c.hbm_interleave_bytes = 4096; /* granules larger than a row */
    check_run_equals_granules(&c, 100, 64 * KiB, 40);
}

/* hbm_access_strided against one hbm_access per block, for nreq overlapping requests
 * (every third a write): completion times and every counter must be identical. */
static void check_strided_equals_blocks(const cfg *c, uint64_t addr, uint64_t block,
                                        uint64_t stride, uint64_t count, int nreq)
{
    twins t = twins_new(c);
    hbm *a = t.a, *b = t.b;
    uint64_t now = 0;
    for (int i = 0; i < nreq; i++) {
        int w = (i % 3) == 2;
        uint64_t at = addr + (uint64_t)i * count * stride;
        uint64_t ta = hbm_access_strided(a, at, block, stride, count, w, now), tb = now;
        for (uint64_t k = 0; k < count; k++) {
            uint64_t t = hbm_access(b, at + k * stride, block, w, now);
            tb = t > tb ? t : tb;
        }
        assert_int_equal(ta, tb);
        now = ta - (ta - now) / 3;
    }
    twins_check(&t);
}

static void test_hbm_strided_access_equals_block_by_block(void **state)
{
    (void)state;
    cfg c;
    cfg_v7like(&c); /* the attention and decode shapes of the generated traces */
    check_strided_equals_blocks(&c, 0, 256, 4096, 1024, 40);
    check_strided_equals_blocks(&c, 512, 128, 2048, 2048, 40);
    check_strided_equals_blocks(&c, 64, 128, 256, 3000, 20);     /* stride = one granule */
    check_strided_equals_blocks(&c, 0, 256, 3 * 256, 999, 20);   /* odd stride: P = npc */
    check_strided_equals_blocks(&c, 0, 256, 256 * 512, 300, 20); /* S a multiple of npc */
    check_strided_equals_blocks(&c, 0, 2048, 2304, 128, 20);     /* multi-granule blocks */
    check_strided_equals_blocks(&c, 4096, 4096, 16640, 64, 20);
    check_strided_equals_blocks(&c, 0, 512, 256 * 256, 200, 20); /* one pc, two granules */
    check_strided_equals_blocks(&c, 0, 1024, 1024 * 200, 300, 20);
    check_strided_equals_blocks(&c, 100, 200, 1000, 500, 20); /* straddles granules */
    cfg_defaults(&c);
    check_strided_equals_blocks(&c, 32, 64, 512, 4000, 40); /* crosses many refreshes */
    check_strided_equals_blocks(&c, 0, 4 * c.hbm_interleave_bytes, 9 * c.hbm_interleave_bytes, 2000,
                                40);
    c.hbm_channels = 3; /* non-power-of-two geometry: divisions, not shifts */
    c.hbm_banks = 6;
    c.hbm_row_bytes = 1536;
    c.hbm_interleave_bytes = 384;
    check_strided_equals_blocks(&c, 0, 384, 384 * 5, 700, 20);
    check_strided_equals_blocks(&c, 10, 100, 384 * 4, 700, 20);
    check_strided_equals_blocks(&c, 384, 768, 384 * 7, 700, 20);
    c.hbm_interleave_bytes = 4096; /* granules larger than a row */
    check_strided_equals_blocks(&c, 0, 512, 8192, 300, 20);
    check_strided_equals_blocks(&c, 0, 8192, 3 * 4096, 300, 20);
    cfg_defaults(&c);
    c.hbm_model = CFG_HBM_SIMPLE;
    check_strided_equals_blocks(&c, 0, 100, 300, 777, 20);
}

/* A small deterministic generator (xorshift64*), so a failing case replays. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Random strided transfers on random geometries, against one hbm_access per block: both
 * models see the same sequence (random directions, issue times that overlap, jump past
 * refreshes or sit idle, and now and then an unrelated access in between), so the closed
 * forms of hbm.c (followers in a row, bank cycles across rows, granule walks) are checked
 * from every bank state the walk itself can reach: completion times and every counter. */
static void test_hbm_random_strided_transfers_equal_block_by_block(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int geo = 0; geo < 24; geo++) {
        cfg c;
        if (geo % 2)
            cfg_v7like(&c);
        else
            cfg_defaults(&c);
        if (geo % 3 == 2) { /* non-power-of-two geometry */
            c.hbm_channels = 3 + rnd(&seed) % 5;
            c.hbm_banks = 3 + rnd(&seed) % 14;
            c.hbm_interleave_bytes = 128 * (1 + rnd(&seed) % 4);
            c.hbm_row_bytes = c.hbm_interleave_bytes * (1 + rnd(&seed) % 6);
        } else if (geo % 4 == 3) { /* short refresh interval, slow or fast banks */
            c.hbm_trefi_ns = 300 + (double)(rnd(&seed) % 3000);
            c.hbm_tras_ns = 10 + (double)(rnd(&seed) % 60);
            c.hbm_trp_ns = 5 + (double)(rnd(&seed) % 30);
        }
        twins t = twins_new(&c);
        uint64_t now = 0, G = c.hbm_interleave_bytes, R = c.hbm_row_bytes;
        uint64_t npc = c.hbm_channels * c.hbm_pseudo_channels;
        for (int i = 0; i < 150; i++) {
            uint64_t r = rnd(&seed), block, stride;
            switch (r % 6) {
            case 0: /* pieces inside one granule, a few per row */
                block = 32 * (1 + rnd(&seed) % (G / 32));
                stride = G * npc * (1 + rnd(&seed) % 3) / (1 + rnd(&seed) % 2);
                break;
            case 1: /* one piece per row, rows in a bank cycle */
                block = G;
                stride = R * npc * (1 + rnd(&seed) % 5);
                break;
            case 2: /* whole granules */
                block = G * (1 + rnd(&seed) % 16);
                stride = block + G * (rnd(&seed) % 40);
                break;
            case 3: /* a stride of whole granules */
                block = 32 * (1 + rnd(&seed) % (G / 32));
                stride = G * (1 + rnd(&seed) % 64);
                break;
            case 4: /* anything */
                block = 1 + rnd(&seed) % (3 * G);
                stride = block + rnd(&seed) % (4 * R);
                break;
            default: /* within one pc: pitch below a row */
                block = G / 2;
                stride = G * npc / (1 + rnd(&seed) % 2);
                break;
            }
            if (stride < block)
                stride = block;
            uint64_t count = 1 + rnd(&seed) % 600;
            uint64_t addr = rnd(&seed) % (64 * MiB);
            int w = rnd(&seed) % 4 == 0;
            uint64_t ta = hbm_access_strided(t.a, addr, block, stride, count, w, now), tb = now;
            for (uint64_t k = 0; k < count; k++) {
                uint64_t e = hbm_access(t.b, addr + k * stride, block, w, now);
                tb = e > tb ? e : tb;
            }
            assert_int_equal(ta, tb);
            if (rnd(&seed) % 5 == 0) { /* an unrelated access in between */
                uint64_t a2 = rnd(&seed) % (64 * MiB), n2 = 1 + rnd(&seed) % (8 * G);
                assert_int_equal(hbm_access(t.a, a2, n2, !w, now),
                                 hbm_access(t.b, a2, n2, !w, now));
            }
            switch (rnd(&seed) % 4) {
            case 0:
                break; /* same instant */
            case 1:
                now = ta - (ta - now) / 2;
                break;
            case 2:
                now = ta;
                break;
            default:
                now = ta + rnd(&seed) % (4 * (uint64_t)(c.hbm_trefi_ns * 1000.0));
                break;
            }
        }
        twins_check(&t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hbm_closed_bank_access_takes_trcd_tcl_transfer),
        cmocka_unit_test(test_hbm_row_hit_saves_trcd_and_conflict_adds_trp),
        cmocka_unit_test(test_hbm_precharge_waits_for_tras),
        cmocka_unit_test(test_hbm_sequential_stream_reaches_85_percent_of_peak_defaults),
        cmocka_unit_test(test_hbm_sequential_stream_reaches_85_percent_of_peak_v7like),
        cmocka_unit_test(test_hbm_never_exceeds_peak_even_with_everything_in_flight),
        cmocka_unit_test(test_hbm_random_256B_is_clearly_below_sequential),
        cmocka_unit_test(test_hbm_same_bank_stride_is_below_random),
        cmocka_unit_test(test_hbm_refresh_costs_about_trfc_over_trefi),
        cmocka_unit_test(test_hbm_refresh_is_counted_in_closed_form_after_idle),
        cmocka_unit_test(test_hbm_halving_pin_rate_doubles_long_stream_time),
        cmocka_unit_test(test_hbm_write_after_read_pays_turnaround),
        cmocka_unit_test(test_hbm_simple_model_matches_closed_form),
        cmocka_unit_test(test_hbm_counters_are_exact),
        cmocka_unit_test(test_hbm_queued_request_counts_its_bank_gap_as_demand),
        cmocka_unit_test(test_hbm_peak_matches_config_formula),
        cmocka_unit_test(test_hbm_long_access_equals_granule_by_granule),
        cmocka_unit_test(test_hbm_strided_access_equals_block_by_block),
        cmocka_unit_test(test_hbm_random_strided_transfers_equal_block_by_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
