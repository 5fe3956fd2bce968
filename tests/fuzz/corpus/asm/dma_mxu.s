.note "seed: dma + matmul with semaphores"
# load weights and operand, multiply, write back
start:
dma.h2v hbm=0 vmem=0 bytes=32K signal=0
dma.h2v hbm=0x10000 vmem=32768 bytes=32768 stride=1024 block=512 signal=1
mxu.ldw mxu=0 vmem=0 k=128 n=128 dtype=bf16 wait=0
mxu.matmul mxu=0 src=32768 dst=65536 m=128 dtype=bf16 acc=1 wait=1 signal=2
dma.v2h hbm=0x20000 vmem=65536 bytes=64K wait=2
