/* thread_asleep.c - a thread asleep in the kernel, looked at without
 * stopping it, so that an apply through gates (transition.c) need not hold
 * the threads that wait for work at all.  For a thread off every processor,
 * /proc/PID/task/TID/syscall gives the user registers it will go back to:
 * its pc and sp only, read by the kernel while it stays off.  Its context
 * switch counts, read before that and again after everything else, say
 * whether it ran in between: a thread that ran and fell asleep again was
 * switched out once more, and one running at the end reads "running". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/threads.h"
#include "common/proc_maps.h"

/* status is about 1.5 KiB (more with many groups: then no look, a stop). */
#define STATUS_MAX 16384
#define SYSCALL_MAX 256

/* The value of "\n<name>:" in a status text. */
static bool status_field(const char *text, const char *name, uint64_t *value)
{
	char key[64];
	const char *at;
	char *end = NULL;

	snprintf(key, sizeof(key), "\n%s:", name);
	at = strstr(text, key);
	if (!at)
		return false;
	*value = strtoull(at + strlen(key), &end, 10);
	return end != at + strlen(key) && (*end == '\n' || *end == '\0');
}

/* Voluntary and involuntary context switches, summed. */
static bool switches_of(pid_t pid, pid_t tid, uint64_t *switches)
{
	char path[64], text[STATUS_MAX];
	uint64_t voluntary = 0, involuntary = 0;
	ssize_t length;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	length = proc_read_small(path, text, sizeof(text));
	*switches = 0;
	if (length <= 0 || (size_t)length >= sizeof(text) - 1 ||
	    !status_field(text, "voluntary_ctxt_switches", &voluntary) ||
	    !status_field(text, "nonvoluntary_ctxt_switches", &involuntary))
		return false;
	*switches = voluntary + involuntary;
	return true;
}

/* "NR ARGS... 0xSP 0xPC\n" or "-1 0xSP 0xPC\n" (asleep outside a system
 * call), "running\n" otherwise: the last two fields. */
static bool user_registers_of(pid_t pid, pid_t tid, uint64_t *sp, uint64_t *pc)
{
	char path[64], text[SYSCALL_MAX], *last, *before, *end = NULL;
	ssize_t length;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	length = proc_read_small(path, text, sizeof(text));
	if (length <= 1 || (size_t)length >= sizeof(text) - 1 || text[length - 1] != '\n')
		return false;
	text[length - 1] = '\0';
	last = strrchr(text, ' ');
	if (!last)
		return false;
	*last = '\0';
	before = strrchr(text, ' ');
	if (!before || strncmp(before + 1, "0x", 2) != 0 || strncmp(last + 1, "0x", 2) != 0)
		return false;
	*sp = strtoull(before + 1, &end, 16);
	if (*end != '\0')
		return false;
	*pc = strtoull(last + 1, &end, 16);
	return *end == '\0' && *sp != 0 && *pc != 0;
}

bool thread_asleep_look(pid_t pid, pid_t tid, struct hp_asleep *seen)
{
	memset(seen, 0, sizeof(*seen));
	return switches_of(pid, tid, &seen->switches) &&
	       user_registers_of(pid, tid, &seen->sp, &seen->pc);
}

bool thread_asleep_still(pid_t pid, pid_t tid, const struct hp_asleep *seen)
{
	uint64_t sp = 0, pc = 0, switches = 0;

	/* The registers first: a thread that ran after them was switched out
	 * before the count is read, or is running still. */
	return user_registers_of(pid, tid, &sp, &pc) && switches_of(pid, tid, &switches) &&
	       sp == seen->sp && pc == seen->pc && switches == seen->switches;
}
