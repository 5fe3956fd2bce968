/* cli.h - the tpusim subcommands; each parses its own argv (argv[0] = the subcommand name),
 * prints, and returns 0, or non-zero with e filled for main to print. */
#ifndef TPU_CLI_H
#define TPU_CLI_H

#include <stdio.h>

#include "config.h"
#include "err.h"
#include "gen.h"

int cli_pod(int argc, char **argv, err *e);

/* `tpusim gen KIND [options]`: argv[0] is "gen", argv[1] the kind. Prints only for --help
 * (usage to stdout). */
int cli_gen(int argc, char **argv, err *e);
/* The parsing half of cli_gen: argv into o (gen_opts_init defaults, then the options), the
 * config (-c, then -p) loaded into c, and both checked by gen_check. `help` is set when
 * --help was given (o->kind is then the kind, or GEN_KIND_COUNT before one). */
int cli_gen_parse(int argc, char **argv, gen_opts *o, cfg *c, int *help, err *e);
/* `tpusim gen --help` (kind < 0) or `tpusim gen KIND --help`, from the option tables. */
void cli_gen_usage(FILE *out, int kind);
/* `tpusim report`: the table (or --help) goes to `out` (stdout from main; tests pass a
 * memory stream). */
int cli_compare(int argc, char **argv, FILE *out, err *e);
/* `tpusim import hlo MODULE.txt ...`: argv[0] is "import" (cli_import.c). */
int cli_import(int argc, char **argv, err *e);

#endif
