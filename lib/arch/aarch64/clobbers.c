/* clobbers.c - what an arm64 instruction does to the registers a call may
 * change (x0-x18, v0-v7 and v16-v31, one bit each; v8-v15 keep their low
 * halves across calls and are not counted) and where it goes, for the
 * build's reading of -fipa-ra (build_registers.c).  Pure: it looks at
 * instructions capstone decoded, with detail on. */
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"

#define GENERAL_COUNT 19	/* x0-x18 */
#define VECTOR_LOW 8		/* v0-v7 */
_Static_assert(HP_CLOBBERED_ALL == (UINT64_C(1) << (GENERAL_COUNT + VECTOR_LOW + 16)) - 1,
	       "one bit a register");

/* The bit of a register name ("x3", "w18", "q0", "d17", "v20"), or 0 if it
 * is not call-clobbered. */
static uint64_t register_bit(const char *name)
{
	char *end;
	long index;

	if (!name || !strchr("xwvqdshb", name[0]) || name[1] < '0' || name[1] > '9')
		return 0;
	index = strtol(name + 1, &end, 10);
	if (*end != '\0' || index < 0 || index > 31)
		return 0;
	if (name[0] == 'x' || name[0] == 'w')
		return index < GENERAL_COUNT ? UINT64_C(1) << index : 0;
	if (index < VECTOR_LOW)
		return UINT64_C(1) << (GENERAL_COUNT + index);
	if (index >= 16)
		return UINT64_C(1) << (GENERAL_COUNT + VECTOR_LOW + index - 16);
	return 0;
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

/* b, b.cond, cbz, tbz and bl name their target as their last operand; br,
 * blr and ret go through a register; ret is a return, not a jump. */
enum hp_flow code_flow(csh handle, const cs_insn *instruction, bool *direct, uint64_t *target)
{
	const cs_arm64 *arm64 = &instruction->detail->arm64;

	*direct = arm64->op_count >= 1 &&
		  arm64->operands[arm64->op_count - 1].type == ARM64_OP_IMM;
	*target = *direct ? (uint64_t)arm64->operands[arm64->op_count - 1].imm : 0;
	if (instruction->id == ARM64_INS_RET)
		return HP_FLOW_NEXT;
	if (cs_insn_group(handle, instruction, ARM64_GRP_CALL) || instruction->id == ARM64_INS_BL ||
	    instruction->id == ARM64_INS_BLR)
		return HP_FLOW_CALL;
	if (cs_insn_group(handle, instruction, ARM64_GRP_JUMP))
		return HP_FLOW_JUMP;
	*direct = false;
	return HP_FLOW_NEXT;
}
