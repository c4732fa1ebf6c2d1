/* tls_lib_threads.c - a target whose library (libtlscount.so) counts in
 * thread-local variables: each thread prints, every 5 ms,
 *   thread T: lib C/T'    C = lib_count, T' = lib_total, both its own calls
 * SIGUSR1 starts one more thread.  (tls_lib_fix.so adds 100 to each.) */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int lib_bump(int *total);
static volatile sig_atomic_t more;

static void *run(void *argument)
{
	const struct timespec pause = { 0, 5 * 1000 * 1000 };
	long id = (long)argument;

	for (;;) {
		int total = 0, value = lib_bump(&total);

		printf("thread %ld: lib %d/%d\n", id, value, total);
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
