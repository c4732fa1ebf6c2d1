/* tick_fix - replaces only tick() of the stuck target: N + 10.  Applies even
 * though another thread is stuck in a different function. */
#include <hotpatch.h>

static int tick_fixed(int value)
{
	return value + 10;
}
HOTPATCH_REPLACE(tick, tick_fixed);
