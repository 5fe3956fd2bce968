/* yamlin.h - reading a YAML file of one mapping with libyaml's event parser, for the chip
 * config (config.c) and the model presets (gen/models.c): the parser and its file, events
 * with one-line errors naming the file and line, and the document rule both share. */
#ifndef TPUSIM_YAMLIN_H
#define TPUSIM_YAMLIN_H

#include <stdio.h>
#include <yaml.h>

#include "err.h"

typedef struct yin {
    yaml_parser_t parser;
    FILE *fp;
    const char *path; /* for messages */
    err *e;
} yin;

/* Open path for reading ("PATH: cannot open: REASON" on failure). yin_close releases it. */
int yin_open(yin *y, const char *path, err *e);
void yin_close(yin *y);
/* The 1-based line an event starts on. */
unsigned yin_line(const yaml_event_t *ev);
/* The next event into ev: 0, or -1 with "PATH:LINE: YAML syntax error: PROBLEM [CONTEXT]". */
int yin_next(yin *y, yaml_event_t *ev);
/* The next event of a sequence or mapping into ev: 1, or 0 at its end event (deleted), or -1
 * on a parse error. */
int yin_next_in(yin *y, yaml_event_t *ev, yaml_event_type_t end);
/* "a sequence", "a mapping", "an alias" or "a scalar", for messages. */
const char *yin_kind(yaml_event_type_t t);
/* The whole file: at most one document, whose root is a mapping or empty (an empty file and
 * a `---` with nothing after it are fine). At the mapping's start event, mapping(ctx) reads
 * its pairs up to and including the end event. *maps counts the mappings read (0 or 1).
 * 0, or -1 with "PATH:LINE: expected one YAML document, found another" or "...: expected a
 * mapping of keys at the top level, got KIND" or mapping's error. */
int yin_document(yin *y, int (*mapping)(void *ctx), void *ctx, unsigned *maps);

#endif
