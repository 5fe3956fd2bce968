/* gen_frontends.c - frontends of the single-operator kinds and small networks: gemm,
 * elementwise, conv2d, MLP and attention, each building the workload IR (ir.h) of one chip.
 * Program inputs and outputs are persistent tensors; intermediate activations are
 * temporaries the memory plan reuses once dead. No instruction is written here. */
#include <stdio.h>

#include "gen.h"

/* C in the operands' floating-point type (bf16, fp8 -> bf16, as XLA types a bf16 dot), or
 * fp32 for integer and fp32 operands (the accumulator itself). */
int gen_fe_gemm(ir *p, const gen_opts *o)
{
    isa_dtype odt = o->dtype == ISA_DT_BF16 || o->dtype == ISA_DT_FP8 ? ISA_DT_BF16 : ISA_DT_FP32;
    int a = ir_param_new(p, "A", o->dtype, o->m, o->k);
    int b = ir_param_new(p, "B", o->dtype, o->k, o->n);
    int c = ir_param_new(p, "C", odt, o->m, o->n);
    ir_region(p, "gemm");
    return ir_matmul(p, a, b, c, o->m, o->n, o->k) < 0 ? -1 : 0;
}

int gen_fe_elementwise(ir *p, const gen_opts *o)
{
    const isa_info *inf = isa_info_of((unsigned)o->vop);
    int binary = inf->cost == ISA_COST_V_ELEM && o->vop != ISA_OP_V_CAST;
    int ternary = o->vop == ISA_OP_V_FMA || o->vop == ISA_OP_V_SELECT;
    unsigned nin = ternary ? 3 : binary ? 2 : 1;
    isa_dtype out =
        o->vop == ISA_OP_V_CAST ? (o->dtype == ISA_DT_FP32 ? ISA_DT_BF16 : ISA_DT_FP32) : o->dtype;
    int in[3], res;
    static const char *const names[3] = {"x", "y", "z"};
    for (unsigned i = 0; i < nin; i++)
        in[i] = ir_param_new(p, names[i], o->dtype, 1, o->elements);
    res = ir_param_new(p, "out", out, 1, o->elements);
    /* Inputs sit back to back in the chunk buffer, where a binary op reads its second
     * operand; the result goes to the output buffer. */
    ir_vop op = {.op = o->vop,
                 .src = 0,
                 .dst = nin,
                 .dt = o->dtype,
                 .width = o->vop == ISA_OP_V_CAST                                       ? out
                          : (o->vop == ISA_OP_V_REDUCE || o->vop == ISA_OP_V_TRANSPOSE) ? 128
                                                                                        : 0};
    ir_region(p, "elementwise/%s", inf->mnemonic + 2);
    return ir_fusion(p, o->elements, in, nin, &res, 1, &op, 1) < 0 ? -1 : 0;
}

int gen_fe_conv2d(ir *p, const gen_opts *o)
{
    isa_dtype dt = o->dtype;
    uint64_t P = (o->height + 2 * o->padding - o->kh) / o->stride + 1;
    uint64_t Q = (o->width + 2 * o->padding - o->kw) / o->stride + 1;
    uint64_t M = o->batch * P * Q, K = o->in_ch * o->kh * o->kw;
    int in = ir_param_new(p, "input", dt, o->batch * o->height * o->width, o->in_ch);
    int w = ir_param_new(p, "filter", dt, K, o->out_ch);
    int out = ir_param_new(p, "output", dt, M, o->out_ch);
    ir_region(p, "conv2d");
    return ir_conv2d(p, in, w, out, o->batch, o->height, o->width, o->in_ch, o->out_ch, o->kh,
                     o->kw, o->stride, o->padding) < 0
               ? -1
               : 0;
}

/* y_i = tanh(x_i W_i) for every layer but the last, the tanh fused into the matmul's output
 * tiles (applied to each fp32 block before the cast and write-back), as XLA fuses an
 * elementwise consumer into its producing dot. */
int gen_fe_mlp(ir *p, const gen_opts *o)
{
    isa_dtype dt = o->dtype;
    int x = ir_param_new(p, "x", dt, o->batch, o->sizes[0]);
    for (unsigned i = 0; i + 1 < o->nsizes; i++) {
        char nm[IR_NAME_MAX];
        int last = i + 2 >= o->nsizes;
        snprintf(nm, sizeof nm, "W%u", i);
        int w = ir_param_new(p, nm, dt, o->sizes[i], o->sizes[i + 1]);
        snprintf(nm, sizeof nm, "a%u", i);
        int y = last ? ir_param_new(p, "out", dt, o->batch, o->sizes[i + 1])
                     : ir_tensor_new(p, nm, dt, o->batch, o->sizes[i + 1]);
        ir_region(p, "L%u/fwd", i);
        int mm = ir_matmul(p, x, w, y, o->batch, o->sizes[i + 1], o->sizes[i]);
        if (mm < 0)
            return -1;
        ir_vop act = {.op = ISA_OP_V_TANH, .src = 0, .dst = 0, .dt = ISA_DT_FP32};
        if (!last && ir_matmul_epilogue(p, mm, NULL, 0, &act, 1) < 0)
            return -1;
        x = y;
    }
    return 0;
}

/* Q, K, V and O laid out [batch][seq][heads][head_dim]: rows of heads x head_dim. */
int gen_fe_attention(ir *p, const gen_opts *o)
{
    isa_dtype dt = o->dtype;
    uint64_t rows = o->batch * o->seq, cols = o->heads * o->head_dim;
    int in[3] = {ir_param_new(p, "Q", dt, rows, cols), ir_param_new(p, "K", dt, rows, cols),
                 ir_param_new(p, "V", dt, rows, cols)};
    int out = ir_param_new(p, "O", dt, rows, cols);
    ir_region(p, "attention");
    return ir_attention(p, in, 3, &out, 1, o->batch, o->heads, o->heads, o->seq, o->seq,
                        o->head_dim, o->causal, 0) < 0
               ? -1
               : 0;
}
