/* ici.h - inter-chip interconnect: the ICI unit (ici.c) and the network model (icinet.c).
 * The lead's core.c and chip.c use ici_net_new/free/chips/axes/barrier/register_stats; the
 * unit, the tests and the pod estimate (pod.c) use the rest. Model: docs/models-ici.md. */
#ifndef TPU_ICI_H
#define TPU_ICI_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "config.h"
#include "stats.h"

typedef struct ici_net ici_net;
typedef enum { ICI_MODE_FULL, ICI_MODE_SYMMETRIC } ici_mode;

/* dims: "16x16", "4x4x4" etc. (NULL = cfg->ici_dims); wrap from cfg->ici_wrap (letters of axes
 * that do not exist in dims are ignored, so a 2D wrap string serves a 3D pod); twisted from
 * cfg->ici_twisted (k x k x 2k-like shapes, every axis wrapped). `c` must outlive the network.
 * NULL with e filled on bad dims or wrap, a shape that cannot be twisted, or a topology that
 * needs more than cfg->ici_links_per_chip links per chip (2 per axis longer than 1). */
ici_net *ici_net_new(const cfg *c, const char *dims, ici_mode mode, err *e);
void ici_net_free(ici_net *n);
/* SYMMETRIC mode, one pipeline stage's trace simulated alone: a point-to-point recv for which
 * nothing has been sent completes one transfer (bytes at link bandwidth + one hop) after it is
 * issued, as if the neighbouring stage were never late (no bubble); off by default. */
void ici_net_set_lone_stage(ici_net *n, int on);
unsigned ici_net_chips(const ici_net *n);
/* Number of torus axes (1..3); ICI instructions may only name axes below it. */
unsigned ici_net_axes(const ici_net *n);
/* SYNC_BARRIER: done(arg) is called (from a kernel event, never synchronously) once every chip
 * of the network has arrived (FULL), or after one all-reduce latency of a zero-byte message
 * (SYMMETRIC). */
void ici_net_barrier(ici_net *n, unsigned chip, void (*done)(void *arg), void *arg);
/* After a run: how many chips have not arrived at the barrier others wait at (0 if none is
 * waiting, or in symmetric mode), and in *first the lowest such chip. For deadlock messages. */
unsigned ici_net_barrier_missing(const ici_net *n, unsigned *first);
/* Group "ici": topology, link bytes, per-collective rows (count, bytes, time, bus bandwidth).
 * The network must outlive the registry. */
void ici_net_register_stats(ici_net *n, stats_reg *r);

/* ---- operations (the ICI unit drives these; tests may call them directly) ---- */

typedef enum ici_kind {
    ICI_SEND,
    ICI_RECV,
    ICI_ALLREDUCE,
    ICI_ALLGATHER,
    ICI_REDUCESCATTER,
    ICI_ALLTOALL,
    ICI_KIND_COUNT
} ici_kind;

/* "send", "recv", "allreduce", ... */
const char *ici_kind_name(ici_kind k);
/* The kind an ICI opcode performs, or -1 for a non-ICI opcode. */
int ici_kind_of_op(unsigned op);

/* Completion callback: the operation ends at end_ps (>= the current kernel time). It may be
 * called from within ici_net_start or from a kernel event, so it must only record and schedule
 * (e.g. kern_notify_at), never start further ICI operations. */
typedef void (*ici_done_fn)(void *arg, uint64_t end_ps);

/* Start one operation of `chip` at the current kernel time. axes: bit mask x=1, y=2, z=4 (for
 * send/recv the lowest set bit names the axis); axes beyond the topology are ignored. dir: 0 =
 * +, 1 = - (send: towards that neighbour; recv: from that neighbour). bytes: per chip, as in
 * isa_ops.def. Collectives are matched across a group by the per-chip collective sequence
 * number (FULL), sends and recvs pairwise per link in order. At most one recv may be waiting
 * per chip, axis and direction. Returns the bytes this chip transmits on its links. */
uint64_t ici_net_start(ici_net *n, unsigned chip, ici_kind kind, unsigned axes, unsigned dir,
                       uint64_t bytes, ici_done_fn done, void *arg);

/* ---- description and results (for reports) ---- */

/* One row per (kind, axes) used by chip 0 (FULL) or the representative chip (SYMMETRIC). */
typedef struct ici_row {
    ici_kind kind;
    unsigned axes; /* bit mask */
    char algo[64]; /* e.g. "bidir-ring RS+AG over x,y" */
    uint64_t count;
    uint64_t bytes;    /* instruction byte counts, summed */
    uint64_t time_ps;  /* issue to completion on the chip, summed */
    double bus_factor; /* bus bytes per instruction byte, e.g. 2(n-1)/n for all-reduce */
} ici_row;
unsigned ici_net_nrows(const ici_net *n);
const ici_row *ici_net_row(const ici_net *n, unsigned i);
/* Achieved bus bandwidth of a row in bytes/s (bytes x bus_factor / time), 0 if no time. */
double ici_row_busbw(const ici_row *r);
/* Axis sizes (missing axes = 1). */
void ici_net_dims(const ici_net *n, unsigned dims[3]);
/* "16x24x24 torus(xyz)" / "2x4 mesh" / "4x4 torus(x) mesh(y)"; static until ici_net_free. */
const char *ici_net_describe(const ici_net *n);
/* Collectives whose kind or size differed between the chips of a group (FULL, per-chip
 * traces that disagree), counted once per collective; the first arrival's operands were used. */
uint64_t ici_net_mismatches(const ici_net *n);
/* Bytes the network has allocated (state arrays and pooled collective instances). */
size_t ici_net_footprint(const ici_net *n);
/* "x", "xy", ... for an axes mask; buf of at least 4 bytes. */
const char *ici_axes_name(unsigned axes, char *buf);

#endif
