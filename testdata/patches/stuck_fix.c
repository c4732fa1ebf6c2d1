/* stuck_fix - replaces tick() and stuck_forever() of the stuck target.  A
 * thread never leaves stuck_forever(), so the patch cannot be applied (exit 3),
 * and tick() must stay unpatched too: all or nothing. */
#include <hotpatch.h>
#include <time.h>

static void stuck_fixed(void)
{
	for (;;) {
		struct timespec pause = { 1, 0 };

		nanosleep(&pause, NULL);
	}
}

static int tick_fixed(int value)
{
	return value + 10;
}

HOTPATCH_REPLACE(tick, tick_fixed);
HOTPATCH_REPLACE(stuck_forever, stuck_fixed);
