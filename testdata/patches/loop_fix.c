/* loop_fix - replaces loop_function() of the unpatchable target, whose own
 * loop branches back into its first 5 bytes: refused with exit 4. */
#include <hotpatch.h>

static int loop_fixed(int limit)
{
	return limit + 1000;
}
HOTPATCH_REPLACE(loop_function, loop_fixed);
