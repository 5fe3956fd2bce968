/* cli_common.c - what the subcommands' option parsers share (see cli.h). */
#include "cli.h"

int cli_override_add(const char **ovr, unsigned *n, const char *kv, const char *cmd, err *e)
{
    if (*n == CLI_MAX_OVERRIDES)
        return err_set(e, "%s%stoo many -p overrides (at most %d)", cmd ? cmd : "", cmd ? ": " : "",
                       CLI_MAX_OVERRIDES);
    ovr[(*n)++] = kv;
    return 0;
}
