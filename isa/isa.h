/* isa.h - the tpusim tile-level instruction set: opcodes, operands, datatypes.
 *
 * Everything here is generated from the single table in isa_ops.def. An instruction in
 * memory is an isa_insn: opcode, the common wait/signal semaphores, and up to
 * ISA_MAX_ARGS operands in the order the table lists them (optional operands default 0). */
#ifndef TPU_ISA_H
#define TPU_ISA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ISA_VERSION  1    /* bump when the opcode table or operand layout changes */
#define ISA_MAX_ARGS 7    /* most operands any opcode has */
#define ISA_NAME_MAX 48   /* marker name, including the terminating NUL */
#define ISA_SEM_MAX  4096 /* semaphores are numbered 0..ISA_SEM_MAX-1 */

/* Datatypes. bits is the storage width; the MXU accumulates in fp32. */
typedef enum isa_dtype {
    ISA_DT_BF16,
    ISA_DT_INT8,
    ISA_DT_FP8,
    ISA_DT_FP32,
    ISA_DT_INT4,
    ISA_DTYPE_COUNT
} isa_dtype;

/* Which queue an opcode is dispatched to. */
typedef enum isa_unit {
#define ISA_UNIT(E, name) ISA_UNIT_##E,
#include "isa_ops.def"
#undef ISA_UNIT
    ISA_UNIT_COUNT
} isa_unit;

/* Cost class: which timing formula a unit model applies. */
typedef enum isa_cost {
#define ISA_COST(E, name) ISA_COST_##E,
#include "isa_ops.def"
#undef ISA_COST
} isa_cost;

/* Operand kinds, as written in assembly. */
typedef enum isa_kind {
    ISA_K_NONE,
    ISA_K_INT,   /* decimal or 0x hex, optional K/M/G (x1024) suffix in assembly */
    ISA_K_DTYPE, /* bf16 int8 fp8 fp32 int4 */
    ISA_K_AXES,  /* set of torus axes: letters from "xyz", stored as a bit mask (x=1,y=2,z=4) */
    ISA_K_DIR,   /* +1 or -1, stored as 0 (+) or 1 (-) */
    ISA_K_STR,   /* quoted string, stored in isa_insn.name */
} isa_kind;

typedef struct isa_arg {
    const char *name; /* NULL terminates the list */
    isa_kind kind;
    int required;
    uint64_t max; /* inclusive upper bound of the stored value */
} isa_arg;

typedef enum isa_opcode {
#define ISA_OP(E, ...) ISA_OP_##E,
#include "isa_ops.def"
#undef ISA_OP
    ISA_OP_COUNT
} isa_opcode;

typedef struct isa_info {
    const char *mnemonic;
    isa_unit unit;
    isa_cost cost;
    const char *help;
    int nargs;
    isa_arg args[ISA_MAX_ARGS];
} isa_info;

/* One decoded instruction. wait/signal hold semaphore+1 (0 = none). For ISA_K_STR operands
 * the string lives in name[] and the arg slot holds its length. */
typedef struct isa_insn {
    uint16_t op;
    uint16_t wait;
    uint16_t signal;
    uint64_t arg[ISA_MAX_ARGS];
    char name[ISA_NAME_MAX];
} isa_insn;

/* Table lookups. isa_info returns NULL for op >= ISA_OP_COUNT. */
const isa_info *isa_info_of(unsigned op);
/* Opcode by mnemonic, -1 if unknown. */
int isa_lookup(const char *mnemonic);
/* The mnemonic closest to an unknown one, for "did you mean": the same name after the unit
 * prefix ("ldw" -> "mxu.ldw", "vpu.ldw" -> "mxu.ldw"), else the nearest by edit distance
 * (at most 2, and at most a third of its length). NULL when nothing is close. */
const char *isa_suggest(const char *mnemonic);
/* Index of operand `name` in op's operand list, -1 if none. */
int isa_arg_index(unsigned op, const char *name);

const char *isa_dtype_name(isa_dtype dt);
int isa_dtype_lookup(const char *name); /* -1 if unknown */
unsigned isa_dtype_bits(isa_dtype dt);
/* Bytes of n elements of dt (int4 packs two per byte, rounded up), saturating at UINT64_MAX;
 * 0 for an unknown dt. The one copy of this rule outside the generators. */
uint64_t isa_dtype_bytes(isa_dtype dt, uint64_t n);
const char *isa_unit_name(isa_unit u);
/* Print a markdown reference of every opcode and its operands (`tpusim isa`, docs/isa.md). */
void isa_doc(FILE *out);

/* Check operand ranges and required operands; fills e ("operand 'm' = 0 not in [1, ...]").
 * Returns 0 if valid. */
struct err;
int isa_validate(const isa_insn *in, struct err *e);

/* Convenience accessors by operand name resolved at compile time through the enum below.
 * Operand slot indices, one enum per opcode family, kept in step with isa_ops.def and
 * checked by tests/test_isa.c. */
enum { ISA_DMA_HBM, ISA_DMA_VMEM, ISA_DMA_BYTES, ISA_DMA_STRIDE, ISA_DMA_BLOCK };
enum { ISA_LDW_MXU, ISA_LDW_VMEM, ISA_LDW_K, ISA_LDW_N, ISA_LDW_DTYPE };
enum { ISA_MM_MXU, ISA_MM_SRC, ISA_MM_DST, ISA_MM_M, ISA_MM_DTYPE, ISA_MM_ACC };
enum { ISA_V_SRC, ISA_V_DST, ISA_V_N, ISA_V_DTYPE, ISA_V_EXTRA /* cast `to`, reduce `width` */ };
enum { ISA_P2P_AXIS, ISA_P2P_DIR, ISA_P2P_BYTES, ISA_P2P_VMEM };
enum { ISA_COLL_AXES, ISA_COLL_BYTES, ISA_COLL_DTYPE };
enum { ISA_DCN_BYTES, ISA_DCN_DTYPE };

/* Variable-length binary encoding of one instruction (see docs/trace-format.md):
 * LEB128 op, wait, signal, then each operand as LEB128 (strings: length then bytes).
 * isa_encode writes at most ISA_ENC_MAX bytes and returns the count.
 * isa_decode returns bytes consumed, 0 if buf holds an incomplete instruction, or -1 on a
 * malformed one (unknown opcode, value out of range) with e filled (no file context). */
#define ISA_ENC_MAX (3 * 10 + ISA_MAX_ARGS * 10 + ISA_NAME_MAX)
size_t isa_encode(const isa_insn *in, uint8_t *buf);
long isa_decode(const uint8_t *buf, size_t len, isa_insn *in, struct err *e);

/* Levenshtein distance between a and b (ASCII case folded when fold_case), or UINT_MAX when
 * either is longer than 128 bytes: every "did you mean" (opcodes, config keys, model presets)
 * uses it. */
unsigned isa_edit_distance(const char *a, const char *b, int fold_case);

#endif
