/* units.h - the table of unit kinds: every kind of unit a chip has, which ISA unit class it
 * serves, how many a chip has, its time-split class and how reports and timelines show it.
 *
 * The core routes each opcode through its ISA unit class to the row serving it and from
 * there to that kind's queues; the chip creates the units row by row; reports, the timeline
 * and the plots list them in table order. None of them names a unit kind: adding a unit is
 * one model file and one row here (docs/architecture.md, "How to add a unit"). */
#ifndef TPU_UNITS_H
#define TPU_UNITS_H

#include "config.h"
#include "err.h"
#include "isa.h"
#include "unit.h"

/* Time-split class: while a unit of a class is busy, the chip's time is charged to the
 * first busy class in this order (compute, then memory, then exposed communication). */
typedef enum unit_time {
    UNIT_TIME_COMPUTE,
    UNIT_TIME_MEMORY,
    UNIT_TIME_COMM,
    UNIT_TIME_COUNT
} unit_time;

/* Which chip total a unit's instruction bytes add to (core hbm_bytes or ici_bytes), and
 * which timeline bandwidth counter shows them. DCN bytes add to neither (the pod estimate
 * reads the DCN unit's own counters). */
typedef enum unit_traffic {
    UNIT_TRAFFIC_NONE,
    UNIT_TRAFFIC_HBM,
    UNIT_TRAFFIC_ICI,
    UNIT_TRAFFIC_DCN
} unit_traffic;

typedef struct unit_kind {
    const char *name;  /* instances are "<name><index>": stats groups, report "kind" */
    const char *title; /* what it is, for people ("MXU", "vector unit") */
    const unit_ops *ops;
    isa_unit serves; /* the ISA unit class whose opcodes this kind runs */
    /* Instances per chip; has_net: the chip is attached to an ICI network. */
    unsigned (*count)(const cfg *c, int has_net);
    const char *select; /* operand naming the instance ("mxu"); NULL: always instance 0 */
    const char *absent; /* the error for one of its opcodes on a chip that has none */
    unit_time time;
    unit_traffic traffic;
    int matrix; /* its FLOPs are matrix FLOPs: MXU FLOPs, ideal time at peak, MXU util */
} unit_kind;

extern const unit_kind unit_kinds[];
extern const unsigned unit_kind_count;

/* The row whose ops are `ops`, or NULL (a model outside the table, e.g. a test fake). */
const unit_kind *unit_kind_of_ops(const unit_ops *ops);
/* The row whose instances are named like `group` ("ici0": the ici row; the name followed by
 * one or more digits), or NULL ("core", "hbm", the network's "ici"). For dump-time walks of
 * the stats registry, never per instruction. */
const unit_kind *unit_kind_of_group(const char *group);
/* A row's position in unit_kinds (display order), unit_kind_count for NULL. */
unsigned unit_kind_rank(const unit_kind *k);
/* The time split of a run: the chip's time goes to the first time class with a unit busy
 * (compute, then memory, then communication), else, while work remains, to idle. Index: a
 * unit_time, or UNIT_SPLIT_IDLE. The core's counter of part k is unit_split_stat(k)
 * ("t_compute_ps", "t_memory_ps", "t_comm_ps", "t_idle_ps", described by unit_split_desc),
 * reports name it unit_split_name(k) ("compute", "memory", "exposed_comm", "idle"). */
#define UNIT_SPLIT_IDLE  UNIT_TIME_COUNT
#define UNIT_SPLIT_COUNT (UNIT_TIME_COUNT + 1)
const char *unit_split_stat(unsigned k);
const char *unit_split_name(unsigned k);
const char *unit_split_desc(unsigned k);
/* "compute", "memory", "communication". */
const char *unit_time_name(unit_time t);

/* Check a table of n kinds: every ISA unit class but SYNC is served by exactly one row, no
 * row serves SYNC, and a row's select operand exists in every opcode of its class. 0 if
 * so; else -1 with e naming the class or operand. The core checks unit_kinds at start-up. */
int unit_kinds_check(const unit_kind *kinds, unsigned n, err *e);
/* Units of every kind on a chip built from c (with or without an ICI network). */
unsigned unit_kinds_total(const cfg *c, int has_net);

/* The models. */
extern const unit_ops mxu_ops, vpu_ops, dma_ops, ici_ops, sc_ops, dcn_ops;

#endif
