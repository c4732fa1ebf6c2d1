/* code_plan.c - deciding, with capstone, where a function can take a 6- or
 * 5-byte jump: on an instruction boundary (after endbr64, which must stay first for
 * indirect-branch tracking), inside the function, and where no instruction
 * of the function branches into the bytes the jump replaces.  Pure: it looks
 * at bytes handed in and never touches a process. */
#include <capstone/capstone.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "arch/arch.h"

#define FUNCTION_SCAN_MAX (1u << 20)

static const unsigned char endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };

bool code_encode_jump(uint64_t from, uint64_t to, unsigned char jump[HP_JUMP_SIZE])
{
	int64_t distance = (int64_t)(to - (from + HP_JUMP_SIZE));
	int32_t relative = (int32_t)distance;

	if ((int64_t)relative != distance)
		return false;
	jump[0] = 0xe9;
	memcpy(jump + 1, &relative, sizeof(relative));
	return true;
}

bool code_decode_jump(uint64_t from, const unsigned char bytes[HP_JUMP_SIZE], uint64_t *to)
{
	int32_t relative;

	if (bytes[0] != 0xe9)
		return false;
	memcpy(&relative, bytes + 1, sizeof(relative));
	*to = from + HP_JUMP_SIZE + (uint64_t)(int64_t)relative;
	return true;
}

/* Where an instruction may transfer control or point to, if it says so. */
static bool points_into(csh handle, const cs_insn *instruction, uint64_t low, uint64_t high,
			uint64_t *where)
{
	const cs_x86 *x86 = &instruction->detail->x86;
	bool branch = cs_insn_group(handle, instruction, CS_GRP_JUMP) ||
		      cs_insn_group(handle, instruction, CS_GRP_CALL);

	for (uint8_t i = 0; i < x86->op_count; i++) {
		const cs_x86_op *operand = &x86->operands[i];
		uint64_t address;

		if (branch && operand->type == X86_OP_IMM)
			address = (uint64_t)operand->imm;
		else if (operand->type == X86_OP_MEM && operand->mem.base == X86_REG_RIP)
			address = instruction->address + instruction->size +
				  (uint64_t)operand->mem.disp;
		else
			continue;
		if (address > low && address < high) {
			*where = address;
			return true;
		}
	}
	return false;
}

static int scan_function(csh handle, const unsigned char *code, size_t size, uint64_t address,
			 uint64_t jump_address, size_t length, char *why, size_t why_size)
{
	cs_insn *instruction = cs_malloc(handle);
	const uint8_t *cursor = code;
	size_t left = size > FUNCTION_SCAN_MAX ? FUNCTION_SCAN_MAX : size;
	uint64_t at = address, target;
	int status = HP_OK;
	bool boundary = false;

	if (!instruction) {
		snprintf(why, why_size, "capstone is out of memory");
		return HP_FAILED;
	}
	while (left > 0) {
		uint64_t instruction_address = at;

		if (!cs_disasm_iter(handle, &cursor, &left, &at, instruction)) {
			snprintf(why, why_size, "the bytes at +%" PRIu64 " are not an instruction",
				 instruction_address - address);
			status = HP_MISFIT;
			break;
		}
		if (instruction_address == jump_address)
			boundary = true;
		if (points_into(handle, instruction, jump_address, jump_address + length, &target)) {
			snprintf(why, why_size,
				 "the instruction at +%" PRIu64 " (%s %s) branches into the first "
				 "%zu bytes, which the jump would overwrite",
				 instruction_address - address, instruction->mnemonic,
				 instruction->op_str, length);
			status = HP_MISFIT;
			break;
		}
	}
	if (status == HP_OK && !boundary) {
		snprintf(why, why_size, "no instruction starts where the jump would go");
		status = HP_MISFIT;
	}
	cs_free(instruction, 1);
	return status;
}

/* Checks `length` bytes at the jump site; HP_OK when they can be overwritten. */
static int plan_length(const unsigned char *code, size_t size, uint64_t address, size_t offset,
		       size_t length, char *why, size_t why_size)
{
	csh handle;
	int status;

	if (size < offset + length) {
		snprintf(why, why_size, "it is %zu bytes long; a jump needs %zu", size,
			 offset + length);
		return HP_MISFIT;
	}
	if (code_disassembler(&handle) != CS_ERR_OK) {
		snprintf(why, why_size, "capstone cannot disassemble x86-64");
		return HP_FAILED;
	}
	status = scan_function(handle, code, size, address, address + offset, length, why,
			       why_size);
	return status;
}

int code_plan_function(const unsigned char *code, size_t size, uint64_t address,
		       struct hp_code_plan *plan, char *why, size_t why_size)
{
	size_t offset = 0, length = HP_INDIRECT_JUMP_SIZE;
	int status;

	memset(plan, 0, sizeof(*plan));
	if (size >= sizeof(endbr64) && memcmp(code, endbr64, sizeof(endbr64)) == 0)
		offset = sizeof(endbr64);
	/* Six bytes allow an indirect jump (one jump to a far patch); five
	 * allow only a relative one (two jumps, through a trampoline). */
	status = plan_length(code, size, address, offset, length, why, why_size);
	if (status == HP_MISFIT) {
		length = HP_JUMP_SIZE;
		status = plan_length(code, size, address, offset, length, why, why_size);
	}
	if (status != HP_OK)
		return status;
	plan->jump_address = address + offset;
	plan->length = length;
	memcpy(plan->saved, code + offset, length);
	return HP_OK;
}

bool code_encode_indirect_jump(uint64_t from, uint64_t pointer,
			       unsigned char jump[HP_INDIRECT_JUMP_SIZE])
{
	int64_t distance = (int64_t)(pointer - (from + HP_INDIRECT_JUMP_SIZE));
	int32_t relative = (int32_t)distance;

	if ((int64_t)relative != distance)
		return false;
	jump[0] = 0xff;	/* jmp *disp32(%rip) */
	jump[1] = 0x25;
	memcpy(jump + 2, &relative, sizeof(relative));
	return true;
}

int code_find_syscall(const unsigned char *code, size_t size, uint64_t address,
		      uint64_t *found)
{
	const uint8_t *cursor = code;
	size_t left = size;
	uint64_t at = address;
	cs_insn *instruction;
	int status = HP_MISFIT;
	csh handle;

	if (code_disassembler(&handle) != CS_ERR_OK)
		return HP_FAILED;
	instruction = cs_malloc(handle);
	while (instruction && left > 0) {
		uint64_t instruction_address = at;

		if (!cs_disasm_iter(handle, &cursor, &left, &at, instruction))
			break;
		if (instruction->id == X86_INS_SYSCALL) {
			*found = instruction_address;
			status = HP_OK;
			break;
		}
	}
	if (instruction)
		cs_free(instruction, 1);
	return status;
}
