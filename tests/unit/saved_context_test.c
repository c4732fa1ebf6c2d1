/* saved_context_test.c - saved_context_read on contexts that this very
 * process saves with getcontext, and on bytes that are not one. */
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "check.h"
#include "arch/arch.h"

static unsigned char coroutine_stack[64 << 10];

static void test_getcontext(void)
{
	ucontext_t context;
	struct hp_saved_context read;
	uint64_t here = (uint64_t)(uintptr_t)&read;

	CHECK(getcontext(&context) == 0, "getcontext");
	CHECK(saved_context_read((const unsigned char *)&context, (uint64_t)(uintptr_t)&context,
				 &read),
	      "a context getcontext saved is one");
	CHECK(read.sp > here - 4096 && read.sp < here + 4096, "its stack pointer is ours");
	CHECK(read.pc != 0, "it resumes somewhere");
}

/* What makecontext reads: the stack a coroutine is given.  (Switching to
 * one is left to the bats tests: ASan warns about swapcontext.) */
static void test_stack(void)
{
	ucontext_t context;
	struct hp_saved_context read;

	CHECK(getcontext(&context) == 0, "getcontext");
	context.uc_stack.ss_sp = coroutine_stack;
	context.uc_stack.ss_size = sizeof(coroutine_stack);
	CHECK(saved_context_read((const unsigned char *)&context, (uint64_t)(uintptr_t)&context,
				 &read),
	      "still a context");
	CHECK(read.stack == (uint64_t)(uintptr_t)coroutine_stack &&
		      read.stack_size == sizeof(coroutine_stack),
	      "its stack is the one given");
}

static void test_not_a_context(void)
{
	ucontext_t context;
	struct hp_saved_context read;

	CHECK(getcontext(&context) == 0, "getcontext");
#if defined(__x86_64__)
	/* Moved elsewhere, its mark points into the old place, not into itself.
	 * (arm64's mark is a record, the same wherever the context is.) */
	CHECK(!saved_context_read((const unsigned char *)&context,
				  (uint64_t)(uintptr_t)&context + 8, &read),
	      "a context read at another address is none");
#endif
	memset(&context, 0, sizeof(context));
	CHECK(!saved_context_read((const unsigned char *)&context, (uint64_t)(uintptr_t)&context,
				  &read),
	      "zeroes are no context");
}

int main(void)
{
	test_getcontext();
	test_stack();
	test_not_a_context();
	return check_report();
}
