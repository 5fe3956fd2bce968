/* compare.h - what `tpusim report A.json B.json [C.json ...]` shows: side-by-side summary
 * metrics and per-unit utilisation of several `tpusim run --json` documents, with the ratio
 * of each run to the first. Includes the minimal JSON reader it needs (objects, arrays,
 * strings, numbers, true/false/null), whose errors name the file and byte offset. */
#ifndef TPU_COMPARE_H
#define TPU_COMPARE_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

/* A parsed JSON value. Objects keep key order; lookups are linear (documents are small). */
typedef enum cmp_jtype { CMP_JNULL, CMP_JBOOL, CMP_JNUM, CMP_JSTR, CMP_JARR, CMP_JOBJ } cmp_jtype;
typedef struct cmp_json cmp_json;
struct cmp_json {
    cmp_jtype type;
    double num;    /* JNUM, JBOOL (0/1) */
    char *str;     /* JSTR */
    char *key;     /* member name when inside an object, else NULL */
    cmp_json *kid; /* JARR/JOBJ: array of n children */
    size_t n;
};

/* Parse len bytes of text; `name` is used in errors ("a.json: byte 17: expected ':'").
 * Returns NULL with e filled on error. Free with compare_json_free. */
cmp_json *compare_json_parse(const char *text, size_t len, const char *name, err *e);
cmp_json *compare_json_load(const char *path, err *e);
void compare_json_free(cmp_json *v);
/* Member `key` of an object, or NULL. */
const cmp_json *compare_json_get(const cmp_json *obj, const char *key);
/* Follow a dotted path ("summary.tflops"); array elements by index ("units.0.util"). */
const cmp_json *compare_json_path(const cmp_json *root, const char *path);

#define COMPARE_MAX_RUNS 26 /* reports one table compares (columns A..Z) */

/* Compare the run reports files[0..nf-1] (1 <= nf <= COMPARE_MAX_RUNS): writes the table to
 * `out` and, if csv is not NULL, the same table as CSV to that path (atomically). Returns 0,
 * or -1 with e filled (unreadable file, not a run report, missing key). */
int compare_reports(const char *const *files, unsigned nf, const char *csv, FILE *out, err *e);

#endif
