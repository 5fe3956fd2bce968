/* mxu.c - one weight-stationary R x C systolic array (an MXU): weight tiles shift in over a
 * load path into one of mxu.weight_buffers buffers, operand rows stream through the array at a
 * datatype rate, results leave after the array's R+C-1 cycle fill/drain skew. Timing only: no
 * data is computed. One event per MXU, armed for its next completion (an ldw's or a matmul's),
 * never per row or cycle; a refused instruction is woken through the core (unit_wake_at) at the
 * time its resources free, which the refusal already knows.
 *
 * Timing (R = mxu.rows, C = mxu.cols, cyc = ps per cycle, all times in ps):
 *
 *   mxu.ldw k x n, dtype dt (k <= R, n <= C checked by the core):
 *     L     = max(ceil(k / mxu.weight_load_rows) x cyc, vmem(k x n x bytes(dt)))
 *     It occupies the load path for L and completes (signals) at start + L. Rows shift in
 *     weight_load_rows per cycle (TPU v1: 256 cycles for a 256 x 256 tile at 1 row/cycle).
 *     It may start when the load path is idle and its target buffer is free:
 *       1 buffer:  the target is the array's only buffer, free once the last matmul on it has
 *                  fully completed (stream + drain): the cells are overwritten in place.
 *       2 buffers: the target is the buffer not holding the latest weights; free once the
 *                  last matmul that used it has finished streaming. The weight switch travels
 *                  down the array with the operand wavefront (TPU v1 double-buffered weights),
 *                  so the drain skew of the old tile overlaps the shift-in of the new one.
 *
 *   mxu.matmul m rows, dtype dt, on the latest k x n weights:
 *     may start when the streaming port is free and the latest ldw has completed.
 *     S     = ceil(m / rate(dt)) cycles           rate = cfg_mxu_rate (rows/cycle)
 *     Seff  = max(S x cyc, vmem(m k bytes(dt) + m n 4 (+ m n 4 if acc)))
 *     port busy [start, start + Seff)             busy_ps += Seff, stall_vmem += Seff - S cyc
 *     done  = start + Seff + (R + C - 1) x cyc    the skew through the physical array,
 *                                                 whatever k and n are
 *     The next matmul may stream as soon as the port frees, so back-to-back matmuls overlap
 *     their fill/drain; the skew is exposed only when the pipeline empties (dependency,
 *     weight change with a single buffer, idle). Completions are therefore in start order.
 *     flops += 2 m k n; util_cells_ps += k n S cyc (useful MAC cells x time), so a tile with
 *     k < R or n < C takes as long as a full one but shows proportionally lower cell use.
 *
 * Checks at dispatch (mxu_check): the tile fits the array, the datatype has an MXU rate,
 * VMEM ranges (weights k n bytes(dt), operand m k bytes(dt), results m n 4), a matmul's
 * weights are loaded and of its datatype, in dispatch order (the chk_* state, apart from the
 * timing state). Work: flops = 2 m k n, ideal_ps = flops / peak FLOP/s of dt.
 *
 * vmem(b) is the time b bytes take at the instruction's VMEM bandwidth share (vmem_share);
 * the share is held for the instruction's occupancy (load path or streaming port), see
 * vmem.h. */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernel.h"
#include "unit.h"
#include "vmem.h"
#include "umath.h"

/* A matmul streamed into the array, waiting for its last result to drain out. */
typedef struct mxu {
    unit u; /* first: the common unit state */
    uint64_t rows, cols;
    unsigned nbuf;
    double load_rows;  /* weight rows shifted in per cycle */
    uint64_t drain_ps; /* (R + C - 1) cycles */

    /* Weights: buffer of the latest ldw, its shape, and when each buffer is released. */
    unsigned cur_buf;
    uint64_t k, n;
    uint64_t buf_free_ps[2];

    /* One event for both completions below: armed for the earlier of the ldw's and the oldest
     * matmul's. */
    kern_event *ev;

    /* Load path: at most one ldw in flight. */
    int load_busy; /* an ldw has not yet been reported done */
    uint32_t load_token;
    uint64_t load_done_ps; /* completion of the latest ldw */

    /* Streaming port. */
    uint64_t port_free_ps; /* end of the latest stream */
    uint64_t last_done_ps; /* completion of the latest matmul */

    /* Matmuls draining, FIFO in completion order. */
    unit_ring ring;

    int asked;       /* the head instruction has been asked about since its predecessor */
    uint64_t ask_ps; /* first time it was asked */

    /* The latest ldw in dispatch order, for checks and FLOP counts (mxu_check). */
    uint64_t chk_k, chk_n;
    unsigned chk_dtype;
    int chk_loaded;
    double peak_ps_per_flop[ISA_DTYPE_COUNT]; /* 0 for a datatype without an MXU rate */

    /* Counters. */
    uint64_t loads, matmuls, stream_cycles, load_busy_ps, load_stall_vmem_ps, drain_exposed_ps,
        weight_wait_ps, buffer_wait_ps, util_cells_ps;
    uint64_t macs[ISA_DTYPE_COUNT]; /* MACs done per datatype (energy model) */
} mxu;

static const stats_def mxu_defs[] = {
    STATS_U64(mxu, loads, "weight_loads", "insns", "mxu.ldw instructions"),
    STATS_COUNTER(mxu, matmuls, "insns", "mxu.matmul instructions"),
    STATS_COUNTER(mxu, stream_cycles, "cycles", "ceil(m / rate) summed over matmuls"),
    STATS_COUNTER(mxu, load_busy_ps, "ps", "time the weight-load path was busy"),
    STATS_COUNTER(mxu, load_stall_vmem_ps, "ps",
                  "part of load_busy_ps added by limited VMEM bandwidth (weight loads)"),
    STATS_COUNTER(mxu, drain_exposed_ps, "ps",
                  "fill/drain skew not hidden behind a following stream"),
    STATS_COUNTER(mxu, weight_wait_ps, "ps",
                  "time matmuls waited for their weights after the port was free"),
    STATS_COUNTER(mxu, buffer_wait_ps, "ps", "time weight loads waited for a free weight buffer"),
    STATS_COUNTER(mxu, util_cells_ps, "cell.ps", "useful MAC cells x streaming time"),
};

/* ceil(x) that ignores floating-point noise just above an integer (m / 0.1 etc.). */
static uint64_t mxu_ceil(double x)
{
    double f = floor(x);
    return (uint64_t)(x - f > 1e-9 * (x > 1 ? x : 1) ? f + 1 : f);
}

/* Arm the event for the earliest pending step (the kernel keeps an earlier notification,
 * which then re-arms). */
static void mxu_arm(mxu *m)
{
    uint64_t t = UINT64_MAX;
    if (m->load_busy)
        t = m->load_done_ps;
    const unit_flight *f = unit_ring_first(&m->ring);
    if (f && f->done_ps < t)
        t = f->done_ps;
    if (t != UINT64_MAX)
        kern_notify_at(m->ev, t);
}

/* Every step due by now: the ldw's load time elapsed (reported done; the load path is idle
 * from here on) and matmuls whose results drained (reported in order, each leaving the ring
 * before unit_finish). Each only records: the core issues in the delta cycle after the
 * instant. */
static void mxu_event(void *ctx)
{
    mxu *m = ctx;
    uint64_t now = kern_now();
    if (m->load_busy && now >= m->load_done_ps) {
        m->load_busy = 0;
        m->u.insns++;
        unit_finish(&m->u, m->load_token);
    }
    unit_ring_finish_due(&m->ring, &m->u, now);
    mxu_arm(m);
}

/* Append a draining matmul; the ring grows only if R + C + 2 entries were not enough
 * (never, as each stream lasts at least one cycle). */
static void mxu_push(mxu *m, uint64_t done_ps, uint32_t token)
{
    (void)unit_ring_push(&m->ring, done_ps, token); /* on -1 the run is reported as failed */
}

static void mxu_fini(unit *u)
{
    mxu *m = (mxu *)u;
    kern_event_free(m->ev);
    unit_ring_fini(&m->ring);
}

static int mxu_init(unit *u, err *e)
{
    mxu *m = (mxu *)u;
    const cfg *c = u->env->cfg;
    m->rows = c->mxu_rows;
    m->cols = c->mxu_cols;
    m->nbuf = (unsigned)c->mxu_weight_buffers;
    assert(m->nbuf == 1 || m->nbuf == 2);
    assert(m->rows > 0 && m->cols > 0 && c->mxu_weight_load_rows > 0);
    m->load_rows = c->mxu_weight_load_rows;
    if (unit_ring_init(&m->ring, (unsigned)(m->rows + m->cols + 2)))
        return err_setk(e, ERR_NOMEM, "mxu: out of memory");
    m->cur_buf = m->nbuf - 1; /* the first ldw goes to buffer 0 */
    m->ev = kern_event_new(mxu_event, m);
    m->drain_ps = unit_cycles_to_ps(&m->u, (double)(m->rows + m->cols - 1));
    for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++) {
        double peak = cfg_peak_flops(c, dt);
        m->peak_ps_per_flop[dt] = peak > 0 ? 1e12 / peak : 0;
    }
    return 0;
}

static int mxu_check_dtype(const mxu *m, unsigned dt, err *e)
{
    if (cfg_mxu_rate(m->u.env->cfg, dt) > 0)
        return 0;
    return err_set(e, "datatype %s not supported by %s's MXU", isa_dtype_name(dt),
                   m->u.env->cfg->chip_name);
}

static int mxu_check(unit *u, const isa_insn *in, unit_work *w, err *e)
{
    mxu *m = (mxu *)u;
    const uint64_t *a = in->arg;
    if (in->op == ISA_OP_MXU_LDW) {
        uint64_t k = a[ISA_LDW_K], n = a[ISA_LDW_N];
        unsigned dt = (unsigned)a[ISA_LDW_DTYPE];
        if (k > m->rows || n > m->cols)
            return err_set(
                e, "tile %" PRIu64 " x %" PRIu64 " larger than the %" PRIu64 " x %" PRIu64 " array",
                k, n, m->rows, m->cols);
        if (mxu_check_dtype(m, dt, e) ||
            unit_check_vmem(u, "weights", a[ISA_LDW_VMEM], isa_dtype_bytes(dt, k * n), e))
            return -1;
        m->chk_k = k;
        m->chk_n = n;
        m->chk_dtype = dt;
        m->chk_loaded = 1;
        return 0;
    }
    unsigned dt = (unsigned)a[ISA_MM_DTYPE];
    uint64_t mm = a[ISA_MM_M];
    if (!m->chk_loaded)
        return err_set(e, "mxu %u has no weights loaded", u->index);
    if (dt != m->chk_dtype)
        return err_set(e, "dtype %s differs from the loaded weights' %s", isa_dtype_name(dt),
                       isa_dtype_name(m->chk_dtype));
    if (mxu_check_dtype(m, dt, e) ||
        unit_check_vmem(u, "operand", a[ISA_MM_SRC],
                        isa_dtype_bytes(dt, stats_mul_sat(mm, m->chk_k)), e) ||
        unit_check_vmem(u, "result", a[ISA_MM_DST], stats_mul_sat(stats_mul_sat(mm, m->chk_n), 4),
                        e))
        return -1;
    w->flops = 2 * mm * m->chk_k * m->chk_n;
    w->ideal_ps = (uint64_t)((double)w->flops * m->peak_ps_per_flop[dt] + 0.5);
    return 0;
}

/* The buffer the next ldw writes: the only one, or the one not holding the latest weights. */
static unsigned mxu_target(const mxu *m)
{
    return m->nbuf == 1 ? 0 : m->cur_buf ^ 1u;
}

static int mxu_can_start(unit *u, const isa_insn *in)
{
    mxu *m = (mxu *)u;
    uint64_t now = kern_now();
    int ok;
    if (!m->asked) {
        m->asked = 1;
        m->ask_ps = now;
    }
    /* Refused: the time it can start, as nothing else starts on this MXU meanwhile (in-order
     * queue): an ldw needs the load path idle and its target buffer free, a matmul the port
     * free and the latest ldw done. */
    uint64_t at;
    if (in->op == ISA_OP_MXU_LDW)
        at = um_max(m->load_busy ? m->load_done_ps : now, m->buf_free_ps[mxu_target(m)]);
    else
        at = um_max(m->port_free_ps, m->load_done_ps);
    ok = now >= at && !(in->op == ISA_OP_MXU_LDW && m->load_busy);
    if (!ok) /* at == now: asked in the timed phase of the instant the load path frees,
              * before this MXU's event for it ran (the core asks only in the delta cycles
              * after; a host issuing from timed callbacks may not): woken after that phase */
        unit_wake_at(u, at > now ? at : now);
    return ok;
}

/* mxu.ldw: see the timing block at the top of the file. */
static void mxu_start_ldw(mxu *m, const isa_insn *in, uint32_t token, uint64_t now)
{
    uint64_t k = in->arg[ISA_LDW_K], n = in->arg[ISA_LDW_N];
    isa_dtype dt = (isa_dtype)in->arg[ISA_LDW_DTYPE];
    assert(k >= 1 && k <= m->rows && n >= 1 && n <= m->cols);
    assert(!m->load_busy);
    unsigned b = mxu_target(m);
    assert(now >= m->buf_free_ps[b]);
    /* Time this ldw waited for its buffer rather than for the load path. */
    uint64_t ready = um_max(m->ask_ps, m->load_done_ps);
    if (m->buf_free_ps[b] > ready)
        m->buffer_wait_ps += m->buf_free_ps[b] - ready;

    uint64_t shift_ps = unit_cycles_to_ps(&m->u, (double)mxu_ceil((double)k / m->load_rows));
    uint64_t wbytes = isa_dtype_bytes(dt, k * n);
    uint64_t dur = vmem_share(m->u.env->vmem, wbytes, shift_ps, now);
    m->u.vmem_rd_bytes = stats_add_sat(m->u.vmem_rd_bytes, wbytes, NULL);
    /* the load path's VMEM stall is part of load_busy_ps, not of the port's busy_ps, so it is
     * counted apart from the unit's stall_vmem_ps (which is part of busy_ps) */
    m->load_stall_vmem_ps += dur - shift_ps;
    m->load_busy_ps += dur;
    m->load_busy = 1;
    m->load_token = token;
    m->load_done_ps = stats_add_sat(now, dur, NULL);
    m->cur_buf = b;
    m->k = k;
    m->n = n;
    m->loads++;
}

/* mxu.matmul: see the timing block at the top of the file. */
static void mxu_start_matmul(mxu *m, const isa_insn *in, uint32_t token, uint64_t now)
{
    uint64_t rows = in->arg[ISA_MM_M];
    isa_dtype dt = (isa_dtype)in->arg[ISA_MM_DTYPE];
    double rate = cfg_mxu_rate(m->u.env->cfg, dt);
    assert(rate > 0 && rows >= 1 && m->k >= 1);
    assert(now >= m->port_free_ps && now >= m->load_done_ps);
    /* Time this matmul waited for its weights rather than for the port. */
    uint64_t ready = um_max(m->ask_ps, m->port_free_ps);
    if (m->load_done_ps > ready)
        m->weight_wait_ps += m->load_done_ps - ready;

    uint64_t s = mxu_ceil((double)rows / rate);
    uint64_t s_ps = unit_cycles_to_ps(&m->u, (double)s);
    uint64_t res = rows * m->n * 4, out = res * (in->arg[ISA_MM_ACC] ? 2 : 1);
    uint64_t opnd = isa_dtype_bytes(dt, rows * m->k);
    uint64_t seff = vmem_share(m->u.env->vmem, opnd + out, s_ps, now);
    /* VMEM traffic: operands and (accumulating) old results read, results written. */
    m->u.vmem_rd_bytes = stats_add_sat(m->u.vmem_rd_bytes, opnd + out - res, NULL);
    m->u.vmem_wr_bytes = stats_add_sat(m->u.vmem_wr_bytes, res, NULL);
    m->macs[dt] = stats_add_sat(m->macs[dt], rows * m->k * m->n, NULL);
    uint64_t done = stats_add_sat(stats_add_sat(now, seff, NULL), m->drain_ps, NULL);
    /* Drain exposed = growth of the union of [start, done] intervals minus the stream. */
    m->drain_exposed_ps += done - um_max(now, m->last_done_ps) - seff;
    m->u.stall_vmem_ps += seff - s_ps;
    m->u.busy_ps += seff;
    m->port_free_ps = stats_add_sat(now, seff, NULL);
    m->last_done_ps = done;
    /* 1 buffer: released at full completion; 2 buffers: when its last stream ends. */
    m->buf_free_ps[m->cur_buf] = m->nbuf == 1 ? done : m->port_free_ps;
    m->matmuls++;
    m->stream_cycles += s;
    m->u.flops = stats_add_sat(m->u.flops, 2 * rows * m->k * m->n, NULL);
    double cells = (double)m->k * (double)m->n * (double)s_ps;
    m->util_cells_ps =
        stats_add_sat(m->util_cells_ps, cells >= 1.8e19 ? UINT64_MAX : (uint64_t)cells, NULL);
    mxu_push(m, done, token);
}

static void mxu_start(unit *u, const isa_insn *in, uint32_t token)
{
    mxu *m = (mxu *)u;
    uint64_t now = kern_now();
    if (!m->asked)
        m->ask_ps = now;
    m->asked = 0;
    if (in->op == ISA_OP_MXU_LDW)
        mxu_start_ldw(m, in, token, now);
    else {
        assert(in->op == ISA_OP_MXU_MATMUL);
        mxu_start_matmul(m, in, token, now);
    }
    mxu_arm(m);
}

/* Fraction of the array's cells doing useful MACs while the port streams. */
static double mxu_cell_util(const void *ctx)
{
    const mxu *m = ctx;
    double denom = (double)m->rows * (double)m->cols * (double)m->u.busy_ps;
    return denom > 0 ? (double)m->util_cells_ps / denom : 0.0;
}

static void mxu_stats(unit *u, stats_reg *r)
{
    mxu *m = (mxu *)u;
    for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++) {
        char nm[40]; /* the registry copies names */
        snprintf(nm, sizeof nm, "macs_%s", isa_dtype_name((isa_dtype)dt));
        stats_u64(r, u->name, nm, "MAC", "multiply-accumulates of this datatype", &m->macs[dt]);
    }
    stats_formula(r, u->name, "cell_util", "",
                  "util_cells_ps / (rows x cols x busy_ps): array fraction doing useful MACs",
                  mxu_cell_util, m);
}

const unit_ops mxu_ops =
    UNIT_OPS(mxu, mxu, .defs = mxu_defs, .ndefs = STATS_NDEFS(mxu_defs), .stats = mxu_stats);
