/* asm.h - text assembly for tpusim traces.
 *
 * One instruction per line: `mnemonic key=value ... [wait=S] [signal=S]`, operands in any
 * order, `#` or `;` starts a comment, `label:` defines a label (labels are documentation:
 * the ISA has no branches), `.note "text"` sets the trace note. The disassembler prints the
 * canonical form (every operand, table order), so asm(disasm(t)) reproduces t exactly. */
#ifndef TPU_ASM_H
#define TPU_ASM_H

#include <stdio.h>

#include "err.h"
#include "isa.h"

/* Parse one line into *in. Returns 1 if an instruction was parsed, 0 for a blank, comment
 * or label line, -1 on error with e = "FILE:LINE: what was expected". If the line is a
 * `.note` directive, copies the text into note (note_cap bytes) and returns 0. */
int asm_parse_line(const char *line, const char *file, unsigned lineno, isa_insn *in, char *note,
                   size_t note_cap, err *e);
/* Print the canonical text of one instruction (no newline) into buf; returns length. */
int asm_format(const isa_insn *in, char *buf, size_t cap);

/* Assemble a whole file into a trace; on error no output file is left. */
int asm_file(const char *in_path, const char *out_path, err *e);
/* Disassemble a trace to out (a `.note` line first when the trace has a note). */
int asm_disasm_file(const char *in_path, FILE *out, err *e);

#endif
