/* threads.c - seizing, stopping and letting go of a process's threads.  We
 * use PTRACE_SEIZE + PTRACE_INTERRUPT (never PTRACE_ATTACH, whose SIGSTOP can
 * outlive us), re-read the thread list until it is stable, pass on every
 * signal that arrives for the program, and bound every wait. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define THREADS_MAX (1u << 20)
#define WAIT_SLICE 0.005

static sigset_t saved_mask;
static bool mask_saved;

void threads_init(struct hp_threads *threads, pid_t pid)
{
	sigset_t child;

	memset(threads, 0, sizeof(*threads));
	threads->pid = pid;
	/* SIGCHLD stays pending so the waits below can sleep on it. */
	sigemptyset(&child);
	sigaddset(&child, SIGCHLD);
	if (!mask_saved && sigprocmask(SIG_BLOCK, &child, &saved_mask) == 0)
		mask_saved = true;
}

void threads_release(struct hp_threads *threads)
{
	threads_resume_all(threads);
	free(threads->items);
	memset(threads, 0, sizeof(*threads));
	if (mask_saved) {
		sigprocmask(SIG_SETMASK, &saved_mask, NULL);
		mask_saved = false;
	}
}

int threads_list(pid_t pid, pid_t **tids, size_t *count, struct hp_error *error)
{
	char path[64];
	size_t capacity = 64;
	struct dirent *entry;
	DIR *directory;
	int status = HP_OK;

	*count = 0;
	*tids = malloc(capacity * sizeof(**tids));
	if (!*tids)
		return hp_fail(error, HP_FAILED, "out of memory listing threads");
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	directory = opendir(path);
	if (!directory) {
		hp_hint(error, "check the pid");
		return hp_fail_errno(error, HP_FAILED, "cannot list the threads of pid %d",
				     (int)pid);
	}
	while ((entry = readdir(directory)) != NULL) {
		char *end;
		long tid = strtol(entry->d_name, &end, 10);

		if (*end || tid <= 0)
			continue;
		if (*count == capacity) {
			pid_t *larger;

			if (capacity >= THREADS_MAX) {
				status = hp_fail(error, HP_FAILED, "pid %d has too many threads",
						 (int)pid);
				break;
			}
			larger = realloc(*tids, capacity * 2 * sizeof(*larger));
			if (!larger) {
				status = hp_fail(error, HP_FAILED, "out of memory listing threads");
				break;
			}
			*tids = larger;
			capacity *= 2;
		}
		(*tids)[(*count)++] = (pid_t)tid;
	}
	closedir(directory);
	return status;
}

static struct hp_thread *find_thread(struct hp_threads *threads, pid_t tid)
{
	for (size_t i = 0; i < threads->count; i++)
		if (threads->items[i].tid == tid)
			return &threads->items[i];
	return NULL;
}

static struct hp_thread *add_thread(struct hp_threads *threads, pid_t tid)
{
	if (threads->count == threads->capacity) {
		size_t capacity = threads->capacity ? threads->capacity * 2 : 16;
		struct hp_thread *larger = realloc(threads->items, capacity * sizeof(*larger));

		if (!larger)
			return NULL;
		threads->items = larger;
		threads->capacity = capacity;
	}
	threads->items[threads->count] = (struct hp_thread){ .tid = tid };
	return &threads->items[threads->count++];
}

static void forget_thread(struct hp_threads *threads, struct hp_thread *thread)
{
	size_t index = (size_t)(thread - threads->items);

	threads->items[index] = threads->items[--threads->count];
}

/* A zombie leader cannot stop; it only waits for its threads to exit. */
static bool thread_is_zombie(pid_t pid, pid_t tid)
{
	char path[80], text[512], *paren;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	if (proc_read_small(path, text, sizeof(text)) <= 0)
		return true;
	paren = strrchr(text, ')');
	return !paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X';
}

static void explain_seize_failure(pid_t pid, struct hp_error *error)
{
	char path[64], line[256];
	FILE *status_file;
	long tracer = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	status_file = fopen(path, "re");
	while (status_file && fgets(line, sizeof(line), status_file))
		if (sscanf(line, "TracerPid: %ld", &tracer) == 1)
			break;
	if (status_file)
		fclose(status_file);
	if (tracer > 0) {
		hp_hint(error, "detach the debugger or tracer (pid %ld) first", tracer);
		return;
	}
	hp_hint(error, "run as root or with CAP_SYS_PTRACE; check "
		       "/proc/sys/kernel/yama/ptrace_scope");
}

/* Seizes `tid`; returns HP_OK, or 1 when the thread is already gone. */
static int seize(struct hp_threads *threads, struct hp_thread *thread, struct hp_error *error)
{
	if (thread->seized)
		return HP_OK;
	if (ptrace(PTRACE_SEIZE, thread->tid, NULL, (void *)(long)PTRACE_O_TRACESYSGOOD) == 0) {
		thread->seized = true;
		return HP_OK;
	}
	if (errno == ESRCH && thread->tid != threads->pid)
		return 1;
	if (errno == ESRCH) {
		hp_hint(error, "check the pid; the process may have exited");
		return hp_fail(error, HP_FAILED, "no process %d", (int)threads->pid);
	}
	hp_fail_errno(error, HP_FAILED, "cannot attach to pid %d (thread %d)", (int)threads->pid,
		      (int)thread->tid);
	explain_seize_failure(threads->pid, error);
	return HP_FAILED;
}

int thread_wait(pid_t tid, double deadline, int *status, struct hp_error *error)
{
	sigset_t child;

	sigemptyset(&child);
	sigaddset(&child, SIGCHLD);
	for (;;) {
		pid_t got = waitpid(tid, status, __WALL | WNOHANG);
		double left;
		struct timespec slice;

		if (got == tid)
			return HP_OK;
		if (got < 0 && errno != EINTR) {
			error->tid = tid;
			return hp_fail_errno(error, HP_FAILED, "lost thread %d", (int)tid);
		}
		left = hp_remaining(deadline);
		if (left <= 0) {
			error->tid = tid;
			return hp_fail(error, HP_FAILED, "thread %d did not stop in time", (int)tid);
		}
		if (left > WAIT_SLICE)
			left = WAIT_SLICE;
		slice.tv_sec = 0;
		slice.tv_nsec = (long)(left * 1e9);
		/* Wakes on SIGCHLD; a timeout or EINTR just polls again. */
		sigtimedwait(&child, NULL, &slice);
	}
}

/* A few system calls answer any stop with EINTR rather than a restart code,
 * even when the program has no signal handler (signal(7): epoll_wait, semop,
 * io_getevents...).  Rewinding them to run again keeps our visit invisible;
 * a finite timeout starts afresh, which at worst lengthens that one wait. */
static void restart_interrupted_wait(pid_t tid)
{
	struct user_regs_struct regs;
	long instruction;

	if (ptrace(PTRACE_GETREGS, tid, NULL, &regs) != 0 || (long long)regs.rax != -EINTR)
		return;
	switch ((long long)regs.orig_rax) {
	case SYS_epoll_wait:
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2:
	case SYS_semop:
	case SYS_semtimedop:
	case SYS_io_getevents:
		break;
	default:
		return;
	}
	errno = 0;
	instruction = ptrace(PTRACE_PEEKTEXT, tid, (void *)(uintptr_t)(regs.rip - 2), NULL);
	if (errno != 0 || (instruction & 0xffff) != 0x050f)	/* syscall */
		return;
	regs.rax = regs.orig_rax;
	regs.rip -= 2;
	ptrace(PTRACE_SETREGS, tid, NULL, &regs);
}

/* Waits until the interrupt (or a group stop) holds the thread, passing on
 * signals meant for the program.  Returns 1 when the thread exited. */
static int wait_for_stop(pid_t tid, double deadline, struct hp_error *error)
{
	for (;;) {
		int status = 0, result = thread_wait(tid, deadline, &status, error);

		if (result != HP_OK)
			return result;
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return 1;
		if (!WIFSTOPPED(status))
			continue;
		if ((status >> 16) == PTRACE_EVENT_STOP) {
			restart_interrupted_wait(tid);
			return HP_OK;
		}
		/* A signal-delivery stop: deliver it and keep waiting. */
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)WSTOPSIG(status)) != 0) {
			error->tid = tid;
			return hp_fail_errno(error, HP_FAILED, "cannot resume thread %d", (int)tid);
		}
	}
}

static int interrupt(struct hp_thread *thread, struct hp_error *error)
{
	if (thread->stopped)
		return HP_OK;
	if (ptrace(PTRACE_INTERRUPT, thread->tid, NULL, NULL) == 0)
		return HP_OK;
	if (errno == ESRCH)
		return 1;
	error->tid = thread->tid;
	return hp_fail_errno(error, HP_FAILED, "cannot stop thread %d", (int)thread->tid);
}

/* One pass: seize and interrupt every thread not yet stopped, then collect
 * their stops.  *added counts threads not seen before. */
static int stop_pass(struct hp_threads *threads, double deadline, size_t *added,
		     struct hp_error *error)
{
	pid_t *tids = NULL;
	size_t count = 0;
	int status = threads_list(threads->pid, &tids, &count, error);

	*added = 0;
	for (size_t i = 0; status == HP_OK && i < count; i++) {
		struct hp_thread *thread = find_thread(threads, tids[i]);
		int result;

		if (!thread) {
			if (thread_is_zombie(threads->pid, tids[i]))
				continue;
			thread = add_thread(threads, tids[i]);
			if (!thread) {
				status = hp_fail(error, HP_FAILED, "out of memory tracking threads");
				break;
			}
			(*added)++;
		}
		result = seize(threads, thread, error);
		if (result == HP_OK)
			result = interrupt(thread, error);
		if (result == 1)
			forget_thread(threads, thread);
		else if (result != HP_OK)
			status = result;
	}
	free(tids);
	for (size_t i = 0; status == HP_OK && i < threads->count; i++) {
		struct hp_thread *thread = &threads->items[i];
		int result;

		if (thread->stopped || !thread->seized)
			continue;
		result = wait_for_stop(thread->tid, deadline, error);
		if (result == 1) {
			forget_thread(threads, thread);
			i--;
		} else if (result != HP_OK) {
			status = result;
		} else {
			thread->stopped = true;
		}
	}
	return status;
}

int threads_stop_all(struct hp_threads *threads, double deadline, struct hp_error *error)
{
	size_t added;
	int status;

	do
		status = stop_pass(threads, deadline, &added, error);
	while (status == HP_OK && added > 0);
	if (status == HP_OK && threads->count == 0)
		return hp_fail(error, HP_FAILED, "pid %d has no threads left", (int)threads->pid);
	return status;
}

int threads_stop_one(struct hp_threads *threads, pid_t tid, double deadline,
		     struct hp_error *error)
{
	struct hp_thread *thread = find_thread(threads, tid);
	int status;

	if (!thread)
		thread = add_thread(threads, tid);
	if (!thread)
		return hp_fail(error, HP_FAILED, "out of memory tracking threads");
	status = seize(threads, thread, error);
	if (status == HP_OK)
		status = interrupt(thread, error);
	if (status == HP_OK && !thread->stopped)
		status = wait_for_stop(tid, deadline, error);
	if (status == HP_OK) {
		thread->stopped = true;
		return HP_OK;
	}
	if (status == 1) {
		forget_thread(threads, thread);
		error->tid = tid;
		return hp_fail(error, HP_FAILED, "thread %d exited", (int)tid);
	}
	return status;
}

void threads_resume_all(struct hp_threads *threads)
{
	for (size_t i = 0; i < threads->count; i++) {
		struct hp_thread *thread = &threads->items[i];

		/* Detaching a stopped tracee resumes it; a thread that died
		 * meanwhile answers ESRCH, which needs nothing more. */
		if (thread->seized)
			ptrace(PTRACE_DETACH, thread->tid, NULL, NULL);
		thread->seized = false;
		thread->stopped = false;
	}
	threads->count = 0;
}

pid_t threads_first_stopped(const struct hp_threads *threads)
{
	for (size_t i = 0; i < threads->count; i++)
		if (threads->items[i].stopped)
			return threads->items[i].tid;
	return 0;
}
