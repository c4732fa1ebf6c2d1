/* loader_busy.c - the only thread spends its life inside a dl_iterate_phdr
 * callback, which glibc runs holding the dynamic loader's lock: it calls
 * tick() every 5 ms from in there (sleeping in nanosleep in between, the
 * kind of thread hotpatch would otherwise like best).  A thread inside the
 * loader must never be the one that runs dlopen for a patch.  Output lines:
 *   ready pid=PID
 *   tick N -> R          original: R = N + 1; the tick_fix patch: R = N + 10 */
#include "target.h"

#include <link.h>

static unsigned long tick_calls;

__attribute__((noipa)) int tick(int value)
{
	tick_calls++;
	return value + 1;
}

static int stay_inside(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)info;
	(void)size;
	(void)data;
	printf("ready pid=%d\n", (int)getpid());
	for (int i = 1;; i++) {
		printf("tick %d -> %d\n", i, tick(i));
		sleep_ms(5);
	}
	return 1;
}

int main(void)
{
	target_start();
	dl_iterate_phdr(stay_inside, NULL);
	return 0;
}
