/* pinned_simple - 13N, pinned to the build-id of the simple target, which
 * the Makefile passes in as SIMPLE_BUILD_ID. */
#include <hotpatch.h>

static int compute_fixed(int value)
{
	return 13 * value;
}
HOTPATCH_REPLACE(compute, compute_fixed);
HOTPATCH_BUILD_ID("", SIMPLE_BUILD_ID);
HOTPATCH_NAME("pinned");
