/* mem.h - memory helpers shared by every layer (destructors' release lists). Header-only; no
 * state. */
#ifndef TPUSIM_MEM_H
#define TPUSIM_MEM_H

#include <stddef.h>
#include <stdlib.h>

/* free() each of the n pointers p[0..n-1], in order (NULL ones too, as free does). */
static inline void mem_free_n(void *const *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i]);
}

/* free() each argument, in order: a destructor's release list, MEM_FREE_ALL(p->a, p->b, p).
 * Every argument is evaluated before the first is freed, so the owner may come last. */
#define MEM_FREE_ALL(...)                                                                          \
    mem_free_n((void *const[]){__VA_ARGS__}, sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))

#endif
