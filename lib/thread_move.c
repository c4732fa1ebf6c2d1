/* thread_move.c - getting busy threads out of the code being replaced while
 * every other thread stays stopped.  Each busy thread gets a hardware
 * breakpoint (a debug register: its own, so no other thread can hit it, and
 * nothing is written to memory) on the return address of its outermost frame
 * in replaced code, and runs at full speed until it returns there with its
 * stack pointer at or above that frame's (a deeper recursive call returning
 * to the same address does not count).  The debug registers are cleared
 * before the thread is let go, whatever happened.  A thread that blocks (a
 * lock held by a stopped thread, a system call) is interrupted when the
 * budget is spent; the caller then falls back to resuming everyone. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

#include "internal.h"

#define DEBUG_REGISTER(n) offsetof(struct user, u_debugreg[n])
/* DR7: enable breakpoint 0, locally, on execution (R/W0 = 00, LEN0 = 00). */
#define DR7_EXECUTE_0 0x1ul

enum move_state { MOVE_RUNNING, MOVE_OUT, MOVE_STUCK, MOVE_KILLED };

static int arm(pid_t tid, uint64_t address)
{
	if (ptrace(PTRACE_POKEUSER, tid, (void *)DEBUG_REGISTER(0), (void *)address) != 0 ||
	    ptrace(PTRACE_POKEUSER, tid, (void *)DEBUG_REGISTER(7), (void *)DR7_EXECUTE_0) != 0)
		return -1;
	return 0;
}

static void disarm(pid_t tid)
{
	/* ESRCH: the thread is gone, and its registers with it. */
	ptrace(PTRACE_POKEUSER, tid, (void *)DEBUG_REGISTER(7), NULL);
	ptrace(PTRACE_POKEUSER, tid, (void *)DEBUG_REGISTER(0), NULL);
}

/* A trap of ours (the breakpoint), as opposed to a SIGTRAP for the program
 * (int3 reports SI_KERNEL, kill and tgkill SI_USER or SI_TKILL). */
static bool is_our_trap(pid_t tid)
{
	siginfo_t info;

	return ptrace(PTRACE_GETSIGINFO, tid, NULL, &info) == 0 && info.si_code == TRAP_HWBKPT;
}

/* Whether a SIGTRAP waits for `tid`: a breakpoint hit just as we
 * interrupted the thread queues one behind the interrupt stop. */
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

/* Handles one stop of a moving thread; returns its new state.  After our
 * interrupt the thread is held where it is, but a breakpoint hit in the
 * same instant queues a SIGTRAP behind the interrupt stop: it is drained
 * (the thread is resumed into that trap's stop) so that it never reaches the
 * program, which it would kill. */
static enum move_state on_stop(struct hp_threads *threads, pid_t tid, int status,
			       const struct hp_blocker *blocker, bool interrupted,
			       struct hp_error *error)
{
	struct hp_thread *thread = NULL;
	enum thread_event event = threads_classify(threads, tid, status, &thread);
	long signal = 0;

	if (event == THREAD_GONE && WIFSIGNALED(status)) {
		/* A fatal signal ends every thread: the process is going. */
		hp_fail(error, HP_FAILED, "pid %d was killed (signal %d)", (int)threads->pid,
			WTERMSIG(status));
		return MOVE_KILLED;
	}
	if (event == THREAD_GONE || !thread)
		return MOVE_OUT;	/* it exited: out of every function */
	if (event == THREAD_HELD && !(interrupted && trap_pending(threads->pid, tid)))
		return MOVE_STUCK;	/* held: by our interrupt, or a group stop */
	if (event == THREAD_SIGNAL && WSTOPSIG(status) == SIGTRAP && is_our_trap(tid)) {
		/* Left in this stop, the trap is discarded when the thread is
		 * resumed with no signal. */
		thread->stopped = true;
		if (ptrace(PTRACE_GETREGS, tid, NULL, &thread->regs) != 0) {
			hp_fail_errno(error, HP_FAILED, "cannot read the registers of thread %d",
				      (int)tid);
			return MOVE_STUCK;
		}
		if (thread->regs.rsp >= blocker->return_sp)
			return MOVE_OUT;
		if (interrupted)
			return MOVE_STUCK;
		/* A deeper call returned to the same address: run on. */
	} else if (event == THREAD_SIGNAL) {
		signal = WSTOPSIG(status);	/* the program's */
	}
	thread->stopped = false;
	if (ptrace(PTRACE_CONT, tid, NULL, (void *)signal) != 0 && errno != ESRCH) {
		hp_fail_errno(error, HP_FAILED, "cannot resume thread %d", (int)tid);
		return MOVE_STUCK;
	}
	return MOVE_RUNNING;
}

/* Waits for one moving thread until it is out or the deadline passes, then
 * holds it again where it is. */
static enum move_state follow(struct hp_threads *threads, const struct hp_blocker *blocker,
			      double deadline, struct hp_error *error)
{
	enum move_state state = MOVE_RUNNING;
	bool interrupted = false;

	while (state == MOVE_RUNNING) {
		struct hp_error timed_out = { 0 };
		int status = 0;

		if (thread_wait(blocker->tid, interrupted ? hp_now() + 2 : deadline, &status,
				&timed_out) < 0) {
			if (interrupted) {
				*error = timed_out;
				return MOVE_STUCK;
			}
			interrupted = true;
			if (ptrace(PTRACE_INTERRUPT, blocker->tid, NULL, NULL) != 0 && errno == ESRCH)
				return MOVE_OUT;
			continue;
		}
		state = on_stop(threads, blocker->tid, status, blocker, interrupted, error);
	}
	return state;
}

int thread_move_out(struct hp_threads *threads, const struct hp_blocker *blockers, size_t count,
		    double deadline, struct hp_error *error)
{
	size_t armed = 0;
	bool all_out = true, killed = false;
	int status = HP_OK;

	for (size_t i = 0; i < count; i++) {
		struct hp_thread *thread = threads_find(threads, blockers[i].tid);

		if (!thread || !thread->stopped || thread->group_stop || blockers[i].unreliable ||
		    !blockers[i].range || !blockers[i].return_sp)
			return HP_BUSY;
	}
	/* All at once: on two cores, eight threads leave faster together. */
	for (; armed < count; armed++) {
		pid_t tid = blockers[armed].tid;

		if (arm(tid, blockers[armed].return_ip) != 0) {
			status = hp_fail_errno(error, HP_FAILED,
					       "cannot set a breakpoint in thread %d of pid %d", (int)tid,
					       (int)threads->pid);
			break;
		}
		threads_find(threads, tid)->stopped = false;
		if (ptrace(PTRACE_CONT, tid, NULL, NULL) != 0) {
			status = hp_fail_errno(error, HP_FAILED, "cannot resume thread %d of pid %d",
					       (int)tid, (int)threads->pid);
			armed++;
			break;
		}
	}
	for (size_t i = 0; i < armed; i++) {
		struct hp_thread *thread = threads_find(threads, blockers[i].tid);

		/* Every thread is waited for, even after a failure, so that none is
		 * let go with its breakpoint set. */
		if (thread && !thread->stopped) {
			enum move_state state = follow(threads, &blockers[i], deadline, error);

			all_out &= state == MOVE_OUT;
			killed |= state == MOVE_KILLED;
		}
		disarm(blockers[i].tid);
	}
	if (status != HP_OK)
		return status;
	if (killed)
		return HP_FAILED;
	return all_out ? HP_OK : HP_BUSY;
}
