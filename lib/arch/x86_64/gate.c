/* gate.c - x86-64's code for applying without a global stop (the runtime's
 * transition.c tells the protocol): the gate page's shared part (the
 * decision byte, hotpatch's pidfd, the wait routine, the store routine),
 * one gate per function, and which prologues a gate can run elsewhere.
 * Pure: bytes in, bytes out; it never touches a process.
 *
 * The gate page, drawn once (offsets from its start):
 *
 *   0x000  .byte decision          0 undecided, 1 new code, 2 original code
 *   0x008  .long pidfd             hotpatch's pidfd, open in the target
 *   0x010  store(word, expected low, high, new low, high): lock cmpxchg16b
 *          on the aligned 16 bytes at word; returns 1 when it stored
 *   0x040  wait:   saves rax rdi rsi rdx rcx r11 r10 under its SP (the red
 *                  zone: the SP never moves), poll(pidfd, POLLIN, 1 ms): a
 *                  pidfd is readable once its process has exited (a zombie
 *                  included), and the call answers 1 (POLLNVAL too: a pidfd
 *                  the program closed under us counts as our death, never as
 *                  a decision); restores the registers and returns with ZF
 *                  set when hotpatch is dead
 *   0x100  gates, HP_GATE_SIZE each:
 *
 *   gate:  cmpb $1, decision(%rip);  je new
 *          cmpb $2, decision(%rip);  je old
 *          call wait;  jnz gate                  (hotpatch alive: look again)
 *          cmpb $1, decision(%rip);  je new      (dead: its last word holds)
 *          jmp old
 *   new:   jmp *replacement(%rip)
 *   old:   the displaced whole instructions of the prologue
 *          jmp *continuation(%rip)               (the function, past them)
 *   .quad replacement, continuation
 *
 * A thread in `gate` up to `call` has its SP as at the function's entry; in
 * `wait`, one word lower (the call's return address). */
#include <capstone/capstone.h>
#include <string.h>

#include "arch/arch.h"

#define GATE_DECISION 0x000
#define GATE_PIDFD 0x008
#define GATE_WAIT 0x040
#define GATE_WAIT_END 0x100

/* Gate offsets (see the drawing). */
#define AT_CALL 26
#define AT_DEAD 33
#define AT_NEW 48
#define AT_OLD 54
#define AT_REPLACEMENT (HP_GATE_SIZE - 16)
#define AT_CONTINUATION (HP_GATE_SIZE - 8)

/* rel32 of an instruction ending at `end` (page offsets) to `to`. */
static void put_rel32(unsigned char *code, size_t at, size_t end, size_t to)
{
	int32_t relative = (int32_t)((int64_t)to - (int64_t)end);

	memcpy(code + at, &relative, sizeof(relative));
}

static const unsigned char store_code[] = {
	0x53,				/* push %rbx */
	0x48, 0x89, 0xf0,		/* mov %rsi,%rax       expected, low */
	0x48, 0x89, 0xcb,		/* mov %rcx,%rbx       new, low (%rdx: expected, high) */
	0x4c, 0x89, 0xc1,		/* mov %r8,%rcx        new, high */
	0xf0, 0x48, 0x0f, 0xc7, 0x0f,	/* lock cmpxchg16b (%rdi) */
	0x5b,				/* pop %rbx */
	0x0f, 0x94, 0xc0,		/* sete %al */
	0x0f, 0xb6, 0xc0,		/* movzbl %al,%eax */
	0xc3,				/* ret */
};

static const unsigned char wait_code[] = {
	0x48, 0x89, 0x44, 0x24, 0xf8,	/* 00 mov %rax,-0x8(%rsp) */
	0x48, 0x89, 0x7c, 0x24, 0xf0,	/* 05 mov %rdi,-0x10(%rsp) */
	0x48, 0x89, 0x74, 0x24, 0xe8,	/* 0a mov %rsi,-0x18(%rsp) */
	0x48, 0x89, 0x54, 0x24, 0xe0,	/* 0f mov %rdx,-0x20(%rsp) */
	0x48, 0x89, 0x4c, 0x24, 0xd8,	/* 14 mov %rcx,-0x28(%rsp) */
	0x4c, 0x89, 0x5c, 0x24, 0xd0,	/* 19 mov %r11,-0x30(%rsp) */
	0x4c, 0x89, 0x54, 0x24, 0xc8,	/* 1e mov %r10,-0x38(%rsp) */
	0x8b, 0x05, 0, 0, 0, 0,		/* 23 mov pidfd(%rip),%eax */
	0x89, 0x44, 0x24, 0xc0,		/* 29 mov %eax,-0x40(%rsp)  pollfd.fd */
	0xc7, 0x44, 0x24, 0xc4, 0x01, 0x00, 0x00, 0x00,	/* 2d movl $1,-0x3c(%rsp) POLLIN */
	0x48, 0x8d, 0x7c, 0x24, 0xc0,	/* 35 lea -0x40(%rsp),%rdi */
	0xbe, 0x01, 0x00, 0x00, 0x00,	/* 3a mov $1,%esi */
	0xba, 0x01, 0x00, 0x00, 0x00,	/* 3f mov $1,%edx           1 ms */
	0xb8, 0x07, 0x00, 0x00, 0x00,	/* 44 mov $7,%eax           poll */
	0x0f, 0x05,			/* 49 syscall */
	0x85, 0xc0,			/* 4b test %eax,%eax */
	0x7e, 0x04,			/* 4d jle alive (0x53)      timeout, EINTR */
	0xb0, 0x01,			/* 4f mov $1,%al            readable: exited */
	0xeb, 0x02,			/* 51 jmp restore (0x55) */
	0xb0, 0x00,			/* 53 alive: mov $0,%al */
	0x88, 0x44, 0x24, 0xbf,		/* 55 restore: mov %al,-0x41(%rsp) */
	0x48, 0x8b, 0x44, 0x24, 0xf8,	/* 59 mov -0x8(%rsp),%rax */
	0x48, 0x8b, 0x7c, 0x24, 0xf0,	/* 5e mov -0x10(%rsp),%rdi */
	0x48, 0x8b, 0x74, 0x24, 0xe8,	/* 63 mov -0x18(%rsp),%rsi */
	0x48, 0x8b, 0x54, 0x24, 0xe0,	/* 68 mov -0x20(%rsp),%rdx */
	0x48, 0x8b, 0x4c, 0x24, 0xd8,	/* 6d mov -0x28(%rsp),%rcx */
	0x4c, 0x8b, 0x5c, 0x24, 0xd0,	/* 72 mov -0x30(%rsp),%r11 */
	0x4c, 0x8b, 0x54, 0x24, 0xc8,	/* 77 mov -0x38(%rsp),%r10 */
	0x80, 0x7c, 0x24, 0xbf, 0x01,	/* 7c cmpb $1,-0x41(%rsp)   ZF: dead */
	0xc3,				/* 81 ret */
};

_Static_assert(GATE_WAIT + sizeof(wait_code) <= GATE_WAIT_END, "the wait routine fits");
_Static_assert(HP_GATE_STORE + sizeof(store_code) <= GATE_WAIT, "the store routine fits");
_Static_assert(AT_OLD + HP_GATE_DISPLACED_MAX + 6 <= AT_REPLACEMENT, "a gate fits");

void gate_page_code(uint64_t page, unsigned char code[HP_GATE_FIRST])
{
	(void)page;
	memset(code, 0xcc, HP_GATE_FIRST);
	memset(code, 0, GATE_PIDFD + 8);
	memcpy(code + HP_GATE_STORE, store_code, sizeof(store_code));
	memcpy(code + GATE_WAIT, wait_code, sizeof(wait_code));
	put_rel32(code, GATE_WAIT + 0x25, GATE_WAIT + 0x29, GATE_PIDFD);
}

uint64_t gate_decision(uint64_t page)
{
	return page + GATE_DECISION;
}

uint64_t gate_pidfd(uint64_t page)
{
	return page + GATE_PIDFD;
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
	bool ok = code_open_disassembler(&handle) == CS_ERR_OK;

	if (!ok)
		return false;
	cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
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
	cs_close(&handle);
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
	    reach > (int64_t)(HP_GATE_PAGES_MAX * HP_PAGE_SIZE))
		return false;
	memset(code, 0xcc, HP_GATE_SIZE);
	/* cmpb $1, decision(%rip); je new */
	memcpy(code + 0, (const unsigned char[]){ 0x80, 0x3d, 0, 0, 0, 0, 0x01 }, 7);
	put_rel32(code, 2, 7, GATE_DECISION - at);
	memcpy(code + 7, (const unsigned char[]){ 0x0f, 0x84 }, 2);
	put_rel32(code, 9, 13, AT_NEW);
	/* cmpb $2, decision(%rip); je old */
	memcpy(code + 13, (const unsigned char[]){ 0x80, 0x3d, 0, 0, 0, 0, 0x02 }, 7);
	put_rel32(code, 15, 20, GATE_DECISION - at);
	memcpy(code + 20, (const unsigned char[]){ 0x0f, 0x84 }, 2);
	put_rel32(code, 22, AT_CALL, AT_OLD);
	/* call wait; jnz gate */
	code[AT_CALL] = 0xe8;
	put_rel32(code, AT_CALL + 1, AT_CALL + 5, GATE_WAIT - at);
	code[AT_CALL + 5] = 0x75;
	code[AT_CALL + 6] = (unsigned char)(0 - (AT_CALL + 7));
	/* dead: cmpb $1, decision(%rip); je new; jmp old */
	memcpy(code + AT_DEAD, (const unsigned char[]){ 0x80, 0x3d, 0, 0, 0, 0, 0x01 }, 7);
	put_rel32(code, AT_DEAD + 2, AT_DEAD + 7, GATE_DECISION - at);
	memcpy(code + AT_DEAD + 7, (const unsigned char[]){ 0x0f, 0x84 }, 2);
	put_rel32(code, AT_DEAD + 9, AT_DEAD + 13, AT_NEW);
	code[AT_DEAD + 13] = 0xeb;
	code[AT_DEAD + 14] = (unsigned char)(AT_OLD - (AT_DEAD + 15));
	/* new: jmp *replacement(%rip) */
	memcpy(code + AT_NEW, (const unsigned char[]){ 0xff, 0x25 }, 2);
	put_rel32(code, AT_NEW + 2, AT_NEW + 6, AT_REPLACEMENT);
	/* old: the displaced instructions, jmp *continuation(%rip) */
	if (!relocate(displaced, displaced_length, site, gate + AT_OLD, code + AT_OLD))
		return false;
	memcpy(code + old_jump, (const unsigned char[]){ 0xff, 0x25 }, 2);
	put_rel32(code, old_jump + 2, old_jump + 6, AT_CONTINUATION);
	memcpy(code + AT_REPLACEMENT, &replacement, sizeof(replacement));
	memcpy(code + AT_CONTINUATION, &continuation, sizeof(continuation));
	return true;
}

/* The gate's own rel32 fields were computed from the page's offsets; a
 * gate's fields that point into itself must not depend on where it is. */
_Static_assert(AT_NEW > AT_DEAD + 15 - 1, "the gate's parts are in order");

int gate_position(uint64_t page, uint64_t pc, size_t *pushed)
{
	uint64_t offset = pc - page;

	if (pc < page || offset >= (uint64_t)HP_GATE_PAGES_MAX * HP_PAGE_SIZE)
		return HP_GATE_OUTSIDE;
	if (offset >= GATE_WAIT && offset < GATE_WAIT + sizeof(wait_code)) {
		*pushed = 1;
		return HP_GATE_WAITING;
	}
	if (offset >= HP_GATE_FIRST && (offset - HP_GATE_FIRST) % HP_GATE_SIZE < AT_NEW) {
		*pushed = 0;
		return HP_GATE_WAITING;
	}
	return HP_GATE_PASSING;
}

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
	if (code_open_disassembler(&handle) != CS_ERR_OK)
		return false;
	cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
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
	cs_close(&handle);
	*displaced = done;
	return ok;
}

void gate_store_words(uint64_t site, const unsigned char *current, const unsigned char *bytes,
		      size_t length, uint64_t *block, unsigned char *replacement)
{
	size_t offset = (size_t)(site & (HP_GATE_STORE_SIZE - 1));

	*block = site & ~(uint64_t)(HP_GATE_STORE_SIZE - 1);
	memcpy(replacement, current, HP_GATE_STORE_SIZE);
	memcpy(replacement + offset, bytes, length);
}

bool gate_page_is_gate(const unsigned char bytes[HP_GATE_FIRST])
{
	unsigned char code[HP_GATE_FIRST];

	gate_page_code(0, code);
	return memcmp(bytes + HP_GATE_STORE, code + HP_GATE_STORE, HP_GATE_FIRST - HP_GATE_STORE) ==
	       0;
}
