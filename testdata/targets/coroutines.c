/* coroutines.c - a scheduler on the main thread running coroutines of
 * makecontext/swapcontext, each on a stack of its own (mmap'd, unmapped when
 * it finishes).  A parker coroutine calls step(-1), which waits inside step,
 * yielding, until SIGUSR1 releases it; a spinner coroutine keeps running
 * meanwhile (it called step once first, which returned); SIGUSR2 starts a
 * new parker once the last one finished.  Between rounds the main thread
 * calls step(N) itself, from its own stack.  step's call to note() leaves a
 * return address into step far below where the thread or the spinner then
 * waits: stale copies that must not keep a patch out.
 * Output lines:
 *   parked in step          a parker waits inside step (the original)
 *   ready pid=PID stale=0xA spinner_stale=0xB
 *                           the first parker waits; A, B: where those stale
 *                           copies are (main thread's stack, spinner's)
 *   parker done -> R        a parker finished: R = 1 (original), 100 (step_fix)
 *   tick N -> R             the main thread's call: R = N + 1 (original),
 *                           N + 100 (step_fix)
 *   spinner N               every 200 rounds of the spinner coroutine */
#include "target.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#define STACK_SIZE (256u << 10)

struct coroutine {
	ucontext_t context;
	void *stack;
	bool live, finished;
};

static ucontext_t scheduler;
static struct coroutine parker, spinner;
static struct coroutine *current;
static volatile sig_atomic_t release_requested, park_requested;
/* Read by step (and step_fix) while parked: set for one parker at a time. */
volatile int released;
static int parker_result;
static volatile uintptr_t note_slot;

static void on_release(int signal_number)
{
	(void)signal_number;
	release_requested = 1;
}

static void on_park(int signal_number)
{
	(void)signal_number;
	park_requested = 1;
}

/* Back to the scheduler; the coroutine goes on from here when resumed. */
__attribute__((noipa)) void coroutine_yield(void)
{
	if (swapcontext(&current->context, &scheduler) != 0)
		abort();
}

/* Where its own return address is: in step's frame. */
__attribute__((noipa, noinline)) void note(int value)
{
	note_slot = (uintptr_t)__builtin_frame_address(0) + sizeof(void *);
	(void)value;
}

__attribute__((noipa)) int step(int value)
{
	/* A deep frame: the return address of the call to note() lies far below
	 * anything the main thread's waits and signal handlers write. */
	volatile char deep[32 << 10];

	deep[0] = (char)value;
	if (value < 0) {
		printf("parked in step\n");
		while (!released)
			coroutine_yield();
		return 1 + deep[0] - (char)value;
	}
	note(value);
	return value + 1 + deep[0] - (char)value;
}

static void run_parker(void)
{
	parker_result = step(-1);
	parker.finished = true;
}

static uintptr_t spinner_stale;

static void run_spinner(void)
{
	if (step(0) != 1)
		abort();
	spinner_stale = note_slot;
	for (unsigned long rounds = 1;; rounds++) {
		if (rounds % 200 == 0)
			printf("spinner %lu\n", rounds);
		coroutine_yield();
	}
}

static void start(struct coroutine *coroutine, void (*body)(void))
{
	memset(coroutine, 0, sizeof(*coroutine));
	coroutine->stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (coroutine->stack == MAP_FAILED || getcontext(&coroutine->context) != 0)
		abort();
	coroutine->context.uc_stack.ss_sp = coroutine->stack;
	coroutine->context.uc_stack.ss_size = STACK_SIZE;
	coroutine->context.uc_link = &scheduler;
	makecontext(&coroutine->context, body, 0);
	coroutine->live = true;
}

/* Runs the coroutine until it yields or finishes; a finished one's stack
 * goes, and with it every return address it held. */
static void resume(struct coroutine *coroutine)
{
	current = coroutine;
	if (swapcontext(&scheduler, &coroutine->context) != 0)
		abort();
	current = NULL;
	if (coroutine->finished) {
		munmap(coroutine->stack, STACK_SIZE);
		coroutine->live = false;
	}
}

int main(void)
{
	uintptr_t main_stale;

	target_start();
	signal(SIGUSR1, on_release);
	signal(SIGUSR2, on_park);
	start(&spinner, run_spinner);
	resume(&spinner);
	start(&parker, run_parker);
	resume(&parker);
	printf("tick 0 -> %d\n", step(0));
	main_stale = note_slot;
	printf("ready pid=%d stale=0x%lx spinner_stale=0x%lx\n", (int)getpid(),
	       (unsigned long)main_stale, (unsigned long)spinner_stale);
	for (int i = 1;; i++) {
		if (release_requested && parker.live) {
			release_requested = 0;
			released = 1;
		}
		if (park_requested && !parker.live) {
			park_requested = 0;
			released = 0;
			start(&parker, run_parker);
		}
		if (parker.live) {
			resume(&parker);
			if (!parker.live)
				printf("parker done -> %d\n", parker_result);
		}
		resume(&spinner);
		printf("tick %d -> %d\n", i, step(i));
		sleep_ms(5);
	}
}
