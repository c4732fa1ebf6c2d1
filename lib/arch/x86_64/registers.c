/* registers.c - x86-64's general registers of a stopped thread: read and
 * written whole with PTRACE_GETREGSET/SETREGSET (NT_PRSTATUS), and what the
 * engine needs of them by role (pc, sp, system call, arguments).  Touches
 * no memory of the target. */
#include <elf.h>
#include <errno.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include "arch/arch.h"

#define EFLAGS_TRAP 0x100
#define EFLAGS_DIRECTION 0x400

int registers_read(pid_t tid, struct hp_registers *registers)
{
	struct iovec vector = { &registers->user, sizeof(registers->user) };

	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &vector) != 0)
		return -1;
	if (vector.iov_len != sizeof(registers->user)) {
		errno = EIO;	/* a 32-bit thread: not ours to patch */
		return -1;
	}
	return 0;
}

int registers_write(pid_t tid, const struct hp_registers *registers)
{
	struct iovec vector = { (void *)&registers->user, sizeof(registers->user) };

	return ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRSTATUS, &vector) == 0 ? 0 : -1;
}

uint64_t registers_pc(const struct hp_registers *registers)
{
	return registers->user.rip;
}

void registers_set_pc(struct hp_registers *registers, uint64_t pc)
{
	registers->user.rip = pc;
}

uint64_t registers_sp(const struct hp_registers *registers)
{
	return registers->user.rsp;
}

void registers_set_sp(struct hp_registers *registers, uint64_t sp)
{
	registers->user.rsp = sp;
}

uint64_t registers_thread_pointer(const struct hp_registers *registers)
{
	return registers->user.fs_base;
}

uint64_t registers_return_value(const struct hp_registers *registers)
{
	return registers->user.rax;
}

long registers_syscall(const struct hp_registers *registers)
{
	return (long)registers->user.orig_rax;
}

/* The kernel enters a system call with -ENOSYS in %rax. */
bool registers_syscall_exited(const struct hp_registers *registers)
{
	return (long long)registers->user.rax != -ENOSYS;
}

void registers_forget_syscall(struct hp_registers *registers)
{
	registers->user.orig_rax = (uint64_t)-1;
}

/* As the kernel restarts one: the number back in %rax, the pc back over
 * the syscall instruction; the arguments are still in their registers. */
void registers_restart_syscall(struct hp_registers *registers, long number)
{
	registers->user.rax = (uint64_t)number;
	registers->user.rip -= HP_SYSCALL_INSTRUCTION_SIZE;
}

/* orig_rax keeps the number through a signal stop. */
long registers_forgotten_syscall(const struct hp_registers *registers)
{
	(void)registers;
	return -1;
}

/* Only %rax changes; the arguments stay in their registers. */
bool registers_recall_arguments(pid_t tid, struct hp_registers *registers, long number)
{
	(void)tid;
	(void)registers;
	(void)number;
	return true;
}

/* The kernel takes the number from orig_rax after the entry stop. */
void registers_set_entered_syscall(struct hp_registers *registers, long number)
{
	registers->user.orig_rax = (uint64_t)number;
}

/* The restore code pops the registers and returns with iretq: the
 * kernel's restart block stays for a restart_syscall. */
bool registers_restored_by_stub(const struct hp_registers *registers)
{
	(void)registers;
	return true;
}

void registers_set_syscall(struct hp_registers *registers, long number,
			   const uint64_t arguments[6])
{
	struct user_regs_struct *user = &registers->user;

	user->rax = (uint64_t)number;
	user->orig_rax = (uint64_t)-1;	/* no restart of the interrupted call */
	user->rdi = arguments[0];
	user->rsi = arguments[1];
	user->rdx = arguments[2];
	user->r10 = arguments[3];
	user->r8 = arguments[4];
	user->r9 = arguments[5];
	user->eflags &= ~(unsigned long long)EFLAGS_TRAP;
}

/* The return address is the signal frame's first word (restore_frame.c). */
void registers_set_signal_return(struct hp_registers *registers, uint64_t restorer)
{
	(void)registers;
	(void)restorer;
}

/* The call stub calls *%rax (stub.c). */
void registers_set_call(struct hp_registers *registers, uint64_t function,
			const uint64_t arguments[6])
{
	struct user_regs_struct *user = &registers->user;

	user->rax = function;
	user->rdi = arguments[0];
	user->rsi = arguments[1];
	user->rdx = arguments[2];
	user->rcx = arguments[3];
	user->r8 = arguments[4];
	user->r9 = arguments[5];
}

/* The ABI promises a called function a clear direction flag. */
void registers_enter_stub(struct hp_registers *registers, uint64_t frame)
{
	registers->user.rsp = frame;
	registers->user.orig_rax = (uint64_t)-1;
	registers->user.eflags &= ~(unsigned long long)(EFLAGS_DIRECTION | EFLAGS_TRAP);
}

/* The stubs keep the result in %rbx across the sync getpid (stub.c). */
uint64_t registers_stub_result(const struct hp_registers *registers)
{
	return registers->user.rbx;
}

bool registers_unwind_value(const struct hp_registers *registers, int number, uint64_t *value)
{
	const struct user_regs_struct *user = &registers->user;
	/* libunwind's x86-64 numbering (UNW_X86_64_RAX ... UNW_X86_64_RIP):
	 * rax rdx rcx rbx rsi rdi rbp rsp r8-r15 rip. */
	const unsigned long long *by_number[] = {
		&user->rax, &user->rdx, &user->rcx, &user->rbx, &user->rsi, &user->rdi,
		&user->rbp, &user->rsp, &user->r8,  &user->r9,  &user->r10, &user->r11,
		&user->r12, &user->r13, &user->r14, &user->r15, &user->rip,
	};

	if (number < 0 || (size_t)number >= HP_ARRAY_SIZE(by_number))
		return false;
	*value = *by_number[number];
	return true;
}

/* libunwind's x86-64 numbering (UNW_X86_64_RAX ... UNW_X86_64_RIP): rax rdx
 * rcx rbx rsi rdi rbp rsp r8-r15 rip. */
static unsigned long long *unwind_slot(struct hp_registers *registers, int number)
{
	struct user_regs_struct *user = &registers->user;
	unsigned long long *by_number[] = {
		&user->rax, &user->rdx, &user->rcx, &user->rbx, &user->rsi, &user->rdi,
		&user->rbp, &user->rsp, &user->r8,  &user->r9,  &user->r10, &user->r11,
		&user->r12, &user->r13, &user->r14, &user->r15, &user->rip,
	};

	return number >= 0 && (size_t)number < HP_ARRAY_SIZE(by_number) ? by_number[number] : NULL;
}

bool registers_set_unwind_value(struct hp_registers *registers, int number, uint64_t value)
{
	unsigned long long *slot = unwind_slot(registers, number);

	if (slot)
		*slot = value;
	return slot != NULL;
}

size_t registers_callee_saved(const int **numbers)
{
	/* The System V ABI's callee-saved registers: rbx rbp r12-r15. */
	static const int saved[] = { 3, 6, 12, 13, 14, 15 };	/* in unwind_slot's order */

	*numbers = saved;
	return HP_ARRAY_SIZE(saved);
}

/* A return address is on the stack here, never only in a register. */
bool registers_leave_frameless(struct hp_registers *registers)
{
	(void)registers;
	return false;
}
