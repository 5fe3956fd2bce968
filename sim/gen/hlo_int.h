/* hlo_int.h - internal to the HLO importer (hlo_lex.c, hlo_parse.c, hlo_sem.c): tokens and
 * the module arena. */
#ifndef TPU_HLO_INT_H
#define TPU_HLO_INT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum hlo_tk {
    HLO_TK_EOF,
    HLO_TK_WORD,   /* names, numbers, opcodes, element types: [A-Za-z0-9_.$%+*?#-]+ */
    HLO_TK_STRING, /* "..." with backslash escapes; off/len cover the quotes */
    HLO_TK_LBRACE,
    HLO_TK_RBRACE,
    HLO_TK_LBRACK,
    HLO_TK_RBRACK,
    HLO_TK_LPAREN,
    HLO_TK_RPAREN,
    HLO_TK_COMMA,
    HLO_TK_EQ,
    HLO_TK_COLON,
    HLO_TK_ARROW, /* -> */
    HLO_TK_LE     /* <= */
} hlo_tk;

typedef struct hlo_tok {
    uint8_t kind;
    uint32_t line, col; /* 1-based; col counts bytes */
    size_t off, len;
} hlo_tok;

/* Split src into tokens (comments and whitespace dropped), the last one HLO_TK_EOF.
 * *toks is malloc'd (caller frees). Returns 0, or -1 with e filled: "file:line:col: ..." for
 * an unterminated string or comment or a character HLO does not use. */
int hlo_lex(const char *src, size_t n, const char *file, hlo_tok **toks, size_t *ntoks, err *e);

/* Arena: zeroed allocations released together; NULL when out of memory. */
typedef struct hlo_arena hlo_arena;
hlo_arena *hlo_arena_new(void);
void hlo_arena_free(hlo_arena *a);
void *hlo_arena_alloc(hlo_arena *a, size_t n);
char *hlo_arena_strndup(hlo_arena *a, const char *s, size_t n);

#endif
