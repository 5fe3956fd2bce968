/* main.c - the tpusim command line: the only place that prints errors and chooses exit codes.
 * Subcommands: run, pod, gen, asm, disasm, config, isa. Reports go to stdout (to stderr when
 * an output file is "-", which is stdout), diagnostics to stderr; every failure is one line
 * "tpusim: <message>" and a non-zero exit, a failed write to stdout included. SIGINT, SIGTERM,
 * SIGHUP and SIGPIPE remove the temporaries of unfinished outputs before ending the process. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asm.h"
#include "config.h"
#include "isa.h"
#include "cli.h"
#include "kernel.h"
#include "ofile.h"
#include "pod.h"
#include "progress.h"
#include "run.h"
#include "timeline.h"

#ifndef TPUSIM_VERSION
#define TPUSIM_VERSION "0.0.0"
#endif

static const char *prog = "tpusim";

static int fail(const err *e)
{
    fprintf(stderr, "%s: %s\n", prog, e->msg);
    return 1;
}

static int usage_error(const char *cmd, const char *what)
{
    fprintf(stderr, "%s %s: %s (see '%s %s --help')\n", prog, cmd, what, prog, cmd);
    return 2;
}

static void main_usage(FILE *out)
{
    fprintf(out, "usage: tpusim COMMAND [options]\n"
                 "\n"
                 "Cycle-approximate simulator of TPU-class accelerators.\n"
                 "\n"
                 "commands:\n"
                 "  run     replay a trace on one chip and print its report\n"
                 "  pod     estimate a trace at pod scale (symmetric or full multi-chip replay)\n"
                 "  gen     generate a workload trace (gemm, conv2d, attention, llm-step, ...)\n"
                 "  import  import an XLA HLO text module: tpusim import hlo MODULE -c CFG -o OUT\n"
                 "  serve   serve an LLM request stream on a slice: TTFT, TPOT, tokens/s, cost\n"
                 "  asm     assemble a text trace:   tpusim asm in.s -o out.tpt\n"
                 "  disasm  disassemble a trace:     tpusim disasm in.tpt\n"
                 "  config  print a resolved config, or the key reference with --help\n"
                 "  isa     print the instruction-set reference\n"
                 "  report  compare run/pod reports:  tpusim report a.json b.json [--csv FILE]\n"
                 "\n"
                 "options: --help, --version. 'tpusim COMMAND --help' describes each command.\n");
}

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: tpusim run [-c CONFIG] [-p key=value]... [-q] [--strict] [--json FILE] [--csv "
            "FILE]\n"
            "                  [--timeline FILE [--timeline-window START:END]\n"
            "                   [--timeline-merge-gap TIME|off] [--timeline-max-events N]] TRACE\n"
            "\n"
            "Replay TRACE on one chip of CONFIG (a YAML file or preset name such as v7) and\n"
            "print the report: time, FLOP/s against peak, per-unit utilisation and stalls,\n"
            "HBM bandwidth, roofline position and per-region rows. Collectives are timed on\n"
            "the config's ici.dims slice in symmetric mode.\n"
            "\n"
            "  -c, --config CONFIG   machine config (default: built-in defaults)\n"
            "  -p key=value          override one config key (repeatable; keys: tpusim config\n"
            "                        --help)\n"
            "  -q, --quiet           no text report and no progress line\n"
            "      --strict          fail (instead of warning) when the trace was generated\n"
            "                        for another topology than ici.dims/ici.wrap\n"
            "      --json FILE       write the report as JSON, schema tpusim.run/1 (- = stdout)\n"
            "      --csv FILE        write one CSV row per unit and per region, plus a total\n"
            "  -h, --help            this help\n"
            "\n"
            "timeline (Perfetto / chrome://tracing trace-event JSON: a track per MXU, vector\n"
            "unit, DMA and ICI unit, instruction slices, region slices, and GB/s counters for\n"
            "HBM and ICI, per HBM channel and ICI link when the models count them):\n"
            "      --timeline FILE   write the timeline to FILE\n"
            "      --timeline-window START:END\n"
            "                        keep only this simulated time span (units ps, ns, us, ms,\n"
            "                        s; either side may be empty: 10us:2ms, :500us, 1ms:)\n"
            "      --timeline-merge-gap TIME|off\n"
            "                        merge same-instruction slices of a region on a track that\n"
            "                        start within TIME of the previous one's end (default 0:\n"
            "                        touching slices merge; off: one slice per instruction)\n"
            "      --timeline-max-events N\n"
            "                        write at most N slices, then drop the rest and say so in\n"
            "                        the file and on stderr (default %d)\n"
            "Size stays bounded on long runs: at most N slices (about 120 bytes each), at most\n"
            "2 x %d bandwidth counter samples per chip, and a few metadata events per unit.\n"
            "\n"
            "Files are written to a temporary FILE.tmp.XXXXXX and renamed when complete (a\n"
            "device or FIFO is written directly, a symlink's target is replaced); an output\n"
            "that is also an input or another output is refused before simulating. With\n"
            "FILE '-' that output goes to stdout and the text report to stderr. A progress\n"
            "line (instructions done, simulated time, rate, ETA) is redrawn on stderr when it\n"
            "is a terminal, unless -q. Formats: docs/outputs.md.\n",
            TIMELINE_DEFAULT_MAX, TIMELINE_BUCKETS + 1);
}

/* The topology a trace was generated for (its note) against the one `run` times its
 * collectives on (the config's ici.dims, ici.wrap and dcn.slices): a warning on stderr, or
 * with strict an error. Trace errors are left to the run, which reports them. */
static int check_topology(const cfg *c, const char *trace, int strict, err *e)
{
    trace_topology tt;
    err ignored;
    if (prov_trace_topology(trace, &tt, &ignored) == 1) {
        unsigned d[3];
        char msg[512];
        int bad = (cfg_parse_dims(c->ici_dims, d) > 0 &&
                   prov_topology_mismatch(&tt, (uint64_t)d[0] * d[1] * d[2], c->ici_dims,
                                          c->ici_wrap, msg, sizeof msg)) ||
                  prov_slices_mismatch(&tt, c->dcn_slices, msg, sizeof msg);
        if (bad && strict)
            return err_set(e, "run: %s: %s (--strict)", trace, msg);
        if (bad)
            fprintf(stderr, "%s: warning: %s: %s\n", prog, trace, msg);
    }
    return 0;
}

static int is_stdout(const char *path)
{
    return path && !strcmp(path, "-");
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {CLI_LONGOPTS_COMMON,
                                         {"json", required_argument, 0, 'j'},
                                         {"csv", required_argument, 0, 'v'},
                                         {"timeline", required_argument, 0, 't'},
                                         {"timeline-window", required_argument, 0, 'T'},
                                         {"timeline-merge-gap", required_argument, 0, 'T'},
                                         {"timeline-max-events", required_argument, 0, 'T'},
                                         {"strict", no_argument, 0, 'S'},
                                         {0, 0, 0, 0}};
    const char *config = NULL, *json = NULL, *csv = NULL, *tl_path = NULL;
    const char *ovr[CLI_MAX_OVERRIDES];
    unsigned novr = 0;
    int quiet = 0, strict = 0, c, li = 0;
    timeline_opts tlo;
    timeline_opts_default(&tlo);
    err e;
    optind = 1;
    opterr = 0; /* our own one-line message below, not getopt's */
    while ((c = getopt_long(argc, argv, "c:p:qh", opts, &li)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'p':
            if (cli_override_add(ovr, &novr, optarg, NULL, &e))
                return usage_error("run", e.msg);
            break;
        case 'j':
            json = optarg;
            break;
        case 'v':
            csv = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'S':
            strict = 1;
            break;
        case 't':
            tl_path = optarg;
            break;
        case 'T':
            if (timeline_set_option(&tlo, opts[li].name, optarg, &e))
                return usage_error("run", e.msg);
            break;
        case 'h':
            run_usage(stdout);
            return 0;
        default: {
            char what[128];
            if (optopt && optopt != '?')
                snprintf(what, sizeof what, "bad option '-%c' or missing value", optopt);
            else
                snprintf(what, sizeof what, "unknown option '%s'", argv[optind - 1]);
            return usage_error("run", what);
        }
        }
    }
    if (optind != argc - 1)
        return usage_error("run", "expected one TRACE argument");
    const char *trace = argv[optind];
    int to_stdout = is_stdout(json) + is_stdout(csv) + is_stdout(tl_path);
    if (to_stdout > 1)
        return usage_error("run", "only one of --json, --csv and --timeline can be '-'");
    FILE *text = to_stdout ? stderr : stdout; /* stdout carries the file then */
    cfg *cf = malloc(sizeof *cf);
    if (!cf)
        return fail(&(err){"out of memory", ERR_NOMEM});
    if (sim_load_cfg(cf, config, ovr, novr, &e)) {
        free(cf);
        return fail(&e);
    }
    /* before any work: outputs creatable, none of them an input or another output */
    const ofile_ref outs[] = {{json, "--json"}, {csv, "--csv"}, {tl_path, "--timeline"}};
    const ofile_ref ins[] = {{trace, "trace"}, {config, "config"}, {cf->source, "config"}};
    if (ofile_check(outs, 3, ins, 3, &e) || check_topology(cf, trace, strict, &e)) {
        free(cf);
        return fail(&e);
    }
    char *label = NULL;
    if (asprintf(&label, "%s (%s)", trace, config ? config : "defaults") < 0) {
        free(cf);
        return fail(&(err){"out of memory", ERR_NOMEM});
    }
    tlo.label = label;
    timeline *tl = NULL;
    if (tl_path && !(tl = timeline_new(tl_path, &tlo, &e))) {
        free(label);
        free(cf);
        return fail(&e);
    }
    /* the total comes from the replay's own reader: the trace is read once (pipes, FIFOs) */
    progress *pg = progress_new(stderr, 0, !quiet && isatty(2), &e);
    if (!pg) {
        timeline_abort(tl);
        free(label);
        free(cf);
        return fail(&e);
    }
    progress_fanout fan = {0};
    progress_fanout_add(&fan, progress_observe, pg);
    if (tl)
        progress_fanout_add(&fan, timeline_observe, tl);
    sim_hooks hooks = {
        .observer = progress_fanout_observe, .ctx = &fan, .start = progress_start, .start_ctx = pg};
    run s;
    int rc = 0;
    int failed = run_trace_cfg(&s, cf, config, ovr, novr, trace, &hooks, &e);
    if (failed)
        progress_finish(pg);
    else
        progress_complete(pg); /* 100%: sync and mark instructions count too */
    if (failed || prov_set_command(&s.prov, argc, argv, &e)) {
        rc = fail(&e);
        goto out;
    }
    if (tl) {
        timeline_add_regions(tl, 0, s.sim.chip);
        const energy_result *en = s.sim.energy;
        timeline_add_power(tl, 0, en->window_w, en->windows, (uint64_t)llround(en->window_s * 1e12),
                           s.rep.end_ps);
        timeline_counts tc;
        timeline_flush(tl);
        timeline_get_counts(tl, &tc);
        int bad = timeline_close(tl, &e);
        tl = NULL;
        if (bad) {
            rc = fail(&e);
            goto out;
        }
        if (tc.dropped)
            fprintf(stderr,
                    "%s: %s: timeline truncated: %llu slices dropped after the cap of %llu "
                    "(see --timeline-max-events, --timeline-window, --timeline-merge-gap)\n",
                    prog, tl_path, (unsigned long long)tc.dropped,
                    (unsigned long long)tlo.max_events);
    }
    if (getenv("TPUSIM_BENCH_KERNEL")) /* tools/bench.sh: events per instruction */
        fprintf(stderr, "%s: kernel: %llu events in %.6f s of replay\n", prog,
                (unsigned long long)s.sim.events, s.sim.wall_s);
    if (!quiet)
        report_text(&s.rep, text);
    if (json && report_json(&s.rep, json, &e)) {
        rc = fail(&e);
        goto out;
    }
    if (csv && report_csv(&s.rep, csv, &e))
        rc = fail(&e);
out:
    timeline_abort(tl);
    progress_free(pg);
    run_fini(&s);
    free(label);
    free(cf);
    return rc;
}

static int cmd_asm(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tpusim asm IN.s -o OUT.tpt\n\nAssemble text into a binary trace. "
                   "Syntax: 'tpusim isa' and docs/isa.md.\n");
            return 0;
        }
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else if (!in && argv[i][0] != '-')
            in = argv[i];
        else
            return usage_error("asm", "bad argument");
    }
    if (!in || !out)
        return usage_error("asm", "expected IN.s -o OUT.tpt");
    err e;
    const ofile_ref o = {out, "-o"}, i = {in, "assembly source"};
    if (ofile_check(&o, 1, &i, 1, &e))
        return fail(&e);
    return asm_file(in, out, &e) ? fail(&e) : 0;
}

static int cmd_disasm(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: tpusim disasm TRACE\n\nPrint a trace as canonical assembly; "
               "'tpusim asm' of the output reproduces the trace byte for byte.\n");
        return 0;
    }
    if (argc != 2)
        return usage_error("disasm", "expected one TRACE argument");
    err e;
    return asm_disasm_file(argv[1], stdout, &e) ? fail(&e) : 0;
}

static int cmd_config(int argc, char **argv)
{
    const char *ovr[CLI_MAX_OVERRIDES];
    unsigned novr = 0;
    const char *path = NULL;
    err e;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tpusim config [CONFIG] [-p key=value]...\n\n"
                   "Print the resolved config as YAML (defaults, includes and overrides "
                   "applied).\n\nKeys:\n");
            cfg_help(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            if (cli_override_add(ovr, &novr, argv[++i], NULL, &e))
                return usage_error("config", e.msg);
        } else if (!path && argv[i][0] != '-') {
            path = argv[i];
        } else {
            return usage_error("config", "bad argument");
        }
    }
    cfg c;
    if (sim_load_cfg(&c, path, ovr, novr, &e))
        return fail(&e);
    cfg_dump(&c, stdout);
    return 0;
}

/* Remove unfinished outputs' temporaries, then die of the same signal (exit status 128+sig). */
static void on_signal(int sig)
{
    ofile_unlink_temps();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        for (unsigned j = 0; j < sizeof sigs / sizeof sigs[0]; j++)
            sigaddset(&sa.sa_mask, sigs[j]);
        /* a signal ignored by whoever started us (nohup, a background job) stays ignored */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
}

/* The first failed write's errno on standard output. stdio does not keep it: when one large
 * write fails (config --help's 12 KB in one fputs), nothing is buffered after it, so the
 * final fflush succeeds and cannot say why (it said "write error" on a full disk). */
static int stdout_errno;

static ssize_t stdout_write(void *cookie, const char *buf, size_t n)
{
    (void)cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(STDOUT_FILENO, buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!stdout_errno)
                stdout_errno = w < 0 ? errno : EIO;
            return 0; /* glibc: 0 = error */
        }
        done += (size_t)w;
    }
    return (ssize_t)n;
}

static int stdout_close(void *cookie)
{
    (void)cookie;
    int rc = close(STDOUT_FILENO);
    if (rc && !stdout_errno)
        stdout_errno = errno;
    return rc;
}

/* Replace stdout (before anything is written) by a stream over the same descriptor that keeps
 * stdout_errno, buffered as stdio buffers it (by line on a terminal). Left as it is if the
 * stream cannot be made. */
static void stdout_keep_errno(void)
{
    cookie_io_functions_t io = {.write = stdout_write, .close = stdout_close};
    FILE *f = fopencookie(NULL, "w", io);
    if (!f)
        return;
    if (setvbuf(f, NULL, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, BUFSIZ)) {
        fclose(f);
        return;
    }
    stdout = f;
}

/* Standard output is written through stdio: a full disk or a closed pipe shows up only at
 * the flush. A command that succeeded fails if its output did not make it; one that failed
 * already said why (maybe this very write error), so its status stands. */
static int finish_stdout(int rc)
{
    errno = 0;
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int en = stdout_errno ? stdout_errno : errno;
    if (fclose(stdout) && !bad)
        bad = 1, en = stdout_errno ? stdout_errno : errno;
    if (bad && !rc) {
        fprintf(stderr, "%s: standard output: cannot write: %s\n", prog,
                en ? strerror(en) : "write error");
        return 1;
    }
    return rc;
}

static int dispatch(int argc, char **argv);

/* TPUSIM_KERN_ORDER=reverse or shuffle[:SEED] runs the callbacks of one instant in another
 * order (kern_set_order): results must not change (tests/e2e_determinism.sh). */
static void kern_order_from_env(void)
{
    const char *o = getenv("TPUSIM_KERN_ORDER");
    if (!o || !*o)
        return;
    if (!strcmp(o, "reverse"))
        kern_set_order(KERN_ORDER_REVERSE, 0);
    else if (!strncmp(o, "shuffle", 7))
        kern_set_order(KERN_ORDER_SHUFFLE, o[7] == ':' ? strtoull(o + 8, NULL, 10) : 1);
}

int main(int argc, char **argv)
{
    stdout_keep_errno();
    catch_signals();
    kern_order_from_env();
    return finish_stdout(dispatch(argc, argv));
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "%s: expected a COMMAND (see 'tpusim --help')\n", prog);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        main_usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("tpusim %s (revision %s, ISA %d, trace format %d)\n", TPUSIM_VERSION,
               prov_revision(), ISA_VERSION, TRACE_FORMAT_VERSION);
        return 0;
    }
    argc--;
    argv++;
    if (!strcmp(cmd, "run"))
        return cmd_run(argc, argv);
    if (!strcmp(cmd, "asm"))
        return cmd_asm(argc, argv);
    if (!strcmp(cmd, "disasm"))
        return cmd_disasm(argc, argv);
    if (!strcmp(cmd, "config"))
        return cmd_config(argc, argv);
    if (!strcmp(cmd, "isa")) {
        isa_doc(stdout);
        return 0;
    }
    if (!strcmp(cmd, "report")) {
        err e;
        return cli_compare(argc, argv, stdout, &e) ? fail(&e) : 0;
    }
    if (!strcmp(cmd, "import")) {
        err e;
        return cli_import(argc, argv, &e) ? fail(&e) : 0;
    }
    if (!strcmp(cmd, "gen") || !strcmp(cmd, "pod")) {
        err e;
        int r = !strcmp(cmd, "gen") ? cli_gen(argc, argv, &e) : cli_pod(argc, argv, &e);
        return r ? fail(&e) : 0;
    }
    if (!strcmp(cmd, "serve")) {
        err e;
        return cli_serve(argc, argv, &e) ? fail(&e) : 0;
    }
    fprintf(stderr, "%s: unknown command '%s' (see 'tpusim --help')\n", prog, cmd);
    return 2;
}
