/* test_asm.c - the assembler and disassembler: canonical text for every opcode, byte-exact
 * file round trips, and FILE:LINE error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "asm.h"
#include "harness.h"
#include "trace.h"
#include "tmpleft.h"

/* A valid instruction of opcode op with distinctive non-default values in every slot. */
static void sample_insn(unsigned op, isa_insn *in)
{
    const isa_info *info = isa_info_of(op);
    memset(in, 0, sizeof *in);
    in->op = (uint16_t)op;
    in->wait = (uint16_t)(1 + op);
    in->signal = op % 2 ? 0 : (uint16_t)(ISA_SEM_MAX - op);
    for (int i = 0; i < info->nargs; i++) {
        const isa_arg *a = &info->args[i];
        switch (a->kind) {
        case ISA_K_DTYPE:
            in->arg[i] = (op + (unsigned)i) % ISA_DTYPE_COUNT;
            break;
        case ISA_K_AXES:
            in->arg[i] = !strcmp(a->name, "axis") ? 2 : 5;
            break;
        case ISA_K_DIR:
            in->arg[i] = 1;
            break;
        case ISA_K_STR:
            in->arg[i] = (uint64_t)snprintf(in->name, sizeof in->name, "l0/\"q\"\\%u\t", op);
            break;
        default:
            in->arg[i] = a->max < 1000000 ? a->max : (uint64_t)(op + 1) * 1000003u + (unsigned)i;
            break;
        }
    }
}

static void test_asm_every_opcode_round_trips_through_canonical_text(void **state)
{
    (void)state;
    for (unsigned op = 0; op < ISA_OP_COUNT; op++) {
        isa_insn in, out;
        sample_insn(op, &in);
        err e;
        if (isa_validate(&in, &e))
            fail_msg("sample %s invalid: %s", isa_info_of(op)->mnemonic, e.msg);
        char text[512], again[512];
        int n = asm_format(&in, text, sizeof text);
        assert_int_equal(n, strlen(text));
        int r = asm_parse_line(text, "t.s", 1, &out, NULL, 0, &e);
        if (r != 1)
            fail_msg("'%s': %s", text, e.msg);
        assert_memory_equal(&in, &out, sizeof in);
        asm_format(&out, again, sizeof again);
        assert_string_equal(text, again);
    }
}

static void test_asm_canonical_form_lists_every_operand_in_table_order(void **state)
{
    (void)state;
    isa_insn in;
    err e;
    char text[256];
    assert_int_equal(asm_parse_line("  mxu.matmul dtype=bf16 m=128 src=0x1000 dst=8K mxu=1 "
                                    "wait=2",
                                    "t.s", 1, &in, NULL, 0, &e),
                     1);
    asm_format(&in, text, sizeof text);
    assert_string_equal(text, "mxu.matmul mxu=1 src=4096 dst=8192 m=128 dtype=bf16 acc=0 wait=2");
    assert_int_equal(in.wait, 3); /* stored as semaphore + 1 */
    assert_int_equal(in.signal, 0);

    assert_int_equal(asm_parse_line("ici.allreduce axes=zx bytes=2M dtype=fp32 signal=0", "t.s", 1,
                                    &in, NULL, 0, &e),
                     1);
    assert_int_equal(in.arg[ISA_COLL_AXES], 5);
    assert_int_equal(in.arg[ISA_COLL_BYTES], 2u << 20);
    asm_format(&in, text, sizeof text);
    assert_string_equal(text, "ici.allreduce axes=xz bytes=2097152 dtype=fp32 signal=0");

    assert_int_equal(asm_parse_line("ici.send axis=y dir=- bytes=1G", "t.s", 1, &in, NULL, 0, &e),
                     1);
    assert_int_equal(in.arg[ISA_P2P_DIR], 1);
    assert_int_equal(in.arg[ISA_P2P_BYTES], 1ULL << 30);
    asm_format(&in, text, sizeof text);
    assert_string_equal(text, "ici.send axis=y dir=-1 bytes=1073741824 vmem=0");

    assert_int_equal(asm_parse_line("mark name=\"layer0/fwd\"", "t.s", 1, &in, NULL, 0, &e), 1);
    assert_string_equal(in.name, "layer0/fwd");
    assert_int_equal(in.arg[0], 10);
    assert_int_equal(asm_parse_line("sync.barrier", "t.s", 1, &in, NULL, 0, &e), 1);
    asm_format(&in, text, sizeof text);
    assert_string_equal(text, "sync.barrier");
}

static void test_asm_comments_labels_and_notes_are_accepted(void **state)
{
    (void)state;
    isa_insn in;
    err e;
    char note[64] = "unset";
    assert_int_equal(asm_parse_line("", "t.s", 1, &in, note, sizeof note, &e), 0);
    assert_int_equal(asm_parse_line("   \t\n", "t.s", 1, &in, note, sizeof note, &e), 0);
    assert_int_equal(asm_parse_line("# comment", "t.s", 1, &in, note, sizeof note, &e), 0);
    assert_int_equal(asm_parse_line("  ; comment", "t.s", 1, &in, note, sizeof note, &e), 0);
    assert_int_equal(asm_parse_line("loop_1:", "t.s", 1, &in, note, sizeof note, &e), 0);
    assert_int_equal(asm_parse_line("loop_1: # c", "t.s", 1, &in, note, sizeof note, &e), 0);
    assert_string_equal(note, "unset");
    assert_int_equal(asm_parse_line("top: v.add src=1 dst=2 n=3 dtype=int8 # add ; x", "t.s", 1,
                                    &in, note, sizeof note, &e),
                     1);
    assert_int_equal(in.op, ISA_OP_V_ADD);
    assert_int_equal(in.arg[ISA_V_N], 3);
    assert_int_equal(
        asm_parse_line("mark name=\"a#b;c\" ; comment", "t.s", 1, &in, note, sizeof note, &e), 1);
    assert_string_equal(in.name, "a#b;c");
    assert_int_equal(
        asm_parse_line(".note \"gen \\\"x\\\" # y\"  # c", "t.s", 1, &in, note, sizeof note, &e),
        0);
    assert_string_equal(note, "gen \"x\" # y");
}

/* Assemble one line at line 1 and return the error message (static buffer). */
static const char *asm_error(const char *line)
{
    static err e;
    isa_insn in;
    char note[64];
    e.msg[0] = '\0';
    int r = asm_parse_line(line, "k.s", 7, &in, note, sizeof note, &e);
    if (r != -1)
        fail_msg("'%s' was accepted", line);
    return e.msg;
}

static void test_asm_errors_name_file_line_and_what_was_expected(void **state)
{
    (void)state;
    assert_string_equal(asm_error("foo x=1"), "k.s:7: unknown opcode 'foo'");
    /* did you mean: a missing or wrong unit prefix, or a typo */
    assert_string_equal(asm_error("ldw dst=0"),
                        "k.s:7: unknown opcode 'ldw' (did you mean 'mxu.ldw'?)");
    assert_string_equal(asm_error("v.ldw dst=0"),
                        "k.s:7: unknown opcode 'v.ldw' (did you mean 'mxu.ldw'?)");
    assert_string_equal(asm_error("mxu.matmull"),
                        "k.s:7: unknown opcode 'mxu.matmull' (did you mean 'mxu.matmul'?)");
    assert_string_equal(asm_error("mxu.matmul mxu=0 src=0 dst=0 dtype=bf16"),
                        "k.s:7: mxu.matmul: missing operand 'm'");
    assert_string_equal(asm_error("mxu.ldw mxu=0 vmem=0 k=0 n=128 dtype=bf16"),
                        "k.s:7: mxu.ldw: operand 'k' = 0 out of range [1, 65535]");
    assert_string_equal(asm_error("mxu.ldw mxu=256 vmem=0 k=1 n=128 dtype=bf16"),
                        "k.s:7: mxu.ldw: operand 'mxu' = 256 out of range [0, 255]");
    assert_string_equal(asm_error("v.add src=0 dst=0 n=1 dtype=bf16 width=3"),
                        "k.s:7: v.add: unknown operand 'width' (expected src dst n dtype wait "
                        "signal)");
    assert_string_equal(asm_error("v.add src=0 dst=0 n=1 n=2 dtype=bf16"),
                        "k.s:7: v.add: duplicate operand 'n'");
    assert_string_equal(asm_error("v.add src=0 dst=0 n=1 dtype=bf16 wait=1 wait=1"),
                        "k.s:7: v.add: duplicate operand 'wait'");
    assert_string_equal(asm_error("v.add src=0 dst=zero n=1 dtype=bf16"),
                        "k.s:7: v.add: operand 'dst': bad integer 'zero' (expected decimal or "
                        "0x hex, optional K/M/G suffix)");
    assert_string_equal(asm_error("v.add src=0 dst=0 n=1 dtype=fp16"),
                        "k.s:7: v.add: operand 'dtype': unknown dtype 'fp16' (expected bf16, "
                        "int8, fp8, fp32, int4)");
    assert_string_equal(asm_error("v.add src=0 dst=0 n=1 dtype=bf16 wait=4096"),
                        "k.s:7: v.add: operand 'wait' = 4096 out of range [0, 4095]");
    assert_string_equal(asm_error("v.add src=0 dst=0 n=0x1G0 dtype=bf16"),
                        "k.s:7: v.add: operand 'n': bad integer '0x1G0' (expected decimal or "
                        "0x hex, optional K/M/G suffix)");
    assert_string_equal(asm_error("dma.h2v hbm=0 vmem=0 bytes=99999999999999999999"),
                        "k.s:7: dma.h2v: operand 'bytes': value '99999999999999999999' does "
                        "not fit in 64 bits");
    assert_string_equal(asm_error("dma.h2v hbm=0 vmem=0 bytes=0xffffffffffffffffK"),
                        "k.s:7: dma.h2v: operand 'bytes': value '0xffffffffffffffffK' does "
                        "not fit in 64 bits");
    assert_string_equal(asm_error("ici.allgather axes=xw bytes=1 dtype=bf16"),
                        "k.s:7: ici.allgather: operand 'axes': bad axes 'xw' (expected distinct "
                        "letters from xyz)");
    assert_string_equal(asm_error("ici.allgather axes=xx bytes=1 dtype=bf16"),
                        "k.s:7: ici.allgather: operand 'axes': bad axes 'xx' (expected distinct "
                        "letters from xyz)");
    assert_string_equal(asm_error("ici.recv axis=x dir=2 bytes=1"),
                        "k.s:7: ici.recv: operand 'dir': bad direction '2' (expected +1 or -1)");
    assert_string_equal(asm_error("mark name=\"abc"),
                        "k.s:7: mark: operand 'name': unterminated string (expected a closing "
                        "'\"')");
    assert_string_equal(asm_error("mark name=abc"),
                        "k.s:7: mark: operand 'name': expected a double-quoted string");
    assert_string_equal(asm_error("mark name=\"0123456789012345678901234567890123456789012345678"
                                  "\""),
                        "k.s:7: mark: operand 'name': string longer than 47 bytes");
    assert_string_equal(asm_error("v.add src=0 dst=0 n=1 dtype=bf16 junk"),
                        "k.s:7: v.add: expected key=value, got 'junk'");
    assert_string_equal(asm_error(".title \"x\""),
                        "k.s:7: unknown directive '.title' (expected .note)");
}

static void test_asm_file_round_trip_is_byte_identical(void **state)
{
    (void)state;
    char src[128], t1[128], dis[128], t2[128];
    harness_path("prog.s", src, sizeof src);
    harness_path("prog.tpt", t1, sizeof t1);
    harness_path("prog.dis.s", dis, sizeof dis);
    harness_path("prog2.tpt", t2, sizeof t2);
    harness_write(src, "# a small program\n"
                       ".note \"tpusim gen \\\"demo\\\" \\\\ --x\\n2\"\n"
                       "start:\n"
                       "  mark name=\"layer0/fwd\"\n"
                       "  dma.h2v hbm=0x100000 vmem=0 bytes=64K signal=0   ; load weights\n"
                       "  mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=0 signal=1\n"
                       "body: mxu.matmul mxu=0 src=64K dst=128K m=1024 dtype=bf16 wait=1\n"
                       "  v.cast src=128K dst=0 n=131072 dtype=fp32 to=bf16\n"
                       "  v.reduce src=0 dst=4K n=1024 dtype=fp32 width=128\n"
                       "  ici.allreduce axes=xyz bytes=1M dtype=bf16\n"
                       "  ici.send axis=z dir=+1 bytes=4K vmem=8K\n"
                       "  sync.signal signal=7\n"
                       "  sync.wait wait=7\n"
                       "  sync.barrier\n"
                       "  nop\n");
    err e;
    if (asm_file(src, t1, &e))
        fail_msg("%s", e.msg);
    FILE *f = fopen(dis, "w");
    assert_non_null(f);
    if (asm_disasm_file(t1, f, &e))
        fail_msg("%s", e.msg);
    fclose(f);
    if (asm_file(dis, t2, &e))
        fail_msg("%s", e.msg);
    size_t n1, n2, nd;
    char *b1 = harness_slurp(t1, &n1), *b2 = harness_slurp(t2, &n2), *d = harness_slurp(dis, &nd);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    const char *want = ".note \"tpusim gen \\\"demo\\\" \\\\ --x\\n2\"\n"
                       "mark name=\"layer0/fwd\"\n"
                       "dma.h2v hbm=1048576 vmem=0 bytes=65536 stride=0 block=0 signal=0\n"
                       "mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=0 signal=1\n";
    assert_memory_equal(d, want, strlen(want));
    assert_non_null(strstr(d, "\nnop\n"));

    trace_reader *r;
    assert_int_equal(trace_reader_open(&r, t1, &e), 0);
    assert_string_equal(trace_reader_header(r)->note, "tpusim gen \"demo\" \\ --x\n2");
    assert_int_equal(trace_reader_count(r), 12);
    trace_reader_free(r);
    free(b1);
    free(b2);
    free(d);
}

static void test_asm_file_error_names_line_and_leaves_no_output(void **state)
{
    (void)state;
    char src[128], out[128], want[256];
    harness_path("bad.s", src, sizeof src);
    harness_path("bad.tpt", out, sizeof out);
    harness_write(src, "nop\n# fine so far\nnop\nv.add src=0 dst=0 n=1\nnop\n");
    err e;
    assert_int_equal(asm_file(src, out, &e), -1);
    snprintf(want, sizeof want, "%s:4: v.add: missing operand 'dtype'", src);
    assert_string_equal(e.msg, want);
    assert_false(harness_exists(out));
    assert_int_equal(tmp_left(out), 0);

    harness_write(src, "nop\n.note \"late\"\n");
    assert_int_equal(asm_file(src, out, &e), -1);
    snprintf(want, sizeof want, "%s:2: .note must come once, before the first instruction", src);
    assert_string_equal(e.msg, want);
    assert_false(harness_exists(out));
    assert_int_equal(tmp_left(out), 0);

    harness_path("missing.s", src, sizeof src);
    assert_int_equal(asm_file(src, out, &e), -1);
    assert_non_null(strstr(e.msg, src));
    assert_false(harness_exists(out));
}

static void test_asm_empty_source_gives_an_empty_trace(void **state)
{
    (void)state;
    char src[128], out[128];
    harness_path("empty.s", src, sizeof src);
    harness_path("empty.tpt", out, sizeof out);
    harness_write(src, "# nothing\n\n");
    err e;
    assert_int_equal(asm_file(src, out, &e), 0);
    trace_reader *r;
    assert_int_equal(trace_reader_open(&r, out, &e), 0);
    isa_insn in;
    assert_int_equal(trace_reader_next(r, &in, &e), 0);
    trace_reader_free(r);
}

/* Write len bytes (NULs included) to path. */
static void write_bytes(const char *path, const char *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

/* asm(disasm(t)) into t2, and whether t2 has the bytes of t. */
static int round_trips(const char *t, const char *dis, const char *t2)
{
    err e;
    FILE *f = fopen(dis, "w");
    assert_non_null(f);
    if (asm_disasm_file(t, f, &e))
        fail_msg("%s", e.msg);
    fclose(f);
    if (asm_file(dis, t2, &e))
        fail_msg("%s", e.msg);
    size_t n1, n2;
    char *b1 = harness_slurp(t, &n1), *b2 = harness_slurp(t2, &n2);
    int same = n1 == n2 && !memcmp(b1, b2, n1);
    free(b1);
    free(b2);
    return same;
}

/* A NUL used to end the line silently there: `mark name="a` became an unterminated string
 * at best, and `nop\0garbage` assembled as nop. */
static void test_asm_nul_byte_is_an_error_naming_line_and_column(void **state)
{
    (void)state;
    char src[128], out[128], tmp[128], want[256];
    harness_path("nul.s", src, sizeof src);
    harness_path("nul.tpt", out, sizeof out);
    harness_path("nul.tpt.tmp", tmp, sizeof tmp);
    static const char text[] = "nop\nnop\0 garbage\nnop\n";
    write_bytes(src, text, sizeof text - 1);
    err e;
    assert_int_equal(asm_file(src, out, &e), -1);
    snprintf(want, sizeof want, "%s:2:4: NUL byte (expected text; is this a binary file?)", src);
    assert_string_equal(e.msg, want);
    assert_false(harness_exists(out));
    assert_false(harness_exists(tmp));

    static const char in_comment[] = "nop # a\0b\n";
    write_bytes(src, in_comment, sizeof in_comment - 1);
    assert_int_equal(asm_file(src, out, &e), -1);
    assert_non_null(strstr(e.msg, ":1:8: NUL byte"));
    assert_false(harness_exists(out));
}

/* A UTF-8 byte-order mark before the first line gave "unknown opcode 'nop'". */
static void test_asm_utf8_bom_at_start_is_skipped(void **state)
{
    (void)state;
    char src[128], out[128], plain_src[128], plain[128];
    harness_path("bom.s", src, sizeof src);
    harness_path("bom.tpt", out, sizeof out);
    harness_path("nobom.s", plain_src, sizeof plain_src);
    harness_path("nobom.tpt", plain, sizeof plain);
    harness_write(src, "\xef\xbb\xbfnop\nv.add src=0 dst=4096 n=1024 dtype=bf16\n");
    harness_write(plain_src, "nop\nv.add src=0 dst=4096 n=1024 dtype=bf16\n");
    err e;
    if (asm_file(src, out, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(asm_file(plain_src, plain, &e), 0);
    size_t n1, n2;
    char *b1 = harness_slurp(out, &n1), *b2 = harness_slurp(plain, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
    /* Only at the start of the file: elsewhere it is not white space. */
    harness_write(src, "nop\n\xef\xbb\xbfnop\n");
    assert_int_equal(asm_file(src, out, &e), -1);
    assert_non_null(strstr(e.msg, ":2: unknown opcode"));
}

/* Every note byte but NUL survives asm(disasm(t)) byte for byte; a note holding a NUL
 * (which disasm could only cut) is refused by the reader, naming the byte. */
static void test_asm_note_bytes_round_trip_and_nul_in_note_is_refused(void **state)
{
    (void)state;
    char t[128], dis[128], t2[128];
    harness_path("note.tpt", t, sizeof t);
    harness_path("note.dis.s", dis, sizeof dis);
    harness_path("note2.tpt", t2, sizeof t2);
    char note[256];
    for (int i = 1; i < 256; i++)
        note[i - 1] = (char)i;
    note[255] = '\0';
    err e;
    trace_writer *w;
    assert_int_equal(trace_writer_open(&w, t, note, &e), 0);
    isa_insn in = {.op = ISA_OP_NOP};
    assert_int_equal(trace_writer_put(w, &in, &e), 0);
    assert_int_equal(trace_writer_close(w, &e), 0);
    assert_true(round_trips(t, dis, t2));

    /* Damage note byte 10 (file byte 24 + 10) to NUL. */
    size_t n;
    char *b = harness_slurp(t, &n);
    b[24 + 10] = '\0';
    write_bytes(t, b, n);
    free(b);
    trace_reader *r;
    assert_int_equal(trace_reader_open(&r, t, &e), -1);
    assert_non_null(strstr(e.msg, "byte 34: NUL byte in the note"));
    FILE *f = fopen(dis, "w");
    assert_non_null(f);
    assert_int_equal(asm_disasm_file(t, f, &e), -1);
    fclose(f);
    assert_non_null(strstr(e.msg, "byte 34: NUL byte in the note"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_asm_every_opcode_round_trips_through_canonical_text),
        cmocka_unit_test(test_asm_canonical_form_lists_every_operand_in_table_order),
        cmocka_unit_test(test_asm_comments_labels_and_notes_are_accepted),
        cmocka_unit_test(test_asm_errors_name_file_line_and_what_was_expected),
        cmocka_unit_test(test_asm_file_round_trip_is_byte_identical),
        cmocka_unit_test(test_asm_file_error_names_line_and_leaves_no_output),
        cmocka_unit_test(test_asm_empty_source_gives_an_empty_trace),
        cmocka_unit_test(test_asm_nul_byte_is_an_error_naming_line_and_column),
        cmocka_unit_test(test_asm_utf8_bom_at_start_is_skipped),
        cmocka_unit_test(test_asm_note_bytes_round_trip_and_nul_in_note_is_refused),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
