/* ir.h - the workload IR between the generator frontends and the lowering: a DAG of tensor
 * ops in program order (a schedule), with shapes, dtypes and the tensors' lifetimes.
 *
 * Pipeline (docs/generators.md): a frontend (gen_frontends.c, gen_models.c) builds an ir;
 * lower_tile.c lowers ops the machine has no kernel for (conv2d -> an implicit GEMM) and
 * chooses each op's VMEM tiling; lower_mem.c lays tensors out (padded pitches) and plans
 * HBM from lifetimes (buffers reused once dead); lower_emit.c writes the trace. Each pass
 * reads the ir and writes it (or the trace) and can run alone on a hand-built ir.
 *
 * Tensors are 2-D in HBM: rows x cols elements, rows `pitch` elements apart (higher
 * dimensions fold into rows). A view is a window of another tensor (a layer's weights
 * inside the parameter region, the new token's row of a KV cache): it shares the root's
 * storage and keeps it alive. Async collectives signal a token; IR_WAIT waits for every
 * op that signalled it (XLA's all-reduce-start / all-reduce-done pairs). */
#ifndef TPU_IR_H
#define TPU_IR_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "isa.h"

#define IR_MAX_IN     6
#define IR_MAX_OUT    4
#define IR_MAX_VOPS   12
#define IR_NAME_MAX   32
#define IR_REGION_MAX 48
#define IR_TOKEN_LATE 0 /* collectives nobody waits for before an IR_WAIT on it (or the end) */

/* The opcodes, declared once: X(enum name, the name dumps print), each under what it does. */
/* clang-format off */
#define IR_OPCODES(X) \
    /* out[b][m][n] (+)= a[b][m][k] w[b][k][n]; batch problems stacked in rows */ \
    X(IR_MATMUL, "matmul") \
    /* NHWC convolution: in [N*H*W, C], w [R*S*C, K], out [N*P*Q, K] */ \
    X(IR_CONV2D, "conv2d") \
    /* fused elementwise chain over n elements (reductions, transcendentals) */ \
    X(IR_FUSION, "fusion") \
    /* flash attention: QK^T, softmax (vector), PV; backward recomputes P */ \
    X(IR_ATTENTION, "attention") \
    /* copy rows of `block` bytes `stride` apart (embedding lookup) */ \
    X(IR_GATHER, "gather") \
    /* out [cols, rows] = in^T (transposing DMA through VMEM) */ \
    X(IR_TRANSPOSE, "transpose") \
    /* dynamic slice: out = rows [row0, row0 + out.rows) of in */ \
    X(IR_DSLICE, "dynamic-slice") \
    /* dynamic update slice: the elements of in, row-major, into the rows of out (a window \
     * view of a bigger tensor: the new token of a KV cache) */ \
    X(IR_DUS, "dynamic-update-slice") \
    /* isa_op (ici.allreduce ...) over mesh axes, async: signals `token` */ \
    X(IR_COLLECTIVE, "collective") \
    /* point-to-point send of `bytes` along an axis (pipeline stages) */ \
    X(IR_SEND, "send") \
    /* point-to-point receive */ \
    X(IR_RECV, "recv") \
    /* wait for every op that signalled `token` */ \
    X(IR_WAIT, "wait")
/* clang-format on */

typedef enum ir_opcode {
#define IR_OPCODE_ENUM(op, name) op,
    IR_OPCODES(IR_OPCODE_ENUM)
#undef IR_OPCODE_ENUM
        IR_OPCODE_COUNT
} ir_opcode;

/* One vector op of a fused chain: reads chunk buffer `src`, writes `dst` (indices into the
 * op's inputs, then its outputs, then fp32 scratch buffers); binary ops read their second
 * operand right after the first. width: reduce/transpose row width, cast target dtype;
 * div: 0 = the op covers the chunk, d = chunk/d elements (per-row ops). */
typedef struct ir_vop {
    int op;
    unsigned src, dst;
    isa_dtype dt;
    unsigned width;
    unsigned div;
} ir_vop;

/* 1 if vector op `op` reads a second operand (right after the first): add, sub, mul, max,
 * min, fma, select. */
int ir_vop_binary(int op);

typedef struct ir_tensor {
    char name[IR_NAME_MAX];
    isa_dtype dt;
    uint64_t rows, cols;
    uint64_t pitch;  /* elements between rows; 0 = the layout pass pads it */
    int persistent;  /* parameters, caches, optimizer state, program inputs: live throughout */
    int parent;      /* view: root tensor id; -1 for a root */
    uint64_t offset; /* view: byte offset into the parent */
    /* filled by lower_mem */
    uint64_t bytes;  /* HBM footprint (roots) or extent (views) */
    uint64_t addr;   /* HBM address */
    int first, last; /* op indices of the first and last use (roots); -1 if unused */
} ir_tensor;

/* Tiling chosen for a GEMM by lower_tile (see lower_tile.c for the search). */
#define IR_GEMM_NBUF_MAX 3 /* operand buffers of a GEMM's software pipeline (lower_tile.c) */
typedef struct ir_gemm_tile {
    uint64_t mt, kc, ng; /* rows per block, K per step, N per group (elements) */
    uint64_t msub, nsub; /* m-subblocks per block, n-tiles per group */
    int a_resident;      /* a block's mt x K panel of A stays in VMEM over the groups */
    int w_resident;      /* a group's K x ng panel of B stays in VMEM over the blocks */
    int m_outer;         /* loop order: row blocks outer (else column groups outer) */
    int loads_first;     /* memory-bound: issue a step's loads before its matmuls */
    unsigned nbuf;       /* streamed operand buffers, 2..IR_GEMM_NBUF_MAX (0 means 2): step
                          * s + nbuf - 1's chunks load while step s computes */
    int b_blocked;       /* B (a parameter) is stored in this tiling's order: each kc x ng
                          * chunk contiguous, chunks k-major within a column group */
    /* implicit GEMM (a convolution): A's rows are patches read straight from the input,
     * runs of a_block bytes a_stride apart (one per output pixel), no im2col tensor */
    int a_implicit;
    uint64_t a_block, a_stride;
    uint64_t vmem_bytes; /* planned VMEM footprint */
} ir_gemm_tile;

/* A collective routed point to point instead of over whole axes (HLO replica groups that are
 * strided rings, a collective-permute that is a uniform shift; docs/hlo.md): the lowering
 * turns it into one-hop ici.send/ici.recv steps along `axis` (lower_emit.c chooses the
 * schedule from the topology). Ring: `group` members `stride` hops apart (stride 0: not
 * routed). Shift: every chip sends to the chip `shift` positions further along +axis, modulo
 * the axis length; `pairs` says which pairs exist: IR_SHIFT_FWD some do not wrap past the end,
 * IR_SHIFT_WRAP some do (on a torus both move the shorter way; on a mesh a wrapping pair
 * travels back over the whole line). */
enum { IR_SHIFT_FWD = 1, IR_SHIFT_WRAP = 2 };
typedef struct ir_route {
    unsigned axis;          /* 0 = x, 1 = y, 2 = z */
    unsigned stride, group; /* ring */
    unsigned shift, pairs;  /* uniform shift (isa_op ICI_SEND) */
} ir_route;

typedef struct ir_op {
    ir_opcode code;
    char region[IR_REGION_MAX]; /* trace marker of the region the op belongs to */
    int in[IR_MAX_IN], out[IR_MAX_OUT];
    unsigned nin, nout;
    isa_dtype dt;
    /* matmul: a = in[0], w = in[1], out[0] (written in its dtype; fp32 = the accumulator);
     * epilogue: vops applied to each output tile before write-back (fused bias, activation,
     * residual add, cast: XLA's output fusion), its extra inputs in[2..] */
    uint64_t m, n, k, batch;
    /* fusion: n elements; attention: shapes */
    uint64_t elems;
    ir_vop vops[IR_MAX_VOPS];
    unsigned nvops;
    uint64_t heads, kv_heads, seq, kv_len, head_dim;
    int causal, backward;
    int kv_head_major; /* attention: k/v rows are (batch, kv head), keys x head_dim columns */
    /* conv2d */
    uint64_t cn, ch, cw, cc, ck, kh, kw, stride, pad;
    /* gather: block / stride in bytes; dslice: first row */
    uint64_t block, gstride, row0;
    /* collectives and p2p */
    int isa_op;
    unsigned axes;
    int dir;
    uint64_t bytes;
    int token;
    unsigned chain; /* collectives: IR_CHAIN_* (ir_chain) */
    ir_route route; /* collectives routed point to point (ir_collective_routed) */
    /* filled by lower_tile */
    ir_gemm_tile tile;
} ir_op;

/* 1 if matmul op o's epilogue reads a buffer after the accumulator: an extra input, or a
 * binary op without one (a bias add, whose broadcast row sits in that buffer). */
int ir_epilogue_reads_buffer(const ir_op *o);

typedef struct ir ir; /* opaque: tensors, ops, tokens, and the memory plan's results */

/* Memory plan of a program (lower_mem). */
typedef struct ir_mem_plan {
    uint64_t peak_bytes;       /* high-water mark of HBM addresses: the per-chip footprint */
    uint64_t live_peak_bytes;  /* largest sum of live tensors at one op */
    uint64_t persistent_bytes; /* parameters, caches, optimizer state */
    uint64_t naive_bytes;      /* every tensor its own buffer (what a bump allocator needs) */
    int peak_op;               /* op index of live_peak_bytes */
    int top[3];                /* largest tensors live at peak_op (-1: none) */
} ir_mem_plan;

/* Lifecycle: an empty program for config c (kept by pointer; the layout rule reads it).
 * Returns NULL on allocation failure with e filled. */
ir *ir_new(const cfg *c, err *e);
void ir_free(ir *p);

/* Builders. On failure (allocation, a frontend bug such as an out-of-range tensor id) the
 * ir remembers the first error, the builder returns -1 and later builders do nothing;
 * ir_error reports it. */
int ir_error(const ir *p, err *e); /* 0, or -1 with e filled */
void ir_region(ir *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ir_tensor_new(ir *p, const char *name, isa_dtype dt, uint64_t rows, uint64_t cols);
int ir_param_new(ir *p, const char *name, isa_dtype dt, uint64_t rows, uint64_t cols);
/* A view of `parent` (root or view) at `offset` bytes: rows x cols, rows `pitch` apart
 * (0: the layout pitch of cols). */
int ir_view(ir *p, int parent, const char *name, uint64_t offset, uint64_t rows, uint64_t cols,
            uint64_t pitch);
int ir_token_new(ir *p);

/* Ops; each returns the op index or -1. */
int ir_matmul(ir *p, int a, int w, int out, uint64_t m, uint64_t n, uint64_t k);
int ir_matmul_batched(ir *p, int a, int w, int out, uint64_t batch, uint64_t m, uint64_t n,
                      uint64_t k);
/* Fuse vops into matmul `mm`'s output tiles (inputs extra[0..nextra) become the chain's
 * inputs after the accumulator). */
int ir_matmul_epilogue(ir *p, int mm, const int *extra, unsigned nextra, const ir_vop *vops,
                       unsigned nvops);
int ir_conv2d(ir *p, int in, int w, int out, uint64_t n, uint64_t h, uint64_t wd, uint64_t c,
              uint64_t k, uint64_t kh, uint64_t kw, uint64_t stride, uint64_t pad);
int ir_fusion(ir *p, uint64_t elems, const int *in, unsigned nin, const int *out, unsigned nout,
              const ir_vop *vops, unsigned nvops);
/* Attention: forward in q k v, out o; backward in q k v o dout, out dq dk dv. q/o/dout/dq
 * rows are (batch, query) with heads x head_dim columns, k/v/dk/dv rows (batch, key) with
 * kv_heads x head_dim columns (grouped-query attention: heads/kv_heads queries share one
 * key/value head). */
int ir_attention(ir *p, const int *in, unsigned nin, const int *out, unsigned nout, uint64_t batch,
                 uint64_t heads, uint64_t kv_heads, uint64_t seq, uint64_t kv_len,
                 uint64_t head_dim, int causal, int backward);
int ir_gather(ir *p, int src, int dst, uint64_t block, uint64_t stride);
int ir_transpose(ir *p, int in, int out);
int ir_dslice(ir *p, int in, int out, uint64_t row0);
int ir_dus(ir *p, int in, int out);
/* The same, asynchronous: its HBM writes signal `token` (-1: synchronous) and an IR_WAIT on
 * the token completes it (a KV cache write nothing later in the step reads). */
int ir_dus_async(ir *p, int in, int out, int token);
/* Collective isa_op over `axes` moving `bytes` per chip (ISA convention); in/out (-1: none)
 * are the HBM buffers it reads and writes; signals `token`. */
int ir_collective(ir *p, int isa_op, unsigned axes, uint64_t bytes, int in, int out, int token);
/* The same with several buffers (an all-to-all of Q, K and V). */
int ir_collective_n(ir *p, int isa_op, unsigned axes, uint64_t bytes, const int *in, unsigned nin,
                    const int *out, unsigned nout, int token);
/* A collective routed point to point (ir_route): isa_op ICI_ALLREDUCE, ICI_ALLGATHER,
 * ICI_REDUCESCATTER or ICI_ALLTOALL over a ring (r->stride >= 1, r->group >= 2), or ICI_SEND
 * for a uniform shift (r->shift >= 1, r->pairs != 0); bytes per chip in the ISA convention
 * (a shift: the bytes each chip sends); in/out and token as ir_collective. */
int ir_collective_routed(ir *p, int isa_op, const ir_route *r, uint64_t bytes, int in, int out,
                         int token);
/* Chained collectives on two unit queues (an ICI reduce-scatter, then the DCN all-reduce of its
 * result, then an ICI all-gather): collective op `i` starts only after the previous collective
 * marked IR_CHAIN_OUT on the other queue completes (IR_CHAIN_IN), and/or lets the next one marked
 * IR_CHAIN_IN start when it completes (IR_CHAIN_OUT), without stalling dispatch. A chained
 * producer's own instruction signals the chain instead of its token (its chip-side work still
 * signals the token). Producers and consumers pair up in program order, one queue to the other
 * (checked by ir_check). Returns i, or -1 (an error in p). */
enum { IR_CHAIN_IN = 1, IR_CHAIN_OUT = 2 };
int ir_chain(ir *p, int i, unsigned chain);
int ir_send(ir *p, unsigned axis, int dir, int in, int token);
int ir_recv(ir *p, unsigned axis, int dir, int out, int token);
int ir_wait(ir *p, int token);

/* Access (ids from the builders; NULL if out of range). */
int ir_ntensors(const ir *p);
int ir_nops(const ir *p);
int ir_ntokens(const ir *p);
ir_tensor *ir_tensor_at(ir *p, int id);
const ir_tensor *ir_tensor_get(const ir *p, int id);
ir_op *ir_op_at(ir *p, int i);
const ir_op *ir_op_get(const ir *p, int i);
const cfg *ir_cfg(const ir *p);
int ir_root(const ir *p, int id); /* the root tensor of a view (id itself for a root) */
ir_mem_plan *ir_mem(ir *p);
const ir_mem_plan *ir_mem_get(const ir *p);

/* Insert a copy of op `op` before index `at` (later ops shift up; passes that expand ops).
 * Returns `at` or -1. */
int ir_insert(ir *p, int at, const ir_op *op);

/* Layout rule (lower_mem): pitch of a cols-wide tensor of dt, and the bytes of a rows x cols
 * tensor laid out with it. Frontends size packed regions (the parameter block) with it. */
uint64_t ir_pitch(const ir *p, uint64_t cols, isa_dtype dt);
/* Elements from tensor t's first to past its last: its rows at its pitch, or at the layout
 * pitch of dt when it has none; 0 when t is not a tensor. */
uint64_t ir_span(const ir *p, int t, isa_dtype dt);
/* Tensor t seen as rows x cols (same bytes: a transposed or reshaped operand): a view named
 * name (NULL: t's name and a prime) with its rows at the layout pitch of cols elements of dt
 * if that stays inside ir_span(t, dt), else packed. t itself when it is rows x cols already;
 * -1 when t is not a tensor (no message) or the view fails. */
int ir_reshape(ir *p, int t, const char *name, uint64_t rows, uint64_t cols, isa_dtype dt);
uint64_t ir_bytes2(const ir *p, isa_dtype dt, uint64_t rows, uint64_t cols);

/* Checks every op's tensor ids, counts and shape agreement (a frontend bug is ERR_INPUT
 * with the op and region named). */
int ir_verify(const ir *p, err *e);

#endif
