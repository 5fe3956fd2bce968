/* hlo.h - XLA HLO text modules (what JAX writes with --xla_dump_hlo_as_text), parsed into an
 * in-memory module, and the semantic pass that gives every op its cost class and cost inputs.
 *
 * Pipeline (docs/hlo.md): hlo_lex.c splits the text into tokens, hlo_parse.c builds the module
 * (computations of instructions with shapes, operands and typed attributes), hlo_sem.c walks
 * the entry computation (inlining calls, unrolling while loops) into a flat list of costed ops
 * (hlo_plan), which a lowering turns into a trace. Both known generations of the text are
 * read: `%`-prefixed names with typed operands (older dumps) and bare names with iota replica
 * groups and async collective pairs (newer).
 *
 * Everything a module holds lives in one arena owned by the hlo_module; hlo_module_free
 * releases it all. The structs are read-only for callers. */
#ifndef TPU_HLO_H
#define TPU_HLO_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "ir.h"
#include "isa.h"

/* ---- opcodes --------------------------------------------------------------------------- */

typedef enum hlo_opcode {
#define HLO_OP(id, name, cls) HLO_OP_##id,
#include "hlo_ops.def"
#undef HLO_OP
    HLO_OP_UNKNOWN,
    HLO_OP_COUNT
} hlo_opcode;

/* Cost class of an op standing alone (the third column of hlo_ops.def). */
typedef enum hlo_opclass {
    HLO_OC_FREE,
    HLO_OC_ELEM,
    HLO_OC_TRANS,
    HLO_OC_REDUCE,
    HLO_OC_DATA,
    HLO_OC_DOT,
    HLO_OC_CONV,
    HLO_OC_FUSION,
    HLO_OC_COLL,
    HLO_OC_DONE,
    HLO_OC_CTRL,
    HLO_OC_CUSTOM,
    HLO_OC_UNKNOWN
} hlo_opclass;

const char *hlo_opcode_name(hlo_opcode op); /* "unknown" for HLO_OP_UNKNOWN */
hlo_opcode hlo_opcode_lookup(const char *name, size_t len);
hlo_opclass hlo_opcode_class(hlo_opcode op);

/* ---- shapes ---------------------------------------------------------------------------- */

typedef enum hlo_etype {
    HLO_ET_PRED,
    HLO_ET_S2,
    HLO_ET_S4,
    HLO_ET_S8,
    HLO_ET_S16,
    HLO_ET_S32,
    HLO_ET_S64,
    HLO_ET_U2,
    HLO_ET_U4,
    HLO_ET_U8,
    HLO_ET_U16,
    HLO_ET_U32,
    HLO_ET_U64,
    HLO_ET_F16,
    HLO_ET_BF16,
    HLO_ET_F32,
    HLO_ET_F64,
    HLO_ET_F8E4M3FN,
    HLO_ET_F8E5M2,
    HLO_ET_F8E4M3B11FNUZ,
    HLO_ET_F8E4M3FNUZ,
    HLO_ET_F8E5M2FNUZ,
    HLO_ET_C64,
    HLO_ET_C128,
    HLO_ET_TOKEN,
    HLO_ET_OPAQUE,
    HLO_ET_TUPLE,
    HLO_ET_COUNT
} hlo_etype;

const char *hlo_etype_name(hlo_etype t);
unsigned hlo_etype_bits(hlo_etype t); /* storage bits per element; 0 for token/opaque/tuple */

#define HLO_MAX_RANK 16

typedef struct hlo_shape {
    hlo_etype et;
    unsigned rank;
    int64_t dims[HLO_MAX_RANK]; /* bound for dynamic dims; -1 for `?` */
    uint32_t dynamic;           /* bit i: dimension i is dynamic (`<=N` or `?`) */
    int has_layout;
    uint8_t minor_to_major[HLO_MAX_RANK]; /* when has_layout (rank entries) */
    int memory_space;                     /* S(n) of the layout; 0 if none */
    const char *tiling;                   /* text after ':' in the layout (T(8,128)...), or NULL */
    unsigned ntuple;                      /* tuple: element shapes */
    struct hlo_shape *tuple;
} hlo_shape;

/* Elements of an array shape (0 for tuples, 1 for scalars), saturating at UINT64_MAX. */
uint64_t hlo_shape_elems(const hlo_shape *s);
/* Storage bytes of a shape, tuples summed; saturating. */
uint64_t hlo_shape_bytes(const hlo_shape *s);
/* The array shape of a result: s itself, or a tuple's largest element, recursively (the
 * result of an async -start op). */
const hlo_shape *hlo_shape_array(const hlo_shape *s);

/* ---- attributes ------------------------------------------------------------------------ */

typedef struct hlo_ints {
    int64_t *v;
    unsigned n;
    int present;
} hlo_ints;

typedef struct hlo_window_dim {
    int64_t size, stride, pad_lo, pad_hi, lhs_dilate, rhs_dilate;
    int reversal;
} hlo_window_dim;

typedef struct hlo_window {
    unsigned n;
    hlo_window_dim d[HLO_MAX_RANK];
} hlo_window;

/* dim_labels=b01f_01io->b01f: for each of input (lhs), kernel (rhs), output, the dimension
 * index of batch/feature (input, output) or input/output feature (kernel), and of each
 * spatial dimension in spatial order. */
typedef struct hlo_dim_labels {
    unsigned nspatial;
    int lhs_batch, lhs_feature, rhs_in, rhs_out, out_batch, out_feature;
    int lhs_spatial[HLO_MAX_RANK], rhs_spatial[HLO_MAX_RANK], out_spatial[HLO_MAX_RANK];
} hlo_dim_labels;

typedef struct hlo_slice_dim {
    int64_t start, limit, stride;
} hlo_slice_dim;

/* Replica groups, both forms expanded: ngroups groups of `size` ids each, ids[g * size + i].
 * Empty (`{}`) is present with ngroups 0: every device in one group. `iota` remembers the
 * compact form was used. */
typedef struct hlo_groups {
    int present, iota;
    unsigned ngroups, size;
    int64_t *ids;
} hlo_groups;

typedef struct hlo_metadata {
    const char *op_type, *op_name, *source_file; /* NULL when absent */
    int64_t source_line;
} hlo_metadata;

/* One attribute as written: name and the raw text of its value. */
typedef struct hlo_attr {
    const char *name, *value;
    unsigned line, col;
} hlo_attr;

struct hlo_comp;

typedef struct hlo_instr {
    const char *name;
    hlo_opcode op;
    const char *opname; /* the opcode as written (kept for unknown ones) */
    hlo_shape shape;
    int is_root;
    unsigned line, col;
    unsigned nops;
    struct hlo_instr **operands;
    int64_t param_number; /* parameter(N) */
    const char *literal;  /* constant(...) text */
    unsigned nattrs;
    hlo_attr *attrs; /* every attribute as written, typed ones too */
    /* typed attributes */
    hlo_ints dimensions, lhs_contracting, rhs_contracting, lhs_batch, rhs_batch;
    hlo_ints slice_sizes, dynamic_slice_sizes;
    int64_t index, channel_id, feature_group_count, batch_group_count, iota_dimension;
    int has_window, has_dim_labels, has_slice, has_padding;
    hlo_window window; /* window= */
    hlo_dim_labels dim_labels;
    unsigned nslice;
    hlo_slice_dim *slice; /* slice={[a:b:c], ...} */
    hlo_window padding;   /* pad op's padding=lo_hi_interior x ... (size = interior) */
    hlo_groups replica_groups;
    unsigned npairs;
    int64_t *pairs; /* source_target_pairs: 2 per pair */
    hlo_metadata meta;
    const char *backend_config;      /* raw: a string's contents (unescaped) or {...} text */
    int64_t known_trip_count;        /* from backend_config, -1 if absent */
    const char *frontend_attributes; /* raw {...} text */
    const char *sharding;            /* raw {...} text */
    const char *fusion_kind;         /* kLoop, kInput, kOutput, kCustom */
    const char *custom_call_target;
    const char *direction; /* compare */
    struct hlo_comp *to_apply, *calls, *condition, *body;
    unsigned nbranches;
    struct hlo_comp **branches; /* conditional: branch_computations or true, false */
} hlo_instr;

typedef struct hlo_comp {
    const char *name;
    int is_entry;
    unsigned line;
    unsigned nparams; /* signature parameters (0 when the signature is not printed) */
    hlo_shape *param_shapes;
    hlo_shape result; /* signature result; et HLO_ET_COUNT when not printed */
    unsigned ninstrs;
    hlo_instr **instrs; /* in text order */
    hlo_instr *root;    /* the ROOT (the last instruction when none is marked) */
} hlo_comp;

typedef struct hlo_module {
    const char *name;
    const char *file;
    unsigned nattrs;
    hlo_attr *attrs; /* header attributes: is_scheduled, entry_computation_layout, ... */
    int64_t num_partitions, replica_count; /* from the header, 1 if absent */
    unsigned ncomps;
    hlo_comp **comps;
    hlo_comp *entry;
    struct hlo_arena *arena; /* private */
} hlo_module;

/* Parse `len` bytes of HLO text (need not be NUL-terminated); `file` names the input in
 * errors ("file:line:col: expected X, found Y"). Returns the module (free with
 * hlo_module_free) or NULL with e filled (ERR_INPUT, or ERR_NOMEM). */
hlo_module *hlo_parse(const char *text, size_t len, const char *file, err *e);
/* Read and parse a file. */
hlo_module *hlo_parse_file(const char *path, err *e);
void hlo_module_free(hlo_module *m);

hlo_comp *hlo_find_comp(const hlo_module *m, const char *name);
hlo_instr *hlo_find_instr(const hlo_comp *c, const char *name);
/* The raw value of attribute `name` of i, or NULL. */
const char *hlo_attr_get(const hlo_instr *i, const char *name);

/* ---- semantics (hlo_sem.c) ------------------------------------------------------------- */

/* What an op costs, by class. */
typedef enum hlo_cls {
    HLO_CLS_FREE,   /* no work */
    HLO_CLS_MATMUL, /* dot, or a fusion around one: MXU FLOPs, vector epilogue */
    HLO_CLS_CONV,   /* convolution, or a fusion around one (as an im2col matmul) */
    HLO_CLS_VECTOR, /* elementwise, transcendental, reductions: VPU, HBM operands + result */
    HLO_CLS_DATA,   /* copies, transposes, slices, gathers: HBM bytes through VMEM */
    HLO_CLS_COLL,   /* ICI collective (or its async start) */
    HLO_CLS_WAIT,   /* the -done of an async collective */
    HLO_CLS_CUSTOM, /* custom-call costed from its bytes (or by name, see docs/hlo.md) */
    HLO_CLS_COUNT
} hlo_cls;

const char *hlo_cls_name(hlo_cls c);

typedef struct hlo_item {
    const hlo_instr *ins;
    const hlo_instr *core; /* a fusion's dot/convolution with the most FLOPs (NULL: none) */
    hlo_cls cls;
    const char *region; /* op_name metadata (NULL when absent) */
    isa_dtype dt;       /* compute datatype (matmul operands; vector result) */
    /* matmul / conv as a (batch of) matmul(s): out[batch][m][n] = a[m][k] b[k][n] */
    uint64_t batch, m, n, k;
    uint64_t flops; /* MXU FLOPs: 2 batch m n k */
    /* vector work (standalone, fused, or a matmul's fused epilogue/prologue) */
    uint64_t elems;  /* elements streamed (the larger of result and largest operand) */
    uint64_t velem;  /* elementwise element-ops */
    uint64_t vtrans; /* transcendental element-ops */
    uint64_t vred;   /* elements reduced */
    /* HBM traffic of the op: operands read, result written */
    uint64_t bytes_in, bytes_out;
    /* collectives: isa opcode (ICI_ALLREDUCE ...; ICI_SEND for point-to-point), bytes per
     * chip in the ISA's convention, torus axes mask (x=1, y=2, z=4), group size, and whether
     * the groups are not whole axes (p2p). Such groups that are strided rings along one axis,
     * and a collective-permute that is a uniform shift along one axis, are routed point to
     * point (route.stride or route.shift set; axes is that axis); other ones run over every
     * axis they span (a warning says so). token pairs a -start with its -done (0:
     * synchronous) */
    int coll_op;
    uint64_t coll_bytes;
    unsigned axes, group;
    int p2p;
    ir_route route;
    int token;
} hlo_item;

#define HLO_MAX_WARN 32

/* The costed program of one chip: items in execution order (while loops unrolled, calls
 * inlined, the largest conditional branch), and the summary the importer reports. */
typedef struct hlo_plan {
    hlo_item *items;
    size_t nitems, cap;
    uint64_t ops_by_cls[HLO_CLS_COUNT];
    uint64_t flops_by_cls[HLO_CLS_COUNT]; /* MXU FLOPs (matmul, conv), vector ops (vector) */
    uint64_t mxu_flops, vec_ops, trans_ops, hbm_bytes, coll_bytes;
    uint64_t unknown_ops;
    unsigned nwarn;
    char warn[HLO_MAX_WARN][256]; /* one line each; custom-call targets listed once */
    int ntokens;
} hlo_plan;

/* Options of the analysis: the torus (ici.dims; chips = its product unless given) and a cap
 * on the number of items (while loops unroll; 0: 4 Mi). */
typedef struct hlo_sem_opts {
    unsigned dims[3];
    uint64_t chips;
    size_t max_items;
} hlo_sem_opts;

/* Options from a config: dims from ici.dims, chips 0 (= the product of dims). */
int hlo_sem_opts_from_cfg(hlo_sem_opts *o, const cfg *c, err *e);

/* Analyse m's entry computation into p (initialised here; release with hlo_plan_fini). p's
 * strings (regions, warnings' names) point into m: m must outlive p.
 * Returns 0, or -1 with e filled (a trip count that cannot be found is a warning with trip
 * 1, not an error; exceeding max_items is). */
int hlo_analyze(const hlo_module *m, const hlo_sem_opts *o, hlo_plan *p, err *e);
void hlo_plan_fini(hlo_plan *p);

/* Trip count of a while instruction: known_trip_count, else a condition comparing a counter
 * with a constant (the counter's start found in the init tuple); -1 if neither. */
int64_t hlo_trip_count(const hlo_instr *w);

/* Element type -> the ISA datatype tensors of it are simulated in (pred, s8, u8: int8; 16-bit:
 * bf16; fp8 kinds: fp8; s4/u4/s2/u2: int4; the rest fp32). */
isa_dtype hlo_isa_dtype(hlo_etype t);

/* ---- the IR frontend (hlo_ir.c) -------------------------------------------------------- */

/* Build the workload IR (ir.h) of plan pl (from module m) into p: one tensor per HLO value
 * (entry parameters and the entry root's values persistent, the rest temporaries with
 * lifetimes), dots and fusions around them as matmuls with fused epilogues, convolutions,
 * vector fusions with their op mix, data movement, collectives with async tokens. Regions
 * are the op_name metadata. Returns 0, or -1 with e filled. */
int hlo_build_ir(ir *p, const hlo_module *m, const hlo_plan *pl, err *e);

typedef struct hlo_import_result {
    uint64_t peak_hbm_bytes, persistent_bytes, ir_ops, ir_tensors;
} hlo_import_result;

/* The whole importer back end: hlo_build_ir, then the generators' lowering (lower_tile,
 * lower_mem, lower_emit) into the trace `path` (`note` in its header, with the peak HBM).
 * res (may be NULL) gets the memory plan's figures. Returns 0, or -1 with e filled. */
int hlo_import_trace(const hlo_module *m, const hlo_plan *pl, const cfg *c, const char *path,
                     const char *note, hlo_import_result *res, err *e);

#endif
