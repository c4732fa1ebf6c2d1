/* uses_target - replaces compute() with a function that calls the target's
 * file-local triple() (3N), reads its global target_extra (8) and writes its
 * global compute_calls: 3N + 8N = 11N.  The names are the target's own,
 * declared with HOTPATCH_SYMBOL; hotpatch resolves them from the target's
 * symbol table when it applies the patch. */
#include <hotpatch.h>

extern int compute_calls;
extern int target_extra;
int triple(int value);
HOTPATCH_SYMBOL(compute_calls);
HOTPATCH_SYMBOL(target_extra);
HOTPATCH_SYMBOL(triple);

static int compute_through_target(int value)
{
	compute_calls++;
	return triple(value) + target_extra * value;
}
HOTPATCH_REPLACE(compute, compute_through_target);
HOTPATCH_DESCRIPTION("compute through the target's own triple() and target_extra");
HOTPATCH_ID("HP-TEST-1");
HOTPATCH_ID("HP-TEST-2");
