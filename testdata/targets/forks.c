/* forks.c - a master that forks one worker, as a preforking server does:
 * both call compute() every 5 ms.  A patch applied to the worker alone does
 * not reach workers the master forks later, which list must say.
 * Output lines:
 *   ready pid=PID worker=WORKER
 *   compute N -> R      (the master's; original R = 2 * N)
 * The worker dies with the master (PR_SET_PDEATHSIG). */
#include "target.h"

#include <signal.h>
#include <sys/prctl.h>

int compute_calls;

__attribute__((noipa)) int compute(int value)
{
	compute_calls++;
	return 2 * value;
}

static void loop(int quiet)
{
	for (int i = 1;; i++) {
		int computed = compute(i);

		if (!quiet)
			printf("compute %d -> %d\n", i, computed);
		sleep_ms(5);
	}
}

int main(void)
{
	pid_t worker;

	target_start();
	worker = fork();
	if (worker < 0) {
		perror("fork");
		return 1;
	}
	if (worker == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		target_start();	/* alarms are not inherited */
		loop(1);
	}
	printf("ready pid=%d worker=%d\n", (int)getpid(), (int)worker);
	loop(0);
}
