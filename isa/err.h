/* err.h - one-line error messages filled by library code, printed only by main. */
#ifndef TPU_ERR_H
#define TPU_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define ERR_MSG_MAX 512

/* What went wrong, for callers that react differently (the message is for people; code
 * branches on the kind, never on the message text). */
typedef enum err_kind {
    ERR_INPUT = 0, /* bad input: argv, config, trace or report file, unreadable/unwritable path */
    ERR_NOMEM,     /* out of memory */
    ERR_DEADLOCK,  /* a replay ended with work left that nothing can unblock */
    ERR_OVERFLOW,  /* simulated time passed the end of the 64-bit picosecond clock */
} err_kind;

/* An error report: library functions fill it and return non-zero; main prints msg.
 * Messages name the file, then the line or byte offset, then what was expected,
 * e.g. "cfg.yaml:12: key 'hbm.channels': value 0 not in [1, 64]". */
typedef struct err {
    char msg[ERR_MSG_MAX];
    err_kind kind;
} err;

/* Format msg into e (e may be NULL) with kind ERR_INPUT. Always returns -1 so callers can
 * `return err_set(...)`. */
int err_set(err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int err_vset(err *e, const char *fmt, va_list ap);
/* The same with an explicit kind. */
int err_setk(err *e, err_kind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int err_vsetk(err *e, err_kind kind, const char *fmt, va_list ap);
/* Fill e with "PATH: REASON" (REASON formatted from fmt). A long PATH is shortened in the
 * middle ("/very/lo...e/x.json") so that the reason always fits. Returns -1. */
int err_path(err *e, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int err_vpath(err *e, const char *path, const char *fmt, va_list ap);
/* A sticky failure of a builder that goes on being called after it failed (the IR, the
 * generator): the first failure's message stays in e, later ones are dropped; sets *failed.
 * Returns -1. */
int err_first(err *e, int *failed, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* calloc(n, size) for a constructor: NULL with e filled (ERR_NOMEM, "WHO: out of memory", or
 * "out of memory" when who is NULL) when there is no memory. Caller frees with free(). */
void *err_calloc(size_t n, size_t size, const char *who, err *e);
/* Copy path into buf (cap bytes), shortened in the middle with "..." if it does not fit;
 * returns buf. For naming a second path inside a message. */
const char *err_shorten(char *buf, size_t cap, const char *path);

#endif
