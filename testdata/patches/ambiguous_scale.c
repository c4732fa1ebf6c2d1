/* ambiguous_scale - uses scale() without saying which of the twofiles
 * target's two file-local functions of that name: refused. */
#include <hotpatch.h>

int scale(int value);
HOTPATCH_SYMBOL(scale);

static int compute_fixed(int value)
{
	return scale(value) + 1;
}
HOTPATCH_REPLACE(compute, compute_fixed);
