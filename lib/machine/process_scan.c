/* process_scan.c - every process of the machine (not ourselves) for which
 * a predicate holds, found by listing /proc: what --exe, --object,
 * install, uninstall and status choose their processes with. */
#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "machine/machine.h"

/* At most this many processes are chosen; a machine has fewer. */
#define PROCESSES_MAX 65536

static bool all_digits(const char *name)
{
	if (!name[0])
		return false;
	for (; *name; name++)
		if (!isdigit((unsigned char)*name))
			return false;
	return true;
}

int processes_append(pid_t pid, pid_t **pids, size_t *count, size_t *capacity,
		      struct hp_error *error)
{
	pid_t *larger;

	if (*count == PROCESSES_MAX)
		return hp_fail(error, HP_FAILED, "more than %d processes match", PROCESSES_MAX);
	if (*count == *capacity) {
		*capacity = *capacity ? 2 * *capacity : 64;
		larger = realloc(*pids, *capacity * sizeof(**pids));
		if (!larger)
			return hp_fail(error, HP_FAILED, "out of memory choosing processes");
		*pids = larger;
	}
	(*pids)[(*count)++] = pid;
	return HP_OK;
}

static int compare_pids(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

int processes_scan(bool (*wanted)(pid_t pid, const void *context), const void *context,
			 pid_t **pids, size_t *count, struct hp_error *error)
{
	DIR *proc = opendir("/proc");
	struct dirent *entry;
	size_t capacity = 0;
	int status = HP_OK;

	*pids = NULL;
	*count = 0;
	if (!proc)
		return hp_fail_errno(error, HP_FAILED, "cannot list /proc");
	while (status == HP_OK && (entry = readdir(proc)) != NULL) {
		pid_t pid;

		if (!all_digits(entry->d_name))
			continue;
		pid = (pid_t)strtol(entry->d_name, NULL, 10);
		if (pid > 0 && pid != getpid() && wanted(pid, context))
			status = processes_append(pid, pids, count, &capacity, error);
	}
	closedir(proc);
	if (status != HP_OK) {
		free(*pids);
		*pids = NULL;
		*count = 0;
		return status;
	}
	if (*count > 1)
		qsort(*pids, *count, sizeof(**pids), compare_pids);
	return HP_OK;
}
