/* stuck.c - one thread enters stuck_forever() and never leaves it (it sleeps
 * in a loop inside), so a patch of stuck_forever can never be applied; the
 * main thread calls tick() every 5 ms, which stays patchable.  Output lines:
 *   stuck tid=TID        (before ready; TID is the stuck thread's id)
 *   ready pid=PID stuck_tid=TID
 *   tick N -> R          original: R = N + 1; the tick_fix patch: R = N + 10 */
#include "target.h"

#include <pthread.h>
#include <stdatomic.h>

static atomic_int stuck_tid;
static atomic_ulong stuck_rounds;
static unsigned long tick_calls;

__attribute__((noipa)) void stuck_forever(void)
{
	printf("stuck tid=%d\n", (int)gettid());
	atomic_store(&stuck_tid, (int)gettid());
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

int main(void)
{
	pthread_t thread;

	target_start();
	pthread_create(&thread, NULL, stay, NULL);
	while (atomic_load(&stuck_tid) == 0)
		sleep_ms(1);
	printf("ready pid=%d stuck_tid=%d\n", (int)getpid(), atomic_load(&stuck_tid));
	for (int i = 1;; i++) {
		printf("tick %d -> %d\n", i, tick(i));
		sleep_ms(5);
	}
}
