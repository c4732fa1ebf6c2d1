/* starts.c - what a program costs to start, run and exit, under several
 * environments measured in turn (one start of each per round, so that the
 * machine's drift falls on all alike): COUNT rounds.  Each start is timed
 * two ways: the processor time the child used (user + system, from wait4:
 * what the loader adds, and what a busy machine barely changes) and the
 * wall time from posix_spawn to its end.  Prints, per environment, the
 * medians in microseconds, "CPU WALL"; exits 1 when a run fails, since a
 * loader that makes a program fail is worse than a slow one.
 *
 *   starts COUNT ENVIRONMENT... -- PROGRAM [ARGUMENT...]
 *
 * ENVIRONMENT: space-separated NAME=VALUE settings added to ours ("" for
 * none). */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#define SETTINGS_MAX 16

extern char **environ;

struct environment {
	char **variables;	/* environ with the settings in front */
	double *cpu, *wall;
};

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

/* The settings first: getenv finds the first of a name. */
static char **with_settings(char *settings)
{
	size_t count = 0, ours = 0;
	char **variables, *rest = NULL;

	while (environ[count])
		count++;
	variables = calloc(count + SETTINGS_MAX + 1, sizeof(*variables));
	if (!variables)
		return NULL;
	for (char *word = strtok_r(settings, " ", &rest); word && ours < SETTINGS_MAX;
	     word = strtok_r(NULL, " ", &rest))
		variables[ours++] = word;
	memcpy(variables + ours, environ, count * sizeof(*variables));
	return variables;
}

static double us_of(struct timeval time)
{
	return (double)time.tv_sec * 1e6 + (double)time.tv_usec;
}

static int run_once(char **program, char **variables, double *cpu, double *wall)
{
	double start = now_us();
	struct rusage usage;
	pid_t pid;
	int status;

	if (posix_spawn(&pid, program[0], NULL, NULL, program, variables) != 0 ||
	    wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "starts: %s failed\n", program[0]);
		return 1;
	}
	*wall = now_us() - start;
	*cpu = us_of(usage.ru_utime) + us_of(usage.ru_stime);
	return 0;
}

int main(int argc, char **argv)
{
	int count = argc > 3 ? atoi(argv[1]) : 0, environments = 0, separator = 0;
	struct environment *all;

	for (int i = 2; i < argc && !separator; i++)
		if (strcmp(argv[i], "--") == 0)
			separator = i;
	environments = separator - 2;
	if (count <= 0 || environments <= 0 || separator + 1 >= argc) {
		fprintf(stderr, "usage: starts COUNT ENVIRONMENT... -- PROGRAM [ARGUMENT...]\n");
		return 2;
	}
	all = calloc((size_t)environments, sizeof(*all));
	for (int e = 0; all && e < environments; e++) {
		all[e].variables = with_settings(argv[2 + e]);
		all[e].cpu = calloc((size_t)count, sizeof(double));
		all[e].wall = calloc((size_t)count, sizeof(double));
		if (!all[e].variables || !all[e].cpu || !all[e].wall)
			return 1;
	}
	if (!all)
		return 1;
	for (int i = 0; i < count; i++)
		for (int e = 0; e < environments; e++)
			if (run_once(argv + separator + 1, all[e].variables, &all[e].cpu[i],
				     &all[e].wall[i]))
				return 1;
	for (int e = 0; e < environments; e++) {
		qsort(all[e].cpu, (size_t)count, sizeof(double), by_value);
		qsort(all[e].wall, (size_t)count, sizeof(double), by_value);
		printf("%.0f %.0f\n", all[e].cpu[count / 2], all[e].wall[count / 2]);
	}
	return 0;
}
