/* fuzz_mkseed.c - assemble each IN.s given on the command line into OUTDIR/IN.tpt, the seed
 * corpus of fuzz_trace: usage `fuzz_mkseed OUTDIR IN.s...`. Not a fuzzer. */
#include <stdio.h>
#include <string.h>

#include "asm.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fuzz_mkseed OUTDIR IN.s...\n");
        return 2;
    }
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        const char *base = strrchr(argv[i], '/');
        base = base ? base + 1 : argv[i];
        char out[1024];
        snprintf(out, sizeof out, "%s/%.*s.tpt", argv[1], (int)strcspn(base, "."), base);
        err e;
        if (asm_file(argv[i], out, &e)) {
            fprintf(stderr, "fuzz_mkseed: %s\n", e.msg);
            rc = 1;
        }
    }
    return rc;
}
