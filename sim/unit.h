/* unit.h - the interface every unit model implements (the models and the table of unit
 * kinds that lists them: sim/units/units.h).
 *
 * The core owns one in-order queue per unit. When the instruction at the head of a queue
 * has its semaphore wait satisfied, the core asks the unit unit_can_start(); if yes it
 * calls unit_start() and the unit later reports completion through unit_finish() (which
 * signals the instruction's semaphore and lets the core issue the next one). A unit that
 * said "not now" must call unit_wake() at the very time the resource it lacked frees up (a
 * unit_finish at that time is not enough): the core asks a refused head again only then, never
 * by polling. Instructions
 * reaching a unit have been validated by the core (operand ranges, VMEM/HBM bounds, datatype
 * supported, weights loaded: the generic part by the core, the rest by the unit's own check op
 * at dispatch), so models assert, never fail.
 *
 * Callers use the unit_* wrappers, never u->ops->x directly. */
#ifndef TPU_UNIT_H
#define TPU_UNIT_H

#include <stdint.h>

#include "err.h"
#include "isa.h"
#include "config.h"
#include "stats.h"

typedef struct unit unit;
struct unit_kind;
struct hbm;
struct vmem;
struct ici_net;

/* What a unit may use from the chip it lives in. Owned by the chip; outlives its units. */
typedef struct unit_env {
    const cfg *cfg;
    double cycle_ps;     /* ps per core clock cycle */
    struct hbm *hbm;     /* the chip's HBM (DMA) */
    uint64_t hbm_bytes;  /* HBM capacity, for checks */
    uint64_t vmem_bytes; /* VMEM capacity (all cores), for checks */
    struct vmem *vmem;   /* the chip's VMEM bandwidth arbiter (MXU, VPU, DMA) */
    struct ici_net *net; /* the network this chip is attached to (ICI), may be NULL */
    unsigned chip_id;    /* this chip's index in the network */
    void *host;          /* the core, passed back to the callbacks */
    void (*done)(void *host, unit *u, uint32_t token);
    void (*wake)(void *host, unit *u);
    /* unit_wake_at (a host of units that call it must set it: the chip and the tests'). */
    void (*wake_at)(void *host, unit *u, uint64_t t_ps);
} unit_env;

/* What one instruction amounts to, known at dispatch (filled by the unit's check op). */
typedef struct unit_work {
    uint64_t flops;    /* floating-point (or integer MAC x2) operations */
    uint64_t ideal_ps; /* matrix units: the FLOPs at the peak rate of their datatype */
    uint64_t bytes;    /* bytes the instruction moves (HBM or ICI, per the unit kind) */
} unit_work;

typedef struct unit_ops {
    size_t size; /* bytes of the model's unit struct (struct unit first) */
    /* Initialise u, which unit_new allocated zeroed (size bytes) and whose common fields it
     * filled. 0; or -1 with e, having released what it took (unit_new then frees u). */
    int (*init)(unit *u, err *e);
    /* At dispatch, in trace order: check `in` beyond the decoder's ranges (VMEM/HBM bounds,
     * datatype supported, state such as weights loaded, which the unit keeps in dispatch
     * order apart from its timing state) and fill w (zeroed by the caller). 0 if valid; else
     * -1 with e saying what is wrong (the caller prefixes the trace and instruction).
     * NULL: always valid, no FLOPs, no bytes. */
    int (*check)(unit *u, const isa_insn *in, unit_work *w, err *e);
    /* Nonzero if `in` can start now; else the unit will call unit_wake() later. */
    int (*can_start)(unit *u, const isa_insn *in);
    /* Begin `in` now; call unit_finish(u, token) when it completes. */
    void (*start)(unit *u, const isa_insn *in, uint32_t token);
    /* The model's counters, rows over its struct (stats_table), registered after the common
     * ones below; then stats, if set, registers what a table cannot say (NULL: nothing). */
    const stats_def *defs;
    size_t ndefs;
    void (*stats)(unit *u, stats_reg *r);
    /* Release what init took (unit_free then frees u). */
    void (*fini)(unit *u);
} unit_ops;

/* The ops table of the model whose unit struct is `type` and whose functions are <p>_init,
 * <p>_check, <p>_can_start, <p>_start and <p>_fini, then its counters (.defs, .stats):
 * `const unit_ops sc_ops = UNIT_OPS(sc, sc, .defs = sc_defs, .ndefs = STATS_NDEFS(sc_defs));`. */
#define UNIT_OPS(p, type, ...)                                                                     \
    {                                                                                              \
        .size = sizeof(type), .init = p##_init, .check = p##_check, .can_start = p##_can_start,    \
        .start = p##_start, .fini = p##_fini, __VA_ARGS__                                          \
    }

/* The counters every unit keeps, in registration order: struct unit's fields and their
 * stats rows (unit_register_stats) come from this one list. X(field, unit, description). */
#define UNIT_COUNTERS(X)                                                                           \
    X(insns, "insns", "instructions completed")                                                    \
    /* busy: the union of the unit's pipes, not a sum */                                           \
    X(busy_ps, "ps", "time doing work")                                                            \
    X(stall_vmem_ps, "ps", "time added by VMEM bandwidth")                                         \
    /* limited or contended HBM bandwidth */                                                       \
    X(stall_hbm_ps, "ps", "time added by HBM bandwidth")                                           \
    /* floating-point (or integer MAC x2) operations */                                            \
    X(flops, "FLOP", "operations done")                                                            \
    /* DMA: HBM<->VMEM, ICI: bytes sent */                                                         \
    X(bytes, "B", "bytes moved")                                                                   \
    /* the energy model charges VMEM traffic per unit */                                           \
    X(vmem_rd_bytes, "B", "bytes read from VMEM")                                                  \
    X(vmem_wr_bytes, "B", "bytes written to VMEM")

/* Common state, the first member of every unit struct. */
struct unit {
    const unit_ops *ops;
    const struct unit_kind *kind; /* its row of the unit table (NULL: not in the table) */
    const unit_env *env;
    char name[32]; /* stats group, e.g. "mxu3" */
    unsigned index;
    /* Counters kept by the model (the core keeps queue and semaphore stalls). */
#define UNIT_FIELD(field, unit, desc) uint64_t field;
    UNIT_COUNTERS(UNIT_FIELD)
#undef UNIT_FIELD
};

/* Wrappers (unit.c). unit_new allocates the unit (ops->size bytes), fills the common fields
 * (its row of the unit table, name "<kind name><index>") and calls ops->init; NULL with e on
 * failure. unit_free calls ops->fini and frees the unit. */
unit *unit_new(const unit_ops *ops, const unit_env *env, unsigned index, err *e);
int unit_check(unit *u, const isa_insn *in, unit_work *w, err *e);
int unit_can_start(unit *u, const isa_insn *in);
void unit_start(unit *u, const isa_insn *in, uint32_t token);
void unit_register_stats(unit *u, stats_reg *r);
void unit_free(unit *u);
/* Called by models. */
void unit_finish(unit *u, uint32_t token);
void unit_wake(unit *u);
/* unit_wake at the future time t_ps, for a unit that refused an instruction and knows when
 * the resource it lacks frees: the host acts at t_ps as if unit_wake had been called in that
 * instant's timed phase, so the unit need not arm an event of its own for it (the host folds
 * the wake into the issue it runs then: one kernel event, not two). */
void unit_wake_at(unit *u, uint64_t t_ps);
/* unit_finish, then, if the unit refused an instruction since (*refused set by its
 * can_start while every slot was busy), clear the flag and wake the core: the slot this
 * completion frees is what the refused instruction waits for. */
void unit_finish_wake(unit *u, uint32_t token, int *refused);

/* Grow a full FIFO ring (count == *cap elements of `size` bytes, the oldest at *head) to twice
 * its capacity, or to `first` slots when it has none, the oldest moved to slot 0. Returns the
 * new ring (the old one freed; *cap and *head updated), or NULL on out-of-memory with the ring
 * untouched. */
void *unit_ring_grow(void *ring, unsigned *cap, unsigned *head, unsigned count, size_t size,
                     unsigned first);
/* Room for one more element in the FIFO ring *ringp (a T **; elements of `size` bytes): grows
 * it with unit_ring_grow only when full, so never per instruction in steady state. 0, or -1
 * after kern_fail_nomem() (the caller drops the element; the run is reported as failed). */
int unit_ring_grow_slow(void *ringp, unsigned *cap, unsigned *head, unsigned count, size_t size);
static inline int unit_ring_room(void *ringp, unsigned *cap, unsigned *head, unsigned count,
                                 size_t size)
{
    return count < *cap ? 0 : unit_ring_grow_slow(ringp, cap, head, count, size);
}

/* An instruction past issue that completes at done_ps. */
typedef struct unit_flight {
    uint64_t done_ps;
    uint32_t token;
} unit_flight;

/* The in-flight FIFO of a model's pipe, in completion order (the MXU's draining matmuls, each
 * vector pipe's ops). unit_ring_init gives it a first capacity; it grows only when full. */
typedef struct unit_ring {
    unit_flight *v;
    unsigned cap, head, count;
} unit_ring;

/* 0, or -1 when there is no memory (the caller reports ERR_NOMEM). Release with
 * unit_ring_fini. */
int unit_ring_init(unit_ring *r, unsigned cap);
void unit_ring_fini(unit_ring *r);

/* The oldest flight, or NULL when the ring is empty. */
static inline const unit_flight *unit_ring_first(const unit_ring *r)
{
    return r->count ? &r->v[r->head] : NULL;
}

/* Append a flight. 0, or -1 after kern_fail_nomem() (the flight is dropped; the run is
 * reported as failed). */
static inline int unit_ring_push(unit_ring *r, uint64_t done_ps, uint32_t token)
{
    if (unit_ring_room(&r->v, &r->cap, &r->head, r->count, sizeof *r->v))
        return -1;
    r->v[(r->head + r->count++) % r->cap] = (unit_flight){done_ps, token};
    return 0;
}

/* Complete, in order, every flight done by `now`: each leaves the ring and counts in
 * u->insns before unit_finish, which may start (and push) the next instruction. */
static inline void unit_ring_finish_due(unit_ring *r, unit *u, uint64_t now)
{
    while (r->count && r->v[r->head].done_ps <= now) {
        uint32_t token = r->v[r->head].token;
        r->head = (r->head + 1) % r->cap;
        r->count--;
        u->insns++;
        unit_finish(u, token);
    }
}

/* Helpers for check ops (bytes of n elements: isa_dtype_bytes). */
/* 0 if [addr, addr+bytes) lies in the chip's VMEM; else -1 with e: "<what> VMEM range
 * [0x.., 0x..) outside the N-byte VMEM". */
int unit_check_vmem(const unit *u, const char *what, uint64_t addr, uint64_t bytes, err *e);

/* ps for a (possibly fractional) number of cycles, rounded up. */
static inline uint64_t unit_cycles_to_ps(const unit *u, double cycles)
{
    double ps = cycles * u->env->cycle_ps;
    uint64_t r = (uint64_t)ps;
    return (double)r < ps ? r + 1 : r;
}

#endif
