/* step_fix - replaces step() of the coroutines target: N + 100, and a parker
 * (step(-1)) waits inside the replacement, yielding through the target's own
 * coroutine_yield(), until released, then returns 100. */
#include <hotpatch.h>
#include <stdio.h>

extern volatile int released;
void coroutine_yield(void);
HOTPATCH_SYMBOL(released);
HOTPATCH_SYMBOL(coroutine_yield);

static int step_fixed(int value)
{
	if (value < 0) {
		printf("parked in fixed step\n");
		while (!released)
			coroutine_yield();
		return 100;
	}
	return value + 100;
}
HOTPATCH_REPLACE(step, step_fixed);
