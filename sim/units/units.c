/* units.c - the table of unit kinds (see units.h). Row order is display order: report rows,
 * JSON and CSV units, timeline tracks. */
#include "units.h"

#include <string.h>

static unsigned count_mxu(const cfg *c, int has_net)
{
    (void)has_net;
    return cfg_mxu_total(c);
}

static unsigned count_one(const cfg *c, int has_net)
{
    (void)c;
    (void)has_net;
    return 1;
}

static unsigned count_ici(const cfg *c, int has_net)
{
    (void)c;
    return has_net ? 1 : 0;
}

static unsigned count_dcn(const cfg *c, int has_net)
{
    (void)has_net;
    return c->dcn_slices > 1 ? 1 : 0; /* one slice: no data-centre network to use */
}

static unsigned count_sc(const cfg *c, int has_net)
{
    (void)has_net;
    return c->sc_count ? 1 : 0; /* one unit: the chip's SparseCores run from one queue */
}

/* A row: the kind's name (its ops are <name>_ops), title, the ISA unit class it serves
 * (ISA_UNIT_<cls>), its instances per chip, the operand selecting an instance (NULL: always
 * instance 0), the error for its opcodes on a chip without one, its time-split class
 * (UNIT_TIME_<tm>), its traffic (UNIT_TRAFFIC_<trf>) and whether its FLOPs are matrix FLOPs. */
#define UNIT_KIND(id, what, cls, n, sel, none, tm, trf, mat)                                       \
    {                                                                                              \
        .name = #id, .title = what, .ops = &id##_ops, .serves = ISA_UNIT_##cls, .count = n,        \
        .select = sel, .absent = none, .time = UNIT_TIME_##tm, .traffic = UNIT_TRAFFIC_##trf,      \
        .matrix = mat                                                                              \
    }

const unit_kind unit_kinds[] = {
    UNIT_KIND(mxu, "MXU", MXU, count_mxu, "mxu", NULL, COMPUTE, NONE, 1),
    UNIT_KIND(vpu, "vector unit", VPU, count_one, NULL, NULL, COMPUTE, NONE, 0),
    UNIT_KIND(dma, "DMA", DMA, count_one, NULL, NULL, MEMORY, HBM, 0),
    UNIT_KIND(ici, "ICI port", ICI, count_ici, NULL,
              "ICI instruction on a chip without an interconnect", COMM, ICI, 0),
    UNIT_KIND(sc, "SparseCores", SC, count_sc, NULL,
              "SparseCore instruction on a chip without SparseCores (sc.count = 0)", MEMORY, HBM,
              0),
    UNIT_KIND(dcn, "DCN share", DCN, count_dcn, NULL,
              "DCN instruction on a chip of one slice (dcn.slices = 1; give --slices or "
              "-p dcn.slices=S)",
              COMM, DCN, 0),
};

const unsigned unit_kind_count = sizeof unit_kinds / sizeof unit_kinds[0];

const unit_kind *unit_kind_of_ops(const unit_ops *ops)
{
    for (unsigned i = 0; i < unit_kind_count; i++)
        if (unit_kinds[i].ops == ops)
            return &unit_kinds[i];
    return NULL;
}

const unit_kind *unit_kind_of_group(const char *group)
{
    for (unsigned i = 0; i < unit_kind_count; i++) {
        size_t n = strlen(unit_kinds[i].name);
        if (strncmp(group, unit_kinds[i].name, n) || !group[n])
            continue;
        const char *p = group + n;
        while (*p >= '0' && *p <= '9')
            p++;
        if (!*p)
            return &unit_kinds[i];
    }
    return NULL;
}

unsigned unit_kind_rank(const unit_kind *k)
{
    if (k && k >= unit_kinds && k < unit_kinds + unit_kind_count)
        return (unsigned)(k - unit_kinds);
    return unit_kind_count;
}

const char *unit_time_name(unit_time t)
{
    static const char *const names[UNIT_TIME_COUNT] = {"compute", "memory", "communication"};
    return (unsigned)t < UNIT_TIME_COUNT ? names[t] : "?";
}

static const struct {
    const char *stat, *name, *desc;
} unit_splits[UNIT_SPLIT_COUNT] = {
    {"t_compute_ps", "compute", "time with an MXU or the vector unit busy"},
    {"t_memory_ps", "memory", "time with only DMA busy"},
    {"t_comm_ps", "exposed_comm", "time with only ICI (or DCN) busy (exposed communication)"},
    {"t_idle_ps", "idle", "time with nothing busy"},
};

const char *unit_split_stat(unsigned k)
{
    return k < UNIT_SPLIT_COUNT ? unit_splits[k].stat : "?";
}

const char *unit_split_name(unsigned k)
{
    return k < UNIT_SPLIT_COUNT ? unit_splits[k].name : "?";
}

const char *unit_split_desc(unsigned k)
{
    return k < UNIT_SPLIT_COUNT ? unit_splits[k].desc : "?";
}

int unit_kinds_check(const unit_kind *kinds, unsigned n, err *e)
{
    for (unsigned cls = 0; cls < ISA_UNIT_COUNT; cls++) {
        unsigned rows = 0;
        for (unsigned i = 0; i < n; i++)
            rows += kinds[i].serves == cls;
        if (cls == ISA_UNIT_SYNC) {
            if (rows)
                return err_set(e, "unit table: a unit kind serves class 'sync', which the "
                                  "dispatcher executes itself");
            continue;
        }
        if (rows != 1)
            return err_set(e,
                           "unit table: ISA unit class '%s' is served by %u unit kinds, "
                           "expected exactly 1 (sim/units/units.c)",
                           isa_unit_name(cls), rows);
    }
    for (unsigned i = 0; i < n; i++) {
        if (!kinds[i].select)
            continue;
        for (unsigned op = 0; op < ISA_OP_COUNT; op++)
            if (isa_info_of(op)->unit == kinds[i].serves && isa_arg_index(op, kinds[i].select) < 0)
                return err_set(e,
                               "unit table: kind '%s' selects its instance by operand '%s', "
                               "which %s lacks",
                               kinds[i].name, kinds[i].select, isa_info_of(op)->mnemonic);
    }
    return 0;
}

unsigned unit_kinds_total(const cfg *c, int has_net)
{
    unsigned n = 0;
    for (unsigned i = 0; i < unit_kind_count; i++)
        n += unit_kinds[i].count(c, has_net);
    return n;
}
