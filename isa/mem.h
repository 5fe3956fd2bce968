/* mem.h - memory helpers shared by every layer (growing arrays, destructors' release lists).
 * Header-only; no state. */
#ifndef TPUSIM_MEM_H
#define TPUSIM_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Make room for `need` elements of `size` bytes in the array *(void **)arr, whose capacity is
 * *cap elements: the capacity doubles (from `first` when it is 0) until it holds need, and
 * the elements added are zeroed. 0, or -1 when there is no memory or the size would overflow
 * (the array and *cap are then unchanged). Callers keep their own count and error report. */
static inline int mem_grow(void *arr, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : first;
    while (c < need) {
        if (c > SIZE_MAX / 2 / size)
            return -1;
        c *= 2;
    }
    void **p = arr;
    char *n = realloc(*p, c * size);
    if (!n)
        return -1;
    memset(n + *cap * size, 0, (c - *cap) * size);
    *p = n;
    *cap = c;
    return 0;
}

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
