/* fuzz_asm.c - libFuzzer harness for the assembler: any text, line by line and as a whole
 * file, must assemble or give one error, never crash; a failed assembly leaves no output
 * (nor OUT.tmp); and whatever assembles must round-trip: asm(disasm(t)) == t byte for byte. */
#include "fuzz_util.h"

#include "asm.h"
#include "trace.h"

static void parse_lines(const uint8_t *data, size_t size)
{
    char line[4096], note[256];
    size_t start = 0;
    unsigned lineno = 0;
    while (fuzz_next_line(data, size, &start, line, sizeof line)) {
        isa_insn in;
        err e;
        e.msg[0] = '\0';
        int r = asm_parse_line(line, "fuzz.s", ++lineno, &in, note, sizeof note, &e);
        if (r < -1 || r > 1)
            abort();
        if (r == -1 && strncmp(e.msg, "fuzz.s:", 7)) {
            fprintf(stderr, "error message does not name the file and line: '%s'\n", e.msg);
            abort();
        }
        if (r == 1) {
            /* What parsed must validate and format back to text that parses the same. */
            if (isa_validate(&in, &e))
                abort();
            char text[1024];
            isa_insn back;
            asm_format(&in, text, sizeof text);
            if (asm_parse_line(text, "canon", 1, &back, NULL, 0, &e) != 1 ||
                memcmp(&back, &in, sizeof in)) {
                fprintf(stderr, "canonical form '%s' does not reparse equal\n", text);
                abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_lines(data, size);

    char src[512], out[512], tmp[520], dis[512], out2[512];
    fuzz_path(src, sizeof src, "in.s");
    fuzz_path(out, sizeof out, "out.tpt");
    fuzz_path(dis, sizeof dis, "dis.s");
    fuzz_path(out2, sizeof out2, "out2.tpt");
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    fuzz_write(src, data, size);
    unlink(out);
    err e;
    if (asm_file(src, out, &e)) {
        fuzz_assert_absent(out);
        fuzz_assert_absent(tmp);
        return 0;
    }
    FILE *f = fopen(dis, "w");
    if (!f)
        abort();
    if (asm_disasm_file(out, f, &e)) {
        fprintf(stderr, "assembled trace does not disassemble: %s\n", e.msg);
        abort();
    }
    fclose(f);
    if (asm_file(dis, out2, &e)) {
        fprintf(stderr, "disassembly does not reassemble: %s\n", e.msg);
        abort();
    }
    size_t n1, n2;
    uint8_t *b1 = fuzz_slurp(out, &n1), *b2 = fuzz_slurp(out2, &n2);
    if (!b1 || !b2 || n1 != n2 || memcmp(b1, b2, n1)) {
        fprintf(stderr, "asm(disasm(t)) differs from t (%zu vs %zu bytes)\n", n1, n2);
        abort();
    }
    free(b1);
    free(b2);
    return 0;
}
