/* hook_slow - a fix of lookup() of the cache target (5N) whose pre-apply
 * hook takes 7 s, past hotpatch's 5 s limit for a hook: the apply fails,
 * and the patch stays loaded until the hook has returned (it counts its
 * run in hook_pre_apply as it returns). */
#include <hotpatch.h>
#include <time.h>

extern int hook_pre_apply;
HOTPATCH_SYMBOL(hook_pre_apply);

static long lookup_fixed(long n)
{
	return 5 * n;
}
HOTPATCH_REPLACE(lookup, lookup_fixed);

static int slow(void)
{
	struct timespec left = { 7, 0 };

	while (nanosleep(&left, &left) != 0)
		;
	__atomic_fetch_add(&hook_pre_apply, 1, __ATOMIC_RELAXED);
	return 0;
}
HOTPATCH_PRE_APPLY(slow);
