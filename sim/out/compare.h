/* compare.h - `tpusim report A.json B.json [C.json ...] [--csv FILE]`: side-by-side summary
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

/* The `report` subcommand: argv[0] is the command name. Prints the table to `out`;
 * returns 0, or -1 with e filled (bad usage, unreadable file, missing key). */
int compare_run(int argc, char **argv, FILE *out, err *e);
/* compare_run to stdout (the signature main.c dispatches to). */
int compare_main(int argc, char **argv, err *e);

#endif
