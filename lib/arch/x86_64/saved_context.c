/* saved_context.c - glibc's ucontext_t on x86-64, as getcontext and
 * swapcontext leave it: a pointer into itself marks it, and it holds the
 * stack pointer it resumes with and the stack makecontext gave it.  Pure:
 * it reads bytes handed in. */
#include <stddef.h>
#include <string.h>
#include <sys/ucontext.h>

#include "arch/arch.h"

_Static_assert(offsetof(ucontext_t, uc_mcontext.fpregs) == HP_CONTEXT_MARK,
	       "the mark is where glibc keeps fpregs");
_Static_assert(offsetof(ucontext_t, __fpregs_mem) ==
		       HP_CONTEXT_MARK + HP_CONTEXT_MARK_DISTANCE,
	       "fpregs points that far into the context");
_Static_assert(HP_CONTEXT_HEAD == HP_CONTEXT_MARK + sizeof(uint64_t),
	       "the head ends with the mark");

static uint64_t word(const unsigned char *head, size_t offset)
{
	uint64_t value;

	memcpy(&value, head + offset, sizeof(value));
	return value;
}

bool saved_context_read(const unsigned char head[HP_CONTEXT_HEAD], uint64_t address,
			struct hp_saved_context *context)
{
	size_t registers = offsetof(ucontext_t, uc_mcontext.gregs);

	if (word(head, HP_CONTEXT_MARK) != address + HP_CONTEXT_MARK + HP_CONTEXT_MARK_DISTANCE)
		return false;
	context->pc = word(head, registers + REG_RIP * sizeof(greg_t));
	context->sp = word(head, registers + REG_RSP * sizeof(greg_t));
	context->stack = word(head, offsetof(ucontext_t, uc_stack.ss_sp));
	context->stack_size = word(head, offsetof(ucontext_t, uc_stack.ss_size));
	return true;
}
