/* clobbers.c - what an x86-64 instruction does to the registers a call may
 * change (rax rcx rdx rsi rdi r8-r11 and xmm0-15, one bit each) and where it
 * goes, for the build's reading of -fipa-ra (build_registers.c).  Pure: it
 * looks at instructions capstone decoded, with detail on. */
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"

#define GENERAL_COUNT 9
_Static_assert(HP_CLOBBERED_ALL == (UINT64_C(1) << (GENERAL_COUNT + 16)) - 1, "one bit a register");

/* The bit of a register name ("eax", "r9d", "ymm3"), or 0 if it is not
 * call-clobbered. */
static uint64_t register_bit(const char *name)
{
	static const char *const general[GENERAL_COUNT][4] = {
		{ "rax", "eax", "ax", "al" }, { "rcx", "ecx", "cx", "cl" },
		{ "rdx", "edx", "dx", "dl" }, { "rsi", "esi", "si", "sil" },
		{ "rdi", "edi", "di", "dil" }, { "r8", "r8d", "r8w", "r8b" },
		{ "r9", "r9d", "r9w", "r9b" }, { "r10", "r10d", "r10w", "r10b" },
		{ "r11", "r11d", "r11w", "r11b" },
	};
	char *end;
	long index;

	if (!name)
		return 0;
	if (!strcmp(name, "ah") || !strcmp(name, "ch") || !strcmp(name, "dh"))
		return 1u << (name[0] == 'a' ? 0 : name[0] == 'c' ? 1 : 2);
	for (unsigned i = 0; i < GENERAL_COUNT; i++)
		for (unsigned j = 0; j < 4; j++)
			if (!strcmp(name, general[i][j]))
				return 1u << i;
	if (strlen(name) < 4 || strncmp(name + 1, "mm", 2) != 0 ||
	    (name[0] != 'x' && name[0] != 'y' && name[0] != 'z'))
		return 0;
	index = strtol(name + 3, &end, 10);
	return *end == '\0' && index >= 0 && index < 16 ? 1u << (GENERAL_COUNT + index) : 0;
}

uint64_t code_clobbered_by(csh handle, const cs_insn *instruction)
{
	cs_regs read, written;
	uint8_t read_count = 0, written_count = 0;
	uint64_t clobbered = 0;

	if (cs_regs_access(handle, instruction, read, &read_count, written, &written_count) ==
	    CS_ERR_OK)
		for (uint8_t i = 0; i < written_count; i++)
			clobbered |= register_bit(cs_reg_name(handle, written[i]));
	return clobbered;
}

enum hp_flow code_flow(csh handle, const cs_insn *instruction, bool *direct, uint64_t *target)
{
	const cs_x86 *x86 = &instruction->detail->x86;

	*direct = x86->op_count == 1 && x86->operands[0].type == X86_OP_IMM;
	*target = *direct ? (uint64_t)x86->operands[0].imm : 0;
	if (cs_insn_group(handle, instruction, X86_GRP_JUMP))
		return HP_FLOW_JUMP;
	if (cs_insn_group(handle, instruction, X86_GRP_CALL))
		return HP_FLOW_CALL;
	return HP_FLOW_NEXT;
}
