/* build_registers.c - which call-clobbered registers a function of the
 * binary may change, as GCC's -fipa-ra saw it when it compiled the
 * function's callers: the registers its instructions write, and everything
 * for a call it cannot see into (another object, a pointer).  A function
 * that may change them all leaves its callers nothing to rely on; one that
 * leaves some alone needs its replacement to leave them alone too.  Reads
 * the binary's code with capstone; never runs anything. */
#include <capstone/capstone.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build/build.h"
#include "arch/arch.h"

#define SCAN_DEPTH_MAX 8
#define SCAN_FUNCTIONS_MAX 64
#define FUNCTION_BYTES_MAX (1u << 20)

/* rax rcx rdx rsi rdi r8 r9 r10 r11, then xmm0-15. */
#define GENERAL_COUNT 9
#define ALL_CLOBBERED ((1u << (GENERAL_COUNT + 16)) - 1)

struct scan {
	const struct build_binary *binary;
	int fd;
	Elf *elf;
	csh handle;
	uint32_t clobbered;
	size_t visited_count;
	uint64_t visited[SCAN_FUNCTIONS_MAX];
};

/* The bit of a register name ("eax", "r9d", "ymm3"), or 0 if it is not
 * call-clobbered. */
static uint32_t register_bit(const char *name)
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

static const struct hp_symbol *function_containing(const struct build_binary *binary,
							     uint64_t address)
{
	for (size_t i = 0; i < binary->elf.symbol_count; i++) {
		const struct hp_symbol *s = &binary->elf.symbols[i];

		if (s->type == STT_FUNC && s->size && address >= s->value &&
		    address < s->value + s->size)
			return s;
	}
	return NULL;
}

/* The function's bytes, read from the file at its address; NULL if not. */
static unsigned char *read_code(struct scan *scan, uint64_t address, uint64_t size)
{
	size_t count = 0;
	unsigned char *bytes;

	if (size == 0 || size > FUNCTION_BYTES_MAX || elf_getphdrnum(scan->elf, &count) != 0)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		GElf_Phdr header;

		if (!gelf_getphdr(scan->elf, (int)i, &header) || header.p_type != PT_LOAD ||
		    address < header.p_vaddr || address + size > header.p_vaddr + header.p_filesz)
			continue;
		bytes = malloc(size);
		if (bytes && pread(scan->fd, bytes, size, (off_t)(header.p_offset + address -
								   header.p_vaddr)) == (ssize_t)size)
			return bytes;
		free(bytes);
		return NULL;
	}
	return NULL;
}

static void scan_function(struct scan *scan, uint64_t start, uint64_t size, unsigned depth);

/* A call (or a jump out of the function) to `target`. */
static void scan_call(struct scan *scan, const cs_x86 *x86, unsigned depth)
{
	const struct hp_symbol *callee;

	if (x86->op_count != 1 || x86->operands[0].type != X86_OP_IMM) {
		scan->clobbered = ALL_CLOBBERED;	/* through a pointer: anything */
		return;
	}
	/* Into the middle of one (a .cold part, say): the whole of it, as GCC
	 * counts a function's cold part as its own. */
	callee = function_containing(scan->binary, (uint64_t)x86->operands[0].imm);
	if (!callee)
		scan->clobbered = ALL_CLOBBERED;	/* the PLT: another object */
	else
		scan_function(scan, callee->value, callee->size, depth + 1);
}

static void scan_instruction(struct scan *scan, const cs_insn *instruction, uint64_t start,
			     uint64_t end, unsigned depth)
{
	cs_regs read, written;
	uint8_t read_count = 0, written_count = 0;
	const cs_x86 *x86 = &instruction->detail->x86;
	bool call = cs_insn_group(scan->handle, instruction, X86_GRP_CALL);
	bool jump = cs_insn_group(scan->handle, instruction, X86_GRP_JUMP);

	if (cs_regs_access(scan->handle, instruction, read, &read_count, written, &written_count) ==
	    CS_ERR_OK)
		for (uint8_t i = 0; i < written_count; i++)
			scan->clobbered |= register_bit(cs_reg_name(scan->handle, written[i]));
	/* Jumps inside the function (and through switch tables) stay in it. */
	if (jump && x86->op_count == 1 && x86->operands[0].type == X86_OP_IMM &&
	    ((uint64_t)x86->operands[0].imm < start || (uint64_t)x86->operands[0].imm >= end))
		scan_call(scan, x86, depth);
	else if (call)
		scan_call(scan, x86, depth);
}

static void scan_function(struct scan *scan, uint64_t start, uint64_t size, unsigned depth)
{
	unsigned char *bytes;
	const uint8_t *cursor;
	size_t left;
	uint64_t at = start;
	cs_insn *instruction;

	for (size_t i = 0; i < scan->visited_count; i++)
		if (scan->visited[i] == start)
			return;
	/* Not looked at: counts as changing nothing, the side that keeps the thunk. */
	if (depth > SCAN_DEPTH_MAX || scan->visited_count == SCAN_FUNCTIONS_MAX ||
	    scan->clobbered == ALL_CLOBBERED)
		return;
	scan->visited[scan->visited_count++] = start;
	bytes = read_code(scan, start, size);
	instruction = bytes ? cs_malloc(scan->handle) : NULL;
	cursor = bytes;
	left = bytes ? size : 0;
	while (instruction && scan->clobbered != ALL_CLOBBERED &&
	       cs_disasm_iter(scan->handle, &cursor, &left, &at, instruction))
		scan_instruction(scan, instruction, start, start + size, depth);
	if (instruction)
		cs_free(instruction, 1);
	free(bytes);
}

int build_registers_left_alone(const struct build_binary *binary,
			       const struct hp_symbol *function, bool *left_alone,
			       struct hp_error *error)
{
	struct scan scan = { .binary = binary, .fd = -1 };
	int status = HP_OK;

	scan.fd = open(binary->path, O_RDONLY | O_CLOEXEC);
	if (scan.fd < 0)
		return hp_fail_errno(error, HP_FAILED, "cannot open %s", binary->path);
	scan.elf = elf_begin(scan.fd, ELF_C_READ, NULL);
	if (!scan.elf)
		status = hp_fail(error, HP_FAILED, "cannot read %s: %s", binary->path, elf_errmsg(-1));
	else if (code_open_disassembler(&scan.handle) != CS_ERR_OK)
		status = hp_fail(error, HP_FAILED, "capstone is unusable");
	if (status == HP_OK) {
		cs_option(scan.handle, CS_OPT_DETAIL, CS_OPT_ON);
		scan_function(&scan, function->value, function->size, 0);
		cs_close(&scan.handle);
		/* Code not read (or not decoded) added nothing: in doubt, the
		 * callers may rely on something, and the thunk stays. */
		*left_alone = scan.clobbered != ALL_CLOBBERED;
	}
	if (scan.elf)
		elf_end(scan.elf);
	close(scan.fd);
	return status;
}
