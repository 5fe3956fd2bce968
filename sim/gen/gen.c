/* gen.c - `tpusim gen` as a library: the kind table (name, checks, generator), option
 * defaults and their resolution, analytic FLOP formulas and the trace FLOP counter. The
 * frontends live in gen_frontends.c and gen_models.c (they build the IR, ir.h), the lowering in
 * lower_*.c over the emission kernels of gen_emit.c; the command line is sim/cli/cli_gen.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "lower.h"

static unsigned topo_axes(const cfg *c)
{
    unsigned d[3];
    int n = cfg_parse_dims(c->ici_dims, d);
    return n < 0 ? 0 : (unsigned)n;
}

/* Degrees and axes: defaults, consistency with --chips, axes inside the topology. */
static int check_parallel(gen_opts *o, const cfg *c, int explicit_deg, unsigned given_axes, err *e)
{
    unsigned naxes = topo_axes(c), all = (1u << naxes) - 1;
    if (o->chips && !explicit_deg) {
        o->dp = o->chips;
        if (!(given_axes & 1))
            o->dp_axes = all;
    }
    /* No z axis: FSDP shards over the data axes, or over every axis when there is no data
     * parallelism to share them with. */
    if (!(given_axes & 4) && o->fsdp > 1 && naxes < 3)
        o->fsdp_axes = o->dp > 1 || (given_axes & 1) ? o->dp_axes : all;
    if (o->chips && o->dp * o->tp * o->fsdp * o->sp != o->chips)
        return err_set(e,
                       "gen: --chips %llu but data x tensor x fsdp x seq parallel = %llu x %llu x "
                       "%llu x %llu",
                       (unsigned long long)o->chips, (unsigned long long)o->dp,
                       (unsigned long long)o->tp, (unsigned long long)o->fsdp,
                       (unsigned long long)o->sp);
    struct {
        uint64_t deg;
        unsigned axes;
        const char *name;
        const char *deg_name;
    } ax[4] = {{o->dp, o->dp_axes, "dp-axes", "data-parallel"},
               {o->tp, o->tp_axes, "tp-axes", "tensor-parallel"},
               {o->fsdp, o->fsdp_axes, "fsdp-axes", "fsdp"},
               {o->sp, o->sp_axes, "sp-axes", "seq-parallel"}};
    for (int i = 0; i < 4; i++) {
        if (ax[i].deg > 1 && (ax[i].axes & ~all))
            return err_set(e, "gen: --%s: axis not in the %u-axis topology ici.dims=%s", ax[i].name,
                           naxes, c->ici_dims);
        /* The collectives run over every chip of their axes: a degree larger than that group
         * cannot be placed (use a bigger slice: -p ici.dims=...). */
        if (ax[i].deg > 1 && ax[i].deg > cfg_axes_chips(c, ax[i].axes))
            return err_set(e,
                           "gen: --%s %llu: more than the %llu chips on its axes of ici.dims=%s "
                           "(set --%s or -p ici.dims=...)",
                           ax[i].deg_name, (unsigned long long)ax[i].deg,
                           (unsigned long long)cfg_axes_chips(c, ax[i].axes), c->ici_dims,
                           ax[i].name);
    }
    uint64_t shards = o->dp * o->fsdp * o->slices;
    if (o->batch % shards && o->slices > 1)
        return err_set(e, "gen: --batch %llu is not divisible by data x fsdp x slices = %llu",
                       (unsigned long long)o->batch, (unsigned long long)shards);
    if (o->batch % shards)
        return err_set(e, "gen: --batch %llu is not divisible by data x fsdp = %llu",
                       (unsigned long long)o->batch, (unsigned long long)shards);
    if (o->heads % o->tp || o->d_ff % o->tp)
        return err_set(e, "gen: --tensor-parallel %llu must divide heads and d-ff",
                       (unsigned long long)o->tp);
    if (o->kv_heads % o->tp && o->tp % o->kv_heads)
        return err_set(e,
                       "gen: --tensor-parallel %llu must divide --kv-heads %llu or be a "
                       "multiple of it",
                       (unsigned long long)o->tp, (unsigned long long)o->kv_heads);
    if (o->sp > 1 && o->decode)
        return err_set(e, "gen: --seq-parallel does not apply to --decode (one token per step)");
    if (o->seq % o->sp)
        return err_set(e, "gen: --seq-parallel %llu must divide --seq %llu",
                       (unsigned long long)o->sp, (unsigned long long)o->seq);
    if ((o->heads / o->tp) % o->sp)
        return err_set(e, "gen: --seq-parallel %llu must divide the heads per tensor shard (%llu)",
                       (unsigned long long)o->sp, (unsigned long long)(o->heads / o->tp));
    if (gen_kv_shard(o) % o->sp)
        return err_set(e,
                       "gen: --seq-parallel %llu must divide the kv heads per tensor shard (%llu)",
                       (unsigned long long)o->sp, (unsigned long long)gen_kv_shard(o));
    return 0;
}

/* head_dim: --head-dim, else d_model / heads; kv_heads: --kv-heads, else heads (MHA). */
static int check_model(gen_opts *o, err *e)
{
    if (!o->head_dim && o->d_model % o->heads)
        return err_set(e,
                       "gen: --d-model %llu is not divisible by --heads %llu (or give --head-dim)",
                       (unsigned long long)o->d_model, (unsigned long long)o->heads);
    if (!o->head_dim)
        o->head_dim = o->d_model / o->heads;
    if (!o->kv_heads)
        o->kv_heads = o->heads;
    if (o->kv_heads > o->heads || o->heads % o->kv_heads)
        return err_set(e, "gen: --kv-heads %llu must divide --heads %llu",
                       (unsigned long long)o->kv_heads, (unsigned long long)o->heads);
    int train = o->kind == GEN_LLM_STEP ? !o->decode : o->training;
    if (o->remat != GEN_REMAT_NONE && !train)
        return err_set(e, "gen: --remat %s applies to training steps only",
                       gen_remat_name(o->remat));
    return 0;
}

/* ---- FLOP accounting ---------------------------------------------------------------------- */

static uint64_t conv_out(uint64_t in, uint64_t pad, uint64_t k, uint64_t stride)
{
    return (in + 2 * pad - k) / stride + 1;
}

uint64_t gen_slices(const gen_opts *o)
{
    return o->slices ? o->slices : 1;
}

uint64_t gen_kv_shard(const gen_opts *o)
{
    uint64_t t = o->tp ? o->tp : 1;
    return o->kv_heads >= t ? o->kv_heads / t : 1;
}

uint64_t gen_vocab_shard(const gen_opts *o)
{
    uint64_t t = o->tp ? o->tp : 1;
    return (o->vocab + t - 1) / t;
}

static const char *const remat_names[GEN_REMAT_COUNT] = {
    [GEN_REMAT_NONE] = "none",
    [GEN_REMAT_FULL] = "full",
    [GEN_REMAT_MINIMAL] = "minimal",
    [GEN_REMAT_SAVE_DOTS] = "save-dots",
};

const char *gen_remat_name(int r)
{
    return r >= 0 && r < GEN_REMAT_COUNT ? remat_names[r] : NULL;
}

int gen_remat_lookup(const char *name)
{
    for (int r = 0; r < GEN_REMAT_COUNT; r++)
        if (!strcmp(name, remat_names[r]))
            return r;
    return -1;
}

#define ACT(a) (1u << GEN_ACT_##a)

unsigned gen_acts_needed(const gen_opts *o)
{
    unsigned all = (1u << GEN_ACT_COUNT) - 1;
    return o->parallel_block ? all & ~(ACT(H) | ACT(HN)) : all;
}

unsigned gen_acts_saved(const gen_opts *o)
{
    static const unsigned saved[GEN_REMAT_COUNT] = {
        [GEN_REMAT_NONE] = (1u << GEN_ACT_COUNT) - 1,
        [GEN_REMAT_FULL] = 0,
        [GEN_REMAT_MINIMAL] = ACT(QKV) | ACT(H) | ACT(UP),
        [GEN_REMAT_SAVE_DOTS] = ACT(QKV) | ACT(AO) | ACT(H),
    };
    unsigned r = (unsigned)o->remat < GEN_REMAT_COUNT ? (unsigned)o->remat : 0;
    return saved[r] & gen_acts_needed(o);
}

/* Per-chip matmul parameters of one decoder layer: Q D x A, K and V D x KA, out A x D
 * (A = heads/T x head_dim, KA = kv_heads/T x head_dim), MLP up D x F (x 2 with SwiGLU's
 * gate) and down F x D, F = d_ff/T. With heads = kv_heads, head_dim = D/heads and SwiGLU:
 * 4 D^2/T + 3 D F/T. */
typedef struct layer_mm {
    uint64_t qkv, o, up, down;
} layer_mm;

static layer_mm layer_split(const gen_opts *o)
{
    uint64_t D = o->d_model, F = o->d_ff / o->tp;
    uint64_t A = o->heads / o->tp * o->head_dim, KA = gen_kv_shard(o) * o->head_dim;
    layer_mm s = {D * (A + 2 * KA), A * D, D * F * (o->mlp == GEN_MLP_GELU ? 1 : 2), F * D};
    return s;
}

static uint64_t layer_params(const gen_opts *o)
{
    layer_mm s = layer_split(o);
    return s.qkv + s.o + s.up + s.down;
}

/* FLOPs of a decoder step on one chip: forward (2 P T + attention), backward (4 P T plus the
 * attention backward, which recomputes QK^T: 2.5 x its forward) and the layer forward parts
 * recomputed by the remat policy; `vshard` vocabulary rows in the LM head (0: none). */
typedef struct llm_flops {
    uint64_t fwd, bwd, remat;
    uint64_t attn_fwd; /* attention forward of all layers (in fwd) */
} llm_flops;

static void llm_count(const gen_opts *o, const cfg *c, uint64_t vshard, int model, llm_flops *f)
{
    int dec = o->kind == GEN_LLM_STEP && o->decode;
    /* Sequence parallelism: seq/P tokens per chip through the GEMMs, heads/(T P) whole
     * sequences through attention. */
    uint64_t bc = o->batch / (o->dp * o->fsdp * gen_slices(o)), hl = o->heads / (o->tp * o->sp);
    uint64_t tokens = dec ? bc : bc * o->seq / o->sp;
    /* A pipeline stage: layers/P layers (all microbatches' tokens), the LM head on the last. */
    uint64_t L = o->pipeline > 1 ? o->layers / o->pipeline : o->layers;
    if (o->pipeline > 1 && o->stage + 1 != o->pipeline)
        vshard = 0;
    /* MoE layers: their MLP is counted by gen_moe_fwd_flops instead of up + down (no MoE
     * with a pipeline: the checks refuse the pair). */
    uint64_t nmoe = gen_moe_layers(o);
    layer_mm s = layer_split(o);
    uint64_t params = L * layer_params(o) - nmoe * (s.up + s.down) + o->d_model * vshard;
    uint64_t moe = nmoe * gen_moe_fwd_flops(o, tokens, model);
    /* Model FLOPs: kv heads replicated over tensor shards count once (their 1/T share). */
    if (model && o->kv_heads < o->tp)
        params -=
            L * (2 * o->d_model * o->head_dim - 2 * o->d_model * o->head_dim * o->kv_heads / o->tp);
    uint64_t q = dec ? 1 : o->seq, causal = !dec;
    uint64_t af = gen_attn_flops(c, q, o->seq, o->head_dim, (int)causal, o->dtype, 0);
    uint64_t ab = gen_attn_flops(c, q, o->seq, o->head_dim, (int)causal, o->dtype, 1);
    int train = o->kind == GEN_LLM_STEP ? !dec : o->training;
    memset(f, 0, sizeof *f);
    f->attn_fwd = L * bc * hl * af;
    f->fwd = 2 * params * tokens + f->attn_fwd + moe;
    if (!train)
        return;
    f->bwd = 4 * params * tokens + L * bc * hl * ab + 2 * moe;
    /* MoE layers keep their expert activations (no up projection recomputed). */
    unsigned re = gen_acts_needed(o) & ~gen_acts_saved(o);
    uint64_t per = ((re & ACT(QKV)) ? s.qkv : 0) + ((re & ACT(H)) ? s.o : 0);
    f->remat = L * (2 * per * tokens + ((re & ACT(AO)) ? bc * hl * af : 0)) +
               (L - nmoe) * ((re & ACT(UP)) ? 2 * s.up * tokens : 0);
}

uint64_t gen_flops_model(const gen_opts *o, const cfg *c)
{
    if (o->kind != GEN_TRANSFORMER && o->kind != GEN_LLM_STEP)
        return 0;
    /* The real vocabulary's share (not the padding), nothing recomputed: attention's
     * backward as twice its forward (dS, dV, dK, dQ without the recomputed QK^T). */
    uint64_t vreal = o->kind == GEN_LLM_STEP ? o->vocab / (o->tp ? o->tp : 1) : 0;
    llm_flops f;
    llm_count(o, c, vreal, 1, &f);
    return f.bwd ? 3 * f.fwd : f.fwd;
}

uint64_t gen_flops_analytic(const gen_opts *o, const cfg *c)
{
    switch (o->kind) {
    case GEN_GEMM:
        return 2 * o->m * o->n * o->k;
    case GEN_CONV2D: {
        uint64_t P = conv_out(o->height, o->padding, o->kh, o->stride);
        uint64_t Q = conv_out(o->width, o->padding, o->kw, o->stride);
        return 2 * (o->batch * P * Q) * (o->in_ch * o->kh * o->kw) * o->out_ch;
    }
    case GEN_MLP: {
        uint64_t f = 0;
        for (unsigned i = 0; i + 1 < o->nsizes; i++)
            f += 2 * o->batch * o->sizes[i] * o->sizes[i + 1];
        return f;
    }
    case GEN_ATTENTION:
        return o->batch * o->heads *
               gen_attn_flops(c, o->seq, o->seq, o->head_dim, o->causal, o->dtype, 0);
    case GEN_TRANSFORMER:
    case GEN_LLM_STEP: {
        llm_flops f;
        llm_count(o, c, o->kind == GEN_LLM_STEP ? gen_vocab_shard(o) : 0, 0, &f);
        return f.fwd + f.bwd + f.remat;
    }
    case GEN_EMBEDDING: {
        gen_embedding_counts n;
        gen_embedding_count(o, &n);
        return n.flops;
    }
    default:
        return 0;
    }
}

int gen_trace_flops(const char *path, uint64_t *flops, err *e)
{
    trace_reader *r;
    if (trace_reader_open(&r, path, e))
        return -1;
    uint32_t k[256] = {0}, n[256] = {0};
    uint64_t f = 0;
    isa_insn in;
    int rc;
    while ((rc = trace_reader_next(r, &in, e)) == 1) {
        unsigned m = (unsigned)(in.arg[ISA_LDW_MXU] & 255);
        if (in.op == ISA_OP_MXU_LDW) {
            k[m] = (uint32_t)in.arg[ISA_LDW_K];
            n[m] = (uint32_t)in.arg[ISA_LDW_N];
        } else if (in.op == ISA_OP_MXU_MATMUL) {
            f += 2 * in.arg[ISA_MM_M] * k[m] * n[m];
        }
    }
    trace_reader_free(r);
    if (rc < 0)
        return -1;
    *flops = f;
    return 0;
}

/* ---- kinds ---------------------------------------------------------------------------------- */

static int check_conv2d(gen_opts *o, const cfg *c, err *e)
{
    (void)c;
    if (!o->kw)
        o->kw = o->kh;
    if (o->height + 2 * o->padding < o->kh || o->width + 2 * o->padding < o->kw)
        return err_set(e, "gen conv2d: kernel larger than the padded input");
    return 0;
}

static int check_mlp(gen_opts *o, const cfg *c, err *e)
{
    (void)c;
    if (o->nsizes < 2)
        return err_set(e, "gen mlp: --layers needs at least two widths (input, output)");
    return 0;
}

/* Parallel degrees and axes left at 0 ("not given") take their defaults here; which ones
 * were given decides how --chips is split (check_parallel). */
static int resolve_parallel(gen_opts *o, const cfg *c, err *e)
{
    int explicit_deg = o->dp || o->tp || o->fsdp || o->sp;
    unsigned given_axes = (o->dp_axes ? 1u : 0) | (o->tp_axes ? 2u : 0) | (o->fsdp_axes ? 4u : 0) |
                          (o->sp_axes ? 8u : 0);
    o->dp = o->dp ? o->dp : 1;
    o->tp = o->tp ? o->tp : 1;
    o->fsdp = o->fsdp ? o->fsdp : 1;
    o->sp = o->sp ? o->sp : 1;
    o->dp_axes = o->dp_axes ? o->dp_axes : 1;
    o->tp_axes = o->tp_axes ? o->tp_axes : 2;
    o->fsdp_axes = o->fsdp_axes ? o->fsdp_axes : 4;
    o->sp_axes = o->sp_axes ? o->sp_axes : 1;
    if (c && o->slices && o->slices != c->dcn_slices)
        return err_set(e, "gen: %llu slices but the config's dcn.slices is %llu",
                       (unsigned long long)o->slices, (unsigned long long)c->dcn_slices);
    o->slices = c ? c->dcn_slices : gen_slices(o);
    return c ? check_parallel(o, c, explicit_deg, given_axes, e) : 0;
}

/* Expert axes inside the topology, the expert degree placeable on them. */
static int check_moe(gen_opts *o, const cfg *c, err *e)
{
    if (gen_moe_check(o, c, e))
        return -1;
    if (!o->experts || !c)
        return 0;
    unsigned all = (1u << topo_axes(c)) - 1;
    if (o->ep > 1 && (o->ep_axes & ~all))
        return err_set(e, "gen: --ep-axes: axis not in the topology ici.dims=%s", c->ici_dims);
    if (o->ep > 1 && o->ep > cfg_axes_chips(c, o->ep_axes))
        return err_set(e,
                       "gen: --expert-parallel %llu: more than the %llu chips on its axes of "
                       "ici.dims=%s (set --ep-axes or -p ici.dims=...)",
                       (unsigned long long)o->ep, (unsigned long long)cfg_axes_chips(c, o->ep_axes),
                       c->ici_dims);
    return 0;
}

static int check_transformer(gen_opts *o, const cfg *c, err *e)
{
    o->layers = 1;
    return check_model(o, e) || resolve_parallel(o, c, e) || check_moe(o, c, e) ? -1 : 0;
}

static int check_llm(gen_opts *o, const cfg *c, err *e)
{
    if (o->nsizes != 1)
        return err_set(e, "gen llm-step: --layers takes one count");
    o->layers = o->sizes[0];
    if (check_model(o, e) || resolve_parallel(o, c, e) || check_moe(o, c, e) ||
        (c && gen_pipeline_check(o, c, e)))
        return -1;
    if (o->pipeline > 1 && o->experts)
        return err_set(e, "gen llm-step: --pipeline with --experts is not modelled");
    return 0;
}

/* One row per workload kind; the command line's option tables follow the same order. A
 * kind either builds IR (`build`, lowered by lower_*.c) or, for kinds not yet ported to the
 * IR, emits instructions itself (`run`). */
static const struct gen_kind_info {
    const char *name;
    int uses_mxu;                                    /* its --dtype must be an MXU datatype */
    int (*check)(gen_opts *o, const cfg *c, err *e); /* kind-specific checks and defaults */
    int (*run)(gen *g, const gen_opts *o);           /* legacy: direct emission */
    int (*build)(ir *p, const gen_opts *o);          /* frontend: builds the IR */
} gen_kinds[GEN_KIND_COUNT] = {
    [GEN_GEMM] = {"gemm", 1, NULL, NULL, gen_fe_gemm},
    [GEN_ELEMENTWISE] = {"elementwise", 0, NULL, NULL, gen_fe_elementwise},
    [GEN_CONV2D] = {"conv2d", 1, check_conv2d, NULL, gen_fe_conv2d},
    [GEN_MLP] = {"mlp", 1, check_mlp, NULL, gen_fe_mlp},
    [GEN_ATTENTION] = {"attention", 1, NULL, NULL, gen_fe_attention},
    [GEN_TRANSFORMER] = {"transformer", 1, check_transformer, NULL, gen_fe_transformer},
    [GEN_LLM_STEP] = {"llm-step", 1, check_llm, NULL, gen_fe_llm},
    [GEN_EMBEDDING] = {"embedding", 0, NULL, gen_model_embedding, NULL},
};

const char *gen_kind_name(gen_kind k)
{
    return (unsigned)k < GEN_KIND_COUNT ? gen_kinds[k].name : NULL;
}

int gen_kind_lookup(const char *name)
{
    for (int k = 0; k < GEN_KIND_COUNT; k++)
        if (!strcmp(name, gen_kinds[k].name))
            return k;
    return -1;
}

void gen_opts_init(gen_opts *o, gen_kind kind)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->dtype = ISA_DT_BF16;
    o->stride = 1;
}

/* ---- size limits ----------------------------------------------------------------------------
 * The generators multiply sizes freely (tensor elements, bytes of padded rows) in 64-bit
 * arithmetic. Rather than checking each product where it is formed, the options are checked
 * once here against upper bounds of those products: a row of C columns is padded to at most
 * 3 C elements (gen_pitch: at most two granules more, and only rows of a granule or more
 * are padded), an element takes at most 4 bytes, and a sum of k terms is bounded by k times
 * its largest. A workload that passes
 * cannot wrap; one that fails is far beyond any chip's HBM anyway. (FLOP counts are not
 * formed while generating; gen_flops_analytic is for small test workloads.) */

/* factor x the values of n (flag name, uint64_t value) pairs must fit in 64 bits; else an
 * error naming the flags (a NULL name is a factor left unnamed). */
static int size_fits(err *e, const char *kind, uint64_t factor, int n, ...)
{
    uint64_t p = factor;
    int ovf = 0;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        (void)va_arg(ap, const char *);
        ovf |= __builtin_mul_overflow(p, va_arg(ap, uint64_t), &p);
    }
    va_end(ap);
    if (!ovf)
        return 0;
    char flags[ERR_MSG_MAX] = "";
    size_t len = 0;
    va_start(ap, n);
    for (int i = 0; i < n && len < sizeof flags; i++) {
        const char *flag = va_arg(ap, const char *);
        unsigned long long v = va_arg(ap, uint64_t);
        if (flag)
            len += (size_t)snprintf(flags + len, sizeof flags - len, "%s--%s %llu",
                                    len ? " x " : "", flag, v);
    }
    va_end(ap);
    return err_set(e, "gen %s: %s: the size in bytes does not fit in 64 bits; use smaller sizes",
                   kind, flags);
}

#define SZ(flag, v) flag, (uint64_t)(v)

static int check_sizes(const gen_opts *o, const cfg *c, const char *kind, err *e)
{
    const uint64_t each[] = {o->m,       o->n,     o->k,      o->elements, o->height,
                             o->width,   o->in_ch, o->out_ch, o->kh,       o->kw,
                             o->padding, o->batch, o->heads,  o->seq,      o->head_dim,
                             o->d_model, o->d_ff,  o->vocab,  o->layers};
    const char *names[] = {"m",      "n",        "k",           "elements",
                           "height", "width",    "in-channels", "out-channels",
                           "kernel", "kernel-w", "padding",     "batch",
                           "heads",  "seq",      "head-dim",    "d-model",
                           "d-ff",   "vocab",    "layers"};
    /* One flag alone: its bytes, padded (below 2^60, so sums of two flags cannot wrap). */
    for (unsigned i = 0; i < sizeof each / sizeof each[0]; i++)
        if (size_fits(e, kind, 16, 1, SZ(names[i], each[i])))
            return -1;
    for (unsigned i = 0; i < o->nsizes; i++)
        if (size_fits(e, kind, 16, 1, SZ("layers", o->sizes[i])))
            return -1;
    switch (o->kind) {
    case GEN_GEMM:
        if (size_fits(e, kind, 12, 2, SZ("m", o->m), SZ("k", o->k)) ||
            size_fits(e, kind, 12, 2, SZ("k", o->k), SZ("n", o->n)) ||
            size_fits(e, kind, 12, 2, SZ("m", o->m), SZ("n", o->n)))
            return -1;
        break;
    case GEN_CONV2D: {
        /* output rows and columns are at most the padded input's */
        uint64_t P = o->height + 2 * o->padding, Q = o->width + 2 * o->padding;
        uint64_t kw = o->kw ? o->kw : o->kh;
        if (size_fits(e, kind, 12, 4, SZ("batch", o->batch), SZ("height", P), SZ("width", Q),
                      SZ("in-channels", o->in_ch)) ||
            size_fits(e, kind, 12, 4, SZ("batch", o->batch), SZ("height", P), SZ("width", Q),
                      SZ("out-channels", o->out_ch)) ||
            size_fits(e, kind, 12, 4, SZ("kernel", o->kh), SZ("kernel-w", kw),
                      SZ("in-channels", o->in_ch), SZ("out-channels", o->out_ch)))
            return -1;
        break;
    }
    case GEN_MLP:
        for (unsigned i = 0; i < o->nsizes; i++)
            if (size_fits(e, kind, 12, 2, SZ("batch", o->batch), SZ("layers", o->sizes[i])) ||
                (i + 1 < o->nsizes && size_fits(e, kind, 12, 2, SZ("layers", o->sizes[i]),
                                                SZ("layers", o->sizes[i + 1]))))
                return -1;
        break;
    case GEN_ATTENTION:
        /* Q, K, V and O: batch x heads x seq x head_dim each */
        if (size_fits(e, kind, 12 * 4, 4, SZ("batch", o->batch), SZ("heads", o->heads),
                      SZ("seq", o->seq), SZ("head-dim", o->head_dim)))
            return -1;
        break;
    case GEN_TRANSFORMER:
    case GEN_LLM_STEP: {
        /* Parameters (and gradients, Adam state): L (4 D^2 + 3 D F) + 2 D V; activations
         * B S max(D, 2F, V) per buffer, 14 scratch buffers; KV cache 2 (L + 1) B S D. */
        uint64_t L = o->layers ? o->layers : 1;
        const char *layers = o->kind == GEN_LLM_STEP ? "layers" : NULL;
        if (size_fits(e, kind, 4 * 4 * 8, 3, SZ(layers, L), SZ("d-model", o->d_model),
                      SZ("d-model", o->d_model)) ||
            size_fits(e, kind, 4 * 3 * 8, 3, SZ(layers, L), SZ("d-model", o->d_model),
                      SZ("d-ff", o->d_ff)) ||
            size_fits(e, kind, 4 * 2 * 8, 2, SZ("d-model", o->d_model), SZ("vocab", o->vocab)) ||
            size_fits(e, kind, 12 * 2 * 16, 3, SZ("batch", o->batch), SZ("seq", o->seq),
                      SZ("d-ff", o->d_ff)) ||
            size_fits(e, kind, 12 * 16, 3, SZ("batch", o->batch), SZ("seq", o->seq),
                      SZ("vocab", o->vocab)) ||
            size_fits(e, kind, 12 * 2 * 2 * 2, 4, SZ(layers, L), SZ("batch", o->batch),
                      SZ("seq", o->seq), SZ("d-model", o->d_model)))
            return -1;
        /* Each layer keeps its input activations in an HBM buffer of its own (4 KiB
         * aligned): refuse a count the chip's HBM cannot hold before anything is sized by
         * it (the per-layer address tables). */
        if (L > cfg_hbm_bytes(c) / 4096)
            return err_set(e,
                           "gen %s: --layers %llu: each layer needs at least 4 KiB of the "
                           "chip's %llu bytes of HBM (at most %llu layers)",
                           kind, (unsigned long long)L, (unsigned long long)cfg_hbm_bytes(c),
                           (unsigned long long)(cfg_hbm_bytes(c) / 4096));
        break;
    }
    case GEN_EMBEDDING:
        /* tables of rows x dim elements; pooled vectors batch x tables x dim; row ids
         * batch x lookups per table */
        if (size_fits(e, kind, 4, 3, SZ("tables", o->tables), SZ("rows", o->rows),
                      SZ("dim", o->dim)) ||
            size_fits(e, kind, 4 * 2, 3, SZ("batch", o->batch), SZ("tables", o->tables),
                      SZ("dim", o->dim)) ||
            size_fits(e, kind, 4 * 2, 3, SZ("batch", o->batch), SZ("tables", o->tables),
                      SZ("lookups", o->lookups)))
            return -1;
        break;
    default:
        break;
    }
    return 0;
}

int gen_check(gen_opts *o, const cfg *c, err *e)
{
    if ((unsigned)o->kind >= GEN_KIND_COUNT)
        return err_set(e, "gen: unknown kind %d", (int)o->kind);
    const struct gen_kind_info *k = &gen_kinds[o->kind];
    if (k->uses_mxu && cfg_mxu_rate(c, o->dtype) <= 0)
        return err_set(e, "gen %s: --dtype %s is not supported by %s's MXU", k->name,
                       isa_dtype_name(o->dtype), c->chip_name);
    if (k->check && k->check(o, c, e))
        return -1;
    if (check_sizes(o, c, k->name, e))
        return -1;
    return resolve_parallel(o, NULL, e); /* no-op if done; else degrees 1, default axes */
}

/* The pipeline: frontend -> IR -> lower_tile -> lower_mem -> lower_emit. */
static int run_ir(const struct gen_kind_info *k, const gen_opts *o, const cfg *c, const char *note,
                  gen_result *res, err *e)
{
    ir *p = ir_new(c, e);
    if (!p)
        return -1;
    int rc = -1;
    char *full = NULL;
    /* A frontend failure is kept in p (a builder's message), or was an allocation. */
    if (k->build(p, o)) {
        if (!ir_error(p, e))
            err_setk(e, ERR_NOMEM, "gen: out of memory");
        goto out;
    }
    if (ir_error(p, e) || lower_tile(p, e) || lower_mem(p, cfg_hbm_bytes(c), e))
        goto out;
    const ir_mem_plan *mp = ir_mem_get(p);
    size_t cap = strlen(note ? note : "") + 160;
    if (!(full = malloc(cap))) {
        err_setk(e, ERR_NOMEM, "gen: out of memory");
        goto out;
    }
    uint64_t mf = gen_flops_model(o, ir_cfg(p));
    /* The figures end the note's first line (the command): a topology line after it stays a
     * line of its own (trace_note_topology). */
    const char *nt = note ? note : "";
    int head = (int)strcspn(nt, "\n");
    int n = snprintf(full, cap, "%.*s # peak HBM per chip: %llu bytes", head, nt,
                     (unsigned long long)mp->peak_bytes);
    if (mf && n > 0 && (size_t)n < cap)
        n += snprintf(full + n, cap - (size_t)n, " # model FLOPs per chip: %llu",
                      (unsigned long long)mf);
    /* A decode step makes one token per sequence of this chip's batch: the energy report's
     * tokens per joule reads this word (docs/models-energy.md). */
    if (o->kind == GEN_LLM_STEP && o->decode && n > 0 && (size_t)n < cap)
        n += snprintf(full + n, cap - (size_t)n, " # tokens=%llu",
                      (unsigned long long)(o->batch / (o->dp * o->fsdp * gen_slices(o))));
    if (n > 0 && (size_t)n < cap)
        snprintf(full + n, cap - (size_t)n, "%s", nt + head);
    if (strlen(full) >= TRACE_NOTE_MAX)
        snprintf(full, cap, "%s", note ? note : "");
    if (res) {
        res->peak_hbm_bytes = mp->peak_bytes;
        res->persistent_bytes = mp->persistent_bytes;
        res->naive_hbm_bytes = mp->naive_bytes;
        res->ops = (uint64_t)ir_nops(p);
        res->tensors = (uint64_t)ir_ntensors(p);
    }
    rc = lower_emit(p, o->output, full, e);
out:
    free(full);
    ir_free(p);
    return rc;
}

/* One pipeline stage's trace (gen_pipeline_run's callback; o is checked). */
static int run_llm_stage(const gen_opts *o, const cfg *c, const char *note, gen_result *res, err *e)
{
    return run_ir(&gen_kinds[GEN_LLM_STEP], o, c, note, res, e);
}

int gen_run_result(const gen_opts *opts, const cfg *c, const char *note, gen_result *res, err *e)
{
    gen_opts o = *opts;
    if (res)
        memset(res, 0, sizeof *res);
    if (!o.output)
        return err_set(e, "gen: no output trace path");
    if (gen_check(&o, c, e))
        return -1;
    const struct gen_kind_info *k = &gen_kinds[o.kind];
    if (o.kind == GEN_LLM_STEP && o.pipeline > 1) {
        gen_result r;
        return gen_pipeline_run(&o, c, note, res ? res : &r, run_llm_stage, e);
    }
    if (k->build)
        return run_ir(k, &o, c, note, res, e);
    gen *g = gen_new(c, o.output, note, e);
    if (!g)
        return -1;
    if (k->run(g, &o)) {
        *e = *gen_err(g);
        gen_free(g);
        return -1;
    }
    return gen_finish(g, e);
}

int gen_run(const gen_opts *o, const cfg *c, const char *note, err *e)
{
    return gen_run_result(o, c, note, NULL, e);
}
