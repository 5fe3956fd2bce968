/* serve_model.c - the model a slice serves (a dense preset from configs/models) and the HBM
 * budget of one chip: weights, step activations, and what is left for the paged KV cache.
 * This is the analytic estimate (docs/serving.md, "KV capacity"): the step's live tensors at
 * the widest point of a layer plus fp32 logits. The command replaces weights and activations
 * by the generator's memory plan (serve_steps_memory) where it can make one. */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models.h"

int serve_model_preset(serve_model *m, const char *name, err *e)
{
    memset(m, 0, sizeof *m);
    model_preset *p = model_find_new(name, NULL, "serve", e);
    if (!p)
        return -1;
    int rc = -1;
    const model_dims *d = &p->dims;
    if (d->experts) {
        err_set(e, "serve: --model %s: mixture-of-experts presets are not served yet (dense only)",
                p->name);
        goto out;
    }
    if (!d->layers || !d->d_model || !d->heads || !d->d_ff || !d->vocab) {
        err_set(e, "%s: serve needs layers, d-model, heads, d-ff and vocab", p->path);
        goto out;
    }
    snprintf(m->name, sizeof m->name, "%s", p->name);
    m->layers = d->layers;
    m->d_model = d->d_model;
    m->heads = d->heads;
    m->kv_heads = d->kv_heads ? d->kv_heads : d->heads;
    m->head_dim = d->head_dim ? d->head_dim : d->d_model / d->heads;
    m->d_ff = d->d_ff;
    m->vocab = d->vocab;
    double active;
    model_params(p, &m->params, &active);
    rc = 0;
out:
    free(p);
    return rc;
}

static double dt_bytes(isa_dtype dt)
{
    return isa_dtype_bits(dt) / 8.0;
}

double serve_kv_bytes_per_token(const serve_model *m, unsigned tp, isa_dtype kv_dt)
{
    double kv_local = (double)m->kv_heads / tp;
    if (kv_local < 1)
        kv_local = 1; /* fewer kv heads than chips: replicated */
    return 2.0 * (double)m->layers * kv_local * (double)m->head_dim * dt_bytes(kv_dt);
}

void serve_memory_plan(serve_memory *mem, const serve_model *m, const cfg *c, unsigned tp,
                       isa_dtype w_dt, isa_dtype kv_dt, uint64_t step_tokens, unsigned max_batch)
{
    memset(mem, 0, sizeof *mem);
    double wb = dt_bytes(w_dt);
    mem->hbm = (double)cfg_hbm_bytes(c);
    mem->weights = m->params * wb / tp;
    /* live at the widest point of a layer: residual stream, normed input, attention output and
     * MLP output (4 d_model), gate/up and activation (3 d_ff / tp), and q, k, v */
    double per_tok = 4.0 * (double)m->d_model + 3.0 * (double)m->d_ff / tp +
                     (double)(m->heads + 2 * m->kv_heads) * (double)m->head_dim / tp;
    mem->activations =
        (double)step_tokens * per_tok * wb + (double)max_batch * (double)m->vocab / tp * 4.0;
    mem->kv = mem->hbm - mem->weights - mem->activations;
    mem->kv_per_token = serve_kv_bytes_per_token(m, tp, kv_dt);
    mem->kv_tokens = mem->kv > 0 ? (uint64_t)(mem->kv / mem->kv_per_token) : 0;
}
