/* ambiguous_step - replaces step() without saying which of the twofiles
 * target's two file-local functions of that name: refused. */
#include <hotpatch.h>

static int step_fixed(int value)
{
	return value + 2;
}
HOTPATCH_REPLACE(step, step_fixed);
