/* asm.c - text assembly and disassembly of traces, driven by the opcode table.
 * Assumes one instruction per line; the canonical form lists every operand in table order so
 * that assembling a disassembly reproduces the trace byte for byte. */
#define _POSIX_C_SOURCE 200809L
#include "asm.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

enum asm_line { ASM_BLANK, ASM_INSN, ASM_NOTE };

/* Slots past the table operands for the common operands. */
#define ASM_SLOT_WAIT   ISA_MAX_ARGS
#define ASM_SLOT_SIGNAL (ISA_MAX_ARGS + 1)

/* Where an error is reported: "FILE:LINE: mnemonic: ...". */
typedef struct asm_ctx {
    const char *file;
    unsigned line;
    const char *mn; /* NULL before the mnemonic is known */
    err *e;
} asm_ctx;

__attribute__((format(printf, 2, 3))) static int asm_err(const asm_ctx *c, const char *fmt, ...)
{
    char what[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->mn)
        return err_set(c->e, "%s:%u: %s: %s", c->file, c->line, c->mn, what);
    return err_set(c->e, "%s:%u: %s", c->file, c->line, what);
}

static int asm_is_end(char ch)
{
    return ch == '\0' || ch == '#' || ch == ';' || ch == '\n' || ch == '\r';
}

static const char *asm_skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Length of the bare token at p (up to white space or a comment). */
static size_t asm_token(const char *p)
{
    size_t n = 0;
    while (!asm_is_end(p[n]) && p[n] != ' ' && p[n] != '\t')
        n++;
    return n;
}

static int asm_hex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Parse a double-quoted string at *pp with escapes \" \\ \n \t \xHH into out (cap bytes
 * including the NUL). Advances *pp past the closing quote. Returns length or -1. */
static long asm_string(const asm_ctx *c, const char **pp, char *out, size_t cap, const char *what)
{
    const char *p = *pp + 1;
    size_t n = 0;
    for (;; p++) {
        int ch = (unsigned char)*p;
        if (ch == '\0' || ch == '\n' || ch == '\r')
            return asm_err(c, "%s: unterminated string (expected a closing '\"')", what);
        if (ch == '"')
            break;
        if (ch == '\\') {
            p++;
            switch (*p) {
            case '"':
            case '\\':
                ch = *p;
                break;
            case 'n':
                ch = '\n';
                break;
            case 't':
                ch = '\t';
                break;
            case 'x': {
                int hi = asm_hex(p[1]), lo = hi < 0 ? -1 : asm_hex(p[2]);
                if (lo < 0 || (hi == 0 && lo == 0))
                    return asm_err(c, "%s: bad \\x escape (expected two hex digits, not 00)", what);
                ch = hi * 16 + lo;
                p += 2;
                break;
            }
            default:
                return asm_err(c, "%s: unknown escape '\\%c' (expected \\\" \\\\ \\n \\t \\xHH)",
                               what, *p ? *p : ' ');
            }
        }
        if (n + 1 >= cap)
            return asm_err(c, "%s: string longer than %zu bytes", what, cap - 1);
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    *pp = p + 1;
    if (!asm_is_end(**pp) && **pp != ' ' && **pp != '\t')
        return asm_err(c, "%s: unexpected text after closing '\"'", what);
    return (long)n;
}

/* Decimal or 0x hex with an optional K/M/G (x1024^k) suffix. 0 ok, -1 syntax, -2 overflow. */
static int asm_int(const char *s, size_t n, uint64_t *out)
{
    unsigned base = 10;
    size_t i = 0;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    uint64_t v = 0;
    size_t digits = 0;
    for (; i < n; i++, digits++) {
        int d = base == 16 ? asm_hex(s[i]) : (isdigit((unsigned char)s[i]) ? s[i] - '0' : -1);
        if (d < 0)
            break;
        if (v > (UINT64_MAX - (unsigned)d) / base)
            return -2;
        v = v * base + (unsigned)d;
    }
    if (!digits)
        return -1;
    if (i < n) {
        unsigned shift;
        switch (s[i]) {
        case 'K':
            shift = 10;
            break;
        case 'M':
            shift = 20;
            break;
        case 'G':
            shift = 30;
            break;
        default:
            return -1;
        }
        if (i + 1 != n)
            return -1;
        if (v > UINT64_MAX >> shift)
            return -2;
        v <<= shift;
    }
    *out = v;
    return 0;
}

/* lookup() of the n-byte token at p (a mnemonic or a dtype name): -1 when it is unknown or
 * longer than any name. */
static int asm_lookup(const char *p, size_t n, int (*lookup)(const char *name))
{
    char name[48]; /* longer than every mnemonic and dtype name */
    if (n >= sizeof name)
        return -1;
    memcpy(name, p, n);
    name[n] = '\0';
    return lookup(name);
}

/* Parse the value of operand `name` (kind) at *pp into *v (and in->name for strings). */
static int asm_value(const asm_ctx *c, const char **pp, const char *name, isa_kind kind,
                     uint64_t max, uint64_t *v, isa_insn *in)
{
    const char *p = *pp;
    char what[64];
    snprintf(what, sizeof what, "operand '%s'", name);
    if (kind == ISA_K_STR) {
        if (*p != '"')
            return asm_err(c, "%s: expected a double-quoted string", what);
        long n = asm_string(c, pp, in->name, (size_t)max + 1, what);
        if (n < 0)
            return -1;
        *v = (uint64_t)n;
        return 0;
    }
    size_t n = asm_token(p);
    *pp = p + n;
    if (n == 0)
        return asm_err(c, "%s: missing value", what);
    switch (kind) {
    case ISA_K_INT: {
        int r = asm_int(p, n, v);
        if (r == -1)
            return asm_err(c,
                           "%s: bad integer '%.*s' (expected decimal or 0x hex, optional "
                           "K/M/G suffix)",
                           what, (int)n, p);
        if (r == -2)
            return asm_err(c, "%s: value '%.*s' does not fit in 64 bits", what, (int)n, p);
        return 0;
    }
    case ISA_K_DTYPE: {
        int dt = asm_lookup(p, n, isa_dtype_lookup);
        if (dt < 0)
            return asm_err(c, "%s: unknown dtype '%.*s' (expected bf16, int8, fp8, fp32, int4)",
                           what, (int)n, p);
        *v = (uint64_t)dt;
        return 0;
    }
    case ISA_K_AXES: {
        uint64_t mask = 0;
        for (size_t i = 0; i < n; i++) {
            const char *axis = strchr("xyz", p[i]);
            uint64_t bit = axis && p[i] ? 1u << (axis - "xyz") : 0;
            if (!bit || (mask & bit))
                return asm_err(c, "%s: bad axes '%.*s' (expected distinct letters from xyz)", what,
                               (int)n, p);
            mask |= bit;
        }
        *v = mask;
        return 0;
    }
    case ISA_K_DIR:
        if ((n == 2 && !strncmp(p, "+1", 2)) || (n == 1 && *p == '+'))
            *v = 0;
        else if ((n == 2 && !strncmp(p, "-1", 2)) || (n == 1 && *p == '-'))
            *v = 1;
        else
            return asm_err(c, "%s: bad direction '%.*s' (expected +1 or -1)", what, (int)n, p);
        return 0;
    default:
        return asm_err(c, "%s: operand kind %d cannot be assembled", what, (int)kind);
    }
}

/* Parse `mnemonic key=value ...` at p. */
static int asm_insn(asm_ctx *c, const char *p, isa_insn *in)
{
    size_t n = asm_token(p);
    int op = asm_lookup(p, n, isa_lookup);
    if (op < 0) {
        char mn[48];
        const char *near = NULL;
        if (n < sizeof mn) {
            memcpy(mn, p, n);
            mn[n] = '\0';
            near = isa_suggest(mn);
        }
        if (near)
            return asm_err(c, "unknown opcode '%.*s' (did you mean '%s'?)", (int)n, p, near);
        return asm_err(c, "unknown opcode '%.*s'", (int)n, p);
    }
    const isa_info *info = isa_info_of((unsigned)op);
    c->mn = info->mnemonic;
    memset(in, 0, sizeof *in);
    in->op = (uint16_t)op;
    unsigned seen = 0;
    for (p += n;;) {
        p = asm_skip_ws(p);
        if (asm_is_end(*p))
            break;
        size_t k = 0;
        while (isalnum((unsigned char)p[k]) || p[k] == '_')
            k++;
        const char *eq = asm_skip_ws(p + k);
        if (k == 0 || *eq != '=')
            return asm_err(c, "expected key=value, got '%.*s'", (int)asm_token(p), p);
        char key[32];
        if (k >= sizeof key)
            return asm_err(c, "unknown operand '%.*s'", (int)k, p);
        memcpy(key, p, k);
        key[k] = '\0';
        int slot = !strcmp(key, "wait")     ? ASM_SLOT_WAIT
                   : !strcmp(key, "signal") ? ASM_SLOT_SIGNAL
                                            : isa_arg_index((unsigned)op, key);
        if (slot < 0) {
            char list[256] = "";
            size_t len = 0;
            for (int i = 0; i < info->nargs; i++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s ", info->args[i].name);
            return asm_err(c, "unknown operand '%s' (expected %swait signal)", key, list);
        }
        if (seen & (1u << slot))
            return asm_err(c, "duplicate operand '%s'", key);
        seen |= 1u << slot;
        p = asm_skip_ws(eq + 1);
        if (slot >= ISA_MAX_ARGS) {
            uint64_t s;
            if (asm_value(c, &p, key, ISA_K_INT, 0, &s, in))
                return -1;
            if (s >= ISA_SEM_MAX)
                return asm_err(c, "operand '%s' = %" PRIu64 " out of range [0, %d]", key, s,
                               ISA_SEM_MAX - 1);
            *(slot == ASM_SLOT_WAIT ? &in->wait : &in->signal) = (uint16_t)(s + 1);
        } else {
            const isa_arg *a = &info->args[slot];
            if (asm_value(c, &p, key, a->kind, a->max, &in->arg[slot], in))
                return -1;
        }
    }
    for (int i = 0; i < info->nargs; i++)
        if (info->args[i].required && !(seen & (1u << i)))
            return asm_err(c, "missing operand '%s'", info->args[i].name);
    err ve;
    if (isa_validate(in, &ve))
        return err_set(c->e, "%s:%u: %s", c->file, c->line, ve.msg);
    return 0;
}

/* Classify and parse one line. */
static int asm_line(const char *line, const char *file, unsigned lineno, isa_insn *in, char *note,
                    size_t note_cap, err *e)
{
    asm_ctx c = {.file = file, .line = lineno, .mn = NULL, .e = e};
    const char *p = asm_skip_ws(line);
    /* `label:` (identifier immediately followed by a colon), optionally then an insn. */
    size_t k = 0;
    while (isalnum((unsigned char)p[k]) || p[k] == '_' || p[k] == '.')
        k++;
    if (k > 0 && p[k] == ':')
        p = asm_skip_ws(p + k + 1);
    if (asm_is_end(*p))
        return ASM_BLANK;
    if (*p != '.')
        return asm_insn(&c, p, in) ? -1 : ASM_INSN;
    size_t n = asm_token(p);
    if (n != 5 || strncmp(p, ".note", 5))
        return asm_err(&c, "unknown directive '%.*s' (expected .note)", (int)n, p);
    p = asm_skip_ws(p + n);
    if (*p != '"')
        return asm_err(&c, ".note: expected a double-quoted string");
    if (!note || note_cap == 0)
        return asm_err(&c, ".note: not accepted here");
    if (asm_string(&c, &p, note, note_cap, ".note") < 0)
        return -1;
    p = asm_skip_ws(p);
    if (!asm_is_end(*p))
        return asm_err(&c, ".note: unexpected text after the string");
    return ASM_NOTE;
}

int asm_parse_line(const char *line, const char *file, unsigned lineno, isa_insn *in, char *note,
                   size_t note_cap, err *e)
{
    int r = asm_line(line, file, lineno, in, note, note_cap, e);
    return r < 0 ? -1 : r == ASM_INSN;
}

/* Bounded string builder: keeps counting past cap like snprintf. */
typedef struct asm_buf {
    char *p;
    size_t cap, len;
} asm_buf;

__attribute__((format(printf, 2, 3))) static void asm_put(asm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->len < b->cap ? b->p + b->len : NULL, b->len < b->cap ? b->cap - b->len : 0,
                      fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len += (size_t)n;
}

/* Quote s (len bytes) so asm_string reads it back exactly. */
static void asm_put_quoted(asm_buf *b, const char *s, size_t len)
{
    asm_put(b, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            asm_put(b, "\\%c", ch);
        else if (ch == '\n')
            asm_put(b, "\\n");
        else if (ch == '\t')
            asm_put(b, "\\t");
        else if (ch < 0x20 || ch == 0x7f)
            asm_put(b, "\\x%02x", ch);
        else
            asm_put(b, "%c", ch);
    }
    asm_put(b, "\"");
}

int asm_format(const isa_insn *in, char *buf, size_t cap)
{
    asm_buf b = {.p = buf, .cap = cap, .len = 0};
    if (cap)
        buf[0] = '\0';
    const isa_info *info = isa_info_of(in->op);
    if (!info) {
        asm_put(&b, "# unknown opcode %u", in->op);
        return (int)b.len;
    }
    asm_put(&b, "%s", info->mnemonic);
    for (int i = 0; i < info->nargs; i++) {
        const isa_arg *a = &info->args[i];
        uint64_t v = in->arg[i];
        asm_put(&b, " %s=", a->name);
        switch (a->kind) {
        case ISA_K_DTYPE:
            asm_put(&b, "%s", isa_dtype_name((isa_dtype)v));
            break;
        case ISA_K_AXES:
            for (int ax = 0; ax < 3; ax++)
                if (v & (1u << ax))
                    asm_put(&b, "%c", "xyz"[ax]);
            break;
        case ISA_K_DIR:
            asm_put(&b, "%s", v ? "-1" : "+1");
            break;
        case ISA_K_STR:
            asm_put_quoted(&b, in->name, strnlen(in->name, ISA_NAME_MAX - 1));
            break;
        default:
            asm_put(&b, "%" PRIu64, v);
            break;
        }
    }
    if (in->wait)
        asm_put(&b, " wait=%u", in->wait - 1u);
    if (in->signal)
        asm_put(&b, " signal=%u", in->signal - 1u);
    return (int)b.len;
}

int asm_file(const char *in_path, const char *out_path, err *e)
{
    FILE *f = fopen(in_path, "r");
    if (!f)
        return err_set(e, "%s: cannot open: %s", in_path, strerror(errno));
    char note[TRACE_NOTE_MAX] = "";
    int have_note = 0;
    trace_writer *w = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    unsigned lineno = 0;
    isa_insn in;
    int rc = -1;
    ssize_t len;
    while ((len = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        const char *text = line;
        /* A UTF-8 byte-order mark (editors on Windows write one) is not part of the text. */
        if (lineno == 1 && len >= 3 && !memcmp(line, "\xef\xbb\xbf", 3)) {
            text += 3;
            len -= 3;
        }
        /* The parser sees a C string: a NUL would silently end the line there. */
        const char *nul = memchr(text, '\0', (size_t)len);
        if (nul) {
            err_set(e, "%s:%u:%zu: NUL byte (expected text; is this a binary file?)", in_path,
                    lineno, (size_t)(nul - text) + 1);
            goto out;
        }
        char line_note[TRACE_NOTE_MAX];
        int r = asm_line(text, in_path, lineno, &in, line_note, sizeof line_note, e);
        if (r < 0)
            goto out;
        if (r == ASM_NOTE) {
            if (w || have_note) {
                err_set(e, "%s:%u: .note must come once, before the first instruction", in_path,
                        lineno);
                goto out;
            }
            memcpy(note, line_note, sizeof note);
            have_note = 1;
        } else if (r == ASM_INSN) {
            if (!w && trace_writer_open(&w, out_path, note, e))
                goto out;
            err we;
            if (trace_writer_put(w, &in, &we)) {
                err_set(e, "%s:%u: %s", in_path, lineno, we.msg);
                goto out;
            }
        }
    }
    if (ferror(f)) {
        err_set(e, "%s: read error: %s", in_path, strerror(errno));
        goto out;
    }
    if (!w && trace_writer_open(&w, out_path, note, e))
        goto out;
    rc = trace_writer_close(w, e);
    w = NULL;
out:
    trace_writer_abort(w);
    free(line);
    fclose(f);
    return rc;
}

int asm_disasm_file(const char *in_path, FILE *out, err *e)
{
    trace_reader *r;
    if (trace_reader_open(&r, in_path, e))
        return -1;
    const char *note = trace_reader_header(r)->note;
    if (note[0]) {
        static const size_t cap = 4 * TRACE_NOTE_MAX + 16; /* worst case: every byte \xHH */
        char *buf = malloc(cap);
        if (!buf) {
            trace_reader_free(r);
            return err_setk(e, ERR_NOMEM, "%s: out of memory", in_path);
        }
        asm_buf b = {.p = buf, .cap = cap, .len = 0};
        asm_put(&b, ".note ");
        asm_put_quoted(&b, note, strlen(note));
        fprintf(out, "%s\n", buf);
        free(buf);
    }
    isa_insn in;
    int rc;
    char line[1024];
    while ((rc = trace_reader_next(r, &in, e)) > 0) {
        asm_format(&in, line, sizeof line);
        fprintf(out, "%s\n", line);
    }
    trace_reader_free(r);
    errno = 0;
    if (rc == 0 && (fflush(out) || ferror(out))) /* the output is at fault: say so, and why */
        return err_set(e, "cannot write the disassembly of %s: %s", in_path,
                       errno ? strerror(errno) : "write error");
    return rc;
}
