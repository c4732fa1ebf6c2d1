/* main.c - the service loop.  Every 5 ms it ticks and prints what its
 * functions return, one line each:
 *   ready pid=PID
 *   slot1 N -> R        R = N + 20: slot 1's hits, read by slot_hits()
 *   slot4 N -> R        slot 4 is free: 0 before bounds_check.diff, -1 after
 *   request SIZE -> R   for SIZE 0, 2, 100 and 5000: SIZE, or -1 if rejected
 *   capacity -> 4096    REQUEST_MAX (8192 after header_change.diff)
 *   audit N -> R        R = N - 1 + 7000 (N + 3 + 7000 after register_use.diff)
 *   rejected empty=A too_large=B checks=C last=SIZE   requests.c's counters
 *                       and the size last rejected
 *   load -5 -> R        -5 before inline_fix.diff, 0 after
 *   queue -2 -> R       -20 before inline_fix.diff, 0 after
 *   progress 200 -> 100
 *   ceiling -> 100
 *   weight 90 -> 8
 * N counts the ticks from 1.  HP_TARGET_LIFETIME (seconds, default 120)
 * bounds its life; SERVICE_SLOTS=N (1 to 3) puts only the first N slots in
 * use (then slot 1 of SERVICE_SLOTS=1 is free: 20 before bounds_check.diff,
 * -1 after). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "service.h"

long service_ticks;

static void sleep_ms(long milliseconds)
{
	struct timespec left = { milliseconds / 1000, (milliseconds % 1000) * 1000000L };

	while (nanosleep(&left, &left) == -1 && errno == EINTR)
		;
}

int main(void)
{
	static const int sizes[] = { 0, 2, 100, 5000 };
	const char *lifetime = getenv("HP_TARGET_LIFETIME");
	unsigned seconds = lifetime ? (unsigned)atoi(lifetime) : 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* SIGALRM's default action ends the service whatever it is doing. */
	alarm(seconds ? seconds : 120);
#ifdef SERVICE_VARIANT
	printf("variant %s\n", SERVICE_VARIANT);
#endif
	printf("ready pid=%d\n", (int)getpid());
	for (;;) {
		long empty, too_large, checks;
		int last;

		service_ticks++;
		slots_tick();
		printf("slot1 %ld -> %ld\n", service_ticks, slot_hits(1));
		printf("slot4 %ld -> %ld\n", service_ticks, slot_hits(4));
		for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			printf("request %d -> %d\n", sizes[i], handle_request(sizes[i]));
		printf("capacity -> %d\n", request_capacity());
		printf("audit %ld -> %ld\n", service_ticks, audit_request(service_ticks, 1000, 7));
		requests_report(&empty, &too_large, &checks, &last);
		printf("rejected empty=%ld too_large=%ld checks=%ld last=%d\n", empty, too_large,
		       checks, last);
		printf("load -5 -> %d\n", load_level(-5));
		printf("queue -2 -> %d\n", queue_level(-2));
		printf("progress 200 -> %d\n", progress_level(200));
		printf("ceiling -> %d\n", level_ceiling());
		printf("weight 90 -> %d\n", level_weight(90));
		sleep_ms(5);
	}
}
