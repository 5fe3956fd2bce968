/* cli_compare.c - `tpusim report`: options, usage text, and the comparison table printed. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "compare.h"

static void compare_usage(FILE *out)
{
    fprintf(out,
            "usage: tpusim report A.json [B.json ...] [--csv FILE]\n"
            "\n"
            "Compare run reports written by 'tpusim run --json': summary metrics (time,\n"
            "cycles, TFLOP/s, MXU and MAC utilisation, HBM bandwidth, roofline fraction, time\n"
            "split) and per-unit utilisation side by side, with each run's ratio to A.\n"
            "\n"
            "  --csv FILE   also write the table as CSV (written atomically)\n");
}

int cli_compare(int argc, char **argv, FILE *out, err *e)
{
    const char *files[COMPARE_MAX_RUNS];
    unsigned nf = 0;
    const char *csv = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            compare_usage(out);
            return 0;
        }
        if (!strcmp(argv[i], "--csv")) {
            if (i + 1 >= argc)
                return err_set(e, "report: --csv needs a FILE argument");
            csv = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return err_set(e, "report: unknown option '%s' (see 'tpusim report --help')", argv[i]);
        } else {
            if (nf == COMPARE_MAX_RUNS)
                return err_set(e, "report: at most %d reports can be compared", COMPARE_MAX_RUNS);
            files[nf++] = argv[i];
        }
    }
    return compare_reports(files, nf, csv, out, e);
}
