/* test_isa.c - the opcode table, operand validation and the LEB128 instruction encoding; the
 * isa/ helpers every layer uses (mem_grow, err_first). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "isa.h"
#include "mem.h"

/* Deterministic xorshift64* so failures reproduce. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static void test_isa_mnemonics_are_unique_and_look_up_to_their_opcode(void **state)
{
    (void)state;
    for (unsigned op = 0; op < ISA_OP_COUNT; op++) {
        const isa_info *info = isa_info_of(op);
        assert_non_null(info);
        assert_non_null(info->mnemonic);
        assert_int_equal(isa_lookup(info->mnemonic), op);
        for (unsigned o2 = op + 1; o2 < ISA_OP_COUNT; o2++)
            assert_string_not_equal(info->mnemonic, isa_info_of(o2)->mnemonic);
    }
    assert_null(isa_info_of(ISA_OP_COUNT));
    assert_int_equal(isa_lookup("mxu.frobnicate"), -1);
    assert_int_equal(isa_lookup(""), -1);
}

static void test_isa_nargs_counts_the_listed_operands(void **state)
{
    (void)state;
    for (unsigned op = 0; op < ISA_OP_COUNT; op++) {
        const isa_info *info = isa_info_of(op);
        assert_true(info->nargs >= 0 && info->nargs <= ISA_MAX_ARGS);
        for (int i = 0; i < info->nargs; i++) {
            assert_non_null(info->args[i].name);
            assert_int_not_equal(info->args[i].kind, ISA_K_NONE);
            assert_int_equal(isa_arg_index(op, info->args[i].name), i);
        }
        if (info->nargs < ISA_MAX_ARGS)
            assert_null(info->args[info->nargs].name);
        assert_int_equal(isa_arg_index(op, "nonexistent"), -1);
        assert_non_null(info->help);
        assert_true(info->unit < ISA_UNIT_COUNT);
    }
    assert_int_equal(isa_info_of(ISA_OP_SYNC_WAIT)->nargs, 0);
    assert_int_equal(isa_info_of(ISA_OP_MXU_MATMUL)->nargs, 6);
    assert_int_equal(isa_info_of(ISA_OP_V_CAST)->nargs, 5);
    assert_int_equal(isa_arg_index(ISA_OP_COUNT, "n"), -1);
}

static void test_isa_slot_enums_match_the_table_for_every_family(void **state)
{
    (void)state;
    unsigned checked = 0;
    for (unsigned op = 0; op < ISA_OP_COUNT; op++) {
        const isa_info *info = isa_info_of(op);
        switch (info->cost) {
        case ISA_COST_DMA:
            assert_int_equal(isa_arg_index(op, "hbm"), ISA_DMA_HBM);
            assert_int_equal(isa_arg_index(op, "vmem"), ISA_DMA_VMEM);
            assert_int_equal(isa_arg_index(op, "bytes"), ISA_DMA_BYTES);
            assert_int_equal(isa_arg_index(op, "stride"), ISA_DMA_STRIDE);
            assert_int_equal(isa_arg_index(op, "block"), ISA_DMA_BLOCK);
            break;
        case ISA_COST_MXU_LOAD:
            assert_int_equal(isa_arg_index(op, "mxu"), ISA_LDW_MXU);
            assert_int_equal(isa_arg_index(op, "vmem"), ISA_LDW_VMEM);
            assert_int_equal(isa_arg_index(op, "k"), ISA_LDW_K);
            assert_int_equal(isa_arg_index(op, "n"), ISA_LDW_N);
            assert_int_equal(isa_arg_index(op, "dtype"), ISA_LDW_DTYPE);
            break;
        case ISA_COST_MXU_MATMUL:
            assert_int_equal(isa_arg_index(op, "mxu"), ISA_MM_MXU);
            assert_int_equal(isa_arg_index(op, "src"), ISA_MM_SRC);
            assert_int_equal(isa_arg_index(op, "dst"), ISA_MM_DST);
            assert_int_equal(isa_arg_index(op, "m"), ISA_MM_M);
            assert_int_equal(isa_arg_index(op, "dtype"), ISA_MM_DTYPE);
            assert_int_equal(isa_arg_index(op, "acc"), ISA_MM_ACC);
            break;
        case ISA_COST_V_ELEM:
        case ISA_COST_V_FMA:
        case ISA_COST_V_TRANS:
        case ISA_COST_V_REDUCE:
        case ISA_COST_V_TRANSPOSE:
            assert_int_equal(info->unit, ISA_UNIT_VPU);
            assert_int_equal(isa_arg_index(op, "src"), ISA_V_SRC);
            assert_int_equal(isa_arg_index(op, "dst"), ISA_V_DST);
            assert_int_equal(isa_arg_index(op, "n"), ISA_V_N);
            assert_int_equal(isa_arg_index(op, "dtype"), ISA_V_DTYPE);
            if (info->nargs > ISA_V_EXTRA) {
                int extra = isa_arg_index(op, op == ISA_OP_V_CAST ? "to" : "width");
                assert_int_equal(extra, ISA_V_EXTRA);
                assert_int_equal(info->nargs, ISA_V_EXTRA + 1);
            }
            break;
        case ISA_COST_ICI_P2P:
            assert_int_equal(isa_arg_index(op, "axis"), ISA_P2P_AXIS);
            assert_int_equal(isa_arg_index(op, "dir"), ISA_P2P_DIR);
            assert_int_equal(isa_arg_index(op, "bytes"), ISA_P2P_BYTES);
            assert_int_equal(isa_arg_index(op, "vmem"), ISA_P2P_VMEM);
            break;
        case ISA_COST_ICI_COLL:
            assert_int_equal(isa_arg_index(op, "axes"), ISA_COLL_AXES);
            assert_int_equal(isa_arg_index(op, "bytes"), ISA_COLL_BYTES);
            assert_int_equal(isa_arg_index(op, "dtype"), ISA_COLL_DTYPE);
            break;
        case ISA_COST_DCN_COLL:
            assert_int_equal(info->unit, ISA_UNIT_DCN);
            assert_int_equal(isa_arg_index(op, "bytes"), ISA_DCN_BYTES);
            assert_int_equal(isa_arg_index(op, "dtype"), ISA_DCN_DTYPE);
            break;
        case ISA_COST_SC_GATHER:
        case ISA_COST_SC_SCATTER:
        case ISA_COST_SC_COPY:
            assert_int_equal(info->unit, ISA_UNIT_SC); /* operand slots: tests/test_sc.c */
            break;
        case ISA_COST_NONE:
            assert_int_equal(info->unit, ISA_UNIT_SYNC);
            continue;
        }
        checked++;
    }
    assert_int_equal(checked, ISA_OP_COUNT - 5); /* all but the 5 dispatcher opcodes */
}

static void test_isa_dtype_names_and_bits_round_trip(void **state)
{
    (void)state;
    static const unsigned bits[ISA_DTYPE_COUNT] = {16, 8, 8, 32, 4};
    static const char *const names[ISA_DTYPE_COUNT] = {"bf16", "int8", "fp8", "fp32", "int4"};
    for (int dt = 0; dt < ISA_DTYPE_COUNT; dt++) {
        assert_string_equal(isa_dtype_name(dt), names[dt]);
        assert_int_equal(isa_dtype_lookup(names[dt]), dt);
        assert_int_equal(isa_dtype_bits(dt), bits[dt]);
    }
    assert_int_equal(isa_dtype_lookup("fp16"), -1);
    assert_string_equal(isa_unit_name(ISA_UNIT_MXU), "mxu");
    assert_string_equal(isa_unit_name(ISA_UNIT_SYNC), "sync");
}

static void test_isa_dtype_bytes_rounds_int4_up_and_saturates(void **state)
{
    (void)state;
    assert_int_equal(isa_dtype_bytes(ISA_DT_BF16, 3), 6);
    assert_int_equal(isa_dtype_bytes(ISA_DT_FP32, 3), 12);
    assert_int_equal(isa_dtype_bytes(ISA_DT_INT4, 3), 2);
    assert_int_equal(isa_dtype_bytes(ISA_DT_INT8, 0), 0);
    assert_true(isa_dtype_bytes(ISA_DT_FP32, UINT64_MAX / 4) == UINT64_MAX);
    assert_true(isa_dtype_bytes(ISA_DT_INT4, UINT64_MAX) == UINT64_MAX);
    assert_int_equal(isa_dtype_bytes(ISA_DTYPE_COUNT, 5), 0);
}

/* A random valid instruction of opcode op: every operand uniform over a random bit width,
 * clamped to its range, so small and huge values (multi-byte varints) both occur. */
static void random_insn(unsigned op, uint64_t *s, isa_insn *in)
{
    const isa_info *info = isa_info_of(op);
    memset(in, 0, sizeof *in);
    in->op = (uint16_t)op;
    in->wait = (uint16_t)(rng_next(s) % (ISA_SEM_MAX + 1));
    in->signal = (uint16_t)(rng_next(s) % (ISA_SEM_MAX + 1));
    for (int i = 0; i < info->nargs; i++) {
        const isa_arg *a = &info->args[i];
        if (a->kind == ISA_K_STR) {
            size_t len = rng_next(s) % ISA_NAME_MAX;
            for (size_t j = 0; j < len; j++)
                in->name[j] = (char)(1 + rng_next(s) % 255);
            in->arg[i] = len;
            continue;
        }
        unsigned width = (unsigned)(rng_next(s) % 65);
        uint64_t v = width == 64 ? rng_next(s) : rng_next(s) & ((1ULL << width) - 1);
        if (a->max != UINT64_MAX)
            v %= a->max + 1;
        if (a->kind == ISA_K_AXES)
            v = !strcmp(a->name, "axis") ? 1u << (v % 3) : 1 + v % 7;
        else if (v == 0 && a->required && a->kind == ISA_K_INT)
            v = 1; /* counts must be >= 1; 1 is valid for every other int too */
        in->arg[i] = v;
    }
}

static void test_isa_encode_decode_round_trips_every_opcode(void **state)
{
    (void)state;
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (unsigned op = 0; op < ISA_OP_COUNT; op++) {
        for (int iter = 0; iter < 500; iter++) {
            isa_insn in, out;
            random_insn(op, &s, &in);
            err e;
            if (isa_validate(&in, &e))
                fail_msg("generated invalid %s: %s", isa_info_of(op)->mnemonic, e.msg);
            uint8_t buf[ISA_ENC_MAX + 8];
            size_t n = isa_encode(&in, buf);
            assert_true(n > 0 && n <= ISA_ENC_MAX);
            memset(&out, 0xAB, sizeof out);
            long r = isa_decode(buf, n, &out, &e);
            if (r < 0)
                fail_msg("%s: %s", isa_info_of(op)->mnemonic, e.msg);
            assert_int_equal(r, n);
            assert_memory_equal(&in, &out, sizeof in);
            /* Extra bytes after the instruction are left alone. */
            buf[n] = 0x7f;
            assert_int_equal(isa_decode(buf, n + 1, &out, &e), n);
        }
    }
}

static void test_isa_decode_returns_zero_for_every_truncated_prefix(void **state)
{
    (void)state;
    uint64_t s = 42;
    for (unsigned op = 0; op < ISA_OP_COUNT; op++) {
        isa_insn in, out;
        random_insn(op, &s, &in);
        uint8_t buf[ISA_ENC_MAX];
        size_t n = isa_encode(&in, buf);
        err e;
        for (size_t cut = 0; cut < n; cut++)
            assert_int_equal(isa_decode(buf, cut, &out, &e), 0);
    }
}

static void test_isa_decode_rejects_unknown_opcode(void **state)
{
    (void)state;
    uint8_t buf[] = {ISA_OP_COUNT, 0, 0, 0, 0, 0, 0, 0};
    isa_insn out;
    err e = {0};
    assert_int_equal(isa_decode(buf, sizeof buf, &out, &e), -1);
    assert_non_null(strstr(e.msg, "unknown opcode"));
    /* A large opcode in a multi-byte varint is unknown too, not a truncated 16-bit value. */
    uint8_t big[] = {0x80 | ISA_OP_NOP, 0x80, 0x04, 0, 0};
    assert_int_equal(isa_decode(big, sizeof big, &out, &e), -1);
    assert_non_null(strstr(e.msg, "unknown opcode"));
}

static void test_isa_decode_rejects_out_of_range_operand(void **state)
{
    (void)state;
    isa_insn in = {.op = ISA_OP_MXU_LDW};
    in.arg[ISA_LDW_K] = 70000;
    in.arg[ISA_LDW_N] = 128;
    uint8_t buf[ISA_ENC_MAX];
    size_t n = isa_encode(&in, buf); /* the encoder does not validate */
    isa_insn out;
    err e = {0};
    assert_int_equal(isa_decode(buf, n, &out, &e), -1);
    assert_string_equal(e.msg, "mxu.ldw: operand 'k' = 70000 out of range [1, 65535]");
    /* A wait semaphore past ISA_SEM_MAX. */
    uint8_t sem[] = {ISA_OP_NOP, 0x81, 0x40 /* 8193 */, 0};
    assert_int_equal(isa_decode(sem, sizeof sem, &out, &e), -1);
    assert_non_null(strstr(e.msg, "out of range"));
}

static void test_isa_decode_rejects_overlong_varints(void **state)
{
    (void)state;
    isa_insn out;
    err e = {0};
    /* Non-minimal: opcode 0 written as two bytes. */
    uint8_t nonmin[] = {0x80, 0x00, 0, 0, 0, 0, 0, 0};
    assert_int_equal(isa_decode(nonmin, sizeof nonmin, &out, &e), -1);
    assert_non_null(strstr(e.msg, "overlong"));
    /* More than 64 bits in an operand. */
    uint8_t wide[16] = {ISA_OP_DMA_H2V, 0, 0};
    for (int i = 3; i < 13; i++)
        wide[i] = 0xff;
    wide[13] = 0x01;
    e.msg[0] = '\0';
    assert_int_equal(isa_decode(wide, sizeof wide, &out, &e), -1);
    assert_non_null(strstr(e.msg, "overlong"));
}

static void test_isa_validate_rejects_bad_instructions(void **state)
{
    (void)state;
    err e;
    isa_insn in = {.op = ISA_OP_V_ADD};
    in.arg[ISA_V_N] = 0;
    assert_int_equal(isa_validate(&in, &e), -1);
    assert_string_equal(e.msg, "v.add: operand 'n' = 0 out of range [1, 18446744073709551615]");
    in.arg[ISA_V_N] = 1;
    assert_int_equal(isa_validate(&in, &e), 0);
    in.arg[ISA_V_DTYPE] = ISA_DTYPE_COUNT;
    assert_int_equal(isa_validate(&in, &e), -1);
    assert_non_null(strstr(e.msg, "'dtype'"));
    in.arg[ISA_V_DTYPE] = ISA_DT_FP32;
    in.wait = ISA_SEM_MAX + 1;
    assert_int_equal(isa_validate(&in, &e), -1);
    assert_string_equal(e.msg, "v.add: operand 'wait' = 4096 out of range [0, 4095]");
    in.wait = ISA_SEM_MAX; /* semaphore 4095 */
    assert_int_equal(isa_validate(&in, &e), 0);

    isa_insn send = {.op = ISA_OP_ICI_SEND};
    send.arg[ISA_P2P_AXIS] = 3; /* x and y: a send goes along one axis */
    send.arg[ISA_P2P_BYTES] = 64;
    assert_int_equal(isa_validate(&send, &e), -1);
    send.arg[ISA_P2P_AXIS] = 4;
    assert_int_equal(isa_validate(&send, &e), 0);
    send.arg[ISA_P2P_DIR] = 2;
    assert_int_equal(isa_validate(&send, &e), -1);

    isa_insn mark = {.op = ISA_OP_MARK};
    memset(mark.name, 'a', sizeof mark.name); /* not NUL-terminated */
    assert_int_equal(isa_validate(&mark, &e), -1);
    strcpy(mark.name, "fwd");
    mark.arg[0] = 2; /* length slot disagrees with the string */
    assert_int_equal(isa_validate(&mark, &e), -1);
    mark.arg[0] = 3;
    assert_int_equal(isa_validate(&mark, &e), 0);

    isa_insn bad = {.op = ISA_OP_COUNT};
    assert_int_equal(isa_validate(&bad, &e), -1);
    assert_non_null(strstr(e.msg, "unknown opcode"));
}

static void test_isa_doc_lists_every_opcode_and_operand(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    isa_doc(f);
    fclose(f);
    for (unsigned op = 0; op < ISA_OP_COUNT; op++) {
        const isa_info *info = isa_info_of(op);
        char want[64];
        snprintf(want, sizeof want, "## `%s`", info->mnemonic);
        assert_non_null(strstr(text, want));
        assert_non_null(strstr(text, info->help));
    }
    assert_non_null(strstr(text, "| `acc` | int | no (default 0) | 0 .. 1 |"));
    assert_non_null(strstr(text, "| `k` | int | yes | 1 .. 65535 |"));
    free(text);
}

/* mem_grow: capacity doubles from `first` to the first that holds need, the added elements
 * are zero, what was there stays, and an impossible size changes nothing. */
static void test_mem_grow_doubles_zeroes_and_refuses_overflow(void **state)
{
    (void)state;
    uint32_t *a = NULL;
    size_t cap = 0;
    assert_int_equal(mem_grow(&a, &cap, 0, sizeof *a, 16), 0);
    assert_null(a); /* nothing needed: nothing allocated */
    assert_int_equal(mem_grow(&a, &cap, 5, sizeof *a, 16), 0);
    assert_int_equal(cap, 16);
    for (size_t i = 0; i < cap; i++) {
        assert_int_equal(a[i], 0);
        a[i] = (uint32_t)(i + 1);
    }
    assert_int_equal(mem_grow(&a, &cap, 16, sizeof *a, 16), 0);
    assert_int_equal(cap, 16); /* already holds 16 */
    assert_int_equal(mem_grow(&a, &cap, 17, sizeof *a, 16), 0);
    assert_int_equal(cap, 32);
    assert_int_equal(mem_grow(&a, &cap, 100, sizeof *a, 16), 0);
    assert_int_equal(cap, 128); /* 32 -> 64 -> 128 */
    for (size_t i = 0; i < cap; i++)
        assert_int_equal(a[i], i < 16 ? i + 1 : 0);
    uint32_t *keep = a;
    assert_int_equal(mem_grow(&a, &cap, SIZE_MAX / 2, sizeof *a, 16), -1);
    assert_ptr_equal(a, keep);
    assert_int_equal(cap, 128);
    MEM_FREE_ALL(a);
}

/* err_first: the first failure's message stays, later ones are dropped, the flag is set. */
static void test_err_first_keeps_the_first_message(void **state)
{
    (void)state;
    err e = {0};
    int failed = 0;
    assert_int_equal(err_first(&e, &failed, "first: %d", 1), -1);
    assert_int_equal(failed, 1);
    assert_int_equal(e.kind, ERR_INPUT);
    assert_int_equal(err_first(&e, &failed, "second: %d", 2), -1);
    assert_string_equal(e.msg, "first: 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_mnemonics_are_unique_and_look_up_to_their_opcode),
        cmocka_unit_test(test_isa_nargs_counts_the_listed_operands),
        cmocka_unit_test(test_isa_slot_enums_match_the_table_for_every_family),
        cmocka_unit_test(test_isa_dtype_names_and_bits_round_trip),
        cmocka_unit_test(test_isa_dtype_bytes_rounds_int4_up_and_saturates),
        cmocka_unit_test(test_isa_encode_decode_round_trips_every_opcode),
        cmocka_unit_test(test_isa_decode_returns_zero_for_every_truncated_prefix),
        cmocka_unit_test(test_isa_decode_rejects_unknown_opcode),
        cmocka_unit_test(test_isa_decode_rejects_out_of_range_operand),
        cmocka_unit_test(test_isa_decode_rejects_overlong_varints),
        cmocka_unit_test(test_isa_validate_rejects_bad_instructions),
        cmocka_unit_test(test_isa_doc_lists_every_opcode_and_operand),
        cmocka_unit_test(test_mem_grow_doubles_zeroes_and_refuses_overflow),
        cmocka_unit_test(test_err_first_keeps_the_first_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
