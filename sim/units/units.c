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

const unit_kind unit_kinds[] = {
    {
        .name = "mxu",
        .title = "MXU",
        .ops = &mxu_ops,
        .serves = ISA_UNIT_MXU,
        .count = count_mxu,
        .select = "mxu",
        .time = UNIT_TIME_COMPUTE,
        .traffic = UNIT_TRAFFIC_NONE,
        .matrix = 1,
    },
    {
        .name = "vpu",
        .title = "vector unit",
        .ops = &vpu_ops,
        .serves = ISA_UNIT_VPU,
        .count = count_one,
        .time = UNIT_TIME_COMPUTE,
        .traffic = UNIT_TRAFFIC_NONE,
    },
    {
        .name = "dma",
        .title = "DMA",
        .ops = &dma_ops,
        .serves = ISA_UNIT_DMA,
        .count = count_one,
        .time = UNIT_TIME_MEMORY,
        .traffic = UNIT_TRAFFIC_HBM,
    },
    {
        .name = "ici",
        .title = "ICI port",
        .ops = &ici_ops,
        .serves = ISA_UNIT_ICI,
        .count = count_ici,
        .absent = "ICI instruction on a chip without an interconnect",
        .time = UNIT_TIME_COMM,
        .traffic = UNIT_TRAFFIC_ICI,
    },
    {
        .name = "sc",
        .title = "SparseCores",
        .ops = &sc_ops,
        .serves = ISA_UNIT_SC,
        .count = count_sc,
        .absent = "SparseCore instruction on a chip without SparseCores (sc.count = 0)",
        .time = UNIT_TIME_MEMORY,
        .traffic = UNIT_TRAFFIC_HBM,
    },
    {
        .name = "dcn",
        .title = "DCN share",
        .ops = &dcn_ops,
        .serves = ISA_UNIT_DCN,
        .count = count_dcn,
        .absent = "DCN instruction on a chip of one slice (dcn.slices = 1; give --slices or "
                  "-p dcn.slices=S)",
        .time = UNIT_TIME_COMM,
        .traffic = UNIT_TRAFFIC_DCN,
    },
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

const unit_kind *unit_kind_find(const char *name)
{
    for (unsigned i = 0; i < unit_kind_count; i++)
        if (!strcmp(unit_kinds[i].name, name))
            return &unit_kinds[i];
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
