# sample.s - the bundled sample trace: one sharded MLP slice, written by hand.
#
#   y = tanh-GELU(x @ W)   x: 1024 x 1024 bf16, W: 1024 x 1024 bf16 (this chip's shard)
#   then the bf16 result (2 MiB) is all-reduced over the x and y torus axes.
#
# K is tiled by 256 (the MXU height); each K step loads a 1024 x 256 slice of x and a
# 256 x 1024 slice of W into one of two VMEM buffers, so the DMA of step i+1 overlaps the
# matmuls of step i (double buffering through semaphores). N is split over MXUs 0..3
# (256 columns each); the fp32 partial sums stay in VMEM and accumulate (acc=1).
# Assemble with: tpusim asm traces/sample.s -o traces/sample.tpt
#
# VMEM map: buf0 x @0 (512 KiB), buf0 W @512K, buf1 x @1M, buf1 W @1536K,
#           accumulators 4 x (1024 x 256 fp32) @2M..6M, bf16 output @6M (2 MiB).
# Semaphores: 1/2 = buffer 0/1 filled (2 DMAs each), 3/4 = buffer 0/1 consumed
#             (4 matmuls each), 5 = last K step done.
.note "traces/sample.s: hand-written MLP slice (1024x1024x1024 bf16 GEMM, GELU, all-reduce)"

mark name="load"
dma.h2v hbm=0 vmem=0 bytes=512K stride=2K block=512 signal=1   # x[:, 0:256]
dma.h2v hbm=2M vmem=512K bytes=512K signal=1                   # W[0:256, :]
dma.h2v hbm=512 vmem=1M bytes=512K stride=2K block=512 signal=2 # x[:, 256:512]
dma.h2v hbm=2560K vmem=1536K bytes=512K signal=2               # W[256:512, :]

mark name="matmul"
k0:
sync.wait wait=1
sync.wait wait=1
mxu.ldw mxu=0 vmem=512K k=256 n=256 dtype=bf16
mxu.ldw mxu=1 vmem=640K k=256 n=256 dtype=bf16
mxu.ldw mxu=2 vmem=768K k=256 n=256 dtype=bf16
mxu.ldw mxu=3 vmem=896K k=256 n=256 dtype=bf16
mxu.matmul mxu=0 src=0 dst=2M m=1024 dtype=bf16 acc=0 signal=3
mxu.matmul mxu=1 src=0 dst=3M m=1024 dtype=bf16 acc=0 signal=3
mxu.matmul mxu=2 src=0 dst=4M m=1024 dtype=bf16 acc=0 signal=3
mxu.matmul mxu=3 src=0 dst=5M m=1024 dtype=bf16 acc=0 signal=3
# refill buffer 0 with K step 2 once its four matmuls are done
dma.h2v hbm=1K vmem=0 bytes=512K stride=2K block=512 wait=3 signal=1
sync.wait wait=3
sync.wait wait=3
sync.wait wait=3
dma.h2v hbm=3M vmem=512K bytes=512K signal=1

k1:
sync.wait wait=2
sync.wait wait=2
mxu.ldw mxu=0 vmem=1536K k=256 n=256 dtype=bf16
mxu.ldw mxu=1 vmem=1664K k=256 n=256 dtype=bf16
mxu.ldw mxu=2 vmem=1792K k=256 n=256 dtype=bf16
mxu.ldw mxu=3 vmem=1920K k=256 n=256 dtype=bf16
mxu.matmul mxu=0 src=1M dst=2M m=1024 dtype=bf16 acc=1 signal=4
mxu.matmul mxu=1 src=1M dst=3M m=1024 dtype=bf16 acc=1 signal=4
mxu.matmul mxu=2 src=1M dst=4M m=1024 dtype=bf16 acc=1 signal=4
mxu.matmul mxu=3 src=1M dst=5M m=1024 dtype=bf16 acc=1 signal=4
dma.h2v hbm=1536 vmem=1M bytes=512K stride=2K block=512 wait=4 signal=2
sync.wait wait=4
sync.wait wait=4
sync.wait wait=4
dma.h2v hbm=3584K vmem=1536K bytes=512K signal=2

k2:
sync.wait wait=1
sync.wait wait=1
mxu.ldw mxu=0 vmem=512K k=256 n=256 dtype=bf16
mxu.ldw mxu=1 vmem=640K k=256 n=256 dtype=bf16
mxu.ldw mxu=2 vmem=768K k=256 n=256 dtype=bf16
mxu.ldw mxu=3 vmem=896K k=256 n=256 dtype=bf16
mxu.matmul mxu=0 src=0 dst=2M m=1024 dtype=bf16 acc=1
mxu.matmul mxu=1 src=0 dst=3M m=1024 dtype=bf16 acc=1
mxu.matmul mxu=2 src=0 dst=4M m=1024 dtype=bf16 acc=1
mxu.matmul mxu=3 src=0 dst=5M m=1024 dtype=bf16 acc=1

k3:
sync.wait wait=2
sync.wait wait=2
mxu.ldw mxu=0 vmem=1536K k=256 n=256 dtype=bf16
mxu.ldw mxu=1 vmem=1664K k=256 n=256 dtype=bf16
mxu.ldw mxu=2 vmem=1792K k=256 n=256 dtype=bf16
mxu.ldw mxu=3 vmem=1920K k=256 n=256 dtype=bf16
mxu.matmul mxu=0 src=1M dst=2M m=1024 dtype=bf16 acc=1 signal=5
mxu.matmul mxu=1 src=1M dst=3M m=1024 dtype=bf16 acc=1 signal=5
mxu.matmul mxu=2 src=1M dst=4M m=1024 dtype=bf16 acc=1 signal=5
mxu.matmul mxu=3 src=1M dst=5M m=1024 dtype=bf16 acc=1 signal=5

mark name="gelu"
# tanh-GELU on the 1M fp32 results: 0.5 x (1 + tanh(0.79788 (x + 0.044715 x^3)))
v.mul src=2M dst=2M n=1M dtype=fp32 wait=5      # x^2 (the three other waits follow)
sync.wait wait=5
sync.wait wait=5
sync.wait wait=5
v.fma src=2M dst=2M n=1M dtype=fp32             # x + 0.044715 x^3
v.tanh src=2M dst=2M n=1M dtype=fp32
v.fma src=2M dst=2M n=1M dtype=fp32             # 0.5 x (1 + t)
v.cast src=2M dst=6M n=1M dtype=fp32 to=bf16 signal=6
dma.v2h hbm=8M vmem=6M bytes=2M wait=6 signal=7

mark name="allreduce"
ici.allreduce axes=xy bytes=2M dtype=bf16 wait=7
