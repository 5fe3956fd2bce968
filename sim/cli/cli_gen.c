/* cli_gen.c - `tpusim gen KIND`: one option table per generator kind drives parsing, the
 * validation messages and the --help text; the generating command line becomes the trace
 * note. The generators are the gen library (gen.h): this file only fills a gen_opts. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "ofile.h"
#include "models.h"

#define GEN_MAX_LONGOPTS 80 /* distinct long options over every kind, plus the common ones */

/* How an option's value is parsed and stored into its gen_opts field. */
typedef enum opt_type {
    OPT_POS,    /* uint64_t > 0, optional K/M/G (x1024) suffix */
    OPT_NONNEG, /* uint64_t >= 0, same syntax */
    OPT_FLAG,   /* int set to 1; takes no value */
    OPT_DTYPE,  /* isa_dtype by name */
    OPT_VOP,    /* int: vector opcode by name without "v." */
    OPT_LIST,   /* comma-separated OPT_POS list into sizes[] / nsizes */
    OPT_AXES,   /* unsigned mask from letters of xyz */
    OPT_MLP,    /* int gen_mlp: swiglu or gelu */
    OPT_REMAT,  /* int gen_remat: none, full, minimal, save-dots */
    OPT_REAL,   /* double > 0 */
    OPT_SCHED,  /* int gen_sched: gpipe, 1f1b */
} opt_type;

/* One option of a kind. `def` is the default as --help shows it: NULL = the value
 * gen_opts_init gives the field (shown for optional valued options), "" = none shown. */
typedef struct gen_opt {
    const char *name; /* long name, without "--" */
    const char *arg;  /* value placeholder in --help (NULL for flags) */
    opt_type type;
    size_t off; /* offsetof(gen_opts, field) */
    int required;
    const char *help; /* '\n' continues on an indented line */
    const char *def;
} gen_opt;

#define F(field) offsetof(gen_opts, field)

/* Options that read the same in several kinds: one row each. */
/* clang-format off */
#define ROW_DTYPE {"dtype", "T", OPT_DTYPE, F(dtype), 0, "datatype", NULL}
#define ROW_HEADS {"heads", "H", OPT_POS, F(heads), 1, "attention heads (must divide D without --head-dim)", NULL}
#define ROW_KV_HEADS {"kv-heads", "G", OPT_POS, F(kv_heads), 0, "key/value heads (grouped-query attention; must\ndivide H; 1 = multi-query)", "H"}
#define ROW_HEAD_DIM {"head-dim", "E", OPT_POS, F(head_dim), 0, "dimension per head", "D/H"}
#define ROW_D_MODEL {"d-model", "D", OPT_POS, F(d_model), 1, "model width", NULL}
#define ROW_D_FF {"d-ff", "F", OPT_POS, F(d_ff), 1, "MLP hidden width", NULL}
#define ROW_SEQUENCES {"batch", "B", OPT_POS, F(batch), 1, "sequences (global, over every chip)", NULL}
#define ROW_MLP {"mlp", "KIND", OPT_MLP, F(mlp), 0, "swiglu (gate, up, down) or gelu (up, down)", "swiglu"}
#define ROW_PARALLEL {"parallel-block", NULL, OPT_FLAG, F(parallel_block), 0, "attention and MLP read one normalised input,\noutputs summed (PaLM)", NULL}
#define ROW_BIAS {"bias", NULL, OPT_FLAG, F(bias), 0, "biases on the projections (fused adds)", NULL}
#define ROW_CMM {"collective-matmul", NULL, OPT_FLAG, F(collective_matmul), 0, "tensor parallelism: split each forward row-parallel\nGEMM into row blocks whose all-reduces overlap the\nnext block (XLA: only when windowed einsum is on)", NULL}
#define ROW_REMAT {"remat", "POLICY", OPT_REMAT, F(remat), 0, "training: none, full (recompute the layer forward),\nminimal (save the projections, recompute norms,\nattention, activation) or\nsave-dots (also the MLP up projection)", "none"}
/* clang-format on */

static const gen_opt gemm_opts[] = {
    {"m", "M", OPT_POS, F(m), 1, "rows of A and C", NULL},
    {"n", "N", OPT_POS, F(n), 1, "columns of B and C", NULL},
    {"k", "K", OPT_POS, F(k), 1, "columns of A, rows of B", NULL},
    {"dtype", "T", OPT_DTYPE, F(dtype), 0, "operand datatype: bf16, int8, fp8, fp32", NULL},
};

static const gen_opt elementwise_opts[] = {
    {"op", "OP", OPT_VOP, F(vop), 1,
     "add sub mul max min fma select exp log rsqrt tanh\nreduce transpose cast", NULL},
    {"elements", "N", OPT_POS, F(elements), 1, "elements per operand", NULL},
    {"dtype", "T", OPT_DTYPE, F(dtype), 0, "datatype: bf16, fp32, int8, fp8", NULL},
};

static const gen_opt conv2d_opts[] = {
    {"batch", "N", OPT_POS, F(batch), 1, "images", NULL},
    {"height", "H", OPT_POS, F(height), 1, "input height", NULL},
    {"width", "W", OPT_POS, F(width), 1, "input width", NULL},
    {"in-channels", "C", OPT_POS, F(in_ch), 1, "input channels", NULL},
    {"out-channels", "K", OPT_POS, F(out_ch), 1, "output channels", NULL},
    {"kernel", "R", OPT_POS, F(kh), 1, "filter height", NULL},
    {"kernel-w", "S", OPT_POS, F(kw), 0, "filter width", "R"},
    {"stride", "U", OPT_POS, F(stride), 0, "stride", NULL},
    {"padding", "D", OPT_NONNEG, F(padding), 0, "zero padding on each side", NULL},
    ROW_DTYPE,
};

static const gen_opt mlp_opts[] = {
    {"layers", "S0,S1,...", OPT_LIST, F(sizes), 1, "layer widths, at least two (S0 is the input)",
     NULL},
    {"batch", "B", OPT_POS, F(batch), 1, "rows of x", NULL},
    ROW_DTYPE,
};

static const gen_opt attention_opts[] = {
    {"batch", "B", OPT_POS, F(batch), 1, "sequences", NULL},
    {"heads", "H", OPT_POS, F(heads), 1, "attention heads", NULL},
    {"seq", "S", OPT_POS, F(seq), 1, "sequence length", NULL},
    {"head-dim", "D", OPT_POS, F(head_dim), 1, "dimension per head", NULL},
    {"causal", NULL, OPT_FLAG, F(causal), 0, "skip fully masked key blocks", NULL},
    ROW_DTYPE,
};

static const gen_opt transformer_opts[] = {
    ROW_SEQUENCES,
    {"seq", "S", OPT_POS, F(seq), 1, "sequence length", NULL},
    ROW_D_MODEL,
    ROW_HEADS,
    ROW_D_FF,
    {"training", NULL, OPT_FLAG, F(training), 0, "forward + backward (default: forward)", NULL},
    ROW_KV_HEADS,
    ROW_HEAD_DIM,
    ROW_MLP,
    ROW_PARALLEL,
    ROW_BIAS,
    ROW_CMM,
    ROW_REMAT,
#define ROWS_MOE                                                                                   \
    {"experts", "E", OPT_POS, F(experts), 0, "mixture of experts: experts per MoE layer", ""},     \
        {"top-k", "K", OPT_POS, F(top_k), 0, "experts each token is routed to", "1"},              \
        {"capacity-factor",                                                                        \
         "C",                                                                                      \
         OPT_REAL,                                                                                 \
         F(capacity),                                                                              \
         0,                                                                                        \
         "expert capacity: ceil(tokens x K x C / E)\ntokens per expert, C >= 1",                   \
         "1.0"},                                                                                   \
        {"expert-parallel",                                                                        \
         "N",                                                                                      \
         OPT_POS,                                                                                  \
         F(ep),                                                                                    \
         0,                                                                                        \
         "experts split N ways; tokens dispatched and\ncombined by all-to-alls over --ep-axes",    \
         "1"},                                                                                     \
        {"ep-axes",    "AXES", OPT_AXES, F(ep_axes), 0, "torus axes of expert parallelism",        \
         "the dp axes"},                                                                           \
        {"moe-every",  "L", OPT_POS,                                                               \
         F(moe_every), 0,   "every L-th layer (after --first-dense) is MoE",                       \
         "1"},                                                                                     \
        {"expert-d-ff", "F", OPT_POS, F(expert_d_ff), 0, "hidden width of each expert", "d-ff"},   \
        {"shared-experts",                                                                         \
         "S",                                                                                      \
         OPT_NONNEG,                                                                               \
         F(shared_experts),                                                                        \
         0,                                                                                        \
         "experts every token runs (DeepSeek)",                                                    \
         "0"},                                                                                     \
        {"first-dense",                                                                            \
         "N",                                                                                      \
         OPT_NONNEG,                                                                               \
         F(first_dense),                                                                           \
         0,                                                                                        \
         "leading dense layers before the first MoE layer",                                        \
         "0"},

    ROWS_MOE ROW_DTYPE,
};

static const gen_opt llm_opts[] = {
    {"layers", "L", OPT_LIST, F(sizes), 1, "decoder layers", NULL},
    ROW_D_MODEL,
    ROW_HEADS,
    ROW_D_FF,
    {"vocab", "V", OPT_POS, F(vocab), 1, "vocabulary size", NULL},
    {"seq", "S", OPT_POS, F(seq), 1, "sequence length (decode: KV cache length)", NULL},
    ROW_SEQUENCES,
    {"decode", NULL, OPT_FLAG, F(decode), 0,
     "one token per sequence against a KV cache of --seq\ntokens (default: a training step)", NULL},
    ROW_KV_HEADS,
    ROW_HEAD_DIM,
    ROW_MLP,
    ROW_PARALLEL,
    {"tied-embedding", NULL, OPT_FLAG, F(tied_embedding), 0,
     "the LM head is the embedding table (shared)", NULL},
    ROW_BIAS,
    ROW_CMM,
    ROW_REMAT,
    ROWS_MOE ROW_DTYPE,
    {"pipeline", "P", OPT_POS, F(pipeline), 0,
     "P pipeline stages of layers/P layers on --pp-axes;\nOUT names one trace per stage "
     "({stage}) or per chip\n({chip})",
     "1"},
    {"microbatches", "M", OPT_POS, F(microbatches), 0, "microbatches per step (--pipeline)", "1"},
    {"schedule", "S", OPT_SCHED, F(schedule), 0, "pipeline schedule: gpipe or 1f1b", "gpipe"},
    {"pp-axes", "AXES", OPT_AXES, F(pp_axes), 0,
     "torus axis of the pipeline stages (exactly P chips)", "z; 2-D: x"},
};
#undef ROWS_MOE

static const gen_opt embedding_opts[] = {
    {"tables", "T", OPT_POS, F(tables), 1, "embedding tables", NULL},
    {"rows", "R", OPT_POS, F(rows), 1, "rows per table", NULL},
    {"dim", "D", OPT_POS, F(dim), 1, "elements per row", NULL},
    {"lookups", "L", OPT_POS, F(lookups), 1, "rows summed per sample and table", NULL},
    {"batch", "B", OPT_POS, F(batch), 1, "samples (global, over every chip)", NULL},
    {"chips", "N", OPT_POS, F(chips), 0,
     "tables sharded over N chips (ici.dims); looked-up\nvectors all-to-all'd over ICI", "1"},
    {"training", NULL, OPT_FLAG, F(training), 0, "add the backward scatter-add", NULL},
    {"dtype", "T", OPT_DTYPE, F(dtype), 0, "table datatype: bf16 or fp32", NULL},
};

/* Parallelism (transformer, llm-step): a degree or axis set not given is resolved by
 * gen_check, so its default is described, not read from gen_opts_init. */
static const gen_opt par_opts[] = {
    {"data-parallel", "D", OPT_POS, F(dp), 0,
     "batch split D ways; gradients all-reduced over\n--dp-axes", "1"},
    {"tensor-parallel", "T", OPT_POS, F(tp), 0,
     "heads and d_ff split T ways; activations all-reduced\nover --tp-axes", "1"},
    {"fsdp", "F", OPT_POS, F(fsdp), 0,
     "batch and parameters split F ways; weights\nall-gathered and gradients reduce-scattered "
     "over\n--fsdp-axes",
     "1"},
    {"seq-parallel", "P", OPT_POS, F(sp), 0,
     "sequence split P ways (training/prefill): q, k, v and\nthe attention output all-to-all'd "
     "over --sp-axes so\nthat attention runs on heads/P whole sequences;\ngradients also "
     "all-reduced over --sp-axes",
     "1"},
    {"chips", "N", OPT_POS, F(chips), 0,
     "N chips; without explicit degrees: data parallel over\nall axes", ""},
    {"dp-axes", "AXES", OPT_AXES, F(dp_axes), 0, "torus axes of data parallelism, letters of xyz",
     "x; every axis with --chips alone"},
    {"tp-axes", "AXES", OPT_AXES, F(tp_axes), 0, "torus axes of tensor parallelism", "y"},
    {"fsdp-axes", "AXES", OPT_AXES, F(fsdp_axes), 0, "torus axes of FSDP",
     "z; 2-D: data axes, or all"},
    {"sp-axes", "AXES", OPT_AXES, F(sp_axes), 0, "torus axes of sequence parallelism", "x"},
    {"slices", "S", OPT_POS, F(slices), 0,
     "S copies of this slice joined by the data-centre\nnetwork (-p dcn.slices=S), data parallel "
     "across\nthem: --batch is split over them too; gradients\nare reduce-scattered in the slice "
     "(ICI), all-\nreduced across slices (DCN), all-gathered in the\nslice",
     "1"},
};

#undef F
#undef ROW_DTYPE
#undef ROW_HEADS
#undef ROW_D_MODEL
#undef ROW_D_FF
#undef ROW_SEQUENCES

#define TABLE(t) t, sizeof t / sizeof t[0]

/* Per kind (indexed by gen_kind, like the gen library's kind table): a one-line summary for
 * `gen --help`, the description heading `gen KIND --help`, its options, and whether it
 * takes the parallelism options. */
typedef struct gen_cli_kind {
    const char *brief;
    const char *about;
    const gen_opt *opts;
    unsigned nopts;
    int parallel;
} gen_cli_kind;

static const gen_cli_kind gen_cli_kinds[GEN_KIND_COUNT] = {
    [GEN_GEMM] = {"C = A B tiled over every MXU",
                  "C[M,N] = A[M,K] B[K,N], tiled over every MXU of the chip.\n", TABLE(gemm_opts),
                  0},
    [GEN_ELEMENTWISE] = {"one vector op streamed through VMEM (memory-bound)",
                         "One vector op streamed HBM -> VMEM -> HBM in double-buffered chunks\n"
                         "(the memory-bound reference).\n",
                         TABLE(elementwise_opts), 0},
    [GEN_CONV2D] = {"2-D convolution as one im2col GEMM",
                    "2-D convolution lowered to one GEMM (im2col): M = N*P*Q, K = C*R*S,\n"
                    "N = out channels; the patch gather is a strided DMA per input row.\n",
                    TABLE(conv2d_opts), 0},
    [GEN_MLP] = {"a stack of dense layers (forward)",
                 "A stack of dense layers (forward): y = x W1, W2, ... with a tanh between.\n",
                 TABLE(mlp_opts), 0},
    [GEN_ATTENTION] = {"self-attention (QK^T, softmax, PV)",
                       "Self-attention: QK^T on the MXUs, softmax on the vector unit (max-reduce,\n"
                       "sub, exp, sum-reduce, multiply by the reciprocal), PV on the MXUs.\n",
                       TABLE(attention_opts), 0},
    [GEN_TRANSFORMER] = {"one pre-norm decoder block, optionally with backward",
                         "One pre-norm decoder block (layer norm, QKV, causal attention, output\n"
                         "projection, residual, layer norm, SwiGLU MLP, residual).\n",
                         TABLE(transformer_opts), 1},
    [GEN_LLM_STEP] = {"a decoder-only LLM training step or decode step",
                      "A decoder-only LLM: embedding, layers, final norm, LM head, loss;\n"
                      "training step = forward + backward + Adam, or --decode = one token per\n"
                      "sequence against a KV cache of --seq tokens read from HBM.\n",
                      TABLE(llm_opts), 1},
    [GEN_EMBEDDING] = {"DLRM-like embedding lookups on the SparseCores",
                       "DLRM-like embedding lookups on the SparseCores: gathers with a sum per\n"
                       "sample, the all-to-all of the pooled vectors, and with --training the\n"
                       "backward scatter-add (gen_embedding.c).\n",
                       TABLE(embedding_opts), 0},
};

/* ---- --help ------------------------------------------------------------------------------ */

/* The default a valued optional option shows: its `def`, else gen_opts_init's value. */
static void opt_default(const gen_opt *op, const gen_opts *init, char *buf, size_t cap)
{
    const char *f = (const char *)init + op->off;
    buf[0] = 0;
    if (op->def)
        snprintf(buf, cap, "%s", op->def);
    else if (op->type == OPT_POS || op->type == OPT_NONNEG)
        snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)(const void *)f);
    else if (op->type == OPT_DTYPE)
        snprintf(buf, cap, "%s", isa_dtype_name(*(const isa_dtype *)(const void *)f));
}

/* "  --name ARG" padded to column 24, then the help lines (continuations indented to 24),
 * then "(required)" or "(default X)", on a line of its own if it would pass column 80. */
static void opt_usage(FILE *out, const gen_opt *op, const gen_opts *init)
{
    char head[64], def[64] = "";
    int n = snprintf(head, sizeof head, "  --%s%s%s", op->name, op->arg ? " " : "",
                     op->arg ? op->arg : "");
    if (op->required) {
        snprintf(def, sizeof def, "(required)");
    } else if (op->type != OPT_FLAG) {
        char d[48];
        opt_default(op, init, d, sizeof d);
        if (d[0])
            snprintf(def, sizeof def, "(default %s)", d);
    }
    fprintf(out, "%s", head);
    if (n >= 23)
        fprintf(out, "\n%24s", "");
    else
        fprintf(out, "%*s", 24 - n, "");
    size_t col = 24;
    for (const char *p = op->help; *p; p++) {
        fputc(*p, out);
        col++;
        if (*p == '\n') {
            fprintf(out, "%24s", "");
            col = 24;
        }
    }
    if (def[0] && col + 1 + strlen(def) > 80)
        fprintf(out, "\n%23s", "");
    fprintf(out, "%s%s\n", def[0] ? " " : "", def);
}

void cli_gen_usage(FILE *out, int kind)
{
    if (kind < 0 || kind >= GEN_KIND_COUNT) {
        fprintf(out, "usage: tpusim gen KIND -c CONFIG -o OUT.tpt [-p key=value]... [options]\n"
                     "\nGenerate the trace of one chip for a workload. Kinds:\n");
        for (int k = 0; k < GEN_KIND_COUNT; k++)
            fprintf(out, "  %-13s %s\n", gen_kind_name((gen_kind)k), gen_cli_kinds[k].brief);
        fprintf(out,
                "\n'tpusim gen KIND --help' lists a kind's options; 'tpusim gen --list-models'\n"
                "the model presets of --model NAME (transformer, llm-step).\n");
        return;
    }
    const gen_cli_kind *ck = &gen_cli_kinds[kind];
    gen_opts init;
    gen_opts_init(&init, (gen_kind)kind);
    fprintf(out,
            "usage: tpusim gen %s -c CONFIG -o OUT.tpt [-p key=value]... [options]\n\n%s"
            "\noptions:\n",
            gen_kind_name((gen_kind)kind), ck->about);
    for (unsigned i = 0; i < ck->nopts; i++)
        opt_usage(out, &ck->opts[i], &init);
    if (ck->parallel) {
        fprintf(out, "parallelism (one chip's shard is generated):\n");
        for (unsigned i = 0; i < sizeof par_opts / sizeof par_opts[0]; i++)
            opt_usage(out, &par_opts[i], &init);
    }
    fprintf(out, "common:\n"
                 "  -c, --config CONFIG   machine config, a YAML file or preset name (required)\n"
                 "  -o, --output FILE     trace to write (required)\n"
                 "  -p key=value          override one config key (repeatable)\n");
    if (kind == GEN_TRANSFORMER || kind == GEN_LLM_STEP)
        fprintf(out, "  --model NAME          a model preset's flags (gen --list-models), placed\n"
                     "                        before the others, so any flag overrides them\n");
    fprintf(out, "Integers take an optional K, M or G suffix (x1024).\n");
}

/* ---- value parsers ------------------------------------------------------------------------ */

/* Positive integer with an optional K/M/G (x1024) suffix. */
static int parse_u64(const char *s, uint64_t *v, int allow_zero, const char *what, err *e)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (end == s || s[0] == '-')
        goto bad;
    if (errno == ERANGE)
        return err_set(e, "gen: --%s: '%s' is larger than 2^64-1", what, s);
    unsigned sh = 0;
    if (*end == 'k' || *end == 'K')
        sh = 10, end++;
    else if (*end == 'm' || *end == 'M')
        sh = 20, end++;
    else if (*end == 'g' || *end == 'G')
        sh = 30, end++;
    if (x > (UINT64_MAX >> sh))
        return err_set(e, "gen: --%s: '%s' is larger than 2^64-1", what, s);
    x <<= sh;
    if (*end || (!allow_zero && x == 0))
        goto bad;
    *v = x;
    return 0;
bad:
    return err_set(e, "gen: --%s: '%s' is not a %s integer", what, s,
                   allow_zero ? "non-negative" : "positive");
}

static int parse_axes(const char *s, unsigned *mask, const char *what, err *e)
{
    unsigned m = 0;
    for (const char *p = s; *p; p++) {
        const char *q = strchr("xyz", *p);
        if (!q || !*p)
            return err_set(e, "gen: --%s: '%s' is not a set of axes from xyz", what, s);
        m |= 1u << (q - "xyz");
    }
    if (!m)
        return err_set(e, "gen: --%s: empty axis set", what);
    *mask = m;
    return 0;
}

static int parse_vop(const char *s, int *op, const char *what, err *e)
{
    char buf[32];
    snprintf(buf, sizeof buf, "v.%s", s);
    int o = isa_lookup(buf);
    if (o < 0 || isa_info_of((unsigned)o)->unit != ISA_UNIT_VPU)
        return err_set(e,
                       "gen: --%s: unknown vector op '%s' (add sub mul max min fma select "
                       "cast exp log rsqrt tanh reduce transpose)",
                       what, s);
    *op = o;
    return 0;
}

static int parse_list(const char *s, gen_opts *o, const char *what, err *e)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    o->nsizes = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->nsizes == GEN_MAX_LAYERS)
            return err_set(e, "gen: --%s: more than %d entries", what, GEN_MAX_LAYERS);
        if (parse_u64(t, &o->sizes[o->nsizes++], 0, what, e))
            return -1;
    }
    if (!o->nsizes)
        return err_set(e, "gen: --%s: empty list", what);
    return 0;
}

/* Store `val` into op's field of o. */
static int opt_set(const gen_opt *op, const char *val, gen_opts *o, err *e)
{
    void *f = (char *)o + op->off;
    switch (op->type) {
    case OPT_POS:
    case OPT_NONNEG:
        return parse_u64(val, f, op->type == OPT_NONNEG, op->name, e);
    case OPT_FLAG:
        *(int *)f = 1;
        return 0;
    case OPT_DTYPE: {
        int d = isa_dtype_lookup(val);
        if (d < 0)
            return err_set(e, "gen: --%s: unknown datatype '%s' (bf16 int8 fp8 fp32)", op->name,
                           val);
        *(isa_dtype *)f = (isa_dtype)d;
        return 0;
    }
    case OPT_VOP:
        return parse_vop(val, f, op->name, e);
    case OPT_LIST:
        return parse_list(val, o, op->name, e);
    case OPT_AXES:
        return parse_axes(val, f, op->name, e);
    case OPT_MLP:
        if (strcmp(val, "swiglu") && strcmp(val, "gelu"))
            return err_set(e, "gen: --%s: '%s' is not swiglu or gelu", op->name, val);
        *(int *)f = strcmp(val, "gelu") ? GEN_MLP_SWIGLU : GEN_MLP_GELU;
        return 0;
    case OPT_REAL: {
        char *end;
        double v = strtod(val, &end);
        if (end == val || *end || !(v > 0) || v > 1e6)
            return err_set(e, "gen: --%s: '%s' is not a positive number", op->name, val);
        *(double *)f = v;
        return 0;
    }
    case OPT_SCHED: {
        int r = gen_sched_lookup(val);
        if (r < 0)
            return err_set(e, "gen: --%s: '%s' is not gpipe or 1f1b", op->name, val);
        *(int *)f = r;
        return 0;
    }
    case OPT_REMAT: {
        int r = gen_remat_lookup(val);
        if (r < 0)
            return err_set(e, "gen: --%s: '%s' is not none, full, minimal or save-dots", op->name,
                           val);
        *(int *)f = r;
        return 0;
    }
    }
    return err_set(e, "gen: --%s: option of unknown type", op->name);
}

/* ---- argv ---------------------------------------------------------------------------------- */

/* Every long option of every kind, once: getopt_long then recognises (and abbreviates) the
 * same set for each kind, so an option of another kind is reported as not applying. */
typedef struct gen_longopts {
    struct option opt[GEN_MAX_LONGOPTS + 1];
    unsigned n;
} gen_longopts;

enum { GEN_OPT_BASE = 256 }; /* getopt val of union entry i: GEN_OPT_BASE + i */

static void longopts_add(gen_longopts *l, const char *name, int has_arg, int val)
{
    for (unsigned i = 0; i < l->n; i++)
        if (!strcmp(l->opt[i].name, name))
            return;
    if (l->n < GEN_MAX_LONGOPTS)
        l->opt[l->n++] = (struct option){name, has_arg, NULL, val};
}

static void longopts_build(gen_longopts *l)
{
    memset(l, 0, sizeof *l);
    longopts_add(l, "config", required_argument, 'c');
    longopts_add(l, "output", required_argument, 'o');
    longopts_add(l, "help", no_argument, 'h');
    for (int k = 0; k < GEN_KIND_COUNT; k++)
        for (unsigned i = 0; i < gen_cli_kinds[k].nopts; i++) {
            const gen_opt *op = &gen_cli_kinds[k].opts[i];
            longopts_add(l, op->name, op->arg ? required_argument : no_argument,
                         GEN_OPT_BASE + (int)l->n);
        }
    for (unsigned i = 0; i < sizeof par_opts / sizeof par_opts[0]; i++)
        longopts_add(l, par_opts[i].name, required_argument, GEN_OPT_BASE + (int)l->n);
}

/* The option called `name` of kind ck, or NULL if the kind does not take it. */
static const gen_opt *kind_opt(const gen_cli_kind *ck, const char *name)
{
    for (unsigned i = 0; i < ck->nopts; i++)
        if (!strcmp(ck->opts[i].name, name))
            return &ck->opts[i];
    if (ck->parallel)
        for (unsigned i = 0; i < sizeof par_opts / sizeof par_opts[0]; i++)
            if (!strcmp(par_opts[i].name, name))
                return &par_opts[i];
    return NULL;
}

/* The kind names as "a, b, c" (or "a, b or c" when `last_or`). */
static void kind_list(char *buf, size_t cap, int last_or)
{
    size_t len = 0;
    buf[0] = 0;
    for (int k = 0; k < GEN_KIND_COUNT && len < cap; k++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s",
                                !k                                   ? ""
                                : last_or && k == GEN_KIND_COUNT - 1 ? " or "
                                                                     : ", ",
                                gen_kind_name((gen_kind)k));
}

/* Options of argv (after the kind) into o, config path and overrides; the required ones. */
typedef struct gen_args {
    const char *config;
    const char *ovr[CLI_MAX_OVERRIDES];
    unsigned novr;
    char slices[32]; /* --slices S as the override it stands for: "dcn.slices=S" */
} gen_args;

static int parse_options(const gen_cli_kind *ck, const char *kname, int argc, char **args,
                         gen_opts *o, gen_args *a, int *help, err *e)
{
    gen_longopts l;
    longopts_build(&l);
    int seen[GEN_MAX_LONGOPTS] = {0}, ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, args, ":c:o:p:h", l.opt, NULL)) != -1) {
        if (ch == 'h') {
            *help = 1;
            return 0;
        }
        if (ch == '?' || ch == ':')
            return err_set(e, "gen %s: %s '%s'", kname,
                           ch == ':' ? "missing value for option" : "unknown option",
                           args[optind - 1]);
        if (ch == 'c') {
            a->config = optarg;
        } else if (ch == 'o') {
            o->output = optarg;
        } else if (ch == 'p') {
            if (cli_override_add(a->ovr, &a->novr, optarg, "gen", e))
                return -1;
        } else {
            const char *name = l.opt[ch - GEN_OPT_BASE].name;
            const gen_opt *op = kind_opt(ck, name);
            if (!op)
                return err_set(e, "gen %s: option --%s does not apply to this kind", kname, name);
            seen[ch - GEN_OPT_BASE] = 1;
            if (opt_set(op, optarg, o, e))
                return -1;
        }
    }
    if (optind < argc)
        return err_set(e, "gen %s: unexpected argument '%s'", kname, args[optind]);
    for (unsigned i = 0; i < ck->nopts; i++) {
        if (!ck->opts[i].required)
            continue;
        for (unsigned j = 0; j < l.n; j++)
            if (!strcmp(l.opt[j].name, ck->opts[i].name) && !seen[j])
                return err_set(e, "gen %s: missing --%s", kname, ck->opts[i].name);
    }
    if (!a->config)
        return err_set(e, "gen %s: missing -c/--config (a YAML file or preset name such as v7)",
                       kname);
    if (!o->output)
        return err_set(e, "gen %s: missing -o/--output", kname);
    return 0;
}

/* The config file, then the -p overrides, then the whole config checked. */
static int load_config(const gen_args *a, cfg *c, err *e)
{
    if (cfg_load(c, a->config, NULL, e))
        return -1;
    for (unsigned i = 0; i < a->novr; i++) {
        char kv[256];
        snprintf(kv, sizeof kv, "%s", a->ovr[i]);
        char *eq = strchr(kv, '=');
        if (!eq)
            return err_set(e, "gen: -p '%s': expected key=value", a->ovr[i]);
        *eq = 0;
        if (cfg_set(c, kv, eq + 1, "-p", e))
            return -1;
    }
    return cfg_check(c, e);
}

int cli_gen_parse(int argc, char **argv, gen_opts *o, cfg *c, int *help, err *e)
{
    *help = 0;
    gen_opts_init(o, GEN_KIND_COUNT);
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            *help = 1;
            return 0;
        }
        char kinds[256];
        kind_list(kinds, sizeof kinds, 0);
        return err_set(e, "gen: missing KIND (one of %s)", kinds);
    }
    int kind = gen_kind_lookup(argv[1]);
    if (kind < 0) {
        char kinds[256];
        kind_list(kinds, sizeof kinds, 1);
        return err_set(e, "gen: unknown kind '%s' (expected %s)", argv[1], kinds);
    }
    const gen_cli_kind *ck = &gen_cli_kinds[kind];
    if (!ck->about)
        return err_set(e, "gen %s: the command line has no option table for this kind", argv[1]);
    gen_opts_init(o, (gen_kind)kind);
    /* getopt_long permutes argv; work on a copy so the caller's note stays in order. */
    char **av = malloc((size_t)argc * sizeof *av);
    if (!av)
        return err_setk(e, ERR_NOMEM, "gen: out of memory");
    memcpy(av, argv, (size_t)argc * sizeof *av);
    gen_args *a = calloc(1, sizeof *a);
    int rc = -1;
    if (!a) {
        err_setk(e, ERR_NOMEM, "gen: out of memory");
        goto out;
    }
    if (parse_options(ck, argv[1], argc - 1, av + 1, o, a, help, e))
        goto out;
    if (o->slices) { /* after the -p overrides, so that it wins */
        snprintf(a->slices, sizeof a->slices, "dcn.slices=%llu", (unsigned long long)o->slices);
        if (cli_override_add(a->ovr, &a->novr, a->slices, "gen", e))
            goto out;
    }
    rc = *help ? 0 : load_config(a, c, e) || gen_check(o, c, e) ? -1 : 0;
out:
    free(a);
    free(av);
    return rc;
}

/* ---- model presets (--model NAME, --list-models) -------------------------------------------- */

int cli_gen_expand_model(int argc, char **argv, int *eargc, char ***eargv, char *note, size_t cap,
                         err *e)
{
    *eargc = argc;
    *eargv = NULL;
    if (note && cap)
        note[0] = 0;
    int at = -1; /* index of the --model argument */
    const char *name = NULL;
    for (int i = 2; i < argc && strcmp(argv[i], "--"); i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--model"))
            v = i + 1 < argc ? argv[i + 1] : "";
        else if (!strncmp(argv[i], "--model=", 8))
            v = argv[i] + 8;
        else
            continue;
        if (name)
            return err_set(e, "gen %s: --model given twice", argv[1]);
        name = v;
        at = i;
    }
    if (!name)
        return 0;
    int kind = gen_kind_lookup(argv[1]);
    if (kind != GEN_TRANSFORMER && kind != GEN_LLM_STEP)
        return err_set(e, "gen %s: --model applies to llm-step and transformer", argv[1]);
    if (!*name)
        return err_set(e, "gen %s: missing value for --model", argv[1]);
    const gen_cli_kind *ck = &gen_cli_kinds[kind];
    model_preset *m = model_find_new(name, NULL, "gen", e);
    if (!m)
        return -1;
    int rc = -1;
    /* One block: the new argv, then "--key" and value strings. */
    size_t strs = 0;
    for (unsigned i = 0; i < m->nflags; i++)
        strs += strlen(m->flags[i].key) + 3 + strlen(m->flags[i].value) + 1;
    int skip = strchr(argv[at], '=') ? 1 : 2, n = argc - skip + 2 * (int)m->nflags;
    char **av = malloc((size_t)(n + 1) * sizeof *av + strs);
    if (!av) {
        err_setk(e, ERR_NOMEM, "gen: out of memory");
        goto out;
    }
    char *s = (char *)(av + n + 1);
    int k = 0;
    av[k++] = argv[0];
    av[k++] = argv[1];
    size_t nlen = 0;
    for (unsigned i = 0; i < m->nflags; i++) {
        const model_flag *f = &m->flags[i];
        const gen_opt *op = kind_opt(ck, f->key);
        if (!op) { /* not an option of this kind (yet): noted, not applied */
            if (note && nlen < cap)
                nlen += (size_t)snprintf(note + nlen, cap - nlen, "%s%s", nlen ? ", " : "", f->key);
            continue;
        }
        if (op->type == OPT_FLAG && strcmp(f->value, "true"))
            continue; /* false: the flag's default */
        av[k++] = s;
        s += sprintf(s, "--%s", f->key) + 1;
        if (op->type != OPT_FLAG) {
            av[k++] = s;
            s += sprintf(s, "%s", f->value) + 1;
        }
    }
    for (int i = 2; i < argc; i++)
        if (i < at || i >= at + skip)
            av[k++] = argv[i];
    av[k] = NULL;
    if (note && nlen) {
        char keys[512];
        snprintf(keys, sizeof keys, "%s", note);
        snprintf(note, cap, "%s: %s not applied (not %s of gen %s yet)", m->name, keys,
                 strchr(keys, ',') ? "options" : "an option", argv[1]);
    }
    *eargc = k;
    *eargv = av;
    rc = 0;
out:
    free(m);
    return rc;
}

int cli_gen_list_models(FILE *out, err *e)
{
    model_preset *v;
    unsigned n;
    if (model_list(NULL, &v, &n, e))
        return -1;
    fprintf(out, "%-13s %-8s %8s %9s %7s %9s  %s\n", "name", "family", "params", "published",
            "active", "published", "source");
    for (unsigned i = 0; i < n; i++) {
        const model_preset *m = &v[i];
        double total, active;
        model_params(m, &total, &active);
        char pub[16] = "", act[16] = "", pact[16] = "";
        if (m->published_params)
            snprintf(pub, sizeof pub, "%.5gB", m->published_params);
        if (m->dims.experts)
            snprintf(act, sizeof act, "%.1fB", active / 1e9);
        if (m->published_active)
            snprintf(pact, sizeof pact, "%.5gB", m->published_active);
        fprintf(out, "%-13s %-8s %7.1fB %9s %7s %9s  %s\n", m->name, m->family, total / 1e9, pub,
                act, pact, m->source);
    }
    fprintf(out, "params: computed from the dimensions (docs/generators.md); active: per token\n"
                 "(MoE); published: the file's sourced count. Aliases: configs/README.md.\n");
    free(v);
    return 0;
}

/* The generating command line, with arguments quoted when they need it. */
static void build_note(char *note, size_t cap, int argc, char **argv)
{
    size_t len = (size_t)snprintf(note, cap, "tpusim");
    for (int i = 0; i < argc && len + 1 < cap; i++) {
        const char *a = argv[i];
        int q = !*a || strpbrk(a, " \t\"'\\$") != NULL;
        len += (size_t)snprintf(note + len, cap - len, q ? " '%s'" : " %s", a);
    }
}

int cli_gen(int argc, char **argv, err *e)
{
    gen_opts o;
    int help, rc = -1;
    char **eargv = NULL, mnote[512];
    cfg *c = malloc(sizeof *c);
    if (!c)
        return err_setk(e, ERR_NOMEM, "gen: out of memory");
    cfg_defaults(c);
    if (argc >= 2 && !strcmp(argv[1], "--list-models")) {
        rc = cli_gen_list_models(stdout, e);
        goto out;
    }
    if (cli_gen_expand_model(argc, argv, &argc, &eargv, mnote, sizeof mnote, e))
        goto out;
    if (eargv)
        argv = eargv;
    if (mnote[0])
        fprintf(stderr, "note: %s\n", mnote);
    if (cli_gen_parse(argc, argv, &o, c, &help, e))
        goto out;
    if (help) {
        cli_gen_usage(stdout, o.kind == GEN_KIND_COUNT ? -1 : (int)o.kind);
        rc = 0;
        goto out;
    }
    const ofile_ref out = {o.output, "-o"}, ins[] = {{c->source, "config"}};
    if (ofile_check(&out, 1, ins, c->source[0] ? 1 : 0, e)) /* before generating */
        goto out;
    if (o.kind == GEN_LLM_STEP && o.vocab % o.tp)
        fprintf(stderr, "note: vocab %llu padded to %llu (a multiple of --tensor-parallel %llu)\n",
                (unsigned long long)o.vocab, (unsigned long long)(gen_vocab_shard(&o) * o.tp),
                (unsigned long long)o.tp);
    char note[TRACE_NOTE_MAX];
    build_note(note, sizeof note, argc, argv);
    /* The topology it is generated for, for run and pod to check against theirs. */
    trace_topology tt = {.chips = o.chips};
    if (!tt.chips)
        tt.chips =
            (o.dp ? o.dp : 1) * (o.tp ? o.tp : 1) * (o.fsdp ? o.fsdp : 1) * (o.sp ? o.sp : 1);
    snprintf(tt.ici_dims, sizeof tt.ici_dims, "%s", c->ici_dims);
    snprintf(tt.ici_wrap, sizeof tt.ici_wrap, "%s", c->ici_wrap);
    tt.slices = c->dcn_slices;
    if (trace_note_add_topology(note, sizeof note, &tt)) {
        rc = err_set(e, "gen: the command line is too long for the trace's note (%d bytes)",
                     TRACE_NOTE_MAX - 1);
        goto out;
    }
    gen_result res;
    rc = gen_run_result(&o, c, note, &res, e);
    if (!rc && res.ops) /* on stderr when the trace itself goes to stdout */
        fprintf(strcmp(o.output, "-") ? stdout : stderr,
                "%s: peak HBM per chip %.3f GiB (%llu bytes; persistent %.3f GiB; %.3f GiB "
                "without buffer reuse)\n",
                o.output, (double)res.peak_hbm_bytes / (1u << 30),
                (unsigned long long)res.peak_hbm_bytes, (double)res.persistent_bytes / (1u << 30),
                (double)res.naive_hbm_bytes / (1u << 30));
    for (unsigned s = 0; !rc && s < res.stages; s++)
        printf("stage %u: peak HBM %.3f GiB (%llu bytes)\n", s,
               (double)res.stage_peak[s] / (1u << 30), (unsigned long long)res.stage_peak[s]);
    if (!rc && res.stages)
        printf("pipeline: %u stages x %llu microbatches, %s: bubble (P-1)/(M+P-1) = %.4f\n",
               res.stages, (unsigned long long)o.microbatches, gen_sched_name(o.schedule),
               res.bubble);
out:
    free(eargv);
    free(c);
    return rc;
}
