/* config.c - the machine configuration: table-driven parsing, checking and dumping of
 * config_keys.def, YAML files via libyaml's event API. Assumes one YAML document per file
 * whose top level is a mapping; nested maps flatten to dotted key names. */
#define _XOPEN_SOURCE 700
#include "config.h"
#include "yamlin.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#ifndef TPUSIM_PRESETS_INSTALL_DIR
#define TPUSIM_PRESETS_INSTALL_DIR "/usr/local/share/tpusim/configs"
#endif

/* An include chain deeper than this is almost certainly a cycle through distinct paths. */
#define CFG_INCLUDE_MAX 8
#define CFG_NAME_MAX    128
#define CFG_PATH_MAX    PATH_MAX

static const cfg_key cfg_table[] = {
#define CFG_KEY(f, nm, T, un, lo, hi, df, ch, hp)                                                  \
    {.name = nm,                                                                                   \
     .type = CFG_T_##T,                                                                            \
     .unit = un,                                                                                   \
     .min = (double)(lo),                                                                          \
     .max = (double)(hi),                                                                          \
     .def = df,                                                                                    \
     .choices = ch,                                                                                \
     .help = hp,                                                                                   \
     .offset = offsetof(cfg, f)},
#include "config_keys.def"
#undef CFG_KEY
};

enum { CFG_NKEYS = sizeof cfg_table / sizeof cfg_table[0] };

const cfg_key *cfg_keys(size_t *count)
{
    if (count)
        *count = CFG_NKEYS;
    return cfg_table;
}

const cfg_key *cfg_key_find(const char *name)
{
    for (size_t i = 0; i < CFG_NKEYS; i++)
        if (!strcmp(cfg_table[i].name, name))
            return &cfg_table[i];
    return NULL;
}

/* ---- value parsing (shared by defaults, files and -p) ---- */

/* Binary suffixes: K and KiB are both 1024 (sizes in this simulator are never decimal). */
static const struct {
    const char *sfx;
    unsigned shift;
} cfg_suffixes[] = {
    {"K", 10}, {"KiB", 10}, {"M", 20}, {"MiB", 20}, {"G", 30}, {"GiB", 30}, {"T", 40}, {"TiB", 40},
};

static int cfg_parse_int(const char *s, uint64_t *out)
{
    const char *p = s;
    uint64_t v = 0;
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    const char *digits = p;
    for (;; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = (unsigned)(*p - 'A' + 10);
        else
            break;
        if (v > (UINT64_MAX - d) / (uint64_t)base)
            return 1; /* overflow */
        v = v * (uint64_t)base + d;
    }
    if (p == digits)
        return -1;
    if (*p) {
        size_t i;
        for (i = 0; i < sizeof cfg_suffixes / sizeof cfg_suffixes[0]; i++)
            if (!strcmp(p, cfg_suffixes[i].sfx))
                break;
        if (i == sizeof cfg_suffixes / sizeof cfg_suffixes[0])
            return -1;
        unsigned sh = cfg_suffixes[i].shift;
        if (v > (UINT64_MAX >> sh))
            return 1;
        v <<= sh;
    }
    *out = v;
    return 0;
}

/* Whole numbers print plainly (100, not 1e+02); others as the shortest "%.Ng" that reads
 * back as exactly d. */
static void cfg_fmt_dbl(char *buf, size_t n, double d)
{
    if (d == floor(d) && fabs(d) < 1e15) {
        snprintf(buf, n, "%.0f", d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* Integers of byte-sized keys print with the largest exact binary suffix (16MiB). */
static void cfg_fmt_int(char *buf, size_t n, uint64_t v, int bytes)
{
    static const char *sfx[] = {"KiB", "MiB", "GiB", "TiB"};
    int k = -1;
    while (bytes && v && k < 3 && (v & ((1ULL << (10 * (k + 2))) - 1)) == 0)
        k++;
    if (k >= 0)
        snprintf(buf, n, "%llu%s", (unsigned long long)(v >> (10 * (k + 1))), sfx[k]);
    else
        snprintf(buf, n, "%llu", (unsigned long long)v);
}

static int cfg_is_bytes(const cfg_key *k)
{
    return !strcmp(k->unit, "bytes");
}

static void cfg_fmt_bound(char *buf, size_t n, const cfg_key *k, double v)
{
    if (k->type == CFG_T_INT)
        cfg_fmt_int(buf, n, (uint64_t)v, cfg_is_bytes(k));
    else
        cfg_fmt_dbl(buf, n, v);
}

static int cfg_range_err(const cfg_key *k, const char *val, const char *where, err *e)
{
    char lo[32], hi[32];
    cfg_fmt_bound(lo, sizeof lo, k, k->min);
    cfg_fmt_bound(hi, sizeof hi, k, k->max);
    return err_set(e, "%s: key '%s': value %s not in [%s, %s]", where, k->name, val, lo, hi);
}

/* Index of s in the '|'-separated list, or -1. */
static int cfg_choice_index(const char *choices, const char *s)
{
    size_t len = strlen(s);
    int idx = 0;
    for (const char *p = choices; *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !strncmp(p, s, n))
            return idx;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

/* Name of choice idx into buf ("?" if out of range). */
static void cfg_choice_name(const char *choices, int idx, char *buf, size_t n)
{
    const char *p = choices;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, '|');
        if (p)
            p++;
    }
    if (!p || idx < 0) {
        snprintf(buf, n, "?");
        return;
    }
    const char *bar = strchr(p, '|');
    int len = bar ? (int)(bar - p) : (int)strlen(p);
    snprintf(buf, n, "%.*s", len, p);
}

/* Parse text as key k's type, range-check it, and store it into c only if valid. */
/* The topology keys' shorthands, applied as each is set: ici.wrap `none` (or a literal `""`)
 * is no wraparound (a mesh); setting ici.dims drops from ici.wrap the axes it no longer has,
 * so a 1-axis ici.dims is a ring (wrap x) when the wrap had x, and `-p ici.dims=8x8` on a 3D
 * preset keeps the wrap of x and y. A wrap set after the dims is taken as given. */
static void cfg_topology_set(cfg *c, const cfg_key *k)
{
    if (k->offset == offsetof(cfg, ici_wrap)) {
        if (!strcmp(c->ici_wrap, "none") || !strcmp(c->ici_wrap, "\"\""))
            memset(c->ici_wrap, 0, sizeof c->ici_wrap);
    } else if (k->offset == offsetof(cfg, ici_dims)) {
        unsigned d[3];
        int n = cfg_parse_dims(c->ici_dims, d);
        if (n < 1)
            return; /* cfg_check reports it */
        char *o = c->ici_wrap;
        for (const char *p = c->ici_wrap; *p; p++)
            if (!strchr("xyz", *p) || p[0] - 'x' < n)
                *o++ = *p; /* keep what is not an axis letter for cfg_check to report */
        memset(o, 0, (size_t)(c->ici_wrap + sizeof c->ici_wrap - o));
    }
}

static int cfg_parse_value(cfg *c, const cfg_key *k, const char *s, const char *where, err *e)
{
    void *field = (char *)c + k->offset;
    switch (k->type) {
    case CFG_T_INT: {
        uint64_t v;
        int rc = cfg_parse_int(s, &v);
        if (rc > 0)
            return err_set(e, "%s: key '%s': value '%s' does not fit in 64 bits", where, k->name,
                           s);
        if (rc < 0)
            return err_set(e, "%s: key '%s': expected %s, got '%s'", where, k->name,
                           s[0] == '-' ? "a non-negative integer" : "an integer", s);
        if ((double)v < k->min || (double)v > k->max) {
            char val[32];
            snprintf(val, sizeof val, "%llu", (unsigned long long)v);
            return cfg_range_err(k, val, where, e);
        }
        *(uint64_t *)field = v;
        return 0;
    }
    case CFG_T_DBL: {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || *end || !isfinite(v) || errno == ERANGE)
            return err_set(e, "%s: key '%s': expected a number, got '%s'", where, k->name, s);
        if (v < k->min || v > k->max) {
            char val[32];
            cfg_fmt_dbl(val, sizeof val, v);
            return cfg_range_err(k, val, where, e);
        }
        *(double *)field = v;
        return 0;
    }
    case CFG_T_BOOL: {
        static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            if (!strcasecmp(s, yes[i])) {
                *(int *)field = 1;
                return 0;
            }
            if (!strcasecmp(s, no[i])) {
                *(int *)field = 0;
                return 0;
            }
        }
        return err_set(e, "%s: key '%s': expected true or false, got '%s'", where, k->name, s);
    }
    case CFG_T_ENUM: {
        int idx = cfg_choice_index(k->choices, s);
        if (idx < 0)
            return err_set(e, "%s: key '%s': expected one of %s, got '%s'", where, k->name,
                           k->choices, s);
        *(int *)field = idx;
        return 0;
    }
    case CFG_T_STR: {
        size_t len = strlen(s);
        if (len >= CFG_STR_MAX)
            return err_set(e, "%s: key '%s': value longer than %d characters", where, k->name,
                           CFG_STR_MAX - 1);
        memset(field, 0, CFG_STR_MAX);
        memcpy(field, s, len);
        cfg_topology_set(c, k);
        return 0;
    }
    }
    assert(!"unknown cfg_type");
    return -1;
}

/* ---- key lookup with a suggestion ---- */

static int cfg_unknown_key(const char *name, const char *where, err *e)
{
    const cfg_key *best = NULL;
    unsigned bestd = 3;
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        unsigned d = isa_edit_distance(name, cfg_table[i].name, 0);
        if (d < bestd) {
            bestd = d;
            best = &cfg_table[i];
        }
    }
    /* Not a typo: the key's name in the wrong group, or without its group ("clock_ghz",
     * "mxu.clock_ghz" -> "chip.clock_ghz"), when only one group has it. */
    const char *dot = strrchr(name, '.'), *leaf = dot ? dot + 1 : name;
    for (size_t i = 0, n = 0; !best && *leaf && i < CFG_NKEYS; i++) {
        const char *kdot = strrchr(cfg_table[i].name, '.');
        if (kdot && !strcmp(kdot + 1, leaf) && n++ == 0) {
            for (size_t j = i + 1; j < CFG_NKEYS; j++) {
                const char *jdot = strrchr(cfg_table[j].name, '.');
                if (jdot && !strcmp(jdot + 1, leaf))
                    n++;
            }
            if (n == 1)
                best = &cfg_table[i];
        }
    }
    if (best)
        return err_set(e, "%s: unknown key '%s' (did you mean '%s'?)", where, name, best->name);
    return err_set(e, "%s: unknown key '%s'", where, name);
}

/* ---- public setters ---- */

void cfg_defaults(cfg *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        err e;
        int rc = cfg_parse_value(c, &cfg_table[i], cfg_table[i].def, "default", &e);
        assert(rc == 0 && "config_keys.def default does not parse");
        (void)rc;
    }
}

int cfg_set(cfg *c, const char *key, const char *value, const char *where, err *e)
{
    const cfg_key *k = cfg_key_find(key);
    if (!k)
        return cfg_unknown_key(key, where, e);
    if (cfg_parse_value(c, k, value, where, e))
        return -1;
    c->origin[k - cfg_table] = (cfg_origin){0};
    return 0;
}

/* ---- YAML loading ---- */

typedef struct cfg_loader {
    cfg *c;
    const char *presets_dir;
    err *e;
    int depth;
    unsigned nfiles;                               /* entries of c->files used */
    char chain[CFG_INCLUDE_MAX + 1][CFG_PATH_MAX]; /* realpath of each open file */
} cfg_loader;

/* One file being read: its parser, name for messages and the line each key was set on. */
typedef struct cfg_file {
    yin y; /* its parser; y.path names it in messages */
    cfg_loader *ld;
    uint8_t id; /* 1 + its index in c->files */
    unsigned set_line[CFG_NKEYS];
    int nkeys_seen; /* top-level keys so far, for the `include` first-key rule */
} cfg_file;

static int cfg_load_file(cfg_loader *ld, const char *path);

static int cfg_file_readable(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    fclose(fp);
    return 1;
}

/* Look for name (and name.yaml if it lacks the suffix) in dir; fills out on success. */
static int cfg_try_dir(const char *dir, const char *name, char *out, size_t n)
{
    size_t len = strlen(name);
    int has_sfx = len > 5 && !strcmp(name + len - 5, ".yaml");
    if (!dir || !*dir)
        return 0;
    if ((size_t)snprintf(out, n, "%s/%s", dir, name) < n && cfg_file_readable(out))
        return 1;
    if (!has_sfx && (size_t)snprintf(out, n, "%s/%s.yaml", dir, name) < n && cfg_file_readable(out))
        return 1;
    return 0;
}

/* The presets installed beside the running binary: BINDIR/../share/tpusim/configs, so an
 * install moved or made with `cmake --install --prefix P` still finds them. Fills dir (or
 * leaves it empty when /proc/self/exe cannot be read). */
static void cfg_exe_presets_dir(char *dir, size_t n)
{
    char exe[CFG_PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    dir[0] = '\0';
    if (len <= 0)
        return;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    if ((size_t)snprintf(dir, n, "%s/../share/tpusim/configs", exe) >= n)
        dir[0] = '\0';
}

/* s into out, or "" (a directory that cfg_try_dir skips) when it does not fit. */
static int cfg_dir_copy(char *out, size_t n, const char *s)
{
    if ((size_t)snprintf(out, n, "%s", s) >= n)
        out[0] = 0;
    return 1;
}

int cfg_preset_dir(const char *presets_dir, unsigned i, char *out, size_t n)
{
    unsigned k = 0;
    if (presets_dir && *presets_dir && k++ == i)
        return cfg_dir_copy(out, n, presets_dir);
    const char *env = getenv("TPUSIM_PRESETS");
    while (env && *env) {
        const char *colon = strchr(env, ':');
        size_t len = colon ? (size_t)(colon - env) : strlen(env);
        if (len > 0 && len < n && k++ == i) {
            memcpy(out, env, len);
            out[len] = 0;
            return 1;
        }
        env = colon ? colon + 1 : NULL;
    }
    if (k++ == i)
        return cfg_dir_copy(out, n, "configs");
    char exe_dir[CFG_PATH_MAX];
    cfg_exe_presets_dir(exe_dir, sizeof exe_dir);
    if (exe_dir[0] && k++ == i)
        return cfg_dir_copy(out, n, exe_dir);
    if (k++ == i)
        return cfg_dir_copy(out, n, TPUSIM_PRESETS_INSTALL_DIR);
    return 0;
}

/* Bare preset name search: the first directory of cfg_preset_dir's path that holds it. */
static int cfg_find_preset(const char *presets_dir, const char *name, char *out, size_t n)
{
    if (strchr(name, '/') || !*name)
        return 0;
    char dir[CFG_PATH_MAX];
    for (unsigned i = 0; cfg_preset_dir(presets_dir, i, dir, sizeof dir); i++)
        if (cfg_try_dir(dir, name, out, n))
            return 1;
    return 0;
}

static int cfg_include(cfg_loader *ld, cfg_file *f, const char *name, unsigned line)
{
    char path[CFG_PATH_MAX];
    if (!*name)
        return err_set(ld->e, "%s:%u: include: expected a file or preset name", f->y.path, line);
    if (name[0] == '/') {
        snprintf(path, sizeof path, "%s", name);
    } else {
        const char *slash = strrchr(f->y.path, '/');
        int dirlen = slash ? (int)(slash - f->y.path) : 1;
        if ((size_t)snprintf(path, sizeof path, "%.*s/%s", dirlen, slash ? f->y.path : ".", name) >=
            sizeof path)
            return err_set(ld->e, "%s:%u: include '%s': path too long", f->y.path, line, name);
    }
    if (!cfg_file_readable(path) && !cfg_find_preset(ld->presets_dir, name, path, sizeof path))
        return err_set(ld->e,
                       "%s:%u: include '%s': not found relative to the file nor as a preset "
                       "(presets dir, $TPUSIM_PRESETS, ./configs, BINDIR/../share/tpusim/configs, "
                       "%s)",
                       f->y.path, line, name, TPUSIM_PRESETS_INSTALL_DIR);
    if (ld->depth >= CFG_INCLUDE_MAX)
        return err_set(ld->e, "%s:%u: include '%s': includes nested deeper than %d", f->y.path,
                       line, name, CFG_INCLUDE_MAX);
    char real[CFG_PATH_MAX];
    if (realpath(path, real)) {
        for (int i = 0; i <= ld->depth; i++)
            if (!strcmp(ld->chain[i], real))
                return err_set(ld->e, "%s:%u: include '%s': include cycle", f->y.path, line, name);
    }
    return cfg_load_file(ld, path);
}

/* Parse a leaf value event for key `name` set at `line`. */
static int cfg_leaf(cfg_loader *ld, cfg_file *f, const char *name, const yaml_event_t *val)
{
    char where[CFG_PATH_MAX + 16];
    unsigned line = yin_line(val);
    snprintf(where, sizeof where, "%s:%u", f->y.path, line);
    const cfg_key *k = cfg_key_find(name);
    if (!k)
        return cfg_unknown_key(name, where, ld->e);
    if (val->type != YAML_SCALAR_EVENT)
        return err_set(ld->e, "%s: key '%s': expected a scalar value, got %s", where, name,
                       yin_kind(val->type));
    size_t idx = (size_t)(k - cfg_table);
    if (f->set_line[idx])
        return err_set(ld->e, "%s: duplicate key '%s' (first set on line %u)", where, name,
                       f->set_line[idx]);
    f->set_line[idx] = line;
    if (cfg_parse_value(ld->c, k, (const char *)val->data.scalar.value, where, ld->e))
        return -1;
    ld->c->origin[idx] = (cfg_origin){.line = line, .file = f->id};
    return 0;
}

/* Read key/value pairs until the end of the mapping whose start was just consumed. */
static int cfg_mapping(cfg_loader *ld, cfg_file *f, const char *prefix)
{
    for (;;) {
        yaml_event_t kev, vev;
        if (yin_next(&f->y, &kev))
            return -1;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return 0;
        }
        unsigned line = yin_line(&kev);
        if (kev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&kev);
            return err_set(ld->e, "%s:%u: expected a key name, got %s", f->y.path, line,
                           yin_kind(kev.type));
        }
        char name[CFG_NAME_MAX];
        const char *kname = (const char *)kev.data.scalar.value;
        int len = snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", kname);
        yaml_event_delete(&kev);
        if (len < 0 || (size_t)len >= sizeof name)
            return err_set(ld->e, "%s:%u: key name too long", f->y.path, line);
        int top = !*prefix;
        int first = top && f->nkeys_seen++ == 0;

        if (yin_next(&f->y, &vev))
            return -1;
        int rc;
        if (top && !strcmp(name, "include")) {
            if (!first)
                rc = err_set(ld->e, "%s:%u: 'include' must be the first key of the file", f->y.path,
                             line);
            else if (vev.type != YAML_SCALAR_EVENT)
                rc = err_set(ld->e, "%s:%u: include: expected a file or preset name, got %s",
                             f->y.path, line, yin_kind(vev.type));
            else
                rc = cfg_include(ld, f, (const char *)vev.data.scalar.value, line);
        } else if (vev.type == YAML_MAPPING_START_EVENT && !cfg_key_find(name)) {
            rc = cfg_mapping(ld, f, name);
        } else {
            rc = cfg_leaf(ld, f, name, &vev);
        }
        yaml_event_delete(&vev);
        if (rc)
            return rc;
    }
}

/* The file's top-level mapping (yin_document calls it at its start event). */
static int cfg_top(void *ctx)
{
    cfg_file *f = ctx;
    return cfg_mapping(f->ld, f, "");
}

static int cfg_load_file(cfg_loader *ld, const char *path)
{
    cfg_file *f = calloc(1, sizeof *f);
    if (!f)
        return err_setk(ld->e, ERR_NOMEM, "%s: out of memory", path);
    if (yin_open(&f->y, path, ld->e)) {
        free(f);
        return -1;
    }
    f->ld = ld;
    /* One include per file, nested at most CFG_INCLUDE_MAX deep: at most CFG_FILES_MAX
     * files, and each path fits (the include path is built in CFG_PATH_MAX bytes, the top
     * one in c->source). */
    assert(ld->nfiles < CFG_FILES_MAX && strlen(path) < sizeof ld->c->files[0]);
    memcpy(ld->c->files[ld->nfiles], path, strlen(path) + 1);
    f->id = (uint8_t)++ld->nfiles;
    ld->depth++;
    if (!realpath(path, ld->chain[ld->depth]))
        snprintf(ld->chain[ld->depth], CFG_PATH_MAX, "%s", path);
    unsigned maps;
    int rc = yin_document(&f->y, cfg_top, f, &maps);
    ld->depth--;
    yin_close(&f->y);
    free(f);
    return rc;
}

int cfg_load(cfg *c, const char *path, const char *presets_dir, err *e)
{
    cfg_defaults(c);
    char found[CFG_PATH_MAX];
    /* `-c v7` names a preset when no such file exists. */
    if (!cfg_file_readable(path) && cfg_find_preset(presets_dir, path, found, sizeof found))
        path = found;
    if (strlen(path) >= sizeof c->source)
        return err_set(e, "%.64s...: path longer than %zu characters", path, sizeof c->source - 1);
    cfg_loader *ld = calloc(1, sizeof *ld);
    if (!ld)
        return err_setk(e, ERR_NOMEM, "%s: out of memory", path);
    ld->c = c;
    ld->presets_dir = presets_dir;
    ld->e = e;
    ld->depth = -1;
    int rc = cfg_load_file(ld, path);
    free(ld);
    if (rc == 0)
        memcpy(c->source, path, strlen(path) + 1);
    return rc;
}

/* ---- cross-key checks ---- */

static int cfg_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* "FILE:LINE: " where key a was set in a file, else where key b was (b < 0: none), else ""
 * (a default or a -p override: the message names the key). */
static const char *cfg_at(const cfg *c, int a, int b, char *buf, size_t n)
{
    const cfg_origin *o = &c->origin[a];
    if (!o->file && b >= 0)
        o = &c->origin[b];
    if (!o->file)
        return "";
    snprintf(buf, n, "%s:%u: ", c->files[o->file - 1], (unsigned)o->line);
    return buf;
}

#define CFG_AT_MAX (PATH_MAX + 16)

/* Check a dims key (ici.dims, pod.dims): 1 to 3 axes, each in [1, 2^20]; says which. */
static int cfg_check_dims(const cfg *c, int id, const char *s, unsigned d[3], int *naxes, err *e)
{
    *naxes = cfg_parse_dims(s, d);
    if (*naxes >= 0)
        return 0;
    char at[CFG_AT_MAX];
    const char *where = cfg_at(c, id, -1, at, sizeof at), *name = cfg_table[id].name;
    int axes = 0;
    for (const char *p = s;; p++) {
        const char *q = p;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q == p || (*q && *q != 'x'))
            break; /* not digits then 'x' or the end: a syntax error, below */
        axes++;
        /* the digits alone: a length that is 0 or above 2^20 */
        int zeros = 1, big = q - p > 7;
        unsigned long v = 0;
        for (const char *r = p; r < q; r++) {
            zeros &= *r == '0';
            if (!big)
                v = v * 10 + (unsigned long)(*r - '0');
        }
        if (zeros || big || v > 1u << 20)
            return err_set(e, "%skey '%s': axis length %.*s not in [1, %u] (in '%s')", where, name,
                           (int)(q - p), p, 1u << 20, s);
        if (!*q) {
            if (axes > 3)
                return err_set(e, "%skey '%s': '%s' has %d axes, expected 1 to 3", where, name, s,
                               axes);
            break;
        }
        p = q;
    }
    return err_set(e, "%skey '%s': expected 1 to 3 axes such as 8, 16x16 or 4x4x4, got '%s'", where,
                   name, s);
}

int cfg_check(const cfg *c, err *e)
{
    char at[CFG_AT_MAX];
    int any = 0;
    for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++)
        any |= cfg_mxu_rate(c, (isa_dtype)dt) > 0;
    if (!any)
        return err_set(e,
                       "%skeys 'mxu.rate_*': every MXU datatype rate is 0; at least one must "
                       "be > 0",
                       cfg_at(c, CFG_K_mxu_rate_bf16, CFG_K_mxu_rate_fp32, at, sizeof at));

    unsigned idims[3], pdims[3];
    int iaxes, paxes;
    if (cfg_check_dims(c, CFG_K_ici_dims, c->ici_dims, idims, &iaxes, e) ||
        cfg_check_dims(c, CFG_K_pod_dims, c->pod_dims, pdims, &paxes, e))
        return -1;
    uint64_t pod = (uint64_t)pdims[0] * pdims[1] * pdims[2];
    if (pod != c->pod_chips)
        return err_set(e,
                       "%skeys 'pod.dims' and 'pod.chips': %s has %llu chips but pod.chips is %llu",
                       cfg_at(c, CFG_K_pod_chips, CFG_K_pod_dims, at, sizeof at), c->pod_dims,
                       (unsigned long long)pod, (unsigned long long)c->pod_chips);
    for (const char *p = c->ici_wrap; *p; p++) {
        const char *axis = strchr("xyz", *p);
        const char *where = cfg_at(c, CFG_K_ici_wrap, CFG_K_ici_dims, at, sizeof at);
        if (!axis)
            return err_set(e,
                           "%skey 'ici.wrap': '%c' is not an axis (expected letters from xyz), "
                           "got '%s'",
                           where, *p, c->ici_wrap);
        if (axis - "xyz" >= iaxes)
            return err_set(e, "%skey 'ici.wrap': axis '%c' does not exist in ici.dims '%s'", where,
                           *p, c->ici_dims);
        if (strchr(p + 1, *p))
            return err_set(e, "%skey 'ici.wrap': axis '%c' given twice in '%s'", where, *p,
                           c->ici_wrap);
    }
    /* Each axis longer than 1 takes two ports of a chip (docs/models-ici.md). */
    unsigned used = 0;
    for (int a = 0; a < iaxes; a++)
        used += idims[a] > 1;
    if (2 * used > c->ici_links_per_chip)
        return err_set(e,
                       "%skey 'ici.links_per_chip': %llu, but ici.dims '%s' needs %u (2 per axis "
                       "longer than 1)",
                       cfg_at(c, CFG_K_ici_links_per_chip, CFG_K_ici_dims, at, sizeof at),
                       (unsigned long long)c->ici_links_per_chip, c->ici_dims, 2 * used);

    if (c->hbm_channels % cfg_devices_per_chip(c))
        return err_set(e,
                       "%skey 'hbm.channels': %llu channels do not split evenly over the %llu "
                       "devices of a chip (chip.megacore: false, chip.cores: %llu)",
                       cfg_at(c, CFG_K_hbm_channels, CFG_K_chip_megacore, at, sizeof at),
                       (unsigned long long)c->hbm_channels,
                       (unsigned long long)cfg_devices_per_chip(c),
                       (unsigned long long)c->chip_cores);
    if (c->hbm_bus_bits % 8)
        return err_set(e, "%skey 'hbm.bus_bits': %llu is not a whole number of bytes",
                       cfg_at(c, CFG_K_hbm_bus_bits, -1, at, sizeof at),
                       (unsigned long long)c->hbm_bus_bits);
    uint64_t access = c->hbm_bus_bits / 8 * c->hbm_burst_length;
    if (!cfg_pow2(c->hbm_interleave_bytes))
        return err_set(e, "%skey 'hbm.interleave_bytes': %llu is not a power of two",
                       cfg_at(c, CFG_K_hbm_interleave_bytes, -1, at, sizeof at),
                       (unsigned long long)c->hbm_interleave_bytes);
    if (c->hbm_interleave_bytes % access)
        return err_set(e,
                       "%skey 'hbm.interleave_bytes': %llu is not a multiple of the minimum access "
                       "%llu bytes (hbm.bus_bits/8 x hbm.burst_length)",
                       cfg_at(c, CFG_K_hbm_interleave_bytes, CFG_K_hbm_burst_length, at, sizeof at),
                       (unsigned long long)c->hbm_interleave_bytes, (unsigned long long)access);
    if (!cfg_pow2(c->hbm_row_bytes))
        return err_set(e, "%skey 'hbm.row_bytes': %llu is not a power of two",
                       cfg_at(c, CFG_K_hbm_row_bytes, -1, at, sizeof at),
                       (unsigned long long)c->hbm_row_bytes);
    /* A refresh blocks a pseudo-channel for tRFC once every tREFI: with tREFI <= tRFC the
     * banks would never be free again, and the banked model runs away (a 16^3 GEMM took
     * 1.7e7 simulated seconds). */
    if (c->hbm_trefi_ns <= c->hbm_trfc_ns)
        return err_set(e,
                       "%skey 'hbm.tREFI_ns': %g ns is not above hbm.tRFC_ns (%g ns): refresh "
                       "would leave no time between refreshes",
                       cfg_at(c, CFG_K_hbm_trefi_ns, CFG_K_hbm_trfc_ns, at, sizeof at),
                       c->hbm_trefi_ns, c->hbm_trfc_ns);
    return 0;
}

/* ---- output ---- */

/* Text of key k's value in c, in a form cfg_parse_value reads back exactly. */
static void cfg_fmt_value(const cfg *c, const cfg_key *k, char *buf, size_t n)
{
    const void *field = (const char *)c + k->offset;
    switch (k->type) {
    case CFG_T_INT:
        cfg_fmt_int(buf, n, *(const uint64_t *)field, cfg_is_bytes(k));
        return;
    case CFG_T_DBL:
        cfg_fmt_dbl(buf, n, *(const double *)field);
        return;
    case CFG_T_BOOL:
        snprintf(buf, n, "%s", *(const int *)field ? "true" : "false");
        return;
    case CFG_T_ENUM:
        cfg_choice_name(k->choices, *(const int *)field, buf, n);
        return;
    case CFG_T_STR: {
        /* Always double-quoted so any text (": ", "#", leading spaces) survives. */
        const unsigned char *s = field;
        size_t o = 0;
        buf[o++] = '"';
        for (size_t i = 0; i < CFG_STR_MAX && s[i] && o + 6 < n; i++) {
            if (s[i] == '"' || s[i] == '\\')
                o += (size_t)snprintf(buf + o, n - o, "\\%c", s[i]);
            else if (s[i] < 0x20 || s[i] == 0x7f)
                o += (size_t)snprintf(buf + o, n - o, "\\x%02x", s[i]);
            else
                buf[o++] = (char)s[i];
        }
        buf[o++] = '"';
        buf[o] = 0;
        return;
    }
    }
}

void cfg_format_value(const cfg *c, const cfg_key *k, char *buf, size_t n)
{
    if (k->type == CFG_T_STR)
        snprintf(buf, n, "%.*s", CFG_STR_MAX, (const char *)c + k->offset);
    else
        cfg_fmt_value(c, k, buf, n);
}

static size_t cfg_prefix_len(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot ? (size_t)(dot - name) : 0;
}

void cfg_dump(const cfg *c, FILE *out)
{
    fprintf(out, "# tpusim configuration (resolved from ");
    if (c->source[0]) {
        for (const char *p = c->source; *p; p++)
            fputc((unsigned char)*p < 0x20 ? '?' : *p, out);
    } else {
        fputs("defaults", out);
    }
    fprintf(out, "); load it with -c\n");
    /* Group by the prefix before the first dot, groups in order of first appearance. */
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const cfg_key *gk = &cfg_table[i];
        size_t plen = cfg_prefix_len(gk->name);
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = cfg_prefix_len(cfg_table[j].name) == plen &&
                   !strncmp(cfg_table[j].name, gk->name, plen);
        if (seen)
            continue;
        if (plen)
            fprintf(out, "%.*s:\n", (int)plen, gk->name);
        for (size_t j = i; j < CFG_NKEYS; j++) {
            const cfg_key *k = &cfg_table[j];
            if (cfg_prefix_len(k->name) != plen || strncmp(k->name, gk->name, plen))
                continue;
            char val[4 * CFG_STR_MAX + 8], line[4 * CFG_STR_MAX + CFG_NAME_MAX + 16];
            cfg_fmt_value(c, k, val, sizeof val);
            snprintf(line, sizeof line, "%s%s: %s", plen ? "  " : "",
                     k->name + (plen ? plen + 1 : 0), val);
            fprintf(out, "%-36s # %s%s%s\n", line, k->unit, *k->unit ? "; " : "", k->help);
        }
    }
}

void cfg_help(FILE *out)
{
    fprintf(out, "%-26s %-5s %-12s %-24s %s\n", "KEY", "TYPE", "UNIT", "RANGE / CHOICES",
            "DEFAULT");
    static const char *tnames[] = {"int", "float", "bool", "enum", "str"};
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const cfg_key *k = &cfg_table[i];
        char range[96], lo[32], hi[32];
        switch (k->type) {
        case CFG_T_INT:
        case CFG_T_DBL:
            cfg_fmt_bound(lo, sizeof lo, k, k->min);
            cfg_fmt_bound(hi, sizeof hi, k, k->max);
            snprintf(range, sizeof range, "[%s, %s]", lo, hi);
            break;
        case CFG_T_BOOL:
            snprintf(range, sizeof range, "true|false");
            break;
        case CFG_T_ENUM:
            snprintf(range, sizeof range, "%s", k->choices);
            break;
        case CFG_T_STR:
            snprintf(range, sizeof range, "text, < %d chars", CFG_STR_MAX);
            break;
        }
        fprintf(out, "%-26s %-5s %-12s %-24s %s\n    %s\n", k->name, tnames[k->type],
                *k->unit ? k->unit : "-", range, k->def, k->help);
    }
}

/* ---- derived figures ---- */

double cfg_cycle_ps(const cfg *c)
{
    return 1000.0 / c->chip_clock_ghz;
}

double cfg_mxu_rate(const cfg *c, isa_dtype dt)
{
    switch (dt) {
    case ISA_DT_BF16:
        return c->mxu_rate_bf16;
    case ISA_DT_INT8:
        return c->mxu_rate_int8;
    case ISA_DT_FP8:
        return c->mxu_rate_fp8;
    case ISA_DT_FP32:
        return c->mxu_rate_fp32;
    case ISA_DT_INT4:
        return c->mxu_rate_int4;
    default:
        return 0;
    }
}

unsigned cfg_devices_per_chip(const cfg *c)
{
    return c->chip_megacore ? 1u : (unsigned)c->chip_cores;
}

unsigned cfg_device_cores(const cfg *c)
{
    return c->chip_megacore ? (unsigned)c->chip_cores : 1u;
}

/* Every cell does one multiply-add (2 ops) per streamed row. */
double cfg_peak_flops(const cfg *c, isa_dtype dt)
{
    return (double)cfg_device_cores(c) * (double)c->mxu_count * (double)c->mxu_rows *
           (double)c->mxu_cols * 2.0 * c->chip_clock_ghz * 1e9 * cfg_mxu_rate(c, dt);
}

double cfg_chip_peak_flops(const cfg *c, isa_dtype dt)
{
    return (double)cfg_devices_per_chip(c) * cfg_peak_flops(c, dt);
}

/* Split devices each own 1/devices of the channels (cfg_check: they divide evenly): when
 * both run the same SPMD program each sees half the chip's bandwidth, whichever way the
 * stacks are wired to the cores. */
uint64_t cfg_hbm_channels(const cfg *c)
{
    return c->hbm_channels / cfg_devices_per_chip(c);
}

uint64_t cfg_hbm_bytes(const cfg *c)
{
    return c->hbm_bytes / cfg_devices_per_chip(c);
}

double cfg_hbm_peak_bps(const cfg *c)
{
    return (double)cfg_hbm_channels(c) * (double)c->hbm_pseudo_channels * (double)c->hbm_bus_bits /
           8.0 * c->hbm_gbps_per_pin * 1e9;
}

double cfg_static_w(const cfg *c)
{
    return c->energy_static_w / cfg_devices_per_chip(c);
}

/* A chip's devices send over the same links; when they run the same SPMD program each gets
 * an equal share of every link direction, whether the chiplets own the ports or share them
 * (docs/models-ici.md, "Devices"). */
double cfg_ici_link_bps(const cfg *c)
{
    return c->ici_link_gbs * 1e9 / cfg_devices_per_chip(c);
}

/* The chip's DCN share (dcn.gbs) is split the same way among its devices. */
double cfg_dcn_bps(const cfg *c)
{
    return c->dcn_gbs * 1e9 / cfg_devices_per_chip(c);
}

double cfg_tdp_w(const cfg *c)
{
    return c->chip_tdp_w / cfg_devices_per_chip(c);
}

double cfg_vmem_total_bytes(const cfg *c)
{
    return (double)cfg_device_cores(c) * (double)c->vmem_bytes;
}

unsigned cfg_mxu_total(const cfg *c)
{
    return (unsigned)(cfg_device_cores(c) * c->mxu_count);
}

int cfg_parse_dims(const char *s, unsigned dims[3])
{
    unsigned d[3] = {1, 1, 1};
    int n = 0;
    const char *p = s;
    if (!s)
        return -1;
    for (;;) {
        if (n == 3 || *p < '0' || *p > '9')
            return -1;
        unsigned long v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (unsigned long)(*p++ - '0');
            if (v > 1u << 20)
                return -1;
        }
        if (v == 0)
            return -1;
        d[n++] = (unsigned)v;
        if (!*p)
            break;
        if (*p++ != 'x')
            return -1;
    }
    memcpy(dims, d, sizeof d);
    return n;
}

uint64_t cfg_axes_chips(const cfg *c, unsigned mask)
{
    unsigned d[3];
    int n = cfg_parse_dims(c->ici_dims, d);
    uint64_t p = 1;
    for (int i = 0; i < n; i++)
        if (mask & (1u << i))
            p *= d[i];
    return p;
}
