/* gate.c - x86-64's code for applying without a global stop (the runtime's
 * transition.c tells the protocol): the gate mapping's shared part (the
 * phase byte, the table's length, the choose and store_many routines), one gate
 * per function, and which prologues a gate can run elsewhere.  Pure: bytes
 * in, bytes out; it never touches a process.
 *
 * The gate mapping: its code (this page, and as many more as its gates
 * take: gate_code_length), then a table of one byte per thread
 * id (0 unseen, 1 new code, 2 original code, 3 held: original code, and
 * the thread's next gate makes it 2, which tells hotpatch it passed one;
 * 4 held new: the same the other way, for a revert: new code, made 1),
 * read and written by the threads themselves and by hotpatch.  The first page (offsets from its
 * start):
 *
 *   0x000  .byte phase     0: a thread not in the table is put there as
 *                          original; 1: every thread new; 2: every thread
 *                          original; 3: a thread not in the table is put
 *                          there as new
 *   0x008  .quad limit     the table's length: thread ids below it
 *   0x020  int3 up to choose
 *   0x040  choose: ZF set when the calling thread is to run the new code.
 *          gettid; its byte in the table (a thread id past the limit: the
 *          original code); an unseen thread is written in as the phase
 *          says, a held one as what it holds, by one lock cmpxchg.  It saves rax rcx rdx r11 under its SP (the red zone, which
 *          the kernel's signal frames skip) and changes only the flags.
 *   0x0c0  store_many(list, count): for each entry of a list
 *          (HP_GATE_STORE_ITEM bytes each: the block's address, the 16
 *          bytes expected, the 16 new), in order, lock cmpxchg16b on the
 *          aligned block, stopping at the first that did not hold what was
 *          expected; returns how many it stored.  One call for a page of
 *          entries, not one each.
 *   0x100  gates, HP_GATE_SIZE each, then the list of their stores:
 *
 *   gate:  cmpb $1, phase(%rip);  je new
 *          cmpb $2, phase(%rip);  je old
 *          call choose;  je new
 *   old:   the displaced whole instructions of the prologue
 *          jmp *continuation(%rip)               (the function, past them)
 *   new:   jmp *replacement(%rip)
 *   .quad replacement, continuation
 *
 * No gate ever waits: a thread runs the old code or the new one at once,
 * whichever its byte says, and hotpatch alone moves a thread from one to
 * the other, while it is stopped and out of both. */
#include <capstone/capstone.h>
#include <string.h>

#include "arch/arch.h"

#define GATE_PHASE 0x000
#define GATE_LIMIT 0x008
/* Where the header ends and the shared code begins (what a gate page must
 * hold to be ours, whatever its phase and limit). */
#define GATE_SHARED 0x020
#define GATE_CHOOSE 0x040
#define GATE_CHOOSE_END 0x100
/* Where choose's `lea table(%rip)` holds the table's offset. */
#define GATE_TABLE_REL32 (GATE_CHOOSE + 0x27)
/* From here on choose has its four registers saved, and may have changed them. */
#define CHOOSE_SAVED 0x14

/* Gate offsets (see the drawing). */
#define AT_CALL 26
#define AT_OLD 37
#define AT_NEW (AT_OLD + HP_GATE_DISPLACED_MAX + 6)
#define AT_REPLACEMENT (HP_GATE_SIZE - 16)
#define AT_CONTINUATION (HP_GATE_SIZE - 8)

/* rel32 of an instruction ending at `end` (page offsets) to `to`. */
static void put_rel32(unsigned char *code, size_t at, size_t end, size_t to)
{
	int32_t relative = (int32_t)((int64_t)to - (int64_t)end);

	memcpy(code + at, &relative, sizeof(relative));
}

/* The table follows the code pages: `table` is its offset from the first.
 * The thread's byte is claimed with one lock cmpxchg: an unseen or held
 * byte (3 or 4) becomes what this thread runs, and a byte hotpatch changed at the
 * same instant is read again.  What the thread runs is what the exchange
 * saw, so hotpatch's own exchange (held to new, while the thread sleeps)
 * and this one never both succeed. */
static const unsigned char choose_code[] = {
	0x48, 0x89, 0x44, 0x24, 0xf8,	/* 00 mov %rax,-0x8(%rsp) */
	0x48, 0x89, 0x4c, 0x24, 0xf0,	/* 05 mov %rcx,-0x10(%rsp) */
	0x4c, 0x89, 0x5c, 0x24, 0xe8,	/* 0a mov %r11,-0x18(%rsp) */
	0x48, 0x89, 0x54, 0x24, 0xe0,	/* 0f mov %rdx,-0x20(%rsp) */
	0xb8, 0xba, 0x00, 0x00, 0x00,	/* 14 mov $186,%eax        gettid */
	0x0f, 0x05,			/* 19 syscall */
	0x48, 0x3b, 0x05, 0, 0, 0, 0,	/* 1b cmp limit(%rip),%rax */
	0x73, 0x3b,			/* 22 jae original (0x5f) */
	0x48, 0x8d, 0x15, 0, 0, 0, 0,	/* 24 lea table(%rip),%rdx */
	0x48, 0x01, 0xc2,		/* 2b add %rax,%rdx        the thread's byte */
	0x0f, 0xb6, 0x02,		/* 2e movzbl (%rdx),%eax */
	0x3c, 0x01,			/* 31 again: cmp $1,%al    new: ZF set */
	0x74, 0x2d,			/* 33 je restore (0x62) */
	0x3c, 0x02,			/* 35 cmp $2,%al */
	0x74, 0x26,			/* 37 je original (0x5f) */
	0xb9, 0x02, 0x00, 0x00, 0x00,	/* 39 mov $2,%ecx          held, or unseen in phase 0 */
	0x3c, 0x03,			/* 3e cmp $3,%al */
	0x74, 0x12,			/* 40 je claim (0x54) */
	0x3c, 0x04,			/* 42 cmp $4,%al           held new: new */
	0x74, 0x09,			/* 44 je claim_new (0x4f) */
	0x80, 0x3d, 0, 0, 0, 0, 0x03,	/* 46 cmpb $3,phase(%rip)  unseen: as the phase says */
	0x75, 0x05,			/* 4d jne claim (0x54) */
	0xb9, 0x01, 0x00, 0x00, 0x00,	/* 4f claim_new: mov $1,%ecx */
	0xf0, 0x0f, 0xb0, 0x0a,		/* 54 claim: lock cmpxchg %cl,(%rdx) */
	0x75, 0xd7,			/* 58 jne again (0x31)     %al: the byte now */
	0x80, 0xf9, 0x01,		/* 5a cmp $1,%cl           new: ZF set */
	0xeb, 0x03,			/* 5d jmp restore (0x62) */
	0x48, 0x85, 0xe4,		/* 5f original: test %rsp,%rsp  ZF clear */
	0x48, 0x8b, 0x44, 0x24, 0xf8,	/* 62 restore: mov -0x8(%rsp),%rax */
	0x48, 0x8b, 0x4c, 0x24, 0xf0,	/* 67 mov -0x10(%rsp),%rcx */
	0x4c, 0x8b, 0x5c, 0x24, 0xe8,	/* 6c mov -0x18(%rsp),%r11 */
	0x48, 0x8b, 0x54, 0x24, 0xe0,	/* 71 mov -0x20(%rsp),%rdx */
	0xc3,				/* 76 ret */
};

static const unsigned char store_many_code[] = {
	0x53,				/* 00 push %rbx */
	0x45, 0x31, 0xc9,		/* 01 xor %r9d,%r9d        stored */
	0x49, 0x39, 0xf1,		/* 04 next: cmp %rsi,%r9 */
	0x73, 0x23,			/* 07 jae done (0x2c) */
	0x4c, 0x8b, 0x17,		/* 09 mov (%rdi),%r10      the block */
	0x48, 0x8b, 0x47, 0x08,		/* 0c mov 0x8(%rdi),%rax   expected */
	0x48, 0x8b, 0x57, 0x10,		/* 10 mov 0x10(%rdi),%rdx */
	0x48, 0x8b, 0x5f, 0x18,		/* 14 mov 0x18(%rdi),%rbx  new */
	0x48, 0x8b, 0x4f, 0x20,		/* 18 mov 0x20(%rdi),%rcx */
	0xf0, 0x49, 0x0f, 0xc7, 0x0a,	/* 1c lock cmpxchg16b (%r10) */
	0x75, 0x09,			/* 21 jne done (0x2c) */
	0x48, 0x83, 0xc7, 0x28,		/* 23 add $40,%rdi */
	0x49, 0xff, 0xc1,		/* 27 inc %r9 */
	0xeb, 0xd8,			/* 2a jmp next (0x04) */
	0x4c, 0x89, 0xc8,		/* 2c done: mov %r9,%rax */
	0x5b,				/* 2f pop %rbx */
	0xc3,				/* 30 ret */
};

_Static_assert(GATE_CHOOSE + sizeof(choose_code) <= HP_GATE_STORE_MANY, "the choose routine fits");
_Static_assert(HP_GATE_STORE_MANY + sizeof(store_many_code) <= GATE_CHOOSE_END,
	       "the store_many routine fits");
_Static_assert(HP_GATE_STORE_ITEM == 40, "store_many steps 40 bytes an entry");
_Static_assert(GATE_LIMIT + 8 <= GATE_SHARED, "the header fits");
_Static_assert(AT_NEW + 6 <= AT_REPLACEMENT, "a gate fits");

void gate_page_code(uint64_t code_length, uint64_t limit, unsigned char code[HP_GATE_FIRST])
{
	memset(code, 0xcc, HP_GATE_FIRST);
	memset(code, 0, GATE_SHARED);
	memcpy(code + GATE_LIMIT, &limit, sizeof(limit));
	memcpy(code + GATE_CHOOSE, choose_code, sizeof(choose_code));
	memcpy(code + HP_GATE_STORE_MANY, store_many_code, sizeof(store_many_code));
	put_rel32(code, GATE_CHOOSE + 0x1e, GATE_CHOOSE + 0x22, GATE_LIMIT);
	put_rel32(code, GATE_TABLE_REL32, GATE_TABLE_REL32 + 4, (size_t)code_length);
	put_rel32(code, GATE_CHOOSE + 0x48, GATE_CHOOSE + 0x4d, GATE_PHASE);
}

uint64_t gate_phase(uint64_t page)
{
	return page + GATE_PHASE;
}

uint64_t gate_table(uint64_t page, uint64_t code_length)
{
	return page + code_length;
}

/* Copies the `length` bytes of whole instructions at `from` to run at `to`:
 * each operand relative to the instruction pointer is made to point where
 * it pointed.  False when one would be out of reach. */
static bool relocate(const unsigned char *bytes, size_t length, uint64_t from, uint64_t to,
		     unsigned char *out)
{
	csh handle;
	cs_insn *instruction = NULL;
	const uint8_t *next = bytes;
	size_t left = length;
	uint64_t at = from;
	bool ok = code_disassembler(&handle) == CS_ERR_OK;

	if (!ok)
		return false;
	instruction = cs_malloc(handle);
	memcpy(out, bytes, length);
	while (ok && instruction && left > 0) {
		uint64_t start = at;
		const cs_x86 *x86;

		ok = cs_disasm_iter(handle, &next, &left, &at, instruction);
		x86 = ok ? &instruction->detail->x86 : NULL;
		for (uint8_t i = 0; ok && i < x86->op_count; i++) {
			int64_t moved;
			int32_t field;

			if (x86->operands[i].type != X86_OP_MEM || x86->operands[i].mem.base != X86_REG_RIP)
				continue;
			moved = x86->operands[i].mem.disp + (int64_t)(from - to);
			field = (int32_t)moved;
			ok = x86->encoding.disp_size == 4 && (int64_t)field == moved;
			if (ok)
				memcpy(out + (start - from) + x86->encoding.disp_offset, &field,
				       sizeof(field));
		}
	}
	ok = ok && instruction && left == 0;
	if (instruction)
		cs_free(instruction, 1);
	return ok;
}

bool gate_encode(uint64_t page, uint64_t gate, uint64_t replacement, const unsigned char *displaced,
		 size_t displaced_length, uint64_t site, unsigned char code[HP_GATE_SIZE])
{
	uint64_t continuation = site + displaced_length;
	int64_t reach = (int64_t)(gate - page);
	/* Offsets below are from the page, as the gate sits in it. */
	size_t at = (size_t)reach, old_jump = AT_OLD + displaced_length;

	if (reach < HP_GATE_FIRST || displaced_length > HP_GATE_DISPLACED_MAX ||
	    (uint64_t)reach + HP_GATE_SIZE > gate_code_length(HP_GATE_FUNCTIONS_MAX))
		return false;
	memset(code, 0xcc, HP_GATE_SIZE);
	/* cmpb $1, phase(%rip); je new */
	memcpy(code + 0, (const unsigned char[]){ 0x80, 0x3d, 0, 0, 0, 0, 0x01 }, 7);
	put_rel32(code, 2, 7, GATE_PHASE - at);
	memcpy(code + 7, (const unsigned char[]){ 0x0f, 0x84 }, 2);
	put_rel32(code, 9, 13, AT_NEW);
	/* cmpb $2, phase(%rip); je old */
	memcpy(code + 13, (const unsigned char[]){ 0x80, 0x3d, 0, 0, 0, 0, 0x02 }, 7);
	put_rel32(code, 15, 20, GATE_PHASE - at);
	memcpy(code + 20, (const unsigned char[]){ 0x0f, 0x84 }, 2);
	put_rel32(code, 22, AT_CALL, AT_OLD);
	/* call choose; je new */
	code[AT_CALL] = 0xe8;
	put_rel32(code, AT_CALL + 1, AT_CALL + 5, GATE_CHOOSE - at);
	memcpy(code + AT_CALL + 5, (const unsigned char[]){ 0x0f, 0x84 }, 2);
	put_rel32(code, AT_CALL + 7, AT_OLD, AT_NEW);
	/* old: the displaced instructions, jmp *continuation(%rip) */
	if (!relocate(displaced, displaced_length, site, gate + AT_OLD, code + AT_OLD))
		return false;
	memcpy(code + old_jump, (const unsigned char[]){ 0xff, 0x25 }, 2);
	put_rel32(code, old_jump + 2, old_jump + 6, AT_CONTINUATION);
	/* new: jmp *replacement(%rip) */
	memcpy(code + AT_NEW, (const unsigned char[]){ 0xff, 0x25 }, 2);
	put_rel32(code, AT_NEW + 2, AT_NEW + 6, AT_REPLACEMENT);
	memcpy(code + AT_REPLACEMENT, &replacement, sizeof(replacement));
	memcpy(code + AT_CONTINUATION, &continuation, sizeof(continuation));
	return true;
}

_Static_assert(AT_CALL + 11 == AT_OLD, "the gate's parts are in order");

/* An instruction that runs the same anywhere once its operands relative to
 * the instruction pointer are moved: no transfer of control. */
static bool runs_anywhere(csh handle, const cs_insn *instruction)
{
	const cs_x86 *x86 = &instruction->detail->x86;

	if (cs_insn_group(handle, instruction, CS_GRP_JUMP) ||
	    cs_insn_group(handle, instruction, CS_GRP_CALL) ||
	    cs_insn_group(handle, instruction, CS_GRP_RET) ||
	    cs_insn_group(handle, instruction, CS_GRP_INT) ||
	    cs_insn_group(handle, instruction, CS_GRP_IRET) ||
	    cs_insn_group(handle, instruction, CS_GRP_BRANCH_RELATIVE))
		return false;
	/* An operand relative to the pc is moved with the instruction. */
	for (uint8_t i = 0; i < x86->op_count; i++)
		if (x86->operands[i].type == X86_OP_MEM && x86->operands[i].mem.base == X86_REG_RIP &&
		    x86->encoding.disp_size != 4)
			return false;
	return instruction->id != X86_INS_INVALID;
}

bool gate_displaceable(const unsigned char *code, size_t length, uint64_t address,
		       size_t *displaced)
{
	csh handle;
	cs_insn *instruction = NULL;
	const uint8_t *bytes = code;
	size_t left = length, done = 0;
	uint64_t at = address;
	bool ok = true;

	/* The 5-byte jump to the gate must sit in one aligned 16-byte block,
	 * which a single store replaces whole. */
	if ((address & (HP_GATE_STORE_SIZE - 1)) + HP_JUMP_SIZE > HP_GATE_STORE_SIZE)
		return false;
	if (code_disassembler(&handle) != CS_ERR_OK)
		return false;
	instruction = cs_malloc(handle);
	while (ok && instruction && done < HP_JUMP_SIZE) {
		ok = cs_disasm_iter(handle, &bytes, &left, &at, instruction) &&
		     runs_anywhere(handle, instruction);
		done = (size_t)(at - address);
	}
	ok = ok && instruction && done >= HP_JUMP_SIZE && done <= HP_GATE_DISPLACED_MAX &&
	     done <= length;
	if (instruction)
		cs_free(instruction, 1);
	*displaced = done;
	return ok;
}

/* The length of the first instruction at `address` (0: none decoded), and
 * whether it runs anywhere. */
static size_t first_instruction(const unsigned char *code, size_t length, uint64_t address,
				bool *anywhere)
{
	csh handle;
	cs_insn *instruction = NULL;
	const uint8_t *bytes = code;
	size_t left = length, size = 0;
	uint64_t at = address;

	*anywhere = false;
	if (code_disassembler(&handle) != CS_ERR_OK)
		return 0;
	instruction = cs_malloc(handle);
	if (instruction && cs_disasm_iter(handle, &bytes, &left, &at, instruction)) {
		size = (size_t)(at - address);
		*anywhere = runs_anywhere(handle, instruction);
	}
	if (instruction)
		cs_free(instruction, 1);
	return size;
}

bool gate_entry_whole(const unsigned char *code, size_t length, uint64_t address)
{
	bool anywhere;

	return first_instruction(code, length, address, &anywhere) >= HP_JUMP_SIZE;
}

/* Where a landing may be: above the lowest address a process may map
 * (mmap_min_addr is 64 KiB at most) and below the top of x86-64's user half. */
#define LANDING_LOW 0x10000ull
#define LANDING_HIGH 0x7ffffffff000ull

bool gate_pun(const unsigned char *code, size_t length, uint64_t site, size_t *displaced,
	      uint64_t *landing)
{
	bool anywhere = false;
	size_t first = length >= HP_JUMP_SIZE ? first_instruction(code, length, site, &anywhere) : 0;
	int32_t displacement;

	*displaced = 0;
	*landing = 0;
	if (first == 0 || first >= HP_JUMP_SIZE || !anywhere)
		return false;
	memcpy(&displacement, code + 1, sizeof(displacement));
	*landing = site + HP_JUMP_SIZE + (uint64_t)(int64_t)displacement;
	if (*landing < LANDING_LOW || *landing > LANDING_HIGH - HP_LANDING_SIZE ||
	    (*landing & (HP_PAGE_SIZE - 1)) + HP_LANDING_SIZE > HP_PAGE_SIZE)
		return false;
	*displaced = first;
	return true;
}

void gate_landing_encode(uint64_t gate, unsigned char code[HP_LANDING_SIZE])
{
	/* jmp *0(%rip); .quad gate */
	memcpy(code, (const unsigned char[]){ 0xff, 0x25, 0, 0, 0, 0 }, 6);
	memcpy(code + 6, &gate, sizeof(gate));
}

bool gate_landing_page_is_ours(const unsigned char page[HP_PAGE_SIZE])
{
	static const unsigned char jump[6] = { 0xff, 0x25, 0, 0, 0, 0 };
	size_t at = 0, landings = 0;

	while (at < HP_PAGE_SIZE) {
		if (page[at] == 0xcc) {
			at++;
			continue;
		}
		if (at + HP_LANDING_SIZE > HP_PAGE_SIZE || memcmp(page + at, jump, sizeof(jump)) != 0)
			return false;
		at += HP_LANDING_SIZE;
		landings++;
	}
	return landings > 0;
}

bool gate_page_is_gate(const unsigned char bytes[HP_GATE_FIRST])
{
	unsigned char code[HP_GATE_FIRST];
	int32_t table = 0;

	/* The table's offset, the code's length: whole pages, as many as
	 * the most gates take. */
	memcpy(&table, bytes + GATE_TABLE_REL32, sizeof(table));
	table += GATE_TABLE_REL32 + 4;
	if (table < (int32_t)HP_PAGE_SIZE || (uint64_t)table > gate_code_length(HP_GATE_FUNCTIONS_MAX) ||
	    table % (int32_t)HP_PAGE_SIZE != 0)
		return false;
	gate_page_code((uint64_t)table, 0, code);
	return memcmp(bytes + GATE_SHARED, code + GATE_SHARED, HP_GATE_FIRST - GATE_SHARED) ==
	       0;
}

bool gate_rewind(uint64_t page, const uint64_t *entries, size_t count,
		 const uint64_t words[HP_GATE_REWIND_WORDS], struct hp_registers *registers)
{
	uint64_t offset = registers->user.rip - page, back = words[4], in_gate;
	size_t index;

	if (registers->user.rip < page)
		return false;
	if (offset >= GATE_CHOOSE && offset < GATE_CHOOSE + sizeof(choose_code)) {
		/* In choose: its caller is a gate, whose call returns to AT_CALL + 5. */
		if (back < page + HP_GATE_FIRST + AT_CALL + 5)
			return false;
		index = (size_t)((back - page - HP_GATE_FIRST) / HP_GATE_SIZE);
		if (index >= count || back != page + HP_GATE_FIRST + index * HP_GATE_SIZE + AT_CALL + 5)
			return false;
		if (offset - GATE_CHOOSE >= CHOOSE_SAVED) {
			registers->user.rdx = words[0];
			registers->user.r11 = words[1];
			registers->user.rcx = words[2];
			registers->user.rax = words[3];
		}
		registers->user.rsp += 8;
		registers->user.rip = entries[index];
		return true;
	}
	if (offset < HP_GATE_FIRST || offset >= HP_GATE_FIRST + count * HP_GATE_SIZE)
		return false;
	/* In a gate: before its prologue runs, or at the jump to the new code,
	 * nothing of the function has run and only the flags changed. */
	index = (size_t)((offset - HP_GATE_FIRST) / HP_GATE_SIZE);
	in_gate = (offset - HP_GATE_FIRST) % HP_GATE_SIZE;
	if (in_gate > AT_OLD && in_gate != AT_NEW)
		return false;
	registers->user.rip = entries[index];
	return true;
}

bool gate_running_on(uint64_t page, size_t count, uint64_t pc, uint64_t *start, uint64_t *end)
{
	uint64_t offset = pc - page, in_gate;

	if (pc < page || offset < HP_GATE_FIRST || offset >= HP_GATE_FIRST + count * HP_GATE_SIZE)
		return false;
	/* Past the moved prologue's first instruction, up to its jump on: the
	 * instructions gate_displaceable let in (no jump, call or system
	 * call), at least a byte each, then that jump. */
	in_gate = (offset - HP_GATE_FIRST) % HP_GATE_SIZE;
	if (in_gate <= AT_OLD || in_gate >= AT_NEW)
		return false;
	*start = pc - in_gate;
	*end = *start + HP_GATE_SIZE;
	return true;
}
