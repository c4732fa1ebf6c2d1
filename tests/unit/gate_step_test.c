/* gate_step_test.c - a thread stopped in a gate's moved prologue, where no
 * rewind can take it, walked on into its function for real: a child held
 * by ptrace is put inside the moved copy of a known prologue, and
 * thread_step_out must leave it at the function past that prologue with
 * the rest of the prologue done, and deliver a signal that arrives
 * meanwhile instead of losing it. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "arch/arch.h"
#include "common/base.h"
#include "runtime/threads.h"

#if !defined(__x86_64__)
#error "gate_step_test tests x86-64 code: the Makefile builds it only for x86-64"
#endif

/* push %rbp; mov %rsp,%rbp; push %rbx: five bytes, three instructions,
 * the least a gate moves.  Past them the function waits for ever. */
__asm__(".text\n"
	".p2align 4\n"
	"stepped_function:\n"
	"\tpush %rbp\n"
	"\tmov %rsp,%rbp\n"
	"\tpush %rbx\n"
	"stepped_function_body:\n"
	"\tmov $34,%eax\n"	/* pause */
	"\tsyscall\n"
	"\tjmp stepped_function_body\n");
void stepped_function(void);
void stepped_function_body(void);

#define PROLOGUE 5

static int signal_pipe[2] = { -1, -1 };

/* The child's: tells the parent it ran. */
static void on_signal(int signal)
{
	(void)signal;
	if (write(signal_pipe[1], "s", 1) != 1)
		_exit(3);
}

/* A gate page in this process (and so in the child) whose one gate runs
 * the function's prologue moved. */
static uint64_t map_gate(void)
{
	uint64_t site = (uint64_t)(uintptr_t)stepped_function;
	unsigned char code[HP_GATE_SIZE];
	void *page = mmap(NULL, HP_PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t displaced = 0;

	if (page == MAP_FAILED)
		return 0;
	if (!gate_displaceable((const unsigned char *)stepped_function, 16, site, &displaced) ||
	    displaced != PROLOGUE ||
	    !gate_encode((uint64_t)(uintptr_t)page, (uint64_t)(uintptr_t)page + HP_GATE_FIRST, 0,
			 (const unsigned char *)stepped_function, displaced, site, code))
		return 0;
	memcpy((unsigned char *)page + HP_GATE_FIRST, code, sizeof(code));
	if (mprotect(page, HP_PAGE_SIZE, PROT_READ | PROT_EXEC) != 0)
		return 0;
	return (uint64_t)(uintptr_t)page;
}

/* Where the moved prologue's second instruction is: the first offset
 * gate_running_on owns (the first instruction itself can be rewound). */
static uint64_t second_instruction(uint64_t page)
{
	uint64_t start = 0, end = 0;

	for (uint64_t pc = page; pc < page + HP_PAGE_SIZE; pc++)
		if (gate_running_on(page, 1, pc, &start, &end))
			return pc;
	return 0;
}

static pid_t start_child(void)
{
	pid_t child = fork();

	if (child == 0) {
		for (;;)
			pause();
	}
	return child;
}

/* Holds the child and puts it at `pc`, out of its system call, with its
 * stack pointer well below the one it had (*sp) and rbp, rbx marked. */
static struct hp_thread *hold_at(struct hp_threads *threads, pid_t child, uint64_t pc,
				 uint64_t *sp)
{
	struct hp_error error = { 0 };
	struct hp_thread *thread;

	if (threads_stop_one(threads, child, hp_now() + 5, &error) != HP_OK)
		return NULL;
	thread = threads_find(threads, child);
	*sp = (registers_sp(&thread->regs) - 512) & ~(uint64_t)15;
	registers_set_pc(&thread->regs, pc);
	registers_set_sp(&thread->regs, *sp);
	registers_forget_syscall(&thread->regs);
	thread->regs.user.rbp = 0x1111;
	thread->regs.user.rbx = 0x2222;
	return registers_write(child, &thread->regs) == 0 ? thread : NULL;
}

static void test_steps_into_function(uint64_t page, uint64_t at)
{
	struct hp_threads threads;
	struct hp_error error = { 0 };
	uint64_t start = 0, end = 0, sp = 0, pushed = 0;
	struct hp_thread *thread;
	pid_t child = start_child();

	threads_init(&threads, child);
	CHECK(gate_running_on(page, 1, at, &start, &end) && start == page + HP_GATE_FIRST &&
		      end == start + HP_GATE_SIZE,
	      "a thread in the gate's moved prologue runs on, in that gate");
	CHECK(!gate_running_on(page, 1, start, &start, &end), "not at the gate's start (rewound)");
	thread = hold_at(&threads, child, at, &sp);
	CHECK(thread != NULL, "child held in the moved prologue, past push %rbp");
	if (thread) {
		CHECK(thread_step_out(&threads, child, start, end, HP_GATE_STEPS, hp_now() + 5,
				      &error) == HP_OK,
		      "stepped");
		thread = threads_find(&threads, child);
	}
	if (thread) {
		errno = 0;
		pushed = (uint64_t)ptrace(PTRACE_PEEKDATA, child, (void *)(uintptr_t)(sp - 8), NULL);
		CHECK(thread->stopped, "held after the steps");
		CHECK(registers_pc(&thread->regs) == (uint64_t)(uintptr_t)stepped_function_body,
		      "at the function, past its prologue");
		CHECK(thread->regs.user.rbp == sp && registers_sp(&thread->regs) == sp - 8,
		      "mov %rsp,%rbp and push %rbx ran, once each");
		CHECK(errno == 0 && pushed == 0x2222, "rbx is where push %rbx put it");
	}
	threads_release(&threads);
	kill(child, SIGKILL);
	waitpid(child, NULL, __WALL);
}

/* A signal that arrives while the thread is stepped is delivered, and the
 * thread held again. */
static void test_signal_delivered(uint64_t page, uint64_t at)
{
	struct hp_threads threads;
	struct hp_error error = { 0 };
	uint64_t start = 0, end = 0, sp = 0;
	struct pollfd ready = { signal_pipe[0], POLLIN, 0 };
	char got = 0;
	pid_t child = start_child();

	threads_init(&threads, child);
	(void)gate_running_on(page, 1, at, &start, &end);
	CHECK(hold_at(&threads, child, at, &sp) != NULL, "second child held in the moved prologue");
	CHECK(kill(child, SIGUSR1) == 0, "a signal sent while it is held");
	CHECK(thread_step_out(&threads, child, start, end, HP_GATE_STEPS, hp_now() + 5, &error) ==
		      HP_OK,
	      "stepping passes the signal on");
	CHECK(threads_find(&threads, child) && threads_find(&threads, child)->stopped,
	      "held again after the signal");
	threads_release(&threads);	/* lets it go */
	CHECK(poll(&ready, 1, 5000) == 1 && read(signal_pipe[0], &got, 1) == 1 && got == 's',
	      "the child's handler ran: the signal was not lost");
	kill(child, SIGKILL);
	waitpid(child, NULL, __WALL);
}

int main(void)
{
	uint64_t page = map_gate(), at = page ? second_instruction(page) : 0;

	CHECK(page != 0, "a gate for the known prologue");
	CHECK(at != 0, "a place in the moved prologue past its first instruction");
	CHECK(pipe(signal_pipe) == 0 && signal(SIGUSR1, on_signal) != SIG_ERR,
	      "the children's signal handler");
	if (at) {
		test_steps_into_function(page, at);
		test_signal_delivered(page, at);
	}
	return check_report();
}
