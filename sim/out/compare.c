/* compare.c - side-by-side comparison of run reports (`tpusim report`), and the small JSON
 * reader it needs. The reader accepts RFC 8259 JSON (our writer's output is a subset);
 * nesting is limited to CMP_MAX_DEPTH so hostile input cannot exhaust the stack. */
#include "compare.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ofile.h"

#define CMP_MAX_DEPTH 64
#define CMP_MAX_FILE  (256u << 20) /* run reports are kilobytes; refuse absurd inputs */

/* ---- JSON reader ---- */

typedef struct cmp_parser {
    const char *s, *name;
    size_t len, pos;
    err *e;
} cmp_parser;

static int cmp_fail(cmp_parser *p, const char *what)
{
    if (p->pos >= p->len)
        return err_set(p->e, "%s: byte %zu: unexpected end of input, expected %s", p->name, p->pos,
                       what);
    return err_set(p->e, "%s: byte %zu: expected %s", p->name, p->pos, what);
}

static void cmp_ws(cmp_parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static void cmp_free_kids(cmp_json *v)
{
    for (size_t i = 0; i < v->n; i++)
        cmp_free_kids(&v->kid[i]);
    free(v->kid);
    free(v->str);
    free(v->key);
}

static int cmp_hex4(cmp_parser *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (p->pos >= p->len)
            return cmp_fail(p, "4 hex digits after \\u");
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else {
            p->pos--;
            return cmp_fail(p, "a hex digit in \\u escape");
        }
    }
    *out = v;
    return 0;
}

/* Parse a string at p->pos (which holds '"'); *out is malloc'd. */
static int cmp_string(cmp_parser *p, char **out)
{
    p->pos++;
    size_t cap = 16, n = 0;
    char *b = malloc(cap);
    if (!b)
        return err_setk(p->e, ERR_NOMEM, "%s: out of memory", p->name);
    for (;;) {
        if (p->pos >= p->len) {
            free(b);
            return cmp_fail(p, "closing '\"'");
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (n + 5 > cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                return err_setk(p->e, ERR_NOMEM, "%s: out of memory", p->name);
            }
            b = nb;
        }
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            free(b);
            return cmp_fail(p, "no control character inside a string");
        }
        if (c != '\\') {
            b[n++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        if (p->pos >= p->len) {
            free(b);
            return cmp_fail(p, "an escape character");
        }
        char x = p->s[p->pos++];
        const char *simple = strchr("\"\\/bfnrt", x);
        if (simple && x) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            b[n++] = map[simple - "\"\\/bfnrt"];
        } else if (x == 'u') {
            unsigned cp;
            if (cmp_hex4(p, &cp)) {
                free(b);
                return -1;
            }
            if (cp >= 0xD800 && cp < 0xDC00 && p->pos + 6 <= p->len && p->s[p->pos] == '\\' &&
                p->s[p->pos + 1] == 'u') {
                unsigned lo;
                p->pos += 2;
                if (cmp_hex4(p, &lo)) {
                    free(b);
                    return -1;
                }
                if (lo >= 0xDC00 && lo < 0xE000)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp < 0x80) {
                b[n++] = (char)cp;
            } else if (cp < 0x800) {
                b[n++] = (char)(0xC0 | cp >> 6);
                b[n++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                b[n++] = (char)(0xE0 | cp >> 12);
                b[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
                b[n++] = (char)(0x80 | (cp & 0x3F));
            } else {
                b[n++] = (char)(0xF0 | cp >> 18);
                b[n++] = (char)(0x80 | (cp >> 12 & 0x3F));
                b[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
                b[n++] = (char)(0x80 | (cp & 0x3F));
            }
        } else {
            p->pos--;
            free(b);
            return cmp_fail(p, "a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u)");
        }
    }
    b[n] = 0;
    *out = b;
    return 0;
}

static int cmp_value(cmp_parser *p, cmp_json *v, int depth);

static int cmp_push(cmp_parser *p, cmp_json *parent, size_t *cap, const cmp_json *kid)
{
    if (parent->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 8;
        cmp_json *k = realloc(parent->kid, nc * sizeof *k);
        if (!k)
            return err_setk(p->e, ERR_NOMEM, "%s: out of memory", p->name);
        parent->kid = k;
        *cap = nc;
    }
    parent->kid[parent->n++] = *kid;
    return 0;
}

static int cmp_container(cmp_parser *p, cmp_json *v, int depth)
{
    int obj = p->s[p->pos] == '{';
    char close = obj ? '}' : ']';
    v->type = obj ? CMP_JOBJ : CMP_JARR;
    size_t cap = 0;
    p->pos++;
    cmp_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        cmp_json kid = {0};
        cmp_ws(p);
        if (obj) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return cmp_fail(p, "a '\"' starting a member name");
            if (cmp_string(p, &kid.key))
                return -1;
            cmp_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(kid.key);
                return cmp_fail(p, "':' after a member name");
            }
            p->pos++;
        }
        if (cmp_value(p, &kid, depth + 1) || cmp_push(p, v, &cap, &kid)) {
            cmp_free_kids(&kid);
            return -1;
        }
        cmp_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        return cmp_fail(p, obj ? "',' or '}'" : "',' or ']'");
    }
}

static int cmp_value(cmp_parser *p, cmp_json *v, int depth)
{
    if (depth > CMP_MAX_DEPTH)
        return cmp_fail(p, "nesting of at most 64 levels");
    cmp_ws(p);
    if (p->pos >= p->len)
        return cmp_fail(p, "a value");
    char c = p->s[p->pos];
    static const struct {
        const char *word;
        cmp_jtype type;
        double num;
    } words[] = {{"true", CMP_JBOOL, 1}, {"false", CMP_JBOOL, 0}, {"null", CMP_JNULL, 0}};
    if (c == '{' || c == '[')
        return cmp_container(p, v, depth);
    if (c == '"') {
        v->type = CMP_JSTR;
        return cmp_string(p, &v->str);
    }
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(words[i].word);
        if (p->len - p->pos >= l && !memcmp(p->s + p->pos, words[i].word, l)) {
            v->type = words[i].type;
            v->num = words[i].num;
            p->pos += l;
            return 0;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        /* strtod needs a NUL-terminated copy: numbers are short. */
        char buf[64];
        size_t l = 0;
        while (p->pos + l < p->len && l < sizeof buf - 1 &&
               strchr("+-0123456789.eE", p->s[p->pos + l]))
            l++;
        memcpy(buf, p->s + p->pos, l);
        buf[l] = 0;
        char *end;
        v->num = strtod(buf, &end);
        if (end == buf || (size_t)(end - buf) != l)
            return cmp_fail(p, "a number");
        v->type = CMP_JNUM;
        p->pos += l;
        return 0;
    }
    return cmp_fail(p, "a value (object, array, string, number, true, false or null)");
}

cmp_json *compare_json_parse(const char *text, size_t len, const char *name, err *e)
{
    cmp_parser p = {.s = text, .name = name, .len = len, .e = e};
    cmp_json *v = calloc(1, sizeof *v);
    if (!v) {
        err_setk(e, ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    if (cmp_value(&p, v, 0)) {
        compare_json_free(v);
        return NULL;
    }
    cmp_ws(&p);
    if (p.pos != len) {
        cmp_fail(&p, "end of input after the top-level value");
        compare_json_free(v);
        return NULL;
    }
    return v;
}

cmp_json *compare_json_load(const char *path, err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(e, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *nb = cap < CMP_MAX_FILE ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f), saved = errno;
    fclose(f);
    if (!buf) {
        err_setk(e, ERR_NOMEM, "%s: too large or out of memory", path);
        return NULL;
    }
    if (bad) {
        free(buf);
        err_set(e, "%s: cannot read: %s", path, strerror(saved));
        return NULL;
    }
    cmp_json *v = compare_json_parse(buf, n, path, e);
    free(buf);
    return v;
}

void compare_json_free(cmp_json *v)
{
    if (!v)
        return;
    cmp_free_kids(v);
    free(v);
}

const cmp_json *compare_json_get(const cmp_json *obj, const char *key)
{
    if (!obj || obj->type != CMP_JOBJ)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (!strcmp(obj->kid[i].key, key))
            return &obj->kid[i];
    return NULL;
}

const cmp_json *compare_json_path(const cmp_json *root, const char *path)
{
    const cmp_json *v = root;
    char part[128];
    while (v && *path) {
        size_t l = strcspn(path, ".");
        if (l >= sizeof part)
            return NULL;
        memcpy(part, path, l);
        part[l] = 0;
        path += l + (path[l] == '.');
        if (v->type == CMP_JARR) {
            char *end;
            unsigned long i = strtoul(part, &end, 10);
            v = *part && !*end && i < v->n ? &v->kid[i] : NULL;
        } else {
            v = compare_json_get(v, part);
        }
    }
    return v;
}

/* ---- the comparison table ---- */

typedef struct cmp_metric {
    const char *label;
    const char *path;
    double scale;          /* multiply the value by this */
    const char *per_total; /* if set: value / this (a path) x scale, e.g. share of time */
    int decimals;          /* digits after the point in the table; -1: 4 significant */
} cmp_metric;

static const cmp_metric cmp_metrics[] = {
    {"time (us)", "summary.time_ps", 1e-6, NULL, 3},
    {"cycles", "summary.cycles", 1, NULL, 0},
    {"instructions", "summary.instructions", 1, NULL, 0},
    {"TFLOP/s", "summary.tflops", 1, NULL, 2},
    {"peak TFLOP/s (bf16)", "summary.peak_tflops_bf16", 1, NULL, 1},
    {"MXU util (%)", "summary.mxu_util", 100, NULL, 1},
    {"MAC util (%)", "summary.mac_util", 100, NULL, 1},
    {"HBM GB/s", "summary.hbm_gbs", 1, NULL, 1},
    {"HBM util (%)", "summary.hbm_util", 100, NULL, 1},
    {"intensity (FLOP/B)", "roofline.intensity_flop_per_byte", 1, NULL, -1},
    {"roofline fraction (%)", "roofline.fraction_of_bound", 100, NULL, 1},
    {"compute time (%)", "time_split_ps.compute", 100, "summary.time_ps", 1},
    {"memory-only time (%)", "time_split_ps.memory", 100, "summary.time_ps", 1},
    {"exposed comm (%)", "time_split_ps.exposed_comm", 100, "summary.time_ps", 1},
    {"idle time (%)", "time_split_ps.idle", 100, "summary.time_ps", 1},
};
#define CMP_NMETRICS (sizeof cmp_metrics / sizeof cmp_metrics[0])

typedef struct cmp_row {
    char label[64];
    int decimals;
    double v[COMPARE_MAX_RUNS]; /* NaN = absent (null, or unit not in that run) */
    const char *s[COMPARE_MAX_RUNS];
} cmp_row;

static int cmp_number(const cmp_json *doc, const char *file, const char *path, double *out, err *e)
{
    const cmp_json *v = compare_json_path(doc, path);
    if (!v)
        return err_set(e, "%s: missing key '%s' (is it a 'tpusim run --json' report?)", file, path);
    if (v->type == CMP_JNULL) {
        *out = NAN;
        return 0;
    }
    if (v->type != CMP_JNUM)
        return err_set(e, "%s: key '%s' is not a number", file, path);
    *out = v->num;
    return 0;
}

static void cmp_fmt(char *buf, size_t cap, double v, int decimals)
{
    if (isnan(v))
        snprintf(buf, cap, "-");
    else if (decimals < 0 || fabs(v) >= 1e11)
        snprintf(buf, cap, "%.4g", v);
    else
        snprintf(buf, cap, "%.*f", decimals, v);
}

static void cmp_ratio(char *buf, size_t cap, double a, double b)
{
    if (isnan(a) || isnan(b) || a == 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.3f", b / a);
}

static void cmp_csv_str(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int cmp_write_csv(const char *path, const char *const *files, unsigned nf,
                         const cmp_row *rows, size_t nrows, err *e)
{
    ofile_ref out = {path, "--csv"}, in[COMPARE_MAX_RUNS];
    for (unsigned j = 0; j < nf; j++)
        in[j] = (ofile_ref){files[j], "report input"};
    ofile *of;
    if (ofile_check(&out, 1, in, nf, e) || ofile_open(&of, path, e))
        return -1;
    FILE *f = ofile_stream(of);
    fputs("metric", f);
    for (unsigned j = 0; j < nf; j++) {
        fputc(',', f);
        cmp_csv_str(f, files[j]);
    }
    for (unsigned j = 1; j < nf; j++)
        fprintf(f, ",%c/A", 'A' + j);
    fputc('\n', f);
    for (size_t i = 0; i < nrows; i++) {
        cmp_csv_str(f, rows[i].label);
        for (unsigned j = 0; j < nf; j++) {
            fputc(',', f);
            if (rows[i].s[j])
                cmp_csv_str(f, rows[i].s[j]);
            else if (!isnan(rows[i].v[j]))
                fprintf(f, "%.10g", rows[i].v[j]);
        }
        for (unsigned j = 1; j < nf; j++) {
            fputc(',', f);
            if (!rows[i].s[0] && !isnan(rows[i].v[0]) && !isnan(rows[i].v[j]) && rows[i].v[0] != 0)
                fprintf(f, "%.6g", rows[i].v[j] / rows[i].v[0]);
        }
        fputc('\n', f);
    }
    return ofile_close(of, e);
}

/* Build every row of the table from the loaded documents. */
static int cmp_build(cmp_json **docs, const char *const *files, unsigned nf, cmp_row **out_rows,
                     size_t *out_n, err *e)
{
    /* Union of unit names in order of first appearance. */
    size_t nunits = 0, cap_units = 0;
    const char **units = NULL;
    for (unsigned j = 0; j < nf; j++) {
        const cmp_json *arr = compare_json_get(docs[j], "units");
        if (!arr || arr->type != CMP_JARR) {
            free(units);
            return err_set(e, "%s: missing key 'units' (an array)", files[j]);
        }
        for (size_t k = 0; k < arr->n; k++) {
            const cmp_json *nm = compare_json_get(&arr->kid[k], "name");
            if (!nm || nm->type != CMP_JSTR) {
                free(units);
                return err_set(e, "%s: missing key 'units.%zu.name'", files[j], k);
            }
            size_t u = 0;
            while (u < nunits && strcmp(units[u], nm->str))
                u++;
            if (u < nunits)
                continue;
            if (nunits == cap_units) {
                cap_units = cap_units ? 2 * cap_units : 16;
                const char **nu = realloc(units, cap_units * sizeof *nu);
                if (!nu) {
                    free(units);
                    return err_setk(e, ERR_NOMEM, "out of memory");
                }
                units = nu;
            }
            units[nunits++] = nm->str;
        }
    }
    size_t nrows = CMP_NMETRICS + 1 + nunits;
    cmp_row *rows = calloc(nrows, sizeof *rows);
    if (!rows) {
        free(units);
        return err_setk(e, ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < CMP_NMETRICS; i++) {
        const cmp_metric *m = &cmp_metrics[i];
        snprintf(rows[i].label, sizeof rows[i].label, "%s", m->label);
        rows[i].decimals = m->decimals;
        for (unsigned j = 0; j < nf; j++) {
            double v, t = 1;
            if (cmp_number(docs[j], files[j], m->path, &v, e) ||
                (m->per_total && cmp_number(docs[j], files[j], m->per_total, &t, e)))
                goto out_fail;
            rows[i].v[j] = m->per_total ? (t > 0 ? v / t : NAN) * m->scale : v * m->scale;
        }
    }
    cmp_row *bb = &rows[CMP_NMETRICS];
    snprintf(bb->label, sizeof bb->label, "bound by");
    for (unsigned j = 0; j < nf; j++) {
        const cmp_json *v = compare_json_path(docs[j], "roofline.bound_by");
        if (!v || v->type != CMP_JSTR) {
            err_set(e, "%s: missing key 'roofline.bound_by'", files[j]);
            goto out_fail;
        }
        bb->s[j] = v->str;
    }
    for (size_t u = 0; u < nunits; u++) {
        cmp_row *r = &rows[CMP_NMETRICS + 1 + u];
        snprintf(r->label, sizeof r->label, "%s util (%%)", units[u]);
        r->decimals = 1;
        for (unsigned j = 0; j < nf; j++) {
            const cmp_json *arr = compare_json_get(docs[j], "units");
            r->v[j] = NAN;
            for (size_t k = 0; k < arr->n; k++) {
                const cmp_json *nm = compare_json_get(&arr->kid[k], "name");
                if (nm && nm->type == CMP_JSTR && !strcmp(nm->str, units[u])) {
                    const cmp_json *ut = compare_json_get(&arr->kid[k], "util");
                    if (!ut || (ut->type != CMP_JNUM && ut->type != CMP_JNULL)) {
                        err_set(e, "%s: missing key 'units.%zu.util'", files[j], k);
                        goto out_fail;
                    }
                    r->v[j] = ut->type == CMP_JNUM ? 100 * ut->num : NAN;
                }
            }
        }
    }
    free(units);
    *out_rows = rows;
    *out_n = nrows;
    return 0;
out_fail:
    free(units);
    free(rows);
    return -1;
}

static void cmp_print(FILE *out, cmp_json **docs, const char *const *files, unsigned nf,
                      const cmp_row *rows, size_t nrows)
{
    fprintf(out, "runs:\n");
    for (unsigned j = 0; j < nf; j++) {
        const cmp_json *chip = compare_json_get(docs[j], "chip");
        const cmp_json *trace = compare_json_get(docs[j], "trace");
        const cmp_json *config = compare_json_get(docs[j], "config");
        fprintf(out, "  %c  %s: %s on %s (%s)\n", 'A' + j, files[j],
                trace && trace->type == CMP_JSTR ? trace->str : "?",
                chip && chip->type == CMP_JSTR ? chip->str : "?",
                config && config->type == CMP_JSTR && config->str[0] ? config->str : "defaults");
    }
    int lw = 24;
    for (size_t i = 0; i < nrows; i++)
        if ((int)strlen(rows[i].label) > lw)
            lw = (int)strlen(rows[i].label);
    fprintf(out, "\n%-*s", lw, "metric");
    for (unsigned j = 0; j < nf; j++)
        fprintf(out, " %12c", 'A' + j);
    for (unsigned j = 1; j < nf; j++) {
        char h[8];
        snprintf(h, sizeof h, "%c/A", 'A' + j);
        fprintf(out, " %8s", h);
    }
    fputc('\n', out);
    for (size_t i = 0; i < nrows; i++) {
        char buf[32];
        fprintf(out, "%-*s", lw, rows[i].label);
        for (unsigned j = 0; j < nf; j++) {
            if (rows[i].s[j])
                snprintf(buf, sizeof buf, "%s", rows[i].s[j]);
            else
                cmp_fmt(buf, sizeof buf, rows[i].v[j], rows[i].decimals);
            fprintf(out, " %12s", buf);
        }
        for (unsigned j = 1; j < nf; j++) {
            if (rows[i].s[0])
                snprintf(buf, sizeof buf, "%s",
                         strcmp(rows[i].s[0], rows[i].s[j]) ? "differs" : "same");
            else
                cmp_ratio(buf, sizeof buf, rows[i].v[0], rows[i].v[j]);
            fprintf(out, " %8s", buf);
        }
        fputc('\n', out);
    }
}

int compare_reports(const char *const *files, unsigned nf, const char *csv, FILE *out, err *e)
{
    cmp_json *docs[COMPARE_MAX_RUNS] = {0};
    int rc = -1;
    if (!nf)
        return err_set(e, "report: expected one or more run reports (A.json B.json ...)");
    if (nf > COMPARE_MAX_RUNS)
        return err_set(e, "report: at most %d reports can be compared", COMPARE_MAX_RUNS);
    for (unsigned j = 0; j < nf; j++) {
        if (!(docs[j] = compare_json_load(files[j], e)))
            goto out;
        const cmp_json *sc = compare_json_get(docs[j], "schema");
        if (!sc || sc->type != CMP_JSTR || strncmp(sc->str, "tpusim.run/", 11)) {
            err_set(e, "%s: not a 'tpusim run --json' report (key 'schema' is %s)", files[j],
                    sc && sc->type == CMP_JSTR ? sc->str : "missing");
            goto out;
        }
    }
    cmp_row *rows = NULL;
    size_t nrows = 0;
    if (cmp_build(docs, files, nf, &rows, &nrows, e))
        goto out;
    cmp_print(out, docs, files, nf, rows, nrows);
    rc = csv ? cmp_write_csv(csv, files, nf, rows, nrows, e) : 0;
    free(rows);
out:
    for (unsigned j = 0; j < nf; j++)
        compare_json_free(docs[j]);
    return rc;
}
