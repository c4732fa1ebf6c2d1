/* thread_asleep.c - a thread asleep in the kernel, looked at without
 * stopping it, so that an apply through gates (transition.c) need not hold
 * the threads that wait for work at all.  For a thread off every processor,
 * /proc/PID/task/TID/syscall gives the user registers it will go back to:
 * its pc and sp only, read by the kernel while it stays off.  How much it
 * has run, read before that and again after everything else, says whether
 * it ran in between; one running at the end reads "running".  That count is
 * /proc/.../schedstat (the time it ran, in ns, and how many times it was
 * put on a processor): 30 bytes, where the context switch counts of
 * /proc/.../status, used when the kernel keeps no schedstat ("0 0 0"), take
 * 1.5 KiB of text to make.  Both files are opened once and read twice: at
 * a thousand threads the opens were a fifth of hotpatch's processor time. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/threads.h"
#include "common/base.h"

/* status is about 1.5 KiB (more with many groups: then no look, a stop). */
#define STATUS_MAX 16384
#define SYSCALL_MAX 256
#define SCHEDSTAT_MAX 128

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

/* Voluntary and involuntary context switches. */
static bool switches_of(int status_fd, struct hp_run_count *count)
{
	char text[STATUS_MAX];

	memset(count, 0, sizeof(*count));
	return read_from_start(status_fd, text, sizeof(text)) > 0 &&
	       status_field(text, "voluntary_ctxt_switches", &count->first) &&
	       status_field(text, "nonvoluntary_ctxt_switches", &count->second);
}

/* "RUN_NS WAIT_NS TIMES\n": the time run and the times put on a processor. */
static bool schedstat_of(int schedstat_fd, struct hp_run_count *count)
{
	char text[SCHEDSTAT_MAX];
	unsigned long long ran = 0, waited = 0, times = 0;
	int used = 0;

	memset(count, 0, sizeof(*count));
	if (read_from_start(schedstat_fd, text, sizeof(text)) <= 0 ||
	    sscanf(text, "%llu %llu %llu\n%n", &ran, &waited, &times, &used) != 3 ||
	    text[used] != '\0')
		return false;
	count->first = ran;
	count->second = times;
	return true;
}

/* Whether this kernel keeps schedstat: hotpatch itself has run, so its own
 * reads "0 0 0" only where it does not.  Asked once; the test build can do
 * without it (HOTPATCH_FAULT=no-schedstat). */
static bool schedstat_kept(void)
{
	static int kept = -1;
	struct hp_run_count own;
	int fd;

	if (kept < 0) {
		fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
		kept = fd >= 0 && schedstat_of(fd, &own) && own.first != 0 &&
		       !hp_fault("no-schedstat");
		if (fd >= 0)
			(void)close(fd);
	}
	return kept;
}

static bool run_count_of(const struct hp_asleep *seen, struct hp_run_count *count)
{
	return seen->from_status ? switches_of(seen->count_fd, count)
				 : schedstat_of(seen->count_fd, count);
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

/* Opens what counts the thread's runs and reads it into seen->count. */
static bool count_runs(pid_t pid, pid_t tid, struct hp_asleep *seen)
{
	seen->from_status = !schedstat_kept();
	seen->count_fd = open_task_file(pid, tid, seen->from_status ? "status" : "schedstat");
	return seen->count_fd >= 0 && run_count_of(seen, &seen->count);
}

bool thread_asleep_look(pid_t pid, pid_t tid, struct hp_asleep *seen)
{
	memset(seen, 0, sizeof(*seen));
	seen->count_fd = seen->syscall_fd = -1;
	if (count_runs(pid, tid, seen) &&
	    (seen->syscall_fd = open_task_file(pid, tid, "syscall")) >= 0 &&
	    user_registers_of(seen->syscall_fd, &seen->sp, &seen->pc))
		return true;
	thread_asleep_end(seen);
	return false;
}

bool thread_asleep_still(const struct hp_asleep *seen)
{
	uint64_t sp = 0, pc = 0;
	struct hp_run_count count;

	/* The registers first: a thread that ran after them has run more by
	 * the time the count is read, or is running still. */
	return user_registers_of(seen->syscall_fd, &sp, &pc) && run_count_of(seen, &count) &&
	       sp == seen->sp && pc == seen->pc && count.first == seen->count.first &&
	       count.second == seen->count.second;
}

void thread_asleep_end(struct hp_asleep *seen)
{
	/* Read-only /proc files: a failed close loses nothing. */
	if (seen->count_fd >= 0)
		(void)close(seen->count_fd);
	if (seen->syscall_fd >= 0)
		(void)close(seen->syscall_fd);
	seen->count_fd = seen->syscall_fd = -1;
}
