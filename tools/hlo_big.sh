#!/usr/bin/env bash
# hlo_big.sh [LAYERS] [BATCH] [WIDTH] - writes to stdout the HLO text of one SGD step of a deep
# tanh MLP with its layers unrolled (no scan), in XLA:TPU's after-optimisations style: a
# kOutput fusion per forward layer (dot + tanh + convert), a kLoop fusion per layer for the
# tanh derivative and one for the SGD update, bare dots for the weight and input gradients,
# every instruction with layouts, tiling and full metadata. The import-speed module of issue 16
# (the default 420 layers: 2.1 MB) and a closed form to check it by: MXU FLOPs
# 2 x BATCH x WIDTH^2 x (3 x LAYERS - 1) (forward, weight gradient, input gradient but the
# first layer's).
# Defaults: 420 layers, batch 256, width 1024.
set -eu
L=${1:-420} B=${2:-256} D=${3:-1024}
T='{1,0:T(8,128)(2,1)}' F='{1,0:T(8,128)}' S='{:T(256)}'
src='source_file="/home/user/deep_mlp.py"'
pre='jit(train_step)/jit(main)'

# the header: every weight, the input and the target; the updated weights and the loss out
params="bf16[$B,$D]$T, bf16[$B,$D]$T"
outs=""
for ((l = 0; l < L; l++)); do
    params+=", bf16[$D,$D]$T"
    outs+="bf16[$D,$D]$T, "
done
printf 'HloModule jit_train_step, is_scheduled=true, entry_computation_layout={(%s)->(%sf32[]%s)}, allow_spmd_sharding_propagation_to_parameters={false}, allow_spmd_sharding_propagation_to_output={false}\n\n' \
    "$params" "$outs" "$S"

printf 'region_add (x.0: f32[], y.0: f32[]) -> f32[] {\n  x.0 = f32[] parameter(0)\n  y.0 = f32[] parameter(1)\n  ROOT add.0 = f32[] add(x.0, y.0)\n}\n\n'

for ((l = 0; l < L; l++)); do
    dg="dot_general[dimension_numbers=(([1], [0]), ([], [])) precision=None preferred_element_type=float32]"
    cat <<EOF
fused_fwd.$l (param_0.$l: bf16[$B,$D], param_1.$l: bf16[$D,$D]) -> bf16[$B,$D] {
  param_0.$l = bf16[$B,$D]$T parameter(0)
  param_1.$l = bf16[$D,$D]$T parameter(1)
  dot.f$l = f32[$B,$D]$F dot(param_0.$l, param_1.$l), lhs_contracting_dims={1}, rhs_contracting_dims={0}, metadata={op_type="dot_general" op_name="$pre/layers_$l/$dg" $src source_line=14}
  tanh.f$l = f32[$B,$D]$F tanh(dot.f$l), metadata={op_type="tanh" op_name="$pre/layers_$l/tanh" $src source_line=15}
  ROOT convert.f$l = bf16[$B,$D]$T convert(tanh.f$l), metadata={op_type="convert_element_type" op_name="$pre/layers_$l/convert_element_type[new_dtype=bfloat16 weak_type=False]" $src source_line=15}
}

fused_tanh_bwd.$l (param_0.b$l: bf16[$B,$D], param_1.b$l: bf16[$B,$D]) -> bf16[$B,$D] {
  param_0.b$l = bf16[$B,$D]$T parameter(0)
  param_1.b$l = bf16[$B,$D]$T parameter(1)
  convert.b$l = f32[$B,$D]$F convert(param_1.b$l)
  multiply.b$l = f32[$B,$D]$F multiply(convert.b$l, convert.b$l), metadata={op_type="mul" op_name="$pre/transpose(jvp(layers_$l))/tanh/mul" $src source_line=15}
  constant.b$l = f32[]$S constant(1)
  broadcast.b$l = f32[$B,$D]$F broadcast(constant.b$l), dimensions={}
  subtract.b$l = f32[$B,$D]$F subtract(broadcast.b$l, multiply.b$l), metadata={op_type="sub" op_name="$pre/transpose(jvp(layers_$l))/tanh/sub" $src source_line=15}
  convert.c$l = f32[$B,$D]$F convert(param_0.b$l)
  multiply.c$l = f32[$B,$D]$F multiply(convert.c$l, subtract.b$l), metadata={op_type="mul" op_name="$pre/transpose(jvp(layers_$l))/tanh/mul" $src source_line=15}
  ROOT convert.d$l = bf16[$B,$D]$T convert(multiply.c$l)
}

fused_sgd.$l (param_0.s$l: bf16[$D,$D], param_1.s$l: bf16[$D,$D]) -> bf16[$D,$D] {
  param_0.s$l = bf16[$D,$D]$T parameter(0)
  param_1.s$l = bf16[$D,$D]$T parameter(1)
  constant.s$l = bf16[]{:T(512)} constant(0.001)
  broadcast.s$l = bf16[$D,$D]$T broadcast(constant.s$l), dimensions={}
  multiply.s$l = bf16[$D,$D]$T multiply(param_1.s$l, broadcast.s$l), metadata={op_type="mul" op_name="$pre/sgd/layers_$l/mul" $src source_line=31}
  ROOT subtract.s$l = bf16[$D,$D]$T subtract(param_0.s$l, multiply.s$l), metadata={op_type="sub" op_name="$pre/sgd/layers_$l/sub" $src source_line=31}
}

EOF
done

cat <<EOF
fused_loss (param_0.l: bf16[$B,$D], param_1.l: bf16[$B,$D]) -> (f32[], bf16[$B,$D]) {
  param_0.l = bf16[$B,$D]$T parameter(0)
  param_1.l = bf16[$B,$D]$T parameter(1)
  convert.l0 = f32[$B,$D]$F convert(param_0.l)
  convert.l1 = f32[$B,$D]$F convert(param_1.l)
  subtract.l = f32[$B,$D]$F subtract(convert.l0, convert.l1), metadata={op_type="sub" op_name="$pre/loss/sub" $src source_line=22}
  multiply.l = f32[$B,$D]$F multiply(subtract.l, subtract.l), metadata={op_type="integer_pow" op_name="$pre/loss/integer_pow" $src source_line=22}
  constant.l = f32[]$S constant(0)
  reduce.l = f32[]$S reduce(multiply.l, constant.l), dimensions={0,1}, to_apply=region_add, metadata={op_type="reduce_sum" op_name="$pre/loss/reduce_sum[axes=(0, 1)]" $src source_line=22}
  constant.g = f32[]$S constant(2)
  broadcast.g = f32[$B,$D]$F broadcast(constant.g), dimensions={}
  multiply.g = f32[$B,$D]$F multiply(subtract.l, broadcast.g), metadata={op_type="mul" op_name="$pre/transpose(jvp(loss))/mul" $src source_line=22}
  convert.g = bf16[$B,$D]$T convert(multiply.g)
  ROOT tuple.l = (f32[]$S, bf16[$B,$D]$T) tuple(reduce.l, convert.g)
}

EOF

# the entry: forward, loss, backward layer by layer from the last, SGD updates
printf 'ENTRY main.%d {\n' $((L * 9 + 7))
printf '  Arg_x = bf16[%s,%s]%s parameter(0), metadata={op_name="x"}\n' $B $D "$T"
printf '  Arg_y = bf16[%s,%s]%s parameter(1), metadata={op_name="y"}\n' $B $D "$T"
for ((l = 0; l < L; l++)); do
    printf '  Arg_w%d = bf16[%s,%s]%s parameter(%d), metadata={op_name="params[%d]"}\n' $l $D $D "$T" $((l + 2)) $l
done
h=Arg_x
for ((l = 0; l < L; l++)); do
    printf '  fusion.f%d = bf16[%s,%s]%s fusion(%s, Arg_w%d), kind=kOutput, calls=fused_fwd.%d, metadata={op_type="dot_general" op_name="%s" %s source_line=14}, backend_config={"flag_configs":[],"scoped_memory_configs":[],"used_scoped_memory_configs":[],"output_chunk_bound_config":{"output_chunk_bound":["%s","%s"]}}\n' \
        $l $B $D "$T" $h $l $l "$pre/layers_$l/dot_general" "$src" $B $D
    h=fusion.f$l
done
printf '  fusion.loss = (f32[]%s, bf16[%s,%s]%s) fusion(%s, Arg_y), kind=kLoop, calls=fused_loss, metadata={op_type="reduce_sum" op_name="%s" %s source_line=22}\n' \
    "$S" $B $D "$T" $h "$pre/loss/reduce_sum" "$src"
printf '  loss = f32[]%s get-tuple-element(fusion.loss), index=0\n' "$S"
printf '  dh.%d = bf16[%s,%s]%s get-tuple-element(fusion.loss), index=1\n' $((L - 1)) $B $D "$T"
for ((l = L - 1; l >= 0; l--)); do
    in=Arg_x
    [ $l -gt 0 ] && in=fusion.f$((l - 1))
    printf '  fusion.b%d = bf16[%s,%s]%s fusion(dh.%d, fusion.f%d), kind=kLoop, calls=fused_tanh_bwd.%d, metadata={op_type="mul" op_name="%s" %s source_line=15}\n' \
        $l $B $D "$T" $l $l $l "$pre/transpose(jvp(layers_$l))/tanh/mul" "$src"
    printf '  dot.w%d = bf16[%s,%s]%s dot(%s, fusion.b%d), lhs_contracting_dims={0}, rhs_contracting_dims={0}, metadata={op_type="dot_general" op_name="%s" %s source_line=14}\n' \
        $l $D $D "$T" $in $l "$pre/transpose(jvp(layers_$l))/dot_general[dimension_numbers=(([0], [0]), ([], [])) precision=None preferred_element_type=bfloat16]" "$src"
    if [ $l -gt 0 ]; then
        printf '  dh.%d = bf16[%s,%s]%s dot(fusion.b%d, Arg_w%d), lhs_contracting_dims={1}, rhs_contracting_dims={1}, metadata={op_type="dot_general" op_name="%s" %s source_line=14}\n' \
            $((l - 1)) $B $D "$T" $l $l "$pre/transpose(jvp(layers_$l))/dot_general[dimension_numbers=(([1], [1]), ([], [])) precision=None preferred_element_type=bfloat16]" "$src"
    fi
    printf '  fusion.s%d = bf16[%s,%s]%s fusion(Arg_w%d, dot.w%d), kind=kLoop, calls=fused_sgd.%d, metadata={op_type="sub" op_name="%s" %s source_line=31}\n' \
        $l $D $D "$T" $l $l $l "$pre/sgd/layers_$l/sub" "$src"
done
root=""
for ((l = 0; l < L; l++)); do root+="fusion.s$l, "; done
printf '  ROOT tuple.out = (%sf32[]%s) tuple(%sloss)\n}\n' "$outs" "$S" "$root"
