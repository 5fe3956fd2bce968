/* test_energy.c - the energy model against closed forms: an idle trace costs static power x
 * time exactly, each unit's dynamic energy is its counted work x its coefficient (MACs of every
 * datatype, vector registers by class, VMEM bytes of the MXU, vector unit and DMA, HBM bytes and
 * row activations, ICI bytes x hops for sends and collectives), doubling the
 * work doubles the dynamic energy, regions add up to the total, and a throttled run is slower
 * by the per-window DVFS closed form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "asm.h"
#include "energy.h"
#include "run.h"

#include "harness.h"

/* Run `text` on the default config with overrides; the caller frees with run_fini. */
static void run_text(run *r, const char *name, const char *text, const char *const *ov,
                     unsigned nov)
{
    char path[512];
    err e;
    harness_assemble(name, text, path, sizeof path);
    if (run_trace(r, NULL, (const char **)ov, nov, path, NULL, &e))
        fail_msg("run: %s", e.msg);
    assert_non_null(r->sim.energy);
}

static double counter(const run *r, const char *group, const char *name)
{
    const stats_entry *s = stats_find(r->sim.stats, group, name);
    if (!s)
        fail_msg("no counter %s.%s", group, name);
    return stats_value(s);
}

/* Semaphore waits on two 1-byte sends, each waiting out a 2.5 us hop (the ISA has no 0-byte
 * instruction): the run is idle but for 2 bytes on a link, so its energy is exactly static
 * power x time plus 2 x 8 bits x the ICI coefficient, and nothing else. */
static void test_energy_idle_trace_costs_static_power_times_time(void **state)
{
    (void)state;
    run r;
    const char *ov[] = {"energy.static_w=137.5",   "energy.ici_pj_bit=5",
                        "energy.mac_bf16_pj=1",    "energy.valu_vreg_pj=100",
                        "energy.vmem_rd_pj_bit=1", "energy.vmem_wr_pj_bit=1",
                        "energy.hbm_pj_bit=4",     "energy.hbm_act_pj=900",
                        "ici.hop_latency_ns=2500", "ici.link_gbs=1"};
    run_text(&r, "idle",
             "ici.send axis=x dir=+1 bytes=1 signal=1\n"
             "sync.wait wait=1\n"
             "ici.send axis=x dir=+1 bytes=1 signal=2\n"
             "sync.wait wait=2\n",
             ov, 10);
    const energy_result *en = r.sim.energy;
    assert_int_equal(core_end_ps(chip_core(r.sim.chip)), 2 * (2500000 + 1000));
    assert_close(en->j[ENERGY_STATIC], 137.5 * 5.002e-6, 1e-15);
    assert_close(en->dynamic_j, 2 * 8 * 5e-12, 1e-15);
    assert_close(en->total_j, 137.5 * 5.002e-6 + 2 * 8 * 5e-12, 1e-15);
    for (int k = 0; k < ENERGY_CAT_COUNT; k++)
        if (k != ENERGY_STATIC && k != ENERGY_ICI)
            assert_true(en->j[k] == 0);
    run_fini(&r);
}

/* MXU: m k n MACs x mac_pj; VMEM: weights k n 2 + operands m k 2 read, results m n 4 written. */
static void test_energy_mxu_and_vmem_closed_form(void **state)
{
    (void)state;
    const char *ov[] = {"energy.mac_bf16_pj=0.5", "energy.vmem_rd_pj_bit=0.25",
                        "energy.vmem_wr_pj_bit=0.125"};
    run r;
    run_text(&r, "mxu",
             "mxu.ldw mxu=0 vmem=0 k=128 n=64 dtype=bf16\n"
             "mxu.matmul mxu=0 src=65536 dst=131072 m=200 dtype=bf16\n",
             ov, 3);
    const energy_result *en = r.sim.energy;
    assert_close(counter(&r, "mxu0", "macs_bf16"), 200.0 * 128 * 64, 0);
    assert_close(en->j[ENERGY_MXU], 200.0 * 128 * 64 * 0.5e-12, 1e-12);
    double rd = 128 * 64 * 2 + 200 * 128 * 2, wr = 200 * 64 * 4;
    assert_close(en->j[ENERGY_VMEM], (rd * 8 * 0.25 + wr * 8 * 0.125) * 1e-12, 1e-12);
    assert_close(en->dynamic_j, en->j[ENERGY_MXU] + en->j[ENERGY_VMEM], 1e-12);
    run_fini(&r);
}

/* Every MXU datatype: m k n MACs counted in mxu0.macs_<dtype>, charged at its own coefficient
 * and at no other (distinct coefficients, one datatype per run). */
static void test_energy_mxu_macs_per_dtype_closed_form(void **state)
{
    (void)state;
    static const struct {
        const char *dt;
        double pj;
    } dts[] = {{"bf16", 1}, {"int8", 0.5}, {"fp8", 0.25}, {"fp32", 4}, {"int4", 0.125}};
    const char *ov[] = {"energy.mac_bf16_pj=1",     "energy.mac_int8_pj=0.5",
                        "energy.mac_fp8_pj=0.25",   "energy.mac_fp32_pj=4",
                        "energy.mac_int4_pj=0.125", "mxu.rate_int8=2",
                        "mxu.rate_fp8=2",           "mxu.rate_int4=4"};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        char text[256], macs[32];
        snprintf(text, sizeof text,
                 "mxu.ldw mxu=0 vmem=0 k=128 n=64 dtype=%s\n"
                 "mxu.matmul mxu=0 src=65536 dst=131072 m=200 dtype=%s\n",
                 dts[i].dt, dts[i].dt);
        snprintf(macs, sizeof macs, "macs_%s", dts[i].dt);
        run r;
        run_text(&r, macs, text, ov, 8);
        assert_close(counter(&r, "mxu0", macs), 200.0 * 128 * 64, 0);
        assert_close(r.sim.energy->j[ENERGY_MXU], 200.0 * 128 * 64 * dts[i].pj * 1e-12, 1e-12);
        run_fini(&r);
    }
}

/* Vector unit: vregs = ceil(n / (8 x 128 x pack)) per op class x its coefficient. */
static void test_energy_vpu_classes_closed_form(void **state)
{
    (void)state;
    const char *ov[] = {"energy.valu_vreg_pj=10", "energy.trans_vreg_pj=70",
                        "energy.xlane_vreg_pj=30"};
    run r;
    run_text(&r, "vpu",
             "v.add src=0 dst=65536 n=8192 dtype=bf16\n"     /* 8192 / 2048 = 4 vregs */
             "v.exp src=0 dst=65536 n=3000 dtype=fp32\n"     /* ceil(3000 / 1024) = 3 */
             "v.reduce src=0 dst=65536 n=1024 dtype=fp32\n", /* 1 */
             ov, 3);
    const energy_result *en = r.sim.energy;
    assert_close(en->j[ENERGY_VPU], (4 * 10 + 3 * 70 + 1 * 30) * 1e-12, 1e-12);
    run_fini(&r);
    /* VMEM: each input operand read, the output written (v.add: two bf16 inputs; v.exp: one). */
    const char *vm[] = {"energy.vmem_rd_pj_bit=0.25", "energy.vmem_wr_pj_bit=0.125"};
    run_text(&r, "vpu_vmem",
             "v.add src=0 dst=65536 n=8192 dtype=bf16\n"
             "v.exp src=0 dst=65536 n=3000 dtype=fp32\n",
             vm, 2);
    double rd = 2 * 8192 * 2 + 3000 * 4, wr = 8192 * 2 + 3000 * 4;
    assert_close(counter(&r, "vpu0", "vmem_rd_bytes"), rd, 0);
    assert_close(r.sim.energy->j[ENERGY_VMEM], (rd * 8 * 0.25 + wr * 8 * 0.125) * 1e-12, 1e-12);
    run_fini(&r);
}

/* HBM, simple model: bytes x 8 x pJ/bit, no activations. Banked: plus row activations. */
static void test_energy_hbm_closed_form(void **state)
{
    (void)state;
    const char *ov[] = {"energy.hbm_pj_bit=3", "energy.hbm_act_pj=1000",
                        "energy.vmem_rd_pj_bit=0.25", "energy.vmem_wr_pj_bit=0.125",
                        "hbm.model=simple"};
    const char *text = "dma.h2v hbm=0 vmem=0 bytes=1M\n"
                       "dma.v2h hbm=16M vmem=0 bytes=256K\n";
    run r;
    run_text(&r, "hbm", text, ov, 5);
    assert_close(r.sim.energy->j[ENERGY_HBM], (1 << 20) * 1.25 * 8 * 3e-12, 1e-12);
    /* the DMA writes what it brings into VMEM and reads what it sends to HBM */
    assert_close(r.sim.energy->j[ENERGY_VMEM],
                 ((1 << 20) * 8 * 0.125 + (1 << 18) * 8 * 0.25) * 1e-12, 1e-12);
    run_fini(&r);
    run_text(&r, "hbm", text, ov, 4);
    double acts = counter(&r, "hbm", "row_misses");
    assert_true(acts > 0);
    assert_close(r.sim.energy->j[ENERGY_HBM], (1 << 20) * 1.25 * 8 * 3e-12 + acts * 1000e-12,
                 1e-12);
    run_fini(&r);
}

/* ICI: a send crosses one link: bytes x 1 hop x 8 x pJ/bit. */
static void test_energy_ici_bytes_times_hops(void **state)
{
    (void)state;
    const char *ov[] = {"energy.ici_pj_bit=5"};
    run r;
    run_text(&r, "ici", "ici.send axis=x dir=+1 bytes=4096\n", ov, 1);
    assert_close(r.sim.energy->j[ENERGY_ICI], 4096.0 * 8 * 5e-12, 1e-12);
    assert_true(r.sim.energy->j[ENERGY_DCN] == 0);
    run_fini(&r);
}

/* Collectives: the bytes a chip puts on links, each link crossed counted (mean over the
 * group), by enumeration of the routes. B = 1 MiB per chip.
 *   all-gather, ring or line of 4: each of the 4 shards of B/4 crosses the 3 links between
 *     its owner and the others once: 4 x 3 x B/4 over 4 chips = 3B/4;
 *   all-to-all, ring of 8: B/8 to each other chip at distance min(d, 8-d), d = 1..7:
 *     1+2+3+4+3+2+1 = 16 hops, 2B;
 *   all-to-all, line of 4: the distance sum |i-j| over ordered pairs is 20, 5 per source: 5B/4
 *     (the middle link's load, which sets the time, is not every link's);
 *   all-to-all over x and y of a 4x4 torus: B/16 to each of 15 others, distance sum 4 per
 *     axis x 4 positions on the other axis = 32 hops: 2B. */
static void test_energy_ici_collectives_bytes_times_hops(void **state)
{
    (void)state;
    static const struct {
        const char *dims, *wrap, *text;
        double hops; /* x B */
    } c[] = {
        {"ici.dims=4", "ici.wrap=x", "ici.allgather axes=x bytes=1M dtype=bf16\n", 0.75},
        {"ici.dims=4", "ici.wrap=none", "ici.allgather axes=x bytes=1M dtype=bf16\n", 0.75},
        {"ici.dims=4", "ici.wrap=none", "ici.reducescatter axes=x bytes=1M dtype=bf16\n", 0.75},
        {"ici.dims=8", "ici.wrap=x", "ici.alltoall axes=x bytes=1M dtype=bf16\n", 2},
        {"ici.dims=4", "ici.wrap=none", "ici.alltoall axes=x bytes=1M dtype=bf16\n", 1.25},
        {"ici.dims=4x4", "ici.wrap=xy", "ici.alltoall axes=xy bytes=1M dtype=bf16\n", 2},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        const char *ov[] = {"energy.ici_pj_bit=5", c[i].dims, c[i].wrap};
        run r;
        run_text(&r, "coll", c[i].text, ov, 3);
        double B = 1 << 20;
        assert_close(counter(&r, "ici0", "bytes"), c[i].hops * B, 1e-12);
        assert_close(r.sim.energy->j[ENERGY_ICI], c[i].hops * B * 8 * 5e-12, 1e-12);
        run_fini(&r);
    }
}

#define BLOCK                                                                                      \
    "dma.h2v hbm=0 vmem=0 bytes=64K signal=1\n"                                                    \
    "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=1\n"                                         \
    "mxu.matmul mxu=0 src=65536 dst=131072 m=512 dtype=bf16\n"                                     \
    "v.exp src=0 dst=262144 n=4096 dtype=bf16\n"

static const char *const all_coefs[] = {
    "energy.static_w=50",        "energy.mac_bf16_pj=0.7",    "energy.valu_vreg_pj=800",
    "energy.trans_vreg_pj=6000", "energy.xlane_vreg_pj=1600", "energy.vmem_rd_pj_bit=0.1",
    "energy.vmem_wr_pj_bit=0.1", "energy.hbm_pj_bit=3.8",     "energy.hbm_act_pj=1000",
};

/* Doubling the work doubles every dynamic category exactly with the simple HBM model. The
 * banked model's second block finds some rows still open: its HBM energy is between 1x and
 * 2x (the bytes double, the activations do not quite), the rest exact. */
static void test_energy_doubling_work_doubles_dynamic_energy(void **state)
{
    (void)state;
    const char *ov[11];
    memcpy(ov, all_coefs, sizeof all_coefs);
    for (int simple = 1; simple >= 0; simple--) {
        ov[9] = simple ? "hbm.model=simple" : "hbm.model=banked";
        run one, two;
        run_text(&one, "once", BLOCK, ov, 10);
        run_text(&two, "twice", BLOCK "sync.barrier\n" BLOCK, ov, 10);
        const energy_result *e1 = one.sim.energy, *e2 = two.sim.energy;
        assert_true(e1->dynamic_j > 0 && e1->j[ENERGY_HBM] > 0);
        assert_close(counter(&two, "hbm", "bytes_read"), 2 * counter(&one, "hbm", "bytes_read"), 0);
        for (int k = 0; k < ENERGY_CAT_COUNT; k++)
            if (k != ENERGY_STATIC && (simple || k != ENERGY_HBM))
                assert_close(e2->j[k], 2 * e1->j[k], 1e-12);
        if (simple) {
            assert_close(e2->dynamic_j, 2 * e1->dynamic_j, 1e-12);
        } else {
            assert_true(e2->j[ENERGY_HBM] > e1->j[ENERGY_HBM]);
            assert_true(e2->j[ENERGY_HBM] <= 2 * e1->j[ENERGY_HBM] * (1 + 1e-12));
        }
        run_fini(&one);
        run_fini(&two);
    }
}

/* Regions separated by a dependency get exactly their own work; regions add up to the total. */
static void test_energy_regions_add_up_to_the_total(void **state)
{
    (void)state;
    run r;
    run_text(&r, "regions",
             "mark name=\"load\"\n"
             "dma.h2v hbm=0 vmem=0 bytes=64K signal=1\n"
             "mark name=\"compute\"\n"
             "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=1\n"
             "mxu.matmul mxu=0 src=65536 dst=131072 m=512 dtype=bf16\n",
             all_coefs, 9);
    const energy_result *en = r.sim.energy;
    unsigned nreg;
    const core_region *cr = core_regions(chip_core(r.sim.chip), &nreg);
    assert_int_equal(en->nregions, nreg);
    double sum[ENERGY_CAT_COUNT] = {0}, tot = 0;
    for (unsigned i = 0; i < nreg; i++)
        for (int k = 0; k < ENERGY_CAT_COUNT; k++) {
            sum[k] += en->region_j[i][k];
            tot += en->region_j[i][k];
        }
    for (int k = 0; k < ENERGY_CAT_COUNT; k++)
        assert_close(sum[k], en->j[k], 1e-9);
    assert_close(tot, en->total_j, 1e-9);
    for (unsigned i = 0; i < nreg; i++)
        if (!strcmp(cr[i].name, "compute"))
            assert_close(en->region_j[i][ENERGY_MXU], 512.0 * 128 * 128 * 0.7e-12, 1e-12);
        else
            assert_true(en->region_j[i][ENERGY_MXU] == 0);
    run_fini(&r);
}

static void test_energy_clock_scale_closed_form(void **state)
{
    (void)state;
    /* 8 W dynamic over 1 us (8e6 pJ), static 2 W, cap 3 W: s^3 = 1/8 */
    assert_close(energy_clock_scale(8e6, 1e6, 2, 3, 0.1, 3), 0.5, 1e-12);
    assert_close(energy_clock_scale(8e6, 1e6, 2, 6, 0.1, 1), 0.5, 1e-12);
    assert_close(energy_clock_scale(8e6, 1e6, 2, 10, 0.1, 3), 1, 0);      /* within the cap */
    assert_close(energy_clock_scale(8e6, 1e6, 2, 1.5, 0.3, 3), 0.3, 0);   /* cap below static */
    assert_close(energy_clock_scale(8e6, 1e6, 2, 2.001, 0.3, 3), 0.3, 0); /* clamped */
}

/* A steady stream of matmuls: 128 x 128 MACs per cycle at 1 GHz = 16.384 W at 1 pJ/MAC. With
 * static 10 W and the cap 10 + 16.384 / 8 W, every full window runs at s = (1/8)^(1/3) = 0.5:
 * the run takes 2x as long and its dynamic energy is x s^2 = 0.25. */
static void test_energy_throttled_run_slower_by_the_closed_form(void **state)
{
    (void)state;
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n");
    for (int i = 0; i < 400; i++) /* 400 x 1024 cycles = 409.6 us */
        len += (size_t)snprintf(text + len, cap - len,
                                "mxu.matmul mxu=0 src=65536 dst=1048576 m=1024 dtype=bf16\n");
    char tdp[64];
    snprintf(tdp, sizeof tdp, "chip.tdp_w=%.17g", 10 + 16.384 / 8);
    const char *ov[] = {"energy.static_w=10", "energy.mac_bf16_pj=1",       tdp,
                        "energy.window_us=1", "energy.min_clock_scale=0.1", "energy.throttle=true",
                        "vmem.bytes=64MiB"};
    run r;
    run_text(&r, "steady", text, ov, 7);
    free(text);
    const energy_result *en = r.sim.energy;
    assert_close(en->avg_w, 10 + 16.384, 0.01);
    assert_true(en->windows_over >= en->windows - 2);
    assert_true(en->min_clock_scale <= 0.5 + 1e-9); /* the first windows see two matmuls' MACs */
    assert_close(en->throttled_s / en->seconds, 2.0, 0.01);
    assert_close(en->throttled_j - 10 * en->throttled_s, 0.25 * en->dynamic_j, 0.01);
    run_fini(&r);
    /* Without energy.throttle the cap is only reported. */
    run_text(&r, "steady", "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n", ov, 5);
    assert_true(r.sim.energy->throttled_s == r.sim.energy->seconds);
    run_fini(&r);
}

static void test_energy_tokens_per_joule_from_the_trace_note(void **state)
{
    (void)state;
    const char *ov[] = {"energy.static_w=100"};
    run r;
    run_text(&r, "tokens",
             ".note \"decode step tokens=64\"\n"
             "ici.send axis=x dir=+1 bytes=1\n",
             ov, 1);
    assert_close(r.sim.energy->tokens, 64, 0);
    assert_close(r.sim.energy->tokens_per_j, 64 / r.sim.energy->total_j, 1e-12);
    run_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_energy_idle_trace_costs_static_power_times_time),
        cmocka_unit_test(test_energy_mxu_and_vmem_closed_form),
        cmocka_unit_test(test_energy_mxu_macs_per_dtype_closed_form),
        cmocka_unit_test(test_energy_vpu_classes_closed_form),
        cmocka_unit_test(test_energy_hbm_closed_form),
        cmocka_unit_test(test_energy_ici_bytes_times_hops),
        cmocka_unit_test(test_energy_ici_collectives_bytes_times_hops),
        cmocka_unit_test(test_energy_doubling_work_doubles_dynamic_energy),
        cmocka_unit_test(test_energy_regions_add_up_to_the_total),
        cmocka_unit_test(test_energy_clock_scale_closed_form),
        cmocka_unit_test(test_energy_throttled_run_slower_by_the_closed_form),
        cmocka_unit_test(test_energy_tokens_per_joule_from_the_trace_note),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
