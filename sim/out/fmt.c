/* fmt.c - human-readable times, byte counts and counts for the text outputs (see fmt.h). */
#include "fmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FMT_N(t) (sizeof(t) / sizeof((t)[0]))

void fmt_tiered(char *buf, size_t cap, double v, const fmt_tier *tiers, size_t n)
{
    size_t i = 0;
    while (i + 1 < n && !(v >= tiers[i].min))
        i++;
    snprintf(buf, cap, tiers[i].fmt, v * tiers[i].scale);
}

void fmt_time(char *buf, size_t cap, double ps)
{
    static const fmt_tier t[] = {{1e12, 1e-12, "%.4g s"},
                                 {1e9, 1e-9, "%.4g ms"},
                                 {1e6, 1e-6, "%.4g us"},
                                 {-INFINITY, 1e-3, "%.4g ns"}};
    fmt_tiered(buf, cap, ps, t, FMT_N(t));
}

void fmt_time_fixed(char *buf, size_t cap, double ps)
{
    static const fmt_tier t[] = {
        {1e12, 1e-12, "%.3f s"}, {1e9, 1e-9, "%.3f ms"}, {-INFINITY, 1e-6, "%.3f us"}};
    fmt_tiered(buf, cap, ps, t, FMT_N(t));
}

/* Powers of 1024 are exact in binary floating point: scaling by 0x1p-10 * i equals dividing
 * by 1024 i times. */
#define FMT_BYTE_TIERS(f, f0)                                                                      \
    {                                                                                              \
        {0x1p50, 0x1p-50, f " PiB"}, {0x1p40, 0x1p-40, f " TiB"}, {0x1p30, 0x1p-30, f " GiB"},     \
            {0x1p20, 0x1p-20, f " MiB"}, {0x1p10, 0x1p-10, f " KiB"},                              \
        {                                                                                          \
            -INFINITY, 1, f0 " B"                                                                  \
        }                                                                                          \
    }

void fmt_bytes(char *buf, size_t cap, double b)
{
    static const fmt_tier t[] = FMT_BYTE_TIERS("%.4g", "%.4g");
    fmt_tiered(buf, cap, b, t, FMT_N(t));
}

void fmt_bytes_fixed(char *buf, size_t cap, double b)
{
    static const fmt_tier t[] = FMT_BYTE_TIERS("%.2f", "%.0f");
    fmt_tiered(buf, cap, b, t, FMT_N(t));
}

void fmt_count(char *buf, size_t cap, double v)
{
    static const fmt_tier t[] = {
        {1e9, 1e-9, "%.2fG"}, {1e6, 1e-6, "%.2fM"}, {1e3, 1e-3, "%.1fk"}, {-INFINITY, 1, "%.0f"}};
    fmt_tiered(buf, cap, v, t, FMT_N(t));
}

void fmt_csv_field(FILE *f, const char *s, int quote)
{
    if (!quote)
        quote = s[strcspn(s, "\",\r\n")] != '\0';
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}
