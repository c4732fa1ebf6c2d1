/* saved_context.c - glibc's ucontext_t on arm64, as getcontext and
 * swapcontext leave it: its __reserved area starts with an fpsimd_context
 * record (FPSIMD_MAGIC, 528), which marks it, and it holds the pc and SP it
 * resumes with and the stack makecontext gave it.  Pure: it reads bytes
 * handed in. */
#include <stddef.h>
#include <string.h>

#include "arch/arch.h"

#define CONTEXT_STACK 16	/* uc_stack.ss_sp */
#define CONTEXT_STACK_SIZE 32	/* uc_stack.ss_size */
#define CONTEXT_SP 432		/* uc_mcontext.sp */
#define CONTEXT_PC 440		/* uc_mcontext.pc */

#if defined(__aarch64__)
#include <sys/ucontext.h>
_Static_assert(offsetof(ucontext_t, uc_mcontext.__reserved) == HP_CONTEXT_MARK, "the mark");
_Static_assert(offsetof(ucontext_t, uc_mcontext.sp) == CONTEXT_SP, "sp");
_Static_assert(offsetof(ucontext_t, uc_mcontext.pc) == CONTEXT_PC, "pc");
_Static_assert(offsetof(ucontext_t, uc_stack.ss_sp) == CONTEXT_STACK, "ss_sp");
_Static_assert(offsetof(ucontext_t, uc_stack.ss_size) == CONTEXT_STACK_SIZE, "ss_size");
#endif
_Static_assert(HP_CONTEXT_HEAD == HP_CONTEXT_MARK + sizeof(uint64_t), "the head ends with the mark");

static uint64_t word(const unsigned char *head, size_t offset)
{
	uint64_t value;

	memcpy(&value, head + offset, sizeof(value));
	return value;
}

bool saved_context_read(const unsigned char head[HP_CONTEXT_HEAD], uint64_t address,
			struct hp_saved_context *context)
{
	(void)address;
	if (!saved_context_is_mark(word(head, HP_CONTEXT_MARK), address + HP_CONTEXT_MARK) ||
	    word(head, CONTEXT_PC) % 4 != 0)
		return false;
	context->pc = word(head, CONTEXT_PC);
	context->sp = word(head, CONTEXT_SP);
	context->stack = word(head, CONTEXT_STACK);
	context->stack_size = word(head, CONTEXT_STACK_SIZE);
	return true;
}
