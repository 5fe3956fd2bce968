/* gen_models.c - workload families built on the tiling core: conv2d (im2col GEMM), MLP,
 * attention, a pre-norm decoder block (SwiGLU) and whole decoder-only LLM training and decode
 * steps, each as the SPMD program of one chip under data, tensor, FSDP and sequence
 * parallelism.
 *
 * Assumptions (docs/generators.md): activations are bf16 (the --dtype), GEMMs accumulate in
 * fp32 and cast on write-back; transposed operands of backward GEMMs are read with the
 * transposing DMA layout (same bytes, shape reinterpreted); activations other than each
 * layer's input share one scratch set across layers (the trace times traffic, not values). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

static uint64_t B(isa_dtype dt, uint64_t n)
{
    return gen_dt_bytes(dt, n);
}

static int alloc(gen *g, isa_dtype dt, uint64_t n, uint64_t *a)
{
    return gen_hbm_alloc(g, B(dt, n ? n : 1), a);
}

/* A rows x cols tensor stored with the padded row pitch GEMMs use (gen_pitch). */
static int alloc2(gen *g, isa_dtype dt, uint64_t rows, uint64_t cols, uint64_t *a)
{
    return alloc(g, dt, rows * gen_pitch(gen_cfg(g), cols, dt), a);
}

static uint64_t pitch(gen *g, isa_dtype dt, uint64_t cols)
{
    return gen_pitch(gen_cfg(g), cols, dt);
}

/* out[m,n] = a[m,k] w[k,n], written as dt. */
static int mm(gen *g, isa_dtype dt, uint64_t m, uint64_t n, uint64_t k, uint64_t a, uint64_t w,
              uint64_t out)
{
    gen_gemm_args ga = {.m = m, .n = n, .k = k, .a = a, .b = w, .c = out, .dt = dt, .out_dt = dt};
    return gen_gemm(g, &ga);
}

/* One streamed vector pass with up to 3 inputs and 1 output of n elements (dtype dt). */
static int vpass(gen *g, isa_dtype dt, uint64_t n, unsigned nin, const uint64_t *in, uint64_t out,
                 const gen_vop *ops, unsigned nops)
{
    gen_stream_args s = {.n = n, .nin = nin, .nout = 1, .ops = ops, .nops = nops};
    for (unsigned i = 0; i < nin; i++) {
        s.in[i] = in[i];
        s.in_dt[i] = dt;
    }
    s.out[0] = out;
    s.out_dt[0] = dt;
    return gen_stream(g, &s);
}

/* ---- conv2d, mlp, attention ------------------------------------------------------------ */

int gen_model_conv2d(gen *g, const gen_opts *o)
{
    isa_dtype dt = o->dtype;
    uint64_t P = (o->height + 2 * o->padding - o->kh) / o->stride + 1;
    uint64_t Q = (o->width + 2 * o->padding - o->kw) / o->stride + 1;
    uint64_t M = o->batch * P * Q, K = o->in_ch * o->kh * o->kw, N = o->out_ch;
    uint64_t in, w, patches, out;
    uint64_t in_n = o->batch * o->height * o->width * o->in_ch;
    if (alloc(g, dt, in_n, &in) || alloc2(g, dt, K, N, &w) || alloc2(g, dt, M, K, &patches) ||
        alloc2(g, dt, M, N, &out))
        return -1;
    /* im2col: each patch row gathers kw x C contiguous NHWC elements per filter row. */
    uint64_t row = B(dt, o->kw * o->in_ch), stride = B(dt, o->width * o->in_ch);
    if (stride < row)
        stride = row;
    if (gen_mark(g, "conv2d/im2col") ||
        gen_gather(g, in, B(dt, in_n), patches, B(dt, M * K), row, stride) ||
        gen_mark(g, "conv2d/gemm"))
        return -1;
    return mm(g, dt, M, N, K, patches, w, out);
}

int gen_model_mlp(gen *g, const gen_opts *o)
{
    isa_dtype dt = o->dtype;
    uint64_t x, y;
    uint64_t maxw = 0;
    for (unsigned i = 0; i < o->nsizes; i++)
        maxw = o->sizes[i] > maxw ? o->sizes[i] : maxw;
    if (alloc2(g, dt, o->batch, maxw, &x) || alloc2(g, dt, o->batch, maxw, &y))
        return -1;
    static const gen_vop act[] = {{.op = ISA_OP_V_TANH, .src = 0, .dst = 1, .dt = ISA_DT_BF16}};
    gen_vop a = act[0];
    a.dt = dt;
    for (unsigned i = 0; i + 1 < o->nsizes; i++) {
        uint64_t w;
        if (alloc2(g, dt, o->sizes[i], o->sizes[i + 1], &w) || gen_mark(g, "L%u/fwd", i) ||
            mm(g, dt, o->batch, o->sizes[i + 1], o->sizes[i], x, w, y))
            return -1;
        if (i + 2 < o->nsizes && (gen_mark(g, "L%u/fwd/act", i) ||
                                  vpass(g, dt, o->batch * o->sizes[i + 1], 1, &y, x, &a, 1)))
            return -1;
        if (i + 2 >= o->nsizes)
            break;
    }
    return 0;
}

int gen_model_attention(gen *g, const gen_opts *o)
{
    isa_dtype dt = o->dtype;
    uint64_t n = o->batch * o->seq * o->heads * o->head_dim;
    gen_attn_args a = {.batch = o->batch,
                       .heads = o->heads,
                       .seq = o->seq,
                       .head_dim = o->head_dim,
                       .kv_len = o->seq,
                       .causal = o->causal,
                       .dt = dt,
                       .ld = o->heads * o->head_dim,
                       .kv_ld = o->heads * o->head_dim};
    if (alloc(g, dt, n, &a.q) || alloc(g, dt, n, &a.k) || alloc(g, dt, n, &a.v) ||
        alloc(g, dt, n, &a.o) || gen_mark(g, "attention"))
        return -1;
    return gen_attention(g, &a);
}

/* ---- decoder layers ------------------------------------------------------------------- */

/* Per-chip shapes and HBM tensors of a decoder model. */
typedef struct model {
    const gen_opts *o;
    isa_dtype dt;
    uint64_t bc, S, M, D, hl, hd, A, F, V; /* A = hl*hd attention width; F = d_ff/T; V = vocab/T */
    uint64_t sp;                           /* sequence parallelism: M = bc*S/sp tokens per chip */
    int train, decode, fsdp;
    uint64_t L;
    /* parameters: one contiguous region (the optimizer streams over it) */
    uint64_t params, grads, nparams; /* nparams: elements held by this chip */
    /* per layer: weights (gathered buffer under FSDP), saved input, KV cache for decode */
    uint64_t wq, wk, wv, wo, wup, wdown; /* offsets inside a layer's parameter block */
    uint64_t layer_n;                    /* elements of one layer's (TP-shard) weights */
    uint64_t gathered, ggrad;            /* FSDP: full weight and gradient buffers of a layer */
    uint64_t gbufs;                      /* FSDP: gathered-weight buffers layers rotate through */
    gen_fence pre;                       /* FSDP: the prefetch all-gather in flight, */
    gen_fence gf[2];                     /* FSDP: reduce-scatter reading gradient buffer i */
    int pre_layer;                       /* for this layer (-1: none) */
    uint64_t *xsave, *kcache, *vcache;
    /* scratch activations shared by all layers */
    uint64_t xn, q, k, v, ao, y, h, hn, up, act, dx, dh, t0, t1, t2;
    /* LM */
    uint64_t emb, lm, xf, logits;
} model;

static uint64_t lw(const model *md, unsigned l)
{
    if (md->fsdp)
        return md->gathered + B(md->dt, (uint64_t)(l % md->gbufs) * md->layer_n);
    return md->params + B(md->dt, (uint64_t)l * md->layer_n);
}

static uint64_t lg(const model *md, unsigned l)
{
    if (md->fsdp)
        return md->ggrad + B(md->dt, (uint64_t)(l % 2) * md->layer_n);
    return md->grads + B(md->dt, (uint64_t)l * md->layer_n);
}

/* FSDP: make layer l's gathered weights ready, then prefetch layer `next`'s (-1: none), as
 * FSDP implementations do: the next layer's all-gather runs on the ICI while this layer
 * computes. Layers rotate through three buffers, so the prefetch never overwrites the
 * weights of this layer or of the one before it (which may still be finishing). */
static int fsdp_gather(gen *g, model *md, unsigned l, int next)
{
    if (!md->fsdp)
        return 0;
    uint64_t bytes = B(md->dt, md->layer_n);
    if (md->pre_layer == (int)l) {
        if (gen_fence_wait(g, &md->pre))
            return -1;
    } else {
        gen_fence f = {.sem = -1};
        if (gen_coll(g, ISA_OP_ICI_ALLGATHER, md->o->fsdp_axes, bytes, md->dt, &f) ||
            gen_fence_wait(g, &f))
            return -1;
    }
    md->pre_layer = next; /* md->pre was waited (or never used): it is free */
    if (next < 0)
        return 0;
    return gen_coll(g, ISA_OP_ICI_ALLGATHER, md->o->fsdp_axes, bytes, md->dt, &md->pre);
}

/* Tensor parallelism: start an all-reduce of `elems` activation (or gradient) elements,
 * signalling fence f, so that independent work can run before the wait. */
static int tp_allreduce_start(gen *g, const model *md, uint64_t elems, gen_fence *f)
{
    if (md->o->tp <= 1)
        return 0;
    return gen_coll(g, ISA_OP_ICI_ALLREDUCE, md->o->tp_axes, B(md->dt, elems), md->dt, f);
}

/* Tensor parallelism: all-reduce an [M, D] activation (or gradient) and wait for it. */
static int tp_allreduce(gen *g, const model *md, uint64_t elems)
{
    gen_fence f = {.sem = -1};
    return tp_allreduce_start(g, md, elems, &f) || gen_fence_wait(g, &f) ? -1 : 0;
}

/* Row-parallel GEMM out[M, n] = a[M, k] w[k, n] whose partial sums are all-reduced over the
 * tensor axes. Nothing after it is independent of the sum, so the GEMM is split into row
 * blocks (as collective-matmul decompositions do): block i's all-reduce runs on the ICI
 * while block i+1 computes; only the last block's all-reduce is exposed. */
#define TP_BLOCKS 4
static int mm_allreduce(gen *g, const model *md, uint64_t m, uint64_t n, uint64_t k, uint64_t a,
                        uint64_t w, uint64_t out)
{
    isa_dtype dt = md->dt;
    /* Splitting costs a collective set-up per block and hides at most the GEMM's time: only
     * worth it when the GEMM (at peak) takes at least an eighth of the all-reduce (its bytes
     * over one link). With wide tensor parallelism the GEMM is tiny and nothing can hide. */
    const cfg *c = gen_cfg(g);
    double t_mm = 2.0 * (double)m * (double)n * (double)k / cfg_peak_flops(c, dt);
    double t_ar = (double)B(dt, m * n) / (c->ici_link_gbs * 1e9);
    if (md->o->tp <= 1 || m < 2 * 256 || 8 * t_mm < t_ar)
        return mm(g, dt, m, n, k, a, w, out) || tp_allreduce(g, md, m * n) ? -1 : 0;
    uint64_t rows = (m + TP_BLOCKS - 1) / TP_BLOCKS;
    rows = (rows + 255) / 256 * 256; /* whole MXU passes except at the edge */
    uint64_t lda = pitch(g, dt, k), ldc = pitch(g, dt, n);
    gen_fence f = {.sem = -1};
    for (uint64_t r = 0; r < m; r += rows) {
        uint64_t mr = m - r < rows ? m - r : rows;
        gen_gemm_args ga = {.m = mr,
                            .n = n,
                            .k = k,
                            .a = a + B(dt, r * lda),
                            .b = w,
                            .c = out + B(dt, r * ldc),
                            .lda = lda,
                            .ldc = ldc,
                            .dt = dt,
                            .out_dt = dt};
        if (gen_gemm(g, &ga) || tp_allreduce_start(g, md, mr * n, &f))
            return -1;
    }
    return gen_fence_wait(g, &f);
}

/* Gradient reduction of one layer's (or the LM head's) weight gradients, left in flight
 * until the optimizer: FSDP reduce-scatters over the fsdp axes (then all-reduces the shard
 * over the data axes when both are used); pure data parallelism all-reduces. */
static int grad_reduce(gen *g, const model *md, uint64_t elems, const char *what, gen_fence *f)
{
    const gen_opts *o = md->o;
    /* Sequence shards hold the same weights as data shards do: their gradients are summed
     * over the sequence axes as well. */
    unsigned axes = (o->dp > 1 ? o->dp_axes : 0) | (o->sp > 1 ? o->sp_axes : 0);
    if (o->fsdp <= 1 && !axes)
        return 0;
    if (gen_mark(g, "%s/comm", what))
        return -1;
    if (o->fsdp > 1) {
        if (gen_coll(g, ISA_OP_ICI_REDUCESCATTER, o->fsdp_axes, B(md->dt, elems), md->dt, f))
            return -1;
        if (axes)
            return gen_coll(g, ISA_OP_ICI_ALLREDUCE, axes, B(md->dt, elems / o->fsdp), md->dt,
                            NULL);
        return 0;
    }
    return gen_coll(g, ISA_OP_ICI_ALLREDUCE, axes, B(md->dt, elems), md->dt, NULL);
}

/* Wait for the layer gradient reduce-scatters still reading the FSDP gradient buffers. */
static int grad_fences_wait(gen *g, model *md)
{
    return gen_fence_wait(g, &md->gf[0]) || gen_fence_wait(g, &md->gf[1]) ? -1 : 0;
}

/* Sequence parallelism (DeepSpeed-Ulysses style): an all-to-all of `n` [M, A] tensors over
 * the sequence axes, turning a sequence shard of all local heads into whole sequences of
 * heads/P (or back), waited right away since attention (or the next GEMM) needs it. */
static int sp_alltoall(gen *g, const model *md, unsigned n, const char *what, unsigned l)
{
    if (md->sp <= 1)
        return 0;
    gen_fence f = {.sem = -1};
    if (gen_mark(g, "L%u/%s/comm", l, what) ||
        gen_coll(g, ISA_OP_ICI_ALLTOALL, md->o->sp_axes, B(md->dt, n * md->M * md->A), md->dt,
                 &f) ||
        gen_fence_wait(g, &f))
        return -1;
    return gen_mark(g, "L%u/%s", l, what); /* back to the compute region */
}

#define F32 ISA_DT_FP32
/* Layer norm forward: mean (reduce), centre, square, variance (reduce), rsqrt per row,
 * normalise, scale and shift (fma). */
static int layernorm(gen *g, const model *md, uint64_t n, uint64_t in, uint64_t out)
{
    isa_dtype dt = md->dt;
    unsigned D = (unsigned)md->D;
    const gen_vop ops[] = {
        {ISA_OP_V_REDUCE, 0, 2, dt, D, 0}, {ISA_OP_V_SUB, 0, 2, dt, 0, 0},
        {ISA_OP_V_MUL, 2, 3, dt, 0, 0},    {ISA_OP_V_REDUCE, 3, 3, dt, D, 0},
        {ISA_OP_V_RSQRT, 3, 3, F32, 0, D}, {ISA_OP_V_MUL, 2, 2, dt, 0, 0},
        {ISA_OP_V_FMA, 2, 1, dt, 0, 0},
    };
    return vpass(g, dt, n, 1, &in, out, ops, sizeof ops / sizeof ops[0]);
}

/* Layer norm backward plus the residual gradient: dx = res + LN'(dy). */
static int layernorm_bwd(gen *g, const model *md, uint64_t n, uint64_t dy, uint64_t x, uint64_t out)
{
    isa_dtype dt = md->dt;
    unsigned D = (unsigned)md->D;
    const uint64_t in[2] = {dy, x};
    const gen_vop ops[] = {
        {ISA_OP_V_MUL, 0, 3, dt, 0, 0}, {ISA_OP_V_REDUCE, 3, 4, dt, D, 0},
        {ISA_OP_V_MUL, 0, 3, dt, 0, 0}, {ISA_OP_V_REDUCE, 3, 4, dt, D, 0},
        {ISA_OP_V_FMA, 0, 3, dt, 0, 0}, {ISA_OP_V_SUB, 3, 3, dt, 0, 0},
        {ISA_OP_V_ADD, 0, 2, dt, 0, 0},
    };
    return vpass(g, dt, n, 2, in, out, ops, sizeof ops / sizeof ops[0]);
}

/* SwiGLU: act = silu(gate) * up, silu(x) = x / (1 + exp(-x)), reciprocal as rsqrt squared. */
static int swiglu(gen *g, const model *md, uint64_t n, uint64_t gate, uint64_t up, uint64_t out)
{
    isa_dtype dt = md->dt;
    const uint64_t in[2] = {gate, up};
    const gen_vop ops[] = {
        {ISA_OP_V_EXP, 0, 3, dt, 0, 0},   {ISA_OP_V_ADD, 3, 3, dt, 0, 0},
        {ISA_OP_V_RSQRT, 3, 3, dt, 0, 0}, {ISA_OP_V_MUL, 3, 3, dt, 0, 0},
        {ISA_OP_V_MUL, 0, 3, dt, 0, 0},   {ISA_OP_V_MUL, 3, 2, dt, 0, 0},
    };
    return vpass(g, dt, n, 2, in, out, ops, sizeof ops / sizeof ops[0]);
}

static int swiglu_bwd(gen *g, const model *md, uint64_t n, uint64_t dact, uint64_t gate,
                      uint64_t out)
{
    isa_dtype dt = md->dt;
    const uint64_t in[2] = {dact, gate};
    const gen_vop ops[] = {
        {ISA_OP_V_EXP, 1, 3, dt, 0, 0},   {ISA_OP_V_ADD, 3, 3, dt, 0, 0},
        {ISA_OP_V_RSQRT, 3, 3, dt, 0, 0}, {ISA_OP_V_MUL, 3, 3, dt, 0, 0},
        {ISA_OP_V_FMA, 1, 4, dt, 0, 0},   {ISA_OP_V_MUL, 0, 4, dt, 0, 0},
        {ISA_OP_V_MUL, 0, 2, dt, 0, 0},
    };
    return vpass(g, dt, n, 2, in, out, ops, sizeof ops / sizeof ops[0]);
}

static int residual(gen *g, const model *md, uint64_t n, uint64_t a, uint64_t b, uint64_t out)
{
    const uint64_t in[2] = {a, b};
    const gen_vop op = {ISA_OP_V_ADD, 0, 2, md->dt, 0, 0};
    return vpass(g, md->dt, n, 2, in, out, &op, 1);
}

static int layer_fwd(gen *g, model *md, unsigned l)
{
    isa_dtype dt = md->dt;
    uint64_t M = md->M, D = md->D, A = md->A, F = md->F;
    uint64_t w = lw(md, l), x = md->xsave[l], xnext = md->xsave[l + 1];
    int next = l + 1 < md->L ? (int)l + 1 : -1;
    if (gen_mark(g, "L%u/fwd/norm1", l) || fsdp_gather(g, md, l, next) ||
        layernorm(g, md, M * D, x, md->xn) || gen_mark(g, "L%u/fwd/attn", l))
        return -1;
    /* Under sequence parallelism attention sees heads/P of whole sequences (rows A/P wide). */
    gen_attn_args a = {.batch = md->bc,
                       .heads = md->hl / md->sp,
                       .head_dim = md->hd,
                       .dt = dt,
                       .ld = A / md->sp,
                       .kv_ld = A / md->sp,
                       .q = md->q,
                       .k = md->k,
                       .v = md->v,
                       .o = md->ao};
    if (md->decode) {
        /* The new token's K and V go straight into the cache (row S-1 of each sequence). */
        uint64_t kc = md->kcache[l], vc = md->vcache[l], last = B(dt, (md->S - 1) * A);
        gen_gemm_args gk = {.m = M,
                            .n = A,
                            .k = D,
                            .a = md->xn,
                            .b = w + B(dt, md->wk),
                            .c = kc + last,
                            .ldc = md->S * A,
                            .dt = dt,
                            .out_dt = dt};
        gen_gemm_args gv = gk;
        gv.b = w + B(dt, md->wv);
        gv.c = vc + last;
        if (mm(g, dt, M, A, D, md->xn, w + B(dt, md->wq), md->q) || gen_gemm(g, &gk) ||
            gen_gemm(g, &gv))
            return -1;
        a.seq = 1;
        a.kv_len = md->S;
        a.k = kc;
        a.v = vc;
    } else {
        if (mm(g, dt, M, A, D, md->xn, w + B(dt, md->wq), md->q) ||
            mm(g, dt, M, A, D, md->xn, w + B(dt, md->wk), md->k) ||
            mm(g, dt, M, A, D, md->xn, w + B(dt, md->wv), md->v))
            return -1;
        a.seq = a.kv_len = md->S;
        a.causal = 1;
    }
    if (sp_alltoall(g, md, 3, "fwd/attn", l) || gen_attention(g, &a) ||
        sp_alltoall(g, md, 1, "fwd/attn", l) ||
        mm_allreduce(g, md, M, D, A, md->ao, w + B(dt, md->wo), md->y) ||
        residual(g, md, M * D, md->y, x, md->h) || gen_mark(g, "L%u/fwd/mlp", l) ||
        layernorm(g, md, M * D, md->h, md->hn) ||
        mm(g, dt, M, 2 * F, D, md->hn, w + B(dt, md->wup), md->up) ||
        swiglu(g, md, M * F, md->up, md->up + B(dt, M * F), md->act) ||
        mm_allreduce(g, md, M, D, F, md->act, w + B(dt, md->wdown), md->y) ||
        residual(g, md, M * D, md->y, md->h, xnext))
        return -1;
    return 0;
}

/* Backward of one layer. md->dx holds the gradient of the layer output on entry and of the
 * layer input on return. Each GEMM Y = X W contributes dX = dY W^T and dW = X^T dY. */
static int layer_bwd(gen *g, model *md, unsigned l)
{
    isa_dtype dt = md->dt;
    uint64_t M = md->M, D = md->D, A = md->A, F = md->F;
    uint64_t w = lw(md, l), gw = lg(md, l), x = md->xsave[l];
    /* The TP all-reduce of each input gradient starts as soon as it is computed and runs
     * behind the weight-gradient GEMMs, which do not need it. Under FSDP the reduce-scatter
     * of layer l+2 read the gradient buffer this layer writes: wait for it first (layer
     * l+1's still runs behind this layer's backward). */
    gen_fence tf = {.sem = -1};
    if (gen_mark(g, "L%u/bwd/mlp", l) || fsdp_gather(g, md, l, (int)l - 1) ||
        (md->fsdp && gen_fence_wait(g, &md->gf[l % 2])) ||
        mm(g, dt, M, F, D, md->dx, w + B(dt, md->wdown), md->t0) ||   /* d act */
        mm(g, dt, F, D, M, md->act, md->dx, gw + B(dt, md->wdown)) || /* d Wdown */
        swiglu_bwd(g, md, M * F, md->t0, md->up, md->t1) ||           /* d gate|up */
        mm(g, dt, M, D, 2 * F, md->t1, w + B(dt, md->wup), md->t2) || /* d hn */
        tp_allreduce_start(g, md, M * D, &tf) ||
        mm(g, dt, D, 2 * F, M, md->hn, md->t1, gw + B(dt, md->wup)) || /* d Wup */
        gen_fence_wait(g, &tf) ||
        layernorm_bwd(g, md, M * D, md->t2, md->h, md->dh) || /* + residual */
        gen_mark(g, "L%u/bwd/attn", l) ||
        mm(g, dt, M, A, D, md->dh, w + B(dt, md->wo), md->t0) || /* d attn out */
        mm(g, dt, A, D, M, md->ao, md->dh, gw + B(dt, md->wo)))  /* d Wo */
        return -1;
    gen_attn_args a = {.batch = md->bc,
                       .heads = md->hl / md->sp,
                       .seq = md->S,
                       .kv_len = md->S,
                       .head_dim = md->hd,
                       .causal = 1,
                       .backward = 1,
                       .dt = dt,
                       .ld = A / md->sp,
                       .kv_ld = A / md->sp,
                       .q = md->q,
                       .k = md->k,
                       .v = md->v,
                       .o = md->ao,
                       .dout = md->t0,
                       .dq = md->t1,
                       .dk = md->t2,
                       .dv = md->y};
    if (sp_alltoall(g, md, 1, "bwd/attn", l) || gen_attention(g, &a) ||
        sp_alltoall(g, md, 3, "bwd/attn", l) ||
        mm(g, dt, M, D, A, md->t1, w + B(dt, md->wq), md->t1) || /* d xn (q) */
        mm(g, dt, M, D, A, md->t2, w + B(dt, md->wk), md->t2) || /* d xn (k) */
        mm(g, dt, M, D, A, md->y, w + B(dt, md->wv), md->y))     /* d xn (v) */
        return -1;
    /* Sum the three input-gradient parts and start their TP all-reduce; the weight
     * gradients run behind it; then norm-1 backward and the residual path. */
    const uint64_t in[3] = {md->t1, md->t2, md->y}, in2[2] = {md->dh, md->dx};
    const gen_vop sum[] = {{ISA_OP_V_ADD, 0, 4, dt, 0, 0}, {ISA_OP_V_ADD, 1, 3, dt, 0, 0}};
    const gen_vop ops[] = {
        {ISA_OP_V_MUL, 0, 3, dt, 0, 0},
        {ISA_OP_V_REDUCE, 3, 3, dt, (unsigned)D, 0},
        {ISA_OP_V_FMA, 0, 3, dt, 0, 0},
        {ISA_OP_V_ADD, 0, 2, dt, 0, 0},
    };
    (void)x;
    char what[32];
    snprintf(what, sizeof what, "L%u/bwd", l);
    tf.sem = -1;
    tf.count = 0;
    return vpass(g, dt, M * D, 3, in, md->dh, sum, 2) || tp_allreduce_start(g, md, M * D, &tf) ||
                   mm(g, dt, D, A, M, md->xn, md->t1, gw + B(dt, md->wq)) || /* d Wq */
                   mm(g, dt, D, A, M, md->xn, md->t2, gw + B(dt, md->wk)) || /* d Wk */
                   mm(g, dt, D, A, M, md->xn, md->y, gw + B(dt, md->wv)) ||  /* d Wv */
                   gen_fence_wait(g, &tf) ||
                   vpass(g, dt, M * D, 2, in2, md->dx, ops, sizeof ops / sizeof ops[0]) ||
                   grad_reduce(g, md, md->layer_n, what, &md->gf[l % 2])
               ? -1
               : 0;
}

/* ---- model setup ------------------------------------------------------------------------- */

static int model_init(gen *g, model *md, const gen_opts *o, int lm, uint64_t *xs, uint64_t *kc,
                      uint64_t *vc)
{
    memset(md, 0, sizeof *md);
    md->o = o;
    md->dt = o->dtype;
    isa_dtype dt = md->dt;
    md->bc = o->batch / (o->dp * o->fsdp);
    md->S = o->seq;
    md->sp = o->sp;
    md->decode = lm && o->decode;
    md->train = lm ? !o->decode : o->training;
    md->M = md->decode ? md->bc : md->bc * md->S / md->sp;
    md->D = o->d_model;
    md->hl = o->heads / o->tp;
    md->hd = o->head_dim;
    md->A = md->hl * md->hd;
    md->F = o->d_ff / o->tp;
    md->V = lm ? o->vocab / o->tp : 0;
    md->L = o->layers;
    md->fsdp = o->fsdp > 1;
    md->xsave = xs;
    md->kcache = kc;
    md->vcache = vc;
    uint64_t D = md->D, A = md->A, F = md->F, M = md->M;
    md->wq = 0;
    md->wk = D * A;
    md->wv = 2 * D * A;
    md->wo = 3 * D * A;
    md->wup = 4 * D * A;
    md->wdown = md->wup + 2 * D * F;
    md->layer_n = md->wdown + F * D;
    /* Parameters this chip holds: layer weights, LM head (D x V/T) and embedding (V x D,
     * replicated over tensor parallelism), divided by the FSDP degree. */
    uint64_t total = md->L * md->layer_n + (lm ? D * md->V + o->vocab * D : 0);
    md->nparams = total / o->fsdp;
    if (alloc(g, dt, md->nparams, &md->params))
        return -1;
    if (md->train && alloc(g, dt, md->nparams, &md->grads))
        return -1;
    md->gbufs = md->L > 2 ? 3 : md->L;
    md->pre_layer = -1;
    md->pre = (gen_fence){.sem = -1};
    md->gf[0].sem = md->gf[1].sem = -1;
    if (md->fsdp && (alloc(g, dt, md->gbufs * md->layer_n, &md->gathered) ||
                     (md->train && alloc(g, dt, 2 * md->layer_n, &md->ggrad))))
        return -1;
    for (uint64_t l = 0; l <= md->L; l++)
        if (alloc(g, dt, M * D, &xs[l]))
            return -1;
    if (md->decode)
        for (uint64_t l = 0; l < md->L; l++)
            if (alloc(g, dt, md->bc * md->S * A, &kc[l]) ||
                alloc(g, dt, md->bc * md->S * A, &vc[l]))
                return -1;
    uint64_t wide = M * (2 * F > D ? 2 * F : D);
    if (wide < M * A)
        wide = M * A;
    uint64_t *scr[] = {&md->xn, &md->q,   &md->k,  &md->v,  &md->ao, &md->y,  &md->h,
                       &md->hn, &md->act, &md->dx, &md->dh, &md->t0, &md->t1, &md->t2};
    for (unsigned i = 0; i < sizeof scr / sizeof scr[0]; i++)
        if (alloc(g, dt, wide, scr[i]))
            return -1;
    if (alloc(g, dt, wide, &md->up))
        return -1;
    return 0;
}

int gen_model_transformer(gen *g, const gen_opts *o)
{
    model md;
    uint64_t xs[2];
    if (model_init(g, &md, o, 0, xs, NULL, NULL) || layer_fwd(g, &md, 0))
        return -1;
    if (!md.train)
        return 0;
    /* The block's output gradient is taken as given (it arrives from the layer above). */
    return layer_bwd(g, &md, 0) || grad_fences_wait(g, &md) || gen_wait_late(g) ? -1 : 0;
}

/* Loss on the vector unit over this chip's vocabulary shard: row max, subtract, exp, row sum
 * (max and sum all-reduced over the tensor axes), log, and in training the logits gradient
 * softmax - onehot. Decode samples from the same softmax. */
static int loss(gen *g, const model *md)
{
    isa_dtype dt = md->dt;
    unsigned V = (unsigned)md->V;
    const gen_vop ops[] = {
        {ISA_OP_V_REDUCE, 0, 2, dt, V, 0}, {ISA_OP_V_SUB, 0, 2, F32, 0, 0},
        {ISA_OP_V_EXP, 2, 2, F32, 0, 0},   {ISA_OP_V_REDUCE, 2, 3, F32, V, 0},
        {ISA_OP_V_LOG, 3, 3, F32, 0, V},   {ISA_OP_V_RSQRT, 3, 3, F32, 0, V},
        {ISA_OP_V_MUL, 2, 2, F32, 0, 0},   {ISA_OP_V_SUB, 2, 1, dt, 0, 0},
    };
    if (gen_mark(g, "loss") ||
        vpass(g, dt, md->M * md->V, 1, &md->logits, md->logits, ops, sizeof ops / sizeof ops[0]))
        return -1;
    if (md->o->tp > 1) {
        gen_fence f = {.sem = -1};
        if (gen_coll(g, ISA_OP_ICI_ALLREDUCE, md->o->tp_axes, 2 * md->M * 4, F32, &f) ||
            gen_fence_wait(g, &f))
            return -1;
    }
    return 0;
}

/* Adam over this chip's parameters, streamed from HBM: m = b1 m + (1-b1) g,
 * v = b2 v + (1-b2) g^2, master -= lr m / (sqrt(v) + eps), param = bf16(master). */
static int adam(gen *g, const model *md)
{
    uint64_t n = md->nparams, m, v, master;
    if (alloc(g, F32, n, &m) || alloc(g, F32, n, &v) || alloc(g, F32, n, &master))
        return -1;
    const gen_vop ops[] = {
        {ISA_OP_V_MUL, 1, 8, F32, 0, 0},   {ISA_OP_V_FMA, 0, 4, F32, 0, 0},
        {ISA_OP_V_MUL, 0, 8, F32, 0, 0},   {ISA_OP_V_FMA, 2, 5, F32, 0, 0},
        {ISA_OP_V_RSQRT, 5, 8, F32, 0, 0}, {ISA_OP_V_MUL, 4, 8, F32, 0, 0},
        {ISA_OP_V_FMA, 3, 6, F32, 0, 0},   {ISA_OP_V_CAST, 6, 7, F32, md->dt, 0},
    };
    gen_stream_args s = {.n = n, .nin = 4, .nout = 4, .ops = ops, .nops = 8};
    s.in[0] = md->grads, s.in_dt[0] = md->dt;
    s.in[1] = m, s.in[2] = v, s.in[3] = master;
    s.in_dt[1] = s.in_dt[2] = s.in_dt[3] = F32;
    s.out[0] = m, s.out[1] = v, s.out[2] = master, s.out[3] = md->params;
    s.out_dt[0] = s.out_dt[1] = s.out_dt[2] = F32;
    s.out_dt[3] = md->dt;
    return gen_mark(g, "optimizer") || gen_wait_late(g) || gen_stream(g, &s) ? -1 : 0;
}

int gen_model_llm(gen *g, const gen_opts *o)
{
    model md;
    uint64_t *x = calloc(o->layers + 1, sizeof *x), *kc = calloc(o->layers + 1, sizeof *kc),
             *vc = calloc(o->layers + 1, sizeof *vc);
    int rc = -1;
    if (!x || !kc || !vc) {
        err_set(gen_err(g), "gen llm-step: --layers %llu: out of memory for the per-layer tables",
                (unsigned long long)o->layers);
        goto out;
    }
    if (model_init(g, &md, o, 1, x, kc, vc))
        goto out;
    isa_dtype dt = md.dt;
    uint64_t M = md.M, D = md.D, V = md.V;
    /* Embedding table, then the LM head (D x V/T), inside the parameter region. */
    uint64_t layers_n = md.L * md.layer_n;
    md.lm = md.params + B(dt, layers_n / o->fsdp);
    md.emb = md.lm + B(dt, D * V / o->fsdp);
    uint64_t lm_w = md.fsdp ? md.gathered : md.lm, glm = md.fsdp ? md.ggrad : md.grads;
    if (md.fsdp && D * V > md.gbufs * md.layer_n) {
        /* The gathered buffers must also hold the LM head. */
        if (alloc2(g, dt, D, V, &md.gathered) || (md.train && alloc2(g, dt, D, V, &md.ggrad)))
            goto out;
        lm_w = md.gathered;
        glm = md.ggrad;
    }
    if (alloc2(g, dt, M, D, &md.xf) || alloc(g, dt, pitch(g, dt, M) * pitch(g, dt, V), &md.logits))
        goto out;
    /* Embedding lookup: one row of D elements per token, gathered from the table. */
    uint64_t row = B(dt, D), table = B(dt, o->vocab * D / o->fsdp);
    if (gen_mark(g, "embed") || gen_gather(g, md.emb, table, x[0], B(dt, M * D), row, 3 * row))
        goto out;
    for (unsigned l = 0; l < md.L; l++)
        if (layer_fwd(g, &md, l))
            goto out;
    if (gen_mark(g, "final_norm") || layernorm(g, &md, M * D, x[md.L], md.xf) ||
        gen_mark(g, "lm_head") ||
        (md.fsdp && gen_coll(g, ISA_OP_ICI_ALLGATHER, o->fsdp_axes, B(dt, D * V), dt, NULL)) ||
        (md.fsdp && gen_wait_late(g)) || mm(g, dt, M, V, D, md.xf, lm_w, md.logits) || loss(g, &md))
        goto out;
    if (md.decode) {
        rc = 0;
        goto out;
    }
    /* Backward: LM head, final norm, layers in reverse, embedding gradient. */
    if (gen_mark(g, "lm_head/bwd") || mm(g, dt, M, D, V, md.logits, lm_w, md.dx) ||
        mm(g, dt, D, V, M, md.xf, md.logits, glm) || tp_allreduce(g, &md, M * D) ||
        grad_reduce(g, &md, D * V, "lm_head/bwd", &md.gf[(md.L - 1) % 2]) ||
        gen_mark(g, "final_norm/bwd") || layernorm_bwd(g, &md, M * D, md.dx, x[md.L], md.dx))
        goto out;
    for (unsigned l = md.L; l-- > 0;)
        if (layer_bwd(g, &md, l))
            goto out;
    {
        /* Embedding gradient: scatter-add each token's gradient row into the table. */
        const uint64_t in[2] = {md.dx, x[0]};
        const gen_vop add = {ISA_OP_V_ADD, 0, 2, dt, 0, 0};
        if (gen_mark(g, "embed/bwd") || vpass(g, dt, M * D, 2, in, md.t0, &add, 1) ||
            grad_reduce(g, &md, o->vocab * D, "embed/bwd", NULL) || grad_fences_wait(g, &md) ||
            adam(g, &md))
            goto out;
    }
    rc = 0;
out:
    free(x);
    free(kc);
    free(vc);
    return rc;
}
