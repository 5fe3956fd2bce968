/* gen_moe.c - the mixture-of-experts MLP of a decoder layer (GShard / Switch style), built
 * as workload IR for one chip: router matmul, softmax and top-k on the vector unit, token
 * dispatch and combine as all-to-alls over the expert axes, the local experts' MLPs sized by
 * their capacity, the weighted sum of each token's top-k outputs, and shared experts.
 *
 * Assumptions (docs/generators.md "Mixture of experts"): every expert receives exactly its
 * capacity cap = ceil(ep M k C / E) tokens (perfect balance; slots beyond the routed tokens
 * are padding the experts still compute, so executed FLOPs grow with C, model FLOPs do not);
 * expert d_ff is split over tensor parallelism like a dense MLP; the dispatch is a row
 * gather into [E/ep x ep][cap] slots, the all-to-all exchanges R x D elements per chip; the
 * router is replicated over tensor shards. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gen.h"

int gen_moe_is_layer(const gen_opts *o, uint64_t l)
{
    uint64_t every = o->moe_every ? o->moe_every : 1;
    return o->experts && l >= o->first_dense && (l - o->first_dense) % every == every - 1;
}

uint64_t gen_moe_layers(const gen_opts *o)
{
    uint64_t every = o->moe_every ? o->moe_every : 1;
    return o->experts && o->layers > o->first_dense ? (o->layers - o->first_dense) / every : 0;
}

void gen_moe_dims_of(const gen_opts *o, uint64_t tokens, gen_moe_dims *d)
{
    uint64_t ep = o->ep ? o->ep : 1, t = o->tp ? o->tp : 1;
    double c = o->capacity > 0 ? o->capacity : 1.0;
    uint64_t fe = (o->expert_d_ff ? o->expert_d_ff : o->d_ff) / t;
    int glu = o->mlp != GEN_MLP_GELU;
    memset(d, 0, sizeof *d);
    if (!o->experts)
        return;
    d->el = o->experts / ep;
    /* ceil(ep M k C / E), the product formed exactly in integers when C is whole */
    double want = (double)ep * (double)tokens * (double)o->top_k * c / (double)o->experts;
    d->cap = (uint64_t)ceil(want - 1e-9);
    d->rows = d->el * d->cap;
    d->fe = fe;
    d->uwe = glu ? 2 * fe : fe;
    d->fs = o->shared_experts * fe;
    d->uws = glu ? 2 * d->fs : d->fs;
}

int gen_moe_check(gen_opts *o, const cfg *c, err *e)
{
    (void)c;
    if (!o->experts) {
        if (o->top_k || o->ep > 1 || o->moe_every || o->expert_d_ff || o->shared_experts ||
            o->first_dense || o->capacity > 0)
            return err_set(e, "gen: the mixture-of-experts options need --experts");
        return 0;
    }
    if (!o->top_k)
        o->top_k = 1;
    if (!o->ep)
        o->ep = 1;
    if (!o->ep_axes)
        o->ep_axes = o->dp_axes;
    if (o->capacity <= 0)
        o->capacity = 1.0;
    if (o->top_k > o->experts)
        return err_set(e, "gen: --top-k %llu is more than --experts %llu",
                       (unsigned long long)o->top_k, (unsigned long long)o->experts);
    if (o->capacity < 1.0 || o->capacity > 64.0)
        return err_set(e,
                       "gen: --capacity-factor %g not in [1, 64] (dropped tokens are not "
                       "modelled)",
                       o->capacity);
    if (o->experts % o->ep)
        return err_set(e, "gen: --expert-parallel %llu must divide --experts %llu",
                       (unsigned long long)o->ep, (unsigned long long)o->experts);
    uint64_t fe = o->expert_d_ff ? o->expert_d_ff : o->d_ff;
    if (fe % o->tp)
        return err_set(e, "gen: --tensor-parallel %llu must divide the expert d-ff %llu",
                       (unsigned long long)o->tp, (unsigned long long)fe);
    if (o->parallel_block)
        return err_set(e, "gen: --experts with --parallel-block is not modelled");
    if (o->experts > 65536 || o->shared_experts > 65536)
        return err_set(e, "gen: --experts and --shared-experts take at most 65536");
    return 0;
}

uint64_t gen_moe_a2a_bytes(const gen_opts *o, uint64_t tokens)
{
    gen_moe_dims d;
    if (!o->experts || o->ep <= 1)
        return 0;
    gen_moe_dims_of(o, tokens, &d);
    return gen_dt_bytes(o->dtype, d.rows * o->d_model);
}

uint64_t gen_moe_fwd_flops(const gen_opts *o, uint64_t tokens, int model)
{
    gen_moe_dims d;
    gen_moe_dims_of(o, tokens, &d);
    uint64_t D = o->d_model, M = tokens;
    uint64_t rows = model ? M * o->top_k : d.rows;
    return 2 * M * D * o->experts + 2 * rows * (D * d.uwe + d.fe * D) +
           2 * M * (D * d.uws + d.fs * D);
}

static uint64_t pad_rows(ir *p, const gen_opts *o, uint64_t rows, uint64_t cols)
{
    return rows * (p && rows > 1 ? ir_pitch(p, cols, o->dtype) : cols);
}

/* Weight layout of the MoE part: router D x E, then per local expert up D x uwe and down
 * fe x D, then the shared experts' up D x uws and down fs x D. */
typedef struct moe_layout {
    uint64_t router, expert0, expert_n, up_n, shared_up, shared_down, total;
} moe_layout;

static void layout(ir *p, const gen_opts *o, moe_layout *w)
{
    gen_moe_dims d;
    gen_moe_dims_of(o, 1, &d);
    uint64_t D = o->d_model;
    w->router = 0;
    w->expert0 = pad_rows(p, o, D, o->experts);
    w->up_n = pad_rows(p, o, D, d.uwe);
    w->expert_n = w->up_n + pad_rows(p, o, d.fe, D);
    w->shared_up = w->expert0 + d.el * w->expert_n;
    w->shared_down = w->shared_up + (d.fs ? pad_rows(p, o, D, d.uws) : 0);
    w->total = w->shared_down + (d.fs ? pad_rows(p, o, d.fs, D) : 0);
}

uint64_t gen_moe_weight_elems(ir *p, const gen_opts *o)
{
    moe_layout w;
    if (!o->experts)
        return 0;
    layout(p, o, &w);
    return w.total;
}

/* ---- IR builders ---------------------------------------------------------------------------- */

static uint64_t Bt(const gen_moe_ctx *c, uint64_t n)
{
    return gen_dt_bytes(c->dt, n);
}

static uint64_t pitch_of(const gen_moe_ctx *c, uint64_t rows, uint64_t cols)
{
    return rows > 1 ? ir_pitch(c->p, cols, c->dt) : cols;
}

static int tmp(const gen_moe_ctx *c, const char *what, uint64_t rows, uint64_t cols)
{
    char nm[IR_NAME_MAX];
    snprintf(nm, sizeof nm, "L%u.moe.%s", c->layer, what);
    return ir_tensor_new(c->p, nm, c->dt, rows, cols);
}

/* A weight (or its gradient) of the MoE part at element offset off: rows x cols as stored. */
static int wview(const gen_moe_ctx *c, int root, uint64_t off, uint64_t rows, uint64_t cols,
                 const char *what)
{
    char nm[IR_NAME_MAX];
    snprintf(nm, sizeof nm, "L%u.%s", c->layer, what);
    return ir_view(c->p, root, nm, Bt(c, off), rows, cols, 0);
}

/* t reinterpreted as rows x cols (a transposed operand), laid out for the layer's datatype
 * (ir_reshape, as gen_models.c does). */
static int as(const gen_moe_ctx *c, int t, uint64_t rows, uint64_t cols)
{
    return ir_reshape(c->p, t, "T", rows, cols, c->dt);
}

/* Rows [r0, r0 + n) of t (t's columns and pitch). */
static int rows_of(const gen_moe_ctx *c, int t, uint64_t r0, uint64_t n)
{
    const ir_tensor *x = ir_tensor_get(c->p, t);
    if (!x)
        return -1;
    uint64_t pt = x->pitch ? x->pitch : pitch_of(c, x->rows, x->cols);
    return ir_view(c->p, t, "rows", Bt(c, r0 * pt), n, x->cols, pt);
}

static int flat(const gen_moe_ctx *c, int t, uint64_t off, uint64_t n)
{
    return ir_view(c->p, t, "flat", Bt(c, off), 1, n, n);
}

static int mm(const gen_moe_ctx *c, uint64_t m, uint64_t n, uint64_t k, int a, int w, int out)
{
    return ir_matmul(c->p, as(c, a, m, k), as(c, w, k, n), as(c, out, m, n), m, n, k);
}

/* All-to-all of `in` into `out` over the expert axes, waited (the experts, or the combine,
 * need it); nothing without expert parallelism (in is used as is). */
static int alltoall(const gen_moe_ctx *c, int in, int out, uint64_t rows)
{
    int tok = ir_token_new(c->p);
    return ir_collective(c->p, ISA_OP_ICI_ALLTOALL, c->o->ep_axes, Bt(c, rows * c->D), in, out,
                         tok) < 0 ||
                   ir_wait(c->p, tok) < 0
               ? -1
               : 0;
}

/* out [M, D] = the sum of the k row slices [j M, (j + 1) M) of src (each token's top-k
 * expert outputs, or the k copies of its gradient), each scaled by its gate: fused passes
 * of up to 5 slices plus the running sum. */
static int sum_slices(const gen_moe_ctx *c, int src, int out, uint64_t k)
{
    isa_dtype dt = c->dt;
    uint64_t n = c->M * c->D;
    for (uint64_t j = 0; j < k;) {
        int in[6];
        unsigned nin = 0;
        if (j)
            in[nin++] = out;
        while (nin < 6 && j < k)
            if ((in[nin++] = rows_of(c, src, j++ * c->M, c->M)) < 0)
                return -1;
        ir_vop ops[12];
        unsigned nops = 0, scratch = nin + 1;
        for (unsigned i = 0; i < nin; i++) {
            ops[nops++] = (ir_vop){ISA_OP_V_MUL, i, scratch, dt, 0, 0};
            ops[nops++] = (ir_vop){ISA_OP_V_ADD, scratch, nin, dt, 0, 0};
        }
        if (ir_fusion(c->p, n, in, nin, &out, 1, ops, nops) < 0)
            return -1;
    }
    return 0;
}

/* Gated MLP activation over n elements: SwiGLU (silu(gate) x up, the gate the first half of
 * the up output) or GELU; and its backward. */
static int act_fwd(const gen_moe_ctx *c, int up, int act, uint64_t n)
{
    isa_dtype dt = c->dt;
    if (c->o->mlp == GEN_MLP_GELU) {
        const ir_vop ops[] = {
            {ISA_OP_V_MUL, 0, 2, dt, 0, 0}, {ISA_OP_V_FMA, 2, 2, dt, 0, 0},
            {ISA_OP_V_MUL, 0, 2, dt, 0, 0}, {ISA_OP_V_TANH, 2, 2, dt, 0, 0},
            {ISA_OP_V_FMA, 2, 2, dt, 0, 0}, {ISA_OP_V_MUL, 0, 1, dt, 0, 0},
        };
        return ir_fusion(c->p, n, &up, 1, &act, 1, ops, 6) < 0 ? -1 : 0;
    }
    const int in[2] = {flat(c, up, 0, n), flat(c, up, n, n)};
    const ir_vop ops[] = {
        {ISA_OP_V_EXP, 0, 3, dt, 0, 0},   {ISA_OP_V_ADD, 3, 3, dt, 0, 0},
        {ISA_OP_V_RSQRT, 3, 3, dt, 0, 0}, {ISA_OP_V_MUL, 3, 3, dt, 0, 0},
        {ISA_OP_V_MUL, 0, 3, dt, 0, 0},   {ISA_OP_V_MUL, 3, 2, dt, 0, 0},
    };
    return ir_fusion(c->p, n, in, 2, &act, 1, ops, 6) < 0 ? -1 : 0;
}

static int act_bwd(const gen_moe_ctx *c, int dact, int up, int dup, uint64_t n)
{
    isa_dtype dt = c->dt;
    const int in[2] = {dact, c->o->mlp == GEN_MLP_GELU ? up : flat(c, up, 0, n)};
    const ir_vop ops[] = {
        {ISA_OP_V_EXP, 1, 3, dt, 0, 0},   {ISA_OP_V_ADD, 3, 3, dt, 0, 0},
        {ISA_OP_V_RSQRT, 3, 3, dt, 0, 0}, {ISA_OP_V_MUL, 3, 3, dt, 0, 0},
        {ISA_OP_V_FMA, 1, 4, dt, 0, 0},   {ISA_OP_V_MUL, 0, 4, dt, 0, 0},
        {ISA_OP_V_MUL, 0, 2, dt, 0, 0},
    };
    return ir_fusion(c->p, n, in, 2, &dup, 1, ops, 7) < 0 ? -1 : 0;
}

/* What both passes work from: the capacity-sized dimensions and the weight layout. */
static void moe_plan(const gen_moe_ctx *c, gen_moe_dims *d, moe_layout *w)
{
    gen_moe_dims_of(c->o, c->M, d);
    layout(c->p, c->o, w);
}

int gen_moe_fwd(const gen_moe_ctx *c, int xn, int out, gen_moe_saved *sv)
{
    uint64_t M = c->M, D = c->D, E = c->o->experts, k = c->o->top_k;
    gen_moe_dims d;
    moe_layout w;
    moe_plan(c, &d, &w);
    memset(sv, -1, sizeof *sv);
    /* Router: logits = xn Wr, then softmax (row max, subtract, exp, row sum, reciprocal as
     * rsqrt squared, scale) and top-k (k rounds of row max and select) on the vector unit. */
    int logits = tmp(c, "logits", M, E);
    sv->probs = tmp(c, "probs", M, E);
    if (mm(c, M, E, D, xn, wview(c, c->w, w.router, D, E, "router"), logits) < 0)
        return -1;
    const ir_vop ops[] = {
        {ISA_OP_V_REDUCE, 0, 2, ISA_DT_FP32, (unsigned)E, 0},
        {ISA_OP_V_SUB, 0, 2, ISA_DT_FP32, 0, 0},
        {ISA_OP_V_EXP, 2, 2, ISA_DT_FP32, 0, 0},
        {ISA_OP_V_REDUCE, 2, 3, ISA_DT_FP32, (unsigned)E, 0},
        {ISA_OP_V_RSQRT, 3, 3, ISA_DT_FP32, 0, (unsigned)E},
        {ISA_OP_V_MUL, 2, 2, ISA_DT_FP32, 0, 0},
        {ISA_OP_V_CAST, 2, 1, ISA_DT_FP32, c->dt, 0},
    };
    if (ir_fusion(c->p, M * E, &logits, 1, &sv->probs, 1, ops, 7) < 0)
        return -1;
    /* top-k: per round a row max and a select, up to 6 rounds per fused pass */
    for (uint64_t j = 0; j < k;) {
        ir_vop top[IR_MAX_VOPS];
        unsigned n = 0;
        for (; j < k && n + 2 <= IR_MAX_VOPS; j++) {
            top[n++] = (ir_vop){ISA_OP_V_REDUCE, 0, 2, c->dt, (unsigned)E, 0};
            top[n++] = (ir_vop){ISA_OP_V_SELECT, 0, 1, c->dt, 0, 0};
        }
        if (ir_fusion(c->p, M * E, &sv->probs, 1, &sv->probs, 1, top, n) < 0)
            return -1;
    }
    /* Dispatch: each token's row copied into its k experts' slots (a row gather), then
     * exchanged with the chips holding those experts. */
    uint64_t R = d.rows, rb = Bt(c, D), xp = Bt(c, pitch_of(c, M, D));
    int xe = tmp(c, "dispatch", R, D);
    if (ir_gather(c->p, xn, xe, rb, xp) < 0)
        return -1;
    sv->xr = xe;
    if (c->o->ep > 1 && ((sv->xr = tmp(c, "expert_in", R, D)) < 0 || alltoall(c, xe, sv->xr, R)))
        return -1;
    /* The local experts, each on its cap rows. */
    sv->up = tmp(c, "up", R, d.uwe);
    sv->act = tmp(c, "act", R, d.fe);
    int ye = tmp(c, "expert_out", R, D);
    for (uint64_t e = 0; e < d.el; e++) {
        uint64_t off = w.expert0 + e * w.expert_n;
        if (mm(c, d.cap, d.uwe, D, rows_of(c, sv->xr, e * d.cap, d.cap),
               wview(c, c->w, off, D, d.uwe, "expert.up"),
               rows_of(c, sv->up, e * d.cap, d.cap)) < 0)
            return -1;
    }
    if (act_fwd(c, sv->up, sv->act, R * d.fe))
        return -1;
    for (uint64_t e = 0; e < d.el; e++) {
        uint64_t off = w.expert0 + e * w.expert_n + w.up_n;
        if (mm(c, d.cap, D, d.fe, rows_of(c, sv->act, e * d.cap, d.cap),
               wview(c, c->w, off, d.fe, D, "expert.down"), rows_of(c, ye, e * d.cap, d.cap)) < 0)
            return -1;
    }
    /* Combine: the outputs go back to their tokens' chips, and each token sums its top-k
     * outputs weighted by the gates. */
    sv->yr = ye;
    if (c->o->ep > 1 && ((sv->yr = tmp(c, "combine_in", R, D)) < 0 || alltoall(c, ye, sv->yr, R)))
        return -1;
    uint64_t slices = k < R / M ? k : (R / M ? R / M : 1);
    int routed = d.fs ? tmp(c, "routed", M, D) : out;
    if (sum_slices(c, sv->yr, routed, slices))
        return -1;
    if (!d.fs)
        return 0;
    /* Shared experts: a dense MLP of shared x fe every token runs, its down projection adding
     * the routed sum in the epilogue. */
    sv->sup = tmp(c, "shared_up", M, d.uws);
    sv->sact = tmp(c, "shared_act", M, d.fs);
    if (mm(c, M, d.uws, D, xn, wview(c, c->w, w.shared_up, D, d.uws, "shared.up"), sv->sup) < 0 ||
        act_fwd(c, sv->sup, sv->sact, M * d.fs))
        return -1;
    const ir_vop add = {ISA_OP_V_ADD, 0, 0, ISA_DT_FP32, 0, 0};
    int i = mm(c, M, D, d.fs, sv->sact, wview(c, c->w, w.shared_down, d.fs, D, "shared.down"), out);
    return i < 0 || ir_matmul_epilogue(c->p, i, &routed, 1, &add, 1) < 0 ? -1 : 0;
}

int gen_moe_bwd(const gen_moe_ctx *c, int xn, const gen_moe_saved *sv, int dy, int dxn)
{
    uint64_t M = c->M, D = c->D, E = c->o->experts, k = c->o->top_k;
    gen_moe_dims d;
    moe_layout w;
    moe_plan(c, &d, &w);
    uint64_t R = d.rows, rb = Bt(c, D), yp = Bt(c, pitch_of(c, M, D));
    /* Combine backward: dy copied to each token's k slots, scaled by the gates (and the
     * gates' gradient, dy . y per slot), then sent back to the experts. */
    int dyr = tmp(c, "dcombine", R, D);
    const int gin[2] = {dyr, sv->yr};
    const ir_vop gops[] = {
        {ISA_OP_V_MUL, 1, 3, c->dt, 0, 0},
        {ISA_OP_V_REDUCE, 3, 3, ISA_DT_FP32, (unsigned)D, 0},
        {ISA_OP_V_MUL, 0, 2, c->dt, 0, 0},
    };
    if (ir_gather(c->p, dy, dyr, rb, yp) < 0 ||
        ir_fusion(c->p, R * D, gin, 2, &dyr, 1, gops, 3) < 0)
        return -1;
    int dye = dyr;
    if (c->o->ep > 1 && ((dye = tmp(c, "dexpert_out", R, D)) < 0 || alltoall(c, dyr, dye, R)))
        return -1;
    /* Experts: dact = dye Wd^T, dWd = act^T dye; activation backward; dx = dup Wup^T,
     * dWup = x^T dup. */
    int dact = tmp(c, "dact", R, d.fe), dup = tmp(c, "dup", R, d.uwe);
    int dxe = tmp(c, "dexpert_in", R, D);
    for (uint64_t e = 0; e < d.el; e++) {
        uint64_t off = w.expert0 + e * w.expert_n + w.up_n;
        int dy_e = rows_of(c, dye, e * d.cap, d.cap);
        if (mm(c, d.cap, d.fe, D, dy_e, wview(c, c->w, off, d.fe, D, "expert.down"),
               rows_of(c, dact, e * d.cap, d.cap)) < 0 ||
            mm(c, d.fe, D, d.cap, rows_of(c, sv->act, e * d.cap, d.cap), dy_e,
               wview(c, c->g, off, d.fe, D, "expert.ddown")) < 0)
            return -1;
    }
    if (act_bwd(c, dact, sv->up, dup, R * d.fe))
        return -1;
    for (uint64_t e = 0; e < d.el; e++) {
        uint64_t off = w.expert0 + e * w.expert_n;
        int du_e = rows_of(c, dup, e * d.cap, d.cap);
        if (mm(c, d.cap, D, d.uwe, du_e, wview(c, c->w, off, D, d.uwe, "expert.up"),
               rows_of(c, dxe, e * d.cap, d.cap)) < 0 ||
            mm(c, D, d.uwe, d.cap, rows_of(c, sv->xr, e * d.cap, d.cap), du_e,
               wview(c, c->g, off, D, d.uwe, "expert.dup")) < 0)
            return -1;
    }
    /* Dispatch backward: the input gradients go back to their tokens' chips and each token
     * sums its k copies. */
    int dxd = dxe;
    if (c->o->ep > 1 && ((dxd = tmp(c, "ddispatch", R, D)) < 0 || alltoall(c, dxe, dxd, R)))
        return -1;
    int dsum = tmp(c, "dx_routed", M, D);
    uint64_t slices = k < R / M ? k : (R / M ? R / M : 1);
    if (sum_slices(c, dxd, dsum, slices))
        return -1;
    const ir_vop addf = {ISA_OP_V_ADD, 0, 0, ISA_DT_FP32, 0, 0};
    if (d.fs) {
        /* Shared experts, their input gradient added to the routed one. */
        int dsact = tmp(c, "dshared_act", M, d.fs), dsup = tmp(c, "dshared_up", M, d.uws);
        int dsx = tmp(c, "dx_shared", M, D);
        int i;
        if (mm(c, M, d.fs, D, dy, wview(c, c->w, w.shared_down, d.fs, D, "shared.down"), dsact) <
                0 ||
            mm(c, d.fs, D, M, sv->sact, dy,
               wview(c, c->g, w.shared_down, d.fs, D, "shared.ddown")) < 0 ||
            act_bwd(c, dsact, sv->sup, dsup, M * d.fs) ||
            (i = mm(c, M, D, d.uws, dsup, wview(c, c->w, w.shared_up, D, d.uws, "shared.up"),
                    dsx)) < 0 ||
            ir_matmul_epilogue(c->p, i, &dsum, 1, &addf, 1) < 0 ||
            mm(c, D, d.uws, M, xn, dsup, wview(c, c->g, w.shared_up, D, d.uws, "shared.dup")) < 0)
            return -1;
        dsum = dsx;
    }
    /* Router backward: softmax backward on the vector unit, dxn = dlogits Wr^T + the expert
     * path's gradient (in the epilogue), dWr = xn^T dlogits. */
    int dlog = tmp(c, "dlogits", M, E);
    const ir_vop sops[] = {
        {ISA_OP_V_MUL, 0, 2, ISA_DT_FP32, 0, 0},
        {ISA_OP_V_REDUCE, 2, 3, ISA_DT_FP32, (unsigned)E, 0},
        {ISA_OP_V_SUB, 0, 2, ISA_DT_FP32, 0, 0},
        {ISA_OP_V_MUL, 2, 1, c->dt, 0, 0},
    };
    if (ir_fusion(c->p, M * E, &sv->probs, 1, &dlog, 1, sops, 4) < 0)
        return -1;
    int i = mm(c, M, D, E, dlog, wview(c, c->w, w.router, D, E, "router"), dxn);
    return i < 0 || ir_matmul_epilogue(c->p, i, &dsum, 1, &addf, 1) < 0 ||
                   mm(c, D, E, M, xn, dlog, wview(c, c->g, w.router, D, E, "drouter")) < 0
               ? -1
               : 0;
}
