/* lower_emit.c - the last lowering pass: walks a tiled, memory-planned IR in program order
 * and writes the trace through the emission kernels of gen_emit.c (GEMM with the tile
 * lower_tile chose, streamed vector chains, attention lanes, strided copies, collectives).
 * Addresses are the memory plan's; a view's address is its root's plus its offset. A region
 * marker is written whenever an op's region differs from the previous op's. Tokens become
 * fences: every op that signals token t adds one signal to t's pooled semaphore, and IR_WAIT
 * emits the matching sync.waits (IR_TOKEN_LATE is the emitter's fence for collectives left
 * in flight, drained by gen_finish at the end). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "lower.h"
#include "mem.h"

typedef struct emit {
    const ir *p;
    gen *g;
    gen_fence *fence; /* by token, 1..ntokens */
} emit;

static uint64_t addr_of(const ir *p, int id)
{
    const ir_tensor *t = ir_tensor_get(p, id);
    const ir_tensor *r = ir_tensor_get(p, ir_root(p, id));
    return r->addr + (t->parent >= 0 ? t->offset : 0);
}

static gen_fence *fence_of(emit *em, int token)
{
    return token == IR_TOKEN_LATE ? NULL : &em->fence[token];
}

static int emit_matmul(emit *em, const ir_op *o)
{
    const ir *p = em->p;
    const ir_tensor *a = ir_tensor_get(p, o->in[0]), *w = ir_tensor_get(p, o->in[1]),
                    *c = ir_tensor_get(p, o->out[0]);
    for (uint64_t b = 0; b < o->batch; b++) {
        gen_gemm_args ga = {.m = o->m,
                            .n = o->n,
                            .k = o->k,
                            .a = addr_of(p, o->in[0]) + gen_dt_bytes(a->dt, b * o->m * a->pitch),
                            .b = addr_of(p, o->in[1]) + gen_dt_bytes(w->dt, b * o->k * w->pitch),
                            .c = addr_of(p, o->out[0]) + gen_dt_bytes(c->dt, b * o->m * c->pitch),
                            .lda = a->pitch,
                            .ldb = w->pitch,
                            .ldc = c->pitch,
                            .dt = o->dt,
                            .out_dt = c->dt,
                            .tile = &o->tile,
                            .epi = o->vops,
                            .nepi = o->nvops};
        if (o->tile.a_implicit) {
            const ir_tensor *r = ir_tensor_get(p, ir_root(p, o->in[0]));
            ga.a_span = r->bytes - (ga.a - r->addr);
        }
        if (o->nin > 2) {
            const ir_tensor *x = ir_tensor_get(p, o->in[2]);
            ga.has_ex = 1;
            ga.ex = addr_of(p, o->in[2]) + gen_dt_bytes(x->dt, b * o->m * x->pitch);
            ga.ldx = x->pitch;
            ga.ex_dt = x->dt;
        }
        if (gen_gemm(em->g, &ga))
            return -1;
    }
    return 0;
}

static int emit_fusion(emit *em, const ir_op *o)
{
    const ir *p = em->p;
    gen_stream_args s = {
        .n = o->elems, .nin = o->nin, .nout = o->nout, .ops = o->vops, .nops = o->nvops};
    for (unsigned i = 0; i < o->nin; i++) {
        s.in[i] = addr_of(p, o->in[i]);
        s.in_dt[i] = ir_tensor_get(p, o->in[i])->dt;
    }
    for (unsigned i = 0; i < o->nout; i++) {
        s.out[i] = addr_of(p, o->out[i]);
        s.out_dt[i] = ir_tensor_get(p, o->out[i])->dt;
    }
    return gen_stream(em->g, &s);
}

static int emit_attention(emit *em, const ir_op *o)
{
    const ir *p = em->p;
    gen_attn_args a = {.batch = o->batch,
                       .heads = o->heads,
                       .kv_heads = o->kv_heads,
                       .seq = o->seq,
                       .head_dim = o->head_dim,
                       .kv_len = o->kv_len,
                       .causal = o->causal,
                       .backward = o->backward,
                       .dt = o->dt,
                       .q = addr_of(p, o->in[0]),
                       .k = addr_of(p, o->in[1]),
                       .v = addr_of(p, o->in[2]),
                       .ld = ir_tensor_get(p, o->in[0])->pitch,
                       .kv_ld = ir_tensor_get(p, o->in[1])->pitch,
                       .kv_head_major = o->kv_head_major};
    if (!o->backward) {
        a.o = addr_of(p, o->out[0]);
    } else {
        a.o = addr_of(p, o->in[3]);
        a.dout = addr_of(p, o->in[4]);
        a.dq = addr_of(p, o->out[0]);
        a.dk = addr_of(p, o->out[1]);
        a.dv = addr_of(p, o->out[2]);
    }
    return gen_attention(em->g, &a);
}

/* Gathers, transposes and dynamic slices are strided copies through VMEM: the source read as
 * row runs `stride` apart, the destination written contiguously (a transposing DMA writes
 * the same bytes in the other tile order). */
static int emit_copy(emit *em, const ir_op *o)
{
    const ir *p = em->p;
    const ir_tensor *s = ir_tensor_get(p, o->in[0]), *d = ir_tensor_get(p, o->out[0]);
    const ir_tensor *sr = ir_tensor_get(p, ir_root(p, o->in[0]));
    uint64_t bytes = gen_dt_bytes(d->dt, d->rows * d->cols), src = addr_of(p, o->in[0]);
    uint64_t block = o->block, stride = o->gstride, avail = sr->bytes - (src - sr->addr);
    if (o->code != IR_GATHER) {
        block = gen_dt_bytes(s->dt, s->cols);
        stride = gen_dt_bytes(s->dt, s->pitch);
        if (o->code == IR_DSLICE) {
            src += gen_dt_bytes(s->dt, o->row0 * s->pitch);
            block = gen_dt_bytes(s->dt, d->cols);
            avail -= gen_dt_bytes(s->dt, o->row0 * s->pitch);
        }
    }
    return gen_gather(em->g, src, avail, addr_of(p, o->out[0]), bytes, block, stride);
}

/* A dynamic-update-slice: in's rows, read at its pitch, into out's rows at out's pitch. */
static int emit_dus(emit *em, const ir_op *o)
{
    const ir *p = em->p;
    const ir_tensor *s = ir_tensor_get(p, o->in[0]), *d = ir_tensor_get(p, o->out[0]);
    uint64_t sb = gen_dt_bytes(s->dt, s->cols), db = gen_dt_bytes(d->dt, d->cols);
    if (o->token >= 0)
        return gen_copy2d_async(em->g, addr_of(p, o->in[0]), s->pitch == s->cols ? 0 : sb,
                                gen_dt_bytes(s->dt, s->pitch), addr_of(p, o->out[0]),
                                d->pitch == d->cols ? 0 : db, gen_dt_bytes(d->dt, d->pitch),
                                gen_dt_bytes(s->dt, s->rows * s->cols), fence_of(em, o->token));
    return gen_copy2d(em->g, addr_of(p, o->in[0]), s->pitch == s->cols ? 0 : sb,
                      gen_dt_bytes(s->dt, s->pitch), addr_of(p, o->out[0]),
                      d->pitch == d->cols ? 0 : db, gen_dt_bytes(d->dt, d->pitch),
                      gen_dt_bytes(s->dt, s->rows * s->cols));
}

static int emit_p2p(emit *em, const ir_op *o)
{
    isa_insn in = {.op = o->code == IR_SEND ? ISA_OP_ICI_SEND : ISA_OP_ICI_RECV};
    in.arg[ISA_P2P_AXIS] = o->axes;
    in.arg[ISA_P2P_DIR] = o->dir < 0 ? 1 : 0;
    in.arg[ISA_P2P_BYTES] = o->bytes;
    gen_fence *f = fence_of(em, o->token);
    in.signal = (uint16_t)(f ? gen_fence_sig(em->g, f) : 0);
    return gen_put(em->g, &in);
}

/* Append `n` hops of `bytes` in direction dir to the schedule (grown as needed). */
static int hops_add(gen_hop **h, size_t *nh, size_t *cap, int dir, uint64_t n, uint64_t bytes)
{
    if (n > SIZE_MAX - *nh || mem_grow(h, cap, *nh + n, sizeof **h, 64))
        return -1;
    for (uint64_t i = 0; i < n; i++)
        (*h)[(*nh)++] = (gen_hop){.dir = dir, .bytes = bytes};
    return 0;
}

/* The hop schedule of a routed collective (ir_route; docs/hlo.md, "Replica groups -> torus
 * axes"). L chips on the axis; a ring of g members s hops apart is closed when the axis wraps
 * and g s = L (the last member's next is s hops on, round the wrap), else it is a line.
 * Store and forward: moving a chunk to the next member is s one-hop shifts, every chip
 * forwarding what it received, so each link carries one chunk per hop.
 *   closed ring: all-gather, reduce-scatter: g-1 steps of s hops along +a, chunk B/g;
 *                all-reduce: the two in turn, 2(g-1) steps; all-to-all: for k = 1..g-1 the
 *                chunk for the member k on, min(k, g-k) s hops the shorter way.
 *   line:        the same steps along +a and then along -a (every member needs the shards of
 *                both sides; the ICI unit has one send in flight, so the two directions run
 *                one after the other: twice the closed ring); all-to-all: for d = 1..g-1, d s
 *                hops along +a and d s hops along -a.
 *   shift by d:  torus: min(d, L-d) hops the shorter way; mesh: d hops along +a for pairs
 *                that do not wrap, then L-d hops along -a for those that do. */
static int route_hops(const ir *p, const ir_op *o, gen_hop **h, size_t *nh, uint64_t *group)
{
    const cfg *c = ir_cfg(p);
    const ir_route *r = &o->route;
    uint64_t L = cfg_axes_chips(c, 1u << r->axis);
    L = L ? L : 1;
    int torus = strchr(c->ici_wrap, "xyz"[r->axis]) != NULL;
    size_t cap = 0;
    *nh = 0;
    *h = NULL;
    if (o->isa_op == ISA_OP_ICI_SEND) {
        uint64_t d = r->shift % L;
        *group = 2;
        if (!d)
            return 0;
        if (torus)
            return hops_add(h, nh, &cap, d <= L - d ? 1 : -1, d <= L - d ? d : L - d, o->bytes);
        if ((r->pairs & IR_SHIFT_FWD) && hops_add(h, nh, &cap, 1, d, o->bytes))
            return -1;
        return (r->pairs & IR_SHIFT_WRAP) ? hops_add(h, nh, &cap, -1, L - d, o->bytes) : 0;
    }
    uint64_t g = r->group, s = r->stride, chunk = (o->bytes + g - 1) / g;
    int closed = torus && g * s == L;
    *group = g;
    if (o->isa_op == ISA_OP_ICI_ALLTOALL) {
        for (uint64_t k = 1; k < g; k++) {
            if (closed) {
                if (hops_add(h, nh, &cap, k <= g - k ? 1 : -1, (k <= g - k ? k : g - k) * s, chunk))
                    return -1;
            } else if (hops_add(h, nh, &cap, 1, k * s, chunk) ||
                       hops_add(h, nh, &cap, -1, k * s, chunk)) {
                return -1;
            }
        }
        return 0;
    }
    unsigned phases = o->isa_op == ISA_OP_ICI_ALLREDUCE ? 2 : 1;
    for (unsigned ph = 0; ph < phases; ph++) {
        if (hops_add(h, nh, &cap, 1, (g - 1) * s, chunk) ||
            (!closed && hops_add(h, nh, &cap, -1, (g - 1) * s, chunk)))
            return -1;
    }
    return 0;
}

/* The collective's HBM buffer (its output, else its input) given to the generator's chip work
 * (gen_coll_buffer); 1, or 0 when it has none (a few scalars: no chip work). */
static int coll_buffer(emit *em, const ir_op *o)
{
    const ir *p = em->p;
    int t = o->nout ? o->out[0] : o->nin ? o->in[0] : -1;
    if (t < 0)
        return 0;
    const ir_tensor *r = ir_tensor_get(p, ir_root(p, t));
    gen_coll_buffer(em->g, addr_of(p, t), r->bytes - (addr_of(p, t) - r->addr));
    return 1;
}

static int emit_routed(emit *em, const ir_op *o)
{
    gen_hop *h;
    size_t nh;
    uint64_t group;
    if (route_hops(em->p, o, &h, &nh, &group)) {
        free(h);
        return err_setk(gen_err(em->g), ERR_NOMEM, "gen: out of memory");
    }
    int rc = gen_coll_routed(em->g, o->isa_op, 1u << o->route.axis, h, nh, o->bytes, o->dt, group,
                             coll_buffer(em, o), fence_of(em, o->token));
    free(h);
    return rc;
}

/* A collective with HBM buffers moves them through the chip (gen_coll_chip); one without
 * (a few scalars: the loss statistics) is the ICI instruction alone. A routed one is its hops
 * (emit_routed). */
static int emit_collective(emit *em, const ir_op *o)
{
    const ir *p = em->p;
    if (o->route.stride || o->route.shift)
        return emit_routed(em, o);
    unsigned chain = ((o->chain & IR_CHAIN_IN) ? GEN_CHAIN_IN : 0u) |
                     ((o->chain & IR_CHAIN_OUT) ? GEN_CHAIN_OUT : 0u);
    if (!coll_buffer(em, o))
        return gen_coll_chained(em->g, o->isa_op, o->axes, o->bytes, o->dt, fence_of(em, o->token),
                                chain);
    const cfg *c = ir_cfg(p);
    /* the chips it reduces over: those on its axes, or one per slice (dcn.allreduce) */
    uint64_t group = isa_info_of((unsigned)o->isa_op)->unit == ISA_UNIT_DCN
                         ? c->dcn_slices
                         : cfg_axes_chips(c, o->axes);
    return gen_coll_chip(em->g, o->isa_op, o->axes, o->bytes, o->dt, group, fence_of(em, o->token),
                         chain);
}

static int emit_wait(emit *em, const ir_op *o)
{
    return o->token == IR_TOKEN_LATE ? gen_wait_late(em->g)
                                     : gen_fence_wait(em->g, &em->fence[o->token]);
}

/* The emitter of each opcode that lower_tile leaves in the IR. */
static int (*const emitters[IR_OPCODE_COUNT])(emit *, const ir_op *) = {
    [IR_MATMUL] = emit_matmul,
    [IR_FUSION] = emit_fusion,
    [IR_ATTENTION] = emit_attention,
    [IR_GATHER] = emit_copy,
    [IR_TRANSPOSE] = emit_copy,
    [IR_DSLICE] = emit_copy,
    [IR_DUS] = emit_dus,
    [IR_COLLECTIVE] = emit_collective,
    [IR_SEND] = emit_p2p,
    [IR_RECV] = emit_p2p,
    [IR_WAIT] = emit_wait,
};

static int emit_op(emit *em, const ir_op *o)
{
    if ((unsigned)o->code >= IR_OPCODE_COUNT || !emitters[o->code])
        return -2; /* not lowered: lower_tile was not run */
    return emitters[o->code](em, o);
}

int lower_emit(const ir *p, const char *path, const char *note, err *e)
{
    if (ir_verify(p, e))
        return -1;
    emit em = {.p = p};
    int ntok = ir_ntokens(p);
    em.fence = malloc((size_t)(ntok + 1) * sizeof *em.fence);
    if (!em.fence)
        return err_setk(e, ERR_NOMEM, "gen: out of memory");
    for (int t = 0; t <= ntok; t++)
        em.fence[t] = (gen_fence){.sem = -1, .count = 0};
    em.g = gen_new(ir_cfg(p), path, note, e);
    if (!em.g) {
        free(em.fence);
        return -1;
    }
    const char *region = NULL;
    for (int i = 0; i < ir_nops(p); i++) {
        const ir_op *o = ir_op_get(p, i);
        if (o->region[0] && (!region || strcmp(region, o->region))) {
            if (gen_mark(em.g, "%s", o->region))
                goto fail;
            region = o->region;
        }
        int rc = emit_op(&em, o);
        if (rc == -2) {
            err_set(e, "gen: op %d (%s) has no kernel: run lower_tile first (generator bug)", i,
                    o->region);
            gen_free(em.g);
            free(em.fence);
            return -1;
        }
        if (rc) {
            /* Name the op whose kernel failed (a generator bug names its instruction). */
            err *ge = gen_err(em.g);
            if (ge->kind == ERR_INPUT && strstr(ge->msg, "generator bug")) {
                char msg[ERR_MSG_MAX];
                snprintf(msg, sizeof msg, "%s", ge->msg);
                err_set(ge, "%s [op %d, %s]", msg, i, o->region);
            }
            goto fail;
        }
    }
    /* Tokens still signalled at the end are waited for (the trace ends with nothing in
     * flight), then the emitter drains its own fence. */
    for (int t = 1; t <= ntok; t++)
        if (gen_fence_wait(em.g, &em.fence[t]))
            goto fail;
    free(em.fence);
    return gen_finish(em.g, e);
fail:
    *e = *gen_err(em.g);
    gen_free(em.g);
    free(em.fence);
    return -1;
}
