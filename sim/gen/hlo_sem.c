/* hlo_sem.c - the semantic pass of the HLO importer: walks the entry computation in order
 * (calls inlined, while loops unrolled by their trip count, the largest conditional branch)
 * and gives each op its cost class and cost inputs: MXU problem and FLOPs of dots,
 * convolutions and fusions around them, vector element-ops of everything else, HBM bytes
 * (a fusion reads its operands and writes its result, nothing in between), and collectives
 * with their replica groups mapped onto the torus axes of ici.dims. The mapping is the table
 * in docs/hlo.md; what it approximates is listed there too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlo.h"
#include "mem.h"

#define MAX_DEPTH     32 /* nested calls, loops, fusions */
#define MAX_NOTES     64
#define DEF_MAX_ITEMS (4u << 20)

static const char *cls_names[HLO_CLS_COUNT] = {
    [HLO_CLS_FREE] = "free",     [HLO_CLS_MATMUL] = "matmul", [HLO_CLS_CONV] = "conv",
    [HLO_CLS_VECTOR] = "vector", [HLO_CLS_DATA] = "data",     [HLO_CLS_COLL] = "collective",
    [HLO_CLS_WAIT] = "wait",     [HLO_CLS_CUSTOM] = "custom",
};

const char *hlo_cls_name(hlo_cls c)
{
    return c < HLO_CLS_COUNT ? cls_names[c] : "?";
}

/* A warning counted by key (a custom-call target, an unknown opcode) and shown once. */
typedef struct note {
    char kind; /* 'c' custom-call target, 'u' unknown opcode, 'g' non-axis groups, 'r' groups
                  or a permute routed point to point, 't' trip count, 'b' conditional,
                  'x' other */
    char key[128];
    uint64_t count;
} note;

typedef struct sem {
    const hlo_module *m;
    hlo_sem_opts o;
    uint64_t chips;
    hlo_plan *p;
    err *e;
    note notes[MAX_NOTES];
    unsigned nnotes;
    /* async -start instructions and their tokens (latest first found from the end) */
    const hlo_instr **tok_ins;
    int *tok_id;
    size_t ntok, captok;
    int dry; /* costing a conditional branch: count, do not record */
    uint64_t dry_cost;
} sem;

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return a && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void notef(sem *s, char kind, const char *key)
{
    for (unsigned i = 0; i < s->nnotes; i++)
        if (s->notes[i].kind == kind && !strcmp(s->notes[i].key, key)) {
            s->notes[i].count++;
            return;
        }
    if (s->nnotes == MAX_NOTES)
        return;
    note *n = &s->notes[s->nnotes++];
    n->kind = kind;
    snprintf(n->key, sizeof n->key, "%s", key);
    n->count = 1;
}

static isa_dtype dt_of(hlo_etype t)
{
    switch (t) {
    case HLO_ET_S8:
    case HLO_ET_U8:
    case HLO_ET_PRED:
        return ISA_DT_INT8;
    case HLO_ET_S4:
    case HLO_ET_U4:
    case HLO_ET_S2:
    case HLO_ET_U2:
        return ISA_DT_INT4;
    case HLO_ET_F8E4M3FN:
    case HLO_ET_F8E5M2:
    case HLO_ET_F8E4M3B11FNUZ:
    case HLO_ET_F8E4M3FNUZ:
    case HLO_ET_F8E5M2FNUZ:
        return ISA_DT_FP8;
    case HLO_ET_BF16:
    case HLO_ET_F16:
    case HLO_ET_S16:
    case HLO_ET_U16:
        return ISA_DT_BF16;
    default:
        return ISA_DT_FP32;
    }
}

isa_dtype hlo_isa_dtype(hlo_etype t)
{
    return dt_of(t);
}

static uint64_t ops_bytes(const hlo_instr *in)
{
    uint64_t b = 0;
    for (unsigned i = 0; i < in->nops; i++)
        b = sat_add(b, hlo_shape_bytes(&in->operands[i]->shape));
    return b;
}

static uint64_t max_operand_elems(const hlo_instr *in)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < in->nops; i++) {
        uint64_t k = hlo_shape_elems(hlo_shape_array(&in->operands[i]->shape));
        n = k > n ? k : n;
    }
    return n;
}

static int record(sem *s, const hlo_item *it)
{
    hlo_plan *p = s->p;
    if (s->dry) {
        s->dry_cost = sat_add(
            s->dry_cost,
            sat_add(it->flops, sat_add(it->velem + it->vtrans, it->bytes_in + it->bytes_out)));
        return 0;
    }
    if (p->nitems == p->cap) {
        if (p->nitems >= s->o.max_items)
            return err_set(s->e,
                           "%s: the program unrolls to more than %zu ops (while loops times "
                           "their trip counts); too large to import",
                           s->m->file, s->o.max_items);
        if (mem_grow(&p->items, &p->cap, p->nitems + 1, sizeof *p->items, 256))
            return err_setk(s->e, ERR_NOMEM, "%s: out of memory", s->m->file);
    }
    p->items[p->nitems++] = *it;
    p->ops_by_cls[it->cls]++;
    p->mxu_flops = sat_add(p->mxu_flops, it->flops);
    p->vec_ops = sat_add(p->vec_ops, sat_add(it->velem, sat_add(it->vtrans, it->vred)));
    p->trans_ops = sat_add(p->trans_ops, it->vtrans);
    p->hbm_bytes = sat_add(p->hbm_bytes, sat_add(it->bytes_in, it->bytes_out));
    p->coll_bytes = sat_add(p->coll_bytes, it->coll_bytes);
    uint64_t f = it->cls == HLO_CLS_MATMUL || it->cls == HLO_CLS_CONV
                     ? it->flops
                     : sat_add(it->velem, sat_add(it->vtrans, it->vred));
    p->flops_by_cls[it->cls] = sat_add(p->flops_by_cls[it->cls], f);
    return 0;
}

static void item_init(hlo_item *it, const hlo_instr *in, hlo_cls cls)
{
    memset(it, 0, sizeof *it);
    it->ins = in;
    it->cls = cls;
    it->region = in->meta.op_name;
    it->dt = dt_of(hlo_shape_array(&in->shape)->et);
    it->bytes_in = ops_bytes(in);
    it->bytes_out = hlo_shape_bytes(&in->shape);
    uint64_t r = hlo_shape_elems(hlo_shape_array(&in->shape)), o = max_operand_elems(in);
    it->elems = r > o ? r : o;
}

/* ---- dot and convolution --------------------------------------------------------------- */

static int in_list(const hlo_ints *l, unsigned d)
{
    for (unsigned i = 0; i < l->n; i++)
        if (l->v[i] == (int64_t)d)
            return 1;
    return 0;
}

static int list_ok(const hlo_ints *l, unsigned rank)
{
    for (unsigned i = 0; i < l->n; i++)
        if (l->v[i] < 0 || l->v[i] >= (int64_t)rank)
            return 0;
    return 1;
}

/* batch, m, n, k of a dot from its operands and dimension numbers; -1 if inconsistent. */
static int dot_dims(const hlo_instr *in, hlo_item *it)
{
    if (in->nops < 2)
        return -1;
    const hlo_shape *a = &in->operands[0]->shape, *b = &in->operands[1]->shape;
    if (a->et == HLO_ET_TUPLE || b->et == HLO_ET_TUPLE || !list_ok(&in->lhs_contracting, a->rank) ||
        !list_ok(&in->lhs_batch, a->rank) || !list_ok(&in->rhs_contracting, b->rank) ||
        !list_ok(&in->rhs_batch, b->rank))
        return -1;
    uint64_t batch = 1, m = 1, k = 1, n = 1;
    for (unsigned d = 0; d < a->rank; d++) {
        uint64_t x = a->dims[d] > 0 ? (uint64_t)a->dims[d] : 0;
        if (in_list(&in->lhs_batch, d))
            batch = sat_mul(batch, x);
        else if (in_list(&in->lhs_contracting, d))
            k = sat_mul(k, x);
        else
            m = sat_mul(m, x);
    }
    for (unsigned d = 0; d < b->rank; d++) {
        uint64_t x = b->dims[d] > 0 ? (uint64_t)b->dims[d] : 0;
        if (!in_list(&in->rhs_batch, d) && !in_list(&in->rhs_contracting, d))
            n = sat_mul(n, x);
    }
    it->batch = batch;
    it->m = m;
    it->n = n;
    it->k = k;
    it->flops = sat_mul(2, sat_mul(batch, sat_mul(m, sat_mul(n, k))));
    it->dt = dt_of(a->et);
    return 0;
}

/* A convolution as groups of im2col matmuls: m output positions, n output features per
 * group, k = kernel window x input features per group; FLOPs 2 x output elements x k. */
static int conv_dims(const hlo_instr *in, hlo_item *it)
{
    if (in->nops < 2 || !in->has_dim_labels)
        return -1;
    const hlo_shape *a = &in->operands[0]->shape, *w = &in->operands[1]->shape, *o = &in->shape;
    const hlo_dim_labels *dl = &in->dim_labels;
    if (a->et == HLO_ET_TUPLE || w->et == HLO_ET_TUPLE || o->et == HLO_ET_TUPLE ||
        a->rank != dl->nspatial + 2 || w->rank != dl->nspatial + 2 || o->rank != dl->nspatial + 2)
        return -1;
    uint64_t win = 1;
    for (unsigned i = 0; i < dl->nspatial; i++)
        win = sat_mul(win,
                      w->dims[dl->rhs_spatial[i]] > 0 ? (uint64_t)w->dims[dl->rhs_spatial[i]] : 0);
    uint64_t kin = w->dims[dl->rhs_in] > 0 ? (uint64_t)w->dims[dl->rhs_in] : 0;
    uint64_t of = o->dims[dl->out_feature] > 0 ? (uint64_t)o->dims[dl->out_feature] : 0;
    uint64_t out = hlo_shape_elems(o);
    uint64_t g = (uint64_t)(in->feature_group_count > 1 ? in->feature_group_count : 1) *
                 (uint64_t)(in->batch_group_count > 1 ? in->batch_group_count : 1);
    if (!of || of % g)
        g = 1;
    it->batch = g;
    it->m = out / (of ? of : 1);
    it->n = of / g;
    it->k = sat_mul(win, kin);
    it->flops = sat_mul(2, sat_mul(out, it->k));
    it->dt = dt_of(a->et);
    return 0;
}

/* ---- fusions --------------------------------------------------------------------------- */

/* Vector work of a fused computation's instructions (recursing into nested fusions); the
 * dot/convolution with the most FLOPs, if any, fills mm. */
static void fused_work(sem *s, const hlo_comp *c, hlo_item *it, hlo_item *mm, int *has_mm,
                       unsigned depth)
{
    if (!c || depth > MAX_DEPTH)
        return;
    for (unsigned i = 0; i < c->ninstrs; i++) {
        const hlo_instr *x = c->instrs[i];
        uint64_t r = hlo_shape_elems(hlo_shape_array(&x->shape));
        hlo_item t;
        switch (hlo_opcode_class(x->op)) {
        case HLO_OC_ELEM:
            it->velem = sat_add(it->velem, r);
            break;
        case HLO_OC_TRANS:
            it->vtrans = sat_add(it->vtrans, r);
            break;
        case HLO_OC_REDUCE:
            it->vred = sat_add(it->vred, max_operand_elems(x));
            break;
        case HLO_OC_DOT:
        case HLO_OC_CONV:
            memset(&t, 0, sizeof t);
            if ((x->op == HLO_OP_DOT ? dot_dims(x, &t) : conv_dims(x, &t)) == 0) {
                if (!*has_mm || t.flops > mm->flops) {
                    uint64_t prev = *has_mm ? mm->flops : 0;
                    *mm = t;
                    mm->core = x;
                    mm->flops = sat_add(t.flops, prev);
                } else {
                    mm->flops = sat_add(mm->flops, t.flops);
                }
                mm->cls = x->op == HLO_OP_DOT ? HLO_CLS_MATMUL : HLO_CLS_CONV;
                *has_mm = 1;
            }
            break;
        case HLO_OC_FUSION:
            fused_work(s, x->calls, it, mm, has_mm, depth + 1);
            break;
        default:
            break;
        }
    }
}

/* ---- collectives ----------------------------------------------------------------------- */

static unsigned coord(const sem *s, uint64_t id, unsigned a)
{
    uint64_t st = 1;
    for (unsigned i = 0; i < a; i++)
        st *= s->o.dims[i];
    return (unsigned)(id / st % s->o.dims[a]);
}

/* Axes the replica groups span (x=1, y=2, z=4); *whole = 1 if every group is exactly the
 * chips along those axes through one point. */
static unsigned groups_axes(const sem *s, const hlo_groups *g, int *whole)
{
    unsigned all = 0;
    for (unsigned a = 0; a < 3; a++)
        if (s->o.dims[a] > 1)
            all |= 1u << a;
    *whole = 1;
    if (!g->present || g->ngroups == 0)
        return all; /* every device */
    unsigned axes = 0;
    for (unsigned gi = 0; gi < g->ngroups; gi++) {
        const int64_t *ids = g->ids + (size_t)gi * g->size;
        unsigned v = 0;
        for (unsigned i = 0; i < g->size; i++) {
            if (ids[i] < 0 || (uint64_t)ids[i] >= s->chips) {
                *whole = 0;
                return all;
            }
            for (unsigned a = 0; a < 3; a++)
                if (coord(s, (uint64_t)ids[i], a) != coord(s, (uint64_t)ids[0], a))
                    v |= 1u << a;
        }
        uint64_t want = 1;
        for (unsigned a = 0; a < 3; a++)
            if (v & (1u << a))
                want *= s->o.dims[a];
        /* distinct members filling the box of the varying axes */
        int distinct = 1;
        for (unsigned i = 0; i < g->size && distinct && g->size <= 4096; i++)
            for (unsigned j = i + 1; j < g->size; j++)
                if (ids[i] == ids[j]) {
                    distinct = 0;
                    break;
                }
        if (want != g->size || !distinct || (gi && v != axes))
            *whole = 0;
        axes |= v;
    }
    return axes;
}

/* Whether the replica groups are strided rings: every group `size` chips along one axis a (the
 * same for all), at positions c, c+st, ..., c+(size-1)st on a for one hop stride st >= 1 (the
 * same for all) with every other coordinate equal, and the groups together hold every chip
 * once. Fills r (axis, stride, group) and returns 1; 0 if not; -1 out of memory. */
static int groups_ring(const sem *s, const hlo_groups *g, ir_route *r)
{
    if (!g->present || g->ngroups == 0 || g->size < 2 || (uint64_t)g->ngroups * g->size != s->chips)
        return 0;
    unsigned axis = 3;
    for (unsigned a = 0; a < 3 && axis == 3; a++)
        if (g->ids[0] >= 0 && (uint64_t)g->ids[0] < s->chips && g->ids[1] >= 0 &&
            (uint64_t)g->ids[1] < s->chips &&
            coord(s, (uint64_t)g->ids[0], a) != coord(s, (uint64_t)g->ids[1], a))
            axis = a;
    if (axis == 3)
        return 0;
    unsigned char *seen = calloc(s->chips, 1), *at = calloc(g->size, 1);
    if (!seen || !at) {
        free(seen);
        free(at);
        return -1;
    }
    unsigned stride = 0;
    int ok = 1;
    for (unsigned gi = 0; gi < g->ngroups && ok; gi++) {
        const int64_t *ids = g->ids + (size_t)gi * g->size;
        unsigned lo = UINT32_MAX, hi = 0;
        for (unsigned i = 0; i < g->size && ok; i++) {
            if (ids[i] < 0 || (uint64_t)ids[i] >= s->chips || seen[ids[i]]) {
                ok = 0;
                break;
            }
            seen[ids[i]] = 1;
            for (unsigned a = 0; a < 3; a++)
                if (a != axis && coord(s, (uint64_t)ids[i], a) != coord(s, (uint64_t)ids[0], a))
                    ok = 0;
            unsigned c = coord(s, (uint64_t)ids[i], axis);
            lo = c < lo ? c : lo;
            hi = c > hi ? c : hi;
        }
        if (!ok || (hi - lo) % (g->size - 1) || (stride && (hi - lo) / (g->size - 1) != stride)) {
            ok = 0;
            break;
        }
        stride = (hi - lo) / (g->size - 1);
        /* distinct members on the progression: each of its `size` places taken once */
        memset(at, 0, g->size);
        for (unsigned i = 0; i < g->size && ok; i++) {
            unsigned c = coord(s, (uint64_t)ids[i], axis) - lo;
            if (!stride || c % stride || at[c / stride])
                ok = 0;
            else
                at[c / stride] = 1;
        }
    }
    free(seen);
    free(at);
    if (!ok)
        return 0;
    *r = (ir_route){.axis = axis, .stride = stride, .group = g->size};
    return 1;
}

/* Whether a collective-permute's source-target pairs are one uniform shift along one axis a:
 * every target is its source moved d places along +a modulo the axis length (the same d, other
 * coordinates equal). Fills r (axis, shift, pairs: which pairs wrap) and returns 1; else 0. */
static int pairs_shift(const sem *s, const hlo_instr *in, ir_route *r)
{
    if (!in->npairs)
        return 0;
    unsigned axis = 3, d = 0, pairs = 0;
    for (unsigned i = 0; i < in->npairs; i++) {
        int64_t a = in->pairs[2 * i], b = in->pairs[2 * i + 1];
        if (a < 0 || b < 0 || (uint64_t)a >= s->chips || (uint64_t)b >= s->chips)
            return 0;
        unsigned differ = 0, ax = 3;
        for (unsigned k = 0; k < 3; k++)
            if (coord(s, (uint64_t)a, k) != coord(s, (uint64_t)b, k)) {
                differ++;
                ax = k;
            }
        if (differ != 1 || (axis != 3 && ax != axis))
            return 0;
        axis = ax;
        unsigned L = s->o.dims[ax], ca = coord(s, (uint64_t)a, ax), cb = coord(s, (uint64_t)b, ax);
        unsigned k = (cb + L - ca) % L;
        if (d && k != d)
            return 0;
        d = k;
        pairs |= cb > ca ? IR_SHIFT_FWD : IR_SHIFT_WRAP;
    }
    *r = (ir_route){.axis = axis, .shift = d, .pairs = pairs};
    return 1;
}

static void groups_text(const hlo_groups *g, char *buf, size_t n)
{
    size_t j = 0;
    j += (size_t)snprintf(buf, n, "{");
    for (unsigned gi = 0; gi < g->ngroups && gi < 2 && j < n; gi++) {
        j += (size_t)snprintf(buf + j, n - j, "%s{", gi ? "," : "");
        for (unsigned i = 0; i < g->size && i < 4 && j < n; i++)
            j += (size_t)snprintf(buf + j, n - j, "%s%lld", i ? "," : "",
                                  (long long)g->ids[(size_t)gi * g->size + i]);
        if (j < n)
            j += (size_t)snprintf(buf + j, n - j, "%s}", g->size > 4 ? ",..." : "");
    }
    if (j < n)
        snprintf(buf + j, n - j, "%s}", g->ngroups > 2 ? ",..." : "");
}

static int new_token(sem *s, const hlo_instr *start)
{
    size_t cap_ins = s->captok; /* the two arrays grow in step */
    if (mem_grow(&s->tok_ins, &cap_ins, s->ntok + 1, sizeof *s->tok_ins, 64) ||
        mem_grow(&s->tok_id, &s->captok, s->ntok + 1, sizeof *s->tok_id, 64))
        return -1;
    s->tok_ins[s->ntok] = start;
    s->tok_id[s->ntok] = ++s->p->ntokens;
    return s->tok_id[s->ntok++];
}

static int token_of(const sem *s, const hlo_instr *start)
{
    for (size_t i = s->ntok; i-- > 0;)
        if (s->tok_ins[i] == start)
            return s->tok_id[i];
    return 0;
}

/* The collective an op (or the collective inside an async wrapper) performs. */
static const hlo_instr *coll_inside(const hlo_instr *in)
{
    if (hlo_opcode_class(in->op) == HLO_OC_COLL)
        return in;
    if (in->op == HLO_OP_ASYNC_START && in->calls)
        for (unsigned i = 0; i < in->calls->ninstrs; i++)
            if (hlo_opcode_class(in->calls->instrs[i]->op) == HLO_OC_COLL)
                return in->calls->instrs[i];
    return NULL;
}

static int do_coll(sem *s, const hlo_instr *wrap, const hlo_instr *in, int async)
{
    hlo_item it;
    item_init(&it, wrap, HLO_CLS_COLL);
    uint64_t ob = ops_bytes(in);
    int whole;
    it.axes = groups_axes(s, &in->replica_groups, &whole);
    it.group = 1;
    for (unsigned a = 0; a < 3; a++)
        if (it.axes & (1u << a))
            it.group *= s->o.dims[a];
    if (in->replica_groups.present && in->replica_groups.ngroups)
        it.group = in->replica_groups.size;
    it.p2p = !whole;
    switch (in->op) {
    case HLO_OP_ALL_REDUCE:
    case HLO_OP_ALL_REDUCE_START:
        it.coll_op = ISA_OP_ICI_ALLREDUCE;
        it.coll_bytes = ob;
        break;
    case HLO_OP_ALL_GATHER:
    case HLO_OP_ALL_GATHER_START:
        it.coll_op = ISA_OP_ICI_ALLGATHER;
        it.coll_bytes = sat_mul(ob, it.group);
        break;
    case HLO_OP_REDUCE_SCATTER:
        it.coll_op = ISA_OP_ICI_REDUCESCATTER;
        it.coll_bytes = ob;
        break;
    case HLO_OP_ALL_TO_ALL:
        it.coll_op = ISA_OP_ICI_ALLTOALL;
        it.coll_bytes = ob;
        break;
    case HLO_OP_COLLECTIVE_BROADCAST:
        it.coll_op = ISA_OP_ICI_ALLGATHER;
        it.coll_bytes = ob;
        break;
    default: {
        /* collective-permute, send, recv: point to point along the axis of the first pair; a
         * permute that is one uniform shift along one axis is routed as that shift */
        it.coll_op = ISA_OP_ICI_SEND;
        it.coll_bytes = in->op == HLO_OP_RECV ? hlo_shape_bytes(hlo_shape_array(&in->shape)) : ob;
        it.p2p = 1;
        it.axes = 0;
        it.group = 2;
        if (in->npairs) {
            for (unsigned a = 0; a < 3; a++)
                if ((uint64_t)in->pairs[0] < s->chips && (uint64_t)in->pairs[1] < s->chips &&
                    coord(s, (uint64_t)in->pairs[0], a) != coord(s, (uint64_t)in->pairs[1], a)) {
                    it.axes = 1u << a;
                    break;
                }
        }
        if (!it.axes)
            for (unsigned a = 0; a < 3 && !it.axes; a++)
                if (s->o.dims[a] > 1)
                    it.axes = 1u << a;
        if (!it.axes)
            it.coll_bytes = 0; /* one chip: nothing moves */
        if (it.coll_bytes &&
            (in->op == HLO_OP_COLLECTIVE_PERMUTE || in->op == HLO_OP_COLLECTIVE_PERMUTE_START) &&
            pairs_shift(s, in, &it.route)) {
            it.axes = 1u << it.route.axis;
            if (!s->dry) {
                char key[96];
                snprintf(key, sizeof key, "%s: a shift by %u along %c", in->opname, it.route.shift,
                         "xyz"[it.route.axis]);
                notef(s, 'r', key);
            }
        }
        break;
    }
    }
    if (it.p2p && it.coll_op != ISA_OP_ICI_SEND) {
        char gt[64], key[128];
        groups_text(&in->replica_groups, gt, sizeof gt);
        int ring = groups_ring(s, &in->replica_groups, &it.route);
        if (ring < 0)
            return err_setk(s->e, ERR_NOMEM, "%s: out of memory", s->m->file);
        if (ring) {
            it.axes = 1u << it.route.axis;
            snprintf(key, sizeof key,
                     "%s %.40s: not whole axes but rings of %u chips, stride %u, along %c",
                     in->opname, gt, it.route.group, it.route.stride, "xyz"[it.route.axis]);
        } else {
            snprintf(key, sizeof key, "%s %.40s", in->opname, gt);
        }
        if (!s->dry)
            notef(s, ring ? 'r' : 'g', key);
    }
    it.bytes_in = it.bytes_out = 0; /* collectives move HBM data by DMA inside the ICI model */
    if (async && !s->dry && !(it.token = new_token(s, wrap)))
        return err_setk(s->e, ERR_NOMEM, "%s: out of memory", s->m->file);
    return record(s, &it);
}

/* ---- trip counts ----------------------------------------------------------------------- */

static int literal_int(const hlo_instr *c, int64_t *v)
{
    if (!c || c->op != HLO_OP_CONSTANT || !c->literal)
        return -1;
    const char *s = c->literal;
    size_t n = strlen(s);
    /* the last word: "10" or (older) "s32[] 10" */
    size_t b = n;
    while (b > 0 && s[b - 1] != ' ')
        b--;
    int neg = s[b] == '-';
    int64_t x = 0;
    size_t i = b + (size_t)neg;
    if (i >= n)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || x > INT64_MAX / 10 - 10)
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = neg ? -x : x;
    return 0;
}

/* x, seen through one fusion boundary: a fused parameter becomes the fusion's operand. */
static const hlo_instr *through(const hlo_instr *x, const hlo_instr *fusion)
{
    if (fusion && x->op == HLO_OP_PARAMETER && x->param_number >= 0 &&
        (uint64_t)x->param_number < fusion->nops)
        return fusion->operands[x->param_number];
    return x;
}

int64_t hlo_trip_count(const hlo_instr *w)
{
    if (w->known_trip_count >= 0)
        return w->known_trip_count;
    if (!w->condition || !w->condition->root)
        return -1;
    const hlo_instr *r = w->condition->root, *fusion = NULL;
    if (r->op == HLO_OP_FUSION && r->calls && r->calls->root) {
        fusion = r;
        r = r->calls->root;
    }
    if (r->op != HLO_OP_COMPARE || r->nops != 2 || !r->direction)
        return -1;
    const hlo_instr *a = through(r->operands[0], fusion), *b = through(r->operands[1], fusion);
    const char *dir = r->direction;
    int64_t limit;
    if (literal_int(b, &limit)) {
        const hlo_instr *t = a;
        a = b;
        b = t;
        if (literal_int(b, &limit))
            return -1;
        dir = !strcmp(dir, "LT")   ? "GT"
              : !strcmp(dir, "LE") ? "GE"
              : !strcmp(dir, "GT") ? "LT"
              : !strcmp(dir, "GE") ? "LE"
                                   : dir;
    }
    if (a->op != HLO_OP_GET_TUPLE_ELEMENT || a->index < 0)
        return -1;
    int64_t k = a->index, init = 0, step = 1;
    if (w->nops == 1 && w->operands[0]->op == HLO_OP_TUPLE && (uint64_t)k < w->operands[0]->nops)
        literal_int(w->operands[0]->operands[k], &init);
    const hlo_instr *br = w->body ? w->body->root : NULL;
    if (br && br->op == HLO_OP_TUPLE && (uint64_t)k < br->nops) {
        const hlo_instr *u = br->operands[k];
        if (u->op == HLO_OP_ADD && u->nops == 2 &&
            (literal_int(u->operands[1], &step) == 0 || literal_int(u->operands[0], &step) == 0))
            ;
        else if (u->op == HLO_OP_SUBTRACT && u->nops == 2 &&
                 literal_int(u->operands[1], &step) == 0)
            step = -step;
    }
    if (step == 0 || limit > (1ll << 40) || limit < -(1ll << 40) || init > (1ll << 40) ||
        init < -(1ll << 40))
        return -1;
    int64_t n;
    if (!strcmp(dir, "LT"))
        n = step > 0 ? (limit - init + step - 1) / step : -1;
    else if (!strcmp(dir, "LE"))
        n = step > 0 ? (limit - init) / step + 1 : -1;
    else if (!strcmp(dir, "GT"))
        n = step < 0 ? (init - limit + (-step) - 1) / (-step) : -1;
    else if (!strcmp(dir, "GE"))
        n = step < 0 ? (init - limit) / (-step) + 1 : -1;
    else if (!strcmp(dir, "NE"))
        n = (limit - init) % step == 0 && (limit - init) / step >= 0 ? (limit - init) / step : -1;
    else
        return -1;
    return n < 0 ? 0 : n;
}

/* ---- custom calls ---------------------------------------------------------------------- */

/* Read a JSON list of (quoted) integers after "key": in a backend_config. */
static void json_ints(const char *s, const char *key, hlo_ints *l, int64_t *buf, unsigned max)
{
    l->n = 0;
    l->v = buf;
    l->present = 0;
    const char *k = s ? strstr(s, key) : NULL;
    if (!k)
        return;
    const char *b = strchr(k, '[');
    const char *e = b ? strchr(b, ']') : NULL;
    if (!b || !e)
        return;
    l->present = 1;
    for (const char *c = b + 1; c < e && l->n < max; c++) {
        if (*c >= '0' && *c <= '9') {
            int64_t x = 0;
            while (c < e && *c >= '0' && *c <= '9' && x < (1 << 20))
                x = x * 10 + (*c++ - '0');
            buf[l->n++] = x;
        }
    }
}

static int do_custom(sem *s, const hlo_instr *in)
{
    const char *t = in->custom_call_target ? in->custom_call_target : "";
    hlo_item it;
    item_init(&it, in, HLO_CLS_CUSTOM);
    /* GEMM libraries: a dot whose dimension numbers are in the JSON backend_config */
    if (!strncmp(t, "__cublas$", 9) || !strcmp(t, "__onednn$matmul")) {
        int64_t b[4][HLO_MAX_RANK];
        hlo_instr d = *in;
        json_ints(in->backend_config, "lhs_contracting_dimensions", &d.lhs_contracting, b[0],
                  HLO_MAX_RANK);
        json_ints(in->backend_config, "rhs_contracting_dimensions", &d.rhs_contracting, b[1],
                  HLO_MAX_RANK);
        json_ints(in->backend_config, "lhs_batch_dimensions", &d.lhs_batch, b[2], HLO_MAX_RANK);
        json_ints(in->backend_config, "rhs_batch_dimensions", &d.rhs_batch, b[3], HLO_MAX_RANK);
        hlo_item mm = it;
        if (d.lhs_contracting.present && dot_dims(&d, &mm) == 0) {
            mm.cls = HLO_CLS_MATMUL;
            mm.bytes_out = hlo_shape_bytes(hlo_shape_array(&in->shape));
            return record(s, &mm);
        }
    }
    /* annotations the partitioner leaves: no work */
    static const char *free_targets[] = {
        "Sharding",       "SPMDFullToShardShape", "SPMDShardToFullShape",
        "AllocateBuffer", "LayoutConstraint",     "annotate_device_placement"};
    for (unsigned i = 0; i < sizeof free_targets / sizeof *free_targets; i++)
        if (!strcmp(t, free_targets[i])) {
            s->p->ops_by_cls[HLO_CLS_FREE] += !s->dry;
            return 0;
        }
    /* host offload: a DMA of the operand */
    if (!strcmp(t, "MoveToHost") || !strcmp(t, "MoveToDevice")) {
        it.cls = HLO_CLS_DATA;
        return record(s, &it);
    }
    if (!s->dry)
        notef(s, 'c', t[0] ? t : "(no target)");
    return record(s, &it);
}

/* ---- the walk -------------------------------------------------------------------------- */

static int walk(sem *s, const hlo_comp *c, unsigned depth);

static int do_instr(sem *s, const hlo_instr *in, unsigned depth)
{
    hlo_item it;
    switch (hlo_opcode_class(in->op)) {
    case HLO_OC_FREE:
        if (!s->dry)
            s->p->ops_by_cls[HLO_CLS_FREE]++;
        return 0;
    case HLO_OC_ELEM:
        item_init(&it, in, HLO_CLS_VECTOR);
        it.velem = hlo_shape_elems(hlo_shape_array(&in->shape));
        return record(s, &it);
    case HLO_OC_TRANS:
        item_init(&it, in, HLO_CLS_VECTOR);
        it.vtrans = hlo_shape_elems(hlo_shape_array(&in->shape));
        return record(s, &it);
    case HLO_OC_REDUCE:
        item_init(&it, in, HLO_CLS_VECTOR);
        it.vred = max_operand_elems(in);
        return record(s, &it);
    case HLO_OC_DATA:
        item_init(&it, in, HLO_CLS_DATA);
        if (in->op == HLO_OP_DYNAMIC_UPDATE_SLICE && in->nops >= 2) {
            /* in place: reads and writes the update only */
            it.bytes_in = it.bytes_out = hlo_shape_bytes(&in->operands[1]->shape);
            it.elems = hlo_shape_elems(&in->operands[1]->shape);
        } else if (in->op == HLO_OP_DYNAMIC_SLICE || in->op == HLO_OP_SLICE ||
                   in->op == HLO_OP_GATHER) {
            it.bytes_in = it.bytes_out; /* reads what it keeps */
            it.elems = hlo_shape_elems(hlo_shape_array(&in->shape));
        }
        return record(s, &it);
    case HLO_OC_DOT:
    case HLO_OC_CONV:
        item_init(&it, in, in->op == HLO_OP_DOT ? HLO_CLS_MATMUL : HLO_CLS_CONV);
        if ((in->op == HLO_OP_DOT ? dot_dims(in, &it) : conv_dims(in, &it)) == 0)
            return record(s, &it);
        if (!s->dry)
            notef(s, 'x',
                  in->op == HLO_OP_DOT ? "dot with inconsistent dimension numbers"
                                       : "convolution without usable dim_labels");
        it.cls = HLO_CLS_DATA;
        return record(s, &it);
    case HLO_OC_FUSION: {
        item_init(&it, in, HLO_CLS_VECTOR);
        hlo_item mm;
        int has_mm = 0;
        memset(&mm, 0, sizeof mm);
        fused_work(s, in->calls, &it, &mm, &has_mm, depth + 1);
        if (has_mm) {
            it.cls = mm.cls;
            it.batch = mm.batch;
            it.m = mm.m;
            it.n = mm.n;
            it.k = mm.k;
            it.flops = mm.flops;
            it.dt = mm.dt;
            it.core = mm.core;
            it.elems = sat_mul(mm.batch, sat_mul(mm.m, mm.n)); /* the epilogue runs per output */
        }
        return record(s, &it);
    }
    case HLO_OC_COLL:
        return do_coll(s, in, in,
                       in->op == HLO_OP_ALL_REDUCE_START || in->op == HLO_OP_ALL_GATHER_START ||
                           in->op == HLO_OP_COLLECTIVE_PERMUTE_START || in->op == HLO_OP_SEND ||
                           in->op == HLO_OP_RECV);
    case HLO_OC_DONE: {
        if (in->nops < 1)
            return 0;
        const hlo_instr *st = in->operands[0];
        /* -done of an async wrapper around plain work: nothing to wait for */
        int tok = s->dry ? 0 : token_of(s, st);
        if (!tok)
            return 0;
        item_init(&it, in, HLO_CLS_WAIT);
        it.bytes_in = it.bytes_out = 0;
        it.token = tok;
        return record(s, &it);
    }
    case HLO_OC_CTRL:
        if (depth > MAX_DEPTH)
            return err_set(s->e, "%s:%u:%u: calls nested deeper than %u (a cycle?)", s->m->file,
                           in->line, in->col, MAX_DEPTH);
        if (in->op == HLO_OP_ASYNC_START) {
            const hlo_instr *cl = coll_inside(in);
            if (cl)
                return do_coll(s, in, cl, 1);
            return walk(s, in->calls, depth + 1);
        }
        if (in->op == HLO_OP_CALL)
            return walk(s, in->to_apply ? in->to_apply : in->calls, depth + 1);
        if (in->op == HLO_OP_WHILE) {
            int64_t n = hlo_trip_count(in);
            if (n < 0) {
                if (!s->dry)
                    notef(s, 't', in->name);
                n = 1;
            }
            if (s->dry) { /* costing only: one pass, times n */
                uint64_t before = s->dry_cost;
                if (n && walk(s, in->body, depth + 1))
                    return -1;
                s->dry_cost = sat_add(before, sat_mul(s->dry_cost - before, (uint64_t)n));
                return 0;
            }
            for (int64_t i = 0; i < n; i++) {
                size_t before = s->p->nitems;
                if (walk(s, in->body, depth + 1))
                    return -1;
                /* an empty body costs nothing however often it runs */
                if (s->p->nitems == before)
                    break;
            }
            return 0;
        }
        if (in->op == HLO_OP_CONDITIONAL) {
            const hlo_comp *best = NULL;
            uint64_t bc = 0;
            int was = s->dry;
            uint64_t saved = s->dry_cost;
            for (unsigned i = 0; i < in->nbranches; i++) {
                s->dry = 1;
                s->dry_cost = 0;
                int r = walk(s, in->branches[i], depth + 1);
                uint64_t cost = s->dry_cost;
                s->dry = was;
                s->dry_cost = saved;
                if (r)
                    return -1;
                if (!best || cost > bc) {
                    best = in->branches[i];
                    bc = cost;
                }
            }
            if (!s->dry)
                notef(s, 'b', in->name);
            return best ? walk(s, best, depth + 1) : 0;
        }
        return 0;
    case HLO_OC_CUSTOM:
        return do_custom(s, in);
    default:
        item_init(&it, in, HLO_CLS_DATA);
        if (!s->dry) {
            s->p->unknown_ops++;
            notef(s, 'u', in->opname);
        }
        return record(s, &it);
    }
}

static int walk(sem *s, const hlo_comp *c, unsigned depth)
{
    if (!c)
        return 0;
    if (depth > MAX_DEPTH)
        return err_set(s->e, "%s:%u: computations nested deeper than %u (a cycle?)", s->m->file,
                       c->line, MAX_DEPTH);
    for (unsigned i = 0; i < c->ninstrs; i++)
        if (do_instr(s, c->instrs[i], depth))
            return -1;
    return 0;
}

int hlo_sem_opts_from_cfg(hlo_sem_opts *o, const cfg *c, err *e)
{
    memset(o, 0, sizeof *o);
    if (cfg_parse_dims(c->ici_dims, o->dims) < 0)
        return err_set(e, "ici.dims '%s' is not a torus shape such as 4x4", c->ici_dims);
    return 0;
}

int hlo_analyze(const hlo_module *m, const hlo_sem_opts *o, hlo_plan *p, err *e)
{
    memset(p, 0, sizeof *p);
    sem s = {.m = m, .o = *o, .p = p, .e = e};
    for (unsigned a = 0; a < 3; a++)
        if (!s.o.dims[a])
            s.o.dims[a] = 1;
    s.chips = (uint64_t)s.o.dims[0] * s.o.dims[1] * s.o.dims[2];
    if (o->chips && o->chips != s.chips)
        return err_set(e, "--chips %llu does not match ici.dims %ux%ux%u (%llu chips)",
                       (unsigned long long)o->chips, s.o.dims[0], s.o.dims[1], s.o.dims[2],
                       (unsigned long long)s.chips);
    if (!s.o.max_items)
        s.o.max_items = DEF_MAX_ITEMS;
    if (m->entry && !m->entry->is_entry)
        notef(&s, 'e', m->entry->name); /* XLA's rule too; a real dump always marks it */
    int r = walk(&s, m->entry, 0);
    uint64_t parts = (uint64_t)m->num_partitions * (uint64_t)m->replica_count;
    if (!r && parts > 1 && parts != s.chips) {
        char k[96];
        snprintf(k, sizeof k, "the module is partitioned for %llu devices, the torus has %llu",
                 (unsigned long long)parts, (unsigned long long)s.chips);
        notef(&s, 'x', k);
    }
    for (unsigned i = 0; i < s.nnotes && p->nwarn < HLO_MAX_WARN; i++) {
        const note *n = &s.notes[i];
        char *w = p->warn[p->nwarn++];
        size_t ws = sizeof p->warn[0];
        unsigned long long cnt = (unsigned long long)n->count;
        switch (n->kind) {
        case 'c':
            snprintf(w, ws,
                     "custom-call target '%s' (%llux): costed from its operand and result "
                     "bytes",
                     n->key, cnt);
            break;
        case 'u':
            snprintf(w, ws, "unknown opcode '%s' (%llux): costed from its bytes", n->key, cnt);
            break;
        case 'g':
            snprintf(w, ws,
                     "%s (%llux): replica groups are not whole torus axes; run as the "
                     "collective over every axis they span (only strided rings along one axis "
                     "that cover every chip are routed point to point)",
                     n->key, cnt);
            break;
        case 'r':
            snprintf(w, ws,
                     "%s (%llux): routed point to point as one-hop ici.send/ici.recv steps "
                     "(docs/hlo.md)",
                     n->key, cnt);
            break;
        case 'e':
            snprintf(w, ws,
                     "no computation is marked ENTRY: the last one, '%s', is run (a truncated "
                     "module?)",
                     n->key);
            break;
        case 't':
            snprintf(w, ws,
                     "while '%s': no trip count found (no known_trip_count, no counter "
                     "compared with a constant); ran once",
                     n->key);
            break;
        case 'b':
            snprintf(w, ws, "conditional '%s' (%llux): the largest branch is costed", n->key, cnt);
            break;
        default:
            snprintf(w, ws, "%s (%llux)", n->key, cnt);
            break;
        }
    }
    free(s.tok_ins);
    free(s.tok_id);
    if (r) {
        hlo_plan_fini(p);
        return -1;
    }
    return 0;
}

void hlo_plan_fini(hlo_plan *p)
{
    free(p->items);
    p->items = NULL;
    p->nitems = p->cap = 0;
}
