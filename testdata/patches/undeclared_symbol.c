/* undeclared_symbol - calls the simple target's file-local triple() but
 * forgets HOTPATCH_SYMBOL: the dynamic loader cannot find it, and the error
 * says what to add. */
#include <hotpatch.h>

int triple(int value);

static int compute_fixed(int value)
{
	return triple(value);
}
HOTPATCH_REPLACE(compute, compute_fixed);
