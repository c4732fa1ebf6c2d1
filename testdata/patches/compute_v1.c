/* compute_v1 - replaces compute() of the simple target: 3N instead of 2N. */
#include <hotpatch.h>

static int compute_v1(int value)
{
	return 3 * value;
}
HOTPATCH_REPLACE(compute, compute_v1);
