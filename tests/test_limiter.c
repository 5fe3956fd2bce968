/* test_limiter.c - bottleneck attribution against closed-form traces: a trace that keeps one
 * resource busy and the others idle is limited by that resource over (nearly) all its time,
 * for each of mxu, mxu_weight_load, vpu, vmem, hbm, ici and dependency; the slice rule on
 * hand-made utilisations; regions carry their own shares. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "limiter.h"
#include "run.h"

#include "harness.h"

/* Run `text` repeated `reps` times on the default config with overrides; check that the run's
 * limiter is `want` with at least `share` of the time. */
static void expect_limiter(const char *name, const char *text, unsigned reps, const char *const *ov,
                           unsigned nov, limiter_res want, double share)
{
    size_t len = strlen(text), cap = len * reps + 64;
    char *all = malloc(cap), path[512];
    assert_non_null(all);
    all[0] = 0;
    for (unsigned i = 0; i < reps; i++)
        memcpy(all + i * len, text, len + 1);
    harness_assemble(name, all, path, sizeof path);
    free(all);
    run r;
    err e;
    if (run_trace(&r, NULL, (const char **)ov, nov, path, NULL, &e))
        fail_msg("run: %s", e.msg);
    const limiter_shares *s = limiter_total(r.sim.lim);
    limiter_res got = limiter_pick(s);
    if (got != want || limiter_fraction(s, want) < share)
        fail_msg("%s: limiter %s (%.3f of the time), expected %s with >= %.2f", name,
                 limiter_name(got), limiter_fraction(s, got), limiter_name(want), share);
    run_fini(&r);
}

static const char *const one_mxu[] = {"chip.cores=1", "mxu.count=1"};

/* Long matmuls on loaded weights: the streaming port is busy all the time. */
static void test_limiter_long_matmuls_are_mxu_bound(void **state)
{
    (void)state;
    expect_limiter("mxu",
                   "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n"
                   "mxu.matmul mxu=0 src=65536 dst=1048576 m=4096 dtype=bf16\n",
                   40, one_mxu, 2, LIMITER_MXU, 0.9);
}

/* A new weight tile for every 8-row matmul: 128 cycles of shifting per 8 cycles of streaming. */
static void test_limiter_weight_reloads_are_weight_load_bound(void **state)
{
    (void)state;
    expect_limiter("wl",
                   "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n"
                   "mxu.matmul mxu=0 src=65536 dst=1048576 m=8 dtype=bf16\n",
                   2000, one_mxu, 2, LIMITER_MXU_WEIGHT_LOAD, 0.9);
}

/* Independent transcendental ops: the vector unit is busy back to back. */
static void test_limiter_vector_ops_are_vpu_bound(void **state)
{
    (void)state;
    expect_limiter("vpu", "v.exp src=0 dst=1048576 n=65536 dtype=fp32\n", 400, NULL, 0, LIMITER_VPU,
                   0.9);
}

/* One large DMA: HBM streams all the time. */
static void test_limiter_one_large_dma_is_hbm_bound(void **state)
{
    (void)state;
    expect_limiter("hbm", "dma.h2v hbm=0 vmem=0 bytes=4M\n", 8, NULL, 0, LIMITER_HBM, 0.9);
}

/* The same DMA with VMEM at 1 byte per cycle: VMEM, not HBM, sets its pace. */
static void test_limiter_dma_into_slow_vmem_is_vmem_bound(void **state)
{
    (void)state;
    const char *ov[] = {"vmem.bytes_per_cycle=1"};
    expect_limiter("vmem", "dma.h2v hbm=0 vmem=0 bytes=256K\n", 4, ov, 1, LIMITER_VMEM, 0.9);
}

/* Sends on a slow link: only the ICI port is busy. */
static void test_limiter_sends_are_ici_bound(void **state)
{
    (void)state;
    const char *ov[] = {"ici.link_gbs=1"};
    expect_limiter("ici", "ici.send axis=x dir=+1 bytes=64K\n", 8, ov, 1, LIMITER_ICI, 0.9);
}

/* A chain of tiny transfers, each waiting for the previous: latency, no resource busy. */
static void test_limiter_chained_tiny_transfers_are_dependency_bound(void **state)
{
    (void)state;
    expect_limiter("dep",
                   "dma.h2v hbm=0 vmem=0 bytes=64 signal=1\n"
                   "sync.wait wait=1\n",
                   200, NULL, 0, LIMITER_DEPENDENCY, 0.9);
}

/* Weight reloads keep the load path saturated while every 80 reloads eight 1 MiB prefetches
 * go out at once, filling HBM (deep queue) for about half the time: the bursts are HBM keeping
 * up, not limiting, so the run is weight-load bound (docs/architecture.md: HBM's level is what
 * its bus is busy or held up, averaged over ~10 us; the queue depth no longer counts). */
static void test_limiter_prefetch_bursts_do_not_make_hbm_the_limiter(void **state)
{
    (void)state;
    static char text[80 * 128 + 8 * 64];
    size_t n = 0;
    for (int k = 0; k < 8; k++)
        n += (size_t)snprintf(text + n, sizeof text - n, "dma.h2v hbm=%d vmem=%d bytes=1M\n",
                              k << 20, (4 + k) << 20);
    for (int i = 0; i < 80; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n"
                              "mxu.matmul mxu=0 src=65536 dst=1048576 m=8 dtype=bf16\n");
    expect_limiter("burst", text, 20, one_mxu, 2, LIMITER_MXU_WEIGHT_LOAD, 0.95);
}

/* The slice rule: the most utilised resource at or above half use; a saturated compute
 * resource with memory queued all slice long shares the slice with it; else dependency. */
static void test_limiter_slice_rule(void **state)
{
    (void)state;
    double w[LIMITER_COUNT];
    double busy_hbm[LIMITER_COUNT] = {[LIMITER_MXU] = 0.3, [LIMITER_HBM] = 0.7};
    limiter_slice(busy_hbm, w);
    assert_true(w[LIMITER_HBM] == 1);
    double idle[LIMITER_COUNT] = {[LIMITER_MXU] = 0.4, [LIMITER_HBM] = 0.45};
    limiter_slice(idle, w);
    assert_true(w[LIMITER_DEPENDENCY] == 1);
    double sat[LIMITER_COUNT] = {[LIMITER_MXU] = 0.96, [LIMITER_HBM] = 0.9};
    limiter_slice(sat, w);
    assert_true(w[LIMITER_MXU] == 1);
    double co[LIMITER_COUNT] = {[LIMITER_MXU_WEIGHT_LOAD] = 1, [LIMITER_HBM] = 3};
    limiter_slice(co, w);
    assert_true(w[LIMITER_MXU_WEIGHT_LOAD] == 0.5 && w[LIMITER_HBM] == 0.5);
    limiter_shares s = {{0}};
    assert_int_equal(limiter_pick(&s), LIMITER_DEPENDENCY);
    s.ps[LIMITER_VPU] = 3;
    s.ps[LIMITER_ICI] = 1;
    assert_int_equal(limiter_pick(&s), LIMITER_VPU);
    assert_true(limiter_fraction(&s, LIMITER_ICI) == 0.25);
}

/* Two regions, one per resource: each names its own limiter. */
static void test_limiter_regions_name_their_own_limiter(void **state)
{
    (void)state;
    char text[1 << 16], path[512];
    size_t n = (size_t)snprintf(text, sizeof text, "mark name=\"load\"\n");
    for (int i = 0; i < 4; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "dma.h2v hbm=0 vmem=0 bytes=4M signal=1\nsync.wait wait=1\n");
    n += (size_t)snprintf(text + n, sizeof text - n, "mark name=\"exp\"\n");
    for (int i = 0; i < 400; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "v.exp src=0 dst=1048576 n=65536 dtype=fp32\n");
    harness_assemble("regions", text, path, sizeof path);
    run r;
    err e;
    if (run_trace(&r, NULL, NULL, 0, path, NULL, &e))
        fail_msg("run: %s", e.msg);
    unsigned nreg;
    const core_region *cr = core_regions(chip_core(r.sim.chip), &nreg);
    int seen = 0;
    for (unsigned i = 0; i < nreg; i++) {
        limiter_res got = limiter_pick(limiter_region(r.sim.lim, i));
        if (!strcmp(cr[i].name, "load"))
            seen++, assert_string_equal(limiter_name(got), "hbm");
        if (!strcmp(cr[i].name, "exp"))
            seen++, assert_string_equal(limiter_name(got), "vpu");
    }
    assert_int_equal(seen, 2);
    run_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limiter_long_matmuls_are_mxu_bound),
        cmocka_unit_test(test_limiter_weight_reloads_are_weight_load_bound),
        cmocka_unit_test(test_limiter_vector_ops_are_vpu_bound),
        cmocka_unit_test(test_limiter_one_large_dma_is_hbm_bound),
        cmocka_unit_test(test_limiter_dma_into_slow_vmem_is_vmem_bound),
        cmocka_unit_test(test_limiter_sends_are_ici_bound),
        cmocka_unit_test(test_limiter_chained_tiny_transfers_are_dependency_bound),
        cmocka_unit_test(test_limiter_prefetch_bursts_do_not_make_hbm_the_limiter),
        cmocka_unit_test(test_limiter_slice_rule),
        cmocka_unit_test(test_limiter_regions_name_their_own_limiter),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
