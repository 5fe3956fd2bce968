/* lower_mem.c - layout and HBM memory plan of a workload IR, as a compiler's buffer
 * assignment does it (XLA's BufferAssignment with heap simulation):
 *
 * 1. Layout: every tensor without a pitch gets ir_pitch(cols): rows padded to an odd number
 *    of hbm.interleave_bytes granules, so that strided DMAs down a column of tiles rotate
 *    over every pseudo-channel instead of hitting the same few (docs/generators.md).
 * 2. Lifetimes: a root tensor lives from the first to the last op that uses it or any view
 *    of it; a buffer read or written by an async collective lives until the IR_WAIT on the
 *    collective's token (or the end); persistent tensors (parameters, caches, optimizer
 *    state) live throughout.
 * 3. Assignment: persistent tensors first, then at each op the tensors born there, largest
 *    first, each at the lowest 4 KiB-aligned address where it fits between the tensors still
 *    live (first fit); a tensor's space is free again after its last use.
 * The peak is the high-water mark of addresses (fragmentation included): the HBM a chip
 * needs. If it exceeds the chip's HBM the plan fails naming the largest live tensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "lower.h"
#include "umath.h"

#define MEM_ALIGN 4096

static int layout(ir *p, err *e)
{
    int nt = ir_ntensors(p);
    for (int i = 0; i < nt; i++) {
        ir_tensor *t = ir_tensor_at(p, i);
        if (!t->pitch)
            t->pitch = t->rows > 1 ? ir_pitch(p, t->cols, t->dt) : t->cols;
        if (t->pitch < t->cols)
            return err_set(e, "gen: tensor '%s': pitch %llu below its %llu columns (generator bug)",
                           t->name, (unsigned long long)t->pitch, (unsigned long long)t->cols);
        t->bytes = gen_dt_bytes(t->dt, (t->rows - 1) * t->pitch + t->cols);
        if (t->parent < 0)
            t->bytes = um_align_up(t->bytes, 64);
    }
    for (int i = 0; i < nt; i++) {
        const ir_tensor *t = ir_tensor_get(p, i);
        if (t->parent < 0)
            continue;
        const ir_tensor *r = ir_tensor_get(p, t->parent);
        if (t->offset > r->bytes || t->bytes > r->bytes - t->offset)
            return err_set(e,
                           "gen: view '%s' (%llu bytes at +%llu) outside '%s' (%llu bytes) "
                           "(generator bug)",
                           t->name, (unsigned long long)t->bytes, (unsigned long long)t->offset,
                           r->name, (unsigned long long)r->bytes);
    }
    return 0;
}

static void touch(ir *p, int id, int at)
{
    ir_tensor *t = ir_tensor_at(p, ir_root(p, id));
    if (t->first < 0 || at < t->first)
        t->first = at;
    if (at > t->last)
        t->last = at;
}

static int lifetimes(ir *p, err *e)
{
    int nt = ir_ntensors(p), nop = ir_nops(p), ntok = ir_ntokens(p);
    for (int i = 0; i < nt; i++)
        ir_tensor_at(p, i)->first = ir_tensor_at(p, i)->last = -1;
    /* pending[t]: first op index since token t's last wait (async buffers live to the wait) */
    int *pending = malloc((size_t)(ntok + 1) * sizeof *pending);
    if (!pending)
        return err_setk(e, ERR_NOMEM, "gen: out of memory");
    for (int t = 0; t <= ntok; t++)
        pending[t] = -1;
    for (int i = 0; i < nop; i++) {
        const ir_op *o = ir_op_get(p, i);
        for (unsigned j = 0; j < o->nin; j++)
            touch(p, o->in[j], i);
        for (unsigned j = 0; j < o->nout; j++)
            touch(p, o->out[j], i);
        if (o->code == IR_COLLECTIVE || o->code == IR_SEND || o->code == IR_RECV ||
            (o->code == IR_DUS && o->token >= 0)) {
            if (pending[o->token] < 0)
                pending[o->token] = i;
        } else if (o->code == IR_WAIT && pending[o->token] >= 0) {
            for (int k = pending[o->token]; k < i; k++) {
                const ir_op *c = ir_op_get(p, k);
                if (c->token != o->token || c->code == IR_WAIT || c->code >= IR_OPCODE_COUNT ||
                    (c->code != IR_COLLECTIVE && c->code != IR_SEND && c->code != IR_RECV &&
                     c->code != IR_DUS))
                    continue;
                for (unsigned j = 0; j < c->nin; j++)
                    touch(p, c->in[j], i);
                for (unsigned j = 0; j < c->nout; j++)
                    touch(p, c->out[j], i);
            }
            pending[o->token] = -1;
        }
    }
    for (int t = 0; t <= ntok; t++) {
        if (pending[t] < 0)
            continue;
        for (int k = pending[t]; k < nop; k++) {
            const ir_op *c = ir_op_get(p, k);
            if (c->token == t && (c->code == IR_COLLECTIVE || c->code == IR_SEND ||
                                  c->code == IR_RECV || c->code == IR_DUS)) {
                for (unsigned j = 0; j < c->nin; j++)
                    touch(p, c->in[j], nop);
                for (unsigned j = 0; j < c->nout; j++)
                    touch(p, c->out[j], nop);
            }
        }
    }
    free(pending);
    for (int i = 0; i < nt; i++) {
        ir_tensor *t = ir_tensor_at(p, i);
        if (t->parent < 0 && t->persistent) {
            t->first = -1;
            t->last = nop;
        }
    }
    return 0;
}

typedef struct live {
    uint64_t lo, hi;
    int id;
} live;

/* Allocation order: birth (persistent first), then size descending, then id. */
typedef struct birth {
    int first;
    uint64_t bytes;
    int id;
} birth;

static int by_birth(const void *a, const void *b)
{
    const birth *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    return x->id - y->id;
}

static int is_live_root(const ir_tensor *t)
{
    return t->parent < 0 && (t->persistent || t->first >= 0);
}

static int assign(ir *p, uint64_t hbm_bytes, err *e)
{
    int nt = ir_ntensors(p), n = 0;
    ir_mem_plan *mp = ir_mem(p);
    memset(mp, 0, sizeof *mp);
    mp->peak_op = -1;
    for (int i = 0; i < 3; i++)
        mp->top[i] = -1;
    birth *bs = malloc((size_t)(nt ? nt : 1) * sizeof *bs);
    int *ids = malloc((size_t)(nt ? nt : 1) * sizeof *ids);
    live *lv = malloc((size_t)(nt ? nt : 1) * sizeof *lv);
    if (!bs || !ids || !lv) {
        free(bs);
        free(ids);
        free(lv);
        return err_setk(e, ERR_NOMEM, "gen: out of memory");
    }
    for (int i = 0; i < nt; i++) {
        const ir_tensor *t = ir_tensor_get(p, i);
        if (is_live_root(t))
            bs[n++] = (birth){t->persistent ? -1 : t->first, t->bytes, i};
    }
    qsort(bs, (size_t)n, sizeof *bs, by_birth);
    for (int k = 0; k < n; k++)
        ids[k] = bs[k].id;
    free(bs);
    int nlive = 0;
    uint64_t live_sum = 0;
    for (int k = 0; k < n; k++) {
        ir_tensor *t = ir_tensor_at(p, ids[k]);
        int birth = t->persistent ? -1 : t->first;
        /* Free what died before this birth. */
        for (int j = 0; j < nlive;) {
            const ir_tensor *d = ir_tensor_get(p, lv[j].id);
            if (d->last < birth) {
                live_sum -= lv[j].hi - lv[j].lo;
                memmove(lv + j, lv + j + 1, (size_t)(nlive - j - 1) * sizeof *lv);
                nlive--;
            } else {
                j++;
            }
        }
        uint64_t size = um_align_up(t->bytes, MEM_ALIGN), at = 0;
        int pos = 0;
        for (; pos < nlive; pos++) { /* lv sorted by address */
            if (lv[pos].lo >= at + size)
                break;
            if (lv[pos].hi > at)
                at = lv[pos].hi;
        }
        memmove(lv + pos + 1, lv + pos, (size_t)(nlive - pos) * sizeof *lv);
        lv[pos] = (live){at, at + size, ids[k]};
        nlive++;
        t->addr = at;
        live_sum += size;
        mp->naive_bytes += size;
        if (t->persistent)
            mp->persistent_bytes += size;
        if (at + size > mp->peak_bytes)
            mp->peak_bytes = at + size;
        if (live_sum > mp->live_peak_bytes) {
            mp->live_peak_bytes = live_sum;
            mp->peak_op = birth;
        }
    }
    /* The largest tensors live at the peak op. */
    for (int k = 0; k < n; k++) {
        const ir_tensor *t = ir_tensor_get(p, ids[k]);
        int b = t->persistent ? -1 : t->first;
        if (b > mp->peak_op || t->last < mp->peak_op)
            continue;
        for (int s = 0; s < 3; s++) {
            if (mp->top[s] < 0 || t->bytes > ir_tensor_get(p, mp->top[s])->bytes) {
                for (int r = 2; r > s; r--)
                    mp->top[r] = mp->top[r - 1];
                mp->top[s] = ids[k];
                break;
            }
        }
    }
    free(ids);
    free(lv);
    if (mp->peak_bytes > hbm_bytes) {
        char top[3][96] = {"", "", ""};
        for (int s = 0; s < 3; s++)
            if (mp->top[s] >= 0) {
                const ir_tensor *t = ir_tensor_get(p, mp->top[s]);
                snprintf(top[s], sizeof top[s], "%s%s %.2f GiB", s ? ", " : "", t->name,
                         (double)t->bytes / (1u << 30));
            }
        const ir_op *o = ir_op_get(p, mp->peak_op);
        return err_set(e,
                       "gen: the workload needs %.2f GiB of HBM per device, more than the device's "
                       "%.2f GiB; at the peak (%s) the largest live tensors are %s%s%s; shard it "
                       "(--tensor-parallel, --fsdp) or shrink it",
                       (double)mp->peak_bytes / (1u << 30), (double)hbm_bytes / (1u << 30),
                       o ? o->region : "start", top[0], top[1], top[2]);
    }
    return 0;
}

int lower_mem(ir *p, uint64_t hbm_bytes, err *e)
{
    if (ir_verify(p, e) || layout(p, e) || lifetimes(p, e))
        return -1;
    return assign(p, hbm_bytes, e);
}
