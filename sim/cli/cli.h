/* cli.h - the tpusim subcommands; each parses its own argv (argv[0] = the subcommand name),
 * prints, and returns 0, or non-zero with e filled for main to print. */
#ifndef TPU_CLI_H
#define TPU_CLI_H

#include "err.h"

int cli_pod(int argc, char **argv, err *e);

#endif
