/* tmpdir.h - one temporary directory per cmocka test group, removed afterwards. Define
 * TMPDIR_NAME (a short word for the directory name) before including; pass setup_dir and
 * teardown_dir to cmocka_run_group_tests, and make paths inside it with tpath. */
#ifndef TPU_TESTS_TMPDIR_H
#define TPU_TESTS_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

#ifndef TMPDIR_NAME
#error "define TMPDIR_NAME before including tmpdir.h"
#endif

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tpusim-" TMPDIR_NAME "-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void tpath(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

#endif
