/* models.c - model presets: one flat YAML mapping per file (configs/models/NAME.yaml) whose
 * keys are gen flags (layers, d-model, ...) or informational (name, aliases, family, source,
 * params, active-params). One key table drives parsing, value checks and the parameter
 * count; the files are found along the machine presets' search path (cfg_preset_dir). */
#include "models.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "yamlin.h"
#include "mem.h"

/* How a key's value is read. INFO_* keys are not flags; the others become model_flag. */
typedef enum model_vtype {
    MV_NAME,   /* informational word: [a-z0-9._-], stored at `off` in model_preset */
    MV_TEXT,   /* informational free text, stored at `off` in model_preset */
    MV_LIST,   /* informational list of names (aliases) */
    MV_NUMBER, /* informational positive decimal (billions), double at `off` in model_preset */
    MV_INT,    /* flag: positive integer, uint64_t at `off` in model_dims */
    MV_BOOL,   /* flag: true or false, int at `off` in model_dims */
    MV_MLP,    /* flag: swiglu or gelu, model_dims.gated */
} model_vtype;

typedef struct model_key {
    const char *name;
    model_vtype type;
    size_t off;
    int required;
} model_key;

#define P(f) offsetof(model_preset, f)
#define D(f) offsetof(model_dims, f)

static const model_key model_keys[] = {
    {"name", MV_NAME, P(name), 1},
    {"aliases", MV_LIST, 0, 0},
    {"family", MV_NAME, P(family), 0},
    {"source", MV_TEXT, P(source), 0},
    {"params", MV_NUMBER, P(published_params), 0},
    {"active-params", MV_NUMBER, P(published_active), 0},
    {"layers", MV_INT, D(layers), 1},
    {"d-model", MV_INT, D(d_model), 1},
    {"heads", MV_INT, D(heads), 1},
    {"kv-heads", MV_INT, D(kv_heads), 0},
    {"head-dim", MV_INT, D(head_dim), 0},
    {"d-ff", MV_INT, D(d_ff), 1},
    {"vocab", MV_INT, D(vocab), 1},
    {"seq", MV_INT, D(seq), 0},
    {"mlp", MV_MLP, D(gated), 0},
    {"parallel-block", MV_BOOL, D(parallel_block), 0},
    {"tied-embedding", MV_BOOL, D(tied_embedding), 0},
    {"experts", MV_INT, D(experts), 0},
    {"top-k", MV_INT, D(top_k), 0},
    {"moe-every", MV_INT, D(moe_every), 0},
    {"expert-d-ff", MV_INT, D(expert_d_ff), 0},
    {"shared-experts", MV_INT, D(shared_experts), 0},
    {"first-dense", MV_INT, D(first_dense), 0},
};

#undef P
#undef D

#define MODEL_NKEYS (sizeof model_keys / sizeof model_keys[0])

static const model_key *model_key_find(const char *name)
{
    for (size_t i = 0; i < MODEL_NKEYS; i++)
        if (!strcmp(model_keys[i].name, name))
            return &model_keys[i];
    return NULL;
}

/* ---- one file ------------------------------------------------------------------------------ */

typedef struct model_parse {
    yin y; /* the file's parser; y.path names it in messages, y.e takes its errors */
    model_preset *m;
    unsigned line[MODEL_NKEYS]; /* where each key was set, 0 = not set */
} model_parse;

static int model_is_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && !strchr("._-", *s))
            return 0;
    return 1;
}

/* A name or alias into dst (cap MODEL_NAME_MAX). */
static int model_set_name(model_parse *p, char *dst, const char *key, const char *v, unsigned line)
{
    if (!model_is_name(v))
        return err_set(p->y.e,
                       "%s:%u: key '%s': '%s' is not a name (lower-case letters, digits, '.', "
                       "'_', '-')",
                       p->y.path, line, key, v);
    if (strlen(v) >= MODEL_NAME_MAX)
        return err_set(p->y.e, "%s:%u: key '%s': '%s' is longer than %d characters", p->y.path,
                       line, key, v, MODEL_NAME_MAX - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* The aliases sequence, whose start event was just read. */
static int model_aliases(model_parse *p)
{
    for (;;) {
        yaml_event_t ev;
        int more = yin_next_in(&p->y, &ev, YAML_SEQUENCE_END_EVENT);
        if (more <= 0)
            return more;
        unsigned l = yin_line(&ev);
        int rc = 0;
        if (ev.type != YAML_SCALAR_EVENT)
            rc = err_set(p->y.e, "%s:%u: key 'aliases': expected a list of names", p->y.path, l);
        else if (p->m->naliases == MODEL_ALIASES_MAX)
            rc = err_set(p->y.e, "%s:%u: key 'aliases': more than %d aliases", p->y.path, l,
                         MODEL_ALIASES_MAX);
        else
            rc = model_set_name(p, p->m->aliases[p->m->naliases++], "aliases",
                                (const char *)ev.data.scalar.value, l);
        yaml_event_delete(&ev);
        if (rc)
            return rc;
    }
}

static int model_parse_int(const char *v, uint64_t *out)
{
    if (!isdigit((unsigned char)v[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || errno == ERANGE || x == 0)
        return -1;
    *out = x;
    return 0;
}

/* A scalar value of key k (set on `line`) into m, and into its flags when k is a flag. */
static int model_scalar(model_parse *p, const model_key *k, const char *v, unsigned line)
{
    model_preset *m = p->m;
    char *pbase = (char *)m, *dbase = (char *)&m->dims;
    const char *norm = v; /* the flag's value text */
    switch (k->type) {
    case MV_NAME:
        return model_set_name(p, pbase + k->off, k->name, v, line);
    case MV_TEXT:
        if (strlen(v) >= MODEL_SOURCE_MAX)
            return err_set(p->y.e, "%s:%u: key '%s': longer than %d characters", p->y.path, line,
                           k->name, MODEL_SOURCE_MAX - 1);
        memcpy(pbase + k->off, v, strlen(v) + 1);
        return 0;
    case MV_LIST:
        /* One alias written as a scalar. */
        if (m->naliases == MODEL_ALIASES_MAX)
            return err_set(p->y.e, "%s:%u: key 'aliases': more than %d aliases", p->y.path, line,
                           MODEL_ALIASES_MAX);
        return model_set_name(p, m->aliases[m->naliases++], k->name, v, line);
    case MV_NUMBER: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (end == v || *end || errno == ERANGE || !(x > 0))
            return err_set(p->y.e, "%s:%u: key '%s': '%s' is not a positive number (billions)",
                           p->y.path, line, k->name, v);
        *(double *)(void *)(pbase + k->off) = x;
        return 0;
    }
    case MV_INT:
        if (model_parse_int(v, (uint64_t *)(void *)(dbase + k->off)))
            return err_set(p->y.e, "%s:%u: key '%s': '%s' is not a positive integer", p->y.path,
                           line, k->name, v);
        break;
    case MV_BOOL:
        if (!strcmp(v, "true"))
            *(int *)(void *)(dbase + k->off) = 1;
        else if (!strcmp(v, "false"))
            *(int *)(void *)(dbase + k->off) = 0;
        else
            return err_set(p->y.e, "%s:%u: key '%s': '%s' is not true or false", p->y.path, line,
                           k->name, v);
        break;
    case MV_MLP:
        if (strcmp(v, "swiglu") && strcmp(v, "gelu"))
            return err_set(p->y.e, "%s:%u: key 'mlp': '%s' is not swiglu or gelu", p->y.path, line,
                           v);
        m->dims.gated = !strcmp(v, "swiglu");
        break;
    }
    if (strlen(norm) >= sizeof m->flags[0].value)
        return err_set(p->y.e, "%s:%u: key '%s': value '%s' too long", p->y.path, line, k->name, v);
    /* MODEL_FLAGS_MAX exceeds the number of flag keys, and keys are unique. */
    model_flag *f = &m->flags[m->nflags++];
    snprintf(f->key, sizeof f->key, "%s", k->name);
    snprintf(f->value, sizeof f->value, "%s", norm);
    f->line = line;
    return 0;
}

/* One key and its value; the key event is `kev`. */
static int model_pair(model_parse *p, const yaml_event_t *kev)
{
    unsigned line = yin_line(kev);
    if (kev->type != YAML_SCALAR_EVENT)
        return err_set(p->y.e, "%s:%u: expected a key name", p->y.path, line);
    const char *name = (const char *)kev->data.scalar.value;
    const model_key *k = model_key_find(name);
    if (!k) {
        char known[512];
        size_t len = 0;
        known[0] = 0;
        for (size_t i = 0; i < MODEL_NKEYS && len < sizeof known; i++)
            len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? " " : "",
                                    model_keys[i].name);
        return err_set(p->y.e, "%s:%u: unknown key '%s' (known: %s)", p->y.path, line, name, known);
    }
    size_t idx = (size_t)(k - model_keys);
    if (p->line[idx])
        return err_set(p->y.e, "%s:%u: duplicate key '%s' (first set on line %u)", p->y.path, line,
                       name, p->line[idx]);
    p->line[idx] = line;
    yaml_event_t vev;
    if (yin_next(&p->y, &vev))
        return -1;
    int rc;
    unsigned vline = yin_line(&vev);
    if (vev.type == YAML_SEQUENCE_START_EVENT && k->type == MV_LIST)
        rc = model_aliases(p);
    else if (vev.type != YAML_SCALAR_EVENT)
        rc = err_set(p->y.e, "%s:%u: key '%s': expected a %s", p->y.path, vline, name,
                     k->type == MV_LIST ? "list of names" : "scalar value");
    else
        rc = model_scalar(p, k, (const char *)vev.data.scalar.value, vline);
    yaml_event_delete(&vev);
    return rc;
}

/* The file's mapping, flat (yin_document calls it at its start event). */
static int model_mapping(void *ctx)
{
    model_parse *p = ctx;
    for (;;) {
        yaml_event_t kev;
        int more = yin_next_in(&p->y, &kev, YAML_MAPPING_END_EVENT);
        if (more <= 0)
            return more;
        int rc = model_pair(p, &kev);
        yaml_event_delete(&kev);
        if (rc)
            return -1;
    }
}

/* The events of the file: one document holding one flat mapping. */
static int model_stream(model_parse *p)
{
    unsigned maps;
    if (yin_document(&p->y, model_mapping, p, &maps))
        return -1;
    if (!maps)
        return err_set(p->y.e, "%s: empty file (expected a mapping of keys)", p->y.path);
    return 0;
}

/* Cross-key checks once the whole file is read; errors point at the key's line. */
static int model_check(model_parse *p)
{
    const model_preset *m = p->m;
    const model_dims *d = &m->dims;
    for (size_t i = 0; i < MODEL_NKEYS; i++)
        if (model_keys[i].required && !p->line[i])
            return err_set(p->y.e, "%s: missing key '%s'", p->y.path, model_keys[i].name);
#define LINE(k) p->line[model_key_find(k) - model_keys]
    /* The name is the file name: `--model NAME` then finds NAME.yaml without a scan. */
    const char *base = strrchr(p->y.path, '/');
    base = base ? base + 1 : p->y.path;
    size_t blen = strlen(base);
    if (blen > 5 && !strcmp(base + blen - 5, ".yaml"))
        blen -= 5;
    if (strlen(m->name) != blen || strncmp(m->name, base, blen))
        return err_set(p->y.e, "%s:%u: name '%s' differs from the file name '%.*s'", p->y.path,
                       LINE("name"), m->name, (int)blen, base);
    uint64_t kv = d->kv_heads ? d->kv_heads : d->heads;
    if (d->kv_heads && (d->kv_heads > d->heads || d->heads % d->kv_heads))
        return err_set(p->y.e, "%s:%u: key 'kv-heads': %llu does not divide heads (%llu)",
                       p->y.path, LINE("kv-heads"), (unsigned long long)kv,
                       (unsigned long long)d->heads);
    if (!d->head_dim && d->d_model % d->heads)
        return err_set(
            p->y.e, "%s:%u: key 'heads': %llu does not divide d-model (%llu); give head-dim",
            p->y.path, LINE("heads"), (unsigned long long)d->heads, (unsigned long long)d->d_model);
    int moe = d->experts != 0;
    static const char *const moe_keys[] = {"top-k", "moe-every", "expert-d-ff", "shared-experts",
                                           "first-dense"};
    for (size_t i = 0; i < sizeof moe_keys / sizeof moe_keys[0]; i++)
        if (!moe && LINE(moe_keys[i]))
            return err_set(p->y.e, "%s:%u: key '%s' needs 'experts'", p->y.path, LINE(moe_keys[i]),
                           moe_keys[i]);
    if (moe && !d->top_k)
        return err_set(p->y.e, "%s:%u: key 'experts' needs 'top-k'", p->y.path, LINE("experts"));
    if (moe && d->top_k > d->experts)
        return err_set(p->y.e, "%s:%u: key 'top-k': %llu is more than experts (%llu)", p->y.path,
                       LINE("top-k"), (unsigned long long)d->top_k, (unsigned long long)d->experts);
    if (moe && d->first_dense >= d->layers)
        return err_set(p->y.e, "%s:%u: key 'first-dense': %llu leaves no MoE layer of %llu",
                       p->y.path, LINE("first-dense"), (unsigned long long)d->first_dense,
                       (unsigned long long)d->layers);
#undef LINE
    return 0;
}

int model_load_file(model_preset *m, const char *path, err *e)
{
    memset(m, 0, sizeof *m);
    if (strlen(path) >= sizeof m->path)
        return err_set(e, "%.64s...: path too long", path);
    memcpy(m->path, path, strlen(path) + 1);
    m->dims.gated = 1;        /* mlp: swiglu unless the file says gelu */
    model_parse p = {.m = m}; /* about 1 KB: the parser and key lines */
    if (yin_open(&p.y, path, e))
        return -1;
    int rc = model_stream(&p) || model_check(&p) ? -1 : 0;
    yin_close(&p.y);
    return rc;
}

/* ---- the search path ----------------------------------------------------------------------- */

/* The models/ folder of the i-th preset directory. */
static int model_dir(const char *presets_dir, unsigned i, char *out, size_t n)
{
    char dir[PATH_MAX];
    if (!cfg_preset_dir(presets_dir, i, dir, sizeof dir))
        return 0;
    if ((size_t)snprintf(out, n, "%s/models", dir) >= n)
        out[0] = 0;
    return 1;
}

static int model_cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The *.yaml file names of dir, sorted; *names is NULL-terminated, freed by the caller with
 * free() (one block). A missing directory has none. */
static int model_dir_files(const char *dir, char ***names, err *e)
{
    *names = NULL;
    DIR *d = *dir ? opendir(dir) : NULL;
    size_t n = 0, bytes = 0;
    struct dirent *de;
    if (d) {
        while ((de = readdir(d))) {
            size_t len = strlen(de->d_name);
            if (len > 5 && !strcmp(de->d_name + len - 5, ".yaml"))
                n++, bytes += len + 1;
        }
        rewinddir(d);
    }
    char **v = malloc((n + 1) * sizeof *v + bytes);
    if (!v) {
        if (d)
            closedir(d);
        return err_setk(e, ERR_NOMEM, "%s: out of memory", dir);
    }
    char *s = (char *)(v + n + 1);
    size_t k = 0;
    while (d && k < n && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len > 5 && !strcmp(de->d_name + len - 5, ".yaml")) {
            memcpy(s, de->d_name, len + 1);
            v[k++] = s;
            s += len + 1;
        }
    }
    v[k] = NULL;
    if (d)
        closedir(d);
    qsort(v, k, sizeof *v, model_cmp_name);
    *names = v;
    return 0;
}

/* Call fn on every preset of the search path in order (directories, then file names); stop
 * early when fn returns 1. A file that does not load is an error. */
typedef int (*model_visit)(const model_preset *m, void *ctx, err *e);

static int model_walk(const char *presets_dir, model_visit fn, void *ctx, err *e)
{
    char dir[PATH_MAX];
    model_preset *m = malloc(sizeof *m);
    if (!m)
        return err_setk(e, ERR_NOMEM, "model presets: out of memory");
    int rc = 0;
    for (unsigned i = 0; !rc && model_dir(presets_dir, i, dir, sizeof dir); i++) {
        char **names;
        if (model_dir_files(dir, &names, e)) {
            rc = -1;
            break;
        }
        for (char **f = names; !rc && *f; f++) {
            char path[PATH_MAX];
            if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, *f) >= sizeof path)
                continue;
            rc = model_load_file(m, path, e) ? -1 : fn(m, ctx, e);
        }
        free(names);
    }
    free(m);
    return rc < 0 ? -1 : 0;
}

/* ---- find ---------------------------------------------------------------------------------- */

static int model_matches(const model_preset *m, const char *name)
{
    if (!strcasecmp(m->name, name))
        return 1;
    for (unsigned i = 0; i < m->naliases; i++)
        if (!strcasecmp(m->aliases[i], name))
            return 1;
    return 0;
}

/* Edit distance between a and b (case-insensitive), capped at 99. */
static unsigned model_distance(const char *a, const char *b)
{
    unsigned d = isa_edit_distance(a, b, 1);
    return d < 99 ? d : 99;
}

#define MODEL_CLOSE_MAX 5

typedef struct model_search {
    const char *name;
    model_preset *out;
    int found;
    /* The closest names so far, for the error. */
    char close[MODEL_CLOSE_MAX][MODEL_NAME_MAX];
    unsigned dist[MODEL_CLOSE_MAX], nclose;
    char all[ERR_MSG_MAX / 2];
    size_t all_len;
} model_search;

/* Keep m among the closest presets by its name's or an alias's distance (shown by name). */
static void model_note_close(model_search *s, const model_preset *m)
{
    const char *cand = m->name;
    unsigned d = model_distance(s->name, m->name);
    for (unsigned i = 0; i < m->naliases; i++) {
        unsigned da = model_distance(s->name, m->aliases[i]);
        d = da < d ? da : d;
    }
    size_t ln = strlen(s->name);
    /* Close: within a third of the name's length (at least 2 edits). */
    if (d > (ln / 3 > 2 ? ln / 3 : 2))
        return;
    for (unsigned i = 0; i < s->nclose; i++)
        if (!strcmp(s->close[i], cand))
            return;
    unsigned pos = s->nclose;
    while (pos > 0 && s->dist[pos - 1] > d)
        pos--;
    if (pos == MODEL_CLOSE_MAX)
        return;
    unsigned last = s->nclose < MODEL_CLOSE_MAX ? s->nclose : MODEL_CLOSE_MAX - 1;
    for (unsigned i = last; i > pos; i--) {
        memcpy(s->close[i], s->close[i - 1], MODEL_NAME_MAX);
        s->dist[i] = s->dist[i - 1];
    }
    snprintf(s->close[pos], MODEL_NAME_MAX, "%s", cand);
    s->dist[pos] = d;
    if (s->nclose < MODEL_CLOSE_MAX)
        s->nclose++;
}

static int model_visit_find(const model_preset *m, void *ctx, err *e)
{
    (void)e;
    model_search *s = ctx;
    if (model_matches(m, s->name)) {
        *s->out = *m;
        s->found = 1;
        return 1;
    }
    model_note_close(s, m);
    if (s->all_len < sizeof s->all)
        s->all_len += (size_t)snprintf(s->all + s->all_len, sizeof s->all - s->all_len, "%s%s",
                                       s->all_len ? ", " : "", m->name);
    return 0;
}

int model_find(model_preset *m, const char *name, const char *presets_dir, err *e)
{
    if (!*name)
        return err_set(e, "--model: empty model name");
    /* A path: the file itself. */
    if (strchr(name, '/') || access(name, R_OK) == 0)
        return model_load_file(m, name, e);
    /* NAME.yaml in the first directory that has it. */
    char dir[PATH_MAX], path[PATH_MAX];
    for (unsigned i = 0; model_dir(presets_dir, i, dir, sizeof dir); i++) {
        if (!*dir || (size_t)snprintf(path, sizeof path, "%s/%s.yaml", dir, name) >= sizeof path)
            continue;
        if (access(path, R_OK) == 0)
            return model_load_file(m, path, e);
    }
    /* Otherwise a name in another case, or an alias. */
    model_search *s = calloc(1, sizeof *s);
    if (!s)
        return err_setk(e, ERR_NOMEM, "--model: out of memory");
    s->name = name;
    s->out = m;
    int rc = model_walk(presets_dir, model_visit_find, s, e);
    if (!rc && !s->found) {
        char close[MODEL_CLOSE_MAX * (MODEL_NAME_MAX + 2)] = "";
        size_t len = 0;
        for (unsigned i = 0; i < s->nclose; i++)
            len += (size_t)snprintf(close + len, sizeof close - len, "%s%s", i ? ", " : "",
                                    s->close[i]);
        if (s->nclose)
            rc = err_set(e,
                         "--model: unknown model '%s' (did you mean %s? 'tpusim gen "
                         "--list-models' lists them)",
                         name, close);
        else if (s->all_len)
            rc = err_set(e, "--model: unknown model '%s' (known: %s)", name, s->all);
        else
            rc = err_set(e,
                         "--model: unknown model '%s': no model presets found (the models/ "
                         "folder of $TPUSIM_PRESETS, ./configs, BINDIR/../share/tpusim/configs, "
                         "%s)",
                         name, "the install directory");
    }
    free(s);
    return rc;
}

/* ---- list ---------------------------------------------------------------------------------- */

typedef struct model_collect {
    model_preset *v;
    unsigned n;
    size_t cap;
} model_collect;

static int model_visit_collect(const model_preset *m, void *ctx, err *e)
{
    model_collect *c = ctx;
    for (unsigned i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].name, m->name))
            return 0; /* hidden by an earlier directory */
    if (mem_grow(&c->v, &c->cap, (size_t)c->n + 1, sizeof *c->v, 16))
        return err_setk(e, ERR_NOMEM, "model presets: out of memory");
    c->v[c->n++] = *m;
    return 0;
}

static int model_cmp_preset(const void *a, const void *b)
{
    return strcmp(((const model_preset *)a)->name, ((const model_preset *)b)->name);
}

int model_list(const char *presets_dir, model_preset **out, unsigned *n, err *e)
{
    model_collect c = {0};
    *out = NULL;
    *n = 0;
    if (model_walk(presets_dir, model_visit_collect, &c, e)) {
        free(c.v);
        return -1;
    }
    if (c.n)
        qsort(c.v, c.n, sizeof *c.v, model_cmp_preset);
    *out = c.v;
    *n = c.n;
    return 0;
}

/* ---- parameter count ----------------------------------------------------------------------- */

void model_params(const model_preset *m, double *total, double *active)
{
    const model_dims *d = &m->dims;
    double dm = (double)d->d_model, heads = (double)d->heads;
    double hd = d->head_dim ? (double)d->head_dim : dm / heads;
    double kv = d->kv_heads ? (double)d->kv_heads : heads;
    double attn = dm * heads * hd + 2 * dm * kv * hd + heads * hd * dm;
    double per_mlp = (d->gated ? 3.0 : 2.0) * dm;
    double norms = (d->parallel_block ? 1.0 : 2.0) * dm;
    double dense = attn + per_mlp * (double)d->d_ff + norms;
    double layers = (double)d->layers, moe_layers = 0, moe = 0, moe_active = 0;
    if (d->experts) {
        uint64_t every = d->moe_every ? d->moe_every : 1;
        moe_layers = (double)((d->layers - d->first_dense) / every);
        double ff = (double)(d->expert_d_ff ? d->expert_d_ff : d->d_ff);
        double router = dm * (double)d->experts, shared = (double)d->shared_experts;
        moe = attn + ((double)d->experts + shared) * per_mlp * ff + router + norms;
        moe_active = attn + ((double)d->top_k + shared) * per_mlp * ff + router + norms;
    }
    double embed = (double)d->vocab * dm * (d->tied_embedding ? 1.0 : 2.0) + dm;
    *total = embed + (layers - moe_layers) * dense + moe_layers * moe;
    *active = embed + (layers - moe_layers) * dense + moe_layers * moe_active;
}

model_preset *model_find_new(const char *name, const char *presets_dir, const char *who, err *e)
{
    model_preset *m = err_calloc(1, sizeof *m, who, e);
    if (m && model_find(m, name, presets_dir, e)) {
        free(m);
        return NULL;
    }
    return m;
}
