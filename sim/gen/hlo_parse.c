/* hlo_parse.c - recursive-descent parser of XLA's HLO text into an hlo_module. The grammar
 * is the one XLA prints (hlo_instruction.cc ToString), both generations: `%`-prefixed names
 * and typed operands (`add(f32[] %a, f32[] %b)`) in older dumps, bare names, iota replica
 * groups and async pairs in newer ones. Attribute values are first captured as raw text (a
 * run of adjacent tokens and balanced groups), then the known ones are re-parsed from their
 * tokens into typed fields, so errors inside them still point at line and column. Nesting is
 * bounded (tuple shapes) and every loop is over tokens, so no input can exhaust the stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlo.h"
#include "hlo_int.h"
#include "mem.h"

#define MAX_TUPLE_DEPTH 32
#define MAX_GROUP_IDS   (1u << 22) /* replica-group ids after expanding the iota form */

/* ---- tables ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    hlo_opclass cls;
} op_table[HLO_OP_COUNT] = {
#define HLO_OP(id, nm, c) [HLO_OP_##id] = {nm, HLO_OC_##c},
#include "hlo_ops.def"
#undef HLO_OP
    [HLO_OP_UNKNOWN] = {"unknown", HLO_OC_UNKNOWN},
};

const char *hlo_opcode_name(hlo_opcode op)
{
    return op < HLO_OP_COUNT ? op_table[op].name : "unknown";
}

hlo_opclass hlo_opcode_class(hlo_opcode op)
{
    return op < HLO_OP_COUNT ? op_table[op].cls : HLO_OC_UNKNOWN;
}

hlo_opcode hlo_opcode_lookup(const char *name, size_t len)
{
    for (int i = 0; i < HLO_OP_UNKNOWN; i++)
        if (strlen(op_table[i].name) == len && !memcmp(op_table[i].name, name, len))
            return (hlo_opcode)i;
    return HLO_OP_UNKNOWN;
}

static const struct {
    const char *name;
    unsigned bits;
} et_table[HLO_ET_COUNT] = {
    [HLO_ET_PRED] = {"pred", 8},
    [HLO_ET_S2] = {"s2", 2},
    [HLO_ET_S4] = {"s4", 4},
    [HLO_ET_S8] = {"s8", 8},
    [HLO_ET_S16] = {"s16", 16},
    [HLO_ET_S32] = {"s32", 32},
    [HLO_ET_S64] = {"s64", 64},
    [HLO_ET_U2] = {"u2", 2},
    [HLO_ET_U4] = {"u4", 4},
    [HLO_ET_U8] = {"u8", 8},
    [HLO_ET_U16] = {"u16", 16},
    [HLO_ET_U32] = {"u32", 32},
    [HLO_ET_U64] = {"u64", 64},
    [HLO_ET_F16] = {"f16", 16},
    [HLO_ET_BF16] = {"bf16", 16},
    [HLO_ET_F32] = {"f32", 32},
    [HLO_ET_F64] = {"f64", 64},
    [HLO_ET_F8E4M3FN] = {"f8e4m3fn", 8},
    [HLO_ET_F8E5M2] = {"f8e5m2", 8},
    [HLO_ET_F8E4M3B11FNUZ] = {"f8e4m3b11fnuz", 8},
    [HLO_ET_F8E4M3FNUZ] = {"f8e4m3fnuz", 8},
    [HLO_ET_F8E5M2FNUZ] = {"f8e5m2fnuz", 8},
    [HLO_ET_C64] = {"c64", 64},
    [HLO_ET_C128] = {"c128", 128},
    [HLO_ET_TOKEN] = {"token", 0},
    [HLO_ET_OPAQUE] = {"opaque", 0},
    [HLO_ET_TUPLE] = {"tuple", 0},
};

const char *hlo_etype_name(hlo_etype t)
{
    return t < HLO_ET_COUNT ? et_table[t].name : "?";
}

unsigned hlo_etype_bits(hlo_etype t)
{
    return t < HLO_ET_COUNT ? et_table[t].bits : 0;
}

static int etype_lookup(const char *s, size_t n)
{
    for (int i = 0; i < HLO_ET_TUPLE; i++)
        if (strlen(et_table[i].name) == n && !memcmp(et_table[i].name, s, n))
            return i;
    return -1;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    if (a && b > UINT64_MAX / a)
        return UINT64_MAX;
    return a * b;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t hlo_shape_elems(const hlo_shape *s)
{
    if (s->et == HLO_ET_TUPLE)
        return 0;
    uint64_t n = 1;
    for (unsigned i = 0; i < s->rank; i++)
        n = sat_mul(n, s->dims[i] > 0 ? (uint64_t)s->dims[i] : 0);
    return n;
}

const hlo_shape *hlo_shape_array(const hlo_shape *sh)
{
    unsigned guard = 0;
    while (sh->et == HLO_ET_TUPLE && sh->ntuple && guard++ < 64) {
        const hlo_shape *best = &sh->tuple[0];
        for (unsigned i = 1; i < sh->ntuple; i++)
            if (hlo_shape_bytes(&sh->tuple[i]) > hlo_shape_bytes(best))
                best = &sh->tuple[i];
        sh = best;
    }
    return sh;
}

uint64_t hlo_shape_bytes(const hlo_shape *s)
{
    if (s->et == HLO_ET_TUPLE) {
        uint64_t b = 0;
        for (unsigned i = 0; i < s->ntuple; i++)
            b = sat_add(b, hlo_shape_bytes(&s->tuple[i]));
        return b;
    }
    uint64_t n = hlo_shape_elems(s), bits = hlo_etype_bits(s->et);
    if (n > UINT64_MAX / 128)
        return UINT64_MAX;
    return (n * bits + 7) / 8;
}

/* ---- name maps ------------------------------------------------------------------------- */

typedef struct nmap {
    const char **keys;
    void **vals;
    size_t cap, n;
} nmap;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void nmap_fini(nmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* Insert; returns 1 if the key was present (value not replaced), 0 inserted, -1 no memory. */
static int nmap_put(nmap *m, const char *k, void *v)
{
    if (2 * (m->n + 1) > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        nmap nm = {calloc(nc, sizeof(char *)), calloc(nc, sizeof(void *)), nc, 0};
        if (!nm.keys || !nm.vals) {
            nmap_fini(&nm);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                nmap_put(&nm, m->keys[i], m->vals[i]);
        nmap_fini(m);
        *m = nm;
    }
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], k))
            return 1;
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = k;
    m->vals[i] = v;
    m->n++;
    return 0;
}

static void *nmap_get(const nmap *m, const char *k)
{
    if (!m->cap)
        return NULL;
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], k))
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

/* ---- parser state ---------------------------------------------------------------------- */

/* A reference to a computation by name, resolved when the whole module is read. */
typedef struct comp_ref {
    hlo_comp **slot;
    const char *name;
    uint32_t line, col;
} comp_ref;

typedef struct parser {
    const char *src, *file;
    hlo_tok *t;
    size_t nt, pos, lim; /* tokens at or after lim read as the end (sub-parses of a value) */
    hlo_tok eof;
    hlo_arena *a;
    hlo_module *m;
    err *e;
    comp_ref *refs;
    size_t nrefs, caprefs;
    unsigned capcomps;
} parser;

static const hlo_tok *peek(parser *p, size_t k)
{
    size_t i = p->pos + k;
    if (i >= p->lim || p->t[i].kind == HLO_TK_EOF) {
        const hlo_tok *at = &p->t[p->lim < p->nt ? p->lim : p->nt - 1];
        p->eof = *at;
        p->eof.kind = HLO_TK_EOF;
        p->eof.len = 0;
        return &p->eof;
    }
    return &p->t[i];
}

static const hlo_tok *next(parser *p)
{
    const hlo_tok *t = peek(p, 0);
    if (t->kind != HLO_TK_EOF)
        p->pos++;
    return t;
}

static int is_word(parser *p, const hlo_tok *t, const char *w)
{
    return t->kind == HLO_TK_WORD && t->len == strlen(w) && !memcmp(p->src + t->off, w, t->len);
}

/* A token for an error message: 'text' (control bytes shown as '?', long ones cut). */
static void describe(parser *p, const hlo_tok *t, char *buf, size_t n)
{
    if (t->kind == HLO_TK_EOF) {
        snprintf(buf, n, p->lim < p->nt ? "end of the value" : "end of input");
        return;
    }
    size_t len = t->len > 40 ? 40 : t->len, j = 0;
    buf[j++] = '\'';
    for (size_t i = 0; i < len && j + 5 < n; i++) {
        unsigned char c = (unsigned char)p->src[t->off + i];
        buf[j++] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    if (t->len > len && j + 5 < n) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j++] = '\'';
    buf[j] = '\0';
}

static int perr_at(parser *p, const hlo_tok *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr_at(parser *p, const hlo_tok *t, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    for (char *c = what; *c; c++) /* text quoted from the input stays on one line */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return err_set(p->e, "%s:%u:%u: %s", p->file, t->line, t->col, what);
}

/* "file:line:col: expected WHAT, found 'X'" at the current token. */
static int expected(parser *p, const char *what)
{
    char found[64];
    const hlo_tok *t = peek(p, 0);
    describe(p, t, found, sizeof found);
    return perr_at(p, t, "expected %s, found %s", what, found);
}

/* The bracket closing an opening one. */
static char closer(char open)
{
    return open == '{' ? '}' : open == '[' ? ']' : ')';
}

static int nomem(parser *p)
{
    return err_setk(p->e, ERR_NOMEM, "%s: out of memory", p->file);
}

static int expect(parser *p, hlo_tk kind, const char *what)
{
    if (peek(p, 0)->kind != kind)
        return expected(p, what);
    p->pos++;
    return 0;
}

static int accept(parser *p, hlo_tk kind)
{
    if (peek(p, 0)->kind != kind)
        return 0;
    p->pos++;
    return 1;
}

/* Arena copy of a word, a leading '%' dropped (names are printed with and without it). */
static const char *name_of(parser *p, const hlo_tok *t)
{
    const char *s = p->src + t->off;
    size_t n = t->len;
    if (n > 1 && s[0] == '%') {
        s++;
        n--;
    }
    return hlo_arena_strndup(p->a, s, n);
}

static int expect_name(parser *p, const char *what, const char **out)
{
    if (peek(p, 0)->kind != HLO_TK_WORD)
        return expected(p, what);
    if (!(*out = name_of(p, next(p))))
        return nomem(p);
    return 0;
}

static int int_of(const char *s, size_t n, int64_t *v)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i >= n)
        return -1;
    uint64_t x = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    if (x > (uint64_t)INT64_MAX + (uint64_t)neg)
        return -1;
    *v = neg ? (int64_t)(0 - x) : (int64_t)x;
    return 0;
}

static int expect_int(parser *p, const char *what, int64_t *v)
{
    const hlo_tok *t = peek(p, 0);
    if (t->kind != HLO_TK_WORD || int_of(p->src + t->off, t->len, v))
        return expected(p, what);
    p->pos++;
    return 0;
}

/* Grow an arena array of elements of `sz` bytes to hold n + 1. */
static int grow(parser *p, void **v, unsigned *cap, unsigned n, size_t sz)
{
    if (n < *cap)
        return 0;
    if (n >= (1u << 30))
        return perr_at(p, peek(p, 0), "too many elements");
    unsigned nc = *cap ? *cap * 2 : 8;
    void *nv = hlo_arena_alloc(p->a, (size_t)nc * sz);
    if (!nv)
        return nomem(p);
    if (n)
        memcpy(nv, *v, (size_t)n * sz);
    *v = nv;
    *cap = nc;
    return 0;
}

/* Unescape the contents of a string token into the arena. */
static char *unescape(parser *p, const hlo_tok *t)
{
    const char *s = p->src + t->off + 1;
    size_t n = t->len >= 2 ? t->len - 2 : 0, j = 0;
    char *o = hlo_arena_alloc(p->a, n + 1);
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[++i];
            o[j++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
            if (c != 'n' && c != 't' && c != 'r' && c != '"' && c != '\\' && c != '\'') {
                o[j - 1] = '\\';
                o[j++] = c;
            }
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = '\0';
    return o;
}

/* A list's opening `open`: 1 if an item follows, 0 if `close` follows at once (consumed),
 * -1 with the error set if `open` is missing. */
static int list_open(parser *p, hlo_tk open, hlo_tk close, const char *what)
{
    if (expect(p, open, what))
        return -1;
    return !accept(p, close);
}

/* After a list item: 1 after a ',' (another item follows), 0 at `close` (consumed), -1 with
 * the error set on anything else. */
static int list_more(parser *p, hlo_tk close, const char *what)
{
    if (accept(p, close))
        return 0;
    return expect(p, HLO_TK_COMMA, what) ? -1 : 1;
}

/* ---- shapes ---------------------------------------------------------------------------- */

static int parse_shape(parser *p, hlo_shape *s, unsigned depth);

/* {minor_to_major[:tiling and memory space]} right after the dimensions. */
static int parse_layout(parser *p, hlo_shape *s)
{
    unsigned n = 0;
    s->has_layout = 1;
    while (peek(p, 0)->kind == HLO_TK_WORD) {
        int64_t v;
        const hlo_tok *t = peek(p, 0);
        if (expect_int(p, "a layout dimension", &v))
            return -1;
        if (v < 0 || (uint64_t)v >= s->rank || n >= s->rank)
            return perr_at(p, t, "layout dimension %lld out of range for a rank-%u shape",
                           (long long)v, s->rank);
        s->minor_to_major[n++] = (uint8_t)v;
        if (!accept(p, HLO_TK_COMMA))
            break;
    }
    if (n != s->rank && n != 0)
        return perr_at(p, peek(p, 0), "expected a layout of %u dimensions, found %u", s->rank, n);
    if (accept(p, HLO_TK_COLON)) {
        size_t start = peek(p, 0)->off, end = start;
        unsigned depth = 0;
        for (;;) {
            const hlo_tok *t = peek(p, 0);
            if (t->kind == HLO_TK_EOF)
                return expected(p, "'}' closing the layout");
            if (t->kind == HLO_TK_RBRACE && depth == 0)
                break;
            if (t->kind == HLO_TK_LPAREN)
                depth++;
            else if (t->kind == HLO_TK_RPAREN)
                depth = depth ? depth - 1 : 0;
            int64_t ms;
            if (depth == 0 && is_word(p, t, "S") && peek(p, 1)->kind == HLO_TK_LPAREN &&
                peek(p, 2)->kind == HLO_TK_WORD && peek(p, 3)->kind == HLO_TK_RPAREN &&
                !int_of(p->src + peek(p, 2)->off, peek(p, 2)->len, &ms))
                s->memory_space = (int)(ms > 1000 ? 1000 : ms < 0 ? 0 : ms);
            end = t->off + t->len;
            p->pos++;
        }
        if (!(s->tiling = hlo_arena_strndup(p->a, p->src + start, end - start)))
            return nomem(p);
    }
    return expect(p, HLO_TK_RBRACE, "',', ':' or '}' in the layout");
}

static int parse_shape(parser *p, hlo_shape *s, unsigned depth)
{
    memset(s, 0, sizeof *s);
    if (depth > MAX_TUPLE_DEPTH)
        return perr_at(p, peek(p, 0), "tuple shapes nested deeper than %u", MAX_TUPLE_DEPTH);
    if (accept(p, HLO_TK_LPAREN)) {
        s->et = HLO_ET_TUPLE;
        unsigned cap = 0;
        if (accept(p, HLO_TK_RPAREN))
            return 0;
        int more;
        do {
            if (grow(p, (void **)&s->tuple, &cap, s->ntuple, sizeof *s->tuple) ||
                parse_shape(p, &s->tuple[s->ntuple], depth + 1))
                return -1;
            s->ntuple++;
        } while ((more = list_more(p, HLO_TK_RPAREN, "',' or ')' in the tuple shape")) > 0);
        return more; /* 0: closed, -1: error */
    }
    const hlo_tok *t = peek(p, 0);
    int et = t->kind == HLO_TK_WORD ? etype_lookup(p->src + t->off, t->len) : -1;
    if (et < 0)
        return expected(p, "a shape (element type such as f32, or a tuple)");
    p->pos++;
    s->et = (hlo_etype)et;
    if (expect(p, HLO_TK_LBRACK, "'[' after the element type"))
        return -1;
    const hlo_tok *close = NULL;
    if (!accept(p, HLO_TK_RBRACK)) {
        for (;;) {
            if (s->rank >= HLO_MAX_RANK)
                return perr_at(p, peek(p, 0), "more than %u dimensions", HLO_MAX_RANK);
            int dyn = accept(p, HLO_TK_LE);
            int64_t d;
            if (!dyn && is_word(p, peek(p, 0), "?")) {
                p->pos++;
                d = -1;
                dyn = 1;
            } else if (expect_int(p, "a dimension size", &d)) {
                return -1;
            } else if (d < 0) {
                return perr_at(p, &p->t[p->pos - 1], "negative dimension size %lld", (long long)d);
            }
            s->dims[s->rank] = d;
            if (dyn)
                s->dynamic |= 1u << s->rank;
            s->rank++;
            if (peek(p, 0)->kind == HLO_TK_RBRACK)
                break;
            if (expect(p, HLO_TK_COMMA, "',' or ']' in the dimensions"))
                return -1;
        }
        close = next(p);
    } else {
        close = &p->t[p->pos - 1];
    }
    /* A layout is printed right after ']'; a '{' after a space opens a computation body. */
    const hlo_tok *b = peek(p, 0);
    if (b->kind == HLO_TK_LBRACE && b->off == close->off + close->len) {
        p->pos++;
        return parse_layout(p, s);
    }
    return 0;
}

/* ---- attribute values ------------------------------------------------------------------ */

/* Capture a value: a run of adjacent tokens and balanced groups. [*b, *e) are its tokens. */
static int capture_value(parser *p, size_t *b, size_t *e)
{
    *b = p->pos;
    const hlo_tok *t = peek(p, 0);
    switch (t->kind) {
    case HLO_TK_EOF:
    case HLO_TK_RBRACE:
    case HLO_TK_RBRACK:
    case HLO_TK_RPAREN:
    case HLO_TK_COMMA:
    case HLO_TK_EQ:
        return expected(p, "an attribute value");
    default:
        break;
    }
    for (;;) {
        t = next(p);
        if (t->kind == HLO_TK_LBRACE || t->kind == HLO_TK_LBRACK || t->kind == HLO_TK_LPAREN) {
            size_t depth = 1;
            while (depth) {
                const hlo_tok *u = next(p);
                if (u->kind == HLO_TK_EOF)
                    return perr_at(p, t,
                                   "expected the '%c' closing the attribute value's '%c' here, "
                                   "found end of input",
                                   closer(p->src[t->off]), p->src[t->off]);
                if (u->kind == HLO_TK_LBRACE || u->kind == HLO_TK_LBRACK ||
                    u->kind == HLO_TK_LPAREN)
                    depth++;
                else if (u->kind == HLO_TK_RBRACE || u->kind == HLO_TK_RBRACK ||
                         u->kind == HLO_TK_RPAREN)
                    depth--;
            }
        }
        const hlo_tok *last = &p->t[p->pos - 1], *nx = peek(p, 0);
        if (nx->kind == HLO_TK_EOF || nx->kind == HLO_TK_COMMA || nx->kind == HLO_TK_RPAREN ||
            nx->kind == HLO_TK_RBRACE || nx->kind == HLO_TK_RBRACK ||
            nx->off != last->off + last->len)
            break;
    }
    *e = p->pos;
    return 0;
}

/* A braced list into a growable array: '{' '}' or '{' item (',' item)* '}'. Each item is
 * parsed by item() into the slot grow() made for it, counted in *n once parsed; open and more
 * name what the list's '{' and its separators were expected as. 0 when closed, -1 on error. */
static int parse_braced(parser *p, void **arr, unsigned *n, size_t size, const char *open,
                        const char *more_what, int (*item)(parser *p, void *slot))
{
    unsigned cap = 0;
    int more = list_open(p, HLO_TK_LBRACE, HLO_TK_RBRACE, open);
    while (more > 0) {
        if (grow(p, arr, &cap, *n, size) || item(p, (char *)*arr + (size_t)*n * size))
            return -1;
        (*n)++;
        more = list_more(p, HLO_TK_RBRACE, more_what);
    }
    return more;
}

static int int_item(parser *p, void *slot)
{
    return expect_int(p, "an integer", slot);
}

static int parse_int_list(parser *p, hlo_ints *l)
{
    l->present = 1;
    return parse_braced(p, (void **)&l->v, &l->n, sizeof *l->v, "'{' starting a list of integers",
                        "',' or '}' in the list", int_item);
}

/* Split word t into parts separated by `sep`, each an integer. Returns the count or -1. */
static int split_ints(parser *p, const hlo_tok *t, char sep, int64_t *v, unsigned max)
{
    const char *s = p->src + t->off;
    size_t n = t->len, i = 0;
    unsigned k = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != sep)
            j++;
        if (k >= max || int_of(s + i, j - i, &v[k]))
            return -1;
        k++;
        i = j + 1;
    }
    return (int)k;
}

/* window={size=3x3 stride=1x1 pad=1_1x1_1 lhs_dilate=... rhs_dilate=... rhs_reversal=...} */
static int parse_window(parser *p, hlo_window *w)
{
    memset(w, 0, sizeof *w);
    for (unsigned i = 0; i < HLO_MAX_RANK; i++)
        w->d[i].stride = w->d[i].lhs_dilate = w->d[i].rhs_dilate = 1;
    int have = 0;
    if (expect(p, HLO_TK_LBRACE, "'{' starting the window"))
        return -1;
    while (!accept(p, HLO_TK_RBRACE)) {
        const hlo_tok *k = peek(p, 0);
        static const char *keys[] = {"size",       "stride",     "pad",
                                     "lhs_dilate", "rhs_dilate", "rhs_reversal"};
        int key = -1;
        for (int i = 0; i < 6; i++)
            if (is_word(p, k, keys[i]))
                key = i;
        if (key < 0)
            return expected(p, "a window key (size, stride, pad, lhs_dilate, rhs_dilate, "
                               "rhs_reversal) or '}'");
        p->pos++;
        if (expect(p, HLO_TK_EQ, "'=' after the window key"))
            return -1;
        const hlo_tok *v = peek(p, 0);
        if (v->kind != HLO_TK_WORD)
            return expected(p, "window sizes such as 3x3");
        p->pos++;
        int64_t parts[HLO_MAX_RANK];
        const char *s = p->src + v->off;
        unsigned nd = 0;
        size_t i = 0;
        while (i <= v->len) {
            size_t j = i;
            while (j < v->len && s[j] != 'x')
                j++;
            if (nd >= HLO_MAX_RANK)
                return perr_at(p, v, "window of more than %u dimensions", HLO_MAX_RANK);
            if (key == 2) {
                int64_t lh[2];
                hlo_tok sub = *v;
                sub.off = v->off + i;
                sub.len = j - i;
                if (split_ints(p, &sub, '_', lh, 2) != 2)
                    return perr_at(p, v, "expected window padding such as 1_1x1_1, found '%.*s'",
                                   (int)v->len, p->src + v->off);
                w->d[nd].pad_lo = lh[0];
                w->d[nd].pad_hi = lh[1];
            } else {
                if (int_of(s + i, j - i, &parts[nd]))
                    return perr_at(p, v, "expected window %s such as 3x3", keys[key]);
                if (parts[nd] < 0 || parts[nd] > (1ll << 40))
                    return perr_at(p, v, "window %s out of range", keys[key]);
                /* the field of each key but pad (2) and rhs_reversal (5, a flag) */
                int64_t *const field[] = {&w->d[nd].size, &w->d[nd].stride, NULL,
                                          &w->d[nd].lhs_dilate, &w->d[nd].rhs_dilate};
                if (key == 5)
                    w->d[nd].reversal = parts[nd] != 0;
                else
                    *field[key] = parts[nd];
            }
            nd++;
            i = j + 1;
        }
        if (have && nd != w->n)
            return perr_at(p, v, "window %s has %u dimensions, expected %u", keys[key], nd, w->n);
        w->n = nd;
        have = 1;
    }
    return 0;
}

/* dim_labels=b01f_01io->b01f, from the value's raw text. */
static int parse_dim_labels(parser *p, const hlo_tok *at, const char *s, hlo_dim_labels *d)
{
    memset(d, 0, sizeof *d);
    const char *us = strchr(s, '_'), *ar = strstr(s, "->");
    if (!us || !ar || ar < us)
        return perr_at(p, at, "expected dim_labels such as b01f_01io->b01f, found '%.40s'", s);
    struct {
        const char *b, *e;
        char c0, c1;
        int *x0, *x1, *sp;
    } part[3] = {{s, us, 'b', 'f', &d->lhs_batch, &d->lhs_feature, d->lhs_spatial},
                 {us + 1, ar, 'i', 'o', &d->rhs_in, &d->rhs_out, d->rhs_spatial},
                 {ar + 2, s + strlen(s), 'b', 'f', &d->out_batch, &d->out_feature, d->out_spatial}};
    for (int k = 0; k < 3; k++) {
        size_t n = (size_t)(part[k].e - part[k].b);
        if (n < 2 || n > HLO_MAX_RANK)
            return perr_at(p, at, "expected dim_labels of 2 to %d dimensions a part, found '%.40s'",
                           HLO_MAX_RANK, s);
        *part[k].x0 = *part[k].x1 = -1;
        unsigned seen = 0, nsp = 0;
        for (size_t i = 0; i < n; i++) {
            char c = part[k].b[i];
            if (c == part[k].c0 && *part[k].x0 < 0) {
                *part[k].x0 = (int)i;
            } else if (c == part[k].c1 && *part[k].x1 < 0) {
                *part[k].x1 = (int)i;
            } else if (c >= '0' && c <= '9' && (unsigned)(c - '0') < n - 2 &&
                       !(seen & (1u << (c - '0')))) {
                seen |= 1u << (c - '0');
                part[k].sp[c - '0'] = (int)i;
                nsp++;
            } else {
                return perr_at(p, at, "dim_labels '%.40s': unexpected '%c'", s, c);
            }
        }
        if (*part[k].x0 < 0 || *part[k].x1 < 0 || nsp != n - 2)
            return perr_at(p, at, "dim_labels '%.40s': each part needs %c, %c and spatial digits",
                           s, part[k].c0, part[k].c1);
        if (k == 0)
            d->nspatial = nsp;
        else if (nsp != d->nspatial)
            return perr_at(p, at, "dim_labels '%.40s': parts differ in spatial dimensions", s);
    }
    return 0;
}

/* One dimension of a slice: [start:limit] or [start:limit:stride]. */
static int slice_item(parser *p, void *slot)
{
    hlo_slice_dim *d = slot;
    d->stride = 1;
    if (expect(p, HLO_TK_LBRACK, "'[' starting a slice dimension") ||
        expect_int(p, "the slice start", &d->start) ||
        expect(p, HLO_TK_COLON, "':' after the slice start") ||
        expect_int(p, "the slice limit", &d->limit))
        return -1;
    if (accept(p, HLO_TK_COLON) && expect_int(p, "the slice stride", &d->stride))
        return -1;
    return expect(p, HLO_TK_RBRACK, "']' closing the slice dimension");
}

/* slice={[0:4:1], [0:8]} */
static int parse_slice(parser *p, hlo_instr *in)
{
    in->has_slice = 1;
    return parse_braced(p, (void **)&in->slice, &in->nslice, sizeof *in->slice,
                        "'{' starting the slice", "',' or '}' in the slice", slice_item);
}

/* pad op: padding=0_0x1_1 or with interior padding 0_0_1x... */
static int parse_padding(parser *p, hlo_window *w)
{
    memset(w, 0, sizeof *w);
    const hlo_tok *v = peek(p, 0);
    if (v->kind != HLO_TK_WORD)
        return expected(p, "padding such as 0_0x1_1");
    p->pos++;
    size_t i = 0;
    while (i <= v->len) {
        size_t j = i;
        while (j < v->len && p->src[v->off + j] != 'x')
            j++;
        hlo_tok sub = *v;
        sub.off = v->off + i;
        sub.len = j - i;
        int64_t x[3] = {0, 0, 0};
        int k = w->n < HLO_MAX_RANK ? split_ints(p, &sub, '_', x, 3) : -1;
        if (k < 2)
            return perr_at(p, v, "expected padding such as 0_0x1_1 (low_high[_interior])");
        w->d[w->n].pad_lo = x[0];
        w->d[w->n].pad_hi = x[1];
        w->d[w->n].size = x[2];
        w->n++;
        i = j + 1;
    }
    return 0;
}

/* replica_groups={{0,1},{2,3}} | {} | [G,S]<=[d0,...] | [G,S]<=[d0,...]T(p0,...) */
static int parse_groups(parser *p, hlo_groups *g)
{
    memset(g, 0, sizeof *g);
    g->present = 1;
    const hlo_tok at = *peek(p, 0); /* errors about the whole value point at its start */
    if (accept(p, HLO_TK_LBRACE)) {
        unsigned cap = 0, n = 0;
        if (accept(p, HLO_TK_RBRACE))
            return 0;
        int more;
        do {
            const hlo_tok *at = peek(p, 0);
            hlo_ints l = {0};
            if (parse_int_list(p, &l))
                return -1;
            if (g->ngroups == 0)
                g->size = l.n;
            else if (l.n != g->size)
                return perr_at(p, at, "replica group of %u devices, the first has %u", l.n,
                               g->size);
            for (unsigned i = 0; i < l.n; i++) {
                if (grow(p, (void **)&g->ids, &cap, n, sizeof *g->ids))
                    return -1;
                g->ids[n++] = l.v[i];
            }
            g->ngroups++;
        } while ((more = list_more(p, HLO_TK_RBRACE, "',' or '}' in the replica groups")) > 0);
        return more; /* 0: closed, -1: error */
    }
    /* iota form */
    g->iota = 1;
    int64_t gs[2], rd[HLO_MAX_RANK], perm[HLO_MAX_RANK];
    unsigned nr = 0, np = 0;
    if (expect(p, HLO_TK_LBRACK, "'{' or '[' starting the replica groups") ||
        expect_int(p, "the number of groups", &gs[0]) ||
        expect(p, HLO_TK_COMMA, "',' in [groups,size]") ||
        expect_int(p, "the group size", &gs[1]) ||
        expect(p, HLO_TK_RBRACK, "']' closing [groups,size]") ||
        expect(p, HLO_TK_LE, "'<=' in the iota replica groups") ||
        expect(p, HLO_TK_LBRACK, "'[' starting the iota dimensions"))
        return -1;
    int more;
    do {
        if (nr >= HLO_MAX_RANK)
            return perr_at(p, peek(p, 0), "more than %u iota dimensions", HLO_MAX_RANK);
        if (expect_int(p, "an iota dimension", &rd[nr]))
            return -1;
        nr++;
    } while ((more = list_more(p, HLO_TK_RBRACK, "',' or ']' in the iota dimensions")) > 0);
    if (more < 0)
        return -1;
    const hlo_tok *tt = peek(p, 0);
    if (is_word(p, tt, "T")) {
        p->pos++;
        if (expect(p, HLO_TK_LPAREN, "'(' after T"))
            return -1;
        int more;
        do {
            if (np >= HLO_MAX_RANK || expect_int(p, "a transpose dimension", &perm[np]))
                return np >= HLO_MAX_RANK ? perr_at(p, tt, "transpose too long") : -1;
            np++;
        } while ((more = list_more(p, HLO_TK_RPAREN, "',' or ')' in the transpose")) > 0);
        if (more < 0)
            return -1;
        if (np != nr)
            return perr_at(p, tt, "transpose of %u dimensions for %u iota dimensions", np, nr);
    } else {
        for (unsigned i = 0; i < nr; i++)
            perm[i] = i;
    }
    uint64_t total = 1;
    unsigned used = 0;
    for (unsigned i = 0; i < nr; i++) {
        if (rd[i] <= 0 || (uint64_t)rd[i] > MAX_GROUP_IDS)
            return perr_at(p, &at, "iota dimension %lld out of range", (long long)rd[i]);
        total = sat_mul(total, (uint64_t)rd[i]);
        if (perm[i] < 0 || perm[i] >= (int64_t)nr || (used & (1u << perm[i])))
            return perr_at(p, &at, "transpose is not a permutation of the iota dimensions");
        used |= 1u << perm[i];
    }
    if (gs[0] <= 0 || gs[1] <= 0 || total > MAX_GROUP_IDS ||
        (uint64_t)gs[0] * (uint64_t)gs[1] != total)
        return perr_at(p, &at, "iota replica groups [%lld,%lld] do not cover %llu devices",
                       (long long)gs[0], (long long)gs[1], (unsigned long long)total);
    g->ngroups = (unsigned)gs[0];
    g->size = (unsigned)gs[1];
    if (!(g->ids = hlo_arena_alloc(p->a, total * sizeof *g->ids)))
        return nomem(p);
    /* ids = transpose(reshape(iota(total), rd), perm), flattened row-major */
    int64_t td[HLO_MAX_RANK], idx[HLO_MAX_RANK] = {0}, st[HLO_MAX_RANK];
    for (unsigned i = 0; i < nr; i++)
        td[i] = rd[perm[i]];
    for (int i = (int)nr - 1, s = 1; i >= 0; i--) {
        st[i] = s;
        s *= (int)rd[i];
    }
    for (uint64_t j = 0; j < total; j++) {
        int64_t lin = 0;
        for (unsigned k = 0; k < nr; k++)
            lin += idx[k] * st[perm[k]];
        g->ids[j] = lin;
        for (int k = (int)nr - 1; k >= 0; k--) {
            if (++idx[k] < td[k])
                break;
            idx[k] = 0;
        }
    }
    return 0;
}

/* metadata={op_type="..." op_name="..." source_file="..." source_line=N ...} */
static int parse_metadata(parser *p, hlo_metadata *md)
{
    if (expect(p, HLO_TK_LBRACE, "'{' starting the metadata"))
        return -1;
    while (!accept(p, HLO_TK_RBRACE)) {
        if (accept(p, HLO_TK_COMMA))
            continue;
        const hlo_tok *k = peek(p, 0);
        if (k->kind != HLO_TK_WORD)
            return expected(p, "a metadata key or '}'");
        p->pos++;
        if (expect(p, HLO_TK_EQ, "'=' after the metadata key"))
            return -1;
        const hlo_tok *v = peek(p, 0);
        if (v->kind != HLO_TK_STRING && v->kind != HLO_TK_WORD)
            return expected(p, "a string or number");
        p->pos++;
        const char **dst = is_word(p, k, "op_type")       ? &md->op_type
                           : is_word(p, k, "op_name")     ? &md->op_name
                           : is_word(p, k, "source_file") ? &md->source_file
                                                          : NULL;
        if (dst) {
            if (v->kind != HLO_TK_STRING)
                return perr_at(p, v, "expected a string for the metadata key");
            if (!(*dst = unescape(p, v)))
                return nomem(p);
        } else if (is_word(p, k, "source_line") &&
                   int_of(p->src + v->off, v->len, &md->source_line)) {
            return perr_at(p, v, "expected a line number");
        }
    }
    return 0;
}

/* known_trip_count in a backend_config: {"known_trip_count":{"n":"12"}} */
static int64_t find_trip(const char *s)
{
    const char *k = strstr(s, "known_trip_count");
    if (!k)
        return -1;
    const char *n = strstr(k, "\"n\"");
    if (!n)
        return -1;
    n += 3;
    while (*n == ' ' || *n == ':' || *n == '"')
        n++;
    int64_t v = 0;
    size_t len = 0;
    while (n[len] >= '0' && n[len] <= '9')
        len++;
    if (!len || int_of(n, len, &v))
        return -1;
    return v;
}

static int add_ref(parser *p, hlo_comp **slot, const hlo_tok *t)
{
    if (t->kind != HLO_TK_WORD)
        return perr_at(p, t, "expected a computation name");
    if (mem_grow(&p->refs, &p->caprefs, p->nrefs + 1, sizeof *p->refs, 64))
        return nomem(p);
    comp_ref *r = &p->refs[p->nrefs++];
    r->slot = slot;
    r->line = t->line;
    r->col = t->col;
    if (!(r->name = name_of(p, t)))
        return nomem(p);
    return 0;
}

static int comp_item(parser *p, void *slot)
{
    return add_ref(p, slot, next(p));
}

static int parse_comp_list(parser *p, hlo_instr *in)
{
    return parse_braced(p, (void **)&in->branches, &in->nbranches, sizeof *in->branches,
                        "'{' starting the computations", "',' or '}' in the computations",
                        comp_item);
}

/* Interpret the known attribute `a` of `in` from its tokens [b, e). */
static int typed_attr(parser *p, hlo_instr *in, const hlo_attr *a, size_t b, size_t e)
{
    size_t save_pos = p->pos, save_lim = p->lim;
    p->pos = b;
    p->lim = e;
    const char *n = a->name;
    const hlo_tok *t0 = peek(p, 0);
    int r = 0, known = 1;
    /* attributes stored as they parse: an integer list, an integer, or a computation */
    const struct {
        const char *name;
        hlo_ints *l;
        int64_t *v;
        hlo_comp **slot;
    } fields[] = {{"dimensions", .l = &in->dimensions},
                  {"lhs_contracting_dims", .l = &in->lhs_contracting},
                  {"rhs_contracting_dims", .l = &in->rhs_contracting},
                  {"lhs_batch_dims", .l = &in->lhs_batch},
                  {"rhs_batch_dims", .l = &in->rhs_batch},
                  {"slice_sizes", .l = &in->slice_sizes},
                  {"dynamic_slice_sizes", .l = &in->dynamic_slice_sizes},
                  {"index", .v = &in->index},
                  {"channel_id", .v = &in->channel_id},
                  {"feature_group_count", .v = &in->feature_group_count},
                  {"batch_group_count", .v = &in->batch_group_count},
                  {"iota_dimension", .v = &in->iota_dimension},
                  {"to_apply", .slot = &in->to_apply},
                  {"calls", .slot = &in->calls},
                  {"condition", .slot = &in->condition},
                  {"body", .slot = &in->body}};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (!strcmp(n, fields[i].name)) {
            if (fields[i].l)
                r = parse_int_list(p, fields[i].l);
            else if (fields[i].v)
                r = expect_int(p, "an integer", fields[i].v);
            else
                r = add_ref(p, fields[i].slot, next(p));
            goto out;
        }
    if (!strcmp(n, "window")) {
        in->has_window = 1;
        r = parse_window(p, &in->window);
    } else if (!strcmp(n, "dim_labels")) {
        in->has_dim_labels = 1;
        r = parse_dim_labels(p, t0, a->value, &in->dim_labels);
        p->pos = e;
    } else if (!strcmp(n, "slice")) {
        r = parse_slice(p, in);
    } else if (!strcmp(n, "padding") && in->op == HLO_OP_PAD) {
        in->has_padding = 1;
        r = parse_padding(p, &in->padding);
    } else if (!strcmp(n, "replica_groups")) {
        r = parse_groups(p, &in->replica_groups);
    } else if (!strcmp(n, "source_target_pairs")) {
        hlo_groups g;
        r = parse_groups(p, &g);
        if (!r && (g.iota || (g.ngroups && g.size != 2)))
            r = perr_at(p, t0, "expected source_target_pairs such as {{0,1},{1,0}}");
        in->npairs = g.ngroups;
        in->pairs = g.ids;
    } else if (!strcmp(n, "metadata")) {
        r = parse_metadata(p, &in->meta);
    } else if (!strcmp(n, "backend_config")) {
        if (t0->kind == HLO_TK_STRING) {
            if (!(in->backend_config = unescape(p, next(p))))
                r = nomem(p);
        } else {
            in->backend_config = a->value;
            p->pos = e;
        }
        if (!r)
            in->known_trip_count = find_trip(in->backend_config);
    } else if (!strcmp(n, "frontend_attributes") || !strcmp(n, "sharding")) {
        if (t0->kind != HLO_TK_LBRACE)
            r = expected(p, "'{'");
        *(n[0] == 'f' ? &in->frontend_attributes : &in->sharding) = a->value;
        p->pos = e;
    } else if (!strcmp(n, "custom_call_target")) {
        if (t0->kind != HLO_TK_STRING)
            r = expected(p, "the target name as a string");
        else if (!(in->custom_call_target = unescape(p, next(p))))
            r = nomem(p);
    } else if (!strcmp(n, "kind") || !strcmp(n, "direction")) {
        if (t0->kind != HLO_TK_WORD)
            r = expected(p, n[0] == 'k' ? "a fusion kind such as kLoop" : "a direction");
        else
            *(n[0] == 'k' ? &in->fusion_kind : &in->direction) = a->value;
        p->pos = e;
    } else if (!strcmp(n, "branch_computations")) {
        r = parse_comp_list(p, in);
    } else if (!strcmp(n, "true_computation") || !strcmp(n, "false_computation")) {
        if (!in->branches) {
            in->branches = hlo_arena_alloc(p->a, 2 * sizeof *in->branches);
            if (!in->branches) {
                r = nomem(p);
                goto out;
            }
            in->nbranches = 2;
        }
        r = add_ref(p, &in->branches[n[0] == 't' ? 0 : 1], next(p));
    } else {
        known = 0;
    }
out:
    if (!r && known && p->pos != e)
        r = expected(p, "the end of the attribute value");
    p->pos = save_pos;
    p->lim = save_lim;
    return r;
}

/* name=value; fills *a (value as raw text) and the token range of the value. */
static int parse_attr(parser *p, hlo_attr *a, size_t *b, size_t *e)
{
    const hlo_tok *k = peek(p, 0);
    if (k->kind != HLO_TK_WORD)
        return expected(p, "an attribute name");
    p->pos++;
    a->line = k->line;
    a->col = k->col;
    if (!(a->name = hlo_arena_strndup(p->a, p->src + k->off, k->len)))
        return nomem(p);
    if (expect(p, HLO_TK_EQ, "'=' after the attribute name") || capture_value(p, b, e))
        return -1;
    const hlo_tok *first = &p->t[*b], *last = &p->t[*e - 1];
    if (!(a->value =
              hlo_arena_strndup(p->a, p->src + first->off, last->off + last->len - first->off)))
        return nomem(p);
    return 0;
}

/* ---- instructions and computations ------------------------------------------------------ */

static int parse_instr(parser *p, hlo_comp *c, const char ***opnames, unsigned caps[2], nmap *names)
{
    hlo_instr *in = hlo_arena_alloc(p->a, sizeof *in);
    if (!in)
        return nomem(p);
    in->index = in->channel_id = in->iota_dimension = in->known_trip_count = -1;
    in->feature_group_count = in->batch_group_count = 1;
    in->param_number = -1;
    const hlo_tok *t = peek(p, 0);
    if (is_word(p, t, "ROOT")) {
        in->is_root = 1;
        p->pos++;
    }
    t = peek(p, 0);
    in->line = t->line;
    in->col = t->col;
    if (expect_name(p, "an instruction name or '}'", &in->name) ||
        expect(p, HLO_TK_EQ, "'=' after the instruction name") || parse_shape(p, &in->shape, 0))
        return -1;
    const hlo_tok *ot = peek(p, 0);
    if (ot->kind != HLO_TK_WORD)
        return expected(p, "an opcode");
    p->pos++;
    in->op = hlo_opcode_lookup(p->src + ot->off, ot->len);
    if (!(in->opname = hlo_arena_strndup(p->a, p->src + ot->off, ot->len)))
        return nomem(p);
    const hlo_tok *lp = peek(p, 0);
    if (expect(p, HLO_TK_LPAREN, "'(' after the opcode"))
        return -1;
    const char **ops = NULL;
    unsigned cap = 0;
    if (in->op == HLO_OP_CONSTANT) {
        /* the literal: everything up to the matching ')' */
        size_t depth = 1, start = peek(p, 0)->off;
        for (;;) {
            const hlo_tok *u = next(p);
            if (u->kind == HLO_TK_EOF)
                return perr_at(
                    p, lp, "expected the ')' closing the constant's '(' here, found end of input");
            if (u->kind == HLO_TK_LPAREN || u->kind == HLO_TK_LBRACE || u->kind == HLO_TK_LBRACK)
                depth++;
            else if (u->kind == HLO_TK_RPAREN || u->kind == HLO_TK_RBRACE ||
                     u->kind == HLO_TK_RBRACK)
                depth--;
            if (!depth) {
                if (u->kind != HLO_TK_RPAREN)
                    return perr_at(p, u, "expected ')' closing the constant, found '%c'",
                                   p->src[u->off]);
                size_t end = u->off > start ? u->off : start;
                if (!(in->literal = hlo_arena_strndup(p->a, p->src + start, end - start)))
                    return nomem(p);
                break;
            }
        }
    } else if (in->op == HLO_OP_PARAMETER) {
        if (expect_int(p, "the parameter number", &in->param_number) ||
            expect(p, HLO_TK_RPAREN, "')' after the parameter number"))
            return -1;
        if (in->param_number < 0)
            return perr_at(p, lp, "negative parameter number");
    } else if (!accept(p, HLO_TK_RPAREN)) {
        int more;
        do {
            const hlo_tok *u = peek(p, 0);
            /* older dumps type each operand: f32[8]{0} %x, (f32[], s32[]) %t */
            if (u->kind == HLO_TK_LPAREN ||
                (u->kind == HLO_TK_WORD && peek(p, 1)->kind == HLO_TK_LBRACK &&
                 etype_lookup(p->src + u->off, u->len) >= 0)) {
                hlo_shape tmp;
                if (parse_shape(p, &tmp, 0))
                    return -1;
            }
            if (grow(p, (void **)&ops, &cap, in->nops, sizeof *ops) ||
                expect_name(p, "an operand name", &ops[in->nops]))
                return -1;
            in->nops++;
        } while ((more = list_more(p, HLO_TK_RPAREN, "',' or ')' after the operand")) > 0);
        if (more < 0)
            return -1;
    }
    /* attributes */
    unsigned acap = 0;
    while (accept(p, HLO_TK_COMMA)) {
        size_t b, e;
        if (grow(p, (void **)&in->attrs, &acap, in->nattrs, sizeof *in->attrs) ||
            parse_attr(p, &in->attrs[in->nattrs], &b, &e) ||
            typed_attr(p, in, &in->attrs[in->nattrs], b, e))
            return -1;
        in->nattrs++;
    }
    int r = nmap_put(names, in->name, in);
    if (r < 0)
        return nomem(p);
    if (r > 0) {
        hlo_instr *prev = nmap_get(names, in->name);
        return err_set(p->e, "%s:%u:%u: instruction '%s' already defined at line %u", p->file,
                       in->line, in->col, in->name, prev->line);
    }
    if (in->is_root) {
        if (c->root && c->root->is_root)
            return err_set(p->e, "%s:%u:%u: second ROOT in computation '%s' (first at line %u)",
                           p->file, in->line, in->col, c->name, c->root->line);
        c->root = in;
    }
    if (grow(p, (void **)&c->instrs, &caps[0], c->ninstrs, sizeof *c->instrs) ||
        grow(p, (void **)opnames, &caps[1], c->ninstrs, sizeof **opnames))
        return -1;
    c->instrs[c->ninstrs] = in;
    (*opnames)[c->ninstrs] = (const char *)ops;
    c->ninstrs++;
    return 0;
}

static int parse_comp(parser *p)
{
    hlo_comp *c = hlo_arena_alloc(p->a, sizeof *c);
    if (!c)
        return nomem(p);
    c->result.et = HLO_ET_COUNT;
    const hlo_tok *t = peek(p, 0);
    if (is_word(p, t, "ENTRY")) {
        c->is_entry = 1;
        p->pos++;
        if (p->m->entry)
            return perr_at(p, t, "second ENTRY computation");
        p->m->entry = c;
    }
    c->line = peek(p, 0)->line;
    if (expect_name(p, "a computation name (or ENTRY)", &c->name))
        return -1;
    if (accept(p, HLO_TK_LPAREN)) {
        unsigned cap = 0;
        if (!accept(p, HLO_TK_RPAREN)) {
            int more;
            do {
                const char *pn;
                if (grow(p, (void **)&c->param_shapes, &cap, c->nparams, sizeof *c->param_shapes) ||
                    expect_name(p, "a parameter name", &pn) ||
                    expect(p, HLO_TK_COLON, "':' after the parameter name") ||
                    parse_shape(p, &c->param_shapes[c->nparams], 0))
                    return -1;
                c->nparams++;
            } while ((more = list_more(p, HLO_TK_RPAREN, "',' or ')' in the parameters")) > 0);
            if (more < 0)
                return -1;
        }
        if (expect(p, HLO_TK_ARROW, "'->' before the result shape") ||
            parse_shape(p, &c->result, 0))
            return -1;
    }
    if (expect(p, HLO_TK_LBRACE, "'{' starting the computation body"))
        return -1;
    nmap names = {0};
    const char **opnames = NULL;
    unsigned caps[2] = {0, 0};
    int r = 0;
    while (!accept(p, HLO_TK_RBRACE)) {
        if ((r = parse_instr(p, c, &opnames, caps, &names)))
            goto out;
    }
    if (!c->ninstrs) {
        r = perr_at(p, &p->t[p->pos - 1], "computation '%s' has no instructions", c->name);
        goto out;
    }
    if (!c->root)
        c->root = c->instrs[c->ninstrs - 1];
    /* operands by name, within the computation */
    for (unsigned i = 0; i < c->ninstrs && !r; i++) {
        hlo_instr *in = c->instrs[i];
        const char **on = (const char **)opnames[i];
        if (!in->nops)
            continue;
        if (!(in->operands = hlo_arena_alloc(p->a, in->nops * sizeof *in->operands))) {
            r = nomem(p);
            break;
        }
        for (unsigned k = 0; k < in->nops; k++) {
            in->operands[k] = nmap_get(&names, on[k]);
            if (!in->operands[k]) {
                r = err_set(p->e, "%s:%u:%u: operand '%s' of '%s' is not defined in '%s'", p->file,
                            in->line, in->col, on[k], in->name, c->name);
                break;
            }
        }
    }
    /* attributes after the body (execution_thread="...") */
    while (!r && peek(p, 0)->kind == HLO_TK_COMMA) {
        p->pos++;
        hlo_attr a;
        size_t b, e;
        r = parse_attr(p, &a, &b, &e);
    }
    if (!r) {
        r = grow(p, (void **)&p->m->comps, &p->capcomps, p->m->ncomps, sizeof *p->m->comps);
        if (!r)
            p->m->comps[p->m->ncomps++] = c;
    }
out:
    nmap_fini(&names);
    return r;
}

static int parse_module(parser *p)
{
    hlo_module *m = p->m;
    if (!is_word(p, peek(p, 0), "HloModule"))
        return expected(p, "'HloModule'");
    p->pos++;
    if (expect_name(p, "the module name", &m->name))
        return -1;
    unsigned cap = 0;
    while (accept(p, HLO_TK_COMMA)) {
        size_t b, e;
        if (grow(p, (void **)&m->attrs, &cap, m->nattrs, sizeof *m->attrs) ||
            parse_attr(p, &m->attrs[m->nattrs], &b, &e))
            return -1;
        hlo_attr *a = &m->attrs[m->nattrs++];
        int64_t *dst = !strcmp(a->name, "num_partitions")  ? &m->num_partitions
                       : !strcmp(a->name, "replica_count") ? &m->replica_count
                                                           : NULL;
        if (dst && (int_of(a->value, strlen(a->value), dst) || *dst < 1)) {
            char found[64]; /* the value's first token, control bytes shown as '?' */
            describe(p, &p->t[b], found, sizeof found);
            return perr_at(p, &p->t[b], "expected a positive count, found %s", found);
        }
    }
    while (peek(p, 0)->kind != HLO_TK_EOF)
        if (parse_comp(p))
            return -1;
    if (!m->ncomps)
        return expected(p, "a computation");
    if (!m->entry)
        m->entry = m->comps[m->ncomps - 1];
    /* computation references */
    nmap cm = {0};
    int r = 0;
    for (unsigned i = 0; i < m->ncomps && !r; i++) {
        int k = nmap_put(&cm, m->comps[i]->name, m->comps[i]);
        if (k < 0)
            r = nomem(p);
        else if (k > 0)
            r = err_set(p->e, "%s:%u: computation '%s' defined twice", p->file, m->comps[i]->line,
                        m->comps[i]->name);
    }
    for (size_t i = 0; i < p->nrefs && !r; i++) {
        comp_ref *ref = &p->refs[i];
        if (!(*ref->slot = nmap_get(&cm, ref->name)))
            r = err_set(p->e, "%s:%u:%u: no computation named '%s'", p->file, ref->line, ref->col,
                        ref->name);
    }
    nmap_fini(&cm);
    return r;
}

hlo_module *hlo_parse(const char *text, size_t len, const char *file, err *e)
{
    parser p = {.src = text, .file = file ? file : "<hlo>", .e = e};
    hlo_module *m = NULL;
    if (hlo_lex(text, len, p.file, &p.t, &p.nt, e))
        return NULL;
    p.lim = p.nt;
    hlo_arena *a = hlo_arena_new();
    if (!a || !(m = hlo_arena_alloc(a, sizeof *m))) {
        err_setk(e, ERR_NOMEM, "%s: out of memory", p.file);
        hlo_arena_free(a);
        free(p.t);
        return NULL;
    }
    m->arena = a;
    m->num_partitions = m->replica_count = 1;
    p.a = a;
    p.m = m;
    m->file = hlo_arena_strndup(a, p.file, strlen(p.file));
    int r = m->file ? parse_module(&p) : nomem(&p);
    free(p.t);
    free(p.refs);
    if (r) {
        hlo_arena_free(a);
        return NULL;
    }
    return m;
}

hlo_module *hlo_parse_file(const char *path, err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, "%s: cannot open", path), NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t nc = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                fclose(f);
                return err_setk(e, ERR_NOMEM, "%s: out of memory", path), NULL;
            }
            buf = nb;
            cap = nc;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return err_set(e, "%s: read error", path), NULL;
    }
    hlo_module *m = hlo_parse(buf, n, path, e);
    free(buf);
    return m;
}

void hlo_module_free(hlo_module *m)
{
    if (m)
        hlo_arena_free(m->arena);
}

hlo_comp *hlo_find_comp(const hlo_module *m, const char *name)
{
    for (unsigned i = 0; i < m->ncomps; i++)
        if (!strcmp(m->comps[i]->name, name))
            return m->comps[i];
    return NULL;
}

hlo_instr *hlo_find_instr(const hlo_comp *c, const char *name)
{
    for (unsigned i = 0; i < c->ninstrs; i++)
        if (!strcmp(c->instrs[i]->name, name))
            return c->instrs[i];
    return NULL;
}

const char *hlo_attr_get(const hlo_instr *i, const char *name)
{
    for (unsigned k = 0; k < i->nattrs; k++)
        if (!strcmp(i->attrs[k].name, name))
            return i->attrs[k].value;
    return NULL;
}
