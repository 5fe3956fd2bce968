/* lower.h - the lowering passes from the workload IR (ir.h) to a trace, in pipeline order:
 *
 *   frontend -> ir -> lower_tile (expand, VMEM tiling) -> lower_mem (layout, HBM plan)
 *            -> lower_emit (instructions, synchronisation) -> trace
 *
 * Each pass reads the ir and writes it (or the trace); each can be run alone on a
 * hand-built ir (tests/test_ir.c). docs/generators.md documents every decision. */
#ifndef TPU_LOWER_H
#define TPU_LOWER_H

#include "ir.h"

/* lower_tile.c: rewrite ops without a kernel (IR_CONV2D -> an implicit-GEMM IR_MATMUL that
 * reads its patches from the input) and choose every matmul's tiling (op->tile). Returns 0, or -1
 * with e filled (a GEMM whose smallest tiling does not fit VMEM). */
int lower_tile(ir *p, err *e);

/* lower_mem.c: give every tensor without a pitch the layout pitch, compute root tensors'
 * bytes and lifetimes (first and last op; persistent tensors and async collectives' buffers
 * until their wait), and assign HBM addresses first-fit in order of first use, largest
 * first, reusing the space of tensors already dead. Fills ir_mem(p). Fails (ERR_INPUT) when
 * the peak exceeds `hbm_bytes`, naming the largest tensors live at the peak. */
int lower_mem(ir *p, uint64_t hbm_bytes, err *e);

/* lower_emit.c: the trace of p (after lower_tile and lower_mem) into `path` with header
 * `note`. Returns 0, or -1 with e filled (the trace is removed). */
int lower_emit(const ir *p, const char *path, const char *note, err *e);

/* Tiling search of one GEMM (exposed for tests and docs): see lower_tile.c. */
int lower_gemm_tile(const cfg *c, uint64_t vmem, uint64_t m, uint64_t n, uint64_t k, isa_dtype dt,
                    isa_dtype out_dt, ir_gemm_tile *t, err *e);
/* The same for a GEMM with a fused epilogue reading nextra more [mt, ng] tiles per block. */
int lower_gemm_tile_epi(const cfg *c, uint64_t vmem, uint64_t m, uint64_t n, uint64_t k,
                        isa_dtype dt, isa_dtype out_dt, unsigned nextra, ir_gemm_tile *t, err *e);
/* HBM bytes GEMM tiling t moves for m x n x k (A and B in dt, C written in out_dt). */
uint64_t lower_gemm_traffic(const ir_gemm_tile *t, uint64_t m, uint64_t n, uint64_t k, isa_dtype dt,
                            isa_dtype out_dt);

#endif
