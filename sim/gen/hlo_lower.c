/* hlo_lower.c - TEMPORARY lowering of an imported HLO plan to a trace through the gen_*
 * emission helpers (GEMM tiler, streamed vector pass, gather, collectives), so that
 * `tpusim import hlo` works end to end before the workload IR (issue 14) lands. When it
 * lands, the importer builds IR from the plan instead and this file goes away; until then it
 * is the one place where the importer emits instructions.
 *
 * Approximations (docs/hlo.md): tensors live in a few scratch HBM buffers sized for the
 * largest op (addresses do not alias the program's real buffers); f32 dots run as one bf16
 * MXU pass (XLA:TPU's default precision); a fusion's epilogue or vector work is one streamed
 * pass over its elements with one vector op per element-op (transcendentals on v.exp,
 * reductions as adds); data movement is a copy of the result through VMEM; collective-permute
 * and groups that are not whole torus axes run as the collective over the axes they span. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "hlo.h"

#define MAX_VOPS   8
#define FOLD_BATCH 64 /* more problems than this fold into rows (same FLOPs, one GEMM) */

static uint64_t umax64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static isa_dtype mxu_dt(isa_dtype dt)
{
    return dt == ISA_DT_INT8 || dt == ISA_DT_FP8 ? dt : ISA_DT_BF16;
}

/* A region name from op_name metadata: the scope path without its last component (the
 * primitive), its last ISA_NAME_MAX - 1 bytes when longer. */
static void region_of(const char *op_name, char *out, size_t n)
{
    if (!op_name || !*op_name) {
        snprintf(out, n, "hlo");
        return;
    }
    size_t len = strlen(op_name);
    const char *slash = NULL;
    /* the last '/' outside brackets */
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = op_name[i];
        depth += c == '[' || c == '(';
        depth -= (c == ']' || c == ')') && depth > 0;
        if (c == '/' && depth == 0)
            slash = op_name + i;
    }
    if (slash && slash > op_name)
        len = (size_t)(slash - op_name);
    const char *s = op_name;
    if (len >= n) {
        s += len - (n - 1);
        len = n - 1;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == '"')
            out[i] = '_';
}

typedef struct lower {
    gen *g;
    const cfg *c;
    uint64_t a, b, cc; /* GEMM operands */
    uint64_t v[7];     /* vector pass buffers */
    gen_fence *fences; /* per async token */
} lower;

static int do_matmul(lower *L, const hlo_item *it)
{
    isa_dtype dt = mxu_dt(it->dt);
    uint64_t batch = it->batch ? it->batch : 1, m = it->m;
    if (batch > FOLD_BATCH) {
        m *= batch;
        batch = 1;
    }
    if (!m || !it->n || !it->k)
        return 0;
    for (uint64_t b = 0; b < batch; b++) {
        gen_gemm_args ga = {.m = m,
                            .n = it->n,
                            .k = it->k,
                            .a = L->a,
                            .b = L->b,
                            .c = L->cc,
                            .dt = dt,
                            .out_dt = dt};
        if (gen_gemm(L->g, &ga))
            return -1;
    }
    return 0;
}

/* One streamed pass over it->elems elements with the item's element-ops. */
static int do_vector(lower *L, const hlo_item *it, int epilogue)
{
    uint64_t n = it->elems;
    if (!n)
        return 0;
    isa_dtype dt = it->dt;
    uint64_t eb = gen_dt_bytes(dt, n);
    unsigned nin = epilogue ? 1 : (unsigned)((it->bytes_in + eb - 1) / (eb ? eb : 1));
    nin = nin < 1 ? 1 : nin > 5 ? 5 : nin;
    uint64_t ne = (it->velem + it->vred + n - 1) / n, nt = (it->vtrans + n - 1) / n;
    gen_vop ops[MAX_VOPS];
    unsigned nops = 0;
    for (uint64_t i = 0; i < nt && nops < MAX_VOPS; i++)
        ops[nops++] = (gen_vop){.op = ISA_OP_V_EXP, .src = 0, .dst = nin, .dt = dt};
    for (uint64_t i = 0; i < ne && nops < MAX_VOPS; i++)
        ops[nops++] = (gen_vop){.op = ISA_OP_V_ADD, .src = 0, .dst = nin, .dt = dt};
    if (!nops)
        ops[nops++] = (gen_vop){.op = ISA_OP_V_ADD, .src = 0, .dst = nin, .dt = dt};
    gen_stream_args s = {.n = n, .nin = nin, .nout = 1, .ops = ops, .nops = nops};
    for (unsigned i = 0; i < nin; i++) {
        s.in[i] = L->v[i];
        s.in_dt[i] = dt;
    }
    s.out[0] = L->v[6];
    s.out_dt[0] = dt;
    return gen_stream(L->g, &s);
}

static int do_data(lower *L, const hlo_item *it)
{
    uint64_t bytes = it->bytes_out;
    if (!bytes)
        return 0;
    return gen_gather(L->g, L->v[0], bytes, L->v[6], bytes, 2048, 2048);
}

static int do_coll(lower *L, const hlo_item *it)
{
    int op = it->coll_op == ISA_OP_ICI_SEND ? ISA_OP_ICI_ALLTOALL : it->coll_op;
    if (!it->axes || !it->coll_bytes)
        return 0;
    if (it->token) {
        gen_fence *f = &L->fences[it->token];
        if (f->sem < 0)
            *f = gen_fence_new(L->g);
        return gen_coll(L->g, op, it->axes, it->coll_bytes, it->dt, f);
    }
    gen_fence f = gen_fence_new(L->g);
    if (gen_coll(L->g, op, it->axes, it->coll_bytes, it->dt, &f))
        return -1;
    return gen_fence_wait(L->g, &f);
}

int hlo_lower(const hlo_plan *p, const cfg *c, const char *path, const char *note, err *e)
{
    /* scratch sizes: the largest operand of each role over the plan */
    uint64_t amax = 4096, bmax = 4096, cmax = 4096, vmax = 4096;
    for (size_t i = 0; i < p->nitems; i++) {
        const hlo_item *it = &p->items[i];
        if (it->cls == HLO_CLS_MATMUL || it->cls == HLO_CLS_CONV) {
            isa_dtype dt = mxu_dt(it->dt);
            uint64_t m = it->batch > FOLD_BATCH ? it->m * it->batch : it->m;
            amax = umax64(amax, gen_dt_bytes(dt, m * gen_pitch(c, it->k, dt)));
            bmax = umax64(bmax, gen_dt_bytes(dt, it->k * gen_pitch(c, it->n, dt)));
            cmax = umax64(cmax, gen_dt_bytes(dt, m * gen_pitch(c, it->n, dt)));
        }
        vmax = umax64(vmax, umax64(gen_dt_bytes(it->dt, it->elems), it->bytes_out));
    }
    gen *g = gen_new(c, path, note, e);
    if (!g)
        return -1;
    lower L = {.g = g, .c = c};
    gen_fence *fences = calloc((size_t)p->ntokens + 1, sizeof *fences);
    if (!fences) {
        gen_free(g);
        return err_setk(e, ERR_NOMEM, "import: out of memory");
    }
    for (int i = 0; i <= p->ntokens; i++)
        fences[i].sem = -1;
    L.fences = fences;
    int r = gen_hbm_alloc(g, amax, &L.a) || gen_hbm_alloc(g, bmax, &L.b) ||
            gen_hbm_alloc(g, cmax, &L.cc);
    for (int i = 0; i < 7 && !r; i++)
        r = gen_hbm_alloc(g, vmax, &L.v[i]);
    char cur[64] = "", reg[64];
    for (size_t i = 0; i < p->nitems && !r; i++) {
        const hlo_item *it = &p->items[i];
        region_of(it->region, reg, ISA_NAME_MAX);
        if (strcmp(reg, cur)) {
            snprintf(cur, sizeof cur, "%s", reg);
            r = gen_mark(g, "%s", reg);
            if (r)
                break;
        }
        switch (it->cls) {
        case HLO_CLS_MATMUL:
        case HLO_CLS_CONV:
            r = do_matmul(&L, it);
            if (!r && (it->velem || it->vtrans || it->vred))
                r = do_vector(&L, it, 1);
            break;
        case HLO_CLS_VECTOR:
            r = do_vector(&L, it, 0);
            break;
        case HLO_CLS_DATA:
        case HLO_CLS_CUSTOM:
            r = do_data(&L, it);
            break;
        case HLO_CLS_COLL:
            r = do_coll(&L, it);
            break;
        case HLO_CLS_WAIT:
            if (it->token > 0 && it->token <= p->ntokens && fences[it->token].sem >= 0)
                r = gen_fence_wait(g, &fences[it->token]);
            break;
        default:
            break;
        }
    }
    /* collectives started and never waited for */
    for (int i = 1; i <= p->ntokens && !r; i++)
        if (fences[i].sem >= 0)
            r = gen_fence_wait(g, &fences[i]);
    free(fences);
    if (r || gen_drain(g)) {
        err *ge = gen_err(g);
        if (ge && e)
            *e = *ge;
        gen_free(g);
        return -1;
    }
    return gen_finish(g, e);
}
