/* err.c - filling one-line error messages. */
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_PATH_MIN 64 /* a path echo keeps at least this many bytes, however long the reason */

/* A message longer than ERR_MSG_MAX (a long path echoed in it) is shortened in the middle,
 * as err_shorten does a path: messages read "PATH: where: what", so the head of the path and
 * the tail of the message (the end of the path and the reason) stay. Without the memory to
 * format it whole, it is cut at the end as before. */
int err_vsetk(err *e, err_kind kind, const char *fmt, va_list ap)
{
    if (!e)
        return -1;
    e->kind = kind;
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    if (n >= (int)sizeof e->msg) {
        char *whole = malloc((size_t)n + 1);
        if (whole) {
            vsnprintf(whole, (size_t)n + 1, fmt, again);
            err_shorten(e->msg, sizeof e->msg, whole);
            free(whole);
        }
    }
    va_end(again);
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

int err_first(err *e, int *failed, const char *fmt, ...)
{
    if (!*failed) {
        va_list ap;
        va_start(ap, fmt);
        err_vsetk(e, ERR_INPUT, fmt, ap);
        va_end(ap);
        *failed = 1;
    }
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

void *err_calloc(size_t n, size_t size, const char *who, err *e)
{
    void *p = calloc(n, size);
    if (!p) {
        if (who)
            err_setk(e, ERR_NOMEM, "%s: out of memory", who);
        else
            err_setk(e, ERR_NOMEM, "out of memory");
    }
    return p;
}

const char *err_shorten(char *buf, size_t cap, const char *path)
{
    size_t n = strlen(path);
    if (n < cap || cap < 8) {
        snprintf(buf, cap, "%s", path);
        return buf;
    }
    /* keep a third of the room for the head, the rest for the tail (the file name) */
    size_t room = cap - 1 - 3, head = room / 3, tail = room - head;
    snprintf(buf, cap, "%.*s...%s", (int)head, path, path + n - tail);
    return buf;
}

int err_vpath(err *e, const char *path, const char *fmt, va_list ap)
{
    if (!e)
        return -1;
    char why[ERR_MSG_MAX], shown[ERR_MSG_MAX];
    vsnprintf(why, sizeof why, fmt, ap);
    size_t wlen = strlen(why), room = ERR_MSG_MAX - 2; /* ": " */
    room = wlen + ERR_PATH_MIN < room ? room - wlen : ERR_PATH_MIN;
    snprintf(e->msg, sizeof e->msg, "%s: %s", err_shorten(shown, room, path), why);
    return -1;
}

int err_path(err *e, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vpath(e, path, fmt, ap);
    va_end(ap);
    return -1;
}
