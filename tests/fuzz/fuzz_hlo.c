/* fuzz_hlo.c - libFuzzer harness for the HLO importer: any text must parse or give one
 * error line naming the file ("fuzz.hlo:LINE:COL: ..."), never crash; what parses must go
 * through the semantic pass (with a small unroll cap) without crashing either. Seeds: the
 * modules under tests/hlo/. */
#include "fuzz_util.h"

#include "hlo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    err e;
    e.msg[0] = '\0';
    hlo_module *m = hlo_parse((const char *)data, size, "fuzz.hlo", &e);
    if (!m) {
        if (strncmp(e.msg, "fuzz.hlo", 8) || strchr(e.msg, '\n')) {
            fprintf(stderr, "error is not one line naming the file: '%s'\n", e.msg);
            abort();
        }
        return 0;
    }
    hlo_plan p;
    hlo_sem_opts o = {.dims = {4, 2, 1}, .max_items = 4096};
    if (hlo_analyze(m, &o, &p, &e) == 0)
        hlo_plan_fini(&p);
    hlo_module_free(m);
    return 0;
}
