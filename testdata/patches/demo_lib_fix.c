/* demo_lib_fix - replaces demo_value() inside libdemo.so: N + 70. */
#include <hotpatch.h>

static int demo_value_fixed(int value)
{
	return value + 70;
}
HOTPATCH_REPLACE_IN("libdemo.so", demo_value, demo_value_fixed);
