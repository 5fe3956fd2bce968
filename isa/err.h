/* err.h - one-line error messages filled by library code, printed only by main. */
#ifndef TPU_ERR_H
#define TPU_ERR_H

#include <stdarg.h>

#define ERR_MSG_MAX 512

/* An error report: library functions fill msg and return non-zero; main prints it.
 * Messages name the file, then the line or byte offset, then what was expected,
 * e.g. "cfg.yaml:12: key 'hbm.channels': value 0 not in [1, 64]". */
typedef struct err {
    char msg[ERR_MSG_MAX];
} err;

/* Format msg into e (e may be NULL). Always returns -1 so callers can `return err_set(...)`. */
int err_set(err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int err_vset(err *e, const char *fmt, va_list ap);

#endif
