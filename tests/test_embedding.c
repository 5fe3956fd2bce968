/* test_embedding.c - `tpusim gen embedding` (sim/gen/gen_embedding.c): its replayed FLOPs,
 * HBM bytes and ICI bytes equal the analytic count exactly on every preset with SparseCores,
 * forward and training, one chip and sharded; its all-to-all takes the ICI model's closed
 * form (docs/models-ici.md); its error paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gen.h"
#include "run.h"

#define MAX_ARGS 64

static char dir[64], trace[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tpusim_emb_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(trace, sizeof trace, "%s/e.tpt", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

/* Split `cmd` into argv (in buf) and return argc. */
static int split(char *buf, char **argv)
{
    int argc = 0;
    for (char *s = NULL, *t = strtok_r(buf, " ", &s); t && argc < MAX_ARGS;
         t = strtok_r(NULL, " ", &s))
        argv[argc++] = t;
    return argc;
}

/* Split comma-separated overrides "k=v,k=v" (in buf) into ov; returns the count. */
static unsigned split_ovr(char *buf, const char **ov)
{
    unsigned n = 0;
    for (char *s = NULL, *t = strtok_r(buf, ",", &s); t && n < 8; t = strtok_r(NULL, ",", &s))
        ov[n++] = t;
    return n;
}

/* `gen embedding ARGS -c PRESET [-p OVR]... -o trace`: 0 or -1 with e. Fills o and c. */
static int gen_emb(const char *args, const char *preset, const char *ovr, gen_opts *o, cfg *c,
                   err *e)
{
    char cmd[1024], buf[1024], *argv[MAX_ARGS], ps[256] = "", ob[256];
    const char *ov[8];
    snprintf(ob, sizeof ob, "%s", ovr ? ovr : "");
    unsigned nov = split_ovr(ob, ov);
    for (unsigned i = 0; i < nov; i++)
        snprintf(ps + strlen(ps), sizeof ps - strlen(ps), " -p %s", ov[i]);
    snprintf(cmd, sizeof cmd, "gen embedding %s -c %s/configs/%s.yaml%s -o %s", args,
             TPUSIM_SOURCE_DIR, preset, ps, trace);
    snprintf(buf, sizeof buf, "%s", cmd);
    if (cli_gen(split(buf, argv), argv, e))
        return -1;
    snprintf(buf, sizeof buf, "%s", cmd);
    int help, argc = split(buf, argv);
    cfg_defaults(c);
    return cli_gen_parse(argc, argv, o, c, &help, e);
}

static void replay(run *s, const char *preset, const char *ovr)
{
    char path[256], ob[256];
    snprintf(path, sizeof path, "%s/configs/%s.yaml", TPUSIM_SOURCE_DIR, preset);
    snprintf(ob, sizeof ob, "%s", ovr ? ovr : "");
    const char *ov[8];
    unsigned nov = split_ovr(ob, ov);
    err e;
    if (run_trace(s, path, ov, nov, trace, NULL, &e))
        fail_msg("replay on %s: %s", preset, e.msg);
}

/* FLOPs (SparseCore reduces and scatter-adds), HBM bytes (rows and the pooled vectors' DMA)
 * and ICI bytes (all-to-alls) of the replay equal gen_embedding_count, exactly. */
static void test_embedding_replay_counts_equal_the_analytic_count(void **state)
{
    (void)state;
    static const struct {
        const char *preset, *ovr, *args;
    } cases[] = {
        {"v4", NULL, "--tables 3 --rows 5000 --dim 48 --lookups 7 --batch 300"},
        {"v5p", NULL, "--tables 5 --rows 20000 --dim 64 --lookups 20 --batch 1000 --training"},
        {"v5p", "ici.dims=2x2x2",
         "--tables 26 --rows 9000 --dim 32 --lookups 5 --batch 512 "
         "--chips 8 --training --dtype fp32"},
        {"v6e", NULL, "--tables 4 --rows 100000 --dim 128 --lookups 10 --batch 2048 --training"},
        /* small spmem: 8 chunks per table over 4 slots, each slot reused */
        {"v6e", "sc.spmem_bytes=64KiB",
         "--tables 3 --rows 5000 --dim 64 --lookups 6 --batch 1000 --training"},
        {"v6e", "ici.dims=4,ici.wrap=x",
         "--tables 7 --rows 1000 --dim 100 --lookups 3 --batch 64 --chips 4"},
        {"v7", NULL, "--tables 2 --rows 1000000 --dim 256 --lookups 40 --batch 4096"},
        {"v7", "ici.dims=2x2x2",
         "--tables 9 --rows 50000 --dim 64 --lookups 12 --batch 800 "
         "--chips 8 --training"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gen_opts o;
        cfg c;
        err e;
        if (gen_emb(cases[i].args, cases[i].preset, cases[i].ovr, &o, &c, &e))
            fail_msg("%s on %s: %s", cases[i].args, cases[i].preset, e.msg);
        gen_embedding_counts n;
        gen_embedding_count(&o, &n);
        assert_int_equal(gen_flops_analytic(&o, &c), n.flops);
        run s;
        replay(&s, cases[i].preset, cases[i].ovr);
        if (s.rep.flops != n.flops || s.rep.hbm_bytes != n.hbm_bytes ||
            s.rep.ici_bytes != n.ici_bytes)
            fail_msg("%s on %s: replay flops %llu hbm %llu ici %llu, analytic %llu %llu %llu",
                     cases[i].args, cases[i].preset, (unsigned long long)s.rep.flops,
                     (unsigned long long)s.rep.hbm_bytes, (unsigned long long)s.rep.ici_bytes,
                     (unsigned long long)n.flops, (unsigned long long)n.hbm_bytes,
                     (unsigned long long)n.ici_bytes);
        assert_true(n.flops > 0 && n.hbm_bytes > 0);
        assert_int_equal(s.rep.mxu_flops, 0);
        run_fini(&s);
    }
}

/* Duration of region `name` of a finished run. */
static uint64_t region_ps(const run *s, const char *name)
{
    for (unsigned i = 0; i < s->rep.nregions; i++)
        if (!strcmp(s->rep.regions[i].name, name))
            return s->rep.regions[i].end_ps - s->rep.regions[i].start_ps;
    fail_msg("no region %s", name);
    return 0;
}

/* The all-to-all of the pooled vectors (B = batch x ceil(tables / chips) x dim x 4 bytes per
 * chip) is alone in its region and takes the routed closed form T = H h + max_a L_a t_B:
 * v5p 8-chip ring (wrap x): H = 4 hops, L = B; 2x2x2 torus: H = 3, L = B/4. h = 1 us,
 * links 100 GB/s one way (configs/v5p.yaml). */
static void test_embedding_alltoall_takes_the_ici_closed_form(void **state)
{
    (void)state;
    static const struct {
        const char *ovr;
        double hops, load;
    } topo[] = {{"ici.dims=8,ici.wrap=x", 4, 1.0}, {"ici.dims=2x2x2", 3, 0.25}};
    for (unsigned i = 0; i < 2; i++) {
        char ovr[64];
        snprintf(ovr, sizeof ovr, "%s", topo[i].ovr);
        gen_opts o;
        cfg c;
        err e;
        if (gen_emb("--tables 16 --rows 10000 --dim 64 --lookups 4 --batch 1024 --chips 8 "
                    "--training",
                    "v5p", ovr, &o, &c, &e))
            fail_msg("%s", e.msg);
        double B = 1024.0 * 2 * 64 * 4; /* ceil(16 / 8) = 2 tables per chip */
        double want = topo[i].hops * 1e6 + topo[i].load * B / 100e9 * 1e12;
        run s;
        replay(&s, "v5p", ovr);
        double fwd = (double)region_ps(&s, "embedding/alltoall");
        double bwd = (double)region_ps(&s, "embedding/grad_alltoall");
        if (fwd < want - 2 || fwd > want + 2 || bwd < want - 2 || bwd > want + 2)
            fail_msg("%s: all-to-all %.0f / %.0f ps, closed form %.0f ps", ovr, fwd, bwd, want);
        run_fini(&s);
    }
}

static void test_embedding_errors_name_the_cause(void **state)
{
    (void)state;
    static const struct {
        const char *preset, *ovr, *args, *want;
    } cases[] = {
        {"v5e", NULL, "--tables 2 --rows 100 --dim 64 --lookups 4 --batch 64",
         "TPU v5e has no SparseCores (sc.count = 0)"},
        {"v7", NULL, "--tables 2 --rows 100 --dim 64 --lookups 4 --batch 64 --chips 8",
         "--chips 8 but ici.dims="},
        {"v7", "ici.dims=8,ici.wrap=x",
         "--tables 2 --rows 100 --dim 64 --lookups 4 --batch 100 --chips 8",
         "--batch 100 is not divisible by --chips 8"},
        {"v6e", NULL, "--tables 2 --rows 100 --dim 64 --lookups 4 --batch 64 --dtype int8",
         "tables are bf16 or fp32"},
        {"v4", NULL, "--tables 2 --rows 100 --dim 64 --lookups 4 --batch 10000000", "exceed VMEM"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gen_opts o;
        cfg c;
        err e;
        assert_int_not_equal(gen_emb(cases[i].args, cases[i].preset, cases[i].ovr, &o, &c, &e), 0);
        if (!strstr(e.msg, cases[i].want))
            fail_msg("%s: error '%s' lacks '%s'", cases[i].args, e.msg, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedding_replay_counts_equal_the_analytic_count),
        cmocka_unit_test(test_embedding_alltoall_takes_the_ici_closed_form),
        cmocka_unit_test(test_embedding_errors_name_the_cause),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
