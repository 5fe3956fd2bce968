/* cli.h - the tpusim subcommands; each parses its own argv (argv[0] = the subcommand name),
 * prints, and returns 0, or non-zero with e filled for main to print. */
#ifndef TPU_CLI_H
#define TPU_CLI_H

#include <stdio.h>

#include "config.h"
#include "err.h"
#include "gen.h"

/* What every subcommand's options share: -c/--config FILE, -p key=value (repeatable, at most
 * CLI_MAX_OVERRIDES), -q/--quiet, -h/--help. CLI_LONGOPTS_COMMON are their getopt_long rows. */
#define CLI_MAX_OVERRIDES 256
/* clang-format off */
#define CLI_LONGOPTS_COMMON \
    {"config", required_argument, 0, 'c'}, {"quiet", no_argument, 0, 'q'}, \
    {"help", no_argument, 0, 'h'}
/* clang-format on */
/* Append the override kv to ovr[*n] (an array of CLI_MAX_OVERRIDES). 0, or -1 with e filled
 * ("CMD: too many -p overrides (at most 256)"; no "CMD: " when cmd is NULL) when it is full. */
int cli_override_add(const char **ovr, unsigned *n, const char *kv, const char *cmd, err *e);

int cli_pod(int argc, char **argv, err *e);
/* `tpusim serve`: LLM serving of a request stream on a slice (sim/serve/); prints its report. */
int cli_serve(int argc, char **argv, err *e);

/* `tpusim gen KIND [options]`: argv[0] is "gen", argv[1] the kind. Prints only for --help
 * (usage to stdout). */
int cli_gen(int argc, char **argv, err *e);
/* The parsing half of cli_gen: argv into o (gen_opts_init defaults, then the options), the
 * config (-c, then -p) loaded into c, and both checked by gen_check. `help` is set when
 * --help was given (o->kind is then the kind, or GEN_KIND_COUNT before one). */
int cli_gen_parse(int argc, char **argv, gen_opts *o, cfg *c, int *help, err *e);
/* `--model NAME` (or --model=NAME) in a gen command line (argv[1] the kind): the preset's
 * flags (models.h) that the kind takes are put right after the kind, before the user's
 * arguments, so that any flag given overrides the preset; --model itself is removed. Keys the
 * kind does not take (yet) are left out and named in `note` (one line, "" when none). With
 * no --model: *eargv = NULL, *eargc = argc. Otherwise *eargv is the new argv (NULL-terminated,
 * pointing into argv and into itself), one block the caller frees with free(). */
int cli_gen_expand_model(int argc, char **argv, int *eargc, char ***eargv, char *note, size_t cap,
                         err *e);
/* `tpusim gen --list-models`: name, family, parameters (computed), source of every preset. */
int cli_gen_list_models(FILE *out, err *e);
/* `tpusim gen --help` (kind < 0) or `tpusim gen KIND --help`, from the option tables. */
void cli_gen_usage(FILE *out, int kind);
/* `tpusim report`: the table (or --help) goes to `out` (stdout from main; tests pass a
 * memory stream). */
int cli_compare(int argc, char **argv, FILE *out, err *e);
/* `tpusim import hlo MODULE.txt ...`: argv[0] is "import" (cli_import.c). */
int cli_import(int argc, char **argv, err *e);

#endif
