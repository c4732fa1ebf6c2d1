/* stub.c - the arm64 code we put in the target's stub page: the call and
 * system-call stubs with the restore code they end in (remote_call.c runs
 * them), and the return trampolines that take busy threads out of replaced
 * code (thread_move.c).  Pure: it fills buffers.
 *
 *   stub page                          the thread's stack (restore_frame.c)
 *   0x00 blr x16                       original sp ->  ...
 *        mov x19, x0                   frame ->        a kernel signal frame
 *        mov x8, #172; svc #0 (sync)                   (struct rt_sigframe):
 *        b restore                                     x0-x30, sp, pc, pstate,
 *   0x20 svc #0                                        FP/SIMD, signal mask
 *        mov x19, x0; sync; b restore
 *   0x40 restore: mov x8, #139; svc #0 (rt_sigreturn: everything at once)
 *
 * A live hotpatch takes the result in x19 at the getpid (x0 is getpid's
 * then); the thread then runs on into the restore, by itself if hotpatch is
 * gone (SIGKILL included): the sync is a system call that a tracer can
 * stop at, never a `brk`, which would kill an untraced thread.
 *
 *   return trampoline k, slot k holds the address it returns to:
 *     stp x0, x8, [sp, #-16]!   (the system call clobbers them)
 *     mov x8, #172; svc #0      (getpid: where we take it)
 *     ldp x0, x8, [sp], #16
 *     ldr x16, slot_k
 *     ret x16                   (ret: a return address is no BTI landing pad)
 *
 * The I-cache: these words reach the target through /proc/PID/mem or
 * PTRACE_POKETEXT, whose arm64 write path (access_remote_vm ->
 * copy_to_user_page -> flush_ptrace_access) cleans the D-cache and
 * invalidates the I-cache for an executable mapping; nothing is left for
 * the target to flush. */
#include <string.h>

#include "arch/arch.h"

_Static_assert(HP_SYNC_SYSCALL == 172, "the stubs' sync system call is getpid");

#define SVC 0xd4000001u
#define MOV_X8_GETPID 0xd2801588u	/* mov x8, #172: arm64's getpid */
#define MOV_X8_RT_SIGRETURN 0xd2801168u	/* mov x8, #139 */
#define BRK 0xd4200000u			/* brk #0: fills what is never run */

static void put_words(unsigned char *code, const uint32_t *words, size_t count)
{
	memcpy(code, words, count * sizeof(*words));
}

void stub_code_bytes(unsigned char code[HP_STUB_CODE_SIZE])
{
	static const uint32_t call_stub[] = {
		0xd63f0200,		/* blr x16 */
		0xaa0003f3,		/* mov x19, x0 */
		MOV_X8_GETPID,
		SVC,			/* the sync point follows */
		0x1400000c,		/* b restore (0x40) */
	};
	static const uint32_t syscall_stub[] = {
		SVC,			/* the system call */
		0xaa0003f3,		/* mov x19, x0 */
		MOV_X8_GETPID,
		SVC,			/* the sync point follows */
		0x14000004,		/* b restore (0x40) */
	};
	static const uint32_t restore[] = { MOV_X8_RT_SIGRETURN, SVC };

	_Static_assert(HP_STUB_CALL_SYNC - HP_STUB_CALL == 4 * 4, "sync after the fourth word");
	_Static_assert(HP_STUB_SYSCALL_SYNC - HP_STUB_SYSCALL == 4 * 4, "sync after the fourth");
	for (size_t i = 0; i < HP_STUB_CODE_SIZE / 4; i++)
		put_words(code + 4 * i, (const uint32_t[]){ BRK }, 1);
	put_words(code + HP_STUB_CALL, call_stub, HP_ARRAY_SIZE(call_stub));
	put_words(code + HP_STUB_SYSCALL, syscall_stub, HP_ARRAY_SIZE(syscall_stub));
	put_words(code + HP_STUB_RESTORE, restore, HP_ARRAY_SIZE(restore));
}

void stub_return_trampoline(uint64_t trampoline, uint64_t slot, unsigned char *code,
			    size_t size)
{
	uint32_t words[] = {
		0xa9bf23e0,		/* stp x0, x8, [sp, #-16]! */
		MOV_X8_GETPID,
		SVC,
		0xa8c123e0,		/* ldp x0, x8, [sp], #16 */
		0x58000010,		/* ldr x16, slot (imm19 below) */
		0xd65f0200,		/* ret x16 */
	};
	int64_t distance = (int64_t)(slot - (trampoline + 4 * 4));

	_Static_assert(sizeof(words) == HP_RETURN_TRAMPOLINE_LENGTH, "ret x16 ends it");
	for (size_t i = 0; i + 4 <= size; i += 4)
		put_words(code + i, (const uint32_t[]){ BRK }, 1);
	/* A slot out of ldr's ±1 MiB, or too little room: brk all through, a
	 * caller's mistake that stops the thread rather than run astray. */
	if (size < HP_RETURN_TRAMPOLINE_LENGTH || distance % 4 != 0 || distance < -(1 << 20) ||
	    distance >= (1 << 20))
		return;
	words[4] |= ((uint32_t)(distance / 4) & 0x7ffff) << 5;
	put_words(code, words, HP_ARRAY_SIZE(words));
}

/* x0 and x8 are on the stack from the stp (offset 4) until the ldp has run
 * (offset 0x10): pushed[0] = x0 (lowest), pushed[1] = x8. */
void stub_return_trampoline_land(struct hp_registers *registers, uint64_t offset,
				 const uint64_t pushed[HP_RETURN_TRAMPOLINE_PUSHED])
{
	if (offset >= 4 && offset < 0x10) {
		registers->user.regs[0] = pushed[0];
		registers->user.regs[8] = pushed[1];
	}
}

int stub_return_trampoline_pushed_words(uint64_t offset)
{
	if (offset >= HP_RETURN_TRAMPOLINE_LENGTH)
		return -1;
	return offset >= 4 && offset < 0x10 ? 2 : 0;
}
