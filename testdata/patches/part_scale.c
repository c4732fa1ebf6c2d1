/* part_scale - compute() through the scale() of twofiles_part.c (5N), one
 * of two file-local functions of that name in the twofiles target. */
#include <hotpatch.h>

int scale(int value);
HOTPATCH_SYMBOL_FROM("", "twofiles_part.c", scale);

static int compute_fixed(int value)
{
	return scale(value);
}
HOTPATCH_REPLACE(compute, compute_fixed);
