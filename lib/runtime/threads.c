/* threads.c - seizing, stopping and letting go of a process's threads.  We
 * use PTRACE_SEIZE + PTRACE_INTERRUPT (never PTRACE_ATTACH, whose SIGSTOP can
 * outlive us).  Every thread is seized while the process still runs, with
 * PTRACE_O_TRACECLONE so that a thread created later is ours from birth; the
 * stop itself is then only one interrupt and one wait per thread.  Every
 * signal that arrives for the program is passed on, and every wait bounded. */
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/threads.h"
#include "common/base.h"
#include "common/proc_maps.h"

#define THREADS_MAX (1u << 20)
#define WAIT_SLICE 0.005
#define ZOMBIE_CHECK 0.1	/* how often a thread that does not stop is looked at in /proc */

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

/* Appends tid to the growing list, or fails. */
static int list_add(pid_t pid, pid_t **tids, size_t *count, size_t *capacity, pid_t tid,
		    struct hp_error *error)
{
	pid_t *larger;

	if (*count < *capacity) {
		(*tids)[(*count)++] = tid;
		return HP_OK;
	}
	if (*capacity >= THREADS_MAX)
		return hp_fail(error, HP_FAILED, "pid %d has too many threads", (int)pid);
	larger = realloc(*tids, *capacity * 2 * sizeof(*larger));
	if (!larger)
		return hp_fail(error, HP_FAILED, "out of memory listing threads");
	*tids = larger;
	*capacity *= 2;
	(*tids)[(*count)++] = tid;
	return HP_OK;
}

/* Adds the thread ids among the directory entries in buffer[0, length). */
static int list_entries(pid_t pid, const char *buffer, size_t length, pid_t **tids,
			size_t *count, size_t *capacity, struct hp_error *error)
{
	size_t offset = 0;
	int status = HP_OK;

	while (status == HP_OK && offset + offsetof(struct dirent64, d_name) < length) {
		const struct dirent64 *entry = (const void *)(buffer + offset);
		size_t name_room;
		char *end;
		long tid;

		if (entry->d_reclen <= offsetof(struct dirent64, d_name) ||
		    entry->d_reclen > length - offset)
			return hp_fail(error, HP_FAILED, "a malformed entry in /proc/%d/task",
				       (int)pid);
		name_room = entry->d_reclen - offsetof(struct dirent64, d_name);
		if (!memchr(entry->d_name, '\0', name_room))
			return hp_fail(error, HP_FAILED, "a malformed entry in /proc/%d/task",
				       (int)pid);
		tid = strtol(entry->d_name, &end, 10);
		if (!*end && tid > 0 && tid <= INT32_MAX)
			status = list_add(pid, tids, count, capacity, (pid_t)tid, error);
		offset += entry->d_reclen;
	}
	return status;
}

/* The kernel fills a whole getdents64 buffer of /proc entries without a point
 * where it would switch to another task: glibc's 32 KiB (1000 threads) took
 * about 1.5 ms, and a target's thread woken on our processor waited that long.
 * LIST_BUFFER keeps each call to a few dozen entries. */
#define LIST_BUFFER 2048

int threads_list(pid_t pid, pid_t **tids, size_t *count, struct hp_error *error)
{
	char path[64];
	size_t capacity = 64;
	int status = HP_OK;
	char *buffer;
	int directory;

	*count = 0;
	*tids = malloc(capacity * sizeof(**tids));
	buffer = malloc(LIST_BUFFER);
	if (!*tids || !buffer) {
		free(buffer);
		return hp_fail(error, HP_FAILED, "out of memory listing threads");
	}
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (directory < 0) {
		free(buffer);
		/* /proc/PID/task gone: the process ended under us (a pid that
		 * never was is turned away before, as no_process). */
		if (errno == ENOENT || errno == ESRCH)
			return hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited", (int)pid);
		hp_hint(error, "check the pid");
		return hp_fail_errno(error, HP_FAILED, "cannot list the threads of pid %d", (int)pid);
	}
	while (status == HP_OK) {
		ssize_t length = getdents64(directory, buffer, LIST_BUFFER);

		if (length == 0)
			break;
		if (length < 0)
			status = hp_fail_errno(error, HP_FAILED,
					       "cannot list the threads of pid %d", (int)pid);
		else
			status = list_entries(pid, buffer, (size_t)length, tids, count, &capacity,
					      error);
	}
	close(directory);
	free(buffer);
	return status;
}

struct hp_thread *threads_find(struct hp_threads *threads, pid_t tid)
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

/* The thread's state letter and kernel flags from its stat line; false
 * when it is gone or the line cannot be read. */
static bool task_stat(pid_t pid, pid_t tid, char *state, unsigned int *flags)
{
	char path[80], text[512], *paren;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	if (proc_read_small(path, text, sizeof(text)) <= 0)
		return false;
	paren = strrchr(text, ')');
	return paren && sscanf(paren + 1, " %c %*d %*d %*d %*d %*d %u", state, flags) == 2;
}

/* A zombie leader cannot stop; it only waits for its threads to exit. */
static bool thread_is_zombie(pid_t pid, pid_t tid)
{
	unsigned int flags = 0;
	char state = 0;

	return !task_stat(pid, tid, &state, &flags) || state == 'Z' || state == 'X';
}

static pid_t tracer_of(pid_t pid, pid_t tid)
{
	char path[80], text[4096], *line;
	long tracer = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	if (proc_read_small(path, text, sizeof(text)) <= 0)
		return 0;
	line = strstr(text, "\nTracerPid:");
	if (!line || sscanf(line, "\nTracerPid: %ld", &tracer) != 1)
		return 0;
	return (pid_t)tracer;
}

/* The kernel's PF_EXITING: the thread is inside exit already. */
#define TASK_FLAG_EXITING 0x4u

/* Whether the hexadecimal signal set on the line NAME of a status file
 * holds SIGKILL. */
static bool signal_set_has_kill(const char *status, const char *name)
{
	const char *line = strstr(status, name);
	unsigned long long set = 0;

	return line && sscanf(line + strlen(name), " %llx", &set) == 1 &&
	       (set & (1ull << (SIGKILL - 1)));
}

/* Whether the thread has no future: gone, a zombie, inside exit, or with
 * a SIGKILL pending, which ends the whole process (it cannot be blocked,
 * caught or ignored).  A killed process tears itself down over a while:
 * its leader's memory map can be empty before every thread is a zombie. */
static bool thread_is_ending(pid_t pid, pid_t tid)
{
	char path[80], text[4096];
	unsigned int flags = 0;
	char state = 0;

	if (!task_stat(pid, tid, &state, &flags) || state == 'Z' || state == 'X' ||
	    (flags & TASK_FLAG_EXITING))
		return true;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	if (proc_read_small(path, text, sizeof(text)) <= 0)
		return true;
	return signal_set_has_kill(text, "\nSigPnd:") || signal_set_has_kill(text, "\nShdPnd:");
}

bool process_has_exited(pid_t pid)
{
	pid_t *tids = NULL;
	size_t count = 0;
	struct hp_error ignored = { 0 };
	bool exited = true;

	/* No /proc/PID/task: gone.  Otherwise gone or going when every thread
	 * is; a thread's own pthread_exit ends only that thread. */
	if (threads_list(pid, &tids, &count, &ignored) == HP_OK)
		for (size_t i = 0; i < count && exited; i++)
			exited = thread_is_ending(pid, tids[i]);
	free(tids);
	return exited;
}

bool thread_is_alive(pid_t pid, pid_t tid)
{
	return !thread_is_zombie(pid, tid);
}

static void explain_seize_failure(pid_t pid, struct hp_error *error)
{
	pid_t tracer = tracer_of(pid, pid);

	if (tracer > 0) {
		hp_hint(error, "detach the debugger or tracer (pid %d) first", (int)tracer);
		return;
	}
	hp_hint(error, "run as root or with CAP_SYS_PTRACE; check "
		       "/proc/sys/kernel/yama/ptrace_scope");
}

/* Seizes a thread; returns HP_OK, or 1 when it is gone or dying (the kernel
 * refuses to attach to a thread that is exiting). */
static int seize(struct hp_threads *threads, struct hp_thread *thread, struct hp_error *error)
{
	const long options = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE;

	if (thread->seized)
		return HP_OK;
	if (ptrace(PTRACE_SEIZE, thread->tid, NULL, (void *)options) == 0) {
		thread->seized = true;
		return HP_OK;
	}
	if (errno == ESRCH && thread->tid != threads->pid)
		return 1;
	/* Born of a seized thread, it is ours already; its first stop will come. */
	if (errno == EPERM && tracer_of(threads->pid, thread->tid) == getpid()) {
		thread->seized = true;
		return HP_OK;
	}
	if (errno == EPERM && thread_is_zombie(threads->pid, thread->tid)) {
		if (thread->tid == threads->pid)
			threads->leader_is_zombie = true;
		return 1;
	}
	if (errno == ESRCH) {
		hp_hint(error, "check the pid; the process may have exited");
		return hp_fail_as(error, HP_KIND_NO_PROCESS, "no process %d", (int)threads->pid);
	}
	hp_fail_errno(error, HP_FAILED, "cannot attach to pid %d (thread %d)", (int)threads->pid,
		      (int)thread->tid);
	if (error->error_number == EPERM)
		error->kind = HP_KIND_NOT_PERMITTED;
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

		if (got > 0)
			return got;
		if (got < 0 && errno != EINTR) {
			error->tid = tid > 0 ? tid : 0;
			return hp_fail_errno(error, HP_FAILED, "lost thread %d", (int)tid);
		}
		left = hp_remaining(deadline);
		if (left <= 0) {
			error->tid = tid > 0 ? tid : 0;
			if (tid > 0)
				return hp_fail(error, HP_FAILED, "thread %d did not stop in time",
					       (int)tid);
			return hp_fail(error, HP_FAILED, "a thread did not stop in time");
		}
		if (left > WAIT_SLICE)
			left = WAIT_SLICE;
		slice.tv_sec = 0;
		slice.tv_nsec = (long)(left * 1e9);
		/* Wakes on SIGCHLD; a timeout or EINTR just polls again. */
		sigtimedwait(&child, NULL, &slice);
	}
}

#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

/* A few system calls answer any stop, ours included, with EINTR rather than
 * a restart code, even when the program has no signal handler (signal(7)):
 * epoll_wait, semop, io_getevents...  poll, select, nanosleep, futex waits
 * and the like return ERESTART* codes instead (with the time left kept by
 * the kernel in the restart block, or written back to the program's
 * timespec by ppoll and pselect6), which the kernel turns into a restart
 * on the signal path. */
static bool answers_stops_with_eintr(long long number)
{
	switch (number) {
#ifdef SYS_epoll_wait	/* arm64 has epoll_pwait alone */
	case SYS_epoll_wait:
#endif
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2:
	case SYS_semop:
	case SYS_semtimedop:
	case SYS_io_getevents:
	case SYS_io_pgetevents:
		return true;
	default:
		return false;
	}
}

/* A signal the program catches is pending for the thread and not blocked:
 * then an EINTR is the program's own (its handler is about to run), and
 * the kernel's restart rules apply, not ours. */
static bool handler_pending(pid_t pid, pid_t tid)
{
	char path[80], text[4096], *line;
	unsigned long long pending = 0, shared = 0, blocked = 0, caught = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	if (proc_read_small(path, text, sizeof(text)) <= 0)
		return false;
	if ((line = strstr(text, "\nSigPnd:")))
		sscanf(line, "\nSigPnd: %llx", &pending);
	if ((line = strstr(text, "\nShdPnd:")))
		sscanf(line, "\nShdPnd: %llx", &shared);
	if ((line = strstr(text, "\nSigBlk:")))
		sscanf(line, "\nSigBlk: %llx", &blocked);
	if ((line = strstr(text, "\nSigCgt:")))
		sscanf(line, "\nSigCgt: %llx", &caught);
	return ((pending | shared) & ~blocked & caught) != 0;
}

static bool after_syscall_instruction(pid_t tid, uint64_t pc)
{
	long word;

	_Static_assert(HP_SYSCALL_INSTRUCTION_SIZE <= sizeof(word), "one word holds it");
	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, tid, (void *)(uintptr_t)(pc - HP_SYSCALL_INSTRUCTION_SIZE),
		      NULL);
	return errno == 0 && code_is_syscall((const unsigned char *)&word);
}

/* The one place where a system call cut short by our stop is put back to
 * run again, for every way a thread gets back from us: held in an
 * interrupt stop (THREAD_RESUME_SIGNAL_PATH: the kernel restarts ERESTART*
 * itself on the way out, so only EINTR is ours to undo), or at a
 * system-call exit stop or with registers we write back ourselves
 * (THREAD_RESUME_DIRECT: nothing in the kernel looks at the result again,
 * so every restart code is ours too).  Timeouts: the kernel keeps the time
 * left for what it restarts itself (poll, select, nanosleep, futex...);
 * an epoll_wait, semtimedop or io_getevents run again starts its relative
 * timeout afresh: it may wait longer than asked, by the time it had waited
 * before the stop, never shorter, and an infinite one stays infinite.  The
 * time left is not knowable here (when the call began is recorded
 * nowhere), and rewriting the program's registers or timespec to shorten
 * it would change what the program sees after the call.  Returns whether
 * *regs changed; they are the caller's to write back. */
bool thread_rewind_call(pid_t pid, pid_t tid, struct hp_registers *regs,
			enum thread_resume how)
{
	long long result = (long long)registers_return_value(regs),
		  number = registers_syscall(regs);
	bool restart_code = result == -ERESTARTSYS || result == -ERESTARTNOINTR ||
			    result == -ERESTARTNOHAND || result == -ERESTART_RESTARTBLOCK;

	if (number < 0)
		number = registers_forgotten_syscall(regs);	/* arm64, at a signal stop */
	if (number < 0)
		return false;	/* not stopped in a system call */
	if (restart_code && how != THREAD_RESUME_DIRECT)
		return false;	/* the kernel restarts it, or fails it for a handler */
	/* An EINTR with a handler about to run is the program's, as without
	 * us.  A restart code given back directly is always rewound: no one
	 * else would look at it, and the program must never see it. */
	if (!restart_code &&
	    (result != -EINTR || !answers_stops_with_eintr(number) || handler_pending(pid, tid)))
		return false;
	/* A restart code comes only from a syscall instruction (the kernel
	 * rewinds it blindly); an EINTR is checked to follow one. */
	if (!restart_code && !after_syscall_instruction(tid, registers_pc(regs)))
		return false;
	/* Run again with what it ran with, or not at all. */
	if (!registers_recall_arguments(tid, regs, (long)number))
		return false;
	/* restart_syscall carries on from the kernel's restart block. */
	registers_restart_syscall(regs, result == -ERESTART_RESTARTBLOCK ? SYS_restart_syscall
									 : (long)number);
	return true;
}

int thread_rewind_stopped(pid_t pid, pid_t tid, enum thread_resume how)
{
	struct hp_registers regs;

	if (registers_read(tid, &regs) != 0)
		return -1;
	if (!thread_rewind_call(pid, tid, &regs, how))
		return 0;
	return registers_write(tid, &regs) == 0 ? 1 : -1;
}

/* A thread held in an interrupt stop: its copy of the registers is kept
 * as the thread has them. */
static void rewind_held(pid_t pid, struct hp_thread *thread)
{
	struct hp_registers regs = thread->regs;

	if (thread_rewind_call(pid, thread->tid, &regs, THREAD_RESUME_SIGNAL_PATH) &&
	    registers_write(thread->tid, &regs) == 0)
		thread->regs = regs;
}

static bool is_group_stop_signal(int signal)
{
	return signal == SIGSTOP || signal == SIGTSTP || signal == SIGTTIN || signal == SIGTTOU;
}

enum thread_event threads_classify(struct hp_threads *threads, pid_t tid, int status,
				   struct hp_thread **found)
{
	/* The caller usually knows the thread: no search of a thousand. */
	struct hp_thread *thread = *found && (*found)->tid == tid ? *found : threads_find(threads, tid);
	int event = status >> 16;

	if (!thread && WIFSTOPPED(status)) {
		/* A new thread's first stop can come before its parent's clone event. */
		thread = add_thread(threads, tid);
		if (thread)
			thread->seized = true;
	}
	*found = thread;
	if (!thread)
		return THREAD_GONE;
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		forget_thread(threads, thread);
		*found = NULL;
		return THREAD_GONE;
	}
	if (!WIFSTOPPED(status))
		return THREAD_OTHER;
	if (event == PTRACE_EVENT_STOP) {
		thread->stopped = true;
		thread->group_stop = is_group_stop_signal(WSTOPSIG(status));
		if (registers_read(tid, &thread->regs) != 0)
			memset(&thread->regs, 0, sizeof(thread->regs));
		else
			rewind_held(threads->pid, thread);
		return THREAD_HELD;
	}
	if (event == PTRACE_EVENT_CLONE) {
		unsigned long child = 0;

		/* A child that already exited may have been reaped by an earlier
		 * wait on any thread (its exit reported before this event): it
		 * is no thread to wait for. */
		if (ptrace(PTRACE_GETEVENTMSG, tid, NULL, &child) == 0 && child > 0 &&
		    !threads_find(threads, (pid_t)child) &&
		    !thread_is_zombie(threads->pid, (pid_t)child)) {
			struct hp_thread *added = add_thread(threads, (pid_t)child);

			if (added)
				added->seized = true;
			*found = threads_find(threads, tid);	/* the array may have moved */
		}
		return THREAD_OTHER;
	}
	if (event != 0 || WSTOPSIG(status) == (SIGTRAP | 0x80))
		return THREAD_OTHER;
	return THREAD_SIGNAL;
}

/* Answers a stop we did not ask for so the thread runs on: a signal for the
 * program is delivered, anything else continued. */
int threads_pass_on(struct hp_thread *thread, enum thread_event event, int status,
		    struct hp_error *error)
{
	long signal = event == THREAD_SIGNAL ? WSTOPSIG(status) : 0;

	if (event == THREAD_GONE)
		return HP_OK;
	if (ptrace(PTRACE_CONT, thread->tid, NULL, (void *)signal) == 0 || errno == ESRCH)
		return HP_OK;
	error->tid = thread->tid;
	return hp_fail_errno(error, HP_FAILED, "cannot resume thread %d", (int)thread->tid);
}

static size_t count_running(const struct hp_threads *threads)
{
	size_t running = 0;

	for (size_t i = 0; i < threads->count; i++)
		if (threads->items[i].seized && !threads->items[i].stopped)
			running++;
	return running;
}

/* Waits for the next stop of `tid`: 1, its status in *status; 0, it is a
 * zombie that will report nothing (forgotten); -1, failed.  A slice at a
 * time: the leader of a process killed meanwhile is a zombie that reports
 * nothing until every other thread is reaped, and would hold us until the
 * deadline. */
int threads_wait_or_gone(struct hp_threads *threads, pid_t tid, double deadline, int *status,
			 struct hp_error *error)
{
	for (;;) {
		struct hp_error waited = { 0 };
		double until = hp_now() + ZOMBIE_CHECK < deadline ? hp_now() + ZOMBIE_CHECK : deadline;
		struct hp_thread *thread;
		bool zombie;

		if (thread_wait(tid, until, status, &waited) > 0)
			return 1;
		zombie = thread_is_zombie(threads->pid, tid);
		if (!zombie && hp_now() >= until && hp_remaining(deadline) > 0)
			continue;	/* only this slice ran out */
		if (!zombie) {
			error->tid = tid;
			hp_fail(error, HP_FAILED, "%s", waited.message);
			return -1;
		}
		/* Reaped already (or a zombie for good): gone, not lost. */
		if ((thread = threads_find(threads, tid)))
			forget_thread(threads, thread);
		return 0;
	}
}

/* Waits for one seized thread to be held, passing on whatever else it
 * reports.  Waiting on each thread by its tid, not on any child: the kernel
 * walks the whole list of tracees for a wait on any, which with a thousand
 * threads costs more than the stop itself. */
static int collect_one(struct hp_threads *threads, struct hp_thread *thread, double deadline,
		       struct hp_error *error)
{
	pid_t tid = thread->tid;

	for (;;) {
		int status = 0, waited;
		enum thread_event event;

		if (!thread || !thread->seized || thread->stopped)
			return HP_OK;
		waited = threads_wait_or_gone(threads, tid, deadline, &status, error);
		if (waited <= 0)
			return waited < 0 ? HP_FAILED : HP_OK;
		event = threads_classify(threads, tid, status, &thread);
		if (event == THREAD_HELD || event == THREAD_GONE || !thread)
			continue;
		if (threads_pass_on(thread, event, status, error) != HP_OK)
			return HP_FAILED;
	}
}

int threads_collect(struct hp_threads *threads, double deadline, struct hp_error *error)
{
	/* A thread may leave the array (exit) or join it (clone) meanwhile. */
	for (size_t i = 0; i < threads->count;) {
		pid_t tid = threads->items[i].tid;

		if (collect_one(threads, &threads->items[i], deadline, error) != HP_OK)
			return HP_FAILED;
		if (i < threads->count && threads->items[i].tid == tid)
			i++;
	}
	return HP_OK;
}

int threads_seize_all(struct hp_threads *threads, struct hp_error *error)
{
	size_t added;
	int status = HP_OK;

	do {
		pid_t *tids = NULL;
		size_t count = 0;

		added = 0;
		status = threads_list(threads->pid, &tids, &count, error);
		for (size_t i = 0; status == HP_OK && i < count; i++) {
			struct hp_thread *thread = threads_find(threads, tids[i]);
			int result;

			if (thread || (tids[i] == threads->pid && threads->leader_is_zombie))
				continue;
			thread = add_thread(threads, tids[i]);
			if (!thread) {
				status = hp_fail(error, HP_FAILED, "out of memory tracking threads");
				break;
			}
			added++;
			result = seize(threads, thread, error);
			if (result == 1)
				forget_thread(threads, thread);
			else if (result != HP_OK)
				status = result;
		}
		free(tids);
	} while (status == HP_OK && added > 0);
	return status;
}

/* Live threads by the kernel's count, to notice one that escaped seizing
 * (created by a thread in the instant before it was seized). */
static long kernel_thread_count(pid_t pid)
{
	char path[64], text[4096], *line;
	long count = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (proc_read_small(path, text, sizeof(text)) <= 0)
		return -1;
	line = strstr(text, "\nThreads:");
	if (line && sscanf(line, "\nThreads: %ld", &count) != 1)
		count = -1;
	return count;
}

int threads_stop_all(struct hp_threads *threads, double deadline, struct hp_error *error)
{
	int status = threads->count ? HP_OK : threads_seize_all(threads, error);

	for (int pass = 0; status == HP_OK; pass++) {
		for (size_t i = 0; i < threads->count; i++) {
			struct hp_thread *thread = &threads->items[i];

			if (!thread->seized || thread->stopped)
				continue;
			/* ESRCH: it is exiting; the collection sees it go. */
			if (ptrace(PTRACE_INTERRUPT, thread->tid, NULL, NULL) != 0 && errno != ESRCH) {
				error->tid = thread->tid;
				return hp_fail_errno(error, HP_FAILED, "cannot stop thread %d",
						     (int)thread->tid);
			}
		}
		status = threads_collect(threads, deadline, error);
		if (status != HP_OK || threads->count == 0 ||
		    kernel_thread_count(threads->pid) <= (long)threads->count)
			break;
		if (pass == 8) {
			status = hp_fail(error, HP_FAILED, "pid %d creates threads faster than they can be stopped",
					 (int)threads->pid);
			break;
		}
		status = threads_seize_all(threads, error);
	}
	if (status == HP_OK && threads->count == 0)
		return hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited: no thread of it is left",
				  (int)threads->pid);
	return status;
}

int threads_stop_one(struct hp_threads *threads, pid_t tid, double deadline,
		     struct hp_error *error)
{
	struct hp_thread *thread = threads_find(threads, tid);
	int status;

	if (!thread)
		thread = add_thread(threads, tid);
	if (!thread)
		return hp_fail(error, HP_FAILED, "out of memory tracking threads");
	status = seize(threads, thread, error);
	if (status == HP_OK && !thread->stopped &&
	    ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) != 0 && errno != ESRCH)
		status = hp_fail_errno(error, HP_FAILED, "cannot stop thread %d", (int)tid);
	while (status == HP_OK && (thread = threads_find(threads, tid)) && !thread->stopped) {
		int wait_status = 0,
		    waited = threads_wait_or_gone(threads, tid, deadline, &wait_status, error);
		enum thread_event event;

		if (waited < 0)
			return HP_FAILED;
		if (waited == 0)
			break;	/* a zombie: exited */
		event = threads_classify(threads, tid, wait_status, &thread);
		if (event != THREAD_HELD && thread)
			status = threads_pass_on(thread, event, wait_status, error);
	}
	if (status == 1 || (status == HP_OK && !thread)) {
		if ((thread = threads_find(threads, tid)))
			forget_thread(threads, thread);
		error->tid = tid;
		return hp_fail(error, HP_FAILED, "thread %d exited", (int)tid);
	}
	return status;
}

int threads_continue_all(struct hp_threads *threads, struct hp_error *error)
{
	for (size_t i = 0; i < threads->count; i++) {
		struct hp_thread *thread = &threads->items[i];
		/* LISTEN keeps a thread in a group stop (SIGSTOP) where it was. */
		int request = thread->group_stop ? PTRACE_LISTEN : PTRACE_CONT;

		if (!thread->stopped)
			continue;
		if (ptrace(request, thread->tid, NULL, NULL) != 0 && errno != ESRCH) {
			error->tid = thread->tid;
			return hp_fail_errno(error, HP_FAILED, "cannot resume thread %d",
					     (int)thread->tid);
		}
		thread->stopped = false;
	}
	return HP_OK;
}

int threads_detach_one(struct hp_threads *threads, pid_t tid, struct hp_error *error)
{
	struct hp_thread *thread = threads_find(threads, tid);
	int status = HP_OK;

	if (!thread)
		return HP_OK;
	/* Detaching a stopped tracee resumes it, or leaves it in its group stop. */
	if (thread->seized && ptrace(PTRACE_DETACH, tid, NULL, NULL) != 0 && errno != ESRCH) {
		error->tid = tid;
		status = hp_fail_errno(error, HP_FAILED, "cannot let thread %d go", (int)tid);
	}
	forget_thread(threads, thread);
	return status;
}

/* A stop of a thread that runs on: passed on, so that it goes on running. */
static void serve(struct hp_threads *threads, pid_t tid, int status)
{
	struct hp_thread *thread = NULL;
	struct hp_error ignored = { 0 };
	enum thread_event event = threads_classify(threads, tid, status, &thread);

	if (event == THREAD_HELD && thread && !thread->group_stop) {
		thread->stopped = false;
		event = THREAD_OTHER;
	}
	/* A thread that cannot be resumed is gone: nothing more to do. */
	if (thread && event != THREAD_HELD)
		(void)!threads_pass_on(thread, event, status, &ignored);
}

void threads_run_for(struct hp_threads *threads, double seconds)
{
	double until = hp_now() + seconds;
	struct hp_error ignored = { 0 };

	while (hp_remaining(until) > 0) {
		int status = 0;
		pid_t tid = thread_wait(-1, until, &status, &ignored);

		if (tid < 0)
			break;
		serve(threads, tid, status);
		memset(&ignored, 0, sizeof(ignored));
	}
}

void threads_serve(struct hp_threads *threads)
{
	int status = 0;
	pid_t tid;

	while ((tid = waitpid(-1, &status, __WALL | WNOHANG)) > 0)
		serve(threads, tid, status);
}

void threads_resume_all(struct hp_threads *threads)
{
	struct hp_error ignored = { 0 };

	/* Only a stopped tracee can be detached: stop the running ones first. */
	for (size_t i = 0; i < threads->count; i++)
		if (threads->items[i].seized && !threads->items[i].stopped)
			ptrace(PTRACE_INTERRUPT, threads->items[i].tid, NULL, NULL);
	if (count_running(threads) > 0 && threads_collect(threads, hp_now() + 2, &ignored) != HP_OK)
		memset(&ignored, 0, sizeof(ignored));
	for (size_t i = 0; i < threads->count; i++) {
		struct hp_thread *thread = &threads->items[i];

		/* Detaching a stopped tracee resumes it; one that died meanwhile
		 * answers ESRCH, and one that never stopped is let go when we exit. */
		if (thread->seized)
			ptrace(PTRACE_DETACH, thread->tid, NULL, NULL);
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

/* The system call a thread is blocked in, or -1 when it is running. */
long thread_blocked_syscall(pid_t pid, pid_t tid)
{
	char path[80], text[128];
	long number = -1;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	if (proc_read_small(path, text, sizeof(text)) <= 0 || sscanf(text, "%ld", &number) != 1)
		return -1;
	return number;
}
