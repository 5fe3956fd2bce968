/* sc.c - the chip's SparseCores: sc.count embedding engines fed from one in-order queue, each
 * running one instruction at a time (a new one starts on any idle SparseCore), reading and
 * writing embedding rows through the chip's shared HBM model, so their traffic contends with
 * DMA. spmem, the SparseCores' own memory, is one address space of sc.count x sc.spmem_bytes
 * (the megacore approximation applied to SparseCores). Timing only: no data is computed; row
 * indices are data, so the model reads pseudo-random rows of the table (a fixed sequence per
 * unit, so runs are deterministic). One event per instruction.
 *
 * Timing (cyc = ps per chip cycle; rb = bytes of one row of `dim` elements of dtype;
 * R = segs x lookups rows; bpc = sc.bytes_per_cycle; all times ps):
 *
 *   t0        = start + sc.overhead_ns                      per-request (instruction) set-up
 *   sc.gather, sc.gather.mean:
 *     hbm     = (latest hbm_access completion of the R row reads, all issued at t0) - t0
 *     mem     = max(hbm, ceil(R rb / bpc) cyc)              HBM, or the SparseCore's port
 *     reduce  = ceil(R dim / sc.lanes) cyc                  one lane-add per element read
 *               (+ ceil(segs dim / sc.lanes) cyc for the mean's divide)
 *     end     = t0 + max(mem, reduce)
 *   sc.scatter (scatter-add):
 *     hbm     = (latest completion of R row reads and R row writes, each row's write issued
 *               with its read at t0; the HBM model orders them on its buses) - t0
 *     mem     = max(hbm, ceil(2 R rb / bpc) cyc);  reduce = ceil(R dim / sc.lanes) cyc
 *     end     = t0 + max(mem, reduce)
 *   sc.s2v, sc.v2s (bytes b):
 *     end     = t0 + vmem_share_at(b, ceil(b / bpc) cyc, t0)   the VMEM share, or the port
 *
 *   flops: gather (R - segs) dim adds (each segment's first row is a copy), gather.mean
 *   R dim (adds plus segs dim divides), scatter R dim adds; copies 0. bytes (HBM): gather
 *   R rb, scatter 2 R rb, copies 0. stall_hbm += max(0, hbm - max(port, reduce)): the time
 *   HBM (its bandwidth, latency or contention) adds beyond the SparseCore's own limits.
 *   busy_ps = time with at least one SparseCore busy. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>

#include "hbm.h"
#include "kernel.h"
#include "unit.h"
#include "vmem.h"
#include "umath.h"

/* Operand slots (isa_ops.def ISA_SC_ARGS and the copies), checked by tests/test_sc.c. */
enum { SC_TABLE, SC_TROWS, SC_DIM, SC_DTYPE, SC_LOOKUPS, SC_SEGS, SC_SPMEM };
enum { SC_CP_SPMEM, SC_CP_VMEM, SC_CP_BYTES };

typedef struct sc sc;

/* One SparseCore. Its event fires when its instruction ends. */
typedef struct sc_core {
    sc *s;
    kern_event *ev;
    int busy;
    uint32_t token;
} sc_core;

struct sc {
    unit u; /* first: the common unit state */
    unsigned ncores;
    uint64_t lanes, bytes_per_cycle, spmem_total, overhead_ps;
    sc_core *cores;
    unsigned nactive;
    uint64_t busy_since_ps;
    int refused;  /* can_start said no: wake the core when a SparseCore frees */
    uint64_t rng; /* row-index sequence */
    /* Counters. */
    uint64_t gathers, scatters, copies, rows, hbm_read, hbm_written, copy_bytes, reduce_ps;
};

static const stats_def sc_defs[] = {
    STATS_COUNTER(sc, gathers, "insns", "sc.gather and sc.gather.mean instructions"),
    STATS_COUNTER(sc, scatters, "insns", "sc.scatter instructions"),
    STATS_COUNTER(sc, copies, "insns", "sc.s2v and sc.v2s instructions"),
    STATS_COUNTER(sc, rows, "rows", "embedding rows gathered or scatter-added"),
    STATS_COUNTER(sc, hbm_read, "B", "bytes read from HBM"),
    STATS_COUNTER(sc, hbm_written, "B", "bytes written to HBM (scatter-add)"),
    STATS_COUNTER(sc, copy_bytes, "B", "bytes copied between spmem and VMEM"),
    STATS_COUNTER(sc, reduce_ps, "ps", "lane-limited reduce time, summed"),
};

/* splitmix64: the pseudo-random row sequence. */
static uint64_t sc_next(sc *s)
{
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void sc_core_event(void *ctx)
{
    sc_core *k = ctx;
    sc *s = k->s;
    assert(k->busy);
    k->busy = 0;
    s->u.insns++;
    if (--s->nactive == 0)
        s->u.busy_ps = stats_add_sat(s->u.busy_ps, kern_now() - s->busy_since_ps, NULL);
    unit_finish_wake(&s->u, k->token, &s->refused);
}

static void sc_fini(unit *u)
{
    sc *s = (sc *)u;
    for (unsigned i = 0; i < s->ncores; i++)
        kern_event_free(s->cores[i].ev);
    free(s->cores);
}

static int sc_init(unit *u, err *e)
{
    sc *s = (sc *)u;
    const cfg *c = u->env->cfg;
    if (!c->sc_count)
        return err_set(e, "sc: unit created on a chip with sc.count = 0");
    s->ncores = (unsigned)c->sc_count;
    s->lanes = c->sc_lanes;
    s->bytes_per_cycle = c->sc_bytes_per_cycle;
    s->spmem_total = c->sc_count * c->sc_spmem_bytes;
    s->overhead_ps = (uint64_t)(c->sc_overhead_ns * 1000.0 + 0.5);
    s->cores = calloc(s->ncores, sizeof *s->cores);
    if (!s->cores)
        return err_set(e, "sc: out of memory");
    for (unsigned i = 0; i < s->ncores; i++) {
        s->cores[i].s = s;
        s->cores[i].ev = kern_event_new(sc_core_event, &s->cores[i]);
    }
    return 0;
}

static int sc_check_spmem(const sc *s, uint64_t addr, uint64_t bytes, err *e)
{
    if (bytes <= s->spmem_total && addr <= s->spmem_total - bytes)
        return 0;
    return err_set(e,
                   "spmem range [0x%" PRIx64 ", 0x%" PRIx64 ") outside the %" PRIu64
                   "-byte spmem (sc.count x sc.spmem_bytes)",
                   addr, addr + bytes, s->spmem_total);
}

#define SC_MAX_ROWS (1ULL << 32)

/* Checks at dispatch: rows at most SC_MAX_ROWS; dim, trows, lookups and segs at least 1; the table
 * inside HBM; the segs fp32 rows inside spmem; copies inside spmem and VMEM. Work: flops and HBM
 * bytes as in the block at the top. */
static int sc_check(unit *u, const isa_insn *in, unit_work *w, err *e)
{
    sc *s = (sc *)u;
    const uint64_t *a = in->arg;
    if (in->op == ISA_OP_SC_S2V || in->op == ISA_OP_SC_V2S)
        return sc_check_spmem(s, a[SC_CP_SPMEM], a[SC_CP_BYTES], e) ||
                       unit_check_vmem(u, "copy", a[SC_CP_VMEM], a[SC_CP_BYTES], e)
                   ? -1
                   : 0;
    static const char *const names[] = {"trows", "dim", "lookups", "segs"};
    const unsigned slots[] = {SC_TROWS, SC_DIM, SC_LOOKUPS, SC_SEGS};
    for (unsigned i = 0; i < 4; i++)
        if (!a[slots[i]])
            return err_set(e, "operand '%s' = 0, must be at least 1", names[i]);
    uint64_t dim = a[SC_DIM], segs = a[SC_SEGS];
    uint64_t rb = isa_dtype_bytes((isa_dtype)a[SC_DTYPE], dim);
    uint64_t extent = stats_mul_sat(a[SC_TROWS], rb), hbm_bytes = u->env->hbm_bytes;
    if (extent > hbm_bytes || a[SC_TABLE] > hbm_bytes - extent)
        return err_set(e, "table [0x%" PRIx64 ", +%" PRIu64 ") outside the %" PRIu64 "-byte HBM",
                       a[SC_TABLE], extent, hbm_bytes);
    if (sc_check_spmem(s, a[SC_SPMEM], stats_mul_sat(stats_mul_sat(segs, dim), 4), e))
        return -1;
    uint64_t rows = segs * a[SC_LOOKUPS]; /* < 2^64: both < 2^32 */
    if (rows > SC_MAX_ROWS) /* one hbm_access per row: keep an instruction's work bounded */
        return err_set(e, "segs x lookups = %" PRIu64 " rows, more than %llu per instruction", rows,
                       (unsigned long long)SC_MAX_ROWS);
    uint64_t elems = stats_mul_sat(rows, dim);
    if (in->op == ISA_OP_SC_GATHER) {
        w->flops = elems - segs * dim;
        w->bytes = stats_mul_sat(rows, rb);
    } else if (in->op == ISA_OP_SC_GATHER_MEAN) {
        w->flops = elems;
        w->bytes = stats_mul_sat(rows, rb);
    } else {
        w->flops = elems;
        w->bytes = stats_mul_sat(stats_mul_sat(rows, rb), 2);
    }
    return 0;
}

static int sc_can_start(unit *u, const isa_insn *in)
{
    (void)in;
    sc *s = (sc *)u;
    if (s->nactive < s->ncores)
        return 1;
    s->refused = 1;
    return 0;
}

/* Gather or scatter-add of rows x rb bytes: issue every row's HBM access at t0 (a scatter-add
 * also its write); returns the time after t0 the last one completes. */
static uint64_t sc_rows(sc *s, const isa_insn *in, uint64_t rows, uint64_t rb, int scatter,
                        uint64_t t0)
{
    struct hbm *h = s->u.env->hbm;
    uint64_t table = in->arg[SC_TABLE], trows = in->arg[SC_TROWS], done = t0;
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t addr = table + sc_next(s) % trows * rb;
        done = um_max(done, hbm_access(h, addr, rb, 0, t0));
        if (scatter)
            done = um_max(done, hbm_access(h, addr, rb, 1, t0));
    }
    return done - t0;
}

static void sc_start(unit *u, const isa_insn *in, uint32_t token)
{
    sc *s = (sc *)u;
    sc_core *k = NULL;
    for (unsigned i = 0; i < s->ncores && !k; i++)
        if (!s->cores[i].busy)
            k = &s->cores[i];
    assert(k && "sc_start without an idle SparseCore (can_start was not asked)");
    uint64_t now = kern_now();
    uint64_t t0 = stats_add_sat(now, s->overhead_ps, NULL);
    const uint64_t *a = in->arg;
    uint64_t d;
    if (in->op == ISA_OP_SC_S2V || in->op == ISA_OP_SC_V2S) {
        uint64_t b = a[SC_CP_BYTES];
        uint64_t port = unit_cycles_to_ps(u, (double)um_cdiv(b, s->bytes_per_cycle));
        d = vmem_share_at(u->env->vmem, b, port, t0, now);
        s->copies++;
        s->copy_bytes = stats_add_sat(s->copy_bytes, b, NULL);
        uint64_t *vm = in->op == ISA_OP_SC_S2V ? &u->vmem_wr_bytes : &u->vmem_rd_bytes;
        *vm = stats_add_sat(*vm, b, NULL);
    } else {
        int scatter = in->op == ISA_OP_SC_SCATTER, mean = in->op == ISA_OP_SC_GATHER_MEAN;
        uint64_t dim = a[SC_DIM], segs = a[SC_SEGS], rows = segs * a[SC_LOOKUPS];
        uint64_t rb = isa_dtype_bytes((isa_dtype)a[SC_DTYPE], dim);
        uint64_t bytes = stats_mul_sat(stats_mul_sat(rows, rb), scatter ? 2 : 1);
        uint64_t port = unit_cycles_to_ps(u, (double)um_cdiv(bytes, s->bytes_per_cycle));
        uint64_t cyc = um_cdiv(stats_mul_sat(rows, dim), s->lanes);
        if (mean)
            cyc += um_cdiv(segs * dim, s->lanes);
        uint64_t reduce = unit_cycles_to_ps(u, (double)cyc);
        uint64_t hbm = sc_rows(s, in, rows, rb, scatter, t0);
        d = um_max(um_max(hbm, port), reduce);
        uint64_t own = um_max(port, reduce);
        u->stall_hbm_ps = stats_add_sat(u->stall_hbm_ps, hbm > own ? hbm - own : 0, NULL);
        u->bytes = stats_add_sat(u->bytes, bytes, NULL);
        s->rows = stats_add_sat(s->rows, rows, NULL);
        s->reduce_ps = stats_add_sat(s->reduce_ps, reduce, NULL);
        if (scatter) {
            s->scatters++;
            s->hbm_read = stats_add_sat(s->hbm_read, bytes / 2, NULL);
            s->hbm_written = stats_add_sat(s->hbm_written, bytes / 2, NULL);
            u->flops = stats_add_sat(u->flops, stats_mul_sat(rows, dim), NULL);
        } else {
            s->gathers++;
            s->hbm_read = stats_add_sat(s->hbm_read, bytes, NULL);
            u->flops =
                stats_add_sat(u->flops, stats_mul_sat(rows, dim) - (mean ? 0 : segs * dim), NULL);
        }
    }
    k->busy = 1;
    k->token = token;
    if (s->nactive++ == 0)
        s->busy_since_ps = now;
    kern_notify_at(k->ev, stats_add_sat(t0, d, NULL)); /* overflow: kernel.h */
}

const unit_ops sc_ops = UNIT_OPS(sc, sc, .defs = sc_defs, .ndefs = STATS_NDEFS(sc_defs));
