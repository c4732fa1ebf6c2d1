/* soak.c - the target of the soak test: busy threads, threads in system
 * calls and signal handlers at once, each checking itself.  hot() is the
 * function patched (hot_v2 makes it return 2).
 *   - 4 workers call hot() in tight loops; a result other than 1 or 2 is bad.
 *   - a reader blocked in read() on a pipe gets 4-byte sequence numbers that
 *     the main thread writes every millisecond; a gap or repeat is bad.
 *   - a sleeper sleeps 2 ms at a time; a sleep cut short is bad.
 *   - handlers count SIGRTMIN (and the numbers they carry) and SIGUSR1.
 * Output lines, every 100 ms and on SIGUSR2:
 *   ready pid=PID
 *   soak v1=A v2=B bad=N seq=S sleeps=Z rt=C sum=SUM usr1=U
 * where A and B count the workers whose last call returned 1 and 2. */
#include "target.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define WORKERS 4

static atomic_int last_version[WORKERS];
static atomic_ulong bad, sequence_seen, sleeps, rt_count, rt_sum, usr1_count;
static atomic_int report_wanted;
static int pipe_fds[2];

/* Counts a failed check and says which, so a soak failure names its cause. */
static void found_bad(const char *what, long got, long wanted)
{
	atomic_fetch_add(&bad, 1);
	printf("ERROR %s: got %ld, wanted %ld\n", what, got, wanted);
}

__attribute__((noipa)) int hot(unsigned long *calls)
{
	__atomic_fetch_add(calls, 1, __ATOMIC_RELAXED);
	return 1;
}

static void *work(void *argument)
{
	atomic_int *last = argument;
	unsigned long calls = 0;

	for (;;) {
		int version = hot(&calls);

		if (version != 1 && version != 2)
			found_bad("hot() returned", version, 1);
		atomic_store(last, version);
	}
	return NULL;
}

static void *read_sequence(void *argument)
{
	uint32_t expected = 1, got;

	(void)argument;
	for (;;) {
		ssize_t length = read(pipe_fds[0], &got, sizeof(got));

		if (length == -1 && errno == EINTR)
			continue;	/* a handler ran; SA_RESTART should make this rare */
		if (length != sizeof(got))
			found_bad(length < 0 ? strerror(errno) : "read() of the pipe", (long)length,
				  (long)sizeof(got));
		else if (got != expected)
			found_bad("sequence number", (long)got, (long)expected);
		expected = got + 1;
		atomic_store(&sequence_seen, got);
	}
	return NULL;
}

static void *sleep_checked(void *argument)
{
	(void)argument;
	for (;;) {
		long before = now_ms();

		sleep_ms(2);
		if (now_ms() - before < 2)
			found_bad("milliseconds slept", now_ms() - before, 2);
		atomic_fetch_add(&sleeps, 1);
	}
	return NULL;
}

static void on_rt(int number, siginfo_t *info, void *context)
{
	(void)number;
	(void)context;
	atomic_fetch_add(&rt_count, 1);
	atomic_fetch_add(&rt_sum, (unsigned long)info->si_value.sival_int);
}

static void on_usr1(int number)
{
	(void)number;
	atomic_fetch_add(&usr1_count, 1);
}

static void on_usr2(int number)
{
	(void)number;
	atomic_store(&report_wanted, 1);
}

static void handle(int number, void (*simple)(int), void (*with_info)(int, siginfo_t *, void *))
{
	struct sigaction action;

	memset(&action, 0, sizeof(action));
	sigemptyset(&action.sa_mask);
	action.sa_flags = SA_RESTART | (with_info ? SA_SIGINFO : 0);
	if (with_info)
		action.sa_sigaction = with_info;
	else
		action.sa_handler = simple;
	sigaction(number, &action, NULL);
}

static void report(void)
{
	int versions[3] = { 0, 0, 0 };

	for (int i = 0; i < WORKERS; i++) {
		int last = atomic_load(&last_version[i]);

		versions[last == 1 ? 0 : last == 2 ? 1 : 2]++;
	}
	if (versions[2])
		found_bad("workers on no known version", versions[2], 0);
	printf("soak v1=%d v2=%d bad=%lu seq=%lu sleeps=%lu rt=%lu sum=%lu usr1=%lu\n",
	       versions[0], versions[1], atomic_load(&bad), atomic_load(&sequence_seen),
	       atomic_load(&sleeps), atomic_load(&rt_count), atomic_load(&rt_sum),
	       atomic_load(&usr1_count));
}

int main(void)
{
	pthread_t thread;
	uint32_t next = 1;
	long last_report = now_ms();

	target_start();
	handle(SIGRTMIN, NULL, on_rt);
	handle(SIGUSR1, on_usr1, NULL);
	handle(SIGUSR2, on_usr2, NULL);
	if (pipe(pipe_fds) != 0) {
		perror("pipe");
		return 1;
	}
	for (int i = 0; i < WORKERS; i++) {
		atomic_store(&last_version[i], 1);
		pthread_create(&thread, NULL, work, &last_version[i]);
	}
	pthread_create(&thread, NULL, read_sequence, NULL);
	pthread_create(&thread, NULL, sleep_checked, NULL);
	printf("ready pid=%d\n", (int)getpid());
	for (;;) {
		if (write(pipe_fds[1], &next, sizeof(next)) == (ssize_t)sizeof(next))
			next++;
		sleep_ms(1);
		if (atomic_exchange(&report_wanted, 0) || now_ms() - last_report >= 100) {
			report();
			last_report = now_ms();
		}
	}
}
