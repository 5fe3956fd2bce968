/* harness.h - what the unit tests share: a fake core that drives one unit model on the event
 * kernel, a temporary directory per test group, assembling text into traces there, and an
 * observer that logs completions. Tests link tests/harness.c (CMakeLists.txt).
 * Include after <cmocka.h>: failures are cmocka assertions in the calling test. */
#ifndef TPU_TESTS_HARNESS_H
#define TPU_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "kernel.h"
#include "isa.h"
#include "unit.h"

/* Relative closeness of two doubles (figures that are sums of exact counts x coefficients):
 * |a - b| <= rel x max(|a|, |b|); the message names the expression. Needs <math.h>. */
#define assert_close(a, b, rel)                                                                    \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (fabs(a_ - b_) > (rel)*fmax(fabs(a_), fabs(b_)) + 1e-30)                                \
            fail_msg("%s = %.17g, expected %.17g", #a, a_, b_);                                    \
    } while (0)

/* ---- fake core ---- */

#define HARNESS_MAXI 1024

enum { HARNESS_HBM = 1 }; /* harness_init flags: give the unit an HBM model (DMA) */

/* One in-order queue of instructions for a single unit, issued while the unit accepts them;
 * instruction i is token i, and its start and completion times are recorded. */
typedef struct harness {
    cfg c;
    unit_env env;
    unit *u;
    isa_insn in[HARNESS_MAXI];
    unsigned n, next;
    uint64_t start[HARNESS_MAXI], done[HARNESS_MAXI];
    unsigned ndone, wakes;
    kern_event *wake_ev; /* unit_wake_at: calls the wake at its time */
} harness;

/* Set up h (caller's memory) on a fresh kernel: a copy of c, its VMEM (and HBM with
 * HARNESS_HBM), and unit 0 of the model `ops`. Release with harness_fini. */
void harness_init(harness *h, const cfg *c, const unit_ops *ops, unsigned flags);
void harness_fini(harness *h);
/* The same on the heap: caller frees with harness_free. */
harness *harness_new(const cfg *c, const unit_ops *ops, unsigned flags);
void harness_free(harness *h);
/* Queue a zeroed instruction of opcode op; its token is h->n - 1 afterwards. */
isa_insn *harness_add(harness *h, unsigned op);
/* Issue what the unit accepts now (tests call it from events of their own). */
void harness_pump(harness *h);
/* harness_pump as a kernel event callback (ctx = the harness): another unit's event that
 * makes the core issue. */
void harness_pump_event(void *ctx);
/* Issue, run the kernel to the end, and assert every instruction completed exactly once. */
void harness_run(harness *h);
/* The unit's registered counter or formula `name`. */
double harness_stat(harness *h, const char *name);

/* ---- temporary directory and traces ---- */

/* cmocka group setup and teardown: one fresh directory under /tmp, removed afterwards. */
int harness_dir_setup(void **state);
int harness_dir_teardown(void **state);
/* The directory itself (valid between setup and teardown). */
const char *harness_dir(void);
/* buf = DIR/name; returns buf. */
const char *harness_path(const char *name, char *buf, size_t cap);
/* Write text to path, failing the test if it cannot. */
void harness_write(const char *path, const char *text);
/* The whole file, NUL-terminated (caller frees); *len its size when len is not NULL. Fails
 * the test if it cannot be read. */
char *harness_slurp(const char *path, size_t *len);
/* Whether path exists. */
int harness_exists(const char *path);
/* Assemble text into DIR/name.tpt (through DIR/name.s); returns out. */
const char *harness_assemble(const char *name, const char *text, char *out, size_t cap);

/* ---- completion log (a sim_hooks observer) ---- */

#define HARNESS_OBS_MAX 64

typedef struct harness_obs {
    unsigned n; /* completions logged (the first HARNESS_OBS_MAX) */
    uint64_t idx[HARNESS_OBS_MAX], start[HARNESS_OBS_MAX], end[HARNESS_OBS_MAX];
} harness_obs;

/* sim_hooks.observer with ctx = a harness_obs. */
void harness_observe(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t start,
                     uint64_t end, unsigned region, uint64_t bytes);

#endif
