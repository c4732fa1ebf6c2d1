/* stuck.c - N threads (argv[1], default 1) enter stuck_forever() and never
 * leave it (they sleep in a loop inside), so a patch of stuck_forever can
 * never be applied; the main thread calls tick() every 5 ms, which stays
 * patchable.  Output lines:
 *   stuck tid=TID        (before ready, one per stuck thread)
 *   ready pid=PID stuck_tid=TID stuck_tids=TID,TID,...  (TID: the first)
 *   tick N -> R          original: R = N + 1; the tick_fix patch: R = N + 10 */
#include "target.h"

#include <pthread.h>
#include <stdatomic.h>

#define STUCK_MAX 8

static atomic_int stuck_tids[STUCK_MAX];
static atomic_int stuck_count;
static atomic_ulong stuck_rounds;
static unsigned long tick_calls;

__attribute__((noipa)) void stuck_forever(void)
{
	printf("stuck tid=%d\n", (int)gettid());
	atomic_store(&stuck_tids[atomic_fetch_add(&stuck_count, 1)], (int)gettid());
	for (;;) {
		struct timespec pause = { 0, 10 * 1000 * 1000 };

		nanosleep(&pause, NULL);
		atomic_fetch_add(&stuck_rounds, 1);
	}
}

__attribute__((noipa)) int tick(int value)
{
	tick_calls++;
	return value + 1;
}

static void *stay(void *argument)
{
	(void)argument;
	stuck_forever();
	return NULL;
}

int main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 1;

	target_start();
	if (count < 1 || count > STUCK_MAX) {
		fprintf(stderr, "stuck: 1 to %d threads\n", STUCK_MAX);
		return 2;
	}
	for (int i = 0; i < count; i++) {
		pthread_t thread;

		pthread_create(&thread, NULL, stay, NULL);
	}
	while (atomic_load(&stuck_count) < count || atomic_load(&stuck_tids[count - 1]) == 0)
		sleep_ms(1);
	printf("ready pid=%d stuck_tid=%d stuck_tids=", (int)getpid(), atomic_load(&stuck_tids[0]));
	for (int i = 0; i < count; i++)
		printf("%s%d", i ? "," : "", atomic_load(&stuck_tids[i]));
	printf("\n");
	for (int i = 1;; i++) {
		printf("tick %d -> %d\n", i, tick(i));
		sleep_ms(5);
	}
}
