/* stats.h - the statistics registry: every counter is registered once with a group, name,
 * unit and description; the text report, --json, --csv and the timeline walk the registry.
 * Derived figures (bandwidth, utilisation) are formulas evaluated at dump time. */
#ifndef TPU_STATS_H
#define TPU_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct stats_reg stats_reg;
typedef double (*stats_fn)(const void *ctx);

typedef struct stats_entry {
    char group[32]; /* e.g. "mxu3", "hbm", "core" */
    char name[40];  /* e.g. "busy_ps" */
    const char *unit;
    const char *desc;
    const uint64_t *value; /* counter, or NULL for a formula */
    stats_fn fn;
    const void *ctx;
} stats_entry;

/* Caller frees with stats_free. NULL with e filled (ERR_NOMEM) on out-of-memory. */
stats_reg *stats_new(err *e);
void stats_free(stats_reg *r);
/* Registrations return nothing: one that finds no memory is dropped and remembered, and
 * stats_check then returns -1 with e filled (ERR_NOMEM). Call it once registering is done. */
int stats_check(const stats_reg *r, err *e);
/* Register a counter; *value must outlive the registry. unit and desc must be static. */
void stats_u64(stats_reg *r, const char *group, const char *name, const char *unit,
               const char *desc, const uint64_t *value);
/* Register a formula evaluated at dump time. */
void stats_formula(stats_reg *r, const char *group, const char *name, const char *unit,
                   const char *desc, stats_fn fn, const void *ctx);
/* One row of a table-driven registration: a counter (fn NULL) at `offset` in the owner
 * struct, or a formula fn whose ctx is the owner plus `offset`. Build rows with STATS_U64 and
 * STATS_FORMULA; register a whole table with stats_table. */
typedef struct stats_def {
    const char *name, *unit, *desc;
    size_t offset;
    stats_fn fn;
} stats_def;
#define STATS_U64(type, field, name, unit, desc)                                                   \
    {                                                                                              \
        (name), (unit), (desc), offsetof(type, field), NULL                                        \
    }
/* A counter named as its field: STATS_COUNTER(dma, chunks, "", "chunks issued") is
 * STATS_U64(dma, chunks, "chunks", "", "chunks issued"). */
#define STATS_COUNTER(type, field, unit, desc) STATS_U64(type, field, #field, unit, desc)
#define STATS_FORMULA(fn, name, unit, desc)                                                        \
    {                                                                                              \
        (name), (unit), (desc), 0, (fn)                                                            \
    }
/* A formula over one field of the owner (ctx = &owner->field). */
#define STATS_FIELD_FORMULA(type, field, fn, name, unit, desc)                                     \
    {                                                                                              \
        (name), (unit), (desc), offsetof(type, field), (fn)                                        \
    }
#define STATS_NDEFS(t) (sizeof(t) / sizeof((t)[0]))
/* Register the n rows of defs, in order, under group for the struct at owner (which must
 * outlive the registry). */
void stats_table(stats_reg *r, const char *group, const void *owner, const stats_def *defs,
                 size_t n);
size_t stats_count(const stats_reg *r);
const stats_entry *stats_at(const stats_reg *r, size_t i);
const stats_entry *stats_find(const stats_reg *r, const char *group, const char *name);
double stats_value(const stats_entry *e);
/* Value of group/name, or `dflt` if not registered. */
double stats_get(const stats_reg *r, const char *group, const char *name, double dflt);

/* Saturating 64-bit add: counters never wrap; an overflow sets *overflowed. */
static inline uint64_t stats_add_sat(uint64_t a, uint64_t b, int *overflowed)
{
    uint64_t s;
    if (__builtin_add_overflow(a, b, &s)) {
        if (overflowed)
            *overflowed = 1;
        return UINT64_MAX;
    }
    return s;
}

/* a * b, saturating at UINT64_MAX. */
static inline uint64_t stats_mul_sat(uint64_t a, uint64_t b)
{
    uint64_t p;
    return __builtin_mul_overflow(a, b, &p) ? UINT64_MAX : p;
}

/* Round a non-negative double to uint64_t, saturating at UINT64_MAX (llround would
 * overflow above 2^63). */
static inline uint64_t stats_round_sat(double x)
{
    if (!(x > 0))
        return 0;
    return x >= 0x1p64 ? UINT64_MAX : (uint64_t)(x + 0.5);
}

#endif
