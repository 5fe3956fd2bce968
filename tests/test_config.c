/* test_config.c - the config table: defaults, presets against published peaks, includes,
 * dump/load round trips, and the exact one-line error for each kind of bad input. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <math.h>
#include <unistd.h>

#include "config.h"

#define PRESETS TPUSIM_SOURCE_DIR "/configs"

static char tmpdir[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_config.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write text to tmpdir/name; returns the path in a static buffer ring. */
static const char *write_file(const char *name, const char *text)
{
    static char paths[4][512];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

/* Load text as tmpdir/name and expect failure with exactly "<path>:<rest>". */
static void expect_load_error(const char *name, const char *text, const char *rest)
{
    const char *path = write_file(name, text);
    cfg c;
    err e = {0};
    assert_int_not_equal(cfg_load(&c, path, PRESETS, &e), 0);
    char want[ERR_MSG_MAX];
    snprintf(want, sizeof want, "%s:%s", path, rest);
    assert_string_equal(e.msg, want);
}

static void load_ok(cfg *c, const char *path)
{
    err e = {0};
    int rc = cfg_load(c, path, PRESETS, &e);
    if (rc)
        fail_msg("%s", e.msg);
    rc = cfg_check(c, &e);
    if (rc)
        fail_msg("%s", e.msg);
}

/* ---- defaults and the key table ---- */

static void test_defaults_equal_the_key_table(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    assert_string_equal(c.chip_name, "generic");
    assert_true(c.chip_clock_ghz == 1.0);
    assert_int_equal(c.mxu_rows, 128);
    assert_int_equal(c.mxu_count, 4);
    assert_true(c.mxu_rate_fp32 == 0.25);
    assert_int_equal(c.vmem_bytes, 16ULL << 20);
    assert_int_equal(c.dma_chunk_bytes, 64ULL << 10);
    assert_int_equal(c.hbm_bytes, 16ULL << 30);
    assert_int_equal(c.hbm_model, CFG_HBM_BANKED);
    assert_int_equal(c.ici_twisted, 0);
    assert_string_equal(c.ici_dims, "4x4");
    assert_int_equal(c.pod_chips, 256);
    assert_int_equal(c.source[0], 0);
    err e = {0};
    assert_int_equal(cfg_check(&c, &e), 0);
}

/* Every default must also be what cfg_set produces from the table's default text. */
static void test_every_default_reparses_to_the_same_value(void **state)
{
    (void)state;
    size_t n;
    const cfg_key *k = cfg_keys(&n);
    assert_true(n > 40);
    cfg d, c;
    cfg_defaults(&d);
    memset(&c, 0, sizeof c);
    for (size_t i = 0; i < n; i++) {
        err e = {0};
        assert_int_equal(cfg_set(&c, k[i].name, k[i].def, "t", &e), 0);
        assert_ptr_equal(cfg_key_find(k[i].name), &k[i]);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(k[i].name, k[j].name);
    }
    assert_memory_equal(&c, &d, sizeof c);
}

static void test_help_lists_every_key_with_range(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cfg_help(f);
    fclose(f);
    size_t n;
    const cfg_key *k = cfg_keys(&n);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(strstr(buf, k[i].name));
        assert_non_null(strstr(buf, k[i].help));
    }
    assert_non_null(strstr(buf, "hbm.channels               int   -            [1, 1024]"));
    assert_non_null(strstr(buf, "banked|simple"));
    assert_non_null(strstr(buf, "[4KiB, 1TiB]"));
    free(buf);
}

/* ---- presets against published figures (reference table) ---- */

typedef struct published {
    const char *name;
    double bf16_tf, int8_tf, fp8_tf, int4_tf; /* 0 = not supported */
    double hbm_gbs;
    uint64_t hbm_gib, vmem_mib_per_core, pod_chips;
} published;

static const published presets[] = {
    {"v2", 46, 0, 0, 0, 716, 16, 16, 256},
    {"v3", 123, 0, 0, 0, 900, 32, 16, 1024},
    {"v4", 275, 275, 0, 0, 1200, 32, 16, 4096},
    {"v5e", 197, 393, 0, 788, 819, 16, 128, 256},
    {"v5p", 459, 918, 459, 1840, 2765, 95, 64, 8960},
    {"v6e", 918, 1836, 918, 0, 1638, 32, 128, 256},
    {"v7", 2307, 0, 4614, 0, 7370, 192, 64, 9216},
};

static void assert_within_1pct(const char *what, double got, double want)
{
    if (fabs(got - want) > 0.01 * want)
        fail_msg("%s: %g not within 1%% of published %g", what, got, want);
}

static void test_presets_match_published_peaks(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const published *p = &presets[i];
        char path[512];
        snprintf(path, sizeof path, "%s/%s.yaml", PRESETS, p->name);
        cfg c;
        load_ok(&c, path);
        /* published figures are per chip; a run sees one device's share */
        double dpc = cfg_devices_per_chip(&c);
        assert_within_1pct(p->name, cfg_chip_peak_flops(&c, ISA_DT_BF16), p->bf16_tf * 1e12);
        assert_within_1pct(p->name, dpc * cfg_hbm_peak_bps(&c), p->hbm_gbs * 1e9);
        assert_true(cfg_peak_flops(&c, ISA_DT_BF16) * dpc == cfg_chip_peak_flops(&c, ISA_DT_BF16));
        if (p->int8_tf)
            assert_within_1pct(p->name, cfg_chip_peak_flops(&c, ISA_DT_INT8), p->int8_tf * 1e12);
        else
            assert_true(cfg_mxu_rate(&c, ISA_DT_INT8) == 0);
        if (p->fp8_tf)
            assert_within_1pct(p->name, cfg_chip_peak_flops(&c, ISA_DT_FP8), p->fp8_tf * 1e12);
        else
            assert_true(cfg_mxu_rate(&c, ISA_DT_FP8) == 0);
        if (p->int4_tf)
            assert_within_1pct(p->name, cfg_chip_peak_flops(&c, ISA_DT_INT4), p->int4_tf * 1e12);
        assert_int_equal(c.hbm_bytes, p->hbm_gib << 30);
        assert_int_equal(c.vmem_bytes, p->vmem_mib_per_core << 20);
        assert_int_equal(c.pod_chips, p->pod_chips);
        assert_string_equal(c.source, path);
    }
}

static void test_v7_pod_fp8_peak_is_42_exaflops(void **state)
{
    (void)state;
    cfg c;
    load_ok(&c, PRESETS "/v7.yaml");
    assert_within_1pct("v7 pod", cfg_chip_peak_flops(&c, ISA_DT_FP8) * (double)c.pod_chips,
                       42.5e18);
    assert_true(fabs(cfg_cycle_ps(&c) - 1000.0 / 2.2) < 1e-9);
}

/* Every preset says how software sees its cores, as JAX's ChipVersion table does: v2, v3 and
 * v7 are two devices per chip, v4 and v5p one megacore, v5e and v6e one core. */
static void test_presets_state_megacore_per_generation(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int megacore;
        unsigned devices;
    } want[] = {{"v2", 0, 2},  {"v3", 0, 2},  {"v4", 1, 1}, {"v5e", 0, 1},
                {"v5p", 1, 1}, {"v6e", 0, 1}, {"v7", 0, 2}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.yaml", PRESETS, want[i].name);
        cfg c;
        load_ok(&c, path);
        if (c.origin[CFG_K_chip_megacore].file == 0)
            fail_msg("%s: chip.megacore not set in the preset", want[i].name);
        assert_int_equal(c.chip_megacore, want[i].megacore);
        assert_int_equal(cfg_devices_per_chip(&c), want[i].devices);
    }
}

/* One v7 device: one core's 4 MXUs and 64 MiB VMEM, half the HBM channels and capacity. */
static void test_v7_device_is_one_core_with_half_the_hbm(void **state)
{
    (void)state;
    cfg c;
    load_ok(&c, PRESETS "/v7.yaml");
    assert_int_equal(cfg_device_cores(&c), 1);
    assert_int_equal(cfg_mxu_total(&c), 4);
    assert_true(cfg_vmem_total_bytes(&c) == 64.0 * (1 << 20));
    assert_int_equal(cfg_hbm_channels(&c), 64);
    assert_int_equal(cfg_hbm_bytes(&c), 96ull << 30);
    assert_within_1pct("v7 device HBM", cfg_hbm_peak_bps(&c), 3686.4e9);
    assert_within_1pct("v7 device bf16", cfg_peak_flops(&c, ISA_DT_BF16), 1153.4e12);
    assert_true(cfg_static_w(&c) == c.energy_static_w / 2);
    /* megacore: the whole chip again */
    c.chip_megacore = 1;
    assert_int_equal(cfg_mxu_total(&c), 8);
    assert_true(cfg_vmem_total_bytes(&c) == 128.0 * (1 << 20));
    assert_within_1pct("v7 chip HBM", cfg_hbm_peak_bps(&c), 7372.8e9);
}

/* Channels must split evenly over a chip's devices. */
static void test_megacore_off_needs_channels_divisible_by_cores(void **state)
{
    (void)state;
    cfg c;
    load_ok(&c, PRESETS "/v7.yaml");
    c.hbm_channels = 127;
    err e = {0};
    assert_int_not_equal(cfg_check(&c, &e), 0);
    assert_non_null(strstr(e.msg, "hbm.channels"));
}

static void test_bare_preset_name_is_found(void **state)
{
    (void)state;
    cfg c;
    err e = {0};
    assert_int_equal(cfg_load(&c, "v5e", PRESETS, &e), 0);
    assert_string_equal(c.source, PRESETS "/v5e.yaml");
    /* NULL presets_dir: found through $TPUSIM_PRESETS */
    setenv("TPUSIM_PRESETS", "/nonexistent:" PRESETS, 1);
    assert_int_equal(cfg_load(&c, "v6e.yaml", NULL, &e), 0);
    assert_string_equal(c.chip_name, "TPU v6e Trillium");
}

/* ---- includes ---- */

/* Clear what records where the values came from (source file, per-key origins), so that
 * two configs compare equal when their values are. */
static void strip_origin(cfg *c)
{
    memset(c->source, 0, sizeof c->source);
    memset(c->origin, 0, sizeof c->origin);
    memset(c->files, 0, sizeof c->files);
}

static void test_include_preset_then_override(void **state)
{
    (void)state;
    const char *path = write_file("inc.yaml", "include: v7\nmxu: {rows: 128}\n");
    cfg c, v7;
    load_ok(&c, path);
    load_ok(&v7, PRESETS "/v7.yaml");
    assert_int_equal(c.mxu_rows, 128);
    assert_int_equal(c.mxu_cols, 256);
    assert_true(c.chip_clock_ghz == 2.2);
    assert_string_equal(c.source, path);
    /* Everything but the override and the source equals the preset. */
    c.mxu_rows = v7.mxu_rows;
    strip_origin(&c);
    strip_origin(&v7);
    assert_memory_equal(&c, &v7, sizeof c);
}

static void test_include_relative_to_including_file_and_dotted_keys(void **state)
{
    (void)state;
    write_file("base.yaml", "chip:\n  clock_ghz: 1.25\n  cores: 2\n");
    const char *path =
        write_file("top.yaml", "include: base.yaml\nchip.cores: 3\nhbm: {model: simple}\n");
    cfg c;
    load_ok(&c, path);
    assert_true(c.chip_clock_ghz == 1.25);
    assert_int_equal(c.chip_cores, 3);
    assert_int_equal(c.hbm_model, CFG_HBM_SIMPLE);
}

static void test_include_cycle_is_an_error(void **state)
{
    (void)state;
    write_file("cyc_a.yaml", "include: cyc_b.yaml\n");
    write_file("cyc_b.yaml", "include: cyc_a.yaml\n");
    char a[512], want[1200];
    snprintf(a, sizeof a, "%s/cyc_a.yaml", tmpdir);
    snprintf(want, sizeof want, "%s/cyc_b.yaml:1: include 'cyc_a.yaml': include cycle", tmpdir);
    cfg c;
    err e = {0};
    assert_int_not_equal(cfg_load(&c, a, PRESETS, &e), 0);
    assert_string_equal(e.msg, want);
    expect_load_error("self.yaml", "include: self.yaml\n", "1: include 'self.yaml': include cycle");
}

static void test_include_depth_is_limited_to_8(void **state)
{
    (void)state;
    /* d0 -> d1 -> ... -> d9: nine nested includes of distinct files. */
    for (int i = 0; i < 10; i++) {
        char name[32], text[64];
        snprintf(name, sizeof name, "d%d.yaml", i);
        snprintf(text, sizeof text, i < 9 ? "include: d%d.yaml\n" : "chip: {cores: %d}\n",
                 i < 9 ? i + 1 : 3);
        write_file(name, text);
    }
    char d0[512], want[1024];
    snprintf(d0, sizeof d0, "%s/d0.yaml", tmpdir);
    snprintf(want, sizeof want, "%s/d8.yaml:1: include 'd9.yaml': includes nested deeper than 8",
             tmpdir);
    cfg c;
    err e = {0};
    assert_int_not_equal(cfg_load(&c, d0, PRESETS, &e), 0);
    assert_string_equal(e.msg, want);
    /* Eight levels are fine. */
    snprintf(d0, sizeof d0, "%s/d1.yaml", tmpdir);
    load_ok(&c, d0);
    assert_int_equal(c.chip_cores, 3);
}

static void test_include_errors(void **state)
{
    (void)state;
    expect_load_error("late.yaml", "chip: {cores: 2}\ninclude: v7\n",
                      "2: 'include' must be the first key of the file");
    const char *path = write_file("missing.yaml", "\n\ninclude: v99\n");
    cfg c;
    err e = {0};
    assert_int_not_equal(cfg_load(&c, path, PRESETS, &e), 0);
    char want[ERR_MSG_MAX];
    /* The message goes on to list the search path, which includes the install directory. */
    snprintf(want, sizeof want,
             "%s:3: include 'v99': not found relative to the file nor as a preset", path);
    assert_memory_equal(e.msg, want, strlen(want));
}

/* ---- dump/load round trips ---- */

static void round_trip(const cfg *c)
{
    const char *path = write_file("dump.yaml", "");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    cfg_dump(c, f);
    fclose(f);
    cfg back;
    err e = {0};
    if (cfg_load(&back, path, PRESETS, &e))
        fail_msg("%s", e.msg);
    cfg want = *c;
    strip_origin(&want);
    strip_origin(&back);
    assert_memory_equal(&want, &back, sizeof want);
}

static void test_dump_load_round_trip_every_preset(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    round_trip(&c);
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.yaml", PRESETS, presets[i].name);
        load_ok(&c, path);
        round_trip(&c);
    }
}

static void test_dump_round_trip_awkward_values(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    err e = {0};
    assert_int_equal(cfg_set(&c, "chip.name", "a \"q\" # b: c\\d\t", "-p", &e), 0);
    assert_int_equal(cfg_set(&c, "chip.clock_ghz", "0.1", "-p", &e), 0);
    assert_int_equal(cfg_set(&c, "hbm.gbps_per_pin", "3.3333333333333335", "-p", &e), 0);
    assert_int_equal(cfg_set(&c, "dma.latency_ns", "1e-3", "-p", &e), 0);
    assert_int_equal(cfg_set(&c, "hbm.bytes", "1125899906842623", "-p", &e), 0);
    assert_int_equal(cfg_set(&c, "ici.wrap", "", "-p", &e), 0);
    assert_int_equal(cfg_set(&c, "ici.twisted", "yes", "-p", &e), 0);
    round_trip(&c);
}

/* ---- value parsing through cfg_set ---- */

static void test_set_accepts_suffixes_hex_and_words(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    err e = {0};
    assert_int_equal(cfg_set(&c, "vmem.bytes", "8M", "-p", &e), 0);
    assert_int_equal(c.vmem_bytes, 8ULL << 20);
    assert_int_equal(cfg_set(&c, "vmem.bytes", "3GiB", "-p", &e), 0);
    assert_int_equal(c.vmem_bytes, 3ULL << 30);
    assert_int_equal(cfg_set(&c, "vmem.bytes", "2T", "-p", &e), -1); /* > 1 TiB */
    assert_int_equal(cfg_set(&c, "dma.chunk_bytes", "4KiB", "-p", &e), 0);
    assert_int_equal(c.dma_chunk_bytes, 4096);
    assert_int_equal(cfg_set(&c, "hbm.channels", "0x40", "-p", &e), 0);
    assert_int_equal(c.hbm_channels, 64);
    assert_int_equal(cfg_set(&c, "chip.clock_ghz", "2.5e0", "-p", &e), 0);
    assert_true(c.chip_clock_ghz == 2.5);
    assert_int_equal(cfg_set(&c, "ici.twisted", "true", "-p", &e), 0);
    assert_int_equal(c.ici_twisted, 1);
    assert_int_equal(cfg_set(&c, "ici.twisted", "0", "-p", &e), 0);
    assert_int_equal(c.ici_twisted, 0);
    assert_int_equal(cfg_set(&c, "hbm.model", "simple", "-p", &e), 0);
    assert_int_equal(c.hbm_model, CFG_HBM_SIMPLE);
}

static void expect_set_error(const char *key, const char *val, const char *msg)
{
    cfg c, before;
    cfg_defaults(&c);
    before = c;
    err e = {0};
    assert_int_equal(cfg_set(&c, key, val, "-p", &e), -1);
    assert_string_equal(e.msg, msg);
    assert_memory_equal(&c, &before, sizeof c); /* a rejected value changes nothing */
}

static void test_set_rejects_bad_values_without_changing_config(void **state)
{
    (void)state;
    expect_set_error("mxu.rows", "abc", "-p: key 'mxu.rows': expected an integer, got 'abc'");
    expect_set_error("mxu.rows", "1.5", "-p: key 'mxu.rows': expected an integer, got '1.5'");
    expect_set_error("mxu.rows", "-1",
                     "-p: key 'mxu.rows': expected a non-negative integer, got '-1'");
    expect_set_error("mxu.rows", "12KB", "-p: key 'mxu.rows': expected an integer, got '12KB'");
    expect_set_error("mxu.rows", "", "-p: key 'mxu.rows': expected an integer, got ''");
    expect_set_error("hbm.bytes", "18446744073709551616",
                     "-p: key 'hbm.bytes': value '18446744073709551616' does not fit in 64 bits");
    expect_set_error("hbm.bytes", "17179869184T",
                     "-p: key 'hbm.bytes': value '17179869184T' does not fit in 64 bits");
    expect_set_error("hbm.channels", "0", "-p: key 'hbm.channels': value 0 not in [1, 1024]");
    expect_set_error("chip.clock_ghz", "20",
                     "-p: key 'chip.clock_ghz': value 20 not in [0.05, 10]");
    expect_set_error("chip.clock_ghz", "fast",
                     "-p: key 'chip.clock_ghz': expected a number, got 'fast'");
    expect_set_error("chip.clock_ghz", "nan",
                     "-p: key 'chip.clock_ghz': expected a number, got 'nan'");
    expect_set_error("ici.twisted", "maybe",
                     "-p: key 'ici.twisted': expected true or false, got 'maybe'");
    expect_set_error("hbm.model", "x",
                     "-p: key 'hbm.model': expected one of banked|simple, got 'x'");
    expect_set_error("chip.name",
                     "0123456789012345678901234567890123456789012345678901234567890123",
                     "-p: key 'chip.name': value longer than 63 characters");
    expect_set_error("mxu.rowz", "1", "-p: unknown key 'mxu.rowz' (did you mean 'mxu.rows'?)");
    expect_set_error("frobnicate", "1", "-p: unknown key 'frobnicate'");
    /* the key's name without its group, or in another group */
    expect_set_error("clock_ghz", "1",
                     "-p: unknown key 'clock_ghz' (did you mean 'chip.clock_ghz'?)");
    expect_set_error("mxu.clock_ghz", "1",
                     "-p: unknown key 'mxu.clock_ghz' (did you mean 'chip.clock_ghz'?)");
}

/* ---- file errors: exact FILE:LINE messages ---- */

static void test_file_errors_name_file_line_and_key(void **state)
{
    (void)state;
    expect_load_error("unk.yaml", "mxu:\n  rows: 128\n  rowz: 256\n",
                      "3: unknown key 'mxu.rowz' (did you mean 'mxu.rows'?)");
    expect_load_error("range.yaml", "hbm:\n  channels: 0\n",
                      "2: key 'hbm.channels': value 0 not in [1, 1024]");
    expect_load_error("int.yaml", "mxu.rows: abc\n",
                      "1: key 'mxu.rows': expected an integer, got 'abc'");
    expect_load_error("enum.yaml", "\nhbm: {model: x}\n",
                      "2: key 'hbm.model': expected one of banked|simple, got 'x'");
    expect_load_error("dup.yaml", "mxu:\n  rows: 128\nmxu.rows: 64\n",
                      "3: duplicate key 'mxu.rows' (first set on line 2)");
    expect_load_error("seq.yaml", "mxu:\n  rows: [1, 2]\n",
                      "2: key 'mxu.rows': expected a scalar value, got a sequence");
    expect_load_error("map.yaml", "mxu:\n  rows:\n    a: 1\n",
                      "3: key 'mxu.rows': expected a scalar value, got a mapping");
    expect_load_error("top.yaml", "- mxu.rows\n",
                      "1: expected a mapping of keys at the top level, got a sequence");
    expect_load_error("syn.yaml", "mxu:\n  rows: 1\n cols: 2\n",
                      "3: YAML syntax error: did not find expected key while parsing a block "
                      "mapping");
    expect_load_error("tab.yaml", "mxu: {rows: 1\n",
                      "2: YAML syntax error: did not find expected ',' or '}' while parsing a "
                      "flow mapping");
}

static void test_missing_file_is_an_error(void **state)
{
    (void)state;
    cfg c;
    err e = {0};
    assert_int_not_equal(cfg_load(&c, "/nonexistent/x.yaml", PRESETS, &e), 0);
    assert_string_equal(e.msg, "/nonexistent/x.yaml: cannot open: No such file or directory");
}

static void test_empty_file_gives_defaults(void **state)
{
    (void)state;
    const char *path = write_file("empty.yaml", "# nothing\n");
    cfg c, d;
    load_ok(&c, path);
    cfg_defaults(&d);
    strip_origin(&c);
    assert_memory_equal(&c, &d, sizeof c);
}

/* ---- cross-key checks ---- */

static void expect_check_error(const char *key, const char *val, const char *msg)
{
    cfg c;
    cfg_defaults(&c);
    err e = {0};
    assert_int_equal(cfg_set(&c, key, val, "-p", &e), 0);
    assert_int_equal(cfg_check(&c, &e), -1);
    assert_string_equal(e.msg, msg);
}

static void test_check_rejects_inconsistent_keys(void **state)
{
    (void)state;
    cfg c;
    cfg_defaults(&c);
    c.mxu_rate_bf16 = c.mxu_rate_fp32 = 0;
    err e = {0};
    assert_int_equal(cfg_check(&c, &e), -1);
    assert_string_equal(e.msg, "keys 'mxu.rate_*': every MXU datatype rate is 0; at least one "
                               "must be > 0");
    c.mxu_rate_int4 = 1; /* any one datatype is enough */
    assert_int_equal(cfg_check(&c, &e), 0);

    expect_check_error("pod.dims", "16x16x2",
                       "keys 'pod.dims' and 'pod.chips': 16x16x2 has 512 chips but pod.chips is "
                       "256");
    expect_check_error("pod.dims", "16by16",
                       "key 'pod.dims': expected 1 to 3 axes such as 8, 16x16 or 4x4x4, got "
                       "'16by16'");
    expect_check_error("ici.dims", "0x4",
                       "key 'ici.dims': axis length 0 not in [1, 1048576] (in '0x4')");
    expect_check_error("ici.dims", "1000000000",
                       "key 'ici.dims': axis length 1000000000 not in [1, 1048576] (in "
                       "'1000000000')");
    expect_check_error("ici.dims", "2x2x2x2",
                       "key 'ici.dims': '2x2x2x2' has 4 axes, expected 1 to 3");
    expect_check_error("ici.dims", "4x",
                       "key 'ici.dims': expected 1 to 3 axes such as 8, 16x16 or 4x4x4, got '4x'");
    expect_check_error("ici.links_per_chip", "2",
                       "key 'ici.links_per_chip': 2, but ici.dims '4x4' needs 4 (2 per axis "
                       "longer than 1)");
    expect_check_error("hbm.tREFI_ns", "350",
                       "key 'hbm.tREFI_ns': 350 ns is not above hbm.tRFC_ns (350 ns): refresh "
                       "would leave no time between refreshes");
    expect_check_error("ici.wrap", "xyz",
                       "key 'ici.wrap': axis 'z' does not exist in ici.dims '4x4'");
    expect_check_error("ici.wrap", "xw",
                       "key 'ici.wrap': 'w' is not an axis (expected letters from xyz), got 'xw'");
    expect_check_error("ici.wrap", "xx", "key 'ici.wrap': axis 'x' given twice in 'xx'");
    expect_check_error("hbm.interleave_bytes", "384",
                       "key 'hbm.interleave_bytes': 384 is not a power of two");
    expect_check_error("hbm.burst_length", "64",
                       "key 'hbm.interleave_bytes': 256 is not a multiple of the minimum access "
                       "512 bytes (hbm.bus_bits/8 x hbm.burst_length)");
    expect_check_error("hbm.row_bytes", "1000", "key 'hbm.row_bytes': 1000 is not a power of two");
    expect_check_error("hbm.bus_bits", "12",
                       "key 'hbm.bus_bits': 12 is not a whole number of bytes");
}

/* A cross-key error names the file and line of the key, through includes too; a -p override
 * of that key leaves the message without a location (it names the key). */
static void test_check_errors_name_file_and_line(void **state)
{
    (void)state;
    char want[1024];
    cfg c;
    err e = {0};
    const char *p = write_file("refi.yaml", "include: v7\nhbm:\n  tRFC_ns: 350\n  tREFI_ns: 100\n");
    assert_int_equal(cfg_load(&c, p, PRESETS, &e), 0);
    assert_int_equal(cfg_check(&c, &e), -1);
    snprintf(want, sizeof want,
             "%s:4: key 'hbm.tREFI_ns': 100 ns is not above hbm.tRFC_ns (350 ns): refresh would "
             "leave no time between refreshes",
             p);
    assert_string_equal(e.msg, want);

    const char *links = write_file("links.yaml", "include: v7\nici.links_per_chip: 1\n");
    char lpath[512];
    snprintf(lpath, sizeof lpath, "%s", links);
    const char *top =
        write_file("ring.yaml", "include: links.yaml\nici:\n  dims: \"8\"\n  wrap: x\n");
    assert_int_equal(cfg_load(&c, top, PRESETS, &e), 0);
    assert_int_equal(cfg_check(&c, &e), -1);
    snprintf(want, sizeof want,
             "%s:2: key 'ici.links_per_chip': 1, but ici.dims '8' needs 2 (2 per axis longer "
             "than 1)",
             lpath);
    assert_string_equal(e.msg, want);
    assert_int_equal(cfg_set(&c, "ici.links_per_chip", "2", "-p", &e), 0);
    assert_int_equal(cfg_check(&c, &e), 0);
    assert_int_equal(cfg_set(&c, "ici.dims", "1000000000", "-p", &e), 0);
    assert_int_equal(cfg_check(&c, &e), -1);
    assert_string_equal(e.msg, "key 'ici.dims': axis length 1000000000 not in [1, 1048576] (in "
                               "'1000000000')");
}

static void test_parse_dims(void **state)
{
    (void)state;
    unsigned d[3] = {9, 9, 9};
    assert_int_equal(cfg_parse_dims("16x16x8", d), 3);
    assert_int_equal(d[0], 16);
    assert_int_equal(d[1], 16);
    assert_int_equal(d[2], 8);
    assert_int_equal(cfg_parse_dims("8", d), 1);
    assert_int_equal(d[0], 8);
    assert_int_equal(d[1], 1);
    assert_int_equal(d[2], 1);
    assert_int_equal(cfg_parse_dims("16x20", d), 2);
    assert_int_equal(d[1], 20);
    assert_int_equal(d[2], 1);
    const char *bad[] = {"",  "0",   "4x0", "x4",   "4x", "4xx4",       "4x4x4x4",
                         "a", "4X4", " 4",  "4x4 ", "-4", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d[0] = 77;
        assert_int_equal(cfg_parse_dims(bad[i], d), -1);
        assert_int_equal(d[0], 77); /* untouched on error */
    }
}

static void test_ici_wrap_none_and_dims_that_drop_wrap_axes(void **state)
{
    (void)state;
    cfg c;
    err e = {0};
    cfg_defaults(&c);
    assert_int_equal(cfg_set(&c, "ici.dims", "4x4x4", "-p", &e), 0);
    assert_int_equal(cfg_set(&c, "ici.wrap", "xyz", "-p", &e), 0);
    /* A 1-axis dims is a ring: the wrap keeps x only, and the config checks. */
    assert_int_equal(cfg_set(&c, "ici.dims", "8", "-p", &e), 0);
    assert_string_equal(c.ici_wrap, "x");
    assert_int_equal(cfg_check(&c, &e), 0);
    /* none, a literal "" and an empty value are a mesh. */
    assert_int_equal(cfg_set(&c, "ici.wrap", "none", "-p", &e), 0);
    assert_string_equal(c.ici_wrap, "");
    assert_int_equal(cfg_check(&c, &e), 0);
    assert_int_equal(cfg_set(&c, "ici.wrap", "\"\"", "-p", &e), 0);
    assert_string_equal(c.ici_wrap, "");
    assert_int_equal(cfg_set(&c, "ici.wrap", "", "-p", &e), 0);
    assert_string_equal(c.ici_wrap, "");
    /* A wrap given after the dims is taken as given, and checked. */
    assert_int_equal(cfg_set(&c, "ici.wrap", "xy", "-p", &e), 0);
    assert_int_not_equal(cfg_check(&c, &e), 0);
    assert_non_null(strstr(e.msg, "axis 'y' does not exist"));
    /* Shrinking 3D to 2D keeps the wrap of the axes left; bad letters stay for the check. */
    assert_int_equal(cfg_set(&c, "ici.wrap", "xqz", "-p", &e), 0);
    assert_int_equal(cfg_set(&c, "ici.dims", "8x8", "-p", &e), 0);
    assert_string_equal(c.ici_wrap, "xq");
    assert_int_not_equal(cfg_check(&c, &e), 0);
}

static void test_config_edit_distance_counts_edits_and_folds_case_on_request(void **state)
{
    (void)state;
    assert_int_equal(isa_edit_distance("hbm.channels", "hbm.channels", 0), 0);
    assert_int_equal(isa_edit_distance("hbm.chanels", "hbm.channels", 0), 1);
    assert_int_equal(isa_edit_distance("mxu.rwos", "mxu.rows", 0), 2);
    assert_int_equal(isa_edit_distance("Llama-3", "llama-3", 0), 1);
    assert_int_equal(isa_edit_distance("Llama-3", "llama-3", 1), 0);
    assert_int_equal(isa_edit_distance("", "abc", 0), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_equal_the_key_table),
        cmocka_unit_test(test_ici_wrap_none_and_dims_that_drop_wrap_axes),
        cmocka_unit_test(test_every_default_reparses_to_the_same_value),
        cmocka_unit_test(test_help_lists_every_key_with_range),
        cmocka_unit_test(test_presets_match_published_peaks),
        cmocka_unit_test(test_v7_pod_fp8_peak_is_42_exaflops),
        cmocka_unit_test(test_presets_state_megacore_per_generation),
        cmocka_unit_test(test_v7_device_is_one_core_with_half_the_hbm),
        cmocka_unit_test(test_megacore_off_needs_channels_divisible_by_cores),
        cmocka_unit_test(test_bare_preset_name_is_found),
        cmocka_unit_test(test_include_preset_then_override),
        cmocka_unit_test(test_include_relative_to_including_file_and_dotted_keys),
        cmocka_unit_test(test_include_cycle_is_an_error),
        cmocka_unit_test(test_include_depth_is_limited_to_8),
        cmocka_unit_test(test_include_errors),
        cmocka_unit_test(test_dump_load_round_trip_every_preset),
        cmocka_unit_test(test_dump_round_trip_awkward_values),
        cmocka_unit_test(test_set_accepts_suffixes_hex_and_words),
        cmocka_unit_test(test_set_rejects_bad_values_without_changing_config),
        cmocka_unit_test(test_file_errors_name_file_line_and_key),
        cmocka_unit_test(test_missing_file_is_an_error),
        cmocka_unit_test(test_empty_file_gives_defaults),
        cmocka_unit_test(test_check_rejects_inconsistent_keys),
        cmocka_unit_test(test_check_errors_name_file_and_line),
        cmocka_unit_test(test_parse_dims),
        cmocka_unit_test(test_config_edit_distance_counts_edits_and_folds_case_on_request),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
