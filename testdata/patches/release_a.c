/* release_a - fixes f1 of the releases target: N + 10. */
#include <hotpatch.h>

static long f1_fixed(long n)
{
	return n + 10;
}
HOTPATCH_REPLACE(f1, f1_fixed);
HOTPATCH_ID("fix-1");
