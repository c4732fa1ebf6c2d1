/* remote_call.c - running system calls and functions on one borrowed thread
 * of the target while its other threads keep running.  Everything the thread
 * had (general registers, FPU/SSE/AVX state, signal mask, an interrupted
 * system call waiting to restart) is saved first and put back exactly; the
 * thread's signals stay blocked meanwhile, so nothing is delivered early or
 * lost.
 *
 * The thread gets itself back: before the first call through our stub page,
 * a frame with everything it had is written onto its own stack, below the
 * red zone, and every call ends in code that restores that frame (both
 * drawn in arch/ARCH/stub.c).  If hotpatch dies at any instant (SIGKILL
 * included), the thread finishes the call it is in and returns, by itself,
 * to where it was.
 *
 * A live hotpatch follows the thread with PTRACE_SYSCALL and takes the
 * result at the stub's sync system call, then sets up the next call or
 * lets the thread run on into the restore.  Only the very first system
 * call in a process (mapping the stub page) runs through libc's
 * system-call instruction, under a signal frame or with registers put
 * back by us. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "runtime/threads.h"
#include "common/base.h"

#define REMOTE_GRACE 30.0

static int save_extended_state(struct hp_remote *remote, struct hp_error *error)
{
	if (extended_state_save(remote->tid, &remote->saved_extended) == 0)
		return HP_OK;
	error->tid = remote->tid;
	return hp_fail_errno(error, HP_FAILED, "cannot save the FPU state of thread %d",
			     (int)remote->tid);
}

static int restore_extended_state(struct hp_remote *remote, struct hp_error *error)
{
	if (extended_state_restore(remote->tid, &remote->saved_extended) != 0) {
		error->tid = remote->tid;
		return hp_fail_errno(error, HP_FAILED, "cannot restore the FPU state of thread %d",
				     (int)remote->tid);
	}
	return HP_OK;
}

static int block_signals(struct hp_remote *remote, struct hp_error *error)
{
	uint64_t all_blocked = ~(uint64_t)0;

	if (remote->signals_blocked)
		return HP_OK;
	if (ptrace(PTRACE_SETSIGMASK, remote->tid, (void *)sizeof(uint64_t), &all_blocked) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot block the signals of thread %d",
				     (int)remote->tid);
	remote->signals_blocked = true;
	return HP_OK;
}

int remote_begin(struct hp_remote *remote, pid_t pid, pid_t tid, uint64_t libc_syscall,
		 uint64_t libc_restore_rt, double deadline, struct hp_error *error)
{
	int status;

	remote->pid = pid;
	remote->tid = tid;
	remote->libc_syscall = libc_syscall;
	remote->libc_restore_rt = libc_restore_rt;
	remote->deadline = deadline;
	remote->in_signal_stop = true;	/* an interrupt stop is on the signal path */
	error->tid = tid;
	if (registers_read(tid, &remote->saved_regs) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot read the registers of thread %d",
				     (int)tid);
	/* The thread gets these registers back from its frame or from us,
	 * never through the kernel's restart: a system call our stop cut short
	 * is set to run again here, once, for every way back. */
	thread_rewind_call(pid, tid, &remote->saved_regs, THREAD_RESUME_DIRECT);
	status = save_extended_state(remote, error);
	if (status != HP_OK)
		return status;
	/* Blocked only when our code is about to run: a thread let go before
	 * that must not keep every signal blocked. */
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(uint64_t), &remote->saved_sigmask) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot read the signal mask of thread %d",
				     (int)tid);
	remote->active = true;
	error->tid = 0;
	return HP_OK;
}

/* Waits for the borrowed thread's next stop during a call.  The call may
 * outlive the command's deadline by a grace period: cutting dlopen short
 * would leave the program's loader locked.  With a frame on its stack, a
 * thread we give up on finishes the call and returns on its own. */
static int wait_for_call(struct hp_remote *remote, int *status, struct hp_error *error)
{
	double until = remote->call_deadline ? remote->call_deadline : remote->deadline + REMOTE_GRACE;

	if (thread_wait(remote->tid, until, status, error) < 0) {
		error->detail[0] = '\0';
		hp_hint(error, "another thread may hold the dynamic loader's or the allocator's lock");
		return hp_fail(error, HP_FAILED,
			       "a remote call on thread %d of pid %d did not return within %.0f s of the deadline",
			       (int)remote->tid, (int)remote->pid, REMOTE_GRACE);
	}
	if (WIFEXITED(*status) || WIFSIGNALED(*status)) {
		remote->active = false;
		return hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited during a remote call",
			       (int)remote->pid);
	}
	return HP_OK;
}

/* Resumes the thread and waits until it traps where we expect. */
static int run_until_trap(struct hp_remote *remote, int request, int expected_signal,
			  struct hp_registers *regs, struct hp_error *error)
{
	for (;;) {
		int status = 0, result;

		if (ptrace(request, remote->tid, NULL, NULL) != 0)
			return hp_fail_errno(error, HP_FAILED, "cannot resume thread %d",
					     (int)remote->tid);
		result = wait_for_call(remote, &status, error);
		if (result != HP_OK)
			return result;
		if (!WIFSTOPPED(status))
			continue;
		/* A group stop or a stray interrupt: carry on with our call. */
		if ((status >> 16) == PTRACE_EVENT_STOP)
			continue;
		if (WSTOPSIG(status) == expected_signal)
			break;
		/* Signals are blocked, so this is a fault raised by the call itself;
		 * it is not passed on (that would kill the program). */
		error->tid = remote->tid;
		(void)registers_read(remote->tid, regs);	/* for the message only */
		remote->in_signal_stop = true;
		return hp_fail(error, HP_FAILED,
			       "thread %d got signal %d during a remote call at 0x%llx",
			       (int)remote->tid, WSTOPSIG(status),
			       (unsigned long long)registers_pc(regs));
	}
	if (registers_read(remote->tid, regs) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot read the registers of thread %d",
				     (int)remote->tid);
	return HP_OK;
}

static int set_registers(struct hp_remote *remote, const struct hp_registers *regs,
			 struct hp_error *error)
{
	if (registers_write(remote->tid, regs) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot set the registers of thread %d",
				     (int)remote->tid);
	return HP_OK;
}

/* Writes a frame image onto the thread's stack; false if it did not fit. */
static bool write_frame(struct hp_remote *remote, const struct hp_frame_image *frame)
{
	struct iovec local = { frame->bytes, frame->length };
	struct iovec target = { (void *)(uintptr_t)frame->address, frame->length };

	return process_vm_writev(remote->pid, &local, 1, &target, 1, 0) == (ssize_t)frame->length;
}

/* Before the first system call, which runs through libc's own system-call
 * instruction (there is no stub page yet), a signal frame with everything
 * the thread had goes onto its stack, below a return address pointing at
 * libc's signal-return code (rt_sigreturn).  If hotpatch dies then, the
 * thread leaves libc's syscall() through its return into rt_sigreturn, and
 * the kernel puts back registers, FPU state and signal mask. */
static int write_signal_frame(struct hp_remote *remote, struct hp_error *error)
{
	struct hp_thread_image thread = { &remote->saved_regs, &remote->saved_extended,
					  remote->saved_sigmask };
	struct hp_frame_image frame = { 0 };
	bool out_of_memory = false;

	if (remote->signal_frame)
		return HP_OK;
	if (!signal_frame_build(&thread, remote->libc_restore_rt, &frame, &out_of_memory))
		/* without one, we put the thread back ourselves */
		return out_of_memory ? hp_fail(error, HP_FAILED, "out of memory") : HP_OK;
	if (write_frame(remote, &frame))
		remote->signal_frame = frame.address;
	free(frame.bytes);
	return HP_OK;
}

/* At the entry stop of our system call, makes sure the kernel runs it: a
 * thread taken while blocked in libc's syscall() itself (a futex wait with
 * a timeout, say) sits at that very instruction, and arm64's kernel, on its
 * way out of the stop we took it in, turns the number there into
 * restart_syscall when the pc is where it rewound the call to.  x86-64
 * never does (the kernel has forgotten the interrupted call by then). */
static int enter_our_syscall(struct hp_remote *remote, long number, struct hp_registers *regs,
			     struct hp_error *error)
{
	if (registers_syscall(regs) == number)
		return HP_OK;
	registers_set_entered_syscall(regs, number);
	return set_registers(remote, regs, error);
}

/* The first system call (mapping our stub page) has no stub to run from; it
 * uses a syscall instruction of libc, stepping with PTRACE_SYSCALL so no
 * instruction after it runs. */
static int syscall_through_libc(struct hp_remote *remote, long number, struct hp_registers *regs,
				struct hp_error *error)
{
	int status;

	status = write_signal_frame(remote, error);
	registers_set_pc(regs, remote->libc_syscall);
	if (remote->signal_frame) {
		registers_set_sp(regs, remote->signal_frame);
		registers_set_signal_return(regs, remote->libc_restore_rt);
	}
	if (status == HP_OK)
		status = set_registers(remote, regs, error);
	if (status == HP_OK)
		status = block_signals(remote, error);
	if (status == HP_OK)
		status = run_until_trap(remote, PTRACE_SYSCALL, SIGTRAP | 0x80, regs, error);
	if (status == HP_OK)
		status = enter_our_syscall(remote, number, regs, error);
	if (status == HP_OK && hp_fault("kill-in-first-syscall"))
		raise(SIGKILL);	/* the test build's way to die right here */
	if (status == HP_OK)
		status = run_until_trap(remote, PTRACE_SYSCALL, SIGTRAP | 0x80, regs, error);
	remote->in_signal_stop = false;
	return status;
}

/* Writes the frame the stub's restore code reads onto the thread's stack;
 * 1 when there is none (no room, no XSAVE): we put the thread back
 * ourselves. */
static int arm_frame(struct hp_remote *remote, struct hp_error *error)
{
	struct hp_thread_image thread = { &remote->saved_regs, &remote->saved_extended,
					  remote->saved_sigmask };
	struct hp_frame_image frame = { 0 };
	bool out_of_memory = false, written;

	if (remote->self_restoring)
		return HP_OK;
	if (!restore_frame_build(&thread, remote->signal_frame, &frame, &out_of_memory))
		return out_of_memory ? hp_fail(error, HP_FAILED, "out of memory") : 1;
	written = write_frame(remote, &frame);
	free(frame.bytes);
	if (!written)
		return 1;	/* the stack has no room: we put the thread back ourselves */
	remote->frame = frame.address;
	remote->self_restoring = true;
	return HP_OK;
}

/* Runs the thread from a stub until it reaches the sync point after its
 * call, passing every other system call by. */
static int run_to_sync(struct hp_remote *remote, uint64_t sync, struct hp_registers *regs,
		       struct hp_error *error)
{
	for (;;) {
		int status = 0;

		if (ptrace(PTRACE_SYSCALL, remote->tid, NULL, NULL) != 0)
			return hp_fail_errno(error, HP_FAILED, "cannot resume thread %d",
					     (int)remote->tid);
		if (wait_for_call(remote, &status, error) != HP_OK)
			return HP_FAILED;
		if (!WIFSTOPPED(status) || (status >> 16) == PTRACE_EVENT_STOP)
			continue;	/* a group stop or a stray interrupt */
		if (registers_read(remote->tid, regs) != 0)
			return hp_fail_errno(error, HP_FAILED, "cannot read the registers of thread %d",
					     (int)remote->tid);
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			/* Signals are blocked: a fault of the call itself. */
			remote->faulted = true;
			remote->in_signal_stop = true;
			error->tid = remote->tid;
			return hp_fail(error, HP_FAILED,
				       "thread %d got signal %d during a remote call at 0x%llx",
				       (int)remote->tid, WSTOPSIG(status),
				       (unsigned long long)registers_pc(regs));
		}
		/* Ours at its exit, when the sync call has returned. */
		if (registers_pc(regs) == sync && registers_syscall(regs) == HP_SYNC_SYSCALL &&
		    registers_syscall_exited(regs))
			return HP_OK;
		if (registers_pc(regs) != sync && hp_fault("kill-in-call"))
			raise(SIGKILL);	/* the test build's way to die inside a call */
	}
}

/* One call through a stub: set the registers, block signals, run to the
 * sync point.  The thread's SP is the frame, so whatever happens next it
 * can restore itself.  On success the result is *result. */
static int run_stub(struct hp_remote *remote, struct hp_registers *regs, uint64_t sync,
		    uint64_t *result, struct hp_error *error)
{
	int status;

	registers_enter_stub(regs, remote->frame);
	status = set_registers(remote, regs, error);
	if (status == HP_OK)
		status = block_signals(remote, error);
	remote->at_sync = false;
	if (status == HP_OK)
		status = run_to_sync(remote, sync, regs, error);
	if (status == HP_OK) {
		remote->at_sync = true;
		*result = registers_stub_result(regs);
	}
	return status;
}

static int syscall_through_stub(struct hp_remote *remote, struct hp_registers *regs,
				uint64_t *result, struct hp_error *error)
{
	registers_set_pc(regs, remote->stub_page + HP_STUB_SYSCALL);
	return run_stub(remote, regs, remote->stub_page + HP_STUB_SYSCALL_SYNC, result, error);
}

int remote_syscall(struct hp_remote *remote, long number, const uint64_t arguments[6],
		   int64_t *result, struct hp_error *error)
{
	struct hp_registers regs = remote->saved_regs;
	uint64_t value = 0;
	int status;

	if (!remote->active)
		return hp_fail(error, HP_FAILED, "no thread is borrowed");
	if (remote->in_process)
		return remote_self_syscall(number, arguments, result);
	registers_set_syscall(&regs, number, arguments);
	status = remote->stub_page ? arm_frame(remote, error) : 1;
	if (status == HP_OK) {
		status = syscall_through_stub(remote, &regs, &value, error);
	} else if (status == 1) {
		status = syscall_through_libc(remote, number, &regs, error);
		value = registers_return_value(&regs);
	}
	if (status == HP_OK)
		*result = (int64_t)value;
	return status;
}

int remote_syscall_checked(struct hp_remote *remote, long number, const uint64_t arguments[6],
			   const char *what, int64_t *result, struct hp_error *error)
{
	int status = remote_syscall(remote, number, arguments, result, error);

	if (status == HP_OK && *result < 0 && *result > -4096)
		return hp_fail(error, HP_FAILED, "%s failed in pid %d: %s", what, (int)remote->pid,
			       strerror((int)-*result));
	return status;
}

int remote_call(struct hp_remote *remote, uint64_t function, const uint64_t arguments[6],
		uint64_t *result, struct hp_error *error)
{
	struct hp_registers regs = remote->saved_regs;
	int status;

	if (remote->active && remote->in_process)
		return remote_self_call(function, arguments, result);
	if (!remote->active || !remote->stub_page)
		return hp_fail(error, HP_FAILED, "no thread is borrowed");
	status = arm_frame(remote, error);
	if (status == 1)
		return hp_fail(error, HP_FAILED,
			       "no room on the stack of thread %d of pid %d for a remote call",
			       (int)remote->tid, (int)remote->pid);
	if (status != HP_OK)
		return status;
	registers_set_pc(&regs, remote->stub_page + HP_STUB_CALL);
	registers_set_call(&regs, function, arguments);
	return run_stub(remote, &regs, remote->stub_page + HP_STUB_CALL_SYNC, result, error);
}

/* After a syscall-exit stop the kernel would not look at a pending restart
 * again; the registers put back are rewound already (remote_begin), and an
 * interrupt makes the thread pass through signal handling once more before
 * its own code runs, as it would have from the stop we took it in.  It
 * stops there still in our stub, before any of its code has run. */
static int return_to_signal_path(struct hp_remote *remote, struct hp_error *error)
{
	int status = 0;

	if (ptrace(PTRACE_INTERRUPT, remote->tid, NULL, NULL) != 0 ||
	    ptrace(PTRACE_CONT, remote->tid, NULL, NULL) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot hand back thread %d",
				     (int)remote->tid);
	for (;;) {
		int result = thread_wait(remote->tid, remote->deadline + REMOTE_GRACE, &status, error);

		if (result < 0)
			return result;
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited", (int)remote->pid);
		if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP)
			return HP_OK;
		if (WIFSTOPPED(status) &&
		    ptrace(PTRACE_CONT, remote->tid, NULL, (void *)(long)WSTOPSIG(status)) != 0)
			return hp_fail_errno(error, HP_FAILED, "cannot hand back thread %d",
					     (int)remote->tid);
	}
}

/* The registers, extended state and mask as they were, put back by us:
 * without a frame, after a fault inside a call, or when the frame cannot
 * give the thread all it had (registers_restored_by_stub).  Written at a
 * signal stop: at a system-call stop arm64 keeps x7 for itself (it tells
 * the entry from the exit there) and drops what we write to it. */
static int restore_by_tracer(struct hp_remote *remote, struct hp_error *error)
{
	int status = HP_OK;

	if (!remote->in_signal_stop)
		status = return_to_signal_path(remote, error);
	if (status == HP_OK && registers_write(remote->tid, &remote->saved_regs) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot restore the registers of thread %d",
				       (int)remote->tid);
	if (status == HP_OK)
		status = restore_extended_state(remote, error);
	/* The mask last: with signals unblocked earlier, one could arrive
	 * while the thread still runs our code. */
	if (status == HP_OK && remote->signals_blocked &&
	    ptrace(PTRACE_SETSIGMASK, remote->tid, (void *)sizeof(uint64_t),
		   &remote->saved_sigmask) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot restore the signal mask of thread %d",
				       (int)remote->tid);
	return status;
}

/* Resumes the thread with `request` (none when -1) and waits for its next
 * stop; signals for the program (unblocked by then) are delivered.
 * Returns the wait status, or -1. */
static int next_stop(struct hp_remote *remote, int request, double deadline)
{
	struct hp_error ignored = { 0 };
	int status = 0;

	if (request >= 0 && ptrace(request, remote->tid, NULL, NULL) != 0)
		return -1;
	for (;;) {
		if (thread_wait(remote->tid, deadline, &status, &ignored) < 0 ||
		    WIFEXITED(status) || WIFSIGNALED(status))
			return -1;
		if (!WIFSTOPPED(status) || (status >> 16) != 0 || WSTOPSIG(status) == (SIGTRAP | 0x80))
			return status;
		if (ptrace(PTRACE_CONT, remote->tid, NULL, (void *)(long)WSTOPSIG(status)) != 0)
			return -1;
	}
}

/* Watches the thread restore itself, so that it is stopped back in its own
 * code when we let go: a stop right after could otherwise catch it in our
 * stub, where no unwind information says where it came from.  First the
 * rt_sigprocmask of the restore code (two system-call stops), then the few
 * instructions left, run and interrupted until it is out of the stub page.
 * Nothing is left set if we die meanwhile: no breakpoint, no single step. */
static void settle(struct hp_remote *remote)
{
	double deadline = hp_now() + 1;
	struct hp_registers regs;
	double pause = 20e-6;

	for (int stops = 0; stops < 2;) {
		int status = next_stop(remote, PTRACE_SYSCALL, deadline);

		if (status < 0)
			return;
		stops += WSTOPSIG(status) == (SIGTRAP | 0x80);
	}
	while (registers_read(remote->tid, &regs) == 0 &&
	       registers_pc(&regs) >= remote->stub_page &&
	       registers_pc(&regs) < remote->stub_page + HP_PAGE_SIZE &&
	       hp_remaining(deadline) > 0) {
		if (ptrace(PTRACE_CONT, remote->tid, NULL, NULL) != 0)
			return;
		hp_sleep(pause);
		pause *= 2;
		if (ptrace(PTRACE_INTERRUPT, remote->tid, NULL, NULL) != 0 ||
		    next_stop(remote, -1, deadline) < 0)
			return;
	}
	/* By the last interrupt the thread may be back in its own system call,
	 * which an epoll_wait answers with EINTR: run it again. */
	thread_rewind_stopped(remote->pid, remote->tid, THREAD_RESUME_SIGNAL_PATH);
}

int remote_end(struct hp_remote *remote, struct hp_error *error)
{
	int status = HP_OK;
	bool by_tracer = !remote->self_restoring || remote->faulted ||
			 (remote->at_sync && !registers_restored_by_stub(&remote->saved_regs));

	if (remote->in_process) {
		remote->active = false;
		return HP_OK;
	}
	if (remote->active && !by_tracer && remote->at_sync)
		settle(remote);

	/* With a frame, the thread restores itself when let go: from the sync
	 * point it runs on into the restore code; still inside a call (the
	 * deadline passed), it finishes the call first.  That is also its way
	 * back if we die, when only a restart_syscall of arm64 is lost: it
	 * fails with EINTR. */
	if (remote->active && by_tracer)
		status = restore_by_tracer(remote, error);
	extended_state_release(&remote->saved_extended);
	remote->active = false;
	return status;
}
