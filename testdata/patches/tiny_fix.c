/* tiny_fix - replaces tiny_function() of the unpatchable target, which is
 * only 3 bytes long: refused with exit 4. */
#include <hotpatch.h>

static int tiny_fixed(void)
{
	return 42;
}
HOTPATCH_REPLACE(tiny_function, tiny_fixed);
