/* named - declares its own name, so list and revert know it as
 * "fix-compute-7" rather than "named".  Replaces compute(): 7N. */
#include <hotpatch.h>

static int compute_times_seven(int value)
{
	return 7 * value;
}
HOTPATCH_NAME("fix-compute-7");
HOTPATCH_REPLACE(compute, compute_times_seven);
