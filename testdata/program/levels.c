/* levels.c - levels from 0 to 100 computed from loads and queue depths, and
 * a weight per level band. */
#include "service.h"

/* The weight of each band of 25 levels. */
int level_weights[4] = { 1, 2, 4, 8 };

/* A level within 0..100.  Bug: a negative value stays negative
 * (inline_fix.diff). */
static inline int clamp_level(int value)
{
	return value > 100 ? 100 : value;
}

int load_level(int percent)
{
	return clamp_level(percent);
}

int queue_level(int depth)
{
	return clamp_level(depth * 10);
}

/* A level for a percentage done, which is never negative. */
int progress_level(unsigned char percent)
{
	return clamp_level(percent);
}

/* The highest level there is. */
int level_ceiling(void)
{
	return clamp_level(1000);
}

int level_weight(int level)
{
	int band = clamp_level(level) / 25;

	return level_weights[band < 0 ? 0 : band > 3 ? 3 : band];
}
