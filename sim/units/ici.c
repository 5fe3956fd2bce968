/* ici.c - the ICI unit: a chip's port to the network (icinet.c). It takes the chip's ICI
 * queue in order, runs one collective at a time, or a send and a recv together (so ring
 * shifts written as send+recv pairs do not deadlock), and finishes each instruction when
 * the network says this chip's part is complete. Timing is entirely the network's. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "ici.h"
#include "kernel.h"
#include "unit.h"

enum { SLOT_COLL, SLOT_SEND, SLOT_RECV, SLOT_N };

typedef struct ici_unit ici_unit;

typedef struct ici_slot {
    ici_unit *iu;
    kern_event *ev;
    int busy;
    uint32_t token;
    ici_kind kind;
    uint64_t start_ps, end_ps, bytes;
} ici_slot;

struct ici_unit {
    unit u; /* first: the common unit state */
    ici_net *net;
    unsigned chip;
    ici_slot slot[SLOT_N];
    unsigned nbusy;
    uint64_t busy_since;
    int refused; /* can_start said no: wake the core when a slot frees */
    /* per kind: instructions, instruction bytes, issue-to-completion time */
    uint64_t kcount[ICI_KIND_COUNT], kbytes[ICI_KIND_COUNT], ktime[ICI_KIND_COUNT];
};

static unsigned slot_for(ici_kind k)
{
    return k == ICI_SEND ? SLOT_SEND : k == ICI_RECV ? SLOT_RECV : SLOT_COLL;
}

static void slot_fire(void *ctx)
{
    ici_slot *s = ctx;
    ici_unit *iu = s->iu;
    uint64_t now = kern_now();
    assert(s->busy); /* now == end_ps unless the end did not fit the clock (saturated) */
    s->busy = 0;
    iu->kcount[s->kind]++;
    iu->kbytes[s->kind] = stats_add_sat(iu->kbytes[s->kind], s->bytes, NULL);
    iu->ktime[s->kind] = stats_add_sat(iu->ktime[s->kind], now - s->start_ps, NULL);
    iu->u.insns++;
    if (--iu->nbusy == 0)
        iu->u.busy_ps = stats_add_sat(iu->u.busy_ps, now - iu->busy_since, NULL);
    unit_finish_wake(&iu->u, s->token, &iu->refused);
}

static void slot_done(void *arg, uint64_t end_ps)
{
    ici_slot *s = arg;
    s->end_ps = end_ps;
    kern_notify_at(s->ev, end_ps);
}

static void ici_fini(unit *u)
{
    ici_unit *iu = (ici_unit *)u;
    for (unsigned i = 0; i < SLOT_N; i++)
        kern_event_free(iu->slot[i].ev);
}

static int ici_init(unit *u, err *e)
{
    ici_unit *iu = (ici_unit *)u;
    const unit_env *env = u->env;
    if (!env->net)
        return err_set(e, "ici: unit created without a network");
    if (env->chip_id >= ici_net_chips(env->net))
        return err_set(e, "ici: chip %u outside the %u-chip network", env->chip_id,
                       ici_net_chips(env->net));
    iu->net = env->net;
    iu->chip = env->chip_id;
    for (unsigned i = 0; i < SLOT_N; i++) {
        iu->slot[i].iu = iu;
        iu->slot[i].ev = kern_event_new(slot_fire, &iu->slot[i]);
    }
    return 0;
}

/* Checks at dispatch: the axes exist in the network's topology. Work: bytes = the
 * instruction's bytes, counted once at the sender (a recv counts none). */
static int ici_check(unit *u, const isa_insn *in, unit_work *w, err *e)
{
    ici_unit *iu = (ici_unit *)u;
    int p2p = in->op == ISA_OP_ICI_SEND || in->op == ISA_OP_ICI_RECV;
    unsigned axes = (unsigned)in->arg[p2p ? ISA_P2P_AXIS : ISA_COLL_AXES];
    unsigned naxes = ici_net_axes(iu->net);
    if (axes >> naxes)
        return err_set(e, "axis not in the %u-axis topology", naxes);
    if (in->op != ISA_OP_ICI_RECV)
        w->bytes = in->arg[p2p ? ISA_P2P_BYTES : ISA_COLL_BYTES];
    return 0;
}

static int ici_can_start(unit *u, const isa_insn *in)
{
    ici_unit *iu = (ici_unit *)u;
    int k = ici_kind_of_op(in->op);
    assert(k >= 0);
    int ok = slot_for(k) == SLOT_COLL ? iu->nbusy == 0
                                      : !iu->slot[SLOT_COLL].busy && !iu->slot[slot_for(k)].busy;
    if (!ok)
        iu->refused = 1;
    return ok;
}

static void ici_start(unit *u, const isa_insn *in, uint32_t token)
{
    ici_unit *iu = (ici_unit *)u;
    ici_kind k = (ici_kind)ici_kind_of_op(in->op);
    ici_slot *s = &iu->slot[slot_for(k)];
    assert(!s->busy);
    int p2p = k == ICI_SEND || k == ICI_RECV;
    s->busy = 1;
    s->token = token;
    s->kind = k;
    s->start_ps = kern_now();
    s->bytes = in->arg[p2p ? ISA_P2P_BYTES : ISA_COLL_BYTES];
    if (iu->nbusy++ == 0)
        iu->busy_since = s->start_ps;
    unsigned axes = (unsigned)in->arg[p2p ? ISA_P2P_AXIS : ISA_COLL_AXES];
    unsigned dir = p2p ? (unsigned)in->arg[ISA_P2P_DIR] : 0;
    uint64_t sent = ici_net_start(iu->net, iu->chip, k, axes, dir, s->bytes, slot_done, s);
    u->bytes = stats_add_sat(u->bytes, sent, NULL);
}

static void ici_stats(unit *u, stats_reg *r)
{
    ici_unit *iu = (ici_unit *)u;
    static const char *const desc_count = "instructions of this kind completed";
    static const char *const desc_bytes = "instruction bytes of this kind (per chip)";
    static const char *const desc_time = "issue-to-completion time of this kind, summed";
    for (unsigned k = 0; k < ICI_KIND_COUNT; k++) {
        char nm[40];
        snprintf(nm, sizeof nm, "%s_count", ici_kind_name(k));
        stats_u64(r, u->name, nm, "insns", desc_count, &iu->kcount[k]);
        snprintf(nm, sizeof nm, "%s_bytes", ici_kind_name(k));
        stats_u64(r, u->name, nm, "B", desc_bytes, &iu->kbytes[k]);
        snprintf(nm, sizeof nm, "%s_time_ps", ici_kind_name(k));
        stats_u64(r, u->name, nm, "ps", desc_time, &iu->ktime[k]);
    }
}

const unit_ops ici_ops = UNIT_OPS(ici, ici_unit, .stats = ici_stats);
