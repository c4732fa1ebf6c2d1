/* uses_target - replaces compute() with a function that calls the target's
 * file-local triple() (3N) and reads its global target_extra (8) and writes
 * its global compute_calls: 3N + 8N = 11N.  The patch leaves these names
 * undefined; the tool resolves them from the target's symbol tables. */
#include <hotpatch.h>

extern int compute_calls;
extern int target_extra;
int triple(int value);

static int compute_through_target(int value)
{
	compute_calls++;
	return triple(value) + target_extra * value;
}
HOTPATCH_REPLACE(compute, compute_through_target);
