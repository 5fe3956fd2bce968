mark name="allreduce \"grads\"\t\x01"
ici.send axis=x dir=+1 bytes=1M vmem=0 signal=3
ici.recv axis=y dir=-1 bytes=1M vmem=0
ici.allreduce axes=xyz bytes=4M dtype=bf16 wait=3
ici.allgather axes=xy bytes=4M dtype=bf16
ici.reducescatter axes=z bytes=4M dtype=fp32
ici.alltoall axes=yz bytes=4G dtype=int8
sync.signal signal=4095
sync.wait wait=4095
sync.barrier
nop
