/* thread_move.c - getting one busy thread out of the code being replaced
 * while every other thread stays stopped.  We single-step it: nothing is
 * written to the target (no breakpoint another thread could hit, nothing
 * left behind if we die: the kernel clears the trap flag when a tracer
 * goes), and the thread runs its own code exactly as it would have.  It
 * is out once it executes outside every range with its stack pointer at or
 * above where the outermost replaced frame returns.  A thread that blocks
 * (a lock held by a stopped thread, a system call) is interrupted when the
 * budget is spent; the caller then falls back to resuming everyone. */
#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "internal.h"

static bool is_out(const struct hp_thread *thread, const struct hp_blocker *blocker,
		   const struct hp_stack_checker *checker)
{
	return thread->regs.rsp >= blocker->return_sp &&
	       !stack_checker_range_at(checker, thread->regs.rip);
}

/* Our single step completed, as opposed to a SIGTRAP meant for the program
 * (int3 reports SI_KERNEL, kill and tgkill SI_USER or SI_TKILL).  A step
 * that ends a system call is reported as TRAP_BRKPT, any other TRAP_TRACE. */
static bool is_step_trap(pid_t tid)
{
	siginfo_t info;

	return ptrace(PTRACE_GETSIGINFO, tid, NULL, &info) == 0 &&
	       (info.si_code == TRAP_TRACE || info.si_code == TRAP_BRKPT);
}

/* Whether a SIGTRAP waits for `tid`: a step that completed just as we
 * interrupted it queues one behind the interrupt stop. */
static bool trap_pending(pid_t pid, pid_t tid)
{
	char path[80], text[2048], *line;
	unsigned long long pending = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	if (proc_read_small(path, text, sizeof(text)) <= 0)
		return false;
	line = strstr(text, "\nSigPnd:");
	return line && sscanf(line, "\nSigPnd: %llx", &pending) == 1 &&
	       (pending & (1ull << (SIGTRAP - 1)));
}

/* The budget is spent while the thread runs: hold it again where it is.  A
 * step that completes meanwhile must never reach the program as a SIGTRAP
 * (which would kill it): it is held in that signal's delivery stop, from
 * which resuming it with no signal discards the trap. */
static int give_up(struct hp_threads *threads, pid_t tid, struct hp_error *error)
{
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) != 0)
		return errno == ESRCH ? HP_BUSY
				      : hp_fail_errno(error, HP_FAILED, "cannot stop thread %d", (int)tid);
	for (;;) {
		struct hp_thread *thread = NULL;
		enum thread_event event;
		long signal = 0;
		int status = 0;

		if (thread_wait(tid, hp_now() + 2, &status, error) < 0)
			return HP_FAILED;
		event = threads_classify(threads, tid, status, &thread);
		if (event == THREAD_GONE || !thread)
			return HP_BUSY;
		if (event == THREAD_HELD && !trap_pending(threads->pid, tid))
			return HP_BUSY;
		if (event == THREAD_SIGNAL && WSTOPSIG(status) == SIGTRAP && is_step_trap(tid)) {
			thread->stopped = true;
			if (ptrace(PTRACE_GETREGS, tid, NULL, &thread->regs) != 0)
				return hp_fail_errno(error, HP_FAILED,
						     "cannot read the registers of thread %d", (int)tid);
			return HP_BUSY;
		}
		if (event == THREAD_SIGNAL)
			signal = WSTOPSIG(status);
		thread->stopped = false;
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)signal) != 0 && errno != ESRCH)
			return hp_fail_errno(error, HP_FAILED, "cannot resume thread %d", (int)tid);
	}
}

/* A system call could block with every other thread stopped, and a step
 * that ends one is reported in ways best not raced: we do not step into one. */
static bool at_system_call(pid_t tid, const struct user_regs_struct *regs)
{
	long word;

	if ((long long)regs->orig_rax >= 0)
		return true;	/* stopped inside one */
	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, tid, (void *)(uintptr_t)regs->rip, NULL);
	if (errno != 0)
		return true;
	return (word & 0xffff) == 0x050f || (word & 0xffff) == 0x80cd ||
	       (word & 0xffff) == 0x340f;	/* syscall, int $0x80, sysenter */
}

int thread_move_out(struct hp_threads *threads, pid_t tid, const struct hp_blocker *blocker,
		    const struct hp_stack_checker *checker, double deadline,
		    struct hp_error *error)
{
	struct hp_thread *thread = threads_find(threads, tid);
	long signal = 0;

	if (!thread || !thread->stopped || thread->group_stop || blocker->unreliable ||
	    !blocker->range || !blocker->return_sp)
		return HP_BUSY;
	for (;;) {
		struct hp_error timed_out = { 0 };
		enum thread_event event;
		int status = 0;

		/* A signal taken from the program is always delivered first. */
		if (signal == 0 && (hp_remaining(deadline) <= 0 || at_system_call(tid, &thread->regs)))
			return HP_BUSY;
		if (ptrace(PTRACE_SINGLESTEP, tid, NULL, (void *)signal) != 0)
			return errno == ESRCH ? HP_OK
					      : hp_fail_errno(error, HP_FAILED,
							      "cannot step thread %d", (int)tid);
		thread->stopped = false;
		signal = 0;
		if (thread_wait(tid, deadline, &status, &timed_out) < 0)
			return give_up(threads, tid, error);
		event = threads_classify(threads, tid, status, &thread);
		if (event == THREAD_GONE || !thread)
			return HP_OK;	/* it exited: out of every function */
		if (event == THREAD_HELD)
			return HP_BUSY;	/* a group stop: it must stay where it is */
		thread->stopped = true;	/* in a ptrace stop, resumable with any signal */
		if (event == THREAD_SIGNAL && (WSTOPSIG(status) != SIGTRAP || !is_step_trap(tid))) {
			signal = WSTOPSIG(status);	/* the program's: deliver on the next step */
			continue;
		}
		if (event != THREAD_SIGNAL)
			continue;	/* a clone or syscall event: step on */
		if (ptrace(PTRACE_GETREGS, tid, NULL, &thread->regs) != 0)
			return hp_fail_errno(error, HP_FAILED, "cannot read the registers of thread %d",
					     (int)tid);
		if (is_out(thread, blocker, checker))
			return HP_OK;
	}
}
