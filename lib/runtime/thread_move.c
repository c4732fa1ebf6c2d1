/* thread_move.c - getting busy threads out of the code being replaced while
 * every other thread stays stopped.  The return address of a busy thread's
 * outermost frame in replaced code is pointed, on its own stack, at a small
 * trampoline in our stub page; the thread runs at full speed until that
 * frame returns into the trampoline, which stops at a getpid system call
 * (we follow it with PTRACE_SYSCALL) and then jumps on to the real return
 * address.  We take it there: registers as they were, at the real return
 * address.  Nothing is written where another thread could reach it, and if
 * hotpatch dies meanwhile the thread simply returns through the trampoline
 * (trampoline k at HP_STUB_TRAMPOLINES + k * HP_STUB_TRAMPOLINE_SIZE, slot k
 * holding the address; its code is drawn in arch/ARCH/stub.c).
 *
 * A thread that blocks (a lock held by a stopped thread, a system call) is
 * interrupted when the budget is spent and its return address put back; the
 * caller then falls back to resuming everyone. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "runtime/threads.h"
#include "common/base.h"
#include "runtime/target.h"

enum move_state { MOVE_RUNNING, MOVE_OUT, MOVE_STUCK, MOVE_KILLED };

struct mover {
	struct hp_threads *threads;
	struct hp_memory *memory;
	const struct hp_blocker *blocker;
	uint64_t trampoline, slot;
	bool hijacked;		/* the return address points at the trampoline */
};

/* Points the frame's return address at trampoline k, after checking that
 * the stack holds what the unwinder said.  The slot is where the unwind
 * information says the return address was saved (just below the caller's
 * SP on x86-64; wherever the callee stored x30 on arm64).  Pointer
 * authentication: the function's autiasp would reject an unsigned
 * trampoline address, and we cannot sign one.  The functions we replace
 * never sign theirs (arm64's code_plan refuses a paciasp), and a signed
 * word would differ from the address the unwinder reports (stripped of its
 * signature) anyway, so it is never replaced: such a thread is waited for
 * instead (HP_BUSY). */
static int hijack(struct mover *mover, size_t k, uint64_t stub_page, struct hp_error *error)
{
	const struct hp_blocker *blocker = mover->blocker;
	uint64_t found = 0;
	unsigned char code[HP_STUB_TRAMPOLINE_SIZE];
	int status;

	mover->trampoline = stub_page + HP_STUB_TRAMPOLINES + k * HP_STUB_TRAMPOLINE_SIZE;
	mover->slot = stub_page + HP_STUB_SLOTS + k * sizeof(uint64_t);
	status = target_memory_read(mover->memory, blocker->return_slot, &found, sizeof(found),
				    error);
	if (status != HP_OK || found != blocker->return_ip)
		return status != HP_OK ? status : HP_BUSY;
	stub_return_trampoline(mover->trampoline, mover->slot, code, sizeof(code));
	status = target_memory_write(mover->memory, blocker->tid, mover->slot, &blocker->return_ip,
				     sizeof(uint64_t), error);
	if (status == HP_OK)
		status = target_memory_write(mover->memory, blocker->tid, mover->trampoline, code,
					     sizeof(code), error);
	if (status == HP_OK)
		status = target_memory_write(mover->memory, blocker->tid, blocker->return_slot,
					     &mover->trampoline, sizeof(uint64_t), error);
	mover->hijacked = status == HP_OK;
	return status;
}

/* Puts the thread (stopped) where it would be after the trampoline: at the
 * real return address, registers as they were.  Where it stopped tells
 * which registers the trampoline still holds on the stack. */
static int land(struct mover *mover, struct hp_thread *thread, struct hp_error *error)
{
	const struct hp_blocker *blocker = mover->blocker;
	uint64_t offset = registers_pc(&thread->regs) - mover->trampoline,
		 pushed[HP_RETURN_TRAMPOLINE_PUSHED];
	int status = target_memory_read(mover->memory, blocker->return_sp - sizeof(pushed), pushed,
					sizeof(pushed), error);

	if (status != HP_OK)
		return status;
	stub_return_trampoline_land(&thread->regs, offset, pushed);
	registers_set_sp(&thread->regs, blocker->return_sp);
	registers_set_pc(&thread->regs, blocker->return_ip);
	registers_forget_syscall(&thread->regs);
	if (registers_write(thread->tid, &thread->regs) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot set the registers of thread %d",
				     (int)thread->tid);
	mover->hijacked = false;
	return HP_OK;
}

/* The thread is held again, wherever it is: finish the trampoline for it,
 * or put the return address back if the frame has not returned yet.  Held
 * at the exit of a system call our interrupt cut short (`how` says which
 * stop it is), the call is set to run again: the kernel will not. */
static enum move_state undo_or_land(struct mover *mover, struct hp_thread *thread,
				    enum thread_resume how, struct hp_error *error)
{
	if (registers_read(thread->tid, &thread->regs) != 0) {
		hp_fail_errno(error, HP_FAILED, "cannot read the registers of thread %d",
			      (int)thread->tid);
		return MOVE_STUCK;
	}
	if (registers_pc(&thread->regs) >= mover->trampoline &&
	    registers_pc(&thread->regs) < mover->trampoline + HP_RETURN_TRAMPOLINE_LENGTH)
		return land(mover, thread, error) == HP_OK ? MOVE_OUT : MOVE_STUCK;
	if (thread_rewind_call(mover->threads->pid, thread->tid, &thread->regs, how) &&
	    registers_write(thread->tid, &thread->regs) != 0) {
		hp_fail_errno(error, HP_FAILED, "cannot set the registers of thread %d",
			      (int)thread->tid);
		return MOVE_STUCK;
	}
	if (mover->hijacked &&
	    target_memory_write(mover->memory, thread->tid, mover->blocker->return_slot,
				&mover->blocker->return_ip, sizeof(uint64_t), error) == HP_OK)
		mover->hijacked = false;
	return MOVE_STUCK;
}

/* Handles one stop of a moving thread; returns its new state. */
static enum move_state on_stop(struct mover *mover, int status, bool interrupted,
			       struct hp_error *error)
{
	pid_t tid = mover->blocker->tid;
	struct hp_thread *thread = NULL;
	enum thread_event event = threads_classify(mover->threads, tid, status, &thread);
	long signal = 0;

	if (event == THREAD_GONE && WIFSIGNALED(status)) {
		/* A fatal signal ends every thread: the process is going. */
		hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited, killed by signal %d",
			   (int)mover->threads->pid, WTERMSIG(status));
		return MOVE_KILLED;
	}
	if (event == THREAD_GONE || !thread)
		return MOVE_OUT;	/* it exited: out of every function */
	if (event == THREAD_HELD)
		/* our interrupt, or a group stop */
		return undo_or_land(mover, thread, THREAD_RESUME_SIGNAL_PATH, error);
	thread->stopped = true;
	if (event == THREAD_SIGNAL) {
		signal = WSTOPSIG(status);	/* the program's: delivered on resuming */
	} else if (registers_read(tid, &thread->regs) == 0 &&
		   registers_pc(&thread->regs) == mover->trampoline + HP_RETURN_TRAMPOLINE_SYNC &&
		   registers_syscall(&thread->regs) == HP_SYNC_SYSCALL) {
		/* At its exit we take the thread; its entry runs on to the exit
		 * (skipping the call there would clobber a register). */
		if (registers_syscall_exited(&thread->regs))
			return land(mover, thread, error) == HP_OK ? MOVE_OUT : MOVE_STUCK;
		interrupted = false;
	}
	/* A signal is always delivered, interrupted or not: held in its stop,
	 * it would be lost. */
	if (interrupted && !signal)
		return undo_or_land(mover, thread, THREAD_RESUME_DIRECT, error);
	thread->stopped = false;
	if (ptrace(PTRACE_SYSCALL, tid, NULL, (void *)signal) != 0 && errno != ESRCH) {
		hp_fail_errno(error, HP_FAILED, "cannot resume thread %d", (int)tid);
		return MOVE_STUCK;
	}
	return MOVE_RUNNING;
}

/* Waits for one moving thread until it is out or the deadline passes, then
 * holds it again where it is. */
static enum move_state follow(struct mover *mover, double deadline, struct hp_error *error)
{
	enum move_state state = MOVE_RUNNING;
	bool interrupted = false;

	while (state == MOVE_RUNNING) {
		struct hp_error timed_out = { 0 };
		int status = 0;

		if (thread_wait(mover->blocker->tid, interrupted ? hp_now() + 2 : deadline, &status,
				&timed_out) < 0) {
			if (interrupted) {
				*error = timed_out;
				return MOVE_STUCK;
			}
			interrupted = true;
			if (ptrace(PTRACE_INTERRUPT, mover->blocker->tid, NULL, NULL) != 0 &&
			    errno == ESRCH)
				return MOVE_OUT;
			continue;
		}
		state = on_stop(mover, status, interrupted, error);
	}
	return state;
}

/* The trampolines for `count` moves, taken in turn from `next` and skipping
 * those a thread still holds; false when too few are free. */
static bool choose_trampolines(uint64_t next, size_t count, uint32_t held,
			       size_t chosen[HP_STUB_TRAMPOLINE_COUNT], uint64_t *after)
{
	size_t found = 0;

	for (size_t step = 0; step < HP_STUB_TRAMPOLINE_COUNT && found < count; step++) {
		size_t k = (size_t)((next + step) % HP_STUB_TRAMPOLINE_COUNT);

		if (!(held & (1u << k)))
			chosen[found++] = k;
		*after = next + step + 1;
	}
	return found == count;
}

int thread_move_out(struct hp_threads *threads, struct hp_memory *memory, uint64_t stub_page,
		    const struct hp_blocker *blockers, size_t count, uint32_t trampolines_held,
		    double deadline, struct hp_error *error)
{
	struct mover movers[HP_STUB_TRAMPOLINE_COUNT];
	size_t chosen[HP_STUB_TRAMPOLINE_COUNT];
	uint64_t next = 0, after = 0;
	size_t started = 0;
	bool all_out = true, killed = false;
	int status = HP_OK;

	if (!stub_page || count > HP_STUB_TRAMPOLINE_COUNT)
		return HP_BUSY;
	for (size_t i = 0; i < count; i++) {
		struct hp_thread *thread = threads_find(threads, blockers[i].tid);

		if (!thread || !thread->stopped || thread->group_stop || blockers[i].unreliable ||
		    !blockers[i].range || !blockers[i].return_sp || !blockers[i].return_ip ||
		    !blockers[i].return_slot)
			return HP_BUSY;
	}
	/* Trampolines are taken in turn, from a counter kept in the stub page,
	 * and never one that a thread a killed hotpatch left on its way out of
	 * a function will still return through (the stack check saw it). */
	status = target_memory_read(memory, stub_page + HP_STUB_NEXT_TRAMPOLINE, &next,
				    sizeof(next), error);
	if (status == HP_OK && !choose_trampolines(next, count, trampolines_held, chosen, &after))
		return HP_BUSY;
	if (status == HP_OK)
		status = target_memory_write(memory, blockers[0].tid,
					     stub_page + HP_STUB_NEXT_TRAMPOLINE, &after,
					     sizeof(after), error);
	/* All at once: on two cores, eight threads leave faster together. */
	for (; status == HP_OK && started < count; started++) {
		struct mover *mover = &movers[started];
		pid_t tid = blockers[started].tid;

		*mover = (struct mover){ threads, memory, &blockers[started], 0, 0, false };
		status = hijack(mover, chosen[started], stub_page, error);
		if (status == HP_OK && ptrace(PTRACE_SYSCALL, tid, NULL, NULL) != 0)
			status = hp_fail_errno(error, HP_FAILED, "cannot resume thread %d of pid %d",
					       (int)tid, (int)threads->pid);
		if (status == HP_OK)
			threads_find(threads, tid)->stopped = false;
	}
	if (status == HP_OK && hp_fault("kill-in-move"))
		raise(SIGKILL);	/* the test build's way to die with threads on their way */
	for (size_t i = 0; i < started; i++) {
		struct hp_thread *thread = threads_find(threads, blockers[i].tid);
		enum move_state state = MOVE_STUCK;

		/* Every thread is followed, even after a failure, so that none is
		 * let go with its return address still pointing at us. */
		if (thread && !thread->stopped)
			state = follow(&movers[i], deadline, error);
		else if (thread && movers[i].hijacked)
			state = undo_or_land(&movers[i], thread, THREAD_RESUME_SIGNAL_PATH, error);
		all_out &= state == MOVE_OUT;
		killed |= state == MOVE_KILLED;
	}
	if (killed)
		return HP_FAILED;
	if (status != HP_OK)
		return status == HP_BUSY ? HP_BUSY : status;
	return all_out ? HP_OK : HP_BUSY;
}
