/* missing_function - names a function no target has: refused with exit 4. */
#include <hotpatch.h>

static int replacement(int value)
{
	return value;
}
HOTPATCH_REPLACE(no_such_function, replacement);
