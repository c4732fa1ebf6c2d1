/* thunk.c - the arm64 assembly of the register-keeping thunk `hotpatch
 * build` puts in front of a replacement whose callers in the binary may
 * keep values in registers the old code left alone (build_plan.c): it keeps
 * every register the ABI lets a function change (x0-x18, q0-q7, q16-q31),
 * except the result's, and leaves the arguments where they are (no stack
 * arguments: checked by the build).  It reaches the fixed code with `bl`,
 * whose veneer (if the linker needs one) may change only x16 and x17, kept
 * here too.  The CFI lets the stack check unwind through it.  Pure: it
 * writes C source (a top-level __asm__) to a stream.
 *
 *   entry: bti c; stp x29, x30, [sp, #-16]!; mov x29, sp
 *          sub sp: vector registers (16 bytes each) below general ones (8)
 *          bl the fixed code; restore in reverse; ret */
#include <string.h>

#include "arch/arch.h"

#define GENERAL_COUNT 19
#define VECTOR_COUNT 24

/* The n-th vector register kept: q0-q7, then q16-q31. */
static unsigned vector_number(unsigned n)
{
	return n < 8 ? n : n + 8;
}

static void write_moves(FILE *file, const char *move, bool keep_x0, bool keep_q0)
{
	unsigned offset = 0;

	for (unsigned n = keep_q0 ? 0 : 1; n < VECTOR_COUNT; n++, offset += 16)
		fprintf(file, "\t\"\t%s q%u, [sp, #%u]\\n\"\n", move, vector_number(n), offset);
	for (unsigned x = keep_x0 ? 0 : 1; x < GENERAL_COUNT; x++, offset += 8)
		fprintf(file, "\t\"\t%s x%u, [sp, #%u]\\n\"\n", move, x, offset);
}

void code_write_thunk(FILE *file, const char *name, const char *code,
		      enum hp_result_register result)
{
	bool keep_x0 = result != HP_RESULT_INTEGER, keep_q0 = result != HP_RESULT_VECTOR;
	unsigned general = GENERAL_COUNT - !keep_x0, vector = VECTOR_COUNT - !keep_q0;
	unsigned room = (16 * vector + 8 * general + 15) & ~15u;

	fprintf(file, "__asm__(\"\t.section .text.%s,\\\"ax\\\",@progbits\\n\"\n", name);
	fprintf(file, "\t\"\t.p2align 2\\n\t.type %s, %%function\\n%s:\\n\"\n", name, name);
	fputs("\t\"\t.cfi_startproc\\n\thint #34\\n\"\n", file);	/* bti c */
	fputs("\t\"\tstp x29, x30, [sp, #-16]!\\n\t.cfi_def_cfa_offset 16\\n\"\n", file);
	fputs("\t\"\t.cfi_offset 29, -16\\n\t.cfi_offset 30, -8\\n\"\n", file);
	fputs("\t\"\tmov x29, sp\\n\t.cfi_def_cfa_register 29\\n\"\n", file);
	fprintf(file, "\t\"\tsub sp, sp, #%u\\n\"\n", room);
	write_moves(file, "str", keep_x0, keep_q0);
	fprintf(file, "\t\"\tbl %s\\n\"\n", code);
	write_moves(file, "ldr", keep_x0, keep_q0);
	fputs("\t\"\tmov sp, x29\\n\t.cfi_def_cfa_register sp\\n\"\n", file);
	fputs("\t\"\tldp x29, x30, [sp], #16\\n\t.cfi_def_cfa_offset 0\\n\"\n", file);
	fputs("\t\"\t.cfi_restore 29\\n\t.cfi_restore 30\\n\"\n", file);
	fprintf(file, "\t\"\tret\\n\t.cfi_endproc\\n\t.size %s, .-%s\\n\t.previous\\n\");\n", name,
		name);
}
