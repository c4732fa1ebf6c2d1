/* registers.c - arm64's general registers of a stopped thread: read and
 * written whole with PTRACE_GETREGSET/SETREGSET (NT_PRSTATUS), with the
 * system-call number (NT_ARM_SYSTEM_CALL), the thread pointer (NT_ARM_TLS)
 * and, at a system-call stop, which one it is (PTRACE_GET_SYSCALL_INFO):
 * arm64 enters a call with its first argument in x0, not -ENOSYS, so the
 * registers alone cannot tell an entry from an exit.
 *
 * System-call restarts, and a thread stopped in a blocking call.  arm64's
 * kernel rewinds a call to restart *before* it stops the thread for a
 * signal or an interrupt (do_signal: pc back over the `svc`, x0 back from
 * orig_x0, "so that a debugger will see the already changed PC"), and
 * forgets the call (syscallno -1).  A thread we interrupt in a blocking
 * read is therefore held with the restart in its registers already: put
 * back exactly (by us, or by itself from its frame), it runs the `svc`
 * again with its own arguments, and registers_syscall() says -1 so that
 * nothing rewinds it twice.  The one thing lost is
 * ERESTART_RESTARTBLOCK's: the kernel sets x8 to restart_syscall only after
 * the stop, when the thread resumes from it; when it comes back through our
 * stub instead, a sleep with a relative timeout (nanosleep, poll) starts
 * over with its whole timeout.  It sees no EINTR and loses no data.  The
 * calls that answer any stop with EINTR (epoll_pwait, semtimedop,
 * io_getevents: signal(7)) are the other loss: by the stop their first
 * argument is gone from x0 and the call forgotten, so thread_rewind_call
 * cannot run them again as it does on x86-64, and the program sees the
 * EINTR that any debugger's stop gives it.
 *
 * Where we must rewind a call ourselves (held at a system-call exit with a
 * restart code in x0, before the kernel's do_signal), x0 needs orig_x0,
 * which no regset carries: /proc/TID/syscall gives it at such a stop (its
 * first argument is the kernel's orig_x0), read only then.  Touches no
 * memory of the target. */
#include <asm/ptrace.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "arch/arch.h"

#define PSTATE_SINGLE_STEP (UINT64_C(1) << 21)
#define PSTATE_BRANCH_TYPE (UINT64_C(3) << 10)
#define RESTART_CODE_LOW (-516)		/* -ERESTART_RESTARTBLOCK ... */
#define RESTART_CODE_HIGH (-512)	/* ... -ERESTARTSYS */

_Static_assert(sizeof(((struct hp_registers *)0)->user) == sizeof(struct user_pt_regs),
	       "NT_PRSTATUS is struct user_pt_regs");
_Static_assert(offsetof(struct user_pt_regs, pc) == 32 * 8, "pc after x0-x30, sp");
_Static_assert(HP_SYNC_SYSCALL == SYS_getpid, "the stubs' sync system call is getpid");

static int get_regset(pid_t tid, int type, void *buffer, size_t size)
{
	struct iovec vector = { buffer, size };

	if (ptrace(PTRACE_GETREGSET, tid, (void *)(long)type, &vector) != 0)
		return -1;
	if (vector.iov_len != size) {
		errno = EIO;	/* a 32-bit thread: not ours to patch */
		return -1;
	}
	return 0;
}

static int set_regset(pid_t tid, int type, const void *buffer, size_t size)
{
	struct iovec vector = { (void *)buffer, size };

	return ptrace(PTRACE_SETREGSET, tid, (void *)(long)type, &vector) == 0 ? 0 : -1;
}

/* orig_x0 from /proc/TID/syscall ("NR 0xARG1 ..."), at a stop inside a
 * system call; false when it cannot be read. */
static bool read_first_argument(pid_t tid, uint64_t *argument)
{
	char path[64], text[256];
	long long number;
	unsigned long long first;
	ssize_t length;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	length = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (length <= 0)
		return false;
	text[length] = '\0';
	if (sscanf(text, "%lld 0x%llx", &number, &first) != 2)
		return false;
	*argument = first;
	return true;
}

/* Which stop of a system call the thread is held in, when it is in one. */
static void read_syscall_stop(pid_t tid, struct hp_registers *registers)
{
	struct __ptrace_syscall_info info;
	int64_t result = (int64_t)registers->user.regs[0];

	memset(&info, 0, sizeof(info));
	if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof(info), &info) > 0)
		registers->syscall_stop = info.op;
	if (registers->syscall_stop == PTRACE_SYSCALL_INFO_ENTRY) {
		registers->first_argument = info.entry.args[0];
		registers->first_argument_known = true;
	} else if (result >= RESTART_CODE_LOW && result <= RESTART_CODE_HIGH) {
		registers->first_argument_known =
			read_first_argument(tid, &registers->first_argument);
	}
}

int registers_read(pid_t tid, struct hp_registers *registers)
{
	int syscall_number = -1;

	memset(registers, 0, sizeof(*registers));
	if (get_regset(tid, NT_PRSTATUS, &registers->user, sizeof(registers->user)) != 0 ||
	    get_regset(tid, NT_ARM_SYSTEM_CALL, &syscall_number, sizeof(syscall_number)) != 0 ||
	    get_regset(tid, NT_ARM_TLS, &registers->thread_pointer,
		       sizeof(registers->thread_pointer)) != 0)
		return -1;
	registers->syscall = syscall_number;
	if (syscall_number >= 0)
		read_syscall_stop(tid, registers);
	return 0;
}

/* The system-call number always goes with them, as x86-64's orig_rax does:
 * registers saved at one stop are often put back at another (the stub's
 * sync), where the kernel must see the number they had, or none. */
int registers_write(pid_t tid, const struct hp_registers *registers)
{
	int syscall_number = (int)registers->syscall;

	if (set_regset(tid, NT_PRSTATUS, &registers->user, sizeof(registers->user)) != 0)
		return -1;
	return set_regset(tid, NT_ARM_SYSTEM_CALL, &syscall_number, sizeof(syscall_number));
}

uint64_t registers_pc(const struct hp_registers *registers)
{
	return registers->user.pc;
}

void registers_set_pc(struct hp_registers *registers, uint64_t pc)
{
	registers->user.pc = pc;
}

uint64_t registers_sp(const struct hp_registers *registers)
{
	return registers->user.sp;
}

void registers_set_sp(struct hp_registers *registers, uint64_t sp)
{
	registers->user.sp = sp;
}

uint64_t registers_thread_pointer(const struct hp_registers *registers)
{
	return registers->thread_pointer;
}

uint64_t registers_return_value(const struct hp_registers *registers)
{
	return registers->user.regs[0];
}

long registers_syscall(const struct hp_registers *registers)
{
	return (long)registers->syscall;
}

bool registers_syscall_exited(const struct hp_registers *registers)
{
	return registers->syscall_stop == PTRACE_SYSCALL_INFO_EXIT;
}

void registers_forget_syscall(struct hp_registers *registers)
{
	registers->syscall = -1;
}

/* As the kernel restarts one: the number in x8, the first argument back in
 * x0, the pc back over the `svc`; the call is forgotten, so that the
 * kernel, resuming from an exit stop, does not rewind it once more.
 * Without orig_x0 (/proc unreadable) x0 keeps the restart code, and the
 * call fails with EINTR-like -512..-516 rather than run with a wrong
 * argument: never seen on a kernel with /proc/TID/syscall. */
void registers_restart_syscall(struct hp_registers *registers, long number)
{
	registers->user.regs[8] = (uint64_t)number;
	if (registers->first_argument_known)
		registers->user.regs[0] = registers->first_argument;
	registers->user.pc -= HP_SYSCALL_INSTRUCTION_SIZE;
	registers->syscall = -1;
}

void registers_set_syscall(struct hp_registers *registers, long number,
			   const uint64_t arguments[6])
{
	registers->user.regs[8] = (uint64_t)number;
	memcpy(registers->user.regs, arguments, 6 * sizeof(uint64_t));
	registers->syscall = -1;	/* no restart of the interrupted call */
	registers->user.pstate &= ~PSTATE_SINGLE_STEP;
}

void registers_set_signal_return(struct hp_registers *registers, uint64_t restorer)
{
	registers->user.regs[30] = restorer;
}

/* The call stub calls x16 (stub.c): IP0, which no argument uses. */
void registers_set_call(struct hp_registers *registers, uint64_t function,
			const uint64_t arguments[6])
{
	registers->user.regs[16] = function;
	memcpy(registers->user.regs, arguments, 6 * sizeof(uint64_t));
}

/* No branch in flight (BTYPE) and no single step into the stub. */
void registers_enter_stub(struct hp_registers *registers, uint64_t frame)
{
	registers->user.sp = frame;
	registers->syscall = -1;
	registers->user.pstate &= ~(PSTATE_SINGLE_STEP | PSTATE_BRANCH_TYPE);
}

/* The stubs keep the result in x19 across the sync getpid (stub.c). */
uint64_t registers_stub_result(const struct hp_registers *registers)
{
	return registers->user.regs[19];
}

/* libunwind's aarch64 numbering: x0-x30 are 0-30, sp 31, pc 32. */
static uint64_t *unwind_slot(struct hp_registers *registers, int number)
{
	if (number >= 0 && number <= 30)
		return &registers->user.regs[number];
	if (number == 31)
		return &registers->user.sp;
	if (number == 32)
		return &registers->user.pc;
	return NULL;
}

bool registers_unwind_value(const struct hp_registers *registers, int number, uint64_t *value)
{
	const uint64_t *slot = unwind_slot((struct hp_registers *)registers, number);

	if (slot)
		*value = *slot;
	return slot != NULL;
}

bool registers_set_unwind_value(struct hp_registers *registers, int number, uint64_t value)
{
	uint64_t *slot = unwind_slot(registers, number);

	if (slot)
		*slot = value;
	return slot != NULL;
}

size_t registers_callee_saved(const int **numbers)
{
	/* AAPCS64's callee-saved general registers: x19-x29. */
	static const int saved[] = { 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29 };

	*numbers = saved;
	return HP_ARRAY_SIZE(saved);
}
