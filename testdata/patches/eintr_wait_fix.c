/* eintr_wait_fix - replaces wait_step() of the eintr_waits target, where its
 * threads wait: the same checked wait (the target's wait_once), then 3N.
 * Applying and reverting it moves every waiting thread out of the function. */
#include <hotpatch.h>

struct waiter;
int wait_once(struct waiter *waiter);
HOTPATCH_SYMBOL(wait_once);

static int wait_step_fixed(struct waiter *waiter, int value)
{
	wait_once(waiter);
	return 3 * value;
}
HOTPATCH_REPLACE(wait_step, wait_step_fixed);
