/* gen.c - `tpusim gen`: option parsing, usage text, the generating command line as the trace
 * note, analytic FLOP formulas and the trace FLOP counter. The generators themselves live in
 * gen_emit.c (tiling core) and gen_models.c (workload families). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "ofile.h"

enum {
    O_DTYPE = 256,
    O_M,
    O_N,
    O_K,
    O_OP,
    O_ELEMENTS,
    O_BATCH,
    O_HEIGHT,
    O_WIDTH,
    O_INCH,
    O_OUTCH,
    O_KERNEL,
    O_KERNELW,
    O_STRIDE,
    O_PADDING,
    O_LAYERS,
    O_HEADS,
    O_SEQ,
    O_HEADDIM,
    O_CAUSAL,
    O_DMODEL,
    O_DFF,
    O_TRAINING,
    O_VOCAB,
    O_DECODE,
    O_CHIPS,
    O_DP,
    O_TP,
    O_FSDP,
    O_DPAXES,
    O_TPAXES,
    O_FSDPAXES,
    O_SP,
    O_SPAXES,
    O_END
};

static const struct option gen_longopts[] = {
    {"config", required_argument, 0, 'c'},
    {"output", required_argument, 0, 'o'},
    {"help", no_argument, 0, 'h'},
    {"dtype", required_argument, 0, O_DTYPE},
    {"m", required_argument, 0, O_M},
    {"n", required_argument, 0, O_N},
    {"k", required_argument, 0, O_K},
    {"op", required_argument, 0, O_OP},
    {"elements", required_argument, 0, O_ELEMENTS},
    {"batch", required_argument, 0, O_BATCH},
    {"height", required_argument, 0, O_HEIGHT},
    {"width", required_argument, 0, O_WIDTH},
    {"in-channels", required_argument, 0, O_INCH},
    {"out-channels", required_argument, 0, O_OUTCH},
    {"kernel", required_argument, 0, O_KERNEL},
    {"kernel-w", required_argument, 0, O_KERNELW},
    {"stride", required_argument, 0, O_STRIDE},
    {"padding", required_argument, 0, O_PADDING},
    {"layers", required_argument, 0, O_LAYERS},
    {"heads", required_argument, 0, O_HEADS},
    {"seq", required_argument, 0, O_SEQ},
    {"head-dim", required_argument, 0, O_HEADDIM},
    {"causal", no_argument, 0, O_CAUSAL},
    {"d-model", required_argument, 0, O_DMODEL},
    {"d-ff", required_argument, 0, O_DFF},
    {"training", no_argument, 0, O_TRAINING},
    {"vocab", required_argument, 0, O_VOCAB},
    {"decode", no_argument, 0, O_DECODE},
    {"chips", required_argument, 0, O_CHIPS},
    {"data-parallel", required_argument, 0, O_DP},
    {"tensor-parallel", required_argument, 0, O_TP},
    {"fsdp", required_argument, 0, O_FSDP},
    {"dp-axes", required_argument, 0, O_DPAXES},
    {"tp-axes", required_argument, 0, O_TPAXES},
    {"fsdp-axes", required_argument, 0, O_FSDPAXES},
    {"seq-parallel", required_argument, 0, O_SP},
    {"sp-axes", required_argument, 0, O_SPAXES},
    {0, 0, 0, 0},
};

#define PAR_OPTS O_CHIPS, O_DP, O_TP, O_FSDP, O_SP, O_DPAXES, O_TPAXES, O_FSDPAXES, O_SPAXES

/* Per kind: name, options it accepts (beyond -c -o -p --help), required ones, usage. */
typedef struct gen_kind_info {
    const char *name;
    int allowed[24];
    int required[8];
    const char *usage;
} gen_kind_info;

static const gen_kind_info gen_kinds[GEN_KIND_COUNT] = {
    [GEN_GEMM] = {"gemm",
                  {O_M, O_N, O_K, O_DTYPE},
                  {O_M, O_N, O_K},
                  "C[M,N] = A[M,K] B[K,N], tiled over every MXU of the chip.\n"
                  "  --m M --n N --k K     matrix sizes (required)\n"
                  "  --dtype T             bf16 (default), int8, fp8, fp32\n"},
    [GEN_ELEMENTWISE] =
        {"elementwise",
         {O_OP, O_ELEMENTS, O_DTYPE},
         {O_OP, O_ELEMENTS},
         "One vector op streamed HBM -> VMEM -> HBM in double-buffered chunks\n"
         "(the memory-bound reference).\n"
         "  --op OP               add sub mul max min fma select exp log rsqrt tanh\n"
         "                        reduce transpose cast (required)\n"
         "  --elements N          elements (required; K/M/G suffixes = x1024)\n"
         "  --dtype T             bf16 (default), fp32, int8, fp8\n"},
    [GEN_CONV2D] = {"conv2d",
                    {O_BATCH, O_HEIGHT, O_WIDTH, O_INCH, O_OUTCH, O_KERNEL, O_KERNELW, O_STRIDE,
                     O_PADDING, O_DTYPE},
                    {O_BATCH, O_HEIGHT, O_WIDTH, O_INCH, O_OUTCH, O_KERNEL},
                    "2-D convolution lowered to one GEMM (im2col): M = N*P*Q, K = C*R*S,\n"
                    "N = out channels; the patch gather is a strided DMA per input row.\n"
                    "  --batch N --height H --width W --in-channels C --out-channels K\n"
                    "  --kernel R [--kernel-w S]  filter (S defaults to R)\n"
                    "  --stride U (1) --padding D (0) --dtype T (bf16)\n"},
    [GEN_MLP] = {"mlp",
                 {O_LAYERS, O_BATCH, O_DTYPE},
                 {O_LAYERS, O_BATCH},
                 "A stack of dense layers (forward): y = x W1, W2, ... with a tanh between.\n"
                 "  --layers S0,S1,...    layer widths, at least two (S0 is the input)\n"
                 "  --batch B             rows of x\n"
                 "  --dtype T             bf16 (default)\n"},
    [GEN_ATTENTION] = {"attention",
                       {O_BATCH, O_HEADS, O_SEQ, O_HEADDIM, O_CAUSAL, O_DTYPE},
                       {O_BATCH, O_HEADS, O_SEQ, O_HEADDIM},
                       "Self-attention: QK^T on the MXUs, softmax on the vector unit (max-reduce,\n"
                       "sub, exp, sum-reduce, multiply by the reciprocal), PV on the MXUs.\n"
                       "  --batch B --heads H --seq S --head-dim D\n"
                       "  --causal              skip fully masked key blocks\n"
                       "  --dtype T             bf16 (default)\n"},
    [GEN_TRANSFORMER] = {"transformer",
                         {O_BATCH, O_SEQ, O_DMODEL, O_HEADS, O_DFF, O_TRAINING, O_DTYPE, PAR_OPTS},
                         {O_BATCH, O_SEQ, O_DMODEL, O_HEADS, O_DFF},
                         "One pre-norm decoder block (layer norm, QKV, causal attention, output\n"
                         "projection, residual, layer norm, SwiGLU MLP, residual).\n"
                         "  --batch B (global) --seq S --d-model D --heads H --d-ff F\n"
                         "  --training            forward + backward (default: forward)\n"
                         "  --dtype T             bf16 (default)\n"},
    [GEN_LLM_STEP] = {"llm-step",
                      {O_LAYERS, O_DMODEL, O_HEADS, O_DFF, O_VOCAB, O_SEQ, O_BATCH, O_DECODE,
                       O_DTYPE, PAR_OPTS},
                      {O_LAYERS, O_DMODEL, O_HEADS, O_DFF, O_VOCAB, O_SEQ, O_BATCH},
                      "A decoder-only LLM: embedding, layers, final norm, LM head, loss;\n"
                      "training step = forward + backward + Adam, or --decode = one token per\n"
                      "sequence against a KV cache of --seq tokens read from HBM.\n"
                      "  --layers L --d-model D --heads H --d-ff F --vocab V --seq S\n"
                      "  --batch B (global) [--decode] [--chips N]\n"
                      "  --dtype T             bf16 (default)\n"},
};

static const char *gen_par_usage =
    "parallelism (one chip's shard is generated):\n"
    "  --data-parallel D     batch split D ways; gradients all-reduced over --dp-axes (x)\n"
    "  --tensor-parallel T   heads and d_ff split T ways; activations all-reduced over\n"
    "                        --tp-axes (y)\n"
    "  --fsdp F              batch and parameters split F ways; weights all-gathered and\n"
    "                        gradients reduce-scattered over --fsdp-axes (z)\n"
    "  --seq-parallel P      sequence split P ways (training/prefill): q, k, v and the\n"
    "                        attention output all-to-all'd over --sp-axes (x) so that\n"
    "                        attention runs on heads/P whole sequences; gradients also\n"
    "                        all-reduced over --sp-axes\n"
    "  --chips N             N chips; without explicit degrees: data parallel over all axes\n";

static void gen_usage(FILE *out, int kind)
{
    if (kind < 0) {
        fprintf(out, "usage: tpusim gen KIND -c CONFIG -o OUT.tpt [-p key=value]... [options]\n"
                     "\nGenerate the trace of one chip for a workload. Kinds:\n");
        for (int k = 0; k < GEN_KIND_COUNT; k++)
            fprintf(out, "  %s\n", gen_kinds[k].name);
        fprintf(out, "\n'tpusim gen KIND --help' lists a kind's options.\n");
        return;
    }
    fprintf(out,
            "usage: tpusim gen %s -c CONFIG -o OUT.tpt [-p key=value]... [options]\n\n%s"
            "common:\n"
            "  -c, --config CONFIG   machine config, a YAML file or preset name (required)\n"
            "  -o, --output FILE     trace to write (required)\n"
            "  -p key=value          override one config key (repeatable)\n",
            gen_kinds[kind].name, gen_kinds[kind].usage);
    if (kind == GEN_TRANSFORMER || kind == GEN_LLM_STEP)
        fputs(gen_par_usage, out);
}

static const char *opt_name(int id)
{
    for (const struct option *o = gen_longopts; o->name; o++)
        if (o->val == id)
            return o->name;
    return "?";
}

static int in_list(const int *l, unsigned n, int id)
{
    for (unsigned i = 0; i < n && l[i]; i++)
        if (l[i] == id)
            return 1;
    return 0;
}

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

static int parse_vop(const char *s, int *op, err *e)
{
    char buf[32];
    snprintf(buf, sizeof buf, "v.%s", s);
    int o = isa_lookup(buf);
    if (o < 0 || isa_info_of((unsigned)o)->unit != ISA_UNIT_VPU)
        return err_set(e,
                       "gen: --op: unknown vector op '%s' (add sub mul max min fma select "
                       "cast exp log rsqrt tanh reduce transpose)",
                       s);
    *op = o;
    return 0;
}

static int parse_list(const char *s, gen_opts *o, err *e)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    o->nsizes = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->nsizes == GEN_MAX_LAYERS)
            return err_set(e, "gen: --layers: more than %d entries", GEN_MAX_LAYERS);
        if (parse_u64(t, &o->sizes[o->nsizes++], 0, "layers", e))
            return -1;
    }
    if (!o->nsizes)
        return err_set(e, "gen: --layers: empty list");
    return 0;
}

static unsigned topo_axes(const cfg *c)
{
    unsigned d[3];
    int n = cfg_parse_dims(c->ici_dims, d);
    return n < 0 ? 0 : (unsigned)n;
}

/* Chips along the torus axes of `mask` (the size of a collective group on them). */
static uint64_t topo_chips(const cfg *c, unsigned mask)
{
    unsigned d[3];
    int n = cfg_parse_dims(c->ici_dims, d);
    uint64_t p = 1;
    for (int i = 0; i < n; i++)
        if (mask & (1u << i))
            p *= d[i];
    return p;
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
    if (!(given_axes & 4) && o->fsdp > 1 && naxes < 3)
        o->fsdp_axes = o->dp_axes; /* no z axis: shard over the data axes */
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
        if (ax[i].deg > 1 && ax[i].deg > topo_chips(c, ax[i].axes))
            return err_set(e,
                           "gen: --%s %llu: more than the %llu chips on its axes of ici.dims=%s "
                           "(set --%s or -p ici.dims=...)",
                           ax[i].deg_name, (unsigned long long)ax[i].deg,
                           (unsigned long long)topo_chips(c, ax[i].axes), c->ici_dims, ax[i].name);
    }
    uint64_t shards = o->dp * o->fsdp;
    if (o->batch % shards)
        return err_set(e, "gen: --batch %llu is not divisible by data x fsdp = %llu",
                       (unsigned long long)o->batch, (unsigned long long)shards);
    if (o->heads % o->tp || o->d_ff % o->tp || (o->vocab && o->vocab % o->tp))
        return err_set(e, "gen: --tensor-parallel %llu must divide heads, d-ff and vocab",
                       (unsigned long long)o->tp);
    if (o->sp > 1 && o->decode)
        return err_set(e, "gen: --seq-parallel does not apply to --decode (one token per step)");
    if (o->seq % o->sp)
        return err_set(e, "gen: --seq-parallel %llu must divide --seq %llu",
                       (unsigned long long)o->sp, (unsigned long long)o->seq);
    if ((o->heads / o->tp) % o->sp)
        return err_set(e, "gen: --seq-parallel %llu must divide the heads per tensor shard (%llu)",
                       (unsigned long long)o->sp, (unsigned long long)(o->heads / o->tp));
    return 0;
}

static int check_model(gen_opts *o, err *e)
{
    if (o->d_model % o->heads)
        return err_set(e, "gen: --d-model %llu is not divisible by --heads %llu",
                       (unsigned long long)o->d_model, (unsigned long long)o->heads);
    o->head_dim = o->d_model / o->heads;
    return 0;
}

int gen_parse(gen_opts *o, cfg *c, int *help, int argc, char **argv, err *e)
{
    memset(o, 0, sizeof *o);
    *help = 0;
    o->dtype = ISA_DT_BF16;
    o->stride = 1;
    o->dp = o->tp = o->fsdp = o->sp = 1;
    o->dp_axes = 1, o->tp_axes = 2, o->fsdp_axes = 4, o->sp_axes = 1;
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            *help = 1;
            o->kind = GEN_KIND_COUNT;
            return 0;
        }
        return err_set(e, "gen: missing KIND (one of gemm, elementwise, conv2d, mlp, attention, "
                          "transformer, llm-step)");
    }
    int kind = -1;
    for (int k = 0; k < GEN_KIND_COUNT; k++)
        if (!strcmp(argv[1], gen_kinds[k].name))
            kind = k;
    if (kind < 0)
        return err_set(e,
                       "gen: unknown kind '%s' (expected gemm, elementwise, conv2d, mlp, "
                       "attention, transformer or llm-step)",
                       argv[1]);
    o->kind = (gen_kind)kind;
    const gen_kind_info *ki = &gen_kinds[kind];
    const char *ovr[256];
    unsigned novr = 0, given_axes = 0;
    int seen[O_END] = {0}, explicit_deg = 0, ch;
    optind = 1;
    opterr = 0;
    /* getopt_long permutes argv; work on a copy so the caller's note stays in order. */
    char **av = malloc((size_t)argc * sizeof *av);
    if (!av)
        return err_set(e, "gen: out of memory");
    memcpy(av, argv, (size_t)argc * sizeof *av);
    int rc = -1, ac = argc - 1;
    char **args = av + 1; /* getopt starts after the kind */
    while ((ch = getopt_long(ac, args, ":c:o:p:h", gen_longopts, NULL)) != -1) {
        if (ch == 'h') {
            *help = 1;
            rc = 0;
            goto out;
        }
        if (ch == '?' || ch == ':') {
            const char *bad = args[optind - 1];
            err_set(e, "gen %s: %s '%s'", ki->name,
                    ch == ':' ? "missing value for option" : "unknown option", bad);
            goto out;
        }
        if (ch >= O_DTYPE && ch < O_END) {
            if (!in_list(ki->allowed, 24, ch)) {
                err_set(e, "gen %s: option --%s does not apply to this kind", ki->name,
                        opt_name(ch));
                goto out;
            }
            seen[ch] = 1;
        }
        uint64_t *u = NULL;
        int zero_ok = 0;
        switch (ch) {
        case 'c':
            o->config = optarg;
            break;
        case 'o':
            o->output = optarg;
            break;
        case 'p':
            if (novr == 256) {
                err_set(e, "gen: too many -p overrides");
                goto out;
            }
            ovr[novr++] = optarg;
            break;
        case O_DTYPE: {
            int d = isa_dtype_lookup(optarg);
            if (d < 0) {
                err_set(e, "gen: --dtype: unknown datatype '%s' (bf16 int8 fp8 fp32)", optarg);
                goto out;
            }
            o->dtype = (isa_dtype)d;
            break;
        }
        case O_OP:
            if (parse_vop(optarg, &o->vop, e))
                goto out;
            break;
        case O_LAYERS:
            if (parse_list(optarg, o, e))
                goto out;
            break;
        case O_CAUSAL:
            o->causal = 1;
            break;
        case O_TRAINING:
            o->training = 1;
            break;
        case O_DECODE:
            o->decode = 1;
            break;
        case O_DPAXES:
        case O_TPAXES:
        case O_FSDPAXES:
        case O_SPAXES: {
            unsigned *m = ch == O_DPAXES     ? &o->dp_axes
                          : ch == O_TPAXES   ? &o->tp_axes
                          : ch == O_FSDPAXES ? &o->fsdp_axes
                                             : &o->sp_axes;
            if (parse_axes(optarg, m, opt_name(ch), e))
                goto out;
            given_axes |= ch == O_DPAXES ? 1 : ch == O_TPAXES ? 2 : ch == O_FSDPAXES ? 4 : 8;
            break;
        }
        case O_M:
            u = &o->m;
            break;
        case O_N:
            u = &o->n;
            break;
        case O_K:
            u = &o->k;
            break;
        case O_ELEMENTS:
            u = &o->elements;
            break;
        case O_BATCH:
            u = &o->batch;
            break;
        case O_HEIGHT:
            u = &o->height;
            break;
        case O_WIDTH:
            u = &o->width;
            break;
        case O_INCH:
            u = &o->in_ch;
            break;
        case O_OUTCH:
            u = &o->out_ch;
            break;
        case O_KERNEL:
            u = &o->kh;
            break;
        case O_KERNELW:
            u = &o->kw;
            break;
        case O_STRIDE:
            u = &o->stride;
            break;
        case O_PADDING:
            u = &o->padding;
            zero_ok = 1;
            break;
        case O_HEADS:
            u = &o->heads;
            break;
        case O_SEQ:
            u = &o->seq;
            break;
        case O_HEADDIM:
            u = &o->head_dim;
            break;
        case O_DMODEL:
            u = &o->d_model;
            break;
        case O_DFF:
            u = &o->d_ff;
            break;
        case O_VOCAB:
            u = &o->vocab;
            break;
        case O_CHIPS:
            u = &o->chips;
            break;
        case O_DP:
            u = &o->dp;
            explicit_deg = 1;
            break;
        case O_TP:
            u = &o->tp;
            explicit_deg = 1;
            break;
        case O_FSDP:
            u = &o->fsdp;
            explicit_deg = 1;
            break;
        case O_SP:
            u = &o->sp;
            explicit_deg = 1;
            break;
        default:
            break;
        }
        if (u && parse_u64(optarg, u, zero_ok, opt_name(ch), e))
            goto out;
    }
    if (optind < ac) {
        err_set(e, "gen %s: unexpected argument '%s'", ki->name, args[optind]);
        goto out;
    }
    for (unsigned i = 0; i < 8 && ki->required[i]; i++)
        if (!seen[ki->required[i]]) {
            err_set(e, "gen %s: missing --%s", ki->name, opt_name(ki->required[i]));
            goto out;
        }
    if (!o->config) {
        err_set(e, "gen %s: missing -c/--config (a YAML file or preset name such as v7)", ki->name);
        goto out;
    }
    if (!o->output) {
        err_set(e, "gen %s: missing -o/--output", ki->name);
        goto out;
    }
    if (cfg_load(c, o->config, NULL, e))
        goto out;
    for (unsigned i = 0; i < novr; i++) {
        char kv[256];
        snprintf(kv, sizeof kv, "%s", ovr[i]);
        char *eq = strchr(kv, '=');
        if (!eq) {
            err_set(e, "gen: -p '%s': expected key=value", ovr[i]);
            goto out;
        }
        *eq = 0;
        if (cfg_set(c, kv, eq + 1, "-p", e))
            goto out;
    }
    if (cfg_check(c, e))
        goto out;
    if (o->kind != GEN_ELEMENTWISE && cfg_mxu_rate(c, o->dtype) <= 0) {
        err_set(e, "gen %s: --dtype %s is not supported by %s's MXU", ki->name,
                isa_dtype_name(o->dtype), c->chip_name);
        goto out;
    }
    /* kind-specific checks */
    switch (o->kind) {
    case GEN_CONV2D:
        if (!o->kw)
            o->kw = o->kh;
        if (o->height + 2 * o->padding < o->kh || o->width + 2 * o->padding < o->kw) {
            err_set(e, "gen conv2d: kernel larger than the padded input");
            goto out;
        }
        break;
    case GEN_MLP:
        if (o->nsizes < 2) {
            err_set(e, "gen mlp: --layers needs at least two widths (input, output)");
            goto out;
        }
        break;
    case GEN_TRANSFORMER:
        o->layers = 1;
        if (check_model(o, e) || check_parallel(o, c, explicit_deg, given_axes, e))
            goto out;
        break;
    case GEN_LLM_STEP:
        if (o->nsizes != 1) {
            err_set(e, "gen llm-step: --layers takes one count");
            goto out;
        }
        o->layers = o->sizes[0];
        if (check_model(o, e) || check_parallel(o, c, explicit_deg, given_axes, e))
            goto out;
        break;
    default:
        break;
    }
    rc = 0;
out:
    free(av);
    return rc;
}

/* ---- FLOP accounting ---------------------------------------------------------------------- */

static uint64_t conv_out(uint64_t in, uint64_t pad, uint64_t k, uint64_t stride)
{
    return (in + 2 * pad - k) / stride + 1;
}

/* Per-chip matmul parameters of one decoder layer: QKV D x 3D/T, out D/T x D, SwiGLU
 * 2 x (D x F/T) up and F/T x D down. */
static uint64_t layer_params(const gen_opts *o)
{
    uint64_t D = o->d_model, F = o->d_ff / o->tp;
    return D * 3 * D / o->tp + D * D / o->tp + 3 * D * F;
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
        int llm = o->kind == GEN_LLM_STEP, dec = llm && o->decode;
        /* Sequence parallelism: seq/P tokens per chip through the GEMMs, heads/(T P) whole
         * sequences through attention. */
        uint64_t bc = o->batch / (o->dp * o->fsdp), hl = o->heads / (o->tp * o->sp);
        uint64_t tokens = dec ? bc : bc * o->seq / o->sp;
        uint64_t params = o->layers * layer_params(o) + (llm ? o->d_model * (o->vocab / o->tp) : 0);
        uint64_t q = dec ? 1 : o->seq, causal = !dec;
        uint64_t af = gen_attn_flops(c, q, o->seq, o->head_dim, (int)causal, o->dtype, 0);
        uint64_t ab = gen_attn_flops(c, q, o->seq, o->head_dim, (int)causal, o->dtype, 1);
        int train = llm ? !dec : o->training;
        uint64_t f = 2 * params * tokens + o->layers * bc * hl * af;
        if (train)
            f += 4 * params * tokens + o->layers * bc * hl * ab;
        return f;
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

/* ---- entry point ---------------------------------------------------------------------------- */

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

static int gen_kind_run(gen *g, const gen_opts *o)
{
    switch (o->kind) {
    case GEN_GEMM: {
        uint64_t a, b, cc;
        const cfg *c = gen_cfg(g);
        if (gen_hbm_alloc(g, gen_dt_bytes(o->dtype, o->m * gen_pitch(c, o->k, o->dtype)), &a) ||
            gen_hbm_alloc(g, gen_dt_bytes(o->dtype, o->k * gen_pitch(c, o->n, o->dtype)), &b) ||
            gen_hbm_alloc(g, o->m * gen_pitch(c, o->n, ISA_DT_FP32) * 4, &cc) ||
            gen_mark(g, "gemm"))
            return -1;
        gen_gemm_args ga = {.m = o->m,
                            .n = o->n,
                            .k = o->k,
                            .a = a,
                            .b = b,
                            .c = cc,
                            .dt = o->dtype,
                            .out_dt = ISA_DT_FP32};
        return gen_gemm(g, &ga);
    }
    case GEN_ELEMENTWISE: {
        const isa_info *in = isa_info_of((unsigned)o->vop);
        int binary = in->cost == ISA_COST_V_ELEM && o->vop != ISA_OP_V_CAST;
        int ternary = o->vop == ISA_OP_V_FMA || o->vop == ISA_OP_V_SELECT;
        unsigned nin = ternary ? 3 : binary ? 2 : 1;
        isa_dtype out = o->vop == ISA_OP_V_CAST
                            ? (o->dtype == ISA_DT_FP32 ? ISA_DT_BF16 : ISA_DT_FP32)
                            : o->dtype;
        uint64_t nout = o->vop == ISA_OP_V_REDUCE ? (o->elements + 127) / 128 : o->elements;
        gen_stream_args s = {.n = o->elements, .nin = nin, .nout = 1};
        for (unsigned i = 0; i < nin; i++) {
            s.in_dt[i] = o->dtype;
            if (gen_hbm_alloc(g, gen_dt_bytes(o->dtype, o->elements), &s.in[i]))
                return -1;
        }
        s.out_dt[0] = out;
        if (gen_hbm_alloc(g, gen_dt_bytes(out, o->vop == ISA_OP_V_REDUCE ? o->elements : nout),
                          &s.out[0]))
            return -1;
        /* Inputs sit back to back in the chunk buffer, where a binary op reads its second
         * operand; the result goes to the output buffer. */
        gen_vop op = {.op = o->vop,
                      .src = 0,
                      .dst = nin,
                      .dt = o->dtype,
                      .width = o->vop == ISA_OP_V_CAST                                       ? out
                               : (o->vop == ISA_OP_V_REDUCE || o->vop == ISA_OP_V_TRANSPOSE) ? 128
                                                                                             : 0};
        s.ops = &op;
        s.nops = 1;
        return gen_mark(g, "elementwise/%s", in->mnemonic + 2) || gen_stream(g, &s);
    }
    case GEN_CONV2D:
        return gen_model_conv2d(g, o);
    case GEN_MLP:
        return gen_model_mlp(g, o);
    case GEN_ATTENTION:
        return gen_model_attention(g, o);
    case GEN_TRANSFORMER:
        return gen_model_transformer(g, o);
    case GEN_LLM_STEP:
        return gen_model_llm(g, o);
    default:
        return -1;
    }
}

int gen_main(int argc, char **argv, err *e)
{
    gen_opts o;
    int help;
    cfg *c = malloc(sizeof *c);
    if (!c)
        return err_set(e, "gen: out of memory");
    cfg_defaults(c);
    if (gen_parse(&o, c, &help, argc, argv, e)) {
        free(c);
        return -1;
    }
    if (help) {
        gen_usage(stdout, o.kind == GEN_KIND_COUNT ? -1 : (int)o.kind);
        free(c);
        return 0;
    }
    const ofile_ref out = {o.output, "-o"}, ins[] = {{o.config, "config"}, {c->source, "config"}};
    if (ofile_check(&out, 1, ins, 2, e)) { /* before generating: never over the config */
        free(c);
        return -1;
    }
    char note[TRACE_NOTE_MAX];
    build_note(note, sizeof note, argc, argv);
    gen *g = gen_new(c, o.output, note, e);
    if (!g) {
        free(c);
        return -1;
    }
    if (gen_kind_run(g, &o)) {
        *e = *gen_err(g);
        gen_free(g);
        free(c);
        return -1;
    }
    int rc = gen_finish(g, e);
    free(c);
    return rc;
}
