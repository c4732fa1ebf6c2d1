/* cache_fix - fixes lookup() of the cache target (3N), answering from a
 * cache its post-apply hook fills: until then (the jumps are in before the
 * hook runs) it computes the answer.  Its pre-apply hook lets it in only
 * where the target's table has the size it expects; the revert hooks
 * count their runs and take the cache out of use. */
#include <hotpatch.h>

extern int hook_pre_apply, hook_post_apply, hook_pre_revert, hook_post_revert, cache_size;
extern long cache_hits;
HOTPATCH_SYMBOL(hook_pre_apply);
HOTPATCH_SYMBOL(hook_post_apply);
HOTPATCH_SYMBOL(hook_pre_revert);
HOTPATCH_SYMBOL(hook_post_revert);
HOTPATCH_SYMBOL(cache_size);
HOTPATCH_SYMBOL(cache_hits);

#define CACHE 64

static long table[CACHE];
static int ready;

static long lookup_fixed(long n)
{
	if (n >= 0 && __atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		__atomic_fetch_add(&cache_hits, 1, __ATOMIC_RELAXED);
		return table[n % CACHE] + 3 * (n - n % CACHE);
	}
	return 3 * n;
}
HOTPATCH_REPLACE(lookup, lookup_fixed);

static int check_target(void)
{
	__atomic_fetch_add(&hook_pre_apply, 1, __ATOMIC_RELAXED);
	return cache_size == CACHE ? 0 : 1;
}
HOTPATCH_PRE_APPLY(check_target);

static int fill_cache(void)
{
	for (int i = 0; i < CACHE; i++)
		table[i] = 3 * i;
	__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
	__atomic_fetch_add(&hook_post_apply, 1, __ATOMIC_RELAXED);
	return 0;
}
HOTPATCH_POST_APPLY(fill_cache);

static int before_revert(void)
{
	__atomic_fetch_add(&hook_pre_revert, 1, __ATOMIC_RELAXED);
	return 0;
}
HOTPATCH_PRE_REVERT(before_revert);

static int after_revert(void)
{
	__atomic_store_n(&ready, 0, __ATOMIC_RELEASE);
	__atomic_fetch_add(&hook_post_revert, 1, __ATOMIC_RELAXED);
	return 0;
}
HOTPATCH_POST_REVERT(after_revert);
