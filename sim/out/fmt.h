/* fmt.h - formatting for the text outputs: times in ps and byte counts scaled to
 * the largest unit they reach. One tier-picking routine serves every format; the formats
 * themselves differ on purpose (the report shows 4 significant digits, the pod report and the
 * progress line fixed decimals), so each is a table of tiers. Also the CSV field quoting. */
#ifndef TPU_FMT_H
#define TPU_FMT_H

#include <stddef.h>
#include <stdio.h>

/* One tier: values >= min print as printf(fmt, v * scale); the last tier takes the rest. */
typedef struct fmt_tier {
    double min;
    double scale;
    const char *fmt; /* one double conversion, e.g. "%.4g ms" */
} fmt_tier;

/* Writes v at the first of the n tiers whose min it reaches (the last one otherwise) into buf
 * (always NUL-terminated when cap > 0). */
void fmt_tiered(char *buf, size_t cap, double v, const fmt_tier *tiers, size_t n);

/* 4 significant digits, s / ms / us / ns: "1.234 ms" (the run report). */
void fmt_time(char *buf, size_t cap, double ps);
/* 3 decimals, s / ms / us: "1.234 ms" (the pod report, the progress line). */
void fmt_time_fixed(char *buf, size_t cap, double ps);
/* 4 significant digits, B to PiB in powers of 1024: "1.5 GiB" (the run report). */
void fmt_bytes(char *buf, size_t cap, double b);
/* 2 decimals (whole bytes below 1 KiB), B to PiB: "1.50 GiB" (the pod report). */
void fmt_bytes_fixed(char *buf, size_t cap, double b);
/* A count with a k / M / G suffix: "1.23M" (the progress line). */
void fmt_count(char *buf, size_t cap, double v);

/* One CSV field per RFC 4180 to f: enclosed in double quotes, with each quote doubled, when it
 * holds a quote, a comma, CR or LF (or always, for `quote`); written as is otherwise. The one
 * CSV quoting of the outputs (report.c's and compare.c's CSV). */
void fmt_csv_field(FILE *f, const char *s, int quote);

#endif
