/* podrep.h - writers of a pod estimate (pod.h): the text report and the JSON document. */
#ifndef TPU_PODREP_H
#define TPU_PODREP_H

#include <stdio.h>

#include "err.h"
#include "config.h"
#include "pod.h"
#include "prov.h"

/* How the estimate was asked for, as the reports describe it. */
typedef struct pod_view {
    const char *trace;   /* the TRACE argument (a template for per-chip traces) */
    int per_chip_traces; /* one trace per chip (several TRACEs, or "{chip}" in the name) */
    int strong;          /* scaling rows are strong scaling ("{chips}" in the name) */
    ici_mode mode;       /* symmetric or full */
    unsigned nscaling;   /* number of --scaling rows */
    const prov *prov;    /* how it was made (prov.h); NULL: no provenance written */
} pod_view;

/* The estimate r as text. */
void pod_report_text(FILE *out, const cfg *c, const pod_view *o, const pod_result *r);
/* The scaling rows s[0..n-1] as a text table (efficiency against s[0]). */
void pod_report_scaling_text(FILE *out, const pod_result *s, unsigned n, int strong);
/* r and the scaling rows sc[0..nsc-1] as one JSON document at path ("-" = stdout), written
 * atomically. Returns 0, or non-zero with e filled. */
int pod_report_json(const char *path, const cfg *c, const pod_view *o, const pod_result *r,
                    const pod_result *sc, unsigned nsc, err *e);

#endif
