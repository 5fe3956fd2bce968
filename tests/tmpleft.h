/* tmpleft.h - whether an output's temporary is on disk: ofile.h writes PATH through a
 * temporary named PATH.tmp.XXXXXX (PATH's name cut to 200 bytes) in PATH's directory. */
#ifndef TPU_TESTS_TMPLEFT_H
#define TPU_TESTS_TMPLEFT_H

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Number of temporaries of `path` that exist (0 when none was left behind). */
static inline int tmp_left(const char *path)
{
    size_t n = strlen(path) + 8;
    char *pat = malloc(n);
    if (!pat)
        return -1;
    snprintf(pat, n, "%s.tmp*", path);
    glob_t g;
    int found = glob(pat, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
    if (found >= 0)
        globfree(&g);
    free(pat);
    return found;
}

#endif
