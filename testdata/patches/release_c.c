/* release_c - a cumulative release of the releases target: f2 fixed again
 * (N + 21) and f3 (N + 30).  Applied, it takes over every patch applied
 * before it: f1 goes back to its original code unless release_c fixed it. */
#include <hotpatch.h>

static long f2_fixed(long n)
{
	return n + 21;
}

static long f3_fixed(long n)
{
	return n + 30;
}
HOTPATCH_REPLACE(f2, f2_fixed);
HOTPATCH_REPLACE(f3, f3_fixed);
HOTPATCH_CUMULATIVE();
HOTPATCH_ID("fix-2");
HOTPATCH_ID("fix-3");
