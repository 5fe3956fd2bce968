/* test_hlo.c - the HLO importer: the parser reads both generations of XLA's text (the public
 * reference dumps and the hand-written modules under tests/hlo/) into typed attributes, gives
 * "file:line:col: expected X, found Y" for every truncation of a module, and the semantic
 * pass reproduces the closed-form FLOPs and collective bytes of each test module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ctype.h>

#include <cmocka.h>

#include <unistd.h>

#include "hlo.h"
#include "lower.h"
#include "sim.h"

#define MOD(name) TPUSIM_SOURCE_DIR "/tests/hlo/" name

static hlo_module *parse_str(const char *s)
{
    err e;
    hlo_module *m = hlo_parse(s, strlen(s), "t.hlo", &e);
    if (!m)
        fprintf(stderr, "%s\n", e.msg);
    return m;
}

static void expect_error(const char *s, const char *want)
{
    err e;
    hlo_module *m = hlo_parse(s, strlen(s), "t.hlo", &e);
    assert_null(m);
    if (!strstr(e.msg, want))
        fprintf(stderr, "message '%s' lacks '%s'\n", e.msg, want);
    assert_non_null(strstr(e.msg, want));
}

/* The module of the last analyze(): a plan's strings point into it (hlo.h), so it lives until
 * the next call or the end of the test program. */
static hlo_module *analyzed;

static void analyze(const char *path, unsigned x, unsigned y, hlo_plan *p)
{
    err e;
    hlo_module_free(analyzed);
    hlo_module *m = analyzed = hlo_parse_file(path, &e);
    if (!m)
        fprintf(stderr, "%s\n", e.msg);
    assert_non_null(m);
    hlo_sem_opts o = {.dims = {x, y, 1}};
    int r = hlo_analyze(m, &o, p, &e);
    if (r)
        fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(r, 0);
}

/* ---- parser ---------------------------------------------------------------------------- */

static void test_hlo_reads_public_reference_dumps(void **state)
{
    (void)state;
    static const char *f[] = {"mnist_after_optimizations_16_cpus.txt",
                              "model_par_1d_batch.after_optimizations_8_gpus.txt"};
    for (unsigned i = 0; i < 2; i++) {
        char path[512];
        /* the public reference dumps sit beside the repository (../shared/reference), or
         * where TPUSIM_HLO_SAMPLES says; they are not the project's, so absent means skipped */
        const char *dir = getenv("TPUSIM_HLO_SAMPLES");
        if (dir)
            snprintf(path, sizeof path, "%s/%s", dir, f[i]);
        else
            snprintf(path, sizeof path, "%s/../shared/reference/hlo-samples/%s", TPUSIM_SOURCE_DIR,
                     f[i]);
        FILE *t = fopen(path, "r");
        if (!t) {
            fprintf(stderr, "note: %s absent, skipped\n", path);
            continue;
        }
        fclose(t);
        err e;
        hlo_module *m = hlo_parse_file(path, &e);
        if (!m)
            fprintf(stderr, "%s\n", e.msg);
        assert_non_null(m);
        assert_true(m->ncomps > 10);
        hlo_plan p;
        hlo_sem_opts o = {.dims = {8, 1, 1}};
        assert_int_equal(hlo_analyze(m, &o, &p, &e), 0);
        assert_true(p.mxu_flops > 0);
        hlo_plan_fini(&p);
        hlo_module_free(m);
    }
}

static void test_hlo_typed_attributes(void **state)
{
    (void)state;
    const char *s =
        "HloModule m, is_scheduled=true, num_partitions=8\n"
        "ENTRY main {\n"
        "  a = f32[2,3,8,8]{3,2,1,0:T(8,128)S(1)} parameter(0)\n"
        "  w = f32[3,3,8,16]{3,2,1,0} parameter(1)\n"
        "  c = f32[2,3,8,16] convolution(a, w), window={size=3x3 stride=1x2 pad=1_1x0_-1 "
        "rhs_dilate=1x2}, dim_labels=b01f_01io->b01f, feature_group_count=1\n"
        "  s = f32[2,2,8,8] slice(a), slice={[0:2], [1:3:1], [0:8], [0:8:2]}\n"
        "  g = f32[2,3,8,8] all-gather(a), replica_groups=[2,4]<=[4,2]T(1,0), channel_id=7, "
        "dimensions={0}, metadata={op_type=\"x\" op_name=\"a/b\\\"c\\nd\" source_line=12}\n"
        "  r = f32[2,3,8,8] all-reduce(a), replica_groups={{0,1},{2,3},{4,5},{6,7}}, "
        "to_apply=main, backend_config=\"{\\\"known_trip_count\\\":{\\\"n\\\":\\\"7\\\"}}\"\n"
        "  p = s8[<=4,?]{1,0} parameter(2), sharding={devices=[2,1]0,1}, "
        "frontend_attributes={_xla=\"y\"}\n"
        "  q = (s16[1], s64[2], u32[3], f16[4], f64[5]) parameter(3)\n"
        "  ROOT t = (f32[2,3,8,16], (s4[], u8[1], f8e4m3fn[2], f8e5m2[3], pred[])) tuple(c, s)\n"
        "}\n";
    hlo_module *m = parse_str(s);
    assert_non_null(m);
    assert_int_equal(m->num_partitions, 8);
    hlo_comp *c = m->entry;
    const hlo_instr *a = hlo_find_instr(c, "a");
    assert_int_equal(a->shape.memory_space, 1);
    assert_string_equal(a->shape.tiling, "T(8,128)S(1)");
    assert_int_equal(a->shape.minor_to_major[0], 3);
    const hlo_instr *cv = hlo_find_instr(c, "c");
    assert_int_equal(cv->window.n, 2);
    assert_int_equal(cv->window.d[1].stride, 2);
    assert_int_equal(cv->window.d[1].pad_hi, -1);
    assert_int_equal(cv->window.d[1].rhs_dilate, 2);
    assert_int_equal(cv->dim_labels.lhs_feature, 3);
    assert_int_equal(cv->dim_labels.rhs_out, 3);
    assert_int_equal(cv->dim_labels.rhs_spatial[1], 1);
    const hlo_instr *sl = hlo_find_instr(c, "s");
    assert_int_equal(sl->nslice, 4);
    assert_int_equal(sl->slice[3].stride, 2);
    assert_int_equal(sl->slice[1].start, 1);
    const hlo_instr *g = hlo_find_instr(c, "g");
    /* iota(8) as [4,2], transposed: 0 2 4 6 1 3 5 7, in groups of 4 */
    assert_int_equal(g->replica_groups.ngroups, 2);
    assert_int_equal(g->replica_groups.size, 4);
    static const int64_t want[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    for (int i = 0; i < 8; i++)
        assert_int_equal(g->replica_groups.ids[i], want[i]);
    assert_int_equal(g->channel_id, 7);
    assert_string_equal(g->meta.op_name, "a/b\"c\nd");
    assert_int_equal(g->meta.source_line, 12);
    const hlo_instr *r = hlo_find_instr(c, "r");
    assert_int_equal(r->replica_groups.ngroups, 4);
    assert_int_equal(r->known_trip_count, 7);
    assert_ptr_equal(r->to_apply, c);
    const hlo_instr *p = hlo_find_instr(c, "p");
    assert_int_equal(p->shape.et, HLO_ET_S8);
    assert_int_equal(p->shape.dynamic, 3);
    assert_string_equal(p->sharding, "{devices=[2,1]0,1}");
    assert_string_equal(p->frontend_attributes, "{_xla=\"y\"}");
    const hlo_instr *q = hlo_find_instr(c, "q");
    static const hlo_etype qt[5] = {HLO_ET_S16, HLO_ET_S64, HLO_ET_U32, HLO_ET_F16, HLO_ET_F64};
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(q->shape.tuple[i].et, qt[i]);
    const hlo_instr *t = c->root;
    assert_int_equal(t->shape.et, HLO_ET_TUPLE);
    assert_int_equal(t->shape.tuple[1].tuple[2].et, HLO_ET_F8E4M3FN);
    assert_int_equal(t->shape.tuple[1].tuple[3].et, HLO_ET_F8E5M2);
    hlo_module_free(m);
}

static void test_hlo_errors_name_line_and_column(void **state)
{
    (void)state;
    expect_error("HloModule m\nENTRY e {\n  a = f32[2] parameter(0)\n  b = f32[2 add(a, a)\n}\n",
                 "t.hlo:4:13: expected ',' or ']' in the dimensions, found 'add'");
    expect_error("HloModule m\nENTRY e {\n  a = f33[2] parameter(0)\n}\n",
                 "t.hlo:3:7: expected a shape");
    expect_error("HloModule m\nENTRY e {\n  a = f32[2] add(a, zz)\n}\n",
                 "operand 'zz' of 'a' is not defined");
    expect_error(
        "HloModule m\nENTRY e {\n  a = f32[2] all-reduce(a), replica_groups=[2,3]<=[8]\n}\n",
        "t.hlo:3:44: iota replica groups [2,3] do not cover 8 devices");
    expect_error("HloModule m\nENTRY e {\n  a = f32[2] parameter(0), metadata={op_name=\"x}\n}\n",
                 "t.hlo:3:46: expected '\"' closing the string opened here, found end of input");
    expect_error("HloModule m\nENTRY e {\n  a = f32[2] call(), to_apply=nowhere\n}\n",
                 "t.hlo:3:31: no computation named 'nowhere'");
    expect_error("", "t.hlo:1:1: expected 'HloModule', found end of input");
}

/* 1 if msg is one line "t.hlo:LINE:COL: WHAT" with LINE and COL within the n bytes of text
 * (a column may point one past a line's last byte: the end of input). */
static int located(const char *msg, const char *text, size_t n)
{
    unsigned long line, col;
    char *end;
    if (strchr(msg, '\n') || strncmp(msg, "t.hlo:", 6))
        return 0;
    line = strtoul(msg + 6, &end, 10);
    if (end == msg + 6 || *end != ':')
        return 0;
    const char *c = end + 1;
    col = strtoul(c, &end, 10);
    if (end == c || strncmp(end, ": ", 2) || !end[2] || line < 1 || col < 1)
        return 0;
    unsigned long nl = 1, len = 0, cur = 0; /* lines of the text; length of line `line` */
    for (size_t i = 0; i < n; i++) {
        if (nl == line)
            cur++;
        if (text[i] == '\n' && nl++ == line)
            len = cur;
    }
    if (nl == line)
        len = cur;
    return line <= nl && col <= len + 1;
}

/* A byte of an HLO word (hlo_lex.c: names, numbers, opcodes, `3x3`, `1e-05`). */
static int word_byte(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("_.$%+*?#-", c));
}

/* Every test module cut before and after each of its tokens (and inside every run of
 * punctuation): each syntactic element the modules hold truncated - header attributes,
 * comments, signatures, shapes, layouts, tiling, tuples, operands, every attribute kind,
 * strings, braces; and every 17th byte replaced by a character that breaks the grammar: one
 * line naming file:line:column within the text (or the module parses), never a crash. */
static void test_hlo_truncated_and_corrupted_modules_fail_cleanly(void **state)
{
    (void)state;
    static const char *files[] = {MOD("mlp_fwd.hlo"),           MOD("mlp_train.hlo"),
                                  MOD("transformer_layer.hlo"), MOD("spmd_fsdp_tp.hlo"),
                                  MOD("convnet.hlo"),           MOD("strided_groups.hlo")};
    for (unsigned f = 0; f < sizeof files / sizeof *files; f++) {
        FILE *fp = fopen(files[f], "rb");
        assert_non_null(fp);
        static char buf[1 << 17];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        unsigned fails = 0, parsed = 0;
        for (size_t cut = 0; cut < n; cut++) {
            if (cut && word_byte(buf[cut - 1]) && word_byte(buf[cut]))
                continue; /* inside a word: the cut at its end truncates the same token */
            err e;
            hlo_module *m = hlo_parse(buf, cut, "t.hlo", &e);
            if (m) {
                parsed++;
                hlo_module_free(m);
                continue;
            }
            fails++;
            if (!located(e.msg, buf, cut))
                fail_msg("%s cut at %zu: '%s'", files[f], cut, e.msg);
        }
        /* only cuts between computations (or in trailing blanks) leave a whole module */
        assert_true(fails > 0);
        assert_true(parsed < n / 100 + 10);
        static char mod[1 << 17];
        for (size_t i = 0; i < n; i += 17) {
            memcpy(mod, buf, n);
            mod[i] = "{)=,\"["[i % 6];
            err e;
            hlo_module *m = hlo_parse(mod, n, "t.hlo", &e);
            if (m)
                hlo_module_free(m);
            else if (!located(e.msg, mod, n))
                fail_msg("%s byte %zu corrupted: '%s'", files[f], i, e.msg);
        }
    }
}

/* A 2 MB module (the layer's computations repeated under new names) parses and is costed:
 * every copy is a computation of its own (speed is measured by tools/bench.sh, not here). */
static void test_hlo_two_megabyte_module_parses_every_copy(void **state)
{
    (void)state;
    FILE *fp = fopen(MOD("transformer_layer.hlo"), "rb");
    assert_non_null(fp);
    static char src[1 << 17];
    size_t n = fread(src, 1, sizeof src, fp);
    fclose(fp);
    src[n] = '\0';
    /* the body without its header and entry, renamed per copy, then the original */
    const char *body = strstr(src, "region_add"), *entry = strstr(src, "ENTRY");
    assert_non_null(body);
    size_t blen = (size_t)(entry - body), cap = 3u << 20, len = 0;
    char *big = malloc(cap);
    assert_non_null(big);
    len += (size_t)snprintf(big, cap, "HloModule big\n");
    unsigned copies = 0;
    for (unsigned k = 0; len + 2 * blen < 2u << 20; k++, copies++) {
        /* suffix every computation name of the copy: _k after "region_add" etc. */
        for (size_t i = 0; i < blen; i++) {
            big[len++] = body[i];
            if (i + 2 < blen && body[i + 1] == ' ' && body[i + 2] == '(' &&
                (isalnum((unsigned char)body[i]) || body[i] == '_'))
                len += (size_t)snprintf(big + len, cap - len, "_%u", k);
        }
    }
    len += (size_t)snprintf(big + len, cap - len, "%s", body);
    assert_true(len > 2000000);
    err e;
    hlo_module *m = hlo_parse(big, len, "big.hlo", &e);
    if (!m)
        fprintf(stderr, "%s\n", e.msg);
    assert_non_null(m);
    hlo_plan p;
    hlo_sem_opts o = {.dims = {1, 1, 1}};
    assert_int_equal(hlo_analyze(m, &o, &p, &e), 0);
    assert_true(copies > 100);
    assert_true(m->ncomps > copies); /* each copy adds at least one computation */
    hlo_plan_fini(&p);
    hlo_module_free(m);
    free(big);
}

/* ---- semantics: closed forms ----------------------------------------------------------- */

static void test_hlo_mlp_forward_flops_match_gen_mlp(void **state)
{
    (void)state;
    hlo_plan p;
    analyze(MOD("mlp_fwd.hlo"), 1, 1, &p);
    assert_int_equal(p.mxu_flops, 2ull * 256 * (512 * 1024 + 1024 * 1024));
    assert_int_equal(p.ops_by_cls[HLO_CLS_MATMUL], 2);
    /* the fused tanh and convert are the first matmul's epilogue: 2 x 256 x 1024 ops */
    assert_int_equal(p.items[0].vtrans, 256 * 1024);
    assert_int_equal(p.items[0].velem, 256 * 1024);
    /* HBM of the fusion: operands + result only */
    assert_int_equal(p.items[0].bytes_in, 2 * (256 * 512 + 512 * 1024));
    assert_int_equal(p.items[0].bytes_out, 2 * 256 * 1024);
    assert_non_null(strstr(p.items[0].region, "layer0"));
    hlo_plan_fini(&p);
}

static void test_hlo_mlp_training_step_flops(void **state)
{
    (void)state;
    hlo_plan p;
    analyze(MOD("mlp_train.hlo"), 1, 1, &p);
    uint64_t want = 2ull * 128 * (784 * 512 * 2 + 512 * 512 * 3 + 512 * 10 * 3);
    assert_int_equal(p.mxu_flops, want);
    assert_int_equal(p.ops_by_cls[HLO_CLS_MATMUL], 8);
    assert_int_equal(p.coll_bytes, 0);
    assert_true(p.trans_ops >= 2 * 128 * 10);
    hlo_plan_fini(&p);
}

static void test_hlo_transformer_layer_fwd_bwd_flops(void **state)
{
    (void)state;
    hlo_plan p;
    analyze(MOD("transformer_layer.hlo"), 1, 1, &p);
    uint64_t P = 2ull * 512 * (512 * 1536 + 512 * 512 + 512 * 2048 + 2048 * 512);
    uint64_t A = 2ull * 16 * 256 * 256 * 64;
    assert_int_equal(p.mxu_flops, 3 * P + 6 * A);
    hlo_plan_fini(&p);
}

static void test_hlo_convnet_flops(void **state)
{
    (void)state;
    hlo_plan p;
    analyze(MOD("convnet.hlo"), 1, 1, &p);
    uint64_t f = 2ull * 32 * 32 * 32 * 32 * 27     /* 3x3, 3 -> 32 */
                 + 2ull * 32 * 16 * 16 * 64 * 288  /* 3x3 stride 2, 32 -> 64 */
                 + 2ull * 32 * 16 * 16 * 64 * 9    /* depthwise 3x3 */
                 + 2ull * 32 * 16 * 16 * 128 * 64  /* pointwise */
                 + 3 * 2ull * 32 * 8192 * 10       /* dense fwd, dW, dx */
                 + 2ull * 64 * 128 * 16 * 16 * 32  /* pointwise dW */
                 + 2ull * 32 * 16 * 16 * 64 * 128; /* pointwise dx */
    assert_int_equal(p.mxu_flops, f);
    assert_int_equal(p.ops_by_cls[HLO_CLS_CONV], 6); /* 5 + the conv-relu fusion */
    /* the depthwise convolution: 64 groups of one input channel each */
    const hlo_item *dw = &p.items[2];
    assert_int_equal(dw->batch, 64);
    assert_int_equal(dw->k, 9);
    assert_int_equal(dw->n, 1);
    hlo_plan_fini(&p);
}

static void test_hlo_spmd_step_flops_collectives_and_axes(void **state)
{
    (void)state;
    hlo_plan p;
    analyze(MOD("spmd_fsdp_tp.hlo"), 4, 2, &p);
    const uint64_t MiB2 = 2ull << 20;
    assert_int_equal(p.mxu_flops, 4ull * 6 * 2 * 1024 * 1024 * 1024);
    uint64_t ag = 0, ar = 0, rs = 0, nag = 0, nwait = 0;
    for (size_t i = 0; i < p.nitems; i++) {
        const hlo_item *it = &p.items[i];
        if (it->cls == HLO_CLS_WAIT)
            nwait++;
        if (it->cls != HLO_CLS_COLL)
            continue;
        assert_false(it->p2p);
        if (it->coll_op == ISA_OP_ICI_ALLGATHER) {
            ag += it->coll_bytes;
            nag++;
            assert_int_equal(it->axes, 2); /* FSDP groups {0,4},{1,5}.. run along y */
            assert_true(it->token > 0);
        } else if (it->coll_op == ISA_OP_ICI_ALLREDUCE) {
            ar += it->coll_bytes;
            assert_int_equal(it->axes, it->coll_bytes == 4 ? 3 : 1); /* loss: all; TP: x */
        } else if (it->coll_op == ISA_OP_ICI_REDUCESCATTER) {
            rs += it->coll_bytes;
            assert_int_equal(it->axes, 2);
        }
    }
    assert_int_equal(nag, 16);
    assert_int_equal(ag, 16 * MiB2);
    assert_int_equal(ar, 8 * MiB2 + 4);
    assert_int_equal(rs, 8 * MiB2);
    /* every async start has its done: 16 all-gathers, 8 all-reduces, 4 reduce-scatters */
    assert_int_equal(nwait, 28);
    hlo_plan_fini(&p);
}

static void test_hlo_trip_count_from_counter_and_constant(void **state)
{
    (void)state;
    err e;
    hlo_module *m = hlo_parse_file(MOD("spmd_fsdp_tp.hlo"), &e);
    assert_non_null(m);
    const hlo_instr *w1 = hlo_find_instr(m->entry, "while.1");
    const hlo_instr *w2 = hlo_find_instr(m->entry, "while.2");
    assert_int_equal(hlo_trip_count(w1), 4); /* known_trip_count */
    assert_int_equal(w2->known_trip_count, -1);
    assert_int_equal(hlo_trip_count(w2), 4); /* i < 4 from i = 0 by 1 */
    hlo_module_free(m);
    const char *s =
        "HloModule m\n"
        "c { p = (s32[]) parameter(0)\n i = s32[] get-tuple-element(p), index=0\n"
        " k = s32[] constant(10)\n ROOT lt = pred[] compare(k, i), direction=GT }\n"
        "b { p = (s32[]) parameter(0)\n i = s32[] get-tuple-element(p), index=0\n"
        " two = s32[] constant(2)\n a = s32[] add(i, two)\n ROOT t = (s32[]) tuple(a) }\n"
        "ENTRY e { z = s32[] constant(3)\n t = (s32[]) tuple(z)\n"
        " ROOT w = (s32[]) while(t), condition=c, body=b }\n";
    m = parse_str(s);
    assert_non_null(m);
    assert_int_equal(hlo_trip_count(m->entry->root), 4); /* 3, 5, 7, 9 */
    hlo_module_free(m);
}

static void test_hlo_non_axis_groups_and_custom_calls_warn_once(void **state)
{
    (void)state;
    const char *s = "HloModule m\nENTRY e {\n a = f32[1024] parameter(0)\n"
                    " b = f32[1024] all-reduce(a), replica_groups={{0,3},{1,2}}, to_apply=e\n"
                    " c = f32[1024] custom-call(b), custom_call_target=\"my_kernel\"\n"
                    " d = f32[1024] custom-call(c), custom_call_target=\"my_kernel\"\n"
                    " ROOT f = f32[1024] custom-call(d), custom_call_target=\"Sharding\"\n}\n";
    hlo_module *m = parse_str(s);
    assert_non_null(m);
    hlo_plan p;
    hlo_sem_opts o = {.dims = {4, 1, 1}};
    err e;
    assert_int_equal(hlo_analyze(m, &o, &p, &e), 0);
    assert_true(p.items[0].p2p);
    assert_int_equal(p.items[0].axes, 1); /* {0,3},{1,2} on 4x1: both span x */
    int custom = 0, groups = 0;
    for (unsigned i = 0; i < p.nwarn; i++) {
        custom += strstr(p.warn[i], "'my_kernel' (2x)") != NULL;
        groups += strstr(p.warn[i], "not whole torus axes; run as the collective over every "
                                    "axis they span") != NULL;
    }
    assert_int_equal(custom, 1);
    assert_int_equal(groups, 1);
    assert_int_equal(p.ops_by_cls[HLO_CLS_CUSTOM], 2);
    hlo_plan_fini(&p);
    hlo_module_free(m);
}

/* A conditional costs its largest branch (by FLOPs + element-ops + bytes) and says so once
 * per instruction with its count; both spellings of the branches are read. */
static void test_hlo_conditional_costs_the_largest_branch(void **state)
{
    (void)state;
    const char *s =
        "HloModule m\n"
        "small { p = f32[64,64] parameter(0)\n"
        " ROOT d = f32[64,64] dot(p, p), lhs_contracting_dims={1}, rhs_contracting_dims={0} }\n"
        "big { p = f32[64,64] parameter(0)\n"
        " w = f32[64,256] iota(), iota_dimension=1\n"
        " ROOT d = f32[64,256] dot(p, w), lhs_contracting_dims={1}, rhs_contracting_dims={0} }\n"
        "none { ROOT p = f32[64,64] parameter(0) }\n"
        "ENTRY e { i = s32[] parameter(0)\n b = pred[] parameter(1)\n"
        " x = f32[64,64] parameter(2)\n"
        " c1 = f32[64,64] conditional(i, x, x, x), branch_computations={small, big, none}\n"
        " c2 = f32[64,64] conditional(b, c1, c1), true_computation=none, "
        "false_computation=small\n"
        " ROOT c3 = f32[64,64] conditional(i, c2, c2, c2), branch_computations={none, big, small} "
        "}\n";
    hlo_module *m = parse_str(s);
    assert_non_null(m);
    hlo_plan p;
    hlo_sem_opts o = {.dims = {1, 1, 1}};
    err e;
    assert_int_equal(hlo_analyze(m, &o, &p, &e), 0);
    /* big twice (c1, c3), small once (c2): 2 x 64 x 64 x 256 and 2 x 64^3 */
    assert_int_equal(p.mxu_flops, 2 * (2ull * 64 * 64 * 256) + 2ull * 64 * 64 * 64);
    int cond = 0;
    for (unsigned i = 0; i < p.nwarn; i++)
        cond += strstr(p.warn[i], "(1x): the largest branch is costed") != NULL;
    assert_int_equal(cond, 3);
    hlo_plan_fini(&p);
    hlo_module_free(m);
}

/* A module with no computation marked ENTRY runs its last one (XLA's rule), with a warning:
 * a module cut between two computations is otherwise a valid, smaller program. */
static void test_hlo_module_without_entry_runs_the_last_computation_and_warns(void **state)
{
    (void)state;
    hlo_module *m = parse_str("HloModule m\nfirst { ROOT a = f32[8] parameter(0) }\n"
                              "second { ROOT b = f32[8] parameter(0) }\n");
    assert_non_null(m);
    assert_string_equal(m->entry->name, "second");
    hlo_plan p;
    hlo_sem_opts o = {.dims = {1, 1, 1}};
    err e;
    assert_int_equal(hlo_analyze(m, &o, &p, &e), 0);
    assert_int_equal(p.nwarn, 1);
    assert_non_null(strstr(p.warn[0], "no computation is marked ENTRY: the last one, 'second'"));
    hlo_plan_fini(&p);
    hlo_module_free(m);
}

static void test_hlo_self_calling_computation_is_an_error(void **state)
{
    (void)state;
    hlo_module *m = parse_str("HloModule m\nENTRY e {\n ROOT a = f32[] call(), to_apply=e\n}\n");
    assert_non_null(m);
    hlo_plan p;
    hlo_sem_opts o = {.dims = {1, 1, 1}};
    err e;
    assert_int_equal(hlo_analyze(m, &o, &p, &e), -1);
    assert_non_null(strstr(e.msg, "nested deeper"));
    hlo_module_free(m);
}

/* ---- the IR frontend (hlo_ir.c) -------------------------------------------------------- */

static cfg *load_cfg(const char *preset, const char *dims)
{
    cfg *c = malloc(sizeof *c);
    err e;
    assert_non_null(c);
    cfg_defaults(c);
    if (cfg_load(c, preset, NULL, &e) || (dims && cfg_set(c, "ici.dims", dims, "-p", &e)))
        fail_msg("%s", e.msg);
    return c;
}

/* Builds, tiles and plans the IR of the last analyze()d module on config c. */
static ir *import_ir(const hlo_plan *pl, const cfg *c)
{
    err e;
    ir *p = ir_new(c, &e);
    assert_non_null(p);
    int r = hlo_build_ir(p, analyzed, pl, &e);
    if (!r)
        r = lower_tile(p, &e) || lower_mem(p, c->hbm_bytes, &e);
    if (r)
        fail_msg("%s", e.msg);
    return p;
}

static uint64_t ir_mxu_flops(const ir *p)
{
    uint64_t f = 0;
    for (int i = 0; i < ir_nops(p); i++) {
        const ir_op *o = ir_op_get(p, i);
        if (o->code == IR_MATMUL)
            f += 2 * o->batch * o->m * o->n * o->k;
    }
    return f;
}

/* The MLP: two matmuls, the fused tanh an epilogue of the first (the convert is the
 * kernel's cast), inputs and the output persistent, the hidden activation a temporary. */
static void test_hlo_ir_mlp_is_two_matmuls_with_a_fused_tanh(void **state)
{
    (void)state;
    hlo_plan pl;
    analyze(MOD("mlp_fwd.hlo"), 1, 1, &pl);
    cfg *c = load_cfg("v5e", NULL);
    ir *p = import_ir(&pl, c);
    assert_int_equal(ir_nops(p), 2);
    const ir_op *a = ir_op_get(p, 0), *b = ir_op_get(p, 1);
    assert_int_equal(a->code, IR_MATMUL);
    assert_int_equal(b->code, IR_MATMUL);
    assert_int_equal(a->nvops, 1);
    assert_int_equal(a->vops[0].op, ISA_OP_V_TANH);
    assert_int_equal(b->nvops, 0);
    assert_int_equal(ir_mxu_flops(p), pl.mxu_flops);
    /* the hidden activation is what the first writes and the second reads */
    assert_int_equal(ir_root(p, a->out[0]), ir_root(p, b->in[0]));
    assert_false(ir_tensor_get(p, ir_root(p, a->out[0]))->persistent);
    assert_true(ir_tensor_get(p, ir_root(p, a->in[0]))->persistent);
    assert_true(ir_tensor_get(p, ir_root(p, b->out[0]))->persistent);
    assert_non_null(strstr(a->region, "layer0"));
    assert_non_null(strstr(b->region, "layer1"));
    ir_free(p);
    free(c);
    hlo_plan_fini(&pl);
}

/* Every test module: the IR's matmul FLOPs (convolutions after lower_tile) equal the plan's
 * closed-form FLOPs on every preset it is imported for here. */
static void test_hlo_ir_flops_equal_the_plan(void **state)
{
    (void)state;
    static const char *const mods[] = {"mlp_train.hlo", "transformer_layer.hlo", "convnet.hlo"};
    static const char *const presets[] = {"v4", "v5e", "v7"};
    for (unsigned i = 0; i < 3; i++)
        for (unsigned j = 0; j < 3; j++) {
            char path[512];
            snprintf(path, sizeof path, "%s/tests/hlo/%s", TPUSIM_SOURCE_DIR, mods[i]);
            hlo_plan pl;
            analyze(path, 1, 1, &pl);
            cfg *c = load_cfg(presets[j], NULL);
            ir *p = import_ir(&pl, c);
            assert_int_equal(ir_mxu_flops(p), pl.mxu_flops);
            ir_free(p);
            free(c);
            hlo_plan_fini(&pl);
        }
}

/* The SPMD step: one IR collective per HLO collective with the plan's bytes, every async
 * start waited for by its token, and the memory plan reusing dead activations' space. */
static void test_hlo_ir_spmd_collectives_tokens_and_memory_plan(void **state)
{
    (void)state;
    hlo_plan pl;
    analyze(MOD("spmd_fsdp_tp.hlo"), 4, 2, &pl);
    cfg *c = load_cfg("v5p", "4x2x1");
    ir *p = import_ir(&pl, c);
    uint64_t bytes = 0, ncoll = 0;
    for (int i = 0; i < ir_nops(p); i++) {
        const ir_op *o = ir_op_get(p, i);
        if (o->code != IR_COLLECTIVE)
            continue;
        ncoll++;
        bytes += o->bytes;
        int waited = 0;
        for (int j = i + 1; j < ir_nops(p) && !waited; j++)
            waited = ir_op_get(p, j)->code == IR_WAIT && ir_op_get(p, j)->token == o->token;
        assert_true(waited);
    }
    assert_int_equal(ncoll, pl.ops_by_cls[HLO_CLS_COLL]);
    assert_int_equal(bytes, pl.coll_bytes);
    assert_int_equal(ir_mxu_flops(p), pl.mxu_flops);
    const ir_mem_plan *mp = ir_mem_get(p);
    assert_true(mp->peak_bytes > 0);
    assert_true(mp->peak_bytes < mp->naive_bytes);
    ir_free(p);
    free(c);
    hlo_plan_fini(&pl);
}

/* ---- replica groups routed point to point ---------------------------------------------- */

/* The plan of a one-collective module: `op` of f32[n] with attribute text `attr`, on dims. */
static void analyze_coll(const char *op, uint64_t n, uint64_t rn, const char *attr, unsigned x,
                         unsigned y, hlo_plan *p)
{
    char s[1024];
    snprintf(s, sizeof s,
             "HloModule m\nadd { a = f32[] parameter(0)\n b = f32[] parameter(1)\n"
             " ROOT c = f32[] add(a, b) }\nENTRY e {\n a = f32[%llu]{0} parameter(0)\n"
             " ROOT b = f32[%llu]{0} %s(a), channel_id=1, %s\n}\n",
             (unsigned long long)n, (unsigned long long)rn, op, attr);
    hlo_module_free(analyzed);
    analyzed = parse_str(s);
    assert_non_null(analyzed);
    hlo_sem_opts o = {.dims = {x, y, 1}};
    err e;
    if (hlo_analyze(analyzed, &o, p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p->ops_by_cls[HLO_CLS_COLL], 1);
}

static int warned(const hlo_plan *p, const char *what)
{
    for (unsigned i = 0; i < p->nwarn; i++)
        if (strstr(p->warn[i], what))
            return 1;
    return 0;
}

static void expect_ring(const char *op, const char *groups, unsigned x, unsigned y, unsigned axis,
                        unsigned stride, unsigned group)
{
    hlo_plan p;
    char attr[128];
    snprintf(attr, sizeof attr, "replica_groups=%s, dimensions={0}, to_apply=add", groups);
    analyze_coll(op, 1024, 1024, attr, x, y, &p);
    const hlo_item *it = &p.items[0];
    assert_true(it->p2p);
    assert_int_equal(it->route.axis, axis);
    assert_int_equal(it->route.stride, stride);
    assert_int_equal(it->route.group, group);
    assert_int_equal(it->route.shift, 0);
    assert_int_equal(it->axes, 1u << axis);
    assert_true(warned(&p, "routed point to point as one-hop ici.send/ici.recv steps"));
    assert_false(warned(&p, "run as the collective over every axis"));
    hlo_plan_fini(&p);
}

static void expect_not_routed(const char *groups, unsigned x, unsigned y)
{
    hlo_plan p;
    char attr[128];
    snprintf(attr, sizeof attr, "replica_groups=%s, to_apply=add", groups);
    analyze_coll("all-reduce", 1024, 1024, attr, x, y, &p);
    assert_true(p.items[0].p2p);
    assert_int_equal(p.items[0].route.stride, 0);
    assert_true(warned(&p, "run as the collective over every axis they span (only strided rings"));
    hlo_plan_fini(&p);
}

/* Groups that are arithmetic progressions along one axis covering every chip are rings routed
 * point to point, in the explicit and the iota form alike; whole axes are not, and other
 * groups keep the collective over the axes they span with the warning that says which are. */
static void test_hlo_strided_ring_groups_are_routed_point_to_point(void **state)
{
    (void)state;
    expect_ring("all-gather", "{{0,2},{1,3}}", 4, 1, 0, 2, 2);
    expect_ring("all-gather", "[2,2]<=[2,2]T(1,0)", 4, 1, 0, 2, 2);
    expect_ring("all-gather", "{{2,0},{3,1}}", 4, 1, 0, 2, 2); /* any member order */
    expect_ring("all-gather", "{{0,1},{2,3}}", 4, 1, 0, 1, 2);
    expect_ring("reduce-scatter", "[2,4]<=[4,2]T(1,0)", 8, 1, 0, 2, 4);
    expect_ring("all-to-all", "{{0,4},{1,5},{2,6},{3,7}}", 2, 4, 1, 2, 2); /* y: (0,0),(0,2) */
    expect_ring("all-reduce", "{{0,2},{1,3},{4,6},{5,7}}", 4, 2, 0, 2, 2);
    expect_not_routed("{{0,3},{1,2}}", 4, 1);             /* strides 3 and 1 */
    expect_not_routed("{{0,2}}", 4, 1);                   /* not every chip */
    expect_not_routed("{{0,5},{1,4},{2,7},{3,6}}", 4, 2); /* two axes */
    expect_not_routed("{{0,1},{1,2},{2,3},{3,0}}", 4, 1); /* a chip in two groups */
    /* whole axes keep the collective */
    hlo_plan p;
    analyze_coll("all-gather", 1024, 2048, "replica_groups={{0,4},{1,5},{2,6},{3,7}}", 4, 2, &p);
    assert_false(p.items[0].p2p);
    assert_int_equal(p.items[0].route.stride, 0);
    assert_int_equal(p.items[0].axes, 2);
    hlo_plan_fini(&p);
}

/* A collective-permute that moves every source the same number of places along one axis is
 * routed as that shift; others keep the all-to-all. */
static void test_hlo_uniform_shift_permute_is_routed(void **state)
{
    (void)state;
    hlo_plan p;
    analyze_coll("collective-permute", 1024, 1024, "source_target_pairs={{0,1},{1,2},{2,3},{3,0}}",
                 4, 1, &p);
    assert_int_equal(p.items[0].route.shift, 1);
    assert_int_equal(p.items[0].route.pairs, IR_SHIFT_FWD | IR_SHIFT_WRAP);
    assert_true(warned(&p, "collective-permute: a shift by 1 along x (1x): routed point to point"));
    hlo_plan_fini(&p);
    analyze_coll("collective-permute", 1024, 1024, "source_target_pairs={{0,2},{1,3}}", 2, 4, &p);
    assert_int_equal(p.items[0].route.axis, 1);
    assert_int_equal(p.items[0].route.shift, 1);
    assert_int_equal(p.items[0].route.pairs, IR_SHIFT_FWD);
    hlo_plan_fini(&p);
    analyze_coll("collective-permute", 1024, 1024, "source_target_pairs={{0,1},{1,3}}", 4, 1, &p);
    assert_int_equal(p.items[0].route.shift, 0);
    assert_int_equal(p.items[0].coll_op, ISA_OP_ICI_SEND);
    hlo_plan_fini(&p);
}

typedef struct replay {
    uint64_t end_ps, busy_ps, ici_bytes, send_bytes, allgathers;
    double hop_ps, byte_ps; /* the one-hop transfer's terms on this config */
} replay;

static uint64_t stat_of(const sim_run *s, const char *group, const char *name)
{
    const stats_entry *x = stats_find(s->stats, group, name);
    if (!x)
        fail_msg("no counter %s.%s", group, name);
    return (uint64_t)stats_value(x);
}

/* Import module text m on preset/dims/wrap and replay the trace on one chip (symmetric). */
static void import_replay(const char *text, const char *preset, const char *dims, const char *wrap,
                          replay *r)
{
    err e;
    hlo_module *m = strncmp(text, "HloModule", 9) ? hlo_parse_file(text, &e) : parse_str(text);
    assert_non_null(m);
    cfg *c = load_cfg(preset, dims);
    if (cfg_set(c, "ici.wrap", wrap, "-p", &e) || cfg_check(c, &e))
        fail_msg("%s", e.msg);
    hlo_sem_opts o;
    hlo_plan pl;
    char path[64];
    snprintf(path, sizeof path, "/tmp/tpusim_hlo_%d.tpt", (int)getpid());
    if (hlo_sem_opts_from_cfg(&o, c, &e) || hlo_analyze(m, &o, &pl, &e) ||
        hlo_import_trace(m, &pl, c, path, "test", NULL, &e))
        fail_msg("%s", e.msg);
    sim_run s;
    memset(&s, 0, sizeof s);
    if (sim_run_cfg(&s, c, path, NULL, &e))
        fail_msg("%s", e.msg);
    r->end_ps = stat_of(&s, "core", "end_ps");
    r->busy_ps = stat_of(&s, "ici0", "busy_ps");
    r->ici_bytes = stat_of(&s, "ici0", "bytes");
    r->send_bytes = stat_of(&s, "ici0", "send_bytes");
    r->allgathers = stat_of(&s, "ici0", "allgather_count");
    r->hop_ps = c->ici_hop_latency_ns * 1000.0;
    r->byte_ps = 1e12 / cfg_ici_link_bps(c);
    sim_run_fini(&s);
    unlink(path);
    free(c);
    hlo_plan_fini(&pl);
    hlo_module_free(m);
}

/* An all-gather of a 1 MiB shard over two chips on v7 (1000 ns a hop, 100 GB/s a link, half
 * of it a device's): the routed steps take hops x (hop latency + chunk / bandwidth), chunk =
 * the 1 MiB shard, and send hops x chunk bytes. {0,2},{1,3} on a 4-chip ring: one step of 2
 * hops round the closed ring; on a line the ring does not close: 2 hops along +x, then 2
 * along -x. {0,1},{2,3}: a line on either (1 hop each way). Whole axes: the collective. */
static void check_ag(const char *groups, const char *wrap, unsigned hops)
{
    char s[1024];
    snprintf(s, sizeof s,
             "HloModule m, num_partitions=4\nENTRY e {\n a = f32[262144]{0} parameter(0)\n"
             " ROOT b = f32[524288]{0} all-gather(a), channel_id=1, replica_groups=%s, "
             "dimensions={0}, use_global_device_ids=true\n}\n",
             groups);
    replay r;
    import_replay(s, "v7", "4", wrap, &r);
    const uint64_t chunk = 1u << 20;
    assert_true(r.byte_ps == 20.0 && r.hop_ps == 1e6); /* v7: 2 devices share 100 GB/s */
    assert_int_equal(r.ici_bytes, hops * chunk);
    assert_int_equal(r.send_bytes, hops * chunk);
    assert_int_equal(r.allgathers, 0);
    assert_int_equal(r.end_ps, (uint64_t)(hops * (r.hop_ps + chunk * r.byte_ps)));
    assert_int_equal(r.busy_ps, r.end_ps); /* the HBM and vector work hides under the hops */
}

static void test_hlo_routed_all_gather_takes_steps_times_hops_of_one_transfer(void **state)
{
    (void)state;
    check_ag("{{0,2},{1,3}}", "x", 2);
    check_ag("[2,2]<=[2,2]T(1,0)", "x", 2);
    check_ag("{{0,2},{1,3}}", "none", 4);
    check_ag("[2,2]<=[2,2]T(1,0)", "none", 4);
    check_ag("{{0,1},{2,3}}", "x", 2);
    check_ag("{{0,1},{2,3}}", "none", 2);
    /* 43.94 us for {0,2},{1,3} on the torus: 2 x (1 us + 1 MiB x 20 ps) */
    replay r;
    import_replay("HloModule m\nENTRY e {\n a = f32[262144]{0} parameter(0)\n"
                  " ROOT b = f32[1048576]{0} all-gather(a), replica_groups={{0,1,2,3}}, "
                  "dimensions={0}\n}\n",
                  "v7", "4", "x", &r);
    assert_int_equal(r.allgathers, 1);
    assert_int_equal(r.send_bytes, 0);
    /* T_ring(4, 4 MiB) = 3 (h + 4 MiB / 8 t_B) */
    assert_int_equal(r.end_ps, (uint64_t)(3 * (r.hop_ps + (4u << 20) / 8 * r.byte_ps)));
}

/* tests/hlo/strided_groups.hlo on one ring of 8 v5p chips (10 ps a byte): all-gather over
 * {0,4},.. (1 step x 4 hops x 1 MiB), all-reduce over {0,2,4,6},{1,3,5,7} (2 x 3 steps x 2
 * hops x 256 KiB), reduce-scatter over {0,1,2,3},{4,5,6,7} (a line: 3 hops each way x 256
 * KiB), all-to-all over {0,2,4,6},.. (chunks 1, 2, 1 members on: 2 + 4 + 2 hops x 256 KiB),
 * permute by one chip (1 hop x 256 KiB): 31 hops, 10.75 MiB. On a line of 8: 8 + 24 + 6 + 24
 * + 8 = 70 hops, 8 MiB + 62 x 256 KiB. The ICI is busy for exactly hops x h + bytes x t_B. */
static void test_hlo_strided_groups_module_routes_every_collective(void **state)
{
    (void)state;
    hlo_plan p;
    analyze(MOD("strided_groups.hlo"), 8, 1, &p);
    assert_int_equal(p.mxu_flops, 2ull * 256 * 1024 * 1024);
    assert_int_equal(p.coll_bytes, (2u << 20) + (1u << 20) * 3 + (256u << 10));
    for (size_t i = 0; i < p.nitems; i++)
        if (p.items[i].cls == HLO_CLS_COLL)
            assert_true(p.items[i].route.stride || p.items[i].route.shift);
    hlo_plan_fini(&p);
    const uint64_t K256 = 256u << 10;
    replay r;
    import_replay(MOD("strided_groups.hlo"), "v5p", "8x1x1", "x", &r);
    assert_true(r.byte_ps == 10.0);
    assert_int_equal(r.ici_bytes, 4 * (1u << 20) + (12 + 6 + 8 + 1) * K256);
    assert_int_equal(r.busy_ps, (uint64_t)(31 * r.hop_ps + r.ici_bytes * r.byte_ps));
    import_replay(MOD("strided_groups.hlo"), "v5p", "8x1x1", "none", &r);
    assert_int_equal(r.ici_bytes, 8 * (1u << 20) + (24 + 6 + 24 + 8) * K256);
    assert_int_equal(r.busy_ps, (uint64_t)(70 * r.hop_ps + r.ici_bytes * r.byte_ps));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hlo_reads_public_reference_dumps),
        cmocka_unit_test(test_hlo_typed_attributes),
        cmocka_unit_test(test_hlo_errors_name_line_and_column),
        cmocka_unit_test(test_hlo_truncated_and_corrupted_modules_fail_cleanly),
        cmocka_unit_test(test_hlo_two_megabyte_module_parses_every_copy),
        cmocka_unit_test(test_hlo_mlp_forward_flops_match_gen_mlp),
        cmocka_unit_test(test_hlo_mlp_training_step_flops),
        cmocka_unit_test(test_hlo_transformer_layer_fwd_bwd_flops),
        cmocka_unit_test(test_hlo_convnet_flops),
        cmocka_unit_test(test_hlo_spmd_step_flops_collectives_and_axes),
        cmocka_unit_test(test_hlo_trip_count_from_counter_and_constant),
        cmocka_unit_test(test_hlo_non_axis_groups_and_custom_calls_warn_once),
        cmocka_unit_test(test_hlo_conditional_costs_the_largest_branch),
        cmocka_unit_test(test_hlo_module_without_entry_runs_the_last_computation_and_warns),
        cmocka_unit_test(test_hlo_self_calling_computation_is_an_error),
        cmocka_unit_test(test_hlo_ir_mlp_is_two_matmuls_with_a_fused_tanh),
        cmocka_unit_test(test_hlo_ir_flops_equal_the_plan),
        cmocka_unit_test(test_hlo_ir_spmd_collectives_tokens_and_memory_plan),
        cmocka_unit_test(test_hlo_strided_ring_groups_are_routed_point_to_point),
        cmocka_unit_test(test_hlo_uniform_shift_permute_is_routed),
        cmocka_unit_test(test_hlo_routed_all_gather_takes_steps_times_hops_of_one_transfer),
        cmocka_unit_test(test_hlo_strided_groups_module_routes_every_collective),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hlo_module_free(analyzed);
    return failed;
}
