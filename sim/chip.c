/* chip.c - wires one chip together: trace reader, dispatcher (core.c), the units of every
 * kind in the unit table (units.h), VMEM and HBM. Megacore approximation: see chip.h. */
#include "chip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "hbm.h"
#include "ici.h"
#include "kernel.h"
#include "unit.h"
#include "units.h"
#include "vmem.h"

struct chip {
    const cfg *cfg;
    unsigned id;
    unit_env env;
    vmem *vm;
    hbm *hb;
    trace_reader *tr;
    unit **units; /* every kind's units, in unit-table order */
    unsigned nunits;
    core *co;
};

int chip_prefetch(chip *ch, err *e)
{
    return trace_reader_prefetch(ch->tr, e);
}

chip *chip_new(const cfg *c, unsigned chip_id, struct ici_net *net, const char *trace_path, err *e)
{
    chip *ch = err_calloc(1, sizeof *ch, NULL, e);
    if (!ch)
        return NULL;
    ch->cfg = c;
    ch->id = chip_id;
    if (trace_reader_open(&ch->tr, trace_path, e))
        goto out_fail;
    if (!(ch->vm = vmem_new(c, e)) || !(ch->hb = hbm_new(c, e)))
        goto out_fail;
    unsigned nunits = unit_kinds_total(c, net != NULL);
    ch->units = calloc(nunits ? nunits : 1, sizeof *ch->units);
    if (!ch->units) {
        err_setk(e, ERR_NOMEM, "out of memory");
        goto out_fail;
    }
    ch->nunits = nunits; /* slots of units, NULL until made */
    ch->env = (unit_env){
        .cfg = c,
        .cycle_ps = cfg_cycle_ps(c),
        .hbm = ch->hb,
        .hbm_bytes = cfg_hbm_bytes(c),
        .vmem_bytes = vmem_capacity(ch->vm),
        .vmem = ch->vm,
        .net = net,
        .chip_id = chip_id,
        .done = core_unit_done,
        .wake = core_unit_wake,
        .wake_at = core_unit_wake_at,
    };
    unsigned s = 0;
    for (unsigned k = 0; k < unit_kind_count; k++) {
        unsigned n = unit_kinds[k].count(c, net != NULL);
        for (unsigned i = 0; i < n; i++)
            if (!(ch->units[s++] = unit_new(unit_kinds[k].ops, &ch->env, i, e)))
                goto out_fail;
    }
    ch->co = core_new(c, trace_path, ch->tr, ch->units, ch->nunits, net, chip_id, e);
    if (!ch->co)
        goto out_fail;
    ch->env.host = ch->co;
    core_start(ch->co);
    return ch;
out_fail:
    chip_free(ch);
    return NULL;
}

int chip_finish(chip *ch, err *e)
{
    return core_finish(ch->co, e);
}

int chip_done(const chip *ch)
{
    return core_done(ch->co);
}

void chip_register_stats(chip *ch, stats_reg *r)
{
    core_register_stats(ch->co, r);
    for (unsigned i = 0; i < ch->nunits; i++)
        if (ch->units[i])
            unit_register_stats(ch->units[i], r);
    hbm_register_stats(ch->hb, r);
}

void chip_summarize(const chip *ch, chip_summary *s)
{
    const core_region *t = core_total(ch->co);
    memset(s, 0, sizeof *s);
    s->end_ps = core_end_ps(ch->co);
    s->insns = t->insns;
    s->flops = t->flops;
    s->mxu_flops = t->mxu_flops;
    s->hbm_bytes = t->hbm_bytes;
    s->ici_bytes = t->ici_bytes;
    s->ici_busy_ps = core_ici_busy_ps(ch->co);
    s->ici_exposed_ps = core_ici_exposed_ps(ch->co);
}

const struct vmem *chip_vmem(const chip *ch)
{
    return ch->vm;
}

struct core *chip_core(const chip *ch)
{
    return ch->co;
}

const cfg *chip_cfg(const chip *ch)
{
    return ch->cfg;
}

const char *chip_trace_note(const chip *ch)
{
    return trace_reader_header(ch->tr)->note;
}

void chip_free(chip *ch)
{
    if (!ch)
        return;
    core_free(ch->co);
    for (unsigned i = 0; i < ch->nunits; i++)
        unit_free(ch->units[i]);
    free(ch->units);
    hbm_free(ch->hb);
    vmem_free(ch->vm);
    trace_reader_free(ch->tr);
    free(ch);
}

uint64_t chip_trace_count(const chip *ch)
{
    return trace_reader_count(ch->tr);
}
