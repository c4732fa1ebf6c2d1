/* checked_v2 - cumulative release 2 of the releases target: checked()
 * still fixed (5N), and f1 (N + 50). */
#include <hotpatch.h>

static long checked_fixed(long n)
{
	return 5 * n;
}

static long f1_fixed(long n)
{
	return n + 50;
}
HOTPATCH_REPLACE(checked, checked_fixed);
HOTPATCH_REPLACE(f1, f1_fixed);
HOTPATCH_CUMULATIVE();
