/* unloadable - replaces compute() of the simple target with code that calls
 * a function no library of the target defines: the target's dynamic loader
 * refuses the patch (dlopen: undefined symbol), which apply reports as a
 * failure to load, the process unchanged. */
#include <hotpatch.h>

extern int defined_nowhere(int value);

static int compute_unloadable(int value)
{
	return defined_nowhere(value);
}
HOTPATCH_REPLACE(compute, compute_unloadable);
