/* thread_asleep.c - a thread asleep in the kernel, looked at without
 * stopping it, so that an apply through gates (transition.c) need not hold
 * the threads that wait for work at all.  For a thread off every processor,
 * /proc/PID/task/TID/syscall gives the user registers it will go back to:
 * its pc and sp only, read by the kernel while it stays off.  Its context
 * switch counts, read before that and again after everything else, say
 * whether it ran in between: a thread that ran and fell asleep again was
 * switched out once more, and one running at the end reads "running".
 * Both files are opened once and read twice: at a thousand threads the
 * opens were a fifth of hotpatch's processor time. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/threads.h"

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

/* The whole text of an open /proc file, read again from its start (a
 * seq_file makes it anew at offset 0); -1 when it does not fit. */
static ssize_t read_from_start(int fd, char *buffer, size_t size)
{
	ssize_t length;

	do
		length = pread(fd, buffer, size - 1, 0);
	while (length < 0 && errno == EINTR);
	if (length < 0 || (size_t)length >= size - 1)
		return -1;
	buffer[length] = '\0';
	return length;
}

/* Voluntary and involuntary context switches, summed. */
static bool switches_of(int status_fd, uint64_t *switches)
{
	char text[STATUS_MAX];
	uint64_t voluntary = 0, involuntary = 0;

	*switches = 0;
	if (read_from_start(status_fd, text, sizeof(text)) <= 0 ||
	    !status_field(text, "voluntary_ctxt_switches", &voluntary) ||
	    !status_field(text, "nonvoluntary_ctxt_switches", &involuntary))
		return false;
	*switches = voluntary + involuntary;
	return true;
}

/* "NR ARGS... 0xSP 0xPC\n" or "-1 0xSP 0xPC\n" (asleep outside a system
 * call), "running\n" otherwise: the last two fields. */
static bool user_registers_of(int syscall_fd, uint64_t *sp, uint64_t *pc)
{
	char text[SYSCALL_MAX], *last, *before, *end = NULL;
	ssize_t length = read_from_start(syscall_fd, text, sizeof(text));

	if (length <= 1 || text[length - 1] != '\n')
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

static int open_task_file(pid_t pid, pid_t tid, const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)pid, (int)tid, name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

bool thread_asleep_look(pid_t pid, pid_t tid, struct hp_asleep *seen)
{
	memset(seen, 0, sizeof(*seen));
	seen->status_fd = open_task_file(pid, tid, "status");
	seen->syscall_fd = open_task_file(pid, tid, "syscall");
	if (seen->status_fd >= 0 && seen->syscall_fd >= 0 &&
	    switches_of(seen->status_fd, &seen->switches) &&
	    user_registers_of(seen->syscall_fd, &seen->sp, &seen->pc))
		return true;
	thread_asleep_end(seen);
	return false;
}

bool thread_asleep_still(const struct hp_asleep *seen)
{
	uint64_t sp = 0, pc = 0, switches = 0;

	/* The registers first: a thread that ran after them was switched out
	 * before the count is read, or is running still. */
	return user_registers_of(seen->syscall_fd, &sp, &pc) &&
	       switches_of(seen->status_fd, &switches) && sp == seen->sp && pc == seen->pc &&
	       switches == seen->switches;
}

void thread_asleep_end(struct hp_asleep *seen)
{
	/* Read-only /proc files: a failed close loses nothing. */
	if (seen->status_fd >= 0)
		(void)close(seen->status_fd);
	if (seen->syscall_fd >= 0)
		(void)close(seen->syscall_fd);
	seen->status_fd = seen->syscall_fd = -1;
}
