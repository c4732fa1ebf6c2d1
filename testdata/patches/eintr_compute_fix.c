/* eintr_compute_fix - replaces compute() of the eintr_waits target: 3N. */
#include <hotpatch.h>

extern int compute_calls;
HOTPATCH_SYMBOL(compute_calls);

static int compute_fixed(int value)
{
	compute_calls++;
	return 3 * value;
}
HOTPATCH_REPLACE(compute, compute_fixed);
