/* part_step - replaces the step() of twofiles_part.c (N + 2), one of two
 * file-local functions of that name in the twofiles target. */
#include <hotpatch.h>

static int step_fixed(int value)
{
	return value + 2;
}
HOTPATCH_REPLACE_FROM("", "twofiles_part.c", step, step_fixed);
