/* bench_target.c - the process `make bench` patches.  `bench_target THREADS`
 * runs THREADS threads in all: the main thread, which answers commands from
 * stdin; one spinner, which records the longest gap between two iterations
 * of its loop (the blackout as the process itself sees it) and calls only
 * the last generated function, which the 1- and 100-function patches leave
 * alone (a thread spinning in unrelated code); and THREADS-2 workers,
 * mostly idle like a server's.  Two more threads measure their own pauses:
 * an idle one, sleeping 1 ms at a time (how late it wakes), and a caller,
 * calling bench_fn_0000 then sleeping 200 us (how much longer than that one
 * round takes).  Only the generated bench_fn_NNNN functions are ever
 * patched; this file never is.
 *
 * Commands, one per line; every answer is one line, flushed:
 *   reset      zero the spinner's longest gap            -> ok
 *   gap        longest gap since the last reset, in ns   -> N
 *   pauses     the idle thread's and the caller's longest lateness since
 *              the last reset, in ns                     -> idle=N caller=N
 *   calls N    ns per call of bench_fn_0000 over N calls -> F
 *   errors     calls whose result differed from the original code -> N
 *   quit       exit (so does end of input)
 * "ready" is printed once, when every thread runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_fn.h"

#define THREADS_MAX 4096
#define WORKER_STACK_SIZE (256 * 1024)
/* The spinner calls bench_fn_0000 once every this many iterations (a few
 * hundred microseconds), so it is realistic without living in the function. */
#define SPINNER_CALL_EVERY 4096

static atomic_uint reset_request;
static atomic_uint reset_done;
static atomic_uint_fast64_t longest_gap_ns;
static atomic_uint_fast64_t idle_late_ns;
static atomic_uint_fast64_t caller_late_ns;
#define IDLE_SLEEP_NS 1000000L
#define CALLER_SLEEP_NS 200000L
static atomic_ulong mismatches;
static atomic_uint started;

/* Idle workers wait on this forever, as server threads wait for work. */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_wakeup = PTHREAD_COND_INITIALIZER;

static void die(const char *what, int error)
{
	fprintf(stderr, "bench_target: %s: %s\n", what, strerror(error));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec now;

	if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
		die("clock_gettime", errno);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void sleep_ns(long nanoseconds)
{
	struct timespec left = {nanoseconds / 1000000000L, nanoseconds % 1000000000L};

	while (nanosleep(&left, &left) != 0)
		if (errno != EINTR)
			die("nanosleep", errno);
}

/* Calls function `index` and compares with the original code's result: a
 * patch that broke the target shows in the `errors` count. */
static void call_and_check(unsigned index, unsigned long argument)
{
	if (bench_functions[index](argument) != bench_mix(argument, index))
		atomic_fetch_add(&mismatches, 1);
}

static void *spin(void *unused)
{
	unsigned seen = atomic_load(&reset_request);
	uint64_t previous, longest = 0, iteration = 0;

	(void)unused;
	atomic_fetch_add(&started, 1);
	previous = now_ns();
	for (;;) {
		uint64_t now = now_ns();
		unsigned request = atomic_load_explicit(&reset_request, memory_order_acquire);

		/* The spinner resets its own record, so a reset never races with
		 * a gap being stored. */
		if (request != seen) {
			seen = request;
			longest = 0;
			atomic_store_explicit(&longest_gap_ns, 0, memory_order_relaxed);
			atomic_store_explicit(&reset_done, request, memory_order_release);
		} else if (now - previous > longest) {
			longest = now - previous;
			atomic_store_explicit(&longest_gap_ns, longest, memory_order_relaxed);
		}
		previous = now;
		if (++iteration % SPINNER_CALL_EVERY == 0)
			call_and_check(BENCH_FUNCTION_COUNT - 1, iteration);
	}
	return NULL;
}

static void note_late(atomic_uint_fast64_t *longest, uint64_t late)
{
	uint_fast64_t seen = atomic_load_explicit(longest, memory_order_relaxed);

	while (late > seen &&
	       !atomic_compare_exchange_weak_explicit(longest, &seen, late, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

/* Sleeps 1 ms at a time: how much later than asked it wakes is its pause. */
static void *sleep_and_measure(void *unused)
{
	(void)unused;
	atomic_fetch_add(&started, 1);
	for (;;) {
		uint64_t start = now_ns(), took;

		sleep_ns(IDLE_SLEEP_NS);
		took = now_ns() - start;
		note_late(&idle_late_ns, took > (uint64_t)IDLE_SLEEP_NS ? took - IDLE_SLEEP_NS : 0);
	}
	return NULL;
}

/* Calls bench_fn_0000, sleeps 200 us: a round longer than that is a pause. */
static void *call_and_measure(void *unused)
{
	unsigned long iteration = 0;

	(void)unused;
	atomic_fetch_add(&started, 1);
	for (;;) {
		uint64_t start = now_ns(), took;

		call_and_check(0, ++iteration);
		sleep_ns(CALLER_SLEEP_NS);
		took = now_ns() - start;
		note_late(&caller_late_ns,
			  took > (uint64_t)CALLER_SLEEP_NS ? took - CALLER_SLEEP_NS : 0);
	}
	return NULL;
}

/* Wakes every 20-50 ms, calls three functions chosen at random, sleeps. */
static void *work_periodically(void *argument)
{
	unsigned long index = (unsigned long)(uintptr_t)argument;
	uint64_t state = index * 2654435761u + 1;
	long period_ms = 20 + (long)(index % 31);

	atomic_fetch_add(&started, 1);
	for (;;) {
		for (int call = 0; call < 3; call++) {
			state = state * 6364136223846793005u + 1442695040888963407u;
			call_and_check((unsigned)((state >> 33) % BENCH_FUNCTION_COUNT),
				       (unsigned long)state);
		}
		sleep_ns(period_ms * 1000000L);
	}
	return NULL;
}

static void *wait_idle(void *unused)
{
	int error = pthread_mutex_lock(&idle_lock);

	(void)unused;
	if (error)
		die("pthread_mutex_lock", error);
	atomic_fetch_add(&started, 1);
	for (;;) {
		error = pthread_cond_wait(&idle_wakeup, &idle_lock);
		if (error)
			die("pthread_cond_wait", error);
	}
	return NULL;
}

static void start_threads(int threads)
{
	pthread_attr_t attributes;
	pthread_t thread;
	int error = pthread_attr_init(&attributes);

	if (!error)
		error = pthread_attr_setstacksize(&attributes, WORKER_STACK_SIZE);
	if (!error)
		error = pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
	if (!error)
		error = pthread_create(&thread, &attributes, spin, NULL);
	if (!error)
		error = pthread_create(&thread, &attributes, sleep_and_measure, NULL);
	if (!error)
		error = pthread_create(&thread, &attributes, call_and_measure, NULL);
	/* Half the workers wake periodically, half wait for work that never
	 * comes: on 2 cores, 1022 busy threads would starve the spinner. */
	for (int worker = 0; !error && worker < threads - 2; worker++)
		error =
		    pthread_create(&thread, &attributes, worker % 2 ? wait_idle : work_periodically,
				   (void *)(uintptr_t)worker);
	if (error)
		die("cannot start threads", error);
	pthread_attr_destroy(&attributes);
	while (atomic_load(&started) < (unsigned)threads + 1)
		sleep_ns(1000000);
}

static void answer(const char *format, ...) __attribute__((format(printf, 1, 2)));

static void answer(const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	vprintf(format, arguments);
	va_end(arguments);
	putchar('\n');
	if (fflush(stdout) != 0 || ferror(stdout))
		die("cannot answer on stdout", errno);
}

/* Asks the spinner to start a new record and waits until it has. */
static void reset(void)
{
	unsigned request = atomic_fetch_add(&reset_request, 1) + 1;

	atomic_store(&idle_late_ns, 0);
	atomic_store(&caller_late_ns, 0);
	uint64_t deadline = now_ns() + 2000000000u;

	while (atomic_load_explicit(&reset_done, memory_order_acquire) != request) {
		if (now_ns() > deadline) {
			answer("error the spinner did not reset within 2 s");
			return;
		}
		sleep_ns(20000);
	}
	answer("ok");
}

/* Direct calls, as real callers make: noipa keeps the compiler from
 * inlining bench_fn_0000 or hoisting its calls, so every iteration enters
 * the function, through the jump once it is patched. */
static void measure_calls(unsigned long count)
{
	volatile unsigned long sink;
	unsigned long sum = 0;
	uint64_t start;

	if (count == 0) {
		answer("error calls needs a positive count");
		return;
	}
	start = now_ns();
	for (unsigned long i = 0; i < count; i++)
		sum += bench_fn_0000(i);
	sink = sum;
	(void)sink;
	answer("%.3f", (double)(now_ns() - start) / (double)count);
}

int main(int argc, char **argv)
{
	char *line = NULL, *end;
	size_t size = 0;
	long threads;

	threads = argc == 2 ? strtol(argv[1], &end, 10) : 0;
	if (argc != 2 || *end || threads < 2 || threads > THREADS_MAX) {
		fprintf(stderr, "usage: bench_target THREADS (2 to %d, main thread included)\n",
			THREADS_MAX);
		return 2;
	}
	start_threads((int)threads);
	answer("ready");
	/* The main thread waits in read(): hotpatch borrows a thread blocked in
	 * a system call other than a futex wait for its dlopen, this one. */
	while (getline(&line, &size, stdin) > 0) {
		unsigned long count;

		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "reset") == 0)
			reset();
		else if (strcmp(line, "gap") == 0)
			answer("%" PRIuFAST64, atomic_load(&longest_gap_ns));
		else if (strcmp(line, "pauses") == 0)
			answer("idle=%" PRIuFAST64 " caller=%" PRIuFAST64, atomic_load(&idle_late_ns),
			       atomic_load(&caller_late_ns));
		else if (sscanf(line, "calls %lu", &count) == 1)
			measure_calls(count);
		else if (strcmp(line, "errors") == 0)
			answer("%lu", atomic_load(&mismatches));
		else if (strcmp(line, "quit") == 0)
			break;
		else
			answer("error unknown command: %s", line);
	}
	if (ferror(stdin))
		die("cannot read stdin", errno);
	free(line);
	return 0;
}
