/* starts.c - how long a program takes to start, run and exit: COUNT runs,
 * each timed from posix_spawn to waitpid, with this process's environment
 * (the caller sets LD_PRELOAD and HOTPATCH_STORE).  Prints the median and
 * the 90th percentile in microseconds, "MEDIAN P90"; exits 1 when a run
 * fails, since a loader that makes a program fail is worse than a slow one.
 *
 *   starts COUNT PROGRAM [ARGUMENT...] */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec * 1e6 + (double)now.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int count = argc > 2 ? atoi(argv[1]) : 0;
	double *times;

	if (count <= 0) {
		fprintf(stderr, "usage: starts COUNT PROGRAM [ARGUMENT...]\n");
		return 2;
	}
	times = calloc((size_t)count, sizeof(*times));
	if (!times)
		return 1;
	for (int i = 0; i < count; i++) {
		double start = now_us();
		pid_t pid;
		int status;

		if (posix_spawn(&pid, argv[2], NULL, NULL, argv + 2, environ) != 0 ||
		    waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "starts: %s failed\n", argv[2]);
			return 1;
		}
		times[i] = now_us() - start;
	}
	qsort(times, (size_t)count, sizeof(*times), by_value);
	printf("%.0f %.0f\n", times[count / 2], times[count * 9 / 10]);
	free(times);
	return 0;
}
