/* restore_frame.c - images of the frames an x86-64 thread restores itself
 * from when hotpatch is gone: the frame the stub's restore code pops
 * (drawn in stub.c), and a kernel signal frame for rt_sigreturn, used
 * before the stub page exists.  Pure: it builds bytes; remote_call.c
 * writes them onto the thread's stack. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"

#define RED_ZONE 128
#define FRAME_WORDS 21		/* mask, 15 registers, rip cs rflags rsp ss */
#define FRAME_SIZE (FRAME_WORDS * 8)

/* The kernel's signal frame (struct rt_sigframe) as rt_sigreturn reads it. */
#define SIGFRAME_UCONTEXT 8
#define SIGFRAME_MCONTEXT (SIGFRAME_UCONTEXT + 40)
#define SIGFRAME_MASK (SIGFRAME_UCONTEXT + 296)
#define SIGFRAME_SIZE (SIGFRAME_UCONTEXT + 304 + 128)	/* and siginfo */
#define UC_FLAGS 7	/* UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS */
#define FX_SW_XSTATE_SIZE 464 + 16	/* in the fxsave area's software bytes */

bool restore_frame_build(const struct hp_thread_image *thread, uint64_t below,
			 struct hp_frame_image *frame, bool *out_of_memory)
{
	const struct user_regs_struct *regs = &thread->registers->user;
	const struct hp_extended_state *extended = thread->extended;
	uint64_t xsave_area, words[FRAME_WORDS];

	*out_of_memory = false;
	if (!extended->size)
		return false;	/* no XSAVE: the tracer puts the thread back */
	frame->address = ((below ? below : regs->rsp - RED_ZONE) - extended->size - FRAME_SIZE -
			  64) & ~(uint64_t)15;
	xsave_area = (frame->address + FRAME_SIZE + 63) & ~(uint64_t)63;
	words[0] = thread->signal_mask;
	memcpy(&words[1], (uint64_t[15]){ regs->r15, regs->r14, regs->r13, regs->r12, regs->r11,
					   regs->r10, regs->r9, regs->r8, regs->rdi, regs->rsi,
					   regs->rbp, regs->rbx, regs->rdx, regs->rcx, regs->rax },
	       15 * sizeof(uint64_t));
	memcpy(&words[16], (uint64_t[5]){ regs->rip, regs->cs, regs->eflags, regs->rsp, regs->ss },
	       5 * sizeof(uint64_t));
	frame->length = (size_t)(xsave_area - frame->address) + extended->size;
	frame->bytes = calloc(1, frame->length);
	if (!frame->bytes) {
		*out_of_memory = true;
		return false;
	}
	memcpy(frame->bytes, words, sizeof(words));
	memcpy(frame->bytes + (xsave_area - frame->address), extended->bytes, extended->size);
	return true;
}

/* Its alternate signal stack is left alone (an invalid ss_flags is ignored
 * by rt_sigreturn). */
bool signal_frame_build(const struct hp_thread_image *thread, uint64_t restorer,
			struct hp_frame_image *frame, bool *out_of_memory)
{
	const struct user_regs_struct *regs = &thread->registers->user;
	const struct hp_extended_state *extended = thread->extended;
	uint64_t base, fpstate, *context;
	uint32_t magic = FP_XSTATE_MAGIC2, fp_size;	/* <signal.h>'s */
	unsigned char *image;

	*out_of_memory = false;
	if (!restorer || !extended->size)
		return false;	/* without them, the tracer puts the thread back */
	memcpy(&fp_size, extended->bytes + FX_SW_XSTATE_SIZE, sizeof(fp_size));
	if (fp_size < 512 || fp_size > extended->size)
		fp_size = (uint32_t)extended->size;
	base = (regs->rsp - RED_ZONE - SIGFRAME_SIZE - 64 - fp_size - sizeof(magic)) &
	       ~(uint64_t)15;
	fpstate = (base + SIGFRAME_SIZE + 63) & ~(uint64_t)63;
	frame->address = base;
	frame->length = (size_t)(fpstate - base) + fp_size + sizeof(magic);
	image = frame->bytes = calloc(1, frame->length);
	if (!image) {
		*out_of_memory = true;
		return false;
	}
	memcpy(image, &restorer, sizeof(uint64_t));	/* the `ret` takes it */
	memcpy(image + SIGFRAME_UCONTEXT, (uint64_t[5]){ UC_FLAGS, 0, 0, 3, 0 }, 40);
	context = (uint64_t *)(image + SIGFRAME_MCONTEXT);
	memcpy(context, (uint64_t[18]){ regs->r8, regs->r9, regs->r10, regs->r11, regs->r12,
					regs->r13, regs->r14, regs->r15, regs->rdi, regs->rsi,
					regs->rbp, regs->rbx, regs->rdx, regs->rax, regs->rcx,
					regs->rsp, regs->rip, regs->eflags },
	       18 * sizeof(uint64_t));
	context[18] = (regs->cs & 0xffff) | ((regs->ss & 0xffff) << 48);	/* cs, gs, fs, ss */
	context[23] = fpstate;
	memcpy(image + SIGFRAME_MASK, &thread->signal_mask, sizeof(uint64_t));
	memcpy(image + (fpstate - base), extended->bytes, fp_size);
	memcpy(image + (fpstate - base) + fp_size, &magic, sizeof(magic));
	return true;
}
