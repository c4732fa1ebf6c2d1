/* variables.c - a program for `hotpatch build` on fixes that add variables
 * (new_state.diff beside it: a file-local `static` and a global, both
 * initialised, that the fixed handle() counts its calls in).  Built at -O0
 * and -O2; every 5 ms its loop calls handle(), which prints one line, so a
 * test sees the new variables count across calls once the patch is in.
 * Functions are noipa: each is called, never folded into callers. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define PATCHABLE __attribute__((noipa, noinline))

/* Data the program already has: a fix must leave it as it is. */
int handled = 0;
static volatile unsigned long ticks;

PATCHABLE void handle(unsigned long tick)
{
	handled++;
	printf("handle %lu: handled=%d\n", tick, handled);
}

int main(void)
{
	const struct timespec pause = { 0, 5 * 1000 * 1000 };

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready pid=%d\n", (int)getpid());
	for (;;) {
		handle(++ticks);
		nanosleep(&pause, NULL);
	}
}
