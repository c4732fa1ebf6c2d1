/* hook_refuse - a fix of lookup() of the cache target (5N) whose pre-apply
 * hook refuses (returns 7): the apply must be cancelled, its post-apply
 * hook never run. */
#include <hotpatch.h>

extern int hook_pre_apply, hook_post_apply;
HOTPATCH_SYMBOL(hook_pre_apply);
HOTPATCH_SYMBOL(hook_post_apply);

static long lookup_fixed(long n)
{
	return 5 * n;
}
HOTPATCH_REPLACE(lookup, lookup_fixed);

static int refuse(void)
{
	__atomic_fetch_add(&hook_pre_apply, 1, __ATOMIC_RELAXED);
	return 7;
}
HOTPATCH_PRE_APPLY(refuse);

static int never(void)
{
	__atomic_fetch_add(&hook_post_apply, 1, __ATOMIC_RELAXED);
	return 0;
}
HOTPATCH_POST_APPLY(never);
