/* models.h - model presets (configs/models/NAME.yaml) for `tpusim gen --model NAME`: published
 * LLM shapes (Llama, GPT-3, PaLM, Gemma, Mixtral, DeepSeek) as the ordered `gen` flags they
 * set, plus a name, aliases, family and sources. A preset is data only; which flags a kind
 * takes is the command line's business (sim/cli/cli_gen.c), so the loader knows the keys
 * and their value types but not the kinds. See configs/README.md for the file format.
 *
 * Lookup: a bare name is searched in the models/ subfolder of every preset directory
 * (cfg_preset_dir's path), first as NAME.yaml, then by name or alias (case-insensitive) in
 * every *.yaml there; a path to a readable file is loaded as is. */
#ifndef TPU_MODELS_H
#define TPU_MODELS_H

#include <limits.h>
#include <stdint.h>

#include "err.h"

#define MODEL_NAME_MAX    48
#define MODEL_ALIASES_MAX 8
#define MODEL_FLAGS_MAX   32
#define MODEL_SOURCE_MAX  256

/* One flag a preset sets: `key` is the gen option name without "--"; `value` its text (an
 * integer in decimal, "true"/"false" for booleans, or an enum word), `line` its line in the
 * file. */
typedef struct model_flag {
    char key[24];
    char value[24];
    unsigned line;
} model_flag;

/* The dimensions the parameter count reads (0 = not given; defaults are applied by
 * model_params, not stored). */
typedef struct model_dims {
    uint64_t layers, d_model, heads, kv_heads, head_dim, d_ff, vocab, seq;
    uint64_t experts, top_k, moe_every, expert_d_ff, shared_experts, first_dense;
    int gated, parallel_block, tied_embedding; /* gated: mlp swiglu */
} model_dims;

typedef struct model_preset {
    char name[MODEL_NAME_MAX];
    char family[MODEL_NAME_MAX];
    char source[MODEL_SOURCE_MAX]; /* the main source, short ("" when not given) */
    char aliases[MODEL_ALIASES_MAX][MODEL_NAME_MAX];
    unsigned naliases;
    double published_params, published_active; /* billions, 0 = not given */
    model_flag flags[MODEL_FLAGS_MAX];         /* flag keys in file order */
    unsigned nflags;
    model_dims dims;
    char path[PATH_MAX]; /* the file it was loaded from */
} model_preset;

/* Load and check one preset file into m. Errors (ERR_INPUT) name the file and line: not a
 * mapping, unknown key, bad value, duplicate key, missing name or required dimension, name
 * not equal to the file name without .yaml, inconsistent MoE or head keys. */
int model_load_file(model_preset *m, const char *path, err *e);

/* The preset called `name` (a name, an alias, or a path to a file) into m. `presets_dir` as
 * for cfg_load (NULL: the built-in search path). An unknown name is an error listing the
 * closest names, or every name when none is close. */
int model_find(model_preset *m, const char *name, const char *presets_dir, err *e);
/* The same into a new preset, which the caller frees with free(); NULL with e filled on an
 * error (out of memory: "WHO: out of memory"). */
model_preset *model_find_new(const char *name, const char *presets_dir, const char *who, err *e);

/* Every preset of the search path, sorted by name (a name found in an earlier directory
 * hides the same name later). On success *out is an array of *n presets the caller frees
 * with free(); *out is NULL when there are none. A file that does not load is an error. */
int model_list(const char *presets_dir, model_preset **out, unsigned *n, err *e);

/* Parameter counts from the dimensions (not the published figures): `total` every
 * parameter, `active` those one token uses (MoE: top-k and shared experts only; dense: the
 * total). Formula (docs/generators.md, "Model presets"), with hd = head-dim (default
 * d-model/heads), kv = kv-heads (default heads), f = d-ff:
 *   attention  d (heads hd) + 2 d (kv hd) + (heads hd) d        Q, K, V, O; no biases
 *   MLP(f)     3 d f gated (swiglu), 2 d f otherwise (gelu)
 *   norms      2 d per layer (1 d with a parallel block) + d final
 *   embedding  vocab d, twice when input and output embeddings are not tied
 *   MoE layer  attention + (experts + shared) MLP(expert-d-ff, default f) + d experts (router);
 *              (layers - first-dense) / moe-every of the layers are MoE layers. */
void model_params(const model_preset *m, double *total, double *active);

#endif
