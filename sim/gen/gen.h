/* gen.h - workload trace generators (`tpusim gen KIND`): GEMM, elementwise, conv2d, MLP,
 * attention, transformer block and whole-LLM training/decode steps, compiled as the SPMD
 * program of one chip for a given config: a frontend builds the workload IR (ir.h), the
 * lowering (lower.h) plans and emits it; instructions stream to the trace writer as they
 * are emitted (only the IR, a few tensors and ops per layer, is held in memory). See
 * docs/generators.md.
 *
 * The first half is the public interface (kinds, options, running, FLOP accounting); the
 * second half is shared inside the gen library only: the emission kernels of gen_emit.c that
 * lower_emit.c drives, and the frontends. The command line (argv, --help) is
 * sim/cli/cli_gen.c. */
#ifndef TPU_GEN_H
#define TPU_GEN_H

#include <stdint.h>

#include "err.h"
#include "isa.h"
#include "trace.h"
#include "config.h"
#include "ir.h"

/* Workload kinds. */
typedef enum gen_kind {
    GEN_GEMM,
    GEN_ELEMENTWISE,
    GEN_CONV2D,
    GEN_MLP,
    GEN_ATTENTION,
    GEN_TRANSFORMER,
    GEN_LLM_STEP,
    GEN_EMBEDDING,
    GEN_KIND_COUNT
} gen_kind;

#define GEN_MAX_LAYERS 64 /* mlp --layers entries */

/* Decoder MLP: SwiGLU (gate, up, down: three matrices) or GELU (up, down). */
typedef enum gen_mlp { GEN_MLP_SWIGLU, GEN_MLP_GELU } gen_mlp;

/* Rematerialisation policy of a training step (which forward activations the backward
 * reads from HBM, the rest recomputed in the backward; docs/generators.md): none saves
 * everything; full saves only each layer's input and recomputes the layer's forward;
 * minimal saves the outputs of dots without batch dimensions (the projections: JAX's
 * checkpoint_dots_with_no_batch_dims) and recomputes the elementwise parts (norms,
 * activation function) and attention, whose dots have batch dimensions; save-dots saves
 * the dot outputs outside the MLP (Q|K|V, attention output, output projection) and
 * recomputes the MLP's up projection too. */
typedef enum gen_remat {
    GEN_REMAT_NONE,
    GEN_REMAT_FULL,
    GEN_REMAT_MINIMAL,
    GEN_REMAT_SAVE_DOTS,
    GEN_REMAT_COUNT
} gen_remat;

/* Options of every kind (fields a kind does not use stay at their defaults). Start from
 * gen_opts_init; a parallel degree or axis mask left at 0 means "not given" and gen_check
 * resolves it (degree 1, or --chips over every axis; dp x, tp y, fsdp z, sp x). */
typedef struct gen_opts {
    gen_kind kind;
    const char *output; /* trace to write */
    isa_dtype dtype;
    /* gemm */
    uint64_t m, n, k;
    /* elementwise */
    int vop; /* isa opcode of the vector op */
    uint64_t elements;
    /* conv2d */
    uint64_t height, width, in_ch, out_ch, kh, kw, stride, padding;
    /* mlp */
    uint64_t sizes[GEN_MAX_LAYERS];
    unsigned nsizes;
    /* attention, transformer, llm-step (batch is global for llm-step and transformer) */
    uint64_t batch, heads, seq, head_dim, d_model, d_ff, vocab, layers;
    uint64_t kv_heads; /* key/value heads (grouped-query attention); 0: --heads */
    int causal, training, decode;
    /* decoder structure: MLP kind, parallel attention + MLP block (both read one normalised
     * input, outputs summed), LM head tied to the embedding table, biases on the projections,
     * rematerialisation policy (training) */
    int mlp, parallel_block, tied_embedding, bias, remat;
    /* tensor parallelism: forward row-parallel GEMMs decomposed into row blocks whose
     * all-reduces overlap the next block (collective matmul; 0: one GEMM, then its
     * all-reduce, as XLA compiles it without windowed einsum) */
    int collective_matmul;
    /* parallelism: degrees and torus-axis masks (x=1, y=2, z=4); sp is sequence parallelism
     * (the sequence split across chips, attention re-sharded by heads through all-to-alls) */
    uint64_t chips, dp, tp, fsdp, sp;
    unsigned dp_axes, tp_axes, fsdp_axes, sp_axes;
    /* slices joined over the data-centre network, data parallel across them: the config's
     * dcn.slices, which gen_check copies here (a value given here must equal it). The batch is
     * split over them too; chips, the degrees and the axes are those of one slice. */
    uint64_t slices;
    /* embedding (with batch, chips, training, dtype) */
    uint64_t tables, rows, dim, lookups;
    /* mixture of experts (decoder kinds; gen_moe.c): experts per MoE layer (0: dense model),
     * experts per token, capacity factor (0: 1.0), expert-parallel degree and axes (0: 1 and
     * the dp axes), every moe_every-th layer after the first first_dense is MoE, expert MLP
     * width (0: d_ff), shared experts every token runs */
    uint64_t experts, top_k, ep, moe_every, expert_d_ff, shared_experts, first_dense;
    double capacity;
    unsigned ep_axes;
    /* pipeline parallelism (llm-step training, gen_pipeline.c): P stages of layers/P layers
     * on the torus axis pp_axes (one axis of exactly P chips), M microbatches per step in
     * the order of `schedule` (gen_sched); `stage` is the stage being built (gen_run writes
     * one trace per stage) */
    uint64_t pipeline, microbatches;
    int schedule;
    unsigned pp_axes, stage;
} gen_opts;

/* Pipeline schedules: GPipe (every microbatch's forward, then every backward) and 1F1B
 * (PipeDream-Flush: P - stage - 1 warm-up forwards, then one forward and one backward
 * alternately, then the remaining backwards). */
typedef enum gen_sched { GEN_SCHED_GPIPE, GEN_SCHED_1F1B, GEN_SCHED_COUNT } gen_sched;
#define GEN_MAX_STAGES 64

/* Kind names ("gemm", "llm-step", ...): the name of k (NULL if out of range), and the kind
 * called `name` (-1 if none). */
const char *gen_kind_name(gen_kind k);
int gen_kind_lookup(const char *name);

/* Defaults for `kind`: bf16, stride 1, padding 0, everything else 0 / not given. */
void gen_opts_init(gen_opts *o, gen_kind kind);

/* Check o against c (datatype supported by the MXU, shapes consistent, parallel degrees
 * placeable on ici.dims) and resolve derived fields in place (kernel width, head_dim, layers,
 * parallel defaults). Idempotent. Returns 0, or -1 with e filled (ERR_INPUT). */
int gen_check(gen_opts *o, const cfg *c, err *e);

/* What gen_run planned (see lower.h): the per-chip HBM footprint of the memory plan. */
typedef struct gen_result {
    uint64_t peak_hbm_bytes;   /* high-water mark of the HBM plan */
    uint64_t persistent_bytes; /* parameters, caches, optimizer state, program inputs */
    uint64_t naive_hbm_bytes;  /* every tensor its own buffer (no reuse) */
    uint64_t ops, tensors;     /* IR size */
    /* pipeline (--pipeline P > 1): each stage's peak (peak_hbm_bytes is the largest), and
     * the analytic bubble (P-1)/(M+P-1) */
    unsigned stages;
    uint64_t stage_peak[GEN_MAX_STAGES];
    double bubble;
} gen_result;

/* Generate o's trace for c into o->output (written atomically): frontend -> IR -> lowering
 * (lower.h). `note` (the CLI passes the generating command line) is stored in the trace
 * header followed by " # peak HBM per chip: N bytes". Checks a copy of o with gen_check
 * first. Fills *res if not NULL. Returns 0, or -1 with e filled. */
int gen_run_result(const gen_opts *o, const cfg *c, const char *note, gen_result *res, err *e);
int gen_run(const gen_opts *o, const cfg *c, const char *note, err *e);

/* Analytic FLOP count of the workload for one chip (see docs/generators.md for exactly which
 * FLOPs are counted); it depends on c only through the attention query-block size. */
uint64_t gen_flops_analytic(const gen_opts *o, const cfg *c);

/* Model FLOPs of one chip's share of the step, the numerator of MFU: 2 x matmul parameters x
 * tokens forward (x 3 with the backward) plus attention's QK^T and PV forward (x 3 with the
 * backward), with the unpadded vocabulary and nothing recomputed (neither rematerialisation
 * nor flash attention's QK^T in the backward). gen_flops_analytic is what the trace executes
 * (HFU's numerator). 0 for kinds other than transformer and llm-step. */
uint64_t gen_flops_model(const gen_opts *o, const cfg *c);

/* Slices the batch is split over (gen_opts.slices, 1 when not resolved). */
uint64_t gen_slices(const gen_opts *o);

/* Vocabulary rows per tensor-parallel shard: vocab / T rounded up (the table is padded to a
 * multiple of T, as Megatron and MaxText pad it). */
uint64_t gen_vocab_shard(const gen_opts *o);

/* Key/value heads per tensor-parallel shard: kv_heads / T, or 1 when T is a multiple of
 * kv_heads (each kv head replicated T / kv_heads times, as Megatron does for multi-query
 * attention). */
uint64_t gen_kv_shard(const gen_opts *o);

/* Name of a rematerialisation policy ("none", "full", ...), and the policy called `name`
 * (-1 if none). */
const char *gen_remat_name(int r);
int gen_remat_lookup(const char *name);

/* Pipeline schedules by name ("gpipe", "1f1b"; -1 if none) and the name of one. */
int gen_sched_lookup(const char *name);
const char *gen_sched_name(int s);

/* Analytic bubble of a P-stage, M-microbatch schedule with equal stages and free transfers:
 * (P-1)/(M+P-1), for GPipe and 1F1B alike (1F1B only lowers the activation memory). */
double gen_pipeline_bubble(const gen_opts *o);

/* Sum of 2 m k n over the trace's mxu.matmul instructions, k and n from the latest mxu.ldw
 * on that MXU. Returns 0 and fills *flops, or -1 with e filled. */
int gen_trace_flops(const char *path, uint64_t *flops, err *e);

/* ---------------------------------------------------------------------------------------
 * Internal: shared by gen.c, gen_emit.c and gen_models.c.
 * --------------------------------------------------------------------------------------- */

/* Semaphores 0..GEN_SEM_FIXED-1 are dedicated in-order producer/consumer chains (both ends
 * are in-order unit queues, so counts pair up in order); the rest is a pool of fences. */
#define GEN_SEM_FIXED 64

/* A fence: a pooled semaphore and the number of signals attached to it so far. Waiting on it
 * emits that many sync.wait and returns the semaphore to the pool. */
typedef struct gen_fence {
    int sem; /* -1: none */
    unsigned count;
} gen_fence;

typedef struct gen gen; /* emission context: writer, config, allocators, semaphore pool */

/* Emission context lifecycle; gen_free aborts the trace (close it with gen_finish). */
gen *gen_new(const cfg *c, const char *path, const char *note, err *e);
int gen_finish(gen *g, err *e); /* drains, closes the trace; frees g in every case */
void gen_free(gen *g);
err *gen_err(gen *g);
const cfg *gen_cfg(const gen *g);

/* Emitting (each returns 0 or -1 with the error kept in g). */
int gen_put(gen *g, const isa_insn *in);
int gen_mark(gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
gen_fence gen_fence_new(gen *g);
unsigned gen_fence_sig(gen *g, gen_fence *f); /* signal value (sem+1) for one more producer */
int gen_fence_wait(gen *g, gen_fence *f);     /* sync.wait x count; releases the semaphore */
int gen_dma(gen *g, int to_hbm, uint64_t hbm, uint64_t vmem, uint64_t bytes, uint64_t block,
            uint64_t stride, unsigned wait, unsigned signal);
int gen_vec(gen *g, int op, uint64_t src, uint64_t dst, uint64_t n, isa_dtype dt, uint64_t extra,
            unsigned wait, unsigned signal);
/* One collective instruction (ICI over `axes`, or dcn.allreduce, which ignores them) signalling
 * f (NULL: the late fence). `chain`: GEN_CHAIN_IN waits for the previous GEN_CHAIN_OUT
 * collective of the other queue (ICI <-> DCN), GEN_CHAIN_OUT signals the chain instead of f
 * (ir_chain: producers and consumers pair up in program order). */
enum { GEN_CHAIN_IN = 1, GEN_CHAIN_OUT = 2 };
int gen_coll(gen *g, int op, unsigned axes, uint64_t bytes, isa_dtype dt, gen_fence *f);
int gen_coll_chained(gen *g, int op, unsigned axes, uint64_t bytes, isa_dtype dt, gen_fence *f,
                     unsigned chain);
/* A collective that uses the chip: its HBM reads and writes through the DMA unit and its
 * reduction adds on the vector unit, issued alongside the collective instruction (see
 * gen_emit.c); p is the number of chips it reduces over (on `axes`, or the slices). The HBM
 * traffic goes to the buffer set with gen_coll_buffer (addresses wrap inside span bytes).
 * `chain` applies to the collective instruction (gen_coll_chained). */
int gen_coll_chip(gen *g, int op, unsigned axes, uint64_t bytes, isa_dtype dt, uint64_t p,
                  gen_fence *f, unsigned chain);
void gen_coll_buffer(gen *g, uint64_t hbm, uint64_t span);
/* One hop of a collective routed point to point: `bytes` to the neighbour along `axes` (one
 * axis) in direction dir (+1 or -1), received from the other side. */
typedef struct gen_hop {
    int dir;
    uint64_t bytes;
} gen_hop;
/* A collective routed point to point (docs/hlo.md): the chip work of gen_coll_chip for op
 * over p chips (chip: 1 when it has an HBM buffer, gen_coll_buffer), around the hops in
 * order, each an ici.send and an ici.recv (a ring shift). Store and forward: every send after
 * the first waits for the previous hop's recv (a dedicated semaphore on the ICI queue, which
 * does not stall dispatch); the last recv signals f (NULL: the late fence). */
int gen_coll_routed(gen *g, int op, unsigned axes, const gen_hop *hops, size_t nhops,
                    uint64_t bytes, isa_dtype dt, uint64_t p, int chip, gen_fence *f);
/* Wait for every outstanding DMA write and collective (end of an operator). */
int gen_drain(gen *g);

/* Per-chip HBM bump allocator (4 KiB aligned); fails when the chip's HBM is exhausted. Only
 * for kinds that still emit directly (a `run` row in the kind table); IR kinds get their
 * addresses from the memory plan (lower_mem.c). */
int gen_hbm_alloc(gen *g, uint64_t bytes, uint64_t *addr);
/* VMEM bump allocator for the current operator; gen_vmem_reset frees everything. */
int gen_vmem_alloc(gen *g, uint64_t bytes, uint64_t *addr);
void gen_vmem_reset(gen *g);
uint64_t gen_vmem_free_bytes(const gen *g);

uint64_t gen_dt_bytes(isa_dtype dt, uint64_t n);
/* Row pitch (elements) of a 2-D HBM tensor with `cols` columns: when successive rows would
 * start on fewer than 16 pseudo-channels, padded to an odd number of HBM interleave granules
 * (as a compiler pads leading dimensions), so that strided DMAs down a column of tiles rotate
 * over every pseudo-channel. */
uint64_t gen_pitch(const cfg *c, uint64_t cols, isa_dtype dt);

/* C[M,N] (+)= A[M,K] B[K,N], operands in HBM, rows lda/ldb/ldc elements apart. A and B are
 * dtype `dt`; C is written as `out_dt` (fp32: the accumulator itself; else a v.cast). */
typedef struct gen_gemm_args {
    uint64_t m, n, k;
    uint64_t a, b, c;       /* HBM addresses */
    uint64_t lda, ldb, ldc; /* 0: gen_pitch of k, n, n */
    isa_dtype dt, out_dt;
    const ir_gemm_tile *tile; /* NULL: gen_gemm_plan_for */
    /* fused epilogue on each finished fp32 block before the cast and write-back: vector ops
     * in place on the accumulator (buffer index 0), reading the block's tile of `ex` (index
     * 1, rows ldx elements apart, dtype ex_dt) when has_ex */
    const ir_vop *epi;
    unsigned nepi;
    int has_ex;
    uint64_t ex, ldx;
    isa_dtype ex_dt;
    uint64_t a_span; /* implicit GEMM (tile->a_implicit): bytes of the input A reads from */
} gen_gemm_args;
int gen_gemm(gen *g, const gen_gemm_args *a);

/* Tiling chosen for a GEMM (exposed for tests and docs). */
typedef ir_gemm_tile gen_gemm_plan;
int gen_gemm_plan_for(const cfg *c, uint64_t vmem, uint64_t m, uint64_t n, uint64_t k, isa_dtype dt,
                      isa_dtype out_dt, gen_gemm_plan *p, err *e);

/* Streamed vector pass over `n` elements: nin input tensors and nout output tensors in HBM
 * (each of n elements of its dtype), and a list of vector ops applied per chunk. Ops read
 * chunk buffer `src` and write `dst` (indices into inputs then outputs then a scratch
 * buffer); binary ops read their second operand right after the first (see docs). */
typedef ir_vop gen_vop;
typedef struct gen_stream_args {
    uint64_t n;
    unsigned nin, nout;
    uint64_t in[6], out[6];
    isa_dtype in_dt[6], out_dt[6];
    const gen_vop *ops;
    unsigned nops;
} gen_stream_args;
int gen_stream(gen *g, const gen_stream_args *s);
/* Copy `bytes` from HBM src to HBM dst through VMEM in chunks, the source read as blocks of
 * `block` bytes `stride` apart (gathers: embedding rows, im2col patches). */
int gen_gather(gen *g, uint64_t src, uint64_t src_bytes, uint64_t dst, uint64_t bytes,
               uint64_t block, uint64_t stride);
/* Copy `bytes` from HBM src to HBM dst through VMEM: the source read as blocks of sblock
 * bytes sstride apart, the destination written as blocks of dblock bytes dstride apart (0:
 * contiguous). A dynamic-update-slice (a KV cache's new token) is one. */
int gen_copy2d(gen *g, uint64_t src, uint64_t sblock, uint64_t sstride, uint64_t dst,
               uint64_t dblock, uint64_t dstride, uint64_t bytes);
/* The same with the writes left in flight, signalling `done` (NULL: the emitter's late
 * fence), when the copy fits one VMEM chunk; else as gen_copy2d. */
int gen_copy2d_async(gen *g, uint64_t src, uint64_t sblock, uint64_t sstride, uint64_t dst,
                     uint64_t dblock, uint64_t dstride, uint64_t bytes, gen_fence *done);
/* Wait for the collectives issued without a fence (gradient reductions). */
int gen_wait_late(gen *g);

/* Attention on lanes of MXUs: items of (batch, head, query block). Tensors are in HBM laid
 * out [batch][seq][heads][head_dim]: q, o, dout, dq with rows `ld` elements apart, k, v, dk,
 * dv (kv_len rows per batch) with rows `kv_ld` apart. Forward reads q k v and writes o;
 * backward reads q k v o dout and writes dq dk dv. */
typedef struct gen_attn_args {
    uint64_t batch, heads, seq, head_dim, kv_len; /* kv_len: keys per sequence */
    uint64_t kv_heads;                            /* 0: heads (grouped-query: fewer) */
    int kv_head_major; /* k, v: one row per (batch, kv head) of kv_len x head_dim elements,
                        * rows kv_ld apart (a KV cache) */
    uint64_t q, k, v, o, dout, dq, dk, dv, ld, kv_ld;
    int causal, backward;
    isa_dtype dt;
} gen_attn_args;
int gen_attention(gen *g, const gen_attn_args *a);
/* Query rows per item the attention tiler picks (analytic causal counts use it). */
uint64_t gen_attn_block(const cfg *c, uint64_t seq, uint64_t kv_len, uint64_t head_dim,
                        isa_dtype dt, int backward);
/* MXU FLOPs gen_attention emits for one (batch, head), forward or backward. */
uint64_t gen_attn_flops(const cfg *c, uint64_t seq, uint64_t kv_len, uint64_t head_dim, int causal,
                        isa_dtype dt, int backward);

/* The forward activations of a decoder layer the backward reads (bit i = gen_act i), and the
 * subset a rematerialisation policy saves; the rest is recomputed from the layer input in the
 * backward (gen_models.c builds it, gen.c counts its FLOPs). */
enum gen_act {
    GEN_ACT_XN,  /* normalised input */
    GEN_ACT_QKV, /* fused Q|K|V projection output */
    GEN_ACT_AO,  /* attention output */
    GEN_ACT_H,   /* residual after attention (serial block only) */
    GEN_ACT_HN,  /* its normalisation (serial block only) */
    GEN_ACT_UP,  /* MLP up (|gate) projection output */
    GEN_ACT_ACT, /* MLP activation output */
    GEN_ACT_COUNT
};
unsigned gen_acts_needed(const gen_opts *o);
unsigned gen_acts_saved(const gen_opts *o);

/* Frontends: each builds kind o->kind's workload IR into p (gen_frontends.c, gen_models.c).
 * Return 0, or -1 with the error kept in p (ir_error). */
int gen_fe_gemm(ir *p, const gen_opts *o);
int gen_fe_elementwise(ir *p, const gen_opts *o);
int gen_fe_conv2d(ir *p, const gen_opts *o);
int gen_fe_mlp(ir *p, const gen_opts *o);
int gen_fe_attention(ir *p, const gen_opts *o);
int gen_fe_transformer(ir *p, const gen_opts *o);
int gen_fe_llm(ir *p, const gen_opts *o);
/* Mixture of experts (gen_moe.c). A layer is MoE when experts > 0, l >= first_dense and
 * (l - first_dense) % moe_every == moe_every - 1. Per chip with M tokens: each expert's
 * capacity is cap = ceil(ep M top_k C / E) tokens of the ep chips' group, this chip holds
 * E/ep experts, so its experts run R = E/ep x cap rows. */
typedef struct gen_moe_dims {
    uint64_t el, cap, rows; /* local experts, capacity per expert, R */
    uint64_t fe, uwe;       /* expert hidden width d_ff_e/T, up width (2 fe with SwiGLU) */
    uint64_t fs, uws;       /* shared experts' hidden width (shared x fe), up width */
} gen_moe_dims;
int gen_moe_is_layer(const gen_opts *o, uint64_t l);
uint64_t gen_moe_layers(const gen_opts *o);
void gen_moe_dims_of(const gen_opts *o, uint64_t tokens, gen_moe_dims *d);
/* Checks and defaults of the MoE options (called by the decoder kinds' checks). */
int gen_moe_check(gen_opts *o, const cfg *c, err *e);
/* Bytes per chip of one dispatch (or combine) all-to-all: R x d_model elements; 0 without
 * expert parallelism (every expert is local). */
uint64_t gen_moe_a2a_bytes(const gen_opts *o, uint64_t tokens);
/* Forward MXU FLOPs of one MoE layer's MLP part on one chip with `tokens` tokens: router
 * 2 M D E, routed experts 2 R (D uwe + fe D) as executed (capacity slots included) or, for
 * model FLOPs, 2 M top_k (D uwe + fe D) (the active experts only), shared experts
 * 2 M (D uws + fs D). The backward is twice the forward. */
uint64_t gen_moe_fwd_flops(const gen_opts *o, uint64_t tokens, int model);
/* Elements of one MoE layer's MLP weights (router, local experts, shared experts), padded
 * to the layout pitch of p (p NULL: unpadded). */
uint64_t gen_moe_weight_elems(ir *p, const gen_opts *o);
/* Building one MoE layer's MLP into the IR: w (g) is a view of the layer's MoE weights
 * (gradients; -1 forward only) of gen_moe_weight_elems elements. */
typedef struct gen_moe_ctx {
    ir *p;
    const gen_opts *o;
    isa_dtype dt;
    uint64_t M, D;
    unsigned layer;
    int w, g;
} gen_moe_ctx;
/* Forward activations the backward reads (tensor ids). */
typedef struct gen_moe_saved {
    int probs, xr, up, act, yr, sup, sact;
} gen_moe_saved;
/* out [M, D] = MoE(xn): router, top-k, dispatch all-to-all, experts, combine all-to-all,
 * weighted sum (+ shared experts); a partial sum under tensor parallelism. */
int gen_moe_fwd(const gen_moe_ctx *c, int xn, int out, gen_moe_saved *sv);
/* dxn [M, D] from dy [M, D]: the reverse, with the expert and router weight gradients. */
int gen_moe_bwd(const gen_moe_ctx *c, int xn, const gen_moe_saved *sv, int dy, int dxn);

/* Pipeline parallelism (gen_pipeline.c): option checks (called by the llm-step check after
 * the other parallel degrees are resolved), the frontend of stage o->stage (the schedule over
 * the stage API below), and the per-stage generation loop: `one` generates one trace
 * (o->output already expanded); OUT names the traces with "{stage}" (one per stage) or
 * "{chip}" (one per chip of ici.dims, the chip's stage its coordinate on the pipeline axis). */
int gen_pipeline_check(gen_opts *o, const cfg *c, err *e);
int gen_fe_pipeline(ir *p, const gen_opts *o);
typedef int (*gen_one_fn)(const gen_opts *o, const cfg *c, const char *note, gen_result *res,
                          err *e);
int gen_pipeline_run(const gen_opts *o, const cfg *c, const char *note, gen_result *res,
                     gen_one_fn one, err *e);

/* One pipeline stage's part of the decoder model (gen_models.c): stage 0 holds the embedding,
 * stage P-1 the final norm, LM head and loss. fwd(mb) receives microbatch mb's activations
 * from the previous stage (or looks up its embeddings), runs the stage's layers and sends the
 * output on (or computes the loss); bwd(mb) receives the output gradient (or backpropagates
 * the loss), runs the layers' backward and sends the input gradient back. Weight gradients
 * accumulate over the microbatches and are reduced over the data axes once, in the last
 * microbatch's backward; finish waits for the sends and reductions and runs Adam. */
typedef struct gen_stage gen_stage;
gen_stage *gen_stage_new(ir *p, const gen_opts *o); /* NULL: error kept in p */
int gen_stage_fwd(gen_stage *s, unsigned mb);
int gen_stage_bwd(gen_stage *s, unsigned mb);
int gen_stage_finish(gen_stage *s);
void gen_stage_free(gen_stage *s);
/* Kinds that still emit instructions directly (no IR yet): embedding (gen_embedding.c). */
int gen_model_embedding(gen *g, const gen_opts *o);
/* What `gen embedding` emits for one chip, counted analytically (docs/generators.md). */
typedef struct gen_embedding_counts {
    uint64_t flops;     /* SparseCore reduce and scatter-add FLOPs */
    uint64_t hbm_bytes; /* SparseCore row reads/writes + DMA of the pooled vectors */
    uint64_t ici_bytes; /* all-to-all bytes per chip */
} gen_embedding_counts;
void gen_embedding_count(const gen_opts *o, gen_embedding_counts *n);

#endif
