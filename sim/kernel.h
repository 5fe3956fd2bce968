/* kernel.h - the C face of the SystemC discrete-event kernel (kernel.cpp is the only C++).
 *
 * Time is picoseconds in a uint64_t. Each simulation starts at time zero: kern_begin()
 * rebases the clock, so one process can run many simulations one after another. An event
 * is a C callback plus a context; notifying an event that is already pending keeps the
 * earlier of the two times (SystemC's rule), so a model keeps at most one pending
 * notification per event and uses several events when it needs several. The kernel is the
 * project's only process-wide state; events are pooled and reused across simulations. */
#ifndef TPU_KERNEL_H
#define TPU_KERNEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kern_event kern_event;
typedef void (*kern_fn)(void *ctx);

#define KERN_FOREVER UINT64_MAX

/* Start a new simulation at time zero. Events of a previous simulation must be freed. */
void kern_begin(void);
/* Create an event that calls fn(ctx) each time it triggers. Never returns NULL (aborts on
 * out-of-memory). */
kern_event *kern_event_new(kern_fn fn, void *ctx);
/* Cancel any pending notification and return the event to the pool. */
void kern_event_free(kern_event *ev);
/* Trigger after delay_ps (0 = later in the current time step, after the caller returns). */
void kern_notify(kern_event *ev, uint64_t delay_ps);
/* Trigger at absolute time t_ps (>= kern_now()). */
void kern_notify_at(kern_event *ev, uint64_t t_ps);
/* Trigger at absolute time t_ps (>= kern_now()) after that time's timed notifications: in
 * its first delta cycle, with the delay-0 notifications the timed callbacks made (so the
 * callback sees everything of the instant's timed phase, as one notified with delay 0 by a
 * timed callback would). A pending notification keeps the earlier time, as kern_notify. One
 * event in place of a timed callback whose only work is to notify a delta callback. */
void kern_notify_at_delta(kern_event *ev, uint64_t t_ps);
void kern_cancel(kern_event *ev);
/* Current time in ps since kern_begin(). */
uint64_t kern_now(void);
/* Run until no event is pending, kern_stop() is called, or the time reaches limit_ps
 * (KERN_FOREVER for none). Returns 1 if events are still pending, 0 otherwise. */
int kern_run(uint64_t limit_ps);
/* Make kern_run return once the callbacks of the current delta cycle have run (SystemC's
 * sc_pause); a later kern_run resumes there. */
void kern_stop(void);
/* Nonzero when an event was asked for past the end of the 64-bit ps clock since
 * kern_begin(); kern_run() has then returned early and the simulation is invalid. */
int kern_overflowed(void);
/* For a model whose run-time allocation failed (no callback can return an error): flag it
 * and make kern_run return after the current callback. The caller leaves its state as it was
 * and the simulation is invalid; whoever called kern_run reports it (ERR_NOMEM). */
void kern_fail_nomem(void);
/* Nonzero when kern_fail_nomem was called since kern_begin(). */
int kern_out_of_memory(void);
/* Same-instant order, for tests: the callbacks triggered together (the timed notifications
 * due at one time, or one delta cycle's) run in SystemC's order (KERN_ORDER_SYSTEMC, the
 * default), reversed, or shuffled from `seed`. Models must give the same results under all
 * three (docs/architecture.md, "Same-instant semantics"). Kept across kern_begin. */
enum { KERN_ORDER_SYSTEMC, KERN_ORDER_REVERSE, KERN_ORDER_SHUFFLE };
void kern_set_order(int order, uint64_t seed);
/* Number of callbacks run since kern_begin (for benchmarks). */
uint64_t kern_event_count(void);

#ifdef __cplusplus
}
#endif
#endif
