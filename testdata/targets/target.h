/* target.h - what every test target shares: line-buffered output that a test
 * can read from a file as it grows, a bounded lifetime so that nothing is left
 * running when a test dies, and sleeps that ride out signal handlers.
 * Targets only: patches never include this. */
#ifndef TARGET_H
#define TARGET_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* The default lifetime; HP_TARGET_LIFETIME (seconds) overrides it. */
#define TARGET_LIFETIME_SECONDS 120

static inline void target_start(void)
{
	const char *lifetime = getenv("HP_TARGET_LIFETIME");
	unsigned seconds = lifetime ? (unsigned)atoi(lifetime) : TARGET_LIFETIME_SECONDS;

	setvbuf(stdout, NULL, _IOLBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	/* SIGALRM's default action ends the whole process, whatever it does. */
	alarm(seconds ? seconds : TARGET_LIFETIME_SECONDS);
}

static inline long now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec * 1000L + now.tv_nsec / 1000000L;
}

/* Sleeps the whole time even when signal handlers interrupt the sleep. */
static inline void sleep_ms(long milliseconds)
{
	struct timespec left = { milliseconds / 1000, (milliseconds % 1000) * 1000000L };

	while (nanosleep(&left, &left) == -1 && errno == EINTR)
		;
}

#endif /* TARGET_H */
