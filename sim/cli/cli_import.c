/* cli_import.c - `tpusim import hlo MODULE.txt -c CONFIG -o OUT.tpt [-p key=value]...
 * [--chips N] [--json FILE] [-q]`: parse an XLA HLO text module, cost it (hlo_sem.c) and
 * write the trace of one chip of the SPMD program. Prints the importer summary and its
 * warnings (stderr); --json writes the summary as JSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hlo.h"
#include "json.h"
#include "ofile.h"
#include "sim.h"

static void import_usage(FILE *out)
{
    fprintf(out,
            "usage: tpusim import hlo MODULE.txt -c CONFIG -o OUT.tpt [-p key=value]...\n"
            "                         [--chips N] [--json FILE] [-q]\n"
            "\n"
            "Import an XLA HLO module in text form (XLA_FLAGS=\"--xla_dump_to=DIR\n"
            "--xla_dump_hlo_as_text\"; before or after optimisations) and write the trace of one\n"
            "chip of the program (every chip of an SPMD program runs the same module). Regions\n"
            "are named after the ops' op_name metadata. See docs/hlo.md.\n"
            "\n"
            "  -c, --config CONFIG   machine config (YAML file or preset name)\n"
            "  -o, --output FILE     trace to write\n"
            "  -p key=value          override one config key (repeatable)\n"
            "      --chips N         chips of the SPMD program (must match ici.dims)\n"
            "      --json FILE       write the importer summary as JSON (- = stdout)\n"
            "  -q, --quiet           no summary on stderr (warnings still shown)\n"
            "  -h, --help            this help\n");
}

/* The import summary as a JSON document at path (as report_json writes a run's). */
static int summary_json(const char *path, const hlo_module *m, const hlo_plan *p,
                        const hlo_import_result *ir, err *e)
{
    json_w jw, *w = &jw;
    if (json_open(w, path, e))
        return -1;
    json_obj_begin(w, NULL);
    json_str(w, "schema", "tpusim.import/1");
    json_str(w, "module", m->name);
    json_u64(w, "computations", m->ncomps);
    json_u64(w, "ops", p->nitems);
    json_obj_begin(w, "ops_by_class");
    for (int k = 0; k < HLO_CLS_COUNT; k++)
        json_u64(w, hlo_cls_name((hlo_cls)k), p->ops_by_cls[k]);
    json_obj_end(w);
    json_obj_begin(w, "flops_by_class");
    for (int k = 0; k < HLO_CLS_COUNT; k++)
        if (k == HLO_CLS_MATMUL || k == HLO_CLS_CONV || k == HLO_CLS_VECTOR)
            json_u64(w, hlo_cls_name((hlo_cls)k), p->flops_by_cls[k]);
    json_obj_end(w);
    const struct {
        const char *key;
        uint64_t v;
    } counts[] = {{"mxu_flops", p->mxu_flops},
                  {"vector_ops", p->vec_ops},
                  {"transcendental_ops", p->trans_ops},
                  {"hbm_bytes", p->hbm_bytes},
                  {"collective_bytes", p->coll_bytes},
                  {"unknown_ops", p->unknown_ops},
                  {"ir_ops", ir->ir_ops},
                  {"ir_tensors", ir->ir_tensors},
                  {"peak_hbm_bytes", ir->peak_hbm_bytes},
                  {"persistent_bytes", ir->persistent_bytes}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        json_u64(w, counts[i].key, counts[i].v);
    json_arr_begin(w, "warnings");
    for (unsigned i = 0; i < p->nwarn; i++)
        json_str(w, NULL, p->warn[i]);
    json_arr_end(w);
    json_obj_end(w);
    return json_close(w, e);
}

int cli_import(int argc, char **argv, err *e)
{
    static const struct option lopts[] = {CLI_LONGOPTS_COMMON,
                                          {"output", required_argument, 0, 'o'},
                                          {"chips", required_argument, 0, 'n'},
                                          {"json", required_argument, 0, 'j'},
                                          {0, 0, 0, 0}};
    const char *config = NULL, *output = NULL, *json = NULL, *ovr[CLI_MAX_OVERRIDES];
    unsigned novr = 0;
    int quiet = 0;
    uint64_t chips = 0;
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        import_usage(stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "hlo"))
        return err_set(e, "import: expected the format 'hlo' (tpusim import hlo MODULE.txt ...)");
    optind = 1;
    opterr = 0;
    int ch;
    /* argv[1] is the format: parse from there */
    while ((ch = getopt_long(argc - 1, argv + 1, "c:o:p:qh", lopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'p':
            if (cli_override_add(ovr, &novr, optarg, "import", e))
                return -1;
            break;
        case 'n': {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (!*optarg || *end || !v)
                return err_set(e, "import: --chips '%s': expected a positive integer", optarg);
            chips = v;
            break;
        }
        case 'j':
            json = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            import_usage(stdout);
            return 0;
        default:
            return err_set(e, "import: unknown option '%s' (see 'tpusim import --help')",
                           argv[optind]);
        }
    }
    if (optind + 1 != argc - 1)
        return err_set(e, "import hlo: expected one MODULE.txt");
    const char *path = argv[optind + 1];
    if (!config)
        return err_set(e, "import hlo: missing -c/--config (a YAML file or preset name)");
    if (!output)
        return err_set(e, "import hlo: missing -o/--output");
    if (!strcmp(output, "-") && json && !strcmp(json, "-"))
        return err_set(e, "import hlo: only one of -o and --json can be '-'");

    int rc = -1;
    hlo_module *m = NULL;
    hlo_plan p;
    int have_plan = 0;
    cfg *c = malloc(sizeof *c);
    if (!c)
        return err_setk(e, ERR_NOMEM, "import: out of memory");
    /* the config as run, gen and pod load it (overrides, then the one cross-key check) */
    if (sim_load_cfg(c, config, ovr, novr, e))
        goto out;
    /* before any work: outputs creatable, neither an input nor the other output */
    const ofile_ref outs[] = {{output, "-o"}, {json, "--json"}};
    const ofile_ref ins[] = {{path, "HLO module"}, {config, "config"}, {c->source, "config"}};
    if (ofile_check(outs, 2, ins, 3, e) || !(m = hlo_parse_file(path, e)))
        goto out;
    hlo_sem_opts so;
    if (hlo_sem_opts_from_cfg(&so, c, e))
        goto out;
    so.chips = chips;
    if (hlo_analyze(m, &so, &p, e))
        goto out;
    have_plan = 1;
    for (unsigned i = 0; i < p.nwarn; i++)
        fprintf(stderr, "tpusim: warning: %s: %s\n", path, p.warn[i]);
    char note[TRACE_NOTE_MAX];
    snprintf(note, sizeof note, "tpusim import hlo %s -c %s", path, config);
    hlo_import_result ir;
    if (hlo_import_trace(m, &p, c, output, note, &ir, e))
        goto out;
    if (!quiet)
        fprintf(
            stderr,
            "imported %s: %zu ops (%llu matmul, %llu conv, %llu vector, %llu data, %llu "
            "collective), %.4g GFLOP on the MXU, %.4g MB collective; IR %llu ops, peak HBM %.4g "
            "MB\n",
            m->name, p.nitems, (unsigned long long)p.ops_by_cls[HLO_CLS_MATMUL],
            (unsigned long long)p.ops_by_cls[HLO_CLS_CONV],
            (unsigned long long)p.ops_by_cls[HLO_CLS_VECTOR],
            (unsigned long long)p.ops_by_cls[HLO_CLS_DATA],
            (unsigned long long)p.ops_by_cls[HLO_CLS_COLL], (double)p.mxu_flops / 1e9,
            (double)p.coll_bytes / 1e6, (unsigned long long)ir.ir_ops,
            (double)ir.peak_hbm_bytes / 1e6);
    if (json && summary_json(json, m, &p, &ir, e))
        goto out;
    rc = 0;
out:
    if (have_plan)
        hlo_plan_fini(&p);
    hlo_module_free(m);
    free(c);
    return rc;
}
