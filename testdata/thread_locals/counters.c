/* counters.c - a program for `hotpatch build` on fixes that use
 * thread-local variables, of the program and of a library, in every
 * thread-local storage model the compiler picks for them.  Each thread
 * prints, every 5 ms,
 *   thread T: counts C/V/R/S/L/H
 * C, V, R and S its own calls of count_calls() (+1 each; +100 with
 * counters.diff), counted in `calls` (file-local: local-exec), `visits`
 * (a global of this file: local-exec), `rounds` (rounds.c's: initial-exec)
 * and `lib_seen` (libthreadcount.so's: initial-exec, bound by the dynamic
 * linker); L and H its own calls of the library's lib_count() (+1 each;
 * +100 with threadcount.diff).  SIGUSR1 starts one more thread (T = 1, 2,
 * ...), so a test sees threads started after a patch too. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define PATCHABLE __attribute__((noipa, noinline))

static __thread int calls;
__thread int visits;
extern __thread int rounds;
extern __thread int lib_seen;
static volatile sig_atomic_t more;

int lib_count(int *hits);

PATCHABLE void count_calls(int values[4])
{
	calls += 1;
	visits += 1;
	rounds += 1;
	lib_seen += 1;
	values[0] = calls;
	values[1] = visits;
	values[2] = rounds;
	values[3] = lib_seen;
}

static void *run(void *argument)
{
	const struct timespec pause = { 0, 5 * 1000 * 1000 };
	long id = (long)argument;

	for (;;) {
		int values[4], hits = 0, lib_calls;

		count_calls(values);
		lib_calls = lib_count(&hits);
		printf("thread %ld: counts %d/%d/%d/%d/%d/%d\n", id, values[0], values[1],
		       values[2], values[3], lib_calls, hits);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

static void on_usr1(int signal_number)
{
	(void)signal_number;
	more = 1;
}

int main(void)
{
	const struct timespec pause = { 0, 5 * 1000 * 1000 };
	long next = 1;
	pthread_t thread;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGUSR1, on_usr1);
	pthread_create(&thread, NULL, run, (void *)next++);
	printf("ready pid=%d\n", (int)getpid());
	for (;;) {
		if (more) {
			more = 0;
			pthread_create(&thread, NULL, run, (void *)next++);
		}
		nanosleep(&pause, NULL);
	}
}
