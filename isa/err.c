/* err.c - filling one-line error messages. */
#include "err.h"

#include <stdio.h>

int err_vset(err *e, const char *fmt, va_list ap)
{
    if (e)
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    return -1;
}

int err_set(err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, fmt, ap);
    va_end(ap);
    return -1;
}
