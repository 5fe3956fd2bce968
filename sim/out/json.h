/* json.h - a small streaming JSON writer (objects, arrays, numbers, strings) used by every
 * --json output; the file is written through ofile.h (a temporary renamed into place by
 * json_close, a device or FIFO written directly, "-" standard output). */
#ifndef TPU_JSON_H
#define TPU_JSON_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "ofile.h"

typedef struct json_w {
    FILE *f;
    ofile *of;
    int depth;
    int first[32]; /* per nesting level: no element written yet */
} json_w;

/* Write s as a quoted JSON string: quote and backslash escaped, control characters as \u00XX,
 * well-formed UTF-8 copied, and each byte that is not part of a well-formed UTF-8 sequence
 * replaced by \ufffd (U+FFFD), so strict parsers accept the output. Shared by every JSON
 * writer (reports, the timeline). */
void json_put_string(FILE *f, const char *s);

/* Open PATH for writing (ofile_open; "-" writes to stdout). */
int json_open(json_w *w, const char *path, err *e);
/* Finish: flush, close and rename into place (ofile_close); on write failure removes the
 * temporary and e names PATH and the reason, also for a write error on stdout. */
int json_close(json_w *w, err *e);
void json_abort(json_w *w);
/* key may be NULL inside arrays. */
void json_obj_begin(json_w *w, const char *key);
void json_obj_end(json_w *w);
void json_arr_begin(json_w *w, const char *key);
void json_arr_end(json_w *w);
void json_str(json_w *w, const char *key, const char *v);
void json_u64(json_w *w, const char *key, uint64_t v);
void json_num(json_w *w, const char *key, double v); /* %.10g; non-finite -> null */
void json_bool(json_w *w, const char *key, int v);

#endif
