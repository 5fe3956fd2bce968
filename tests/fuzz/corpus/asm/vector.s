mark name="softmax"
v.max src=0 dst=4096 n=1024 dtype=fp32
v.sub src=0 dst=4096 n=1024 dtype=fp32
v.exp src=4096 dst=8192 n=1024 dtype=fp32 ; transcendental
v.reduce src=8192 dst=12288 n=1024 dtype=fp32 width=128
v.rsqrt src=0 dst=0 n=8 dtype=bf16
v.cast src=0 dst=0 n=8 dtype=fp32 to=bf16
v.transpose src=0 dst=0 n=16384 dtype=bf16 width=128
v.fma src=0 dst=0 n=8 dtype=int8
v.select src=0 dst=0 n=8 dtype=fp8
v.log src=0 dst=0 n=8 dtype=int4
v.tanh src=0 dst=0 n=8 dtype=bf16
v.add src=0 dst=0 n=8 dtype=bf16
v.mul src=0 dst=0 n=8 dtype=bf16
v.min src=0 dst=0 n=8 dtype=bf16
