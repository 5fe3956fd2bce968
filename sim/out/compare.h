/* compare.h - what `tpusim report A.json B.json [C.json ...]` shows: several `tpusim run
 * --json` and `tpusim pod --json` documents side by side, in any mix. First what differs in
 * how they were made (config keys, -p overrides, topology), then the summary metrics both
 * kinds have (time, TFLOP/s per chip, utilisation, time split), the per-run and per-pod
 * extras, one row per region (aligned by name) and per unit, each with its ratio to A.
 * Documents are read with libjansson. */
#ifndef TPU_COMPARE_H
#define TPU_COMPARE_H

#include <stdio.h>

#include <jansson.h>

#include "err.h"

#define COMPARE_MAX_RUNS 26 /* reports one table compares (columns A..Z) */

/* Read the JSON document at path (at most 256 MiB; integers are read as doubles, so
 * counters beyond 2^63 load too). Returns the root object (free with json_decref), or NULL
 * with e filled: "a.json: line 3, column 7 (byte 41): <what jansson expected>". A top level
 * that is not an object is an error too. */
json_t *compare_load(const char *path, err *e);

/* Compare the reports files[0..nf-1] (1 <= nf <= COMPARE_MAX_RUNS): writes the table to
 * `out` and, if csv is not NULL, the same table as CSV to that path (atomically). Returns 0,
 * or -1 with e filled (unreadable file, neither a run nor a pod report, missing key). */
int compare_reports(const char *const *files, unsigned nf, const char *csv, FILE *out, err *e);

#endif
