/* signal_sender.c - floods a process with queued real-time signals while a
 * test patches it.  Not a target: the tests run it, they never patch it.
 *
 * Usage: signal_sender PID STOP_FILE
 * Sends SIGRTMIN with the numbers 1, 2, 3, ... (sigqueue) and a SIGUSR1 after
 * every 16th, about 5000 a second, until STOP_FILE exists (and at least 500
 * were sent), 100000 were sent, or 30 s passed.  When the target's queue is
 * full it waits and sends the same number again.  Last line:
 *   sent rt=COUNT sum=SUM usr1=COUNT */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long sent = 0, sum = 0, usr1 = 0;
	time_t give_up = time(NULL) + 30;
	pid_t pid;

	if (argc != 3) {
		fprintf(stderr, "usage: signal_sender PID STOP_FILE\n");
		return 2;
	}
	pid = (pid_t)atoi(argv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (sent < 100000 && time(NULL) < give_up) {
		union sigval value = { .sival_int = (int)(sent + 1) };
		struct timespec pause = { 0, 200 * 1000 };

		if (sigqueue(pid, SIGRTMIN, value) == -1) {
			if (errno != EAGAIN) {
				fprintf(stderr, "signal_sender: sigqueue to %d: %s\n", (int)pid, strerror(errno));
				break;
			}
			pause.tv_nsec = 1000 * 1000;	/* queue full: let the target catch up */
		} else {
			sent++;
			sum += sent;
			if (sent % 16 == 0 && kill(pid, SIGUSR1) == 0)
				usr1++;
			if (sent % 64 == 0 && sent >= 500 && access(argv[2], F_OK) == 0)
				break;
		}
		nanosleep(&pause, NULL);
	}
	printf("sent rt=%lu sum=%lu usr1=%lu\n", sent, sum, usr1);
	return 0;
}
