/* return_sites.c - where a suspended frame can come back into a piece of
 * arm64 code: the address right after each `bl` or `blr`, found by a
 * linear sweep with capstone.  Pure: it looks at bytes handed in and never
 * touches a process. */
#include <capstone/capstone.h>

#include "arch/arch.h"

size_t code_return_sites(const unsigned char *code, size_t size, uint64_t address,
			 uint64_t *sites, size_t capacity)
{
	csh handle;
	cs_insn *instruction;
	const uint8_t *cursor = code;
	size_t left = size & ~(size_t)3, count = 0;
	uint64_t at = address;

	if (code_disassembler(&handle) != CS_ERR_OK)
		return 0;
	instruction = cs_malloc(handle);
	while (instruction && left > 0 && count < capacity) {
		if (!cs_disasm_iter(handle, &cursor, &left, &at, instruction)) {
			/* Not code (a literal pool, padding): the next word. */
			cursor += 4;
			left -= 4;
			at += 4;
			continue;
		}
		/* A call that ends the code never returns there (a noreturn
		 * callee): that address is where the next function starts. */
		if ((instruction->id == ARM64_INS_BL || instruction->id == ARM64_INS_BLR) &&
		    at < address + size)
			sites[count++] = at;
	}
	if (instruction)
		cs_free(instruction, 1);
	return count;
}
