/* in_process.c - libhotpatch-apply.so: the engine's apply, run inside the
 * process by the preloaded loader for each installed patch that fits. */
#include "engine.h"

int hotpatch_loader_apply(const char *patch_path);

__attribute__((visibility("default"))) int hotpatch_loader_apply(const char *patch_path)
{
	(void)patch_path;
	return 0;
}
