/* trace.h - the binary trace file: a versioned header, a zlib stream of encoded
 * instructions, and a trailer that lets the reader detect truncation and corruption.
 *
 * Layout (all integers little-endian; see docs/trace-format.md):
 *   header  : "TPUTRACE" | u16 format_version | u16 isa_version | u32 header_size |
 *             u32 flags | u32 note_len | note bytes (UTF-8, e.g. the generating command)
 *   body    : one zlib (RFC 1950) stream of isa_encode()d instructions
 *   trailer : u64 insn_count | u64 raw_bytes | u32 crc32(raw) | "TEND"
 *
 * Reading is a stream: memory is constant whatever the trace length, and the file is read
 * once front to back (a pipe or FIFO works; only rewind needs a seekable file). Writing goes
 * through ofile.h: a unique temporary renamed to PATH by trace_writer_close, so no
 * half-written file is ever left under the final name ("-" writes to stdout). */
#ifndef TPU_TRACE_H
#define TPU_TRACE_H

#include <stdint.h>

#include "err.h"
#include "isa.h"

#define TRACE_MAGIC          "TPUTRACE"
#define TRACE_TRAILER_MAGIC  "TEND"
#define TRACE_FORMAT_VERSION 1
#define TRACE_NOTE_MAX       4096

typedef struct trace_header {
    uint16_t format_version;
    uint16_t isa_version;
    uint32_t header_size;
    uint32_t flags;
    char note[TRACE_NOTE_MAX]; /* NUL-terminated */
} trace_header;

/* The topology a trace was generated for, kept as the note's last line (a structured part
 * of the note, so the format is unchanged and older traces, which lack it, still read):
 *   topology: chips=N ici.dims=AxBxC ici.wrap=xyz        (ici.wrap=none for a mesh)
 *   topology: chips=N ici.dims=AxBxC ici.wrap=xyz dcn.slices=S     (S > 1 slices)
 * chips is the number of chips the workload is split over in one slice (its collectives'
 * group); ici.dims and ici.wrap are the slice it was generated on; dcn.slices the number of
 * slices joined over the data-centre network (written only when more than 1). `tpusim run`
 * and `pod` compare it with the topology they time collectives on. */
#define TRACE_TOPO_TAG "topology:"
typedef struct trace_topology {
    uint64_t chips;
    char ici_dims[64];
    char ici_wrap[64]; /* "" = no wraparound */
    uint64_t slices;   /* dcn.slices; 0 and 1 both mean one slice */
} trace_topology;

/* Find the topology line in `note`: returns 1 with *t filled, 0 when the note has none, -1
 * when it has one that does not parse (t then undefined). */
int trace_note_topology(const char *note, trace_topology *t);
/* Append the topology line of t to note (of capacity cap), on a new line when the note is
 * not empty. Returns 0, or -1 if it does not fit (note unchanged). */
int trace_note_add_topology(char *note, size_t cap, const trace_topology *t);

typedef struct trace_reader trace_reader;
typedef struct trace_writer trace_writer;

/* Open path and check the header. On failure returns non-zero, *out = NULL, e filled:
 * "f.tpt: byte 8: format version 7, expected 1". Caller frees with trace_reader_free. */
int trace_reader_open(trace_reader **out, const char *path, err *e);
/* Next instruction: returns 1 and fills *in, 0 at a verified end of trace (trailer count,
 * length and CRC match), -1 on error with e naming the file, the compressed byte offset and
 * the instruction index ("f.tpt: byte 1234 (instruction 56): truncated zlib stream"). */
int trace_reader_next(trace_reader *r, isa_insn *in, err *e);
/* Decode ahead on a second thread from here on: trace_reader_next then hands out
 * instructions decoded in batches of 512 (up to 8 batches ahead), the same instructions,
 * end and errors as without. For one long replay on a multi-core host; a reader freed early
 * stops the thread. Not with rewind. A trace whose trailer counts fewer than 2,048
 * instructions stays on the calling thread (no thread is started; returns 0). */
int trace_reader_prefetch(trace_reader *r, err *e);
/* Restart at the first instruction (used by multi-pass replay). */
int trace_reader_rewind(trace_reader *r, err *e);
const trace_header *trace_reader_header(const trace_reader *r);
uint64_t trace_reader_index(const trace_reader *r); /* instructions returned so far */
/* Instruction count from the trailer (read at open); UINT64_MAX if the file is too short
 * to hold one (the error is then reported by trace_reader_next). */
uint64_t trace_reader_count(const trace_reader *r);
uint64_t trace_reader_file_bytes(const trace_reader *r);
void trace_reader_free(trace_reader *r);

/* Open PATH (ofile_open) and write a header holding `note` (may be NULL). */
int trace_writer_open(trace_writer **out, const char *path, const char *note, err *e);
/* Append one instruction; it is validated with isa_validate first. */
int trace_writer_put(trace_writer *w, const isa_insn *in, err *e);
uint64_t trace_writer_count(const trace_writer *w);
/* Flush, write the trailer, rename the temporary to PATH, free w (also on failure). */
int trace_writer_close(trace_writer *w, err *e);
/* Remove the temporary and free w. */
void trace_writer_abort(trace_writer *w);

#endif
