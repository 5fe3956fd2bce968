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

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 if the byte at p does not start one. */
static size_t json_utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

void json_put_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        size_t n = json_utf8_len(p);
        if (n == 0) {
            fputs("\\ufffd", f); /* a byte outside any well-formed sequence */
            p++;
        } else if (*p == '"' || *p == '\\') {
            fputc('\\', f);
            fputc(*p++, f);
        } else if (*p < 0x20) {
            fprintf(f, "\\u%04x", *p++);
        } else {
            fwrite(p, 1, n, f);
            p += n;
        }
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
        json_put_string(w->f, key);
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
    json_put_string(w->f, v ? v : "");
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

void json_fields(json_w *w, const void *base, const json_field *f, size_t n)
{
    const char *b = base;
    for (size_t i = 0; i < n; i++) {
        const void *m = b + f[i].off;
        switch (f[i].type) {
        case JSON_F_U64:
            json_u64(w, f[i].key, *(const uint64_t *)m);
            break;
        case JSON_F_NUM:
            json_num(w, f[i].key, *(const double *)m);
            break;
        case JSON_F_STR:
            json_str(w, f[i].key, *(const char *const *)m);
            break;
        case JSON_F_CHARS:
            json_str(w, f[i].key, (const char *)m);
            break;
        case JSON_F_OBJ:
            json_obj_begin(w, f[i].key);
            break;
        case JSON_F_END:
            json_obj_end(w);
            break;
        }
    }
}
