/* trace.c - the binary trace file: streaming reader and writer in constant memory.
 * Assumes one zlib stream per file and little-endian integers written byte by byte, so the
 * format does not depend on the host's endianness or struct layout. */
#include "trace.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ofile.h"

#define TRACE_IN_BUF       (64 * 1024)  /* compressed bytes read per fread */
#define TRACE_OUT_BUF      (256 * 1024) /* inflated bytes decoded from */
#define TRACE_RAW_BUF      (64 * 1024)  /* writer: encoded bytes per deflate call */
#define TRACE_HDR_FIXED    24           /* header bytes before the note */
#define TRACE_TRAILER_SIZE 24
#define TRACE_LEVEL        6 /* zlib's default: most of level 9's ratio at a fraction of the time */
#define TRACE_PF_BATCH     512 /* prefetch: instructions decoded per batch */
#define TRACE_PF_SLOTS     8   /* prefetch: batches in flight (about 460 KB in all) */
#define TRACE_PF_SHORT     (4 * TRACE_PF_BATCH) /* prefetch: fewer instructions stay inline */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static char *trace_strdup(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    char *p = malloc(a + b + 1);
    if (p) {
        memcpy(p, s, a);
        memcpy(p + a, suffix, b + 1);
    }
    return p;
}

/* ======================================================================== reader */

struct trace_reader {
    FILE *f;
    char *path;
    trace_header hdr;
    uint64_t file_bytes; /* 0 if the file is not seekable */
    uint64_t count;      /* from the trailer read at open, UINT64_MAX if none */
    z_stream zs;
    int zinit;
    uint64_t index; /* instructions returned */
    uint32_t crc;   /* crc32 of the inflated bytes so far */
    size_t out_pos; /* next undecoded byte in out[] */
    size_t out_len; /* inflated bytes in out[] */
    int zend;       /* inflate returned Z_STREAM_END */
    int state;      /* 0 reading, 1 verified end, -1 failed (msg holds why) */
    err fail;
    struct trace_prefetch *pf; /* decoding on a second thread, or NULL */
    uint8_t in[TRACE_IN_BUF];
    uint8_t out[TRACE_OUT_BUF];
};

/* One batch of decoded instructions. `end` says what follows its n instructions: 1 more
 * batches, 0 the verified end of the trace, -1 the error in e. */
typedef struct trace_batch {
    isa_insn in[TRACE_PF_BATCH];
    unsigned n;
    int end;
    err e;
} trace_batch;

/* A ring of batches between the decoding thread (producer) and trace_reader_next
 * (consumer). The producer owns the reader's stream state once started; the consumer only
 * reads the batches it was handed. Both sides touch `ready` and `stop` under mu. */
typedef struct trace_prefetch {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned ready; /* batches filled and not yet released by the consumer */
    unsigned head;  /* consumer's batch */
    unsigned pos;   /* next instruction in it */
    int started;    /* the consumer holds batch `head` */
    int stop;       /* trace_reader_free: the producer must exit */
    uint64_t index; /* instructions returned to the consumer */
    trace_batch slot[TRACE_PF_SLOTS];
} trace_prefetch;

/* Offset in the file of the next compressed byte inflate will consume. */
static uint64_t rd_offset(const trace_reader *r)
{
    return r->hdr.header_size + (uint64_t)r->zs.total_in;
}

/* Record a stream error (file, byte offset, instruction index) and make it sticky. */
__attribute__((format(printf, 3, 4))) static int rd_fail(trace_reader *r, err *e, const char *fmt,
                                                         ...)
{
    char what[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    err_path(&r->fail, r->path, "byte %llu (instruction %llu): %s",
             (unsigned long long)rd_offset(r), (unsigned long long)r->index, what);
    r->state = -1;
    if (e)
        *e = r->fail;
    return -1;
}

/* Read the fixed header and note; fills r->hdr. */
static int rd_header(trace_reader *r, err *e)
{
    uint8_t h[TRACE_HDR_FIXED];
    size_t n = fread(h, 1, sizeof h, r->f);
    if (n < sizeof h && ferror(r->f))
        return err_set(e, "%s: cannot read: %s", r->path, strerror(errno));
    if (n >= 8 && memcmp(h, TRACE_MAGIC, 8))
        return err_set(e, "%s: byte 0: bad magic, expected %s", r->path, TRACE_MAGIC);
    if (n < sizeof h)
        return err_set(e, "%s: byte %zu: truncated header (%zu of %d bytes)", r->path, n, n,
                       TRACE_HDR_FIXED);
    r->hdr.format_version = (uint16_t)get_le(h + 8, 2);
    r->hdr.isa_version = (uint16_t)get_le(h + 10, 2);
    r->hdr.header_size = (uint32_t)get_le(h + 12, 4);
    r->hdr.flags = (uint32_t)get_le(h + 16, 4);
    uint32_t note_len = (uint32_t)get_le(h + 20, 4);
    if (r->hdr.format_version != TRACE_FORMAT_VERSION)
        return err_set(e,
                       "%s: byte 8: trace format version %u, expected %d (this tpusim reads "
                       "format %d, ISA %d)",
                       r->path, r->hdr.format_version, TRACE_FORMAT_VERSION, TRACE_FORMAT_VERSION,
                       ISA_VERSION);
    if (r->hdr.isa_version != ISA_VERSION)
        return err_set(e,
                       "%s: byte 10: ISA version %u, expected %d (regenerate the trace with "
                       "this tpusim)",
                       r->path, r->hdr.isa_version, ISA_VERSION);
    if (note_len >= TRACE_NOTE_MAX)
        return err_set(e, "%s: byte 20: note length %u, expected < %d", r->path, note_len,
                       TRACE_NOTE_MAX);
    if (r->hdr.header_size != TRACE_HDR_FIXED + note_len)
        return err_set(e, "%s: byte 12: header size %u, expected %u (%d + note length %u)", r->path,
                       r->hdr.header_size, TRACE_HDR_FIXED + note_len, TRACE_HDR_FIXED, note_len);
    if (r->hdr.flags != 0)
        return err_set(e, "%s: byte 16: flags 0x%x, expected 0", r->path, r->hdr.flags);
    n = fread(r->hdr.note, 1, note_len, r->f);
    if (n < note_len)
        return err_set(e, "%s: byte %zu: truncated header (note has %zu of %u bytes)", r->path,
                       TRACE_HDR_FIXED + n, n, note_len);
    r->hdr.note[note_len] = '\0';
    /* A note is text: the writer takes it as a C string, and disassembly could not give a
     * NUL back, so a NUL here means a damaged or hand-made file. */
    const char *nul = memchr(r->hdr.note, '\0', note_len);
    if (nul)
        return err_set(e, "%s: byte %zu: NUL byte in the note (expected text without NUL)", r->path,
                       TRACE_HDR_FIXED + (size_t)(nul - r->hdr.note));
    return 0;
}

/* Peek at the trailer so trace_reader_count works before reading; the authoritative
 * check happens at the end of the stream. Leaves the file positioned after the header. */
static int rd_peek_trailer(trace_reader *r, err *e)
{
    r->count = UINT64_MAX;
    if (fseek(r->f, 0, SEEK_END))
        return 0; /* a pipe: no count until the end */
    long size = ftell(r->f);
    if (size < 0)
        return 0;
    r->file_bytes = (uint64_t)size;
    uint8_t t[TRACE_TRAILER_SIZE];
    if (r->file_bytes >= r->hdr.header_size + (uint64_t)TRACE_TRAILER_SIZE &&
        !fseek(r->f, size - TRACE_TRAILER_SIZE, SEEK_SET) &&
        fread(t, 1, sizeof t, r->f) == sizeof t && !memcmp(t + 20, TRACE_TRAILER_MAGIC, 4))
        r->count = get_le(t, 8);
    if (fseek(r->f, r->hdr.header_size, SEEK_SET))
        return err_set(e, "%s: cannot seek: %s", r->path, strerror(errno));
    return 0;
}

static void rd_reset(trace_reader *r)
{
    r->index = 0;
    r->crc = (uint32_t)crc32(0, Z_NULL, 0);
    r->out_pos = r->out_len = 0;
    r->zend = 0;
    r->state = 0;
    r->zs.next_in = r->in;
    r->zs.avail_in = 0;
}

int trace_reader_open(trace_reader **out, const char *path, err *e)
{
    *out = NULL;
    trace_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = trace_strdup(path, ""))) {
        free(r); /* nothing else is set up yet */
        return err_setk(e, ERR_NOMEM, "%s: out of memory", path);
    }
    r->f = fopen(path, "rb");
    if (!r->f) {
        err_path(e, path, "cannot open: %s", strerror(errno));
        goto out_free;
    }
    if (rd_header(r, e) || rd_peek_trailer(r, e))
        goto out_free;
    if (inflateInit(&r->zs) != Z_OK) {
        err_set(e, "%s: cannot initialise zlib", path);
        goto out_free;
    }
    r->zinit = 1;
    rd_reset(r);
    *out = r;
    return 0;
out_free:
    trace_reader_free(r);
    return -1;
}

/* Inflate more bytes into out[] after moving the undecoded tail to the front. Returns 0 once
 * at least one byte was produced or the stream ended, -1 on error. */
static int rd_refill(trace_reader *r, err *e)
{
    size_t tail = r->out_len - r->out_pos;
    memmove(r->out, r->out + r->out_pos, tail);
    r->out_pos = 0;
    r->out_len = tail;
    for (;;) {
        if (r->zs.avail_in == 0) {
            size_t n = fread(r->in, 1, sizeof r->in, r->f);
            if (n == 0 && ferror(r->f))
                return rd_fail(r, e, "read error: %s", strerror(errno));
            if (n == 0)
                return rd_fail(r, e,
                               "truncated zlib stream (file ends before the end of the "
                               "compressed data)");
            r->zs.next_in = r->in;
            r->zs.avail_in = (uInt)n;
        }
        r->zs.next_out = r->out + r->out_len;
        r->zs.avail_out = (uInt)(sizeof r->out - r->out_len);
        int z = inflate(&r->zs, Z_NO_FLUSH);
        size_t produced = sizeof r->out - r->out_len - r->zs.avail_out;
        r->crc = (uint32_t)crc32(r->crc, r->out + r->out_len, (uInt)produced);
        r->out_len += produced;
        if (z == Z_STREAM_END) {
            r->zend = 1;
            return 0;
        }
        if (z == Z_DATA_ERROR || z == Z_NEED_DICT)
            return rd_fail(r, e, "corrupt zlib stream (%s)",
                           r->zs.msg ? r->zs.msg : "needs a dictionary");
        if (z == Z_MEM_ERROR) {
            rd_fail(r, NULL, "out of memory in zlib");
            r->fail.kind = ERR_NOMEM;
            if (e)
                *e = r->fail;
            return -1;
        }
        if (produced)
            return 0;
        /* Z_OK or Z_BUF_ERROR with nothing produced: inflate needs more input. */
    }
}

/* After Z_STREAM_END: read the trailer (part may still sit in in[]), check it against what
 * was read and that nothing follows it. */
static int rd_finish(trace_reader *r, err *e)
{
    uint8_t t[TRACE_TRAILER_SIZE];
    size_t have = r->zs.avail_in < sizeof t ? r->zs.avail_in : sizeof t;
    memcpy(t, r->zs.next_in, have);
    size_t extra = r->zs.avail_in - have; /* bytes after the trailer already buffered */
    if (have < sizeof t)
        have += fread(t + have, 1, sizeof t - have, r->f);
    if (have < sizeof t)
        return rd_fail(r, e, "truncated trailer (%zu of %d bytes)", have, TRACE_TRAILER_SIZE);
    if (memcmp(t + 20, TRACE_TRAILER_MAGIC, 4))
        return rd_fail(r, e, "bad trailer magic, expected %s", TRACE_TRAILER_MAGIC);
    uint64_t count = get_le(t, 8), raw = get_le(t + 8, 8);
    uint32_t crc = (uint32_t)get_le(t + 16, 4);
    if (count != r->index)
        return rd_fail(r, e, "stream holds %llu instructions, trailer says %llu",
                       (unsigned long long)r->index, (unsigned long long)count);
    if (raw != r->zs.total_out)
        return rd_fail(r, e, "stream holds %llu bytes, trailer says %llu",
                       (unsigned long long)r->zs.total_out, (unsigned long long)raw);
    if (crc != r->crc)
        return rd_fail(r, e, "crc32 0x%08x, trailer says 0x%08x", r->crc, crc);
    if (extra || fgetc(r->f) != EOF)
        return rd_fail(r, e, "trailing garbage after the trailer");
    r->count = count;
    r->state = 1;
    return 0;
}

static int rd_next(trace_reader *r, isa_insn *in, err *e)
{
    if (r->state > 0)
        return 0;
    if (r->state < 0) {
        if (e)
            *e = r->fail;
        return -1;
    }
    for (;;) {
        if (r->out_pos < r->out_len) {
            err de;
            long n = isa_decode(r->out + r->out_pos, r->out_len - r->out_pos, in, &de);
            if (n > 0) {
                r->out_pos += (size_t)n;
                r->index++;
                return 1;
            }
            if (n < 0)
                return rd_fail(r, e, "%s", de.msg);
        }
        if (r->zend) {
            if (r->out_pos < r->out_len)
                return rd_fail(r, e, "compressed data ends inside an instruction");
            return rd_finish(r, e) ? -1 : 0;
        }
        if (rd_refill(r, e))
            return -1;
    }
}

/* The decoding thread: fill free batches in ring order until the trace ends or fails, or
 * the reader is freed. */
static void *pf_main(void *arg)
{
    trace_reader *r = arg;
    trace_prefetch *pf = r->pf;
    for (unsigned tail = 0;; tail = (tail + 1) % TRACE_PF_SLOTS) {
        pthread_mutex_lock(&pf->mu);
        /* Ring full: sleep until the consumer has freed half of it (it signals at that
         * crossing), so that one wake-up refills several batches. */
        if (pf->ready == TRACE_PF_SLOTS)
            while (pf->ready > TRACE_PF_SLOTS / 2 && !pf->stop)
                pthread_cond_wait(&pf->cv, &pf->mu);
        int stop = pf->stop;
        pthread_mutex_unlock(&pf->mu);
        if (stop)
            return NULL;
        trace_batch *b = &pf->slot[tail];
        b->n = 0;
        b->end = 1;
        while (b->n < TRACE_PF_BATCH) {
            int rc = rd_next(r, &b->in[b->n], &b->e);
            if (rc <= 0) {
                b->end = rc;
                break;
            }
            b->n++;
        }
        pthread_mutex_lock(&pf->mu);
        pf->ready++;
        pthread_cond_signal(&pf->cv);
        pthread_mutex_unlock(&pf->mu);
        if (b->end <= 0)
            return NULL;
    }
}

int trace_reader_prefetch(trace_reader *r, err *e)
{
    /* A short trace (its trailer counts fewer than a few batches) is decoded where it is
     * read: starting and joining a thread would cost more than decoding it. */
    if (r->pf || r->count < TRACE_PF_SHORT)
        return 0;
    trace_prefetch *pf = calloc(1, sizeof *pf);
    if (!pf)
        return err_setk(e, ERR_NOMEM, "%s: out of memory", r->path);
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->cv, NULL);
    pf->index = r->index;
    r->pf = pf;
    /* The decoder thread takes no signals: a handler (the CLI's, removing temporaries) then
     * always runs on the thread that owns the process's state. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&pf->th, NULL, pf_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        r->pf = NULL;
        pthread_cond_destroy(&pf->cv);
        pthread_mutex_destroy(&pf->mu);
        free(pf);
        return err_set(e, "%s: cannot start the decoding thread: %s", r->path, strerror(rc));
    }
    return 0;
}

/* Consumer side: the next instruction of the current batch; at its end, release it and wait
 * for the next one, or report how the trace ended. */
static int pf_next(trace_prefetch *pf, isa_insn *in, err *e)
{
    for (;;) {
        if (pf->started) {
            trace_batch *b = &pf->slot[pf->head];
            if (pf->pos < b->n) {
                *in = b->in[pf->pos++];
                pf->index++;
                return 1;
            }
            if (b->end <= 0) { /* the producer has exited; the batch stays ours */
                if (b->end < 0 && e)
                    *e = b->e;
                return b->end;
            }
        }
        pthread_mutex_lock(&pf->mu);
        if (pf->started) {
            pf->ready--;
            pf->head = (pf->head + 1) % TRACE_PF_SLOTS;
            if (pf->ready == TRACE_PF_SLOTS / 2) /* the producer waits for this crossing */
                pthread_cond_signal(&pf->cv);
        }
        while (pf->ready == 0)
            pthread_cond_wait(&pf->cv, &pf->mu);
        pthread_mutex_unlock(&pf->mu);
        pf->started = 1;
        pf->pos = 0;
    }
}

int trace_reader_next(trace_reader *r, isa_insn *in, err *e)
{
    return r->pf ? pf_next(r->pf, in, e) : rd_next(r, in, e);
}

int trace_reader_rewind(trace_reader *r, err *e)
{
    if (r->pf)
        return err_set(e, "%s: cannot rewind while decoding ahead", r->path);
    if (fseek(r->f, r->hdr.header_size, SEEK_SET))
        return err_set(e, "%s: cannot rewind: %s", r->path, strerror(errno));
    clearerr(r->f);
    if (inflateReset(&r->zs) != Z_OK)
        return err_set(e, "%s: cannot reset zlib", r->path);
    rd_reset(r);
    return 0;
}

const trace_header *trace_reader_header(const trace_reader *r)
{
    return &r->hdr;
}

uint64_t trace_reader_index(const trace_reader *r)
{
    return r->pf ? r->pf->index : r->index;
}

uint64_t trace_reader_count(const trace_reader *r)
{
    return r->count;
}

uint64_t trace_reader_file_bytes(const trace_reader *r)
{
    return r->file_bytes;
}

void trace_reader_free(trace_reader *r)
{
    if (!r)
        return;
    if (r->pf) {
        trace_prefetch *pf = r->pf;
        pthread_mutex_lock(&pf->mu);
        pf->stop = 1;
        pthread_cond_signal(&pf->cv);
        pthread_mutex_unlock(&pf->mu);
        pthread_join(pf->th, NULL);
        pthread_cond_destroy(&pf->cv);
        pthread_mutex_destroy(&pf->mu);
        free(pf);
    }
    if (r->zinit)
        inflateEnd(&r->zs);
    if (r->f)
        fclose(r->f);
    free(r->path);
    free(r);
}

/* ======================================================================== writer */

struct trace_writer {
    ofile *of;
    FILE *f; /* of's stream */
    char *path;
    z_stream zs;
    int zinit;
    int failed; /* an earlier error: close removes the temporary instead of renaming */
    uint64_t count;
    uint64_t raw;
    uint32_t crc;
    size_t len; /* encoded bytes waiting in raw_buf */
    uint8_t raw_buf[TRACE_RAW_BUF];
    uint8_t zbuf[TRACE_RAW_BUF];
};

static int wr_write(trace_writer *w, const void *p, size_t n, err *e)
{
    if (n && fwrite(p, 1, n, w->f) != n) {
        w->failed = 1;
        return err_path(e, w->path, "cannot write: %s",
                        strerror(ofile_errno(w->of) ? ofile_errno(w->of) : errno));
    }
    return 0;
}

/* Compress raw_buf; flush is Z_NO_FLUSH or Z_FINISH. */
static int wr_deflate(trace_writer *w, int flush, err *e)
{
    w->zs.next_in = w->raw_buf;
    w->zs.avail_in = (uInt)w->len;
    int z;
    do {
        w->zs.next_out = w->zbuf;
        w->zs.avail_out = sizeof w->zbuf;
        z = deflate(&w->zs, flush);
        if (z == Z_STREAM_ERROR) {
            w->failed = 1;
            return err_path(e, w->path, "zlib deflate failed");
        }
        if (wr_write(w, w->zbuf, sizeof w->zbuf - w->zs.avail_out, e))
            return -1;
    } while (w->zs.avail_out == 0 || (flush == Z_FINISH && z != Z_STREAM_END));
    w->len = 0;
    return 0;
}

static void wr_free(trace_writer *w)
{
    if (w->zinit)
        deflateEnd(&w->zs);
    free(w->path);
    free(w);
}

int trace_writer_open(trace_writer **out, const char *path, const char *note, err *e)
{
    *out = NULL;
    size_t note_len = note ? strlen(note) : 0;
    if (note_len >= TRACE_NOTE_MAX)
        return err_set(e, "%s: note is %zu bytes, at most %d allowed", path, note_len,
                       TRACE_NOTE_MAX - 1);
    trace_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = trace_strdup(path, ""))) {
        free(w); /* nothing else is set up yet */
        return err_setk(e, ERR_NOMEM, "%s: out of memory", path);
    }
    if (deflateInit(&w->zs, TRACE_LEVEL) != Z_OK) {
        err_set(e, "%s: cannot initialise zlib", path);
        goto out_free;
    }
    w->zinit = 1;
    w->crc = (uint32_t)crc32(0, Z_NULL, 0);
    if (ofile_open(&w->of, path, e))
        goto out_free;
    w->f = ofile_stream(w->of);
    uint8_t h[TRACE_HDR_FIXED];
    memcpy(h, TRACE_MAGIC, 8);
    put_le(h + 8, TRACE_FORMAT_VERSION, 2);
    put_le(h + 10, ISA_VERSION, 2);
    put_le(h + 12, TRACE_HDR_FIXED + note_len, 4);
    put_le(h + 16, 0, 4);
    put_le(h + 20, note_len, 4);
    if (wr_write(w, h, sizeof h, e) || wr_write(w, note, note_len, e)) {
        trace_writer_abort(w);
        return -1;
    }
    *out = w;
    return 0;
out_free:
    wr_free(w);
    return -1;
}

int trace_writer_put(trace_writer *w, const isa_insn *in, err *e)
{
    if (w->failed)
        return err_path(e, w->path, "writer already failed");
    err ve;
    if (isa_validate(in, &ve)) {
        w->failed = 1;
        return err_set(e, "%s: instruction %llu: %s", w->path, (unsigned long long)w->count,
                       ve.msg);
    }
    size_t n = isa_encode(in, w->raw_buf + w->len);
    w->crc = (uint32_t)crc32(w->crc, w->raw_buf + w->len, (uInt)n);
    w->len += n;
    w->raw += n;
    w->count++;
    if (sizeof w->raw_buf - w->len < ISA_ENC_MAX)
        return wr_deflate(w, Z_NO_FLUSH, e);
    return 0;
}

uint64_t trace_writer_count(const trace_writer *w)
{
    return w->count;
}

int trace_writer_close(trace_writer *w, err *e)
{
    if (w->failed) {
        err_set(e, "%s: not written: an earlier write or validation failed", w->path);
        trace_writer_abort(w);
        return -1;
    }
    uint8_t t[TRACE_TRAILER_SIZE];
    put_le(t, w->count, 8);
    put_le(t + 8, w->raw, 8);
    put_le(t + 16, w->crc, 4);
    memcpy(t + 20, TRACE_TRAILER_MAGIC, 4);
    if (wr_deflate(w, Z_FINISH, e) || wr_write(w, t, sizeof t, e))
        goto out_abort;
    ofile *of = w->of;
    w->of = NULL;
    w->f = NULL;
    int rc = ofile_close(of, e);
    wr_free(w);
    return rc;
out_abort:
    trace_writer_abort(w);
    return -1;
}

void trace_writer_abort(trace_writer *w)
{
    if (!w)
        return;
    ofile_abort(w->of);
    wr_free(w);
}

/* ---- the topology line of the note ---- */

int trace_note_topology(const char *note, trace_topology *t)
{
    const char *line = NULL;
    for (const char *p = note; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, TRACE_TOPO_TAG, strlen(TRACE_TOPO_TAG)))
            line = p;
    if (!line)
        return 0;
    char dims[sizeof t->ici_dims + 1], wrap[sizeof t->ici_wrap + 1];
    unsigned long long chips, slices = 1;
    int used = 0, more = 0;
    if (sscanf(line, TRACE_TOPO_TAG " chips=%llu ici.dims=%64[0-9x] ici.wrap=%64[a-z]%n", &chips,
               dims, wrap, &used) != 3)
        return -1;
    if (!strncmp(line + used, " dcn.slices=", 12) &&
        (sscanf(line + used, " dcn.slices=%llu%n", &slices, &more) != 1 || slices < 1))
        return -1;
    used += more;
    if ((line[used] && line[used] != '\n') || !chips || strlen(dims) >= sizeof t->ici_dims ||
        strlen(wrap) >= sizeof t->ici_wrap)
        return -1;
    t->chips = chips;
    t->slices = slices;
    snprintf(t->ici_dims, sizeof t->ici_dims, "%s", dims);
    snprintf(t->ici_wrap, sizeof t->ici_wrap, "%s", strcmp(wrap, "none") ? wrap : "");
    return 1;
}

int trace_note_add_topology(char *note, size_t cap, const trace_topology *t)
{
    size_t len = strlen(note);
    int n =
        snprintf(note + len, cap - len, "%s" TRACE_TOPO_TAG " chips=%llu ici.dims=%s ici.wrap=%s",
                 len ? "\n" : "", (unsigned long long)t->chips, t->ici_dims,
                 t->ici_wrap[0] ? t->ici_wrap : "none");
    if (n >= 0 && (size_t)n < cap - len && t->slices > 1)
        n += snprintf(note + len + n, cap - len - (size_t)n, " dcn.slices=%llu",
                      (unsigned long long)t->slices);
    if (n < 0 || (size_t)n >= cap - len) {
        note[len] = 0;
        return -1;
    }
    return 0;
}
