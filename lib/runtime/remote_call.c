/* remote_call.c - running system calls and functions on one borrowed thread
 * of the target while its other threads keep running.  Everything the thread
 * had (general registers, FPU/SSE/AVX state, signal mask, an interrupted
 * system call waiting to restart) is saved first and put back exactly; the
 * thread's signals stay blocked meanwhile, so nothing is delivered early or
 * lost.
 *
 * The thread gets itself back: before the first call through our stub page,
 * a frame with everything it had is written onto its own stack, below the
 * red zone, and every call ends in code that restores that frame.  If
 * hotpatch dies at any instant (SIGKILL included), the thread finishes the
 * call it is in and returns, by itself, to where it was:
 *
 *   stub page                          the thread's stack
 *   0x00 call *%rax                    original %rsp ->  ...
 *        mov %rax,%rbx                                  red zone (128)
 *        mov $39,%eax; syscall (sync)                   xsave area (64-aligned)
 *        jmp restore                   frame+168 ->     ss, rsp, rflags, cs, rip
 *   0x20 syscall                       frame+8 ->       r15 ... rax (15 words)
 *        mov %rax,%rbx; sync; jmp      frame ->         signal mask
 *   0x40 restore: rt_sigprocmask(SETMASK, frame); xrstor; pop r15..rax; iretq
 *
 * A live hotpatch follows the thread with PTRACE_SYSCALL and takes the
 * result in %rbx at the getpid, then sets up the next call or lets the
 * thread run on into the restore.  Only the very first system call in a
 * process (mapping the stub page) runs through libc's syscall instruction
 * with registers put back by us. */
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

#include "runtime/threads.h"
#include "common/base.h"

#define XSTATE_BUFFER 16384
#define REMOTE_GRACE 30.0
#define SYNC_SYSCALL 39		/* getpid: harmless, and ours by its address */
#define STUB_CALL_SYNC (HP_STUB_CALL + 0x0c)	/* just after the sync syscall */
#define STUB_SYSCALL_SYNC (HP_STUB_SYSCALL + 0x0c)
#define FRAME_WORDS 21		/* mask, 15 registers, rip cs rflags rsp ss */
#define FRAME_SIZE (FRAME_WORDS * 8)
#define RED_ZONE 128
#define EFLAGS_TRAP 0x100
#define EFLAGS_DIRECTION 0x400

void remote_stub_bytes(unsigned char page[HP_STUB_DATA])
{
	static const unsigned char call_stub[] = {
		0xff, 0xd0,			/* call *%rax */
		0x48, 0x89, 0xc3,		/* mov %rax,%rbx */
		0xb8, 0x27, 0x00, 0x00, 0x00,	/* mov $39,%eax (getpid) */
		0x0f, 0x05,			/* syscall: the sync point */
		0xeb, 0x32,			/* jmp restore (0x40) */
	};
	static const unsigned char syscall_stub[] = {
		0x0f, 0x05,			/* syscall */
		0x48, 0x89, 0xc3,		/* mov %rax,%rbx */
		0xb8, 0x27, 0x00, 0x00, 0x00,	/* mov $39,%eax (getpid) */
		0x0f, 0x05,			/* syscall: the sync point */
		0xeb, 0x12,			/* jmp restore (0x40) */
	};
	static const unsigned char restore[] = {
		0xb8, 0x0e, 0x00, 0x00, 0x00,	/* mov $14,%eax (rt_sigprocmask) */
		0xbf, 0x02, 0x00, 0x00, 0x00,	/* mov $2,%edi (SIG_SETMASK) */
		0x48, 0x89, 0xe6,		/* mov %rsp,%rsi (the frame's mask) */
		0x31, 0xd2,			/* xor %edx,%edx */
		0x41, 0xba, 0x08, 0x00, 0x00, 0x00, /* mov $8,%r10d */
		0x0f, 0x05,			/* syscall */
		0x48, 0x8d, 0x8c, 0x24, 0xe7, 0x00, 0x00, 0x00, /* lea 231(%rsp),%rcx */
		0x48, 0x83, 0xe1, 0xc0,		/* and $-64,%rcx: the xsave area */
		0xb8, 0xff, 0xff, 0xff, 0xff,	/* mov $-1,%eax */
		0xba, 0xff, 0xff, 0xff, 0xff,	/* mov $-1,%edx */
		0x48, 0x0f, 0xae, 0x29,		/* xrstor64 (%rcx) */
		0x48, 0x83, 0xc4, 0x08,		/* add $8,%rsp */
		0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, /* pop r15 r14 r13 r12 */
		0x41, 0x5b, 0x41, 0x5a, 0x41, 0x59, 0x41, 0x58, /* pop r11 r10 r9 r8 */
		0x5f, 0x5e, 0x5d, 0x5b, 0x5a, 0x59, 0x58, /* pop rdi rsi rbp rbx rdx rcx rax */
		0x48, 0xcf,			/* iretq: rip, cs, rflags, rsp, ss at once */
	};

	memset(page, 0xcc, HP_STUB_DATA);
	memcpy(page + HP_STUB_CALL, call_stub, sizeof(call_stub));
	memcpy(page + HP_STUB_SYSCALL, syscall_stub, sizeof(syscall_stub));
	memcpy(page + HP_STUB_RESTORE, restore, sizeof(restore));
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
	if (ptrace(PTRACE_GETREGS, tid, NULL, &remote->saved_regs) != 0)
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
	if (thread_wait(remote->tid, remote->deadline + REMOTE_GRACE, status, error) < 0) {
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
			  struct user_regs_struct *regs, struct hp_error *error)
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

/* The kernel's signal frame (struct rt_sigframe) as rt_sigreturn reads it. */
#define SIGFRAME_UCONTEXT 8
#define SIGFRAME_MCONTEXT (SIGFRAME_UCONTEXT + 40)
#define SIGFRAME_MASK (SIGFRAME_UCONTEXT + 296)
#define SIGFRAME_SIZE (SIGFRAME_UCONTEXT + 304 + 128)	/* and siginfo */
#define UC_FLAGS 7	/* UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS */
#define FX_SW_XSTATE_SIZE 464 + 16	/* in the fxsave area's software bytes */

/* Before the first system call, which runs through libc's own syscall
 * instruction (there is no stub page yet), a signal frame with everything
 * the thread had goes onto its stack, below a return address pointing at
 * libc's __restore_rt (mov $15,%rax; syscall: rt_sigreturn).  If hotpatch
 * dies then, the thread leaves libc's syscall() through its `ret` into
 * rt_sigreturn, and the kernel puts back registers, FPU state and signal
 * mask; its alternate signal stack is left alone (an invalid ss_flags is
 * ignored by rt_sigreturn). */
static int write_signal_frame(struct hp_remote *remote, struct hp_error *error)
{
	struct user_regs_struct regs = remote->saved_regs;
	uint64_t base, fpstate, *context;
	uint32_t magic = FP_XSTATE_MAGIC2, fp_size;	/* <signal.h>'s */
	unsigned char *image;
	size_t length;
	struct iovec local, target;
	ssize_t written;

	if (remote->signal_frame || !remote->libc_restore_rt || !remote->xstate_size)
		return HP_OK;	/* without them, we put the thread back ourselves */
	memcpy(&fp_size, remote->saved_xstate + FX_SW_XSTATE_SIZE, sizeof(fp_size));
	if (fp_size < 512 || fp_size > remote->xstate_size)
		fp_size = (uint32_t)remote->xstate_size;
	base = (regs.rsp - RED_ZONE - SIGFRAME_SIZE - 64 - fp_size - sizeof(magic)) &
	       ~(uint64_t)15;
	fpstate = (base + SIGFRAME_SIZE + 63) & ~(uint64_t)63;
	length = (size_t)(fpstate - base) + fp_size + sizeof(magic);
	image = calloc(1, length);
	if (!image)
		return hp_fail(error, HP_FAILED, "out of memory");
	memcpy(image, &remote->libc_restore_rt, sizeof(uint64_t));	/* the `ret` takes it */
	memcpy(image + SIGFRAME_UCONTEXT, (uint64_t[5]){ UC_FLAGS, 0, 0, 3, 0 }, 40);
	context = (uint64_t *)(image + SIGFRAME_MCONTEXT);
	memcpy(context, (uint64_t[18]){ regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13,
					regs.r14, regs.r15, regs.rdi, regs.rsi, regs.rbp, regs.rbx,
					regs.rdx, regs.rax, regs.rcx, regs.rsp, regs.rip,
					regs.eflags },
	       18 * sizeof(uint64_t));
	context[18] = (regs.cs & 0xffff) | ((regs.ss & 0xffff) << 48);	/* cs, gs, fs, ss */
	context[23] = fpstate;
	memcpy(image + SIGFRAME_MASK, &remote->saved_sigmask, sizeof(uint64_t));
	memcpy(image + (fpstate - base), remote->saved_xstate, fp_size);
	memcpy(image + (fpstate - base) + fp_size, &magic, sizeof(magic));
	local = (struct iovec){ image, length };
	target = (struct iovec){ (void *)(uintptr_t)base, length };
	written = process_vm_writev(remote->pid, &local, 1, &target, 1, 0);
	free(image);
	if (written == (ssize_t)length)
		remote->signal_frame = base;
	return HP_OK;
}

/* The first system call (mapping our stub page) has no stub to run from; it
 * uses a syscall instruction of libc, stepping with PTRACE_SYSCALL so no
 * instruction after it runs. */
static int syscall_through_libc(struct hp_remote *remote, struct user_regs_struct *regs,
				struct hp_error *error)
{
	int status;

	status = write_signal_frame(remote, error);
	regs->rip = remote->libc_syscall;
	if (remote->signal_frame)
		regs->rsp = remote->signal_frame;
	if (status == HP_OK)
		status = set_registers(remote, regs, error);
	if (status == HP_OK)
		status = block_signals(remote, error);
	if (status == HP_OK)
		status = run_until_trap(remote, PTRACE_SYSCALL, SIGTRAP | 0x80, regs, error);
	if (status == HP_OK && hp_fault("kill-in-first-syscall"))
		raise(SIGKILL);	/* the test build's way to die right here */
	if (status == HP_OK)
		status = run_until_trap(remote, PTRACE_SYSCALL, SIGTRAP | 0x80, regs, error);
	remote->in_signal_stop = false;
	return status;
}

/* Writes the frame (drawn at the top of this file) onto the thread's stack. */
static int arm_frame(struct hp_remote *remote, struct hp_error *error)
{
	struct user_regs_struct regs = remote->saved_regs;
	uint64_t frame, xsave_area, words[FRAME_WORDS];
	unsigned char *image;
	size_t length;
	struct iovec local, target;
	ssize_t written;

	if (remote->self_restoring)
		return HP_OK;
	if (!remote->xstate_size)
		return 1;	/* no XSAVE: we put the thread back ourselves */
	frame = ((remote->signal_frame ? remote->signal_frame : regs.rsp - RED_ZONE) -
		 remote->xstate_size - FRAME_SIZE - 64) & ~(uint64_t)15;
	xsave_area = (frame + FRAME_SIZE + 63) & ~(uint64_t)63;
	words[0] = remote->saved_sigmask;
	memcpy(&words[1], (uint64_t[15]){ regs.r15, regs.r14, regs.r13, regs.r12, regs.r11,
					   regs.r10, regs.r9, regs.r8, regs.rdi, regs.rsi,
					   regs.rbp, regs.rbx, regs.rdx, regs.rcx, regs.rax },
	       15 * sizeof(uint64_t));
	memcpy(&words[16], (uint64_t[5]){ regs.rip, regs.cs, regs.eflags, regs.rsp, regs.ss },
	       5 * sizeof(uint64_t));
	length = (size_t)(xsave_area - frame) + remote->xstate_size;
	image = calloc(1, length);
	if (!image)
		return hp_fail(error, HP_FAILED, "out of memory");
	memcpy(image, words, sizeof(words));
	memcpy(image + (xsave_area - frame), remote->saved_xstate, remote->xstate_size);
	local = (struct iovec){ image, length };
	target = (struct iovec){ (void *)(uintptr_t)frame, length };
	written = process_vm_writev(remote->pid, &local, 1, &target, 1, 0);
	free(image);
	if (written != (ssize_t)length)
		return 1;	/* the stack has no room: we put the thread back ourselves */
	remote->frame = frame;
	remote->self_restoring = true;
	return HP_OK;
}

/* Runs the thread from a stub until it reaches the sync point after its
 * call, passing every other system call by; the result is in %rbx there. */
static int run_to_sync(struct hp_remote *remote, uint64_t sync, struct user_regs_struct *regs,
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
		if (ptrace(PTRACE_GETREGS, remote->tid, NULL, regs) != 0)
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
				       (unsigned long long)regs->rip);
		}
		/* Ours at its exit, when getpid has returned (entry shows -ENOSYS). */
		if (regs->rip == sync && regs->orig_rax == SYNC_SYSCALL &&
		    (long long)regs->rax != -ENOSYS)
			return HP_OK;
		if (regs->rip != sync && hp_fault("kill-in-call"))
			raise(SIGKILL);	/* the test build's way to die inside a call */
	}
}

/* One call through a stub: set the registers, block signals, run to the
 * sync point.  The thread's %rsp is the frame, so whatever happens next it
 * can restore itself. */
static int run_stub(struct hp_remote *remote, struct user_regs_struct *regs, uint64_t sync,
		    struct hp_error *error)
{
	int status;

	regs->rsp = remote->frame;
	regs->orig_rax = (uint64_t)-1;
	regs->eflags &= ~(unsigned long long)(EFLAGS_DIRECTION | EFLAGS_TRAP);
	status = set_registers(remote, regs, error);
	if (status == HP_OK)
		status = block_signals(remote, error);
	remote->at_sync = false;
	if (status == HP_OK)
		status = run_to_sync(remote, sync, regs, error);
	if (status == HP_OK) {
		remote->at_sync = true;
		regs->rax = regs->rbx;
	}
	return status;
}

static int syscall_through_stub(struct hp_remote *remote, struct user_regs_struct *regs,
				struct hp_error *error)
{
	regs->rip = remote->stub_page + HP_STUB_SYSCALL;
	return run_stub(remote, regs, remote->stub_page + STUB_SYSCALL_SYNC, error);
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
	status = remote->stub_page ? arm_frame(remote, error) : 1;
	if (status == HP_OK)
		status = syscall_through_stub(remote, &regs, error);
	else if (status == 1)
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
	int status;

	if (!remote->active || !remote->stub_page)
		return hp_fail(error, HP_FAILED, "no thread is borrowed");
	status = arm_frame(remote, error);
	if (status == 1)
		return hp_fail(error, HP_FAILED,
			       "no room on the stack of thread %d of pid %d for a remote call",
			       (int)remote->tid, (int)remote->pid);
	if (status != HP_OK)
		return status;
	regs.rip = remote->stub_page + HP_STUB_CALL;
	regs.rax = function;
	regs.rdi = arguments[0];
	regs.rsi = arguments[1];
	regs.rdx = arguments[2];
	regs.rcx = arguments[3];
	regs.r8 = arguments[4];
	regs.r9 = arguments[5];
	status = run_stub(remote, &regs, remote->stub_page + STUB_CALL_SYNC, error);
	if (status == HP_OK)
		*result = regs.rax;
	return status;
}

/* After a syscall-exit stop the kernel would not look at a pending restart
 * again; the registers put back are rewound already (remote_begin), and an
 * interrupt makes the thread pass through signal handling once more before
 * its own code runs, as it would have from the stop we took it in. */
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
 * without a frame, or after a fault inside a call. */
static int restore_by_tracer(struct hp_remote *remote, struct hp_error *error)
{
	int status = HP_OK;

	if (ptrace(PTRACE_SETREGS, remote->tid, NULL, &remote->saved_regs) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot restore the registers of thread %d",
				       (int)remote->tid);
	if (status == HP_OK)
		status = restore_extended_state(remote, error);
	if (status == HP_OK && !remote->in_signal_stop)
		status = return_to_signal_path(remote, error);
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
	struct user_regs_struct regs;
	double pause = 20e-6;

	for (int stops = 0; stops < 2;) {
		int status = next_stop(remote, PTRACE_SYSCALL, deadline);

		if (status < 0)
			return;
		stops += WSTOPSIG(status) == (SIGTRAP | 0x80);
	}
	while (ptrace(PTRACE_GETREGS, remote->tid, NULL, &regs) == 0 &&
	       regs.rip >= remote->stub_page && regs.rip < remote->stub_page + HP_PAGE_SIZE &&
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

	if (remote->active && remote->self_restoring && !remote->faulted && remote->at_sync)
		settle(remote);

	/* With a frame, the thread restores itself when let go: from the sync
	 * point it runs on into the restore code; still inside a call (the
	 * deadline passed), it finishes the call first. */
	if (remote->active && (!remote->self_restoring || remote->faulted))
		status = restore_by_tracer(remote, error);
	free(remote->saved_xstate);
	remote->saved_xstate = NULL;
	remote->active = false;
	return status;
}
