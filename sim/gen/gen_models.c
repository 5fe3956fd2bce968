/* gen_models.c - frontends of the decoder models: a pre-norm decoder block (SwiGLU,
 * grouped-query attention) and whole decoder-only LLM training and decode steps, each
 * built as the workload IR (ir.h) of one chip's SPMD program under data, tensor, FSDP and
 * sequence parallelism. No instruction is written here (lower_*.c do that).
 *
 * Assumptions (docs/generators.md): activations are bf16 (the --dtype), GEMMs accumulate in
 * fp32 and cast on write-back; transposed operands of backward GEMMs are views of the same
 * bytes with the shape reinterpreted (the transposing DMA layout); in training each layer's
 * input is kept, and of the forward activations the backward reads, those the remat policy
 * saves (gen_acts_saved) are kept per layer while the others are recomputed from the layer
 * input at the start of the layer's backward; everything else, and every activation of a
 * forward-only step, is a temporary the memory plan reuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

static uint64_t B(isa_dtype dt, uint64_t n)
{
    return gen_dt_bytes(dt, n);
}

/* Per-chip shapes and tensors of a decoder model. */
typedef struct model {
    ir *p;
    const gen_opts *o;
    isa_dtype dt;
    uint64_t bc, S, M, D, hl, kvl, hd, A, KA, F, V; /* A = hl*hd, KA = kvl*hd; F = d_ff/T */
    uint64_t UW;                                    /* MLP up width: 2F (SwiGLU) or F (GELU) */
    int gelu, par, bias, tied;
    uint64_t sp; /* tokens per chip M = bc*S/sp */
    int train, decode, fsdp;
    uint64_t L;
    /* parameters: one contiguous region (the optimizer streams over it), weights padded to
     * the layout pitch inside it */
    int params, grads;
    uint64_t nparams;              /* elements held by this chip */
    uint64_t wqkv, wo, wup, wdown; /* element offsets inside a layer's block (Q|K|V fused) */
    uint64_t bias_n;               /* biases of a layer (after its weights; --bias) */
    uint64_t layer_n, lm_n;        /* elements of one layer's weights, of the LM head */
    uint64_t layer_real, nreal;    /* the same without layout padding (what collectives move) */
    int gathered[3], ggrad[2];     /* FSDP: gathered weights, full-size gradients */
    uint64_t gbufs;
    int pre, pre_layer; /* FSDP: token of the prefetch all-gather, and for which layer */
    int gf[2];          /* FSDP: tokens of the reduce-scatters reading ggrad[i] */
    int *xsave, *kcache, *vcache;
    /* training: layer l's saved forward activations sv[l * GEN_ACT_COUNT + gen_act] (-1: not
     * saved, recomputed in the backward) */
    int *sv;
    unsigned needed, keep; /* gen_acts_needed, gen_acts_saved */
    const char *ph;        /* region phase: "fwd", or "bwd/remat" while recomputing */
    int dx;                /* training: gradient of the current layer's output */
    int lm_w, glm, xf, logits;
    /* mixture of experts (gen_moe.c): a MoE layer's MLP weights (moe_n elements, padded)
     * start at wup; the forward activations its backward reads, per layer */
    uint64_t moe_n, moe_real;
    gen_moe_saved *msv;
    int no_reduce; /* pipeline: weight gradients still accumulating (not the last microbatch) */
    /* across slices: the all-gather that completes the previous gradient's reduction, not yet
     * emitted (grad_reduce_slices); buffer, axes, bytes */
    int ag_buf;
    unsigned ag_axes;
    uint64_t ag_bytes;
} model;

static int tmp(model *md, const char *name, uint64_t rows, uint64_t cols)
{
    return ir_tensor_new(md->p, name, md->dt, rows, cols);
}

static uint64_t lay_pitch(const model *md, uint64_t rows, uint64_t cols)
{
    return rows > 1 ? ir_pitch(md->p, cols, md->dt) : cols;
}

/* Tensor t reinterpreted as rows x cols (a transposed operand or a flat vector pass), laid
 * out for the model's datatype (ir_reshape). */
static int reshape(model *md, int t, uint64_t rows, uint64_t cols)
{
    return ir_reshape(md->p, t, NULL, rows, cols, md->dt);
}

/* Layer l's weight at element offset `off` of its block (rows x cols as stored). */
static int weight(model *md, unsigned l, uint64_t off, uint64_t rows, uint64_t cols,
                  const char *name)
{
    char nm[IR_NAME_MAX];
    snprintf(nm, sizeof nm, "L%u.%s", l, name);
    if (md->fsdp)
        return ir_view(md->p, md->gathered[l % md->gbufs], nm, B(md->dt, off), rows, cols, 0);
    return ir_view(md->p, md->params, nm, B(md->dt, (uint64_t)l * md->layer_n + off), rows, cols,
                   0);
}

static int grad(model *md, unsigned l, uint64_t off, uint64_t rows, uint64_t cols, const char *name)
{
    char nm[IR_NAME_MAX];
    snprintf(nm, sizeof nm, "L%u.d%s", l, name);
    if (md->fsdp)
        return ir_view(md->p, md->ggrad[l % 2], nm, B(md->dt, off), rows, cols, 0);
    return ir_view(md->p, md->grads, nm, B(md->dt, (uint64_t)l * md->layer_n + off), rows, cols, 0);
}

/* Elements of layer l's weights without layout padding (what its collectives move): a MoE
 * layer's MLP is its router and experts. */
static uint64_t lreal(const model *md, uint64_t l)
{
    if (!gen_moe_is_layer(md->o, l))
        return md->layer_real;
    return md->layer_real - (md->D * md->UW + md->F * md->D) + md->moe_real;
}

/* out[m,n] = a[m,k] w[k,n], operands reinterpreted to those shapes when stored otherwise;
 * returns the matmul's op index or -1. */
static int mm_op(model *md, uint64_t m, uint64_t n, uint64_t k, int a, int w, int out)
{
    a = reshape(md, a, m, k);
    w = reshape(md, w, k, n);
    out = reshape(md, out, m, n);
    return ir_matmul(md->p, a, w, out, m, n, k);
}

static int mm(model *md, uint64_t m, uint64_t n, uint64_t k, int a, int w, int out)
{
    return mm_op(md, m, n, k, a, w, out) < 0 ? -1 : 0;
}

/* The bias of a forward projection, added to the fp32 accumulator in the GEMM's epilogue
 * (the bias row itself, n elements per column tile, is not loaded: negligible traffic). */
static const ir_vop bias_add = {ISA_OP_V_ADD, 0, 0, ISA_DT_FP32, 0, 0};

/* A forward projection: mm plus its bias (--bias). */
static int proj(model *md, uint64_t m, uint64_t n, uint64_t k, int a, int w, int out)
{
    int i = mm_op(md, m, n, k, a, w, out);
    if (i < 0)
        return -1;
    return md->bias && ir_matmul_epilogue(md->p, i, NULL, 0, &bias_add, 1) < 0 ? -1 : 0;
}

/* One fused vector chain over n elements. */
static int vpass(const model *md, uint64_t n, const int *in, unsigned nin, int out,
                 const ir_vop *ops, unsigned nops)
{
    return ir_fusion(md->p, n, in, nin, &out, 1, ops, nops) < 0 ? -1 : 0;
}

/* FSDP: make layer l's gathered weights ready, then prefetch layer `next`'s (-1: none), as
 * FSDP implementations do: the next layer's all-gather runs on the ICI while this layer
 * computes. Layers rotate through three buffers, so the prefetch never overwrites the
 * weights of this layer or of the one before it (which may still be finishing). */
static int shard(model *md, int root, unsigned l)
{
    uint64_t n = md->layer_n / md->o->fsdp;
    return ir_view(md->p, root, "shard", B(md->dt, (uint64_t)l * n), 1, n, 0);
}

static int fsdp_gather(model *md, unsigned l, int next)
{
    if (!md->fsdp)
        return 0;
    ir *p = md->p;
    uint64_t bytes = B(md->dt, lreal(md, l));
    if (md->pre_layer == (int)l) {
        if (ir_wait(p, md->pre) < 0)
            return -1;
    } else {
        int t = ir_token_new(p);
        if (ir_collective(p, ISA_OP_ICI_ALLGATHER, md->o->fsdp_axes, bytes,
                          shard(md, md->params, l), md->gathered[l % md->gbufs], t) < 0 ||
            ir_wait(p, t) < 0)
            return -1;
    }
    md->pre_layer = next;
    if (next < 0)
        return 0;
    md->pre = ir_token_new(p);
    return ir_collective(p, ISA_OP_ICI_ALLGATHER, md->o->fsdp_axes, B(md->dt, lreal(md, next)),
                         shard(md, md->params, (unsigned)next),
                         md->gathered[(unsigned)next % md->gbufs], md->pre) < 0
               ? -1
               : 0;
}

/* Tensor parallelism: start an all-reduce of tensor t (elems elements) signalling token. */
static int tp_allreduce_start(model *md, int t, uint64_t elems, int token)
{
    if (md->o->tp <= 1)
        return 0;
    return ir_collective(md->p, ISA_OP_ICI_ALLREDUCE, md->o->tp_axes, B(md->dt, elems), t, t,
                         token) < 0
               ? -1
               : 0;
}

static int tp_allreduce(model *md, int t, uint64_t elems)
{
    if (md->o->tp <= 1)
        return 0;
    int tok = ir_token_new(md->p);
    return tp_allreduce_start(md, t, elems, tok) || ir_wait(md->p, tok) < 0 ? -1 : 0;
}

/* Row-parallel GEMM out[M, n] = a[M, k] w[k, n] whose partial sums are all-reduced over the
 * tensor axes. Nothing after it is independent of the sum, so XLA's async all-reduce cannot
 * overlap anything: by default the GEMM runs whole and its all-reduce is exposed. With
 * --collective-matmul the GEMM is split into row blocks (as collective-matmul or windowed
 * einsum decompositions do, which XLA applies only when asked): block i's all-reduce runs on
 * the ICI while block i+1 computes; only the last block's all-reduce is exposed. */
#define TP_BLOCKS 4
static int mm_allreduce(model *md, uint64_t m, uint64_t n, uint64_t k, int a, int w, int out)
{
    isa_dtype dt = md->dt;
    /* Splitting costs a collective set-up per block and hides at most the GEMM's time: only
     * worth it when the GEMM (at peak) takes at least an eighth of the all-reduce (its bytes
     * over the device's share of one link). With wide tensor parallelism the GEMM is tiny
     * and nothing can hide. */
    const cfg *c = ir_cfg(md->p);
    double t_mm = 2.0 * (double)m * (double)n * (double)k / cfg_peak_flops(c, dt);
    double t_ar = (double)B(dt, m * n) / cfg_ici_link_bps(c);
    if (!md->o->collective_matmul || md->o->tp <= 1 || m < 2 * 256 || 8 * t_mm < t_ar)
        return mm(md, m, n, k, a, w, out) || tp_allreduce(md, out, m * n) ? -1 : 0;
    uint64_t rows = (m + TP_BLOCKS - 1) / TP_BLOCKS;
    rows = (rows + 255) / 256 * 256; /* whole MXU passes except at the edge */
    uint64_t lda = ir_pitch(md->p, k, dt), ldc = ir_pitch(md->p, n, dt);
    int tok = ir_token_new(md->p);
    w = reshape(md, w, k, n);
    for (uint64_t r = 0; r < m; r += rows) {
        uint64_t mr = m - r < rows ? m - r : rows;
        int ab = ir_view(md->p, a, "rows", B(dt, r * lda), mr, k, lda);
        int ob = ir_view(md->p, out, "rows", B(dt, r * ldc), mr, n, ldc);
        if (ir_matmul(md->p, ab, w, ob, mr, n, k) < 0 || tp_allreduce_start(md, ob, mr * n, tok))
            return -1;
    }
    return ir_wait(md->p, tok) < 0 ? -1 : 0;
}

/* Gradient reduction across slices (docs/models-ici.md, "DCN"), hierarchical: in the slice,
 * FSDP's reduce-scatter into this chip's shard `dst` and a reduce-scatter over the data axes
 * `axes` (when used); across the slices, an all-reduce of the chip's piece over the DCN;
 * in the slice, an all-gather over the data axes back to what the optimizer reads (the FSDP
 * shard, or the whole gradient), emitted after the next gradient's reduce-scatter (ag_flush). Each
 * step needs the one before: the DCN all-reduce waits for the last reduce-scatter and the
 * all-gather for the DCN all-reduce through chained semaphores, so dispatch never stalls on
 * them. With FSDP alone, the reduce-scatter's token
 * (which frees the gradient buffer) is signalled by its chip-side work and the DCN
 * all-reduce: the gradient is reduced once both are done. */
/* The all-gather of the previous gradient across slices, if one is pending. It waits for that
 * gradient's DCN all-reduce, and the ICI queue is in order, so it is emitted after the next
 * gradient's reduce-scatter (or before the optimizer) rather than right after its own DCN
 * all-reduce: there it would hold every later ICI collective of the backward
 * (tensor-parallel all-reduces, FSDP gathers, the next reduce-scatter) behind the DCN, and
 * the ICI would idle while the DCN runs. The DCN all-reduce then has the next
 * reduce-scatter's time to finish before the ICI needs it. */
static int ag_flush(model *md)
{
    if (md->ag_buf < 0)
        return 0;
    int a = ir_collective(md->p, ISA_OP_ICI_ALLGATHER, md->ag_axes, md->ag_bytes, md->ag_buf,
                          md->ag_buf, IR_TOKEN_LATE);
    md->ag_buf = -1;
    return ir_chain(md->p, a, IR_CHAIN_IN) < 0 ? -1 : 0;
}

static int grad_reduce_slices(model *md, int g, int dst, uint64_t elems, unsigned axes, int token)
{
    const gen_opts *o = md->o;
    ir *p = md->p;
    int buf = g, prev = -1, dtok = IR_TOKEN_LATE;
    if (o->fsdp > 1) {
        prev = ir_collective(p, ISA_OP_ICI_REDUCESCATTER, o->fsdp_axes, B(md->dt, elems), g, dst,
                             token);
        elems /= o->fsdp;
        buf = dst;
        dtok = axes ? IR_TOKEN_LATE : token;
        if (prev < 0)
            return -1;
    }
    uint64_t pa = axes ? cfg_axes_chips(ir_cfg(p), axes) : 1;
    if (axes && (prev = ir_collective(p, ISA_OP_ICI_REDUCESCATTER, axes, B(md->dt, elems), buf, buf,
                                      IR_TOKEN_LATE)) < 0)
        return -1;
    if ((prev >= 0 && ir_chain(p, prev, IR_CHAIN_OUT) < 0) || ag_flush(md))
        return -1;
    int d = ir_collective(p, ISA_OP_DCN_ALLREDUCE, 0, B(md->dt, elems / pa), buf, buf, dtok);
    if (d < 0 || (prev >= 0 && ir_chain(p, d, IR_CHAIN_IN) < 0))
        return -1;
    if (!axes)
        return 0;
    md->ag_buf = buf;
    md->ag_axes = axes;
    md->ag_bytes = B(md->dt, elems);
    return ir_chain(p, d, IR_CHAIN_OUT) < 0 ? -1 : 0;
}

/* Gradient reduction of a weight gradient `g` (elems elements), left in flight until the
 * optimizer: FSDP reduce-scatters over the fsdp axes into this chip's shard `dst` (then
 * all-reduces the shard over the data axes when both are used); pure data parallelism
 * all-reduces. Sequence shards hold the same weights as data shards do: their gradients
 * are summed over the sequence axes as well. Across slices: grad_reduce_slices. */
static int grad_reduce(model *md, int g, int dst, uint64_t elems, const char *what, int token)
{
    const gen_opts *o = md->o;
    unsigned axes = (o->dp > 1 ? o->dp_axes : 0) | (o->sp > 1 ? o->sp_axes : 0);
    int slices = gen_slices(o) > 1;
    if ((o->fsdp <= 1 && !axes && !slices) || md->no_reduce)
        return 0;
    ir_region(md->p, "%s/comm", what);
    if (slices)
        return grad_reduce_slices(md, g, dst, elems, axes, o->fsdp > 1 ? token : IR_TOKEN_LATE);
    if (o->fsdp > 1) {
        if (ir_collective(md->p, ISA_OP_ICI_REDUCESCATTER, o->fsdp_axes, B(md->dt, elems), g, dst,
                          token) < 0)
            return -1;
        if (axes)
            return ir_collective(md->p, ISA_OP_ICI_ALLREDUCE, axes, B(md->dt, elems / o->fsdp), dst,
                                 dst, IR_TOKEN_LATE) < 0
                       ? -1
                       : 0;
        return 0;
    }
    return ir_collective(md->p, ISA_OP_ICI_ALLREDUCE, axes, B(md->dt, elems), g, g, IR_TOKEN_LATE) <
                   0
               ? -1
               : 0;
}

static int grad_tokens_wait(model *md)
{
    return ag_flush(md) || ir_wait(md->p, md->gf[0]) < 0 || ir_wait(md->p, md->gf[1]) < 0 ? -1 : 0;
}

/* Sequence parallelism (DeepSpeed-Ulysses style): an all-to-all over the sequence axes
 * turning sequence shards of all local heads (in) into whole sequences of heads/P (out), or
 * back, waited right away since attention (or the next GEMM) needs it. */
static int sp_alltoall(model *md, const int *in, const int *out, unsigned n, uint64_t bytes,
                       const char *what, unsigned l)
{
    int tok = ir_token_new(md->p);
    ir_region(md->p, "L%u/%s/comm", l, what);
    if (ir_collective_n(md->p, ISA_OP_ICI_ALLTOALL, md->o->sp_axes, bytes, in, n, out, n, tok) <
            0 ||
        ir_wait(md->p, tok) < 0)
        return -1;
    ir_region(md->p, "L%u/%s", l, what); /* back to the compute region */
    return 0;
}

#define F32 ISA_DT_FP32
/* Layer norm forward: mean (reduce), centre, square, variance (reduce), rsqrt per row,
 * normalise, scale and shift (fma). */
static int layernorm(const model *md, uint64_t n, int in, int out)
{
    isa_dtype dt = md->dt;
    unsigned D = (unsigned)md->D;
    const ir_vop ops[] = {
        {ISA_OP_V_REDUCE, 0, 2, dt, D, 0}, {ISA_OP_V_SUB, 0, 2, dt, 0, 0},
        {ISA_OP_V_MUL, 2, 3, dt, 0, 0},    {ISA_OP_V_REDUCE, 3, 3, dt, D, 0},
        {ISA_OP_V_RSQRT, 3, 3, F32, 0, D}, {ISA_OP_V_MUL, 2, 2, dt, 0, 0},
        {ISA_OP_V_FMA, 2, 1, dt, 0, 0},
    };
    return vpass(md, n, &in, 1, out, ops, sizeof ops / sizeof ops[0]);
}

/* Layer norm backward plus the residual gradient: dx = res + LN'(dy). */
static int layernorm_bwd(const model *md, uint64_t n, int dy, int x, int out)
{
    isa_dtype dt = md->dt;
    unsigned D = (unsigned)md->D;
    const int in[2] = {dy, x};
    const ir_vop ops[] = {
        {ISA_OP_V_MUL, 0, 3, dt, 0, 0}, {ISA_OP_V_REDUCE, 3, 4, dt, D, 0},
        {ISA_OP_V_MUL, 0, 3, dt, 0, 0}, {ISA_OP_V_REDUCE, 3, 4, dt, D, 0},
        {ISA_OP_V_FMA, 0, 3, dt, 0, 0}, {ISA_OP_V_SUB, 3, 3, dt, 0, 0},
        {ISA_OP_V_ADD, 0, 2, dt, 0, 0},
    };
    return vpass(md, n, in, 2, out, ops, sizeof ops / sizeof ops[0]);
}

/* A two-input pass: sigmoid(buffer x) into buffer 3, 1 / (1 + exp(-x)) with the reciprocal
 * as rsqrt squared, then the nrest ops rest. */
static int sigmoid_pass(const model *md, uint64_t n, int a, int b, unsigned x, int out,
                        const ir_vop *rest, unsigned nrest)
{
    isa_dtype dt = md->dt;
    const int in[2] = {a, b};
    ir_vop ops[8] = {
        {ISA_OP_V_EXP, x, 3, dt, 0, 0},
        {ISA_OP_V_ADD, 3, 3, dt, 0, 0},
        {ISA_OP_V_RSQRT, 3, 3, dt, 0, 0},
        {ISA_OP_V_MUL, 3, 3, dt, 0, 0},
    };
    memcpy(ops + 4, rest, nrest * sizeof *rest);
    return vpass(md, n, in, 2, out, ops, 4 + nrest);
}

/* SwiGLU: act = silu(gate) * up, silu(x) = x sigmoid(x). */
static int swiglu(const model *md, uint64_t n, int gate, int up, int out)
{
    const ir_vop rest[] = {{ISA_OP_V_MUL, 0, 3, md->dt, 0, 0}, {ISA_OP_V_MUL, 3, 2, md->dt, 0, 0}};
    return sigmoid_pass(md, n, gate, up, 0, out, rest, 2);
}

/* Its backward from dact and gate, sigmoid(gate) recomputed. */
static int swiglu_bwd(const model *md, uint64_t n, int dact, int gate, int out)
{
    isa_dtype dt = md->dt;
    const ir_vop rest[] = {{ISA_OP_V_FMA, 1, 4, dt, 0, 0},
                           {ISA_OP_V_MUL, 0, 4, dt, 0, 0},
                           {ISA_OP_V_MUL, 0, 2, dt, 0, 0}};
    return sigmoid_pass(md, n, dact, gate, 1, out, rest, 3);
}

static int residual(const model *md, uint64_t n, int a, int b, int out)
{
    const int in[2] = {a, b};
    const ir_vop op = {ISA_OP_V_ADD, 0, 2, md->dt, 0, 0};
    return vpass(md, n, in, 2, out, &op, 1);
}

/* out = a w + res (the residual connection). Without tensor parallelism the add is fused into
 * the GEMM's output tiles (the block of res is loaded and added to the fp32 accumulator
 * before the cast), saving a write and a read of the sum; with it, the partial sums must be
 * all-reduced first, so the add stays a separate pass after mm_allreduce. */
static int mm_residual(model *md, uint64_t m, uint64_t n, uint64_t k, int a, int w, int res,
                       int out)
{
    if (md->o->tp > 1) {
        int y = tmp(md, "y", m, n);
        const int in[2] = {y, res};
        const ir_vop ops[2] = {{ISA_OP_V_ADD, 0, 2, md->dt, 0, 0},
                               {ISA_OP_V_ADD, 2, 2, md->dt, 0, 0}};
        return mm_allreduce(md, m, n, k, a, w, y) ||
                       vpass(md, m * n, in, 2, out, ops, md->bias ? 2 : 1)
                   ? -1
                   : 0;
    }
    const ir_vop add[2] = {bias_add, {ISA_OP_V_ADD, 0, 0, ISA_DT_FP32, 0, 0}};
    int i = ir_matmul(md->p, reshape(md, a, m, k), reshape(md, w, k, n), out, m, n, k);
    return i < 0 || ir_matmul_epilogue(md->p, i, &res, 1, add + !md->bias, md->bias ? 2 : 1) < 0
               ? -1
               : 0;
}

/* Flat view of elements [off, off + n) of t (a vector pass over part of a tensor). */
static int flat(model *md, int t, uint64_t off, uint64_t n, const char *name)
{
    return ir_view(md->p, t, name, B(md->dt, off), 1, n, n);
}

/* Columns [c0, c0 + n) of every row of t (t's rows and pitch). */
static int cols(model *md, int t, uint64_t c0, uint64_t n, const char *name)
{
    const ir_tensor *x = ir_tensor_get(md->p, t);
    uint64_t pitch = lay_pitch(md, x->rows, x->cols);
    return ir_view(md->p, t, name, B(md->dt, c0), x->rows, n, pitch);
}

/* GELU (tanh form): act = x/2 (1 + tanh(c (x + 0.044715 x^3))). */
static int gelu(const model *md, uint64_t n, int up, int out)
{
    isa_dtype dt = md->dt;
    const ir_vop ops[] = {
        {ISA_OP_V_MUL, 0, 2, dt, 0, 0}, {ISA_OP_V_FMA, 2, 2, dt, 0, 0},
        {ISA_OP_V_MUL, 0, 2, dt, 0, 0}, {ISA_OP_V_TANH, 2, 2, dt, 0, 0},
        {ISA_OP_V_FMA, 2, 2, dt, 0, 0}, {ISA_OP_V_MUL, 0, 1, dt, 0, 0},
    };
    return vpass(md, n, &up, 1, out, ops, sizeof ops / sizeof ops[0]);
}

/* GELU backward: dup = dact (t' + x/2 (1 - tanh^2) u'), tanh recomputed from x. */
static int gelu_bwd(const model *md, uint64_t n, int dact, int up, int out)
{
    isa_dtype dt = md->dt;
    const int in[2] = {dact, up};
    const ir_vop ops[] = {
        {ISA_OP_V_MUL, 1, 3, dt, 0, 0}, {ISA_OP_V_FMA, 3, 3, dt, 0, 0},
        {ISA_OP_V_MUL, 1, 3, dt, 0, 0}, {ISA_OP_V_TANH, 3, 3, dt, 0, 0},
        {ISA_OP_V_MUL, 3, 4, dt, 0, 0}, {ISA_OP_V_FMA, 4, 4, dt, 0, 0},
        {ISA_OP_V_FMA, 1, 4, dt, 0, 0}, {ISA_OP_V_MUL, 0, 2, dt, 0, 0},
    };
    return vpass(md, n, in, 2, out, ops, sizeof ops / sizeof ops[0]);
}

/* The MLP activation of up (M x UW) into act (M x F), and its backward. */
static int mlp_act(model *md, int up, int act)
{
    uint64_t n = md->M * md->F;
    if (md->gelu)
        return gelu(md, n, up, act);
    return swiglu(md, n, flat(md, up, 0, n, "gate"), flat(md, up, n, n, "up"), act);
}

static int mlp_act_bwd(model *md, int dact, int up, int dup)
{
    uint64_t n = md->M * md->F;
    if (md->gelu)
        return gelu_bwd(md, n, dact, up, dup);
    return swiglu_bwd(md, n, dact, flat(md, up, 0, n, "gate"), dup);
}

static int attention_fwd(model *md, unsigned l, int q, int k, int v, int ao)
{
    ir *p = md->p;
    uint64_t sp = md->sp;
    if (md->decode) { /* k, v: the KV cache, one row per (batch, kv head) */
        const int in[3] = {q, k, v};
        int i = ir_attention(p, in, 3, &ao, 1, md->bc, md->hl, md->kvl, 1, md->S, md->hd, 0, 0);
        if (i < 0)
            return -1;
        ir_op_at(p, i)->kv_head_major = 1;
        return 0;
    }
    if (sp <= 1) {
        const int in[3] = {q, k, v};
        return ir_attention(p, in, 3, &ao, 1, md->bc, md->hl, md->kvl, md->S, md->S, md->hd, 1, 0) <
                       0
                   ? -1
                   : 0;
    }
    /* Sequence parallelism: attention sees heads/P of whole sequences (rows A/P wide). */
    uint64_t rows = md->bc * md->S;
    int in[3] = {q, k, v};
    int ws[3] = {tmp(md, "q.seq", rows, md->A / sp), tmp(md, "k.seq", rows, md->KA / sp),
                 tmp(md, "v.seq", rows, md->KA / sp)};
    int os = tmp(md, "ao.seq", rows, md->A / sp);
    uint64_t bytes = B(md->dt, md->M * (md->A + 2 * md->KA));
    char what[32];
    snprintf(what, sizeof what, "%s/attn", md->ph);
    return sp_alltoall(md, in, ws, 3, bytes, what, l) ||
                   ir_attention(p, ws, 3, &os, 1, md->bc, md->hl / sp, md->kvl / sp, md->S, md->S,
                                md->hd, 1, 0) < 0 ||
                   sp_alltoall(md, &os, &ao, 1, B(md->dt, md->M * md->A), what, l)
               ? -1
               : 0;
}

#define HAS(mask, a) (((mask) >> GEN_ACT_##a) & 1u)

static gen_moe_ctx moe_ctx(model *md, unsigned l)
{
    gen_moe_ctx c = {md->p, md->o, md->dt, md->M, md->D, l, -1, -1};
    c.w = weight(md, l, md->wup, 1, md->moe_n, "moe");
    if (md->train)
        c.g = grad(md, l, md->wup, 1, md->moe_n, "moe");
    return c;
}

/* A MoE layer's MLP (gen_moe.c) from the normalised residual hn: xnext = h + MoE(hn), the
 * partial sums all-reduced over the tensor axes first. Its activations are kept for the
 * backward under every remat policy. */
static int moe_fwd(model *md, unsigned l, int hn, int h)
{
    gen_moe_ctx c = moe_ctx(md, l);
    gen_moe_saved sv;
    int y = tmp(md, "moe.y", md->M, md->D);
    if (gen_moe_fwd(&c, hn, y, &sv) || tp_allreduce(md, y, md->M * md->D) ||
        residual(md, md->M * md->D, y, h, md->xsave[l + 1]))
        return -1;
    if (md->msv)
        md->msv[l] = sv;
    return 0;
}

/* Layer l's forward activations of `need` (bits of gen_act) into a[] (new tensors; a[] holds
 * the saved ones on entry), computed from the layer input in forward order; `fwd` also
 * writes the KV cache (decode) and the layer output (xsave[l + 1]): the forward itself,
 * rather than its recomputation in the backward. A serial block is
 * x -> LN -> attention -> h = x + o -> LN -> MLP -> h + mlp; a parallel block (PaLM) feeds
 * one normalised input to both and sums x + o + mlp, so under tensor parallelism one
 * all-reduce covers both partial sums. */
static int layer_acts(model *md, unsigned l, int *a, unsigned need, int fwd)
{
    ir *p = md->p;
    uint64_t M = md->M, D = md->D, A = md->A, KA = md->KA, F = md->F, UW = md->UW;
    uint64_t W3 = A + 2 * KA;
    int x = md->xsave[l];
    ir_region(p, "L%u/%s/norm1", l, md->ph);
    if (HAS(need, XN) &&
        ((a[GEN_ACT_XN] = tmp(md, "xn", M, D)) < 0 || layernorm(md, M * D, x, a[GEN_ACT_XN])))
        return -1;
    ir_region(p, "L%u/%s/attn", l, md->ph);
    /* Q, K and V come from one GEMM against the concatenated [D, A + 2 KA] weight (as
     * fused-QKV implementations store it); q, k, v are column windows of its output. */
    if (HAS(need, QKV) &&
        ((a[GEN_ACT_QKV] = tmp(md, "qkv", M, W3)) < 0 ||
         proj(md, M, W3, D, a[GEN_ACT_XN], weight(md, l, md->wqkv, D, W3, "wqkv"), a[GEN_ACT_QKV])))
        return -1;
    if (HAS(need, AO)) {
        int qkv = a[GEN_ACT_QKV];
        int q = cols(md, qkv, 0, A, "q"), k = cols(md, qkv, A, KA, "k");
        int v = cols(md, qkv, A + KA, KA, "v");
        if (fwd && md->decode) {
            /* The KV cache (model_init) holds one padded row of keys and one of values per
             * (batch, kv head), so attention reads each head's keys as one contiguous run.
             * The new token's K and V are written into position S-1 of every (batch, kv
             * head) by a dynamic-update-slice left in flight: nothing later in the step reads
             * those rows from HBM (attention has the new token's K and V at hand; timed as
             * reading the whole cache), so the writes overlap attention and finish by the
             * end. */
            uint64_t hd = md->hd, pos = B(md->dt, (md->S - 1) * hd);
            uint64_t rp = ir_tensor_get(p, md->kcache[l])->pitch; /* K row to K row */
            int kw = ir_view(p, md->kcache[l], "k.slot", pos, md->bc * md->kvl, hd, rp);
            int vw = ir_view(p, md->vcache[l], "v.slot", pos, md->bc * md->kvl, hd, rp);
            if (ir_dus_async(p, k, kw, IR_TOKEN_LATE) < 0 ||
                ir_dus_async(p, v, vw, IR_TOKEN_LATE) < 0)
                return -1;
            k = md->kcache[l];
            v = md->vcache[l];
        }
        if ((a[GEN_ACT_AO] = tmp(md, "ao", M, A)) < 0 ||
            attention_fwd(md, l, q, k, v, a[GEN_ACT_AO]))
            return -1;
    }
    int wo = weight(md, l, md->wo, A, D, "wo"), y1 = -1, in = a[GEN_ACT_XN];
    if (!md->par && HAS(need, H) &&
        ((a[GEN_ACT_H] = tmp(md, "h", M, D)) < 0 ||
         mm_residual(md, M, D, A, a[GEN_ACT_AO], wo, x, a[GEN_ACT_H])))
        return -1;
    if (md->par && fwd) { /* o = ao wo (+ x without TP: the residual fused here) */
        y1 = tmp(md, "y1", M, D);
        if (md->o->tp > 1 ? proj(md, M, D, A, a[GEN_ACT_AO], wo, y1)
                          : mm_residual(md, M, D, A, a[GEN_ACT_AO], wo, x, y1))
            return -1;
    }
    ir_region(p, "L%u/%s/mlp", l, md->ph);
    if (!md->par) {
        if (HAS(need, HN) && ((a[GEN_ACT_HN] = tmp(md, "hn", M, D)) < 0 ||
                              layernorm(md, M * D, a[GEN_ACT_H], a[GEN_ACT_HN])))
            return -1;
        in = a[GEN_ACT_HN];
    }
    if (gen_moe_is_layer(md->o, l))
        return fwd ? moe_fwd(md, l, in, a[GEN_ACT_H]) : 0;
    if (HAS(need, UP) &&
        ((a[GEN_ACT_UP] = tmp(md, "up", M, UW)) < 0 ||
         proj(md, M, UW, D, in, weight(md, l, md->wup, D, UW, "wup"), a[GEN_ACT_UP])))
        return -1;
    if (HAS(need, ACT) &&
        ((a[GEN_ACT_ACT] = tmp(md, "act", M, F)) < 0 || mlp_act(md, a[GEN_ACT_UP], a[GEN_ACT_ACT])))
        return -1;
    if (!fwd)
        return 0;
    int wd = weight(md, l, md->wdown, F, D, "wdown"), xnext = md->xsave[l + 1];
    if (!md->par)
        return mm_residual(md, M, D, F, a[GEN_ACT_ACT], wd, a[GEN_ACT_H], xnext);
    if (md->o->tp <= 1)
        return mm_residual(md, M, D, F, a[GEN_ACT_ACT], wd, y1, xnext);
    /* Parallel block under TP: mlp + o summed in the down GEMM's epilogue, one all-reduce of
     * the sum, then the residual. */
    int y2 = tmp(md, "y2", M, D), i = mm_op(md, M, D, F, a[GEN_ACT_ACT], wd, y2);
    const ir_vop add[2] = {bias_add, {ISA_OP_V_ADD, 0, 0, ISA_DT_FP32, 0, 0}};
    return i < 0 || ir_matmul_epilogue(p, i, &y1, 1, add + !md->bias, md->bias ? 2 : 1) < 0 ||
                   tp_allreduce(md, y2, M * D) || residual(md, M * D, y2, x, xnext)
               ? -1
               : 0;
}

static int layer_fwd(model *md, unsigned l)
{
    int a[GEN_ACT_COUNT];
    int next = l + 1 < md->L ? (int)l + 1 : -1;
    for (int i = 0; i < GEN_ACT_COUNT; i++)
        a[i] = -1;
    ir_region(md->p, "L%u/fwd/norm1", l);
    if (fsdp_gather(md, l, next) || layer_acts(md, l, a, md->needed, 1))
        return -1;
    if (md->train)
        for (int i = 0; i < GEN_ACT_COUNT; i++)
            md->sv[l * GEN_ACT_COUNT + i] = (md->keep >> i) & 1u ? a[i] : -1;
    return 0;
}

/* Backward of one layer. md->dx holds the gradient of the layer output on entry and of the
 * layer input on return. The activations the policy did not save are recomputed first
 * (region L{i}/bwd/remat). Each GEMM Y = X W contributes dX = dY W^T and dW = X^T dY. */
static int layer_bwd(model *md, unsigned l)
{
    ir *p = md->p;
    uint64_t M = md->M, D = md->D, A = md->A, KA = md->KA, F = md->F, UW = md->UW, sp = md->sp;
    /* The TP all-reduce of each input gradient starts as soon as it is computed and runs
     * behind the weight-gradient GEMMs, which do not need it. Under FSDP the reduce-scatter
     * of layer l+2 read the gradient buffer this layer writes: wait for it first (layer
     * l+1's still runs behind this layer's backward). */
    ir_region(p, "L%u/bwd/mlp", l);
    if (fsdp_gather(md, l, (int)l - 1) || (md->fsdp && ir_wait(p, md->gf[l % 2]) < 0))
        return -1;
    int a[GEN_ACT_COUNT];
    memcpy(a, md->sv + l * GEN_ACT_COUNT, sizeof a);
    unsigned re = md->needed & ~md->keep;
    if (re) {
        md->ph = "bwd/remat";
        int rc = layer_acts(md, l, a, re, 0);
        md->ph = "fwd";
        if (rc)
            return -1;
        ir_region(p, "L%u/bwd/mlp", l);
    }
    int dhn = tmp(md, "dhn", M, D);
    int tf = ir_token_new(p), dh = md->dx;
    int in_mlp = md->par ? a[GEN_ACT_XN] : a[GEN_ACT_HN];
    if (gen_moe_is_layer(md->o, l)) {
        gen_moe_ctx c = moe_ctx(md, l);
        dh = tmp(md, "dh", M, D);
        if (gen_moe_bwd(&c, in_mlp, &md->msv[l], md->dx, dhn) || tp_allreduce(md, dhn, M * D) ||
            layernorm_bwd(md, M * D, dhn, a[GEN_ACT_H], dh))
            return -1;
        goto attn;
    }
    int dact = tmp(md, "dact", M, F), dgu = tmp(md, "dgu", M, UW);
    if (mm(md, M, F, D, md->dx, weight(md, l, md->wdown, F, D, "wdown"), dact) ||
        mm(md, F, D, M, a[GEN_ACT_ACT], md->dx, grad(md, l, md->wdown, F, D, "wdown")) ||
        mlp_act_bwd(md, dact, a[GEN_ACT_UP], dgu) ||
        mm(md, M, D, UW, dgu, weight(md, l, md->wup, D, UW, "wup"), dhn))
        return -1;
    if (md->par) {
        /* dhn joins the attention branch's input gradient before the one all-reduce. */
        if (mm(md, D, UW, M, in_mlp, dgu, grad(md, l, md->wup, D, UW, "wup")))
            return -1;
    } else {
        dh = tmp(md, "dh", M, D);
        if (tp_allreduce_start(md, dhn, M * D, tf) ||
            mm(md, D, UW, M, in_mlp, dgu, grad(md, l, md->wup, D, UW, "wup")) ||
            ir_wait(p, tf) < 0 || layernorm_bwd(md, M * D, dhn, a[GEN_ACT_H], dh))
            return -1;
    }
attn:
    ir_region(p, "L%u/bwd/attn", l);
    uint64_t W3 = A + 2 * KA;
    int dao = tmp(md, "dao", M, A), dqkv = tmp(md, "dqkv", M, W3);
    int dq = cols(md, dqkv, 0, A, "dq"), dk = cols(md, dqkv, A, KA, "dk");
    int dv = cols(md, dqkv, A + KA, KA, "dv");
    int qkv = a[GEN_ACT_QKV], ao = a[GEN_ACT_AO];
    int q = cols(md, qkv, 0, A, "q"), k = cols(md, qkv, A, KA, "k");
    int v = cols(md, qkv, A + KA, KA, "v");
    if (mm(md, M, A, D, dh, weight(md, l, md->wo, A, D, "wo"), dao) ||
        mm(md, A, D, M, ao, dh, grad(md, l, md->wo, A, D, "wo")))
        return -1;
    if (sp <= 1) {
        const int in[5] = {q, k, v, ao, dao}, out[3] = {dq, dk, dv};
        if (ir_attention(p, in, 5, out, 3, md->bc, md->hl, md->kvl, md->S, md->S, md->hd, 1, 1) < 0)
            return -1;
    } else {
        uint64_t rows = md->bc * md->S;
        int dos = tmp(md, "dao.seq", rows, A / sp);
        int qs = tmp(md, "q.seq", rows, A / sp), ks = tmp(md, "k.seq", rows, KA / sp),
            vs = tmp(md, "v.seq", rows, KA / sp), aos = tmp(md, "ao.seq", rows, A / sp);
        int ds[3] = {tmp(md, "dq.seq", rows, A / sp), tmp(md, "dk.seq", rows, KA / sp),
                     tmp(md, "dv.seq", rows, KA / sp)};
        const int in[5] = {qs, ks, vs, aos, dos}, dout[3] = {dq, dk, dv};
        if (sp_alltoall(md, &dao, &dos, 1, B(md->dt, M * A), "bwd/attn", l) ||
            ir_attention(p, in, 5, ds, 3, md->bc, md->hl / sp, md->kvl / sp, md->S, md->S, md->hd,
                         1, 1) < 0 ||
            sp_alltoall(md, ds, dout, 3, B(md->dt, M * W3), "bwd/attn", l))
            return -1;
    }
    /* The input gradient of the fused QKV projection in one GEMM (in a parallel block with
     * the MLP branch's added in its epilogue); its TP all-reduce runs behind the
     * weight-gradient GEMM; then norm-1 backward and the residual path. */
    isa_dtype dt = md->dt;
    int dxn = tmp(md, "dxn", M, D);
    const int in2[2] = {dxn, md->dx};
    const ir_vop ops[] = {
        {ISA_OP_V_MUL, 0, 3, dt, 0, 0},
        {ISA_OP_V_REDUCE, 3, 3, dt, (unsigned)D, 0},
        {ISA_OP_V_FMA, 0, 3, dt, 0, 0},
        {ISA_OP_V_ADD, 0, 2, dt, 0, 0},
    };
    const ir_vop addf = {ISA_OP_V_ADD, 0, 0, ISA_DT_FP32, 0, 0};
    char what[32];
    snprintf(what, sizeof what, "L%u/bwd", l);
    tf = ir_token_new(p);
    int gl = md->fsdp ? md->ggrad[l % 2] : flat(md, md->grads, l * md->layer_n, md->layer_n, "dL");
    int dst = md->fsdp ? shard(md, md->grads, l) : gl;
    int i = mm_op(md, M, D, W3, dqkv, weight(md, l, md->wqkv, D, W3, "wqkv"), dxn);
    if (i < 0 || (md->par && ir_matmul_epilogue(p, i, &dhn, 1, &addf, 1) < 0))
        return -1;
    return tp_allreduce_start(md, dxn, M * D, tf) ||
                   mm(md, D, W3, M, a[GEN_ACT_XN], dqkv, grad(md, l, md->wqkv, D, W3, "wqkv")) ||
                   ir_wait(p, tf) < 0 || vpass(md, M * D, in2, 2, md->dx, ops, 4) ||
                   grad_reduce(md, gl, dst, lreal(md, l), what, md->gf[l % 2])
               ? -1
               : 0;
}

/* ---- model setup ------------------------------------------------------------------------- */

static uint64_t wsize(const model *md, uint64_t rows, uint64_t cols)
{
    return rows * lay_pitch(md, rows, cols);
}

static int model_init(model *md, ir *p, const gen_opts *o, int lm, int *xs, int *kc, int *vc,
                      int *sv, gen_moe_saved *msv)
{
    memset(md, 0, sizeof *md);
    md->p = p;
    md->o = o;
    md->dt = o->dtype;
    isa_dtype dt = md->dt;
    /* a pipeline stage runs microbatches of batch / M sequences through layers / P layers */
    int pipe = lm && o->pipeline > 1;
    md->bc = o->batch / (o->dp * o->fsdp * gen_slices(o) * (pipe ? o->microbatches : 1));
    md->S = o->seq;
    md->sp = o->sp;
    md->decode = lm && o->decode;
    md->train = lm ? !o->decode : o->training;
    md->M = md->decode ? md->bc : md->bc * md->S / md->sp;
    md->D = o->d_model;
    md->hl = o->heads / o->tp;
    md->kvl = gen_kv_shard(o);
    md->hd = o->head_dim;
    md->A = md->hl * md->hd;
    md->KA = md->kvl * md->hd;
    md->F = o->d_ff / o->tp;
    md->gelu = o->mlp == GEN_MLP_GELU;
    md->UW = md->gelu ? md->F : 2 * md->F;
    md->par = o->parallel_block;
    md->bias = o->bias;
    md->tied = lm && o->tied_embedding;
    md->V = lm ? gen_vocab_shard(o) : 0;
    md->L = pipe ? o->layers / o->pipeline : o->layers;
    md->fsdp = o->fsdp > 1;
    md->xsave = xs;
    md->kcache = kc;
    md->vcache = vc;
    md->sv = sv;
    md->ph = "fwd";
    md->needed = gen_acts_needed(o);
    md->keep = gen_acts_saved(o);
    md->dx = md->lm_w = md->glm = -1;
    uint64_t D = md->D, A = md->A, KA = md->KA, F = md->F, M = md->M, UW = md->UW;
    md->wqkv = 0;
    md->wo = md->wqkv + wsize(md, D, A + 2 * KA);
    md->wup = md->wo + wsize(md, A, D);
    md->wdown = md->wup + wsize(md, D, UW);
    md->bias_n = md->bias ? (A + 2 * KA) + D + UW + D : 0;
    md->layer_n = md->wdown + wsize(md, F, D) + md->bias_n;
    md->layer_real = D * (A + 2 * KA) + A * D + D * UW + F * D + md->bias_n;
    /* A MoE layer's block holds its router and experts where a dense layer's MLP is; every
     * layer gets the larger block. */
    md->msv = msv;
    md->moe_n = gen_moe_weight_elems(p, o);
    md->moe_real = gen_moe_weight_elems(NULL, o);
    if (md->moe_n && md->wup + md->moe_n + md->bias_n > md->layer_n)
        md->layer_n = md->wup + md->moe_n + md->bias_n;
    /* The LM head (D x V/T, its own or the embedding table's rows with --tied-embedding);
     * the embedding table (V x D, padded to T x V/T rows, replicated over tensor
     * parallelism). */
    int has_lm = lm && (!pipe || o->stage + 1 == o->pipeline), has_emb = lm && (!pipe || !o->stage);
    md->lm_n = has_lm && !md->tied ? wsize(md, D, md->V) : 0;
    uint64_t emb = has_emb ? md->V * o->tp * D : 0;
    /* Parameters this chip holds: layer weights, LM head and embedding, divided by the FSDP
     * degree. */
    uint64_t total = md->L * md->layer_n + md->lm_n + emb;
    md->nparams = total / o->fsdp;
    uint64_t lr = 0;
    for (uint64_t l = 0; l < md->L; l++)
        lr += lreal(md, l);
    md->nreal = (lr + (md->lm_n ? D * md->V : 0) + emb) / o->fsdp;
    md->params = ir_param_new(p, "params", dt, 1, md->nparams);
    md->grads = md->train ? ir_param_new(p, "grads", dt, 1, md->nparams) : -1;
    md->gbufs = md->L > 2 ? 3 : md->L;
    md->pre_layer = -1;
    md->ag_buf = -1;
    md->gf[0] = ir_token_new(p);
    md->gf[1] = ir_token_new(p);
    if (md->fsdp) {
        for (uint64_t i = 0; i < md->gbufs; i++)
            md->gathered[i] = ir_tensor_new(p, "weights.gathered", dt, 1, md->layer_n);
        for (uint64_t i = 0; md->train && i < (md->L > 1 ? 2u : 1u); i++)
            md->ggrad[i] = ir_tensor_new(p, "grads.full", dt, 1, md->layer_n);
    }
    for (uint64_t l = 0; l <= md->L; l++) {
        char nm[IR_NAME_MAX];
        snprintf(nm, sizeof nm, "x%llu", (unsigned long long)l);
        xs[l] = tmp(md, nm, M, D);
    }
    /* Decode: each layer's KV cache is [batch][kv head][K, V][position][head_dim], one row
     * of keys and one of values per (batch, kv head), padded rows (a power-of-two row would
     * put every head's slot S-1 on the same pseudo-channels). K and V of a head are one row
     * apart whatever the batch, as in a serving system's cache pool, whose size does not
     * follow the step's batch. (Two caches of batch x kv heads rows each put V a multiple of
     * the pseudo-channel period after K at some batches, every multiple of 16 or 32 of
     * Llama-3-8B on v7: a head's K and V reads then met on the same pseudo-channels and
     * banks, and the decode step took up to 8% longer than at the batches around it.) */
    if (md->decode)
        for (uint64_t l = 0; l < md->L; l++) {
            uint64_t rows = md->bc * md->kvl, cols = md->S * md->hd;
            uint64_t rp = ir_pitch(p, cols, dt);
            int kv = ir_param_new(p, "kv_cache", dt, 2 * rows, cols);
            kc[l] = ir_view(p, kv, "kv_cache.k", 0, rows, cols, 2 * rp);
            vc[l] = ir_view(p, kv, "kv_cache.v", B(dt, rp), rows, cols, 2 * rp);
        }
    if (md->train)
        md->dx = tmp(md, "dx", M, D);
    return ir_error(p, NULL);
}

int gen_fe_transformer(ir *p, const gen_opts *o)
{
    model md;
    int xs[2], sv[GEN_ACT_COUNT];
    gen_moe_saved msv[1];
    ir_region(p, "L0/fwd/norm1");
    if (model_init(&md, p, o, 0, xs, NULL, NULL, sv, msv) || layer_fwd(&md, 0))
        return -1;
    if (!md.train)
        return 0;
    /* The block's output gradient is taken as given (it arrives from the layer above). */
    return layer_bwd(&md, 0) || grad_tokens_wait(&md) || ir_wait(p, IR_TOKEN_LATE) < 0 ? -1 : 0;
}

/* Loss on the vector unit over this chip's vocabulary shard: row max, subtract, exp, row sum
 * (max and sum all-reduced over the tensor axes), log, and in training the logits gradient
 * softmax - onehot. Decode samples from the same softmax. */
static int loss(model *md)
{
    isa_dtype dt = md->dt;
    unsigned V = (unsigned)md->V;
    const ir_vop ops[] = {
        {ISA_OP_V_REDUCE, 0, 2, dt, V, 0}, {ISA_OP_V_SUB, 0, 2, F32, 0, 0},
        {ISA_OP_V_EXP, 2, 2, F32, 0, 0},   {ISA_OP_V_REDUCE, 2, 3, F32, V, 0},
        {ISA_OP_V_LOG, 3, 3, F32, 0, V},   {ISA_OP_V_RSQRT, 3, 3, F32, 0, V},
        {ISA_OP_V_MUL, 2, 2, F32, 0, 0},   {ISA_OP_V_SUB, 2, 1, dt, 0, 0},
    };
    ir_region(md->p, "loss");
    if (vpass(md, md->M * md->V, &md->logits, 1, md->logits, ops, sizeof ops / sizeof ops[0]))
        return -1;
    if (md->o->tp > 1) {
        int t = ir_token_new(md->p);
        if (ir_collective(md->p, ISA_OP_ICI_ALLREDUCE, md->o->tp_axes, 2 * md->M * 4, -1, -1, t) <
                0 ||
            ir_wait(md->p, t) < 0)
            return -1;
    }
    return 0;
}

/* Adam over this chip's parameters, streamed from HBM: m = b1 m + (1-b1) g,
 * v = b2 v + (1-b2) g^2, master -= lr m / (sqrt(v) + eps), param = bf16(master). */
static int adam(model *md)
{
    ir *p = md->p;
    uint64_t n = md->nreal;
    int m = ir_param_new(p, "adam.m", F32, 1, n), v = ir_param_new(p, "adam.v", F32, 1, n);
    int master = ir_param_new(p, "master", F32, 1, n);
    const ir_vop ops[] = {
        {ISA_OP_V_MUL, 1, 8, F32, 0, 0},   {ISA_OP_V_FMA, 0, 4, F32, 0, 0},
        {ISA_OP_V_MUL, 0, 8, F32, 0, 0},   {ISA_OP_V_FMA, 2, 5, F32, 0, 0},
        {ISA_OP_V_RSQRT, 5, 8, F32, 0, 0}, {ISA_OP_V_MUL, 4, 8, F32, 0, 0},
        {ISA_OP_V_FMA, 3, 6, F32, 0, 0},   {ISA_OP_V_CAST, 6, 7, F32, md->dt, 0},
    };
    const int in[4] = {md->grads, m, v, master}, out[4] = {m, v, master, md->params};
    ir_region(p, "optimizer");
    return ir_wait(p, IR_TOKEN_LATE) < 0 || ir_fusion(p, n, in, 4, out, 4, ops, 8) < 0 ? -1 : 0;
}

static int llm(ir *p, const gen_opts *o, int *x, int *kc, int *vc, int *sv, gen_moe_saved *msv)
{
    model md;
    ir_region(p, "embed");
    if (model_init(&md, p, o, 1, x, kc, vc, sv, msv))
        return -1;
    isa_dtype dt = md.dt;
    uint64_t M = md.M, D = md.D, V = md.V, fs = o->fsdp;
    /* The LM head, then the embedding table, after the layers in the parameter region; a
     * tied LM head is the embedding table's first V/T rows read transposed (packed). */
    uint64_t layers_n = md.L * md.layer_n, vp = V * o->tp;
    uint64_t emb_off = (layers_n + md.lm_n) / fs, emb_n = vp * D / fs;
    uint64_t lm_off = md.tied ? emb_off : layers_n / fs,
             lm_shard = md.tied ? D * V / fs : md.lm_n / fs;
    if (md.fsdp) {
        md.lm_w = tmp(&md, "lm_head.gathered", D, V);
        md.glm = md.train ? tmp(&md, "lm_head.grad", D, V) : -1;
    } else {
        uint64_t off = md.tied ? emb_off : layers_n, pitch = md.tied ? V : 0;
        md.lm_w = ir_view(p, md.params, "lm_head", B(dt, off), D, V, pitch);
        md.glm = md.train ? ir_view(p, md.grads, "lm_head.grad", B(dt, off), D, V, pitch) : -1;
    }
    md.xf = tmp(&md, "xf", M, D);
    md.logits = tmp(&md, "logits", M, V);
    /* Embedding lookup: one row of D elements per token, gathered from the table. */
    uint64_t row = B(dt, D);
    int table = ir_view(p, md.params, "embedding", B(dt, emb_off), 1, emb_n, 0);
    if (ir_gather(p, table, x[0], row, 3 * row) < 0)
        return -1;
    for (unsigned l = 0; l < md.L; l++)
        if (layer_fwd(&md, l))
            return -1;
    ir_region(p, "final_norm");
    if (layernorm(&md, M * D, x[md.L], md.xf))
        return -1;
    ir_region(p, "lm_head");
    if (md.fsdp) {
        int t = ir_token_new(p);
        int sh = ir_view(p, md.params, "lm_head.shard", B(dt, lm_off), 1, lm_shard, 0);
        if (ir_collective(p, ISA_OP_ICI_ALLGATHER, o->fsdp_axes, B(dt, D * V), sh, md.lm_w, t) <
                0 ||
            ir_wait(p, t) < 0)
            return -1;
    }
    if (mm(&md, M, V, D, md.xf, md.lm_w, md.logits) || loss(&md))
        return -1;
    if (md.decode)
        return 0;
    /* Backward: LM head, final norm, layers in reverse, embedding gradient. */
    int lmdst =
        md.fsdp ? ir_view(p, md.grads, "lm_head.dshard", B(dt, lm_off), 1, lm_shard, 0) : md.glm;
    ir_region(p, "lm_head/bwd");
    if (mm(&md, M, D, V, md.logits, md.lm_w, md.dx) || mm(&md, D, V, M, md.xf, md.logits, md.glm) ||
        tp_allreduce(&md, md.dx, M * D) ||
        grad_reduce(&md, md.glm, lmdst, D * V, "lm_head/bwd", md.gf[(md.L - 1) % 2]))
        return -1;
    ir_region(p, "final_norm/bwd");
    if (layernorm_bwd(&md, M * D, md.dx, x[md.L], md.dx))
        return -1;
    for (unsigned l = md.L; l-- > 0;)
        if (layer_bwd(&md, l))
            return -1;
    /* Embedding gradient: scatter-add each token's gradient row into the table. */
    const int in[2] = {md.dx, x[0]};
    const ir_vop add = {ISA_OP_V_ADD, 0, 2, dt, 0, 0};
    int demb = ir_view(p, md.grads, "embedding.grad", B(dt, emb_off), 1, emb_n, 0);
    int t0 = tmp(&md, "dx.embed", M, D);
    ir_region(p, "embed/bwd");
    return vpass(&md, M * D, in, 2, t0, &add, 1) ||
                   grad_reduce(&md, demb, demb, vp * D, "embed/bwd", IR_TOKEN_LATE) ||
                   grad_tokens_wait(&md) || adam(&md)
               ? -1
               : 0;
}

int gen_fe_llm(ir *p, const gen_opts *o)
{
    if (o->pipeline > 1)
        return gen_fe_pipeline(p, o);
    int *x = calloc(o->layers + 1, sizeof *x), *kc = calloc(o->layers + 1, sizeof *kc),
        *vc = calloc(o->layers + 1, sizeof *vc),
        *sv = calloc(o->layers, GEN_ACT_COUNT * sizeof *sv);
    gen_moe_saved *msv = calloc(o->layers, sizeof *msv);
    int rc = !x || !kc || !vc || !sv || !msv ? -1 : llm(p, o, x, kc, vc, sv, msv);
    free(msv);
    free(sv);
    free(x);
    free(kc);
    free(vc);
    return rc;
}

/* ---- pipeline stages (the schedule: gen_pipeline.c) --------------------------------------- */

struct gen_stage {
    model md;
    unsigned nmb, L, first, last;
    /* tensor ids, in one block that x starts: */
    int *x;  /* x[mb * (L + 1) + l]: microbatch mb's input of local layer l (l = L: output) */
    int *sv; /* sv[mb * L * GEN_ACT_COUNT + ...]: its saved activations */
    int *xf, *logits; /* last stage: per microbatch */
    int table;        /* first stage: the embedding table */
    int pend;         /* token of the latest send, waited for after the next microbatch's work */
};

void gen_stage_free(gen_stage *s)
{
    if (s)
        free(s->x); /* the block of every tensor-id array */
    free(s);
}

gen_stage *gen_stage_new(ir *p, const gen_opts *o)
{
    gen_stage *s = calloc(1, sizeof *s);
    unsigned L = (unsigned)(o->layers / o->pipeline), n = (unsigned)o->microbatches;
    size_t nx = (size_t)n * (L + 1), nsv = (size_t)n * L * GEN_ACT_COUNT;
    if (!s || !(s->x = calloc(nx + nsv + 2 * (size_t)n, sizeof *s->x))) {
        gen_stage_free(s);
        ir_tensor_new(p, "(out of memory: pipeline stage)", ISA_DT_BF16, 0, 0); /* an error in p */
        return NULL;
    }
    s->sv = s->x + nx;
    s->xf = s->sv + nsv;
    s->logits = s->xf + n;
    s->nmb = n;
    s->L = L;
    s->first = o->stage == 0;
    s->last = o->stage + 1 == o->pipeline;
    s->pend = -1;
    model *md = &s->md;
    ir_region(p, "embed");
    if (model_init(md, p, o, 1, s->x, NULL, NULL, s->sv, NULL)) { /* no MoE with a pipeline */
        gen_stage_free(s);
        return NULL;
    }
    /* model_init made one set of layer inputs: the other microbatches get their own */
    for (unsigned mb = 1; mb < n; mb++)
        for (unsigned l = 0; l <= L; l++)
            s->x[mb * (L + 1) + l] = tmp(md, "x", md->M, md->D);
    isa_dtype dt = md->dt;
    uint64_t layers_n = md->L * md->layer_n;
    if (s->last) {
        md->lm_w = ir_view(p, md->params, "lm_head", B(dt, layers_n), md->D, md->V, 0);
        md->glm = ir_view(p, md->grads, "lm_head.grad", B(dt, layers_n), md->D, md->V, 0);
        for (unsigned mb = 0; mb < n; mb++) {
            s->xf[mb] = tmp(md, "xf", md->M, md->D);
            s->logits[mb] = tmp(md, "logits", md->M, md->V);
        }
    }
    if (s->first)
        s->table = ir_view(p, md->params, "embedding", B(dt, layers_n + md->lm_n), 1,
                           md->V * o->tp * md->D, 0);
    return ir_error(p, NULL) ? (gen_stage_free(s), NULL) : s;
}

/* Microbatch mb's tensors in the model's per-layer slots. */
static void stage_bind(gen_stage *s, unsigned mb)
{
    s->md.xsave = s->x + (size_t)mb * (s->L + 1);
    s->md.sv = s->sv + (size_t)mb * s->L * GEN_ACT_COUNT;
}

/* Point to point on the pipeline axis: a receive completes before its data is used; a send
 * stays in flight through the next microbatch's work (its buffer lives until then). */
static int stage_recv(gen_stage *s, int dir, int t)
{
    ir *p = s->md.p;
    int tok = ir_token_new(p);
    return ir_recv(p, s->md.o->pp_axes, dir, t, tok) < 0 || ir_wait(p, tok) < 0 ? -1 : 0;
}

static int stage_send(gen_stage *s, int dir, int t)
{
    ir *p = s->md.p;
    if (s->pend >= 0 && ir_wait(p, s->pend) < 0)
        return -1;
    s->pend = ir_token_new(p);
    return ir_send(p, s->md.o->pp_axes, dir, t, s->pend) < 0 ? -1 : 0;
}

int gen_stage_fwd(gen_stage *s, unsigned mb)
{
    model *md = &s->md;
    ir *p = md->p;
    uint64_t M = md->M, D = md->D;
    stage_bind(s, mb);
    ir_region(p, s->first ? "embed" : "pipe/recv");
    if (s->first ? ir_gather(p, s->table, md->xsave[0], B(md->dt, D), 3 * B(md->dt, D)) < 0
                 : stage_recv(s, -1, md->xsave[0]))
        return -1;
    for (unsigned l = 0; l < s->L; l++)
        if (layer_fwd(md, l))
            return -1;
    if (!s->last) {
        ir_region(p, "pipe/send");
        return stage_send(s, +1, md->xsave[s->L]);
    }
    md->xf = s->xf[mb];
    md->logits = s->logits[mb];
    ir_region(p, "final_norm");
    if (layernorm(md, M * D, md->xsave[s->L], md->xf))
        return -1;
    ir_region(p, "lm_head");
    return mm(md, M, md->V, D, md->xf, md->lm_w, md->logits) || loss(md) ? -1 : 0;
}

int gen_stage_bwd(gen_stage *s, unsigned mb)
{
    model *md = &s->md;
    ir *p = md->p;
    uint64_t M = md->M, D = md->D, V = md->V;
    stage_bind(s, mb);
    md->no_reduce = mb + 1 != s->nmb;
    md->dx = tmp(md, "dx", M, D);
    if (s->last) {
        ir_region(p, "lm_head/bwd");
        int lg = s->logits[mb], xf = s->xf[mb];
        if (mm(md, M, D, V, lg, md->lm_w, md->dx) || mm(md, D, V, M, xf, lg, md->glm) ||
            tp_allreduce(md, md->dx, M * D) ||
            grad_reduce(md, md->glm, md->glm, D * V, "lm_head/bwd", IR_TOKEN_LATE))
            return -1;
        ir_region(p, "final_norm/bwd");
        if (layernorm_bwd(md, M * D, md->dx, md->xsave[s->L], md->dx))
            return -1;
    } else {
        ir_region(p, "pipe/recv");
        if (stage_recv(s, +1, md->dx))
            return -1;
    }
    for (unsigned l = s->L; l-- > 0;)
        if (layer_bwd(md, l))
            return -1;
    if (!s->first) {
        ir_region(p, "pipe/send");
        return stage_send(s, -1, md->dx);
    }
    const int in[2] = {md->dx, md->xsave[0]};
    const ir_vop add = {ISA_OP_V_ADD, 0, 2, md->dt, 0, 0};
    uint64_t emb_n = md->V * md->o->tp * D;
    int demb = ir_view(p, md->grads, "embedding.grad", B(md->dt, md->L * md->layer_n + md->lm_n), 1,
                       emb_n, 0);
    ir_region(p, "embed/bwd");
    return vpass(md, M * D, in, 2, tmp(md, "dx.embed", M, D), &add, 1) ||
                   grad_reduce(md, demb, demb, emb_n, "embed/bwd", IR_TOKEN_LATE)
               ? -1
               : 0;
}

int gen_stage_finish(gen_stage *s)
{
    model *md = &s->md;
    md->no_reduce = 0;
    return (s->pend >= 0 && ir_wait(md->p, s->pend) < 0) || grad_tokens_wait(md) || adam(md) ? -1
                                                                                             : 0;
}
