/* stack_check.c - the consistency check: unwinds every stopped thread with
 * libunwind and refuses when any frame executes in, or will return into, a
 * range being changed.  A stack that cannot be unwound to its end counts as
 * busy.  One address space with a global cache serves every thread and every
 * retry, so unwind information is not re-read per thread. */
#include <inttypes.h>
#include <libunwind-ptrace.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FRAMES_MAX 512
#define BACKTRACE_SHOWN 8

struct hp_stack_checker {
	pid_t pid;
	unw_addr_space_t space;
};

int stack_checker_create(pid_t pid, struct hp_stack_checker **checker, struct hp_error *error)
{
	struct hp_stack_checker *created = calloc(1, sizeof(*created));

	if (!created)
		return hp_fail(error, HP_FAILED, "out of memory");
	created->pid = pid;
	created->space = unw_create_addr_space(&_UPT_accessors, 0);
	if (!created->space) {
		free(created);
		return hp_fail(error, HP_FAILED, "libunwind cannot create an address space");
	}
	unw_set_caching_policy(created->space, UNW_CACHE_GLOBAL);
	*checker = created;
	return HP_OK;
}

void stack_checker_release(struct hp_stack_checker *checker)
{
	if (!checker)
		return;
	unw_destroy_addr_space(checker->space);
	free(checker);
}

static const struct hp_range *range_of(const struct hp_range *ranges, size_t count,
				       uint64_t address)
{
	for (size_t i = 0; i < count; i++)
		if (address >= ranges[i].start && address < ranges[i].end)
			return &ranges[i];
	return NULL;
}

struct unwound {
	uint64_t frames[FRAMES_MAX];
	size_t count;
	bool complete;
	int error_code;
};

static void unwind_thread(unw_addr_space_t space, pid_t tid, struct unwound *stack)
{
	void *context = _UPT_create(tid);
	unw_cursor_t cursor;
	int step = -1;

	stack->count = 0;
	stack->complete = false;
	stack->error_code = 0;
	if (!context)
		return;
	stack->error_code = unw_init_remote(&cursor, space, context);
	if (stack->error_code == 0) {
		do {
			unw_word_t ip = 0;

			if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || stack->count >= FRAMES_MAX)
				break;
			stack->frames[stack->count++] = ip;
			step = unw_step(&cursor);
		} while (step > 0);
		stack->complete = step == 0;
		stack->error_code = step;
	}
	_UPT_destroy(context);
}

static void describe_backtrace(const struct unwound *stack, struct hp_error *error)
{
	for (size_t i = 0; i < stack->count && i < BACKTRACE_SHOWN; i++)
		hp_detail(error, "  #%zu 0x%" PRIx64, i, stack->frames[i]);
}

static int check_one(struct hp_stack_checker *checker, pid_t tid, const struct hp_range *ranges,
		     size_t range_count, struct unwound *stack, struct hp_error *error)
{
	unwind_thread(checker->space, tid, stack);
	for (size_t i = 0; i < stack->count; i++) {
		/* A caller's frame holds a return address: the call is just before. */
		uint64_t address = i == 0 ? stack->frames[i] : stack->frames[i] - 1;
		const struct hp_range *range = range_of(ranges, range_count, address);

		if (!range)
			continue;
		error->tid = tid;
		hp_error_function(error, range->label);
		describe_backtrace(stack, error);
		hp_hint(error, "retry later or with a longer --timeout");
		return hp_fail(error, HP_BUSY, "thread %d of pid %d %s %s (frame #%zu, 0x%" PRIx64 ")",
			       (int)tid, (int)checker->pid, i == 0 ? "is running in" : "will return into",
			       range->label, i, stack->frames[i]);
	}
	if (!stack->complete) {
		error->tid = tid;
		describe_backtrace(stack, error);
		hp_hint(error, "a stack that cannot be unwound to its end is not known to be safe");
		return hp_fail(error, HP_BUSY,
			       "cannot unwind the stack of thread %d of pid %d past frame #%zu (libunwind error %d)",
			       (int)tid, (int)checker->pid, stack->count, stack->error_code);
	}
	return HP_OK;
}

int stack_check_threads(struct hp_stack_checker *checker, const struct hp_threads *threads,
			const struct hp_range *ranges, size_t range_count, struct hp_error *error)
{
	struct unwound *stack = malloc(sizeof(*stack));
	int status = HP_OK;

	if (!stack)
		return hp_fail(error, HP_FAILED, "out of memory");
	for (size_t i = 0; status == HP_OK && i < threads->count; i++)
		if (threads->items[i].stopped)
			status = check_one(checker, threads->items[i].tid, ranges, range_count,
					   stack, error);
	free(stack);
	return status;
}
