/* twofiles.c - a target built from two source files that both define
 * file-local functions named scale() and step(), as C allows; the other file
 * is testdata/parts/twofiles_part.c.  Every 5 ms it prints:
 *   ready pid=PID
 *   compute N -> R      original: R = scale(N) of this file = 2N
 *   adjust N -> R       original: R = part_adjust(N) = step(N) of the part = N + 1
 * Patches that must say which scale() or step() they mean: part_scale (5N,
 * through the part's scale()), part_step (N + 2, replacing the part's
 * step()), ambiguous_scale and ambiguous_step (refused).  The Makefile also
 * builds a stripped copy, twofiles_stripped, and its debug file. */
#include "target.h"

int part_adjust(int value);

static __attribute__((noipa, used)) int scale(int value)
{
	return 2 * value;
}

/* Never called: only here so that the name is ambiguous. */
static __attribute__((noipa, used)) int step(int value)
{
	return value + 100;
}

int compute_calls;

__attribute__((noipa)) int compute(int value)
{
	compute_calls++;
	return scale(value);
}

int main(void)
{
	target_start();
	printf("ready pid=%d\n", (int)getpid());
	for (int i = 1;; i++) {
		printf("compute %d -> %d\n", i, compute(i));
		printf("adjust %d -> %d\n", i, part_adjust(i));
		sleep_ms(5);
	}
}
