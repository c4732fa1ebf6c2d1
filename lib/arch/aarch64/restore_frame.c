/* restore_frame.c - images of the frames an arm64 thread restores itself
 * from when hotpatch is gone.  arm64 has no instruction that puts back
 * every register, the SP and the pc at once (x86-64's iretq), so both are
 * the kernel's own signal frame (struct rt_sigframe) and the thread leaves
 * through rt_sigreturn: from the stub's restore code (stub.c), or from
 * libc's syscall() returning through x30 into the vDSO's
 * __kernel_rt_sigreturn before the stub page exists.  rt_sigreturn also
 * puts back the signal mask and the FP/SIMD registers.  Pure: it builds
 * bytes; remote_call.c writes them onto the thread's stack.
 *
 *   frame + 0     siginfo (128, zero)
 *   frame + 128   ucontext: uc_flags, uc_link, uc_stack, uc_sigmask
 *   frame + 304   sigcontext: fault_address, x0-x30, sp, pc, pstate
 *   frame + 592   fpsimd_context: FPSIMD_MAGIC, 528, fpsr, fpcr, v0-v31
 *   frame + 1120  the end record (0, 0); the frame is 4688 bytes in all
 *
 * Only the FP/SIMD part of an SVE thread's registers comes back this way
 * (the kernel drops the rest, as at a system call); extended_state.c puts
 * back the whole when hotpatch is alive to do it. */
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"

#define SIGFRAME_UCONTEXT 128
#define SIGFRAME_ALTSTACK_FLAGS (SIGFRAME_UCONTEXT + 24)
#define SIGFRAME_MASK (SIGFRAME_UCONTEXT + 40)
#define SIGFRAME_MCONTEXT (SIGFRAME_UCONTEXT + 176)
#define SIGFRAME_REGISTERS (SIGFRAME_MCONTEXT + 8)
#define SIGFRAME_RESERVED (SIGFRAME_MCONTEXT + 288)
#define SIGFRAME_SIZE (SIGFRAME_RESERVED + 4096)
#define FPSIMD_MAGIC 0x46508001u
#define FPSIMD_CONTEXT_SIZE 528u
/* Below the SP: arm64 has no red zone (a signal may land right below the
 * SP), so this is only a margin. */
#define GUARD 128

#if defined(__aarch64__)
#include <stddef.h>
#include <sys/ucontext.h>
/* glibc's ucontext_t is laid out as the kernel's struct ucontext. */
_Static_assert(offsetof(ucontext_t, uc_sigmask) == SIGFRAME_MASK - SIGFRAME_UCONTEXT,
	       "uc_sigmask");
_Static_assert(offsetof(ucontext_t, uc_mcontext) == SIGFRAME_MCONTEXT - SIGFRAME_UCONTEXT,
	       "uc_mcontext");
_Static_assert(offsetof(ucontext_t, uc_mcontext.__reserved) ==
		       SIGFRAME_RESERVED - SIGFRAME_UCONTEXT, "__reserved");
_Static_assert(offsetof(ucontext_t, uc_stack.ss_flags) ==
		       SIGFRAME_ALTSTACK_FLAGS - SIGFRAME_UCONTEXT, "ss_flags");
_Static_assert(sizeof(ucontext_t) + SIGFRAME_UCONTEXT == SIGFRAME_SIZE, "rt_sigframe");
#endif

/* The frame for `thread`, ending at or below `top`. */
static bool build(const struct hp_thread_image *thread, uint64_t top,
		  struct hp_frame_image *frame, bool *out_of_memory)
{
	const struct hp_registers *registers = thread->registers;
	const unsigned char *fpsimd = thread->extended->bytes;
	unsigned char *image;
	uint32_t header[4];
	int32_t invalid_flags = 3;	/* restore_altstack ignores it: the altstack stays */

	*out_of_memory = false;
	if (!thread->extended->size || top < SIGFRAME_SIZE + 16)
		return false;	/* no FP/SIMD state saved: the tracer puts the thread back */
	frame->address = (top - SIGFRAME_SIZE) & ~(uint64_t)15;
	frame->length = SIGFRAME_SIZE;
	image = frame->bytes = calloc(1, frame->length);
	if (!image) {
		*out_of_memory = true;
		return false;
	}
	memcpy(image + SIGFRAME_ALTSTACK_FLAGS, &invalid_flags, sizeof(invalid_flags));
	memcpy(image + SIGFRAME_MASK, &thread->signal_mask, sizeof(uint64_t));
	/* x0-x30, sp, pc, pstate: the order of struct user_pt_regs too. */
	memcpy(image + SIGFRAME_REGISTERS, &registers->user, sizeof(registers->user));
	/* user_fpsimd_state is v0-v31 (512 bytes), then fpsr and fpcr. */
	header[0] = FPSIMD_MAGIC;
	header[1] = FPSIMD_CONTEXT_SIZE;
	memcpy(&header[2], fpsimd + 512, 2 * sizeof(uint32_t));
	memcpy(image + SIGFRAME_RESERVED, header, sizeof(header));
	memcpy(image + SIGFRAME_RESERVED + sizeof(header), fpsimd, 512);
	return true;	/* the end record after it is zero already */
}

bool restore_frame_build(const struct hp_thread_image *thread, uint64_t below,
			 struct hp_frame_image *frame, bool *out_of_memory)
{
	return build(thread, below ? below : thread->registers->user.sp - GUARD, frame,
		     out_of_memory);
}

/* The same frame; the restorer is reached through x30
 * (registers_set_signal_return), not through the frame. */
bool signal_frame_build(const struct hp_thread_image *thread, uint64_t restorer,
			struct hp_frame_image *frame, bool *out_of_memory)
{
	*out_of_memory = false;
	if (!restorer)
		return false;	/* without it, the tracer puts the thread back */
	return build(thread, thread->registers->user.sp - GUARD, frame, out_of_memory);
}
