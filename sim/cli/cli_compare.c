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
            "Compare reports written by 'tpusim run --json' and 'tpusim pod --json', in any\n"
            "mix: first what differs in how they were made (config, -p overrides, config keys,\n"
            "topology, trace), then summary metrics (time, TFLOP/s per chip, utilisation,\n"
            "MFU, HBM and ICI traffic, roofline, time split), regions aligned by name, units\n"
            "and collectives side by side, with each report's ratio to A.\n"
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
