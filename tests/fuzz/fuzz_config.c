/* fuzz_config.c - libFuzzer harness for the config loader: any YAML text must load or give
 * one error naming the file, never crash or hang (includes can loop); whatever loads must
 * dump to YAML that loads back to the same value for every key. Each line of the input is
 * also tried as a `-p key=value` override. */
#include "fuzz_util.h"

#include "config.h"

#ifndef FUZZ_PRESETS_DIR
#error "FUZZ_PRESETS_DIR must name the configs/ directory"
#endif

/* Compare two configs key by key through the key table (padding and bytes after a string's
 * NUL may differ legitimately). Returns the first differing key or NULL. */
static const char *cfg_diff(const cfg *a, const cfg *b)
{
    size_t n;
    const cfg_key *k = cfg_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const char *pa = (const char *)a + k[i].offset, *pb = (const char *)b + k[i].offset;
        int same;
        switch (k[i].type) {
        case CFG_T_INT:
            same = !memcmp(pa, pb, sizeof(uint64_t));
            break;
        case CFG_T_DBL:
            same = *(const double *)pa == *(const double *)pb;
            break;
        case CFG_T_BOOL:
        case CFG_T_ENUM:
            same = *(const int *)pa == *(const int *)pb;
            break;
        default:
            same = !strncmp(pa, pb, CFG_STR_MAX);
            break;
        }
        if (!same)
            return k[i].name;
    }
    return NULL;
}

static void try_overrides(const uint8_t *data, size_t size)
{
    cfg c;
    cfg_defaults(&c);
    char line[512];
    size_t start = 0;
    while (fuzz_next_line(data, size, &start, line, sizeof line)) {
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            err e;
            if (cfg_set(&c, line, eq + 1, "-p", &e) && !e.msg[0])
                abort();
        }
    }
    err e;
    cfg_check(&c, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_overrides(data, size);

    char path[512], dump[512];
    fuzz_path(path, sizeof path, "in.yaml");
    fuzz_path(dump, sizeof dump, "dump.yaml");
    fuzz_write(path, data, size);
    static cfg a, b;
    err e;
    e.msg[0] = '\0';
    if (cfg_load(&a, path, FUZZ_PRESETS_DIR, &e)) {
        if (!e.msg[0])
            abort(); /* every failure has a message */
        return 0;
    }
    cfg_check(&a, &e);
    FILE *f = fopen(dump, "w");
    if (!f)
        abort();
    cfg_dump(&a, f);
    if (fclose(f))
        abort();
    if (cfg_load(&b, dump, FUZZ_PRESETS_DIR, &e)) {
        fprintf(stderr, "dump of a loaded config does not load: %s\n", e.msg);
        abort();
    }
    const char *k = cfg_diff(&a, &b);
    if (k) {
        fprintf(stderr, "key '%s' changes across cfg_dump -> cfg_load\n", k);
        abort();
    }
    return 0;
}
