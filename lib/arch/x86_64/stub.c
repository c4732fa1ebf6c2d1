/* stub.c - the x86-64 code we put in the target's stub page: the call and
 * system-call stubs with the restore code they end in (remote_call.c runs
 * them), and the return trampolines that take busy threads out of replaced
 * code (thread_move.c).  Pure: it fills buffers.
 *
 *   stub page                          the thread's stack (restore_frame.c)
 *   0x00 call *%rax                    original %rsp ->  ...
 *        mov %rax,%rbx                                  red zone (128)
 *        mov $39,%eax; syscall (sync)                   xsave area (64-aligned)
 *        jmp restore                   frame+168 ->     ss, rsp, rflags, cs, rip
 *   0x20 syscall                       frame+8 ->       r15 ... rax (15 words)
 *        mov %rax,%rbx; sync; jmp      frame ->         signal mask
 *   0x40 restore: rt_sigprocmask(SETMASK, frame); xrstor; pop r15..rax; iretq
 *
 * A live hotpatch takes the result in %rbx at the getpid; the thread then
 * runs on into the restore, by itself if hotpatch is gone.
 *
 *   return trampoline k, slot k holds the address it returns to:
 *     push %rax; push %rcx; push %r11   (the system call clobbers them)
 *     mov $39,%eax; syscall             (getpid: where we take it)
 *     pop %r11; pop %rcx; pop %rax
 *     jmp *slot_k(%rip)
 */
#include <string.h>

#include "arch/arch.h"

_Static_assert(HP_SYNC_SYSCALL == 39, "the stubs' sync system call is getpid");

void stub_code_bytes(unsigned char code[HP_STUB_CODE_SIZE])
{
	static const unsigned char call_stub[] = {
		0xff, 0xd0,			/* call *%rax */
		0x48, 0x89, 0xc3,		/* mov %rax,%rbx */
		0xb8, 0x27, 0x00, 0x00, 0x00,	/* mov $39,%eax (getpid) */
		0x0f, 0x05,			/* syscall: the sync point */
		0xeb, 0x32,			/* jmp restore (0x40) */
	};
	static const unsigned char syscall_stub[] = {
		0x0f, 0x05,			/* syscall */
		0x48, 0x89, 0xc3,		/* mov %rax,%rbx */
		0xb8, 0x27, 0x00, 0x00, 0x00,	/* mov $39,%eax (getpid) */
		0x0f, 0x05,			/* syscall: the sync point */
		0xeb, 0x12,			/* jmp restore (0x40) */
	};
	static const unsigned char restore[] = {
		0xb8, 0x0e, 0x00, 0x00, 0x00,	/* mov $14,%eax (rt_sigprocmask) */
		0xbf, 0x02, 0x00, 0x00, 0x00,	/* mov $2,%edi (SIG_SETMASK) */
		0x48, 0x89, 0xe6,		/* mov %rsp,%rsi (the frame's mask) */
		0x31, 0xd2,			/* xor %edx,%edx */
		0x41, 0xba, 0x08, 0x00, 0x00, 0x00, /* mov $8,%r10d */
		0x0f, 0x05,			/* syscall */
		0x48, 0x8d, 0x8c, 0x24, 0xe7, 0x00, 0x00, 0x00, /* lea 231(%rsp),%rcx */
		0x48, 0x83, 0xe1, 0xc0,		/* and $-64,%rcx: the xsave area */
		0xb8, 0xff, 0xff, 0xff, 0xff,	/* mov $-1,%eax */
		0xba, 0xff, 0xff, 0xff, 0xff,	/* mov $-1,%edx */
		0x48, 0x0f, 0xae, 0x29,		/* xrstor64 (%rcx) */
		0x48, 0x83, 0xc4, 0x08,		/* add $8,%rsp */
		0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, /* pop r15 r14 r13 r12 */
		0x41, 0x5b, 0x41, 0x5a, 0x41, 0x59, 0x41, 0x58, /* pop r11 r10 r9 r8 */
		0x5f, 0x5e, 0x5d, 0x5b, 0x5a, 0x59, 0x58, /* pop rdi rsi rbp rbx rdx rcx rax */
		0x48, 0xcf,			/* iretq: rip, cs, rflags, rsp, ss at once */
	};

	memset(code, 0xcc, HP_STUB_CODE_SIZE);
	memcpy(code + HP_STUB_CALL, call_stub, sizeof(call_stub));
	memcpy(code + HP_STUB_SYSCALL, syscall_stub, sizeof(syscall_stub));
	memcpy(code + HP_STUB_RESTORE, restore, sizeof(restore));
}

void stub_return_trampoline(uint64_t trampoline, uint64_t slot, unsigned char *code,
			    size_t size)
{
	static const unsigned char head[] = {
		0x50, 0x51, 0x41, 0x53,		/* push %rax; push %rcx; push %r11 */
		0xb8, 0x27, 0x00, 0x00, 0x00,	/* mov $39,%eax */
		0x0f, 0x05,			/* syscall */
		0x41, 0x5b, 0x59, 0x58,		/* pop %r11; pop %rcx; pop %rax */
		0xff, 0x25,			/* jmp *disp32(%rip) */
	};
	int32_t displacement = (int32_t)(slot - (trampoline + HP_RETURN_TRAMPOLINE_LENGTH));

	_Static_assert(sizeof(head) + sizeof(displacement) == HP_RETURN_TRAMPOLINE_LENGTH,
		       "the jmp ends the trampoline");
	_Static_assert(sizeof(head) - 6 == HP_RETURN_TRAMPOLINE_SYNC, "sync after its syscall");
	memset(code, 0xcc, size);
	if (size < HP_RETURN_TRAMPOLINE_LENGTH)
		return;	/* int3 all through: a caller's mistake stops the thread */
	memcpy(code, head, sizeof(head));
	memcpy(code + sizeof(head), &displacement, sizeof(displacement));
}

/* Where it stopped tells how many of rax, rcx and r11 are on the stack
 * rather than in registers: pushed[2] = rax (highest), pushed[1] = rcx,
 * pushed[0] = r11. */
void stub_return_trampoline_land(struct hp_registers *registers, uint64_t offset,
				 const uint64_t pushed[HP_RETURN_TRAMPOLINE_PUSHED])
{
	if (offset >= 1 && offset < 0x0f)
		registers->user.rax = pushed[2];
	if (offset >= 2 && offset < 0x0e)
		registers->user.rcx = pushed[1];
	if (offset >= 4 && offset < 0x0d)
		registers->user.r11 = pushed[0];
}

int stub_return_trampoline_pushed_words(uint64_t offset)
{
	/* rax is pushed at offset 0 and popped at 0x0e, rcx at 0x01 and 0x0d,
	 * r11 at 0x02 and 0x0b (see stub_return_trampoline_land). */
	if (offset >= HP_RETURN_TRAMPOLINE_LENGTH)
		return -1;
	return (offset >= 1 && offset < 0x0f) + (offset >= 2 && offset < 0x0e) +
	       (offset >= 4 && offset < 0x0d);
}
