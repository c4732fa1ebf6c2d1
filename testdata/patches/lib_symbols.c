/* lib_symbols - replaces demo_value() of libdemo.so with one that counts in
 * the library's own demo_calls and adds twice its file-local demo_extra (13):
 * R = N + 26. */
#include <hotpatch.h>

extern unsigned long demo_calls;
extern int demo_extra;
HOTPATCH_SYMBOL_IN("libdemo.so", demo_calls);
HOTPATCH_SYMBOL_IN("libdemo.so", demo_extra);

static int demo_value_fixed(int value)
{
	demo_calls++;
	return value + 2 * demo_extra;
}
HOTPATCH_REPLACE_IN("libdemo.so", demo_value, demo_value_fixed);
