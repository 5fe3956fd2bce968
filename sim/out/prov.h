/* prov.h - provenance: what every JSON and CSV output records about how it was made, so that
 * two result files can be told apart later: tpusim version and source revision, the config
 * as given and where it resolved to, a hash and the values of the resolved config, every -p
 * override, the topology collectives are timed on, the trace's note (the command that made
 * it) and the topology it was generated for, the command line, the start time and the wall
 * time. Written as the "provenance" object of a JSON report and as "# key: value" lines
 * before a CSV header (docs/outputs.md). */
#ifndef TPU_PROV_H
#define TPU_PROV_H

#include <limits.h>
#include <stdio.h>
#include <time.h>

#include "config.h"
#include "err.h"
#include "json.h"
#include "trace.h"

typedef struct prov {
    char config[PATH_MAX];      /* as given: preset name or path; "" = built-in defaults */
    char config_path[PATH_MAX]; /* the file it resolved to */
    char config_hash[32];       /* "fnv1a64:<16 hex digits>" of the resolved values */
    const cfg *cfg;             /* the resolved config (not owned; outlives the prov) */
    char **overrides;           /* owned copies of the -p key=value texts */
    unsigned noverrides;
    char trace[PATH_MAX];
    char trace_note[TRACE_NOTE_MAX]; /* the trace's note without its topology line */
    int has_trace_topo;
    trace_topology trace_topo; /* the topology the trace was generated for */
    char *command;             /* owned; "" when not run from the command line */
    char started_utc[32];      /* ISO 8601, UTC */
    struct timespec t0;        /* for the wall time (monotonic) */
} prov;

/* The source revision the binary was built from (`git describe`), or "unknown". */
const char *prov_revision(void);
/* Start: zero p, note the start time. */
void prov_init(prov *p);
/* The config as given (NULL = defaults), the resolved config c (kept by pointer) and the
 * overrides (copied). Returns 0, or -1 with e filled (out of memory). */
int prov_set_config(prov *p, const char *given, const cfg *c, const char *const *ovr, unsigned novr,
                    err *e);
/* Read the trace's header note (and its topology line). Returns 0, or -1 with e filled. */
int prov_set_trace(prov *p, const char *trace_path, err *e);
/* The same from a note already read (the replay's own header: a pipe is read once). */
void prov_set_trace_note(prov *p, const char *trace_path, const char *note);
/* The command line: "tpusim" then argv[0..argc-1], quoted where needed. */
int prov_set_command(prov *p, int argc, char *const *argv, err *e);
void prov_fini(prov *p);
/* FNV-1a 64 over "key=value\n" of every key in table order, as "fnv1a64:%016llx". */
void prov_config_hash(const cfg *c, char *buf, size_t cap);
/* Seconds since prov_init. */
double prov_wall_s(const prov *p);

/* The topology line of a trace's note (trace.h): 1 with *t filled, 0 when the trace does
 * not record one (or is not a regular file: a pipe or FIFO is read once, by the replay), -1
 * with e filled when the trace cannot be opened. */
int prov_trace_topology(const char *trace_path, trace_topology *t, err *e);
/* Whether a trace generated for t is timed on a topology of `chips` chips with ici.dims
 * `dims` and wrap `wrap` (NULL: compare the chip count only, as a pod, whose shape is its
 * own). A single-chip trace (t->chips == 1) has no collectives and matches anything.
 * Returns 0 when they match, else 1 with a one-line explanation in msg. */
/* Whether a trace generated for t->slices slices (trace_topology) is timed with dcn.slices =
 * `slices`: 1 with msg filled when they differ, else 0. */
int prov_slices_mismatch(const trace_topology *t, uint64_t slices, char *msg, size_t cap);
int prov_topology_mismatch(const trace_topology *t, uint64_t chips, const char *dims,
                           const char *wrap, char *msg, size_t cap);

/* The "provenance" member (an object) of the JSON object being written. `topology`, if not
 * NULL, is the topology collectives were timed on when it is not the config's ici.dims (a
 * pod's). */
void prov_json(const prov *p, json_w *w, const char *topology);
/* The same as "# key: value" lines (one per override), for a CSV header. */
void prov_csv(const prov *p, FILE *f);

#endif
