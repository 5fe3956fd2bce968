/* test_gen.c - workload generators: trace FLOPs equal the analytic formulas, every trace is
 * well formed for its config (semaphores balanced and never awaited before signalled, VMEM
 * ranges inside VMEM, tiles inside the array, markers per layer, the command line as note),
 * the GEMM tiling fits VMEM, and the CLI's error paths. */
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

#include "cli.h"
#include "gen.h"
#include "tmpleft.h"
#include "lower.h"

#define MAX_ARGS 64

static char out_path[256];

/* Split a command line (after "tpusim") into argv and run cli_gen. */
static int run_gen(const char *cmd, err *e)
{
    static char buf[1024];
    char *argv[MAX_ARGS];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", cmd);
    for (char *s = NULL, *t = strtok_r(buf, " ", &s); t && argc < MAX_ARGS;
         t = strtok_r(NULL, " ", &s))
        argv[argc++] = t;
    return cli_gen(argc, argv, e);
}

/* Parse the same command line into options and the config (for analytic FLOPs). */
static void parse_cmd(const char *cmd, gen_opts *o, cfg *c)
{
    static char buf[1024];
    char *argv[MAX_ARGS];
    int argc = 0, help;
    err e;
    snprintf(buf, sizeof buf, "%s", cmd);
    for (char *s = NULL, *t = strtok_r(buf, " ", &s); t && argc < MAX_ARGS;
         t = strtok_r(NULL, " ", &s))
        argv[argc++] = t;
    cfg_defaults(c);
    int rc = cli_gen_parse(argc, argv, o, c, &help, &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(rc, 0);
}

typedef struct trace_facts {
    uint64_t insns, matmuls, ldws, waits, signals;
    uint64_t coll[ISA_OP_COUNT];
    uint64_t coll_bytes[ISA_OP_COUNT];
    unsigned coll_axes[ISA_OP_COUNT]; /* union of the axis masks each collective used */
    uint64_t flops;                   /* sum of 2 m k n over the matmuls */
    uint64_t dcn_chained;             /* dcn.allreduce waiting on a semaphore (a chain) */
    char marks[16384];
    char note[TRACE_NOTE_MAX];
} trace_facts;

/* Read a trace back and assert the invariants every generated trace must hold on c. */
static void check_trace(const char *path, const cfg *c, trace_facts *f)
{
    memset(f, 0, sizeof *f);
    trace_reader *r;
    err e;
    assert_int_equal(trace_reader_open(&r, path, &e), 0);
    snprintf(f->note, sizeof f->note, "%s", trace_reader_header(r)->note);
    static int64_t sem[ISA_SEM_MAX];
    memset(sem, 0, sizeof sem);
    /* per semaphore: the unit classes of the instructions that signal it, and whether a
     * dcn.allreduce waits on it (a chain: only ICI collectives may signal those) */
    static unsigned sig_units[ISA_SEM_MAX];
    static int dcn_waits[ISA_SEM_MAX];
    memset(sig_units, 0, sizeof sig_units);
    memset(dcn_waits, 0, sizeof dcn_waits);
    uint32_t k[256] = {0}, n[256] = {0}, dtl[256] = {0};
    int loaded[256] = {0};
    uint64_t vmem = (uint64_t)cfg_vmem_total_bytes(c);
    unsigned nmxu = cfg_mxu_total(c);
    isa_insn in;
    int rc;
    while ((rc = trace_reader_next(r, &in, &e)) == 1) {
        f->insns++;
        const uint64_t *a = in.arg;
        /* Dispatch-order balance: a wait may only consume a signal of an earlier insn. */
        if (in.wait) {
            f->waits++;
            sem[in.wait - 1]--;
            if (sem[in.wait - 1] < 0)
                fail_msg("instruction %llu waits on semaphore %u before any signal",
                         (unsigned long long)f->insns - 1, in.wait - 1);
        }
        if (in.signal) {
            f->signals++;
            sem[in.signal - 1]++;
            sig_units[in.signal - 1] |= 1u << isa_info_of(in.op)->unit;
        }
        if (in.wait && in.op == ISA_OP_DCN_ALLREDUCE)
            dcn_waits[in.wait - 1] = 1;
        switch (in.op) {
        case ISA_OP_DMA_H2V:
        case ISA_OP_DMA_V2H:
            assert_true(a[ISA_DMA_VMEM] + a[ISA_DMA_BYTES] <= vmem);
            assert_true(a[ISA_DMA_HBM] + a[ISA_DMA_BYTES] <= c->hbm_bytes);
            break;
        case ISA_OP_MXU_LDW: {
            unsigned m = (unsigned)a[ISA_LDW_MXU];
            assert_true(m < nmxu);
            assert_true(a[ISA_LDW_K] <= c->mxu_rows);
            assert_true(a[ISA_LDW_N] <= c->mxu_cols);
            assert_true(a[ISA_LDW_VMEM] + isa_dtype_bytes((isa_dtype)a[ISA_LDW_DTYPE],
                                                          a[ISA_LDW_K] * a[ISA_LDW_N]) <=
                        vmem);
            k[m] = (uint32_t)a[ISA_LDW_K];
            n[m] = (uint32_t)a[ISA_LDW_N];
            dtl[m] = (uint32_t)a[ISA_LDW_DTYPE];
            loaded[m] = 1;
            f->ldws++;
            break;
        }
        case ISA_OP_MXU_MATMUL: {
            unsigned m = (unsigned)a[ISA_MM_MXU];
            assert_true(m < nmxu);
            assert_true(loaded[m]);
            assert_int_equal(a[ISA_MM_DTYPE], dtl[m]);
            assert_true(a[ISA_MM_SRC] + isa_dtype_bytes((isa_dtype)dtl[m], a[ISA_MM_M] * k[m]) <=
                        vmem);
            assert_true(a[ISA_MM_DST] + a[ISA_MM_M] * n[m] * 4 <= vmem);
            f->matmuls++;
            f->flops += 2 * a[ISA_MM_M] * k[m] * n[m];
            break;
        }
        case ISA_OP_MARK:
            if (strlen(f->marks) + strlen(in.name) + 2 < sizeof f->marks) {
                strcat(f->marks, in.name);
                strcat(f->marks, "|");
            }
            break;
        default:
            if (isa_info_of(in.op)->unit == ISA_UNIT_VPU) {
                unsigned dt = (unsigned)a[ISA_V_DTYPE], odt = dt;
                uint64_t cnt = a[ISA_V_N], out = cnt;
                if (in.op == ISA_OP_V_CAST)
                    odt = (unsigned)a[ISA_V_EXTRA];
                if (in.op == ISA_OP_V_REDUCE)
                    out = (cnt + (a[ISA_V_EXTRA] ? a[ISA_V_EXTRA] : c->vpu_lanes) - 1) /
                          (a[ISA_V_EXTRA] ? a[ISA_V_EXTRA] : c->vpu_lanes);
                assert_true(a[ISA_V_SRC] + isa_dtype_bytes((isa_dtype)dt, cnt) <= vmem);
                assert_true(a[ISA_V_DST] + isa_dtype_bytes((isa_dtype)odt, out) <= vmem);
            } else if (isa_info_of(in.op)->unit == ISA_UNIT_DCN) {
                f->coll[in.op]++;
                f->coll_bytes[in.op] += a[ISA_DCN_BYTES];
                f->dcn_chained += in.wait != 0;
            } else if (isa_info_of(in.op)->unit == ISA_UNIT_ICI) {
                f->coll[in.op]++;
                f->coll_bytes[in.op] += a[ISA_COLL_BYTES];
                f->coll_axes[in.op] |= (unsigned)a[ISA_COLL_AXES];
            }
            break;
        }
    }
    assert_int_equal(rc, 0);
    for (int s = 0; s < ISA_SEM_MAX; s++) {
        if (sem[s] != 0)
            fail_msg("semaphore %d: %lld more signals than waits", s, (long long)sem[s]);
        if (dcn_waits[s] && sig_units[s] != 1u << ISA_UNIT_ICI)
            fail_msg("semaphore %d: a dcn.allreduce waits on it, but not only ICI signals it "
                     "(unit classes 0x%x)",
                     s, sig_units[s]);
    }
    assert_int_equal(f->waits, f->signals);
    trace_reader_free(r);
}

/* Generate `cmd` (with -o added), check it, and compare trace and analytic FLOPs. */
static void gen_and_check(const char *cmd, trace_facts *f, double tol)
{
    char full[1024];
    snprintf(full, sizeof full, "%s -o %s", cmd, out_path);
    err e;
    int rc = run_gen(full, &e);
    if (rc)
        fail_msg("%s: %s", full, e.msg);
    gen_opts o;
    cfg c;
    parse_cmd(full, &o, &c);
    check_trace(out_path, &c, f);
    uint64_t tf;
    assert_int_equal(gen_trace_flops(out_path, &tf, &e), 0);
    uint64_t af = gen_flops_analytic(&o, &c);
    assert_true(af > 0);
    double rel = (double)tf / (double)af - 1.0;
    if (rel > tol || rel < -tol)
        fail_msg("%s: trace FLOPs %llu vs analytic %llu", cmd, (unsigned long long)tf,
                 (unsigned long long)af);
    /* The note is the command and the memory plan's peak, then the topology line it was
     * generated for. */
    char note[1100];
    snprintf(note, sizeof note, "tpusim %s # peak HBM per chip: ", full);
    assert_memory_equal(f->note, note, strlen(note));
    assert_true(strtoull(f->note + strlen(note), NULL, 10) > 0);
    const char *topo = strchr(f->note, '\n');
    assert_non_null(topo);
    assert_memory_equal(topo + 1, TRACE_TOPO_TAG " chips=", strlen(TRACE_TOPO_TAG " chips="));
    trace_topology tt;
    assert_int_equal(trace_note_topology(f->note, &tt), 1);
    assert_string_equal(tt.ici_dims, c.ici_dims);
    assert_true(tf == f->flops);
}

/* Analytic FLOPs of a command line (the whole workload when it has no sharding options). */
static uint64_t analytic(const char *cmd)
{
    char full[1024];
    snprintf(full, sizeof full, "%s -o x.tpt", cmd);
    gen_opts o;
    cfg c;
    parse_cmd(full, &o, &c);
    return gen_flops_analytic(&o, &c);
}

static void assert_within(uint64_t got, uint64_t want, double tol, const char *what)
{
    double rel = (double)got / (double)want - 1.0;
    if (rel > tol || rel < -tol)
        fail_msg("%s: %llu vs %llu (%+.3f%%)", what, (unsigned long long)got,
                 (unsigned long long)want, rel * 100);
}

static int setup(void **state)
{
    (void)state;
    setenv("TPUSIM_PRESETS", TPUSIM_SOURCE_DIR "/configs", 0);
    snprintf(out_path, sizeof out_path, "/tmp/test_gen_%d.tpt", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(out_path);
    return 0;
}

static void test_gen_gemm_flops_exact_for_odd_shapes(void **state)
{
    (void)state;
    static const char *cmds[] = {
        "gen gemm --m 1024 --n 1024 --k 1024 -c v7",
        "gen gemm --m 300 --n 200 --k 130 -c v7",
        "gen gemm --m 1 --n 257 --k 129 -c v4",
        "gen gemm --m 2500 --n 384 --k 4100 -c v4 --dtype int8",
        "gen gemm --m 777 --n 3000 --k 555 -c v5e -p vmem.bytes=1MiB",
    };
    for (unsigned i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        trace_facts f;
        gen_and_check(cmds[i], &f, 0.0);
        assert_true(f.matmuls > 0);
        assert_true(strstr(f.marks, "gemm|") != NULL);
    }
}

/* A shipped preset, loaded or the test fails. */
static void load_preset(cfg *c, const char *name)
{
    err e;
    cfg_defaults(c);
    if (cfg_load(c, name, NULL, &e))
        fail_msg("preset %s: %s", name, e.msg);
}

/* The GEMM plan of m x n x k on c with vmem bytes of VMEM: found (or the test fails with
 * the planner's message) and within that VMEM. */
static void plan_fits(const cfg *c, uint64_t vmem, uint64_t m, uint64_t n, uint64_t k, isa_dtype in,
                      isa_dtype out, gen_gemm_plan *p)
{
    err e;
    if (gen_gemm_plan_for(c, vmem, m, n, k, in, out, p, &e))
        fail_msg("plan %llux%llux%llu: %s", (unsigned long long)m, (unsigned long long)n,
                 (unsigned long long)k, e.msg);
    assert_true(p->vmem_bytes <= vmem);
}

static void test_gen_gemm_plan_fits_vmem_and_reuses_weights(void **state)
{
    (void)state;
    cfg c;
    err e;
    gen_gemm_plan p;
    load_preset(&c, "v7");
    uint64_t vmem = (uint64_t)cfg_vmem_total_bytes(&c);
    plan_fits(&c, vmem, 8192, 8192, 8192, ISA_DT_BF16, ISA_DT_FP32, &p);
    assert_true(p.mt / p.msub >= 512); /* one weight tile serves >= 512 rows */
    assert_int_equal(p.nsub * p.msub % cfg_mxu_total(&c), 0); /* every MXU busy each step */
    /* A 4 KiB VMEM cannot hold even one 128 x 128 bf16 weight tile twice. */
    assert_int_not_equal(
        gen_gemm_plan_for(&c, 4096, 1024, 1024, 1024, ISA_DT_BF16, ISA_DT_FP32, &p, &e), 0);
    assert_non_null(strstr(e.msg, "does not fit"));
}

static void test_gen_gemm_matmuls_stream_many_rows_per_weight_load(void **state)
{
    (void)state;
    trace_facts f;
    gen_and_check("gen gemm --m 4096 --n 2048 --k 2048 -c v7", &f, 0.0);
    /* One matmul per weight load, each streaming at least 1024 rows of 256 x 256 tiles. */
    assert_int_equal(f.matmuls, f.ldws);
    assert_true(f.flops / f.matmuls >= 2ull * 1024 * 256 * 256);
}

/* The blocked-GEMM bound for a VMEM of V bytes: square b x b output blocks whose fp32
 * accumulator and bf16 cast copy fit twice (2 b^2 (4 + 2) <= V), A read N/b times, B read
 * M/b times, C written once: A N/b + B M/b + C. The plan moves at most 1.3x that. */
static void test_gen_gemm_traffic_within_1_3x_of_the_blocked_bound(void **state)
{
    (void)state;
    static const char *presets[] = {"v4", "v5e", "v5p", "v6e", "v7"};
    for (unsigned i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        cfg c;
        err e;
        gen_gemm_plan p;
        load_preset(&c, presets[i]);
        double V = cfg_vmem_total_bytes(&c), N = 8192, b = sqrt(V / 12);
        assert_int_equal(
            gen_gemm_plan_for(&c, (uint64_t)V, 8192, 8192, 8192, ISA_DT_BF16, ISA_DT_BF16, &p, &e),
            0);
        double ab = N * N * 2, bound = 2 * ab * (N / (b < N ? b : N)) + ab;
        double got = (double)lower_gemm_traffic(&p, 8192, 8192, 8192, ISA_DT_BF16, ISA_DT_BF16);
        if (got > 1.3 * bound)
            fail_msg("%s: %.0f MiB vs blocked bound %.0f MiB", presets[i], got / 1048576,
                     bound / 1048576);
    }
}

static void test_gen_conv_mlp_flops_match(void **state)
{
    (void)state;
    trace_facts f;
    gen_and_check("gen conv2d --batch 2 --height 17 --width 15 --in-channels 32 --out-channels "
                  "100 --kernel 3 --kernel-w 5 --stride 2 --padding 1 -c v4",
                  &f, 0.01);
    assert_non_null(strstr(f.marks, "conv2d|")); /* an implicit GEMM: no im2col pass */
    assert_null(strstr(f.marks, "im2col"));
    gen_and_check("gen mlp --layers 512,1000,300,64 --batch 96 -c v7", &f, 0.01);
    /* The tanh between layers is fused into each matmul's output tiles: no separate pass. */
    assert_non_null(strstr(f.marks, "L0/fwd|L1/fwd|L2/fwd|"));
}

static void test_gen_attention_flops_causal_and_full(void **state)
{
    (void)state;
    trace_facts full, causal;
    gen_and_check("gen attention --batch 1 --heads 2 --seq 2048 --head-dim 64 -c v7", &full, 0.0);
    gen_and_check("gen attention --batch 1 --heads 2 --seq 2048 --head-dim 64 --causal -c v7",
                  &causal, 0.0);
    gen_opts o;
    cfg c;
    parse_cmd("gen attention --batch 1 --heads 2 --seq 2048 --head-dim 64 -c v7 -o x", &o, &c);
    uint64_t ff = gen_flops_analytic(&o, &c);
    assert_int_equal(ff, 2ull * 4 * 2048 * 2048 * 64);
    /* Causal: a query block of m rows starting at q0 sees keys [0, q0 + m). */
    o.causal = 1;
    uint64_t cf = gen_flops_analytic(&o, &c), mq = gen_attn_block(&c, 2048, 2048, 64, o.dtype, 0);
    uint64_t pairs = 0;
    for (uint64_t q0 = 0; q0 < 2048; q0 += mq)
        pairs += mq * (q0 + mq);
    assert_int_equal(cf, 2ull * 4 * 64 * pairs);
    assert_true(cf < ff * 3 / 4 && cf > ff / 2);
    assert_true(causal.matmuls < full.matmuls);
}

static void test_gen_transformer_forward_and_training(void **state)
{
    (void)state;
    trace_facts f, t;
    gen_and_check("gen transformer --batch 2 --seq 256 --d-model 256 --heads 4 --d-ff 512 -c v7",
                  &f, 0.01);
    assert_non_null(strstr(f.marks, "L0/fwd/norm1|L0/fwd/attn|L0/fwd/mlp|"));
    gen_and_check("gen transformer --batch 2 --seq 256 --d-model 256 --heads 4 --d-ff 512 "
                  "--training -c v7",
                  &t, 0.01);
    assert_non_null(strstr(t.marks, "L0/bwd/mlp|L0/bwd/attn|"));
    assert_true(t.matmuls > 2 * f.matmuls);
}

static void test_gen_transformer_parallel_collectives(void **state)
{
    (void)state;
    trace_facts f;
    gen_and_check("gen transformer --batch 8 --seq 128 --d-model 256 --heads 4 --d-ff 512 "
                  "--training --data-parallel 2 --tensor-parallel 2 --fsdp 2 -c v7",
                  &f, 0.01);
    /* Per chip: batch 8 / (2 x 2) = 2 sequences of 128 tokens: activations 256 x 256 bf16. */
    uint64_t act = 2 * 128 * 256 * 2;
    /* Forward: after attention-out and MLP-down; backward: input grads of the MLP up and the
     * QKV projections; each all-reduces the whole activation. Gradients: reduce-scatter over
     * fsdp, then all-reduce of the shard over the data axes. */
    assert_int_equal(f.coll[ISA_OP_ICI_ALLREDUCE], 4 + 1);
    uint64_t layer = 256 * 3 * 256 / 2 + 256 * 256 / 2 + 3 * 256 * 256; /* TP shard elems */
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLREDUCE], 4 * act + layer * 2 / 2);
    assert_int_equal(f.coll[ISA_OP_ICI_ALLGATHER], 2); /* forward and backward */
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLGATHER], 2 * layer * 2);
    assert_int_equal(f.coll[ISA_OP_ICI_REDUCESCATTER], 1);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_REDUCESCATTER], layer * 2);
    assert_non_null(strstr(f.marks, "L0/bwd/comm|"));
}

static void test_gen_llm_training_and_decode(void **state)
{
    (void)state;
    trace_facts t, d;
    gen_and_check("gen llm-step --layers 2 --d-model 256 --heads 4 --d-ff 512 --vocab 1000 "
                  "--seq 128 --batch 2 --chips 2 -c v7",
                  &t, 0.01);
    static const char *want[] = {"embed|",      "L0/fwd/attn|", "L1/fwd/mlp|", "lm_head|",  "loss|",
                                 "L1/bwd/mlp|", "L0/bwd/attn|", "embed/bwd|",  "optimizer|"};
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(t.marks, want[i]))
            fail_msg("marker %s missing in %s", want[i], t.marks);
    /* --chips 2: pure data parallelism, every layer's gradients all-reduced. */
    assert_int_equal(t.coll[ISA_OP_ICI_ALLREDUCE], 2 + 2);
    gen_and_check("gen llm-step --layers 2 --d-model 256 --heads 4 --d-ff 512 --vocab 1000 "
                  "--seq 128 --batch 4 --decode -c v7",
                  &d, 0.01);
    assert_null(strstr(d.marks, "optimizer"));
    assert_true(d.matmuls < t.matmuls);
}

/* Grouped-query attention and an explicit head_dim: K and V projections and the cache are
 * sized by the kv heads, Q and O by heads x head_dim; FLOPs stay exact, training (sharded)
 * and decode. */
static void test_gen_gqa_and_head_dim_flops_exact(void **state)
{
    (void)state;
    trace_facts f;
    gen_and_check("gen llm-step --layers 2 --d-model 512 --heads 8 --kv-heads 2 --head-dim 80 "
                  "--d-ff 1408 --vocab 8000 --seq 256 --batch 4 --tensor-parallel 2 -c v7",
                  &f, 0.0);
    gen_and_check("gen llm-step --layers 2 --d-model 512 --heads 8 --kv-heads 1 --d-ff 1408 "
                  "--vocab 8000 --seq 1024 --batch 8 --decode -c v7",
                  &f, 0.0);
    /* Fewer kv heads: fewer parameters, so fewer projection FLOPs than multi-head. */
    char base[] = "gen llm-step --layers 2 --d-model 512 --heads 8 --d-ff 1408 --vocab 8000 "
                  "--seq 1024 --batch 8 --decode -c v7";
    char gqa[256];
    snprintf(gqa, sizeof gqa, "%s --kv-heads 2", base);
    assert_true(analytic(gqa) < analytic(base));
    err e;
    char bad[512];
    snprintf(bad, sizeof bad, "%s --kv-heads 3 -o %s", base, out_path);
    assert_int_not_equal(run_gen(bad, &e), 0);
    assert_non_null(strstr(e.msg, "--kv-heads 3 must divide --heads 8"));
}

/* The peak HBM the note states. */
static uint64_t note_peak(const trace_facts *f)
{
    const char *m = strstr(f->note, "# peak HBM per chip: ");
    assert_non_null(m);
    return strtoull(m + strlen("# peak HBM per chip: "), NULL, 10);
}

static uint64_t note_model_flops(const trace_facts *f)
{
    const char *m = strstr(f->note, "# model FLOPs per chip: ");
    assert_non_null(m);
    return strtoull(m + strlen("# model FLOPs per chip: "), NULL, 10);
}

#define TINY                                                                                       \
    "gen llm-step --layers 2 --d-model 512 --heads 8 --d-ff 1408 --vocab 8000 --seq 256 --batch "  \
    "8 -c v7"

static void test_gen_structure_options_flops_exact(void **state)
{
    (void)state;
    trace_facts f;
    static const char *const extra[] = {
        "--mlp gelu",
        "--parallel-block",
        "--tied-embedding",
        "--bias",
        "--parallel-block --tensor-parallel 2 --bias --mlp gelu",
        "--parallel-block --tied-embedding --kv-heads 1 --head-dim 128 --tensor-parallel 2 --fsdp "
        "2",
        "--decode --parallel-block --mlp gelu --tied-embedding",
    };
    for (unsigned i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s %s", TINY, extra[i]);
        gen_and_check(cmd, &f, 0.0);
    }
    /* GELU: two MLP matrices, 2/3 of SwiGLU's MLP FLOPs: per token per layer 2 x D F less. */
    uint64_t sw = analytic(TINY), ge = analytic(TINY " --mlp gelu");
    assert_int_equal(sw - ge, 3ull * 2 * 2 * 512 * 1408 * 8 * 256);
    /* A parallel block, tied embedding, biases: the same matmul FLOPs. */
    assert_int_equal(analytic(TINY " --parallel-block --tied-embedding --bias"), sw);
}

static void test_gen_vocab_padded_to_the_tensor_parallel_degree(void **state)
{
    (void)state;
    trace_facts f;
    /* 8001 rows over 2 shards: 4001 per shard (8002 padded); executed FLOPs count the padded
     * shard, model FLOPs the real vocabulary. */
    gen_and_check("gen llm-step --layers 1 --d-model 512 --heads 8 --d-ff 1408 --vocab 8001 "
                  "--seq 256 --batch 4 --tensor-parallel 2 -c v7",
                  &f, 0.0);
    gen_opts o;
    cfg c;
    parse_cmd("gen llm-step --layers 1 --d-model 512 --heads 8 --d-ff 1408 --vocab 8001 --seq 256 "
              "--batch 4 --tensor-parallel 2 -c v7 -o x",
              &o, &c);
    assert_int_equal(gen_vocab_shard(&o), 4001);
    uint64_t tok = 4 * 256;
    /* flash attention's recomputed QK^T (half of the forward's QK^T + PV) is executed, not
     * model FLOPs */
    uint64_t af = 4 * 8 / 2 * gen_attn_flops(&c, 256, 256, 64, 1, o.dtype, 0);
    assert_int_equal(gen_flops_analytic(&o, &c) - gen_flops_model(&o, &c),
                     6 * 512 * (4001 - 8001 / 2) * tok + af / 2);
}

/* Mixture of experts, 8 experts top-2: the forward's trace FLOPs equal the closed form with
 * the active experts only (router + 2 experts per token; capacity factor 1 leaves no padding
 * slot) within 1% (in fact exactly), and the dispatch and combine all-to-alls move exactly
 * R x D elements each, R = E/ep x ceil(ep M k C / E). */
static void test_gen_moe_active_flops_and_alltoall_bytes(void **state)
{
    (void)state;
    trace_facts f, t, d;
    const char *shape = "gen transformer --batch 8 --seq 256 --d-model 256 --heads 4 --d-ff 512 "
                        "-p ici.dims=4x4x4 --data-parallel 4 -c v7";
    char cmd[512];
    gen_and_check(shape, &d, 0.0); /* the dense block of the same shape */
    snprintf(cmd, sizeof cmd, "%s --experts 8 --top-k 2 --expert-parallel 4", shape);
    gen_and_check(cmd, &f, 0.0);
    /* Per chip: 2 sequences x 256 = M 512 tokens, D 256, expert d_ff 512 (SwiGLU: 3 D F). */
    uint64_t M = 512, D = 256, F = 512, E = 8, k = 2;
    uint64_t dense_mlp = 2 * M * 3 * D * F;
    uint64_t active = 2 * M * D * E + k * 2 * M * 3 * D * F;
    double want = (double)(d.flops - dense_mlp + active);
    double rel = (double)f.flops / want - 1.0;
    assert_true(rel < 0.01 && rel > -0.01);
    assert_int_equal(f.flops, d.flops - dense_mlp + active);
    /* The note's model FLOPs count the active experts: the same figure. */
    const char *mf = strstr(f.note, "# model FLOPs per chip: ");
    assert_non_null(mf);
    assert_int_equal(strtoull(mf + strlen("# model FLOPs per chip: "), NULL, 10), f.flops);
    /* cap = ceil(4 x 512 x 2 x 1.0 / 8) = 512 tokens per expert, 2 local experts: R 1024. */
    uint64_t R = (E / 4) * ((4 * M * k + E - 1) / E);
    assert_int_equal(f.coll[ISA_OP_ICI_ALLTOALL], 2);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLTOALL], 2 * R * D * 2);
    /* Training: the backward adds the two reverse all-to-alls; FLOPs still as analysed. */
    snprintf(cmd, sizeof cmd, "%s --experts 8 --top-k 2 --expert-parallel 4 --training", shape);
    gen_and_check(cmd, &t, 0.0);
    assert_int_equal(t.coll[ISA_OP_ICI_ALLTOALL], 4);
    assert_int_equal(t.coll_bytes[ISA_OP_ICI_ALLTOALL], 4 * R * D * 2);
    /* A capacity factor of 1.25 pads each expert to ceil(1.25 x 512) = 640 slots: executed
     * FLOPs grow, model FLOPs do not. */
    snprintf(cmd, sizeof cmd, "%s --experts 8 --top-k 2 --expert-parallel 4 --capacity-factor 1.25",
             shape);
    gen_and_check(cmd, &t, 0.0);
    assert_int_equal(t.coll_bytes[ISA_OP_ICI_ALLTOALL], 2 * 2 * 640 * D * 2);
    assert_int_equal(t.flops - f.flops, 2 * (2 * 640 - R) * 3 * D * F);
    mf = strstr(t.note, "# model FLOPs per chip: ");
    assert_int_equal(strtoull(mf + strlen("# model FLOPs per chip: "), NULL, 10), f.flops);
}

/* Remat policies: trace FLOPs equal the closed forms exactly, model FLOPs in the note are the
 * same for every policy, and the saved activations shrink the peak. */
static void test_gen_remat_flops_closed_form_and_peak(void **state)
{
    (void)state;
    trace_facts f;
    const char *base = "gen llm-step --layers 4 --d-model 512 --heads 8 --d-ff 1408 --vocab 8000 "
                       "--seq 512 --batch 8 -c v7";
    gen_opts o;
    cfg c;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -o x", base);
    parse_cmd(cmd, &o, &c);
    uint64_t L = 4, D = 512, F = 1408, V = 8000, T = 8 * 512;
    uint64_t af = L * 8 * 8 * gen_attn_flops(&c, 512, 512, 64, 1, o.dtype, 0);
    uint64_t pqkv = 3 * D * D, po = D * D, pup = 2 * D * F, pdown = F * D;
    uint64_t model = 3 * (2 * (L * (pqkv + po + pup + pdown) + D * V) * T + af);
    uint64_t none = model + af / 2; /* flash attention recomputes QK^T in its backward */
    static const char *const policy[] = {"none", "minimal", "save-dots", "full"};
    uint64_t want[4] = {none, none + af, none + L * 2 * pup * T,
                        none + L * 2 * (pqkv + po + pup) * T + af};
    uint64_t peak[4];
    for (unsigned i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "%s --remat %s", base, policy[i]);
        gen_and_check(cmd, &f, 0.0);
        assert_int_equal(f.flops, want[i]);
        assert_int_equal(note_model_flops(&f), model);
        peak[i] = note_peak(&f);
    }
    /* full: HFU / MFU = (model + Af/2 + recomputed forward) / model */
    double ratio = (double)want[3] / (double)model;
    print_message("remat full: HFU/MFU %.4f\n", ratio);
    assert_true(ratio > 1.15 && ratio < 1.4); /* the exact closed form is checked above */
    assert_true(peak[3] < peak[2] && peak[2] < peak[1] && peak[1] < peak[0]);
    /* Remat is a training option. */
    snprintf(cmd, sizeof cmd, "%s --decode --remat full -o %s", base, out_path);
    err e;
    assert_int_not_equal(run_gen(cmd, &e), 0);
    assert_non_null(strstr(e.msg, "training"));
}

static void test_gen_7b_analytic_training_flops_close_to_6nd(void **state)
{
    (void)state;
    gen_opts o;
    cfg c;
    parse_cmd("gen llm-step --layers 32 --d-model 4096 --heads 32 --d-ff 11008 --vocab 32000 "
              "--seq 4096 --batch 1 -c v7 -o x",
              &o, &c);
    double params = 32.0 * (4.0 * 4096 * 4096 + 3.0 * 4096 * 11008) + 4096.0 * 32000;
    double six_nd = 6.0 * params * 4096;
    double f = (double)gen_flops_analytic(&o, &c);
    /* Attention adds 3.5 x 2 x 2 x S^2/2 x d x L (causal) on top: about 20% here. */
    assert_true(f > six_nd * 1.1 && f < six_nd * 1.35);
}

static void expect_error(const char *cmd, const char *needle)
{
    err e;
    e.msg[0] = 0;
    assert_int_equal(run_gen(cmd, &e), -1);
    if (!strstr(e.msg, needle))
        fail_msg("'%s': error '%s' lacks '%s'", cmd, e.msg, needle);
    assert_null(strchr(e.msg, '\n'));
}

static void test_gen_errors_name_the_problem(void **state)
{
    (void)state;
    expect_error("gen", "missing KIND");
    expect_error("gen matmul -c v7 -o x.tpt", "unknown kind 'matmul'");
    expect_error("gen gemm --n 8 --k 8 -c v7 -o x.tpt", "missing --m");
    expect_error("gen gemm --m 8 --n 8 --k 8 -o x.tpt", "missing -c");
    expect_error("gen gemm --m 8 --n 8 --k 8 -c /nonexistent/cfg.yaml -o x.tpt", "nonexistent");
    expect_error("gen gemm --m 8 --n 8 --k 8 -c v7", "missing -o");
    expect_error("gen gemm --m 0 --n 8 --k 8 -c v7 -o x.tpt", "not a positive integer");
    expect_error("gen gemm --m 8 --n 8 --k 8 --dtype int8 -c v7 -o x.tpt", "not supported");
    expect_error("gen gemm --m 8 --n 8 --k 8 --heads 2 -c v7 -o x.tpt", "does not apply");
    expect_error("gen gemm --m 8 --n 8 --k 8 -c v7 -p mxu.rows=0 -o x.tpt", "mxu.rows");
    expect_error("gen elementwise --op frob --elements 8 -c v7 -o x.tpt", "unknown vector op");
    expect_error("gen transformer --batch 3 --seq 8 --d-model 64 --heads 4 --d-ff 64 "
                 "--data-parallel 2 -c v7 -o x.tpt",
                 "not divisible");
    expect_error("gen llm-step --layers 1 --d-model 64 --heads 4 --d-ff 64 --vocab 100 --seq 8 "
                 "--batch 2 --chips 4 --tensor-parallel 2 -c v7 -o x.tpt",
                 "--chips 4");
    expect_error("gen transformer --batch 2 --seq 8 --d-model 64 --heads 4 --d-ff 64 "
                 "--fsdp 2 --fsdp-axes z -c v7 -p ici.wrap=xy -p ici.dims=4x4 -o x.tpt",
                 "topology");
    assert_int_equal(access("x.tpt", F_OK), -1); /* nothing left behind */
}

static void test_gen_help_returns_zero(void **state)
{
    (void)state;
    err e;
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int a = run_gen("gen --help", &e), b = run_gen("gen llm-step --help", &e);
    fclose(stdout);
    stdout = saved;
    assert_int_equal(a, 0);
    assert_int_equal(b, 0);
}

/* --help comes from the option tables: every kind has one, with its options, what is
 * required and the defaults gen_opts_init gives. */
static void test_gen_help_of_each_kind_lists_its_options_and_defaults(void **state)
{
    (void)state;
    static const char *const want[GEN_KIND_COUNT][4] = {
        [GEN_GEMM] = {"--m M", "(required)", "--dtype T", "(default bf16)"},
        [GEN_ELEMENTWISE] = {"--op OP", "--elements N", "(required)", "(default bf16)"},
        [GEN_CONV2D] = {"--kernel-w S", "(default R)", "--padding D", "(default 0)"},
        [GEN_MLP] = {"--layers S0,S1,...", "--batch B", "(required)", "--dtype T"},
        [GEN_ATTENTION] = {"--head-dim D", "--causal", "(required)", "--dtype T"},
        [GEN_TRANSFORMER] = {"--training", "--data-parallel D", "--fsdp-axes AXES", "(default y)"},
        [GEN_LLM_STEP] = {"--vocab V", "--decode", "--seq-parallel P", "--chips N"},
    };
    for (int k = 0; k < GEN_KIND_COUNT; k++) {
        char *buf = NULL, head[64];
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        cli_gen_usage(f, k);
        fclose(f);
        snprintf(head, sizeof head, "usage: tpusim gen %s ", gen_kind_name((gen_kind)k));
        assert_non_null(strstr(buf, head));
        assert_non_null(strstr(buf, "options:"));
        for (int i = 0; i < 4 && want[k][i]; i++)
            if (!strstr(buf, want[k][i]))
                fail_msg("gen %s --help lacks '%s'", gen_kind_name((gen_kind)k), want[k][i]);
        assert_true((strstr(buf, "--tensor-parallel") != NULL) ==
                    (k == GEN_TRANSFORMER || k == GEN_LLM_STEP));
        free(buf);
    }
}

/* The library alone (no argv): options built in code, checked, generated. */
static void test_gen_library_api_runs_without_the_command_line(void **state)
{
    (void)state;
    cfg *c = malloc(sizeof *c);
    err e;
    assert_int_equal(cfg_load(c, "v7", NULL, &e), 0);
    gen_opts o;
    gen_opts_init(&o, GEN_GEMM);
    o.m = o.n = o.k = 256;
    o.output = out_path;
    assert_int_equal(gen_run(&o, c, "api", &e), 0);
    uint64_t tf;
    assert_int_equal(gen_trace_flops(out_path, &tf, &e), 0);
    assert_int_equal(tf, gen_flops_analytic(&o, c));
    o.dtype = ISA_DT_INT8; /* v7's MXU has no int8 */
    assert_int_not_equal(gen_run(&o, c, "api", &e), 0);
    assert_non_null(strstr(e.msg, "not supported"));
    free(c);
}

static void test_gen_elementwise_streams_every_element(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "gen elementwise --op add --elements 3M -c v7 -o %s", out_path);
    err e;
    assert_int_equal(run_gen(cmd, &e), 0);
    cfg c;
    load_preset(&c, "v7");
    trace_facts f;
    check_trace(out_path, &c, &f);
    /* Sum the v.add element counts and the DMA bytes each way. */
    trace_reader *r;
    assert_int_equal(trace_reader_open(&r, out_path, &e), 0);
    isa_insn in;
    uint64_t adds = 0, in_bytes = 0, out_bytes = 0;
    while (trace_reader_next(r, &in, &e) == 1) {
        if (in.op == ISA_OP_V_ADD)
            adds += in.arg[ISA_V_N];
        if (in.op == ISA_OP_DMA_H2V)
            in_bytes += in.arg[ISA_DMA_BYTES];
        if (in.op == ISA_OP_DMA_V2H)
            out_bytes += in.arg[ISA_DMA_BYTES];
    }
    trace_reader_free(r);
    assert_int_equal(adds, 3u << 20);
    assert_int_equal(in_bytes, 2 * 2 * (3u << 20)); /* two bf16 operands */
    assert_int_equal(out_bytes, 2 * (3u << 20));
}

/* Every kind, on every shipped preset (MXU 128x128 to 256x256, VMEM 16 MiB and up, 1 to 8
 * MXUs), with shapes that leave partial tiles at every edge: the trace replays the analytic
 * FLOPs within 1%, stays inside VMEM, carries the command line and per-phase markers. */
static void test_gen_every_kind_flops_within_1pct_on_every_preset(void **state)
{
    (void)state;
    static const char *presets[] = {"v2", "v3", "v4", "v5e", "v5p", "v6e", "v7"};
    static const struct {
        const char *cmd, *mark;
    } kinds[] = {
        {"gen gemm --m 1000 --n 1030 --k 333", "gemm|"},
        {"gen gemm --m 129 --n 77 --k 4097 --dtype fp32", "gemm|"},
        {"gen conv2d --batch 3 --height 13 --width 11 --in-channels 17 --out-channels 70 "
         "--kernel 3 --stride 2 --padding 1",
         "conv2d|"},
        {"gen mlp --layers 300,513,129 --batch 65", "L1/fwd|"},
        {"gen attention --batch 1 --heads 3 --seq 700 --head-dim 80 --causal", "attention|"},
        {"gen transformer --batch 2 --seq 200 --d-model 192 --heads 3 --d-ff 520 --training",
         "L0/bwd/attn|"},
        {"gen llm-step --layers 2 --d-model 192 --heads 3 --d-ff 520 --vocab 999 --seq 130 "
         "--batch 2",
         "optimizer|"},
        {"gen llm-step --layers 2 --d-model 192 --heads 3 --d-ff 520 --vocab 999 --seq 300 "
         "--batch 3 --decode",
         "lm_head|"},
    };
    for (unsigned p = 0; p < sizeof presets / sizeof presets[0]; p++)
        for (unsigned i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
            char cmd[512];
            snprintf(cmd, sizeof cmd, "%s -c %s", kinds[i].cmd, presets[p]);
            trace_facts f;
            gen_and_check(cmd, &f, 0.01);
            assert_true(f.matmuls > 0);
            if (!strstr(f.marks, kinds[i].mark))
                fail_msg("%s: marker %s missing", cmd, kinds[i].mark);
        }
}

/* GEMM tiles (A, B and C blocks) are double buffered and both copies fit VMEM, for every
 * preset and datatype the preset's MXU supports. */
static void test_gen_gemm_plan_double_buffer_fits_every_preset(void **state)
{
    (void)state;
    static const char *presets[] = {"v2", "v3", "v4", "v5e", "v5p", "v6e", "v7"};
    static const isa_dtype dts[] = {ISA_DT_BF16, ISA_DT_INT8, ISA_DT_FP8, ISA_DT_FP32};
    for (unsigned p = 0; p < sizeof presets / sizeof presets[0]; p++) {
        cfg c;
        load_preset(&c, presets[p]);
        uint64_t vmem = (uint64_t)cfg_vmem_total_bytes(&c);
        for (unsigned d = 0; d < sizeof dts / sizeof dts[0]; d++) {
            if (cfg_mxu_rate(&c, dts[d]) <= 0)
                continue;
            gen_gemm_plan pl;
            plan_fits(&c, vmem, 8192, 8192, 8192, dts[d], ISA_DT_FP32, &pl);
            assert_true(pl.mt >= c.mxu_rows);
            assert_true(pl.kc % c.mxu_rows == 0 && pl.ng % c.mxu_cols == 0);
        }
    }
}

/* Near the roofline ridge a step's loads take about as long as its matmuls, and two
 * operand buffers would serialise them (lower_tile.c, plan_nbuf): the 427-token
 * up-projection on one v7 device gets a third buffer, whose VMEM the plan counts, and its
 * trace (A resident) and a streamed-operand one keep every wait paired with its signals. A
 * compute-heavy step (8192^3) stays double-buffered. */
static void test_gen_gemm_near_ridge_plan_triple_buffers(void **state)
{
    (void)state;
    cfg c;
    gen_gemm_plan p;
    load_preset(&c, "v7");
    uint64_t vmem = (uint64_t)cfg_vmem_total_bytes(&c);
    plan_fits(&c, vmem, 427, 28672, 4096, ISA_DT_BF16, ISA_DT_BF16, &p);
    assert_int_equal(p.nbuf, 3);
    plan_fits(&c, vmem, 8192, 8192, 8192, ISA_DT_BF16, ISA_DT_BF16, &p);
    assert_int_equal(p.nbuf, 2);
    trace_facts f;
    gen_and_check("gen gemm --m 427 --n 28672 --k 4096 -c v7", &f, 0.0);
    gen_and_check("gen gemm --m 2048 --n 8192 --k 8192 -c v7", &f, 0.0);
}

/* Each sharding option alone emits exactly the collectives it needs, with per-chip byte
 * counts from the shard shapes, on its named axes. Transformer block, training, v7 4x4x4:
 * batch 4, seq 128, d_model 256, 4 heads, d_ff 512, bf16. */
static void test_gen_each_sharding_emits_its_collectives(void **state)
{
    (void)state;
    const char *base = "gen transformer --batch 4 --seq 128 --d-model 256 --heads 4 --d-ff 512 "
                       "--training -c v7";
    const uint64_t D = 256, F = 512, S = 128;
    char cmd[512];
    trace_facts f;
    /* Data parallel 2 over x: one all-reduce of the layer's weight gradients. */
    snprintf(cmd, sizeof cmd, "%s --data-parallel 2", base);
    gen_and_check(cmd, &f, 0.01);
    uint64_t layer = 4 * D * D + 3 * D * F;
    assert_int_equal(f.coll[ISA_OP_ICI_ALLREDUCE], 1);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLREDUCE], 2 * layer);
    assert_int_equal(f.coll_axes[ISA_OP_ICI_ALLREDUCE], 1);
    assert_int_equal(f.coll[ISA_OP_ICI_ALLGATHER] + f.coll[ISA_OP_ICI_REDUCESCATTER] +
                         f.coll[ISA_OP_ICI_ALLTOALL],
                     0);
    assert_non_null(strstr(f.marks, "L0/bwd/comm|"));
    /* Tensor parallel 2 over y: four activation all-reduces of [M, D], no gradient traffic
     * (the GEMMs are too small next to their all-reduces to be split into row blocks). */
    snprintf(cmd, sizeof cmd, "%s --tensor-parallel 2", base);
    gen_and_check(cmd, &f, 0.01);
    uint64_t act = 4 * S * D * 2;
    assert_int_equal(f.coll[ISA_OP_ICI_ALLREDUCE], 4);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLREDUCE], 4 * act);
    assert_int_equal(f.coll_axes[ISA_OP_ICI_ALLREDUCE], 2);
    /* FSDP 2 over z: weights gathered forward and backward, gradients reduce-scattered. */
    snprintf(cmd, sizeof cmd, "%s --fsdp 2", base);
    gen_and_check(cmd, &f, 0.01);
    assert_int_equal(f.coll[ISA_OP_ICI_ALLGATHER], 2);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLGATHER], 2 * 2 * layer);
    assert_int_equal(f.coll_axes[ISA_OP_ICI_ALLGATHER], 4);
    assert_int_equal(f.coll[ISA_OP_ICI_REDUCESCATTER], 1);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_REDUCESCATTER], 2 * layer);
    assert_int_equal(f.coll[ISA_OP_ICI_ALLREDUCE], 0);
    /* Sequence parallel 2 over z: q, k, v and the attention output all-to-all'd forward,
     * their gradients backward ([S/2 tokens x 4 sequences, D] each), and the weight
     * gradients all-reduced over z. */
    snprintf(cmd, sizeof cmd, "%s --seq-parallel 2 --sp-axes z", base);
    gen_and_check(cmd, &f, 0.01);
    uint64_t shard = 4 * (S / 2) * D * 2;
    assert_int_equal(f.coll[ISA_OP_ICI_ALLTOALL], 4);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLTOALL], 8 * shard);
    assert_int_equal(f.coll_axes[ISA_OP_ICI_ALLTOALL], 4);
    assert_int_equal(f.coll[ISA_OP_ICI_ALLREDUCE], 1);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLREDUCE], 2 * layer);
    assert_int_equal(f.coll_axes[ISA_OP_ICI_ALLREDUCE], 4);
    assert_non_null(strstr(f.marks, "L0/fwd/attn/comm|L0/fwd/attn|"));
    assert_non_null(strstr(f.marks, "L0/bwd/attn/comm|L0/bwd/attn|"));
}

/* Sharded runs: the per-chip trace's FLOPs times the chip count equal the global analytic
 * FLOPs of the unsharded workload within 1%, for training and decode and every option. */
static void test_gen_sharded_flops_times_chips_equal_global(void **state)
{
    (void)state;
    const char *train = "gen llm-step --layers 2 --d-model 256 --heads 8 --d-ff 640 --vocab 1000 "
                        "--seq 256 --batch 8 -c v7";
    const char *dec = "gen llm-step --layers 2 --d-model 256 --heads 8 --d-ff 640 --vocab 1000 "
                      "--seq 512 --batch 8 --decode -c v7";
    static const struct {
        const char *opts;
        uint64_t chips;
        int train_only;
    } shard[] = {
        {"--chips 8", 8, 0},
        {"--data-parallel 2 --tensor-parallel 2 --fsdp 2", 8, 0},
        {"--tensor-parallel 4 --fsdp 2", 8, 0},
        {"--tensor-parallel 2 --fsdp 2 --seq-parallel 2 --sp-axes x", 8, 1},
        {"--data-parallel 2 --seq-parallel 4 --sp-axes z", 8, 1},
    };
    for (unsigned w = 0; w < 2; w++) {
        const char *base = w ? dec : train;
        uint64_t global = analytic(base);
        for (unsigned i = 0; i < sizeof shard / sizeof shard[0]; i++) {
            if (w && shard[i].train_only)
                continue;
            char cmd[512];
            snprintf(cmd, sizeof cmd, "%s %s", base, shard[i].opts);
            trace_facts f;
            gen_and_check(cmd, &f, 0.01);
            assert_within(f.flops * shard[i].chips, global, 0.01, cmd);
        }
    }
}

/* With --collective-matmul a row-parallel GEMM whose compute is comparable to its
 * tensor-parallel all-reduce is split into row blocks, each block's all-reduce running behind
 * the next block's GEMM: on v4, the down projection (k = d_ff/2 = 2048) of M = 1024 rows goes
 * in 4 blocks of 256 rows, while the output projection (k = 512) stays whole. Bytes and FLOPs
 * are unchanged. Without it (XLA's default) both GEMMs run whole, each followed by its
 * all-reduce. */
static void test_gen_tp_allreduce_split_behind_its_gemm(void **state)
{
    (void)state;
    trace_facts f, whole;
    const char *base = "gen transformer --batch 2 --seq 512 --d-model 1024 --heads 8 --d-ff 4096 "
                       "--tensor-parallel 2 -c v4";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --collective-matmul", base);
    gen_and_check(cmd, &f, 0.01);
    assert_int_equal(f.coll[ISA_OP_ICI_ALLREDUCE], 1 + 4);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLREDUCE], 2 * (1024 * 1024 * 2));
    gen_and_check(base, &whole, 0.01);
    assert_int_equal(whole.coll[ISA_OP_ICI_ALLREDUCE], 1 + 1);
    assert_int_equal(whole.coll_bytes[ISA_OP_ICI_ALLREDUCE], 2 * (1024 * 1024 * 2));
    assert_true(whole.flops == f.flops);
}

/* Several slices (--slices 2): the batch is split over the slices too, so a step of 2 slices
 * with a global batch of 8 does the per-chip work of one slice with a batch of 4 (same FLOPs,
 * same model FLOPs). Each weight gradient (one layer: L = 4 D^2 + 3 D F elements, 2 bytes) is
 * reduced hierarchically: reduce-scattered in the slice over ICI, its chip's 1/p piece
 * all-reduced over the DCN (waiting for the reduce-scatter through a chain semaphore), and
 * all-gathered in the slice; with FSDP the shard is what crosses the DCN and nothing is
 * gathered back; without data axes in the slice (tensor parallelism only) the DCN all-reduce
 * is the only reduction. The trace says it was made for 2 slices. */
static void test_gen_slices_reduce_gradients_hierarchically(void **state)
{
    (void)state;
    const char *b8 = "gen transformer --batch 8 --seq 128 --d-model 256 --heads 4 --d-ff 512 "
                     "--training -c v7 -p ici.dims=2x2x2";
    const char *b4 = "gen transformer --batch 4 --seq 128 --d-model 256 --heads 4 --d-ff 512 "
                     "--training -c v7 -p ici.dims=2x2x2";
    const uint64_t D = 256, F = 512, L = 4 * D * D + 3 * D * F;
    char cmd[512];
    trace_facts f, one;
    err e;
    /* data parallel 2 over x: RS 2L bytes, DCN 2L / 2, AG 2L; no all-reduce */
    snprintf(cmd, sizeof cmd, "%s --data-parallel 2 --slices 2", b8);
    gen_and_check(cmd, &f, 0.01);
    assert_int_equal(f.coll[ISA_OP_ICI_ALLREDUCE], 0);
    assert_int_equal(f.coll[ISA_OP_ICI_REDUCESCATTER], 1);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_REDUCESCATTER], 2 * L);
    assert_int_equal(f.coll[ISA_OP_DCN_ALLREDUCE], 1);
    assert_int_equal(f.coll_bytes[ISA_OP_DCN_ALLREDUCE], 2 * L / 2);
    assert_int_equal(f.dcn_chained, 1);
    assert_int_equal(f.coll[ISA_OP_ICI_ALLGATHER], 1);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLGATHER], 2 * L);
    trace_topology tt;
    assert_int_equal(trace_note_topology(f.note, &tt), 1);
    assert_int_equal(tt.slices, 2);
    assert_int_equal(tt.chips, 2);
    snprintf(cmd, sizeof cmd, "%s --data-parallel 2", b4);
    gen_and_check(cmd, &one, 0.01);
    assert_true(f.flops == one.flops);
    assert_true(note_model_flops(&f) == note_model_flops(&one));
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLREDUCE] + one.coll_bytes[ISA_OP_ICI_ALLREDUCE],
                     2 * L); /* one slice: the same gradient all-reduced in the slice */
    /* FSDP 2 over z: the FSDP reduce-scatter, then its shard (2L / 2) over the DCN */
    snprintf(cmd, sizeof cmd, "%s --fsdp 2 --slices 2", b8);
    gen_and_check(cmd, &f, 0.01);
    assert_int_equal(f.coll[ISA_OP_ICI_REDUCESCATTER], 1);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_REDUCESCATTER], 2 * L);
    assert_int_equal(f.coll[ISA_OP_DCN_ALLREDUCE], 1);
    assert_int_equal(f.coll_bytes[ISA_OP_DCN_ALLREDUCE], 2 * L / 2);
    assert_int_equal(f.dcn_chained, 1);
    assert_int_equal(f.coll[ISA_OP_ICI_ALLGATHER], 2); /* FSDP's weight gathers only */
    assert_int_equal(f.coll[ISA_OP_ICI_ALLREDUCE], 0);
    /* FSDP 2 over z and data 2 over x: FSDP's RS (2L), RS over x (L), DCN (L / 2), AG over x */
    snprintf(cmd, sizeof cmd, "%s --fsdp 2 --data-parallel 2 --slices 2", b8);
    gen_and_check(cmd, &f, 0.01);
    assert_int_equal(f.coll[ISA_OP_ICI_REDUCESCATTER], 2);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_REDUCESCATTER], 2 * L + L);
    assert_int_equal(f.coll_bytes[ISA_OP_DCN_ALLREDUCE], L / 2);
    assert_int_equal(f.coll[ISA_OP_ICI_ALLGATHER], 2 + 1);
    assert_int_equal(f.coll_bytes[ISA_OP_ICI_ALLGATHER], 2 * 2 * L + L);
    /* tensor parallel 2 only: each chip's half of the gradient (L bytes) over the DCN */
    snprintf(cmd, sizeof cmd, "%s --tensor-parallel 2 --slices 2", b8);
    gen_and_check(cmd, &f, 0.01);
    assert_int_equal(f.coll[ISA_OP_DCN_ALLREDUCE], 1);
    assert_int_equal(f.coll_bytes[ISA_OP_DCN_ALLREDUCE], L);
    assert_int_equal(f.dcn_chained, 0);
    assert_int_equal(f.coll[ISA_OP_ICI_REDUCESCATTER] + f.coll[ISA_OP_ICI_ALLGATHER], 0);
    /* Each all-gather waits for its gradient's DCN all-reduce, so it is emitted after the next
     * gradient's reduce-scatter: the ICI has that much work before it must wait. LM head, two
     * layers, embedding: RS D | RS AG D | RS AG D | RS AG D | AG. */
    snprintf(cmd, sizeof cmd,
             "gen llm-step --layers 2 --d-model 256 --heads 4 --d-ff 512 --vocab 1000 --seq 128 "
             "--batch 8 --data-parallel 2 --slices 2 -c v7 -p ici.dims=2x2x2 -o %s",
             out_path);
    assert_int_equal(run_gen(cmd, &e), 0);
    char order[64] = "";
    trace_reader *r;
    isa_insn in;
    assert_int_equal(trace_reader_open(&r, out_path, &e), 0);
    while (trace_reader_next(r, &in, &e) == 1 && strlen(order) + 1 < sizeof order)
        if (in.op == ISA_OP_ICI_REDUCESCATTER || in.op == ISA_OP_DCN_ALLREDUCE ||
            in.op == ISA_OP_ICI_ALLGATHER)
            strcat(order, in.op == ISA_OP_ICI_REDUCESCATTER ? "R"
                          : in.op == ISA_OP_DCN_ALLREDUCE   ? "D"
                                                            : "G");
    trace_reader_free(r);
    assert_string_equal(order, "RDRGDRGDRGDG");
    /* the batch must split over the slices; a library caller's slices must be the config's */
    snprintf(cmd, sizeof cmd, "%s --data-parallel 2 --slices 3 -o x.tpt", b8);
    expect_error(cmd, "--batch 8 is not divisible by data x fsdp x slices = 6");
    gen_opts o;
    cfg c;
    gen_opts_init(&o, GEN_TRANSFORMER);
    cfg_defaults(&c);
    o.batch = 4, o.seq = 128, o.d_model = 256, o.heads = 4, o.d_ff = 512, o.slices = 2;
    assert_int_equal(gen_check(&o, &c, &e), -1);
    assert_non_null(strstr(e.msg, "2 slices but the config's dcn.slices is 1"));
}

static void test_gen_sharding_errors_name_the_option(void **state)
{
    (void)state;
    const char *t = "gen transformer --batch 4 --seq 128 --d-model 256 --heads 4 --d-ff 512 -c v7 "
                    "-o x.tpt";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --data-parallel 4 --dp-axes x --tensor-parallel 8", t);
    expect_error(cmd, "--tensor-parallel 8: more than the 4 chips");
    snprintf(cmd, sizeof cmd, "%s --seq-parallel 3", t);
    expect_error(cmd, "--seq-parallel 3 must divide --seq 128");
    snprintf(cmd, sizeof cmd, "%s --seq-parallel 8 --sp-axes xy", t);
    expect_error(cmd, "--seq-parallel 8 must divide the heads");
    snprintf(cmd, sizeof cmd, "%s --sp-axes w", t);
    expect_error(cmd, "--sp-axes");
    expect_error("gen llm-step --layers 1 --d-model 64 --heads 4 --d-ff 64 --vocab 100 --seq 8 "
                 "--batch 2 --decode --seq-parallel 2 -c v7 -o x.tpt",
                 "--decode");
    /* A failure during generation (HBM exhausted) leaves no output behind either. */
    expect_error("gen gemm --m 400000 --n 400000 --k 400000 -c v7 -o x.tpt", "HBM");
    assert_int_equal(access("x.tpt", F_OK), -1);
    assert_int_equal(tmp_left("x.tpt"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gen_gemm_flops_exact_for_odd_shapes),
        cmocka_unit_test(test_gen_gemm_plan_fits_vmem_and_reuses_weights),
        cmocka_unit_test(test_gen_gemm_matmuls_stream_many_rows_per_weight_load),
        cmocka_unit_test(test_gen_gemm_traffic_within_1_3x_of_the_blocked_bound),
        cmocka_unit_test(test_gen_conv_mlp_flops_match),
        cmocka_unit_test(test_gen_attention_flops_causal_and_full),
        cmocka_unit_test(test_gen_transformer_forward_and_training),
        cmocka_unit_test(test_gen_transformer_parallel_collectives),
        cmocka_unit_test(test_gen_llm_training_and_decode),
        cmocka_unit_test(test_gen_gqa_and_head_dim_flops_exact),
        cmocka_unit_test(test_gen_structure_options_flops_exact),
        cmocka_unit_test(test_gen_vocab_padded_to_the_tensor_parallel_degree),
        cmocka_unit_test(test_gen_remat_flops_closed_form_and_peak),
        cmocka_unit_test(test_gen_moe_active_flops_and_alltoall_bytes),
        cmocka_unit_test(test_gen_7b_analytic_training_flops_close_to_6nd),
        cmocka_unit_test(test_gen_errors_name_the_problem),
        cmocka_unit_test(test_gen_help_returns_zero),
        cmocka_unit_test(test_gen_help_of_each_kind_lists_its_options_and_defaults),
        cmocka_unit_test(test_gen_library_api_runs_without_the_command_line),
        cmocka_unit_test(test_gen_elementwise_streams_every_element),
        cmocka_unit_test(test_gen_every_kind_flops_within_1pct_on_every_preset),
        cmocka_unit_test(test_gen_gemm_plan_double_buffer_fits_every_preset),
        cmocka_unit_test(test_gen_gemm_near_ridge_plan_triple_buffers),
        cmocka_unit_test(test_gen_each_sharding_emits_its_collectives),
        cmocka_unit_test(test_gen_sharded_flops_times_chips_equal_global),
        cmocka_unit_test(test_gen_tp_allreduce_split_behind_its_gemm),
        cmocka_unit_test(test_gen_sharding_errors_name_the_option),
        cmocka_unit_test(test_gen_slices_reduce_gradients_hierarchically),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
