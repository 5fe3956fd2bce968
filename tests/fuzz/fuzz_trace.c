/* fuzz_trace.c - libFuzzer harness for the trace reader: any byte string, read as a trace
 * file, must give instructions and then a clean end or one error, never a crash or a hang.
 * Every decoded instruction must also validate and survive format -> parse -> equal, and the
 * raw bytes are fed to isa_decode directly (the decoder sees unframed input that way). */
#include "fuzz_util.h"

#include "asm.h"
#include "isa.h"
#include "trace.h"

#include <zlib.h>

/* Instructions read per input at most: a small zlib body can inflate ~1000x, so a long
 * but valid stream is possible; past this the input has shown what it can. */
#define FUZZ_MAX_INSNS 200000

static void check_insn(const isa_insn *in)
{
    err e;
    if (isa_validate(in, &e)) {
        fprintf(stderr, "decoded instruction fails validation: %s\n", e.msg);
        abort();
    }
    char line[1024];
    int n = asm_format(in, line, sizeof line);
    if (n <= 0 || (size_t)n >= sizeof line) {
        fprintf(stderr, "asm_format returned %d\n", n);
        abort();
    }
    isa_insn back;
    if (asm_parse_line(line, "fuzz", 1, &back, NULL, 0, &e) != 1) {
        fprintf(stderr, "canonical text does not parse: '%s': %s\n", line, e.msg);
        abort();
    }
    if (back.op != in->op || back.wait != in->wait || back.signal != in->signal ||
        memcmp(back.arg, in->arg, sizeof in->arg) || strcmp(back.name, in->name)) {
        fprintf(stderr, "format/parse round trip changed '%s'\n", line);
        abort();
    }
}

/* Decode data as a bare instruction stream; returns the count decoded and sets *whole when
 * the bytes are exactly a sequence of complete valid instructions. */
static uint64_t decode_raw(const uint8_t *data, size_t size, int *whole)
{
    size_t pos = 0;
    uint64_t count = 0;
    isa_insn in;
    err e;
    while (pos < size) {
        long n = isa_decode(data + pos, size - pos, &in, &e);
        if (n <= 0)
            break;
        if ((size_t)n > size - pos)
            abort(); /* consumed more than it was given */
        check_insn(&in);
        pos += (size_t)n;
        count++;
    }
    *whole = pos == size;
    return count;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Wrap data as the body of a well-formed trace (header, zlib stream, trailer claiming
 * `count` instructions) so the reader's decoding path sees arbitrary instruction bytes. */
static void write_wrapped(const char *path, const uint8_t *data, size_t size, uint64_t count)
{
    uLongf zlen = compressBound((uLong)size);
    uint8_t *buf = malloc(24 + zlen + 24);
    if (!buf)
        abort();
    memcpy(buf, TRACE_MAGIC, 8);
    put_le(buf + 8, TRACE_FORMAT_VERSION, 2);
    put_le(buf + 10, ISA_VERSION, 2);
    put_le(buf + 12, 24, 4);
    put_le(buf + 16, 0, 4);
    put_le(buf + 20, 0, 4);
    if (compress2(buf + 24, &zlen, data, (uLong)size, 1) != Z_OK)
        abort();
    uint8_t *t = buf + 24 + zlen;
    put_le(t, count, 8);
    put_le(t + 8, size, 8);
    put_le(t + 16, crc32(crc32(0, Z_NULL, 0), data, (uInt)size), 4);
    memcpy(t + 20, TRACE_TRAILER_MAGIC, 4);
    fuzz_write(path, buf, 24 + zlen + 24);
    free(buf);
}

/* Read the whole trace at path; returns the reader's final status (1 = stopped at the cap,
 * 0 = verified end, -1 = error, -2 = open failed) and the count read in *n. */
static int read_all(const char *path, uint64_t *n_out)
{
    trace_reader *r;
    err e;
    *n_out = 0;
    if (trace_reader_open(&r, path, &e)) {
        if (r != NULL || !e.msg[0])
            abort(); /* contract: *out = NULL and a message */
        return -2;
    }
    if (strlen(trace_reader_header(r)->note) >= TRACE_NOTE_MAX)
        abort();
    isa_insn in, first;
    int rc = 1;
    uint64_t n = 0;
    while (n < FUZZ_MAX_INSNS && (rc = trace_reader_next(r, &in, &e)) == 1) {
        check_insn(&in);
        if (n++ == 0)
            first = in;
    }
    if (rc == 0 && trace_reader_count(r) != n)
        abort(); /* a verified end must agree with the trailer */
    /* Errors are sticky: the next call repeats the error rather than reading on. */
    if (rc < 0 && trace_reader_next(r, &in, &e) != -1)
        abort();
    /* Rewind and read one again: the same instruction must come back. */
    if (n > 0 && trace_reader_rewind(r, &e) == 0) {
        isa_insn again;
        if (trace_reader_next(r, &again, &e) != 1 || trace_reader_index(r) != 1 ||
            memcmp(&again, &first, sizeof first))
            abort();
    }
    trace_reader_free(r);
    *n_out = n;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_path(path, sizeof path, "in.tpt");

    /* 1. The bytes as a whole trace file: header, zlib and trailer checks. */
    fuzz_write(path, data, size);
    uint64_t n;
    read_all(path, &n);

    /* 2. The bytes as the instruction stream of a well-formed trace: the reader must agree
     *    exactly with decoding the bytes directly. */
    int whole;
    uint64_t count = decode_raw(data, size, &whole);
    write_wrapped(path, data, size, count);
    int rc = read_all(path, &n);
    if (whole && count <= FUZZ_MAX_INSNS && (rc != 0 || n != count)) {
        fprintf(stderr, "reader: status %d after %llu instructions, decoder: %llu\n", rc,
                (unsigned long long)n, (unsigned long long)count);
        abort();
    }
    if (!whole && rc == 0) {
        fprintf(stderr, "reader accepted a stream the decoder rejects\n");
        abort();
    }
    return 0;
}
