/* missing_symbol - uses a variable the target does not have: refused
 * before anything is loaded. */
#include <hotpatch.h>

extern int no_such_variable;
HOTPATCH_SYMBOL(no_such_variable);

static int compute_fixed(int value)
{
	return value * no_such_variable;
}
HOTPATCH_REPLACE(compute, compute_fixed);
