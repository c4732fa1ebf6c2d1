/* release_b - fixes f2 of the releases target: N + 20. */
#include <hotpatch.h>

static long f2_fixed(long n)
{
	return n + 20;
}
HOTPATCH_REPLACE(f2, f2_fixed);
HOTPATCH_ID("fix-2");
