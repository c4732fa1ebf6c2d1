/* thunk.c - the x86-64 assembly of the register-keeping thunk `hotpatch
 * build` puts in front of a replacement whose callers in the binary may
 * keep values in registers the old code left alone (build_plan.c): it keeps
 * every register the ABI lets a function change, except the result's, and
 * leaves the arguments where they are (no stack arguments: checked by the
 * build).  The CFI lets the stack check unwind through it.  Pure: it
 * writes C source (a top-level __asm__) to a stream.
 *
 *   entry (rsp = 8 mod 16): endbr64; push the general registers;
 *   sub: room for xmm0-15 (and 8 more bytes when needed to align);
 *   call the fixed code; restore in reverse; ret */
#include <string.h>

#include "arch/arch.h"

void code_write_thunk(FILE *file, const char *name, const char *code,
		      enum hp_result_register result)
{
	static const char *const general[] = { "rdi", "rsi", "rdx", "rcx", "r8",
					       "r9",  "r10", "r11", "rax" };
	bool keep[HP_ARRAY_SIZE(general)];
	unsigned pushed = 0, xmm_first = result == HP_RESULT_VECTOR ? 1 : 0;
	unsigned room;

	/* Simple results are one register: rax or xmm0 (never rdx:rax). */
	for (size_t i = 0; i < HP_ARRAY_SIZE(general); i++) {
		keep[i] = strcmp(general[i], "rax") != 0 || result != HP_RESULT_INTEGER;
		pushed += keep[i];
	}
	room = 16 * (16 - xmm_first) + ((8 + 8 * pushed) % 16 ? 8 : 0);
	fprintf(file, "__asm__(\"\t.section .text.%s,\\\"ax\\\",@progbits\\n\"\n", name);
	fprintf(file, "\t\"\t.p2align 4\\n\t.type %s, @function\\n%s:\\n\"\n", name, name);
	fputs("\t\"\t.cfi_startproc\\n\tendbr64\\n\"\n", file);
	for (size_t i = 0; i < HP_ARRAY_SIZE(general); i++)
		if (keep[i])
			fprintf(file, "\t\"\tpushq %%%s\\n\t.cfi_adjust_cfa_offset 8\\n\"\n",
				general[i]);
	fprintf(file, "\t\"\tsubq $%u, %%rsp\\n\t.cfi_adjust_cfa_offset %u\\n\"\n", room, room);
	for (unsigned x = xmm_first; x < 16; x++)
		fprintf(file, "\t\"\tmovdqu %%xmm%u, %u(%%rsp)\\n\"\n", x, 16 * (x - xmm_first));
	fprintf(file, "\t\"\tcall %s\\n\"\n", code);
	for (unsigned x = xmm_first; x < 16; x++)
		fprintf(file, "\t\"\tmovdqu %u(%%rsp), %%xmm%u\\n\"\n", 16 * (x - xmm_first), x);
	fprintf(file, "\t\"\taddq $%u, %%rsp\\n\t.cfi_adjust_cfa_offset -%u\\n\"\n", room, room);
	for (size_t i = HP_ARRAY_SIZE(general); i-- > 0;)
		if (keep[i])
			fprintf(file, "\t\"\tpopq %%%s\\n\t.cfi_adjust_cfa_offset -8\\n\"\n",
				general[i]);
	fprintf(file, "\t\"\tret\\n\t.cfi_endproc\\n\t.size %s, .-%s\\n\t.previous\\n\");\n", name,
		name);
}
