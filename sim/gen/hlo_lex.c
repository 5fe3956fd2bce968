/* hlo_lex.c - tokens of XLA's HLO text, and the arena the parsed module lives in. HLO words
 * run together names, numbers and opcodes (`get-tuple-element.3`, `1e-05`, `3x3`, `%p.1`):
 * a word is a run of [A-Za-z0-9_.$%+*?#] and '-' not followed by '>'; '->' and '<=' are
 * tokens of their own; comments are C style. */
#include <stdlib.h>
#include <string.h>

#include "hlo_int.h"

static int word_char(const char *s, size_t i, size_t n)
{
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    if (c == '-')
        return !(i + 1 < n && s[i + 1] == '>');
    return c == '_' || c == '.' || c == '$' || c == '%' || c == '+' || c == '*' || c == '?' ||
           c == '#';
}

static int lex_err(err *e, const char *file, unsigned line, unsigned col, const char *what,
                   unsigned char c)
{
    if (c >= 0x21 && c < 0x7f)
        return err_set(e, "%s:%u:%u: %s '%c'", file, line, col, what, c);
    return err_set(e, "%s:%u:%u: %s byte 0x%02x", file, line, col, what, c);
}

int hlo_lex(const char *s, size_t n, const char *file, hlo_tok **toks, size_t *ntoks, err *e)
{
    size_t cap = n / 4 + 16, nt = 0, i = 0, ls = 0;
    unsigned line = 1;
    hlo_tok *v = malloc(cap * sizeof *v);
    if (!v)
        return err_setk(e, ERR_NOMEM, "%s: out of memory", file);
    for (;;) {
        /* whitespace and comments */
        while (i < n) {
            char c = s[i];
            if (c == '\n') {
                line++;
                ls = ++i;
            } else if (c == ' ' || c == '\t' || c == '\r') {
                i++;
            } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
                unsigned l0 = line, c0 = (unsigned)(i - ls + 1);
                i += 2;
                while (i + 1 < n && !(s[i] == '*' && s[i + 1] == '/')) {
                    if (s[i] == '\n') {
                        line++;
                        ls = i + 1;
                    }
                    i++;
                }
                if (i + 1 >= n) {
                    free(v);
                    return err_set(e,
                                   "%s:%u:%u: expected '*/' closing the comment opened here, found "
                                   "end of input",
                                   file, l0, c0);
                }
                i += 2;
            } else if (c == '/' && i + 1 < n && s[i + 1] == '/') {
                while (i < n && s[i] != '\n')
                    i++;
            } else {
                break;
            }
        }
        if (nt + 1 >= cap) {
            size_t nc = cap * 2;
            hlo_tok *nv = realloc(v, nc * sizeof *v);
            if (!nv) {
                free(v);
                return err_setk(e, ERR_NOMEM, "%s: out of memory", file);
            }
            v = nv;
            cap = nc;
        }
        hlo_tok *t = &v[nt];
        t->line = line;
        t->col = (uint32_t)(i - ls + 1);
        t->off = i;
        if (i >= n) {
            t->kind = HLO_TK_EOF;
            t->len = 0;
            nt++;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        size_t j = i + 1;
        unsigned tl = t->line, tc = t->col; /* errors free v, and t with it */
        static const char punct[] = "{}[](),=:";
        static const hlo_tk punct_kind[] = {HLO_TK_LBRACE, HLO_TK_RBRACE, HLO_TK_LBRACK,
                                            HLO_TK_RBRACK, HLO_TK_LPAREN, HLO_TK_RPAREN,
                                            HLO_TK_COMMA,  HLO_TK_EQ,     HLO_TK_COLON};
        const char *pc = c ? strchr(punct, c) : NULL;
        if (pc) {
            t->kind = punct_kind[pc - punct];
        } else if (c == '"') {
            t->kind = HLO_TK_STRING;
            while (j < n && s[j] != '"') {
                if (s[j] == '\\' && j + 1 < n)
                    j++;
                if (s[j] == '\n') {
                    line++;
                    ls = j + 1;
                }
                j++;
            }
            if (j >= n) {
                free(v);
                return err_set(
                    e, "%s:%u:%u: expected '\"' closing the string opened here, found end of input",
                    file, tl, tc);
            }
            j++;
        } else if ((c == '<' && j < n && s[j] == '=') || (c == '-' && j < n && s[j] == '>')) {
            t->kind = c == '<' ? HLO_TK_LE : HLO_TK_ARROW;
            j++;
        } else if (word_char(s, i, n)) {
            t->kind = HLO_TK_WORD;
            while (j < n && word_char(s, j, n))
                j++;
        } else {
            free(v);
            return lex_err(e, file, tl, tc, "expected a name, number, string or punctuation, found",
                           c);
        }
        t->len = j - i;
        i = j;
        nt++;
    }
    *toks = v;
    *ntoks = nt;
    return 0;
}

/* ---- arena ----------------------------------------------------------------------------- */

#define ARENA_BLOCK (256u << 10)

typedef struct arena_block {
    struct arena_block *next;
    size_t used, size;
    max_align_t data[];
} arena_block;

struct hlo_arena {
    arena_block *head;
};

hlo_arena *hlo_arena_new(void)
{
    return calloc(1, sizeof(hlo_arena));
}

void hlo_arena_free(hlo_arena *a)
{
    if (!a)
        return;
    for (arena_block *b = a->head, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    free(a);
}

void *hlo_arena_alloc(hlo_arena *a, size_t n)
{
    const size_t al = sizeof(max_align_t);
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + al - 1) / al * al;
    if (!n)
        n = al;
    arena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t sz = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = malloc(sizeof *b + sz);
        if (!b)
            return NULL;
        b->used = 0;
        b->size = sz;
        /* a big allocation gets a block of its own behind the current one, so the
         * current block's free space is not wasted */
        if (a->head && sz > ARENA_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *hlo_arena_strndup(hlo_arena *a, const char *s, size_t n)
{
    char *p = hlo_arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}
