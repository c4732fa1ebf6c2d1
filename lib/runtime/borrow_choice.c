/* borrow_choice.c - choosing the thread that runs dlopen in the target.  A
 * thread stopped inside the dynamic loader or the allocator may hold their
 * locks, and dlopen on it would wait for itself forever; so a candidate is
 * stopped and unwound, and refused when any frame is in the loader, in a
 * loader entry point of libc or in the allocator.  Threads blocked in a
 * system call other than a futex wait are tried first: they are the least
 * likely to be in either, and nothing of theirs is cut short. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/session.h"
#include "common/base.h"
#include "runtime/target.h"
#include "runtime/threads.h"

#define FUTEX_SYSCALL 202
#define CANDIDATES_PER_ROUND 8
#define ROUND_PAUSE 0.005
#define STOP_SECONDS 2.0

/* The allocator's entry points, whichever object provides them. */
static const char *const allocator_functions[] = {
	"malloc", "free", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign",
	"aligned_alloc", "valloc", "pvalloc", "malloc_trim", "malloc_usable_size", "cfree",
};

/* Inside libc: the allocator's internals, the loader's entry points (and
 * dl_iterate_phdr, which holds the loader's lock around its callback), and
 * fork, whose handlers take both. */
static const char *const libc_prefixes[] = {
	"malloc", "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc",
	"__libc_memalign", "__libc_valloc", "__libc_pvalloc", "_int_", "sysmalloc", "tcache",
	"arena_", "_dl_", "dl", "__dl", "__libc_dl", "fork", "_Fork", "__libc_fork",
};

/* -1 the test build's choice, 0 blocked in a call other than a futex
 * wait, 1 in a futex wait, 2 running; 3 not looked at (`look` false). */
static int rank(pid_t pid, pid_t tid, bool look)
{
	long number;
	char step[32];

	/* The test build can name the thread to try first (HOTPATCH_FAULT=
	 * borrow-tid-TID), so that each kind of blocked call is borrowed. */
	snprintf(step, sizeof(step), "borrow-tid-%d", (int)tid);
	if (hp_fault(step))
		return -1;
	if (!look)
		return 3;
	number = thread_blocked_syscall(pid, tid);
	return number < 0 ? 2 : number == FUTEX_SYSCALL ? 1 : 0;
}

static bool starts_with(const char *text, const char *prefix)
{
	return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* Why a frame makes its thread unfit to run dlopen, or NULL. */
static const char *unfit_frame(struct hp_target *target, uint64_t address)
{
	struct hp_object *object = NULL;
	const char *name = target_function_at(target, address, &object, NULL);
	const char *file = object ? hp_base_name(object->path) : "";

	if (starts_with(file, "ld-linux") || starts_with(file, "ld64.so") ||
	    starts_with(file, "ld.so"))
		return "in the dynamic loader";
	if (!name)
		return NULL;
	for (size_t i = 0; i < HP_ARRAY_SIZE(allocator_functions); i++)
		if (strcmp(name, allocator_functions[i]) == 0)
			return "in the allocator";
	if (!starts_with(file, "libc.so"))
		return NULL;
	for (size_t i = 0; i < HP_ARRAY_SIZE(libc_prefixes); i++)
		if (starts_with(name, libc_prefixes[i]))
			return "in the loader or the allocator";
	return NULL;
}

/* Whether the stopped thread may run dlopen. */
static bool fit(struct hp_session *session, pid_t tid)
{
	const struct hp_thread *thread = threads_find(&session->threads, tid);
	const struct hp_stack *stack;

	if (!thread)
		return false;
	stack_checker_new_stop(session->checker);
	stack = stack_checker_unwind(session->checker, thread);
	if (!stack->complete)
		return false;	/* what is not seen may be the loader */
	for (size_t i = 0; i < stack->count; i++)
		if (unfit_frame(&session->target, i == 0 ? stack->frames[i].ip
							 : stack->frames[i].ip - 1))
			return false;
	return true;
}

static int by_rank(const void *a, const void *b)
{
	const long *left = a, *right = b;

	return (left[0] > right[0]) - (left[0] < right[0]);
}

/* One pass over the threads, best ranked first. */
static int try_round(struct hp_session *session, pid_t *chosen, struct hp_error *error)
{
	pid_t *tids = NULL;
	size_t count = 0;
	long (*ranked)[2] = NULL;
	int status = threads_list(session->pid, &tids, &count, error);

	if (status == HP_OK && count > 0 && !(ranked = calloc(count, sizeof(*ranked))))
		status = hp_fail(error, HP_FAILED, "out of memory");
	/* Once a round's worth of the best kind is found, the others are not
	 * read: at a thousand threads, reading each one's system call took
	 * milliseconds a round. */
	for (size_t i = 0, best = 0; status == HP_OK && i < count; i++) {
		ranked[i][0] = rank(session->pid, tids[i], best < CANDIDATES_PER_ROUND);
		ranked[i][1] = tids[i];
		best += ranked[i][0] == 0;
	}
	if (ranked)
		qsort(ranked, count, sizeof(*ranked), by_rank);
	for (size_t i = 0; status == HP_OK && i < count && i < CANDIDATES_PER_ROUND; i++) {
		pid_t tid = (pid_t)ranked[i][1];
		struct hp_error skipped = { 0 };

		/* A thread that exits meanwhile, or does not stop within the bound
		 * (one on its way out), is only skipped; a failed system call (no
		 * permission, another tracer) is the command's. */
		/* A stop takes microseconds; the bound is not the command's
		 * deadline, which may be spent by the last round. */
		if (threads_stop_one(&session->threads, tid, hp_now() + STOP_SECONDS, &skipped) !=
		    HP_OK) {
			threads_resume_all(&session->threads);
			if (thread_is_alive(session->pid, tid) && skipped.error_number != 0) {
				*error = skipped;
				status = skipped.status ? skipped.status : HP_FAILED;
			}
			continue;
		}
		if (fit(session, tid)) {
			*chosen = tid;
			break;
		}
		threads_resume_all(&session->threads);
	}
	free(ranked);
	free(tids);
	return status;
}

int borrow_choose_thread(struct hp_session *session, pid_t *chosen, struct hp_error *error)
{
	*chosen = 0;
	for (;;) {
		int status = try_round(session, chosen, error);

		if (status != HP_OK || *chosen)
			return status;
		if (hp_remaining(session->deadline) <= 0 || session_interrupted(session))
			break;
		hp_sleep(ROUND_PAUSE);
	}
	hp_hint(error, "retry later or with a longer --timeout");
	return hp_fail(error, HP_BUSY,
		       "no thread of pid %d is outside the dynamic loader and the allocator, where "
		       "running dlopen could deadlock",
		       (int)session->pid);
}
