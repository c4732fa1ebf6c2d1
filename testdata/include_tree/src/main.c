/* main.c - a program whose tree (this directory) is not all it is built
 * from: it includes ../common/shared.h by a relative path and bounds.h
 * through -I../extra, both outside the tree that `hotpatch build --source`
 * copies (fix.diff and missing.diff beside it, for build_includes.bats).
 * Every 5 ms it prints
 *   scaled N -> R       R = N * SHARED_SCALE (3); fix.diff: capped at BOUND_LIMIT (50) */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "../common/shared.h"
#include "bounds.h"

#define PATCHABLE __attribute__((noipa, noinline))

static volatile unsigned long ticks;

PATCHABLE long scaled(unsigned long tick)
{
	return (long)(tick % 40) * SHARED_SCALE;
}

int main(void)
{
	const struct timespec pause = { 0, 5 * 1000 * 1000 };

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready pid=%d\n", (int)getpid());
	for (;;) {
		unsigned long tick = ++ticks;

		printf("scaled %lu -> %ld\n", tick % 40, scaled(tick));
		nanosleep(&pause, NULL);
	}
}
