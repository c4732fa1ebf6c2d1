/* bundle_shared - two fixes of the releases target that share a function:
 * fix-a changes f1 (N + 10) and f2, fix-b changes f2 too (both: N + 22).
 * Neither can be excluded without the other. */
#include <hotpatch.h>

static long f1_fixed(long n)
{
	return n + 10;
}

static long f2_fixed(long n)
{
	return n + 22;
}
HOTPATCH_REPLACE(f1, f1_fixed);
HOTPATCH_REPLACE(f2, f2_fixed);
HOTPATCH_FIX(f1, "fix-a");
HOTPATCH_FIX(f2, "fix-a");
HOTPATCH_FIX(f2, "fix-b");
