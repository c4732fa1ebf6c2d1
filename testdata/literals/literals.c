/* literals.c - a program for `hotpatch build` on fixes that change only
 * the text of a string literal (greeting.diff and message.diff beside it).
 * Built at each -O level; every 5 ms its loop prints one line per function
 * below, so a test sees which functions a patch changed and which it left
 * alone.  Functions are noipa: each is called, never folded into callers. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define PATCHABLE __attribute__((noipa, noinline))

/* Data that points at a literal: its initial value is where it points. */
static const char *msg = "message: as shipped";
static volatile unsigned long ticks;

/* Its literal comes before the others at -O0: a longer one moves them. */
PATCHABLE void print_greeting(unsigned long tick)
{
	printf("greeting %lu: hello\n", tick);
}

PATCHABLE void print_farewell(unsigned long tick)
{
	printf("farewell %lu: goodbye\n", tick);
}

PATCHABLE void print_message(unsigned long tick)
{
	printf("message %lu: %s\n", tick, msg);
}

/* A loop that may jump back to the function's first bytes: replacing it by
 * mistake would be refused. */
PATCHABLE void print_counts(unsigned long tick)
{
	unsigned long i = tick % 3;

	do
		printf("count %lu: %lu\n", tick, i);
	while (++i < 3 && ticks);
}

int main(void)
{
	const struct timespec pause = { 0, 5 * 1000 * 1000 };

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready pid=%d\n", (int)getpid());
	for (;;) {
		unsigned long tick = ++ticks;

		print_greeting(tick);
		print_farewell(tick);
		print_message(tick);
		print_counts(tick);
		nanosleep(&pause, NULL);
	}
}
