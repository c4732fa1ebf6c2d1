/* threads.c - N worker threads (argv[1], default 8) call hot() in tight loops.
 * hot() returns the version of the implementation that ran: 1 here, 2 in the
 * hot_v2 patch.  Each worker remembers the last version it saw and counts its
 * switches; a worker that ran version 2 and then 1 again without a revert
 * shows up as an extra switch.  With "churn" as argv[2], short-lived threads
 * are started and ended all the time as well; with "resident", hot() does
 * the workers' spinning itself, so a stopped worker is nearly always inside
 * it and only a tool that moves busy threads out can patch it; with "paced",
 * each worker sleeps 10 ms between calls, a service that is mostly
 * waiting (the machine-wide bench starts a hundred of them); with
 * "napping", 20 us, so that workers fall asleep and wake all through an
 * apply; with "dozing", each worker's second call waits inside hot() for
 * a round of work (SIGUSR1, as "waiting" below), and so does every call after; with "waiting", each worker makes one
 * call and then waits for work, and every SIGUSR1 gives each one more call.  Output lines:
 *   ready pid=PID threads=N
 *   hot threads=N v1=A v2=B other=C switches=S calls=K [churn=M churn_last=V]
 * every 20 ms, where A/B/C count the workers whose last call returned 1/2/other. */
#include "target.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#define MAX_WORKERS 1024

struct worker {
	pthread_t thread;
	unsigned long calls;	/* written by hot() */
	atomic_int last;
	atomic_int switches;
} __attribute__((aligned(64)));

static struct worker workers[MAX_WORKERS];
static atomic_ulong churn_threads;
static atomic_int churn_last;
static int resident;
static int paced;
static int napping;
static int dozing;
static int waiting;
/* Waiting: the rounds of work handed out (one per SIGUSR1). */
static pthread_mutex_t round_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t round_wakeup = PTHREAD_COND_INITIALIZER;
static unsigned long round_number;

/* Blocks until the round moves past `seen`; returns the new round. */
static unsigned long wait_for_round(unsigned long seen)
{
	unsigned long now;

	pthread_mutex_lock(&round_lock);
	while (round_number == seen)
		pthread_cond_wait(&round_wakeup, &round_lock);
	now = round_number;
	pthread_mutex_unlock(&round_lock);
	return now;
}

/* SIGUSR1 (blocked in every thread) starts a round. */
static void *hand_out_rounds(void *unused)
{
	sigset_t usr1;
	int signal_number;

	(void)unused;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	for (;;) {
		if (sigwait(&usr1, &signal_number) != 0)
			continue;
		pthread_mutex_lock(&round_lock);
		round_number++;
		pthread_cond_broadcast(&round_wakeup);
		pthread_mutex_unlock(&round_lock);
	}
	return NULL;
}

static void nap_us(long microseconds)
{
	struct timespec left = { 0, microseconds * 1000L };

	while (nanosleep(&left, &left) == -1 && errno == EINTR)
		;
}

/* Called from hot() when dozing: from each worker's second call on, it
 * waits there for the next round, hot()'s frame on its stack. */
static __attribute__((noipa, noinline)) int doze(void)
{
	static __thread unsigned long calls, round;

	if (calls++ > 0)
		round = wait_for_round(round);
	return 0;
}

/* Work outside hot(), so that a stopped worker is not nearly always in it. */
static __attribute__((noipa)) void spin(int rounds)
{
	for (volatile int i = 0; i < rounds; i++)
		;
}

/* hot()'s first instruction is one load of 6 bytes, which a gate's 5-byte
 * jump replaces whole (the gates of an apply without a global stop take no
 * other entry): the loop counts in a register, and the frame doze() needs
 * is set up in its branch only.  threads_plain (PLAIN_ENTRY) starts with
 * a 1-byte push instead, as most compiled functions start. */
__attribute__((noipa)) int hot(unsigned long *calls)
{
#if defined(PLAIN_ENTRY) && defined(__x86_64__)
	__asm__ volatile("" : : : "rbx");
#endif
	/* Resident: the spinning happens in here, inline, not in a callee. */
	for (int i = 0; i < resident; i++)
		__asm__ volatile("" : "+r"(i));
	__atomic_fetch_add(calls, 1, __ATOMIC_RELAXED);
	/* Dozing: asleep with this frame on the stack (not a tail call). */
	if (__builtin_expect(dozing, 0))
		return doze() + 1;
	return 1;
}

static void *work(void *argument)
{
	struct worker *worker = argument;
	unsigned long round = 0;

	for (;;) {
		int version = hot(&worker->calls);

		if (version != atomic_load(&worker->last)) {
			if (atomic_load(&worker->last) != 0)
				atomic_fetch_add(&worker->switches, 1);
			atomic_store(&worker->last, version);
		}
		if (waiting)
			round = wait_for_round(round);
		else if (paced)
			sleep_ms(10);
		else if (napping)
			nap_us(20);
		else if (!resident && !dozing)
			spin(200);
	}
	return NULL;
}

static void *churn_one(void *argument)
{
	unsigned long calls = 0;
	int version = 0;

	(void)argument;
	for (int i = 0; i < 100; i++)
		version = hot(&calls);
	atomic_store(&churn_last, version);
	atomic_fetch_add(&churn_threads, 1);
	return NULL;
}

/* Starts a detached thread every 2 ms, each calling hot() and ending. */
static void *churn(void *argument)
{
	pthread_attr_t attributes;

	(void)argument;
	pthread_attr_init(&attributes);
	pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
	for (;;) {
		pthread_t thread;

		if (pthread_create(&thread, &attributes, churn_one, NULL) != 0)
			printf("ERROR pthread_create failed\n");
		sleep_ms(2);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 8;
	int churning = argc > 2 && strcmp(argv[2], "churn") == 0;

	resident = argc > 2 && strcmp(argv[2], "resident") == 0 ? 200 : 0;
	paced = argc > 2 && strcmp(argv[2], "paced") == 0;
	napping = argc > 2 && strcmp(argv[2], "napping") == 0;
	dozing = argc > 2 && strcmp(argv[2], "dozing") == 0;
	waiting = argc > 2 && strcmp(argv[2], "waiting") == 0;
	pthread_t churner, rounds;
	sigset_t usr1;

	target_start();
	if (count < 1 || count > MAX_WORKERS) {
		fprintf(stderr, "threads: 1 to %d workers\n", MAX_WORKERS);
		return 2;
	}
	/* Every thread inherits SIGUSR1 blocked: the round thread takes it. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	if ((waiting || dozing) && pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0)
		pthread_create(&rounds, NULL, hand_out_rounds, NULL);
	for (int i = 0; i < count; i++)
		pthread_create(&workers[i].thread, NULL, work, &workers[i]);
	if (churning)
		pthread_create(&churner, NULL, churn, NULL);
	for (int i = 0; i < count; i++)
		while (atomic_load(&workers[i].last) == 0)
			sleep_ms(1);
	printf("ready pid=%d threads=%d\n", (int)getpid(), count);
	for (;;) {
		int by_version[3] = { 0, 0, 0 };
		int switches = 0;
		unsigned long calls = 0;

		for (int i = 0; i < count; i++) {
			int last = atomic_load(&workers[i].last);

			by_version[last == 1 ? 0 : last == 2 ? 1 : 2]++;
			switches += atomic_load(&workers[i].switches);
			calls += __atomic_load_n(&workers[i].calls, __ATOMIC_RELAXED);
		}
		if (churning)
			printf("hot threads=%d v1=%d v2=%d other=%d switches=%d calls=%lu churn=%lu churn_last=%d\n",
			       count, by_version[0], by_version[1], by_version[2], switches, calls,
			       atomic_load(&churn_threads), atomic_load(&churn_last));
		else
			printf("hot threads=%d v1=%d v2=%d other=%d switches=%d calls=%lu\n", count,
			       by_version[0], by_version[1], by_version[2], switches, calls);
		sleep_ms(20);
	}
}
