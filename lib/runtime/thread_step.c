/* thread_step.c - a held thread walked out of a few instructions of our own
 * code (a gate's moved prologue, which no thread may be in when the gate
 * goes) one instruction at a time, while it stays traced.  The code it
 * runs is ours and makes no system call, so each step ends at once.
 *
 * Its signals are not blocked meanwhile: a blocked mask left behind by a
 * hotpatch killed between two steps would outlive us.  A signal that
 * arrives instead is delivered, as any stop of ours does, and the thread
 * held again wherever its handler leaves it: the caller looks at it there. */
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "runtime/threads.h"
#include "common/base.h"

/* The stop that ends one step: a trap, not a ptrace event. */
static bool is_step_trap(int status)
{
	return WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP && (status >> 16) == 0;
}

/* Any other stop: passed on (a signal delivered), and the thread held
 * again where it then is. */
static int hold_again(struct hp_threads *threads, pid_t tid, int status, double deadline,
		      struct hp_error *error)
{
	struct hp_thread *thread = NULL;
	enum thread_event event = threads_classify(threads, tid, status, &thread);

	if (event == THREAD_GONE || event == THREAD_HELD || !thread)
		return HP_OK;
	thread->stopped = false;
	if (threads_pass_on(thread, event, status, error) != HP_OK)
		return HP_FAILED;
	return threads_stop_one(threads, tid, deadline, error);
}

int thread_step_out(struct hp_threads *threads, pid_t tid, uint64_t start, uint64_t end,
		    unsigned most, double deadline, struct hp_error *error)
{
	struct hp_thread *thread = threads_find(threads, tid);

	if (!thread || !thread->stopped || thread->group_stop)
		return HP_OK;
	for (unsigned step = 0; step < most; step++) {
		uint64_t pc = registers_pc(&thread->regs);
		int status = 0, waited;

		if (pc < start || pc >= end)
			return HP_OK;
		if (ptrace(PTRACE_SINGLESTEP, tid, NULL, NULL) != 0) {
			error->tid = tid;
			return hp_fail_errno(error, HP_FAILED, "cannot step thread %d", (int)tid);
		}
		thread->stopped = false;
		waited = threads_wait_or_gone(threads, tid, deadline, &status, error);
		if (waited <= 0)
			return waited < 0 ? HP_FAILED : HP_OK;	/* 0: exited, forgotten */
		if (!is_step_trap(status))
			return hold_again(threads, tid, status, deadline, error);
		thread->stopped = true;
		if (registers_read(tid, &thread->regs) != 0) {
			error->tid = tid;
			return hp_fail_errno(error, HP_FAILED, "cannot read the registers of thread %d",
					     (int)tid);
		}
	}
	return HP_OK;
}
