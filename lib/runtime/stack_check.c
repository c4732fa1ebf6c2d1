/* stack_check.c - the consistency check: unwinds a stopped thread and finds
 * whether any frame executes in, or will return into, a range being
 * changed.  A stack that cannot be unwound to its end, or that passes
 * through code without unwind information, is not known to be safe.  The
 * ranges are sorted once, so a patch of a thousand functions costs a binary
 * search per frame. */
#include <stdlib.h>
#include <string.h>

#include "runtime/threads.h"
#include "common/base.h"

struct hp_stack_checker {
	struct hp_unwinder *unwinder;
	size_t range_count;
	struct hp_range *ranges;	/* sorted by start, not overlapping */
	struct hp_stack stack;		/* scratch: one unwind at a time */
	uint64_t watch_start;		/* return trampolines whose use is noted */
	uint32_t watch_count, watched;	/* how many; a bit for each seen in use */
};

int stack_checker_create(pid_t pid, struct hp_stack_checker **checker, struct hp_error *error)
{
	struct hp_stack_checker *created = calloc(1, sizeof(*created));
	int status;

	*checker = NULL;
	if (!created)
		return hp_fail(error, HP_FAILED, "out of memory");
	status = unwinder_create(pid, &created->unwinder, error);
	if (status != HP_OK) {
		free(created);
		return status;
	}
	*checker = created;
	return HP_OK;
}

void stack_checker_release(struct hp_stack_checker *checker)
{
	if (!checker)
		return;
	unwinder_release(checker->unwinder);
	free(checker->ranges);
	free(checker);
}

static int by_start(const void *a, const void *b)
{
	const struct hp_range *left = a, *right = b;

	return left->start < right->start ? -1 : left->start > right->start;
}

int stack_checker_set_ranges(struct hp_stack_checker *checker, const struct hp_range *ranges,
			     size_t count, struct hp_error *error)
{
	struct hp_range *sorted = count ? malloc(count * sizeof(*sorted)) : NULL;
	size_t merged = 0;

	if (count && !sorted)
		return hp_fail(error, HP_FAILED, "out of memory");
	if (count)
		memcpy(sorted, ranges, count * sizeof(*sorted));
	qsort(sorted, count, sizeof(*sorted), by_start);
	/* Overlaps (two functions of one earlier patch) keep the first label. */
	for (size_t i = 0; i < count; i++) {
		if (merged > 0 && sorted[i].start < sorted[merged - 1].end) {
			if (sorted[i].end > sorted[merged - 1].end)
				sorted[merged - 1].end = sorted[i].end;
			continue;
		}
		sorted[merged++] = sorted[i];
	}
	free(checker->ranges);
	checker->ranges = sorted;
	checker->range_count = merged;
	return HP_OK;
}

void stack_checker_new_stop(struct hp_stack_checker *checker)
{
	unwinder_forget_volatile(checker->unwinder);
	checker->watched = 0;
}

void stack_checker_watch(struct hp_stack_checker *checker, uint64_t start, uint32_t count)
{
	checker->watch_start = start;
	checker->watch_count = count < 32 ? count : 32;
	checker->watched = 0;
}

void stack_checker_know_stub_page(struct hp_stack_checker *checker, uint64_t stub_page)
{
	unwinder_know_stub_page(checker->unwinder, stub_page);
}

uint32_t stack_checker_watched(const struct hp_stack_checker *checker)
{
	return checker->watched;
}

/* A thread that runs in a return trampoline, or will return through one
 * (a killed hotpatch left it on its way out), holds that trampoline. */
static void note_watched(struct hp_stack_checker *checker, uint64_t address)
{
	uint64_t end = checker->watch_start + (uint64_t)checker->watch_count * HP_STUB_TRAMPOLINE_SIZE;

	if (checker->watch_start && address >= checker->watch_start && address < end)
		checker->watched |= 1u << ((address - checker->watch_start) / HP_STUB_TRAMPOLINE_SIZE);
}

void stack_checker_reserve(struct hp_stack_checker *checker, size_t threads)
{
	unwinder_reserve(checker->unwinder, threads);
}

const struct hp_range *stack_checker_range_at(const struct hp_stack_checker *checker,
					      uint64_t address)
{
	size_t low = 0, high = checker->range_count;

	while (low < high) {
		size_t middle = low + (high - low) / 2;
		const struct hp_range *range = &checker->ranges[middle];

		if (address < range->start)
			high = middle;
		else if (address >= range->end)
			low = middle + 1;
		else
			return range;
	}
	return NULL;
}

/* Frame 0 executes at its ip; a caller's ip is a return address, and the
 * call that will return there is just before it. */
static uint64_t executing_address(const struct hp_stack *stack, size_t frame)
{
	return frame == 0 ? stack->frames[0].ip : stack->frames[frame].ip - 1;
}

static void fill_blocker(const struct hp_stack *stack, pid_t tid, struct hp_blocker *blocker)
{
	memset(blocker, 0, sizeof(*blocker));
	blocker->tid = tid;
	blocker->unreliable = !stack->complete;
	blocker->unknown_ip = stack->unknown_ip;
	blocker->unwind_error = stack->error_code;
	blocker->frame_count = stack->count;
	for (size_t i = 0; i < stack->count && i < HP_BACKTRACE_SHORT; i++)
		blocker->frames[i] = stack->frames[i].ip;
}

const struct hp_stack *stack_checker_unwind(struct hp_stack_checker *checker,
					    const struct hp_thread *thread)
{
	unwinder_unwind(checker->unwinder, &thread->regs, thread->pc_sp_only, &checker->stack);
	return &checker->stack;
}

/* Where the return address into `frame` is stored: where the unwind
 * information says, or else where the processor's call put it, when that
 * is a fixed place (x86-64's call pushes it just below the SP the callee
 * returns with; arm64's bl leaves it in x30, for the callee to store). */
static uint64_t return_slot(const struct hp_frame *frame)
{
	if (frame->return_slot)
		return frame->return_slot;
	return HP_RETURN_ADDRESS_BELOW_SP ? frame->sp - HP_RETURN_ADDRESS_BELOW_SP : 0;
}

bool stack_check_thread(struct hp_stack_checker *checker, const struct hp_thread *thread,
			bool allow_unreliable, struct hp_blocker *blocker)
{
	struct hp_stack *stack = &checker->stack;
	bool found = false;

	unwinder_unwind(checker->unwinder, &thread->regs, thread->pc_sp_only, stack);
	fill_blocker(stack, thread->tid, blocker);
	note_watched(checker, stack->unknown_ip);
	for (size_t i = 0; i < stack->count; i++)
		note_watched(checker, stack->frames[i].ip);
	for (size_t i = 0; i < stack->count; i++) {
		const struct hp_range *range =
			stack_checker_range_at(checker, executing_address(stack, i));

		if (!range)
			continue;
		if (!found) {
			blocker->range = range;
			blocker->frame = i;
			found = true;
		}
		/* Where the outermost frame in a range returns to: the caller's
		 * SP.  Unknown when that frame is the last one unwound. */
		blocker->return_ip = i + 1 < stack->count ? stack->frames[i + 1].ip : 0;
		blocker->return_sp = i + 1 < stack->count ? stack->frames[i + 1].sp : 0;
		blocker->return_slot = i + 1 < stack->count ? return_slot(&stack->frames[i + 1]) : 0;
	}
	return found || (blocker->unreliable && !allow_unreliable);
}
