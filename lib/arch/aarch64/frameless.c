/* frameless.c - arm64 code a thread can be unwound out of without unwind
 * information: a leaf that leaves the stack pointer, the callee-saved
 * registers and x30 alone, so its caller is at x30 with the same stack.
 * The vDSO is built so and carries no .eh_frame; so are PLT entries, which
 * GNU ld gives none on arm64.  Pure: it looks at bytes handed in and never
 * touches a process. */
#include <capstone/capstone.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"

/* The hints that sign, authenticate or strip x30 in place (paciasp,
 * pacibsp, autiasp, autibsp, their z forms, xpaclri): the return address
 * they leave is the same once its signature is taken off. */
static bool signs_link_register(uint32_t word)
{
	static const uint32_t hints[] = { 0xd503233f, 0xd503237f, 0xd50323bf, 0xd50323ff,
					  0xd503231f, 0xd503235f, 0xd503239f, 0xd50323df,
					  0xd50320ff };

	for (size_t i = 0; i < HP_ARRAY_SIZE(hints); i++)
		if (word == hints[i])
			return true;
	return false;
}

/* A register a caller expects back as it was: sp, x19-x30 (fp, lr), and
 * v8-v15, whose low halves are kept across calls. */
static bool kept_for_the_caller(const char *name)
{
	char *end;
	long index;

	if (!name)
		return true;	/* unnamed: assume the worst */
	if (strcmp(name, "sp") == 0 || strcmp(name, "wsp") == 0 || strcmp(name, "fp") == 0 ||
	    strcmp(name, "lr") == 0)
		return true;
	if (!strchr("xwvqdshb", name[0]) || name[1] < '0' || name[1] > '9')
		return false;
	index = strtol(name + 1, &end, 10);
	if (*end != '\0')
		return false;
	if (name[0] == 'x' || name[0] == 'w')
		return index >= 19 && index <= 30;
	return index >= 8 && index <= 15;
}

/* Whether `instruction` leaves everything a caller keeps as it was. */
static bool keeps_the_frame(csh handle, const cs_insn *instruction)
{
	const cs_arm64 *arm64 = &instruction->detail->arm64;
	cs_regs read, written;
	uint8_t read_count = 0, written_count = 0;

	if (instruction->id == ARM64_INS_BL || instruction->id == ARM64_INS_BLR)
		return false;	/* a call writes x30 */
	/* The kernel gives every register back but x0; capstone 4 says svc
	 * writes x30. */
	if (instruction->id == ARM64_INS_SVC)
		return true;
	if (cs_regs_access(handle, instruction, read, &read_count, written, &written_count) !=
	    CS_ERR_OK)
		return false;
	for (uint8_t i = 0; i < written_count; i++)
		if (kept_for_the_caller(cs_reg_name(handle, written[i])))
			return false;
	/* A pre- or post-indexed access moves its base register, which
	 * capstone does not always list as written. */
	if (arm64->writeback)
		for (uint8_t i = 0; i < arm64->op_count; i++)
			if (arm64->operands[i].type == ARM64_OP_MEM &&
			    kept_for_the_caller(cs_reg_name(handle, arm64->operands[i].mem.base)))
				return false;
	return true;
}

/* `ret` or `ret x30`: a return to the address the caller left in x30. */
static bool returns_to_x30(csh handle, const cs_insn *instruction)
{
	const cs_arm64 *arm64 = &instruction->detail->arm64;
	const char *name;

	if (instruction->id != ARM64_INS_RET)
		return false;
	if (arm64->op_count == 0)
		return true;
	name = cs_reg_name(handle, arm64->operands[0].reg);
	return arm64->operands[0].type == ARM64_OP_REG && name &&
	       (strcmp(name, "x30") == 0 || strcmp(name, "lr") == 0);
}

bool code_frameless(const unsigned char *code, size_t size, uint64_t address)
{
	csh handle;
	cs_insn *instruction;
	const uint8_t *cursor = code;
	size_t left = size;
	uint64_t at = address;
	bool returns = false, kept = size > 0 && size % 4 == 0 && address % 4 == 0;

	if (!kept || code_disassembler(&handle) != CS_ERR_OK)
		return false;
	instruction = cs_malloc(handle);
	kept = instruction != NULL;
	while (kept && left > 0) {
		uint32_t word;

		memcpy(&word, cursor, sizeof(word));
		if (signs_link_register(word)) {
			cursor += 4;
			left -= 4;
			at += 4;
			continue;
		}
		/* An instruction capstone cannot read could do anything. */
		kept = cs_disasm_iter(handle, &cursor, &left, &at, instruction) &&
		       keeps_the_frame(handle, instruction);
		if (kept && instruction->id == ARM64_INS_RET)
			kept = returns = returns_to_x30(handle, instruction);
	}
	if (instruction)
		cs_free(instruction, 1);
	return kept && returns;
}

/* adrp x16, page; ldr x17, [x16, #offset]; add x16, x16, #offset; br x17:
 * only x16 and x17 (the call-clobbered scratch registers the ABI gives
 * linkers) change.  PLT0, which pushes x16 and x30, does not match. */
bool code_is_call_stub(const unsigned char bytes[HP_CALL_STUB_SIZE])
{
	static const uint32_t masks[4] = { 0x9f00001f, 0xffc003ff, 0xffc003ff, 0xffffffff };
	static const uint32_t values[4] = { 0x90000010, 0xf9400211, 0x91000210, 0xd61f0220 };

	for (size_t i = 0; i < 4; i++) {
		uint32_t word;

		memcpy(&word, bytes + 4 * i, sizeof(word));
		if ((word & masks[i]) != values[i])
			return false;
	}
	return true;
}
