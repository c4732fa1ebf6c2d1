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

/* The registers a call may change, one bit each: arch.h's clobbers. */
#define ALL_CLOBBERED HP_CLOBBERED_ALL

struct scan {
	const struct build_binary *binary;
	int fd;
	Elf *elf;
	csh handle;
	uint64_t clobbered;
	size_t visited_count;
	uint64_t visited[SCAN_FUNCTIONS_MAX];
};

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

/* A call (or a jump out of the function) to `target`, when `direct`. */
static void scan_call(struct scan *scan, bool direct, uint64_t target, unsigned depth)
{
	const struct hp_symbol *callee;

	if (!direct) {
		scan->clobbered = ALL_CLOBBERED;	/* through a pointer: anything */
		return;
	}
	/* Into the middle of one (a .cold part, say): the whole of it, as GCC
	 * counts a function's cold part as its own. */
	callee = function_containing(scan->binary, target);
	if (!callee)
		scan->clobbered = ALL_CLOBBERED;	/* the PLT: another object */
	else
		scan_function(scan, callee->value, callee->size, depth + 1);
}

static void scan_instruction(struct scan *scan, const cs_insn *instruction, uint64_t start,
			     uint64_t end, unsigned depth)
{
	bool direct = false;
	uint64_t target = 0;
	enum hp_flow flow = code_flow(scan->handle, instruction, &direct, &target);

	scan->clobbered |= code_clobbered_by(scan->handle, instruction);
	/* Jumps inside the function (and through switch tables) stay in it. */
	if (flow == HP_FLOW_JUMP && direct && (target < start || target >= end))
		scan_call(scan, direct, target, depth);
	else if (flow == HP_FLOW_CALL)
		scan_call(scan, direct, target, depth);
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
	else if (code_disassembler(&scan.handle) != CS_ERR_OK)
		status = hp_fail(error, HP_FAILED, "capstone is unusable");
	if (status == HP_OK) {
		scan_function(&scan, function->value, function->size, 0);
		/* Code not read (or not decoded) added nothing: in doubt, the
		 * callers may rely on something, and the thunk stays. */
		*left_alone = scan.clobbered != ALL_CLOBBERED;
	}
	if (scan.elf)
		elf_end(scan.elf);
	close(scan.fd);
	return status;
}
