/* ir.c - the workload IR: growable arrays of tensors and ops, builders that check their
 * arguments (a frontend bug is remembered as the program's first error), and the verifier
 * every pass may run. No instruction is produced here. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "gen.h"
#include "mem.h"

struct ir {
    const cfg *c;
    ir_tensor *t;
    int nt;
    size_t capt;
    ir_op *op;
    int nop;
    size_t capop;
    int ntokens; /* token ids 1..ntokens; 0 is IR_TOKEN_LATE */
    char region[IR_REGION_MAX];
    err e;
    int failed;
    ir_mem_plan mem;
};

/* The IR's first failure stays (err_first). */
#define ir_fail(p, ...) err_first(&(p)->e, &(p)->failed, __VA_ARGS__)

ir *ir_new(const cfg *c, err *e)
{
    ir *p = err_calloc(1, sizeof *p, "gen", e);
    if (!p)
        return NULL;
    p->c = c;
    p->mem.peak_op = -1;
    for (int i = 0; i < 3; i++)
        p->mem.top[i] = -1;
    return p;
}

void ir_free(ir *p)
{
    if (p)
        MEM_FREE_ALL(p->t, p->op, p);
}

int ir_error(const ir *p, err *e)
{
    if (!p->failed)
        return 0;
    if (e)
        *e = p->e;
    return -1;
}

void ir_region(ir *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->region, sizeof p->region, fmt, ap);
    va_end(ap);
}

/* Make room for need elements of size bytes in *arr (capacity *cap); -1 with p failed (out
 * of memory) when there is none. */
static int grow(ir *p, void *arr, size_t *cap, int need, size_t size)
{
    if (!mem_grow(arr, cap, (size_t)need, size, 64))
        return 0;
    err_setk(&p->e, ERR_NOMEM, "gen: out of memory");
    p->failed = 1;
    return -1;
}

static int tensor_add(ir *p, const char *name, isa_dtype dt, uint64_t rows, uint64_t cols)
{
    if (p->failed)
        return -1;
    if (!rows || !cols)
        return ir_fail(p, "gen: tensor '%s' with a zero dimension (%llux%llu)", name,
                       (unsigned long long)rows, (unsigned long long)cols);
    if (grow(p, &p->t, &p->capt, p->nt + 1, sizeof *p->t))
        return -1;
    ir_tensor *t = &p->t[p->nt];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dt = dt;
    t->rows = rows;
    t->cols = cols;
    t->parent = -1;
    t->first = t->last = -1;
    return p->nt++;
}

int ir_tensor_new(ir *p, const char *name, isa_dtype dt, uint64_t rows, uint64_t cols)
{
    return tensor_add(p, name, dt, rows, cols);
}

int ir_param_new(ir *p, const char *name, isa_dtype dt, uint64_t rows, uint64_t cols)
{
    int id = tensor_add(p, name, dt, rows, cols);
    if (id >= 0)
        p->t[id].persistent = 1;
    return id;
}

static int valid(const ir *p, int id)
{
    return id >= 0 && id < p->nt;
}

int ir_root(const ir *p, int id)
{
    while (valid(p, id) && p->t[id].parent >= 0)
        id = p->t[id].parent;
    return id;
}

int ir_view(ir *p, int parent, const char *name, uint64_t offset, uint64_t rows, uint64_t cols,
            uint64_t pitch)
{
    if (p->failed)
        return -1;
    if (!valid(p, parent))
        return ir_fail(p, "gen: view '%s' of unknown tensor %d (generator bug)", name, parent);
    isa_dtype dt = p->t[parent].dt;
    uint64_t poff = p->t[parent].offset;
    int root = ir_root(p, parent);
    int id = tensor_add(p, name, dt, rows, cols);
    if (id < 0)
        return -1;
    p->t[id].parent = root;
    p->t[id].offset = (parent == root ? 0 : poff) + offset;
    p->t[id].pitch = pitch;
    return id;
}

int ir_token_new(ir *p)
{
    return ++p->ntokens;
}

int ir_ntokens(const ir *p)
{
    return p->ntokens;
}

static int op_add(ir *p, ir_opcode code, const int *in, unsigned nin, const int *out, unsigned nout)
{
    if (p->failed)
        return -1;
    if (nin > IR_MAX_IN || nout > IR_MAX_OUT)
        return ir_fail(p, "gen: op with %u inputs, %u outputs (generator bug)", nin, nout);
    for (unsigned i = 0; i < nin; i++)
        if (!valid(p, in[i]))
            return ir_fail(p, "gen: %s: op input %d is not a tensor (generator bug)", p->region,
                           in[i]);
    for (unsigned i = 0; i < nout; i++)
        if (!valid(p, out[i]))
            return ir_fail(p, "gen: %s: op output %d is not a tensor (generator bug)", p->region,
                           out[i]);
    if (grow(p, &p->op, &p->capop, p->nop + 1, sizeof *p->op))
        return -1;
    ir_op *o = &p->op[p->nop];
    memset(o, 0, sizeof *o);
    o->code = code;
    snprintf(o->region, sizeof o->region, "%s", p->region);
    if (nin) /* in/out may be NULL when empty (memcpy's arguments must not be) */
        memcpy(o->in, in, nin * sizeof *in);
    if (nout)
        memcpy(o->out, out, nout * sizeof *out);
    o->nin = nin;
    o->nout = nout;
    o->dt = nin ? p->t[in[0]].dt : nout ? p->t[out[0]].dt : ISA_DT_BF16;
    o->batch = 1;
    o->token = -1;
    return p->nop++;
}

int ir_matmul_batched(ir *p, int a, int w, int out, uint64_t batch, uint64_t m, uint64_t n,
                      uint64_t k)
{
    const int in[2] = {a, w};
    int i = op_add(p, IR_MATMUL, in, 2, &out, 1);
    if (i < 0)
        return -1;
    if (!m || !n || !k || !batch)
        return ir_fail(p, "gen: gemm with a zero dimension (%llux%llux%llu)", (unsigned long long)m,
                       (unsigned long long)n, (unsigned long long)k);
    ir_op *o = &p->op[i];
    o->m = m;
    o->n = n;
    o->k = k;
    o->batch = batch;
    return i;
}

int ir_matmul(ir *p, int a, int w, int out, uint64_t m, uint64_t n, uint64_t k)
{
    return ir_matmul_batched(p, a, w, out, 1, m, n, k);
}

int ir_vop_binary(int op)
{
    return op == ISA_OP_V_ADD || op == ISA_OP_V_SUB || op == ISA_OP_V_MUL || op == ISA_OP_V_MAX ||
           op == ISA_OP_V_MIN || op == ISA_OP_V_FMA || op == ISA_OP_V_SELECT;
}

int ir_epilogue_reads_buffer(const ir_op *o)
{
    if (o->nin > 2)
        return 1;
    for (unsigned i = 0; i < o->nvops; i++)
        if (ir_vop_binary(o->vops[i].op))
            return 1;
    return 0;
}

int ir_matmul_epilogue(ir *p, int mm, const int *extra, unsigned nextra, const ir_vop *vops,
                       unsigned nvops)
{
    if (p->failed)
        return -1;
    if (mm < 0 || mm >= p->nop || p->op[mm].code != IR_MATMUL)
        return ir_fail(p, "gen: epilogue on op %d, not a matmul (generator bug)", mm);
    ir_op *o = &p->op[mm];
    if (o->nin + nextra > IR_MAX_IN || o->nvops + nvops > IR_MAX_VOPS)
        return ir_fail(p, "gen: epilogue too long (generator bug)");
    for (unsigned i = 0; i < nextra; i++) {
        if (!valid(p, extra[i]))
            return ir_fail(p, "gen: epilogue input %d is not a tensor (generator bug)", extra[i]);
        o->in[o->nin++] = extra[i];
    }
    memcpy(o->vops + o->nvops, vops, nvops * sizeof *vops);
    o->nvops += nvops;
    return mm;
}

int ir_conv2d(ir *p, int in, int w, int out, uint64_t n, uint64_t h, uint64_t wd, uint64_t c,
              uint64_t k, uint64_t kh, uint64_t kw, uint64_t stride, uint64_t pad)
{
    const int ins[2] = {in, w};
    int i = op_add(p, IR_CONV2D, ins, 2, &out, 1);
    if (i < 0)
        return -1;
    ir_op *o = &p->op[i];
    o->cn = n, o->ch = h, o->cw = wd, o->cc = c, o->ck = k;
    o->kh = kh, o->kw = kw, o->stride = stride, o->pad = pad;
    return i;
}

int ir_fusion(ir *p, uint64_t elems, const int *in, unsigned nin, const int *out, unsigned nout,
              const ir_vop *vops, unsigned nvops)
{
    int i = op_add(p, IR_FUSION, in, nin, out, nout);
    if (i < 0)
        return -1;
    if (!elems || !nvops || nvops > IR_MAX_VOPS)
        return ir_fail(p, "gen: bad fused vector op (generator bug)");
    ir_op *o = &p->op[i];
    o->elems = elems;
    memcpy(o->vops, vops, nvops * sizeof *vops);
    o->nvops = nvops;
    return i;
}

int ir_attention(ir *p, const int *in, unsigned nin, const int *out, unsigned nout, uint64_t batch,
                 uint64_t heads, uint64_t kv_heads, uint64_t seq, uint64_t kv_len,
                 uint64_t head_dim, int causal, int backward)
{
    int i = op_add(p, IR_ATTENTION, in, nin, out, nout);
    if (i < 0)
        return -1;
    if (nin != (backward ? 5u : 3u) || nout != (backward ? 3u : 1u))
        return ir_fail(p, "gen: attention operands (generator bug)");
    if (!kv_heads || heads % kv_heads)
        return ir_fail(p, "gen: %llu kv heads do not divide %llu heads",
                       (unsigned long long)kv_heads, (unsigned long long)heads);
    ir_op *o = &p->op[i];
    o->batch = batch, o->heads = heads, o->kv_heads = kv_heads, o->seq = seq;
    o->kv_len = kv_len, o->head_dim = head_dim, o->causal = causal, o->backward = backward;
    return i;
}

int ir_gather(ir *p, int src, int dst, uint64_t block, uint64_t stride)
{
    int i = op_add(p, IR_GATHER, &src, 1, &dst, 1);
    if (i < 0)
        return -1;
    if (!block || stride < block)
        return ir_fail(p, "gen: gather rows of %llu bytes %llu apart (generator bug)",
                       (unsigned long long)block, (unsigned long long)stride);
    p->op[i].block = block;
    p->op[i].gstride = stride;
    return i;
}

int ir_transpose(ir *p, int in, int out)
{
    return op_add(p, IR_TRANSPOSE, &in, 1, &out, 1);
}

int ir_dslice(ir *p, int in, int out, uint64_t row0)
{
    int i = op_add(p, IR_DSLICE, &in, 1, &out, 1);
    if (i >= 0)
        p->op[i].row0 = row0;
    return i;
}

static int check_token(ir *p, int token);

int ir_dus(ir *p, int in, int out)
{
    return ir_dus_async(p, in, out, -1);
}

int ir_dus_async(ir *p, int in, int out, int token)
{
    if (token >= 0 && check_token(p, token))
        return -1;
    int i = op_add(p, IR_DUS, &in, 1, &out, 1);
    if (i < 0)
        return -1;
    p->op[i].token = token;
    if (p->t[in].rows * p->t[in].cols != p->t[out].rows * p->t[out].cols)
        return ir_fail(p, "gen: dynamic-update-slice of %s into %s: element counts differ",
                       p->t[in].name, p->t[out].name);
    return i;
}

static int check_token(ir *p, int token)
{
    if (token < 0 || token > p->ntokens)
        return ir_fail(p, "gen: %s: unknown token %d (generator bug)", p->region, token);
    return 0;
}

int ir_collective(ir *p, int isa_op, unsigned axes, uint64_t bytes, int in, int out, int token)
{
    return ir_collective_n(p, isa_op, axes, bytes, &in, in >= 0 ? 1 : 0, &out, out >= 0 ? 1 : 0,
                           token);
}

int ir_collective_n(ir *p, int isa_op, unsigned axes, uint64_t bytes, const int *ins, unsigned nin,
                    const int *outs, unsigned nout, int token)
{
    if (check_token(p, token))
        return -1;
    int i = op_add(p, IR_COLLECTIVE, ins, nin, outs, nout);
    if (i < 0)
        return -1;
    const isa_info *inf = isa_info_of((unsigned)isa_op);
    if (!inf || (inf->cost != ISA_COST_ICI_COLL && inf->cost != ISA_COST_DCN_COLL))
        return ir_fail(p, "gen: op %d is not a collective (generator bug)", isa_op);
    ir_op *o = &p->op[i];
    o->isa_op = isa_op;
    o->axes = axes;
    o->bytes = bytes;
    o->token = token;
    if (nin)
        o->dt = p->t[ins[0]].dt;
    return i;
}

int ir_collective_routed(ir *p, int isa_op, const ir_route *r, uint64_t bytes, int in, int out,
                         int token)
{
    int ring = isa_op == ISA_OP_ICI_ALLREDUCE || isa_op == ISA_OP_ICI_ALLGATHER ||
               isa_op == ISA_OP_ICI_REDUCESCATTER || isa_op == ISA_OP_ICI_ALLTOALL;
    if (!r || r->axis > 2 || (ring && (r->stride < 1 || r->group < 2)) ||
        (!ring && (isa_op != ISA_OP_ICI_SEND || r->shift < 1 || !r->pairs || r->stride)))
        return ir_fail(p, "gen: %s: not a point-to-point route (generator bug)", p->region);
    /* ir_collective takes collective opcodes only: a shift enters as an all-to-all (which moves
     * its operand once, as a shift does) and then gets its own opcode */
    int i =
        ir_collective(p, ring ? isa_op : ISA_OP_ICI_ALLTOALL, 1u << r->axis, bytes, in, out, token);
    if (i < 0)
        return -1;
    p->op[i].isa_op = isa_op;
    p->op[i].route = *r;
    return i;
}

int ir_chain(ir *p, int i, unsigned chain)
{
    if (i < 0)
        return -1;
    if (i >= p->nop || p->op[i].code != IR_COLLECTIVE)
        return ir_fail(p, "gen: op %d: only collectives chain (generator bug)", i);
    p->op[i].chain |= chain;
    return i;
}

static int p2p(ir *p, ir_opcode code, unsigned axis, int dir, int t, int token)
{
    if (check_token(p, token))
        return -1;
    int i = code == IR_SEND ? op_add(p, code, &t, 1, NULL, 0) : op_add(p, code, NULL, 0, &t, 1);
    if (i < 0)
        return -1;
    ir_op *o = &p->op[i];
    o->axes = axis;
    o->dir = dir;
    o->token = token;
    o->bytes = gen_dt_bytes(p->t[t].dt, p->t[t].rows * p->t[t].cols); /* the data, not pads */
    return i;
}

int ir_send(ir *p, unsigned axis, int dir, int in, int token)
{
    return p2p(p, IR_SEND, axis, dir, in, token);
}

int ir_recv(ir *p, unsigned axis, int dir, int out, int token)
{
    return p2p(p, IR_RECV, axis, dir, out, token);
}

int ir_wait(ir *p, int token)
{
    if (check_token(p, token))
        return -1;
    int i = op_add(p, IR_WAIT, NULL, 0, NULL, 0);
    if (i >= 0)
        p->op[i].token = token;
    return i;
}

int ir_insert(ir *p, int at, const ir_op *op)
{
    if (p->failed)
        return -1;
    if (at < 0 || at > p->nop)
        return ir_fail(p, "gen: insert at %d of %d ops (generator bug)", at, p->nop);
    if (grow(p, &p->op, &p->capop, p->nop + 1, sizeof *p->op))
        return -1;
    memmove(p->op + at + 1, p->op + at, (size_t)(p->nop - at) * sizeof *p->op);
    p->op[at] = *op;
    p->nop++;
    return at;
}

int ir_ntensors(const ir *p)
{
    return p->nt;
}

ir_tensor *ir_tensor_at(ir *p, int id)
{
    return valid(p, id) ? &p->t[id] : NULL;
}

const ir_tensor *ir_tensor_get(const ir *p, int id)
{
    return valid(p, id) ? &p->t[id] : NULL;
}

int ir_nops(const ir *p)
{
    return p->nop;
}

ir_op *ir_op_at(ir *p, int i)
{
    return i >= 0 && i < p->nop ? &p->op[i] : NULL;
}

const ir_op *ir_op_get(const ir *p, int i)
{
    return i >= 0 && i < p->nop ? &p->op[i] : NULL;
}

const cfg *ir_cfg(const ir *p)
{
    return p->c;
}

ir_mem_plan *ir_mem(ir *p)
{
    return &p->mem;
}

const ir_mem_plan *ir_mem_get(const ir *p)
{
    return &p->mem;
}

uint64_t ir_pitch(const ir *p, uint64_t cols, isa_dtype dt)
{
    return gen_pitch(p->c, cols, dt);
}

uint64_t ir_span(const ir *p, int t, isa_dtype dt)
{
    if (!valid(p, t))
        return 0;
    const ir_tensor *x = &p->t[t];
    uint64_t pitch = x->pitch ? x->pitch : x->rows > 1 ? ir_pitch(p, x->cols, dt) : x->cols;
    return (x->rows - 1) * pitch + x->cols;
}

int ir_reshape(ir *p, int t, const char *name, uint64_t rows, uint64_t cols, isa_dtype dt)
{
    if (!valid(p, t))
        return -1;
    const ir_tensor *x = &p->t[t];
    if (x->rows == rows && x->cols == cols)
        return t;
    uint64_t pitch = rows > 1 ? ir_pitch(p, cols, dt) : cols;
    if ((rows - 1) * pitch + cols > ir_span(p, t, dt))
        pitch = cols;
    char nm[IR_NAME_MAX];
    snprintf(nm, sizeof nm, "%.24s'", x->name);
    return ir_view(p, t, name ? name : nm, 0, rows, cols, pitch);
}

uint64_t ir_bytes2(const ir *p, isa_dtype dt, uint64_t rows, uint64_t cols)
{
    uint64_t pitch = rows > 1 ? ir_pitch(p, cols, dt) : cols;
    return gen_dt_bytes(dt, (rows - 1) * pitch + cols);
}

/* ---- verifier ------------------------------------------------------------------------- */

static const char *const opnames[IR_OPCODE_COUNT] = {
#define IR_OPCODE_NAME(op, name) [op] = name,
    IR_OPCODES(IR_OPCODE_NAME)
#undef IR_OPCODE_NAME
};

static uint64_t elems_of(const ir_tensor *t)
{
    return t->rows * t->cols;
}

/* Chains (ir_chain) run between the ICI and the DCN queue: an ICI producer's completion is
 * awaited by the next DCN consumer and the other way round, in program order. Each op with a
 * chain is checked against the producers still unmatched: -1 with e on a consumer without
 * one, or a chain on another unit. */
static int verify_chain(const ir_op *o, int i, uint64_t pend[2], err *e)
{
    if (!o->chain)
        return 0;
    int unit = isa_info_of((unsigned)o->isa_op)->unit;
    if (unit != ISA_UNIT_ICI && unit != ISA_UNIT_DCN)
        return err_set(e, "gen: op %d (%s): only ICI and DCN collectives chain", i, o->region);
    int dcn = unit == ISA_UNIT_DCN; /* pend[0]: ICI -> DCN, pend[1]: DCN -> ICI */
    if ((o->chain & IR_CHAIN_IN) && !pend[!dcn]--)
        return err_set(e, "gen: op %d (%s): chained to no earlier %s collective", i, o->region,
                       dcn ? "ICI" : "DCN");
    if (o->chain & IR_CHAIN_OUT)
        pend[dcn]++;
    return 0;
}

int ir_verify(const ir *p, err *e)
{
    if (ir_error(p, e))
        return -1;
    uint64_t pend[2] = {0, 0};
    for (int i = 0; i < p->nop; i++) {
        const ir_op *o = &p->op[i];
        const char *nm = (unsigned)o->code < IR_OPCODE_COUNT ? opnames[o->code] : "?";
        if (o->code == IR_COLLECTIVE && verify_chain(o, i, pend, e))
            return -1;
        for (unsigned j = 0; j < o->nin; j++)
            if (!valid(p, o->in[j]))
                return err_set(e, "gen: op %d (%s, %s): bad input", i, nm, o->region);
        for (unsigned j = 0; j < o->nout; j++)
            if (!valid(p, o->out[j]))
                return err_set(e, "gen: op %d (%s, %s): bad output", i, nm, o->region);
        if (o->code == IR_MATMUL) {
            const ir_tensor *a = &p->t[o->in[0]], *w = &p->t[o->in[1]], *c = &p->t[o->out[0]];
            int a_bad = !o->tile.a_implicit && (a->rows < o->batch * o->m || a->cols < o->k);
            if (a_bad || w->rows < o->batch * o->k || w->cols < o->n || c->rows < o->batch * o->m ||
                c->cols < o->n)
                return err_set(e,
                               "gen: op %d (matmul %llux%llux%llu, %s): operand shapes "
                               "%s %llux%llu, %s %llux%llu, %s %llux%llu do not fit",
                               i, (unsigned long long)o->m, (unsigned long long)o->n,
                               (unsigned long long)o->k, o->region, a->name,
                               (unsigned long long)a->rows, (unsigned long long)a->cols, w->name,
                               (unsigned long long)w->rows, (unsigned long long)w->cols, c->name,
                               (unsigned long long)c->rows, (unsigned long long)c->cols);
        }
        if (o->code == IR_FUSION)
            for (unsigned j = 0; j < o->nin + o->nout; j++) {
                const ir_tensor *t = &p->t[j < o->nin ? o->in[j] : o->out[j - o->nin]];
                if (t->rows * (t->pitch > t->cols ? t->pitch : t->cols) < o->elems &&
                    elems_of(t) < o->elems)
                    return err_set(e,
                                   "gen: op %d (fusion, %s): tensor %s has fewer than %llu "
                                   "elements",
                                   i, o->region, t->name, (unsigned long long)o->elems);
            }
        if ((o->code == IR_COLLECTIVE || o->code == IR_WAIT || o->code == IR_SEND ||
             o->code == IR_RECV) &&
            (o->token < 0 || o->token > p->ntokens))
            return err_set(e, "gen: op %d (%s, %s): unknown token %d", i, nm, o->region, o->token);
    }
    if (pend[0] || pend[1])
        return err_set(e, "gen: %llu chained collective(s) with nothing waiting for them",
                       (unsigned long long)(pend[0] + pend[1]));
    return 0;
}
