/* code_plan.c - deciding, with capstone, where an arm64 function can take
 * an 8- or 4-byte jump: after a `bti` landing pad (which must stay first
 * for branch-target identification), inside the function, and where no
 * instruction of the function branches or points into the words the jump
 * replaces.  Pure: it looks at bytes handed in and never touches a process.
 *
 * The words a jump overwrites are never run elsewhere (no thread is in the
 * function when it is written, and the old code runs again only once
 * revert has put them back), so no PC-relative instruction among them
 * (adr, adrp, b, bl, b.cond, cbz, tbz, ldr literal) is ever moved: there is
 * nothing to relocate.
 *
 *   direct:    b imm26              (±128 MiB)
 *   indirect:  ldr x16, literal     (the address at a slot within ±1 MiB)
 *              br x16
 * x16 is IP0, which any call may find changed (a linker veneer uses it). */
#include <capstone/capstone.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "arch/arch.h"

#define FUNCTION_SCAN_MAX (1u << 20)

#define INSTRUCTION_B 0x14000000u
#define INSTRUCTION_B_MASK 0xfc000000u
#define INSTRUCTION_LDR_X16_LITERAL 0x58000010u
#define INSTRUCTION_BR_X16 0xd61f0200u
#define BTI_MASK 0xffffff3fu	/* bti, bti c, bti j, bti jc */
#define BTI 0xd503241fu
#define PACIASP 0xd503233fu
#define PACIBSP 0xd503237fu

static uint32_t word_at(const unsigned char *bytes)
{
	uint32_t word;

	memcpy(&word, bytes, sizeof(word));	/* arm64 Linux is little-endian */
	return word;
}

static void put_word(unsigned char *bytes, uint32_t word)
{
	memcpy(bytes, &word, sizeof(word));
}

/* A PC-relative field of `bits` bits counting 4-byte words, or false. */
static bool relative_words(uint64_t from, uint64_t to, unsigned bits, uint32_t *field)
{
	int64_t distance = (int64_t)(to - from), limit = (int64_t)1 << (bits + 1);

	if (distance % 4 != 0 || distance < -limit || distance >= limit)
		return false;
	*field = (uint32_t)(distance / 4) & ((1u << bits) - 1);
	return true;
}

bool code_encode_jump(uint64_t from, uint64_t to, unsigned char jump[HP_JUMP_SIZE])
{
	uint32_t field;

	if (from % 4 != 0 || !relative_words(from, to, 26, &field))
		return false;
	put_word(jump, INSTRUCTION_B | field);
	return true;
}

bool code_decode_jump(uint64_t from, const unsigned char bytes[HP_JUMP_SIZE], uint64_t *to)
{
	uint32_t word = word_at(bytes);
	int64_t words;

	if ((word & INSTRUCTION_B_MASK) != INSTRUCTION_B)
		return false;
	words = (int64_t)(word & 0x03ffffffu);
	if (words & 0x02000000)
		words -= 0x04000000;	/* sign-extend imm26 */
	*to = from + (uint64_t)(words * 4);
	return true;
}

bool code_encode_indirect_jump(uint64_t from, uint64_t pointer,
			       unsigned char jump[HP_INDIRECT_JUMP_SIZE])
{
	uint32_t field;

	if (from % 4 != 0 || pointer % 8 != 0 || !relative_words(from, pointer, 19, &field))
		return false;
	put_word(jump, INSTRUCTION_LDR_X16_LITERAL | field << 5);
	put_word(jump + 4, INSTRUCTION_BR_X16);
	return true;
}

/* The address a PC-relative instruction branches to or reads, if any: the
 * last immediate of a branch, adr or a literal load (capstone gives it
 * absolute).  adrp names a whole page, never a word of it: not counted. */
static bool target_of(csh handle, const cs_insn *instruction, uint64_t *target)
{
	const cs_arm64 *arm64 = &instruction->detail->arm64;
	bool relative = cs_insn_group(handle, instruction, CS_GRP_JUMP) ||
			cs_insn_group(handle, instruction, CS_GRP_CALL) ||
			instruction->id == ARM64_INS_ADR || instruction->id == ARM64_INS_LDR ||
			instruction->id == ARM64_INS_LDRSW || instruction->id == ARM64_INS_PRFM;

	if (!relative || arm64->op_count == 0 ||
	    arm64->operands[arm64->op_count - 1].type != ARM64_OP_IMM)
		return false;
	*target = (uint64_t)arm64->operands[arm64->op_count - 1].imm;
	return true;
}

static int scan_function(csh handle, const unsigned char *code, size_t size, uint64_t address,
			 uint64_t jump_address, size_t length, char *why, size_t why_size)
{
	cs_insn *instruction = cs_malloc(handle);
	const uint8_t *cursor = code;
	size_t left = (size > FUNCTION_SCAN_MAX ? FUNCTION_SCAN_MAX : size) & ~(size_t)3;
	uint64_t at = address, target;
	int status = HP_OK;

	if (!instruction) {
		snprintf(why, why_size, "capstone is out of memory");
		return HP_FAILED;
	}
	while (left > 0) {
		uint64_t instruction_address = at;

		if (!cs_disasm_iter(handle, &cursor, &left, &at, instruction)) {
			/* A literal pool or padding: data, not code. */
			cursor += 4;
			left -= 4;
			at += 4;
			continue;
		}
		if (target_of(handle, instruction, &target) && target > jump_address &&
		    target < jump_address + length) {
			snprintf(why, why_size,
				 "the instruction at +%" PRIu64 " (%s %s) branches into the first "
				 "%zu bytes, which the jump would overwrite",
				 instruction_address - address, instruction->mnemonic,
				 instruction->op_str, length);
			status = HP_MISFIT;
			break;
		}
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
		snprintf(why, why_size, "capstone cannot disassemble arm64");
		return HP_FAILED;
	}
	status = scan_function(handle, code, size, address, address + offset, length, why,
			       why_size);
	return status;
}

/* A function that signs its return address first (paciasp) is refused: a
 * jump over the paciasp would take away a landing pad that indirect calls
 * need in a BTI-guarded page, and a jump after it would have the
 * replacement sign the address a second time (its autiasp would then
 * leave it signed, and the return would fault). */
int code_plan_function(const unsigned char *code, size_t size, uint64_t address,
		       struct hp_code_plan *plan, char *why, size_t why_size)
{
	size_t offset = 0, length = HP_INDIRECT_JUMP_SIZE;
	int status;

	memset(plan, 0, sizeof(*plan));
	if (address % 4 != 0) {
		snprintf(why, why_size, "it does not start on an instruction (4-byte) boundary");
		return HP_MISFIT;
	}
	if (size >= 4 && (word_at(code) == PACIASP || word_at(code) == PACIBSP)) {
		snprintf(why, why_size,
			 "it signs its return address (paciasp), which hotpatch cannot patch yet");
		return HP_MISFIT;
	}
	if (size >= 4 && (word_at(code) & BTI_MASK) == BTI)
		offset = 4;
	/* Eight bytes allow an indirect jump (one jump to a far patch); four
	 * allow only a direct one (two jumps, through a trampoline). */
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

int code_find_syscall(const unsigned char *code, size_t size, uint64_t address,
		      uint64_t *found)
{
	const uint8_t *cursor = code;
	size_t left = size & ~(size_t)3;
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
		if (instruction->id == ARM64_INS_SVC) {
			*found = instruction_address;
			status = HP_OK;
			break;
		}
	}
	if (instruction)
		cs_free(instruction, 1);
	return status;
}
