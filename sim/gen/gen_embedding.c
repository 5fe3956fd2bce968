/* gen_embedding.c - `tpusim gen embedding`: DLRM-like embedding lookups on the SparseCores,
 * emitted as chip 0's program of an SPMD run (every chip runs the same shape of work).
 *
 * Model: --tables tables of --rows rows x --dim elements of --dtype, sharded whole across
 * --chips chips (table t on chip t mod chips; chip 0, the most loaded, holds
 * tl = ceil(tables / chips)). Each sample of the global --batch looks up --lookups rows of
 * every table and sums them (sum pooling). Forward, per chip:
 *   1. for each local table, sc.gather of the global batch in chunks that fit half a spmem
 *      slot set, each chunk copied to VMEM (sc.s2v) into the pooled buffer
 *      [table][sample][dim] fp32 (pooled = batch x tl x dim x 4 bytes);
 *   2. ici.alltoall of the pooled buffer over every torus axis (when chips > 1): each chip
 *      keeps the vectors of its batch / chips samples for every table;
 *   3. dma.v2h of the received vectors to HBM (the dense part's input).
 * Training adds the backward: dma.h2v of the vectors' gradients, the reverse all-to-all, and
 * per chunk sc.v2s then sc.scatter (scatter-add of each sample's gradient into its rows).
 * The SparseCores run chunks in groups of min(sc.count, 8), one chunk per SparseCore, over
 * 2 x group spmem slots (double-buffered), ordered by semaphores (docs/generators.md). */
#include <string.h>

#include "gen.h"

#define EMB_SEM_BASE  8 /* fixed semaphores 8..8+3x16-1: per-slot chains (gen.h) */
#define EMB_MAX_GROUP 8

/* Operand slots of the sc.* rows of isa_ops.def, resolved once per trace. */
typedef struct emb_slots {
    int table, trows, dim, dtype, lookups, segs, spmem; /* gather, scatter */
    int cp_spmem, cp_vmem, cp_bytes;                    /* s2v, v2s */
} emb_slots;

static void emb_resolve(emb_slots *s)
{
    unsigned g = ISA_OP_SC_GATHER, c = ISA_OP_SC_S2V;
    s->table = isa_arg_index(g, "table");
    s->trows = isa_arg_index(g, "trows");
    s->dim = isa_arg_index(g, "dim");
    s->dtype = isa_arg_index(g, "dtype");
    s->lookups = isa_arg_index(g, "lookups");
    s->segs = isa_arg_index(g, "segs");
    s->spmem = isa_arg_index(g, "spmem");
    s->cp_spmem = isa_arg_index(c, "spmem");
    s->cp_vmem = isa_arg_index(c, "vmem");
    s->cp_bytes = isa_arg_index(c, "bytes");
}

static uint64_t emb_local_tables(const gen_opts *o)
{
    uint64_t chips = o->chips ? o->chips : 1;
    return (o->tables + chips - 1) / chips;
}

void gen_embedding_count(const gen_opts *o, gen_embedding_counts *n)
{
    uint64_t tl = emb_local_tables(o), chips = o->chips ? o->chips : 1;
    uint64_t rows = o->batch * o->lookups; /* rows looked up per table */
    uint64_t rb = gen_dt_bytes(o->dtype, o->dim);
    uint64_t pooled = o->batch * tl * o->dim * 4;
    int t = o->training != 0;
    /* gather: (lookups - 1) adds per sample and element; scatter-add: one per row element */
    n->flops = tl * ((rows - o->batch) * o->dim + (t ? rows * o->dim : 0));
    /* gather reads rows x rb; scatter-add reads and writes them; DMA of the pooled vectors
     * out (and of their gradients in) */
    n->hbm_bytes = tl * rows * rb * (1 + 2 * (uint64_t)t) + pooled * (1 + (uint64_t)t);
    n->ici_bytes = chips > 1 ? pooled * (1 + (uint64_t)t) : 0;
}

typedef struct emb {
    gen *g;
    const gen_opts *o;
    emb_slots sl;
    uint64_t tl, cs;       /* local tables, samples per chunk */
    uint64_t nslot, group; /* spmem slots, chunks per group */
    uint64_t slot_bytes;   /* spmem per slot */
    uint64_t *tbl;         /* HBM address of each local table */
    uint64_t pooled_vmem;  /* VMEM address of the pooled buffer */
    uint64_t nchunks;      /* per pass: tl x ceil(batch / cs) */
} emb;

/* Chunk k of a pass: table k / per_table, samples [s0, s0 + n). */
static void emb_chunk(const emb *m, uint64_t k, uint64_t *t, uint64_t *s0, uint64_t *n)
{
    uint64_t per = (m->o->batch + m->cs - 1) / m->cs;
    *t = k / per;
    *s0 = k % per * m->cs;
    *n = m->o->batch - *s0 < m->cs ? m->o->batch - *s0 : m->cs;
}

/* The table operation of chunk k (gather or scatter) into/out of its slot. */
static int emb_rows_op(emb *m, int op, uint64_t k, unsigned wait, unsigned signal)
{
    uint64_t t, s0, n;
    emb_chunk(m, k, &t, &s0, &n);
    isa_insn in = {.op = (uint16_t)op, .wait = (uint16_t)wait, .signal = (uint16_t)signal};
    in.arg[m->sl.table] = m->tbl[t];
    in.arg[m->sl.trows] = m->o->rows;
    in.arg[m->sl.dim] = m->o->dim;
    in.arg[m->sl.dtype] = m->o->dtype;
    in.arg[m->sl.lookups] = m->o->lookups;
    in.arg[m->sl.segs] = n;
    in.arg[m->sl.spmem] = k % m->nslot * m->slot_bytes;
    return gen_put(m->g, &in);
}

/* The spmem <-> VMEM copy of chunk k. */
static int emb_copy_op(emb *m, int op, uint64_t k, unsigned wait, unsigned signal)
{
    uint64_t t, s0, n, row = m->o->dim * 4;
    emb_chunk(m, k, &t, &s0, &n);
    isa_insn in = {.op = (uint16_t)op, .wait = (uint16_t)wait, .signal = (uint16_t)signal};
    in.arg[m->sl.cp_spmem] = k % m->nslot * m->slot_bytes;
    in.arg[m->sl.cp_vmem] = m->pooled_vmem + (t * m->o->batch + s0) * row;
    in.arg[m->sl.cp_bytes] = n * row;
    return gen_put(m->g, &in);
}

/* One pass over every chunk, in groups of m->group chunks (one per SparseCore): first the
 * group's `first` ops, then its `second` ops. Per slot, semaphore A (first done) orders
 * second after first, and B (second done) orders the slot's next first after this second;
 * the slot's last second signals C instead, which a sync.wait per slot consumes (the
 * dispatcher runs sync.wait ahead of the queues: waiting there on B would take the count a
 * queued first needs). The pass ends with every SparseCore instruction complete and every
 * count paired.
 *   forward:  first = sc.gather (rows -> slot), second = sc.s2v (slot -> VMEM)
 *   backward: first = sc.v2s (VMEM -> slot),    second = sc.scatter (slot -> rows) */
static int emb_pass(emb *m, int backward)
{
    gen *g = m->g;
    for (uint64_t g0 = 0; g0 < m->nchunks; g0 += m->group) {
        uint64_t g1 = g0 + m->group < m->nchunks ? g0 + m->group : m->nchunks;
        for (int half = 0; half < 2; half++)
            for (uint64_t k = g0; k < g1; k++) {
                unsigned slot = (unsigned)(k % m->nslot);
                unsigned a = EMB_SEM_BASE + slot + 1;
                unsigned b = EMB_SEM_BASE + (unsigned)m->nslot + slot + 1;
                unsigned done = k + m->nslot >= m->nchunks ? b + (unsigned)m->nslot : b;
                int rc;
                if (!half) {
                    unsigned w = k >= m->nslot ? b : 0;
                    rc = backward ? emb_copy_op(m, ISA_OP_SC_V2S, k, w, a)
                                  : emb_rows_op(m, ISA_OP_SC_GATHER, k, w, a);
                } else {
                    rc = backward ? emb_rows_op(m, ISA_OP_SC_SCATTER, k, a, done)
                                  : emb_copy_op(m, ISA_OP_SC_S2V, k, a, done);
                }
                if (rc)
                    return -1;
            }
    }
    uint64_t used = m->nchunks < m->nslot ? m->nchunks : m->nslot;
    for (uint64_t slot = 0; slot < used; slot++) {
        isa_insn w = {.op = ISA_OP_SYNC_WAIT,
                      .wait = (uint16_t)(EMB_SEM_BASE + 2 * m->nslot + slot + 1)};
        if (gen_put(g, &w))
            return -1;
    }
    return 0;
}

/* The all-to-all of the pooled buffer over every axis, alone in its region. */
static int emb_alltoall(emb *m, unsigned axes, uint64_t bytes, const char *region)
{
    if (!axes)
        return 0;
    gen_fence f = {.sem = -1};
    return gen_mark(m->g, "%s", region) ||
           gen_coll(m->g, ISA_OP_ICI_ALLTOALL, axes, bytes, ISA_DT_FP32, &f) ||
           gen_fence_wait(m->g, &f);
}

/* A DMA of the pooled buffer, waited for. */
static int emb_dma(emb *m, int to_hbm, uint64_t hbm, uint64_t bytes)
{
    gen_fence f = {.sem = -1};
    unsigned sig = gen_fence_sig(m->g, &f);
    return gen_dma(m->g, to_hbm, hbm, m->pooled_vmem, bytes, 0, 0, 0, sig) ||
           gen_fence_wait(m->g, &f);
}

int gen_model_embedding(gen *g, const gen_opts *o)
{
    const cfg *c = gen_cfg(g);
    err *e = gen_err(g);
    uint64_t chips = o->chips ? o->chips : 1;
    if (!c->sc_count)
        return err_set(e, "gen embedding: %s has no SparseCores (sc.count = 0)", c->chip_name);
    if (o->dtype != ISA_DT_BF16 && o->dtype != ISA_DT_FP32)
        return err_set(e, "gen embedding: --dtype %s: tables are bf16 or fp32",
                       isa_dtype_name(o->dtype));
    unsigned axes = 0;
    if (chips > 1) {
        unsigned d[3];
        int nd = cfg_parse_dims(c->ici_dims, d);
        uint64_t p = 1;
        for (int i = 0; i < nd; i++)
            p *= d[i];
        if (nd <= 0 || p != chips)
            return err_set(e,
                           "gen embedding: --chips %llu but ici.dims=%s has %llu chips (set -p "
                           "ici.dims=...)",
                           (unsigned long long)chips, c->ici_dims, (unsigned long long)p);
        axes = (1u << nd) - 1;
    }
    if (o->batch % chips)
        return err_set(e, "gen embedding: --batch %llu is not divisible by --chips %llu",
                       (unsigned long long)o->batch, (unsigned long long)chips);
    if (o->lookups > UINT32_MAX || o->dim > UINT32_MAX)
        return err_set(e, "gen embedding: --lookups and --dim must be below 2^32");

    emb m = {.g = g, .o = o};
    emb_resolve(&m.sl);
    m.tl = emb_local_tables(o);
    m.group = c->sc_count < EMB_MAX_GROUP ? c->sc_count : EMB_MAX_GROUP;
    m.nslot = 2 * m.group;
    m.slot_bytes = c->sc_count * c->sc_spmem_bytes / m.nslot;
    m.cs = m.slot_bytes / (o->dim * 4);
    if (!m.cs)
        return err_set(e,
                       "gen embedding: --dim %llu: one fp32 row does not fit a spmem slot of "
                       "%llu bytes",
                       (unsigned long long)o->dim, (unsigned long long)m.slot_bytes);
    if (m.cs > o->batch)
        m.cs = o->batch;
    m.nchunks = m.tl * ((o->batch + m.cs - 1) / m.cs);
    uint64_t pooled = o->batch * m.tl * o->dim * 4;
    if (pooled > gen_vmem_free_bytes(g))
        return err_set(e,
                       "gen embedding: the pooled vectors (%llu bytes: batch x tables per chip x "
                       "dim x 4) exceed VMEM (%llu bytes); reduce --batch",
                       (unsigned long long)pooled, (unsigned long long)gen_vmem_free_bytes(g));
    uint64_t tbl[64], out = 0, grad = 0;
    if (m.tl > sizeof tbl / sizeof tbl[0])
        return err_set(e, "gen embedding: more than %zu tables per chip",
                       sizeof tbl / sizeof tbl[0]);
    m.tbl = tbl;
    uint64_t tbytes = o->rows * gen_dt_bytes(o->dtype, o->dim);
    for (uint64_t t = 0; t < m.tl; t++)
        if (gen_hbm_alloc(g, tbytes, &tbl[t]))
            return -1;
    if (gen_hbm_alloc(g, pooled, &out) || (o->training && gen_hbm_alloc(g, pooled, &grad)) ||
        gen_vmem_alloc(g, pooled, &m.pooled_vmem))
        return -1;

    if (gen_mark(g, "embedding/lookup") || emb_pass(&m, 0) ||
        emb_alltoall(&m, axes, pooled, "embedding/alltoall") || gen_mark(g, "embedding/out") ||
        emb_dma(&m, 1, out, pooled))
        return -1;
    if (!o->training)
        return 0;
    return gen_mark(g, "embedding/grad_in") || emb_dma(&m, 0, grad, pooled) ||
           emb_alltoall(&m, axes, pooled, "embedding/grad_alltoall") ||
           gen_mark(g, "embedding/update") || emb_pass(&m, 1);
}
