/* json.c - streaming JSON writer; the file itself is ofile.c's. */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int json_open(json_w *w, const char *path, err *e)
{
    memset(w, 0, sizeof *w);
    w->first[0] = 1;
    if (ofile_open(&w->of, path, e))
        return -1;
    w->f = ofile_stream(w->of);
    return 0;
}

void json_abort(json_w *w)
{
    ofile_abort(w->of);
    w->of = NULL;
    w->f = NULL;
}

int json_close(json_w *w, err *e)
{
    fputc('\n', w->f);
    ofile *of = w->of;
    w->of = NULL;
    w->f = NULL;
    return ofile_close(of, e);
}

static void json_puts(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_key(json_w *w, const char *key)
{
    if (!w->first[w->depth])
        fputc(',', w->f);
    w->first[w->depth] = 0;
    if (w->depth) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++)
            fputs("  ", w->f);
    }
    if (key) {
        json_puts(w->f, key);
        fputs(": ", w->f);
    }
}

void json_obj_begin(json_w *w, const char *key)
{
    json_key(w, key);
    fputc('{', w->f);
    if (w->depth < 31)
        w->first[++w->depth] = 1;
}

static void json_close_level(json_w *w, char c)
{
    int empty = w->first[w->depth];
    w->depth--;
    if (!empty) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++)
            fputs("  ", w->f);
    }
    fputc(c, w->f);
}

void json_obj_end(json_w *w)
{
    json_close_level(w, '}');
}

void json_arr_begin(json_w *w, const char *key)
{
    json_key(w, key);
    fputc('[', w->f);
    if (w->depth < 31)
        w->first[++w->depth] = 1;
}

void json_arr_end(json_w *w)
{
    json_close_level(w, ']');
}

void json_str(json_w *w, const char *key, const char *v)
{
    json_key(w, key);
    json_puts(w->f, v ? v : "");
}

void json_u64(json_w *w, const char *key, uint64_t v)
{
    json_key(w, key);
    fprintf(w->f, "%" PRIu64, v);
}

void json_num(json_w *w, const char *key, double v)
{
    json_key(w, key);
    if (isfinite(v))
        fprintf(w->f, "%.10g", v);
    else
        fputs("null", w->f);
}

void json_bool(json_w *w, const char *key, int v)
{
    json_key(w, key);
    fputs(v ? "true" : "false", w->f);
}
