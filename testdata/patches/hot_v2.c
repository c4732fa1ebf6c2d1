/* hot_v2 - replaces hot() of the threads target: it still counts the call
 * but returns version 2. */
#include <hotpatch.h>

static int hot_v2(unsigned long *calls)
{
	__atomic_fetch_add(calls, 1, __ATOMIC_RELAXED);
	return 2;
}
HOTPATCH_REPLACE(hot, hot_v2);
