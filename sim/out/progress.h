/* progress.h - a one-line progress indicator on stderr for long replays, driven by the core's
 * completion observer; plus a fan-out that lets several observers share one sim_hooks. */
#ifndef TPU_PROGRESS_H
#define TPU_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#include "core.h"
#include "unit.h"

#define PROGRESS_CHECK_EVERY  65536 /* completions between looks at the wall clock */
#define PROGRESS_MIN_INTERVAL 0.5   /* seconds between redraws */

typedef struct progress progress;

/* A progress line on `out` (normally stderr). total_insns = instructions in the trace (0 if
 * unknown: no percentage or ETA then). When `enabled` is 0 the observer only counts and
 * nothing is ever printed: the CLI passes isatty(2) && !quiet. Caller frees with
 * progress_free. NULL with e filled (ERR_NOMEM) on out-of-memory. */
progress *progress_new(FILE *out, uint64_t total_insns, int enabled, err *e);
/* core_observer (ctx = the progress). Every PROGRESS_CHECK_EVERY completions it reads the
 * wall clock and, at most every PROGRESS_MIN_INTERVAL s, rewrites the status line with '\r':
 * instructions done / total (percent), simulated time, instructions per wall-second, ETA. */
void progress_observe(void *p, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                      uint64_t end_ps, unsigned region, uint64_t bytes);
/* The replay finished: the final line counts every instruction of the trace (sync and mark
 * instructions never complete on a unit, so the observer alone stops short of 100%). Then
 * as progress_finish. */
void progress_complete(progress *p);
/* End the line (newline) if anything was drawn. Safe to call more than once. */
void progress_finish(progress *p);
/* progress_finish, then release. NULL is fine. */
void progress_free(progress *p);
/* Completions seen so far (sync and mark instructions do not complete on a unit, so this can
 * stay below the trace's instruction count). */
uint64_t progress_done(const progress *p);
/* Lines drawn so far (for tests). */
uint64_t progress_draws(const progress *p);
/* Replace the wall clock (seconds, monotonic) - for tests; NULL restores the real one. */
void progress_set_clock(progress *p, double (*now)(void *ctx), void *ctx);
/* Set the instruction total (UINT64_MAX or 0: unknown). Has the signature of sim_hooks.start
 * (start_ctx = the progress), so the count comes from the replay's own reader. */
void progress_start(void *p, uint64_t total_insns);

/* Several observers on one hook: add them, then pass progress_fanout_observe with the
 * fanout as ctx. Holds at most PROGRESS_FANOUT_MAX; progress_fanout_add returns -1 beyond. */
#define PROGRESS_FANOUT_MAX 4
typedef struct progress_fanout {
    core_observer fn[PROGRESS_FANOUT_MAX];
    void *ctx[PROGRESS_FANOUT_MAX];
    unsigned n;
} progress_fanout;
int progress_fanout_add(progress_fanout *f, core_observer fn, void *ctx);
void progress_fanout_observe(void *f, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                             uint64_t end_ps, unsigned region, uint64_t bytes);

#endif
