/* hook_keep - a fix of lookup() of the cache target (5N) whose pre-revert
 * hook refuses (returns 3): a revert must leave it applied. */
#include <hotpatch.h>

extern int hook_pre_revert, hook_post_revert;
HOTPATCH_SYMBOL(hook_pre_revert);
HOTPATCH_SYMBOL(hook_post_revert);

static long lookup_fixed(long n)
{
	return 5 * n;
}
HOTPATCH_REPLACE(lookup, lookup_fixed);

static int keep(void)
{
	__atomic_fetch_add(&hook_pre_revert, 1, __ATOMIC_RELAXED);
	return 3;
}
HOTPATCH_PRE_REVERT(keep);

static int never(void)
{
	__atomic_fetch_add(&hook_post_revert, 1, __ATOMIC_RELAXED);
	return 0;
}
HOTPATCH_POST_REVERT(never);
