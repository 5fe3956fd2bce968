/* vpu.c - the chip's vector unit: the cores' vector units ganged as one megacore unit with three
 * pipelined pipes (VALU, transcendental, cross-lane), in-order issue from one queue, an op
 * issuing as soon as its own pipe is free. Timing only: no data is computed.
 *
 * Timing (cyc = ps per cycle, all times in ps, cores = chip.cores):
 *
 *   pack(dt)   = 1 for 32-bit types, else min(32 / bits(dt), vpu.max_pack)
 *                (bf16 2 if max_pack >= 2, 8-bit 4 if max_pack >= 4, int4 up to 8);
 *                v.cast packs at the wider of its two types (the smaller pack)
 *   vregs      = ceil(n / (vpu.sublanes x vpu.lanes x pack x cores))
 *   occupancy  VALU  (add sub mul max min fma select cast): vregs / vpu.valu_slots cycles
 *              trans (exp log rsqrt tanh):                  vregs x vpu.trans_cycles
 *              xlane reduce:    vregs x vpu.reduce_cycles    / vpu.xlane_units
 *              xlane transpose: vregs x vpu.transpose_cycles / vpu.xlane_units
 *   VMEM       read  n x bytes(dt) x inputs (fma, select 3; add sub mul max min 2; others 1)
 *              write n x bytes(out) (cast: `to`; reduce: ceil(n / width) elements, width 0 =
 *              vpu.lanes), at the pipe's VMEM share (vmem_share) from issue
 *   occ_eff    = max(occupancy x cyc, VMEM time)      stall_vmem += occ_eff - occupancy x cyc
 *   the pipe is free again at start + occ_eff (pipelined); the op completes at
 *   start + occ_eff + latency x cyc (vpu.latency, vpu.trans_latency, vpu.xlane_latency).
 *
 *   flops: add sub mul max min 1 per element, fma 2, transcendental 1 (one result per
 *   element, whatever its internal polynomial costs), reduce 1 (one combine per element),
 *   select cast transpose 0.
 *   busy_ps = union of the pipes' occupancy intervals (overlapping pipes count once).
 *
 * Each pipe has one event, armed for its oldest completion; within a pipe completions are in
 * start order (constant latency). A refused head op is woken through the core (unit_wake_at)
 * at the end of its pipe's occupancy. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernel.h"
#include "unit.h"
#include "vmem.h"
#include "umath.h"

typedef enum vpu_pipe_id { VPU_VALU, VPU_TRANS, VPU_XLANE, VPU_PIPES } vpu_pipe_id;

static const char *const vpu_pipe_names[VPU_PIPES] = {"valu", "trans", "xlane"};

typedef struct vpu vpu;

typedef struct vpu_pipe {
    vpu *v;
    kern_event *ev;
    uint64_t latency_ps;
    uint64_t free_ps; /* end of the latest op's occupancy */
    unit_ring ring;   /* ops past issue, FIFO in completion order */
    /* Counters. */
    uint64_t busy_ps, vregs, ops;
} vpu_pipe;

struct vpu {
    unit u;              /* first: the common unit state */
    uint64_t lane_elems; /* sublanes x lanes x cores: 32-bit elements per ganged vreg */
    unsigned max_pack;
    uint64_t busy_until_ps; /* latest end of any pipe's occupancy (for the union) */
    vpu_pipe pipe[VPU_PIPES];
};

static uint64_t vpu_pack(const vpu *v, isa_dtype dt)
{
    unsigned bits = isa_dtype_bits(dt);
    if (bits >= 32)
        return 1;
    unsigned p = 32 / bits;
    return p < v->max_pack ? p : v->max_pack;
}

static vpu_pipe_id vpu_pipe_of(isa_cost cost)
{
    switch (cost) {
    case ISA_COST_V_TRANS:
        return VPU_TRANS;
    case ISA_COST_V_REDUCE:
    case ISA_COST_V_TRANSPOSE:
        return VPU_XLANE;
    default:
        return VPU_VALU;
    }
}

/* Arm the pipe's event for its oldest completion. */
static void vpu_arm(vpu_pipe *p)
{
    const unit_flight *f = unit_ring_first(&p->ring);
    if (f)
        kern_notify_at(p->ev, f->done_ps);
}

/* Each op leaves the ring before unit_finish, which may issue (and push) the next one. */
static void vpu_pipe_event(void *ctx)
{
    vpu_pipe *p = ctx;
    unit_ring_finish_due(&p->ring, &p->v->u, kern_now());
    vpu_arm(p);
}

static void vpu_fini(unit *u)
{
    vpu *v = (vpu *)u;
    for (int i = 0; i < VPU_PIPES; i++) {
        kern_event_free(v->pipe[i].ev);
        unit_ring_fini(&v->pipe[i].ring);
    }
}

static int vpu_init(unit *u, err *e)
{
    vpu *v = (vpu *)u;
    const cfg *c = u->env->cfg;
    v->lane_elems = c->vpu_sublanes * c->vpu_lanes * cfg_device_cores(c);
    v->max_pack = (unsigned)c->vpu_max_pack;
    assert(v->lane_elems > 0 && v->max_pack > 0);
    const uint64_t lat[VPU_PIPES] = {c->vpu_latency, c->vpu_trans_latency, c->vpu_xlane_latency};
    for (int i = 0; i < VPU_PIPES; i++) {
        vpu_pipe *p = &v->pipe[i];
        p->v = v;
        p->latency_ps = unit_cycles_to_ps(&v->u, (double)lat[i]);
        int nomem = unit_ring_init(&p->ring, 64);
        p->ev = kern_event_new(vpu_pipe_event, p);
        if (nomem) {
            vpu_fini(u);
            return err_setk(e, ERR_NOMEM, "vpu: out of memory");
        }
    }
    return 0;
}

static int vpu_can_start(unit *u, const isa_insn *in)
{
    vpu *v = (vpu *)u;
    const isa_info *info = isa_info_of(in->op);
    assert(info && info->unit == ISA_UNIT_VPU);
    vpu_pipe_id id = vpu_pipe_of(info->cost);
    if (kern_now() >= v->pipe[id].free_ps)
        return 1;
    unit_wake_at(u, v->pipe[id].free_ps);
    return 0;
}

/* Operands read per element: three for fma (a*b+c) and select (mask, a, b), two for the
 * other binary elementwise ops, one for unary, cast and cross-lane ops. */
static uint64_t vpu_inputs(unsigned op)
{
    switch (op) {
    case ISA_OP_V_FMA:
    case ISA_OP_V_SELECT:
        return 3;
    case ISA_OP_V_ADD:
    case ISA_OP_V_SUB:
    case ISA_OP_V_MUL:
    case ISA_OP_V_MAX:
    case ISA_OP_V_MIN:
        return 2;
    default:
        return 1;
    }
}

static void vpu_start(unit *u, const isa_insn *in, uint32_t token)
{
    vpu *v = (vpu *)u;
    const cfg *c = u->env->cfg;
    const isa_info *info = isa_info_of(in->op);
    assert(info && info->unit == ISA_UNIT_VPU);
    uint64_t now = kern_now();
    vpu_pipe *p = &v->pipe[vpu_pipe_of(info->cost)];
    assert(now >= p->free_ps);

    uint64_t n = in->arg[ISA_V_N];
    isa_dtype dt = (isa_dtype)in->arg[ISA_V_DTYPE];
    isa_dtype odt = dt;
    uint64_t out = n;
    uint64_t pack = vpu_pack(v, dt);
    if (in->op == ISA_OP_V_CAST) {
        odt = (isa_dtype)in->arg[ISA_V_EXTRA];
        uint64_t op = vpu_pack(v, odt);
        pack = op < pack ? op : pack;
    } else if (in->op == ISA_OP_V_REDUCE) {
        uint64_t w = in->arg[ISA_V_EXTRA] ? in->arg[ISA_V_EXTRA] : c->vpu_lanes;
        out = n / w + (n % w != 0);
    }
    assert(n >= 1);
    uint64_t per = v->lane_elems * pack;
    uint64_t vregs = n / per + (n % per != 0);

    /* Occupancy in cycles, per pipe (see the block at the top). */
    double occ;
    uint64_t flops = 0;
    switch (info->cost) {
    case ISA_COST_V_TRANS:
        occ = (double)vregs * c->vpu_trans_cycles;
        flops = n;
        break;
    case ISA_COST_V_REDUCE:
        occ = (double)vregs * c->vpu_reduce_cycles / (double)c->vpu_xlane_units;
        flops = n;
        break;
    case ISA_COST_V_TRANSPOSE:
        occ = (double)vregs * c->vpu_transpose_cycles / (double)c->vpu_xlane_units;
        break;
    case ISA_COST_V_FMA:
        occ = (double)vregs / c->vpu_valu_slots;
        flops = 2 * n;
        break;
    default:
        occ = (double)vregs / c->vpu_valu_slots;
        if (in->op != ISA_OP_V_SELECT && in->op != ISA_OP_V_CAST)
            flops = n;
        break;
    }
    uint64_t occ_ps = unit_cycles_to_ps(u, occ);
    uint64_t rd = isa_dtype_bytes(dt, n), wr = isa_dtype_bytes(odt, out);
    uint64_t k = vpu_inputs(in->op);
    uint64_t bytes = rd > (UINT64_MAX - wr) / k ? UINT64_MAX : rd * k + wr;
    uint64_t eff = vmem_share(u->env->vmem, bytes, occ_ps, now);

    u->stall_vmem_ps += eff - occ_ps;
    u->vmem_rd_bytes = stats_add_sat(u->vmem_rd_bytes, bytes - wr, NULL);
    u->vmem_wr_bytes = stats_add_sat(u->vmem_wr_bytes, wr, NULL);
    u->flops = stats_add_sat(u->flops, flops, NULL);
    /* Union of occupancy intervals: starts never decrease, so only the part past the
     * latest end so far is new. */
    uint64_t end = stats_add_sat(now, eff, NULL); /* overflow: kernel.h */
    if (end > v->busy_until_ps) {
        u->busy_ps += end - um_max(now, v->busy_until_ps);
        v->busy_until_ps = end;
    }
    p->busy_ps += eff;
    p->vregs += vregs;
    p->ops++;
    p->free_ps = end;
    (void)unit_ring_push(&p->ring, stats_add_sat(end, p->latency_ps, NULL),
                         token); /* -1: run failed */
    vpu_arm(p);                  /* keeps an earlier pending completion (kernel.h) */
}

static void vpu_stats(unit *u, stats_reg *r)
{
    static const char *const desc[3] = {"time the pipe was occupied", "vector registers processed",
                                        "instructions issued"};
    static const char *const units[3] = {"ps", "vregs", "insns"};
    static const char *const suffix[3] = {"busy_ps", "vregs", "ops"};
    vpu *v = (vpu *)u;
    for (int i = 0; i < VPU_PIPES; i++) {
        const uint64_t *val[3] = {&v->pipe[i].busy_ps, &v->pipe[i].vregs, &v->pipe[i].ops};
        for (int j = 0; j < 3; j++) {
            char name[40]; /* the registry copies names */
            snprintf(name, sizeof name, "%s_%s", vpu_pipe_names[i], suffix[j]);
            stats_u64(r, u->name, name, units[j], desc[j], val[j]);
        }
    }
}

/* Checks at dispatch: source n x bytes(dt) and destination (cast: `to`; reduce: ceil(n /
 * width) elements, width 0 = vpu.lanes) inside VMEM. Work: the flops of the block above. */
static int vpu_check(unit *u, const isa_insn *in, unit_work *w, err *e)
{
    const isa_info *info = isa_info_of(in->op);
    const uint64_t *a = in->arg;
    unsigned dt = (unsigned)a[ISA_V_DTYPE];
    uint64_t n = a[ISA_V_N];
    uint64_t out = n;
    unsigned odt = dt;
    if (in->op == ISA_OP_V_CAST)
        odt = (unsigned)a[ISA_V_EXTRA];
    if (in->op == ISA_OP_V_REDUCE) {
        uint64_t wd = a[ISA_V_EXTRA] ? a[ISA_V_EXTRA] : u->env->cfg->vpu_lanes;
        out = (n + wd - 1) / wd;
    }
    if (unit_check_vmem(u, "source", a[ISA_V_SRC], isa_dtype_bytes(dt, n), e) ||
        unit_check_vmem(u, "destination", a[ISA_V_DST], isa_dtype_bytes(odt, out), e))
        return -1;
    switch (info->cost) {
    case ISA_COST_V_ELEM:
        w->flops = (in->op == ISA_OP_V_SELECT || in->op == ISA_OP_V_CAST) ? 0 : n;
        break;
    case ISA_COST_V_FMA:
        w->flops = 2 * n;
        break;
    case ISA_COST_V_TRANS:
    case ISA_COST_V_REDUCE:
        w->flops = n;
        break;
    default:
        break;
    }
    return 0;
}

const unit_ops vpu_ops = UNIT_OPS(vpu, vpu, .stats = vpu_stats);
