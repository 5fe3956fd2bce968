/* cli_pod.c - `tpusim pod`: options, usage text, and the estimate printed or written. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ofile.h"
#include "pod.h"
#include "podrep.h"
#include "sim.h"

#define POD_MAX_SCALING 32

typedef struct pod_opts {
    const char *config, *trace, *json, *topology;
    const char *const *traces; /* the TRACE arguments; trace = traces[0] */
    unsigned ntraces;
    int per_count; /* trace names contain "{chips}": one trace per chip count (strong scaling) */
    uint64_t chips;
    ici_mode mode;
    int quiet;
    const char *ovr[CLI_MAX_OVERRIDES];
    unsigned novr;
    uint64_t scaling[POD_MAX_SCALING];
    unsigned nscaling;
} pod_opts;

static void pod_usage(FILE *out)
{
    fprintf(out,
            "usage: tpusim pod -c CONFIG TRACE... [--chips N] [--topology AxBxC]\n"
            "                  [--mode symmetric|full] [--json FILE] [-p key=value]...\n"
            "                  [--scaling N,N,...]\n"
            "\n"
            "Estimate TRACE (the work of one chip) at pod scale: peak and sustained exaflops,\n"
            "MFU, step time, the split into compute, memory-bound, exposed communication and\n"
            "idle time, and per-collective rows with achieved bus bandwidth.\n"
            "\n"
            "TRACE is one SPMD trace that every chip runs. In full mode, chips may run their\n"
            "own traces: give one TRACE per chip in chip-id order, or one name containing\n"
            "{chip} (replaced by the chip id, e.g. step.{chip}.tpt). {chips} in a name is\n"
            "replaced by the pod's chip count: with --scaling, one trace per chip count, e.g.\n"
            "generated for a fixed model with 'tpusim gen ... --chips N' (strong scaling).\n"
            "In symmetric mode, {stage} in a name estimates each pipeline stage's trace alone\n"
            "('tpusim gen llm-step --pipeline P -o step.{stage}.tpt'); full mode runs them\n"
            "together from per-chip copies ({chip}) and reports each chip's waiting share.\n"
            "\n"
            "  -c, --config CONFIG   machine config (YAML file or preset name such as v7)\n"
            "  -p key=value          override one config key (repeatable)\n"
            "      --chips N         pod of N chips, near-cubic (2D generations: near-square)\n"
            "      --topology AxBxC  exact pod dimensions (default: the config's pod.dims);\n"
            "                        with --chips, N must equal the product\n"
            "      --mode MODE       symmetric (default): one representative chip, collectives\n"
            "                        timed on the whole topology; full: every chip simulated\n"
            "                        (slices of up to %d chips)\n"
            "      --json FILE       write the estimate as JSON (atomically; - = stdout, and the\n"
            "                        text report goes to stderr)\n"
            "  -q, --quiet           do not print the text report\n"
            "      --scaling LIST    also estimate these chip counts: weak scaling with one\n"
            "                        trace, strong scaling with a {chips} trace name (the\n"
            "                        main estimate is then the last count, or --chips)\n",
            POD_FULL_MAX_CHIPS);
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -1;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || x == 0)
        return -1;
    *v = x;
    return 0;
}

static int parse_scaling(const char *s, pod_opts *o, err *e)
{
    const char *p = s;
    while (*p) {
        char tok[32];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof tok)
            return err_set(e, "pod: --scaling '%s': expected chip counts such as 256,1024", s);
        memcpy(tok, p, len);
        tok[len] = 0;
        if (o->nscaling == POD_MAX_SCALING)
            return err_set(e, "pod: --scaling '%s': at most %d chip counts", s, POD_MAX_SCALING);
        if (parse_u64(tok, &o->scaling[o->nscaling]))
            return err_set(e, "pod: --scaling '%s': '%s' is not a chip count >= 1", s, tok);
        o->nscaling++;
        p += len;
        if (*p == ',' && *++p == 0)
            return err_set(e, "pod: --scaling '%s': trailing comma", s);
    }
    if (!o->nscaling)
        return err_set(e, "pod: --scaling: expected chip counts such as 256,1024");
    return 0;
}

static int parse_args(int argc, char **argv, pod_opts *o, int *help, err *e)
{
    static const struct option opts[] = {CLI_LONGOPTS_COMMON,
                                         {"chips", required_argument, 0, 'n'},
                                         {"topology", required_argument, 0, 't'},
                                         {"mode", required_argument, 0, 'm'},
                                         {"json", required_argument, 0, 'j'},
                                         {"scaling", required_argument, 0, 's'},
                                         {0, 0, 0, 0}};
    int c;
    memset(o, 0, sizeof *o);
    o->mode = ICI_MODE_SYMMETRIC;
    *help = 0;
    optind = 0; /* full re-initialisation: pod_main may run many times per process */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:p:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'p':
            if (cli_override_add(o->ovr, &o->novr, optarg, "pod", e))
                return -1;
            break;
        case 'n':
            if (parse_u64(optarg, &o->chips))
                return err_set(e, "pod: --chips '%s': expected a chip count >= 1", optarg);
            break;
        case 't':
            o->topology = optarg;
            break;
        case 'm':
            if (!strcmp(optarg, "symmetric"))
                o->mode = ICI_MODE_SYMMETRIC;
            else if (!strcmp(optarg, "full"))
                o->mode = ICI_MODE_FULL;
            else
                return err_set(e, "pod: --mode '%s': expected symmetric or full", optarg);
            break;
        case 'j':
            o->json = optarg;
            break;
        case 's':
            if (parse_scaling(optarg, o, e))
                return -1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            *help = 1;
            return 0;
        default:
            return err_set(e, "pod: bad option '%s' (see 'tpusim pod --help')", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return err_set(e, "pod: expected a TRACE argument (see 'tpusim pod --help')");
    o->traces = (const char *const *)&argv[optind];
    o->ntraces = (unsigned)(argc - optind);
    o->trace = o->traces[0];
    for (unsigned i = 0; i < o->ntraces; i++)
        o->per_count |= strstr(o->traces[i], "{chips}") != NULL;
    if (o->ntraces > 1 && o->mode != ICI_MODE_FULL)
        return err_set(e, "pod: %u TRACE arguments: per-chip traces need --mode full", o->ntraces);
    if (o->ntraces > 1 && o->nscaling)
        return err_set(e, "pod: --scaling takes one TRACE (use {chips} in its name for one "
                          "trace per chip count)");
    if (o->topology) {
        unsigned d[3];
        if (cfg_parse_dims(o->topology, d) < 1 || !d[0] || !d[1] || !d[2])
            return err_set(e,
                           "pod: --topology '%s': expected 1 to 3 axes of at least 1 chip "
                           "such as 16x16 or 16x24x24",
                           o->topology);
        uint64_t n = (uint64_t)d[0] * d[1] * d[2];
        if (o->chips && o->chips != n)
            return err_set(e, "pod: --chips %llu does not match --topology %s (%llu chips)",
                           (unsigned long long)o->chips, o->topology, (unsigned long long)n);
    }
    return 0;
}

int cli_pod(int argc, char **argv, err *e)
{
    pod_opts o;
    int help;
    if (parse_args(argc, argv, &o, &help, e))
        return -1;
    if (help) {
        pod_usage(stdout);
        return 0;
    }
    cfg c;
    if (sim_load_cfg(&c, o.config, o.ovr, o.novr, e))
        return -1;
    /* before any work: the --json file creatable, and neither a trace nor the config */
    ofile_ref out = {o.json, "--json"}, *ins = calloc(o.ntraces + 2, sizeof *ins);
    if (!ins)
        return err_set(e, "pod: out of memory");
    ins[0] = (ofile_ref){o.config, "config"};
    ins[1] = (ofile_ref){c.source, "config"};
    for (unsigned i = 0; i < o.ntraces; i++)
        ins[2 + i] = (ofile_ref){o.traces[i], "trace"};
    int bad = ofile_check(&out, 1, ins, o.ntraces + 2, e);
    free(ins);
    if (bad)
        return -1;
    char topo[64];
    if (o.topology)
        snprintf(topo, sizeof topo, "%s", o.topology);
    else if (pod_topology(
                 &c, !o.chips && o.per_count && o.nscaling ? o.scaling[o.nscaling - 1] : o.chips,
                 topo, sizeof topo, e))
        return -1; /* strong scaling without --chips: the main estimate is the last count */
    pod_result *res = calloc(1 + o.nscaling, sizeof *res);
    if (!res)
        return err_set(e, "pod: out of memory");
    int rc = -1;
    pod_view view = {.trace = o.trace,
                     .per_chip_traces = o.ntraces > 1 || pod_trace_per_chip(o.trace),
                     .strong = o.per_count,
                     .mode = o.mode,
                     .nscaling = o.nscaling};
    if (pod_estimate_traces(&c, o.traces, o.ntraces, topo, o.mode, &res[0], e))
        goto out;
    for (unsigned i = 0; i < o.nscaling; i++) {
        char t[64];
        if (pod_topology(&c, o.scaling[i], t, sizeof t, e))
            goto out;
        if (o.ntraces == 1 && !strcmp(t, res[0].topo)) {
            res[1 + i] = res[0]; /* the same trace on the same topology: already estimated */
            continue;
        }
        /* A count listed twice (same topology, hence the same trace): estimated once. */
        unsigned j = 0;
        while (j < i && strcmp(t, res[1 + j].topo))
            j++;
        if (j < i) {
            res[1 + i] = res[1 + j];
            continue;
        }
        if (pod_estimate(&c, o.trace, t, o.mode, &res[1 + i], e))
            goto out;
    }
    if (!o.quiet) { /* with --json - stdout carries the JSON: the text goes to stderr */
        FILE *text = o.json && !strcmp(o.json, "-") ? stderr : stdout;
        pod_report_text(text, &c, &view, &res[0]);
        if (o.nscaling)
            pod_report_scaling_text(text, &res[1], o.nscaling, o.per_count);
    }
    if (o.json && pod_report_json(o.json, &c, &view, &res[0], &res[1], o.nscaling, e))
        goto out;
    rc = 0;
out:
    free(res);
    return rc;
}
