/* umath.h - unsigned 64-bit integer helpers shared by every layer (the generators' tiling,
 * the memory planner, the HBM model): ceiling division, rounding up, min/max, gcd.
 * Header-only; no state. um_align_up(a, al) needs a + al - 1 to fit. */
#ifndef TPUSIM_UMATH_H
#define TPUSIM_UMATH_H

#include <stdint.h>

/* ceil(a / b), b > 0; no overflow for any a */
static inline uint64_t um_cdiv(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* a rounded up to a multiple of al > 0 */
static inline uint64_t um_align_up(uint64_t a, uint64_t al)
{
    return (a + al - 1) / al * al;
}

static inline uint64_t um_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static inline uint64_t um_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* greatest common divisor (Euclid); um_gcd(a, 0) = a */
static inline uint64_t um_gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

#endif
