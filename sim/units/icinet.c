/* icinet.c - the ICI network: a 1-3 axis torus or mesh of chips, 2 links per axis (+ and -),
 * each ici.link_gbs per direction with ici.hop_latency_ns per hop. Collectives are decomposed
 * into steps of link transfers by the algorithms TPU pods use (bidirectional rings per axis,
 * dimension-ordered); each link keeps a busy-until time per direction, so concurrent traffic
 * on a link serialises. FULL mode matches the collective of every chip of a group and steps
 * them all; SYMMETRIC mode steps one representative chip whose ring neighbours are itself
 * (all rings of an axis are identical under symmetry). Twisted tori (k x k x 2k and
 * k x 2k x 2k, TPU v4) shift the wraparound links of the short axes by half of each long axis;
 * this changes neighbours, hop distances and all-to-all routing, not the logical rings of ring
 * collectives.
 *
 * A node is a chip and its traffic is that of one device (a trace is one device's program).
 * With chip.megacore false (v2, v3, v7) a chip holds dpc = chip.cores devices that run the
 * same program over the same links; each device gets an equal share of every link direction
 * (cfg_ici_link_bps), so every transfer of the simulated device takes
 *     t_xfer = bytes x dpc / ici.link_gbs          (hop latency unchanged)
 * in both modes: the siblings' identical transfers fill the rest of the link. dpc = 1 for
 * megacore and one-core chips. Formulas and their derivations: docs/models-ici.md. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ici.h"
#include "kernel.h"
#include "mem.h"
#include "unit.h"

#define ICI_MAX_PHASES  6 /* reduce-scatter over 3 axes, then all-gather over 3 */
#define ICI_NAXES_MASKS 8

/* One phase of a collective: `steps` steps on the axes in the mask `axes` (one axis for ring
 * phases, every collective axis for the routed all-to-all); in each step every member sends
 * bytes[a] on each of its two links of axis a, which takes xfer_ps[a], and the data arrives
 * lat_ps after the transfer ends. */
typedef struct ici_phase {
    unsigned axes, steps;
    double bytes[3]; /* per step, per link direction of each axis: the timing load */
    double sent;     /* bytes a member transmits over the whole phase, each link crossed counted
                      * (bytes x hops), averaged over the members: the energy counter */
    uint64_t xfer_ps[3], lat_ps;
} ici_phase;

typedef struct ici_inst ici_inst;
/* A collective instance: the matching collectives of one group of chips (FULL) or of the
 * representative chip (SYMMETRIC). Pooled; arrays sized by cap, grown on demand. */
struct ici_inst {
    ici_inst *next;     /* pending list of its leader, or the free list */
    ici_inst *next_all; /* every instance, for ici_net_free */
    ici_net *net;
    kern_event *ev;
    unsigned leader, k, arrived, cap;
    int mismatch; /* a member's kind or size differed from the first arrival's */
    uint64_t seq;
    ici_kind kind;
    unsigned axes;
    uint64_t bytes;
    unsigned gstride[3]; /* member-index stride of each collective axis */
    ici_phase ph[ICI_MAX_PHASES];
    unsigned nph, cur_ph, cur_step;
    uint64_t *ready, *nready, *start;
    ici_done_fn *done;
    void **arg;
    unsigned char *rec; /* record this member's time in the rows */
};

/* Point-to-point channel into one chip from one neighbour (axis, direction it comes from):
 * arrival times of sends not yet received, and at most one waiting recv. */
typedef struct ici_chan {
    uint64_t *arr;
    unsigned head, count, cap;
    int rwait, rrec;
    ici_done_fn rdone;
    void *rarg;
    uint64_t rstart, rbytes;
} ici_chan;

typedef struct ici_waiter {
    void (*done)(void *arg);
    void *arg;
    unsigned chip; /* barrier waiters: which chip arrived */
} ici_waiter;

struct ici_net {
    ici_mode mode;
    int lone_stage; /* SYMMETRIC: a recv with nothing sent completes after one transfer */
    unsigned naxes, dims[3], stride[3], nchips;
    int wrap[3], twisted;
    unsigned twist[3];  /* twisted: crossing a wrap link of axis a shifts each axis b with
                           twist[a] & (1 << b) by dims[b] / 2 */
    double twist_dist;  /* twisted: mean hop distance from a chip to every chip (itself too) */
    unsigned twist_far; /* twisted: diameter in hops */
    double ps_per_byte;
    uint64_t hop_ps;
    unsigned nslots;     /* chips with link state: nchips (FULL) or 1 (SYMMETRIC) */
    uint64_t *link_free; /* [nslots][naxes][2]: busy-until per link direction */
    ici_chan *chan;      /* [nslots][naxes][2]: incoming from + / - neighbour */
    uint64_t *coll_seq;  /* [nslots]: collectives issued per chip */
    ici_inst **pending;  /* FULL: [nchips] instances still gathering members, per leader */
    ici_inst *free_inst, *all_inst;
    size_t inst_bytes;
    /* barrier */
    kern_event *bar_ev;
    ici_waiter *bar_wait, *bar_run;
    unsigned bar_n, bar_cap;
    /* counters (exported through the stats registry) */
    uint64_t st_chips, st_axes, st_links_per_chip, st_links_used, st_link_bytes;
    uint64_t st_collectives, st_p2p, st_barriers, st_mismatch, st_edge;
    double link_bytes;                /* exact, st_link_bytes is its rounded copy */
    double link_dir_bytes[3][2];      /* slot 0 (chip 0 / the representative): per axis, dir */
    uint64_t st_link_dir_bytes[3][2]; /* its rounded copy, registered as link_<axis><dir>_bytes */
    ici_row rows[ICI_KIND_COUNT][ICI_NAXES_MASKS];
    char desc[64];
};

static const char *const kind_names[ICI_KIND_COUNT] = {
    [ICI_SEND] = "send",
    [ICI_RECV] = "recv",
    [ICI_ALLREDUCE] = "allreduce",
    [ICI_ALLGATHER] = "allgather",
    [ICI_REDUCESCATTER] = "reducescatter",
    [ICI_ALLTOALL] = "alltoall",
};

const char *ici_kind_name(ici_kind k)
{
    return (unsigned)k < ICI_KIND_COUNT ? kind_names[k] : "?";
}

int ici_kind_of_op(unsigned op)
{
    switch (op) {
    case ISA_OP_ICI_SEND:
        return ICI_SEND;
    case ISA_OP_ICI_RECV:
        return ICI_RECV;
    case ISA_OP_ICI_ALLREDUCE:
        return ICI_ALLREDUCE;
    case ISA_OP_ICI_ALLGATHER:
        return ICI_ALLGATHER;
    case ISA_OP_ICI_REDUCESCATTER:
        return ICI_REDUCESCATTER;
    case ISA_OP_ICI_ALLTOALL:
        return ICI_ALLTOALL;
    default:
        return -1;
    }
}

const char *ici_axes_name(unsigned axes, char *buf)
{
    char *p = buf;
    for (unsigned a = 0; a < 3; a++)
        if (axes & (1u << a))
            *p++ = "xyz"[a];
    *p = 0;
    return buf;
}

static uint64_t u64max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Times saturate at UINT64_MAX instead of wrapping: an operation too large for the 64-bit
 * clock ends "never", which the kernel and core report, rather than at a wrapped time. */
static uint64_t tadd(uint64_t a, uint64_t b)
{
    return stats_add_sat(a, b, NULL);
}

/* ps to move `bytes` over one link direction. */
static uint64_t xfer_ps(const ici_net *n, double bytes)
{
    double ps = bytes * n->ps_per_byte;
    return stats_round_sat(ps);
}

/* ---- construction ---- */

static int twist_setup(ici_net *n, const char *dims, const char *wrap, err *e);

ici_net *ici_net_new(const cfg *c, const char *dims, ici_mode mode, err *e)
{
    if (!dims)
        dims = c->ici_dims;
    unsigned d[3];
    int naxes = cfg_parse_dims(dims, d);
    if (naxes < 1 || naxes > 3) {
        err_set(e, "ici: topology '%s': expected 1 to 3 axes such as 8, 16x16 or 4x4x4", dims);
        return NULL;
    }
    uint64_t chips = (uint64_t)d[0] * d[1] * d[2];
    if (d[0] == 0 || d[1] == 0 || d[2] == 0 || chips > (1u << 24)) {
        err_set(e, "ici: topology '%s': every axis needs 1 or more chips, 2^24 chips at most",
                dims);
        return NULL;
    }
    ici_net *n = err_calloc(1, sizeof *n, "ici", e);
    if (!n)
        return NULL;
    n->mode = mode;
    n->naxes = (unsigned)naxes;
    n->nchips = (unsigned)chips;
    for (unsigned a = 0; a < 3; a++) {
        n->dims[a] = d[a];
        n->stride[a] = a == 0 ? 1 : n->stride[a - 1] * d[a - 1];
    }
    for (const char *p = c->ici_wrap; *p; p++) {
        const char *ax = strchr("xyz", *p);
        if (!ax) {
            err_set(e, "ici: key 'ici.wrap': '%c' is not an axis (expected letters from xyz)", *p);
            goto out_fail;
        }
        if ((unsigned)(ax - "xyz") < n->naxes)
            n->wrap[ax - "xyz"] = 1;
    }
    unsigned used = 0;
    for (unsigned a = 0; a < n->naxes; a++)
        used += n->dims[a] > 1;
    if (2 * used > c->ici_links_per_chip) {
        err_set(e,
                "ici: topology '%s' needs %u links per chip (2 per axis longer than 1) but "
                "ici.links_per_chip is %llu",
                dims, 2 * used, (unsigned long long)c->ici_links_per_chip);
        goto out_fail;
    }
    n->twisted = c->ici_twisted;
    if (n->twisted && twist_setup(n, dims, c->ici_wrap, e))
        goto out_fail;
    n->ps_per_byte = 1e12 / cfg_ici_link_bps(c); /* the device's share of the link */
    n->hop_ps = (uint64_t)llround(c->ici_hop_latency_ns * 1e3);
    n->nslots = mode == ICI_MODE_FULL ? n->nchips : 1;
    size_t nl = (size_t)n->nslots * n->naxes * 2;
    n->link_free = calloc(nl, sizeof *n->link_free);
    n->chan = calloc(nl, sizeof *n->chan);
    n->coll_seq = calloc(n->nslots, sizeof *n->coll_seq);
    if (mode == ICI_MODE_FULL)
        n->pending = calloc(n->nchips, sizeof *n->pending);
    if (!n->link_free || !n->chan || !n->coll_seq || (mode == ICI_MODE_FULL && !n->pending)) {
        err_setk(e, ERR_NOMEM, "ici: out of memory for a %u-chip network", n->nchips);
        goto out_fail;
    }
    n->st_chips = n->nchips;
    n->st_axes = n->naxes;
    n->st_links_per_chip = c->ici_links_per_chip;
    n->st_links_used = 2 * n->naxes;
    int len = 0;
    for (unsigned a = 0; a < n->naxes; a++)
        len +=
            snprintf(n->desc + len, sizeof n->desc - (size_t)len, "%s%u", a ? "x" : "", n->dims[a]);
    unsigned nw = 0;
    for (unsigned a = 0; a < n->naxes; a++)
        nw += (unsigned)n->wrap[a];
    char tw[4] = "", me[4] = "";
    for (unsigned a = 0, it = 0, im = 0; a < n->naxes; a++) {
        if (n->wrap[a])
            tw[it++] = "xyz"[a];
        else
            me[im++] = "xyz"[a];
    }
    if (nw == n->naxes)
        snprintf(n->desc + len, sizeof n->desc - (size_t)len, " %storus(%s)",
                 n->twisted ? "twisted " : "", tw);
    else if (nw == 0)
        snprintf(n->desc + len, sizeof n->desc - (size_t)len, " mesh");
    else
        snprintf(n->desc + len, sizeof n->desc - (size_t)len, " torus(%s) mesh(%s)", tw, me);
    return n;
out_fail:
    ici_net_free(n);
    return NULL;
}

void ici_net_set_lone_stage(ici_net *n, int on)
{
    n->lone_stage = on;
}

void ici_net_free(ici_net *n)
{
    if (!n)
        return;
    for (ici_inst *g = n->all_inst, *nx; g; g = nx) {
        nx = g->next_all;
        kern_event_free(g->ev);
        MEM_FREE_ALL(g->ready, g->nready, g->start, g->done, g->arg, g->rec, g);
    }
    if (n->chan)
        for (size_t i = 0; i < (size_t)n->nslots * n->naxes * 2; i++)
            free(n->chan[i].arr);
    kern_event_free(n->bar_ev);
    MEM_FREE_ALL(n->bar_wait, n->bar_run, n->link_free, n->chan, n->coll_seq, n->pending, n);
}

unsigned ici_net_chips(const ici_net *n)
{
    return n->nchips;
}

unsigned ici_net_axes(const ici_net *n)
{
    return n->naxes;
}

void ici_net_dims(const ici_net *n, unsigned dims[3])
{
    memcpy(dims, n->dims, sizeof n->dims);
}

const char *ici_net_describe(const ici_net *n)
{
    return n->desc;
}

uint64_t ici_net_mismatches(const ici_net *n)
{
    return n->st_mismatch;
}

size_t ici_net_footprint(const ici_net *n)
{
    size_t nl = (size_t)n->nslots * n->naxes * 2;
    size_t s = sizeof *n + nl * (sizeof *n->link_free + sizeof *n->chan) +
               n->nslots * sizeof *n->coll_seq + n->inst_bytes +
               (size_t)n->bar_cap * 2 * sizeof(ici_waiter);
    if (n->pending)
        s += (size_t)n->nchips * sizeof *n->pending;
    for (size_t i = 0; i < nl; i++)
        s += n->chan[i].cap * sizeof(uint64_t);
    return s;
}

/* ---- rows ---- */

static double bus_factor(ici_kind k, double group)
{
    switch (k) {
    case ICI_ALLREDUCE:
        return 2 * (group - 1) / group;
    case ICI_ALLGATHER:
    case ICI_REDUCESCATTER:
    case ICI_ALLTOALL:
        return (group - 1) / group;
    default:
        return 1;
    }
}

static ici_row *row_of(ici_net *n, ici_kind kind, unsigned axes)
{
    ici_row *r = &n->rows[kind][axes & 7];
    if (r->count || r->algo[0])
        return r;
    r->kind = kind;
    r->axes = axes & 7;
    double group = 1;
    char ax[16] = "";
    size_t al = 0;
    unsigned nw = 0, na = 0;
    for (unsigned a = 0; a < n->naxes; a++)
        if (axes & (1u << a)) {
            group *= n->dims[a];
            al += (size_t)snprintf(ax + al, sizeof ax - al, "%s%c", na ? "," : "", "xyz"[a]);
            na++;
            nw += (unsigned)n->wrap[a];
        }
    r->bus_factor = bus_factor(kind, group);
    const char *topo = nw == na ? "bidir-ring" : nw == 0 ? "bidir-line" : "bidir-ring/line";
    switch (kind) {
    case ICI_SEND:
    case ICI_RECV:
        snprintf(r->algo, sizeof r->algo, "p2p neighbour over %s", ax);
        break;
    case ICI_ALLREDUCE:
        snprintf(r->algo, sizeof r->algo, "%s RS+AG over %s", topo, ax);
        break;
    case ICI_ALLGATHER:
        snprintf(r->algo, sizeof r->algo, "%s AG over %s", topo, ax);
        break;
    case ICI_REDUCESCATTER:
        snprintf(r->algo, sizeof r->algo, "%s RS over %s", topo, ax);
        break;
    default:
        snprintf(r->algo, sizeof r->algo, "routed all-to-all over %s (%s)", ax,
                 n->twisted && na == n->naxes ? "twisted torus, balanced"
                 : nw == na                   ? "torus, dim-order"
                 : nw == 0                    ? "mesh, dim-order"
                                              : "torus/mesh, dim-order");
        break;
    }
    return r;
}

static void row_record(ici_net *n, ici_kind kind, unsigned axes, uint64_t bytes, uint64_t ps)
{
    ici_row *r = row_of(n, kind, axes);
    r->count++;
    r->bytes = stats_add_sat(r->bytes, bytes, NULL);
    r->time_ps = stats_add_sat(r->time_ps, ps, NULL);
}

unsigned ici_net_nrows(const ici_net *n)
{
    unsigned c = 0;
    for (unsigned k = 0; k < ICI_KIND_COUNT; k++)
        for (unsigned a = 0; a < ICI_NAXES_MASKS; a++)
            c += n->rows[k][a].count > 0;
    return c;
}

const ici_row *ici_net_row(const ici_net *n, unsigned i)
{
    for (unsigned k = 0; k < ICI_KIND_COUNT; k++)
        for (unsigned a = 0; a < ICI_NAXES_MASKS; a++)
            if (n->rows[k][a].count && i-- == 0)
                return &n->rows[k][a];
    return NULL;
}

double ici_row_busbw(const ici_row *r)
{
    return r->time_ps ? (double)r->bytes * r->bus_factor / ((double)r->time_ps * 1e-12) : 0;
}

/* ---- topology helpers ---- */

static unsigned coord(const ici_net *n, unsigned chip, unsigned a)
{
    return chip / n->stride[a] % n->dims[a];
}

/* Neighbour chip of `chip` along axis a in direction dir (0 +, 1 -), -1 at a mesh edge. In a
 * twisted torus a wrap link of a short axis also moves half-way round each long axis (+p/2 and
 * -p/2 are the same shift, so the link is symmetric). */
static long nb_chip(const ici_net *n, unsigned chip, unsigned a, unsigned dir)
{
    unsigned c = coord(n, chip, a), p = n->dims[a];
    if (dir == 0 && c + 1 < p)
        return (long)chip + n->stride[a];
    if (dir == 1 && c > 0)
        return (long)chip - n->stride[a];
    if (!n->wrap[a])
        return -1;
    long nb = dir == 0 ? (long)chip - (long)(p - 1) * n->stride[a]
                       : (long)chip + (long)(p - 1) * n->stride[a];
    for (unsigned b = 0; b < n->naxes; b++)
        if (n->twist[a] & (1u << b)) {
            unsigned cb = coord(n, (unsigned)nb, b), pb = n->dims[b];
            nb += ((long)((cb + pb / 2) % pb) - (long)cb) * (long)n->stride[b];
        }
    return nb;
}

/* Twisted torus (Camara et al., "Twisted torus topologies for enhanced interconnection
 * networks", IEEE TPDS 2010; TPU v4 offers it for k x k x 2k and k x 2k x 2k slices, P23):
 * every axis wraps, the axes have sizes k and 2k (k >= 2, both present), and the wrap links of
 * each short axis shift every long axis by k. The graph is vertex-transitive (a Cayley graph of
 * an abelian group), so one breadth-first search from chip 0 gives every chip's hop distances:
 * the diameter and the mean distance used by the all-to-all. */
static int twist_setup(ici_net *n, const char *dims, const char *wrap, err *e)
{
    unsigned k = UINT32_MAX, nshort = 0, nlong = 0;
    for (unsigned a = 0; a < n->naxes; a++)
        k = n->dims[a] < k ? n->dims[a] : k;
    int ok = n->naxes >= 2 && k >= 2;
    for (unsigned a = 0; a < n->naxes && ok; a++) {
        ok = n->wrap[a] && (n->dims[a] == k || n->dims[a] == 2 * k);
        nshort += n->dims[a] == k;
        nlong += n->dims[a] == 2 * k;
    }
    if (!ok || !nshort || !nlong)
        return err_set(e,
                       "ici: key 'ici.twisted': a twisted torus needs every axis wrapped and axis "
                       "sizes k and 2k, both present (k x k x 2k, k x 2k x 2k or 2k x k); got "
                       "'%s' with wrap '%s'",
                       dims, wrap);
    for (unsigned a = 0; a < n->naxes; a++)
        for (unsigned b = 0; b < n->naxes; b++)
            if (n->dims[a] == k && n->dims[b] == 2 * k)
                n->twist[a] |= 1u << b;
    unsigned *dist = malloc((size_t)n->nchips * sizeof *dist);
    unsigned *queue = malloc((size_t)n->nchips * sizeof *queue);
    if (!dist || !queue) {
        free(dist);
        free(queue);
        return err_setk(e, ERR_NOMEM, "ici: out of memory for a %u-chip twisted torus", n->nchips);
    }
    for (unsigned i = 0; i < n->nchips; i++)
        dist[i] = UINT32_MAX;
    unsigned head = 0, tail = 0;
    double sum = 0;
    dist[0] = 0;
    queue[tail++] = 0;
    while (head < tail) {
        unsigned v = queue[head++];
        sum += dist[v];
        n->twist_far = dist[v];
        for (unsigned a = 0; a < n->naxes; a++)
            for (unsigned dir = 0; dir < 2; dir++) {
                long w = nb_chip(n, v, a, dir);
                if (w >= 0 && dist[w] == UINT32_MAX) {
                    dist[w] = dist[v] + 1;
                    queue[tail++] = (unsigned)w;
                }
            }
    }
    assert(tail == n->nchips);
    n->twist_dist = sum / n->nchips;
    free(dist);
    free(queue);
    return 0;
}

static unsigned slot_of(const ici_net *n, unsigned chip)
{
    return n->mode == ICI_MODE_FULL ? chip : 0;
}

static size_t link_idx(const ici_net *n, unsigned slot, unsigned a, unsigned dir)
{
    return ((size_t)slot * n->naxes + a) * 2 + dir;
}

/* ---- collective decomposition ---- */

/* Phase of a ring reduce-scatter (or all-gather) on axis a moving B bytes (RS input / AG
 * output per chip): p-1 steps. With wraparound the data is split in halves that go both ways
 * round the ring, B/(2p) per step per direction; on a mesh line, the bidirectional line
 * algorithm forwards shards both ways, B/p per step per direction (half the bandwidth).
 * Sent per member, either way: each of the p shards of B/p crosses p-1 links once (a ring
 * half goes p-1 steps round; a line forwards each shard across every link between its owner
 * and the ends, p-1 of them), (p-1) B/p. On the line the timing load B/p per direction is the
 * interior's; the end chips send less, so 2 (p-1) B/p would overcount. */
static ici_phase ring_phase(const ici_net *n, unsigned a, double B)
{
    unsigned p = n->dims[a];
    double chunk = B / (p * (n->wrap[a] ? 2.0 : 1.0));
    ici_phase ph = {.axes = 1u << a, .steps = p - 1, .lat_ps = n->hop_ps};
    ph.sent = (p - 1) * (B / p);
    ph.bytes[a] = chunk;
    ph.xfer_ps[a] = xfer_ps(n, chunk);
    return ph;
}

/* All-to-all of B bytes per chip over the axes in `axes` (G chips in the group, B/G to each),
 * routed by the ICI routers on all those axes at once, as one phase. Dimension-ordered
 * shortest-path routing loads each link direction of axis a with
 *   torus: (B/p) * S/2, S = sum over d=1..p-1 of min(d, p-d)  (= Bp/8 for even p)
 *   mesh:  (B/p) * floor(p/2) * ceil(p/2)                      (the middle link)
 * the group's other axes only multiply sources and destinations alike. A twisted torus (every
 * axis in the group) balances the load over all 2 x naxes link directions of a chip:
 *   B * mean_distance / (2 naxes).
 * Latency: the farthest destination, sum of floor(p/2) (torus) or p-1 (mesh) hops per axis, or
 * the twisted torus' diameter.
 * Sent per member (bytes x hops, mean over the members): B/G to each of the G-1 others along
 * its route, i.e. per axis (B/p) x the mean distance sum along it: torus S (= 2 x the load),
 * mesh (p^2 - 1)/3 (sum of |i - j| over i, j = p (p^2 - 1)/3, over p sources; the middle
 * link's load is not every link's); twisted torus B x mean distance (= 2 naxes x the load). */
static ici_phase a2a_phase(const ici_net *n, const unsigned *ax, unsigned na, double B)
{
    ici_phase ph = {.steps = na ? 1 : 0};
    unsigned far = 0, all = na == n->naxes;
    for (unsigned i = 0; i < na; i++) {
        unsigned a = ax[i], p = n->dims[a];
        double load;
        if (n->twisted && all) {
            load = B * n->twist_dist / (2.0 * n->naxes);
        } else if (n->wrap[a]) {
            double S = 0;
            for (unsigned d = 1; d < p; d++)
                S += d < p - d ? d : p - d;
            load = B / p * S / 2;
            ph.sent += B / p * S;
            far += p / 2;
        } else {
            load = B / p * (double)(p / 2) * (double)((p + 1) / 2);
            ph.sent += B / p * ((double)p * p - 1) / 3;
            far += p - 1;
        }
        ph.axes |= 1u << a;
        ph.bytes[a] = load;
        ph.xfer_ps[a] = xfer_ps(n, load);
    }
    if (n->twisted && all) {
        far = n->twist_far;
        ph.sent = B * n->twist_dist;
    }
    ph.lat_ps = n->hop_ps * far;
    return ph;
}

/* Fill g->ph for kind over axes (dimension order x, y, z; all-gather in reverse). */
static void plan(const ici_net *n, ici_inst *g)
{
    unsigned ax[3], na = 0;
    for (unsigned a = 0; a < n->naxes; a++)
        if ((g->axes & (1u << a)) && n->dims[a] > 1)
            ax[na++] = a;
    double B = (double)g->bytes;
    g->nph = 0;
    switch (g->kind) {
    case ICI_REDUCESCATTER:
    case ICI_ALLREDUCE: {
        double b = B;
        for (unsigned i = 0; i < na; i++) {
            g->ph[g->nph++] = ring_phase(n, ax[i], b);
            b /= n->dims[ax[i]];
        }
        if (g->kind == ICI_REDUCESCATTER)
            break;
        /* all-gather back to B: reverse axis order, output growing */
        for (unsigned i = na; i-- > 0;) {
            b *= n->dims[ax[i]];
            g->ph[g->nph++] = ring_phase(n, ax[i], b);
        }
        break;
    }
    case ICI_ALLGATHER: {
        /* output B; gather over the last axis first, so the axis gathered at step i outputs
         * B / (product of the axes gathered after it) */
        double b = B;
        for (unsigned i = 0; i < na; i++)
            b /= n->dims[ax[i]];
        for (unsigned i = na; i-- > 0;) {
            b *= n->dims[ax[i]];
            g->ph[g->nph++] = ring_phase(n, ax[i], b);
        }
        break;
    }
    case ICI_ALLTOALL:
        if (na)
            g->ph[g->nph++] = a2a_phase(n, ax, na, B);
        break;
    default:
        assert(0);
    }
}

static uint64_t plan_sent_bytes(const ici_inst *g)
{
    double s = 0;
    for (unsigned i = 0; i < g->nph; i++)
        s += g->ph[i].sent;
    return stats_round_sat(s);
}

/* ---- collective instances ---- */

static void inst_step(void *ctx);

/* Grow array `a` to n elements: 0, or -1 leaving `a` as it was. */
#define ICI_GROW(a, n)                                                                             \
    __extension__({                                                                                \
        __typeof__(a) q_ = realloc((a), (size_t)(n) * sizeof *(a));                                \
        q_ ? ((a) = q_, 0) : -1;                                                                   \
    })

/* A free group instance with room for k members, or NULL after kern_fail_nomem. */
static ici_inst *inst_get(ici_net *n, unsigned k)
{
    ici_inst *g = n->free_inst;
    if (g) {
        n->free_inst = g->next;
    } else {
        g = calloc(1, sizeof *g);
        if (!g) {
            kern_fail_nomem();
            return NULL;
        }
        g->net = n;
        g->next_all = n->all_inst;
        n->all_inst = g;
        n->inst_bytes += sizeof *g;
    }
    if (g->cap < k) {
        size_t per = 3 * sizeof(uint64_t) + sizeof(ici_done_fn) + sizeof(void *) + 1;
        if (ICI_GROW(g->ready, k) || ICI_GROW(g->nready, k) || ICI_GROW(g->start, k) ||
            ICI_GROW(g->done, k) || ICI_GROW(g->arg, k) || ICI_GROW(g->rec, k)) {
            g->next = n->free_inst; /* back to the pool, still of its old capacity */
            n->free_inst = g;
            kern_fail_nomem();
            return NULL;
        }
        n->inst_bytes += (k - g->cap) * per;
        g->cap = k;
    }
    if (!g->ev)
        g->ev = kern_event_new(inst_step, g);
    g->next = NULL;
    g->arrived = 0;
    g->mismatch = 0;
    g->k = k;
    return g;
}

/* Member index of the neighbour of member j along axis a in direction dir, -1 at a mesh edge.
 * SYMMETRIC: the representative is its own neighbour (an interior chip of every ring). */
static long nb_member(const ici_net *n, const ici_inst *g, unsigned j, unsigned a, unsigned dir)
{
    if (n->mode == ICI_MODE_SYMMETRIC)
        return 0;
    unsigned s = g->gstride[a], p = n->dims[a], c = j / s % p;
    if (dir == 0) {
        if (c + 1 < p)
            return (long)(j + s);
        return n->wrap[a] ? (long)j - (long)(p - 1) * s : -1;
    }
    if (c > 0)
        return (long)(j - s);
    return n->wrap[a] ? (long)j + (long)(p - 1) * s : -1;
}

static unsigned member_chip(const ici_net *n, const ici_inst *g, unsigned j)
{
    if (n->mode == ICI_MODE_SYMMETRIC)
        return g->leader;
    unsigned chip = g->leader;
    for (unsigned a = 0; a < n->naxes; a++)
        if (g->axes & (1u << a))
            chip += j / g->gstride[a] % n->dims[a] * n->stride[a];
    return chip;
}

static void inst_finish(ici_net *n, ici_inst *g)
{
    n->st_collectives++;
    n->st_mismatch += (uint64_t)g->mismatch;
    for (unsigned j = 0; j < g->k; j++) {
        if (g->rec[j])
            row_record(n, g->kind, g->axes, g->bytes, g->ready[j] - g->start[j]);
        g->done[j](g->arg[j], g->ready[j]);
    }
    g->next = n->free_inst;
    n->free_inst = g;
}

/* Skip phases with no steps; returns 0 when the collective is complete. */
static int inst_settle(ici_inst *g)
{
    while (g->cur_ph < g->nph && g->cur_step >= g->ph[g->cur_ph].steps) {
        g->cur_ph++;
        g->cur_step = 0;
    }
    return g->cur_ph < g->nph;
}

/* One step of the current phase for every member: each member sends on its + and - links of
 * the phase's axis when it is ready and the link is free; a member is ready for the next step
 * when its own sends have left and the data from both neighbours has arrived. The next step
 * is processed at the earliest member's ready time (one event per step per instance). */
static void inst_step(void *ctx)
{
    ici_inst *g = ctx;
    ici_net *n = g->net;
    if (!inst_settle(g)) {
        inst_finish(n, g);
        return;
    }
    const ici_phase *ph = &g->ph[g->cur_ph];
    for (unsigned j = 0; j < g->k; j++)
        g->nready[j] = 0;
    for (unsigned j = 0; j < g->k; j++) {
        unsigned slot = slot_of(n, member_chip(n, g, j));
        for (unsigned a = 0; a < n->naxes; a++) {
            if (!(ph->axes & (1u << a)))
                continue;
            for (unsigned dir = 0; dir < 2; dir++) {
                long nb = nb_member(n, g, j, a, dir);
                if (nb < 0)
                    continue;
                uint64_t *lf = &n->link_free[link_idx(n, slot, a, dir)];
                uint64_t st = u64max(g->ready[j], *lf);
                uint64_t end = tadd(st, ph->xfer_ps[a]);
                *lf = end;
                n->link_bytes += ph->bytes[a];
                if (slot == 0) {
                    n->link_dir_bytes[a][dir] += ph->bytes[a];
                    n->st_link_dir_bytes[a][dir] = stats_round_sat(n->link_dir_bytes[a][dir]);
                }
                g->nready[nb] = u64max(g->nready[nb], tadd(end, ph->lat_ps));
                g->nready[j] = u64max(g->nready[j], end);
            }
        }
    }
    uint64_t *t = g->ready;
    g->ready = g->nready;
    g->nready = t;
    n->st_link_bytes = stats_round_sat(n->link_bytes);
    g->cur_step++;
    if (!inst_settle(g)) {
        inst_finish(n, g);
        return;
    }
    uint64_t next = UINT64_MAX;
    for (unsigned j = 0; j < g->k; j++)
        if (g->ready[j] < next)
            next = g->ready[j];
    kern_notify_at(g->ev, next);
}

static uint64_t coll_start(ici_net *n, unsigned chip, ici_kind kind, unsigned axes, uint64_t bytes,
                           ici_done_fn done, void *arg)
{
    unsigned k = 1, leader = chip, gs[3] = {0, 0, 0};
    if (n->mode == ICI_MODE_FULL)
        for (unsigned a = 0; a < n->naxes; a++)
            if (axes & (1u << a)) {
                gs[a] = k;
                k *= n->dims[a];
                leader -= coord(n, chip, a) * n->stride[a];
            }
    uint64_t seq = n->coll_seq[slot_of(n, chip)]++;
    ici_inst *g = NULL, **pp = NULL;
    if (n->mode == ICI_MODE_FULL)
        for (pp = &n->pending[leader]; *pp; pp = &(*pp)->next)
            if ((*pp)->seq == seq && (*pp)->axes == axes) {
                g = *pp;
                break;
            }
    if (!g) {
        if (!(g = inst_get(n, k)))
            return 0; /* the run stops; its end reports the failure */
        g->leader = leader;
        g->seq = seq;
        g->kind = kind;
        g->axes = axes;
        g->bytes = bytes;
        memcpy(g->gstride, gs, sizeof gs);
        plan(n, g);
        if (n->mode == ICI_MODE_FULL) {
            g->next = n->pending[leader];
            n->pending[leader] = g;
            pp = &n->pending[leader];
        }
    } else if (g->kind != kind || g->bytes != bytes) {
        g->mismatch = 1; /* SPMD traces never do this; the first arrival's operands win */
    }
    unsigned j = 0;
    if (n->mode == ICI_MODE_FULL)
        for (unsigned a = 0; a < n->naxes; a++)
            if (axes & (1u << a))
                j += coord(n, chip, a) * gs[a];
    uint64_t now = kern_now();
    g->done[j] = done;
    g->arg[j] = arg;
    g->start[j] = now;
    g->rec[j] = n->mode == ICI_MODE_SYMMETRIC || chip == 0;
    if (++g->arrived == g->k) {
        if (pp)
            *pp = g->next; /* unlink from the pending list */
        g->next = NULL;
        /* The group starts when its last member arrives (collectives synchronise). */
        for (unsigned i = 0; i < g->k; i++)
            g->ready[i] = now;
        g->cur_ph = 0;
        g->cur_step = 0;
        kern_notify(g->ev, 0);
    }
    return plan_sent_bytes(g);
}

/* ---- point to point ---- */

static void chan_push(ici_chan *ch, uint64_t t)
{
    if (unit_ring_room(&ch->arr, &ch->cap, &ch->head, ch->count, sizeof *ch->arr))
        return; /* out of memory: the arrival is dropped; the run is reported as failed */
    ch->arr[(ch->head + ch->count++) % ch->cap] = t;
}

/* Sends are eager (the receiver's buffer is assumed posted): the data crosses the link when it
 * is free and arrives one hop later; the send completes on arrival. A recv completes when the
 * matching send's data has arrived. SYMMETRIC: every chip sends the same way at the same time,
 * so the representative receives from direction d what it itself sent towards -d. A transfer
 * across a missing mesh edge link is timed as if the neighbour existed (counted as `edge`). */
static uint64_t p2p_start(ici_net *n, unsigned chip, ici_kind kind, unsigned a, unsigned dir,
                          uint64_t bytes, ici_done_fn done, void *arg)
{
    uint64_t now = kern_now();
    int rec = n->mode == ICI_MODE_SYMMETRIC || chip == 0;
    uint64_t xfer = xfer_ps(n, (double)bytes);
    long peer = n->mode == ICI_MODE_FULL ? nb_chip(n, chip, a, dir) : (long)chip;
    n->st_p2p++;
    if (kind == ICI_SEND) {
        uint64_t *lf = &n->link_free[link_idx(n, slot_of(n, chip), a, dir)];
        uint64_t st = u64max(now, *lf);
        uint64_t arr = tadd(tadd(st, xfer), n->hop_ps);
        *lf = tadd(st, xfer);
        n->link_bytes += (double)bytes;
        if (slot_of(n, chip) == 0) {
            n->link_dir_bytes[a][dir] += (double)bytes;
            n->st_link_dir_bytes[a][dir] = stats_round_sat(n->link_dir_bytes[a][dir]);
        }
        n->st_link_bytes = stats_round_sat(n->link_bytes);
        if (peer < 0) {
            n->st_edge++;
        } else {
            ici_chan *ch = &n->chan[link_idx(n, slot_of(n, (unsigned)peer), a, !dir)];
            if (ch->rwait) {
                ch->rwait = 0;
                if (ch->rrec)
                    row_record(n, ICI_RECV, 1u << a, ch->rbytes, arr - ch->rstart);
                ch->rdone(ch->rarg, arr);
            } else {
                chan_push(ch, arr);
            }
        }
        if (rec)
            row_record(n, ICI_SEND, 1u << a, bytes, arr - now);
        done(arg, arr);
        return bytes;
    }
    ici_chan *lc = &n->chan[link_idx(n, slot_of(n, chip), a, dir)];
    if (n->lone_stage && n->mode == ICI_MODE_SYMMETRIC && !lc->count) {
        /* a pipeline stage alone: the neighbouring stage is never late, the data arrives one
         * transfer after the recv is issued */
        if (rec)
            row_record(n, ICI_RECV, 1u << a, bytes, tadd(xfer, n->hop_ps));
        done(arg, tadd(now, tadd(xfer, n->hop_ps)));
        return 0;
    }
    if (peer < 0) {
        n->st_edge++;
        if (rec)
            row_record(n, ICI_RECV, 1u << a, bytes, tadd(xfer, n->hop_ps));
        done(arg, tadd(now, tadd(xfer, n->hop_ps)));
        return 0;
    }
    ici_chan *ch = &n->chan[link_idx(n, slot_of(n, chip), a, dir)];
    if (ch->count) {
        uint64_t arr = u64max(now, ch->arr[ch->head]);
        ch->head = (ch->head + 1) % ch->cap;
        ch->count--;
        if (rec)
            row_record(n, ICI_RECV, 1u << a, bytes, arr - now);
        done(arg, arr);
        return 0;
    }
    assert(!ch->rwait); /* at most one waiting recv per channel (the ICI unit ensures it) */
    ch->rwait = 1;
    ch->rrec = rec;
    ch->rdone = done;
    ch->rarg = arg;
    ch->rstart = now;
    ch->rbytes = bytes;
    return 0;
}

uint64_t ici_net_start(ici_net *n, unsigned chip, ici_kind kind, unsigned axes, unsigned dir,
                       uint64_t bytes, ici_done_fn done, void *arg)
{
    assert(chip < n->nchips && done);
    axes &= (1u << n->naxes) - 1;
    if (kind == ICI_SEND || kind == ICI_RECV) {
        unsigned a = 0;
        while (a + 1 < n->naxes && !(axes & (1u << a)))
            a++;
        return p2p_start(n, chip, kind, a, dir & 1, bytes, done, arg);
    }
    return coll_start(n, chip, kind, axes, bytes, done, arg);
}

/* ---- barrier ---- */

static void bar_fire(void *ctx)
{
    ici_net *n = ctx;
    /* Release the current waiters; a released chip may arrive at the next barrier at once. */
    ici_waiter *w = n->bar_wait;
    unsigned cnt = n->bar_n;
    n->bar_wait = n->bar_run;
    n->bar_run = w;
    n->bar_n = 0;
    n->st_barriers++;
    for (unsigned i = 0; i < cnt; i++)
        w[i].done(w[i].arg);
}

void ici_net_barrier(ici_net *n, unsigned chip, void (*done)(void *arg), void *arg)
{
    assert(chip < n->nchips && done);
    if (!n->bar_ev)
        n->bar_ev = kern_event_new(bar_fire, n);
    if (n->bar_n == n->bar_cap) {
        unsigned cap = n->bar_cap ? 2 * n->bar_cap : 8;
        if (ICI_GROW(n->bar_wait, cap) || ICI_GROW(n->bar_run, cap)) {
            kern_fail_nomem(); /* the waiter is dropped; the run is reported as failed */
            return;
        }
        n->bar_cap = cap;
    }
    n->bar_wait[n->bar_n++] = (ici_waiter){done, arg, chip};
    /* A barrier is a zero-byte all-reduce over every axis: released 2(p-1) hops per axis after
     * the last chip arrives (symmetric mode: every chip arrives with the representative). */
    uint64_t lat = 0;
    for (unsigned a = 0; a < n->naxes; a++)
        lat += 2 * (uint64_t)(n->dims[a] - 1) * n->hop_ps;
    if (n->mode == ICI_MODE_SYMMETRIC || n->bar_n == n->nchips)
        kern_notify(n->bar_ev, lat);
}

unsigned ici_net_barrier_missing(const ici_net *n, unsigned *first)
{
    if (n->mode == ICI_MODE_SYMMETRIC || !n->bar_n)
        return 0; /* released by time alone, or nobody waiting */
    *first = n->nchips;
    for (unsigned c = 0; c < n->nchips && *first == n->nchips; c++) {
        int here = 0;
        for (unsigned i = 0; i < n->bar_n && !here; i++)
            here = n->bar_wait[i].chip == c;
        if (!here)
            *first = c;
    }
    return n->nchips - n->bar_n;
}

/* ---- statistics ---- */

static double row_busbw_gbs(const void *ctx)
{
    return ici_row_busbw(ctx) * 1e-9;
}

void ici_net_register_stats(ici_net *n, stats_reg *r)
{
    static const stats_def net_defs[] = {
        STATS_U64(ici_net, st_chips, "chips", "chips", "chips in the network"),
        STATS_U64(ici_net, st_axes, "axes", "axes", "torus/mesh axes"),
        STATS_U64(ici_net, st_links_per_chip, "links_per_chip", "links",
                  "ICI ports per chip (ici.links_per_chip)"),
        STATS_U64(ici_net, st_links_used, "links_used", "links",
                  "links per chip the topology uses (2 per axis)"),
        STATS_U64(ici_net, st_link_bytes, "link_bytes", "B",
                  "bytes carried by link directions (all chips in full mode, the representative's "
                  "links in symmetric mode)"),
        STATS_U64(ici_net, st_collectives, "collectives", "ops",
                  "collective instances completed (per group)"),
        STATS_U64(ici_net, st_p2p, "p2p", "ops", "sends and recvs"),
        STATS_U64(ici_net, st_barriers, "barriers", "ops", "barriers released"),
        STATS_U64(ici_net, st_mismatch, "mismatches", "ops",
                  "collectives whose kind or size differed between chips of a group"),
        STATS_U64(ici_net, st_edge, "edge", "ops", "sends/recvs across a missing mesh edge link"),
    };
    stats_table(r, "ici", n, net_defs, STATS_NDEFS(net_defs));
    for (unsigned a = 0; a < n->naxes && a < 3; a++)
        for (unsigned dir = 0; dir < 2; dir++) {
            char nm[24];
            snprintf(nm, sizeof nm, "link_%c%c_bytes", "xyz"[a], dir ? '-' : '+');
            stats_u64(r, "ici", nm, "B", "bytes chip 0 (the representative) sent on this link",
                      &n->st_link_dir_bytes[a][dir]);
        }
    for (unsigned k = 0; k < ICI_KIND_COUNT; k++)
        for (unsigned a = 0; a < ICI_NAXES_MASKS; a++) {
            ici_row *row = &n->rows[k][a];
            if (!row->count)
                continue;
            char base[24], nm[40], ax[4];
            snprintf(base, sizeof base, "%s_%s", kind_names[k], ici_axes_name(a, ax));
            snprintf(nm, sizeof nm, "%s_count", base);
            stats_u64(r, "ici", nm, "ops", "operations of this kind over these axes", &row->count);
            snprintf(nm, sizeof nm, "%s_bytes", base);
            stats_u64(r, "ici", nm, "B", "instruction bytes (per chip)", &row->bytes);
            snprintf(nm, sizeof nm, "%s_time_ps", base);
            stats_u64(r, "ici", nm, "ps", "issue-to-completion time, summed", &row->time_ps);
            snprintf(nm, sizeof nm, "%s_busbw", base);
            stats_formula(r, "ici", nm, "GB/s", "achieved bus bandwidth: bytes x factor / time",
                          row_busbw_gbs, row);
        }
}
