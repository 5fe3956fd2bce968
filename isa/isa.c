/* isa.c - the opcode table built from isa_ops.def, validation, LEB128 encoding and docs.
 * Assumes the table is the only description of the ISA: nothing here names an opcode. */
#include "isa.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include "err.h"

/* Pass 1: operand counts as enum constants. ISA_ARG counts as 1 and ISA_ARG_NONE as 0, so
 * an opcode's count is (first value) * (number of comma-separated values). */
#define ISA_FIRST_(a, ...)                                   a
#define ISA_COUNT_N_(a1, a2, a3, a4, a5, a6, a7, a8, n, ...) n
#define ISA_COUNT_(...)                                      ISA_COUNT_N_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define ISA_ARG(name, kind, req, max)                        1
#define ISA_ARG_NONE                                         0
#define ISA_OP(E, mn, unit, cost, help, ...)                                                       \
    ISA_NARGS_##E = ISA_FIRST_(__VA_ARGS__, ~) * ISA_COUNT_(__VA_ARGS__),
enum {
#include "isa_ops.def"
};
#undef ISA_OP
#define ISA_OP(E, mn, unit, cost, help, ...)                                                       \
    _Static_assert(ISA_NARGS_##E <= ISA_MAX_ARGS, mn ": more operands than ISA_MAX_ARGS");
#include "isa_ops.def"
#undef ISA_OP
#undef ISA_ARG
#undef ISA_ARG_NONE

/* Pass 2: the table itself. ISA_ARG_NONE is an all-zero entry (name NULL ends the list). */
#define ISA_ARG(name, kind, req, max)                                                              \
    {                                                                                              \
#name, kind, req, max                                                                      \
    }
#define ISA_ARG_NONE                                                                               \
    {                                                                                              \
        NULL, ISA_K_NONE, 0, 0                                                                     \
    }
#define ISA_OP(E, mn, unit_, cost_, help_, ...)                                                    \
    [ISA_OP_##E] = {.mnemonic = mn,                                                                \
                    .unit = unit_,                                                                 \
                    .cost = cost_,                                                                 \
                    .help = help_,                                                                 \
                    .nargs = ISA_NARGS_##E,                                                        \
                    .args = {__VA_ARGS__}},
static const isa_info isa_table[ISA_OP_COUNT] = {
#include "isa_ops.def"
};
#undef ISA_OP
#undef ISA_ARG
#undef ISA_ARG_NONE

static const struct {
    const char *name;
    unsigned bits;
} isa_dtypes[ISA_DTYPE_COUNT] = {
    [ISA_DT_BF16] = {"bf16", 16}, [ISA_DT_INT8] = {"int8", 8}, [ISA_DT_FP8] = {"fp8", 8},
    [ISA_DT_FP32] = {"fp32", 32}, [ISA_DT_INT4] = {"int4", 4},
};

static const char *const isa_units[ISA_UNIT_COUNT] = {
#define ISA_UNIT(E, name) [ISA_UNIT_##E] = name,
#include "isa_ops.def"
#undef ISA_UNIT
};

static const char *const isa_costs[] = {
#define ISA_COST(E, name) [ISA_COST_##E] = name,
#include "isa_ops.def"
#undef ISA_COST
};

static const char *const isa_kinds[] = {
    [ISA_K_NONE] = "none", [ISA_K_INT] = "int", [ISA_K_DTYPE] = "dtype",
    [ISA_K_AXES] = "axes", [ISA_K_DIR] = "dir", [ISA_K_STR] = "string",
};

const isa_info *isa_info_of(unsigned op)
{
    return op < ISA_OP_COUNT ? &isa_table[op] : NULL;
}

int isa_lookup(const char *mnemonic)
{
    for (unsigned op = 0; op < ISA_OP_COUNT; op++)
        if (!strcmp(isa_table[op].mnemonic, mnemonic))
            return (int)op;
    return -1;
}

#define ISA_DISTANCE_MAX 128

unsigned isa_edit_distance(const char *a, const char *b, int fold_case)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned row[ISA_DISTANCE_MAX + 1];
    if (la > ISA_DISTANCE_MAX || lb > ISA_DISTANCE_MAX)
        return UINT_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned char ca = (unsigned char)a[i - 1], cb = (unsigned char)b[j - 1];
            if (fold_case) {
                ca = (unsigned char)tolower(ca);
                cb = (unsigned char)tolower(cb);
            }
            unsigned best = diag + (ca != cb);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *isa_suggest(const char *mnemonic)
{
    const char *dot = strrchr(mnemonic, '.'), *leaf = dot ? dot + 1 : mnemonic;
    const char *best = NULL;
    /* At most 2 edits, and at most a third of the name ("foo" is not a typo of "nop"). */
    size_t len = strlen(mnemonic);
    unsigned bestd = len / 3 < 2 ? (unsigned)(len / 3) + 1 : 3;
    for (unsigned op = 0; op < ISA_OP_COUNT; op++) {
        const char *m = isa_table[op].mnemonic, *mdot = strrchr(m, '.');
        if (*leaf && !strcmp(mdot ? mdot + 1 : m, leaf))
            return m;
        unsigned d = isa_edit_distance(mnemonic, m, 0);
        if (d < bestd) {
            bestd = d;
            best = m;
        }
    }
    return best;
}

int isa_arg_index(unsigned op, const char *name)
{
    const isa_info *info = isa_info_of(op);
    if (!info)
        return -1;
    for (int i = 0; i < info->nargs; i++)
        if (!strcmp(info->args[i].name, name))
            return i;
    return -1;
}

const char *isa_dtype_name(isa_dtype dt)
{
    return (unsigned)dt < ISA_DTYPE_COUNT ? isa_dtypes[dt].name : "?";
}

int isa_dtype_lookup(const char *name)
{
    for (int i = 0; i < ISA_DTYPE_COUNT; i++)
        if (!strcmp(isa_dtypes[i].name, name))
            return i;
    return -1;
}

unsigned isa_dtype_bits(isa_dtype dt)
{
    return (unsigned)dt < ISA_DTYPE_COUNT ? isa_dtypes[dt].bits : 0;
}

uint64_t isa_dtype_bytes(isa_dtype dt, uint64_t n)
{
    uint64_t bits;
    if (__builtin_mul_overflow(n, (uint64_t)isa_dtype_bits(dt), &bits) || bits > UINT64_MAX - 7)
        return UINT64_MAX;
    return (bits + 7) / 8;
}

const char *isa_unit_name(isa_unit u)
{
    return (unsigned)u < ISA_UNIT_COUNT ? isa_units[u] : "?";
}

/* Smallest legal value of operand a. Required counts (elements, bytes, rows: operands n, m,
 * k, bytes) must be >= 1: a zero-sized transfer or matmul is a generator bug, not a no-op.
 * Required axis sets must name at least one axis. Everything else may be 0. This runs per
 * decoded instruction, hence character tests rather than strcmp. */
static uint64_t isa_arg_min(const isa_arg *a)
{
    if (!a->required)
        return 0;
    if (a->kind == ISA_K_AXES)
        return 1;
    const char *s = a->name;
    if (a->kind == ISA_K_INT && ((s[1] == '\0' && (s[0] == 'n' || s[0] == 'm' || s[0] == 'k')) ||
                                 (s[0] == 'b' && !strcmp(s, "bytes"))))
        return 1;
    return 0;
}

int isa_validate(const isa_insn *in, struct err *e)
{
    const isa_info *info = isa_info_of(in->op);
    if (!info)
        return err_set(e, "unknown opcode %u (expected < %d)", in->op, ISA_OP_COUNT);
    if (in->wait > ISA_SEM_MAX)
        return err_set(e, "%s: operand 'wait' = %u out of range [0, %d]", info->mnemonic,
                       in->wait - 1u, ISA_SEM_MAX - 1);
    if (in->signal > ISA_SEM_MAX)
        return err_set(e, "%s: operand 'signal' = %u out of range [0, %d]", info->mnemonic,
                       in->signal - 1u, ISA_SEM_MAX - 1);
    for (int i = 0; i < info->nargs; i++) {
        const isa_arg *a = &info->args[i];
        uint64_t v = in->arg[i];
        if (a->kind == ISA_K_STR) {
            size_t len = strnlen(in->name, ISA_NAME_MAX);
            if (len >= ISA_NAME_MAX)
                return err_set(e, "%s: operand '%s' longer than %d bytes", info->mnemonic, a->name,
                               ISA_NAME_MAX - 1);
            if (v != len)
                return err_set(e, "%s: operand '%s' length slot %" PRIu64 ", string has %zu",
                               info->mnemonic, a->name, v, len);
            continue;
        }
        /* The smallest legal value is 0 or 1: only a 0 needs isa_arg_min's name tests. */
        if ((v == 0 && isa_arg_min(a)) || v > a->max)
            return err_set(e,
                           "%s: operand '%s' = %" PRIu64 " out of range [%" PRIu64 ", %" PRIu64 "]",
                           info->mnemonic, a->name, v, isa_arg_min(a), a->max);
        if (a->kind == ISA_K_AXES && (v & (v - 1)) && !strcmp(a->name, "axis"))
            return err_set(e, "%s: operand 'axis' = %" PRIu64 " names more than one axis",
                           info->mnemonic, v);
    }
    return 0;
}

/* ---- LEB128: 7 bits per byte, low group first, high bit set on all but the last byte. */

static size_t isa_put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t isa_encode(const isa_insn *in, uint8_t *buf)
{
    const isa_info *info = isa_info_of(in->op);
    size_t n = 0;
    n += isa_put_varint(buf + n, in->op);
    n += isa_put_varint(buf + n, in->wait);
    n += isa_put_varint(buf + n, in->signal);
    if (!info)
        return n;
    for (int i = 0; i < info->nargs; i++) {
        if (info->args[i].kind == ISA_K_STR) {
            size_t len = strnlen(in->name, ISA_NAME_MAX - 1);
            n += isa_put_varint(buf + n, len);
            memcpy(buf + n, in->name, len);
            n += len;
        } else {
            n += isa_put_varint(buf + n, in->arg[i]);
        }
    }
    return n;
}

/* Read one varint at *pos: 1 on success, 0 if buf ends first, -1 if overlong (more than
 * 64 bits, or a non-minimal encoding whose last byte is a redundant 0). */
static int isa_get_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
    if (*pos < len && buf[*pos] < 0x80) { /* one byte: most operands and every header field */
        *out = buf[(*pos)++];
        return 1;
    }
    uint64_t v = 0;
    for (unsigned i = 0;; i++) {
        if (i == 10)
            return -1;
        if (*pos + i >= len)
            return 0;
        uint8_t b = buf[*pos + i];
        if (i == 9 && b > 1)
            return -1;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0)
                return -1;
            *pos += i + 1;
            *out = v;
            return 1;
        }
    }
}

long isa_decode(const uint8_t *buf, size_t len, isa_insn *in, struct err *e)
{
    static const char *const field[3] = {"opcode", "wait", "signal"};
    uint64_t head[3];
    size_t pos = 0;
    memset(in, 0, sizeof *in);
    for (int i = 0; i < 3; i++) {
        int r = isa_get_varint(buf, len, &pos, &head[i]);
        if (r <= 0)
            return r ? err_set(e, "overlong varint in %s", field[i]) : 0;
        if (i == 0 && head[0] >= ISA_OP_COUNT)
            return err_set(e, "unknown opcode %" PRIu64 " (expected < %d)", head[0], ISA_OP_COUNT);
        if (i > 0 && head[i] > ISA_SEM_MAX)
            return err_set(e, "%s: %s semaphore %" PRIu64 " out of range [0, %d]",
                           isa_table[head[0]].mnemonic, field[i], head[i] - 1, ISA_SEM_MAX - 1);
    }
    in->op = (uint16_t)head[0];
    in->wait = (uint16_t)head[1];
    in->signal = (uint16_t)head[2];
    const isa_info *info = &isa_table[in->op];
    for (int i = 0; i < info->nargs; i++) {
        int r = isa_get_varint(buf, len, &pos, &in->arg[i]);
        if (r <= 0)
            return r ? err_set(e, "%s: overlong varint in operand '%s'", info->mnemonic,
                               info->args[i].name)
                     : 0;
        if (info->args[i].kind == ISA_K_STR) {
            if (in->arg[i] >= ISA_NAME_MAX)
                return err_set(e, "%s: operand '%s' length %" PRIu64 " out of range [0, %d]",
                               info->mnemonic, info->args[i].name, in->arg[i], ISA_NAME_MAX - 1);
            if (len - pos < in->arg[i])
                return 0;
            memcpy(in->name, buf + pos, in->arg[i]);
            pos += in->arg[i];
            if (memchr(in->name, 0, in->arg[i]))
                return err_set(e, "%s: operand '%s' contains a NUL byte", info->mnemonic,
                               info->args[i].name);
        }
    }
    if (isa_validate(in, e))
        return -1;
    return (long)pos;
}

/* ---- Documentation: everything comes from the table. */

static void isa_doc_range(FILE *out, const isa_arg *a)
{
    switch (a->kind) {
    case ISA_K_DTYPE:
        for (int i = 0; i < ISA_DTYPE_COUNT; i++)
            fprintf(out, "%s%s", i ? ", " : "", isa_dtypes[i].name);
        break;
    case ISA_K_AXES:
        fprintf(out, "%s", !strcmp(a->name, "axis") ? "one of x, y, z" : "letters from xyz");
        break;
    case ISA_K_DIR:
        fprintf(out, "+1 or -1");
        break;
    case ISA_K_STR:
        fprintf(out, "quoted, at most %" PRIu64 " bytes", a->max);
        break;
    default:
        if (a->max == UINT64_MAX)
            fprintf(out, "%" PRIu64 " .. 2^64-1", isa_arg_min(a));
        else
            fprintf(out, "%" PRIu64 " .. %" PRIu64, isa_arg_min(a), a->max);
        break;
    }
}

void isa_doc(FILE *out)
{
    fprintf(out, "# tpusim instruction set (ISA version %d)\n\n", ISA_VERSION);
    fprintf(out,
            "Generated from isa/isa_ops.def by `tpusim isa`.\n\n"
            "Assembly: one instruction per line, `mnemonic key=value ...`, operands in any "
            "order. Integers are decimal or 0x hex with an optional K, M or G suffix "
            "(x1024, x1024^2, x1024^3); dtypes by name; axes as letters from `xyz` "
            "(`axes=xy`); `dir=+1` or `dir=-1`; strings in double quotes. `#` and `;` "
            "start comments, `label:` lines are documentation, `.note \"text\"` sets "
            "the trace note. The file is text: a UTF-8 byte-order mark at its start is "
            "skipped, and a NUL byte anywhere is an error naming its line and column.\n\n"
            "Every instruction also takes the optional common operands `wait=S` (start "
            "only once semaphore S, 0..%d, can be decremented) and `signal=S` (increment "
            "semaphore S on completion).\n\n",
            ISA_SEM_MAX - 1);
    fprintf(out, "| mnemonic | unit | cost class | operands |\n|---|---|---|---|\n");
    for (unsigned op = 0; op < ISA_OP_COUNT; op++) {
        const isa_info *info = &isa_table[op];
        fprintf(out, "| `%s` | %s | %s | ", info->mnemonic, isa_units[info->unit],
                isa_costs[info->cost]);
        for (int i = 0; i < info->nargs; i++)
            fprintf(out, "%s%s%s%s", i ? " " : "", info->args[i].required ? "" : "[",
                    info->args[i].name, info->args[i].required ? "" : "]");
        fprintf(out, "%s |\n", info->nargs ? "" : "-");
    }
    for (unsigned op = 0; op < ISA_OP_COUNT; op++) {
        const isa_info *info = &isa_table[op];
        fprintf(out, "\n## `%s`\n\n%s.\n\nUnit `%s`, cost class `%s`.\n", info->mnemonic,
                info->help, isa_units[info->unit], isa_costs[info->cost]);
        if (!info->nargs) {
            fprintf(out, "No operands besides `wait` and `signal`.\n");
            continue;
        }
        fprintf(out, "\n| operand | kind | required | values |\n|---|---|---|---|\n");
        for (int i = 0; i < info->nargs; i++) {
            const isa_arg *a = &info->args[i];
            fprintf(out, "| `%s` | %s | %s | ", a->name, isa_kinds[a->kind],
                    a->required ? "yes" : "no (default 0)");
            isa_doc_range(out, a);
            fprintf(out, " |\n");
        }
    }
}
