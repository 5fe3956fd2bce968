/* fuzz_report.c - libFuzzer harness for `tpusim report`: its JSON reader and the comparison
 * built on it. Any bytes, parsed as JSON or compared as a run report against itself and a
 * real report, must give a table or one error naming the file, never a crash, a hang or a
 * leak. */
#include "fuzz_util.h"

#include "compare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    err e;
    e.msg[0] = '\0';
    cmp_json *v = compare_json_parse((const char *)data, size, "fuzz.json", &e);
    if (!v && strncmp(e.msg, "fuzz.json", 9)) {
        fprintf(stderr, "parse error does not name the file: '%s'\n", e.msg);
        abort();
    }
    if (v) {
        compare_json_path(v, "summary.tflops");
        compare_json_path(v, "units.0.util");
    }
    compare_json_free(v);

    char path[512], csv[512];
    fuzz_path(path, sizeof path, "in.json");
    fuzz_path(csv, sizeof csv, "out.csv");
    fuzz_write(path, data, size);
    FILE *out = fopen("/dev/null", "w");
    if (!out)
        abort();
    const char *files[] = {path, path};
    e.msg[0] = '\0';
    int rc = compare_reports(files, 2, csv, out, &e);
    fclose(out);
    if (rc && !e.msg[0])
        abort(); /* every failure has a message */
    if (rc)
        fuzz_assert_absent(csv);
    unlink(csv);
    return 0;
}
