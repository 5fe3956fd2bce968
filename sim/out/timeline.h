/* timeline.h - a run's timeline as Chrome/Perfetto trace-event JSON (the "traceEvents"
 * format opened by ui.perfetto.dev and chrome://tracing), fed by the core's observer.
 *
 * Layout of the file: one process per chip ("chip N"), one thread (track) per unit (each
 * MXU, the vector unit, DMA, ICI); a unit whose instructions overlap in time (several in
 * flight) gets up to TIMELINE_LANES tracks, "dma0", "dma0 #2", ... so that complete events
 * on one track always nest. Each instruction is a complete event ("ph":"X", ts/dur in
 * microseconds, exact to the picosecond) named by its mnemonic with args {index, region, n}.
 * Size is bounded three ways: same-mnemonic slices on a track that start within
 * merge_gap_ps of the previous slice's end are merged (n counts the instructions), slices
 * outside [window_start_ps, window_end_ps] are dropped, and after max_events slices further
 * ones are dropped and a final instant event says how many. HBM and ICI bandwidth are
 * counters ("ph":"C", GB/s) over at most TIMELINE_BUCKETS time buckets per chip whose width
 * doubles as the run grows; so are the HBM channels ("HBM ch3") and ICI links ("ICI link
 * x+") over TIMELINE_SUB_BUCKETS buckets each, when the HBM and ICI models register
 * per-channel ("hbm" "ch<N>_bytes") and per-link ("ici" "link_x+_bytes") byte counters.
 * Regions are slices on "regions" tracks. The modelled power of the chip is a counter track
 * "power" (W) with one value per energy window (energy.window_us), added after the run.
 *
 * The file is written through ofile.h (a temporary renamed to PATH by timeline_close, or
 * PATH itself when it is a device or FIFO); on any failure the temporary is removed. See
 * docs/outputs.md. */
#ifndef TPU_TIMELINE_H
#define TPU_TIMELINE_H

#include <stdint.h>

#include "err.h"
#include "chip.h"
#include "unit.h"

#define TIMELINE_LANES       4
#define TIMELINE_SUB_BUCKETS 256 /* buckets of each HBM channel or ICI link counter */
#define TIMELINE_MAX_SUBS    256 /* channel (link) counter tracks per chip at most */
#define TIMELINE_BUCKETS     2048
#define TIMELINE_DEFAULT_MAX 1000000
#define TIMELINE_NO_MERGE    UINT64_MAX /* merge_gap_ps value that disables merging */

typedef struct timeline timeline;

typedef struct timeline_opts {
    uint64_t window_start_ps; /* slices ending before this are dropped */
    uint64_t window_end_ps;   /* slices starting after this are dropped; 0 = no end */
    uint64_t merge_gap_ps;    /* TIMELINE_NO_MERGE: one slice per instruction */
    uint64_t max_events;      /* cap on slices written; 0 = TIMELINE_DEFAULT_MAX */
    const char *label;        /* otherData.label, e.g. "g.tpt on v7" (plot titles); may be
                               * NULL; copied by timeline_new */
} timeline_opts;

/* Defaults: whole run, merge touching slices (gap 0), 1,000,000 slices, no label. */
void timeline_opts_default(timeline_opts *o);

/* Open PATH (ofile_open). opts may be NULL (defaults). Returns NULL with e filled on failure.
 * The caller owns the result and releases it with timeline_close or timeline_abort. */
timeline *timeline_new(const char *path, const timeline_opts *opts, err *e);

/* core_observer for chip 0 (ctx = the timeline). */
void timeline_observe(void *tl, uint64_t idx, unsigned op, const unit *u, uint64_t start_ps,
                      uint64_t end_ps, unsigned region, uint64_t bytes);
/* Multi-chip runs: the observer context for chip `chip_id`, to be used with
 * timeline_observe_chip. Owned by the timeline; NULL on out-of-memory. */
void *timeline_chip_ctx(timeline *tl, unsigned chip_id);
void timeline_observe_chip(void *chip_ctx, uint64_t idx, unsigned op, const unit *u,
                           uint64_t start_ps, uint64_t end_ps, unsigned region, uint64_t bytes);

/* After the run, before the chip is freed: write chip_id's region markers (from the core's
 * region table, first start to last end of each region). ch may be NULL (no-op). */
void timeline_add_regions(timeline *tl, unsigned chip_id, const chip *ch);

/* After the run: chip_id's modelled power as the counter track "power" ({"W": value}): w[i] is
 * the average power of [i x width_ps, (i+1) x width_ps), the last of the n windows ending at
 * end_ps (energy_result.window_w). One event per change of value and 0 W at end_ps; windows
 * outside the timeline window are left out, the first one inside starts at the window start.
 * n == 0 or w == NULL: no track. */
void timeline_add_power(timeline *tl, unsigned chip_id, const double *w, uint64_t n,
                        uint64_t width_ps, uint64_t end_ps);

/* Write every pending slice (call once the run is over); the counts of
 * timeline_get_counts are final after it. timeline_close does it too. */
void timeline_flush(timeline *tl);

/* Flush pending slices, counters and the truncation notice, close and rename the temporary
 * to PATH. Frees tl in every case; on failure removes the temporary and fills e. */
int timeline_close(timeline *tl, err *e);
/* Remove the temporary and free tl (NULL is fine). */
void timeline_abort(timeline *tl);

/* Counts so far, for tests and the CLI's summary line. */
typedef struct timeline_counts {
    uint64_t slices;  /* complete events written (after merging) */
    uint64_t merged;  /* instructions folded into a previous slice */
    uint64_t dropped; /* slices dropped by the event cap */
    uint64_t outside; /* instructions outside the window */
} timeline_counts;
void timeline_get_counts(const timeline *tl, timeline_counts *c);

/* Parse a simulated time with a unit: "250ps", "1.5ns", "10us", "2ms", "1s".
 * Returns 0 and sets *ps, or -1 with e naming `what`. */
int timeline_parse_time(const char *s, uint64_t *ps, const char *what, err *e);
/* Parse "START:END" (either side may be empty: "10us:", ":2ms") into o's window. */
int timeline_parse_window(const char *s, timeline_opts *o, err *e);
/* Set one CLI option by its long name: "timeline-window" (START:END), "timeline-merge-gap"
 * (a time, or "off" for one slice per instruction), "timeline-max-events" (a positive
 * count). Returns -1 with e naming the option on a bad value or an unknown name. */
int timeline_set_option(timeline_opts *o, const char *name, const char *value, err *e);

#endif
