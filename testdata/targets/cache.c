/* cache.c - a target for the hooks of patches (HOTPATCH_PRE_APPLY ...).
 * Every 5 ms it calls lookup(N) and prints:
 *   ready pid=PID
 *   lookup N -> R     original: R = 2N (the bug); cache_fix: 3N
 *   hooks pre_apply=A post_apply=B pre_revert=C post_revert=D cache_hits=H
 * The patches' hooks count their runs in the hook_* variables, and
 * cache_fix's replacement counts the calls its cache answered. */
#include "target.h"

int hook_pre_apply, hook_post_apply, hook_pre_revert, hook_post_revert;
long cache_hits;
/* What cache_fix's pre-apply hook checks before it lets itself in. */
int cache_size = 64;

__attribute__((noipa)) long lookup(long n)
{
	return 2 * n;
}

int main(void)
{
	target_start();
	printf("ready pid=%d\n", (int)getpid());
	for (long i = 1;; i++) {
		printf("lookup %ld -> %ld\n", i, lookup(i));
		printf("hooks pre_apply=%d post_apply=%d pre_revert=%d post_revert=%d cache_hits=%ld\n",
		       __atomic_load_n(&hook_pre_apply, __ATOMIC_RELAXED),
		       __atomic_load_n(&hook_post_apply, __ATOMIC_RELAXED),
		       __atomic_load_n(&hook_pre_revert, __ATOMIC_RELAXED),
		       __atomic_load_n(&hook_post_revert, __ATOMIC_RELAXED),
		       __atomic_load_n(&cache_hits, __ATOMIC_RELAXED));
		sleep_ms(5);
	}
}
