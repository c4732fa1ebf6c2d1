/* remote_call.c - running system calls and functions on one borrowed thread
 * of the target while its other threads keep running.  Everything the thread
 * had (general registers, FPU/SSE/AVX state, signal mask, an interrupted
 * system call waiting to restart) is saved first and put back exactly; the
 * thread's signals stay blocked meanwhile, so nothing is delivered early or
 * lost.  Calls return through a real `call` into an int3 in our stub page. */
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include "internal.h"

#define XSTATE_BUFFER 16384
#define REMOTE_GRACE 30.0
#define RED_ZONE 128
#define EFLAGS_TRAP 0x100
#define EFLAGS_DIRECTION 0x400

void remote_stub_bytes(unsigned char page[HP_STUB_DATA])
{
	static const unsigned char call_stub[] = { 0xff, 0xd0, 0xcc };	  /* call *%rax; int3 */
	static const unsigned char syscall_stub[] = { 0x0f, 0x05, 0xcc }; /* syscall; int3 */

	memset(page, 0xcc, HP_STUB_DATA);
	memcpy(page + HP_STUB_CALL, call_stub, sizeof(call_stub));
	memcpy(page + HP_STUB_SYSCALL, syscall_stub, sizeof(syscall_stub));
}

static int save_extended_state(struct hp_remote *remote, struct hp_error *error)
{
	struct iovec vector;

	remote->saved_xstate = malloc(XSTATE_BUFFER);
	if (!remote->saved_xstate)
		return hp_fail(error, HP_FAILED, "out of memory saving registers");
	vector.iov_base = remote->saved_xstate;
	vector.iov_len = XSTATE_BUFFER;
	if (ptrace(PTRACE_GETREGSET, remote->tid, (void *)NT_X86_XSTATE, &vector) == 0) {
		remote->xstate_size = vector.iov_len;
		return HP_OK;
	}
	/* No XSAVE: the legacy FPU/SSE area is all there is. */
	if (ptrace(PTRACE_GETFPREGS, remote->tid, NULL, remote->saved_xstate) == 0) {
		remote->xstate_size = 0;
		return HP_OK;
	}
	error->tid = remote->tid;
	return hp_fail_errno(error, HP_FAILED, "cannot save the FPU state of thread %d",
			     (int)remote->tid);
}

static int restore_extended_state(struct hp_remote *remote, struct hp_error *error)
{
	struct iovec vector = { remote->saved_xstate, remote->xstate_size };
	long result;

	if (remote->xstate_size)
		result = ptrace(PTRACE_SETREGSET, remote->tid, (void *)NT_X86_XSTATE, &vector);
	else
		result = ptrace(PTRACE_SETFPREGS, remote->tid, NULL, remote->saved_xstate);
	if (result != 0) {
		error->tid = remote->tid;
		return hp_fail_errno(error, HP_FAILED, "cannot restore the FPU state of thread %d",
				     (int)remote->tid);
	}
	return HP_OK;
}

int remote_begin(struct hp_remote *remote, pid_t pid, pid_t tid, uint64_t libc_syscall,
		 double deadline, struct hp_error *error)
{
	uint64_t all_blocked = ~(uint64_t)0;
	int status;

	remote->pid = pid;
	remote->tid = tid;
	remote->libc_syscall = libc_syscall;
	remote->deadline = deadline;
	remote->in_signal_stop = true;	/* an interrupt stop is on the signal path */
	error->tid = tid;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &remote->saved_regs) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot read the registers of thread %d",
				     (int)tid);
	status = save_extended_state(remote, error);
	if (status != HP_OK)
		return status;
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(uint64_t), &remote->saved_sigmask) != 0 ||
	    ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(uint64_t), &all_blocked) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot block the signals of thread %d",
				     (int)tid);
	remote->active = true;
	error->tid = 0;
	return HP_OK;
}

/* Resumes the thread and waits until it traps where we expect. */
static int run_until_trap(struct hp_remote *remote, int request, int expected_signal,
			  struct user_regs_struct *regs, struct hp_error *error)
{
	for (;;) {
		int status = 0, result;

		if (ptrace(request, remote->tid, NULL, NULL) != 0)
			return hp_fail_errno(error, HP_FAILED, "cannot resume thread %d",
					     (int)remote->tid);
		/* The call may outlive the command's deadline by a grace period:
		 * cutting dlopen short would leave the program's loader locked. */
		result = thread_wait(remote->tid, remote->deadline + REMOTE_GRACE, &status, error);
		if (result < 0) {
			error->detail[0] = '\0';
			hp_hint(error, "another thread may hold the dynamic loader's or the allocator's lock");
			return hp_fail(error, HP_FAILED,
				       "a remote call on thread %d of pid %d did not return within %.0f s of the deadline",
				       (int)remote->tid, (int)remote->pid, REMOTE_GRACE);
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			remote->active = false;
			return hp_fail(error, HP_FAILED, "pid %d exited during a remote call",
				       (int)remote->pid);
		}
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
		ptrace(PTRACE_GETREGS, remote->tid, NULL, regs);
		remote->in_signal_stop = true;
		return hp_fail(error, HP_FAILED,
			       "thread %d got signal %d during a remote call at 0x%llx",
			       (int)remote->tid, WSTOPSIG(status), (unsigned long long)regs->rip);
	}
	if (ptrace(PTRACE_GETREGS, remote->tid, NULL, regs) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot read the registers of thread %d",
				     (int)remote->tid);
	return HP_OK;
}

static int set_registers(struct hp_remote *remote, const struct user_regs_struct *regs,
			 struct hp_error *error)
{
	if (ptrace(PTRACE_SETREGS, remote->tid, NULL, regs) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot set the registers of thread %d",
				     (int)remote->tid);
	return HP_OK;
}

/* The first system call (mapping our stub page) has no stub to run from; it
 * uses a syscall instruction of libc, stepping with PTRACE_SYSCALL so no
 * instruction after it runs. */
static int syscall_through_libc(struct hp_remote *remote, struct user_regs_struct *regs,
				struct hp_error *error)
{
	int status;

	regs->rip = remote->libc_syscall;
	status = set_registers(remote, regs, error);
	if (status == HP_OK)
		status = run_until_trap(remote, PTRACE_SYSCALL, SIGTRAP | 0x80, regs, error);
	if (status == HP_OK)
		status = run_until_trap(remote, PTRACE_SYSCALL, SIGTRAP | 0x80, regs, error);
	remote->in_signal_stop = false;
	return status;
}

static int syscall_through_stub(struct hp_remote *remote, struct user_regs_struct *regs,
				struct hp_error *error)
{
	uint64_t expected = remote->stub_page + HP_STUB_SYSCALL + 3;
	int status;

	regs->rip = remote->stub_page + HP_STUB_SYSCALL;
	status = set_registers(remote, regs, error);
	if (status == HP_OK)
		status = run_until_trap(remote, PTRACE_CONT, SIGTRAP, regs, error);
	remote->in_signal_stop = true;
	if (status == HP_OK && regs->rip != expected)
		status = hp_fail(error, HP_FAILED, "thread %d trapped at 0x%llx, not in our stub",
				 (int)remote->tid, (unsigned long long)regs->rip);
	return status;
}

int remote_syscall(struct hp_remote *remote, long number, const uint64_t arguments[6],
		   int64_t *result, struct hp_error *error)
{
	struct user_regs_struct regs = remote->saved_regs;
	int status;

	if (!remote->active)
		return hp_fail(error, HP_FAILED, "no thread is borrowed");
	regs.rax = (uint64_t)number;
	regs.orig_rax = (uint64_t)-1;	/* no restart of the interrupted call */
	regs.rdi = arguments[0];
	regs.rsi = arguments[1];
	regs.rdx = arguments[2];
	regs.r10 = arguments[3];
	regs.r8 = arguments[4];
	regs.r9 = arguments[5];
	regs.eflags &= ~(unsigned long long)EFLAGS_TRAP;
	if (remote->stub_page)
		status = syscall_through_stub(remote, &regs, error);
	else
		status = syscall_through_libc(remote, &regs, error);
	if (status == HP_OK)
		*result = (int64_t)regs.rax;
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
	struct user_regs_struct regs = remote->saved_regs;
	uint64_t expected = remote->stub_page + HP_STUB_CALL + 3;
	int status;

	if (!remote->active || !remote->stub_page)
		return hp_fail(error, HP_FAILED, "no thread is borrowed");
	/* Below the red zone, 16-byte aligned before the call pushes its return. */
	regs.rsp = (regs.rsp - RED_ZONE - 256) & ~(unsigned long long)15;
	regs.rip = remote->stub_page + HP_STUB_CALL;
	regs.rax = function;
	regs.orig_rax = (uint64_t)-1;
	regs.rdi = arguments[0];
	regs.rsi = arguments[1];
	regs.rdx = arguments[2];
	regs.rcx = arguments[3];
	regs.r8 = arguments[4];
	regs.r9 = arguments[5];
	regs.eflags &= ~(unsigned long long)(EFLAGS_DIRECTION | EFLAGS_TRAP);
	status = set_registers(remote, &regs, error);
	if (status == HP_OK)
		status = run_until_trap(remote, PTRACE_CONT, SIGTRAP, &regs, error);
	remote->in_signal_stop = true;
	if (status == HP_OK && regs.rip != expected)
		status = hp_fail(error, HP_FAILED, "thread %d trapped at 0x%llx, not in our stub",
				 (int)remote->tid, (unsigned long long)regs.rip);
	if (status == HP_OK)
		*result = regs.rax;
	return status;
}

/* After a syscall-exit stop the kernel would not look at a pending restart
 * again; an interrupt makes the thread pass through signal handling, where
 * the restored registers restart its own system call as if never stopped. */
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
			return hp_fail(error, HP_FAILED, "pid %d exited", (int)remote->pid);
		if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP)
			return HP_OK;
		if (WIFSTOPPED(status) &&
		    ptrace(PTRACE_CONT, remote->tid, NULL, (void *)(long)WSTOPSIG(status)) != 0)
			return hp_fail_errno(error, HP_FAILED, "cannot hand back thread %d",
					     (int)remote->tid);
	}
}

int remote_end(struct hp_remote *remote, struct hp_error *error)
{
	int status = HP_OK;

	if (remote->active) {
		if (ptrace(PTRACE_SETREGS, remote->tid, NULL, &remote->saved_regs) != 0)
			status = hp_fail_errno(error, HP_FAILED,
					       "cannot restore the registers of thread %d",
					       (int)remote->tid);
		if (status == HP_OK)
			status = restore_extended_state(remote, error);
		if (status == HP_OK && !remote->in_signal_stop)
			status = return_to_signal_path(remote, error);
		/* The mask last: with signals unblocked earlier, one could arrive
		 * while the thread still runs our code. */
		if (status == HP_OK && ptrace(PTRACE_SETSIGMASK, remote->tid,
					      (void *)sizeof(uint64_t), &remote->saved_sigmask) != 0)
			status = hp_fail_errno(error, HP_FAILED,
					       "cannot restore the signal mask of thread %d",
					       (int)remote->tid);
	}
	free(remote->saved_xstate);
	remote->saved_xstate = NULL;
	remote->active = false;
	return status;
}
