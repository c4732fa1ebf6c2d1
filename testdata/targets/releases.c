/* releases.c - a target for cumulative patches and fix bundles: three
 * fixable functions, and threads that check a fix is never lost.  Every
 * 5 ms the main thread calls f1(), f2() and f3() and prints:
 *   ready pid=PID threads=T
 *   f1 N -> R      original: R = N + 1
 *   f2 N -> R      original: R = N + 2
 *   f3 N -> R      original: R = N + 3
 *   checks threads=T fixed=F calls=C bad=B
 * With argv[1] = T (up to 64), T threads call checked() without pause.
 * checked() has the bug: it returns -1; every fix returns N * 3 or N * 5.
 * A thread that has once seen a fixed result counts every unfixed result
 * after it as bad (B): a fix that went missing for a single call, between
 * two patches, shows there.  F counts the threads that have seen a fix.
 * Patches: release_a (f1 +10), release_b (f2 +20), release_c (cumulative:
 * f2 +21, f3 +30), checked_v1 and checked_v2 (cumulative: checked() fixed,
 * 3N and 5N). */
#include "target.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define THREADS_MAX 64

static atomic_ulong calls, bad;
static atomic_int fixed_threads;

__attribute__((noipa)) long f1(long n)
{
	return n + 1;
}

__attribute__((noipa)) long f2(long n)
{
	return n + 2;
}

__attribute__((noipa)) long f3(long n)
{
	return n + 3;
}

__attribute__((noipa)) long checked(long n)
{
	(void)n;
	return -1;
}

static void *check(void *argument)
{
	bool seen_fix = false;

	(void)argument;
	for (long n = 1;; n++) {
		long result = checked(n);

		atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
		if (result == -1 && seen_fix)
			atomic_fetch_add(&bad, 1);
		if (result != -1 && !seen_fix) {
			seen_fix = true;
			atomic_fetch_add(&fixed_threads, 1);
		}
		if (n == 1000000)
			n = 0;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 0;

	target_start();
	if (threads < 0 || threads > THREADS_MAX)
		threads = THREADS_MAX;
	for (int i = 0; i < threads; i++) {
		pthread_t thread;

		if (pthread_create(&thread, NULL, check, NULL) != 0)
			return 1;
	}
	printf("ready pid=%d threads=%d\n", (int)getpid(), threads);
	for (long i = 1;; i++) {
		printf("f1 %ld -> %ld\n", i, f1(i));
		printf("f2 %ld -> %ld\n", i, f2(i));
		printf("f3 %ld -> %ld\n", i, f3(i));
		if (threads && i % 4 == 0)
			printf("checks threads=%d fixed=%d calls=%lu bad=%lu\n", threads,
			       atomic_load(&fixed_threads), atomic_load(&calls), atomic_load(&bad));
		sleep_ms(5);
	}
}
