/* test_trace.c - the trace file: write/read round trips, constant-memory streaming, and
 * detection of truncation, corruption, bad headers and half-written files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "trace.h"
#include "tmpleft.h"

/* The i-th instruction of a deterministic mix over every unit. */
static void make_insn(uint64_t i, isa_insn *in)
{
    memset(in, 0, sizeof *in);
    switch (i % 6) {
    case 0:
        in->op = ISA_OP_DMA_H2V;
        in->arg[ISA_DMA_HBM] = i * 4096;
        in->arg[ISA_DMA_VMEM] = (i % 64) * 1024;
        in->arg[ISA_DMA_BYTES] = 1024 + i % 4096;
        break;
    case 1:
        in->op = ISA_OP_MXU_LDW;
        in->arg[ISA_LDW_MXU] = i % 4;
        in->arg[ISA_LDW_K] = 128;
        in->arg[ISA_LDW_N] = 1 + i % 128;
        in->arg[ISA_LDW_DTYPE] = ISA_DT_BF16;
        in->signal = (uint16_t)(1 + i % 16);
        break;
    case 2:
        in->op = ISA_OP_MXU_MATMUL;
        in->arg[ISA_MM_MXU] = i % 4;
        in->arg[ISA_MM_SRC] = i;
        in->arg[ISA_MM_DST] = i * 3;
        in->arg[ISA_MM_M] = 1 + i % 1000;
        in->arg[ISA_MM_DTYPE] = ISA_DT_INT8;
        in->arg[ISA_MM_ACC] = i & 1;
        in->wait = (uint16_t)(1 + i % 16);
        break;
    case 3:
        in->op = ISA_OP_V_REDUCE;
        in->arg[ISA_V_N] = 1 + i;
        in->arg[ISA_V_DTYPE] = ISA_DT_FP32;
        in->arg[ISA_V_EXTRA] = i % 256;
        break;
    case 4:
        in->op = ISA_OP_ICI_ALLREDUCE;
        in->arg[ISA_COLL_AXES] = 1 + i % 7;
        in->arg[ISA_COLL_BYTES] = 1 + i * 17;
        in->arg[ISA_COLL_DTYPE] = ISA_DT_BF16;
        break;
    default:
        in->op = ISA_OP_MARK;
        in->arg[0] =
            (uint64_t)snprintf(in->name, sizeof in->name, "layer%llu/fwd", (unsigned long long)i);
        break;
    }
}

static void write_trace(const char *path, const char *note, uint64_t n)
{
    trace_writer *w;
    err e;
    if (trace_writer_open(&w, path, note, &e))
        fail_msg("%s", e.msg);
    isa_insn in;
    for (uint64_t i = 0; i < n; i++) {
        make_insn(i, &in);
        if (trace_writer_put(w, &in, &e))
            fail_msg("%s", e.msg);
    }
    assert_int_equal(trace_writer_count(w), n);
    if (trace_writer_close(w, &e))
        fail_msg("%s", e.msg);
}

/* Read path to the end (decoding on a second thread if `prefetch`), comparing with
 * make_insn; returns trace_reader_next's final value (0 verified end, -1 error in e) and the
 * number read in *nread. */
static int read_trace_with(const char *path, uint64_t *nread, err *e, int prefetch)
{
    trace_reader *r;
    *nread = 0;
    if (trace_reader_open(&r, path, e))
        return -1;
    if (prefetch && trace_reader_prefetch(r, e))
        fail_msg("%s", e->msg);
    isa_insn in, want;
    int rc;
    while ((rc = trace_reader_next(r, &in, e)) == 1) {
        make_insn(*nread, &want);
        assert_memory_equal(&in, &want, sizeof in);
        (*nread)++;
    }
    assert_int_equal(trace_reader_index(r), *nread);
    assert_int_equal(trace_reader_next(r, &in, NULL), rc); /* the end is sticky */
    trace_reader_free(r);
    return rc;
}

static int read_trace(const char *path, uint64_t *nread, err *e)
{
    return read_trace_with(path, nread, e, 0);
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

static void copy_prefix(const char *from, const char *to, long n)
{
    FILE *f = fopen(from, "rb"), *g = fopen(to, "wb");
    assert_non_null(f);
    assert_non_null(g);
    for (long i = 0; i < n; i++)
        fputc(fgetc(f), g);
    fclose(f);
    fclose(g);
}

static void patch_byte(const char *path, long off, int value)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, off, SEEK_SET);
    fputc(value, f);
    fclose(f);
}

static int read_byte(const char *path, long off)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fclose(f);
    return c;
}

static void test_trace_round_trips_instructions_note_and_rewind(void **state)
{
    (void)state;
    char p[128];
    harness_path("rt.tpt", p, sizeof p);
    write_trace(p, "tpusim gen mlp --layers 3", 5000);
    assert_int_equal(tmp_left(p), 0);

    trace_reader *r;
    err e;
    if (trace_reader_open(&r, p, &e))
        fail_msg("%s", e.msg);
    const trace_header *h = trace_reader_header(r);
    assert_int_equal(h->format_version, TRACE_FORMAT_VERSION);
    assert_int_equal(h->isa_version, ISA_VERSION);
    assert_int_equal(h->header_size, 24 + strlen("tpusim gen mlp --layers 3"));
    assert_string_equal(h->note, "tpusim gen mlp --layers 3");
    assert_int_equal(trace_reader_count(r), 5000);
    assert_int_equal(trace_reader_file_bytes(r), file_size(p));
    for (int pass = 0; pass < 2; pass++) {
        isa_insn in, want;
        for (uint64_t i = 0; i < 5000; i++) {
            assert_int_equal(trace_reader_next(r, &in, &e), 1);
            make_insn(i, &want);
            assert_memory_equal(&in, &want, sizeof in);
        }
        assert_int_equal(trace_reader_index(r), 5000);
        assert_int_equal(trace_reader_next(r, &in, &e), 0);
        assert_int_equal(trace_reader_next(r, &in, &e), 0); /* end is sticky */
        assert_int_equal(trace_reader_rewind(r, &e), 0);
        assert_int_equal(trace_reader_index(r), 0);
    }
    trace_reader_free(r);
}

static void test_trace_empty_trace_without_note_reads_back_empty(void **state)
{
    (void)state;
    char p[128];
    harness_path("empty.tpt", p, sizeof p);
    write_trace(p, NULL, 0);
    uint64_t n;
    err e;
    assert_int_equal(read_trace(p, &n, &e), 0);
    assert_int_equal(n, 0);
}

/* The reader holds fixed-size buffers: a trace much larger than them streams through with
 * every instruction intact and the trailer verified at the end. */
static void test_trace_streams_a_million_instructions(void **state)
{
    (void)state;
    char p[128];
    harness_path("big.tpt", p, sizeof p);
    write_trace(p, "big", 1000000);
    uint64_t n;
    err e;
    int rc = read_trace(p, &n, &e);
    if (rc)
        fail_msg("%s", e.msg);
    assert_int_equal(n, 1000000);
    /* Bigger than the reader's 64 KiB input buffer, so it really was streamed. */
    assert_true(file_size(p) > 4 * 64 * 1024);
    unlink(p);
}

static void test_trace_truncation_reports_byte_and_instruction(void **state)
{
    (void)state;
    char p[128], q[128];
    harness_path("full.tpt", p, sizeof p);
    harness_path("cut.tpt", q, sizeof q);
    write_trace(p, "n", 20000);
    long size = file_size(p);
    long cuts[] = {25 + 2,     25 + 100,  size / 3,  size / 2,
                   size - 100, size - 24, size - 10, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        copy_prefix(p, q, cuts[i]);
        uint64_t n;
        err e = {0};
        int rc = read_trace(q, &n, &e);
        if (rc != -1)
            fail_msg("cut at %ld of %ld: not detected (rc %d)", cuts[i], size, rc);
        assert_non_null(strstr(e.msg, q));
        assert_non_null(strstr(e.msg, "byte "));
        assert_non_null(strstr(e.msg, "instruction "));
        assert_non_null(strstr(e.msg, "truncated"));
    }
}

static void test_trace_flipped_body_byte_is_detected(void **state)
{
    (void)state;
    char p[128];
    harness_path("flip.tpt", p, sizeof p);
    write_trace(p, "", 3000);
    long size = file_size(p);
    long body = 24, end = size - 24;
    for (int k = 1; k < 8; k++) {
        write_trace(p, "", 3000);
        long off = body + (end - body) * k / 8;
        patch_byte(p, off, read_byte(p, off) ^ 0x5a);
        uint64_t n;
        err e = {0};
        if (read_trace(p, &n, &e) != -1)
            fail_msg("flip at %ld not detected", off);
        assert_non_null(strstr(e.msg, "byte "));
        assert_non_null(strstr(e.msg, "instruction "));
    }
}

static void test_trace_trailer_mismatches_are_detected(void **state)
{
    (void)state;
    char p[128];
    harness_path("trl.tpt", p, sizeof p);
    static const struct {
        long from_end;
        const char *what;
    } cases[] = {{24, "trailer says"}, {16, "trailer says"}, {8, "crc32"}, {4, "TEND"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_trace(p, NULL, 100);
        long off = file_size(p) - cases[i].from_end;
        patch_byte(p, off, read_byte(p, off) ^ 1);
        uint64_t n;
        err e = {0};
        assert_int_equal(read_trace(p, &n, &e), -1);
        assert_int_equal(n, 100);
        if (!strstr(e.msg, cases[i].what))
            fail_msg("expected '%s' in: %s", cases[i].what, e.msg);
    }
}

static void test_trace_trailing_garbage_is_detected(void **state)
{
    (void)state;
    char p[128];
    harness_path("garbage.tpt", p, sizeof p);
    write_trace(p, NULL, 10);
    FILE *f = fopen(p, "ab");
    fputs("junk", f);
    fclose(f);
    uint64_t n;
    err e = {0};
    assert_int_equal(read_trace(p, &n, &e), -1);
    assert_non_null(strstr(e.msg, "trailing garbage"));
}

static void test_trace_wrong_magic_is_rejected_at_byte_0(void **state)
{
    (void)state;
    char p[128], want[256];
    harness_path("magic.tpt", p, sizeof p);
    write_trace(p, NULL, 10);
    patch_byte(p, 3, 'X');
    trace_reader *r = (trace_reader *)1;
    err e;
    assert_int_equal(trace_reader_open(&r, p, &e), -1);
    assert_null(r);
    snprintf(want, sizeof want, "%s: byte 0: bad magic, expected TPUTRACE", p);
    assert_string_equal(e.msg, want);
}

static void test_trace_wrong_versions_name_both_versions(void **state)
{
    (void)state;
    char p[128], want[256];
    harness_path("ver.tpt", p, sizeof p);
    write_trace(p, NULL, 10);
    patch_byte(p, 8, 7);
    trace_reader *r;
    err e;
    assert_int_equal(trace_reader_open(&r, p, &e), -1);
    snprintf(want, sizeof want, "%s: byte 8: trace format version 7, expected %d", p,
             TRACE_FORMAT_VERSION);
    assert_memory_equal(e.msg, want, strlen(want));

    write_trace(p, NULL, 10);
    patch_byte(p, 10, 9);
    assert_int_equal(trace_reader_open(&r, p, &e), -1);
    snprintf(want, sizeof want, "%s: byte 10: ISA version 9, expected %d", p, ISA_VERSION);
    assert_memory_equal(e.msg, want, strlen(want));

    write_trace(p, NULL, 10);
    patch_byte(p, 12, 99); /* header size disagrees with the note length */
    assert_int_equal(trace_reader_open(&r, p, &e), -1);
    assert_non_null(strstr(e.msg, "byte 12: header size 99"));
}

static void test_trace_missing_file_names_the_path(void **state)
{
    (void)state;
    char p[128];
    harness_path("does-not-exist.tpt", p, sizeof p);
    trace_reader *r;
    err e;
    assert_int_equal(trace_reader_open(&r, p, &e), -1);
    assert_null(r);
    assert_non_null(strstr(e.msg, p));
    assert_non_null(strstr(e.msg, "No such file"));
}

/* Decoding ahead hands out the same instructions, in batches of 512: traces ending before,
 * at and after batch and ring boundaries. */
static void test_trace_prefetch_matches_plain_reading(void **state)
{
    (void)state;
    const uint64_t sizes[] = {0, 1, 511, 512, 513, 2048, 2049, 20000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char p[128];
        harness_path("pf.tpt", p, sizeof p);
        write_trace(p, "pf", sizes[i]);
        uint64_t n;
        err e;
        assert_int_equal(read_trace_with(p, &n, &e, 1), 0);
        assert_int_equal(n, sizes[i]);
    }
}

/* Read path to the end whatever it holds (a corrupt stream may decode to other valid
 * instructions before its CRC fails): returns the final value, the count and a hash of
 * every instruction handed out. */
static int drain(const char *path, int prefetch, uint64_t *n, uint64_t *hash, err *e)
{
    trace_reader *r;
    *n = 0;
    *hash = 1469598103934665603ULL; /* FNV-1a */
    if (trace_reader_open(&r, path, e))
        return -2;
    if (prefetch && trace_reader_prefetch(r, e))
        fail_msg("%s", e->msg);
    isa_insn in;
    int rc;
    while ((rc = trace_reader_next(r, &in, e)) == 1) {
        const unsigned char *b = (const unsigned char *)&in;
        for (size_t i = 0; i < sizeof in; i++)
            *hash = (*hash ^ b[i]) * 1099511628211ULL;
        (*n)++;
    }
    trace_reader_free(r);
    return rc;
}

/* Truncated and corrupted traces: the same instructions, then the same one-line error,
 * with or without the decoding thread. */
static void test_trace_prefetch_reports_the_same_errors(void **state)
{
    (void)state;
    char p[128], q[128];
    harness_path("pfe.tpt", p, sizeof p);
    harness_path("pfe-bad.tpt", q, sizeof q);
    write_trace(p, "n", 20000);
    long size = file_size(p);
    for (int k = 0; k < 6; k++) {
        if (k < 3) {
            copy_prefix(p, q, size * (k + 1) / 4);
        } else {
            copy_prefix(p, q, size);
            long off = size * (k - 2) / 4;
            patch_byte(q, off, read_byte(q, off) ^ 0x5a);
        }
        uint64_t n0, n1, h0, h1;
        err e0 = {0}, e1 = {0};
        int rc0 = drain(q, 0, &n0, &h0, &e0);
        int rc1 = drain(q, 1, &n1, &h1, &e1);
        assert_int_equal(rc0, -1);
        assert_int_equal(rc1, -1);
        assert_int_equal(n0, n1);
        assert_true(h0 == h1);
        assert_string_equal(e0.msg, e1.msg);
    }
}

/* Freeing a reader whose thread is still decoding (or has not been read from at all) stops
 * the thread; rewinding while it runs is refused. */
static void test_trace_prefetch_stops_when_freed_early(void **state)
{
    (void)state;
    char p[128];
    harness_path("pfs.tpt", p, sizeof p);
    write_trace(p, NULL, 100000);
    for (int reads = 0; reads <= 1000; reads += 1000) {
        trace_reader *r;
        err e;
        if (trace_reader_open(&r, p, &e) || trace_reader_prefetch(r, &e))
            fail_msg("%s", e.msg);
        isa_insn in, want;
        for (int i = 0; i < reads; i++) {
            assert_int_equal(trace_reader_next(r, &in, &e), 1);
            make_insn((uint64_t)i, &want);
            assert_memory_equal(&in, &want, sizeof in);
        }
        assert_int_equal(trace_reader_index(r), reads);
        assert_int_not_equal(trace_reader_rewind(r, &e), 0);
        assert_non_null(strstr(e.msg, "decoding ahead"));
        trace_reader_free(r);
    }
}

static void test_trace_writer_abort_leaves_no_file(void **state)
{
    (void)state;
    char p[128];
    harness_path("abort.tpt", p, sizeof p);
    trace_writer *w;
    err e;
    assert_int_equal(trace_writer_open(&w, p, "x", &e), 0);
    isa_insn in;
    for (int i = 0; i < 100; i++) {
        make_insn(i, &in);
        assert_int_equal(trace_writer_put(w, &in, &e), 0);
    }
    assert_int_equal(tmp_left(p), 1); /* writing goes to the temporary ... */
    assert_false(harness_exists(p));  /* ... never to the final name before close */
    trace_writer_abort(w);
    assert_false(harness_exists(p));
    assert_int_equal(tmp_left(p), 0);
}

static void test_trace_writer_validation_failure_leaves_no_file(void **state)
{
    (void)state;
    char p[128];
    harness_path("invalid.tpt", p, sizeof p);
    trace_writer *w;
    err e;
    assert_int_equal(trace_writer_open(&w, p, NULL, &e), 0);
    isa_insn in;
    make_insn(0, &in);
    assert_int_equal(trace_writer_put(w, &in, &e), 0);
    make_insn(1, &in);
    in.arg[ISA_LDW_K] = 0;
    assert_int_equal(trace_writer_put(w, &in, &e), -1);
    assert_non_null(strstr(e.msg, "instruction 1: mxu.ldw: operand 'k' = 0 out of range"));
    assert_int_equal(trace_writer_close(w, &e), -1);
    assert_false(harness_exists(p));
    assert_int_equal(tmp_left(p), 0);
}

static void test_trace_writer_rejects_oversized_note(void **state)
{
    (void)state;
    char p[128];
    harness_path("note.tpt", p, sizeof p);
    char *note = malloc(TRACE_NOTE_MAX + 1);
    memset(note, 'n', TRACE_NOTE_MAX);
    note[TRACE_NOTE_MAX] = '\0';
    trace_writer *w;
    err e;
    assert_int_equal(trace_writer_open(&w, p, note, &e), -1);
    assert_null(w);
    note[TRACE_NOTE_MAX - 1] = '\0'; /* the largest note that fits */
    assert_int_equal(trace_writer_open(&w, p, note, &e), 0);
    assert_int_equal(trace_writer_close(w, &e), 0);
    trace_reader *r;
    assert_int_equal(trace_reader_open(&r, p, &e), 0);
    assert_int_equal(strlen(trace_reader_header(r)->note), TRACE_NOTE_MAX - 1);
    trace_reader_free(r);
    free(note);
}

static void test_trace_writer_reports_uncreatable_path(void **state)
{
    (void)state;
    char p[128];
    harness_path("no/such/dir/x.tpt", p, sizeof p);
    trace_writer *w = (trace_writer *)1;
    err e;
    assert_int_equal(trace_writer_open(&w, p, NULL, &e), -1);
    assert_null(w);
    assert_non_null(strstr(e.msg, "x.tpt: cannot create: No such file or directory"));
}

static void test_trace_note_topology_line_round_trips_and_rejects_garbage(void **state)
{
    (void)state;
    char note[TRACE_NOTE_MAX] = "tpusim gen gemm -c v7";
    trace_topology t = {.chips = 2, .ici_dims = "2", .ici_wrap = ""}, r;
    assert_int_equal(trace_note_topology(note, &r), 0); /* an older note: no topology */
    assert_int_equal(trace_note_add_topology(note, sizeof note, &t), 0);
    assert_string_equal(note, "tpusim gen gemm -c v7\ntopology: chips=2 ici.dims=2 ici.wrap=none");
    assert_int_equal(trace_note_topology(note, &r), 1);
    assert_int_equal(r.chips, 2);
    assert_string_equal(r.ici_dims, "2");
    assert_string_equal(r.ici_wrap, "");
    assert_int_equal(trace_note_topology("topology: chips=64 ici.dims=4x4x4 ici.wrap=xyz", &r), 1);
    assert_string_equal(r.ici_wrap, "xyz");
    assert_int_equal(r.slices, 1); /* one slice unless it says otherwise */
    /* Several slices over the data-centre network: written only when more than one. */
    char multi[TRACE_NOTE_MAX] = "";
    trace_topology ts = {.chips = 64, .ici_dims = "4x4x4", .ici_wrap = "xyz", .slices = 2};
    assert_int_equal(trace_note_add_topology(multi, sizeof multi, &ts), 0);
    assert_string_equal(multi, "topology: chips=64 ici.dims=4x4x4 ici.wrap=xyz dcn.slices=2");
    assert_int_equal(trace_note_topology(multi, &r), 1);
    assert_int_equal(r.slices, 2);
    assert_int_equal(r.chips, 64);
    assert_int_equal(
        trace_note_topology("topology: chips=2 ici.dims=2 ici.wrap=x dcn.slices=0", &r), -1);
    assert_int_equal(
        trace_note_topology("topology: chips=2 ici.dims=2 ici.wrap=x dcn.slices=2 junk", &r), -1);
    assert_int_equal(trace_note_topology("x\ntopology: chips=0 ici.dims=2 ici.wrap=x", &r), -1);
    assert_int_equal(trace_note_topology("topology: chips=2 ici.dims=2", &r), -1);
    assert_int_equal(trace_note_topology("topology: chips=2 ici.dims=2 ici.wrap=x junk", &r), -1);
    /* A "topology:" inside a line is not the topology line. */
    assert_int_equal(trace_note_topology("tpusim gen x topology: chips=2", &r), 0);
    char small[24] = "tpusim gen gemm";
    assert_int_equal(trace_note_add_topology(small, sizeof small, &t), -1);
    assert_string_equal(small, "tpusim gen gemm");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_note_topology_line_round_trips_and_rejects_garbage),
        cmocka_unit_test(test_trace_round_trips_instructions_note_and_rewind),
        cmocka_unit_test(test_trace_empty_trace_without_note_reads_back_empty),
        cmocka_unit_test(test_trace_streams_a_million_instructions),
        cmocka_unit_test(test_trace_truncation_reports_byte_and_instruction),
        cmocka_unit_test(test_trace_flipped_body_byte_is_detected),
        cmocka_unit_test(test_trace_trailer_mismatches_are_detected),
        cmocka_unit_test(test_trace_trailing_garbage_is_detected),
        cmocka_unit_test(test_trace_wrong_magic_is_rejected_at_byte_0),
        cmocka_unit_test(test_trace_wrong_versions_name_both_versions),
        cmocka_unit_test(test_trace_missing_file_names_the_path),
        cmocka_unit_test(test_trace_prefetch_matches_plain_reading),
        cmocka_unit_test(test_trace_prefetch_reports_the_same_errors),
        cmocka_unit_test(test_trace_prefetch_stops_when_freed_early),
        cmocka_unit_test(test_trace_writer_abort_leaves_no_file),
        cmocka_unit_test(test_trace_writer_validation_failure_leaves_no_file),
        cmocka_unit_test(test_trace_writer_rejects_oversized_note),
        cmocka_unit_test(test_trace_writer_reports_uncreatable_path),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
