/* sim.c - build, run and tear down a single-chip simulation. */
#define _POSIX_C_SOURCE 200809L
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ici.h"
#include "kernel.h"

int sim_load_cfg(cfg *c, const char *config_path, const char **overrides, unsigned n, err *e)
{
    if (config_path) {
        if (cfg_load(c, config_path, NULL, e))
            return -1;
    } else {
        cfg_defaults(c);
    }
    for (unsigned i = 0; i < n; i++) {
        char key[128];
        const char *eq = strchr(overrides[i], '=');
        if (!eq || eq == overrides[i] || (size_t)(eq - overrides[i]) >= sizeof key)
            return err_set(e, "-p %s: expected key=value", overrides[i]);
        memcpy(key, overrides[i], (size_t)(eq - overrides[i]));
        key[eq - overrides[i]] = 0;
        if (cfg_set(c, key, eq + 1, "-p", e))
            return -1;
    }
    return cfg_check(c, e);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The energy probe and the limiter read the chip's counters (their addresses, through a
 * private registry); both observe every completion. */
static int sim_energy_begin(sim_run *s, err *e)
{
    stats_reg *r = stats_new(e);
    if (!r)
        return -1;
    chip_register_stats(s->chip, r);
    int rc = stats_check(r, e);
    if (!rc && (!(s->eprobe = energy_probe_new(&s->cfg, r, e)) ||
                !(s->emeter = energy_meter_new(&s->cfg, s->eprobe, e)) ||
                !(s->lim = limiter_new(&s->cfg, r, chip_vmem(s->chip), e))))
        rc = -1;
    stats_free(r);
    return rc;
}

static int sim_energy_end(sim_run *s, err *e)
{
    chip_summary sum;
    unsigned nreg;
    chip_summarize(s->chip, &sum);
    core_regions(chip_core(s->chip), &nreg);
    if (!(s->energy = calloc(1, sizeof *s->energy)))
        return err_setk(e, ERR_NOMEM, "out of memory");
    return energy_meter_result(s->emeter, sum.end_ps, (double)sum.flops, nreg,
                               chip_trace_note(s->chip), s->energy, e);
}

int sim_run_cfg(sim_run *s, const cfg *c, const char *trace_path, const sim_hooks *hooks, err *e)
{
    memset(s, 0, sizeof *s);
    s->cfg = *c;
    kern_begin();
    s->net = ici_net_new(&s->cfg, NULL, ICI_MODE_SYMMETRIC, e);
    if (!s->net)
        return -1;
    s->chip = chip_new(&s->cfg, 0, s->net, trace_path, e);
    if (!s->chip || chip_prefetch(s->chip, e))
        return -1;
    if (sim_energy_begin(s, e))
        return -1;
    if (hooks && hooks->observer)
        energy_meter_chain(s->emeter, hooks->observer, hooks->ctx);
    limiter_chain(s->lim, energy_meter_observe, s->emeter);
    core_set_observer(chip_core(s->chip), limiter_observe, s->lim);
    if (hooks && hooks->start)
        hooks->start(hooks->start_ctx, chip_trace_count(s->chip));
    double t0 = wall_now();
    kern_run(KERN_FOREVER);
    s->wall_s = wall_now() - t0;
    s->events = kern_event_count();
    if (kern_out_of_memory())
        return err_setk(e, ERR_NOMEM, "%s: out of memory during the replay", trace_path);
    if (chip_finish(s->chip, e))
        return -1;
    if (!(s->stats = stats_new(e)))
        return -1;
    chip_register_stats(s->chip, s->stats);
    ici_net_register_stats(s->net, s->stats);
    if (sim_energy_end(s, e) || limiter_finish(s->lim, core_end_ps(chip_core(s->chip)), e))
        return -1;
    energy_register_stats(s->energy, s->stats);
    return stats_check(s->stats, e);
}

int sim_run_trace(sim_run *s, const char *config_path, const char **overrides, unsigned noverrides,
                  const char *trace_path, const sim_hooks *hooks, err *e)
{
    cfg c;
    memset(s, 0, sizeof *s);
    if (sim_load_cfg(&c, config_path, overrides, noverrides, e))
        return -1;
    return sim_run_cfg(s, &c, trace_path, hooks, e);
}

void sim_run_fini(sim_run *s)
{
    stats_free(s->stats);
    if (s->energy)
        energy_result_fini(s->energy);
    free(s->energy);
    energy_meter_free(s->emeter);
    limiter_free(s->lim);
    energy_probe_free(s->eprobe);
    chip_free(s->chip);
    ici_net_free(s->net);
    memset(s, 0, sizeof *s);
}
