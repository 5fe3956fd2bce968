/* api.h - the C API of libtpusim.so for language bindings (tools/python/tpusim uses it through
 * ctypes): run, gen, pod and config, each returning a JSON document or a one-line error.
 *
 * Contract shared by every call:
 *  - returns 0 on success, or TPUSIM_API_E* (non-zero) with errbuf filled by one line such as
 *    "cfg.yaml:12: key 'hbm.channels': value 0 not in [1, 64]" (errbuf may be NULL, errlen 0);
 *  - a returned document is a malloc'd, NUL-terminated UTF-8 string the caller frees with
 *    tpusim_api_free; on failure *out is set to NULL;
 *  - nothing is printed to stdout or stderr;
 *  - calls must not overlap: the SystemC kernel under the engine is process-wide (callers
 *    serialise with a lock, or run one process per worker as tools/sweep.py does).
 * Config arguments are a YAML path or a preset name (v7), NULL for the built-in defaults;
 * overrides are "key=value" strings, exactly as `-p` takes them. */
#ifndef TPUSIM_API_H
#define TPUSIM_API_H

#include <stddef.h>

/* Bumped when a signature or a document's meaning changes; bindings check it at load. */
#define TPUSIM_API_VERSION 1

/* Return codes: 0 = success; the others follow err.h's err_kind (plus one). */
enum {
    TPUSIM_API_EINPUT = 1,    /* bad input: config, trace, option, unreadable path */
    TPUSIM_API_ENOMEM = 2,    /* out of memory */
    TPUSIM_API_EDEADLOCK = 3, /* the replay ended with work nothing can unblock */
    TPUSIM_API_EOVERFLOW = 4, /* simulated time passed the 64-bit picosecond clock */
};

/* TPUSIM_API_VERSION of the library (bindings compare it with the one they were written for). */
int tpusim_api_version(void);
/* The tpusim release, e.g. "0.1.0" (static storage). */
const char *tpusim_api_release(void);

/* `tpusim run -q -c CONFIG -p ... --json - TRACE`: *out_json is the tpusim.run/1 document. */
int tpusim_api_run(const char *config, const char *const *overrides, unsigned noverrides,
                   const char *trace, char **out_json, char *errbuf, size_t errlen);

/* `tpusim gen ARGV...`: argv[0] is the kind, then the options as on the command line
 * ("-c", "v7", "-o", "g.tpt", "--m", "8192", ...). Writes the trace named by -o. */
int tpusim_api_gen(int argc, const char *const *argv, char *errbuf, size_t errlen);

/* `tpusim pod -q ARGV... --json -`: argv are pod's options and TRACE arguments (no --json,
 * no -q); *out_json is the pod document (docs/outputs.md). */
int tpusim_api_pod(int argc, const char *const *argv, char **out_json, char *errbuf, size_t errlen);

/* The resolved config (defaults, includes, overrides) as one flat JSON object keyed by the
 * dotted key names ("mxu.rows": 256), plus "source": the file it was loaded from. */
int tpusim_api_config(const char *config, const char *const *overrides, unsigned noverrides,
                      char **out_json, char *errbuf, size_t errlen);

/* Free a document returned by the calls above (NULL is fine). */
void tpusim_api_free(char *p);

#endif
