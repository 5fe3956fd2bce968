/* hlo_ir.c - the HLO importer as a frontend of the workload IR (ir.h): the analysed plan of
 * a module (hlo_sem.c: items in execution order, while loops unrolled, calls inlined) becomes
 * IR ops over IR tensors, lowered by the generators' passes (lower_tile, lower_mem,
 * lower_emit). No instruction is written here.
 *
 * Values: every item's result is a tensor (2-D: the minor-most dimension of its layout as
 * columns, the rest folded into rows); an operand resolves to the tensor of the latest item
 * that produced it, looking through free ops (bitcast, reshape, tuple / get-tuple-element,
 * -done). Values no item produced (entry parameters, constants, a while body's loop state)
 * are persistent tensors, one per HLO instruction, as are the entry root's values (the
 * program's outputs); everything else is a temporary the memory plan frees after its last
 * use. Approximations are listed in docs/hlo.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "hlo.h"
#include "lower.h"
#include "umath.h"

#define FOLD_BATCH  64 /* more problems than this fold into rows (same FLOPs, one GEMM) */
#define MAX_RESOLVE 256

typedef struct slot {
    const hlo_instr *ins;
    int idx; /* tuple element, -1: the whole value */
    int id;
} slot;

typedef struct bld {
    ir *p;
    const hlo_module *m;
    slot *map;
    size_t cap, n;
    err *e;
} bld;

static size_t hash(const hlo_instr *ins, int idx, size_t cap)
{
    uint64_t h =
        (uint64_t)(uintptr_t)ins * 0x9E3779B97F4A7C15ull ^ (uint64_t)(idx + 1) * 0xC2B2AE35;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static int map_get(const bld *b, const hlo_instr *ins, int idx)
{
    if (!b->cap)
        return -1;
    for (size_t i = hash(ins, idx, b->cap);; i = (i + 1) & (b->cap - 1)) {
        if (!b->map[i].ins)
            return -1;
        if (b->map[i].ins == ins && b->map[i].idx == idx)
            return b->map[i].id;
    }
}

static int map_put(bld *b, const hlo_instr *ins, int idx, int id)
{
    if ((b->n + 1) * 2 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        slot *nm = calloc(nc, sizeof *nm);
        if (!nm)
            return err_setk(b->e, ERR_NOMEM, "import: out of memory");
        for (size_t i = 0; i < b->cap; i++)
            if (b->map[i].ins) {
                size_t j = hash(b->map[i].ins, b->map[i].idx, nc);
                while (nm[j].ins)
                    j = (j + 1) & (nc - 1);
                nm[j] = b->map[i];
            }
        free(b->map);
        b->map = nm;
        b->cap = nc;
    }
    size_t i = hash(ins, idx, b->cap);
    while (b->map[i].ins && !(b->map[i].ins == ins && b->map[i].idx == idx))
        i = (i + 1) & (b->cap - 1);
    if (!b->map[i].ins)
        b->n++;
    b->map[i] = (slot){ins, idx, id};
    return 0;
}

/* ---- shapes ---------------------------------------------------------------------------- */

static uint64_t elems_of(const hlo_shape *s)
{
    uint64_t n = hlo_shape_elems(hlo_shape_array(s));
    return n ? n : 1;
}

/* rows x cols of an array shape: its minor-most dimension (by layout) as columns. */
static void shape2d(const hlo_shape *s, uint64_t *rows, uint64_t *cols)
{
    s = hlo_shape_array(s);
    uint64_t n = elems_of(s), c = n;
    if (s->et != HLO_ET_TUPLE && s->rank) {
        unsigned d = s->has_layout ? s->minor_to_major[0] : s->rank - 1;
        if (d < s->rank && s->dims[d] > 0)
            c = (uint64_t)s->dims[d];
    }
    if (!c || n % c)
        c = n;
    *rows = n / c;
    *cols = c;
}

static isa_dtype tensor_dt(const hlo_shape *s)
{
    const hlo_shape *a = hlo_shape_array(s);
    return a->et == HLO_ET_TUPLE || a->et == HLO_ET_TOKEN || a->et == HLO_ET_OPAQUE
               ? ISA_DT_INT8
               : hlo_isa_dtype(a->et);
}

static int is_output(const bld *b, const hlo_instr *ins)
{
    const hlo_instr *r = b->m->entry ? b->m->entry->root : NULL;
    if (!r)
        return 0;
    if (r == ins)
        return 1;
    if (r->op == HLO_OP_TUPLE)
        for (unsigned i = 0; i < r->nops; i++)
            if (r->operands[i] == ins)
                return 1;
    return 0;
}

static int new_tensor(bld *b, const hlo_instr *ins, const hlo_shape *s, int persistent)
{
    uint64_t rows, cols;
    shape2d(s, &rows, &cols);
    char nm[IR_NAME_MAX];
    snprintf(nm, sizeof nm, "%.31s", ins->name[0] == '%' ? ins->name + 1 : ins->name);
    isa_dtype dt = tensor_dt(s);
    return persistent ? ir_param_new(b->p, nm, dt, rows, cols)
                      : ir_tensor_new(b->p, nm, dt, rows, cols);
}

/* The tensor holding value (ins, idx): the latest item's result, through free ops, else a
 * persistent tensor made for it (parameters, constants, loop state). */
static int resolve(bld *b, const hlo_instr *x)
{
    int idx = -1;
    for (int guard = 0; guard < MAX_RESOLVE; guard++) {
        int id = map_get(b, x, idx);
        if (id >= 0)
            return id;
        if (idx >= 0 && (id = map_get(b, x, -1)) >= 0)
            return id;
        if (idx < 0 && x->op == HLO_OP_GET_TUPLE_ELEMENT && x->nops >= 1) {
            idx = (int)x->index;
            x = x->operands[0];
            continue;
        }
        if (idx >= 0 && x->op == HLO_OP_TUPLE) {
            if ((unsigned)idx >= x->nops)
                break;
            x = x->operands[idx];
            idx = -1;
            continue;
        }
        hlo_opclass oc = hlo_opcode_class(x->op);
        int pass = x->op == HLO_OP_BITCAST || x->op == HLO_OP_RESHAPE || oc == HLO_OC_DONE ||
                   (oc == HLO_OC_FREE && x->op != HLO_OP_PARAMETER && x->op != HLO_OP_CONSTANT &&
                    x->op != HLO_OP_IOTA && x->op != HLO_OP_TUPLE);
        if (idx < 0 && pass && x->nops >= 1) {
            x = x->operands[0];
            continue;
        }
        break;
    }
    /* a value no item produced: persistent, one per (instruction, element) */
    const hlo_shape *s = &x->shape;
    if (idx >= 0 && s->et == HLO_ET_TUPLE && (unsigned)idx < s->ntuple)
        s = &s->tuple[idx];
    int id = new_tensor(b, x, s, 1);
    if (id < 0 || map_put(b, x, idx, id))
        return -1;
    return id;
}

/* t reinterpreted as rows x cols (a transposed or reshaped operand: ir_reshape), or a fresh
 * tensor when t has fewer elements than the op reads. */
static int as_shape(bld *b, int t, uint64_t rows, uint64_t cols)
{
    const ir_tensor *x = ir_tensor_get(b->p, t);
    if (!x)
        return -1;
    if (rows * cols > ir_span(b->p, t, x->dt)) /* fewer elements than the op reads */
        return ir_param_new(b->p, x->name, x->dt, rows, cols);
    return ir_reshape(b->p, t, NULL, rows, cols, x->dt);
}

/* An item's result tensor (recorded as the value of ins). */
static int result(bld *b, const hlo_instr *ins)
{
    int id = new_tensor(b, ins, &ins->shape, is_output(b, ins));
    if (id < 0 || map_put(b, ins, -1, id))
        return -1;
    return id;
}

/* The fusion operand a value inside fused computation feeds from (through unary ops), or
 * NULL when it is computed inside. */
static const hlo_instr *fusion_operand(const hlo_instr *fusion, const hlo_instr *x)
{
    for (int guard = 0; x && guard < MAX_RESOLVE; guard++) {
        if (x->op == HLO_OP_PARAMETER)
            return fusion && x->param_number >= 0 && (uint64_t)x->param_number < fusion->nops
                       ? fusion->operands[x->param_number]
                       : NULL;
        if (x->nops != 1)
            return NULL;
        x = x->operands[0];
    }
    return NULL;
}

/* ---- vector op mix --------------------------------------------------------------------- */

static int vop_of(hlo_opcode op)
{
    switch (op) {
    case HLO_OP_SUBTRACT:
        return ISA_OP_V_SUB;
    case HLO_OP_MULTIPLY:
    case HLO_OP_DIVIDE:
        return ISA_OP_V_MUL;
    case HLO_OP_MAXIMUM:
    case HLO_OP_COMPARE:
        return ISA_OP_V_MAX;
    case HLO_OP_MINIMUM:
        return ISA_OP_V_MIN;
    case HLO_OP_SELECT:
    case HLO_OP_CLAMP:
        return ISA_OP_V_SELECT;
    case HLO_OP_TANH:
        return ISA_OP_V_TANH;
    case HLO_OP_LOG:
    case HLO_OP_LOG_PLUS_ONE:
        return ISA_OP_V_LOG;
    case HLO_OP_RSQRT:
    case HLO_OP_SQRT:
    case HLO_OP_CBRT:
        return ISA_OP_V_RSQRT;
    case HLO_OP_REDUCE:
    case HLO_OP_REDUCE_WINDOW:
    case HLO_OP_SELECT_AND_SCATTER:
    case HLO_OP_SORT:
    case HLO_OP_SCATTER:
    case HLO_OP_CHOLESKY:
    case HLO_OP_TRIANGULAR_SOLVE:
    case HLO_OP_FFT:
        return ISA_OP_V_REDUCE;
    default:
        return hlo_opcode_class(op) == HLO_OC_TRANS ? ISA_OP_V_EXP : ISA_OP_V_ADD;
    }
}

typedef struct mix {
    ir_vop v[IR_MAX_VOPS];
    unsigned n;
    uint64_t dropped; /* ops beyond IR_MAX_VOPS */
} mix;

/* The vector ops of a fused computation over `elems` elements per op: one per elementwise,
 * transcendental or reduction instruction that touches at least half as many elements
 * (smaller ones: scalar and per-row math, broadcast operands); converts are the kernel's
 * casts. `buf` is the chunk buffer the chain works in; the core dot is skipped. */
static void fused_mix(const hlo_comp *c, uint64_t elems, isa_dtype dt, unsigned buf, mix *mx,
                      unsigned depth)
{
    if (!c || depth > 16)
        return;
    for (unsigned i = 0; i < c->ninstrs; i++) {
        const hlo_instr *x = c->instrs[i];
        hlo_opclass oc = hlo_opcode_class(x->op);
        if (oc == HLO_OC_FUSION) {
            fused_mix(x->calls, elems, dt, buf, mx, depth + 1);
            continue;
        }
        if ((oc != HLO_OC_ELEM && oc != HLO_OC_TRANS && oc != HLO_OC_REDUCE) ||
            x->op == HLO_OP_CONVERT || x->op == HLO_OP_BITCAST_CONVERT)
            continue;
        uint64_t r = elems_of(&x->shape), in = r;
        if (oc == HLO_OC_REDUCE)
            for (unsigned j = 0; j < x->nops; j++)
                in = um_max(in, elems_of(&x->operands[j]->shape));
        if (in * 2 < elems)
            continue;
        if (mx->n == IR_MAX_VOPS) {
            mx->dropped++;
            continue;
        }
        ir_vop v = {.op = vop_of(x->op), .src = buf, .dst = buf, .dt = dt};
        if (v.op == ISA_OP_V_REDUCE) {
            uint64_t w = in / r;
            v.width = (unsigned)(w < 1 ? 1 : w > (1u << 20) ? (1u << 20) : w);
        }
        mx->v[mx->n++] = v;
    }
}

/* ---- ops ------------------------------------------------------------------------------- */

static isa_dtype mxu_dt(isa_dtype dt)
{
    return dt == ISA_DT_INT8 || dt == ISA_DT_FP8 ? dt : ISA_DT_BF16;
}

static void set_region(bld *b, const hlo_item *it)
{
    const char *op_name = it->region;
    char out[IR_REGION_MAX];
    if (!op_name || !*op_name) {
        ir_region(b->p, "hlo");
        return;
    }
    /* the scope path without its last component (the primitive): the last '/' outside
     * brackets; its last bytes when longer than a region name */
    size_t len = strlen(op_name);
    const char *slash = NULL;
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = op_name[i];
        depth += ch == '[' || ch == '(';
        depth -= (ch == ']' || ch == ')') && depth > 0;
        if (ch == '/' && depth == 0)
            slash = op_name + i;
    }
    if (slash && slash > op_name)
        len = (size_t)(slash - op_name);
    size_t n = ISA_NAME_MAX < IR_REGION_MAX ? ISA_NAME_MAX : IR_REGION_MAX;
    const char *s = op_name;
    if (len >= n) {
        s += len - (n - 1);
        len = n - 1;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == '"' || out[i] == '%')
            out[i] = '_';
    ir_region(b->p, "%s", out);
}

/* A dot or convolution (bare, or the core of a fusion) with its fused epilogue. */
static int do_matmul(bld *b, const hlo_item *it)
{
    const hlo_instr *core = it->core ? it->core : it->ins;
    const hlo_instr *fus = it->core ? it->ins : NULL;
    uint64_t batch = it->batch ? it->batch : 1, m = it->m, n = it->n, k = it->k;
    if (!m || !n || !k)
        return 0;
    const hlo_instr *xa = core->nops > 0 ? core->operands[0] : NULL;
    const hlo_instr *xw = core->nops > 1 ? core->operands[1] : NULL;
    if (fus) {
        xa = fusion_operand(fus, xa);
        xw = fusion_operand(fus, xw);
    }
    int out = result(b, it->ins);
    if (out < 0)
        return -1;
    /* the epilogue: the fusion's other ops on each output element */
    mix mx = {.n = 0};
    if (fus)
        fused_mix(fus->calls, batch * m * n, ISA_DT_FP32, 0, &mx, 0);
    /* a residual or other full-size operand of the fusion: the epilogue's extra input */
    int extra = -1;
    if (fus && mx.n)
        for (unsigned i = 0; i < fus->nops && extra < 0; i++) {
            const hlo_instr *o = fus->operands[i];
            if (o != xa && o != xw && elems_of(&o->shape) == batch * m * n)
                extra = resolve(b, o);
        }
    isa_dtype dt = mxu_dt(it->dt);
    int op;
    const hlo_dim_labels *dl = &core->dim_labels;
    if (it->cls == HLO_CLS_CONV && batch == 1 && core->has_dim_labels && dl->nspatial == 2 &&
        core->window.n == 2 && xa && xw) {
        /* a plain 2-D convolution: the implicit GEMM of lower_tile, if its shapes are the
         * square-padded NHWC form */
        const hlo_shape *a = hlo_shape_array(&core->operands[0]->shape),
                        *w = hlo_shape_array(&core->operands[1]->shape),
                        *o = hlo_shape_array(&core->shape);
        const hlo_window_dim *w0 = &core->window.d[0], *w1 = &core->window.d[1];
        int64_t N = a->dims[dl->lhs_batch], H = a->dims[dl->lhs_spatial[0]],
                W = a->dims[dl->lhs_spatial[1]], C = a->dims[dl->lhs_feature];
        int64_t R = w->dims[dl->rhs_spatial[0]], S = w->dims[dl->rhs_spatial[1]],
                K = w->dims[dl->rhs_out];
        int64_t st = w0->stride > 0 ? w0->stride : 1, pad = w0->pad_lo;
        int plain = N > 0 && H > 0 && W > 0 && C > 0 && R > 0 && S > 0 && K > 0 &&
                    w1->stride == w0->stride && w0->pad_hi == pad && w1->pad_lo == pad &&
                    w1->pad_hi == pad && pad >= 0 && w0->lhs_dilate <= 1 && w1->lhs_dilate <= 1 &&
                    w0->rhs_dilate <= 1 && w1->rhs_dilate <= 1 && H + 2 * pad >= R &&
                    W + 2 * pad >= S && (H + 2 * pad - R) / st + 1 == o->dims[dl->out_spatial[0]] &&
                    (W + 2 * pad - S) / st + 1 == o->dims[dl->out_spatial[1]] &&
                    (uint64_t)(R * S * C) == k && (uint64_t)K == n;
        if (plain) {
            uint64_t P =
                (uint64_t)o->dims[dl->out_spatial[0]] * (uint64_t)o->dims[dl->out_spatial[1]];
            int in = as_shape(b, resolve(b, xa), (uint64_t)(N * H * W), (uint64_t)C);
            int wt = as_shape(b, resolve(b, xw), k, n);
            int ot = as_shape(b, out, (uint64_t)N * P, n);
            op = ir_conv2d(b->p, in, wt, ot, (uint64_t)N, (uint64_t)H, (uint64_t)W, (uint64_t)C,
                           (uint64_t)K, (uint64_t)R, (uint64_t)S, (uint64_t)st, (uint64_t)pad);
            if (op < 0)
                return -1;
            ir_op *o2 = ir_op_at(b->p, op);
            o2->dt = dt;
            memcpy(o2->vops, mx.v, mx.n * sizeof *mx.v);
            o2->nvops = mx.n;
            return 0;
        }
    }
    if (batch > FOLD_BATCH) {
        m *= batch;
        batch = 1;
    }
    /* A: the lhs operand as [batch m, k]; a convolution that is not a plain 2-D one reads
     * its patches as if materialised (an im2col matrix nobody writes) */
    int a;
    if (it->cls == HLO_CLS_CONV || !xa)
        a = ir_tensor_new(b->p, "patches", it->dt, batch * m, k);
    else
        a = as_shape(b, resolve(b, xa), batch * m, k);
    int w = xw ? as_shape(b, resolve(b, xw), batch * k, n)
               : ir_param_new(b->p, "weights", it->dt, batch * k, n);
    int c = as_shape(b, out, batch * m, n);
    op = ir_matmul_batched(b->p, a, w, c, batch, m, n, k);
    if (op < 0)
        return -1;
    ir_op_at(b->p, op)->dt = dt;
    if (mx.n) {
        int ex = extra >= 0 ? as_shape(b, extra, batch * m, n) : -1;
        if (ex >= 0)
            for (unsigned i = 0; i < mx.n; i++)
                if (mx.v[i].op != ISA_OP_V_REDUCE) {
                    mx.v[i].src = 0; /* binary: the accumulator and the extra tile after it */
                    break;
                }
        if (ir_matmul_epilogue(b->p, op, ex >= 0 ? &ex : NULL, ex >= 0 ? 1 : 0, mx.v, mx.n) < 0)
            return -1;
    }
    return 0;
}

/* A vector op or fusion: one streamed pass over `elems` elements reading the operands and
 * writing the results that have that many elements. */
static int do_vector(bld *b, const hlo_item *it)
{
    const hlo_instr *ins = it->ins;
    uint64_t n = it->elems;
    int out = result(b, ins);
    if (out < 0)
        return -1;
    if (!n)
        return 0;
    int in[IR_MAX_IN];
    unsigned nin = 0;
    for (unsigned i = 0; i < ins->nops && nin < 5; i++) {
        if (elems_of(&ins->operands[i]->shape) < n)
            continue;
        int t = resolve(b, ins->operands[i]);
        if (t < 0)
            return -1;
        int dup = 0;
        for (unsigned j = 0; j < nin; j++)
            dup |= in[j] == t;
        if (!dup)
            in[nin++] = t;
    }
    int outs[1];
    unsigned nout = 0;
    if (elems_of(&ins->shape) >= n)
        outs[nout++] = out;
    unsigned buf = nout ? nin : nin + nout; /* the output buffer, else fp32 scratch */
    mix mx = {.n = 0};
    if (ins->op == HLO_OP_FUSION)
        fused_mix(ins->calls, n, it->dt, buf, &mx, 0);
    else if (hlo_opcode_class(ins->op) != HLO_OC_DATA)
        mx.v[mx.n++] = (ir_vop){.op = vop_of(ins->op), .src = buf, .dst = buf, .dt = it->dt};
    if (!mx.n)
        mx.v[mx.n++] = (ir_vop){.op = ISA_OP_V_ADD, .src = buf, .dst = buf, .dt = it->dt};
    mx.v[0].src = 0; /* the chain starts from the first input */
    for (unsigned i = 0; i < mx.n; i++)
        if (mx.v[i].op == ISA_OP_V_REDUCE && !mx.v[i].width)
            mx.v[i].width = 128;
    if (!nin && !nout)
        return 0;
    if (!nin)
        mx.v[0].src = buf;
    return ir_fusion(b->p, n, in, nin, outs, nout, mx.v, mx.n) < 0 ? -1 : 0;
}

/* Data movement: a copy of the result through VMEM (a transpose as a transposing DMA, a
 * dynamic-update-slice in place into its operand). */
static int do_data(bld *b, const hlo_item *it)
{
    const hlo_instr *ins = it->ins;
    if (ins->op == HLO_OP_DYNAMIC_UPDATE_SLICE && ins->nops >= 2) {
        int dst = resolve(b, ins->operands[0]), upd = resolve(b, ins->operands[1]);
        if (dst < 0 || upd < 0 || map_put(b, ins, -1, dst))
            return -1;
        const ir_tensor *u = ir_tensor_get(b->p, upd), *d = ir_tensor_get(b->p, dst);
        uint64_t dn = d->rows * d->cols, un = u->rows * u->cols;
        if (un > dn || d->dt != u->dt)
            return 0; /* not a window of it: nothing to place */
        int win = ir_view(b->p, dst, "update", 0, 1, un, un);
        int src = as_shape(b, upd, 1, un);
        return ir_dus(b->p, src, win) < 0 ? -1 : 0;
    }
    int out = result(b, ins);
    if (out < 0 || !ins->nops)
        return out < 0 ? -1 : 0;
    int src = resolve(b, ins->operands[0]);
    if (src < 0)
        return -1;
    const ir_tensor *s = ir_tensor_get(b->p, src), *d = ir_tensor_get(b->p, out);
    if (ins->op == HLO_OP_TRANSPOSE && s->rows * s->cols == d->rows * d->cols && s->dt == d->dt)
        return ir_transpose(b->p, src, out) < 0 ? -1 : 0;
    uint64_t row = gen_dt_bytes(d->dt, d->cols);
    return ir_gather(b->p, src, out, row ? row : 1, row ? row : 1) < 0 ? -1 : 0;
}

static int do_coll(bld *b, const hlo_item *it)
{
    const hlo_instr *ins = it->ins;
    int out = result(b, ins);
    if (out < 0)
        return -1;
    int op = it->coll_op == ISA_OP_ICI_SEND ? ISA_OP_ICI_ALLTOALL : it->coll_op;
    if (!it->axes || !it->coll_bytes)
        return 0;
    /* the operand: of the collective itself, or of the async wrapper around it */
    int in = -1;
    if (ins->nops >= 1 && (in = resolve(b, ins->operands[0])) < 0)
        return -1;
    int tok = it->token ? it->token : ir_token_new(b->p);
    int routed = it->route.stride || it->route.shift; /* a strided ring, a uniform shift */
    if ((routed ? ir_collective_routed(b->p, it->coll_op, &it->route, it->coll_bytes, in, out, tok)
                : ir_collective(b->p, op, it->axes, it->coll_bytes, in, out, tok)) < 0)
        return -1;
    return it->token ? 0 : (ir_wait(b->p, tok) < 0 ? -1 : 0);
}

/* The IR builder of each plan class with work (HLO_CLS_WAIT is an IR wait on its token). */
static int (*const builders[HLO_CLS_COUNT])(bld *, const hlo_item *) = {
    [HLO_CLS_MATMUL] = do_matmul, [HLO_CLS_CONV] = do_matmul, [HLO_CLS_VECTOR] = do_vector,
    [HLO_CLS_DATA] = do_data,     [HLO_CLS_CUSTOM] = do_data, [HLO_CLS_COLL] = do_coll,
};

int hlo_build_ir(ir *p, const hlo_module *m, const hlo_plan *pl, err *e)
{
    bld b = {.p = p, .m = m, .e = e};
    /* the plan's async tokens are 1..ntokens, in order: the IR's first tokens */
    for (int t = 1; t <= pl->ntokens; t++)
        if (ir_token_new(p) != t) {
            err_set(e, "import: token numbering (importer bug)");
            return -1;
        }
    int rc = 0;
    for (size_t i = 0; i < pl->nitems && !rc; i++) {
        const hlo_item *it = &pl->items[i];
        set_region(&b, it);
        if (it->cls == HLO_CLS_WAIT) {
            if (it->token > 0 && it->token <= pl->ntokens)
                rc = ir_wait(p, it->token) < 0 ? -1 : 0;
        } else if ((unsigned)it->cls < HLO_CLS_COUNT && builders[it->cls]) {
            rc = builders[it->cls](&b, it);
        }
        if (rc || ir_error(p, NULL))
            rc = -1;
    }
    free(b.map);
    if (rc && ir_error(p, e) == 0 && e && !e->msg[0])
        err_set(e, "import: building the IR failed");
    return rc;
}

int hlo_import_trace(const hlo_module *m, const hlo_plan *pl, const cfg *c, const char *path,
                     const char *note, hlo_import_result *res, err *e)
{
    if (res)
        memset(res, 0, sizeof *res);
    ir *p = ir_new(c, e);
    if (!p)
        return -1;
    int rc = -1;
    if (hlo_build_ir(p, m, pl, e) || ir_error(p, e) || lower_tile(p, e) ||
        lower_mem(p, cfg_hbm_bytes(c), e))
        goto out;
    const ir_mem_plan *mp = ir_mem_get(p);
    char full[TRACE_NOTE_MAX];
    int w = snprintf(full, sizeof full, "%s # peak HBM per chip: %llu bytes", note ? note : "",
                     (unsigned long long)mp->peak_bytes);
    if (w < 0 || (size_t)w >= sizeof full)
        snprintf(full, sizeof full, "%s", note ? note : "");
    if (res) {
        res->peak_hbm_bytes = mp->peak_bytes;
        res->persistent_bytes = mp->persistent_bytes;
        res->ir_ops = (uint64_t)ir_nops(p);
        res->ir_tensors = (uint64_t)ir_ntensors(p);
    }
    rc = lower_emit(p, path, full, e);
out:
    ir_free(p);
    return rc;
}
