/* err.c - filling one-line error messages. */
#include "err.h"

#include <stdio.h>

int err_vsetk(err *e, err_kind kind, const char *fmt, va_list ap)
{
    if (e) {
        e->kind = kind;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    }
    return -1;
}

int err_vset(err *e, const char *fmt, va_list ap)
{
    return err_vsetk(e, ERR_INPUT, fmt, ap);
}

int err_set(err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vsetk(e, ERR_INPUT, fmt, ap);
    va_end(ap);
    return -1;
}

int err_setk(err *e, err_kind kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vsetk(e, kind, fmt, ap);
    va_end(ap);
    return -1;
}
