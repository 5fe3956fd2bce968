/* dcn.c - the DCN unit: a chip's share of the data-centre network that joins dcn.slices
 * copies of its slice (multi-slice data parallelism). It takes the chip's DCN queue in order
 * and runs one all-reduce at a time among the S chips at this chip's position in every slice
 * (one chip per slice), as a ring over the DCN: a reduce-scatter then an all-gather, 2 (S-1)
 * steps, in each of which every member sends a 1/S piece of the buffer to the next slice and
 * receives one from the previous (both directions of its share at once):
 *
 *     T = 2 (S-1) (lat + B / (S bw))     B = bytes per chip, bw = dcn.gbs (one direction),
 *                                        lat = dcn.latency_us per step
 *
 * (on a chip of d devices, chip.megacore false, the unit is one device's and bw = dcn.gbs / d:
 * its siblings run the same step over the chip's share; cfg_dcn_bps)
 *
 * and the chip sends 2 (S-1)/S x B bytes (counter `bytes`, the energy model's DCN bytes).
 * S = 2: T = 2 lat + B / bw. Assumptions (docs/models-ici.md, "DCN"): the other slices are
 * copies of this one running the same step at the same time, so the ring's other members are
 * never late; each chip has its own share of the network, so chips do not contend with each
 * other nor with the ICI; a chip's DCN all-reduces serialise on its share. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "kernel.h"
#include "unit.h"

typedef struct dcn_unit {
    unit u; /* first: the common unit state */
    kern_event *ev;
    unsigned slices;
    double ps_per_byte; /* 1 / dcn.gbs */
    double lat_ps;      /* dcn.latency_us */
    int busy, refused;
    uint32_t token;
    uint64_t start_ps, bytes;
    uint64_t ar_count, ar_bytes, ar_time_ps; /* all-reduces: count, instruction bytes, time */
} dcn_unit;

static const stats_def dcn_defs[] = {
    STATS_U64(dcn_unit, ar_count, "allreduce_count", "insns",
              "all-reduces across the slices completed"),
    STATS_U64(dcn_unit, ar_bytes, "allreduce_bytes", "B", "all-reduce buffer bytes (per chip)"),
    STATS_U64(dcn_unit, ar_time_ps, "allreduce_time_ps", "ps",
              "all-reduce time, start to completion, summed: 2 (S-1) (lat + B / (S bw)) each"),
};

/* The closed form above, in ps (saturating). */
static uint64_t dcn_allreduce_ps(const dcn_unit *d, uint64_t bytes)
{
    double steps = 2.0 * (d->slices - 1);
    return stats_round_sat(steps * d->lat_ps + steps / d->slices * (double)bytes * d->ps_per_byte);
}

static void dcn_fire(void *ctx)
{
    dcn_unit *d = ctx;
    uint64_t now = kern_now();
    assert(d->busy);
    d->busy = 0;
    d->ar_count++;
    d->ar_bytes = stats_add_sat(d->ar_bytes, d->bytes, NULL);
    d->ar_time_ps = stats_add_sat(d->ar_time_ps, now - d->start_ps, NULL);
    d->u.insns++;
    d->u.busy_ps = stats_add_sat(d->u.busy_ps, now - d->start_ps, NULL);
    unit_finish_wake(&d->u, d->token, &d->refused);
}

static void dcn_fini(unit *u)
{
    kern_event_free(((dcn_unit *)u)->ev);
}

static int dcn_init(unit *u, err *e)
{
    (void)e;
    dcn_unit *d = (dcn_unit *)u;
    const cfg *c = u->env->cfg;
    d->slices = (unsigned)c->dcn_slices;
    d->ps_per_byte = 1e12 / cfg_dcn_bps(c); /* a device's share of the chip's dcn.gbs */
    d->lat_ps = (double)llround(c->dcn_latency_us * 1e6);
    d->ev = kern_event_new(dcn_fire, d);
    return 0;
}

/* Work: bytes = the instruction's buffer bytes (per chip). */
static int dcn_check(unit *u, const isa_insn *in, unit_work *w, err *e)
{
    (void)u;
    (void)e;
    w->bytes = in->arg[ISA_DCN_BYTES];
    return 0;
}

static int dcn_can_start(unit *u, const isa_insn *in)
{
    (void)in;
    dcn_unit *d = (dcn_unit *)u;
    if (d->busy)
        d->refused = 1;
    return !d->busy;
}

static void dcn_start(unit *u, const isa_insn *in, uint32_t token)
{
    dcn_unit *d = (dcn_unit *)u;
    assert(!d->busy && in->op == ISA_OP_DCN_ALLREDUCE);
    d->busy = 1;
    d->token = token;
    d->start_ps = kern_now();
    d->bytes = in->arg[ISA_DCN_BYTES];
    double sent = 2.0 * (d->slices - 1) / d->slices * (double)d->bytes;
    u->bytes = stats_add_sat(u->bytes, stats_round_sat(sent), NULL);
    kern_notify(d->ev, dcn_allreduce_ps(d, d->bytes));
}

const unit_ops dcn_ops = UNIT_OPS(dcn, dcn_unit, .defs = dcn_defs, .ndefs = STATS_NDEFS(dcn_defs));
