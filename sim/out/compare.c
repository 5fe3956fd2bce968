/* compare.c - side-by-side comparison of run and pod reports (`tpusim report`). Documents
 * are parsed by libjansson (a tree is what a comparison needs; our own writer, json.c, stays
 * a streaming one because reports are written once, key by key, and never edited). A metric
 * is defined per document kind: a run's time is summary.time_ps, a pod's step_time_s, so
 * the rows line up whatever the mix; a metric a kind does not have shows '-'. */
#include "compare.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmt.h"
#include "ofile.h"
#include "mem.h"

#define CMP_MAX_FILE (256u << 20) /* reports are kilobytes; refuse absurd inputs */

json_t *compare_load(const char *path, err *e)
{
    struct stat st;
    if (stat(path, &st)) {
        err_set(e, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (st.st_size > (off_t)CMP_MAX_FILE) {
        err_set(e, "%s: %lld bytes: larger than any report (at most %u MiB)", path,
                (long long)st.st_size, CMP_MAX_FILE >> 20);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_load_file(path, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        if (je.line < 0)
            err_set(e, "%s: %s", path, je.text);
        else
            err_set(e, "%s: line %d, column %d (byte %d): %s", path, je.line, je.column,
                    je.position, je.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        err_set(e, "%s: expected a JSON object at the top level", path);
        return NULL;
    }
    return v;
}

/* Follow a dotted path ("summary.tflops"); array elements by index ("units.0.util"). */
static json_t *cmp_path(json_t *root, const char *path)
{
    json_t *v = root;
    char part[128];
    while (v && *path) {
        size_t l = strcspn(path, ".");
        if (l >= sizeof part)
            return NULL;
        memcpy(part, path, l);
        part[l] = 0;
        path += l + (path[l] == '.');
        if (json_is_array(v)) {
            char *end;
            unsigned long i = strtoul(part, &end, 10);
            v = *part && !*end ? json_array_get(v, i) : NULL;
        } else {
            v = json_object_get(v, part);
        }
    }
    return v;
}

static const char *cmp_str(json_t *root, const char *path)
{
    return json_string_value(cmp_path(root, path));
}

/* ---- the comparison table ---- */

typedef enum cmp_kind { CMP_RUN, CMP_POD, CMP_NKINDS } cmp_kind;

/* How one kind of document gives a metric: num / den x scale (den NULL: 1), or "-" when
 * num is NULL. */
typedef struct cmp_src {
    const char *num, *den;
    double scale;
} cmp_src;

typedef struct cmp_metric {
    const char *label;
    int decimals; /* digits after the point in the table; -1: 4 significant */
    cmp_src src[CMP_NKINDS];
} cmp_metric;

static const cmp_metric cmp_metrics[] = {
    {"time (us)", 3, {{"summary.time_ps", NULL, 1e-6}, {"step_time_s", NULL, 1e6}}},
    {"chips", 0, {{NULL, NULL, 0}, {"chips", NULL, 1}}},
    {"cycles", 0, {{"summary.cycles", NULL, 1}, {NULL, NULL, 0}}},
    {"instructions", 0, {{"summary.instructions", NULL, 1}, {NULL, NULL, 0}}},
    {"TFLOP/s per chip",
     2,
     {{"summary.tflops", NULL, 1}, {"flops_per_chip", "step_time_s", 1e-12}}},
    {"peak TFLOP/s (bf16)",
     1,
     {{"summary.peak_tflops_bf16", NULL, 1}, {"peak_exaflops.bf16", "chips", 1e6}}},
    {"sustained EFLOP/s", -1, {{NULL, NULL, 0}, {"sustained_exaflops", NULL, 1}}},
    {"MXU util (%)", 1, {{"summary.mxu_util", NULL, 100}, {NULL, NULL, 0}}},
    {"MAC util / MFU (%)", 1, {{"summary.mac_util", NULL, 100}, {"mfu", NULL, 100}}},
    {"HBM GB/s", 1, {{"summary.hbm_gbs", NULL, 1}, {NULL, NULL, 0}}},
    {"HBM util (%)", 1, {{"summary.hbm_util", NULL, 100}, {NULL, NULL, 0}}},
    {"ICI bytes per chip", 0, {{"summary.ici_bytes", NULL, 1}, {"ici_bytes_per_chip", NULL, 1}}},
    {"intensity (FLOP/B)", -1, {{"roofline.intensity_flop_per_byte", NULL, 1}, {NULL, NULL, 0}}},
    {"roofline fraction (%)", 1, {{"roofline.fraction_of_bound", NULL, 100}, {NULL, NULL, 0}}},
    {"compute time (%)",
     1,
     {{"time_split_ps.compute", "summary.time_ps", 100}, {"time_split.compute_share", NULL, 100}}},
    {"memory-only time (%)",
     1,
     {{"time_split_ps.memory", "summary.time_ps", 100}, {"time_split.memory_share", NULL, 100}}},
    {"exposed comm (%)",
     1,
     {{"time_split_ps.exposed_comm", "summary.time_ps", 100},
      {"time_split.exposed_comm_share", NULL, 100}}},
    {"idle time (%)",
     1,
     {{"time_split_ps.idle", "summary.time_ps", 100}, {"time_split.idle_share", NULL, 100}}},
};
#define CMP_NMETRICS (sizeof cmp_metrics / sizeof cmp_metrics[0])

typedef struct cmp_row {
    char label[96];
    int decimals;
    int text;                   /* a row of strings (s[]), else of numbers (v[]) */
    double v[COMPARE_MAX_RUNS]; /* NaN = absent (null, or not in that document) */
    char *s[COMPARE_MAX_RUNS];  /* owned; NULL = absent */
} cmp_row;

typedef struct cmp_table {
    cmp_row *rows;
    size_t n, cap;
    size_t ndiff; /* the first ndiff rows are the "how they were made" differences */
} cmp_table;

static void cmp_table_free(cmp_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        for (unsigned j = 0; j < COMPARE_MAX_RUNS; j++)
            free(t->rows[i].s[j]);
    free(t->rows);
}

static cmp_row *cmp_add(cmp_table *t, const char *label, int decimals, int text, err *e)
{
    if (mem_grow(&t->rows, &t->cap, t->n + 1, sizeof *t->rows, 64)) {
        err_setk(e, ERR_NOMEM, "report: out of memory");
        return NULL;
    }
    cmp_row *r = &t->rows[t->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->label, sizeof r->label, "%s", label);
    r->decimals = decimals;
    r->text = text;
    for (unsigned j = 0; j < COMPARE_MAX_RUNS; j++)
        r->v[j] = NAN;
    return r;
}

static int cmp_set_str(cmp_row *r, unsigned j, const char *s, err *e)
{
    free(r->s[j]);
    r->s[j] = s ? strdup(s) : NULL;
    if (s && !r->s[j])
        return err_setk(e, ERR_NOMEM, "report: out of memory");
    return 0;
}

static int cmp_number(json_t *doc, const char *file, const char *path, double *out, err *e)
{
    json_t *v = cmp_path(doc, path);
    if (!v)
        return err_set(e,
                       "%s: missing key '%s' (is it a 'tpusim run --json' or 'tpusim pod --json' "
                       "report?)",
                       file, path);
    if (json_is_null(v)) {
        *out = NAN;
        return 0;
    }
    if (!json_is_number(v))
        return err_set(e, "%s: key '%s' is not a number", file, path);
    *out = json_number_value(v);
    return 0;
}

/* A JSON value as table text: strings as they are, numbers %.10g, arrays joined by ' '. */
static void cmp_value_text(json_t *v, char *buf, size_t cap)
{
    buf[0] = 0;
    if (json_is_string(v))
        snprintf(buf, cap, "%s", json_string_value(v));
    else if (json_is_number(v))
        snprintf(buf, cap, "%.10g", json_number_value(v));
    else if (json_is_true(v) || json_is_false(v))
        snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_array(v)) {
        size_t i, len = 0;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            char one[256];
            cmp_value_text(x, one, sizeof one);
            if (len < cap)
                len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? " " : "", one);
        }
        if (!len)
            snprintf(buf, cap, "(none)");
    }
}

/* The value at `path`, then member `key` of it when key is not NULL (config keys hold dots,
 * so they cannot be part of a dotted path). */
static json_t *cmp_lookup(json_t *doc, const char *path, const char *key)
{
    json_t *v = cmp_path(doc, path);
    return key ? json_object_get(v, key) : v;
}

/* A row of strings for `path` (and `key`) when the documents disagree on it. */
static int cmp_diff_row(cmp_table *t, json_t **docs, unsigned nf, const char *label,
                        const char *path, const char *key, err *e)
{
    char first[1024] = "", cur[1024];
    int differs = 0;
    for (unsigned pass = 0; pass < 2; pass++) {
        cmp_row *r = NULL;
        if (pass == 1 && !(r = cmp_add(t, label, 0, 1, e)))
            return -1;
        for (unsigned j = 0; j < nf; j++) {
            json_t *v = cmp_lookup(docs[j], path, key);
            if (v)
                cmp_value_text(v, cur, sizeof cur);
            else
                snprintf(cur, sizeof cur, "-");
            if (pass == 1 && cmp_set_str(r, j, cur, e))
                return -1;
            if (pass == 0 && j == 0)
                memcpy(first, cur, sizeof first);
            else if (pass == 0)
                differs |= strcmp(first, cur) != 0;
        }
        if (!differs)
            return 0;
    }
    return 0;
}

/* What differs in how the documents were made: provenance fields, then every config key
 * (provenance.config_values) whose value is not the same in all of them. */
static int cmp_build_diffs(cmp_table *t, json_t **docs, unsigned nf, err *e)
{
    static const struct {
        const char *label, *path;
    } fields[] = {
        {"kind", "schema"},
        {"config", "provenance.config"},
        {"-p overrides", "provenance.overrides"},
        {"config hash", "provenance.config_hash"},
        {"ici.dims", "provenance.topology.ici_dims"},
        {"ici.wrap", "provenance.topology.ici_wrap"},
        {"trace", "trace"},
        {"trace made by", "provenance.trace_note"},
        {"tpusim version", "provenance.version"},
        {"tpusim revision", "provenance.revision"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (cmp_diff_row(t, docs, nf, fields[i].label, fields[i].path, NULL, e))
            return -1;
    /* Config keys in order of first appearance over the documents. */
    for (unsigned j = 0; j < nf; j++) {
        const char *key;
        json_t *v;
        json_object_foreach(cmp_path(docs[j], "provenance.config_values"), key, v)
        {
            int seen = 0;
            for (unsigned k = 0; k < j && !seen; k++)
                seen = cmp_lookup(docs[k], "provenance.config_values", key) != NULL;
            char label[128];
            snprintf(label, sizeof label, "  %s", key);
            if (!seen && cmp_diff_row(t, docs, nf, label, "provenance.config_values", key, e))
                return -1;
        }
    }
    t->ndiff = t->n;
    return 0;
}

/* Rows named by `name` in the arrays `arr` of the documents of kind `kind`, in order of
 * first appearance, with value num[/den] x scale; name and the values are keys of each
 * array element. `label_fmt` gets the name. */
static int cmp_build_aligned(cmp_table *t, json_t **docs, const cmp_kind *kinds, unsigned nf,
                             const char *const *files, cmp_kind kind, const char *arr,
                             const char *name_key, const char *name_key2, const char *num,
                             const char *den, double scale, const char *label_fmt, int decimals,
                             err *e)
{
    size_t first = t->n;
    for (unsigned j = 0; j < nf; j++) {
        if (kinds[j] != kind)
            continue;
        json_t *a = json_object_get(docs[j], arr);
        if (!json_is_array(a))
            return err_set(e, "%s: missing key '%s' (an array)", files[j], arr);
        size_t k;
        json_t *el;
        json_array_foreach(a, k, el)
        {
            const char *nm = json_string_value(json_object_get(el, name_key));
            const char *nm2 = name_key2 ? json_string_value(json_object_get(el, name_key2)) : "";
            if (!nm || !nm2)
                return err_set(e, "%s: missing key '%s.%zu.%s'", files[j], arr, k,
                               !nm ? name_key : name_key2);
            char name[96], label[96];
            snprintf(name, sizeof name, "%s%s%s", nm, *nm2 ? " " : "", nm2);
            snprintf(label, sizeof label, label_fmt, name);
            cmp_row *r = NULL;
            for (size_t i = first; i < t->n && !r; i++)
                if (!strcmp(t->rows[i].label, label))
                    r = &t->rows[i];
            if (!r && !(r = cmp_add(t, label, decimals, 0, e)))
                return -1;
            json_t *nv = json_object_get(el, num), *dv = den ? json_object_get(el, den) : NULL;
            if (!nv || (!json_is_number(nv) && !json_is_null(nv)))
                return err_set(e, "%s: missing key '%s.%zu.%s'", files[j], arr, k, num);
            double v = json_is_number(nv) ? json_number_value(nv) : NAN;
            if (den) {
                double d = json_is_number(dv) ? json_number_value(dv) : NAN;
                v = v - d; /* den is the start of a span: end - start */
            }
            r->v[j] = isnan(r->v[j]) ? v * scale : r->v[j] + v * scale;
        }
    }
    return 0;
}

static int cmp_build(cmp_table *t, json_t **docs, const cmp_kind *kinds, unsigned nf,
                     const char *const *files, err *e)
{
    if (cmp_build_diffs(t, docs, nf, e))
        return -1;
    int any[CMP_NKINDS] = {0};
    for (unsigned j = 0; j < nf; j++)
        any[kinds[j]] = 1;
    for (size_t i = 0; i < CMP_NMETRICS; i++) {
        const cmp_metric *m = &cmp_metrics[i];
        int shown = 0;
        for (int k = 0; k < CMP_NKINDS; k++)
            shown |= any[k] && m->src[k].num;
        if (!shown)
            continue; /* e.g. "chips" when only runs are compared */
        cmp_row *r = cmp_add(t, m->label, m->decimals, 0, e);
        if (!r)
            return -1;
        for (unsigned j = 0; j < nf; j++) {
            const cmp_src *s = &m->src[kinds[j]];
            double v, d = 1;
            if (!s->num)
                continue;
            if (cmp_number(docs[j], files[j], s->num, &v, e) ||
                (s->den && cmp_number(docs[j], files[j], s->den, &d, e)))
                return -1;
            r->v[j] = s->den ? (d > 0 ? v / d : NAN) * s->scale : v * s->scale;
        }
    }
    if (any[CMP_RUN]) {
        cmp_row *r = cmp_add(t, "bound by", 0, 1, e);
        if (!r)
            return -1;
        for (unsigned j = 0; j < nf; j++) {
            if (kinds[j] != CMP_RUN)
                continue;
            const char *s = cmp_str(docs[j], "roofline.bound_by");
            if (!s)
                return err_set(e, "%s: missing key 'roofline.bound_by'", files[j]);
            if (cmp_set_str(r, j, s, e))
                return -1;
        }
    }
    if (any[CMP_POD]) {
        cmp_row *r = cmp_add(t, "topology", 0, 1, e);
        if (!r)
            return -1;
        for (unsigned j = 0; j < nf; j++)
            if (kinds[j] == CMP_POD && cmp_set_str(r, j, cmp_str(docs[j], "topology_desc"), e))
                return -1;
    }
    /* Regions by name (a name repeated within a run adds up), then units, then collectives. */
    if (any[CMP_RUN] &&
        (cmp_build_aligned(t, docs, kinds, nf, files, CMP_RUN, "regions", "name", NULL, "end_ps",
                           "start_ps", 1e-6, "region %s (us)", 3, e) ||
         cmp_build_aligned(t, docs, kinds, nf, files, CMP_RUN, "units", "name", NULL, "util", NULL,
                           100, "%s util (%%)", 1, e)))
        return -1;
    if (any[CMP_POD] && cmp_build_aligned(t, docs, kinds, nf, files, CMP_POD, "collectives", "kind",
                                          "axes", "time_s", NULL, 1e6, "%s (us)", 3, e))
        return -1;
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

static void cmp_ratio(char *buf, size_t cap, const cmp_row *r, unsigned j)
{
    if (r->text)
        snprintf(buf, cap, "%s",
                 !r->s[0] || !r->s[j]       ? "-"
                 : strcmp(r->s[0], r->s[j]) ? "differs"
                                            : "same");
    else if (isnan(r->v[0]) || isnan(r->v[j]) || r->v[0] == 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.3f", r->v[j] / r->v[0]);
}

static int cmp_write_csv(const char *path, const char *const *files, unsigned nf,
                         const cmp_table *t, err *e)
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
        fmt_csv_field(f, files[j], 0);
    }
    for (unsigned j = 1; j < nf; j++)
        fprintf(f, ",%c/A", 'A' + j);
    fputc('\n', f);
    for (size_t i = 0; i < t->n; i++) {
        const cmp_row *r = &t->rows[i];
        const char *label = r->label;
        while (*label == ' ')
            label++;
        fmt_csv_field(f, label, 0);
        for (unsigned j = 0; j < nf; j++) {
            fputc(',', f);
            if (r->text)
                fmt_csv_field(f, r->s[j] ? r->s[j] : "", 0);
            else if (!isnan(r->v[j]))
                fprintf(f, "%.10g", r->v[j]);
        }
        for (unsigned j = 1; j < nf; j++) {
            fputc(',', f);
            if (r->text) {
                char b[16];
                cmp_ratio(b, sizeof b, r, j);
                fputs(b, f);
            } else if (!isnan(r->v[0]) && !isnan(r->v[j]) && r->v[0] != 0)
                fprintf(f, "%.6g", r->v[j] / r->v[0]);
        }
        fputc('\n', f);
    }
    return ofile_close(of, e);
}

static void cmp_print_rows(FILE *out, const cmp_table *t, size_t from, size_t to, unsigned nf,
                           int lw, int cw, int ratios)
{
    for (size_t i = from; i < to; i++) {
        const cmp_row *r = &t->rows[i];
        char buf[48];
        fprintf(out, "%-*s", lw, r->label);
        for (unsigned j = 0; j < nf; j++) {
            if (r->text)
                snprintf(buf, sizeof buf, "%s", r->s[j] ? r->s[j] : "-");
            else
                cmp_fmt(buf, sizeof buf, r->v[j], r->decimals);
            fprintf(out, " %*s", cw, buf);
        }
        for (unsigned j = 1; ratios && j < nf; j++) {
            cmp_ratio(buf, sizeof buf, r, j);
            fprintf(out, " %8s", buf);
        }
        fputc('\n', out);
    }
}

static void cmp_print(FILE *out, json_t **docs, const cmp_kind *kinds, const char *const *files,
                      unsigned nf, const cmp_table *t)
{
    fprintf(out, "reports:\n");
    for (unsigned j = 0; j < nf; j++) {
        const char *trace = cmp_str(docs[j], "trace"), *chip = cmp_str(docs[j], "chip");
        const char *config = cmp_str(docs[j], "config");
        fprintf(out, "  %c  %s: %s of %s on %s", 'A' + j, files[j],
                kinds[j] == CMP_POD ? "pod" : "run", trace ? trace : "?", chip ? chip : "?");
        if (kinds[j] == CMP_POD) {
            const char *topo = cmp_str(docs[j], "topology_desc");
            fprintf(out, ", %s", topo ? topo : "?");
        }
        fprintf(out, " (%s)\n", config && config[0] ? config : "defaults");
    }
    int lw = 24, cw = 12;
    for (size_t i = 0; i < t->n; i++) {
        if ((int)strlen(t->rows[i].label) > lw)
            lw = (int)strlen(t->rows[i].label);
        for (unsigned j = 0; j < nf && t->rows[i].text; j++)
            if (t->rows[i].s[j] && (int)strlen(t->rows[i].s[j]) > cw)
                cw = (int)strlen(t->rows[i].s[j]) < 40 ? (int)strlen(t->rows[i].s[j]) : 40;
    }
    fprintf(out, "\nhow they were made:");
    if (!t->ndiff)
        fprintf(out, " the same (config, overrides, topology, trace and tpusim)\n");
    else {
        fprintf(out, " what differs\n%-*s", lw, "");
        for (unsigned j = 0; j < nf; j++)
            fprintf(out, " %*c", cw, 'A' + j);
        fputc('\n', out);
        cmp_print_rows(out, t, 0, t->ndiff, nf, lw, cw, 0);
    }
    fprintf(out, "\n%-*s", lw, "metric");
    for (unsigned j = 0; j < nf; j++)
        fprintf(out, " %*c", cw, 'A' + j);
    for (unsigned j = 1; j < nf; j++) {
        char h[8];
        snprintf(h, sizeof h, "%c/A", 'A' + j);
        fprintf(out, " %8s", h);
    }
    fputc('\n', out);
    cmp_print_rows(out, t, t->ndiff, t->n, nf, lw, cw, 1);
}

/* Which kind of report a document is: run (schema tpusim.run/N), pod (schema tpusim.pod/N,
 * or "tool": "tpusim pod" as written before the pod report had a schema). */
static int cmp_kind_of(json_t *doc, const char *file, cmp_kind *k, err *e)
{
    const char *sc = cmp_str(doc, "schema"), *tool = cmp_str(doc, "tool");
    if (sc && !strncmp(sc, "tpusim.run/", 11))
        *k = CMP_RUN;
    else if ((sc && !strncmp(sc, "tpusim.pod/", 11)) || (tool && !strcmp(tool, "tpusim pod")))
        *k = CMP_POD;
    else
        return err_set(e,
                       "%s: not a 'tpusim run --json' or 'tpusim pod --json' report (key 'schema' "
                       "is %s)",
                       file, sc ? sc : "missing");
    return 0;
}

int compare_reports(const char *const *files, unsigned nf, const char *csv, FILE *out, err *e)
{
    json_t *docs[COMPARE_MAX_RUNS] = {0};
    cmp_kind kinds[COMPARE_MAX_RUNS];
    cmp_table t = {0};
    int rc = -1;
    if (!nf)
        return err_set(e, "report: expected one or more run or pod reports (A.json B.json ...)");
    if (nf > COMPARE_MAX_RUNS)
        return err_set(e, "report: at most %d reports can be compared", COMPARE_MAX_RUNS);
    for (unsigned j = 0; j < nf; j++)
        if (!(docs[j] = compare_load(files[j], e)) || cmp_kind_of(docs[j], files[j], &kinds[j], e))
            goto out;
    if (cmp_build(&t, docs, kinds, nf, files, e))
        goto out;
    cmp_print(out, docs, kinds, files, nf, &t);
    rc = csv ? cmp_write_csv(csv, files, nf, &t, e) : 0;
out:
    cmp_table_free(&t);
    for (unsigned j = 0; j < nf; j++)
        json_decref(docs[j]);
    return rc;
}
