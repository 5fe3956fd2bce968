/* api.c - the C API of libtpusim.so (api.h): each call drives the same code as the matching
 * CLI subcommand, writes its JSON document into a private temporary directory (the writers
 * take a path and replace it atomically) and hands the text back as one malloc'd string. */
#include "api.h"

#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "json.h"
#include "run.h"
#include "sim.h"

#ifndef TPUSIM_VERSION
#define TPUSIM_VERSION "0.0.0"
#endif

/* Longest argv a binding may pass to gen or pod (options and their values). */
#define API_MAX_ARGS 512

/* A private directory for one call's output file: DIR/out.json. */
typedef struct api_tmp {
    char dir[512];
    char path[544];
} api_tmp;

int tpusim_api_version(void)
{
    return TPUSIM_API_VERSION;
}

const char *tpusim_api_release(void)
{
    return TPUSIM_VERSION;
}

void tpusim_api_free(char *p)
{
    free(p);
}

/* The installed presets beside the library, LIBDIR/../share/tpusim/configs, as the tpusim
 * binary finds BINDIR/../share/tpusim/configs (the engine's search looks beside the running
 * executable, which for a binding is python). Empty when unknown. */
static void api_presets_dir(char *dir, size_t n)
{
    Dl_info info;
    dir[0] = 0;
    if (!dladdr((void *)tpusim_api_version, &info) || !info.dli_fname)
        return;
    const char *slash = strrchr(info.dli_fname, '/');
    if (slash)
        snprintf(dir, n, "%.*s/../share/tpusim/configs", (int)(slash - info.dli_fname),
                 info.dli_fname);
}

/* A config argument as the engine should see it: a bare preset name (no such file here) with
 * TPUSIM_PRESETS unset becomes the installed preset beside the library when that exists;
 * anything else is passed on unchanged (the engine's own search and messages apply). */
static const char *api_config_arg(const char *config, char *buf, size_t n)
{
    char dir[512];
    if (!config || !*config || strchr(config, '/') || getenv("TPUSIM_PRESETS") ||
        access(config, R_OK) == 0)
        return config;
    api_presets_dir(dir, sizeof dir);
    if (!dir[0] || (size_t)snprintf(buf, n, "%s/%s.yaml", dir, config) >= n ||
        access(buf, R_OK) != 0)
        return config;
    return buf;
}

/* Copy e's message into errbuf and map its kind to a return code. */
static int api_fail(const err *e, char *errbuf, size_t errlen)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s", e->msg[0] ? e->msg : "unknown error");
    return (int)e->kind + 1;
}

static int api_tmp_new(api_tmp *t, err *e)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(t->dir, sizeof t->dir, "%s/tpusim-api-XXXXXX", base);
    if (!mkdtemp(t->dir))
        return err_set(e, "%s: cannot create a temporary directory: %s", base, strerror(errno));
    snprintf(t->path, sizeof t->path, "%s/out.json", t->dir);
    return 0;
}

/* Remove the output file (and a writer's leftover .tmp) and the directory. */
static void api_tmp_free(api_tmp *t)
{
    char tmp[560];
    snprintf(tmp, sizeof tmp, "%s.tmp", t->path);
    unlink(tmp);
    unlink(t->path);
    rmdir(t->dir);
}

/* The whole file at path as a malloc'd string (caller frees). */
static char *api_slurp(const char *path, err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(e, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    long n = -1;
    if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET))
        buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        if (n < 0)
            err_set(e, "%s: cannot read: %s", path, strerror(errno));
        else
            err_setk(e, ERR_NOMEM, "out of memory reading %s", path);
        return NULL;
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(buf);
        err_set(e, "%s: short read", path);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

int tpusim_api_run(const char *config, const char *const *overrides, unsigned noverrides,
                   const char *trace, char **out_json, char *errbuf, size_t errlen)
{
    err e = {{0}, ERR_INPUT};
    api_tmp t;
    run r;
    *out_json = NULL;
    if (!trace) {
        err_set(&e, "run: expected a TRACE path");
        return api_fail(&e, errbuf, errlen);
    }
    if (api_tmp_new(&t, &e))
        return api_fail(&e, errbuf, errlen);
    char cbuf[1024];
    config = api_config_arg(config, cbuf, sizeof cbuf);
    int rc = run_trace(&r, config, (const char **)overrides, noverrides, trace, NULL, &e);
    if (!rc)
        rc = report_json(&r.rep, t.path, &e);
    if (!rc && !(*out_json = api_slurp(t.path, &e)))
        rc = -1;
    run_fini(&r);
    api_tmp_free(&t);
    return rc ? api_fail(&e, errbuf, errlen) : 0;
}

/* argv = {cmd, extra..., user argv...} into a caller-owned array of at most API_MAX_ARGS; the
 * value of "-c"/"--config" goes through api_config_arg (into cbuf). */
static int api_argv(char **out, const char *cmd, const char *const *extra, int nextra, int argc,
                    const char *const *argv, char *cbuf, size_t cn, err *e)
{
    if (argc < 0 || (argc && !argv) || argc + nextra + 3 > API_MAX_ARGS)
        return err_set(e, "%s: expected 0 to %d arguments", cmd, API_MAX_ARGS - nextra - 3);
    int n = 0;
    out[n++] = (char *)cmd;
    for (int i = 0; i < nextra; i++)
        out[n++] = (char *)extra[i];
    for (int i = 0; i < argc; i++) {
        if (!argv[i])
            return err_set(e, "%s: argument %d is NULL", cmd, i + 1);
        int is_c = i > 0 && (!strcmp(argv[i - 1], "-c") || !strcmp(argv[i - 1], "--config"));
        out[n++] = (char *)(is_c ? api_config_arg(argv[i], cbuf, cn) : argv[i]);
    }
    out[n] = NULL;
    return n;
}

int tpusim_api_gen(int argc, const char *const *argv, char *errbuf, size_t errlen)
{
    err e = {{0}, ERR_INPUT};
    char *args[API_MAX_ARGS], cbuf[1024];
    int n = api_argv(args, "gen", NULL, 0, argc, argv, cbuf, sizeof cbuf, &e);
    if (n < 0)
        return api_fail(&e, errbuf, errlen);
    for (int i = 1; i < n; i++)
        if (!strcmp(args[i], "--help") || !strcmp(args[i], "-h")) {
            err_set(&e, "gen: --help prints usage; use 'tpusim gen --help' on the command line");
            return api_fail(&e, errbuf, errlen);
        }
    return cli_gen(n, args, &e) ? api_fail(&e, errbuf, errlen) : 0;
}

int tpusim_api_pod(int argc, const char *const *argv, char **out_json, char *errbuf, size_t errlen)
{
    err e = {{0}, ERR_INPUT};
    char *args[API_MAX_ARGS], cbuf[1024];
    api_tmp t;
    *out_json = NULL;
    for (int i = 0; i < argc && argv && argv[i]; i++)
        if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            err_set(&e, "pod: %s is not an API option (the document is returned)", argv[i]);
            return api_fail(&e, errbuf, errlen);
        }
    if (api_tmp_new(&t, &e))
        return api_fail(&e, errbuf, errlen);
    const char *extra[] = {"-q", "--json", t.path};
    int rc = -1, n = api_argv(args, "pod", extra, 3, argc, argv, cbuf, sizeof cbuf, &e);
    if (n >= 0 && !cli_pod(n, args, &e) && (*out_json = api_slurp(t.path, &e)))
        rc = 0;
    api_tmp_free(&t);
    return rc ? api_fail(&e, errbuf, errlen) : 0;
}

/* One key's value from the config struct, typed as the key table says. */
static void api_cfg_value(json_w *w, const cfg *c, const cfg_key *k)
{
    const char *p = (const char *)c + k->offset;
    switch (k->type) {
    case CFG_T_INT:
        json_u64(w, k->name, *(const uint64_t *)p);
        break;
    case CFG_T_DBL:
        json_num(w, k->name, *(const double *)p);
        break;
    case CFG_T_BOOL:
        json_bool(w, k->name, *(const int *)p);
        break;
    case CFG_T_ENUM: {
        /* The index into the '|'-separated choices, shown by name. */
        char name[CFG_STR_MAX] = "";
        const char *s = k->choices;
        for (int i = *(const int *)p; i > 0 && s; i--)
            if ((s = strchr(s, '|')))
                s++;
        if (s)
            snprintf(name, sizeof name, "%.*s", (int)strcspn(s, "|"), s);
        json_str(w, k->name, name);
        break;
    }
    case CFG_T_STR:
        json_str(w, k->name, p);
        break;
    }
}

int tpusim_api_config(const char *config, const char *const *overrides, unsigned noverrides,
                      char **out_json, char *errbuf, size_t errlen)
{
    err e = {{0}, ERR_INPUT};
    api_tmp t;
    json_w w;
    cfg c;
    char cbuf[1024];
    *out_json = NULL;
    if (sim_load_cfg(&c, api_config_arg(config, cbuf, sizeof cbuf), (const char **)overrides,
                     noverrides, &e))
        return api_fail(&e, errbuf, errlen);
    if (api_tmp_new(&t, &e))
        return api_fail(&e, errbuf, errlen);
    int rc = -1;
    if (json_open(&w, t.path, &e))
        goto out;
    size_t nkeys;
    const cfg_key *keys = cfg_keys(&nkeys);
    json_obj_begin(&w, NULL);
    json_str(&w, "source", c.source);
    for (size_t i = 0; i < nkeys; i++)
        api_cfg_value(&w, &c, &keys[i]);
    json_obj_end(&w);
    if (json_close(&w, &e))
        goto out;
    if ((*out_json = api_slurp(t.path, &e)))
        rc = 0;
out:
    api_tmp_free(&t);
    return rc ? api_fail(&e, errbuf, errlen) : 0;
}
