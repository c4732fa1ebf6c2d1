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
 * io_getevents: signal(7)) are held with the call forgotten and EINTR in
 * x0, but x8 still names the call (registers_forgotten_syscall), and the
 * kernel still has its first argument in orig_x0: thread_rewind_call runs
 * them again as on x86-64.  One stop looks the same and is not ours: a
 * thread held on its way out of the rt_sigreturn that ends the handler of
 * the program's own signal, which had cut such a call short; that EINTR,
 * the program's, is then taken back too (x86-64 tells them apart by
 * orig_rax, which rt_sigreturn clears; arm64 keeps nothing of it).
 *
 * orig_x0, needed to run a call again wherever x0 holds its result by now,
 * is in no regset: /proc/TID/syscall gives it (its first argument) while
 * the kernel counts the thread in a system call, at a system-call stop, or
 * at a signal stop once the call is named again (registers_recall_arguments).
 * And on its way out of the signal stop, the kernel turns x8 into
 * restart_syscall when it had rewound an ERESTART_RESTARTBLOCK and the pc
 * is still where it rewound it to: a thread blocked in libc's syscall(),
 * whose `svc` our first remote system call runs from, so that call is set
 * again at its entry stop (registers_set_entered_syscall).  A thread taken
 * in restart_syscall (x8) needs the restart block the kernel keeps, which
 * the stub's rt_sigreturn empties: hotpatch puts its registers back itself
 * (registers_restored_by_stub).  Touches no
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

/* orig_x0 from /proc/TID/syscall ("NR 0xARG1 ..."), at a stop inside
 * system call `expected`; false when it cannot be read. */
static bool read_first_argument(pid_t tid, long expected, uint64_t *argument)
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
	if (sscanf(text, "%lld 0x%llx", &number, &first) != 2 || number != expected)
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
			read_first_argument(tid, (long)registers->syscall,
					    &registers->first_argument);
	}
}

/* The bits of a code address that hold a pointer-authentication code
 * (NT_ARM_PAC_MASK's insn_mask), 0 where the processor signs nothing (no
 * such regset).  The kernel's, the same for every thread of every
 * process: read once, at the first thread's first stop. */
static uint64_t code_pac_mask(pid_t tid)
{
	static bool known;
	static uint64_t mask;
	uint64_t masks[2] = { 0, 0 };	/* data_mask, insn_mask */

	if (!known) {
		mask = get_regset(tid, NT_ARM_PAC_MASK, masks, sizeof(masks)) == 0 ? masks[1] : 0;
		known = true;
	}
	return mask;
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
	registers->code_pac_mask = code_pac_mask(tid);
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

/* Held at a signal stop on its way out of a system call, the thread has
 * the call forgotten already (do_signal), but x8 still holds its number
 * and x0 its result: an EINTR, since the kernel rewound every restart
 * code.  Whether the pc follows a `svc` is the caller's to check. */
long registers_forgotten_syscall(const struct hp_registers *registers)
{
	if (registers->syscall >= 0 || (int64_t)registers->user.regs[0] != -EINTR ||
	    registers->user.regs[8] > INT32_MAX)
		return -1;
	return (long)registers->user.regs[8];
}

/* /proc/TID/syscall names the arguments (orig_x0 first) only while the
 * kernel counts the thread in a system call: a call forgotten at a signal
 * stop is named again for the read (NT_ARM_SYSTEM_CALL), then forgotten
 * again, as the kernel left it. */
bool registers_recall_arguments(pid_t tid, struct hp_registers *registers, long number)
{
	int named = (int)number, forgotten = (int)registers->syscall;
	bool renamed = registers->syscall != number, recalled;

	if (registers->first_argument_known)
		return true;
	if (renamed && set_regset(tid, NT_ARM_SYSTEM_CALL, &named, sizeof(named)) != 0)
		return false;
	recalled = read_first_argument(tid, number, &registers->first_argument);
	if (renamed && set_regset(tid, NT_ARM_SYSTEM_CALL, &forgotten, sizeof(forgotten)) != 0)
		recalled = false;
	registers->first_argument_known = recalled;
	return recalled;
}

/* The kernel takes the number from syscallno after the entry stop (x8 is
 * read once, before it); x8 as if the thread had asked for it. */
void registers_set_entered_syscall(struct hp_registers *registers, long number)
{
	registers->user.regs[8] = (uint64_t)number;
	registers->syscall = number;
}

/* As the kernel restarts one: the number in x8, the first argument back in
 * x0 (registers_recall_arguments got it), the pc back over the `svc`; the
 * call is forgotten, so that the kernel, resuming from an exit stop, does
 * not rewind it once more. */
void registers_restart_syscall(struct hp_registers *registers, long number)
{
	registers->user.regs[8] = (uint64_t)number;
	if (registers->first_argument_known)
		registers->user.regs[0] = registers->first_argument;
	registers->user.pc -= HP_SYSCALL_INSTRUCTION_SIZE;
	registers->syscall = -1;
}

/* x8 says restart_syscall when the thread was taken in one (resumed from
 * an earlier stop, the kernel had set it), or when we rewound a call to
 * it; the pc is at its `svc` then. */
bool registers_restored_by_stub(const struct hp_registers *registers)
{
	return registers->user.regs[8] != SYS_restart_syscall;
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

/* A leaf's return address is x30, signed there between its paciasp and
 * autiasp: the caller runs at it without the signature. */
bool registers_leave_frameless(struct hp_registers *registers)
{
	registers->user.pc = registers->user.regs[30] & ~registers->code_pac_mask;
	return true;
}
