/* ofile.h - the one way tpusim writes an output file (--json, --csv, --timeline, the trace of
 * gen and asm): never a half-written file under the final name, never a device, FIFO or
 * symlink replaced by a regular file, never an input overwritten.
 *
 * Where the output goes, by what is at PATH when it is opened:
 *   - nothing, or a regular file: a fresh temporary PATH.tmp.XXXXXX (mkstemp, in the same
 *     directory) renamed onto PATH by ofile_close, so two writers never share a temporary;
 *   - a character device (/dev/null, /dev/full), a FIFO or a socket: written directly;
 *   - a symlink: followed; its final target is written as above (the link stays a link);
 *   - "-": standard output, flushed (not closed) by ofile_close.
 * Paths have no length limit of their own (the system's PATH_MAX applies). Errors name the
 * output path (shortened in the middle if it is long, the reason kept) and strerror(errno).
 *
 * Temporaries being written are kept in a process-wide registry so that a signal handler can
 * remove them (ofile_unlink_temps); the library installs no handler itself, the CLI does. */
#ifndef TPU_OFILE_H
#define TPU_OFILE_H

#include <stdio.h>

#include "err.h"

typedef struct ofile ofile;

/* Open PATH for writing as described above. On failure returns non-zero with *out = NULL
 * and e filled ("x/y.json: cannot create: No such file or directory"). The caller ends the
 * file with ofile_close or ofile_abort. */
int ofile_open(ofile **out, const char *path, err *e);
/* The stream to write to (owned by o). */
FILE *ofile_stream(const ofile *o);
/* The path as given to ofile_open. */
const char *ofile_path(const ofile *o);
/* errno of the first failed write, 0 if none so far. */
int ofile_errno(const ofile *o);
/* Flush and close; rename the temporary onto the final path. On any write, close or rename
 * failure the temporary is removed and e names the path and the reason. Frees o always. */
int ofile_close(ofile *o, err *e);
/* Close and remove the temporary, if any (a direct write is left as is). Frees o; NULL ok. */
void ofile_abort(ofile *o);

/* A path with its role for ofile_check messages ("--json", "trace", "config"). */
typedef struct ofile_ref {
    const char *path; /* NULL or "-" entries are skipped */
    const char *role;
} ofile_ref;

/* Before any work: each output must be creatable (an existing directory we may write to, or a
 * writable existing file that is not a directory), and must not be the same file as any input
 * nor as another output. Files are compared by device and inode (after following symlinks;
 * a path that does not exist yet by its directory's device and inode plus its name), so
 * "./t.tpt", a hard link or a symlink to it all count as t.tpt. Inputs that do not exist are
 * ignored (reading them reports the error). Returns 0, or non-zero with e filled:
 * "t.tpt: the --json output is the trace input; refusing to overwrite it". */
int ofile_check(const ofile_ref *outs, unsigned nout, const ofile_ref *ins, unsigned nin, err *e);

/* Remove every temporary currently being written. Async-signal-safe (only unlink(2)): for a
 * SIGINT/SIGTERM handler, which should then restore the default action and re-raise. */
void ofile_unlink_temps(void);

#endif
