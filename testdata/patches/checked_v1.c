/* checked_v1 - cumulative release 1 of the releases target: checked()
 * fixed (3N). */
#include <hotpatch.h>

static long checked_fixed(long n)
{
	return 3 * n;
}
HOTPATCH_REPLACE(checked, checked_fixed);
HOTPATCH_CUMULATIVE();
