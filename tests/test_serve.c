/* test_serve.c - the serving layer (sim/serve/) on fake step-time functions, where every
 * figure has a closed form: one request alone (TTFT = its prefill step, end-to-end = prefill +
 * (output - 1) decode steps), a stream far below capacity (p50 TTFT = the prefill time),
 * saturation at the batch limit or the KV capacity, chunked prefill, preemption by
 * recomputation, disaggregated serving with a KV transfer; energy (the steps' dynamic energy
 * summed, static power over the whole run, idle gaps included, tokens per joule); percentiles;
 * the PRNG streams; CSV request traces and their one-line errors naming the line. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serve.h"

#include "harness.h"

/* Fake slice: prefill p tokens = PA + PB p seconds, decode of batch b = DA + DB b (context
 * ignored), a mixed step the sum; dynamic energy prefill EPA + EPB p J, decode EDA + EDB b J.
 * Counts its calls and sums the energy it returned. */
#define PA  0.010
#define PB  0.0001
#define DA  0.020
#define DB  0.001
#define EPA 0.5
#define EPB 0.002
#define EDA 3.0
#define EDB 0.25
typedef struct fake {
    unsigned calls;
    double ctx_seen;
    double j; /* energy returned, summed */
} fake;

static double pre_t(double p)
{
    return PA + PB * p;
}
static double dec_t(double b)
{
    return DA + DB * b;
}
static double pre_j(double p)
{
    return EPA + EPB * p;
}
static double dec_j(double b)
{
    return EDA + EDB * b;
}

static double fake_fn(void *ctx, const serve_step *s, double *dyn_j, err *e)
{
    (void)e;
    fake *f = ctx;
    f->calls++;
    f->ctx_seen = s->ctx;
    *dyn_j = (s->prefill ? pre_j(s->prefill) : 0) + (s->decode ? dec_j(s->decode) : 0);
    f->j += *dyn_j;
    return (s->prefill ? pre_t(s->prefill) : 0) + (s->decode ? dec_t(s->decode) : 0);
}

static serve_sched_opts opts(void)
{
    return (serve_sched_opts){
        .max_batch = 64, .max_prefill = 8192, .kv_blocks = 1 << 20, .block_tokens = 16};
}

/* Schedule w under o on the fake step function (decode and mixed steps; pre_fn the prefill
 * slice's, NULL when not disaggregated) into r, which the caller finalises; must succeed. */
static void schedule(const serve_workload *w, const serve_sched_opts *o, fake *f,
                     serve_step_fn pre_fn, serve_result *r)
{
    err e;
    if (serve_schedule(w, o, fake_fn, f, pre_fn, NULL, r, &e))
        fail_msg("serve_schedule: %s", e.msg);
}

static void one(serve_workload *w, double arrival, uint32_t prompt, uint32_t output)
{
    w->req = calloc(1, sizeof *w->req);
    w->req[0] = (serve_req){arrival, prompt, output};
    w->n = 1;
}

static void test_serve_one_request_ttft_is_its_prefill_and_e2e_adds_decodes(void **state)
{
    (void)state;
    serve_workload w;
    one(&w, 2.0, 300, 50);
    serve_sched_opts o = opts();
    serve_result r;
    fake f = {0};
    err e;
    schedule(&w, &o, &f, NULL, &r);
    double ttft = r.rec[0].first_token_s - r.rec[0].arrival_s;
    double e2e = r.rec[0].done_s - r.rec[0].arrival_s;
    assert_true(fabs(ttft - pre_t(300)) < 1e-12);
    assert_true(fabs(e2e - (pre_t(300) + 49 * dec_t(1))) < 1e-9);
    assert_int_equal(f.calls, 50);              /* one prefill step, 49 decode steps */
    assert_true(fabs(f.ctx_seen - 349) < 1e-9); /* the last decode attends to 300 + 49 */
    assert_int_equal(r.prefill_steps, 1);
    assert_int_equal(r.decode_steps, 49);
    serve_summary s;
    assert_int_equal(serve_summarise(&s, &r, 4, 2.0, 0, 0, 0, &e), 0);
    assert_true(fabs(s.tpot.p50 - dec_t(1)) < 1e-9);
    assert_true(fabs(s.tokens_per_s_chip - 50 / e2e / 4) < 1e-9);
    /* cost: 4 chips x $2/h over the run, per million output tokens */
    assert_true(fabs(s.usd_per_mtok - 4 * 2.0 * (e2e / 3600) / (50 / 1e6)) < 1e-6);
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

static void test_serve_single_output_token_finishes_at_prefill(void **state)
{
    (void)state;
    serve_workload w;
    one(&w, 0, 64, 1);
    serve_sched_opts o = opts();
    serve_result r;
    fake f = {0};
    schedule(&w, &o, &f, NULL, &r);
    assert_true(fabs(r.rec[0].done_s - pre_t(64)) < 1e-12);
    assert_int_equal(f.calls, 1);
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

static void test_serve_low_rate_p50_ttft_is_the_prefill_time(void **state)
{
    (void)state;
    serve_workload w;
    serve_len p = {SERVE_LEN_FIXED, 256, 0}, q = {SERVE_LEN_FIXED, 20, 0};
    err e;
    /* 0.05 req/s: a request takes pre + 19 dec = 0.43 s, gaps average 20 s */
    assert_int_equal(serve_workload_poisson(&w, 0.05, 400, &p, &q, 7, &e), 0);
    serve_sched_opts o = opts();
    serve_result r;
    fake f = {0};
    schedule(&w, &o, &f, NULL, &r);
    serve_summary s;
    assert_int_equal(serve_summarise(&s, &r, 1, 0, 0, 0, 0, &e), 0);
    assert_true(fabs(s.ttft.p50 - pre_t(256)) < 1e-12);
    assert_true(fabs(s.e2e.p50 - (pre_t(256) + 19 * dec_t(1))) < 1e-9);
    assert_true(s.usd_per_mtok == 0); /* no price */
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

/* Every request arrives at 0: decode steps run at the batch limit (or as many as the KV cache
 * holds), so the output rate approaches batch / dec(batch). */
static void saturate(unsigned max_batch, uint64_t kv_blocks, uint32_t prompt, uint32_t output,
                     double *rate, unsigned *max_seen, uint64_t *preempt)
{
    serve_workload w = {calloc(256, sizeof(serve_req)), 256};
    for (size_t i = 0; i < w.n; i++)
        w.req[i] = (serve_req){0, prompt, output};
    serve_sched_opts o = opts();
    o.max_batch = max_batch;
    o.kv_blocks = kv_blocks;
    serve_result r;
    fake f = {0};
    err e;
    schedule(&w, &o, &f, NULL, &r);
    serve_summary s;
    assert_int_equal(serve_summarise(&s, &r, 1, 0, 0, 0, 0, &e), 0);
    *rate = s.tokens_per_s;
    *max_seen = r.max_batch_seen;
    *preempt = r.preemptions;
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

static void test_serve_saturates_at_the_batch_limit(void **state)
{
    (void)state;
    double rate;
    unsigned seen;
    uint64_t pre;
    saturate(32, 1 << 20, 16, 400, &rate, &seen, &pre);
    double bound = 32 / dec_t(32);
    assert_true(rate <= bound * 1.0001);
    assert_true(rate > 0.97 * bound);
    assert_int_equal(seen, 32);
    assert_int_equal(pre, 0);
}

static void test_serve_saturates_at_the_kv_capacity(void **state)
{
    (void)state;
    /* 400 + 16 tokens: 25 blocks of 16 at admission, 26 at the end. The cache holds n x 26
     * blocks: exactly n requests run at once, never more, with no preemption, whatever the
     * batch limit of 64 allows. */
    for (unsigned n = 7; n <= 9; n++) {
        double rate;
        unsigned seen;
        uint64_t pre;
        saturate(64, n * 26, 400, 16, &rate, &seen, &pre);
        assert_int_equal(seen, n);
        assert_int_equal(pre, 0);
        assert_true(rate <= n / dec_t(n) * 1.0001);
    }
}

static void test_serve_preemption_recomputes_and_everything_finishes(void **state)
{
    (void)state;
    /* admission reserves only the prompt's blocks; growth then runs the cache out */
    serve_workload w = {calloc(40, sizeof(serve_req)), 40};
    for (size_t i = 0; i < w.n; i++)
        w.req[i] = (serve_req){0.001 * (double)i, 64, 200};
    serve_sched_opts o = opts();
    o.kv_blocks = 60; /* 4 + 13 blocks per finished request: 3 fit, 15 prompts do */
    serve_result r;
    fake f = {0};
    schedule(&w, &o, &f, NULL, &r);
    assert_true(r.preemptions > 0);
    assert_true(r.max_kv_occupancy <= 1.0);
    for (size_t i = 0; i < w.n; i++) {
        assert_true(r.rec[i].done_s > r.rec[i].first_token_s);
        assert_true(r.rec[i].first_token_s > r.rec[i].arrival_s);
    }
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

static void test_serve_request_larger_than_the_cache_is_an_error(void **state)
{
    (void)state;
    serve_workload w;
    one(&w, 0, 1000, 1000);
    serve_sched_opts o = opts();
    o.kv_blocks = 100;
    serve_result r;
    fake f = {0};
    err e;
    assert_int_not_equal(serve_schedule(&w, &o, fake_fn, &f, NULL, NULL, &r, &e), 0);
    assert_non_null(strstr(e.msg, "request 1"));
    assert_non_null(strstr(e.msg, "125 KV blocks"));
    serve_workload_fini(&w);
}

static void test_serve_chunked_prefill_splits_a_prompt_by_the_budget(void **state)
{
    (void)state;
    serve_workload w;
    one(&w, 0, 200, 3);
    serve_sched_opts o = opts();
    o.token_budget = 64;
    serve_result r;
    fake f = {0};
    schedule(&w, &o, &f, NULL, &r);
    /* 64 + 64 + 64 + 8 tokens: four steps before the first token */
    double ttft = 3 * pre_t(64) + pre_t(8);
    assert_true(fabs(r.rec[0].first_token_s - ttft) < 1e-12);
    assert_true(fabs(r.rec[0].done_s - (ttft + 2 * dec_t(1))) < 1e-12);
    assert_int_equal(r.prefill_steps, 4);
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

static void test_serve_chunked_prefill_mixes_with_decode(void **state)
{
    (void)state;
    serve_workload w = {calloc(2, sizeof(serve_req)), 2};
    w.req[0] = (serve_req){0, 32, 100};
    w.req[1] = (serve_req){0.5, 32, 10};
    serve_sched_opts o = opts();
    o.token_budget = 256;
    serve_result r;
    fake f = {0};
    schedule(&w, &o, &f, NULL, &r);
    assert_true(r.mixed_steps >= 1); /* the second prompt rides along a decode step */
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

static double pre_only(void *ctx, const serve_step *s, double *dyn_j, err *e)
{
    (void)ctx;
    (void)e;
    *dyn_j = 3 * pre_j(s->prefill);
    return s->decode ? -1 : 2 * pre_t(s->prefill); /* a slower prefill slice */
}

static void test_serve_disaggregated_adds_the_kv_transfer(void **state)
{
    (void)state;
    serve_workload w;
    one(&w, 1.0, 1000, 11);
    serve_sched_opts o = opts();
    o.disaggregated = 1;
    o.kv_bytes_per_token = 1e5;
    o.kv_transfer_bps = 1e9;
    o.kv_transfer_latency_s = 1e-6;
    serve_result r;
    fake f = {0};
    schedule(&w, &o, &f, pre_only, &r);
    double ttft = 2 * pre_t(1000), xfer = 1e-6 + 1000 * 1e5 / 1e9;
    assert_true(fabs(r.rec[0].first_token_s - 1.0 - ttft) < 1e-12);
    assert_true(fabs(r.rec[0].done_s - 1.0 - (ttft + xfer + 10 * dec_t(1))) < 1e-9);
    assert_int_equal(r.decode_steps, 10);
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

/* ---- energy ------------------------------------------------------------------------------- */

#define STATIC_W 90.0

static void close_to(double x, double want)
{
    if (!(fabs(x - want) <= 1e-9 * fabs(want) + 1e-12))
        fail_msg("%.17g, expected %.17g", x, want);
}

static void test_serve_energy_of_one_request_is_its_steps_plus_static_over_the_run(void **state)
{
    (void)state;
    serve_workload w;
    one(&w, 2.0, 300, 50);
    serve_sched_opts o = opts();
    serve_result r;
    fake f = {0};
    err e;
    schedule(&w, &o, &f, NULL, &r);
    serve_summary s;
    assert_int_equal(serve_summarise(&s, &r, 4, 0, STATIC_W, 0, 0, &e), 0);
    /* one prefill step, 49 decode steps at batch 1; 4 chips powered from arrival to the end */
    double dyn = pre_j(300) + 49 * dec_j(1), span = pre_t(300) + 49 * dec_t(1);
    close_to(r.makespan_s, span);
    close_to(r.dyn_j, f.j);
    close_to(s.dynamic_j, dyn);
    close_to(s.static_j, STATIC_W * 4 * span);
    close_to(s.energy_j, dyn + STATIC_W * 4 * span);
    close_to(s.avg_w, s.energy_j / span);
    close_to(s.avg_w_chip, s.energy_j / span / 4);
    close_to(s.tokens_per_j, 50 / s.energy_j); /* output tokens, the first included */
    close_to(s.j_per_token, s.energy_j / 50);
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

/* Two requests apart: the first finishes before the second arrives. */
static void two_apart(double gap, serve_summary *s, serve_result *r)
{
    serve_workload w = {calloc(2, sizeof(serve_req)), 2};
    w.req[0] = (serve_req){0.25, 128, 20};
    w.req[1] = (serve_req){0.25 + gap, 128, 20};
    serve_sched_opts o = opts();
    fake f = {0};
    err e;
    schedule(&w, &o, &f, NULL, r);
    assert_int_equal(serve_summarise(s, r, 0.5, 0, STATIC_W, 0, 0, &e), 0);
    serve_workload_fini(&w);
}

static void test_serve_idle_stretch_adds_exactly_static_power_times_its_length(void **state)
{
    (void)state;
    serve_summary a, b;
    serve_result ra, rb;
    two_apart(10, &a, &ra);
    two_apart(110, &b, &rb);
    /* same steps, 100 s more idle between them: 100 s of static power on half a chip */
    double one = pre_t(128) + 19 * dec_t(1);
    close_to(ra.makespan_s, 10 + one);
    close_to(b.dynamic_j, a.dynamic_j);
    close_to(a.dynamic_j, 2 * (pre_j(128) + 19 * dec_j(1)));
    close_to(b.energy_j - a.energy_j, STATIC_W * 0.5 * 100);
    close_to(b.tokens_per_j, 40 / b.energy_j);
    assert_true(b.tokens_per_j < a.tokens_per_j);
    /* a whole run of idle power: the static part is static_w x chips x makespan */
    close_to(a.static_j, STATIC_W * 0.5 * (10 + one));
    serve_result_fini(&ra);
    serve_result_fini(&rb);
}

static void test_serve_energy_of_mixed_steps_is_what_the_step_function_returns(void **state)
{
    (void)state;
    /* chunked prefill with decode riding along: every step's energy is summed once */
    serve_workload w = {calloc(30, sizeof(serve_req)), 30};
    for (size_t i = 0; i < w.n; i++)
        w.req[i] = (serve_req){0.01 * (double)i, 300, 40};
    serve_sched_opts o = opts();
    o.token_budget = 128;
    serve_result r;
    fake f = {0};
    err e;
    schedule(&w, &o, &f, NULL, &r);
    assert_true(r.mixed_steps > 0);
    assert_int_equal(f.calls, r.steps);
    close_to(r.dyn_j, f.j);
    serve_summary s;
    assert_int_equal(serve_summarise(&s, &r, 2, 0, STATIC_W, 0, 0, &e), 0);
    close_to(s.energy_j, f.j + STATIC_W * 2 * r.makespan_s);
    close_to(s.tokens_per_j, 30 * 40 / s.energy_j);
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

static void test_serve_disaggregated_energy_adds_the_prefill_slice_and_the_transfer(void **state)
{
    (void)state;
    serve_workload w;
    one(&w, 1.0, 1000, 11);
    serve_sched_opts o = opts();
    o.disaggregated = 1;
    o.kv_bytes_per_token = 1e5;
    o.kv_transfer_bps = 1e9;
    o.kv_transfer_latency_s = 1e-6;
    o.kv_transfer_j_per_byte = 8 * 5e-12; /* 5 pJ/bit */
    serve_result r;
    fake f = {0};
    err e;
    schedule(&w, &o, &f, pre_only, &r);
    close_to(r.prefill_dyn_j, 3 * pre_j(1000));
    close_to(r.dyn_j, 10 * dec_j(1));
    close_to(r.xfer_dyn_j, 1000 * 1e5 * 8 * 5e-12);
    serve_summary s;
    /* 1 + 1 chips, both powered for the whole run */
    assert_int_equal(serve_summarise(&s, &r, 2, 0, STATIC_W, 0, 0, &e), 0);
    close_to(s.energy_j, 3 * pre_j(1000) + 10 * dec_j(1) + 1000 * 1e5 * 8 * 5e-12 +
                             STATIC_W * 2 * r.makespan_s);
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

static void test_serve_percentiles_interpolate_between_ranks(void **state)
{
    (void)state;
    double v[] = {5, 1, 4, 2, 3};
    serve_dist d;
    serve_dist_of(&d, v, 5);
    assert_true(fabs(d.mean - 3) < 1e-12);
    assert_true(fabs(d.p50 - 3) < 1e-12);
    assert_true(fabs(d.p90 - 4.6) < 1e-12);
    assert_true(fabs(d.p99 - 4.96) < 1e-12);
    assert_true(d.max == 5);
    double one_v = 7;
    assert_true(serve_percentile(&one_v, 1, 99) == 7);
    assert_true(serve_percentile(NULL, 0, 50) == 0);
}

static void test_serve_poisson_stream_is_seeded_and_has_its_rate(void **state)
{
    (void)state;
    serve_len p, q;
    err e;
    assert_int_equal(serve_len_parse(&p, "lognormal:500:200", "--prompt", &e), 0);
    assert_int_equal(serve_len_parse(&q, "uniform:10:30", "--output", &e), 0);
    serve_workload a, b, c;
    assert_int_equal(serve_workload_poisson(&a, 4.0, 20000, &p, &q, 42, &e), 0);
    assert_int_equal(serve_workload_poisson(&b, 4.0, 20000, &p, &q, 42, &e), 0);
    assert_int_equal(serve_workload_poisson(&c, 4.0, 20000, &p, &q, 43, &e), 0);
    assert_memory_equal(a.req, b.req, a.n * sizeof *a.req);
    assert_memory_not_equal(a.req, c.req, a.n * sizeof *a.req);
    double mean_gap = a.req[a.n - 1].arrival_s / (double)a.n, pm = 0;
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i = 0; i < a.n; i++) {
        pm += a.req[i].prompt;
        lo = a.req[i].output < lo ? a.req[i].output : lo;
        hi = a.req[i].output > hi ? a.req[i].output : hi;
    }
    assert_true(fabs(mean_gap - 0.25) < 0.25 * 0.03);
    assert_true(fabs(pm / (double)a.n - 500) < 500 * 0.03);
    assert_int_equal(lo, 10);
    assert_int_equal(hi, 30);
    serve_workload_fini(&a);
    serve_workload_fini(&b);
    serve_workload_fini(&c);
}

static void test_serve_length_option_errors(void **state)
{
    (void)state;
    serve_len l;
    err e;
    assert_int_not_equal(serve_len_parse(&l, "0", "--prompt", &e), 0);
    assert_non_null(strstr(e.msg, "--prompt 0"));
    assert_int_not_equal(serve_len_parse(&l, "uniform:9:3", "--output", &e), 0);
    assert_non_null(strstr(e.msg, "LO <= HI"));
    assert_int_not_equal(serve_len_parse(&l, "normal:3:4", "--output", &e), 0);
    assert_int_not_equal(serve_len_parse(&l, "lognormal:100", "--output", &e), 0);
    assert_int_equal(serve_len_parse(&l, "128", "--output", &e), 0);
    assert_true(l.kind == SERVE_LEN_FIXED && l.a == 128);
}

static int write_file(const char *name, const char *text, char *path, size_t cap)
{
    harness_path(name, path, cap);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void csv_error(const char *text, const char *want)
{
    char path[512];
    assert_int_equal(write_file("bad.csv", text, path, sizeof path), 0);
    serve_workload w;
    err e;
    assert_int_not_equal(serve_workload_csv(&w, path, 0, &e), 0);
    if (!strstr(e.msg, want))
        fail_msg("error '%s' does not contain '%s'", e.msg, want);
    assert_null(strchr(e.msg, '\n'));
    assert_null(w.req);
}

static void test_serve_csv_errors_name_the_line(void **state)
{
    (void)state;
    csv_error("arrival_s,prompt_tokens\n0,1\n", "bad.csv:1: header has no column 'output_tokens'");
    csv_error("arrival_s,prompt_tokens,output_tokens\n0,10,5\n0.5,-3,5\n",
              "bad.csv:3: column prompt_tokens: negative value -3");
    csv_error("arrival_s,prompt_tokens,output_tokens\n0,10,5\n2,10,5\n# c\n1,10,5\n",
              "bad.csv:5: arrival_s 1 is before the previous request's 2");
    csv_error("arrival_s,prompt_tokens,output_tokens\n0,ten,5\n",
              "bad.csv:2: column prompt_tokens: expected a number, got 'ten'");
    csv_error("arrival_s,prompt_tokens,output_tokens\n0,10\n",
              "bad.csv:2: 2 columns, the header has 3");
    csv_error("arrival_s,prompt_tokens,output_tokens\n0,10,0\n", "bad.csv:2: column output_tokens");
    csv_error("arrival_s,prompt_tokens,output_tokens\n0,1.5,3\n",
              "bad.csv:2: column prompt_tokens");
    csv_error("", "bad.csv:0: empty file");
    csv_error("arrival_s,prompt_tokens,output_tokens\n", "no requests");
}

static void test_serve_csv_reads_columns_in_any_order(void **state)
{
    (void)state;
    char path[512];
    assert_int_equal(write_file("ok.csv",
                                "output_tokens,user,arrival_s,prompt_tokens\r\n"
                                "5,a,0,100\r\n\r\n7,b,0.25,200\r\n9,c,0.25,300\r\n",
                                path, sizeof path),
                     0);
    serve_workload w;
    err e;
    assert_int_equal(serve_workload_csv(&w, path, 0, &e), 0);
    assert_int_equal(w.n, 3);
    assert_true(w.req[1].arrival_s == 0.25 && w.req[1].prompt == 200 && w.req[1].output == 7);
    serve_workload_fini(&w);
    assert_int_equal(serve_workload_csv(&w, path, 2, &e), 0);
    assert_int_equal(w.n, 2);
    serve_workload_fini(&w);
}

static void test_serve_per_request_csv_round_trips(void **state)
{
    (void)state;
    serve_workload w;
    one(&w, 0, 300, 50);
    serve_sched_opts o = opts();
    serve_result r;
    fake f = {0};
    err e;
    schedule(&w, &o, &f, NULL, &r);
    char path[512], line[256];
    harness_path("req.csv", path, sizeof path);
    assert_int_equal(serve_write_csv(&r, path, &e), 0);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    assert_string_equal(line,
                        "arrival_s,prompt_tokens,output_tokens,ttft_s,tpot_s,e2e_s,preemptions\n");
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    double a, ttft, tpot, e2e;
    unsigned p, q, pre;
    assert_int_equal(sscanf(line, "%lf,%u,%u,%lf,%lf,%lf,%u", &a, &p, &q, &ttft, &tpot, &e2e, &pre),
                     7);
    assert_true(fabs(ttft - pre_t(300)) < 1e-9 && fabs(tpot - dec_t(1)) < 1e-9);
    serve_result_fini(&r);
    serve_workload_fini(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_one_request_ttft_is_its_prefill_and_e2e_adds_decodes),
        cmocka_unit_test(test_serve_single_output_token_finishes_at_prefill),
        cmocka_unit_test(test_serve_low_rate_p50_ttft_is_the_prefill_time),
        cmocka_unit_test(test_serve_saturates_at_the_batch_limit),
        cmocka_unit_test(test_serve_saturates_at_the_kv_capacity),
        cmocka_unit_test(test_serve_preemption_recomputes_and_everything_finishes),
        cmocka_unit_test(test_serve_request_larger_than_the_cache_is_an_error),
        cmocka_unit_test(test_serve_chunked_prefill_splits_a_prompt_by_the_budget),
        cmocka_unit_test(test_serve_chunked_prefill_mixes_with_decode),
        cmocka_unit_test(test_serve_disaggregated_adds_the_kv_transfer),
        cmocka_unit_test(test_serve_energy_of_one_request_is_its_steps_plus_static_over_the_run),
        cmocka_unit_test(test_serve_idle_stretch_adds_exactly_static_power_times_its_length),
        cmocka_unit_test(test_serve_energy_of_mixed_steps_is_what_the_step_function_returns),
        cmocka_unit_test(test_serve_disaggregated_energy_adds_the_prefill_slice_and_the_transfer),
        cmocka_unit_test(test_serve_percentiles_interpolate_between_ranks),
        cmocka_unit_test(test_serve_poisson_stream_is_seeded_and_has_its_rate),
        cmocka_unit_test(test_serve_length_option_errors),
        cmocka_unit_test(test_serve_csv_errors_name_the_line),
        cmocka_unit_test(test_serve_csv_reads_columns_in_any_order),
        cmocka_unit_test(test_serve_per_request_csv_round_trips),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
