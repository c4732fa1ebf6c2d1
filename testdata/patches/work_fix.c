/* work_fix - replaces work() of the signals target: 20N. */
#include <hotpatch.h>

static int work_fixed(int value)
{
	return 20 * value;
}
HOTPATCH_REPLACE(work, work_fixed);
