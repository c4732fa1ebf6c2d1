/* compute_v2 - replaces compute() again, on top of compute_v1: 5N. */
#include <hotpatch.h>

static int compute_v2(int value)
{
	return 5 * value;
}
HOTPATCH_REPLACE(compute, compute_v2);
