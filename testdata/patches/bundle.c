/* bundle - two fixes of the releases target in one patch, each function
 * tagged with its fix: fix-1 (f1: N + 10) and fix-3 (f3: N + 30).
 * `hotpatch apply --exclude fix-3` leaves f3 as it is. */
#include <hotpatch.h>

static long f1_fixed(long n)
{
	return n + 10;
}

static long f3_fixed(long n)
{
	return n + 30;
}
HOTPATCH_REPLACE(f1, f1_fixed);
HOTPATCH_REPLACE(f3, f3_fixed);
HOTPATCH_FIX(f1, "fix-1");
HOTPATCH_FIX(f3, "fix-3");
HOTPATCH_ID("fix-1");
HOTPATCH_ID("fix-3");
