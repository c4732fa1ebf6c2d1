/* missing_library - replaces a function of a library no target loads:
 * refused with exit 4. */
#include <hotpatch.h>

static int replacement(int value)
{
	return value;
}
HOTPATCH_REPLACE_IN("libnotloaded.so", demo_value, replacement);
