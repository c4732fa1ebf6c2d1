/* self_priority.c - hotpatch's own processor priority while it moves the
 * target's threads one at a time (transition.c).  Looking at sleeping
 * threads costs processor time, not pauses, and on a machine with few
 * processors that time is taken from the target: a thread that wakes
 * waits for hotpatch's time slice.  So while no thread is held, hotpatch
 * runs as SCHED_IDLE, after every other thread of the machine; while it
 * holds one stopped, it runs as before, so that the stop stays short.
 *
 * Only a hotpatch that may come back (CAP_SYS_NICE: leaving SCHED_IDLE
 * takes it) and that runs in a normal class goes to the background: one
 * an operator started with chrt or a real-time class keeps its own. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/session.h"
#include "common/proc_maps.h"

#define CAP_SYS_NICE_BIT 23

static bool may_come_back(void)
{
	char text[4096];
	const char *line;
	unsigned long long effective = 0;

	if (proc_read_small("/proc/self/status", text, sizeof(text)) <= 0)
		return false;
	line = strstr(text, "\nCapEff:");
	return line && sscanf(line + 8, "%llx", &effective) == 1 &&
	       (effective >> CAP_SYS_NICE_BIT & 1);
}

void priority_init(struct hp_priority *priority)
{
	memset(priority, 0, sizeof(*priority));
	priority->policy = sched_getscheduler(0);
	priority->usable = (priority->policy == SCHED_OTHER || priority->policy == SCHED_BATCH) &&
			   sched_getparam(0, &priority->param) == 0 && may_come_back();
}

void priority_background(struct hp_priority *priority)
{
	struct sched_param none = { 0 };

	if (priority->usable && !priority->background)
		priority->background = sched_setscheduler(0, SCHED_IDLE, &none) == 0;
}

void priority_foreground(struct hp_priority *priority)
{
	if (!priority->background)
		return;
	/* Should it fail, hotpatch stays slow, never wrong. */
	if (sched_setscheduler(0, priority->policy, &priority->param) == 0)
		priority->background = false;
}
