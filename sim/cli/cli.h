/* cli.h - the tpusim subcommands; each parses its own argv (argv[0] = the subcommand name),
 * prints, and returns 0, or non-zero with e filled for main to print. */
#ifndef TPU_CLI_H
#define TPU_CLI_H

#include <stdio.h>

#include "err.h"

int cli_pod(int argc, char **argv, err *e);
/* `tpusim report`: the table (or --help) goes to `out` (stdout from main; tests pass a
 * memory stream). */
int cli_compare(int argc, char **argv, FILE *out, err *e);

#endif
