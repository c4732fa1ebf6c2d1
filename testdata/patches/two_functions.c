/* two_functions - replaces compute() (4N) and adjust() (N + 2) of the simple
 * target in one patch, which is applied or rolled back as a whole. */
#include <hotpatch.h>

static int compute_times_four(int value)
{
	return 4 * value;
}

static int adjust_plus_two(int value)
{
	return value + 2;
}

HOTPATCH_REPLACE(compute, compute_times_four);
HOTPATCH_REPLACE(adjust, adjust_plus_two);
