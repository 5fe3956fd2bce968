/* fuzz_report.c - libFuzzer harness for `tpusim report`: loading a report (libjansson) and
 * the comparison built on it. Any bytes, loaded or compared as a report against itself, must
 * give a table or one error naming the file, never a crash, a hang or a leak. */
#include "fuzz_util.h"

#include "compare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], csv[512];
    fuzz_path(path, sizeof path, "in.json");
    fuzz_path(csv, sizeof csv, "out.csv");
    fuzz_write(path, data, size);
    err e;
    e.msg[0] = '\0';
    json_t *v = compare_load(path, &e);
    if (!v && strncmp(e.msg, path, strlen(path))) {
        fprintf(stderr, "load error does not name the file: '%s'\n", e.msg);
        abort();
    }
    json_decref(v);

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
