/* simple.c - a single-threaded target.  Every 5 ms it calls compute() and
 * adjust() and prints what they returned, so a test sees which implementation
 * ran.  Output lines:
 *   ready pid=PID
 *   compute N -> R      original: R = 2 * N
 *   adjust N -> R       original: R = N + 1
 * Patches: compute_v1 (3N), two_functions (4N and N+2), compute_v2 (5N),
 * named (7N), uses_target (11N, through triple() and target_extra below),
 * adjust_fix (N+3). */
#include "target.h"

/* Read and written by patches, which the tool links against these. */
int compute_calls;
int adjust_calls;
int target_extra = 8;

/* Never called here: the uses_target patch calls it, which proves that a
 * patch reaches the target's file-local functions. */
static __attribute__((noipa, used)) int triple(int value)
{
	return 3 * value;
}

__attribute__((noipa)) int compute(int value)
{
	compute_calls++;
	return 2 * value;
}

__attribute__((noipa)) int adjust(int value)
{
	adjust_calls++;
	return value + 1;
}

int main(void)
{
	target_start();
	printf("ready pid=%d\n", (int)getpid());
	for (int i = 1;; i++) {
		int computed = compute(i);

		printf("compute %d -> %d\n", i, computed);
		printf("adjust %d -> %d\n", i, adjust(i));
		sleep_ms(5);
	}
}
