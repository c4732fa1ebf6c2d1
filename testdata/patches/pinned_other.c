/* pinned_other - built for another build of the main executable (a build-id
 * no target has): refused, naming both build-ids. */
#include <hotpatch.h>

static int compute_fixed(int value)
{
	return 3 * value;
}
HOTPATCH_REPLACE(compute, compute_fixed);
HOTPATCH_BUILD_ID("", "0123456789abcdef0123456789abcdef01234567");
