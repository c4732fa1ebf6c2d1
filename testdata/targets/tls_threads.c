/* tls_threads.c - a target whose patchable function counts in a file-local
 * thread-local variable: each thread prints, every 5 ms,
 *   thread T: count C     C = its own calls of bump() (bump adds 1)
 * SIGUSR1 starts one more thread (T = 1, 2, ...), so a test can start
 * threads after a patch is applied.  (tls_fix.so makes bump add 100.) */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static __thread int count;
static volatile sig_atomic_t more;

__attribute__((noipa, noinline)) int bump(void)
{
	count += 1;
	return count;
}

static void *run(void *argument)
{
	const struct timespec pause = { 0, 5 * 1000 * 1000 };
	long id = (long)argument;

	for (;;) {
		int value = bump();

		printf("thread %ld: count %d\n", id, value);
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
