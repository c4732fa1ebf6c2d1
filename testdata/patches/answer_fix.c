/* answer_fix - replaces answer() of the blocking target: K + 200. */
#include <hotpatch.h>

static int answer_fixed(int value)
{
	return value + 200;
}
HOTPATCH_REPLACE(answer, answer_fixed);
