/* prov.c - provenance of every output (prov.h). The revision comes from a source file written
 * at build time by cmake/revision.cmake; the config hash is FNV-1a 64, enough to tell configs
 * apart, not a security measure. */
#define _POSIX_C_SOURCE 200809L
#include "prov.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Defined in the build directory's generated/tpusim_rev.c (cmake/revision.cmake). */
extern const char tpusim_revision[];

#ifndef TPUSIM_VERSION
#define TPUSIM_VERSION "0.0.0"
#endif

const char *prov_revision(void)
{
    return tpusim_revision;
}

void prov_init(prov *p)
{
    memset(p, 0, sizeof *p);
    clock_gettime(CLOCK_MONOTONIC, &p->t0);
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(p->started_utc, sizeof p->started_utc, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

double prov_wall_s(const prov *p)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - p->t0.tv_sec) + (t.tv_nsec - p->t0.tv_nsec) * 1e-9;
}

void prov_config_hash(const cfg *c, char *buf, size_t cap)
{
    size_t n;
    const cfg_key *keys = cfg_keys(&n);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        char val[4 * CFG_STR_MAX + 8], line[4 * CFG_STR_MAX + 160];
        cfg_format_value(c, &keys[i], val, sizeof val);
        snprintf(line, sizeof line, "%s=%s\n", keys[i].name, val);
        for (const unsigned char *s = (const unsigned char *)line; *s; s++) {
            h ^= *s;
            h *= 0x100000001b3ull;
        }
    }
    snprintf(buf, cap, "fnv1a64:%016" PRIx64, h);
}

int prov_set_config(prov *p, const char *given, const cfg *c, const char *const *ovr, unsigned novr,
                    err *e)
{
    snprintf(p->config, sizeof p->config, "%s", given ? given : "");
    snprintf(p->config_path, sizeof p->config_path, "%s", c->source);
    p->cfg = c;
    prov_config_hash(c, p->config_hash, sizeof p->config_hash);
    if (novr) {
        if (!(p->overrides = calloc(novr, sizeof *p->overrides)))
            return err_setk(e, ERR_NOMEM, "out of memory");
        for (unsigned i = 0; i < novr; i++, p->noverrides++)
            if (!(p->overrides[i] = strdup(ovr[i])))
                return err_setk(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* Whether path is a regular file: a pipe, FIFO or stdin is read once, by the replay. */
static int prov_regular(const char *path)
{
    struct stat st;
    return strcmp(path, "-") && !stat(path, &st) && S_ISREG(st.st_mode);
}

void prov_set_trace_note(prov *p, const char *trace_path, const char *note)
{
    snprintf(p->trace, sizeof p->trace, "%s", trace_path);
    snprintf(p->trace_note, sizeof p->trace_note, "%s", note ? note : "");
    p->has_trace_topo = trace_note_topology(p->trace_note, &p->trace_topo) == 1;
    /* The note as a person reads it: the topology line is reported on its own. */
    char *tl = strstr(p->trace_note, TRACE_TOPO_TAG);
    while (tl && tl != p->trace_note && tl[-1] != '\n')
        tl = strstr(tl + 1, TRACE_TOPO_TAG);
    if (tl) {
        *tl = 0;
        size_t n = strlen(p->trace_note);
        if (n && p->trace_note[n - 1] == '\n')
            p->trace_note[n - 1] = 0;
    }
}

int prov_set_trace(prov *p, const char *trace_path, err *e)
{
    trace_reader *r;
    if (!prov_regular(trace_path)) {
        prov_set_trace_note(p, trace_path, "");
        return 0;
    }
    if (trace_reader_open(&r, trace_path, e)) {
        snprintf(p->trace, sizeof p->trace, "%s", trace_path);
        return -1;
    }
    prov_set_trace_note(p, trace_path, trace_reader_header(r)->note);
    trace_reader_free(r);
    return 0;
}

int prov_set_command(prov *p, int argc, char *const *argv, err *e)
{
    size_t cap = 16;
    for (int i = 0; i < argc; i++)
        cap += 3 + 4 * strlen(argv[i]);
    free(p->command);
    if (!(p->command = malloc(cap)))
        return err_setk(e, ERR_NOMEM, "out of memory");
    size_t len = (size_t)snprintf(p->command, cap, "tpusim");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (*a && !strpbrk(a, " \t\n\"'\\$`*?;&|<>(){}[]#~")) {
            len += (size_t)snprintf(p->command + len, cap - len, " %s", a);
            continue;
        }
        /* Single quotes, each ' as '\'' (POSIX shell). */
        len += (size_t)snprintf(p->command + len, cap - len, " '");
        for (; *a; a++)
            len += (size_t)snprintf(p->command + len, cap - len, *a == '\'' ? "'\\''" : "%c", *a);
        len += (size_t)snprintf(p->command + len, cap - len, "'");
    }
    return 0;
}

void prov_fini(prov *p)
{
    for (unsigned i = 0; i < p->noverrides; i++)
        free(p->overrides[i]);
    free(p->overrides);
    free(p->command);
    p->overrides = NULL;
    p->noverrides = 0;
    p->command = NULL;
}

void prov_json(const prov *p, json_w *w, const char *topology)
{
    json_obj_begin(w, "provenance");
    json_str(w, "version", TPUSIM_VERSION);
    json_str(w, "revision", tpusim_revision);
    json_str(w, "config", p->config);
    json_str(w, "config_path", p->config_path);
    json_str(w, "config_hash", p->config_hash);
    json_arr_begin(w, "overrides");
    for (unsigned i = 0; i < p->noverrides; i++)
        json_str(w, NULL, p->overrides[i]);
    json_arr_end(w);
    json_obj_begin(w, "topology");
    if (topology)
        json_str(w, "pod", topology);
    json_str(w, "ici_dims", p->cfg ? p->cfg->ici_dims : "");
    json_str(w, "ici_wrap", p->cfg ? p->cfg->ici_wrap : "");
    if (p->cfg && p->cfg->dcn_slices > 1)
        json_u64(w, "dcn_slices", p->cfg->dcn_slices);
    json_obj_end(w);
    json_str(w, "trace_note", p->trace_note);
    if (p->has_trace_topo) {
        json_obj_begin(w, "trace_topology");
        json_u64(w, "chips", p->trace_topo.chips);
        json_str(w, "ici_dims", p->trace_topo.ici_dims);
        json_str(w, "ici_wrap", p->trace_topo.ici_wrap);
        if (p->trace_topo.slices > 1)
            json_u64(w, "dcn_slices", p->trace_topo.slices);
        json_obj_end(w);
    } else {
        json_num(w, "trace_topology", NAN); /* null: the trace does not say */
    }
    json_str(w, "command", p->command ? p->command : "");
    json_str(w, "started_utc", p->started_utc);
    json_num(w, "wall_s", prov_wall_s(p));
    json_obj_begin(w, "config_values");
    size_t n;
    const cfg_key *keys = cfg_keys(&n);
    for (size_t i = 0; p->cfg && i < n; i++) {
        char val[4 * CFG_STR_MAX + 8];
        cfg_format_value(p->cfg, &keys[i], val, sizeof val);
        json_str(w, keys[i].name, val);
    }
    json_obj_end(w);
    json_obj_end(w);
}

/* One "# key: value" line; control characters in value become '?' so it stays one line. */
static void prov_line(FILE *f, const char *key, const char *v)
{
    fprintf(f, "# %s: ", key);
    for (; *v; v++)
        fputc((unsigned char)*v < 0x20 ? '?' : *v, f);
    fputc('\n', f);
}

void prov_csv(const prov *p, FILE *f)
{
    char b[256];
    prov_line(f, "version", TPUSIM_VERSION);
    prov_line(f, "revision", tpusim_revision);
    prov_line(f, "config", p->config);
    prov_line(f, "config_path", p->config_path);
    prov_line(f, "config_hash", p->config_hash);
    for (unsigned i = 0; i < p->noverrides; i++)
        prov_line(f, "override", p->overrides[i]);
    prov_line(f, "ici_dims", p->cfg ? p->cfg->ici_dims : "");
    prov_line(f, "ici_wrap", p->cfg ? p->cfg->ici_wrap : "");
    prov_line(f, "trace_note", p->trace_note);
    if (p->has_trace_topo) {
        int n = snprintf(b, sizeof b, "chips=%llu ici.dims=%s ici.wrap=%s",
                         (unsigned long long)p->trace_topo.chips, p->trace_topo.ici_dims,
                         p->trace_topo.ici_wrap[0] ? p->trace_topo.ici_wrap : "none");
        if (p->trace_topo.slices > 1 && n > 0 && (size_t)n < sizeof b)
            snprintf(b + n, sizeof b - (size_t)n, " dcn.slices=%llu",
                     (unsigned long long)p->trace_topo.slices);
        prov_line(f, "trace_topology", b);
    }
    prov_line(f, "command", p->command ? p->command : "");
    prov_line(f, "started_utc", p->started_utc);
    snprintf(b, sizeof b, "%.3f", prov_wall_s(p));
    prov_line(f, "wall_s", b);
}

int prov_trace_topology(const char *trace_path, trace_topology *t, err *e)
{
    trace_reader *r;
    if (!prov_regular(trace_path))
        return 0; /* read once, by the replay: not opened for its note */
    if (trace_reader_open(&r, trace_path, e))
        return -1;
    int rc = trace_note_topology(trace_reader_header(r)->note, t) == 1;
    trace_reader_free(r);
    return rc;
}

int prov_slices_mismatch(const trace_topology *t, uint64_t slices, char *msg, size_t cap)
{
    uint64_t ts = t->slices > 1 ? t->slices : 1;
    if (ts == slices)
        return 0;
    snprintf(msg, cap,
             "the trace was generated for %llu slice%s but is timed with dcn.slices=%llu: its "
             "gradient reduction across slices %s; generate it with --slices %llu",
             (unsigned long long)ts, ts > 1 ? "s" : "", (unsigned long long)slices,
             ts > 1 ? "assumes the other count" : "is missing", (unsigned long long)slices);
    return 1;
}

int prov_topology_mismatch(const trace_topology *t, uint64_t chips, const char *dims,
                           const char *wrap, char *msg, size_t cap)
{
    if (t->chips <= 1)
        return 0;
    int same = t->chips == chips;
    if (same && dims)
        same = !strcmp(t->ici_dims, dims) && !strcmp(t->ici_wrap, wrap ? wrap : "");
    if (same)
        return 0;
    if (dims)
        snprintf(msg, cap,
                 "the trace was generated for %llu chips (ici.dims=%s ici.wrap=%s) but its "
                 "collectives are timed on ici.dims=%s ici.wrap=%s (%llu chips); set -p ici.dims "
                 "and -p ici.wrap as at generation",
                 (unsigned long long)t->chips, t->ici_dims, t->ici_wrap[0] ? t->ici_wrap : "none",
                 dims, wrap && wrap[0] ? wrap : "none", (unsigned long long)chips);
    else
        snprintf(msg, cap,
                 "the trace was generated for %llu chips (ici.dims=%s) but the pod has %llu "
                 "chips: its per-chip work is replayed unchanged (weak scaling); generate it "
                 "with --chips %llu for this pod",
                 (unsigned long long)t->chips, t->ici_dims, (unsigned long long)chips,
                 (unsigned long long)chips);
    return 1;
}
