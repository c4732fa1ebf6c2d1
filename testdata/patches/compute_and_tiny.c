/* compute_and_tiny - replaces compute() (which fits) and tiny_function()
 * (which does not) of the unpatchable target: the whole patch is refused
 * (exit 4) and compute() keeps its original code. */
#include <hotpatch.h>

static int compute_fixed(int value)
{
	return 3 * value;
}

static int tiny_fixed(void)
{
	return 42;
}

HOTPATCH_REPLACE(compute, compute_fixed);
HOTPATCH_REPLACE(tiny_function, tiny_fixed);
