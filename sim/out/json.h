/* json.h - a small streaming JSON writer (objects, arrays, numbers, strings) used by every
 * --json output; the file is written through ofile.h (a temporary renamed into place by
 * json_close, a device or FIFO written directly, "-" standard output). */
#ifndef TPU_JSON_H
#define TPU_JSON_H

#include <stddef.h>
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

/* A struct member written as one JSON field, so a writer lists what it writes as data: the
 * key, the member's offset and how it is read (uint64_t, double, const char *, char array);
 * JSON_F_OBJ opens a nested object named key (offset unused) and JSON_F_END closes it. */
typedef enum json_ftype {
    JSON_F_U64,
    JSON_F_NUM,
    JSON_F_STR,
    JSON_F_CHARS,
    JSON_F_OBJ,
    JSON_F_END
} json_ftype;
typedef struct json_field {
    const char *key;
    size_t off;
    json_ftype type;
} json_field;
#define JSON_FIELD(type, member, key, ftype) {key, offsetof(type, member), ftype}
#define JSON_FIELD_OBJ(key)                  {key, 0, JSON_F_OBJ}
#define JSON_FIELD_END                       {NULL, 0, JSON_F_END}
/* Write the n fields f[] of the struct at base, in order, into the open object. */
void json_fields(json_w *w, const void *base, const json_field *f, size_t n);

#endif
