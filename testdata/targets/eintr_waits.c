/* eintr_waits.c - one thread per kind of blocking wait, each on something
 * that never becomes ready, so that whatever hotpatch does to a thread in
 * one (borrow it for a remote call, stop it, move it out of a function) must
 * leave the call running as if nothing happened.  A wait that returns EINTR
 * prints "EINTR in KIND"; one that returns early or wrongly prints
 * "ERROR ..."; either way the program then exits with status 1.
 *
 * Usage: eintr_waits KIND...      the named kinds, each blocked "forever"
 *        eintr_waits all          every kind
 *        eintr_waits moved KIND...|all
 *                                 each kind waits inside wait_step(), a
 *                                 function the eintr_wait_fix patch replaces,
 *                                 for MOVED_WAIT_MS: a timeout for the kinds
 *                                 that take one (it must not end early), a
 *                                 wake from the waker thread for the others
 *        eintr_waits stuck KIND...  as moved, without the waker: an untimed
 *                                 wait inside wait_step() never ends
 * Output lines:
 *   waiting KIND tid=TID           (once per thread, before "ready")
 *   ready pid=PID sem=SEMID        (every thread is blocked; SEMID: the System V
 *                                   semaphore set to remove afterwards)
 *   compute N -> R                 main thread, every 20 ms: R = 2N; the
 *                                  eintr_compute_fix patch: 3N
 *   KIND N -> R                    moved mode, each wait: R = 2N; eintr_wait_fix: 3N
 *   EINTR in KIND / ERROR ...      (never, if the target survives us) */
#include "target.h"

#include <linux/aio_abi.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/syscall.h>

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

#define FOREVER_MS 3600000L	/* a finite timeout far beyond the lifetime */
#define MOVED_WAIT_MS 300L
#define COMPUTE_PERIOD_MS 20
#define KINDS_MAX 32

struct waiter {
	const struct kind *kind;
	int index;
	int pipe[2];		/* never written, except by the waker in moved mode */
	int epoll;
	aio_context_t aio;
	atomic_int word;	/* futex */
	atomic_int tid;
	atomic_long armed_at;	/* moved mode: when the wait began, 0 when not waiting */
};

/* Returns 0 when the wait timed out, 1 when it was woken, -1 with errno. */
struct kind {
	const char *name;
	long (*wait)(struct waiter *waiter, long milliseconds);	/* < 0: no timeout */
	bool timed;		/* takes a timeout; else only a wake ends it */
	void (*wake)(struct waiter *waiter);
};

static int semaphores = -1;
static bool moved;
static bool stuck;	/* moved, but nothing wakes the untimed waits */
static struct waiter waiters[KINDS_MAX];
static int waiter_count;
int compute_calls;
int wait_calls;

__attribute__((noipa)) int compute(int value)
{
	compute_calls++;
	return 2 * value;
}

static void failed(const struct waiter *waiter, long result, int error)
{
	if (result < 0 && error == EINTR)
		printf("EINTR in %s\n", waiter->kind->name);
	else
		printf("ERROR %s returned %ld (%s)\n", waiter->kind->name, result,
		       result < 0 ? strerror(error) : moved ? "early" : "never should");
	exit(1);
}

static struct timespec duration(long milliseconds)
{
	return (struct timespec){ milliseconds / 1000, (milliseconds % 1000) * 1000000L };
}

static long monotonic_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec * 1000000000L + now.tv_nsec;
}

/* Takes the byte a wake wrote, so the next wait blocks again. */
static long drain(struct waiter *waiter)
{
	char byte;

	return read(waiter->pipe[0], &byte, 1) == 1 ? 1 : -1;
}

static long epoll_result(struct waiter *waiter, long count)
{
	return count == 1 ? drain(waiter) : count;
}

static long wait_epoll(struct waiter *waiter, long milliseconds)
{
	struct epoll_event event;

	return epoll_result(waiter, epoll_wait(waiter->epoll, &event, 1, (int)milliseconds));
}

static long wait_epoll_pwait(struct waiter *waiter, long milliseconds)
{
	struct epoll_event event;
	sigset_t mask;

	sigemptyset(&mask);
	return epoll_result(waiter, epoll_pwait(waiter->epoll, &event, 1, (int)milliseconds, &mask));
}

static long wait_epoll_pwait2(struct waiter *waiter, long milliseconds)
{
	struct epoll_event event;
	struct timespec timeout = duration(milliseconds);

	return epoll_result(waiter, syscall(SYS_epoll_pwait2, waiter->epoll, &event, 1,
					    milliseconds < 0 ? NULL : &timeout, NULL, 0));
}

static long wait_poll(struct waiter *waiter, long milliseconds)
{
	struct pollfd file = { waiter->pipe[0], POLLIN, 0 };

	return poll(&file, 1, (int)milliseconds);
}

static long wait_ppoll(struct waiter *waiter, long milliseconds)
{
	struct pollfd file = { waiter->pipe[0], POLLIN, 0 };
	struct timespec timeout = duration(milliseconds);

	return ppoll(&file, 1, &timeout, NULL);
}

static long wait_select(struct waiter *waiter, long milliseconds)
{
	struct timeval timeout = { milliseconds / 1000, (milliseconds % 1000) * 1000 };
	fd_set readable;

	FD_ZERO(&readable);
	FD_SET(waiter->pipe[0], &readable);
	return select(waiter->pipe[0] + 1, &readable, NULL, NULL, &timeout);
}

static long wait_pselect(struct waiter *waiter, long milliseconds)
{
	struct timespec timeout = duration(milliseconds);
	fd_set readable;

	FD_ZERO(&readable);
	FD_SET(waiter->pipe[0], &readable);
	return pselect(waiter->pipe[0] + 1, &readable, NULL, NULL, &timeout, NULL);
}

/* The raw system calls: libc may run semop as semtimedop. */
static long wait_semop(struct waiter *waiter, long milliseconds)
{
	struct sembuf take = { (unsigned short)waiter->index, -1, 0 };

	(void)milliseconds;
	return syscall(SYS_semop, semaphores, &take, 1) == 0 ? 1 : -1;
}

static long wait_semtimedop(struct waiter *waiter, long milliseconds)
{
	struct sembuf take = { (unsigned short)waiter->index, -1, 0 };
	struct timespec timeout = duration(milliseconds);
	long result = syscall(SYS_semtimedop, semaphores, &take, 1, &timeout);

	return result == -1 && errno == EAGAIN ? 0 : result == 0 ? 1 : -1;
}

static void wake_semaphore(struct waiter *waiter)
{
	struct sembuf give = { (unsigned short)waiter->index, 1, 0 };

	syscall(SYS_semop, semaphores, &give, 1);
}

static long wait_io_getevents(struct waiter *waiter, long milliseconds)
{
	struct io_event event;
	struct timespec timeout = duration(milliseconds);

	return syscall(SYS_io_getevents, waiter->aio, 1, 1, &event, &timeout);
}

static long wait_nanosleep(struct waiter *waiter, long milliseconds)
{
	struct timespec pause = duration(milliseconds);

	(void)waiter;
	return nanosleep(&pause, NULL);
}

static long wait_clock_nanosleep(struct waiter *waiter, long milliseconds)
{
	struct timespec pause = duration(milliseconds);
	int error = clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, NULL);

	(void)waiter;
	errno = error;
	return error ? -1 : 0;
}

static long wait_read(struct waiter *waiter, long milliseconds)
{
	(void)milliseconds;
	return drain(waiter);
}

static void wake_pipe(struct waiter *waiter)
{
	if (write(waiter->pipe[1], "w", 1) != 1)
		printf("ERROR waking %s: %s\n", waiter->kind->name, strerror(errno));
}

static long wait_futex(struct waiter *waiter, long milliseconds)
{
	long result;

	(void)milliseconds;
	result = syscall(SYS_futex, &waiter->word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	/* EAGAIN: the wake came before the wait began. */
	if ((result == 0 || errno == EAGAIN) && atomic_exchange(&waiter->word, 0) == 1)
		return 1;
	return result == 0 ? 2 : -1;	/* 2: woken by no one */
}

static void wake_futex(struct waiter *waiter)
{
	atomic_store(&waiter->word, 1);
	syscall(SYS_futex, &waiter->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static long wait_futex_timeout(struct waiter *waiter, long milliseconds)
{
	struct timespec timeout = duration(milliseconds);
	long result = syscall(SYS_futex, &waiter->word, FUTEX_WAIT_PRIVATE, 0, &timeout, NULL, 0);

	return result == -1 && errno == ETIMEDOUT ? 0 : result == 0 ? 2 : -1;
}

static const struct kind kinds[] = {
	{ "epoll_wait", wait_epoll, false, wake_pipe },
	{ "epoll_wait_timeout", wait_epoll, true, NULL },
	{ "epoll_pwait", wait_epoll_pwait, true, NULL },
	{ "epoll_pwait2", wait_epoll_pwait2, true, NULL },
	{ "poll", wait_poll, true, NULL },
	{ "ppoll", wait_ppoll, true, NULL },
	{ "select", wait_select, true, NULL },
	{ "pselect", wait_pselect, true, NULL },
	{ "semop", wait_semop, false, wake_semaphore },
	{ "semtimedop", wait_semtimedop, true, NULL },
	{ "io_getevents", wait_io_getevents, true, NULL },
	{ "nanosleep", wait_nanosleep, true, NULL },
	{ "clock_nanosleep", wait_clock_nanosleep, true, NULL },
	{ "read", wait_read, false, wake_pipe },
	{ "futex", wait_futex, false, wake_futex },
	{ "futex_timeout", wait_futex_timeout, true, NULL },
};

/* One wait of the waiter's kind, checked: forever, nothing may end it; in
 * moved mode, a timed wait must time out, not before its time, and an
 * untimed one be woken by the waker. */
__attribute__((noipa)) int wait_once(struct waiter *waiter)
{
	long milliseconds = !waiter->kind->timed ? -1 : moved ? MOVED_WAIT_MS : FOREVER_MS;
	long started = monotonic_ns(), result;
	int error;

	atomic_store(&waiter->armed_at, started);
	result = waiter->kind->wait(waiter, milliseconds);
	error = errno;
	atomic_store(&waiter->armed_at, 0);
	if (!moved)
		failed(waiter, result, error);
	if (waiter->kind->timed &&
	    (result != 0 || monotonic_ns() - started < milliseconds * 1000000L))
		failed(waiter, result, error);
	if (!waiter->kind->timed && result != 1)
		failed(waiter, result, error);
	wait_calls++;
	return 0;
}

/* Replaced by the eintr_wait_fix patch (3N); threads wait inside it. */
__attribute__((noipa)) int wait_step(struct waiter *waiter, int value)
{
	wait_once(waiter);
	return 2 * value;
}

static void *run_waiter(void *argument)
{
	struct waiter *waiter = argument;

	atomic_store(&waiter->tid, (int)gettid());
	for (int i = 1;; i++) {
		int result = wait_step(waiter, i);

		printf("%s %d -> %d\n", waiter->kind->name, i, result);
	}
	return NULL;
}

/* Moved mode: wakes each untimed wait MOVED_WAIT_MS after it began. */
static void *run_waker(void *argument)
{
	(void)argument;
	for (;;) {
		sleep_ms(10);
		for (int i = 0; i < waiter_count; i++) {
			struct waiter *waiter = &waiters[i];
			long armed = atomic_load(&waiter->armed_at);

			if (!waiter->kind->timed && armed &&
			    monotonic_ns() - armed >= MOVED_WAIT_MS * 1000000L &&
			    atomic_compare_exchange_strong(&waiter->armed_at, &armed, 0))
				waiter->kind->wake(waiter);
		}
	}
	return NULL;
}

static void set_up(struct waiter *waiter, const struct kind *kind)
{
	struct epoll_event event = { .events = EPOLLIN };

	waiter->kind = kind;
	waiter->index = (int)(waiter - waiters);
	if (pipe(waiter->pipe) != 0 || (waiter->epoll = epoll_create1(0)) < 0 ||
	    epoll_ctl(waiter->epoll, EPOLL_CTL_ADD, waiter->pipe[0], &event) != 0 ||
	    syscall(SYS_io_setup, 1, &waiter->aio) != 0) {
		printf("ERROR setting up %s: %s\n", kind->name, strerror(errno));
		exit(1);
	}
}

/* Whether the thread sleeps in a system call (so that the stops, borrows
 * and moves of the test find it there). */
static bool blocked(const struct waiter *waiter)
{
	char path[64], text[256], state[256];
	int tid = atomic_load(&waiter->tid);
	FILE *file;
	bool asleep = false;
	long number = -1;

	if (!tid)
		return false;
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	file = fopen(path, "r");
	if (file && fgets(state, sizeof(state), file))
		asleep = strstr(state, ") S ") != NULL;
	if (file)
		fclose(file);
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	file = fopen(path, "r");
	if (file && fgets(text, sizeof(text), file) && sscanf(text, "%ld", &number) != 1)
		number = -1;
	if (file)
		fclose(file);
	return asleep && number >= 0;
}

static void add_kinds(const char *name)
{
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		if (strcmp(name, "all") != 0 && strcmp(name, kinds[k].name) != 0)
			continue;
		if (waiter_count == KINDS_MAX)
			exit(2);
		set_up(&waiters[waiter_count++], &kinds[k]);
		if (strcmp(name, "all") != 0)
			return;
	}
	if (strcmp(name, "all") != 0) {
		fprintf(stderr, "eintr_waits: no kind %s\n", name);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	static atomic_int never;
	pthread_t thread;

	target_start();
	stuck = argc > 1 && strcmp(argv[1], "stuck") == 0;
	moved = stuck || (argc > 1 && strcmp(argv[1], "moved") == 0);
	for (int i = moved ? 2 : 1; i < argc; i++)
		add_kinds(argv[i]);
	if (waiter_count == 0) {
		fprintf(stderr, "usage: eintr_waits [moved|stuck] KIND...|all\n");
		return 2;
	}
	semaphores = semget(IPC_PRIVATE, waiter_count, 0600);
	if (semaphores < 0) {
		printf("ERROR semget: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < waiter_count; i++)
		pthread_create(&thread, NULL, run_waiter, &waiters[i]);
	if (moved && !stuck)
		pthread_create(&thread, NULL, run_waker, NULL);
	for (int i = 0; i < waiter_count; i++) {
		while (!blocked(&waiters[i]))
			sleep_ms(1);
		printf("waiting %s tid=%d\n", waiters[i].kind->name, atomic_load(&waiters[i].tid));
	}
	printf("ready pid=%d sem=%d\n", (int)getpid(), semaphores);

	/* A timed futex wait between calls: blocked, but ranked after the
	 * waiters when hotpatch picks a thread to borrow. */
	for (int i = 1;; i++) {
		struct timespec pause = duration(COMPUTE_PERIOD_MS);
		long result = syscall(SYS_futex, &never, FUTEX_WAIT_PRIVATE, 0, &pause, NULL, 0);

		if (result != -1 || errno != ETIMEDOUT) {
			printf("%s in the main thread's futex wait: %ld\n",
			       errno == EINTR ? "EINTR" : "ERROR", result);
			exit(1);
		}
		printf("compute %d -> %d\n", i, compute(i));
	}
}
