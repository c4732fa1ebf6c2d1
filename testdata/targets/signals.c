/* signals.c - counts the signals it is sent: queued real-time signals
 * (SIGRTMIN, each carrying a number) and SIGUSR1, in handlers on two threads.
 * The main thread calls work() every 5 ms; the second thread only sleeps, so
 * a signal can land on either.  Output lines:
 *   ready pid=PID
 *   work N -> R                        original: R = 10 * N; work_fix: R = 20 * N
 *   signals rt=COUNT sum=SUM usr1=COUNT  (every 50 ms, and on SIGUSR2)
 * sum adds up the numbers the real-time signals carried, so a lost or repeated
 * signal shows even when the count happens to match. */
#include "target.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

static atomic_ulong rt_count, rt_sum, usr1_count;
static atomic_int report_wanted;
static unsigned long work_calls;

__attribute__((noipa)) int work(int value)
{
	work_calls++;
	return 10 * value;
}

static void on_rt(int signal, siginfo_t *info, void *context)
{
	(void)signal;
	(void)context;
	atomic_fetch_add(&rt_count, 1);
	atomic_fetch_add(&rt_sum, (unsigned long)info->si_value.sival_int);
}

static void on_usr1(int signal)
{
	(void)signal;
	atomic_fetch_add(&usr1_count, 1);
}

static void on_usr2(int signal)
{
	(void)signal;
	atomic_store(&report_wanted, 1);
}

static void *idle(void *argument)
{
	(void)argument;
	for (;;)
		sleep_ms(1000);
	return NULL;
}

static void report(void)
{
	printf("signals rt=%lu sum=%lu usr1=%lu\n", atomic_load(&rt_count), atomic_load(&rt_sum),
	       atomic_load(&usr1_count));
}

int main(void)
{
	struct sigaction action = { .sa_flags = SA_SIGINFO | SA_RESTART };
	pthread_t thread;

	target_start();
	sigemptyset(&action.sa_mask);
	action.sa_sigaction = on_rt;
	sigaction(SIGRTMIN, &action, NULL);
	action.sa_flags = SA_RESTART;
	action.sa_handler = on_usr1;
	sigaction(SIGUSR1, &action, NULL);
	action.sa_handler = on_usr2;
	sigaction(SIGUSR2, &action, NULL);
	pthread_create(&thread, NULL, idle, NULL);
	printf("ready pid=%d\n", (int)getpid());
	for (int i = 1;; i++) {
		printf("work %d -> %d\n", i, work(i));
		if (i % 10 == 0 || atomic_exchange(&report_wanted, 0))
			report();
		sleep_ms(5);
	}
}
