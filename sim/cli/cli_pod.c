/* cli_pod.c - `tpusim pod`: options, usage text, and the estimate printed or written. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ofile.h"
#include "pod.h"
#include "podrep.h"
#include "prov.h"
#include "sim.h"

#define POD_MAX_SCALING 32
#define POD_MAX_JOBS    256

typedef struct pod_opts {
    const char *config, *trace, *json, *topology;
    const char *const *traces; /* the TRACE arguments; trace = traces[0] */
    unsigned ntraces;
    int per_count; /* trace names contain "{chips}": one trace per chip count (strong scaling) */
    uint64_t chips;
    ici_mode mode;
    int quiet, strict, progress;
    uint64_t jobs; /* -j: processes for the points (0 = the number of cores) */
    const char *ovr[CLI_MAX_OVERRIDES];
    unsigned novr;
    uint64_t scaling[POD_MAX_SCALING];
    unsigned nscaling;
    char slices[32]; /* --slices S as the override it stands for: "dcn.slices=S" */
} pod_opts;

static void pod_usage(FILE *out)
{
    fprintf(out,
            "usage: tpusim pod -c CONFIG TRACE... [--chips N] [--topology AxBxC]\n"
            "                  [--slices S] [--mode symmetric|full] [--json FILE]\n"
            "                  [-p key=value]... [--scaling N,N,...] [-j N] [--progress]\n"
            "                  [--strict]\n"
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
            "      --slices S        S copies of that topology joined by the data-centre\n"
            "                        network, data parallel across them (-p dcn.slices=S):\n"
            "                        the pod has S x its chips; traces generated with\n"
            "                        'tpusim gen ... --slices S' reduce their gradients\n"
            "                        across the slices (the DCN time and share are reported)\n"
            "      --mode MODE       symmetric (default): one representative chip, collectives\n"
            "                        timed on the whole topology; full: every chip simulated\n"
            "                        (slices of up to %d chips)\n"
            "      --json FILE       write the estimate as JSON (atomically; - = stdout, and the\n"
            "                        text report goes to stderr)\n"
            "  -q, --quiet           do not print the text report nor the progress lines\n"
            "  -j, --jobs N          estimate the points (the main one and each --scaling\n"
            "                        count) on up to N processes at once (default: the\n"
            "                        number of cores; -j 1: one after another, in-process)\n"
            "      --progress        a line on stderr as each point is done (default: when\n"
            "                        stderr is a terminal, unless -q)\n"
            "      --strict          fail (instead of warning) when a trace was generated for\n"
            "                        another chip count than it is estimated on\n"
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
                                         {"json", required_argument, 0, 'J'},
                                         {"scaling", required_argument, 0, 's'},
                                         {"strict", no_argument, 0, 'S'},
                                         {"jobs", required_argument, 0, 'j'},
                                         {"progress", no_argument, 0, 'P'},
                                         {"slices", required_argument, 0, 'L'},
                                         {0, 0, 0, 0}};
    int c;
    memset(o, 0, sizeof *o);
    o->mode = ICI_MODE_SYMMETRIC;
    *help = 0;
    optind = 0; /* full re-initialisation: pod_main may run many times per process */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:p:qhj:", opts, NULL)) != -1) {
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
        case 'J':
            o->json = optarg;
            break;
        case 'j':
            if (parse_u64(optarg, &o->jobs) || o->jobs > POD_MAX_JOBS)
                return err_set(e, "pod: -j '%s': expected a number of processes in [1, %d]", optarg,
                               POD_MAX_JOBS);
            break;
        case 'P':
            o->progress = 1;
            break;
        case 'L': { /* an override, in order with the -p ones (the last one wins) */
            uint64_t s;
            if (parse_u64(optarg, &s) || s > 4096)
                return err_set(e, "pod: --slices '%s': expected a number of slices in [1, 4096]",
                               optarg);
            snprintf(o->slices, sizeof o->slices, "dcn.slices=%llu", (unsigned long long)s);
            if (cli_override_add(o->ovr, &o->novr, o->slices, "pod", e))
                return -1;
            break;
        }
        case 's':
            if (parse_scaling(optarg, o, e))
                return -1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'S':
            o->strict = 1;
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

/* One point of a pod study: an estimate of `traces` on topology `topo` into *res. */
typedef struct pod_job {
    const char *const *traces;
    unsigned ntraces;
    char topo[64];
    pod_result *res;
    int rc; /* 0, or the estimate failed with e */
    err e;
    pid_t pid;    /* the process running it (parallel runs) */
    FILE *out;    /* where that process writes rc, *res and e */
    double start; /* wall clock at its start */
} pod_job;

static double pod_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static unsigned pod_job_chips(const pod_job *j)
{
    unsigned d[3];
    return cfg_parse_dims(j->topo, d) > 0 ? d[0] * d[1] * d[2] : 0;
}

/* The progress line of a finished point, on stderr. */
static void pod_job_done(const pod_job *j, unsigned ndone, unsigned n, int show)
{
    if (!show)
        return;
    fprintf(stderr, "tpusim pod: %u/%u done: %u chips (%s) in %.2f s%s\n", ndone, n,
            pod_job_chips(j), j->topo, pod_now() - j->start, j->rc ? " - failed" : "");
    fflush(stderr);
}

static int pod_job_estimate(const cfg *c, ici_mode mode, pod_job *j)
{
    j->rc = pod_estimate_traces(c, j->traces, j->ntraces, j->topo, mode, j->res, &j->e);
    return j->rc;
}

/* Run the points on up to nproc processes at once, largest first (the longest, so that the
 * last to start are the short ones). The SystemC kernel is one per process, so each point
 * runs in a forked child, which writes its result (a flat pod_result) to an unnamed
 * temporary file and leaves with _exit; one process (-j 1, or one point) runs them here, in
 * order. Returns 0, or -1 with e filled by the first failed point in job order. */
static int pod_run_jobs(const cfg *c, ici_mode mode, pod_job *jobs, unsigned n, unsigned nproc,
                        int show, err *e)
{
    if (nproc <= 1 || n <= 1) {
        for (unsigned i = 0; i < n; i++) {
            jobs[i].start = pod_now();
            if (pod_job_estimate(c, mode, &jobs[i])) {
                *e = jobs[i].e;
                return -1;
            }
            pod_job_done(&jobs[i], i + 1, n, show);
        }
        return 0;
    }
    unsigned order[1 + POD_MAX_SCALING];
    for (unsigned i = 0; i < n; i++) {
        unsigned k = i;
        while (k > 0 && pod_job_chips(&jobs[order[k - 1]]) < pod_job_chips(&jobs[i])) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    fflush(stdout);
    fflush(stderr);
    unsigned next = 0, active = 0, ndone = 0;
    int rc = 0;
    while (ndone < n) {
        while (active < nproc && next < n && !rc) {
            pod_job *j = &jobs[order[next]];
            j->start = pod_now();
            if (!(j->out = tmpfile()))
                rc = err_set(e, "pod: cannot create a temporary file: %s", strerror(errno));
            else if ((j->pid = fork()) < 0)
                rc = err_set(e, "pod: cannot start a process: %s", strerror(errno));
            if (rc) {
                if (j->out)
                    fclose(j->out);
                j->out = NULL;
                break;
            }
            if (j->pid == 0) { /* the child: estimate, write, leave without exit handlers */
                pod_job_estimate(c, mode, j);
                int bad = fwrite(&j->rc, sizeof j->rc, 1, j->out) != 1 ||
                          fwrite(j->res, sizeof *j->res, 1, j->out) != 1 ||
                          fwrite(&j->e, sizeof j->e, 1, j->out) != 1 || fflush(j->out);
                _exit(bad ? 1 : 0);
            }
            next++;
            active++;
        }
        if (!active)
            break; /* a launch failed and nothing is left running */
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            return err_set(e, "pod: waiting for the estimates: %s", strerror(errno));
        }
        pod_job *j = NULL;
        for (unsigned i = 0; i < n && !j; i++)
            if (jobs[i].out && jobs[i].pid == pid)
                j = &jobs[i];
        if (!j)
            continue; /* not one of ours */
        active--;
        ndone++;
        rewind(j->out);
        if (!WIFEXITED(st) || WEXITSTATUS(st) || fread(&j->rc, sizeof j->rc, 1, j->out) != 1 ||
            fread(j->res, sizeof *j->res, 1, j->out) != 1 ||
            fread(&j->e, sizeof j->e, 1, j->out) != 1) {
            j->rc = -1;
            err_set(&j->e, "pod: the estimate on %s ended abnormally (%s %d)", j->topo,
                    WIFSIGNALED(st) ? "signal" : "exit status",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
        fclose(j->out);
        j->out = NULL;
        pod_job_done(j, ndone, n, show);
    }
    if (rc)
        return rc;
    for (unsigned i = 0; i < n; i++)
        if (jobs[i].rc) {
            *e = jobs[i].e;
            return -1;
        }
    return 0;
}

/* Report one topology mismatch: a warning on stderr, or with --strict an error. */
static int pod_mismatch(const pod_opts *o, const char *trace, const char *msg, err *e)
{
    if (o->strict)
        return err_set(e, "pod: %s: %s (--strict)", trace, msg);
    fprintf(stderr, "tpusim: warning: %s: %s\n", trace, msg);
    return 0;
}

/* The chip count each trace was generated for (its note) against the pod it is estimated on:
 * the main estimate's trace, and with strong scaling each count's own trace. Weak scaling
 * rows replay one trace on every count by design and are not checked. */
static int pod_check_topology(const pod_opts *o, const prov *pv, uint64_t chips, err *e)
{
    char msg[512];
    if (pv->has_trace_topo &&
        prov_topology_mismatch(&pv->trace_topo, chips, NULL, NULL, msg, sizeof msg) &&
        pod_mismatch(o, pv->trace, msg, e))
        return -1;
    if (pv->has_trace_topo && pv->cfg &&
        prov_slices_mismatch(&pv->trace_topo, pv->cfg->dcn_slices, msg, sizeof msg) &&
        pod_mismatch(o, pv->trace, msg, e))
        return -1;
    for (unsigned i = 0; o->per_count && i < o->nscaling; i++) {
        char path[PATH_MAX];
        trace_topology tt;
        err ignored;
        if (pod_trace_path(o->trace, 0, (unsigned)o->scaling[i], path, sizeof path, &ignored) ||
            prov_trace_topology(path, &tt, &ignored) != 1)
            continue; /* a missing trace is reported by its estimate */
        if (prov_topology_mismatch(&tt, o->scaling[i], NULL, NULL, msg, sizeof msg) &&
            pod_mismatch(o, path, msg, e))
            return -1;
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
    prov pv;
    prov_init(&pv);
    if (sim_load_cfg(&c, o.config, o.ovr, o.novr, e) ||
        prov_set_config(&pv, o.config, &c, o.ovr, o.novr, e) ||
        prov_set_command(&pv, argc, argv, e)) {
        prov_fini(&pv);
        return -1;
    }
    /* before any work: the --json file creatable, and neither a trace nor the config */
    ofile_ref out = {o.json, "--json"}, *ins = calloc(o.ntraces + 2, sizeof *ins);
    if (!ins) {
        prov_fini(&pv);
        return err_set(e, "pod: out of memory");
    }
    ins[0] = (ofile_ref){o.config, "config"};
    ins[1] = (ofile_ref){c.source, "config"};
    for (unsigned i = 0; i < o.ntraces; i++)
        ins[2 + i] = (ofile_ref){o.traces[i], "trace"};
    int bad = ofile_check(&out, 1, ins, o.ntraces + 2, e);
    free(ins);
    if (bad) {
        prov_fini(&pv);
        return -1;
    }
    char topo[64];
    if (o.topology)
        snprintf(topo, sizeof topo, "%s", o.topology);
    else if (pod_topology(
                 &c, !o.chips && o.per_count && o.nscaling ? o.scaling[o.nscaling - 1] : o.chips,
                 topo, sizeof topo, e)) {
        prov_fini(&pv);
        return -1; /* strong scaling without --chips: the main estimate is the last count */
    }
    /* The provenance names chip 0's trace of the main estimate ({chip}, {chips} expanded). */
    unsigned td[3];
    char t0[1024];
    int tn = cfg_parse_dims(topo, td);
    if (tn < 1 || pod_trace_path(o.trace, 0, td[0] * td[1] * td[2], t0, sizeof t0, e) ||
        prov_set_trace(&pv, t0, e)) {
        if (tn < 1)
            err_set(e, "pod: topology '%s': expected 1 to 3 axes such as 16x16", topo);
        prov_fini(&pv);
        return -1;
    }
    if (pod_check_topology(&o, &pv, td[0] * td[1] * td[2], e)) {
        prov_fini(&pv);
        return -1;
    }
    pod_result *res = calloc(1 + o.nscaling, sizeof *res);
    if (!res) {
        prov_fini(&pv);
        return err_set(e, "pod: out of memory");
    }
    int rc = -1;
    pod_view view = {.trace = o.trace,
                     .per_chip_traces = o.ntraces > 1 || pod_trace_per_chip(o.trace),
                     .strong = o.per_count,
                     .mode = o.mode,
                     .nscaling = o.nscaling,
                     .prov = &pv};
    /* The points: the main estimate, then each --scaling count not on its topology. */
    pod_job jobs[1 + POD_MAX_SCALING];
    unsigned njobs = 0;
    int same[POD_MAX_SCALING] = {0};
    unsigned dup[POD_MAX_SCALING] = {0}; /* 1 + the earlier count it repeats */
    char stopo[POD_MAX_SCALING][64];
    jobs[njobs++] = (pod_job){.traces = o.traces, .ntraces = o.ntraces, .res = &res[0]};
    snprintf(jobs[0].topo, sizeof jobs[0].topo, "%s", topo);
    for (unsigned i = 0; i < o.nscaling; i++) {
        char t[64];
        if (pod_topology(&c, o.scaling[i], t, sizeof t, e))
            goto out;
        if (o.ntraces == 1 && !strcmp(t, topo)) {
            same[i] = 1; /* the same trace on the same topology: the main estimate */
            continue;
        }
        /* A count listed twice (same topology, hence the same trace): estimated once. */
        snprintf(stopo[i], sizeof stopo[i], "%s", t);
        unsigned j = 0;
        while (j < i && (same[j] || strcmp(t, stopo[j])))
            j++;
        if (j < i) {
            dup[i] = j + 1;
            continue;
        }
        jobs[njobs] = (pod_job){.traces = &o.trace, .ntraces = 1, .res = &res[1 + i]};
        snprintf(jobs[njobs++].topo, sizeof jobs[0].topo, "%s", t);
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned nproc = o.jobs ? (unsigned)o.jobs : ncpu > 0 ? (unsigned)ncpu : 1;
    int show = o.progress || (!o.quiet && isatty(2));
    if (pod_run_jobs(&c, o.mode, jobs, njobs, nproc, show, e))
        goto out;
    for (unsigned i = 0; i < o.nscaling; i++)
        if (same[i])
            res[1 + i] = res[0];
        else if (dup[i])
            res[1 + i] = res[dup[i]];
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
    prov_fini(&pv);
    return rc;
}
