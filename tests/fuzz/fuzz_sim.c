/* fuzz_sim.c - libFuzzer harness for the simulator itself: the input bytes choose a valid
 * config (a preset or the defaults, a few keys varied within the key table's ranges) and a
 * well-formed program for it (opcodes from the ISA table, operands in range for that config,
 * semaphores, marks, point-to-point and collective ICI), written with the trace writer and
 * replayed on one chip (sim_run_cfg + report_build), and for some inputs as a pod estimate
 * (symmetric, and full mode on up to 8 chips). Every result must hold the invariants below;
 * a violation prints the config and the program as assembly and traps.
 *
 * Invariants checked on every run:
 *   - the outcome is the one the program was built for: a valid program runs; a program
 *     with one deliberate deadlock fails with a message naming a deadlock (never hangs); a
 *     program with one deliberate operand error fails with that error, not a deadlock;
 *   - counters are below 2^63 (no wrap), times within the run: unit busy and stall times,
 *     region spans, dispatch stalls <= run time, utilisations in [0, 1];
 *   - nothing beats the peaks: MXU FLOPs at their datatype's peak (mxu_ideal_ps) <= time,
 *     HBM bytes <= peak bandwidth x time, vector FLOPs <= the three vector pipes' peak, ICI
 *     bytes sent <= links x link bandwidth x time;
 *   - compute + memory + exposed comm + idle = run time (exactly, in ps);
 *   - instructions, FLOPs (2mkn per matmul; docs/models-compute.md per vector op), MXU
 *     FLOPs, DMA bytes and ICI bytes equal the analytic sums over the program, for the run,
 *     the sum of the units and the sum of the regions;
 *   - a symmetric pod estimate on the config's own ici.dims is the single-chip run; a full
 *     estimate of the SPMD program has the program's per-chip FLOPs and bytes, no mismatched
 *     collectives, and a time split that fits its step.
 *
 * Sizes are bounded (at most SF_MAX_INSNS instructions, DMAs of at most 1 MiB, matmuls of
 * at most 4096 rows, vectors of at most 2^20 elements) so that one input runs in
 * milliseconds. The harness body is also compiled into tests/test_fuzz_sim.c, which replays
 * the seeds of tests/fuzz/corpus/sim/ in the normal suite. */
#include "fuzz_util.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>

#include "asm.h"
#include "config.h"
#include "isa.h"
#include "kernel.h"
#include "pod.h"
#include "report.h"
#include "run.h"
#include "stats.h"
#include "trace.h"

#ifndef FUZZ_PRESETS_DIR
#error "FUZZ_PRESETS_DIR must name the configs/ directory"
#endif

#define SF_MAX_INSNS   160
#define SF_MAX_SETS    8
#define SF_DMA_MAX     (1u << 20)
#define SF_MM_MAX_M    4096
#define SF_VEC_MAX_N   (1u << 20)
#define SF_COLL_MAX    (1u << 20)
#define SF_CLOCK_LIMIT (1ULL << 62) /* SystemC's process-wide ps clock must never run out */

/* ---- the byte source: every choice reads from the input; an exhausted input reads 0 ---- */

typedef struct sf_src {
    const uint8_t *p;
    size_t n;
} sf_src;

static unsigned sf_u8(sf_src *s)
{
    if (!s->n)
        return 0;
    s->n--;
    return *s->p++;
}

static uint64_t sf_u64(sf_src *s, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v = v << 8 | sf_u8(s);
    return v;
}

/* Uniform-ish in [lo, hi]. */
static uint64_t sf_range(sf_src *s, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = hi - lo;
    unsigned bytes = span < 256 ? 1 : span < 65536 ? 2 : span < (1ULL << 32) ? 4 : 8;
    uint64_t v = sf_u64(s, bytes);
    return span == UINT64_MAX ? v : lo + v % (span + 1);
}

/* Log-uniform in [lo, hi] (lo >= 1): small sizes as often as large ones. */
static uint64_t sf_size(sf_src *s, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    unsigned top = 63 - (unsigned)__builtin_clzll(hi);
    unsigned ex = (unsigned)sf_range(s, 0, top);
    uint64_t a = 1ULL << ex, b = ex >= 63 ? UINT64_MAX : (2ULL << ex) - 1;
    if (a < lo)
        a = lo;
    if (b > hi)
        b = hi;
    if (a > b)
        return hi;
    return sf_range(s, a, b);
}

static int sf_chance(sf_src *s, unsigned one_in)
{
    return sf_u8(s) % one_in == 0;
}

/* ---- what was built, and what the run must show ---- */

enum sf_expect { SF_OK, SF_DEADLOCK, SF_ERROR };
static const char *const sf_expect_name[] = {"valid", "deadlock", "error"};

typedef struct sf_case {
    /* config */
    const char *preset; /* NULL = defaults */
    char sets[SF_MAX_SETS + 4][96];
    unsigned nsets;
    cfg c;
    unsigned naxes, n_mxu;
    unsigned dims[3], wrap; /* topology, wrap as an axis bit mask */
    uint64_t vmem, hbm;
    /* program */
    isa_insn in[SF_MAX_INSNS];
    unsigned n;
    int expect;
    const char *why; /* what the deliberate fault is */
    uint64_t flops, mxu_flops, vpu_flops, hbm_bytes, ici_bytes;
    uint64_t unit_insns; /* instructions that run on a unit (not sync/mark/nop) */
    int has_ici;
    int trailing_barrier; /* a sync.barrier after the last unit instruction (finding F1) */
    /* generator state */
    struct {
        int loaded;
        unsigned k, n, dt;
    } w[256];
    uint16_t avail[SF_MAX_INSNS]; /* semaphores signalled and not yet waited on */
    unsigned navail, next_sem, dead_sem;
    int fault_at; /* instruction index at which to place the fault, -1 = none */
} sf_case;

/* Outcomes so far (the replay test checks that the seeds reach each kind). */
typedef struct sf_tally {
    uint64_t inputs, runs, ok, deadlock, error, pod_sym, pod_full, cfg_rejected, skipped;
} sf_tally;
static sf_tally sf_count;
static uint64_t sf_clock_used;

/* Called with the message on an invariant failure; the default prints and traps. The replay
 * test installs one that longjmps so that it can check the checker. */
static void (*sf_fail_hook)(const char *msg);
static const sf_case *sf_current;

static void sf_dump(const sf_case *k)
{
    fprintf(stderr, "  config: %s\n", k->preset ? k->preset : "(defaults)");
    for (unsigned i = 0; i < k->nsets; i++)
        fprintf(stderr, "    -p %s\n", k->sets[i]);
    fprintf(stderr, "  program (%s%s%s), %u instructions:\n", sf_expect_name[k->expect],
            k->why ? ": " : "", k->why ? k->why : "", k->n);
    for (unsigned i = 0; i < k->n; i++) {
        char line[512];
        asm_format(&k->in[i], line, sizeof line);
        fprintf(stderr, "    %s\n", line);
    }
}

/* The inputs run before the current one in this process: the SystemC kernel is process-wide,
 * so a finding may need its predecessors to reproduce (`fuzz_sim PREV2 PREV1 CRASH`). */
#define SF_PREV_MAX 8192
static uint8_t sf_prev[2][SF_PREV_MAX];
static size_t sf_prev_len[2];
static int sf_nprev;

static void sf_remember(const uint8_t *data, size_t size)
{
    memcpy(sf_prev[1], sf_prev[0], sf_prev_len[0]);
    sf_prev_len[1] = sf_prev_len[0];
    sf_prev_len[0] = size < SF_PREV_MAX ? size : SF_PREV_MAX;
    memcpy(sf_prev[0], data, sf_prev_len[0]);
    sf_nprev++;
}

static void sf_dump_prev(void)
{
    for (int i = (sf_nprev < 2 ? sf_nprev : 2) - 1; i >= 0; i--) {
        fprintf(stderr, "  input run %d before this one (hex): ", i + 1);
        for (size_t j = 0; j < sf_prev_len[i]; j++)
            fprintf(stderr, "%02x", sf_prev[i][j]);
        fprintf(stderr, "\n");
    }
}

static void sf_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sf_fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (sf_fail_hook) {
        sf_fail_hook(msg);
        return;
    }
    fprintf(stderr, "fuzz_sim: invariant violated: %s\n", msg);
    if (sf_current)
        sf_dump(sf_current);
    sf_dump_prev();
    __builtin_trap();
}

#define SF_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            sf_fail(__VA_ARGS__);                                                                  \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

/* ---- config ---- */

static const char *const sf_presets[] = {NULL, "v2", "v3", "v4", "v5e", "v5p", "v6e", "v7"};
#define SF_NPRESETS (sizeof sf_presets / sizeof *sf_presets)
static const char *const sf_topos[] = {"1", "2", "4", "8", "1x2", "2x2", "2x4", "2x2x2", "1x1x2"};
#define SF_NTOPOS (sizeof sf_topos / sizeof *sf_topos)

static const cfg *sf_preset(unsigned i)
{
    static cfg cache[SF_NPRESETS];
    static int loaded[SF_NPRESETS];
    if (!loaded[i]) {
        if (!sf_presets[i]) {
            cfg_defaults(&cache[i]);
        } else {
            char path[512];
            err e;
            snprintf(path, sizeof path, "%s/%s.yaml", FUZZ_PRESETS_DIR, sf_presets[i]);
            if (cfg_load(&cache[i], path, FUZZ_PRESETS_DIR, &e)) {
                fprintf(stderr, "fuzz_sim: preset %s: %s\n", path, e.msg);
                abort();
            }
        }
        loaded[i] = 1;
    }
    return &cache[i];
}

static int sf_set(sf_case *k, const char *key, const char *value)
{
    err e;
    if (k->nsets >= sizeof k->sets / sizeof *k->sets)
        return -1;
    if (cfg_set(&k->c, key, value, "-p", &e)) {
        /* the harness only writes values inside the key's declared range */
        fprintf(stderr, "fuzz_sim: cfg_set %s=%s refused: %s\n", key, value, e.msg);
        if (sf_current)
            sf_dump(sf_current);
        __builtin_trap();
    }
    snprintf(k->sets[k->nsets++], sizeof k->sets[0], "%s=%s", key, value);
    return 0;
}

/* Keys whose value scales the harness's own cost (events, memory): varied, never to their
 * extremes. */
static int sf_costly_key(const char *name)
{
    static const char *const costly[] = {"chip.cores",   "core.queue_depth", "mxu.count",
                                         "dma.engines",  "dma.outstanding",  "dma.chunk_bytes",
                                         "hbm.channels", "hbm.banks",        "hbm.pseudo_channels"};
    for (size_t i = 0; i < sizeof costly / sizeof *costly; i++)
        if (!strcmp(name, costly[i]))
            return 1;
    return 0;
}

/* Vary one key of the table: x 2^[-2, 2] of its value (integers by powers of two, so that
 * power-of-two keys stay so), sometimes +-1, sometimes an end of its range. */
static void sf_vary(sf_case *k, sf_src *s, const cfg_key *key)
{
    char v[64];
    const void *field = (const char *)&k->c + key->offset;
    unsigned how = sf_u8(s);
    switch (key->type) {
    case CFG_T_INT: {
        uint64_t cur = *(const uint64_t *)field, x = cur;
        int sh = (int)(how % 5) - 2;
        if (how % 16 == 15)
            x = cur + 1;
        else if (how % 16 == 14)
            x = cur - 1;
        else if (how % 32 == 13 && !sf_costly_key(key->name))
            x = how & 32 ? (uint64_t)key->max : (uint64_t)key->min;
        else
            x = sh >= 0 ? cur << sh : cur >> -sh;
        if ((double)x < key->min)
            x = (uint64_t)key->min;
        if ((double)x > key->max)
            x = (uint64_t)key->max;
        snprintf(v, sizeof v, "%" PRIu64, x);
        break;
    }
    case CFG_T_DBL: {
        double cur = *(const double *)field;
        double x = cur * exp2((double)(how % 64) / 16.0 - 2.0);
        if (how >= 0xf8)
            x = how & 1 ? key->max : key->min;
        if (x < key->min)
            x = key->min;
        if (x > key->max)
            x = key->max;
        snprintf(v, sizeof v, "%.17g", x);
        break;
    }
    case CFG_T_BOOL:
        snprintf(v, sizeof v, "%s", how & 1 ? "true" : "false");
        break;
    case CFG_T_ENUM: {
        /* the how-th of the '|'-separated choices */
        unsigned nch = 1;
        for (const char *p = key->choices; *p; p++)
            nch += *p == '|';
        unsigned pick = how % nch;
        const char *p = key->choices;
        while (pick--)
            p = strchr(p, '|') + 1;
        snprintf(v, sizeof v, "%.*s", (int)strcspn(p, "|"), p);
        break;
    }
    default:
        return;
    }
    sf_set(k, key->name, v);
}

/* Choose the config: a preset, a topology, a few keys varied. Returns 0, or -1 if cfg_check
 * refused the combination (the input then runs on the preset alone). */
/* The case's torus: dims, wrap, untwisted, and enough links per chip for its axes. */
static void sf_set_topology(sf_case *k, const char *topo, const char *wrap, int naxes)
{
    sf_set(k, "ici.dims", topo);
    sf_set(k, "ici.wrap", wrap);
    sf_set(k, "ici.twisted", "false");
    if (k->c.ici_links_per_chip < 2u * (unsigned)naxes) {
        char v[16];
        snprintf(v, sizeof v, "%d", 2 * naxes);
        sf_set(k, "ici.links_per_chip", v);
    }
}

static int sf_make_cfg(sf_case *k, sf_src *s)
{
    unsigned pi = (unsigned)sf_range(s, 0, SF_NPRESETS - 1);
    k->preset = sf_presets[pi];
    k->c = *sf_preset(pi);
    k->nsets = 0;

    /* topology: small, so that full mode has at most 8 chips */
    const char *topo = sf_topos[sf_range(s, 0, SF_NTOPOS - 1)];
    unsigned dims[3];
    int naxes = cfg_parse_dims(topo, dims);
    char wrap[4] = "";
    unsigned wbits = sf_u8(s), wl = 0;
    for (int a = 0; a < naxes; a++)
        if (wbits >> a & 1)
            wrap[wl++] = "xyz"[a];
    sf_set_topology(k, topo, wrap, naxes);
    memcpy(k->dims, dims, sizeof dims);
    k->wrap = wbits & ((1u << naxes) - 1);

    size_t nkeys;
    const cfg_key *keys = cfg_keys(&nkeys);
    unsigned nvary = sf_u8(s) % (SF_MAX_SETS + 1);
    for (unsigned i = 0; i < nvary; i++) {
        const cfg_key *key = &keys[sf_range(s, 0, nkeys - 1)];
        if (key->type == CFG_T_STR || !strncmp(key->name, "ici.", 4) ||
            !strncmp(key->name, "pod.", 4))
            continue;
        sf_vary(k, s, key);
    }
    /* Refresh must leave the banks some time (issue 13, item 20: tREFI below tRFC runs
     * away); keep tREFI >= 2 tRFC. */
    if (k->c.hbm_trefi_ns < 2 * k->c.hbm_trfc_ns) {
        char v[64];
        snprintf(v, sizeof v, "%.17g", 2 * k->c.hbm_trfc_ns < 1 ? 1 : 2 * k->c.hbm_trfc_ns);
        sf_set(k, "hbm.tREFI_ns", v);
    }
    err e;
    uint64_t nunits = k->c.chip_cores * k->c.mxu_count + 3;
    if (cfg_check(&k->c, &e) || nunits > 259 || k->c.core_queue_depth * nunits > (1u << 18)) {
        k->c = *sf_preset(pi);
        k->nsets = 0;
        sf_set_topology(k, topo, wrap, naxes);
        if (cfg_check(&k->c, &e)) {
            fprintf(stderr, "fuzz_sim: preset %s with ici.dims=%s fails cfg_check: %s\n",
                    k->preset ? k->preset : "(defaults)", topo, e.msg);
            __builtin_trap();
        }
        sf_count.cfg_rejected++;
    }
    k->naxes = (unsigned)naxes;
    k->n_mxu = cfg_mxu_total(&k->c);
    k->vmem = (uint64_t)cfg_vmem_total_bytes(&k->c);
    k->hbm = cfg_hbm_bytes(&k->c);
    return 0;
}

/* ---- program ---- */

static uint64_t sf_dt_bytes(unsigned dt, uint64_t n)
{
    return (n * isa_dtype_bits(dt) + 7) / 8;
}

/* An address for `bytes` bytes inside [0, limit) (bytes <= limit), often aligned. */
static uint64_t sf_addr(sf_src *s, uint64_t limit, uint64_t bytes)
{
    uint64_t hi = limit - bytes;
    uint64_t a = sf_range(s, 0, hi);
    if (sf_u8(s) & 1)
        a &= ~(uint64_t)511;
    return a;
}

static unsigned sf_mxu_dtype(const sf_case *k, sf_src *s)
{
    unsigned ok[ISA_DTYPE_COUNT], n = 0;
    for (unsigned dt = 0; dt < ISA_DTYPE_COUNT; dt++)
        if (cfg_mxu_rate(&k->c, dt) > 0)
            ok[n++] = dt;
    return ok[sf_range(s, 0, n - 1)];
}

static isa_insn *sf_emit(sf_case *k, unsigned op)
{
    isa_insn *in = &k->in[k->n++];
    memset(in, 0, sizeof *in);
    in->op = (uint16_t)op;
    return in;
}

/* Attach semaphores: a wait only on a semaphore an earlier instruction signals and nothing
 * else waits on (one signal, one wait per semaphore), so that a valid program can never
 * deadlock whatever the issue order; a signal on a fresh semaphore. sync.wait must wait (it
 * becomes a nop when nothing is left to wait on) and sync.signal must signal. */
static void sf_sems(sf_case *k, sf_src *s, isa_insn *in)
{
    unsigned b = sf_u8(s);
    int must_wait = in->op == ISA_OP_SYNC_WAIT, must_signal = in->op == ISA_OP_SYNC_SIGNAL;
    if (((b & 3) == 0 || must_wait) && k->navail) {
        unsigned i = (unsigned)sf_range(s, 0, k->navail - 1);
        in->wait = (uint16_t)(k->avail[i] + 1);
        k->avail[i] = k->avail[--k->navail];
    }
    if (((b & 12) == 0 || must_signal) && k->next_sem < k->dead_sem) {
        in->signal = (uint16_t)(k->next_sem + 1);
        k->avail[k->navail++] = (uint16_t)k->next_sem++;
    }
    if ((must_wait && !in->wait) || (must_signal && !in->signal))
        in->op = ISA_OP_NOP;
}

static const unsigned sf_vec_ops[] = {
    ISA_OP_V_ADD,   ISA_OP_V_SUB,    ISA_OP_V_MUL,    ISA_OP_V_MAX,      ISA_OP_V_MIN,
    ISA_OP_V_FMA,   ISA_OP_V_SELECT, ISA_OP_V_CAST,   ISA_OP_V_EXP,      ISA_OP_V_LOG,
    ISA_OP_V_RSQRT, ISA_OP_V_TANH,   ISA_OP_V_REDUCE, ISA_OP_V_TRANSPOSE};

static void sf_gen_dma(sf_case *k, sf_src *s, int fault)
{
    isa_insn *in = sf_emit(k, sf_u8(s) & 1 ? ISA_OP_DMA_V2H : ISA_OP_DMA_H2V);
    uint64_t lim = k->vmem < k->hbm ? k->vmem : k->hbm;
    uint64_t bytes = sf_size(s, 1, lim < SF_DMA_MAX ? lim : SF_DMA_MAX);
    uint64_t *a = in->arg;
    a[ISA_DMA_BYTES] = bytes;
    uint64_t extent = bytes;
    if (sf_chance(s, 4)) {
        uint64_t block = sf_size(s, 1, bytes);
        uint64_t nb = (bytes + block - 1) / block;
        /* stride so that the extent still fits HBM */
        uint64_t smax = nb > 1 ? (k->hbm - block) / (nb - 1) : block + 4096;
        if (smax > block * 4 + 65536)
            smax = block * 4 + 65536;
        uint64_t stride = sf_range(s, block, smax < block ? block : smax);
        a[ISA_DMA_BLOCK] = block;
        a[ISA_DMA_STRIDE] = stride;
        extent = (nb - 1) * stride + block;
        if (extent > k->hbm) {
            a[ISA_DMA_BLOCK] = a[ISA_DMA_STRIDE] = 0;
            extent = bytes;
        } else if (fault && block > 1) {
            a[ISA_DMA_STRIDE] = block - 1;
            k->why = "DMA stride smaller than its block";
            fault = 0;
        }
    }
    a[ISA_DMA_HBM] = sf_addr(s, k->hbm, extent);
    a[ISA_DMA_VMEM] = sf_addr(s, k->vmem, bytes);
    if (fault) {
        if (sf_u8(s) & 1) {
            a[ISA_DMA_VMEM] = k->vmem - bytes + sf_range(s, 1, bytes);
            k->why = "DMA past the end of VMEM";
        } else {
            a[ISA_DMA_HBM] = k->hbm - extent + sf_range(s, 1, 4096);
            k->why = "DMA past the end of HBM";
        }
    }
    k->hbm_bytes += bytes;
    k->unit_insns++;
}

static void sf_gen_ldw(sf_case *k, sf_src *s, int fault)
{
    unsigned nm = k->n_mxu < 256 ? k->n_mxu : 256;
    unsigned m = (unsigned)sf_range(s, 0, nm - 1);
    unsigned dt = sf_mxu_dtype(k, s);
    uint64_t kk = sf_size(s, 1, k->c.mxu_rows), nn = sf_size(s, 1, k->c.mxu_cols);
    /* weights must fit VMEM */
    while (sf_dt_bytes(dt, kk * nn) > k->vmem)
        kk > nn ? (kk /= 2) : (nn /= 2);
    isa_insn *in = sf_emit(k, ISA_OP_MXU_LDW);
    in->arg[ISA_LDW_MXU] = m;
    in->arg[ISA_LDW_K] = kk;
    in->arg[ISA_LDW_N] = nn;
    in->arg[ISA_LDW_DTYPE] = dt;
    in->arg[ISA_LDW_VMEM] = sf_addr(s, k->vmem, sf_dt_bytes(dt, kk * nn));
    k->w[m].loaded = 1;
    k->w[m].k = (unsigned)kk;
    k->w[m].n = (unsigned)nn;
    k->w[m].dt = dt;
    if (fault) {
        unsigned bad[ISA_DTYPE_COUNT], nb = 0;
        for (unsigned d = 0; d < ISA_DTYPE_COUNT; d++)
            if (cfg_mxu_rate(&k->c, d) <= 0)
                bad[nb++] = d;
        unsigned how = sf_u8(s) % 3;
        if (how == 0 && nb) {
            in->arg[ISA_LDW_DTYPE] = bad[sf_range(s, 0, nb - 1)];
            k->why = "weights of a datatype the MXU lacks";
        } else if (how == 1 && k->c.mxu_rows < 65535) {
            in->arg[ISA_LDW_K] = k->c.mxu_rows + 1;
            k->why = "weight tile taller than the array";
        } else if (k->n_mxu <= 255) {
            in->arg[ISA_LDW_MXU] = sf_range(s, k->n_mxu, 255);
            k->w[m].loaded = 0;
            k->why = "MXU index past the chip's MXUs";
        } else {
            in->arg[ISA_LDW_VMEM] = k->vmem;
            k->why = "weights past the end of VMEM";
        }
    }
    k->unit_insns++;
}

static void sf_gen_matmul(sf_case *k, sf_src *s, int fault)
{
    unsigned nm = k->n_mxu < 256 ? k->n_mxu : 256;
    unsigned m = (unsigned)sf_range(s, 0, nm - 1);
    if (!k->w[m].loaded) {
        /* the nearest loaded MXU, if any (weights before matmul, mostly) */
        for (unsigned i = 1; i < nm && !k->w[m].loaded; i++)
            if (k->w[(m + i) % nm].loaded)
                m = (m + i) % nm;
    }
    if (!k->w[m].loaded && !fault) {
        sf_gen_ldw(k, s, 0);
        return;
    }
    isa_insn *in = sf_emit(k, ISA_OP_MXU_MATMUL);
    in->arg[ISA_MM_MXU] = m;
    if (!k->w[m].loaded) {
        in->arg[ISA_MM_M] = 1;
        in->arg[ISA_MM_DTYPE] = sf_mxu_dtype(k, s);
        k->why = "matmul on an MXU without weights";
        k->unit_insns++;
        return;
    }
    unsigned dt = k->w[m].dt;
    uint64_t wk = k->w[m].k, wn = k->w[m].n;
    uint64_t mm = sf_size(s, 1, SF_MM_MAX_M);
    while (mm > 1 && (sf_dt_bytes(dt, mm * wk) > k->vmem || mm * wn * 4 > k->vmem))
        mm /= 2;
    if (sf_dt_bytes(dt, mm * wk) > k->vmem || mm * wn * 4 > k->vmem) {
        /* not even one row fits: replace by a nop */
        in->op = ISA_OP_NOP;
        return;
    }
    in->arg[ISA_MM_M] = mm;
    in->arg[ISA_MM_DTYPE] = dt;
    in->arg[ISA_MM_SRC] = sf_addr(s, k->vmem, sf_dt_bytes(dt, mm * wk));
    in->arg[ISA_MM_DST] = sf_addr(s, k->vmem, mm * wn * 4);
    in->arg[ISA_MM_ACC] = sf_u8(s) & 1;
    if (fault) {
        unsigned other = dt;
        for (unsigned d = 0; d < ISA_DTYPE_COUNT; d++)
            if (d != dt && cfg_mxu_rate(&k->c, d) > 0)
                other = d;
        if (other != dt && sf_u8(s) & 1) {
            in->arg[ISA_MM_DTYPE] = other;
            k->why = "matmul datatype differs from the loaded weights'";
        } else {
            in->arg[ISA_MM_DST] = k->vmem - mm * wn * 4 + 1;
            k->why = "matmul result past the end of VMEM";
        }
    } else {
        uint64_t f = 2 * mm * wk * wn;
        k->flops += f;
        k->mxu_flops += f;
    }
    k->unit_insns++;
}

static void sf_gen_vec(sf_case *k, sf_src *s, int fault)
{
    unsigned op = sf_vec_ops[sf_range(s, 0, sizeof sf_vec_ops / sizeof *sf_vec_ops - 1)];
    unsigned dt = (unsigned)sf_range(s, 0, ISA_DTYPE_COUNT - 1), odt = dt;
    uint64_t n = sf_size(s, 1, SF_VEC_MAX_N);
    isa_insn *in = sf_emit(k, op);
    uint64_t width = 0;
    if (op == ISA_OP_V_CAST) {
        odt = (unsigned)sf_range(s, 0, ISA_DTYPE_COUNT - 1);
        in->arg[ISA_V_EXTRA] = odt;
    }
    if (op == ISA_OP_V_REDUCE || op == ISA_OP_V_TRANSPOSE) {
        width = sf_u8(s) & 1 ? 0 : sf_size(s, 1, 1u << 16);
        in->arg[ISA_V_EXTRA] = width;
    }
    uint64_t out = n;
    if (op == ISA_OP_V_REDUCE) {
        uint64_t w = width ? width : k->c.vpu_lanes;
        out = (n + w - 1) / w;
    }
    while (n > 1 && (sf_dt_bytes(dt, n) > k->vmem || sf_dt_bytes(odt, out) > k->vmem)) {
        n /= 2;
        out = op == ISA_OP_V_REDUCE
                  ? (n + (width ? width : k->c.vpu_lanes) - 1) / (width ? width : k->c.vpu_lanes)
                  : n;
    }
    in->arg[ISA_V_N] = n;
    in->arg[ISA_V_DTYPE] = dt;
    in->arg[ISA_V_SRC] = sf_addr(s, k->vmem, sf_dt_bytes(dt, n));
    in->arg[ISA_V_DST] = sf_addr(s, k->vmem, sf_dt_bytes(odt, out));
    if (fault) {
        in->arg[ISA_V_SRC] = k->vmem - sf_dt_bytes(dt, n) + 1;
        k->why = "vector source past the end of VMEM";
    }
    uint64_t f = 0;
    switch (op) {
    case ISA_OP_V_ADD:
    case ISA_OP_V_SUB:
    case ISA_OP_V_MUL:
    case ISA_OP_V_MAX:
    case ISA_OP_V_MIN:
    case ISA_OP_V_EXP:
    case ISA_OP_V_LOG:
    case ISA_OP_V_RSQRT:
    case ISA_OP_V_TANH:
    case ISA_OP_V_REDUCE:
        f = n;
        break;
    case ISA_OP_V_FMA:
        f = 2 * n;
        break;
    default: /* select, cast, transpose */
        break;
    }
    k->flops += f;
    k->vpu_flops += f;
    k->unit_insns++;
}

static void sf_gen_coll(sf_case *k, sf_src *s, int fault)
{
    static const unsigned ops[] = {ISA_OP_ICI_ALLREDUCE, ISA_OP_ICI_ALLGATHER,
                                   ISA_OP_ICI_REDUCESCATTER, ISA_OP_ICI_ALLTOALL};
    isa_insn *in = sf_emit(k, ops[sf_u8(s) % 4]);
    unsigned all = (1u << k->naxes) - 1;
    unsigned axes = (unsigned)sf_range(s, 1, all);
    in->arg[ISA_COLL_AXES] = axes;
    in->arg[ISA_COLL_BYTES] = sf_size(s, 1, SF_COLL_MAX);
    in->arg[ISA_COLL_DTYPE] = sf_range(s, 0, ISA_DTYPE_COUNT - 1);
    if (fault && k->naxes < 3) {
        in->arg[ISA_COLL_AXES] = 1u << k->naxes;
        k->why = "collective over an axis the topology lacks";
    }
    k->ici_bytes += in->arg[ISA_COLL_BYTES];
    k->has_ici = 1;
    k->unit_insns++;
}

/* An all-reduce across slices over the DCN (dcn.slices > 1). On a chip of one slice there is
 * no DCN unit: as the fault, the run must fail with an error; otherwise an ICI collective is
 * emitted instead. */
static void sf_gen_dcn(sf_case *k, sf_src *s, int fault)
{
    if (k->c.dcn_slices < 2 && !fault) {
        sf_gen_coll(k, s, 0);
        return;
    }
    isa_insn *in = sf_emit(k, ISA_OP_DCN_ALLREDUCE);
    in->arg[ISA_DCN_BYTES] = sf_size(s, 1, SF_COLL_MAX);
    in->arg[ISA_DCN_DTYPE] = sf_range(s, 1, ISA_DTYPE_COUNT - 1);
    if (k->c.dcn_slices < 2)
        k->why = "a DCN all-reduce on a chip of one slice";
    k->unit_insns++;
}

/* A send and its matching receive, adjacent (either order): every chip of an SPMD program
 * receives from direction !d what its neighbour sent towards d. A deliberate deadlock is a
 * receive nothing sends to. */
static void sf_gen_p2p(sf_case *k, sf_src *s, int deadlock)
{
    unsigned axis = deadlock ? 1 : 1u << sf_range(s, 0, k->naxes - 1);
    unsigned dir = sf_u8(s) & 1;
    uint64_t bytes = sf_size(s, 1, SF_COLL_MAX);
    int recv_first = sf_u8(s) & 1;
    for (int i = 0; i < 2; i++) {
        int is_recv = i == 0 ? recv_first : !recv_first;
        if (deadlock && !is_recv)
            continue;
        isa_insn *in = sf_emit(k, is_recv ? ISA_OP_ICI_RECV : ISA_OP_ICI_SEND);
        in->arg[ISA_P2P_AXIS] = axis;
        in->arg[ISA_P2P_DIR] = is_recv ? !dir : dir;
        in->arg[ISA_P2P_BYTES] = bytes;
        in->arg[ISA_P2P_VMEM] = sf_addr(s, k->vmem, bytes < k->vmem ? bytes : k->vmem);
        if (!is_recv)
            k->ici_bytes += bytes;
        k->unit_insns++;
    }
    k->has_ici = 1;
}

static void sf_gen_mark(sf_case *k, sf_src *s)
{
    static const char *const names[] = {"attn",   "mlp", "(start)", "x y", "\xc3\xa9t\xc3\xa9",
                                        "a,\"b\""};
    isa_insn *in = sf_emit(k, ISA_OP_MARK);
    unsigned b = sf_u8(s);
    if (b < 192) {
        snprintf(in->name, sizeof in->name, "%s", names[b % (sizeof names / sizeof *names)]);
    } else {
        size_t len = sf_range(s, 0, ISA_NAME_MAX - 1);
        for (size_t i = 0; i < len; i++)
            in->name[i] = (char)(0x20 + sf_u8(s) % 0x5f);
        in->name[len] = 0;
    }
    in->arg[0] = strlen(in->name);
}

static void sf_make_prog(sf_case *k, sf_src *s)
{
    k->n = 0;
    k->navail = 0;
    k->next_sem = 0;
    k->dead_sem = ISA_SEM_MAX - 1;
    memset(k->w, 0, sizeof k->w);
    unsigned mode = sf_u8(s) % 16;
    k->expect = mode == 15   ? SF_DEADLOCK
                : mode == 14 ? SF_ERROR
                             : SF_OK; /* exhausted input: valid */
    unsigned len = (unsigned)sf_range(s, 1, SF_MAX_INSNS - 2);
    k->fault_at = k->expect == SF_OK ? -1 : (int)sf_range(s, 0, len - 1);
    int faulted = 0;
    while (k->n < len && k->n < SF_MAX_INSNS - 2) {
        int fault = !faulted && k->fault_at >= 0 && k->n >= (unsigned)k->fault_at;
        int err_fault = fault && k->expect == SF_ERROR;
        unsigned first = k->n;
        unsigned kind = sf_u8(s) % 32;
        if (fault && k->expect == SF_DEADLOCK) {
            /* a wait nothing signals, or a receive nothing sends to */
            /* (an unwrapped axis of one chip has no neighbour: a receive there is timed as
             * coming across the missing edge, and completes) */
            if ((kind & 1) && (k->dims[0] > 1 || (k->wrap & 1))) {
                sf_gen_p2p(k, s, 1);
                k->why = "a receive no chip sends to";
            } else {
                isa_insn *in = kind & 2 ? sf_emit(k, ISA_OP_SYNC_WAIT) : sf_emit(k, ISA_OP_NOP);
                if (kind & 4) {
                    in->op = ISA_OP_V_ADD;
                    in->arg[ISA_V_N] = 1;
                    in->arg[ISA_V_DTYPE] = ISA_DT_FP32;
                    k->unit_insns++;
                }
                in->wait = (uint16_t)(k->dead_sem + 1);
                k->why = "a wait on a semaphore nothing signals";
            }
            faulted = 1;
            continue;
        }
        if (kind < 5) {
            sf_gen_dma(k, s, err_fault);
        } else if (kind < 8) {
            sf_gen_ldw(k, s, err_fault);
        } else if (kind < 12) {
            sf_gen_matmul(k, s, err_fault);
        } else if (kind < 19) {
            sf_gen_vec(k, s, err_fault);
        } else if (kind < 21) {
            sf_gen_coll(k, s, err_fault);
        } else if (kind < 22) {
            sf_gen_dcn(k, s, err_fault && k->c.dcn_slices < 2);
        } else if (kind < 24) {
            sf_gen_p2p(k, s, 0);
        } else if (kind < 25) {
            sf_emit(k, ISA_OP_SYNC_SIGNAL);
        } else if (kind < 26) {
            sf_emit(k, ISA_OP_SYNC_WAIT);
        } else if (kind < 27) {
            sf_emit(k, ISA_OP_SYNC_BARRIER);
        } else if (kind < 29) {
            sf_gen_mark(k, s);
        } else if (kind < 30) {
            sf_emit(k, ISA_OP_NOP);
        } else {
            sf_gen_vec(k, s, err_fault);
        }
        if (err_fault && k->why)
            faulted = 1;
        /* semaphores on what was emitted (the p2p pair's second half stays unattached so
         * that the pair can always run together) */
        if (k->n > first)
            sf_sems(k, s, &k->in[first]);
        for (unsigned i = first; i < k->n; i++) {
            unsigned u = isa_info_of(k->in[i].op)->unit;
            if (k->in[i].op == ISA_OP_SYNC_BARRIER)
                k->trailing_barrier = 1;
            else if (u != ISA_UNIT_SYNC)
                k->trailing_barrier = 0;
        }
    }
    if (k->expect != SF_OK && !faulted) {
        /* the fault could not be placed (e.g. no dtype the MXU lacks): a plain program */
        k->expect = SF_OK;
        k->why = NULL;
    }
}

/* ---- checks ---- */

static int sf_near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b)) + 1e-6;
}

static int sf_check_failure(const sf_case *k, int rc, const err *e, const char *what)
{
    if (k->expect == SF_OK)
        SF_CHECK(rc == 0, "%s: a valid program failed: %s", what, e->msg);
    if (k->expect == SF_DEADLOCK)
        SF_CHECK(rc != 0 && strstr(e->msg, "deadlock"),
                 "%s: a program with %s gave %s'%s', not a deadlock", what, k->why,
                 rc ? "the error " : "success ", rc ? e->msg : "");
    if (k->expect == SF_ERROR)
        SF_CHECK(rc != 0 && e->msg[0] && !strstr(e->msg, "deadlock"),
                 "%s: a program with %s gave %s'%s', not its error", what, k->why,
                 rc ? "the error " : "success ", rc ? e->msg : "");
    return 0;
}

/* Peak vector FLOP rate (FLOP/ps): the three pipes together at the widest packing, 2 FLOP
 * per element on the VALU (fma). */
static double sf_vpu_peak_per_ps(const cfg *c)
{
    double lanes = (double)c->vpu_sublanes * (double)c->vpu_lanes * (double)cfg_device_cores(c) *
                   (double)(c->vpu_max_pack < 8 ? c->vpu_max_pack : 8);
    double per_cycle = lanes * (2 * c->vpu_valu_slots + 1 / c->vpu_trans_cycles +
                                (double)c->vpu_xlane_units / c->vpu_reduce_cycles);
    return per_cycle / cfg_cycle_ps(c);
}

static int sf_check_run(const sf_case *k, const run *r)
{
    const report *p = &r->rep;
    const cfg *c = &k->c;
    uint64_t T = p->end_ps;
    double Td = (double)T;

    /* counters: no wrap, finite */
    for (size_t i = 0; i < stats_count(r->sim.stats); i++) {
        const stats_entry *se = stats_at(r->sim.stats, i);
        double v = stats_value(se);
        SF_CHECK(isfinite(v) && v >= 0, "counter %s.%s = %g", se->group, se->name, v);
        if (se->value)
            SF_CHECK(*se->value < (1ULL << 63), "counter %s.%s = %" PRIu64 " (wrapped?)", se->group,
                     se->name, *se->value);
    }

    /* analytic totals */
    SF_CHECK(p->insns == k->n, "instructions %" PRIu64 ", program has %u", p->insns, k->n);
    SF_CHECK(p->flops == k->flops, "FLOPs %" PRIu64 ", analytic %" PRIu64, p->flops, k->flops);
    SF_CHECK(p->mxu_flops == k->mxu_flops, "MXU FLOPs %" PRIu64 ", analytic %" PRIu64, p->mxu_flops,
             k->mxu_flops);
    SF_CHECK(p->vpu_flops == k->vpu_flops, "vector FLOPs %" PRIu64 ", analytic %" PRIu64,
             p->vpu_flops, k->vpu_flops);
    SF_CHECK(p->hbm_bytes == k->hbm_bytes, "HBM bytes %" PRIu64 ", analytic %" PRIu64, p->hbm_bytes,
             k->hbm_bytes);
    SF_CHECK(p->ici_bytes == k->ici_bytes, "ICI bytes %" PRIu64 ", analytic %" PRIu64, p->ici_bytes,
             k->ici_bytes);

    /* time split */
    const uint64_t *sp = p->t_split_ps;
    uint64_t split = 0;
    for (unsigned s = 0; s < UNIT_SPLIT_COUNT; s++)
        split += sp[s];
    SF_CHECK(split == T,
             "time split compute %" PRIu64 " + memory %" PRIu64 " + comm %" PRIu64
             " + idle %" PRIu64 " = %" PRIu64 " ps, run time %" PRIu64 " ps",
             sp[UNIT_TIME_COMPUTE], sp[UNIT_TIME_MEMORY], sp[UNIT_TIME_COMM], sp[UNIT_SPLIT_IDLE],
             split, T);
    /* A barrier after the last unit instruction once stalled dispatch past the run's end
     * (finding F1 of the first run; fixed: a barrier completes at its release). */
    SF_CHECK(p->dispatch_stall_ps <= T, "dispatch stall %" PRIu64 " ps > run time %" PRIu64,
             p->dispatch_stall_ps, T);
    SF_CHECK(p->cycles == (uint64_t)(Td / p->cycle_ps + 0.5), "cycles %" PRIu64, p->cycles);

    /* units: time within the run, sums equal to the totals */
    uint64_t u_insns = 0, u_mxu_flops = 0, u_vpu_flops = 0, u_dma_bytes = 0;
    for (unsigned i = 0; i < p->nunits; i++) {
        const report_unit *u = &p->units[i];
        SF_CHECK(u->busy_ps <= T, "%s busy %" PRIu64 " ps > run time %" PRIu64, u->name, u->busy_ps,
                 T);
        SF_CHECK(u->stall_sem_ps <= T && u->stall_qfull_ps <= T,
                 "%s stalls sem %" PRIu64 ", queue %" PRIu64 " ps > run time %" PRIu64, u->name,
                 u->stall_sem_ps, u->stall_qfull_ps, T);
        /* VMEM stalls are "part of busy" (docs/outputs.md): of busy_ps for the MXU (its
         * weight loads' stall is load_stall_vmem_ps, part of load_busy_ps, since finding F4
         * of the first run), of the pipes' or engines' summed occupancy otherwise (busy_ps
         * is their union) */
        double occupied = (double)u->busy_ps;
        const stats_reg *st = r->sim.stats;
        if (!strcmp(u->kind, "mxu"))
            SF_CHECK(stats_get(st, u->name, "load_stall_vmem_ps", 0) <=
                         stats_get(st, u->name, "load_busy_ps", 0),
                     "%s weight-load VMEM stall above the load path's busy time", u->name);
        else if (!strcmp(u->kind, "vpu"))
            occupied = stats_get(st, u->name, "valu_busy_ps", 0) +
                       stats_get(st, u->name, "trans_busy_ps", 0) +
                       stats_get(st, u->name, "xlane_busy_ps", 0);
        else if (!strcmp(u->kind, "dma"))
            occupied = (double)c->dma_engines * Td;
        SF_CHECK((double)u->stall_vmem_ps <= occupied,
                 "%s VMEM stall %" PRIu64 " ps > the %g ps it was occupied", u->name,
                 u->stall_vmem_ps, occupied);
        SF_CHECK(u->util >= 0 && u->util <= 1, "%s utilisation %g", u->name, u->util);
        u_insns += u->insns;
        if (!strcmp(u->kind, "mxu"))
            u_mxu_flops += u->flops;
        else if (!strcmp(u->kind, "vpu"))
            u_vpu_flops += u->flops;
        else if (!strcmp(u->kind, "dma"))
            u_dma_bytes += u->bytes;
        else if (!strcmp(u->kind, "ici"))
            /* what the device transmits fits its share of the chip's links */
            SF_CHECK((double)u->bytes <= (double)c->ici_links_per_chip * cfg_ici_link_bps(c) * Td *
                                                 1e-12 * (1 + 1e-9) +
                                             1,
                     "%s sent %" PRIu64 " bytes in %" PRIu64 " ps, above %" PRIu64
                     " links x %g GB/s",
                     u->name, u->bytes, T, c->ici_links_per_chip, cfg_ici_link_bps(c) * 1e-9);
    }
    /* every unit is in the report (finding F2 of the first run, fixed by the unit table) */
    {
        SF_CHECK(u_insns == k->unit_insns,
                 "units completed %" PRIu64 " instructions, program %" PRIu64, u_insns,
                 k->unit_insns);
        SF_CHECK(u_mxu_flops == k->mxu_flops, "MXU units did %" PRIu64 " FLOPs, analytic %" PRIu64,
                 u_mxu_flops, k->mxu_flops);
        SF_CHECK(u_vpu_flops == k->vpu_flops,
                 "vector unit did %" PRIu64 " FLOPs, analytic %" PRIu64, u_vpu_flops, k->vpu_flops);
        SF_CHECK(u_dma_bytes == k->hbm_bytes, "DMA unit moved %" PRIu64 " bytes, analytic %" PRIu64,
                 u_dma_bytes, k->hbm_bytes);
    }

    /* peaks: rounding of each matmul's ideal time to ps allows 1 ps per instruction */
    SF_CHECK(p->mxu_ideal_ps <= T + k->n,
             "MXU FLOPs at peak take %" PRIu64 " ps, longer than the run's %" PRIu64,
             p->mxu_ideal_ps, T);
    SF_CHECK(p->mxu_util >= 0 && p->mxu_util <= 1, "MXU utilisation %g", p->mxu_util);
    SF_CHECK(p->mac_util >= 0 && p->mac_util <= 1 + 1e-9 + k->n / (Td + 1), "MAC utilisation %g",
             p->mac_util);
    SF_CHECK((double)p->hbm_bytes <= cfg_hbm_peak_bps(c) * Td * 1e-12 * (1 + 1e-9) + 1,
             "HBM moved %" PRIu64 " bytes in %" PRIu64 " ps, above the %g B/s peak", p->hbm_bytes,
             T, cfg_hbm_peak_bps(c));
    SF_CHECK(p->hbm_util >= 0 && p->hbm_util <= 1 + 1e-9, "HBM utilisation %g", p->hbm_util);
    SF_CHECK((double)p->vpu_flops <= sf_vpu_peak_per_ps(c) * Td * (1 + 1e-9) + 1,
             "vector unit did %" PRIu64 " FLOPs in %" PRIu64 " ps, above its peak", p->vpu_flops,
             T);
    SF_CHECK(p->bound_frac >= 0 && p->bound_frac <= 1 + 1e-9 + k->n / (Td + 1),
             "roofline bound is %g of the run time", p->bound_frac);
    if (T == 0)
        SF_CHECK(p->flops == 0 && p->hbm_bytes == 0, "work done in zero time");

    /* regions: add up to the totals, spans inside the run */
    uint64_t r_insns = 0, r_flops = 0, r_mxu = 0, r_hbm = 0, r_ici = 0;
    for (unsigned i = 0; i < p->nregions; i++) {
        const report_region *g = &p->regions[i];
        r_insns += g->insns;
        r_flops += g->flops;
        r_mxu += g->mxu_flops;
        r_hbm += g->hbm_bytes;
        r_ici += g->ici_bytes;
        SF_CHECK(g->start_ps <= g->end_ps || (g->end_ps == 0 && g->start_ps == 0),
                 "region '%s' starts at %" PRIu64 " after its end %" PRIu64, g->name, g->start_ps,
                 g->end_ps);
        SF_CHECK(g->end_ps <= T, "region '%s' ends at %" PRIu64 " after the run %" PRIu64, g->name,
                 g->end_ps, T);
    }
    SF_CHECK(r_insns == p->insns && r_flops == p->flops && r_mxu == p->mxu_flops &&
                 r_hbm == p->hbm_bytes && r_ici == p->ici_bytes,
             "regions add up to %" PRIu64 " insns, %" PRIu64 " FLOPs, %" PRIu64
             " MXU FLOPs, %" PRIu64 " HBM B, %" PRIu64 " ICI B",
             r_insns, r_flops, r_mxu, r_hbm, r_ici);
    return 0;
}

/* `single` is the single-chip run of the same program and config, or NULL to skip comparing
 * with it. */
static int sf_check_pod(const sf_case *k, const pod_result *res, const run *single, int full)
{
    double step = (double)res->step_ps, dpc = cfg_devices_per_chip(&k->c);
    /* the program is one device's; a chip runs dpc of them */
    SF_CHECK(sf_near(res->flops_per_device, (double)k->flops),
             "pod %s: %g FLOPs per device, analytic %" PRIu64, full ? "full" : "symmetric",
             res->flops_per_device, k->flops);
    SF_CHECK(sf_near(res->flops_per_chip, dpc * (double)k->flops),
             "pod %s: %g FLOPs per chip, analytic %g", full ? "full" : "symmetric",
             res->flops_per_chip, dpc * (double)k->flops);
    SF_CHECK(sf_near(res->mxu_flops_per_chip, dpc * (double)k->mxu_flops),
             "pod: %g MXU FLOPs per chip, analytic %g", res->mxu_flops_per_chip,
             dpc * (double)k->mxu_flops);
    SF_CHECK(sf_near(res->ici_bytes_per_chip, dpc * (double)k->ici_bytes),
             "pod: %g ICI bytes per chip, analytic %g", res->ici_bytes_per_chip,
             dpc * (double)k->ici_bytes);
    SF_CHECK(res->mismatches == 0, "pod: %" PRIu64 " mismatched collectives in an SPMD program",
             res->mismatches);
    const double *sp = res->t_split;
    double busy = sp[UNIT_TIME_COMPUTE] + sp[UNIT_TIME_MEMORY] + sp[UNIT_TIME_COMM];
    int negative = 0, same = 1;
    for (unsigned s = 0; s < UNIT_SPLIT_COUNT; s++) {
        negative |= sp[s] < 0;
        if (!full && single && s < UNIT_SPLIT_IDLE)
            same &= sf_near(sp[s], (double)single->rep.t_split_ps[s]);
    }
    SF_CHECK(!negative, "pod: negative time split");
    SF_CHECK(busy <= step * (1 + 1e-9) + 1,
             "pod %s: compute %g + memory %g + comm %g ps > step %g ps",
             full ? "full" : "symmetric", sp[UNIT_TIME_COMPUTE], sp[UNIT_TIME_MEMORY],
             sp[UNIT_TIME_COMM], step);
    SF_CHECK(sf_near(busy + sp[UNIT_SPLIT_IDLE], step), "pod: time split sums to %g, step %g",
             busy + sp[UNIT_SPLIT_IDLE], step);
    SF_CHECK(res->mxu_ideal_ps <= step + k->n, "pod: MXU work at peak %g ps > step %g ps",
             res->mxu_ideal_ps, step);
    SF_CHECK(res->mfu >= 0 && res->mfu <= 1 + 1e-9 + k->n / (step + 1), "pod: MFU %g", res->mfu);
    if (!full && single) {
        /* the same representative chip on the same topology as the single-chip run */
        SF_CHECK(res->step_ps == single->rep.end_ps,
                 "symmetric pod step %" PRIu64 " ps, single-chip run %" PRIu64 " ps", res->step_ps,
                 single->rep.end_ps);
        SF_CHECK(same, "symmetric pod time split differs from the single-chip run");
    }
    return 0;
}

/* ---- one input ---- */

static int sf_write_trace(const sf_case *k, const char *path)
{
    trace_writer *w;
    err e;
    if (trace_writer_open(&w, path, "fuzz_sim", &e)) {
        fprintf(stderr, "fuzz_sim: %s\n", e.msg);
        abort();
    }
    for (unsigned i = 0; i < k->n; i++)
        if (trace_writer_put(w, &k->in[i], &e)) {
            /* the generator only writes in-range operands: isa_validate must accept them */
            trace_writer_abort(w);
            sf_fail("generated instruction %u refused by the trace writer: %s", i, e.msg);
            return -1;
        }
    if (trace_writer_close(w, &e)) {
        fprintf(stderr, "fuzz_sim: %s\n", e.msg);
        abort();
    }
    return 0;
}

static int sf_one(const uint8_t *data, size_t size)
{
    static sf_case k;
    sf_src s = {data, size};
    memset(&k, 0, sizeof k);
    sf_current = &k;
    sf_count.inputs++;
    unsigned flags = sf_u8(&s);
    sf_make_cfg(&k, &s);
    sf_make_prog(&k, &s);
    if (!k.n || sf_clock_used > SF_CLOCK_LIMIT) {
        if (k.n && sf_count.skipped++ == 0)
            fprintf(stderr,
                    "fuzz_sim: %" PRIu64 " ps simulated in this process; stopping "
                    "simulation so SystemC's clock cannot run out\n",
                    sf_clock_used);
        return 0;
    }

    if (getenv("FUZZ_SIM_DUMP")) /* print each case, for turning a finding into a test */
        sf_dump(&k);
    char path[512];
    fuzz_path(path, sizeof path, "sim.tpt");
    if (sf_write_trace(&k, path))
        return -1;

    /* single chip */
    run r;
    err e;
    memset(&r, 0, sizeof r);
    e.msg[0] = 0;
    int rc = sim_run_cfg(&r.sim, &k.c, path, NULL, &e);
    sf_clock_used += kern_now();
    sf_count.runs++;
    int bad = sf_check_failure(&k, rc, &e, "single chip");
    if (!bad && rc == 0) {
        if (report_build(&r.rep, r.sim.chip, r.sim.stats, path, "", &e))
            sf_fail("report_build failed: %s", e.msg), bad = 1;
        else
            bad = sf_check_run(&k, &r);
        if (!bad && flags % 8 == 0) {
            /* the text report must print (into memory) */
            char *buf = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&buf, &len);
            if (!f)
                abort();
            report_text(&r.rep, f);
            fclose(f);
            if (!len)
                sf_fail("empty text report"), bad = 1;
            free(buf);
        }
    }
    if (!bad) {
        sf_count.ok += rc == 0;
        sf_count.deadlock += k.expect == SF_DEADLOCK;
        sf_count.error += k.expect == SF_ERROR;
    }

    /* pods: symmetric on the same topology for some inputs, full mode for others */
    if (!bad && (flags & 0x30) && sf_clock_used <= SF_CLOCK_LIMIT) {
        int full = (flags & 0x30) != 0x10;
        pod_result res;
        err pe;
        pe.msg[0] = 0;
        int prc = pod_estimate(&k.c, path, k.c.ici_dims, full ? ICI_MODE_FULL : ICI_MODE_SYMMETRIC,
                               &res, &pe);
        sf_clock_used += kern_now();
        if (getenv("FUZZ_SIM_DUMP"))
            fprintf(stderr, "  pod %s: %s\n", full ? "full" : "symmetric", prc ? pe.msg : "ok");
        bad = sf_check_failure(&k, prc, &pe, full ? "pod (full)" : "pod (symmetric)");
        if (!bad && prc == 0 && rc == 0)
            bad = sf_check_pod(&k, &res, &r, full);
        if (!bad && full)
            sf_count.pod_full++;
        else if (!bad)
            sf_count.pod_sym++;
    }
    run_fini(&r);
    sf_current = NULL;
    return bad ? -1 : 0;
}

#ifndef SF_NO_FUZZER_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sf_one(data, size);
    sf_remember(data, size);
    return 0;
}
#endif
