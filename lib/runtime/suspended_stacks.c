/* suspended_stacks.c - which copies of return addresses are dead.  A copy
 * the scan found counts as a suspended frame unless it lies where no frame
 * can be: in a stack some thread runs on in the stop (its live frames are
 * unwound and checked, what lies below them is dead), or in the stack of a
 * suspended makecontext coroutine below the stack pointer its saved
 * context resumes with.  Stacks are known by what marks them: [stack] for
 * the main thread, the thread descriptor glibc keeps at the top of another
 * thread's, and the uc_stack of a saved ucontext_t.  Reads the target,
 * never writes it. */
#include <stdlib.h>
#include <string.h>

#include "runtime/threads.h"
#include "arch/arch.h"
#include "common/base.h"
#include "common/proc_maps.h"
#include "runtime/target.h"

/* Saved contexts kept from one scan. */
#define CONTEXTS_MAX 16384u

/* The mapping holding `address`: /proc lists them in order, so a search
 * costs little even with a stack and a guard page for every thread. */
static const struct hp_mapping *mapping_at(const struct hp_maps *maps, uint64_t address)
{
	for (size_t low = 0, high = maps->count; low < high;) {
		size_t middle = low + (high - low) / 2;

		if (maps->items[middle].start > address)
			high = middle;
		else if (address >= maps->items[middle].end)
			low = middle + 1;
		else
			return &maps->items[middle];
	}
	return NULL;
}

void suspended_note_context(struct hp_suspended_scan *scan, const unsigned char *head,
			    uint64_t address)
{
	struct hp_saved_context context;
	const struct hp_mapping *mapping;

	/* Only a context that resumes on a stack of its own, which lies in one
	 * mapping there is now, says what of that stack is dead. */
	if (!saved_context_read(head, address, &context) || context.stack_size == 0 ||
	    context.stack + context.stack_size < context.stack || context.sp <= context.stack ||
	    context.sp > context.stack + context.stack_size)
		return;
	mapping = mapping_at(&scan->maps, context.stack);
	if (!mapping || context.stack + context.stack_size > mapping->end)
		return;
	if (scan->context_count == scan->context_capacity) {
		size_t capacity = scan->context_capacity ? scan->context_capacity * 2 : 16;
		struct hp_suspended_context *larger =
			capacity <= CONTEXTS_MAX ? realloc(scan->contexts, capacity * sizeof(*larger))
						 : NULL;

		if (!larger)
			return;	/* not knowing a stack only keeps more copies in the way */
		scan->contexts = larger;
		scan->context_capacity = capacity;
	}
	scan->contexts[scan->context_count++] = (struct hp_suspended_context){
		address, context.stack, context.stack + context.stack_size
	};
}

static int by_stack(const void *a, const void *b)
{
	const struct hp_suspended_context *left = a, *right = b;

	return left->stack < right->stack ? -1 : left->stack > right->stack;
}

void suspended_sort_contexts(struct hp_suspended_scan *scan)
{
	size_t kept = 0;

	if (scan->context_count > 1)
		qsort(scan->contexts, scan->context_count, sizeof(*scan->contexts), by_stack);
	/* Two contexts on overlapping stacks: one is stale (a finished
	 * coroutine's, its stack given to another), and which is unknown, so
	 * neither tells what is dead. */
	for (size_t i = 0; i < scan->context_count; i++) {
		bool overlaps = (i > 0 && scan->contexts[i - 1].end > scan->contexts[i].stack) ||
				(i + 1 < scan->context_count &&
				 scan->contexts[i].end > scan->contexts[i + 1].stack);

		if (!overlaps)
			scan->contexts[kept++] = scan->contexts[i];
	}
	scan->context_count = kept;
}

/* The saved context whose stack holds `address`, or NULL. */
static const struct hp_suspended_context *context_at(const struct hp_suspended_scan *scan,
						      uint64_t address)
{
	size_t low = 0, high = scan->context_count;

	while (low < high) {
		size_t middle = low + (high - low) / 2;

		if (scan->contexts[middle].stack <= address)
			low = middle + 1;
		else
			high = middle;
	}
	return low > 0 && address < scan->contexts[low - 1].end ? &scan->contexts[low - 1] : NULL;
}

static const struct hp_mapping *main_stack(const struct hp_maps *maps)
{
	for (size_t m = 0; m < maps->count; m++)
		if (strcmp(maps->items[m].path, "[stack]") == 0)
			return &maps->items[m];
	return NULL;
}

/* The stack a stopped thread runs on, when it is known: its own, or a
 * saved context's. */
static bool running_stack(const struct hp_suspended_scan *scan, const struct hp_threads *threads,
			  const struct hp_thread *thread, struct hp_range *stack)
{
	uint64_t sp = registers_sp(&thread->regs);
	const struct hp_mapping *own =
		thread->tid == threads->pid
			? main_stack(&scan->maps)
			: mapping_at(&scan->maps, registers_thread_pointer(&thread->regs));
	const struct hp_suspended_context *context = context_at(scan, sp);

	if (own && sp >= own->start && sp < own->end)
		*stack = (struct hp_range){ own->start, own->end, NULL };
	else if (context)
		*stack = (struct hp_range){ context->stack, context->end, NULL };
	else
		return false;
	return true;
}

static int by_start(const void *a, const void *b)
{
	const struct hp_range *left = a, *right = b;

	return left->start < right->start ? -1 : left->start > right->start;
}

int dead_memory_open(struct hp_dead_memory *dead, const struct hp_suspended_scan *scan,
		     struct hp_memory *memory, const struct hp_threads *threads)
{
	const struct hp_mapping *leader = main_stack(&scan->maps);

	memset(dead, 0, sizeof(*dead));
	dead->scan = scan;
	dead->memory = memory;
	dead->cached = SIZE_MAX;
	dead->running = malloc((threads->count + 1) * sizeof(*dead->running));
	if (!dead->running)
		return HP_FAILED;
	/* The stack of a main thread that has exited is dead whole. */
	if (threads->leader_is_zombie && leader)
		dead->running[dead->running_count++] = (struct hp_range){ leader->start, leader->end,
									  NULL };
	/* A thread on no stack known (a signal stack, a coroutine library's)
	 * leaves its own suspended: every copy in it counts. */
	for (size_t i = 0; i < threads->count; i++)
		if (threads->items[i].stopped &&
		    running_stack(scan, threads, &threads->items[i],
				  &dead->running[dead->running_count]))
			dead->running_count++;
	if (dead->running_count > 1)
		qsort(dead->running, dead->running_count, sizeof(*dead->running), by_start);
	return HP_OK;
}

static bool in_running(const struct hp_dead_memory *dead, uint64_t address)
{
	for (size_t low = 0, high = dead->running_count; low < high;) {
		size_t middle = low + (high - low) / 2;

		if (dead->running[middle].start > address)
			high = middle;
		else if (address >= dead->running[middle].end)
			low = middle + 1;
		else
			return true;
	}
	return false;
}

/* Below the stack pointer a suspended coroutine resumes with, read again
 * now: nothing there returns anywhere.  The word just below it is the
 * return address of its switch (swapcontext's caller), which is live. */
static bool below_saved_sp(struct hp_dead_memory *dead, const struct hp_suspended_context *context,
			   uint64_t address)
{
	size_t index = (size_t)(context - dead->scan->contexts);
	unsigned char head[HP_CONTEXT_HEAD];

	if (dead->cached != index) {
		struct hp_error ignored = { 0 };
		struct hp_saved_context now;

		dead->cached = index;
		dead->cached_sp = 0;
		/* Still that context, on that stack: else nothing is known. */
		if (target_memory_read(dead->memory, context->address, head, sizeof(head), &ignored) ==
			    HP_OK &&
		    saved_context_read(head, context->address, &now) && now.stack == context->stack &&
		    now.stack + now.stack_size == context->end && now.sp > context->stack &&
		    now.sp <= context->end)
			dead->cached_sp = now.sp;
	}
	return dead->cached_sp && address + sizeof(uint64_t) < dead->cached_sp;
}

bool dead_memory_holds(struct hp_dead_memory *dead, uint64_t address)
{
	const struct hp_suspended_context *context;

	if (in_running(dead, address))
		return true;
	context = context_at(dead->scan, address);
	return context && below_saved_sp(dead, context, address);
}

void dead_memory_close(struct hp_dead_memory *dead)
{
	free(dead->running);
	dead->running = NULL;
	dead->running_count = 0;
}
