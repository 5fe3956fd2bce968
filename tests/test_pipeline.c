/* test_pipeline.c - pipeline parallelism of llm-step (gen_pipeline.c): per-stage traces whose
 * MXU FLOPs equal the analytic per-stage count, the analytic bubble (P-1)/(M+P-1), 1F1B's
 * peak activation memory below GPipe's, and a full-mode pod run of every stage whose chips
 * wait for each other (no deadlock), and symmetric mode's stages alone, each faster than the
 * pipeline. The 4 x 8 bubble against 3/11 at a realistic size is
 * tests/e2e_pipeline.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gen.h"
#include "pod.h"

static char dir[] = "/tmp/tpusim_pipeXXXXXX";

static void opts(gen_opts *o, int sched, char *out)
{
    gen_opts_init(o, GEN_LLM_STEP);
    o->sizes[0] = 4;
    o->nsizes = 1;
    o->d_model = 256;
    o->heads = 4;
    o->d_ff = 1024;
    o->vocab = 512;
    o->seq = 128;
    o->batch = 8;
    o->pipeline = 4;
    o->microbatches = 8;
    o->schedule = sched;
    o->output = out;
}

static void load(cfg *c)
{
    err e;
    assert_int_equal(cfg_load(c, "v5p", NULL, &e), 0);
    assert_int_equal(cfg_set(c, "ici.dims", "1x1x4", "test", &e), 0);
    assert_int_equal(cfg_check(c, &e), 0);
}

static void test_pipeline_bubble_closed_form(void **state)
{
    (void)state;
    gen_opts o;
    opts(&o, GEN_SCHED_GPIPE, NULL);
    assert_true(gen_pipeline_bubble(&o) > 3.0 / 11 - 1e-12);
    assert_true(gen_pipeline_bubble(&o) < 3.0 / 11 + 1e-12);
    o.microbatches = 1;
    assert_true(gen_pipeline_bubble(&o) > 0.75 - 1e-12);
}

static void test_pipeline_stage_flops_equal_analytic(void **state)
{
    (void)state;
    cfg c;
    load(&c);
    char tmpl[256], path[256];
    snprintf(tmpl, sizeof tmpl, "%s/s{stage}.tpt", dir);
    gen_opts o;
    opts(&o, GEN_SCHED_1F1B, tmpl);
    err e;
    gen_result r;
    if (gen_run_result(&o, &c, "test", &r, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(r.stages, 4);
    assert_int_equal(gen_check(&o, &c, &e), 0);
    for (unsigned s = 0; s < 4; s++) {
        snprintf(path, sizeof path, "%s/s%u.tpt", dir, s);
        uint64_t f;
        assert_int_equal(gen_trace_flops(path, &f, &e), 0);
        o.stage = s;
        assert_int_equal(f, gen_flops_analytic(&o, &c));
    }
}

/* The stages together do the unpipelined step's work: layers split, the LM head once. */
static void test_pipeline_stage_model_flops_sum_to_the_whole_step(void **state)
{
    (void)state;
    cfg c;
    load(&c);
    gen_opts o, whole;
    err e;
    opts(&o, GEN_SCHED_GPIPE, "x{stage}.tpt");
    assert_int_equal(gen_check(&o, &c, &e), 0);
    whole = o;
    whole.pipeline = 1;
    uint64_t sum = 0, xsum = 0;
    for (unsigned s = 0; s < 4; s++) {
        o.stage = s;
        sum += gen_flops_model(&o, &c);
        xsum += gen_flops_analytic(&o, &c);
    }
    assert_true(sum > 0);
    assert_int_equal(sum, gen_flops_model(&whole, &c));
    assert_int_equal(xsum, gen_flops_analytic(&whole, &c));
}

static void test_pipeline_1f1b_peak_below_gpipe(void **state)
{
    (void)state;
    cfg c;
    load(&c);
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "%s/m{stage}.tpt", dir);
    gen_opts o;
    gen_result g, f;
    err e;
    opts(&o, GEN_SCHED_GPIPE, tmpl);
    assert_int_equal(gen_run_result(&o, &c, "test", &g, &e), 0);
    opts(&o, GEN_SCHED_1F1B, tmpl);
    assert_int_equal(gen_run_result(&o, &c, "test", &f, &e), 0);
    /* stage 0 keeps all 8 microbatches' activations in GPipe, at most 4 in 1F1B */
    assert_true(f.stage_peak[0] < g.stage_peak[0]);
    assert_true(f.peak_hbm_bytes < g.peak_hbm_bytes);
}

static void test_pipeline_full_pod_runs_every_stage(void **state)
{
    (void)state;
    cfg c;
    load(&c);
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "%s/c{chip}.tpt", dir);
    gen_opts o;
    err e;
    opts(&o, GEN_SCHED_GPIPE, tmpl);
    assert_int_equal(gen_run_result(&o, &c, "test", NULL, &e), 0);
    pod_result *r = malloc(sizeof *r);
    assert_non_null(r);
    if (pod_estimate(&c, tmpl, "1x1x4", ICI_MODE_FULL, r, &e))
        fail_msg("%s", e.msg);
    assert_true(r->wait_frac > 0.05 && r->wait_frac < 0.95);
    assert_true(r->wait_frac_max >= r->wait_frac_min);
    uint64_t full = r->step_ps;
    /* symmetric mode: every stage alone (no bubble), each step shorter than the pipeline's */
    char st[256];
    snprintf(st, sizeof st, "%s/st{stage}.tpt", dir);
    o.output = st;
    assert_int_equal(gen_run_result(&o, &c, "test", NULL, &e), 0);
    if (pod_estimate_traces(&c, (const char *const[]){st}, 1, "1x1x4", ICI_MODE_SYMMETRIC, r, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(r->stages, 4);
    for (unsigned s = 0; s < 4; s++)
        assert_true(r->stage_step_ps[s] > 0 && r->stage_step_ps[s] <= r->step_ps);
    assert_true(r->step_ps < full);
    free(r);
}

static void test_pipeline_rejects_bad_options(void **state)
{
    (void)state;
    cfg c;
    load(&c);
    gen_opts o;
    err e;
    opts(&o, GEN_SCHED_GPIPE, "x{stage}.tpt");
    o.sizes[0] = 6; /* not a multiple of 4 stages */
    assert_int_equal(gen_check(&o, &c, &e), -1);
    opts(&o, GEN_SCHED_GPIPE, "x{stage}.tpt");
    o.pipeline = 2; /* the z axis has 4 chips */
    assert_int_equal(gen_check(&o, &c, &e), -1);
    opts(&o, GEN_SCHED_GPIPE, "x.tpt"); /* no {stage} or {chip} */
    assert_int_equal(gen_run(&o, &c, "test", &e), -1);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_bubble_closed_form),
        cmocka_unit_test(test_pipeline_stage_flops_equal_analytic),
        cmocka_unit_test(test_pipeline_stage_model_flops_sum_to_the_whole_step),
        cmocka_unit_test(test_pipeline_1f1b_peak_below_gpipe),
        cmocka_unit_test(test_pipeline_full_pod_runs_every_stage),
        cmocka_unit_test(test_pipeline_rejects_bad_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
