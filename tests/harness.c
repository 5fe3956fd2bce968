/* harness.c - the shared test scaffolding (see harness.h). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "asm.h"
#include "hbm.h"
#include "kernel.h"
#include "stats.h"
#include "vmem.h"

void harness_pump(harness *h)
{
    while (h->next < h->n && unit_can_start(h->u, &h->in[h->next])) {
        h->start[h->next] = kern_now();
        unit_start(h->u, &h->in[h->next], h->next);
        h->next++;
    }
}

void harness_pump_event(void *ctx)
{
    harness_pump(ctx);
}

static void harness_done(void *ctx, unit *u, uint32_t token)
{
    harness *h = ctx;
    assert_ptr_equal(u, h->u);
    assert_true(token < h->n);
    assert_int_equal(h->done[token], 0);
    h->done[token] = kern_now();
    h->ndone++;
    harness_pump(h);
}

static void harness_wake(void *ctx, unit *u)
{
    harness *h = ctx;
    assert_ptr_equal(u, h->u);
    h->wakes++;
    harness_pump(h);
}

static void harness_wake_event(void *ctx)
{
    harness *h = ctx;
    harness_wake(h, h->u);
}

static void harness_wake_at(void *ctx, unit *u, uint64_t t_ps)
{
    harness *h = ctx;
    assert_ptr_equal(u, h->u);
    kern_notify_at(h->wake_ev, t_ps);
}

void harness_init(harness *h, const cfg *c, const unit_ops *ops, unsigned flags)
{
    memset(h, 0, sizeof *h);
    h->c = *c;
    kern_begin();
    h->env = (unit_env){
        .cfg = &h->c,
        .cycle_ps = cfg_cycle_ps(&h->c),
        .hbm = flags & HARNESS_HBM ? hbm_new(&h->c, NULL) : NULL,
        .vmem = vmem_new(&h->c, NULL),
        .host = h,
        .done = harness_done,
        .wake = harness_wake,
        .wake_at = harness_wake_at,
    };
    h->wake_ev = kern_event_new(harness_wake_event, h);
    assert_non_null(h->env.vmem);
    assert_true(!(flags & HARNESS_HBM) || h->env.hbm);
    err e;
    h->u = unit_new(ops, &h->env, 0, &e);
    if (!h->u)
        fail_msg("unit_new: %s", e.msg);
}

void harness_fini(harness *h)
{
    unit_free(h->u);
    kern_event_free(h->wake_ev);
    hbm_free(h->env.hbm);
    vmem_free(h->env.vmem);
}

harness *harness_new(const cfg *c, const unit_ops *ops, unsigned flags)
{
    harness *h = malloc(sizeof *h);
    assert_non_null(h);
    harness_init(h, c, ops, flags);
    return h;
}

void harness_free(harness *h)
{
    harness_fini(h);
    free(h);
}

isa_insn *harness_add(harness *h, unsigned op)
{
    assert_true(h->n < HARNESS_MAXI);
    isa_insn *in = &h->in[h->n++];
    memset(in, 0, sizeof *in);
    in->op = (uint16_t)op;
    return in;
}

void harness_run(harness *h)
{
    harness_pump(h);
    assert_int_equal(kern_run(KERN_FOREVER), 0);
    assert_int_equal(h->ndone, h->n);
    assert_int_equal(h->u->insns, h->n);
}

double harness_stat(harness *h, const char *name)
{
    stats_reg *r = stats_new(NULL);
    assert_non_null(r);
    unit_register_stats(h->u, r);
    const stats_entry *e = stats_find(r, h->u->name, name);
    assert_non_null(e);
    double v = stats_value(e);
    stats_free(r);
    return v;
}

static char harness_tmp[64];

int harness_dir_setup(void **state)
{
    (void)state;
    snprintf(harness_tmp, sizeof harness_tmp, "/tmp/tpusim_test_XXXXXX");
    return mkdtemp(harness_tmp) ? 0 : -1;
}

int harness_dir_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", harness_tmp);
    return system(cmd);
}

const char *harness_dir(void)
{
    return harness_tmp;
}

const char *harness_path(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", harness_tmp, name);
    return buf;
}

void harness_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

char *harness_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return p;
}

int harness_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

const char *harness_assemble(const char *name, const char *text, char *out, size_t cap)
{
    char src[256];
    snprintf(src, sizeof src, "%s/%s.s", harness_tmp, name);
    snprintf(out, cap, "%s/%s.tpt", harness_tmp, name);
    harness_write(src, text);
    err e;
    if (asm_file(src, out, &e))
        fail_msg("asm: %s", e.msg);
    return out;
}

void harness_observe(void *ctx, uint64_t idx, unsigned op, const unit *u, uint64_t start,
                     uint64_t end, unsigned region, uint64_t bytes)
{
    (void)op, (void)u, (void)region, (void)bytes;
    harness_obs *l = ctx;
    if (l->n < HARNESS_OBS_MAX) {
        l->idx[l->n] = idx;
        l->start[l->n] = start;
        l->end[l->n] = end;
        l->n++;
    }
}
