/* clock.c - monotonic time and deadlines.  Deadlines are absolute
 * CLOCK_MONOTONIC seconds so that one timeout can bound a whole command. */
#include <errno.h>
#include <time.h>

#include "common/base.h"

double hp_now(void)
{
	struct timespec now;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

double hp_remaining(double deadline)
{
	double left = deadline - hp_now();

	return left > 0 ? left : 0;
}

void hp_sleep(double seconds)
{
	struct timespec pause;

	if (seconds <= 0)
		return;
	pause.tv_sec = (time_t)seconds;
	pause.tv_nsec = (long)((seconds - (double)pause.tv_sec) * 1e9);
	/* An interruption (Ctrl-C) ends the sleep early; callers re-check. */
	while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
		break;
}
