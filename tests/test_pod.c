/* test_pod.c - the pod estimate on a tiny assembled trace: peak exaflops is chips x per-chip
 * peak exactly, sustained <= peak, MFU in (0, 1], the time split covers the step, full and
 * symmetric modes agree, topology choice, JSON output and command-line errors. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "asm.h"
#include "config.h"
#include "cli.h"
#include "pod.h"
#include "tmpleft.h"
#include "harness.h"

static char g_dir[64], g_trace[128];

static const char *const TRACE_TEXT = "dma.h2v hbm=0 vmem=0 bytes=1M signal=1\n"
                                      "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=1\n"
                                      "mxu.matmul mxu=0 src=0 dst=2M m=65536 dtype=bf16 signal=2\n"
                                      "ici.allreduce axes=xy bytes=4M dtype=bf16 wait=2\n"
                                      "ici.allgather axes=x bytes=1M dtype=bf16\n"
                                      "ici.send axis=x dir=+1 bytes=64K\n"
                                      "ici.recv axis=x dir=-1 bytes=64K\n"
                                      "sync.barrier\n";

/* A 3D step: matmul, all-reduce over every axis, all-gather and reduce-scatter over some,
 * all-to-all over all, and a ring shift along z. `m` sets the matmul size (per-chip traces). */
static const char *const TRACE3_FMT = "dma.h2v hbm=0 vmem=0 bytes=1M signal=1\n"
                                      "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=1\n"
                                      "mxu.matmul mxu=0 src=0 dst=2M m=%u dtype=bf16 signal=2\n"
                                      "ici.allreduce axes=xyz bytes=%uK dtype=bf16 wait=2\n"
                                      "ici.allgather axes=z bytes=2M dtype=bf16\n"
                                      "ici.reducescatter axes=xy bytes=4M dtype=bf16\n"
                                      "ici.alltoall axes=xyz bytes=2M dtype=bf16\n"
                                      "ici.send axis=z dir=+1 bytes=256K\n"
                                      "ici.recv axis=z dir=-1 bytes=256K\n"
                                      "sync.barrier\n";

static char g_trace3[128];

/* Assemble `text` into g_dir/name.tpt; path in out. */
static int assemble(const char *text, const char *name, char *out, size_t cap)
{
    char src[192];
    snprintf(src, sizeof src, "%s/%s.s", g_dir, name);
    snprintf(out, cap, "%s/%s.tpt", g_dir, name);
    FILE *f = fopen(src, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    err e;
    if (asm_file(src, out, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    return 0;
}

static int assemble3k(unsigned m, unsigned ar_kib, const char *name, char *out, size_t cap)
{
    char text[1024];
    snprintf(text, sizeof text, TRACE3_FMT, m, ar_kib);
    return assemble(text, name, out, cap);
}

static int assemble3(unsigned m, const char *name, char *out, size_t cap)
{
    return assemble3k(m, 8192, name, out, cap);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_pod.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    if (assemble(TRACE_TEXT, "t", g_trace, sizeof g_trace) ||
        assemble3(65536, "t3", g_trace3, sizeof g_trace3))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void load(cfg *c, const char *preset)
{
    char path[512];
    err e;
    snprintf(path, sizeof path, "%s/configs/%s.yaml", TPUSIM_SOURCE_DIR, preset);
    if (cfg_load(c, path, TPUSIM_SOURCE_DIR "/configs", &e) || cfg_check(c, &e))
        fail_msg("%s", e.msg);
}

static void test_pod_peak_is_chips_times_chip_peak_exactly(void **state)
{
    (void)state;
    cfg c;
    load(&c, "v5e");
    pod_result r;
    err e;
    if (pod_estimate(&c, g_trace, "4x4", ICI_MODE_SYMMETRIC, &r, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(r.chips, 16);
    for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++)
        assert_true(r.peak_ef[dt] == 16 * cfg_peak_flops(&c, dt) * 1e-18);
    assert_true(r.peak_ef[ISA_DT_BF16] > 0);
}

static void test_pod_ironwood_pod_peaks_at_42_5_fp8_exaflops(void **state)
{
    (void)state;
    cfg c;
    load(&c, "v7");
    char topo[32];
    err e;
    assert_int_equal(pod_topology(&c, 0, topo, sizeof topo, &e), 0);
    assert_string_equal(topo, "16x24x24");
    pod_result r;
    if (pod_estimate(&c, g_trace, topo, ICI_MODE_SYMMETRIC, &r, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(r.chips, 9216);
    assert_true(r.peak_ef[ISA_DT_FP8] > 42.4 && r.peak_ef[ISA_DT_FP8] < 42.6);
    assert_true(r.peak_ef[ISA_DT_FP8] == 9216 * cfg_chip_peak_flops(&c, ISA_DT_FP8) * 1e-18);
}

/* Ironwood's cores are separate devices: the pod is 2 x 9216 devices, the trace is one
 * device's program, a chip does both devices' FLOPs, and the pod peak stays chips x chip. */
static void test_pod_ironwood_pod_is_18432_devices(void **state)
{
    (void)state;
    cfg c;
    load(&c, "v7");
    err e;
    pod_result r, mc;
    if (pod_estimate(&c, g_trace, "16x24x24", ICI_MODE_SYMMETRIC, &r, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(r.chips, 9216);
    assert_int_equal(r.devices_per_chip, 2);
    assert_int_equal(r.devices, 18432);
    assert_true(r.flops_per_chip == 2 * r.flops_per_device);
    assert_true(fabs(r.sustained_ef - 18432 * r.flops_per_device / (r.step_ps * 1e-12) * 1e-18) <=
                1e-9 * r.sustained_ef);
    assert_true(r.sustained_ef <= r.peak_ef[ISA_DT_BF16]);
    /* the same trace as a megacore chip: one device per chip, same chip peak */
    c.chip_megacore = 1;
    if (pod_estimate(&c, g_trace, "16x24x24", ICI_MODE_SYMMETRIC, &mc, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(mc.devices, 9216);
    assert_true(mc.peak_ef[ISA_DT_FP8] == r.peak_ef[ISA_DT_FP8]);
    assert_true(mc.flops_per_chip == r.flops_per_device);
}

/* Energy per step on v7 (two devices per chip), each term by its closed form: a chip's dynamic
 * energy is its two devices' (the representative's counters x 2: 65536 x 128 x 128 MACs and
 * an all-gather of 1 MiB over a ring of 4, 3/4 MiB on links, each), static power is the
 * chip's over the whole step, and the pod is chips x that: W = J / step, MW = chips x W. */
static void test_pod_energy_per_step_is_chips_times_devices_dynamic_plus_static(void **state)
{
    (void)state;
    char trace[128];
    assert_int_equal(assemble("mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16\n"
                              "mxu.matmul mxu=0 src=0 dst=2M m=65536 dtype=bf16\n"
                              "ici.allgather axes=x bytes=1M dtype=bf16\n",
                              "energy", trace, sizeof trace),
                     0);
    cfg c;
    load(&c, "v7");
    err e;
    const char *const set[][2] = {
        {"energy.static_w", "300"},     {"energy.mac_bf16_pj", "1"},    {"energy.ici_pj_bit", "5"},
        {"energy.vmem_rd_pj_bit", "0"}, {"energy.vmem_wr_pj_bit", "0"}, {"energy.hbm_pj_bit", "0"},
        {"energy.hbm_act_pj", "0"},     {"energy.valu_vreg_pj", "0"},
    };
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        assert_int_equal(cfg_set(&c, set[i][0], set[i][1], "-p", &e), 0);
    pod_result r;
    if (pod_estimate(&c, trace, "4x4x4", ICI_MODE_SYMMETRIC, &r, &e))
        fail_msg("%s", e.msg);
    const double d = 2, step_s = (double)r.step_ps * 1e-12;
    assert_int_equal(r.devices_per_chip, 2);
    assert_close(r.chip_j[ENERGY_MXU], d * 65536.0 * 128 * 128 * 1e-12, 1e-12);
    assert_close(r.chip_j[ENERGY_ICI], d * 0.75 * (1 << 20) * 8 * 5e-12, 1e-12);
    assert_close(r.chip_j[ENERGY_STATIC], 300 * step_s, 1e-12);
    assert_true(r.chip_j[ENERGY_VMEM] == 0 && r.chip_j[ENERGY_HBM] == 0);
    double tot = r.chip_j[ENERGY_MXU] + r.chip_j[ENERGY_ICI] + r.chip_j[ENERGY_STATIC];
    assert_close(r.chip_j_total, tot, 1e-12);
    assert_close(r.chip_w, tot / step_s, 1e-12);
    assert_close(r.pod_j_per_step, 64 * tot, 1e-12);
    assert_close(r.pod_mw, 64 * tot / step_s * 1e-6, 1e-12);
    assert_close(r.tflops_per_w, r.flops_per_chip / tot * 1e-12, 1e-12);
}

/* A step that is one all-reduce over the 4x4x4 torus: reduce-scatter then all-gather per axis,
 * 2 (p-1) steps of B/(2p) bytes per axis, B shrinking p-fold per axis, each step
 * hop + bytes / bw, where bw is the device's share of a link direction: link_gbs / devices per
 * chip (icinet.c). On v7 the chip's two devices run the same step over its links, so each
 * gets 50 of the 100 GB/s; as one megacore device, or on v4 (megacore), the whole link. */
static double allreduce_444_ps(const cfg *c, double B, double dpc)
{
    double bw = c->ici_link_gbs * 1e-3 / dpc, hop = c->ici_hop_latency_ns * 1e3, t = 0;
    for (unsigned a = 0; a < 3; a++, B /= 4)
        t += 2 * 3 * (hop + B / 8 / bw);
    return t;
}

static void test_pod_v7_device_allreduce_gets_half_of_each_link(void **state)
{
    (void)state;
    char tr[128];
    if (assemble("ici.allreduce axes=xyz bytes=64M dtype=bf16\n", "ar", tr, sizeof tr))
        fail_msg("assemble");
    static const struct {
        const char *preset;
        int megacore;
        unsigned dpc;
    } cases[] = {{"v7", 0, 2}, {"v7", 1, 1}, {"v4", 1, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cfg c;
        load(&c, cases[i].preset);
        c.chip_megacore = cases[i].megacore;
        assert_int_equal(cfg_devices_per_chip(&c), cases[i].dpc);
        double want = allreduce_444_ps(&c, 64.0 * (1 << 20), cases[i].dpc);
        for (int m = 0; m < 2; m++) {
            pod_result r;
            err e;
            if (pod_estimate(&c, tr, "4x4x4", m ? ICI_MODE_SYMMETRIC : ICI_MODE_FULL, &r, &e))
                fail_msg("%s", e.msg);
            if (fabs((double)r.step_ps - want) > 0.01 * want)
                fail_msg("%s megacore=%d %s: step %llu ps, closed form %.0f ps", cases[i].preset,
                         cases[i].megacore, m ? "symmetric" : "full", (unsigned long long)r.step_ps,
                         want);
            /* a chip sends its devices' bytes: per axis RS and AG move (p-1)/p of that
             * axis' payload each, B + B/4 + B/16, per device */
            double sent = 2.0 * 3 / 4 * 64.0 * (1 << 20) * (1 + 1 / 4.0 + 1 / 16.0);
            assert_true(fabs(r.ici_link_bytes_per_chip - cases[i].dpc * sent) <= 1e-6 * sent);
        }
    }
}

static void test_pod_sustained_below_peak_and_mfu_in_unit_interval(void **state)
{
    (void)state;
    cfg c;
    load(&c, "v5e");
    pod_result r;
    err e;
    if (pod_estimate(&c, g_trace, "16x16", ICI_MODE_SYMMETRIC, &r, &e))
        fail_msg("%s", e.msg);
    assert_true(r.step_ps > 0);
    assert_true(r.sustained_ef > 0 && r.sustained_ef <= r.peak_ef[ISA_DT_BF16]);
    assert_true(r.mfu > 0 && r.mfu <= 1);
    assert_int_equal(r.mfu_dtype, ISA_DT_BF16);
    /* the split covers the step exactly */
    double sum = r.t_split[UNIT_TIME_COMPUTE] + r.t_split[UNIT_TIME_MEMORY] +
                 r.t_split[UNIT_TIME_COMM] + r.t_split[UNIT_SPLIT_IDLE];
    assert_true(sum > 0.999 * (double)r.step_ps && sum < 1.001 * (double)r.step_ps);
    assert_true(r.t_split[UNIT_TIME_COMM] > 0 && r.t_split[UNIT_TIME_COMPUTE] > 0);
    /* rows: allreduce, allgather, send, recv of chip 0 */
    assert_int_equal(r.nrows, 4);
    int seen_ar = 0;
    for (unsigned i = 0; i < r.nrows; i++)
        if (r.rows[i].kind == ICI_ALLREDUCE) {
            seen_ar = 1;
            assert_int_equal(r.rows[i].bytes, 4 << 20);
            assert_true(ici_row_busbw(&r.rows[i]) > 0);
        }
    assert_true(seen_ar);
}

static void test_pod_full_and_symmetric_modes_agree(void **state)
{
    (void)state;
    cfg c;
    load(&c, "v5e");
    pod_result f, s;
    err e;
    if (pod_estimate(&c, g_trace, "4x4", ICI_MODE_FULL, &f, &e) ||
        pod_estimate(&c, g_trace, "4x4", ICI_MODE_SYMMETRIC, &s, &e))
        fail_msg("%s", e.msg);
    double rel = ((double)f.step_ps - (double)s.step_ps) / (double)s.step_ps;
    assert_true(rel > -0.03 && rel < 0.03);
    assert_true(f.flops_per_chip == s.flops_per_chip);
}

static double rel_diff(uint64_t a, uint64_t b)
{
    return ((double)a - (double)b) / (double)b;
}

/* Full (every chip simulated) and symmetric (one chip) on 3D slices of the v7 preset, torus
 * and mesh, with a trace using every collective kind and a z ring shift. */
static void test_pod_full_and_symmetric_agree_on_3d_slices(void **state)
{
    (void)state;
    cfg c;
    load(&c, "v7");
    const char *topos[] = {"4x4x4", "2x2x4", "4x4"};
    const char *wraps[] = {"xyz", ""};
    for (unsigned w = 0; w < 2; w++)
        for (unsigned t = 0; t < 3; t++) {
            snprintf(c.ici_wrap, sizeof c.ici_wrap, "%s", wraps[w]);
            pod_result f, s;
            err e;
            const char *trace = t == 2 ? g_trace : g_trace3;
            if (pod_estimate(&c, trace, topos[t], ICI_MODE_FULL, &f, &e) ||
                pod_estimate(&c, trace, topos[t], ICI_MODE_SYMMETRIC, &s, &e))
                fail_msg("%s", e.msg);
            double rel = rel_diff(f.step_ps, s.step_ps);
            if (rel < -0.03 || rel > 0.03)
                fail_msg("%s wrap '%s': full %llu ps, symmetric %llu ps (%.2f%%)", topos[t],
                         wraps[w], (unsigned long long)f.step_ps, (unsigned long long)s.step_ps,
                         rel * 100);
            assert_true(f.t_split[UNIT_TIME_COMM] > 0 && s.t_split[UNIT_TIME_COMM] > 0);
            assert_true(f.flops_per_chip == s.flops_per_chip);
            assert_int_equal(f.nrows, s.nrows);
            for (unsigned i = 0; i < f.nrows; i++) {
                assert_int_equal(f.rows[i].kind, s.rows[i].kind);
                assert_int_equal(f.rows[i].bytes, s.rows[i].bytes);
            }
        }
}

/* Per-chip traces (full mode): identical files give the SPMD result exactly; one slow chip
 * sets the step for everyone (collectives wait for it); the {chip} template and an explicit
 * list in chip-id order are the same thing. */
static void test_pod_full_mode_runs_per_chip_traces(void **state)
{
    (void)state;
    cfg c;
    load(&c, "v7");
    char path[8][128], tmpl[160];
    for (unsigned i = 0; i < 8; i++) {
        char name[32];
        snprintf(name, sizeof name, "same.%u", i);
        if (assemble3(65536, name, path[i], sizeof path[i]))
            fail_msg("assemble");
    }
    snprintf(tmpl, sizeof tmpl, "%s/same.{chip}.tpt", g_dir);
    pod_result spmd, per, list, slow;
    err e;
    const char *one[] = {tmpl};
    const char *all[8];
    for (unsigned i = 0; i < 8; i++)
        all[i] = path[i];
    if (pod_estimate(&c, g_trace3, "2x2x2", ICI_MODE_FULL, &spmd, &e) ||
        pod_estimate_traces(&c, one, 1, "2x2x2", ICI_MODE_FULL, &per, &e) ||
        pod_estimate_traces(&c, all, 8, "2x2x2", ICI_MODE_FULL, &list, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(per.step_ps, spmd.step_ps);
    assert_int_equal(list.step_ps, spmd.step_ps);
    assert_string_equal(per.trace, path[0]);
    /* chip 5 multiplies 1.5 times longer (its 48 MiB of results fit one v7 device's VMEM) */
    char slow5[128];
    if (assemble3(3 * 65536 / 2, "same.5", slow5, sizeof slow5))
        fail_msg("assemble");
    if (pod_estimate_traces(&c, one, 1, "2x2x2", ICI_MODE_FULL, &slow, &e))
        fail_msg("%s", e.msg);
    assert_true(slow.step_ps > spmd.step_ps);
    assert_true(slow.flops_per_chip > spmd.flops_per_chip); /* mean over the chips */
    assert_true(slow.t_split[UNIT_TIME_COMM] >
                spmd.t_split[UNIT_TIME_COMM]); /* the others wait for chip 5 in the all-reduce */
    assert_int_equal(slow.mismatches, 0);
    /* chip 2 all-reduces a different size: counted, first chip's operands used */
    char odd2[128];
    if (assemble3k(65536, 4096, "same.2", odd2, sizeof odd2))
        fail_msg("assemble");
    if (pod_estimate_traces(&c, one, 1, "2x2x2", ICI_MODE_FULL, &slow, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(slow.mismatches, 1);
    /* errors: wrong count, symmetric mode, a missing chip file */
    e.msg[0] = 0;
    assert_int_not_equal(pod_estimate_traces(&c, all, 3, "2x2x2", ICI_MODE_FULL, &per, &e), 0);
    assert_non_null(strstr(e.msg, "3 traces for the 8 chips"));
    assert_int_not_equal(pod_estimate_traces(&c, one, 1, "2x2x2", ICI_MODE_SYMMETRIC, &per, &e), 0);
    assert_non_null(strstr(e.msg, "--mode full"));
    assert_int_not_equal(pod_estimate_traces(&c, one, 1, "2x2x4", ICI_MODE_FULL, &per, &e), 0);
    assert_non_null(strstr(e.msg, "same.8.tpt"));
}

/* A chip whose trace is bad stops, and the others then deadlock in its collectives: the
 * estimate reports the bad chip's own error, decided by the error kind even when every
 * message (here through the trace names) contains the word "deadlock". */
static void test_pod_full_mode_reports_the_failing_chip_not_the_deadlocks(void **state)
{
    (void)state;
    cfg c;
    load(&c, "v7");
    char path[128], tmpl[160];
    for (unsigned i = 0; i < 8; i++) {
        char name[32];
        snprintf(name, sizeof name, "deadlock.%u", i);
        if (i == 3 ? assemble("mxu.ldw mxu=200 vmem=0 k=128 n=128 dtype=bf16\n"
                              "ici.allreduce axes=xyz bytes=1M dtype=bf16\n",
                              name, path, sizeof path)
                   : assemble3(65536, name, path, sizeof path))
            fail_msg("assemble");
    }
    snprintf(tmpl, sizeof tmpl, "%s/deadlock.{chip}.tpt", g_dir);
    const char *one[] = {tmpl};
    pod_result res;
    err e = {0};
    assert_int_not_equal(pod_estimate_traces(&c, one, 1, "2x2x2", ICI_MODE_FULL, &res, &e), 0);
    assert_int_equal(e.kind, ERR_INPUT);
    assert_non_null(strstr(e.msg, "deadlock.3.tpt"));
    assert_non_null(strstr(e.msg, "mxu 200"));
}

static void test_pod_weak_scaling_step_grows_with_the_pod(void **state)
{
    (void)state;
    cfg c;
    load(&c, "v5e");
    uint64_t prev = 0;
    const uint64_t counts[] = {16, 64, 256};
    for (unsigned i = 0; i < 3; i++) {
        char topo[32];
        pod_result r;
        err e;
        if (pod_topology(&c, counts[i], topo, sizeof topo, &e) ||
            pod_estimate(&c, g_trace, topo, ICI_MODE_SYMMETRIC, &r, &e))
            fail_msg("%s", e.msg);
        assert_int_equal(r.chips, counts[i]);
        assert_true(r.step_ps > prev); /* ring latency grows with the axis length */
        prev = r.step_ps;
    }
}

static void test_pod_topology_factorises_near_cubic_or_square(void **state)
{
    (void)state;
    cfg v7, v5e;
    load(&v7, "v7");
    load(&v5e, "v5e");
    char t[32];
    err e;
    assert_int_equal(pod_topology(&v7, 4096, t, sizeof t, &e), 0);
    assert_string_equal(t, "16x16x16");
    assert_int_equal(pod_topology(&v7, 9216, t, sizeof t, &e), 0);
    assert_string_equal(t, "16x24x24");
    assert_int_equal(pod_topology(&v7, 6, t, sizeof t, &e), 0);
    assert_string_equal(t, "1x2x3");
    assert_int_equal(pod_topology(&v5e, 256, t, sizeof t, &e), 0);
    assert_string_equal(t, "16x16");
    assert_int_equal(pod_topology(&v5e, 512, t, sizeof t, &e), 0);
    assert_string_equal(t, "16x32");
}

static int run_main(const char *const *args, unsigned n, err *e)
{
    char *argv[32];
    for (unsigned i = 0; i < n; i++)
        argv[i] = (char *)args[i];
    argv[n] = NULL;
    return cli_pod((int)n, argv, e);
}

/* Every one of the n strings occurs in the JSON text buf. */
static void expect_keys(const char *buf, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strstr(buf, keys[i]))
            fail_msg("JSON lacks %s", keys[i]);
}

static void test_pod_json_written_atomically_with_scaling_rows(void **state)
{
    (void)state;
    char json[160], cfgp[256];
    snprintf(json, sizeof json, "%s/pod.json", g_dir);
    snprintf(cfgp, sizeof cfgp, "%s/configs/v5e.yaml", TPUSIM_SOURCE_DIR);
    const char *args[] = {"pod",       "-c",        cfgp, g_trace, "--json",         json,
                          "--scaling", "16,64,256", "-q", "-p",    "ici.link_gbs=25"};
    err e;
    if (run_main(args, sizeof args / sizeof args[0], &e))
        fail_msg("%s", e.msg);
    assert_int_equal(tmp_left(json), 0);
    FILE *f = fopen(json, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    assert_true(len > 100);
    assert_int_equal(buf[0], '{');
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        len--;
    assert_int_equal(buf[len - 1], '}');
    const char *keys[] = {"\"chips\": 256",
                          "\"topology\": \"16x16\"",
                          "\"peak_exaflops\"",
                          "\"sustained_exaflops\"",
                          "\"mfu\"",
                          "\"time_split\"",
                          "\"collectives\"",
                          "\"algorithm\"",
                          "\"busbw_gbs\"",
                          "\"scaling\"",
                          "\"weak_scaling\": true",
                          "\"comm_share\""};
    expect_keys(buf, keys, sizeof keys / sizeof keys[0]);
    /* three scaling rows, in order */
    const char *sc = strstr(buf, "\"scaling\"");
    const char *a = strstr(sc, "\"chips\": 16,"), *b = strstr(sc, "\"chips\": 64,"),
               *c = strstr(sc, "\"chips\": 256,");
    assert_true(a && b && c && a < b && b < c);
    /* braces and brackets balance */
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        depth += buf[i] == '{' || buf[i] == '[';
        depth -= buf[i] == '}' || buf[i] == ']';
        assert_true(depth >= 0);
    }
    assert_int_equal(depth, 0);
}

static void expect_error(const char *const *args, unsigned n, const char *what)
{
    err e;
    e.msg[0] = 0;
    assert_int_not_equal(run_main(args, n, &e), 0);
    if (!strstr(e.msg, what))
        fail_msg("error '%s' does not mention '%s'", e.msg, what);
}

static void test_pod_rejects_bad_topology_chips_and_mode(void **state)
{
    (void)state;
    char cfgp[256];
    snprintf(cfgp, sizeof cfgp, "%s/configs/v5e.yaml", TPUSIM_SOURCE_DIR);
    const char *t1[] = {"pod", "-c", cfgp, g_trace, "--topology", "4x"};
    expect_error(t1, 6, "--topology '4x'");
    const char *t2[] = {"pod", "-c", cfgp, g_trace, "--topology", "4x0x2"};
    expect_error(t2, 6, "--topology '4x0x2'");
    const char *t3[] = {"pod", "-c", cfgp, g_trace, "--chips", "0"};
    expect_error(t3, 6, "--chips '0'");
    const char *t4[] = {"pod", "-c", cfgp, g_trace, "--chips", "12abc"};
    expect_error(t4, 6, "--chips '12abc'");
    const char *t5[] = {"pod", "-c", cfgp, g_trace, "--chips", "12", "--topology", "4x4"};
    expect_error(t5, 8, "--chips 12 does not match --topology 4x4 (16 chips)");
    const char *t5b[] = {"pod", "-c", cfgp, g_trace, g_trace, "--topology", "1x2"};
    expect_error(t5b, 7, "need --mode full");
    const char *t5c[] = {"pod",        "-c",  cfgp,     g_trace, g_trace,
                         "--topology", "4x4", "--mode", "full"};
    expect_error(t5c, 9, "2 traces for the 16 chips");
    const char *t6[] = {"pod", "-c", cfgp, g_trace, "--mode", "fast"};
    expect_error(t6, 6, "--mode 'fast'");
    const char *t7[] = {"pod", "-c", cfgp, g_trace, "--mode", "full", "--chips", "4096"};
    expect_error(t7, 8, "full mode");
    const char *t8[] = {"pod", "-c", cfgp};
    expect_error(t8, 3, "TRACE");
    const char *t9[] = {"pod", "-c", cfgp, g_trace, "--scaling", "16,,64"};
    expect_error(t9, 6, "--scaling");
    /* a one-axis pod cannot run a trace with collectives over x and y */
    const char *t10[] = {"pod", "-c", cfgp, g_trace, "--topology", "8", "-q"};
    expect_error(t10, 7, "axis");
}

/* Two slices (dcn.slices = 2): the pod is twice the simulated slice, and a device's DCN
 * all-reduce of B bytes after its matmul takes the closed form 2 (S-1) (lat + B / (S bw)) =
 * 2 lat + B / bw, all of it exposed, bw its share of the chip's dcn.gbs (v7: half, its sibling
 * doing the same); the chip sends devices x B over the DCN (energy.dcn_pj_bit per bit).
 * Twice the bandwidth (no latency): half the time. Full mode gives each chip the same. */
static void test_pod_two_slices_dcn_allreduce_matches_the_closed_form(void **state)
{
    (void)state;
    char trace[128];
    assert_int_equal(assemble("dma.h2v hbm=0 vmem=0 bytes=1M signal=1\n"
                              "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=1\n"
                              "mxu.matmul mxu=0 src=0 dst=2M m=65536 dtype=bf16 signal=2\n"
                              "dcn.allreduce bytes=64M dtype=bf16 wait=2\n",
                              "dcn2", trace, sizeof trace),
                     0);
    cfg c;
    load(&c, "v7");
    err e;
    assert_int_equal(cfg_set(&c, "dcn.slices", "2", "-p", &e), 0);
    assert_int_equal(cfg_set(&c, "dcn.gbs", "6.25", "-p", &e), 0);
    assert_int_equal(cfg_set(&c, "dcn.latency_us", "10", "-p", &e), 0);
    pod_result r, f, h;
    if (pod_estimate(&c, trace, "4x4x4", ICI_MODE_SYMMETRIC, &r, &e) ||
        pod_estimate(&c, trace, "2x2x2", ICI_MODE_FULL, &f, &e))
        fail_msg("%s", e.msg);
    const double d = cfg_devices_per_chip(&c), B = 64.0 * (1 << 20);
    const double t = 2 * 10e6 + B * 160 * d; /* ps: 160 ps per byte at 6.25 GB/s, x d */
    assert_true(d == 2);
    assert_int_equal(r.slices, 2);
    assert_int_equal(r.chips_slice, 64);
    assert_int_equal(r.chips, 128);
    assert_true(r.peak_ef[ISA_DT_BF16] == 128 * cfg_chip_peak_flops(&c, ISA_DT_BF16) * 1e-18);
    assert_true(r.dcn_ops == 1 && r.dcn_bytes == B && r.dcn_sent == d * B);
    assert_true(r.dcn_ps == t);
    assert_true(r.dcn_closed_ps == t);
    assert_true(r.dcn_exposed_ps == t); /* it starts when the matmul is done */
    assert_true(r.step_ps > t && r.t_split[UNIT_TIME_COMM] >= t);
    assert_true(fabs(r.chip_j[ENERGY_DCN] - d * B * 8 * c.energy_dcn_pj_bit * 1e-12) < 1e-12);
    assert_int_equal(f.chips, 16);
    assert_true(f.dcn_ps == t && f.dcn_exposed_ps == t);
    assert_int_equal(cfg_set(&c, "dcn.latency_us", "0", "-p", &e), 0);
    if (pod_estimate(&c, trace, "4x4x4", ICI_MODE_SYMMETRIC, &r, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(cfg_set(&c, "dcn.gbs", "12.5", "-p", &e), 0);
    if (pod_estimate(&c, trace, "4x4x4", ICI_MODE_SYMMETRIC, &h, &e))
        fail_msg("%s", e.msg);
    assert_true(r.dcn_ps == B * 160 * d && h.dcn_ps == B * 80 * d);
    assert_true(r.step_ps - h.step_ps == (uint64_t)(B * 80 * d));
}

/* `--slices S` on the command line is -p dcn.slices=S: the JSON gains a "dcn" object (only
 * then: a one-slice document is unchanged) and its chips are S x the topology's. */
static void test_pod_slices_option_reports_the_dcn(void **state)
{
    (void)state;
    char trace[128], json[160], json1[160], cfgp[256];
    assert_int_equal(assemble("dcn.allreduce bytes=1M dtype=bf16\n", "dcnopt", trace, sizeof trace),
                     0);
    snprintf(json, sizeof json, "%s/dcn.json", g_dir);
    snprintf(json1, sizeof json1, "%s/one.json", g_dir);
    snprintf(cfgp, sizeof cfgp, "%s/configs/v7.yaml", TPUSIM_SOURCE_DIR);
    const char *args[] = {"pod",      "-c", cfgp,     trace, "--topology", "4x4x4",
                          "--slices", "3",  "--json", json,  "-q"};
    err e;
    if (run_main(args, sizeof args / sizeof args[0], &e))
        fail_msg("%s", e.msg);
    static char buf[1 << 16];
    FILE *fp = fopen(json, "r");
    assert_non_null(fp);
    buf[fread(buf, 1, sizeof buf - 1, fp)] = 0;
    fclose(fp);
    const char *keys[] = {"\"chips\": 192,",
                          "\"dcn\": {",
                          "\"slices\": 3,",
                          "\"chips_per_slice\": 64,",
                          "\"allreduces_per_chip\": 1,",
                          "\"closed_form_s\"",
                          "\"exposed_share\": 1"};
    expect_keys(buf, keys, sizeof keys / sizeof keys[0]);
    const char *one[] = {"pod", "-c", cfgp, g_trace, "--topology", "4x4", "--json", json1, "-q"};
    if (run_main(one, sizeof one / sizeof one[0], &e))
        fail_msg("%s", e.msg);
    fp = fopen(json1, "r");
    assert_non_null(fp);
    buf[fread(buf, 1, sizeof buf - 1, fp)] = 0;
    fclose(fp);
    assert_null(strstr(buf, "\"dcn\""));
    const char *bad[] = {"pod", "-c", cfgp, trace, "--slices", "0"};
    expect_error(bad, 6, "--slices '0'");
    const char *none[] = {"pod", "-c", cfgp, trace, "--topology", "4x4x4", "-q"};
    expect_error(none, 7, "dcn.slices = 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pod_peak_is_chips_times_chip_peak_exactly),
        cmocka_unit_test(test_pod_ironwood_pod_peaks_at_42_5_fp8_exaflops),
        cmocka_unit_test(test_pod_ironwood_pod_is_18432_devices),
        cmocka_unit_test(test_pod_energy_per_step_is_chips_times_devices_dynamic_plus_static),
        cmocka_unit_test(test_pod_v7_device_allreduce_gets_half_of_each_link),
        cmocka_unit_test(test_pod_sustained_below_peak_and_mfu_in_unit_interval),
        cmocka_unit_test(test_pod_full_and_symmetric_modes_agree),
        cmocka_unit_test(test_pod_full_and_symmetric_agree_on_3d_slices),
        cmocka_unit_test(test_pod_full_mode_runs_per_chip_traces),
        cmocka_unit_test(test_pod_full_mode_reports_the_failing_chip_not_the_deadlocks),
        cmocka_unit_test(test_pod_weak_scaling_step_grows_with_the_pod),
        cmocka_unit_test(test_pod_topology_factorises_near_cubic_or_square),
        cmocka_unit_test(test_pod_json_written_atomically_with_scaling_rows),
        cmocka_unit_test(test_pod_rejects_bad_topology_chips_and_mode),
        cmocka_unit_test(test_pod_two_slices_dcn_allreduce_matches_the_closed_form),
        cmocka_unit_test(test_pod_slices_option_reports_the_dcn),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
