/* adjust_fix - replaces adjust() of the simple target: N + 3. */
#include <hotpatch.h>

static int adjust_fix(int value)
{
	return value + 3;
}
HOTPATCH_REPLACE(adjust, adjust_fix);
